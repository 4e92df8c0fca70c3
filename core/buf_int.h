/*
 * buf_int.h: private helpers shared by msg.c and the codec files. Not part
 * of the public API; nothing outside core/ (tests aside) includes it.
 * Same threading rules as hr_buf: one owner at a time.
 */
#ifndef HERALD_CORE_BUF_INT_H
#define HERALD_CORE_BUF_INT_H

#include "core/core.h"

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

/* Current reference count, for tests only (racy by nature). */
unsigned hr_msg__refs(const hr_msg *m);

#endif /* HERALD_CORE_BUF_INT_H */
