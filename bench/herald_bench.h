/*
 * herald_bench.h: private to herald-bench, shared by its seven files:
 *  - herald_bench.c: main, the checks of the options and the run (connect,
 *    settle, publish and drain, or hold idle);
 *  - herald_bench_opts.c: the command line (opt, getopt, usage);
 *  - herald_bench_recv.c: the WebSocket receivers (one epoll thread each);
 *  - herald_bench_pub.c: the publishers (HTTP keep-alive with pipelining,
 *    or group_sends written into Redis by herald's own layer);
 *  - herald_bench_report.c: /proc readings of the server, and the summary
 *    and JSON line at the end;
 *  - herald_bench_track.c: with --report-interval, which broadcast reached
 *    which connection (losses), and the JSON line of each interval;
 *  - herald_bench_catchup.c: --catchup K, N clients K frames behind
 *    resuming with ?recover= at once, and how long each takes.
 * Threads: main, the receivers, the publisher(s); the shared counters are
 * atomics, the rest is written before the threads start or after they end.
 */
#ifndef HERALD_BENCH_H
#define HERALD_BENCH_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "bench_hist.h"

#define HEAD_MAX 192        /* payload bytes kept per message for the scans */
#define RX_BUF (256 * 1024) /* per receiver thread */
#define MAX_PUB_CONNS 64
#define MAX_PIPELINE 256
#define BODY_MAX 65536

/* ---- options (set by main before any thread starts) ---- */
struct bench_opts {
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
	double churn; /* percent of the connections closed and reopened per minute */
	double report_interval;  /* > 0: one JSON line per interval (and loss tracking) */
	const char *report_file; /* the interval lines go here instead of stdout */
	bool keep_publishing;    /* HTTP: go on through refused connects and errors */
	double publish_timeout;  /* --keep-publishing: an answer later than this fails */
	long catchup;            /* > 0: --catchup K (herald_bench_catchup.c) */
	bool catchup_hold;       /* --catchup-hold: wait for SIGUSR1 before reconnecting */
};
extern struct bench_opts opt;

static inline uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- command line (herald_bench_opts.c) ---- */
/* Defaults, then the command line into opt: -1 to go on, else the exit code
 * (0 after --help, 2 for an unknown option). *url and *pub get --url and
 * --publish (borrowed from argv), NULL when absent. */
int parse_args(int argc, char **argv, const char **url, const char **pub);
void usage(FILE *f);
/* scheme://host:port/path into host, *port and path (loopback checks are
 * the caller's: loopback_host); -1 if malformed or too long. */
int parse_url(const char *url, const char *scheme, char *host, size_t hcap, int *port, char *path,
    size_t pcap);
/* h as an IPv4 address ("localhost" taken as 127.0.0.1) into out; whether
 * it is a loopback address. */
bool loopback_host(const char *h, struct in_addr *out);

/* ---- receivers (herald_bench_recv.c) ---- */
struct conn;

#define CLOSING_MAX 64 /* churn: connections waiting for the server's close frame */

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
	/* --churn */
	_Atomic uint64_t churned;            /* closed by us with a close frame */
	_Atomic uint64_t reopened;           /* churned slots open again */
	_Atomic uint64_t reconnect_failures; /* reconnects that did not reach the 101 */
	_Atomic uint64_t close_timeouts;     /* no close frame back within 2 s */
	uint64_t next_churn_ns;
	int churn_cursor;
	int closing[CLOSING_MAX];
	int n_closing;
	/* --report-interval: interval histograms (the receiver records into
	 * ihist[epoch & 1]; main flips the epoch and reads the other one once
	 * epoch_seen says the receiver moved on), and loss tracking: bits holds
	 * TRACK_RING bits per connection (broadcast seq received), fin_seq is
	 * the next broadcast this receiver checks */
	struct hr_hist ihist[2];
	_Atomic unsigned epoch_seen;
	uint64_t *bits;
	uint64_t fin_seq;
	_Atomic uint64_t fin_done;    /* fin_seq, for main */
	_Atomic uint64_t late_frames; /* received after their broadcast was checked */
	_Atomic uint64_t dup_frames;  /* the same broadcast twice on one connection */
	_Atomic uint64_t no_seq;      /* frames without a parsable "seq" */
	_Atomic int cu_phase;         /* --catchup: the last phase it carried out */
};

extern struct rx *g_rx;             /* opt.threads of them */
extern struct sockaddr_in g_target; /* the WebSocket server */

/* Build the upgrade request every connection sends; -1 if it does not fit
 * (path too long). */
int rx_prepare(void);
/* Start opt.threads receivers over opt.n connections at opt.connect_rate;
 * -1 (message printed) if memory, epoll or a thread fails. */
int rx_start(void);
/* Stop and join the receivers; rx_free then closes and frees everything. */
void rx_stop(void);
void rx_free(void);
/* Frames received so far and connections open, over every receiver. */
uint64_t rx_frames(void);
uint64_t rx_open(void);
/* --churn: start closing and reopening connections (main, when publishing
 * starts); interval epoch flip for --report-interval. */
void rx_churn_start(void);
extern _Atomic unsigned g_rx_epoch;

/* ---- publishers (herald_bench_pub.c) ---- */
struct pub_stats {
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
};
extern struct pub_stats g_pub;
extern atomic_bool g_stop_pub; /* stop the publisher (main on a signal, or itself) */

extern struct sockaddr_in g_pub_addr; /* --publish's server */

/* Before the publisher starts: the herald body prefix (opt.body_mode). */
void pub_prepare(void);
/* --publish-redis: create the Redis layer. 0, or the exit code 2 (message
 * printed). pub_redis_close frees it (any time, also when never opened). */
int pub_redis_open(void);
void pub_redis_close(void);
/* The publisher thread's body: HTTP (--publish) or Redis (--publish-redis). */
void *pub_thread(void *arg);

/* ---- loss tracking and interval lines (herald_bench_track.c) ----
 *
 * A broadcast (one HTTP publish, seq 0, 1, 2, ... in the payload's "seq") is
 * *lost* on a connection when its publish was answered 2xx, the connection
 * was open (101 received) before the publish was sent and is still open
 * --drain seconds after the answer, and its frame had not arrived by then.
 * Connections that churned or closed around it do not count; a publish that
 * failed (refused, non-2xx, no answer) is a failed publish, never a loss.
 * Each receiver checks its own connections, broadcast by broadcast, once
 * the broadcast's answer is --drain seconds old; main adds up the result.
 */
#define TRACK_RING 2048 /* broadcasts in flight (sent, not yet checked); power of two */
#define TRACK_BITS_WORDS (TRACK_RING / 64)

enum { TRACK_PENDING = 0, TRACK_OK = 1, TRACK_FAILED = 2 };

struct track_ent {
	_Atomic uint64_t t_sent; /* CLOCK_MONOTONIC ns, the payload's "t" */
	_Atomic uint64_t t_done; /* the answer (or the failure) */
	_Atomic uint32_t status;
	_Atomic uint32_t lost;    /* connections that missed it */
	_Atomic uint32_t counted; /* connections that had to receive it */
	_Atomic uint32_t checked; /* receivers done with it */
};
extern struct track_ent g_track[TRACK_RING];
extern _Atomic uint64_t g_track_next; /* seqs handed out */
extern _Atomic uint64_t g_track_done; /* seqs checked by every receiver and reported */

/* Whether losses are tracked (--report-interval with --publish at a fixed
 * rate). */
bool track_on(void);
/* Publisher: whether seq s may be sent (its ring slot is free); then
 * track_sent before the write, track_answer when the outcome is known. */
bool track_room(uint64_t s);
void track_sent(uint64_t s, uint64_t t_sent);
void track_answer(uint64_t s, bool ok);
/* Main: open the report (--report-file or stdout); 0 or -1 (message printed). */
int track_open(void);
/* Main, every ~10 ms: collect what the receivers checked; print an interval
 * line when one is due (or `final`). */
void track_poll(uint64_t t_start, bool final);
/* Main at the end: whether every sent broadcast has been checked. */
bool track_all_checked(void);
/* The totals for the final JSON line (appended before its closing brace). */
void track_totals_json(FILE *f);
void track_close(void);

/* ---- catching up after a reconnect (herald_bench_catchup.c) ----
 *
 * --catchup K: the N connections open with ?recover= and each records the
 * group's epoch and offset O from its "recovered" frame; they all close;
 * main publishes K broadcasts over HTTP and waits until a probe connection
 * sees offset O + K; then all N reconnect at once with
 * ?recover=GROUP@EPOCH:O and each must receive the envelopes O+1..O+K, once
 * each, in order, in its epoch, then "recovered" with recovered:true and
 * missed:K. Per client: the time from its connect() (and from its 101) to
 * that frame. Connection i's state is touched only by its receiver thread
 * (the hooks) until main reads it after the counts say it is final.
 */
enum { CU_PHASE_OPEN = 0, CU_PHASE_CLOSE = 1, CU_PHASE_RECONNECT = 2 };
extern _Atomic int g_cu_phase; /* main sets it; each receiver acks in rx.cu_phase */

/* Main, from check_options: the mode's own checks and its memory. 0, or
 * the exit code 2 (message printed). */
int cu_check(bool http_publish);
/* Receiver hooks for connection gi (r->idx + j * opt.threads): its connect
 * starts; its upgrade request into buf (0 if it does not fit; gi < 0: no
 * position); its 101; a whole message's first bytes (p borrowed); it
 * failed or was closed (was_open: after its 101). */
void cu_connect_start(int gi, uint64_t t);
size_t cu_request(int gi, char *buf, size_t cap);
void cu_open(int gi, uint64_t t);
void cu_message(int gi, const uint8_t *p, size_t n, uint64_t t);
void cu_fail(int gi, bool was_open, const char *why);
/* Main, after rx_start: the phases up to every client caught up (or failed,
 * or the timeout); a phase that cannot go on stops the run, and the report
 * says why. */
void cu_run(void);
/* Main, after rx_stop: the summary and the JSON line; 0 when every client
 * caught up correctly, else 1. */
int cu_report(const char *url);
void cu_free(void);

/* ---- report (herald_bench_report.c) ---- */
/* The server's VmRSS in kB, and its user + system CPU seconds, from /proc
 * (opt.server_pid); < 0 when unknown. */
long read_rss_kb(int pid);
double read_cpu_s(int pid);
/* Seconds from a to b (0 if b is not later). */
double secs(uint64_t a, uint64_t b);

/* What main measured around the run, for the report. */
struct bench_run {
	const char *url;
	uint64_t connected, failed;
	double connect_s;
	bool pub_started;
	long rss_before, rss_after, rss_end;
	double cpu_before, cpu_after;
};
/* Merge the receivers' histograms and counts (after rx_stop) and print the
 * summary on stderr and the JSON line on stdout. */
void report_print(const struct bench_run *run);

#endif /* HERALD_BENCH_H */
