/*
 * buf_int.h: private helpers shared by msg.c and the codec files. Not part
 * of the public API; nothing outside layer/ (tests aside) includes it.
 * Same threading rules as hr_buf: one owner at a time.
 */
#ifndef HERALD_LAYER_BUF_INT_H
#define HERALD_LAYER_BUF_INT_H

#include "layer/layer.h"

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

#endif /* HERALD_LAYER_BUF_INT_H */
