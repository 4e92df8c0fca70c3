/*
 * test_redis.c: the Redis channel layer against a real redis-server (one per
 * test, started by helper_redis.c), checking both the layer's answers and
 * the exact keys, members, scores and TTLs it leaves in Redis (docs/PROTOCOL.md).
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helper_redis.h"
#include "layer/layer.h"
#include "layer/layer_impl.h"
#include "layer/redis_int.h"

static hr_test_redis srv, srv2;
static hr_layer *L;
static double now_s = 1700000000.25;

static double
fake_clock(void *arg)
{
	(void)arg;
	return now_s;
}

static void
setup(void)
{
	cr_assert_eq(hr_test_redis_start(&srv), 0, "redis-server did not start");
	now_s = 1700000000.25;
}

static void
teardown(void)
{
	hr_layer_destroy(L);
	L = NULL;
	hr_test_redis_stop(&srv);
	hr_test_redis_stop(&srv2);
}

static void
make_layer(size_t capacity, const hr_capacity_rule *rules, size_t nrules, bool fake)
{
	static const char *hosts[2];
	hosts[0] = srv.url;
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.hosts = hosts;
	o.n_hosts = 1;
	if (srv2.pid > 0) {
		hosts[1] = srv2.url;
		o.n_hosts = 2;
	}
	o.capacity = capacity;
	o.channel_capacity = rules;
	o.n_channel_capacity = nrules;
	if (fake)
		o.clock = fake_clock;
	cr_assert_eq(hr_layer_create(&L, &hr_layer_redis_ops, &o), 0);
}

static hr_msg *
json(const char *j)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_codec_json_to_msgpack(j, strlen(j), true, &b, NULL, 0), 0);
	hr_msg *m;
	cr_assert_eq(hr_buf_finish(&b, &m), 0);
	hr_buf_fini(&b);
	return m;
}

static char *
as_json(hr_msg *m)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_codec_msgpack_to_json(hr_msg_data(m), hr_msg_len(m), &b), 0);
	char *s = strndup((const char *)hr_buf_data(&b), hr_buf_len(&b));
	hr_buf_fini(&b);
	return s;
}

static void
send_json(const char *ch, const char *j, int expect)
{
	hr_msg *m = json(j);
	cr_assert_eq(hr_layer_send(L, ch, m), expect, "send %s", ch);
	hr_msg_unref(m);
}

static void
expect_receive(const char *ch, const char *j)
{
	hr_msg *m = NULL;
	cr_assert_eq(hr_layer_receive(L, ch, 0, &m), 0, "receive %s", ch);
	char *s = as_json(m);
	cr_assert_str_eq(s, j);
	free(s);
	hr_msg_unref(m);
}

/* A score a little before now: members written by hand with it are fresh
 * (the layer drops members older than expiry when it pops them) and keep the
 * order of i. i < 16. */
static const char *
recent(int i)
{
	static char buf[16][32];
	snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)time(NULL) - 30 + i);
	return buf[i];
}

static redisReply *
raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	cr_assert_not_null(r);
	return r;
}

static long long
raw_int(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *r = raw(c, fmt, arg);
	cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s %s", fmt, arg);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

TestSuite(redis_layer, .init = setup, .fini = teardown, .timeout = 30);

Test(redis_layer, parses_host_urls_strictly)
{
	char *h, *pw;
	int port;
	long db;
	cr_assert_eq(hr_layer__redis_parse_url("redis://127.0.0.1:6380/3", &h, &port, &pw, &db), 0);
	cr_assert_str_eq(h, "127.0.0.1");
	cr_assert_eq(port, 6380);
	cr_assert_eq(db, 3);
	cr_assert_null(pw);
	free(h);
	cr_assert_eq(
	    hr_layer__redis_parse_url("redis://:s%40cret@localhost", &h, &port, &pw, &db), 0);
	cr_assert_str_eq(h, "localhost");
	cr_assert_str_eq(pw, "s@cret");
	cr_assert_eq(port, 6379);
	free(h);
	free(pw);
	cr_assert_eq(hr_layer__redis_parse_url("redis://[::1]:7000", &h, &port, &pw, &db), 0);
	cr_assert_str_eq(h, "::1");
	free(h);
	static const char *bad[] = {
		"",
		"redis://",
		"rediss://h:1",
		"http://h:1",
		"redis://h:0",
		"redis://h:65536",
		"redis://h:12x",
		"redis://user:pw@h:1",
		"redis://:@h:1",
		"redis://h:1/x",
		"redis://h:1?db=1",
		"redis://h h:1",
		"redis://:p%4@h",
		"redis://[::1:1",
		"redis://h:1/1/2",
		"redis://:%00@h",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(hr_layer__redis_parse_url(bad[i], &h, &port, &pw, &db), HR_EINVAL,
		    "%s", bad[i]);
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	const char *hosts[] = { "redis://h:1", "tcp://h:1" };
	o.hosts = hosts;
	o.n_hosts = 2;
	cr_assert_eq(hr_layer_create(&L, &hr_layer_redis_ops, &o), HR_EINVAL);
	cr_assert_null(L);
}

Test(redis_layer, parses_sentinel_urls_strictly)
{
	hr_redis_shard s;
	memset(&s, 0, sizeof(s));
	cr_assert_eq(
	    hr_layer__redis_parse_sentinel_url(
	        "redis+sentinel://:s%40cret@127.0.0.1:26380,[::1],sent-2.example:7/my.master-1/4",
	        &s),
	    0);
	cr_assert_eq(s.n_sentinels, 3);
	cr_assert_str_eq(s.sentinels[0].host, "127.0.0.1");
	cr_assert_eq(s.sentinels[0].port, 26380);
	cr_assert_str_eq(s.sentinels[1].host, "::1");
	cr_assert_eq(s.sentinels[1].port, 26379);
	cr_assert_str_eq(s.sentinels[2].host, "sent-2.example");
	cr_assert_eq(s.sentinels[2].port, 7);
	cr_assert_str_eq(s.master, "my.master-1");
	cr_assert_str_eq(s.password, "s@cret");
	cr_assert_eq(s.db, 4);
	cr_assert_null(s.host, "the master is asked for, not parsed");
	hr_layer__redis_shard_fini(&s);
	cr_assert_eq(hr_layer__redis_parse_sentinel_url("redis+sentinel://h:1/m/", &s), 0);
	cr_assert_null(s.password);
	cr_assert_eq(s.db, 0);
	hr_layer__redis_shard_fini(&s);

	char many[512] = "redis+sentinel://";
	for (int i = 0; i <= RD_SENTINELS_MAX; i++)
		strcat(many, i ? ",h:1" : "h:1");
	strcat(many, "/m");
	char long_master[300] = "redis+sentinel://h:1/";
	memset(long_master + strlen(long_master), 'm', RD_MASTER_MAX + 1);
	const char *bad[] = {
		"",
		"redis+sentinel://",
		"redis+sentinel://h:1",
		"redis+sentinel://h:1/",
		"redis+sentinel://h:1//0",
		"redis+sentinel://h:1,/m",
		"redis+sentinel://,h:1/m",
		"redis+sentinel://h:0/m",
		"redis+sentinel://h:65536/m",
		"redis+sentinel://user:pw@h:1/m",
		"redis+sentinel://:@h:1/m",
		"redis+sentinel://h:1/m!",
		"redis+sentinel://h:1/m/x",
		"redis+sentinel://h:1/m/1/2",
		"redis+sentinel://h:1/m?x=1",
		"redis+sentinel://[::1:1/m",
		"redis+sentinels://h:1/m",
		"redis://h:1/m",
		many,
		long_master,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, 0, sizeof(s));
		cr_assert_eq(
		    hr_layer__redis_parse_sentinel_url(bad[i], &s), HR_EINVAL, "%s", bad[i]);
		hr_layer__redis_shard_fini(&s);
	}
	/* A bad one among good ones fails the layer's create. */
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	const char *hosts[] = { "redis+sentinel://h:1/m", "redis+sentinel://h:1" };
	o.hosts = hosts;
	o.n_hosts = 2;
	cr_assert_eq(hr_layer_create(&L, &hr_layer_redis_ops, &o), HR_EINVAL);
	cr_assert_null(L);
}

/* Run one command on a pooled connection of shard 0 and give it back; the
 * call's return. */
static int
run_pooled(const char *cmd, const char *arg)
{
	hr_redis *r = L->_be;
	redisContext *c = NULL;
	redisReply *rep = NULL;
	hr_argv a;
	hr_layer__argv_init(&a);
	hr_layer__argv_str(&a, cmd);
	hr_layer__argv_str(&a, arg);
	cr_assert_eq(hr_layer__redis_conn_get(r, 0, &c), 0);
	int rv = hr_layer__redis_run(c, &a, 1, &rep);
	hr_layer__redis_free_replies(&rep, 1);
	hr_layer__redis_conn_put(r, 0, c);
	hr_layer__argv_fini(&a);
	return rv;
}

Test(redis_layer, a_replica_answer_drops_the_connection_other_errors_keep_it)
{
	make_layer(100, NULL, 0, false);
	hr_redis *r = L->_be;
	/* an ordinary error answer: the connection is fine, and kept */
	cr_assert_eq(run_pooled("NOSUCHCOMMAND", "x"), HR_EIO);
	cr_assert_eq(r->shards[0].n_idle, 1);
	cr_assert_eq(run_pooled("GET", "k"), 0);
	cr_assert_eq(r->shards[0].n_idle, 1);
	/* the server becomes a replica: READONLY, and the connection goes */
	cr_assert_eq(hr_test_redis_start(&srv2), 0);
	redisReply *rep = redisCommand(srv.c, "REPLICAOF 127.0.0.1 %d", srv2.port);
	cr_assert(rep != NULL && rep->type == REDIS_REPLY_STATUS);
	freeReplyObject(rep);
	cr_assert_eq(run_pooled("DEL", "k"), HR_EIO);
	cr_assert_eq(r->shards[0].n_idle, 0, "a READONLY connection went back to the pool");
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.failovers, 0, "redis:// shards have no failovers");
	/* the layer's operations report it as Redis being unusable */
	cr_assert_eq(hr_layer_group_add(L, "g", "specific.abc!def"), HR_EIO);
	cr_assert_eq(r->shards[0].n_idle, 0);
	bool moved = true;
	cr_assert_eq(hr_layer_redis_follow(L, 0, &moved), HR_ENOTSUP);
	cr_assert_not(moved);
}

Test(redis_layer, argv_builder_counts_lengths_and_formats_numbers)
{
	/* More arguments than the builder holds inline, numbers among them, so
	 * that it grows and must carry the numbers' text along. */
	hr_argv a;
	hr_layer__argv_init(&a);
	cr_assert_eq(hr_layer__argv_str(&a, "RPUSH"), 0);
	cr_assert_eq(hr_layer__argv_add(&a, "list\0x", 6), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(hr_layer__argv_ll(&a, -1234567890123LL + i), 0);
		cr_assert_eq(hr_layer__argv_score(&a, 1700000000.25 + i), 0);
		cr_assert_eq(hr_layer__argv_secs(&a, 1250 * i), 0);
		cr_assert_eq(hr_layer__argv_add(&a, "bin\0ary", 7), 0);
	}
	cr_assert_eq(a.err, 0);
	cr_assert_eq(a.argc, 22);
	cr_assert_eq(a.lens[0], 5);
	cr_assert_eq(a.lens[1], 6);
	static const char *want[] = { "-1234567890123", "1700000000.25", "0.000", "bin\0ary",
		"-1234567890122", "1700000001.25", "1.250", "bin\0ary", "-1234567890121",
		"1700000002.25", "2.500", "bin\0ary", "-1234567890120", "1700000003.25", "3.750",
		"bin\0ary", "-1234567890119", "1700000004.25", "5.000", "bin\0ary" };
	static const size_t want_len[]
	    = { 14, 13, 5, 7, 14, 13, 5, 7, 14, 13, 5, 7, 14, 13, 5, 7, 14, 13, 5, 7 };
	for (size_t i = 0; i < 20; i++) {
		cr_assert_eq(a.lens[2 + i], want_len[i], "argument %zu", 2 + i);
		cr_assert_eq(memcmp(a.argv[2 + i], want[i], want_len[i]), 0, "argument %zu", 2 + i);
	}
	/* What Redis gets is exactly that. */
	redisReply *rep = NULL;
	cr_assert_eq(hr_layer__redis_run(srv.c, &a, 1, &rep), 0);
	cr_assert_eq(rep->type, REDIS_REPLY_INTEGER);
	cr_assert_eq(rep->integer, 20);
	hr_layer__redis_free_replies(&rep, 1);
	cr_assert_null(rep);
	const char *lr[] = { "LRANGE", "list\0x", "0", "-1" };
	size_t lrl[] = { 6, 6, 1, 2 };
	redisReply *got = redisCommandArgv(srv.c, 4, lr, lrl);
	cr_assert_not_null(got);
	cr_assert_eq(got->elements, 20);
	for (size_t i = 0; i < 20; i++) {
		cr_assert_eq(got->element[i]->len, want_len[i]);
		cr_assert_eq(memcmp(got->element[i]->str, want[i], want_len[i]), 0);
	}
	freeReplyObject(got);
	/* Empty after fini, and reusable. */
	hr_layer__argv_fini(&a);
	cr_assert_eq(a.argc, 0);
	cr_assert_eq(hr_layer__argv_str(&a, "PING"), 0);
	cr_assert_eq(hr_layer__redis_run(srv.c, &a, 1, &rep), 0);
	cr_assert_eq(rep->type, REDIS_REPLY_STATUS);
	hr_layer__redis_free_replies(&rep, 1);
	hr_layer__argv_fini(&a);
}

Test(redis_layer, send_writes_the_channels_redis_layout)
{
	make_layer(100, NULL, 0, true);
	send_json("chat", "{\"type\":\"a\",\"n\":1}", 0);
	redisReply *r = raw(srv.c, "ZRANGE asgichat 0 -1 WITHSCORES");
	cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
	cr_assert_eq(r->elements, 2);
	hr_msg *m = json("{\"type\":\"a\",\"n\":1}");
	cr_assert_eq(r->element[0]->len, 12 + hr_msg_len(m));
	cr_assert_eq(memcmp(r->element[0]->str + 12, hr_msg_data(m), hr_msg_len(m)), 0);
	cr_assert_float_eq(strtod(r->element[1]->str, NULL), now_s, 1e-6);
	freeReplyObject(r);
	hr_msg_unref(m);
	long long ttl = raw_int(srv.c, "TTL %s", "asgichat");
	cr_assert(ttl > 55 && ttl <= 60, "ttl %lld", ttl);
	expect_receive("chat", "{\"type\":\"a\",\"n\":1}");
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgichat"), 0);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgichat$inflight"), 0);
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive(L, "chat", 0, &out), HR_EAGAIN);
	cr_assert_null(out);
}

Test(redis_layer, receives_in_order_and_times_out)
{
	make_layer(100, NULL, 0, false);
	send_json("q", "{\"type\":\"1\"}", 0);
	send_json("q", "{\"type\":\"2\"}", 0);
	expect_receive("q", "{\"type\":\"1\"}");
	expect_receive("q", "{\"type\":\"2\"}");
	hr_msg *out = NULL;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(hr_layer_receive(L, "q", 300, &out), HR_ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_assert(el >= 0.29 && el < 2.0, "waited %f", el);
}

static void *
late_sender(void *arg)
{
	nanosleep(&(struct timespec) { 0, 200000000 }, NULL);
	send_json("late", "{\"type\":\"x\"}", 0);
	return NULL;
}

Test(redis_layer, blocking_receive_gets_a_later_send)
{
	make_layer(100, NULL, 0, false);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, late_sender, NULL), 0);
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive(L, "late", 5000, &out), 0);
	pthread_join(t, NULL);
	char *s = as_json(out);
	cr_assert_str_eq(s, "{\"type\":\"x\"}");
	free(s);
	hr_msg_unref(out);
}

Test(redis_layer, capacity_and_channel_capacity)
{
	static const hr_capacity_rule rules[] = { { "big*", 3 } };
	make_layer(1, rules, 1, true);
	send_json("small", "{\"type\":\"a\"}", 0);
	send_json("small", "{\"type\":\"a\"}", HR_EFULL);
	for (int i = 0; i < 3; i++)
		send_json("bigone", "{\"type\":\"a\"}", 0);
	send_json("bigone", "{\"type\":\"a\"}", HR_EFULL);
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.full, 2);
	cr_assert_eq(raw_int(srv.c, "ZCARD %s", "asgibigone"), 3);
	/* reserved key */
	send_json("x", "{\"type\":\"a\",\"__asgi_channel__\":\"x\"}", HR_EINVAL);
}

Test(redis_layer, expired_messages_are_dropped_before_counting)
{
	make_layer(1, NULL, 0, true);
	send_json("e", "{\"type\":\"old\"}", 0);
	now_s += 59; /* int(now) - 60 is still below the score */
	send_json("e", "{\"type\":\"new\"}", HR_EFULL);
	now_s += 2;
	send_json("e", "{\"type\":\"new\"}", 0);
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.expired, 1);
	expect_receive("e", "{\"type\":\"new\"}");
}

Test(redis_layer, groups_bucket_members_by_process_key)
{
	make_layer(100, NULL, 0, true);
	const char *pa = "specific.00000000000000000000000000000001!a";
	const char *pb = "specific.00000000000000000000000000000001!b";
	cr_assert_eq(hr_layer_group_add(L, "g", "plain"), 0);
	cr_assert_eq(hr_layer_group_add(L, "g", pa), 0);
	cr_assert_eq(hr_layer_group_add(L, "g", pb), 0);
	cr_assert_eq(raw_int(srv.c, "ZCARD %s", "asgi:group:g"), 3);
	long long ttl = raw_int(srv.c, "TTL %s", "asgi:group:g");
	cr_assert(ttl > 86000 && ttl <= 86400);
	hr_msg *m = json("{\"type\":\"hello\",\"text\":\"hi\"}");
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	cr_assert_eq(res.delivered, 3);
	cr_assert_eq(res.full, 0);
	cr_assert_eq(
	    raw_int(srv.c, "ZCARD %s", "asgispecific.00000000000000000000000000000001!"), 1);
	expect_receive("plain", "{\"type\":\"hello\",\"text\":\"hi\"}");
	hr_layer_targets t;
	hr_layer_targets_init(&t);
	hr_msg *out = NULL;
	cr_assert_eq(
	    hr_layer_receive_targets(L, "specific.00000000000000000000000000000001!", 0, &out, &t),
	    0);
	cr_assert_eq(t.n, 2);
	cr_assert_str_eq(t.names[0], pa);
	cr_assert_str_eq(t.names[1], pb);
	cr_assert_eq(hr_msg_len(out), hr_msg_len(m));
	cr_assert_eq(memcmp(hr_msg_data(out), hr_msg_data(m), hr_msg_len(m)), 0);
	hr_msg_unref(out);
	/* a specific channel itself cannot be received alone */
	cr_assert_eq(hr_layer_receive(L, pa, 0, &out), HR_ENOTSUP);
	cr_assert_eq(hr_layer_group_discard(L, "g", pa), 0);
	cr_assert_eq(hr_layer_group_discard(L, "g", "notamember"), 0);
	cr_assert_eq(hr_layer_group_discard(L, "nogroup", "x"), 0);
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	cr_assert_eq(res.delivered, 2);
	cr_assert_eq(
	    hr_layer_receive_targets(L, "specific.00000000000000000000000000000001!", 0, &out, &t),
	    0);
	cr_assert_eq(t.n, 1);
	cr_assert_str_eq(t.names[0], pb);
	hr_msg_unref(out);
	hr_layer_targets_fini(&t);
	cr_assert_eq(hr_layer_group_send(L, "empty", m, &res), 0);
	cr_assert_eq(res.delivered, 0);
	hr_msg_unref(m);
}

Test(redis_layer, send_to_specific_channel_names_it)
{
	make_layer(100, NULL, 0, true);
	char cp[40], ch[HR_NAME_MAX + 1], pk[HR_NAME_MAX + 1];
	cr_assert_eq(hr_layer_client_prefix(L, cp, sizeof(cp)), 0);
	cr_assert_eq(strlen(cp), 32);
	cr_assert_eq(strspn(cp, "0123456789abcdef"), 32);
	cr_assert_eq(cp[12], '4'); /* uuid4().hex */
	cr_assert_eq(hr_layer_new_channel(L, NULL, ch, sizeof(ch)), 0);
	snprintf(pk, sizeof(pk), "specific.%s!", cp);
	cr_assert_eq(strncmp(ch, pk, strlen(pk)), 0, "%s", ch);
	cr_assert_eq(strlen(ch), strlen(pk) + 32);
	cr_assert_eq(hr_layer_new_channel(L, "x", ch, 10), HR_EMSGSIZE);
	cr_assert_eq(hr_layer_new_channel(L, NULL, ch, sizeof(ch)), 0);
	send_json(ch, "{\"type\":\"direct\"}", 0);
	hr_layer_targets t = { 0 };
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive_targets(L, pk, 0, &out, &t), 0);
	cr_assert_eq(t.n, 1);
	cr_assert_str_eq(t.names[0], ch);
	char *s = as_json(out);
	cr_assert_str_eq(s, "{\"type\":\"direct\"}");
	free(s);
	hr_msg_unref(out);
	hr_layer_targets_fini(&t);
}

Test(redis_layer, group_expiry_drops_old_members)
{
	make_layer(100, NULL, 0, true);
	cr_assert_eq(hr_layer_group_add(L, "g", "old"), 0);
	now_s += 86400 - 10;
	cr_assert_eq(hr_layer_group_add(L, "g", "young"), 0);
	now_s += 11;
	hr_msg *m = json("{\"type\":\"t\"}");
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	hr_msg_unref(m);
	cr_assert_eq(res.delivered, 1);
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.group_expired, 1);
	cr_assert_eq(raw_int(srv.c, "ZCARD %s", "asgi:group:g"), 1);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgiold"), 0);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgiyoung"), 1);
}

Test(redis_layer, group_send_skips_full_channels)
{
	static const hr_capacity_rule rules[] = { { "specific.*", 1 } };
	make_layer(2, rules, 1, true);
	cr_assert_eq(hr_layer_group_add(L, "g", "a"), 0);
	cr_assert_eq(hr_layer_group_add(L, "g", "specific.00000000000000000000000000000001!x"), 0);
	cr_assert_eq(hr_layer_group_add(L, "g", "specific.00000000000000000000000000000001!y"), 0);
	hr_msg *m = json("{\"type\":\"t\"}");
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	cr_assert_eq(res.delivered, 3);
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	cr_assert_eq(res.delivered, 1);
	cr_assert_eq(res.full, 2);
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	cr_assert_eq(res.delivered, 0);
	cr_assert_eq(res.full, 3);
	hr_msg_unref(m);
	cr_assert_eq(raw_int(srv.c, "ZCARD %s", "asgia"), 2);
	long long ttl = raw_int(srv.c, "TTL %s", "asgia");
	cr_assert(ttl > 55 && ttl <= 60);
}

Test(redis_layer, inflight_backup_is_restored)
{
	make_layer(100, NULL, 0, false);
	hr_msg *m = json("{\"type\":\"saved\"}");
	char member[256];
	memset(member, 'R', 12);
	memcpy(member + 12, hr_msg_data(m), hr_msg_len(m));
	redisReply *r
	    = raw(srv.c, "ZADD asgiq$inflight %s %b", recent(5), member, 12 + hr_msg_len(m));
	freeReplyObject(r);
	hr_msg_unref(m);
	send_json("q", "{\"type\":\"later\"}", 0);
	expect_receive("q", "{\"type\":\"saved\"}");
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgiq$inflight"), 0);
	expect_receive("q", "{\"type\":\"later\"}");
}

Test(redis_layer, malformed_members_are_dropped_and_counted)
{
	make_layer(100, NULL, 0, false);
	const char *k = "asgiq";
	/* too short; bad msgpack; not a map; trailing bytes; bad target type;
	 * bad target name */
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", k, recent(1), "short", (size_t)5));
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", k, recent(2), "RRRRRRRRRRRR\xc1", (size_t)13));
	freeReplyObject(
	    raw(srv.c, "ZADD %s %s %b", k, recent(3), "RRRRRRRRRRRR\x93\x01\x02\x03", (size_t)16));
	freeReplyObject(
	    raw(srv.c, "ZADD %s %s %b", k, recent(4), "RRRRRRRRRRRR\x80\x80", (size_t)14));
	hr_buf b;
	hr_buf_init(&b, 0);
	hr_buf_append(&b, "RRRRRRRRRRRR", 12);
	hr_mp_map(&b, 1);
	hr_mp_cstr(&b, "__asgi_channel__");
	hr_mp_int(&b, 7);
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", k, recent(5), hr_buf_data(&b), hr_buf_len(&b)));
	hr_buf_reset(&b);
	hr_buf_append(&b, "RRRRRRRRRRRR", 12);
	hr_mp_map(&b, 1);
	hr_mp_cstr(&b, "__asgi_channel__");
	hr_mp_array(&b, 1);
	hr_mp_cstr(&b, "bad name");
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", k, recent(6), hr_buf_data(&b), hr_buf_len(&b)));
	hr_buf_fini(&b);
	freeReplyObject(
	    raw(srv.c, "ZADD %s 7000000000 %b", k, "RRRRRRRRRRRR\x81\xa4type\xa2ok", (size_t)21));
	expect_receive("q", "{\"type\":\"ok\"}");
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.bad, 6);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgiq"), 0);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgiq$inflight"), 0);
	/* a process key's member must name channels of that process */
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", "asgispecific.p!", recent(1),
	    "RRRRRRRRRRRR\x81\xb0__asgi_channel__\xa9other!abc", (size_t)40));
	hr_layer_targets t = { 0 };
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive_targets(L, "specific.p!", 0, &out, &t), HR_EAGAIN);
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.bad, 7);
	/* group members that are not channel names are skipped */
	freeReplyObject(raw(srv.c, "ZADD asgi:group:g 9999999999 %s", "bad name"));
	freeReplyObject(raw(srv.c, "ZADD asgi:group:g 9999999999 %s", "good"));
	hr_msg *m = json("{\"type\":\"t\"}");
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "g", m, &res), 0);
	hr_msg_unref(m);
	cr_assert_eq(res.delivered, 1);
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.bad, 8);
}

Test(redis_layer, flush_deletes_only_the_prefix)
{
	make_layer(100, NULL, 0, false);
	send_json("a", "{\"type\":\"t\"}", 0);
	cr_assert_eq(hr_layer_group_add(L, "g", "a"), 0);
	freeReplyObject(raw(srv.c, "SET other 1"));
	cr_assert_eq(hr_layer_flush(L), 0);
	redisReply *r = raw(srv.c, "KEYS *");
	cr_assert_eq(r->elements, 1);
	cr_assert_str_eq(r->element[0]->str, "other");
	freeReplyObject(r);
}

Test(redis_layer, two_shards_follow_consistent_hash)
{
	cr_assert_eq(hr_test_redis_start(&srv2), 0);
	make_layer(100, NULL, 0, false);
	/* crc32 & 0xfff / 2048: "beta" -> 0, "alpha" -> 1 (channels_redis) */
	cr_assert_eq(hr_layer_group_add(L, "beta", "c"), 0);
	cr_assert_eq(hr_layer_group_add(L, "alpha", "c"), 0);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgi:group:beta"), 1);
	cr_assert_eq(raw_int(srv2.c, "EXISTS %s", "asgi:group:alpha"), 1);
	cr_assert_eq(raw_int(srv.c, "EXISTS %s", "asgi:group:alpha"), 0);
	/* specific channels by their non-local name: ...08! -> 1, ...00! -> 0 */
	const char *s1 = "specific.00000000000000000000000000000008!abc";
	const char *s0 = "specific.00000000000000000000000000000000!abc";
	send_json(s1, "{\"type\":\"one\"}", 0);
	send_json(s0, "{\"type\":\"zero\"}", 0);
	cr_assert_eq(
	    raw_int(srv2.c, "ZCARD %s", "asgispecific.00000000000000000000000000000008!"), 1);
	cr_assert_eq(
	    raw_int(srv.c, "ZCARD %s", "asgispecific.00000000000000000000000000000000!"), 1);
	/* normal channels round-robin; receive finds them on either shard */
	send_json("rr", "{\"type\":\"1\"}", 0);
	send_json("rr", "{\"type\":\"2\"}", 0);
	cr_assert_eq(raw_int(srv.c, "ZCARD %s", "asgirr"), 1);
	cr_assert_eq(raw_int(srv2.c, "ZCARD %s", "asgirr"), 1);
	hr_msg *out;
	cr_assert_eq(hr_layer_receive(L, "rr", 0, &out), 0);
	hr_msg_unref(out);
	cr_assert_eq(hr_layer_receive(L, "rr", 0, &out), 0);
	hr_msg_unref(out);
	cr_assert_eq(hr_layer_receive(L, "rr", 0, &out), HR_EAGAIN);
	/* group_send: one member per process key, each on its own shard */
	cr_assert_eq(hr_layer_group_add(L, "alpha", s1), 0);
	cr_assert_eq(hr_layer_group_add(L, "alpha", s0), 0);
	hr_msg *m = json("{\"type\":\"g\"}");
	hr_group_send_result res;
	cr_assert_eq(hr_layer_group_send(L, "alpha", m, &res), 0);
	hr_msg_unref(m);
	cr_assert_eq(res.delivered, 3);
	cr_assert_eq(
	    raw_int(srv2.c, "ZCARD %s", "asgispecific.00000000000000000000000000000008!"), 2);
	cr_assert_eq(
	    raw_int(srv.c, "ZCARD %s", "asgispecific.00000000000000000000000000000000!"), 2);
	/* "c" hashes to shard 1 for group_send (core.py hashes the name) */
	cr_assert_eq(raw_int(srv2.c, "ZCARD %s", "asgic"), 1);
	/* a process key drains on every shard (Python's send hashes the
	 * full name, so its messages may sit on another shard) */
	freeReplyObject(raw(srv2.c, "ZADD %s %s %b",
	    "asgispecific.00000000000000000000000000000000!", recent(1),
	    "RRRRRRRRRRRR\x81\xb0__asgi_channel__\xd9\x2d"
	    "specific.00000000000000000000000000000000!abc",
	    (size_t)(12 + 1 + 17 + 2 + 45)));
	hr_layer_targets t = { 0 };
	int got = 0;
	for (int i = 0; i < 4; i++) {
		int rv = hr_layer_receive_targets(
		    L, "specific.00000000000000000000000000000000!", 0, &out, &t);
		if (rv == HR_EAGAIN)
			break;
		cr_assert_eq(rv, 0);
		cr_assert_str_eq(t.names[0], s0);
		hr_msg_unref(out);
		got++;
	}
	cr_assert_eq(got, 3);
	hr_layer_targets_fini(&t);
	cr_assert_eq(hr_layer_flush(L), 0);
	cr_assert_eq(raw_int(srv.c, "DBSIZE%s", ""), 0);
	cr_assert_eq(raw_int(srv2.c, "DBSIZE%s", ""), 0);
}

Test(redis_layer, redis_down_is_eio_and_recovers)
{
	make_layer(100, NULL, 0, false);
	send_json("a", "{\"type\":\"t\"}", 0);
	int port = srv.port;
	hr_test_redis_stop(&srv);
	send_json("a", "{\"type\":\"t\"}", HR_EIO);
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive(L, "a", 0, &out), HR_EIO);
	cr_assert_eq(hr_layer_group_add(L, "g", "a"), HR_EIO);
	cr_assert_eq(hr_layer_flush(L), HR_EIO);
	cr_assert_eq(hr_test_redis_start_on(&srv, port), 0);
	send_json("a", "{\"type\":\"back\"}", 0);
	expect_receive("a", "{\"type\":\"back\"}");
}

static void *
blocked_receiver(void *arg)
{
	hr_msg *out = NULL;
	*(int *)arg = hr_layer_receive(L, "never", -1, &out);
	return NULL;
}

Test(redis_layer, destroy_stops_a_blocked_receiver)
{
	make_layer(100, NULL, 0, false);
	int rv = 1;
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, blocked_receiver, &rv), 0);
	nanosleep(&(struct timespec) { 0, 300000000 }, NULL);
	hr_layer_destroy(L);
	L = NULL;
	pthread_join(t, NULL);
	cr_assert_eq(rv, HR_ECLOSED);
}

Test(redis_layer, batch_receive_drains_a_process_key, .timeout = 60)
{
	make_layer(100000, NULL, 0, false);
	const char *pk = "specific.00000000000000000000000000000001!";
	char ch[HR_NAME_MAX + 1];
	snprintf(ch, sizeof(ch), "%sg.room", pk);
	cr_assert_eq(hr_layer_group_add(L, "room", ch), 0);
	hr_msg *m = json("{\"type\":\"chat\",\"text\":\"hello\"}");
	enum { N = 20000 };
	for (int i = 0; i < N; i++) {
		hr_group_send_result res;
		cr_assert_eq(hr_layer_group_send(L, "room", m, &res), 0);
		cr_assert_eq(res.delivered, 1);
		if (i == 100) /* garbage in the middle: dropped, counted */
			freeReplyObject(raw(srv.c, "ZADD %s 9999999999 %s",
			    "asgi"
			    "specific.00000000000000000000000000000001!",
			    "junk-member-xx"));
	}
	/* a member left in the backup by a reader that died comes back first */
	freeReplyObject(raw(srv.c, "ZADD %s %s %b",
	    "asgispecific.00000000000000000000000000000001!$inflight", recent(1),
	    "RRRRRRRRRRRR\x81\xb0__asgi_channel__\xd9\x30specific."
	    "00000000000000000000000000000001!g.room",
	    (size_t)(12 + 1 + 17 + 2 + 48)));
	static hr_layer_item items[100];
	size_t n, total = 0;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int round = 0; round < 1000 && total < N + 1; round++) {
		int rv = hr_layer_receive_batch(L, pk, 0, items, 100, &n);
		cr_assert_eq(rv, 0, "round %d: %s total %zu", round, hr_strerror(rv), total);
		cr_assert(n >= 1 && n <= 100);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(items[i].targets.n, 1);
			cr_assert_str_eq(items[i].targets.names[0], ch);
			if (total + i > 0)
				cr_assert_eq(memcmp(hr_msg_data(items[i].msg), hr_msg_data(m),
				                 hr_msg_len(m)),
				    0);
		}
		total += n;
		hr_layer_items_release(items, n);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_log_info("drained %zu messages in %.3f s (%.0f/s)", total, el, (double)total / el);
	fprintf(stderr, "batch drain: %zu messages in %.3f s (%.0f/s)\n", total, el,
	    (double)total / el);
	cr_assert_eq(total, N + 1);
	cr_assert_eq(hr_layer_receive_batch(L, pk, 0, items, 100, &n), HR_EAGAIN);
	cr_assert_eq(n, 0);
	cr_assert_eq(hr_layer_receive_batch(L, pk, 200, items, 100, &n), HR_ETIMEDOUT);
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.bad, 1);
	cr_assert_eq(
	    raw_int(srv.c, "EXISTS %s", "asgispecific.00000000000000000000000000000001!$inflight"),
	    0);
	hr_msg_unref(m);
	/* memory backend: not offered */
	hr_layer *mem;
	cr_assert_eq(hr_layer_create(&mem, &hr_layer_memory_ops, NULL), 0);
	cr_assert_eq(hr_layer_receive_batch(mem, pk, 0, items, 100, &n), HR_ENOTSUP);
	hr_layer_targets t = { 0 };
	hr_msg *out;
	cr_assert_eq(hr_layer_receive_targets(mem, pk, 0, &out, &t), HR_ENOTSUP);
	hr_layer_destroy(mem);
}

Test(redis_layer, members_older_than_expiry_are_dropped_when_popped)
{
	make_layer(100, NULL, 0, false);
	/* channels_redis only cleans a key when it next sends to it: a member
	 * that aged past expiry in a key nobody sent to since must not come
	 * back (single receive and batch alike), and counts as expired */
	const char *member = "RRRRRRRRRRRR\x81\xa4type\xa3old";
	char old[32];
	snprintf(old, sizeof(old), "%lld", (long long)time(NULL) - 61);
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", "asgiq", old, member, (size_t)20));
	hr_msg *out = NULL;
	cr_assert_eq(hr_layer_receive(L, "q", 0, &out), HR_EAGAIN);
	hr_layer_stats st;
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.bad, 0);
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", "asgispecific.p!", old,
	    "RRRRRRRRRRRR\x82\xa4type\xa3old\xb0__asgi_channel__\xaespecific.p!abc", (size_t)54));
	freeReplyObject(raw(srv.c, "ZADD %s %s %b", "asgispecific.p!", recent(1),
	    "RRRRRRRRRRRR\x82\xa4type\xa3new\xb0__asgi_channel__\xaespecific.p!abc", (size_t)54));
	hr_layer_item items[4];
	size_t n = 0;
	cr_assert_eq(hr_layer_receive_batch(L, "specific.p!", 0, items, 4, &n), 0);
	cr_assert_eq(n, 1);
	const char *type;
	size_t tlen;
	cr_assert_eq(
	    hr_codec_get_type(hr_msg_data(items[0].msg), hr_msg_len(items[0].msg), &type, &tlen),
	    0);
	cr_assert(tlen == 3 && memcmp(type, "new", 3) == 0);
	hr_layer_items_release(items, n);
	hr_layer_get_stats(L, &st);
	cr_assert_eq(st.expired, 2);
}
