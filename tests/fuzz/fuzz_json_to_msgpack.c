/*
 * fuzz_json_to_msgpack.c: libFuzzer harness for the JSON → msgpack codec,
 * the path every inbound WebSocket frame and HTTP API body takes.
 *
 * Input: JSON text (any bytes). Properties beyond "no crash, no leak": a
 * success leaves exactly one valid msgpack object, which msgpack → JSON
 * prints, and that JSON encodes back to the very same msgpack (floats keep
 * their ".0", so nothing changes type on the way). A failure leaves the
 * output buffer as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/layer.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hr_buf mp, js, mp2;
	char err[128];

	for (int object_only = 0; object_only < 2; object_only++) {
		hr_buf_init(&mp, 0);
		hr_buf_init(&js, 0);
		hr_buf_init(&mp2, 0);
		CHECK(hr_buf_append(&mp, "x", 1) == 0); /* a prefix the codec must keep */
		int rv = hr_codec_json_to_msgpack(
		    (const char *)data, size, object_only, &mp, err, sizeof(err));
		if (rv != 0) {
			CHECK(rv < 0);
			CHECK(hr_buf_len(&mp) == 1);
			CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		} else {
			const unsigned char *p = hr_buf_data(&mp) + 1;
			size_t n = hr_buf_len(&mp) - 1;
			CHECK(hr_codec_validate(p, n) == 0);
			if (object_only) {
				const char *t;
				size_t tl;
				(void)hr_codec_get_type(p, n, &t, &tl);
			}
			CHECK(hr_codec_msgpack_to_json(p, n, &js) == 0);
			CHECK(hr_codec_json_to_msgpack((const char *)hr_buf_data(&js),
			          hr_buf_len(&js), object_only, &mp2, err, sizeof(err))
			    == 0);
			CHECK(hr_buf_len(&mp2) == n && memcmp(hr_buf_data(&mp2), p, n) == 0);
		}
		hr_buf_fini(&mp);
		hr_buf_fini(&js);
		hr_buf_fini(&mp2);
	}
	return 0;
}
