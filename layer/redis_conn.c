/*
 * redis_conn.c: how the Redis backend reaches Redis (redis_int.h). One shard
 * per host URL (redis_url.c reads them) with a small pool of idle connections
 * under a mutex: a call borrows one (or connects, with a bounded timeout),
 * runs its commands and gives it back, or frees it if it broke, so a Redis
 * that went away costs one HR_EIO and the next call reconnects. Commands
 * are built with hr_argv and pipelined in one write. Also the gate that lets
 * destroy wait for the calls still running.
 *
 * A redis+sentinel:// shard has no fixed address: a new connection asks
 * its sentinels for the master (each in turn, short deadlines, the first
 * answer that ROLE confirms is a master), so a lost connection, or a
 * READONLY / LOADING answer (which marks the connection broken), is
 * followed by asking again on the next call. The pool keeps only
 * connections to the current master; a move is counted as a failover.
 *
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "layer/redis_int.h"

#define RD_CONNECT_MS 1000 /* connect timeout */
#define RD_COMMAND_MS 5000 /* socket timeout for one reply (> the longest BZPOPMIN) */
#define RD_SENTINEL_MS 300 /* connect and reply timeout when asking a sentinel */

/* ------------------------------------------------------------ argv builder */

void
hr_layer__argv_init(hr_argv *a)
{
	memset(a, 0, sizeof(*a));
	a->argv = a->_argv_in;
	a->lens = a->_lens_in;
	a->_nums = a->_nums_in;
	a->_cap = HR_ARGV_INLINE;
}

void
hr_layer__argv_fini(hr_argv *a)
{
	if (a->argv != a->_argv_in) {
		free(a->argv);
		free(a->lens);
		free(a->_nums);
	}
	hr_layer__argv_init(a);
}

/* Room for one more argument. Numbers live in _nums[i], so argv[i] is
 * re-pointed when they move. */
static int
argv_reserve(hr_argv *a)
{
	if (a->err != 0)
		return a->err;
	if ((size_t)a->argc < a->_cap)
		return 0;
	if (a->argc == INT_MAX || a->_cap > SIZE_MAX / 2 / sizeof(*a->_nums))
		return a->err = HR_EMSGSIZE;
	size_t cap = a->_cap * 2;
	const char **argv = malloc(cap * sizeof(*argv));
	size_t *lens = malloc(cap * sizeof(*lens));
	char(*nums)[HR_ARGV_NUM] = malloc(cap * sizeof(*nums));
	if (argv == NULL || lens == NULL || nums == NULL) {
		free(argv);
		free(lens);
		free(nums);
		return a->err = HR_ENOMEM;
	}
	for (size_t i = 0; i < (size_t)a->argc; i++) {
		lens[i] = a->lens[i];
		if (a->argv[i] == a->_nums[i]) {
			memcpy(nums[i], a->_nums[i], lens[i]);
			argv[i] = nums[i];
		} else {
			argv[i] = a->argv[i];
		}
	}
	if (a->argv != a->_argv_in) {
		free(a->argv);
		free(a->lens);
		free(a->_nums);
	}
	a->argv = argv;
	a->lens = lens;
	a->_nums = nums;
	a->_cap = cap;
	return 0;
}

int
hr_layer__argv_add(hr_argv *a, const char *s, size_t n)
{
	int rv = argv_reserve(a);
	if (rv != 0)
		return rv;
	a->argv[a->argc] = s;
	a->lens[a->argc] = n;
	a->argc++;
	return 0;
}

int
hr_layer__argv_str(hr_argv *a, const char *s)
{
	return hr_layer__argv_add(a, s, strlen(s));
}

/* printf into the next argument's own number slot. */
__attribute__((format(printf, 2, 3))) static int
argv_num(hr_argv *a, const char *fmt, ...)
{
	int rv = argv_reserve(a);
	if (rv != 0)
		return rv;
	char *slot = a->_nums[a->argc];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(slot, HR_ARGV_NUM, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= HR_ARGV_NUM)
		return a->err = HR_EMSGSIZE;
	return hr_layer__argv_add(a, slot, (size_t)n);
}

int
hr_layer__argv_ll(hr_argv *a, long long v)
{
	return argv_num(a, "%lld", v);
}

int
hr_layer__argv_score(hr_argv *a, double v)
{
	return argv_num(a, "%.17g", v);
}

int
hr_layer__argv_secs(hr_argv *a, int ms)
{
	return argv_num(a, "%d.%03d", ms / 1000, ms % 1000);
}

/* ------------------------------------------------------------ connections */

static struct timeval
tv_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

/* A reply that is an error, or no reply at all (the connection broke). */
static bool
reply_ok(const redisReply *rep)
{
	return rep != NULL && rep->type != REDIS_REPLY_ERROR;
}

/* An error answer that says this server is not (or not yet) a usable
 * master: a replica (READONLY), one loading its data (LOADING), or one whose
 * replicas went away (MASTERDOWN). */
static bool
master_gone(const redisReply *rep)
{
	static const char *const codes[] = { "READONLY ", "LOADING ", "MASTERDOWN " };
	if (rep->type != REDIS_REPLY_ERROR || rep->str == NULL)
		return false;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(rep->str, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}

void
hr_layer__redis_free_replies(redisReply **reps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		freeReplyObject(reps[i]);
		reps[i] = NULL;
	}
}

int
hr_layer__redis_run(redisContext *c, const hr_argv *cmds, size_t n, redisReply **reps)
{
	for (size_t i = 0; i < n; i++)
		reps[i] = NULL;
	for (size_t i = 0; i < n; i++)
		if (cmds[i].err != 0)
			return cmds[i].err;
	for (size_t i = 0; i < n; i++)
		if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
			return HR_EIO;
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		void *rep = NULL;
		if (redisGetReply(c, &rep) != REDIS_OK) {
			hr_layer__redis_free_replies(reps, n);
			return HR_EIO;
		}
		reps[i] = rep;
		if (!reply_ok(reps[i])) {
			rv = HR_EIO;
			if (reps[i] != NULL && master_gone(reps[i])) {
				/* Not the master any more: conn_put drops it. */
				c->err = REDIS_ERR_OTHER;
				snprintf(c->errstr, sizeof(c->errstr), "%s", "not the master");
			}
		}
	}
	if (rv != 0)
		hr_layer__redis_free_replies(reps, n);
	return rv;
}

/* Run one command built in a on c and keep its reply in *rep (NULL first).
 * 0, or HR_EIO as hr_layer__redis_run; a is emptied either way. */
static int
run1(redisContext *c, hr_argv *a, redisReply **rep)
{
	freeReplyObject(*rep);
	*rep = NULL;
	int rv = hr_layer__redis_run(c, a, 1, rep);
	hr_layer__argv_fini(a);
	return rv;
}

/* Connect to host:port within connect_ms, then command_ms per reply; AUTH
 * with password if any (tolerate_auth: carry on when AUTH is refused, for a
 * sentinel that has no password); check with ROLE that it is a master when
 * want_master; SELECT db if not 0. */
static int
connect_to(const char *host, int port, const char *password, bool tolerate_auth, bool want_master,
    long db, int connect_ms, int command_ms, redisContext **out)
{
	redisReply *rep = NULL;
	hr_argv a;
	hr_layer__argv_init(&a);
	redisContext *c = redisConnectWithTimeout(host, port, tv_ms(connect_ms));
	if (c == NULL || c->err != 0 || redisSetTimeout(c, tv_ms(command_ms)) != REDIS_OK)
		goto fail;
	if (password != NULL) {
		hr_layer__argv_str(&a, "AUTH");
		hr_layer__argv_str(&a, password);
		if (run1(c, &a, &rep) != 0 && (!tolerate_auth || c->err != 0))
			goto fail;
	}
	if (want_master) {
		hr_layer__argv_str(&a, "ROLE");
		if (run1(c, &a, &rep) != 0 || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1
		    || rep->element[0]->type != REDIS_REPLY_STRING
		    || strcmp(rep->element[0]->str, "master") != 0)
			goto fail;
	}
	if (db != 0) {
		hr_layer__argv_str(&a, "SELECT");
		hr_layer__argv_ll(&a, db);
		if (run1(c, &a, &rep) != 0)
			goto fail;
	}
	freeReplyObject(rep);
	hr_layer__argv_fini(&a);
	*out = c;
	return 0;
fail:
	freeReplyObject(rep);
	hr_layer__argv_fini(&a);
	if (c != NULL)
		redisFree(c);
	return HR_EIO;
}

/* Ask sentinel x where s's master is: its host (caller frees) and port. */
static int
sentinel_ask(const hr_redis_shard *s, const hr_redis_sentinel *x, char **host, int *port)
{
	redisContext *c = NULL;
	redisReply *rep = NULL;
	hr_argv a;
	int rv = HR_EIO;
	hr_layer__argv_init(&a);
	if (connect_to(
	        x->host, x->port, s->password, true, false, 0, RD_SENTINEL_MS, RD_SENTINEL_MS, &c)
	    != 0)
		return HR_EIO;
	hr_layer__argv_str(&a, "SENTINEL");
	hr_layer__argv_str(&a, "get-master-addr-by-name");
	hr_layer__argv_str(&a, s->master);
	if (run1(c, &a, &rep) != 0 || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2
	    || rep->element[0]->type != REDIS_REPLY_STRING
	    || rep->element[1]->type != REDIS_REPLY_STRING)
		goto out;
	long v;
	const redisReply *h = rep->element[0], *pt = rep->element[1];
	if (h->len == 0 || !hr_layer__redis_parse_uint(pt->str, pt->len, 65535, &v) || v == 0)
		goto out;
	if ((*host = malloc(h->len + 1)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	memcpy(*host, h->str, h->len);
	(*host)[h->len] = '\0';
	*port = (int)v;
	rv = 0;
out:
	freeReplyObject(rep);
	redisFree(c);
	return rv;
}

/* Does c point at host:port? */
static bool
conn_at(const redisContext *c, const char *host, int port)
{
	return host != NULL && c->tcp.host != NULL && strcmp(c->tcp.host, host) == 0
	    && c->tcp.port == port;
}

/* Make host:port (host taken) s's master. A move from the master used
 * before is a failover: counted, and the idle connections to the old one
 * are closed (those in use are dropped by conn_put). True if it moved. */
static bool
shard_move(hr_redis *r, hr_redis_shard *s, char *host, int port)
{
	redisContext *drop[RD_POOL_IDLE];
	size_t n_drop = 0;
	bool moved = false;

	pthread_mutex_lock(&s->mu);
	if (s->host == NULL || strcmp(s->host, host) != 0 || s->port != port) {
		moved = s->host != NULL;
		for (size_t q = 0; q < s->n_idle; q++)
			drop[n_drop++] = s->idle[q];
		s->n_idle = 0;
		free(s->host);
		s->host = host;
		s->port = port;
		host = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (moved)
		hr_layer__count_failover(r->layer);
	free(host);
	for (size_t q = 0; q < n_drop; q++)
		redisFree(drop[q]);
	return moved;
}

/* Sentinel shard: the master in use while ROLE still says it is one (so a
 * sentinel that has not yet heard of a +switch-master the node followed
 * cannot send it back); else ask the sentinels in turn (the last that
 * answered first), connect to the first address that proves to be a master
 * and make it the shard's (shard_move). */
static int
sentinel_open(hr_redis *r, hr_redis_shard *s, redisContext **out)
{
	char *tried[RD_SENTINELS_MAX + 1]; /* the master in use, then each answer */
	int tried_port[RD_SENTINELS_MAX + 1];
	size_t n_tried = 0;
	int rv = HR_EIO;

	pthread_mutex_lock(&s->mu);
	size_t first = s->next_sentinel;
	char *cur = s->host != NULL ? strdup(s->host) : NULL;
	int cur_port = s->port;
	pthread_mutex_unlock(&s->mu);
	if (cur != NULL) {
		rv = connect_to(cur, cur_port, s->password, false, true, s->db, RD_CONNECT_MS,
		    RD_COMMAND_MS, out);
		if (rv == 0) {
			free(cur);
			return 0;
		}
		tried[n_tried] = cur; /* not again if a sentinel still names it */
		tried_port[n_tried++] = cur_port;
	}
	for (size_t k = 0; k < s->n_sentinels; k++) {
		size_t i = (first + k) % s->n_sentinels;
		char *host = NULL;
		int port = 0;
		if (sentinel_ask(s, &s->sentinels[i], &host, &port) != 0)
			continue;
		bool seen = false;
		for (size_t t = 0; t < n_tried && !seen; t++)
			seen = tried_port[t] == port && strcmp(tried[t], host) == 0;
		redisContext *c = NULL;
		if (seen
		    || connect_to(host, port, s->password, false, true, s->db, RD_CONNECT_MS,
		           RD_COMMAND_MS, &c)
		        != 0) {
			if (seen)
				free(host);
			else
				tried[n_tried] = host, tried_port[n_tried++] = port;
			continue;
		}
		pthread_mutex_lock(&s->mu);
		s->next_sentinel = i;
		pthread_mutex_unlock(&s->mu);
		shard_move(r, s, host, port);
		*out = c;
		rv = 0;
		break;
	}
	for (size_t t = 0; t < n_tried; t++)
		free(tried[t]);
	return rv;
}

/* Subscribe to +switch-master on sentinel x of s. */
static int
watch_open(const hr_redis_shard *s, hr_redis_sentinel *x)
{
	redisContext *c = NULL;
	redisReply *rep = NULL;
	hr_argv a;
	if (connect_to(
	        x->host, x->port, s->password, true, false, 0, RD_SENTINEL_MS, RD_SENTINEL_MS, &c)
	    != 0)
		return HR_EIO;
	hr_layer__argv_init(&a);
	hr_layer__argv_str(&a, "SUBSCRIBE");
	hr_layer__argv_str(&a, "+switch-master");
	if (run1(c, &a, &rep) != 0 || rep->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		redisFree(c);
		return HR_EIO;
	}
	freeReplyObject(rep);
	x->watch = c;
	return 0;
}

static void
watch_close(hr_redis_sentinel *x)
{
	if (x->watch != NULL)
		redisFree(x->watch);
	x->watch = NULL;
	x->retry_at = hr_clock_mono() + 1.0;
}

/* One reply on a subscription of s: a +switch-master message, "<master>
 * <old-ip> <old-port> <new-ip> <new-port>", moves s if it names s's master. */
static bool
watch_reply(hr_redis *r, hr_redis_shard *s, const redisReply *rep)
{
	char name[RD_MASTER_MAX + 1], ip[256], hostbuf[256];
	long port;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3
	    || rep->element[0]->type != REDIS_REPLY_STRING
	    || strcmp(rep->element[0]->str, "message") != 0
	    || rep->element[2]->type != REDIS_REPLY_STRING)
		return false;
	if (sscanf(rep->element[2]->str, "%128s %255s %*s %255s %ld", name, ip, hostbuf, &port) != 4
	    || strcmp(name, s->master) != 0 || port <= 0 || port > 65535)
		return false;
	char *host = strdup(hostbuf);
	if (host == NULL)
		return false; /* the lost connection or READONLY path still follows */
	return shard_move(r, s, host, (int)port);
}

int
hr_layer__redis_follow(hr_redis *r, int timeout_ms, bool *moved)
{
	size_t n = 0, n_watch = 0;
	int rv = 0;
	double now = hr_clock_mono();
	if (moved != NULL)
		*moved = false;
	for (size_t i = 0; i < r->n; i++)
		n += r->shards[i].n_sentinels;
	if (n == 0)
		return HR_ENOTSUP;
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	hr_redis_sentinel **who = calloc(n, sizeof(*who));
	size_t *shard_of = calloc(n, sizeof(*shard_of));
	if (pfd == NULL || who == NULL || shard_of == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->n; i++) {
		hr_redis_shard *s = &r->shards[i];
		size_t before = n_watch;
		for (size_t j = 0; j < s->n_sentinels; j++) {
			hr_redis_sentinel *x = &s->sentinels[j];
			if (x->watch == NULL && now >= x->retry_at && watch_open(s, x) != 0)
				x->retry_at = now + 1.0;
			if (x->watch == NULL)
				continue;
			pfd[n_watch].fd = x->watch->fd;
			pfd[n_watch].events = POLLIN;
			who[n_watch] = x;
			shard_of[n_watch++] = i;
		}
		if (s->sentinels != NULL && n_watch == before)
			rv = HR_EIO;
	}
	/* With nothing to watch this just waits: the caller may loop on it. */
	if (poll(n_watch ? pfd : NULL, (nfds_t)n_watch, timeout_ms) <= 0)
		goto out; /* EINTR: as a timeout */
	for (size_t k = 0; k < n_watch; k++) {
		hr_redis_sentinel *x = who[k];
		void *rep = NULL;
		if (pfd[k].revents == 0)
			continue;
		if (redisBufferRead(x->watch) != REDIS_OK) {
			watch_close(x);
			continue;
		}
		while (redisGetReplyFromReader(x->watch, &rep) == REDIS_OK && rep != NULL) {
			if (watch_reply(r, &r->shards[shard_of[k]], rep) && moved != NULL)
				*moved = true;
			freeReplyObject(rep);
			rep = NULL;
		}
		if (x->watch->err != 0)
			watch_close(x);
	}
out:
	free(pfd);
	free(who);
	free(shard_of);
	return rv;
}

static int
conn_open(hr_redis *r, hr_redis_shard *s, redisContext **out)
{
	if (s->sentinels != NULL)
		return sentinel_open(r, s, out);
	return connect_to(
	    s->host, s->port, s->password, false, false, s->db, RD_CONNECT_MS, RD_COMMAND_MS, out);
}

int
hr_layer__redis_conn_get(hr_redis *r, size_t idx, redisContext **out)
{
	hr_redis_shard *s = &r->shards[idx];
	pthread_mutex_lock(&s->mu);
	if (s->n_idle > 0) {
		*out = s->idle[--s->n_idle];
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	pthread_mutex_unlock(&s->mu);
	return conn_open(r, s, out);
}

bool
hr_layer__redis_conn_current(hr_redis *r, size_t idx, const redisContext *c)
{
	hr_redis_shard *s = &r->shards[idx];
	if (c->err != 0)
		return false;
	if (s->sentinels == NULL)
		return true;
	pthread_mutex_lock(&s->mu);
	bool at = conn_at(c, s->host, s->port);
	pthread_mutex_unlock(&s->mu);
	return at;
}

void
hr_layer__redis_conn_put(hr_redis *r, size_t idx, redisContext *c)
{
	if (c == NULL)
		return;
	hr_redis_shard *s = &r->shards[idx];
	if (c->err == 0) {
		pthread_mutex_lock(&s->mu);
		/* A sentinel shard keeps only connections to its current master. */
		if (s->n_idle < RD_POOL_IDLE
		    && (s->sentinels == NULL || conn_at(c, s->host, s->port))) {
			s->idle[s->n_idle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (c != NULL)
		redisFree(c);
}

/* ------------------------------------------------------------ open / close, enter / leave */

void
hr_layer__redis_shard_fini(hr_redis_shard *s)
{
	for (size_t k = 0; k < s->n_idle; k++)
		redisFree(s->idle[k]);
	s->n_idle = 0;
	if (s->mu_ready)
		pthread_mutex_destroy(&s->mu);
	s->mu_ready = false;
	free(s->host);
	free(s->password);
	for (size_t k = 0; k < s->n_sentinels; k++) {
		if (s->sentinels[k].watch != NULL)
			redisFree(s->sentinels[k].watch);
		free(s->sentinels[k].host);
	}
	free(s->sentinels);
	free(s->master);
	memset(s, 0, sizeof(*s));
}

int
hr_layer__redis_open(hr_redis *r, const char *const *hosts, size_t n)
{
	if (pthread_mutex_init(&r->mu, NULL) != 0)
		return HR_ENOMEM;
	r->mu_ready = true;
	if (pthread_cond_init(&r->left, NULL) != 0)
		return HR_ENOMEM;
	r->cond_ready = true;
	if ((r->shards = calloc(n, sizeof(*r->shards))) == NULL)
		return HR_ENOMEM;
	r->n = n;
	for (size_t i = 0; i < n; i++) {
		hr_redis_shard *s = &r->shards[i];
		int rv = strncmp(hosts[i], "redis+sentinel://", 17) == 0
		    ? hr_layer__redis_parse_sentinel_url(hosts[i], s)
		    : hr_layer__redis_parse_url(hosts[i], &s->host, &s->port, &s->password, &s->db);
		if (rv != 0)
			return rv;
		if (pthread_mutex_init(&s->mu, NULL) != 0)
			return HR_ENOMEM;
		s->mu_ready = true;
	}
	return 0;
}

void
hr_layer__redis_close(hr_redis *r)
{
	if (r->mu_ready && r->cond_ready) {
		pthread_mutex_lock(&r->mu);
		r->closed = true;
		while (r->inside > 0)
			pthread_cond_wait(&r->left, &r->mu);
		pthread_mutex_unlock(&r->mu);
	}
	for (size_t i = 0; r->shards != NULL && i < r->n; i++)
		hr_layer__redis_shard_fini(&r->shards[i]);
	free(r->shards);
	r->shards = NULL;
	if (r->cond_ready)
		pthread_cond_destroy(&r->left);
	if (r->mu_ready)
		pthread_mutex_destroy(&r->mu);
	r->mu_ready = r->cond_ready = false;
}

int
hr_layer__redis_enter(hr_redis *r)
{
	pthread_mutex_lock(&r->mu);
	bool closed = r->closed;
	if (!closed)
		r->inside++;
	pthread_mutex_unlock(&r->mu);
	return closed ? HR_ECLOSED : 0;
}

void
hr_layer__redis_leave(hr_redis *r)
{
	pthread_mutex_lock(&r->mu);
	if (--r->inside == 0 && r->closed)
		pthread_cond_broadcast(&r->left);
	pthread_mutex_unlock(&r->mu);
}

bool
hr_layer__redis_is_closed(hr_redis *r)
{
	pthread_mutex_lock(&r->mu);
	bool closed = r->closed;
	pthread_mutex_unlock(&r->mu);
	return closed;
}
