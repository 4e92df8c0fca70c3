/*
 * test_send.c: `herald send`'s URL check and join and its usage exit codes
 * (cli/send.c, cli/http.c). Delivery through a real node is in
 * tests/integration/test_cli.py.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli_impl.h"

TestSuite(send_url, .timeout = 10);

static void
expect_url(const char *base, const char *path, const char *want)
{
	char *out = (char *)"unset";
	char err[256] = "";
	cr_assert_eq(hr_cli__send_url(base, path, &out, err, sizeof(err)), 0, "%s: %s", base, err);
	cr_assert_str_eq(out, want, "%s + %s", base, path);
	free(out);
}

Test(send_url, host_port_and_path_prefix_are_kept)
{
	expect_url("http://127.0.0.1:8000", "/api/groups/g/send",
	    "http://127.0.0.1:8000/api/groups/g/send");
	expect_url("http://127.0.0.1:8000/", "/api/groups/g/send",
	    "http://127.0.0.1:8000/api/groups/g/send");
	expect_url("https://example.org/prefix/herald//", "/api/channels/c%21x/send",
	    "https://example.org/prefix/herald/api/channels/c%21x/send");
	expect_url("Https://example.org:8443/herald", "/api/groups/g/send",
	    "https://example.org:8443/herald/api/groups/g/send");
	expect_url("http://[::1]:9/", "/api/groups/g/send", "http://[::1]:9/api/groups/g/send");
}

Test(send_url, refusals_name_the_problem)
{
	struct {
		const char *url, *why;
	} bad[] = {
		{ "ftp://x", "must start with http:// or https://" },
		{ "127.0.0.1:8000", "must start with http:// or https://" },
		{ "http://", "--url: 'http://': " },
		{ "http://h:0", "port must be 1..65535" },
		{ "http://h:65536", "--url: 'http://h:65536': " },
		{ "http://h:8x", "--url: 'http://h:8x': " },
		{ "http://[::1", "--url: 'http://[::1': " },
		{ "http://u:p@h", "no credentials" },
		{ "http://h/a?b=c", "no query" },
		{ "https://h/a#top", "no fragment" },
		{ "http://h/a b", "spaces" },
	};
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL;
		err[0] = '\0';
		cr_assert_eq(
		    hr_cli__send_url(bad[i].url, "/api/groups/g/send", &out, err, sizeof(err)),
		    HR_EINVAL, "%s", bad[i].url);
		cr_assert_null(out, "%s", bad[i].url);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: '%s'", bad[i].url, err);
	}
}

static int
run_send(char *const *argv, int argc, char *const *envp)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		_exit(hr_cli__send_main(argc, argv, envp));
	}
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(send_url, usage_errors_exit_2_and_unreachable_exits_1)
{
	char *none[] = { NULL };
	char *a1[] = { "{}" };
	cr_assert_eq(run_send(a1, 1, none), 2, "no target");
	char *a2[] = { "--group", "g" };
	cr_assert_eq(run_send(a2, 2, none), 2, "no payload");
	char *a3[] = { "--group", "g", "{\"a\":" };
	cr_assert_eq(run_send(a3, 3, none), 2, "bad JSON");
	char *a4[] = { "--group", "g", "--channel", "c", "{}" };
	cr_assert_eq(run_send(a4, 5, none), 2, "two targets");
	char *a5[] = { "--group", "g", "{}", "{}" };
	cr_assert_eq(run_send(a5, 4, none), 2, "two payloads");
	char *a6[] = { "--type=", "--group", "g", "{}" };
	cr_assert_eq(run_send(a6, 4, none), 2, "empty type");
	char *a7[] = { "--group", "g", "{}" };
	char *badurl[] = { "HERALD_URL=gopher://x", NULL };
	cr_assert_eq(run_send(a7, 3, badurl), 2, "bad URL from the environment");
	/* Port 1 on loopback: nothing listens there in a test run. */
	char *closed[] = { "HERALD_URL=http://127.0.0.1:1", NULL };
	cr_assert_eq(run_send(a7, 3, closed), 1, "unreachable");
	char *a8[] = { "--timeout", "0", "--group", "g", "{}" };
	cr_assert_eq(run_send(a8, 5, none), 2, "zero timeout");
	char *a9[] = { "--timeout=abc", "--group", "g", "{}" };
	cr_assert_eq(run_send(a9, 4, none), 2, "timeout not a number");
	char *a10[] = { "--cacert=", "--group", "g", "{}" };
	cr_assert_eq(run_send(a10, 4, none), 2, "empty --cacert");
	char *a11[] = { "--api-key", "k\r\nX-Injected: 1", "--group", "g", "{}" };
	cr_assert_eq(run_send(a11, 5, none), 2, "a header in the API key");
	char *spacekey[] = { "HERALD_API_KEY=a b", NULL };
	cr_assert_eq(run_send(a7, 3, spacekey), 2, "a space in $HERALD_API_KEY");
}
