/*
 * history.c: one group's recovery history (history.h): a ring of its last
 * SIZE envelope frames, with their arrival times, its epoch and its latest
 * offset. The offsets a ring holds are always contiguous (last - n + 1 ..
 * last), so a slot is only a time and a frame reference; append and expiry
 * are O(1) per frame. The slot array grows by doubling up to SIZE, so a
 * group that sees few frames (most user_* groups) holds few slots.
 *
 * Threads: a ring belongs to one thread (the router's); nothing here locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history_int.h"
#include "core/names.h"

#define FRAME_OVERHEAD 48 /* what an hr_msg costs beyond its bytes, roughly */

typedef struct slot {
	int64_t t_ms;
	hr_msg *frame; /* NULL: an offset with nothing to replay */
} slot;

struct hr_history {
	uint32_t size;
	int64_t ttl_ms;
	int64_t last_ms; /* last append, or creation */
	uint64_t last;   /* latest offset; the ring holds last - n + 1 .. last */
	slot *ring;
	uint32_t cap, head, n;
	size_t frame_bytes;
	uint32_t gen; /* hr_history__gen: set by the router's table */
	char epoch[HR_EPOCH_MAX + 1];
};

bool
hr_history__epoch_ok(const char *s, size_t len)
{
	if (len == 0 || len > HR_EPOCH_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static size_t
frame_cost(const hr_msg *m)
{
	return m != NULL ? hr_msg_len(m) + hr_msg_headroom(m) + FRAME_OVERHEAD : 0;
}

uint32_t
hr_history__gen(const hr_history *h)
{
	return h->gen;
}

void
hr_history__set_gen(hr_history *h, uint32_t gen)
{
	h->gen = gen;
}

int
hr_history_create(
    hr_history **out, uint32_t size, uint32_t ttl_s, const char *epoch, int64_t now_ms)
{
	hr_history *h;

	if (out == NULL || size == 0 || size > HR_HISTORY_MAX_SIZE || ttl_s == 0
	    || ttl_s > HR_HISTORY_MAX_TTL)
		return HR_EINVAL;
	if (epoch != NULL && !hr_history__epoch_ok(epoch, strlen(epoch)))
		return HR_EINVAL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return HR_ENOMEM;
	h->size = size;
	h->ttl_ms = (int64_t)ttl_s * 1000;
	h->last_ms = now_ms;
	if (epoch != NULL) {
		snprintf(h->epoch, sizeof(h->epoch), "%s", epoch);
	} else {
		unsigned char rnd[HR_EPOCH_LEN / 2];
		hr_sys__random_bytes(rnd, sizeof(rnd));
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(h->epoch + 2 * i, 3, "%02x", rnd[i]);
	}
	*out = h;
	return 0;
}

static void
drop_oldest(hr_history *h)
{
	slot *s = &h->ring[h->head];
	h->frame_bytes -= frame_cost(s->frame);
	hr_msg_unref(s->frame);
	s->frame = NULL;
	h->head = (h->head + 1) % h->cap;
	h->n--;
}

static void
clear(hr_history *h)
{
	while (h->n > 0)
		drop_oldest(h);
	h->head = 0;
}

void
hr_history_destroy(hr_history *h)
{
	if (h == NULL)
		return;
	if (h->cap > 0)
		clear(h);
	free(h->ring);
	free(h);
}

const char *
hr_history_epoch(const hr_history *h)
{
	return h->epoch;
}

uint64_t
hr_history_last(const hr_history *h)
{
	return h->last;
}

uint64_t
hr_history_first(const hr_history *h)
{
	return h->last - h->n + 1;
}

uint32_t
hr_history_frames(const hr_history *h)
{
	return h->n;
}

size_t
hr_history_bytes(const hr_history *h)
{
	return sizeof(*h) + (size_t)h->cap * sizeof(slot) + h->frame_bytes;
}

bool
hr_history_idle(const hr_history *h, int64_t now_ms)
{
	return now_ms - h->last_ms > h->ttl_ms;
}

/* Make room for one more slot: grow up to size, else drop the oldest. */
static int
make_room(hr_history *h)
{
	if (h->n < h->cap)
		return 0;
	if (h->cap < h->size) {
		uint32_t ncap = h->cap ? h->cap * 2 : 8;
		if (ncap > h->size)
			ncap = h->size;
		slot *nr = malloc((size_t)ncap * sizeof(*nr));
		if (nr == NULL)
			return HR_ENOMEM;
		for (uint32_t i = 0; i < h->n; i++)
			nr[i] = h->ring[(h->head + i) % h->cap];
		free(h->ring);
		h->ring = nr;
		h->cap = ncap;
		h->head = 0;
		return 0;
	}
	drop_oldest(h);
	return 0;
}

int
hr_history_append(hr_history *h, uint64_t offset, hr_msg *frame, int64_t now_ms)
{
	if (offset <= h->last)
		return HR_EINVAL;
	if (offset != h->last + 1 && h->n > 0)
		clear(h); /* a gap: what was held is not contiguous with what comes */
	h->last = offset;
	h->last_ms = now_ms;
	if (make_room(h) != 0) {
		/* Out of memory: the offset is recorded, the frames before it are
		 * forgotten, so a resume from before it answers recovered:false
		 * rather than skipping it. */
		if (h->cap > 0)
			clear(h);
		return 0;
	}
	slot *s = &h->ring[(h->head + h->n) % h->cap];
	s->t_ms = now_ms;
	s->frame = frame != NULL ? hr_msg_ref(frame) : NULL;
	h->frame_bytes += frame_cost(frame);
	h->n++;
	return 0;
}

void
hr_history_expire(hr_history *h, int64_t now_ms)
{
	while (h->n > 0 && now_ms - h->ring[h->head].t_ms > h->ttl_ms)
		drop_oldest(h);
}

int
hr_history_since(hr_history *h, uint64_t after, int64_t now_ms, hr_msg ***frames, uint32_t *n)
{
	hr_msg **out = NULL;
	uint32_t k = 0;

	*frames = NULL;
	*n = 0;
	hr_history_expire(h, now_ms);
	uint64_t first = h->last - h->n + 1; /* last + 1 when empty */
	if (after > h->last || after + 1 < first)
		return HR_ENOENT;
	uint32_t from = (uint32_t)(after + 1 - first), count = h->n - from;
	if (count == 0)
		return 0;
	if ((out = malloc((size_t)count * sizeof(*out))) == NULL)
		return HR_ENOMEM;
	for (uint32_t i = from; i < h->n; i++) {
		hr_msg *m = h->ring[(h->head + i) % h->cap].frame;
		if (m != NULL)
			out[k++] = hr_msg_ref(m);
	}
	if (k == 0) {
		free(out);
		out = NULL;
	}
	*frames = out;
	*n = k;
	return 0;
}

bool
hr_history_covers(hr_history *h, uint64_t after, int64_t now_ms)
{
	hr_history_expire(h, now_ms);
	return after <= h->last && after + 1 >= h->last - h->n + 1;
}

int
hr_history_backfill(hr_history *h, const uint64_t *offsets, hr_msg *const *frames, size_t n,
    uint64_t latest, int64_t now_ms)
{
	hr_history *o = NULL, tmp;
	uint64_t first = h->last - h->n + 1;
	size_t i = 0;
	int rv;

	if ((rv = hr_history_create(&o, h->size, (uint32_t)(h->ttl_ms / 1000), h->epoch, now_ms))
	    != 0)
		return rv;
	/* what is older than the ring's first offset, then the ring as it is
	 * (arrival times kept), then what is newer than its last */
	for (; i < n && offsets[i] < first; i++)
		if (offsets[i] > o->last)
			(void)hr_history_append(o, offsets[i], frames[i], now_ms);
	for (uint32_t j = 0; j < h->n; j++) {
		slot *s = &h->ring[(h->head + j) % h->cap];
		if (first + j <= o->last)
			continue;
		(void)hr_history_append(o, first + j, s->frame, now_ms);
		if (o->n > 0 && o->last == first + j)
			o->ring[(o->head + o->n - 1) % o->cap].t_ms = s->t_ms;
	}
	for (; i < n; i++)
		if (offsets[i] > o->last)
			(void)hr_history_append(o, offsets[i], frames[i], now_ms);
	/* offsets nobody holds any more (expired, or never seen here) */
	uint64_t top = h->last > latest ? h->last : latest;
	if (o->last < top) {
		clear(o);
		o->last = top;
	}
	o->last_ms = h->last_ms > o->last_ms ? h->last_ms : o->last_ms;
	o->gen = h->gen; /* the same ring to the router */
	tmp = *h;
	*h = *o;
	*o = tmp;
	hr_history_destroy(o);
	return 0;
}

const hr_history_rule *
hr_history_rule_find(const hr_history_rule *rules, size_t n, const char *group, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (hr_glob_match(rules[i].glob, group, len))
			return &rules[i];
	return NULL;
}

void
hr_replay_free(hr_replay *rp)
{
	if (rp == NULL)
		return;
	for (uint32_t i = 0; i < rp->n; i++)
		hr_msg_unref(rp->frames[i]);
	free(rp);
}
