/*
 * codec.c: reading msgpack. A bounded, non-allocating reader, and on top of
 * it validation, map lookups (map_get, get_type, map_remove) and the
 * msgpack → JSON encoder that runs once per broadcast. Pure code, any thread.
 *
 * The reader never trusts a length: every header is checked against the
 * bytes left before anything is read, so truncated or lying input is
 * HR_EBADMSG and never an over-read. Nesting is bounded by HR_CODEC_MAX_DEPTH
 * (the top container is depth 1), which also bounds the recursion here.
 * Nothing allocates except the output buffer, which grows in a few large
 * steps per document rather than per element.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

/* ---------------------------------------------------------------- reader */

enum mp_kind {
	MP_NIL,
	MP_BOOL,
	MP_UINT,
	MP_INT,
	MP_FLOAT,
	MP_STR,
	MP_BIN,
	MP_EXT,
	MP_ARRAY,
	MP_MAP
};

typedef struct mp_tok {
	enum mp_kind kind;
	bool b;                 /* MP_BOOL */
	uint64_t u;             /* MP_UINT */
	int64_t i;              /* MP_INT */
	double d;               /* MP_FLOAT (float32 widened) */
	const unsigned char *p; /* MP_STR, MP_BIN, MP_EXT: payload (borrowed) */
	uint32_t n;             /* payload bytes, or elements (array), pairs (map) */
	int8_t ext;             /* MP_EXT: type */
} mp_tok;

typedef struct mp_rd {
	const unsigned char *p, *end;
} mp_rd;

static uint64_t
be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Consume n bytes (a header field or a payload); NULL if fewer are left. */
static const unsigned char *
take(mp_rd *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return NULL;
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

/* Consume a w-byte big-endian field into *v. */
static int
take_be(mp_rd *r, size_t w, uint64_t *v)
{
	const unsigned char *q = take(r, w);
	if (q == NULL)
		return HR_EBADMSG;
	*v = be(q, w);
	return 0;
}

/* Read one header, and for str/bin/ext the payload behind it. Containers
 * only have their count read; their elements follow. */
static int
rd_next(mp_rd *r, mp_tok *t)
{
	const unsigned char *q = take(r, 1);
	if (q == NULL)
		return HR_EBADMSG;
	unsigned c = *q;
	uint64_t v; /* a length or value field */
	memset(t, 0, sizeof(*t));
	if (c <= 0x7f) {
		t->kind = MP_UINT;
		t->u = c;
		return 0;
	}
	if (c >= 0xe0) {
		t->kind = MP_INT;
		t->i = (int64_t)c - 256;
		return 0;
	}
	if (c >= 0xa0 && c <= 0xbf) {
		t->kind = MP_STR;
		t->n = c & 0x1f;
		goto payload;
	}
	if (c >= 0x80 && c <= 0x8f) {
		t->kind = MP_MAP;
		t->n = c & 0x0f;
		goto count;
	}
	if (c >= 0x90 && c <= 0x9f) {
		t->kind = MP_ARRAY;
		t->n = c & 0x0f;
		goto count;
	}
	/* bin8..32, ext8..32, str8..32: a 1, 2 or 4-byte length, then (ext) a type. */
	static const struct {
		unsigned first;
		enum mp_kind kind;
	} sized[] = { { 0xc4, MP_BIN }, { 0xc7, MP_EXT }, { 0xd9, MP_STR } };
	for (size_t i = 0; i < sizeof(sized) / sizeof(sized[0]); i++) {
		if (c < sized[i].first || c > sized[i].first + 2)
			continue;
		t->kind = sized[i].kind;
		if (take_be(r, (size_t)1 << (c - sized[i].first), &v) != 0)
			return HR_EBADMSG;
		t->n = (uint32_t)v;
		if (t->kind == MP_EXT)
			goto ext_type;
		goto payload;
	}
	switch (c) {
	case 0xc0:
		t->kind = MP_NIL;
		return 0;
	case 0xc2:
	case 0xc3:
		t->kind = MP_BOOL;
		t->b = c == 0xc3;
		return 0;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		if (take_be(r, (size_t)1 << (c - 0xcc), &t->u) != 0)
			return HR_EBADMSG;
		t->kind = MP_UINT;
		return 0;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		size_t w = (size_t)1 << (c - 0xd0);
		if (take_be(r, w, &v) != 0)
			return HR_EBADMSG;
		/* Sign-extend from w bytes without relying on signed overflow. */
		uint64_t sign = (uint64_t)1 << (8 * w - 1);
		t->kind = MP_INT;
		t->i = (v & sign) ? -(int64_t)(~v & (sign - 1)) - 1 : (int64_t)v;
		return 0;
	}
	case 0xca: {
		if (take_be(r, 4, &v) != 0)
			return HR_EBADMSG;
		uint32_t u = (uint32_t)v;
		float f;
		memcpy(&f, &u, sizeof(f));
		t->kind = MP_FLOAT;
		t->d = f;
		return 0;
	}
	case 0xcb:
		if (take_be(r, 8, &v) != 0)
			return HR_EBADMSG;
		t->kind = MP_FLOAT;
		memcpy(&t->d, &v, sizeof(t->d));
		return 0;
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		t->kind = MP_EXT;
		t->n = 1u << (c - 0xd4);
		goto ext_type;
	case 0xdc: /* array16, array32, map16, map32 */
	case 0xdd:
	case 0xde:
	case 0xdf:
		t->kind = c <= 0xdd ? MP_ARRAY : MP_MAP;
		if (take_be(r, (c & 1) ? 4 : 2, &v) != 0)
			return HR_EBADMSG;
		t->n = (uint32_t)v;
		goto count;
	default: /* 0xc1 is never used */
		return HR_EBADMSG;
	}
ext_type: /* a signed byte */
	if ((q = take(r, 1)) == NULL)
		return HR_EBADMSG;
	t->ext = (int8_t)(*q >= 128 ? (int)*q - 256 : (int)*q);
payload:
	if ((t->p = take(r, t->n)) == NULL)
		return HR_EBADMSG;
	return 0;
count:
	/* Every element takes at least one byte: a count the input cannot hold
	 * is a lie, caught here before any loop runs over it. */
	if ((uint64_t)t->n * (t->kind == MP_MAP ? 2 : 1) > (uint64_t)(r->end - r->p))
		return HR_EBADMSG;
	return 0;
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

/* Walk one whole object. With check_utf8 every str is validated as well
 * (validation); without, it is a structural skip (lookups). */
static int
rd_skip(mp_rd *r, int depth, bool check_utf8)
{
	mp_tok t;
	int rc = rd_next(r, &t);
	if (rc != 0)
		return rc;
	switch (t.kind) {
	case MP_STR:
		return check_utf8 ? utf8_check(t.p, t.n) : 0;
	case MP_ARRAY:
	case MP_MAP: {
		if (depth >= HR_CODEC_MAX_DEPTH)
			return HR_EDEPTH;
		uint64_t n = (uint64_t)t.n * (t.kind == MP_MAP ? 2 : 1);
		for (uint64_t i = 0; i < n; i++)
			if ((rc = rd_skip(r, depth + 1, check_utf8)) != 0)
				return rc;
		return 0;
	}
	default:
		return 0;
	}
}

/* Besides the structure, every str must be valid UTF-8 (HR_EUTF8): the
 * Python side reads msgpack with raw=False and would fail on it, and the
 * JSON encoder refuses it later anyway. Keys of any type are fine here; only
 * JSON needs str keys. */
int
hr_codec_validate(const void *mp, size_t len)
{
	mp_rd r = { mp, (const unsigned char *)mp + len };
	int rc = rd_skip(&r, 0, true);
	if (rc == 0 && r.p != r.end)
		rc = HR_EBADMSG; /* more than one object */
	return rc;
}

/* ---------------------------------------------------------------- maps */

static bool
key_is(const mp_tok *t, const char *key, size_t klen)
{
	return t->kind == MP_STR && t->n == klen && memcmp(t->p, key, klen) == 0;
}

/* Reads only up to the value found: bytes after it, even malformed ones, are
 * not looked at (validation is hr_codec_validate's job). */
int
hr_codec_map_get(
    const void *mp, size_t len, const char *key, const unsigned char **val, size_t *vlen)
{
	mp_rd r = { mp, (const unsigned char *)mp + len };
	mp_tok t, k;
	size_t klen = strlen(key);
	int rc = rd_next(&r, &t);
	if (rc != 0)
		return rc;
	if (t.kind != MP_MAP)
		return HR_ETYPE;
	for (uint32_t i = 0; i < t.n; i++) {
		/* Peek at the key, then step over it whole (a non-str key may
		 * itself be a container). */
		mp_rd kr = r;
		if ((rc = rd_next(&kr, &k)) != 0 || (rc = rd_skip(&r, 1, false)) != 0)
			return rc;
		const unsigned char *v = r.p;
		if ((rc = rd_skip(&r, 1, false)) != 0)
			return rc;
		if (key_is(&k, key, klen)) {
			*val = v;
			*vlen = (size_t)(r.p - v);
			return 0;
		}
	}
	return HR_ENOENT;
}

int
hr_codec_get_type(const void *mp, size_t len, const char **type, size_t *tlen)
{
	const unsigned char *v;
	size_t vlen;
	int rc = hr_codec_map_get(mp, len, "type", &v, &vlen);
	if (rc != 0)
		return rc;
	mp_rd r = { v, v + vlen };
	mp_tok t;
	if ((rc = rd_next(&r, &t)) != 0)
		return rc;
	if (t.kind != MP_STR)
		return HR_ETYPE;
	if ((rc = utf8_check(t.p, t.n)) != 0)
		return rc;
	*type = (const char *)t.p;
	*tlen = t.n;
	return 0;
}

int
hr_codec_map_remove(const void *mp, size_t len, const char *key, hr_buf *out)
{
	mp_rd r = { mp, (const unsigned char *)mp + len };
	mp_tok t;
	size_t klen = strlen(key);
	int rc = rd_next(&r, &t);
	if (rc != 0)
		return rc;
	if (t.kind != MP_MAP)
		return HR_ETYPE;
	/* Unlike map_get this walks the whole map, which must fill [mp, mp+len)
	 * exactly. First pass: check the whole map and count the pairs that stay. */
	const unsigned char *body = r.p;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < t.n; i++) {
		mp_rd kr = r;
		mp_tok k;
		if ((rc = rd_next(&kr, &k)) != 0)
			return rc;
		if ((rc = rd_skip(&r, 1, false)) != 0 || (rc = rd_skip(&r, 1, false)) != 0)
			return rc;
		keep += !key_is(&k, key, klen);
	}
	if (r.p != r.end)
		return HR_EBADMSG;
	/* Second pass: copy the pairs that stay, as runs of contiguous bytes. */
	size_t mark = hr_buf_len(out);
	if ((rc = hr_mp_map(out, keep)) != 0)
		return rc;
	r.p = body;
	const unsigned char *run = body;
	for (uint32_t i = 0; i < t.n; i++) {
		const unsigned char *pair = r.p;
		mp_rd kr = r;
		mp_tok k;
		/* The first pass checked all of it: these cannot fail. */
		rc = rd_next(&kr, &k);
		HR_ASSERT(rc == 0);
		rc = rd_skip(&r, 1, false);
		HR_ASSERT(rc == 0);
		rc = rd_skip(&r, 1, false);
		HR_ASSERT(rc == 0);
		if (key_is(&k, key, klen)) {
			if ((rc = hr_buf_append(out, run, (size_t)(pair - run))) != 0)
				goto fail;
			run = r.p;
		}
	}
	if ((rc = hr_buf_append(out, run, (size_t)(r.end - run))) != 0)
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

static int
json_str(hr_buf *out, const unsigned char *p, size_t n)
{
	int rc = utf8_check(p, n);
	if (rc != 0)
		return rc;
	size_t need = json_str_len(p, n);
	unsigned char *o;
	if ((rc = hr_buf__tail(out, need, &o)) != 0)
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

/* A map key and its ':'; JSON keys must be strings. */
static int
json_key(mp_rd *r, hr_buf *out)
{
	mp_tok k;
	int rc = rd_next(r, &k);
	if (rc != 0)
		return rc;
	if (k.kind != MP_STR)
		return HR_ETYPE;
	if ((rc = json_str(out, k.p, k.n)) != 0)
		return rc;
	return hr_buf_putc(out, ':');
}

static int
json_value(mp_rd *r, hr_buf *out, int depth)
{
	mp_tok t;
	int rc = rd_next(r, &t);
	if (rc != 0)
		return rc;
	switch (t.kind) {
	case MP_NIL:
		return hr_buf_append(out, "null", 4);
	case MP_BOOL:
		return t.b ? hr_buf_append(out, "true", 4) : hr_buf_append(out, "false", 5);
	case MP_UINT:
		return json_uint(out, t.u, false);
	case MP_INT:
		return json_int(out, t.i);
	case MP_FLOAT:
		return json_double(out, t.d);
	case MP_STR:
		return json_str(out, t.p, t.n);
	case MP_BIN:
		return json_base64(out, t.p, t.n);
	case MP_EXT:
		if ((rc = hr_buf_append(out, "{\"ext\":", 7)) != 0
		    || (rc = json_int(out, t.ext)) != 0
		    || (rc = hr_buf_append(out, ",\"data\":", 8)) != 0
		    || (rc = json_base64(out, t.p, t.n)) != 0)
			return rc;
		return hr_buf_putc(out, '}');
	case MP_ARRAY:
	case MP_MAP: {
		bool map = t.kind == MP_MAP;
		if (depth >= HR_CODEC_MAX_DEPTH)
			return HR_EDEPTH;
		if ((rc = hr_buf_putc(out, map ? '{' : '[')) != 0)
			return rc;
		for (uint32_t i = 0; i < t.n; i++) {
			if (i != 0 && (rc = hr_buf_putc(out, ',')) != 0)
				return rc;
			if (map && (rc = json_key(r, out)) != 0)
				return rc;
			if ((rc = json_value(r, out, depth + 1)) != 0)
				return rc;
		}
		return hr_buf_putc(out, map ? '}' : ']');
	}
	}
	return HR_EBADMSG;
}

int
hr_codec_msgpack_to_json(const void *mp, size_t len, hr_buf *out)
{
	mp_rd r = { mp, (const unsigned char *)mp + len };
	size_t mark = hr_buf_len(out);
	int rc = json_value(&r, out, 0);
	if (rc == 0 && r.p != r.end)
		rc = HR_EBADMSG; /* trailing bytes */
	if (rc != 0)
		hr_buf__truncate(out, mark);
	return rc;
}
