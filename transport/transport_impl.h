/*
 * transport_impl.h: private declarations of the `transport` module (I/O
 * threads, HTTP API, metrics, node). Nothing outside transport/ includes it.
 *
 * Threads: an hr_iothread and everything reachable from it (connections,
 * slot table, scratch buffer) is ONLY touched from that I/O thread, except
 * its mailbox (any thread posts), its late list (under late_mu) and the
 * fields marked atomic.
 *
 * Files, each calling only those below it: node.c (the node) -> iothread.c
 * (a thread: context, listeners, mailbox drain) -> ws.c (WebSocket
 * handshake, inbound frames, close), http1.c (plain-text HTTP/1 framing),
 * http_lws.c (lws's HTTP framing, TLS) -> http.c (the HTTP API, answering
 * through the connection's framing hook) and outq.c (frame queues and their
 * writes) -> post.c (requests to the router and the bridge, never waiting)
 * and conn.c (the connection table) -> evloop.c, which runs the thread's
 * tick through a hook (t->tick). Time comes from core/clock.h.
 */
#ifndef HERALD_TRANSPORT_IMPL_H
#define HERALD_TRANSPORT_IMPL_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "actors/actor.h"
#include "actors/bridge.h"
#include "actors/consumer.h"
#include "transport/security_int.h"
#include "transport/transport.h"

/* Routes: equal to the consumer types (hr_member.consumer). */
enum {
	HR_ROUTE_NOTIFICATIONS = HR_CONSUMER_NOTIFICATIONS,
	HR_ROUTE_USER = HR_CONSUMER_USER,
	HR_ROUTE_HEALTH = HR_CONSUMER_HEALTH,
	HR_N_ROUTES = HR_N_CONSUMERS,
};

/* herald_dropped_total{reason} */
enum {
	HR_DROP_CAPACITY = 0,
	HR_DROP_EXPIRED,
	HR_DROP_UNKNOWN_TYPE,
	HR_DROP_SLOW_CONSUMER,
	HR_DROP_RATE_LIMIT,
	HR_N_DROP,
};

/* herald_ws_closed_total{reason}: why a WebSocket past its 101 ended.
 * client: the client closed (close frame, EOF); error: herald dropped it
 * without a close frame (a socket error, out of memory). */
enum {
	HR_CLOSED_CLIENT = 0,
	HR_CLOSED_SHUTDOWN,      /* 1001 */
	HR_CLOSED_RATE_LIMIT,    /* 1008 */
	HR_CLOSED_TOO_BIG,       /* 1009 */
	HR_CLOSED_PING_TIMEOUT,  /* 1011 */
	HR_CLOSED_SLOW_CONSUMER, /* 1013 */
	HR_CLOSED_EPOCH_CHANGE,  /* 1013: its group's history moved to a new epoch */
	HR_CLOSED_ERROR,
	HR_N_CLOSED,
};

/* herald_auth_failures_total{reason}: api_key, origin, and the JWT refusal
 * reasons of security_int.h */
enum {
	HR_AUTH_API_KEY = 0,
	HR_AUTH_ORIGIN,
	HR_AUTH_MISSING,
	HR_AUTH_MALFORMED,
	HR_AUTH_BAD_SIGNATURE,
	HR_AUTH_ALG,
	HR_AUTH_EXPIRED,
	HR_AUTH_NOT_YET_VALID,
	HR_AUTH_WRONG_USER,
	HR_N_AUTH,
};

#define HR_HTTP_CODES 500 /* statuses 100..599 */

/* Process-wide counters (one node per process). Relaxed atomics. */
typedef struct hr_metrics {
	atomic_long connections[HR_N_ROUTES];
	atomic_uint_fast64_t frames_sent;
	atomic_uint_fast64_t ws_writes; /* writes carrying frames */
	atomic_uint_fast64_t frames_received;
	atomic_uint_fast64_t group_sends;
	atomic_uint_fast64_t dropped[HR_N_DROP];
	atomic_uint_fast64_t auth_failures[HR_N_AUTH];
	atomic_uint_fast64_t ws_closed[HR_N_CLOSED];
	/* herald_http_requests_total{code}: answers by status, 100..599
	 * (accesslog.c counts them) */
	atomic_uint_fast64_t http_codes[HR_HTTP_CODES];
} hr_metrics;

extern hr_metrics hr_transport__metrics;
#define HR_METRIC_ADD(field, n)                                                                    \
	atomic_fetch_add_explicit(&hr_transport__metrics.field, (n), memory_order_relaxed)

/* Per-connection outbound queue bounds (memory stays bounded): drop the oldest beyond. */
#define HR_CONN_QMAX 1024u
#define HR_CONN_QBYTES (4u << 20)
/* A queue's ring of more slots than this is freed when the queue empties;
 * up to this many slots (what a loop turn's broadcasts fill) it is kept. */
#define HR_OUTQ_KEEP 32u
/* Per-thread gather buffer: queued frames are copied here and leave in one
 * write (README.md "Reading the code"). Also the ws protocol's tx_packet_size so that
 * lws sends it with one send(). */
#define HR_SCRATCH (64u * 1024u)
#define HR_HTTP_BODY_MAX (1u << 20)
/* Connection bounds handed to lws (docs/SECURITY.md "Limits"): a connection
 * that has not finished its request headers (or, with TLS, its handshake)
 * within HR_HANDSHAKE_TIMEOUT_S is closed, however slowly it trickles bytes;
 * an idle keep-alive HTTP connection after HR_HTTP_KEEPALIVE_S; request line
 * plus headers over HR_HTTP_HEADER_MAX bytes close the connection unanswered
 * (room for an 8 KiB token, HR_JWT_MAX, in ?token= or Authorization). */
#define HR_HANDSHAKE_TIMEOUT_S 10u
#define HR_HTTP_KEEPALIVE_S 5
#define HR_HTTP_HEADER_MAX 12288u
/* Closing a WebSocket (ws.c, docs/PROTOCOL.md "Closing"): its queue and the
 * close frame may take HR_CLOSE_FLUSH_S to leave; then herald reads and
 * discards for at most HR_LINGER_S before it closes the socket. */
#define HR_CLOSE_FLUSH_S 5
#define HR_LINGER_S 2
/* The liveness tick of an I/O thread (pings and ping timeouts, ws.c). */
#define HR_TICK_MS 500u

typedef struct hr_node hr_node;
typedef struct hr_iothread hr_iothread;
typedef struct hr_sendbatch hr_sendbatch;
struct iovec;
typedef struct hr_conn hr_conn;

/* An intrusive doubly-linked list of WebSockets (conn.c), ordered by the
 * time each was last moved to its tail. */
typedef struct hr_link {
	hr_conn *prev, *next;
} hr_link;
typedef struct hr_clist {
	hr_conn *head, *tail;
} hr_clist;
/* The liveness lists of an I/O thread (ws.c): by last inbound activity
 * (ping timeouts), by last ping sent (pings). */
enum { HR_LIST_RX = 0, HR_LIST_PING, HR_N_LISTS };

/* How a connection's HTTP answers leave, set by its framing side:
 * http_lws.c (lws's h1 server, TLS) or http1.c (raw plain-text sockets).
 * http.c answers through it and never asks which one it is. */
typedef struct hr_http_framing {
	/* Queue the answer (type borrowed for the connection's life; body
	 * copied) and clear c->awaiting_reply. -1: close the connection. */
	int (*respond)(hr_conn *c, int status, const char *type, const char *body, size_t len);
	/* A router reply was answered: go on with the requests waiting behind
	 * it. NULL when none can wait. */
	void (*resume)(hr_conn *c);
} hr_http_framing;

/* outq.c: a bounded FIFO of frame references: at most
 * HR_CONN_QMAX frames and HR_CONN_QBYTES bytes, the oldest dropped beyond.
 * Zeroed is empty. Owned by one connection, so by one I/O thread. */
typedef struct hr_outq {
	hr_msg **ring;
	uint32_t cap, head, len; /* len frames from ring[head], wrapping at cap */
	size_t bytes;            /* sum of their lengths */
} hr_outq;

/* The WebSocket part of a connection (ws.c; its queue and sends outq.c),
 * in use from its accepted upgrade. The fields the fan-out touches for
 * every frame come first, next to the connection's head. */
typedef struct hr_ws_conn {
	hr_outq out;       /* outbound frames (outq.c) */
	bool is_ws;        /* the upgrade was accepted */
	bool counted;      /* ESTABLISHED seen: in n_ws */
	bool flush_listed; /* on the thread's flush list (outq.c) */
	int close_code;    /* != 0: close with this code at the next writeable */
	uint32_t sending;  /* frames in the batched send under way (outq.c) */
	int sfd;           /* plain-text ws socket for batched sends; -1: lws writes */
	const char *close_reason;
	bool close_sent; /* our close frame is written: lingering (ws.c) */
	bool shut_wr;    /* ... and the socket shut for writing */
	bool failed;     /* dropped by herald without a close frame */
	bool listed;     /* on the thread's liveness lists (ws.c) */
	hr_link link[HR_N_LISTS];
	uint64_t last_rx_ms;   /* last inbound frame or pong (monotonic ms) */
	uint64_t last_ping_ms; /* last ping queued */
	bool recover;          /* ?recover: envelopes, 1013 instead of dropping */
	uint64_t rec_floor;    /* the last history offset it has (replayed or queued) */
	uint32_t rec_gen;      /* the history ring rec_floor belongs to (0: none yet) */
	bool epoch_closed;     /* its 1013 is for an epoch change (metrics) */

	bool registered; /* the router knows its channel */
	bool gauged;     /* upgrade accepted: in the connections gauge */
	int route;       /* HR_ROUTE_* */
	/* inbound */
	bool rx_binary, rx_in_msg;
	unsigned char *rx;
	size_t rxlen, rxcap;
	hr_bucket rate; /* inbound token bucket */
	char channel[128];
	char group[96];
} hr_ws_conn;

/* The HTTP part of a connection (http.c, and its framing side), allocated
 * at its first request by hr_http__attach. */
typedef struct hr_http_conn {
	const hr_http_framing *framing; /* set by http_lws.c or http1.c */
	int method;
	int api;            /* which API endpoint (http.c) */
	int pending_status; /* error decided at header time, answered at completion */
	const char *pending_error;
	long long req_clen; /* the current request's Content-Length, -1 none */
	char *body;
	size_t body_len;
	bool awaiting_reply; /* a router reply is on its way */
	bool close_after;
	char target[128]; /* decoded group / channel / id */
	/* http_lws.c: the answer kept for the next HTTP_WRITEABLE */
	bool resp_ready;
	int resp_status;
	char *resp; /* malloc'd JSON or text */
	size_t resp_len;
	const char *resp_type;
} hr_http_conn;

/*
 * One connection: a common head, then a part per role. A WebSocket uses ws;
 * an HTTP connection uses http (lws-framed, TLS) or http and h1 (raw
 * plain-text HTTP/1, http1.c); a TLS connection may answer HTTP requests and
 * then upgrade on the same wsi, so ws and http can both be in use. Whoever
 * closes it releases the parts it used, then hr_conn__destroy.
 * ONLY touched from its I/O thread.
 */
struct hr_conn {
	struct lws *wsi;
	hr_iothread *t;
	uint64_t id;              /* generation << 32 | slot (conn.c) */
	hr_ws_conn ws;            /* WebSocket (ws.c, outq.c) */
	hr_http_conn *http;       /* HTTP (http.c): NULL before its first request */
	struct hr_http1 *h1;      /* raw HTTP/1 framing (http1.c): NULL on lws's */
	struct hr_access *access; /* accesslog.c: NULL unless --access-log */
};

/* A request's head, from lws (TLS) or from http1.c's parser (plain). */
typedef struct hr_http_req {
	int method;       /* LWSHUMETH_*, -1 unknown */
	const char *uri;  /* path, no query: percent-encoded when raw_path */
	bool raw_path;    /* uri not yet percent-decoded (http1.c); lws decodes its own */
	const char *auth; /* Authorization, or NULL */
	size_t auth_len;
	const char *api_key; /* X-API-Key, or NULL */
	size_t api_key_len;
	const char *ctype; /* Content-Type, or NULL */
	size_t ctype_len;
	long long clen;  /* Content-Length, -1 absent */
	bool chunked;    /* any Transfer-Encoding */
	const char *xff; /* X-Forwarded-For (the last one), or NULL */
	size_t xff_len;
} hr_http_req;

/* An HTTP reply waiting on an I/O thread's late list (iothread.c). */
typedef struct hr_late_reply {
	struct hr_late_reply *next;
	uint64_t conn;
	int status;
} hr_late_reply;

typedef struct hr_slot {
	hr_conn *c;
	uint32_t gen;
	uint32_t next_free;
} hr_slot;

struct hr_iothread {
	hr_node *node;
	unsigned index;
	pthread_t thread;
	bool started;
	hr_mailbox *mbox; /* any thread posts; this thread receives */
	struct lws_context *ctx;
	struct lws_vhost *vh;
	/* TLS: the client SSL_CTX handed to ctx's vhost, never used (herald
	 * dials nothing through lws); ours to free once ctx is gone (iothread.c) */
	SSL_CTX *tls_client;
	int listen_fd[HR_MAX_LISTEN]; /* owned until adopted, then lws owns them */
	size_t n_listen;
	struct lws *acceptors[HR_MAX_LISTEN];
	hr_slot *slots; /* the connection table (conn.c) */
	uint32_t nslots, free_head;
	size_t n_ws; /* WebSockets past ESTABLISHED (ws.c) */
	bool stopping;
	atomic_bool exit;
	hr_event_loop evloop; /* cfg.event_loop */
	void *loop;           /* libev: struct ev_loop *; libuv: uv_loop_t *; poll: NULL */
	bool in_loop;         /* inside ev_run / uv_run (evloop.c) */
	lws_sorted_usec_list_t stop_sul;
	/* liveness (ws.c): the lists, the tick that walks them (evloop.c runs
	 * it every HR_TICK_MS), the ping frame every connection shares */
	hr_clist live[HR_N_LISTS];
	size_t n_live; /* connections on them */
	lws_sorted_usec_list_t tick_sul;
	void (*tick)(hr_iothread *t); /* run by evloop.c every HR_TICK_MS */
	hr_msg *ping_frame;
	uint64_t rng;
	unsigned char *scratch;         /* HR_SCRATCH bytes */
	struct hr_sendbatch *sendbatch; /* sys_send.c */
	/* connections whose queue went non-empty during a mailbox drain
	 * (iothread.c), written at the end of that drain (outq.c) */
	bool draining;
	uint64_t *flush; /* conn ids */
	uint32_t nflush, flushcap;
	/* router and bridge requests the router's (bridge's) mailbox had no
	 * room for, posted again in order at the end of every drain and every
	 * tick (iothread.c): this thread never waits for room */
	struct hr_retry *retry_head, *retry_tail;
	size_t n_retry;
	/* HTTP replies whose mail found this thread's mailbox full, posted
	 * from the router's thread: {late_mu} */
	pthread_mutex_t late_mu;
	bool late_mu_ok;
	struct hr_late_reply *late; /* {late_mu} */
};

/*
 * A node: one per process (node.c). Built, run and torn down by the main
 * thread. Everything but threads[] and the stop fields is written before the
 * first I/O thread starts and only read afterwards, by any thread: the I/O
 * threads read cfg, node_prefix, origins, started_at and use the actors'
 * handles (router, bridge, worker, consumers, layer), each of which is
 * thread-safe through its own mailbox or atomics. threads[i] belongs to I/O
 * thread i once started; the main thread touches it only through
 * hr_iothread__start/post_stop/join/fini. stop_requested is atomic and
 * stop_pipe[1] is written from any thread, a signal handler included
 * (hr_node_stop).
 */
struct hr_node {
	hr_config cfg;
	char node_prefix[33];
	char err[256];
	hr_layer *layer;
	hr_consumers *consumers;
	hr_router *router;
	hr_bridge *bridge; /* --layer redis: the node's door to Redis, else NULL */
	/* --history as the bridge takes it (globs borrowed from cfg) */
	hr_bridge_history_rule bridge_hist[HR_HISTORY_MAX_RULES];
	struct hr_worker *worker; /* the notification pipeline (NULL: not built in) */
	hr_iothread threads[HR_MAX_THREADS];
	unsigned n_threads;
	uint16_t ports[HR_MAX_LISTEN]; /* bound ports (port 0 resolved) */
	hr_origin_policy origins;      /* parsed --allowed-origins */
	int stop_pipe[2];              /* [0] main thread polls, [1] anyone writes */
	atomic_bool stop_requested;    /* any thread */
	double started_at;

	/* SIGHUP (hr_node_reload): any thread sets reload_requested; the main
	 * thread checks the TLS pair, then posts a mail to every thread still
	 * marked in reload_post. */
	atomic_bool reload_requested;
	bool reload_post[HR_MAX_THREADS];
};

/* iothread.c */
int hr_iothread__mailbox(hr_iothread *t);

int hr_iothread__start(hr_iothread *t);
void hr_iothread__post_stop(hr_iothread *t);
void hr_iothread__join(hr_iothread *t);
/* 0 joined, HR_ETIMEDOUT still running at deadline (CLOCK_REALTIME) */
int hr_iothread__join_until(hr_iothread *t, const struct timespec *deadline);
void hr_iothread__fini(hr_iothread *t);

/* conn.c: the connection table (I/O thread only; init/fini around the
 * thread). A connection's id stays unique: a closed one's id finds nothing. */
void hr_conn__table_init(hr_iothread *t);
void hr_conn__table_fini(hr_iothread *t); /* every connection destroyed already */
/* A zeroed connection for wsi, in a fresh slot, set as wsi's opaque user
 * data. HR_ENOMEM. Released with hr_conn__destroy. */
int hr_conn__new(hr_iothread *t, struct lws *wsi, hr_conn **out);
/* The connection with that id, or NULL when it has gone (borrowed). */
hr_conn *hr_conn__get(hr_iothread *t, uint64_t id);
/* Call fn on every connection (fn must not destroy any). */
void hr_conn__each(hr_iothread *t, void (*fn)(hr_conn *c, void *arg), void *arg);
/* Free c and its slot, and unset wsi's opaque user data; its role parts
 * must be released first. When the thread is stopping and no WebSocket is
 * left, stop its loop. */
void hr_conn__destroy(hr_conn *c);
void hr_outq__queue(hr_conn *c, hr_msg *frame); /* takes the ref */
/* The intrusive lists: append c at the tail of t->live[which], take it off
 * (it must be on it), move it to the tail. O(1). */
void hr_conn__list_append(hr_iothread *t, int which, hr_conn *c);
void hr_conn__list_remove(hr_iothread *t, int which, hr_conn *c);
/* Take c off both liveness lists (it is closing or gone). */
void hr_conn__unlist(hr_iothread *t, hr_conn *c);
void hr_conn__list_touch(hr_iothread *t, int which, hr_conn *c);

/* outq.c, the queue itself: pure (no lws, no sockets), tests/transport/test_outq.c.
 * Push frame (takes its reference) behind the others, dropping the oldest
 * while the queue is at HR_CONN_QMAX frames or frame would take it over
 * HR_CONN_QBYTES (a frame bigger than that alone ends up alone); *dropped:
 * how many. HR_ENOMEM: no room to grow, frame released and not queued. */
int hr_outq__push(hr_outq *q, hr_msg *frame, unsigned *dropped);
/* A resume's replay: push every frame (takes each reference), beyond the
 * queue's bounds if need be (they are history's frames, shared, not
 * copies). I/O thread. */
void hr_outq__queue_replay(hr_conn *c, hr_msg *const *frames, uint32_t n);
/* Close c with code (1001, 1008, 1009, 1011, 1013; reason static): what is
 * queued leaves first, then the close frame (ws.c writes it); then herald
 * reads and discards until the client's close or EOF, for at most
 * HR_LINGER_S (docs/PROTOCOL.md "Closing"). Idempotent: the first code wins.
 * I/O thread. */
void hr_outq__close(hr_conn *c, int code, const char *reason);
/* Close a recover connection with 1013 after what is queued (it would lose
 * a frame otherwise). I/O thread. */
void hr_outq__close_slow(hr_conn *c);
/* The i-th frame from the head (i < q->len), borrowed. */
hr_msg *hr_outq__peek(const hr_outq *q, uint32_t i);
/* Take the head frame (q->len > 0): its reference is the caller's. */
hr_msg *hr_outq__pop(hr_outq *q);
/* How many frames from the head, at most max_frames, fit in max_bytes
 * together (0 when the head alone does not). */
unsigned hr_outq__span(const hr_outq *q, unsigned max_frames, size_t max_bytes);
/* Point v[0..n) at the first n frames (n <= q->len); they stay queued. */
void hr_outq__iov(const hr_outq *q, struct iovec *v, unsigned n);
/* sent bytes of the first n frames left: release the frames sent whole and
 * return how many; *partial: the bytes sent of the next one (0 when none). */
unsigned hr_outq__release_sent(hr_outq *q, unsigned n, size_t sent, size_t *partial);
/* Release every frame and the ring; the queue is empty and reusable. */
void hr_outq__fini(hr_outq *q);

/* outq.c, the connection's writes (I/O thread only) */
void hr_outq__want_write(hr_conn *c); /* ask lws for SERVER_WRITEABLE */
void hr_outq__clear(hr_conn *c);      /* release every queued frame */
/* One lws_write of what is queued (c->qlen > 0). -1: the socket failed. */
int hr_outq__write(hr_iothread *t, hr_conn *c);
/* The end of a mailbox drain: write every connection queued during it. */
void hr_outq__flush_drained(hr_iothread *t);

/* post.c: the I/O thread's requests to the router and the bridge, posted at
 * once when there is room (timeout 0), else kept and posted again, in order,
 * by hr_post__retry (the end of every mailbox drain, every tick), so the
 * thread never waits on another thread and no request is lost. name is
 * copied; msg borrowed (a reference is taken when kept). 0 (posted or kept),
 * or what the post answered other than HR_EAGAIN (HR_ENOMEM, HR_ECLOSED,
 * ...): then reply never fires. I/O thread only. */
enum { HR_REQ_CONN_CLOSE = 0, HR_REQ_GROUP_SEND, HR_REQ_SEND, HR_REQ_BRIDGE_SEND };
int hr_post__request(hr_iothread *t, int kind, const char *name, hr_member m, hr_msg *msg,
    hr_reply_fn reply, void *reply_arg);
/* Post what hr_post__request kept, in order, while there is room. */
void hr_post__retry(hr_iothread *t);
/* The thread has ended its loop: post what is still kept, waiting up to 1 s
 * each for room (nothing waits on this thread any more); a request that
 * still finds none is dropped, its reply told HR_ECANCELED. */
void hr_post__retry_at_exit(hr_iothread *t);
/* From any thread (the router's reply callbacks): hand an HTTP reply to t's
 * thread without waiting. Never lost: when t's mailbox is full the reply
 * waits on t's late list, which the next drain (the full mailbox makes one
 * certain) answers. */
void hr_post__reply(hr_iothread *t, uint64_t conn_id, int status);

/* ws.c: the WebSocket side (I/O thread only). The callback of the lws
 * protocol every lws-framed connection starts on (protocols[0]): WebSocket
 * events here, plain HTTP events handed to the HTTP side. */
int hr_ws__callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* Stopping: ask every open WebSocket to close with 1001 once its queue has
 * left. */
void hr_ws__close_all(hr_iothread *t);
/* The liveness tick (every HR_TICK_MS, evloop.c): close with 1011 the
 * connections silent for ping-interval + ping-timeout, ping those whose last
 * ping is ping-interval old. O(connections due), nothing for the others. */
void hr_ws__tick(hr_iothread *t);

/* log.c: route libwebsockets' log lines through hr_log (main thread, at start) */
void hr_log__lws_init(hr_log_level lvl);

/* evloop.c: the loop an I/O thread sleeps in (--event-loop), I/O thread
 * only except create (before the thread starts) and destroy (after it ended,
 * or when it never started). */
/* Make t->loop (libev, libuv) and point info at it (options, foreign_loops,
 * which must stay valid until lws_create_context returns: *slot holds it). */
int hr_evloop__create(hr_iothread *t, struct lws_context_creation_info *info, void **slot);
/* Serve until t->exit. */
void hr_evloop__run(hr_iothread *t);
/* Set t->exit and make hr_evloop__run return soon: from the I/O thread (a
 * callback), or, for another thread, set t->exit and lws_cancel_service. */
void hr_evloop__stop(hr_iothread *t);
/* Destroy t->ctx (NULL afterwards) and then t->loop. */
void hr_evloop__destroy(hr_iothread *t);

/* http.c: the HTTP API, whichever framing brought the request (I/O thread
 * only). Answers leave through c->framing. */
/* A router reply for connection conn_id (HR_MAIL_IO_HTTP_REPLY): answer its
 * pending send; nothing when the connection has gone meanwhile. */
void hr_http__on_reply(hr_iothread *t, uint64_t conn_id, int status);
/* Give c its HTTP part (once) answered through framing (static, borrowed).
 * HR_ENOMEM. */
int hr_http__attach(hr_conn *c, const hr_http_framing *framing);
/* Free the current request's body and kept response (c->http set). */
void hr_http__conn_fini(hr_conn *c);
/* Release c's HTTP part, if any (at close). */
void hr_http__detach(hr_conn *c);
/* A request head is in: route it; answer now or wait for the body. -1: close. */
int hr_http__request(hr_iothread *t, hr_conn *c, const hr_http_req *req);
/* The body (c->body) is complete: answer, or send and await the router. */
int hr_http__body_complete(hr_iothread *t, hr_conn *c);
/* Answer {"error": reason} with status. -1: close. */
int hr_http__respond_error(hr_conn *c, int status, const char *reason);

/* http_lws.c: the HTTP events of lws-framed connections (TLS), from
 * hr_ws__callback. */
int hr_http_lws__callback(
    hr_iothread *t, struct lws *wsi, enum lws_callback_reasons reason, void *in, size_t len);

/* http1.c: the plain-text HTTP API on raw sockets (lws 4.1.6's h1 server
 * loops forever on a pipelined request with a body, see http1.c) */
int hr_http1__callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* A parsed request head (plain HTTP/1.x, http1.c). */
typedef struct hr_http1_head {
	hr_http_req req;
	char path[1024]; /* percent-encoded path, no query */
	bool bad;        /* malformed: 400 and close */
	bool keep_alive;
	bool upgrade_ws;
	bool dup_clen;
} hr_http1_head;
/* Length of the request head at p (through its blank line), 0 while it is
 * incomplete (looks at most HEAD_MAX bytes). Pure. */
size_t hr_http1__head_len(const char *p, size_t n);
/* Parse the head p[0..n) (n from hr_http1__head_len); h borrows p for its
 * header values. Pure: no lws, no I/O (tests/fuzz/fuzz_http1.c). */
void hr_http1__parse_head(char *p, size_t n, hr_http1_head *h);
void hr_http1__conn_fini(hr_conn *c);

/* The pure parts of the HTTP API, callable without lws (tests/fuzz/fuzz_http.c).
 * hr_http__route: route a request path (no query). When raw, the path is split
 * into segments first and each segment is percent-decoded (a bad escape or
 * %00 sets *bad); otherwise it was decoded already (lws, TLS listeners):
 * returns the endpoint (0: none, i.e. 404), sets *want to the LWSHUMETH_*
 * it takes (-1: none), copies its group / channel / id into target (tcap
 * bytes, NUL-terminated) and sets *bad to a reason when that name is too long
 * (400), else NULL. hr_http__parse_send: validate a send's target name and
 * JSON body; 0 with *out the msgpack message (one reference, the caller's),
 * or the HTTP status (400, 503) with a reason in err. */
int hr_http__route(
    const char *uri, bool raw, int *want, char *target, size_t tcap, const char **bad);
int hr_http__parse_send(bool group, const char *target, const char *body, size_t len, hr_msg **out,
    char *err, size_t errlen);

/* web.c: the embedded demo page ("": GET /) and client ("herald.js"): 0 with
 * the bytes (static, never freed), their length and Content-Type, HR_ENOENT
 * for any other name. Any out-parameter may be NULL. Pure; any thread. */
int hr_web__asset(const char *name, const unsigned char **body, size_t *len, const char **type);

/* metrics.c */
int hr_metrics__render(hr_node *n, hr_buf *out);
size_t hr_metrics__ws_total(void);

/* sys_proc.c: the process as the kernel sees it, for the process_* metrics
 * (Prometheus's standard process collector). Any thread; reads /proc. */
typedef struct hr_proc_stats {
	double cpu_seconds;     /* user + system */
	double start_time;      /* seconds since the epoch */
	uint64_t resident;      /* bytes */
	uint64_t virtual_bytes; /* bytes */
	long open_fds;          /* -1: unknown */
	long max_fds;           /* RLIMIT_NOFILE soft limit, -1: unlimited or unknown */
} hr_proc_stats;
/* Fill st; a field that cannot be read is 0 (open_fds, max_fds: -1). */
void hr_sys__proc_stats(hr_proc_stats *st);
/* The peer of socket fd: its address (16 bytes, IPv4 mapped) and port.
 * 0, or HR_EIO (not a connected IP socket). */
int hr_sys__peer_addr(int fd, uint8_t addr[16], uint16_t *port);

/* log.c, for the access log: one line, whatever --log-level says, msg as
 * the text, and in json mode the object's further members, fields
 * (`,"key":value...`, already JSON) after "msg". */
void hr_log__emit(hr_log_level lvl, const char *msg, const char *fields);
/* s[0..n) as a JSON string, quotes included, into out (cap >= 3;
 * NUL-terminated, cut to fit; bytes that are not UTF-8 become U+FFFD).
 * Returns its length. Pure. */
size_t hr_log__json_str(char *out, size_t cap, const char *s, size_t n);

/* proxy.c (pure): addresses as 16 bytes, IPv4 mapped (::ffff:a.b.c.d). */
int hr_proxy__addr_parse(const char *s, size_t n, uint8_t out[16]);
void hr_proxy__addr_format(const uint8_t a[16], char *out, size_t cap);
bool hr_proxy__trusted(const hr_proxy_list *l, const uint8_t a[16]);
/* The address a request from peer with that X-Forwarded-For (borrowed,
 * may be NULL) is taken as, into out: peer itself unless peer is trusted;
 * then the rightmost untrusted address of xff (its leftmost when every hop
 * is trusted; the walk stops at an item that is not an address). true when
 * out came from xff. */
bool hr_proxy__resolve(
    const hr_proxy_list *l, const uint8_t peer[16], const char *xff, size_t len, uint8_t out[16]);

/* accesslog.c: the peer as logged, herald_http_requests_total{code} and the
 * access log (--access-log). I/O thread only. */
#define HR_PEER_MAX 64
/* The peer of wsi as logs show it: "ip:port" ("[v6]:port") from the
 * socket, or the address --trusted-proxies took from xff (borrowed, may be
 * NULL), without a port. "?" when unknown. */
void hr_access__peer(struct lws *wsi, const char *xff, size_t xff_len, char *out, size_t cap);
/* The same for a WebSocket handshake or lws-framed request, reading
 * X-Forwarded-For from wsi's headers. */
void hr_access__peer_hdr(struct lws *wsi, char *out, size_t cap);
/* A request head is in (http.c, before routing). */
void hr_access__http_begin(hr_conn *c, const hr_http_req *req);
/* Its answer is on its way: count the status, and log the line. */
void hr_access__http_end(hr_conn *c, int status, size_t bytes);
/* A WebSocket handshake refused with code and a body of bytes (ws.c's
 * refuse): count, log. */
void hr_access__refused(struct lws *wsi, unsigned code, size_t bytes);
/* ws.c's lws callback, at its top, for the events of a WebSocket session
 * (ESTABLISHED: count the 101, start the session; RECEIVE: frames in; the
 * client's close code; WSI_DESTROY: the session's line). Cheap for others. */
void hr_access__ws_event(hr_conn *c, enum lws_callback_reasons reason, const void *in, size_t len);
/* What a connection's access line needs (c->access, allocated at its first
 * request or its WebSocket session when --access-log is on). */
typedef struct hr_access {
	double t0; /* hr_clock_mono(): the request head or the session start */
	uint64_t frames_in, frames_out;
	int peer_close; /* the client's close code, 0: none came */
	bool ws;        /* a WebSocket session is open: its line is due */
	bool begun;     /* HTTP: t0, method and path are the current request's */
	char method[8];
	char peer[HR_PEER_MAX];
	char path[256];
} hr_access;
/* Frames written to c (outq.c). */
static inline void
hr_access__frames_out(hr_conn *c, unsigned n)
{
	if (c->access != NULL)
		c->access->frames_out += n;
}

/* sys_net.c: the OS calls, kept in one file */
#include <sys/types.h>
/* A listening SO_REUSEPORT socket on host:port (0: any port), its port in
 * *bound. -errno with a one-line reason in err (EADDRINUSE: "HOST:PORT:
 * address in use"). */
int hr_sys__listen(
    const char *host, uint16_t port, int *fd_out, uint16_t *bound, char *err, size_t errlen);
/* A socket bound to host:port without SO_REUSEPORT and not listening: it
 * fails with -EADDRINUSE (and that line in err) where any socket listens,
 * a reuse-port group included. Close it before the group binds. */
int hr_sys__listen_probe(
    const char *host, uint16_t port, int *fd_out, uint16_t *bound, char *err, size_t errlen);
int hr_sys__accept(int lfd); /* fd, or -errno (-EAGAIN when none left) */
int hr_sys__pipe(int fds[2]);
void hr_sys__random(void *buf, size_t len);
void hr_sys__close(int fd);
ssize_t hr_sys__write(int fd, const void *p, size_t n);
ssize_t hr_sys__read(int fd, void *p, size_t n);
int hr_sys__wait_readable(int fd, int timeout_ms); /* 1 readable, 0 timeout, -errno */

/* sys_send.c: batched non-blocking sends (io_uring, else one sendmsg each).
 * An hr_sendbatch belongs to one I/O thread. */
#define HR_SENDBATCH_MAX 512u  /* entries per flush (io_uring SQ size) */
#define HR_SENDBATCH_IOV 8192u /* iovecs per flush */
/* res: bytes sent (maybe fewer than asked), or -errno: -EAGAIN nothing sent,
 * HR_EIO unknown (close the socket). Must not add to or flush the batch. */
typedef void (*hr_sendbatch_done)(void *cookie, ssize_t res, void *arg);
/* try_uring false: sendmsg() only. HR_ENOMEM. */
int hr_sys__sendbatch_create(hr_sendbatch **out, bool try_uring);
/* shutdown(fd, SHUT_WR): 0 or -errno. */
int hr_sys__shutdown_wr(int fd);
void hr_sys__sendbatch_destroy(hr_sendbatch *b); /* NULL ok; nothing may be pending */
bool hr_sys__sendbatch_uring(const hr_sendbatch *b);
/* Room for one send of niov buffers to fd: the iovecs to fill, valid until
 * the flush; NULL when the batch is full (flush, then add again). The
 * buffers must stay valid until the flush returns. */
struct iovec *hr_sys__sendbatch_add(hr_sendbatch *b, int fd, unsigned niov, void *cookie);
/* Send everything added; done runs once per entry, in any order, before
 * this returns. The batch is empty afterwards. */
void hr_sys__sendbatch_flush(hr_sendbatch *b, hr_sendbatch_done done, void *arg);

/* Append a JSON string literal (quotes included) escaping per RFC 8259. */
int hr_json__append_str(hr_buf *b, const char *s, size_t n);

#endif /* HERALD_TRANSPORT_IMPL_H */
