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
 *
 * This file: the checks of the options and the run; the command line, the
 * receivers, the publishers, the report and --catchup are in
 * herald_bench_{opts,recv,pub,report,catchup}.c (herald_bench.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "herald_bench.h"
#include "layer/layer.h"

static volatile sig_atomic_t g_interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

/* The targets (loopback only) and the ranges of every option; for
 * --publish-redis, the Redis layer. 0, or the exit code. */
static int
check_options(const char *url, const char *pub)
{
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
		int rv = pub_redis_open();
		if (rv != 0)
			return rv;
		opt.publish = true;
	} else if (opt.prefill > 0) {
		fprintf(stderr, "herald-bench: --prefill needs --publish-redis\n");
		return 2;
	}
	if (opt.churn < 0 || opt.churn > 1000 || opt.report_interval < 0
	    || opt.report_interval > 3600 || opt.publish_timeout <= 0 || opt.publish_timeout > 600
	    || (opt.keep_publishing && !pub)) {
		fprintf(stderr,
		    "herald-bench: bad --churn (0-1000), --report-interval (0-3600 s), "
		    "--publish-timeout (0-600 s), or --keep-publishing without --publish\n");
		return 2;
	}
	if (opt.report_file && opt.report_interval <= 0) {
		fprintf(stderr, "herald-bench: --report-file needs --report-interval\n");
		return 2;
	}
	if (track_on() && opt.rate * (opt.drain + opt.publish_timeout + 2) >= TRACK_RING) {
		fprintf(stderr,
		    "herald-bench: loss tracking holds %d broadcasts in flight: lower --rate or "
		    "--drain (rate x (drain + publish-timeout + 2) < %d)\n",
		    TRACK_RING, TRACK_RING);
		return 2;
	}
	int rc = cu_check(pub != NULL);
	if (rc != 0)
		return rc;
	if (opt.sources <= 0)
		opt.sources = opt.n / 20000 + 1;
	if (opt.sources > 254)
		opt.sources = 254;
	pub_prepare();
	return 0;
}

/* Room for N sockets + publishers + headroom: raise RLIMIT_NOFILE to its
 * hard limit. 0, or the exit code. */
static int
raise_nofile(void)
{
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
	return 0;
}

/* Wait for every connection to open or fail (or the connect timeout), with
 * progress; into run->connected, failed and connect_s. */
static void
wait_connected(uint64_t t0, struct bench_run *run)
{
	uint64_t connect_deadline = t0 + (uint64_t)(opt.connect_timeout * 1e9);
	uint64_t connected = 0, failed = 0;
	uint64_t last_print = t0;
	for (;;) {
		connected = failed = 0;
		for (int i = 0; i < opt.threads; i++) {
			connected += atomic_load(&g_rx[i].connected);
			failed += atomic_load(&g_rx[i].failed);
		}
		uint64_t t = now_ns();
		if (connected + failed >= (uint64_t)opt.n || t > connect_deadline || g_interrupted)
			break;
		if (!opt.quiet && t - last_print >= 1000000000ull) {
			fprintf(stderr, "[connect %5.1fs] open %" PRIu64 "/%d failed %" PRIu64 "\n",
			    secs(t0, t), connected, opt.n, failed);
			last_print = t;
		}
		usleep(5000);
	}
	uint64_t t_connected = now_ns();
	double connect_s = secs(t0, t_connected);
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
	run->connected = connected;
	run->failed = failed;
	run->connect_s = connect_s;
}

/* Settle and read the server's memory; then publish and drain, with
 * progress, or hold the connections idle for the duration. 0, or the exit
 * code. */
static int
run_phase(struct bench_run *run)
{
	/* settle, then the server's memory with every connection open */
	for (int k = 0; k < (int)(opt.settle * 100) && !g_interrupted; k++)
		usleep(10000);
	run->rss_after = read_rss_kb(opt.server_pid);

	pthread_t pth;
	bool pub_started = false;
	uint64_t t_pub = now_ns();
	rx_churn_start();
	run->cpu_before = read_cpu_s(opt.server_pid);
	hr_hist_init(&g_pub.answer);
	track_poll(t_pub, false); /* the first interval's counters start here */
	if (opt.publish && run->connected > 0 && !g_interrupted) {
		if (pthread_create(&pth, NULL, pub_thread, NULL) != 0) {
			fprintf(stderr, "herald-bench: pthread_create failed\n");
			return 1;
		}
		pub_started = true;
	}

	/* progress; publishing, then drain; or just hold idle */
	uint64_t prev_frames = 0, last_print;
	uint64_t hold_end = t_pub + (uint64_t)(opt.duration * 1e9);
	uint64_t drain_deadline = 0;
	bool pub_joined = !pub_started;
	last_print = t_pub;
	for (;;) {
		usleep(10000);
		track_poll(t_pub, false);
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
		if (pub_joined && opt.report_interval > 0) {
			/* every broadcast checked (each one --drain s after its
			 * answer), or a little past that */
			if ((track_on() && track_all_checked())
			    || (!track_on() && t >= drain_deadline)
			    || t >= drain_deadline + 3000000000ull)
				break;
		} else if (pub_joined) {
			uint64_t expected = atomic_load(&g_pub.ok) * rx_open();
			if (frames >= expected || t >= drain_deadline)
				break;
		}
	}
	track_poll(t_pub, true);
	run->pub_started = pub_started;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *pub = NULL;
	int rc = parse_args(argc, argv, &url, &pub);
	if (rc >= 0)
		return rc;
	if ((rc = check_options(url, pub)) != 0 || (rc = raise_nofile()) != 0)
		return rc;
	if (rx_prepare() != 0) {
		fprintf(stderr, "herald-bench: path too long\n");
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct bench_run run = { .url = url };
	run.rss_before = read_rss_kb(opt.server_pid);
	if (opt.server_pid > 0 && run.rss_before < 0) {
		fprintf(stderr, "herald-bench: cannot read /proc/%d/status\n", opt.server_pid);
		return 2;
	}
	if (opt.report_interval > 0 && track_open() != 0)
		return 2;
	uint64_t t0 = now_ns();
	if (rx_start() != 0)
		return 1;
	if (opt.catchup > 0) {
		cu_run();
		rx_stop();
		rc = cu_report(url);
		rx_free();
		cu_free();
		return rc;
	}
	wait_connected(t0, &run);
	if ((rc = run_phase(&run)) != 0)
		return rc;
	rx_stop();
	run.rss_end = read_rss_kb(opt.server_pid);
	run.cpu_after = read_cpu_s(opt.server_pid);
	report_print(&run);
	track_close();
	rx_free();
	pub_redis_close();
	return run.connected > 0 ? 0 : 1;
}
