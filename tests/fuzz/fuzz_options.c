/*
 * fuzz_options.c: libFuzzer harness for `herald serve` option parsing
 * (hr_cli__parse_serve): flags, HERALD_* environment and the --config file,
 * with their precedence and every value parser (ports, URLs, globs, origin
 * lists, numbers, log levels).
 *
 * Input: lines. "E:NAME=value" is an environment entry; a line "[file]"
 * starts the config file (everything after it, written to a private
 * temporary file and passed as --config); every other line is one argv
 * entry. Properties: the parse returns 0 or HR_EINVAL with a one-line
 * reason; a parsed configuration is within the documented bounds; nothing
 * leaks either way.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_impl.h"

#include "fuzz.h"

#define MAX_ARGS 64

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char *argv[MAX_ARGS + 3], *envp[MAX_ARGS + 1];
	int argc = 0, envc = 0;
	char err[512];
	hr_cli_serve s;

	if (size > 16384)
		return 0;
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (strlen(buf) != size) { /* argv and environ hold no NUL bytes */
		free(buf);
		return 0;
	}
	char *file = strstr(buf, "[file]\n");
	if (file != NULL) {
		*file = '\0';
		file += 7;
	}
	for (char *line = buf; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strncmp(line, "E:", 2) == 0) {
			if (envc < MAX_ARGS)
				envp[envc++] = line + 2;
		} else if (argc < MAX_ARGS) {
			argv[argc++] = line;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (file != NULL) {
		if (path[0] == '\0')
			snprintf(
			    path, sizeof(path), "/tmp/herald-fuzz-options-%d.ini", (int)getpid());
		FILE *f = fopen(path, "wb");
		if (f == NULL) {
			free(buf);
			return 0;
		}
		fwrite(file, 1, strlen(file), f);
		fclose(f);
		argv[argc++] = "--config";
		argv[argc++] = path;
	}
	argv[argc] = NULL;
	envp[envc] = NULL;

	hr_cli__serve_init(&s);
	err[0] = '\0';
	int rv = hr_cli__parse_serve(&s, argc, argv, envp, err, sizeof(err));
	if (rv == 0) {
		const hr_config *c = &s.cfg;
		CHECK(c->max_message > 0);
		CHECK(c->rate_limit > 0);
		CHECK((c->tls_cert == NULL) == (c->tls_key == NULL));
	} else {
		CHECK(rv == HR_EINVAL);
		size_t el = strnlen(err, sizeof(err));
		CHECK(el > 0 && el < sizeof(err) && memchr(err, '\n', el) == NULL);
	}
	hr_cli__serve_fini(&s);
	free(buf);
	return 0;
}
