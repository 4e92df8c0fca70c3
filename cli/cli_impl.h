/*
 * cli_impl.h: private declarations of the `cli` module (options, send, token).
 * Nothing outside cli/ and tests/cli/ includes this file.
 *
 * Every function here runs on the main thread before the node starts (or in a
 * short-lived command); none of them exits the process: they return an HR_E*
 * code and a one-line reason so that main.c decides the exit status and tests
 * can check every error path.
 */
#ifndef HERALD_CLI_IMPL_H
#define HERALD_CLI_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "transport/transport.h"

/* Longest accepted option value (flag, environment or file), and the largest
 * config file read. Values are secrets, URLs and lists: 4 KiB is plenty. */
#define HR_CLI_MAX_VALUE 4096
#define HR_CLI_MAX_FILE (64 * 1024)
/* Strings owned by a parsed configuration (globs, URLs, secrets...). */
#define HR_CLI_MAX_STRINGS 128
/* Rows of serve's option table (cli/options.c asserts it). */
#define HR_CLI_MAX_OPTIONS 64

/*
 * The result of parsing `herald serve ...`: the node's configuration and the
 * storage its strings point into. Initialise with hr_cli__serve_init, release
 * with hr_cli__serve_fini (which tolerates a half-filled struct).
 */
typedef struct hr_cli_serve {
	hr_config cfg;
	char *_strings[HR_CLI_MAX_STRINGS];
	size_t _n_strings;
	char *_given[HR_CLI_MAX_OPTIONS]; /* each option's winning values, for --check */
	bool help;                        /* `--help` was given: print usage, start nothing */
	bool check; /* `--check` was given: print the configuration, start nothing */
} hr_cli_serve;

void hr_cli__serve_init(hr_cli_serve *s);
void hr_cli__serve_fini(hr_cli_serve *s);

/*
 * Parse the arguments that follow `serve` (argv[0] is the first option),
 * the environment `envp` (NULL-terminated "NAME=value" strings, e.g. environ;
 * NULL means none) and the file named by --config (or HERALD_CONFIG).
 * Precedence: flags > environment > file; for a repeatable option the values
 * of the winning source replace those of the others.
 * Returns 0, or HR_EINVAL with a one-line reason naming the option in err.
 * s must have been initialised; on error call hr_cli__serve_fini anyway.
 */
int hr_cli__parse_serve(
    hr_cli_serve *s, int argc, char *const *argv, char *const *envp, char *err, size_t errlen);

/* One-screen summary of serve's options. */
void hr_cli__serve_usage(FILE *f);

/*
 * `herald serve --check`: the effective configuration of s (parsed without
 * error) as config-file lines, `name = value`, one per value of a repeatable
 * option, every option in --help order; the secrets (--jwt-secret,
 * --api-key, a Redis password) shown as `***`, an option that is not set as
 * a `# name: not set` comment. Returns 0, or HR_EIO when f fails.
 */
int hr_cli__serve_print(FILE *f, const hr_cli_serve *s);

/* ---------------------------------------------------------------- token */

/*
 * Make an HS256 JWT with claims {"user_id":user,"sub":user,"iat":now,
 * "exp":now+ttl}. The token (NUL-terminated) goes into out. HR_EINVAL with a
 * reason (empty secret or user, ttl < 1), HR_EMSGSIZE when outlen is too small,
 * HR_EIO when OpenSSL fails.
 */
int hr_cli__token_make(const char *secret, const char *user, int64_t now, int64_t ttl, char *out,
    size_t outlen, char *err, size_t errlen);

/* base64url without padding of n bytes into out (NUL-terminated). Returns the
 * length written, or HR_EMSGSIZE. */
int hr_cli__b64url(const void *in, size_t n, char *out, size_t outlen);

/* `herald token ...` (argv[0] is the first option). Returns the exit status. */
int hr_cli__token_main(int argc, char *const *argv, char *const *envp);

/* ---------------------------------------------------------------- send */

/* Limits of `herald send`'s HTTP client (libcurl). */
#define HR_CLI_HTTP_TIMEOUT_MS 10000
#define HR_CLI_HTTP_MAX_RESPONSE (1024 * 1024 + 16 * 1024)

/*
 * Check a --url value and join it with an API path: "http[s]://host[:port]
 * [/prefix]" + "/api/..." gives "http[s]://host[:port]/prefix/api/...", the
 * prefix kept as given (trailing slashes dropped). [v6] literals are allowed;
 * credentials, a query or a fragment are refused. On success *out is the URL
 * (caller frees with free()). HR_EINVAL with a reason naming --url, or
 * HR_ENOMEM.
 */
int hr_cli__send_url(const char *url, const char *path, char **out, char *err, size_t errlen);

/* One POST of `herald send`. Strings are borrowed for the call. */
typedef struct hr_cli_post {
	const char *url;     /* full URL, from hr_cli__send_url */
	const char *api_key; /* NULL: no Authorization header */
	const char *cacert;  /* NULL: the system's CA store */
	const char *body;
	size_t body_len;
	long timeout_ms; /* the whole exchange, connect included */
} hr_cli_post;

/*
 * POST req->body as application/json through libcurl (http or https, with
 * certificate and host name checks). On success *status is the HTTP status
 * and the response body (NUL-terminated, caller frees with free()) is in
 * *resp / *resp_len. The response is bounded by HR_CLI_HTTP_MAX_RESPONSE
 * (else HR_EMSGSIZE); a transfer that fails is HR_EIO (HR_ETIMEDOUT when it
 * timed out), with libcurl's reason in err.
 */
int hr_cli__http_post(
    const hr_cli_post *req, int *status, char **resp, size_t *resp_len, char *err, size_t errlen);

/* `herald send ...` (argv[0] is the first option). Returns the exit status:
 * 0 on a 2xx answer, 1 when refused or unreachable, 2 for bad usage. */
int hr_cli__send_main(int argc, char *const *argv, char *const *envp);

/* The value of NAME in envp ("NAME=value" strings), or NULL. */
const char *hr_cli__env_get(char *const *envp, const char *name);

#endif /* HERALD_CLI_IMPL_H */
