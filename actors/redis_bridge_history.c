/*
 * redis_bridge_history.c: the Redis bridge's history thread
 * (bridge_hist_int.h; docs/RECOVERY.md, "The sequencer"). It loops in
 * rounds: read every shard's log after its cursor and hand each entry on,
 * then pop every shard's shared key (the sequencer script). The tail comes
 * first so that its first call fixes the cursor at the log's end before
 * this node sequences anything (nothing it pops is behind its own cursor).
 * Rounds use the layer's pool of connections.
 *
 * When a round found nothing, the thread sleeps on each shard's watch
 * (layer.h, hr_layer_hwatch: a log read blocked in Redis, and Redis's word
 * whenever the shared key changes, each on a connection of its own) and on
 * its wake-up (a fill request, stop): a copy is sequenced by the round that
 * follows its landing, and every node reads the log entry the moment it is
 * appended. A round runs at least every HIST_WAIT_MS, and every
 * HIST_IDLE_MS while a watch cannot be armed (Redis down, or one without
 * client tracking: before 6.0).
 *
 * Threads: the thread itself; stats from any thread (atomics); fill
 * requests from the router's thread.
 */
#define _POSIX_C_SOURCE 200809L
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/bridge_hist_int.h"

#define HIST_IDLE_MS 10   /* sleep after an idle round while a watch is not armed */
#define HIST_WAIT_MS 1000 /* longest sleep on the watches */
#define HIST_BACKOFF_MIN_MS 100
#define HIST_BACKOFF_MAX_MS 1000
#define HIST_ROUTER_TIMEOUT_MS 1000
#define HIST_FILL_QUEUE 256 /* resumes' fill requests waiting (distinct groups) */
#define HIST_FILL_TRIES 10  /* posts of a fill's answer to the router, 1 s each */

struct hr_bridge_hist {
	hr_layer *rl;
	hr_router *router;
	size_t batch;
	hr_bridge_event_fn on_event;
	void *arg;
	void (*log)(int level, const char *line);
	const hr_bridge_history_rule *rules; /* borrowed */
	size_t n_rules;
	/* the router's fill requests (history.h), under lock */
	pthread_mutex_t lock;
	char (*fq)[HR_NAME_MAX + 1];
	size_t fq_n;
	hr_sys_thread thread;
	int wake; /* fill requests and stop */
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

/* One fill: a group's shared history as the range script gave it. */
typedef struct fill {
	char group[HR_NAME_MAX + 1];
	bool ok;
	char epoch[HR_HISTORY_EPOCH_LEN + 1];
	uint64_t latest;
	size_t n, cap;
	uint64_t *offsets;
	hr_msg **msgs;
} fill;

static void
fill_clear(fill *f)
{
	for (size_t i = 0; i < f->n; i++)
		hr_msg_unref(f->msgs[i]);
	free(f->offsets);
	free(f->msgs);
	f->offsets = NULL;
	f->msgs = NULL;
	f->n = f->cap = 0;
}

static int
fill_push(fill *f, const hr_layer_hevent *ev)
{
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 64;
		uint64_t *no = realloc(f->offsets, ncap * sizeof(*no));
		if (no == NULL)
			return HR_ENOMEM;
		f->offsets = no;
		hr_msg **nm = realloc(f->msgs, ncap * sizeof(*nm));
		if (nm == NULL)
			return HR_ENOMEM;
		f->msgs = nm;
		f->cap = ncap;
	}
	f->offsets[f->n] = ev->offset;
	f->msgs[f->n++] = hr_msg_ref(ev->msg);
	return 0;
}

/* Read group's shared history: its epoch, latest offset and its last SIZE
 * frames younger than TTL (range scripts; the first one only learns the
 * epoch). f->ok false when Redis could not answer. */
static void
fill_fetch(hr_bridge_hist *h, fill *f, hr_layer_hevent *ev)
{
	const hr_bridge_history_rule *rule = hr_bridge__hist_rule(h->rules, h->n_rules, f->group);
	hr_layer_hpos pos;
	size_t n = 0;

	f->ok = false;
	if (rule == NULL
	    || hr_layer_history_range(h->rl, f->group, "", 0, rule->ttl, ev, 1, &n, &pos) != 0)
		return;
	hr_layer_hevents_release(ev, n);
	memcpy(f->epoch, pos.epoch, sizeof(f->epoch));
	f->latest = pos.latest;
	uint64_t after = pos.latest > rule->size ? pos.latest - rule->size : 0;
	while (after < f->latest) {
		n = 0;
		if (hr_layer_history_range(
		        h->rl, f->group, f->epoch, after, rule->ttl, ev, h->batch, &n, &pos)
		    != 0)
			goto fail;
		if (strcmp(pos.epoch, f->epoch) != 0) { /* the history was lost meanwhile */
			hr_layer_hevents_release(ev, n);
			goto fail;
		}
		f->latest = pos.latest;
		for (size_t i = 0; i < n; i++)
			if (fill_push(f, &ev[i]) != 0) {
				hr_layer_hevents_release(ev, n);
				goto fail;
			}
		hr_layer_hevents_release(ev, n);
		if (n == 0)
			break;
		after = f->offsets[f->n - 1];
	}
	f->ok = true;
	return;
fail:
	fill_clear(f);
}

/* Hand a fill to the router (bounded: HIST_FILL_TRIES posts of 1 s). */
static void
fill_post(hr_bridge_hist *h, fill *f)
{
	int rv = HR_EAGAIN;
	for (int i = 0; i < HIST_FILL_TRIES && rv == HR_EAGAIN && !atomic_load(&h->stopping); i++)
		rv = hr_router_history_fill(h->router, f->group, f->ok ? f->epoch : NULL, f->latest,
		    f->offsets, f->msgs, f->n, HIST_ROUTER_TIMEOUT_MS);
	if (rv != 0 && h->log != NULL) {
		char line[HR_NAME_MAX + 96];
		snprintf(line, sizeof(line), "redis history: resumes of %s not answered: %s",
		    f->group, hr_strerror(rv));
		h->log(1, line);
	}
	fill_clear(f);
}

int
hr_bridge__hist_fill_request(void *arg, const char *group)
{
	hr_bridge_hist *h = arg;
	size_t len = strlen(group);
	int rv = 0;

	if (len > HR_NAME_MAX)
		return HR_EBADNAME;
	pthread_mutex_lock(&h->lock);
	if (h->fq_n == HIST_FILL_QUEUE)
		rv = HR_EAGAIN;
	else
		memcpy(h->fq[h->fq_n++], group, len + 1);
	pthread_mutex_unlock(&h->lock);
	if (rv == 0)
		hr_sys__wake(h->wake);
	return rv;
}

/*
 * Sleep on the shards' watches (w[s] NULL: none) and h's wake-up, for up to
 * timeout_ms (armed first), or with busy just take what is already there
 * (the watches' messages must not pile up in Redis while rounds run back to
 * back); then hand on the log entries that came. Returns at once, without
 * sleeping, when a watch's tracking is new: a copy may have landed before it.
 */
static void
hist_wait(hr_bridge_hist *h, hr_layer_hwatch **w, size_t ns, char (*cur)[HR_HISTORY_CURSOR],
    hr_layer_hevent *ev, int *fds, bool *ready, bool busy)
{
	bool unarmed = false;
	for (size_t s = 0; s < ns; s++) {
		int rv = HR_ENOTSUP;
		if (w[s] != NULL && busy)
			hr_layer_hwatch_fds(w[s], &fds[2 * s]);
		else if (w[s] != NULL)
			rv = hr_layer_hwatch_arm(w[s], cur[s], &fds[2 * s]);
		if (rv == 1)
			return;
		if (rv != 0) /* no tracking, or a connection failed: poll */
			unarmed = true;
	}
	int timeout = busy ? 0 : unarmed ? HIST_IDLE_MS : HIST_WAIT_MS;
	size_t nfds = 2 * ns <= HR_SYS_WAIT_MAX ? 2 * ns : 0; /* none armed beyond that */
	if (hr_sys__wait_fds(h->wake, fds, ready, nfds, timeout) != 0) {
		hr_sys__sleep_ms(HIST_IDLE_MS);
		return;
	}
	hr_mailbox_batch_begin();
	for (size_t s = 0; s < ns; s++) {
		size_t n = 0;
		bool changed;
		if (w[s] == NULL)
			continue;
		/* a broken connection is dropped and made again by the next arm;
		 * a change of the shared key needs nothing more: a round follows */
		(void)hr_layer_hwatch_read(w[s], &ready[2 * s], cur[s], ev, h->batch, &n, &changed);
		atomic_fetch_add(&h->events, n);
		for (size_t i = 0; i < n; i++)
			deliver(h, &ev[i]);
		hr_layer_hevents_release(ev, n);
	}
	hr_mailbox_batch_end();
}

static void *
hist_main(void *arg)
{
	hr_bridge_hist *h = arg;
	size_t ns = hr_layer_history_shards(h->rl);
	char(*cur)[HR_HISTORY_CURSOR] = calloc(ns, sizeof(*cur));
	hr_layer_hevent *ev = calloc(h->batch, sizeof(*ev));
	fill *fills = calloc(HIST_FILL_QUEUE, sizeof(*fills));
	hr_layer_hwatch **w = calloc(ns, sizeof(*w));
	int *fds = calloc(2 * ns, sizeof(*fds));
	bool *ready = calloc(2 * ns, sizeof(*ready));
	int backoff = HIST_BACKOFF_MIN_MS;

	if (cur == NULL || ev == NULL || fills == NULL || w == NULL || fds == NULL
	    || ready == NULL) {
		if (h->log != NULL)
			h->log(1, "redis history: out of memory");
		goto out;
	}
	for (size_t s = 0; s < ns; s++) {
		fds[2 * s] = fds[2 * s + 1] = -1;
		/* more shards than one poll() takes: every shard is polled */
		if (2 * ns > HR_SYS_WAIT_MAX || hr_layer_hwatch_new(h->rl, s, h->batch, &w[s]) != 0)
			w[s] = NULL; /* that shard is polled every HIST_IDLE_MS */
	}
	while (!atomic_load(&h->stopping)) {
		int rv = 0;
		size_t work = 0, nf = 0;
		/* Resumes waiting for a group's shared history: read it, then the
		 * logs up to their end (every entry up to the fill's latest offset
		 * reaches the router first), then answer. */
		pthread_mutex_lock(&h->lock);
		for (; nf < h->fq_n; nf++)
			memcpy(fills[nf].group, h->fq[nf], sizeof(fills[nf].group));
		h->fq_n = 0;
		pthread_mutex_unlock(&h->lock);
		for (size_t i = 0; i < nf; i++)
			fill_fetch(h, &fills[i], ev);
		/* the round's entries travel to the router in batches (one nng
		 * message per 64, not one per entry), all of them ahead of the
		 * fills' answers below */
		hr_mailbox_batch_begin();
		for (size_t s = 0; s < ns && rv == 0; s++) {
			size_t n;
			do {
				n = 0;
				rv = hr_layer_history_tail(h->rl, s, cur[s], 0, ev, h->batch, &n);
				work += n;
				atomic_fetch_add(&h->events, n);
				for (size_t i = 0; i < n; i++)
					deliver(h, &ev[i]);
				hr_layer_hevents_release(ev, n);
			} while (rv == 0 && nf > 0 && n == h->batch);
		}
		hr_mailbox_batch_end();
		for (size_t i = 0; i < nf; i++) {
			if (rv != 0)
				fills[i].ok = false;
			fill_post(h, &fills[i]);
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
			hist_wait(h, w, ns, cur, ev, fds, ready, work > 0);
			continue;
		}
		/* Redis down (the drain thread reports it): retry, at most 1 s apart;
		 * the cursors stay, so the log is read on from where it was. */
		(void)hr_sys__wait_fds(h->wake, NULL, NULL, 0, backoff);
		backoff = backoff * 2 < HIST_BACKOFF_MAX_MS ? backoff * 2 : HIST_BACKOFF_MAX_MS;
	}
out:
	for (size_t s = 0; w != NULL && s < ns; s++)
		hr_layer_hwatch_free(w[s]);
	free(ready);
	free(fds);
	free(w);
	free(fills);
	free(ev);
	free(cur);
	return NULL;
}

int
hr_bridge__hist_start(hr_bridge_hist **out, hr_layer *rl, hr_router *router, size_t batch,
    const hr_bridge_history_rule *rules, size_t n_rules, hr_bridge_event_fn on_event, void *arg,
    void (*log)(int level, const char *line))
{
	hr_bridge_hist *h = calloc(1, sizeof(*h));
	int rv;

	if (h == NULL)
		return HR_ENOMEM;
	if ((h->fq = calloc(HIST_FILL_QUEUE, sizeof(*h->fq))) == NULL) {
		free(h);
		return HR_ENOMEM;
	}
	if ((h->wake = hr_sys__wake_open()) < 0) {
		free(h->fq);
		free(h);
		return HR_EIO;
	}
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		hr_sys__wake_close(h->wake);
		free(h->fq);
		free(h);
		return HR_ENOMEM;
	}
	h->rules = rules;
	h->n_rules = n_rules;
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
		hr_sys__wake_close(h->wake);
		pthread_mutex_destroy(&h->lock);
		free(h->fq);
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
	hr_sys__wake(h->wake);
	hr_sys__thread_join(&h->thread);
}

void
hr_bridge__hist_free(hr_bridge_hist *h)
{
	if (h == NULL)
		return;
	hr_bridge__hist_stop(h);
	hr_sys__wake_close(h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h->fq);
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
