/*
 * fuzz_http.c: libFuzzer harness for the HTTP API's pure parts: routing a
 * request path (hr_http__route: segments, endpoints, name lengths) and the
 * bodies of POST /api/groups|channels/{name}/send (hr_http__parse_send: name
 * rules, JSON -> msgpack, "type") and POST /api/notifications
 * (hr_worker__parse).
 *
 * Input: the path up to the first '\n' (as lws hands it over: decoded, no
 * query), then the body. Properties: the target is NUL-terminated within its
 * buffer and has no '/'; an accepted send is valid msgpack with a string
 * "type" and goes back to JSON; refusals are 400 (or 503) with a reason.
 */
#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actors/worker_int.h"
#include "transport/transport_impl.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char uri[2048], target[128], err[256];
	const char *bad;
	int want;

	const uint8_t *nl = memchr(data, '\n', size);
	size_t ul = nl ? (size_t)(nl - data) : size;
	if (ul >= sizeof(uri))
		return 0;
	memcpy(uri, data, ul);
	uri[ul] = '\0';
	const char *body = nl ? (const char *)nl + 1 : "";
	size_t blen = nl ? size - ul - 1 : 0;

	memset(target, 0x55, sizeof(target));
	/* the first byte's low bit picks a raw (undecoded) or an lws-decoded path */
	bool raw = size > 0 && (data[0] & 1);
	int api = hr_http__route(uri, raw, &want, target, sizeof(target), &bad);
	CHECK(memchr(target, '\0', sizeof(target)) != NULL);
	CHECK(raw || strchr(target, '/') == NULL); /* raw: %2F stays in its segment */
	CHECK(api == 0 ? want == -1 : (want == LWSHUMETH_GET || want == LWSHUMETH_POST));
	if (bad != NULL)
		CHECK(target[0] == '\0');

	/* both send endpoints, whatever the path said */
	for (int group = 0; group < 2; group++) {
		hr_msg *msg = NULL;
		const char *name = target[0] ? target : (group ? "notifications" : "c.x");
		err[0] = '\0';
		int st = hr_http__parse_send(group, name, body, blen, &msg, err, sizeof(err));
		if (st == 0) {
			const char *type;
			size_t tlen;
			CHECK(msg != NULL);
			CHECK(hr_codec_validate(hr_msg_data(msg), hr_msg_len(msg)) == 0);
			CHECK(hr_codec_get_type(hr_msg_data(msg), hr_msg_len(msg), &type, &tlen)
			    == 0);
			hr_buf b;
			hr_buf_init(&b, 0);
			CHECK(hr_codec_msgpack_to_json(hr_msg_data(msg), hr_msg_len(msg), &b) == 0);
			hr_buf_fini(&b);
			hr_msg_unref(msg);
		} else {
			CHECK(msg == NULL && (st == 400 || st == 503) && err[0] != '\0');
		}
	}
	err[0] = '\0';
	int rv = hr_worker__parse(body, blen, err, sizeof(err));
	CHECK(rv == 0 || ((rv == HR_EINVAL || rv == HR_ENOMEM) && err[0] != '\0'));
	return 0;
}
