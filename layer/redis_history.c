/*
 * redis_history.c: recovery's history shared through Redis (layer.h "shared
 * history", docs/RECOVERY.md "Redis layer"): the shared history member and
 * its process key per shard, the sequencer script, the log tail and the
 * replay range.
 *
 * Keys, all on the group's shard (P is the layer's prefix):
 *   P specific.<H>!           the shared process key (sorted set, as any)
 *   P:herald:hcfg:<suffix>    "<size> <ttl> <group>" for member suffix
 *                             "h.<group>" or "x.<16 hex>"; group_expiry
 *   P:herald:epoch:<group>    16 hex; kept group_expiry after its last use
 *   P:herald:seq:<group>      the latest offset of that epoch
 *   P:herald:hist:<group>     sorted set, score = offset, member =
 *                             "<redis ms> <stored member>"; SIZE, TTL
 *   P:herald:log              stream, one entry per group_send sequenced
 * H is the first 32 hex of sha256("herald-history:<prefix>:<k>"), k the
 * smallest number >= 0 whose "specific.<H>!" hashes to that shard, so a
 * group's copies (channels_redis writes a process key's message on the
 * shard of its non-local name) land where the group's history lives.
 *
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "layer/redis_int.h"

#define HIST_LOG_MAXLEN 10000 /* entries kept in each shard's log (approximately) */
#define HIST_PKEY_MAX 48      /* "specific.<32 hex>!" and a NUL */
#define HIST_SHORT_MAX 55     /* longest group named in clear in the member */

/* ------------------------------------------------------------ scripts */

/* ARGV: 1 shared key, 2 "P:herald:", 3 "specific.<H>!", 4 max, 5 random
 * (32 hex: new epochs are sha1(random .. group)), 6 default size, 7 default
 * ttl, 8 group_expiry (epochs and offsets are kept max(it, TTL)), 9 expiry, 10 log maxlen. Returns
 * {sequenced, expired, bad}. A copy's last entry is "__asgi_channel__": [name] (core.py adds it
 * last; herald's writer too), so the member ends with the shared member's name, read from the end.
 * Per copy only its log entry is written at once; each group's settings, epoch and offset are
 * read once per call, and its offset, history and expiries written once at the end (the same
 * keys and values as one copy at a time, with a group's copies numbered in the order popped).
 */
static const char pump_lua[]
    = "local key, hk, mp = ARGV[1], ARGV[2], ARGV[3]\n"
      "local popped = redis.call('ZPOPMIN', key, tonumber(ARGV[4]))\n"
      "if #popped == 0 then return {0, 0, 0} end\n"
      "local t = redis.call('TIME')\n"
      "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
      "local oldest = tonumber(t[1]) - tonumber(ARGV[9])\n"
      "local dsize, dttl, keep = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])\n"
      "local seqd, expired, bad = 0, 0, 0\n"
      "local tag = '\\176__asgi_channel__\\145\\217'\n"
      "local cfgs, gs, order = {}, {}, {}\n"
      "for i = 1, #popped, 2 do\n"
      "  local m, len, sfx = popped[i], #popped[i], nil\n"
      "  for L = #mp + 3, 99 do\n"
      "    local h = len - L\n"
      "    if h > 31 and m:byte(h) == L and m:sub(h - 19, h - 1) == tag\n"
      "        and m:sub(h + 1, h + #mp) == mp then\n"
      "      sfx = m:sub(h + #mp + 1)\n"
      "      break\n"
      "    end\n"
      "  end\n"
      "  local old = tonumber(popped[i + 1]) <= oldest\n"
      "  local c = nil\n"
      "  if sfx ~= nil and not old then\n"
      "    c = cfgs[sfx]\n"
      "    if c == nil then\n"
      "      c = {size = dsize, ttl = dttl}\n"
      "      local cfg = redis.call('GET', hk .. 'hcfg:' .. sfx)\n"
      "      if cfg then\n"
      "        local a, b, g = string.match(cfg, '^(%d+) (%d+) (.+)$')\n"
      "        if a then c.size, c.ttl, c.group = tonumber(a), tonumber(b), g end\n"
      "      end\n"
      "      if c.group == nil and sfx:sub(1, 2) == 'h.' then c.group = sfx:sub(3) end\n"
      "      cfgs[sfx] = c\n"
      "    end\n"
      "  end\n"
      "  if old then\n"
      "    expired = expired + 1\n"
      "  elseif c == nil or c.group == nil then\n"
      "    bad = bad + 1\n"
      "  else\n"
      "    local group = c.group\n"
      "    local g = gs[group]\n"
      "    if g == nil then\n"
      "      g = {ek = hk .. 'epoch:' .. group, sk = hk .. 'seq:' .. group,\n"
      "           hkey = hk .. 'hist:' .. group, size = c.size, ttl = c.ttl, z = {}}\n"
      "      g.epoch = redis.call('GET', g.ek)\n"
      "      if not g.epoch then\n"
      "        g.epoch = string.sub(redis.sha1hex(ARGV[5] .. group), 1, 16)\n"
      "        redis.call('SET', g.ek, g.epoch)\n"
      "        redis.call('DEL', g.sk, g.hkey)\n"
      "      end\n"
      "      g.off = tonumber(redis.call('GET', g.sk) or '0')\n"
      "      gs[group] = g\n"
      "      order[#order + 1] = group\n"
      "    end\n"
      "    g.off = g.off + 1\n"
      "    g.z[#g.z + 1] = g.off\n"
      "    g.z[#g.z + 1] = now .. ' ' .. m\n"
      "    redis.call('XADD', hk .. 'log', 'MAXLEN', '~', ARGV[10], '*', 'g', group, 'e', "
      "g.epoch,\n"
      "        'o', g.off, 'm', m)\n"
      "    seqd = seqd + 1\n"
      "  end\n"
      "end\n"
      "for _, group in ipairs(order) do\n"
      "  local g = gs[group]\n"
      "  local k = keep\n"
      "  if g.ttl > k then k = g.ttl end\n"
      "  redis.call('EXPIRE', g.ek, k)\n"
      "  redis.call('SET', g.sk, g.off, 'EX', k)\n"
      "  redis.call('ZADD', g.hkey, unpack(g.z))\n"
      "  redis.call('ZREMRANGEBYRANK', g.hkey, 0, -(g.size + 1))\n"
      "  redis.call('EXPIRE', g.hkey, g.ttl)\n"
      "end\n"
      "return {seqd, expired, bad}\n";

/* ARGV: 1 "P:herald:", 2 group, 3 epoch wanted, 4 after, 5 max, 6 ttl,
 * 7 random, 8 epoch keep seconds. Returns {epoch, latest, offset, stored,
 * offset, stored, ...}. */
static const char range_lua[]
    = "local hk, group = ARGV[1], ARGV[2]\n"
      "local ek, sk, hkey = hk .. 'epoch:' .. group, hk .. 'seq:' .. group, hk .. 'hist:' .. "
      "group\n"
      "local e = redis.call('GET', ek)\n"
      "if not e then\n"
      "  e = string.sub(redis.sha1hex(ARGV[7] .. group), 1, 16)\n"
      "  redis.call('SET', ek, e, 'EX', tonumber(ARGV[8]))\n"
      "  redis.call('DEL', sk, hkey)\n"
      "end\n"
      "local out = {e, tonumber(redis.call('GET', sk) or '0')}\n"
      "if e ~= ARGV[3] then return out end\n"
      "local t = redis.call('TIME')\n"
      "local cut = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
      "    - tonumber(ARGV[6]) * 1000\n"
      "local r = redis.call('ZRANGEBYSCORE', hkey, '(' .. ARGV[4], '+inf', 'WITHSCORES',\n"
      "    'LIMIT', 0, tonumber(ARGV[5]))\n"
      "for i = 1, #r, 2 do\n"
      "  local sp = string.find(r[i], ' ', 1, true)\n"
      "  if sp and tonumber(string.sub(r[i], 1, sp - 1)) >= cut then\n"
      "    out[#out + 1] = tonumber(r[i + 1])\n"
      "    out[#out + 1] = string.sub(r[i], sp + 1)\n"
      "  end\n"
      "end\n"
      "return out\n";

/* ------------------------------------------------------------ names */

static bool
is_redis(const hr_layer *l)
{
	return l != NULL && l->_ops == &hr_layer_redis_ops && l->_be != NULL;
}

/* "specific.<H>!" of shard idx into out (HIST_PKEY_MAX); its length. */
static size_t
shared_pkey(const hr_layer *l, size_t idx, char out[HIST_PKEY_MAX])
{
	static const char hex[] = "0123456789abcdef";
	const hr_redis *r = l->_be;
	char seed[RD_PREFIX_MAX + 64];
	unsigned char d[SHA256_DIGEST_LENGTH];
	for (unsigned k = 0;; k++) {
		int sn = snprintf(seed, sizeof(seed), "herald-history:%s:%u", l->_opts.prefix, k);
		SHA256((const unsigned char *)seed, (size_t)sn, d);
		memcpy(out, "specific.", 9);
		for (size_t i = 0; i < 16; i++) {
			out[9 + 2 * i] = hex[d[i] >> 4];
			out[10 + 2 * i] = hex[d[i] & 15];
		}
		out[41] = '!';
		out[42] = '\0';
		/* Each try lands on a shard with chance 1/n: k stays small. */
		if (hr_layer__redis_shard_of(r->n, out, 42) == idx || k > 100000)
			return 42;
	}
}

/* The member suffix ("h.<group>" or "x.<16 hex>") into out (HR_NAME_MAX). */
static size_t
member_suffix(const char *group, size_t glen, char *out)
{
	if (glen <= HIST_SHORT_MAX) {
		memcpy(out, "h.", 2);
		memcpy(out + 2, group, glen);
		out[glen + 2] = '\0';
		return glen + 2;
	}
	int n = snprintf(
	    out, HR_NAME_MAX, "x.%016llx", (unsigned long long)hr_hash_bytes(0, group, glen));
	return (size_t)n;
}

int
hr_layer_history_member(hr_layer *l, const char *group, char *out, size_t outlen)
{
	if (!is_redis(l))
		return HR_ENOTSUP;
	if (group == NULL || hr_name_check_group(group, strlen(group)) != 0)
		return HR_EBADNAME;
	const hr_redis *r = l->_be;
	size_t glen = strlen(group);
	char pk[HIST_PKEY_MAX], sfx[HR_NAME_MAX];
	size_t plen = shared_pkey(l, hr_layer__redis_shard_of(r->n, group, glen), pk);
	size_t slen = member_suffix(group, glen, sfx);
	if (outlen < plen + slen + 1)
		return HR_EMSGSIZE;
	memcpy(out, pk, plen);
	memcpy(out + plen, sfx, slen + 1);
	return 0;
}

size_t
hr_layer_history_shards(hr_layer *l)
{
	return is_redis(l) ? ((const hr_redis *)l->_be)->n : 0;
}

void
hr_layer_hevents_release(hr_layer_hevent *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hr_msg_unref(ev[i].msg);
		ev[i].msg = NULL;
	}
}

/* ------------------------------------------------------------ running */

/* Run the n commands on shard idx inside the gate. */
static int
run_on(hr_layer *l, size_t idx, const hr_argv *cmds, size_t n, redisReply **reps)
{
	hr_redis *r = l->_be;
	redisContext *c = NULL;
	int rv = hr_layer__redis_enter(r);
	if (rv != 0)
		return rv;
	if ((rv = hr_layer__redis_conn_get(r, idx, &c)) == 0) {
		rv = hr_layer__redis_run(c, cmds, n, reps);
		hr_layer__redis_conn_put(r, idx, c);
	}
	hr_layer__redis_leave(r);
	return rv;
}

static long long
epoch_keep(const hr_layer *l, double ttl)
{
	const hr_redis *r = l->_be;
	long long keep = r->group_expiry > (long long)ttl ? r->group_expiry : (long long)ttl;
	return keep > 0 ? keep : 1;
}

/*
 * The start of a call to one of the scripts above, which take every
 * argument, keys too, as ARGV: "EVAL <script> 0" into a, and 32 fresh random
 * hex into rnd (a new epoch's seed). a is initialised only if it returns 0;
 * the caller then frees it with hr_layer__argv_fini.
 */
static int
eval_begin(hr_argv *a, const char *script, size_t len, char rnd[33])
{
	int rv = hr_layer__redis_uuid4_hex(rnd);
	if (rv != 0)
		return rv;
	hr_layer__argv_init(a);
	hr_layer__argv_str(a, "EVAL");
	hr_layer__argv_add(a, script, len);
	hr_layer__argv_str(a, "0");
	return 0;
}

int
hr_layer_history_register(hr_layer *l, const char *group, size_t size, double ttl)
{
	if (!is_redis(l))
		return HR_ENOTSUP;
	if (size == 0 || !(ttl >= 1) || ttl > 1e9)
		return HR_EINVAL;
	char member[HR_NAME_MAX + 1], key[RD_KEY_MAX], ckey[RD_KEY_MAX + 32];
	char cfg[HR_NAME_MAX + 64];
	int rv = hr_layer_history_member(l, group, member, sizeof(member));
	if (rv != 0)
		return rv;
	hr_redis *r = l->_be;
	size_t glen = strlen(group);
	size_t klen = hr_layer__redis_key(l, key, ":group:", 7, group, glen);
	const char *sfx = strchr(member, '!') + 1;
	size_t cklen = hr_layer__redis_key(l, ckey, ":herald:hcfg:", 13, sfx, strlen(sfx));
	int cn = snprintf(cfg, sizeof(cfg), "%zu %lld %s", size, (long long)ttl, group);
	hr_argv cmds[3];
	redisReply *reps[3];
	for (size_t i = 0; i < 3; i++)
		hr_layer__argv_init(&cmds[i]);
	hr_layer__argv_str(&cmds[0], "ZADD");
	hr_layer__argv_add(&cmds[0], key, klen);
	hr_layer__argv_score(&cmds[0], hr_layer__now(l));
	hr_layer__argv_str(&cmds[0], member);
	hr_layer__argv_str(&cmds[1], "EXPIRE");
	hr_layer__argv_add(&cmds[1], key, klen);
	hr_layer__argv_ll(&cmds[1], r->group_expiry);
	hr_layer__argv_str(&cmds[2], "SET");
	hr_layer__argv_add(&cmds[2], ckey, cklen);
	hr_layer__argv_add(&cmds[2], cfg, (size_t)cn);
	hr_layer__argv_str(&cmds[2], "EX");
	hr_layer__argv_ll(&cmds[2], r->group_expiry > 0 ? r->group_expiry : 1);
	rv = run_on(l, hr_layer__redis_shard_of(r->n, group, glen), cmds, 3, reps);
	if (rv == 0)
		hr_layer__redis_free_replies(reps, 3);
	for (size_t i = 0; i < 3; i++)
		hr_layer__argv_fini(&cmds[i]);
	return rv;
}

size_t
hr_layer__history_shared_key(const hr_layer *l, size_t shard, char key[RD_KEY_MAX])
{
	char pk[HIST_PKEY_MAX];
	size_t plen = shared_pkey(l, shard, pk);
	return hr_layer__redis_key(l, key, pk, plen, "", 0);
}

/* "P:herald:" into out; its length. */
static size_t
herald_keys(const hr_layer *l, char *out)
{
	return hr_layer__redis_key(l, out, ":herald:", 8, "", 0);
}

int
hr_layer_history_pump(hr_layer *l, size_t shard, size_t max, size_t *sequenced)
{
	*sequenced = 0;
	if (!is_redis(l))
		return HR_ENOTSUP;
	const hr_redis *r = l->_be;
	if (shard >= r->n || max == 0)
		return HR_EINVAL;
	char pk[HIST_PKEY_MAX], key[RD_KEY_MAX], hk[RD_KEY_MAX], rnd[33];
	size_t plen = shared_pkey(l, shard, pk);
	size_t klen = hr_layer__history_shared_key(l, shard, key);
	size_t hklen = herald_keys(l, hk);
	hr_argv a;
	redisReply *rep = NULL;
	int rv = eval_begin(&a, pump_lua, sizeof(pump_lua) - 1, rnd);
	if (rv != 0)
		return rv;
	hr_layer__argv_add(&a, key, klen);
	hr_layer__argv_add(&a, hk, hklen);
	hr_layer__argv_add(&a, pk, plen);
	hr_layer__argv_ll(&a, (long long)max);
	hr_layer__argv_str(&a, rnd);
	hr_layer__argv_ll(&a, HR_HISTORY_DEFAULT_SIZE);
	hr_layer__argv_ll(&a, HR_HISTORY_DEFAULT_TTL);
	hr_layer__argv_ll(&a, epoch_keep(l, 1));
	hr_layer__argv_ll(&a, r->expiry);
	hr_layer__argv_ll(&a, HIST_LOG_MAXLEN);
	if ((rv = run_on(l, shard, &a, 1, &rep)) != 0)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3
	    || rep->element[0]->type != REDIS_REPLY_INTEGER) {
		rv = HR_EIO;
		goto out;
	}
	*sequenced = (size_t)rep->element[0]->integer;
	if (rep->element[1]->integer > 0)
		hr_layer__count_expired(l, (uint64_t)rep->element[1]->integer);
	if (rep->element[2]->integer > 0)
		hr_layer__count_bad(l, (uint64_t)rep->element[2]->integer);
out:
	freeReplyObject(rep);
	hr_layer__argv_fini(&a);
	return rv;
}

/* ------------------------------------------------------------ decoding */

static bool
rep_str(const redisReply *x)
{
	return x != NULL && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS);
}

/* A stored member (a copy popped from shard's shared key) into ev->msg. */
static int
decode_copy(hr_layer *l, const char *group, const char *m, size_t mlen, hr_layer_hevent *ev)
{
	const hr_redis *r = l->_be;
	char pk[HIST_PKEY_MAX];
	size_t glen = strlen(group);
	size_t plen = shared_pkey(l, hr_layer__redis_shard_of(r->n, group, glen), pk);
	hr_layer_targets t;
	int rv = hr_layer__redis_decode_member(m, mlen, pk, plen, true, &ev->msg, &t);
	hr_layer_targets_fini(&t);
	return rv;
}

static bool
epoch_ok(const char *s, size_t n)
{
	if (n != HR_HISTORY_EPOCH_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One log entry [id, [field, value, ...]] into ev. HR_EBADMSG if malformed. */
static int
decode_entry(hr_layer *l, const redisReply *fields, hr_layer_hevent *ev)
{
	const redisReply *g = NULL, *e = NULL, *o = NULL, *m = NULL;
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0)
		return HR_EBADMSG;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (!rep_str(k) || !rep_str(v) || k->len != 1)
			return HR_EBADMSG;
		switch (k->str[0]) {
		case 'g':
			g = v;
			break;
		case 'e':
			e = v;
			break;
		case 'o':
			o = v;
			break;
		case 'm':
			m = v;
			break;
		default:
			break;
		}
	}
	if (g == NULL || e == NULL || o == NULL || m == NULL || g->len > HR_NAME_MAX
	    || !epoch_ok(e->str, e->len) || o->len == 0 || o->len > 19)
		return HR_EBADMSG;
	memcpy(ev->group, g->str, g->len);
	ev->group[g->len] = '\0';
	if (hr_name_check_group(ev->group, g->len) != 0)
		return HR_EBADMSG;
	memcpy(ev->epoch, e->str, e->len);
	ev->epoch[e->len] = '\0';
	uint64_t off = 0;
	for (size_t i = 0; i < o->len; i++) {
		if (o->str[i] < '0' || o->str[i] > '9')
			return HR_EBADMSG;
		off = off * 10 + (uint64_t)(o->str[i] - '0');
	}
	ev->offset = off;
	return decode_copy(l, ev->group, m->str, m->len, ev);
}

/* A log position "<ms>-<seq>" as two numbers; false if it is not one. */
static bool
log_id(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;
	errno = 0;
	unsigned long long a = strtoull(s, &end, 10);
	if (end == s || *end != '-' || errno != 0)
		return false;
	const char *t = end + 1;
	unsigned long long b = strtoull(t, &end, 10);
	if (end == t || *end != '\0' || errno != 0)
		return false;
	*ms = a;
	*seq = b;
	return true;
}

/* Whether log position a comes after b ("" is before everything). */
static bool
log_after(const char *a, const char *b)
{
	uint64_t am, as, bm, bs;
	if (b[0] == '\0')
		return true;
	if (!log_id(a, &am, &as) || !log_id(b, &bm, &bs))
		return true; /* not a position: let the caller see it */
	return am > bm || (am == bm && as > bs);
}

int
hr_layer__history_entries(hr_layer *l, const redisReply *rep, char cursor[HR_HISTORY_CURSOR],
    hr_layer_hevent *ev, size_t max, size_t *n)
{
	if (rep->type == REDIS_REPLY_NIL)
		return 0; /* nothing (within the block) */
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1
	    || rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2
	    || rep->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
		return HR_EIO;
	const redisReply *entries = rep->element[0]->element[1];
	for (size_t i = 0; i < entries->elements && *n < max; i++) {
		const redisReply *x = entries->element[i];
		if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || !rep_str(x->element[0])
		    || x->element[0]->len >= HR_HISTORY_CURSOR)
			return HR_EIO;
		if (!log_after(x->element[0]->str, cursor))
			continue; /* read already, by a read that started later */
		memcpy(cursor, x->element[0]->str, x->element[0]->len);
		cursor[x->element[0]->len] = '\0';
		int rv = decode_entry(l, x->element[1], &ev[*n]);
		if (rv == 0)
			(*n)++;
		else if (rv == HR_EBADMSG)
			hr_layer__count_bad(l, 1);
		else
			return rv;
	}
	return 0;
}

int
hr_layer_history_tail(hr_layer *l, size_t shard, char cursor[HR_HISTORY_CURSOR], int block_ms,
    hr_layer_hevent *ev, size_t max, size_t *n)
{
	*n = 0;
	if (!is_redis(l))
		return HR_ENOTSUP;
	const hr_redis *r = l->_be;
	if (shard >= r->n || max == 0 || block_ms < 0 || block_ms > 2000)
		return HR_EINVAL;
	char lk[RD_KEY_MAX];
	size_t lklen = hr_layer__redis_key(l, lk, ":herald:log", 11, "", 0);
	hr_argv a;
	redisReply *rep = NULL;
	int rv = 0;
	hr_layer__argv_init(&a);
	if (cursor[0] == '\0') {
		/* From now: the log's last id ("0-0" if it has none). */
		hr_layer__argv_str(&a, "XREVRANGE");
		hr_layer__argv_add(&a, lk, lklen);
		hr_layer__argv_str(&a, "+");
		hr_layer__argv_str(&a, "-");
		hr_layer__argv_str(&a, "COUNT");
		hr_layer__argv_str(&a, "1");
		if ((rv = run_on(l, shard, &a, 1, &rep)) != 0)
			goto out;
		const char *id = "0-0";
		size_t idlen = 3;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1
		    && rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2
		    && rep_str(rep->element[0]->element[0])) {
			id = rep->element[0]->element[0]->str;
			idlen = rep->element[0]->element[0]->len;
		}
		if (idlen >= HR_HISTORY_CURSOR) {
			rv = HR_EIO;
			goto out;
		}
		memcpy(cursor, id, idlen);
		cursor[idlen] = '\0';
		freeReplyObject(rep);
		rep = NULL;
		hr_layer__argv_fini(&a);
	}
	hr_layer__argv_str(&a, "XREAD");
	hr_layer__argv_str(&a, "COUNT");
	hr_layer__argv_ll(&a, (long long)max);
	if (block_ms > 0) {
		hr_layer__argv_str(&a, "BLOCK");
		hr_layer__argv_ll(&a, block_ms);
	}
	hr_layer__argv_str(&a, "STREAMS");
	hr_layer__argv_add(&a, lk, lklen);
	hr_layer__argv_str(&a, cursor);
	if ((rv = run_on(l, shard, &a, 1, &rep)) == 0)
		rv = hr_layer__history_entries(l, rep, cursor, ev, max, n);
out:
	freeReplyObject(rep);
	hr_layer__argv_fini(&a);
	return rv;
}

int
hr_layer_history_range(hr_layer *l, const char *group, const char *epoch, uint64_t after,
    double ttl, hr_layer_hevent *ev, size_t max, size_t *n, hr_layer_hpos *pos)
{
	*n = 0;
	memset(pos, 0, sizeof(*pos));
	if (!is_redis(l))
		return HR_ENOTSUP;
	if (group == NULL || hr_name_check_group(group, strlen(group)) != 0)
		return HR_EBADNAME;
	if (epoch == NULL || max == 0 || !(ttl >= 1) || ttl > 1e9 || after > (1ull << 53))
		return HR_EINVAL;
	const hr_redis *r = l->_be;
	size_t glen = strlen(group);
	char hk[RD_KEY_MAX], rnd[33];
	size_t hklen = herald_keys(l, hk);
	hr_argv a;
	redisReply *rep = NULL;
	int rv = eval_begin(&a, range_lua, sizeof(range_lua) - 1, rnd);
	if (rv != 0)
		return rv;
	hr_layer__argv_add(&a, hk, hklen);
	hr_layer__argv_add(&a, group, glen);
	hr_layer__argv_str(&a, epoch);
	hr_layer__argv_ll(&a, (long long)after);
	hr_layer__argv_ll(&a, (long long)max);
	hr_layer__argv_ll(&a, (long long)ttl);
	hr_layer__argv_str(&a, rnd);
	hr_layer__argv_ll(&a, epoch_keep(l, ttl));
	if ((rv = run_on(l, hr_layer__redis_shard_of(r->n, group, glen), &a, 1, &rep)) != 0)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 || rep->elements % 2 != 0
	    || !rep_str(rep->element[0]) || !epoch_ok(rep->element[0]->str, rep->element[0]->len)
	    || rep->element[1]->type != REDIS_REPLY_INTEGER || rep->element[1]->integer < 0) {
		rv = HR_EIO;
		goto out;
	}
	memcpy(pos->epoch, rep->element[0]->str, HR_HISTORY_EPOCH_LEN);
	pos->epoch[HR_HISTORY_EPOCH_LEN] = '\0';
	pos->latest = (uint64_t)rep->element[1]->integer;
	for (size_t i = 2; i + 1 < rep->elements && *n < max; i += 2) {
		const redisReply *o = rep->element[i], *m = rep->element[i + 1];
		if (o->type != REDIS_REPLY_INTEGER || !rep_str(m)) {
			hr_layer__count_bad(l, 1);
			continue;
		}
		hr_layer_hevent *x = &ev[*n];
		memcpy(x->group, group, glen + 1);
		memcpy(x->epoch, pos->epoch, sizeof(x->epoch));
		x->offset = (uint64_t)o->integer;
		int rv2 = decode_copy(l, group, m->str, m->len, x);
		if (rv2 == 0)
			(*n)++;
		else if (rv2 == HR_EBADMSG)
			hr_layer__count_bad(l, 1);
		else {
			rv = rv2;
			hr_layer_hevents_release(ev, *n);
			*n = 0;
			goto out;
		}
	}
	pos->complete = strcmp(pos->epoch, epoch) == 0
	    && (after == pos->latest || (*n > 0 && ev[0].offset == after + 1));
out:
	freeReplyObject(rep);
	hr_layer__argv_fini(&a);
	return rv;
}
