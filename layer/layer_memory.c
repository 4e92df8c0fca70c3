/*
 * layer_memory.c: the embedded in-memory channel layer (hr_layer_memory_ops),
 * behaving as Channels' InMemoryChannelLayer, for one process.
 *
 * State: a table of channels (each a FIFO ring of hr_msg references with
 * their expiry time) and a table of groups (each a table of memberships
 * keyed by channel, plus a list in join order). A membership also sits on
 * its channel's list, so a channel can leave every group in O(its groups).
 * Tables are core/map.h maps with a random seed (names come from outside);
 * lookups never allocate. group_send to N members is
 * O(N). A channel entry lives while it holds messages, memberships or
 * blocked receivers; a group while it has members.
 *
 * Expiry, as Channels does it: a message is expired once its send time plus
 * `expiry` is before now; a channel that loses an expired message leaves
 * every group (Channels' _clean_expired treats it as abandoned); a
 * membership whose join time is older than `group_expiry` (whole seconds,
 * as Channels compares int(time)) is dropped at the next group_send.
 * Stricter than Channels: expired messages are dropped whenever a channel is
 * read or its capacity checked (send, group_send, receive), never only on
 * receive, so they are never delivered and never count against capacity.
 *
 * Threads: every call takes the one mutex `mu`. A blocking receive waits on
 * its channel's condition variable (CLOCK_MONOTONIC); destroy wakes such
 * receivers (HR_ECLOSED) and waits until they have left the layer.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "layer/layer_impl.h"

/* ------------------------------------------------------------ state */

typedef struct mitem {
	hr_msg *m;  /* the layer's reference */
	double exp; /* send time + expiry, layer clock */
} mitem;

typedef struct mmember mmember;

/* The first member of a channel and of a group: its name, which the tables
 * borrow as its key. The name's bytes (NUL-terminated) follow the object. */
typedef struct mname {
	size_t len;
	const char *name;
} mname;

typedef struct mchan {
	mname key;
	mitem *q; /* ring: q[head .. head+qlen) mod qcap */
	size_t qcap, qhead, qlen;
	mmember *members; /* via c_next/c_prev */
	unsigned waiters; /* receivers blocked on cond */
	bool cond_ready;
	pthread_cond_t cond;
} mchan;

typedef struct mgroup {
	mname key;
	hr_map by_chan; /* mmember* keyed by channel pointer */
	mmember *head;  /* join order, via g_next/g_prev */
	mmember *tail;
	unsigned pins; /* a group_send is walking it: do not free */
} mgroup;

struct mmember {
	mgroup *g;
	mchan *c;
	double joined;
	mmember *g_next, *g_prev, *c_next, *c_prev;
};

typedef struct mem {
	pthread_mutex_t mu;
	pthread_cond_t drained; /* signalled when waiters drops to 0 while closed */
	bool mu_ready, drained_ready;
	bool closed;      /* {mu} */
	unsigned waiters; /* {mu} receivers blocked anywhere */
	uint64_t seed;
	hr_map chans;  /* {mu} mchan* by name */
	hr_map groups; /* {mu} mgroup* by name */
} mem;

/* chans and groups borrow the name inside each object; by_chan is keyed by
 * the channel's address. */
static const hr_map_type names_type = { .kind = HR_MAP_STR };
static const hr_map_type by_chan_type = { .kind = HR_MAP_INT };

/* The channel or group called name in t, or NULL. */
static void *
named_find(hr_map *t, const char *name, size_t len)
{
	hr_map_entry *e = hr_map_find_str(t, name, len);
	return e != NULL ? e->val.ptr : NULL;
}

/* The channel or group called name in t; a missing one is added, zeroed, as
 * an object of size bytes (*added, may be NULL, says so). NULL: out of
 * memory, nothing added. */
static void *
named_get(hr_map *t, size_t size, const char *name, size_t len, bool *added)
{
	hr_map_entry *e;
	void *found = named_find(t, name, len);
	if (added != NULL)
		*added = found == NULL;
	if (found != NULL)
		return found;
	if (hr_map_reserve(t, 1) != 0)
		return NULL;
	mname *n = calloc(1, size + len + 1);
	if (n == NULL)
		return NULL;
	char *copy = (char *)n + size;
	memcpy(copy, name, len);
	*n = (mname) { len, copy };
	/* Room was reserved and the key is borrowed: this cannot fail. */
	int rv = hr_map_put_str(t, copy, len, &e, NULL);
	HR_ASSERT(rv == 0);
	(void)rv;
	e->val.ptr = n;
	return n;
}

/* Take the channel or group named n out of t. */
static void
named_remove(hr_map *t, const mname *n)
{
	int rv = hr_map_del_str(t, n->name, n->len);
	HR_ASSERT(rv == 0);
	(void)rv;
}

/* Lock m; HR_ECLOSED (locked all the same) once destroy has begun. */
static int
lock_open(mem *m)
{
	pthread_mutex_lock(&m->mu);
	return m->closed ? HR_ECLOSED : 0;
}

/* ------------------------------------------------------------ channels */

static void
chan_free(mchan *c)
{
	for (size_t i = 0; i < c->qlen; i++)
		hr_msg_unref(c->q[(c->qhead + i) % c->qcap].m);
	free(c->q);
	if (c->cond_ready)
		pthread_cond_destroy(&c->cond);
	free(c);
}

/* Free c if nothing keeps it: no messages, memberships or waiters. */
static void
chan_release(mem *m, mchan *c)
{
	if (c->qlen > 0 || c->members != NULL || c->waiters > 0)
		return;
	named_remove(&m->chans, &c->key);
	chan_free(c);
}

static int
chan_push(mchan *c, hr_msg *msg, double exp)
{
	if (c->qlen == c->qcap) {
		size_t ncap = c->qcap ? c->qcap * 2 : 4;
		mitem *nq = malloc(ncap * sizeof(*nq));
		if (nq == NULL)
			return HR_ENOMEM;
		for (size_t i = 0; i < c->qlen; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = (mitem) { hr_msg_ref(msg), exp };
	c->qlen++;
	if (c->waiters > 0)
		pthread_cond_signal(&c->cond);
	return 0;
}

/* Take the oldest message; the layer's reference passes to the caller. */
static hr_msg *
chan_pop(mchan *c)
{
	HR_ASSERT(c->qlen > 0);
	hr_msg *msg = c->q[c->qhead].m;
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	if (c->qlen == 0 && c->qcap > 64) {
		/* a drained burst: give the ring back */
		free(c->q);
		c->q = NULL;
		c->qcap = 0;
		c->qhead = 0;
	}
	return msg;
}

/* ------------------------------------------------------------ groups */

/* Free g if it has no members and nobody is walking it. */
static void
group_release(mem *m, mgroup *g)
{
	if (hr_map_count(&g->by_chan) > 0 || g->pins > 0)
		return;
	named_remove(&m->groups, &g->key);
	hr_map_fini(&g->by_chan);
	free(g);
}

static mmember *
member_find(mgroup *g, mchan *c)
{
	hr_map_entry *e = hr_map_find_int(&g->by_chan, (uintptr_t)c);
	return e != NULL ? e->val.ptr : NULL;
}

/* Unlink and free a membership; the group and channel are not released. */
static void
member_remove(mem *m, mmember *mb)
{
	mgroup *g = mb->g;
	mchan *c = mb->c;
	int rv = hr_map_del_int(&g->by_chan, (uintptr_t)c);
	HR_ASSERT(rv == 0);
	(void)rv;
	if (mb->g_prev)
		mb->g_prev->g_next = mb->g_next;
	else
		g->head = mb->g_next;
	if (mb->g_next)
		mb->g_next->g_prev = mb->g_prev;
	else
		g->tail = mb->g_prev;
	if (mb->c_prev)
		mb->c_prev->c_next = mb->c_next;
	else
		c->members = mb->c_next;
	if (mb->c_next)
		mb->c_next->c_prev = mb->c_prev;
	free(mb);
}

/* The channel leaves every group (groups left empty are released). */
static void
chan_ungroup(mem *m, mchan *c)
{
	while (c->members != NULL) {
		mgroup *g = c->members->g;
		member_remove(m, c->members);
		group_release(m, g);
	}
}

/* Drop c's expired messages; if any, c leaves all its groups, as Channels'
 * _clean_expired does. Returns how many were dropped. c is not released. */
static size_t
chan_expire(hr_layer *l, mem *m, mchan *c, double now)
{
	size_t n = 0;
	while (c->qlen > 0 && c->q[c->qhead].exp < now) {
		hr_msg_unref(chan_pop(c));
		n++;
	}
	if (n > 0) {
		hr_layer__count_expired(l, n);
		chan_ungroup(m, c);
	}
	return n;
}

/* Channels: int(joined) < int(now) - group_expiry. */
static bool
member_expired(const hr_layer *l, const mmember *mb, double now)
{
	return floor(mb->joined) < floor(now) - l->_opts.group_expiry;
}

/* Free every group and membership at once; channels' member lists are
 * left dangling for the caller to clear or free. */
static void
groups_free(mem *m)
{
	hr_map_iter it;
	hr_map_entry *e;
	hr_map_iter_init(&it, &m->groups);
	while ((e = hr_map_next(&it)) != NULL) {
		mgroup *g = e->val.ptr;
		for (mmember *mb = g->head, *next; mb != NULL; mb = next) {
			next = mb->g_next;
			free(mb);
		}
		hr_map_fini(&g->by_chan);
		free(g);
	}
	hr_map_fini(&m->groups);
}

/* ------------------------------------------------------------ ops */

static int
mem_create(hr_layer *l)
{
	mem *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return HR_ENOMEM;
	l->_be = m;
	if (pthread_mutex_init(&m->mu, NULL) != 0)
		return HR_ENOMEM;
	m->mu_ready = true;
	if (pthread_cond_init(&m->drained, NULL) != 0)
		return HR_ENOMEM;
	m->drained_ready = true;
	if (RAND_bytes((unsigned char *)&m->seed, (int)sizeof(m->seed)) != 1)
		return HR_EIO;
	hr_map_init(&m->chans, &names_type, m->seed);
	hr_map_init(&m->groups, &names_type, m->seed);
	return 0;
}

static void
mem_destroy(hr_layer *l)
{
	mem *m = l->_be;
	if (m == NULL)
		return;
	if (m->mu_ready && m->drained_ready) {
		pthread_mutex_lock(&m->mu);
		m->closed = true;
		hr_map_iter it;
		hr_map_entry *e;
		hr_map_iter_init(&it, &m->chans);
		while ((e = hr_map_next(&it)) != NULL) {
			mchan *c = e->val.ptr;
			if (c->waiters > 0)
				pthread_cond_broadcast(&c->cond);
		}
		while (m->waiters > 0)
			pthread_cond_wait(&m->drained, &m->mu);
		pthread_mutex_unlock(&m->mu);
	}
	groups_free(m);
	hr_map_iter it;
	hr_map_entry *e;
	hr_map_iter_init(&it, &m->chans);
	while ((e = hr_map_next(&it)) != NULL)
		chan_free(e->val.ptr);
	hr_map_fini(&m->chans);
	if (m->drained_ready)
		pthread_cond_destroy(&m->drained);
	if (m->mu_ready)
		pthread_mutex_destroy(&m->mu);
	free(m);
	l->_be = NULL;
}

static int
mem_send(hr_layer *l, const char *channel, size_t clen, hr_msg *msg)
{
	mem *m = l->_be;
	mchan *c;
	int rv;
	if ((rv = lock_open(m)) != 0)
		goto out;
	if ((c = named_get(&m->chans, sizeof(*c), channel, clen, NULL)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	double now = hr_layer__now(l);
	chan_expire(l, m, c, now);
	if (c->qlen >= hr_layer__capacity(l, channel, clen)) {
		hr_layer__count_full(l, 1);
		rv = HR_EFULL;
	} else {
		rv = chan_push(c, msg, now + l->_opts.expiry);
	}
	chan_release(m, c);
out:
	pthread_mutex_unlock(&m->mu);
	return rv;
}

static int
deadline_after(int timeout_ms, struct timespec *ts)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) != 0)
		return HR_EIO;
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
	return 0;
}

static int
cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr) != 0)
		return HR_ENOMEM;
	int rv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 ? 0 : HR_EIO;
	if (rv == 0 && pthread_cond_init(cv, &attr) != 0)
		rv = HR_ENOMEM;
	pthread_condattr_destroy(&attr);
	return rv;
}

static int
mem_receive(hr_layer *l, const char *channel, size_t clen, int timeout_ms, hr_msg **out)
{
	mem *m = l->_be;
	mchan *c;
	struct timespec deadline;
	int rv;
	if (timeout_ms > 0 && (rv = deadline_after(timeout_ms, &deadline)) != 0)
		return rv;
	if ((rv = lock_open(m)) != 0)
		goto out;
	if ((c = named_get(&m->chans, sizeof(*c), channel, clen, NULL)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	for (;;) {
		chan_expire(l, m, c, hr_layer__now(l));
		if (c->qlen > 0) {
			*out = chan_pop(c);
			rv = 0;
			break;
		}
		if (m->closed) {
			rv = HR_ECLOSED;
			break;
		}
		if (timeout_ms == 0) {
			rv = HR_EAGAIN;
			break;
		}
		if (!c->cond_ready) {
			if ((rv = cond_init_monotonic(&c->cond)) != 0)
				break;
			c->cond_ready = true;
		}
		c->waiters++;
		m->waiters++;
		int err = timeout_ms < 0 ? pthread_cond_wait(&c->cond, &m->mu)
		                         : pthread_cond_timedwait(&c->cond, &m->mu, &deadline);
		c->waiters--;
		m->waiters--;
		if (m->closed) {
			if (m->waiters == 0)
				pthread_cond_signal(&m->drained);
			rv = HR_ECLOSED;
			break;
		}
		if (err == ETIMEDOUT) {
			/* a message that raced the timeout still counts */
			chan_expire(l, m, c, hr_layer__now(l));
			if (c->qlen > 0) {
				*out = chan_pop(c);
				rv = 0;
			} else {
				rv = HR_ETIMEDOUT;
			}
			break;
		}
	}
	chan_release(m, c);
out:
	pthread_mutex_unlock(&m->mu);
	return rv;
}

static int
mem_new_channel(hr_layer *l, const char *prefix, char *out, size_t outlen)
{
	/* InMemoryChannelLayer: "%s.inmemory!%s" % (prefix, 12 ascii letters) */
	static const char mid[] = ".inmemory!";
	enum { NRAND = 12 };
	mem *m = l->_be;
	size_t plen = strlen(prefix);
	size_t len = plen + sizeof(mid) - 1 + NRAND;
	if (len >= HR_NAME_MAX)
		return HR_EBADNAME;
	if (len + 1 > outlen)
		return HR_EMSGSIZE;
	memcpy(out, prefix, plen);
	memcpy(out + plen, mid, sizeof(mid) - 1);
	out[len] = '\0';
	/* 52^12 names: a clash with a live channel is astronomically unlikely,
	 * but cheap to rule out. */
	for (int tries = 0; tries < 16; tries++) {
		int rv = hr_layer__random_letters(out + len - NRAND, NRAND);
		if (rv != 0)
			return rv;
		pthread_mutex_lock(&m->mu);
		bool taken = named_find(&m->chans, out, len) != NULL;
		pthread_mutex_unlock(&m->mu);
		if (!taken)
			return 0;
	}
	return HR_EIO;
}

static int
mem_group_add(hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen)
{
	mem *m = l->_be;
	mgroup *g = NULL;
	mchan *c = NULL;
	int rv;
	if ((rv = lock_open(m)) != 0)
		goto out;
	bool fresh;
	if ((g = named_get(&m->groups, sizeof(*g), group, glen, &fresh)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	if (fresh)
		hr_map_init(&g->by_chan, &by_chan_type, m->seed);
	if ((c = named_get(&m->chans, sizeof(*c), channel, clen, NULL)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	double now = hr_layer__now(l);
	mmember *mb = member_find(g, c);
	if (mb != NULL) {
		mb->joined = now; /* Channels re-stamps the join time */
		goto out;
	}
	if ((rv = hr_map_reserve(&g->by_chan, 1)) != 0)
		goto out;
	if ((mb = calloc(1, sizeof(*mb))) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	mb->g = g;
	mb->c = c;
	mb->joined = now;
	hr_map_entry *e;
	rv = hr_map_put_int(&g->by_chan, (uintptr_t)c, &e, NULL); /* reserved: cannot fail */
	HR_ASSERT(rv == 0);
	e->val.ptr = mb;
	mb->g_prev = g->tail;
	if (g->tail)
		g->tail->g_next = mb;
	else
		g->head = mb;
	g->tail = mb;
	mb->c_next = c->members;
	if (c->members)
		c->members->c_prev = mb;
	c->members = mb;
out:
	if (c != NULL)
		chan_release(m, c);
	if (g != NULL)
		group_release(m, g);
	pthread_mutex_unlock(&m->mu);
	return rv;
}

static int
mem_group_discard(hr_layer *l, const char *group, size_t glen, const char *channel, size_t clen)
{
	mem *m = l->_be;
	mgroup *g;
	int rv = 0;
	if ((rv = lock_open(m)) != 0)
		goto out;
	g = named_find(&m->groups, group, glen);
	mchan *c = named_find(&m->chans, channel, clen);
	if (g == NULL || c == NULL)
		goto out; /* discarding a non-member is not an error in Channels */
	mmember *mb = member_find(g, c);
	if (mb != NULL) {
		member_remove(m, mb);
		chan_release(m, c);
		group_release(m, g);
	}
out:
	pthread_mutex_unlock(&m->mu);
	return rv;
}

static int
mem_group_send(hr_layer *l, const char *group, size_t glen, hr_msg *msg, hr_group_send_result *res)
{
	mem *m = l->_be;
	mgroup *g;
	int rv = 0;
	if ((rv = lock_open(m)) != 0)
		goto out;
	g = named_find(&m->groups, group, glen);
	if (g == NULL)
		goto out;
	double now = hr_layer__now(l);
	double exp = now + l->_opts.expiry;
	uint64_t group_expired = 0;
	g->pins++;
	/* Walking g's list is safe although members leave it on the way: only
	 * the current membership can go (a channel is in g at most once). */
	for (mmember *mb = g->head, *next; mb != NULL; mb = next) {
		next = mb->g_next;
		mchan *c = mb->c;
		if (chan_expire(l, m, c, now) > 0) {
			/* c left every group, this one included */
			chan_release(m, c);
			continue;
		}
		if (member_expired(l, mb, now)) {
			member_remove(m, mb);
			chan_release(m, c);
			group_expired++;
			continue;
		}
		if (c->qlen >= hr_layer__capacity(l, c->key.name, c->key.len)) {
			res->full++;
			continue;
		}
		if (chan_push(c, msg, exp) != 0) {
			rv = HR_ENOMEM; /* the others still get it */
			continue;
		}
		res->delivered++;
	}
	g->pins--;
	group_release(m, g);
	if (group_expired > 0)
		hr_layer__count_group_expired(l, group_expired);
	if (res->full > 0)
		hr_layer__count_full(l, res->full);
out:
	pthread_mutex_unlock(&m->mu);
	return rv;
}

static int
mem_flush(hr_layer *l)
{
	mem *m = l->_be;
	if (lock_open(m) != 0) {
		pthread_mutex_unlock(&m->mu);
		return HR_ECLOSED;
	}
	groups_free(m);
	/* Channels with blocked receivers stay (empty) so that the receivers
	 * still hear of later sends; every other channel goes. */
	hr_map_iter it;
	hr_map_entry *e;
	hr_map_iter_init(&it, &m->chans);
	while ((e = hr_map_next(&it)) != NULL) {
		mchan *c = e->val.ptr;
		c->members = NULL;
		while (c->qlen > 0)
			hr_msg_unref(chan_pop(c));
		if (c->waiters > 0)
			continue;
		hr_map_delete(&m->chans, e);
		chan_free(c);
	}
	pthread_mutex_unlock(&m->mu);
	return 0;
}

unsigned
hr_layer__memory_waiters(hr_layer *l)
{
	HR_ASSERT(l->_ops == &hr_layer_memory_ops);
	mem *m = l->_be;
	pthread_mutex_lock(&m->mu);
	unsigned n = m->waiters;
	pthread_mutex_unlock(&m->mu);
	return n;
}

const hr_layer_ops hr_layer_memory_ops = {
	.name = "memory",
	.create = mem_create,
	.destroy = mem_destroy,
	.send = mem_send,
	.receive = mem_receive,
	.new_channel = mem_new_channel,
	.group_add = mem_group_add,
	.group_discard = mem_group_discard,
	.group_send = mem_group_send,
	.flush = mem_flush,
};
