/*
 * msg.c: refcounted messages (hr_msg), the growable buffer that builds them
 * (hr_buf) and the WebSocket text frame built in a message's headroom.
 *
 * An hr_msg is one allocation: a small header, then `off` bytes of headroom,
 * then the data. hr_buf grows that same allocation with realloc, so
 * hr_buf_finish hands the bytes over without a copy. References may be taken
 * and dropped from any thread (C11 atomics); everything else belongs to the
 * one thread that owns the message or buffer until it is published.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

struct hr_msg {
	atomic_uint refs;
	size_t off;          /* headroom: bytes of buf in front of the data */
	size_t len;          /* bytes of data */
	unsigned char buf[]; /* off bytes of headroom, then the data */
};

/* Bytes to allocate for a message with this much headroom and capacity, or 0
 * when that overflows size_t. */
static size_t
msg_size(size_t headroom, size_t cap)
{
	size_t max = SIZE_MAX - sizeof(hr_msg);
	if (headroom > max || cap > max - headroom)
		return 0;
	return sizeof(hr_msg) + headroom + cap;
}

int
hr_msg_alloc(size_t headroom, size_t len, hr_msg **out)
{
	size_t sz = msg_size(headroom, len);
	hr_msg *m = sz != 0 ? malloc(sz) : NULL;
	if (m == NULL)
		return HR_ENOMEM;
	atomic_init(&m->refs, 1);
	m->off = headroom;
	m->len = len;
	*out = m;
	return 0;
}

int
hr_msg_copy(const void *data, size_t len, hr_msg **out)
{
	hr_msg *m;
	int rc = hr_msg_alloc(0, len, &m);
	if (rc != 0)
		return rc;
	if (len != 0)
		memcpy(m->buf, data, len);
	*out = m;
	return 0;
}

unsigned char *
hr_msg_data(const hr_msg *m)
{
	return (unsigned char *)m->buf + m->off;
}

size_t
hr_msg_len(const hr_msg *m)
{
	return m->len;
}

size_t
hr_msg_headroom(const hr_msg *m)
{
	return m->off;
}

unsigned char *
hr_msg_push_front(hr_msg *m, size_t n)
{
	HR_ASSERT(n <= m->off);
	m->off -= n;
	m->len += n;
	return m->buf + m->off;
}

hr_msg *
hr_msg_ref(hr_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
hr_msg_unref(hr_msg *m)
{
	if (m == NULL)
		return;
	/* Release so our writes happen before the free; the thread that drops
	 * the last reference needs acquire to see everyone else's. */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

unsigned
hr_msg__refs(const hr_msg *m)
{
	return atomic_load_explicit(&((hr_msg *)m)->refs, memory_order_relaxed);
}

/* ---------------------------------------------------------------- hr_buf */

/*
 * Until the buffer first allocates (_m == NULL), _cap holds the headroom
 * asked for at init, so that init cannot fail and the public struct needs no
 * third field. Once _m exists its `off` is the headroom and _cap the
 * capacity after it.
 */

static size_t
buf_headroom(const hr_buf *b)
{
	return b->_m != NULL ? b->_m->off : b->_cap;
}

void
hr_buf_init(hr_buf *b, size_t headroom)
{
	b->_m = NULL;
	b->_cap = headroom;
}

int
hr_buf_reserve(hr_buf *b, size_t extra)
{
	size_t len = hr_buf_len(b);
	if (b->_m != NULL && b->_cap - len >= extra)
		return 0;
	if (extra > SIZE_MAX - len)
		return HR_ENOMEM;
	size_t need = len + extra;
	size_t cap = b->_m != NULL ? b->_cap : 0;
	/* Double, so that appending n bytes one by one costs O(n). */
	cap = cap < 64 ? 64 : cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	size_t headroom = buf_headroom(b);
	size_t sz = msg_size(headroom, cap);
	if (sz == 0)
		return HR_ENOMEM;
	hr_msg *m = realloc(b->_m, sz);
	if (m == NULL)
		return HR_ENOMEM;
	if (b->_m == NULL) {
		atomic_init(&m->refs, 1);
		m->off = headroom;
		m->len = 0;
	}
	b->_m = m;
	b->_cap = cap;
	return 0;
}

int
hr_buf__tail(hr_buf *b, size_t n, unsigned char **tail)
{
	int rc = hr_buf_reserve(b, n);
	if (rc != 0)
		return rc;
	*tail = hr_msg_data(b->_m) + b->_m->len;
	return 0;
}

void
hr_buf__advance(hr_buf *b, size_t n)
{
	HR_ASSERT(b->_m != NULL || n == 0);
	if (n == 0)
		return;
	HR_ASSERT(b->_cap - b->_m->len >= n);
	b->_m->len += n;
}

void
hr_buf__truncate(hr_buf *b, size_t len)
{
	HR_ASSERT(len <= hr_buf_len(b));
	if (b->_m != NULL)
		b->_m->len = len;
}

int
hr_buf_append(hr_buf *b, const void *p, size_t n)
{
	unsigned char *t;
	if (n == 0)
		return 0;
	int rc = hr_buf__tail(b, n, &t);
	if (rc != 0)
		return rc;
	memcpy(t, p, n);
	b->_m->len += n;
	return 0;
}

int
hr_buf_putc(hr_buf *b, char c)
{
	if (b->_m != NULL && b->_m->len < b->_cap) {
		hr_msg_data(b->_m)[b->_m->len++] = (unsigned char)c;
		return 0;
	}
	return hr_buf_append(b, &c, 1);
}

const unsigned char *
hr_buf_data(const hr_buf *b)
{
	static const unsigned char empty[1];
	return b->_m != NULL ? hr_msg_data(b->_m) : empty;
}

size_t
hr_buf_len(const hr_buf *b)
{
	return b->_m != NULL ? b->_m->len : 0;
}

void
hr_buf_reset(hr_buf *b)
{
	if (b->_m != NULL)
		b->_m->len = 0;
}

int
hr_buf_finish(hr_buf *b, hr_msg **out)
{
	size_t headroom = buf_headroom(b);
	hr_msg *m = b->_m;
	if (m == NULL) {
		int rc = hr_msg_alloc(headroom, 0, &m);
		if (rc != 0)
			return rc;
	} else if (b->_cap - m->len > 4096 && b->_cap - m->len > m->len / 2) {
		/* Queued messages may live a while: give a big slack back. A
		 * failed shrink just keeps the larger block. */
		hr_msg *s = realloc(m, msg_size(headroom, m->len));
		if (s != NULL)
			m = s;
	}
	b->_m = NULL;
	b->_cap = headroom;
	*out = m;
	return 0;
}

void
hr_buf_fini(hr_buf *b)
{
	size_t headroom = buf_headroom(b);
	hr_msg_unref(b->_m);
	b->_m = NULL;
	b->_cap = headroom;
}

/* ---------------------------------------------------------------- frames */

int
hr_ws_frame_text(hr_buf *b, hr_msg **out)
{
	if (buf_headroom(b) < HR_FRAME_HEADROOM)
		return HR_EINVAL;
	size_t len = hr_buf_len(b);
	unsigned char hdr[10];
	size_t hlen;
	hdr[0] = 0x80 | 0x1; /* FIN, opcode 1 (text) */
	if (len < 126) {
		hdr[1] = (unsigned char)len; /* mask bit clear: server to client */
		hlen = 2;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		hlen = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hlen = 10;
	}
	hr_msg *m;
	int rc = hr_buf_finish(b, &m);
	if (rc != 0)
		return rc;
	memcpy(hr_msg_push_front(m, hlen), hdr, hlen);
	HR_ASSERT(hr_msg_headroom(m) >= 16);
	*out = m;
	return 0;
}
