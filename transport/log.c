/*
 * log.c: hr_log, one line per event on stderr with a UTC timestamp and the
 * level, and libwebsockets' own log lines in the same form. Any thread; the
 * level is set once at start, before threads exist.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "transport/transport_impl.h"

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

/*
 * lws 4.1.6 logs "adopt_socket_readbuf: calling service" at error level on
 * every adoption that carries bytes already read, which is every WebSocket
 * upgrade of a plain-text listener (http1.c hands the request to lws that
 * way): one line per client, not an error. Everything else lws says is
 * logged as a warning, prefixed.
 */
static void
lws_emit(int level, const char *line)
{
	size_t n = strlen(line);
	(void)level;
	if (strstr(line, "adopt_socket_readbuf: calling service") != NULL)
		return;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	hr_log(HR_LOG_WARN, "libwebsockets: %.*s", (int)n, line);
}

void
hr_log__lws_init(hr_log_level lvl)
{
	lws_set_log_level(lvl >= HR_LOG_DEBUG ? (LLL_ERR | LLL_WARN) : LLL_ERR, lws_emit);
}
