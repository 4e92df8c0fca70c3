/*
 * buf_int.h: private to the `core` module: the layout of an hr_msg, shared
 * by msg.c, buf.c and frame.c, and the helpers the codec files use to write
 * into an hr_buf in place. Not part of the public API; nothing outside core/
 * (tests aside) includes it. Same threading rules as hr_buf: one owner at a
 * time.
 */
#ifndef HERALD_CORE_BUF_INT_H
#define HERALD_CORE_BUF_INT_H

#include <stdatomic.h>

#include "core/core.h"

/* An hr_msg is one allocation: a small header, then `off` bytes of headroom,
 * then the data. hr_buf grows that same allocation with realloc. */
struct hr_msg {
	atomic_uint refs;
	size_t off;          /* headroom: bytes of buf in front of the data */
	size_t len;          /* bytes of data */
	unsigned char buf[]; /* off bytes of headroom, then the data */
};

/* hr_msg_data() for this module's own files, where it must stay inlined
 * (hr_buf_putc is on the JSON encoder's hot path). */
static inline unsigned char *
hr_msg__data(const hr_msg *m)
{
	return (unsigned char *)m->buf + m->off;
}

/* Bytes to allocate for a message with this much headroom and capacity, or 0
 * when that overflows size_t. */
size_t hr_msg__size(size_t headroom, size_t cap);

/* The headroom b's message has (or will have once it allocates). */
size_t hr_buf__headroom(const hr_buf *b);

/* Make room for n more bytes and return where they go (*tail). The bytes
 * count only once hr_buf__advance(b, n) is called. HR_ENOMEM, buffer
 * unchanged. */
int hr_buf__tail(hr_buf *b, size_t n, unsigned char **tail);
/* Commit n bytes written at the tail returned by hr_buf__tail (n <= the
 * reservation). */
void hr_buf__advance(hr_buf *b, size_t n);
/* Cut the buffer back to len bytes (len <= hr_buf_len(b)); used to undo a
 * partial append when an encoder fails half way. */
void hr_buf__truncate(hr_buf *b, size_t len);

/* msgpack-c's write callback (msgpack_packer_write) appending to the hr_buf
 * at data: msgpack_packer_init(&pk, buf, hr_buf__mp_write). Returns 0 or
 * HR_ENOMEM, which the msgpack_pack_* call returns in turn. */
int hr_buf__mp_write(void *data, const char *p, size_t n);

/* Current reference count, for tests only (racy by nature). */
unsigned hr_msg__refs(const hr_msg *m);

#endif /* HERALD_CORE_BUF_INT_H */
