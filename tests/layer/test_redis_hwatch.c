/*
 * test_redis_hwatch.c: the history thread's blocking waits (layer.h,
 * hr_layer_hwatch) against a real redis-server: a group_send to a history
 * group wakes the watch without popping anything, the pump then numbers
 * the copy and the log read wakes on its entry; writes to other keys wake
 * nothing; a log read that started before a later one skips what that one
 * read; a killed connection is made again by the next arm; a Redis that
 * refuses tracking is reported once and then left alone.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <poll.h>
#include <string.h>

#include "helper_redis.h"
#include "layer/layer.h"
#include "layer/layer_impl.h"
#include "layer/redis_int.h"

#define MAX_EV 8
#define WAIT_MS 5000 /* every poll is bounded; a wake-up comes within ms */
#define QUIET_MS 300 /* how long "nothing wakes" is watched */

static hr_test_redis srv;
static hr_layer *L;
static hr_layer_hwatch *W;
static char cursor[HR_HISTORY_CURSOR];
static hr_layer_hevent ev[MAX_EV];

static void
setup(void)
{
	cr_assert_eq(hr_test_redis_start(&srv), 0, "redis-server did not start");
	static const char *hosts[1];
	hosts[0] = srv.url;
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.hosts = hosts;
	o.n_hosts = 1;
	cr_assert_eq(hr_layer_create(&L, &hr_layer_redis_ops, &o), 0);
	cr_assert_eq(hr_layer_history_register(L, "g", 10, 60), 0);
	cr_assert_eq(hr_layer_hwatch_new(L, 0, MAX_EV, &W), 0);
	/* fix the cursor at the log's end, as the history thread's first tail */
	size_t n = 1;
	memset(cursor, 0, sizeof(cursor));
	cr_assert_eq(hr_layer_history_tail(L, 0, cursor, 0, ev, MAX_EV, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert(cursor[0] != '\0');
}

static void
teardown(void)
{
	hr_layer_hwatch_free(W);
	W = NULL;
	hr_layer_destroy(L);
	L = NULL;
	hr_test_redis_stop(&srv);
}

TestSuite(redis_hwatch, .init = setup, .fini = teardown, .timeout = 60);

static void
group_send(const char *text)
{
	hr_buf b;
	hr_msg *m;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_codec_json_to_msgpack(text, strlen(text), true, &b, NULL, 0), 0);
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	hr_buf_fini(&b);
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	hr_msg_unref(m);
}

/* Poll the watch's descriptors for up to ms; which were readable. */
static int
wait_fds(const int fds[2], bool ready[2], int ms)
{
	struct pollfd p[2]
	    = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
	int rv = poll(p, 2, ms);
	cr_assert(rv >= 0);
	ready[0] = (p[0].revents & (POLLIN | POLLHUP)) != 0;
	ready[1] = (p[1].revents & (POLLIN | POLLHUP)) != 0;
	return rv;
}

/* Arm until armed (a new tracking connection says 1 once), then read the
 * subscription's answer: the watch is then quiet until something lands. */
static void
arm_quiet(int fds[2])
{
	bool ready[2], changed = true;
	size_t n = 0;
	cr_assert_eq(hr_layer_hwatch_arm(W, cursor, fds), 1, "tracking is new");
	cr_assert_eq(hr_layer_hwatch_arm(W, cursor, fds), 0);
	cr_assert(fds[0] >= 0 && fds[1] >= 0, "both connections there");
	cr_assert_eq(wait_fds(fds, ready, WAIT_MS), 1);
	cr_assert(ready[1] && !ready[0]);
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), 0);
	cr_assert(!changed, "the subscription's answer is no change");
	cr_assert_eq(n, 0);
}

static long long
raw_int(const char *cmd, const char *arg)
{
	redisReply *r = redisCommand(srv.c, cmd, arg);
	cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

/* The shared key's copies waiting to be numbered. */
static long long
waiting(void)
{
	char key[RD_KEY_MAX];
	(void)hr_layer__history_shared_key(L, 0, key);
	return raw_int("ZCARD %s", key);
}

Test(redis_hwatch, a_group_send_wakes_it_and_the_log_read_follows_the_pump)
{
	int fds[2];
	bool ready[2], changed = false;
	size_t n = 0, k = 0;

	arm_quiet(fds);
	cr_assert_eq(wait_fds(fds, ready, QUIET_MS), 0, "nothing landed: no wake-up");
	group_send("{\"type\":\"t\",\"n\":1}");
	cr_assert_eq(wait_fds(fds, ready, WAIT_MS), 1);
	cr_assert(ready[1] && !ready[0], "the note first");
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(n, 0);
	cr_assert_eq(waiting(), 1, "the watch pops nothing");

	cr_assert_eq(hr_layer_history_pump(L, 0, MAX_EV, &k), 0);
	cr_assert_eq(k, 1);
	cr_assert_eq(hr_layer_hwatch_arm(W, cursor, fds), 0);
	cr_assert_eq(wait_fds(fds, ready, WAIT_MS) >= 1, true);
	cr_assert(ready[0]);
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(ev[0].group, "g");
	cr_assert_eq(ev[0].offset, 1);
	hr_buf j;
	hr_buf_init(&j, 0);
	cr_assert_eq(
	    hr_codec_msgpack_to_json(hr_msg_data(ev[0].msg), hr_msg_len(ev[0].msg), &j), 0);
	cr_assert_eq(hr_buf_putc(&j, '\0'), 0);
	cr_assert(strstr((const char *)hr_buf_data(&j), "\"n\":1") != NULL, "%s",
	    (const char *)hr_buf_data(&j));
	hr_buf_fini(&j);
	hr_layer_hevents_release(ev, n);
}

Test(redis_hwatch, writes_to_other_keys_wake_nothing)
{
	int fds[2];
	bool ready[2];

	arm_quiet(fds);
	char key[RD_KEY_MAX];
	(void)hr_layer__history_shared_key(L, 0, key);
	/* a process key beside the shared one, and a plain key */
	cr_assert_eq(raw_int("ZADD asgispecific.0123456789abcdef0123456789abcdef! 1 %s", "m"), 1);
	cr_assert_eq(raw_int("INCR %s", "other"), 1);
	cr_assert_eq(wait_fds(fds, ready, QUIET_MS), 0);
}

Test(redis_hwatch, a_log_read_skips_what_a_later_read_took)
{
	int fds[2];
	bool ready[2], changed;
	size_t n = 0, k = 0;
	char old[HR_HISTORY_CURSOR];

	arm_quiet(fds);
	memcpy(old, cursor, sizeof(old));
	group_send("{\"type\":\"t\"}");
	cr_assert_eq(hr_layer_history_pump(L, 0, MAX_EV, &k), 0);
	cr_assert_eq(k, 1);
	/* the pool's tail reads the entry first */
	cr_assert_eq(hr_layer_history_tail(L, 0, cursor, 0, ev, MAX_EV, &n), 0);
	cr_assert_eq(n, 1);
	hr_layer_hevents_release(ev, n);
	cr_assert(strcmp(cursor, old) != 0);
	/* the watch's read, sent before, answers that entry: skipped */
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1);
	ready[0] = true;
	ready[1] = false;
	n = 5;
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), 0);
	cr_assert_eq(n, 0);
}

Test(redis_hwatch, a_killed_connection_is_made_again)
{
	int fds[2];
	bool ready[2], changed;
	size_t n = 0;

	arm_quiet(fds);
	/* every connection but the test's own */
	redisReply *r = redisCommand(srv.c, "CLIENT KILL TYPE normal SKIPME yes");
	cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
	freeReplyObject(r);
	r = redisCommand(srv.c, "CLIENT KILL TYPE pubsub SKIPME yes");
	cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	freeReplyObject(r);
	cr_assert(wait_fds(fds, ready, WAIT_MS) > 0);
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), HR_EIO);
	/* both come back, and a group_send wakes the new note */
	arm_quiet(fds);
	group_send("{\"type\":\"t\"}");
	cr_assert_eq(wait_fds(fds, ready, WAIT_MS), 1);
	cr_assert_eq(hr_layer_hwatch_read(W, ready, cursor, ev, MAX_EV, &n, &changed), 0);
	cr_assert(changed);
}

Test(redis_hwatch, a_redis_without_tracking_is_told_once)
{
	int fds[2];
	redisReply *r = redisCommand(srv.c, "ACL SETUSER default -client|tracking");
	cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS, "%s", r != NULL ? r->str : "");
	freeReplyObject(r);
	cr_assert_eq(hr_layer_hwatch_arm(W, cursor, fds), HR_ENOTSUP);
	cr_assert_eq(fds[1], -1);
	cr_assert(fds[0] >= 0, "the log read still waits");
	r = redisCommand(srv.c, "INFO stats");
	cr_assert(r != NULL && r->type == REDIS_REPLY_STRING);
	const char *p = strstr(r->str, "total_connections_received:");
	cr_assert(p != NULL);
	long conns = strtol(p + strlen("total_connections_received:"), NULL, 10);
	freeReplyObject(r);
	/* never asked again: no new connection */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(hr_layer_hwatch_arm(W, cursor, fds), HR_ENOTSUP);
	r = redisCommand(srv.c, "INFO stats");
	p = strstr(r->str, "total_connections_received:");
	cr_assert_eq(strtol(p + strlen("total_connections_received:"), NULL, 10), conns);
	freeReplyObject(r);
}
