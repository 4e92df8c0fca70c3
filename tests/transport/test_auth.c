/*
 * test_auth.c: the handshake checks (transport/auth.c): HS256 JWT validation
 * and the Origin allow-list patterns. Pure functions, no server.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "transport/transport_impl.h"

static void
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tbl[]
	    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tbl[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tbl[v & 63];
	}
	out[o] = '\0';
}

/* header.payload.signature for payload JSON, signed with secret */
static void
make_token(const char *payload, const char *secret, const char *alg, char *out)
{
	char hjson[64], h[128], p[1024], input[1200], s[64];
	unsigned char mac[32];
	unsigned ml = 0;
	snprintf(hjson, sizeof(hjson), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	b64url((const unsigned char *)hjson, strlen(hjson), h);
	b64url((const unsigned char *)payload, strlen(payload), p);
	snprintf(input, sizeof(input), "%s.%s", h, p);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)input, strlen(input), mac,
	    &ml);
	b64url(mac, ml, s);
	sprintf(out, "%s.%s", input, s);
}

TestSuite(jwt);

Test(jwt, accepts_a_valid_token_with_and_without_exp, .timeout = 10)
{
	char t[2048], pl[128];
	snprintf(
	    pl, sizeof(pl), "{\"user_id\":\"alice\",\"exp\":%lld}", (long long)time(NULL) + 60);
	make_token(pl, "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), 0);
	cr_assert_eq(hr_auth__jwt_check(t, "k", "alice"), 0);
	make_token("{\"user_id\":\"alice\"}", "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", "alice"), 0);
}

Test(jwt, refuses_bad_signature_alg_expiry_nbf_and_user, .timeout = 10)
{
	char t[2048], pl[128];
	make_token("{\"user_id\":\"alice\"}", "other", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), -1);
	make_token("{\"user_id\":\"alice\"}", "k", "none", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), -1);
	snprintf(pl, sizeof(pl), "{\"exp\":%lld}", (long long)time(NULL) - 1);
	make_token(pl, "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), -1);
	snprintf(pl, sizeof(pl), "{\"nbf\":%lld}", (long long)time(NULL) + 100);
	make_token(pl, "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), -1);
	make_token("{\"user_id\":\"bob\"}", "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", "alice"), -1);
	make_token("{\"exp\":\"soon\"}", "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", NULL), -1);
}

Test(jwt, numeric_sub_compares_as_decimal_string, .timeout = 10)
{
	char t[2048];
	make_token("{\"sub\":42}", "k", "HS256", t);
	cr_assert_eq(hr_auth__jwt_check(t, "k", "42"), 0);
	cr_assert_eq(hr_auth__jwt_check(t, "k", "042"), -1);
}

Test(jwt, refuses_malformed_tokens, .timeout = 10)
{
	const char *bad[] = { "", "a", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "e30.e30.AAAA" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(hr_auth__jwt_check(bad[i], "k", NULL), -1, "%s", bad[i]);
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(hr_auth__jwt_check(big, "k", NULL), -1);
}

TestSuite(origin);

Test(origin, exact_wildcard_and_subdomain_patterns, .timeout = 10)
{
	const char *list = "https://app.example.com, https://*.example.org";
	cr_assert(hr_auth__origin_allowed(list, "https://app.example.com"));
	cr_assert(hr_auth__origin_allowed(list, "https://APP.example.com"));
	cr_assert(hr_auth__origin_allowed(list, "https://a.example.org"));
	cr_assert(hr_auth__origin_allowed(list, "https://a.b.example.org"));
	cr_assert_not(hr_auth__origin_allowed(list, "https://example.org"));
	cr_assert_not(hr_auth__origin_allowed(list, "http://a.example.org"));
	cr_assert_not(hr_auth__origin_allowed(list, "https://app.example.com.evil.com"));
	cr_assert_not(hr_auth__origin_allowed(list, "https://badexample.org"));
	cr_assert_not(hr_auth__origin_allowed(list, ""));
	cr_assert(hr_auth__origin_allowed("*", "https://anything"));
	cr_assert(hr_auth__origin_allowed("example.net", "http://example.net"));
}
