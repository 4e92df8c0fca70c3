/*
 * actor.c: the actor runtime (actor.h): a thread, a mailbox and a handler
 * table. Any thread may spawn, send, stop and join; the handlers, on_start
 * and on_stop run only on the actor's own thread, which alone touches the
 * actor's state.
 *
 * Stop is a message: hr_actor_stop closes the mailbox, whose recv hands out
 * every mail accepted before the close and then HR_ECLOSED (HR_MAIL_STOP in
 * spirit), so the actor handles all earlier mail, then runs on_stop and
 * exits. The thread blocks for one mail, then drains up to ACTOR_BATCH more
 * without waiting, so one wakeup handles a burst. Each drain runs inside a
 * mailbox batch scope: what the handlers post is collected per destination
 * and sent, several mails per nng message, when the drain ends, before the
 * thread blocks again. Handlers never flush by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"

#define ACTOR_DEFAULT_CAPACITY 1024
#define ACTOR_BATCH 256

struct hr_actor {
	char *name;
	hr_mailbox *mb;
	hr_sys_thread thread;
	/* The spec's fields, copied at spawn; read-only afterwards. */
	void *state;
	const hr_actor_fn *handlers;
	size_t n_handlers;
	void (*on_start)(hr_actor *self, void *state);
	void (*on_stop)(hr_actor *self, void *state);
	hr_mail_drop_fn drop;
};

static void
drop_mail(hr_actor *a, hr_mail *mail)
{
	if (a->drop != NULL)
		a->drop(a->state, mail);
}

static void
mailbox_drop(void *arg, hr_mail *mail)
{
	drop_mail(arg, mail);
}

static void
dispatch(hr_actor *a, hr_mail *mail)
{
	size_t k;

	if (mail->kind >= HR_MAIL_USER && (k = mail->kind - HR_MAIL_USER) < a->n_handlers
	    && a->handlers[k] != NULL)
		a->handlers[k](a, a->state, mail);
	else
		drop_mail(a, mail);
}

static void *
actor_main(void *arg)
{
	hr_actor *a = arg;
	hr_mail mail;
	int rv;

	if (a->on_start != NULL)
		a->on_start(a, a->state);
	for (;;) {
		if ((rv = hr_mailbox_recv(a->mb, &mail, -1)) != 0)
			break;
		hr_mailbox_batch_begin();
		dispatch(a, &mail);
		for (int i = 0; i < ACTOR_BATCH; i++) {
			if ((rv = hr_mailbox_recv(a->mb, &mail, 0)) != 0)
				break;
			dispatch(a, &mail);
		}
		/* Before this thread waits again: what the handlers posted goes out. */
		hr_mailbox_batch_end();
		if (rv != 0 && rv != HR_EAGAIN)
			break;
	}
	/* HR_ECLOSED: every mail posted before the stop has been handled. */
	if (a->on_stop != NULL)
		a->on_stop(a, a->state);
	return NULL;
}

int
hr_actor_spawn(hr_actor **out, const hr_actor_spec *spec)
{
	hr_actor *a;
	const char *name;
	int rv;

	if (out == NULL || spec == NULL || (spec->n_handlers > 0 && spec->handlers == NULL))
		return HR_EINVAL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return HR_ENOMEM;
	name = spec->name != NULL ? spec->name : "actor";
	if ((a->name = malloc(strlen(name) + 1)) == NULL) {
		rv = HR_ENOMEM;
		goto fail;
	}
	memcpy(a->name, name, strlen(name) + 1);
	a->state = spec->state;
	a->handlers = spec->handlers;
	a->n_handlers = spec->n_handlers;
	a->on_start = spec->on_start;
	a->on_stop = spec->on_stop;
	a->drop = spec->drop;
	rv = hr_mailbox_create(&a->mb,
	    spec->mailbox_capacity ? spec->mailbox_capacity : ACTOR_DEFAULT_CAPACITY, mailbox_drop,
	    a);
	if (rv != 0)
		goto fail;
	if ((rv = hr_sys__thread_start(&a->thread, a->name, actor_main, a)) != 0)
		goto fail;
	*out = a;
	return 0;
fail:
	hr_mailbox_destroy(a->mb);
	free(a->name);
	free(a);
	return rv;
}

int
hr_actor_send(hr_actor *a, const hr_mail *mail, int timeout_ms)
{
	if (a == NULL || mail == NULL)
		return HR_EINVAL;
	if (mail->kind == HR_MAIL_STOP) {
		/* Stop travels as the mailbox's close marker, in order. */
		hr_actor_stop(a);
		return 0;
	}
	return hr_mailbox_post(a->mb, mail, timeout_ms);
}

void
hr_actor_stop(hr_actor *a)
{
	if (a != NULL)
		hr_mailbox_close(a->mb);
}

void
hr_actor_join(hr_actor *a)
{
	if (a == NULL)
		return;
	HR_ASSERT(!hr_sys__thread_is_self(&a->thread));
	hr_actor_stop(a);
	hr_sys__thread_join(&a->thread);
	/* The thread drained the mailbox; this drops only what raced in. */
	hr_mailbox_destroy(a->mb);
	free(a->name);
	free(a);
}

const char *
hr_actor_name(const hr_actor *a)
{
	return a != NULL ? a->name : NULL;
}
