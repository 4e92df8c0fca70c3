/*
 * mailbox.c: bounded many-producer, one-consumer FIFO of hr_mail (actor.h).
 * Producers are any thread; recv and destroy belong to the one consumer
 * thread; fd and close may be called from any thread.
 *
 * Why not nng
 * -----------
 * The first mailbox was an nng inproc push0/pull0 pair (the design allowed
 * either). Each mail then cost an nng_msg allocation and two
 * hand-offs between nng's internal task threads (push pipe -> inproc ->
 * pull pipe), so one producer feeding one consumer moved only 16,600-25,000
 * mails/s (depending on the load on the 2-core test VM), and a Redis drain
 * crosses three mailboxes per group_send (bridge -> router -> consumer ->
 * I/O thread): the node drained ~12,000 group_sends/s against a target of
 * 20,000. nng also could not bound a mailbox exactly (capacity
 * + 1 or + 2 mails, depending on when its task thread ran) and needed
 * counters to tell "empty" from "mail still in transit". This file is the other form the design
 * allowed: a ring under a mutex, woken through an eventfd only on the empty -> non-empty edge. Same
 * machine, same measurements, run alternately: 3.0-6.5 million mails/s one producer to one consumer
 * (capacity 1024; nng 16,600-25,000 in the same runs), and 100,000-143,000 group_sends/s drained
 * from Redis (bench/README "Through Redis", 50,000 prefilled; nng 8,800-12,400).
 *
 * Design
 * ------
 * A ring of exactly `capacity` hr_mail slots, allocated at create, under one
 * pthread mutex. A post copies its mail into the ring under the lock, so mail
 * is received in the global order in which posts completed: if thread A's
 * post returned before thread B started its post, A's mail comes first. (A
 * post still waiting for room has not completed and may be overtaken by a
 * later post that found room; that is the order of completion too.) Full
 * means `count == capacity`, exactly, with or without a consumer.
 *
 * Waiting: blocked posters wait on `room`, the receiver on `mail`, both
 * condition variables on CLOCK_MONOTONIC (timeouts are per call: 0 never
 * waits, > 0 waits until a deadline, < 0 until woken). Each side is signalled
 * only when someone waits on it (the waiter counts are under the lock), so an
 * uncontended post or recv is a lock, a copy and an unlock.
 *
 * The fd: an eventfd (sys_event.c), raised on the empty -> non-empty edge
 * and cleared when the consumer takes the last mail, both under the lock, so
 * it polls readable exactly while mail is waiting (and, after close, until a
 * recv has reported HR_ECLOSED, so a loop polling it sees the close). It is
 * kept in step only once hr_mailbox_fd has been called: actor threads block
 * in recv and never poll it, and they pay no system call per edge.
 *
 * Close sets `closed` under the lock and wakes every waiter: posts fail with
 * HR_ECLOSED from then on, recv hands out what is queued and then HR_ECLOSED.
 * Destroy waits for woken posters to leave, then drops what is left.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "actors/actor_impl.h"

struct hr_mailbox {
	pthread_mutex_t lock;
	pthread_cond_t room; /* posters wait here for a free slot (and destroy for them) */
	pthread_cond_t mail; /* the receiver waits here for mail */
	hr_mail *ring;       /* {lock} `cap` slots */
	size_t cap;
	size_t head;              /* {lock} oldest mail */
	size_t count;             /* {lock} mails queued */
	unsigned posters_waiting; /* {lock} */
	bool receiver_waiting;    /* {lock} */
	bool closed;              /* {lock} */
	bool eof_seen;            /* {lock} a recv has returned HR_ECLOSED */
	bool fd_armed;            /* {lock} hr_mailbox_fd was called: keep efd in step */
	bool raised;              /* {lock} efd is readable */
	int efd;
	bool have_lock, have_room, have_mail;
	hr_mail_drop_fn drop;
	void *drop_arg;
};

/* Make the eventfd's readability match the queue. Under the lock. */
static void
sync_fd(hr_mailbox *mb)
{
	bool want;

	if (!mb->fd_armed)
		return;
	want = mb->count > 0 || (mb->closed && !mb->eof_seen);
	if (want == mb->raised)
		return;
	if (want)
		hr_sys__event_raise(mb->efd);
	else
		hr_sys__event_clear(mb->efd);
	mb->raised = want;
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

/* Wait on cv (lock held): false once the deadline has passed. */
static bool
wait_on(hr_mailbox *mb, pthread_cond_t *cv, int timeout_ms, const struct timespec *until)
{
	if (timeout_ms < 0) {
		(void)pthread_cond_wait(cv, &mb->lock);
		return true;
	}
	return pthread_cond_timedwait(cv, &mb->lock, until) != ETIMEDOUT;
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

int
hr_mailbox_create(hr_mailbox **out, size_t capacity, hr_mail_drop_fn drop, void *drop_arg)
{
	hr_mailbox *mb;
	int rv;

	if (out == NULL || capacity == 0 || capacity > HR_MAILBOX_MAX_CAPACITY)
		return HR_EINVAL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return HR_ENOMEM;
	mb->efd = -1;
	mb->cap = capacity;
	mb->drop = drop;
	mb->drop_arg = drop_arg;
	rv = HR_ENOMEM;
	if ((mb->ring = calloc(capacity, sizeof(*mb->ring))) == NULL)
		goto fail;
	if (pthread_mutex_init(&mb->lock, NULL) != 0)
		goto fail;
	mb->have_lock = true;
	if ((rv = init_cond(&mb->room)) != 0)
		goto fail;
	mb->have_room = true;
	if ((rv = init_cond(&mb->mail)) != 0)
		goto fail;
	mb->have_mail = true;
	if ((rv = hr_sys__event_open(&mb->efd)) != 0)
		goto fail;
	*out = mb;
	return 0;
fail:
	hr_mailbox_destroy(mb);
	return rv;
}

int
hr_mailbox_post(hr_mailbox *mb, const hr_mail *mail, int timeout_ms)
{
	struct timespec until;
	int rv = 0;

	if (mb == NULL || mail == NULL)
		return HR_EINVAL;
	if (timeout_ms > 0)
		deadline_after(&until, timeout_ms);
	pthread_mutex_lock(&mb->lock);
	for (;;) {
		if (mb->closed) {
			rv = HR_ECLOSED;
			break;
		}
		if (mb->count < mb->cap)
			break;
		if (timeout_ms == 0) {
			rv = HR_EAGAIN;
			break;
		}
		mb->posters_waiting++;
		bool in_time = wait_on(mb, &mb->room, timeout_ms, &until);
		mb->posters_waiting--;
		if (mb->closed && mb->posters_waiting == 0)
			pthread_cond_broadcast(&mb->room); /* destroy may wait for us */
		if (!in_time && !mb->closed && mb->count == mb->cap) {
			rv = HR_ETIMEDOUT;
			break;
		}
	}
	if (rv == 0) {
		size_t tail = mb->head + mb->count;
		mb->ring[tail < mb->cap ? tail : tail - mb->cap] = *mail;
		mb->count++;
		if (mb->receiver_waiting)
			pthread_cond_signal(&mb->mail);
		sync_fd(mb);
	}
	pthread_mutex_unlock(&mb->lock);
	return rv;
}

int
hr_mailbox_recv(hr_mailbox *mb, hr_mail *out, int timeout_ms)
{
	struct timespec until;
	int rv = 0;

	if (mb == NULL || out == NULL)
		return HR_EINVAL;
	if (timeout_ms > 0)
		deadline_after(&until, timeout_ms);
	pthread_mutex_lock(&mb->lock);
	for (;;) {
		if (mb->count > 0) {
			*out = mb->ring[mb->head];
			mb->head = mb->head + 1 < mb->cap ? mb->head + 1 : 0;
			mb->count--;
			if (mb->posters_waiting > 0)
				pthread_cond_signal(&mb->room);
			break;
		}
		if (mb->closed) {
			mb->eof_seen = true;
			rv = HR_ECLOSED;
			break;
		}
		if (timeout_ms == 0) {
			rv = HR_EAGAIN;
			break;
		}
		mb->receiver_waiting = true;
		bool in_time = wait_on(mb, &mb->mail, timeout_ms, &until);
		mb->receiver_waiting = false;
		if (!in_time && mb->count == 0 && !mb->closed) {
			rv = HR_ETIMEDOUT;
			break;
		}
	}
	sync_fd(mb);
	pthread_mutex_unlock(&mb->lock);
	return rv;
}

int
hr_mailbox_fd(hr_mailbox *mb, int *fd)
{
	if (mb == NULL || fd == NULL)
		return HR_EINVAL;
	pthread_mutex_lock(&mb->lock);
	mb->fd_armed = true;
	sync_fd(mb); /* mail posted before the first call counts too */
	pthread_mutex_unlock(&mb->lock);
	*fd = mb->efd;
	return 0;
}

void
hr_mailbox_close(hr_mailbox *mb)
{
	if (mb == NULL)
		return;
	pthread_mutex_lock(&mb->lock);
	if (!mb->closed) {
		mb->closed = true;
		pthread_cond_broadcast(&mb->room);
		pthread_cond_broadcast(&mb->mail);
		sync_fd(mb);
	}
	pthread_mutex_unlock(&mb->lock);
}

void
hr_mailbox_destroy(hr_mailbox *mb)
{
	hr_mail mail;

	if (mb == NULL)
		return;
	if (mb->have_lock && mb->have_room && mb->have_mail) {
		/* Posters woken by the close must be off the condition variable
		 * and the lock before they are destroyed. */
		hr_mailbox_close(mb);
		pthread_mutex_lock(&mb->lock);
		while (mb->posters_waiting > 0)
			(void)pthread_cond_wait(&mb->room, &mb->lock);
		pthread_mutex_unlock(&mb->lock);
		/* Alone now: every mail left reaches the drop function. */
		while (mb->count > 0) {
			mail = mb->ring[mb->head];
			mb->head = mb->head + 1 < mb->cap ? mb->head + 1 : 0;
			mb->count--;
			if (mb->drop != NULL)
				mb->drop(mb->drop_arg, &mail);
		}
	}
	hr_sys__event_close(mb->efd);
	if (mb->have_mail)
		(void)pthread_cond_destroy(&mb->mail);
	if (mb->have_room)
		(void)pthread_cond_destroy(&mb->room);
	if (mb->have_lock)
		(void)pthread_mutex_destroy(&mb->lock);
	free(mb->ring);
	free(mb);
}
