/*
 * worker.c: the notification pipeline, the reference Django project's Celery task
 * (send_notification_task) as an actor.
 *
 * Callers (HTTP threads) validate and submit on their own thread: the body is
 * checked with jansson, `data` is converted to msgpack once, a status record
 * is put in the table and a job is posted to the worker's mailbox. The worker
 * thread then runs the job's steps in order, queued -> processing -> sent
 * (failed when a group_send cannot be made), and broadcasts each through the
 * router. Jobs are handled one at a time in submit order, so the mails of one
 * notification, and of consecutive ones, reach a client in order.
 *
 * The status table is the only state shared between threads: a map
 * (core/map.h) of fixed-size records by id plus a list in creation order for
 * eviction, both under `lock`. Everything else (the job being run) belongs to the worker thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/actor.h"
#include "actors/worker_int.h"

#define MAX_KEPT_LIMIT 10000000u
#define USER_ID_MAX 64

enum state { ST_QUEUED, ST_PROCESSING, ST_SENT, ST_FAILED };
static const char *const state_names[] = { "queued", "processing", "sent", "failed" };

struct record {
	char id[37];
	uint8_t state;
	int64_t created_us; /* wall clock, microseconds since the epoch */
	int64_t updated_us;
	struct record *older, *newer;
};

/* One notification on its way through the pipeline; owned by the mail, then
 * by the worker thread. Strings keep their lengths (JSON allows \u0000). */
struct job {
	char id[37];
	int64_t created_us;
	char *title;
	size_t title_len;
	char *body; /* NULL: null */
	size_t body_len;
	char *user_id;       /* NULL: null; else [A-Za-z0-9_]{1,64}, NUL-terminated */
	unsigned char *data; /* msgpack map, NULL: null */
	size_t data_len;
};

struct hr_worker {
	hr_actor *actor;
	hr_router *router; /* borrowed */
	size_t max_kept;
	pthread_mutex_t lock;
	/* {lock} */
	hr_map table; /* id -> record; the map borrows the record's id */
	struct record *oldest, *newest;
	size_t n_records;
	size_t n_unfinished;
	hr_worker_stats stats;
};

#define MAIL_JOB (HR_MAIL_USER + 0)
#define MAIL_HOLD (HR_MAIL_USER + 1) /* p1: hr_worker_gate*, borrowed */

/* ---------------------------------------------------------------- helpers */

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
make_uuid4(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return HR_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->title);
	free(j->body);
	free(j->user_id);
	free(j->data);
	free(j);
}

static void
drop_mail(void *arg, hr_mail *mail)
{
	if (mail->kind == MAIL_JOB)
		job_free(mail->p1);
}

/* ---------------------------------------------------------------- table */

/* {lock} held by the caller for every table_* function. Ids are random:
 * the map needs no seed. */

#define ID_LEN 36
static const hr_map_type table_type = { .kind = HR_MAP_STR };

static struct record *
table_find(hr_worker *w, const char *id)
{
	hr_map_entry *e = hr_map_find_str(&w->table, id, strlen(id));
	return e != NULL ? e->val.ptr : NULL;
}

static void
table_remove(hr_worker *w, struct record *r)
{
	int rv = hr_map_del_str(&w->table, r->id, ID_LEN);
	HR_ASSERT(rv == 0);
	(void)rv;
	if (r->older)
		r->older->newer = r->newer;
	else
		w->oldest = r->newer;
	if (r->newer)
		r->newer->older = r->older;
	else
		w->newest = r->older;
	w->n_records--;
	if (r->state == ST_QUEUED || r->state == ST_PROCESSING)
		w->n_unfinished--;
	free(r);
}

/* Make room for one more record: forget the oldest finished one when the
 * table is full. HR_EAGAIN when every kept record is unfinished. */
static int
table_make_room(hr_worker *w)
{
	if (w->n_records < w->max_kept)
		return 0;
	if (w->n_unfinished >= w->n_records)
		return HR_EAGAIN;
	/* Unfinished records are at most the jobs in flight (the mailbox's
	 * capacity plus one), so this walk is short. */
	for (struct record *r = w->oldest; r != NULL; r = r->newer) {
		if (r->state == ST_SENT || r->state == ST_FAILED) {
			table_remove(w, r);
			w->stats.evicted++;
			return 0;
		}
	}
	return HR_EAGAIN;
}

/* 0, or HR_ENOMEM with nothing inserted. */
static int
table_insert(hr_worker *w, struct record *r)
{
	hr_map_entry *e;
	int rv = hr_map_put_str(&w->table, r->id, ID_LEN, &e, NULL);
	if (rv != 0)
		return rv;
	e->val.ptr = r;
	r->older = w->newest;
	r->newer = NULL;
	if (w->newest)
		w->newest->newer = r;
	else
		w->oldest = r;
	w->newest = r;
	w->n_records++;
	if (r->state == ST_QUEUED || r->state == ST_PROCESSING)
		w->n_unfinished++;
	return 0;
}

/* Move id to state at time us (worker thread). */
static void
set_state(hr_worker *w, const char *id, enum state st, int64_t us)
{
	pthread_mutex_lock(&w->lock);
	struct record *r = table_find(w, id);
	if (r != NULL) {
		bool was_open = r->state == ST_QUEUED || r->state == ST_PROCESSING;
		bool is_open = st == ST_QUEUED || st == ST_PROCESSING;
		r->state = (uint8_t)st;
		r->updated_us = us;
		if (was_open && !is_open)
			w->n_unfinished--;
	}
	if (st == ST_SENT)
		w->stats.sent++;
	else if (st == ST_FAILED)
		w->stats.failed++;
	pthread_mutex_unlock(&w->lock);
}

/* ---------------------------------------------------------------- the steps */

static int
put_str_or_nil(hr_buf *b, const char *s, size_t n)
{
	return s != NULL ? hr_mp_str(b, s, n) : hr_mp_nil(b);
}

/* {"type":"notification_message","message":{"notification_id","status",
 *  "timestamp"[,"notification":{"id","title","body","data","user_id"}]}} */
static int
build_event(const struct job *j, enum state st, int64_t us, hr_msg **out)
{
	char ts[40];
	hr_clock_iso8601(us, ts, sizeof(ts));
	bool full = st == ST_SENT;
	hr_buf b;
	hr_buf_init(&b, 0);
	int rc = 0;
	if (rc == 0)
		rc = hr_mp_map(&b, 2);
	if (rc == 0)
		rc = hr_mp_cstr(&b, "type");
	if (rc == 0)
		rc = hr_mp_cstr(&b, "notification_message");
	if (rc == 0)
		rc = hr_mp_cstr(&b, "message");
	if (rc == 0)
		rc = hr_mp_map(&b, full ? 4 : 3);
	if (rc == 0)
		rc = hr_mp_cstr(&b, "notification_id");
	if (rc == 0)
		rc = hr_mp_cstr(&b, j->id);
	if (rc == 0)
		rc = hr_mp_cstr(&b, "status");
	if (rc == 0)
		rc = hr_mp_cstr(&b, state_names[st]);
	if (rc == 0)
		rc = hr_mp_cstr(&b, "timestamp");
	if (rc == 0)
		rc = hr_mp_cstr(&b, ts);
	if (full) {
		if (rc == 0)
			rc = hr_mp_cstr(&b, "notification");
		if (rc == 0)
			rc = hr_mp_map(&b, 5);
		if (rc == 0)
			rc = hr_mp_cstr(&b, "id");
		if (rc == 0)
			rc = hr_mp_cstr(&b, j->id);
		if (rc == 0)
			rc = hr_mp_cstr(&b, "title");
		if (rc == 0)
			rc = hr_mp_str(&b, j->title, j->title_len);
		if (rc == 0)
			rc = hr_mp_cstr(&b, "body");
		if (rc == 0)
			rc = put_str_or_nil(&b, j->body, j->body_len);
		if (rc == 0)
			rc = hr_mp_cstr(&b, "data");
		if (rc == 0)
			rc = j->data ? hr_mp_raw(&b, j->data, j->data_len) : hr_mp_nil(&b);
		if (rc == 0)
			rc = hr_mp_cstr(&b, "user_id");
		if (rc == 0)
			rc = put_str_or_nil(&b, j->user_id, j->user_id ? strlen(j->user_id) : 0);
	}
	if (rc == 0)
		rc = hr_buf_finish(&b, out);
	hr_buf_fini(&b);
	return rc;
}

/* group_send one step to `notifications` and, with a user, `user_<id>`. */
static int
broadcast(hr_worker *w, const struct job *j, enum state st, int64_t us)
{
	hr_msg *m = NULL;
	int rc = build_event(j, st, us, &m);
	if (rc != 0)
		return rc;
	rc = hr_router_group_send(
	    w->router, "notifications", m, NULL, NULL, HR_WORKER_SEND_TIMEOUT_MS);
	if (rc == 0 && j->user_id != NULL) {
		char group[8 + USER_ID_MAX];
		snprintf(group, sizeof(group), "user_%s", j->user_id);
		rc = hr_router_group_send(
		    w->router, group, m, NULL, NULL, HR_WORKER_SEND_TIMEOUT_MS);
	}
	hr_msg_unref(m);
	return rc;
}

static void
on_job(hr_actor *self, void *state, hr_mail *mail)
{
	hr_worker *w = state;
	struct job *j = mail->p1;
	mail->p1 = NULL;

	int rc = broadcast(w, j, ST_QUEUED, j->created_us);
	if (rc == 0) {
		int64_t t = hr_clock_wall_us();
		set_state(w, j->id, ST_PROCESSING, t);
		rc = broadcast(w, j, ST_PROCESSING, t);
	}
	if (rc == 0) {
		/* The task's work is the delivery itself: the `sent` broadcast. The
		 * record says sent before the mail goes out, so a client that asks
		 * right after seeing it gets the same answer. */
		int64_t t = hr_clock_wall_us();
		set_state(w, j->id, ST_SENT, t);
		rc = broadcast(w, j, ST_SENT, t);
	}
	if (rc != 0) {
		int64_t t = hr_clock_wall_us();
		set_state(w, j->id, ST_FAILED, t);
		/* Best effort: the router may be what failed. */
		(void)broadcast(w, j, ST_FAILED, t);
	}
	job_free(j);
}

static void
on_hold(hr_actor *self, void *state, hr_mail *mail)
{
	hr_worker_gate *g = mail->p1;
	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static const hr_actor_fn worker_handlers[] = { on_job, on_hold };

/* ---------------------------------------------------------------- API */

int
hr_worker_create(hr_worker **out, hr_router *router, size_t max_kept)
{
	if (out == NULL || router == NULL || max_kept > MAX_KEPT_LIMIT)
		return HR_EINVAL;
	if (max_kept == 0)
		max_kept = HR_WORKER_MAX_KEPT;
	hr_worker *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return HR_ENOMEM;
	w->router = router;
	w->max_kept = max_kept;
	hr_map_init(&w->table, &table_type, 0);
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		free(w);
		return HR_EIO;
	}
	hr_actor_spec spec = {
		.name = "worker",
		.mailbox_capacity = HR_WORKER_MAILBOX,
		.state = w,
		.handlers = worker_handlers,
		.n_handlers = sizeof(worker_handlers) / sizeof(worker_handlers[0]),
		.drop = drop_mail,
	};
	int rc = hr_actor_spawn(&w->actor, &spec);
	if (rc != 0) {
		w->actor = NULL;
		hr_worker_destroy(w);
		return rc;
	}
	*out = w;
	return 0;
}

void
hr_worker_destroy(hr_worker *w)
{
	if (w == NULL)
		return;
	/* Joining handles every job already posted, then frees the mailbox
	 * (dropping nothing, since stop comes after them). */
	hr_actor_join(w->actor);
	for (struct record *r = w->oldest, *next; r != NULL; r = next) {
		next = r->newer;
		free(r);
	}
	hr_map_fini(&w->table);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static bool
valid_user_id(const char *s, size_t n)
{
	if (n == 0 || n > USER_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		        || c == '_'))
			return false;
	}
	return true;
}

static char *
dup_len(const char *s, size_t n)
{
	char *c = malloc(n + 1);
	if (c != NULL) {
		memcpy(c, s, n);
		c[n] = '\0';
	}
	return c;
}

/* Parse and check the body into a new job (caller's thread). */
static int
job_from_json(const char *json, size_t len, struct job **out, char *err, size_t errlen)
{
	if (len > HR_WORKER_MAX_BODY) {
		set_err(err, errlen, "body larger than %d bytes", HR_WORKER_MAX_BODY);
		return HR_EMSGSIZE;
	}
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		set_err(err, errlen, "body is not JSON: %s", je.text);
		return HR_EINVAL;
	}
	int rc = HR_EINVAL;
	struct job *j = NULL;
	char *data_json = NULL;
	if (!json_is_object(root)) {
		set_err(err, errlen, "body must be a JSON object");
		goto out;
	}
	json_t *title = json_object_get(root, "title");
	json_t *body = json_object_get(root, "body");
	json_t *user = json_object_get(root, "user_id");
	json_t *data = json_object_get(root, "data");
	if (!json_is_string(title)) {
		set_err(err, errlen, "title must be a string");
		goto out;
	}
	if (body != NULL && !json_is_null(body) && !json_is_string(body)) {
		set_err(err, errlen, "body must be a string");
		goto out;
	}
	if (user != NULL && !json_is_null(user)
	    && (!json_is_string(user)
	        || !valid_user_id(json_string_value(user), json_string_length(user)))) {
		set_err(err, errlen, "user_id must be a string of 1..%d letters, digits or _",
		    USER_ID_MAX);
		goto out;
	}
	if (data != NULL && !json_is_null(data) && !json_is_object(data)) {
		set_err(err, errlen, "data must be an object");
		goto out;
	}
	rc = HR_ENOMEM;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fail_nomem;
	j->title_len = json_string_length(title);
	j->title = dup_len(json_string_value(title), j->title_len);
	if (j->title == NULL)
		goto fail_nomem;
	if (json_is_string(body)) {
		j->body_len = json_string_length(body);
		j->body = dup_len(json_string_value(body), j->body_len);
		if (j->body == NULL)
			goto fail_nomem;
	}
	if (json_is_string(user)) {
		j->user_id = dup_len(json_string_value(user), json_string_length(user));
		if (j->user_id == NULL)
			goto fail_nomem;
	}
	if (json_is_object(data)) {
		data_json = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (data_json == NULL)
			goto fail_nomem;
		hr_buf b;
		hr_buf_init(&b, 0);
		char cerr[128] = "";
		rc = hr_codec_json_to_msgpack(
		    data_json, strlen(data_json), true, &b, cerr, sizeof(cerr));
		if (rc == 0) {
			j->data_len = hr_buf_len(&b);
			j->data = malloc(j->data_len ? j->data_len : 1);
			if (j->data == NULL)
				rc = HR_ENOMEM;
			else
				memcpy(j->data, hr_buf_data(&b), j->data_len);
		}
		hr_buf_fini(&b);
		if (rc == HR_ENOMEM)
			goto fail_nomem;
		if (rc != 0) {
			set_err(err, errlen, "data: %s", cerr[0] ? cerr : hr_strerror(rc));
			rc = HR_EINVAL;
			goto out;
		}
	}
	*out = j;
	j = NULL;
	rc = 0;
	goto out;
fail_nomem:
	set_err(err, errlen, "out of memory");
	rc = HR_ENOMEM;
out:
	free(data_json);
	job_free(j);
	json_decref(root);
	return rc;
}

int
hr_worker__parse(const char *json, size_t len, char *err, size_t errlen)
{
	struct job *j = NULL;
	int rc = job_from_json(json, len, &j, err, errlen);
	job_free(j);
	return rc;
}

int
hr_worker_submit(
    hr_worker *w, const char *json, size_t len, char id_out[37], char *err, size_t errlen)
{
	struct job *j = NULL;
	int rc = job_from_json(json, len, &j, err, errlen);
	if (rc != 0)
		return rc;
	struct record *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		set_err(err, errlen, "out of memory");
		job_free(j);
		return HR_ENOMEM;
	}
	rc = make_uuid4(r->id);
	if (rc != 0) {
		set_err(err, errlen, "no random bytes for an id");
		free(r);
		job_free(j);
		return rc;
	}
	memcpy(j->id, r->id, sizeof(j->id));
	r->state = ST_QUEUED;
	r->created_us = r->updated_us = j->created_us = hr_clock_wall_us();

	/* The record goes in before the job is posted, so that the worker always
	 * finds it; a refused post takes it out again. Holding the lock across
	 * the post keeps table and mailbox in step (the post never waits). */
	pthread_mutex_lock(&w->lock);
	rc = table_make_room(w);
	if (rc == 0 && (rc = table_insert(w, r)) == 0) {
		hr_mail m = { .kind = MAIL_JOB, .p1 = j };
		rc = hr_actor_send(w->actor, &m, 0);
		if (rc != 0) {
			table_remove(w, r);
		} else {
			w->stats.submitted++;
			memcpy(id_out, j->id, 37);
		}
	} else {
		free(r);
	}
	pthread_mutex_unlock(&w->lock);
	if (rc != 0) {
		job_free(j);
		if (rc == HR_EAGAIN)
			set_err(err, errlen, "the worker is busy, try again");
		else if (rc == HR_ECLOSED)
			set_err(err, errlen, "the worker is stopping");
		else if (rc == HR_ENOMEM)
			set_err(err, errlen, "out of memory");
		else
			set_err(err, errlen, "%s", hr_strerror(rc));
	}
	return rc;
}

int
hr_worker_get(hr_worker *w, const char *id, hr_notification_info *out)
{
	if (id == NULL || strlen(id) != 36)
		return HR_ENOENT;
	int64_t created = 0, updated = 0;
	int st = -1;
	pthread_mutex_lock(&w->lock);
	struct record *r = table_find(w, id);
	if (r != NULL) {
		st = r->state;
		created = r->created_us;
		updated = r->updated_us;
	}
	pthread_mutex_unlock(&w->lock);
	if (st < 0)
		return HR_ENOENT;
	memcpy(out->id, id, 37);
	memcpy(out->status, state_names[st], strlen(state_names[st]) + 1);
	hr_clock_iso8601(created, out->created_at, sizeof(out->created_at));
	hr_clock_iso8601(updated, out->updated_at, sizeof(out->updated_at));
	return 0;
}

void
hr_worker_get_stats(hr_worker *w, hr_worker_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	out->kept = w->n_records;
	pthread_mutex_unlock(&w->lock);
}

/* ---------------------------------------------------------------- test gate */

void
hr_worker__gate_init(hr_worker_gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->entered = false;
	g->open = false;
}

void
hr_worker__gate_fini(hr_worker_gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

int
hr_worker__hold(hr_worker *w, hr_worker_gate *g)
{
	hr_mail m = { .kind = MAIL_HOLD, .p1 = g };
	return hr_actor_send(w->actor, &m, 0);
}

int
hr_worker__gate_wait_entered(hr_worker_gate *g, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	int rc = 0;
	pthread_mutex_lock(&g->lock);
	while (!g->entered && rc == 0)
		rc = pthread_cond_timedwait(&g->cond, &g->lock, &until);
	bool entered = g->entered;
	pthread_mutex_unlock(&g->lock);
	return entered ? 0 : HR_ETIMEDOUT;
}

void
hr_worker__gate_open(hr_worker_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}
