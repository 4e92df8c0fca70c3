/*
 * auth.c: handshake checks of the WebSocket routes (CONTRACT.md "Auth,
 * origin, limits"): HS256 JWTs (?token= or Authorization: Bearer) with
 * exp/nbf and the user route's user_id/sub claim, and the Origin allow-list
 * with `*` and `*.domain` host patterns (optionally behind a scheme). Pure functions over strings;
 * called on the I/O threads.
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "transport/transport_impl.h"

#define JWT_MAX 4096

static int
b64url_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* base64url (padding optional) -> bytes; -1 on bad input or overflow. */
static long
b64url_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	while (n > 0 && in[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)o;
}

int
hr_auth__jwt_check(const char *token, const char *secret, const char *user)
{
	unsigned char sig[64], mac[EVP_MAX_MD_SIZE], hdr[512], payload[JWT_MAX];
	unsigned int maclen = 0;
	const char *d1, *d2;
	size_t tlen = strlen(token);
	json_t *h = NULL, *p = NULL;
	int rv = -1;

	if (tlen == 0 || tlen > JWT_MAX)
		return -1;
	if ((d1 = strchr(token, '.')) == NULL || (d2 = strchr(d1 + 1, '.')) == NULL
	    || strchr(d2 + 1, '.') != NULL)
		return -1;
	long sl = b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig));
	if (sl != 32)
		return -1;
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)token,
	        (size_t)(d2 - token), mac, &maclen)
	        == NULL
	    || maclen != 32 || CRYPTO_memcmp(mac, sig, 32) != 0)
		return -1;
	long hl = b64url_decode(token, (size_t)(d1 - token), hdr, sizeof(hdr));
	long pl = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload));
	if (hl <= 0 || pl <= 0)
		return -1;
	h = json_loadb((const char *)hdr, (size_t)hl, 0, NULL);
	p = json_loadb((const char *)payload, (size_t)pl, 0, NULL);
	if (!json_is_object(h) || !json_is_object(p))
		goto out;
	json_t *alg = json_object_get(h, "alg");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
		goto out;
	double now = (double)time(NULL);
	json_t *exp = json_object_get(p, "exp"), *nbf = json_object_get(p, "nbf");
	if (exp != NULL && (!json_is_number(exp) || json_number_value(exp) <= now))
		goto out;
	if (nbf != NULL && (!json_is_number(nbf) || json_number_value(nbf) > now))
		goto out;
	if (user != NULL) {
		json_t *u = json_object_get(p, "user_id");
		if (u == NULL)
			u = json_object_get(p, "sub");
		char num[32];
		const char *us = NULL;
		if (json_is_string(u))
			us = json_string_value(u);
		else if (json_is_integer(u)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(u));
			us = num;
		}
		if (us == NULL || strcmp(us, user) != 0)
			goto out;
	}
	rv = 0;
out:
	json_decref(h);
	json_decref(p);
	return rv;
}

/* host matches pattern: "*" any; "*.d" any subdomain of d (not d); else equal. */
static bool
host_match(const char *pat, size_t pl, const char *host, size_t hl)
{
	if (pl == 1 && pat[0] == '*')
		return true;
	if (pl > 2 && pat[0] == '*' && pat[1] == '.') {
		size_t sl = pl - 1; /* ".d" */
		return hl > sl && strncasecmp(host + hl - sl, pat + 1, sl) == 0;
	}
	return pl == hl && strncasecmp(pat, host, hl) == 0;
}

bool
hr_auth__origin_allowed(const char *list, const char *origin)
{
	const char *osep = strstr(origin, "://");
	const char *ohost = osep ? osep + 3 : origin;
	size_t oscheme = osep ? (size_t)(osep - origin) : 0;
	size_t ohl = strlen(ohost);

	while (ohl > 0 && ohost[ohl - 1] == '/')
		ohl--;
	while (*list) {
		while (*list == ',' || *list == ' ')
			list++;
		const char *e = list;
		while (*e && *e != ',')
			e++;
		size_t n = (size_t)(e - list);
		while (n > 0 && list[n - 1] == ' ')
			n--;
		if (n > 0) {
			const char *psep = NULL;
			for (size_t i = 0; i + 3 <= n; i++)
				if (memcmp(list + i, "://", 3) == 0) {
					psep = list + i;
					break;
				}
			if (n == 1 && list[0] == '*')
				return true;
			if (psep == NULL) {
				if (host_match(list, n, ohost, ohl))
					return true;
			} else if (osep != NULL && (size_t)(psep - list) == oscheme
			    && strncasecmp(list, origin, oscheme) == 0
			    && host_match(psep + 3, n - (size_t)(psep + 3 - list), ohost, ohl)) {
				return true;
			}
		}
		list = e;
	}
	return false;
}
