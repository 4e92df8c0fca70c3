/*
 * outq.c: the write path (README.md "Reading the code"). Consumers hand an I/O
 * thread one immutable, complete WebSocket frame per event and the ids of its
 * members; the thread pushes a reference on each member's bounded queue
 * (drop oldest on overflow) and writes the queue out:
 *
 * - At the end of a mailbox drain (hr_outq__flush_drained), every plain-text
 *   connection whose queue went from empty to non-empty during it gets one
 *   send with every frame the drain queued for it, straight from the shared
 *   frames (iovecs, no copy). The sends of all those connections leave in
 *   batches through sys_send.c: one io_uring_enter per batch of 512, or one
 *   sendmsg() each without io_uring. No writeable callback, no poll() round,
 *   no lws_write on this path. What a socket did not take is handed to lws
 *   (lws_write LWS_WRITE_RAW copies it into the wsi's buflist_out, which lws
 *   drains before anything else it writes on that socket, e.g. its own pong),
 *   so the byte stream stays whole and lws stays in charge of POLLOUT.
 * - Everything else (TLS connections, a connection lws still holds an
 *   unsent tail for, frames over HR_SCRATCH, what is left after a partial
 *   send) waits for SERVER_WRITEABLE, where what is queued is copied into the
 *   thread's 64 KiB scratch buffer and leaves in ONE lws_write. LWS_WRITE_RAW
 *   on an established ws connection (lws 4.1.6, ops-ws.c `send_raw`) writes
 *   no header, does no masking and writes nothing in front of the buffer, so
 *   shared frames are only ever read.
 *
 * Measured (herald-bench, 10,000 connections, 10 broadcasts/s, server on one
 * core, bench/README.md): the batched sends take server CPU per delivery from
 * ~8-10 us to ~5 us, below the one-write()-per-frame raw ceiling's.
 *
 * Threads: everything here runs on the connection's I/O thread.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "transport/transport_impl.h"

/* Frames per batched send: what one sendmsg takes well (IOV_MAX is 1024) */
#define SEND_FRAMES_MAX 256u

/* ---------------------------------------------------------------- the queue */

hr_msg *
hr_outq__peek(const hr_outq *q, uint32_t i)
{
	return q->ring[(q->head + i) % q->cap];
}

hr_msg *
hr_outq__pop(hr_outq *q)
{
	hr_msg *m = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	q->bytes -= hr_msg_len(m);
	if (q->len == 0 && q->cap > HR_OUTQ_KEEP) {
		/* A backlog drained: its ring goes back to the allocator, so
		 * that the memory of one stall serves the next (whichever
		 * connections it hits) instead of each stall adding its own. */
		free(q->ring);
		q->ring = NULL;
		q->cap = q->head = 0;
	}
	return m;
}

/* Move q's frames, oldest first, into a new ring of ncap (>= len) slots. */
static int
regrow(hr_outq *q, uint32_t ncap)
{
	hr_msg **nr = malloc(ncap * sizeof(*nr));
	if (nr == NULL)
		return HR_ENOMEM;
	for (uint32_t i = 0; i < q->len; i++)
		nr[i] = hr_outq__peek(q, i);
	free(q->ring);
	q->ring = nr;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int
hr_outq__push(hr_outq *q, hr_msg *frame, unsigned *dropped)
{
	size_t len = hr_msg_len(frame);

	*dropped = 0;
	while (q->len > 0 && (q->len >= HR_CONN_QMAX || q->bytes + len > HR_CONN_QBYTES)) {
		hr_msg_unref(hr_outq__pop(q));
		(*dropped)++;
	}
	if (q->len == q->cap) {
		uint32_t ncap = q->cap ? q->cap * 2 : 8;
		if (ncap > HR_CONN_QMAX)
			ncap = HR_CONN_QMAX;
		if (regrow(q, ncap) != 0) {
			hr_msg_unref(frame);
			return HR_ENOMEM;
		}
	}
	q->ring[(q->head + q->len) % q->cap] = frame;
	q->len++;
	q->bytes += len;
	return 0;
}

unsigned
hr_outq__span(const hr_outq *q, unsigned max_frames, size_t max_bytes)
{
	unsigned n = 0;
	size_t bytes = 0;
	while (n < q->len && n < max_frames) {
		size_t len = hr_msg_len(hr_outq__peek(q, n));
		if (bytes + len > max_bytes)
			break;
		bytes += len;
		n++;
	}
	return n;
}

void
hr_outq__iov(const hr_outq *q, struct iovec *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		hr_msg *m = hr_outq__peek(q, i);
		v[i].iov_base = (void *)hr_msg_data(m);
		v[i].iov_len = hr_msg_len(m);
	}
}

unsigned
hr_outq__release_sent(hr_outq *q, unsigned n, size_t sent, size_t *partial)
{
	unsigned k = 0;
	while (k < n && sent >= hr_msg_len(q->ring[q->head])) {
		hr_msg *m = hr_outq__pop(q);
		sent -= hr_msg_len(m);
		hr_msg_unref(m);
		k++;
	}
	*partial = k < n ? sent : 0;
	return k;
}

void
hr_outq__fini(hr_outq *q)
{
	while (q->len > 0)
		hr_msg_unref(hr_outq__pop(q));
	free(q->ring);
	memset(q, 0, sizeof(*q));
}

/* ---------------------------------------------------------------- the connection's writes */

void
hr_outq__want_write(hr_conn *c)
{
	lws_callback_on_writable(c->wsi);
}

/* Close c from outside its callbacks (never free an object inside its own). */
static void
kill_conn(hr_conn *c)
{
	c->ws.failed = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void
hr_outq__clear(hr_conn *c)
{
	hr_outq__fini(&c->ws.out);
}

/* During a mailbox drain: remember c for the write at the end of the drain.
 * false: no room (then it waits for a writeable callback instead). */
static bool
flush_add(hr_iothread *t, hr_conn *c)
{
	if (c->ws.flush_listed)
		return true;
	if (t->nflush == t->flushcap) {
		uint32_t ncap = t->flushcap ? t->flushcap * 2 : 256;
		uint64_t *nf = realloc(t->flush, ncap * sizeof(*nf));
		if (nf == NULL)
			return false;
		t->flush = nf;
		t->flushcap = ncap;
	}
	t->flush[t->nflush++] = c->id;
	c->ws.flush_listed = true;
	return true;
}

/* A recover connection is never dropped from (docs/PROTOCOL.md): where the
 * push would drop its oldest frames, it is closed with 1013 after what is
 * queued, and its client resumes from history. */
static bool
recover_overflow(hr_conn *c, hr_msg *frame)
{
	const hr_outq *q = &c->ws.out;
	if (!c->ws.recover
	    || !(q->len > 0
	        && (q->len >= HR_CONN_QMAX || q->bytes + hr_msg_len(frame) > HR_CONN_QBYTES)))
		return false;
	hr_msg_unref(frame);
	HR_METRIC_ADD(dropped[HR_DROP_SLOW_CONSUMER], 1);
	hr_outq__close_slow(c);
	return true;
}

void
hr_outq__close(hr_conn *c, int code, const char *reason)
{
	if (c->ws.close_code != 0)
		return;
	c->ws.close_code = code;
	c->ws.close_reason = reason;
	hr_conn__unlist(c->t, c);
	/* a client that does not read cannot hold the close up for ever */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, HR_CLOSE_FLUSH_S);
	hr_outq__want_write(c);
}

void
hr_outq__close_slow(hr_conn *c)
{
	hr_outq__close(c, 1013, "slow consumer"); /* 1013: try again later */
}

void
hr_outq__queue_replay(hr_conn *c, hr_msg *const *frames, uint32_t n)
{
	hr_outq *q = &c->ws.out;
	uint32_t i = 0;

	if (q->len + n > q->cap) {
		uint32_t ncap = q->cap ? q->cap : 8;
		while (ncap < q->len + n)
			ncap *= 2;
		if (regrow(q, ncap) != 0)
			goto fail;
	}
	bool was_empty = q->len == 0;
	for (; i < n; i++) {
		q->ring[(q->head + q->len) % q->cap] = frames[i];
		q->len++;
		q->bytes += hr_msg_len(frames[i]);
	}
	if (was_empty && n > 0 && !(c->t->draining && flush_add(c->t, c)))
		hr_outq__want_write(c);
	return;
fail:
	/* Out of memory: the client must not believe it has everything. */
	for (; i < n; i++)
		hr_msg_unref(frames[i]);
	hr_outq__close_slow(c);
}

void
hr_outq__queue(hr_conn *c, hr_msg *frame)
{
	unsigned dropped;
	if (recover_overflow(c, frame))
		return;
	int rv = hr_outq__push(&c->ws.out, frame, &dropped);

	if (dropped > 0)
		HR_METRIC_ADD(dropped[HR_DROP_SLOW_CONSUMER], dropped);
	if (rv != 0) {
		HR_METRIC_ADD(dropped[HR_DROP_SLOW_CONSUMER], 1);
		return;
	}
	if (c->ws.out.len == 1 && !(c->t->draining && flush_add(c->t, c)))
		hr_outq__want_write(c);
}

int
hr_outq__write(hr_iothread *t, hr_conn *c)
{
	size_t used = 0;
	unsigned n = 0;
	int w;

	hr_msg *head = hr_outq__peek(&c->ws.out, 0);
	if (c->ws.out.len == 1 || hr_msg_len(head) > HR_SCRATCH / 2) {
		/* read-only use of the shared frame: LWS_WRITE_RAW writes nothing
		 * in front of p */
		hr_msg *m = hr_outq__pop(&c->ws.out);
		used = hr_msg_len(m);
		w = lws_write(c->wsi, hr_msg_data(m), used, LWS_WRITE_RAW);
		hr_msg_unref(m);
		n = 1;
	} else {
		n = hr_outq__span(&c->ws.out, UINT_MAX, HR_SCRATCH);
		for (unsigned i = 0; i < n; i++) {
			hr_msg *m = hr_outq__pop(&c->ws.out);
			memcpy(t->scratch + used, hr_msg_data(m), hr_msg_len(m));
			used += hr_msg_len(m);
			hr_msg_unref(m);
		}
		w = lws_write(c->wsi, t->scratch, used, LWS_WRITE_RAW);
	}
	if (w < (int)used)
		return -1;
	HR_METRIC_ADD(frames_sent, n);
	HR_METRIC_ADD(ws_writes, 1);
	hr_access__frames_out(c, n);
	if (c->ws.out.len > 0 || c->ws.close_code)
		hr_outq__want_write(c);
	return 0;
}

/* ---------------------------------------------------------------- batched sends */

/*
 * A batched send to c ended: res bytes of its first c->ws.sending frames left
 * (or -errno). Whole frames sent are released; the unsent rest of a frame cut
 * short, and the frames after it in that send, are copied to lws in one
 * lws_write (they fit the scratch buffer: add_send bounds a send by it).
 */
static void
sent(void *cookie, ssize_t res, void *arg)
{
	hr_iothread *t = arg;
	hr_conn *c = cookie;
	unsigned n = c->ws.sending;

	c->ws.sending = 0;
	if (res == -EAGAIN || res == -EWOULDBLOCK || res == -EINTR || res == 0) {
		hr_outq__want_write(c); /* nothing sent: every frame still queued */
		return;
	}
	if (res < 0) {
		kill_conn(c);
		return;
	}
	size_t left;
	unsigned k = hr_outq__release_sent(&c->ws.out, n, (size_t)res, &left);
	if (k < n) {
		size_t used = 0;
		for (; k < n; k++, left = 0) {
			hr_msg *m = hr_outq__pop(&c->ws.out);
			memcpy(t->scratch + used, hr_msg_data(m) + left, hr_msg_len(m) - left);
			used += hr_msg_len(m) - left;
			hr_msg_unref(m);
		}
		if (lws_write(c->wsi, t->scratch, used, LWS_WRITE_RAW) < (int)used) {
			kill_conn(c);
			return;
		}
	}
	HR_METRIC_ADD(frames_sent, n);
	HR_METRIC_ADD(ws_writes, 1);
	hr_access__frames_out(c, n);
	if (c->ws.out.len > 0 || c->ws.close_code)
		hr_outq__want_write(c);
}

/* Put c's queued frames (up to SEND_FRAMES_MAX and HR_SCRATCH bytes) in the
 * batch, flushing it first when full. */
static void
add_send(hr_iothread *t, hr_conn *c)
{
	unsigned n = hr_outq__span(&c->ws.out, SEND_FRAMES_MAX, HR_SCRATCH);
	struct iovec *v = hr_sys__sendbatch_add(t->sendbatch, c->ws.sfd, n, c);
	if (v == NULL) {
		hr_sys__sendbatch_flush(t->sendbatch, sent, t);
		if ((v = hr_sys__sendbatch_add(t->sendbatch, c->ws.sfd, n, c)) == NULL) {
			if (hr_outq__write(t, c) != 0) /* cannot happen: n <= HR_SENDBATCH_IOV */
				kill_conn(c);
			return;
		}
	}
	hr_outq__iov(&c->ws.out, v, n);
	c->ws.sending = n;
}

/*
 * The end of a mailbox drain: every connection whose queue went from empty
 * to non-empty during it gets its one write now. lws allows a write outside
 * the writeable callback as long as it holds no unsent tail for the wsi
 * (lws_partial_buffered); such a connection, or one that is closing, waits
 * for its writeable callback.
 */
void
hr_outq__flush_drained(hr_iothread *t)
{
	for (uint32_t i = 0; i < t->nflush; i++) {
		hr_conn *c = hr_conn__get(t, t->flush[i]);
		if (c == NULL)
			continue;
		c->ws.flush_listed = false;
		if (c->ws.out.len == 0)
			continue;
		if (c->ws.close_code || lws_partial_buffered(c->wsi)) {
			hr_outq__want_write(c);
			continue;
		}
		if (c->ws.sfd >= 0 && hr_msg_len(hr_outq__peek(&c->ws.out, 0)) <= HR_SCRATCH)
			add_send(t, c);
		else if (hr_outq__write(t, c) != 0)
			kill_conn(c);
	}
	t->nflush = 0;
	hr_sys__sendbatch_flush(t->sendbatch, sent, t);
}
