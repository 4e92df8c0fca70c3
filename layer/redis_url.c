/*
 * redis_url.c: the Redis backend's host URLs (redis_int.h):
 * "redis://[:password@]host[:port][/db]" and
 * "redis+sentinel://[:password@]host[:port][,host[:port]...]/master[/db]",
 * as channels_redis takes them (%-decoded passwords, bracketed IPv6
 * literals). Pure parsing: no connection is made here.
 *
 * Threads: any.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "layer/redis_int.h"

static int
pct_decode(const char *s, size_t n, char **out)
{
	char *o = malloc(n + 1);
	if (o == NULL)
		return HR_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			unsigned v = 0;
			for (size_t j = 1; j <= 2; j++) {
				char c = i + j < n ? s[i + j] : '\0';
				int d = (c >= '0' && c <= '9') ? c - '0'
				    : (c >= 'a' && c <= 'f')   ? c - 'a' + 10
				    : (c >= 'A' && c <= 'F')   ? c - 'A' + 10
				                               : -1;
				if (d < 0) {
					free(o);
					return HR_EINVAL;
				}
				v = v * 16 + (unsigned)d;
			}
			if (v == 0) {
				free(o);
				return HR_EINVAL;
			}
			o[k++] = (char)v;
			i += 2;
		} else {
			o[k++] = s[i];
		}
	}
	o[k] = '\0';
	*out = o;
	return 0;
}

bool
hr_layer__redis_parse_uint(const char *s, size_t n, long max, long *out)
{
	if (n == 0 || n > 10)
		return false;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* A host at *pp: a name or dotted address, or "[v6]", then an optional
 * ":port" (else *port is left alone). *host is the caller's to free. */
static int
parse_hostport(const char **pp, char **host, int *port)
{
	const char *p = *pp;
	const char *h = p, *hend;
	if (*p == '[') {
		h = ++p;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
		    || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.')
			p++;
		if (*p != ']' || p == h)
			return HR_EINVAL;
		hend = p++;
	} else {
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		    || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_')
			p++;
		hend = p;
		if (hend == h)
			return HR_EINVAL;
	}
	if (*p == ':') {
		const char *ps = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		long v;
		if (!hr_layer__redis_parse_uint(ps, (size_t)(p - ps), 65535, &v) || v == 0)
			return HR_EINVAL;
		*port = (int)v;
	}
	if ((*host = malloc((size_t)(hend - h) + 1)) == NULL)
		return HR_ENOMEM;
	memcpy(*host, h, (size_t)(hend - h));
	(*host)[hend - h] = '\0';
	*pp = p;
	return 0;
}

/* An optional ":password@" at *pp, %-decoded into *password (NULL if none). */
static int
parse_password(const char **pp, char **password)
{
	const char *p = *pp;
	const char *at = strchr(p, '@');
	*password = NULL;
	if (at == NULL)
		return 0;
	if (p[0] != ':' || at == p + 1)
		return HR_EINVAL;
	int rv = pct_decode(p + 1, (size_t)(at - p - 1), password);
	if (rv == 0)
		*pp = at + 1;
	return rv;
}

/* An optional "/db" at *pp, then the end of the URL. */
static int
parse_db_end(const char *p, long *db)
{
	if (*p == '/') {
		const char *ds = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p != ds && !hr_layer__redis_parse_uint(ds, (size_t)(p - ds), INT_MAX, db))
			return HR_EINVAL;
	}
	return *p == '\0' ? 0 : HR_EINVAL;
}

int
hr_layer__redis_parse_url(const char *url, char **host, int *port, char **password, long *db)
{
	static const char scheme[] = "redis://";
	*host = NULL;
	*password = NULL;
	*port = 6379;
	*db = 0;
	if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return HR_EINVAL;
	const char *p = url + sizeof(scheme) - 1;
	int rv = parse_password(&p, password);
	if (rv != 0)
		return rv;
	if ((rv = parse_hostport(&p, host, port)) != 0)
		goto fail;
	if ((rv = parse_db_end(p, db)) != 0)
		goto fail;
	return 0;
fail:
	free(*host);
	*host = NULL;
	free(*password);
	*password = NULL;
	return rv;
}

int
hr_layer__redis_parse_sentinel_url(const char *url, hr_redis_shard *s)
{
	static const char scheme[] = "redis+sentinel://";
	if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return HR_EINVAL;
	const char *p = url + sizeof(scheme) - 1;
	int rv = parse_password(&p, &s->password);
	if (rv != 0)
		return rv;
	s->sentinels = calloc(RD_SENTINELS_MAX, sizeof(*s->sentinels));
	if (s->sentinels == NULL)
		return HR_ENOMEM;
	for (;;) {
		if (s->n_sentinels == RD_SENTINELS_MAX)
			return HR_EINVAL;
		hr_redis_sentinel *x = &s->sentinels[s->n_sentinels];
		x->port = 26379;
		if ((rv = parse_hostport(&p, &x->host, &x->port)) != 0)
			return rv;
		s->n_sentinels++;
		if (*p != ',')
			break;
		p++;
	}
	if (*p++ != '/')
		return HR_EINVAL;
	const char *m = p;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
	    || *p == '.' || *p == '-' || *p == '_' || *p == ':')
		p++;
	size_t mlen = (size_t)(p - m);
	if (mlen == 0 || mlen > RD_MASTER_MAX)
		return HR_EINVAL;
	if ((rv = parse_db_end(p, &s->db)) != 0)
		return rv;
	if ((s->master = malloc(mlen + 1)) == NULL)
		return HR_ENOMEM;
	memcpy(s->master, m, mlen);
	s->master[mlen] = '\0';
	return 0;
}
