/*
 * router_hist.c: the router's resumes that wait for a shared history
 * (external numbering, history.h, docs/RECOVERY.md "Wiring", step 4): a
 * resume that the group's local ring cannot answer waits here, outside the
 * group, while the bridge fetches the group's history (one request out per
 * group); router.c takes the waiting resumes when the answer arrives.
 * Everything here runs ONLY on the router's actor thread.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/router_int.h"

/* router_int.h: kept here, below what frees requests (router.c and
 * router_api.c use it too). */
void
hr_router__req_free(req *q)
{
	hr_msg_unref(q->event);
	free(q);
}

/* group_add requests of resumes waiting for a fill (history.h). */
typedef struct pend {
	req **q;
	uint32_t n, cap;
} pend;

static void
pend_free(void *p)
{
	pend *pd = p;
	for (uint32_t i = 0; i < pd->n; i++)
		hr_router__req_free(pd->q[i]);
	free(pd->q);
	free(pd);
}
const hr_map_type hr_router__pending_type
    = { .kind = HR_MAP_STR, .copy_keys = true, .val_free = pend_free };

/* router_int.h */
bool
hr_router__wait_fill(hr_router *r, req *q)
{
	size_t len = strlen(q->name);
	hr_map_entry *e = hr_map_find_str(&r->pending, q->name, len);
	pend *pd;

	if (r->fill == NULL || hr_history__covers(&r->hist, q->name, &q->pos))
		return false;
	if (e == NULL) {
		if ((pd = calloc(1, sizeof(*pd))) == NULL)
			return false;
		if (hr_map_put_str(&r->pending, q->name, len, &e, NULL) != 0) {
			free(pd);
			return false;
		}
		e->val.ptr = pd;
		if (r->fill(r->fill_arg, q->name) != 0) {
			hr_map_delete(&r->pending, e);
			free(pd);
			return false;
		}
	}
	pd = e->val.ptr;
	if (pd->n == pd->cap) {
		uint32_t ncap = pd->cap ? pd->cap * 2 : 4;
		req **nq = realloc(pd->q, ncap * sizeof(*nq));
		if (nq == NULL)
			return false;
		pd->q = nq;
		pd->cap = ncap;
	}
	pd->q[pd->n++] = q;
	return true;
}

/* router_int.h */
uint32_t
hr_router__fill_take(hr_router *r, const char *group, req ***out)
{
	hr_map_entry *e = hr_map_find_str(&r->pending, group, strlen(group));
	pend *pd;
	uint32_t n;

	*out = NULL;
	if (e == NULL)
		return 0;
	pd = e->val.ptr;
	hr_map_delete(&r->pending, e); /* does not free the value */
	*out = pd->q;
	n = pd->n;
	free(pd);
	return n;
}
