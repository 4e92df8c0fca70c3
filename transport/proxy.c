/*
 * proxy.c: --trusted-proxies and X-Forwarded-For. Parses the list of
 * addresses and CIDRs, and picks the address a request is logged (and
 * judged) as: the socket's peer, unless that peer is a trusted proxy; then
 * the last address of X-Forwarded-For that is not itself trusted, read from
 * the right (each proxy appends the address it got the request from, so the
 * right end is the hop nearest to herald and the only part a client cannot
 * forge past a trusted proxy). Pure: no sockets, no lws; any thread.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "transport/transport_impl.h"

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int
hr_proxy__addr_parse(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct in_addr a4;

	if (n == 0 || n >= sizeof(buf))
		return HR_EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memcpy(out, v4_mapped, 12);
		memcpy(out + 12, &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : HR_EINVAL;
}

void
hr_proxy__addr_format(const uint8_t a[16], char *out, size_t cap)
{
	if (memcmp(a, v4_mapped, 12) == 0) {
		if (inet_ntop(AF_INET, a + 12, out, (socklen_t)cap) == NULL && cap > 0)
			out[0] = '\0';
	} else if (inet_ntop(AF_INET6, a, out, (socklen_t)cap) == NULL && cap > 0) {
		out[0] = '\0';
	}
}

static void
mask(uint8_t a[16], unsigned bits)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
		a[i] &= (uint8_t)(0xff00u >> keep);
	}
}

bool
hr_proxy__trusted(const hr_proxy_list *l, const uint8_t a[16])
{
	for (size_t i = 0; i < l->n; i++) {
		uint8_t m[16];
		memcpy(m, a, 16);
		mask(m, l->nets[i].bits);
		if (memcmp(m, l->nets[i].addr, 16) == 0)
			return true;
	}
	return false;
}

/* One item: ADDR or ADDR/BITS (BITS of the address's own family). */
static int
parse_one(const char *s, size_t n, hr_cidr *out, char *err, size_t errlen)
{
	const char *slash = memchr(s, '/', n);
	size_t al = slash ? (size_t)(slash - s) : n;
	unsigned bits = 128;

	if (hr_proxy__addr_parse(s, al, out->addr) != 0) {
		snprintf(err, errlen, "'%.*s' is not an IPv4 or IPv6 address", (int)al, s);
		return HR_EINVAL;
	}
	bool v4 = memcmp(out->addr, v4_mapped, 12) == 0;
	if (slash != NULL) {
		const char *b = slash + 1;
		size_t bl = n - al - 1;
		unsigned max = v4 ? 32 : 128;
		bits = 0;
		if (bl == 0 || bl > 3)
			goto fail_bits;
		for (size_t i = 0; i < bl; i++) {
			if (b[i] < '0' || b[i] > '9')
				goto fail_bits;
			bits = bits * 10 + (unsigned)(b[i] - '0');
		}
		if (bits > max)
			goto fail_bits;
		if (v4)
			bits += 96;
	}
	out->bits = (uint8_t)bits;
	mask(out->addr, bits);
	return 0;
fail_bits:
	snprintf(err, errlen, "'%.*s': the prefix length after '/' must be 0..%d", (int)n, s,
	    v4 ? 32 : 128);
	return HR_EINVAL;
}

int
hr_proxy_list_parse(const char *s, hr_proxy_list *out, char *err, size_t errlen)
{
	const char *c = s, *item;
	size_t n;

	out->n = 0;
	while (hr_list_next(&c, &item, &n)) {
		if (n == 0) {
			snprintf(err, errlen, "empty item in '%s'", s);
			return HR_EINVAL;
		}
		if (out->n >= HR_MAX_PROXIES) {
			snprintf(err, errlen, "at most %d addresses or networks", HR_MAX_PROXIES);
			return HR_EINVAL;
		}
		if (parse_one(item, n, &out->nets[out->n], err, errlen) != 0)
			return HR_EINVAL;
		out->n++;
	}
	return 0;
}

int
hr_proxy_list_format(const hr_proxy_list *l, char *out, size_t cap)
{
	size_t used = 0;

	if (cap == 0)
		return HR_EMSGSIZE;
	out[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		char a[INET6_ADDRSTRLEN];
		const hr_cidr *n = &l->nets[i];
		bool v4 = memcmp(n->addr, v4_mapped, 12) == 0 && n->bits >= 96;
		unsigned bits = v4 ? n->bits - 96u : n->bits;
		int w;
		if (v4)
			hr_proxy__addr_format(n->addr, a, sizeof(a));
		else if (inet_ntop(AF_INET6, n->addr, a, sizeof(a)) == NULL)
			return HR_EINVAL;
		if (bits == (v4 ? 32u : 128u))
			w = snprintf(out + used, cap - used, "%s%s", i ? "," : "", a);
		else
			w = snprintf(out + used, cap - used, "%s%s/%u", i ? "," : "", a, bits);
		if (w < 0 || (size_t)w >= cap - used)
			return HR_EMSGSIZE;
		used += (size_t)w;
	}
	return 0;
}

/* One X-Forwarded-For item: an address, maybe with a port ("a.b.c.d:p",
 * "[v6]:p") as some proxies write it. */
static int
xff_item(const char *s, size_t n, uint8_t out[16])
{
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (close == NULL)
			return HR_EINVAL;
		return hr_proxy__addr_parse(s + 1, (size_t)(close - s - 1), out);
	}
	const char *colon = memchr(s, ':', n);
	if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) == NULL)
		n = (size_t)(colon - s); /* IPv4:port */
	return hr_proxy__addr_parse(s, n, out);
}

bool
hr_proxy__resolve(
    const hr_proxy_list *l, const uint8_t peer[16], const char *xff, size_t len, uint8_t out[16])
{
	bool forwarded = false;

	memcpy(out, peer, 16);
	if (l->n == 0 || xff == NULL || len == 0 || !hr_proxy__trusted(l, peer))
		return false;
	/* right to left: skip trusted hops; the first untrusted address is the
	 * client. An item that is not an address ends the walk at the hop that
	 * wrote it; a list of trusted hops only gives its leftmost. */
	size_t end = len;
	while (end > 0) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		size_t a = start, b = end;
		while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
			a++;
		while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
			b--;
		uint8_t addr[16];
		if (xff_item(xff + a, b - a, addr) != 0)
			break;
		memcpy(out, addr, 16);
		forwarded = true;
		if (!hr_proxy__trusted(l, addr))
			break;
		end = start > 0 ? start - 1 : 0;
	}
	return forwarded;
}
