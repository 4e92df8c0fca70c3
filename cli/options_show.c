/*
 * options_show.c: what `herald serve` prints about its options: --help (the
 * option table's rows) and --check (the effective configuration, read back
 * from the parsed hr_config, with the secrets masked). Main thread only.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "cli/cli_impl.h"
#include "cli/options_int.h"

void
hr_cli__serve_usage(FILE *f)
{
	fputs("usage: herald serve [--check] [options]\n"
	      "With --check, print the effective configuration (secrets as ***) and exit 0,\n"
	      "or the one-line error and exit 2: nothing listens. --help: this text.\n"
	      "Every option may also be set as HERALD_<OPTION> in the environment\n"
	      "(comma lists for repeatable ones) or as `option = value` in --config FILE;\n"
	      "flags beat environment beat file.\n",
	    f);
	for (size_t i = 0; i < hr_cli__n_options; i++)
		fprintf(f, "  --%s %s\n", hr_cli__options[i].name, hr_cli__options[i].help);
}

/* A Redis URL with its password, if any, as ***: redis://:***@host:port/db. */
static void
show_redis(FILE *f, const char *name, const char *url)
{
	const char *sep = strstr(url, "://");
	const char *at = sep ? strrchr(sep + 3, '@') : NULL;
	if (at == NULL)
		fprintf(f, "%s = %s\n", name, url);
	else
		fprintf(f, "%s = %.*s:***@%s\n", name, (int)(sep + 3 - url), url, at + 1);
}

static void
show_str(FILE *f, const char *name, const char *v, bool secret)
{
	if (v == NULL)
		fprintf(f, "# %s: not set\n", name);
	else
		fprintf(f, "%s = %s\n", name, secret ? "***" : v);
}

/* One option read back from the config; false when this file does not know
 * the option (the caller then shows the value as given). */
static bool
show_known(FILE *f, const char *name, const hr_config *c)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	if (strcmp(name, "listen") == 0) {
		for (size_t i = 0; i < c->n_listen; i++) {
			const hr_listen_addr *a = &c->listen[i];
			bool v6 = strchr(a->host, ':') != NULL;
			fprintf(f, v6 ? "listen = [%s]:%u\n" : "listen = %s:%u\n", a->host,
			    (unsigned)a->port);
		}
	} else if (strcmp(name, "threads") == 0) {
		fprintf(f, "threads = %u\n", c->threads);
	} else if (strcmp(name, "layer") == 0) {
		fprintf(f, "layer = %s\n", c->layer_redis ? "redis" : "memory");
	} else if (strcmp(name, "redis") == 0) {
		for (size_t i = 0; i < c->n_redis; i++)
			show_redis(f, name, c->redis[i]);
		if (c->n_redis == 0)
			fprintf(f, "# redis: not set\n");
	} else if (strcmp(name, "prefix") == 0) {
		show_str(f, name, c->prefix, false);
	} else if (strcmp(name, "capacity") == 0) {
		fprintf(f, "capacity = %zu\n", c->capacity);
	} else if (strcmp(name, "channel-capacity") == 0) {
		for (size_t i = 0; i < c->n_channel_capacity; i++)
			fprintf(f, "channel-capacity = %s=%zu\n", c->channel_capacity[i].glob,
			    c->channel_capacity[i].capacity);
		if (c->n_channel_capacity == 0)
			fprintf(f, "# channel-capacity: not set\n");
	} else if (strcmp(name, "expiry") == 0) {
		fprintf(f, "expiry = %g\n", c->expiry);
	} else if (strcmp(name, "group-expiry") == 0) {
		fprintf(f, "group-expiry = %g\n", c->group_expiry);
	} else if (strcmp(name, "jwt-secret") == 0) {
		show_str(f, name, c->jwt_secret, true);
	} else if (strcmp(name, "api-key") == 0) {
		show_str(f, name, c->api_key, true);
	} else if (strcmp(name, "allowed-origins") == 0) {
		show_str(f, name, c->allowed_origins, false);
	} else if (strcmp(name, "max-message") == 0) {
		fprintf(f, "max-message = %zu\n", c->max_message);
	} else if (strcmp(name, "rate-limit") == 0) {
		fprintf(f, "rate-limit = %g\n", c->rate_limit);
	} else if (strcmp(name, "max-connections") == 0) {
		fprintf(f, "max-connections = %zu\n", c->max_connections);
	} else if (strcmp(name, "tls-cert") == 0) {
		show_str(f, name, c->tls_cert, false);
	} else if (strcmp(name, "tls-key") == 0) {
		show_str(f, name, c->tls_key, false);
	} else if (strcmp(name, "log-level") == 0 && (unsigned)c->log_level < 4) {
		fprintf(f, "log-level = %s\n", levels[c->log_level]);
	} else if (strcmp(name, "event-loop") == 0 && hr_event_loop_name(c->event_loop) != NULL) {
		fprintf(f, "event-loop = %s\n", hr_event_loop_name(c->event_loop));
	} else if (strcmp(name, "history") == 0) {
		for (size_t i = 0; i < c->n_history; i++)
			fprintf(f, "history = %s=%u:%u\n", c->history[i].glob, c->history[i].size,
			    c->history[i].ttl_s);
		if (c->n_history == 0)
			fprintf(f, "history = off\n");
	} else if (strcmp(name, "io-uring") == 0) {
		fprintf(f, "io-uring = %s\n", c->io_uring ? "on" : "off");
	} else if (strcmp(name, "log-format") == 0) {
		fprintf(f, "log-format = %s\n", c->log_format == HR_LOG_JSON ? "json" : "text");
	} else if (strcmp(name, "access-log") == 0) {
		fprintf(f, "access-log = %s\n", c->access_log ? "on" : "off");
	} else if (strcmp(name, "trusted-proxies") == 0) {
		char list[HR_MAX_PROXIES * 48];
		if (c->trusted_proxies.n == 0)
			fprintf(f, "# trusted-proxies: not set\n");
		else if (hr_proxy_list_format(&c->trusted_proxies, list, sizeof(list)) == 0)
			fprintf(f, "trusted-proxies = %s\n", list);
		else
			return false;
	} else {
		return false;
	}
	return true;
}

/* An option whose name says it holds a secret. */
static bool
secret_name(const char *name)
{
	return strstr(name, "secret") != NULL || strstr(name, "password") != NULL
	    || strcmp(name, "api-key") == 0;
}

int
hr_cli__serve_print(FILE *f, const hr_cli_serve *s)
{
	const char *file = NULL;
	for (size_t i = 0; i < hr_cli__n_options; i++)
		if (hr_cli__options[i].apply == NULL)
			file = s->_given[i];
	fprintf(f,
	    "# herald %s: the effective configuration of `herald serve`\n"
	    "# (flags beat environment beat file; config file: %s)\n",
	    HERALD_VERSION, file ? file : "none");
	for (size_t i = 0; i < hr_cli__n_options; i++) {
		const char *name = hr_cli__options[i].name;
		if (hr_cli__options[i].apply == NULL || show_known(f, name, &s->cfg))
			continue;
		/* Not read back here: as given, or the built-in default. */
		if (s->_given[i] == NULL)
			fprintf(f, "# %s: default\n", name);
		else if (secret_name(name))
			fprintf(f, "%s = ***\n", name);
		else
			fprintf(f, "%s = %s\n", name, s->_given[i]);
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : HR_EIO;
}
