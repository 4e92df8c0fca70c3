/*
 * mp_write.c: the hr_mp_* writers, msgpack-c's packer appending to an hr_buf.
 * Pure code, any thread (one writer per buffer).
 *
 * msgpack_packer writes through hr_buf__mp_write straight into the buffer's
 * storage (no intermediate buffer). msgpack-c picks the smallest encoding, as
 * msgpack-python does (str8 for 32..255 bytes: use_bin_type=True). A str is
 * two writes (header, body): room for both is reserved first, so a failed
 * call leaves the buffer exactly as it was, as for every other value here.
 */
#include <msgpack.h>
#include <string.h>

#include "core/buf_int.h"
#include "core/core.h"

int
hr_buf__mp_write(void *data, const char *p, size_t n)
{
	return hr_buf_append(data, p, n);
}

#define PACKER(pk, out)                                                                            \
	msgpack_packer pk;                                                                         \
	msgpack_packer_init(&pk, out, hr_buf__mp_write)

int
hr_mp_map(hr_buf *out, uint32_t n)
{
	PACKER(pk, out);
	return msgpack_pack_map(&pk, n);
}

int
hr_mp_array(hr_buf *out, uint32_t n)
{
	PACKER(pk, out);
	return msgpack_pack_array(&pk, n);
}

int
hr_mp_str(hr_buf *out, const char *s, size_t n)
{
	PACKER(pk, out);
	if ((uint64_t)n > 0xffffffffu)
		return HR_EMSGSIZE; /* str32 is the largest */
	int rc = hr_buf_reserve(out, 5 + n);
	if (rc != 0)
		return rc;
	rc = msgpack_pack_str(&pk, n);
	if (rc == 0)
		rc = msgpack_pack_str_body(&pk, s, n);
	HR_ASSERT(rc == 0); /* reserved */
	return rc;
}

int
hr_mp_cstr(hr_buf *out, const char *s)
{
	return hr_mp_str(out, s, strlen(s));
}

int
hr_mp_int(hr_buf *out, int64_t v)
{
	PACKER(pk, out);
	return msgpack_pack_int64(&pk, v);
}

int
hr_mp_double(hr_buf *out, double v)
{
	PACKER(pk, out);
	return msgpack_pack_double(&pk, v);
}

int
hr_mp_bool(hr_buf *out, bool v)
{
	PACKER(pk, out);
	return v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
}

int
hr_mp_nil(hr_buf *out)
{
	PACKER(pk, out);
	return msgpack_pack_nil(&pk);
}

/* Already encoded: copied as it is. */
int
hr_mp_raw(hr_buf *out, const void *encoded, size_t n)
{
	return hr_buf_append(out, encoded, n);
}
