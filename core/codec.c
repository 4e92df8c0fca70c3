/*
 * codec.c: reading msgpack, with msgpack-c. Validation, map lookups
 * (map_get, get_type, map_remove) and the msgpack → JSON encoder that runs
 * once per broadcast. Pure code, any thread.
 *
 * Two ways of reading, both msgpack-c's decoder:
 * - The walker (walk_one): msgpack-c's unpacking state machine (msgpack/unpack_template.h,
 *   the code behind msgpack_unpack_next) instantiated with callbacks that
 *   build nothing. It never allocates and never reads past the input. Its
 *   callbacks bound nesting (HR_CODEC_MAX_DEPTH, the top container is depth
 *   1), check UTF-8 and key types, and note the top value of what they walk;
 *   walking one element at a time gives the offsets that map_get and
 *   map_remove need (each walk stops after one object and says where).
 * - msgpack_unpack() into a zone builds the msgpack_object tree that the
 *   JSON encoder prints. msgpack-c's object unpacker allocates count × 24
 *   bytes (48 for a map) as soon as it reads a container header, before it
 *   knows whether the input holds that many elements: five bytes can ask
 *   for 96 GiB. So it only ever sees input that the walker accepted whole,
 *   whose counts are true, and the zone is sized by that walk (at most 24
 *   bytes per input byte, one allocation).
 * Truncated, malformed or trailing input is HR_EBADMSG.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

/* The walker's own stack is one deeper than the bound, so that the bound is
 * always the callbacks' HR_EDEPTH and never msgpack-c's stack overflow. */
#define MSGPACK_EMBED_STACK_SIZE (HR_CODEC_MAX_DEPTH + 1)
#include <msgpack.h>
#include <msgpack/unpack_define.h>

/* ---------------------------------------------------------------- walker */

#define W_STOP (-1999) /* a callback ended the walk on purpose */

enum w_kind { W_OTHER, W_STR, W_ARRAY, W_MAP };

typedef struct w_level {
	uint32_t left; /* elements (maps: pairs) still to come */
	bool map;
	bool want_key; /* maps, with str_keys: the next value is a key */
} w_level;

/* The walker's user data: settings, then what the walk found. */
typedef struct walk {
	int base;         /* nesting depth of the walked object in its document */
	bool utf8;        /* every str must be valid UTF-8 (HR_EUTF8) */
	bool str_keys;    /* every map key must be a str (HR_ETYPE) */
	bool stop_at_top; /* stop at the top value (containers: after the header) */
	int depth;        /* containers open */
	enum w_kind top;  /* the walked object's type */
	const char *s;    /* ... when a str: its bytes (borrowed) */
	uint32_t n;       /* ... when a str, its length; a container, its count */
	size_t zone;      /* bytes msgpack_unpack's zone needs for the containers */
	w_level lv[HR_CODEC_MAX_DEPTH];
} walk;

static void
walk_reset(walk *w, int base, bool utf8, bool str_keys)
{
	w->base = base;
	w->utf8 = utf8;
	w->str_keys = str_keys;
	w->stop_at_top = false;
	w->depth = 0;
	w->top = W_OTHER;
	w->s = NULL;
	w->n = 0;
	w->zone = 0;
}

/* 0 when [p, p+n) is valid UTF-8: shortest form, no surrogates, <= U+10FFFF. */
static int
utf8_check(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		unsigned lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return HR_EUTF8;
		}
		if (n - i - 1 < k || p[i + 1] < lo || p[i + 1] > hi)
			return HR_EUTF8;
		for (size_t j = 2; j <= k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return HR_EUTF8;
		i += k + 1;
	}
	return 0;
}

/* Every value, as it starts: note the top one, check map keys. */
static int
w_value(walk *w, enum w_kind kind, const char *s, uint32_t n)
{
	if (w->depth == 0) {
		w->top = kind;
		w->s = s;
		w->n = n;
		return w->stop_at_top ? W_STOP : 0;
	}
	w_level *l = &w->lv[w->depth - 1];
	if (w->str_keys && l->map && l->want_key) {
		if (kind != W_STR)
			return HR_ETYPE;
		l->want_key = false;
	}
	return 0;
}

static int
w_open(walk *w, bool map, unsigned n)
{
	int rc = w_value(w, map ? W_MAP : W_ARRAY, NULL, n);
	if (rc != 0)
		return rc;
	if (w->base + w->depth >= HR_CODEC_MAX_DEPTH)
		return HR_EDEPTH;
	w->zone += n * (map ? sizeof(msgpack_object_kv) : sizeof(msgpack_object));
	if (n != 0)
		w->lv[w->depth++] = (w_level) { n, map, true };
	return 0;
}

/* An element (a pair, in a map) of the innermost container is complete. */
static int
w_item(walk *w)
{
	w_level *l = &w->lv[w->depth - 1];
	if (--l->left == 0)
		w->depth--;
	else
		l->want_key = true;
	return 0;
}

static int
w_bytes(walk *w, enum w_kind kind, const char *p, unsigned l)
{
	int rc = w_value(w, kind, p, l);
	if (rc == 0 && kind == W_STR && w->utf8)
		rc = utf8_check((const unsigned char *)p, l);
	return rc;
}

/* The callbacks msgpack-c's template calls; the "object" it carries is a
 * dummy int: nothing is built. */
static inline int
w_cb_root(walk *w)
{
	(void)w;
	return 0;
}
#define W_SCALAR(name, type)                                                                       \
	static inline int w_cb_##name(walk *w, type v, int *o)                                     \
	{                                                                                          \
		(void)v;                                                                           \
		(void)o;                                                                           \
		return w_value(w, W_OTHER, NULL, 0);                                               \
	}
W_SCALAR(uint8, uint8_t)
W_SCALAR(uint16, uint16_t)
W_SCALAR(uint32, uint32_t)
W_SCALAR(uint64, uint64_t)
W_SCALAR(int8, int8_t)
W_SCALAR(int16, int16_t)
W_SCALAR(int32, int32_t)
W_SCALAR(int64, int64_t)
W_SCALAR(float, float)
W_SCALAR(double, double)
#define W_CONST(name)                                                                              \
	static inline int w_cb_##name(walk *w, int *o)                                             \
	{                                                                                          \
		(void)o;                                                                           \
		return w_value(w, W_OTHER, NULL, 0);                                               \
	}
W_CONST(nil)
W_CONST(true)
W_CONST(false)
static inline int
w_cb_array(walk *w, unsigned n, int *o)
{
	(void)o;
	return w_open(w, false, n);
}
static inline int
w_cb_array_item(walk *w, int *c, int o)
{
	(void)c;
	(void)o;
	return w_item(w);
}
static inline int
w_cb_map(walk *w, unsigned n, int *o)
{
	(void)o;
	return w_open(w, true, n);
}
static inline int
w_cb_map_item(walk *w, int *c, int k, int v)
{
	(void)c;
	(void)k;
	(void)v;
	return w_item(w);
}
static inline int
w_cb_str(walk *w, const char *b, const char *p, unsigned l, int *o)
{
	(void)o;
	/* For an empty str p is stale (even NULL): give a pointer into the
	 * input (b is its start), so that a borrowed "" is never NULL. */
	return w_bytes(w, W_STR, l != 0 ? p : b, l);
}
static inline int
w_cb_bin(walk *w, const char *b, const char *p, unsigned l, int *o)
{
	(void)b;
	(void)o;
	return w_bytes(w, W_OTHER, p, l);
}
static inline int
w_cb_ext(walk *w, const char *b, const char *p, unsigned l, int *o)
{
	(void)b;
	(void)o;
	/* l counts the type byte too; 0 means an ext32 length of 2^32 - 1
	 * wrapped (msgpack-c's own unpacker refuses it the same way). */
	if (l == 0)
		return HR_EBADMSG;
	return w_bytes(w, W_OTHER, p, l);
}

#define msgpack_unpack_struct(name) struct w##name
#define msgpack_unpack_func(ret, name) static inline ret w##name
#define msgpack_unpack_callback(name) w_cb##name
#define msgpack_unpack_object int
#define msgpack_unpack_user walk
#include <msgpack/unpack_template.h>

typedef struct w_context w_context;

/* Walk the one object at mp + *off with c->user's settings; *off moves past
 * it (on W_STOP: to the last byte of the value that stopped the walk, for a
 * container the last byte of its header). */
static int
walk_one(w_context *c, const unsigned char *mp, size_t len, size_t *off)
{
	w_init(c);
	int rc = w_execute(c, (const char *)mp, len, off);
	if (rc == 1)
		return 0;
	HR_ASSERT(rc != MSGPACK_UNPACK_NOMEM_ERROR); /* the stack is deeper than the bound */
	if (rc == MSGPACK_UNPACK_CONTINUE || rc == MSGPACK_UNPACK_PARSE_ERROR)
		return HR_EBADMSG; /* truncated; 0xc1 */
	return rc;                 /* a callback's HR_E*, or W_STOP */
}

/* Besides the structure, every str must be valid UTF-8 (HR_EUTF8): the
 * Python side reads msgpack with raw=False and would fail on it, and the
 * JSON encoder refuses it later anyway. Keys of any type are fine here; only
 * JSON needs str keys. */
int
hr_codec_validate(const void *mp, size_t len)
{
	w_context c;
	size_t off = 0;
	walk_reset(&c.user, 0, true, false);
	int rc = walk_one(&c, mp, len, &off);
	if (rc == 0 && off != len)
		rc = HR_EBADMSG; /* more than one object */
	return rc;
}

/* ---------------------------------------------------------------- maps */

/* The top value at mp stops the walk: its type in c->user.top, and *end is
 * where it ends (for a container, its header). */
static int
walk_top(w_context *c, const unsigned char *mp, size_t len, size_t *end)
{
	size_t off = 0;
	walk_reset(&c->user, 0, false, false);
	c->user.stop_at_top = true;
	int rc = walk_one(c, mp, len, &off);
	if (rc != W_STOP)
		return rc != 0 ? rc : HR_ETYPE; /* 0: cannot happen, the top value stops */
	*end = off + 1;
	return 0;
}

static int
header(const void *mp, size_t len, enum w_kind kind, uint32_t *n, size_t *hlen)
{
	w_context c;
	size_t end;
	int rc = walk_top(&c, mp, len, &end);
	if (rc != 0)
		return rc;
	if (c.user.top != kind)
		return HR_ETYPE;
	*n = c.user.n;
	*hlen = end;
	return 0;
}

int
hr_codec_map_header(const void *mp, size_t len, uint32_t *n, size_t *hlen)
{
	return header(mp, len, W_MAP, n, hlen);
}

int
hr_codec_array_header(const void *mp, size_t len, uint32_t *n, size_t *hlen)
{
	return header(mp, len, W_ARRAY, n, hlen);
}

int
hr_codec_read_str(const void *mp, size_t len, const char **s, size_t *n, size_t *used)
{
	w_context c;
	size_t end;
	int rc = walk_top(&c, mp, len, &end);
	if (rc != 0)
		return rc;
	if (c.user.top != W_STR)
		return HR_ETYPE;
	*s = c.user.s;
	*n = c.user.n;
	*used = end;
	return 0;
}

/* Step over one key (at depth 1) at *off; *hit when it is the str `key`. */
static int
map_key(w_context *c, const unsigned char *mp, size_t len, size_t *off, const char *key,
    size_t klen, bool *hit)
{
	walk_reset(&c->user, 1, false, false);
	int rc = walk_one(c, mp, len, off);
	*hit = rc == 0 && c->user.top == W_STR && c->user.n == klen
	    && memcmp(c->user.s, key, klen) == 0;
	return rc;
}

/* Step over one value (at depth 1) at *off. */
static int
map_value(w_context *c, const unsigned char *mp, size_t len, size_t *off)
{
	walk_reset(&c->user, 1, false, false);
	return walk_one(c, mp, len, off);
}

/* map_get, and the walk of the value found (c->user) for get_type. */
static int
map_find(w_context *c, const unsigned char *mp, size_t len, const char *key, size_t *vstart,
    size_t *vend)
{
	uint32_t n;
	size_t off;
	bool hit;
	size_t klen = strlen(key);
	int rc = hr_codec_map_header(mp, len, &n, &off);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = map_key(c, mp, len, &off, key, klen, &hit)) != 0)
			return rc;
		size_t v = off;
		if ((rc = map_value(c, mp, len, &off)) != 0)
			return rc;
		if (hit) {
			*vstart = v;
			*vend = off;
			return 0;
		}
	}
	return HR_ENOENT;
}

/* Reads only up to the value found: bytes after it, even malformed ones, are
 * not looked at (validation is hr_codec_validate's job). */
int
hr_codec_map_get(
    const void *mp, size_t len, const char *key, const unsigned char **val, size_t *vlen)
{
	w_context c;
	size_t vs, ve;
	int rc = map_find(&c, mp, len, key, &vs, &ve);
	if (rc != 0)
		return rc;
	*val = (const unsigned char *)mp + vs;
	*vlen = ve - vs;
	return 0;
}

int
hr_codec_get_type(const void *mp, size_t len, const char **type, size_t *tlen)
{
	w_context c;
	size_t vs, ve;
	int rc = map_find(&c, mp, len, "type", &vs, &ve);
	if (rc != 0)
		return rc;
	if (c.user.top != W_STR)
		return HR_ETYPE;
	if ((rc = utf8_check((const unsigned char *)c.user.s, c.user.n)) != 0)
		return rc;
	*type = c.user.s;
	*tlen = c.user.n;
	return 0;
}

int
hr_codec_map_remove(const void *mp, size_t len, const char *key, hr_buf *out)
{
	w_context c;
	const unsigned char *d = mp;
	size_t klen = strlen(key);
	uint32_t n;
	size_t body, off;
	bool hit;
	int rc = hr_codec_map_header(d, len, &n, &body);
	if (rc != 0)
		return rc;
	/* Unlike map_get this walks the whole map, which must fill [mp, mp+len)
	 * exactly. First pass: check the whole map and count the pairs that stay. */
	uint32_t keep = 0;
	off = body;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = map_key(&c, d, len, &off, key, klen, &hit)) != 0
		    || (rc = map_value(&c, d, len, &off)) != 0)
			return rc;
		keep += !hit;
	}
	if (off != len)
		return HR_EBADMSG;
	/* Second pass: copy the pairs that stay, as runs of contiguous bytes. */
	size_t mark = hr_buf_len(out);
	if ((rc = hr_mp_map(out, keep)) != 0)
		return rc;
	size_t run = body;
	off = body;
	for (uint32_t i = 0; i < n; i++) {
		size_t pair = off;
		/* The first pass checked all of it: these cannot fail. */
		rc = map_key(&c, d, len, &off, key, klen, &hit);
		HR_ASSERT(rc == 0);
		rc = map_value(&c, d, len, &off);
		HR_ASSERT(rc == 0);
		if (hit) {
			if ((rc = hr_buf_append(out, d + run, pair - run)) != 0)
				goto fail;
			run = off;
		}
	}
	if ((rc = hr_buf_append(out, d + run, len - run)) != 0)
		goto fail;
	return 0;
fail:
	hr_buf__truncate(out, mark);
	return rc;
}

/* ---------------------------------------------------------------- JSON */

static const char hexd[] = "0123456789abcdef";

/* p[i] starts U+2028 or U+2029 (e2 80 a8, e2 80 a9). */
static bool
line_sep(const unsigned char *p, size_t i, size_t n)
{
	return p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 && (p[i + 2] | 1) == 0xa9;
}

/* Bytes that the JSON form of str byte p[i] takes; U+2028 and U+2029 are
 * escaped too (valid JSON, but not valid JavaScript before ES2019). */
static size_t
json_str_len(const unsigned char *p, size_t n)
{
	size_t out = 2;
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];
		if (c == '"' || c == '\\')
			out += 2;
		else if (c < 0x20)
			out += 6;
		else if (line_sep(p, i, n)) {
			out += 6;
			i += 2;
		} else
			out++;
	}
	return out;
}

/* p is valid UTF-8 (the walk checked it). */
static int
json_str(hr_buf *out, const unsigned char *p, size_t n)
{
	size_t need = json_str_len(p, n);
	unsigned char *o;
	int rc = hr_buf__tail(out, need, &o);
	if (rc != 0)
		return rc;
	unsigned char *start = o;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (unsigned char)c;
		} else if (c < 0x20) {
			memcpy(o, "\\u00", 4);
			o[4] = (unsigned char)hexd[c >> 4];
			o[5] = (unsigned char)hexd[c & 15];
			o += 6;
		} else if (line_sep(p, i, n)) {
			memcpy(o, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			o += 6;
			i += 2;
		} else {
			*o++ = (unsigned char)c;
		}
	}
	*o++ = '"';
	HR_ASSERT((size_t)(o - start) == need);
	hr_buf__advance(out, (size_t)(o - start));
	return 0;
}

static int
json_base64(hr_buf *out, const unsigned char *p, size_t n)
{
	static const char tab[]
	    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t need = 2 + (n + 2) / 3 * 4;
	unsigned char *o;
	int rc = hr_buf__tail(out, need, &o);
	if (rc != 0)
		return rc;
	unsigned char *start = o;
	*o++ = '"';
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = (unsigned char)tab[v >> 18];
		*o++ = (unsigned char)tab[(v >> 12) & 63];
		*o++ = (unsigned char)tab[(v >> 6) & 63];
		*o++ = (unsigned char)tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = (unsigned char)tab[v >> 18];
		*o++ = (unsigned char)tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? (unsigned char)tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o++ = '"';
	HR_ASSERT((size_t)(o - start) == need);
	hr_buf__advance(out, (size_t)(o - start));
	return 0;
}

static int
json_uint(hr_buf *out, uint64_t u, bool neg)
{
	char tmp[24];
	char *e = tmp + sizeof(tmp), *s = e;
	do {
		*--s = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (neg)
		*--s = '-';
	return hr_buf_append(out, s, (size_t)(e - s));
}

static int
json_int(hr_buf *out, int64_t i)
{
	/* Magnitude computed in unsigned so INT64_MIN needs no special case. */
	return i < 0 ? json_uint(out, 0 - (uint64_t)i, true) : json_uint(out, (uint64_t)i, false);
}

/*
 * Shortest of %.15g/%.16g/%.17g that reads back as the same double (17
 * significant digits always do), so every double round-trips. A ".0" is
 * added when the text would otherwise read as an integer, so a float stays
 * a float through JSON → msgpack (as Python's json.dumps(1.0) == "1.0").
 * Output does not depend on the locale: herald never calls setlocale().
 */
static int
json_double(hr_buf *out, double d)
{
	if (!isfinite(d))
		return hr_buf_append(out, "null", 4);
	/*
	 * Fast path for the common short decimals (scores, timestamps): the
	 * fewest fraction digits k <= 8 such that m = d * 10^k is an integer
	 * below 2^53 and m / 10^k gives d back. Both are exact doubles and the
	 * division is correctly rounded, so the printed decimal reads back as
	 * d, as strtod would. snprintf + strtod cost ~10x more.
	 */
	static const double pow10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8 };
	double a = fabs(d);
	if (a >= 1e-4 && a < 1e15) {
		for (int k = 0; k <= 8; k++) {
			double m = a * pow10[k];
			if (m >= 9007199254740992.0)
				break;
			if (m != trunc(m) || m / pow10[k] != a)
				continue;
			char tmp[40];
			char *e = tmp + sizeof(tmp), *s = e;
			uint64_t u = (uint64_t)m;
			for (int i = 0; i < k; i++) {
				*--s = (char)('0' + u % 10);
				u /= 10;
			}
			if (k == 0)
				*--s = '0'; /* "1.0", so it stays a float */
			*--s = '.';
			do {
				*--s = (char)('0' + u % 10);
				u /= 10;
			} while (u != 0);
			if (signbit(d))
				*--s = '-';
			return hr_buf_append(out, s, (size_t)(e - s));
		}
	}
	char tmp[40];
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp) - 2, "%.*g", prec, d);
		if (n < 0 || (size_t)n >= sizeof(tmp) - 2)
			return HR_EIO;
		if (prec == 17 || strtod(tmp, NULL) == d)
			break;
	}
	if (strpbrk(tmp, ".eE") == NULL) {
		memcpy(tmp + n, ".0", 2);
		n += 2;
	}
	return hr_buf_append(out, tmp, (size_t)n);
}

static int
json_object(const msgpack_object *o, hr_buf *out)
{
	int rc;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return hr_buf_append(out, "null", 4);
	case MSGPACK_OBJECT_BOOLEAN:
		return o->via.boolean ? hr_buf_append(out, "true", 4)
		                      : hr_buf_append(out, "false", 5);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return json_uint(out, o->via.u64, false);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_int(out, o->via.i64);
	case MSGPACK_OBJECT_FLOAT32: /* widened to double by msgpack-c */
	case MSGPACK_OBJECT_FLOAT64:
		return json_double(out, o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_str(out, (const unsigned char *)o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return json_base64(out, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		if ((rc = hr_buf_append(out, "{\"ext\":", 7)) != 0
		    || (rc = json_int(out, o->via.ext.type)) != 0
		    || (rc = hr_buf_append(out, ",\"data\":", 8)) != 0
		    || (rc = json_base64(
		            out, (const unsigned char *)o->via.ext.ptr, o->via.ext.size))
		        != 0)
			return rc;
		return hr_buf_putc(out, '}');
	case MSGPACK_OBJECT_ARRAY:
		if ((rc = hr_buf_putc(out, '[')) != 0)
			return rc;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i != 0 && (rc = hr_buf_putc(out, ',')) != 0)
				return rc;
			if ((rc = json_object(&o->via.array.ptr[i], out)) != 0)
				return rc;
		}
		return hr_buf_putc(out, ']');
	case MSGPACK_OBJECT_MAP:
		if ((rc = hr_buf_putc(out, '{')) != 0)
			return rc;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			HR_ASSERT(kv->key.type == MSGPACK_OBJECT_STR); /* walked with str_keys */
			if ((i != 0 && (rc = hr_buf_putc(out, ',')) != 0)
			    || (rc = json_str(out, (const unsigned char *)kv->key.via.str.ptr,
			            kv->key.via.str.size))
			        != 0
			    || (rc = hr_buf_putc(out, ':')) != 0
			    || (rc = json_object(&kv->val, out)) != 0)
				return rc;
		}
		return hr_buf_putc(out, '}');
	}
	return HR_EBADMSG;
}

/* The walk checks everything, in input order, as the JSON needs it (UTF-8,
 * str keys, depth, one whole object); msgpack-c then builds the tree in a
 * zone of the size the walk counted, and the tree is printed. */
int
hr_codec_msgpack_to_json(const void *mp, size_t len, hr_buf *out)
{
	w_context c;
	size_t off = 0;
	walk_reset(&c.user, 0, true, true);
	int rc = walk_one(&c, mp, len, &off);
	if (rc == 0 && off != len)
		rc = HR_EBADMSG; /* trailing bytes */
	if (rc != 0)
		return rc;
	msgpack_zone zone;
	if (!msgpack_zone_init(&zone, c.user.zone))
		return HR_ENOMEM;
	msgpack_object o;
	size_t mark = hr_buf_len(out);
	off = 0;
	switch (msgpack_unpack(mp, len, &off, &zone, &o)) {
	case MSGPACK_UNPACK_SUCCESS:
		rc = json_object(&o, out);
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rc = HR_ENOMEM;
		break;
	default: /* the walk accepted it: cannot happen */
		HR_ASSERT(0);
		rc = HR_EBADMSG;
		break;
	}
	msgpack_zone_destroy(&zone);
	if (rc != 0)
		hr_buf__truncate(out, mark);
	return rc;
}
