/*
 * mailbox_bench.c: the mailbox alone (actors/mailbox.c), as herald uses it.
 * Prints one line per workload: mails/s, process CPU (every thread, nng's
 * included) per mail, and for the paced workloads the one-way latency.
 *
 *   1p-direct    one producer, each post sent on its own (an HTTP handler)
 *   1p-batched   one producer posting in scopes of 256 (an actor's drain)
 *   2p-batched   two such producers into one mailbox
 *   3-hops       a producer (the Redis drain, batched) -> actor -> actor ->
 *                an fd-polled mailbox drained with recv(0), as an I/O thread
 *                drains its own (bridge -> router -> consumer -> I/O)
 *   lat-1hop     2,000 mails/s, each posted on its own, one hop
 *   lat-3hops    the same through the three hops
 *
 * It compiles against the ring mailbox before nng too (no batch scope there:
 * the scope calls vanish), so both can be run in interleaved rounds:
 *   build/mailbox-bench [rounds]
 * Single threads per role; run it on an otherwise idle machine for numbers
 * that mean anything absolute.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "actors/actor_impl.h"
#include "core/clock.h"

#ifdef HR_MAILBOX_BATCH
#define SCOPE_BEGIN() hr_mailbox_batch_begin()
#define SCOPE_END() hr_mailbox_batch_end()
#define IMPL "nng"
#else
#define SCOPE_BEGIN() ((void)0)
#define SCOPE_END() ((void)0)
#define IMPL "ring"
#endif

#define SCOPE_POSTS 256
#define DRAIN_CAP 256

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
	    + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
die(const char *what, int rv)
{
	fprintf(stderr, "mailbox-bench: %s: %d\n", what, rv);
	exit(1);
}

/* ---------------------------------------------------------------- producers */

typedef struct prod {
	hr_mailbox *mb;
	hr_actor *actor; /* or this */
	uint64_t n;
	bool batched;
	double pace_s; /* > 0: one mail every pace_s, each on its own */
} prod;

static void
post_one(prod *p, hr_mail *m)
{
	int rv = p->actor != NULL ? hr_actor_send(p->actor, m, -1) : hr_mailbox_post(p->mb, m, -1);
	if (rv != 0)
		die("post", rv);
}

static void *
produce(void *arg)
{
	prod *p = arg;
	double next = hr_clock_mono();
	for (uint64_t i = 0; i < p->n;) {
		if (p->pace_s > 0) {
			while (hr_clock_mono() < next)
				;
			next += p->pace_s;
			hr_mail m = { .kind = HR_MAIL_USER, .u64 = mono_ns() };
			post_one(p, &m);
			i++;
			continue;
		}
		if (p->batched)
			SCOPE_BEGIN();
		for (int k = 0; k < (p->batched ? SCOPE_POSTS : 1) && i < p->n; k++, i++) {
			hr_mail m = { .kind = HR_MAIL_USER, .u64 = mono_ns() };
			post_one(p, &m);
		}
		if (p->batched)
			SCOPE_END();
	}
	return NULL;
}

/* ---------------------------------------------------------------- latency */

#define LAT_MAX 20000
typedef struct lat {
	uint64_t v[LAT_MAX];
	size_t n;
} lat;

static void
lat_add(lat *l, uint64_t sent_ns)
{
	if (l != NULL && l->n < LAT_MAX)
		l->v[l->n++] = mono_ns() - sent_ns;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double
lat_pct(lat *l, double q)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof(l->v[0]), cmp_u64);
	size_t i = (size_t)(q * (double)(l->n - 1));
	return (double)l->v[i] / 1e3;
}

/* ---------------------------------------------------------------- consumers */

/* Blocking consumer, as an actor thread: recv(-1), then recv(0) up to the cap. */
static void
consume_blocking(hr_mailbox *mb, uint64_t n, lat *l)
{
	hr_mail m;
	uint64_t got = 0;
	while (got < n) {
		int rv = hr_mailbox_recv(mb, &m, -1);
		if (rv != 0)
			die("recv", rv);
		lat_add(l, m.u64);
		got++;
		for (int i = 0; i < DRAIN_CAP && got < n; i++) {
			if (hr_mailbox_recv(mb, &m, 0) != 0)
				break;
			lat_add(l, m.u64);
			got++;
		}
	}
}

/* fd-polled consumer, as an I/O thread: poll, then recv(0) up to the cap
 * (and on while a batch is buffered). */
static void
consume_fd(hr_mailbox *mb, uint64_t n, lat *l)
{
	hr_mail m;
	uint64_t got = 0;
	int fd, rv;
	if ((rv = hr_mailbox_fd(mb, &fd)) != 0)
		die("fd", rv);
	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) != 1)
			die("poll timed out", (int)got);
		for (int i = 0; got < n; i++) {
#ifdef HR_MAILBOX_BATCH
			if (i >= DRAIN_CAP && hr_mailbox_buffered(mb) == 0)
				break;
#else
			if (i >= DRAIN_CAP)
				break;
#endif
			if (hr_mailbox_recv(mb, &m, 0) != 0)
				break;
			lat_add(l, m.u64);
			got++;
		}
	}
}

/* ---------------------------------------------------------------- hops */

static void
forward(hr_actor *self, void *state, hr_mail *m)
{
	hr_actor *next = state;
	hr_mail f = *m;
	int rv = hr_actor_send(next, &f, -1);
	if (rv != 0)
		die("forward", rv);
}

static void
to_mailbox(hr_actor *self, void *state, hr_mail *m)
{
	hr_mail f = *m;
	int rv = hr_mailbox_post(state, &f, -1);
	if (rv != 0)
		die("to mailbox", rv);
}

static const hr_actor_fn forward_fn[] = { forward };
static const hr_actor_fn to_mailbox_fn[] = { to_mailbox };

/* ---------------------------------------------------------------- workloads */

typedef struct result {
	double rate, cpu_us, p50, p99;
} result;

static result
run_direct(int producers, uint64_t per, bool batched, double pace_s, lat *l)
{
	hr_mailbox *mb;
	pthread_t t[4];
	prod p[4];
	int rv;
	if ((rv = hr_mailbox_create(&mb, 1024, NULL, NULL)) != 0)
		die("create", rv);
	double t0 = hr_clock_mono(), c0 = cpu_s();
	for (int i = 0; i < producers; i++) {
		p[i] = (prod) { .mb = mb, .n = per, .batched = batched, .pace_s = pace_s };
		if (pthread_create(&t[i], NULL, produce, &p[i]) != 0)
			die("pthread_create", 0);
	}
	consume_blocking(mb, per * (uint64_t)producers, l);
	double dt = hr_clock_mono() - t0, dc = cpu_s() - c0;
	for (int i = 0; i < producers; i++)
		pthread_join(t[i], NULL);
	hr_mailbox_destroy(mb);
	double n = (double)per * producers;
	result r = { n / dt, dc / n * 1e6, 0, 0 };
	if (l != NULL) {
		r.p50 = lat_pct(l, 0.5);
		r.p99 = lat_pct(l, 0.99);
	}
	return r;
}

static result
run_hops(uint64_t n, bool batched, double pace_s, lat *l)
{
	hr_mailbox *io;
	hr_actor *router, *consumer;
	pthread_t t;
	int rv;
	if ((rv = hr_mailbox_create(&io, 8192, NULL, NULL)) != 0)
		die("create", rv);
	hr_actor_spec cs = { .name = "b-consumer",
		.mailbox_capacity = 1024,
		.state = io,
		.handlers = to_mailbox_fn,
		.n_handlers = 1 };
	if ((rv = hr_actor_spawn(&consumer, &cs)) != 0)
		die("spawn", rv);
	hr_actor_spec rs = { .name = "b-router",
		.mailbox_capacity = 4096,
		.state = consumer,
		.handlers = forward_fn,
		.n_handlers = 1 };
	if ((rv = hr_actor_spawn(&router, &rs)) != 0)
		die("spawn", rv);
	prod p = { .actor = router, .n = n, .batched = batched, .pace_s = pace_s };
	double t0 = hr_clock_mono(), c0 = cpu_s();
	if (pthread_create(&t, NULL, produce, &p) != 0)
		die("pthread_create", 0);
	consume_fd(io, n, l);
	double dt = hr_clock_mono() - t0, dc = cpu_s() - c0;
	pthread_join(t, NULL);
	hr_actor_join(router);
	hr_actor_join(consumer);
	hr_mailbox_destroy(io);
	result r = { (double)n / dt, dc / (double)n * 1e6, 0, 0 };
	if (l != NULL) {
		r.p50 = lat_pct(l, 0.5);
		r.p99 = lat_pct(l, 0.99);
	}
	return r;
}

static void
print(const char *name, result r, bool with_lat)
{
	if (with_lat)
		printf("%-5s %-11s %10.0f mails/s %7.3f us/mail  p50 %7.1f us  p99 %7.1f us\n",
		    IMPL, name, r.rate, r.cpu_us, r.p50, r.p99);
	else
		printf("%-5s %-11s %10.0f mails/s %7.3f us/mail\n", IMPL, name, r.rate, r.cpu_us);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1;
	static lat l;
	for (int r = 0; r < rounds; r++) {
		print("1p-direct", run_direct(1, 200000, false, 0, NULL), false);
		print("1p-batched", run_direct(1, 2000000, true, 0, NULL), false);
		print("2p-batched", run_direct(2, 1000000, true, 0, NULL), false);
		print("3-hops", run_hops(1000000, true, 0, NULL), false);
		l.n = 0;
		print("lat-1hop", run_direct(1, 2000, false, 1.0 / 2000, &l), true);
		l.n = 0;
		print("lat-3hops", run_hops(2000, false, 1.0 / 2000, &l), true);
	}
	return 0;
}
