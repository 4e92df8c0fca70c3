/*
 * config.c: docs/PROTOCOL.md's defaults for hr_config. Main thread only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transport/transport.h"

void
hr_config_default(hr_config *c)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	snprintf(c->listen[0].host, sizeof(c->listen[0].host), "127.0.0.1");
	c->listen[0].port = 8000;
	snprintf(c->listen[0].shown, sizeof(c->listen[0].shown), "localhost:8000");
	snprintf(c->listen[1].host, sizeof(c->listen[1].host), "::1");
	c->listen[1].port = 8000;
	snprintf(c->listen[1].shown, sizeof(c->listen[1].shown), "localhost:8000");
	c->n_listen = 2;
	c->threads = cores > 0 ? (unsigned)(cores > 64 ? 64 : cores) : 1;
	c->layer_redis = false;
	c->prefix = "asgi";
	c->capacity = 100;
	c->expiry = 60;
	c->group_expiry = 86400;
	c->max_message = 65536;
	c->rate_limit = 20;
	c->max_connections = 0;
	c->ping_interval = 20;
	c->ping_timeout = 30;
	c->log_level = HR_LOG_INFO;
	c->event_loop = HR_EVLOOP_DEFAULT;
	c->io_uring = true;
	c->demo = true;
	c->log_format = HR_LOG_TEXT;
	c->access_log = false;
	c->trusted_proxies.n = 0;
	c->history[0] = (hr_history_rule) { .glob = "notifications", .size = 1000, .ttl_s = 300 };
	c->history[1] = (hr_history_rule) { .glob = "user_*", .size = 100, .ttl_s = 300 };
	c->n_history = 2;
}

static const char *const evloop_names[HR_N_EVLOOP] = { "poll", "libev", "libuv" };

const char *
hr_event_loop_name(hr_event_loop e)
{
	return (unsigned)e < HR_N_EVLOOP ? evloop_names[e] : NULL;
}

int
hr_event_loop_parse(const char *s, hr_event_loop *out)
{
	for (unsigned i = 0; i < HR_N_EVLOOP; i++) {
		if (strcmp(s, evloop_names[i]) == 0) {
			*out = (hr_event_loop)i;
			return 0;
		}
	}
	return HR_EINVAL;
}
