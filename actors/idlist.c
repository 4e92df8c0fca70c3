/*
 * idlist.c: refcounted connection-id lists and fan-out records (actor.h).
 * Created by the router, shared read-only by consumers and I/O threads.
 */
#include <stdlib.h>

#include "actors/actor.h"

int
hr_idlist_alloc(uint32_t n, hr_idlist **out)
{
	hr_idlist *l = malloc(sizeof(*l) + (size_t)n * sizeof(l->ids[0]));
	if (l == NULL)
		return HR_ENOMEM;
	atomic_init(&l->refs, 1);
	l->n = n;
	*out = l;
	return 0;
}

hr_idlist *
hr_idlist_ref(hr_idlist *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	return l;
}

void
hr_idlist_unref(hr_idlist *l)
{
	if (l != NULL && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

void
hr_fanout_answer(hr_fanout *f)
{
	hr_reply_fn fn = f->reply;
	f->reply = NULL;
	if (fn != NULL)
		fn(f->reply_arg, f->status);
}

void
hr_fanout_free(hr_fanout *f)
{
	if (f == NULL)
		return;
	hr_fanout_answer(f);
	hr_msg_unref(f->event);
	hr_msg_unref(f->env);
	for (uint32_t i = 0; i < f->n_threads && i < HR_MAX_THREADS; i++) {
		hr_idlist_unref(f->ids[i]);
		hr_idlist_unref(f->rids[i]);
	}
	free(f);
}
