/*
 * raw-ceiling: the least a WebSocket broadcast server can do, as a yardstick.
 *
 * One thread, one epoll loop.  It upgrades any GET with "Upgrade: websocket"
 * (any path) and treats any POST as a publish: the frame's payload is the
 * body's "message" value when the body is {"type":..,"message":..}, else the
 * body itself.  The frame is built once into a ring of recent frames and every
 * WebSocket connection owns only a cursor into that ring:
 *   --batch 1   one write() per frame per socket, as soon as it is published;
 *   --batch B   frames are queued and flushed at the end of each loop turn (or
 *               when B are pending), up to B frames per writev().
 * A connection that falls a whole ring behind is closed (counted).  Prints
 * "raw-ceiling listening on http://127.0.0.1:PORT" when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>

#define RING 4096u         /* frames kept for laggards */
#define REQ_MAX (1u << 20) /* largest HTTP request */
#define MAX_BATCH 64

struct frame {
	uint32_t len;
	uint8_t data[]; /* header + payload */
};

enum kind { K_HTTP, K_WS };

struct conn {
	int fd;
	uint8_t kind;
	bool want_out; /* EPOLLOUT registered */
	bool dirty;    /* on the flush list */
	bool reaped;   /* on the reap list */
	bool paused;   /* HTTP: publishes held back while sockets lag */
	uint32_t off;  /* bytes of frame `next` already written */
	uint64_t next; /* sequence of the next frame to write */
	char *in;      /* HTTP only: request bytes */
	uint32_t in_len, in_cap;
	char *out; /* HTTP only: pending answer bytes */
	uint32_t out_len;
};

static struct frame *g_ring[RING];
static uint64_t g_seq; /* next frame sequence */
static int g_batch = 1;
static int g_epfd;
static struct conn **g_dirty;
static size_t g_ndirty, g_dirty_cap;
static uint64_t g_ws, g_published, g_lagging;
static volatile sig_atomic_t g_stop;
static size_t g_nblocked;      /* WebSocket connections waiting for EPOLLOUT */
static struct conn **g_paused; /* publishers held back (backpressure) */
static size_t g_npaused, g_paused_cap;

static void
on_signal(int s)
{
	(void)s;
	g_stop = 1;
}

static void
conn_close(struct conn *c)
{
	epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->kind == K_WS)
		g_ws--;
	if (c->kind == K_WS && c->want_out)
		g_nblocked--;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	/* freed after the loop turn, see reap */
}

static struct conn **g_reap;
static size_t g_nreap, g_reap_cap;

static void
reap_later(struct conn *c)
{
	if (c->reaped)
		return;
	c->reaped = true;
	if (c->fd >= 0)
		conn_close(c);
	if (g_nreap == g_reap_cap) {
		size_t cap = g_reap_cap ? g_reap_cap * 2 : 64;
		struct conn **n = realloc(g_reap, cap * sizeof *n);
		if (!n) {
			fprintf(stderr, "raw-ceiling: out of memory\n");
			exit(1);
		}
		g_reap = n;
		g_reap_cap = cap;
	}
	g_reap[g_nreap++] = c;
}

static void
set_out(struct conn *c, bool on)
{
	if (c->want_out == on)
		return;
	struct epoll_event ev
	    = { .events = (c->paused ? 0 : EPOLLIN) | (on ? EPOLLOUT : 0), .data.ptr = c };
	epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = on;
	if (c->kind == K_WS)
		g_nblocked += on ? 1 : (size_t)-1;
}

/* Write what is pending on a WebSocket connection, up to g_batch frames per
 * system call.  Returns -1 when the connection died. */
static int
ws_flush(struct conn *c, int max_calls)
{
	for (int calls = 0; calls < max_calls && c->next < g_seq; calls++) {
		if (g_seq - c->next > RING) {
			g_lagging++;
			return -1;
		}
		struct iovec iov[MAX_BATCH];
		int n = 0;
		for (uint64_t s = c->next; s < g_seq && n < g_batch; s++, n++) {
			struct frame *f = g_ring[s % RING];
			uint32_t skip = s == c->next ? c->off : 0;
			iov[n].iov_base = f->data + skip;
			iov[n].iov_len = f->len - skip;
		}
		ssize_t w = n == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len)
		                   : writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				set_out(c, true);
				return 0;
			}
			return -1;
		}
		size_t left = (size_t)w;
		while (left > 0) {
			struct frame *f = g_ring[c->next % RING];
			size_t rest = f->len - c->off;
			if (left >= rest) {
				left -= rest;
				c->next++;
				c->off = 0;
			} else {
				c->off += (uint32_t)left;
				left = 0;
			}
		}
		if (c->off) {
			set_out(c, true);
			return 0;
		}
	}
	if (c->next < g_seq)
		set_out(c, true); /* more, next turn */
	else
		set_out(c, false);
	return 0;
}

static struct conn **g_ws_list;
static size_t g_nws_list, g_ws_list_cap;

/* value span of key "message" in a JSON object, else the whole body */
static void
message_span(const char *b, size_t n, size_t *off, size_t *len)
{
	*off = 0;
	*len = n;
	const char *k = memmem(b, n, "\"message\"", 9);
	if (!k)
		return;
	size_t i = (size_t)(k - b) + 9;
	while (i < n && (b[i] == ' ' || b[i] == ':' || b[i] == '\t' || b[i] == '\n'))
		i++;
	if (i >= n)
		return;
	size_t start = i;
	int depth = 0;
	bool str = false;
	for (; i < n; i++) {
		char ch = b[i];
		if (str) {
			if (ch == '\\') {
				i++;
			} else if (ch == '"') {
				str = false;
				if (depth == 0) {
					i++;
					break;
				}
			}
			continue;
		}
		if (ch == '"')
			str = true;
		else if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']') {
			if (depth == 0)
				break;
			if (--depth == 0) {
				i++;
				break;
			}
		} else if (depth == 0 && ch == ',')
			break;
	}
	if (i > n)
		i = n;
	*off = start;
	*len = i - start;
}

static int
publish(const char *body, size_t n)
{
	size_t off, len;
	message_span(body, n, &off, &len);
	size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
	struct frame *f = malloc(sizeof *f + hl + len);
	if (!f)
		return -1;
	f->data[0] = 0x81;
	if (hl == 2) {
		f->data[1] = (uint8_t)len;
	} else if (hl == 4) {
		f->data[1] = 126;
		f->data[2] = (uint8_t)(len >> 8);
		f->data[3] = (uint8_t)len;
	} else {
		f->data[1] = 127;
		for (int i = 0; i < 8; i++)
			f->data[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(f->data + hl, body + off, len);
	f->len = (uint32_t)(hl + len);
	/* the slot being reused: anyone still needing it is a whole ring behind */
	free(g_ring[g_seq % RING]);
	g_ring[g_seq % RING] = f;
	g_seq++;
	g_published++;
	for (size_t i = 0; i < g_nws_list; i++) {
		struct conn *c = g_ws_list[i];
		if (c->fd < 0)
			continue;
		if (g_batch == 1) {
			if (!c->want_out && ws_flush(c, 1) != 0)
				reap_later(c);
		} else if (!c->dirty) {
			c->dirty = true;
			g_dirty[g_ndirty++] = c;
		}
	}
	return 0;
}

static void
flush_dirty(void)
{
	for (size_t i = 0; i < g_ndirty; i++) {
		struct conn *c = g_dirty[i];
		c->dirty = false;
		if (c->fd >= 0 && !c->want_out && ws_flush(c, 4) != 0)
			reap_later(c);
	}
	g_ndirty = 0;
}

static void
http_answer(struct conn *c, const char *status, const char *body)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf,
	    "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    status, strlen(body), body);
	if (n < 0 || c->out_len + (uint32_t)n > 65536)
		return;
	char *o = realloc(c->out, c->out_len + (size_t)n);
	if (!o)
		return;
	c->out = o;
	memcpy(c->out + c->out_len, buf, (size_t)n);
	c->out_len += (uint32_t)n;
}

static int
http_flush(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t w = write(c->fd, c->out, c->out_len);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				set_out(c, true);
				return 0;
			}
			return -1;
		}
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (uint32_t)w;
	}
	set_out(c, false);
	return 0;
}

static const char *
header_value(const char *head, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i + nl + 2 < n; i++) {
		if (head[i] != '\n' || strncasecmp(head + i + 1, name, nl) != 0
		    || head[i + 1 + nl] != ':')
			continue;
		const char *v = head + i + 2 + nl;
		while (*v == ' ')
			v++;
		const char *e = memchr(v, '\r', (size_t)(head + n - v));
		if (!e)
			return NULL;
		*vlen = (size_t)(e - v);
		return v;
	}
	return NULL;
}

static int
upgrade(struct conn *c, const char *head, size_t hn)
{
	size_t kl;
	const char *key = header_value(head, hn, "Sec-WebSocket-Key", &kl);
	if (!key || kl > 64) {
		http_answer(c, "400 Bad Request", "{\"error\":\"no Sec-WebSocket-Key\"}");
		return 0;
	}
	char cat[128];
	memcpy(cat, key, kl);
	memcpy(cat + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
	unsigned char sha[SHA_DIGEST_LENGTH];
	SHA1((unsigned char *)cat, kl + 36, sha);
	unsigned char acc[64];
	EVP_EncodeBlock(acc, sha, SHA_DIGEST_LENGTH);
	char resp[256];
	int n = snprintf(resp, sizeof resp,
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	    acc);
	if (write(c->fd, resp, (size_t)n) != n)
		return -1;
	c->kind = K_WS;
	c->next = g_seq; /* only frames published from now on */
	c->off = 0;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->in_cap = c->out_len = 0;
	if (g_nws_list == g_ws_list_cap) {
		size_t cap = g_ws_list_cap ? g_ws_list_cap * 2 : 1024;
		struct conn **l = realloc(g_ws_list, cap * sizeof *l);
		struct conn **d = realloc(g_dirty, cap * sizeof *d);
		if (!l || !d) {
			fprintf(stderr, "raw-ceiling: out of memory\n");
			exit(1);
		}
		g_ws_list = l;
		g_dirty = d;
		g_ws_list_cap = g_dirty_cap = cap;
	}
	g_ws_list[g_nws_list++] = c;
	g_ws++;
	return 0;
}

/* Frames the furthest-behind WebSocket connection still has to write. */
static uint64_t
max_lag(void)
{
	uint64_t lag = 0;
	if (g_nblocked == 0)
		return 0;
	for (size_t i = 0; i < g_nws_list; i++)
		if (g_ws_list[i]->fd >= 0 && g_seq - g_ws_list[i]->next > lag)
			lag = g_seq - g_ws_list[i]->next;
	return lag;
}

/* Backpressure: while a socket lags half a ring behind, stop reading
 * publishers instead of closing the laggard; they resume at a quarter. */
static void
pause_publisher(struct conn *c)
{
	if (g_npaused == g_paused_cap) {
		size_t cap = g_paused_cap ? g_paused_cap * 2 : 16;
		struct conn **n = realloc(g_paused, cap * sizeof *n);
		if (!n) {
			fprintf(stderr, "raw-ceiling: out of memory\n");
			exit(1);
		}
		g_paused = n;
		g_paused_cap = cap;
	}
	c->paused = true;
	g_paused[g_npaused++] = c;
	struct epoll_event ev = { .events = c->want_out ? EPOLLOUT : 0, .data.ptr = c };
	epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int http_process(struct conn *c);

static void
resume_publishers(void)
{
	if (g_npaused == 0 || max_lag() > RING / 4)
		return;
	size_t n = g_npaused;
	g_npaused = 0;
	for (size_t i = 0; i < n; i++) {
		struct conn *c = g_paused[i];
		if (c->fd < 0 || c->reaped)
			continue;
		c->paused = false;
		struct epoll_event ev
		    = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c };
		epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
		if (http_process(c) != 0)
			reap_later(c);
	}
}

/* Handle every complete request in c->in. */
static int
http_process(struct conn *c)
{
	for (int guard = 0; guard < 1024 && c->kind == K_HTTP; guard++) {
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!end) {
			if (c->in_len > 16384)
				return -1;
			break;
		}
		size_t hn = (size_t)(end - c->in) + 4;
		size_t cl_len;
		const char *cl = header_value(c->in, hn, "Content-Length", &cl_len);
		size_t body = cl ? strtoul(cl, NULL, 10) : 0;
		if (body > REQ_MAX - hn)
			return -1;
		if (c->in_len < hn + body)
			break;
		if (strncmp(c->in, "GET ", 4) == 0) {
			size_t ul;
			const char *up = header_value(c->in, hn, "Upgrade", &ul);
			if (up && ul == 9 && strncasecmp(up, "websocket", 9) == 0) {
				if (c->in_len != hn)
					return -1; /* no pipelining into an upgrade */
				return upgrade(c, c->in, hn);
			}
			http_answer(c, "200 OK", "{\"status\":\"ok\"}");
		} else if (strncmp(c->in, "POST ", 5) == 0) {
			if (max_lag() > RING / 2) {
				pause_publisher(c);
				break;
			}
			if (publish(c->in + hn, body) != 0)
				http_answer(
				    c, "503 Service Unavailable", "{\"error\":\"no memory\"}");
			else
				http_answer(c, "202 Accepted", "{}");
		} else {
			http_answer(c, "405 Method Not Allowed", "{\"error\":\"method\"}");
		}
		memmove(c->in, c->in + hn + body, c->in_len - hn - body);
		c->in_len -= (uint32_t)(hn + body);
		if (g_batch > 1 && g_seq > 0 && g_ndirty > 0) {
			/* B frames pending for someone: flush now */
			struct conn *d0 = g_dirty[0];
			if (g_seq - d0->next >= (uint64_t)g_batch)
				flush_dirty();
		}
	}
	return http_flush(c);
}

static void
on_event(struct conn *c, uint32_t ev)
{
	if (c->kind == K_WS) {
		if (ev & EPOLLIN) {
			char sink[4096];
			ssize_t r = read(c->fd, sink, sizeof sink);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				reap_later(c);
				return;
			}
		}
		if ((ev & (EPOLLERR | EPOLLHUP)) || ((ev & EPOLLOUT) && ws_flush(c, 4) != 0))
			reap_later(c);
		return;
	}
	if (ev & EPOLLOUT && http_flush(c) != 0) {
		reap_later(c);
		return;
	}
	if (c->paused) {
		if (ev & (EPOLLERR | EPOLLHUP))
			reap_later(c);
		return;
	}
	if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	for (int rounds = 0; rounds < 8; rounds++) {
		if (c->in_cap - c->in_len < 4096) {
			uint32_t cap = c->in_cap ? c->in_cap * 2 : 8192;
			if (cap > REQ_MAX + 8192) {
				reap_later(c);
				return;
			}
			char *n = realloc(c->in, cap);
			if (!n) {
				reap_later(c);
				return;
			}
			c->in = n;
			c->in_cap = cap;
		}
		ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r <= 0) {
			reap_later(c);
			return;
		}
		c->in_len += (uint32_t)r;
		if (http_process(c) != 0) {
			reap_later(c);
			return;
		}
		if (c->kind == K_WS)
			return;
	}
}

int
main(int argc, char **argv)
{
	int port = 0;
	const char *host = "127.0.0.1";
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "p:H:b:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'H':
			host = optarg;
			break;
		case 'b':
			g_batch = atoi(optarg);
			break;
		case 'h':
			printf("usage: raw-ceiling [--host 127.0.0.1] [--port P] [--batch 1..%d]\n",
			    MAX_BATCH);
			return 0;
		default:
			return 2;
		}
	}
	struct in_addr ia;
	if (inet_pton(AF_INET, host, &ia) != 1 || (ntohl(ia.s_addr) >> 24) != 127) {
		fprintf(stderr, "raw-ceiling: --host must be a 127.x.x.x address\n");
		return 2;
	}
	if (g_batch < 1 || g_batch > MAX_BATCH || port < 0 || port > 65535) {
		fprintf(stderr, "raw-ceiling: --batch must be 1..%d, --port 0..65535\n", MAX_BATCH);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a
	    = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = ia };
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
		fprintf(stderr, "raw-ceiling: cannot listen on %s:%d: %s\n", host, port,
		    strerror(errno));
		return 2;
	}
	/* warm up libcrypto now so its one-off allocations do not count per connection */
	unsigned char warm[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)"x", 1, warm);
	socklen_t al = sizeof a;
	getsockname(lfd, (struct sockaddr *)&a, &al);
	g_epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (g_epfd < 0 || epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &lev) != 0) {
		perror("raw-ceiling: epoll");
		return 1;
	}
	printf(
	    "raw-ceiling listening on http://%s:%d (batch=%d)\n", host, ntohs(a.sin_port), g_batch);
	fflush(stdout);

	struct epoll_event evs[1024];
	while (!g_stop) {
		int n = epoll_wait(g_epfd, evs, 1024, 200);
		if (n < 0 && errno != EINTR) {
			perror("raw-ceiling: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				for (int k = 0; k < 256; k++) {
					int cfd = accept4(
					    lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (cfd < 0)
						break;
					struct conn *nc = calloc(1, sizeof *nc);
					if (!nc) {
						close(cfd);
						continue;
					}
					nc->fd = cfd;
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event ev
					    = { .events = EPOLLIN, .data.ptr = nc };
					if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, cfd, &ev) != 0) {
						close(cfd);
						free(nc);
					}
				}
				continue;
			}
			if (c->fd >= 0)
				on_event(c, evs[i].events);
		}
		if (g_batch > 1)
			flush_dirty();
		resume_publishers();
		if (g_nreap) {
			/* drop reaped connections from the WebSocket list, then free them */
			size_t k = 0;
			for (size_t i = 0; i < g_nws_list; i++)
				if (g_ws_list[i]->fd >= 0)
					g_ws_list[k++] = g_ws_list[i];
			g_nws_list = k;
			for (size_t i = 0; i < g_nreap; i++)
				free(g_reap[i]);
			g_nreap = 0;
		}
	}
	fprintf(stderr, "raw-ceiling: %llu published, %llu ws open, %llu laggards closed\n",
	    (unsigned long long)g_published, (unsigned long long)g_ws,
	    (unsigned long long)g_lagging);
	return 0;
}
