/*
 * names.c: Channels' channel and group name rules, and the fnmatch-style glob
 * used by channel_capacity (core/names.h). Pure code; any thread.
 *
 * Channels checks names with Python regexes on str:
 *   channel  ^[a-zA-Z\d\-_.]+(\![\d\w\-_.]*)?$     group  ^[a-zA-Z\d\-_.]+$
 * and len(name) < 100. herald names are ASCII: Python's \d and \w are
 * Unicode-aware, so Channels would also take e.g. "chat!é" or Arabic-Indic
 * digits, and its `$` also matches before a final "\n" ("chat\n" passes).
 * herald refuses both: every byte must be one of [A-Za-z0-9-_.] (plus a
 * single '!' in channel names), which is what Channels' own error message
 * promises ("containing only ASCII alphanumerics, hyphens, underscores, or
 * periods"), and what channels_redis can put in a Redis key unchanged.
 */
#include <string.h>

#include "core/errors.h"
#include "core/names.h"

static bool
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	    || c == '-' || c == '_' || c == '.';
}

int
hr_name_check_group(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len >= HR_NAME_MAX)
		return HR_EBADNAME;
	for (size_t i = 0; i < len; i++)
		if (!name_char((unsigned char)name[i]))
			return HR_EBADNAME;
	return 0;
}

int
hr_name_check_channel(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len >= HR_NAME_MAX)
		return HR_EBADNAME;
	size_t i = 0;
	while (i < len && name_char((unsigned char)name[i]))
		i++;
	if (i == 0) /* at least one character before any '!' */
		return HR_EBADNAME;
	if (i == len)
		return 0;
	if (name[i] != '!')
		return HR_EBADNAME;
	/* The local part after '!' may be empty ("specific.abc!" is valid). */
	for (i++; i < len; i++)
		if (!name_char((unsigned char)name[i]))
			return HR_EBADNAME;
	return 0;
}

size_t
hr_name_nonlocal_len(const char *name, size_t len)
{
	const char *bang = memchr(name, '!', len);
	return bang ? (size_t)(bang - name) + 1 : 0;
}

/*
 * One bracket expression starting at p (just after '['). Returns the number of
 * pattern bytes it spans including the closing ']', or 0 when there is no
 * closing ']' (then '[' is an ordinary character, as in fnmatch.translate).
 * *hit says whether c is in the set.
 *
 * Set syntax, as fnmatch.translate (Python 3.11) parses it: an optional '!'
 * negates; the first member may be ']'; "a-z" is a range, a '-' first or last
 * is literal; a reversed range ("z-a") matches nothing; everything else,
 * backslash included, is literal.
 */
static size_t
glob_set(const char *p, unsigned char c, bool *hit)
{
	size_t j = 0;
	bool neg = false;
	if (p[j] == '!') {
		neg = true;
		j++;
	}
	size_t start = j;
	if (p[j] == ']')
		j++;
	while (p[j] != '\0' && p[j] != ']')
		j++;
	if (p[j] == '\0')
		return 0;
	size_t end = j; /* members are p[start, end) */
	bool in = false;
	for (size_t k = start; k < end;) {
		unsigned char lo = (unsigned char)p[k];
		if (k + 2 < end && p[k + 1] == '-') {
			unsigned char hi = (unsigned char)p[k + 2];
			if (lo <= c && c <= hi)
				in = true;
			k += 3;
		} else {
			if (lo == c)
				in = true;
			k++;
		}
	}
	*hit = in != neg;
	return end + 1;
}

bool
hr_glob_match(const char *pattern, const char *name, size_t len)
{
	if (pattern == NULL || (name == NULL && len > 0))
		return false;
	const char *p = pattern;
	size_t n = 0;
	/* Backtrack point: the last '*' seen and the name position it resumes at.
	 * One star's worth of backtracking is enough for glob (a later star
	 * supersedes an earlier one), so matching is O(len * strlen(pattern)). */
	const char *star_p = NULL;
	size_t star_n = 0;

	while (n < len || *p != '\0') {
		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_n = n;
			continue;
		}
		if (n < len && *p != '\0') {
			unsigned char c = (unsigned char)name[n];
			if (*p == '?') {
				p++;
				n++;
				continue;
			}
			if (*p == '[') {
				bool hit = false;
				size_t span = glob_set(p + 1, c, &hit);
				if (span > 0) {
					if (hit) {
						p += 1 + span;
						n++;
						continue;
					}
					goto mismatch;
				}
				/* unterminated: a literal '[' */
			}
			if ((unsigned char)*p == c) {
				p++;
				n++;
				continue;
			}
		}
	mismatch:
		if (star_p != NULL && star_n < len) {
			star_n++;
			p = star_p;
			n = star_n;
			continue;
		}
		return false;
	}
	return true;
}

bool
hr_list_next(const char **cursor, const char **item, size_t *len)
{
	const char *c = *cursor, *start, *end;

	if (c == NULL)
		return false;
	while (*c == ' ' || *c == '\t')
		c++;
	start = c;
	while (*c != ',' && *c != '\0')
		c++;
	end = c;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*item = start;
	*len = (size_t)(end - start);
	*cursor = *c == ',' ? c + 1 : NULL;
	return true;
}
