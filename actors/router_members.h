/*
 * router_members.h: the router's membership records (router_members.c),
 * read by its handlers in router.c: groups split into buckets, and the
 * connections with the groups they joined. Never included from outside
 * actors/. Router thread only, like everything they touch.
 */
#ifndef HERALD_ROUTER_MEMBERS_H
#define HERALD_ROUTER_MEMBERS_H

#include "actors/router_int.h"

/* One group's members served by one consumer on one I/O thread. */
typedef struct bucket {
	uint16_t consumer, thread;
	bool rec; /* members with HR_MEMBER_RECOVER (they get envelopes) */
	uint32_t n, cap;
	uint64_t *ids;
	hr_map pos;      /* conn id -> index in ids (val.u64) */
	hr_idlist *snap; /* the cached snapshot; valid unless dirty */
	bool dirty;
} bucket;

typedef struct group {
	const char *name; /* the groups map's key */
	bucket *b;
	uint32_t nb, capb;
} group;

/* A local connection known to the router. */
typedef struct conn {
	hr_member m;
	bool rec;            /* HR_MEMBER_RECOVER */
	const char *channel; /* the channels map's key, or NULL */
	group **groups;
	uint32_t n, cap;
} conn;

/* r->groups, r->channels and r->conns: empty at create; fini frees every
 * record (destroy). */
void hr_router__members_init(hr_router *r);
void hr_router__members_fini(hr_router *r);

/* The group named name (len bytes), or NULL. */
group *hr_router__group_get(hr_router *r, const char *name, size_t len);
/* A new group named name, with no members, counted in st_groups; NULL when
 * out of memory (nothing changed). */
group *hr_router__group_new(hr_router *r, const char *name);
/* Free g if it has no members (no group_left hook: it never joined); true
 * when it did. */
bool hr_router__group_drop_if_empty(hr_router *r, group *g);
/* The connection registered under channel name (len bytes), or NULL. */
conn *hr_router__channel_get(hr_router *r, const char *name, size_t len);

/* m's record; with create, a new empty one if it has none (NULL: out of
 * memory). */
conn *hr_router__conn_get(hr_router *r, hr_member m, bool create);
/* Drop c's record once it has neither groups nor a channel. */
void hr_router__conn_maybe_free(hr_router *r, conn *c);
/* conn_open: m's connection now answers to channel (a name moves from an
 * older connection to it). */
void hr_router__conn_open(hr_router *r, hr_member m, const char *channel);
/* conn_close: m leaves every group it joined and gives up its channel. */
void hr_router__conn_close(hr_router *r, hr_member m);

/* Membership of c in g: add. 0, or HR_ENOMEM with nothing changed. */
int hr_router__member_add(hr_router *r, group *g, conn *c);
/* group_discard: m's connection leaves the group named name, if it is a
 * member; an emptied group is freed (group_left hook). */
void hr_router__group_discard(hr_router *r, const char *name, hr_member m);

/* The bucket's snapshot, rebuilt if its membership changed; one new ref
 * (NULL: out of memory). */
hr_idlist *hr_router__bucket_snapshot(bucket *b);

#endif /* HERALD_ROUTER_MEMBERS_H */
