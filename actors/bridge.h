/*
 * bridge.h: the Redis bridge, the node's only door to Redis (docs/PROTOCOL.md
 * "herald on a shared Redis"). Part of the `actors` module's public
 * surface beside actor.h.
 *
 * The bridge is an actor plus a drain thread, both over one Redis layer
 * (hr_layer_redis_ops; the layer keeps a pool of connections, so the drain's
 * blocking pops hold a connection of their own):
 *  - the actor registers one membership per (group, node) in Redis,
 *    "specific.<client_prefix>!g.<group>" (or "...!h.<hash>" when that name
 *    would be too long), when the router reports a group's first local member,
 *    discards it when the last one leaves, refreshes all of them well before
 *    group_expiry, re-registers them when Redis comes back and discards them
 *    at shutdown. It federates local group_sends (the router's group_sent
 *    hook) to the other members of the group in Redis, and sends to channels
 *    that are not local. Its mailbox never waits on a blocking pop, and while
 *    Redis is down it does not touch Redis at all (a group_send is then
 *    counted as a federation failure; its local delivery already happened).
 *  - the drain thread pops the node's process key in batches and hands each
 *    message to the router: "g.<group>" targets as a local-only group_send,
 *    other targets as a send to that connection. It notices Redis going away
 *    (HR_EIO), retries with decorrelated-jitter backoff (at most 1 s apart)
 *    and, once Redis answers again, asks the actor to re-register.
 *  - with redis+sentinel:// hosts, a follower thread waits on the sentinels'
 *    +switch-master (hr_layer_redis_follow) and, when the master moved, asks
 *    the actor to register the memberships on the new one.
 *
 * Threads: every function may be called from any thread; create/stop/destroy
 * from the node's main thread. The router must outlive the drain thread
 * (hr_bridge_stop) and the bridge must outlive the router (its hooks post
 * here): create router, create bridge, ... hr_bridge_stop, destroy router,
 * hr_bridge_destroy.
 */
#ifndef HERALD_BRIDGE_H
#define HERALD_BRIDGE_H

#include "actors/actor.h"

typedef struct hr_bridge hr_bridge;

/* A group glob with shared history on Redis (`--history GLOB=SIZE[:TTL]`):
 * SIZE frames kept, for TTL seconds. First match wins. A group that matches
 * is registered through its shared history member instead of the per-node
 * membership, and a history thread (redis_bridge_history.c) sequences the
 * copies it pops from the shared keys and tails the shards' logs, handing
 * each sequenced group_send to opts.on_event (docs/RECOVERY.md). */
typedef struct hr_bridge_history_rule {
	const char *glob; /* borrowed for the bridge's lifetime */
	size_t size;
	double ttl;
} hr_bridge_history_rule;

/* A group_send of a group with history, sequenced in Redis (its epoch and
 * offset agree on every node): called once per group_send on every node, in
 * offset order per group, from the bridge's history thread. ev and its msg
 * are borrowed for the call (take a reference to keep it). */
typedef void (*hr_bridge_event_fn)(void *arg, const hr_layer_hevent *ev);

typedef struct hr_bridge_opts {
	hr_layer *redis;     /* borrowed: a Redis layer; outlives the bridge */
	hr_router *router;   /* borrowed: see the order above */
	double group_expiry; /* seconds; memberships are refreshed every third of it
	                      * (at most hourly) */
	size_t batch;        /* messages per pop; 0 = 100 */
	/* Where the bridge reports state changes (Redis down/up, memberships
	 * re-registered), one line each; level 1 = warn, 2 = info. NULL: silent.
	 * Called from the bridge's threads. */
	void (*log)(int level, const char *line);
	/* Shared history (docs/RECOVERY.md, "Redis layer"): for a group that
	 * matches one of these rules the node registers the group's shared
	 * history member instead of its own membership, and a history thread
	 * sequences the copies it pops and tails the log. n_history 0: none. */
	const hr_bridge_history_rule *history;
	size_t n_history;
	/* Where sequenced group_sends go. NULL: to the router as a local-only
	 * group_send, without the position (the router's sequenced entry point
	 * replaces this at merge: see RECOVERY.md, "Wiring"). */
	hr_bridge_event_fn on_event;
	void *on_event_arg;
} hr_bridge_opts;

/* Check that Redis answers (one pop of the process key, no wait), start the
 * actor, the drain thread (and the history thread, with history rules) and
 * install the router's hooks. HR_EIO when Redis does not answer (nothing is
 * left running), HR_ENOMEM, HR_EINVAL (also: a history rule without a glob,
 * with size 0 or a TTL under 1 s). */
int hr_bridge_create(hr_bridge **out, const hr_bridge_opts *opts);
/* Stop and join the drain thread (nothing more reaches the router from
 * Redis). Idempotent; NULL ok. */
void hr_bridge_stop(hr_bridge *b);
/* Stop the drain (if not yet), let the actor handle what is queued, discard
 * this node's memberships from Redis (if it is up), join, free. NULL ok. */
void hr_bridge_destroy(hr_bridge *b);

/* The membership channel this node registers for group (written NUL-terminated
 * into out, at least HR_NAME_MAX bytes). */
int hr_bridge_member_name(hr_bridge *b, const char *group, char *out, size_t outlen);
/* The rule that applies to group (first matching glob), or NULL. */
const hr_bridge_history_rule *hr_bridge_history_rule_for(const hr_bridge *b, const char *group);

/* The node's process key "specific.<client_prefix>!" (borrowed). */
const char *hr_bridge_process_key(const hr_bridge *b);

/* Send msg (borrowed) to a channel that is not local, through Redis. reply
 * fires once, on the bridge thread, with 0, HR_EFULL (ChannelFull),
 * HR_EBADNAME or HR_EIO (Redis down). Returns 0 once queued, else HR_EAGAIN
 * (mailbox full after timeout_ms), HR_ENOMEM, HR_ECLOSED; then reply never
 * fires. */
int hr_bridge_send(hr_bridge *b, const char *channel, hr_msg *msg, hr_reply_fn reply,
    void *reply_arg, int timeout_ms);

/* Redis answered the last call made to it. */
bool hr_bridge_up(const hr_bridge *b);

typedef struct hr_bridge_stats {
	uint64_t in;            /* messages drained from Redis */
	uint64_t out;           /* group_sends and sends written to Redis */
	uint64_t fed_failures;  /* local group_sends not federated: Redis down */
	uint64_t send_failures; /* sends to non-local channels refused: Redis down */
	uint64_t stale;         /* drained messages for a local channel or group gone */
	uint64_t memberships;   /* groups registered now */
	uint64_t reconnects;    /* times Redis came back */
	uint64_t sequenced;     /* group_sends with history this node sequenced */
	uint64_t hist_events;   /* sequenced group_sends read from the log */
} hr_bridge_stats;
void hr_bridge_get_stats(const hr_bridge *b, hr_bridge_stats *out);

#endif /* HERALD_BRIDGE_H */
