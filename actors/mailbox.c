/*
 * mailbox.c: bounded many-producer, one-consumer FIFO of hr_mail (actor.h),
 * built on an nng inproc pipeline. Producers are any thread; recv, fd and
 * destroy belong to the one consumer thread.
 *
 * Design
 * ------
 * The consumer owns a pull0 socket listening on a unique inproc:// address.
 * ONE push0 socket is dialed to it and shared by every sender (nng sockets
 * are thread-safe). Everything a sender hands to that push socket goes
 * through one FIFO under push0's mutex (its message queue, then its single
 * pipe, one message in flight at a time), so mail is received in the global
 * order in which posts completed: if thread A's post returned before thread B
 * started its post, A's mail is received first. A connection's group
 * membership posted before its WebSocket 101 is therefore handled before any
 * group_send posted after the 101. (Mail from a post that is still blocked
 * waiting for room is not "completed" and may be overtaken by a later
 * non-blocking post that found room; that is the order of completion too.)
 *
 * Capacity. nng 1.5.2's pull0 has no receive buffer (NNG_OPT_RECVBUF is
 * accepted by the socket core but pull0 never uses it) and inproc has none
 * either: a send only completes against a posted receive. What bounds the
 * mailbox is push0's NNG_OPT_SENDBUF, which we set to `capacity` (nng allows
 * 0..8192, we allow 1..HR_MAILBOX_MAX_CAPACITY), plus two mails in transit:
 * one held by the push pipe's send (parked in inproc until the pull pipe
 * asks for the next message) and one parked in the pull pipe, waiting for
 * recv. So with no consumer a mailbox accepts at most capacity + 2
 * (HR_MAILBOX_SLACK) mails, and at least capacity + 1: the last slot frees
 * only once nng's task thread has run the push pipe's completion, which may
 * lag the post that filled the pipe. With a consumer, a post finding the
 * queue full may likewise see HR_EAGAIN a moment before a slot frees. Each
 * mail costs one nng_msg of sizeof(hr_mail) bytes.
 *
 * Timeouts are per call: 0 is nng's NONBLOCK; > 0 first tries NONBLOCK and
 * only then waits on an nng_aio with nng_aio_set_timeout (NNG_OPT_SENDTIMEO
 * would apply to every sender of the shared socket); < 0 is a blocking send.
 *
 * Transit. Mail moves from push to pull on nng's task threads, so for a few
 * microseconds after a post returns it may be neither in the push queue's
 * reach nor visible to a NONBLOCK receive, and the RECVFD is raised only when
 * it lands. We count completed posts (`posted`) against received mail
 * (`received`): a recv that finds nothing while posted > received knows a
 * mail is in transit and waits for it, so recv(0) says HR_EAGAIN only when
 * no completed post is unreceived (and, once closed, it waits for the close
 * marker likewise, so it never says HR_EAGAIN after close). The fd cannot do that: it becomes
 * readable when the mail lands, which never loses a wakeup for a loop that polls it.
 *
 * Close is a message too: hr_mailbox_close sets `closed` (further posts get
 * HR_ECLOSED) and queues an empty nng_msg behind everything already posted,
 * asynchronously, so close never blocks on a full mailbox. A post that read
 * `closed` as false just before it was set may still complete after the
 * marker; `inflight` counts posts between that check and their completion,
 * and the consumer reports HR_ECLOSED only once it has seen the marker, no
 * post is in flight and every completed post has been received.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "actors/actor_impl.h"

struct hr_mailbox {
	nng_socket pull; /* consumer's end */
	nng_socket push; /* shared by every sender */
	bool have_pull;
	bool have_push;
	nng_aio *recv_aio; /* consumer only: timed receives */
	nng_aio *close_aio; /* carries the close marker */
	nng_msg *close_msg; /* the marker, allocated up front so close cannot fail */
	atomic_bool closed;
	atomic_uint inflight; /* posts past the closed check, not yet done */
	atomic_uint_fast64_t posted; /* posts that completed */
	uint64_t received; /* consumer only: mails received */
	bool eof; /* consumer only: the close marker was received */
	hr_mail_drop_fn drop;
	void *drop_arg;
};

static atomic_uint_fast64_t mailbox_serial;

static int
from_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_EAGAIN:
		return HR_EAGAIN;
	case NNG_ETIMEDOUT:
		return HR_ETIMEDOUT;
	case NNG_ENOMEM:
		return HR_ENOMEM;
	case NNG_ECLOSED:
		return HR_ECLOSED;
	default:
		return HR_EIO;
	}
}

int
hr_mailbox_create(hr_mailbox **out, size_t capacity, hr_mail_drop_fn drop, void *drop_arg)
{
	hr_mailbox *mb;
	char url[64];
	int rv;

	if (out == NULL || capacity == 0 || capacity > HR_MAILBOX_MAX_CAPACITY)
		return HR_EINVAL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return HR_ENOMEM;
	atomic_init(&mb->closed, false);
	atomic_init(&mb->inflight, 0);
	atomic_init(&mb->posted, 0);
	mb->drop = drop;
	mb->drop_arg = drop_arg;

	snprintf(url, sizeof(url), "inproc://herald-mailbox-%p-%llu", (void *)mb,
	    (unsigned long long)atomic_fetch_add(&mailbox_serial, 1));
	if ((rv = nng_pull0_open(&mb->pull)) != 0)
		goto fail;
	mb->have_pull = true;
	if ((rv = nng_listen(mb->pull, url, NULL, 0)) != 0)
		goto fail;
	if ((rv = nng_push0_open(&mb->push)) != 0)
		goto fail;
	mb->have_push = true;
	if ((rv = nng_socket_set_int(mb->push, NNG_OPT_SENDBUF, (int)capacity)) != 0)
		goto fail;
	/* inproc dials synchronously: the pipe exists when this returns. */
	if ((rv = nng_dial(mb->push, url, NULL, 0)) != 0)
		goto fail;
	if ((rv = nng_aio_alloc(&mb->recv_aio, NULL, NULL)) != 0)
		goto fail;
	if ((rv = nng_aio_alloc(&mb->close_aio, NULL, NULL)) != 0)
		goto fail;
	if ((rv = nng_msg_alloc(&mb->close_msg, 0)) != 0)
		goto fail;
	*out = mb;
	return 0;
fail:
	hr_mailbox_destroy(mb);
	return rv == NNG_ENOMEM ? HR_ENOMEM : HR_EIO;
}

int
hr_mailbox_post(hr_mailbox *mb, const hr_mail *mail, int timeout_ms)
{
	nng_msg *m = NULL;
	nng_aio *aio = NULL;
	int rv;

	if (mb == NULL || mail == NULL)
		return HR_EINVAL;
	atomic_fetch_add(&mb->inflight, 1);
	if (atomic_load(&mb->closed)) {
		rv = HR_ECLOSED;
		goto done;
	}
	if ((rv = from_nng(nng_msg_alloc(&m, sizeof(*mail)))) != 0)
		goto done;
	memcpy(nng_msg_body(m), mail, sizeof(*mail));

	if (timeout_ms < 0) {
		rv = from_nng(nng_sendmsg(mb->push, m, 0));
	} else {
		rv = from_nng(nng_sendmsg(mb->push, m, NNG_FLAG_NONBLOCK));
		if (rv == HR_EAGAIN && timeout_ms > 0) {
			/* Slow path only: the mailbox was full. */
			if ((rv = from_nng(nng_aio_alloc(&aio, NULL, NULL))) != 0)
				goto done;
			nng_aio_set_msg(aio, m);
			nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
			nng_send_aio(mb->push, aio);
			nng_aio_wait(aio);
			rv = from_nng(nng_aio_result(aio));
			if (rv != 0)
				m = nng_aio_get_msg(aio); /* a failed send hands it back */
			nng_aio_free(aio);
		}
	}
	if (rv == 0) {
		m = NULL; /* nng owns it now */
		atomic_fetch_add(&mb->posted, 1);
	}
done:
	if (m != NULL)
		nng_msg_free(m);
	atomic_fetch_sub(&mb->inflight, 1);
	return rv;
}

/* One message from the pull socket: 0 and *m, or an HR_E* code. */
static int
pull_one(hr_mailbox *mb, nng_msg **m, int timeout_ms)
{
	int rv;

	if (timeout_ms == 0)
		return from_nng(nng_recvmsg(mb->pull, m, NNG_FLAG_NONBLOCK));
	if (timeout_ms < 0)
		return from_nng(nng_recvmsg(mb->pull, m, 0));
	nng_aio_set_timeout(mb->recv_aio, (nng_duration)timeout_ms);
	nng_recv_aio(mb->pull, mb->recv_aio);
	nng_aio_wait(mb->recv_aio);
	if ((rv = nng_aio_result(mb->recv_aio)) != 0)
		return from_nng(rv);
	*m = nng_aio_get_msg(mb->recv_aio);
	nng_aio_set_msg(mb->recv_aio, NULL);
	return 0;
}

/* 0: *out holds a mail. 1: that was the close marker. < 0: nothing. */
static int
take(hr_mailbox *mb, nng_msg *m, hr_mail *out)
{
	size_t len = nng_msg_len(m);

	if (len == 0) {
		nng_msg_free(m);
		mb->eof = true;
		return 1;
	}
	if (len != sizeof(*out)) {
		/* Only this file writes to the socket; anything else is a bug. */
		nng_msg_free(m);
		HR_ASSERT(len == sizeof(*out));
		return HR_EIO;
	}
	memcpy(out, nng_msg_body(m), sizeof(*out));
	nng_msg_free(m);
	mb->received++;
	return 0;
}

/* Posts completed but not yet received: such mail is in transit inside nng. */
static bool
in_transit(hr_mailbox *mb)
{
	return atomic_load(&mb->posted) > mb->received;
}

int
hr_mailbox_recv(hr_mailbox *mb, hr_mail *out, int timeout_ms)
{
	nng_msg *m;
	int rv;

	if (mb == NULL || out == NULL)
		return HR_EINVAL;
	for (;;) {
		if (mb->eof) {
			/* Closed: hand out what is left, waiting only for mail that a
			 * post already committed to (inflight first: a poster bumps
			 * `posted` before it leaves `inflight`). */
			if ((rv = pull_one(mb, &m, 0)) == 0)
				goto got;
			if (rv != HR_EAGAIN)
				return rv;
			if (atomic_load(&mb->inflight) == 0 && !in_transit(mb))
				return HR_ECLOSED;
			rv = pull_one(mb, &m, 1);
			if (rv == HR_ETIMEDOUT)
				continue;
			if (rv != 0)
				return rv;
			goto got;
		}
		rv = pull_one(mb, &m, timeout_ms);
		if (rv == HR_EAGAIN && (in_transit(mb) || atomic_load(&mb->closed))) {
			/* A completed post's mail, or the close marker, is still
			 * on nng's task thread: it lands within microseconds;
			 * wait for it in short steps. */
			rv = pull_one(mb, &m, 10);
			if (rv == HR_ETIMEDOUT)
				continue;
		}
		if (rv != 0)
			return rv;
	got:
		if ((rv = take(mb, m, out)) == 0)
			return 0;
		if (rv < 0)
			return rv;
		/* The close marker: loop into the closed branch. */
	}
}

int
hr_mailbox_fd(hr_mailbox *mb, int *fd)
{
	if (mb == NULL || fd == NULL)
		return HR_EINVAL;
	return from_nng(nng_socket_get_int(mb->pull, NNG_OPT_RECVFD, fd));
}

void
hr_mailbox_close(hr_mailbox *mb)
{
	if (mb == NULL || atomic_exchange(&mb->closed, true))
		return;
	/* Queued behind every completed post; waits for room by itself. */
	nng_aio_set_msg(mb->close_aio, mb->close_msg);
	mb->close_msg = NULL;
	nng_send_aio(mb->push, mb->close_aio);
}

void
hr_mailbox_destroy(hr_mailbox *mb)
{
	hr_mail mail;
	nng_msg *m;

	if (mb == NULL)
		return;
	if (mb->have_pull && mb->have_push && mb->recv_aio != NULL && mb->close_aio != NULL
	    && (mb->close_msg != NULL || atomic_load(&mb->closed))) {
		/* Drain through the pull side so that every mail reaches the
		 * drop function (closing the sockets would free them silently). */
		hr_mailbox_close(mb);
		while (hr_mailbox_recv(mb, &mail, -1) == 0) {
			if (mb->drop != NULL)
				mb->drop(mb->drop_arg, &mail);
		}
	}
	if (mb->close_aio != NULL) {
		nng_aio_stop(mb->close_aio);
		if (nng_aio_result(mb->close_aio) != 0
		    && (m = nng_aio_get_msg(mb->close_aio)) != NULL)
			nng_msg_free(m);
		nng_aio_free(mb->close_aio);
	}
	if (mb->close_msg != NULL)
		nng_msg_free(mb->close_msg);
	if (mb->recv_aio != NULL)
		nng_aio_free(mb->recv_aio);
	if (mb->have_push)
		nng_close(mb->push);
	if (mb->have_pull)
		nng_close(mb->pull);
	free(mb);
}
