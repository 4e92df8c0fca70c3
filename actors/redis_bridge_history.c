/*
 * redis_bridge_history.c: the Redis bridge's history thread
 * (bridge_hist_int.h; docs/RECOVERY.md, "The sequencer"). It loops: read
 * every shard's log after its cursor and hand each entry on, then pop every
 * shard's shared key (the sequencer script); when a round found nothing, it
 * sleeps HIST_IDLE_MS. A copy therefore waits at most about HIST_IDLE_MS
 * for some node to pop it, and every node reads its log entry within about
 * as long. The reads do not block in Redis: Redis ends a blocking read that
 * nothing wakes on its own 100 ms timer (hz 10), which would make an idle
 * node pop only every ~100 ms. The tail comes first so that its first call
 * fixes the cursor at the log's end before this node sequences anything
 * (nothing it pops is behind its own cursor). Its connections are the
 * layer's pool: never the drain thread's blocking pop.
 *
 * Threads: the thread itself; stats from any thread (atomics).
 */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "actors/actor_impl.h"
#include "actors/bridge_hist_int.h"

#define HIST_IDLE_MS 10 /* sleep after a round that found nothing */
#define HIST_BACKOFF_MIN_MS 100
#define HIST_BACKOFF_MAX_MS 1000
#define HIST_ROUTER_TIMEOUT_MS 1000

struct hr_bridge_hist {
	hr_layer *rl;
	hr_router *router;
	size_t batch;
	hr_bridge_event_fn on_event;
	void *arg;
	void (*log)(int level, const char *line);
	hr_sys_thread thread;
	atomic_bool stopping;
	atomic_uint_fast64_t sequenced, events, lost;
};

const hr_bridge_history_rule *
hr_bridge__hist_rule(const hr_bridge_history_rule *rules, size_t n, const char *group)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(rules[i].glob, group, 0) == 0)
			return &rules[i];
	return NULL;
}

static void
deliver(hr_bridge_hist *h, const hr_layer_hevent *ev)
{
	if (h->on_event != NULL)
		h->on_event(h->arg, ev);
	else if (hr_router_group_send_local(
	             h->router, ev->group, ev->msg, NULL, NULL, HIST_ROUTER_TIMEOUT_MS)
	    != 0)
		atomic_fetch_add(&h->lost, 1);
}

static void *
hist_main(void *arg)
{
	hr_bridge_hist *h = arg;
	size_t ns = hr_layer_history_shards(h->rl);
	char(*cur)[HR_HISTORY_CURSOR] = calloc(ns, sizeof(*cur));
	hr_layer_hevent *ev = calloc(h->batch, sizeof(*ev));
	int backoff = HIST_BACKOFF_MIN_MS;

	if (cur == NULL || ev == NULL) {
		if (h->log != NULL)
			h->log(1, "redis history: out of memory");
		goto done;
	}
	while (!atomic_load(&h->stopping)) {
		int rv = 0;
		size_t work = 0;
		for (size_t s = 0; s < ns && rv == 0; s++) {
			size_t n = 0;
			rv = hr_layer_history_tail(h->rl, s, cur[s], 0, ev, h->batch, &n);
			work += n;
			atomic_fetch_add(&h->events, n);
			for (size_t i = 0; i < n; i++)
				deliver(h, &ev[i]);
			hr_layer_hevents_release(ev, n);
		}
		for (size_t s = 0; s < ns && rv == 0; s++) {
			size_t k = 0;
			rv = hr_layer_history_pump(h->rl, s, h->batch, &k);
			atomic_fetch_add(&h->sequenced, k);
			work += k;
		}
		if (rv == HR_ECLOSED)
			break;
		if (rv == 0) {
			backoff = HIST_BACKOFF_MIN_MS;
			if (work == 0)
				hr_sys__sleep_ms(HIST_IDLE_MS);
			continue;
		}
		/* Redis down (the drain thread reports it): retry, at most 1 s apart;
		 * the cursors stay, so the log is read on from where it was. */
		for (int slept = 0; slept < backoff && !atomic_load(&h->stopping); slept += 50)
			hr_sys__sleep_ms(50);
		backoff = backoff * 2 < HIST_BACKOFF_MAX_MS ? backoff * 2 : HIST_BACKOFF_MAX_MS;
	}
done:
	free(ev);
	free(cur);
	return NULL;
}

int
hr_bridge__hist_start(hr_bridge_hist **out, hr_layer *rl, hr_router *router, size_t batch,
    hr_bridge_event_fn on_event, void *arg, void (*log)(int level, const char *line))
{
	hr_bridge_hist *h = calloc(1, sizeof(*h));
	int rv;

	if (h == NULL)
		return HR_ENOMEM;
	h->rl = rl;
	h->router = router;
	h->batch = batch > 0 ? batch : 100;
	h->on_event = on_event;
	h->arg = arg;
	h->log = log;
	atomic_init(&h->stopping, false);
	atomic_init(&h->sequenced, 0);
	atomic_init(&h->events, 0);
	atomic_init(&h->lost, 0);
	if ((rv = hr_sys__thread_start(&h->thread, "herald-history", hist_main, h)) != 0) {
		free(h);
		return rv;
	}
	*out = h;
	return 0;
}

void
hr_bridge__hist_stop(hr_bridge_hist *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->stopping, true);
	hr_sys__thread_join(&h->thread);
}

void
hr_bridge__hist_free(hr_bridge_hist *h)
{
	hr_bridge__hist_stop(h);
	free(h);
}

void
hr_bridge__hist_stats(
    const hr_bridge_hist *h, uint64_t *sequenced, uint64_t *events, uint64_t *lost)
{
	hr_bridge_hist *m = (hr_bridge_hist *)h;
	*sequenced = m != NULL ? atomic_load(&m->sequenced) : 0;
	*events = m != NULL ? atomic_load(&m->events) : 0;
	*lost = m != NULL ? atomic_load(&m->lost) : 0;
}
