/*
 * conn.c: an I/O thread's connection table. Every connection it serves
 * (WebSocket, HTTP on lws, raw HTTP/1) has a slot; its id is
 * generation << 32 | slot, and a slot's generation moves on when its
 * connection goes, so a stale id (a late router reply, a fan-out to a
 * connection closed meanwhile) finds nothing instead of a newer connection in
 * the same slot. Free slots form a list through next_free; the table doubles
 * when it runs out.
 *
 * The table knows nothing of the roles: whoever closes a connection releases
 * its role parts first (ws.c, http.c, http1.c: hr_conn says which), then calls hr_conn__destroy.
 *
 * It also keeps the thread's intrusive lists of WebSockets (hr_clist), whose
 * links live in the connections themselves: appending, removing and moving a
 * connection to the tail are O(1), so ws.c's liveness tick touches only the
 * connections that are due.
 *
 * Threads: the owning I/O thread only (init/fini: before it starts, after it
 * ended).
 */
#include <stdlib.h>

#include "transport/transport_impl.h"

void
hr_conn__table_init(hr_iothread *t)
{
	t->slots = NULL;
	t->nslots = 0;
	t->free_head = UINT32_MAX;
}

void
hr_conn__table_fini(hr_iothread *t)
{
	/* every connection was destroyed by lws_context_destroy's closes */
	free(t->slots);
	t->slots = NULL;
	t->nslots = 0;
	t->free_head = UINT32_MAX;
}

int
hr_conn__new(hr_iothread *t, struct lws *wsi, hr_conn **out)
{
	hr_conn *c;
	uint32_t s;

	if (t->free_head == UINT32_MAX) {
		uint32_t n = t->nslots ? t->nslots * 2 : 64;
		hr_slot *ns = realloc(t->slots, n * sizeof(*ns));
		if (ns == NULL)
			return HR_ENOMEM;
		for (uint32_t i = t->nslots; i < n; i++) {
			ns[i].c = NULL;
			ns[i].gen = 1;
			ns[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		t->free_head = t->nslots;
		t->slots = ns;
		t->nslots = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return HR_ENOMEM;
	s = t->free_head;
	t->free_head = t->slots[s].next_free;
	t->slots[s].c = c;
	c->wsi = wsi;
	c->t = t;
	c->ws.sfd = -1;
	c->id = ((uint64_t)t->slots[s].gen << 32) | s;
	lws_set_opaque_user_data(wsi, c);
	*out = c;
	return 0;
}

hr_conn *
hr_conn__get(hr_iothread *t, uint64_t id)
{
	uint32_t s = (uint32_t)id;
	if (s >= t->nslots || t->slots[s].gen != (uint32_t)(id >> 32))
		return NULL;
	return t->slots[s].c;
}

void
hr_conn__each(hr_iothread *t, void (*fn)(hr_conn *c, void *arg), void *arg)
{
	for (uint32_t s = 0; s < t->nslots; s++)
		if (t->slots[s].c != NULL)
			fn(t->slots[s].c, arg);
}

void
hr_conn__destroy(hr_conn *c)
{
	hr_iothread *t = c->t;
	uint32_t s = (uint32_t)c->id;

	lws_set_opaque_user_data(c->wsi, NULL);
	t->slots[s].c = NULL;
	t->slots[s].gen++;
	if (t->slots[s].gen == 0)
		t->slots[s].gen = 1;
	t->slots[s].next_free = t->free_head;
	t->free_head = s;
	free(c);
	/* stopping: the thread ends with its last WebSocket (iothread.c) */
	if (t->stopping && t->n_ws == 0)
		hr_evloop__stop(t);
}

void
hr_conn__list_append(hr_iothread *t, int which, hr_conn *c)
{
	hr_clist *l = &t->live[which];
	hr_link *k = &c->ws.link[which];

	k->next = NULL;
	k->prev = l->tail;
	if (l->tail != NULL)
		l->tail->ws.link[which].next = c;
	else
		l->head = c;
	l->tail = c;
}

void
hr_conn__list_remove(hr_iothread *t, int which, hr_conn *c)
{
	hr_clist *l = &t->live[which];
	hr_link *k = &c->ws.link[which];

	if (k->prev != NULL)
		k->prev->ws.link[which].next = k->next;
	else
		l->head = k->next;
	if (k->next != NULL)
		k->next->ws.link[which].prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
}

void
hr_conn__list_touch(hr_iothread *t, int which, hr_conn *c)
{
	if (t->live[which].tail == c)
		return;
	hr_conn__list_remove(t, which, c);
	hr_conn__list_append(t, which, c);
}

void
hr_conn__unlist(hr_iothread *t, hr_conn *c)
{
	if (!c->ws.listed)
		return;
	hr_conn__list_remove(t, HR_LIST_RX, c);
	hr_conn__list_remove(t, HR_LIST_PING, c);
	c->ws.listed = false;
	t->n_live--;
}
