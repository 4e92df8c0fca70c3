/*
 * buf.c: hr_buf (core/msg.h), the growable byte buffer that turns into an
 * hr_msg without copying: it grows the message's own allocation with
 * realloc, and hr_buf_finish hands it over. One owner at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf_int.h"

/*
 * Until the buffer first allocates (_m == NULL), _cap holds the headroom
 * asked for at init, so that init cannot fail and the public struct needs no
 * third field. Once _m exists its `off` is the headroom and _cap the
 * capacity after it.
 */

size_t
hr_buf__headroom(const hr_buf *b)
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
	size_t headroom = hr_buf__headroom(b);
	size_t sz = hr_msg__size(headroom, cap);
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
	*tail = hr_msg__data(b->_m) + b->_m->len;
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
		hr_msg__data(b->_m)[b->_m->len++] = (unsigned char)c;
		return 0;
	}
	return hr_buf_append(b, &c, 1);
}

const unsigned char *
hr_buf_data(const hr_buf *b)
{
	static const unsigned char empty[1];
	return b->_m != NULL ? hr_msg__data(b->_m) : empty;
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
	size_t headroom = hr_buf__headroom(b);
	hr_msg *m = b->_m;
	if (m == NULL) {
		int rc = hr_msg_alloc(headroom, 0, &m);
		if (rc != 0)
			return rc;
	} else if (b->_cap - m->len > 4096 && b->_cap - m->len > m->len / 2) {
		/* Queued messages may live a while: give a big slack back. A
		 * failed shrink just keeps the larger block. */
		hr_msg *s = realloc(m, hr_msg__size(headroom, m->len));
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
	size_t headroom = hr_buf__headroom(b);
	hr_msg_unref(b->_m);
	b->_m = NULL;
	b->_cap = headroom;
}
