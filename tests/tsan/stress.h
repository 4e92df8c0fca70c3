/*
 * stress.h: the few helpers shared by the ThreadSanitizer stress programs
 * (tests/tsan/stress_*.c). These are plain programs, not Criterion tests:
 * Criterion 2.4.1's sandbox cannot start under TSan (see tests/tsan/README).
 *
 * CHECK counts a passed or failed check and prints the failing ones;
 * stress_summary() prints "N passed, N failed" as the program's last line and
 * gives the exit status. Every wait in these programs is bounded.
 */
#ifndef HERALD_TSAN_STRESS_H
#define HERALD_TSAN_STRESS_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int stress_passed, stress_failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			atomic_fetch_add(&stress_passed, 1);                                       \
		} else {                                                                           \
			atomic_fetch_add(&stress_failed, 1);                                       \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* A check whose failure leaves nothing sensible to test afterwards. cond is
 * evaluated once. */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		int require_ok_ = (cond) ? 1 : 0;                                                  \
		CHECK(require_ok_, __VA_ARGS__);                                                   \
		if (!require_ok_)                                                                  \
			exit(stress_summary());                                                    \
	} while (0)

static inline int stress_summary(void);

static inline int
stress_summary(void)
{
	int f = atomic_load(&stress_failed);
	fflush(stderr);
	printf("%d passed, %d failed\n", atomic_load(&stress_passed), f);
	fflush(stdout);
	return f == 0 ? 0 : 1;
}

static inline void
stress_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Wait (in 1 ms steps, at most limit_ms) until *v >= want. True if reached. */
static inline int
stress_wait_at_least(atomic_int *v, int want, long limit_ms)
{
	for (long i = 0; i < limit_ms; i++) {
		if (atomic_load(v) >= want)
			return 1;
		stress_sleep_ms(1);
	}
	return atomic_load(v) >= want;
}

#endif /* HERALD_TSAN_STRESS_H */
