/*
 * redis_conn.c: how the Redis backend reaches Redis (redis_int.h). Host URLs
 * ("redis://..."), one shard per host with a small pool of idle connections
 * under a mutex: a call borrows one (or connects, with a bounded timeout),
 * runs its commands and gives it back, or frees it if it broke, so a Redis
 * that went away costs one HR_EIO and the next call reconnects. Commands
 * are built with hr_argv and pipelined in one write. Also the gate that lets
 * destroy wait for the calls still running.
 *
 * A new way to reach a shard (a URL scheme, asking someone for the
 * address) belongs here: URL parsing fills the shard, conn_open reaches it.
 *
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "layer/redis_int.h"

#define RD_CONNECT_MS 1000 /* connect timeout */
#define RD_COMMAND_MS 5000 /* socket timeout for one reply (> the longest BZPOPMIN) */

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

/* ------------------------------------------------------------ hosts */

static int
pct_decode(const char *s, size_t n, char **out)
{
	char *o = malloc(n + 1);
	if (o == NULL)
		return HR_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			unsigned v = 0;
			for (size_t j = 1; j <= 2; j++) {
				char c = i + j < n ? s[i + j] : '\0';
				int d = (c >= '0' && c <= '9') ? c - '0'
				    : (c >= 'a' && c <= 'f')   ? c - 'a' + 10
				    : (c >= 'A' && c <= 'F')   ? c - 'A' + 10
				                               : -1;
				if (d < 0) {
					free(o);
					return HR_EINVAL;
				}
				v = v * 16 + (unsigned)d;
			}
			if (v == 0) {
				free(o);
				return HR_EINVAL;
			}
			o[k++] = (char)v;
			i += 2;
		} else {
			o[k++] = s[i];
		}
	}
	o[k] = '\0';
	*out = o;
	return 0;
}

static bool
parse_uint(const char *s, size_t n, long max, long *out)
{
	if (n == 0 || n > 10)
		return false;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

int
hr_layer__redis_parse_url(const char *url, char **host, int *port, char **password, long *db)
{
	static const char scheme[] = "redis://";
	*host = NULL;
	*password = NULL;
	*port = 6379;
	*db = 0;
	if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return HR_EINVAL;
	const char *p = url + sizeof(scheme) - 1;
	const char *at = strchr(p, '@');
	int rv = HR_EINVAL;
	if (at != NULL) {
		if (p[0] != ':' || at == p + 1)
			return HR_EINVAL;
		if ((rv = pct_decode(p + 1, (size_t)(at - p - 1), password)) != 0)
			return rv;
		p = at + 1;
	}
	const char *h = p, *hend;
	if (*p == '[') {
		h = ++p;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
		    || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.')
			p++;
		if (*p != ']' || p == h)
			goto fail;
		hend = p++;
	} else {
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		    || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_')
			p++;
		hend = p;
		if (hend == h)
			goto fail;
	}
	if (*p == ':') {
		const char *ps = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		long v;
		if (!parse_uint(ps, (size_t)(p - ps), 65535, &v) || v == 0)
			goto fail;
		*port = (int)v;
	}
	if (*p == '/') {
		const char *ds = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p != ds && !parse_uint(ds, (size_t)(p - ds), INT_MAX, db))
			goto fail;
	}
	if (*p != '\0')
		goto fail;
	*host = malloc((size_t)(hend - h) + 1);
	if (*host == NULL) {
		rv = HR_ENOMEM;
		goto fail;
	}
	memcpy(*host, h, (size_t)(hend - h));
	(*host)[hend - h] = '\0';
	return 0;
fail:
	free(*password);
	*password = NULL;
	return rv;
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
		if (!reply_ok(reps[i]))
			rv = HR_EIO;
	}
	if (rv != 0)
		hr_layer__redis_free_replies(reps, n);
	return rv;
}

static int
conn_open(hr_redis_shard *s, redisContext **out)
{
	redisReply *rep = NULL;
	hr_argv a;
	hr_layer__argv_init(&a);
	redisContext *c = redisConnectWithTimeout(s->host, s->port, tv_ms(RD_CONNECT_MS));
	if (c == NULL || c->err != 0 || redisSetTimeout(c, tv_ms(RD_COMMAND_MS)) != REDIS_OK)
		goto fail;
	if (s->password != NULL) {
		hr_layer__argv_str(&a, "AUTH");
		hr_layer__argv_str(&a, s->password);
		if (hr_layer__redis_run(c, &a, 1, &rep) != 0)
			goto fail;
		freeReplyObject(rep);
		rep = NULL;
		hr_layer__argv_fini(&a);
	}
	if (s->db != 0) {
		hr_layer__argv_str(&a, "SELECT");
		hr_layer__argv_ll(&a, s->db);
		if (hr_layer__redis_run(c, &a, 1, &rep) != 0)
			goto fail;
		freeReplyObject(rep);
		rep = NULL;
	}
	hr_layer__argv_fini(&a);
	*out = c;
	return 0;
fail:
	hr_layer__argv_fini(&a);
	if (c != NULL)
		redisFree(c);
	return HR_EIO;
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
	return conn_open(s, out);
}

void
hr_layer__redis_conn_put(hr_redis *r, size_t idx, redisContext *c)
{
	if (c == NULL)
		return;
	hr_redis_shard *s = &r->shards[idx];
	if (c->err == 0) {
		pthread_mutex_lock(&s->mu);
		if (s->n_idle < RD_POOL_IDLE) {
			s->idle[s->n_idle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&s->mu);
	}
	if (c != NULL)
		redisFree(c);
}

/* ------------------------------------------------------------ open / close, enter / leave */

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
		int rv
		    = hr_layer__redis_parse_url(hosts[i], &s->host, &s->port, &s->password, &s->db);
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
	for (size_t i = 0; r->shards != NULL && i < r->n; i++) {
		hr_redis_shard *s = &r->shards[i];
		for (size_t k = 0; k < s->n_idle; k++)
			redisFree(s->idle[k]);
		s->n_idle = 0;
		if (s->mu_ready)
			pthread_mutex_destroy(&s->mu);
		free(s->host);
		free(s->password);
	}
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
