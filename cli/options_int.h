/*
 * options_int.h: what the three files of `herald serve`'s options share:
 * options.c (the option table, each option's check, the cross-checks),
 * options_load.c (flags, environment and config file into raw entries) and
 * options_show.c (--help and --check). Nothing outside cli/ includes it.
 * Main thread only.
 */
#ifndef HERALD_CLI_OPTIONS_INT_H
#define HERALD_CLI_OPTIONS_INT_H

#include <stdarg.h>
#include <stdio.h>

#include "cli/cli_impl.h"

/* inih's compiled-in line buffer (INI_MAX_LINE, 200 bytes with the NUL). */
#define INI_LINE_MAX 199
#define MAX_ENTRIES 512

enum source { SRC_FILE = 1, SRC_ENV = 2, SRC_FLAG = 3 };

struct parse;
struct option;
/* Check v and store it where o says; label names the source in messages. */
typedef int (*apply_fn)(struct parse *p, const struct option *o, const char *label, const char *v);
/* What a string option's value must look like (apply_string). */
typedef int (*check_fn)(struct parse *p, const char *label, const char *v);

/*
 * One option, stated once: its name is the flag (--name), the environment
 * variable (HERALD_NAME, '-' as '_') and the file key. The generic appliers
 * read their destination and bounds from the row; the others know their own.
 */
struct option {
	const char *name;            /* without the leading "--" */
	bool repeatable;             /* comma lists in env and file, values accumulate */
	apply_fn apply;              /* NULL only for --config, which is collected, not applied */
	size_t dest;                 /* offsetof(hr_config, field), for the generic appliers */
	unsigned long long min, max; /* bounds of a number (max only for apply_positive) */
	check_fn check;              /* apply_string's check */
	const char *bare;            /* a flag given without a value means this (--access-log) */
	const char *help;
};

struct entry {
	int opt;
	enum source src;
	char *val;
};

struct parse {
	hr_cli_serve *s;
	char *err;
	size_t errlen;
	struct entry entries[MAX_ENTRIES];
	size_t n_entries;
	const char *config_path; /* borrowed from argv or envp */
	enum source config_src;
	const char *file_label; /* the config file's name, for messages */
	int layer;              /* -1 unset, 0 memory, 1 redis */
	const char *layer_label;
	const char *tls_cert_label;
	const char *tls_key_label;
	bool first_error_kept; /* inih callback: an error is already in err */
	bool listen_applied;   /* the default --listen has been replaced */
	bool history_applied;  /* the default --history rules have been replaced */
};

/* Write a one-line reason into p->err; returns HR_EINVAL. */
static inline int
fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (p->errlen > 0)
		vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return HR_EINVAL;
}

/* Every option, in --help order (options.c). */
extern const struct option *const hr_cli__options;
extern const size_t hr_cli__n_options;

/* HERALD_<NAME> of o, upper case, '_' for '-', into out. */
void hr_cli__env_name(const struct option *o, char *out, size_t size);

/* For each option, check and apply the values of its winning source, then
 * the cross-checks (layer and redis, the TLS pair). 0, or HR_EINVAL with the
 * reason in p->err. */
int hr_cli__apply_all(struct parse *p);

#endif /* HERALD_CLI_OPTIONS_INT_H */
