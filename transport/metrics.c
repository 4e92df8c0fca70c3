/*
 * metrics.c: process-wide counters and their Prometheus text rendering for
 * GET /metrics, with the standard process_* families (sys_proc.c) and
 * herald_build_info. Counters are relaxed atomics bumped from every thread;
 * the rendering runs on the I/O thread that serves the request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "transport/transport_impl.h"

hr_metrics hr_transport__metrics;

static const char *const route_names[HR_N_ROUTES]
    = { "notifications", "user_notifications", "health" };
static const char *const drop_names[HR_N_DROP]
    = { "capacity", "expired", "unknown_type", "slow_consumer", "rate_limit" };
static const char *const closed_names[HR_N_CLOSED] = { "client", "shutdown", "rate_limit",
	"too_big", "ping_timeout", "slow_consumer", "epoch_change", "error" };
static const char *const auth_names[HR_N_AUTH] = { "api_key", "origin", "missing", "malformed",
	"bad_signature", "alg", "expired", "not_yet_valid", "wrong_user" };

size_t
hr_metrics__ws_total(void)
{
	long total = 0;
	for (int i = 0; i < HR_N_ROUTES; i++)
		total += atomic_load_explicit(
		    &hr_transport__metrics.connections[i], memory_order_relaxed);
	return total > 0 ? (size_t)total : 0;
}

static int appendf(hr_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static int
appendf(hr_buf *out, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return HR_EINVAL;
	return hr_buf_append(out, line, (size_t)n);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

/* A family's HELP and TYPE lines; its samples follow. */
static int
family(hr_buf *out, const char *name, const char *type, const char *help)
{
	return appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one sample and no labels. */
static int
scalar(hr_buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
	return family(out, name, type, help) | appendf(out, "%s %" PRIu64 "\n", name, v);
}

/* A family with one sample per label value: name{label="labels[i]"} v[i]. */
static int
labelled(hr_buf *out, const char *name, const char *type, const char *help, const char *label,
    const char *const *labels, const uint64_t *v, size_t n)
{
	int rv = family(out, name, type, help);
	for (size_t i = 0; i < n; i++)
		rv |= appendf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, labels[i], v[i]);
	return rv;
}

/* herald_http_requests_total{code}: the statuses herald answers with are
 * always there (0 until seen, so that rate() works from the first scrape),
 * any other once seen. */
static int
render_http_codes(hr_metrics *m, hr_buf *out)
{
	static const int always[]
	    = { 101, 200, 202, 400, 401, 403, 404, 405, 413, 415, 429, 431, 503 };
	int rv = family(out, "herald_http_requests_total", "counter",
	    "HTTP requests by the status they were answered with (101: a WebSocket handshake "
	    "accepted).");
	for (int i = 0; i < HR_HTTP_CODES; i++) {
		uint64_t v = LOAD(m->http_codes[i]);
		bool show = v > 0;
		for (size_t k = 0; !show && k < sizeof(always) / sizeof(always[0]); k++)
			show = always[k] == i + 100;
		if (show)
			rv |= appendf(out, "herald_http_requests_total{code=\"%d\"} %" PRIu64 "\n",
			    i + 100, v);
	}
	return rv;
}

/* The families of Prometheus's standard process collector, same names,
 * types and units, and herald_build_info. */
static int
render_process(hr_buf *out)
{
	hr_proc_stats st;
	int rv = 0;

	hr_sys__proc_stats(&st);
	rv |= family(out, "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.");
	rv |= appendf(out, "process_cpu_seconds_total %.6f\n", st.cpu_seconds);
	rv |= scalar(out, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.", st.resident);
	rv |= scalar(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
	    st.virtual_bytes);
	if (st.open_fds >= 0)
		rv |= scalar(out, "process_open_fds", "gauge", "Number of open file descriptors.",
		    (uint64_t)st.open_fds);
	if (st.max_fds >= 0)
		rv |= scalar(out, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.", (uint64_t)st.max_fds);
	if (st.start_time > 0) {
		rv |= family(out, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		rv |= appendf(out, "process_start_time_seconds %.2f\n", st.start_time);
	}
	rv |= family(out, "herald_build_info", "gauge", "The running build: always 1.");
	rv |= appendf(out, "herald_build_info{version=\"%s\"} 1\n", HERALD_VERSION);
	return rv;
}

int
hr_metrics__render(hr_node *n, hr_buf *out)
{
	hr_metrics *m = &hr_transport__metrics;
	hr_consumer_stats cs;
	hr_layer_stats ls = { 0 };
	hr_router_stats rs = { 0 };
	hr_bridge_stats bs = { 0 };
	uint64_t dropped[HR_N_DROP], closed[HR_N_CLOSED], auth[HR_N_AUTH], two[2];
	int rv = 0;

	hr_consumers_get_stats(n->consumers, &cs);
	if (n->layer != NULL)
		hr_layer_get_stats(n->layer, &ls);
	if (n->router != NULL)
		hr_router_get_stats(n->router, &rs);
	if (n->bridge != NULL)
		hr_bridge_get_stats(n->bridge, &bs);

	rv |= family(out, "herald_connections", "gauge", "Open WebSocket connections by route.");
	for (int i = 0; i < HR_N_ROUTES; i++)
		rv |= appendf(out, "herald_connections{route=\"%s\"} %ld\n", route_names[i],
		    atomic_load(&m->connections[i]));
	rv |= scalar(out, "herald_ws_frames_sent_total", "counter", "WebSocket frames written.",
	    LOAD(m->frames_sent));
	rv |= scalar(out, "herald_ws_writes_total", "counter",
	    "Socket writes carrying outbound frames (frames_sent / writes = frames per system "
	    "call).",
	    LOAD(m->ws_writes));
	rv |= scalar(out, "herald_ws_frames_received_total", "counter",
	    "WebSocket messages received.", LOAD(m->frames_received));
	rv |= scalar(out, "herald_group_sends_total", "counter", "group_send calls accepted.",
	    LOAD(m->group_sends) > rs.group_sends ? LOAD(m->group_sends) : rs.group_sends);
	static const char *const directions[] = { "in", "out" };
	two[0] = n->bridge ? bs.in : rs.sends + rs.group_sends;
	two[1] = n->bridge ? bs.out : cs.frames;
	rv |= labelled(out, "herald_layer_messages_total", "counter",
	    "Channel-layer messages by direction.", "direction", directions, two, 2);
	for (int i = 0; i < HR_N_DROP; i++) {
		dropped[i] = LOAD(m->dropped[i]);
		if (i == HR_DROP_CAPACITY)
			dropped[i] += ls.full;
		else if (i == HR_DROP_EXPIRED)
			dropped[i] += ls.expired;
		else if (i == HR_DROP_UNKNOWN_TYPE)
			dropped[i] += cs.unknown_type + cs.bad_event;
		else if (i == HR_DROP_SLOW_CONSUMER)
			dropped[i] += cs.io_full + rs.dropped;
	}
	rv |= labelled(out, "herald_dropped_total", "counter", "Messages dropped, by reason.",
	    "reason", drop_names, dropped, HR_N_DROP);
	for (int i = 0; i < HR_N_CLOSED; i++)
		closed[i] = LOAD(m->ws_closed[i]);
	rv |= labelled(out, "herald_ws_closed_total", "counter", "WebSockets closed, by reason.",
	    "reason", closed_names, closed, HR_N_CLOSED);
	rv |= scalar(out, "herald_redis_up", "gauge", "1 when the Redis layer is reachable.",
	    n->bridge != NULL && hr_bridge_up(n->bridge) ? 1 : 0);
	if (n->bridge != NULL) {
		static const char *const ops[] = { "group_send", "send" };
		static const char *const reasons[] = { "malformed", "no_local_target" };
		two[0] = bs.fed_failures;
		two[1] = bs.send_failures;
		rv |= labelled(out, "herald_federation_failures_total", "counter",
		    "Local sends not federated: Redis down.", "op", ops, two, 2);
		rv |= scalar(out, "herald_redis_memberships", "gauge",
		    "Groups this node is registered in.", bs.memberships);
		rv |= scalar(out, "herald_history_sequenced_total", "counter",
		    "Group_sends with shared history this node sequenced.", bs.sequenced);
		rv |= scalar(out, "herald_redis_reconnects_total", "counter",
		    "Times Redis came back.", bs.reconnects);
		rv |= scalar(out, "herald_redis_failovers_total", "counter",
		    "Sentinel failovers followed.", ls.failovers);
		two[0] = ls.bad;
		two[1] = bs.stale;
		rv |= labelled(out, "herald_redis_dropped_total", "counter",
		    "Messages read from Redis and dropped.", "reason", reasons, two, 2);
	}
	for (int i = 0; i < HR_N_AUTH; i++)
		auth[i] = LOAD(m->auth_failures[i]);
	rv |= labelled(out, "herald_auth_failures_total", "counter",
	    "Refused authentications, by reason.", "reason", auth_names, auth, HR_N_AUTH);
	rv |= render_http_codes(m, out);
	rv |= render_process(out);
	hr_history_stats hs = { 0 };
	if (n->router != NULL)
		hr_router_get_history_stats(n->router, &hs);
	rv |= scalar(out, "herald_history_replayed_total", "counter",
	    "Frames replayed from history to resuming clients.", hs.replayed);
	rv |= scalar(out, "herald_history_unrecoverable_total", "counter",
	    "Resumes that gave a position and were answered recovered:false.", hs.unrecoverable);
	rv |= scalar(out, "herald_history_bytes", "gauge",
	    "Memory held by recovery history (frames and slots).", hs.bytes);
	return rv ? HR_ENOMEM : 0;
}
