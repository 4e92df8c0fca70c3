/*
 * bridge_hist_int.h: the Redis bridge's history thread
 * (actors/redis_bridge_history.c), private to the bridge (redis_bridge.c).
 * Not part of the public API.
 */
#ifndef HERALD_BRIDGE_HIST_INT_H
#define HERALD_BRIDGE_HIST_INT_H

#include <stdint.h>

#include "actors/bridge.h"

typedef struct hr_bridge_hist hr_bridge_hist;

/* Start the history thread over the Redis layer rl (borrowed; outlives it):
 * it pops (sequences) up to batch copies per shard and round, and tails the
 * shards' logs, calling deliver(arg, ev) on itself for each sequenced
 * group_send (ev borrowed for the call). log as hr_bridge_opts.log.
 * HR_ENOMEM, HR_EIO (no thread). */
int hr_bridge__hist_start(hr_bridge_hist **out, hr_layer *rl, size_t batch,
    void (*deliver)(void *arg, const hr_layer_hevent *ev), void *arg,
    void (*log)(int level, const char *line));
/* Stop and join the thread; idempotent. NULL ok. */
void hr_bridge__hist_stop(hr_bridge_hist *h);
/* Stop, then free. NULL ok. */
void hr_bridge__hist_free(hr_bridge_hist *h);
/* Copies this node sequenced, log entries it read (0, 0 for NULL). Any thread. */
void hr_bridge__hist_stats(const hr_bridge_hist *h, uint64_t *sequenced, uint64_t *events);

#endif /* HERALD_BRIDGE_HIST_INT_H */
