/*
 * web.c: the demo page (GET /) and the browser client (GET /herald.js) of
 * docs/PROTOCOL.md "The browser client and the demo page". Both files live in
 * web/ and are compiled into the binary as byte arrays (web/embed.cmake
 * generates web_assets.c at build time), so a node serves them without any
 * file on disk. http.c routes the two paths here and answers 404 when
 * --demo is off.
 *
 * Threads: pure lookups into constant data; any thread.
 */
#include <string.h>

#include "transport/transport_impl.h"

/* web_assets.c, generated */
extern const unsigned char hr_web__index_html[];
extern const size_t hr_web__index_html_len;
extern const unsigned char hr_web__herald_js[];
extern const size_t hr_web__herald_js_len;

int
hr_web__asset(const char *name, const unsigned char **body, size_t *len, const char **type)
{
	const unsigned char *b;
	size_t l;
	const char *t;

	if (name == NULL)
		return HR_EINVAL;
	if (name[0] == '\0') {
		b = hr_web__index_html;
		l = hr_web__index_html_len;
		t = "text/html; charset=utf-8";
	} else if (strcmp(name, "herald.js") == 0) {
		b = hr_web__herald_js;
		l = hr_web__herald_js_len;
		t = "application/javascript";
	} else {
		return HR_ENOENT;
	}
	if (body != NULL)
		*body = b;
	if (len != NULL)
		*len = l;
	if (type != NULL)
		*type = t;
	return 0;
}
