/*
 * history.h: recovery history (docs/PROTOCOL.md "Recovery across
 * reconnects"), part of the `actors` module's public surface beside actor.h.
 *
 * A group whose name matches a --history rule keeps, in the router, a ring
 * of its last SIZE frames younger than TTL seconds: each slot is an offset,
 * its arrival time and the group's envelope frame for it, already built
 * (one hr_msg reference: append is O(1), replay writes the stored frames as
 * they are). The ring also holds the group's epoch (16 lowercase hex
 * characters drawn when the ring is created) and its latest offset.
 *
 * The seam between the router and whatever numbers group_sends:
 * - memory layer (the default): the router numbers every group_send to a
 *   group with a rule itself, offset = latest + 1, and answers resumes from
 *   its ring;
 * - external numbering (hr_router_set_history with external = true, for the
 *   Redis layer): hr_router_group_send to a group with a rule is NOT
 *   delivered locally nor numbered (it goes to the layer and the hooks as
 *   usual); the event comes back with its position through
 *   hr_router_group_send_at (epoch and offset assigned elsewhere, e.g. by
 *   the sequencer script), which delivers it to the local members as an
 *   envelope with that position and appends it to the local ring. Resumes
 *   are answered from the local ring in both modes; a bridge can prefill the
 *   ring (HR_AT_HISTORY_ONLY) from a shared history before clients resume.
 *
 * What a recover connection's I/O thread relies on: the offsets of a group
 * reach it in order, each once (the router's one turn per group_send gives
 * that; positions from outside must come in order per group, duplicates are
 * dropped here). A missing offset closes the connection with 1013, so a
 * lost frame is never silent. An epoch change while recover members are
 * connected (external numbering only: a memory ring is never replaced
 * while the group has members) closes them with 1013 too: the router, when
 * a group_send_at or a fill replaces the ring, posts the change to their
 * I/O threads ahead of the new epoch's first frame, and an I/O thread that
 * still sees an envelope of another ring (a number per ring, actor.h
 * hr_fanout.gen) closes the connection rather than skip it.
 *
 * Threads: a ring belongs to the router thread; the functions below that
 * take an hr_router post to it and may be called from any thread.
 */
#ifndef HERALD_HISTORY_H
#define HERALD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"

#define HR_HISTORY_MAX_RULES 32
#define HR_HISTORY_MAX_SIZE 100000u
#define HR_HISTORY_MAX_TTL 86400u
/* The epochs herald draws: 8 random bytes as lowercase hex. */
#define HR_EPOCH_LEN 16
/* The longest epoch a client or a bridge may name (longer ones never match). */
#define HR_EPOCH_MAX 32

/* One --history rule: groups matching glob (fnmatch) keep their last `size`
 * frames younger than `ttl_s` seconds. glob is borrowed for the lifetime of
 * whoever holds the rule (the router copies it). */
typedef struct hr_history_rule {
	const char *glob;
	uint32_t size;  /* 1..HR_HISTORY_MAX_SIZE */
	uint32_t ttl_s; /* 1..HR_HISTORY_MAX_TTL */
} hr_history_rule;

/* ---------------------------------------------------------------- one ring */

typedef struct hr_history hr_history;

/* A ring for size frames of at most ttl_s seconds. epoch: NULL draws a new
 * one, else copied (lowercase hex, 1..HR_EPOCH_MAX chars). now_ms: any
 * monotonic milliseconds, the same clock for every call. HR_ENOMEM,
 * HR_EINVAL. */
int hr_history_create(
    hr_history **out, uint32_t size, uint32_t ttl_s, const char *epoch, int64_t now_ms);
/* Drops every frame reference. NULL ok. */
void hr_history_destroy(hr_history *h);
const char *hr_history_epoch(const hr_history *h);
/* The latest offset in this epoch (0 before the first). */
uint64_t hr_history_last(const hr_history *h);
/* The oldest offset it holds (last + 1 when it holds none). */
uint64_t hr_history_first(const hr_history *h);
/* Record offset (> hr_history_last) with its envelope frame (borrowed: one
 * reference is taken; NULL records the offset with nothing to replay, e.g.
 * an event no consumer handles). An offset past last + 1 forgets what the
 * ring held (the positions in between were never seen here). O(1).
 * 0, or HR_EINVAL for an offset <= last (nothing changes). */
int hr_history_append(hr_history *h, uint64_t offset, hr_msg *frame, int64_t now_ms);
/* Drop the frames older than TTL. */
void hr_history_expire(hr_history *h, int64_t now_ms);
/*
 * The frames after offset `after`, oldest first: on 0, *frames (caller
 * frees with free(), after dropping each reference) holds *n references
 * (*frames NULL when *n is 0). HR_ENOENT: the position cannot be served
 * (older than the oldest frame still held, or past the latest offset);
 * HR_ENOMEM.
 */
int hr_history_since(hr_history *h, uint64_t after, int64_t now_ms, hr_msg ***frames, uint32_t *n);
/* A resume after `after` can be answered from this ring: after is within
 * [oldest - 1, last] once the frames older than TTL are dropped. */
bool hr_history_covers(hr_history *h, uint64_t after, int64_t now_ms);
/*
 * Fill the ring from a shared history of the same epoch (the Redis layer's):
 * frames[i] (borrowed, a reference taken; NULL allowed) at offsets[i],
 * ascending; latest: the history's latest offset. The ring keeps what it
 * holds (its slots, offsets and arrival times are never replaced) and gains
 * the given frames older than its first offset, and newer than its last;
 * past that, its last offset becomes at least `latest` (frames in between
 * that nobody gave are forgotten: a resume from before them is not served).
 * The given frames count as arriving now (TTL). 0, HR_ENOMEM (unchanged).
 */
int hr_history_backfill(hr_history *h, const uint64_t *offsets, hr_msg *const *frames, size_t n,
    uint64_t latest, int64_t now_ms);
/* Bytes held: the slots and the frames. */
size_t hr_history_bytes(const hr_history *h);
/* Frames held now. */
uint32_t hr_history_frames(const hr_history *h);
/* True when nothing was appended for TTL seconds (every frame expired). */
bool hr_history_idle(const hr_history *h, int64_t now_ms);

/* The first rule whose glob matches group (len bytes), or NULL. Pure. */
const hr_history_rule *hr_history_rule_find(
    const hr_history_rule *rules, size_t n, const char *group, size_t len);

/* ---------------------------------------------------------------- the router's side */

/* Install the rules (copied; n = 0 turns history off) and the numbering mode
 * (see the top of this file). In order with the router's other requests;
 * groups already holding history keep their ring until it is idle.
 * 0, HR_EINVAL (n > HR_HISTORY_MAX_RULES, a bad rule), HR_ENOMEM, HR_EAGAIN. */
int hr_router_set_history(
    hr_router *r, const hr_history_rule *rules, size_t n, bool external, int timeout_ms);

/* A position a client asks to resume after: `given` false for `?recover=`
 * without one for this group. epoch: lowercase hex, NUL-terminated; an
 * epoch too long to hold is stored as "" (it never matches). */
typedef struct hr_recover_pos {
	bool given;
	char epoch[HR_EPOCH_MAX + 1];
	uint64_t offset;
} hr_recover_pos;

/*
 * group_add for a connection that asked for recovery (its hr_member has
 * HR_MEMBER_RECOVER). In the one router turn that adds it, the router reads
 * the group's ring and hands the member's consumer an hr_replay: the frames
 * after pos (when it can be served), then the `recovered` frame; the
 * consumer passes it to the connection's I/O thread before any later
 * fan-out. pos: borrowed (copied), NULL as `given` false. Errors as
 * hr_router_group_add.
 */
int hr_router_group_add_recover(
    hr_router *r, const char *group, hr_member m, const hr_recover_pos *pos, int timeout_ms);

/* hr_router_group_send_at flags */
#define HR_AT_HISTORY_ONLY 1u /* append to the ring, deliver nothing */

/*
 * A group_send whose position was assigned elsewhere (the Redis layer's
 * sequencer): delivered to the local members only (as
 * hr_router_group_send_local), recover members getting the envelope with
 * this epoch and offset, and appended to the group's ring with them, never
 * renumbered. A new epoch starts the ring afresh; an offset <= the ring's
 * latest in the same epoch is a duplicate and is neither delivered nor
 * appended (reply 0). Needs a rule for the group (else it is delivered as a
 * plain local group_send). epoch: lowercase hex, 1..HR_EPOCH_MAX chars,
 * copied; event borrowed (one reference taken). Errors as
 * hr_router_group_send, plus HR_EINVAL for a bad epoch or offset 0.
 */
int hr_router_group_send_at(hr_router *r, const char *group, hr_msg *event, const char *epoch,
    uint64_t offset, unsigned flags, hr_reply_fn reply, void *reply_arg, int timeout_ms);

/*
 * External numbering: a resume that the local ring cannot answer (no ring
 * yet, another epoch, a position older than its oldest frame or newer than
 * its last: a node that just started, or that lags) waits, outside the
 * group, while the router asks fn for the group's shared history. fn is
 * called on the router thread and must not block: 0 when it took the
 * request (then hr_router_history_fill follows, once per request), else an
 * error (the waiting resumes are answered from the local ring at once).
 * While a request is out, further resumes of the group wait for the same
 * answer. fn NULL: resumes are always answered from the local ring.
 */
typedef int (*hr_history_fill_fn)(void *arg, const char *group);
/* up (may be NULL): whether whatever numbers group_sends is reachable, asked
 * on the router thread (must not block). While it says false, a local
 * group_send of a group with a rule, which cannot be numbered, is delivered
 * to the local members without a position, as for a group without history
 * (the node keeps serving its local clients while Redis is down). */
int hr_router_set_history_fill(hr_router *r, hr_history_fill_fn fn, void *arg,
    bool (*up)(void *up_arg), void *up_arg, int timeout_ms);

/*
 * The answer to fn: the group's shared history (epoch; latest offset;
 * events[i] at offsets[i], ascending, borrowed: references taken) joins the
 * local ring (hr_history_backfill: what the ring holds stays), then the
 * waiting resumes are added to the group and answered from the ring, in one
 * router turn. The caller must have handed the router, before this call,
 * every positioned group_send of that epoch up to `latest` it is going to
 * hand at all (so that the ring is not ahead of what local members got).
 * epoch NULL: the history could not be read (the resumes are answered from
 * the local ring). HR_EINVAL, HR_ENOMEM, HR_EAGAIN (mailbox full).
 */
int hr_router_history_fill(hr_router *r, const char *group, const char *epoch, uint64_t latest,
    const uint64_t *offsets, hr_msg *const *events, size_t n, int timeout_ms);

/* Counters and gauges of every ring (atomics; any thread). */
typedef struct hr_history_stats {
	uint64_t groups;        /* rings held */
	uint64_t frames;        /* frames held */
	uint64_t bytes;         /* hr_history_bytes summed */
	uint64_t replayed;      /* frames replayed to resuming connections */
	uint64_t unrecoverable; /* resumes with a position answered recovered:false */
} hr_history_stats;
void hr_router_get_history_stats(hr_router *r, hr_history_stats *out);

#endif /* HERALD_HISTORY_H */
