/*
 * redis_recv.c: the Redis backend's receive, receive_targets and
 * receive_batch (hr_layer_redis_ops), safe against a reader dying mid-way
 * as channels_redis' is: each pop first puts the key's receive backup
 * ("K$inflight") back, then pops, backs the member up and drops the backup
 * once decoded. A blocking receive waits in slices of at most RD_SLICE_MS
 * and across every shard in turn, so that destroy can stop it (HR_ECLOSED).
 *
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "layer/redis_int.h"

#define RD_SLICE_MS 250 /* longest single BZPOPMIN */

/* ------------------------------------------------------------ scripts */

/* core.py _brpop_with_clean: put the receive backup back into the queue. */
static const char restore_lua[]
    = "local backed_up = redis.call('ZRANGE', ARGV[2], 0, -1, 'WITHSCORES')\n"
      "for i = #backed_up, 1, -2 do\n"
      "    redis.call('ZADD', ARGV[1], backed_up[i], backed_up[i - 1])\n"
      "end\n"
      "redis.call('DEL', ARGV[2])\n";

/* restore_lua, then pop up to ARGV[3] members and back them up, in one go. */
static const char batch_lua[]
    = "local backed_up = redis.call('ZRANGE', ARGV[2], 0, -1, 'WITHSCORES')\n"
      "for i = #backed_up, 1, -2 do\n"
      "    redis.call('ZADD', ARGV[1], backed_up[i], backed_up[i - 1])\n"
      "end\n"
      "redis.call('DEL', ARGV[2])\n"
      "local popped = redis.call('ZPOPMIN', ARGV[1], tonumber(ARGV[3]))\n"
      "for i = 1, #popped, 2 do\n"
      "    redis.call('ZADD', ARGV[2], popped[i + 1], popped[i])\n"
      "end\n"
      "return popped\n";

/* ------------------------------------------------------------ receive */

static long long
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether a member popped with this score (its send time) has expired: the
 * test channels_redis applies when it cleans a key before a send
 * (ZREMRANGEBYSCORE key 0 int(time.time()) - expiry). A node that was
 * stopped, or fell behind, drops what it would otherwise deliver too late. */
static bool
popped_expired(hr_layer *l, const redisReply *score)
{
	const hr_redis *r = l->_be;
	if (score == NULL || score->type != REDIS_REPLY_STRING)
		return false;
	char buf[64];
	size_t n = score->len < sizeof(buf) - 1 ? score->len : sizeof(buf) - 1;
	memcpy(buf, score->str, n);
	buf[n] = '\0';
	char *end;
	double v = strtod(buf, &end);
	if (end == buf || !isfinite(v))
		return false;
	return v <= (double)((long long)hr_layer__now(l) - r->expiry);
}

/* The receive backup of key, "<key>$inflight" as core.py names it, into
 * out; its length. */
static size_t
backup_key(const char *key, size_t klen, char out[RD_KEY_MAX + 16])
{
	memcpy(out, key, klen);
	memcpy(out + klen, "$inflight", 10);
	return klen + 9;
}

/* One attempt on shard idx: restore the backup, pop (blocking up to wait_ms
 * when > 0), back the member up, decode it, drop the backup. 0 with *out set,
 * HR_EAGAIN when nothing came, HR_EBADMSG when a malformed member was dropped
 * (counted), HR_EIO.
 *
 * The commands are core.py's (_brpop_with_clean, then its backup cleaner),
 * in its order, but pipelined: the restore script goes out in one write with
 * the pop, and the backup's ZADD with its ZPOPMIN, so a message costs two
 * round trips instead of four. Every round trip is a wakeup of redis-server
 * and of this thread on a core the node may share with Redis, ahead of the
 * delivery; Redis runs a connection's commands in order either way. */
static int
pop_once(hr_layer *l, size_t idx, const char *key, size_t klen, const char *channel, size_t clen,
    bool process_key, int wait_ms, hr_msg **out, hr_layer_targets *t)
{
	hr_redis *r = l->_be;
	char backup[RD_KEY_MAX + 16];
	size_t blen = backup_key(key, klen, backup);
	redisContext *c = NULL;
	redisReply *reps[2] = { NULL, NULL }, *bk[2] = { NULL, NULL };
	hr_argv cmds[2];
	int rv = hr_layer__redis_conn_get(r, idx, &c);
	if (rv != 0)
		return rv;
	hr_layer__argv_init(&cmds[0]);
	hr_layer__argv_init(&cmds[1]);
	const redisReply *mem_r, *score_r;
	hr_layer__argv_str(&cmds[0], "EVAL");
	hr_layer__argv_add(&cmds[0], restore_lua, sizeof(restore_lua) - 1);
	hr_layer__argv_str(&cmds[0], "0");
	hr_layer__argv_add(&cmds[0], key, klen);
	hr_layer__argv_add(&cmds[0], backup, blen);
	if (wait_ms > 0) {
		hr_layer__argv_str(&cmds[1], "BZPOPMIN");
		hr_layer__argv_add(&cmds[1], key, klen);
		hr_layer__argv_secs(&cmds[1], wait_ms);
	} else {
		hr_layer__argv_str(&cmds[1], "ZPOPMIN");
		hr_layer__argv_add(&cmds[1], key, klen);
	}
	if ((rv = hr_layer__redis_run(c, cmds, 2, reps)) != 0)
		goto out;
	const redisReply *rep = reps[1];
	if (wait_ms > 0) {
		if (rep->type == REDIS_REPLY_NIL) {
			rv = HR_EAGAIN;
			goto out;
		}
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
			rv = HR_EIO;
			goto out;
		}
		mem_r = rep->element[1];
		score_r = rep->element[2];
	} else {
		if (rep->type != REDIS_REPLY_ARRAY) {
			rv = HR_EIO;
			goto out;
		}
		if (rep->elements == 0) {
			rv = HR_EAGAIN;
			goto out;
		}
		if (rep->elements != 2) {
			rv = HR_EIO;
			goto out;
		}
		mem_r = rep->element[0];
		score_r = rep->element[1];
	}
	if (mem_r->type != REDIS_REPLY_STRING || score_r->type != REDIS_REPLY_STRING) {
		rv = HR_EIO;
		goto out;
	}
	hr_layer__argv_fini(&cmds[0]);
	hr_layer__argv_fini(&cmds[1]);
	hr_layer__argv_str(&cmds[0], "ZADD");
	hr_layer__argv_add(&cmds[0], backup, blen);
	hr_layer__argv_add(&cmds[0], score_r->str, score_r->len);
	hr_layer__argv_add(&cmds[0], mem_r->str, mem_r->len);
	hr_layer__argv_str(&cmds[1], "ZPOPMIN");
	hr_layer__argv_add(&cmds[1], backup, blen);
	/* On HR_EIO: if the ZADD was applied, the next receive restores the
	 * member from the backup; if not, it is lost. */
	if ((rv = hr_layer__redis_run(c, cmds, 2, bk)) != 0)
		goto out;
	if (popped_expired(l, score_r)) {
		hr_layer__count_expired(l, 1);
		rv = HR_EBADMSG; /* dropped: the caller moves on as for a bad member */
	} else {
		rv = hr_layer__redis_decode_member(
		    mem_r->str, mem_r->len, channel, clen, process_key, out, t);
		if (rv == HR_EBADMSG)
			hr_layer__count_bad(l, 1);
	}
out:
	hr_layer__redis_free_replies(bk, 2);
	hr_layer__redis_free_replies(reps, 2);
	hr_layer__argv_fini(&cmds[0]);
	hr_layer__argv_fini(&cmds[1]);
	hr_layer__redis_conn_put(r, idx, c);
	return rv;
}

/* Where a receive on a channel reads: the channel's key and the shard to
 * try first. */
struct recv_at {
	char key[RD_KEY_MAX];
	size_t klen;
	bool process_key;
	size_t idx; /* a process key's own shard, else the next in turn */
};

/* HR_ENOTSUP for a specific channel: a receive reads its process key. */
static int
recv_at(hr_layer *l, const char *channel, size_t clen, struct recv_at *at)
{
	hr_redis *r = l->_be;
	size_t nl = hr_name_nonlocal_len(channel, clen);
	at->process_key = nl > 0;
	if (at->process_key && nl != clen)
		return HR_ENOTSUP;
	at->klen = hr_layer__redis_key(l, at->key, channel, clen, "", 0);
	at->idx = at->process_key ? hr_layer__redis_shard_of(r->n, channel, clen)
	                          : atomic_fetch_add(&r->recv_rr, 1u) % (unsigned)r->n;
	return 0;
}

/* swept: the caller has just found every shard empty (receive_batch), so
 * go straight to the blocking pops. */
static int
receive_targets(hr_layer *l, const char *channel, size_t clen, int timeout_ms, hr_msg **out,
    hr_layer_targets *t, bool swept)
{
	hr_redis *r = l->_be;
	struct recv_at at;
	int rv = recv_at(l, channel, clen, &at);
	if (rv != 0 || (rv = hr_layer__redis_enter(r)) != 0)
		return rv;
	size_t idx = at.idx;
	long long deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
	/* Sweep every shard once without waiting, then wait on each in turn. */
	size_t tries = swept && timeout_ms != 0 ? r->n : 0;
	for (;;) {
		int wait = 0;
		if (tries >= r->n && timeout_ms != 0) {
			long long left = timeout_ms < 0 ? RD_SLICE_MS : deadline - mono_ms();
			if (left <= 0) {
				rv = HR_ETIMEDOUT;
				break;
			}
			wait = (int)(left < RD_SLICE_MS ? left : RD_SLICE_MS);
			if (r->n > 1 && wait > RD_SLICE_MS / 4)
				wait = RD_SLICE_MS / 4;
		}
		rv = pop_once(l, idx, at.key, at.klen, channel, clen, at.process_key, wait, out, t);
		if (rv == 0 || (rv != HR_EAGAIN && rv != HR_EBADMSG))
			break;
		tries++;
		idx = (idx + 1) % r->n;
		if (tries >= r->n && timeout_ms == 0 && rv == HR_EAGAIN) {
			break;
		}
		if (tries > r->n * 2 + 64 && timeout_ms == 0) {
			rv = HR_EAGAIN; /* bad members only: stop after two sweeps */
			break;
		}
		if (hr_layer__redis_is_closed(r)) {
			rv = HR_ECLOSED;
			break;
		}
	}
	if (rv == HR_EBADMSG)
		rv = HR_EAGAIN;
	hr_layer__redis_leave(r);
	return rv;
}

int
hr_layer__redis_receive_targets(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
    hr_msg **out, hr_layer_targets *t)
{
	return receive_targets(l, channel, clen, timeout_ms, out, t, false);
}

int
hr_layer__redis_receive(hr_layer *l, const char *channel, size_t clen, int timeout_ms, hr_msg **out)
{
	hr_layer_targets t = { 0 };
	int rv = hr_layer__redis_receive_targets(l, channel, clen, timeout_ms, out, &t);
	hr_layer_targets_fini(&t);
	return rv;
}

/* One batch from shard idx into items[*n .. max). */
static int
batch_once(hr_layer *l, size_t idx, const char *key, size_t klen, const char *channel, size_t clen,
    bool process_key, hr_layer_item *items, size_t max, size_t *n)
{
	hr_redis *r = l->_be;
	char backup[RD_KEY_MAX + 16];
	size_t blen = backup_key(key, klen, backup);
	redisContext *c = NULL;
	redisReply *rep = NULL, *r2 = NULL;
	hr_argv a;
	int rv = hr_layer__redis_conn_get(r, idx, &c);
	if (rv != 0)
		return rv;
	hr_layer__argv_init(&a);
	hr_layer__argv_str(&a, "EVAL");
	hr_layer__argv_add(&a, batch_lua, sizeof(batch_lua) - 1);
	hr_layer__argv_str(&a, "0");
	hr_layer__argv_add(&a, key, klen);
	hr_layer__argv_add(&a, backup, blen);
	hr_layer__argv_ll(&a, (long long)(max - *n));
	if ((rv = hr_layer__redis_run(c, &a, 1, &rep)) != 0)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
		rv = HR_EIO;
		goto out;
	}
	size_t got = rep->elements / 2;
	for (size_t i = 0; i < got && *n < max; i++) {
		const redisReply *m = rep->element[2 * i];
		if (m->type != REDIS_REPLY_STRING) {
			hr_layer__count_bad(l, 1);
			continue;
		}
		if (popped_expired(l, rep->element[2 * i + 1])) {
			hr_layer__count_expired(l, 1);
			continue;
		}
		hr_layer_item *it = &items[*n];
		int rv2 = hr_layer__redis_decode_member(
		    m->str, m->len, channel, clen, process_key, &it->msg, &it->targets);
		if (rv2 == 0)
			(*n)++;
		else if (rv2 == HR_EBADMSG)
			hr_layer__count_bad(l, 1);
		else if (rv == 0)
			rv = rv2; /* out of memory: the backup keeps the rest */
	}
	if (got > 0 && rv == 0) {
		hr_layer__argv_fini(&a);
		hr_layer__argv_str(&a, "ZPOPMIN");
		hr_layer__argv_add(&a, backup, blen);
		hr_layer__argv_ll(&a, (long long)got);
		rv = hr_layer__redis_run(c, &a, 1, &r2);
	}
	if (rv == 0 && got == 0)
		rv = HR_EAGAIN;
out:
	hr_layer__argv_fini(&a);
	freeReplyObject(r2);
	freeReplyObject(rep);
	hr_layer__redis_conn_put(r, idx, c);
	return rv;
}

int
hr_layer__redis_receive_batch(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
    hr_layer_item *items, size_t max, size_t *n)
{
	hr_redis *r = l->_be;
	struct recv_at at;
	int rv = recv_at(l, channel, clen, &at);
	if (rv != 0 || (rv = hr_layer__redis_enter(r)) != 0)
		return rv;
	bool empty = true; /* every shard answered "nothing there" */
	for (size_t i = 0; i < r->n && *n < max; i++) {
		rv = batch_once(l, (at.idx + i) % r->n, at.key, at.klen, channel, clen,
		    at.process_key, items, max, n);
		if (rv != HR_EAGAIN)
			empty = false;
		if (rv != 0 && rv != HR_EAGAIN)
			break;
	}
	hr_layer__redis_leave(r);
	if (*n > 0)
		return 0; /* what came is the caller's even if a later shard failed */
	if (rv != 0 && rv != HR_EAGAIN)
		return rv;
	if (timeout_ms == 0)
		return HR_EAGAIN;
	rv = receive_targets(l, channel, clen, timeout_ms, &items[0].msg, &items[0].targets, empty);
	if (rv == 0)
		*n = 1;
	return rv;
}
