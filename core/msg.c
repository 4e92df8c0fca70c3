/*
 * msg.c: refcounted messages (hr_msg, core/msg.h).
 *
 * An hr_msg is one allocation: a small header, then `off` bytes of headroom,
 * then the data (core/buf_int.h). hr_buf (buf.c) grows that same allocation
 * with realloc, so hr_buf_finish hands the bytes over without a copy.
 * References may be taken and dropped from any thread (C11 atomics);
 * everything else belongs to the one thread that owns the message until it
 * is published.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf_int.h"

size_t
hr_msg__size(size_t headroom, size_t cap)
{
	size_t max = SIZE_MAX - sizeof(hr_msg);
	if (headroom > max || cap > max - headroom)
		return 0;
	return sizeof(hr_msg) + headroom + cap;
}

int
hr_msg_alloc(size_t headroom, size_t len, hr_msg **out)
{
	size_t sz = hr_msg__size(headroom, len);
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
