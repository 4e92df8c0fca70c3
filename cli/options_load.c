/*
 * options_load.c: the three sources of `herald serve`'s options (flags,
 * HERALD_* environment variables, the --config file read with inih) into raw
 * entries, which options.c then judges (see options.c's opening comment for
 * the two passes and the file format). Main thread only.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_impl.h"
#include "cli/options_int.h"

/* Option index by name; '_' matches '-' so that file keys may use either. */
static int
find_option(const char *name, size_t n)
{
	for (size_t i = 0; i < hr_cli__n_options; i++) {
		const char *o = hr_cli__options[i].name;
		if (strlen(o) != n)
			continue;
		size_t k = 0;
		while (k < n && (name[k] == o[k] || (name[k] == '_' && o[k] == '-')))
			k++;
		if (k == n)
			return (int)i;
	}
	return -1;
}

static int
add_entry(struct parse *p, int opt, enum source src, const char *val, size_t n)
{
	if (n > HR_CLI_MAX_VALUE)
		return HR_EMSGSIZE;
	if (p->n_entries >= MAX_ENTRIES)
		return HR_ENOMEM;
	char *c = malloc(n + 1);
	if (c == NULL)
		return HR_ENOMEM;
	memcpy(c, val, n);
	c[n] = '\0';
	p->entries[p->n_entries].opt = opt;
	p->entries[p->n_entries].src = src;
	p->entries[p->n_entries].val = c;
	p->n_entries++;
	return 0;
}

/* Does a list item (trimmed) start a new value? For --redis only where a URL
 * starts: a redis+sentinel:// URL has commas of its own. */
static bool
item_starts(int opt, const char *item, size_t n)
{
	static const char *const schemes[] = { "redis://", "redis+sentinel://" };
	if (strcmp(hr_cli__options[opt].name, "redis") != 0)
		return true;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (n >= strlen(schemes[i]) && strncmp(item, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

/* Add a value from env or file: repeatable options split on commas, with the
 * spaces around each item trimmed (an item that does not start a value, see
 * item_starts, stays with the one before it). */
static int
add_value(struct parse *p, int opt, enum source src, const char *val)
{
	if (!hr_cli__options[opt].repeatable)
		return add_entry(p, opt, src, val, strlen(val));
	const char *c = val, *item, *start = NULL;
	size_t n, len = 0;
	while (hr_list_next(&c, &item, &n)) {
		if (start != NULL && !item_starts(opt, item, n)) {
			len = (size_t)(item + n - start);
			continue;
		}
		int rc = start != NULL ? add_entry(p, opt, src, start, len) : 0;
		if (rc != 0)
			return rc;
		start = item;
		len = n;
	}
	return start != NULL ? add_entry(p, opt, src, start, len) : 0;
}

static const char *
add_error(int rc)
{
	return rc == HR_EMSGSIZE ? "value too long" : rc == HR_ENOMEM ? "too many values" : "error";
}

/* ---------------------------------------------------------------- sources */

static int
collect_flags(struct parse *p, int argc, char *const *argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			p->s->help = true;
			return 0;
		}
		if (strcmp(a, "--check") == 0) {
			p->s->check = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
			return fail(p, "unexpected argument '%s' (options start with --)", a);
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		int opt = -1;
		/* Flags spell options with dashes only. */
		if (memchr(name, '_', n) == NULL)
			opt = find_option(name, n);
		if (opt < 0)
			return fail(
			    p, "unknown option '--%.*s' (see herald serve --help)", (int)n, name);
		const char *val;
		if (eq != NULL) {
			val = eq + 1;
		} else if (hr_cli__options[opt].bare != NULL
		    && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
			/* a switch: `--access-log` alone, or followed by another option */
			val = hr_cli__options[opt].bare;
		} else {
			if (i + 1 >= argc)
				return fail(p, "--%s: missing value", hr_cli__options[opt].name);
			val = argv[++i];
		}
		if (hr_cli__options[opt].apply == NULL) {
			p->config_path = val;
			p->config_src = SRC_FLAG;
			continue;
		}
		int rc = add_entry(p, opt, SRC_FLAG, val, strlen(val));
		if (rc != 0)
			return fail(p, "--%s: %s", hr_cli__options[opt].name, add_error(rc));
	}
	return 0;
}

const char *
hr_cli__env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* HERALD_<OPTION>; unknown HERALD_* names are other tools' business (the test
 * runner sets HERALD_BUILD_DIR) and are ignored, as are empty values. */
static int
collect_env(struct parse *p, char *const *envp)
{
	for (size_t i = 0; i < hr_cli__n_options; i++) {
		char var[64];
		hr_cli__env_name(&hr_cli__options[i], var, sizeof(var));
		const char *v = hr_cli__env_get(envp, var);
		if (v == NULL || *v == '\0')
			continue;
		if (hr_cli__options[i].apply == NULL) {
			if (p->config_path == NULL) {
				p->config_path = v;
				p->config_src = SRC_ENV;
			}
			continue;
		}
		int rc = add_value(p, (int)i, SRC_ENV, v);
		if (rc != 0)
			return fail(p, "%s: %s", var, add_error(rc));
	}
	return 0;
}

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	if (p->first_error_kept)
		return 1; /* inih goes on after an error; keep the first reason */
	if (section[0] != '\0' && strcmp(section, "herald") != 0) {
		fail(p, "section [%s] is not known (use none, or [herald])", section);
		p->first_error_kept = true;
		return 0;
	}
	int opt = find_option(name, strlen(name));
	if (opt < 0 || hr_cli__options[opt].apply == NULL) {
		fail(p, "unknown option '%s'", name);
		p->first_error_kept = true;
		return 0;
	}
	/* One pair of matching quotes is decoration, not part of the value. */
	size_t n = strlen(value);
	char buf[INI_LINE_MAX + 1];
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, value, n);
	buf[n] = '\0';
	if (n >= 2 && (buf[0] == '"' || buf[0] == '\'') && buf[n - 1] == buf[0]) {
		memmove(buf, buf + 1, n - 2);
		buf[n - 2] = '\0';
	}
	if (!hr_cli__options[opt].repeatable) {
		for (size_t i = 0; i < p->n_entries; i++) {
			if (p->entries[i].opt == opt && p->entries[i].src == SRC_FILE) {
				fail(p, "%s is set twice", hr_cli__options[opt].name);
				p->first_error_kept = true;
				return 0;
			}
		}
	}
	int rc = add_value(p, opt, SRC_FILE, buf);
	if (rc != 0) {
		fail(p, "%s: %s", name, add_error(rc));
		p->first_error_kept = true;
		return 0;
	}
	return 1;
}

static int
collect_file(struct parse *p)
{
	const char *path = p->config_path;
	const char *label = p->config_src == SRC_FLAG ? "--config" : "HERALD_CONFIG";
	p->file_label = path;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return fail(p, "%s: cannot read '%s': %s", label, path, strerror(errno));
	char *text = malloc(HR_CLI_MAX_FILE + 1);
	if (text == NULL) {
		fclose(f);
		return fail(p, "%s: out of memory", label);
	}
	size_t n = fread(text, 1, HR_CLI_MAX_FILE + 1, f);
	int read_err = ferror(f);
	fclose(f);
	if (read_err) {
		free(text);
		return fail(p, "%s: cannot read '%s'", label, path);
	}
	if (n > HR_CLI_MAX_FILE) {
		free(text);
		return fail(p, "%s: '%s' is larger than %d bytes", label, path, HR_CLI_MAX_FILE);
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		free(text);
		return fail(p, "%s: '%s' is not a text file", label, path);
	}
	size_t line = 1, col = 0;
	for (size_t i = 0; i < n; i++) {
		if (text[i] == '\n') {
			line++;
			col = 0;
		} else if (++col > INI_LINE_MAX) {
			free(text);
			return fail(
			    p, "%s:%zu: line longer than %d characters", path, line, INI_LINE_MAX);
		}
	}
	char first[256];
	p->first_error_kept = false;
	int rc = ini_parse_string(text, ini_cb, p);
	free(text);
	if (rc == 0)
		return 0;
	if (rc < 0)
		return fail(p, "%s: cannot parse '%s'", label, path);
	if (p->first_error_kept) {
		snprintf(first, sizeof(first), "%s", p->err);
		return fail(p, "%s:%d: %s", path, rc, first);
	}
	return fail(p, "%s:%d: expected `key = value`", path, rc);
}

/* For --check: each option's winning values as given (comma-joined), and the
 * config file's name, for the options that options_show.c cannot read back
 * from the hr_config. */
static int
keep_given(struct parse *p)
{
	for (size_t o = 0; o < hr_cli__n_options; o++) {
		enum source best = 0;
		size_t len = 0;
		for (size_t i = 0; i < p->n_entries; i++)
			if (p->entries[i].opt == (int)o && p->entries[i].src > best)
				best = p->entries[i].src;
		for (size_t i = 0; i < p->n_entries; i++)
			if (p->entries[i].opt == (int)o && p->entries[i].src == best)
				len += strlen(p->entries[i].val) + 1;
		if (hr_cli__options[o].apply == NULL && p->config_path != NULL)
			len = strlen(p->config_path) + 1;
		if (len == 0)
			continue;
		char *g = calloc(1, len);
		if (g == NULL)
			return fail(p, "out of memory");
		p->s->_given[o] = g;
		if (hr_cli__options[o].apply == NULL) {
			strcpy(g, p->config_path);
			continue;
		}
		for (size_t i = 0; i < p->n_entries; i++) {
			if (p->entries[i].opt != (int)o || p->entries[i].src != best)
				continue;
			if (g[0] != '\0')
				strcat(g, ",");
			strcat(g, p->entries[i].val);
		}
	}
	return 0;
}

void
hr_cli__serve_init(hr_cli_serve *s)
{
	memset(s, 0, sizeof(*s));
	hr_config_default(&s->cfg);
}

void
hr_cli__serve_fini(hr_cli_serve *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->_n_strings; i++)
		free(s->_strings[i]);
	s->_n_strings = 0;
	for (size_t i = 0; i < HR_CLI_MAX_OPTIONS; i++) {
		free(s->_given[i]);
		s->_given[i] = NULL;
	}
}

int
hr_cli__parse_serve(
    hr_cli_serve *s, int argc, char *const *argv, char *const *envp, char *err, size_t errlen)
{
	struct parse *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return HR_ENOMEM;
	}
	p->s = s;
	p->err = err;
	p->errlen = errlen;
	p->layer = -1;
	if (errlen > 0)
		err[0] = '\0';
	int rc = collect_flags(p, argc, argv);
	if (rc == 0 && s->help)
		goto out;
	if (rc == 0)
		rc = collect_env(p, envp);
	if (rc == 0 && p->config_path != NULL)
		rc = collect_file(p);
	if (rc == 0)
		rc = hr_cli__apply_all(p);
	if (rc == 0)
		rc = keep_given(p);
out:
	for (size_t i = 0; i < p->n_entries; i++)
		free(p->entries[i].val);
	free(p);
	return rc;
}
