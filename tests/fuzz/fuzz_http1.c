/*
 * fuzz_http1.c: libFuzzer harness for the plain HTTP/1.x request-head parser
 * (transport/http1.c: hr_http1__head_len, hr_http1__parse_head), the first
 * code that reads a client's bytes on a plain-text listener, then the router
 * of the path it yields (hr_http__route, raw: split, then decode segments).
 *
 * Input: raw bytes as a client would send them. Properties: the head length
 * lies within the input; a head that parses has a NUL-terminated path that
 * starts with '/' and holds no control byte or space; header values point
 * inside the input; the route's target is NUL-terminated in its buffer.
 */
#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/transport_impl.h"

#include "fuzz.h"

static int
inside(const char *v, size_t len, const char *p, size_t n)
{
	return v == NULL || (v >= p && v + len <= p + n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so ASan sees any read past the input */
	char *p = malloc(size ? size : 1);
	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	size_t hl = hr_http1__head_len(p, size);
	CHECK(hl <= size);
	if (hl > 0) {
		hr_http1_head h;
		hr_http1__parse_head(p, hl, &h);
		if (!h.bad) {
			const char *nul = memchr(h.path, '\0', sizeof(h.path));
			CHECK(nul != NULL);
			size_t pl = (size_t)(nul - h.path);
			CHECK(pl > 0 && h.path[0] == '/');
			for (size_t i = 0; i < pl; i++)
				CHECK((unsigned char)h.path[i] > 0x20 && h.path[i] != 0x7f);
			CHECK(h.req.uri == h.path && h.req.raw_path);
			CHECK(inside(h.req.auth, h.req.auth_len, p, hl));
			CHECK(inside(h.req.api_key, h.req.api_key_len, p, hl));
			CHECK(inside(h.req.ctype, h.req.ctype_len, p, hl));
			CHECK(h.req.clen >= -1);

			char target[128];
			const char *bad;
			int want;
			memset(target, 0x55, sizeof(target));
			int api = hr_http__route(h.path, true, &want, target, sizeof(target), &bad);
			CHECK(memchr(target, '\0', sizeof(target)) != NULL);
			CHECK(api == 0 ? want == -1
			               : (want == LWSHUMETH_GET || want == LWSHUMETH_POST));
		}
	}
	free(p);
	return 0;
}
