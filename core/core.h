/*
 * core.h: the public face of the `core` module, the floor beneath every
 * other module: error codes (errors.h), refcounted messages, buffers and
 * WebSocket text frames (msg.h), the msgpack/JSON codec (codec.h),
 * Channels' name rules (names.h), the clocks with the one ISO-8601
 * formatter (clock.h), and the one hash map with the one string hash and
 * integer mixer (map.h).
 *
 * core calls nothing above it (layer, actors, transport, cli). Threads: see
 * each header; hr_msg references may cross threads, the rest is pure code.
 */
#ifndef HERALD_CORE_H
#define HERALD_CORE_H

#include "core/clock.h"
#include "core/codec.h"
#include "core/errors.h"
#include "core/map.h"
#include "core/msg.h"
#include "core/names.h"

#endif /* HERALD_CORE_H */
