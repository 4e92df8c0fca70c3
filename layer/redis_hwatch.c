/*
 * redis_hwatch.c: the history thread's blocking waits on a shard (layer.h,
 * hr_layer_hwatch), on two connections the watch owns (never the pool's):
 *
 *   log    `XREAD COUNT max BLOCK 0 STREAMS P:herald:log <cursor>`, sent
 *          again after each answer;
 *   note   `CLIENT ID`, then `CLIENT TRACKING on REDIRECT <its own id>
 *          BCAST PREFIX <shared key>` and `SUBSCRIBE __redis__:invalidate`:
 *          from then on Redis pushes one message on it for every write to
 *          the shared key (channels_redis' ZADD and EXPIRE of a copy, the
 *          pumps' pops), whoever made it.
 *
 * Both are read only when the caller's poll says they are readable, one
 * read(2) at a time, so a reply or a burst of messages that is not yet
 * whole waits for the next wake-up.
 *
 * Why tracking and not BZPOPMIN: a blocking pop takes the copy out before
 * it is numbered, so a node that popped one while another node's pump took
 * the next would number them out of order (and a node killed in between
 * would lose its copy). Tracking pops nothing; the pump stays the one
 * script that pops and numbers.
 *
 * Threads: the one thread that owns the watch.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "layer/redis_int.h"

#define HWATCH_RETRY_S 0.5 /* between failed connects */

enum { W_LOG, W_NOTE, W_N };

struct hr_layer_hwatch {
	hr_layer *l;
	size_t shard;
	size_t max;
	redisContext *c[W_N]; /* NULL: not connected */
	bool out;             /* the log read is outstanding on c[W_LOG] */
	bool no_tracking;     /* this Redis refused CLIENT TRACKING */
	double retry_at;      /* monotonic: no new connection before then */
};

int
hr_layer_hwatch_new(hr_layer *l, size_t shard, size_t max, hr_layer_hwatch **out)
{
	if (l == NULL || l->_ops != &hr_layer_redis_ops || l->_be == NULL)
		return HR_ENOTSUP;
	if (shard >= ((const hr_redis *)l->_be)->n || max == 0)
		return HR_EINVAL;
	hr_layer_hwatch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return HR_ENOMEM;
	w->l = l;
	w->shard = shard;
	w->max = max;
	*out = w;
	return 0;
}

static void
drop(hr_layer_hwatch *w, int i)
{
	if (w->c[i] != NULL)
		redisFree(w->c[i]);
	w->c[i] = NULL;
	if (i == W_LOG)
		w->out = false;
}

void
hr_layer_hwatch_free(hr_layer_hwatch *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < W_N; i++)
		drop(w, i);
	free(w);
}

/* A connection of the watch's own to its shard, into w->c[i]; after a
 * failed one, none for HWATCH_RETRY_S (a caller arms every few ms while a
 * watch is down, and must not open connections at that rate). */
static int
connect_slot(hr_layer_hwatch *w, int i)
{
	hr_redis *r = w->l->_be;
	double now = hr_clock_mono();
	if (now < w->retry_at)
		return HR_EIO;
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	rv = hr_layer__redis_conn_get(r, w->shard, &w->c[i]);
	hr_layer__redis_leave(r);
	if (rv != 0) {
		w->c[i] = NULL;
		w->retry_at = now + HWATCH_RETRY_S;
	}
	return rv;
}

/* Send a's command on c without waiting for its answer. */
static int
send_only(redisContext *c, const hr_argv *a)
{
	int done = 0;
	if (a->err != 0)
		return a->err;
	if (redisAppendCommandArgv(c, a->argc, a->argv, a->lens) != REDIS_OK)
		return HR_EIO;
	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return HR_EIO;
	return 0;
}

static int
send_log_read(hr_layer_hwatch *w, const char *cursor)
{
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__redis_key(w->l, key, ":herald:log", 11, "", 0);
	hr_argv a;
	hr_layer__argv_init(&a);
	hr_layer__argv_str(&a, "XREAD");
	hr_layer__argv_str(&a, "COUNT");
	hr_layer__argv_ll(&a, (long long)w->max);
	hr_layer__argv_str(&a, "BLOCK");
	hr_layer__argv_str(&a, "0");
	hr_layer__argv_str(&a, "STREAMS");
	hr_layer__argv_add(&a, key, klen);
	hr_layer__argv_str(&a, cursor);
	int rv = send_only(w->c[W_LOG], &a);
	hr_layer__argv_fini(&a);
	return rv;
}

/* On the new note connection: its id, tracking of the shared key redirected
 * to itself, and the subscription that receives it. The subscription's
 * confirmation is left to the first read. HR_ENOTSUP if Redis answered
 * either CLIENT command with an error (older than 6.0, or an ACL). */
static int
start_tracking(hr_layer_hwatch *w)
{
	redisContext *c = w->c[W_NOTE];
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__history_shared_key(w->l, w->shard, key);
	hr_argv a[2];
	redisReply *rep[2];
	for (int i = 0; i < 2; i++)
		hr_layer__argv_init(&a[i]);
	hr_layer__argv_str(&a[0], "CLIENT");
	hr_layer__argv_str(&a[0], "ID");
	int rv = hr_layer__redis_run(c, a, 1, rep);
	if (rv != 0) {
		rv = c->err == 0 ? HR_ENOTSUP : HR_EIO; /* an answer, but an error */
		goto out;
	}
	long long id = rep[0]->type == REDIS_REPLY_INTEGER ? rep[0]->integer : -1;
	hr_layer__redis_free_replies(rep, 1);
	if (id < 0) {
		rv = HR_EIO;
		goto out;
	}
	hr_layer__argv_str(&a[1], "CLIENT");
	hr_layer__argv_str(&a[1], "TRACKING");
	hr_layer__argv_str(&a[1], "on");
	hr_layer__argv_str(&a[1], "REDIRECT");
	hr_layer__argv_ll(&a[1], id);
	hr_layer__argv_str(&a[1], "BCAST");
	hr_layer__argv_str(&a[1], "PREFIX");
	hr_layer__argv_add(&a[1], key, klen);
	if ((rv = hr_layer__redis_run(c, &a[1], 1, rep)) != 0) {
		/* an error answer on a live connection: no tracking here */
		rv = c->err == 0 ? HR_ENOTSUP : HR_EIO;
		goto out;
	}
	hr_layer__redis_free_replies(rep, 1);
	hr_layer__argv_fini(&a[0]);
	hr_layer__argv_init(&a[0]);
	hr_layer__argv_str(&a[0], "SUBSCRIBE");
	hr_layer__argv_str(&a[0], "__redis__:invalidate");
	rv = send_only(c, &a[0]);
out:
	for (int i = 0; i < 2; i++)
		hr_layer__argv_fini(&a[i]);
	return rv;
}

int
hr_layer_hwatch_arm(hr_layer_hwatch *w, const char *cursor, int fds[2])
{
	hr_redis *r = w->l->_be;
	int rv = 0, rv2;
	fds[W_LOG] = fds[W_NOTE] = -1;
	for (int i = 0; i < W_N; i++)
		if (w->c[i] != NULL && !hr_layer__redis_conn_current(r, w->shard, w->c[i]))
			drop(w, i);
	if (cursor[0] != '\0' && !w->out) {
		if ((rv2 = w->c[W_LOG] == NULL ? connect_slot(w, W_LOG) : 0) == 0
		    && (rv2 = send_log_read(w, cursor)) != 0)
			drop(w, W_LOG);
		if (rv2 == 0)
			w->out = true;
		else
			rv = rv2 == HR_ECLOSED ? rv2 : HR_EIO;
	}
	if (w->no_tracking) {
		if (rv == 0)
			rv = HR_ENOTSUP;
	} else if (w->c[W_NOTE] == NULL) {
		if ((rv2 = connect_slot(w, W_NOTE)) == 0 && (rv2 = start_tracking(w)) != 0)
			drop(w, W_NOTE);
		if (rv2 == HR_ENOTSUP)
			w->no_tracking = true;
		if (rv == 0)
			rv = rv2 == 0 ? 1 : rv2 == HR_ECLOSED || rv2 == HR_ENOTSUP ? rv2 : HR_EIO;
	}
	hr_layer_hwatch_fds(w, fds);
	return rv;
}

void
hr_layer_hwatch_fds(const hr_layer_hwatch *w, int fds[2])
{
	fds[W_LOG] = w->out ? w->c[W_LOG]->fd : -1;
	fds[W_NOTE] = w->c[W_NOTE] != NULL ? w->c[W_NOTE]->fd : -1;
}

/* One read(2) from slot i and the replies it completed: the log read's
 * entries into ev, the note's invalidations into *changed. HR_EIO if the
 * connection broke or answered an error. */
static int
take(hr_layer_hwatch *w, int i, char *cursor, hr_layer_hevent *ev, size_t max, size_t *n,
    bool *changed)
{
	redisContext *c = w->c[i];
	int rv = 0;
	if (redisBufferRead(c) != REDIS_OK)
		return HR_EIO;
	for (;;) {
		void *p = NULL;
		if (redisGetReplyFromReader(c, &p) != REDIS_OK)
			return HR_EIO;
		redisReply *rep = p;
		if (rep == NULL)
			return rv;
		if (rep->type == REDIS_REPLY_ERROR) /* UNBLOCKED (demoted), READONLY... */
			rv = HR_EIO;
		else if (i == W_LOG) {
			w->out = false;
			rv = hr_layer__history_entries(w->l, rep, cursor, ev, max, n);
		} else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3
		    && rep->element[0]->type == REDIS_REPLY_STRING
		    && strcmp(rep->element[0]->str, "message") == 0)
			*changed = true; /* an invalidation (else the subscription's answer) */
		freeReplyObject(rep);
		if (rv != 0)
			return rv;
	}
}

int
hr_layer_hwatch_read(hr_layer_hwatch *w, const bool ready[2], char cursor[HR_HISTORY_CURSOR],
    hr_layer_hevent *ev, size_t max, size_t *n, bool *changed)
{
	int rv = 0;
	*n = 0;
	*changed = false;
	for (int i = 0; i < W_N; i++) {
		if (!ready[i] || w->c[i] == NULL || (i == W_LOG && !w->out))
			continue;
		int rv2 = take(w, i, cursor, ev, max, n, changed);
		if (rv2 != 0) {
			drop(w, i);
			if (rv == 0)
				rv = rv2;
		}
	}
	return rv;
}
