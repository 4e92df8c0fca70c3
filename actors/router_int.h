/*
 * router_int.h: what the router's parts share (never included from
 * outside actors/ and tests/actors/): router.c, the actor (its handlers
 * and lifecycle), router_members.c, its membership records
 * (router_members.h), router_hist.c, the resumes that wait for a shared
 * history, and router_api.c, the hr_router_* calls that post to it from
 * any thread.
 */
#ifndef HERALD_ROUTER_INT_H
#define HERALD_ROUTER_INT_H

#include <stdatomic.h>

#include "actors/history_int.h"

enum {
	R_CONN_OPEN = HR_MAIL_USER,
	R_CONN_CLOSE,
	R_GROUP_ADD,
	R_GROUP_DISCARD,
	R_GROUP_SEND,
	R_SEND,
	R_SET_HOOKS,
	R_SET_HISTORY,
	R_SET_FILL,
	R_HISTORY_FILL,
};

/* A request as it travels in a mail's p1 (owned by the mail). */
typedef struct req {
	hr_member m;
	hr_msg *event;
	hr_reply_fn reply;
	void *reply_arg;
	bool badname;    /* name too long to copy: refused on the router thread */
	bool local_only; /* group_send: no group_sent hook */
	bool recover;    /* group_add: answer a resume (pos) */
	bool at;         /* group_send: positioned from outside (epoch, offset) */
	unsigned flags;  /* group_send_at: HR_AT_* */
	uint64_t offset;
	hr_recover_pos pos; /* group_add recover: the position; group_send_at: epoch */
	uint64_t live_from; /* group_add recover without pos, after a fill (history_int.h) */
	char name[];
} req;

/* R_SET_FILL's p1 (owned by the mail). */
typedef struct hr_fill_set {
	hr_history_fill_fn fn;
	void *arg;
	bool (*up)(void *up_arg);
	void *up_arg;
} hr_fill_set;

/* R_HISTORY_FILL's p1 (owned by the mail; events[i] one reference each). */
typedef struct hr_fill {
	bool ok; /* false: the shared history could not be read */
	char group[HR_NAME_MAX + 1];
	char epoch[HR_EPOCH_MAX + 1];
	uint64_t latest;
	size_t n;
	uint64_t *offsets; /* into the same allocation */
	hr_msg **events;
} hr_fill;
void hr_router__fill_free(hr_fill *f);

/* The router (router.c has the design). */
struct hr_router {
	hr_actor *actor;
	hr_layer *layer;
	hr_actor *consumers[HR_MAX_CONSUMERS];
	size_t n_consumers;
	atomic_bool cancelling; /* destroy: answer sends with HR_ECANCELED */
	hr_router_hooks hooks;  /* router thread only; all NULL until set */
	/* Router state: ONLY touched from the router thread. */
	hr_map groups;         /* name -> group */
	hr_map channels;       /* name -> conn */
	hr_map conns;          /* (m.conn, member_k2(m)) -> conn */
	hr_history_table hist; /* recovery history (history_int.h) */
	/* External numbering: resumes waiting for their group's shared
	 * history (group name -> pend), and who fetches it. */
	hr_map pending;
	hr_history_fill_fn fill;
	void *fill_arg;
	bool (*up)(void *up_arg); /* NULL: always up */
	void *up_arg;
	/* Stats: written by the router thread, read by anyone. */
	atomic_uint_fast64_t st_group_sends, st_sends, st_fanouts, st_groups, st_members,
	    st_dropped;
};

/* Drop a request's event reference and free it (the reply is not called). */
void hr_router__req_free(req *q);
/* The router's actor and its number of consumers (fixed at create). */
hr_actor *hr_router__actor(hr_router *r);
size_t hr_router__n_consumers(const hr_router *r);

/* router_hist.c: resumes waiting for their group's shared history
 * (external numbering, history.h), in r->pending. Router thread only. */
/* r->pending's map type: group name -> the requests waiting for a fill. */
extern const hr_map_type hr_router__pending_type;
/* A resume the ring cannot answer: q (its connection already known to the
 * router, so that its close is seen) waits for the group's shared history,
 * asked of r->fill unless a request is already out. true: q is kept;
 * false: answer it now (no fill, the ring covers it, or no memory). */
bool hr_router__wait_fill(hr_router *r, req *q);
/* The requests that waited for group's history, oldest first: *out (caller
 * frees with free(), and each request) holds the returned count (*out NULL
 * when 0); the group waits no more. */
uint32_t hr_router__fill_take(hr_router *r, const char *group, req ***out);

#endif /* HERALD_ROUTER_INT_H */
