/*
 * actor_impl.h: private declarations of the actors module (never included
 * from outside actors/ and tests/actors/).
 *
 * The thread primitives live in sys_thread.c, the file of this module that
 * talks to the OS directly; the mailbox is nng's.
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
 * allows), under SCHED_BATCH (sys_thread.c says why). HR_EIO when the thread
 * cannot be created. */
int hr_sys__thread_start(hr_sys_thread *t, const char *name, void *(*fn)(void *), void *arg);
/* Run fn(arg) on this thread under SCHED_BATCH, then restore its policy: the
 * threads that fn starts with inherited attributes are batch threads too. */
void hr_sys__as_batch(void (*fn)(void *), void *arg);
/* Wait for a started thread. No-op for one that never started. */
void hr_sys__thread_join(hr_sys_thread *t);
/* True on the thread itself. */
bool hr_sys__thread_is_self(const hr_sys_thread *t);
/* A wake-up a thread sleeps on beside other descriptors (an eventfd): open
 * (-1 on failure), wake (any thread; wake-ups before the sleep are kept),
 * close (-1 ok). */
int hr_sys__wake_open(void);
void hr_sys__wake(int fd);
void hr_sys__wake_close(int fd);
/* Sleep until wake or one of fds[0, n) (-1: none) is readable, or for
 * timeout_ms; ready[i] says which were. The wake-up is consumed. 0, or -1
 * if poll failed (n above HR_SYS_WAIT_MAX too). */
#define HR_SYS_WAIT_MAX 64
int hr_sys__wait_fds(int wake, const int *fds, bool *ready, size_t n, int timeout_ms);
/* Sleep (EINTR resumes). */
void hr_sys__sleep_ms(int ms);

/* The largest capacity hr_mailbox_create accepts: nng's largest receive
 * buffer (NNG_OPT_RECVBUF, in messages), which must hold `capacity` one-mail
 * messages. */
#define HR_MAILBOX_MAX_CAPACITY 8192u
/* Mails per nng message when a batch scope collects them (mailbox.c). */
#define HR_MAILBOX_BATCH 64u

#endif /* HERALD_ACTOR_IMPL_H */
