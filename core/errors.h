/*
 * errors.h: herald's error codes, hr_strerror() and HR_ASSERT, shared by
 * every module (core.h). Pure; any thread.
 */
#ifndef HERALD_CORE_ERRORS_H
#define HERALD_CORE_ERRORS_H

#include <errno.h>

/*
 * Every fallible function returns 0 or a negative HR_E* code. Where an errno
 * exists the code is -errno; herald's own codes live below -1000.
 */
#define HR_OK 0
#define HR_ENOMEM (-ENOMEM)
#define HR_EINVAL (-EINVAL)
#define HR_EAGAIN (-EAGAIN)       /* would block: empty, or mailbox full */
#define HR_ETIMEDOUT (-ETIMEDOUT) /* a timed wait ran out */
#define HR_ECANCELED (-ECANCELED) /* callback fired because of shutdown */
#define HR_ENOENT (-ENOENT)       /* no such channel, group, key */
#define HR_EMSGSIZE (-EMSGSIZE)   /* over a size limit */
#define HR_ECLOSED (-ESHUTDOWN)   /* mailbox or actor is closed */
#define HR_EBADMSG (-EBADMSG)     /* malformed msgpack or JSON */
#define HR_ENOTSUP (-ENOTSUP)     /* operation not offered by a backend */
#define HR_EIO (-EIO)             /* I/O or library failure */
#define HR_EFULL (-1001)          /* channel full (Channels' ChannelFull) */
#define HR_EBADNAME (-1002)       /* invalid channel or group name */
#define HR_EDEPTH (-1003)         /* nesting deeper than HR_CODEC_MAX_DEPTH */
#define HR_EUTF8 (-1004)          /* string is not valid UTF-8 */
#define HR_ETYPE (-1005)          /* value of the wrong type (non-string key, no "type") */

/* A static string naming err; never NULL. */
const char *hr_strerror(int err);

#if defined(HERALD_ASSERTS)
#include <stdio.h>
#include <stdlib.h>
#define HR_ASSERT(x)                                                                               \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#else
#define HR_ASSERT(x) ((void)0)
#endif

#endif /* HERALD_CORE_ERRORS_H */
