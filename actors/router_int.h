/*
 * router_int.h: what the router's two halves share (never included from
 * outside actors/ and tests/actors/): router.c, the actor (its state and
 * handlers), and router_api.c, the hr_router_* calls that post to it from
 * any thread.
 */
#ifndef HERALD_ROUTER_INT_H
#define HERALD_ROUTER_INT_H

#include "actors/history.h"

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

/* Drop a request's event reference and free it (the reply is not called). */
void hr_router__req_free(req *q);
/* The router's actor and its number of consumers (fixed at create). */
hr_actor *hr_router__actor(hr_router *r);
size_t hr_router__n_consumers(const hr_router *r);

#endif /* HERALD_ROUTER_INT_H */
