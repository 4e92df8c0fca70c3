/*
 * recover.c: reading `?recover=` at the WebSocket handshake (recover_int.h).
 * The envelopes, the ring and the replay are the router's (actors/history.h);
 * here only the client's positions are parsed, strictly, so that a value
 * that does not parse refuses the handshake instead of being half-used.
 *
 * Threads: hr_recover__parse is pure; hr_recover__from_wsi runs on the
 * connection's I/O thread.
 */
#include <string.h>

#include "transport/recover_int.h"
#include "transport/transport_impl.h"

/* One item, GROUP@EPOCH:OFFSET (s: n bytes). */
static int
parse_item(const char *s, size_t n, const char *group, hr_recover_pos *pos)
{
	const char *at = memchr(s, '@', n);
	if (at == NULL)
		return HR_EINVAL;
	size_t gl = (size_t)(at - s);
	const char *e = at + 1, *end = s + n;
	const char *colon = memchr(e, ':', (size_t)(end - e));
	if (colon == NULL)
		return HR_EINVAL;
	size_t el = (size_t)(colon - e);
	if (el == 0)
		return HR_EINVAL;
	for (size_t i = 0; i < el; i++)
		if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'f')))
			return HR_EINVAL;
	const char *o = colon + 1;
	if (o == end)
		return HR_EINVAL;
	uint64_t off = 0;
	for (; o < end; o++) {
		if (*o < '0' || *o > '9')
			return HR_EINVAL;
		unsigned d = (unsigned)(*o - '0');
		if (off > (UINT64_MAX - d) / 10)
			return HR_EINVAL;
		off = off * 10 + d;
	}
	if (pos->given || gl != strlen(group) || memcmp(s, group, gl) != 0)
		return 0; /* another group's (or a later item for this one): ignored */
	pos->given = true;
	pos->offset = off;
	if (el <= HR_EPOCH_MAX) {
		memcpy(pos->epoch, e, el);
		pos->epoch[el] = '\0';
	} else {
		pos->epoch[0] = '\0'; /* longer than any epoch: never matches */
	}
	return 0;
}

int
hr_recover__parse(const char *v, size_t len, const char *group, hr_recover_pos *pos)
{
	size_t items = 0;

	memset(pos, 0, sizeof(*pos));
	if (len > HR_RECOVER_MAX_BYTES)
		return HR_EINVAL;
	if (len == 0)
		return 0;
	const char *p = v, *end = v + len;
	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		if (++items > HR_RECOVER_MAX_ITEMS)
			goto fail;
		if (parse_item(p, (size_t)(stop - p), group, pos) != 0)
			goto fail;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
fail:
	memset(pos, 0, sizeof(*pos));
	return HR_EINVAL;
}

int
hr_recover__from_wsi(struct lws *wsi, const char *group, hr_recover_pos *pos)
{
	/* Every query argument fits: the whole request head is at most
	 * HR_HTTP_HEADER_MAX bytes. One buffer per I/O thread. */
	static _Thread_local char buf[HR_HTTP_HEADER_MAX + 1];
	static const char name[] = "recover=";

	memset(pos, 0, sizeof(*pos));
	for (int i = 0;; i++) {
		int n
		    = lws_hdr_copy_fragment(wsi, buf, (int)sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			return 0;
		if ((size_t)n >= sizeof(name) - 1 && memcmp(buf, name, sizeof(name) - 1) == 0)
			break;
	}
	const char *v = buf + sizeof(name) - 1;
	if (hr_recover__parse(v, strlen(v), group, pos) != 0)
		return HR_EINVAL;
	return 1;
}
