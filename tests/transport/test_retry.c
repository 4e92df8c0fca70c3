/*
 * test_retry.c: an I/O thread never waits on the router (transport/post.c
 * hr_post__request, hr_post__retry, hr_post__reply). A real
 * router is held busy (its reply callback blocks its thread) so that its real
 * mailbox fills; requests that find no room are kept, in order, and reach the
 * router once it has room again, each reply firing once; an HTTP reply that
 * finds the I/O thread's mailbox full waits on the late list.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/transport_impl.h"

TestSuite(retry, .timeout = 30);

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The consumer: records the value of every fan-out's event, in order. */
typedef struct consumer {
	hr_actor *actor;
	atomic_int n;
	uint64_t got[256];
} consumer;

static void
on_event(hr_actor *self, void *state, hr_mail *m)
{
	consumer *c = state;
	hr_fanout *f = m->p1;
	uint64_t v;
	(void)self;
	memcpy(&v, hr_msg_data(f->event), sizeof(v));
	int i = atomic_load(&c->n);
	if (i < 256)
		c->got[i] = v;
	atomic_store(&c->n, i + 1);
	hr_fanout_free(f);
}

static void
drop_event(void *arg, hr_mail *m)
{
	(void)arg;
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(m->p1);
}

static const hr_actor_fn handlers[] = { on_event };

static atomic_int hold, replies_ok, replies_other;

/* Runs on the router's thread: holds it until `hold` is set. */
static void
holding_reply(void *arg, int status)
{
	(void)arg;
	(void)status;
	for (int i = 0; atomic_load(&hold) == 0 && i < 20000; i++)
		sleep_ms(1);
}

static void
count_reply(void *arg, int status)
{
	(void)arg;
	atomic_fetch_add(status == 0 ? &replies_ok : &replies_other, 1);
}

static hr_msg *
event_u64(uint64_t v)
{
	hr_msg *m;
	cr_assert_eq(hr_msg_copy(&v, sizeof(v), &m), 0);
	return m;
}

static hr_node node; /* big: static */

Test(retry, a_full_router_mailbox_keeps_requests_in_order_and_loses_none)
{
	consumer c = { 0 };
	hr_actor_spec s = { .name = "test-consumer",
		.mailbox_capacity = 256,
		.state = &c,
		.handlers = handlers,
		.n_handlers = 1,
		.drop = drop_event };
	hr_router *r;
	hr_iothread t;

	cr_assert_eq(hr_actor_spawn(&c.actor, &s), 0);
	cr_assert_eq(hr_router_create(&r, NULL, &c.actor, 1, 4), 0);
	memset(&t, 0, sizeof(t));
	node.router = r;
	t.node = &node;
	hr_member m = { .thread = 0, .consumer = 0, .conn = 7 };
	cr_assert_eq(hr_router_group_add(r, "g", m, -1), 0);
	/* hold the router's thread: its mailbox (4) fills */
	atomic_store(&hold, 0);
	hr_msg *first = event_u64(1000);
	cr_assert_eq(hr_router_group_send(r, "other", first, holding_reply, NULL, -1), 0);
	hr_msg_unref(first);
	sleep_ms(20);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < 40; i++) {
		hr_msg *ev = event_u64(i);
		cr_assert_eq(hr_post__request(&t, HR_REQ_GROUP_SEND, "g", (hr_member) { 0 }, ev,
		                 count_reply, NULL),
		    0);
		hr_msg_unref(ev); /* the kept request holds its own reference */
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* never waited: 40 requests against a full mailbox took no time */
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(took, 0.05, "requests took %.3f s", took);
	cr_assert_eq(t.n_retry, 36, "kept %zu", t.n_retry);
	hr_post__retry(&t); /* still no room: nothing moves, nothing waits */
	cr_assert_eq(t.n_retry, 36);

	atomic_store(&hold, 1);
	for (int i = 0; t.n_retry > 0 && i < 2000; i++) {
		hr_post__retry(&t);
		sleep_ms(1);
	}
	cr_assert_eq(t.n_retry, 0);
	cr_assert_null(t.retry_head);
	cr_assert_null(t.retry_tail);
	for (int i = 0; atomic_load(&replies_ok) < 40 && i < 5000; i++)
		sleep_ms(1);
	cr_assert_eq(atomic_load(&replies_ok), 40);
	cr_assert_eq(atomic_load(&replies_other), 0);
	for (int i = 0; atomic_load(&c.n) < 40 && i < 5000; i++)
		sleep_ms(1);
	cr_assert_eq(atomic_load(&c.n), 40);
	for (uint64_t i = 0; i < 40; i++)
		cr_assert_eq(c.got[i], i, "fan-out %llu carried %llu", (unsigned long long)i,
		    (unsigned long long)c.got[i]);
	hr_router_destroy(r);
	hr_actor_join(c.actor);
}

Test(retry, a_reply_that_finds_the_mailbox_full_waits_on_the_late_list)
{
	hr_iothread t;
	hr_mail m;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(pthread_mutex_init(&t.late_mu, NULL), 0);
	cr_assert_eq(hr_mailbox_create(&t.mbox, 1, NULL, NULL), 0);
	hr_post__reply(&t, 5, 0);
	hr_post__reply(&t, 6, HR_EFULL); /* no room: kept, at once */
	cr_assert_not_null(t.late);
	cr_assert_eq(t.late->conn, 6);
	cr_assert_eq(t.late->status, HR_EFULL);
	cr_assert_null(t.late->next);
	/* a posted mail crosses nng's threads: wait for it */
	cr_assert_eq(hr_mailbox_recv(t.mbox, &m, 1000), 0);
	cr_assert_eq(m.u64, 5);
	cr_assert_eq(hr_mailbox_recv(t.mbox, &m, 0), HR_EAGAIN);
	free(t.late);
	hr_mailbox_destroy(t.mbox);
	pthread_mutex_destroy(&t.late_mu);
}
