/*
 * post.c: an I/O thread's posts to the router and the Redis bridge, which
 * never wait. A request is posted with timeout 0; one that finds the
 * mailbox full (a connection's conn_close, which must not be lost; an HTTP
 * send, better answered late than refused: bench/README.md "Never
 * waiting") is kept on the thread's retry list and posted again, in order,
 * at the end of every mailbox drain and every tick (iothread.c). The
 * router's HTTP replies come back the same way round: hr_post__reply, on the
 * router's thread, hands a reply whose mail finds the I/O thread's mailbox
 * full to the thread's late list, which the next drain answers (iothread.c).
 *
 * Threads: the owning I/O thread, except hr_post__reply (any thread; the
 * late list is under late_mu).
 */
#include <stdlib.h>
#include <string.h>

#include "transport/transport_impl.h"

typedef struct hr_retry {
	struct hr_retry *next;
	int kind; /* HR_REQ_* */
	hr_member m;
	hr_msg *msg; /* sends: one reference */
	hr_reply_fn reply;
	void *reply_arg;
	char name[]; /* channel or group */
} hr_retry;

static int
post(hr_iothread *t, int kind, const char *name, hr_member m, hr_msg *msg, hr_reply_fn reply,
    void *arg, int timeout_ms)
{
	hr_node *n = t->node;
	switch (kind) {
	case HR_REQ_CONN_CLOSE:
		return hr_router_conn_close(n->router, name, m, timeout_ms);
	case HR_REQ_GROUP_SEND:
		return hr_router_group_send(n->router, name, msg, reply, arg, timeout_ms);
	case HR_REQ_SEND:
		return hr_router_send(n->router, name, msg, reply, arg, timeout_ms);
	default:
		return hr_bridge_send(n->bridge, name, msg, reply, arg, timeout_ms);
	}
}

int
hr_post__request(hr_iothread *t, int kind, const char *name, hr_member m, hr_msg *msg,
    hr_reply_fn reply, void *reply_arg)
{
	/* behind what waits already: requests leave in the order they came */
	if (t->retry_head == NULL) {
		int rv = post(t, kind, name, m, msg, reply, reply_arg, 0);
		if (rv != HR_EAGAIN)
			return rv;
	}
	size_t nl = strlen(name);
	hr_retry *r = malloc(sizeof(*r) + nl + 1);
	if (r == NULL)
		return HR_ENOMEM;
	r->next = NULL;
	r->kind = kind;
	r->m = m;
	r->msg = msg != NULL ? hr_msg_ref(msg) : NULL;
	r->reply = reply;
	r->reply_arg = reply_arg;
	memcpy(r->name, name, nl + 1);
	if (t->retry_tail != NULL)
		t->retry_tail->next = r;
	else
		t->retry_head = r;
	t->retry_tail = r;
	t->n_retry++;
	return 0;
}

/* Post the head of the retry list with timeout_ms; false: no room, it
 * stays. A request refused for another reason is dropped (its reply, if
 * any, told so). */
static bool
retry_one(hr_iothread *t, int timeout_ms)
{
	hr_retry *r = t->retry_head;
	int rv = post(t, r->kind, r->name, r->m, r->msg, r->reply, r->reply_arg, timeout_ms);
	if (rv == HR_EAGAIN || rv == HR_ETIMEDOUT)
		return false;
	if (rv != 0) {
		hr_log(HR_LOG_WARN, "router request for %s: %s", r->name, hr_strerror(rv));
		if (r->reply != NULL)
			r->reply(r->reply_arg, rv); /* an HTTP send answers 503 */
	}
	t->retry_head = r->next;
	if (t->retry_head == NULL)
		t->retry_tail = NULL;
	t->n_retry--;
	hr_msg_unref(r->msg);
	free(r);
	return true;
}

void
hr_post__retry(hr_iothread *t)
{
	while (t->retry_head != NULL && retry_one(t, 0))
		;
}

void
hr_post__reply(hr_iothread *t, uint64_t conn_id, int status)
{
	hr_mail m = { .kind = HR_MAIL_IO_HTTP_REPLY, .u64 = conn_id, .u32 = (uint32_t)status };
	if (hr_mailbox_post(t->mbox, &m, 0) == 0)
		return;
	hr_late_reply *l = malloc(sizeof(*l));
	if (l == NULL) {
		hr_log(HR_LOG_ERROR, "http reply lost: out of memory");
		return;
	}
	l->conn = conn_id;
	l->status = status;
	pthread_mutex_lock(&t->late_mu);
	l->next = t->late;
	t->late = l;
	pthread_mutex_unlock(&t->late_mu);
	/* a drain must come after the push: this wake-up (conn id 0 is no
	 * connection) brings one, and if it finds no room either, the full
	 * mailbox does */
	hr_mail wake = { .kind = HR_MAIL_IO_HTTP_REPLY, .u64 = 0 };
	(void)hr_mailbox_post(t->mbox, &wake, 0);
}

void
hr_post__retry_at_exit(hr_iothread *t)
{
	while (t->retry_head != NULL) {
		if (!retry_one(t, 1000)) {
			hr_retry *r = t->retry_head;
			hr_log(HR_LOG_WARN, "router request for %s lost at exit", r->name);
			if (r->reply != NULL)
				r->reply(r->reply_arg, HR_ECANCELED);
			t->retry_head = r->next;
			t->n_retry--;
			hr_msg_unref(r->msg);
			free(r);
		}
	}
	t->retry_tail = NULL;
}
