/*
 * redis_bridge.c: the Redis bridge (bridge.h): an actor that owns this
 * node's memberships in Redis and federates local sends, and a drain thread
 * that pops the node's process key and hands what it finds to the router.
 *
 * Why local group_sends are fanned out by the router first and then sent to
 * Redis "except" this node's own membership: local clients get the message
 * with no Redis round trip in the way (federation adds nothing to local
 * latency), a group_send made after a local client's 101 reaches it however
 * slow Redis is (router FIFO), and Redis still sees one member per node.
 *
 * Up/down: `up` is cleared by whichever thread sees HR_EIO and set again only
 * by the drain thread, when a pop answers; on that edge it posts RESYNC, and
 * the actor re-registers every membership (and discards those that left
 * meanwhile). While down the actor never calls Redis, so a dead host cannot
 * stall its mailbox behind connect timeouts.
 *
 * Sentinel: with redis+sentinel:// hosts the layer finds the master itself
 * and asks again after a lost connection; a third thread, the follower,
 * also waits on the sentinels' +switch-master (hr_layer_redis_follow) so
 * that a master that moved while its connections stayed open is left at
 * once, and posts RESYNC to register the memberships on the new one.
 *
 * Threads: actor state (`groups` writes, `gone`) ONLY on the actor thread;
 * `groups` is also read by the drain thread to resolve hashed member names,
 * under `mu`. Counters are atomics.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "actors/actor_impl.h"
#include "core/clock.h"
#include "actors/bridge.h"
#include "actors/bridge_hist_int.h"

#define BRIDGE_MAILBOX 8192
#define BRIDGE_BATCH_MAX 1000
#define BRIDGE_POP_MS 250
#define BRIDGE_BACKOFF_MIN_MS 100
#define BRIDGE_BACKOFF_MAX_MS 1000
#define BRIDGE_ROUTER_TIMEOUT_MS 1000
#define BRIDGE_HOOK_TIMEOUT_MS 1000

enum {
	B_JOIN = HR_MAIL_USER, /* p1 = char * group */
	B_LEAVE,               /* p1 = char * group */
	B_GROUP_SEND,          /* p1 = char * group, p2 = hr_msg * */
	B_SEND,                /* p1 = bsend * */
	B_RESYNC,
	B_REFRESH,
};

typedef struct bsend {
	hr_msg *msg;
	hr_reply_fn reply;
	void *reply_arg;
	char channel[];
} bsend;

/* One group this node is a member of, by its local members. */
typedef struct bgroup {
	struct bgroup *next;      /* other groups whose names have the same hash */
	uint64_t hash;            /* FNV-1a of the group name: its key in `groups` */
	char member[HR_NAME_MAX]; /* the channel registered in Redis */
	/* With history: member is the group's shared history member. */
	const hr_bridge_history_rule *rule;
	char name[];
} bgroup;

/* Groups left while Redis was down: discarded when it comes back. */
typedef struct bgone {
	struct bgone *next;
	char member[HR_NAME_MAX];
	char name[];
} bgone;

struct hr_bridge {
	hr_layer *rl;
	hr_router *router;
	hr_actor *actor;
	hr_sys_thread drain;
	hr_sys_thread follow; /* started only with sentinel hosts */
	size_t batch;
	double refresh_s;
	void (*log)(int level, const char *line);
	char pkey[64]; /* "specific.<client_prefix>!" */
	size_t pklen;
	atomic_bool up;
	atomic_bool stopping;
	atomic_bool kick; /* the follower saw the master move: end the backoff */
	pthread_mutex_t mu;
	bool mu_ready;
	/* {mu} for the drain's reads; written by the actor: each group name's
	 * FNV-1a -> its bgroup, the head of a list of the groups with that hash
	 * (the drain finds a hashed member's group by the hash alone). */
	hr_map groups;
	size_t n_groups; /* {mu} */
	bgone *gone;     /* actor thread only */
	atomic_uint_fast64_t st_in, st_out, st_fed_fail, st_send_fail, st_stale, st_reconnects;
	const hr_bridge_history_rule *hist; /* opts.history */
	size_t n_hist;
	hr_bridge_hist *histt; /* the history thread, with rules */
};

static void blog(hr_bridge *b, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
blog(hr_bridge *b, int level, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (b->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	b->log(level, line);
}

static void
bgroups_free(void *head)
{
	for (bgroup *g = head, *next; g != NULL; g = next) {
		next = g->next;
		free(g);
	}
}

static const hr_map_type groups_type = { .kind = HR_MAP_INT, .val_free = bgroups_free };

/* The hash in "h.<16 hex>" member names: FNV-1a, as Redis already holds. */
static uint64_t
name_hash(const char *s)
{
	return hr_hash_bytes(0, s, strlen(s));
}

int
hr_bridge_member_name(hr_bridge *b, const char *group, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%sg.%s", b->pkey, group);
	if (n > 0 && (size_t)n < outlen && (size_t)n < HR_NAME_MAX)
		return 0;
	/* Too long for a channel name (< 100): name it by its hash. */
	n = snprintf(out, outlen, "%sh.%016llx", b->pkey, (unsigned long long)name_hash(group));
	return n > 0 && (size_t)n < outlen ? 0 : HR_EMSGSIZE;
}

const hr_bridge_history_rule *
hr_bridge_history_rule_for(const hr_bridge *b, const char *group)
{
	return hr_bridge__hist_rule(b->hist, b->n_hist, group);
}

const char *
hr_bridge_process_key(const hr_bridge *b)
{
	return b->pkey;
}

bool
hr_bridge_up(const hr_bridge *b)
{
	return atomic_load(&b->up);
}

/* ---------------------------------------------------------------- group table */

static bgroup *
tab_find(hr_bridge *b, const char *name, uint64_t h)
{
	hr_map_entry *e = hr_map_find_int(&b->groups, h);
	for (bgroup *g = e != NULL ? e->val.ptr : NULL; g != NULL; g = g->next)
		if (strcmp(g->name, name) == 0)
			return g;
	return NULL;
}

/* Actor thread. */
static int
tab_add(hr_bridge *b, const char *name, bgroup **out)
{
	uint64_t h = name_hash(name);
	hr_map_entry *e;
	bgroup *g;
	int rv = 0;

	pthread_mutex_lock(&b->mu);
	if ((g = tab_find(b, name, h)) != NULL)
		goto out;
	size_t len = strlen(name);
	if ((g = malloc(sizeof(*g) + len + 1)) == NULL) {
		rv = HR_ENOMEM;
		goto out;
	}
	memcpy(g->name, name, len + 1);
	g->hash = h;
	g->rule = hr_bridge_history_rule_for(b, name);
	if ((rv = g->rule != NULL
	            ? hr_layer_history_member(b->rl, name, g->member, sizeof(g->member))
	            : hr_bridge_member_name(b, name, g->member, sizeof(g->member)))
	        != 0
	    || (rv = hr_map_put_int(&b->groups, h, &e, NULL)) != 0) {
		free(g);
		g = NULL;
		goto out;
	}
	g->next = e->val.ptr;
	e->val.ptr = g;
	b->n_groups++;
out:
	pthread_mutex_unlock(&b->mu);
	*out = g;
	return rv;
}

/* Actor thread: unlink name's entry; the caller frees it. */
static bgroup *
tab_del(hr_bridge *b, const char *name)
{
	uint64_t h = name_hash(name);
	bgroup *g, *prev = NULL;

	pthread_mutex_lock(&b->mu);
	hr_map_entry *e = hr_map_find_int(&b->groups, h);
	for (g = e != NULL ? e->val.ptr : NULL; g != NULL; prev = g, g = g->next)
		if (strcmp(g->name, name) == 0)
			break;
	if (g != NULL) {
		if (prev != NULL)
			prev->next = g->next;
		else if (g->next != NULL)
			e->val.ptr = g->next;
		else
			hr_map_delete(&b->groups, e);
		b->n_groups--;
	}
	pthread_mutex_unlock(&b->mu);
	return g;
}

/* Drain thread: the group whose hashed member suffix is hex (16 chars). */
static bool
tab_lookup_hashed(hr_bridge *b, const char *hex, char *out, size_t outlen)
{
	char *end;
	unsigned long long h = strtoull(hex, &end, 16);
	bool found = false;

	if (end != hex + 16 || *end != '\0')
		return false;
	pthread_mutex_lock(&b->mu);
	hr_map_entry *e = hr_map_find_int(&b->groups, h);
	for (bgroup *g = e != NULL ? e->val.ptr : NULL; g != NULL; g = g->next) {
		if (strlen(g->name) < outlen) {
			memcpy(out, g->name, strlen(g->name) + 1);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return found;
}

/* ---------------------------------------------------------------- actor */

static void
mark_down(hr_bridge *b, int rv, const char *what)
{
	if (atomic_exchange(&b->up, false))
		blog(b, 1, "redis down (%s: %s); local delivery goes on", what, hr_strerror(rv));
}

static void
gone_add(hr_bridge *b, const bgroup *g)
{
	size_t len = strlen(g->name);
	bgone *x = malloc(sizeof(*x) + len + 1);
	if (x == NULL)
		return; /* the membership expires by itself after group_expiry */
	memcpy(x->member, g->member, sizeof(x->member));
	memcpy(x->name, g->name, len + 1);
	x->next = b->gone;
	b->gone = x;
}

static void
gone_drop(hr_bridge *b, const char *name)
{
	for (bgone **p = &b->gone; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			bgone *x = *p;
			*p = x->next;
			free(x);
			return;
		}
	}
}

/* Register g in Redis: the shared history member and the group's history
 * settings, or this node's own membership. */
static int
g_register(hr_bridge *b, const bgroup *g)
{
	if (g->rule != NULL)
		return hr_layer_history_register(b->rl, g->name, g->rule->size, g->rule->ttl);
	return hr_layer_group_add(b->rl, g->name, g->member);
}

static void
on_join(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	const char *name = mail->p1;
	bgroup *g;
	int rv;

	if (tab_add(b, name, &g) != 0) {
		blog(b, 1, "redis: cannot track group %s: out of memory", name);
	} else {
		gone_drop(b, name);
		if (atomic_load(&b->up) && (rv = g_register(b, g)) != 0)
			mark_down(b, rv, "group_add");
	}
	free(mail->p1);
}

static void
on_leave(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	bgroup *g = tab_del(b, mail->p1);
	int rv;

	if (g != NULL && g->rule != NULL) {
		free(g); /* the shared member stays: other nodes may serve the group */
	} else if (g != NULL) {
		if (!atomic_load(&b->up))
			gone_add(b, g);
		else if ((rv = hr_layer_group_discard(b->rl, g->name, g->member)) != 0) {
			mark_down(b, rv, "group_discard");
			gone_add(b, g);
		}
		free(g);
	}
	free(mail->p1);
}

static void
on_group_send(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	const char *name = mail->p1;
	hr_msg *msg = mail->p2;
	char member[HR_NAME_MAX + 32];
	int rv = HR_EIO;

	if (atomic_load(&b->up) && hr_bridge_member_name(b, name, member, sizeof(member)) == 0) {
		rv = hr_layer_group_send_except(b->rl, name, msg, member, NULL);
		if (rv == HR_EIO)
			mark_down(b, rv, "group_send");
	}
	if (rv == 0)
		atomic_fetch_add(&b->st_out, 1);
	else
		atomic_fetch_add(&b->st_fed_fail, 1);
	hr_msg_unref(msg);
	free(mail->p1);
}

static void
on_send(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	bsend *s = mail->p1;
	int rv = HR_EIO;

	if (atomic_load(&b->up)) {
		rv = hr_layer_send(b->rl, s->channel, s->msg);
		if (rv == HR_EIO)
			mark_down(b, rv, "send");
	}
	if (rv == 0)
		atomic_fetch_add(&b->st_out, 1);
	else if (rv == HR_EIO)
		atomic_fetch_add(&b->st_send_fail, 1);
	if (s->reply != NULL)
		s->reply(s->reply_arg, rv);
	hr_msg_unref(s->msg);
	free(s);
}

/* Register every membership again (and drop those that left while down). */
static void
register_all(hr_bridge *b)
{
	int rv;

	while (b->gone != NULL && atomic_load(&b->up)) {
		bgone *x = b->gone;
		if ((rv = hr_layer_group_discard(b->rl, x->name, x->member)) != 0) {
			mark_down(b, rv, "group_discard");
			return;
		}
		b->gone = x->next;
		free(x);
	}
	/* The table only changes on this thread: no lock needed to walk it. */
	hr_map_iter it;
	hr_map_entry *e;
	hr_map_iter_init(&it, &b->groups);
	while ((e = hr_map_next(&it)) != NULL && atomic_load(&b->up)) {
		for (bgroup *g = e->val.ptr; g != NULL; g = g->next) {
			if ((rv = g_register(b, g)) != 0) {
				mark_down(b, rv, "group_add");
				return;
			}
		}
	}
}

static void
on_resync(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	if (atomic_load(&b->up)) {
		register_all(b);
		if (atomic_load(&b->up))
			blog(b, 2, "redis: %zu memberships registered", b->n_groups);
	}
}

static void
on_refresh(hr_actor *self, void *state, hr_mail *mail)
{
	hr_bridge *b = state;
	if (atomic_load(&b->up))
		register_all(b);
}

/* Shutdown: this node's memberships leave Redis. */
static void
bridge_on_stop(hr_actor *self, void *state)
{
	hr_bridge *b = state;
	size_t n = 0;
	hr_map_iter it;
	hr_map_entry *e;

	hr_map_iter_init(&it, &b->groups);
	while ((e = hr_map_next(&it)) != NULL) {
		for (bgroup *g = e->val.ptr; g != NULL; g = g->next) {
			if (atomic_load(&b->up) && g->rule == NULL) {
				int rv = hr_layer_group_discard(b->rl, g->name, g->member);
				if (rv != 0)
					mark_down(b, rv, "group_discard");
				else
					n++;
			}
		}
	}
	while (b->gone != NULL) {
		bgone *x = b->gone;
		if (atomic_load(&b->up) && hr_layer_group_discard(b->rl, x->name, x->member) == 0)
			n++;
		b->gone = x->next;
		free(x);
	}
	if (n > 0)
		blog(b, 2, "redis: %zu memberships removed", n);
}

static void
bridge_drop(void *arg, hr_mail *mail)
{
	switch (mail->kind) {
	case B_JOIN:
	case B_LEAVE:
		free(mail->p1);
		break;
	case B_GROUP_SEND:
		free(mail->p1);
		hr_msg_unref(mail->p2);
		break;
	case B_SEND: {
		bsend *s = mail->p1;
		if (s->reply != NULL)
			s->reply(s->reply_arg, HR_ECANCELED);
		hr_msg_unref(s->msg);
		free(s);
		break;
	}
	default:
		break;
	}
}

static const hr_actor_fn bridge_handlers[] = {
	[B_JOIN - HR_MAIL_USER] = on_join,
	[B_LEAVE - HR_MAIL_USER] = on_leave,
	[B_GROUP_SEND - HR_MAIL_USER] = on_group_send,
	[B_SEND - HR_MAIL_USER] = on_send,
	[B_RESYNC - HR_MAIL_USER] = on_resync,
	[B_REFRESH - HR_MAIL_USER] = on_refresh,
};

/* ---------------------------------------------------------------- router hooks */

static void
post_name(hr_bridge *b, uint32_t kind, const char *name, hr_msg *msg, int timeout_ms)
{
	size_t len = strlen(name);
	char *copy = malloc(len + 1);
	if (copy == NULL)
		goto fail;
	memcpy(copy, name, len + 1);
	hr_mail m = { .kind = kind, .p1 = copy, .p2 = msg ? hr_msg_ref(msg) : NULL };
	if (hr_actor_send(b->actor, &m, timeout_ms) == 0)
		return;
	free(copy);
	hr_msg_unref(msg);
fail:
	if (kind == B_GROUP_SEND)
		atomic_fetch_add(&b->st_fed_fail, 1);
	else
		blog(b, 1, "redis bridge busy: %s of group %s lost",
		    kind == B_JOIN ? "join" : "leave", name);
}

static void
hook_joined(void *arg, const char *group)
{
	post_name(arg, B_JOIN, group, NULL, BRIDGE_HOOK_TIMEOUT_MS);
}

static void
hook_left(void *arg, const char *group)
{
	post_name(arg, B_LEAVE, group, NULL, BRIDGE_HOOK_TIMEOUT_MS);
}

static void
hook_sent(void *arg, const char *group, hr_msg *event)
{
	/* The router must not stall behind Redis: a short wait, then count. */
	post_name(arg, B_GROUP_SEND, group, event, 5);
}

/* The router's question (history.h): can a history group_send be numbered? */
static bool
bridge_is_up(void *arg)
{
	return hr_bridge_up(arg);
}

int
hr_bridge_send(hr_bridge *b, const char *channel, hr_msg *msg, hr_reply_fn reply, void *reply_arg,
    int timeout_ms)
{
	size_t len;
	bsend *s;
	int rv;

	if (b == NULL || channel == NULL || msg == NULL)
		return HR_EINVAL;
	len = strnlen(channel, HR_NAME_MAX + 1);
	if (len > HR_NAME_MAX)
		len = HR_NAME_MAX; /* the layer refuses it as a bad name */
	if ((s = malloc(sizeof(*s) + len + 1)) == NULL)
		return HR_ENOMEM;
	memcpy(s->channel, channel, len);
	s->channel[len] = '\0';
	s->msg = hr_msg_ref(msg);
	s->reply = reply;
	s->reply_arg = reply_arg;
	hr_mail m = { .kind = B_SEND, .p1 = s };
	if ((rv = hr_actor_send(b->actor, &m, timeout_ms)) != 0) {
		hr_msg_unref(s->msg);
		free(s);
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- drain thread */

static void
count_stale(void *arg, int status)
{
	hr_bridge *b = arg;
	if (status == HR_ENOENT)
		atomic_fetch_add(&b->st_stale, 1);
}

static void
deliver(hr_bridge *b, hr_layer_item *it)
{
	char group[HR_NAME_MAX + 1];

	for (size_t k = 0; k < it->targets.n; k++) {
		const char *t = it->targets.names[k];
		int rv;
		if (strncmp(t, b->pkey, b->pklen) != 0) {
			atomic_fetch_add(&b->st_stale, 1); /* not ours: the layer checks it */
			continue;
		}
		const char *suffix = t + b->pklen;
		if (strncmp(suffix, "g.", 2) == 0) {
			rv = hr_router_group_send_local(
			    b->router, suffix + 2, it->msg, NULL, NULL, BRIDGE_ROUTER_TIMEOUT_MS);
		} else if (strncmp(suffix, "h.", 2) == 0) {
			if (!tab_lookup_hashed(b, suffix + 2, group, sizeof(group))) {
				atomic_fetch_add(&b->st_stale, 1);
				continue;
			}
			rv = hr_router_group_send_local(
			    b->router, group, it->msg, NULL, NULL, BRIDGE_ROUTER_TIMEOUT_MS);
		} else {
			rv = hr_router_send(
			    b->router, t, it->msg, count_stale, b, BRIDGE_ROUTER_TIMEOUT_MS);
		}
		if (rv != 0)
			atomic_fetch_add(&b->st_stale, 1);
	}
}

static void
post_simple(hr_bridge *b, uint32_t kind)
{
	hr_mail m = { .kind = kind };
	(void)hr_actor_send(b->actor, &m, BRIDGE_HOOK_TIMEOUT_MS);
}

static void *
drain_main(void *arg)
{
	hr_bridge *b = arg;
	hr_layer_item *items = calloc(b->batch, sizeof(*items));
	uint64_t rng = (uint64_t)(hr_clock_mono() * 1e9) | 1;
	int backoff = BRIDGE_BACKOFF_MIN_MS;
	double next_refresh = hr_clock_mono() + b->refresh_s;

	if (items == NULL) {
		blog(b, 1, "redis drain: out of memory");
		return NULL;
	}
	while (!atomic_load(&b->stopping)) {
		size_t n = 0;
		int rv = hr_layer_receive_batch(b->rl, b->pkey, BRIDGE_POP_MS, items, b->batch, &n);
		if (rv == HR_ECLOSED)
			break;
		if (rv == HR_EIO) {
			mark_down(b, rv, "receive");
			/* decorrelated jitter: uniform in [min, 3 x last], capped */
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			int hi = backoff * 3;
			backoff = BRIDGE_BACKOFF_MIN_MS
			    + (int)(rng % (uint64_t)(hi - BRIDGE_BACKOFF_MIN_MS + 1));
			if (backoff > BRIDGE_BACKOFF_MAX_MS)
				backoff = BRIDGE_BACKOFF_MAX_MS;
			for (int slept = 0; slept < backoff && !atomic_load(&b->stopping)
			     && !atomic_exchange(&b->kick, false);
			     slept += 50)
				hr_sys__sleep_ms(50);
			continue;
		}
		backoff = BRIDGE_BACKOFF_MIN_MS;
		/* Redis answered (a message, or an empty wait). */
		if (!atomic_load(&b->up)) {
			atomic_store(&b->up, true);
			atomic_fetch_add(&b->st_reconnects, 1);
			blog(b, 2, "redis up again; registering memberships");
			post_simple(b, B_RESYNC);
		}
		if (rv == 0) {
			atomic_fetch_add(&b->st_in, n);
			hr_mailbox_batch_begin(); /* one router message per batch */
			for (size_t i = 0; i < n; i++)
				deliver(b, &items[i]);
			hr_mailbox_batch_end();
			hr_layer_items_release(items, n);
		}
		if (hr_clock_mono() >= next_refresh) {
			next_refresh = hr_clock_mono() + b->refresh_s;
			post_simple(b, B_REFRESH);
		}
	}
	free(items);
	return NULL;
}

/* ---------------------------------------------------------------- follower thread */

static void *
follow_main(void *arg)
{
	hr_bridge *b = arg;

	while (!atomic_load(&b->stopping)) {
		bool moved = false;
		int rv = hr_layer_redis_follow(b->rl, BRIDGE_POP_MS, &moved);
		if (rv == HR_ENOTSUP || rv == HR_ECLOSED)
			break;
		if (moved) {
			blog(b, 2, "redis: the sentinels switched the master; following it");
			atomic_store(&b->kick, true);
			post_simple(b, B_RESYNC);
		}
		/* HR_EIO (a shard with no sentinel subscribed) still waited, and
		 * the layer subscribes again at most once a second; anything
		 * else (out of memory) returned at once: pause. */
		for (int slept = 0; rv != 0 && rv != HR_EIO && slept < BRIDGE_BACKOFF_MAX_MS
		     && !atomic_load(&b->stopping);
		     slept += 50)
			hr_sys__sleep_ms(50);
	}
	return NULL;
}

/* ---------------------------------------------------------------- public */

static void
bridge_free(hr_bridge *b)
{
	hr_bridge__hist_free(b->histt);
	hr_map_fini(&b->groups); /* groups_type frees each list */
	while (b->gone != NULL) {
		bgone *x = b->gone;
		b->gone = x->next;
		free(x);
	}
	if (b->mu_ready)
		pthread_mutex_destroy(&b->mu);
	free(b);
}

int
hr_bridge_create(hr_bridge **out, const hr_bridge_opts *opts)
{
	char cp[33];
	hr_bridge *b;
	hr_layer_item probe[1];
	size_t n = 0;
	int rv;

	if (out == NULL || opts == NULL || opts->redis == NULL || opts->router == NULL)
		return HR_EINVAL;
	if ((rv = hr_layer_client_prefix(opts->redis, cp, sizeof(cp))) != 0)
		return rv;
	for (size_t i = 0; opts->history != NULL && i < opts->n_history; i++)
		if (opts->history[i].glob == NULL || opts->history[i].size == 0
		    || !(opts->history[i].ttl >= 1) || opts->history[i].ttl > 1e9)
			return HR_EINVAL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return HR_ENOMEM;
	hr_map_init(&b->groups, &groups_type, 0);
	b->rl = opts->redis;
	b->router = opts->router;
	b->log = opts->log;
	b->hist = opts->history;
	b->n_hist = opts->history != NULL ? opts->n_history : 0;
	b->batch = opts->batch ? opts->batch : 100;
	if (b->batch > BRIDGE_BATCH_MAX)
		b->batch = BRIDGE_BATCH_MAX;
	b->refresh_s = opts->group_expiry > 0 ? opts->group_expiry / 3 : 3600;
	if (b->refresh_s > 3600)
		b->refresh_s = 3600;
	if (b->refresh_s < 1)
		b->refresh_s = 1;
	b->pklen = (size_t)snprintf(b->pkey, sizeof(b->pkey), "specific.%s!", cp);
	atomic_init(&b->up, true);
	atomic_init(&b->stopping, false);
	atomic_init(&b->kick, false);
	atomic_init(&b->st_in, 0);
	atomic_init(&b->st_out, 0);
	atomic_init(&b->st_fed_fail, 0);
	atomic_init(&b->st_send_fail, 0);
	atomic_init(&b->st_stale, 0);
	atomic_init(&b->st_reconnects, 0);
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		rv = HR_ENOMEM;
		goto fail;
	}
	b->mu_ready = true;

	/* Redis must answer now: a node that cannot reach it does not start. */
	rv = hr_layer_receive_batch(b->rl, b->pkey, 0, probe, 1, &n);
	if (rv == 0) {
		hr_layer_items_release(probe, n); /* a fresh key: nothing is there */
	} else if (rv != HR_EAGAIN) {
		rv = rv == HR_ENOMEM ? rv : HR_EIO;
		goto fail;
	}

	hr_actor_spec spec = {
		.name = "herald-redis",
		.mailbox_capacity = BRIDGE_MAILBOX,
		.state = b,
		.handlers = bridge_handlers,
		.n_handlers = sizeof(bridge_handlers) / sizeof(bridge_handlers[0]),
		.on_stop = bridge_on_stop,
		.drop = bridge_drop,
	};
	if ((rv = hr_actor_spawn(&b->actor, &spec)) != 0)
		goto fail;
	if (b->n_hist > 0
	    && hr_bridge__hist_start(&b->histt, b->rl, b->router, b->batch, b->hist, b->n_hist,
	           opts->on_event, opts->on_event_arg, b->log)
	        != 0)
		blog(b, 1, "redis: cannot start the history thread");
	/* Resumes the router's ring cannot answer are answered from Redis
	 * (docs/RECOVERY.md, "Resume on any node"). */
	if (b->histt != NULL
	    && hr_router_set_history_fill(b->router, hr_bridge__hist_fill_request, b->histt,
	           bridge_is_up, b, BRIDGE_HOOK_TIMEOUT_MS)
	        != 0)
		blog(b, 1, "redis: resumes will be answered from this node's history only");
	hr_router_hooks hooks = {
		.arg = b,
		.group_joined = hook_joined,
		.group_left = hook_left,
		.group_sent = hook_sent,
	};
	if ((rv = hr_router_set_hooks(b->router, &hooks, BRIDGE_HOOK_TIMEOUT_MS)) != 0)
		goto fail_actor;
	/* Sentinel hosts (the first call also subscribes): follow them. */
	rv = hr_layer_redis_follow(b->rl, 0, NULL);
	if (rv != HR_ENOTSUP
	    && hr_sys__thread_start(&b->follow, "herald-sentinel", follow_main, b) != 0)
		blog(b, 1,
		    "redis: cannot start the sentinel thread; following lost connections only");
	if ((rv = hr_sys__thread_start(&b->drain, "herald-drain", drain_main, b)) != 0) {
		/* The router holds the hooks now: keep the actor until it is gone. */
		blog(b, 1, "redis: cannot start the drain thread");
		*out = b;
		return 0;
	}
	*out = b;
	return 0;
fail_actor:
	hr_actor_join(b->actor);
fail:
	bridge_free(b);
	return rv;
}

void
hr_bridge_stop(hr_bridge *b)
{
	if (b == NULL)
		return;
	atomic_store(&b->stopping, true);
	hr_bridge__hist_stop(b->histt);
	hr_sys__thread_join(&b->drain);
	hr_sys__thread_join(&b->follow);
}

void
hr_bridge_destroy(hr_bridge *b)
{
	if (b == NULL)
		return;
	hr_bridge_stop(b);
	hr_actor_join(b->actor); /* handles what is queued, then on_stop */
	bridge_free(b);
}

void
hr_bridge_get_stats(const hr_bridge *b, hr_bridge_stats *out)
{
	hr_bridge *m = (hr_bridge *)b;
	out->in = atomic_load(&m->st_in);
	out->out = atomic_load(&m->st_out);
	out->fed_failures = atomic_load(&m->st_fed_fail);
	out->send_failures = atomic_load(&m->st_send_fail);
	out->stale = atomic_load(&m->st_stale);
	pthread_mutex_lock(&m->mu);
	out->memberships = m->n_groups;
	pthread_mutex_unlock(&m->mu);
	out->reconnects = atomic_load(&m->st_reconnects);
	uint64_t lost;
	hr_bridge__hist_stats(m->histt, &out->sequenced, &out->hist_events, &lost);
	out->stale += lost;
}
