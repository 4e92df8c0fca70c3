/*
 * test_codec_json.c: msgpack → JSON (escaping, UTF-8, ints, floats, bin and
 * ext) and JSON → msgpack, checked against Python's json and msgpack.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_codec.h"
#include "layer/layer.h"

TestSuite(codec_json, .timeout = 60);

/* ---------------------------------------------------------------- round trips */

Test(codec_json, json_round_trip_of_every_type)
{
	static const char *docs[] = {
		"null",
		"true",
		"false",
		"0",
		"-1",
		"127",
		"128",
		"255",
		"256",
		"65535",
		"65536",
		"4294967295",
		"4294967296",
		"-32",
		"-33",
		"-128",
		"-129",
		"-32768",
		"-32769",
		"-2147483648",
		"-2147483649",
		"9223372036854775807",
		"-9223372036854775808",
		"0.1",
		"1.5",
		"-2.25",
		"1e+300",
		"-0.0",
		"1.0",
		"2.5e-08",
		"\"\"",
		"\"abc\"",
		"[]",
		"{}",
		"[1,[2,[3,[]]]]",
		"{\"a\":[1,{\"b\":null}],\"c\":\"d\",\"e\":{}}",
		("{\"type\":\"notification.message\",\"message\":{\"id\":7,\"ok\":true,"
		 "\"tags\":[\"x\",\"y\"],\"score\":0.5}}"),
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		hr_buf mp, j;
		char err[128] = "";
		hr_buf_init(&mp, 0);
		hr_buf_init(&j, 0);
		int rc = hr_codec_json_to_msgpack(
		    docs[i], strlen(docs[i]), false, &mp, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s: %d %s", docs[i], rc, err);
		cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), 0);
		to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &j);
		assert_buf_str(&j, docs[i]);
		hr_buf_fini(&mp);
		hr_buf_fini(&j);
	}
}

Test(codec_json, long_strings_arrays_and_maps_round_trip)
{
	/* Sizes that cross fixstr/str8/str16/str32 and fix/16/32 containers. */
	static const size_t sizes[] = { 0, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		hr_buf json, mp, back;
		hr_buf_init(&json, 0);
		hr_buf_init(&mp, 0);
		hr_buf_init(&back, 0);
		/* {"s":"aaaa…","a":[0,1,…],"m":{"k0":0,…}} */
		cr_assert_eq(hr_buf_append(&json, "{\"s\":\"", 6), 0);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(hr_buf_putc(&json, 'a'), 0);
		cr_assert_eq(hr_buf_append(&json, "\",\"a\":[", 7), 0);
		for (size_t i = 0; i < n; i++) {
			char t[32];
			int l = snprintf(t, sizeof(t), "%s%zu", i ? "," : "", i % 100);
			cr_assert_eq(hr_buf_append(&json, t, (size_t)l), 0);
		}
		cr_assert_eq(hr_buf_append(&json, "],\"m\":{", 7), 0);
		for (size_t i = 0; i < n && i < 20000; i++) {
			char t[48];
			int l = snprintf(t, sizeof(t), "%s\"k%zu\":%zu", i ? "," : "", i, i);
			cr_assert_eq(hr_buf_append(&json, t, (size_t)l), 0);
		}
		cr_assert_eq(hr_buf_append(&json, "}}", 2), 0);
		cr_assert_eq(hr_codec_json_to_msgpack((const char *)hr_buf_data(&json),
		                 hr_buf_len(&json), true, &mp, NULL, 0),
		    0);
		to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &back);
		assert_buf_eq(&back, hr_buf_data(&json), hr_buf_len(&json));
		hr_buf_fini(&json);
		hr_buf_fini(&mp);
		hr_buf_fini(&back);
	}
}

/* ---------------------------------------------------------------- JSON output */

Test(codec_json, json_escaping)
{
	check_json(MP("\xa2\"\\"), "\"\\\"\\\\\"");
	check_json(MP("\xa5\x00\x01\n\x1f\x7f"), "\"\\u0000\\u0001\\u000a\\u001f\x7f\"");
	check_json(MP("\xa3/\t\r"), "\"/\\u0009\\u000d\"");
	/* U+2028, U+2029 escaped; other non-ASCII passes through as UTF-8. */
	check_json(
	    MP("\xa9\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa"), "\"\\u2028\\u2029\xe2\x80\xaa\"");
	check_json(MP("\xa4\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
	check_json(MP("\xa2\xc3\xa9"), "\"\xc3\xa9\"");
	/* Keys are escaped the same way. */
	check_json(MP("\x81\xa2\"\n\xa0"), "{\"\\\"\\u000a\":\"\"}");
	/* And Python reads all of it back. */
	hr_buf j;
	hr_buf_init(&j, 0);
	to_json(MP("\xad\"\\\x01\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\xa9\x7f"), 0, &j);
	cr_assert(py_json_equals(
	    hr_buf_data(&j), hr_buf_len(&j), "'\"\\\\\\x01\\u2028\\U0001F600\\u00e9\\x7f'"));
	hr_buf_fini(&j);
}

Test(codec_json, bin_is_base64)
{
	check_json(MP("\xc4\x00"), "\"\"");
	check_json(MP("\xc4\x01\x00"), "\"AA==\"");
	check_json(MP("\xc4\x02\x00\x01"), "\"AAE=\"");
	check_json(MP("\xc4\x03\x00\x01\xff"), "\"AAH/\"");
	check_json(MP("\xc4\x04\xfb\xff\xbf\x00"), "\"+/+/AA==\"");
	check_json(MP("\xc5\x00\x03xyz"), "\"eHl6\"");
	check_json(MP("\xc6\x00\x00\x00\x01z"), "\"eg==\"");
}

Test(codec_json, ext_is_an_object)
{
	check_json(MP("\xd4\x01\x41"), "{\"ext\":1,\"data\":\"QQ==\"}");
	check_json(MP("\xd4\xff\x00"), "{\"ext\":-1,\"data\":\"AA==\"}");
	check_json(MP("\xd5\x02\x41\x42"), "{\"ext\":2,\"data\":\"QUI=\"}");
	check_json(MP("\xd6\x03"
	              "abcd"),
	    "{\"ext\":3,\"data\":\"YWJjZA==\"}");
	check_json(MP("\xd7\x04"
	              "abcdefgh"),
	    "{\"ext\":4,\"data\":\"YWJjZGVmZ2g=\"}");
	check_json(MP("\xd8\x80"
	              "abcdefghijklmnop"),
	    "{\"ext\":-128,\"data\":\"YWJjZGVmZ2hpamtsbW5vcA==\"}");
	check_json(MP("\xc7\x00\x05"), "{\"ext\":5,\"data\":\"\"}");
	check_json(MP("\xc8\x00\x01\x06z"), "{\"ext\":6,\"data\":\"eg==\"}");
	check_json(MP("\xc9\x00\x00\x00\x02\x07zz"), "{\"ext\":7,\"data\":\"eno=\"}");
}

Test(codec_json, floats)
{
	check_json(MP("\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a"), "0.1");
	check_json(MP("\xcb\x7e\x37\xe4\x3c\x88\x00\x75\x9c"), "1e+300");
	check_json(MP("\xcb\x80\x00\x00\x00\x00\x00\x00\x00"), "-0.0");
	check_json(MP("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), "1.0");
	check_json(MP("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), "null"); /* NaN */
	check_json(MP("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"), "null"); /* +Inf */
	check_json(MP("\xcb\xff\xf0\x00\x00\x00\x00\x00\x00"), "null"); /* -Inf */
	check_json(MP("\xca\x3f\x00\x00\x00"), "0.5");                  /* float32 */
	check_json(MP("\xca\x3d\xcc\xcc\xcd"), "0.10000000149011612");  /* as Python */
	check_json(MP("\xca\x7f\x80\x00\x00"), "null");

	/* Short decimals (the fast path) and the edges of its range. */
	static const struct {
		double d;
		const char *s;
	} dec[] = {
		{ 0.75, "0.75" },
		{ -2.5, "-2.5" },
		{ 100.0, "100.0" },
		{ 1700000000.123, "1700000000.123" },
		{ 0.0001, "0.0001" },
		{ 0.00001, "1e-05" },
		{ 12345678.12345678, "12345678.12345678" },
		{ 999999999999999.0, "999999999999999.0" },
		{ 1e15, "1e+15" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1.0 / 3.0, "0.3333333333333333" },
	};
	for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
		hr_buf mp;
		hr_buf_init(&mp, 0);
		cr_assert_eq(hr_mp_double(&mp, dec[i].d), 0);
		check_json(hr_buf_data(&mp), hr_buf_len(&mp), dec[i].s);
		hr_buf_fini(&mp);
	}

	/* Every double survives msgpack → JSON → strtod bit for bit: random
	 * bit patterns, and decimals with few digits. */
	for (int i = -300000; i < 300000; i += 7) {
		double ds[] = { i / 1000.0, i / 7.0, i * 1e-8, i * 0.01 + 0.005 };
		for (size_t k = 0; k < 4; k++) {
			hr_buf mp, j;
			hr_buf_init(&mp, 0);
			hr_buf_init(&j, 0);
			cr_assert_eq(hr_mp_double(&mp, ds[k]), 0);
			to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &j);
			cr_assert_eq(hr_buf_putc(&j, 0), 0);
			double back = strtod((const char *)hr_buf_data(&j), NULL);
			cr_assert_eq(memcmp(&back, &ds[k], 8), 0, "%a printed as %s", ds[k],
			    hr_buf_data(&j));
			hr_buf_fini(&mp);
			hr_buf_fini(&j);
		}
	}
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double d;
		memcpy(&d, &x, 8);
		if (!isfinite(d))
			continue;
		hr_buf mp, j;
		hr_buf_init(&mp, 0);
		hr_buf_init(&j, 0);
		cr_assert_eq(hr_mp_double(&mp, d), 0);
		to_json(hr_buf_data(&mp), hr_buf_len(&mp), 0, &j);
		cr_assert_eq(hr_buf_putc(&j, 0), 0);
		double back = strtod((const char *)hr_buf_data(&j), NULL);
		cr_assert_eq(memcmp(&back, &d, 8), 0, "%a printed as %s", d, hr_buf_data(&j));
		hr_buf_fini(&mp);
		hr_buf_fini(&j);
	}
}

Test(codec_json, non_str_keys_are_refused_for_json)
{
	hr_buf mp, j;
	hr_buf_init(&mp, 0);
	hr_buf_init(&j, 0);
	py_pack("{1: 2}", &mp);
	cr_assert_eq(hr_codec_validate(hr_buf_data(&mp), hr_buf_len(&mp)), 0);
	to_json(hr_buf_data(&mp), hr_buf_len(&mp), HR_ETYPE, &j);
	cr_assert_eq(hr_buf_len(&j), 0);
	hr_buf_reset(&mp);
	py_pack("{'a': {None: 1}}", &mp);
	to_json(hr_buf_data(&mp), hr_buf_len(&mp), HR_ETYPE, &j);
	hr_buf_reset(&mp);
	py_pack("{b'k': 1}", &mp);
	to_json(hr_buf_data(&mp), hr_buf_len(&mp), HR_ETYPE, &j);
	cr_assert_eq(hr_buf_len(&j), 0);
	hr_buf_fini(&mp);
	hr_buf_fini(&j);
}

/* ---------------------------------------------------------------- JSON input */

Test(codec_json, json_to_msgpack_matches_python)
{
	static const char *docs[] = {
		("{\"type\":\"chat.message\",\"text\":\"h\\u00e9\\ud83d\\ude00\\u0000\",\"n\":-"
		 "70000,"
		 "\"f\":0.1,\"z\":null,\"t\":true,\"l\":[1,2.5,\"x\",[],{}],\"big\":"
		 "9223372036854775807}"),
		"[1e300, -0.0, 1E2, 0.5e-3, -9223372036854775808]",
		"\"just a string\"",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		hr_buf mp;
		hr_buf_init(&mp, 0);
		cr_assert_eq(
		    hr_codec_json_to_msgpack(docs[i], strlen(docs[i]), false, &mp, NULL, 0), 0);
		/* Python: msgpack.unpackb(ours) == json.loads(doc), types included. */
		char expr[1024];
		snprintf(expr, sizeof(expr), "json.loads(r'''%s''')", docs[i]);
		cr_assert(py_unpack_equals(hr_buf_data(&mp), hr_buf_len(&mp), expr), "%s", docs[i]);
		/* And byte for byte what packb(json.loads(doc)) gives. */
		hr_buf theirs;
		hr_buf_init(&theirs, 0);
		char pexpr[1024];
		snprintf(pexpr, sizeof(pexpr), "__import__('json').loads(r'''%s''')", docs[i]);
		py_pack(pexpr, &theirs);
		assert_buf_eq(&mp, hr_buf_data(&theirs), hr_buf_len(&theirs));
		hr_buf_fini(&theirs);
		hr_buf_fini(&mp);
	}
}

Test(codec_json, json_errors)
{
	hr_buf out;
	char err[96];
	hr_buf_init(&out, 0);
	cr_assert_eq(hr_buf_append(&out, "keep", 4), 0);
	cr_assert_eq(
	    hr_codec_json_to_msgpack("{\"a\":}", 6, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_str_eq(err, "invalid JSON at line 1 column 6");
	cr_assert_eq(
	    hr_codec_json_to_msgpack("{\"a\":1}\n[", 9, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_str_eq(err, "invalid JSON at line 2 column 1");
	cr_assert_eq(hr_codec_json_to_msgpack("", 0, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_eq(hr_codec_json_to_msgpack("NaN", 3, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_eq(
	    hr_codec_json_to_msgpack("1e400", 5, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_eq(
	    hr_codec_json_to_msgpack("\"\xff\"", 3, false, &out, err, sizeof(err)), HR_EUTF8);
	cr_assert_eq(strncmp(err, "invalid UTF-8 at line 1", 23), 0, "%s", err);
	cr_assert_eq(
	    hr_codec_json_to_msgpack("\"\\ud800\"", 8, false, &out, err, sizeof(err)), HR_EBADMSG);
	cr_assert_eq(hr_codec_json_to_msgpack("[1]", 3, true, &out, err, sizeof(err)), HR_ETYPE);
	cr_assert_str_eq(err, "not a JSON object");
	cr_assert_eq(hr_codec_json_to_msgpack("\"s\"", 3, true, &out, NULL, 0), HR_ETYPE);
	cr_assert_eq(hr_codec_json_to_msgpack("{}", 2, true, &out, NULL, 0), 0);
	assert_buf_str(&out, "keep\x80");
	hr_buf_fini(&out);
}

Test(codec_json, json_duplicate_keys_last_wins)
{
	hr_buf out, j;
	hr_buf_init(&out, 0);
	hr_buf_init(&j, 0);
	const char *doc = "{\"a\":1,\"b\":2,\"a\":3}";
	cr_assert_eq(hr_codec_json_to_msgpack(doc, strlen(doc), true, &out, NULL, 0), 0);
	to_json(hr_buf_data(&out), hr_buf_len(&out), 0, &j);
	assert_buf_str(&j, "{\"a\":3,\"b\":2}"); /* as Python's json.loads */
	hr_buf_fini(&out);
	hr_buf_fini(&j);
}

Test(codec_json, json_integers_beyond_int64_become_floats)
{
	hr_buf out, j;
	hr_buf_init(&out, 0);
	hr_buf_init(&j, 0);
	const char *doc = "[18446744073709551615, 7, -99999999999999999999]";
	cr_assert_eq(hr_codec_json_to_msgpack(doc, strlen(doc), false, &out, NULL, 0), 0);
	to_json(hr_buf_data(&out), hr_buf_len(&out), 0, &j);
	assert_buf_str(&j, "[1.8446744073709552e+19,7,-1e+20]");
	hr_buf_fini(&out);
	hr_buf_fini(&j);
}
