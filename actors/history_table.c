/*
 * history_table.c: a router's recovery history (history_int.h): its rings
 * by group name, the numbering of group_sends, the envelope frames (built
 * once per group_send, here, on the router thread: the ring keeps exactly
 * the bytes that recover members receive live, so a replay never encodes
 * again) and the answer to a resume (the frames after a position and the
 * `recovered` frame).
 *
 * Threads: the router's thread only; the counters are atomics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/consumer.h"
#include "actors/history_int.h"
#include "actors/router_int.h"
#include "core/clock.h"

/* How often idle rings are looked for. */
#define SWEEP_MS 1000

static void
ring_free(void *p)
{
	hr_history_destroy(p);
}
static const hr_map_type rings_type
    = { .kind = HR_MAP_STR, .copy_keys = true, .val_free = ring_free };

static int64_t
now_ms(void)
{
	return (int64_t)(hr_clock_mono() * 1000.0);
}

int
hr_history__conf_new(const hr_history_rule *rules, size_t n, bool external, hr_history_conf **out)
{
	size_t extra = 0;
	hr_history_conf *hc;

	if (n > HR_HISTORY_MAX_RULES || (n > 0 && rules == NULL))
		return HR_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].glob == NULL || rules[i].size == 0
		    || rules[i].size > HR_HISTORY_MAX_SIZE || rules[i].ttl_s == 0
		    || rules[i].ttl_s > HR_HISTORY_MAX_TTL)
			return HR_EINVAL;
		extra += strlen(rules[i].glob) + 1;
	}
	if ((hc = malloc(sizeof(*hc) + n * sizeof(hc->rules[0]) + extra)) == NULL)
		return HR_ENOMEM;
	hc->external = external;
	hc->n = n;
	char *p = (char *)&hc->rules[n];
	for (size_t i = 0; i < n; i++) {
		size_t gl = strlen(rules[i].glob) + 1;
		memcpy(p, rules[i].glob, gl);
		hc->rules[i] = rules[i];
		hc->rules[i].glob = p;
		p += gl;
	}
	*out = hc;
	return 0;
}

void
hr_history__table_init(hr_history_table *t)
{
	t->conf = NULL;
	hr_map_init(&t->rings, &rings_type, 0);
	hr_buf_init(&t->scratch, HR_FRAME_HEADROOM);
	t->swept_ms = 0;
	t->gen = 0;
	atomic_init(&t->groups, 0);
	atomic_init(&t->frames, 0);
	atomic_init(&t->bytes, 0);
	atomic_init(&t->replayed, 0);
	atomic_init(&t->unrecoverable, 0);
}

void
hr_history__table_fini(hr_history_table *t)
{
	hr_map_fini(&t->rings); /* frees each ring */
	hr_buf_fini(&t->scratch);
	free(t->conf);
	t->conf = NULL;
}

/* Keep the gauges true across a change of one ring: its size before, and
 * the ring after (NULL: freed). */
static void
account(hr_history_table *t, size_t bytes_before, uint32_t frames_before, const hr_history *h)
{
	size_t b = h != NULL ? hr_history_bytes(h) : 0;
	uint32_t f = h != NULL ? hr_history_frames(h) : 0;
	atomic_fetch_add(&t->bytes, (uint_fast64_t)b);
	atomic_fetch_sub(&t->bytes, (uint_fast64_t)bytes_before);
	atomic_fetch_add(&t->frames, (uint_fast64_t)f);
	atomic_fetch_sub(&t->frames, (uint_fast64_t)frames_before);
}

static void
ring_delete(hr_history_table *t, hr_map_entry *e)
{
	hr_history *h = e->val.ptr;
	account(t, hr_history_bytes(h), hr_history_frames(h), NULL);
	atomic_fetch_sub(&t->groups, 1);
	hr_map_delete(&t->rings, e); /* does not free the value */
	hr_history_destroy(h);
}

void
hr_history__table_set(hr_history_table *t, hr_history_conf *conf)
{
	hr_map_iter it;
	hr_map_entry *e;

	free(t->conf);
	t->conf = conf;
	if (conf != NULL && conf->n == 0 && !conf->external) {
		free(conf);
		t->conf = NULL;
	}
	hr_map_iter_init(&it, &t->rings);
	while ((e = hr_map_next(&it)) != NULL)
		ring_delete(t, e);
}

const hr_history_rule *
hr_history__rule(const hr_history_table *t, const char *group, size_t len)
{
	if (t->conf == NULL)
		return NULL;
	return hr_history_rule_find(t->conf->rules, t->conf->n, group, len);
}

/* The group's ring; with create, one is made (epoch: NULL draws a new one)
 * when the group has a rule and no ring yet, or a ring of another epoch
 * than the one given. NULL: no rule, or out of memory. */
static hr_history *
ring_get(hr_history_table *t, const char *group, size_t len, bool create, const char *epoch)
{
	hr_map_entry *e = hr_map_find_str(&t->rings, group, len);
	const hr_history_rule *rule;
	hr_history *h;

	if (e != NULL) {
		h = e->val.ptr;
		if (epoch == NULL || strcmp(hr_history_epoch(h), epoch) == 0)
			return h;
		if (!create)
			return NULL;
		ring_delete(t, e); /* the history moved to another epoch */
	}
	if (!create || (rule = hr_history__rule(t, group, len)) == NULL)
		return NULL;
	if (hr_history_create(&h, rule->size, rule->ttl_s, epoch, now_ms()) != 0)
		return NULL;
	if (++t->gen == 0) /* 0 means none */
		t->gen = 1;
	hr_history__set_gen(h, t->gen);
	if (hr_map_put_str(&t->rings, group, len, &e, NULL) != 0) {
		hr_history_destroy(h);
		return NULL;
	}
	e->val.ptr = h;
	atomic_fetch_add(&t->groups, 1);
	account(t, 0, 0, h);
	return h;
}

uint32_t
hr_history__gen_of(hr_history_table *t, const char *group, size_t len)
{
	hr_map_entry *e = hr_map_find_str(&t->rings, group, len);
	return e != NULL ? hr_history__gen(e->val.ptr) : 0;
}

bool
hr_history__position(hr_history_table *t, const char *group, size_t len, bool at, const char *epoch,
    uint64_t at_offset, unsigned flags, bool local_only, hr_history **hp, uint64_t *offset,
    bool *deliver)
{
	*hp = NULL;
	*offset = 0;
	*deliver = true;
	if (hr_history__rule(t, group, len) == NULL)
		return true;
	if (at) {
		hr_history *h = ring_get(t, group, len, true, epoch);
		if (h != NULL && at_offset <= hr_history_last(h))
			return false;
		*hp = h;
		*offset = at_offset;
		*deliver = (flags & HR_AT_HISTORY_ONLY) == 0;
	} else if (t->conf->external) {
		/* it comes back positioned (group_send_at); what came from the
		 * layer without a position is delivered as before */
		*deliver = local_only;
	} else {
		*hp = ring_get(t, group, len, true, NULL);
		*offset = *hp != NULL ? hr_history_last(*hp) + 1 : 0;
	}
	return true;
}

void
hr_history__append(hr_history_table *t, hr_history *h, uint64_t offset, hr_msg *env)
{
	size_t b = hr_history_bytes(h);
	uint32_t f = hr_history_frames(h);
	(void)hr_history_append(h, offset, env, now_ms());
	account(t, b, f, h);
}

hr_msg *
hr_history__envelope(hr_history_table *t, int ctype, const hr_msg *event, const char *group,
    const hr_history *h, uint64_t offset)
{
	hr_buf *b = &t->scratch;
	hr_msg *frame = NULL;
	char pos[96];
	int n = 0;

	hr_buf_reset(b);
	if (h != NULL)
		n = snprintf(pos, sizeof(pos), ",\"epoch\":\"%s\",\"offset\":%llu",
		    hr_history_epoch(h), (unsigned long long)offset);
	/* group names are [A-Za-z0-9._-] (hr_name_check_group): no escaping */
	if (hr_buf_append(b, "{\"type\":\"message\"", 17) != 0
	    || (group != NULL
	        && (hr_buf_append(b, ",\"group\":\"", 10) != 0
	            || hr_buf_append(b, group, strlen(group)) != 0 || hr_buf_putc(b, '"') != 0))
	    || (n > 0 && hr_buf_append(b, pos, (size_t)n) != 0)
	    || hr_buf_append(b, ",\"data\":", 8) != 0
	    || hr_consumers__event_json(ctype, hr_msg_data(event), hr_msg_len(event), b) != 0
	    || hr_buf_putc(b, '}') != 0 || hr_ws_frame_text(b, &frame) != 0) {
		hr_buf_reset(b);
		return NULL;
	}
	return frame;
}

/* The `recovered` frame; a group without history has no epoch or offset. */
static hr_msg *
build_recovered(hr_history_table *t, const char *group, const hr_history *h, uint64_t offset,
    bool ok, uint32_t k)
{
	hr_buf *b = &t->scratch;
	hr_msg *frame = NULL;
	char tail[160];
	int n;

	hr_buf_reset(b);
	if (h != NULL)
		n = snprintf(tail, sizeof(tail),
		    "\",\"epoch\":\"%s\",\"offset\":%llu,\"recovered\":%s,\"missed\":%u}",
		    hr_history_epoch(h), (unsigned long long)offset, ok ? "true" : "false", k);
	else
		n = snprintf(tail, sizeof(tail), "\",\"recovered\":%s,\"missed\":%u}",
		    ok ? "true" : "false", k);
	if (n <= 0 || (size_t)n >= sizeof(tail)
	    || hr_buf_append(b, "{\"type\":\"recovered\",\"group\":\"", 29) != 0
	    || hr_buf_append(b, group, strlen(group)) != 0 || hr_buf_append(b, tail, (size_t)n) != 0
	    || hr_ws_frame_text(b, &frame) != 0) {
		hr_buf_reset(b);
		return NULL;
	}
	return frame;
}

bool
hr_history__covers(hr_history_table *t, const char *group, const hr_recover_pos *pos)
{
	size_t len = strlen(group);
	if (t->conf == NULL || !t->conf->external || hr_history__rule(t, group, len) == NULL)
		return true;
	hr_map_entry *e = hr_map_find_str(&t->rings, group, len);
	if (e == NULL)
		return false;
	hr_history *h = e->val.ptr;
	if (!pos->given)
		return true;
	if (strcmp(pos->epoch, hr_history_epoch(h)) != 0)
		return false;
	size_t b = hr_history_bytes(h);
	uint32_t f = hr_history_frames(h);
	bool ok = hr_history_covers(h, pos->offset, now_ms());
	account(t, b, f, h);
	return ok;
}

void
hr_history__fill(hr_history_table *t, const char *group, const char *epoch, uint64_t latest,
    const uint64_t *offsets, hr_msg *const *events, size_t n)
{
	hr_history *h = ring_get(t, group, strlen(group), true, epoch);
	hr_msg **env;

	if (h == NULL || (env = calloc(n > 0 ? n : 1, sizeof(*env))) == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		env[i] = hr_history__envelope(t, -1, events[i], group, h, offsets[i]);
	size_t b = hr_history_bytes(h);
	uint32_t f = hr_history_frames(h);
	(void)hr_history_backfill(h, offsets, env, n, latest, now_ms());
	account(t, b, f, h);
	for (size_t i = 0; i < n; i++)
		hr_msg_unref(env[i]);
	free(env);
}

bool
hr_history__start(hr_history_table *t, const char *group, uint32_t *gen, uint64_t *first)
{
	hr_map_entry *e = hr_map_find_str(&t->rings, group, strlen(group));
	if (e == NULL)
		return false;
	*gen = hr_history__gen(e->val.ptr);
	*first = hr_history_first(e->val.ptr);
	return true;
}

hr_replay *
hr_history__resume(hr_history_table *t, const char *group, const hr_recover_pos *pos,
    uint64_t live_from, uint16_t thread, uint64_t conn)
{
	/* numbered elsewhere: a ring is only made with the epoch given there */
	bool external = t->conf != NULL && t->conf->external;
	hr_history *h = ring_get(t, group, strlen(group), !external, NULL);
	hr_msg **frames = NULL, *rec;
	hr_replay *rp = NULL;
	uint64_t at = h != NULL ? hr_history_last(h) : 0;
	uint32_t k = 0, live = 0;
	bool ok = false;

	if (h != NULL
	    && (pos->given ? strcmp(pos->epoch, hr_history_epoch(h)) == 0
	                   : live_from > 0 && live_from <= at)) {
		size_t b = hr_history_bytes(h);
		uint32_t f = hr_history_frames(h);
		if (pos->given)
			ok = hr_history_since(h, pos->offset, now_ms(), &frames, &k) == 0;
		else if (hr_history_since(h, live_from - 1, now_ms(), &frames, &live) == 0)
			at = live_from - 1;
		account(t, b, f, h); /* since() drops what TTL expired */
	}
	if ((rec = build_recovered(t, group, h, at, ok, k)) == NULL
	    || (rp = malloc(sizeof(*rp) + ((size_t)k + 1 + live) * sizeof(rp->frames[0])))
	        == NULL) {
		for (uint32_t i = 0; i < k + live; i++)
			hr_msg_unref(frames[i]);
		free(frames);
		hr_msg_unref(rec);
		return NULL;
	}
	rp->thread = thread;
	rp->conn = conn;
	rp->floor = h != NULL ? hr_history_last(h) : 0;
	rp->gen = h != NULL ? hr_history__gen(h) : 0;
	rp->n = k + 1 + live;
	/* replayed frames, the `recovered` frame, then the live ones */
	if (k > 0)
		memcpy(rp->frames, frames, (size_t)k * sizeof(frames[0]));
	rp->frames[k] = rec;
	if (live > 0)
		memcpy(rp->frames + 1, frames, (size_t)live * sizeof(frames[0]));
	free(frames);
	if (pos->given && !ok)
		atomic_fetch_add(&t->unrecoverable, 1);
	atomic_fetch_add(&t->replayed, k);
	return rp;
}

void
hr_history__sweep(hr_history_table *t, bool (*busy)(void *arg, const char *group), void *arg)
{
	int64_t now = now_ms();
	hr_map_iter it;
	hr_map_entry *e;

	if (now - t->swept_ms < SWEEP_MS)
		return;
	t->swept_ms = now;
	hr_map_iter_init(&it, &t->rings);
	while ((e = hr_map_next(&it)) != NULL) {
		hr_history *h = e->val.ptr;
		size_t b = hr_history_bytes(h);
		uint32_t f = hr_history_frames(h);
		hr_history_expire(h, now);
		account(t, b, f, h);
		/* Nothing for TTL and nobody here: the ring goes, and the
		 * group's next group_send starts a new epoch (as the Redis
		 * layer's history expires after TTL). Kept while a member is
		 * connected: its replay floor belongs to this epoch. */
		if (hr_history_idle(h, now) && !busy(arg, e->str))
			ring_delete(t, e);
	}
}

/* router_int.h: kept here, beside the ring it fills (router.c and
 * router_api.c both free one). */
void
hr_router__fill_free(hr_fill *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		hr_msg_unref(f->events[i]);
	free(f);
}

void
hr_history__stats(hr_history_table *t, hr_history_stats *out)
{
	out->groups = atomic_load(&t->groups);
	out->frames = atomic_load(&t->frames);
	out->bytes = atomic_load(&t->bytes);
	out->replayed = atomic_load(&t->replayed);
	out->unrecoverable = atomic_load(&t->unrecoverable);
}
