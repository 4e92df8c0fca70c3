/*
 * security.c: pure security checks for the node (see security_int.h): HS256 JWT
 * verification, token extraction, the constant-time API key compare, the
 * origin policy and the inbound token bucket. No lws, no threads, no clock:
 * any thread may call these; the caller passes the time.
 *
 * Everything here reads bytes a client chose. Every length is bounded before
 * anything is copied (tokens at HR_JWT_MAX, hosts at HR_ORIGIN_HOST_MAX),
 * decoding is strict (one spelling per value), and nothing from a JWT
 * payload is looked at before its signature has been checked.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "transport/security_int.h"

const char hr_auth_malformed[] = "malformed";
const char hr_auth_bad_signature[] = "bad_signature";
const char hr_auth_alg[] = "alg";
const char hr_auth_expired[] = "expired";
const char hr_auth_not_yet_valid[] = "not_yet_valid";
const char hr_auth_wrong_user[] = "wrong_user";
const char hr_auth_missing[] = "missing";

/* ---------------------------------------------------------------- base64url */

static int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict base64url without padding: only the 64 letters, length mod 4 != 1,
 * and the unused low bits of the last letter zero, so that every byte string
 * has exactly one spelling. out must hold len * 3 / 4 bytes. 0 or -1.
 */
static int
b64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = n;
	return 0;
}

size_t
hr_b64url_encode(const void *vin, size_t len, char *out)
{
	const unsigned char *in = vin;
	static const char abc[]
	    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8 | in[i]) & 0xffffff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = abc[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[n++] = abc[(acc << (6 - bits)) & 63];
	return n;
}

/* ---------------------------------------------------------------- JWT */

static int
hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
    unsigned char mac[SHA256_DIGEST_LENGTH])
{
	static const unsigned char empty[1];
	unsigned int maclen = 0;

	if (keylen > INT32_MAX)
		return HR_EINVAL;
	if (HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, data, len, mac, &maclen) == NULL
	    || maclen != SHA256_DIGEST_LENGTH)
		return HR_EIO;
	return 0;
}

/* Decode one part of a token and parse it as a JSON object. */
static int
decode_json_part(const char *p, size_t n, unsigned char *scratch, json_t **out)
{
	size_t dlen;
	json_error_t jerr;

	if (n == 0 || b64url_decode(p, n, scratch, &dlen) != 0)
		return HR_EBADMSG;
	json_t *j = json_loadb((const char *)scratch, dlen, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return json_error_code(&jerr) == json_error_out_of_memory ? HR_ENOMEM : HR_EBADMSG;
	if (!json_is_object(j)) {
		json_decref(j);
		return HR_EBADMSG;
	}
	*out = j;
	return 0;
}

/* The claim's value as the string a path would spell it, or false. */
static bool
claim_string(const json_t *v, char *buf, size_t cap)
{
	if (json_is_string(v)) {
		size_t n = json_string_length(v);
		if (n >= cap)
			return false;
		memcpy(buf, json_string_value(v), n);
		buf[n] = '\0';
		return memchr(buf, '\0', n) == NULL;
	}
	if (json_is_integer(v)) {
		int w = snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return w > 0 && (size_t)w < cap;
	}
	return false;
}

static int
numeric_claim(const json_t *payload, const char *name, bool *has, double *val)
{
	const json_t *v = json_object_get(payload, name);
	*has = false;
	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return HR_EBADMSG;
	*has = true;
	*val = json_number_value(v);
	return 0;
}

static int
refuse(const char **reason, const char *why, int rv)
{
	if (reason != NULL)
		*reason = why;
	return rv;
}

int
hr_jwt_verify(const char *token, size_t len, const void *secret, size_t secret_len, int64_t now,
    int leeway_s, const char *want_user, hr_jwt_claims *out, const char **reason)
{
	unsigned char scratch[HR_JWT_MAX];
	unsigned char mac[SHA256_DIGEST_LENGTH];
	unsigned char sig[SHA256_DIGEST_LENGTH + 3];
	hr_jwt_claims tmp;
	json_t *header = NULL, *payload = NULL;
	const char *why = hr_auth_malformed;
	int rv = HR_EINVAL;

	if (out == NULL)
		out = &tmp;
	memset(out, 0, sizeof(*out));
	if (reason != NULL)
		*reason = NULL;
	if (token == NULL || len == 0)
		return refuse(reason, hr_auth_missing, HR_EINVAL);
	if (len > HR_JWT_MAX)
		return refuse(reason, hr_auth_malformed, HR_EINVAL);
	if (leeway_s < 0)
		leeway_s = 0;

	const char *dot1 = memchr(token, '.', len);
	if (dot1 == NULL)
		return refuse(reason, hr_auth_malformed, HR_EINVAL);
	const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return refuse(reason, hr_auth_malformed, HR_EINVAL);
	size_t hlen = (size_t)(dot1 - token);
	size_t plen = (size_t)(dot2 - dot1 - 1);
	size_t slen = len - (size_t)(dot2 + 1 - token);

	/* Header: a JSON object naming HS256 and nothing critical. */
	rv = decode_json_part(token, hlen, scratch, &header);
	if (rv != 0) {
		rv = rv == HR_ENOMEM ? HR_ENOMEM : HR_EINVAL;
		goto fail;
	}
	rv = HR_EINVAL;
	if (json_object_get(header, "crit") != NULL)
		goto fail;
	const json_t *alg = json_object_get(header, "alg");
	if (!json_is_string(alg) || json_string_length(alg) != 5
	    || memcmp(json_string_value(alg), "HS256", 5) != 0) {
		why = hr_auth_alg;
		goto fail;
	}

	/* Signature, over the bytes as sent. */
	size_t siglen;
	if (slen > 44 || b64url_decode(dot2 + 1, slen, sig, &siglen) != 0)
		goto fail;
	rv = hmac_sha256(secret, secret_len, token, (size_t)(dot2 - token), mac);
	if (rv != 0)
		goto fail;
	rv = HR_EINVAL;
	if (siglen != sizeof(mac) || CRYPTO_memcmp(sig, mac, sizeof(mac)) != 0) {
		why = hr_auth_bad_signature;
		goto fail;
	}

	/* Payload: only now is it worth reading. */
	rv = decode_json_part(dot1 + 1, plen, scratch, &payload);
	if (rv != 0) {
		rv = rv == HR_ENOMEM ? HR_ENOMEM : HR_EINVAL;
		goto fail;
	}
	rv = HR_EINVAL;
	if (numeric_claim(payload, "exp", &out->has_exp, &out->exp) != 0
	    || numeric_claim(payload, "nbf", &out->has_nbf, &out->nbf) != 0
	    || numeric_claim(payload, "iat", &out->has_iat, &out->iat) != 0)
		goto fail;

	char uid[HR_JWT_USER_MAX + 1], sub[HR_JWT_USER_MAX + 1];
	bool has_uid = claim_string(json_object_get(payload, "user_id"), uid, sizeof(uid));
	bool has_sub = claim_string(json_object_get(payload, "sub"), sub, sizeof(sub));
	if (has_uid)
		memcpy(out->user, uid, sizeof(uid));
	else if (has_sub)
		memcpy(out->user, sub, sizeof(sub));

	if (out->has_exp && out->exp <= (double)now - leeway_s) {
		why = hr_auth_expired;
		goto fail;
	}
	if (out->has_nbf && out->nbf > (double)now + leeway_s) {
		why = hr_auth_not_yet_valid;
		goto fail;
	}
	if (want_user != NULL) {
		if (has_uid && strcmp(uid, want_user) == 0) {
			memcpy(out->user, uid, sizeof(uid));
		} else if (has_sub && strcmp(sub, want_user) == 0) {
			memcpy(out->user, sub, sizeof(sub));
		} else {
			why = hr_auth_wrong_user;
			goto fail;
		}
	}
	json_decref(header);
	json_decref(payload);
	return 0;

fail:
	json_decref(header);
	json_decref(payload);
	OPENSSL_cleanse(scratch, sizeof(scratch));
	return refuse(reason, why, rv);
}

int
hr_jwt_sign(const char *payload_json, size_t len, const void *secret, size_t secret_len, char *out,
    size_t outcap, size_t *outlen)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[SHA256_DIGEST_LENGTH];
	size_t need, n = 0;
	int rv;

	/* header + '.' + payload + '.' + 43 signature letters + NUL */
	need = (sizeof(header) - 1 + 2) / 3 * 4 + 1 + (len + 2) / 3 * 4 + 1 + 44 + 1;
	if (len > SIZE_MAX / 2 || outcap < need)
		return HR_EMSGSIZE;
	n += hr_b64url_encode(header, sizeof(header) - 1, out + n);
	out[n++] = '.';
	n += hr_b64url_encode(payload_json, len, out + n);
	rv = hmac_sha256(secret, secret_len, out, n, mac);
	if (rv != 0)
		return rv;
	out[n++] = '.';
	n += hr_b64url_encode(mac, sizeof(mac), out + n);
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return 0;
}

/* ---------------------------------------------------------------- extraction */

/* ASCII case-insensitive equality of n bytes; lower must be lower case. */
static bool
ascii_caseeq(const char *s, const char *lower, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)lower[i])
			return false;
	}
	return true;
}

int
hr_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hr_auth_token_from_query(const char *query, size_t qlen, char *out, size_t outcap, size_t *outlen)
{
	size_t i = 0;

	if (outcap == 0)
		return HR_EMSGSIZE;
	while (i < qlen) {
		size_t start = i;
		while (i < qlen && query[i] != '&' && query[i] != ';')
			i++;
		size_t end = i++; /* skip the separator */
		if (end - start < 6 || memcmp(query + start, "token=", 6) != 0)
			continue;
		size_t n = 0;
		for (size_t k = start + 6; k < end; k++) {
			unsigned char c = (unsigned char)query[k];
			if (c == '%') {
				int hi, lo;
				if (end - k < 3 || (hi = hr_hexval((unsigned char)query[k + 1])) < 0
				    || (lo = hr_hexval((unsigned char)query[k + 2])) < 0)
					return HR_EBADMSG;
				c = (unsigned char)(hi << 4 | lo);
				k += 2;
				if (c == '\0')
					return HR_EBADMSG;
			} else if (c == '+') {
				c = ' ';
			}
			if (n + 1 >= outcap)
				return HR_EMSGSIZE;
			out[n++] = (char)c;
		}
		out[n] = '\0';
		if (outlen != NULL)
			*outlen = n;
		return 0;
	}
	return HR_ENOENT;
}

int
hr_auth_bearer(const char *value, size_t len, const char **tok, size_t *toklen)
{
	size_t i = 0;

	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (len - i < 7 || !ascii_caseeq(value + i, "bearer", 6)
	    || (value[i + 6] != ' ' && value[i + 6] != '\t'))
		return HR_ENOENT;
	i += 6;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	size_t end = len;
	while (end > i
	    && (value[end - 1] == ' ' || value[end - 1] == '\t' || value[end - 1] == '\r'
	        || value[end - 1] == '\n'))
		end--;
	if (end == i)
		return HR_ENOENT;
	*tok = value + i;
	*toklen = end - i;
	return 0;
}

/* ---------------------------------------------------------------- API key */

bool
hr_api_key_check(const char *given, size_t len, const char *key)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

	if (given == NULL || key == NULL || len == 0)
		return false;
	/* Hashing both sides first makes the compare fixed-length: its time
	 * says nothing about the key's length or where the inputs differ. */
	if (SHA256((const unsigned char *)given, len, a) == NULL
	    || SHA256((const unsigned char *)key, strlen(key), b) == NULL)
		return false;
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* ---------------------------------------------------------------- origins */

enum host_kind { HOST_EXACT, HOST_SUBDOMAINS, HOST_APEX_AND_SUBDOMAINS };

typedef struct origin_parts {
	char scheme[16]; /* lower case, "" when absent */
	char host[HR_ORIGIN_HOST_MAX + 1];
	int port; /* explicit port, or -1 */
	enum host_kind kind;
} origin_parts;

static int
default_port(const char *scheme)
{
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0)
		return 80;
	if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0)
		return 443;
	return 0;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Split s (n bytes) into scheme, host and port. A pattern may leave out the
 * scheme and may start its host with "*." or "."; an Origin header value may
 * do neither. Anything else than scheme://host[:port] is an error (-1).
 */
static int
parse_origin(const char *s, size_t n, bool pattern, origin_parts *o)
{
	size_t i = 0, k;

	memset(o, 0, sizeof(*o));
	o->port = -1;
	o->kind = HOST_EXACT;

	/* scheme "://", when there is one */
	for (k = 0; k + 2 < n; k++)
		if (s[k] == ':' && s[k + 1] == '/' && s[k + 2] == '/')
			break;
	if (k + 2 < n) {
		if (k == 0 || k >= sizeof(o->scheme) || !is_alpha(s[0]))
			return -1;
		for (i = 0; i < k; i++) {
			char c = s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
				return -1;
			o->scheme[i] = lower(c);
		}
		o->scheme[k] = '\0';
		i = k + 3;
	} else if (!pattern) {
		return -1;
	}

	/* host, with the pattern prefixes */
	if (pattern && n - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
		o->kind = HOST_SUBDOMAINS;
		i += 2;
	} else if (pattern && n - i >= 1 && s[i] == '.') {
		o->kind = HOST_APEX_AND_SUBDOMAINS;
		i += 1;
	}
	size_t h = 0;
	if (i < n && s[i] == '[') {
		if (o->kind != HOST_EXACT)
			return -1;
		while (i < n && s[i] != ']') {
			char c = lower(s[i]);
			if (h > 0 && !is_digit(c) && !(c >= 'a' && c <= 'f') && c != ':'
			    && c != '.')
				return -1;
			if (h >= HR_ORIGIN_HOST_MAX)
				return -1;
			o->host[h++] = c;
			i++;
		}
		/* room for ']' and the NUL: host[] holds HR_ORIGIN_HOST_MAX + 1 */
		if (i >= n || h < 3 || h >= HR_ORIGIN_HOST_MAX)
			return -1;
		o->host[h++] = ']';
		i++;
	} else {
		while (i < n && s[i] != ':') {
			char c = lower(s[i]);
			if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.')
				return -1;
			if (c == '.' && (h == 0 || o->host[h - 1] == '.'))
				return -1;
			if (h >= HR_ORIGIN_HOST_MAX)
				return -1;
			o->host[h++] = c;
			i++;
		}
		if (h == 0)
			return -1;
	}
	o->host[h] = '\0';

	/* port */
	if (i < n) {
		if (s[i] != ':' || n - i < 2 || n - i > 6)
			return -1;
		int port = 0;
		for (i++; i < n; i++) {
			if (!is_digit(s[i]))
				return -1;
			port = port * 10 + (s[i] - '0');
		}
		if (port < 1 || port > 65535)
			return -1;
		o->port = port;
	}
	return 0;
}

int
hr_origins_parse(const char *list, hr_origin_policy *p, char *err, size_t errlen)
{
	size_t i = 0, len;

	memset(p, 0, sizeof(*p));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (list == NULL)
		goto fail_empty;
	len = strlen(list);
	while (i <= len) {
		size_t start = i;
		while (i < len && list[i] != ',')
			i++;
		size_t end = i++;
		while (start < end && (list[start] == ' ' || list[start] == '\t'))
			start++;
		while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
			end--;
		if (end == start)
			continue;
		const char *e = list + start;
		size_t n = end - start;
		if (n == 1 && e[0] == '*') {
			p->any = true;
			continue;
		}
		if (p->n >= HR_ORIGINS_MAX) {
			if (err != NULL)
				snprintf(err, errlen, "--allowed-origins: more than %d entries",
				    HR_ORIGINS_MAX);
			return HR_EINVAL;
		}
		origin_parts o;
		if (parse_origin(e, n, true, &o) != 0) {
			if (err != NULL)
				snprintf(err, errlen,
				    "--allowed-origins: bad entry '%.*s' (want "
				    "scheme://host[:port], "
				    "scheme://*.domain, host or *)",
				    n > 200 ? 200 : (int)n, e);
			return HR_EINVAL;
		}
		hr_origin_rule *r = &p->rules[p->n++];
		memcpy(r->scheme, o.scheme, sizeof(r->scheme));
		memcpy(r->host, o.host, sizeof(r->host));
		if (o.scheme[0] == '\0')
			r->port = o.port >= 0 ? o.port : -1;
		else
			r->port = o.port >= 0 ? o.port : default_port(o.scheme);
		r->subdomains = o.kind != HOST_EXACT;
		r->apex = o.kind != HOST_SUBDOMAINS;
	}
	if (p->any || p->n > 0)
		return 0;
fail_empty:
	if (err != NULL)
		snprintf(err, errlen, "--allowed-origins: empty list");
	return HR_EINVAL;
}

static bool
rule_matches(const hr_origin_rule *r, const origin_parts *o, int port)
{
	if (r->scheme[0] != '\0' && strcmp(r->scheme, o->scheme) != 0)
		return false;
	if (r->port != -1 && r->port != port)
		return false;
	size_t hl = strlen(o->host), rl = strlen(r->host);
	if (r->apex && hl == rl && memcmp(o->host, r->host, hl) == 0)
		return true;
	return r->subdomains && hl > rl + 1 && o->host[hl - rl - 1] == '.'
	    && memcmp(o->host + hl - rl, r->host, rl) == 0;
}

bool
hr_origins_allowed(const hr_origin_policy *p, const char *origin, size_t len)
{
	origin_parts o;

	if (p->any)
		return true;
	if (origin == NULL || len == 0 || len > 16 + 3 + HR_ORIGIN_HOST_MAX + 6)
		return false;
	if (parse_origin(origin, len, false, &o) != 0)
		return false;
	int port = o.port >= 0 ? o.port : default_port(o.scheme);
	for (size_t i = 0; i < p->n; i++)
		if (rule_matches(&p->rules[i], &o, port))
			return true;
	return false;
}

/* ---------------------------------------------------------------- rate */

void
hr_bucket_init(hr_bucket *b, double rate, uint64_t now_ns)
{
	memset(b, 0, sizeof(*b));
	if (!(rate > 0) || !isfinite(rate))
		return; /* disabled */
	b->_rate = rate;
	b->_burst = 2 * rate;
	b->_tokens = b->_burst;
	b->_last_ns = now_ns;
	double close_after = ceil(2 * rate);
	b->_close_after = close_after < 1 ? 1
	    : close_after > 1e9           ? 1000000000u
	                                  : (uint32_t)close_after;
}

hr_bucket_verdict
hr_bucket_take(hr_bucket *b, uint64_t now_ns)
{
	if (b->_rate <= 0)
		return HR_BUCKET_ALLOW;
	if (now_ns > b->_last_ns) {
		b->_tokens += b->_rate * ((double)(now_ns - b->_last_ns) / 1e9);
		if (b->_tokens > b->_burst)
			b->_tokens = b->_burst;
		b->_last_ns = now_ns;
	}
	/* The epsilon absorbs rounding in the refill, so that R tokens a
	 * second really means one token every 1/R s. */
	if (b->_tokens >= 1.0 - 1e-9) {
		b->_tokens -= 1.0;
		if (b->_tokens < 0)
			b->_tokens = 0;
		b->_refusals = 0;
		return HR_BUCKET_ALLOW;
	}
	if (b->_refusals < UINT32_MAX)
		b->_refusals++;
	if (b->_refusals >= b->_close_after)
		return HR_BUCKET_CLOSE;
	return b->_refusals == 1 ? HR_BUCKET_REFUSE_ERROR : HR_BUCKET_REFUSE;
}
