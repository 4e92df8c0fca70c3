/*
 * herald_bench_track.c: with --report-interval, herald-bench's loss
 * accounting and its interval lines. The publisher records each broadcast
 * (seq, send time, answer) in a ring; every receiver checks the broadcasts
 * whose drain window has passed against its own connections
 * (herald_bench_recv.c, track_check) and marks them checked; main collects
 * the checked ones here, frees their slots for the publisher and, every
 * interval, prints one JSON line: connections open, frames, broadcasts
 * published and failed, the interval's latency percentiles, its losses
 * (with each lost broadcast's send time, so that a caller can match them to
 * outages) and the churn counts.
 * Threads: the publisher calls track_room/track_sent/track_answer; the
 * receivers read the ring; main does the rest.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "herald_bench.h"

#define LOST_AT_MAX 200 /* lost broadcasts listed per interval line */

struct track_ent g_track[TRACK_RING];
_Atomic uint64_t g_track_next;
_Atomic uint64_t g_track_done;

static FILE *g_out;

/* Main only: the running interval and the totals. */
static struct {
	uint64_t next_ns;
	unsigned k;
	/* counters at the start of the interval */
	uint64_t frames, ok, errors, churned, reopened, refail, close_to, late, dup;
	/* broadcasts checked in this interval */
	uint64_t checked, counted, lost, lost_bc;
	uint64_t lost_at[LOST_AT_MAX][4]; /* t_sent ns, seq, lost, counted */
	int n_lost_at;
	uint64_t lost_at_dropped;
	/* the whole run */
	uint64_t tot_checked, tot_counted, tot_lost, tot_lost_bc;
	struct hr_hist h;
} iv;

bool
track_on(void)
{
	return opt.report_interval > 0 && opt.publish && opt.redis_url == NULL && opt.rate > 0;
}

bool
track_room(uint64_t s)
{
	return s < atomic_load_explicit(&g_track_done, memory_order_acquire) + TRACK_RING;
}

void
track_sent(uint64_t s, uint64_t t_sent)
{
	struct track_ent *e = &g_track[s % TRACK_RING];
	atomic_store(&e->t_sent, t_sent);
	atomic_store(&e->t_done, 0);
	atomic_store_explicit(&g_track_next, s + 1, memory_order_release);
}

void
track_answer(uint64_t s, bool ok)
{
	struct track_ent *e = &g_track[s % TRACK_RING];
	atomic_store(&e->t_done, now_ns());
	atomic_store_explicit(&e->status, ok ? TRACK_OK : TRACK_FAILED, memory_order_release);
}

int
track_open(void)
{
	hr_hist_init(&iv.h);
	if (opt.report_file == NULL) {
		g_out = stdout;
		return 0;
	}
	g_out = fopen(opt.report_file, "w");
	if (g_out == NULL) {
		perror(opt.report_file);
		return -1;
	}
	return 0;
}

void
track_close(void)
{
	if (g_out != NULL && g_out != stdout)
		fclose(g_out);
	g_out = NULL;
}

bool
track_all_checked(void)
{
	return atomic_load(&g_track_done) >= atomic_load(&g_track_next);
}

/* The broadcasts every receiver has checked: into the interval, and their
 * slots back to the publisher. */
static void
collect(void)
{
	for (int k = 0; k < TRACK_RING; k++) {
		uint64_t s = atomic_load(&g_track_done);
		if (s >= atomic_load_explicit(&g_track_next, memory_order_acquire))
			return;
		struct track_ent *e = &g_track[s % TRACK_RING];
		if (atomic_load_explicit(&e->checked, memory_order_acquire) < (uint32_t)opt.threads)
			return;
		if (atomic_load(&e->status) == TRACK_OK) {
			uint32_t lost = atomic_load(&e->lost), counted = atomic_load(&e->counted);
			iv.checked++;
			iv.counted += counted;
			if (lost > 0) {
				iv.lost += lost;
				iv.lost_bc++;
				if (iv.n_lost_at < LOST_AT_MAX) {
					uint64_t *a = iv.lost_at[iv.n_lost_at++];
					a[0] = atomic_load(&e->t_sent);
					a[1] = s;
					a[2] = lost;
					a[3] = counted;
				} else {
					iv.lost_at_dropped++;
				}
			}
		}
		atomic_store(&e->status, TRACK_PENDING);
		atomic_store(&e->lost, 0);
		atomic_store(&e->counted, 0);
		atomic_store(&e->checked, 0);
		atomic_store_explicit(&g_track_done, s + 1, memory_order_release);
	}
}

static uint64_t
rx_sum(size_t off)
{
	uint64_t n = 0;
	for (int i = 0; i < opt.threads; i++)
		n += atomic_load((_Atomic uint64_t *)((char *)&g_rx[i] + off));
	return n;
}

#define RX_SUM(field) rx_sum(offsetof(struct rx, field))

/* Flip the receivers to their other interval histogram and merge the one
 * they left into iv.h. */
static void
take_latency(void)
{
	unsigned old = atomic_fetch_add(&g_rx_epoch, 1);
	/* bounded: each receiver passes its loop top at least every 10 ms,
	 * unless the machine starves it */
	for (int spin = 0; spin < 1000; spin++) {
		bool all = true;
		for (int i = 0; i < opt.threads; i++)
			all &= atomic_load(&g_rx[i].epoch_seen) != old;
		if (all)
			break;
		usleep(1000);
	}
	hr_hist_init(&iv.h);
	for (int i = 0; i < opt.threads; i++) {
		hr_hist_merge(&iv.h, &g_rx[i].ihist[old & 1]);
		hr_hist_init(&g_rx[i].ihist[old & 1]);
	}
}

static void
print_line(uint64_t t_start, uint64_t t, bool final)
{
	take_latency();
	uint64_t frames = rx_frames(), ok = atomic_load(&g_pub.ok),
	         err = atomic_load(&g_pub.errors);
	uint64_t churned = RX_SUM(churned), reopened = RX_SUM(reopened);
	uint64_t refail = RX_SUM(reconnect_failures), close_to = RX_SUM(close_timeouts);
	uint64_t late = RX_SUM(late_frames), dup = RX_SUM(dup_frames);
	fprintf(g_out,
	    "{\"interval\":%u,\"t_s\":%.3f,\"mono_s\":%.3f,\"open\":%" PRIu64 ",\"frames\":%" PRIu64
	    ",\"published\":%" PRIu64 ",\"publish_failed\":%" PRIu64 ",\"latency_samples\":%" PRIu64
	    ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"losses_tracked\":%s"
	    ",\"checked_broadcasts\":%" PRIu64 ",\"losses\":%" PRIu64
	    ",\"lost_broadcasts\":%" PRIu64 ",\"lost_at\":[",
	    iv.k, secs(t_start, t), (double)t / 1e9, rx_open(), frames - iv.frames, ok - iv.ok,
	    err - iv.errors, iv.h.count, hr_hist_pct(&iv.h, 50.0) / 1e6,
	    hr_hist_pct(&iv.h, 99.0) / 1e6, (double)iv.h.max / 1e6, track_on() ? "true" : "false",
	    iv.checked, iv.lost, iv.lost_bc);
	for (int i = 0; i < iv.n_lost_at; i++)
		fprintf(g_out, "%s[%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]", i ? "," : "",
		    (double)iv.lost_at[i][0] / 1e9, iv.lost_at[i][1], iv.lost_at[i][2],
		    iv.lost_at[i][3]);
	fprintf(g_out,
	    "],\"lost_at_dropped\":%" PRIu64 ",\"churned\":%" PRIu64 ",\"reopened\":%" PRIu64
	    ",\"reconnect_failures\":%" PRIu64 ",\"close_timeouts\":%" PRIu64
	    ",\"late_frames\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"final\":%s}\n",
	    iv.lost_at_dropped, churned - iv.churned, reopened - iv.reopened, refail - iv.refail,
	    close_to - iv.close_to, late - iv.late, dup - iv.dup, final ? "true" : "false");
	fflush(g_out);
	iv.tot_checked += iv.checked;
	iv.tot_counted += iv.counted;
	iv.tot_lost += iv.lost;
	iv.tot_lost_bc += iv.lost_bc;
	iv.checked = iv.counted = iv.lost = iv.lost_bc = iv.lost_at_dropped = 0;
	iv.n_lost_at = 0;
	iv.frames = frames;
	iv.ok = ok;
	iv.errors = err;
	iv.churned = churned;
	iv.reopened = reopened;
	iv.refail = refail;
	iv.close_to = close_to;
	iv.late = late;
	iv.dup = dup;
	iv.k++;
}

void
track_poll(uint64_t t_start, bool final)
{
	if (opt.report_interval <= 0 || g_out == NULL)
		return;
	collect();
	uint64_t t = now_ns();
	uint64_t every = (uint64_t)(opt.report_interval * 1e9);
	if (iv.next_ns == 0) {
		/* the first interval starts with publishing: counters from here */
		iv.next_ns = t_start + every;
		iv.frames = rx_frames();
		iv.ok = atomic_load(&g_pub.ok);
		iv.errors = atomic_load(&g_pub.errors);
		iv.churned = RX_SUM(churned);
		iv.reopened = RX_SUM(reopened);
		iv.refail = RX_SUM(reconnect_failures);
		iv.close_to = RX_SUM(close_timeouts);
		iv.late = RX_SUM(late_frames);
		iv.dup = RX_SUM(dup_frames);
	}
	if (!final && t < iv.next_ns)
		return;
	print_line(t_start, t, final);
	while (iv.next_ns <= t)
		iv.next_ns += every;
}

void
track_totals_json(FILE *f)
{
	fprintf(f,
	    ",\"losses_tracked\":%s,\"checked_broadcasts\":%" PRIu64
	    ",\"counted_deliveries\":%" PRIu64 ",\"losses\":%" PRIu64
	    ",\"lost_broadcasts\":%" PRIu64 ",\"unchecked_broadcasts\":%" PRIu64
	    ",\"churned\":%" PRIu64 ",\"reopened\":%" PRIu64 ",\"reconnect_failures\":%" PRIu64
	    ",\"close_timeouts\":%" PRIu64 ",\"late_frames\":%" PRIu64 ",\"duplicates\":%" PRIu64
	    ",\"frames_without_seq\":%" PRIu64 ",\"intervals\":%u",
	    track_on() ? "true" : "false", iv.tot_checked, iv.tot_counted, iv.tot_lost,
	    iv.tot_lost_bc, atomic_load(&g_track_next) - atomic_load(&g_track_done),
	    RX_SUM(churned), RX_SUM(reopened), RX_SUM(reconnect_failures), RX_SUM(close_timeouts),
	    RX_SUM(late_frames), RX_SUM(dup_frames), RX_SUM(no_seq), iv.k);
}
