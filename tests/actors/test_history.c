/*
 * test_history.c: one group's recovery ring (actors/history.c): epochs,
 * offsets, exactly the last SIZE frames, expiry by TTL, positions that can
 * and cannot be served, a gap in offsets, the bytes it reports, the glob
 * rules, and the router's frames for a resume (history_table.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history_int.h"

static hr_msg *
frame(uint64_t n)
{
	hr_msg *m;
	char s[32];
	int k = snprintf(s, sizeof(s), "f%llu", (unsigned long long)n);
	cr_assert_eq(hr_msg_copy(s, (size_t)k, &m), 0);
	return m;
}

static uint64_t
num(const hr_msg *m)
{
	unsigned long long n = 0;
	char s[32];
	size_t len = hr_msg_len(m) < sizeof(s) - 1 ? hr_msg_len(m) : sizeof(s) - 1;
	memcpy(s, hr_msg_data(m), len);
	s[len] = '\0';
	cr_assert_eq(sscanf(s, "f%llu", &n), 1);
	return n;
}

static void
append(hr_history *h, uint64_t from, uint64_t to, int64_t t)
{
	for (uint64_t i = from; i <= to; i++) {
		hr_msg *m = frame(i);
		cr_assert_eq(hr_history_append(h, i, m, t), 0);
		hr_msg_unref(m);
	}
}

/* The offsets replayed after `after`, as a small array; -1 when unservable. */
static int
since(hr_history *h, uint64_t after, int64_t now, uint64_t *out, uint32_t *n)
{
	hr_msg **f;
	int rv = hr_history_since(h, after, now, &f, n);
	if (rv != 0)
		return rv;
	for (uint32_t i = 0; i < *n; i++) {
		out[i] = num(f[i]);
		hr_msg_unref(f[i]);
	}
	free(f);
	return 0;
}

Test(history, epoch_is_16_lowercase_hex_and_differs_each_time)
{
	hr_history *a, *b;
	cr_assert_eq(hr_history_create(&a, 10, 60, NULL, 0), 0);
	cr_assert_eq(hr_history_create(&b, 10, 60, NULL, 0), 0);
	cr_assert_eq(strlen(hr_history_epoch(a)), HR_EPOCH_LEN);
	cr_assert(hr_history__epoch_ok(hr_history_epoch(a), HR_EPOCH_LEN));
	cr_assert_str_neq(hr_history_epoch(a), hr_history_epoch(b));
	cr_assert_eq(hr_history_last(a), 0);
	hr_history_destroy(a);
	hr_history_destroy(b);
	cr_assert_eq(hr_history_create(&a, 10, 60, "9f2c41", 0), 0);
	cr_assert_str_eq(hr_history_epoch(a), "9f2c41");
	hr_history_destroy(a);
	cr_assert_eq(hr_history_create(&a, 10, 60, "9F2C41", 0), HR_EINVAL);
	cr_assert_eq(hr_history_create(&a, 0, 60, NULL, 0), HR_EINVAL);
	cr_assert_eq(hr_history_create(&a, 10, 0, NULL, 0), HR_EINVAL);
	hr_history_destroy(NULL);
}

Test(history, keeps_exactly_the_last_size_frames)
{
	hr_history *h;
	uint64_t got[16];
	uint32_t n;

	cr_assert_eq(hr_history_create(&h, 5, 60, NULL, 0), 0);
	append(h, 1, 12, 0);
	cr_assert_eq(hr_history_last(h), 12);
	cr_assert_eq(hr_history_frames(h), 5);
	cr_assert_eq(since(h, 7, 0, got, &n), 0); /* the oldest held is 8 */
	cr_assert_eq(n, 5);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(got[i], 8 + i);
	cr_assert_eq(since(h, 10, 0, got, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(got[0], 11);
	cr_assert_eq(since(h, 12, 0, got, &n), 0); /* nothing missed */
	cr_assert_eq(n, 0);
	cr_assert_eq(since(h, 6, 0, got, &n), HR_ENOENT);  /* older than history */
	cr_assert_eq(since(h, 13, 0, got, &n), HR_ENOENT); /* past the latest */
	cr_assert_eq(hr_history_append(h, 12, NULL, 0), HR_EINVAL);
	cr_assert_eq(hr_history_append(h, 3, NULL, 0), HR_EINVAL);
	hr_history_destroy(h);
}

Test(history, frames_older_than_ttl_are_dropped)
{
	hr_history *h;
	uint64_t got[16];
	uint32_t n;

	cr_assert_eq(hr_history_create(&h, 100, 2, NULL, 0), 0);
	append(h, 1, 3, 0);
	append(h, 4, 5, 1500);
	cr_assert_eq(since(h, 0, 1999, got, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_eq(since(h, 0, 2001, got, &n), HR_ENOENT); /* 1..3 expired */
	cr_assert_eq(since(h, 3, 2001, got, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(hr_history_frames(h), 2);
	cr_assert_not(hr_history_idle(h, 3000));
	cr_assert_eq(since(h, 5, 4000, got, &n), 0); /* all expired, nothing missed */
	cr_assert_eq(n, 0);
	cr_assert_eq(since(h, 4, 4000, got, &n), HR_ENOENT);
	cr_assert(hr_history_idle(h, 4000));
	hr_history_destroy(h);
}

Test(history, a_gap_forgets_what_came_before_and_null_frames_keep_their_offset)
{
	hr_history *h;
	uint64_t got[16];
	uint32_t n;

	cr_assert_eq(hr_history_create(&h, 10, 60, NULL, 0), 0);
	append(h, 1, 3, 0);
	cr_assert_eq(hr_history_append(h, 4, NULL, 0), 0); /* nothing to replay */
	append(h, 5, 5, 0);
	cr_assert_eq(since(h, 2, 0, got, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(got[0], 3);
	cr_assert_eq(got[1], 5);
	append(h, 9, 10, 0); /* 6..8 never seen here */
	cr_assert_eq(since(h, 5, 0, got, &n), HR_ENOENT);
	cr_assert_eq(since(h, 8, 0, got, &n), 0);
	cr_assert_eq(n, 2);
	hr_history_destroy(h);
}

Test(history, bytes_follow_the_frames_held)
{
	hr_history *h;
	cr_assert_eq(hr_history_create(&h, 4, 1, NULL, 0), 0);
	size_t empty = hr_history_bytes(h);
	append(h, 1, 4, 0);
	size_t four = hr_history_bytes(h);
	cr_assert_gt(four, empty);
	append(h, 5, 20, 0);
	cr_assert_lt(hr_history_bytes(h), four + 4 * 8); /* still four frames */
	hr_history_expire(h, 5000);
	cr_assert_eq(hr_history_frames(h), 0);
	cr_assert_lt(hr_history_bytes(h), four);
	hr_history_destroy(h);
}

Test(history, first_matching_rule_wins)
{
	hr_history_rule rules[] = {
		{ .glob = "user_admin", .size = 5, .ttl_s = 10 },
		{ .glob = "user_*", .size = 100, .ttl_s = 300 },
		{ .glob = "notifications", .size = 1000, .ttl_s = 300 },
	};
	cr_assert_eq(hr_history_rule_find(rules, 3, "user_admin", 10), &rules[0]);
	cr_assert_eq(hr_history_rule_find(rules, 3, "user_bob", 8), &rules[1]);
	cr_assert_eq(hr_history_rule_find(rules, 3, "notifications", 13), &rules[2]);
	cr_assert_null(hr_history_rule_find(rules, 3, "other", 5));
	cr_assert_null(hr_history_rule_find(rules, 0, "other", 5));
}

static hr_msg *
event(const char *type, const char *json_message)
{
	/* {"type": type, "message": {"k": <json_message as a string>}} */
	unsigned char b[256];
	size_t tl = strlen(type), ml = strlen(json_message), k = 0;
	hr_msg *m;
	b[k++] = 0x82;
	b[k++] = 0xa4;
	memcpy(b + k, "type", 4);
	k += 4;
	b[k++] = (unsigned char)(0xa0 | tl);
	memcpy(b + k, type, tl);
	k += tl;
	b[k++] = 0xa7;
	memcpy(b + k, "message", 7);
	k += 7;
	b[k++] = 0x81;
	b[k++] = 0xa1;
	b[k++] = 'k';
	b[k++] = (unsigned char)(0xa0 | ml);
	memcpy(b + k, json_message, ml);
	k += ml;
	cr_assert_eq(hr_msg_copy(b, k, &m), 0);
	return m;
}

/* The JSON text of a frame built by hr_ws_frame_text (2-byte header). */
static char *
text_of(const hr_msg *f)
{
	size_t len = hr_msg_len(f);
	const unsigned char *p = hr_msg_data(f);
	size_t hl = (p[1] & 0x7f) == 126 ? 4 : 2;
	char *s = malloc(len - hl + 1);
	memcpy(s, p + hl, len - hl);
	s[len - hl] = '\0';
	return s;
}

/* Frame f is notifications' `recovered` frame with these fields. */
static void
assert_recovered(const hr_msg *f, const char *epoch, unsigned offset, bool ok, unsigned missed)
{
	char want[192];
	snprintf(want, sizeof(want),
	    "{\"type\":\"recovered\",\"group\":\"notifications\",\"epoch\":\"%s\",\"offset\":%u,"
	    "\"recovered\":%s,\"missed\":%u}",
	    epoch, offset, ok ? "true" : "false", missed);
	char *s = text_of(f);
	cr_assert_str_eq(s, want);
	free(s);
}

Test(history_table, numbers_group_sends_builds_envelopes_and_answers_resumes)
{
	hr_history_table t;
	hr_history_rule rule = { .glob = "notifications", .size = 2, .ttl_s = 60 };
	hr_history_conf *conf;
	hr_history *h;
	uint64_t off;
	bool deliver;

	hr_history__table_init(&t);
	cr_assert_eq(hr_history__conf_new(&rule, 1, false, &conf), 0);
	hr_history__table_set(&t, conf);
	hr_msg *ev = event("notification.message", "x");
	for (uint64_t i = 1; i <= 3; i++) {
		cr_assert(hr_history__position(
		    &t, "notifications", 13, false, NULL, 0, 0, false, &h, &off, &deliver));
		cr_assert_not_null(h);
		cr_assert_eq(off, i);
		cr_assert(deliver);
		hr_msg *env = hr_history__envelope(&t, -1, ev, "notifications", h, off);
		cr_assert_not_null(env);
		hr_history__append(&t, h, off, env);
		hr_msg_unref(env);
	}
	char want[160];
	snprintf(want, sizeof(want),
	    "{\"type\":\"message\",\"group\":\"notifications\",\"epoch\":\"%s\",\"offset\":3,"
	    "\"data\":{\"k\":\"x\"}}",
	    hr_history_epoch(h));
	hr_recover_pos pos = { .given = true, .offset = 1 };
	snprintf(pos.epoch, sizeof(pos.epoch), "%s", hr_history_epoch(h));
	hr_replay *rp = hr_history__resume(&t, "notifications", &pos, 0, 1, 42);
	cr_assert_not_null(rp);
	cr_assert_eq(rp->n, 3);
	cr_assert_eq(rp->floor, 3);
	cr_assert_eq(rp->thread, 1);
	cr_assert_eq(rp->conn, 42);
	char *s = text_of(rp->frames[1]);
	cr_assert_str_eq(s, want);
	free(s);
	assert_recovered(rp->frames[2], hr_history_epoch(h), 3, true, 2);
	hr_replay_free(rp);
	pos.offset = 0; /* older than SIZE 2 holds */
	rp = hr_history__resume(&t, "notifications", &pos, 0, 0, 1);
	cr_assert_eq(rp->n, 1);
	hr_replay_free(rp);
	uint32_t gen = 0;
	uint64_t first = 0;
	cr_assert(hr_history__start(&t, "notifications", &gen, &first));
	cr_assert_eq(first, 2);
	cr_assert_eq(gen, hr_history__gen(h));
	cr_assert_not(hr_history__start(&t, "other", &gen, &first));
	/* no position, live from 3 (a fill's wait): recovered at 2, then 3 */
	hr_recover_pos none = { .given = false };
	rp = hr_history__resume(&t, "notifications", &none, 3, 0, 1);
	cr_assert_eq(rp->n, 2);
	cr_assert_eq(rp->floor, 3);
	assert_recovered(rp->frames[0], hr_history_epoch(h), 2, false, 0);
	s = text_of(rp->frames[1]);
	cr_assert(strstr(s, "\"offset\":3,") != NULL, "%s", s);
	free(s);
	hr_replay_free(rp);
	/* live_from that the ring does not hold (past it, or older): from now */
	for (uint64_t from = 1; from <= 4; from += 3) {
		rp = hr_history__resume(&t, "notifications", &none, from, 0, 1);
		cr_assert_eq(rp->n, 1, "live_from %llu", (unsigned long long)from);
		s = text_of(rp->frames[0]);
		cr_assert(strstr(s, "\"offset\":3,") != NULL, "%s", s);
		free(s);
		hr_replay_free(rp);
	}
	/* a group without a rule: no position, envelope and frame without one */
	cr_assert(
	    hr_history__position(&t, "other", 5, false, NULL, 0, 0, false, &h, &off, &deliver));
	cr_assert_null(h);
	hr_msg *env = hr_history__envelope(&t, -1, ev, "other", NULL, 0);
	s = text_of(env);
	cr_assert_str_eq(s, "{\"type\":\"message\",\"group\":\"other\",\"data\":{\"k\":\"x\"}}");
	free(s);
	hr_msg_unref(env);
	env = hr_history__envelope(&t, 0, ev, NULL, NULL, 0);
	s = text_of(env);
	cr_assert_str_eq(s, "{\"type\":\"message\",\"data\":{\"k\":\"x\"}}");
	free(s);
	hr_msg_unref(env);
	rp = hr_history__resume(&t, "other", &pos, 0, 0, 1);
	s = text_of(rp->frames[0]);
	cr_assert_str_eq(s,
	    "{\"type\":\"recovered\",\"group\":\"other\",\"recovered\":false,"
	    "\"missed\":0}");
	free(s);
	hr_replay_free(rp);
	/* an event no consumer handles has no envelope */
	hr_msg *unknown = event("nobody.handles", "x");
	cr_assert_null(hr_history__envelope(&t, -1, unknown, "notifications", NULL, 0));
	hr_msg_unref(unknown);
	hr_history_stats st;
	hr_history__stats(&t, &st);
	cr_assert_eq(st.groups, 1);
	cr_assert_eq(st.frames, 2);
	cr_assert_eq(st.replayed, 2);
	cr_assert_eq(st.unrecoverable, 2);
	cr_assert_gt(st.bytes, 0);
	hr_msg_unref(ev);
	hr_history__table_fini(&t);
}

Test(history_table, positions_given_from_outside_are_kept)
{
	hr_history_table t;
	hr_history_rule rule = { .glob = "g*", .size = 10, .ttl_s = 60 };
	hr_history_conf *conf;
	hr_history *h;
	uint64_t off;
	bool deliver;

	hr_history__table_init(&t);
	cr_assert_eq(hr_history__conf_new(&rule, 1, true, &conf), 0);
	hr_history__table_set(&t, conf);
	/* external numbering: a plain group_send is not numbered nor delivered */
	cr_assert(hr_history__position(&t, "g1", 2, false, NULL, 0, 0, false, &h, &off, &deliver));
	cr_assert_null(h);
	cr_assert_not(deliver);
	cr_assert(hr_history__position(&t, "g1", 2, false, NULL, 0, 0, true, &h, &off, &deliver));
	cr_assert(deliver);
	cr_assert(hr_history__position(&t, "g1", 2, true, "ab12", 7, 0, true, &h, &off, &deliver));
	cr_assert_not_null(h);
	cr_assert_str_eq(hr_history_epoch(h), "ab12");
	cr_assert_eq(off, 7);
	hr_history__append(&t, h, off, NULL);
	/* a duplicate is refused; a later offset is taken as given */
	cr_assert_not(
	    hr_history__position(&t, "g1", 2, true, "ab12", 7, 0, true, &h, &off, &deliver));
	cr_assert(hr_history__position(
	    &t, "g1", 2, true, "ab12", 8, HR_AT_HISTORY_ONLY, true, &h, &off, &deliver));
	cr_assert_not(deliver);
	hr_history__append(&t, h, off, NULL);
	cr_assert_eq(hr_history_last(h), 8);
	/* another epoch starts the ring afresh */
	cr_assert(hr_history__position(&t, "g1", 2, true, "cd34", 1, 0, true, &h, &off, &deliver));
	cr_assert_str_eq(hr_history_epoch(h), "cd34");
	cr_assert_eq(hr_history_last(h), 0);
	hr_history__table_fini(&t);
}
