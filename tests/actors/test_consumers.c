/*
 * test_consumers.c: the consumer actors (actors/consumers.c) with real
 * actors and real mailboxes standing in for the I/O threads: one frame per
 * event shared by every thread, dispatch by type with '.' -> '_', unknown
 * and malformed events dropped and counted.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/consumer.h"

static hr_mailbox *io[3];
static hr_consumers *cs;

static void
setup(void)
{
	for (int i = 0; i < 3; i++)
		cr_assert_eq(hr_mailbox_create(&io[i], 64, NULL, NULL), 0);
	cr_assert_eq(hr_consumers_create(&cs, io, 3), 0);
}

static void
teardown(void)
{
	hr_consumers_destroy(cs);
	cs = NULL;
	for (int i = 0; i < 3; i++) {
		hr_mail m;
		while (hr_mailbox_recv(io[i], &m, 0) == 0) {
			hr_msg_unref(m.p1);
			hr_idlist_unref(m.p2);
		}
		hr_mailbox_destroy(io[i]);
	}
}

/* {"type": type, "message": {"n": n}} as msgpack */
static hr_msg *
event(const char *type, int64_t n, bool with_message)
{
	hr_buf b;
	hr_msg *m;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_mp_map(&b, with_message ? 2 : 1), 0);
	cr_assert_eq(hr_mp_cstr(&b, "type"), 0);
	cr_assert_eq(hr_mp_cstr(&b, type), 0);
	if (with_message) {
		cr_assert_eq(hr_mp_cstr(&b, "message"), 0);
		cr_assert_eq(hr_mp_map(&b, 1), 0);
		cr_assert_eq(hr_mp_cstr(&b, "n"), 0);
		cr_assert_eq(hr_mp_int(&b, n), 0);
	}
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	hr_buf_fini(&b);
	return m;
}

static void
post(int consumer, hr_msg *ev, bool thread0, bool thread2)
{
	hr_fanout *f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	f->event = ev;
	f->n_threads = 3;
	if (thread0) {
		cr_assert_eq(hr_idlist_alloc(2, &f->ids[0]), 0);
		f->ids[0]->ids[0] = 7;
		f->ids[0]->ids[1] = 9;
	}
	if (thread2) {
		cr_assert_eq(hr_idlist_alloc(1, &f->ids[2]), 0);
		f->ids[2]->ids[0] = 11;
	}
	hr_mail m = { .kind = HR_MAIL_CONSUMER_EVENT, .p1 = f };
	cr_assert_eq(hr_actor_send(hr_consumers_actors(cs)[consumer], &m, 1000), 0);
}

TestSuite(consumers, .init = setup, .fini = teardown);

Test(consumers, one_shared_frame_per_event_one_mail_per_thread, .timeout = 10)
{
	hr_mail a, c, none;
	static const char want[] = "\x81\x07{\"n\":5}";

	post(HR_CONSUMER_NOTIFICATIONS, event("notification.message", 5, true), true, true);
	cr_assert_eq(hr_mailbox_recv(io[0], &a, 2000), 0);
	cr_assert_eq(hr_mailbox_recv(io[2], &c, 2000), 0);
	cr_assert_eq(hr_mailbox_recv(io[1], &none, 200), HR_ETIMEDOUT);
	cr_assert_eq(a.kind, HR_MAIL_IO_FRAME);
	cr_assert_eq(c.kind, HR_MAIL_IO_FRAME);
	cr_assert_eq(a.p1, c.p1, "the frame is shared, not copied per thread");
	cr_assert_eq(hr_msg_len(a.p1), sizeof(want) - 1);
	cr_assert_eq(memcmp(hr_msg_data(a.p1), want, sizeof(want) - 1), 0);
	cr_assert_eq(((hr_idlist *)a.p2)->n, 2);
	cr_assert_eq(((hr_idlist *)a.p2)->ids[1], 9);
	cr_assert_eq(((hr_idlist *)c.p2)->ids[0], 11);
	hr_msg_unref(a.p1);
	hr_idlist_unref(a.p2);
	hr_msg_unref(c.p1);
	hr_idlist_unref(c.p2);

	hr_consumer_stats st;
	hr_consumers_get_stats(cs, &st);
	cr_assert_eq(st.events, 1);
	cr_assert_eq(st.frames, 1);
	cr_assert_eq(st.unknown_type, 0);
}

Test(consumers, unknown_and_malformed_events_are_dropped_and_counted, .timeout = 10)
{
	hr_mail m;

	post(HR_CONSUMER_NOTIFICATIONS, event("chat.message", 1, true), true, false);
	/* health has no notification_message handler */
	post(HR_CONSUMER_HEALTH, event("notification_message", 1, true), true, false);
	/* no "message" key */
	post(HR_CONSUMER_USER, event("notification_message", 1, false), true, false);
	unsigned char junk[] = { 0xc1 };
	hr_msg *bad;
	cr_assert_eq(hr_msg_copy(junk, 1, &bad), 0);
	post(HR_CONSUMER_USER, bad, true, false);
	/* a good one after them all, to know they were handled */
	post(HR_CONSUMER_USER, event("notification_message", 2, true), true, false);
	cr_assert_eq(hr_mailbox_recv(io[0], &m, 2000), 0);
	cr_assert_eq(memcmp(hr_msg_data(m.p1), "\x81\x07{\"n\":2}", 9), 0);
	hr_msg_unref(m.p1);
	hr_idlist_unref(m.p2);
	/* the other consumers run on their own threads: stop them to be sure */
	hr_consumers_destroy(cs);
	cs = NULL;
	cr_assert_eq(hr_mailbox_recv(io[0], &m, 100), HR_ETIMEDOUT);
}

Test(consumers, counters_after_drops, .timeout = 10)
{
	hr_consumer_stats st;
	hr_mail m;

	/* one consumer handles its mail in order: the good event last is a
	 * sync point for the two dropped before it */
	post(HR_CONSUMER_NOTIFICATIONS, event("chat.message", 1, true), true, false);
	post(HR_CONSUMER_NOTIFICATIONS, event("notification_message", 3, false), true, false);
	post(HR_CONSUMER_NOTIFICATIONS, event("notification_message", 4, true), true, false);
	cr_assert_eq(hr_mailbox_recv(io[0], &m, 2000), 0);
	cr_assert_eq(memcmp(hr_msg_data(m.p1), "\x81\x07{\"n\":4}", 9), 0);
	hr_msg_unref(m.p1);
	hr_idlist_unref(m.p2);
	hr_consumers_get_stats(cs, &st);
	cr_assert_eq(st.events, 3);
	cr_assert_eq(st.unknown_type, 1);
	cr_assert_eq(st.bad_event, 1);
	cr_assert_eq(st.frames, 1);
}

Test(consumers, full_io_mailbox_drops_and_counts, .timeout = 20)
{
	hr_consumer_stats st;
	/* io[2] holds 64 mails: 70 events for thread 2 only, nobody draining */
	for (int i = 0; i < 70; i++)
		post(
		    HR_CONSUMER_NOTIFICATIONS, event("notification_message", i, true), false, true);
	/* the last event for thread 0 is a sync point: FIFO per consumer */
	post(HR_CONSUMER_NOTIFICATIONS, event("notification_message", 99, true), true, false);
	hr_mail m;
	cr_assert_eq(hr_mailbox_recv(io[0], &m, 15000), 0);
	hr_msg_unref(m.p1);
	hr_idlist_unref(m.p2);
	hr_consumers_get_stats(cs, &st);
	cr_assert_eq(st.frames, 71);
	cr_assert_geq(st.io_full, 1);
	cr_assert_leq(st.io_full, 70 - 64 + 2);
}

Test(consumers, create_refuses_bad_thread_counts, .timeout = 10)
{
	hr_consumers *x = NULL;
	cr_assert_eq(hr_consumers_create(&x, io, 0), HR_EINVAL);
	cr_assert_eq(hr_consumers_create(&x, io, HR_MAX_THREADS + 1), HR_EINVAL);
	cr_assert_null(x);
	hr_consumers_destroy(NULL);
}

/* The router's epoch change (actor.h hr_fanout.gen, no event): only the
 * generation goes to the recover members' I/O threads, nothing counted as
 * a bad event; a positioned envelope carries its ring's generation. */
Test(consumers, epoch_change_reaches_recover_members_only, .timeout = 10)
{
	hr_mail m, none;
	hr_fanout *f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	f->gen = 7;
	f->n_threads = 2;
	cr_assert_eq(hr_idlist_alloc(1, &f->rids[1]), 0);
	f->rids[1]->ids[0] = 5;
	hr_mail e = { .kind = HR_MAIL_CONSUMER_EVENT, .p1 = f };
	cr_assert_eq(
	    hr_actor_send(hr_consumers_actors(cs)[HR_CONSUMER_NOTIFICATIONS], &e, 1000), 0);
	cr_assert_eq(hr_mailbox_recv(io[1], &m, 2000), 0);
	cr_assert_eq(m.kind, HR_MAIL_IO_FRAME);
	cr_assert_null(m.p1);
	cr_assert_eq(m.u64, 0);
	cr_assert_eq(m.u32, 7);
	cr_assert_eq(((hr_idlist *)m.p2)->n, 1);
	cr_assert_eq(((hr_idlist *)m.p2)->ids[0], 5);
	hr_idlist_unref(m.p2);
	cr_assert_eq(hr_mailbox_recv(io[0], &none, 200), HR_ETIMEDOUT);

	f = calloc(1, sizeof(*f));
	cr_assert_not_null(f);
	f->event = event("notification_message", 1, true);
	f->env = event("notification_message", 2, true); /* any frame will do */
	f->offset = 1;
	f->gen = 7;
	f->n_threads = 1;
	cr_assert_eq(hr_idlist_alloc(1, &f->rids[0]), 0);
	f->rids[0]->ids[0] = 3;
	e.p1 = f;
	cr_assert_eq(
	    hr_actor_send(hr_consumers_actors(cs)[HR_CONSUMER_NOTIFICATIONS], &e, 1000), 0);
	cr_assert_eq(hr_mailbox_recv(io[0], &m, 2000), 0);
	cr_assert_eq(m.u64, 1);
	cr_assert_eq(m.u32, 7);
	cr_assert_not_null(m.p1);
	hr_msg_unref(m.p1);
	hr_idlist_unref(m.p2);

	hr_consumer_stats st;
	hr_consumers_get_stats(cs, &st);
	cr_assert_eq(st.events, 2);
	cr_assert_eq(st.bad_event, 0);
}
