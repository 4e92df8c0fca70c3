/* helper_redis.h: a private redis-server per test (see helper_redis.c). */
#ifndef HERALD_TEST_HELPER_REDIS_H
#define HERALD_TEST_HELPER_REDIS_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct hr_test_redis {
	pid_t pid;
	int port;
	char url[64];    /* redis://127.0.0.1:<port> */
	redisContext *c; /* a connection of the test's own, for raw commands */
} hr_test_redis;

/* Start redis-server on a free loopback port (or `port` if > 0) and connect
 * r->c to it. 0, or -1 if it did not answer within 5 s. */
int hr_test_redis_start(hr_test_redis *r);
int hr_test_redis_start_on(hr_test_redis *r, int port);
/* Kill it (SIGKILL) and reap it; safe to call twice. */
void hr_test_redis_stop(hr_test_redis *r);

#endif
