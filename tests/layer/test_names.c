/*
 * test_names.c: Channels' channel/group name rules and fnmatch-style globs.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "layer/layer.h"

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

TestSuite(names);

Test(names, valid_channel_names_pass, .timeout = 10)
{
	const char *ok[] = { "a", "chat", "Chat-Room_1.x", "0", "...", "---", "___",
		"specific.abc!", "specific.abc!def", "a!b.c-d_e9", "http.request",
		"websocket.send!AbCd", "a!" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect_eq(chan(ok[i]), 0, "%s should be a valid channel", ok[i]);
}

Test(names, invalid_channel_names_refused, .timeout = 10)
{
	const char *bad[] = { "", "!", "!abc", "a b", "a!b!c", "a!!", "chat\n", "chat\t", "a/b",
		"a:b", "a@b", "é", "abc!é", "a!b c", "a*", "grp?", "a+b", "a,b", "\xff" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(chan(bad[i]), HR_EBADNAME, "%s should be refused", bad[i]);
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
	cr_assert_eq(grp("notifications"), 0);
	cr_assert_eq(grp("user_42"), 0);
	cr_assert_eq(grp("a.b-c_D9"), 0);
	cr_assert_eq(grp(repeat('g', 99)), 0);
	cr_assert_eq(grp(repeat('g', 100)), HR_EBADNAME);
	cr_assert_eq(grp(""), HR_EBADNAME);
	cr_assert_eq(grp("a!b"), HR_EBADNAME, "groups never contain '!'");
	cr_assert_eq(grp("a!"), HR_EBADNAME);
	cr_assert_eq(grp("a b"), HR_EBADNAME);
	cr_assert_eq(grp("grp\n"), HR_EBADNAME);
	cr_assert_eq(grp("ü"), HR_EBADNAME);
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

Test(glob, literal_and_star, .timeout = 10)
{
	cr_assert(gm("chat", "chat"));
	cr_assert_not(gm("chat", "chats"));
	cr_assert_not(gm("chat", "cha"));
	cr_assert(gm("*", ""));
	cr_assert(gm("*", "anything.at!all"));
	cr_assert(gm("http.*", "http.request"));
	cr_assert_not(gm("http.*", "https.request"));
	cr_assert(gm("*.request", "http.request"));
	cr_assert(gm("a*b*c", "aXXbYYc"));
	cr_assert(gm("a*b*c", "abc"));
	cr_assert_not(gm("a*b*c", "aXXbYY"));
	cr_assert(gm("a**c", "abbbc"));
	cr_assert(gm("*a*a*a", "aaaa"));
	cr_assert_not(gm("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	cr_assert(gm("", ""));
	cr_assert_not(gm("", "a"));
}

Test(glob, question_mark, .timeout = 10)
{
	cr_assert(gm("a?c", "abc"));
	cr_assert(gm("a?c", "a!c"));
	cr_assert_not(gm("a?c", "ac"));
	cr_assert_not(gm("a?c", "abbc"));
	cr_assert(gm("???", "xyz"));
}

Test(glob, sets_and_ranges, .timeout = 10)
{
	cr_assert(gm("[abc]x", "bx"));
	cr_assert_not(gm("[abc]x", "dx"));
	cr_assert(gm("[a-c]", "b"));
	cr_assert_not(gm("[a-c]", "d"));
	cr_assert(gm("[!a-c]", "d"));
	cr_assert_not(gm("[!a-c]", "a"));
	cr_assert(gm("[]]", "]"), "']' first in a set is a member");
	cr_assert(gm("[!]]", "x"));
	cr_assert_not(gm("[!]]", "]"));
	cr_assert(gm("[-a]", "-"), "leading '-' is literal");
	cr_assert(gm("[a-]", "-"), "trailing '-' is literal");
	cr_assert_not(gm("[a-]", "b"));
	cr_assert(gm("[a-c-e]", "-"), "'-' after a range is literal");
	cr_assert(gm("[a-c-e]", "e"));
	cr_assert_not(gm("[a-c-e]", "d"));
	cr_assert_not(gm("[z-a]", "z"), "reversed range matches nothing");
	cr_assert_not(gm("[z-a]", "m"));
	cr_assert(gm("[!z-a]", "q"), "negated empty range matches anything");
	cr_assert(gm("[\\]", "\\"), "backslash is literal");
	cr_assert(gm("[^a]", "^"), "'^' is not negation");
	cr_assert_not(gm("[^a]", "b"));
}

Test(glob, unterminated_bracket_is_literal, .timeout = 10)
{
	cr_assert(gm("[abc", "[abc"));
	cr_assert_not(gm("[abc", "a"));
	cr_assert(gm("[!]", "[!]"));
	cr_assert(gm("[]", "[]"));
	cr_assert(gm("a[", "a["));
}

Test(glob, case_sensitive_and_no_path_rules, .timeout = 10)
{
	cr_assert_not(gm("Chat", "chat"));
	cr_assert(gm("*", "a/b/c"), "'*' crosses '/' (fnmatch, not pathname)");
	cr_assert(gm("*", ".hidden"));
	cr_assert_not(gm(NULL, "x"));
}
