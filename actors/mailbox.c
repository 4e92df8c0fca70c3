/*
 * mailbox.c: bounded many-producer, one-consumer FIFO of hr_mail (actor.h),
 * carried by an nng inproc pair1 socket pair. Producers are any thread; recv,
 * hr_mailbox_buffered and destroy belong to the one consumer thread; fd and
 * close may be called from any thread. The batch scope (hr_mailbox_batch_*)
 * is per thread.
 *
 * What it costs, and why it batches
 * ---------------------------------
 * herald was specified with nng inproc mailboxes, and the first one was a
 * push0/pull0 pair carrying one mail per nng message: 17,600 mails/s, 82 us
 * of CPU per mail. Every nng message crosses nng's task threads: the inproc
 * transport completes the sender pipe's send and the receiver pipe's receive
 * as two task-queue jobs, and the second then wakes the receiver, so a
 * message costs about three thread hand-offs where a ring under a mutex costs
 * one wake-up (and none when the receiver is busy). pull0 also has no receive
 * buffer. The ring replaced it (6.6 M mails/s, 0.18 us/mail). This file brings
 * nng back and pays its fixed cost per message rather than per mail: pair1
 * (which has a receive buffer), one aio per socket reused (nng_sendmsg
 * allocates one per call and seeds it with getrandom(2)), and batches.
 *
 * bench/mailbox_bench.c, three interleaved rounds (medians) on the shared
 * 2-core VM, loaded by other builds (load average 6): read ratios.
 *
 *   workload                            ring (main)       this file
 *   1 producer, one mail per message    6.4 M/s 0.13 us   191 k/s 4.4 us
 *   1 producer, scopes of 256 posts     8.6 M/s 0.11 us   4.6 M/s 0.23 us
 *   2 producers, scopes of 256 posts    4.3 M/s 0.24 us   4.8 M/s 0.22 us
 *   3 hops (drain, 2 actors, fd loop)   2.9 M/s 0.29 us   2.4 M/s 0.53 us
 *   one-way p50 / p99, 1 hop, 2,000/s   7 / 2,400 us      44 / 3,300 us
 *   one-way p50 / p99, 3 hops, 2,000/s  34 / 3,400 us     111 / 6,100 us
 *
 * (us = process CPU per mail, nng's threads included.) A lone message still
 * costs ~4-7 us of CPU and ~40 us per hop; in batches nng carries the hot
 * path at 0.2-0.5 us per mail. So everything posted in bulk travels in
 * batches: the router's fan-outs and replies, the consumers' frames, the
 * Redis drain's group_sends, and the group_sends of one I/O loop turn's HTTP
 * requests (transport/http.c defers its scope to the end of the turn). What
 * must be seen before its caller acts again (a connection's registration,
 * before its 101) is flushed at once; the I/O thread's turn batch goes at
 * the end of the loop's turn (transport/evloop.c), with no wake-up of its
 * own. Measured with herald itself (N WebSocket clients, bench/README.md,
 * "nng mailboxes against the ring"), against the ring build, interleaved on
 * the loaded VM: N=100 0.85-0.96x deliveries/s (0.89x over 23 pairs) and
 * 1.10x CPU per delivery at full rate (each broadcast there carries few
 * recipients to spread a message's ~4 context switches over); N=1,000
 * >= 0.9x; CPU per delivery at 10/s 0.84-0.99x; Redis drain 0.96x.
 * Tried and dropped: recv(0) waiting for a message still crossing nng's
 * threads (longer drains, bigger batches: 3 hops at 2.5 M/s, but herald
 * slower, as the router and I/O thread then block once per message); an
 * actor waiting in poll(RECVFD) then receiving without waiting (the same
 * hand-offs: nng's task thread then wakes the fd instead of the aio); a
 * scope's batches sent newest first (replies before fan-outs); recv(0)
 * answering EAGAIN without asking nng when nothing is outstanding. None was
 * faster. pair0 and push0/pull0 cost the same per message as pair1 (one
 * core: ~4 context switches, ~16 us of CPU per message).
 *
 * What closed the last gap was not in nng but in the scheduler. With the
 * server on one core and the clients on the other, this build delivered
 * 0.72-0.84x of the ring build's frames/s at N=1,000 (interleaved rounds)
 * and spent 1.2-1.4x the CPU per delivery, 90 % of it in the kernel's send
 * path in both. The difference was the clients' side: its readers slept
 * and woke 1.5-4x as often (context switches on their core), and a send
 * to a sleeping reader pays for the wake-up on the sending core. Each
 * mailbox post wakes an nng task thread and then an actor; under the
 * default policy each of those wake-ups may preempt the I/O thread in the
 * middle of its sends, so its sends came in broken bursts, with the
 * readers asleep between them. Actors and nng's threads now run under
 * SCHED_BATCH (sys_thread.c; nng's threads are started by the first
 * socket, opened below under it), which never preempts on wake-up: 1.04-
 * 1.10x of the ring build at N=1,000 (bench/README.md, "Actors under
 * SCHED_BATCH").
 *
 * Design
 * ------
 * Two pair1 sockets per mailbox: `rx` listens on inproc://herald-mbox-<n> and
 * is the consumer's; `tx` dials it and is shared by every producer (nng
 * sockets are thread-safe). One nng message carries 1..HR_MAILBOX_BATCH mails
 * back to back (32 bytes each, copied out with memcpy: pair1 strips a 4-byte
 * header, so the body is not 8-byte aligned on the receiving side).
 *
 * Capacity is counted here, not by nng, whose buffers count messages and hold
 * SENDBUF + RECVBUF + a couple in flight depending on when its task threads
 * ran. `state` is one atomic word: the CLOSED bit and the number of mails
 * posted and not yet handed out by recv (reserved by a CAS on post, released
 * one by one by recv). So full is exactly `capacity`, closed and full are
 * decided in one step, and once closed the count only goes down: recv says
 * HR_ECLOSED exactly when the word reads CLOSED with no mail, and every mail
 * accepted before the close is still received, even one that sits in another
 * thread's unflushed batch at that moment. RECVBUF is `capacity` messages, so
 * nng can always take what the count allows (each message holds >= 1 mail):
 * a send never waits for the consumer, only, briefly, for nng's own threads
 * to move a message from `tx` to `rx`.
 *
 * Sending: one nng_aio per mailbox, allocated at create and reused under
 * tx_lock (nng_sendmsg would allocate an aio per call, and nng seeds each new
 * aio with getrandom(2)). The receiver has its own aio (one consumer). A post
 * allocates its nng message before it reserves a slot, so nothing can fail
 * after the reservation, and a failed post leaves the mail with the caller.
 *
 * Batching: outside a batch scope a post sends its one-mail message before it
 * returns, so the order of completed posts is the order of receipt across all
 * producers (they share `tx`, whose lock orders them), as the ring before it
 * gave. Inside a scope (hr_mailbox_batch_begin/end, opened by the actor
 * runtime around each drain, by the I/O thread around its mailbox drain and,
 * deferred (hr_mailbox_batch_defer), from its first HTTP send of a loop turn
 * to the turn's end, by the Redis drain around each popped batch) a post
 * copies the mail into this thread's batch for that mailbox; a batch is sent
 * when it fills (after the batches started before it), when a post from this
 * thread has to wait for room (our own unsent mail may be what fills the
 * box), and at the scope's end, which sends every batch in the order the
 * batches were started. A mail posted inside a scope is therefore
 * seen after everything this thread posted before it to the same mailbox, and
 * before anything anyone posts after the scope ended. What it does not give:
 * order across mailboxes within a scope (a mail to A posted before one to B
 * may, through B's receiver, be overtaken at A); nothing in herald relies on
 * that, and a caller that does must hr_mailbox_flush between the two.
 *
 * Waiting: a post that finds the box full waits on `room` (a condition
 * variable on CLOCK_MONOTONIC; timeout 0 never waits, > 0 until a deadline,
 * < 0 until woken). recv signals it only when a poster waits (the waiter count
 * is checked after the release, and the poster counts itself before its last
 * try, both sequentially consistent, so no wake-up is lost). The receiver
 * blocks inside nng (nng_recv_aio + nng_aio_wait); close wakes it with an
 * empty marker message, which also makes the fd readable for a polling loop.
 *
 * The fd is nng's NNG_OPT_RECVFD on `rx`: readable while nng holds a message.
 * Mail already taken out of nng but not yet handed out by recv (the rest of a
 * batch) does not make it readable: a loop that caps its drain must not stop
 * while hr_mailbox_buffered() is non-zero.
 *
 * Destroy: close, wait for woken posters to leave, then receive what is left
 * (with a bounded wait: a message may still be crossing nng's threads) and
 * hand every mail to the drop function, then close the sockets.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "actors/actor_impl.h"

#define MB_CLOSED ((uint64_t)1 << 63)
#define MAIL_SIZE sizeof(hr_mail)
/* Bytes allocated for a batch message: not a power of two, so nng keeps 32
 * bytes of headroom in front of the body and the inproc transport can put its
 * header there instead of copying the message (nni_msg_pull_up). */
#define BATCH_BYTES (HR_MAILBOX_BATCH * MAIL_SIZE + 8)
#define TX_SENDBUF 16
/* Distinct destination mailboxes one thread's scope batches at once; past
 * that every batch is sent and the registry starts again. */
#define SCOPE_SLOTS 32
/* How long destroy waits for a message still crossing nng's threads. */
#define DESTROY_WAIT_MS 5000

struct hr_mailbox {
	_Atomic uint64_t state; /* MB_CLOSED | mails posted and not yet handed out */
	size_t cap;
	nng_socket tx;           /* every producer sends here */
	nng_socket rx;           /* ONLY the consumer receives here */
	pthread_mutex_t tx_lock; /* one send at a time through tx_aio */
	nng_aio *tx_aio;         /* {tx_lock} */
	pthread_mutex_t lock;    /* for `room` */
	pthread_cond_t room;     /* posters wait here for a slot (and destroy for them) */
	atomic_uint posters_waiting;
	_Atomic(nng_msg *) marker; /* close's wake-up, sent once */
	atomic_bool marker_out;    /* and nng took it */
	/* ONLY touched by the consumer thread. */
	nng_aio *rx_aio;
	nng_msg *cur;          /* the message being handed out */
	size_t cur_pos, cur_n; /* next mail, mails in cur */
	bool marker_seen;      /* close's marker came out of nng */
	bool have_tx, have_rx, have_tx_lock, have_lock, have_room;
	hr_mail_drop_fn drop;
	void *drop_arg;
};

/* This thread's batches: slot[0..n) in the order they were started. */
typedef struct scope_slot {
	hr_mailbox *mb;
	nng_msg *msg;
} scope_slot;

static _Thread_local struct {
	unsigned depth;
	bool deferred; /* hr_mailbox_batch_defer's scope is open */
	unsigned n;
	nng_msg *spare; /* allocated before a reservation, so nothing fails after it */
	scope_slot slot[SCOPE_SLOTS];
} tl;

static atomic_uint mailbox_serial;

/* nng starts its threads (task queues, timers, resolver, poller) with its
 * first socket, and they inherit the policy of the thread that opened it:
 * the first socket is opened here, under SCHED_BATCH (sys_thread.c). */
static pthread_once_t nng_once = PTHREAD_ONCE_INIT;

static void
nng_first_socket(void *arg)
{
	nng_socket s;
	(void)arg;
	if (nng_pair1_open(&s) == 0)
		(void)nng_close(s);
}

static void
nng_start(void)
{
	hr_sys__as_batch(nng_first_socket, NULL);
}

static int
from_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return HR_ENOMEM;
	case NNG_ETIMEDOUT:
		return HR_ETIMEDOUT;
	case NNG_EAGAIN:
		return HR_EAGAIN;
	case NNG_ECLOSED:
		return HR_ECLOSED;
	default:
		return HR_EIO;
	}
}

static void
deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds left until ts (>= 0). */
static int
ms_left(const struct timespec *ts)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(ts->tv_sec - now.tv_sec) * 1000
	    + (ts->tv_nsec - now.tv_nsec + 999999L) / 1000000L;
	return ms <= 0 ? 0 : ms > 1000000000LL ? 1000000000 : (int)ms;
}

static int
init_cond(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rv;

	if (pthread_condattr_init(&attr) != 0)
		return HR_ENOMEM;
	rv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rv == 0)
		rv = pthread_cond_init(cv, &attr);
	(void)pthread_condattr_destroy(&attr);
	return rv == 0 ? 0 : rv == ENOMEM ? HR_ENOMEM : HR_EIO;
}

/* A message with room for a whole batch and an empty body. */
static int
batch_alloc(nng_msg **out)
{
	nng_msg *m;
	int rv;

	if ((rv = nng_msg_alloc(&m, BATCH_BYTES)) != 0)
		return from_nng(rv);
	(void)nng_msg_chop(m, BATCH_BYTES); /* keeps the capacity and the headroom */
	*out = m;
	return 0;
}

static size_t
msg_mails(nng_msg *m)
{
	return nng_msg_len(m) / MAIL_SIZE;
}

/* ---------------------------------------------------------------- counting */

/* Take a slot without waiting: 0, HR_ECLOSED, or HR_EAGAIN when full. */
static int
try_reserve(hr_mailbox *mb)
{
	uint64_t s = atomic_load(&mb->state);
	for (;;) {
		if (s & MB_CLOSED)
			return HR_ECLOSED;
		if (s >= mb->cap)
			return HR_EAGAIN;
		if (atomic_compare_exchange_weak(&mb->state, &s, s + 1))
			return 0;
	}
}

/* Give back n slots (mails handed out or dropped), waking a waiting poster. */
static void
release(hr_mailbox *mb, uint64_t n)
{
	atomic_fetch_sub(&mb->state, n);
	if (atomic_load(&mb->posters_waiting) > 0) {
		pthread_mutex_lock(&mb->lock);
		pthread_cond_broadcast(&mb->room);
		pthread_mutex_unlock(&mb->lock);
	}
}

static void flush_all(void);

/* Take a slot, waiting as timeout_ms says. */
static int
reserve(hr_mailbox *mb, int timeout_ms)
{
	struct timespec until;
	int rv;

	if ((rv = try_reserve(mb)) != HR_EAGAIN)
		return rv;
	/* Full. Our own unsent batches may be what fills it: send them. */
	if (tl.n > 0) {
		flush_all();
		if ((rv = try_reserve(mb)) != HR_EAGAIN)
			return rv;
	}
	if (timeout_ms == 0)
		return HR_EAGAIN;
	if (timeout_ms > 0)
		deadline_after(&until, timeout_ms);
	pthread_mutex_lock(&mb->lock);
	atomic_fetch_add(&mb->posters_waiting, 1);
	for (;;) {
		if ((rv = try_reserve(mb)) != HR_EAGAIN)
			break;
		if (timeout_ms < 0) {
			(void)pthread_cond_wait(&mb->room, &mb->lock);
		} else if (pthread_cond_timedwait(&mb->room, &mb->lock, &until) == ETIMEDOUT) {
			if ((rv = try_reserve(mb)) == HR_EAGAIN)
				rv = HR_ETIMEDOUT;
			break;
		}
	}
	if (atomic_fetch_sub(&mb->posters_waiting, 1) == 1 && (atomic_load(&mb->state) & MB_CLOSED))
		pthread_cond_broadcast(&mb->room); /* destroy may wait for us */
	pthread_mutex_unlock(&mb->lock);
	return rv;
}

/* ---------------------------------------------------------------- sending */

/* Hand m (>= 0 mails, all reserved) to nng. Never waits for the consumer: the
 * receive buffer holds `capacity` messages. On failure (the sockets are
 * gone, a caller's bug) the mails go to the drop function. */
static int
send_msg(hr_mailbox *mb, nng_msg *m)
{
	size_t n = msg_mails(m);
	int rv;

	pthread_mutex_lock(&mb->tx_lock);
	nng_aio_set_msg(mb->tx_aio, m);
	nng_send_aio(mb->tx, mb->tx_aio);
	nng_aio_wait(mb->tx_aio);
	rv = nng_aio_result(mb->tx_aio);
	pthread_mutex_unlock(&mb->tx_lock);
	if (rv == 0)
		return 0;
	HR_ASSERT(n == 0);
	for (size_t i = 0; i < n; i++) {
		hr_mail mail;
		memcpy(&mail, (const char *)nng_msg_body(m) + i * MAIL_SIZE, MAIL_SIZE);
		if (mb->drop != NULL)
			mb->drop(mb->drop_arg, &mail);
	}
	nng_msg_free(m);
	if (n > 0)
		release(mb, n);
	return rv;
}

static void
flush_all(void)
{
	/* Sent in the order started; a send never posts, so the registry is
	 * stable while we walk it. */
	for (unsigned i = 0; i < tl.n; i++)
		(void)send_msg(tl.slot[i].mb, tl.slot[i].msg);
	tl.n = 0;
}

/* ---------------------------------------------------------------- public */

int
hr_mailbox_create(hr_mailbox **out, size_t capacity, hr_mail_drop_fn drop, void *drop_arg)
{
	char url[64];
	hr_mailbox *mb;
	int rv;

	if (out == NULL || capacity == 0 || capacity > HR_MAILBOX_MAX_CAPACITY)
		return HR_EINVAL;
	(void)pthread_once(&nng_once, nng_start);
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return HR_ENOMEM;
	atomic_init(&mb->state, 0);
	atomic_init(&mb->posters_waiting, 0);
	atomic_init(&mb->marker, NULL);
	atomic_init(&mb->marker_out, false);
	mb->cap = capacity;
	mb->drop = drop;
	mb->drop_arg = drop_arg;
	rv = HR_ENOMEM;
	if (pthread_mutex_init(&mb->tx_lock, NULL) != 0)
		goto fail;
	mb->have_tx_lock = true;
	if (pthread_mutex_init(&mb->lock, NULL) != 0)
		goto fail;
	mb->have_lock = true;
	if ((rv = init_cond(&mb->room)) != 0)
		goto fail;
	mb->have_room = true;

	nng_msg *marker;
	if ((rv = from_nng(nng_msg_alloc(&marker, 0))) != 0)
		goto fail;
	atomic_store(&mb->marker, marker);
	if ((rv = from_nng(nng_aio_alloc(&mb->tx_aio, NULL, NULL))) != 0
	    || (rv = from_nng(nng_aio_alloc(&mb->rx_aio, NULL, NULL))) != 0)
		goto fail;
	nng_aio_set_timeout(mb->tx_aio, NNG_DURATION_INFINITE);

	(void)snprintf(
	    url, sizeof(url), "inproc://herald-mbox-%u", atomic_fetch_add(&mailbox_serial, 1));
	if ((rv = from_nng(nng_pair1_open(&mb->rx))) != 0)
		goto fail;
	mb->have_rx = true;
	if ((rv = from_nng(nng_socket_set_int(mb->rx, NNG_OPT_RECVBUF, (int)capacity))) != 0
	    || (rv = from_nng(nng_listen(mb->rx, url, NULL, 0))) != 0)
		goto fail;
	if ((rv = from_nng(nng_pair1_open(&mb->tx))) != 0)
		goto fail;
	mb->have_tx = true;
	if ((rv = from_nng(nng_socket_set_int(mb->tx, NNG_OPT_SENDBUF, TX_SENDBUF))) != 0
	    || (rv = from_nng(nng_dial(mb->tx, url, NULL, 0))) != 0)
		goto fail;
	*out = mb;
	return 0;
fail:
	hr_mailbox_destroy(mb);
	return rv == HR_ENOMEM ? rv : HR_EIO;
}

int
hr_mailbox_post(hr_mailbox *mb, const hr_mail *mail, int timeout_ms)
{
	nng_msg *m;
	int rv;

	if (mb == NULL || mail == NULL)
		return HR_EINVAL;
	if (tl.depth == 0) {
		/* One mail, sent before we return. */
		if ((rv = from_nng(nng_msg_alloc(&m, MAIL_SIZE))) != 0)
			return rv;
		if ((rv = reserve(mb, timeout_ms)) != 0) {
			nng_msg_free(m);
			return rv;
		}
		memcpy(nng_msg_body(m), mail, MAIL_SIZE);
		(void)send_msg(mb, m);
		return 0;
	}
	/* In a scope: into this thread's batch for mb. The spare message is
	 * allocated first, since reserve may send (and so end) every batch. */
	if (tl.spare == NULL && (rv = batch_alloc(&tl.spare)) != 0)
		return rv;
	if ((rv = reserve(mb, timeout_ms)) != 0)
		return rv;
	unsigned i = 0;
	while (i < tl.n && tl.slot[i].mb != mb)
		i++;
	if (i == tl.n) {
		if (tl.n == SCOPE_SLOTS) {
			flush_all();
			i = 0;
		}
		tl.slot[i] = (scope_slot) { mb, tl.spare };
		tl.spare = NULL;
		tl.n++;
	}
	m = tl.slot[i].msg;
	(void)nng_msg_append(m, mail, MAIL_SIZE); /* within the capacity allocated */
	if (msg_mails(m) == HR_MAILBOX_BATCH) {
		/* Full: send it, after the batches started before it. */
		for (unsigned k = 0; k <= i; k++)
			(void)send_msg(tl.slot[k].mb, tl.slot[k].msg);
		memmove(&tl.slot[0], &tl.slot[i + 1], (tl.n - i - 1) * sizeof(tl.slot[0]));
		tl.n -= i + 1;
	}
	return 0;
}

void
hr_mailbox_batch_begin(void)
{
	tl.depth++;
}

bool
hr_mailbox_batch_defer(void)
{
	if (tl.deferred)
		return false;
	hr_mailbox_batch_begin();
	tl.deferred = true;
	return true;
}

void
hr_mailbox_batch_end_deferred(void)
{
	if (tl.deferred) {
		tl.deferred = false;
		hr_mailbox_batch_end();
	}
}

void
hr_mailbox_flush(void)
{
	flush_all();
}

void
hr_mailbox_batch_end(void)
{
	HR_ASSERT(tl.depth > 0);
	flush_all();
	if (tl.depth > 0 && --tl.depth == 0 && tl.spare != NULL) {
		nng_msg_free(tl.spare);
		tl.spare = NULL;
	}
}

/* Hand out the next mail of cur. */
static void
take(hr_mailbox *mb, hr_mail *out)
{
	memcpy(out, (const char *)nng_msg_body(mb->cur) + mb->cur_pos * MAIL_SIZE, MAIL_SIZE);
	if (++mb->cur_pos == mb->cur_n) {
		nng_msg_free(mb->cur);
		mb->cur = NULL;
		mb->cur_pos = mb->cur_n = 0;
	}
	release(mb, 1);
}

/* One nng receive into cur: 0 (cur may hold no mail: the close marker), or
 * nng's error. */
static int
rx_once(hr_mailbox *mb, nng_duration d)
{
	int rv;

	nng_aio_set_timeout(mb->rx_aio, d);
	nng_recv_aio(mb->rx, mb->rx_aio);
	nng_aio_wait(mb->rx_aio);
	if ((rv = nng_aio_result(mb->rx_aio)) != 0)
		return rv;
	mb->cur = nng_aio_get_msg(mb->rx_aio);
	nng_aio_set_msg(mb->rx_aio, NULL);
	HR_ASSERT(nng_msg_len(mb->cur) % MAIL_SIZE == 0);
	mb->cur_pos = 0;
	if ((mb->cur_n = msg_mails(mb->cur)) == 0) {
		nng_msg_free(mb->cur);
		mb->cur = NULL;
		mb->marker_seen = true;
	}
	return 0;
}

int
hr_mailbox_recv(hr_mailbox *mb, hr_mail *out, int timeout_ms)
{
	struct timespec until;
	nng_duration d;
	int rv;

	if (mb == NULL || out == NULL)
		return HR_EINVAL;
	if (mb->cur != NULL) {
		take(mb, out);
		return 0;
	}
	if (timeout_ms > 0)
		deadline_after(&until, timeout_ms);
	for (;;) {
		if (atomic_load(&mb->state) == MB_CLOSED) {
			/* Closed and nothing left. Take the marker if it came, so a
			 * loop polling the fd goes quiet. */
			if (rx_once(mb, NNG_DURATION_ZERO) == 0)
				HR_ASSERT(mb->cur == NULL);
			return HR_ECLOSED;
		}
		d = timeout_ms < 0    ? NNG_DURATION_INFINITE
		    : timeout_ms == 0 ? NNG_DURATION_ZERO
		                      : (nng_duration)ms_left(&until);
		rv = rx_once(mb, d);
		if (rv == 0 && mb->cur != NULL) {
			take(mb, out);
			return 0;
		}
		if (rv == 0)
			continue; /* the close marker */
		if (rv != NNG_ETIMEDOUT)
			return from_nng(rv);
		if (atomic_load(&mb->state) == MB_CLOSED)
			continue;
		return timeout_ms == 0 ? HR_EAGAIN : HR_ETIMEDOUT;
	}
}

size_t
hr_mailbox_buffered(const hr_mailbox *mb)
{
	return mb != NULL && mb->cur != NULL ? mb->cur_n - mb->cur_pos : 0;
}

int
hr_mailbox_fd(hr_mailbox *mb, int *fd)
{
	if (mb == NULL || fd == NULL)
		return HR_EINVAL;
	return nng_socket_get_int(mb->rx, NNG_OPT_RECVFD, fd) == 0 ? 0 : HR_EIO;
}

void
hr_mailbox_close(hr_mailbox *mb)
{
	uint64_t prev;
	nng_msg *m;

	if (mb == NULL)
		return;
	prev = atomic_fetch_or(&mb->state, MB_CLOSED);
	if (prev & MB_CLOSED)
		return;
	pthread_mutex_lock(&mb->lock);
	pthread_cond_broadcast(&mb->room);
	pthread_mutex_unlock(&mb->lock);
	/* With mail outstanding, its arrival wakes the receiver and its last
	 * recv sees the close. With none, the marker does (nng then holds no
	 * other message, so it never waits for room). */
	if (prev == 0 && (m = atomic_exchange(&mb->marker, NULL)) != NULL)
		atomic_store(&mb->marker_out, send_msg(mb, m) == 0);
}

void
hr_mailbox_destroy(hr_mailbox *mb)
{
	struct timespec until;
	hr_mail mail;
	nng_msg *m;

	if (mb == NULL)
		return;
	if (mb->have_lock && mb->have_room && mb->have_tx && mb->have_rx) {
		/* Posters woken by the close must be off the condition variable
		 * and the lock before they are destroyed. */
		hr_mailbox_close(mb);
		pthread_mutex_lock(&mb->lock);
		while (atomic_load(&mb->posters_waiting) > 0)
			(void)pthread_cond_wait(&mb->room, &mb->lock);
		pthread_mutex_unlock(&mb->lock);
		/* Alone now: every mail left reaches the drop function, including
		 * those still inside nng. */
		deadline_after(&until, DESTROY_WAIT_MS);
		while (atomic_load(&mb->state) != MB_CLOSED) {
			if (mb->cur == NULL) {
				int rv = rx_once(mb, (nng_duration)ms_left(&until));
				if (rv != 0)
					break;
				continue;
			}
			take(mb, &mail);
			if (mb->drop != NULL)
				mb->drop(mb->drop_arg, &mail);
		}
		HR_ASSERT(atomic_load(&mb->state) == MB_CLOSED);
		/* The close's marker, sent when nothing was outstanding, may still
		 * be crossing nng's threads, and nng does not free a message in
		 * flight when its sockets close: take it out first (bounded). */
		while (atomic_load(&mb->marker_out) && !mb->marker_seen
		    && rx_once(mb, (nng_duration)ms_left(&until)) == 0)
			HR_ASSERT(mb->cur == NULL);
	}
	if (mb->have_tx)
		(void)nng_close(mb->tx);
	if (mb->have_rx)
		(void)nng_close(mb->rx);
	if (mb->cur != NULL)
		nng_msg_free(mb->cur);
	if ((m = atomic_load(&mb->marker)) != NULL)
		nng_msg_free(m);
	if (mb->rx_aio != NULL)
		nng_aio_free(mb->rx_aio);
	if (mb->tx_aio != NULL)
		nng_aio_free(mb->tx_aio);
	if (mb->have_room)
		(void)pthread_cond_destroy(&mb->room);
	if (mb->have_lock)
		(void)pthread_mutex_destroy(&mb->lock);
	if (mb->have_tx_lock)
		(void)pthread_mutex_destroy(&mb->tx_lock);
	free(mb);
}
