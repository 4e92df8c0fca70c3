/*
 * transport.h: the running node, the public face of the `transport` module.
 *
 * A node is N I/O threads (one libwebsockets context each, each with its own
 * SO_REUSEPORT listener per --listen address), the router, the consumer
 * actors, the worker and (with --redis) the Redis bridge. The CLI fills an
 * hr_config, creates the node and runs it until a signal asks it to stop.
 *
 * Threads: hr_node_create/run/destroy from the main thread; hr_node_stop from
 * anywhere, including a signal handler.
 */
#ifndef HERALD_TRANSPORT_H
#define HERALD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/history.h"
#include "layer/layer.h"

#define HR_MAX_LISTEN 8
#define HR_MAX_REDIS 16
#define HR_MAX_CAPACITY_RULES 32

typedef enum hr_log_level {
	HR_LOG_ERROR = 0,
	HR_LOG_WARN = 1,
	HR_LOG_INFO = 2,
	HR_LOG_DEBUG = 3,
} hr_log_level;

/* One --listen address: host is "127.0.0.1", "::1", "0.0.0.0", "::" ... after
 * `localhost` has been expanded into its two addresses by the CLI. */
/* What the I/O threads sleep in (--event-loop): lws 4.1.6's own poll() loop,
 * or a libev / libuv loop (epoll) through the Debian evlib plugins. */
typedef enum hr_event_loop {
	HR_EVLOOP_POLL = 0,
	HR_EVLOOP_LIBEV = 1,
	HR_EVLOOP_LIBUV = 2,
} hr_event_loop;
#define HR_N_EVLOOP 3
#define HR_EVLOOP_DEFAULT HR_EVLOOP_LIBEV

/* "poll", "libev", "libuv"; NULL for a value out of range. Pure. */
const char *hr_event_loop_name(hr_event_loop e);
/* The backend named s (exactly one of the names above): 0, else HR_EINVAL. */
int hr_event_loop_parse(const char *s, hr_event_loop *out);

/* --log-format: what a line on stderr looks like (log.c). */
typedef enum hr_log_format {
	HR_LOG_TEXT = 0, /* "<ts> <level> <msg>" */
	HR_LOG_JSON = 1, /* {"ts":...,"level":...,"msg":...} */
} hr_log_format;

/* --trusted-proxies: addresses or CIDRs (proxy.c). An IPv4 network is kept
 * as its IPv4-mapped IPv6 form (::ffff:a.b.c.d, bits + 96), so that one
 * compare serves both families. */
#define HR_MAX_PROXIES 32
typedef struct hr_cidr {
	uint8_t addr[16]; /* host bits zero */
	uint8_t bits;     /* 0..128 */
} hr_cidr;
typedef struct hr_proxy_list {
	hr_cidr nets[HR_MAX_PROXIES];
	size_t n; /* 0: trust nobody, X-Forwarded-For is never read */
} hr_proxy_list;

/* Parse a comma list of addresses and CIDRs ("10.0.0.0/8, ::1") into out.
 * 0, or HR_EINVAL with a one-line reason (naming the bad item) in err.
 * Pure; any thread. */
int hr_proxy_list_parse(const char *s, hr_proxy_list *out, char *err, size_t errlen);
/* The list as a comma list that hr_proxy_list_parse reads back ("" when
 * empty; an address alone when its prefix is whole). 0, HR_EMSGSIZE. */
int hr_proxy_list_format(const hr_proxy_list *l, char *out, size_t cap);

typedef struct hr_listen_addr {
	char host[64];
	uint16_t port;
	char shown[80]; /* as given on the command line, for the ready line */
} hr_listen_addr;

/* Every option of docs/PROTOCOL.md, parsed. Strings are owned by the config (fixed
 * buffers or pointers the CLI keeps alive for the node's lifetime). */
typedef struct hr_config {
	hr_listen_addr listen[HR_MAX_LISTEN];
	size_t n_listen;
	unsigned threads; /* >= 1 */
	bool layer_redis; /* --layer redis (or --redis given) */
	const char *redis[HR_MAX_REDIS];
	size_t n_redis;
	const char *prefix; /* "asgi" */
	size_t capacity;    /* 100 */
	hr_capacity_rule channel_capacity[HR_MAX_CAPACITY_RULES];
	size_t n_channel_capacity;
	double expiry;               /* 60 */
	double group_expiry;         /* 86400 */
	const char *jwt_secret;      /* NULL: no WebSocket auth */
	const char *api_key;         /* NULL: no API auth */
	const char *allowed_origins; /* NULL: no origin check; else comma list */
	size_t max_message;          /* 65536 */
	double rate_limit;           /* 20 messages/s per connection, burst 2x */
	size_t max_connections;      /* 0 = unlimited */
	unsigned ping_interval;      /* 20 s between server pings; 0 = no pings */
	unsigned ping_timeout;       /* 30: silent for interval + this many s: close 1011 */
	const char *tls_cert;
	const char *tls_key;
	hr_log_level log_level;   /* info */
	hr_event_loop event_loop; /* HR_EVLOOP_DEFAULT */
	bool io_uring; /* true: batched fan-out sends through io_uring when the kernel allows */
	bool demo;     /* true: serve the demo page at / and the client at /herald.js */
	hr_log_format log_format;      /* text */
	bool access_log;               /* false: no access lines */
	hr_proxy_list trusted_proxies; /* empty: X-Forwarded-For ignored */
	/* --history: first match wins; none (or history_off) turns it off */
	hr_history_rule history[HR_HISTORY_MAX_RULES];
	size_t n_history;
	bool history_off;
} hr_config;

/* Fill c with docs/PROTOCOL.md's defaults (listen localhost:8000 expanded to
 * 127.0.0.1 and ::1, threads = number of cores). */
void hr_config_default(hr_config *c);

typedef struct hr_node hr_node;

/* Build everything and bind every listener. On failure returns a negative
 * HR_E* and writes a one-line reason into err. */
int hr_node_create(hr_node **out, const hr_config *cfg, char *err, size_t errlen);
/* Print the ready line(s) to stdout and serve until hr_node_stop. Returns 0
 * after a clean shutdown (WebSockets closed with 1001, threads joined). */
int hr_node_run(hr_node *n);
/* Ask the node to stop; async-signal-safe, idempotent. */
void hr_node_stop(hr_node *n);
/* Ask the node to reload what it can without stopping (SIGHUP): with TLS,
 * --tls-cert and --tls-key for new connections; a pair that does not load
 * is logged and the old one kept. Async-signal-safe; NULL ok. */
void hr_node_reload(hr_node *n);
void hr_node_destroy(hr_node *n);

/* ---------------------------------------------------------------- tokens */

/* base64url without padding (RFC 4648 section 5) of len bytes of in (borrowed)
 * into out, which must hold (len + 2) / 3 * 4 bytes; no NUL is written.
 * Returns the number of characters written. Pure; any thread. */
size_t hr_b64url_encode(const void *in, size_t len, char *out);

/*
 * Make an HS256 JWT: base64url(header) "." base64url(payload_json) "."
 * base64url(HMAC-SHA256). The header is {"alg":"HS256","typ":"JWT"};
 * payload_json is used as given (borrowed, len bytes; not validated).
 * Written NUL-terminated into out. HR_EMSGSIZE when outcap is too small,
 * HR_EIO when HMAC fails. For tests and `herald token`-like tools.
 */
int hr_jwt_sign(const char *payload_json, size_t len, const void *secret, size_t secret_len,
    char *out, size_t outcap, size_t *outlen);

/* ---------------------------------------------------------------- TLS */

/* Does the --tls-cert / --tls-key pair load as libwebsockets will load it?
 * cert: a PEM certificate and any chain after it; key: an unencrypted PEM
 * private key that belongs to it. 0, or HR_EINVAL with one line naming the
 * option (cert_label / key_label, e.g. "--tls-cert" or HERALD_TLS_CERT) and
 * the file in err. Reads both files: main thread, never a loop thread. All
 * strings borrowed. */
int hr_tls_check_pair(const char *cert_label, const char *cert, const char *key_label,
    const char *key, char *err, size_t errlen);

/* Logging to stderr, one line per event; level set once at start. */
void hr_log_set_level(hr_log_level lvl);
/* --log-format, set once at start as the level is. */
void hr_log_set_format(hr_log_format fmt);
void hr_log(hr_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* HERALD_TRANSPORT_H */
