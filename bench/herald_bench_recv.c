/*
 * herald_bench_recv.c: herald-bench's WebSocket receivers. Each of the
 * --client-threads threads owns its connections and its epoll set: it opens
 * them at the connect rate from source addresses 127.0.0.1..K, sends the
 * upgrade, parses the answer and the frames in place (nothing allocated per
 * frame) and records each message's latency from its "t" stamp. With
 * --churn it closes connections with a close frame and reopens them; with
 * --report-interval it marks which broadcast ("seq") reached which
 * connection and checks them once their drain window has passed
 * (herald_bench.h, "loss tracking"); with --catchup it closes and reopens
 * them all when main says so, and hands each message to the catch-up checks
 * (herald_bench_catchup.c).
 * Threads: one per receiver; main reads the atomic counters.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herald_bench.h"

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD, C_CLOSING };

#define CLOSE_WAIT_NS 2000000000ull /* churn: wait this long for the close frame back */

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
	uint8_t again;     /* a reconnect (churn), not one of the first N connects */
	uint64_t open_ns;  /* when its 101 arrived */
	uint64_t close_ns; /* churn: when we sent our close frame */
};

struct rx *g_rx;
static atomic_bool g_stop_rx;
static atomic_bool g_churn_on;
_Atomic unsigned g_rx_epoch;
struct sockaddr_in g_target;
static char g_handshake[1024];
static size_t g_handshake_len;

/* The connection's index over every receiver (conn_start's global_idx). */
static int
conn_gi(const struct rx *r, const struct conn *c)
{
	return r->idx + (int)(c - r->conns) * opt.threads;
}

static void
conn_fail(struct rx *r, struct conn *c, const char *why, int err)
{
	if (opt.catchup > 0)
		cu_fail(conn_gi(r, c), c->state == C_OPEN, why);
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
	else if (c->again)
		atomic_fetch_add_explicit(&r->reconnect_failures, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&r->failed, 1, memory_order_relaxed);
	c->state = C_DEAD;
}

static void
conn_start(struct rx *r, int global_idx, struct conn *c)
{
	uint8_t again = c->again;
	*c = (struct conn) { .fd = -1, .again = again };
	if (opt.catchup > 0)
		cu_connect_start(global_idx, now_ns());
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

/* The value of "seq":<digits> in a message's first bytes; false when absent. */
static bool
scan_seq(const uint8_t *p, size_t n, uint64_t *out)
{
	for (size_t i = 0; i + 6 < n; i++) {
		if (p[i] != '"' || memcmp(p + i + 1, "seq\"", 4) != 0)
			continue;
		size_t j = i + 5;
		while (j < n && (p[j] == ' ' || p[j] == ':'))
			j++;
		uint64_t v = 0;
		size_t digits = 0;
		while (j < n && p[j] >= '0' && p[j] <= '9' && digits < 19) {
			v = v * 10 + (uint64_t)(p[j] - '0');
			j++;
			digits++;
		}
		if (digits > 0 && j < n) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* Loss tracking: mark broadcast seq as received on connection c. */
static void
mark_seq(struct rx *r, struct conn *c)
{
	uint64_t seq;
	if (!scan_seq(c->head, c->head_len, &seq)) {
		atomic_fetch_add_explicit(&r->no_seq, 1, memory_order_relaxed);
		return;
	}
	if (seq < r->fin_seq || seq >= r->fin_seq + TRACK_RING) {
		/* already checked (counted lost, if it was counted), or not a
		 * seq this run sent */
		atomic_fetch_add_explicit(&r->late_frames, 1, memory_order_relaxed);
		return;
	}
	size_t slot = (size_t)(seq % TRACK_RING);
	uint64_t *w = &r->bits[(size_t)(c - r->conns) * TRACK_BITS_WORDS + slot / 64];
	uint64_t bit = 1ull << (slot % 64);
	if (*w & bit)
		atomic_fetch_add_explicit(&r->dup_frames, 1, memory_order_relaxed);
	*w |= bit;
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
	if (opt.catchup > 0) {
		if (c->state == C_OPEN)
			cu_message(conn_gi(r, c), c->head, c->head_len, t_now);
		return;
	}
	if (r->bits && c->state == C_OPEN)
		mark_seq(r, c);
	uint64_t t = scan_t(c->head, c->head_len);
	if (t == 0 || t > t_now) {
		atomic_fetch_add_explicit(&r->no_t, 1, memory_order_relaxed);
		return;
	}
	hr_hist_record(&r->hist, t_now - t);
	if (opt.report_interval > 0)
		hr_hist_record(
		    &r->ihist[atomic_load_explicit(&r->epoch_seen, memory_order_relaxed) & 1],
		    t_now - t);
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
				c->open_ns = now_ns();
				if (opt.catchup > 0)
					cu_open(conn_gi(r, c), c->open_ns);
				if (r->bits)
					memset(&r->bits[(size_t)(c - r->conns) * TRACK_BITS_WORDS],
					    0, TRACK_BITS_WORDS * sizeof(uint64_t));
				if (c->again)
					atomic_fetch_add_explicit(
					    &r->reopened, 1, memory_order_relaxed);
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

/* Churn: close the socket of a connection whose close is done (or timed
 * out) and open it again at once, in the same slot. */
static void
churn_reopen(struct rx *r, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = C_DEAD;
	c->again = 1;
	int j = (int)(c - r->conns);
	conn_start(r, r->idx + j * opt.threads, c);
}

/* Churn one connection: the next open one gets a close frame (1000) and
 * waits for the server's; a dead one (a reconnect that failed, or closed by
 * the server) is opened again. */
static void
churn_one(struct rx *r, uint64_t now)
{
	static const uint8_t close_frame[8] = { 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8 };
	if (r->n_closing >= CLOSING_MAX)
		return;
	for (int k = 0; k < r->n; k++) {
		int j = r->churn_cursor;
		r->churn_cursor = (r->churn_cursor + 1) % r->n;
		struct conn *c = &r->conns[j];
		if (c->state == C_DEAD) {
			c->again = 1;
			conn_start(r, r->idx + j * opt.threads, c);
			return;
		}
		if (c->state != C_OPEN)
			continue;
		atomic_fetch_add_explicit(&r->churned, 1, memory_order_relaxed);
		/* zero mask key: masked, payload unchanged; 8 bytes fit an idle
		 * socket buffer */
		if (write(c->fd, close_frame, sizeof close_frame) != (ssize_t)sizeof close_frame) {
			churn_reopen(r, c);
			return;
		}
		c->state = C_CLOSING;
		c->close_ns = now;
		r->closing[r->n_closing++] = j;
		return;
	}
}

/* Churn: the connections due now, and the closes that took too long. */
static void
churn_tick(struct rx *r, uint64_t now)
{
	for (int i = 0; i < r->n_closing;) {
		struct conn *c = &r->conns[r->closing[i]];
		if (c->state == C_CLOSING && now > c->close_ns + CLOSE_WAIT_NS) {
			atomic_fetch_add_explicit(&r->close_timeouts, 1, memory_order_relaxed);
			churn_reopen(r, c);
		}
		if (c->state != C_CLOSING)
			r->closing[i] = r->closing[--r->n_closing];
		else
			i++;
	}
	if (!atomic_load_explicit(&g_churn_on, memory_order_relaxed) || opt.churn <= 0 || r->n == 0)
		return;
	uint64_t every = (uint64_t)(60e9 / ((double)r->n * opt.churn / 100.0));
	if (every == 0)
		every = 1;
	if (r->next_churn_ns == 0 || now > r->next_churn_ns + 1000000000ull)
		r->next_churn_ns = now + every / (uint64_t)opt.threads * (uint64_t)(r->idx + 1);
	for (int k = 0; k < 100 && now >= r->next_churn_ns; k++) {
		churn_one(r, now);
		r->next_churn_ns += every;
	}
}

/* Loss tracking: check the broadcasts whose drain window has passed
 * against this receiver's connections (herald_bench.h). Bounded: at most
 * 256 broadcasts per call. */
static void
track_check(struct rx *r, uint64_t now)
{
	uint64_t drain = (uint64_t)(opt.drain * 1e9);
	for (int k = 0; k < 256; k++) {
		if (r->fin_seq >= atomic_load_explicit(&g_track_next, memory_order_acquire))
			return;
		struct track_ent *e = &g_track[r->fin_seq % TRACK_RING];
		uint32_t st = atomic_load_explicit(&e->status, memory_order_acquire);
		if (st == TRACK_PENDING || now < atomic_load(&e->t_done) + drain)
			return;
		size_t slot = (size_t)(r->fin_seq % TRACK_RING);
		uint64_t bit = 1ull << (slot % 64);
		uint64_t t_sent = atomic_load(&e->t_sent);
		uint32_t lost = 0, counted = 0;
		for (int j = 0; j < r->n; j++) {
			uint64_t *w = &r->bits[(size_t)j * TRACK_BITS_WORDS + slot / 64];
			const struct conn *c = &r->conns[j];
			if (st == TRACK_OK && c->state == C_OPEN && c->open_ns < t_sent) {
				counted++;
				if (!(*w & bit))
					lost++;
			}
			*w &= ~bit;
		}
		atomic_fetch_add(&e->lost, lost);
		atomic_fetch_add(&e->counted, counted);
		r->fin_seq++;
		atomic_fetch_add_explicit(&e->checked, 1, memory_order_release);
		atomic_store(&r->fin_done, r->fin_seq);
	}
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
		const char *req = g_handshake;
		size_t req_len = g_handshake_len;
		char own[1024]; /* --catchup: each connection asks for its own position */
		if (opt.catchup > 0) {
			req = own;
			req_len = cu_request(conn_gi(r, c), own, sizeof own);
			if (req_len == 0) {
				conn_fail(r, c, "upgrade request too long", 0);
				return;
			}
		}
		ssize_t w = write(c->fd, req, req_len);
		if (w != (ssize_t)req_len) {
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
		if (c->state == C_CLOSING) {
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (got <= 0 || conn_frames(r, c, r->buf, (size_t)got, now_ns()) != 0) {
				/* the server's close frame (or EOF): the close is done */
				churn_reopen(r, c);
				return;
			}
			if ((size_t)got < RX_BUF)
				return;
			continue;
		}
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

/* --catchup: carry out the phase main asked for, once: close every
 * connection (no close frame: a dropped network), or open them all again
 * from the start (at the connect rate, from *start). */
static void
catchup_phase(struct rx *r, uint64_t *start)
{
	int ph = atomic_load(&g_cu_phase);
	if (ph == atomic_load_explicit(&r->cu_phase, memory_order_relaxed))
		return;
	for (int j = 0; j < r->n; j++) {
		struct conn *c = &r->conns[j];
		if (ph == CU_PHASE_CLOSE && c->fd >= 0) {
			epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->fd = -1;
			c->state = C_DEAD;
		}
		c->again = 1;
	}
	if (ph == CU_PHASE_RECONNECT) {
		r->started = 0;
		*start = now_ns();
	}
	atomic_store(&r->cu_phase, ph);
}

static void *
rx_main(void *arg)
{
	struct rx *r = arg;
	struct epoll_event evs[512];
	double rate = opt.connect_rate / opt.threads;
	uint64_t start = now_ns();
	bool busy = opt.churn > 0 || opt.report_interval > 0 || opt.catchup > 0;
	while (!atomic_load_explicit(&g_stop_rx, memory_order_relaxed)) {
		if (opt.catchup > 0)
			catchup_phase(r, &start);
		uint64_t t = now_ns();
		atomic_store_explicit(
		    &r->epoch_seen, atomic_load(&g_rx_epoch), memory_order_relaxed);
		if (opt.churn > 0 || r->n_closing > 0)
			churn_tick(r, t);
		if (r->bits)
			track_check(r, t);
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
		int k = epoll_wait(r->epfd, evs, 512, r->started < r->n ? 1 : busy ? 10 : 50);
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->state != C_DEAD)
				conn_event(r, c, evs[i].events);
		}
	}
	return NULL;
}

uint64_t
rx_frames(void)
{
	uint64_t n = 0;
	for (int i = 0; i < opt.threads; i++)
		n += atomic_load_explicit(&g_rx[i].frames, memory_order_relaxed);
	return n;
}

uint64_t
rx_open(void)
{
	uint64_t n = 0;
	for (int i = 0; i < opt.threads; i++)
		n += atomic_load(&g_rx[i].connected) - atomic_load(&g_rx[i].closed)
		    - atomic_load(&g_rx[i].churned);
	return n;
}

void
rx_churn_start(void)
{
	atomic_store(&g_churn_on, true);
}

int
rx_prepare(void)
{
	g_handshake_len = (size_t)snprintf(g_handshake, sizeof g_handshake,
	    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	    "Origin: http://%s:%d\r\n\r\n",
	    opt.path, opt.host, opt.port, opt.host, opt.port);
	return g_handshake_len >= sizeof g_handshake ? -1 : 0;
}

int
rx_start(void)
{
	g_rx = calloc((size_t)opt.threads, sizeof *g_rx);
	if (!g_rx) {
		fprintf(stderr, "herald-bench: out of memory\n");
		return -1;
	}
	for (int i = 0; i < opt.threads; i++) {
		struct rx *r = &g_rx[i];
		r->idx = i;
		r->n = opt.n / opt.threads + (i < opt.n % opt.threads ? 1 : 0);
		r->conns = calloc((size_t)(r->n ? r->n : 1), sizeof *r->conns);
		r->buf = malloc(RX_BUF);
		r->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (track_on())
			r->bits = calloc(
			    (size_t)(r->n ? r->n : 1) * TRACK_BITS_WORDS, sizeof(uint64_t));
		if (!r->conns || !r->buf || r->epfd < 0 || (track_on() && !r->bits)) {
			fprintf(stderr, "herald-bench: out of memory or epoll_create failed\n");
			return -1;
		}
		for (int j = 0; j < r->n; j++)
			r->conns[j].fd = -1;
		hr_hist_init(&r->hist);
		hr_hist_init(&r->ihist[0]);
		hr_hist_init(&r->ihist[1]);
		if (pthread_create(&r->th, NULL, rx_main, r) != 0) {
			fprintf(stderr, "herald-bench: pthread_create failed\n");
			return -1;
		}
	}
	return 0;
}

void
rx_stop(void)
{
	atomic_store(&g_stop_rx, true);
	for (int i = 0; i < opt.threads; i++)
		pthread_join(g_rx[i].th, NULL);
}

void
rx_free(void)
{
	for (int i = 0; g_rx != NULL && i < opt.threads; i++) {
		for (int j = 0; j < g_rx[i].n; j++)
			if (g_rx[i].conns[j].fd >= 0)
				close(g_rx[i].conns[j].fd);
		close(g_rx[i].epfd);
		free(g_rx[i].conns);
		free(g_rx[i].buf);
		free(g_rx[i].bits);
	}
	free(g_rx);
	g_rx = NULL;
}
