/*
 * main.c: the `herald` command: serve, send, token, help, --version.
 * Runs on the main thread; the node's threads are started by `serve`.
 */
#include <stdio.h>
#include <string.h>

#include "transport/transport.h"

static void
usage(FILE *f)
{
	fputs("usage: herald serve [options] | send ... | token ... | help | --version\n", f);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("herald %s\n", HERALD_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "herald: unknown command '%s'\n", argv[1]);
	return 2;
}
