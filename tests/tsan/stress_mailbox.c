/*
 * stress_mailbox.c: hr_mailbox under TSan. Four producers (two of them in
 * batch scopes) post into a small mailbox (so they block on a full queue)
 * while the consumer checks that each sender's mail arrives in its order;
 * then the mailbox is closed with producers still posting (and batches still
 * unsent), and every accepted mail must be received exactly once (or dropped
 * by destroy), never lost or duplicated. Last, as the router posts to a
 * consumer and a consumer to an I/O thread: batching producers whose 1 ms
 * posts time out and are not retried, and a consumer draining from the fd
 * with recv(0) that stalls now and then: what was accepted all arrives, in
 * each sender's order.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "actors/actor_impl.h"
#include "tsan/stress.h"

#define PRODUCERS 4
#define PER_PRODUCER 4000

typedef struct producer {
	hr_mailbox *mb;
	uint32_t id;
	int accepted; /* posts that returned 0 */
	int closed;   /* posts refused with HR_ECLOSED */
	int other;    /* any other result */
} producer;

static atomic_int dropped;

static void
drop_mail(void *arg, hr_mail *m)
{
	(void)arg;
	free(m->p1);
	atomic_fetch_add(&dropped, 1);
}

static void *
produce(void *arg)
{
	producer *p = arg;
	int retries = 0;
	/* Odd producers post in batch scopes of 40, as an actor's drain does. */
	bool scoped = p->id % 2 == 1;
	if (scoped)
		hr_mailbox_batch_begin();
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		if (scoped && i % 40 == 0) {
			hr_mailbox_batch_end();
			hr_mailbox_batch_begin();
		}
		uint64_t *payload = malloc(sizeof(*payload));
		if (payload == NULL) {
			p->other++;
			break;
		}
		*payload = i;
		hr_mail m = { .kind = HR_MAIL_USER, .u32 = p->id, .u64 = i, .p1 = payload };
		int rv = hr_mailbox_post(p->mb, &m, i % 3 == 0 ? 100 : -1);
		if (rv == 0) {
			p->accepted++;
			continue;
		}
		free(payload);
		if (rv == HR_ECLOSED) {
			p->closed++;
			break;
		}
		if (rv == HR_ETIMEDOUT && ++retries < 1000) {
			i--; /* full for 100 ms: try the same seq again */
			continue;
		}
		p->other++;
		break;
	}
	if (scoped)
		hr_mailbox_batch_end();
	return NULL;
}

/* Receive until HR_ECLOSED (or close after close_after mails), checking order
 * per sender. Returns the number received. */
static int
consume(hr_mailbox *mb, int close_after, int *order_errors, int *bad_payload)
{
	uint64_t next[PRODUCERS] = { 0 };
	int got = 0;
	for (int spins = 0; spins < 100000; spins++) {
		hr_mail m;
		int rv = hr_mailbox_recv(mb, &m, 1000);
		if (rv == HR_ECLOSED)
			break;
		if (rv == HR_ETIMEDOUT)
			continue;
		if (rv != 0) {
			CHECK(rv == 0, "recv: %s", hr_strerror(rv));
			break;
		}
		got++;
		if (m.u32 >= PRODUCERS || m.u64 != next[m.u32])
			(*order_errors)++;
		else
			next[m.u32]++;
		if (m.p1 == NULL || *(uint64_t *)m.p1 != m.u64)
			(*bad_payload)++;
		free(m.p1);
		if (got == close_after)
			hr_mailbox_close(mb);
	}
	return got;
}

static void
run(int close_after)
{
	hr_mailbox *mb;
	atomic_store(&dropped, 0);
	REQUIRE(hr_mailbox_create(&mb, 16, drop_mail, NULL) == 0, "create");
	producer p[PRODUCERS];
	pthread_t t[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		p[i] = (producer) { .mb = mb, .id = i };
		REQUIRE(pthread_create(&t[i], NULL, produce, &p[i]) == 0, "pthread_create");
	}
	int order_errors = 0, bad_payload = 0;
	int got = consume(mb, close_after, &order_errors, &bad_payload);
	int accepted = 0, closed = 0, other = 0;
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		accepted += p[i].accepted;
		closed += p[i].closed;
		other += p[i].other;
	}
	/* Anything still queued (there should be none after HR_ECLOSED) is dropped. */
	hr_mailbox_destroy(mb);
	CHECK(order_errors == 0, "%d mails out of their sender's order", order_errors);
	CHECK(bad_payload == 0, "%d mails with a wrong payload", bad_payload);
	CHECK(other == 0, "%d posts failed unexpectedly", other);
	CHECK(got + atomic_load(&dropped) == accepted, "received %d + dropped %d != accepted %d",
	    got, atomic_load(&dropped), accepted);
	CHECK(atomic_load(&dropped) == 0, "%d mails dropped after HR_ECLOSED was seen",
	    atomic_load(&dropped));
	if (close_after == PRODUCERS * PER_PRODUCER) {
		CHECK(accepted == PRODUCERS * PER_PRODUCER, "accepted %d", accepted);
		CHECK(closed == 0, "%d posts refused without a close", closed);
	} else {
		CHECK(got >= close_after, "got %d before close at %d", got, close_after);
	}
}

/* ---------------------------------------------------------------- timeouts */

static atomic_int timed_done;

static void *
produce_timed(void *arg)
{
	producer *p = arg;
	for (uint64_t i = 0; i < PER_PRODUCER;) {
		hr_mailbox_batch_begin();
		for (int k = 0; k < 40 && i < PER_PRODUCER; k++, i++) {
			hr_mail m = { .kind = HR_MAIL_USER, .u32 = p->id, .u64 = i };
			int rv = hr_mailbox_post(p->mb, &m, 1);
			if (rv == 0)
				p->accepted++;
			else if (rv == HR_ETIMEDOUT)
				p->closed++; /* here: timed out */
			else
				p->other++;
		}
		hr_mailbox_batch_end();
	}
	atomic_fetch_add(&timed_done, 1);
	return NULL;
}

static void
take_timed(const hr_mail *m, int64_t *last, int *got, int *order_errors)
{
	(*got)++;
	if (m->u32 >= PRODUCERS || (int64_t)m->u64 <= last[m->u32])
		(*order_errors)++;
	else
		last[m->u32] = (int64_t)m->u64;
}

static void
run_timed(void)
{
	const struct timespec stall = { .tv_sec = 0, .tv_nsec = 2000000L };
	int64_t last[PRODUCERS];
	hr_mailbox *mb;
	hr_mail m;
	int fd, rv, got = 0, order_errors = 0, wakes = 0;

	atomic_store(&dropped, 0);
	atomic_store(&timed_done, 0);
	REQUIRE(hr_mailbox_create(&mb, 16, drop_mail, NULL) == 0, "create");
	REQUIRE(hr_mailbox_fd(mb, &fd) == 0, "fd");
	producer p[PRODUCERS];
	pthread_t t[PRODUCERS];
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		last[i] = -1;
		p[i] = (producer) { .mb = mb, .id = i };
		REQUIRE(pthread_create(&t[i], NULL, produce_timed, &p[i]) == 0, "pthread_create");
	}
	while (atomic_load(&timed_done) < PRODUCERS) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 50) != 1)
			continue;
		if (++wakes % 7 == 0)
			(void)nanosleep(&stall, NULL);
		for (int i = 0; i < 32 || hr_mailbox_buffered(mb) > 0; i++) {
			if ((rv = hr_mailbox_recv(mb, &m, 0)) != 0) {
				CHECK(rv == HR_EAGAIN, "recv(0): %s", hr_strerror(rv));
				break;
			}
			take_timed(&m, last, &got, &order_errors);
		}
	}
	int accepted = 0, timed_out = 0, other = 0;
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		accepted += p[i].accepted;
		timed_out += p[i].closed;
		other += p[i].other;
	}
	/* Every scope has ended: the rest is in nng or crossing its threads. */
	while ((rv = hr_mailbox_recv(mb, &m, 1000)) == 0)
		take_timed(&m, last, &got, &order_errors);
	CHECK(rv == HR_ETIMEDOUT, "last recv: %s", hr_strerror(rv));
	hr_mailbox_destroy(mb);
	CHECK(order_errors == 0, "%d mails out of their sender's order", order_errors);
	CHECK(other == 0, "%d posts failed other than by timing out", other);
	CHECK(accepted + timed_out == PRODUCERS * PER_PRODUCER, "accepted %d + timed out %d",
	    accepted, timed_out);
	CHECK(got == accepted, "received %d != accepted %d", got, accepted);
	CHECK(atomic_load(&dropped) == 0, "%d mails left for destroy", atomic_load(&dropped));
}

int
main(void)
{
	/* All mail through, then close: recv drains and says HR_ECLOSED. */
	run(PRODUCERS * PER_PRODUCER);
	/* Close while producers are still posting (some blocked on a full box). */
	run(PRODUCERS * PER_PRODUCER / 3);
	run(1);
	/* Timed posts that give up, an fd-polled consumer. */
	run_timed();
	return stress_summary();
}
