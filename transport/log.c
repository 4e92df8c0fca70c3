/*
 * log.c: hr_log, one line per event on stderr with a UTC timestamp and the
 * level. Any thread; the level is set once at start, before threads exist.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "transport/transport.h"

static hr_log_level log_level = HR_LOG_INFO;

void
hr_log_set_level(hr_log_level lvl)
{
	log_level = lvl;
}

void
hr_log(hr_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, names[lvl < 0 || lvl > 3 ? 0 : lvl]);
	if (n < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* one fputs per line: stdio locks the stream, so lines never interleave */
	fprintf(stderr, "%s\n", line);
}
