/*
 * fuzz_msgpack.c: libFuzzer harness for the codec's msgpack reading (msgpack-c),
 * which reads every message a Redis member (channels_redis, another node)
 * hands us: hr_codec_validate, hr_codec_map_get, hr_codec_get_type,
 * hr_codec_map_remove, hr_codec_msgpack_to_json and the one-value readers
 * (hr_codec_map_header, hr_codec_array_header, hr_codec_read_str).
 *
 * Input: msgpack bytes (any). Properties beyond "no crash, no leak" (and no
 * allocation from a count the input cannot hold: libFuzzer's malloc limit
 * catches one): spans returned by lookups lie inside the input; map_remove
 * of a valid map is a valid map without the key; msgpack → JSON succeeds
 * only on valid input, and its output is JSON that encodes back to msgpack,
 * and after that first trip JSON and msgpack are stable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/layer.h"

#include "fuzz.h"

static void
inside(const uint8_t *data, size_t size, const unsigned char *p, size_t n)
{
	CHECK(p >= data && n <= size && (size_t)(p - data) <= size - n);
}

static bool
has_nul_escape(const hr_buf *b)
{
	const char *p = (const char *)hr_buf_data(b);
	size_t n = hr_buf_len(b);
	for (size_t i = 0; i + 6 <= n; i++)
		if (memcmp(p + i, "\\u0000", 6) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *v;
	const char *t;
	size_t vl, tl;
	hr_buf out, js, mp2, js2;
	char err[128];

	int valid = hr_codec_validate(data, size);

	if (hr_codec_map_get(data, size, "type", &v, &vl) == 0)
		inside(data, size, v, vl);
	if (hr_codec_map_get(data, size, "__asgi_channel__", &v, &vl) == 0)
		inside(data, size, v, vl);
	if (hr_codec_get_type(data, size, &t, &tl) == 0)
		inside(data, size, (const unsigned char *)t, tl);
	uint32_t n;
	size_t used;
	if (hr_codec_map_header(data, size, &n, &used) == 0
	    || hr_codec_array_header(data, size, &n, &used) == 0)
		CHECK(used >= 1 && used <= 5 && used <= size);
	if (hr_codec_read_str(data, size, &t, &tl, &used) == 0) {
		CHECK(used <= size);
		inside(data, size, (const unsigned char *)t, tl);
	}

	hr_buf_init(&out, 0);
	if (hr_codec_map_remove(data, size, "__asgi_channel__", &out) == 0 && valid == 0) {
		CHECK(hr_codec_validate(hr_buf_data(&out), hr_buf_len(&out)) == 0);
		CHECK(hr_codec_map_get(
		          hr_buf_data(&out), hr_buf_len(&out), "__asgi_channel__", &v, &vl)
		    == HR_ENOENT);
		CHECK(hr_buf_len(&out) <= size);
	}
	hr_buf_fini(&out);

	hr_buf_init(&js, 0);
	hr_buf_init(&mp2, 0);
	hr_buf_init(&js2, 0);
	int tj = hr_codec_msgpack_to_json(data, size, &js);
	if (tj != 0)
		CHECK(hr_buf_len(&js) == 0);
	else
		CHECK(valid == 0);
	int back = tj == 0 ? hr_codec_json_to_msgpack((const char *)hr_buf_data(&js),
	               hr_buf_len(&js), false, &mp2, err, sizeof(err))
	                   : -1;
	/* jansson refuses U+0000 inside object keys (not in values): a map key
	 * with a NUL prints fine but does not read back. Known; tolerated. */
	if (tj == 0 && back != 0)
		CHECK(has_nul_escape(&js));
	if (back == 0) {
		CHECK(hr_codec_msgpack_to_json(hr_buf_data(&mp2), hr_buf_len(&mp2), &js2) == 0);
		/* The first trip may change a value's type (a uint64 above
		 * INT64_MAX comes back as a float); from then on nothing moves. */
		hr_buf mp3;
		hr_buf_init(&mp3, 0);
		CHECK(hr_codec_json_to_msgpack((const char *)hr_buf_data(&js2), hr_buf_len(&js2),
		          false, &mp3, err, sizeof(err))
		    == 0);
		CHECK(hr_buf_len(&mp3) == hr_buf_len(&mp2)
		    && memcmp(hr_buf_data(&mp3), hr_buf_data(&mp2), hr_buf_len(&mp2)) == 0);
		hr_buf_fini(&mp3);
	}
	hr_buf_fini(&js);
	hr_buf_fini(&mp2);
	hr_buf_fini(&js2);
	return 0;
}
