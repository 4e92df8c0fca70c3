/*
 * layer_impl.h: private to the `layer` module. The layer object that the
 * public wrappers in layer.c hand to a backend, and the ops table every
 * backend (layer_memory.c, later layer_redis.c) exports.
 *
 * The wrappers validate arguments and names before dispatch, so a backend
 * only ever sees non-NULL arguments and valid names (with their lengths).
 * Threads: backends must be safe to call from several threads at once.
 */
#ifndef HERALD_LAYER_IMPL_H
#define HERALD_LAYER_IMPL_H

#include <stdatomic.h>

#include "layer/layer.h"

struct hr_layer_ops {
	const char *name; /* "memory", "redis" */
	/* Build the backend's state into l->_be. l->_opts is filled in. On
	 * failure, destroy is still called on l (it must accept _be == NULL). */
	int (*create)(hr_layer *l);
	/* Wake blocked receivers (HR_ECLOSED), wait until they have left, free. */
	void (*destroy)(hr_layer *l);
	/* Required. */
	int (*send)(hr_layer *l, const char *channel, size_t clen, hr_msg *msg);
	/* Optional operations: NULL makes the public call return HR_ENOTSUP. */
	int (*receive)(hr_layer *l, const char *channel, size_t clen, int timeout_ms, hr_msg **out);
	int (*new_channel)(hr_layer *l, const char *prefix, char *out, size_t outlen);
	int (*group_add)(
	    hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen);
	int (*group_discard)(
	    hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen);
	int (*group_send)(
	    hr_layer *l, const char *group, size_t glen, hr_msg *msg, hr_group_send_result *res);
	int (*flush)(hr_layer *l);
	/* new_channel's prefix when the caller gives NULL; NULL means "specific.". */
	const char *new_channel_prefix;
	int (*receive_targets)(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
	    hr_msg **out, hr_layer_targets *targets);
	int (*client_prefix)(hr_layer *l, char *out, size_t outlen);
	int (*receive_batch)(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
	    hr_layer_item *items, size_t max, size_t *n);
	int (*group_send_except)(hr_layer *l, const char *group, size_t glen, hr_msg *msg,
	    const char *except, size_t elen, hr_group_send_result *res);
};

struct hr_layer {
	const hr_layer_ops *_ops;
	hr_layer_opts _opts; /* copied at create; strings and rules borrowed */
	void *_be;           /* the backend's state */
	/* hr_layer_stats, bumped by backends through hr_layer__count_*() */
	atomic_uint_least64_t _expired;
	atomic_uint_least64_t _full;
	atomic_uint_least64_t _group_expired;
	atomic_uint_least64_t _bad;
	atomic_uint_least64_t _failovers;
};

/* Seconds on the layer's clock (opts.clock, else CLOCK_REALTIME). */
double hr_layer__now(const hr_layer *l);

/* Statistics; any thread. */
void hr_layer__count_expired(hr_layer *l, uint64_t n);
void hr_layer__count_full(hr_layer *l, uint64_t n);
void hr_layer__count_group_expired(hr_layer *l, uint64_t n);
void hr_layer__count_bad(hr_layer *l, uint64_t n);
void hr_layer__count_failover(hr_layer *l);

/* Capacity for a channel name of len bytes (first matching glob wins). */
size_t hr_layer__capacity(const hr_layer *l, const char *channel, size_t len);

/* Fill out[0, n) with random ASCII letters (a-zA-Z), as Channels' new_channel
 * does with random.choice(string.ascii_letters). HR_EIO if the system's
 * random source fails. */
int hr_layer__random_letters(char *out, size_t n);

/* Redis backend: parse "redis://[:password@]host[:port][/db]". host is a name
 * or dotted address (letters, digits, '.', '-', '_') or "[v6]"; port 1..65535
 * (default 6379); db a decimal (default 0); the password is %-decoded. Anything
 * else (user names, queries, other schemes, trailing bytes) is HR_EINVAL. On
 * success the caller frees *host and *password (NULL when absent). */
/* Decode one member popped from Redis (docs/PROTOCOL.md: 12 random bytes, then a
 * msgpack map) read from `channel` (a process key when process_key): the
 * message without "__asgi_channel__" and its targets, as the Redis backend's
 * receive does. 0, HR_EBADMSG for anything malformed, or HR_ENOMEM. On
 * success the caller owns *out and t (hr_layer_targets_fini); on failure
 * both are left empty. Pure (tests/fuzz/fuzz_redis_member.c). */
int hr_layer__redis_decode_member(const char *mem, size_t mlen, const char *channel, size_t clen,
    bool process_key, hr_msg **out, hr_layer_targets *t);

int hr_layer__redis_parse_url(const char *url, char **host, int *port, char **password, long *db);

/* Memory backend: receivers currently blocked inside l (for tests). */
unsigned hr_layer__memory_waiters(hr_layer *l);

#endif /* HERALD_LAYER_IMPL_H */
