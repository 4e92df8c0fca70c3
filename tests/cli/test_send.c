/*
 * test_send.c: `herald send`'s URL parsing and usage exit codes (cli/send.c,
 * cli/sys_http.c). Delivery through a real node is in
 * tests/integration/test_cli.py.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli_impl.h"

TestSuite(send_url, .timeout = 10);

Test(send_url, host_port_and_base_path)
{
	hr_cli_url u;
	char err[256];
	cr_assert_eq(
	    hr_cli__url_parse("http://127.0.0.1:8000", &u, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_str_eq(u.port, "8000");
	cr_assert_str_eq(u.base, "");
	cr_assert_eq(
	    hr_cli__url_parse("HTTP://example.org/prefix/herald//", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.host, "example.org");
	cr_assert_str_eq(u.port, "80");
	cr_assert_str_eq(u.base, "/prefix/herald");
	cr_assert_eq(hr_cli__url_parse("http://[::1]:9/", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.host, "::1");
	cr_assert_str_eq(u.port, "9");
	cr_assert_str_eq(u.base, "");
}

Test(send_url, refusals_name_the_problem)
{
	struct {
		const char *url, *why;
	} bad[] = {
		{ "https://127.0.0.1", "only http://" },
		{ "ftp://x", "must start with http://" },
		{ "127.0.0.1:8000", "must start with http://" },
		{ "http://", "bad host" },
		{ "http://:80", "bad host" },
		{ "http://h:0", "port must be 1..65535" },
		{ "http://h:65536", "port must be 1..65535" },
		{ "http://h:8x", "port must be 1..65535" },
		{ "http://[::1", "no closing" },
		{ "http://[::1]x", "bad host" },
		{ "http://u:p@h", "credentials" },
		{ "http://h/a?b=c", "no query" },
		{ "http://h/a b", "spaces" },
	};
	hr_cli_url u;
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(hr_cli__url_parse(bad[i].url, &u, err, sizeof(err)), HR_EINVAL, "%s",
		    bad[i].url);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: '%s'", bad[i].url, err);
		cr_assert_not_null(strstr(err, "--url"), "%s", err);
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
}
