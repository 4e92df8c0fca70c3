/*
 * sys_net.c: the transport's direct OS calls: SO_REUSEPORT listeners and
 * the probes that keep them from joining someone else's port, accept4, the
 * stop pipe, random bytes. Called from the main thread (listen,
 * pipe) and from I/O threads (accept). Kept apart so that only this file
 * needs _GNU_SOURCE.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/transport_impl.h"

/*
 * A TCP socket bound to host:port, with SO_REUSEADDR (a TIME_WAIT left by an
 * earlier node does not count as a user of the port) and, when reuseport,
 * SO_REUSEPORT; listening when listen_too. The one-line error names the
 * address as the ready line does (IPv6 in brackets), and an address that is
 * taken says "address in use" (docs/PROTOCOL.md "Running a node").
 */
static int
bound_socket(const char *host, uint16_t port, bool reuseport, bool listen_too, int *fd_out,
    uint16_t *bound, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, e;
	bool v6 = strchr(host, ':') != NULL;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto fail_host;
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto fail_host;
		sl = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "--listen %s%s%s:%u: socket: %s", v6 ? "[" : "", host,
		    v6 ? "]" : "", port, strerror(e));
		return -e;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
	    || (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0))
		goto fail_sys;
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || (listen_too && listen(fd, 1024) != 0))
		goto fail_sys;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		goto fail_sys;
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                        : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
fail_sys:
	e = errno;
	if (e == EADDRINUSE)
		snprintf(err, errlen, "%s%s%s:%u: address in use", v6 ? "[" : "", host,
		    v6 ? "]" : "", port);
	else
		snprintf(err, errlen, "--listen %s%s%s:%u: %s", v6 ? "[" : "", host, v6 ? "]" : "",
		    port, strerror(e));
	close(fd);
	return -e;
fail_host:
	snprintf(err, errlen, "--listen: bad address '%s'", host);
	return HR_EINVAL;
}

int
hr_sys__listen(
    const char *host, uint16_t port, int *fd_out, uint16_t *bound, char *err, size_t errlen)
{
	return bound_socket(host, port, true, true, fd_out, bound, err, errlen);
}

/*
 * Without SO_REUSEPORT the kernel refuses this bind while any socket listens
 * on the address, a reuse-port group of another herald included (with
 * SO_REUSEADDR on both sides, only a socket in LISTEN conflicts). The probe
 * binds and does not listen: no connection can land on it.
 */
int
hr_sys__listen_probe(
    const char *host, uint16_t port, int *fd_out, uint16_t *bound, char *err, size_t errlen)
{
	return bound_socket(host, port, false, false, fd_out, bound, err, errlen);
}

int
hr_sys__accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

int
hr_sys__pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 ? 0 : -errno;
}

void
hr_sys__random(void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			/* never expected on Linux >= 3.17; fall back to something */
			for (size_t i = 0; i < len; i++)
				p[i] = (unsigned char)(rand() ^ (int)(uintptr_t)p);
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

void
hr_sys__close(int fd)
{
	if (fd >= 0)
		close(fd);
}

ssize_t
hr_sys__write(int fd, const void *p, size_t n)
{
	return write(fd, p, n);
}

ssize_t
hr_sys__read(int fd, void *p, size_t n)
{
	return read(fd, p, n);
}

int
hr_sys__wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);
	return n < 0 ? -errno : n;
}
