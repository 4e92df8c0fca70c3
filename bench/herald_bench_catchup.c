/*
 * herald_bench_catchup.c: herald-bench --catchup K, clients catching up
 * after a reconnect (herald_bench.h, "catching up after a reconnect";
 * docs/PROTOCOL.md, "Recovery across reconnects"). The receivers of
 * herald_bench_recv.c carry the connections and call the hooks here for
 * each connection's connect, upgrade request, 101, message and failure;
 * each hook checks one connection's replay in place against its own
 * position (nothing allocated per frame). Main runs the phases: positions,
 * close, publish K over HTTP, wait for the server's history, reconnect all,
 * wait; then the report.
 * Threads: a connection's state belongs to its receiver while the run goes
 * on; main reads it once the atomic counts (release/acquire) say it is
 * final, or after rx_stop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/names.h"
#include "herald_bench.h"

enum { CU_NEW, CU_POS, CU_RECON, CU_DONE, CU_ERR };

/* What went wrong with a client; the names are the JSON keys. */
enum { CE_CONNECT, CE_CLOSED, CE_OFFSET, CE_DUP, CE_EPOCH, CE_RECOVERED, CE_PARSE, CE_N };
static const char *const ce_name[CE_N] = { "err_connect", "err_closed", "err_offset",
	"err_duplicate", "err_epoch", "err_recovered", "err_parse" };

struct cu_conn {
	uint64_t base;    /* the group's offset O when it first connected */
	uint64_t next;    /* the next offset its replay must bring */
	uint64_t t_start; /* the reconnect's connect() */
	uint64_t t_open;  /* the reconnect's 101 */
	uint64_t t_done;  /* its "recovered" frame, everything right */
	uint8_t state;
	uint8_t err;
	uint8_t epoch_len;
	char epoch[32];
};

_Atomic int g_cu_phase;
static struct cu_conn *g_cu; /* opt.n */
static _Atomic uint64_t g_pos, g_fail1, g_done, g_err;
static _Atomic uint64_t g_errs[CE_N];
static atomic_flag g_first_taken = ATOMIC_FLAG_INIT;
static char g_first[200]; /* the first error, written once by whoever takes the flag */

/* Main only. */
static struct {
	uint64_t base, after;     /* the group's offset before and after publishing */
	char epoch[32];           /* the group's epoch, as the clients saw it */
	double publish_s, wait_s; /* publishing K; then until the history has them */
	double cpu_s;             /* --server-pid: its CPU time over the reconnect, or -1 */
	char fatal[200];          /* why the run stopped before the end */
} g_run;

static volatile sig_atomic_t g_go; /* --catchup-hold: SIGUSR1 came */

static void
on_usr1(int sig)
{
	(void)sig;
	g_go = 1;
}

int
cu_check(bool http_publish)
{
	if (opt.catchup == 0) {
		if (opt.catchup_hold) {
			fprintf(stderr, "herald-bench: --catchup-hold needs --catchup\n");
			return 2;
		}
		return 0;
	}
	size_t gl = strlen(opt.group);
	if (opt.catchup < 1 || opt.catchup > 1000000 || !http_publish || opt.redis_url
	    || strchr(opt.path, '?') || gl > 60 || hr_name_check_group(opt.group, gl) != 0) {
		fprintf(stderr,
		    "herald-bench: --catchup K wants 1 <= K <= 1000000, --publish URL (HTTP), a "
		    "--url without a query (the bench adds ?recover=) and a --group of at most 60 "
		    "characters\n");
		return 2;
	}
	/* now: the script may send it as soon as it reads our line */
	struct sigaction sa = { .sa_handler = on_usr1 };
	if (opt.catchup_hold && sigaction(SIGUSR1, &sa, NULL) != 0) {
		perror("herald-bench: sigaction");
		return 2;
	}
	g_run.cpu_s = -1;
	g_cu = calloc((size_t)opt.n, sizeof *g_cu);
	if (g_cu == NULL) {
		fprintf(stderr, "herald-bench: out of memory\n");
		return 2;
	}
	return 0;
}

void
cu_free(void)
{
	free(g_cu);
	g_cu = NULL;
}

/* Client gi failed with e; the first failure of the run is described. */
static void cu_error(int gi, int e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
cu_error(int gi, int e, const char *fmt, ...)
{
	struct cu_conn *s = &g_cu[gi];
	s->state = CU_ERR;
	s->err = (uint8_t)e;
	if (!atomic_flag_test_and_set(&g_first_taken)) {
		char what[120];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof what, fmt, ap);
		va_end(ap);
		snprintf(g_first, sizeof g_first, "client %d: %s: %s", gi, ce_name[e], what);
	}
	atomic_fetch_add_explicit(&g_errs[e], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g_err, 1, memory_order_release);
}

void
cu_connect_start(int gi, uint64_t t)
{
	struct cu_conn *s = &g_cu[gi];
	if (s->state != CU_POS)
		return;
	s->state = CU_RECON;
	s->next = s->base + 1;
	s->t_start = t;
}

size_t
cu_request(int gi, char *buf, size_t cap)
{
	const struct cu_conn *s = gi >= 0 ? &g_cu[gi] : NULL;
	char pos[128] = "";
	if (s != NULL && s->state == CU_RECON)
		snprintf(pos, sizeof pos, "%s@%.*s:%" PRIu64, opt.group, (int)s->epoch_len,
		    s->epoch, s->base);
	int m = snprintf(buf, cap,
	    "GET %s?recover=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n\r\n",
	    opt.path, pos, opt.host, opt.port, opt.host, opt.port);
	return m > 0 && (size_t)m < cap ? (size_t)m : 0;
}

void
cu_open(int gi, uint64_t t)
{
	if (g_cu[gi].state == CU_RECON)
		g_cu[gi].t_open = t;
}

void
cu_fail(int gi, bool was_open, const char *why)
{
	struct cu_conn *s = &g_cu[gi];
	if (s->state == CU_NEW) {
		s->state = CU_ERR;
		atomic_fetch_add_explicit(&g_fail1, 1, memory_order_release);
	} else if (s->state == CU_RECON) {
		cu_error(gi, was_open ? CE_CLOSED : CE_CONNECT,
		    "%s after %" PRIu64 " of %ld envelopes", why, s->next - s->base - 1,
		    opt.catchup);
	}
}

/* The value of "key": among a message's first bytes: a string's contents
 * or a bare token (number, true, false); false when absent or cut off. The
 * first occurrence is the envelope's own: its keys come before "data". */
static bool
scan_val(const uint8_t *p, size_t n, const char *key, const uint8_t **v, size_t *vlen)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i + kl + 3 <= n; i++) {
		if (p[i] != '"' || memcmp(p + i + 1, key, kl) != 0 || p[i + 1 + kl] != '"'
		    || p[i + 2 + kl] != ':')
			continue;
		size_t j = i + kl + 3;
		if (j < n && p[j] == '"') {
			const uint8_t *q = memchr(p + j + 1, '"', n - j - 1);
			if (q == NULL)
				return false;
			*v = p + j + 1;
			*vlen = (size_t)(q - (p + j + 1));
			return true;
		}
		size_t k = j;
		while (k < n && p[k] != ',' && p[k] != '}')
			k++;
		if (k == n || k == j)
			return false;
		*v = p + j;
		*vlen = k - j;
		return true;
	}
	return false;
}

static bool
tok_eq(const uint8_t *v, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(v, s, n) == 0;
}

static bool
tok_u64(const uint8_t *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return true;
}

/* The message's group (must be opt.group), epoch and offset. */
static bool
scan_pos(const uint8_t *p, size_t n, const uint8_t **ep, size_t *epl, uint64_t *off)
{
	const uint8_t *g, *ov;
	size_t gl, ol;
	return scan_val(p, n, "group", &g, &gl) && tok_eq(g, gl, opt.group)
	    && scan_val(p, n, "epoch", ep, epl) && scan_val(p, n, "offset", &ov, &ol)
	    && tok_u64(ov, ol, off);
}

/* The "recovered" frame that ends a replay: recovered:true, missed:K, the
 * offset O + K, and every envelope before it. */
static void
recovered_frame(int gi, const uint8_t *p, size_t n, uint64_t off, uint64_t t)
{
	struct cu_conn *s = &g_cu[gi];
	uint64_t k = (uint64_t)opt.catchup, missed = 0;
	const uint8_t *rv, *mv;
	size_t rl, ml;
	if (!scan_val(p, n, "recovered", &rv, &rl) || !tok_eq(rv, rl, "true")) {
		cu_error(gi, CE_RECOVERED, "recovered is not true (offset %" PRIu64 ")", off);
		return;
	}
	if (!scan_val(p, n, "missed", &mv, &ml) || !tok_u64(mv, ml, &missed) || missed != k) {
		cu_error(gi, CE_RECOVERED, "missed %" PRIu64 ", want %" PRIu64, missed, k);
		return;
	}
	if (off != s->base + k || s->next != s->base + k + 1) {
		cu_error(gi, CE_RECOVERED,
		    "recovered at offset %" PRIu64 " after %" PRIu64 " envelopes", off,
		    s->next - s->base - 1);
		return;
	}
	/* the 101 and the replay may come in one read, whose time t was taken
	 * before the 101 was parsed */
	s->t_done = t > s->t_open ? t : s->t_open;
	s->state = CU_DONE;
	atomic_fetch_add_explicit(&g_done, 1, memory_order_release);
}

void
cu_message(int gi, const uint8_t *p, size_t n, uint64_t t)
{
	struct cu_conn *s = &g_cu[gi];
	const uint8_t *ty, *ep = NULL;
	size_t tyl, epl = 0;
	uint64_t off = 0;
	if (s->state != CU_NEW && s->state != CU_RECON)
		return; /* done or failed: later frames do not count */
	bool typed = scan_val(p, n, "type", &ty, &tyl);
	bool is_msg = typed && tok_eq(ty, tyl, "message");
	bool is_rec = typed && tok_eq(ty, tyl, "recovered");
	bool parsed = (is_msg || is_rec) && scan_pos(p, n, &ep, &epl, &off);
	if (s->state == CU_NEW) {
		/* the first connection: its position from "recovered" */
		if (is_rec && parsed && epl < sizeof s->epoch) {
			memcpy(s->epoch, ep, epl);
			s->epoch_len = (uint8_t)epl;
			s->base = off;
			s->state = CU_POS;
			atomic_fetch_add_explicit(&g_pos, 1, memory_order_release);
		}
		return;
	}
	if (!parsed) {
		cu_error(gi, CE_PARSE,
		    "a frame that is neither an envelope nor recovered of the group, after %" PRIu64
		    " envelopes",
		    s->next - s->base - 1);
		return;
	}
	if (epl != s->epoch_len || memcmp(ep, s->epoch, epl) != 0) {
		cu_error(gi, CE_EPOCH, "another epoch at offset %" PRIu64, off);
		return;
	}
	if (is_rec) {
		recovered_frame(gi, p, n, off, t);
		return;
	}
	if (off < s->next)
		cu_error(gi, CE_DUP, "offset %" PRIu64 " again, want %" PRIu64, off, s->next);
	else if (off > s->next || off > s->base + (uint64_t)opt.catchup)
		cu_error(gi, CE_OFFSET, "offset %" PRIu64 ", want %" PRIu64, off, s->next);
	else
		s->next++;
}

/* ---- main: the phases ---- */

/* Why the run stops (main only): into g_run.fatal. */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_run.fatal, sizeof g_run.fatal, fmt, ap);
	va_end(ap);
}

/* A blocking loopback connection with 5 s timeouts; the fd or -1. */
static int
blocking_connect(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = 5 };
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
	    || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0
	    || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0
	    || connect(fd, (const struct sockaddr *)to, sizeof *to) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One HTTP answer (with Content-Length, or none) read whole; its status,
 * or -1. */
static int
read_answer(int fd)
{
	static char in[8192];
	size_t have = 0;
	for (;;) {
		char *end = memmem(in, have, "\r\n\r\n", 4);
		if (end != NULL) {
			size_t head = (size_t)(end - in) + 4, body = 0;
			for (char *l = in; l < end; l++)
				if (*l == '\n' && strncasecmp(l + 1, "content-length:", 15) == 0)
					body = strtoul(l + 16, NULL, 10);
			if (have >= 12 && memcmp(in, "HTTP/1.", 7) == 0 && head + body <= sizeof in
			    && have >= head + body)
				return atoi(in + 9);
			if (head + body > sizeof in)
				return -1;
		}
		if (have == sizeof in)
			return -1;
		ssize_t got = read(fd, in + have, sizeof in - have);
		if (got <= 0)
			return -1;
		have += (size_t)got;
	}
}

/* POST K broadcasts over one keep-alive connection, one at a time, each
 * answered 2xx. 0, or -1 (g_run.fatal). */
static int
publish_k(void)
{
	static char req[BODY_MAX + 2048], body[BODY_MAX];
	int fd = blocking_connect(&g_pub_addr);
	if (fd < 0) {
		fatal("cannot connect to --publish: %s", strerror(errno));
		return -1;
	}
	for (long i = 0; i < opt.catchup; i++) {
		size_t bl = (size_t)snprintf(body, sizeof body,
		    "{\"type\":\"notification_message\",\"message\":{\"catchup\":%ld,\"pad\":\"",
		    i);
		while (bl + 3 < (size_t)opt.size)
			body[bl++] = 'x';
		memcpy(body + bl, "\"}}", 3);
		bl += 3;
		int h = snprintf(req, sizeof req,
		    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
		    "%s%sContent-Length: %zu\r\n\r\n",
		    opt.pub_path, opt.pub_host, opt.pub_port, opt.header,
		    opt.header[0] ? "\r\n" : "", bl);
		if (h < 0 || (size_t)h + bl > sizeof req) {
			fatal("publish request too long");
			break;
		}
		memcpy(req + h, body, bl);
		int st = write_all(fd, req, (size_t)h + bl) == 0 ? read_answer(fd) : -1;
		if (st < 200 || st > 299) {
			fatal("publish %ld of %ld: %s %d", i + 1, opt.catchup,
			    st < 0 ? "no answer" : "answered", st);
			break;
		}
	}
	close(fd);
	return g_run.fatal[0] ? -1 : 0;
}

/* The first "recovered" frame of opt.group among the whole frames in
 * b[0..n): 1 and its offset into *off; 0 when it is not there yet, with the
 * bytes of whole frames into *used; -1 for a frame herald does not send
 * (masked, or 64-bit length). */
static int
find_recovered(const uint8_t *b, size_t n, size_t *used, uint64_t *off)
{
	size_t pos = 0;
	while (n - pos >= 2) {
		size_t hl = 2;
		uint64_t len = b[pos + 1] & 0x7f;
		if (len == 127 || (b[pos + 1] & 0x80))
			return -1;
		if (len == 126) {
			if (n - pos < 4)
				break;
			len = ((uint64_t)b[pos + 2] << 8) | b[pos + 3];
			hl = 4;
		}
		if (n - pos < hl + len)
			break;
		const uint8_t *pl = b + pos + hl, *ty, *ep;
		size_t tyl, epl;
		bool text = (b[pos] & 0x0f) == 1;
		pos += hl + (size_t)len;
		if (text && scan_val(pl, len, "type", &ty, &tyl) && tok_eq(ty, tyl, "recovered")
		    && scan_pos(pl, len, &ep, &epl, off))
			return 1;
	}
	*used = pos;
	return 0;
}

/* The group's latest offset now, from the "recovered" frame a fresh
 * ?recover= connection gets. 0, or -1. */
static int
probe_offset(uint64_t *off)
{
	static uint8_t buf[16384];
	char req[1024];
	size_t rl = cu_request(-1, req, sizeof req), have = 0, used = 0;
	bool head = false;
	int fd = blocking_connect(&g_target);
	if (fd < 0)
		return -1;
	if (rl == 0 || write_all(fd, req, rl) != 0)
		goto fail;
	for (;;) {
		if (!head) {
			uint8_t *end = memmem(buf, have, "\r\n\r\n", 4);
			if (end != NULL) {
				if (have < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
					goto fail;
				head = true;
				used = (size_t)(end - buf) + 4;
				memmove(buf, buf + used, have - used);
				have -= used;
			}
		}
		if (head) {
			int found = find_recovered(buf, have, &used, off);
			if (found != 0) {
				close(fd);
				return found > 0 ? 0 : -1;
			}
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		if (have == sizeof buf)
			goto fail;
		ssize_t got = read(fd, buf + have, sizeof buf - have);
		if (got <= 0)
			goto fail;
		have += (size_t)got;
	}
fail:
	close(fd);
	return -1;
}

/* Switch the receivers to phase ph and wait (bounded) until each did it. */
static bool
set_phase(int ph)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	atomic_store(&g_cu_phase, ph);
	for (;;) {
		bool all = true;
		for (int i = 0; i < opt.threads; i++)
			all &= atomic_load(&g_rx[i].cu_phase) == ph;
		if (all)
			return true;
		if (now_ns() > deadline)
			return false;
		usleep(1000);
	}
}

/* Every client has its position, and they agree on it. */
static bool
positions(void)
{
	uint64_t deadline = now_ns() + (uint64_t)(opt.connect_timeout * 1e9), n = (uint64_t)opt.n;
	while (atomic_load_explicit(&g_pos, memory_order_acquire)
	        + atomic_load_explicit(&g_fail1, memory_order_acquire)
	    < n) {
		if (now_ns() > deadline)
			break;
		usleep(2000);
	}
	uint64_t pos = atomic_load_explicit(&g_pos, memory_order_acquire);
	if (pos < n) {
		fatal("%" PRIu64 " of %d clients got no position (open, then \"recovered\")",
		    n - pos, opt.n);
		return false;
	}
	const struct cu_conn *a = &g_cu[0];
	for (int i = 1; i < opt.n; i++)
		if (g_cu[i].base != a->base || g_cu[i].epoch_len != a->epoch_len
		    || memcmp(g_cu[i].epoch, a->epoch, a->epoch_len) != 0) {
			fatal("clients 0 and %d got different positions: is something else "
			      "publishing to %s?",
			    i, opt.group);
			return false;
		}
	g_run.base = a->base;
	memcpy(g_run.epoch, a->epoch, a->epoch_len);
	return true;
}

/* Probe until the group's latest offset is O + K (bounded: 5 s). */
static bool
history_has_k(void)
{
	uint64_t want = g_run.base + (uint64_t)opt.catchup, off = 0;
	uint64_t deadline = now_ns() + 5000000000ull;
	for (;;) {
		if (probe_offset(&off) != 0) {
			fatal("the probe connection got no \"recovered\" frame");
			return false;
		}
		g_run.after = off;
		if (off == want)
			return true;
		if (off > want) {
			fatal("the group is at offset %" PRIu64 ", past %" PRIu64
			      ": is something else publishing to %s?",
			    off, want, opt.group);
			return false;
		}
		if (now_ns() > deadline) {
			fatal("the group's offset is %" PRIu64 " after 5 s, want %" PRIu64, off,
			    want);
			return false;
		}
		usleep(10000);
	}
}

void
cu_run(void)
{
	if (!positions())
		return;
	if (!opt.quiet)
		fprintf(stderr, "%d clients at %s@%s:%" PRIu64 "\n", opt.n, opt.group, g_run.epoch,
		    g_run.base);
	if (!set_phase(CU_PHASE_CLOSE)) {
		fatal("the receivers did not close their connections within 5 s");
		return;
	}
	uint64_t t = now_ns();
	if (publish_k() != 0)
		return;
	uint64_t t2 = now_ns();
	g_run.publish_s = secs(t, t2);
	if (!history_has_k())
		return;
	g_run.wait_s = secs(t2, now_ns());
	if (!opt.quiet)
		fprintf(stderr, "published %ld in %.3f s; offset %" PRIu64 " after %.3f s more\n",
		    opt.catchup, g_run.publish_s, g_run.after, g_run.wait_s);
	if (opt.catchup_hold) {
		fprintf(stderr, "herald-bench: holding before the reconnect (SIGUSR1 to go on)\n");
		uint64_t deadline = now_ns() + (uint64_t)(opt.connect_timeout * 1e9);
		while (!g_go && now_ns() < deadline)
			usleep(1000);
		if (!g_go) {
			fatal("no SIGUSR1 within --connect-timeout (--catchup-hold)");
			return;
		}
	}
	double cpu0 = read_cpu_s(opt.server_pid);
	if (!set_phase(CU_PHASE_RECONNECT)) {
		fatal("the receivers did not start reconnecting within 5 s");
		return;
	}
	uint64_t deadline = now_ns() + (uint64_t)(opt.connect_timeout * 1e9), n = (uint64_t)opt.n;
	while (atomic_load_explicit(&g_done, memory_order_acquire)
	        + atomic_load_explicit(&g_err, memory_order_acquire)
	    < n) {
		if (now_ns() > deadline)
			break;
		usleep(1000);
	}
	double cpu1 = read_cpu_s(opt.server_pid);
	if (cpu0 >= 0 && cpu1 >= 0)
		g_run.cpu_s = cpu1 - cpu0;
}

/* What the clients did, after rx_stop. */
struct cu_tally {
	uint64_t caught, timeouts, replayed;
	uint64_t first_start, last_start, last_done;
	struct hr_hist from_start, from_open;
};

static void
tally(struct cu_tally *t)
{
	hr_hist_init(&t->from_start);
	hr_hist_init(&t->from_open);
	t->first_start = UINT64_MAX;
	for (int i = 0; i < opt.n; i++) {
		const struct cu_conn *s = &g_cu[i];
		if (s->t_start == 0)
			continue;
		if (s->t_start < t->first_start)
			t->first_start = s->t_start;
		if (s->t_start > t->last_start)
			t->last_start = s->t_start;
		t->replayed += s->next - s->base - 1;
		if (s->state == CU_RECON)
			t->timeouts++;
		if (s->state != CU_DONE)
			continue;
		t->caught++;
		hr_hist_record(&t->from_start, s->t_done - s->t_start);
		hr_hist_record(&t->from_open, s->t_done - s->t_open);
		if (s->t_done > t->last_done)
			t->last_done = s->t_done;
	}
	if (t->first_start == UINT64_MAX)
		t->first_start = 0;
}

/* s as a JSON string's contents: our own messages, but be safe. */
static void
json_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? '\'' : *s, f);
}

int
cu_report(const char *url)
{
	static struct cu_tally t;
	tally(&t);
	uint64_t n = (uint64_t)opt.n, errors = n - t.caught;
	double all_s = secs(t.first_start, t.last_done);
	bool ok = t.caught == n && g_run.fatal[0] == '\0';
	const char *why = g_run.fatal[0] ? g_run.fatal : g_first;
	double ms[6] = { hr_hist_pct(&t.from_start, 50) / 1e6, hr_hist_pct(&t.from_start, 99) / 1e6,
		(double)t.from_start.max / 1e6, hr_hist_pct(&t.from_open, 50) / 1e6,
		hr_hist_pct(&t.from_open, 99) / 1e6, (double)t.from_open.max / 1e6 };
	if (!opt.quiet) {
		fprintf(stderr,
		    "\n== herald-bench --catchup %ld %s ==\n"
		    "clients      %" PRIu64 " caught up, %" PRIu64 " not (%" PRIu64
		    " timed out); %" PRIu64 " envelopes replayed\n"
		    "reconnects   spread over %.3f s (--connect-rate %.0f)\n"
		    "catch-up ms  from connect(): p50 %.3f  p99 %.3f  max %.3f\n"
		    "             from the 101:   p50 %.3f  p99 %.3f  max %.3f\n"
		    "all caught   %.3f s from the first reconnect to the last client caught up\n"
		    "server CPU   %.3f s over the reconnect (-1: no --server-pid)\n",
		    opt.catchup, url, t.caught, errors, t.timeouts, t.replayed,
		    secs(t.first_start, t.last_start), opt.connect_rate, ms[0], ms[1], ms[2], ms[3],
		    ms[4], ms[5], all_s, g_run.cpu_s);
		if (why[0])
			fprintf(stderr, "error: %s\n", why);
	}
	printf("{\"mode\":\"catchup\",\"url\":\"%s\",\"group\":\"%s\",\"connections\":%d"
	       ",\"k\":%ld,\"epoch\":\"%s\",\"offset_before\":%" PRIu64 ",\"offset_after\":%" PRIu64
	       ",\"publish_s\":%.3f,\"history_wait_s\":%.3f,\"caught_up\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"err_position\":%" PRIu64 ",\"err_timeout\":%" PRIu64,
	    url, opt.group, opt.n, opt.catchup, g_run.epoch, g_run.base, g_run.after,
	    g_run.publish_s, g_run.wait_s, t.caught, errors, (uint64_t)atomic_load(&g_fail1),
	    t.timeouts);
	for (int e = 0; e < CE_N; e++)
		printf(",\"%s\":%" PRIu64, ce_name[e], (uint64_t)atomic_load(&g_errs[e]));
	printf(",\"replayed_frames\":%" PRIu64 ",\"connect_rate\":%.0f,\"reconnect_spread_s\":%.3f"
	       ",\"catchup_p50_ms\":%.3f,\"catchup_p99_ms\":%.3f,\"catchup_max_ms\":%.3f"
	       ",\"after_101_p50_ms\":%.3f,\"after_101_p99_ms\":%.3f,\"after_101_max_ms\":%.3f"
	       ",\"all_caught_up_s\":%.3f,\"server_cpu_s\":%.3f,\"all_within_1s\":%s,\"ok\":%s"
	       ",\"first_error\":\"",
	    t.replayed, opt.connect_rate, secs(t.first_start, t.last_start), ms[0], ms[1], ms[2],
	    ms[3], ms[4], ms[5], all_s, g_run.cpu_s, ok && all_s <= 1.0 ? "true" : "false",
	    ok ? "true" : "false");
	json_text(stdout, why);
	printf("\"}\n");
	fflush(stdout);
	return ok ? 0 : 1;
}
