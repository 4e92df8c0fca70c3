/*
 * bridge_hist_int.h: the Redis bridge's history thread
 * (actors/redis_bridge_history.c), private to the bridge (redis_bridge.c).
 * Not part of the public API.
 */
#ifndef HERALD_BRIDGE_HIST_INT_H
#define HERALD_BRIDGE_HIST_INT_H

#include <stdint.h>

#include "actors/bridge.h"
#include "actors/history.h"

typedef struct hr_bridge_hist hr_bridge_hist;

/* The first rule of rules[0, n) whose glob matches group, or NULL. */
const hr_bridge_history_rule *hr_bridge__hist_rule(
    const hr_bridge_history_rule *rules, size_t n, const char *group);

/* Start the history thread over the Redis layer rl and the router (both
 * borrowed; they outlive it): it pops (sequences) up to batch copies per
 * shard and round, and tails the shards' logs, handing each sequenced
 * group_send to on_event(arg, ev) on itself, or, if on_event is NULL, to
 * the router as a local-only group_send. log as hr_bridge_opts.log.
 * HR_ENOMEM, HR_EIO (no thread). */
int hr_bridge__hist_start(hr_bridge_hist **out, hr_layer *rl, hr_router *router, size_t batch,
    const hr_bridge_history_rule *rules, size_t n_rules, hr_bridge_event_fn on_event, void *arg,
    void (*log)(int level, const char *line));
/* The router's fill request (history.h, hr_history_fill_fn; arg: the
 * hr_bridge_hist): queued for the history thread, which reads the group's
 * shared history, then the logs to their end, and answers with
 * hr_router_history_fill. HR_EAGAIN when HIST_FILL_QUEUE are waiting. */
int hr_bridge__hist_fill_request(void *arg, const char *group);
/* Stop and join the thread; idempotent. NULL ok. */
void hr_bridge__hist_stop(hr_bridge_hist *h);
/* Stop, then free. NULL ok. */
void hr_bridge__hist_free(hr_bridge_hist *h);
/* Copies this node sequenced, log entries it read, entries the router did
 * not take (all 0 for NULL). Any thread. */
void hr_bridge__hist_stats(
    const hr_bridge_hist *h, uint64_t *sequenced, uint64_t *events, uint64_t *lost);

#endif /* HERALD_BRIDGE_HIST_INT_H */
