/*
 * send.c: `herald send`: publish one message through a node's HTTP API
 * (POST /api/groups/{group}/send or /api/channels/{channel}/send) as
 * {"type": T, "message": JSON}. Main thread of a short-lived command.
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

static void
send_usage(FILE *f)
{
	fputs("usage: herald send [--url URL] [--api-key K] [--type T]\n"
	      "                   (--group G | --user U | --channel C) JSON\n"
	      "  URL defaults to $HERALD_URL or http://localhost:8000, K to $HERALD_API_KEY,\n"
	      "  T to notification_message. Exit 0 on 2xx, 1 when refused, 2 on bad usage.\n",
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

int
hr_cli__send_main(int argc, char *const *argv, char *const *envp)
{
	const char *url_s = hr_cli__env_get(envp, "HERALD_URL");
	const char *api_key = hr_cli__env_get(envp, "HERALD_API_KEY");
	const char *type = "notification_message";
	const char *target = NULL, *json = NULL;
	int target_kind = -1; /* 0 group, 1 user, 2 channel */
	static const char *const names[]
	    = { "--url", "--api-key", "--type", "--group", "--user", "--channel" };
	int rc = 2;
	char *body = NULL, *resp = NULL, *type_json = NULL;
	json_t *tj = NULL;

	if (url_s == NULL || *url_s == '\0')
		url_s = "http://localhost:8000";
	if (api_key != NULL && *api_key == '\0')
		api_key = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			send_usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (json != NULL) {
				fprintf(stderr,
				    "herald: send: one JSON payload only ('%s' is extra)\n", a);
				return 2;
			}
			json = a;
			continue;
		}
		int which = -1;
		const char *val = NULL;
		for (int k = 0; k < 6; k++) {
			size_t n = strlen(names[k]);
			if (strncmp(a, names[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
				which = k;
				val = a[n] == '=' ? a + n + 1 : NULL;
			}
		}
		if (which < 0) {
			fprintf(stderr, "herald: send: unknown option '%s'\n", a);
			return 2;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "herald: send: %s: missing value\n", names[which]);
				return 2;
			}
			val = argv[++i];
		}
		switch (which) {
		case 0:
			url_s = val;
			break;
		case 1:
			api_key = val;
			break;
		case 2:
			type = val;
			break;
		default:
			if (target != NULL) {
				fprintf(stderr,
				    "herald: send: give one of --group, --user, "
				    "--channel\n");
				return 2;
			}
			target = val;
			target_kind = which - 3;
			break;
		}
	}
	if (target == NULL) {
		fprintf(stderr, "herald: send: one of --group, --user or --channel is required\n");
		return 2;
	}
	if (*target == '\0') {
		fprintf(stderr, "herald: send: %s: empty name\n", names[target_kind + 3]);
		return 2;
	}
	if (json == NULL) {
		fprintf(stderr, "herald: send: the JSON payload is missing\n");
		return 2;
	}
	if (*type == '\0') {
		fprintf(stderr, "herald: send: --type: empty\n");
		return 2;
	}
	size_t jlen = strlen(json);
	if (jlen > MAX_PAYLOAD) {
		fprintf(stderr, "herald: send: JSON: longer than %d bytes\n", MAX_PAYLOAD);
		return 2;
	}
	json_error_t je;
	json_t *parsed = json_loadb(json, jlen, JSON_DECODE_ANY, &je);
	if (parsed == NULL) {
		fprintf(stderr, "herald: send: JSON: %s (at character %d)\n", je.text, je.position);
		return 2;
	}
	json_decref(parsed);

	hr_cli_url url;
	char err[512];
	if (hr_cli__url_parse(url_s, &url, err, sizeof(err)) != 0) {
		fprintf(stderr, "herald: send: %s\n", err);
		return 2;
	}
	char enc[3 * 256 + 8], path[1024];
	if (strlen(target) > 255 || seg_encode(target, enc, sizeof(enc)) != 0) {
		fprintf(stderr, "herald: send: %s: name too long\n", names[target_kind + 3]);
		return 2;
	}
	if (target_kind == 0)
		snprintf(path, sizeof(path), "/api/groups/%s/send", enc);
	else if (target_kind == 1)
		snprintf(path, sizeof(path), "/api/groups/user_%s/send", enc);
	else
		snprintf(path, sizeof(path), "/api/channels/%s/send", enc);

	tj = json_string(type);
	if (tj == NULL) {
		fprintf(stderr, "herald: send: --type: not valid UTF-8\n");
		return 2;
	}
	rc = 1;
	type_json = json_dumps(tj, JSON_ENCODE_ANY);
	if (type_json == NULL) {
		fprintf(stderr, "herald: send: out of memory\n");
		goto out;
	}
	size_t cap = strlen(type_json) + jlen + 32;
	body = malloc(cap);
	if (body == NULL) {
		fprintf(stderr, "herald: send: out of memory\n");
		goto out;
	}
	int bl = snprintf(body, cap, "{\"type\":%s,\"message\":%s}", type_json, json);
	if (bl < 0 || (size_t)bl >= cap) {
		fprintf(stderr, "herald: send: out of memory\n");
		goto out;
	}
	int status = 0;
	size_t rlen = 0;
	int hrc = hr_cli__http_post(&url, path, api_key, body, (size_t)bl, HR_CLI_HTTP_TIMEOUT_MS,
	    &status, &resp, &rlen, err, sizeof(err));
	if (hrc != 0) {
		fprintf(stderr, "herald: send: %s\n", err);
		goto out;
	}
	if (status >= 200 && status < 300) {
		fwrite(resp, 1, rlen, stdout);
		if (rlen == 0 || resp[rlen - 1] != '\n')
			fputc('\n', stdout);
		rc = fflush(stdout) == 0 ? 0 : 1;
		goto out;
	}
	/* Refused: show the server's {"error": ...} when it sent one. */
	json_t *e = json_loadb(resp, rlen, 0, NULL);
	const char *msg = e ? json_string_value(json_object_get(e, "error")) : NULL;
	if (msg != NULL)
		fprintf(stderr, "herald: send: refused (HTTP %d): %s\n", status, msg);
	else {
		/* Not JSON: show the start of it, on one line. */
		size_t n = rlen > 300 ? 300 : rlen;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)resp[i] < ' ')
				resp[i] = ' ';
		fprintf(stderr, "herald: send: refused (HTTP %d): %.*s\n", status, (int)n, resp);
	}
	json_decref(e);
out:
	free(resp);
	free(body);
	free(type_json);
	json_decref(tj);
	return rc;
}
