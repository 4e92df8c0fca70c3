/*
 * stress_router.c: the router under TSan. Four threads group_send while two
 * others join and leave the group (and open and close connections); every
 * accepted request's reply must fire exactly once. Then the router is
 * destroyed with requests still queued behind a held consumer: each of those
 * replies must still fire exactly once (delivered or HR_ECANCELED).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "tsan/stress.h"

#define SENDERS 4
#define PER_SENDER 1500
#define CHURNERS 2
#define CHURN 600
#define QUEUED 2000

/* One slot per request: how many times its reply fired, with what. */
typedef struct slot {
	atomic_int fired;
	atomic_int status;
	bool accepted;
} slot;

static atomic_int replies_total;

static void
on_reply(void *arg, int status)
{
	slot *s = arg;
	atomic_fetch_add(&replies_total, 1);
	atomic_store(&s->status, status);
	atomic_fetch_add(&s->fired, 1);
}

/* A consumer actor that counts fan-outs and frees them; optionally gated. */
typedef struct consumer {
	hr_actor *actor;
	atomic_int *gate;
	int events; /* actor thread only */
	atomic_int events_pub;
} consumer;

static void
on_event(hr_actor *self, void *arg, hr_mail *m)
{
	consumer *c = arg;
	for (int i = 0; c->gate != NULL && atomic_load(c->gate) == 0 && i < 20000; i++)
		stress_sleep_ms(1);
	hr_fanout *f = m->p1;
	/* Read the shared, refcounted contents the router published. */
	volatile size_t sum = hr_msg_len(f->event);
	for (uint32_t t = 0; t < f->n_threads; t++)
		if (f->ids[t] != NULL)
			sum += f->ids[t]->n;
	(void)sum;
	hr_fanout_free(f);
	c->events++;
	atomic_fetch_add(&c->events_pub, 1);
}

static void
on_drop(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(m->p1);
}

static const hr_actor_fn handlers[] = { on_event };

static void
consumer_start(consumer *c, size_t cap, atomic_int *gate)
{
	c->gate = gate;
	hr_actor_spec s = { .name = "stress-consumer",
		.mailbox_capacity = cap,
		.state = c,
		.handlers = handlers,
		.n_handlers = 1,
		.drop = on_drop };
	REQUIRE(hr_actor_spawn(&c->actor, &s) == 0, "consumer spawn");
}

static hr_member
mem(uint16_t thread, uint16_t cons, uint64_t conn)
{
	hr_member m = { .thread = thread, .consumer = cons, .conn = conn };
	return m;
}

static hr_msg *
event(uint64_t v)
{
	hr_msg *m;
	if (hr_msg_copy(&v, sizeof(v), &m) != 0)
		return NULL;
	return m;
}

typedef struct sender {
	hr_router *r;
	slot *slots;
	int id, failed;
} sender;

static void *
send_main(void *arg)
{
	sender *s = arg;
	for (int i = 0; i < PER_SENDER; i++) {
		hr_msg *ev = event((uint64_t)s->id << 32 | (uint64_t)i);
		if (ev == NULL) {
			s->failed++;
			continue;
		}
		slot *sl = &s->slots[i];
		int rv = (i % 5 == 0) ? hr_router_send(s->r, "chan.x", ev, on_reply, sl, 10000)
		                      : hr_router_group_send(s->r, "g", ev, on_reply, sl, 10000);
		hr_msg_unref(ev); /* the router took its own reference */
		if (rv == 0)
			sl->accepted = true;
		else
			s->failed++;
	}
	return NULL;
}

typedef struct churner {
	hr_router *r;
	int id, failed;
} churner;

static void *
churn_main(void *arg)
{
	churner *c = arg;
	for (int i = 0; i < CHURN; i++) {
		hr_member m = mem((uint16_t)(c->id % 2), (uint16_t)(i % 2), 1000u * c->id + i % 50);
		char chan[32];
		snprintf(chan, sizeof(chan), "chan.%d.%d", c->id, i % 50);
		int rv = hr_router_group_add(c->r, "g", m, 10000);
		rv = rv ? rv : hr_router_conn_open(c->r, chan, m, 10000);
		if (i % 3 == 0) {
			rv = rv ? rv : hr_router_group_discard(c->r, "g", m, 10000);
			rv = rv ? rv : hr_router_conn_close(c->r, chan, m, 10000);
		}
		if (rv != 0)
			c->failed++;
	}
	return NULL;
}

static void
check_slots(const char *what, slot *slots, int n, int *ok, int *canceled)
{
	int never = 0, twice = 0, unaccepted = 0, other = 0;
	for (int i = 0; i < n; i++) {
		int f = atomic_load(&slots[i].fired);
		if (!slots[i].accepted) {
			unaccepted += f != 0;
			continue;
		}
		never += f == 0;
		twice += f > 1;
		int st = atomic_load(&slots[i].status);
		if (st == 0)
			(*ok)++;
		else if (st == HR_ECANCELED)
			(*canceled)++;
		else
			other++;
	}
	CHECK(never == 0, "%s: %d accepted requests never answered", what, never);
	CHECK(twice == 0, "%s: %d requests answered more than once", what, twice);
	CHECK(unaccepted == 0, "%s: %d refused requests answered", what, unaccepted);
	CHECK(other == 0, "%s: %d replies neither 0 nor HR_ECANCELED", what, other);
}

static void
concurrent(void)
{
	consumer c[2] = { 0 };
	consumer_start(&c[0], 4096, NULL);
	consumer_start(&c[1], 4096, NULL);
	hr_actor *acts[2] = { c[0].actor, c[1].actor };
	hr_router *r;
	REQUIRE(hr_router_create(&r, NULL, acts, 2, 256) == 0, "router create");
	REQUIRE(hr_router_conn_open(r, "chan.x", mem(0, 0, 7), -1) == 0, "conn_open");
	REQUIRE(hr_router_group_add(r, "g", mem(0, 0, 7), -1) == 0, "group_add");

	slot *slots = calloc(SENDERS * PER_SENDER, sizeof(*slots));
	REQUIRE(slots != NULL, "calloc");
	sender s[SENDERS];
	churner ch[CHURNERS];
	pthread_t ts[SENDERS], tc[CHURNERS];
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (sender) { .r = r, .slots = slots + i * PER_SENDER, .id = i };
		REQUIRE(pthread_create(&ts[i], NULL, send_main, &s[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < CHURNERS; i++) {
		ch[i] = (churner) { .r = r, .id = i + 1 };
		REQUIRE(pthread_create(&tc[i], NULL, churn_main, &ch[i]) == 0, "pthread_create");
	}
	int failed = 0;
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(ts[i], NULL);
		failed += s[i].failed;
	}
	for (int i = 0; i < CHURNERS; i++) {
		pthread_join(tc[i], NULL);
		failed += ch[i].failed;
	}
	CHECK(failed == 0, "%d requests refused", failed);
	/* Let the router answer everything before destroy (which would cancel
	 * whatever is still queued). */
	CHECK(stress_wait_at_least(&replies_total, SENDERS * PER_SENDER - failed, 60000),
	    "only %d replies", atomic_load(&replies_total));
	/* Stats are read with atomics from any thread while the router runs. */
	hr_router_stats st;
	hr_router_get_stats(r, &st);
	hr_router_destroy(r);
	int ok = 0, canceled = 0;
	check_slots("concurrent", slots, SENDERS * PER_SENDER, &ok, &canceled);
	CHECK(ok + canceled == SENDERS * PER_SENDER, "%d ok + %d canceled", ok, canceled);
	CHECK(canceled == 0, "%d canceled although every request was answered before destroy",
	    canceled);
	hr_actor_join(c[0].actor);
	hr_actor_join(c[1].actor);
	CHECK(c[0].events > 0, "consumer 0 got no fan-out");
	free(slots);
}

static void *
open_gate_later(void *arg)
{
	stress_sleep_ms(50);
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

static void
destroy_with_queue(void)
{
	atomic_int gate = 0;
	consumer c = { 0 };
	consumer_start(&c, 4, &gate);
	hr_router *r;
	REQUIRE(hr_router_create(&r, NULL, &c.actor, 1, 4096) == 0, "router create");
	REQUIRE(hr_router_group_add(r, "g", mem(0, 0, 1), -1) == 0, "group_add");
	slot *slots = calloc(QUEUED, sizeof(*slots));
	REQUIRE(slots != NULL, "calloc");
	int accepted = 0;
	for (int i = 0; i < QUEUED; i++) {
		hr_msg *ev = event((uint64_t)i);
		REQUIRE(ev != NULL, "event");
		int rv = hr_router_group_send(r, "g", ev, on_reply, &slots[i], 0);
		hr_msg_unref(ev);
		if (rv == 0) {
			slots[i].accepted = true;
			accepted++;
		}
	}
	CHECK(accepted > 100, "only %d requests queued", accepted);
	/* Open the consumer's gate from another thread while destroy runs. */
	pthread_t opener;
	REQUIRE(pthread_create(&opener, NULL, open_gate_later, &gate) == 0, "pthread_create");
	hr_router_destroy(r);
	pthread_join(opener, NULL);
	/* a group_send's reply travels with its fan-out (actor.h): the
	 * consumer answers it, or its mailbox's drop does when it stops */
	atomic_store(&gate, 1);
	hr_actor_join(c.actor);
	int ok = 0, canceled = 0;
	check_slots("destroy", slots, QUEUED, &ok, &canceled);
	CHECK(ok + canceled == accepted, "%d ok + %d canceled != %d accepted", ok, canceled,
	    accepted);
	free(slots);
}

int
main(void)
{
	concurrent();
	destroy_with_queue();
	return stress_summary();
}
