/*
 * sys_thread.c: the actors module's only direct use of pthreads (OS calls
 * stay in sys_*.c files): start, name and join actor threads. Called from whichever thread
 * spawns or joins an actor.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "actors/actor_impl.h"

_Static_assert(sizeof(pthread_t) <= sizeof(unsigned long), "pthread_t must fit");

int
hr_sys__thread_start(hr_sys_thread *t, const char *name, void *(*fn)(void *), void *arg)
{
	pthread_t id;
	int rv;

	t->_started = false;
	if ((rv = pthread_create(&id, NULL, fn, arg)) != 0)
		return HR_EIO;
	if (name != NULL && name[0] != '\0') {
		/* Linux allows 15 bytes plus the NUL; a failure only loses the name. */
		char buf[16];
		strncpy(buf, name, sizeof(buf) - 1);
		buf[sizeof(buf) - 1] = '\0';
		(void)pthread_setname_np(id, buf);
	}
	t->_id = (unsigned long)id;
	t->_started = true;
	return 0;
}

void
hr_sys__thread_join(hr_sys_thread *t)
{
	if (!t->_started)
		return;
	(void)pthread_join((pthread_t)t->_id, NULL);
	t->_started = false;
}

bool
hr_sys__thread_is_self(const hr_sys_thread *t)
{
	return t->_started && pthread_equal((pthread_t)t->_id, pthread_self());
}

void
hr_sys__sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

double
hr_sys__mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
