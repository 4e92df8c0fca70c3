/*
 * security_int.h: the node's security checks as pure functions. JWT (HS256)
 * verification for WebSocket handshakes, token extraction from a query
 * string or an Authorization header, the constant-time API key compare, the
 * --allowed-origins policy, and the per-connection inbound token bucket.
 *
 * Private to the transport module (and its tests and fuzzers). No lws, no
 * threads, no clocks: callers pass the time in. Every function may be called
 * from any thread; a policy or bucket is touched by one thread at a time
 * (an origin policy is read-only once parsed and may be shared freely).
 */
#ifndef HERALD_TRANSPORT_SECURITY_INT_H
#define HERALD_TRANSPORT_SECURITY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layer/layer.h"
#include "transport/transport.h"

/* ---------------------------------------------------------------- JWT */

/* Longest token accepted, in bytes; longer ones are "malformed" unread. */
#define HR_JWT_MAX 8192
/* Clock skew allowed on exp and nbf, in seconds (the node's default). */
#define HR_JWT_LEEWAY_S 30
/* Longest user id a route accepts (docs/PROTOCOL.md: \w+, at most 64 chars). */
#define HR_JWT_USER_MAX 64

/* Refusal reasons (static strings; compare by pointer or strcmp). They are
 * the {reason} label values of herald_auth_failures_total. */
extern const char hr_auth_malformed[];     /* "malformed" */
extern const char hr_auth_bad_signature[]; /* "bad_signature" */
extern const char hr_auth_alg[];           /* "alg" */
extern const char hr_auth_expired[];       /* "expired" */
extern const char hr_auth_not_yet_valid[]; /* "not_yet_valid" */
extern const char hr_auth_wrong_user[];    /* "wrong_user" */
extern const char hr_auth_missing[];       /* "missing" */

typedef struct hr_jwt_claims {
	bool has_exp, has_nbf, has_iat;
	double exp, nbf, iat; /* seconds since the epoch, as in the token */
	/* The user the token names, as a decimal or string, NUL-terminated:
	 * the claim that matched want_user, else user_id, else sub; "" when
	 * neither is a string or an integer of at most HR_JWT_USER_MAX chars.
	 * Safe to log (it is not a secret); the token itself is not. */
	char user[HR_JWT_USER_MAX + 1];
} hr_jwt_claims;

/*
 * Verify an HS256 JWT (compact form, header.payload.signature).
 *
 * Rules: at most HR_JWT_MAX bytes; three base64url parts without padding,
 * canonical (unused bits zero); the header a JSON object whose "alg" is the
 * string "HS256" ("none", "HS512", a missing or non-string alg: "alg") and
 * without "crit"; the signature exactly HMAC-SHA256(secret, header "."
 * payload), compared with CRYPTO_memcmp; the payload a JSON object without
 * duplicate keys. exp and nbf, when present, must be numbers: the token is
 * "expired" when exp <= now - leeway_s and "not_yet_valid" when
 * nbf > now + leeway_s (PyJWT's rules). A token without exp is accepted.
 *
 * want_user: NULL for the broadcast route; else the path's user id, and the
 * claim user_id or the claim sub must equal it (either one suffices). A
 * string claim compares bytewise; an integer claim compares as its decimal
 * string (42 == "42", -7 == "-7"). A JSON real never matches, not even
 * 42.0: Python writes it as "42.0" and str(42.0) is "42.0", so a Django
 * backend that meant 42 would have written an int. Booleans, null, arrays
 * and objects never match.
 *
 * Check order: size, shape, header, alg, signature, payload, exp, nbf, user;
 * nothing in the payload is trusted before the signature is checked.
 *
 * token: borrowed, need not be NUL-terminated; NULL or len 0 is "missing".
 * secret: borrowed, secret_len bytes (may be 0). out: may be NULL; filled
 * on success (and as far as known on refusal). reason: may be NULL; on
 * refusal gets one of the hr_auth_* strings, on success NULL.
 *
 * Returns 0 when the token is valid, HR_EINVAL when refused, HR_ENOMEM when
 * jansson could not allocate (reason "malformed").
 */
int hr_jwt_verify(const char *token, size_t len, const void *secret, size_t secret_len, int64_t now,
    int leeway_s, const char *want_user, hr_jwt_claims *out, const char **reason);

/*
 * The value of the first `token` parameter of a URL query string (the part
 * after '?', without it; '&' or ';' separate parameters), percent-decoded
 * ('+' is a space, as in forms) into out, NUL-terminated.
 * HR_ENOENT when there is no token parameter, HR_EMSGSIZE when the decoded
 * value does not fit outcap - 1 bytes (pass HR_JWT_MAX + 1), HR_EBADMSG for
 * a bad %-escape or a decoded NUL. query: borrowed, qlen bytes.
 *
 * With lws, lws_get_urlarg_by_name(wsi, "token=", buf, len) returns the
 * already-decoded value too; this function is for raw query strings.
 */
int hr_auth_token_from_query(
    const char *query, size_t qlen, char *out, size_t outcap, size_t *outlen);

/* The value of the hex digit ch (0-9, a-f, A-F), -1 when ch is none. Pure;
 * also http.c's path decoding. */
int hr_hexval(int ch);

/*
 * The credentials of an Authorization header value of the form
 * "Bearer <credentials>" (scheme case-insensitive, one or more spaces or
 * tabs, surrounding whitespace ignored). On success tok and toklen point into
 * value (borrowed). HR_ENOENT when the scheme is not Bearer or nothing
 * follows it.
 */
int hr_auth_bearer(const char *value, size_t len, const char **tok, size_t *toklen);

/* ---------------------------------------------------------------- API key */

/*
 * True when given (len bytes, borrowed) equals the NUL-terminated key.
 * Both are hashed with SHA-256 and the digests compared with CRYPTO_memcmp,
 * so the time taken depends on neither the position of the first difference
 * nor whether the lengths differ. An empty given, or a NULL key or given, is
 * never accepted.
 */
bool hr_api_key_check(const char *given, size_t len, const char *key);

/* ---------------------------------------------------------------- origins */

/* Limits on --allowed-origins. */
#define HR_ORIGINS_MAX 64      /* entries */
#define HR_ORIGIN_HOST_MAX 253 /* a DNS name, or a bracketed IPv6 literal */

typedef struct hr_origin_rule {
	char scheme[16];                   /* lower case; "" = any scheme */
	char host[HR_ORIGIN_HOST_MAX + 1]; /* lower case, without "*." or "." */
	int port;                          /* explicit or the scheme's default;
	                                      0 = none known; -1 = any */
	bool subdomains;                   /* match hosts under host */
	bool apex;                         /* match host itself */
} hr_origin_rule;

typedef struct hr_origin_policy {
	bool any; /* "*" was listed */
	size_t n;
	hr_origin_rule rules[HR_ORIGINS_MAX];
} hr_origin_policy;

/*
 * Parse --allowed-origins: a comma list (spaces around entries ignored,
 * empty entries ignored; at least one entry). Each entry is one of
 *   *                              anything, including a missing Origin
 *   scheme://host[:port]           that exact origin
 *   scheme://STAR.domain[:port]    (STAR a literal '*', as in
 *                                  https://STAR.example.com) subdomains of
 *                                  domain at any depth, not domain itself
 *   scheme://.domain[:port]        domain and its subdomains (Channels)
 *   host, *.domain, .domain        the same without a scheme: any scheme
 *                                  and any port (Channels)
 * Scheme and host are case-insensitive. A missing port means the scheme's
 * default (http and ws 80, https and wss 443), so https://a.example.com and
 * https://a.example.com:443 are the same origin, as in Channels. A path
 * (even a lone trailing "/"), query, fragment, user info, a bad port or an
 * empty host is an error; so are more than HR_ORIGINS_MAX entries.
 * On error returns HR_EINVAL and writes a one-line reason naming the entry
 * into err (may be NULL). list: borrowed. p: filled; nothing to free.
 */
int hr_origins_parse(const char *list, hr_origin_policy *p, char *err, size_t errlen);

/*
 * Whether a handshake with this Origin header value may proceed under p.
 * origin: borrowed, len bytes, NULL when the header is absent. With "*" in
 * the policy everything passes (as Channels' OriginValidator, whose "*" also
 * admits a missing Origin). Otherwise a missing Origin, "null", or a value
 * that is not exactly scheme://host[:port] is refused; a listed rule must
 * match scheme, port and host (case-insensitive).
 */
bool hr_origins_allowed(const hr_origin_policy *p, const char *origin, size_t len);

/* ---------------------------------------------------------------- rate */

/*
 * Inbound message token bucket, per connection (docs/PROTOCOL.md "Frames"):
 * starts full with 2R tokens, refills continuously at R tokens a second, a
 * message takes one token. A message without a token is refused: the first
 * refusal of each run gets an error frame, and the 2R-th refusal in a row
 * (ceil(2R), at least 1) closes the connection with 1008. An allowed
 * message ends the run. R <= 0 disables the bucket (every message passes).
 * Embedded in the connection; one thread at a time. Time is the caller's
 * monotonic clock in nanoseconds; time going backwards refills nothing.
 */
typedef struct hr_bucket {
	double _rate, _burst, _tokens;
	uint64_t _last_ns;
	uint32_t _refusals, _close_after;
} hr_bucket;

typedef enum hr_bucket_verdict {
	HR_BUCKET_ALLOW = 0,    /* handle the message */
	HR_BUCKET_REFUSE_ERROR, /* drop it; send {"type":"error","error":"rate limit"} */
	HR_BUCKET_REFUSE,       /* drop it silently */
	HR_BUCKET_CLOSE,        /* drop it and close with 1008 */
} hr_bucket_verdict;

void hr_bucket_init(hr_bucket *b, double rate, uint64_t now_ns);
hr_bucket_verdict hr_bucket_take(hr_bucket *b, uint64_t now_ns);

#endif /* HERALD_TRANSPORT_SECURITY_INT_H */
