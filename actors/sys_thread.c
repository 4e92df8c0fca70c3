/*
 * sys_thread.c: the actors module's only direct use of pthreads (OS calls
 * stay in sys_*.c files): start, name and join actor threads. Called from whichever thread
 * spawns or joins an actor.
 *
 * Actor threads, and nng's own threads (mailbox.c starts them through
 * hr_sys__as_batch), run under SCHED_BATCH: a batch thread that wakes never
 * preempts the thread running on its core. Every post to a mailbox wakes
 * one of nng's task threads, and then the receiving actor; under the
 * default policy each wake-up could preempt an I/O thread in the middle of
 * its sends, and on a core shared with the clients' side that starved the
 * readers, whose extra wake-ups the sending core then paid for in the
 * kernel (bench/README.md, "Actors under SCHED_BATCH": 0.72x of the ring
 * build's deliveries/s at N=1,000 before, 1.04x after, interleaved rounds).
 * The I/O threads keep the default policy, so they still preempt the
 * actors. Where batch is refused, threads start with the default policy.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "actors/actor_impl.h"

_Static_assert(sizeof(pthread_t) <= sizeof(unsigned long), "pthread_t must fit");

struct create {
	pthread_t *id;
	void *(*fn)(void *);
	void *arg;
	int rv;
};

static void
create_thread(void *arg)
{
	struct create *c = arg;
	c->rv = pthread_create(c->id, NULL, c->fn, c->arg);
}

int
hr_sys__thread_start(hr_sys_thread *t, const char *name, void *(*fn)(void *), void *arg)
{
	pthread_t id;
	int rv;

	t->_started = false;
	/* pthread_attr_setschedpolicy takes no SCHED_BATCH: the thread
	 * inherits it from its creator, batch for the call */
	struct create c = { .id = &id, .fn = fn, .arg = arg };
	hr_sys__as_batch(create_thread, &c);
	if ((rv = c.rv) != 0)
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
hr_sys__as_batch(void (*fn)(void *), void *arg)
{
	pthread_t self = pthread_self();
	struct sched_param old, sp = { .sched_priority = 0 };
	int policy;
	bool restore = pthread_getschedparam(self, &policy, &old) == 0
	    && pthread_setschedparam(self, SCHED_BATCH, &sp) == 0;

	fn(arg);
	if (restore)
		(void)pthread_setschedparam(self, policy, &old);
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

int
hr_sys__wake_open(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void
hr_sys__wake(int fd)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is full, so a wake-up is pending anyway */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void
hr_sys__wake_close(int fd)
{
	if (fd >= 0)
		(void)close(fd);
}

int
hr_sys__wait_fds(int wake, const int *fds, bool *ready, size_t n, int timeout_ms)
{
	struct pollfd p[HR_SYS_WAIT_MAX + 1];
	size_t k = 0;
	if (n > HR_SYS_WAIT_MAX)
		return -1;
	p[k++] = (struct pollfd) { .fd = wake, .events = POLLIN };
	for (size_t i = 0; i < n; i++)
		p[k++] = (struct pollfd) { .fd = fds[i], .events = POLLIN };
	int rv = poll(p, k, timeout_ms);
	for (size_t i = 0; i < n; i++)
		ready[i] = rv > 0 && fds[i] >= 0
		    && (p[i + 1].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
	if (rv > 0 && (p[0].revents & POLLIN) != 0) {
		uint64_t v;
		while (read(wake, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	}
	return rv < 0 && errno != EINTR ? -1 : 0;
}
