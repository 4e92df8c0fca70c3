/*
 * test_worker.c: the worker actor (actors/worker.c) with the real router, a
 * memory layer and a recording consumer actor standing where the WebSocket
 * consumers stand: the status mails in order, the `sent` step's notification,
 * the user group, the bounded status table and refused bodies.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/actor.h"
#include "actors/worker_int.h"

#define CONN_ALL 1u  /* member of `notifications` */
#define CONN_USER 2u /* member of `user_42` */
#define MAX_EVENTS 4096

struct recorder {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t n; /* {lock} */
	uint64_t conn[MAX_EVENTS];
	char *json[MAX_EVENTS];
};

static struct recorder REC;
static hr_layer *LAYER;
static hr_actor *CONSUMER;
static hr_router *ROUTER;
static hr_worker *W;

static void
record(hr_actor *self, void *state, hr_mail *mail)
{
	struct recorder *rc = state;
	hr_fanout *f = mail->p1;
	mail->p1 = NULL;
	hr_buf b;
	hr_buf_init(&b, 0);
	int r = hr_codec_msgpack_to_json(hr_msg_data(f->event), hr_msg_len(f->event), &b);
	char *json = NULL;
	if (r == 0) {
		json = malloc(hr_buf_len(&b) + 1);
		if (json != NULL) {
			memcpy(json, hr_buf_data(&b), hr_buf_len(&b));
			json[hr_buf_len(&b)] = '\0';
		}
	}
	hr_buf_fini(&b);
	pthread_mutex_lock(&rc->lock);
	for (uint32_t t = 0; t < f->n_threads && t < HR_MAX_THREADS; t++) {
		if (f->ids[t] == NULL)
			continue;
		for (uint32_t i = 0; i < f->ids[t]->n && rc->n < MAX_EVENTS; i++) {
			rc->conn[rc->n] = f->ids[t]->ids[i];
			rc->json[rc->n] = json ? strdup(json) : NULL;
			rc->n++;
		}
	}
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	free(json);
	hr_fanout_free(f);
}

static void
drop(void *arg, hr_mail *mail)
{
	if (mail->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(mail->p1);
}

static const hr_actor_fn consumer_handlers[] = { record };

static void
start(size_t max_kept)
{
	pthread_mutex_init(&REC.lock, NULL);
	pthread_cond_init(&REC.cond, NULL);
	REC.n = 0;
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	cr_assert_eq(hr_layer_create(&LAYER, &hr_layer_memory_ops, &o), 0);
	hr_actor_spec spec = { .name = "recorder",
		.mailbox_capacity = 1024,
		.state = &REC,
		.handlers = consumer_handlers,
		.n_handlers = 1,
		.drop = drop };
	cr_assert_eq(hr_actor_spawn(&CONSUMER, &spec), 0);
	cr_assert_eq(hr_router_create(&ROUTER, LAYER, &CONSUMER, 1, 1024), 0);
	hr_member all = { .thread = 0, .consumer = 0, .conn = CONN_ALL };
	hr_member user = { .thread = 0, .consumer = 0, .conn = CONN_USER };
	cr_assert_eq(hr_router_group_add(ROUTER, "notifications", all, 1000), 0);
	cr_assert_eq(hr_router_group_add(ROUTER, "user_42", user, 1000), 0);
	cr_assert_eq(hr_worker_create(&W, ROUTER, max_kept), 0);
}

static void
stop(void)
{
	hr_worker_destroy(W);
	hr_router_destroy(ROUTER);
	hr_actor_join(CONSUMER);
	hr_layer_destroy(LAYER);
	for (size_t i = 0; i < REC.n; i++)
		free(REC.json[i]);
	pthread_cond_destroy(&REC.cond);
	pthread_mutex_destroy(&REC.lock);
	W = NULL;
	ROUTER = NULL;
	CONSUMER = NULL;
	LAYER = NULL;
}

static void
setup_default(void)
{
	start(0);
}

/* Wait (5 s at most) until `count` events reached conn; returns how many did. */
static size_t
wait_events(uint64_t conn, size_t count)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	size_t have = 0;
	pthread_mutex_lock(&REC.lock);
	for (;;) {
		have = 0;
		for (size_t i = 0; i < REC.n; i++)
			have += REC.conn[i] == conn;
		if (have >= count)
			break;
		if (pthread_cond_timedwait(&REC.cond, &REC.lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&REC.lock);
	return have;
}

/* The k-th event (0-based) that reached conn, parsed. */
static json_t *
event_for(uint64_t conn, size_t k)
{
	json_t *out = NULL;
	pthread_mutex_lock(&REC.lock);
	for (size_t i = 0; i < REC.n; i++) {
		if (REC.conn[i] != conn)
			continue;
		if (k-- == 0) {
			cr_assert_not_null(REC.json[i]);
			out = json_loads(REC.json[i], 0, NULL);
			break;
		}
	}
	pthread_mutex_unlock(&REC.lock);
	cr_assert_not_null(out, "no event %zu for conn %llu", k, (unsigned long long)conn);
	return out;
}

static void
assert_iso(const char *ts)
{
	int y, mo, d, h, mi, s, us;
	char tail[16];
	cr_assert_not_null(ts);
	cr_assert_eq(strlen(ts), 32, "timestamp '%s'", ts);
	cr_assert_eq(
	    sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%15s", &y, &mo, &d, &h, &mi, &s, &us, tail), 8,
	    "timestamp '%s'", ts);
	cr_assert_str_eq(tail, "+00:00");
	cr_assert(y >= 2024 && mo >= 1 && mo <= 12);
}

static void
assert_status_event(json_t *ev, const char *id, const char *status)
{
	cr_assert_str_eq(json_string_value(json_object_get(ev, "type")), "notification_message");
	json_t *m = json_object_get(ev, "message");
	cr_assert(json_is_object(m));
	cr_assert_str_eq(json_string_value(json_object_get(m, "notification_id")), id);
	cr_assert_str_eq(json_string_value(json_object_get(m, "status")), status);
	assert_iso(json_string_value(json_object_get(m, "timestamp")));
	bool has_n = json_object_get(m, "notification") != NULL;
	cr_assert_eq(has_n, strcmp(status, "sent") == 0, "notification only on sent");
	cr_assert_eq(json_object_size(m), has_n ? 4u : 3u);
}

/* Poll hr_worker_get until the status is `want` (5 s at most). */
static void
wait_status(const char *id, const char *want)
{
	hr_notification_info info;
	for (int i = 0; i < 500; i++) {
		if (hr_worker_get(W, id, &info) == 0 && strcmp(info.status, want) == 0)
			return;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("%s never became %s", id, want);
}

TestSuite(worker, .timeout = 30);

Test(worker, three_status_mails_in_order, .init = setup_default, .fini = stop)
{
	const char body[] = "{\"title\":\"hello\"}";
	char id[37], err[128];
	cr_assert_eq(hr_worker_submit(W, body, strlen(body), id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(id), 36);
	cr_assert_eq(id[14], '4', "uuid version 4: %s", id);
	cr_assert(strchr("89ab", id[19]) != NULL, "uuid variant: %s", id);
	cr_assert_eq(wait_events(CONN_ALL, 3), 3);
	const char *want[] = { "queued", "processing", "sent" };
	for (size_t k = 0; k < 3; k++) {
		json_t *ev = event_for(CONN_ALL, k);
		assert_status_event(ev, id, want[k]);
		json_decref(ev);
	}
	json_t *ev = event_for(CONN_ALL, 2);
	json_t *n = json_object_get(json_object_get(ev, "message"), "notification");
	cr_assert_eq(json_object_size(n), 5);
	cr_assert_str_eq(json_string_value(json_object_get(n, "id")), id);
	cr_assert_str_eq(json_string_value(json_object_get(n, "title")), "hello");
	const char *keys[] = { "body", "data", "user_id" };
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(n, keys[i]);
		cr_assert_not_null(v, "%s missing", keys[i]);
		cr_assert(json_is_null(v), "%s should be null", keys[i]);
	}
	json_decref(ev);
	cr_assert_eq(wait_events(CONN_USER, 1), 0, "no user group without user_id");

	hr_notification_info info;
	wait_status(id, "sent");
	cr_assert_eq(hr_worker_get(W, id, &info), 0);
	cr_assert_str_eq(info.id, id);
	assert_iso(info.created_at);
	assert_iso(info.updated_at);
	cr_assert(strcmp(info.updated_at, info.created_at) >= 0);
	hr_worker_stats st;
	hr_worker_get_stats(W, &st);
	cr_assert_eq(st.submitted, 1);
	cr_assert_eq(st.sent, 1);
	cr_assert_eq(st.failed, 0);
	cr_assert_eq(st.kept, 1);
}

Test(worker, user_id_also_reaches_the_user_group, .init = setup_default, .fini = stop)
{
	const char body[] = "{\"title\":\"t\",\"body\":\"b\\u00e9\",\"user_id\":\"42\","
	                    "\"data\":{\"k\":[1,2.5,\"x\"],\"n\":null}}";
	char id[37], err[128];
	cr_assert_eq(hr_worker_submit(W, body, strlen(body), id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(wait_events(CONN_USER, 3), 3);
	cr_assert_eq(wait_events(CONN_ALL, 3), 3);
	const char *want[] = { "queued", "processing", "sent" };
	for (size_t k = 0; k < 3; k++) {
		json_t *ev = event_for(CONN_USER, k);
		assert_status_event(ev, id, want[k]);
		json_decref(ev);
	}
	json_t *ev = event_for(CONN_USER, 2);
	json_t *n = json_object_get(json_object_get(ev, "message"), "notification");
	cr_assert_str_eq(json_string_value(json_object_get(n, "body")), "b\xc3\xa9");
	cr_assert_str_eq(json_string_value(json_object_get(n, "user_id")), "42");
	json_t *want_data = json_loads("{\"k\":[1,2.5,\"x\"],\"n\":null}", 0, NULL);
	cr_assert(json_equal(json_object_get(n, "data"), want_data), "data came through");
	json_decref(want_data);
	json_decref(ev);
}

Test(worker, consecutive_notifications_stay_in_order, .init = setup_default, .fini = stop)
{
	char ids[20][37], err[128];
	for (int i = 0; i < 20; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"title\":\"n%d\"}", i);
		cr_assert_eq(hr_worker_submit(W, body, strlen(body), ids[i], err, sizeof(err)), 0,
		    "%s", err);
	}
	cr_assert_eq(wait_events(CONN_ALL, 60), 60);
	for (int i = 0; i < 20; i++) {
		for (int k = 0; k < 3; k++) {
			json_t *ev = event_for(CONN_ALL, (size_t)(i * 3 + k));
			json_t *m = json_object_get(ev, "message");
			cr_assert_str_eq(
			    json_string_value(json_object_get(m, "notification_id")), ids[i]);
			json_decref(ev);
		}
	}
}

Test(worker, bad_bodies_are_refused_with_a_reason, .init = setup_default, .fini = stop)
{
	struct {
		const char *body;
		const char *reason;
	} bad[] = {
		{ "not json", "not JSON" },
		{ "[1,2]", "must be a JSON object" },
		{ "{}", "title must be a string" },
		{ "{\"title\":5}", "title must be a string" },
		{ "{\"title\":\"t\",\"body\":1}", "body must be a string" },
		{ "{\"title\":\"t\",\"user_id\":42}", "user_id" },
		{ "{\"title\":\"t\",\"user_id\":\"a b\"}", "user_id" },
		{ "{\"title\":\"t\",\"user_id\":\"\"}", "user_id" },
		{ "{\"title\":\"t\",\"data\":[1]}", "data must be an object" },
		{ "{\"title\":\"t\",\"data\":\"x\"}", "data must be an object" },
		{ "{\"title\":\"a\",\"title\":\"b\"}", "not JSON" },
	};
	char id[37], err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc
		    = hr_worker_submit(W, bad[i].body, strlen(bad[i].body), id, err, sizeof(err));
		cr_assert_eq(rc, HR_EINVAL, "%s -> %d", bad[i].body, rc);
		cr_assert_not_null(strstr(err, bad[i].reason), "%s: '%s'", bad[i].body, err);
	}
	char long_user[200];
	snprintf(long_user, sizeof(long_user), "{\"title\":\"t\",\"user_id\":\"%065d\"}", 0);
	cr_assert_eq(
	    hr_worker_submit(W, long_user, strlen(long_user), id, err, sizeof(err)), HR_EINVAL);
	/* Deeper than the codec allows. */
	char deep[512] = "{\"title\":\"t\",\"data\":";
	size_t n = strlen(deep);
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"a\":");
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "1");
	for (int i = 0; i < 41 && n + 1 < sizeof(deep); i++)
		deep[n++] = '}';
	deep[n] = '\0';
	cr_assert_eq(hr_worker_submit(W, deep, n, id, err, sizeof(err)), HR_EINVAL, "%s", deep);
	cr_assert_not_null(strstr(err, "data"), "%s", err);

	size_t big = HR_WORKER_MAX_BODY + 1;
	char *huge = malloc(big);
	cr_assert_not_null(huge);
	memset(huge, ' ', big);
	cr_assert_eq(hr_worker_submit(W, huge, big, id, err, sizeof(err)), HR_EMSGSIZE);
	free(huge);

	/* Null optional fields count as absent. */
	const char ok[] = "{\"title\":\"\",\"body\":null,\"user_id\":null,\"data\":null}";
	cr_assert_eq(hr_worker_submit(W, ok, strlen(ok), id, NULL, 0), 0);

	hr_worker_stats st;
	hr_worker_get_stats(W, &st);
	cr_assert_eq(st.submitted, 1, "refused bodies leave no record");
	hr_notification_info info;
	cr_assert_eq(hr_worker_get(W, "00000000-0000-4000-8000-000000000000", &info), HR_ENOENT);
	cr_assert_eq(hr_worker_get(W, "short", &info), HR_ENOENT);
}

static void
setup_three(void)
{
	start(3);
}

Test(worker, table_forgets_the_oldest_finished_past_max_kept, .init = setup_three, .fini = stop)
{
	char ids[5][37], err[128];
	const char body[] = "{\"title\":\"t\"}";
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(hr_worker_submit(W, body, strlen(body), ids[i], err, sizeof(err)), 0,
		    "%s", err);
		wait_status(ids[i], "sent");
	}
	hr_notification_info info;
	cr_assert_eq(hr_worker_get(W, ids[0], &info), HR_ENOENT);
	cr_assert_eq(hr_worker_get(W, ids[1], &info), HR_ENOENT);
	for (int i = 2; i < 5; i++)
		cr_assert_eq(hr_worker_get(W, ids[i], &info), 0);
	hr_worker_stats st;
	hr_worker_get_stats(W, &st);
	cr_assert_eq(st.kept, 3);
	cr_assert_eq(st.evicted, 2);
}

Test(worker, full_table_of_unfinished_refuses_with_eagain, .init = setup_three, .fini = stop)
{
	hr_worker_gate g;
	hr_worker__gate_init(&g);
	cr_assert_eq(hr_worker__hold(W, &g), 0);
	cr_assert_eq(hr_worker__gate_wait_entered(&g, 5000), 0);
	char ids[3][37], id[37], err[128];
	const char body[] = "{\"title\":\"t\"}";
	for (int i = 0; i < 3; i++)
		cr_assert_eq(hr_worker_submit(W, body, strlen(body), ids[i], err, sizeof(err)), 0);
	hr_notification_info info;
	cr_assert_eq(hr_worker_get(W, ids[0], &info), 0);
	cr_assert_str_eq(info.status, "queued");
	cr_assert_str_eq(info.created_at, info.updated_at);
	cr_assert_eq(hr_worker_submit(W, body, strlen(body), id, err, sizeof(err)), HR_EAGAIN);
	cr_assert_not_null(strstr(err, "busy"));

	hr_worker__gate_open(&g);
	for (int i = 0; i < 3; i++)
		wait_status(ids[i], "sent");
	cr_assert_eq(hr_worker_submit(W, body, strlen(body), id, err, sizeof(err)), 0,
	    "room again once finished");
	hr_worker__gate_fini(&g);
}

Test(worker, full_mailbox_refuses_with_eagain, .init = setup_default, .fini = stop)
{
	hr_worker_gate g;
	hr_worker__gate_init(&g);
	cr_assert_eq(hr_worker__hold(W, &g), 0);
	cr_assert_eq(hr_worker__gate_wait_entered(&g, 5000), 0);
	const char body[] = "{\"title\":\"t\"}";
	char id[37], err[128];
	int accepted = 0, refused = 0;
	for (int i = 0; i < HR_WORKER_MAILBOX + 20; i++) {
		int rc = hr_worker_submit(W, body, strlen(body), id, err, sizeof(err));
		if (rc == 0)
			accepted++;
		else if (rc == HR_EAGAIN)
			refused++;
		else
			cr_assert_fail("unexpected %d", rc);
	}
	hr_worker_stats st;
	hr_worker_get_stats(W, &st);
	hr_worker__gate_open(&g);
	/* The held mail is out of the mailbox, which holds exactly its capacity. */
	cr_assert_eq(accepted, HR_WORKER_MAILBOX, "accepted %d", accepted);
	cr_assert_eq(accepted + refused, HR_WORKER_MAILBOX + 20);
	cr_assert_eq(st.kept, (uint64_t)accepted, "refused submits leave no record");
	cr_assert_eq(wait_events(CONN_ALL, (size_t)accepted * 3), (size_t)accepted * 3);
	hr_worker__gate_fini(&g);
}

Test(worker, destroy_finishes_what_was_submitted, .init = setup_default)
{
	const char body[] = "{\"title\":\"t\",\"user_id\":\"42\"}";
	char id[37], err[128];
	for (int i = 0; i < 10; i++)
		cr_assert_eq(hr_worker_submit(W, body, strlen(body), id, err, sizeof(err)), 0);
	hr_worker_destroy(W);
	W = NULL;
	cr_assert_eq(wait_events(CONN_USER, 30), 30);
	stop();
}

Test(worker, create_refuses_bad_arguments)
{
	hr_worker *w = NULL;
	cr_assert_eq(hr_worker_create(&w, NULL, 10), HR_EINVAL);
	cr_assert_null(w);
	hr_worker_destroy(NULL);
}
