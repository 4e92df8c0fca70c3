/*
 * actor.h: herald's actor runtime and its actors, the public face of the
 * `actors` module.
 *
 * An actor is a thread, a mailbox (bounded, on an nng inproc socket pair; each
 * sender's mail is handled in the order it was posted) and a handler per mail
 * kind. Its state is touched only by its own thread. Mail is a small fixed
 * envelope (hr_mail); large payloads travel as pointers whose ownership moves
 * with the mail (refcounted hr_msg buffers for anything shared).
 *
 * The actors: the router (group membership and fan-out), the consumers
 * (notifications, user_notifications, health: one actor per consumer type),
 * the worker (the notification pipeline) and, with --redis, the Redis bridge.
 *
 * Threads: every function here may be called from any thread unless its
 * comment says otherwise.
 */
#ifndef HERALD_ACTOR_H
#define HERALD_ACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layer/layer.h"

/* ---------------------------------------------------------------- mail */

/*
 * The envelope. `kind` selects the handler; p1/p2 are owned by the mail (the
 * receiver, or the mailbox's drop function when the mail is never handled);
 * u32/u64 are plain values.
 */
typedef struct hr_mail {
	uint32_t kind;
	uint32_t u32;
	uint64_t u64;
	void *p1;
	void *p2;
} hr_mail;

/* Frees what a mail owns when it is discarded unhandled (mailbox destroyed with
 * mail inside). Called on the destroying thread. */
typedef void (*hr_mail_drop_fn)(void *arg, hr_mail *mail);

/* ---------------------------------------------------------------- mailbox */

/*
 * A bounded FIFO of hr_mail, many producers, one consumer, holding exactly
 * `capacity` mails (1..8192; HR_EINVAL otherwise), carried by an nng inproc
 * socket pair. Each producer's mail is received in the order it posted it.
 * Outside a batch scope (below) a post hands its mail to nng before it
 * returns, so mail is received in the order those posts completed, across all
 * posters. Full: a post with timeout_ms == 0 returns HR_EAGAIN at once;
 * timeout_ms > 0 waits up to that long (then HR_ETIMEDOUT); < 0 waits until
 * there is room. After close, posts fail with HR_ECLOSED and recv returns
 * every mail accepted before the close, then HR_ECLOSED. A successful post
 * transfers ownership of the mail's pointers; a failed post (also HR_ENOMEM)
 * leaves them with the caller.
 */
typedef struct hr_mailbox hr_mailbox;

/* HR_EINVAL, HR_ENOMEM, HR_EIO (nng refused a socket). */
int hr_mailbox_create(hr_mailbox **out, size_t capacity, hr_mail_drop_fn drop, void *drop_arg);
/* Closes, then drops (with the drop function, on this thread) every mail not
 * yet received, including mail still inside nng. NULL ok. Consumer side: no
 * post may be running or batched for it anywhere. */
void hr_mailbox_destroy(hr_mailbox *mb);
int hr_mailbox_post(hr_mailbox *mb, const hr_mail *mail, int timeout_ms);
/* Consumer side only. timeout_ms as for post. 0 never waits: HR_EAGAIN when
 * no mail has reached the mailbox yet (a posted mail crosses nng's threads, so
 * it may show a few microseconds after its post returned; poll the fd or use
 * a timeout to wait for it). */
int hr_mailbox_recv(hr_mailbox *mb, hr_mail *out, int timeout_ms);
/* Consumer side only: mails already taken out of nng (the rest of a batch)
 * that recv will hand out without looking at nng. The fd does not poll
 * readable for them, so a drain loop must not stop while this is non-zero. */
size_t hr_mailbox_buffered(const hr_mailbox *mb);
/* A descriptor that polls readable while nng holds mail for this mailbox, and
 * after close until recv has returned HR_ECLOSED (nng's NNG_OPT_RECVFD).
 * Owned by nng: never read, write or close it; dup() it to hand it to a loop
 * that closes what it is given. 0, HR_EINVAL or HR_EIO. */
int hr_mailbox_fd(hr_mailbox *mb, int *fd);
/* Stop accepting posts; wakes a blocked recv and every waiting post. Idempotent. */
void hr_mailbox_close(hr_mailbox *mb);

/*
 * Batch scope, per thread. Between begin and end, this thread's posts are
 * collected per destination mailbox (capacity is still taken at the post, and
 * a successful post still owns nothing the caller must free) and handed to nng
 * HR_MAILBOX_BATCH mails per message: when a batch fills, when a post has to
 * wait for room, and at end, which sends every batch in the order the batches
 * were started. Mail in a batch is not yet visible to its receiver, so the
 * code that opens a scope must end it before it waits for anything or lets
 * anyone else act on what it posted. The actor runtime opens one around each
 * drain (handlers never call these), the I/O thread around its mailbox drain.
 * Scopes nest; hr_mailbox_flush sends the batches now. Any thread.
 */
void hr_mailbox_batch_begin(void);
void hr_mailbox_batch_end(void);
void hr_mailbox_flush(void);
/* For a loop thread whose posts come from many callbacks in one turn (an I/O
 * thread's HTTP requests): open a scope unless this thread has a deferred one
 * open already, and say whether it did; the caller then arranges for
 * hr_mailbox_batch_end_deferred to run at the end of the loop's turn (which
 * ends it; a no-op when none is open). A post that others must see before
 * the caller acts again still calls hr_mailbox_flush after it. */
bool hr_mailbox_batch_defer(void);
void hr_mailbox_batch_end_deferred(void);

/* ---------------------------------------------------------------- actor */

typedef struct hr_actor hr_actor;
typedef void (*hr_actor_fn)(hr_actor *self, void *state, hr_mail *mail);

/* Mail kinds below HR_MAIL_USER are the runtime's. */
#define HR_MAIL_STOP 0u
#define HR_MAIL_USER 16u

typedef struct hr_actor_spec {
	const char *name;        /* for logs and thread names, copied */
	size_t mailbox_capacity; /* mail slots; 0 means 1024 */
	void *state;             /* owned by the caller; touched only by the actor */
	/* Handlers indexed by kind - HR_MAIL_USER; a NULL entry or a kind past the
	 * table drops the mail (with `drop`). The table is borrowed. */
	const hr_actor_fn *handlers;
	size_t n_handlers;
	void (*on_start)(hr_actor *self, void *state); /* optional, on the actor thread */
	void (*on_stop)(hr_actor *self, void *state);  /* optional, on the actor thread */
	hr_mail_drop_fn drop; /* optional: frees an unhandled mail's pointers */
} hr_actor_spec;

/* Start the actor's thread. HR_ENOMEM, HR_EIO. */
int hr_actor_spawn(hr_actor **out, const hr_actor_spec *spec);
/* Post mail (see hr_mailbox_post for timeout and ownership). HR_ECLOSED once
 * the actor is stopping. From an actor's handler the mail travels in the
 * handler thread's batch and leaves when its drain ends. */
int hr_actor_send(hr_actor *a, const hr_mail *mail, int timeout_ms);
/* Ask the actor to stop: mail posted before this call is still handled, then
 * on_stop runs and the thread exits. Idempotent. */
void hr_actor_stop(hr_actor *a);
/* Stop (if not yet), wait for the thread, free everything. NULL ok. Not from
 * the actor's own thread. */
void hr_actor_join(hr_actor *a);
const char *hr_actor_name(const hr_actor *a);

/* ---------------------------------------------------------------- router */

/*
 * A local member: one WebSocket connection, owned by I/O thread `thread`,
 * served by consumer type `consumer`, identified on its thread by `conn`
 * (slot and generation, so a stale id never reaches a reused slot).
 */
typedef struct hr_member {
	uint16_t thread;
	uint16_t consumer;
	uint32_t flags; /* HR_MEMBER_*; not part of the member's identity */
	uint64_t conn;
} hr_member;
/* The connection asked for recovery (`?recover`): it gets envelopes. */
#define HR_MEMBER_RECOVER 1u

/* A refcounted immutable list of connection ids on one I/O thread. */
typedef struct hr_idlist {
	atomic_uint refs;
	uint32_t n;
	uint64_t ids[];
} hr_idlist;
int hr_idlist_alloc(uint32_t n, hr_idlist **out);
hr_idlist *hr_idlist_ref(hr_idlist *l);
void hr_idlist_unref(hr_idlist *l);

#define HR_MAX_THREADS 64
#define HR_MAX_CONSUMERS 8

/* The outcome of a send or group_send: 0, HR_EFULL, HR_EBADNAME, HR_ENOENT,
 * HR_ECANCELED (shutdown). Fires exactly once per accepted request: on the
 * router thread, except for a group_send with local members, whose reply
 * fires on the thread of the last consumer it fanned out to, after that
 * consumer posted the event's frames (or wherever its fan-out was dropped).
 * So it must be safe to call from any thread. */
typedef void (*hr_reply_fn)(void *arg, int status);

/*
 * What the router hands a consumer actor for one event: the event (a msgpack
 * map, one reference) and, per I/O thread, the ids of that consumer's members
 * there (NULL where none). Refcounted; the consumer takes a ref per thread it
 * passes a list on to.
 */
typedef struct hr_fanout {
	hr_msg *event;
	uint32_t n_threads;
	hr_idlist *ids[HR_MAX_THREADS];
	/* Members with HR_MEMBER_RECOVER, per thread (NULL where none): they get
	 * env (a complete envelope frame built by the router, one reference;
	 * NULL when the event has no frame) with `offset` (0: none). */
	hr_idlist *rids[HR_MAX_THREADS];
	hr_msg *env;
	uint64_t offset;
	/* The generation of the group's history ring that env and offset
	 * belong to (history_int.h; 0: none). With event NULL, the fan-out is
	 * an epoch change: the group's history moved to ring `gen`, and the
	 * rids members, whose offsets were of an older ring, are closed with
	 * 1013 by their I/O thread (consumer.h). */
	uint32_t gen;
	/* A group_send's reply, answered with status when the fan-out is freed:
	 * by its consumer after it posted the frames, or wherever it is dropped
	 * (NULL: none). */
	hr_reply_fn reply;
	void *reply_arg;
	int status;
} hr_fanout;
void hr_fanout_free(hr_fanout *f);
/* Answer f's reply now (once; hr_fanout_free answers one not yet answered). */
void hr_fanout_answer(hr_fanout *f);

/* Consumer actors receive fan-outs as mail of this kind: p1 = hr_fanout* (owned). */
#define HR_MAIL_CONSUMER_EVENT (HR_MAIL_USER + 0)

/*
 * A resume's answer (history.h), for connection `conn` on I/O thread
 * `thread`: n frames (one reference each: the replayed envelopes, oldest
 * first, then the `recovered` frame) to queue on it before anything later,
 * and `floor`, the group's latest offset: envelopes of this group with an
 * offset <= floor are never delivered to it live; `gen`, the generation of
 * the ring that floor belongs to (0: no ring).
 */
typedef struct hr_replay {
	uint16_t thread;
	uint32_t gen;
	uint64_t conn;
	uint64_t floor;
	uint32_t n;
	hr_msg *frames[];
} hr_replay;
/* Drops every reference and frees. NULL ok. */
void hr_replay_free(hr_replay *rp);
/* Consumer actors pass a resume's answer on: p1 = hr_replay* (owned), posted
 * to its thread's I/O mailbox as HR_MAIL_IO_REPLAY. */
#define HR_MAIL_CONSUMER_REPLAY (HR_MAIL_USER + 1)

typedef struct hr_router hr_router;

/* layer: borrowed; used for channels that are not local connections (store,
 * capacity) and for members that are not local. consumers: borrowed actors,
 * indexed by hr_member.consumer. */
int hr_router_create(hr_router **out, hr_layer *layer, hr_actor *const *consumers,
    size_t n_consumers, size_t mailbox_capacity);
/* Stops, joins, frees. NULL ok. Mail already queued is still handled in order,
 * except that send and group_send requests are answered with HR_ECANCELED
 * instead of being delivered: every accepted request's reply fires once. */
void hr_router_destroy(hr_router *r);

/* All of these post to the router and return at once: 0 once the request is
 * queued (then it is handled in order with every other request), HR_EAGAIN if
 * the router's mailbox is full and timeout_ms ran out (backpressure), HR_ENOMEM,
 * HR_ECLOSED. Strings are copied. */

/* The calls without a reply also check their arguments before queueing:
 * HR_EBADNAME for an invalid group or channel name, HR_EINVAL for a member
 * whose consumer or thread is out of range. send and group_send report a bad
 * name through the reply (HR_EBADNAME). */

/* Register a local connection's channel name so that sends to it reach it. */
int hr_router_conn_open(hr_router *r, const char *channel, hr_member m, int timeout_ms);
/* Forget a connection: its channel name and every group it joined. */
int hr_router_conn_close(hr_router *r, const char *channel, hr_member m, int timeout_ms);
int hr_router_group_add(hr_router *r, const char *group, hr_member m, int timeout_ms);
int hr_router_group_discard(hr_router *r, const char *group, hr_member m, int timeout_ms);
/* group_send: event (msgpack map) is borrowed; the router takes a reference.
 * reply may be NULL. */
int hr_router_group_send(hr_router *r, const char *group, hr_msg *event, hr_reply_fn reply,
    void *reply_arg, int timeout_ms);
/* send to one channel (a local connection, or the layer). */
int hr_router_send(hr_router *r, const char *channel, hr_msg *event, hr_reply_fn reply,
    void *reply_arg, int timeout_ms);

/*
 * Federation hooks (the Redis bridge), called on the router thread, so they
 * must only post and return. group_joined: a group got its first local
 * member; group_left: its last local member left (both with the group's
 * name, borrowed for the call). group_sent: a group_send (not a _local one)
 * was fanned out locally; event is borrowed (take a reference to keep it).
 * Any hook may be NULL. The hooks' target must outlive the router.
 */
typedef struct hr_router_hooks {
	void *arg;
	void (*group_joined)(void *arg, const char *group);
	void (*group_left)(void *arg, const char *group);
	void (*group_sent)(void *arg, const char *group, hr_msg *event);
} hr_router_hooks;
/* Install hooks (copied), in order with the other requests; groups that
 * already have local members are reported to group_joined at once. */
int hr_router_set_hooks(hr_router *r, const hr_router_hooks *hooks, int timeout_ms);
/* group_send to the local members only (no group_sent hook): for messages
 * that came from Redis. */
int hr_router_group_send_local(hr_router *r, const char *group, hr_msg *event, hr_reply_fn reply,
    void *reply_arg, int timeout_ms);

typedef struct hr_router_stats {
	uint64_t group_sends;
	uint64_t sends;
	uint64_t fanouts; /* consumer mails posted */
	uint64_t groups;  /* groups with at least one local member now */
	uint64_t members; /* local memberships now */
	uint64_t dropped; /* fan-outs not delivered: consumer mailbox still full
	                   * after a short wait, or out of memory */
} hr_router_stats;
/* A snapshot (read with atomics; fine from any thread). */
void hr_router_get_stats(hr_router *r, hr_router_stats *out);

/* ---------------------------------------------------------------- worker */

/*
 * The worker: the reference Django project's Celery task as an actor
 * (docs/PROTOCOL.md "The worker"). hr_worker_submit validates a notification, gives it a uuid4
 * and a status record (queued), and posts it to the worker thread, which moves
 * it queued -> processing -> sent (or failed), calling group_send on
 * `notifications` (and `user_<user_id>` when set) at each step with
 * {"type":"notification_message","message":{"notification_id","status",
 * "timestamp"}}; the `sent` step's message also carries "notification":
 * {"id","title","body","data","user_id"} (null where unset).
 *
 * The status table keeps at most max_kept records (HR_WORKER_MAX_KEPT when 0).
 * Past that the oldest finished (sent or failed) record is forgotten; when
 * every kept record is still unfinished, submit refuses with HR_EAGAIN.
 * Memory: records are small and fixed-size; a notification's content lives
 * only while it is in the worker's mailbox (HR_WORKER_MAILBOX slots, bodies
 * of at most HR_WORKER_MAX_BODY bytes).
 *
 * Threads: submit and get may be called from any thread at once (the table
 * is under a mutex, held only to copy a record in or out); create and destroy
 * from the owning thread, with no submit or get running. The router must
 * outlive the worker.
 */
#define HR_WORKER_MAX_KEPT 10000
#define HR_WORKER_MAX_BODY (1024 * 1024)
#define HR_WORKER_MAILBOX 256
/* How long the worker waits for room in the router's mailbox per send. */
#define HR_WORKER_SEND_TIMEOUT_MS 2000

typedef struct hr_worker hr_worker;

/* A copy of one status record, for GET /api/notifications/{id}. Timestamps
 * are ISO-8601 UTC with microseconds, "2024-05-01T12:00:00.123456+00:00" (as
 * Django's timezone.now().isoformat()). */
typedef struct hr_notification_info {
	char id[37];
	char status[12]; /* "queued", "processing", "sent" or "failed" */
	char created_at[40];
	char updated_at[40];
} hr_notification_info;

/* Start the worker thread. router: borrowed, must outlive the worker.
 * max_kept: status records kept (0 = HR_WORKER_MAX_KEPT; at most 10,000,000).
 * HR_ENOMEM, HR_EINVAL, HR_EIO. */
int hr_worker_create(hr_worker **out, hr_router *router, size_t max_kept);
/* Finish every notification already submitted (their group_sends are made),
 * stop and join the thread, free everything. NULL ok. */
void hr_worker_destroy(hr_worker *w);
/*
 * Queue one notification. json/len: the body {"title": str, "body"?: str,
 * "user_id"?: str matching \w+ (ASCII) of at most 64 chars, "data"?: object}
 * (null counts as absent), borrowed for the call. On success writes the new id
 * (36 chars + NUL) to id_out and returns 0; the `queued` group_send follows
 * from the worker thread. Errors (nothing is queued, no id is kept):
 * HR_EINVAL with a one-line reason in err (not JSON, not an object, no string
 * title, bad body/user_id/data), HR_EMSGSIZE (over HR_WORKER_MAX_BODY),
 * HR_EAGAIN (mailbox full, or the table holds max_kept unfinished records),
 * HR_ECLOSED (stopping), HR_ENOMEM. err may be NULL when errlen is 0.
 */
int hr_worker_submit(
    hr_worker *w, const char *json, size_t len, char id_out[37], char *err, size_t errlen);
/* Copy the record of id (NUL-terminated) into out. 0, or HR_ENOENT when the id
 * is unknown (never submitted here, or forgotten past max_kept). */
int hr_worker_get(hr_worker *w, const char *id, hr_notification_info *out);

typedef struct hr_worker_stats {
	uint64_t submitted;
	uint64_t sent;
	uint64_t failed;
	uint64_t evicted; /* finished records forgotten past max_kept */
	uint64_t kept;    /* records in the table now */
} hr_worker_stats;
/* A snapshot (under the table's lock; any thread). */
void hr_worker_get_stats(hr_worker *w, hr_worker_stats *out);

#endif /* HERALD_ACTOR_H */
