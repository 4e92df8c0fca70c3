/*
 * node.c: a running herald node: builds the layer, the consumer actors, the
 * router and the I/O threads, prints the ready lines, waits for a stop
 * request and tears everything down in reverse order of creation.
 *
 * Threads: create/run/destroy on the main thread. hr_node_stop and
 * hr_node_reload may be called from anywhere, a signal handler included:
 * each sets an atomic flag and write()s one byte to a pipe that hr_node_run
 * polls, nothing else; the main thread does the work (a reload: check the
 * TLS pair, then mail every I/O thread).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <unistd.h>

#include "transport/transport_impl.h"

/* an I/O thread gets 2 s of grace for its clients (iothread.c); past this the
 * process leaves without tearing down */
#define STOP_DEADLINE_S 4

static void
bridge_log(int level, const char *line)
{
	hr_log(level <= 1 ? HR_LOG_WARN : HR_LOG_INFO, "%s", line);
}

/* The bridge's history thread (bridge.h): one group_send sequenced in Redis,
 * in offset order per group. It is posted to the router, which appends it to
 * the group's ring with that position and delivers it to the local members;
 * the post waits at most 1 s for room in the router's mailbox (this thread
 * is no loop thread: a bounded wait only slows the log's reading, and a
 * post that still fails leaves an offset missing, which closes the group's
 * recover connections with 1013 when the next one arrives). */
static void
node_hist_event(void *arg, const hr_layer_hevent *ev)
{
	hr_node *n = arg;
	int rv = hr_router_group_send_at(
	    n->router, ev->group, ev->msg, ev->epoch, ev->offset, 0, NULL, NULL, 1000);
	if (rv != 0) {
		char line[HR_NAME_MAX + 96];
		snprintf(line, sizeof(line), "history: group %s offset %llu not delivered: %s",
		    ev->group, (unsigned long long)ev->offset, hr_strerror(rv));
		bridge_log(1, line);
	}
}

/* "redis://a, redis://b" for the one-line error of an unreachable Redis. */
static void
fmt_hosts(const hr_config *cfg, char *out, size_t outlen)
{
	size_t at = 0;
	out[0] = '\0';
	for (size_t i = 0; i < cfg->n_redis && at < outlen; i++) {
		int k = snprintf(out + at, outlen - at, "%s%s", i ? ", " : "", cfg->redis[i]);
		if (k < 0)
			break;
		at += (size_t)k;
	}
}

static void
fmt_listen(const hr_listen_addr *a, uint16_t port, char *out, size_t outlen)
{
	bool v6 = strchr(a->host, ':') != NULL;
	snprintf(out, outlen, "%s%s%s:%u", v6 ? "[" : "", a->host, v6 ? "]" : "", port);
}

/*
 * Refuse an address in use before any socket joins a reuse-port group: with
 * SO_REUSEPORT a second node would silently take half of the connections.
 * Every address is probed while the earlier probes stay bound, so that an
 * address given twice is refused too; a probe on port 0 picks the port the
 * listeners then share. The probes close before the groups bind (a socket
 * without SO_REUSEPORT would keep them out). Another process may still bind
 * in the instant between the two: its listener then fails our bind, or
 * ours fails its bind, and one of the two says "address in use".
 */
static int
probe_listeners(hr_node *n, char *err, size_t errlen)
{
	const hr_config *cfg = &n->cfg;
	int fds[HR_MAX_LISTEN];
	size_t j, k;
	int rv = 0;

	for (j = 0; j < cfg->n_listen; j++) {
		rv = hr_sys__listen_probe(
		    cfg->listen[j].host, cfg->listen[j].port, &fds[j], &n->ports[j], err, errlen);
		if (rv != 0)
			break;
	}
	for (k = 0; k < j; k++)
		hr_sys__close(fds[k]);
	return rv;
}

/* Every listener of every thread first, so that a bad --listen fails
 * before any thread exists; each address's threads share the probed port. */
static int
open_listeners(hr_node *n, char *err, size_t errlen)
{
	const hr_config *cfg = &n->cfg;
	int rv;

	if ((rv = probe_listeners(n, err, errlen)) != 0)
		return rv;
	for (size_t j = 0; j < cfg->n_listen; j++) {
		for (unsigned i = 0; i < n->n_threads; i++) {
			hr_iothread *t = &n->threads[i];
			uint16_t bound;
			rv = hr_sys__listen(cfg->listen[j].host, n->ports[j], &t->listen_fd[j],
			    &bound, err, errlen);
			if (rv != 0)
				return rv;
			t->n_listen = j + 1;
		}
	}
	return 0;
}

/* The channel layer of --layer (memory, or Redis at --redis). */
static int
create_layer(hr_node *n, char *err, size_t errlen)
{
	const hr_config *cfg = &n->cfg;
	hr_layer_opts lo;
	int rv;

	hr_layer_opts_default(&lo);
	lo.prefix = cfg->prefix ? cfg->prefix : "asgi";
	lo.capacity = cfg->capacity;
	lo.channel_capacity = cfg->channel_capacity;
	lo.n_channel_capacity = cfg->n_channel_capacity;
	lo.expiry = cfg->expiry;
	lo.group_expiry = cfg->group_expiry;
	if (cfg->layer_redis) {
		lo.hosts = cfg->redis;
		lo.n_hosts = cfg->n_redis;
	}
	if ((rv = hr_layer_create(
	         &n->layer, cfg->layer_redis ? &hr_layer_redis_ops : &hr_layer_memory_ops, &lo))
	    != 0) {
		char hosts[256];
		fmt_hosts(cfg, hosts, sizeof(hosts));
		if (cfg->layer_redis)
			snprintf(err, errlen, "redis %s: %s", hosts, hr_strerror(rv));
		else
			snprintf(err, errlen, "layer: %s", hr_strerror(rv));
	}
	return rv;
}

int
hr_node_create(hr_node **out, const hr_config *cfg, char *err, size_t errlen)
{
	hr_node *n;
	hr_mailbox *io[HR_MAX_THREADS];
	unsigned char rnd[16];
	int rv;

	if (cfg->threads < 1 || cfg->threads > HR_MAX_THREADS) {
		snprintf(err, errlen, "--threads must be between 1 and %d", HR_MAX_THREADS);
		return HR_EINVAL;
	}
	if (cfg->n_listen < 1 || cfg->n_listen > HR_MAX_LISTEN) {
		snprintf(err, errlen, "--listen: between 1 and %d addresses", HR_MAX_LISTEN);
		return HR_EINVAL;
	}
	if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together");
		return HR_EINVAL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return HR_ENOMEM;
	}
	if (cfg->allowed_origins != NULL
	    && (rv = hr_origins_parse(cfg->allowed_origins, &n->origins, err, errlen)) != 0) {
		free(n);
		return rv;
	}
	n->cfg = *cfg;
	n->stop_pipe[0] = n->stop_pipe[1] = -1;
	atomic_init(&n->stop_requested, false);
	atomic_init(&n->reload_requested, false);
	n->n_threads = cfg->threads;
	n->started_at = hr_clock_mono();
	hr_log_set_level(cfg->log_level);
	hr_log__lws_init(cfg->log_level);

	hr_sys__random(rnd, sizeof(rnd));
	for (int i = 0; i < 16; i++)
		snprintf(n->node_prefix + 2 * i, 3, "%02x", rnd[i]);
	for (unsigned i = 0; i < n->n_threads; i++) {
		n->threads[i].node = n;
		n->threads[i].index = i;
		for (size_t j = 0; j < HR_MAX_LISTEN; j++)
			n->threads[i].listen_fd[j] = -1;
	}
	if ((rv = hr_sys__pipe(n->stop_pipe)) != 0) {
		snprintf(err, errlen, "pipe: %s", hr_strerror(rv));
		goto fail;
	}

	if ((rv = open_listeners(n, err, errlen)) != 0 || (rv = create_layer(n, err, errlen)) != 0)
		goto fail;
	/* Connection channels live in this node's process key. */
	if (cfg->layer_redis
	    && (rv = hr_layer_client_prefix(n->layer, n->node_prefix, sizeof(n->node_prefix)))
	        != 0) {
		snprintf(err, errlen, "redis: %s", hr_strerror(rv));
		goto fail;
	}
	for (unsigned i = 0; i < n->n_threads; i++) {
		if ((rv = hr_iothread__mailbox(&n->threads[i])) != 0) {
			snprintf(err, errlen, "mailbox: %s", hr_strerror(rv));
			goto fail;
		}
		io[i] = n->threads[i].mbox;
	}
	if ((rv = hr_consumers_create(&n->consumers, io, n->n_threads)) != 0) {
		snprintf(err, errlen, "consumers: %s", hr_strerror(rv));
		goto fail;
	}
	/* With Redis the router knows only local members; the bridge carries
	 * the rest (a router holding the Redis layer would send popped messages
	 * back to Redis). */
	if ((rv = hr_router_create(&n->router, cfg->layer_redis ? NULL : n->layer,
	         hr_consumers_actors(n->consumers), HR_N_CONSUMERS, 8192))
	    != 0) {
		snprintf(err, errlen, "router: %s", hr_strerror(rv));
		goto fail;
	}
	/* Recovery history (actors/history.h). Memory: the router numbers
	 * group_sends. Redis: positions come from Redis' sequencer
	 * (docs/RECOVERY.md): the router only federates group_sends of history
	 * groups (external) and the bridge hands each sequenced one back with its
	 * epoch and offset (node_hist_event). */
	bool hist = !cfg->history_off && cfg->n_history > 0;
	if (hist
	    && (rv = hr_router_set_history(
	            n->router, cfg->history, cfg->n_history, cfg->layer_redis, 1000))
	        != 0) {
		snprintf(err, errlen, "history: %s", hr_strerror(rv));
		goto fail;
	}
	if (cfg->layer_redis) {
		size_t nh = hist ? cfg->n_history : 0;
		for (size_t i = 0; i < nh; i++)
			n->bridge_hist[i] = (hr_bridge_history_rule) {
				.glob = n->cfg.history[i].glob,
				.size = n->cfg.history[i].size,
				.ttl = n->cfg.history[i].ttl_s,
			};
		hr_bridge_opts bo = {
			.redis = n->layer,
			.router = n->router,
			.group_expiry = cfg->group_expiry,
			.log = bridge_log,
			.history = nh > 0 ? n->bridge_hist : NULL,
			.n_history = nh,
			.on_event = nh > 0 ? node_hist_event : NULL,
			.on_event_arg = n,
		};
		if ((rv = hr_bridge_create(&n->bridge, &bo)) != 0) {
			char hosts[256];
			fmt_hosts(cfg, hosts, sizeof(hosts));
			snprintf(err, errlen, "redis %s: %s", hosts,
			    rv == HR_EIO ? "cannot connect" : hr_strerror(rv));
			goto fail;
		}
	}
	if ((rv = hr_worker_create(&n->worker, n->router, 0)) != 0) {
		snprintf(err, errlen, "worker: %s", hr_strerror(rv));
		goto fail;
	}
	for (unsigned i = 0; i < n->n_threads; i++) {
		if ((rv = hr_iothread__start(&n->threads[i])) != 0) {
			if (cfg->tls_cert != NULL)
				snprintf(err, errlen, "--tls-cert %s / --tls-key %s: cannot load",
				    cfg->tls_cert, cfg->tls_key);
			else
				snprintf(err, errlen, "I/O thread %u: %s", i, hr_strerror(rv));
			goto fail;
		}
	}
	*out = n;
	return 0;
fail:
	hr_node_stop(n);
	for (unsigned i = 0; i < n->n_threads; i++)
		hr_iothread__post_stop(&n->threads[i]);
	hr_node_destroy(n);
	return rv;
}

/* The bytes of hr_node_stop and hr_node_reload: their flags say what to do. */
static void
drain_pipe(hr_node *n)
{
	char buf[64];
	while (hr_sys__read(n->stop_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/*
 * SIGHUP. libwebsockets 4.1.6 can swap a vhost's certificate while it runs:
 * lws_tls_cert_updated(context, certpath, keypath, ...) re-reads both files
 * into the SSL_CTX of every vhost of that context created with those paths
 * (lib/tls/tls-network.c; the memory copies it takes are used only when the
 * files cannot be read). SSL objects copy the certificate when they are
 * made, so connections already open keep theirs. It must run on the
 * context's own thread and its outcome is not returned, so the pair is
 * checked here first and each I/O thread is sent a mail to apply it.
 * Between this check and the threads' reads the files could change again;
 * a pair replaced that fast is read as it then is.
 */
static void
reload(hr_node *n)
{
	char err[512];

	if (n->cfg.tls_cert == NULL) {
		hr_log(HR_LOG_INFO, "SIGHUP: no TLS, nothing to reload");
		return;
	}
	if (hr_tls_check_pair(
	        "--tls-cert", n->cfg.tls_cert, "--tls-key", n->cfg.tls_key, err, sizeof(err))
	    != 0) {
		hr_log(HR_LOG_ERROR, "SIGHUP: %s: keeping the previous certificate", err);
		return;
	}
	for (unsigned i = 0; i < n->n_threads; i++)
		n->reload_post[i] = true;
	hr_log(HR_LOG_INFO, "SIGHUP: reloading --tls-cert %s and --tls-key %s for new connections",
	    n->cfg.tls_cert, n->cfg.tls_key);
}

/* Post the reload mails never waiting on a full mailbox; true while some
 * are left to post. */
static bool
post_reloads(hr_node *n)
{
	bool left = false;
	for (unsigned i = 0; i < n->n_threads; i++) {
		if (!n->reload_post[i])
			continue;
		hr_mail m = { .kind = HR_MAIL_IO_TLS_RELOAD };
		int rv = hr_mailbox_post(n->threads[i].mbox, &m, 0);
		if (rv == HR_EAGAIN)
			left = true;
		else
			n->reload_post[i] = false; /* posted, or the thread has gone */
	}
	return left;
}

int
hr_node_run(hr_node *n)
{
	char where[96];

	for (size_t j = 0; j < n->cfg.n_listen; j++) {
		fmt_listen(&n->cfg.listen[j], n->ports[j], where, sizeof(where));
		printf("herald %s listening on %s://%s (threads=%u, layer=%s)\n", HERALD_VERSION,
		    n->cfg.tls_cert ? "https" : "http", where, n->n_threads,
		    n->cfg.layer_redis ? "redis" : "memory");
	}
	fflush(stdout);
	hr_log(HR_LOG_INFO, "node %s ready (event loop %s)", n->node_prefix,
	    hr_event_loop_name(n->cfg.event_loop));

	bool posting = false;
	while (!atomic_load(&n->stop_requested)) {
		/* retry soon while an I/O thread's mailbox was full */
		int rv = hr_sys__wait_readable(n->stop_pipe[0], posting ? 100 : 1000);
		if (rv < 0 && rv != -EINTR)
			break;
		drain_pipe(n);
		if (atomic_exchange(&n->reload_requested, false))
			reload(n);
		posting = post_reloads(n);
	}
	hr_log(HR_LOG_INFO, "stopping");
	for (unsigned i = 0; i < n->n_threads; i++)
		hr_iothread__post_stop(&n->threads[i]);
	/* A stop must never hang on a stuck I/O thread (one spinning inside
	 * lws never reads its mailbox): after STOP_DEADLINE_S, say so and
	 * leave without the orderly teardown. */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += STOP_DEADLINE_S;
	for (unsigned i = 0; i < n->n_threads; i++) {
		if (hr_iothread__join_until(&n->threads[i], &deadline) != 0) {
			hr_log(HR_LOG_ERROR, "I/O thread %u did not stop within %d s: exiting now",
			    i, STOP_DEADLINE_S);
			fflush(NULL);
			_exit(1);
		}
	}
	hr_log(HR_LOG_INFO, "I/O threads stopped");
	return 0;
}

void
hr_node_stop(hr_node *n)
{
	if (n == NULL)
		return;
	atomic_store(&n->stop_requested, true);
	if (n->stop_pipe[1] >= 0) {
		char b = 's';
		(void)!hr_sys__write(n->stop_pipe[1], &b, 1);
	}
}

void
hr_node_reload(hr_node *n)
{
	if (n == NULL)
		return;
	atomic_store(&n->reload_requested, true);
	if (n->stop_pipe[1] >= 0) {
		char b = 'r';
		(void)!hr_sys__write(n->stop_pipe[1], &b, 1);
	}
}

void
hr_node_destroy(hr_node *n)
{
	if (n == NULL)
		return;
	/* Reverse creation order: I/O threads (stopped by hr_node_run or by
	 * create's failure path), then the router (its pending replies fire and
	 * post to the still-existing I/O mailboxes), then the consumers, whose
	 * late posts fail fast once the I/O mailboxes are closed. */
	for (unsigned i = 0; i < n->n_threads; i++)
		hr_iothread__join(&n->threads[i]);
	for (unsigned i = 0; i < n->n_threads; i++)
		if (n->threads[i].mbox != NULL)
			hr_mailbox_close(n->threads[i].mbox);
	hr_bridge_stop(n->bridge);    /* nothing more from Redis to the router */
	hr_worker_destroy(n->worker); /* its last group_sends still reach the router */
	hr_router_destroy(n->router);
	hr_bridge_destroy(n->bridge); /* after the router, whose hooks post to it;
	                               * removes this node's memberships */
	hr_consumers_destroy(n->consumers);
	for (unsigned i = 0; i < n->n_threads; i++)
		hr_iothread__fini(&n->threads[i]);
	hr_layer_destroy(n->layer);
	hr_sys__close(n->stop_pipe[0]);
	hr_sys__close(n->stop_pipe[1]);
	free(n);
}
