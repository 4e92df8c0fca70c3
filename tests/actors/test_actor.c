/*
 * test_actor.c: hr_actor_* (actors/actor.c): handlers in order on the actor
 * thread, on_start/on_stop, stop as a message, refusal after stop, drops,
 * actors posting to actors.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "actors/actor_impl.h"

typedef struct rec {
	pthread_t self; /* the actor thread, from on_start */
	bool on_thread; /* every callback ran on that thread */
	int starts, stops;
	int handled_a, handled_b;
	uint64_t next; /* expected u64 of the next kind-A mail */
	bool in_order;
	int stop_seen_after; /* handled_a when on_stop ran */
	atomic_int drops;
	hr_actor *forward; /* kind-B mail is passed on to this actor */
} rec;

static void
check_thread(rec *r)
{
	if (!pthread_equal(r->self, pthread_self()))
		r->on_thread = false;
}

static void
on_start(hr_actor *self, void *state)
{
	rec *r = state;
	r->self = pthread_self();
	r->starts++;
}

static void
on_stop(hr_actor *self, void *state)
{
	rec *r = state;
	check_thread(r);
	r->stops++;
	r->stop_seen_after = r->handled_a;
}

static void
handle_a(hr_actor *self, void *state, hr_mail *m)
{
	rec *r = state;
	check_thread(r);
	if (m->u64 != r->next)
		r->in_order = false;
	r->next = m->u64 + 1;
	r->handled_a++;
	free(m->p1);
}

static void
handle_b(hr_actor *self, void *state, hr_mail *m)
{
	rec *r = state;
	check_thread(r);
	r->handled_b++;
	if (r->forward != NULL) {
		hr_mail fwd = { .kind = HR_MAIL_USER, .u64 = m->u64 };
		cr_assert_eq(hr_actor_send(r->forward, &fwd, -1), 0);
	}
}

static void
drop(void *arg, hr_mail *m)
{
	rec *r = arg;
	atomic_fetch_add(&r->drops, 1);
	free(m->p1);
}

static const hr_actor_fn handlers[] = { handle_a, handle_b, NULL };

static hr_actor_spec
spec_for(rec *r, size_t cap)
{
	*r = (rec) { .on_thread = true, .in_order = true };
	atomic_init(&r->drops, 0);
	hr_actor_spec s = { .name = "test-actor",
		.mailbox_capacity = cap,
		.state = r,
		.handlers = handlers,
		.n_handlers = 3,
		.on_start = on_start,
		.on_stop = on_stop,
		.drop = drop };
	return s;
}

TestSuite(actor, .timeout = 30);

Test(actor, handlers_run_in_order_on_the_actor_thread)
{
	rec r;
	hr_actor_spec s = spec_for(&r, 64);
	hr_actor *a;
	cr_assert_eq(hr_actor_spawn(&a, &s), 0);
	cr_assert_str_eq(hr_actor_name(a), "test-actor");
	for (uint64_t i = 0; i < 1000; i++) {
		hr_mail m = { .kind = HR_MAIL_USER, .u64 = i, .p1 = malloc(8) };
		cr_assert_eq(hr_actor_send(a, &m, -1), 0);
		if (i % 100 == 0) {
			hr_mail b = { .kind = HR_MAIL_USER + 1 };
			cr_assert_eq(hr_actor_send(a, &b, -1), 0);
		}
	}
	hr_actor_join(a);
	cr_assert_eq(r.starts, 1);
	cr_assert_eq(r.stops, 1);
	cr_assert_eq(r.handled_a, 1000);
	cr_assert_eq(r.handled_b, 10);
	cr_assert(r.in_order);
	cr_assert(r.on_thread);
	cr_assert_eq(atomic_load(&r.drops), 0);
}

Test(actor, stop_handles_all_10000_mails_in_flight)
{
	rec r;
	hr_actor_spec s = spec_for(&r, 0); /* default capacity */
	hr_actor *a;
	cr_assert_eq(hr_actor_spawn(&a, &s), 0);
	for (uint64_t i = 0; i < 10000; i++) {
		hr_mail m = { .kind = HR_MAIL_USER, .u64 = i, .p1 = malloc(16) };
		cr_assert_eq(hr_actor_send(a, &m, -1), 0);
	}
	hr_actor_stop(a);
	hr_actor_stop(a); /* idempotent */
	hr_mail late = { .kind = HR_MAIL_USER, .u64 = 424242 };
	cr_assert_eq(hr_actor_send(a, &late, 0), HR_ECLOSED);
	cr_assert_eq(hr_actor_send(a, &late, -1), HR_ECLOSED);
	hr_actor_join(a);
	cr_assert_eq(r.handled_a, 10000);
	cr_assert_eq(r.stop_seen_after, 10000);
	cr_assert(r.in_order);
	cr_assert_eq(r.stops, 1);
	cr_assert_eq(atomic_load(&r.drops), 0);
}

Test(actor, unknown_kinds_are_dropped_not_handled)
{
	rec r;
	hr_actor_spec s = spec_for(&r, 16);
	hr_actor *a;
	cr_assert_eq(hr_actor_spawn(&a, &s), 0);
	hr_mail m1 = { .kind = HR_MAIL_USER + 2, .p1 = malloc(4) }; /* NULL entry */
	hr_mail m2 = { .kind = HR_MAIL_USER + 3, .p1 = malloc(4) }; /* past the table */
	hr_mail m3 = { .kind = 5, .p1 = malloc(4) };                /* runtime range */
	cr_assert_eq(hr_actor_send(a, &m1, -1), 0);
	cr_assert_eq(hr_actor_send(a, &m2, -1), 0);
	cr_assert_eq(hr_actor_send(a, &m3, -1), 0);
	hr_actor_join(a);
	cr_assert_eq(atomic_load(&r.drops), 3);
	cr_assert_eq(r.handled_a + r.handled_b, 0);
}

Test(actor, stop_mail_kind_stops_in_order)
{
	rec r;
	hr_actor_spec s = spec_for(&r, 16);
	hr_actor *a;
	cr_assert_eq(hr_actor_spawn(&a, &s), 0);
	hr_mail m = { .kind = HR_MAIL_USER, .u64 = 0 };
	cr_assert_eq(hr_actor_send(a, &m, -1), 0);
	hr_mail stop = { .kind = HR_MAIL_STOP };
	cr_assert_eq(hr_actor_send(a, &stop, -1), 0);
	m.u64 = 1;
	cr_assert_eq(hr_actor_send(a, &m, -1), HR_ECLOSED);
	hr_actor_join(a);
	cr_assert_eq(r.handled_a, 1);
	cr_assert_eq(r.stops, 1);
}

Test(actor, handler_posts_to_another_actor)
{
	rec r1, r2;
	hr_actor_spec s1 = spec_for(&r1, 32);
	hr_actor_spec s2 = spec_for(&r2, 32);
	hr_actor *a1, *a2;
	cr_assert_eq(hr_actor_spawn(&a2, &s2), 0);
	r1.forward = a2;
	cr_assert_eq(hr_actor_spawn(&a1, &s1), 0);
	for (uint64_t i = 0; i < 500; i++) {
		hr_mail m = { .kind = HR_MAIL_USER + 1, .u64 = i };
		cr_assert_eq(hr_actor_send(a1, &m, -1), 0);
	}
	hr_actor_join(a1); /* a1 handled all, so a2 got all before its stop */
	hr_actor_join(a2);
	cr_assert_eq(r1.handled_b, 500);
	cr_assert_eq(r2.handled_a, 500);
	cr_assert(r2.in_order);
	cr_assert_eq(r1.stops + r2.stops, 2);
}

typedef struct blocked_state {
	atomic_int gate;    /* 1: let the handler return */
	atomic_int entered; /* handler calls so far */
} blocked_state;

static void
blocked_handler(hr_actor *self, void *state, hr_mail *m)
{
	blocked_state *b = state;
	atomic_fetch_add(&b->entered, 1);
	for (long i = 0; atomic_load(&b->gate) == 0 && i < 1000000000L; i++)
		;
}

Test(actor, full_actor_mailbox_gives_eagain_and_join_drops_nothing_handled)
{
	blocked_state b;
	atomic_init(&b.gate, 0);
	atomic_init(&b.entered, 0);
	const hr_actor_fn h[] = { blocked_handler };
	hr_actor_spec s = { .name = "blocked",
		.mailbox_capacity = 4,
		.state = &b,
		.handlers = h,
		.n_handlers = 1 };
	hr_actor *a;
	cr_assert_eq(hr_actor_spawn(&a, &s), 0);
	hr_mail m = { .kind = HR_MAIL_USER };
	/* The first mail is taken and held by the handler... */
	cr_assert_eq(hr_actor_send(a, &m, 0), 0);
	for (int i = 0; i < 5000 && atomic_load(&b.entered) == 0; i++)
		hr_sys__sleep_ms(1);
	cr_assert_eq(atomic_load(&b.entered), 1);
	/* ...so the mailbox takes exactly its capacity more. */
	int n = 0, rv;
	while (n < 100 && (rv = hr_actor_send(a, &m, 0)) == 0)
		n++;
	cr_assert_eq(rv, HR_EAGAIN);
	cr_assert_eq(n, 4, "accepted %d", n);
	cr_assert_eq(hr_actor_send(a, &m, 30), HR_ETIMEDOUT);
	atomic_store(&b.gate, 1);
	hr_actor_join(a);
	cr_assert_eq(atomic_load(&b.entered), 1 + 4, "every accepted mail was handled");
}

Test(actor, spawn_refuses_bad_spec)
{
	hr_actor *a = NULL;
	hr_actor_spec s = { .name = "x", .n_handlers = 2, .handlers = NULL };
	cr_assert_eq(hr_actor_spawn(&a, &s), HR_EINVAL);
	cr_assert_eq(hr_actor_spawn(&a, NULL), HR_EINVAL);
	hr_actor_spec big = { .name = "x", .mailbox_capacity = HR_MAILBOX_MAX_CAPACITY + 1 };
	cr_assert_eq(hr_actor_spawn(&a, &big), HR_EINVAL);
	cr_assert_null(a);
	hr_actor_join(NULL);
}
