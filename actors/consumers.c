/*
 * consumers.c: the consumer actors (notifications, user_notifications,
 * health), one thread each, fed by the router with fan-outs.
 *
 * The hot path's per-event work happens here, once per event and never per
 * recipient: read the event's type, run its handler (for
 * notification_message: msgpack -> JSON text straight into a buffer that
 * already has room for the WebSocket header), close the frame, then post one
 * mail per I/O thread with a reference to the frame and to the ids of the
 * members on that thread. I/O threads only push pointers onto queues.
 *
 * Threads: each actor's state is touched only by its own thread; the
 * counters are atomics read by the metrics endpoint.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "actors/consumer.h"

/* How long a consumer waits for room in a busy I/O thread's mailbox before it
 * drops that thread's share of an event (and counts it). */
#define IO_POST_TIMEOUT_MS 500

struct hr_consumers;

typedef struct consumer {
	struct hr_consumers *owner;
	int type;    /* HR_CONSUMER_* */
	hr_buf json; /* scratch, reused for every event; ONLY touched by the actor */
	atomic_uint_fast64_t events, frames, unknown_type, bad_event, io_full;
} consumer;

struct hr_consumers {
	hr_mailbox *io[HR_MAX_THREADS]; /* borrowed */
	size_t n_io;
	consumer cons[HR_N_CONSUMERS];
	hr_actor *actors[HR_N_CONSUMERS];
};

static const char *const consumer_names[HR_N_CONSUMERS] = {
	"notifications",
	"user_notifications",
	"health",
};

/* Post frame to every I/O thread that has ids for it in lists (n threads),
 * with offset (0: none) and the ring generation gen (0: none) for the
 * thread to check; frame NULL: only the offset and generation. Takes one
 * reference per thread; the caller keeps its own. */
static void
post_frame(consumer *c, hr_msg *frame, hr_idlist *const *lists, uint32_t n_threads, uint64_t offset,
    uint32_t gen)
{
	hr_consumers *cs = c->owner;
	uint32_t n = n_threads < cs->n_io ? n_threads : (uint32_t)cs->n_io;

	for (uint32_t i = 0; i < n; i++) {
		hr_idlist *ids = lists[i];
		if (ids == NULL || ids->n == 0)
			continue;
		hr_mail m = {
			.kind = HR_MAIL_IO_FRAME,
			.u32 = gen,
			.u64 = offset,
			.p1 = frame != NULL ? hr_msg_ref(frame) : NULL,
			.p2 = hr_idlist_ref(ids),
		};
		if (hr_mailbox_post(cs->io[i], &m, IO_POST_TIMEOUT_MS) != 0) {
			hr_msg_unref(frame);
			hr_idlist_unref(ids);
			atomic_fetch_add(&c->io_full, 1);
		}
	}
}

/* notification_message: the frame is json.dumps(event["message"]). */
static int
notification_message_json(const unsigned char *ev, size_t len, hr_buf *out)
{
	const unsigned char *val;
	size_t vlen;
	int rv;

	if ((rv = hr_codec_map_get(ev, len, "message", &val, &vlen)) != 0)
		return rv;
	return hr_codec_msgpack_to_json(val, vlen, out);
}

/* Appends the frame's JSON for the event to out. */
typedef int (*event_handler)(const unsigned char *ev, size_t len, hr_buf *out);

typedef struct handler_entry {
	const char *type; /* after '.' -> '_' */
	event_handler fn;
	unsigned consumers; /* bit mask of HR_CONSUMER_* that handle it */
} handler_entry;

static const handler_entry handler_table[] = {
	{ "notification_message", notification_message_json,
	    (1u << HR_CONSUMER_NOTIFICATIONS) | (1u << HR_CONSUMER_USER) },
};

/* The consumers that serve group members (every route that joins a group). */
#define GROUP_CONSUMERS ((1u << HR_CONSUMER_NOTIFICATIONS) | (1u << HR_CONSUMER_USER))

static event_handler
find_handler(unsigned mask, const char *type, size_t tlen)
{
	char name[64];

	if (tlen == 0 || tlen >= sizeof(name))
		return NULL;
	for (size_t i = 0; i < tlen; i++)
		name[i] = type[i] == '.' ? '_' : type[i];
	name[tlen] = '\0';
	for (size_t i = 0; i < sizeof(handler_table) / sizeof(handler_table[0]); i++) {
		if ((handler_table[i].consumers & mask) && strcmp(handler_table[i].type, name) == 0)
			return handler_table[i].fn;
	}
	return NULL;
}

int
hr_consumers__event_json(int ctype, const unsigned char *ev, size_t len, hr_buf *out)
{
	const char *type;
	size_t tlen;
	event_handler fn;

	if (hr_codec_get_type(ev, len, &type, &tlen) != 0)
		return HR_EBADMSG;
	unsigned mask = ctype < 0 ? GROUP_CONSUMERS : 1u << ctype;
	if ((fn = find_handler(mask, type, tlen)) == NULL)
		return HR_ENOENT;
	return fn(ev, len, out) == 0 ? 0 : HR_EBADMSG;
}

static bool
any_ids(hr_idlist *const *lists, uint32_t n)
{
	for (uint32_t i = 0; i < n && i < HR_MAX_THREADS; i++)
		if (lists[i] != NULL && lists[i]->n > 0)
			return true;
	return false;
}

static void
on_event(hr_actor *self, void *state, hr_mail *mail)
{
	consumer *c = state;
	hr_fanout *f = mail->p1;
	const char *type;
	size_t tlen;
	hr_msg *frame = NULL;
	event_handler fn;

	mail->p1 = NULL;
	if (f == NULL)
		return;
	atomic_fetch_add(&c->events, 1);
	/* Recover members: the envelope the router built (and keeps in the
	 * group's history), never encoded again here. An offset without a
	 * frame (an event no consumer handles) goes too: their I/O thread sees
	 * every offset, so it tells a skipped one from a lost one; so does an
	 * epoch change (no event, only the new generation, actor.h). */
	if ((f->env != NULL || f->offset > 0 || f->gen != 0) && any_ids(f->rids, f->n_threads))
		post_frame(c, f->env, f->rids, f->n_threads, f->offset, f->gen);
	if (f->event == NULL) {
		if (f->gen == 0)
			atomic_fetch_add(&c->bad_event, 1);
		goto out;
	}
	const unsigned char *ev = hr_msg_data(f->event);
	size_t len = hr_msg_len(f->event);
	if (hr_codec_get_type(ev, len, &type, &tlen) != 0) {
		atomic_fetch_add(&c->bad_event, 1);
		goto out;
	}
	if ((fn = find_handler(1u << c->type, type, tlen)) == NULL) {
		atomic_fetch_add(&c->unknown_type, 1);
		goto out;
	}
	if (any_ids(f->ids, f->n_threads)) {
		hr_buf_reset(&c->json);
		if (fn(ev, len, &c->json) != 0 || hr_ws_frame_text(&c->json, &frame) != 0) {
			atomic_fetch_add(&c->bad_event, 1);
			goto out;
		}
		atomic_fetch_add(&c->frames, 1);
		post_frame(c, frame, f->ids, f->n_threads, 0, 0);
		hr_msg_unref(frame);
	}
out:
	hr_fanout_free(f);
}

/* A resume's answer: to the connection's I/O thread, behind every frame
 * this consumer posted before it and ahead of every later one. */
static void
on_replay(hr_actor *self, void *state, hr_mail *mail)
{
	consumer *c = state;
	hr_replay *rp = mail->p1;

	mail->p1 = NULL;
	if (rp == NULL)
		return;
	if (rp->thread >= c->owner->n_io) {
		hr_replay_free(rp);
		return;
	}
	hr_mail m = { .kind = HR_MAIL_IO_REPLAY, .p1 = rp };
	if (hr_mailbox_post(c->owner->io[rp->thread], &m, IO_POST_TIMEOUT_MS) != 0) {
		hr_replay_free(rp);
		atomic_fetch_add(&c->io_full, 1);
	}
}

static void
drop_mail(void *arg, hr_mail *mail)
{
	if (mail->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(mail->p1);
	else if (mail->kind == HR_MAIL_CONSUMER_REPLAY)
		hr_replay_free(mail->p1);
	mail->p1 = NULL;
}

static const hr_actor_fn consumer_handlers[] = {
	[HR_MAIL_CONSUMER_EVENT - HR_MAIL_USER] = on_event,
	[HR_MAIL_CONSUMER_REPLAY - HR_MAIL_USER] = on_replay,
};

int
hr_consumers_create(hr_consumers **out, hr_mailbox *const *io, size_t n_io)
{
	hr_consumers *cs;
	int rv;

	if (n_io == 0 || n_io > HR_MAX_THREADS)
		return HR_EINVAL;
	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return HR_ENOMEM;
	memcpy(cs->io, io, n_io * sizeof(io[0]));
	cs->n_io = n_io;
	for (int i = 0; i < HR_N_CONSUMERS; i++) {
		consumer *c = &cs->cons[i];
		c->owner = cs;
		c->type = i;
		hr_buf_init(&c->json, HR_FRAME_HEADROOM);
		atomic_init(&c->events, 0);
		atomic_init(&c->frames, 0);
		atomic_init(&c->unknown_type, 0);
		atomic_init(&c->bad_event, 0);
		atomic_init(&c->io_full, 0);
	}
	for (int i = 0; i < HR_N_CONSUMERS; i++) {
		hr_actor_spec spec = {
			.name = consumer_names[i],
			.mailbox_capacity = 4096,
			.state = &cs->cons[i],
			.handlers = consumer_handlers,
			.n_handlers = sizeof(consumer_handlers) / sizeof(consumer_handlers[0]),
			.drop = drop_mail,
		};
		if ((rv = hr_actor_spawn(&cs->actors[i], &spec)) != 0)
			goto fail;
	}
	*out = cs;
	return 0;
fail:
	hr_consumers_destroy(cs);
	return rv;
}

hr_actor *const *
hr_consumers_actors(hr_consumers *c)
{
	return c->actors;
}

void
hr_consumers_get_stats(hr_consumers *cs, hr_consumer_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (cs == NULL)
		return;
	for (int i = 0; i < HR_N_CONSUMERS; i++) {
		consumer *c = &cs->cons[i];
		out->events += atomic_load(&c->events);
		out->frames += atomic_load(&c->frames);
		out->unknown_type += atomic_load(&c->unknown_type);
		out->bad_event += atomic_load(&c->bad_event);
		out->io_full += atomic_load(&c->io_full);
	}
}

void
hr_consumers_destroy(hr_consumers *cs)
{
	if (cs == NULL)
		return;
	for (int i = 0; i < HR_N_CONSUMERS; i++)
		hr_actor_join(cs->actors[i]);
	for (int i = 0; i < HR_N_CONSUMERS; i++)
		hr_buf_fini(&cs->cons[i].json);
	free(cs);
}
