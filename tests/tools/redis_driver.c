/*
 * redis_driver.c: drives herald's Redis channel layer from stdin, one
 * operation per line, one result line per operation on stdout (flushed, so a
 * test can interleave it with channels_redis). Used by
 * tests/layer/test_redis_differential.py. Single-threaded.
 *
 *   redis_driver --redis URL[,URL...]
 *   config [capacity N] [expiry S] [group_expiry S] [cc GLOB N]... -> ok
 *   send CH JSON            -> ok | full | badname | error <reason>
 *   receive CH              -> <message as JSON> | empty | ...
 *   receive_targets KEY     -> <t1>,<t2>... <message as JSON> | empty | ...
 *   group_add G CH / group_discard G CH -> ok | ...
 *   group_send G JSON       -> ok delivered=N full=M | ...
 *   new_channel [PREFIX]    -> the new name
 *   client_prefix           -> 32 hex chars
 *   stats                   -> expired=.. full=.. group_expired=.. bad=..
 *   flush                   -> ok
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_driver.h"

#define MAX_HOSTS 16

static hr_layer *layer;
static const char *hosts[MAX_HOSTS];
static size_t n_hosts;

static void
run(char *line)
{
	char *rest = line;
	char *op = driver_next_tok(&rest);
	int rv;
	hr_msg *m = NULL;
	if (op == NULL || op[0] == '\0' || op[0] == '#')
		return;
	if (strcmp(op, "config") == 0) {
		driver_print_result(
		    driver_configure(&layer, &hr_layer_redis_ops, hosts, n_hosts, rest, NULL));
		return;
	}
	if (layer == NULL) {
		puts("error no layer");
		return;
	}
	if (strcmp(op, "send") == 0) {
		char *ch = driver_next_tok(&rest);
		if (ch == NULL || (rv = driver_json_msg(rest, &m)) != 0) {
			puts("error input");
			return;
		}
		driver_print_result(hr_layer_send(layer, ch, m));
		hr_msg_unref(m);
	} else if (strcmp(op, "receive") == 0) {
		char *ch = driver_next_tok(&rest);
		rv = ch != NULL ? hr_layer_receive(layer, ch, 0, &m) : HR_EINVAL;
		if (rv == 0)
			driver_print_msg(m);
		else
			driver_print_result(rv);
		hr_msg_unref(m);
	} else if (strcmp(op, "receive_targets") == 0) {
		char *ch = driver_next_tok(&rest);
		hr_layer_targets t;
		hr_layer_targets_init(&t);
		rv = ch != NULL ? hr_layer_receive_targets(layer, ch, 0, &m, &t) : HR_EINVAL;
		if (rv == 0) {
			for (size_t i = 0; i < t.n; i++)
				printf("%s%s", i ? "," : "", t.names[i]);
			putchar(' ');
			driver_print_msg(m);
		} else {
			driver_print_result(rv);
		}
		hr_msg_unref(m);
		hr_layer_targets_fini(&t);
	} else if (strcmp(op, "group_add") == 0 || strcmp(op, "group_discard") == 0) {
		char *g = driver_next_tok(&rest), *ch = driver_next_tok(&rest);
		if (g == NULL || ch == NULL) {
			puts("error input");
			return;
		}
		driver_print_result(op[6] == 'a' ? hr_layer_group_add(layer, g, ch)
		                                 : hr_layer_group_discard(layer, g, ch));
	} else if (strcmp(op, "group_send") == 0) {
		driver_group_send_op(layer, rest);
	} else if (strcmp(op, "new_channel") == 0) {
		char *p = driver_next_tok(&rest);
		char name[HR_NAME_MAX + 1];
		if ((rv = hr_layer_new_channel(layer, p, name, sizeof(name))) == 0)
			puts(name);
		else
			driver_print_result(rv);
	} else if (strcmp(op, "client_prefix") == 0) {
		char cp[64];
		if ((rv = hr_layer_client_prefix(layer, cp, sizeof(cp))) == 0)
			puts(cp);
		else
			driver_print_result(rv);
	} else if (strcmp(op, "stats") == 0) {
		hr_layer_stats st;
		hr_layer_get_stats(layer, &st);
		printf("expired=%llu full=%llu group_expired=%llu bad=%llu\n",
		    (unsigned long long)st.expired, (unsigned long long)st.full,
		    (unsigned long long)st.group_expired, (unsigned long long)st.bad);
	} else if (strcmp(op, "flush") == 0) {
		driver_print_result(hr_layer_flush(layer));
	} else {
		puts("error unknown op");
	}
}

int
main(int argc, char **argv)
{
	int rv = driver_redis_loop(argc, argv, "redis_driver", hosts, &n_hosts, MAX_HOSTS, run);
	hr_layer_destroy(layer);
	driver_fini();
	return rv;
}
