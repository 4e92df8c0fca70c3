/*
 * test_token.c: `herald token` (cli/token.c). Tokens are checked by a real
 * peer: Python's hmac/hashlib/base64 through Debian's /usr/bin/python3.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_impl.h"

/* Verifies argv[1] (token) with argv[2] (secret); prints the claims as
 * "user_id sub iat exp" and exits 0, or says what is wrong and exits 1. */
static const char VERIFY_PY[]
    = "import base64, hashlib, hmac, json, sys\n"
      "tok, secret = sys.argv[1], sys.argv[2].encode()\n"
      "parts = tok.split('.')\n"
      "assert len(parts) == 3, 'three parts'\n"
      "for p in parts:\n"
      "    assert '=' not in p and '+' not in p and '/' not in p, 'base64url, no padding'\n"
      "def dec(s):\n"
      "    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))\n"
      "mac = hmac.new(secret, (parts[0] + '.' + parts[1]).encode(), hashlib.sha256).digest()\n"
      "assert hmac.compare_digest(mac, dec(parts[2])), 'signature'\n"
      "h = json.loads(dec(parts[0]))\n"
      "assert h == {'alg': 'HS256', 'typ': 'JWT'}, h\n"
      "c = json.loads(dec(parts[1]))\n"
      "assert set(c) == {'user_id', 'sub', 'iat', 'exp'}, c\n"
      "print(c['user_id'], c['sub'], c['iat'], c['exp'])\n";

/* Run python on the token; returns its exit status and its output in out. */
static int
py_verify(const char *tok, const char *secret, char *out, size_t outlen)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", "-c", VERIFY_PY, tok, secret, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TestSuite(token, .timeout = 20);

Test(token, b64url_rfc4648_vectors_without_padding)
{
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *want[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
	char out[32];
	for (size_t i = 0; i < 7; i++) {
		int n = hr_cli__b64url(in[i], strlen(in[i]), out, sizeof(out));
		cr_assert_eq(n, (int)strlen(want[i]));
		cr_assert_str_eq(out, want[i]);
	}
	const unsigned char hi[] = { 0xfb, 0xff, 0xbf };
	cr_assert_eq(hr_cli__b64url(hi, 3, out, sizeof(out)), 4);
	cr_assert_str_eq(out, "-_-_", "url alphabet");
	cr_assert_eq(hr_cli__b64url("foobar", 6, out, 8), 0 + HR_EMSGSIZE, "no room for NUL");
	cr_assert_eq(hr_cli__b64url("foobar", 6, out, 9), 8);
}

Test(token, python_verifies_signature_and_claims)
{
	char tok[2048], err[256], out[512];
	int rc = hr_cli__token_make(
	    "s3cret", "42", 1700000000, 3600, tok, sizeof(tok), err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(py_verify(tok, "s3cret", out, sizeof(out)), 0, "python says: %s", out);
	cr_assert_str_eq(out, "42 42 1700000000 1700003600\n");
}

Test(token, python_rejects_wrong_secret)
{
	char tok[2048], err[256], out[512];
	cr_assert_eq(hr_cli__token_make(
	                 "right", "alice", 1700000000, 60, tok, sizeof(tok), err, sizeof(err)),
	    0);
	cr_assert_eq(py_verify(tok, "wrong", out, sizeof(out)), 1);
}

Test(token, user_id_is_json_escaped)
{
	char tok[2048], err[256], out[512];
	cr_assert_eq(hr_cli__token_make("k", "a\"b\\c", 5, 10, tok, sizeof(tok), err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(py_verify(tok, "k", out, sizeof(out)), 0, "python says: %s", out);
	cr_assert_str_eq(out, "a\"b\\c a\"b\\c 5 15\n");
}

Test(token, refusals)
{
	char tok[2048], err[256];
	cr_assert_eq(
	    hr_cli__token_make("", "u", 0, 10, tok, sizeof(tok), err, sizeof(err)), HR_EINVAL);
	cr_assert_not_null(strstr(err, "--secret"));
	cr_assert_eq(
	    hr_cli__token_make("s", "", 0, 10, tok, sizeof(tok), err, sizeof(err)), HR_EINVAL);
	cr_assert_not_null(strstr(err, "--user"));
	cr_assert_eq(
	    hr_cli__token_make("s", "u", 0, 0, tok, sizeof(tok), err, sizeof(err)), HR_EINVAL);
	cr_assert_not_null(strstr(err, "--ttl"));
	cr_assert_eq(
	    hr_cli__token_make("s", "\xff", 0, 10, tok, sizeof(tok), err, sizeof(err)), HR_EINVAL);
	cr_assert_not_null(strstr(err, "UTF-8"));
	cr_assert_eq(hr_cli__token_make("s", "u", 0, 10, tok, 40, err, sizeof(err)), HR_EMSGSIZE);
}

/* The command itself: exit codes, default ttl, the printed token. */
static int
run_token(char *const *argv, int argc, char *out, size_t outlen)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 2);
		char *envp[] = { NULL };
		_exit(hr_cli__token_main(argc, argv, envp));
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < outlen && (r = read(fds[0], out + n, outlen - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(token, command_prints_a_token_with_default_ttl)
{
	char out[2048], claims[512];
	char *argv[] = { "--secret", "abc", "--user=7" };
	cr_assert_eq(run_token(argv, 3, out, sizeof(out)), 0);
	size_t n = strlen(out);
	cr_assert(n > 2 && out[n - 1] == '\n');
	out[n - 1] = '\0';
	time_t before = time(NULL);
	cr_assert_eq(py_verify(out, "abc", claims, sizeof(claims)), 0, "%s", claims);
	long long iat = 0, exp = 0;
	char u[16], s[16];
	cr_assert_eq(sscanf(claims, "%15s %15s %lld %lld", u, s, &iat, &exp), 4);
	cr_assert_str_eq(u, "7");
	cr_assert_eq(exp - iat, 3600);
	cr_assert(llabs(iat - (long long)before) < 30);
}

Test(token, command_usage_errors_exit_2)
{
	char out[256];
	char *a1[] = { "--user", "u" };
	cr_assert_eq(run_token(a1, 2, out, sizeof(out)), 2, "missing secret");
	char *a2[] = { "--secret", "s" };
	cr_assert_eq(run_token(a2, 2, out, sizeof(out)), 2, "missing user");
	char *a3[] = { "--secret", "s", "--user", "u", "--ttl", "soon" };
	cr_assert_eq(run_token(a3, 6, out, sizeof(out)), 2, "bad ttl");
	char *a4[] = { "--secret", "s", "--user", "u", "--bogus" };
	cr_assert_eq(run_token(a4, 5, out, sizeof(out)), 2, "unknown option");
	char *a5[] = { "--secret" };
	cr_assert_eq(run_token(a5, 1, out, sizeof(out)), 2, "missing value");
	cr_assert_str_eq(out, "", "nothing on stdout");
}
