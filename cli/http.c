/*
 * http.c: `herald send`'s HTTP client, through libcurl: the --url check and
 * join (a path prefix is kept, https allowed) and one bounded POST with
 * certificate checks against the system's CA store or --cacert. Main thread
 * of a short-lived command.
 */
#define _POSIX_C_SOURCE 200809L

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_impl.h"

/* The part of u named by what, or NULL when it is absent (caller frees with
 * curl_free). */
static char *
url_part(CURLU *u, CURLUPart what)
{
	char *v = NULL;
	if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
		return NULL;
	return v;
}

/* A part that --url must not have: 0, or HR_EINVAL with a reason. */
static int
refuse_part(CURLU *u, CURLUPart what, const char *url, const char *why, char *err, size_t errlen)
{
	char *v = url_part(u, what);
	if (v == NULL)
		return 0;
	curl_free(v);
	snprintf(err, errlen, "--url: '%s': %s", url, why);
	return HR_EINVAL;
}

static int
check_url(CURLU *u, const char *url, char *err, size_t errlen)
{
	int rc = HR_EINVAL;
	char *scheme = url_part(u, CURLUPART_SCHEME);
	char *port = url_part(u, CURLUPART_PORT);
	if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		snprintf(err, errlen, "--url: '%s' must start with http:// or https://", url);
		goto out;
	}
	if (port != NULL && (strtol(port, NULL, 10) < 1 || strtol(port, NULL, 10) > 65535)) {
		snprintf(err, errlen, "--url: '%s': the port must be 1..65535", url);
		goto out;
	}
	if ((rc = refuse_part(
	         u, CURLUPART_USER, url, "no credentials (use --api-key)", err, errlen))
	        != 0
	    || (rc = refuse_part(u, CURLUPART_QUERY, url, "no query", err, errlen)) != 0
	    || (rc = refuse_part(u, CURLUPART_FRAGMENT, url, "no fragment", err, errlen)) != 0)
		goto out;
	rc = 0;
out:
	curl_free(scheme);
	curl_free(port);
	return rc;
}

int
hr_cli__send_url(const char *url, const char *path, char **out, char *err, size_t errlen)
{
	int rc = HR_EINVAL;
	char *base = NULL, *joined = NULL, *full = NULL;
	*out = NULL;
	for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
		if (*c <= ' ' || *c >= 0x7f) {
			snprintf(err, errlen, "--url: '%s' has spaces or control characters", url);
			return HR_EINVAL;
		}
	}
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "--url: '%s' must start with http:// or https://", url);
		return HR_EINVAL;
	}
	CURLU *u = curl_url();
	if (u == NULL)
		goto fail_nomem;
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "--url: '%s': %s", url, curl_url_strerror(uc));
		goto out;
	}
	if ((rc = check_url(u, url, err, errlen)) != 0)
		goto out;
	rc = HR_ENOMEM;
	if ((base = url_part(u, CURLUPART_PATH)) == NULL)
		goto fail_nomem;
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if ((joined = malloc(n + strlen(path) + 1)) == NULL)
		goto fail_nomem;
	memcpy(joined, base, n);
	strcpy(joined + n, path);
	if (curl_url_set(u, CURLUPART_PATH, joined, 0) != CURLUE_OK
	    || curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto fail_nomem;
	if ((*out = strdup(full)) == NULL)
		goto fail_nomem;
	rc = 0;
	goto out;
fail_nomem:
	rc = HR_ENOMEM;
	snprintf(err, errlen, "out of memory");
out:
	curl_free(full);
	free(joined);
	curl_free(base);
	curl_url_cleanup(u);
	return rc;
}

/* The response body as it arrives, bounded. */
struct sink {
	char *buf;
	size_t len, cap;
	bool over;
};

static size_t
on_data(char *data, size_t size, size_t nmemb, void *user)
{
	struct sink *s = user;
	size_t n = size * nmemb;
	if (n > HR_CLI_HTTP_MAX_RESPONSE - s->len) {
		s->over = true;
		return 0; /* libcurl stops with CURLE_WRITE_ERROR */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (b == NULL)
			return 0;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

int
hr_cli__http_post(
    const hr_cli_post *req, int *status, char **resp, size_t *resp_len, char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct sink sink = { 0 };
	struct curl_slist *hdrs = NULL, *h;
	char auth[HR_CLI_MAX_VALUE + 32];
	int rc = HR_EIO;
	CURLcode cc = CURLE_OUT_OF_MEMORY;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot start libcurl");
		return HR_EIO;
	}
	CURL *c = curl_easy_init();
	if (c == NULL)
		goto fail;
	if ((h = curl_slist_append(hdrs, "Content-Type: application/json")) == NULL)
		goto fail;
	hdrs = h;
	/* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
	if ((h = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto fail;
	hdrs = h;
	if (req->api_key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", req->api_key);
		if ((h = curl_slist_append(hdrs, auth)) == NULL)
			goto fail;
		hdrs = h;
	}
	if ((cc = curl_easy_setopt(c, CURLOPT_URL, req->url)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https")) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK
	    /* One short request: HTTP/1.1, as the node speaks (its TLS listener
	     * accepts h2 in ALPN but answers h2 requests with nothing). */
	    || (cc = curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1))
	        != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len))
	        != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data)) != CURLE_OK
	    || (cc = curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink)) != CURLE_OK
	    || (req->cacert != NULL
	        && (cc = curl_easy_setopt(c, CURLOPT_CAINFO, req->cacert)) != CURLE_OK))
		goto fail;
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK)
		goto fail;
	long code = 0;
	if ((cc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code)) != CURLE_OK)
		goto fail;
	if (sink.buf == NULL && (sink.buf = calloc(1, 1)) == NULL) {
		cc = CURLE_OUT_OF_MEMORY;
		goto fail;
	}
	*status = (int)code;
	*resp = sink.buf;
	*resp_len = sink.len;
	sink.buf = NULL;
	rc = 0;
	goto out;
fail:
	if (sink.over) {
		rc = HR_EMSGSIZE;
		snprintf(
		    err, errlen, "the answer is larger than %d bytes", HR_CLI_HTTP_MAX_RESPONSE);
	} else {
		rc = cc == CURLE_OPERATION_TIMEDOUT ? HR_ETIMEDOUT : HR_EIO;
		snprintf(err, errlen, "%s: %s", req->url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	}
out:
	free(sink.buf);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return rc;
}
