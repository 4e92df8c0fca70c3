/*
 * accesslog.c: what the operator sees of each request: the peer as logged
 * (the socket's address, or with --trusted-proxies the client named by
 * X-Forwarded-For), herald_http_requests_total{code} (every answer http.c
 * gives, every refused or accepted WebSocket handshake), and with
 * --access-log one line per HTTP request and per WebSocket session end, in
 * Daphne's shape:
 *
 *   127.0.0.1:53712 - - [02/Dec/2026:06:15:49 +0000] "GET /metrics" 200 1234 0.000412s
 *   127.0.0.1:53714 - - [02/Dec/2026:06:15:52 +0000] "WSDISCONNECT /ws/health/" 1000 in=2
 * out=2 3.101230s
 *
 * after the log's own timestamp and level; in json mode the same message
 * with the fields as members (log.c).
 *
 * Threads: the owning I/O thread of each connection only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/transport_impl.h"

static hr_node *
node_of(struct lws *wsi)
{
	hr_iothread *t = lws_context_user(lws_get_context(wsi));
	return t->node;
}

void
hr_access__peer(struct lws *wsi, const char *xff, size_t xff_len, char *out, size_t cap)
{
	const hr_proxy_list *l = &node_of(wsi)->cfg.trusted_proxies;
	uint8_t peer[16], client[16];
	char a[64];
	uint16_t port;

	if (hr_sys__peer_addr((int)lws_get_socket_fd(wsi), peer, &port) != 0) {
		snprintf(out, cap, "?");
		return;
	}
	if (hr_proxy__resolve(l, peer, xff, xff_len, client)) {
		hr_proxy__addr_format(client, out, cap);
		return;
	}
	hr_proxy__addr_format(peer, a, sizeof(a));
	snprintf(out, cap, strchr(a, ':') != NULL ? "[%s]:%u" : "%s:%u", a, (unsigned)port);
}

void
hr_access__peer_hdr(struct lws *wsi, char *out, size_t cap)
{
	char xff[2048];
	int n = -1;

	/* read only when it may count: from anyone else it is ignored */
	if (node_of(wsi)->cfg.trusted_proxies.n > 0)
		n = lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR);
	hr_access__peer(wsi, n > 0 ? xff : NULL, n > 0 ? (size_t)n : 0, out, cap);
}

static void
count_code(int status)
{
	if (status >= 100 && status < 100 + HR_HTTP_CODES)
		HR_METRIC_ADD(http_codes[status - 100], 1);
}

/* Client-chosen bytes made safe for a text line: controls, spaces, '"' and
 * '\' as \xHH. */
static void
printable(char *out, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= ' ' || ch == '"' || ch == '\\' || ch == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

static hr_access *
access_of(hr_conn *c)
{
	if (c->access == NULL && (c->access = calloc(1, sizeof(*c->access))) == NULL)
		hr_log(HR_LOG_WARN, "access log: out of memory, a line is lost");
	return c->access;
}

/* [02/Dec/2026:06:15:49 +0000] */
static void
clf_date(char *out, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	if (strftime(out, cap, "[%d/%b/%Y:%H:%M:%S +0000]", &tm) == 0 && cap > 0)
		out[0] = '\0';
}

static const char *
method_name(int m)
{
	switch (m) {
	case LWSHUMETH_GET:
		return "GET";
	case LWSHUMETH_POST:
		return "POST";
	case LWSHUMETH_OPTIONS:
		return "OPTIONS";
	case LWSHUMETH_PUT:
		return "PUT";
	case LWSHUMETH_PATCH:
		return "PATCH";
	case LWSHUMETH_DELETE:
		return "DELETE";
	case LWSHUMETH_CONNECT:
		return "CONNECT";
	case LWSHUMETH_HEAD:
		return "HEAD";
	default:
		return "-";
	}
}

/* One HTTP line: method and path as given ("-" when unknown). */
static void
http_line(const char *peer, const char *method, const char *path, int status, size_t bytes,
    double duration)
{
	char date[40], msg[768], fields[1024], jpeer[160], jmethod[32], jpath[640];

	clf_date(date, sizeof(date));
	snprintf(msg, sizeof(msg), "%s - - %s \"%s %s\" %d %zu %.6fs", peer, date, method, path,
	    status, bytes, duration);
	hr_log__json_str(jpeer, sizeof(jpeer), peer, strlen(peer));
	hr_log__json_str(jmethod, sizeof(jmethod), method, strlen(method));
	hr_log__json_str(jpath, sizeof(jpath), path, strlen(path));
	snprintf(fields, sizeof(fields),
	    ",\"access\":\"http\",\"peer\":%s,\"method\":%s,\"path\":%s,\"status\":%d,"
	    "\"bytes\":%zu,\"duration\":%.6f",
	    jpeer, jmethod, jpath, status, bytes, duration);
	hr_log__emit(HR_LOG_INFO, msg, fields);
}

void
hr_access__http_begin(hr_conn *c, const hr_http_req *req)
{
	hr_access *a;

	if (!c->t->node->cfg.access_log || (a = access_of(c)) == NULL)
		return;
	a->t0 = hr_clock_mono();
	a->begun = true;
	snprintf(a->method, sizeof(a->method), "%s", method_name(req->method));
	printable(a->path, sizeof(a->path), req->uri, strlen(req->uri));
	if (c->h1 != NULL || req->xff != NULL)
		hr_access__peer(c->wsi, req->xff, req->xff_len, a->peer, sizeof(a->peer));
	else
		hr_access__peer_hdr(c->wsi, a->peer, sizeof(a->peer));
}

void
hr_access__http_end(hr_conn *c, int status, size_t bytes)
{
	hr_access *a;

	count_code(status);
	if (!c->t->node->cfg.access_log || (a = access_of(c)) == NULL)
		return;
	if (!a->begun) {
		/* answered from a head that did not parse: nothing to name */
		hr_access__peer(c->wsi, NULL, 0, a->peer, sizeof(a->peer));
		http_line(a->peer, "-", "-", status, bytes, 0);
		return;
	}
	a->begun = false;
	http_line(a->peer, a->method, a->path, status, bytes, hr_clock_mono() - a->t0);
}

void
hr_access__refused(struct lws *wsi, unsigned code, size_t bytes)
{
	char peer[HR_PEER_MAX], uri[256], path[256];
	int n;

	count_code((int)code);
	if (!node_of(wsi)->cfg.access_log)
		return;
	hr_access__peer_hdr(wsi, peer, sizeof(peer));
	n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	printable(path, sizeof(path), uri, n > 0 ? (size_t)n : 0);
	/* answered from its head: no time to speak of */
	http_line(peer, "GET", n > 0 ? path : "-", (int)code, bytes, 0);
}

static void
ws_open(hr_conn *c)
{
	static const char *const paths[HR_N_ROUTES]
	    = { "/ws/notifications/", "/ws/notifications/", "/ws/health/" };
	char uri[256];
	hr_access *a;
	int n;

	HR_METRIC_ADD(http_codes[101 - 100], 1);
	if (!c->t->node->cfg.access_log || (a = access_of(c)) == NULL)
		return;
	memset(a, 0, sizeof(*a));
	a->t0 = hr_clock_mono();
	a->ws = true;
	hr_access__peer_hdr(c->wsi, a->peer, sizeof(a->peer));
	n = lws_hdr_copy(c->wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	if (n > 0)
		printable(a->path, sizeof(a->path), uri, (size_t)n);
	else if ((unsigned)c->ws.route < HR_N_ROUTES)
		snprintf(a->path, sizeof(a->path), "%s", paths[c->ws.route]);
}

static void
ws_end(hr_conn *c)
{
	static const char *const routes[HR_N_ROUTES]
	    = { "notifications", "user_notifications", "health" };
	hr_access *a = c->access;
	char date[40], msg[768], fields[1024], jpeer[160], jpath[640];
	double duration = hr_clock_mono() - a->t0;
	/* ours when herald closed it, else the client's; 1006: no close frame */
	int code = c->ws.close_code ? c->ws.close_code : a->peer_close ? a->peer_close : 1006;
	const char *route = (unsigned)c->ws.route < HR_N_ROUTES ? routes[c->ws.route] : "-";

	a->ws = false;
	clf_date(date, sizeof(date));
	snprintf(msg, sizeof(msg), "%s - - %s \"WSDISCONNECT %s\" %d in=%llu out=%llu %.6fs",
	    a->peer, date, a->path, code, (unsigned long long)a->frames_in,
	    (unsigned long long)a->frames_out, duration);
	hr_log__json_str(jpeer, sizeof(jpeer), a->peer, strlen(a->peer));
	hr_log__json_str(jpath, sizeof(jpath), a->path, strlen(a->path));
	snprintf(fields, sizeof(fields),
	    ",\"access\":\"ws\",\"peer\":%s,\"route\":\"%s\",\"path\":%s,\"close_code\":%d,"
	    "\"frames_in\":%llu,\"frames_out\":%llu,\"duration\":%.6f",
	    jpeer, route, jpath, code, (unsigned long long)a->frames_in,
	    (unsigned long long)a->frames_out, duration);
	hr_log__emit(HR_LOG_INFO, msg, fields);
}

void
hr_access__ws_event(hr_conn *c, enum lws_callback_reasons reason, const void *in, size_t len)
{
	hr_access *a = c->access;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		if (c->ws.is_ws)
			ws_open(c);
		break;
	case LWS_CALLBACK_RECEIVE:
		if (a != NULL && a->ws && lws_is_final_fragment(c->wsi)
		    && lws_remaining_packet_payload(c->wsi) == 0)
			a->frames_in++;
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (a != NULL && a->ws) {
			const unsigned char *p = in;
			a->peer_close = len >= 2 ? p[0] << 8 | p[1] : 1005;
		}
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (a != NULL && a->ws)
			ws_end(c);
		break;
	default:
		break;
	}
}
