/*
 * options.c: `herald serve` options from flags, environment and config file
 * into an hr_config (docs/PROTOCOL.md "herald serve options"). Main thread only.
 *
 * Parsing happens in two passes. The first collects raw values from the three
 * sources (flags, HERALD_* environment variables, the --config file) without
 * judging them; the second picks, for each option, the values of the source
 * with the highest precedence (flags > env > file) and validates them into
 * the config. A value that loses to a higher source is never validated, the
 * way an overridden Django setting is never read.
 *
 * The config file is INI-style `key = value` (inih): keys are option names
 * without the dashes ('_' may stand for '-'), before any section or in a
 * [herald] section; '#' and ';' start comments (also after a value: a ';'
 * preceded by whitespace ends the value); one pair of matching quotes around
 * a value is removed; a repeatable option may repeat its line or take a comma
 * list. Lines are limited to 199 characters and the file to 64 KiB (checked
 * before inih sees the text, because inih would silently truncate longer
 * lines: a cut secret is worse than a clear error).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_impl.h"
#include "cli/options_int.h"

#define MAX_THREADS_OPT 64
#define MAX_COUNT 1000000ull
#define MAX_MESSAGE_OPT (64ull * 1024 * 1024)
#define MAX_SECONDS 315360000ull /* ten years */
#define MAX_PING_S 86400u        /* a day: --ping-interval, --ping-timeout */
#define MAX_RATE 1000000ull

/* Keep a copy of str alive as long as the config; NULL on failure (err set). */
static const char *
keep(struct parse *p, const char *label, const char *str)
{
	hr_cli_serve *s = p->s;
	if (s->_n_strings >= HR_CLI_MAX_STRINGS) {
		fail(p, "%s: too many option values (at most %d strings)", label,
		    HR_CLI_MAX_STRINGS);
		return NULL;
	}
	char *c = strdup(str);
	if (c == NULL) {
		fail(p, "%s: out of memory", label);
		return NULL;
	}
	s->_strings[s->_n_strings++] = c;
	return c;
}

/* ---------------------------------------------------------------- scalars */

/* Plain decimal digits only: no sign, no spaces, no hex, no overflow. */
static int
parse_uint(struct parse *p, const char *label, const char *v, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long n = 0;
	if (*v == '\0')
		return fail(p, "%s: empty value, expected an integer", label);
	for (const char *c = v; *c; c++) {
		if (*c < '0' || *c > '9')
			return fail(p, "%s: '%s' is not a whole number", label, v);
		unsigned d = (unsigned)(*c - '0');
		if (n > (max - d) / 10)
			return fail(p, "%s: %s is out of range %llu..%llu", label, v, min, max);
		n = n * 10 + d;
	}
	if (n < min || n > max)
		return fail(p, "%s: %s is out of range %llu..%llu", label, v, min, max);
	*out = n;
	return 0;
}

/* A positive decimal number: digits with an optional fraction, > 0, <= max. */
static int
parse_positive(struct parse *p, const char *label, const char *v, double max, double *out)
{
	size_t i = 0, digits = 0;
	while (isdigit((unsigned char)v[i])) {
		i++;
		digits++;
	}
	if (v[i] == '.') {
		i++;
		while (isdigit((unsigned char)v[i])) {
			i++;
			digits++;
		}
	}
	if (digits == 0 || v[i] != '\0')
		return fail(p, "%s: '%s' is not a number", label, v);
	double d = strtod(v, NULL);
	if (!isfinite(d) || d <= 0)
		return fail(p, "%s: %s must be greater than 0", label, v);
	if (d > max)
		return fail(p, "%s: %s is larger than %.0f", label, v, max);
	*out = d;
	return 0;
}

static bool
printable_token(const char *v)
{
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
			return false;
	return true;
}

/* ---------------------------------------------------------------- options */

/* The hr_config field a generic applier stores into. */
static void *
field(struct parse *p, const struct option *o)
{
	return (char *)&p->s->cfg + o->dest;
}

static int
apply_unsigned(struct parse *p, const struct option *o, const char *label, const char *v)
{
	unsigned long long n;
	int rc = parse_uint(p, label, v, o->min, o->max, &n);
	if (rc == 0)
		*(unsigned *)field(p, o) = (unsigned)n;
	return rc;
}

static int
apply_size(struct parse *p, const struct option *o, const char *label, const char *v)
{
	unsigned long long n;
	int rc = parse_uint(p, label, v, o->min, o->max, &n);
	if (rc == 0)
		*(size_t *)field(p, o) = (size_t)n;
	return rc;
}

static int
apply_positive(struct parse *p, const struct option *o, const char *label, const char *v)
{
	return parse_positive(p, label, v, (double)o->max, (double *)field(p, o));
}

/* Keep str with the config and point the row's field at the copy. */
static int
store_string(struct parse *p, const struct option *o, const char *label, const char *str)
{
	const char *k = keep(p, label, str);
	if (k == NULL)
		return HR_EINVAL;
	*(const char **)field(p, o) = k;
	return 0;
}

static int
apply_string(struct parse *p, const struct option *o, const char *label, const char *v)
{
	int rc = o->check(p, label, v);
	return rc != 0 ? rc : store_string(p, o, label, v);
}

/* Keep the label an option was applied under, for the cross-checks of apply_all. */
static int
remember_label(struct parse *p, const char *label, const char **out)
{
	*out = keep(p, label, label);
	return *out == NULL ? HR_EINVAL : 0;
}

static int
apply_listen(struct parse *p, const struct option *o, const char *label, const char *v)
{
	hr_config *c = &p->s->cfg;
	char host[64];
	const char *port;
	bool v6 = false;

	/* The winning list replaces the default localhost:8000. */
	if (!p->listen_applied) {
		c->n_listen = 0;
		p->listen_applied = true;
	}

	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL)
			return fail(p, "%s: '%s' has no closing ']'", label, v);
		size_t n = (size_t)(close - v - 1);
		if (n == 0 || n >= sizeof(host))
			return fail(p, "%s: bad IPv6 address in '%s'", label, v);
		memcpy(host, v + 1, n);
		host[n] = '\0';
		if (close[1] != ':')
			return fail(p, "%s: '%s' needs a port (HOST:PORT)", label, v);
		port = close + 2;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return fail(p, "%s: '%s' is not an IPv6 address", label, host);
		v6 = true;
	} else {
		const char *colon = strrchr(v, ':');
		if (colon == NULL)
			return fail(p, "%s: '%s' needs a port (HOST:PORT)", label, v);
		size_t n = (size_t)(colon - v);
		if (memchr(v, ':', n) != NULL)
			return fail(p, "%s: IPv6 addresses go in brackets, as [%.*s]:PORT", label,
			    (int)n, v);
		if (n == 0)
			return fail(p, "%s: '%s' has no host", label, v);
		if (n >= sizeof(host))
			return fail(p, "%s: host in '%s' is too long", label, v);
		memcpy(host, v, n);
		host[n] = '\0';
		port = colon + 1;
		struct in_addr a4;
		if (strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, &a4) != 1)
			return fail(p,
			    "%s: host '%s' must be localhost, an IPv4 address or an IPv6 "
			    "address in brackets",
			    label, host);
	}
	unsigned long long pn;
	int rc = parse_uint(p, label, port, 1, 65535, &pn);
	if (rc != 0)
		return fail(p, "%s: port '%s' in '%s' must be 1..65535", label, port, v);

	const char *hosts[2] = { host, NULL };
	bool is6[2] = { v6, false };
	if (strcmp(host, "localhost") == 0) {
		hosts[0] = "127.0.0.1";
		hosts[1] = "::1";
		is6[0] = false;
		is6[1] = true;
	}
	for (size_t i = 0; i < 2 && hosts[i] != NULL; i++) {
		for (size_t j = 0; j < c->n_listen; j++)
			if (c->listen[j].port == pn && strcmp(c->listen[j].host, hosts[i]) == 0)
				return fail(
				    p, "%s: %s port %llu is listed twice", label, hosts[i], pn);
		if (c->n_listen >= HR_MAX_LISTEN)
			return fail(p,
			    "%s: at most %d listen addresses ('localhost' counts as two)", label,
			    HR_MAX_LISTEN);
		hr_listen_addr *a = &c->listen[c->n_listen++];
		memset(a, 0, sizeof(*a));
		snprintf(a->host, sizeof(a->host), "%s", hosts[i]);
		a->port = (uint16_t)pn;
		snprintf(a->shown, sizeof(a->shown), is6[i] ? "[%s]:%u" : "%s:%u", hosts[i],
		    (unsigned)pn);
	}
	return 0;
}

static int
apply_layer(struct parse *p, const struct option *o, const char *label, const char *v)
{
	if (strcmp(v, "memory") == 0)
		p->layer = 0;
	else if (strcmp(v, "redis") == 0)
		p->layer = 1;
	else
		return fail(p, "%s: '%s' is not a layer (memory or redis)", label, v);
	return remember_label(p, label, &p->layer_label);
}

static int
check_host_port(struct parse *p, const char *label, const char *url, const char *hp, size_t n)
{
	char buf[300];
	if (n == 0 || n >= sizeof(buf))
		return fail(p, "%s: '%s' needs host:port", label, url);
	memcpy(buf, hp, n);
	buf[n] = '\0';
	const char *port;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (close == NULL || close[1] != ':')
			return fail(p, "%s: '%s' needs [IPv6]:port", label, url);
		*close = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, buf + 1, &a6) != 1)
			return fail(p, "%s: '%s' is not an IPv6 address", label, buf + 1);
		port = close + 2;
	} else {
		char *colon = strrchr(buf, ':');
		if (colon == NULL)
			return fail(p, "%s: '%s' needs host:port", label, url);
		*colon = '\0';
		if (buf[0] == '\0')
			return fail(p, "%s: '%s' has no host", label, url);
		for (const char *c = buf; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
				return fail(p, "%s: bad host '%s' in '%s'", label, buf, url);
		port = colon + 1;
	}
	unsigned long long pn;
	if (parse_uint(p, label, port, 1, 65535, &pn) != 0)
		return fail(p, "%s: port '%s' in '%s' must be 1..65535", label, port, url);
	return 0;
}

/* Keep one more --redis URL, once. */
static int
remember_redis(struct parse *p, const char *label, const char *v)
{
	hr_config *c = &p->s->cfg;
	for (size_t i = 0; i < c->n_redis; i++)
		if (strcmp(c->redis[i], v) == 0)
			return fail(p, "%s: '%s' is listed twice", label, v);
	if (c->n_redis >= HR_MAX_REDIS)
		return fail(p, "%s: at most %d Redis servers", label, HR_MAX_REDIS);
	const char *k = keep(p, label, v);
	if (k == NULL)
		return HR_EINVAL;
	c->redis[c->n_redis++] = k;
	return 0;
}

/* redis+sentinel://[:password@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] */
static int
check_sentinel_url(struct parse *p, const char *label, const char *v)
{
	static const char form[]
	    = "redis+sentinel://[:password@]host:port[,host:port...]/master[/db]";
	const char *rest = v + strlen("redis+sentinel://");
	const char *at = strrchr(rest, '@');
	if (at != NULL) {
		if (rest[0] != ':' || at == rest + 1)
			return fail(p, "%s: credentials in '%s' must be :password@", label, v);
		rest = at + 1;
	}
	const char *slash = strchr(rest, '/');
	if (slash == NULL || slash[1] == '\0' || slash[1] == '/')
		return fail(p, "%s: '%s' must look like %s (no master name)", label, v, form);
	for (const char *h = rest; h < slash;) {
		const char *comma = memchr(h, ',', (size_t)(slash - h));
		const char *end = comma ? comma : slash;
		int rc = check_host_port(p, label, v, h, (size_t)(end - h));
		if (rc != 0)
			return rc;
		h = comma ? comma + 1 : slash;
		if (comma != NULL && h == slash)
			return fail(p, "%s: '%s' must look like %s", label, v, form);
	}
	const char *m = slash + 1, *me = strchr(m, '/');
	size_t mlen = me ? (size_t)(me - m) : strlen(m);
	for (size_t i = 0; i < mlen; i++)
		if (!isalnum((unsigned char)m[i]) && !strchr("._:-", m[i]))
			return fail(p, "%s: bad master name in '%s'", label, v);
	if (mlen > 128)
		return fail(p, "%s: master name in '%s' is too long", label, v);
	unsigned long long db;
	if (me != NULL && me[1] != '\0' && parse_uint(p, label, me + 1, 0, 1000000, &db) != 0)
		return fail(p, "%s: database '%s' in '%s' must be a number", label, me + 1, v);
	return 0;
}

static int
apply_redis(struct parse *p, const struct option *o, const char *label, const char *v)
{
	static const char scheme[] = "redis://";
	if (strncmp(v, "redis+sentinel://", strlen("redis+sentinel://")) == 0) {
		int rc = check_sentinel_url(p, label, v);
		return rc != 0 ? rc : remember_redis(p, label, v);
	}
	if (strncmp(v, scheme, sizeof(scheme) - 1) != 0)
		return fail(
		    p, "%s: '%s' must look like redis://[:password@]host:port[/db]", label, v);
	const char *rest = v + sizeof(scheme) - 1;
	const char *at = strrchr(rest, '@');
	if (at != NULL) {
		if (memchr(rest, ':', (size_t)(at - rest)) == NULL)
			return fail(p, "%s: credentials in '%s' must be :password@", label, v);
		rest = at + 1;
	}
	const char *slash = strchr(rest, '/');
	size_t hp = slash ? (size_t)(slash - rest) : strlen(rest);
	int rc = check_host_port(p, label, v, rest, hp);
	if (rc != 0)
		return rc;
	if (slash != NULL && slash[1] != '\0') {
		unsigned long long db;
		if (parse_uint(p, label, slash + 1, 0, 1000000, &db) != 0)
			return fail(
			    p, "%s: database '%s' in '%s' must be a number", label, slash + 1, v);
	}
	return remember_redis(p, label, v);
}

static int
check_prefix(struct parse *p, const char *label, const char *v)
{
	if (*v == '\0' || strlen(v) > 64 || !printable_token(v))
		return fail(
		    p, "%s: '%s' must be 1..64 printable characters without spaces", label, v);
	return 0;
}

static int
apply_channel_capacity(struct parse *p, const struct option *o, const char *label, const char *v)
{
	hr_config *c = &p->s->cfg;
	const char *eq = strrchr(v, '=');
	if (eq == NULL || eq == v)
		return fail(p, "%s: '%s' must be GLOB=N", label, v);
	size_t gl = (size_t)(eq - v);
	char glob[256];
	if (gl >= sizeof(glob))
		return fail(p, "%s: pattern in '%s' is too long", label, v);
	memcpy(glob, v, gl);
	glob[gl] = '\0';
	if (!printable_token(glob))
		return fail(p, "%s: pattern '%s' has spaces or control characters", label, glob);
	unsigned long long n;
	if (parse_uint(p, label, eq + 1, 1, MAX_COUNT, &n) != 0)
		return fail(
		    p, "%s: capacity '%s' in '%s' must be 1..%llu", label, eq + 1, v, MAX_COUNT);
	if (c->n_channel_capacity >= HR_MAX_CAPACITY_RULES)
		return fail(p, "%s: at most %d rules", label, HR_MAX_CAPACITY_RULES);
	const char *k = keep(p, label, glob);
	if (k == NULL)
		return HR_EINVAL;
	c->channel_capacity[c->n_channel_capacity].glob = k;
	c->channel_capacity[c->n_channel_capacity].capacity = (size_t)n;
	c->n_channel_capacity++;
	return 0;
}

static int
check_secret(struct parse *p, const char *label, const char *v)
{
	if (*v == '\0')
		return fail(p, "%s: the secret is empty", label);
	return 0;
}

static int
check_api_key(struct parse *p, const char *label, const char *v)
{
	if (*v == '\0' || !printable_token(v))
		return fail(p, "%s: the key must be printable ASCII without spaces", label);
	return 0;
}

/* Normalise "a, b ,c" to "a,b,c" and check each origin's shape: `*`, or
 * scheme://host[:port] where host may start with "*." (any subdomain). */
static int
apply_allowed_origins(struct parse *p, const struct option *o, const char *label, const char *v)
{
	char out[HR_CLI_MAX_VALUE + 1];
	size_t on = 0, count = 0, n;
	const char *c = v, *start;
	while (hr_list_next(&c, &start, &n)) {
		if (n == 0)
			return fail(p, "%s: empty origin in '%s'", label, v);
		char one[HR_CLI_MAX_VALUE + 1];
		if (n >= sizeof(one) || on + n + 1 >= sizeof(out))
			return fail(p, "%s: list is too long", label);
		memcpy(one, start, n);
		one[n] = '\0';
		if (!printable_token(one))
			return fail(
			    p, "%s: origin '%s' has spaces or control characters", label, one);
		if (strcmp(one, "*") != 0) {
			const char *sep = strstr(one, "://");
			if (sep == NULL || sep == one || sep[3] == '\0')
				return fail(p, "%s: origin '%s' must be * or scheme://host[:port]",
				    label, one);
			const char *host = sep + 3;
			const char *star = strchr(one, '*');
			if (star != NULL
			    && (star != host || host[1] != '.' || host[2] == '\0'
			        || strchr(star + 1, '*') != NULL))
				return fail(p,
				    "%s: origin '%s': '*' may only start the host, as "
				    "https://*.example.com",
				    label, one);
		}
		if (on > 0)
			out[on++] = ',';
		memcpy(out + on, one, n);
		on += n;
		out[on] = '\0';
		count++;
	}
	return store_string(p, o, label, out);
}

static int
check_readable(struct parse *p, const char *label, const char *path)
{
	if (*path == '\0')
		return fail(p, "%s: empty file name", label);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(p, "%s: cannot read '%s': %s", label, path, strerror(errno));
	struct stat st;
	int rc = fstat(fd, &st);
	int e = errno;
	close(fd);
	if (rc != 0)
		return fail(p, "%s: cannot read '%s': %s", label, path, strerror(e));
	if (!S_ISREG(st.st_mode))
		return fail(p, "%s: '%s' is not a regular file", label, path);
	return 0;
}

/*
 * The certificate and key must load and form a pair: checked here, so that
 * a bad file is a one-line option error (exit 2) rather than an lws context
 * that fails half-built (lws 4.1.6 leaks on that path and logs three lines).
 */
static int
check_tls_pair(struct parse *p, const char *cert, const char *key)
{
	char err[512];
	if (hr_tls_check_pair(p->tls_cert_label, cert, p->tls_key_label, key, err, sizeof(err))
	    != 0)
		return fail(p, "%s", err);
	return 0;
}

/* The certificate and key files are checked as a pair once both are known. */
static int
check_tls_cert(struct parse *p, const char *label, const char *v)
{
	int rc = check_readable(p, label, v);
	return rc != 0 ? rc : remember_label(p, label, &p->tls_cert_label);
}

static int
check_tls_key(struct parse *p, const char *label, const char *v)
{
	int rc = check_readable(p, label, v);
	return rc != 0 ? rc : remember_label(p, label, &p->tls_key_label);
}

static int
apply_log_level(struct parse *p, const struct option *o, const char *label, const char *v)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		if (strcmp(v, names[i]) == 0) {
			p->s->cfg.log_level = (hr_log_level)i;
			return 0;
		}
	}
	return fail(p, "%s: '%s' is not a level (error, warn, info or debug)", label, v);
}

/* on|off into the bool at o->dest. */
static int
apply_switch(struct parse *p, const struct option *o, const char *label, const char *v)
{
	if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
		*(bool *)field(p, o) = v[1] == 'n';
		return 0;
	}
	return fail(p, "%s: '%s' is not on or off", label, v);
}

static int
apply_event_loop(struct parse *p, const struct option *o, const char *label, const char *v)
{
	if (hr_event_loop_parse(v, &p->s->cfg.event_loop) == 0)
		return 0;
	return fail(p, "%s: '%s' is not an event loop (poll, libev or libuv)", label, v);
}

/* --history GLOB=SIZE[:TTL] (repeatable, first match wins) or `off`. The
 * first one given replaces the defaults. */
static int
apply_history(struct parse *p, const struct option *o, const char *label, const char *v)
{
	hr_config *c = &p->s->cfg;
	if (!p->history_applied) {
		p->history_applied = true;
		c->n_history = 0;
		c->history_off = false;
	}
	if (strcmp(v, "off") == 0) {
		if (c->n_history > 0)
			return fail(p, "%s: off cannot be combined with rules", label);
		c->history_off = true;
		return 0;
	}
	if (c->history_off)
		return fail(p, "%s: off cannot be combined with rules", label);
	const char *eq = strrchr(v, '=');
	if (eq == NULL || eq == v)
		return fail(p, "%s: '%s' must be GLOB=SIZE[:TTL] or off", label, v);
	size_t gl = (size_t)(eq - v);
	char glob[256], num[32];
	if (gl >= sizeof(glob))
		return fail(p, "%s: pattern in '%s' is too long", label, v);
	memcpy(glob, v, gl);
	glob[gl] = '\0';
	if (!printable_token(glob))
		return fail(p, "%s: pattern '%s' has spaces or control characters", label, glob);
	const char *colon = strchr(eq + 1, ':');
	size_t sl = colon ? (size_t)(colon - eq - 1) : strlen(eq + 1);
	if (sl >= sizeof(num))
		return fail(p, "%s: size in '%s' is too long", label, v);
	memcpy(num, eq + 1, sl);
	num[sl] = '\0';
	unsigned long long size, ttl = 300;
	if (parse_uint(p, label, num, 1, HR_HISTORY_MAX_SIZE, &size) != 0)
		return fail(
		    p, "%s: size '%s' in '%s' must be 1..%u", label, num, v, HR_HISTORY_MAX_SIZE);
	if (colon != NULL && parse_uint(p, label, colon + 1, 1, HR_HISTORY_MAX_TTL, &ttl) != 0)
		return fail(p, "%s: TTL '%s' in '%s' must be 1..%u seconds", label, colon + 1, v,
		    HR_HISTORY_MAX_TTL);
	if (c->n_history >= HR_HISTORY_MAX_RULES)
		return fail(p, "%s: at most %d rules", label, HR_HISTORY_MAX_RULES);
	const char *k = keep(p, label, glob);
	if (k == NULL)
		return HR_EINVAL;
	c->history[c->n_history++]
	    = (hr_history_rule) { .glob = k, .size = (uint32_t)size, .ttl_s = (uint32_t)ttl };
	return 0;
}

static int
apply_log_format(struct parse *p, const struct option *o, const char *label, const char *v)
{
	if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0) {
		p->s->cfg.log_format = v[0] == 'j' ? HR_LOG_JSON : HR_LOG_TEXT;
		return 0;
	}
	return fail(p, "%s: '%s' is not a log format (text or json)", label, v);
}

static int
apply_trusted_proxies(struct parse *p, const struct option *o, const char *label, const char *v)
{
	char why[200];
	if (hr_proxy_list_parse(v, &p->s->cfg.trusted_proxies, why, sizeof(why)) != 0)
		return fail(p, "%s: %s", label, why);
	return 0;
}

/* Every option, in --help order. Adding one is adding its row (kept as rows:
 * clang-format would put every field on a line of its own). */
/* clang-format off */
static const struct option options[] = {
	{ .name = "config", .help = "FILE      INI file of key = value lines" },
	{ .name = "listen", .repeatable = true, .apply = apply_listen,
	    .help = "HOST:PORT listener (repeatable; localhost:8000)" },
	{ .name = "threads", .apply = apply_unsigned, .dest = offsetof(hr_config, threads),
	    .min = 1, .max = MAX_THREADS_OPT, .help = "N         I/O threads (number of cores)" },
	{ .name = "layer", .apply = apply_layer,
	    .help = "memory|redis (memory; redis with --redis)" },
	{ .name = "redis", .repeatable = true, .apply = apply_redis,
	    .help = "URL       redis://[:password@]host:port[/db] or redis+sentinel://"
	            "[:password@]host:port[,host:port...]/master[/db] (repeatable)" },
	{ .name = "prefix", .apply = apply_string, .dest = offsetof(hr_config, prefix),
	    .check = check_prefix, .help = "S         key prefix (asgi)" },
	{ .name = "capacity", .apply = apply_size, .dest = offsetof(hr_config, capacity),
	    .min = 1, .max = MAX_COUNT, .help = "N         default channel capacity (100)" },
	{ .name = "channel-capacity", .repeatable = true, .apply = apply_channel_capacity,
	    .help = "GLOB=N (repeatable)" },
	{ .name = "expiry", .apply = apply_positive, .dest = offsetof(hr_config, expiry),
	    .max = MAX_SECONDS, .help = "S         message expiry seconds (60)" },
	{ .name = "group-expiry", .apply = apply_positive,
	    .dest = offsetof(hr_config, group_expiry), .max = MAX_SECONDS,
	    .help = "S   group expiry seconds (86400)" },
	{ .name = "jwt-secret", .apply = apply_string, .dest = offsetof(hr_config, jwt_secret),
	    .check = check_secret, .help = "S     HS256 secret for WebSocket auth" },
	{ .name = "api-key", .apply = apply_string, .dest = offsetof(hr_config, api_key),
	    .check = check_api_key, .help = "K        key for the publish API" },
	{ .name = "allowed-origins", .apply = apply_allowed_origins,
	    .dest = offsetof(hr_config, allowed_origins), .help = "LIST comma list of origins" },
	{ .name = "max-message", .apply = apply_size, .dest = offsetof(hr_config, max_message),
	    .min = 1, .max = MAX_MESSAGE_OPT, .help = "BYTES largest inbound message (65536)" },
	{ .name = "rate-limit", .apply = apply_positive, .dest = offsetof(hr_config, rate_limit),
	    .max = MAX_RATE, .help = "MSGS/S inbound messages per connection (20)" },
	{ .name = "max-connections", .apply = apply_size,
	    .dest = offsetof(hr_config, max_connections), .min = 0, .max = MAX_COUNT,
	    .help = "N per node (0 = unlimited)" },
	{ .name = "ping-interval", .apply = apply_unsigned,
	    .dest = offsetof(hr_config, ping_interval), .min = 0, .max = MAX_PING_S,
	    .help = "S  WebSocket ping every S seconds (20; 0 = off)" },
	{ .name = "ping-timeout", .apply = apply_unsigned,
	    .dest = offsetof(hr_config, ping_timeout), .min = 1, .max = MAX_PING_S,
	    .help = "S   close 1011 after interval + S silent seconds (30)" },
	{ .name = "tls-cert", .apply = apply_string, .dest = offsetof(hr_config, tls_cert),
	    .check = check_tls_cert, .help = "FILE    certificate (PEM), with --tls-key" },
	{ .name = "tls-key", .apply = apply_string, .dest = offsetof(hr_config, tls_key),
	    .check = check_tls_key, .help = "FILE     private key (PEM), with --tls-cert" },
	{ .name = "log-level", .apply = apply_log_level, .help = "error|warn|info|debug (info)" },
	{ .name = "log-format", .apply = apply_log_format,
	    .help = "text|json  one line per event on stderr; json: an object with ts, level, msg (text)" },
	{ .name = "access-log", .apply = apply_switch, .bare = "on",
	    .dest = offsetof(hr_config, access_log),
	    .help = "[on|off]   a line per HTTP request and per WebSocket session end (off)" },
	{ .name = "trusted-proxies", .apply = apply_trusted_proxies,
	    .help = "LIST  addresses or CIDRs whose X-Forwarded-For names the client" },
	{ .name = "event-loop", .apply = apply_event_loop,
	    .help = "poll|libev|libuv what the I/O threads sleep in (libev)" },
	{ .name = "io-uring", .apply = apply_switch, .dest = offsetof(hr_config, io_uring),
	    .help = "on|off     batch fan-out sends through io_uring when the kernel allows (on)" },
	{ .name = "history", .repeatable = true, .apply = apply_history,
	    .help = "GLOB=SIZE[:TTL] recovery history per group (repeatable; "
	            "notifications=1000:300, user_*=100:300; off)" },
	{ .name = "demo", .apply = apply_switch, .dest = offsetof(hr_config, demo),
	    .help = "on|off         serve the demo page at / and the client at /herald.js (on)" },
};
/* clang-format on */
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

const struct option *const hr_cli__options = options;
const size_t hr_cli__n_options = N_OPTIONS;
_Static_assert(N_OPTIONS <= HR_CLI_MAX_OPTIONS, "raise HR_CLI_MAX_OPTIONS");

/* An option's environment variable: HERALD_<NAME>, upper case, '_' for '-'. */
void
hr_cli__env_name(const struct option *o, char *out, size_t size)
{
	size_t k = (size_t)snprintf(out, size, "HERALD_");
	for (const char *c = o->name; *c && k + 1 < size; c++)
		out[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
	out[k] = '\0';
}

/* ---------------------------------------------------------------- apply */

int
hr_cli__apply_all(struct parse *p)
{
	hr_config *c = &p->s->cfg;
	for (size_t o = 0; o < N_OPTIONS; o++) {
		const struct option *opt = &options[o];
		enum source best = 0;
		for (size_t i = 0; i < p->n_entries; i++)
			if (p->entries[i].opt == (int)o && p->entries[i].src > best)
				best = p->entries[i].src;
		if (best == 0 || opt->apply == NULL)
			continue;
		for (size_t i = 0; i < p->n_entries; i++) {
			struct entry *e = &p->entries[i];
			if (e->opt != (int)o || e->src != best)
				continue;
			char label[300];
			if (best == SRC_FLAG)
				snprintf(label, sizeof(label), "--%s", opt->name);
			else if (best == SRC_ENV)
				hr_cli__env_name(opt, label, sizeof(label));
			else
				snprintf(
				    label, sizeof(label), "%.200s: %s", p->file_label, opt->name);
			int rc = opt->apply(p, opt, label, e->val);
			if (rc != 0)
				return rc;
		}
	}
	if (p->layer == 0 && c->n_redis > 0)
		return fail(
		    p, "%s: memory conflicts with --redis (drop one of them)", p->layer_label);
	if (p->layer == 1 && c->n_redis == 0) {
		/* channels_redis' default hosts: [("localhost", 6379)] */
		c->redis[c->n_redis++] = "redis://localhost:6379";
	}
	c->layer_redis = c->n_redis > 0;
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		if (c->tls_cert != NULL)
			return fail(p, "%s: needs --tls-key as well", p->tls_cert_label);
		return fail(p, "%s: needs --tls-cert as well", p->tls_key_label);
	}
	if (c->tls_cert != NULL)
		return check_tls_pair(p, c->tls_cert, c->tls_key);
	return 0;
}
