/*
 * codec_json.c: JSON text → msgpack, for what clients send (WebSocket
 * frames, HTTP API bodies). Parsed with jansson, then walked once into the
 * output buffer by msgpack-c's packer (msgpack_packer writing straight into
 * the hr_buf). Pure code, any thread.
 *
 * Choices, made to match what Python's json.loads + msgpack.packb would do
 * on the Django side:
 * - Duplicate object keys are accepted, the last value wins and the key keeps
 *   its first position (json.loads builds a dict the same way).
 * - Integers that fit int64 stay ints; other numbers become float64.
 *   jansson refuses integers beyond long long, so such a document is parsed
 *   again with every number as a double; in that second parse integral
 *   values up to 2^53 (exact in a double) are written back as ints.
 * - "\u0000" is allowed inside strings (JSON_ALLOW_NUL); jansson still
 *   refuses it inside object keys.
 * - Nesting deeper than HR_CODEC_MAX_DEPTH is HR_EDEPTH, as in the reader.
 */
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>

#include "core/buf_int.h"
#include "core/core.h"

/* A str (header, then body); the caller undoes a partial write. */
static int
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	if ((uint64_t)n > 0xffffffffu)
		return HR_EMSGSIZE;
	int rc = msgpack_pack_str(pk, n);
	return rc != 0 ? rc : msgpack_pack_str_body(pk, s, n);
}

static int
encode(json_t *v, msgpack_packer *pk, int depth, bool ints_as_reals)
{
	int rc;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *val;
		if (depth >= HR_CODEC_MAX_DEPTH)
			return HR_EDEPTH;
		if (json_object_size(v) > UINT32_MAX)
			return HR_EMSGSIZE;
		if ((rc = msgpack_pack_map(pk, json_object_size(v))) != 0)
			return rc;
		json_object_keylen_foreach(v, key, klen, val)
		{
			if ((rc = pack_str(pk, key, klen)) != 0
			    || (rc = encode(val, pk, depth + 1, ints_as_reals)) != 0)
				return rc;
		}
		return 0;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *val;
		if (depth >= HR_CODEC_MAX_DEPTH)
			return HR_EDEPTH;
		if (json_array_size(v) > UINT32_MAX)
			return HR_EMSGSIZE;
		if ((rc = msgpack_pack_array(pk, json_array_size(v))) != 0)
			return rc;
		json_array_foreach(v, i, val)
		{
			if ((rc = encode(val, pk, depth + 1, ints_as_reals)) != 0)
				return rc;
		}
		return 0;
	}
	case JSON_STRING:
		return pack_str(pk, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
	case JSON_REAL: {
		double d = json_real_value(v);
		if (ints_as_reals && d == trunc(d) && fabs(d) <= 9007199254740992.0)
			return msgpack_pack_int64(pk, (int64_t)d);
		return msgpack_pack_double(pk, d);
	}
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	}
	return HR_EINVAL;
}

static void
set_err(char *err, size_t errlen, const char *fmt, int line, int col)
{
	if (err != NULL && errlen != 0)
		snprintf(err, errlen, fmt, line, col);
}

int
hr_codec_json_to_msgpack(
    const char *json, size_t len, bool object_only, hr_buf *out, char *err, size_t errlen)
{
	json_error_t je;
	size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	bool ints_as_reals = false;
	json_t *root = json_loadb(json, len, flags, &je);
	if (root == NULL && json_error_code(&je) == json_error_numeric_overflow) {
		ints_as_reals = true;
		root = json_loadb(json, len, flags | JSON_DECODE_INT_AS_REAL, &je);
	}
	if (root == NULL) {
		switch (json_error_code(&je)) {
		case json_error_out_of_memory:
			set_err(err, errlen, "out of memory", 0, 0);
			return HR_ENOMEM;
		case json_error_stack_overflow:
			set_err(err, errlen, "nesting too deep", 0, 0);
			return HR_EDEPTH;
		case json_error_invalid_utf8:
			set_err(
			    err, errlen, "invalid UTF-8 at line %d column %d", je.line, je.column);
			return HR_EUTF8;
		default:
			set_err(
			    err, errlen, "invalid JSON at line %d column %d", je.line, je.column);
			return HR_EBADMSG;
		}
	}
	int rc;
	size_t mark = hr_buf_len(out);
	if (object_only && !json_is_object(root)) {
		set_err(err, errlen, "not a JSON object", 0, 0);
		rc = HR_ETYPE;
		goto out;
	}
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, hr_buf__mp_write);
	rc = encode(root, &pk, 0, ints_as_reals);
	if (rc != 0) {
		hr_buf__truncate(out, mark);
		set_err(err, errlen,
		    rc == HR_EDEPTH       ? "nesting too deep"
		        : rc == HR_ENOMEM ? "out of memory"
		                          : "value too large",
		    0, 0);
	}
out:
	json_decref(root);
	return rc;
}
