/*
 * router_members.c: the router's membership records (router_members.h): who
 * is a local member of which group, and which connection answers to which
 * channel. The handlers in router.c read and change them; everything here
 * runs ONLY on the router's actor thread.
 *
 * Local members are WebSocket connections, each owned by one I/O thread and
 * served by one consumer actor. A group maps to its local members split into
 * buckets, one per (consumer, I/O thread) that has members there; a bucket is
 * a dense array of connection ids plus an index (id -> position) so that add
 * and discard are O(1) (swap-remove). Each connection has a record (keyed by
 * hr_member) listing the groups it joined and its channel name, so
 * conn_close discards them all without scanning groups; channel names map to
 * those records for send.
 *
 * A bucket caches an immutable snapshot of its ids (hr_idlist), the list a
 * fan-out carries: it is rebuilt only when the bucket changed since the last
 * send (add and discard mark it dirty), otherwise the same list gets one more
 * reference. Snapshots are never mutated after they are handed out, so
 * consumers and I/O threads read them without locks.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/router_int.h"
#include "actors/router_members.h"

static uint64_t
member_k2(hr_member m)
{
	return ((uint64_t)m.thread << 16) | m.consumer;
}

static void
group_free(void *p)
{
	group *g = p;
	for (uint32_t i = 0; i < g->nb; i++) {
		free(g->b[i].ids);
		hr_map_fini(&g->b[i].pos);
		hr_idlist_unref(g->b[i].snap);
	}
	free(g->b);
	free(g);
}

static void
conn_free(void *p)
{
	conn *c = p;
	free(c->groups);
	free(c);
}

static const hr_map_type groups_type
    = { .kind = HR_MAP_STR, .copy_keys = true, .val_free = group_free };
static const hr_map_type channels_type = { .kind = HR_MAP_STR, .copy_keys = true };
static const hr_map_type conns_type = { .kind = HR_MAP_INT2, .val_free = conn_free };
static const hr_map_type pos_type = { .kind = HR_MAP_INT };

/* The value stored under name (len bytes) in m, or NULL. */
static void *
name_get_len(const hr_map *m, const char *name, size_t len)
{
	hr_map_entry *e = hr_map_find_str(m, name, len);
	return e != NULL ? e->val.ptr : NULL;
}

static void *
name_get(const hr_map *m, const char *name)
{
	return name_get_len(m, name, strlen(name));
}

/* Insert or overwrite name -> val; *keyp (may be NULL) gets the map's copy of
 * the name, stable until it is deleted. 0 or HR_ENOMEM (nothing changed). */
static int
name_put(hr_map *m, const char *name, void *val, const char **keyp)
{
	hr_map_entry *e;
	int rv = hr_map_put_str(m, name, strlen(name), &e, NULL);
	if (rv != 0)
		return rv;
	e->val.ptr = val;
	if (keyp != NULL)
		*keyp = e->str;
	return 0;
}

static void
name_del(hr_map *m, const char *name)
{
	(void)hr_map_del_str(m, name, strlen(name));
}

void
hr_router__members_init(hr_router *r)
{
	hr_map_init(&r->groups, &groups_type, 0);
	hr_map_init(&r->channels, &channels_type, 0);
	hr_map_init(&r->conns, &conns_type, 0);
}

void
hr_router__members_fini(hr_router *r)
{
	hr_map_fini(&r->groups);   /* frees each group */
	hr_map_fini(&r->channels); /* the conns own their records */
	hr_map_fini(&r->conns);    /* frees each conn */
}

group *
hr_router__group_get(hr_router *r, const char *name, size_t len)
{
	return name_get_len(&r->groups, name, len);
}

conn *
hr_router__channel_get(hr_router *r, const char *name, size_t len)
{
	return name_get_len(&r->channels, name, len);
}

group *
hr_router__group_new(hr_router *r, const char *name)
{
	group *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	if (name_put(&r->groups, name, g, &g->name) != 0) {
		free(g);
		return NULL;
	}
	atomic_fetch_add(&r->st_groups, 1);
	return g;
}

static bool
group_empty(const group *g)
{
	for (uint32_t i = 0; i < g->nb; i++)
		if (g->b[i].n > 0)
			return false;
	return true;
}

static void
group_drop(hr_router *r, group *g)
{
	name_del(&r->groups, g->name);
	group_free(g);
	atomic_fetch_sub(&r->st_groups, 1);
}

bool
hr_router__group_drop_if_empty(hr_router *r, group *g)
{
	if (!group_empty(g))
		return false;
	group_drop(r, g);
	return true;
}

conn *
hr_router__conn_get(hr_router *r, hr_member m, bool create)
{
	hr_map_entry *e = hr_map_find_int2(&r->conns, m.conn, member_k2(m));
	conn *c;
	if (e != NULL)
		return e->val.ptr;
	if (!create || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->m = m;
	c->rec = (m.flags & HR_MEMBER_RECOVER) != 0;
	if (hr_map_put_int2(&r->conns, m.conn, member_k2(m), &e, NULL) != 0) {
		free(c);
		return NULL;
	}
	e->val.ptr = c;
	return c;
}

void
hr_router__conn_maybe_free(hr_router *r, conn *c)
{
	if (c->n > 0 || c->channel != NULL)
		return;
	(void)hr_map_del_int2(&r->conns, c->m.conn, member_k2(c->m));
	conn_free(c);
}

/* A full array of *cap elements of size bytes, doubled (first when it has
 * none): the new array with *cap updated, or NULL with nothing changed. */
static void *
grow(void *p, uint32_t *cap, uint32_t first, size_t size)
{
	uint32_t ncap = *cap ? *cap * 2 : first;
	void *np = realloc(p, ncap * size);
	if (np != NULL)
		*cap = ncap;
	return np;
}

static bucket *
bucket_get(group *g, uint16_t consumer, uint16_t thread, bool rec, bool create)
{
	for (uint32_t i = 0; i < g->nb; i++)
		if (g->b[i].consumer == consumer && g->b[i].thread == thread && g->b[i].rec == rec)
			return &g->b[i];
	if (!create)
		return NULL;
	if (g->nb == g->capb) {
		bucket *nb = grow(g->b, &g->capb, 2, sizeof(*nb));
		if (nb == NULL)
			return NULL;
		g->b = nb;
	}
	bucket *b = &g->b[g->nb++];
	*b = (bucket) { .consumer = consumer, .thread = thread, .rec = rec, .dirty = true };
	hr_map_init(&b->pos, &pos_type, 0);
	return b;
}

int
hr_router__member_add(hr_router *r, group *g, conn *c)
{
	bucket *b = bucket_get(g, c->m.consumer, c->m.thread, c->rec, true);
	if (b == NULL)
		return HR_ENOMEM;
	if (hr_map_find_int(&b->pos, c->m.conn) != NULL)
		return 0; /* already a member */
	if (b->n == b->cap) {
		uint64_t *ni = grow(b->ids, &b->cap, 4, sizeof(*ni));
		if (ni == NULL)
			return HR_ENOMEM;
		b->ids = ni;
	}
	if (c->n == c->cap) {
		group **ng = grow(c->groups, &c->cap, 2, sizeof(*ng));
		if (ng == NULL)
			return HR_ENOMEM;
		c->groups = ng;
	}
	hr_map_entry *e;
	if (hr_map_put_int(&b->pos, c->m.conn, &e, NULL) != 0)
		return HR_ENOMEM;
	e->val.u64 = b->n;
	b->ids[b->n++] = c->m.conn;
	b->dirty = true;
	c->groups[c->n++] = g;
	atomic_fetch_add(&r->st_members, 1);
	return 0;
}

/* Remove c from g (and g from c's list when `unlink_conn`); frees an emptied
 * group. */
static void
member_del(hr_router *r, group *g, conn *c, bool unlink_conn)
{
	bucket *b = bucket_get(g, c->m.consumer, c->m.thread, c->rec, false);
	hr_map_entry *e;

	if (b == NULL || (e = hr_map_find_int(&b->pos, c->m.conn)) == NULL)
		return;
	uint32_t at = (uint32_t)e->val.u64;
	hr_map_delete(&b->pos, e);
	if (at != b->n - 1) {
		b->ids[at] = b->ids[b->n - 1];
		e = hr_map_find_int(&b->pos, b->ids[at]); /* a member: present */
		HR_ASSERT(e != NULL);
		e->val.u64 = at;
	}
	b->n--;
	b->dirty = true;
	atomic_fetch_sub(&r->st_members, 1);
	if (unlink_conn) {
		for (uint32_t i = 0; i < c->n; i++) {
			if (c->groups[i] == g) {
				c->groups[i] = c->groups[--c->n];
				break;
			}
		}
	}
	if (group_empty(g)) {
		if (r->hooks.group_left != NULL)
			r->hooks.group_left(r->hooks.arg, g->name);
		group_drop(r, g);
	}
}

hr_idlist *
hr_router__bucket_snapshot(bucket *b)
{
	if (b->dirty || b->snap == NULL) {
		hr_idlist *l;
		if (hr_idlist_alloc(b->n, &l) != 0)
			return NULL;
		memcpy(l->ids, b->ids, (size_t)b->n * sizeof(l->ids[0]));
		hr_idlist_unref(b->snap);
		b->snap = l;
		b->dirty = false;
	}
	return hr_idlist_ref(b->snap);
}

void
hr_router__conn_open(hr_router *r, hr_member m, const char *channel)
{
	conn *c = hr_router__conn_get(r, m, true), *old;
	const char *key;

	if (c == NULL)
		return;
	if (c->n == 0) /* its buckets follow the flag: only before any group */
		c->rec = (m.flags & HR_MEMBER_RECOVER) != 0;
	if ((old = name_get(&r->channels, channel)) != NULL && old != c) {
		old->channel = NULL; /* the name moved to a new connection */
		name_del(&r->channels, channel);
		hr_router__conn_maybe_free(r, old);
	}
	if (c->channel != NULL && strcmp(c->channel, channel) != 0) {
		name_del(&r->channels, c->channel);
		c->channel = NULL;
	}
	if (name_put(&r->channels, channel, c, &key) == 0)
		c->channel = key;
	hr_router__conn_maybe_free(r, c);
}

void
hr_router__conn_close(hr_router *r, hr_member m)
{
	conn *c = hr_router__conn_get(r, m, false);

	if (c == NULL)
		return;
	while (c->n > 0) {
		group *g = c->groups[--c->n];
		member_del(r, g, c, false);
	}
	if (c->channel != NULL) {
		name_del(&r->channels, c->channel);
		c->channel = NULL;
	}
	hr_router__conn_maybe_free(r, c);
}

void
hr_router__group_discard(hr_router *r, const char *name, hr_member m)
{
	group *g = name_get(&r->groups, name);
	conn *c = hr_router__conn_get(r, m, false);

	if (g != NULL && c != NULL) {
		member_del(r, g, c, true);
		hr_router__conn_maybe_free(r, c);
	}
}
