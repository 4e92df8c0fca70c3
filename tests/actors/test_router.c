/*
 * test_router.c: the router actor (actors/router.c) driven against real
 * consumer actors that record every fan-out they receive.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/actor_impl.h"

/* ---------------------------------------------------------------- fixtures */

typedef struct consumer {
	hr_actor *actor;
	hr_fanout **got; /* kept alive until the test ends: pointers stay unique */
	size_t n, cap;
	atomic_int *gate; /* when set, the handler waits for it to be non-zero */
} consumer;

static void
on_event(hr_actor *self, void *state, hr_mail *m)
{
	consumer *c = state;
	if (c->gate != NULL)
		for (long i = 0; atomic_load(c->gate) == 0 && i < 2000000000L; i++)
			;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->got = realloc(c->got, c->cap * sizeof(*c->got));
		cr_assert_not_null(c->got);
	}
	c->got[c->n++] = m->p1;
	hr_fanout_answer(m->p1); /* handled: a consumer answers the reply */
}

static void
drop_event(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(m->p1);
}

static const hr_actor_fn consumer_handlers[] = { on_event };

static void
consumer_start(consumer *c, size_t cap)
{
	hr_actor_spec s = { .name = "test-consumer",
		.mailbox_capacity = cap,
		.state = c,
		.handlers = consumer_handlers,
		.n_handlers = 1,
		.drop = drop_event };
	cr_assert_eq(hr_actor_spawn(&c->actor, &s), 0);
}

static void
consumer_fini(consumer *c)
{
	for (size_t i = 0; i < c->n; i++)
		hr_fanout_free(c->got[i]);
	free(c->got);
}

typedef struct replies {
	atomic_int count;
	atomic_int ok, canceled, badname, noent, full, other;
	atomic_int last;
} replies;

static void
on_reply(void *arg, int status)
{
	replies *r = arg;
	atomic_store(&r->last, status);
	switch (status) {
	case 0:
		atomic_fetch_add(&r->ok, 1);
		break;
	case HR_ECANCELED:
		atomic_fetch_add(&r->canceled, 1);
		break;
	case HR_EBADNAME:
		atomic_fetch_add(&r->badname, 1);
		break;
	case HR_ENOENT:
		atomic_fetch_add(&r->noent, 1);
		break;
	case HR_EFULL:
		atomic_fetch_add(&r->full, 1);
		break;
	default:
		atomic_fetch_add(&r->other, 1);
		break;
	}
	atomic_fetch_add(&r->count, 1);
}

static void
wait_replies(replies *r, int n)
{
	for (int i = 0; atomic_load(&r->count) < n; i++) {
		cr_assert(i < 10000, "only %d of %d replies", atomic_load(&r->count), n);
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static hr_msg *
event_u64(uint64_t v)
{
	hr_msg *m;
	cr_assert_eq(hr_msg_copy(&v, sizeof(v), &m), 0);
	return m;
}

static uint64_t
event_value(const hr_msg *m)
{
	uint64_t v;
	cr_assert_eq(hr_msg_len(m), sizeof(v));
	memcpy(&v, hr_msg_data(m), sizeof(v));
	return v;
}

static hr_member
mem(uint16_t thread, uint16_t cons, uint64_t conn)
{
	hr_member m = { .thread = thread, .consumer = cons, .conn = conn };
	return m;
}

/* Sorted-membership check of one idlist against [lo, hi) stepping `step`. */
static void
assert_ids(const hr_idlist *l, uint64_t lo, uint64_t hi, uint64_t step)
{
	uint32_t want = 0;
	for (uint64_t v = lo; v < hi; v += step)
		want++;
	cr_assert_not_null(l);
	cr_assert_eq(l->n, want, "n=%u want %u", l->n, want);
	char *seen = calloc(hi, 1);
	for (uint32_t i = 0; i < l->n; i++) {
		uint64_t v = l->ids[i];
		cr_assert(v >= lo && v < hi && (v - lo) % step == 0, "stray id %llu",
		    (unsigned long long)v);
		cr_assert_eq(seen[v], 0);
		seen[v] = 1;
	}
	free(seen);
}

TestSuite(router, .timeout = 60);

/* ---------------------------------------------------------------- tests */

Test(router, one_mail_per_consumer_with_per_thread_id_lists)
{
	consumer c0 = { 0 }, c1 = { 0 };
	consumer_start(&c0, 64);
	consumer_start(&c1, 64);
	hr_actor *cs[] = { c0.actor, c1.actor };
	hr_router *r;
	replies rep = { 0 };
	cr_assert_eq(hr_router_create(&r, NULL, cs, 2, 0), 0);
	/* 10,000 members of consumer 0 over threads 0 and 1, 3 of consumer 1. */
	for (uint64_t i = 0; i < 10000; i++)
		cr_assert_eq(hr_router_group_add(r, "big", mem((uint16_t)(i % 2), 0, i), -1), 0);
	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(hr_router_group_add(r, "big", mem(1, 1, 100 + i), -1), 0);
	hr_msg *ev = event_u64(77);
	cr_assert_eq(hr_router_group_send(r, "big", ev, on_reply, &rep, -1), 0);
	hr_msg_unref(ev);
	wait_replies(&rep, 1);
	cr_assert_eq(atomic_load(&rep.ok), 1);
	hr_router_stats st;
	hr_router_get_stats(r, &st);
	cr_assert_eq(st.group_sends, 1);
	cr_assert_eq(st.fanouts, 2);
	cr_assert_eq(st.groups, 1);
	cr_assert_eq(st.members, 10003);
	cr_assert_eq(st.dropped, 0);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	hr_actor_join(c1.actor);
	cr_assert_eq(c0.n, 1);
	cr_assert_eq(c1.n, 1);
	hr_fanout *f = c0.got[0];
	cr_assert_eq(event_value(f->event), 77);
	cr_assert_eq(f->n_threads, 2);
	assert_ids(f->ids[0], 0, 10000, 2);
	assert_ids(f->ids[1], 1, 10000, 2);
	f = c1.got[0];
	cr_assert_eq(f->n_threads, 2);
	cr_assert_null(f->ids[0]);
	assert_ids(f->ids[1], 100, 103, 1);
	consumer_fini(&c0);
	consumer_fini(&c1);
}

Test(router, unchanged_membership_reuses_the_snapshot)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 64);
	hr_router *r;
	replies rep = { 0 };
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 0), 0);
	for (uint64_t i = 0; i < 100; i++)
		cr_assert_eq(hr_router_group_add(r, "g", mem((uint16_t)(i % 2), 0, i), -1), 0);
	hr_msg *ev = event_u64(1);
	cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, -1), 0);
	/* Only thread 0's membership changes. */
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1000), -1), 0);
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1000), -1), 0); /* twice: once */
	cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, -1), 0);
	hr_msg_unref(ev);
	wait_replies(&rep, 3);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	cr_assert_eq(c0.n, 3);
	cr_assert_eq(c0.got[0]->ids[0], c0.got[1]->ids[0]);
	cr_assert_eq(c0.got[0]->ids[1], c0.got[1]->ids[1]);
	cr_assert_neq(c0.got[1]->ids[0], c0.got[2]->ids[0]);
	cr_assert_eq(c0.got[1]->ids[1], c0.got[2]->ids[1]);
	cr_assert_eq(c0.got[1]->ids[0]->n, 50);
	cr_assert_eq(c0.got[2]->ids[0]->n, 51);
	/* The event itself is shared, never copied. */
	cr_assert_eq(c0.got[0]->event, c0.got[2]->event);
	consumer_fini(&c0);
}

Test(router, discard_and_conn_close_remove_memberships)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 64);
	hr_router *r;
	replies rep = { 0 };
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 0), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		cr_assert_eq(hr_router_conn_open(
		                 r, i == 2 ? "specific.x!2" : "specific.x!o", mem(0, 0, i), -1),
		    0);
		cr_assert_eq(hr_router_group_add(r, "G", mem(0, 0, i), -1), 0);
		cr_assert_eq(hr_router_group_add(r, "H", mem(0, 0, i), -1), 0);
	}
	cr_assert_eq(hr_router_group_discard(r, "G", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_group_discard(r, "G", mem(0, 0, 1), -1), 0); /* no-op */
	cr_assert_eq(hr_router_group_discard(r, "nope", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_conn_close(r, "specific.x!2", mem(0, 0, 2), -1), 0);
	hr_msg *ev = event_u64(5);
	cr_assert_eq(hr_router_group_send(r, "G", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send(r, "H", ev, on_reply, &rep, -1), 0);
	/* conn 2's channel is gone: no layer, so unknown. */
	cr_assert_eq(hr_router_send(r, "specific.x!2", ev, on_reply, &rep, -1), 0);
	wait_replies(&rep, 3);
	cr_assert_eq(atomic_load(&rep.ok), 2);
	cr_assert_eq(atomic_load(&rep.noent), 1);
	hr_router_stats st;
	hr_router_get_stats(r, &st);
	cr_assert_eq(st.members, 3); /* G:{3} H:{1,3} */
	cr_assert_eq(st.groups, 2);
	/* Emptying a group removes it. */
	cr_assert_eq(hr_router_conn_close(r, "specific.x!o", mem(0, 0, 3), -1), 0);
	cr_assert_eq(hr_router_group_send(r, "G", ev, on_reply, &rep, -1), 0);
	wait_replies(&rep, 4);
	hr_router_get_stats(r, &st);
	cr_assert_eq(st.members, 1);
	cr_assert_eq(st.groups, 1);
	hr_msg_unref(ev);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	cr_assert_eq(c0.n, 2); /* the last send to G had no local member */
	assert_ids(c0.got[0]->ids[0], 3, 4, 1);
	cr_assert_eq(c0.got[1]->ids[0]->n, 2);
	cr_assert(c0.got[1]->ids[0]->ids[0] + c0.got[1]->ids[0]->ids[1] == 4);
	consumer_fini(&c0);
}

Test(router, send_to_a_local_channel_reaches_only_that_member)
{
	consumer c0 = { 0 }, c1 = { 0 };
	consumer_start(&c0, 64);
	consumer_start(&c1, 64);
	hr_actor *cs[] = { c0.actor, c1.actor };
	hr_router *r;
	replies rep = { 0 };
	cr_assert_eq(hr_router_create(&r, NULL, cs, 2, 0), 0);
	cr_assert_eq(hr_router_conn_open(r, "specific.a!1", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_conn_open(r, "specific.a!2", mem(5, 1, 2), -1), 0);
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1), -1), 0);
	hr_msg *ev = event_u64(9);
	cr_assert_eq(hr_router_send(r, "specific.a!2", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_send(r, "specific.a!3", ev, on_reply, &rep, -1), 0);
	hr_msg_unref(ev);
	wait_replies(&rep, 2);
	cr_assert_eq(atomic_load(&rep.ok), 1);
	cr_assert_eq(atomic_load(&rep.noent), 1);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	hr_actor_join(c1.actor);
	cr_assert_eq(c0.n, 0);
	cr_assert_eq(c1.n, 1);
	cr_assert_eq(c1.got[0]->n_threads, 6);
	assert_ids(c1.got[0]->ids[5], 2, 3, 1);
	for (int t = 0; t < 5; t++)
		cr_assert_null(c1.got[0]->ids[t]);
	cr_assert_eq(event_value(c1.got[0]->event), 9);
	consumer_fini(&c0);
	consumer_fini(&c1);
}

Test(router, bad_names_and_members_are_refused)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 16);
	hr_router *r;
	replies rep = { 0 };
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 0), 0);
	cr_assert_eq(hr_router_group_add(r, "bad name", mem(0, 0, 1), 0), HR_EBADNAME);
	cr_assert_eq(hr_router_group_add(r, "", mem(0, 0, 1), 0), HR_EBADNAME);
	cr_assert_eq(hr_router_group_add(r, longname, mem(0, 0, 1), 0), HR_EBADNAME);
	cr_assert_eq(hr_router_group_add(r, "bang!no", mem(0, 0, 1), 0), HR_EBADNAME);
	cr_assert_eq(hr_router_conn_open(r, "sp ace", mem(0, 0, 1), 0), HR_EBADNAME);
	cr_assert_eq(hr_router_group_add(r, "ok", mem(0, 1, 1), 0), HR_EINVAL); /* consumer */
	cr_assert_eq(hr_router_group_add(r, "ok", mem(HR_MAX_THREADS, 0, 1), 0), HR_EINVAL);
	cr_assert_eq(hr_router_group_add(r, NULL, mem(0, 0, 1), 0), HR_EINVAL);
	hr_msg *ev = event_u64(1);
	cr_assert_eq(hr_router_group_send(r, "bad name", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send(r, longname, ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_send(r, "a b", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_send(r, longname, ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send(r, "empty", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send(r, "x", NULL, on_reply, &rep, -1), HR_EINVAL);
	hr_msg_unref(ev);
	wait_replies(&rep, 5);
	cr_assert_eq(atomic_load(&rep.badname), 4);
	cr_assert_eq(atomic_load(&rep.ok), 1); /* a group without members: 0 */
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	cr_assert_eq(c0.n, 0);
	cr_assert_eq(atomic_load(&rep.count), 5);
	consumer_fini(&c0);
}

/* Several threads group_send at once; each one's events arrive in order. */
#define SENDERS 4
#define PER_SENDER 400
typedef struct sender_ctx {
	hr_router *r;
	uint64_t id;
	replies *rep;
} sender_ctx;

static void *
sender(void *arg)
{
	sender_ctx *s = arg;
	for (uint64_t i = 0; i < PER_SENDER; i++) {
		hr_msg *ev = event_u64(s->id << 32 | i);
		cr_assert_eq(hr_router_group_send(s->r, "all", ev, on_reply, s->rep, -1), 0);
		hr_msg_unref(ev);
		if (i == PER_SENDER / 2) {
			/* Membership changes interleave with the sends. */
			cr_assert_eq(
			    hr_router_group_add(s->r, "all", mem(1, 0, 1000 + s->id), -1), 0);
		}
	}
	return NULL;
}

Test(router, concurrent_senders_keep_their_order)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 1024);
	hr_router *r;
	replies rep = { 0 };
	pthread_t t[SENDERS];
	sender_ctx sc[SENDERS];
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 256), 0);
	for (uint64_t i = 0; i < 50; i++)
		cr_assert_eq(hr_router_group_add(r, "all", mem(0, 0, i), -1), 0);
	for (uint64_t i = 0; i < SENDERS; i++) {
		sc[i] = (sender_ctx) { r, i, &rep };
		cr_assert_eq(pthread_create(&t[i], NULL, sender, &sc[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_join(t[i], NULL);
	wait_replies(&rep, SENDERS * PER_SENDER);
	cr_assert_eq(atomic_load(&rep.ok), SENDERS * PER_SENDER);
	hr_router_stats st;
	hr_router_get_stats(r, &st);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	cr_assert_eq(c0.n + st.dropped, SENDERS * PER_SENDER);
	cr_assert_eq(st.dropped, 0, "consumer with 1024 slots should keep up");
	uint64_t next[SENDERS] = { 0 };
	for (size_t i = 0; i < c0.n; i++) {
		uint64_t v = event_value(c0.got[i]->event), s = v >> 32, seq = v & 0xffffffffu;
		cr_assert(s < SENDERS);
		cr_assert_eq(seq, next[s], "sender %llu: got %llu, want %llu",
		    (unsigned long long)s, (unsigned long long)seq, (unsigned long long)next[s]);
		next[s]++;
		cr_assert_eq(c0.got[i]->ids[0]->n, 50);
	}
	consumer_fini(&c0);
}

Test(router, every_reply_fires_once_when_destroyed_with_requests_queued)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 4096);
	hr_router *r;
	replies rep = { 0 };
	int accepted = 0;
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 4096), 0);
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1), -1), 0);
	hr_msg *ev = event_u64(3);
	for (int i = 0; i < 3000; i++) {
		int rv = i % 2 ? hr_router_group_send(r, "g", ev, on_reply, &rep, 0)
		               : hr_router_send(r, "specific.q!1", ev, on_reply, &rep, 0);
		cr_assert(rv == 0 || rv == HR_EAGAIN);
		accepted += rv == 0;
	}
	hr_msg_unref(ev);
	hr_router_destroy(r);
	/* a group_send's reply travels with its fan-out: the consumer answers
	 * it, or its mailbox's drop does when it stops */
	hr_actor_join(c0.actor);
	cr_assert_eq(atomic_load(&rep.count), accepted);
	cr_assert_eq(
	    atomic_load(&rep.ok) + atomic_load(&rep.canceled) + atomic_load(&rep.noent), accepted);
	cr_assert_eq(atomic_load(&rep.other), 0);
	consumer_fini(&c0);
}

/* A reply callback runs on the router thread: holding it stalls the router. */
static atomic_int hold;
static void
holding_reply(void *arg, int status)
{
	for (long i = 0; atomic_load(&hold) == 0 && i < 2000000000L; i++)
		;
	on_reply(arg, status);
}

Test(router, full_router_mailbox_gives_eagain)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 16);
	hr_router *r;
	replies rep = { 0 };
	atomic_store(&hold, 0);
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 4), 0);
	hr_msg *ev = event_u64(1);
	cr_assert_eq(hr_router_group_send(r, "g", ev, holding_reply, &rep, -1), 0);
	int n = 0, rv = 0;
	while (n < 100 && (rv = hr_router_group_add(r, "g", mem(0, 0, (uint64_t)n), 20)) == 0)
		n++;
	cr_assert_eq(rv, HR_EAGAIN);
	/* The group_send is being handled: exactly the capacity is queued. */
	cr_assert_eq(n, 4, "accepted %d", n);
	cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, 0), HR_EAGAIN);
	atomic_store(&hold, 1);
	wait_replies(&rep, 1);
	hr_msg_unref(ev);
	hr_router_destroy(r);
	cr_assert_eq(atomic_load(&rep.count), 1); /* refused requests never reply */
	hr_actor_join(c0.actor);
	consumer_fini(&c0);
}

Test(router, full_consumer_mailbox_counts_a_drop)
{
	consumer c0 = { 0 };
	atomic_int gate;
	atomic_init(&gate, 0);
	c0.gate = &gate;
	consumer_start(&c0, 1);
	hr_router *r;
	replies rep = { 0 };
	cr_assert_eq(hr_router_create(&r, NULL, &c0.actor, 1, 0), 0);
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_conn_open(r, "specific.d!1", mem(0, 0, 1), -1), 0);
	hr_msg *ev = event_u64(1);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_send(r, "specific.d!1", ev, on_reply, &rep, -1), 0);
	hr_msg_unref(ev);
	/* A fan-out's reply comes from the consumer that handles it, so the
	 * gated consumer holds back the replies of the fan-outs it has: 1 in
	 * its handler + at most the capacity (1) queued. Every other reply
	 * comes now, from the router, in order: the single send's (full)
	 * last, as it was posted last. */
	for (int i = 0; atomic_load(&rep.full) == 0; i++) {
		cr_assert(i < 10000, "the single send was never answered");
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(atomic_load(&rep.full), 1, "the single send met a full consumer");
	hr_router_stats st;
	hr_router_get_stats(r, &st);
	cr_assert(st.dropped >= 21 - 1 - 1, "dropped %llu", (unsigned long long)st.dropped);
	cr_assert_eq(st.fanouts + st.dropped, 21);
	cr_assert_eq(atomic_load(&rep.count), (int)st.dropped, "only the dropped are answered yet");
	atomic_store(&gate, 1);
	wait_replies(&rep, 21);
	cr_assert_eq(atomic_load(&rep.ok) + atomic_load(&rep.full), 21);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	cr_assert_eq(c0.n, st.fanouts);
	consumer_fini(&c0);
}

/* ---------------------------------------------------------------- hooks */

typedef struct hook_log {
	pthread_mutex_t mu;
	char lines[64][128];
	int n;
} hook_log;

static void
hook_push(hook_log *h, const char *what, const char *group)
{
	pthread_mutex_lock(&h->mu);
	if (h->n < 64)
		snprintf(h->lines[h->n++], sizeof(h->lines[0]), "%s %s", what, group);
	pthread_mutex_unlock(&h->mu);
}

static void
hk_joined(void *arg, const char *group)
{
	hook_push(arg, "join", group);
}

static void
hk_left(void *arg, const char *group)
{
	hook_push(arg, "leave", group);
}

static void
hk_sent(void *arg, const char *group, hr_msg *ev)
{
	char what[32];
	snprintf(what, sizeof(what), "sent%llu", (unsigned long long)event_value(ev));
	hook_push(arg, what, group);
}

Test(router, hooks_report_first_join_last_leave_and_federated_sends)
{
	consumer c0 = { 0 };
	consumer_start(&c0, 64);
	hr_actor *cs[] = { c0.actor };
	hr_router *r;
	replies rep = { 0 };
	hook_log h = { .mu = PTHREAD_MUTEX_INITIALIZER };
	hr_router_hooks hooks = {
		.arg = &h, .group_joined = hk_joined, .group_left = hk_left, .group_sent = hk_sent
	};

	cr_assert_eq(hr_router_create(&r, NULL, cs, 1, 0), 0);
	cr_assert_eq(hr_router_group_add(r, "early", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_set_hooks(r, &hooks, -1), 0); /* "early" reported at once */
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 1), -1), 0);
	cr_assert_eq(hr_router_group_add(r, "g", mem(0, 0, 2), -1), 0); /* not first */
	hr_msg *ev = event_u64(5);
	cr_assert_eq(hr_router_group_send(r, "g", ev, on_reply, &rep, -1), 0);
	cr_assert_eq(hr_router_group_send_local(r, "g", ev, on_reply, &rep, -1), 0); /* no hook */
	cr_assert_eq(hr_router_group_send(r, "nobody", ev, on_reply, &rep, -1), 0);
	hr_msg_unref(ev);
	cr_assert_eq(hr_router_group_discard(r, "g", mem(0, 0, 1), -1), 0); /* not last */
	cr_assert_eq(hr_router_conn_close(r, "x", mem(0, 0, 2), -1), 0);    /* last of g */
	cr_assert_eq(hr_router_conn_close(r, "x", mem(0, 0, 1), -1), 0);    /* last of early */
	wait_replies(&rep, 3);
	cr_assert_eq(atomic_load(&rep.ok), 3);
	hr_router_destroy(r);
	hr_actor_join(c0.actor);
	const char *want[]
	    = { "join early", "join g", "sent5 g", "sent5 nobody", "leave g", "leave early" };
	cr_assert_eq(h.n, 6, "got %d hook calls", h.n);
	for (int i = 0; i < 6; i++)
		cr_assert_str_eq(h.lines[i], want[i]);
	cr_assert_eq(c0.n, 2); /* both g sends fanned out locally */
	consumer_fini(&c0);
}
