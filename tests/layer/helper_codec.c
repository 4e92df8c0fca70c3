/*
 * helper_codec.c: fixtures for the codec tests (helper_codec.h). Linked into
 * every tests/layer test; only the codec tests include the header.
 * Single-threaded test code.
 */
#define _POSIX_C_SOURCE 200809L /* popen, setenv */

#include "helper_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#define PY "/usr/bin/python3"

/* Run a Python script (passed through the environment, so no quoting) with
 * `in` on stdin when non-NULL, else capturing stdout into out. Returns the
 * exit status. */
int
py_run(const char *script, const void *in, size_t inlen, hr_buf *out)
{
	cr_assert_eq(setenv("HR_PY", script, 1), 0);
	FILE *f = popen(PY " -c 'import os; exec(os.environ[\"HR_PY\"])'", in ? "w" : "r");
	cr_assert_not_null(f);
	if (in != NULL) {
		cr_assert_eq(fwrite(in, 1, inlen, f), inlen);
	} else {
		char tmp[4096];
		size_t n;
		while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			cr_assert_eq(hr_buf_append(out, tmp, n), 0);
	}
	int st = pclose(f);
	cr_assert(WIFEXITED(st), "python did not exit");
	return WEXITSTATUS(st);
}

/* msgpack.packb(expr, use_bin_type=True) appended to out. */
void
py_pack(const char *expr, hr_buf *out)
{
	char script[8192];
	snprintf(script, sizeof(script),
	    "import msgpack, sys\n"
	    "sys.stdout.buffer.write(msgpack.packb(%s, use_bin_type=True))\n",
	    expr);
	cr_assert_eq(py_run(script, NULL, 0, out), 0, "packing %s", expr);
}

/* Python's json.loads(text) == expr? */
bool
py_json_equals(const unsigned char *text, size_t n, const char *expr)
{
	char script[8192];
	snprintf(script, sizeof(script),
	    "import json, sys, math\n"
	    "got = json.loads(sys.stdin.buffer.read().decode('utf-8'))\n"
	    "want = %s\n"
	    "if got != want:\n"
	    "    print('got', repr(got)[:300], 'want', repr(want)[:300], file=sys.stderr)\n"
	    "    sys.exit(1)\n",
	    expr);
	return py_run(script, text, n, NULL) == 0;
}

/* msgpack.unpackb(mp) == json.loads(json)? */
bool
py_unpack_equals(const unsigned char *mp, size_t n, const char *expr)
{
	char script[8192];
	snprintf(script, sizeof(script),
	    "import msgpack, sys, json\n"
	    "got = msgpack.unpackb(sys.stdin.buffer.read(), raw=False, strict_map_key=False)\n"
	    "want = %s\n"
	    "if got != want or repr(got) != repr(want):\n"
	    "    print('got', repr(got)[:300], 'want', repr(want)[:300], file=sys.stderr)\n"
	    "    sys.exit(1)\n",
	    expr);
	return py_run(script, mp, n, NULL) == 0;
}

/* msgpack bytes → JSON text; asserts the return code. */
void
to_json(const void *mp, size_t n, int want_rc, hr_buf *out)
{
	int rc = hr_codec_msgpack_to_json(mp, n, out);
	cr_assert_eq(rc, want_rc, "rc %d (%s), want %d", rc, hr_strerror(rc), want_rc);
}

void
check_json(const void *mp, size_t n, const char *want)
{
	hr_buf j;
	hr_buf_init(&j, 0);
	to_json(mp, n, 0, &j);
	assert_buf_str(&j, want);
	hr_buf_fini(&j);
}
