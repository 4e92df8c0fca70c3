/*
 * frame.c: the server-to-client WebSocket text frame (core/msg.h), built in
 * front of a finished buffer's bytes, in the message's headroom, so that one
 * immutable message can be written to any number of sockets as it is.
 */
#include <stdint.h>
#include <string.h>

#include "core/buf_int.h"

int
hr_ws_frame_text(hr_buf *b, hr_msg **out)
{
	if (hr_buf__headroom(b) < HR_FRAME_HEADROOM)
		return HR_EINVAL;
	size_t len = hr_buf_len(b);
	unsigned char hdr[10];
	size_t hlen;
	hdr[0] = 0x80 | 0x1; /* FIN, opcode 1 (text) */
	if (len < 126) {
		hdr[1] = (unsigned char)len; /* mask bit clear: server to client */
		hlen = 2;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		hlen = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hlen = 10;
	}
	hr_msg *m;
	int rc = hr_buf_finish(b, &m);
	if (rc != 0)
		return rc;
	memcpy(hr_msg_push_front(m, hlen), hdr, hlen);
	HR_ASSERT(hr_msg_headroom(m) >= 16);
	*out = m;
	return 0;
}
