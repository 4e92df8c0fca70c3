/*
 * sys_event.c: the actors module's only direct use of eventfd (OS calls
 * stay in sys_*.c files): the pollable "mail is waiting" descriptor behind hr_mailbox_fd.
 * A non-blocking eventfd is readable exactly while its counter is non-zero;
 * mailbox.c raises it on the empty -> non-empty edge and clears it when the
 * queue empties, both under the mailbox's mutex. Any thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "actors/actor_impl.h"

int
hr_sys__event_open(int *fd)
{
	int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (e < 0)
		return errno == ENOMEM ? HR_ENOMEM : HR_EIO;
	*fd = e;
	return 0;
}

void
hr_sys__event_raise(int fd)
{
	uint64_t one = 1;

	/* EAGAIN would need a counter near 2^64: it stays readable either way. */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void
hr_sys__event_clear(int fd)
{
	uint64_t v;

	/* Reads the whole counter; EAGAIN means it was clear already. */
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

void
hr_sys__event_close(int fd)
{
	if (fd >= 0)
		(void)close(fd);
}
