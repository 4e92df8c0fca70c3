/*
 * actor_impl.h: private declarations of the actors module (never included
 * from outside actors/ and tests/actors/).
 *
 * The thread primitives live in sys_thread.c and the mailbox's eventfd in
 * sys_event.c, the files of this module that talk to the OS directly
 * (the OS calls stay in the sys_*.c files).
 */
#ifndef HERALD_ACTOR_IMPL_H
#define HERALD_ACTOR_IMPL_H

#include "actors/actor.h"

/* A joinable thread. */
typedef struct hr_sys_thread {
	unsigned long _id; /* pthread_t, stored opaquely */
	bool _started;
} hr_sys_thread;

/* Start fn(arg) on a new thread named `name` (truncated to the 15 bytes Linux
 * allows). HR_EIO when the thread cannot be created. */
int hr_sys__thread_start(hr_sys_thread *t, const char *name, void *(*fn)(void *), void *arg);
/* Wait for a started thread. No-op for one that never started. */
void hr_sys__thread_join(hr_sys_thread *t);
/* True on the thread itself. */
bool hr_sys__thread_is_self(const hr_sys_thread *t);
/* Sleep (EINTR resumes); monotonic clock in seconds. */
void hr_sys__sleep_ms(int ms);
double hr_sys__mono_s(void);

/* The mailbox's pollable fd (sys_event.c, an eventfd): readable while raised.
 * open: HR_ENOMEM, HR_EIO. raise/clear never fail in a way a caller can act
 * on; clear on a clear fd is a no-op. */
int hr_sys__event_open(int *fd);
void hr_sys__event_raise(int fd);
void hr_sys__event_clear(int fd);
void hr_sys__event_close(int fd); /* < 0 ok */

/* The largest capacity hr_mailbox_create accepts (the ring is allocated up
 * front: 8192 slots are 256 KiB). */
#define HR_MAILBOX_MAX_CAPACITY 8192u

#endif /* HERALD_ACTOR_IMPL_H */
