/*
 * fuzz_jwt.c: libFuzzer harness for WebSocket handshake credentials:
 * hr_jwt_verify, hr_auth_token_from_query and hr_auth_bearer.
 *
 * The first input byte picks a mode, the rest is the data:
 *   0  the data is a token, verified as is (and as a query string and an
 *      Authorization value, whose results are verified too);
 *   1  the data is a payload, signed correctly, so that claim parsing is
 *      reached: the verdict may be anything but "bad_signature" or "alg";
 *   2  the data is a header, signed correctly over the payload {}: the
 *      verdict may be anything but "bad_signature".
 * Whatever the mode: only a NULL reason goes with 0, and the claims' user
 * is always a terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "transport/security_int.h"

#include "fuzz.h"

#define SECRET "fuzz-secret"
#define NOW INT64_C(1700000000)

static const char *
verify(const char *tok, size_t len, const char *user)
{
	hr_jwt_claims cl;
	const char *why = "unset";
	int rv = hr_jwt_verify(
	    tok, len, SECRET, sizeof(SECRET) - 1, NOW, HR_JWT_LEEWAY_S, user, &cl, &why);
	CHECK(rv == 0 || rv == HR_EINVAL || rv == HR_ENOMEM);
	CHECK((rv == 0) == (why == NULL));
	CHECK(memchr(cl.user, '\0', sizeof(cl.user)) != NULL);
	return why;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char tok[HR_JWT_MAX * 2 + 64];
	const char *users[] = { NULL, "alice", "42" };
	size_t n;

	if (size == 0)
		return 0;
	int mode = data[0] % 3;
	const char *user = users[(data[0] / 3) % 3];
	const char *d = (const char *)data + 1;
	size--;

	if (mode == 0) {
		(void)verify(d, size, user);
		char q[HR_JWT_MAX + 1];
		if (hr_auth_token_from_query(d, size, q, sizeof(q), &n) == 0) {
			CHECK(n < sizeof(q) && q[n] == '\0');
			(void)verify(q, n, user);
		}
		const char *b;
		if (hr_auth_bearer(d, size, &b, &n) == 0) {
			CHECK(b >= d && n <= size && (size_t)(b - d) <= size - n && n > 0);
			(void)verify(b, n, user);
		}
	} else if (mode == 1) {
		if (hr_jwt_sign(d, size, SECRET, sizeof(SECRET) - 1, tok, sizeof(tok), &n) == 0) {
			const char *why = verify(tok, n, user);
			if (n <= HR_JWT_MAX)
				CHECK(why == NULL
				    || (why != hr_auth_bad_signature && why != hr_auth_alg));
		}
	} else {
		if (size > HR_JWT_MAX)
			return 0;
		unsigned char mac[32];
		unsigned int maclen = 0;
		n = hr_b64url_encode(d, size, tok);
		memcpy(tok + n, ".e30", 4);
		n += 4;
		CHECK(HMAC(EVP_sha256(), SECRET, sizeof(SECRET) - 1, (unsigned char *)tok, n, mac,
		          &maclen)
		    != NULL);
		tok[n++] = '.';
		n += hr_b64url_encode(mac, maclen, tok + n);
		const char *why = verify(tok, n, user);
		if (n <= HR_JWT_MAX)
			CHECK(why != hr_auth_bad_signature);
	}
	return 0;
}
