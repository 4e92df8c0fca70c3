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

/* herald_http_requests_total{code}: the statuses herald answers with are
 * always there (0 until seen, so that rate() works from the first scrape),
 * any other once seen. */
static int
render_http_codes(hr_metrics *m, hr_buf *out)
{
	static const int always[]
	    = { 101, 200, 202, 400, 401, 403, 404, 405, 413, 415, 429, 431, 503 };
	int rv = appendf(out,
	    "# HELP herald_http_requests_total HTTP requests by the status they were answered "
	    "with (101: a WebSocket handshake accepted).\n"
	    "# TYPE herald_http_requests_total counter\n");
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
	rv |= appendf(out,
	    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
	    "# TYPE process_cpu_seconds_total counter\n"
	    "process_cpu_seconds_total %.6f\n",
	    st.cpu_seconds);
	rv |= appendf(out,
	    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %" PRIu64 "\n",
	    st.resident);
	rv |= appendf(out,
	    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
	    "# TYPE process_virtual_memory_bytes gauge\n"
	    "process_virtual_memory_bytes %" PRIu64 "\n",
	    st.virtual_bytes);
	if (st.open_fds >= 0)
		rv |= appendf(out,
		    "# HELP process_open_fds Number of open file descriptors.\n"
		    "# TYPE process_open_fds gauge\n"
		    "process_open_fds %ld\n",
		    st.open_fds);
	if (st.max_fds >= 0)
		rv |= appendf(out,
		    "# HELP process_max_fds Maximum number of open file descriptors.\n"
		    "# TYPE process_max_fds gauge\n"
		    "process_max_fds %ld\n",
		    st.max_fds);
	if (st.start_time > 0)
		rv |= appendf(out,
		    "# HELP process_start_time_seconds Start time of the process since unix epoch "
		    "in seconds.\n"
		    "# TYPE process_start_time_seconds gauge\n"
		    "process_start_time_seconds %.2f\n",
		    st.start_time);
	rv |= appendf(out,
	    "# HELP herald_build_info The running build: always 1.\n"
	    "# TYPE herald_build_info gauge\n"
	    "herald_build_info{version=\"%s\"} 1\n",
	    HERALD_VERSION);
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
	int rv = 0;

	hr_consumers_get_stats(n->consumers, &cs);
	if (n->layer != NULL)
		hr_layer_get_stats(n->layer, &ls);
	if (n->router != NULL)
		hr_router_get_stats(n->router, &rs);
	if (n->bridge != NULL)
		hr_bridge_get_stats(n->bridge, &bs);

	rv |= appendf(out,
	    "# HELP herald_connections Open WebSocket connections by route.\n"
	    "# TYPE herald_connections gauge\n");
	for (int i = 0; i < HR_N_ROUTES; i++)
		rv |= appendf(out, "herald_connections{route=\"%s\"} %ld\n", route_names[i],
		    atomic_load(&m->connections[i]));
	rv |= appendf(out,
	    "# HELP herald_ws_frames_sent_total WebSocket frames written.\n"
	    "# TYPE herald_ws_frames_sent_total counter\n"
	    "herald_ws_frames_sent_total %" PRIu64 "\n",
	    LOAD(m->frames_sent));
	rv |= appendf(out,
	    "# HELP herald_ws_writes_total Socket writes carrying outbound frames "
	    "(frames_sent / writes = frames per system call).\n"
	    "# TYPE herald_ws_writes_total counter\n"
	    "herald_ws_writes_total %" PRIu64 "\n",
	    LOAD(m->ws_writes));
	rv |= appendf(out,
	    "# HELP herald_ws_frames_received_total WebSocket messages received.\n"
	    "# TYPE herald_ws_frames_received_total counter\n"
	    "herald_ws_frames_received_total %" PRIu64 "\n",
	    LOAD(m->frames_received));
	rv |= appendf(out,
	    "# HELP herald_group_sends_total group_send calls accepted.\n"
	    "# TYPE herald_group_sends_total counter\n"
	    "herald_group_sends_total %" PRIu64 "\n",
	    LOAD(m->group_sends) > rs.group_sends ? LOAD(m->group_sends) : rs.group_sends);
	rv |= appendf(out,
	    "# HELP herald_layer_messages_total Channel-layer messages by direction.\n"
	    "# TYPE herald_layer_messages_total counter\n"
	    "herald_layer_messages_total{direction=\"in\"} %" PRIu64 "\n"
	    "herald_layer_messages_total{direction=\"out\"} %" PRIu64 "\n",
	    n->bridge ? bs.in : rs.sends + rs.group_sends, n->bridge ? bs.out : cs.frames);
	rv |= appendf(out,
	    "# HELP herald_dropped_total Messages dropped, by reason.\n"
	    "# TYPE herald_dropped_total counter\n");
	for (int i = 0; i < HR_N_DROP; i++) {
		uint64_t v = LOAD(m->dropped[i]);
		if (i == HR_DROP_CAPACITY)
			v += ls.full;
		else if (i == HR_DROP_EXPIRED)
			v += ls.expired;
		else if (i == HR_DROP_UNKNOWN_TYPE)
			v += cs.unknown_type + cs.bad_event;
		else if (i == HR_DROP_SLOW_CONSUMER)
			v += cs.io_full + rs.dropped;
		rv |= appendf(
		    out, "herald_dropped_total{reason=\"%s\"} %" PRIu64 "\n", drop_names[i], v);
	}
	rv |= appendf(out,
	    "# HELP herald_ws_closed_total WebSockets closed, by reason.\n"
	    "# TYPE herald_ws_closed_total counter\n");
	for (int i = 0; i < HR_N_CLOSED; i++)
		rv |= appendf(out, "herald_ws_closed_total{reason=\"%s\"} %" PRIu64 "\n",
		    closed_names[i], LOAD(m->ws_closed[i]));
	rv |= appendf(out,
	    "# HELP herald_redis_up 1 when the Redis layer is reachable.\n"
	    "# TYPE herald_redis_up gauge\n"
	    "herald_redis_up %d\n",
	    n->bridge != NULL && hr_bridge_up(n->bridge) ? 1 : 0);
	if (n->bridge != NULL) {
		rv |= appendf(out,
		    "# HELP herald_federation_failures_total Local sends not federated: "
		    "Redis down.\n"
		    "# TYPE herald_federation_failures_total counter\n");
		rv |= appendf(out,
		    "herald_federation_failures_total{op=\"group_send\"} %" PRIu64 "\n"
		    "herald_federation_failures_total{op=\"send\"} %" PRIu64 "\n",
		    bs.fed_failures, bs.send_failures);
		rv |= appendf(out,
		    "# HELP herald_redis_memberships Groups this node is registered in.\n"
		    "# TYPE herald_redis_memberships gauge\n"
		    "herald_redis_memberships %" PRIu64 "\n",
		    bs.memberships);
		rv |= appendf(out,
		    "# HELP herald_history_sequenced_total Group_sends with shared history "
		    "this node sequenced.\n"
		    "# TYPE herald_history_sequenced_total counter\n"
		    "herald_history_sequenced_total %" PRIu64 "\n",
		    bs.sequenced);
		rv |= appendf(out,
		    "# HELP herald_redis_reconnects_total Times Redis came back.\n"
		    "# TYPE herald_redis_reconnects_total counter\n"
		    "herald_redis_reconnects_total %" PRIu64 "\n",
		    bs.reconnects);
		rv |= appendf(out,
		    "# HELP herald_redis_failovers_total Sentinel failovers followed.\n"
		    "# TYPE herald_redis_failovers_total counter\n"
		    "herald_redis_failovers_total %" PRIu64 "\n",
		    ls.failovers);
		rv |= appendf(out,
		    "# HELP herald_redis_dropped_total Messages read from Redis and dropped.\n"
		    "# TYPE herald_redis_dropped_total counter\n");
		rv |= appendf(out,
		    "herald_redis_dropped_total{reason=\"malformed\"} %" PRIu64 "\n"
		    "herald_redis_dropped_total{reason=\"no_local_target\"} %" PRIu64 "\n",
		    ls.bad, bs.stale);
	}
	rv |= appendf(out,
	    "# HELP herald_auth_failures_total Refused authentications, by reason.\n"
	    "# TYPE herald_auth_failures_total counter\n");
	for (int i = 0; i < HR_N_AUTH; i++)
		rv |= appendf(out, "herald_auth_failures_total{reason=\"%s\"} %" PRIu64 "\n",
		    auth_names[i], LOAD(m->auth_failures[i]));
	rv |= render_http_codes(m, out);
	rv |= render_process(out);
	hr_history_stats hs = { 0 };
	if (n->router != NULL)
		hr_router_get_history_stats(n->router, &hs);
	rv |= appendf(out,
	    "# HELP herald_history_replayed_total Frames replayed from history to resuming "
	    "clients.\n"
	    "# TYPE herald_history_replayed_total counter\n"
	    "herald_history_replayed_total %" PRIu64 "\n",
	    hs.replayed);
	rv |= appendf(out,
	    "# HELP herald_history_unrecoverable_total Resumes that gave a position and "
	    "were answered recovered:false.\n"
	    "# TYPE herald_history_unrecoverable_total counter\n"
	    "herald_history_unrecoverable_total %" PRIu64 "\n",
	    hs.unrecoverable);
	rv |= appendf(out,
	    "# HELP herald_history_bytes Memory held by recovery history (frames and "
	    "slots).\n"
	    "# TYPE herald_history_bytes gauge\n"
	    "herald_history_bytes %" PRIu64 "\n",
	    hs.bytes);
	return rv ? HR_ENOMEM : 0;
}
