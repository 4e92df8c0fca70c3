/*
 * ws.c: the WebSocket side of an I/O thread: the handshake checks (route,
 * Origin, JWT, --max-connections) and the registration with the router
 * before the 101, the inbound frames (reassembled up to --max-message,
 * rate-limited, answered), the writeable callback that hands the queue to
 * outq.c, and the close of a connection lws ends. hr_ws__callback is the lws
 * protocol that serves HTTP too (lws binds an upgraded WebSocket to
 * the vhost's first protocol): its HTTP events go to http_lws.c.
 *
 * Inbound frames are parsed here, on the I/O thread: they are small (bounded
 * by --max-message), rate-limited first, and every answer (pong, whoami,
 * status, error) goes back to the same socket, so a trip through a consumer
 * actor would add two mailbox hops and a lookup for nothing.
 *
 * Liveness: with --ping-interval, every WebSocket is on two of the thread's
 * intrusive lists (conn.c), one ordered by its last inbound activity (a
 * frame, a pong), one by its last ping. Activity moves a connection to the
 * tail of the first (O(1)); the tick (hr_ws__tick, every HR_TICK_MS) walks
 * each list from its head only while entries are due, so an idle node with
 * many connections pays for the connections due, not for all of them.
 * Pings are queued like any frame (outq.c): they leave in the batched sends
 * with the rest, and never cut into a frame lws is still writing.
 *
 * Closing (hr_outq__close): the queue leaves first, then herald's close frame,
 * written here as raw bytes on every loop and transport; then the connection
 * lingers: plain sockets are shut for writing, and what the client still
 * sends is read and discarded until its close frame or EOF, for at most
 * HR_LINGER_S. lws 4.1.6's own close path is not used for this: after its
 * close frame it closed the socket on the next read that held no close frame
 * (with unread bytes, so the kernel sent a reset), and on libuv it never
 * wrote the close frame at all.
 *
 * Threads: the owning I/O thread only.
 */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "transport/recover_int.h"
#include "transport/transport_impl.h"

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

static uint64_t
now_ms(void)
{
	return now_ns() / 1000000u;
}

/* ---------------------------------------------------------------- liveness */

static void
live_add(hr_iothread *t, hr_conn *c)
{
	if (t->node->cfg.ping_interval == 0 || c->ws.listed)
		return;
	c->ws.last_rx_ms = c->ws.last_ping_ms = now_ms();
	hr_conn__list_append(t, HR_LIST_RX, c);
	hr_conn__list_append(t, HR_LIST_PING, c);
	c->ws.listed = true;
	t->n_live++;
}

/* Something arrived from c: a frame (or part of one), a pong. */
static void
live_touch(hr_iothread *t, hr_conn *c)
{
	if (!c->ws.listed)
		return;
	c->ws.last_rx_ms = now_ms();
	hr_conn__list_touch(t, HR_LIST_RX, c);
}

void
hr_ws__tick(hr_iothread *t)
{
	const hr_config *cfg = &t->node->cfg;
	hr_conn *c;

	if (cfg->ping_interval == 0 || t->ping_frame == NULL)
		return;
	uint64_t now = now_ms();
	uint64_t every = (uint64_t)cfg->ping_interval * 1000u;
	uint64_t silent = every + (uint64_t)cfg->ping_timeout * 1000u;
	/* hr_outq__close takes c off both lists */
	while ((c = t->live[HR_LIST_RX].head) != NULL && now - c->ws.last_rx_ms >= silent)
		hr_outq__close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "ping timeout");
	/*
	 * Spread: connections that came at once (a reconnect storm) are due
	 * at once. A tick pings at most enough of them to ping every
	 * connection within half of min(interval, timeout); the rest wait for
	 * the next ticks, and their next pings are spread as well. The delay
	 * (at most that half) leaves a client that answers well inside
	 * interval + timeout.
	 */
	uint64_t spread_ms = (every < silent - every ? every : silent - every) / 2;
	size_t budget
	    = spread_ms <= HR_TICK_MS ? t->n_live : t->n_live * HR_TICK_MS / (size_t)spread_ms + 1;
	/* as in a mailbox drain: the pings leave in one batch at the end */
	t->draining = true;
	/* due a little early rather than a whole tick late: ticks come
	 * HR_TICK_MS apart give or take the loop's timer slack, and a tick a
	 * millisecond short of `every` would put the ping off by a tick */
	uint64_t due = every - HR_TICK_MS / 10;
	while (budget-- > 0 && (c = t->live[HR_LIST_PING].head) != NULL
	    && now - c->ws.last_ping_ms >= due) {
		c->ws.last_ping_ms = now;
		hr_conn__list_touch(t, HR_LIST_PING, c);
		/* never push a frame out for a ping: a connection whose queue is
		 * full is written to already */
		if (c->ws.out.len < HR_CONN_QMAX
		    && c->ws.out.bytes + hr_msg_len(t->ping_frame) <= HR_CONN_QBYTES)
			hr_outq__queue(c, hr_msg_ref(t->ping_frame));
	}
	t->draining = false;
	hr_outq__flush_drained(t);
}

/* ---------------------------------------------------------------- closing */

/* The queue has left: write the close frame (RFC 6455 5.5.1, unmasked) behind
 * it and start lingering. -1: the socket failed. */
static int
write_close(hr_conn *c)
{
	unsigned char buf[LWS_PRE + 4 + 123];
	unsigned char *f = buf + LWS_PRE;
	size_t rl = c->ws.close_reason ? strlen(c->ws.close_reason) : 0;

	if (rl > 123)
		rl = 123;
	f[0] = 0x88;
	f[1] = (unsigned char)(2 + rl);
	f[2] = (unsigned char)(c->ws.close_code >> 8);
	f[3] = (unsigned char)c->ws.close_code;
	if (rl > 0)
		memcpy(f + 4, c->ws.close_reason, rl);
	if (lws_write(c->wsi, f, 4 + rl, LWS_WRITE_RAW) < (int)(4 + rl))
		return -1;
	c->ws.close_sent = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, HR_LINGER_S);
	hr_outq__want_write(c); /* the shutdown, once lws holds nothing unsent */
	return 0;
}

static int
ws_writeable(hr_iothread *t, hr_conn *c)
{
	if (c->ws.close_sent) {
		/* lingering: nothing more to write. A plain socket is shut
		 * for writing once its close frame has left, so the client
		 * sees EOF; with TLS the close_notify comes at the close. */
		if (c->ws.shut_wr || c->ws.sfd < 0)
			return 0;
		if (lws_partial_buffered(c->wsi)) {
			hr_outq__want_write(c);
			return 0;
		}
		c->ws.shut_wr = true;
		(void)hr_sys__shutdown_wr(c->ws.sfd);
		return 0;
	}
	if (c->ws.close_code && c->ws.out.len == 0)
		return write_close(c);
	if (c->ws.out.len == 0)
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
		hr_outq__queue(c, frame);
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

	hr_clock_iso8601(hr_clock_wall_us(), ts, sizeof(ts));
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
	    && hr_json__append_str(&b, c->ws.channel, strlen(c->ws.channel)) == 0
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
	    (long long)(hr_clock_mono() - n->started_at));
	hr_buf_init(&b, HR_FRAME_HEADROOM);
	if (len > 0 && (size_t)len < sizeof(out) && hr_buf_append(&b, out, (size_t)len) == 0)
		(void)queue_json(c, &b);
	hr_buf_fini(&b);
}

/* Returns -1 to close the connection at once. */
static int
handle_message(hr_conn *c)
{
	json_error_t jerr;
	json_t *root, *type;

	HR_METRIC_ADD(frames_received, 1);
	switch (hr_bucket_take(&c->ws.rate, now_ns())) {
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
		hr_outq__close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit");
		return 0;
	}
	if (c->ws.rx_binary) {
		send_error(c, "binary frames are not supported");
		return 0;
	}
	root = json_loadb((const char *)c->ws.rx, c->ws.rxlen, JSON_DECODE_ANY, &jerr);
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
	else if (strcmp(ty, "status") == 0 && c->ws.route == HR_ROUTE_HEALTH)
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

	if (c->ws.rx_in_msg == false) {
		c->ws.rx_in_msg = true;
		c->ws.rxlen = 0;
		c->ws.rx_binary = lws_frame_is_binary(c->wsi) != 0;
	}
	if (c->ws.close_code)
		return 0; /* closing: what still arrives is read and discarded */
	live_touch(c->t, c);
	if (c->ws.rxlen + len > max) {
		hr_outq__close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
		return 0;
	}
	if (c->ws.rxlen + len > c->ws.rxcap) {
		size_t ncap = c->ws.rxcap ? c->ws.rxcap : 256;
		while (ncap < c->ws.rxlen + len)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		unsigned char *nrx = realloc(c->ws.rx, ncap);
		if (nrx == NULL)
			return -1;
		c->ws.rx = nrx;
		c->ws.rxcap = ncap;
	}
	if (len > 0)
		memcpy(c->ws.rx + c->ws.rxlen, in, len);
	c->ws.rxlen += len;
	if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi) > 0)
		return 0;
	c->ws.rx_in_msg = false;
	return handle_message(c);
}

/* ---------------------------------------------------------------- handshake */

/* Match the routes of docs/PROTOCOL.md; user gets the user_id for the user route. */
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
	snprintf(c->ws.channel, sizeof(c->ws.channel), "specific.%s!%s%x.%llx",
	    t->node->node_prefix, rnd, t->index, (unsigned long long)c->id);
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
	hr_access__refused(wsi, code, (size_t)bl);
	return -1;
}

/* One log line per refused handshake: the peer's address and the reason,
 * never the token, the Origin or the path (the client chose those). */
static void
log_refusal(struct lws *wsi, unsigned code, const char *why)
{
	char peer[HR_PEER_MAX];
	hr_access__peer_hdr(wsi, peer, sizeof(peer));
	hr_log(HR_LOG_INFO, "handshake refused %u from %s: %s", code, peer, why);
}

/* ?token= or Authorization: Bearer, verified with the shared checks of
 * security.c; a refusal is counted by its reason. */
static int
check_jwt(hr_node *n, struct lws *wsi, const char *user)
{
	/* one per I/O thread (too big for the stack): a static shared by the
	 * threads let a handshake verify another thread's token */
	static _Thread_local char tok[HR_JWT_MAX + 16];
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
	hr_recover_pos pos;
	int route, rv, rec = 0;

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
	char group[96] = "";
	if (route == HR_ROUTE_NOTIFICATIONS)
		snprintf(group, sizeof(group), "notifications");
	else if (route == HR_ROUTE_USER)
		snprintf(group, sizeof(group), "user_%s", user);
	/* ?recover= on a route that joins a group (recover.c) */
	if (group[0] != '\0' && (rec = hr_recover__from_wsi(wsi, group, &pos)) < 0) {
		log_refusal(wsi, 400, "recover");
		return refuse(wsi, 400);
	}
	if (n->cfg.max_connections > 0 && hr_metrics__ws_total() >= n->cfg.max_connections)
		return refuse(wsi, 503);
	if (c == NULL && hr_conn__new(t, wsi, &c) != 0)
		return refuse(wsi, 503);
	c->ws.is_ws = true;
	c->ws.route = route;
	c->ws.recover = rec > 0;
	make_channel(t, c);
	memcpy(c->ws.group, group, sizeof(group));

	/* Registered before the 101 leaves: the router's mailbox is FIFO, so a
	 * group_send posted after the client saw the 101 is handled after
	 * these. Never waiting for room (timeout 0): a router too busy to take
	 * them refuses the handshake with 503, and the client comes back. */
	hr_member m = { .thread = (uint16_t)t->index,
		.consumer = (uint16_t)route,
		.flags = c->ws.recover ? HR_MEMBER_RECOVER : 0,
		.conn = c->id };
	if ((rv = hr_router_conn_open(n->router, c->ws.channel, m, 0)) != 0) {
		hr_log(HR_LOG_WARN, "router refused a connection: %s", hr_strerror(rv));
		return refuse(wsi, 503);
	}
	c->ws.registered = true;
	if (c->ws.group[0] != '\0'
	    && (rv = c->ws.recover ? hr_router_group_add_recover(n->router, c->ws.group, m, &pos, 0)
	                           : hr_router_group_add(n->router, c->ws.group, m, 0))
	        != 0) {
		hr_log(
		    HR_LOG_WARN, "router refused group_add %s: %s", c->ws.group, hr_strerror(rv));
		return refuse(wsi, 503);
	}
	hr_mailbox_flush(); /* in the router before the 101 leaves */
	/* Counted in the gauge now, not at ESTABLISHED: lws writes the 101
	 * before it calls ESTABLISHED (server-ws.c), and a client that has its
	 * 101 must find itself in /metrics and /healthz, whichever I/O thread
	 * answers them. */
	atomic_fetch_add(&hr_transport__metrics.connections[c->ws.route], 1);
	c->ws.gauged = true;
	return 0;
}

/* herald_ws_closed_total's reason for c */
static int
closed_reason(const hr_conn *c)
{
	switch (c->ws.close_code) {
	case 0:
		return c->ws.failed ? HR_CLOSED_ERROR : HR_CLOSED_CLIENT;
	case LWS_CLOSE_STATUS_GOINGAWAY:
		return HR_CLOSED_SHUTDOWN;
	case LWS_CLOSE_STATUS_POLICY_VIOLATION:
		return HR_CLOSED_RATE_LIMIT;
	case LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE:
		return HR_CLOSED_TOO_BIG;
	case LWS_CLOSE_STATUS_UNEXPECTED_CONDITION:
		return HR_CLOSED_PING_TIMEOUT;
	case 1013: /* try again later: a recover connection too slow, or
	            * whose group's history moved to a new epoch */
		return c->ws.epoch_closed ? HR_CLOSED_EPOCH_CHANGE : HR_CLOSED_SLOW_CONSUMER;
	default:
		return HR_CLOSED_ERROR;
	}
}

/* Release c's WebSocket part: the gauge, the count, its router membership,
 * its queued frames and its inbound buffer. A no-op on what c never did. */
static void
ws_fini(hr_iothread *t, hr_conn *c)
{
	if (c->ws.gauged)
		atomic_fetch_sub(&hr_transport__metrics.connections[c->ws.route], 1);
	if (c->ws.counted) {
		hr_log(HR_LOG_DEBUG, "ws close %s code=%d", c->ws.channel, c->ws.close_code);
		HR_METRIC_ADD(ws_closed[closed_reason(c)], 1);
		t->n_ws--;
	}
	hr_conn__unlist(t, c);
	if (c->ws.registered) {
		hr_member m = { .thread = (uint16_t)t->index,
			.consumer = (uint16_t)c->ws.route,
			.conn = c->id };
		/* posted now, or kept until the router has room: never lost */
		int rv = hr_post__request(t, HR_REQ_CONN_CLOSE, c->ws.channel, m, NULL, NULL, NULL);
		if (rv != 0)
			hr_log(HR_LOG_WARN, "router conn_close %s: %s", c->ws.channel,
			    hr_strerror(rv));
		hr_mailbox_flush();
	}
	hr_outq__clear(c);
	free(c->ws.rx);
	c->ws.rx = NULL;
}

int
hr_ws__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t = thread_of(wsi);
	hr_conn *c = lws_get_opaque_user_data(wsi);

	if (c != NULL) /* the 101 count, the access log's session (accesslog.c) */
		hr_access__ws_event(c, reason, in, len);
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(t, wsi, in);
	case LWS_CALLBACK_ESTABLISHED:
		if (c == NULL || !c->ws.is_ws)
			return -1;
		c->ws.counted = true;
		if (!lws_is_ssl(wsi))
			c->ws.sfd = (int)lws_get_socket_fd(wsi); /* outq.c's batched sends */
		t->n_ws++;
		hr_bucket_init(&c->ws.rate, t->node->cfg.rate_limit, now_ns());
		hr_log(HR_LOG_DEBUG, "ws open %s route=%d thread=%u", c->ws.channel, c->ws.route,
		    t->index);
		if (t->stopping)
			hr_outq__close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
		else
			live_add(t, c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (c == NULL)
			return -1;
		if (ws_receive(c, in, len) == 0)
			return 0;
		c->ws.failed = true;
		return -1;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (c != NULL)
			live_touch(t, c);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* the client's answer to our close frame: the close handshake is
		 * complete, close the socket now (lws would answer it with a
		 * close frame of its own, a second one from us). Otherwise lws
		 * answers the client's close and closes. */
		return c != NULL && c->ws.close_sent ? -1 : 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (c == NULL)
			return -1;
		return ws_writeable(t, c);
	case LWS_CALLBACK_WSI_DESTROY:
		if (c != NULL) {
			ws_fini(t, c);
			hr_http__detach(c);
			hr_conn__destroy(c);
		}
		return 0;
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return hr_http_lws__callback(t, wsi, reason, in, len);
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void
close_going_away(hr_conn *c, void *arg)
{
	if (c->ws.is_ws && c->ws.counted)
		hr_outq__close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

void
hr_ws__close_all(hr_iothread *t)
{
	hr_conn__each(t, close_going_away, NULL);
}
