/*
 * test_router_history.c: the router's side of recovery (history.h) driven
 * against a real consumer actor that records, in order, every fan-out and
 * every resume answer it receives: offsets numbered by the router, the
 * envelope only for recover members, a resume answered ahead of every later
 * fan-out, positions given from outside, and the counters.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/actor_impl.h"
#include "actors/history.h"

typedef struct got {
	uint32_t kind;
	void *p; /* hr_fanout * or hr_replay * */
} got;

typedef struct consumer {
	hr_actor *actor;
	got log[256];
	atomic_int n;
} consumer;

static void
record(hr_actor *self, void *state, hr_mail *m)
{
	consumer *c = state;
	int n = atomic_load(&c->n);
	cr_assert(n < 256);
	c->log[n] = (got) { .kind = m->kind, .p = m->p1 };
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_answer(m->p1); /* handled: a consumer answers the reply */
	atomic_store(&c->n, n + 1);
}

static void
drop(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(m->p1);
	else if (m->kind == HR_MAIL_CONSUMER_REPLAY)
		hr_replay_free(m->p1);
}

static const hr_actor_fn handlers[] = { record, record };

static consumer cons;
static hr_router *router;

static void
setup(void)
{
	memset(&cons, 0, sizeof(cons));
	hr_actor_spec s = { .name = "rec-consumer",
		.state = &cons,
		.handlers = handlers,
		.n_handlers = 2,
		.drop = drop };
	cr_assert_eq(hr_actor_spawn(&cons.actor, &s), 0);
	hr_actor *const list[1] = { cons.actor };
	cr_assert_eq(hr_router_create(&router, NULL, list, 1, 0), 0);
	hr_history_rule rule = { .glob = "g*", .size = 100, .ttl_s = 60 };
	cr_assert_eq(hr_router_set_history(router, &rule, 1, false, 1000), 0);
}

static void
teardown(void)
{
	hr_router_destroy(router);
	hr_actor_join(cons.actor);
	for (int i = 0; i < atomic_load(&cons.n); i++)
		drop(NULL, &(hr_mail) { .kind = cons.log[i].kind, .p1 = cons.log[i].p });
}

static void
wait_n(int n)
{
	for (int i = 0; atomic_load(&cons.n) < n; i++) {
		cr_assert(i < 5000, "only %d of %d mails", atomic_load(&cons.n), n);
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* {"type":"notification_message","message":{"k":"x"}} */
static hr_msg *
event(void)
{
	static const char t[] = "notification_message";
	unsigned char b[64];
	size_t k = 0;
	b[k++] = 0x82;
	b[k++] = 0xa4;
	memcpy(b + k, "type", 4);
	k += 4;
	b[k++] = (unsigned char)(0xa0 | (sizeof(t) - 1));
	memcpy(b + k, t, sizeof(t) - 1);
	k += sizeof(t) - 1;
	b[k++] = 0xa7;
	memcpy(b + k, "message", 7);
	k += 7;
	b[k++] = 0x81;
	b[k++] = 0xa1;
	b[k++] = 'k';
	b[k++] = 0xa1;
	b[k++] = 'x';
	hr_msg *m;
	cr_assert_eq(hr_msg_copy(b, k, &m), 0);
	return m;
}

static void
send_n(const char *group, int n)
{
	hr_msg *ev = event();
	for (int i = 0; i < n; i++)
		cr_assert_eq(hr_router_group_send(router, group, ev, NULL, NULL, 1000), 0);
	hr_msg_unref(ev);
}

Test(router_history, resume_is_answered_before_later_fanouts, .init = setup, .fini = teardown)
{
	hr_member plain = { .thread = 0, .consumer = 0, .conn = 1 };
	hr_member rec = { .thread = 1, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 2 };

	cr_assert_eq(hr_router_group_add(router, "g1", plain, 1000), 0);
	send_n("g1", 3); /* offsets 1..3: fan-outs to the plain member only */
	wait_n(3);
	hr_fanout *f = cons.log[2].p;
	cr_assert_eq(cons.log[2].kind, HR_MAIL_CONSUMER_EVENT);
	cr_assert_eq(f->offset, 3);
	cr_assert_not_null(f->env); /* built for history, whoever listens */
	cr_assert_not_null(f->ids[0]);
	cr_assert_null(f->rids[1]);

	char epoch[HR_EPOCH_MAX + 1] = "";
	hr_recover_pos pos = { .given = false };
	cr_assert_eq(hr_router_group_add_recover(router, "g1", rec, &pos, 1000), 0);
	send_n("g1", 1); /* offset 4: after the resume */
	wait_n(5);
	cr_assert_eq(cons.log[3].kind, HR_MAIL_CONSUMER_REPLAY);
	hr_replay *rp = cons.log[3].p;
	cr_assert_eq(rp->n, 1); /* no position: only the recovered frame */
	cr_assert_eq(rp->floor, 3);
	cr_assert_eq(rp->thread, 1);
	cr_assert_eq(rp->conn, 2);
	const char *txt = (const char *)hr_msg_data(rp->frames[0]) + 2;
	cr_assert(strstr(txt, "\"offset\":3,\"recovered\":false,\"missed\":0}") != NULL, "%s", txt);
	const char *e = strstr(txt, "\"epoch\":\"");
	cr_assert_not_null(e);
	memcpy(epoch, e + 9, HR_EPOCH_LEN);
	cr_assert_eq(cons.log[4].kind, HR_MAIL_CONSUMER_EVENT);
	f = cons.log[4].p;
	cr_assert_eq(f->offset, 4);
	cr_assert_not_null(f->rids[1]);
	cr_assert_eq(f->rids[1]->n, 1);
	cr_assert_eq(f->rids[1]->ids[0], 2);
	cr_assert_not_null(f->ids[0]);

	/* a second recover member resumes after offset 1: 2..4 replayed */
	hr_member rec2 = { .thread = 0, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 3 };
	pos.given = true;
	pos.offset = 1;
	memcpy(pos.epoch, epoch, sizeof(epoch));
	cr_assert_eq(hr_router_group_add_recover(router, "g1", rec2, &pos, 1000), 0);
	wait_n(6);
	rp = cons.log[5].p;
	cr_assert_eq(rp->n, 4);
	cr_assert_eq(rp->floor, 4);
	txt = (const char *)hr_msg_data(rp->frames[0]) + 2;
	cr_assert(strstr(txt, "\"offset\":2,\"data\":{\"k\":\"x\"}}") != NULL, "%s", txt);

	hr_history_stats st;
	hr_router_get_history_stats(router, &st);
	cr_assert_eq(st.groups, 1);
	cr_assert_eq(st.frames, 4);
	cr_assert_eq(st.replayed, 3);
	cr_assert_eq(st.unrecoverable, 0);
	cr_assert_gt(st.bytes, 0);
}

Test(router_history, positions_from_outside_are_kept, .init = setup, .fini = teardown)
{
	hr_member rec = { .thread = 0, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 7 };
	hr_msg *ev = event();

	cr_assert_eq(hr_router_group_add_recover(router, "g2", rec, NULL, 1000), 0);
	wait_n(1);
	cr_assert_eq(
	    hr_router_group_send_at(router, "g2", ev, "abc123", 40, 0, NULL, NULL, 1000), 0);
	cr_assert_eq(
	    hr_router_group_send_at(router, "g2", ev, "abc123", 40, 0, NULL, NULL, 1000), 0);
	cr_assert_eq(
	    hr_router_group_send_at(router, "g2", ev, "abc123", 41, 0, NULL, NULL, 1000), 0);
	cr_assert_eq(
	    hr_router_group_send_at(router, "g2", ev, "ABC", 1, 0, NULL, NULL, 1000), HR_EINVAL);
	cr_assert_eq(
	    hr_router_group_send_at(router, "g2", ev, "abc", 0, 0, NULL, NULL, 1000), HR_EINVAL);
	hr_msg_unref(ev);
	wait_n(4); /* the duplicate 40 is neither delivered nor kept */
	/* the member was answered from a ring of the router's own epoch: the
	 * position from outside replaces it, so the member is closed first */
	hr_fanout *f = cons.log[1].p;
	cr_assert_null(f->event);
	cr_assert_neq(f->gen, 0);
	cr_assert_neq(f->gen, ((hr_replay *)cons.log[0].p)->gen);
	f = cons.log[2].p;
	cr_assert_eq(f->offset, 40);
	cr_assert_eq(f->gen, ((hr_fanout *)cons.log[1].p)->gen);
	const char *txt = (const char *)hr_msg_data(f->env) + 2;
	cr_assert(strstr(txt, "\"epoch\":\"abc123\",\"offset\":40,") != NULL, "%s", txt);
	f = cons.log[3].p;
	cr_assert_eq(f->offset, 41);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	cr_assert_eq(atomic_load(&cons.n), 4);
	hr_history_stats st;
	hr_router_get_history_stats(router, &st);
	cr_assert_eq(st.frames, 2);
}

static atomic_int fills;
static char fill_group[64];

static int
fill_fn(void *arg, const char *group)
{
	(void)arg;
	snprintf(fill_group, sizeof(fill_group), "%s", group);
	atomic_fetch_add(&fills, 1);
	return 0;
}

Test(router_history, external_resume_waits_for_the_shared_history, .init = setup, .fini = teardown)
{
	hr_history_rule rule = { .glob = "g*", .size = 100, .ttl_s = 60 };
	hr_member rec = { .thread = 0, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 9 };
	hr_recover_pos pos = { .given = true, .epoch = "abc", .offset = 7 };
	hr_msg *ev = event();
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	atomic_store(&fills, 0);
	cr_assert_eq(hr_router_set_history(router, &rule, 1, true, 1000), 0);
	cr_assert_eq(hr_router_set_history_fill(router, fill_fn, NULL, NULL, NULL, 1000), 0);
	/* this node has read 10 and 11 only */
	for (uint64_t o = 10; o <= 11; o++)
		cr_assert_eq(
		    hr_router_group_send_at(router, "g3", ev, "abc", o, 0, NULL, NULL, 1000), 0);
	/* a local group_send is neither numbered nor delivered here */
	cr_assert_eq(hr_router_group_add_recover(router, "g3", rec, &pos, 1000), 0);
	cr_assert_eq(hr_router_group_send(router, "g3", ev, NULL, NULL, 1000), 0);
	/* 12 arrives while the resume waits outside the group */
	cr_assert_eq(hr_router_group_send_at(router, "g3", ev, "abc", 12, 0, NULL, NULL, 1000), 0);
	nanosleep(&ts, NULL);
	cr_assert_eq(atomic_load(&fills), 1);
	cr_assert_str_eq(fill_group, "g3");
	cr_assert_eq(atomic_load(&cons.n), 0, "answered before the fill");

	uint64_t offs[] = { 6, 7, 8, 9, 10, 11, 12 };
	hr_msg *evs[] = { ev, ev, ev, ev, ev, ev, ev };
	cr_assert_eq(hr_router_history_fill(router, "g3", "abc", 12, offs, evs, 7, 1000), 0);
	cr_assert_eq(hr_router_group_send_at(router, "g3", ev, "abc", 13, 0, NULL, NULL, 1000), 0);
	wait_n(2);
	cr_assert_eq(cons.log[0].kind, HR_MAIL_CONSUMER_REPLAY);
	hr_replay *rp = cons.log[0].p;
	cr_assert_eq(rp->n, 6); /* 8..12, then recovered */
	cr_assert_eq(rp->floor, 12);
	const char *txt = (const char *)hr_msg_data(rp->frames[0]) + 2;
	cr_assert(strstr(txt, "\"epoch\":\"abc\",\"offset\":8,") != NULL, "%s", txt);
	txt = (const char *)hr_msg_data(rp->frames[5]) + 2;
	cr_assert(strstr(txt, "\"offset\":12,\"recovered\":true,\"missed\":5}") != NULL, "%s", txt);
	cr_assert_eq(cons.log[1].kind, HR_MAIL_CONSUMER_EVENT);
	hr_fanout *f = cons.log[1].p;
	cr_assert_eq(f->offset, 13);
	cr_assert_not_null(f->rids[0]);

	/* now covered: answered at once, no second fill */
	hr_member rec2 = { .thread = 0, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 10 };
	pos.offset = 6;
	cr_assert_eq(hr_router_group_add_recover(router, "g3", rec2, &pos, 1000), 0);
	wait_n(3);
	rp = cons.log[2].p;
	cr_assert_eq(rp->n, 8); /* 7..13 and recovered */
	cr_assert_eq(atomic_load(&fills), 1);
	hr_msg_unref(ev);
}

/*
 * External numbering: the group's history is lost in Redis and the
 * sequencer starts epoch "def" at offset 1 while a recover member (which
 * took "abc" up to 3) and a plain member are connected. The router replaces
 * the ring and, before the new epoch's first frame, posts the epoch change
 * (no event, the new ring's generation) for the recover member only; the
 * plain member keeps receiving. A fill of yet another epoch does the same.
 */
Test(router_history, epoch_change_closes_recover_members_first, .init = setup, .fini = teardown)
{
	hr_history_rule rule = { .glob = "g*", .size = 100, .ttl_s = 60 };
	hr_member rec = { .thread = 1, .consumer = 0, .flags = HR_MEMBER_RECOVER, .conn = 5 };
	hr_member plain = { .thread = 0, .consumer = 0, .conn = 6 };
	hr_msg *ev = event();

	cr_assert_eq(hr_router_set_history(router, &rule, 1, true, 1000), 0);
	for (uint64_t o = 1; o <= 3; o++)
		cr_assert_eq(
		    hr_router_group_send_at(router, "g4", ev, "abc", o, 0, NULL, NULL, 1000), 0);
	cr_assert_eq(hr_router_group_add_recover(router, "g4", rec, NULL, 1000), 0);
	cr_assert_eq(hr_router_group_add(router, "g4", plain, 1000), 0);
	wait_n(1); /* no member yet when 1..3 came: only the replay */
	hr_replay *rp = cons.log[0].p;
	cr_assert_eq(cons.log[0].kind, HR_MAIL_CONSUMER_REPLAY);
	cr_assert_eq(rp->floor, 3);
	uint32_t g1 = rp->gen;
	cr_assert_neq(g1, 0);

	cr_assert_eq(hr_router_group_send_at(router, "g4", ev, "def", 1, 0, NULL, NULL, 1000), 0);
	wait_n(3);
	hr_fanout *close = cons.log[1].p, *f = cons.log[2].p;
	cr_assert_eq(cons.log[1].kind, HR_MAIL_CONSUMER_EVENT);
	cr_assert_null(close->event);
	cr_assert_null(close->env);
	cr_assert_eq(close->offset, 0);
	cr_assert_neq(close->gen, 0);
	cr_assert_neq(close->gen, g1);
	cr_assert_not_null(close->rids[1]);
	cr_assert_eq(close->rids[1]->n, 1);
	cr_assert_eq(close->rids[1]->ids[0], 5);
	cr_assert_null(close->ids[0], "plain members are not touched");
	cr_assert_eq(f->offset, 1);
	cr_assert_eq(f->gen, close->gen);
	cr_assert_not_null(f->ids[0]);
	cr_assert_not_null(f->rids[1]);
	const char *txt = (const char *)hr_msg_data(f->env) + 2;
	cr_assert(strstr(txt, "\"epoch\":\"def\",\"offset\":1,") != NULL, "%s", txt);

	/* the same epoch again: nothing more */
	cr_assert_eq(hr_router_group_send_at(router, "g4", ev, "def", 2, 0, NULL, NULL, 1000), 0);
	wait_n(4);
	cr_assert_eq(((hr_fanout *)cons.log[3].p)->gen, close->gen);
	cr_assert_not_null(((hr_fanout *)cons.log[3].p)->event);

	/* a fill that names another epoch replaces the ring the same way */
	uint64_t offs[] = { 1 };
	hr_msg *evs[] = { ev };
	cr_assert_eq(hr_router_history_fill(router, "g4", "0f0f", 1, offs, evs, 1, 1000), 0);
	wait_n(5);
	f = cons.log[4].p;
	cr_assert_null(f->event);
	cr_assert_not_null(f->rids[1]);
	cr_assert_neq(f->gen, close->gen);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	cr_assert_eq(atomic_load(&cons.n), 5);
	hr_msg_unref(ev);
}
