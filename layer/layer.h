/*
 * layer.h: herald's channel layer, the public face of the `layer` module:
 * the Channels layer API (send, receive, new_channel, group_add,
 * group_discard, group_send, flush) behind an ops table with a memory
 * backend and a Redis backend.
 *
 * The base library it stands on (error codes, hr_msg/hr_buf, the codec,
 * name rules) is the `core` module; core/core.h is included here so that
 * every includer of layer.h keeps seeing it.
 *
 * Threads: an hr_layer is safe to call from several threads at once (the
 * memory backend serialises on its own mutex so that a blocking receive can
 * wait on a condition variable).
 */
#ifndef HERALD_LAYER_H
#define HERALD_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---------------------------------------------------------------- the layer */

typedef struct hr_layer hr_layer;
typedef struct hr_layer_ops hr_layer_ops;

typedef struct hr_capacity_rule {
	const char *glob; /* borrowed for the lifetime of the layer */
	size_t capacity;
} hr_capacity_rule;

typedef struct hr_layer_opts {
	const char *prefix;                       /* key prefix, default "asgi" (Redis) */
	size_t capacity;                          /* default channel capacity, 100 */
	const hr_capacity_rule *channel_capacity; /* first match wins */
	size_t n_channel_capacity;
	double expiry;       /* seconds, 60 */
	double group_expiry; /* seconds, 86400 */
	/* Wall clock in seconds; NULL means CLOCK_REALTIME. Tests inject time. */
	double (*clock)(void *arg);
	void *clock_arg;
	/* Redis backend only: hosts as "redis://..." or "redis+sentinel://..."
	 * URLs, ring order. */
	const char *const *hosts;
	size_t n_hosts;
} hr_layer_opts;

/* Fill o with Channels' defaults. */
void hr_layer_opts_default(hr_layer_opts *o);

/* The embedded in-memory backend (behaves as Channels' InMemoryChannelLayer,
 * but drops expired messages whenever a channel is read or its capacity is
 * checked). */
extern const hr_layer_ops hr_layer_memory_ops;

/* The Redis backend, wire-compatible with channels_redis 4.0's
 * RedisChannelLayer (docs/PROTOCOL.md): opts.hosts are "redis://[:password@]host[:port][/db]"
 * or "redis+sentinel://[:password@]host[:port][,...]/master[/db]" URLs in
 * ring order (none: redis://localhost:6379). Uses hiredis' blocking
 * API: call it from worker threads only, never from an I/O loop. A Redis
 * that is down makes a call return HR_EIO; the next call reconnects. */
extern const hr_layer_ops hr_layer_redis_ops;

/* Redis backend with redis+sentinel:// hosts: wait up to timeout_ms (>= 0)
 * for a sentinel's +switch-master about one of them and move to the new
 * master at once (a failover counted in hr_layer_stats). *moved (NULL ok)
 * says whether one moved. 0; HR_EIO when some sentinel shard's sentinels
 * did not take the subscription (call again after a pause); HR_ENOTSUP for
 * any other layer or one without sentinel hosts; HR_ECLOSED once
 * destroying. Blocking: one thread at a time, never an I/O loop. */
int hr_layer_redis_follow(hr_layer *l, int timeout_ms, bool *moved);

typedef struct hr_group_send_result {
	size_t delivered; /* channels that got the message */
	size_t full;      /* channels skipped because they were full */
} hr_group_send_result;

/* Create a layer with the given backend. opts is copied (its strings and rules
 * are borrowed for the layer's lifetime). HR_ENOMEM, HR_EINVAL. */
int hr_layer_create(hr_layer **out, const hr_layer_ops *ops, const hr_layer_opts *opts);
/* Destroy; NULL is fine. Wakes receivers blocked in hr_layer_receive (they
 * return HR_ECLOSED) and waits until they have left the layer before freeing
 * it. No call may *start* on l once destroy has begun: stop or join every
 * other thread that uses l first (a receiver already blocked is fine). */
void hr_layer_destroy(hr_layer *l);

/* The capacity that applies to channel (first matching channel_capacity glob,
 * else capacity). */
size_t hr_layer_capacity(const hr_layer *l, const char *channel);

/* Send msg (a msgpack map) to channel. Borrows msg; the layer takes its own
 * reference when it stores it. HR_EBADNAME, HR_EFULL (channel at capacity),
 * HR_ETYPE (msg is not a msgpack map: only its first byte is checked),
 * HR_EINVAL (NULL or empty msg). */
int hr_layer_send(hr_layer *l, const char *channel, hr_msg *msg);

/* Receive the oldest unexpired message of channel. timeout_ms: 0 = do not wait
 * (HR_EAGAIN when empty), < 0 = wait forever, > 0 = wait up to that long
 * (HR_ETIMEDOUT). On success *out holds one reference, the caller's. */
int hr_layer_receive(hr_layer *l, const char *channel, int timeout_ms, hr_msg **out);

/* Make a new unique specific channel name as the backend's Channels
 * counterpart does: memory "<prefix>.inmemory!<12 random ASCII letters>"
 * (InMemoryChannelLayer; the default prefix "specific." gives
 * "specific..inmemory!AbCd..."); Redis "<prefix>.<client_prefix>!<32 hex>"
 * (RedisChannelLayer; default prefix "specific"). prefix NULL means the
 * backend's Channels default. Written
 * NUL-terminated into out: HR_EMSGSIZE if outlen is too small, HR_EBADNAME if
 * the result would not be a valid channel name (Channels would return it). */
int hr_layer_new_channel(hr_layer *l, const char *prefix, char *out, size_t outlen);

/*
 * The channels a received message was addressed to. Channels' Redis layer
 * stores every message for the specific channels of one process in one
 * "process key" ("specific.<client_prefix>!") and names the target(s) in the
 * message's "__asgi_channel__" entry: a string (send) or a list (group_send).
 * Embedded by the caller: zero it (or hr_layer_targets_init) before the first
 * use; each successful receive replaces its contents; hr_layer_targets_fini
 * frees them.
 */
typedef struct hr_layer_targets {
	size_t n;           /* number of names */
	const char **names; /* n valid channel names, NUL-terminated, owned */
	char *_store;
} hr_layer_targets;

void hr_layer_targets_init(hr_layer_targets *t);
void hr_layer_targets_fini(hr_layer_targets *t);

/* Receive as hr_layer_receive, and also report the targets. channel may be a
 * normal channel or a process key, i.e. a non-local name ending in '!' (the
 * Redis backend drains it on every shard). The message comes back with
 * "__asgi_channel__" removed; *targets lists its channels, or just `channel`
 * if it named none. Messages read from outside that are malformed (bad
 * msgpack, not a map, bad or foreign __asgi_channel__ names, over the size
 * limit) are dropped and counted in hr_layer_stats.bad, never returned.
 * Memory backend: HR_ENOTSUP. On error *targets is emptied. */
int hr_layer_receive_targets(
    hr_layer *l, const char *channel, int timeout_ms, hr_msg **out, hr_layer_targets *targets);

/* One message of a batch, with its targets. */
typedef struct hr_layer_item {
	hr_msg *msg; /* one reference, the caller's */
	hr_layer_targets targets;
} hr_layer_item;

/* Receive up to max messages of channel (normal or process key, as
 * hr_layer_receive_targets) in few round trips: the Redis backend pops up to
 * max members per shard with one script that also backs them up in
 * "<key>$inflight" (restoring an older backup first, as channels_redis does)
 * and drops the backup once they are decoded. When nothing is waiting it
 * blocks as hr_layer_receive_targets (then at most one message comes back).
 * *n is set to the number filled (items[0..*n)); release them with
 * hr_layer_items_release. 0 with *n >= 1, HR_EAGAIN/HR_ETIMEDOUT with *n == 0,
 * HR_EIO, HR_ECLOSED, HR_ENOTSUP (memory). */
int hr_layer_receive_batch(
    hr_layer *l, const char *channel, int timeout_ms, hr_layer_item *items, size_t max, size_t *n);
/* Unref each message and free each target list of items[0..n). */
void hr_layer_items_release(hr_layer_item *items, size_t n);

/* Write this layer's client_prefix (Redis: 32 lowercase hex chars, fixed per
 * layer) NUL-terminated into out. HR_EMSGSIZE, HR_ENOTSUP (memory). */
int hr_layer_client_prefix(hr_layer *l, char *out, size_t outlen);

/* Add channel to group (again: refresh its join time). Discarding a channel
 * that is not a member, or from an unknown group, is not an error. Both check
 * both names (HR_EBADNAME). */
int hr_layer_group_add(hr_layer *l, const char *group, const char *channel);
int hr_layer_group_discard(hr_layer *l, const char *group, const char *channel);

/* Send msg to every unexpired member of group; full channels are skipped and
 * counted in res (which may be NULL). Borrows msg. An unknown group is not an
 * error (0, nothing delivered). HR_ENOMEM if storing failed for some member
 * (the others still got it). Memory backend: a member channel that just lost
 * an expired message has left all its groups first, as in Channels. */
int hr_layer_group_send(hr_layer *l, const char *group, hr_msg *msg, hr_group_send_result *res);

/* group_send, except to the one member channel named `except` (which the
 * caller reaches by other means: a node fanning out to its own local members
 * sends to the other members only). Redis backend only; HR_ENOTSUP (memory). */
int hr_layer_group_send_except(
    hr_layer *l, const char *group, hr_msg *msg, const char *except, hr_group_send_result *res);

/* Drop every channel, message and group. */
int hr_layer_flush(hr_layer *l);

/* Counters kept by every backend (monotonic, since create). */
typedef struct hr_layer_stats {
	uint64_t expired;       /* messages dropped because they expired */
	uint64_t full;          /* sends refused or group-send targets skipped: full */
	uint64_t group_expired; /* memberships dropped by group_expiry */
	uint64_t bad;           /* malformed messages or names read from outside, dropped */
	uint64_t failovers;     /* Redis: times a Sentinel-given master moved and was followed */
} hr_layer_stats;
void hr_layer_get_stats(hr_layer *l, hr_layer_stats *out);

/* ------------------------------------------- shared history (Redis backend) */

/*
 * Recovery's history shared by every node on one Redis (docs/RECOVERY.md,
 * "Redis layer"). A group with history has one *shared history member*,
 * "specific.<H>!h.<group>" (or "...!x.<16 hex>" for a long name), whose
 * process key "<prefix>specific.<H>!" every node pops: the node that pops a
 * copy sequences it (epoch, offset, history, log entry) in one script, and
 * every node tails the log. H is fixed by the prefix and the shard, so the
 * copies, the history and the log of a group all live on the group's shard.
 * Every call is the Redis backend's (HR_ENOTSUP on memory) and blocking:
 * worker threads only, as the rest of the layer.
 */
#define HR_HISTORY_EPOCH_LEN 16      /* lowercase hex characters */
#define HR_HISTORY_CURSOR 48         /* a log position ("<ms>-<seq>"), NUL included */
#define HR_HISTORY_DEFAULT_SIZE 1000 /* when a popped copy's group has no settings */
#define HR_HISTORY_DEFAULT_TTL 300

/* One group_send of a group with history, as sequenced. */
typedef struct hr_layer_hevent {
	hr_msg *msg;     /* one reference, the caller's */
	uint64_t offset; /* 1, 2, ... within the epoch */
	char epoch[HR_HISTORY_EPOCH_LEN + 1];
	char group[HR_NAME_MAX + 1];
} hr_layer_hevent;

/* Unref each message of ev[0..n). */
void hr_layer_hevents_release(hr_layer_hevent *ev, size_t n);

/* The shared history member of group, NUL-terminated into out (at least
 * HR_NAME_MAX bytes). HR_EBADNAME, HR_EMSGSIZE. */
int hr_layer_history_member(hr_layer *l, const char *group, char *out, size_t outlen);

/* Add the shared member to group (as group_add: refreshed, group_expiry) and
 * store the group's history settings beside it (SIZE frames, TTL seconds),
 * where the script of whichever node pops the group's copies reads them. One
 * round trip. Called by every node with local members of group, again before
 * group_expiry. HR_EBADNAME, HR_EINVAL (size 0 or ttl < 1), HR_EIO. */
int hr_layer_history_register(hr_layer *l, const char *group, size_t size, double ttl);

/* Number of shards (each has its own shared key and log). */
size_t hr_layer_history_shards(hr_layer *l);

/* The sequencer: pop up to max copies from shard's shared key and, in the
 * same script (atomically: a copy is sequenced exactly when it is popped),
 * give each its group's epoch (created once) and next offset, store it in
 * the group's history (trimmed to SIZE, expiring after TTL) and append it
 * to the shard's log. *sequenced: how many (expired or malformed copies are
 * dropped and counted in hr_layer_stats). Never waits. HR_EIO. */
int hr_layer_history_pump(hr_layer *l, size_t shard, size_t max, size_t *sequenced);

/* Read up to max log entries of shard after cursor (an empty cursor: from
 * now; it is then set to the log's end first), waiting up to block_ms when
 * none is there (0: not at all); advances cursor. 0 with *n >= 0, HR_EIO.
 * Entries that do not decode are skipped and counted as bad. Note: Redis
 * ends a blocking read that nothing wakes only on its own timer (hz 10: up
 * to ~100 ms late); to wait for the next entry, use a watch (below). */
int hr_layer_history_tail(hr_layer *l, size_t shard, char cursor[HR_HISTORY_CURSOR], int block_ms,
    hr_layer_hevent *ev, size_t max, size_t *n);

/*
 * A node's blocking wait on shard's history, so that a copy is sequenced and
 * a log entry read the moment it lands rather than at the next poll: two
 * connections of its own, one in `XREAD BLOCK 0` on the log after the
 * cursor, one told by Redis whenever the shared key changes (client-side
 * caching's broadcast tracking of that key, redirected to its own
 * `__redis__:invalidate` subscription). Nothing is popped here: the copies
 * are still popped and numbered by hr_layer_history_pump's one script, so
 * nodes never sequence them out of order. No timeouts in Redis (it ends a
 * blocked command's timeout only on its 100-ms timer): the caller sleeps on
 * the descriptors beside its own, for as long as it likes. One thread.
 */
typedef struct hr_layer_hwatch hr_layer_hwatch;

/* A watch of shard, nothing connected yet; log reads of at most max
 * entries. HR_ENOTSUP (not Redis), HR_EINVAL, HR_ENOMEM. */
int hr_layer_hwatch_new(hr_layer *l, size_t shard, size_t max, hr_layer_hwatch **out);
/* Close its connections and free it. NULL ok. */
void hr_layer_hwatch_free(hr_layer_hwatch *w);
/* Make ready to sleep: the log read after cursor sent if not outstanding
 * (none while cursor is empty), the tracking connection made if it is not
 * there; a connection that broke or, on a sentinel shard, points at a
 * former master is made again. The descriptors to sleep on into fds[0..2)
 * (-1: none). 0; 1 when the tracking connection is new (a copy may have
 * landed before it: pump before sleeping); HR_ENOTSUP when this Redis has
 * no tracking (then never again: poll instead); HR_EIO (call again later);
 * HR_ECLOSED. */
int hr_layer_hwatch_arm(hr_layer_hwatch *w, const char *cursor, int fds[2]);
/* The descriptors as they are, without arming (-1: none). */
void hr_layer_hwatch_fds(const hr_layer_hwatch *w, int fds[2]);
/* After the sleep, for the descriptors ready[0..2) says are readable: read
 * what arrived, without blocking. Log entries after cursor into ev[0, max)
 * (*n; cursor advances); *changed: the shared key changed (pump now).
 * HR_EIO if a connection broke or answered an error (it is dropped; arm
 * again). */
int hr_layer_hwatch_read(hr_layer_hwatch *w, const bool ready[2], char cursor[HR_HISTORY_CURSOR],
    hr_layer_hevent *ev, size_t max, size_t *n, bool *changed);

/* Where a resume stands. */
typedef struct hr_layer_hpos {
	char epoch[HR_HISTORY_EPOCH_LEN + 1]; /* the group's epoch (created if none) */
	uint64_t latest;                      /* its latest offset, 0 if none yet */
	bool complete; /* epoch matched and ev starts at after + 1 (or after == latest) */
} hr_layer_hpos;

/* The replay of a resume: the group's history after offset `after` of epoch
 * (frames younger than ttl seconds, oldest first, at most max: call again
 * from the last offset for more), the group's current epoch and latest
 * offset, all read in one script. If the group has no epoch yet, one is
 * created (with latest 0), so that every answer names an epoch. */
int hr_layer_history_range(hr_layer *l, const char *group, const char *epoch, uint64_t after,
    double ttl, hr_layer_hevent *ev, size_t max, size_t *n, hr_layer_hpos *pos);

#endif /* HERALD_LAYER_H */
