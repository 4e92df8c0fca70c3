/*
 * fuzz_origins.c: libFuzzer harness for --allowed-origins parsing and the
 * Origin header check (hr_origins_parse, hr_origins_allowed).
 *
 * Input: "<list>\n<origin>" (no newline: the whole input is both). The list
 * is parsed; when it parses, the origin is checked against it. Properties:
 * a "*" policy allows everything; an origin that is accepted as the only
 * entry of a list (and is not a pattern) is allowed by that list, so the
 * parser and the matcher agree on what an origin is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/security_int.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static hr_origin_policy p;
	char err[256];
	char list[4096];

	if (size >= sizeof(list))
		return 0;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t ll = nl ? (size_t)(nl - data) : size;
	const char *origin = nl ? (const char *)nl + 1 : (const char *)data;
	size_t ol = nl ? size - ll - 1 : size;

	memcpy(list, data, ll);
	list[ll] = '\0';
	if (hr_origins_parse(list, &p, err, sizeof(err)) == 0) {
		CHECK(p.any || p.n > 0);
		bool ok = hr_origins_allowed(&p, origin, ol);
		if (p.any)
			CHECK(ok);
	} else {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	}
	(void)hr_origins_allowed(&p, NULL, 0);

	/* The origin as a one-entry list must allow itself. */
	memcpy(list, origin, ol);
	list[ol] = '\0';
	if (strlen(list) == ol && strchr(list, ',') == NULL && strchr(list, '*') == NULL
	    && strstr(list, "://") != NULL && strstr(list, "://.") == NULL && ol > 0
	    && list[0] != ' ' && list[0] != '\t' && list[ol - 1] != ' ' && list[ol - 1] != '\t'
	    && hr_origins_parse(list, &p, err, sizeof(err)) == 0)
		CHECK(hr_origins_allowed(&p, origin, ol));
	return 0;
}
