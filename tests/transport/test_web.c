/*
 * test_web.c: the embedded demo page and browser client (transport/web.c)
 * and their routes in hr_http__route: the bytes are web/'s files, with their
 * Content-Types, and no other name resolves. The served answers, --demo off
 * and the page in a browser are tests/integration/test_demo_page.py's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/transport_impl.h"

/* The whole of web/<name>, read from the source tree; caller frees. */
static unsigned char *
slurp(const char *name, size_t *len)
{
	const char *src = getenv("HERALD_SOURCE_DIR");
	char path[1024];
	cr_assert_not_null(src, "HERALD_SOURCE_DIR is not set");
	snprintf(path, sizeof(path), "%s/web/%s", src, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	cr_assert(n > 0);
	rewind(f);
	unsigned char *p = malloc((size_t)n);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

TestSuite(web, .timeout = 10);

Test(web, page_and_client_are_the_files_of_web_with_their_types)
{
	static const struct {
		const char *name, *file, *type;
	} cases[] = {
		{ "", "index.html", "text/html; charset=utf-8" },
		{ "herald.js", "herald.js", "application/javascript" },
	};
	size_t total = 0;
	for (size_t i = 0; i < 2; i++) {
		const unsigned char *body = NULL;
		const char *type = NULL;
		size_t len = 0, flen;
		cr_assert_eq(hr_web__asset(cases[i].name, &body, &len, &type), 0);
		cr_assert_str_eq(type, cases[i].type);
		unsigned char *want = slurp(cases[i].file, &flen);
		cr_assert_eq(
		    len, flen, "%s: %zu bytes embedded, %zu in web/", cases[i].file, len, flen);
		cr_assert_eq(memcmp(body, want, len), 0, "%s differs from web/", cases[i].file);
		free(want);
		total += len;
		cr_assert_eq(hr_web__asset(cases[i].name, NULL, NULL, NULL), 0);
	}
	cr_assert_leq(total, 30000, "page + client: %zu bytes", total);
}

Test(web, other_names_are_not_found)
{
	static const char *const names[] = { "index.html", "herald.js/", "Herald.js", "herald.j",
		"herald.jsx", "/", "favicon.ico" };
	const unsigned char *body = (const unsigned char *)"x";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_assert_eq(hr_web__asset(names[i], &body, NULL, NULL), HR_ENOENT, "%s", names[i]);
		cr_assert_str_eq((const char *)body, "x", "out-parameter touched for %s", names[i]);
	}
	cr_assert_eq(hr_web__asset(NULL, NULL, NULL, NULL), HR_EINVAL);
}

Test(web, routes_take_get_on_root_and_client_only)
{
	char target[128];
	const char *bad;
	int want;

	int root = hr_http__route("/", true, &want, target, sizeof(target), &bad);
	cr_assert_neq(root, 0);
	cr_assert_eq(want, LWSHUMETH_GET);
	cr_assert_str_eq(target, "");
	cr_assert_null(bad);

	int js = hr_http__route("/herald.js", false, &want, target, sizeof(target), &bad);
	cr_assert_eq(js, root, "one endpoint serves both");
	cr_assert_eq(want, LWSHUMETH_GET);
	cr_assert_str_eq(target, "herald.js");

	/* percent-encoded on the raw path: decoded, then looked up */
	cr_assert_eq(
	    hr_http__route("/herald%2Ejs", true, &want, target, sizeof(target), &bad), root);

	static const char *const other[]
	    = { "/herald.js/", "//", "/index.html", "/web/herald.js", "/herald.js/x" };
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		cr_assert_eq(hr_http__route(other[i], true, &want, target, sizeof(target), &bad), 0,
		    "%s", other[i]);
}
