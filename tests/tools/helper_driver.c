/*
 * helper_driver.c: the parts the channel-layer drivers share (see
 * helper_driver.h). Single-threaded.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "helper_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 32

static hr_capacity_rule rules[MAX_RULES];
static char *rule_globs[MAX_RULES];
static size_t n_rules;

char *
driver_next_tok(char **p)
{
	char *s = *p;
	if (s == NULL)
		return NULL;
	char *sp = strchr(s, ' ');
	if (sp != NULL) {
		*sp = '\0';
		*p = sp + 1;
	} else {
		*p = NULL;
	}
	return s;
}

void
driver_fini(void)
{
	for (size_t i = 0; i < n_rules; i++)
		free(rule_globs[i]);
	n_rules = 0;
}

int
driver_configure(hr_layer **layer, const hr_layer_ops *ops, const char *const *hosts,
    size_t n_hosts, char *rest, void (*decode)(const char *tok, char *out, size_t outlen))
{
	hr_layer_destroy(*layer);
	*layer = NULL;
	driver_fini();
	hr_layer_opts o;
	hr_layer_opts_default(&o);
	o.hosts = hosts;
	o.n_hosts = n_hosts;
	char *tok;
	while ((tok = driver_next_tok(&rest)) != NULL) {
		char *val = driver_next_tok(&rest);
		if (val == NULL)
			return HR_EINVAL;
		if (strcmp(tok, "capacity") == 0) {
			o.capacity = strtoul(val, NULL, 10);
		} else if (strcmp(tok, "expiry") == 0) {
			o.expiry = strtod(val, NULL);
		} else if (strcmp(tok, "group_expiry") == 0) {
			o.group_expiry = strtod(val, NULL);
		} else if (strcmp(tok, "cc") == 0) {
			char *n = driver_next_tok(&rest);
			if (n == NULL || n_rules == MAX_RULES)
				return HR_EINVAL;
			char glob[512];
			if (decode != NULL)
				decode(val, glob, sizeof(glob));
			if ((rule_globs[n_rules] = strdup(decode != NULL ? glob : val)) == NULL)
				return HR_ENOMEM;
			rules[n_rules].glob = rule_globs[n_rules];
			rules[n_rules].capacity = strtoul(n, NULL, 10);
			n_rules++;
		} else {
			return HR_EINVAL;
		}
	}
	o.channel_capacity = rules;
	o.n_channel_capacity = n_rules;
	return hr_layer_create(layer, ops, &o);
}

int
driver_json_msg(const char *json, hr_msg **out)
{
	if (json == NULL)
		return HR_EINVAL;
	hr_buf b;
	hr_buf_init(&b, 0);
	int rv = hr_codec_json_to_msgpack(json, strlen(json), true, &b, NULL, 0);
	if (rv == 0)
		rv = hr_buf_finish(&b, out);
	hr_buf_fini(&b);
	return rv;
}

void
driver_print_result(int rv)
{
	if (rv == 0)
		puts("ok");
	else if (rv == HR_EFULL)
		puts("full");
	else if (rv == HR_EBADNAME)
		puts("badname");
	else if (rv == HR_EAGAIN || rv == HR_ETIMEDOUT)
		puts("empty");
	else
		printf("error %s\n", hr_strerror(rv));
}

void
driver_print_msg(hr_msg *m)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	int rv = hr_codec_msgpack_to_json(hr_msg_data(m), hr_msg_len(m), &b);
	if (rv == 0)
		printf("%.*s\n", (int)hr_buf_len(&b), (const char *)hr_buf_data(&b));
	else
		printf("error msgpack->json: %s\n", hr_strerror(rv));
	hr_buf_fini(&b);
}

void
driver_group_send(hr_layer *layer, const char *group, hr_msg *m)
{
	hr_group_send_result res;
	int rv = hr_layer_group_send(layer, group, m, &res);
	if (rv == 0)
		printf("ok delivered=%zu full=%zu\n", res.delivered, res.full);
	else
		driver_print_result(rv);
}

void
driver_group_send_op(hr_layer *layer, char *rest)
{
	char *g = driver_next_tok(&rest);
	hr_msg *m = NULL;
	if (g == NULL || driver_json_msg(rest, &m) != 0) {
		puts("error input");
		return;
	}
	driver_group_send(layer, g, m);
	hr_msg_unref(m);
}

int
driver_redis_loop(int argc, char **argv, const char *name, const char **hosts, size_t *n_hosts,
    size_t max, void (*run)(char *line))
{
	static char line[1 << 16];
	if (argc != 3 || strcmp(argv[1], "--redis") != 0) {
		fprintf(stderr, "usage: %s --redis URL[,URL...]\n", name);
		return 2;
	}
	for (char *u = strtok(argv[2], ","); u != NULL && *n_hosts < max; u = strtok(NULL, ","))
		hosts[(*n_hosts)++] = u;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		run(line);
		fflush(stdout);
	}
	return 0;
}
