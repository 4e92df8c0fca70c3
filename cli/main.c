/*
 * main.c: the `herald` command: serve, send, token, help, --version.
 * Runs on the main thread; the node's threads are started by `serve`, and
 * SIGINT/SIGTERM reach the node through hr_node_stop, SIGHUP through
 * hr_node_reload (both async-signal-safe).
 *
 * Exit status: 0 success, 1 runtime failure (or a refused `send`), 2 bad
 * usage or a node that could not start (docs/PROTOCOL.md "Commands").
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_impl.h"
#include "transport/transport.h"

extern char **environ;

static hr_node *volatile g_node;

static void
usage(FILE *f)
{
	fputs("usage: herald <command> [options]\n"
	      "  serve [options]   run a node (herald serve --help lists the options)\n"
	      "  serve --check [options]\n"
	      "                    print the effective configuration and exit\n"
	      "  send [--url URL] [--api-key K] [--type T] [--cacert FILE] [--timeout S]\n"
	      "       (--group G | --user U | --channel C) JSON\n"
	      "                    publish through a node's HTTP API (http or https)\n"
	      "  token --secret S --user U [--ttl S]\n"
	      "                    print a signed HS256 JWT for the WebSocket routes\n"
	      "  help              this text\n"
	      "  --version         print the version\n",
	    f);
}

static void
on_signal(int sig)
{
	hr_node *n = g_node;
	if (n == NULL)
		return; /* SIGHUP before the node runs or while it is destroyed */
	if (sig == SIGHUP)
		hr_node_reload(n);
	else
		hr_node_stop(n);
}

/* on_signal for sig, with these sa_flags. */
static void
catch_signal(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

static int
serve_main(int argc, char **argv)
{
	hr_cli_serve s;
	char err[512];
	hr_cli__serve_init(&s);
	int rc = hr_cli__parse_serve(&s, argc, argv, environ, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "herald: %s\n", err);
		hr_cli__serve_fini(&s);
		return 2;
	}
	if (s.help || s.check) {
		/* --check: the options are loaded exactly as for serving; nothing
		 * listens. */
		if (s.help)
			hr_cli__serve_usage(stdout);
		else
			rc = hr_cli__serve_print(stdout, &s);
		hr_cli__serve_fini(&s);
		return rc == 0 ? 0 : 1;
	}
	hr_log_set_level(s.cfg.log_level);
	hr_log_set_format(s.cfg.log_format);

	/* A peer closing a socket must be an error return, not a dead process. */
	signal(SIGPIPE, SIG_IGN);
	/* SIGHUP never stops a node: it reloads the TLS pair (or only logs).
	 * Every thread the node starts inherits it blocked, so that it always
	 * lands on this thread, which waits for it in hr_node_run, never in
	 * the middle of an lws or nng wait; one that comes before the node
	 * exists waits until it does. */
	sigset_t hupset;
	sigemptyset(&hupset);
	sigaddset(&hupset, SIGHUP);
	catch_signal(SIGHUP, SA_RESTART);
	pthread_sigmask(SIG_BLOCK, &hupset, NULL);
	hr_node *n = NULL;
	rc = hr_node_create(&n, &s.cfg, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "herald: %s\n", err[0] ? err : hr_strerror(rc));
		hr_cli__serve_fini(&s);
		return 2;
	}
	g_node = n;
	pthread_sigmask(SIG_UNBLOCK, &hupset, NULL);
	/* A second signal takes the default action: a stuck shutdown can still
	 * be interrupted from the terminal. */
	catch_signal(SIGINT, SA_RESETHAND);
	catch_signal(SIGTERM, SA_RESETHAND);

	rc = hr_node_run(n);

	/* No signal may touch the node while it is destroyed. */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	g_node = NULL;
	hr_node_destroy(n);
	hr_cli__serve_fini(&s);
	if (rc != 0) {
		fprintf(stderr, "herald: %s\n", hr_strerror(rc));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("herald %s\n", HERALD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return serve_main(argc - 2, argv + 2);
	if (strcmp(cmd, "send") == 0)
		return hr_cli__send_main(argc - 2, argv + 2, environ);
	if (strcmp(cmd, "token") == 0)
		return hr_cli__token_main(argc - 2, argv + 2, environ);
	fprintf(stderr, "herald: unknown command '%s' (try herald help)\n", cmd);
	return 2;
}
