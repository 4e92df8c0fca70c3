/*
 * test_codec.c: reading msgpack (validation, map lookups, malformed and
 * hostile input) and the hr_mp_* writers, against Python's msgpack
 * (use_bin_type=True). JSON in and out: test_codec_json.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_codec.h"
#include "core/buf_int.h"
#include "layer/layer.h"

TestSuite(codec, .timeout = 60);

/* ---------------------------------------------------------------- Python's msgpack */

static void
check_python_doc(const char *pyexpr, const char *json_expr)
{
	hr_buf mp, j;
	hr_buf_init(&mp, 0);
	hr_buf_init(&j, 0);
	py_pack(pyexpr, &mp);
	cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), 0, "%s", pyexpr);
	to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &j);
	cr_assert(py_json_equals(hr_buf_data(&j), hr_buf_len(&j), json_expr), "%s -> %.*s", pyexpr,
	    (int)hr_buf_len(&j), hr_buf_data(&j));
	hr_buf_fini(&mp);
	hr_buf_fini(&j);
}

Test(codec, reads_python_msgpack)
{
	check_python_doc("{'type': 'chat.message', 'text': 'hi', 'n': 3, 'f': 0.25, 'x': None,"
	                 " 't': True, 'u': False, 'l': [1, -1, 'two', [3.5]], 'd': {'e': {}}}",
	    "{'type': 'chat.message', 'text': 'hi', 'n': 3, 'f': 0.25, 'x': None,"
	    " 't': True, 'u': False, 'l': [1, -1, 'two', [3.5]], 'd': {'e': {}}}");
	check_python_doc("{'s8': 'a' * 40, 's16': 'b' * 300, 's32': 'c' * 70000}",
	    "{'s8': 'a' * 40, 's16': 'b' * 300, 's32': 'c' * 70000}");
	check_python_doc("[list(range(20)), list(range(70000)), {str(i): i for i in range(20)},"
	                 " {str(i): i for i in range(70000)}]",
	    "[list(range(20)), list(range(70000)), {str(i): i for i in range(20)},"
	    " {str(i): i for i in range(70000)}]");
	check_python_doc("[2**64 - 1, 2**63, -2**63, 2**32, -2**31 - 1, -129, -33, -1]",
	    "[2**64 - 1, 2**63, -2**63, 2**32, -2**31 - 1, -129, -33, -1]");
	check_python_doc("{'uni': 'caf\\u00e9 \\u2603 \\U0001F600', 'ctl': '\\x00\\x1f\\n\"\\\\'}",
	    "{'uni': 'caf\\u00e9 \\u2603 \\U0001F600', 'ctl': '\\x00\\x1f\\n\"\\\\'}");
	check_python_doc("[0.1, 1e300, -0.0, 5e-324, 1.7976931348623157e308, 1/3]",
	    "[0.1, 1e300, -0.0, 5e-324, 1.7976931348623157e308, 1/3]");
	check_python_doc("{'b': b'\\x00\\x01\\xff', 'e': b'', 'big': bytes(range(256)) * 300}",
	    "{'b': 'AAH/', 'e': '', 'big': __import__('base64').b64encode("
	    "bytes(range(256)) * 300).decode()}");
	check_python_doc("[msgpack.ExtType(5, b'abc'), msgpack.ExtType(127, b'x' * 300)]",
	    "[{'ext': 5, 'data': 'YWJj'}, {'ext': 127, 'data': "
	    "__import__('base64').b64encode(b'x' * 300).decode()}]");
}

Test(codec, negative_ints_of_every_width_match_python)
{
	static const int64_t v[] = { -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,
		(int64_t)INT32_MIN - 1, INT64_MIN, 0, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
		(int64_t)UINT32_MAX + 1, INT64_MAX };
	size_t nv = sizeof(v) / sizeof(v[0]);
	char expr[1024] = "[", txt[1024] = "[";
	hr_buf ours, theirs, j;
	hr_buf_init(&ours, 0);
	hr_buf_init(&theirs, 0);
	hr_buf_init(&j, 0);
	cr_assert_eq(hr_mp_array(&ours, (uint32_t)nv), 0);
	for (size_t i = 0; i < nv; i++) {
		cr_assert_eq(hr_mp_int(&ours, v[i]), 0);
		snprintf(expr + strlen(expr), sizeof(expr) - strlen(expr), "%s%lld", i ? ", " : "",
		    (long long)v[i]);
		snprintf(txt + strlen(txt), sizeof(txt) - strlen(txt), "%s%lld", i ? "," : "",
		    (long long)v[i]);
	}
	strcat(expr, "]");
	strcat(txt, "]");
	/* One Python run packs them all: same bytes, same text back. */
	py_pack(expr, &theirs);
	assert_buf_eq(&ours, hr_buf_data(&theirs), hr_buf_len(&theirs));
	to_json(hr_buf_data(&theirs), hr_buf_len(&theirs), 0, &j);
	assert_buf_str(&j, txt);
	hr_buf_fini(&ours);
	hr_buf_fini(&theirs);
	hr_buf_fini(&j);
}

Test(codec, signed_encodings_of_small_values_are_read)
{
	/* Other packers may use int8..int64 for non-negative values. */
	check_json(MP("\xd0\x05"), "5");
	check_json(MP("\xd0\x80"), "-128");
	check_json(MP("\xd1\x7f\xff"), "32767");
	check_json(MP("\xd1\x80\x00"), "-32768");
	check_json(MP("\xd2\xff\xff\xff\xfe"), "-2");
	check_json(MP("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), "-9223372036854775808");
	check_json(MP("\xd3\x00\x00\x00\x00\x00\x00\x00\x01"), "1");
	check_json(MP("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), "18446744073709551615");
	check_json(MP("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"), "9223372036854775808");
}

/* ---------------------------------------------------------------- writers */

Test(codec, writers_use_smallest_encoding_as_python)
{
	hr_buf ours, theirs;
	hr_buf_init(&ours, 0);
	hr_buf_init(&theirs, 0);
	char *s300 = malloc(70001);
	cr_assert_not_null(s300);
	memset(s300, 's', 70000);
	s300[70000] = 0;
	cr_assert_eq(hr_mp_array(&ours, 11), 0);
	cr_assert_eq(hr_mp_map(&ours, 0), 0);
	cr_assert_eq(hr_mp_array(&ours, 0), 0);
	cr_assert_eq(hr_mp_cstr(&ours, ""), 0);
	cr_assert_eq(hr_mp_str(&ours, s300, 31), 0);
	cr_assert_eq(hr_mp_str(&ours, s300, 32), 0);
	cr_assert_eq(hr_mp_str(&ours, s300, 256), 0);
	cr_assert_eq(hr_mp_str(&ours, s300, 70000), 0);
	cr_assert_eq(hr_mp_double(&ours, 0.1), 0);
	cr_assert_eq(hr_mp_bool(&ours, true), 0);
	cr_assert_eq(hr_mp_bool(&ours, false), 0);
	cr_assert_eq(hr_mp_nil(&ours), 0);
	py_pack("[{}, [], '', 's' * 31, 's' * 32, 's' * 256, 's' * 70000, 0.1, True, False, None]",
	    &theirs);
	assert_buf_eq(&ours, hr_buf_data(&theirs), hr_buf_len(&theirs));
	hr_buf_reset(&ours);
	hr_buf_reset(&theirs);

	/* Container headers at 15/16/65535/65536 elements. */
	static const uint32_t counts[] = { 15, 16, 65535, 65536 };
	for (size_t i = 0; i < 4; i++) {
		char expr[96];
		cr_assert_eq(hr_mp_array(&ours, counts[i]), 0);
		for (uint32_t k = 0; k < counts[i]; k++)
			cr_assert_eq(hr_mp_nil(&ours), 0);
		cr_assert_eq(hr_mp_map(&ours, counts[i]), 0);
		for (uint32_t k = 0; k < counts[i]; k++) {
			cr_assert_eq(hr_mp_int(&ours, k), 0);
			cr_assert_eq(hr_mp_nil(&ours), 0);
		}
		snprintf(expr, sizeof(expr), "[None] * %u, {i: None for i in range(%u)}", counts[i],
		    counts[i]);
		/* Two objects back to back: pack a tuple and drop its header. */
		hr_buf tmp;
		hr_buf_init(&tmp, 0);
		char e2[128];
		snprintf(e2, sizeof(e2), "(%s)", expr);
		py_pack(e2, &tmp);
		cr_assert_eq(hr_buf_data(&tmp)[0], 0x92);
		cr_assert_eq(
		    hr_buf_append(&theirs, hr_buf_data(&tmp) + 1, hr_buf_len(&tmp) - 1), 0);
		hr_buf_fini(&tmp);
	}
	assert_buf_eq(&ours, hr_buf_data(&theirs), hr_buf_len(&theirs));
	cr_assert_eq(hr_mp_raw(&ours, "\xc0", 1), 0);
	cr_assert_eq(hr_buf_data(&ours)[hr_buf_len(&ours) - 1], 0xc0);
	free(s300);
	hr_buf_fini(&ours);
	hr_buf_fini(&theirs);
}

/* ---------------------------------------------------------------- malformed input */

Test(codec, invalid_utf8_is_refused)
{
	static const char *bad[] = {
		"\x80",
		"\xbf",
		"\xc0\x80",
		"\xc1\xbf",
		"\xc2",
		"\xc2\x41",
		"\xe0\x80\x80",
		"\xe0\x9f\xbf",
		"\xed\xa0\x80",
		"\xed\xbf\xbf",
		"\xe2\x82",
		"\xf0\x8f\xbf\xbf",
		"\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80",
		"\xff",
		"\xfe",
		"ok\xe2\x28\xa1",
		"\xf0\x9f\x98",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char mp[16];
		size_t n = strlen(bad[i]);
		mp[0] = (unsigned char)(0xa0 | n);
		memcpy(mp + 1, bad[i], n);
		hr_buf j;
		hr_buf_init(&j, 0);
		cr_assert_eq(hr_buf_append(&j, "keep", 4), 0);
		cr_assert_eq(hr_codec_validate(mp, n + 1), HR_EUTF8, "case %zu", i);
		to_json(mp, n + 1, HR_EUTF8, &j);
		assert_buf_str(&j, "keep");
		/* As a map key as well. */
		unsigned char mk[20] = { 0x81 };
		memcpy(mk + 1, mp, n + 1);
		mk[n + 2] = 0xc0;
		to_json(mk, n + 3, HR_EUTF8, &j);
		assert_buf_str(&j, "keep");
		hr_buf_fini(&j);
	}
	static const char *good[] = { "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf",
		"\xf0\x90\x80\x80", "\xe0\xa0\x80", "\xc2\x80", "\x7f" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unsigned char mp[8];
		size_t n = strlen(good[i]);
		mp[0] = (unsigned char)(0xa0 | n);
		memcpy(mp + 1, good[i], n);
		cr_assert_eq(hr_codec_validate(mp, n + 1), 0, "good %zu", i);
	}
}

Test(codec, every_truncation_is_ebadmsg)
{
	hr_buf mp, j;
	hr_buf_init(&mp, 0);
	hr_buf_init(&j, 0);
	py_pack("{'type': 'x.y', 'a': [1, -200, 70000, -70000, 2**40, -2**40, 2**64 - 1, 0.5,"
	        " None, True, False], 's': 'z' * 40, 'm': 'w' * 300, 'b': b'\\x01' * 20,"
	        " 'bb': b'\\x02' * 300, 'e': msgpack.ExtType(1, b'q'),"
	        " 'e8': msgpack.ExtType(2, b'r' * 3), 'n': {'d': {'e': [{}]}},"
	        " 'big': list(range(20)), 'u': '\\u00e9\\U0001F600'}",
	    &mp);
	/* Add one more pair holding the encodings Python does not produce. */
	cr_assert_eq(hr_buf_data(&mp)[0], 0x80 | 11);
	static const unsigned char extra[] = { 0xa1, 'f', 0x9b, 0xca, 0x3f, 0x00, 0x00, 0x00, 0xd0,
		0x05, 0xd1, 0x00, 0x05, 0xd2, 0, 0, 0, 5, 0xd3, 0, 0, 0, 0, 0, 0, 0, 5, 0xdb, 0, 0,
		0, 1, 'x', 0xc6, 0, 0, 0, 1, 0, 0xc9, 0, 0, 0, 1, 9, 0, 0xdd, 0, 0, 0, 1, 0xc0,
		0xdf, 0, 0, 0, 1, 0xa0, 0xc0, 0xde, 0, 1, 0xa0, 0xc0 };
	cr_assert_eq(hr_buf_append(&mp, extra, sizeof(extra)), 0);
	unsigned char *d = (unsigned char *)hr_buf_data(&mp);
	d[0] = 0x80 | 12;
	cr_assert_eq(hr_codec_validate(d, hr_buf_len(&mp)), 0);
	to_json(d, hr_buf_len(&mp), 0, &j);
	for (size_t n = 0; n < hr_buf_len(&mp); n++) {
		hr_buf_reset(&j);
		cr_assert_eq(hr_buf_append(&j, "keep", 4), 0);
		cr_assert_eq(hr_codec_validate(d, n), HR_EBADMSG, "prefix %zu", n);
		to_json(d, n, HR_EBADMSG, &j);
		assert_buf_str(&j, "keep");
		cr_assert_eq(hr_codec_map_remove(d, n, "type", &j), HR_EBADMSG);
		assert_buf_str(&j, "keep");
	}
	/* Each prefix is also refused when copied to its own allocation, so
	 * ASan catches any read past the end. */
	for (size_t n = 0; n < hr_buf_len(&mp); n += 7) {
		unsigned char *c = malloc(n ? n : 1);
		cr_assert_not_null(c);
		memcpy(c, d, n);
		cr_assert_eq(hr_codec_validate(c, n), HR_EBADMSG);
		hr_buf_reset(&j);
		to_json(c, n, HR_EBADMSG, &j);
		free(c);
	}
	hr_buf_fini(&mp);
	hr_buf_fini(&j);
}

Test(codec, lengths_beyond_the_input_are_ebadmsg)
{
	static const struct {
		const char *mp;
		size_t n;
	} cases[] = {
		{ "\xdb\xff\xff\xff\xff"
		  "abc",
		    8 }, /* str32 */
		{ "\xda\x01\x00"
		  "abc",
		    6 }, /* str16 */
		{ "\xd9\x0a"
		  "abcde",
		    7 }, /* str8 */
		{ "\xa5"
		  "abc",
		    4 }, /* fixstr */
		{ "\xc6\xff\xff\xff\xff"
		  "a",
		    6 }, /* bin32 */
		{ "\xc4\x02"
		  "a",
		    3 }, /* bin8 */
		{ "\xc9\xff\xff\xff\xff\x01"
		  "a",
		    7 }, /* ext32 */
		{ "\xd8\x01"
		  "abc",
		    5 },                               /* fixext16 */
		{ "\xdd\xff\xff\xff\xff\xc0", 6 },     /* array32 */
		{ "\xdc\x00\x03\xc0\xc0", 5 },         /* array16 */
		{ "\x93\xc0\xc0", 3 },                 /* fixarray */
		{ "\xdf\xff\xff\xff\xff\xa0\xc0", 7 }, /* map32 */
		{ "\xde\x00\x02\xa0\xc0\xa0", 6 },     /* map16 */
		{ "\x82\xa0\xc0", 3 },                 /* fixmap */
		{ "\xcf\x00", 2 },                     /* uint64 */
		{ "\xcb\x00\x00", 3 },                 /* float64 */
		{ "\xc1", 1 },                         /* never used */
		{ "\xc0\xc0", 2 },                     /* two objects */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hr_buf j;
		hr_buf_init(&j, 0);
		cr_assert_eq(hr_codec_validate(cases[i].mp, cases[i].n), HR_EBADMSG, "case %zu", i);
		to_json(cases[i].mp, cases[i].n, HR_EBADMSG, &j);
		cr_assert_eq(hr_buf_len(&j), 0);
		hr_buf_fini(&j);
	}
	const unsigned char *v;
	size_t vl;
	cr_assert_eq(
	    hr_codec_map_get(MP("\xdf\xff\xff\xff\xff\xa0\xc0"), "x", &v, &vl), HR_EBADMSG);
	cr_assert_eq(
	    hr_codec_map_get(MP("\x81\xa1x\xdb\xff\xff\xff\xff"), "x", &v, &vl), HR_EBADMSG);
	cr_assert_eq(hr_codec_map_get(MP(""), "x", &v, &vl), HR_EBADMSG);
}

static void
nested(hr_buf *mp, int depth, bool maps)
{
	for (int i = 1; i < depth; i++) {
		if (maps) {
			cr_assert_eq(hr_mp_map(mp, 1), 0);
			cr_assert_eq(hr_mp_cstr(mp, "k"), 0);
		} else {
			cr_assert_eq(hr_mp_array(mp, 1), 0);
		}
	}
	cr_assert_eq(maps ? hr_mp_map(mp, 0) : hr_mp_array(mp, 0), 0);
}

Test(codec, depth_32_is_accepted_33_refused)
{
	for (int maps = 0; maps < 2; maps++) {
		hr_buf mp, j;
		hr_buf_init(&mp, 0);
		hr_buf_init(&j, 0);
		nested(&mp, 32, maps);
		cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), 0);
		to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &j);
		/* and back */
		hr_buf mp2;
		hr_buf_init(&mp2, 0);
		cr_assert_eq(hr_codec_json_to_msgpack((const char *)hr_buf_data(&j), hr_buf_len(&j),
		                 false, &mp2, NULL, 0),
		    0);
		assert_buf_eq(&mp2, hr_buf_data(&mp), hr_buf_len(&mp));

		hr_buf_reset(&mp);
		hr_buf_reset(&j);
		nested(&mp, 33, maps);
		cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), HR_EDEPTH);
		to_json(hr_buf_data(&mp), hr_buf_len(&mp), HR_EDEPTH, &j);
		cr_assert_eq(hr_buf_len(&j), 0);
		if (maps) {
			const unsigned char *v;
			size_t vl;
			cr_assert_eq(
			    hr_codec_map_get(hr_buf_data(&mp), hr_buf_len(&mp), "k", &v, &vl),
			    HR_EDEPTH);
		}
		hr_buf_fini(&mp);
		hr_buf_fini(&mp2);
		hr_buf_fini(&j);
	}
	/* JSON side. */
	char deep[80], err[64];
	for (int d = 32; d <= 33; d++) {
		hr_buf mp;
		hr_buf_init(&mp, 0);
		memset(deep, '[', (size_t)d);
		memset(deep + d, ']', (size_t)d);
		int rc
		    = hr_codec_json_to_msgpack(deep, (size_t)(2 * d), false, &mp, err, sizeof(err));
		cr_assert_eq(rc, d == 32 ? 0 : HR_EDEPTH);
		if (d == 33) {
			cr_assert_str_eq(err, "nesting too deep");
			cr_assert_eq(hr_buf_len(&mp), 0);
		}
		hr_buf_fini(&mp);
	}
	/* A long lie of nesting that jansson itself refuses. */
	char *huge = malloc(20000);
	cr_assert_not_null(huge);
	memset(huge, '[', 20000);
	hr_buf mp;
	hr_buf_init(&mp, 0);
	cr_assert_eq(
	    hr_codec_json_to_msgpack(huge, 20000, false, &mp, err, sizeof(err)), HR_EDEPTH);
	cr_assert_str_eq(err, "nesting too deep");
	free(huge);
	hr_buf_fini(&mp);
}

/* ---------------------------------------------------------------- maps */

Test(codec, map_get_finds_value_span)
{
	hr_buf mp;
	hr_buf_init(&mp, 0);
	py_pack(
	    "{1: [1, 2], (3, 4): {'x': 1}, 'type': 'chat.message', 'message': {'a': [1]}}", &mp);
	const unsigned char *v = NULL;
	size_t vl = 0;
	cr_assert_eq(hr_codec_map_get(hr_buf_data(&mp), hr_buf_len(&mp), "message", &v, &vl), 0);
	cr_assert_eq(vl, 5);
	cr_assert_eq(memcmp(v,
	                 "\x81\xa1"
	                 "a\x91\x01",
	                 5),
	    0);
	const char *t;
	size_t tl;
	cr_assert_eq(hr_codec_get_type(hr_buf_data(&mp), hr_buf_len(&mp), &t, &tl), 0);
	cr_assert_eq(tl, 12);
	cr_assert_eq(memcmp(t, "chat.message", 12), 0);
	cr_assert_eq(
	    hr_codec_map_get(hr_buf_data(&mp), hr_buf_len(&mp), "missing", &v, &vl), HR_ENOENT);
	cr_assert_eq(
	    hr_codec_map_get(hr_buf_data(&mp), hr_buf_len(&mp), "typ", &v, &vl), HR_ENOENT);
	hr_buf_fini(&mp);
}

Test(codec, map_get_does_not_decode_other_values)
{
	/* The value before "type" holds invalid UTF-8 and a non-str key: a
	 * lookup steps over it, only validation and JSON care. */
	static const unsigned char m[]
	    = { 0x82, 0xa1, 'x', 0x81, 0x01, 0xa1, 0xff, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'y' };
	const char *t;
	size_t tl;
	cr_assert_eq(hr_codec_get_type(m, sizeof(m), &t, &tl), 0);
	cr_assert_eq(tl, 1);
	cr_assert_eq(*t, 'y');
	cr_assert_eq(hr_codec_validate(m, sizeof(m)), HR_EUTF8);
}

Test(codec, map_get_and_get_type_on_non_maps)
{
	const unsigned char *v;
	size_t vl;
	const char *t;
	size_t tl;
	cr_assert_eq(hr_codec_map_get(MP("\x91\xc0"), "type", &v, &vl), HR_ETYPE);
	cr_assert_eq(hr_codec_map_get(MP("\xa4type"), "type", &v, &vl), HR_ETYPE);
	cr_assert_eq(hr_codec_map_get(MP("\x05"), "type", &v, &vl), HR_ETYPE);
	cr_assert_eq(hr_codec_get_type(MP("\xc0"), &t, &tl), HR_ETYPE);
	cr_assert_eq(hr_codec_get_type(MP("\x80"), &t, &tl), HR_ENOENT);
	cr_assert_eq(hr_codec_get_type(MP("\x81\xa4type\x05"), &t, &tl), HR_ETYPE);
	cr_assert_eq(hr_codec_get_type(MP("\x81\xa4type\xc4\x01x"), &t, &tl), HR_ETYPE);
	cr_assert_eq(hr_codec_get_type(MP("\x81\xa4type\xa1\xff"), &t, &tl), HR_EUTF8);
	cr_assert_eq(hr_codec_get_type(MP("\x81\xa4type\xa0"), &t, &tl), 0);
	cr_assert_eq(tl, 0);
	cr_assert_eq(hr_codec_get_type(MP("\x81\xa4type"), &t, &tl), HR_EBADMSG);
}

Test(codec, map_remove_strips_the_key)
{
	hr_buf mp, out;
	hr_buf_init(&mp, 0);
	hr_buf_init(&out, 0);
	py_pack("{'type': 't', '__asgi_channel__': 'specific.abc!def', 'm': [1, {'x': 2}]}", &mp);
	cr_assert_eq(
	    hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "__asgi_channel__", &out), 0);
	cr_assert(py_unpack_equals(
	    hr_buf_data(&out), hr_buf_len(&out), "{'type': 't', 'm': [1, {'x': 2}]}"));
	/* Absent key: an identical copy. */
	hr_buf_reset(&out);
	cr_assert_eq(hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "nope", &out), 0);
	assert_buf_eq(&out, hr_buf_data(&mp), hr_buf_len(&mp));
	/* First, last and only key. */
	hr_buf_reset(&out);
	cr_assert_eq(hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "type", &out), 0);
	cr_assert(py_unpack_equals(hr_buf_data(&out), hr_buf_len(&out),
	    "{'__asgi_channel__': 'specific.abc!def', 'm': [1, {'x': 2}]}"));
	hr_buf_reset(&out);
	cr_assert_eq(hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "m", &out), 0);
	cr_assert(py_unpack_equals(hr_buf_data(&out), hr_buf_len(&out),
	    "{'type': 't', '__asgi_channel__': 'specific.abc!def'}"));
	hr_buf_reset(&out);
	cr_assert_eq(hr_codec_map_remove(MP("\x81\xa1k\xc0"), "k", &out), 0);
	assert_buf_eq(&out, "\x80", 1);
	/* map16 with 16 pairs shrinks to a fixmap of 15. */
	hr_buf_reset(&mp);
	hr_buf_reset(&out);
	py_pack("{str(i): i for i in range(16)}", &mp);
	cr_assert_eq(hr_buf_data(&mp)[0], 0xde);
	cr_assert_eq(hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "7", &out), 0);
	cr_assert_eq(hr_buf_data(&out)[0], 0x8f);
	cr_assert(py_unpack_equals(
	    hr_buf_data(&out), hr_buf_len(&out), "{str(i): i for i in range(16) if i != 7}"));
	hr_buf_fini(&mp);
	hr_buf_fini(&out);
}

Test(codec, map_remove_refuses_bad_input_and_keeps_out)
{
	hr_buf out;
	hr_buf_init(&out, 0);
	cr_assert_eq(hr_buf_append(&out, "keep", 4), 0);
	cr_assert_eq(hr_codec_map_remove(MP("\x91\xc0"), "k", &out), HR_ETYPE);
	cr_assert_eq(hr_codec_map_remove(MP("\x81\xa1k\xc0\xc0"), "k", &out), HR_EBADMSG);
	cr_assert_eq(hr_codec_map_remove(MP("\x82\xa1k\xc0"), "k", &out), HR_EBADMSG);
	assert_buf_str(&out, "keep");
	/* Every copy of a repeated key goes. */
	cr_assert_eq(hr_codec_map_remove(MP("\x83\xa1k\x01\xa1j\x02\xa1k\x03"), "k", &out), 0);
	assert_buf_eq(&out, "keep\x81\xa1j\x02", 8);
	hr_buf_fini(&out);
}

/* ---------------------------------------------------------------- hostile and unusual input */

Test(codec, counts_the_input_cannot_hold_allocate_nothing)
{
	/* msgpack-c's object unpacker allocates count x 24 bytes (48 for a
	 * map) when it reads a container header: these headers ask for
	 * ~96 and ~192 GiB. The codec must refuse them without trying (under
	 * ASan such a malloc aborts the test), also when they are nested. */
	static const unsigned char heads[][5] = {
		{ 0xdd, 0xff, 0xff, 0xff, 0xff },
		{ 0xdf, 0xff, 0xff, 0xff, 0xff },
	};
	for (size_t h = 0; h < 2; h++) {
		hr_buf mp, j;
		hr_buf_init(&mp, 0);
		hr_buf_init(&j, 0);
		cr_assert_eq(hr_buf_append(&mp, "\x81\xa1k", 3), 0);
		for (int d = 0; d < 20; d++)
			cr_assert_eq(hr_buf_append(&mp, heads[h], 5), 0);
		for (int i = 0; i < 4000; i++)
			cr_assert_eq(hr_mp_nil(&mp), 0);
		const unsigned char *p = hr_buf_data(&mp), *v;
		size_t n = hr_buf_len(&mp), vl;
		cr_assert_eq(hr_codec_validate(p, n), HR_EBADMSG);
		/* The first fault in input order is reported: for JSON, the
		 * key of the second map is a map. */
		to_json(p, n, h == 0 ? HR_EBADMSG : HR_ETYPE, &j);
		cr_assert_eq(hr_buf_len(&j), 0);
		cr_assert_eq(hr_codec_map_get(p, n, "k", &v, &vl), HR_EBADMSG);
		cr_assert_eq(hr_codec_map_remove(p, n, "k", &j), HR_EBADMSG);
		cr_assert_eq(hr_buf_len(&j), 0);
		/* and as the top value */
		to_json(p + 3, n - 3, h == 0 ? HR_EBADMSG : HR_ETYPE, &j);
		cr_assert_eq(hr_codec_validate(p + 3, n - 3), HR_EBADMSG);
		cr_assert_eq(
		    hr_codec_map_get(p + 3, n - 3, "k", &v, &vl), h == 0 ? HR_ETYPE : HR_EBADMSG);
		hr_buf_fini(&mp);
		hr_buf_fini(&j);
	}
}

Test(codec, wide_headers_for_small_values_are_read)
{
	/* Other packers may use map16/map32/array32/str32 for short values. */
	static const unsigned char m16[] = { 0xde, 0x00, 0x02, 0xa1, 'a', 0x01, 0xdb, 0, 0, 0, 4,
		't', 'y', 'p', 'e', 0xd9, 0x01, 'x' };
	static const unsigned char m32[] = { 0xdf, 0, 0, 0, 2, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'y',
		0xa1, 'l', 0xdd, 0, 0, 0, 1, 0xc2 };
	const unsigned char *v;
	size_t vl;
	const char *t;
	size_t tl;
	check_json(m16, sizeof(m16), "{\"a\":1,\"type\":\"x\"}");
	check_json(m32, sizeof(m32), "{\"type\":\"y\",\"l\":[false]}");
	cr_assert_eq(hr_codec_get_type(m16, sizeof(m16), &t, &tl), 0);
	cr_assert(tl == 1 && *t == 'x');
	cr_assert_eq(hr_codec_map_get(m32, sizeof(m32), "l", &v, &vl), 0);
	cr_assert_eq(v, m32 + 14);
	cr_assert_eq(vl, 6);
	cr_assert_eq(hr_codec_map_get(m16, sizeof(m16), "a", &v, &vl), 0);
	cr_assert(v == m16 + 5 && vl == 1);
	/* map_remove writes the smallest header for what stays */
	hr_buf out;
	hr_buf_init(&out, 0);
	cr_assert_eq(hr_codec_map_remove(m32, sizeof(m32), "type", &out), 0);
	assert_buf_eq(&out, "\x81\xa1l\xdd\x00\x00\x00\x01\xc2", 9);
	hr_buf_reset(&out);
	cr_assert_eq(hr_codec_map_remove(m16, sizeof(m16), "a", &out), 0);
	assert_buf_eq(&out, "\x81\xdb\x00\x00\x00\x04type\xd9\x01x", 13);
	hr_buf_fini(&out);
	/* a map32 header Python wrote, found past its 70000 pairs */
	hr_buf mp;
	hr_buf_init(&mp, 0);
	py_pack("dict([(str(i), i) for i in range(70000)] + [('type', 'last')])", &mp);
	cr_assert_eq(hr_buf_data(&mp)[0], 0xdf);
	cr_assert_eq(hr_codec_get_type(hr_buf_data(&mp), hr_buf_len(&mp), &t, &tl), 0);
	cr_assert(tl == 4 && memcmp(t, "last", 4) == 0);
	cr_assert_eq(t + 4, (const char *)hr_buf_data(&mp) + hr_buf_len(&mp));
	hr_buf_fini(&mp);
}

Test(codec, map_get_reads_values_up_to_depth_32)
{
	hr_buf mp;
	hr_buf_init(&mp, 0);
	nested(&mp, 32, true);
	const unsigned char *v;
	size_t vl;
	cr_assert_eq(hr_codec_map_get(hr_buf_data(&mp), hr_buf_len(&mp), "k", &v, &vl), 0);
	cr_assert_eq(v, hr_buf_data(&mp) + 3);
	cr_assert_eq(vl, hr_buf_len(&mp) - 3);
	hr_buf out;
	hr_buf_init(&out, 0);
	cr_assert_eq(hr_codec_map_remove(hr_buf_data(&mp), hr_buf_len(&mp), "x", &out), 0);
	assert_buf_eq(&out, hr_buf_data(&mp), hr_buf_len(&mp));
	hr_buf_fini(&out);
	hr_buf_fini(&mp);
}

Test(codec, container_keys_are_stepped_over_but_not_json)
{
	hr_buf mp, j;
	hr_buf_init(&mp, 0);
	hr_buf_init(&j, 0);
	py_pack("{(1, (2, 3)): {'x': 1}, 'type': 't'}", &mp);
	const char *t;
	size_t tl;
	cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), 0);
	cr_assert_eq(hr_codec_get_type(hr_buf_data(&mp), hr_buf_len(&mp), &t, &tl), 0);
	cr_assert(tl == 1 && *t == 't');
	to_json(hr_buf_data(&mp), hr_buf_len(&mp), HR_ETYPE, &j);
	cr_assert_eq(hr_buf_len(&j), 0);
	hr_buf_fini(&mp);
	hr_buf_fini(&j);
}

Test(codec, writer_refusals_leave_the_buffer_as_it_was)
{
	hr_buf b;
	hr_buf_init(&b, 0);
	cr_assert_eq(hr_buf_append(&b, "keep", 4), 0);
	/* Only the length is looked at: no 4 GiB string is needed. */
	cr_assert_eq(hr_mp_str(&b, "x", (size_t)UINT32_MAX + 1), HR_EMSGSIZE);
	assert_buf_str(&b, "keep");
	cr_assert_eq(hr_mp_raw(&b, "", 0), 0);
	assert_buf_str(&b, "keep");
	hr_buf_fini(&b);
}

Test(codec, headers_and_strs_one_value_at_a_time)
{
	uint32_t n;
	size_t hl, used, sl;
	const char *s;
	cr_assert_eq(hr_codec_map_header(MP("\x80"), &n, &hl), 0);
	cr_assert(n == 0 && hl == 1);
	cr_assert_eq(hr_codec_map_header(MP("\x8f\xc1"), &n, &hl), 0); /* elements not read */
	cr_assert(n == 15 && hl == 1);
	cr_assert_eq(hr_codec_map_header(MP("\xde\x01\x02"), &n, &hl), 0);
	cr_assert(n == 0x102 && hl == 3);
	cr_assert_eq(hr_codec_map_header(MP("\xdf\x01\x02\x03\x04"), &n, &hl), 0);
	cr_assert(n == 0x01020304 && hl == 5);
	cr_assert_eq(hr_codec_map_header(MP("\xdf\x01\x02\x03"), &n, &hl), HR_EBADMSG);
	cr_assert_eq(hr_codec_map_header(MP(""), &n, &hl), HR_EBADMSG);
	cr_assert_eq(hr_codec_map_header(MP("\xc1"), &n, &hl), HR_EBADMSG);
	cr_assert_eq(hr_codec_map_header(MP("\x90"), &n, &hl), HR_ETYPE);
	cr_assert_eq(hr_codec_map_header(MP("\xa1x"), &n, &hl), HR_ETYPE);
	cr_assert_eq(hr_codec_map_header(MP("\xa2x"), &n, &hl), HR_EBADMSG);
	cr_assert_eq(hr_codec_array_header(MP("\x93"), &n, &hl), 0);
	cr_assert(n == 3 && hl == 1);
	cr_assert_eq(hr_codec_array_header(MP("\xdc\x00\x10"), &n, &hl), 0);
	cr_assert(n == 16 && hl == 3);
	cr_assert_eq(hr_codec_array_header(MP("\xdd\x00\x01\x00\x00"), &n, &hl), 0);
	cr_assert(n == 65536 && hl == 5);
	cr_assert_eq(hr_codec_array_header(MP("\x80"), &n, &hl), HR_ETYPE);
	cr_assert_eq(hr_codec_array_header(MP("\xdc\x00"), &n, &hl), HR_EBADMSG);

	static const struct {
		const char *mp;
		size_t len, used, n;
	} strs[] = {
		{ "\xa0\xc1", 2, 1, 0 },
		{ "\xa3"
		  "abc\xc0",
		    5, 4, 3 },
		{ "\xd9\x00", 2, 2, 0 },
		{ "\xd9\x02"
		  "ab",
		    4, 4, 2 },
		{ "\xda\x00\x01z", 4, 4, 1 },
		{ "\xdb\x00\x00\x00\x02zz\x01", 8, 7, 2 },
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		cr_assert_eq(hr_codec_read_str(strs[i].mp, strs[i].len, &s, &sl, &used), 0);
		cr_assert_eq(used, strs[i].used, "case %zu", i);
		cr_assert_eq(sl, strs[i].n);
		if (sl != 0)
			cr_assert_eq(s, strs[i].mp + strs[i].used - strs[i].n);
		else
			cr_assert(s >= strs[i].mp && s <= strs[i].mp + strs[i].len);
	}
	cr_assert_eq(hr_codec_read_str(MP("\xa1\xff"), &s, &sl, &used), 0); /* no UTF-8 check */
	cr_assert_eq(hr_codec_read_str(MP("\xc4\x01x"), &s, &sl, &used), HR_ETYPE);
	cr_assert_eq(hr_codec_read_str(MP("\x91\xa0"), &s, &sl, &used), HR_ETYPE);
	cr_assert_eq(hr_codec_read_str(MP("\x05"), &s, &sl, &used), HR_ETYPE);
	cr_assert_eq(hr_codec_read_str(MP("\xdb\xff\xff\xff\xff"), &s, &sl, &used), HR_EBADMSG);
	cr_assert_eq(hr_codec_read_str(MP("\xa2x"), &s, &sl, &used), HR_EBADMSG);
	cr_assert_eq(hr_codec_read_str(MP(""), &s, &sl, &used), HR_EBADMSG);
}
