/*
 * test_security.c: the node's pure security checks (transport/security.c). JWTs
 * come from the real peer: Python's hmac, hashlib, base64 and json run
 * through /usr/bin/python3, as a Django backend would make them with the
 * standard library; a few come from the in-test builder (hr_jwt_sign),
 * which Python in turn verifies. Time is injected everywhere.
 */
#define _POSIX_C_SOURCE 200809L /* popen, setenv */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "transport/security_int.h"

#define PY "/usr/bin/python3"
#define NOW INT64_C(1700000000)
#define SECRET "s3cret-for-tests"

TestSuite(jwt, .timeout = 60);
TestSuite(token_extract, .timeout = 10);
TestSuite(api_key, .timeout = 10);
TestSuite(origins, .timeout = 10);
TestSuite(bucket, .timeout = 10);

/* ---------------------------------------------------------------- helpers */

/*
 * Make a token with Python. payload: JSON text; header: JSON text or NULL
 * for {"alg":"HS256","typ":"JWT"}; the signature uses the digest the header's
 * alg names (HS256, HS512) and is empty for "none".
 */
static const char py_token[]
    = "import os, hmac, hashlib, base64, json\n"
      "def b(x): return base64.urlsafe_b64encode(x).rstrip(b'=')\n"
      "h = json.loads(os.environ.get('HR_HDR') or '{\"alg\":\"HS256\",\"typ\":\"JWT\"}')\n"
      "p = json.loads(os.environ['HR_PAYLOAD'])\n"
      "si = b(json.dumps(h).encode()) + b'.' + b(json.dumps(p).encode())\n"
      "dig = {'HS256': hashlib.sha256, 'HS512': hashlib.sha512}.get(h.get('alg'))\n"
      "sig = hmac.new(os.environ['HR_SECRET'].encode(), si, dig).digest() if dig else b''\n"
      "print((si + b'.' + b(sig)).decode())\n";

static char *
py_make(const char *payload, const char *header, const char *secret)
{
	static char tok[HR_JWT_MAX * 2];

	cr_assert_eq(setenv("HR_PY", py_token, 1), 0);
	cr_assert_eq(setenv("HR_PAYLOAD", payload, 1), 0);
	cr_assert_eq(setenv("HR_HDR", header ? header : "", 1), 0);
	cr_assert_eq(setenv("HR_SECRET", secret, 1), 0);
	FILE *f = popen(PY " -c 'import os; exec(os.environ[\"HR_PY\"])'", "r");
	cr_assert_not_null(f);
	size_t n = fread(tok, 1, sizeof(tok) - 1, f);
	int st = pclose(f);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python failed making a token");
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
		n--;
	tok[n] = '\0';
	cr_assert_gt(n, 10);
	return tok;
}

/* Verify with the test secret; returns the reason (NULL when valid). */
static const char *
check(const char *tok, const char *want_user, hr_jwt_claims *cl)
{
	const char *why = "unset";
	int rv = hr_jwt_verify(
	    tok, strlen(tok), SECRET, strlen(SECRET), NOW, HR_JWT_LEEWAY_S, want_user, cl, &why);
	if (rv == 0)
		cr_assert_null(why);
	else
		cr_assert_eq(rv, HR_EINVAL, "rv %d", rv);
	return rv == 0 ? NULL : why;
}

#define assert_valid(tok, user)                                                                    \
	cr_assert_null(check(tok, user, NULL), "refused: %s", check(tok, user, NULL))
#define assert_refused(tok, user, reason)                                                          \
	do {                                                                                       \
		const char *why_ = check(tok, user, NULL);                                         \
		cr_assert_not_null(why_, "accepted, wanted %s", reason);                           \
		cr_assert_str_eq(why_, reason);                                                    \
	} while (0)

/* ---------------------------------------------------------------- JWT */

Test(jwt, python_token_valid_on_broadcast_and_user_routes)
{
	char *t = py_make("{\"user_id\": \"alice\", \"exp\": 1700003600}", NULL, SECRET);
	hr_jwt_claims cl;
	cr_assert_null(check(t, NULL, &cl));
	cr_assert(cl.has_exp);
	cr_assert_eq(cl.exp, 1700003600.0);
	cr_assert_not(cl.has_nbf);
	cr_assert_str_eq(cl.user, "alice");
	cr_assert_null(check(t, "alice", &cl));
	cr_assert_str_eq(cl.user, "alice");
}

Test(jwt, bobs_token_on_alices_route_is_wrong_user)
{
	char *t = py_make("{\"user_id\": \"bob\", \"exp\": 1700003600}", NULL, SECRET);
	assert_valid(t, "bob");
	assert_refused(t, "alice", "wrong_user");
	/* a prefix or extension of the id is not the id */
	assert_refused(t, "bo", "wrong_user");
	assert_refused(t, "bobby", "wrong_user");
	assert_refused(t, "Bob", "wrong_user");
}

Test(jwt, user_route_without_user_claim_is_wrong_user)
{
	char *t = py_make("{\"exp\": 1700003600}", NULL, SECRET);
	assert_valid(t, NULL);
	assert_refused(t, "alice", "wrong_user");
}

Test(jwt, sub_or_user_id_either_may_match)
{
	char *t = py_make("{\"sub\": \"alice\"}", NULL, SECRET);
	assert_valid(t, "alice");
	t = py_make("{\"user_id\": 42, \"sub\": \"alice\"}", NULL, SECRET);
	assert_valid(t, "alice");
	assert_valid(t, "42");
	assert_refused(t, "bob", "wrong_user");
}

Test(jwt, numeric_user_id_compares_as_decimal_string)
{
	char *t = py_make("{\"user_id\": 42}", NULL, SECRET);
	hr_jwt_claims cl;
	cr_assert_null(check(t, "42", &cl));
	cr_assert_str_eq(cl.user, "42");
	assert_refused(t, "042", "wrong_user");
	assert_refused(t, "4", "wrong_user");
	t = py_make("{\"sub\": -7}", NULL, SECRET);
	assert_valid(t, "-7");
	t = py_make("{\"user_id\": 12345678901234}", NULL, SECRET);
	assert_valid(t, "12345678901234");
}

Test(jwt, float_bool_null_and_object_ids_never_match)
{
	assert_refused(py_make("{\"user_id\": 42.0}", NULL, SECRET), "42", "wrong_user");
	assert_refused(py_make("{\"user_id\": 42.5}", NULL, SECRET), "42", "wrong_user");
	assert_refused(py_make("{\"user_id\": true}", NULL, SECRET), "true", "wrong_user");
	assert_refused(py_make("{\"user_id\": null}", NULL, SECRET), "null", "wrong_user");
	assert_refused(py_make("{\"user_id\": [42]}", NULL, SECRET), "42", "wrong_user");
}

Test(jwt, expired_and_within_leeway)
{
	/* PyJWT: expired when exp <= now - leeway */
	assert_refused(py_make("{\"exp\": 1699990000}", NULL, SECRET), NULL, "expired");
	assert_refused(py_make("{\"exp\": 1699999970}", NULL, SECRET), NULL, "expired");
	assert_valid(py_make("{\"exp\": 1699999971}", NULL, SECRET), NULL);
	assert_valid(py_make("{\"exp\": 1699999999.5}", NULL, SECRET), NULL);
	/* no leeway at all */
	char *t = py_make("{\"exp\": 1699999990}", NULL, SECRET);
	const char *why = NULL;
	cr_assert_eq(hr_jwt_verify(t, strlen(t), SECRET, strlen(SECRET), NOW, 0, NULL, NULL, &why),
	    HR_EINVAL);
	cr_assert_str_eq(why, "expired");
}

Test(jwt, token_without_exp_is_accepted)
{
	assert_valid(py_make("{\"user_id\": \"alice\"}", NULL, SECRET), "alice");
	assert_valid(py_make("{}", NULL, SECRET), NULL);
}

Test(jwt, nbf_in_the_future_and_within_leeway)
{
	assert_refused(py_make("{\"nbf\": 1700000031}", NULL, SECRET), NULL, "not_yet_valid");
	assert_refused(py_make("{\"nbf\": 1800000000, \"exp\": 1900000000}", NULL, SECRET), NULL,
	    "not_yet_valid");
	assert_valid(py_make("{\"nbf\": 1700000030}", NULL, SECRET), NULL);
	assert_valid(py_make("{\"nbf\": 1600000000}", NULL, SECRET), NULL);
}

Test(jwt, non_numeric_exp_or_nbf_is_malformed)
{
	assert_refused(py_make("{\"exp\": \"1800000000\"}", NULL, SECRET), NULL, "malformed");
	assert_refused(py_make("{\"nbf\": null}", NULL, SECRET), NULL, "malformed");
}

Test(jwt, signed_with_another_secret)
{
	char *t = py_make("{\"user_id\": \"alice\"}", NULL, "not-the-secret");
	assert_refused(t, "alice", "bad_signature");
	assert_refused(t, NULL, "bad_signature");
	/* the empty secret is a secret like any other */
	t = py_make("{}", NULL, "");
	assert_refused(t, NULL, "bad_signature");
	const char *why = NULL;
	cr_assert_eq(hr_jwt_verify(t, strlen(t), "", 0, NOW, 30, NULL, NULL, &why), 0);
}

Test(jwt, alg_none_is_refused)
{
	char *t
	    = py_make("{\"user_id\": \"alice\"}", "{\"alg\": \"none\", \"typ\": \"JWT\"}", SECRET);
	cr_assert_eq(t[strlen(t) - 1], '.'); /* empty signature */
	assert_refused(t, "alice", "alg");
	t = py_make("{}", "{\"alg\": \"None\"}", SECRET);
	assert_refused(t, NULL, "alg");
}

Test(jwt, other_algs_and_missing_alg_are_refused)
{
	assert_refused(
	    py_make("{}", "{\"alg\": \"HS512\", \"typ\": \"JWT\"}", SECRET), NULL, "alg");
	assert_refused(py_make("{}", "{\"alg\": \"RS256\"}", SECRET), NULL, "alg");
	assert_refused(py_make("{}", "{\"alg\": \"hs256\"}", SECRET), NULL, "alg");
	assert_refused(py_make("{}", "{\"typ\": \"JWT\"}", SECRET), NULL, "alg");
	assert_refused(py_make("{}", "{\"alg\": 256}", SECRET), NULL, "alg");
	assert_refused(py_make("{}", "{\"alg\": \"HS256\\u0000\"}", SECRET), NULL, "malformed");
	assert_refused(
	    py_make("{}", "{\"alg\": \"HS256\", \"crit\": [\"exp\"]}", SECRET), NULL, "malformed");
}

Test(jwt, tampered_payload_is_bad_signature)
{
	char good[HR_JWT_MAX], other[HR_JWT_MAX];
	strcpy(good, py_make("{\"user_id\": \"bob\"}", NULL, SECRET));
	strcpy(other, py_make("{\"user_id\": \"alice\"}", NULL, SECRET));
	/* alice's payload with bob's signature */
	char *g1 = strchr(good, '.'), *g2 = strrchr(good, '.');
	char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
	char forged[HR_JWT_MAX];
	snprintf(
	    forged, sizeof(forged), "%.*s%.*s%s", (int)(g1 - good), good, (int)(o2 - o1), o1, g2);
	assert_refused(forged, "alice", "bad_signature");
	/* one letter changed anywhere in header or payload */
	for (size_t i = 0; i < (size_t)(g2 - good); i++) {
		if (good[i] == '.')
			continue;
		char t[HR_JWT_MAX];
		strcpy(t, good);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		cr_assert_not_null(check(t, NULL, NULL), "accepted with byte %zu changed", i);
	}
	/* one letter changed in the signature */
	for (size_t i = (size_t)(g2 - good) + 1; good[i] != '\0'; i++) {
		char t[HR_JWT_MAX];
		strcpy(t, good);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		const char *why = check(t, NULL, NULL);
		cr_assert_not_null(why, "accepted with signature byte %zu changed", i);
		cr_assert(strcmp(why, "bad_signature") == 0 || strcmp(why, "malformed") == 0);
	}
}

Test(jwt, every_truncation_is_refused)
{
	char t[HR_JWT_MAX];
	strcpy(t, py_make("{\"user_id\": \"alice\", \"exp\": 1700003600}", NULL, SECRET));
	size_t n = strlen(t);
	for (size_t k = 0; k < n; k++) {
		const char *why = "unset";
		cr_assert_eq(hr_jwt_verify(t, k, SECRET, strlen(SECRET), NOW, 30, NULL, NULL, &why),
		    HR_EINVAL, "prefix of %zu bytes accepted", k);
		cr_assert_not_null(why);
	}
	assert_refused("abc", NULL, "malformed");
	assert_refused("abc.def", NULL, "malformed");
	assert_refused("..", NULL, "malformed");
	/* an extra part */
	char t2[HR_JWT_MAX + 8];
	snprintf(t2, sizeof(t2), "%s.x", t);
	assert_refused(t2, NULL, "malformed");
}

Test(jwt, bad_base64_is_malformed)
{
	char t[HR_JWT_MAX];
	strcpy(t, py_make("{\"user_id\": \"alice\"}", NULL, SECRET));
	char *dot = strchr(t, '.');
	char bad[HR_JWT_MAX];
	strcpy(bad, t);
	bad[1] = '*';
	assert_refused(bad, NULL, "malformed");
	strcpy(bad, t);
	bad[dot - t + 1] = '+'; /* standard alphabet, not url-safe */
	cr_assert_not_null(check(bad, NULL, NULL));
	/* padding is not part of the compact form */
	char padded[HR_JWT_MAX + 4];
	snprintf(padded, sizeof(padded), "%.*s=%s", (int)(dot - t), t, dot);
	assert_refused(padded, NULL, "malformed");
	/* non-canonical last letter: same bytes spelled differently */
	assert_refused("eyJhbGciOiJIUzI1NiJ9IA.e30.", NULL, "bad_signature");
	assert_refused("eyJhbGciOiJIUzI1NiJ9IB.e30.", NULL, "malformed");
	/* header that is not JSON, or JSON but not an object */
	assert_refused("bm90IGpzb24.e30.AAAA", NULL, "malformed");
	assert_refused("WzFd.e30.AAAA", NULL, "malformed");
}

Test(jwt, payload_must_be_a_json_object)
{
	char buf[HR_JWT_MAX];
	size_t n;
	cr_assert_eq(hr_jwt_sign("[1,2]", 5, SECRET, strlen(SECRET), buf, sizeof(buf), &n), 0);
	assert_refused(buf, NULL, "malformed");
	cr_assert_eq(hr_jwt_sign("{\"a\":", 5, SECRET, strlen(SECRET), buf, sizeof(buf), &n), 0);
	assert_refused(buf, NULL, "malformed");
	const char dup[] = "{\"user_id\":\"bob\",\"user_id\":\"alice\"}";
	cr_assert_eq(
	    hr_jwt_sign(dup, strlen(dup), SECRET, strlen(SECRET), buf, sizeof(buf), &n), 0);
	assert_refused(buf, "alice", "malformed");
	assert_refused(buf, "bob", "malformed");
}

Test(jwt, huge_tokens_are_malformed_without_reading_them)
{
	size_t big = 1 << 20;
	char *t = malloc(big + 1);
	cr_assert_not_null(t);
	memset(t, 'A', big);
	t[10] = '.';
	t[20] = '.';
	t[big] = '\0';
	const char *why = NULL;
	cr_assert_eq(hr_jwt_verify(t, big, SECRET, 6, NOW, 30, NULL, NULL, &why), HR_EINVAL);
	cr_assert_str_eq(why, "malformed");
	cr_assert_eq(
	    hr_jwt_verify(t, HR_JWT_MAX + 1, SECRET, 6, NOW, 30, NULL, NULL, &why), HR_EINVAL);
	cr_assert_str_eq(why, "malformed");
	free(t);

	/* a signed token just under the limit is fine, just over is not */
	char payload[HR_JWT_MAX];
	char tok[HR_JWT_MAX * 2];
	size_t n;
	size_t plen = 6000;
	memcpy(payload, "{\"x\":\"", 6);
	memset(payload + 6, 'a', plen - 8);
	memcpy(payload + plen - 2, "\"}", 2);
	cr_assert_eq(hr_jwt_sign(payload, plen, SECRET, strlen(SECRET), tok, sizeof(tok), &n), 0);
	cr_assert_lt(n, (size_t)HR_JWT_MAX);
	assert_valid(tok, NULL);
	plen = 6200;
	memset(payload + 6, 'a', plen - 8);
	memcpy(payload + plen - 2, "\"}", 2);
	cr_assert_eq(hr_jwt_sign(payload, plen, SECRET, strlen(SECRET), tok, sizeof(tok), &n), 0);
	cr_assert_gt(n, (size_t)HR_JWT_MAX);
	assert_refused(tok, NULL, "malformed");
}

Test(jwt, missing_token)
{
	const char *why = NULL;
	cr_assert_eq(hr_jwt_verify(NULL, 0, SECRET, 6, NOW, 30, NULL, NULL, &why), HR_EINVAL);
	cr_assert_str_eq(why, "missing");
	cr_assert_eq(hr_jwt_verify("", 0, SECRET, 6, NOW, 30, "alice", NULL, &why), HR_EINVAL);
	cr_assert_str_eq(why, "missing");
}

Test(jwt, builder_tokens_verify_here_and_in_python)
{
	char tok[512];
	size_t n;
	const char p[] = "{\"user_id\":\"alice\",\"exp\":1700003600}";
	cr_assert_eq(hr_jwt_sign(p, strlen(p), SECRET, strlen(SECRET), tok, sizeof(tok), &n), 0);
	cr_assert_eq(strlen(tok), n);
	assert_valid(tok, "alice");
	cr_assert_eq(hr_jwt_sign(p, strlen(p), SECRET, strlen(SECRET), tok, 40, &n), HR_EMSGSIZE);

	/* Python checks our signature and our encoding with its own code */
	cr_assert_eq(hr_jwt_sign(p, strlen(p), SECRET, strlen(SECRET), tok, sizeof(tok), &n), 0);
	cr_assert_eq(setenv("HR_TOK", tok, 1), 0);
	cr_assert_eq(setenv("HR_SECRET", SECRET, 1), 0);
	cr_assert_eq(
	    setenv("HR_PY",
	        "import os, hmac, hashlib, base64, json, sys\n"
	        "def d(s): return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))\n"
	        "h, p, s = os.environ['HR_TOK'].split('.')\n"
	        "mac = hmac.new(os.environ['HR_SECRET'].encode(), (h + '.' + p).encode(),"
	        " hashlib.sha256).digest()\n"
	        "ok = hmac.compare_digest(mac, d(s)) and json.loads(d(h))['alg'] == 'HS256'"
	        " and json.loads(d(p))['user_id'] == 'alice'\n"
	        "sys.exit(0 if ok else 1)\n",
	        1),
	    0);
	int st = system(PY " -c 'import os; exec(os.environ[\"HR_PY\"])'");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python refused our token");
}

/* ---------------------------------------------------------------- extraction */

Test(token_extract, query_parameter)
{
	char out[HR_JWT_MAX + 1];
	size_t n = 99;
	const char *q = "a=1&token=abc.def.ghi&b=2";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "abc.def.ghi");
	cr_assert_eq(n, 11);
	q = "token=a%2Eb%2ec;x=y";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "a.b.c");
	q = "token=a+b";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "a b");
	/* the first one wins */
	q = "token=first&token=second";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "first");
	q = "token=";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_eq(n, 0);
	/* qlen bounds the search */
	q = "x=1&token=abc";
	cr_assert_eq(hr_auth_token_from_query(q, 4, out, sizeof(out), &n), HR_ENOENT);
}

Test(token_extract, query_refusals)
{
	char out[16];
	size_t n;
	const char *q = "xtoken=abc&tokens=1&Token=2";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), HR_ENOENT);
	cr_assert_eq(hr_auth_token_from_query("", 0, out, sizeof(out), &n), HR_ENOENT);
	q = "token=%zz";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), HR_EBADMSG);
	q = "token=%4";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), HR_EBADMSG);
	q = "token=a%00b";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), HR_EBADMSG);
	q = "token=0123456789abcdef";
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), HR_EMSGSIZE);
	q = "token=0123456789abcde"; /* 15 + NUL fits */
	cr_assert_eq(hr_auth_token_from_query(q, strlen(q), out, sizeof(out), &n), 0);
	cr_assert_eq(n, 15);
}

Test(token_extract, hexval_takes_every_hex_digit_and_nothing_else)
{
	const char *digits = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(hr_hexval(digits[i]), i);
		if (i >= 10)
			cr_assert_eq(hr_hexval(digits[i] - 'a' + 'A'), i);
	}
	cr_assert_eq(hr_hexval('g'), -1);
	cr_assert_eq(hr_hexval('G'), -1);
	cr_assert_eq(hr_hexval('/'), -1);
	cr_assert_eq(hr_hexval(':'), -1);
	cr_assert_eq(hr_hexval('%'), -1);
	cr_assert_eq(hr_hexval('\0'), -1);
	cr_assert_eq(hr_hexval(0xff), -1);
}

Test(token_extract, bearer_header)
{
	const char *t = NULL;
	size_t n = 0;
	const char *v = "Bearer abc.def.ghi";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), 0);
	cr_assert_eq(n, 11);
	cr_assert_eq(memcmp(t, "abc.def.ghi", 11), 0);
	v = "  bEaReR \t abc  \r\n";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(memcmp(t, "abc", 3), 0);
	v = "Basic YWxhZGRpbjpvcGVuc2VzYW1l";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), HR_ENOENT);
	v = "Bearer";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), HR_ENOENT);
	v = "Bearer    ";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), HR_ENOENT);
	v = "Bearerabc";
	cr_assert_eq(hr_auth_bearer(v, strlen(v), &t, &n), HR_ENOENT);
	cr_assert_eq(hr_auth_bearer("", 0, &t, &n), HR_ENOENT);
}

/* ---------------------------------------------------------------- API key */

Test(api_key, match_and_mismatch)
{
	const char *key = "k-0123456789";
	cr_assert(hr_api_key_check("k-0123456789", 12, key));
	cr_assert_not(hr_api_key_check("k-0123456780", 12, key));
	cr_assert_not(hr_api_key_check("K-0123456789", 12, key));
	/* length differences either way, including a prefix and an extension */
	cr_assert_not(hr_api_key_check("k-012345678", 11, key));
	cr_assert_not(hr_api_key_check("k-01234567890", 13, key));
	cr_assert_not(hr_api_key_check("k-0123456789", 11, key));
	/* len, not the NUL, decides */
	cr_assert_not(hr_api_key_check("k-0123456789\0", 13, key));
}

Test(api_key, empty_and_null_never_pass)
{
	cr_assert_not(hr_api_key_check("", 0, "key"));
	cr_assert_not(hr_api_key_check("", 0, ""));
	cr_assert_not(hr_api_key_check(NULL, 3, "key"));
	cr_assert_not(hr_api_key_check("key", 3, NULL));
}

/* ---------------------------------------------------------------- origins */

static hr_origin_policy pol;

static void
policy(const char *list)
{
	char err[256];
	int rv = hr_origins_parse(list, &pol, err, sizeof(err));
	cr_assert_eq(rv, 0, "parse '%s': %s", list, err);
}

static bool
allowed(const char *origin)
{
	return hr_origins_allowed(&pol, origin, origin ? strlen(origin) : 0);
}

Test(origins, exact_origin)
{
	policy("https://app.example.com, http://localhost:8000");
	cr_assert(allowed("https://app.example.com"));
	cr_assert(allowed("https://app.example.com:443")); /* the default port */
	cr_assert(allowed("http://localhost:8000"));
	cr_assert_not(allowed("http://app.example.com"));       /* scheme */
	cr_assert_not(allowed("https://app.example.com:8443")); /* port */
	cr_assert_not(allowed("http://localhost"));             /* port 80 */
	cr_assert_not(allowed("http://localhost:8001"));
	cr_assert_not(allowed("https://example.com"));
	cr_assert_not(allowed("https://evil.app.example.com"));
	cr_assert_not(allowed("https://app.example.com.evil.com"));
	cr_assert_not(allowed("https://app.example.co"));
	/* not exactly an origin */
	cr_assert_not(allowed("https://app.example.com/"));
	cr_assert_not(allowed("https://app.example.com/path"));
	cr_assert_not(allowed("https://user@app.example.com"));
	cr_assert_not(allowed("app.example.com"));
	cr_assert_not(allowed("https://app.example.com:"));
}

Test(origins, case_insensitive_scheme_and_host)
{
	policy("HTTPS://App.Example.COM");
	cr_assert(allowed("https://app.example.com"));
	cr_assert(allowed("HTTPS://APP.EXAMPLE.COM:443"));
}

Test(origins, missing_and_null_are_refused)
{
	policy("https://app.example.com");
	cr_assert_not(allowed(NULL));
	cr_assert_not(hr_origins_allowed(&pol, "", 0));
	cr_assert_not(allowed("null"));
}

Test(origins, star_allows_everything)
{
	policy("*");
	cr_assert(pol.any);
	cr_assert(allowed("https://evil.com"));
	cr_assert(allowed("null"));
	cr_assert(allowed(NULL)); /* as Channels' OriginValidator with "*" */
	policy("https://a.example.com,*");
	cr_assert(allowed("http://x"));
}

Test(origins, subdomain_pattern_any_depth_not_apex)
{
	policy("https://*.example.com");
	cr_assert(allowed("https://a.example.com"));
	cr_assert(allowed("https://a.b.c.example.com"));
	cr_assert(allowed("https://A.B.Example.Com:443"));
	cr_assert_not(allowed("https://example.com"));
	cr_assert_not(allowed("https://.example.com"));
	cr_assert_not(allowed("https://evilexample.com"));
	cr_assert_not(allowed("https://example.com.evil.com"));
	cr_assert_not(allowed("https://a.example.com.evil.com"));
	cr_assert_not(allowed("http://a.example.com"));
	cr_assert_not(allowed("https://a.example.com:8443"));
	cr_assert_not(allowed("wss://a.example.com"));
	policy("https://*.example.com:8443");
	cr_assert(allowed("https://a.example.com:8443"));
	cr_assert_not(allowed("https://a.example.com"));
}

Test(origins, channels_style_patterns)
{
	/* .domain: the domain and its subdomains (Django's is_same_domain) */
	policy("https://.example.com");
	cr_assert(allowed("https://example.com"));
	cr_assert(allowed("https://a.b.example.com"));
	cr_assert_not(allowed("https://badexample.com"));
	/* no scheme: any scheme, any port */
	policy("example.com");
	cr_assert(allowed("http://example.com"));
	cr_assert(allowed("https://example.com:8443"));
	cr_assert_not(allowed("https://a.example.com"));
	policy("*.example.com");
	cr_assert(allowed("http://a.example.com:1234"));
	cr_assert_not(allowed("http://example.com"));
}

Test(origins, ipv6_literal)
{
	policy("http://[::1]:8000");
	cr_assert(allowed("http://[::1]:8000"));
	cr_assert_not(allowed("http://[::2]:8000"));
	cr_assert_not(allowed("http://[::1]"));
}

/* Found by fuzz_origins: a bracketed literal that filled the host buffer
 * wrote its NUL one past the end (tests/fuzz/regressions/origins/). */
Test(origins, ipv6_literal_at_the_length_limit)
{
	char origin[400], list[400], err[256];
	hr_origin_policy p2;

	policy("http://[::1]:8000");
	for (size_t content = 249; content <= 260; content++) {
		int n = snprintf(origin, sizeof(origin), "http://[:%.*s]", (int)content - 1,
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
		    "ffffffffffffffff");
		cr_assert(n > 0 && (size_t)n < sizeof(origin));
		cr_assert_not(allowed(origin), "%zu", content);
		snprintf(list, sizeof(list), "%s", origin);
		int rv = hr_origins_parse(list, &p2, err, sizeof(err));
		/* "[" + content must leave room for "]" and the NUL */
		if (content + 1 < HR_ORIGIN_HOST_MAX) {
			cr_assert_eq(rv, 0, "%zu: %s", content, err);
			cr_assert(hr_origins_allowed(&p2, origin, strlen(origin)));
		} else {
			cr_assert_neq(rv, 0, "%zu", content);
		}
	}
}

Test(origins, bad_lists_are_errors)
{
	const char *bad[] = {
		"",
		" , ,",
		"https://app.example.com/",
		"https://app.example.com/path",
		"https://app.example.com?x",
		"https://user@app.example.com",
		"https://",
		"https://:443",
		"https://app.example.com:",
		"https://app.example.com:0",
		"https://app.example.com:65536",
		"https://app.example.com:12a",
		"https://a.*.example.com",
		"https://*",
		"https://*.*.example.com",
		"https://**.example.com",
		"://app.example.com",
		"1https://app.example.com",
		"https://app..example.com",
		"https://[::1",
		"https://*.[::1]",
		"ok.example.com, bad/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		cr_assert_eq(hr_origins_parse(bad[i], &pol, err, sizeof(err)), HR_EINVAL,
		    "accepted '%s'", bad[i]);
		cr_assert_neq(err[0], '\0');
		cr_assert_not_null(strstr(err, "--allowed-origins"));
	}
	cr_assert_eq(hr_origins_parse(NULL, &pol, NULL, 0), HR_EINVAL);
}

Test(origins, entry_count_is_bounded)
{
	char list[HR_ORIGINS_MAX * 32];
	size_t n = 0;
	for (int i = 0; i < HR_ORIGINS_MAX; i++)
		n += (size_t)snprintf(
		    list + n, sizeof(list) - n, "%shttps://h%d.example.com", i ? "," : "", i);
	policy(list);
	cr_assert_eq(pol.n, HR_ORIGINS_MAX);
	cr_assert(allowed("https://h63.example.com"));
	snprintf(list + n, sizeof(list) - n, ",https://one-too-many.example.com");
	cr_assert_eq(hr_origins_parse(list, &pol, NULL, 0), HR_EINVAL);
}

Test(origins, overlong_values_are_refused_not_read)
{
	policy("https://*.example.com");
	char o[2048];
	memcpy(o, "https://", 8);
	memset(o + 8, 'a', sizeof(o) - 8 - 13);
	memcpy(o + sizeof(o) - 13, ".example.com", 12);
	o[sizeof(o) - 1] = '\0';
	cr_assert_not(allowed(o));
}

/* ---------------------------------------------------------------- bucket */

#define SEC UINT64_C(1000000000)

Test(bucket, burst_of_500_gets_2r_then_one_error_then_close)
{
	hr_bucket b;
	uint64_t t0 = 5 * SEC;
	hr_bucket_init(&b, 20, t0);
	int allowed = 0, errors = 0, silent = 0, closed_at = -1;
	for (int i = 0; i < 500; i++) {
		hr_bucket_verdict v = hr_bucket_take(&b, t0);
		if (v == HR_BUCKET_ALLOW) {
			cr_assert_eq(errors + silent, 0, "allowed after a refusal at %d", i);
			allowed++;
		} else if (v == HR_BUCKET_REFUSE_ERROR) {
			cr_assert_eq(i, 40);
			errors++;
		} else if (v == HR_BUCKET_REFUSE) {
			silent++;
		} else {
			closed_at = i;
			break;
		}
	}
	cr_assert_eq(allowed, 40);
	cr_assert_eq(errors, 1);
	cr_assert_eq(silent, 38);
	cr_assert_eq(closed_at, 79); /* the 40th refusal in a row */
}

Test(bucket, refills_continuously_up_to_2r)
{
	hr_bucket b;
	uint64_t t = 0;
	hr_bucket_init(&b, 20, t);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_REFUSE_ERROR);
	/* one token every 50 ms */
	cr_assert_eq(hr_bucket_take(&b, t + 49 * SEC / 1000), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, t + 50 * SEC / 1000), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, t + 50 * SEC / 1000), HR_BUCKET_REFUSE_ERROR);
	/* a second later: 20 more */
	t += 50 * SEC / 1000 + SEC;
	for (int i = 0; i < 20; i++)
		cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_ALLOW, "message %d", i);
	cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_REFUSE_ERROR);
	/* a long pause fills it to 2R, not more */
	t += 3600 * SEC;
	for (int i = 0; i < 40; i++)
		cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, t), HR_BUCKET_REFUSE_ERROR);
}

Test(bucket, steady_rate_at_r_is_never_refused)
{
	hr_bucket b;
	hr_bucket_init(&b, 20, 0);
	for (uint64_t i = 1; i <= 2000; i++)
		cr_assert_eq(hr_bucket_take(&b, i * SEC / 20), HR_BUCKET_ALLOW, "message %lu",
		    (unsigned long)i);
}

Test(bucket, an_allowed_message_ends_the_run)
{
	hr_bucket b;
	hr_bucket_init(&b, 2, 0); /* burst 4, close on the 4th refusal */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_REFUSE_ERROR);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, SEC / 2), HR_BUCKET_ALLOW);
	/* a new run: error again, and the count starts over */
	cr_assert_eq(hr_bucket_take(&b, SEC / 2), HR_BUCKET_REFUSE_ERROR);
	cr_assert_eq(hr_bucket_take(&b, SEC / 2), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, SEC / 2), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, SEC / 2), HR_BUCKET_CLOSE);
}

Test(bucket, fractional_and_disabled_rates)
{
	hr_bucket b;
	hr_bucket_init(&b, 0.5, 0); /* burst 1, close at the first refusal */
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_CLOSE);
	hr_bucket_init(&b, 1.5, 0); /* burst 3, close at the 3rd refusal */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_REFUSE_ERROR);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_REFUSE);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_CLOSE);
	hr_bucket_init(&b, 0, 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_ALLOW);
	hr_bucket_init(&b, -3, 0);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_ALLOW);
}

Test(bucket, time_going_backwards_refills_nothing)
{
	hr_bucket b;
	hr_bucket_init(&b, 1, 10 * SEC);
	cr_assert_eq(hr_bucket_take(&b, 10 * SEC), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, 10 * SEC), HR_BUCKET_ALLOW);
	cr_assert_eq(hr_bucket_take(&b, 1 * SEC), HR_BUCKET_REFUSE_ERROR);
	cr_assert_eq(hr_bucket_take(&b, 0), HR_BUCKET_CLOSE);
}
