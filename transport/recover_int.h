/*
 * recover_int.h: the `recover` query parameter of a WebSocket handshake
 * (docs/PROTOCOL.md "Recovery across reconnects"), private to the transport
 * module (ws.c and its tests).
 */
#ifndef HERALD_RECOVER_INT_H
#define HERALD_RECOVER_INT_H

#include <stddef.h>

#include "actors/history.h"

/* The limits of a `recover` value: over them the handshake is refused. */
#define HR_RECOVER_MAX_BYTES 2048
#define HR_RECOVER_MAX_ITEMS 16

/*
 * Parse a `recover` value (v: len bytes, URL-decoded, borrowed) for a
 * connection that joins group: "" or GROUP@EPOCH:OFFSET[,...]. On 0, *pos
 * holds the first item that names group (pos->given false when none does;
 * items for other groups are checked, then ignored). HR_EINVAL: it does not
 * parse (an item without `@` and `:`, an epoch that is not lowercase hex,
 * an offset that is not a decimal integer >= 0 that fits 64 bits, more than
 * HR_RECOVER_MAX_ITEMS items or over HR_RECOVER_MAX_BYTES). Pure; any thread.
 */
int hr_recover__parse(const char *v, size_t len, const char *group, hr_recover_pos *pos);

struct lws;
/* The handshake's `recover`: 1 with *pos set when the URL carries
 * `recover=`, 0 when it does not, HR_EINVAL when its value does not parse.
 * I/O thread. */
int hr_recover__from_wsi(struct lws *wsi, const char *group, hr_recover_pos *pos);

#endif /* HERALD_RECOVER_INT_H */
