/*
 * layer_driver.c: drives the memory channel layer from a script on stdin,
 * one operation per line, one result line per operation on stdout. Used by
 * tests/layer/test_differential.py to run the same script through herald and
 * through Channels' InMemoryChannelLayer. Single-threaded.
 *
 *   config [capacity N] [expiry S] [group_expiry S] [cc GLOB N]...
 *                          (re)create the layer; cc rules in order      -> ok
 *   send CH JSON           -> ok | full | badname | error ...
 *   receive CH             -> <message as JSON> | empty | badname
 *   group_add G CH         -> ok | badname
 *   group_discard G CH     -> ok | badname
 *   group_send G JSON      -> ok delivered=N full=M | badname
 *   new_channel PREFIX VAR -> the new name (later "$VAR" tokens stand for it)
 *                             | badname
 *   capacity CH            -> the capacity that applies to CH
 *   check_channel NAME / check_group NAME -> ok | badname
 *   flush                  -> ok
 * Tokens are separated by one space; "%XX" in a name token is a byte in hex.
 * Lines starting with '#' and empty lines produce no output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_driver.h"

#define MAX_LINE 65536
#define MAX_VARS 64

static hr_layer *layer;
static struct {
	char name[32];
	char value[HR_NAME_MAX + 1];
} vars[MAX_VARS];
static size_t n_vars;

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode a name token into out (NUL-terminated; an embedded %00 truncates,
 * which the name rules would refuse anyway, so it becomes an invalid byte). */
static void
decode_name(const char *tok, char *out, size_t outlen)
{
	if (tok[0] == '$') {
		for (size_t i = 0; i < n_vars; i++)
			if (strcmp(vars[i].name, tok + 1) == 0) {
				snprintf(out, outlen, "%s", vars[i].value);
				return;
			}
	}
	size_t o = 0;
	for (size_t i = 0; tok[i] != '\0' && o + 1 < outlen; i++) {
		int h, l;
		if (tok[i] == '%' && (h = hexval(tok[i + 1])) >= 0
		    && (l = hexval(tok[i + 2])) >= 0) {
			char c = (char)(h * 16 + l);
			out[o++] = c == '\0' ? (char)0x01 : c;
			i += 2;
		} else {
			out[o++] = tok[i];
		}
	}
	out[o] = '\0';
}

static int
configure(char *rest)
{
	return driver_configure(&layer, &hr_layer_memory_ops, NULL, 0, rest, decode_name);
}

static void
run(char *line)
{
	char *rest = line;
	char *op = driver_next_tok(&rest);
	char a[512], b[512];
	hr_msg *m = NULL;
	int rv;

	if (strcmp(op, "config") == 0) {
		driver_print_result(configure(rest) == 0 ? 0 : HR_EINVAL);
		return;
	}
	if (layer == NULL && configure(NULL) != 0) {
		puts("error no layer");
		return;
	}
	if (strcmp(op, "send") == 0 || strcmp(op, "group_send") == 0) {
		char *name = driver_next_tok(&rest);
		if (name == NULL || rest == NULL) {
			puts("error usage");
			return;
		}
		decode_name(name, a, sizeof(a));
		if ((rv = driver_json_msg(rest, &m)) != 0) {
			printf("error bad json: %s\n", hr_strerror(rv));
			return;
		}
		if (op[0] == 's') {
			driver_print_result(hr_layer_send(layer, a, m));
		} else {
			driver_group_send(layer, a, m);
		}
		hr_msg_unref(m);
	} else if (strcmp(op, "receive") == 0) {
		char *name = driver_next_tok(&rest);
		if (name == NULL) {
			puts("error usage");
			return;
		}
		decode_name(name, a, sizeof(a));
		rv = hr_layer_receive(layer, a, 0, &m);
		if (rv != 0) {
			driver_print_result(rv);
			return;
		}
		driver_print_msg(m);
		hr_msg_unref(m);
	} else if (strcmp(op, "group_add") == 0 || strcmp(op, "group_discard") == 0) {
		char *g = driver_next_tok(&rest), *c = driver_next_tok(&rest);
		if (g == NULL || c == NULL) {
			puts("error usage");
			return;
		}
		decode_name(g, a, sizeof(a));
		decode_name(c, b, sizeof(b));
		if (op[6] == 'a')
			driver_print_result(hr_layer_group_add(layer, a, b));
		else
			driver_print_result(hr_layer_group_discard(layer, a, b));
	} else if (strcmp(op, "new_channel") == 0) {
		char *p = driver_next_tok(&rest), *var = driver_next_tok(&rest);
		if (p == NULL || var == NULL || strlen(var) >= sizeof(vars[0].name)) {
			puts("error usage");
			return;
		}
		decode_name(p, a, sizeof(a));
		char name[HR_NAME_MAX + 1];
		rv = hr_layer_new_channel(layer, a, name, sizeof(name));
		if (rv != 0) {
			driver_print_result(rv);
			return;
		}
		size_t i;
		for (i = 0; i < n_vars && strcmp(vars[i].name, var) != 0; i++)
			;
		if (i == MAX_VARS) {
			puts("error too many variables");
			return;
		}
		if (i == n_vars)
			n_vars++;
		snprintf(vars[i].name, sizeof(vars[i].name), "%s", var);
		snprintf(vars[i].value, sizeof(vars[i].value), "%s", name);
		puts(name);
	} else if (strcmp(op, "capacity") == 0) {
		char *name = driver_next_tok(&rest);
		if (name == NULL) {
			puts("error usage");
			return;
		}
		decode_name(name, a, sizeof(a));
		printf("%zu\n", hr_layer_capacity(layer, a));
	} else if (strcmp(op, "check_channel") == 0 || strcmp(op, "check_group") == 0) {
		char *name = driver_next_tok(&rest);
		decode_name(name ? name : "", a, sizeof(a));
		driver_print_result(op[6] == 'c' ? hr_name_check_channel(a, strlen(a))
		                                 : hr_name_check_group(a, strlen(a)));
	} else if (strcmp(op, "flush") == 0) {
		driver_print_result(hr_layer_flush(layer));
	} else {
		printf("error unknown op %s\n", op);
	}
}

int
main(void)
{
	static char line[MAX_LINE];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		run(line);
		fflush(stdout);
	}
	hr_layer_destroy(layer);
	driver_fini();
	return 0;
}
