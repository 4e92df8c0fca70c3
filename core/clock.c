/*
 * clock.c: the monotonic and wall clocks and the ISO-8601 formatter
 * (core/clock.h). Pure apart from reading the clocks; any thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

double
hr_clock_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t
hr_clock_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
hr_clock_iso8601(int64_t us, char *out, size_t outlen)
{
	if (us < 0)
		us = 0;
	time_t sec = (time_t)(us / 1000000);
	unsigned frac = (unsigned)(us % 1000000);
	struct tm tm;
	/* Wide enough for any int fields, so the compiler can prove no cut. */
	char tmp[128];
	if (gmtime_r(&sec, &tm) == NULL)
		snprintf(tmp, sizeof(tmp), "1970-01-01T00:00:00.000000+00:00");
	else
		snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06u+00:00",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    frac);
	size_t n = strlen(tmp);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, tmp, n);
	out[n] = '\0';
}
