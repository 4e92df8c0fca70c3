/*
 * clock.h: the clocks herald reads and its one ISO-8601 formatter (core.h).
 * Any thread; nothing here allocates or fails.
 */
#ifndef HERALD_CORE_CLOCK_H
#define HERALD_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC: for durations (uptime, deadlines), never for
 * dates. */
double hr_clock_mono(void);

/* Microseconds since the epoch on CLOCK_REALTIME (the wall clock). */
int64_t hr_clock_wall_us(void);

/* Bytes hr_clock_iso8601 writes for any date before the year 10000, NUL
 * included. */
#define HR_CLOCK_ISO8601_LEN 33

/* Write wall-clock time `us` (microseconds since the epoch; a negative one
 * counts as 0) as ISO-8601 UTC with microseconds, the form of Django's
 * timezone.now().isoformat(): "2024-05-01T12:34:56.789012+00:00".
 * NUL-terminated, cut to outlen - 1 bytes when out is shorter than
 * HR_CLOCK_ISO8601_LEN (outlen must be >= 1). */
void hr_clock_iso8601(int64_t us, char *out, size_t outlen);

#endif /* HERALD_CORE_CLOCK_H */
