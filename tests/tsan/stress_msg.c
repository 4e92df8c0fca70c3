/*
 * stress_msg.c: hr_msg references across threads under TSan. A writer builds
 * messages (hr_buf, then hr_buf_finish: no copy) and publishes each to four
 * reader threads through a mutex-guarded ring; every reader takes and drops
 * extra references, checks the bytes, and drops the one it was given, so the
 * last unref (the free) happens on whichever thread gets there last. TSan
 * reports any free that is not ordered after every other thread's reads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "layer/layer.h"
#include "tsan/stress.h"

#define READERS 4
#define MESSAGES 3000
#define RING 64

typedef struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	hr_msg *slot[RING][READERS]; /* one reference per reader */
	int head;                    /* messages published */
	int taken[READERS];          /* per reader: next index to take */
} ring;

typedef struct reader {
	ring *q;
	int id, got, bad;
} reader;

static void
fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31u + i);
}

static int
verify(const hr_msg *m, uint32_t seed)
{
	const unsigned char *p = hr_msg_data(m);
	size_t n = hr_msg_len(m);
	if (n != 64 + seed % 200)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 31u + i))
			return -1;
	return 0;
}

static void *
read_main(void *arg)
{
	reader *r = arg;
	ring *q = r->q;
	for (int k = 0; k < MESSAGES; k++) {
		hr_msg *m = NULL;
		pthread_mutex_lock(&q->mu);
		for (int w = 0; q->head <= k && w < 20000; w++) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q->cv, &q->mu, &ts);
		}
		if (q->head > k) {
			m = q->slot[k % RING][r->id];
			q->slot[k % RING][r->id] = NULL;
			q->taken[r->id] = k + 1;
			pthread_cond_broadcast(&q->cv);
		}
		pthread_mutex_unlock(&q->mu);
		if (m == NULL) {
			r->bad++;
			break;
		}
		/* Extra refs taken and dropped while others do the same. */
		hr_msg *extra[3];
		for (int i = 0; i < 3; i++)
			extra[i] = hr_msg_ref(m);
		if (verify(m, (uint32_t)k) != 0)
			r->bad++;
		for (int i = 0; i < 3; i++)
			hr_msg_unref(extra[i]);
		hr_msg_unref(m);
		r->got++;
	}
	return NULL;
}

static int
min_taken(ring *q)
{
	int lo = q->taken[0];
	for (int i = 1; i < READERS; i++)
		if (q->taken[i] < lo)
			lo = q->taken[i];
	return lo;
}

int
main(void)
{
	ring q;
	memset(&q, 0, sizeof(q));
	REQUIRE(pthread_mutex_init(&q.mu, NULL) == 0, "mutex");
	REQUIRE(pthread_cond_init(&q.cv, NULL) == 0, "cond");
	reader r[READERS];
	pthread_t t[READERS];
	for (int i = 0; i < READERS; i++) {
		r[i] = (reader) { .q = &q, .id = i };
		REQUIRE(pthread_create(&t[i], NULL, read_main, &r[i]) == 0, "pthread_create");
	}
	int built = 0, stalled = 0;
	for (int k = 0; k < MESSAGES; k++) {
		hr_buf b;
		hr_msg *m;
		size_t n = 64 + (size_t)k % 200;
		unsigned char tmp[264];
		hr_buf_init(&b, 16);
		fill(tmp, n, (uint32_t)k);
		if (hr_buf_append(&b, tmp, n) != 0 || hr_buf_finish(&b, &m) != 0) {
			hr_buf_fini(&b);
			break;
		}
		hr_buf_fini(&b);
		built++;
		pthread_mutex_lock(&q.mu);
		for (int w = 0; k - min_taken(&q) >= RING && w < 20000; w++) {
			pthread_mutex_unlock(&q.mu);
			stress_sleep_ms(1);
			pthread_mutex_lock(&q.mu);
		}
		if (k - min_taken(&q) >= RING) {
			pthread_mutex_unlock(&q.mu);
			hr_msg_unref(m);
			stalled = 1;
			break;
		}
		/* The writer's reference goes to reader 0; the others get new ones. */
		for (int i = 1; i < READERS; i++)
			q.slot[k % RING][i] = hr_msg_ref(m);
		q.slot[k % RING][0] = m;
		q.head = k + 1;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
	}
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	CHECK(built == MESSAGES, "built %d of %d messages", built, MESSAGES);
	CHECK(!stalled, "readers stopped taking messages");
	for (int i = 0; i < READERS; i++) {
		CHECK(r[i].got == MESSAGES, "reader %d got %d", i, r[i].got);
		CHECK(r[i].bad == 0, "reader %d: %d bad messages", i, r[i].bad);
	}
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	return stress_summary();
}
