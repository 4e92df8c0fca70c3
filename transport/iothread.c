/*
 * iothread.c: an I/O thread: one libwebsockets context, its own SO_REUSEPORT
 * listeners adopted as raw files (STYLE C2), its mailbox's eventfd
 * adopted as a raw file (C1), and every connection it accepted, in a slot
 * table (id = generation << 32 | slot, so stale ids from the router or a late
 * HTTP reply never reach a reused slot).
 *
 * The write path, per-connection queues and the batched sends at the end of
 * each mailbox drain, is outq.c.
 *
 * Inbound frames are parsed here, on the I/O thread: they are small (bounded
 * by --max-message), rate-limited first, and every answer (pong, whoami,
 * status, error) goes back to the same socket, so a trip through a consumer
 * actor would add two mailbox hops and a lookup for nothing.
 *
 * Threads: everything here runs on the I/O thread except start/post_stop/
 * join/fini (main thread).
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include "transport/transport_impl.h"

#define MAIL_DRAIN_CAP 256
/*
 * The ws rx buffer lws mallocs for every connection (rx_buffer_size). Every
 * 16 KiB block touched a fresh page per connection: 6.4 KB of RSS per idle
 * connection at 16384, 3.0 KB at 1024 (herald-bench, 5,000 idle
 * connections, one thread). Inbound frames are small commands; a bigger
 * one arrives in several RECEIVE callbacks and ws_receive() reassembles it
 * up to --max-message.
 */
#define HR_WS_RX_BUF 1024
#define STOP_GRACE_US (2 * LWS_USEC_PER_SEC)

static int acceptor_cb(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
static int mbox_cb(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/*
 * protocols[0] serves plain HTTP and, because browsers and most clients send
 * no Sec-WebSocket-Protocol, lws binds upgraded WebSockets to the vhost's
 * default protocol, which is index 0, too (server-ws.c). One callback thus
 * sees both; tx_packet_size lets one send() carry a whole scratch buffer.
 */
static const struct lws_protocols protocols[]
    = { { "http", hr_transport__callback, 0, HR_WS_RX_BUF, 0, NULL, HR_SCRATCH },
	      { "herald-acceptor", acceptor_cb, 0, 0, 0, NULL, 0 },
	      { "herald-mailbox", mbox_cb, 0, 0, 0, NULL, 0 },
	      { "herald-http1", hr_http1__callback, 0, 0, 0, NULL, 0 },
	      { NULL, NULL, 0, 0, 0, NULL, 0 } };

static hr_iothread *
thread_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- slots */

int
hr_iothread__conn_new(hr_iothread *t, struct lws *wsi, hr_conn **out)
{
	hr_conn *c;
	uint32_t s;

	if (t->free_head == UINT32_MAX) {
		uint32_t n = t->nslots ? t->nslots * 2 : 64;
		hr_slot *ns = realloc(t->slots, n * sizeof(*ns));
		if (ns == NULL)
			return HR_ENOMEM;
		for (uint32_t i = t->nslots; i < n; i++) {
			ns[i].c = NULL;
			ns[i].gen = 1;
			ns[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		t->free_head = t->nslots;
		t->slots = ns;
		t->nslots = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return HR_ENOMEM;
	s = t->free_head;
	t->free_head = t->slots[s].next_free;
	t->slots[s].c = c;
	c->wsi = wsi;
	c->t = t;
	c->sfd = -1;
	c->id = ((uint64_t)t->slots[s].gen << 32) | s;
	lws_set_opaque_user_data(wsi, c);
	*out = c;
	return 0;
}

hr_conn *
hr_iothread__conn_get(hr_iothread *t, uint64_t id)
{
	uint32_t s = (uint32_t)id;
	if (s >= t->nslots || t->slots[s].gen != (uint32_t)(id >> 32))
		return NULL;
	return t->slots[s].c;
}

static void
conn_free(hr_conn *c)
{
	hr_iothread *t = c->t;
	uint32_t s = (uint32_t)c->id;

	hr_outq__clear(c);
	free(c->rx);
	hr_http__conn_fini(c);
	hr_http1__conn_fini(c);
	t->slots[s].c = NULL;
	t->slots[s].gen++;
	if (t->slots[s].gen == 0)
		t->slots[s].gen = 1;
	t->slots[s].next_free = t->free_head;
	t->free_head = s;
	free(c);
}

static int
ws_writeable(hr_iothread *t, hr_conn *c)
{
	if (c->close_code && c->qlen == 0) {
		size_t rl = c->close_reason ? strlen(c->close_reason) : 0;
		if (t->evloop == HR_EVLOOP_LIBUV && rl <= 123) {
			/* lws 4.1.6 on libuv kills the socket without writing the
			 * close frame it was given: write it here (RFC 6455 5.5.1,
			 * unmasked) and let lws close */
			unsigned char f[2 + 2 + 123];
			f[0] = 0x88;
			f[1] = (unsigned char)(2 + rl);
			f[2] = (unsigned char)(c->close_code >> 8);
			f[3] = (unsigned char)c->close_code;
			if (rl > 0)
				memcpy(f + 4, c->close_reason, rl);
			(void)lws_write(c->wsi, f, 4 + rl, LWS_WRITE_RAW);
			return -1;
		}
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
		    (unsigned char *)c->close_reason, rl);
		return -1;
	}
	if (c->qlen == 0)
		return 0;
	return hr_outq__write(t, c);
}

/* ---------------------------------------------------------------- inbound */

static int
queue_json(hr_conn *c, hr_buf *b)
{
	hr_msg *frame;
	int rv = hr_ws_frame_text(b, &frame);
	if (rv == 0)
		hr_iothread__queue_frame(c, frame);
	return rv;
}

static void
send_error(hr_conn *c, const char *reason)
{
	hr_buf b;
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	if (hr_buf_append(&b, "{\"type\":\"error\",\"error\":", 24) == 0
	    && hr_json__append_str(&b, reason, strlen(reason)) == 0 && hr_buf_putc(&b, '}') == 0)
		(void)queue_json(c, &b);
	hr_buf_fini(&b);
}

static void
send_pong(hr_conn *c)
{
	char ts[64], out[128];
	hr_buf b;
	int n;

	hr_node__iso8601(ts);
	n = snprintf(out, sizeof(out), "{\"type\":\"pong\",\"timestamp\":\"%s\"}", ts);
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	if (n > 0 && hr_buf_append(&b, out, (size_t)n) == 0)
		(void)queue_json(c, &b);
	hr_buf_fini(&b);
}

static void
send_whoami(hr_conn *c)
{
	hr_buf b;
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	if (hr_buf_append(&b, "{\"type\":\"whoami\",\"channel\":", 27) == 0
	    && hr_json__append_str(&b, c->channel, strlen(c->channel)) == 0
	    && hr_buf_putc(&b, '}') == 0)
		(void)queue_json(c, &b);
	hr_buf_fini(&b);
}

static void
send_status(hr_conn *c)
{
	hr_node *n = c->t->node;
	char out[256];
	hr_buf b;
	int len;

	bool down = n->bridge != NULL && !hr_bridge_up(n->bridge);
	len = snprintf(out, sizeof(out),
	    "{\"type\":\"status\",\"status\":\"%s\",\"connections\":%zu,"
	    "\"layer\":\"%s\",\"redis\":\"%s\",\"uptime_s\":%lld}",
	    down ? "degraded" : "ok", hr_metrics__ws_total(),
	    n->cfg.layer_redis ? "redis" : "memory",
	    n->bridge == NULL ? "n/a"
	        : down        ? "down"
	                      : "up",
	    (long long)(hr_node__now() - n->started_at));
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	if (len > 0 && (size_t)len < sizeof(out) && hr_buf_append(&b, out, (size_t)len) == 0)
		(void)queue_json(c, &b);
	hr_buf_fini(&b);
}

/*
 * Close with code after what is already queued for c (pongs, the rate-limit
 * error frame) has left, so the client sees them before the close frame;
 * closing straight from the receive callback put the close frame on the
 * wire first. What still arrives meanwhile is read and discarded
 * (ws_receive): not reading it would make the kernel answer the close with
 * a reset, which can destroy the frames still on their way to the client.
 */
static void
close_after_queue(hr_conn *c, int code, const char *reason)
{
	c->close_code = code;
	c->close_reason = reason;
	hr_outq__want_write(c);
}

/* Returns -1 to close the connection at once. */
static int
handle_message(hr_conn *c)
{
	json_error_t jerr;
	json_t *root, *type;

	HR_METRIC_ADD(frames_received, 1);
	switch (hr_bucket_take(&c->rate, now_ns())) {
	case HR_BUCKET_ALLOW:
		break;
	case HR_BUCKET_REFUSE_ERROR:
		HR_METRIC_ADD(dropped[HR_DROP_RATE_LIMIT], 1);
		send_error(c, "rate limit");
		return 0;
	case HR_BUCKET_REFUSE:
		HR_METRIC_ADD(dropped[HR_DROP_RATE_LIMIT], 1);
		return 0;
	case HR_BUCKET_CLOSE:
		HR_METRIC_ADD(dropped[HR_DROP_RATE_LIMIT], 1);
		close_after_queue(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit");
		return 0;
	}
	if (c->rx_binary) {
		send_error(c, "binary frames are not supported");
		return 0;
	}
	root = json_loadb((const char *)c->rx, c->rxlen, JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		send_error(c, "invalid JSON");
		return 0;
	}
	if (!json_is_object(root)) {
		send_error(c, "expected a JSON object");
		goto out;
	}
	type = json_object_get(root, "type");
	if (!json_is_string(type)) {
		send_error(c, "missing type");
		goto out;
	}
	const char *ty = json_string_value(type);
	if (strcmp(ty, "ping") == 0)
		send_pong(c);
	else if (strcmp(ty, "whoami") == 0)
		send_whoami(c);
	else if (strcmp(ty, "status") == 0 && c->route == HR_ROUTE_HEALTH)
		send_status(c);
	else
		send_error(c, "unknown type");
out:
	json_decref(root);
	return 0;
}

static int
ws_receive(hr_conn *c, const void *in, size_t len)
{
	size_t max = c->t->node->cfg.max_message;

	if (c->rx_in_msg == false) {
		c->rx_in_msg = true;
		c->rxlen = 0;
		c->rx_binary = lws_frame_is_binary(c->wsi) != 0;
	}
	if (c->close_code)
		return 0; /* closing: what still arrives is not read */
	if (c->rxlen + len > max) {
		close_after_queue(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
		return 0;
	}
	if (c->rxlen + len > c->rxcap) {
		size_t ncap = c->rxcap ? c->rxcap : 256;
		while (ncap < c->rxlen + len)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		unsigned char *nrx = realloc(c->rx, ncap);
		if (nrx == NULL)
			return -1;
		c->rx = nrx;
		c->rxcap = ncap;
	}
	if (len > 0)
		memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += len;
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi) > 0)
		return 0;
	c->rx_in_msg = false;
	return handle_message(c);
}

/* ---------------------------------------------------------------- handshake */

/* Match CONTRACT.md's routes; user gets the user_id for the user route. */
static int
match_route(const char *path, char *user, size_t userlen)
{
	static const char pre[] = "/ws/notifications/";

	if (strcmp(path, "/ws/health/") == 0)
		return HR_ROUTE_HEALTH;
	if (strcmp(path, pre) == 0)
		return HR_ROUTE_NOTIFICATIONS;
	if (strncmp(path, pre, sizeof(pre) - 1) != 0)
		return -1;
	const char *u = path + sizeof(pre) - 1;
	size_t n = 0;
	/* \w+ (ASCII: Channels' re_path on a str path with re.ASCII not set would
	 * accept Unicode word characters; ids here are ASCII) */
	while (u[n] == '_' || (u[n] >= '0' && u[n] <= '9') || (u[n] >= 'a' && u[n] <= 'z')
	    || (u[n] >= 'A' && u[n] <= 'Z'))
		n++;
	if (n == 0 || n > 64 || n >= userlen || strcmp(u + n, "/") != 0)
		return -1;
	memcpy(user, u, n);
	user[n] = '\0';
	return HR_ROUTE_USER;
}

static void
make_channel(hr_iothread *t, hr_conn *c)
{
	char rnd[13];
	for (int i = 0; i < 12; i++) {
		t->rng ^= t->rng << 13;
		t->rng ^= t->rng >> 7;
		t->rng ^= t->rng << 17;
		rnd[i] = (char)('a' + (t->rng >> 33) % 26);
	}
	rnd[12] = '\0';
	snprintf(c->channel, sizeof(c->channel), "specific.%s!%s%x.%llx", t->node->node_prefix, rnd,
	    t->index, (unsigned long long)c->id);
}

/*
 * Refuse a WebSocket handshake with an HTTP status. lws_return_http_status
 * answers "HTTP/1.0" at this stage, which WebSocket clients reject as not a
 * valid response, so the answer is written as raw bytes and the connection
 * closed (return -1; lws flushes what it buffered before closing).
 */
static int
refuse(struct lws *wsi, unsigned code)
{
	unsigned char buf[LWS_PRE + 256];
	const char *text = code == 404 ? "Not Found"
	    : code == 403              ? "Forbidden"
	    : code == 400              ? "Bad Request"
	                               : "Service Unavailable";
	const char *err = code == 404 ? "not found"
	    : code == 403             ? "forbidden"
	    : code == 400             ? "bad request"
	                              : "unavailable";
	char body[64];
	int bl = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", err);
	int n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
	    "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\n"
	    "content-length: %d\r\nconnection: close\r\n\r\n%s",
	    code, text, bl, body);
	if (n > 0 && (size_t)n < sizeof(buf) - LWS_PRE)
		(void)lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_RAW);
	return -1;
}

/* One log line per refused handshake: the peer's address and the reason,
 * never the token, the Origin or the path (the client chose those). */
static void
log_refusal(struct lws *wsi, unsigned code, const char *why)
{
	char peer[64];
	if (lws_get_peer_simple(wsi, peer, sizeof(peer)) == NULL)
		snprintf(peer, sizeof(peer), "?");
	hr_log(HR_LOG_INFO, "handshake refused %u from %s: %s", code, peer, why);
}

/* ?token= or Authorization: Bearer, verified with the shared checks of
 * security.c; a refusal is counted by its reason. */
static int
check_jwt(hr_node *n, struct lws *wsi, const char *user)
{
	static char tok[HR_JWT_MAX + 16]; /* I/O thread only; too big for the stack */
	const char *tp = NULL, *reason = hr_auth_missing;
	size_t tl = 0;
	int n_auth = lws_hdr_copy(wsi, tok, sizeof(tok), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n_auth <= 0 || hr_auth_bearer(tok, (size_t)n_auth, &tp, &tl) != 0) {
		tp = lws_get_urlarg_by_name(wsi, "token=", tok, sizeof(tok));
		tl = tp ? strlen(tp) : 0;
	}
	if (tp != NULL && tl > 0) {
		if (hr_jwt_verify(tp, tl, n->cfg.jwt_secret, strlen(n->cfg.jwt_secret),
		        (int64_t)time(NULL), HR_JWT_LEEWAY_S, user, NULL, &reason)
		    == 0)
			return 0;
	}
	int m = HR_AUTH_MALFORMED;
	if (reason == hr_auth_missing)
		m = HR_AUTH_MISSING;
	else if (reason == hr_auth_bad_signature)
		m = HR_AUTH_BAD_SIGNATURE;
	else if (reason == hr_auth_alg)
		m = HR_AUTH_ALG;
	else if (reason == hr_auth_expired)
		m = HR_AUTH_EXPIRED;
	else if (reason == hr_auth_not_yet_valid)
		m = HR_AUTH_NOT_YET_VALID;
	else if (reason == hr_auth_wrong_user)
		m = HR_AUTH_WRONG_USER;
	HR_METRIC_ADD(auth_failures[m], 1);
	log_refusal(wsi, 403, reason);
	return -1;
}

static int
confirm_upgrade(hr_iothread *t, struct lws *wsi, const char *up)
{
	hr_node *n = t->node;
	char path[256], user[72];
	hr_conn *c = lws_get_opaque_user_data(wsi);
	int route, rv;

	if (up == NULL || strcasecmp(up, "websocket") != 0)
		return refuse(wsi, 400);
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
		return refuse(wsi, 404);
	if ((route = match_route(path, user, sizeof(user))) < 0)
		return refuse(wsi, 404);
	if (t->stopping)
		return refuse(wsi, 503);
	if (n->cfg.allowed_origins != NULL) {
		char origin[512];
		int ol = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
		if (!hr_origins_allowed(
		        &n->origins, ol > 0 ? origin : NULL, ol > 0 ? (size_t)ol : 0)) {
			HR_METRIC_ADD(auth_failures[HR_AUTH_ORIGIN], 1);
			log_refusal(wsi, 403, "origin");
			return refuse(wsi, 403);
		}
	}
	if (n->cfg.jwt_secret != NULL && route != HR_ROUTE_HEALTH
	    && check_jwt(n, wsi, route == HR_ROUTE_USER ? user : NULL) != 0)
		return refuse(wsi, 403);
	if (n->cfg.max_connections > 0 && hr_metrics__ws_total() >= n->cfg.max_connections)
		return refuse(wsi, 503);
	if (c == NULL && hr_iothread__conn_new(t, wsi, &c) != 0)
		return refuse(wsi, 503);
	c->is_ws = true;
	c->route = route;
	make_channel(t, c);
	if (route == HR_ROUTE_NOTIFICATIONS)
		snprintf(c->group, sizeof(c->group), "notifications");
	else if (route == HR_ROUTE_USER)
		snprintf(c->group, sizeof(c->group), "user_%s", user);

	/* Registered before the 101 leaves: the router's mailbox is FIFO, so a
	 * group_send posted after the client saw the 101 is handled after
	 * these. */
	hr_member m = { .thread = (uint16_t)t->index, .consumer = (uint16_t)route, .conn = c->id };
	if ((rv = hr_router_conn_open(n->router, c->channel, m, 200)) != 0) {
		hr_log(HR_LOG_WARN, "router refused a connection: %s", hr_strerror(rv));
		return refuse(wsi, 503);
	}
	c->registered = true;
	if (c->group[0] != '\0' && (rv = hr_router_group_add(n->router, c->group, m, 200)) != 0) {
		hr_log(HR_LOG_WARN, "router refused group_add %s: %s", c->group, hr_strerror(rv));
		return refuse(wsi, 503);
	}
	hr_mailbox_flush(); /* in the router before the 101 leaves */
	/* Counted in the gauge now, not at ESTABLISHED: lws writes the 101
	 * before it calls ESTABLISHED (server-ws.c), and a client that has its
	 * 101 must find itself in /metrics and /healthz, whichever I/O thread
	 * answers them. */
	atomic_fetch_add(&hr_transport__metrics.connections[c->route], 1);
	c->gauged = true;
	return 0;
}

void
hr_iothread__conn_destroy(hr_iothread *t, hr_conn *c)
{
	if (c->gauged)
		atomic_fetch_sub(&hr_transport__metrics.connections[c->route], 1);
	if (c->counted) {
		hr_log(HR_LOG_DEBUG, "ws close %s", c->channel);
		t->n_ws--;
	}
	if (c->registered) {
		hr_member m = {
			.thread = (uint16_t)t->index, .consumer = (uint16_t)c->route, .conn = c->id
		};
		int rv = hr_router_conn_close(t->node->router, c->channel, m, 1000);
		if (rv != 0)
			hr_log(
			    HR_LOG_WARN, "router conn_close %s: %s", c->channel, hr_strerror(rv));
		hr_mailbox_flush();
	}
	lws_set_opaque_user_data(c->wsi, NULL);
	conn_free(c);
	if (t->stopping && t->n_ws == 0)
		hr_evloop__stop(t);
}

int
hr_transport__callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t = thread_of(wsi);
	hr_conn *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(t, wsi, in);
	case LWS_CALLBACK_ESTABLISHED:
		if (c == NULL || !c->is_ws)
			return -1;
		c->counted = true;
		if (!lws_is_ssl(wsi))
			c->sfd = (int)lws_get_socket_fd(wsi); /* outq.c's batched sends */
		t->n_ws++;
		hr_bucket_init(&c->rate, t->node->cfg.rate_limit, now_ns());
		hr_log(
		    HR_LOG_DEBUG, "ws open %s route=%d thread=%u", c->channel, c->route, t->index);
		if (t->stopping) {
			c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
			hr_outq__want_write(c);
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (c == NULL)
			return -1;
		return ws_receive(c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (c == NULL)
			return -1;
		return ws_writeable(t, c);
	case LWS_CALLBACK_WSI_DESTROY:
		if (c != NULL)
			hr_iothread__conn_destroy(t, c);
		return 0;
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return hr_http__callback(t, wsi, reason, in, len);
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---------------------------------------------------------------- raw fds */

static int
acceptor_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	t = thread_of(wsi);
	int lfd = (int)lws_get_socket_fd(wsi);
	for (int i = 0; i < 1024; i++) {
		int fd = hr_sys__accept(lfd);
		if (fd < 0)
			break; /* EAGAIN, or EMFILE & co: the next turn retries */
		if (t->stopping) {
			hr_sys__close(fd);
			continue;
		}
		/* plain text: a raw socket whose requests http1.c frames (it
		 * hands WebSocket upgrades to lws); TLS: lws's own h1 server */
		lws_sock_file_fd_type sfd = { .sockfd = fd };
		/* lws 4.1.6 closes an adopted socket itself when adoption fails
		 * (lib/core-net/adopt.c): never close fd here after this */
		if (t->node->cfg.tls_cert != NULL)
			(void)lws_adopt_socket_vhost(t->vh, fd);
		else
			(void)lws_adopt_descriptor_vhost(
			    t->vh, LWS_ADOPT_SOCKET, sfd, "herald-http1", NULL);
	}
	return 0;
}

static void
on_stop_grace(lws_sorted_usec_list_t *sul)
{
	hr_iothread *t = lws_container_of(sul, hr_iothread, stop_sul);
	hr_evloop__stop(t);
}

static void
begin_stop(hr_iothread *t)
{
	if (t->stopping)
		return;
	t->stopping = true;
	for (size_t i = 0; i < t->n_listen; i++)
		if (t->acceptors[i] != NULL)
			lws_set_timeout(
			    t->acceptors[i], PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	for (uint32_t s = 0; s < t->nslots; s++) {
		hr_conn *c = t->slots[s].c;
		if (c != NULL && c->is_ws && c->counted) {
			c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
			c->close_reason = "server shutting down";
			hr_outq__want_write(c);
		}
	}
	if (t->n_ws == 0)
		hr_evloop__stop(t);
	else
		lws_sul_schedule(t->ctx, 0, &t->stop_sul, on_stop_grace, STOP_GRACE_US);
}

static void
on_frames(hr_iothread *t, hr_msg *frame, hr_idlist *ids)
{
	for (uint32_t i = 0; i < ids->n; i++) {
		hr_conn *c = hr_iothread__conn_get(t, ids->ids[i]);
		if (c != NULL && c->is_ws && c->counted && c->close_code == 0)
			hr_iothread__queue_frame(c, hr_msg_ref(frame));
	}
	hr_msg_unref(frame);
	hr_idlist_unref(ids);
}

static int
mbox_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t;
	hr_mail m;

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		/* lws_cancel_service: post_stop's fallback from another thread,
		 * or on_send's end of turn on this one (its batch goes now). */
		t = thread_of(wsi);
		hr_mailbox_batch_end_deferred();
		if (t->exit)
			hr_evloop__stop(t);
		return 0;
	}
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	t = thread_of(wsi);
	t->draining = true;
	hr_mailbox_batch_begin();
	/* The fd does not poll readable for a batch already taken from nng. */
	for (int i = 0; i < MAIL_DRAIN_CAP || hr_mailbox_buffered(t->mbox) > 0; i++) {
		if (hr_mailbox_recv(t->mbox, &m, 0) != 0)
			break;
		switch (m.kind) {
		case HR_MAIL_IO_FRAME:
			on_frames(t, m.p1, m.p2);
			break;
		case HR_MAIL_IO_HTTP_REPLY:
			hr_http__on_reply(t, m.u64, (int)(int32_t)m.u32);
			break;
		case HR_MAIL_IO_STOP:
			begin_stop(t);
			break;
		default:
			break;
		}
	}
	t->draining = false;
	hr_outq__flush_drained(t);
	hr_mailbox_batch_end();
	return 0;
}

static void
mail_drop(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_IO_FRAME) {
		hr_msg_unref(m->p1);
		hr_idlist_unref(m->p2);
		m->p1 = m->p2 = NULL;
	}
}

/* ---------------------------------------------------------------- lifecycle */

int
hr_iothread__mailbox(hr_iothread *t)
{
	return hr_mailbox_create(&t->mbox, 8192, mail_drop, t);
}

/* The bounds of HR_HANDSHAKE_TIMEOUT_S & co (transport_impl.h). */
static void
set_limits(struct lws_context_creation_info *info)
{
	info->timeout_secs = HR_HANDSHAKE_TIMEOUT_S;
	info->timeout_secs_ah_idle = HR_HANDSHAKE_TIMEOUT_S;
	info->keepalive_timeout = HR_HTTP_KEEPALIVE_S;
	info->max_http_header_data = HR_HTTP_HEADER_MAX;
}

static void *
run(void *arg)
{
	hr_iothread *t = arg;
	hr_evloop__run(t);
	hr_mailbox_batch_end_deferred(); /* a turn cut short by the stop */
	lws_sul_cancel(&t->stop_sul);
	hr_evloop__destroy(t);
	return NULL;
}

int
hr_iothread__start(hr_iothread *t)
{
	struct lws_context_creation_info info;
	void *foreign_loop = NULL;
	int mfd, dfd, rv;

	if ((t->scratch = malloc(HR_SCRATCH)) == NULL)
		return HR_ENOMEM;
	if ((rv = hr_sys__sendbatch_create(&t->sendbatch, t->node->cfg.io_uring)) != 0)
		return rv;
	if (t->index == 0)
		hr_log(HR_LOG_INFO, "fan-out sends: %s",
		    hr_sys__sendbatch_uring(t->sendbatch) ? "io_uring" : "sendmsg");
	hr_sys__random(&t->rng, sizeof(t->rng));
	t->rng |= 1;
	t->free_head = UINT32_MAX;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = t;
	info.pt_serv_buf_size = 16384;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	set_limits(&info);
	if ((rv = hr_evloop__create(t, &info, &foreign_loop)) != 0)
		return rv;
	if (t->node->cfg.tls_cert != NULL) {
		/* With CONTEXT_PORT_NO_LISTEN lws 4.1.6 never turns TLS on for the
		 * vhost (tls-server.c); NO_LISTEN_SERVER is its "server that adopts
		 * its sockets" mode, which does. Adopted sockets then start TLS
		 * (lws_adopt_socket_vhost passes LWS_ADOPT_ALLOW_SSL). */
		info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = t->node->cfg.tls_cert;
		info.ssl_private_key_filepath = t->node->cfg.tls_key;
	}
	if ((t->ctx = lws_create_context(&info)) == NULL) {
		if (t->evloop != HR_EVLOOP_POLL)
			hr_log(HR_LOG_ERROR,
			    "--event-loop %s: libwebsockets cannot use it (is "
			    "libwebsockets-evlib-%s installed?)",
			    hr_event_loop_name(t->evloop),
			    t->evloop == HR_EVLOOP_LIBEV ? "ev" : "uv");
		return HR_EIO;
	}
	if ((t->vh = lws_get_vhost_by_name(t->ctx, "default")) == NULL)
		return HR_EIO;

	if (hr_mailbox_fd(t->mbox, &mfd) != 0 || (dfd = dup(mfd)) < 0)
		return HR_EIO;
	lws_sock_file_fd_type fd = { .filefd = dfd };
	if (lws_adopt_descriptor_vhost(t->vh, LWS_ADOPT_RAW_FILE_DESC, fd, "herald-mailbox", NULL)
	    == NULL) {
		hr_sys__close(dfd);
		return HR_EIO;
	}
	for (size_t i = 0; i < t->n_listen; i++) {
		lws_sock_file_fd_type lfd = { .filefd = t->listen_fd[i] };
		t->acceptors[i] = lws_adopt_descriptor_vhost(
		    t->vh, LWS_ADOPT_RAW_FILE_DESC, lfd, "herald-acceptor", NULL);
		if (t->acceptors[i] == NULL)
			return HR_EIO;
		t->listen_fd[i] = -1; /* lws owns it now */
	}
	if (pthread_create(&t->thread, NULL, run, t) != 0)
		return HR_EIO;
	t->started = true;
	return 0;
}

void
hr_iothread__post_stop(hr_iothread *t)
{
	hr_mail m = { .kind = HR_MAIL_IO_STOP };
	if (t->mbox != NULL && hr_mailbox_post(t->mbox, &m, 1000) != 0 && t->ctx != NULL) {
		/* mailbox jammed: fall back to the grace timer's effect */
		t->exit = true;
		lws_cancel_service(t->ctx);
	}
}

void
hr_iothread__join(hr_iothread *t)
{
	if (t->started) {
		pthread_join(t->thread, NULL);
		t->started = false;
	}
}

int
hr_iothread__join_until(hr_iothread *t, const struct timespec *deadline)
{
	if (t->started) {
		int rv = pthread_timedjoin_np(t->thread, NULL, deadline);
		if (rv != 0)
			return rv == ETIMEDOUT ? HR_ETIMEDOUT : HR_EIO;
		t->started = false;
	}
	return 0;
}

void
hr_iothread__fini(hr_iothread *t)
{
	hr_iothread__join(t);
	hr_evloop__destroy(t); /* a thread that never started, or failed to */
	for (size_t i = 0; i < t->n_listen; i++)
		if (t->listen_fd[i] >= 0)
			hr_sys__close(t->listen_fd[i]);
	t->n_listen = 0;
	hr_mailbox_destroy(t->mbox);
	t->mbox = NULL;
	/* every conn was freed by WSI_DESTROY during lws_context_destroy */
	free(t->slots);
	t->slots = NULL;
	free(t->scratch);
	t->scratch = NULL;
	hr_sys__sendbatch_destroy(t->sendbatch);
	t->sendbatch = NULL;
	free(t->flush);
	t->flush = NULL;
	t->nflush = t->flushcap = 0;
}
