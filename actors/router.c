/*
 * router.c: the router actor (actor.h): its mail handlers, which fan events
 * out to the local members of a group, and its lifecycle (create, destroy,
 * stats). The hr_router_* calls run on any thread and only post mail;
 * everything above `public` runs ONLY on the router's actor thread.
 *
 * Design
 * ------
 * What the router knows (groups split into buckets per consumer and I/O
 * thread, the connections with the groups they joined and their channel
 * names) is kept by router_members.c, which has its design.
 *
 * group_send(G, event) posts ONE mail per consumer type with local members in
 * G (HR_MAIL_CONSUMER_EVENT, p1 = hr_fanout): the event (one reference) and,
 * per I/O thread, the hr_idlist of that consumer's members on that thread:
 * the snapshot cached in their bucket, rebuilt only when the bucket changed
 * since the last send. A steady broadcast to 10,000 members therefore costs
 * the router O(buckets) = O(I/O threads x consumer types), not O(members);
 * the per-member work happens once per event on the I/O threads.
 *
 * Members that are not local (channels living in the layer: another
 * process's or the memory layer's) are reached with hr_layer_group_send,
 * after the local fan-out; its error, if any, is the reply. A group with no
 * members at all is still a success (Channels: group_send never fails for
 * that). send(channel) goes to a registered local connection as a one-id
 * fan-out, else to hr_layer_send (0, HR_EFULL, HR_EBADNAME); with no layer,
 * an unknown channel is HR_ENOENT.
 *
 * Backpressure and drops. Callers feel backpressure from the router's own
 * bounded mailbox: an hr_router_* call gets HR_EAGAIN once timeout_ms ran out.
 * The router itself must not stall behind one slow consumer, so it posts a
 * fan-out with a short timeout (ROUTER_CONSUMER_TIMEOUT_MS); if the consumer
 * is still full the fan-out is freed and counted in stats.dropped (a send to
 * one channel then replies HR_EFULL, as a full channel would).
 *
 * Recovery (history.h, history_table.c, docs/RECOVERY.md). A group with a
 * --history rule has a ring in r->hist. Its group_sends are numbered here
 * (offset = last + 1), and the envelope frame is built here once and kept in
 * the ring; members that asked for `recover` sit in buckets of their own
 * (bucket.rec) and get that frame (hr_fanout.env, .rids), the others the
 * plain frame their consumer builds. A resume is answered in the same
 * router turn that adds the member: the replay and the `recovered` frame go
 * to the member's consumer, which posts them to its I/O thread ahead of any
 * fan-out the router makes later, so replay and live frames meet with no
 * gap and no duplicate (the I/O thread also drops envelopes at or below the
 * replay's floor). When a group's ring is replaced by one of another epoch
 * (external numbering: the history was lost in Redis), its recover members
 * are closed with 1013 before any frame of the new epoch (epoch_moved).
 *
 * The posting side (hr_router_* calls from any thread) is router_api.c;
 * resumes that wait for a shared history (external numbering) are kept in
 * router_hist.c; the router's struct is in router_int.h.
 *
 * Replies fire exactly once per accepted request: on the router thread, or,
 * for a group_send with local members, on the consumer thread that answers
 * the fan-out the reply travels with (post_fanouts, actor.h). At destroy,
 * send and group_send requests still queued are answered with HR_ECANCELED
 * without being delivered; membership requests are still
 * applied (they are cheap and keep the state consistent until it is freed).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/consumer.h"
#include "actors/history_int.h"
#include "actors/router_int.h"
#include "actors/router_members.h"

#define ROUTER_CONSUMER_TIMEOUT_MS 5
/* A resume's answer is waited for longer: without it the client never
 * gets its `recovered` frame. */
#define ROUTER_REPLAY_TIMEOUT_MS 100
#define ROUTER_DEFAULT_CAPACITY 4096

/* ---------------------------------------------------------------- fan-out */

/* Answer q (once: a later call does nothing). */
static void
reply(req *q, int status)
{
	if (q->reply != NULL)
		q->reply(q->reply_arg, status);
	q->reply = NULL;
}

/* Hand f to consumer c; frees it and counts a drop on failure. */
static int
post_fanout(hr_router *r, uint16_t c, hr_fanout *f, int timeout_ms)
{
	hr_mail mail = { .kind = HR_MAIL_CONSUMER_EVENT, .p1 = f };
	int rv = hr_actor_send(r->consumers[c], &mail, timeout_ms);
	if (rv != 0) {
		hr_fanout_free(f);
		atomic_fetch_add(&r->st_dropped, 1);
		return rv;
	}
	atomic_fetch_add(&r->st_fanouts, 1);
	return 0;
}

/*
 * A group_send's fan-outs, one per consumer (NULL: none), posted in consumer
 * order. The request's reply travels with the last one: its consumer answers
 * it after posting the event's frames (actor.h, hr_reply_fn), so an HTTP
 * publish's answer reaches its I/O thread in the same mailbox batch as the
 * frames instead of in a message of its own (bench/README.md, "This build
 * against the one before nng and msgpack-c"). A fan-out that cannot be
 * posted is freed here, which answers the reply on this thread.
 */
static void
post_fanouts(hr_router *r, hr_fanout *const *fs, req *q, int status)
{
	uint16_t last = UINT16_MAX;
	for (uint16_t c = 0; c < r->n_consumers; c++)
		if (fs[c] != NULL)
			last = c;
	for (uint16_t c = 0; c < r->n_consumers; c++) {
		if (fs[c] == NULL)
			continue;
		if (c == last && q->reply != NULL) {
			fs[c]->reply = q->reply;
			fs[c]->reply_arg = q->reply_arg;
			fs[c]->status = status;
			q->reply = NULL;
		}
		(void)post_fanout(r, c, fs[c], ROUTER_CONSUMER_TIMEOUT_MS);
	}
}

/*
 * The group's history moved to another epoch (its ring was replaced by ring
 * generation gen: the history was lost in Redis). Its recover members took
 * offsets of the old epoch, and the new one numbers from 1 again, so they
 * are closed with 1013 (their clients resume, and are told recovered:false)
 * rather than left to skip the new offsets as frames they already have.
 * Posted through their consumers, ahead of any frame of the new epoch;
 * members without recover are not touched.
 */
static void
epoch_moved(hr_router *r, const char *gname, uint32_t gen)
{
	group *g = hr_router__group_get(r, gname, strlen(gname));

	for (uint16_t c = 0; g != NULL && c < r->n_consumers; c++) {
		hr_fanout *f = NULL;
		bool failed = false;
		for (uint32_t i = 0; i < g->nb && !failed; i++) {
			bucket *b = &g->b[i];
			if (b->consumer != c || !b->rec || b->n == 0)
				continue;
			if (f == NULL && (f = calloc(1, sizeof(*f))) == NULL) {
				failed = true;
				break;
			}
			f->gen = gen;
			if (f->n_threads < (uint32_t)b->thread + 1)
				f->n_threads = (uint32_t)b->thread + 1;
			failed = (f->rids[b->thread] = hr_router__bucket_snapshot(b)) == NULL;
		}
		/* Lost (counted as a drop): their I/O threads still close them
		 * at the new epoch's first frame, whose generation differs. */
		if (failed) {
			hr_fanout_free(f);
			atomic_fetch_add(&r->st_dropped, 1);
		} else if (f != NULL) {
			(void)post_fanout(r, c, f, ROUTER_REPLAY_TIMEOUT_MS);
		}
	}
}

/* hr_history__sweep's question: does the group have local members? */
static bool
group_busy(void *arg, const char *gname)
{
	hr_router *r = arg;
	return hr_router__group_get(r, gname, strlen(gname)) != NULL;
}

/*
 * Answer a resume in the router turn that made c a member of g: the frames
 * after the position and the `recovered` frame, through c's consumer, which
 * passes them to c's I/O thread ahead of every fan-out the router makes
 * after this turn (docs/RECOVERY.md "Memory layer").
 */
static void
answer_resume(hr_router *r, group *g, conn *c, const req *q)
{
	hr_replay *rp
	    = hr_history__resume(&r->hist, g->name, &q->pos, q->live_from, c->m.thread, c->m.conn);
	if (rp == NULL) {
		atomic_fetch_add(&r->st_dropped, 1);
		return;
	}
	hr_mail mail = { .kind = HR_MAIL_CONSUMER_REPLAY, .p1 = rp };
	if (hr_actor_send(r->consumers[c->m.consumer], &mail, ROUTER_REPLAY_TIMEOUT_MS) != 0) {
		hr_replay_free(rp);
		atomic_fetch_add(&r->st_dropped, 1);
	}
}

/* ---------------------------------------------------------------- handlers */

static void
on_conn_open(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;

	hr_router__conn_open(r, q->m, q->name);
	hr_router__req_free(q);
}

static void
on_conn_close(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;

	hr_router__conn_close(r, q->m);
	hr_router__req_free(q);
}

/* Add q's connection to the group and, for a resume, answer it from the
 * ring, in this turn. deferred: q waited for a fill; its connection may have
 * closed meanwhile (then nothing is added). Frees q. */
static void
group_add_now(hr_router *r, req *q, bool deferred)
{
	group *g = hr_router__group_get(r, q->name, strlen(q->name));
	bool fresh = g == NULL;
	conn *c;

	if (deferred && hr_router__conn_get(r, q->m, false) == NULL)
		goto out; /* closed while it waited */
	if (g == NULL && (g = hr_router__group_new(r, q->name)) == NULL)
		goto out;
	if ((c = hr_router__conn_get(r, q->m, true)) != NULL) {
		if (hr_router__member_add(r, g, c) == 0 && q->recover)
			answer_resume(r, g, c, q);
		hr_router__conn_maybe_free(r, c);
	}
	/* A group left empty by a failed allocation must not linger. */
	if (!hr_router__group_drop_if_empty(r, g) && fresh && r->hooks.group_joined != NULL)
		r->hooks.group_joined(r->hooks.arg, g->name);
out:
	hr_router__req_free(q);
}

static void
on_group_add(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;

	hr_history__sweep(&r->hist, group_busy, r);
	/* known from now on, so that its close (which drops the record)
	 * tells group_add_now not to add it if it waits */
	if (q->recover && hr_router__conn_get(r, q->m, true) != NULL && hr_router__wait_fill(r, q))
		return;
	group_add_now(r, q, false);
}

static void
on_set_fill(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	hr_fill_set *fs = mail->p1;
	r->fill = fs->fn;
	r->fill_arg = fs->arg;
	r->up = fs->up;
	r->up_arg = fs->up_arg;
	free(fs);
	mail->p1 = NULL;
}

/* The shared history of a group arrived: into the ring, then the resumes
 * that waited for it are added and answered, in this one router turn. A
 * resume without a position starts where it began to wait: the frames that
 * reached the ring meanwhile (it waited because there was none) are live to
 * it, so a group_send made after its handshake is never lost. */
static void
on_history_fill(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	hr_fill *f = mail->p1;
	req **waiting = NULL;
	uint32_t gen_start = 0;
	uint64_t start = 0;

	mail->p1 = NULL;
	if (!hr_history__start(&r->hist, f->group, &gen_start, &start))
		start = 0;
	if (f->ok) {
		size_t len = strlen(f->group);
		uint32_t gen0 = hr_history__gen_of(&r->hist, f->group, len);
		hr_history__fill(
		    &r->hist, f->group, f->epoch, f->latest, f->offsets, f->events, f->n);
		uint32_t gen = hr_history__gen_of(&r->hist, f->group, len);
		if (gen0 != 0 && gen != 0 && gen != gen0)
			epoch_moved(r, f->group, gen);
	}
	if (hr_history__gen_of(&r->hist, f->group, strlen(f->group)) != gen_start)
		start = 0; /* the ring went to another epoch: from its latest */
	uint32_t n = hr_router__fill_take(r, f->group, &waiting);
	for (uint32_t i = 0; i < n; i++) {
		if (!waiting[i]->pos.given)
			waiting[i]->live_from = start;
		group_add_now(r, waiting[i], true);
	}
	free(waiting);
	hr_router__fill_free(f);
}

static void
on_group_discard(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;

	hr_router__group_discard(r, q->name, q->m);
	hr_router__req_free(q);
}

static void
on_group_send(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;
	size_t len = strlen(q->name);
	int status = 0;
	hr_history *h = NULL;
	hr_msg *env = NULL;
	uint64_t offset;
	bool deliver;

	atomic_fetch_add(&r->st_group_sends, 1);
	if (atomic_load(&r->cancelling)) {
		status = HR_ECANCELED;
		goto out;
	}
	if (q->badname || hr_name_check_group(q->name, len) != 0) {
		status = HR_EBADNAME;
		goto out;
	}
	hr_history__sweep(&r->hist, group_busy, r);
	uint32_t gen0 = hr_history__gen_of(&r->hist, q->name, len);
	if (!hr_history__position(&r->hist, q->name, len, q->at, q->pos.epoch, q->offset, q->flags,
	        q->local_only, &h, &offset, &deliver))
		goto out; /* a duplicate */
	/* External numbering that cannot be reached (Redis down): served
	 * locally without a position, as a group without history. */
	if (!deliver && !q->at && h == NULL && r->up != NULL && !r->up(r->up_arg))
		deliver = true;
	if (h != NULL) {
		if (gen0 != 0 && hr_history__gen(h) != gen0)
			epoch_moved(r, q->name, hr_history__gen(h));
		/* The envelope is built once, here, and kept: the ring's frame
		 * is what recover members get live and what a resume replays. */
		env = hr_history__envelope(&r->hist, -1, q->event, q->name, h, offset);
		hr_history__append(&r->hist, h, offset, env);
	}
	group *g = deliver ? hr_router__group_get(r, q->name, len) : NULL;
	if (g != NULL && h == NULL) {
		for (uint32_t i = 0; i < g->nb && env == NULL; i++)
			if (g->b[i].rec && g->b[i].n > 0)
				env = hr_history__envelope(
				    &r->hist, -1, q->event, q->name, NULL, 0);
	}
	hr_fanout *fs[HR_MAX_CONSUMERS] = { NULL };
	for (uint16_t c = 0; g != NULL && c < r->n_consumers; c++) {
		hr_fanout *f = NULL;
		for (uint32_t i = 0; i < g->nb; i++) {
			bucket *b = &g->b[i];
			if (b->consumer != c || b->n == 0)
				continue;
			if (f == NULL) {
				if ((f = calloc(1, sizeof(*f))) == NULL)
					break;
				f->event = hr_msg_ref(q->event);
				f->env = env != NULL ? hr_msg_ref(env) : NULL;
				f->offset = h != NULL ? offset : 0;
				f->gen = h != NULL ? hr_history__gen(h) : 0;
			}
			if (f->n_threads < (uint32_t)b->thread + 1)
				f->n_threads = (uint32_t)b->thread + 1;
			hr_idlist **slot = b->rec ? &f->rids[b->thread] : &f->ids[b->thread];
			if ((*slot = hr_router__bucket_snapshot(b)) == NULL) {
				/* Out of memory: this consumer misses the event. */
				hr_fanout_free(f);
				f = NULL;
				atomic_fetch_add(&r->st_dropped, 1);
				break;
			}
		}
		fs[c] = f;
	}
	hr_msg_unref(env);
	if (r->layer != NULL && !q->at) {
		int rv = hr_layer_group_send(r->layer, q->name, q->event, NULL);
		if (rv < 0)
			status = rv;
	}
	if (!q->local_only && !q->at && r->hooks.group_sent != NULL)
		r->hooks.group_sent(r->hooks.arg, q->name, q->event);
	post_fanouts(r, fs, q, status);
out:
	reply(q, status);
	hr_router__req_free(q);
}

static void
on_send(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	req *q = mail->p1;
	size_t len = strlen(q->name);
	int status;
	conn *c;

	atomic_fetch_add(&r->st_sends, 1);
	if (atomic_load(&r->cancelling)) {
		status = HR_ECANCELED;
	} else if (q->badname || hr_name_check_channel(q->name, len) != 0) {
		status = HR_EBADNAME;
	} else if ((c = hr_router__channel_get(r, q->name, len)) != NULL) {
		hr_fanout *f = calloc(1, sizeof(*f));
		hr_idlist *l = NULL;
		if (f == NULL || hr_idlist_alloc(1, &l) != 0) {
			free(f);
			status = HR_ENOMEM;
		} else {
			l->ids[0] = c->m.conn;
			f->event = hr_msg_ref(q->event);
			if (c->rec) {
				/* {"type":"message","data":...}: no group, no position */
				f->env = hr_history__envelope(
				    &r->hist, c->m.consumer, q->event, NULL, NULL, 0);
				f->rids[c->m.thread] = l;
			} else {
				f->ids[c->m.thread] = l;
			}
			f->n_threads = (uint32_t)c->m.thread + 1;
			status = post_fanout(r, c->m.consumer, f, ROUTER_CONSUMER_TIMEOUT_MS) == 0
			    ? 0
			    : HR_EFULL;
		}
	} else if (r->layer != NULL) {
		status = hr_layer_send(r->layer, q->name, q->event);
	} else {
		status = HR_ENOENT;
	}
	reply(q, status);
	hr_router__req_free(q);
}

static void
on_set_hooks(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	hr_router_hooks *h = mail->p1;

	r->hooks = *h;
	free(h);
	/* Groups that already have members count as joined now. */
	if (r->hooks.group_joined != NULL) {
		hr_map_iter it;
		hr_map_entry *e;
		hr_map_iter_init(&it, &r->groups);
		while ((e = hr_map_next(&it)) != NULL)
			r->hooks.group_joined(r->hooks.arg, e->str);
	}
}

static void
on_set_history(hr_actor *self, void *state, hr_mail *mail)
{
	hr_router *r = state;
	hr_history__table_set(&r->hist, mail->p1); /* takes it */
	mail->p1 = NULL;
}

/* Mail never handled (the actor was gone): answer and free. */
static void
router_drop(void *arg, hr_mail *mail)
{
	req *q = mail->p1;
	if (mail->kind == R_HISTORY_FILL) {
		hr_router__fill_free(mail->p1);
		return;
	}
	if (mail->kind == R_SET_HOOKS || mail->kind == R_SET_HISTORY || mail->kind == R_SET_FILL) {
		free(mail->p1);
		return;
	}
	if (q == NULL)
		return;
	reply(q, HR_ECANCELED);
	hr_router__req_free(q);
}

static const hr_actor_fn router_handlers[] = {
	[R_CONN_OPEN - HR_MAIL_USER] = on_conn_open,
	[R_CONN_CLOSE - HR_MAIL_USER] = on_conn_close,
	[R_GROUP_ADD - HR_MAIL_USER] = on_group_add,
	[R_GROUP_DISCARD - HR_MAIL_USER] = on_group_discard,
	[R_GROUP_SEND - HR_MAIL_USER] = on_group_send,
	[R_SEND - HR_MAIL_USER] = on_send,
	[R_SET_HOOKS - HR_MAIL_USER] = on_set_hooks,
	[R_SET_HISTORY - HR_MAIL_USER] = on_set_history,
	[R_SET_FILL - HR_MAIL_USER] = on_set_fill,
	[R_HISTORY_FILL - HR_MAIL_USER] = on_history_fill,
};

/* ---------------------------------------------------------------- public */

int
hr_router_create(hr_router **out, hr_layer *layer, hr_actor *const *consumers, size_t n_consumers,
    size_t mailbox_capacity)
{
	hr_router *r;
	int rv;

	if (out == NULL || n_consumers > HR_MAX_CONSUMERS || (n_consumers > 0 && consumers == NULL))
		return HR_EINVAL;
	for (size_t i = 0; i < n_consumers; i++)
		if (consumers[i] == NULL)
			return HR_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return HR_ENOMEM;
	r->layer = layer;
	r->n_consumers = n_consumers;
	hr_router__members_init(r);
	hr_history__table_init(&r->hist);
	hr_map_init(&r->pending, &hr_router__pending_type, 0);
	for (size_t i = 0; i < n_consumers; i++)
		r->consumers[i] = consumers[i];
	atomic_init(&r->cancelling, false);
	atomic_init(&r->st_group_sends, 0);
	atomic_init(&r->st_sends, 0);
	atomic_init(&r->st_fanouts, 0);
	atomic_init(&r->st_groups, 0);
	atomic_init(&r->st_members, 0);
	atomic_init(&r->st_dropped, 0);
	hr_actor_spec spec = {
		.name = "herald-router",
		.mailbox_capacity = mailbox_capacity ? mailbox_capacity : ROUTER_DEFAULT_CAPACITY,
		.state = r,
		.handlers = router_handlers,
		.n_handlers = sizeof(router_handlers) / sizeof(router_handlers[0]),
		.drop = router_drop,
	};
	if ((rv = hr_actor_spawn(&r->actor, &spec)) != 0) {
		hr_history__table_fini(&r->hist);
		hr_map_fini(&r->pending);
		free(r);
		return rv;
	}
	*out = r;
	return 0;
}

void
hr_router_destroy(hr_router *r)
{
	if (r == NULL)
		return;
	atomic_store(&r->cancelling, true);
	hr_actor_join(r->actor);    /* answers what is queued, then exits */
	hr_router__members_fini(r); /* frees each group and conn */
	hr_map_fini(&r->pending);   /* frees each waiting request */
	hr_history__table_fini(&r->hist);
	free(r);
}

void
hr_router_get_stats(hr_router *r, hr_router_stats *out)
{
	out->group_sends = atomic_load(&r->st_group_sends);
	out->sends = atomic_load(&r->st_sends);
	out->fanouts = atomic_load(&r->st_fanouts);
	out->groups = atomic_load(&r->st_groups);
	out->members = atomic_load(&r->st_members);
	out->dropped = atomic_load(&r->st_dropped);
}

void
hr_router_get_history_stats(hr_router *r, hr_history_stats *out)
{
	hr_history__stats(&r->hist, out);
}

hr_actor *
hr_router__actor(hr_router *r)
{
	return r->actor;
}

size_t
hr_router__n_consumers(const hr_router *r)
{
	return r->n_consumers;
}
