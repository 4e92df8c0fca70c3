/*
 * sys_send.c: batched non-blocking sends, the last step of the fan-out hot
 * path (outq.c). An I/O thread adds one entry per connection (a socket and
 * the frames it is owed, as iovecs pointing into shared frames) and flushes
 * the batch; every entry then gets its result, bytes sent or -errno.
 *
 * With io_uring (liburing) a flush is one io_uring_enter for up to
 * HR_SENDBATCH_MAX sends. Each send carries MSG_DONTWAIT, so the kernel runs
 * it inline and completes it at once, partial or -EAGAIN, as send() would:
 * nothing is left in flight when flush returns, and the caller's buffers are
 * free again. Measured on the 2-core VM (10,000 connections, one 200-byte
 * frame each per broadcast, raw-ceiling made to use it): 4.5 us of server CPU
 * per delivery instead of 7.2-9.5 us with one write() each, because the
 * per-call entry and exit, most of which is the hypervisor's, is paid once
 * per batch. Where io_uring is unavailable (old kernel, seccomp,
 * io_uring_disabled, HERALD_IO_URING=0) each entry is one sendmsg().
 *
 * Also the shutdown(SHUT_WR) of ws.c's lingering close.
 *
 * Threads: one hr_sendbatch per I/O thread, only touched from it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "transport/transport_impl.h"

#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

typedef struct entry {
	int fd;
	unsigned iov0, niov;
	void *cookie;
	bool reaped;
	struct msghdr mh; /* sendmsg: read by the kernel during the submit */
} entry;

struct hr_sendbatch {
	bool uring;
	struct io_uring ring;
	entry ent[HR_SENDBATCH_MAX];
	unsigned n;
	struct iovec iov[HR_SENDBATCH_IOV];
	unsigned niov;
};

/* SEND and SENDMSG came with kernels 5.6 and 5.3; a ring without them would
 * fail every send (-EINVAL), which would close every connection. */
static bool
sends_supported(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	bool ok = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_SEND)
	    && io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
	io_uring_free_probe(probe);
	return ok;
}

int
hr_sys__sendbatch_create(hr_sendbatch **out, bool try_uring)
{
	hr_sendbatch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return HR_ENOMEM;
	if (try_uring) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		/* every flush reaps all it submitted: the CQ never overflows */
		p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
		if (io_uring_queue_init_params(HR_SENDBATCH_MAX, &b->ring, &p) == 0)
			b->uring = true;
		else if (io_uring_queue_init(HR_SENDBATCH_MAX, &b->ring, 0) == 0)
			b->uring = true; /* a kernel before 5.19 */
		if (b->uring && !sends_supported(&b->ring)) {
			io_uring_queue_exit(&b->ring);
			b->uring = false;
		}
	}
	*out = b;
	return 0;
}

int
hr_sys__shutdown_wr(int fd)
{
	return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno;
}

void
hr_sys__sendbatch_destroy(hr_sendbatch *b)
{
	if (b == NULL)
		return;
	if (b->uring)
		io_uring_queue_exit(&b->ring);
	free(b);
}

bool
hr_sys__sendbatch_uring(const hr_sendbatch *b)
{
	return b->uring;
}

struct iovec *
hr_sys__sendbatch_add(hr_sendbatch *b, int fd, unsigned niov, void *cookie)
{
	if (niov == 0 || b->n == HR_SENDBATCH_MAX || niov > HR_SENDBATCH_IOV - b->niov)
		return NULL;
	entry *e = &b->ent[b->n++];
	e->fd = fd;
	e->iov0 = b->niov;
	e->niov = niov;
	e->cookie = cookie;
	b->niov += niov;
	return &b->iov[e->iov0];
}

static ssize_t
send_one(hr_sendbatch *b, entry *e)
{
	struct iovec *v = &b->iov[e->iov0];
	ssize_t r;
	if (e->niov == 1) {
		r = send(e->fd, v->iov_base, v->iov_len, SEND_FLAGS);
	} else {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = e->niov };
		r = sendmsg(e->fd, &mh, SEND_FLAGS);
	}
	return r < 0 ? -errno : r;
}

/*
 * io_uring: queue every entry, one enter, reap every completion. Returns
 * false when the ring failed; then every entry whose result never came gets
 * -EIO (it may have been partly sent: the caller must close that socket).
 * Unreachable in practice with MSG_DONTWAIT sends and a CQ twice the SQ.
 */
static bool
flush_uring(hr_sendbatch *b, hr_sendbatch_done done, void *arg)
{
	unsigned reaped = 0;
	for (unsigned i = 0; i < b->n; i++) {
		entry *e = &b->ent[i];
		/* never NULL: n <= the SQ size, and every flush submits all */
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
		struct iovec *v = &b->iov[e->iov0];
		HR_ASSERT(sqe != NULL);
		e->reaped = false;
		if (e->niov == 1) {
			io_uring_prep_send(sqe, e->fd, v->iov_base, v->iov_len, SEND_FLAGS);
		} else {
			memset(&e->mh, 0, sizeof(e->mh));
			e->mh.msg_iov = v;
			e->mh.msg_iovlen = e->niov;
			io_uring_prep_sendmsg(sqe, e->fd, &e->mh, SEND_FLAGS);
		}
		io_uring_sqe_set_data(sqe, e);
	}
	/* MSG_DONTWAIT sends complete during the submit; the wait only
	 * matters after an interrupted enter. */
	for (int round = 0; reaped < b->n && round < 64; round++) {
		int rv = io_uring_submit_and_wait(&b->ring, b->n - reaped);
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&b->ring, head, cqe)
		{
			entry *e = io_uring_cqe_get_data(cqe);
			e->reaped = true;
			done(e->cookie, cqe->res, arg);
			seen++;
		}
		io_uring_cq_advance(&b->ring, seen);
		reaped += seen;
		if (rv < 0 && rv != -EINTR && rv != -EAGAIN && rv != -EBUSY)
			break;
	}
	if (reaped == b->n)
		return true;
	for (unsigned i = 0; i < b->n; i++)
		if (!b->ent[i].reaped)
			done(b->ent[i].cookie, HR_EIO, arg);
	return false;
}

void
hr_sys__sendbatch_flush(hr_sendbatch *b, hr_sendbatch_done done, void *arg)
{
	if (b->uring) {
		if (b->n > 0 && !flush_uring(b, done, arg)) {
			hr_log(HR_LOG_WARN, "io_uring failed: sending with sendmsg() from now on");
			io_uring_queue_exit(&b->ring);
			b->uring = false;
		}
	} else {
		for (unsigned i = 0; i < b->n; i++)
			done(b->ent[i].cookie, send_one(b, &b->ent[i]), arg);
	}
	b->n = 0;
	b->niov = 0;
}
