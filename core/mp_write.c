/*
 * mp_write.c: the minimal msgpack writer (hr_mp_*), appending to an hr_buf.
 * Pure code, any thread (one writer per buffer).
 *
 * Written by hand rather than with msgpack-c's msgpack_packer: each value
 * (header and body together) goes out in a single append, so a failed append
 * leaves the buffer exactly as it was, and there is no callback per fragment.
 * Every function picks the smallest encoding, as msgpack-python does.
 */
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

static size_t
put_be(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	return n;
}

/* A type byte followed by an n-byte big-endian value. */
static int
put_tagged(hr_buf *out, unsigned char tag, uint64_t v, size_t n)
{
	unsigned char b[9];
	b[0] = tag;
	return hr_buf_append(out, b, 1 + put_be(b + 1, v, n));
}

/* A container header: fix form when n < fixmax, else 16- or 32-bit. */
static int
put_count(hr_buf *out, uint32_t n, unsigned char fix, uint32_t fixmax, unsigned char tag16)
{
	if (n < fixmax) {
		unsigned char c = (unsigned char)(fix | n);
		return hr_buf_append(out, &c, 1);
	}
	if (n <= 0xffff)
		return put_tagged(out, tag16, n, 2);
	return put_tagged(out, (unsigned char)(tag16 + 1), n, 4);
}

int
hr_mp_map(hr_buf *out, uint32_t n)
{
	return put_count(out, n, 0x80, 16, 0xde);
}

int
hr_mp_array(hr_buf *out, uint32_t n)
{
	return put_count(out, n, 0x90, 16, 0xdc);
}

int
hr_mp_str(hr_buf *out, const char *s, size_t n)
{
	unsigned char h[5];
	size_t hl;
	if (n < 32) {
		h[0] = (unsigned char)(0xa0 | n);
		hl = 1;
	} else if (n <= 0xff) {
		h[0] = 0xd9;
		hl = 1 + put_be(h + 1, n, 1);
	} else if (n <= 0xffff) {
		h[0] = 0xda;
		hl = 1 + put_be(h + 1, n, 2);
	} else if ((uint64_t)n <= 0xffffffffu) {
		h[0] = 0xdb;
		hl = 1 + put_be(h + 1, n, 4);
	} else {
		return HR_EMSGSIZE;
	}
	unsigned char *t;
	int rc = hr_buf__tail(out, hl + n, &t);
	if (rc != 0)
		return rc;
	memcpy(t, h, hl);
	if (n != 0)
		memcpy(t + hl, s, n);
	hr_buf__advance(out, hl + n);
	return 0;
}

int
hr_mp_cstr(hr_buf *out, const char *s)
{
	return hr_mp_str(out, s, strlen(s));
}

int
hr_mp_int(hr_buf *out, int64_t v)
{
	if (v >= 0) {
		uint64_t u = (uint64_t)v;
		if (u < 128) {
			unsigned char c = (unsigned char)u;
			return hr_buf_append(out, &c, 1);
		}
		if (u <= 0xff)
			return put_tagged(out, 0xcc, u, 1);
		if (u <= 0xffff)
			return put_tagged(out, 0xcd, u, 2);
		if (u <= 0xffffffffu)
			return put_tagged(out, 0xce, u, 4);
		return put_tagged(out, 0xcf, u, 8);
	}
	if (v >= -32) {
		unsigned char c = (unsigned char)(0xe0 | (v & 0x1f));
		return hr_buf_append(out, &c, 1);
	}
	if (v >= INT8_MIN)
		return put_tagged(out, 0xd0, (uint64_t)v, 1);
	if (v >= INT16_MIN)
		return put_tagged(out, 0xd1, (uint64_t)v, 2);
	if (v >= INT32_MIN)
		return put_tagged(out, 0xd2, (uint64_t)v, 4);
	return put_tagged(out, 0xd3, (uint64_t)v, 8);
}

int
hr_mp_double(hr_buf *out, double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof(u));
	return put_tagged(out, 0xcb, u, 8);
}

int
hr_mp_bool(hr_buf *out, bool v)
{
	unsigned char c = v ? 0xc3 : 0xc2;
	return hr_buf_append(out, &c, 1);
}

int
hr_mp_nil(hr_buf *out)
{
	unsigned char c = 0xc0;
	return hr_buf_append(out, &c, 1);
}

int
hr_mp_raw(hr_buf *out, const void *encoded, size_t n)
{
	return hr_buf_append(out, encoded, n);
}
