/*
 * http.c: the HTTP API (docs/PROTOCOL.md "HTTP API") on the I/O threads.
 *
 * A request is routed when its headers are in (path split into segments;
 * lws has already percent-decoded the path), refused early where the headers
 * decide (404, 405, 401, 413 from Content-Length, 415), and otherwise answered
 * when its body is complete. Sends go to the router; its reply arrives on the
 * router thread, is posted to this I/O thread's mailbox and finishes the
 * response here, looked up by connection id so that a connection closed
 * meanwhile is simply skipped.
 *
 * The requests come from a framing side, http_lws.c (lws's h1 server, TLS)
 * or http1.c (raw plain-text sockets); the answers go back through the
 * connection's framing hook (hr_http_framing), so this file never asks
 * which one it serves.
 *
 * Threads: everything on the owning I/O thread, except reply_cb (router
 * thread), which only posts mail.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/transport_impl.h"

enum {
	API_NONE = 0,
	API_HEALTHZ,
	API_METRICS,
	API_LIVEZ,
	API_READYZ,
	API_NOTIF_POST,
	API_NOTIF_GET,
	API_GROUP_SEND,
	API_CHANNEL_SEND,
	API_WEB, /* the demo page and client (web.c) */
};

int
hr_json__append_str(hr_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int rv = hr_buf_putc(b, '"');
	for (size_t i = 0; rv == 0 && i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };
			rv = hr_buf_append(b, e, 2);
		} else if (ch < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
			rv = hr_buf_append(b, e, 6);
		} else {
			rv = hr_buf_putc(b, (char)ch);
		}
	}
	return rv ? rv : hr_buf_putc(b, '"');
}

int
hr_http__attach(hr_conn *c, const hr_http_framing *framing)
{
	if (c->http == NULL && (c->http = calloc(1, sizeof(*c->http))) == NULL)
		return HR_ENOMEM;
	c->http->framing = framing;
	return 0;
}

void
hr_http__detach(hr_conn *c)
{
	free(c->access);
	c->access = NULL;
	if (c->http != NULL) {
		hr_http__conn_fini(c);
		free(c->http);
		c->http = NULL;
	}
}

void
hr_http__conn_fini(hr_conn *c)
{
	hr_http_conn *h = c->http;
	free(h->body);
	h->body = NULL;
	h->body_len = 0;
	free(h->resp);
	h->resp = NULL;
	h->resp_len = 0;
	h->resp_ready = false;
}

/* Answer the request through the connection's framing (copies body). */
static int
respond(hr_conn *c, int status, const char *type, const char *body, size_t len)
{
	hr_access__http_end(c, status, len);
	return c->http->framing->respond(c, status, type, body, len);
}

/* {"<key>":"<value>"} */
static int
respond_kv(hr_conn *c, int status, const char *key, const char *val)
{
	hr_buf b;
	int rv;

	hr_buf_init(&b, 0);
	if (hr_buf_putc(&b, '{') != 0 || hr_json__append_str(&b, key, strlen(key)) != 0
	    || hr_buf_putc(&b, ':') != 0 || hr_json__append_str(&b, val, strlen(val)) != 0
	    || hr_buf_putc(&b, '}') != 0) {
		hr_buf_fini(&b);
		return -1;
	}
	rv = respond(c, status, "application/json", (const char *)hr_buf_data(&b), hr_buf_len(&b));
	hr_buf_fini(&b);
	return rv;
}

int
hr_http__respond_error(hr_conn *c, int status, const char *reason)
{
	return respond_kv(c, status, "error", reason);
}

/* ---------------------------------------------------------------- notifications */

/*
 * The worker's API is synchronous and cheap (validate, copy, post; a table
 * lookup), so it runs right here on the I/O thread.
 */
static int
on_notification_post(hr_node *n, hr_conn *c)
{
	hr_http_conn *h = c->http;
	char id[37], err[160] = "bad notification";
	char body[96];
	int rv;

	if (n->worker == NULL)
		return hr_http__respond_error(c, 503, "worker not running");
	rv = hr_worker_submit(n->worker, h->body ? h->body : "", h->body_len, id, err, sizeof(err));
	switch (rv) {
	case 0: {
		int len = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"status\":\"queued\"}", id);
		return respond(c, 202, "application/json", body, (size_t)len);
	}
	case HR_EINVAL:
		return hr_http__respond_error(c, 400, err);
	case HR_EMSGSIZE:
		return hr_http__respond_error(c, 413, "body over 1 MiB");
	case HR_EAGAIN:
		return hr_http__respond_error(c, 429, "worker busy, retry later");
	default:
		return hr_http__respond_error(c, 503, hr_strerror(rv));
	}
}

static int
on_notification_get(hr_node *n, hr_conn *c)
{
	hr_notification_info info;
	char body[256];

	if (n->worker == NULL)
		return hr_http__respond_error(c, 503, "worker not running");
	if (hr_worker_get(n->worker, c->http->target, &info) != 0)
		return hr_http__respond_error(c, 404, "no such notification");
	int len = snprintf(body, sizeof(body),
	    "{\"id\":\"%s\",\"status\":\"%s\",\"created_at\":\"%s\","
	    "\"updated_at\":\"%s\"}",
	    info.id, info.status, info.created_at, info.updated_at);
	if (len < 0 || (size_t)len >= sizeof(body))
		return hr_http__respond_error(c, 503, "record too long");
	return respond(c, 200, "application/json", body, (size_t)len);
}

/* ---------------------------------------------------------------- routing */

#define MAX_SEGS 6

static size_t
split(char *path, char **segs)
{
	size_t n = 0;
	char *p = path;

	if (*p == '/')
		p++;
	while (n < MAX_SEGS) {
		segs[n++] = p;
		char *slash = strchr(p, '/');
		if (slash == NULL)
			return n;
		*slash = '\0';
		p = slash + 1;
	}
	return MAX_SEGS + 1; /* too many */
}

static bool
api_key_ok(const hr_http_req *req, const char *key)
{
	const char *tok;
	size_t tl;

	if (req->auth != NULL && req->auth_len > 0
	    && hr_auth_bearer(req->auth, req->auth_len, &tok, &tl) == 0)
		return hr_api_key_check(tok, tl, key);
	return req->api_key != NULL && req->api_key_len > 0
	    && hr_api_key_check(req->api_key, req->api_key_len, key);
}

/* Content-Type: application/json (parameters allowed) or absent. */
static bool
content_type_ok(const hr_http_req *req)
{
	char ct[256];
	if (req->ctype == NULL || req->ctype_len == 0)
		return true;
	if (req->ctype_len >= sizeof(ct))
		return false;
	memcpy(ct, req->ctype, req->ctype_len);
	ct[req->ctype_len] = '\0';
	char *semi = strchr(ct, ';');
	if (semi)
		*semi = '\0';
	char *s = ct;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t l = strlen(s);
	while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
		s[--l] = '\0';
	return strcasecmp(s, "application/json") == 0;
}

static int
on_healthz(hr_node *n, hr_conn *c)
{
	char body[160];
	bool down = n->bridge != NULL && !hr_bridge_up(n->bridge);
	int len = snprintf(body, sizeof(body),
	    "{\"status\":\"%s\",\"layer\":\"%s\",\"redis\":\"%s\",\"connections\":%zu}",
	    down ? "degraded" : "ok", n->cfg.layer_redis ? "redis" : "memory",
	    n->bridge == NULL ? "n/a"
	        : down        ? "down"
	                      : "up",
	    hr_metrics__ws_total());
	return respond(c, down ? 503 : 200, "application/json", body, (size_t)len);
}

/*
 * The probes (docs/PROTOCOL.md "HTTP API"). /livez answers while this thread
 * serves HTTP, whatever Redis does: a liveness probe must not restart a node
 * that still serves its local clients. /readyz says whether to send it new
 * work: not from the signal on (stop_requested is set by the handler
 * itself), nor while its Redis is unreachable.
 */
static int
on_livez(hr_conn *c)
{
	static const char body[] = "{\"status\":\"ok\"}";
	return respond(c, 200, "application/json", body, sizeof(body) - 1);
}

static int
on_readyz(hr_iothread *t, hr_conn *c)
{
	static const char ready[] = "{\"status\":\"ready\"}";
	static const char stopping[] = "{\"status\":\"not ready\",\"reason\":\"stopping\"}";
	static const char redis_down[] = "{\"status\":\"not ready\",\"reason\":\"redis down\"}";
	hr_node *n = t->node;

	if (t->stopping || atomic_load(&n->stop_requested))
		return respond(c, 503, "application/json", stopping, sizeof(stopping) - 1);
	if (n->bridge != NULL && !hr_bridge_up(n->bridge))
		return respond(c, 503, "application/json", redis_down, sizeof(redis_down) - 1);
	return respond(c, 200, "application/json", ready, sizeof(ready) - 1);
}

static int
on_metrics(hr_node *n, hr_conn *c)
{
	hr_buf b;
	int rv;

	hr_buf_init(&b, 0);
	if (hr_metrics__render(n, &b) != 0) {
		hr_buf_fini(&b);
		return hr_http__respond_error(c, 503, "out of memory");
	}
	rv = respond(
	    c, 200, "text/plain; version=0.0.4", (const char *)hr_buf_data(&b), hr_buf_len(&b));
	hr_buf_fini(&b);
	return rv;
}

static int
on_web(hr_conn *c)
{
	const unsigned char *body;
	const char *type;
	size_t len;

	if (hr_web__asset(c->http->target, &body, &len, &type) != 0)
		return hr_http__respond_error(c, 404, "not found");
	return respond(c, 200, type, (const char *)body, len);
}

/* Percent-decode one NUL-terminated segment in place; -1 on a bad escape or
 * an escaped NUL. */
static int
decode_segment(char *s)
{
	char *o = s;
	for (const char *p = s; *p != '\0'; p++) {
		int ch = (unsigned char)*p;
		if (ch == '%') {
			int hi = hr_hexval((unsigned char)p[1]);
			int lo = hi < 0 ? -1 : hr_hexval((unsigned char)p[2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return -1;
			ch = hi << 4 | lo;
			p += 2;
		}
		*o++ = (char)ch;
	}
	*o = '\0';
	return 0;
}

int
hr_http__route(const char *uri, bool raw, int *want, char *target, size_t tcap, const char **bad)
{
	char path[512], *segs[MAX_SEGS + 1];
	size_t ns;
	int api = API_NONE;

	*want = -1;
	*bad = NULL;
	if (tcap > 0)
		target[0] = '\0';
	if (strlen(uri) >= sizeof(path))
		return API_NONE;
	snprintf(path, sizeof(path), "%s", uri);
	ns = split(path, segs);
	for (size_t i = 0; raw && i < ns && i < MAX_SEGS; i++) {
		if (decode_segment(segs[i]) != 0) {
			*bad = "invalid percent-encoding in path";
			return API_NONE;
		}
	}

	if (ns == 1 && strcmp(segs[0], "healthz") == 0) {
		api = API_HEALTHZ;
		*want = LWSHUMETH_GET;
	} else if (ns == 1 && strcmp(segs[0], "metrics") == 0) {
		api = API_METRICS;
		*want = LWSHUMETH_GET;
	} else if (ns == 1 && strcmp(segs[0], "livez") == 0) {
		api = API_LIVEZ;
		*want = LWSHUMETH_GET;
	} else if (ns == 1 && strcmp(segs[0], "readyz") == 0) {
		api = API_READYZ;
		*want = LWSHUMETH_GET;
	} else if (ns == 1 && hr_web__asset(segs[0], NULL, NULL, NULL) == 0) {
		api = API_WEB;
		*want = LWSHUMETH_GET;
		snprintf(target, tcap, "%s", segs[0]);
	} else if (ns >= 2 && strcmp(segs[0], "api") == 0 && strcmp(segs[1], "notifications") == 0
	    && ns <= 3) {
		if (ns == 2) {
			api = API_NOTIF_POST;
			*want = LWSHUMETH_POST;
		} else if (segs[2][0] != '\0') {
			api = API_NOTIF_GET;
			*want = LWSHUMETH_GET;
			snprintf(target, tcap, "%s", segs[2]);
		}
	} else if (ns == 4 && strcmp(segs[0], "api") == 0 && strcmp(segs[3], "send") == 0
	    && (strcmp(segs[1], "groups") == 0 || strcmp(segs[1], "channels") == 0)
	    && segs[2][0] != '\0') {
		api = segs[1][0] == 'g' ? API_GROUP_SEND : API_CHANNEL_SEND;
		*want = LWSHUMETH_POST;
		if (strlen(segs[2]) >= tcap)
			*bad = "name too long";
		else
			snprintf(target, tcap, "%s", segs[2]);
	}
	return api;
}

/* One log line per refused API call: the peer's address (as
 * --trusted-proxies resolves it), never the key. */
static void
log_api_key_refusal(hr_conn *c, const hr_http_req *req)
{
	char peer[HR_PEER_MAX];
	if (c->h1 != NULL || req->xff != NULL)
		hr_access__peer(c->wsi, req->xff, req->xff_len, peer, sizeof(peer));
	else
		hr_access__peer_hdr(c->wsi, peer, sizeof(peer));
	hr_log(HR_LOG_INFO, "api refused 401 from %s: api_key", peer);
}

int
hr_http__request(hr_iothread *t, hr_conn *c, const hr_http_req *req)
{
	hr_http_conn *h = c->http;
	hr_node *n = t->node;
	const char *uri = req->uri;

	h->method = req->method;
	h->req_clen = req->clen;
	h->pending_status = 0;
	h->pending_error = NULL;
	h->close_after = false;
	h->awaiting_reply = false;
	hr_http__conn_fini(c);
	hr_access__http_begin(c, req);

	int want; /* LWSHUMETH_* the endpoint takes */
	const char *bad;
	h->api = hr_http__route(uri, req->raw_path, &want, h->target, sizeof(h->target), &bad);
	if (bad != NULL) {
		h->pending_status = 400;
		h->pending_error = bad;
	}
	if (h->api == API_WEB && !n->cfg.demo)
		h->api = API_NONE;

	int status = 0;
	const char *err = NULL;
	if (h->api == API_NONE) {
		status = bad != NULL ? 400 : 404;
		err = bad != NULL ? bad : "not found";
	} else if (h->method != want) {
		status = 405;
		err = "method not allowed";
	} else if (h->api >= API_NOTIF_POST && n->cfg.api_key != NULL
	    && !api_key_ok(req, n->cfg.api_key)) {
		HR_METRIC_ADD(auth_failures[HR_AUTH_API_KEY], 1);
		log_api_key_refusal(c, req);
		status = 401;
		err = "missing or bad API key";
	} else if (want == LWSHUMETH_POST && !content_type_ok(req)) {
		status = 415;
		err = "Content-Type must be application/json";
	}

	if (h->method != LWSHUMETH_POST) {
		if (status)
			return hr_http__respond_error(c, status, err);
		if (h->api == API_HEALTHZ)
			return on_healthz(n, c);
		if (h->api == API_METRICS)
			return on_metrics(n, c);
		if (h->api == API_LIVEZ)
			return on_livez(c);
		if (h->api == API_READYZ)
			return on_readyz(t, c);
		if (h->api == API_WEB)
			return on_web(c);
		return on_notification_get(n, c);
	}

	/* POST: the body decides, unless Content-Length already does */
	long long clen = req->clen;
	if (clen > (long long)HR_HTTP_BODY_MAX) {
		h->close_after = true;
		return hr_http__respond_error(c, 413, "body over 1 MiB");
	}
	if (status) {
		h->pending_status = status;
		h->pending_error = err;
	}
	if (clen < 0 && req->chunked) {
		/* lws 4.1 hands no chunked request body to the protocol: refuse
		 * clearly and close rather than parse the chunks as a request */
		h->close_after = true;
		return hr_http__respond_error(
		    c, status ? status : 400, status ? err : "send the body with a Content-Length");
	}
	if (clen <= 0) /* no body is coming: answer now */
		return hr_http__body_complete(t, c);
	return 0;
}

/* ---------------------------------------------------------------- sends */

typedef struct reply_ctx {
	hr_iothread *t;
	uint64_t conn;
} reply_ctx;

/* Router thread: hand the outcome to the connection's I/O thread, without
 * waiting and without losing it (iothread.c). */
static void
reply_cb(void *arg, int status)
{
	reply_ctx *r = arg;
	hr_post__reply(r->t, r->conn, status);
	free(r);
}

void
hr_http__on_reply(hr_iothread *t, uint64_t conn_id, int status)
{
	hr_conn *c = hr_conn__get(t, conn_id);
	hr_http_conn *h = c != NULL ? c->http : NULL;

	if (h == NULL || !h->awaiting_reply)
		return; /* closed meanwhile */
	h->awaiting_reply = false;
	bool group = h->api == API_GROUP_SEND;
	switch (status) {
	case 0:
		if (group)
			HR_METRIC_ADD(group_sends, 1);
		respond_kv(c, 202, group ? "group" : "channel", h->target);
		break;
	case HR_EFULL:
		hr_http__respond_error(c, 503, "channel full");
		break;
	case HR_EBADNAME:
		hr_http__respond_error(
		    c, 400, group ? "invalid group name" : "invalid channel name");
		break;
	case HR_ENOENT:
		hr_http__respond_error(c, 404, "no such channel");
		break;
	case HR_ECANCELED:
	case HR_ECLOSED:
		hr_http__respond_error(c, 503, "shutting down");
		break;
	case HR_EIO:
		hr_http__respond_error(c, 503, "redis unavailable");
		break;
	default:
		hr_http__respond_error(c, 503, hr_strerror(status));
		break;
	}
	if (h->framing->resume != NULL)
		h->framing->resume(c);
}

int
hr_http__parse_send(bool group, const char *target, const char *body, size_t len, hr_msg **out,
    char *err, size_t errlen)
{
	const char *type;
	size_t tlen;
	hr_buf b;
	int rv;

	*out = NULL;
	size_t nl = strlen(target);
	if ((group ? hr_name_check_group(target, nl) : hr_name_check_channel(target, nl)) != 0) {
		snprintf(err, errlen, "%s", group ? "invalid group name" : "invalid channel name");
		return 400;
	}
	snprintf(err, errlen, "bad JSON");
	hr_buf_init(&b, 0);
	rv = hr_codec_json_to_msgpack(body ? body : "", len, true, &b, err, errlen);
	if (rv != 0) {
		hr_buf_fini(&b);
		if (rv == HR_ETYPE)
			snprintf(err, errlen, "body must be a JSON object");
		return 400;
	}
	if (hr_codec_get_type(hr_buf_data(&b), hr_buf_len(&b), &type, &tlen) != 0) {
		hr_buf_fini(&b);
		snprintf(err, errlen, "message needs a string \"type\"");
		return 400;
	}
	rv = hr_buf_finish(&b, out);
	hr_buf_fini(&b);
	if (rv != 0) {
		snprintf(err, errlen, "out of memory");
		return 503;
	}
	return 0;
}

static int
on_send(hr_iothread *t, hr_conn *c)
{
	hr_http_conn *h = c->http;
	hr_node *n = t->node;
	char err[128];
	hr_msg *msg = NULL;
	int rv;

	bool group = h->api == API_GROUP_SEND;
	rv = hr_http__parse_send(group, h->target, h->body, h->body_len, &msg, err, sizeof(err));
	if (rv != 0)
		return hr_http__respond_error(c, rv, err);

	reply_ctx *r = malloc(sizeof(*r));
	if (r == NULL) {
		hr_msg_unref(msg);
		return hr_http__respond_error(c, 503, "out of memory");
	}
	r->t = t;
	r->conn = c->id;
	h->awaiting_reply = true;
	/* Requests of one loop turn reach the router in one nng message:
	 * the loop ends the batch at the end of the turn (evloop.c). */
	(void)hr_mailbox_batch_defer();
	/* With Redis, a channel outside this node's process key lives in Redis. */
	int kind = group ? HR_REQ_GROUP_SEND : HR_REQ_SEND;
	if (!group && n->bridge != NULL
	    && strncmp(h->target, hr_bridge_process_key(n->bridge),
	           strlen(hr_bridge_process_key(n->bridge)))
	        != 0)
		kind = HR_REQ_BRIDGE_SEND;
	/* never waits: a full mailbox keeps the send on the thread's retry
	 * list, and the answer comes when the router has taken it */
	hr_member none = { 0 };
	rv = hr_post__request(t, kind, h->target, none, msg, reply_cb, r);
	hr_msg_unref(msg);
	if (rv != 0) {
		/* an async call that fails never calls back: r is still ours */
		free(r);
		h->awaiting_reply = false;
		return hr_http__respond_error(c, 503, hr_strerror(rv));
	}
	return 0;
}

int
hr_http__body_complete(hr_iothread *t, hr_conn *c)
{
	hr_http_conn *h = c->http;
	if (h->pending_status)
		return hr_http__respond_error(c, h->pending_status, h->pending_error);
	switch (h->api) {
	case API_GROUP_SEND:
	case API_CHANNEL_SEND:
		return on_send(t, c);
	default:
		return on_notification_post(t->node, c);
	}
}
