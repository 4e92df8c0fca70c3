/*
 * herald_bench_report.c: what herald-bench reads of the server (VmRSS and
 * CPU time from /proc/PID) and what it prints at the end: the receivers'
 * histograms and counts merged into a summary on stderr and one JSON line
 * on stdout (bench/README.md lists the fields; tests/bench/ read them).
 * Threads: main, after the receivers and the publisher have stopped.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herald_bench.h"

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

long
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
double
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

double
secs(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / 1e9 : 0.0;
}

void
report_print(const struct bench_run *run)
{
	const char *url = run->url;
	uint64_t connected = run->connected, failed = run->failed;
	double connect_s = run->connect_s;
	bool pub_started = run->pub_started;
	long rss_before = run->rss_before, rss_after = run->rss_after, rss_end = run->rss_end;
	double cpu_before = run->cpu_before, cpu_after = run->cpu_after;
	struct hr_hist *h = &g_rx[0].hist;
	uint64_t frames = 0, no_t = 0, last_frame = 0, closed = 0;
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
	       ",\"size\":%d,\"rate\":%.1f",
	    url, connected, failed, closed, connect_s, published, (uint64_t)g_pub.errors,
	    (uint64_t)g_pub.unanswered, (uint64_t)g_pub.late, (uint64_t)g_pub.full, pps, frames,
	    expected, no_t, window, dps, h->count, pmin, p50, p90, p99, p999, pmax,
	    hr_hist_pct(&g_pub.answer, 50.0) / 1e6, hr_hist_pct(&g_pub.answer, 99.0) / 1e6,
	    rss_before, rss_after, rss_end, bpc, cpu_s, cpu_us, opt.size, opt.rate);
	if (opt.churn > 0 || opt.report_interval > 0)
		track_totals_json(stdout);
	printf("}\n");
	fflush(stdout);
}
