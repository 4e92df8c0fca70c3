/*
 * layer_redis.c: the Redis channel layer (hr_layer_redis_ops), byte for byte
 * what channels_redis 4.0's RedisChannelLayer writes and reads (docs/PROTOCOL.md;
 * core.py is the authority), through hiredis' synchronous API.
 *
 * The ops table and the operations live here, the receives in redis_recv.c;
 * how Redis is reached (URLs, the per-shard pools of connections,
 * pipelines) is redis_conn.c's, and what is stored (members, keys, shards)
 * redis_wire.c's (redis_int.h).
 *
 * Where herald departs from core.py (deliberately; docs/PROTOCOL.md "Shards"):
 *  - a send to a specific channel goes to the shard of its non-local name,
 *    where channels_redis' receive and group_send look for it (core.py's
 *    send hashes the full name, so with several shards it may write where
 *    nobody reads); a process-key receive therefore drains every shard;
 *  - group_send expires old messages on each key's own shard (core.py's
 *    pipeline runs them on the group's shard, or the previous shard);
 *  - the group_send script has the same effects but returns one flag per
 *    key, so that group_send can count delivered and full channels.
 *
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "layer/redis_int.h"

/* ------------------------------------------------------------ scripts */

/* core.py group_send_lua, with one flag per key as the result. */
static const char group_send_lua[]
    = "local res = {}\n"
      "local current_time = ARGV[#ARGV - 1]\n"
      "local expiry = ARGV[#ARGV]\n"
      "for i=1,#KEYS do\n"
      "    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then\n"
      "        redis.call('ZADD', KEYS[i], current_time, ARGV[i])\n"
      "        redis.call('EXPIRE', KEYS[i], expiry)\n"
      "        res[i] = 1\n"
      "    else\n"
      "        res[i] = 0\n"
      "    end\n"
      "end\n"
      "return res\n";

/* core.py flush. */
static const char flush_lua[] = "local keys = redis.call('keys', ARGV[1])\n"
                                "for i=1,#keys,5000 do\n"
                                "    redis.call('del', unpack(keys, i, math.min(i+4999, #keys)))\n"
                                "end\n";

/* ------------------------------------------------------------ small helpers */

/* ------------------------------------------------------------ create / destroy */

static void
rd_destroy(hr_layer *l)
{
	hr_redis *r = l->_be;
	if (r == NULL)
		return;
	hr_layer__redis_close(r);
	free(r);
	l->_be = NULL;
}

static int
rd_create(hr_layer *l)
{
	const hr_layer_opts *o = &l->_opts;
	static const char *const default_hosts[] = { "redis://localhost:6379" };
	const char *const *hosts = o->n_hosts > 0 ? o->hosts : default_hosts;
	size_t n = o->n_hosts > 0 ? o->n_hosts : 1;
	if (hosts == NULL || n > 4096 || strlen(o->prefix) > RD_PREFIX_MAX || o->expiry > 1e12
	    || o->group_expiry > 1e12)
		return HR_EINVAL;
	hr_redis *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return HR_ENOMEM;
	l->_be = r;
	r->layer = l;
	r->plen = strlen(o->prefix);
	r->expiry = (long long)o->expiry;
	r->group_expiry = (long long)o->group_expiry;
	atomic_init(&r->send_rr, 0);
	atomic_init(&r->recv_rr, 0);
	int rv = hr_layer__redis_uuid4_hex(r->client_prefix);
	if (rv != 0)
		return rv;
	return hr_layer__redis_open(r, hosts, n);
}

/* ------------------------------------------------------------ send */

static int
rd_send(hr_layer *l, const char *channel, size_t clen, hr_msg *msg)
{
	hr_redis *r = l->_be;
	size_t nl = hr_name_nonlocal_len(channel, clen);
	hr_buf member;
	hr_buf_init(&member, 0);
	int rv = hr_layer__redis_member_send(msg, channel, clen, &member);
	if (rv != 0) {
		hr_buf_fini(&member);
		return rv;
	}
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__redis_key(l, key, channel, nl > 0 ? nl : clen, "", 0);
	size_t idx = nl > 0 ? hr_layer__redis_shard_of(r->n, channel, nl)
	                    : atomic_fetch_add(&r->send_rr, 1u) % (unsigned)r->n;
	double now = hr_layer__now(l);
	redisContext *c = NULL;
	redisReply *reps[2] = { NULL, NULL };
	hr_argv cmds[2];
	hr_layer__argv_init(&cmds[0]);
	hr_layer__argv_init(&cmds[1]);
	if ((rv = hr_layer__redis_enter(r)) != 0) {
		hr_buf_fini(&member);
		return rv;
	}
	if ((rv = hr_layer__redis_conn_get(r, idx, &c)) != 0)
		goto out;
	{
		hr_layer__argv_str(&cmds[0], "ZREMRANGEBYSCORE");
		hr_layer__argv_add(&cmds[0], key, klen);
		hr_layer__argv_str(&cmds[0], "0");
		hr_layer__argv_ll(&cmds[0], (long long)now - r->expiry);
		hr_layer__argv_str(&cmds[1], "ZCOUNT");
		hr_layer__argv_add(&cmds[1], key, klen);
		hr_layer__argv_str(&cmds[1], "-inf");
		hr_layer__argv_str(&cmds[1], "+inf");
		if ((rv = hr_layer__redis_run(c, cmds, 2, reps)) != 0)
			goto out;
		if (reps[0]->type != REDIS_REPLY_INTEGER || reps[1]->type != REDIS_REPLY_INTEGER) {
			rv = HR_EIO;
			goto out;
		}
		if (reps[0]->integer > 0)
			hr_layer__count_expired(l, (uint64_t)reps[0]->integer);
		if ((uint64_t)reps[1]->integer >= (uint64_t)hr_layer__capacity(l, channel, clen)) {
			hr_layer__count_full(l, 1);
			rv = HR_EFULL;
			goto out;
		}
		hr_layer__redis_free_replies(reps, 2);
		hr_layer__argv_fini(&cmds[0]);
		hr_layer__argv_fini(&cmds[1]);
	}
	hr_layer__argv_str(&cmds[0], "ZADD");
	hr_layer__argv_add(&cmds[0], key, klen);
	hr_layer__argv_score(&cmds[0], now);
	hr_layer__argv_add(&cmds[0], (const char *)hr_buf_data(&member), hr_buf_len(&member));
	hr_layer__argv_str(&cmds[1], "EXPIRE");
	hr_layer__argv_add(&cmds[1], key, klen);
	hr_layer__argv_ll(&cmds[1], r->expiry);
	rv = hr_layer__redis_run(c, cmds, 2, reps);
out:
	hr_layer__redis_free_replies(reps, 2);
	hr_layer__argv_fini(&cmds[0]);
	hr_layer__argv_fini(&cmds[1]);
	hr_layer__redis_conn_put(r, idx, c);
	hr_layer__redis_leave(r);
	hr_buf_fini(&member);
	return rv;
}

/* ------------------------------------------------------------ names */

static int
rd_new_channel(hr_layer *l, const char *prefix, char *out, size_t outlen)
{
	hr_redis *r = l->_be;
	char id[33];
	int rv = hr_layer__redis_uuid4_hex(id);
	if (rv != 0)
		return rv;
	int n = snprintf(out, outlen, "%s.%s!%s", prefix, r->client_prefix, id);
	if (n < 0 || (size_t)n >= outlen)
		return HR_EMSGSIZE;
	return 0;
}

static int
rd_client_prefix(hr_layer *l, char *out, size_t outlen)
{
	hr_redis *r = l->_be;
	if (outlen < sizeof(r->client_prefix))
		return HR_EMSGSIZE;
	memcpy(out, r->client_prefix, sizeof(r->client_prefix));
	return 0;
}

/* ------------------------------------------------------------ groups */

static int
rd_group_add(hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen)
{
	hr_redis *r = l->_be;
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__redis_key(l, key, ":group:", 7, group, glen);
	double now = hr_layer__now(l);
	size_t idx = hr_layer__redis_shard_of(r->n, group, glen);
	redisContext *c = NULL;
	redisReply *reps[2];
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	if ((rv = hr_layer__redis_conn_get(r, idx, &c)) == 0) {
		hr_argv cmds[2];
		hr_layer__argv_init(&cmds[0]);
		hr_layer__argv_init(&cmds[1]);
		hr_layer__argv_str(&cmds[0], "ZADD");
		hr_layer__argv_add(&cmds[0], key, klen);
		hr_layer__argv_score(&cmds[0], now);
		hr_layer__argv_add(&cmds[0], channel, clen);
		hr_layer__argv_str(&cmds[1], "EXPIRE");
		hr_layer__argv_add(&cmds[1], key, klen);
		hr_layer__argv_ll(&cmds[1], r->group_expiry);
		rv = hr_layer__redis_run(c, cmds, 2, reps);
		hr_layer__redis_free_replies(reps, 2);
		hr_layer__argv_fini(&cmds[0]);
		hr_layer__argv_fini(&cmds[1]);
		hr_layer__redis_conn_put(r, idx, c);
	}
	hr_layer__redis_leave(r);
	return rv;
}

static int
rd_group_discard(hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen)
{
	hr_redis *r = l->_be;
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__redis_key(l, key, ":group:", 7, group, glen);
	size_t idx = hr_layer__redis_shard_of(r->n, group, glen);
	redisContext *c = NULL;
	redisReply *rep = NULL;
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	if ((rv = hr_layer__redis_conn_get(r, idx, &c)) == 0) {
		hr_argv a;
		hr_layer__argv_init(&a);
		hr_layer__argv_str(&a, "ZREM");
		hr_layer__argv_add(&a, key, klen);
		hr_layer__argv_add(&a, channel, clen);
		rv = hr_layer__redis_run(c, &a, 1, &rep);
		freeReplyObject(rep);
		hr_layer__argv_fini(&a);
		hr_layer__redis_conn_put(r, idx, c);
	}
	hr_layer__redis_leave(r);
	return rv;
}

/* One member of the group, and the key its messages go to. */
typedef struct gmem {
	const char *name; /* borrowed from the ZRANGE reply */
	size_t len;
	size_t nl;  /* length of the key part: non-local name or whole name */
	size_t pos; /* order in the group */
} gmem;

static int
gmem_cmp(const void *a, const void *b)
{
	const gmem *x = a, *y = b;
	size_t n = x->nl < y->nl ? x->nl : y->nl;
	int c = memcmp(x->name, y->name, n);
	if (c != 0)
		return c;
	if (x->nl != y->nl)
		return x->nl < y->nl ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* One channel key of a group_send: its members are gm[first, first+count). */
typedef struct gkey {
	size_t first, count;
	size_t shard;
	size_t capacity;
	char key[RD_KEY_MAX];
	size_t klen;
	hr_buf member;
} gkey;

/* Expire old messages of the shard's keys, then run the capacity script. */
static int
group_send_shard(hr_layer *l, size_t shard, gkey *keys, size_t nkeys, const gmem *gm, double now,
    hr_group_send_result *res)
{
	hr_redis *r = l->_be;
	size_t nk = 0;
	for (size_t i = 0; i < nkeys; i++)
		nk += keys[i].shard == shard;
	if (nk == 0)
		return 0;
	/* nk ZREMRANGEBYSCOREs, then EVAL script numkeys keys... members...
	 * capacities... now expiry */
	hr_argv *cmds = calloc(nk + 1, sizeof(*cmds));
	redisReply **reps = calloc(nk + 1, sizeof(*reps));
	redisReply *rep = NULL;
	redisContext *c = NULL;
	size_t *which = calloc(nk, sizeof(*which));
	int rv = HR_ENOMEM;
	if (cmds == NULL || reps == NULL || which == NULL)
		goto out;
	for (size_t k = 0; k <= nk; k++)
		hr_layer__argv_init(&cmds[k]);
	hr_argv *eval = &cmds[nk];
	hr_layer__argv_str(eval, "EVAL");
	hr_layer__argv_add(eval, group_send_lua, sizeof(group_send_lua) - 1);
	hr_layer__argv_ll(eval, (long long)nk);
	size_t k = 0;
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].shard != shard)
			continue;
		which[k] = i;
		hr_layer__argv_str(&cmds[k], "ZREMRANGEBYSCORE");
		hr_layer__argv_add(&cmds[k], keys[i].key, keys[i].klen);
		hr_layer__argv_str(&cmds[k], "0");
		hr_layer__argv_ll(&cmds[k], (long long)now - r->expiry);
		hr_layer__argv_add(eval, keys[i].key, keys[i].klen);
		k++;
	}
	for (k = 0; k < nk; k++) {
		const gkey *g = &keys[which[k]];
		hr_layer__argv_add(
		    eval, (const char *)hr_buf_data(&g->member), hr_buf_len(&g->member));
	}
	for (k = 0; k < nk; k++)
		hr_layer__argv_ll(eval, (long long)keys[which[k]].capacity);
	hr_layer__argv_score(eval, now);
	hr_layer__argv_ll(eval, r->expiry);
	for (k = 0; k <= nk; k++)
		if ((rv = cmds[k].err) != 0)
			goto out;
	/* The expiry and the capacity script in one write (core.py awaits the
	 * expiry pipeline first; Redis runs them in the same order either
	 * way): one round trip less before the member is in Redis. */
	if ((rv = hr_layer__redis_conn_get(r, shard, &c)) != 0)
		goto out;
	if ((rv = hr_layer__redis_run(c, cmds, nk + 1, reps)) != 0)
		goto out;
	for (k = 0; k < nk; k++)
		if (reps[k]->type == REDIS_REPLY_INTEGER && reps[k]->integer > 0)
			hr_layer__count_expired(l, (uint64_t)reps[k]->integer);
	rep = reps[nk];
	reps[nk] = NULL;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != nk) {
		rv = HR_EIO;
		goto out;
	}
	for (k = 0; k < nk; k++) {
		const gkey *g = &keys[which[k]];
		if (rep->element[k]->type == REDIS_REPLY_INTEGER && rep->element[k]->integer == 1) {
			res->delivered += g->count;
		} else {
			res->full += g->count;
			hr_layer__count_full(l, g->count);
		}
	}
out:
	if (reps != NULL)
		hr_layer__redis_free_replies(reps, nk + 1);
	freeReplyObject(rep);
	hr_layer__redis_conn_put(r, shard, c);
	for (size_t i = 0; cmds != NULL && i <= nk; i++)
		hr_layer__argv_fini(&cmds[i]);
	free(which);
	free(reps);
	free(cmds);
	return rv;
}

static int
group_send_impl(hr_layer *l, const char *group, size_t glen, hr_msg *msg, const char *except,
    size_t elen, hr_group_send_result *res)
{
	hr_redis *r = l->_be;
	char key[RD_KEY_MAX];
	size_t klen = hr_layer__redis_key(l, key, ":group:", 7, group, glen);
	size_t gidx = hr_layer__redis_shard_of(r->n, group, glen);
	double now = hr_layer__now(l);
	redisContext *c = NULL;
	hr_argv cmds[2];
	redisReply *reps[2] = { NULL, NULL };
	gmem *gm = NULL;
	gkey *keys = NULL;
	size_t nkeys = 0;
	int rv = hr_codec_validate(hr_msg_data(msg), hr_msg_len(msg));
	if (rv != 0)
		return rv;
	if ((rv = hr_layer__redis_enter(r)) != 0)
		return rv;
	hr_layer__argv_init(&cmds[0]);
	hr_layer__argv_init(&cmds[1]);
	if ((rv = hr_layer__redis_conn_get(r, gidx, &c)) != 0)
		goto out;
	hr_layer__argv_str(&cmds[0], "ZREMRANGEBYSCORE");
	hr_layer__argv_add(&cmds[0], key, klen);
	hr_layer__argv_str(&cmds[0], "0");
	hr_layer__argv_ll(&cmds[0], (long long)now - r->group_expiry);
	hr_layer__argv_str(&cmds[1], "ZRANGE");
	hr_layer__argv_add(&cmds[1], key, klen);
	hr_layer__argv_str(&cmds[1], "0");
	hr_layer__argv_str(&cmds[1], "-1");
	if ((rv = hr_layer__redis_run(c, cmds, 2, reps)) != 0)
		goto out;
	hr_layer__redis_conn_put(r, gidx, c);
	c = NULL;
	if (reps[0]->type == REDIS_REPLY_INTEGER && reps[0]->integer > 0)
		hr_layer__count_group_expired(l, (uint64_t)reps[0]->integer);
	const redisReply *names = reps[1];
	if (names->type != REDIS_REPLY_ARRAY) {
		rv = HR_EIO;
		goto out;
	}
	if (names->elements == 0)
		goto out;
	if ((gm = calloc(names->elements, sizeof(*gm))) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < names->elements; i++) {
		const redisReply *e = names->element[i];
		if (e->type != REDIS_REPLY_STRING || hr_name_check_channel(e->str, e->len) != 0) {
			hr_layer__count_bad(l, 1); /* not a channel: nobody to send to */
			continue;
		}
		if (except != NULL && e->len == elen && memcmp(e->str, except, elen) == 0)
			continue; /* the caller delivers to this one itself */
		size_t nl = hr_name_nonlocal_len(e->str, e->len);
		gm[n] = (gmem) { e->str, e->len, nl > 0 ? nl : e->len, i };
		n++;
	}
	qsort(gm, n, sizeof(*gm), gmem_cmp);
	if ((keys = calloc(n > 0 ? n : 1, sizeof(*keys))) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	const char **bnames = calloc(n > 0 ? n : 1, sizeof(*bnames));
	size_t *blens = calloc(n > 0 ? n : 1, sizeof(*blens));
	if (bnames == NULL || blens == NULL) {
		free(bnames);
		free(blens);
		rv = HR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && rv == 0;) {
		size_t j = i + 1;
		while (
		    j < n && gm[j].nl == gm[i].nl && memcmp(gm[j].name, gm[i].name, gm[i].nl) == 0)
			j++;
		gkey *g = &keys[nkeys++];
		hr_buf_init(&g->member, 0);
		g->first = i;
		g->count = j - i;
		/* core.py: the capacity of the first channel met for the key;
		 * the bucket is sorted by group order, so that is gm[i]. */
		g->capacity = hr_layer__capacity(l, gm[i].name, gm[i].len);
		g->shard = hr_layer__redis_shard_of(r->n, gm[i].name, gm[i].nl);
		g->klen = hr_layer__redis_key(l, g->key, gm[i].name, gm[i].nl, "", 0);
		for (size_t k = i; k < j; k++) {
			bnames[k - i] = gm[k].name;
			blens[k - i] = gm[k].len;
		}
		rv = hr_layer__redis_member_group(msg, bnames, blens, j - i, &g->member);
		i = j;
	}
	free(bnames);
	free(blens);
	if (rv != 0)
		goto out;
	for (size_t s = 0; s < r->n; s++) {
		int rv2 = group_send_shard(l, s, keys, nkeys, gm, now, res);
		if (rv2 != 0 && rv == 0)
			rv = rv2; /* the other shards still get it */
	}
out:
	hr_layer__redis_free_replies(reps, 2);
	hr_layer__argv_fini(&cmds[0]);
	hr_layer__argv_fini(&cmds[1]);
	hr_layer__redis_conn_put(r, gidx, c);
	for (size_t i = 0; i < nkeys; i++)
		hr_buf_fini(&keys[i].member);
	free(keys);
	free(gm);
	hr_layer__redis_leave(r);
	return rv;
}

static int
rd_group_send(hr_layer *l, const char *group, size_t glen, hr_msg *msg, hr_group_send_result *res)
{
	return group_send_impl(l, group, glen, msg, NULL, 0, res);
}

static int
rd_group_send_except(hr_layer *l, const char *group, size_t glen, hr_msg *msg, const char *except,
    size_t elen, hr_group_send_result *res)
{
	return group_send_impl(l, group, glen, msg, except, elen, res);
}

/* ------------------------------------------------------------ flush */

static int
rd_flush(hr_layer *l)
{
	hr_redis *r = l->_be;
	char pat[RD_PREFIX_MAX + 2];
	size_t plen = r->plen;
	memcpy(pat, l->_opts.prefix, plen);
	pat[plen++] = '*';
	pat[plen] = '\0';
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < r->n; i++) {
		redisContext *c = NULL;
		redisReply *rep = NULL;
		int rv2 = hr_layer__redis_conn_get(r, i, &c);
		if (rv2 == 0) {
			hr_argv a;
			hr_layer__argv_init(&a);
			hr_layer__argv_str(&a, "EVAL");
			hr_layer__argv_add(&a, flush_lua, sizeof(flush_lua) - 1);
			hr_layer__argv_str(&a, "0");
			hr_layer__argv_add(&a, pat, plen);
			rv2 = hr_layer__redis_run(c, &a, 1, &rep);
			freeReplyObject(rep);
			hr_layer__argv_fini(&a);
			hr_layer__redis_conn_put(r, i, c);
		}
		if (rv2 != 0 && rv == 0)
			rv = rv2;
	}
	hr_layer__redis_leave(r);
	return rv;
}

int
hr_layer_redis_follow(hr_layer *l, int timeout_ms, bool *moved)
{
	if (moved != NULL)
		*moved = false;
	if (l == NULL || l->_ops != &hr_layer_redis_ops)
		return HR_ENOTSUP;
	hr_redis *r = l->_be;
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	rv = hr_layer__redis_follow(r, timeout_ms < 0 ? 0 : timeout_ms, moved);
	hr_layer__redis_leave(r);
	return rv;
}

const hr_layer_ops hr_layer_redis_ops = {
	.name = "redis",
	.create = rd_create,
	.destroy = rd_destroy,
	.send = rd_send,
	.receive = hr_layer__redis_receive,
	.new_channel = rd_new_channel,
	.group_add = rd_group_add,
	.group_discard = rd_group_discard,
	.group_send = rd_group_send,
	.flush = rd_flush,
	.new_channel_prefix = "specific",
	.receive_targets = hr_layer__redis_receive_targets,
	.client_prefix = rd_client_prefix,
	.receive_batch = hr_layer__redis_receive_batch,
	.group_send_except = rd_group_send_except,
};
