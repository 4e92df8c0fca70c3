/*
 * codec.h: Channels messages as msgpack, msgpack to JSON and back, and a
 * minimal msgpack writer (core.h). Pure code; any thread.
 */
#ifndef HERALD_CORE_CODEC_H
#define HERALD_CORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

/*
 * Channels messages are dicts, carried as msgpack (str keys, use_bin_type).
 * The codec reads and writes msgpack with msgpack-c. Reading never trusts a
 * length: nothing is allocated from a count before the input is known to
 * hold that many elements, nesting is bounded by HR_CODEC_MAX_DEPTH, and
 * malformed input is an error (HR_EBADMSG, HR_EDEPTH, HR_EUTF8, HR_ETYPE),
 * never an over-read. Of several faults, the first met in input order is
 * reported (a count larger than the input is met where the input runs out).
 *
 * JSON → msgpack: parsed with jansson. Integers that fit int64 stay ints,
 * other numbers become float64. Strings are validated UTF-8.
 * msgpack → JSON: strings escaped per RFC 8259 (control chars as \u00XX);
 * invalid UTF-8 in a str is an error; floats printed with 17 significant
 * digits (shortest round-trip form where possible), NaN/Inf become null;
 * bin is emitted as a base64 string; ext as {"ext": type, "data": base64};
 * map keys must be str (else HR_ETYPE).
 */
#define HR_CODEC_MAX_DEPTH 32

/* Check that [mp, mp+len) is exactly one well-formed msgpack object. */
int hr_codec_validate(const void *mp, size_t len);

/* JSON text → msgpack appended to out. When `object_only`, the top value must be
 * an object (else HR_ETYPE). On error, err (if non-NULL) receives a short
 * human-readable reason; out is left as it was. */
int hr_codec_json_to_msgpack(
    const char *json, size_t len, bool object_only, hr_buf *out, char *err, size_t errlen);

/* One msgpack object at mp → JSON text appended to out. On error out is left as
 * it was. */
int hr_codec_msgpack_to_json(const void *mp, size_t len, hr_buf *out);

/* mp must be a msgpack map: find the value of key (a str key equal to `key`);
 * *val and *vlen are its encoded span inside mp (borrowed). HR_ENOENT if absent,
 * HR_ETYPE if mp is not a map. Does not decode values other than keys. */
int hr_codec_map_get(
    const void *mp, size_t len, const char *key, const unsigned char **val, size_t *vlen);

/* The "type" field of a message map, borrowed from mp (not NUL-terminated).
 * HR_ENOENT if absent, HR_ETYPE if not a str. */
int hr_codec_get_type(const void *mp, size_t len, const char **type, size_t *tlen);

/* Copy map mp to out without key `key` (used to strip __asgi_channel__). */
int hr_codec_map_remove(const void *mp, size_t len, const char *key, hr_buf *out);

/* The header of the map (array) at mp: its pair (element) count in *n and
 * the header's length in bytes in *hlen; the elements follow and are not
 * looked at. HR_ETYPE if the value at mp is not a map (array), HR_EBADMSG if
 * the header is cut short or malformed. */
int hr_codec_map_header(const void *mp, size_t len, uint32_t *n, size_t *hlen);
int hr_codec_array_header(const void *mp, size_t len, uint32_t *n, size_t *hlen);

/* The str at mp (bytes after it are not looked at): *s and *n are its bytes
 * (borrowed from mp, not NUL-terminated, UTF-8 not checked) and *used its
 * encoded length. HR_ETYPE if the value at mp is not a str (a str cut short
 * is HR_EBADMSG). */
int hr_codec_read_str(const void *mp, size_t len, const char **s, size_t *n, size_t *used);

/* msgpack writers used to build messages (map headers, str, int, nil, float,
 * bool, raw pre-encoded value), over msgpack-c's packer: each appends the
 * smallest encoding to out (as msgpack-python with use_bin_type=True), or
 * fails (HR_ENOMEM; HR_EMSGSIZE for a str over 2^32 - 1 bytes) leaving out
 * as it was. */
int hr_mp_map(hr_buf *out, uint32_t n);
int hr_mp_array(hr_buf *out, uint32_t n);
int hr_mp_str(hr_buf *out, const char *s, size_t n);
int hr_mp_cstr(hr_buf *out, const char *s);
int hr_mp_int(hr_buf *out, int64_t v);
int hr_mp_double(hr_buf *out, double v);
int hr_mp_bool(hr_buf *out, bool v);
int hr_mp_nil(hr_buf *out);
int hr_mp_raw(hr_buf *out, const void *encoded, size_t n);

#endif /* HERALD_CORE_CODEC_H */
