/*
 * herald_bench_pub.c: herald-bench's publishers. Over HTTP (--publish):
 * --pub-conns keep-alive connections with up to --pipeline requests in
 * flight each, at a fixed rate or as fast as the answers allow, each
 * request's body stamped with its send time ("t"). Into Redis
 * (--publish-redis): group_sends written by herald's own Redis layer from
 * --pub-conns sender threads. With --keep-publishing the HTTP publisher goes
 * on through an outage of its server: a broadcast that cannot be sent
 * (connect refused), is answered with an error or is not answered within
 * --publish-timeout counts as a failed publish, and the connection is tried
 * again at the next send.
 * Threads: the publisher thread (and its Redis sender threads); main reads
 * g_pub's atomic counters, and the rest once the publisher has finished.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "herald_bench.h"
#include "layer/layer.h"

/* ---- HTTP publisher ---- */
struct pconn {
	int fd;
	int inflight;
	uint64_t sent_at[MAX_PIPELINE]; /* ring of send times, for the answer's latency */
	uint64_t seq_at[MAX_PIPELINE];  /* and of the broadcasts' seqs, for loss tracking */
	int ring_head;
	char in[8192];
	size_t in_len;
};

struct pub_stats g_pub;
atomic_bool g_stop_pub;
struct sockaddr_in g_pub_addr;
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
		int tail = (pc->ring_head - pc->inflight + MAX_PIPELINE) % MAX_PIPELINE;
		if (track_on())
			track_answer(pc->seq_at[tail], status >= 200 && status < 300);
		if (status >= 200 && status < 300) {
			atomic_fetch_add_explicit(&g_pub.ok, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&g_pub.errors, 1, memory_order_relaxed);
			char why[96];
			snprintf(why, sizeof why, "publish answered %d", status);
			pub_error(why);
		}
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

/* The HTTP publisher's state, owned by its thread. */
struct hpub {
	struct pconn *pcs;
	int np;
	int rr; /* round robin over the connections */
	int epfd;
	char *req;
	size_t req_cap;
	uint64_t seq;
	uint64_t interval; /* fixed rate: ns between sends; 0 = as fast as allowed */
	uint64_t next;     /* fixed rate: when the next send is due */
	uint64_t end;      /* when sending stops */
};

static void
pub_drop(struct hpub *s, struct pconn *pc)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, pc->fd, NULL);
	close(pc->fd);
	pc->fd = -1;
}

/* The requests in flight on pc will never be answered: failed publishes. */
static void
pub_fail_inflight(struct pconn *pc)
{
	atomic_fetch_add(&g_pub.errors, (uint64_t)pc->inflight);
	for (int k = 0; k < pc->inflight && track_on(); k++)
		track_answer(
		    pc->seq_at[(pc->ring_head - pc->inflight + k + MAX_PIPELINE) % MAX_PIPELINE],
		    false);
	pc->inflight = 0;
}

/* --keep-publishing: a due broadcast that cannot go out now (no connection
 * to the server) is a failed publish; the schedule goes on. */
static void
pub_skip_due(struct hpub *s)
{
	atomic_fetch_add(&g_pub.errors, 1);
	s->next += s->interval;
	uint64_t t = now_ns();
	if (t > s->next + s->interval * 4) {
		uint64_t behind = (t - s->next) / s->interval;
		atomic_fetch_add(&g_pub.late, behind);
		s->next += behind * s->interval;
	}
}

/* --keep-publishing: reconnect the closed connections (a refused connect
 * on loopback answers at once); whether one is open. */
static bool
pub_revive(struct hpub *s)
{
	bool any = false;
	for (int i = 0; i < s->np; i++) {
		struct pconn *pc = &s->pcs[i];
		if (pc->fd < 0 && pub_connect(pc) == 0) {
			atomic_fetch_add(&g_pub.reconnects, 1);
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
			epoll_ctl(s->epfd, EPOLL_CTL_ADD, pc->fd, &ev);
		}
		any |= pc->fd >= 0;
	}
	return any;
}

/* Send one batch of requests that are due on a connection with room.
 * false: nothing more to send in this turn. */
static bool
pub_send_batch(struct hpub *s)
{
	if (s->interval && now_ns() < s->next)
		return false;
	if (opt.keep_publishing && !pub_revive(s)) {
		pub_skip_due(s);
		return false;
	}
	if (track_on() && !track_room(s->seq)) {
		/* the receivers have not checked the broadcast TRACK_RING back */
		pub_error("loss tracking ring full (receivers behind)");
		pub_skip_due(s);
		return false;
	}
	struct pconn *pc = NULL;
	for (int k = 0; k < s->np; k++) {
		struct pconn *cand = &s->pcs[(s->rr + k) % s->np];
		if (cand->fd >= 0 && cand->inflight < opt.pipeline) {
			pc = cand;
			s->rr = (s->rr + k + 1) % s->np;
			break;
		}
	}
	if (!pc)
		return false;
	/* as fast as possible: fill this connection's free pipeline slots
	 * with one write() (bounded by the buffer) */
	int room = s->interval ? 1 : opt.pipeline - pc->inflight;
	if (room > 16)
		room = 16;
	uint64_t ts[16];
	size_t len = 0;
	int batch = 0;
	while (batch < room) {
		size_t one = build_request(
		    s->req + len, s->req_cap - len, s->seq + (uint64_t)batch, &ts[batch]);
		if (one == 0)
			break;
		if (track_on())
			track_sent(s->seq + (uint64_t)batch, ts[batch]);
		len += one;
		batch++;
	}
	if (batch == 0) {
		pub_error("request too large");
		atomic_store(&g_stop_pub, true);
		return false;
	}
	size_t off = 0;
	int spins = 0;
	while (off < len && spins < 1000000) {
		ssize_t w = write(pc->fd, s->req + off, len - off);
		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		spins++;
	}
	if (off < len) {
		pub_error("publish write failed");
		atomic_fetch_add(&g_pub.errors, (uint64_t)batch);
		if (opt.keep_publishing || track_on()) {
			/* these seqs were handed out: they failed */
			for (int b = 0; b < batch && track_on(); b++)
				track_answer(s->seq + (uint64_t)b, false);
			s->seq += (uint64_t)batch;
			pub_fail_inflight(pc);
			if (s->interval)
				s->next += s->interval;
		}
		pub_drop(s, pc);
		return false;
	}
	for (int b = 0; b < batch; b++) {
		pc->sent_at[pc->ring_head] = ts[b];
		pc->seq_at[pc->ring_head] = s->seq + (uint64_t)b;
		pc->ring_head = (pc->ring_head + 1) % MAX_PIPELINE;
	}
	pc->inflight += batch;
	s->seq += (uint64_t)batch;
	atomic_fetch_add_explicit(&g_pub.sent, (uint64_t)batch, memory_order_relaxed);
	g_pub.last_ns = ts[batch - 1];
	if (s->interval) {
		s->next += s->interval;
		if (now_ns() > s->next + s->interval * 4) {
			/* fell behind: count and skip instead of bursting */
			uint64_t behind = (now_ns() - s->next) / s->interval;
			atomic_fetch_add(&g_pub.late, behind);
			s->next += behind * s->interval;
		}
	}
	return true;
}

/* Read the answers on connection i; a lost connection's in-flight requests
 * count as errors, and it is reconnected while sending goes on. */
static void
pub_read(struct hpub *s, uint32_t i)
{
	struct pconn *pc = &s->pcs[i];
	if (pc->fd < 0)
		return;
	ssize_t got = read(pc->fd, pc->in + pc->in_len, sizeof pc->in - pc->in_len);
	if (got > 0) {
		pc->in_len += (size_t)got;
		if (pub_responses(pc) >= 0 && pc->in_len < sizeof pc->in)
			return;
		pub_error("unparsable publish answer");
	} else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	} else {
		pub_error("publisher connection closed by server");
	}
	pub_fail_inflight(pc);
	pub_drop(s, pc);
	if (opt.keep_publishing)
		return; /* reconnected at the next send */
	if (now_ns() < s->end && atomic_load(&g_pub.reconnects) < 100 && pub_connect(pc) == 0) {
		atomic_fetch_add(&g_pub.reconnects, 1);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, pc->fd, &ev);
	}
}

/* Wait for answers or the next send time, and read them. */
static void
pub_wait(struct hpub *s)
{
	int timeout = 1;
	if (s->interval) {
		uint64_t n2 = now_ns();
		timeout = s->next > n2 ? (int)((s->next - n2) / 1000000) : 0;
		if (timeout > 50)
			timeout = 50;
	}
	struct epoll_event evs[MAX_PUB_CONNS];
	int k = epoll_wait(s->epfd, evs, MAX_PUB_CONNS, timeout);
	if (s->interval && k == 0 && s->next > now_ns()) {
		/* sub-millisecond remainder: spin politely */
		while (now_ns() < s->next && !atomic_load(&g_stop_pub))
			;
	}
	for (int i = 0; i < k; i++)
		pub_read(s, evs[i].data.u32);
}

/* Close what is left; what was still in flight is unanswered. */
static void
pub_finish(struct hpub *s)
{
	uint64_t lost = 0;
	for (int i = 0; i < s->np; i++)
		if (s->pcs[i].fd >= 0) {
			lost += (uint64_t)s->pcs[i].inflight;
			close(s->pcs[i].fd);
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
	close(s->epfd);
	atomic_store(&g_pub.done, true);
}

static void *
pub_main(void *arg)
{
	(void)arg;
	static struct pconn pcs[MAX_PUB_CONNS];
	static char req[BODY_MAX + 2048];
	struct hpub s = { .pcs = pcs, .np = opt.pub_conns, .req = req, .req_cap = sizeof req };
	for (int i = 0; i < s.np; i++) {
		int rc = pub_connect(&pcs[i]);
		if (rc != 0) {
			char why[128];
			snprintf(why, sizeof why, "publisher connect: %s", strerror(-rc));
			pub_error(why);
			pcs[i].fd = -1;
		}
	}
	uint64_t start = now_ns();
	s.end = start + (uint64_t)(opt.duration * 1e9);
	g_pub.first_ns = start;
	s.interval = opt.rate > 0 ? (uint64_t)(1e9 / opt.rate) : 0;
	s.next = start;
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < s.np; i++)
		if (pcs[i].fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
			epoll_ctl(s.epfd, EPOLL_CTL_ADD, pcs[i].fd, &ev);
		}
	while (!atomic_load(&g_stop_pub)) {
		uint64_t t = now_ns();
		bool sending = t < s.end;
		int total_inflight = 0;
		for (int i = 0; i < s.np; i++)
			total_inflight += pcs[i].inflight;
		if (!sending && total_inflight == 0)
			break;
		if (!sending && t > s.end + 10ull * 1000000000ull)
			break; /* answers overdue: give up */
		/* send what is due */
		for (int burst = 0; sending && burst < 64; burst++)
			if (!pub_send_batch(&s))
				break;
		pub_wait(&s);
		if (opt.keep_publishing) {
			/* an answer overdue fails its request and the connection */
			uint64_t t_now = now_ns(), timeout = (uint64_t)(opt.publish_timeout * 1e9);
			uint64_t late = t_now > timeout ? t_now - timeout : 0;
			for (int i = 0; i < s.np; i++) {
				struct pconn *pc = &pcs[i];
				int tail
				    = (pc->ring_head - pc->inflight + MAX_PIPELINE) % MAX_PIPELINE;
				if (pc->fd >= 0 && pc->inflight > 0 && pc->sent_at[tail] < late) {
					pub_error("publish answer overdue (--publish-timeout)");
					pub_fail_inflight(pc);
					pub_drop(&s, pc);
				}
			}
			continue;
		}
		bool any = false;
		for (int i = 0; i < s.np; i++)
			any |= pcs[i].fd >= 0;
		if (!any) {
			pub_error("no publisher connection left");
			break;
		}
	}
	pub_finish(&s);
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

void
pub_prepare(void)
{
	if (opt.body_mode[0] == 'h')
		g_body_prefix_len = (size_t)snprintf(g_body_prefix, sizeof g_body_prefix,
		    "{\"type\":\"notification_message\",\"message\":");
}

int
pub_redis_open(void)
{
	hr_layer_opts lo;
	hr_layer_opts_default(&lo);
	lo.prefix = opt.prefix;
	lo.capacity = (size_t)opt.redis_capacity;
	lo.hosts = &opt.redis_url;
	lo.n_hosts = 1;
	int rv = hr_layer_create(&g_rlayer, &hr_layer_redis_ops, &lo);
	if (rv != 0) {
		fprintf(stderr, "herald-bench: Redis layer: %s\n", hr_strerror(rv));
		return 2;
	}
	return 0;
}

void
pub_redis_close(void)
{
	hr_layer_destroy(g_rlayer);
	g_rlayer = NULL;
}

void *
pub_thread(void *arg)
{
	return g_rlayer ? pub_redis_run(arg) : pub_main(arg);
}
