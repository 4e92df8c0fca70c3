/*
 * history_int.h: private declarations of the recovery history (history.c,
 * router.c, sys_random.c); never included from outside actors/ and
 * tests/actors/.
 */
#ifndef HERALD_HISTORY_INT_H
#define HERALD_HISTORY_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "actors/history.h"
#include "core/map.h"

/* len random bytes (getrandom; the clock when no entropy source answers).
 * Never fails. Any thread. */
void hr_sys__random_bytes(void *buf, size_t len);

/* True when s (len bytes) is 1..HR_EPOCH_MAX lowercase hex digits. Pure. */
bool hr_history__epoch_ok(const char *s, size_t len);

/* A ring's generation: a number, never 0, that the router's table gives
 * each ring it makes (one per table, counted up), so that a new ring (a new
 * epoch) of a group differs from the one before it. An I/O thread compares
 * these (one integer), never epoch strings. 0 for a ring made outside a
 * table. */
uint32_t hr_history__gen(const hr_history *h);
void hr_history__set_gen(hr_history *h, uint32_t gen);

/* ---------------------------------------------------------------- the router's table */

/* The rules and the numbering mode, with the globs copied after them. */
typedef struct hr_history_conf {
	bool external;
	size_t n;
	hr_history_rule rules[];
} hr_history_conf;
/* Copy rules (checked: sizes and TTLs in range) into one allocation the
 * caller frees with free(). HR_EINVAL, HR_ENOMEM. */
int hr_history__conf_new(
    const hr_history_rule *rules, size_t n, bool external, hr_history_conf **out);

/*
 * Every ring of a router, by group name, with what builds and answers from
 * them (history_table.c). Embedded in the router (init/fini); ONLY touched
 * from the router thread, except the counters (atomics, read by anyone).
 */
typedef struct hr_history_table {
	hr_history_conf *conf; /* NULL: no history */
	hr_map rings;          /* group name -> hr_history */
	hr_buf scratch;        /* envelopes and `recovered` frames are built here */
	int64_t swept_ms;
	uint32_t gen; /* the last ring generation given */
	atomic_uint_fast64_t groups, frames, bytes, replayed, unrecoverable;
} hr_history_table;

void hr_history__table_init(hr_history_table *t);
void hr_history__table_fini(hr_history_table *t);
/* Install conf (takes it; NULL or no rules and not external: off). Every
 * ring is dropped: new rules start history afresh. */
void hr_history__table_set(hr_history_table *t, hr_history_conf *conf);
/* The first rule for group (len bytes), NULL when none (or off). */
const hr_history_rule *hr_history__rule(const hr_history_table *t, const char *group, size_t len);
/*
 * Where a group_send stands (docs/RECOVERY.md): *h its ring (NULL: no
 * history for it), *offset its offset there, *deliver whether it goes to
 * the local members now. at: positioned from outside (epoch, offset,
 * flags HR_AT_*); local_only: came from the layer. Returns false for a
 * positioned duplicate (an offset its ring already passed): drop it.
 */
bool hr_history__position(hr_history_table *t, const char *group, size_t len, bool at,
    const char *epoch, uint64_t at_offset, unsigned flags, bool local_only, hr_history **h,
    uint64_t *offset, bool *deliver);
/* The generation of group's ring (len bytes), 0 when it has none. A
 * caller that sees it change across hr_history__position or
 * hr_history__fill knows that the group's history moved to another epoch
 * (a ring is replaced only then: external numbering; a memory ring is never
 * replaced while the group has members). */
uint32_t hr_history__gen_of(hr_history_table *t, const char *group, size_t len);
/* Record offset with env (borrowed, may be NULL) in h, keeping the gauges. */
void hr_history__append(hr_history_table *t, hr_history *h, uint64_t offset, hr_msg *env);
/* The envelope frame of event (borrowed): {"type":"message"[,"group":G
 * [,"epoch":E,"offset":N]],"data":...}; ctype as hr_consumers__event_json;
 * group NULL for a connection's own channel, h NULL without a position.
 * One reference, the caller's; NULL when the event has no frame or out of
 * memory. */
hr_msg *hr_history__envelope(hr_history_table *t, int ctype, const hr_msg *event, const char *group,
    const hr_history *h, uint64_t offset);
/* A resume's answer for connection conn on I/O thread thread joining group:
 * the frames after pos (borrowed) when it can be served, then the
 * `recovered` frame; counts replayed and unrecoverable. live_from (0: none),
 * only without a position: the client starts from the frame at live_from,
 * which the ring holds (hr_history__start): the `recovered` frame names
 * live_from - 1, and the frames from live_from on follow it as live frames.
 * NULL: out of memory. */
hr_replay *hr_history__resume(hr_history_table *t, const char *group, const hr_recover_pos *pos,
    uint64_t live_from, uint16_t thread, uint64_t conn);
/* External numbering, for the resumes without a position that waited for a
 * fill (router.c, on_history_fill): the group's ring was made while they
 * waited (they wait only when there is none), so each of its frames came
 * after their handshake. Its generation and oldest offset, before the fill
 * adds what came earlier; false when there is no ring. */
bool hr_history__start(hr_history_table *t, const char *group, uint32_t *gen, uint64_t *first);
/* External numbering: can a resume at pos be answered from the local ring
 * (it exists, and pos names none or its epoch and an offset it covers)?
 * Always true without external numbering or without a rule. */
bool hr_history__covers(hr_history_table *t, const char *group, const hr_recover_pos *pos);
/* External numbering: the shared history of group (epoch, latest offset,
 * events[i] at offsets[i], ascending, borrowed) joins the local ring
 * (hr_history_backfill); a ring of another epoch is replaced. */
void hr_history__fill(hr_history_table *t, const char *group, const char *epoch, uint64_t latest,
    const uint64_t *offsets, hr_msg *const *events, size_t n);
/* At most once a second: expire frames, free idle rings of groups for which
 * busy(arg, group) is false (no local member). */
void hr_history__sweep(hr_history_table *t, bool (*busy)(void *arg, const char *group), void *arg);
void hr_history__stats(hr_history_table *t, hr_history_stats *out);

#endif /* HERALD_HISTORY_INT_H */
