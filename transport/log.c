/*
 * log.c: hr_log, one line per event on stderr with a UTC timestamp and the
 * level, and libwebsockets' own log lines in the same form. --log-format json
 * makes each line one JSON object with at least "ts", "level" and "msg";
 * the access log (accesslog.c) adds its fields to that object. Any thread;
 * the level and format are set once at start, before threads exist.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "transport/transport_impl.h"

static hr_log_level log_level = HR_LOG_INFO;
static hr_log_format log_format = HR_LOG_TEXT;

void
hr_log_set_level(hr_log_level lvl)
{
	log_level = lvl;
}

void
hr_log_set_format(hr_log_format fmt)
{
	log_format = fmt;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
	    || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

size_t
hr_log__json_str(char *out, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap < 3)
		return 0;
	out[o++] = '"';
	for (size_t i = 0; i < n;) {
		const unsigned char ch = (unsigned char)s[i];
		char e[8];
		size_t el = 0, used = 1;
		if (ch == '"' || ch == '\\') {
			e[0] = '\\', e[1] = (char)ch, el = 2;
		} else if (ch == '\n') {
			e[0] = '\\', e[1] = 'n', el = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			memcpy(e, "\\u00", 4);
			e[4] = hex[ch >> 4], e[5] = hex[ch & 15], el = 6;
		} else if (ch < 0x80) {
			e[0] = (char)ch, el = 1;
		} else if ((used = utf8_len((const unsigned char *)s + i, n - i)) > 0) {
			memcpy(e, s + i, used);
			el = used;
		} else {
			memcpy(e, "\\ufffd", 6); /* not UTF-8: the replacement character */
			el = 6, used = 1;
		}
		if (o + el + 2 > cap)
			break; /* cut, still a valid string */
		memcpy(out + o, e, el);
		o += el;
		i += used;
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

void
hr_log__emit(hr_log_level lvl, const char *msg, const char *fields)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	const char *name = names[lvl < 0 || lvl > 3 ? 0 : lvl];
	char line[2048], ts[80];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (int)(now.tv_nsec / 1000000));
	if (log_format == HR_LOG_JSON) {
		int n = snprintf(
		    line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, name);
		if (n < 0)
			return;
		/* room kept for the fields and the closing brace */
		size_t fl = fields != NULL ? strlen(fields) : 0;
		size_t room = sizeof(line) - (size_t)n - 2;
		if (fl > room / 2)
			fl = 0; /* cannot happen: accesslog.c bounds its fields */
		n += (int)hr_log__json_str(line + n, room - fl, msg, strlen(msg));
		memcpy(line + n, fields != NULL ? fields : "", fl);
		n += (int)fl;
		line[n++] = '}';
		line[n] = '\0';
	} else {
		snprintf(line, sizeof(line), "%s %s %s", ts, name, msg);
	}
	/* one fprintf per line: stdio locks the stream, so lines never interleave */
	fprintf(stderr, "%s\n", line);
}

void
hr_log(hr_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hr_log__emit(lvl, msg, NULL);
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
