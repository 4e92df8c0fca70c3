/*
 * test_options.c: `herald serve` option parsing (cli/options.c): every
 * option through flags, environment and config file, their precedence, and
 * every refusal with the option named in the one-line reason.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_impl.h"

static hr_cli_serve S;
static char ERR[512];
static char TMPDIR_[64];
static char FILE_[128];

static void
setup(void)
{
	hr_cli__serve_init(&S);
	ERR[0] = '\0';
	snprintf(TMPDIR_, sizeof(TMPDIR_), "/tmp/herald-opt-XXXXXX");
	cr_assert_not_null(mkdtemp(TMPDIR_));
	snprintf(FILE_, sizeof(FILE_), "%s/herald.ini", TMPDIR_);
}

static void
teardown(void)
{
	hr_cli__serve_fini(&S);
	char path[200];
	const char *names[] = { "herald.ini", "cert.pem", "key.pem", "a.pem", "a.key", "b.pem",
		"b.key", "junk.pem" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", TMPDIR_, names[i]);
		unlink(path);
	}
	rmdir(TMPDIR_);
}

/* parse(envp, argv...) with a NULL-terminated argv list. */
static int
parse_env(char *const *envp, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;
	va_start(ap, envp);
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return hr_cli__parse_serve(&S, argc, argv, envp, ERR, sizeof(ERR));
}
#define parse(...) parse_env(NULL, __VA_ARGS__, (char *)NULL)
#define parse0() parse_env(NULL, (char *)NULL)

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

/* A self-signed certificate and its key (EC P-256: quick), by the openssl
 * command, as an operator makes one. */
static void
make_pair(const char *cert, const char *key)
{
	char cmd[800];
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
	    "-subj /CN=127.0.0.1 -keyout '%s' -out '%s' >/dev/null 2>&1",
	    key, cert);
	cr_assert_eq(system(cmd), 0, "openssl req failed");
}

static void
expect_error(int rc, const char *needle)
{
	cr_assert_eq(rc, HR_EINVAL, "rc %d, err '%s'", rc, ERR);
	cr_assert_not_null(strstr(ERR, needle), "'%s' not in '%s'", needle, ERR);
	cr_assert_null(strchr(ERR, '\n'), "error is not one line: '%s'", ERR);
}

/* A config file holding text is refused with needle in the reason. */
static void
expect_file_error(const char *text, const char *needle)
{
	write_file(FILE_, text);
	expect_error(parse("--config", FILE_), needle);
}

/* Release the last parse's config, for another parse in the same test. */
static void
reset(void)
{
	hr_cli__serve_fini(&S);
	hr_cli__serve_init(&S);
}

TestSuite(options, .init = setup, .fini = teardown, .timeout = 10);

Test(options, defaults_follow_the_contract)
{
	cr_assert_eq(parse0(), 0, "%s", ERR);
	hr_config *c = &S.cfg;
	cr_assert_eq(c->n_listen, 2);
	cr_assert_str_eq(c->listen[0].host, "127.0.0.1");
	cr_assert_str_eq(c->listen[1].host, "::1");
	cr_assert_eq(c->listen[0].port, 8000);
	cr_assert_eq(c->listen[1].port, 8000);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	cr_assert_eq(c->threads, (unsigned)(cores > 0 ? cores : 1));
	cr_assert_eq(c->layer_redis, false);
	cr_assert_eq(c->n_redis, 0);
	cr_assert_str_eq(c->prefix, "asgi");
	cr_assert_eq(c->capacity, 100);
	cr_assert_eq(c->n_channel_capacity, 0);
	cr_assert_float_eq(c->expiry, 60.0, 1e-9);
	cr_assert_float_eq(c->group_expiry, 86400.0, 1e-9);
	cr_assert_null(c->jwt_secret);
	cr_assert_null(c->api_key);
	cr_assert_null(c->allowed_origins);
	cr_assert_eq(c->max_message, 65536);
	cr_assert_float_eq(c->rate_limit, 20.0, 1e-9);
	cr_assert_eq(c->max_connections, 0);
	cr_assert_null(c->tls_cert);
	cr_assert_null(c->tls_key);
	cr_assert_eq(c->log_level, HR_LOG_INFO);
	cr_assert_eq(S.help, false);
}

Test(options, every_option_as_separate_flags)
{
	char cert[200], key[200];
	snprintf(cert, sizeof(cert), "%s/cert.pem", TMPDIR_);
	snprintf(key, sizeof(key), "%s/key.pem", TMPDIR_);
	make_pair(cert, key);
	int rc = parse("--listen", "127.0.0.1:9001", "--listen", "[::1]:9002", "--threads", "3",
	    "--layer", "redis", "--redis", "redis://127.0.0.1:6379", "--redis",
	    "redis://:s3cret@localhost:6380/2", "--prefix", "pfx", "--capacity", "7",
	    "--channel-capacity", "http.request*=200", "--channel-capacity", "sp?c=5", "--expiry",
	    "1.5", "--group-expiry", "30", "--jwt-secret", "jwtsecret", "--api-key", "k3y",
	    "--allowed-origins", "https://a.example.com, https://*.b.example.com", "--max-message",
	    "1024", "--rate-limit", "2.5", "--max-connections", "50", "--tls-cert", cert,
	    "--tls-key", key, "--log-level", "debug");
	cr_assert_eq(rc, 0, "%s", ERR);
	hr_config *c = &S.cfg;
	cr_assert_eq(c->n_listen, 2);
	cr_assert_str_eq(c->listen[0].host, "127.0.0.1");
	cr_assert_eq(c->listen[0].port, 9001);
	cr_assert_str_eq(c->listen[0].shown, "127.0.0.1:9001");
	cr_assert_str_eq(c->listen[1].host, "::1");
	cr_assert_eq(c->listen[1].port, 9002);
	cr_assert_str_eq(c->listen[1].shown, "[::1]:9002");
	cr_assert_eq(c->threads, 3);
	cr_assert_eq(c->layer_redis, true);
	cr_assert_eq(c->n_redis, 2);
	cr_assert_str_eq(c->redis[0], "redis://127.0.0.1:6379");
	cr_assert_str_eq(c->redis[1], "redis://:s3cret@localhost:6380/2");
	cr_assert_str_eq(c->prefix, "pfx");
	cr_assert_eq(c->capacity, 7);
	cr_assert_eq(c->n_channel_capacity, 2);
	cr_assert_str_eq(c->channel_capacity[0].glob, "http.request*");
	cr_assert_eq(c->channel_capacity[0].capacity, 200);
	cr_assert_str_eq(c->channel_capacity[1].glob, "sp?c");
	cr_assert_eq(c->channel_capacity[1].capacity, 5);
	cr_assert_float_eq(c->expiry, 1.5, 1e-9);
	cr_assert_float_eq(c->group_expiry, 30.0, 1e-9);
	cr_assert_str_eq(c->jwt_secret, "jwtsecret");
	cr_assert_str_eq(c->api_key, "k3y");
	cr_assert_str_eq(c->allowed_origins, "https://a.example.com,https://*.b.example.com");
	cr_assert_eq(c->max_message, 1024);
	cr_assert_float_eq(c->rate_limit, 2.5, 1e-9);
	cr_assert_eq(c->max_connections, 50);
	cr_assert_str_eq(c->tls_cert, cert);
	cr_assert_str_eq(c->tls_key, key);
	cr_assert_eq(c->log_level, HR_LOG_DEBUG);
}

Test(options, equals_form_of_flags)
{
	int rc = parse("--listen=localhost:8123", "--threads=2", "--capacity=9", "--log-level=warn",
	    "--redis=redis://[::1]:6379", "--api-key=a=b");
	cr_assert_eq(rc, 0, "%s", ERR);
	cr_assert_eq(S.cfg.n_listen, 2);
	cr_assert_str_eq(S.cfg.listen[0].host, "127.0.0.1");
	cr_assert_eq(S.cfg.listen[0].port, 8123);
	cr_assert_str_eq(S.cfg.listen[1].host, "::1");
	cr_assert_str_eq(S.cfg.listen[1].shown, "[::1]:8123");
	cr_assert_eq(S.cfg.threads, 2);
	cr_assert_eq(S.cfg.capacity, 9);
	cr_assert_eq(S.cfg.log_level, HR_LOG_WARN);
	cr_assert_eq(S.cfg.layer_redis, true, "--redis alone selects the redis layer");
	cr_assert_str_eq(S.cfg.api_key, "a=b");
}

Test(options, help_flag_stops_parsing)
{
	cr_assert_eq(parse("--threads", "2", "--help", "--nonsense"), 0);
	cr_assert_eq(S.help, true);
}

Test(options, layer_redis_without_url_uses_channels_redis_default)
{
	cr_assert_eq(parse("--layer", "redis"), 0, "%s", ERR);
	cr_assert_eq(S.cfg.layer_redis, true);
	cr_assert_eq(S.cfg.n_redis, 1);
	cr_assert_str_eq(S.cfg.redis[0], "redis://localhost:6379");
}

Test(options, layer_memory_explicit)
{
	cr_assert_eq(parse("--layer", "memory"), 0, "%s", ERR);
	cr_assert_eq(S.cfg.layer_redis, false);
}

Test(options, environment_variables_with_comma_lists)
{
	char *env[] = { "PATH=/usr/bin", "HERALD_LISTEN=127.0.0.1:7001, [::1]:7002",
		"HERALD_THREADS=5", "HERALD_REDIS=redis://a:1,redis://b:2",
		"HERALD_CHANNEL_CAPACITY=x*=3,y*=4", "HERALD_GROUP_EXPIRY=10",
		"HERALD_MAX_CONNECTIONS=9", "HERALD_ALLOWED_ORIGINS=*", "HERALD_JWT_SECRET=sec",
		"HERALD_BUILD_DIR=/ignored/unknown/herald/var", "HERALD_API_KEY=", NULL };
	cr_assert_eq(parse_env(env, (char *)NULL), 0, "%s", ERR);
	hr_config *c = &S.cfg;
	cr_assert_eq(c->n_listen, 2);
	cr_assert_eq(c->listen[0].port, 7001);
	cr_assert_str_eq(c->listen[1].host, "::1");
	cr_assert_eq(c->listen[1].port, 7002);
	cr_assert_eq(c->threads, 5);
	cr_assert_eq(c->n_redis, 2);
	cr_assert_str_eq(c->redis[1], "redis://b:2");
	cr_assert_eq(c->layer_redis, true);
	cr_assert_eq(c->n_channel_capacity, 2);
	cr_assert_str_eq(c->channel_capacity[1].glob, "y*");
	cr_assert_eq(c->channel_capacity[1].capacity, 4);
	cr_assert_float_eq(c->group_expiry, 10.0, 1e-9);
	cr_assert_eq(c->max_connections, 9);
	cr_assert_str_eq(c->allowed_origins, "*");
	cr_assert_str_eq(c->jwt_secret, "sec");
	cr_assert_null(c->api_key, "an empty variable counts as unset");
}

Test(options, config_file_every_form)
{
	write_file(FILE_,
	    "# herald config\n"
	    "; another comment\n"
	    "listen = 127.0.0.1:6001\n"
	    "listen = [::1]:6002, 127.0.0.1:6003\n"
	    "threads = 4\n"
	    "log_level = error ; trailing comment\n"
	    "jwt-secret = \"quoted secret\"\n"
	    "\n"
	    "[herald]\n"
	    "channel_capacity = a*=1\n"
	    "rate-limit: 7\n");
	cr_assert_eq(parse("--config", FILE_), 0, "%s", ERR);
	hr_config *c = &S.cfg;
	cr_assert_eq(c->n_listen, 3);
	cr_assert_eq(c->listen[0].port, 6001);
	cr_assert_eq(c->listen[1].port, 6002);
	cr_assert_str_eq(c->listen[1].host, "::1");
	cr_assert_eq(c->listen[2].port, 6003);
	cr_assert_eq(c->threads, 4);
	cr_assert_eq(c->log_level, HR_LOG_ERROR);
	cr_assert_str_eq(c->jwt_secret, "quoted secret");
	cr_assert_eq(c->n_channel_capacity, 1);
	cr_assert_float_eq(c->rate_limit, 7.0, 1e-9);
}

Test(options, config_file_from_environment)
{
	write_file(FILE_, "threads = 6\n");
	char env[200];
	snprintf(env, sizeof(env), "HERALD_CONFIG=%s", FILE_);
	char *envp[] = { env, NULL };
	cr_assert_eq(parse_env(envp, (char *)NULL), 0, "%s", ERR);
	cr_assert_eq(S.cfg.threads, 6);
}

Test(options, flags_beat_environment_beat_file)
{
	write_file(FILE_,
	    "threads = 2\ncapacity = 11\nexpiry = 5\n"
	    "listen = 127.0.0.1:5001\nlisten = 127.0.0.1:5002\n");
	char *envp[]
	    = { "HERALD_THREADS=3", "HERALD_CAPACITY=12", "HERALD_LISTEN=127.0.0.1:5003", NULL };
	int rc = parse_env(envp, "--config", FILE_, "--threads", "4", (char *)NULL);
	cr_assert_eq(rc, 0, "%s", ERR);
	cr_assert_eq(S.cfg.threads, 4, "flag wins");
	cr_assert_eq(S.cfg.capacity, 12, "env beats file");
	cr_assert_float_eq(S.cfg.expiry, 5.0, 1e-9, "file beats default");
	cr_assert_eq(S.cfg.n_listen, 1, "env list replaces file list");
	cr_assert_eq(S.cfg.listen[0].port, 5003);

	reset();
	rc = parse_env(envp, "--config", FILE_, "--listen", "127.0.0.1:5004", (char *)NULL);
	cr_assert_eq(rc, 0, "%s", ERR);
	cr_assert_eq(S.cfg.n_listen, 1, "flag list replaces env list");
	cr_assert_eq(S.cfg.listen[0].port, 5004);
	cr_assert_eq(S.cfg.threads, 3);
}

Test(options, overridden_bad_value_is_not_judged)
{
	char *envp[] = { "HERALD_THREADS=zero", NULL };
	cr_assert_eq(parse_env(envp, "--threads", "2", (char *)NULL), 0, "%s", ERR);
	cr_assert_eq(S.cfg.threads, 2);
}

Test(options, last_flag_of_a_scalar_wins)
{
	cr_assert_eq(parse("--capacity", "1", "--capacity", "2"), 0);
	cr_assert_eq(S.cfg.capacity, 2);
}

/* ---------------------------------------------------------------- refusals */

Test(options, refuses_bad_listen)
{
	expect_error(parse("--listen", "127.0.0.1"), "--listen: '127.0.0.1' needs a port");
}
Test(options, refuses_listen_port_zero)
{
	expect_error(parse("--listen", "127.0.0.1:0"), "--listen: port '0'");
}
Test(options, refuses_listen_port_too_big)
{
	expect_error(parse("--listen", "localhost:65536"), "must be 1..65535");
}
Test(options, refuses_listen_port_not_a_number)
{
	expect_error(parse("--listen", "localhost:http"), "--listen: port 'http'");
}
Test(options, refuses_unbracketed_ipv6)
{
	expect_error(parse("--listen", "::1:8000"), "IPv6 addresses go in brackets");
}
Test(options, refuses_bad_ipv6_literal)
{
	expect_error(parse("--listen", "[::zz]:8000"), "not an IPv6 address");
}
Test(options, refuses_unclosed_bracket)
{
	expect_error(parse("--listen", "[::1:8000"), "no closing ']'");
}
Test(options, refuses_hostname_other_than_localhost)
{
	expect_error(parse("--listen", "example.com:80"), "must be localhost, an IPv4 address");
}
Test(options, refuses_empty_host) { expect_error(parse("--listen", ":80"), "has no host"); }
Test(options, refuses_duplicate_listen)
{
	expect_error(parse("--listen", "localhost:80", "--listen", "127.0.0.1:80"), "listed twice");
}
Test(options, refuses_too_many_listeners)
{
	expect_error(parse("--listen", "localhost:1", "--listen", "localhost:2", "--listen",
	                 "localhost:3", "--listen", "localhost:4", "--listen", "localhost:5"),
	    "at most 8 listen addresses");
}
Test(options, refuses_threads_zero)
{
	expect_error(parse("--threads", "0"), "--threads: 0 is out of range 1..64");
}
Test(options, refuses_threads_text)
{
	expect_error(parse("--threads", "four"), "--threads: 'four' is not a whole number");
}
Test(options, refuses_threads_negative)
{
	expect_error(parse("--threads", "-1"), "--threads: '-1' is not a whole number");
}
Test(options, refuses_threads_overflow)
{
	expect_error(parse("--threads", "99999999999999999999999"), "out of range");
}
Test(options, refuses_empty_threads)
{
	expect_error(parse("--threads="), "--threads: empty value");
}
Test(options, refuses_unknown_layer)
{
	expect_error(parse("--layer", "postgres"), "--layer: 'postgres' is not a layer");
}
Test(options, refuses_memory_layer_with_redis)
{
	expect_error(parse("--layer", "memory", "--redis", "redis://h:1"),
	    "--layer: memory conflicts with --redis");
}
Test(options, refuses_redis_without_scheme)
{
	expect_error(
	    parse("--redis", "localhost:6379"), "--redis: 'localhost:6379' must look like");
}
Test(options, refuses_redis_without_port)
{
	expect_error(parse("--redis", "redis://localhost"), "needs host:port");
}
Test(options, refuses_redis_bad_port)
{
	expect_error(parse("--redis", "redis://localhost:0"), "port '0'");
}
Test(options, refuses_redis_bad_db)
{
	expect_error(parse("--redis", "redis://localhost:1/x"), "database 'x'");
}
Test(options, refuses_redis_credentials_without_colon)
{
	expect_error(parse("--redis", "redis://pw@localhost:1"), "must be :password@");
}
Test(options, refuses_redis_bad_host)
{
	expect_error(parse("--redis", "redis://bad host:1"), "bad host");
}
Test(options, refuses_duplicate_redis)
{
	expect_error(parse("--redis", "redis://h:1", "--redis", "redis://h:1"), "listed twice");
}
Test(options, refuses_bad_prefix) { expect_error(parse("--prefix", "has space"), "--prefix:"); }
Test(options, refuses_capacity_zero)
{
	expect_error(parse("--capacity", "0"), "--capacity: 0 is out of range");
}
Test(options, refuses_channel_capacity_without_equals)
{
	expect_error(
	    parse("--channel-capacity", "abc"), "--channel-capacity: 'abc' must be GLOB=N");
}
Test(options, refuses_channel_capacity_empty_glob)
{
	expect_error(parse("--channel-capacity", "=5"), "must be GLOB=N");
}
Test(options, refuses_channel_capacity_bad_number)
{
	expect_error(parse("--channel-capacity", "a*=x"), "capacity 'x' in 'a*=x'");
}
Test(options, refuses_expiry_zero)
{
	expect_error(parse("--expiry", "0"), "--expiry: 0 must be greater than 0");
}
Test(options, refuses_expiry_text)
{
	expect_error(parse("--expiry", "1e3"), "--expiry: '1e3' is not a number");
}
Test(options, refuses_expiry_nan) { expect_error(parse("--expiry", "nan"), "is not a number"); }
Test(options, refuses_group_expiry_huge)
{
	expect_error(parse("--group-expiry", "999999999999"), "--group-expiry:");
}
Test(options, refuses_empty_jwt_secret)
{
	expect_error(parse("--jwt-secret="), "--jwt-secret: the secret is empty");
}
Test(options, refuses_api_key_with_space) { expect_error(parse("--api-key", "a b"), "--api-key:"); }
Test(options, refuses_empty_origin)
{
	expect_error(parse("--allowed-origins", "https://a.com,,https://b.com"), "empty origin");
}
Test(options, refuses_origin_without_scheme)
{
	expect_error(parse("--allowed-origins", "example.com"), "must be * or scheme://host");
}
Test(options, refuses_misplaced_origin_wildcard)
{
	expect_error(parse("--allowed-origins", "https://a.*.com"), "'*' may only start the host");
}
Test(options, refuses_max_message_zero)
{
	expect_error(parse("--max-message", "0"), "--max-message: 0 is out of range");
}
Test(options, refuses_max_message_too_large)
{
	expect_error(parse("--max-message", "1000000000"), "--max-message:");
}
Test(options, refuses_rate_limit_zero)
{
	expect_error(parse("--rate-limit", "0"), "--rate-limit: 0 must be greater than 0");
}
Test(options, refuses_rate_limit_text)
{
	expect_error(parse("--rate-limit", "fast"), "--rate-limit: 'fast' is not a number");
}
Test(options, refuses_max_connections_negative)
{
	expect_error(parse("--max-connections", "-5"), "--max-connections:");
}
Test(options, refuses_tls_cert_alone)
{
	char cert[200];
	snprintf(cert, sizeof(cert), "%s/cert.pem", TMPDIR_);
	write_file(cert, "x");
	expect_error(parse("--tls-cert", cert), "--tls-cert: needs --tls-key as well");
}
Test(options, refuses_tls_key_alone)
{
	char key[200];
	snprintf(key, sizeof(key), "%s/key.pem", TMPDIR_);
	write_file(key, "x");
	expect_error(parse("--tls-key", key), "--tls-key: needs --tls-cert as well");
}
Test(options, refuses_unreadable_tls_file)
{
	expect_error(parse("--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/etc/hostname"),
	    "--tls-cert: cannot read '/nonexistent/cert.pem'");
}
Test(options, refuses_tls_files_that_are_not_a_pair)
{
	char cert[200], key[200], cert2[200], key2[200], junk[200];
	snprintf(cert, sizeof(cert), "%s/a.pem", TMPDIR_);
	snprintf(key, sizeof(key), "%s/a.key", TMPDIR_);
	snprintf(cert2, sizeof(cert2), "%s/b.pem", TMPDIR_);
	snprintf(key2, sizeof(key2), "%s/b.key", TMPDIR_);
	snprintf(junk, sizeof(junk), "%s/junk.pem", TMPDIR_);
	make_pair(cert, key);
	make_pair(cert2, key2);
	write_file(junk, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
	cr_assert_eq(parse("--tls-cert", cert, "--tls-key", key), 0, "%s", ERR);
	reset();
	expect_error(
	    parse("--tls-cert", cert, "--tls-key", key2), "is not the key of the certificate");
	reset();
	expect_error(parse("--tls-cert", junk, "--tls-key", key), "holds no PEM certificate");
	reset();
	expect_error(
	    parse("--tls-cert", cert, "--tls-key", junk), "holds no unencrypted PEM private key");
	reset();
	expect_error(parse("--tls-cert", key, "--tls-key", cert), "--tls-cert:");
}
Test(options, refuses_directory_as_tls_file)
{
	expect_error(parse("--tls-cert", "/tmp", "--tls-key", "/tmp"), "not a regular file");
}
Test(options, refuses_bad_log_level)
{
	expect_error(parse("--log-level", "verbose"), "--log-level: 'verbose' is not a level");
}
Test(options, refuses_unknown_flag)
{
	expect_error(parse("--bogus", "1"), "unknown option '--bogus'");
}
Test(options, refuses_underscore_spelling_on_command_line)
{
	expect_error(parse("--log_level", "info"), "unknown option '--log_level'");
}
Test(options, refuses_missing_value)
{
	expect_error(parse("--threads"), "--threads: missing value");
}
Test(options, refuses_positional_argument)
{
	expect_error(parse("extra"), "unexpected argument 'extra'");
}
Test(options, refuses_overlong_value)
{
	char big[HR_CLI_MAX_VALUE + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(parse("--jwt-secret", big), "--jwt-secret: value too long");
}
Test(options, env_error_names_the_variable)
{
	char *envp[] = { "HERALD_MAX_MESSAGE=lots", NULL };
	expect_error(parse_env(envp, (char *)NULL), "HERALD_MAX_MESSAGE: 'lots'");
}
Test(options, missing_config_file)
{
	expect_error(parse("--config", "/nonexistent/herald.ini"),
	    "--config: cannot read '/nonexistent/herald.ini'");
}
Test(options, config_file_unknown_key)
{
	expect_file_error("threads = 2\nbogus = 1\n", ":2: unknown option 'bogus'");
}
Test(options, config_file_line_without_equals)
{
	expect_file_error("threads = 2\n\njust words\n", ":3: expected `key = value`");
}
Test(options, config_file_unknown_section)
{
	expect_file_error("[other]\nthreads = 2\n", "section [other] is not known");
}
Test(options, config_file_scalar_set_twice)
{
	expect_file_error("threads = 2\nthreads = 3\n", ":2: threads is set twice");
}
Test(options, config_file_config_key_refused)
{
	expect_file_error("config = /etc/x\n", "unknown option 'config'");
}
Test(options, config_file_overlong_line)
{
	char text[400];
	memset(text, 'x', sizeof(text));
	memcpy(text, "jwt_secret = ", 13);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	expect_file_error(text, ":1: line longer than 199 characters");
}
Test(options, config_file_too_large)
{
	FILE *f = fopen(FILE_, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 7000; i++)
		fputs("# padding.\n", f);
	fclose(f);
	expect_error(parse("--config", FILE_), "larger than 65536 bytes");
}
Test(options, config_file_bad_value_names_file_and_option)
{
	expect_file_error("rate_limit = none\n", "herald.ini: rate-limit: 'none' is not a number");
}
Test(options, config_file_binary_refused)
{
	FILE *f = fopen(FILE_, "w");
	cr_assert_not_null(f);
	fwrite("threads = 2\n\0\1", 1, 14, f);
	fclose(f);
	expect_error(parse("--config", FILE_), "not a text file");
}

Test(options, usage_lists_every_option)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	hr_cli__serve_usage(f);
	fclose(f);
	const char *names[] = { "--listen", "--threads", "--layer", "--redis", "--prefix",
		"--capacity", "--channel-capacity", "--expiry", "--group-expiry", "--jwt-secret",
		"--api-key", "--allowed-origins", "--max-message", "--rate-limit",
		"--max-connections", "--tls-cert", "--tls-key", "--log-level", "--config" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_not_null(strstr(buf, names[i]), "%s missing", names[i]);
	free(buf);
}

/* hr_cli__serve_print of the last parse, NUL-terminated; caller frees. */
static char *
printed(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	cr_assert_eq(hr_cli__serve_print(f, &S), 0);
	fclose(f);
	return buf;
}

Test(options, check_flag_anywhere_still_parses_everything)
{
	cr_assert_eq(parse("--capacity", "7", "--check", "--prefix", "p"), 0, "%s", ERR);
	cr_assert(S.check);
	cr_assert(!S.help);
	cr_assert_eq(S.cfg.capacity, 7);
	cr_assert_str_eq(S.cfg.prefix, "p");
	reset();
	/* --check judges the options exactly as serve does. */
	expect_error(parse("--check", "--threads", "0"), "--threads:");
	reset();
	expect_error(parse("--check=yes"), "unknown option '--check'");
}

Test(options, check_prints_effective_values_with_secrets_masked)
{
	char *env[] = { "HERALD_API_KEY=env-key-77", "HERALD_CAPACITY=9", NULL };
	write_file(FILE_, "jwt-secret = file-secret-55\ncapacity = 3\nprefix = fromfile\n");
	cr_assert_eq(parse_env(env, "--check", "--config", FILE_, "--redis",
	                 "redis://:pw-99@127.0.0.1:6390/2", "--listen", "[::1]:9000",
	                 "--channel-capacity", "a*=4", (char *)NULL),
	    0, "%s", ERR);
	char *out = printed();
	const char *want[] = { "listen = [::1]:9000\n", "layer = redis\n",
		"redis = redis://:***@127.0.0.1:6390/2\n", "prefix = fromfile\n", "capacity = 9\n",
		"channel-capacity = a*=4\n", "jwt-secret = ***\n", "api-key = ***\n",
		"# tls-cert: not set\n", "max-message = 65536\n", "log-level = info\n" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_not_null(strstr(out, want[i]), "'%s' not in:\n%s", want[i], out);
	cr_assert_not_null(strstr(out, FILE_), "the config file is named:\n%s", out);
	cr_assert_null(strstr(out, "env-key-77"));
	cr_assert_null(strstr(out, "file-secret-55"));
	cr_assert_null(strstr(out, "pw-99"));
	free(out);
}

Test(options, check_prints_every_option_of_the_table)
{
	cr_assert_eq(parse("--check"), 0, "%s", ERR);
	char *out = printed();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	hr_cli__serve_usage(f);
	fclose(f);
	/* Each "  --name" line of --help but the modes has a line in --check. */
	for (char *l = strstr(buf, "\n  --"); l != NULL; l = strstr(l + 1, "\n  --")) {
		char name[64], line[80], unset[80];
		if (sscanf(l + 5, "%63[a-z0-9-]", name) != 1)
			continue;
		if (strcmp(name, "check") == 0 || strcmp(name, "help") == 0
		    || strcmp(name, "config") == 0)
			continue;
		snprintf(line, sizeof(line), "\n%s = ", name);
		snprintf(unset, sizeof(unset), "\n# %s: ", name);
		cr_assert(strstr(out, line) != NULL || strstr(out, unset) != NULL,
		    "--%s missing from:\n%s", name, out);
	}
	free(buf);
	free(out);
}
