/*
 * worker_int.h: internals of the worker actor (actors/worker.c) that tests
 * use to make the pipeline slow on purpose. Not part of the public API.
 */
#ifndef HERALD_WORKER_INT_H
#define HERALD_WORKER_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "actors/actor.h"

/* A gate the worker thread waits at. Caller-owned; lives until released and
 * the worker has passed it (hr_worker__gate_wait_entered, then release, then
 * hr_worker_destroy or a finished notification proves it has). */
typedef struct hr_worker_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered; /* {lock} the worker is waiting at the gate */
	bool open;    /* {lock} */
} hr_worker_gate;

void hr_worker__gate_init(hr_worker_gate *g);
void hr_worker__gate_fini(hr_worker_gate *g);
/* Post a mail that makes the worker thread wait until the gate opens; jobs
 * submitted after it queue up behind it. 0, HR_EAGAIN, HR_ECLOSED. */
int hr_worker__hold(hr_worker *w, hr_worker_gate *g);
/* Wait (up to timeout_ms) until the worker is at the gate. 0 or HR_ETIMEDOUT. */
int hr_worker__gate_wait_entered(hr_worker_gate *g, int timeout_ms);
void hr_worker__gate_open(hr_worker_gate *g);

/* Validate a POST /api/notifications body as hr_worker_submit does, without
 * a worker: 0, HR_EINVAL with a reason in err, or HR_ENOMEM. Pure
 * (tests/fuzz/fuzz_http.c). */
int hr_worker__parse(const char *json, size_t len, char *err, size_t errlen);

#endif /* HERALD_WORKER_INT_H */
