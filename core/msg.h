/*
 * msg.h: refcounted immutable messages (hr_msg), the growable buffer that
 * builds them (hr_buf) and the WebSocket text frame built in a message's
 * headroom (core.h).
 *
 * Threads: hr_msg references may be taken and dropped from any thread; a
 * message or buffer otherwise belongs to one thread until it is published.
 */
#ifndef HERALD_CORE_MSG_H
#define HERALD_CORE_MSG_H

#include <stddef.h>

#include "core/errors.h"

/*
 * hr_msg: a refcounted byte buffer. Writable only by its creator until it is
 * published (handed to another thread or stored); immutable afterwards, and
 * shared by reference, never copied per recipient. It may keep headroom in
 * front of its data (for a WebSocket header, LWS_PRE, ...).
 */
typedef struct hr_msg hr_msg;

/* Allocate a message of len bytes (uninitialised) with `headroom` free bytes in
 * front. One reference, owned by the caller. HR_ENOMEM. */
int hr_msg_alloc(size_t headroom, size_t len, hr_msg **out);
/* Allocate and copy len bytes from data, no headroom. */
int hr_msg_copy(const void *data, size_t len, hr_msg **out);
unsigned char *hr_msg_data(const hr_msg *m);
size_t hr_msg_len(const hr_msg *m);
size_t hr_msg_headroom(const hr_msg *m);
/* Before publish: move the start of data back by n bytes into the headroom
 * (n <= headroom) and return the new start. */
unsigned char *hr_msg_push_front(hr_msg *m, size_t n);
/* Take a reference (thread-safe). Returns m. */
hr_msg *hr_msg_ref(hr_msg *m);
/* Drop a reference; frees at zero. NULL is ignored. Thread-safe. */
void hr_msg_unref(hr_msg *m);

/*
 * hr_buf: a growable byte buffer that turns into an hr_msg without copying.
 * Embedded in callers' structs (init/fini). An append that fails leaves the
 * buffer as it was and returns HR_ENOMEM.
 */
typedef struct hr_buf {
	hr_msg *_m;  /* storage, grown with realloc */
	size_t _cap; /* bytes available after headroom */
} hr_buf;

void hr_buf_init(hr_buf *b, size_t headroom);
int hr_buf_reserve(hr_buf *b, size_t extra);
int hr_buf_append(hr_buf *b, const void *p, size_t n);
int hr_buf_putc(hr_buf *b, char c);
const unsigned char *hr_buf_data(const hr_buf *b);
size_t hr_buf_len(const hr_buf *b);
void hr_buf_reset(hr_buf *b); /* length back to 0, keeps storage */
/* Hand the contents over as a message (one reference, caller's); the buffer is
 * left empty and reusable. HR_ENOMEM when the buffer holds nothing allocated
 * and allocation fails. */
int hr_buf_finish(hr_buf *b, hr_msg **out);
void hr_buf_fini(hr_buf *b);

/*
 * Build a complete server→client WebSocket text frame (FIN, opcode 1, no mask)
 * from the JSON payload in b, which must have been initialised with
 * headroom >= HR_FRAME_HEADROOM. The frame is immutable once returned and can
 * be written to any number of sockets as raw bytes. hr_msg_headroom() of the
 * result is still >= LWS_PRE (16).
 */
#define HR_FRAME_HEADROOM 32
int hr_ws_frame_text(hr_buf *b, hr_msg **out);

#endif /* HERALD_CORE_MSG_H */
