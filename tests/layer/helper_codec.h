/*
 * helper_codec.h: fixtures for the codec tests (test_codec.c,
 * test_codec_json.c), checked against the real thing: Python's msgpack
 * (use_bin_type=True) and json, run through /usr/bin/python3.
 */
#ifndef HERALD_TEST_HELPER_CODEC_H
#define HERALD_TEST_HELPER_CODEC_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <string.h>

#include "layer/layer.h"

/* Run a Python script with `in` on stdin when non-NULL, else capturing
 * stdout into out. Returns the exit status. */
int py_run(const char *script, const void *in, size_t inlen, hr_buf *out);
/* msgpack.packb(expr, use_bin_type=True) appended to out. */
void py_pack(const char *expr, hr_buf *out);
/* Python's json.loads(text) == expr? */
bool py_json_equals(const unsigned char *text, size_t n, const char *expr);
/* msgpack.unpackb(mp) == expr, types included? */
bool py_unpack_equals(const unsigned char *mp, size_t n, const char *expr);
/* msgpack bytes → JSON text appended to out; asserts the return code. */
void to_json(const void *mp, size_t n, int want_rc, hr_buf *out);
/* msgpack bytes → exactly the JSON text want. */
void check_json(const void *mp, size_t n, const char *want);

#define assert_buf_eq(b, s, n)                                                                     \
	do {                                                                                       \
		cr_assert_eq(hr_buf_len(b), (n), "len %zu != %zu: %.*s", hr_buf_len(b),            \
		    (size_t)(n), (int)hr_buf_len(b), hr_buf_data(b));                              \
		cr_assert_eq(memcmp(hr_buf_data(b), (s), (n)), 0, "got %.*s", (int)hr_buf_len(b),  \
		    hr_buf_data(b));                                                               \
	} while (0)
#define assert_buf_str(b, s) assert_buf_eq(b, s, strlen(s))

#define MP(lit) (const unsigned char *)(lit), sizeof(lit) - 1

#endif /* HERALD_TEST_HELPER_CODEC_H */
