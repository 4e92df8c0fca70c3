/*
 * helper_redis.c: start and stop a private redis-server for a test, on a free
 * loopback port, with no persistence. Linked into every tests/layer test;
 * only the hr_test_redis_* names are exported. Single-threaded test code.
 */
#define _POSIX_C_SOURCE 200809L

#include "helper_redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(a);
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0
	    && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int
hr_test_redis_start_on(hr_test_redis *r, int port)
{
	memset(r, 0, sizeof(*r));
	r->pid = -1;
	if (port <= 0 && (port = free_port()) <= 0)
		return -1;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1",
		    "--save", "", "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	r->pid = pid;
	r->port = port;
	snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", port);
	/* Wait (bounded: 5 s) until it answers PING. */
	for (int i = 0; i < 500; i++) {
		struct timeval tv = { 0, 200000 };
		redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (c != NULL && c->err == 0) {
			redisReply *rep = redisCommand(c, "PING");
			bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
			freeReplyObject(rep);
			if (ok) {
				r->c = c;
				return 0;
			}
		}
		if (c != NULL)
			redisFree(c);
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	hr_test_redis_stop(r);
	return -1;
}

int
hr_test_redis_start(hr_test_redis *r)
{
	/* A port another test grabbed between probe and bind: try again. */
	for (int i = 0; i < 5; i++)
		if (hr_test_redis_start_on(r, 0) == 0)
			return 0;
	return -1;
}

void
hr_test_redis_stop(hr_test_redis *r)
{
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	r->pid = -1;
}
