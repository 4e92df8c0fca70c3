/*
 * test_memory.c: the in-memory channel layer (hr_layer_memory_ops) and the
 * public wrappers in front of it: names, capacity, groups, expiry on an
 * injected clock, blocking receive, flush, new_channel, destroy.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "layer/layer.h"
#include "layer/layer_impl.h"

/* ------------------------------------------------------------ helpers */

static double fake_now;

static double
fake_clock(void *arg)
{
	return *(double *)arg;
}

/* {"n": n} as msgpack. */
static hr_msg *
mkmsg(uint32_t n)
{
	unsigned char b[8] = { 0x81, 0xa1, 'n', 0xce, (unsigned char)(n >> 24),
		(unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };
	hr_msg *m = NULL;
	cr_assert_eq(hr_msg_copy(b, sizeof(b), &m), 0);
	return m;
}

static uint32_t
msgn(const hr_msg *m)
{
	cr_assert_eq(hr_msg_len(m), 8);
	const unsigned char *b = hr_msg_data(m);
	return (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
}

static hr_layer *
mklayer(size_t capacity, const hr_capacity_rule *rules, size_t nrules)
{
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.capacity = capacity;
	o.channel_capacity = rules;
	o.n_channel_capacity = nrules;
	o.clock = fake_clock;
	o.clock_arg = &fake_now;
	fake_now = 1000.25;
	hr_layer *l = NULL;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), 0);
	cr_assert_not_null(l);
	return l;
}

static int
send_n(hr_layer *l, const char *ch, uint32_t n)
{
	hr_msg *m = mkmsg(n);
	int rv = hr_layer_send(l, ch, m);
	hr_msg_unref(m);
	return rv;
}

/* Receive without waiting; returns n or -1 with *rv set. */
static long
recv_n(hr_layer *l, const char *ch, int *rvp)
{
	hr_msg *m = (hr_msg *)0x1;
	int rv = hr_layer_receive(l, ch, 0, &m);
	if (rvp)
		*rvp = rv;
	if (rv != 0) {
		cr_assert_null(m, "out must be NULL on failure");
		return -1;
	}
	long n = msgn(m);
	hr_msg_unref(m);
	return n;
}

static int
group_send_n(hr_layer *l, const char *g, uint32_t n, hr_group_send_result *res)
{
	hr_msg *m = mkmsg(n);
	int rv = hr_layer_group_send(l, g, m, res);
	hr_msg_unref(m);
	return rv;
}

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ lifecycle */

TestSuite(memory);

Test(memory, defaults_are_channels_defaults, .timeout = 10)
{
	hr_layer_opts o;
	memset(&o, 0x5a, sizeof(o));
	hr_layer_opts_default(&o);
	cr_assert_str_eq(o.prefix, "asgi");
	cr_assert_eq(o.capacity, 100);
	cr_assert_eq(o.expiry, 60);
	cr_assert_eq(o.group_expiry, 86400);
	cr_assert_null(o.channel_capacity);
	cr_assert_eq(o.n_channel_capacity, 0);
	cr_assert_null(o.clock);
	cr_assert_eq(o.n_hosts, 0);
}

Test(memory, create_refuses_bad_options, .timeout = 10)
{
	hr_layer *l = (hr_layer *)0x1;
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.n_channel_capacity = 2; /* but no rules */
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), HR_EINVAL);
	cr_assert_null(l);
	hr_capacity_rule r[1] = { { NULL, 3 } };
	o.channel_capacity = r;
	o.n_channel_capacity = 1;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), HR_EINVAL);
	hr_layer_opts_default(&o);
	o.expiry = -1;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), HR_EINVAL);
	o.expiry = 0.0 / 0.0;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), HR_EINVAL);
	hr_layer_opts_default(&o);
	o.group_expiry = -5;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), HR_EINVAL);
	cr_assert_eq(hr_layer_create(&l, NULL, NULL), HR_EINVAL);
	cr_assert_eq(hr_layer_create(NULL, &hr_layer_memory_ops, NULL), HR_EINVAL);
	/* NULL opts means the defaults */
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, NULL), 0);
	cr_assert_eq(hr_layer_capacity(l, "x"), 100);
	hr_layer_destroy(l);
	hr_layer_destroy(NULL);
}

/* ------------------------------------------------------------ send/receive */

Test(memory, send_receive_is_fifo_and_by_reference, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	hr_msg *first = mkmsg(0);
	cr_assert_eq(hr_layer_send(l, "chat", first), 0);
	for (uint32_t i = 1; i < 50; i++)
		cr_assert_eq(send_n(l, "chat", i), 0);
	hr_msg *got = NULL;
	cr_assert_eq(hr_layer_receive(l, "chat", 0, &got), 0);
	cr_assert_eq(got, first, "the stored message is shared, not copied");
	hr_msg_unref(got);
	hr_msg_unref(first);
	for (uint32_t i = 1; i < 50; i++)
		cr_assert_eq(recv_n(l, "chat", NULL), i);
	int rv;
	cr_assert_eq(recv_n(l, "chat", &rv), -1);
	cr_assert_eq(rv, HR_EAGAIN);
	hr_layer_destroy(l);
}

Test(memory, channels_are_independent, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(send_n(l, "a", 1), 0);
	cr_assert_eq(send_n(l, "b", 2), 0);
	cr_assert_eq(send_n(l, "specific.x!abc", 3), 0);
	cr_assert_eq(send_n(l, "specific.x!abd", 4), 0);
	cr_assert_eq(recv_n(l, "b", NULL), 2);
	cr_assert_eq(recv_n(l, "specific.x!abd", NULL), 4);
	cr_assert_eq(recv_n(l, "specific.x!abc", NULL), 3);
	cr_assert_eq(recv_n(l, "specific.x!", NULL), -1);
	cr_assert_eq(recv_n(l, "a", NULL), 1);
	hr_layer_destroy(l);
}

Test(memory, bad_names_and_arguments_are_refused, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	hr_msg *m = mkmsg(1);
	hr_msg *out = NULL;
	char long_name[120];
	memset(long_name, 'a', 100);
	long_name[100] = '\0';
	const char *bad[] = { "", "a b", "!x", "a!b!c", "é", "x\n", long_name };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(hr_layer_send(l, bad[i], m), HR_EBADNAME, "send %s", bad[i]);
		cr_expect_eq(hr_layer_receive(l, bad[i], 0, &out), HR_EBADNAME);
		cr_expect_eq(hr_layer_group_add(l, bad[i], "ok"), HR_EBADNAME);
		cr_expect_eq(hr_layer_group_add(l, "ok", bad[i]), HR_EBADNAME);
		cr_expect_eq(hr_layer_group_discard(l, bad[i], "ok"), HR_EBADNAME);
		cr_expect_eq(hr_layer_group_discard(l, "ok", bad[i]), HR_EBADNAME);
		cr_expect_eq(hr_layer_group_send(l, bad[i], m, NULL), HR_EBADNAME);
	}
	cr_assert_eq(hr_layer_group_add(l, "grp!x", "ok"), HR_EBADNAME, "no '!' in groups");
	cr_assert_eq(hr_layer_group_send(l, "grp!x", m, NULL), HR_EBADNAME);
	memset(long_name, 'a', 99);
	long_name[99] = '\0';
	cr_assert_eq(hr_layer_send(l, long_name, m), 0, "99 characters is fine");
	cr_assert_eq(hr_layer_group_add(l, long_name, long_name), 0);

	cr_assert_eq(hr_layer_send(NULL, "a", m), HR_EINVAL);
	cr_assert_eq(hr_layer_send(l, NULL, m), HR_EINVAL);
	cr_assert_eq(hr_layer_send(l, "a", NULL), HR_EINVAL);
	cr_assert_eq(hr_layer_receive(l, "a", 0, NULL), HR_EINVAL);
	cr_assert_eq(hr_layer_group_add(l, NULL, "a"), HR_EINVAL);
	cr_assert_eq(hr_layer_group_send(l, "g", NULL, NULL), HR_EINVAL);
	cr_assert_eq(hr_layer_flush(NULL), HR_EINVAL);

	/* a message must be a msgpack map */
	hr_msg *arr = NULL;
	cr_assert_eq(hr_msg_copy("\x91\x01", 2, &arr), 0);
	cr_assert_eq(hr_layer_send(l, "a", arr), HR_ETYPE);
	cr_assert_eq(hr_layer_group_send(l, "g", arr, NULL), HR_ETYPE);
	hr_msg_unref(arr);
	int rv;
	cr_assert_eq(recv_n(l, "a", &rv), -1);
	cr_assert_eq(rv, HR_EAGAIN, "nothing was stored by the refused sends");
	hr_msg_unref(m);
	hr_layer_destroy(l);
}

/* ------------------------------------------------------------ capacity */

Test(memory, full_channel_refuses_with_efull, .timeout = 10)
{
	hr_layer *l = mklayer(3, NULL, 0);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert_eq(send_n(l, "c", i), 0);
	cr_assert_eq(send_n(l, "c", 3), HR_EFULL);
	cr_assert_eq(send_n(l, "c", 4), HR_EFULL);
	hr_layer_stats st;
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.full, 2);
	cr_assert_eq(recv_n(l, "c", NULL), 0);
	cr_assert_eq(send_n(l, "c", 5), 0, "room again after a receive");
	cr_assert_eq(recv_n(l, "c", NULL), 1);
	cr_assert_eq(recv_n(l, "c", NULL), 2);
	cr_assert_eq(recv_n(l, "c", NULL), 5);
	hr_layer_destroy(l);
}

Test(memory, channel_capacity_first_match_wins, .timeout = 10)
{
	static const hr_capacity_rule rules[] = {
		{ "http.request", 1 },
		{ "http.*", 2 },
		{ "ws.?", 3 },
		{ "[!a-m]*", 4 },
		{ "*", 5 },
		{ "never", 99 },
	};
	hr_layer *l = mklayer(10, rules, sizeof(rules) / sizeof(rules[0]));
	cr_assert_eq(hr_layer_capacity(l, "http.request"), 1);
	cr_assert_eq(hr_layer_capacity(l, "http.disconnect"), 2);
	cr_assert_eq(hr_layer_capacity(l, "ws.a"), 3);
	cr_assert_eq(hr_layer_capacity(l, "ws.ab"), 4, "'?' is exactly one character");
	cr_assert_eq(hr_layer_capacity(l, "zeta"), 4);
	cr_assert_eq(hr_layer_capacity(l, "alpha"), 5);
	cr_assert_eq(hr_layer_capacity(l, "never"), 4);
	cr_assert_eq(send_n(l, "http.request", 0), 0);
	cr_assert_eq(send_n(l, "http.request", 1), HR_EFULL);
	cr_assert_eq(send_n(l, "http.x", 0), 0);
	cr_assert_eq(send_n(l, "http.x", 1), 0);
	cr_assert_eq(send_n(l, "http.x", 2), HR_EFULL);
	hr_layer_destroy(l);

	static const hr_capacity_rule zero[] = { { "closed.*", 0 } };
	l = mklayer(10, zero, 1);
	cr_assert_eq(hr_layer_capacity(l, "open"), 10, "no match: the default");
	cr_assert_eq(send_n(l, "closed.x", 0), HR_EFULL, "capacity 0 takes nothing");
	cr_assert_eq(send_n(l, "open", 0), 0);
	hr_layer_destroy(l);
}

/* ------------------------------------------------------------ groups */

Test(memory, group_add_send_discard, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	hr_group_send_result res = { 7, 7 };
	cr_assert_eq(group_send_n(l, "nobody", 1, &res), 0, "unknown group: nothing to do");
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(res.full, 0);

	cr_assert_eq(hr_layer_group_add(l, "g", "a"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "b"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "specific.x!c"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "a"), 0, "adding twice is one membership");
	cr_assert_eq(hr_layer_group_add(l, "h", "a"), 0);
	cr_assert_eq(group_send_n(l, "g", 1, &res), 0);
	cr_assert_eq(res.delivered, 3);
	cr_assert_eq(res.full, 0);
	cr_assert_eq(recv_n(l, "a", NULL), 1);
	cr_assert_eq(recv_n(l, "b", NULL), 1);
	cr_assert_eq(recv_n(l, "specific.x!c", NULL), 1);
	cr_assert_eq(recv_n(l, "a", NULL), -1, "delivered once per channel");

	cr_assert_eq(hr_layer_group_discard(l, "g", "b"), 0);
	cr_assert_eq(hr_layer_group_discard(l, "g", "b"), 0, "discarding twice is fine");
	cr_assert_eq(hr_layer_group_discard(l, "g", "zzz"), 0, "non-member: no error");
	cr_assert_eq(hr_layer_group_discard(l, "nogroup", "a"), 0);
	cr_assert_eq(group_send_n(l, "g", 2, &res), 0);
	cr_assert_eq(res.delivered, 2);
	cr_assert_eq(recv_n(l, "b", NULL), -1);
	cr_assert_eq(recv_n(l, "a", NULL), 2);
	cr_assert_eq(group_send_n(l, "h", 3, NULL), 0, "res may be NULL");
	cr_assert_eq(recv_n(l, "a", NULL), 3);

	cr_assert_eq(hr_layer_group_discard(l, "g", "a"), 0);
	cr_assert_eq(hr_layer_group_discard(l, "g", "specific.x!c"), 0);
	cr_assert_eq(group_send_n(l, "g", 4, &res), 0);
	cr_assert_eq(res.delivered, 0, "an emptied group is gone");
	cr_assert_eq(hr_layer_group_add(l, "g", "b"), 0, "and can come back");
	cr_assert_eq(group_send_n(l, "g", 5, &res), 0);
	cr_assert_eq(res.delivered, 1);
	cr_assert_eq(recv_n(l, "b", NULL), 5);
	hr_layer_destroy(l);
}

Test(memory, group_send_skips_and_counts_full_channels, .timeout = 10)
{
	static const hr_capacity_rule rules[] = { { "small.*", 1 } };
	hr_layer *l = mklayer(2, rules, 1);
	const char *members[] = { "small.a", "small.b", "big.a", "big.b" };
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(hr_layer_group_add(l, "g", members[i]), 0);
	cr_assert_eq(send_n(l, "small.a", 100), 0); /* small.a is now full */
	hr_group_send_result res;
	cr_assert_eq(group_send_n(l, "g", 1, &res), 0, "full members are not an error");
	cr_assert_eq(res.delivered, 3);
	cr_assert_eq(res.full, 1);
	cr_assert_eq(group_send_n(l, "g", 2, &res), 0);
	cr_assert_eq(res.delivered, 2);
	cr_assert_eq(res.full, 2);
	cr_assert_eq(group_send_n(l, "g", 3, &res), 0);
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(res.full, 4);
	hr_layer_stats st;
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.full, 7);
	cr_assert_eq(recv_n(l, "small.a", NULL), 100);
	cr_assert_eq(recv_n(l, "small.a", NULL), -1);
	cr_assert_eq(recv_n(l, "small.b", NULL), 1);
	cr_assert_eq(recv_n(l, "big.a", NULL), 1);
	cr_assert_eq(recv_n(l, "big.a", NULL), 2);
	cr_assert_eq(recv_n(l, "big.a", NULL), -1);
	hr_layer_destroy(l);
}

Test(memory, group_send_to_ten_thousand_channels, .timeout = 30)
{
	hr_layer *l = mklayer(100, NULL, 0);
	char name[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "specific.n!%d", i);
		cr_assert_eq(hr_layer_group_add(l, "big", name), 0);
	}
	hr_group_send_result res;
	hr_msg *m = mkmsg(77);
	cr_assert_eq(hr_layer_group_send(l, "big", m, &res), 0);
	cr_assert_eq(res.delivered, 10000);
	cr_assert_eq(res.full, 0);
	/* receive in a scattered order so that table deletes shift entries */
	for (int k = 0; k < 10000; k++) {
		int i = (k * 7919) % 10000;
		snprintf(name, sizeof(name), "specific.n!%d", i);
		hr_msg *got = NULL;
		cr_assert_eq(hr_layer_receive(l, name, 0, &got), 0, "%s", name);
		cr_assert_eq(got, m, "fan-out shares one message");
		hr_msg_unref(got);
	}
	for (int i = 0; i < 10000; i += 2) {
		snprintf(name, sizeof(name), "specific.n!%d", i);
		cr_assert_eq(hr_layer_group_discard(l, "big", name), 0);
	}
	cr_assert_eq(hr_layer_group_send(l, "big", m, &res), 0);
	cr_assert_eq(res.delivered, 5000);
	hr_msg_unref(m);
	hr_layer_destroy(l); /* 5000 undelivered references freed here */
}

/* ------------------------------------------------------------ expiry */

Test(memory, expired_messages_are_never_delivered, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(send_n(l, "c", 1), 0);
	fake_now += 30;
	cr_assert_eq(send_n(l, "c", 2), 0);
	fake_now += 30; /* message 1 is exactly 60 s old: still valid */
	cr_assert_eq(recv_n(l, "c", NULL), 1);
	fake_now += 0.5; /* message 2 is 30.5 s old */
	cr_assert_eq(send_n(l, "c", 3), 0);
	fake_now += 40; /* 2 is 70.5 s old, 3 is 40 s */
	cr_assert_eq(recv_n(l, "c", NULL), 3, "2 expired and is skipped");
	fake_now += 100;
	int rv;
	cr_assert_eq(send_n(l, "c", 4), 0);
	fake_now += 61;
	cr_assert_eq(recv_n(l, "c", &rv), -1);
	cr_assert_eq(rv, HR_EAGAIN);
	hr_layer_stats st;
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.expired, 2);
	hr_layer_destroy(l);
}

Test(memory, expired_messages_free_capacity, .timeout = 10)
{
	hr_layer *l = mklayer(2, NULL, 0);
	cr_assert_eq(send_n(l, "c", 1), 0);
	cr_assert_eq(send_n(l, "c", 2), 0);
	cr_assert_eq(send_n(l, "c", 3), HR_EFULL);
	fake_now += 61;
	/* Channels would still say full here: it cleans only on receive */
	cr_assert_eq(send_n(l, "c", 4), 0);
	cr_assert_eq(send_n(l, "c", 5), 0);
	cr_assert_eq(send_n(l, "c", 6), HR_EFULL);
	cr_assert_eq(hr_layer_group_add(l, "g", "d"), 0);
	cr_assert_eq(send_n(l, "d", 7), 0);
	cr_assert_eq(send_n(l, "d", 8), 0);
	fake_now += 61;
	hr_group_send_result res;
	/* d's messages expired: d is dropped from its groups as Channels does */
	cr_assert_eq(group_send_n(l, "g", 9, &res), 0);
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(res.full, 0);
	cr_assert_eq(recv_n(l, "d", NULL), -1);
	cr_assert_eq(recv_n(l, "c", NULL), -1);
	hr_layer_stats st;
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.expired, 6);
	cr_assert_eq(st.full, 2);
	hr_layer_destroy(l);
}

Test(memory, channel_with_expired_message_leaves_all_groups, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(hr_layer_group_add(l, "g1", "c"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g2", "c"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g2", "other"), 0);
	cr_assert_eq(send_n(l, "c", 1), 0);
	fake_now += 61;
	int rv;
	cr_assert_eq(recv_n(l, "c", &rv), -1);
	cr_assert_eq(rv, HR_EAGAIN);
	hr_group_send_result res;
	cr_assert_eq(group_send_n(l, "g1", 2, &res), 0);
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(group_send_n(l, "g2", 3, &res), 0);
	cr_assert_eq(res.delivered, 1);
	cr_assert_eq(recv_n(l, "other", NULL), 3);
	cr_assert_eq(recv_n(l, "c", NULL), -1);
	hr_layer_destroy(l);
}

Test(memory, group_expiry_drops_old_memberships, .timeout = 10)
{
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.group_expiry = 100;
	o.expiry = 1e6;
	o.clock = fake_clock;
	o.clock_arg = &fake_now;
	fake_now = 5000.5;
	hr_layer *l = NULL;
	cr_assert_eq(hr_layer_create(&l, &hr_layer_memory_ops, &o), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "old"), 0);
	fake_now = 5050.0;
	cr_assert_eq(hr_layer_group_add(l, "g", "young"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "again"), 0);
	hr_group_send_result res;
	fake_now = 5100.9; /* int(5000.5) = 5000 is not < 5100 - 100 */
	cr_assert_eq(group_send_n(l, "g", 1, &res), 0);
	cr_assert_eq(res.delivered, 3);
	fake_now = 5101.0; /* 5000 < 5001: "old" expires */
	cr_assert_eq(hr_layer_group_add(l, "g", "again"), 0, "re-adding refreshes");
	cr_assert_eq(group_send_n(l, "g", 2, &res), 0);
	cr_assert_eq(res.delivered, 2);
	hr_layer_stats st;
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.group_expired, 1);
	fake_now = 5160.0;
	cr_assert_eq(group_send_n(l, "g", 3, &res), 0);
	cr_assert_eq(res.delivered, 1, "young expired, again was refreshed");
	fake_now = 5300.0;
	cr_assert_eq(group_send_n(l, "g", 4, &res), 0);
	cr_assert_eq(res.delivered, 0);
	hr_layer_get_stats(l, &st);
	cr_assert_eq(st.group_expired, 3);
	cr_assert_eq(recv_n(l, "old", NULL), 1);
	cr_assert_eq(recv_n(l, "old", NULL), -1);
	cr_assert_eq(recv_n(l, "again", NULL), 1);
	cr_assert_eq(recv_n(l, "again", NULL), 2);
	cr_assert_eq(recv_n(l, "again", NULL), 3);
	hr_layer_destroy(l);
}

/* ------------------------------------------------------------ blocking */

Test(memory, receive_timeouts, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	hr_msg *m = (hr_msg *)0x1;
	double t0 = mono_ms();
	cr_assert_eq(hr_layer_receive(l, "c", 0, &m), HR_EAGAIN);
	cr_assert_null(m);
	cr_assert_lt(mono_ms() - t0, 50, "timeout 0 does not wait");
	t0 = mono_ms();
	cr_assert_eq(hr_layer_receive(l, "c", 120, &m), HR_ETIMEDOUT);
	double dt = mono_ms() - t0;
	cr_assert_geq(dt, 119, "waited %.1f ms", dt);
	cr_assert_lt(dt, 2000);
	cr_assert_null(m);
	cr_assert_eq(send_n(l, "c", 9), 0);
	cr_assert_eq(hr_layer_receive(l, "c", 120, &m), 0, "a timed receive takes what is there");
	cr_assert_eq(msgn(m), 9);
	hr_msg_unref(m);
	hr_layer_destroy(l);
}

typedef struct rx {
	hr_layer *l;
	const char *ch;
	int timeout_ms;
	int rv;
	long n;
} rx;

static void *
rx_main(void *arg)
{
	rx *r = arg;
	hr_msg *m = NULL;
	r->rv = hr_layer_receive(r->l, r->ch, r->timeout_ms, &m);
	r->n = m ? (long)msgn(m) : -1;
	hr_msg_unref(m);
	return NULL;
}

/* Wait (bounded) until n receivers are blocked inside the layer. */
static void
wait_blocked(hr_layer *l, unsigned n)
{
	for (int i = 0; i < 2000; i++) {
		if (hr_layer__memory_waiters(l) == n)
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("receivers never blocked");
}

Test(memory, blocked_receiver_woken_by_send_from_another_thread, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	rx r1 = { l, "c", -1, 99, 0 }, r2 = { l, "specific.a!b", 5000, 99, 0 };
	pthread_t t1, t2;
	cr_assert_eq(pthread_create(&t1, NULL, rx_main, &r1), 0);
	cr_assert_eq(pthread_create(&t2, NULL, rx_main, &r2), 0);
	wait_blocked(l, 2);
	cr_assert_eq(send_n(l, "other", 1), 0);
	cr_assert_eq(send_n(l, "c", 42), 0);
	cr_assert_eq(pthread_join(t1, NULL), 0);
	cr_assert_eq(r1.rv, 0);
	cr_assert_eq(r1.n, 42);
	cr_assert_eq(hr_layer__memory_waiters(l), 1);
	cr_assert_eq(send_n(l, "specific.a!b", 43), 0);
	cr_assert_eq(pthread_join(t2, NULL), 0);
	cr_assert_eq(r2.rv, 0);
	cr_assert_eq(r2.n, 43);
	cr_assert_eq(recv_n(l, "other", NULL), 1);
	hr_layer_destroy(l);
}

Test(memory, blocked_receiver_woken_by_group_send, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "c"), 0);
	rx r = { l, "c", 5000, 99, 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, rx_main, &r), 0);
	wait_blocked(l, 1);
	cr_assert_eq(group_send_n(l, "g", 7, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(r.rv, 0);
	cr_assert_eq(r.n, 7);
	hr_layer_destroy(l);
}

Test(memory, destroy_wakes_blocked_receivers_with_eclosed, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(send_n(l, "full", 1), 0);
	rx r[3] = { { l, "c", -1, 99, 0 }, { l, "c", 8000, 99, 0 }, { l, "d", -1, 99, 0 } };
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, rx_main, &r[i]), 0);
	wait_blocked(l, 3);
	hr_layer_destroy(l); /* returns only once all three have left the layer */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_assert_eq(r[i].rv, HR_ECLOSED);
		cr_assert_eq(r[i].n, -1);
	}
}

/* ------------------------------------------------------------ flush */

Test(memory, flush_drops_everything, .timeout = 10)
{
	hr_layer *l = mklayer(1, NULL, 0);
	cr_assert_eq(send_n(l, "a", 1), 0);
	cr_assert_eq(send_n(l, "a", 2), HR_EFULL);
	cr_assert_eq(hr_layer_group_add(l, "g", "a"), 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "b"), 0);
	cr_assert_eq(hr_layer_flush(l), 0);
	int rv;
	cr_assert_eq(recv_n(l, "a", &rv), -1);
	cr_assert_eq(rv, HR_EAGAIN);
	hr_group_send_result res;
	cr_assert_eq(group_send_n(l, "g", 3, &res), 0);
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(send_n(l, "a", 4), 0, "capacity is free again");
	cr_assert_eq(recv_n(l, "a", NULL), 4);
	cr_assert_eq(recv_n(l, "b", NULL), -1);
	cr_assert_eq(hr_layer_flush(l), 0);
	cr_assert_eq(hr_layer_flush(l), 0, "flushing an empty layer is fine");
	hr_layer_destroy(l);
}

Test(memory, flush_keeps_blocked_receivers_listening, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	cr_assert_eq(hr_layer_group_add(l, "g", "c"), 0);
	for (int i = 0; i < 40; i++) { /* make the table shift entries on flush */
		char name[16];
		snprintf(name, sizeof(name), "x%d", i);
		cr_assert_eq(send_n(l, name, 1), 0);
	}
	rx r = { l, "c", 5000, 99, 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, rx_main, &r), 0);
	wait_blocked(l, 1);
	cr_assert_eq(hr_layer_flush(l), 0);
	cr_assert_eq(group_send_n(l, "g", 1, NULL), 0, "the group is gone");
	cr_assert_eq(send_n(l, "c", 2), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(r.rv, 0);
	cr_assert_eq(r.n, 2);
	cr_assert_eq(recv_n(l, "x7", NULL), -1);
	hr_layer_destroy(l);
}

/* ------------------------------------------------------------ new_channel */

static bool
is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

Test(memory, new_channel_format_and_uniqueness, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	static char names[2000][64];
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(hr_layer_new_channel(l, "specific.", names[i], sizeof(names[i])), 0);
		const char *s = names[i];
		/* InMemoryChannelLayer: "%s.inmemory!%s" % (prefix, 12 letters) */
		cr_assert_eq(strlen(s), strlen("specific..inmemory!") + 12, "%s", s);
		cr_assert_eq(strncmp(s, "specific..inmemory!", 19), 0, "%s", s);
		for (int k = 19; k < 31; k++)
			cr_assert(is_letter(s[k]), "%s", s);
		cr_assert_eq(hr_name_check_channel(s, strlen(s)), 0);
	}
	for (int i = 0; i < 2000; i++)
		for (int j = i + 1; j < 2000; j++)
			cr_assert_str_neq(names[i], names[j]);
	char out[64];
	cr_assert_eq(hr_layer_new_channel(l, NULL, out, sizeof(out)), 0);
	cr_assert_eq(strncmp(out, "specific..inmemory!", 19), 0, "NULL prefix: the default");
	cr_assert_eq(hr_layer_new_channel(l, "", out, sizeof(out)), 0);
	cr_assert_eq(strncmp(out, ".inmemory!", 10), 0, "%s", out);
	cr_assert_eq(send_n(l, names[5], 5), 0, "a new channel is usable at once");
	cr_assert_eq(recv_n(l, names[5], NULL), 5);
	hr_layer_destroy(l);
}

Test(memory, new_channel_refuses_bad_prefix_and_short_buffer, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	char out[64];
	cr_assert_eq(hr_layer_new_channel(l, "bad prefix", out, sizeof(out)), HR_EBADNAME);
	cr_assert_str_eq(out, "");
	cr_assert_eq(hr_layer_new_channel(l, "a!b", out, sizeof(out)), HR_EBADNAME);
	char big[100];
	memset(big, 'p', 77);
	big[77] = '\0'; /* 77 + 22 = 99: fits */
	char out2[128];
	cr_assert_eq(hr_layer_new_channel(l, big, out2, sizeof(out2)), 0);
	cr_assert_eq(strlen(out2), 99);
	big[77] = 'p';
	big[78] = '\0'; /* 100: too long for a name */
	cr_assert_eq(hr_layer_new_channel(l, big, out2, sizeof(out2)), HR_EBADNAME);
	cr_assert_eq(hr_layer_new_channel(l, "specific.", out, 31), HR_EMSGSIZE);
	cr_assert_eq(hr_layer_new_channel(l, "specific.", out, 32), 0);
	cr_assert_eq(hr_layer_new_channel(l, "specific.", NULL, 32), HR_EINVAL);
	cr_assert_eq(hr_layer_new_channel(l, "specific.", out, 0), HR_EINVAL);
	hr_layer_destroy(l);
}

/* ------------------------------------------------------------ teardown */

Test(memory, destroy_with_messages_and_groups_inside_frees_all, .timeout = 10)
{
	hr_layer *l = mklayer(100, NULL, 0);
	hr_msg *m = mkmsg(1);
	char name[32];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "c%d", i % 50);
		cr_assert_eq(hr_layer_send(l, name, m), 0);
		snprintf(name, sizeof(name), "g%d", i % 7);
		cr_assert_eq(hr_layer_group_add(l, name, "c1"), 0);
	}
	cr_assert_eq(hr_layer_group_send(l, "g3", m, NULL), 0);
	hr_msg_unref(m);     /* the layer's references keep it alive... */
	hr_layer_destroy(l); /* ...until here; ASan's leak check sees the rest */
}

/* A backend without the optional operations. */
static int
bare_create(hr_layer *l)
{
	return 0;
}

static void
bare_destroy(hr_layer *l)
{
}

static int
bare_send(hr_layer *l, const char *c, size_t n, hr_msg *m)
{
	return 0;
}

Test(memory, missing_optional_ops_answer_enotsup, .timeout = 10)
{
	static const hr_layer_ops bare
	    = { .name = "bare", .create = bare_create, .destroy = bare_destroy, .send = bare_send };
	hr_layer *l = NULL;
	cr_assert_eq(hr_layer_create(&l, &bare, NULL), 0);
	hr_msg *m = mkmsg(1), *out = NULL;
	char buf[64];
	cr_assert_eq(hr_layer_send(l, "a", m), 0);
	cr_assert_eq(hr_layer_receive(l, "a", 0, &out), HR_ENOTSUP);
	cr_assert_eq(hr_layer_new_channel(l, "x.", buf, sizeof(buf)), HR_ENOTSUP);
	cr_assert_eq(hr_layer_group_add(l, "g", "a"), HR_ENOTSUP);
	cr_assert_eq(hr_layer_group_discard(l, "g", "a"), HR_ENOTSUP);
	cr_assert_eq(hr_layer_group_send(l, "g", m, NULL), HR_ENOTSUP);
	cr_assert_eq(hr_layer_flush(l), HR_ENOTSUP);
	cr_assert_eq(hr_layer_send(l, "bad name", m), HR_EBADNAME, "names checked first");
	hr_msg_unref(m);
	hr_layer_destroy(l);
	static const hr_layer_ops nosend = { .create = bare_create, .destroy = bare_destroy };
	cr_assert_eq(hr_layer_create(&l, &nosend, NULL), HR_EINVAL);
}
