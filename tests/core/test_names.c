/*
 * test_names.c: Channels' channel/group name rules and fnmatch-style globs.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static int
chan(const char *s)
{
	return hr_name_check_channel(s, strlen(s));
}

static int
grp(const char *s)
{
	return hr_name_check_group(s, strlen(s));
}

static char *
repeat(char c, size_t n)
{
	static char buf[256];
	cr_assert(n < sizeof(buf));
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* Each of the n names gets want from check. */
static void
expect_names(int (*check)(const char *), const char *const *names, size_t n, int want)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(check(names[i]), want, "'%s' should give %d", names[i], want);
}

TestSuite(names);

Test(names, valid_channel_names_pass, .timeout = 10)
{
	static const char *const ok[] = { "a", "chat", "Chat-Room_1.x", "0", "...", "---", "___",
		"specific.abc!", "specific.abc!def", "a!b.c-d_e9", "http.request",
		"websocket.send!AbCd", "a!" };
	expect_names(chan, ok, sizeof(ok) / sizeof(ok[0]), 0);
}

Test(names, invalid_channel_names_refused, .timeout = 10)
{
	static const char *const bad[]
	    = { "", "!", "!abc", "a b", "a!b!c", "a!!", "chat\n", "chat\t", "a/b", "a:b", "a@b",
		      "é", "abc!é", "a!b c", "a*", "grp?", "a+b", "a,b", "\xff" };
	expect_names(chan, bad, sizeof(bad) / sizeof(bad[0]), HR_EBADNAME);
}

Test(names, embedded_nul_refused, .timeout = 10)
{
	cr_assert_eq(hr_name_check_channel("ab\0cd", 5), HR_EBADNAME);
	cr_assert_eq(hr_name_check_group("ab\0cd", 5), HR_EBADNAME);
	cr_assert_eq(hr_name_check_channel(NULL, 3), HR_EBADNAME);
	cr_assert_eq(hr_name_check_group(NULL, 0), HR_EBADNAME);
}

Test(names, channel_length_99_ok_100_refused, .timeout = 10)
{
	cr_assert_eq(chan(repeat('c', 99)), 0);
	cr_assert_eq(chan(repeat('c', 100)), HR_EBADNAME);
	cr_assert_eq(chan(repeat('c', 200)), HR_EBADNAME);
	char spec[128];
	memset(spec, 'x', 98);
	spec[0] = 'p';
	spec[97] = '!';
	spec[98] = 'y';
	spec[99] = '\0'; /* 99 bytes with a '!' */
	cr_assert_eq(chan(spec), 0);
	spec[99] = 'z';
	spec[100] = '\0';
	cr_assert_eq(chan(spec), HR_EBADNAME);
}

Test(names, group_rules, .timeout = 10)
{
	static const char *const ok[] = { "notifications", "user_42", "a.b-c_D9" };
	/* groups never contain '!' */
	static const char *const bad[] = { "", "a!b", "a!", "a b", "grp\n", "ü" };
	expect_names(grp, ok, sizeof(ok) / sizeof(ok[0]), 0);
	expect_names(grp, bad, sizeof(bad) / sizeof(bad[0]), HR_EBADNAME);
	cr_assert_eq(grp(repeat('g', 99)), 0);
	cr_assert_eq(grp(repeat('g', 100)), HR_EBADNAME);
}

Test(names, nonlocal_part, .timeout = 10)
{
	cr_assert_eq(hr_name_nonlocal_len("specific.abc!def", 16), 13);
	cr_assert_eq(hr_name_nonlocal_len("abc!", 4), 4);
	cr_assert_eq(hr_name_nonlocal_len("chat", 4), 0);
}

TestSuite(glob);

static bool
gm(const char *pat, const char *name)
{
	return hr_glob_match(pat, name, strlen(name));
}

struct glob_case {
	const char *pat, *name;
	bool match;
};

static void
expect_globs(const struct glob_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(gm(c[i].pat, c[i].name), c[i].match, "'%s' on '%s' should %smatch",
		    c[i].pat, c[i].name, c[i].match ? "" : "not ");
}

Test(glob, literal_and_star, .timeout = 10)
{
	static const struct glob_case cases[] = {
		{ "chat", "chat", true },
		{ "chat", "chats", false },
		{ "chat", "cha", false },
		{ "*", "", true },
		{ "*", "anything.at!all", true },
		{ "http.*", "http.request", true },
		{ "http.*", "https.request", false },
		{ "*.request", "http.request", true },
		{ "a*b*c", "aXXbYYc", true },
		{ "a*b*c", "abc", true },
		{ "a*b*c", "aXXbYY", false },
		{ "a**c", "abbbc", true },
		{ "*a*a*a", "aaaa", true },
		{ "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
		{ "", "", true },
		{ "", "a", false },
	};
	expect_globs(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(glob, question_mark, .timeout = 10)
{
	static const struct glob_case cases[] = {
		{ "a?c", "abc", true },
		{ "a?c", "a!c", true },
		{ "a?c", "ac", false },
		{ "a?c", "abbc", false },
		{ "???", "xyz", true },
	};
	expect_globs(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(glob, sets_and_ranges, .timeout = 10)
{
	static const struct glob_case cases[] = {
		{ "[abc]x", "bx", true },
		{ "[abc]x", "dx", false },
		{ "[a-c]", "b", true },
		{ "[a-c]", "d", false },
		{ "[!a-c]", "d", true },
		{ "[!a-c]", "a", false },
		{ "[]]", "]", true }, /* ']' first in a set is a member */
		{ "[!]]", "x", true },
		{ "[!]]", "]", false },
		{ "[-a]", "-", true }, /* leading '-' is literal */
		{ "[a-]", "-", true }, /* trailing '-' is literal */
		{ "[a-]", "b", false },
		{ "[a-c-e]", "-", true }, /* '-' after a range is literal */
		{ "[a-c-e]", "e", true },
		{ "[a-c-e]", "d", false },
		{ "[z-a]", "z", false }, /* reversed range matches nothing */
		{ "[z-a]", "m", false },
		{ "[!z-a]", "q", true }, /* negated empty range matches anything */
		{ "[\\]", "\\", true },  /* backslash is literal */
		{ "[^a]", "^", true },   /* '^' is not negation */
		{ "[^a]", "b", false },
	};
	expect_globs(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(glob, unterminated_bracket_is_literal, .timeout = 10)
{
	static const struct glob_case cases[] = {
		{ "[abc", "[abc", true },
		{ "[abc", "a", false },
		{ "[!]", "[!]", true },
		{ "[]", "[]", true },
		{ "a[", "a[", true },
	};
	expect_globs(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(glob, case_sensitive_and_no_path_rules, .timeout = 10)
{
	static const struct glob_case cases[] = {
		{ "Chat", "chat", false },
		{ "*", "a/b/c", true }, /* '*' crosses '/' (fnmatch, not pathname) */
		{ "*", ".hidden", true },
	};
	expect_globs(cases, sizeof(cases) / sizeof(cases[0]));
	cr_assert_not(gm(NULL, "x"));
}

/* Collect the items of list as "[a][b]..." for the assertions below. */
static void
items_of(const char *list, char *out, size_t cap)
{
	const char *c = list, *item;
	size_t n, at = 0;
	out[0] = '\0';
	while (hr_list_next(&c, &item, &n))
		at += (size_t)snprintf(out + at, cap - at, "[%.*s]", (int)n, item);
}

Test(list, items_trimmed_of_blanks, .timeout = 10)
{
	char got[128];
	items_of("a, b ,\tc", got, sizeof(got));
	cr_assert_str_eq(got, "[a][b][c]");
	items_of("  one  ", got, sizeof(got));
	cr_assert_str_eq(got, "[one]");
	items_of("x y,z", got, sizeof(got));
	cr_assert_str_eq(got, "[x y][z]");
}

Test(list, every_comma_separates_two_items, .timeout = 10)
{
	char got[128];
	items_of("", got, sizeof(got));
	cr_assert_str_eq(got, "[]");
	items_of("a,", got, sizeof(got));
	cr_assert_str_eq(got, "[a][]");
	items_of(",,a", got, sizeof(got));
	cr_assert_str_eq(got, "[][][a]");
	items_of(" , ", got, sizeof(got));
	cr_assert_str_eq(got, "[][]");
}

Test(list, done_cursor_stays_done, .timeout = 10)
{
	const char *c = "a", *item = NULL;
	size_t n = 0;
	cr_assert(hr_list_next(&c, &item, &n));
	cr_assert_eq(n, 1);
	cr_assert_null(c);
	cr_assert_not(hr_list_next(&c, &item, &n));
	cr_assert_not(hr_list_next(&c, &item, &n));
}
