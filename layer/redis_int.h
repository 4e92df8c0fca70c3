/*
 * redis_int.h: private to the Redis backend of the `layer` module, shared by
 * its files:
 *  - redis_url.c: the host URLs (redis:// and redis+sentinel://), parsed;
 *  - redis_conn.c: how to reach Redis. The shards and their pools of
 *    connections (connect with deadlines, reconnect after a break; for a
 *    redis+sentinel:// shard, ask the sentinels and follow +switch-master),
 *    the enter/leave gate that destroy waits on, the argv builder and
 *    pipelines;
 *  - redis_wire.c: what is stored, as channels_redis stores it: members (12
 *    random bytes and msgpack, "__asgi_channel__"), key names, the shard of
 *    a name (CRC32), random ids;
 *  - layer_redis.c: the ops table and the operations (docs/PROTOCOL.md, "The
 *    Redis wire format"), and redis_recv.c: the receives, both on top of the
 *    two before, which do not call each other (layer_redis.c -> redis_recv.c
 *    -> redis_conn.c and redis_wire.c);
 *  - redis_history.c: recovery's shared history (layer.h), and
 *    redis_hwatch.c: the history thread's blocking waits on it.
 * Threads: any worker thread, concurrently; never an I/O loop thread.
 */
#ifndef HERALD_LAYER_REDIS_INT_H
#define HERALD_LAYER_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "layer/layer_impl.h"

#define RD_POOL_IDLE 8    /* idle connections kept per shard */
#define RD_PREFIX_MAX 200 /* key prefix length */
#define RD_KEY_MAX (RD_PREFIX_MAX + HR_NAME_MAX + 32)

/* ------------------------------------------------------------ argv builder */

#define HR_ARGV_INLINE 8 /* arguments before the builder allocates */
#define HR_ARGV_NUM 40   /* one formatted number, NUL included */

/* One Redis command under construction, in hiredis' argc/argv/lens form:
 * each append counts its argument's length. Strings are borrowed and must
 * outlive the command's run; numbers are formatted into the builder. The
 * first failure (HR_ENOMEM, HR_EMSGSIZE) sticks in err and later appends
 * are ignored; hr_layer__redis_run reports it before anything is sent, so a
 * command can be built without checking each append (each also returns
 * err). Not copyable: argv may point into the struct itself. */
typedef struct hr_argv {
	int argc;
	const char **argv;
	size_t *lens;
	int err;
	size_t _cap;
	char (*_nums)[HR_ARGV_NUM]; /* _nums[i]: argument i's text if a number */
	const char *_argv_in[HR_ARGV_INLINE];
	size_t _lens_in[HR_ARGV_INLINE];
	char _nums_in[HR_ARGV_INLINE][HR_ARGV_NUM];
} hr_argv;

/* Empty a; _fini frees what it grew and leaves it empty, ready for reuse. */
void hr_layer__argv_init(hr_argv *a);
void hr_layer__argv_fini(hr_argv *a);
/* Append s[0, n) (borrowed), or the NUL-terminated s. */
int hr_layer__argv_add(hr_argv *a, const char *s, size_t n);
int hr_layer__argv_str(hr_argv *a, const char *s);
/* Append a number as text: an integer ("%lld"); a score, as Python's
 * repr(float) gives the same double ("%.17g"); a timeout of ms milliseconds
 * in seconds ("%d.%03d", as BZPOPMIN takes it). */
int hr_layer__argv_ll(hr_argv *a, long long v);
int hr_layer__argv_score(hr_argv *a, double v);
int hr_layer__argv_secs(hr_argv *a, int ms);

/* ------------------------------------------------------------ shards */

#define RD_SENTINELS_MAX 16 /* sentinels per redis+sentinel:// URL */
#define RD_MASTER_MAX 128   /* length of a Sentinel master name */

/* One sentinel of a redis+sentinel:// shard, and the +switch-master
 * subscription on it (only the thread in hr_layer__redis_follow touches
 * watch and retry_at). */
typedef struct hr_redis_sentinel {
	char *host;
	int port;
	redisContext *watch; /* NULL: not subscribed */
	double retry_at;     /* monotonic seconds: subscribe again from then */
} hr_redis_sentinel;

/* One Redis server (a host of opts.hosts) and its idle connections. A
 * redis+sentinel:// shard also names its sentinels and master: host and port
 * are then the master the sentinels last gave (NULL until asked), changed
 * by whichever call asks again, and read under mu. */
typedef struct hr_redis_shard {
	char *host;                   /* {mu} for a sentinel shard */
	int port;                     /* {mu} for a sentinel shard */
	char *password;               /* NULL: no AUTH (master and sentinels) */
	long db;                      /* 0: no SELECT */
	hr_redis_sentinel *sentinels; /* NULL: a redis:// shard */
	size_t n_sentinels;
	char *master;         /* the master's name, for a sentinel shard */
	size_t next_sentinel; /* {mu} the one to ask first: the last that answered */
	pthread_mutex_t mu;
	bool mu_ready;
	redisContext *idle[RD_POOL_IDLE]; /* {mu} */
	size_t n_idle;                    /* {mu} */
} hr_redis_shard;

/* The backend's state (hr_layer._be). */
typedef struct hr_redis {
	hr_layer *layer; /* the layer this is the backend of (its counters) */
	hr_redis_shard *shards;
	size_t n;
	char client_prefix[33];
	size_t plen;                    /* strlen(prefix) */
	long long expiry, group_expiry; /* whole seconds, as core.py's int() */
	atomic_uint send_rr, recv_rr;
	pthread_mutex_t mu;
	pthread_cond_t left;
	bool mu_ready, cond_ready;
	bool closed;     /* {mu} */
	unsigned inside; /* {mu} calls running */
} hr_redis;

/* Parse "redis+sentinel://[:password@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]"
 * into s's sentinels (port 26379 by default; at most RD_SENTINELS_MAX),
 * master (letters, digits, '.', '-', '_', ':'; at most RD_MASTER_MAX),
 * password (%-decoded) and db; hosts as in hr_layer__redis_parse_url.
 * HR_EINVAL for anything else, HR_ENOMEM; on failure s may be partly filled
 * and hr_layer__redis_shard_fini frees it. */
int hr_layer__redis_parse_sentinel_url(const char *url, hr_redis_shard *s);
/* s[0, n) as a decimal number in [0, max] (at most 10 digits). */
bool hr_layer__redis_parse_uint(const char *s, size_t n, long max, long *out);
/* Free what a shard holds (its strings, sentinels, idle connections, lock). */
void hr_layer__redis_shard_fini(hr_redis_shard *s);

/* Set up r's lock and one shard per URL of hosts[0, n) (borrowed; see
 * hr_layer__redis_parse_url and hr_layer__redis_parse_sentinel_url). HR_EINVAL for a bad URL,
 * HR_ENOMEM. On failure r is partly built and hr_layer__redis_close still takes it. */
int hr_layer__redis_open(hr_redis *r, const char *const *hosts, size_t n);
/* Refuse new calls (HR_ECLOSED), wait until the running ones have left,
 * close every connection and free the shards; r itself stays the caller's. */
void hr_layer__redis_close(hr_redis *r);

/* Every operation runs between enter (HR_ECLOSED once closing) and leave.
 * is_closed lets a long receive stop between its slices. */
int hr_layer__redis_enter(hr_redis *r);
void hr_layer__redis_leave(hr_redis *r);
bool hr_layer__redis_is_closed(hr_redis *r);

/* ------------------------------------------------------------ connections */

/* Borrow a connection to shard idx: an idle one, or a new one (connect,
 * AUTH, SELECT within their deadlines; for a sentinel shard, first ask the
 * sentinels in turn for the master and check with ROLE that it is one, and
 * count a failover when the master moved). 0 or HR_EIO. Give it back with
 * conn_put, which keeps it for the next call unless it broke (then it is
 * freed and the next call connects afresh); c may be NULL. */
int hr_layer__redis_conn_get(hr_redis *r, size_t idx, redisContext **out);
void hr_layer__redis_conn_put(hr_redis *r, size_t idx, redisContext *c);
/* Whether c, a connection to shard idx, is unbroken and (sentinel shard)
 * still points at the shard's master. */
bool hr_layer__redis_conn_current(hr_redis *r, size_t idx, const redisContext *c);

/* Run the n pipelined commands cmds[0, n) on c, in one write, and collect
 * their replies into reps[0, n). A command that failed to build is reported
 * (its err) before anything is sent. HR_EIO if the connection broke (reps
 * are then all NULL) or if any reply is an error (then freed too). A
 * READONLY, LOADING or MASTERDOWN answer (a master demoted or restarting)
 * also marks c broken, so that conn_put drops it and the next call asks
 * again where the master is. On 0 the
 * caller frees reps with hr_layer__redis_free_replies. */
int hr_layer__redis_run(redisContext *c, const hr_argv *cmds, size_t n, redisReply **reps);
void hr_layer__redis_free_replies(redisReply **reps, size_t n);

/* Sentinel shards: wait up to timeout_ms for a +switch-master about one of
 * them (a subscription on each of their sentinels, made again at most once
 * a second when one is lost, so the first sentinel to know is heard) and
 * move that shard to the new master at once: its idle connections closed,
 * the ones in use dropped when given back, a failover counted. *moved (NULL
 * ok) tells whether a shard moved. Takes about timeout_ms when nothing
 * happens, even with no subscription. 0, HR_EIO (a shard has no
 * subscription now), HR_ENOTSUP (no sentinel shard), HR_ENOMEM. One thread
 * at a time. */
int hr_layer__redis_follow(hr_redis *r, int timeout_ms, bool *moved);

/* ------------------------------------------------------------ wire */

/* n random bytes from the system's source; HR_EIO if it fails. */
int hr_layer__redis_random(unsigned char *p, size_t n);
/* 32 lowercase hex chars of a random UUID4, as uuid.uuid4().hex. */
int hr_layer__redis_uuid4_hex(char out[33]);
/* The shard of name[0, len) among n (channels_redis.utils._consistent_hash). */
size_t hr_layer__redis_shard_of(size_t n, const char *name, size_t len);

/* The key prefix + a[0, alen) + b[0, blen) into key (RD_KEY_MAX bytes, NUL
 * added), e.g. "asgi" + ":group:" + G; its length. */
size_t hr_layer__redis_key(
    const hr_layer *l, char *key, const char *a, size_t alen, const char *b, size_t blen);

/* The member a send of msg to channel[0, clen) stores, into out (the
 * caller's, appended to): 12 random bytes, then msg, with "__asgi_channel__"
 * set to the channel when it is specific (so its process can tell).
 * HR_EINVAL if msg already has that key (reserved, as core.py asserts),
 * HR_ETYPE/HR_EBADMSG if msg is not a map, HR_EIO, HR_ENOMEM. */
int hr_layer__redis_member_send(const hr_msg *msg, const char *channel, size_t clen, hr_buf *out);
/* The member a group_send stores once for one process key: 12 random bytes,
 * then msg with "__asgi_channel__" the list names[0, n) (lens[i] bytes each,
 * borrowed). */
int hr_layer__redis_member_group(
    const hr_msg *msg, const char *const *names, const size_t *lens, size_t n, hr_buf *out);

/* ------------------------------------------------------------ history */

/* The shared key of shard ("P" "specific.<H>!") into key; its length. */
size_t hr_layer__history_shared_key(const hr_layer *l, size_t shard, char key[RD_KEY_MAX]);
/* The entries of an XREAD reply on the log after cursor, into ev[*n, max)
 * (*n grows), advancing cursor; entries at or before cursor are skipped (a
 * read may answer what a later one has read already). A nil reply is none. */
int hr_layer__history_entries(hr_layer *l, const redisReply *rep, char cursor[HR_HISTORY_CURSOR],
    hr_layer_hevent *ev, size_t max, size_t *n);

/* ------------------------------------------------------------ receive */

/* The ops table's receive, receive_targets and receive_batch (redis_recv.c;
 * contracts in layer_impl.h and layer.h). */
int hr_layer__redis_receive(
    hr_layer *l, const char *channel, size_t clen, int timeout_ms, hr_msg **out);
int hr_layer__redis_receive_targets(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
    hr_msg **out, hr_layer_targets *t);
int hr_layer__redis_receive_batch(hr_layer *l, const char *channel, size_t clen, int timeout_ms,
    hr_layer_item *items, size_t max, size_t *n);

#endif /* HERALD_LAYER_REDIS_INT_H */
