/*
 * bridge_driver.c: several herald nodes' Redis side in one process, for
 * tests/actors/test_bridge_history.py: each node is a Redis layer (its own
 * client_prefix), a router with one recording consumer, and a Redis bridge
 * with shared history rules; one local member joins each group given.
 *
 *   bridge_driver --redis URL[,URL...] --nodes N --groups G[,G...]
 *                 --history GLOB=SIZE:TTL[,...] [--router]
 *
 * Prints `ready` once every bridge runs; then, as they come, one line per
 * sequenced group_send a node's bridge hands on:
 *   ev NODE GROUP EPOCH OFFSET JSON    (the on_event seam; default)
 *   fan NODE JSON                      (--router: the bridge's default path,
 *                                       what the node's consumer receives)
 * On end of stdin: `stats NODE sequenced=.. hist_events=.. memberships=..`
 * per node (after its bridge stopped), then `done`.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor_impl.h"
#include "actors/bridge.h"
#include "helper_driver.h"

#define MAX_NODES 8
#define MAX_HOSTS 16
#define MAX_RULES 16

typedef struct node {
	int idx;
	hr_layer *layer;
	hr_actor *consumer;
	hr_router *router;
	hr_bridge *bridge;
} node;

static node nodes[MAX_NODES];

static void
print_json(hr_msg *m)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	if (hr_codec_msgpack_to_json(hr_msg_data(m), hr_msg_len(m), &b) == 0)
		printf("%.*s\n", (int)hr_buf_len(&b), (const char *)hr_buf_data(&b));
	else
		printf("{}\n");
	hr_buf_fini(&b);
}

static void
on_hevent(void *arg, const hr_layer_hevent *ev)
{
	node *n = arg;
	flockfile(stdout);
	printf("ev %d %s %s %llu ", n->idx, ev->group, ev->epoch, (unsigned long long)ev->offset);
	print_json(ev->msg);
	fflush(stdout);
	funlockfile(stdout);
}

static void
on_fanout(hr_actor *self, void *state, hr_mail *m)
{
	node *n = state;
	hr_fanout *f = m->p1;
	flockfile(stdout);
	printf("fan %d ", n->idx);
	print_json(f->event);
	fflush(stdout);
	funlockfile(stdout);
	hr_fanout_free(f);
}

static void
drop_fanout(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_CONSUMER_EVENT)
		hr_fanout_free(m->p1);
}

static const hr_actor_fn consumer_handlers[] = { on_fanout };

static void
die(const char *what, int rv)
{
	fprintf(stderr, "bridge_driver: %s: %s\n", what, hr_strerror(rv));
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *hosts[MAX_HOSTS];
	size_t n_hosts = 0, n_rules = 0;
	hr_bridge_history_rule rules[MAX_RULES];
	char *redis = NULL, *groups = NULL, *history = NULL;
	int n_nodes = 1, rv;
	bool via_router = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
			redis = argv[++i];
		else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
			n_nodes = atoi(argv[++i]);
		else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
			groups = argv[++i];
		else if (strcmp(argv[i], "--history") == 0 && i + 1 < argc)
			history = argv[++i];
		else if (strcmp(argv[i], "--router") == 0)
			via_router = true;
		else
			redis = NULL, i = argc;
	}
	if (redis == NULL || groups == NULL || history == NULL || n_nodes < 1
	    || n_nodes > MAX_NODES) {
		fprintf(stderr,
		    "usage: bridge_driver --redis URL[,URL...] --nodes N --groups "
		    "G[,G...] --history GLOB=SIZE:TTL[,...] [--router]\n");
		return 2;
	}
	for (char *u = strtok(redis, ","); u != NULL && n_hosts < MAX_HOSTS; u = strtok(NULL, ","))
		hosts[n_hosts++] = u;
	for (char *r = strtok(history, ","); r != NULL && n_rules < MAX_RULES;
	     r = strtok(NULL, ",")) {
		char *eq = strchr(r, '='), *colon = eq != NULL ? strchr(eq, ':') : NULL;
		if (colon == NULL)
			die("--history", HR_EINVAL);
		*eq = '\0';
		rules[n_rules].glob = r;
		rules[n_rules].size = strtoul(eq + 1, NULL, 10);
		rules[n_rules].ttl = strtod(colon + 1, NULL);
		n_rules++;
	}
	for (int i = 0; i < n_nodes; i++) {
		node *n = &nodes[i];
		n->idx = i;
		hr_layer_opts o;
		hr_layer_opts_default(&o);
		o.hosts = hosts;
		o.n_hosts = n_hosts;
		if ((rv = hr_layer_create(&n->layer, &hr_layer_redis_ops, &o)) != 0)
			die("layer", rv);
		hr_actor_spec s = { .name = "test-consumer",
			.mailbox_capacity = 8192,
			.state = n,
			.handlers = consumer_handlers,
			.n_handlers = 1,
			.drop = drop_fanout };
		if ((rv = hr_actor_spawn(&n->consumer, &s)) != 0)
			die("consumer", rv);
		if ((rv = hr_router_create(&n->router, NULL, &n->consumer, 1, 8192)) != 0)
			die("router", rv);
		hr_bridge_opts bo = {
			.redis = n->layer,
			.router = n->router,
			.group_expiry = 86400,
			.history = rules,
			.n_history = n_rules,
			.on_event = via_router ? NULL : on_hevent,
			.on_event_arg = n,
		};
		if ((rv = hr_bridge_create(&n->bridge, &bo)) != 0)
			die("bridge", rv);
		char *copy = strdup(groups);
		if (copy == NULL)
			die("groups", HR_ENOMEM);
		for (char *g = strtok(copy, ","); g != NULL; g = strtok(NULL, ",")) {
			hr_member m = { .thread = 0, .consumer = 0, .conn = 1 };
			if ((rv = hr_router_group_add(n->router, g, m, 1000)) != 0)
				die("group_add", rv);
		}
		free(copy);
	}
	printf("ready\n");
	fflush(stdout);
	char line[256];
	while (fgets(line, sizeof(line), stdin) != NULL)
		;
	for (int i = 0; i < n_nodes; i++)
		hr_bridge_stop(nodes[i].bridge);
	for (int i = 0; i < n_nodes; i++) {
		node *n = &nodes[i];
		hr_bridge_stats st;
		hr_bridge_get_stats(n->bridge, &st);
		flockfile(stdout);
		printf("stats %d sequenced=%llu hist_events=%llu memberships=%llu\n", i,
		    (unsigned long long)st.sequenced, (unsigned long long)st.hist_events,
		    (unsigned long long)st.memberships);
		funlockfile(stdout);
		hr_router_destroy(n->router);
		hr_bridge_destroy(n->bridge);
		hr_actor_join(n->consumer);
		hr_layer_destroy(n->layer);
	}
	printf("done\n");
	return 0;
}
