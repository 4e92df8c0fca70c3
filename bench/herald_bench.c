/*
 * herald-bench: WebSocket fan-out load generator.
 *
 * Opens N WebSocket connections (spread over source addresses 127.0.0.1..K),
 * publishes broadcasts over HTTP at a fixed rate or as fast as a bounded
 * number of in-flight requests allows, and measures deliveries per second and
 * end-to-end latency (each payload carries its CLOCK_MONOTONIC send time in
 * field "t").  Threads: main (orchestration + progress), one publisher, and
 * --client-threads receivers, each owning its connections and its epoll set.
 * Nothing is allocated per frame: connections, histograms and buffers are
 * sized once at start.  Loopback targets only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "layer/layer.h"

#define HEAD_MAX 128        /* payload bytes kept per message for the "t" scan */
#define RX_BUF (256 * 1024) /* per receiver thread */
#define MAX_PUB_CONNS 64
#define MAX_PIPELINE 256
#define BODY_MAX 65536

/* ---- options ---- */
static struct {
	char host[64];
	int port;
	char path[512];
	char pub_host[64];
	int pub_port;
	char pub_path[512];
	bool publish;
	int n;
	int sources;
	double connect_rate;
	double connect_timeout;
	double rate;
	int pub_conns;
	int pipeline;
	int size;
	double duration;
	double drain;
	double settle;
	int threads;
	int server_pid;
	char body_mode[16]; /* "herald" wraps the message, "raw" sends it as is */
	char header[256];   /* optional extra request header line */
	bool quiet;
	/* --publish-redis: group_sends written into Redis by herald's own
	 * channels_redis-compatible layer instead of HTTP requests */
	const char *redis_url;
	const char *group;
	const char *prefix;
	long redis_capacity;
	long prefill; /* > 0: SIGSTOP the server, write this many, SIGCONT */
	long window;  /* > 0: --publish-redis waits while this many broadcasts are undelivered */
} opt;

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t g_interrupted;
static atomic_bool g_stop_rx;
static atomic_bool g_stop_pub;

static void
on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

/* ---- receivers ---- */
enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };

struct conn {
	int fd;
	uint8_t state;
	uint8_t hdr_have;
	uint8_t hdr_need;
	uint8_t opcode; /* opcode of the frame being read */
	uint8_t msg_op; /* opcode of the message being assembled (text/binary) */
	uint8_t fin;
	uint8_t crlf; /* handshake: how much of "\r\n\r\n" matched */
	uint8_t head_len;
	uint16_t status; /* handshake: HTTP status */
	uint16_t resp_n; /* handshake: bytes of response seen */
	uint8_t acc;     /* handshake: how much of the expected accept value matched */
	uint64_t left;   /* payload bytes left in the current frame */
	uint8_t hdr[14];
	uint8_t head[HEAD_MAX];
	uint8_t ctrl_len;
	uint8_t ctrl[125]; /* a control frame's payload (a ping may split a message) */
};

struct rx {
	pthread_t th;
	int idx;
	int epfd;
	struct conn *conns;
	int n;
	int started;
	uint8_t *buf;
	struct hr_hist hist;
	_Atomic uint64_t frames;
	_Atomic uint64_t connected;
	_Atomic uint64_t failed;
	_Atomic uint64_t closed; /* opened, then closed by the server */
	_Atomic uint64_t no_t;   /* frames without a parsable "t" */
	uint64_t last_frame_ns;
	uint64_t connect_done_ns;
	char first_error[160];
};

static struct rx *g_rx;
static struct sockaddr_in g_target;
static char g_handshake[1024];
static size_t g_handshake_len;
static uint64_t g_t0;

static void
conn_fail(struct rx *r, struct conn *c, const char *why, int err)
{
	if (r->first_error[0] == '\0')
		snprintf(r->first_error, sizeof r->first_error, "%s%s%s", why, err ? ": " : "",
		    err ? strerror(err) : "");
	if (c->fd >= 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	if (c->state == C_OPEN)
		atomic_fetch_add_explicit(&r->closed, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&r->failed, 1, memory_order_relaxed);
	c->state = C_DEAD;
}

static void
conn_start(struct rx *r, int global_idx, struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->fd = fd;
	c->state = C_CONNECTING;
	if (fd < 0) {
		conn_fail(r, c, "socket", errno);
		return;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef IP_BIND_ADDRESS_NO_PORT
	/* Let connect() pick the port per 4-tuple, not per source address. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
	struct sockaddr_in src = { .sin_family = AF_INET };
	src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(global_idx % opt.sources));
	if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
		conn_fail(r, c, "bind source address", errno);
		return;
	}
	if (connect(fd, (struct sockaddr *)&g_target, sizeof g_target) != 0
	    && errno != EINPROGRESS) {
		conn_fail(r, c, "connect", errno);
		return;
	}
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		conn_fail(r, c, "epoll_ctl", errno);
		return;
	}
}

/* Scan a message's first bytes for "t":<digits> (a space after the colon is
 * allowed: json.dumps writes one).  Returns 0 when absent. */
static uint64_t
scan_t(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 4 < n; i++) {
		if (p[i] != '"' || p[i + 1] != 't' || p[i + 2] != '"')
			continue;
		size_t j = i + 3;
		while (j < n && p[j] == ' ')
			j++;
		if (j >= n || p[j] != ':')
			continue;
		j++;
		while (j < n && p[j] == ' ')
			j++;
		uint64_t v = 0;
		size_t digits = 0;
		while (j < n && p[j] >= '0' && p[j] <= '9' && digits < 20) {
			v = v * 10 + (uint64_t)(p[j] - '0');
			j++;
			digits++;
		}
		if (digits > 0 && j < n)
			return v;
	}
	return 0;
}

static void
send_pong(struct conn *c)
{
	uint8_t f[6 + 125];
	size_t len = c->ctrl_len;
	f[0] = 0x8a;
	f[1] = (uint8_t)(0x80 | len);
	memset(f + 2, 0, 4); /* zero mask key: masked, payload unchanged */
	memcpy(f + 6, c->ctrl, len);
	ssize_t w = write(c->fd, f, 6 + len);
	(void)w; /* a control frame this small fits in an idle socket buffer */
}

static void
message_done(struct rx *r, struct conn *c, uint64_t t_now)
{
	atomic_fetch_add_explicit(&r->frames, 1, memory_order_relaxed);
	r->last_frame_ns = t_now;
	uint64_t t = scan_t(c->head, c->head_len);
	if (t == 0 || t > t_now) {
		atomic_fetch_add_explicit(&r->no_t, 1, memory_order_relaxed);
		return;
	}
	hr_hist_record(&r->hist, t_now - t);
}

/* Feed bytes of the WebSocket stream to the frame parser. */
static int
conn_frames(struct rx *r, struct conn *c, const uint8_t *p, size_t n, uint64_t t_now)
{
	while (n > 0) {
		if (c->hdr_have < c->hdr_need) {
			c->hdr[c->hdr_have++] = *p++;
			n--;
			if (c->hdr_have == 2) {
				if (c->hdr[1] & 0x80)
					return -1; /* server frames are never masked */
				uint8_t l7 = c->hdr[1] & 0x7f;
				c->hdr_need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
			}
			if (c->hdr_have < c->hdr_need || c->hdr_have < 2)
				continue;
			uint8_t l7 = c->hdr[1] & 0x7f;
			uint64_t len = l7;
			if (l7 == 126)
				len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
			else if (l7 == 127) {
				len = 0;
				for (int i = 2; i < 10; i++)
					len = (len << 8) | c->hdr[i];
			}
			c->fin = c->hdr[0] & 0x80;
			c->opcode = c->hdr[0] & 0x0f;
			c->left = len;
			if (c->opcode >= 8) {
				if (len > 125 || !(c->hdr[0] & 0x80))
					return -1; /* RFC 6455 5.5 */
				c->ctrl_len = 0;
			} else if (c->opcode != 0) {
				c->msg_op = c->opcode;
				c->head_len = 0;
			}
			if (len == 0)
				goto frame_end;
			continue;
		}
		size_t take = c->left < n ? (size_t)c->left : n;
		if (c->opcode >= 8) {
			memcpy(c->ctrl + c->ctrl_len, p, take); /* left <= 125 */
			c->ctrl_len = (uint8_t)(c->ctrl_len + take);
		} else if (c->head_len < HEAD_MAX) {
			size_t k = HEAD_MAX - c->head_len;
			if (k > take)
				k = take;
			memcpy(c->head + c->head_len, p, k);
			c->head_len = (uint8_t)(c->head_len + k);
		}
		p += take;
		n -= take;
		c->left -= take;
		if (c->left > 0)
			continue;
	frame_end:
		if (c->opcode == 9)
			send_pong(c);
		else if (c->opcode == 8)
			return -1;
		else if (c->opcode < 8 && c->fin)
			message_done(r, c, t_now);
		c->hdr_have = 0;
		c->hdr_need = 2;
	}
	return 0;
}

/* Parse the handshake response; returns bytes consumed, or -1 on failure.
 * Only the status and the end of the head matter: no per-connection buffer. */
static ssize_t
conn_handshake(struct rx *r, struct conn *c, const uint8_t *p, size_t n)
{
	static const char end[] = "\r\n\r\n";
	/* Every connection sends the same key, so the Sec-WebSocket-Accept value
	 * to expect is a constant (RFC 6455's own example); 's' occurs only at
	 * its start, so restarting the match on a mismatch is exact. */
	static const char accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];
		if (c->acc < sizeof accept - 1)
			c->acc = ch == (uint8_t)accept[c->acc] ? c->acc + 1 : ch == 's' ? 1 : 0;
		if (c->resp_n >= 9 && c->resp_n < 12 && ch >= '0' && ch <= '9')
			c->status = (uint16_t)(c->status * 10 + (ch - '0'));
		if (c->resp_n < 65535)
			c->resp_n++;
		if (ch == (uint8_t)end[c->crlf]) {
			if (++c->crlf == 4) {
				if (c->status != 101) {
					char why[64];
					snprintf(
					    why, sizeof why, "handshake answered %u", c->status);
					conn_fail(r, c, why, 0);
					return -1;
				}
				if (c->acc != sizeof accept - 1) {
					conn_fail(r, c, "wrong or missing Sec-WebSocket-Accept", 0);
					return -1;
				}
				c->state = C_OPEN;
				c->hdr_have = 0;
				c->hdr_need = 2;
				atomic_fetch_add_explicit(&r->connected, 1, memory_order_relaxed);
				return (ssize_t)(i + 1);
			}
		} else {
			c->crlf = ch == '\r' ? 1 : 0;
		}
		if (c->resp_n > 16384) {
			conn_fail(r, c, "handshake response too long", 0);
			return -1;
		}
	}
	return (ssize_t)n;
}

static void
conn_event(struct rx *r, struct conn *c, uint32_t events)
{
	if (c->state == C_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			conn_fail(r, c, "connect", err);
			return;
		}
		ssize_t w = write(c->fd, g_handshake, g_handshake_len);
		if (w != (ssize_t)g_handshake_len) {
			conn_fail(r, c, "write handshake", w < 0 ? errno : EIO);
			return;
		}
		c->state = C_HANDSHAKE;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	/* Bounded: at most 16 reads per event, then back to the loop. */
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t got = read(c->fd, r->buf, RX_BUF);
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_fail(r, c, "read", errno);
			return;
		}
		if (got == 0) {
			conn_fail(r, c,
			    c->state == C_OPEN ? "closed by server" : "closed during handshake", 0);
			return;
		}
		uint64_t t_now = now_ns();
		const uint8_t *p = r->buf;
		size_t n = (size_t)got;
		if (c->state == C_HANDSHAKE) {
			ssize_t used = conn_handshake(r, c, p, n);
			if (used < 0)
				return;
			p += used;
			n -= (size_t)used;
		}
		if (c->state == C_OPEN && n > 0 && conn_frames(r, c, p, n, t_now) != 0) {
			conn_fail(r, c, "bad frame or close from server", 0);
			return;
		}
		if ((size_t)got < RX_BUF)
			return;
	}
}

static void *
rx_main(void *arg)
{
	struct rx *r = arg;
	struct epoll_event evs[512];
	double rate = opt.connect_rate / opt.threads;
	uint64_t start = now_ns();
	while (!atomic_load_explicit(&g_stop_rx, memory_order_relaxed)) {
		uint64_t t = now_ns();
		if (r->started < r->n) {
			double elapsed = (double)(t - start) / 1e9;
			int allowed = rate > 0 ? (int)(elapsed * rate) + 1 : r->n;
			if (allowed > r->n)
				allowed = r->n;
			/* at most 1000 per turn so the loop keeps reading */
			for (int k = 0; r->started < allowed && k < 1000; k++) {
				int gi = r->idx + r->started * opt.threads;
				conn_start(r, gi, &r->conns[r->started]);
				r->started++;
			}
		}
		if (r->connect_done_ns == 0 && r->started == r->n
		    && atomic_load(&r->connected) + atomic_load(&r->failed)
		            + atomic_load(&r->closed)
		        >= (uint64_t)r->n)
			r->connect_done_ns = now_ns();
		int k = epoll_wait(r->epfd, evs, 512, r->started < r->n ? 1 : 50);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->state != C_DEAD)
				conn_event(r, c, evs[i].events);
		}
	}
	return NULL;
}

/* ---- publisher ---- */
struct pconn {
	int fd;
	int inflight;
	uint64_t sent_at[MAX_PIPELINE]; /* ring of send times, for the answer's latency */
	int ring_head;
	char in[8192];
	size_t in_len;
};

static struct {
	_Atomic uint64_t sent;
	_Atomic uint64_t ok;
	_Atomic uint64_t errors;
	_Atomic uint64_t reconnects;
	_Atomic uint64_t late;       /* fixed rate: sends that could not go out on time */
	_Atomic uint64_t unanswered; /* still in flight when the publisher gave up */
	_Atomic uint64_t full;       /* Redis: group_sends refused by the capacity script */
	atomic_bool done;            /* the publisher thread has finished */
	uint64_t first_ns, last_ns;
	struct hr_hist answer;
	char first_error[160];
} g_pub;

static struct sockaddr_in g_pub_addr;
static char g_body_prefix[256];
static size_t g_body_prefix_len;

static int
pub_connect(struct pconn *pc)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&g_pub_addr, sizeof g_pub_addr) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	pc->fd = fd;
	pc->inflight = 0;
	pc->in_len = 0;
	return 0;
}

static void
pub_error(const char *what)
{
	if (g_pub.first_error[0] == '\0')
		snprintf(g_pub.first_error, sizeof g_pub.first_error, "%s", what);
}

/* Builds one request into out; the send time is taken here. */
static size_t
build_request(char *out, size_t cap, uint64_t seq, uint64_t *t_out)
{
	static char body[BODY_MAX];
	uint64_t t = now_ns();
	int m = snprintf(body, sizeof body, "%.*s{\"t\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"pad\":\"",
	    (int)g_body_prefix_len, g_body_prefix, t, seq);
	size_t blen = (size_t)m;
	size_t tail = opt.body_mode[0] == 'h' ? 3 : 2; /* "} or "}} */
	size_t want = (size_t)opt.size;
	if (opt.body_mode[0] == 'h')
		want += g_body_prefix_len + 1;
	while (blen + tail < want && blen < sizeof body - 8)
		body[blen++] = 'x';
	body[blen++] = '"';
	body[blen++] = '}';
	if (opt.body_mode[0] == 'h')
		body[blen++] = '}';
	int h = snprintf(out, cap,
	    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
	    "%s%sContent-Length: %zu\r\n\r\n",
	    opt.pub_path, opt.pub_host, opt.pub_port, opt.header, opt.header[0] ? "\r\n" : "",
	    blen);
	if (h < 0 || (size_t)h + blen > cap)
		return 0;
	memcpy(out + h, body, blen);
	*t_out = t;
	return (size_t)h + blen;
}

/* Consume complete responses from pc->in; returns responses consumed or -1. */
static int
pub_responses(struct pconn *pc)
{
	int done = 0;
	for (int guard = 0; guard < MAX_PIPELINE + 1; guard++) {
		char *end = memmem(pc->in, pc->in_len, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t head = (size_t)(end - pc->in) + 4;
		int status = 0;
		if (pc->in_len < 12 || memcmp(pc->in, "HTTP/1.", 7) != 0)
			return -1;
		status = atoi(pc->in + 9);
		size_t body = 0;
		bool chunked = false;
		for (char *l = pc->in; l < end; l++) {
			if (*l != '\n')
				continue;
			if (strncasecmp(l + 1, "content-length:", 15) == 0)
				body = strtoul(l + 16, NULL, 10);
			else if (strncasecmp(l + 1, "transfer-encoding:", 18) == 0
			    && memmem(l, (size_t)(end - l), "chunked", 7))
				chunked = true;
		}
		size_t total;
		if (chunked) {
			/* answers are small: find the last chunk */
			char *z
			    = memmem(pc->in + head - 2, pc->in_len - head + 2, "\r\n0\r\n\r\n", 7);
			if (!z)
				break;
			total = (size_t)(z - pc->in) + 7;
		} else {
			total = head + body;
			if (total > sizeof pc->in)
				return -1;
			if (pc->in_len < total)
				break;
		}
		if (status >= 200 && status < 300) {
			atomic_fetch_add_explicit(&g_pub.ok, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&g_pub.errors, 1, memory_order_relaxed);
			char why[96];
			snprintf(why, sizeof why, "publish answered %d", status);
			pub_error(why);
		}
		int tail = (pc->ring_head - pc->inflight + MAX_PIPELINE) % MAX_PIPELINE;
		hr_hist_record(&g_pub.answer, now_ns() - pc->sent_at[tail]);
		pc->inflight--;
		memmove(pc->in, pc->in + total, pc->in_len - total);
		pc->in_len -= total;
		done++;
		if (pc->inflight == 0)
			break;
	}
	return done;
}

static void *
pub_main(void *arg)
{
	(void)arg;
	static struct pconn pcs[MAX_PUB_CONNS];
	static char req[BODY_MAX + 2048];
	int np = opt.pub_conns;
	for (int i = 0; i < np; i++) {
		int rc = pub_connect(&pcs[i]);
		if (rc != 0) {
			char why[128];
			snprintf(why, sizeof why, "publisher connect: %s", strerror(-rc));
			pub_error(why);
			pcs[i].fd = -1;
		}
	}
	uint64_t start = now_ns();
	uint64_t end = start + (uint64_t)(opt.duration * 1e9);
	g_pub.first_ns = start;
	uint64_t seq = 0;
	uint64_t interval = opt.rate > 0 ? (uint64_t)(1e9 / opt.rate) : 0;
	uint64_t next = start;
	int rr = 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < np; i++)
		if (pcs[i].fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
			epoll_ctl(epfd, EPOLL_CTL_ADD, pcs[i].fd, &ev);
		}
	while (!atomic_load(&g_stop_pub)) {
		uint64_t t = now_ns();
		bool sending = t < end;
		int total_inflight = 0;
		for (int i = 0; i < np; i++)
			total_inflight += pcs[i].inflight;
		if (!sending && total_inflight == 0)
			break;
		if (!sending && t > end + 10ull * 1000000000ull)
			break; /* answers overdue: give up */
		/* send what is due */
		for (int burst = 0; sending && burst < 64; burst++) {
			if (interval && now_ns() < next)
				break;
			struct pconn *pc = NULL;
			for (int k = 0; k < np; k++) {
				struct pconn *cand = &pcs[(rr + k) % np];
				if (cand->fd >= 0 && cand->inflight < opt.pipeline) {
					pc = cand;
					rr = (rr + k + 1) % np;
					break;
				}
			}
			if (!pc)
				break;
			/* as fast as possible: fill this connection's free pipeline slots
			 * with one write() (bounded by the buffer) */
			int room = interval ? 1 : opt.pipeline - pc->inflight;
			if (room > 16)
				room = 16;
			uint64_t ts[16];
			size_t len = 0;
			int batch = 0;
			while (batch < room) {
				size_t one = build_request(
				    req + len, sizeof req - len, seq + (uint64_t)batch, &ts[batch]);
				if (one == 0)
					break;
				len += one;
				batch++;
			}
			if (batch == 0) {
				pub_error("request too large");
				atomic_store(&g_stop_pub, true);
				break;
			}
			size_t off = 0;
			int spins = 0;
			while (off < len && spins < 1000000) {
				ssize_t w = write(pc->fd, req + off, len - off);
				if (w > 0)
					off += (size_t)w;
				else if (w < 0 && errno != EAGAIN && errno != EINTR)
					break;
				spins++;
			}
			if (off < len) {
				pub_error("publish write failed");
				atomic_fetch_add(&g_pub.errors, (uint64_t)batch);
				epoll_ctl(epfd, EPOLL_CTL_DEL, pc->fd, NULL);
				close(pc->fd);
				pc->fd = -1;
				break;
			}
			for (int b = 0; b < batch; b++) {
				pc->sent_at[pc->ring_head] = ts[b];
				pc->ring_head = (pc->ring_head + 1) % MAX_PIPELINE;
			}
			pc->inflight += batch;
			seq += (uint64_t)batch;
			atomic_fetch_add_explicit(
			    &g_pub.sent, (uint64_t)batch, memory_order_relaxed);
			g_pub.last_ns = ts[batch - 1];
			if (interval) {
				next += interval;
				if (now_ns() > next + interval * 4) {
					/* fell behind: count and skip instead of bursting */
					uint64_t behind = (now_ns() - next) / interval;
					atomic_fetch_add(&g_pub.late, behind);
					next += behind * interval;
				}
			}
		}
		/* wait for answers or the next send time */
		int timeout = 1;
		if (interval) {
			uint64_t n2 = now_ns();
			timeout = next > n2 ? (int)((next - n2) / 1000000) : 0;
			if (timeout > 50)
				timeout = 50;
		}
		struct epoll_event evs[MAX_PUB_CONNS];
		int k = epoll_wait(epfd, evs, MAX_PUB_CONNS, timeout);
		if (interval && k == 0 && next > now_ns()) {
			/* sub-millisecond remainder: spin politely */
			while (now_ns() < next && !atomic_load(&g_stop_pub))
				;
		}
		for (int i = 0; i < k; i++) {
			struct pconn *pc = &pcs[evs[i].data.u32];
			if (pc->fd < 0)
				continue;
			ssize_t got = read(pc->fd, pc->in + pc->in_len, sizeof pc->in - pc->in_len);
			if (got > 0) {
				pc->in_len += (size_t)got;
				if (pub_responses(pc) >= 0 && pc->in_len < sizeof pc->in)
					continue;
				pub_error("unparsable publish answer");
			} else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
				continue;
			} else {
				pub_error("publisher connection closed by server");
			}
			/* lost connection: its in-flight requests count as errors */
			atomic_fetch_add(&g_pub.errors, (uint64_t)pc->inflight);
			epoll_ctl(epfd, EPOLL_CTL_DEL, pc->fd, NULL);
			close(pc->fd);
			pc->fd = -1;
			if (now_ns() < end && atomic_load(&g_pub.reconnects) < 100
			    && pub_connect(pc) == 0) {
				atomic_fetch_add(&g_pub.reconnects, 1);
				struct epoll_event ev
				    = { .events = EPOLLIN, .data.u32 = evs[i].data.u32 };
				epoll_ctl(epfd, EPOLL_CTL_ADD, pc->fd, &ev);
			}
		}
		bool any = false;
		for (int i = 0; i < np; i++)
			any |= pcs[i].fd >= 0;
		if (!any) {
			pub_error("no publisher connection left");
			break;
		}
	}
	uint64_t lost = 0;
	for (int i = 0; i < np; i++)
		if (pcs[i].fd >= 0) {
			lost += (uint64_t)pcs[i].inflight;
			close(pcs[i].fd);
		}
	if (lost > 0) {
		char why[128];
		snprintf(why, sizeof why,
		    "%" PRIu64
		    " request(s) never answered (does the server take pipelined requests?)",
		    lost);
		pub_error(why);
	}
	atomic_store(&g_pub.unanswered, lost);
	close(epfd);
	atomic_store(&g_pub.done, true);
	return NULL;
}

/* ---- Redis publisher ----
 *
 * Writes group_sends into Redis through herald's own Redis layer
 * (hr_layer_redis_ops), which is differential-tested byte for byte against
 * channels_redis 4.0's RedisChannelLayer.group_send: ZREMRANGEBYSCORE and
 * ZRANGE on the group key, members bucketed by channel key, one member per
 * key (12 random bytes + the msgpack map with "__asgi_channel__" as a list),
 * then the capacity script (ZCOUNT, ZADD, EXPIRE). That is two round trips
 * per group_send (four in Python); --pub-conns threads send concurrently over
 * the layer's connection pool, so the publisher is not the bottleneck.
 */
static hr_layer *g_rlayer;
static _Atomic long g_prefill_ticket;
/* g_pub.answer from several sender threads: how long a group_send took,
 * from the "t" stamp to the capacity script's answer (the member is then in
 * Redis), i.e. the publisher's share of the latency */
static pthread_mutex_t g_answer_mu = PTHREAD_MUTEX_INITIALIZER;

/* The herald-mode JSON body with "t" set now, as msgpack. */
static int
build_redis_msg(uint64_t seq, hr_msg **out, uint64_t *t_out)
{
	char body[BODY_MAX];
	uint64_t t = now_ns();
	int m = snprintf(body, sizeof body,
	    "{\"type\":\"notification_message\",\"message\":{\"t\":%" PRIu64 ",\"seq\":%" PRIu64
	    ",\"pad\":\"",
	    t, seq);
	if (m < 0 || (size_t)m >= sizeof body)
		return HR_EMSGSIZE;
	size_t blen = (size_t)m;
	while (blen + 3 < (size_t)opt.size + 41 && blen < sizeof body - 8)
		body[blen++] = 'x';
	memcpy(body + blen, "\"}}", 3);
	blen += 3;
	hr_buf b;
	hr_buf_init(&b, 0);
	int rv = hr_codec_json_to_msgpack(body, blen, true, &b, NULL, 0);
	if (rv == 0)
		rv = hr_buf_finish(&b, out);
	hr_buf_fini(&b);
	*t_out = t;
	return rv;
}

static void
redis_send_one(uint64_t seq)
{
	hr_msg *m = NULL;
	uint64_t t;
	int rv = build_redis_msg(seq, &m, &t);
	hr_group_send_result res = { 0, 0 };
	if (rv == 0)
		rv = hr_layer_group_send(g_rlayer, opt.group, m, &res);
	uint64_t done = now_ns();
	hr_msg_unref(m);
	atomic_fetch_add_explicit(&g_pub.sent, 1, memory_order_relaxed);
	if (rv == 0) {
		pthread_mutex_lock(&g_answer_mu);
		hr_hist_record(&g_pub.answer, done - t);
		pthread_mutex_unlock(&g_answer_mu);
	}
	if (rv != 0) {
		char why[128];
		snprintf(why, sizeof why, "group_send: %s", hr_strerror(rv));
		pub_error(why);
		atomic_fetch_add(&g_pub.errors, 1);
	} else if (res.full > 0) {
		atomic_fetch_add(&g_pub.full, 1);
		pub_error("group_send: a channel was full (raise --redis-capacity)");
	} else {
		atomic_fetch_add_explicit(&g_pub.ok, 1, memory_order_relaxed);
	}
	g_pub.last_ns = t; /* approximate across threads; for the offered rate only */
}

/* Frames received so far and connections open, over every receiver thread. */
static uint64_t
rx_frames(void)
{
	uint64_t n = 0;
	for (int i = 0; i < opt.threads; i++)
		n += atomic_load_explicit(&g_rx[i].frames, memory_order_relaxed);
	return n;
}

static uint64_t
rx_open(void)
{
	uint64_t n = 0;
	for (int i = 0; i < opt.threads; i++)
		n += atomic_load(&g_rx[i].connected) - atomic_load(&g_rx[i].closed);
	return n;
}

/* --window: wait (bounded by `end`) while the broadcasts written are more
 * than W ahead of what every open connection has received on average.
 * false: stopped or out of time instead. */
static bool
redis_window_wait(uint64_t end)
{
	const struct timespec pause = { 0, 50000 };
	while (!atomic_load(&g_stop_pub) && now_ns() < end) {
		uint64_t open = rx_open();
		if (open == 0 || atomic_load(&g_pub.ok) < (uint64_t)opt.window + rx_frames() / open)
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

static void *
pub_redis_main(void *arg)
{
	int idx = (int)(intptr_t)arg;
	uint64_t start = now_ns();
	if (opt.prefill > 0) {
		for (;;) {
			long k = atomic_fetch_add(&g_prefill_ticket, 1);
			if (k >= opt.prefill || atomic_load(&g_stop_pub))
				break;
			redis_send_one((uint64_t)k);
		}
		return NULL;
	}
	uint64_t end = start + (uint64_t)(opt.duration * 1e9);
	uint64_t interval = opt.rate > 0 ? (uint64_t)(1e9 * opt.pub_conns / opt.rate) : 0;
	uint64_t next = start + (interval / (uint64_t)opt.pub_conns) * (uint64_t)idx;
	uint64_t seq = (uint64_t)idx << 40;
	while (!atomic_load(&g_stop_pub) && now_ns() < end) {
		if (interval) {
			uint64_t t = now_ns();
			if (t < next) {
				uint64_t d = next - t;
				struct timespec ts
				    = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
				nanosleep(&ts, NULL);
				continue;
			}
			next += interval;
			if (now_ns() > next + interval * 4) {
				uint64_t behind = (now_ns() - next) / interval;
				atomic_fetch_add(&g_pub.late, behind);
				next += behind * interval;
			}
		}
		if (opt.window > 0 && !redis_window_wait(end))
			break;
		redis_send_one(seq++);
	}
	return NULL;
}

/* Runs the --pub-conns sender threads; with --prefill, between SIGSTOP and
 * SIGCONT of the server, and the measurement window starts at SIGCONT. */
static void *
pub_redis_run(void *arg)
{
	(void)arg;
	pthread_t th[MAX_PUB_CONNS];
	int started = 0;
	g_pub.first_ns = now_ns();
	if (opt.prefill > 0) {
		if (kill(opt.server_pid, SIGSTOP) != 0) {
			pub_error("cannot SIGSTOP the server");
			atomic_store(&g_pub.done, true);
			return NULL;
		}
		usleep(300000); /* let the node's blocking pop time out in Redis */
	}
	for (int i = 0; i < opt.pub_conns; i++) {
		if (pthread_create(&th[i], NULL, pub_redis_main, (void *)(intptr_t)i) != 0) {
			pub_error("pthread_create failed");
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (opt.prefill > 0) {
		uint64_t t_fill = now_ns();
		if (!opt.quiet)
			fprintf(stderr,
			    "prefilled %" PRIu64 " group_sends in %.2f s (%.0f/s); SIGCONT\n",
			    (uint64_t)g_pub.ok, (double)(t_fill - g_pub.first_ns) / 1e9,
			    (double)g_pub.ok * 1e9 / (double)(t_fill - g_pub.first_ns + 1));
		g_pub.first_ns = now_ns();
		if (kill(opt.server_pid, SIGCONT) != 0)
			pub_error("cannot SIGCONT the server");
	}
	atomic_store(&g_pub.done, true);
	return NULL;
}

/* ---- main ---- */
/* /proc/PID/NAME of the server, or NULL (no --server-pid, or gone) */
static FILE *
open_proc(int pid, const char *name)
{
	char path[64];
	if (pid <= 0)
		return NULL;
	snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	return fopen(path, "r");
}

static long
read_rss_kb(int pid)
{
	char line[256];
	FILE *f = open_proc(pid, "status");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* The server's user + system CPU seconds so far, from /proc/PID/stat
 * (utime and stime, fields 14 and 15); < 0 when unknown. */
static double
read_cpu_s(int pid)
{
	char line[1024];
	FILE *f = open_proc(pid, "stat");
	if (!f)
		return -1;
	char *ok = fgets(line, sizeof line, f);
	fclose(f);
	const char *p = ok ? strrchr(line, ')') : NULL; /* comm may hold spaces */
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	if (p == NULL || hz <= 0
	    || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st)
	        != 2)
		return -1;
	return (double)(ut + st) / (double)hz;
}

static bool
loopback_host(const char *h, struct in_addr *out)
{
	if (strcmp(h, "localhost") == 0)
		h = "127.0.0.1";
	if (inet_pton(AF_INET, h, out) != 1)
		return false;
	return (ntohl(out->s_addr) >> 24) == 127;
}

/* scheme://host:port/path, loopback only */
static int
parse_url(const char *url, const char *scheme, char *host, size_t hcap, int *port, char *path,
    size_t pcap)
{
	size_t sl = strlen(scheme);
	if (strncmp(url, scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0)
		return -1;
	const char *h = url + sl + 3;
	const char *colon = strchr(h, ':');
	const char *slash = strchr(h, '/');
	if (!colon || (slash && slash < colon) || (size_t)(colon - h) >= hcap)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	char *e;
	long p = strtol(colon + 1, &e, 10);
	if (p <= 0 || p > 65535 || (*e != '/' && *e != '\0'))
		return -1;
	*port = (int)p;
	snprintf(path, pcap, "%s", *e ? e : "/");
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: herald-bench --url ws://127.0.0.1:PORT/PATH [options]\n"
	    "  -n, --connections N     WebSocket connections (default 100)\n"
	    "  --sources K             source addresses 127.0.0.1..K (default N/20000+1)\n"
	    "  --connect-rate R        new connections per second (default 5000, 0 = no limit)\n"
	    "  --connect-timeout S     give up waiting for handshakes (default 60)\n"
	    "  --publish URL           http://127.0.0.1:PORT/PATH to POST broadcasts to\n"
	    "  --body herald|raw       herald: {\"type\":\"notification_message\",\"message\":M};\n"
	    "                          raw: M itself (nchan, node, raw-ceiling) (default herald)\n"
	    "  --header 'K: V'         extra header on publish requests\n"
	    "  --rate R                broadcasts per second; 0 = as fast as in-flight allows "
	    "(default 10)\n"
	    "  --pub-conns C           publisher keep-alive connections (default 1)\n"
	    "  --pipeline P            in-flight requests per publisher connection (default 1)\n"
	    "  --size B                message size in bytes, padded (default 200)\n"
	    "  -d, --duration S        publishing time (default 5); idle hold time without "
	    "--publish\n"
	    "  --drain S               wait after publishing for frames still arriving (default "
	    "5)\n"
	    "  --settle S              pause after connecting before measuring RSS (default 1)\n"
	    "  --client-threads T      receiver threads (default 1)\n"
	    "  --server-pid PID        read the server's VmRSS and CPU time from /proc\n"
	    "  --publish-redis URL     redis://127.0.0.1:PORT: write group_sends into Redis as\n"
	    "                          channels_redis 4.0 does (instead of --publish); "
	    "--pub-conns\n"
	    "                          sender threads, --rate as above (total)\n"
	    "  --group G               group for --publish-redis (default notifications)\n"
	    "  --prefix P              channels_redis key prefix (default asgi)\n"
	    "  --redis-capacity N      the publisher's channel capacity (default 100, as "
	    "Channels)\n"
	    "  --prefill K             with --publish-redis and --server-pid: SIGSTOP the server,\n"
	    "                          write K group_sends, SIGCONT; deliveries_per_s is then the\n"
	    "                          drain rate from SIGCONT (latencies include the stop)\n"
	    "  --window W              with --publish-redis: a sender waits while W broadcasts\n"
	    "                          are not yet received by every connection (a Redis writer\n"
	    "                          gets no answer from the node to pace it; default 0: no "
	    "wait)\n"
	    "  -q, --quiet             no progress lines\n"
	    "Prints progress to stderr, a summary, then one JSON line on stdout.\n");
}

static double
secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *pub = NULL;
	opt.n = 100;
	opt.sources = 0;
	opt.connect_rate = 5000;
	opt.connect_timeout = 60;
	opt.rate = 10;
	opt.pub_conns = 1;
	opt.pipeline = 1;
	opt.size = 200;
	opt.duration = 5;
	opt.drain = 5;
	opt.settle = 1;
	opt.threads = 1;
	snprintf(opt.body_mode, sizeof opt.body_mode, "herald");
	opt.group = "notifications";
	opt.prefix = "asgi";
	opt.redis_capacity = 100;
	enum {
		O_SRC = 256,
		O_CR,
		O_CT,
		O_PUB,
		O_BODY,
		O_HDR,
		O_RATE,
		O_PC,
		O_PIPE,
		O_SIZE,
		O_DRAIN,
		O_SETTLE,
		O_THR,
		O_PID,
		O_RPUB,
		O_GROUP,
		O_PREFIX,
		O_RCAP,
		O_PREFILL,
		O_WINDOW
	};
	static const struct option lo[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "connections", required_argument, NULL, 'n' },
		{ "sources", required_argument, NULL, O_SRC },
		{ "connect-rate", required_argument, NULL, O_CR },
		{ "connect-timeout", required_argument, NULL, O_CT },
		{ "publish", required_argument, NULL, O_PUB },
		{ "body", required_argument, NULL, O_BODY },
		{ "header", required_argument, NULL, O_HDR },
		{ "rate", required_argument, NULL, O_RATE },
		{ "pub-conns", required_argument, NULL, O_PC },
		{ "pipeline", required_argument, NULL, O_PIPE },
		{ "size", required_argument, NULL, O_SIZE },
		{ "duration", required_argument, NULL, 'd' },
		{ "drain", required_argument, NULL, O_DRAIN },
		{ "settle", required_argument, NULL, O_SETTLE },
		{ "client-threads", required_argument, NULL, O_THR },
		{ "server-pid", required_argument, NULL, O_PID },
		{ "publish-redis", required_argument, NULL, O_RPUB },
		{ "group", required_argument, NULL, O_GROUP },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "redis-capacity", required_argument, NULL, O_RCAP },
		{ "prefill", required_argument, NULL, O_PREFILL },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "u:n:d:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'n':
			opt.n = atoi(optarg);
			break;
		case O_SRC:
			opt.sources = atoi(optarg);
			break;
		case O_CR:
			opt.connect_rate = atof(optarg);
			break;
		case O_CT:
			opt.connect_timeout = atof(optarg);
			break;
		case O_PUB:
			pub = optarg;
			break;
		case O_BODY:
			snprintf(opt.body_mode, sizeof opt.body_mode, "%s", optarg);
			break;
		case O_HDR:
			snprintf(opt.header, sizeof opt.header, "%s", optarg);
			break;
		case O_RATE:
			opt.rate = atof(optarg);
			break;
		case O_PC:
			opt.pub_conns = atoi(optarg);
			break;
		case O_PIPE:
			opt.pipeline = atoi(optarg);
			break;
		case O_SIZE:
			opt.size = atoi(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case O_DRAIN:
			opt.drain = atof(optarg);
			break;
		case O_SETTLE:
			opt.settle = atof(optarg);
			break;
		case O_THR:
			opt.threads = atoi(optarg);
			break;
		case O_PID:
			opt.server_pid = atoi(optarg);
			break;
		case O_RPUB:
			opt.redis_url = optarg;
			break;
		case O_GROUP:
			opt.group = optarg;
			break;
		case O_PREFIX:
			opt.prefix = optarg;
			break;
		case O_RCAP:
			opt.redis_capacity = atol(optarg);
			break;
		case O_PREFILL:
			opt.prefill = atol(optarg);
			break;
		case O_WINDOW:
			opt.window = atol(optarg);
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!url) {
		fprintf(stderr, "herald-bench: --url is required\n");
		usage(stderr);
		return 2;
	}
	if (parse_url(url, "ws", opt.host, sizeof opt.host, &opt.port, opt.path, sizeof opt.path)
	    != 0) {
		fprintf(stderr, "herald-bench: bad --url '%s' (want ws://HOST:PORT/PATH)\n", url);
		return 2;
	}
	g_target.sin_family = AF_INET;
	g_target.sin_port = htons((uint16_t)opt.port);
	if (!loopback_host(opt.host, &g_target.sin_addr)) {
		fprintf(stderr, "herald-bench: refusing non-loopback target '%s'\n", opt.host);
		return 2;
	}
	if (pub) {
		if (parse_url(pub, "http", opt.pub_host, sizeof opt.pub_host, &opt.pub_port,
		        opt.pub_path, sizeof opt.pub_path)
		    != 0) {
			fprintf(stderr, "herald-bench: bad --publish '%s'\n", pub);
			return 2;
		}
		g_pub_addr.sin_family = AF_INET;
		g_pub_addr.sin_port = htons((uint16_t)opt.pub_port);
		if (!loopback_host(opt.pub_host, &g_pub_addr.sin_addr)) {
			fprintf(stderr, "herald-bench: refusing non-loopback publish target '%s'\n",
			    opt.pub_host);
			return 2;
		}
		opt.publish = true;
	}
	if (opt.n < 1 || opt.n > 1000000 || opt.threads < 1 || opt.threads > 64 || opt.pub_conns < 1
	    || opt.pub_conns > MAX_PUB_CONNS || opt.pipeline < 1 || opt.pipeline > MAX_PIPELINE
	    || opt.size < 32 || opt.size > BODY_MAX - 512 || opt.duration <= 0
	    || opt.duration > 86400 || opt.rate < 0 || opt.drain < 0 || opt.drain > 600
	    || opt.settle < 0 || opt.settle > 600 || opt.connect_rate < 0
	    || opt.connect_timeout <= 0 || opt.connect_timeout > 3600
	    || (strcmp(opt.body_mode, "herald") != 0 && strcmp(opt.body_mode, "raw") != 0)
	    || strchr(opt.header, '\r') || strchr(opt.header, '\n')) {
		fprintf(stderr, "herald-bench: option out of range\n");
		usage(stderr);
		return 2;
	}
	if (opt.redis_url) {
		char rh[64], rpath[64];
		int rport;
		struct in_addr ra;
		if (pub
		    || parse_url(opt.redis_url, "redis", rh, sizeof rh, &rport, rpath, sizeof rpath)
		        != 0
		    || !loopback_host(rh, &ra)) {
			fprintf(stderr,
			    "herald-bench: --publish-redis wants redis://127.0.0.1:PORT[/DB] "
			    "(loopback) and no --publish\n");
			return 2;
		}
		if (hr_name_check_group(opt.group, strlen(opt.group)) != 0 || opt.redis_capacity < 1
		    || (opt.prefill > 0 && opt.server_pid <= 0) || opt.prefill < 0
		    || opt.prefill > 10000000 || opt.window < 0 || opt.window > 1000000) {
			fprintf(stderr,
			    "herald-bench: bad --group, --redis-capacity, --prefill or --window "
			    "(--prefill needs --server-pid)\n");
			return 2;
		}
		hr_layer_opts lo2;
		hr_layer_opts_default(&lo2);
		lo2.prefix = opt.prefix;
		lo2.capacity = (size_t)opt.redis_capacity;
		lo2.hosts = &opt.redis_url;
		lo2.n_hosts = 1;
		int rv = hr_layer_create(&g_rlayer, &hr_layer_redis_ops, &lo2);
		if (rv != 0) {
			fprintf(stderr, "herald-bench: Redis layer: %s\n", hr_strerror(rv));
			return 2;
		}
		opt.publish = true;
	} else if (opt.prefill > 0) {
		fprintf(stderr, "herald-bench: --prefill needs --publish-redis\n");
		return 2;
	}
	if (opt.sources <= 0)
		opt.sources = opt.n / 20000 + 1;
	if (opt.sources > 254)
		opt.sources = 254;
	if (opt.body_mode[0] == 'h')
		g_body_prefix_len = (size_t)snprintf(g_body_prefix, sizeof g_body_prefix,
		    "{\"type\":\"notification_message\",\"message\":");

	/* file descriptors: N sockets + publishers + headroom */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("herald-bench: getrlimit");
		return 1;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		perror("herald-bench: setrlimit (continuing with the soft limit)");
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t need = (rlim_t)opt.n + (rlim_t)opt.pub_conns + 64;
	if (need > rl.rlim_cur) {
		fprintf(stderr,
		    "herald-bench: %d connections need %llu file descriptors (with headroom) but "
		    "the limit is %llu (hard limit %llu); lower -n or raise the hard limit\n",
		    opt.n, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max);
		return 2;
	}

	g_handshake_len = (size_t)snprintf(g_handshake, sizeof g_handshake,
	    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	    "Origin: http://%s:%d\r\n\r\n",
	    opt.path, opt.host, opt.port, opt.host, opt.port);
	if (g_handshake_len >= sizeof g_handshake) {
		fprintf(stderr, "herald-bench: path too long\n");
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	long rss_before = read_rss_kb(opt.server_pid);
	if (opt.server_pid > 0 && rss_before < 0) {
		fprintf(stderr, "herald-bench: cannot read /proc/%d/status\n", opt.server_pid);
		return 2;
	}

	g_rx = calloc((size_t)opt.threads, sizeof *g_rx);
	if (!g_rx) {
		fprintf(stderr, "herald-bench: out of memory\n");
		return 1;
	}
	g_t0 = now_ns();
	for (int i = 0; i < opt.threads; i++) {
		struct rx *r = &g_rx[i];
		r->idx = i;
		r->n = opt.n / opt.threads + (i < opt.n % opt.threads ? 1 : 0);
		r->conns = calloc((size_t)(r->n ? r->n : 1), sizeof *r->conns);
		r->buf = malloc(RX_BUF);
		r->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!r->conns || !r->buf || r->epfd < 0) {
			fprintf(stderr, "herald-bench: out of memory or epoll_create failed\n");
			return 1;
		}
		for (int j = 0; j < r->n; j++)
			r->conns[j].fd = -1;
		hr_hist_init(&r->hist);
		if (pthread_create(&r->th, NULL, rx_main, r) != 0) {
			fprintf(stderr, "herald-bench: pthread_create failed\n");
			return 1;
		}
	}

	/* wait for every connection to open or fail */
	uint64_t connect_deadline = g_t0 + (uint64_t)(opt.connect_timeout * 1e9);
	uint64_t connected = 0, failed = 0, closed = 0;
	uint64_t last_print = g_t0;
	for (;;) {
		connected = failed = closed = 0;
		for (int i = 0; i < opt.threads; i++) {
			connected += atomic_load(&g_rx[i].connected);
			failed += atomic_load(&g_rx[i].failed);
			closed += atomic_load(&g_rx[i].closed);
		}
		uint64_t t = now_ns();
		if (connected + failed >= (uint64_t)opt.n || t > connect_deadline || g_interrupted)
			break;
		if (!opt.quiet && t - last_print >= 1000000000ull) {
			fprintf(stderr, "[connect %5.1fs] open %" PRIu64 "/%d failed %" PRIu64 "\n",
			    secs(g_t0, t), connected, opt.n, failed);
			last_print = t;
		}
		usleep(5000);
	}
	uint64_t t_connected = now_ns();
	double connect_s = secs(g_t0, t_connected);
	uint64_t pending = (uint64_t)opt.n - connected - failed;
	if (!opt.quiet)
		fprintf(stderr, "connected %" PRIu64 "/%d in %.2fs (%" PRIu64 " failed%s)\n",
		    connected, opt.n, connect_s, failed + pending,
		    pending ? ", some timed out" : "");
	failed += pending;
	for (int i = 0; i < opt.threads; i++)
		if (g_rx[i].first_error[0] && !opt.quiet) {
			fprintf(stderr, "  first connect error: %s\n", g_rx[i].first_error);
			break;
		}

	/* settle, then the server's memory with every connection open */
	for (int k = 0; k < (int)(opt.settle * 100) && !g_interrupted; k++)
		usleep(10000);
	long rss_after = read_rss_kb(opt.server_pid);

	pthread_t pth;
	bool pub_started = false;
	uint64_t t_pub = now_ns();
	double cpu_before = read_cpu_s(opt.server_pid);
	hr_hist_init(&g_pub.answer);
	if (opt.publish && connected > 0 && !g_interrupted) {
		if (pthread_create(&pth, NULL, g_rlayer ? pub_redis_run : pub_main, NULL) != 0) {
			fprintf(stderr, "herald-bench: pthread_create failed\n");
			return 1;
		}
		pub_started = true;
	}

	/* progress; publishing, then drain; or just hold idle */
	uint64_t prev_frames = 0;
	uint64_t hold_end = t_pub + (uint64_t)(opt.duration * 1e9);
	uint64_t drain_deadline = 0;
	bool pub_joined = !pub_started;
	last_print = t_pub;
	for (;;) {
		usleep(10000);
		uint64_t t = now_ns();
		uint64_t frames = rx_frames();
		if (!opt.quiet && t - last_print >= 1000000000ull) {
			double dt = secs(last_print, t);
			fprintf(stderr,
			    "[%5.1fs] published %" PRIu64 " ok %" PRIu64 " err %" PRIu64
			    " | frames %" PRIu64 " (%.0f/s)\n",
			    secs(t_pub, t), atomic_load(&g_pub.sent), atomic_load(&g_pub.ok),
			    atomic_load(&g_pub.errors), frames,
			    (double)(frames - prev_frames) / dt);
			prev_frames = frames;
			last_print = t;
		}
		if (g_interrupted) {
			atomic_store(&g_stop_pub, true);
			if (!pub_joined) {
				pthread_join(pth, NULL);
				pub_joined = true;
			}
			break;
		}
		if (!pub_started) {
			if (t >= hold_end)
				break;
			continue;
		}
		if (!pub_joined && (t >= hold_end || atomic_load(&g_pub.done))) {
			/* the publisher stops by itself once its answers are in */
			pthread_join(pth, NULL);
			pub_joined = true;
			drain_deadline = now_ns() + (uint64_t)(opt.drain * 1e9);
		}
		if (pub_joined) {
			uint64_t expected = atomic_load(&g_pub.ok) * rx_open();
			if (frames >= expected || t >= drain_deadline)
				break;
		}
	}
	atomic_store(&g_stop_rx, true);
	for (int i = 0; i < opt.threads; i++)
		pthread_join(g_rx[i].th, NULL);
	long rss_end = read_rss_kb(opt.server_pid);
	double cpu_after = read_cpu_s(opt.server_pid);

	/* merge and report */
	struct hr_hist *h = &g_rx[0].hist;
	uint64_t frames = 0, no_t = 0, last_frame = 0;
	closed = 0;
	for (int i = 0; i < opt.threads; i++) {
		if (i > 0)
			hr_hist_merge(h, &g_rx[i].hist);
		frames += g_rx[i].frames;
		no_t += g_rx[i].no_t;
		closed += g_rx[i].closed;
		if (g_rx[i].last_frame_ns > last_frame)
			last_frame = g_rx[i].last_frame_ns;
	}
	uint64_t published = g_pub.ok;
	uint64_t expected = published * connected;
	double window
	    = pub_started && last_frame > g_pub.first_ns ? secs(g_pub.first_ns, last_frame) : 0.0;
	double dps = window > 0 ? (double)frames / window : 0.0;
	double pub_window = secs(g_pub.first_ns, g_pub.last_ns);
	double pps
	    = pub_window > 0 ? (double)(g_pub.sent > 1 ? g_pub.sent - 1 : 0) / pub_window : 0.0;
	double p50 = hr_hist_pct(h, 50.0) / 1e6, p90 = hr_hist_pct(h, 90.0) / 1e6;
	double p99 = hr_hist_pct(h, 99.0) / 1e6, p999 = hr_hist_pct(h, 99.9) / 1e6;
	double pmax = (double)h->max / 1e6, pmin = h->count ? (double)h->min / 1e6 : 0.0;
	double bpc = rss_before >= 0 && rss_after >= 0 && connected > 0
	    ? (double)(rss_after - rss_before) * 1024.0 / (double)connected
	    : -1;
	/* the server's CPU per delivery while publishing and draining: a
	 * cost that does not need an idle machine to compare, unlike latency */
	double cpu_s = cpu_before >= 0 && cpu_after >= 0 ? cpu_after - cpu_before : -1;
	double cpu_us = cpu_s >= 0 && frames > 0 ? cpu_s * 1e6 / (double)frames : -1;
	const char *err = g_pub.first_error[0] ? g_pub.first_error : "";
	const char *cerr = "";
	for (int i = 0; i < opt.threads; i++)
		if (g_rx[i].first_error[0]) {
			cerr = g_rx[i].first_error;
			break;
		}

	fprintf(stderr,
	    "\n== herald-bench %s ==\n"
	    "connections  %" PRIu64 " open, %" PRIu64 " failed, %" PRIu64
	    " closed by server; connect %.2f s over %d source address(es)\n"
	    "published    %" PRIu64 " ok, %" PRIu64 " errors, %" PRIu64 " unanswered, %" PRIu64
	    " full (%.0f/s offered%s)\n"
	    "frames       %" PRIu64 " of %" PRIu64 " expected (%" PRIu64 " without \"t\")\n"
	    "deliveries   %.0f /s over %.2f s\n"
	    "latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n"
	    "server RSS   %ld kB before, %ld kB connected, %ld kB at end; %.0f bytes/conn\n"
	    "server CPU   %.2f s while publishing and draining; %.2f us per delivery\n",
	    url, connected, failed, closed, connect_s, opt.sources, published,
	    (uint64_t)g_pub.errors, (uint64_t)g_pub.unanswered, (uint64_t)g_pub.full, pps,
	    g_pub.late ? ", publisher fell behind" : "", frames, expected, no_t, dps, window, p50,
	    p90, p99, p999, pmax, rss_before, rss_after, rss_end, bpc, cpu_s, cpu_us);
	if (err[0])
		fprintf(stderr, "publish error: %s\n", err);
	if (cerr[0])
		fprintf(stderr, "connection error: %s\n", cerr);
	printf("{\"url\":\"%s\",\"connections\":%" PRIu64 ",\"connect_failures\":%" PRIu64
	       ",\"closed_by_server\":%" PRIu64 ",\"connect_s\":%.3f,\"published\":%" PRIu64
	       ",\"publish_errors\":%" PRIu64 ",\"publish_unanswered\":%" PRIu64
	       ",\"publish_late\":%" PRIu64 ",\"publish_full\":%" PRIu64
	       ",\"publish_per_s\":%.1f,\"frames\":%" PRIu64 ",\"expected\":%" PRIu64
	       ",\"frames_without_t\":%" PRIu64 ",\"window_s\":%.3f,\"deliveries_per_s\":%.1f"
	       ",\"latency_samples\":%" PRIu64 ",\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f"
	       ",\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"publish_answer_p50_ms\":%.3f"
	       ",\"publish_answer_p99_ms\":%.3f"
	       ",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_end_kb\":%ld"
	       ",\"bytes_per_conn\":%.1f,\"server_cpu_s\":%.2f,\"server_cpu_us_per_delivery\":%.3f"
	       ",\"size\":%d,\"rate\":%.1f}\n",
	    url, connected, failed, closed, connect_s, published, (uint64_t)g_pub.errors,
	    (uint64_t)g_pub.unanswered, (uint64_t)g_pub.late, (uint64_t)g_pub.full, pps, frames,
	    expected, no_t, window, dps, h->count, pmin, p50, p90, p99, p999, pmax,
	    hr_hist_pct(&g_pub.answer, 50.0) / 1e6, hr_hist_pct(&g_pub.answer, 99.0) / 1e6,
	    rss_before, rss_after, rss_end, bpc, cpu_s, cpu_us, opt.size, opt.rate);
	fflush(stdout);
	for (int i = 0; i < opt.threads; i++) {
		for (int j = 0; j < g_rx[i].n; j++)
			if (g_rx[i].conns[j].fd >= 0)
				close(g_rx[i].conns[j].fd);
		close(g_rx[i].epfd);
		free(g_rx[i].conns);
		free(g_rx[i].buf);
	}
	free(g_rx);
	hr_layer_destroy(g_rlayer);
	return connected > 0 ? 0 : 1;
}
