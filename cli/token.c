/*
 * token.c: `herald token`: an HS256 JWT for the WebSocket routes (docs/PROTOCOL.md
 * "Auth, origin, limits"), signed with OpenSSL's one-shot HMAC. Main thread only.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_impl.h"

#define MAX_TTL (10ll * 365 * 24 * 3600)

int
hr_cli__b64url(const void *in, size_t n, char *out, size_t outlen)
{
	size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
	if (need + 1 > outlen)
		return HR_EMSGSIZE;
	size_t o = hr_b64url_encode(in, n, out);
	out[o] = '\0';
	return (int)o;
}

int
hr_cli__token_make(const char *secret, const char *user, int64_t now, int64_t ttl, char *out,
    size_t outlen, char *err, size_t errlen)
{
	if (secret == NULL || *secret == '\0') {
		snprintf(err, errlen, "--secret: the secret is empty");
		return HR_EINVAL;
	}
	if (user == NULL || *user == '\0') {
		snprintf(err, errlen, "--user: the user id is empty");
		return HR_EINVAL;
	}
	if (ttl < 1 || ttl > MAX_TTL) {
		snprintf(err, errlen, "--ttl: must be 1..%lld seconds", (long long)MAX_TTL);
		return HR_EINVAL;
	}
	int rc = HR_ENOMEM;
	char *claims = NULL;
	json_t *o = json_object();
	if (o == NULL)
		goto fail;
	/* json_string validates UTF-8; a user id that is not text is refused. */
	json_t *u1 = json_string(user), *u2 = json_string(user);
	if (u1 == NULL || u2 == NULL) {
		json_decref(u1);
		json_decref(u2);
		snprintf(err, errlen, "--user: not valid UTF-8");
		rc = HR_EINVAL;
		goto fail;
	}
	if (json_object_set_new(o, "user_id", u1) != 0 || json_object_set_new(o, "sub", u2) != 0
	    || json_object_set_new(o, "iat", json_integer(now)) != 0
	    || json_object_set_new(o, "exp", json_integer(now + ttl)) != 0)
		goto fail;
	claims = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (claims == NULL)
		goto fail;

	rc = hr_jwt_sign(claims, strlen(claims), secret, strlen(secret), out, outlen, NULL);
	if (rc == HR_EMSGSIZE)
		goto fail_small;
	if (rc != 0) {
		snprintf(err, errlen, "HMAC-SHA256 failed");
		goto fail;
	}
	goto fail;
fail_small:
	snprintf(err, errlen, "token does not fit in %zu bytes", outlen);
	rc = HR_EMSGSIZE;
fail:
	if (rc == HR_ENOMEM)
		snprintf(err, errlen, "out of memory");
	free(claims);
	json_decref(o);
	return rc;
}

static void
token_usage(FILE *f)
{
	fputs("usage: herald token --secret S --user U [--ttl SECONDS]\n"
	      "  prints an HS256 JWT with claims user_id, sub, iat, exp (ttl 3600)\n"
	      "  --secret defaults to $HERALD_JWT_SECRET\n",
	    f);
}

int
hr_cli__token_main(int argc, char *const *argv, char *const *envp)
{
	const char *secret = hr_cli__env_get(envp, "HERALD_JWT_SECRET");
	const char *user = NULL;
	long long ttl = 3600;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			token_usage(stdout);
			return 0;
		}
		const char *names[] = { "--secret", "--user", "--ttl" };
		int which = -1;
		const char *val = NULL;
		for (int k = 0; k < 3; k++) {
			size_t n = strlen(names[k]);
			if (strncmp(a, names[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
				which = k;
				val = a[n] == '=' ? a + n + 1 : NULL;
			}
		}
		if (which < 0) {
			fprintf(stderr, "herald: token: unexpected argument '%s'\n", a);
			return 2;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "herald: token: %s: missing value\n", names[which]);
				return 2;
			}
			val = argv[++i];
		}
		if (which == 0) {
			secret = val;
		} else if (which == 1) {
			user = val;
		} else {
			char *end = NULL;
			errno = 0;
			ttl = strtoll(val, &end, 10);
			if (*val < '0' || *val > '9' || *end != '\0' || errno != 0 || ttl < 1
			    || ttl > MAX_TTL) {
				fprintf(stderr,
				    "herald: token: --ttl: '%s' must be 1..%lld seconds\n", val,
				    (long long)MAX_TTL);
				return 2;
			}
		}
	}
	if (secret == NULL || user == NULL) {
		fprintf(stderr, "herald: token: %s is required\n",
		    secret == NULL ? "--secret" : "--user");
		return 2;
	}
	if (strlen(user) > 1024) {
		fprintf(stderr, "herald: token: --user: longer than 1024 bytes\n");
		return 2;
	}
	char tok[8192], err[256];
	int rc = hr_cli__token_make(
	    secret, user, (int64_t)time(NULL), ttl, tok, sizeof(tok), err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "herald: token: %s\n", err);
		return rc == HR_EINVAL ? 2 : 1;
	}
	puts(tok);
	return fflush(stdout) == 0 ? 0 : 1;
}
