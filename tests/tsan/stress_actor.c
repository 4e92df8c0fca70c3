/*
 * stress_actor.c: hr_actor under TSan. Four threads keep 10,000 mails in
 * flight towards an actor whose handler is held back by a gate, and the actor
 * is stopped while they are queued and while senders are still posting. Every
 * accepted mail must be handled or dropped exactly once, in each sender's
 * order, everything accepted before the stop must be handled (also mail that
 * was still in a sender's unsent batch when the stop came: half the senders
 * post in batch scopes), and on_start / on_stop must run once each on the
 * actor's thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "actors/actor_impl.h"
#include "tsan/stress.h"

#define SENDERS 4
#define PER_SENDER 2500 /* 10,000 mails in flight */

typedef struct state {
	/* Touched only on the actor thread (TSan checks that claim too). */
	uint64_t next[SENDERS];
	int handled, order_errors, bad_payload, starts, stops;
	pthread_t thread;
	int wrong_thread;
	/* Shared with the test. */
	atomic_int gate;
	atomic_int handled_pub;
	atomic_int dropped;
} state;

static void
on_start(hr_actor *self, void *arg)
{
	state *s = arg;
	s->starts++;
	s->thread = pthread_self();
}

static void
on_stop(hr_actor *self, void *arg)
{
	state *s = arg;
	s->stops++;
	if (!pthread_equal(s->thread, pthread_self()))
		s->wrong_thread++;
}

static void
on_mail(hr_actor *self, void *arg, hr_mail *m)
{
	state *s = arg;
	for (int i = 0; atomic_load(&s->gate) == 0 && i < 20000; i++)
		stress_sleep_ms(1);
	if (!pthread_equal(s->thread, pthread_self()))
		s->wrong_thread++;
	if (m->u32 >= SENDERS || m->u64 != s->next[m->u32])
		s->order_errors++;
	else
		s->next[m->u32]++;
	if (m->p1 == NULL || *(uint64_t *)m->p1 != m->u64)
		s->bad_payload++;
	free(m->p1);
	s->handled++;
	atomic_fetch_add(&s->handled_pub, 1);
}

static void
on_drop(void *arg, hr_mail *m)
{
	state *s = arg;
	free(m->p1);
	atomic_fetch_add(&s->dropped, 1);
}

static const hr_actor_fn handlers[] = { on_mail };

typedef struct sender {
	hr_actor *a;
	uint32_t id;
	atomic_int *accepted_total;
	int accepted, closed, other;
} sender;

static void *
send_all(void *arg)
{
	sender *s = arg;
	/* Odd senders post in batch scopes of 50, as an actor's drain does. */
	bool scoped = s->id % 2 == 1;
	if (scoped)
		hr_mailbox_batch_begin();
	for (uint64_t i = 0; i < PER_SENDER; i++) {
		if (scoped && i % 50 == 0) {
			hr_mailbox_batch_end();
			hr_mailbox_batch_begin();
		}
		uint64_t *payload = malloc(sizeof(*payload));
		if (payload == NULL) {
			s->other++;
			break;
		}
		*payload = i;
		hr_mail m = { .kind = HR_MAIL_USER, .u32 = s->id, .u64 = i, .p1 = payload };
		int rv = hr_actor_send(s->a, &m, 20000);
		if (rv == 0) {
			s->accepted++;
			atomic_fetch_add(s->accepted_total, 1);
			continue;
		}
		free(payload);
		if (rv == HR_ECLOSED)
			s->closed++;
		else
			s->other++;
		break;
	}
	if (scoped)
		hr_mailbox_batch_end();
	return NULL;
}

/* stop_at: stop once this many mails were accepted (the gate opens then). */
static void
run(int capacity, int stop_at)
{
	state st = { 0 };
	atomic_int accepted_total = 0;
	hr_actor_spec spec = { .name = "stress-actor",
		.mailbox_capacity = capacity,
		.state = &st,
		.handlers = handlers,
		.n_handlers = 1,
		.on_start = on_start,
		.on_stop = on_stop,
		.drop = on_drop };
	hr_actor *a;
	REQUIRE(hr_actor_spawn(&a, &spec) == 0, "spawn");
	sender s[SENDERS];
	pthread_t t[SENDERS];
	for (uint32_t i = 0; i < SENDERS; i++) {
		s[i] = (sender) { .a = a, .id = i, .accepted_total = &accepted_total };
		REQUIRE(pthread_create(&t[i], NULL, send_all, &s[i]) == 0, "pthread_create");
	}
	/* Let the mailbox fill while the handler is held, then stop mid-stream. */
	CHECK(stress_wait_at_least(&accepted_total, stop_at, 60000), "only %d accepted",
	    atomic_load(&accepted_total));
	int accepted_before_stop = atomic_load(&accepted_total);
	hr_actor_stop(a);
	atomic_store(&st.gate, 1);
	int accepted = 0, closed = 0, other = 0;
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(t[i], NULL);
		accepted += s[i].accepted;
		closed += s[i].closed;
		other += s[i].other;
	}
	hr_actor_join(a);
	/* After join the actor thread is gone: its state is ours to read. */
	CHECK(st.starts == 1 && st.stops == 1, "on_start %d, on_stop %d", st.starts, st.stops);
	CHECK(st.wrong_thread == 0, "%d calls off the actor thread", st.wrong_thread);
	CHECK(st.order_errors == 0, "%d mails out of their sender's order", st.order_errors);
	CHECK(st.bad_payload == 0, "%d mails with a wrong payload", st.bad_payload);
	CHECK(other == 0, "%d sends failed unexpectedly", other);
	CHECK(st.handled + atomic_load(&st.dropped) == accepted,
	    "handled %d + dropped %d != accepted %d", st.handled, atomic_load(&st.dropped),
	    accepted);
	CHECK(st.handled >= accepted_before_stop, "handled %d < accepted before stop %d",
	    st.handled, accepted_before_stop);
	CHECK(accepted == SENDERS * PER_SENDER || closed > 0,
	    "accepted %d of %d with no HR_ECLOSED", accepted, SENDERS * PER_SENDER);
}

int
main(void)
{
	/* Room for all 10,000: stop with every one of them queued. */
	run(8192, 8192);
	/* A small box: senders block, the stop lands among blocked posts. */
	run(64, 64);
	run(1024, 1000);
	return stress_summary();
}
