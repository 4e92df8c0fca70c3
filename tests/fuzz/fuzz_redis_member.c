/*
 * fuzz_redis_member.c: libFuzzer harness for what the Redis backend does to
 * a member popped from Redis (hr_layer__redis_decode_member): anyone who can
 * write to the Redis server writes these bytes.
 *
 * Input: one flag byte (bit 0: read from a process key), one length byte L,
 * L bytes of channel name, then the member. Properties: a decoded message is
 * valid msgpack without "__asgi_channel__"; it has at least one target, each
 * a valid channel name, and when read from a process key each target is a
 * specific channel of that process; a refusal leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/layer.h"
#include "layer/layer_impl.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char channel[256];
	hr_layer_targets t;
	hr_msg *msg;

	if (size < 2 || (size_t)data[1] + 2 > size)
		return 0;
	bool process_key = data[0] & 1;
	size_t clen = data[1];
	memcpy(channel, data + 2, clen);
	channel[clen] = '\0';
	const char *mem = (const char *)data + 2 + clen;
	size_t mlen = size - 2 - clen;

	/* the backend only reads keys it built from valid names */
	if (process_key) {
		if (clen == 0 || channel[clen - 1] != '!'
		    || hr_name_check_channel(channel, clen) != 0)
			return 0;
	} else if (hr_name_check_channel(channel, clen) != 0) {
		return 0;
	}
	int rv = hr_layer__redis_decode_member(mem, mlen, channel, clen, process_key, &msg, &t);
	if (rv != 0) {
		CHECK(rv == HR_EBADMSG || rv == HR_ENOMEM);
		CHECK(msg == NULL && t.n == 0 && t.names == NULL && t._store == NULL);
		return 0;
	}
	const unsigned char *p = hr_msg_data(msg);
	size_t n = hr_msg_len(msg);
	CHECK(hr_codec_validate(p, n) == 0);
	const unsigned char *v;
	size_t vlen;
	CHECK(hr_codec_map_get(p, n, "__asgi_channel__", &v, &vlen) == HR_ENOENT);
	CHECK(t.n >= 1);
	for (size_t i = 0; i < t.n; i++) {
		size_t l = strlen(t.names[i]);
		CHECK(hr_name_check_channel(t.names[i], l) == 0);
		if (process_key)
			CHECK(hr_name_nonlocal_len(t.names[i], l) == clen
			    && memcmp(t.names[i], channel, clen) == 0);
	}
	/* and the message goes on to JSON for a WebSocket client */
	hr_buf b;
	hr_buf_init(&b, 0);
	(void)hr_codec_msgpack_to_json(p, n, &b);
	hr_buf_fini(&b);
	hr_msg_unref(msg);
	hr_layer_targets_fini(&t);
	return 0;
}
