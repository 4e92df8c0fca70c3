/*
 * layer.h: herald's channel layer, the public face of the `layer` module.
 *
 * What lives here: error codes shared by every module, refcounted immutable
 * messages (hr_msg) and the growable buffer that builds them (hr_buf), the
 * msgpack/JSON codec, Channels' name rules, and the channel layer itself
 * (send, receive, new_channel, group_add, group_discard, group_send, flush)
 * behind an ops table with a memory backend (and later a Redis backend).
 *
 * Threads: hr_msg references may be taken and dropped from any thread.
 * Everything else is pure code; an hr_layer is safe to call from several
 * threads at once (the memory backend serialises on its own mutex so that a
 * blocking receive can wait on a condition variable).
 */
#ifndef HERALD_LAYER_H
#define HERALD_LAYER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */

/*
 * Every fallible function returns 0 or a negative HR_E* code. Where an errno
 * exists the code is -errno; herald's own codes live below -1000.
 */
#define HR_OK 0
#define HR_ENOMEM (-ENOMEM)
#define HR_EINVAL (-EINVAL)
#define HR_EAGAIN (-EAGAIN)       /* would block: empty, or mailbox full */
#define HR_ETIMEDOUT (-ETIMEDOUT) /* a timed wait ran out */
#define HR_ECANCELED (-ECANCELED) /* callback fired because of shutdown */
#define HR_ENOENT (-ENOENT)       /* no such channel, group, key */
#define HR_EMSGSIZE (-EMSGSIZE)   /* over a size limit */
#define HR_ECLOSED (-ESHUTDOWN)   /* mailbox or actor is closed */
#define HR_EBADMSG (-EBADMSG)     /* malformed msgpack or JSON */
#define HR_ENOTSUP (-ENOTSUP)     /* operation not offered by a backend */
#define HR_EIO (-EIO)             /* I/O or library failure */
#define HR_EFULL (-1001)          /* channel full (Channels' ChannelFull) */
#define HR_EBADNAME (-1002)       /* invalid channel or group name */
#define HR_EDEPTH (-1003)         /* nesting deeper than HR_CODEC_MAX_DEPTH */
#define HR_EUTF8 (-1004)          /* string is not valid UTF-8 */
#define HR_ETYPE (-1005)          /* value of the wrong type (non-string key, no "type") */

/* A static string naming err; never NULL. */
const char *hr_strerror(int err);

#if defined(HERALD_ASSERTS)
#include <stdio.h>
#include <stdlib.h>
#define HR_ASSERT(x)                                                                               \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#else
#define HR_ASSERT(x) ((void)0)
#endif

/* ---------------------------------------------------------------- messages */

/*
 * hr_msg: a refcounted byte buffer. Writable only by its creator until it is
 * published (handed to another thread or stored); immutable afterwards, and
 * shared by reference, never copied per recipient. It may keep headroom in
 * front of its data (for a WebSocket header, LWS_PRE, ...).
 */
typedef struct hr_msg hr_msg;

/* Allocate a message of len bytes (uninitialised) with `headroom` free bytes in
 * front. One reference, owned by the caller. HR_ENOMEM. */
int hr_msg_alloc(size_t headroom, size_t len, hr_msg **out);
/* Allocate and copy len bytes from data, no headroom. */
int hr_msg_copy(const void *data, size_t len, hr_msg **out);
unsigned char *hr_msg_data(const hr_msg *m);
size_t hr_msg_len(const hr_msg *m);
size_t hr_msg_headroom(const hr_msg *m);
/* Before publish: move the start of data back by n bytes into the headroom
 * (n <= headroom) and return the new start. */
unsigned char *hr_msg_push_front(hr_msg *m, size_t n);
/* Take a reference (thread-safe). Returns m. */
hr_msg *hr_msg_ref(hr_msg *m);
/* Drop a reference; frees at zero. NULL is ignored. Thread-safe. */
void hr_msg_unref(hr_msg *m);

/*
 * hr_buf: a growable byte buffer that turns into an hr_msg without copying.
 * Embedded in callers' structs (init/fini). An append that fails leaves the
 * buffer as it was and returns HR_ENOMEM.
 */
typedef struct hr_buf {
	hr_msg *_m;  /* storage, grown with realloc */
	size_t _cap; /* bytes available after headroom */
} hr_buf;

void hr_buf_init(hr_buf *b, size_t headroom);
int hr_buf_reserve(hr_buf *b, size_t extra);
int hr_buf_append(hr_buf *b, const void *p, size_t n);
int hr_buf_putc(hr_buf *b, char c);
const unsigned char *hr_buf_data(const hr_buf *b);
size_t hr_buf_len(const hr_buf *b);
void hr_buf_reset(hr_buf *b); /* length back to 0, keeps storage */
/* Hand the contents over as a message (one reference, caller's); the buffer is
 * left empty and reusable. HR_ENOMEM when the buffer holds nothing allocated
 * and allocation fails. */
int hr_buf_finish(hr_buf *b, hr_msg **out);
void hr_buf_fini(hr_buf *b);

/*
 * Build a complete server→client WebSocket text frame (FIN, opcode 1, no mask)
 * from the JSON payload in b, which must have been initialised with
 * headroom >= HR_FRAME_HEADROOM. The frame is immutable once returned and can
 * be written to any number of sockets as raw bytes. hr_msg_headroom() of the
 * result is still >= LWS_PRE (16).
 */
#define HR_FRAME_HEADROOM 32
int hr_ws_frame_text(hr_buf *b, hr_msg **out);

/* ---------------------------------------------------------------- codec */

/*
 * Channels messages are dicts, carried as msgpack (str keys, use_bin_type).
 * The codec reads msgpack with a bounded, non-allocating reader: every length
 * is checked against the input, nesting is bounded by HR_CODEC_MAX_DEPTH, and
 * malformed input is an error (HR_EBADMSG, HR_EDEPTH, HR_EUTF8, HR_ETYPE),
 * never an over-read.
 *
 * JSON → msgpack: parsed with jansson. Integers that fit int64 stay ints,
 * other numbers become float64. Strings are validated UTF-8.
 * msgpack → JSON: strings escaped per RFC 8259 (control chars as \u00XX);
 * invalid UTF-8 in a str is an error; floats printed with 17 significant
 * digits (shortest round-trip form where possible), NaN/Inf become null;
 * bin is emitted as a base64 string; ext as {"ext": type, "data": base64};
 * map keys must be str (else HR_ETYPE).
 */
#define HR_CODEC_MAX_DEPTH 32

/* Check that [mp, mp+len) is exactly one well-formed msgpack object. */
int hr_codec_validate(const void *mp, size_t len);

/* JSON text → msgpack appended to out. When `object_only`, the top value must be
 * an object (else HR_ETYPE). On error, err (if non-NULL) receives a short
 * human-readable reason; out is left as it was. */
int hr_codec_json_to_msgpack(
    const char *json, size_t len, bool object_only, hr_buf *out, char *err, size_t errlen);

/* One msgpack object at mp → JSON text appended to out. On error out is left as
 * it was. */
int hr_codec_msgpack_to_json(const void *mp, size_t len, hr_buf *out);

/* mp must be a msgpack map: find the value of key (a str key equal to `key`);
 * *val and *vlen are its encoded span inside mp (borrowed). HR_ENOENT if absent,
 * HR_ETYPE if mp is not a map. Does not decode values other than keys. */
int hr_codec_map_get(
    const void *mp, size_t len, const char *key, const unsigned char **val, size_t *vlen);

/* The "type" field of a message map, borrowed from mp (not NUL-terminated).
 * HR_ENOENT if absent, HR_ETYPE if not a str. */
int hr_codec_get_type(const void *mp, size_t len, const char **type, size_t *tlen);

/* Copy map mp to out without key `key` (used to strip __asgi_channel__). */
int hr_codec_map_remove(const void *mp, size_t len, const char *key, hr_buf *out);

/* Minimal msgpack writer used to build messages (map headers, str, int, nil,
 * float, bool, raw pre-encoded value). Each appends to out. */
int hr_mp_map(hr_buf *out, uint32_t n);
int hr_mp_array(hr_buf *out, uint32_t n);
int hr_mp_str(hr_buf *out, const char *s, size_t n);
int hr_mp_cstr(hr_buf *out, const char *s);
int hr_mp_int(hr_buf *out, int64_t v);
int hr_mp_double(hr_buf *out, double v);
int hr_mp_bool(hr_buf *out, bool v);
int hr_mp_nil(hr_buf *out);
int hr_mp_raw(hr_buf *out, const void *encoded, size_t n);

/* ---------------------------------------------------------------- names */

/* Channels' MAX_NAME_LENGTH: names must be shorter than this. */
#define HR_NAME_MAX 100

/* Channel name: ^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$, len < 100. 0 or HR_EBADNAME. */
int hr_name_check_channel(const char *name, size_t len);
/* Group name: ^[a-zA-Z\d\-_.]+$, len < 100. 0 or HR_EBADNAME. */
int hr_name_check_group(const char *name, size_t len);
/* Length of the non-local part of a specific name (up to and including '!'),
 * or 0 if the name has no '!'. */
size_t hr_name_nonlocal_len(const char *name, size_t len);

/* Glob match as Python's fnmatch.fnmatch on POSIX (case-sensitive): *, ?, [seq],
 * [!seq]. */
bool hr_glob_match(const char *pattern, const char *name, size_t len);

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

#endif /* HERALD_LAYER_H */
