/*
 * evloop.c: the one place an I/O thread sleeps (sockets and mailbox alike), chosen
 * with --event-loop:
 *
 *   poll   lws 4.1.6's own loop: lws_service() until t->exit. poll() scans
 *          every fd on every turn (O(connections)).
 *   libev  an ev loop of this thread's own (EVBACKEND_EPOLL), handed to lws
 *          as a foreign loop (LWS_SERVER_OPTION_LIBEV; Debian's
 *          libwebsockets-evlib-ev plugin), run here with ev_run.
 *   libuv  the same with a uv loop (LWS_SERVER_OPTION_LIBUV,
 *          libwebsockets-evlib-uv), run here with uv_run.
 *
 * The loop is foreign so that herald, not lws, decides when it ends: with an
 * event lib and no foreign loop, lws_service() runs ev_run/uv_run itself and
 * returns only when lws stops its loop. Every socket, the listeners and the
 * mailbox's eventfd are lws wsis on that loop, so one wait wakes the thread
 * for all of them.
 *
 * Stopping: on the I/O thread (a callback: begin_stop, the grace timer, the
 * last WebSocket's close) hr_evloop__stop sets t->exit and breaks the loop
 * (ev_break / uv_stop, or for poll lets lws_service return). Another thread
 * sets t->exit and calls lws_cancel_service, whose wake-up reaches the
 * mailbox protocol as LWS_CALLBACK_EVENT_WAIT_CANCELLED on the I/O thread,
 * which calls hr_evloop__stop (iothread.c).
 *
 * Destroying, with the loop no longer running (lws 4.1.6, lib/core/context.c
 * and lib/event-libs/): poll and libev free the context in one
 * lws_context_destroy; libev's watchers are all stopped by then, so the loop
 * is destroyed after. libuv closes its handles asynchronously: the first
 * lws_context_destroy starts closing every wsi, the loop must run until
 * their close callbacks (and then those of lws's timer and idle handles)
 * have fired, and a second lws_context_destroy frees the context; only then
 * can uv_loop_close succeed. info.pcontext (= &t->ctx) tells when the
 * context is gone.
 */
#define _GNU_SOURCE /* uv.h: pthread_rwlock_t, pthread_barrier_t */
#include <ev.h>
#include <stdlib.h>
#include <uv.h>

#include "transport/transport_impl.h"

/* Turns of the loop allowed for lws's libuv handles to finish closing. */
#define UV_CLOSE_TURNS 1000
/* Seconds between the libev thread's kicks of lws's timers (ev_tick), which
 * also runs the liveness tick. */
#define EV_TICK_S ((double)HR_TICK_MS / 1000.0)

/*
 * End of a turn: what this turn's callbacks batched into the mailboxes
 * (transport/http.c's deferred scope) goes before the thread blocks again,
 * with no wake-up of its own (an ev_prepare / uv_prepare watcher, or after
 * each lws_service for poll). Not counted as keeping the loop alive.
 */
static void
ev_end_of_turn(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	hr_mailbox_batch_end_deferred();
}

static void
uv_end_of_turn(uv_prepare_t *h)
{
	(void)h;
	hr_mailbox_batch_end_deferred();
}

static void
uv_free_handle(uv_handle_t *h)
{
	free(h);
}

/*
 * lws 4.1.6's libev glue (lib/event-libs/libev/libev.c) re-arms its one
 * timer with ev_timer_set + ev_timer_start, which libev ignores while that
 * timer is already active. Once it is armed for a far deadline (a TLS vhost
 * keeps a 24 h certificate check), a nearer one such as a wsi's 10 s
 * handshake timeout only runs when some fd event brings lws to its idle
 * callback, which services every timer that is due: a TLS client that
 * never sent its ClientHello was never cut. This tick makes such an event
 * every EV_TICK_S (lws_cancel_service's pipe; the mailbox protocol ignores
 * the EVENT_WAIT_CANCELLED it brings unless the thread is exiting), so lws's
 * timeouts are late by at most EV_TICK_S. libuv's glue restarts its timer
 * properly and needs none.
 *
 * The thread's tick (t->tick, set by iothread.c: ws.c's pings and ping
 * timeouts, post.c's retries) runs every HR_TICK_MS
 * on every loop: from this ev timer on libev (an lws timer there would be
 * late for the reason above), from an lws timer (lws_sul) on poll and
 * libuv, whose glue keeps lws's timers on time.
 */
static void
ev_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	hr_iothread *t = w->data;

	(void)loop;
	(void)revents;
	if (t->ctx != NULL) {
		lws_cancel_service(t->ctx);
		t->tick(t);
	}
}

static void
sul_tick(lws_sorted_usec_list_t *sul)
{
	hr_iothread *t = lws_container_of(sul, hr_iothread, tick_sul);

	t->tick(t);
	lws_sul_schedule(t->ctx, 0, &t->tick_sul, sul_tick, HR_TICK_MS * LWS_US_PER_MS);
}

int
hr_evloop__create(hr_iothread *t, struct lws_context_creation_info *info, void **slot)
{
	t->evloop = t->node->cfg.event_loop;
	info->pcontext = &t->ctx;
	switch (t->evloop) {
	case HR_EVLOOP_POLL:
		return 0;
	case HR_EVLOOP_LIBEV: {
		struct ev_loop *l = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
		if (l == NULL)
			return HR_EIO;
		t->loop = l;
		info->options |= LWS_SERVER_OPTION_LIBEV;
		break;
	}
	case HR_EVLOOP_LIBUV: {
		uv_loop_t *l = malloc(sizeof(*l));
		if (l == NULL)
			return HR_ENOMEM;
		if (uv_loop_init(l) != 0) {
			free(l);
			return HR_EIO;
		}
		t->loop = l;
		info->options |= LWS_SERVER_OPTION_LIBUV;
		break;
	}
	default:
		return HR_EINVAL;
	}
	*slot = t->loop;
	info->foreign_loops = slot;
	return 0;
}

void
hr_evloop__run(hr_iothread *t)
{
	if (t->evloop != HR_EVLOOP_LIBEV)
		lws_sul_schedule(t->ctx, 0, &t->tick_sul, sul_tick, HR_TICK_MS * LWS_US_PER_MS);
	switch (t->evloop) {
	case HR_EVLOOP_POLL:
		while (!t->exit) {
			int rv = lws_service(t->ctx, 0);
			hr_mailbox_batch_end_deferred();
			if (rv < 0)
				break;
		}
		break;
	case HR_EVLOOP_LIBEV: {
		ev_timer tick;
		ev_prepare turn;
		ev_timer_init(&tick, ev_tick, EV_TICK_S, EV_TICK_S);
		tick.data = t;
		ev_timer_start(t->loop, &tick);
		ev_prepare_init(&turn, ev_end_of_turn);
		ev_prepare_start(t->loop, &turn);
		ev_unref(t->loop);
		while (!t->exit) {
			t->in_loop = true;
			int alive = ev_run(t->loop, 0);
			t->in_loop = false;
			if (!alive && !t->exit) {
				hr_log(HR_LOG_ERROR, "I/O thread %u: libev loop ran dry", t->index);
				break;
			}
		}
		ev_ref(t->loop);
		ev_prepare_stop(t->loop, &turn);
		ev_timer_stop(t->loop, &tick);
		break;
	}
	case HR_EVLOOP_LIBUV: {
		/* freed by its close callback, in hr_evloop__destroy's turns */
		uv_prepare_t *turn = malloc(sizeof(*turn));
		if (turn != NULL && uv_prepare_init(t->loop, turn) == 0) {
			(void)uv_prepare_start(turn, uv_end_of_turn);
			uv_unref((uv_handle_t *)turn);
		} else {
			free(turn);
			turn = NULL;
			hr_log(HR_LOG_WARN, "I/O thread %u: no end-of-turn handle", t->index);
		}
		while (!t->exit) {
			t->in_loop = true;
			int alive = uv_run(t->loop, UV_RUN_DEFAULT);
			t->in_loop = false;
			if (!alive && !t->exit) {
				hr_log(HR_LOG_ERROR, "I/O thread %u: libuv loop ran dry", t->index);
				break;
			}
		}
		if (turn != NULL) {
			(void)uv_prepare_stop(turn);
			uv_close((uv_handle_t *)turn, uv_free_handle);
		}
		break;
	}
	}
}

void
hr_evloop__stop(hr_iothread *t)
{
	t->exit = true;
	switch (t->evloop) {
	case HR_EVLOOP_POLL:
		/* lws_service returns after this turn; from outside a callback
		 * this wakes its poll() */
		if (t->ctx != NULL)
			lws_cancel_service(t->ctx);
		break;
	case HR_EVLOOP_LIBEV:
		if (t->in_loop)
			ev_break(t->loop, EVBREAK_ALL);
		break;
	case HR_EVLOOP_LIBUV:
		if (t->in_loop)
			uv_stop(t->loop);
		break;
	}
}

void
hr_evloop__destroy(hr_iothread *t)
{
	if (t->ctx != NULL)
		lws_context_destroy(t->ctx);
	if (t->evloop == HR_EVLOOP_LIBUV && t->loop != NULL) {
		for (int i = 0; i < UV_CLOSE_TURNS && uv_run(t->loop, UV_RUN_NOWAIT) != 0; i++)
			;
		if (t->ctx != NULL)
			lws_context_destroy(t->ctx);
	}
	if (t->ctx != NULL) {
		/* poll, or an lws that wants one more call: never leave it */
		lws_context_destroy(t->ctx);
		if (t->ctx != NULL)
			hr_log(HR_LOG_WARN, "I/O thread %u: lws context not freed", t->index);
	}
	t->ctx = NULL;
	if (t->loop == NULL)
		return;
	if (t->evloop == HR_EVLOOP_LIBEV) {
		ev_loop_destroy(t->loop);
	} else if (uv_loop_close(t->loop) == 0) {
		free(t->loop);
	} else {
		/* handles still open: leaking the loop beats freeing it under them */
		hr_log(HR_LOG_WARN, "I/O thread %u: libuv loop still busy at exit", t->index);
	}
	t->loop = NULL;
}
