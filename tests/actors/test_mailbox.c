/*
 * test_mailbox.c: hr_mailbox_* (actors/mailbox.c): FIFO, exact capacity,
 * timeouts, close and destroy semantics (also with mail still inside nng or
 * in an unsent batch), the pollable fd, cross-thread ordering, and the batch
 * scope (when batches are sent, order under several batching producers).
 *
 * A post hands its mail to nng before it returns, but the mail reaches the
 * receiving socket through nng's own threads a few microseconds later: the
 * first recv after a post waits (a timeout, or the fd) instead of recv(0).
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "actors/actor_impl.h"

static atomic_int drops;
static uint64_t drop_sum;

static void
count_drop(void *arg, hr_mail *m)
{
	cr_assert_eq(arg, &drops);
	atomic_fetch_add(&drops, 1);
	drop_sum += m->u64;
}

static hr_mail
mail_n(uint64_t n)
{
	hr_mail m = { .kind = HR_MAIL_USER, .u32 = (uint32_t)n, .u64 = n, .p1 = NULL, .p2 = NULL };
	return m;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool
fd_readable(int fd, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rv = poll(&p, 1, wait_ms);
	cr_assert(rv >= 0);
	return rv == 1 && (p.revents & POLLIN);
}

TestSuite(mailbox, .timeout = 20);

Test(mailbox, fifo_order_and_values_are_kept)
{
	hr_mailbox *mb;
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 64, NULL, NULL), 0);
	for (uint64_t i = 0; i < 50; i++) {
		m = mail_n(i);
		m.p1 = (void *)(uintptr_t)(i + 1);
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	}
	for (uint64_t i = 0; i < 50; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
		cr_assert_eq(m.u32, (uint32_t)i);
		cr_assert_eq(m.kind, HR_MAIL_USER);
		cr_assert_eq(m.p1, (void *)(uintptr_t)(i + 1));
	}
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_EAGAIN);
	hr_mailbox_destroy(mb);
}

Test(mailbox, bad_arguments_are_refused)
{
	hr_mailbox *mb = NULL;
	cr_assert_eq(hr_mailbox_create(&mb, 0, NULL, NULL), HR_EINVAL);
	cr_assert_eq(hr_mailbox_create(&mb, HR_MAILBOX_MAX_CAPACITY + 1, NULL, NULL), HR_EINVAL);
	cr_assert_null(mb);
	hr_mailbox_destroy(NULL);
}

Test(mailbox, full_mailbox_holds_exactly_its_capacity)
{
	const size_t caps[] = { 1, 8, 100, 1000 };
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		hr_mailbox *mb;
		hr_mail m = mail_n(0);
		size_t n = 0;
		int rv = 0;
		cr_assert_eq(hr_mailbox_create(&mb, caps[c], NULL, NULL), 0);
		while (n < caps[c] + 100 && (rv = hr_mailbox_post(mb, &m, 0)) == 0)
			n++;
		cr_assert_eq(rv, HR_EAGAIN);
		cr_assert_eq(n, caps[c], "capacity %zu accepted %zu", caps[c], n);
		/* Everything accepted comes out, in order, and then room again. */
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_EAGAIN);
		cr_assert_eq(hr_mailbox_post(mb, &m, 1000), 0);
		hr_mailbox_destroy(mb);
	}
}

Test(mailbox, timed_post_on_full_mailbox_times_out)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(7);
	int rv, n = 0;
	cr_assert_eq(hr_mailbox_create(&mb, 4, count_drop, &drops), 0);
	while (n < 100 && (rv = hr_mailbox_post(mb, &m, 0)) == 0)
		n++;
	cr_assert_eq(rv, HR_EAGAIN);
	cr_assert_eq(n, 4, "accepted %d", n);
	cr_assert_eq(hr_mailbox_post(mb, &m, 30), HR_ETIMEDOUT);
	double t0 = now_ms();
	cr_assert_eq(hr_mailbox_post(mb, &m, 100), HR_ETIMEDOUT);
	double dt = now_ms() - t0;
	cr_assert(dt >= 90 && dt < 2000, "waited %.1f ms", dt);
	/* The failed posts did not leak into the mailbox. */
	hr_mailbox_destroy(mb);
	cr_assert_eq(atomic_load(&drops), n);
}

static void *
late_consumer(void *arg)
{
	hr_mailbox *mb = arg;
	hr_mail m;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	return NULL;
}

Test(mailbox, timed_post_succeeds_when_room_appears)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(1);
	pthread_t t;
	int n = 0;
	cr_assert_eq(hr_mailbox_create(&mb, 2, NULL, NULL), 0);
	while (n < 100 && hr_mailbox_post(mb, &m, 0) == 0)
		n++;
	cr_assert_eq(pthread_create(&t, NULL, late_consumer, mb), 0);
	cr_assert_eq(hr_mailbox_post(mb, &m, 5000), 0);
	pthread_join(t, NULL);
	hr_mailbox_destroy(mb);
}

Test(mailbox, recv_timeout_on_empty)
{
	hr_mailbox *mb;
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 4, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_EAGAIN);
	double t0 = now_ms();
	cr_assert_eq(hr_mailbox_recv(mb, &m, 50), HR_ETIMEDOUT);
	cr_assert(now_ms() - t0 >= 45);
	hr_mailbox_destroy(mb);
}

Test(mailbox, close_refuses_posts_and_drains_then_closed)
{
	hr_mailbox *mb;
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 16, count_drop, &drops), 0);
	for (uint64_t i = 0; i < 5; i++) {
		m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	}
	hr_mailbox_close(mb);
	hr_mailbox_close(mb); /* idempotent */
	m = mail_n(99);
	cr_assert_eq(hr_mailbox_post(mb, &m, 0), HR_ECLOSED);
	cr_assert_eq(hr_mailbox_post(mb, &m, 100), HR_ECLOSED);
	cr_assert_eq(hr_mailbox_post(mb, &m, -1), HR_ECLOSED);
	for (uint64_t i = 0; i < 5; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
	}
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_ECLOSED);
	cr_assert_eq(hr_mailbox_recv(mb, &m, -1), HR_ECLOSED);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 100), HR_ECLOSED);
	hr_mailbox_destroy(mb);
	cr_assert_eq(atomic_load(&drops), 0);
}

Test(mailbox, close_on_full_mailbox_does_not_block)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(3);
	int n = 0;
	cr_assert_eq(hr_mailbox_create(&mb, 2, count_drop, &drops), 0);
	while (n < 100 && hr_mailbox_post(mb, &m, 0) == 0)
		n++;
	hr_mailbox_close(mb);
	for (int i = 0; i < n; i++)
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), HR_ECLOSED);
	hr_mailbox_destroy(mb);
	cr_assert_eq(atomic_load(&drops), 0);
}

Test(mailbox, destroy_drops_every_queued_mail)
{
	hr_mailbox *mb;
	hr_mail m;
	uint64_t want = 0;
	cr_assert_eq(hr_mailbox_create(&mb, 64, count_drop, &drops), 0);
	for (uint64_t i = 1; i <= 40; i++) {
		m = mail_n(i);
		want += i;
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	}
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	want -= m.u64;
	hr_mailbox_destroy(mb);
	cr_assert_eq(atomic_load(&drops), 39);
	cr_assert_eq(drop_sum, want);
}

Test(mailbox, fd_is_readable_exactly_while_mail_waits)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(1);
	int fd;
	cr_assert_eq(hr_mailbox_create(&mb, 16, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_fd(mb, &fd), 0);
	cr_assert(fd >= 0);
	cr_assert_not(fd_readable(fd, 0));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	/* Readable once the mail is through nng, and it stays readable
	 * (level) while mail waits. */
	cr_assert(fd_readable(fd, 1000));
	cr_assert(fd_readable(fd, 0));
	for (int i = 0; i < 3; i++) {
		/* the later messages may still be crossing nng's threads */
		cr_assert(fd_readable(fd, 1000));
		cr_assert_eq(hr_mailbox_recv(mb, &m, 0), 0);
	}
	/* All posted mail received: not readable. */
	cr_assert_not(fd_readable(fd, 0));
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_EAGAIN);
	cr_assert_not(fd_readable(fd, 20));
	hr_mailbox_destroy(mb);
}

Test(mailbox, fd_taken_late_reflects_mail_already_waiting_and_close)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(1);
	int fd;
	cr_assert_eq(hr_mailbox_create(&mb, 4, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	cr_assert_eq(hr_mailbox_fd(mb, &fd), 0);
	cr_assert(fd_readable(fd, 1000));
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), 0);
	cr_assert_not(fd_readable(fd, 0));
	/* Close is an event for a loop polling the fd: readable until a recv
	 * has reported it, then quiet. */
	hr_mailbox_close(mb);
	cr_assert(fd_readable(fd, 1000));
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_ECLOSED);
	cr_assert_not(fd_readable(fd, 20));
	hr_mailbox_destroy(mb);
}

static void *
blocked_poster(void *arg)
{
	hr_mailbox *mb = arg;
	hr_mail m = mail_n(9);
	return (void *)(intptr_t)hr_mailbox_post(mb, &m, -1);
}

Test(mailbox, close_wakes_a_blocked_poster_with_eclosed)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(1);
	pthread_t t;
	void *res;
	cr_assert_eq(hr_mailbox_create(&mb, 1, count_drop, &drops), 0);
	cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, blocked_poster, mb), 0);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	hr_mailbox_close(mb);
	cr_assert_eq(pthread_join(t, &res), 0);
	cr_assert_eq((int)(intptr_t)res, HR_ECLOSED);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	cr_assert_eq(m.u64, 1);
	cr_assert_eq(hr_mailbox_recv(mb, &m, -1), HR_ECLOSED);
	hr_mailbox_destroy(mb);
	cr_assert_eq(atomic_load(&drops), 0);
}

/* A loop that only polls the fd and drains with recv(0) until HR_EAGAIN (as
 * an I/O thread does) never misses mail: every wake-up it waits for comes. */
#define FD_LOOP_MAILS 20000
static void *
fd_loop_poster(void *arg)
{
	hr_mailbox *mb = arg;
	for (uint64_t i = 0; i < FD_LOOP_MAILS; i++) {
		hr_mail m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(mb, &m, 5000), 0);
	}
	return NULL;
}

Test(mailbox, fd_loop_with_nonblocking_drain_misses_nothing)
{
	hr_mailbox *mb;
	hr_mail m;
	pthread_t t;
	int fd, rv;
	uint64_t next = 0;
	cr_assert_eq(hr_mailbox_create(&mb, 8, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_fd(mb, &fd), 0);
	cr_assert_eq(pthread_create(&t, NULL, fd_loop_poster, mb), 0);
	for (int wakes = 0; next < FD_LOOP_MAILS && wakes < FD_LOOP_MAILS * 4; wakes++) {
		cr_assert(fd_readable(fd, 5000), "no wake-up with %llu of %d received",
		    (unsigned long long)next, FD_LOOP_MAILS);
		while ((rv = hr_mailbox_recv(mb, &m, 0)) == 0) {
			cr_assert_eq(m.u64, next);
			next++;
		}
		cr_assert_eq(rv, HR_EAGAIN);
	}
	cr_assert_eq(next, FD_LOOP_MAILS);
	pthread_join(t, NULL);
	cr_assert_not(fd_readable(fd, 0));
	hr_mailbox_destroy(mb);
}

/* Thread A posts, then signals B, which posts: A's mail must come first. */
#define ORDER_ROUNDS 2000
typedef struct order_ctx {
	hr_mailbox *mb;
	atomic_int turn; /* round number B may post in */
} order_ctx;

static void *
order_a(void *arg)
{
	order_ctx *c = arg;
	for (int r = 0; r < ORDER_ROUNDS; r++) {
		hr_mail m = mail_n((uint64_t)r * 2);
		cr_assert_eq(hr_mailbox_post(c->mb, &m, -1), 0);
		atomic_store(&c->turn, r + 1);
		/* Wait (bounded) until B posted this round. */
		for (long spin = 0; atomic_load(&c->turn) != -(r + 1); spin++)
			cr_assert(spin < 2000000000L);
	}
	return NULL;
}

static void *
order_b(void *arg)
{
	order_ctx *c = arg;
	for (int r = 0; r < ORDER_ROUNDS; r++) {
		for (long spin = 0; atomic_load(&c->turn) != r + 1; spin++)
			cr_assert(spin < 2000000000L);
		hr_mail m = mail_n((uint64_t)r * 2 + 1);
		cr_assert_eq(hr_mailbox_post(c->mb, &m, -1), 0);
		atomic_store(&c->turn, -(r + 1));
	}
	return NULL;
}

Test(mailbox, mail_is_received_in_the_order_posts_completed)
{
	order_ctx c;
	pthread_t a, b;
	hr_mail m;
	atomic_init(&c.turn, 0);
	cr_assert_eq(hr_mailbox_create(&c.mb, 8, NULL, NULL), 0);
	cr_assert_eq(pthread_create(&a, NULL, order_a, &c), 0);
	cr_assert_eq(pthread_create(&b, NULL, order_b, &c), 0);
	for (uint64_t i = 0; i < 2 * ORDER_ROUNDS; i++) {
		cr_assert_eq(hr_mailbox_recv(c.mb, &m, 5000), 0);
		cr_assert_eq(m.u64, i, "got %llu, expected %llu", (unsigned long long)m.u64,
		    (unsigned long long)i);
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	cr_assert_eq(hr_mailbox_recv(c.mb, &m, 0), HR_EAGAIN);
	hr_mailbox_destroy(c.mb);
}

/* Many producers: each one's mail arrives in its own order, none lost. */
#define PRODUCERS 4
#define PER_PRODUCER 5000
typedef struct prod_ctx {
	hr_mailbox *mb;
	uint32_t id;
} prod_ctx;

static void *
producer(void *arg)
{
	prod_ctx *p = arg;
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		hr_mail m = { .kind = HR_MAIL_USER, .u32 = p->id, .u64 = i };
		cr_assert_eq(hr_mailbox_post(p->mb, &m, 5000), 0);
	}
	return NULL;
}

Test(mailbox, many_producers_keep_per_sender_order)
{
	hr_mailbox *mb;
	pthread_t t[PRODUCERS];
	prod_ctx p[PRODUCERS];
	uint64_t next[PRODUCERS] = { 0 };
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 32, NULL, NULL), 0);
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		p[i] = (prod_ctx) { mb, i };
		cr_assert_eq(pthread_create(&t[i], NULL, producer, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 5000), 0);
		cr_assert(m.u32 < PRODUCERS);
		cr_assert_eq(m.u64, next[m.u32]);
		next[m.u32]++;
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	hr_mailbox_close(mb);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), HR_ECLOSED);
	hr_mailbox_destroy(mb);
}

/* ---------------------------------------------------------------- nng and batches */

static void *
blocked_receiver(void *arg)
{
	hr_mailbox *mb = arg;
	hr_mail m;
	return (void *)(intptr_t)hr_mailbox_recv(mb, &m, -1);
}

Test(mailbox, close_wakes_a_blocked_recv_with_eclosed)
{
	hr_mailbox *mb;
	pthread_t t;
	void *res;
	cr_assert_eq(hr_mailbox_create(&mb, 4, NULL, NULL), 0);
	cr_assert_eq(pthread_create(&t, NULL, blocked_receiver, mb), 0);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	hr_mailbox_close(mb);
	cr_assert_eq(pthread_join(t, &res), 0);
	cr_assert_eq((int)(intptr_t)res, HR_ECLOSED);
	hr_mailbox_destroy(mb);
}

Test(mailbox, destroy_drops_mail_still_inside_nng)
{
	/* Posted and destroyed at once: most of it is still in nng's queues
	 * or crossing its threads. Each mail is dropped exactly once. */
	for (int round = 0; round < 20; round++) {
		hr_mailbox *mb;
		uint64_t want = 0;
		atomic_store(&drops, 0);
		drop_sum = 0;
		cr_assert_eq(hr_mailbox_create(&mb, 1000, count_drop, &drops), 0);
		for (uint64_t i = 1; i <= 1000; i++) {
			hr_mail m = mail_n(i);
			want += i;
			cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
		}
		hr_mailbox_destroy(mb);
		cr_assert_eq(atomic_load(&drops), 1000);
		cr_assert_eq(drop_sum, want);
	}
}

Test(mailbox, a_batch_is_sent_at_scope_end_not_before)
{
	hr_mailbox *mb;
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 64, NULL, NULL), 0);
	hr_mailbox_batch_begin();
	for (uint64_t i = 0; i < 10; i++) {
		m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	}
	/* Batched: not in nng yet. */
	cr_assert_eq(hr_mailbox_recv(mb, &m, 50), HR_ETIMEDOUT);
	hr_mailbox_batch_end();
	for (uint64_t i = 0; i < 10; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
		/* One nng message: the rest is buffered, and recv(0) hands it
		 * out without waiting. */
		cr_assert_eq(hr_mailbox_buffered(mb), 9 - i);
	}
	cr_assert_eq(hr_mailbox_recv(mb, &m, 0), HR_EAGAIN);
	hr_mailbox_destroy(mb);
}

Test(mailbox, a_full_batch_is_sent_at_once)
{
	hr_mailbox *mb;
	hr_mail m;
	int fd;
	cr_assert_eq(hr_mailbox_create(&mb, 1000, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_fd(mb, &fd), 0);
	hr_mailbox_batch_begin();
	for (uint64_t i = 0; i < HR_MAILBOX_BATCH + 5; i++) {
		m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	}
	/* The first HR_MAILBOX_BATCH went as one message; the last 5 wait. */
	cr_assert(fd_readable(fd, 1000));
	for (uint64_t i = 0; i < HR_MAILBOX_BATCH; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
	}
	cr_assert_eq(hr_mailbox_recv(mb, &m, 50), HR_ETIMEDOUT);
	cr_assert_not(fd_readable(fd, 0));
	hr_mailbox_flush(); /* sends now; the scope stays open */
	for (uint64_t i = HR_MAILBOX_BATCH; i < HR_MAILBOX_BATCH + 5; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
	}
	hr_mailbox_batch_end();
	cr_assert_eq(hr_mailbox_recv(mb, &m, 20), HR_ETIMEDOUT);
	hr_mailbox_destroy(mb);
}

Test(mailbox, batched_mail_counts_against_capacity_and_full_sends_it)
{
	hr_mailbox *mb;
	hr_mail m = mail_n(5);
	int n = 0, rv;
	cr_assert_eq(hr_mailbox_create(&mb, 8, NULL, NULL), 0);
	hr_mailbox_batch_begin();
	while (n < 100 && (rv = hr_mailbox_post(mb, &m, 0)) == 0)
		n++;
	cr_assert_eq(rv, HR_EAGAIN);
	cr_assert_eq(n, 8, "accepted %d", n);
	/* Finding the box full sent this thread's batch, so the receiver can
	 * make room even though the scope is still open. */
	for (int i = 0; i < 8; i++)
		cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	cr_assert_eq(hr_mailbox_post(mb, &m, 0), 0);
	hr_mailbox_batch_end();
	cr_assert_eq(hr_mailbox_recv(mb, &m, 1000), 0);
	hr_mailbox_destroy(mb);
}

Test(mailbox, scoped_and_direct_posts_of_one_thread_keep_their_order)
{
	hr_mailbox *a, *b;
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&a, 64, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_create(&b, 64, NULL, NULL), 0);
	m = mail_n(0);
	cr_assert_eq(hr_mailbox_post(a, &m, 0), 0);
	hr_mailbox_batch_begin();
	for (uint64_t i = 1; i <= 3; i++) {
		m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(a, &m, 0), 0);
		m = mail_n(100 + i);
		cr_assert_eq(hr_mailbox_post(b, &m, 0), 0);
	}
	hr_mailbox_batch_begin(); /* nested: only the outer end matters */
	m = mail_n(4);
	cr_assert_eq(hr_mailbox_post(a, &m, 0), 0);
	hr_mailbox_batch_end();
	m = mail_n(5);
	cr_assert_eq(hr_mailbox_post(a, &m, 0), 0);
	hr_mailbox_batch_end();
	m = mail_n(6);
	cr_assert_eq(hr_mailbox_post(a, &m, 0), 0);
	for (uint64_t i = 0; i <= 6; i++) {
		cr_assert_eq(hr_mailbox_recv(a, &m, 1000), 0);
		cr_assert_eq(m.u64, i);
	}
	for (uint64_t i = 1; i <= 3; i++) {
		cr_assert_eq(hr_mailbox_recv(b, &m, 1000), 0);
		cr_assert_eq(m.u64, 100 + i);
	}
	hr_mailbox_destroy(a);
	hr_mailbox_destroy(b);
}

/* Several producers, each posting in scopes of varying size (1 to 150 mails,
 * so some batches fill and some are sent at the scope's end), into a small
 * mailbox: each one's mail arrives in its own order, none lost. */
static void *
scoped_producer(void *arg)
{
	prod_ctx *p = arg;
	uint64_t i = 0;
	unsigned seed = p->id * 7919u + 1;
	while (i < PER_PRODUCER) {
		seed = seed * 1103515245u + 12345u;
		uint64_t k = 1 + (seed >> 16) % 150;
		hr_mailbox_batch_begin();
		for (; k > 0 && i < PER_PRODUCER; k--, i++) {
			hr_mail m = { .kind = HR_MAIL_USER, .u32 = p->id, .u64 = i };
			cr_assert_eq(hr_mailbox_post(p->mb, &m, 5000), 0);
		}
		hr_mailbox_batch_end();
	}
	return NULL;
}

Test(mailbox, scoped_producers_keep_per_sender_order)
{
	hr_mailbox *mb;
	pthread_t t[PRODUCERS];
	prod_ctx p[PRODUCERS];
	uint64_t next[PRODUCERS] = { 0 };
	hr_mail m;
	cr_assert_eq(hr_mailbox_create(&mb, 100, NULL, NULL), 0);
	for (uint32_t i = 0; i < PRODUCERS; i++) {
		p[i] = (prod_ctx) { mb, i };
		cr_assert_eq(pthread_create(&t[i], NULL, scoped_producer, &p[i]), 0);
	}
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++) {
		cr_assert_eq(hr_mailbox_recv(mb, &m, 5000), 0);
		cr_assert(m.u32 < PRODUCERS);
		cr_assert_eq(m.u64, next[m.u32]);
		next[m.u32]++;
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(hr_mailbox_recv(mb, &m, 20), HR_ETIMEDOUT);
	hr_mailbox_destroy(mb);
}

typedef struct pending_ctx {
	hr_mailbox *mb;
	atomic_int stage; /* 1: batch posted; 2: mailbox closed */
	int late_rv;
} pending_ctx;

static void *
pending_batcher(void *arg)
{
	pending_ctx *c = arg;
	hr_mailbox_batch_begin();
	for (uint64_t i = 0; i < 5; i++) {
		hr_mail m = mail_n(i);
		cr_assert_eq(hr_mailbox_post(c->mb, &m, 0), 0);
	}
	atomic_store(&c->stage, 1);
	while (atomic_load(&c->stage) != 2)
		sched_yield();
	hr_mail late = mail_n(99);
	c->late_rv = hr_mailbox_post(c->mb, &late, 0);
	hr_mailbox_batch_end(); /* after the close: still delivered */
	return NULL;
}

Test(mailbox, close_with_mail_in_an_unsent_batch_still_delivers_it)
{
	pending_ctx c = { .late_rv = 0 };
	pthread_t t;
	hr_mail m;
	atomic_init(&c.stage, 0);
	cr_assert_eq(hr_mailbox_create(&c.mb, 16, count_drop, &drops), 0);
	cr_assert_eq(pthread_create(&t, NULL, pending_batcher, &c), 0);
	while (atomic_load(&c.stage) != 1)
		sched_yield();
	hr_mailbox_close(c.mb);
	atomic_store(&c.stage, 2);
	/* The receiver waits for the five accepted mails, then sees the close. */
	for (uint64_t i = 0; i < 5; i++) {
		cr_assert_eq(hr_mailbox_recv(c.mb, &m, -1), 0);
		cr_assert_eq(m.u64, i);
	}
	cr_assert_eq(hr_mailbox_recv(c.mb, &m, -1), HR_ECLOSED);
	pthread_join(t, NULL);
	cr_assert_eq(c.late_rv, HR_ECLOSED);
	hr_mailbox_destroy(c.mb);
	cr_assert_eq(atomic_load(&drops), 0);
}

/*
 * Accounting under timeouts, as the router posts to a consumer (a short
 * timeout, in a drain's scope) and the consumer to an fd-polled I/O thread:
 * batching producers whose posts often time out on a small mailbox, and a
 * consumer that stalls now and then. Every post that returned 0 must be
 * received exactly once, every other one must have been refused with
 * HR_ETIMEDOUT, and once the producers' scopes have ended, what they had
 * accepted all arrives (no mail counted and left behind in a batch or in nng).
 */
#define ACCT_PRODUCERS 3
#define ACCT_PER_PRODUCER 6000
#define ACCT_SCOPE 50

typedef struct acct_ctx {
	hr_mailbox *mb;
	uint32_t id;
	int accepted, timed_out, other;
	uint8_t ok[ACCT_PER_PRODUCER]; /* posts that returned 0 */
	atomic_int *done;
} acct_ctx;

static void *
acct_producer(void *arg)
{
	acct_ctx *c = arg;
	for (int i = 0; i < ACCT_PER_PRODUCER;) {
		hr_mailbox_batch_begin();
		for (int k = 0; k < ACCT_SCOPE && i < ACCT_PER_PRODUCER; k++, i++) {
			hr_mail m = { .kind = HR_MAIL_USER, .u32 = c->id, .u64 = (uint64_t)i };
			int rv = hr_mailbox_post(c->mb, &m, 1);
			if (rv == 0) {
				c->ok[i] = 1;
				c->accepted++;
			} else if (rv == HR_ETIMEDOUT) {
				c->timed_out++;
			} else {
				c->other++;
			}
		}
		hr_mailbox_batch_end();
	}
	atomic_fetch_add(c->done, 1);
	return NULL;
}

static uint8_t acct_seen[ACCT_PRODUCERS][ACCT_PER_PRODUCER];

static void
acct_take(const hr_mail *m, int *received)
{
	cr_assert(m->u32 < ACCT_PRODUCERS && m->u64 < ACCT_PER_PRODUCER);
	cr_assert_eq(acct_seen[m->u32][m->u64], 0, "mail %u/%llu received twice", m->u32,
	    (unsigned long long)m->u64);
	acct_seen[m->u32][m->u64] = 1;
	(*received)++;
}

Test(mailbox, every_accepted_post_arrives_once_while_others_time_out)
{
	static acct_ctx p[ACCT_PRODUCERS];
	const struct timespec stall = { .tv_sec = 0, .tv_nsec = 5000000L };
	pthread_t t[ACCT_PRODUCERS];
	atomic_int done = 0;
	hr_mailbox *mb;
	hr_mail m;
	int fd, rv, received = 0, accepted = 0, timed_out = 0;

	cr_assert_eq(hr_mailbox_create(&mb, 16, NULL, NULL), 0);
	cr_assert_eq(hr_mailbox_fd(mb, &fd), 0);
	for (uint32_t i = 0; i < ACCT_PRODUCERS; i++) {
		p[i] = (acct_ctx) { .mb = mb, .id = i, .done = &done };
		cr_assert_eq(pthread_create(&t[i], NULL, acct_producer, &p[i]), 0);
	}
	/* The I/O thread's loop, stalling every 7th wake-up so posts time out. */
	for (int wakes = 0; atomic_load(&done) < ACCT_PRODUCERS;) {
		if (!fd_readable(fd, 50))
			continue;
		if (++wakes % 7 == 0)
			(void)nanosleep(&stall, NULL);
		for (int i = 0; i < 32 || hr_mailbox_buffered(mb) > 0; i++) {
			if ((rv = hr_mailbox_recv(mb, &m, 0)) != 0) {
				cr_assert_eq(rv, HR_EAGAIN);
				break;
			}
			acct_take(&m, &received);
		}
	}
	for (int i = 0; i < ACCT_PRODUCERS; i++)
		pthread_join(t[i], NULL);
	/* Every scope has ended: the rest is in nng or crossing its threads. */
	while ((rv = hr_mailbox_recv(mb, &m, 1000)) == 0)
		acct_take(&m, &received);
	cr_assert_eq(rv, HR_ETIMEDOUT);
	for (int i = 0; i < ACCT_PRODUCERS; i++) {
		cr_assert_eq(p[i].other, 0);
		cr_assert_eq(p[i].accepted + p[i].timed_out, ACCT_PER_PRODUCER);
		accepted += p[i].accepted;
		timed_out += p[i].timed_out;
		for (int k = 0; k < ACCT_PER_PRODUCER; k++)
			cr_assert_eq(acct_seen[i][k], p[i].ok[k],
			    "mail %d/%d: accepted %d, received %d", i, k, p[i].ok[k],
			    acct_seen[i][k]);
	}
	cr_assert_eq(received, accepted);
	cr_assert_gt(timed_out, 0, "no post timed out: the test did not test that");
	cr_assert_not(fd_readable(fd, 0));
	hr_mailbox_destroy(mb);
}
