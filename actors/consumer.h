/*
 * consumer.h: the consumer actors (notifications, user_notifications,
 * health), part of the `actors` module's public surface beside actor.h.
 *
 * One actor per consumer type. The router hands each one a fan-out
 * (HR_MAIL_CONSUMER_EVENT): the consumer dispatches the event by its type
 * ('.' -> '_', as Channels does), builds the outbound WebSocket frame ONCE
 * and posts ONE mail per I/O thread carrying a reference to that frame and to
 * the thread's id list. Unknown event types are dropped and counted.
 *
 * Threads: create/destroy from the node's main thread; the actors run on
 * their own threads; the counters may be read from any thread.
 */
#ifndef HERALD_CONSUMER_H
#define HERALD_CONSUMER_H

#include "actors/actor.h"

/* Consumer types, also the hr_member.consumer index given to the router. */
enum {
	HR_CONSUMER_NOTIFICATIONS = 0,
	HR_CONSUMER_USER = 1,
	HR_CONSUMER_HEALTH = 2,
	HR_N_CONSUMERS = 3,
};

/*
 * The mail kinds of an I/O thread's mailbox, all of them (the transport
 * module handles them; the consumers post the first).
 * HR_MAIL_IO_FRAME: p1 = hr_msg * (a complete, immutable WebSocket frame, one
 *   reference), p2 = hr_idlist * (one reference): queue the frame on every
 *   listed connection. u64: the envelope's offset (0 for plain frames and
 *   envelopes without one): a recover connection takes offsets in order,
 *   skips one at or below what it has (its replay), and is closed with 1013
 *   when one is missing (a frame lost on the way). p1 NULL with an offset:
 *   that offset has no frame (an event no consumer handles). u32: the
 *   generation of the group's history ring the offset belongs to (0:
 *   none): a recover connection takes the first it sees (or its replay's),
 *   and one that differs means the group's history moved to a new epoch,
 *   whose offsets start at 1 again: the connection is closed with 1013
 *   (never a silent skip). p1 NULL, offset 0 and a generation: only that
 *   (the router's epoch change, ahead of the new epoch's first frame).
 * HR_MAIL_IO_REPLAY: p1 = hr_replay * (owned): queue its frames on its
 *   connection and set the connection's replay floor.
 * HR_MAIL_IO_HTTP_REPLY: u64 = connection id, u32 = (uint32_t) the router's
 *   status: answer that connection's pending HTTP send.
 * HR_MAIL_IO_STOP: no payload: stop accepting and close the connections.
 * HR_MAIL_IO_TLS_RELOAD: no payload: re-read --tls-cert and --tls-key into
 *   the thread's context for its new connections (node.c checked the pair).
 */
#define HR_MAIL_IO_FRAME (HR_MAIL_USER + 1)
#define HR_MAIL_IO_HTTP_REPLY (HR_MAIL_USER + 2)
#define HR_MAIL_IO_STOP (HR_MAIL_USER + 3)
#define HR_MAIL_IO_TLS_RELOAD (HR_MAIL_USER + 4)
#define HR_MAIL_IO_REPLAY (HR_MAIL_USER + 5)

typedef struct hr_consumers hr_consumers;

typedef struct hr_consumer_stats {
	uint64_t events;       /* fan-outs handled */
	uint64_t frames;       /* frames built (one per handled event) */
	uint64_t unknown_type; /* events dropped: no handler for their type */
	uint64_t bad_event;    /* events dropped: malformed (no type, bad message) */
	uint64_t io_full;      /* per-thread mails dropped: I/O mailbox full/closed */
} hr_consumer_stats;

/*
 * Start the consumer actors. io: one mailbox per I/O thread (borrowed; must
 * outlive the consumers), n_io <= HR_MAX_THREADS. HR_ENOMEM, HR_EIO,
 * HR_EINVAL.
 */
int hr_consumers_create(hr_consumers **out, hr_mailbox *const *io, size_t n_io);
/* The HR_N_CONSUMERS actors, indexed by HR_CONSUMER_*, for hr_router_create.
 * Borrowed; valid until hr_consumers_destroy. */
hr_actor *const *hr_consumers_actors(hr_consumers *c);
/* Sum of the counters over all consumer actors (atomics; any thread). */
void hr_consumers_get_stats(hr_consumers *c, hr_consumer_stats *out);
/*
 * The JSON text (appended to out) that a consumer of type `consumer` sends
 * for event (a msgpack map, borrowed), or, with consumer < 0, any consumer
 * that serves group members: what goes in an envelope's "data". 0,
 * HR_ENOENT (no handler for its type), HR_EBADMSG, HR_ENOMEM. Pure apart
 * from out; any thread.
 */
int hr_consumers__event_json(int consumer, const unsigned char *ev, size_t len, hr_buf *out);
/* Stop (mail already posted is handled first), join and free. NULL ok. */
void hr_consumers_destroy(hr_consumers *c);

#endif /* HERALD_CONSUMER_H */
