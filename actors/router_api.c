/*
 * router_api.c: the router's calls (actor.h, history.h): each checks its
 * arguments, copies them into a request and posts it to the router's
 * mailbox; the router's thread handles it in order (router.c). Any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/history_int.h"
#include "actors/router_int.h"

static size_t
name_len(const char *s)
{
	size_t n = 0;
	while (n <= HR_NAME_MAX && s[n] != '\0')
		n++;
	return n;
}

/* What some requests carry beyond the common fields. */
typedef struct req_extra {
	bool recover, at;
	unsigned flags;
	uint64_t offset;
	const hr_recover_pos *pos; /* recover: the position; at: pos->epoch */
} req_extra;

static int
post_req_x(hr_router *r, uint32_t kind, const char *name, hr_member m, hr_msg *event,
    hr_reply_fn fn, void *arg, int timeout_ms, bool local_only, const req_extra *x)
{
	size_t len;
	req *q;
	int rv;

	if (r == NULL || name == NULL)
		return HR_EINVAL;
	if (kind != R_SEND && kind != R_GROUP_SEND
	    && (m.consumer >= hr_router__n_consumers(r) || m.thread >= HR_MAX_THREADS))
		return HR_EINVAL;
	if ((kind == R_SEND || kind == R_GROUP_SEND) && event == NULL)
		return HR_EINVAL;
	len = name_len(name);
	if (kind == R_GROUP_ADD || kind == R_GROUP_DISCARD) {
		/* No reply to carry the error: refuse here. */
		if (len > HR_NAME_MAX || hr_name_check_group(name, len) != 0)
			return HR_EBADNAME;
	} else if (kind == R_CONN_OPEN || kind == R_CONN_CLOSE) {
		if (len > HR_NAME_MAX || hr_name_check_channel(name, len) != 0)
			return HR_EBADNAME;
	}
	bool bad = len > HR_NAME_MAX;
	if (bad)
		len = 0;
	if ((q = malloc(sizeof(*q) + len + 1)) == NULL)
		return HR_ENOMEM;
	q->m = m;
	q->event = event != NULL ? hr_msg_ref(event) : NULL;
	q->reply = fn;
	q->reply_arg = arg;
	q->badname = bad;
	q->local_only = local_only;
	q->recover = x != NULL && x->recover;
	q->at = x != NULL && x->at;
	q->flags = x != NULL ? x->flags : 0;
	q->offset = x != NULL ? x->offset : 0;
	memset(&q->pos, 0, sizeof(q->pos));
	q->live_from = 0;
	if (x != NULL && x->pos != NULL)
		q->pos = *x->pos;
	memcpy(q->name, name, len);
	q->name[len] = '\0';
	hr_mail mail = { .kind = kind, .p1 = q };
	if ((rv = hr_actor_send(hr_router__actor(r), &mail, timeout_ms)) != 0) {
		hr_router__req_free(q); /* an error: the reply never fires */
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}

static int
post_req(hr_router *r, uint32_t kind, const char *name, hr_member m, hr_msg *event, hr_reply_fn fn,
    void *arg, int timeout_ms, bool local_only)
{
	return post_req_x(r, kind, name, m, event, fn, arg, timeout_ms, local_only, NULL);
}

int
hr_router_conn_open(hr_router *r, const char *channel, hr_member m, int timeout_ms)
{
	return post_req(r, R_CONN_OPEN, channel, m, NULL, NULL, NULL, timeout_ms, false);
}

int
hr_router_conn_close(hr_router *r, const char *channel, hr_member m, int timeout_ms)
{
	return post_req(r, R_CONN_CLOSE, channel, m, NULL, NULL, NULL, timeout_ms, false);
}

int
hr_router_group_add(hr_router *r, const char *gname, hr_member m, int timeout_ms)
{
	return post_req(r, R_GROUP_ADD, gname, m, NULL, NULL, NULL, timeout_ms, false);
}

int
hr_router_group_discard(hr_router *r, const char *gname, hr_member m, int timeout_ms)
{
	return post_req(r, R_GROUP_DISCARD, gname, m, NULL, NULL, NULL, timeout_ms, false);
}

int
hr_router_group_send(hr_router *r, const char *gname, hr_msg *event, hr_reply_fn reply_fn,
    void *reply_arg, int timeout_ms)
{
	hr_member none = { 0 };
	return post_req(
	    r, R_GROUP_SEND, gname, none, event, reply_fn, reply_arg, timeout_ms, false);
}

int
hr_router_send(hr_router *r, const char *channel, hr_msg *event, hr_reply_fn reply_fn,
    void *reply_arg, int timeout_ms)
{
	hr_member none = { 0 };
	return post_req(r, R_SEND, channel, none, event, reply_fn, reply_arg, timeout_ms, false);
}

int
hr_router_group_send_local(hr_router *r, const char *gname, hr_msg *event, hr_reply_fn reply_fn,
    void *reply_arg, int timeout_ms)
{
	hr_member none = { 0 };
	return post_req(r, R_GROUP_SEND, gname, none, event, reply_fn, reply_arg, timeout_ms, true);
}

int
hr_router_set_hooks(hr_router *r, const hr_router_hooks *hooks, int timeout_ms)
{
	hr_router_hooks *h;
	int rv;

	if (r == NULL || hooks == NULL)
		return HR_EINVAL;
	if ((h = malloc(sizeof(*h))) == NULL)
		return HR_ENOMEM;
	*h = *hooks;
	hr_mail mail = { .kind = R_SET_HOOKS, .p1 = h };
	if ((rv = hr_actor_send(hr_router__actor(r), &mail, timeout_ms)) != 0) {
		free(h);
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- history.h */

int
hr_router_set_history(
    hr_router *r, const hr_history_rule *rules, size_t n, bool external, int timeout_ms)
{
	hr_history_conf *hc;
	int rv;

	if (r == NULL)
		return HR_EINVAL;
	if ((rv = hr_history__conf_new(rules, n, external, &hc)) != 0)
		return rv;
	hr_mail mail = { .kind = R_SET_HISTORY, .p1 = hc };
	if ((rv = hr_actor_send(hr_router__actor(r), &mail, timeout_ms)) != 0) {
		free(hc);
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}

int
hr_router_group_add_recover(
    hr_router *r, const char *gname, hr_member m, const hr_recover_pos *pos, int timeout_ms)
{
	req_extra x = { .recover = true, .pos = pos };
	return post_req_x(r, R_GROUP_ADD, gname, m, NULL, NULL, NULL, timeout_ms, false, &x);
}

int
hr_router_group_send_at(hr_router *r, const char *gname, hr_msg *event, const char *epoch,
    uint64_t offset, unsigned flags, hr_reply_fn reply_fn, void *reply_arg, int timeout_ms)
{
	hr_member none = { 0 };
	hr_recover_pos pos = { .given = true };

	if (epoch == NULL || offset == 0 || !hr_history__epoch_ok(epoch, strlen(epoch)))
		return HR_EINVAL;
	memcpy(pos.epoch, epoch, strlen(epoch) + 1);
	req_extra x = { .at = true, .flags = flags, .offset = offset, .pos = &pos };
	return post_req_x(
	    r, R_GROUP_SEND, gname, none, event, reply_fn, reply_arg, timeout_ms, true, &x);
}

int
hr_router_set_history_fill(hr_router *r, hr_history_fill_fn fn, void *arg, bool (*up)(void *up_arg),
    void *up_arg, int timeout_ms)
{
	hr_fill_set *fs;
	int rv;

	if (r == NULL)
		return HR_EINVAL;
	if ((fs = malloc(sizeof(*fs))) == NULL)
		return HR_ENOMEM;
	fs->fn = fn;
	fs->arg = arg;
	fs->up = up;
	fs->up_arg = up_arg;
	hr_mail mail = { .kind = R_SET_FILL, .p1 = fs };
	if ((rv = hr_actor_send(hr_router__actor(r), &mail, timeout_ms)) != 0) {
		free(fs);
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}

int
hr_router_history_fill(hr_router *r, const char *group, const char *epoch, uint64_t latest,
    const uint64_t *offsets, hr_msg *const *events, size_t n, int timeout_ms)
{
	size_t len = group != NULL ? name_len(group) : 0;
	hr_fill *f;
	int rv;

	if (r == NULL || group == NULL || len > HR_NAME_MAX
	    || (n > 0 && (offsets == NULL || events == NULL))
	    || (epoch != NULL && !hr_history__epoch_ok(epoch, strlen(epoch))))
		return HR_EINVAL;
	if (n > HR_HISTORY_MAX_SIZE)
		return HR_EINVAL;
	if ((f = calloc(1, sizeof(*f) + n * (sizeof(uint64_t) + sizeof(hr_msg *)))) == NULL)
		return HR_ENOMEM;
	f->offsets = (uint64_t *)(f + 1);
	f->events = (hr_msg **)(f->offsets + n);
	f->ok = epoch != NULL;
	memcpy(f->group, group, len);
	f->group[len] = '\0';
	if (epoch != NULL)
		memcpy(f->epoch, epoch, strlen(epoch) + 1);
	f->latest = latest;
	for (size_t i = 0; i < n; i++) {
		f->offsets[i] = offsets[i];
		f->events[i] = events[i] != NULL ? hr_msg_ref(events[i]) : NULL;
	}
	f->n = n;
	hr_mail mail = { .kind = R_HISTORY_FILL, .p1 = f };
	if ((rv = hr_actor_send(hr_router__actor(r), &mail, timeout_ms)) != 0) {
		hr_router__fill_free(f);
		return rv == HR_ETIMEDOUT ? HR_EAGAIN : rv;
	}
	return 0;
}
