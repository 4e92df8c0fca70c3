/*
 * send.c: `herald send`: publish one message through a node's HTTP API
 * (POST /api/groups/{group}/send or /api/channels/{channel}/send) as
 * {"type": T, "message": JSON}, over http or https (cli/http.c, libcurl).
 * Main thread of a short-lived command.
 *
 * Exit status: 0 on a 2xx answer (its body on stdout), 1 when the server
 * refuses or cannot be reached (the reason on stderr), 2 for bad usage.
 * The payload is checked to be JSON and then sent verbatim, so numbers and
 * key order reach the server exactly as typed.
 */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_impl.h"

#define MAX_PAYLOAD (1024 * 1024)
#define MAX_TIMEOUT_S 3600

enum { OPT_URL, OPT_API_KEY, OPT_TYPE, OPT_CACERT, OPT_TIMEOUT, OPT_GROUP, OPT_USER, OPT_CHANNEL };
static const char *const opt_names[]
    = { "--url", "--api-key", "--type", "--cacert", "--timeout", "--group", "--user", "--channel" };
#define N_OPTS (sizeof(opt_names) / sizeof(opt_names[0]))

/* What the command line asks for; strings borrowed from argv or envp. */
struct send_args {
	const char *val[N_OPTS];
	const char *json;
	int target; /* OPT_GROUP, OPT_USER or OPT_CHANNEL; -1 none */
	bool help;
};

static void
send_usage(FILE *f)
{
	fputs("usage: herald send [--url URL] [--api-key K] [--type T] [--cacert FILE]\n"
	      "                   [--timeout S] (--group G | --user U | --channel C) JSON\n"
	      "  URL (http:// or https://, a path prefix is kept) defaults to $HERALD_URL or\n"
	      "  http://localhost:8000, K to $HERALD_API_KEY, T to notification_message.\n"
	      "  https checks the server against the system's CA store, or FILE's CAs.\n"
	      "  S: seconds for the whole exchange (10). Exit 0 on 2xx, 1 when refused or\n"
	      "  unreachable, 2 on bad usage.\n",
	    f);
}

/* Percent-encode one path segment (RFC 3986 unreserved characters stay). */
static int
seg_encode(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
		    || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~';
		if (o + (plain ? 1 : 3) >= outlen)
			return HR_EMSGSIZE;
		if (plain) {
			out[o++] = (char)*c;
		} else {
			out[o++] = '%';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* One option of argv at *i ("--name value" or "--name=value"): 0, or 2 with
 * the reason on stderr. */
static int
parse_option(struct send_args *a, int argc, char *const *argv, int *i)
{
	const char *arg = argv[*i];
	for (size_t k = 0; k < N_OPTS; k++) {
		size_t n = strlen(opt_names[k]);
		if (strncmp(arg, opt_names[k], n) != 0 || (arg[n] != '\0' && arg[n] != '='))
			continue;
		const char *val = arg[n] == '=' ? arg + n + 1 : NULL;
		if (val == NULL && *i + 1 >= argc) {
			fprintf(stderr, "herald: send: %s: missing value\n", opt_names[k]);
			return 2;
		}
		if (val == NULL)
			val = argv[++*i];
		if (k >= OPT_GROUP) {
			if (a->target >= 0) {
				fprintf(stderr,
				    "herald: send: give one of --group, --user, "
				    "--channel\n");
				return 2;
			}
			a->target = (int)k;
		}
		a->val[k] = val;
		return 0;
	}
	fprintf(stderr, "herald: send: unknown option '%s'\n", arg);
	return 2;
}

/* argv and the environment into a; 0, or 2 with the reason on stderr. */
static int
parse_args(struct send_args *a, int argc, char *const *argv, char *const *envp)
{
	memset(a, 0, sizeof(*a));
	a->target = -1;
	a->val[OPT_URL] = hr_cli__env_get(envp, "HERALD_URL");
	a->val[OPT_API_KEY] = hr_cli__env_get(envp, "HERALD_API_KEY");
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			a->help = true;
			return 0;
		}
		if (strncmp(arg, "--", 2) == 0) {
			int rc = parse_option(a, argc, argv, &i);
			if (rc != 0)
				return rc;
		} else if (a->json != NULL) {
			fprintf(
			    stderr, "herald: send: one JSON payload only ('%s' is extra)\n", arg);
			return 2;
		} else {
			a->json = arg;
		}
	}
	if (a->val[OPT_URL] == NULL || *a->val[OPT_URL] == '\0')
		a->val[OPT_URL] = "http://localhost:8000";
	if (a->val[OPT_API_KEY] != NULL && *a->val[OPT_API_KEY] == '\0')
		a->val[OPT_API_KEY] = NULL;
	if (a->val[OPT_TYPE] == NULL)
		a->val[OPT_TYPE] = "notification_message";
	if (a->target < 0) {
		fprintf(stderr, "herald: send: one of --group, --user or --channel is required\n");
		return 2;
	}
	if (*a->val[a->target] == '\0') {
		fprintf(stderr, "herald: send: %s: empty name\n", opt_names[a->target]);
		return 2;
	}
	if (a->json == NULL) {
		fprintf(stderr, "herald: send: the JSON payload is missing\n");
		return 2;
	}
	if (*a->val[OPT_TYPE] == '\0') {
		fprintf(stderr, "herald: send: --type: empty\n");
		return 2;
	}
	const char *key = a->val[OPT_API_KEY];
	for (const char *c = key; c != NULL && *c; c++) {
		/* A header value: no spaces or control characters (the node's
		 * rule for --api-key), and bounded. */
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f
		    || c - key >= HR_CLI_MAX_VALUE) {
			fprintf(stderr,
			    "herald: send: --api-key: printable ASCII without "
			    "spaces, at most %d characters\n",
			    HR_CLI_MAX_VALUE);
			return 2;
		}
	}
	if (a->val[OPT_CACERT] != NULL && *a->val[OPT_CACERT] == '\0') {
		fprintf(stderr, "herald: send: --cacert: empty file name\n");
		return 2;
	}
	return 0;
}

/* --timeout S: whole seconds 1..MAX_TIMEOUT_S, in ms; -1 when bad. */
static long
timeout_ms(const char *v)
{
	if (v == NULL)
		return HR_CLI_HTTP_TIMEOUT_MS;
	long s = 0;
	if (*v == '\0')
		return -1;
	for (const char *c = v; *c; c++) {
		if (*c < '0' || *c > '9' || s > MAX_TIMEOUT_S)
			return -1;
		s = s * 10 + (*c - '0');
	}
	return s >= 1 && s <= MAX_TIMEOUT_S ? s * 1000 : -1;
}

/* The API path for the target, its name percent-encoded: 0, or 2. */
static int
api_path(const struct send_args *a, char *path, size_t size)
{
	char enc[3 * 256 + 8];
	const char *name = a->val[a->target];
	if (strlen(name) > 255 || seg_encode(name, enc, sizeof(enc)) != 0) {
		fprintf(stderr, "herald: send: %s: name too long\n", opt_names[a->target]);
		return 2;
	}
	if (a->target == OPT_GROUP)
		snprintf(path, size, "/api/groups/%s/send", enc);
	else if (a->target == OPT_USER)
		snprintf(path, size, "/api/groups/user_%s/send", enc);
	else
		snprintf(path, size, "/api/channels/%s/send", enc);
	return 0;
}

/* {"type": T, "message": JSON} with JSON verbatim (checked to parse); NULL
 * with the reason on stderr. Caller frees with free(). */
static char *
make_body(const struct send_args *a, size_t *len)
{
	size_t jlen = strlen(a->json);
	if (jlen > MAX_PAYLOAD) {
		fprintf(stderr, "herald: send: JSON: longer than %d bytes\n", MAX_PAYLOAD);
		return NULL;
	}
	json_error_t je;
	json_t *parsed = json_loadb(a->json, jlen, JSON_DECODE_ANY, &je);
	if (parsed == NULL) {
		fprintf(stderr, "herald: send: JSON: %s (at character %d)\n", je.text, je.position);
		return NULL;
	}
	json_decref(parsed);
	json_t *tj = json_string(a->val[OPT_TYPE]);
	if (tj == NULL) {
		fprintf(stderr, "herald: send: --type: not valid UTF-8\n");
		return NULL;
	}
	char *type_json = json_dumps(tj, JSON_ENCODE_ANY);
	json_decref(tj);
	size_t cap = (type_json ? strlen(type_json) : 0) + jlen + 32;
	char *body = type_json ? malloc(cap) : NULL;
	int bl
	    = body ? snprintf(body, cap, "{\"type\":%s,\"message\":%s}", type_json, a->json) : -1;
	free(type_json);
	if (bl < 0 || (size_t)bl >= cap) {
		fprintf(stderr, "herald: send: out of memory\n");
		free(body);
		return NULL;
	}
	*len = (size_t)bl;
	return body;
}

/* A refusal on stderr: the server's {"error": ...} when it sent one, else the
 * start of its answer on one line. */
static void
print_refusal(int status, char *resp, size_t rlen)
{
	json_t *e = json_loadb(resp, rlen, 0, NULL);
	const char *msg = e ? json_string_value(json_object_get(e, "error")) : NULL;
	if (msg != NULL) {
		fprintf(stderr, "herald: send: refused (HTTP %d): %s\n", status, msg);
	} else {
		size_t n = rlen > 300 ? 300 : rlen;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)resp[i] < ' ')
				resp[i] = ' ';
		fprintf(stderr, "herald: send: refused (HTTP %d): %.*s\n", status, (int)n, resp);
	}
	json_decref(e);
}

int
hr_cli__send_main(int argc, char *const *argv, char *const *envp)
{
	struct send_args a;
	char path[1024], err[1024];
	char *url = NULL, *body = NULL, *resp = NULL;
	int rc = parse_args(&a, argc, argv, envp);
	if (rc != 0 || a.help) {
		if (a.help)
			send_usage(stdout);
		return rc;
	}
	hr_cli_post req = { .api_key = a.val[OPT_API_KEY], .cacert = a.val[OPT_CACERT] };
	req.timeout_ms = timeout_ms(a.val[OPT_TIMEOUT]);
	if (req.timeout_ms < 0) {
		fprintf(stderr, "herald: send: --timeout: '%s' must be 1..%d seconds\n",
		    a.val[OPT_TIMEOUT], MAX_TIMEOUT_S);
		return 2;
	}
	rc = 2;
	if (api_path(&a, path, sizeof(path)) != 0 || (body = make_body(&a, &req.body_len)) == NULL)
		goto out;
	if (hr_cli__send_url(a.val[OPT_URL], path, &url, err, sizeof(err)) != 0) {
		fprintf(stderr, "herald: send: %s\n", err);
		goto out;
	}
	req.url = url;
	req.body = body;
	rc = 1;
	int status = 0;
	size_t rlen = 0;
	if (hr_cli__http_post(&req, &status, &resp, &rlen, err, sizeof(err)) != 0) {
		fprintf(stderr, "herald: send: %s\n", err);
		goto out;
	}
	if (status < 200 || status >= 300) {
		print_refusal(status, resp, rlen);
		goto out;
	}
	fwrite(resp, 1, rlen, stdout);
	if (rlen == 0 || resp[rlen - 1] != '\n')
		fputc('\n', stdout);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	free(resp);
	free(url);
	free(body);
	return rc;
}
