/*
 * herald_bench_opts.c: herald-bench's command line: the options (opt), their
 * defaults, getopt, the usage text, and the loopback URL parser the checks
 * in herald_bench.c use. Depends on no other file of herald-bench.
 * Threads: main, before any other thread starts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald_bench.h"

struct bench_opts opt;

bool
loopback_host(const char *h, struct in_addr *out)
{
	if (strcmp(h, "localhost") == 0)
		h = "127.0.0.1";
	if (inet_pton(AF_INET, h, out) != 1)
		return false;
	return (ntohl(out->s_addr) >> 24) == 127;
}

/* scheme://host:port/path, loopback only */
int
parse_url(const char *url, const char *scheme, char *host, size_t hcap, int *port, char *path,
    size_t pcap)
{
	size_t sl = strlen(scheme);
	if (strncmp(url, scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0)
		return -1;
	const char *h = url + sl + 3;
	const char *colon = strchr(h, ':');
	const char *slash = strchr(h, '/');
	if (!colon || (slash && slash < colon) || (size_t)(colon - h) >= hcap)
		return -1;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	char *e;
	long p = strtol(colon + 1, &e, 10);
	if (p <= 0 || p > 65535 || (*e != '/' && *e != '\0'))
		return -1;
	*port = (int)p;
	snprintf(path, pcap, "%s", *e ? e : "/");
	return 0;
}

void
usage(FILE *f)
{
	fprintf(f,
	    "usage: herald-bench --url ws://127.0.0.1:PORT/PATH [options]\n"
	    "  -n, --connections N     WebSocket connections (default 100)\n"
	    "  --sources K             source addresses 127.0.0.1..K (default N/20000+1)\n"
	    "  --connect-rate R        new connections per second (default 5000, 0 = no limit)\n"
	    "  --connect-timeout S     give up waiting for handshakes (default 60)\n"
	    "  --publish URL           http://127.0.0.1:PORT/PATH to POST broadcasts to\n"
	    "  --body herald|raw       herald: {\"type\":\"notification_message\",\"message\":M};\n"
	    "                          raw: M itself (nchan, node, raw-ceiling) (default herald)\n"
	    "  --header 'K: V'         extra header on publish requests\n"
	    "  --rate R                broadcasts per second; 0 = as fast as in-flight allows "
	    "(default 10)\n"
	    "  --pub-conns C           publisher keep-alive connections (default 1)\n"
	    "  --pipeline P            in-flight requests per publisher connection (default 1)\n"
	    "  --size B                message size in bytes, padded (default 200)\n"
	    "  -d, --duration S        publishing time (default 5); idle hold time without "
	    "--publish\n"
	    "  --drain S               wait after publishing for frames still arriving (default "
	    "5)\n"
	    "  --settle S              pause after connecting before measuring RSS (default 1)\n"
	    "  --client-threads T      receiver threads (default 1)\n"
	    "  --server-pid PID        read the server's VmRSS and CPU time from /proc\n"
	    "  --publish-redis URL     redis://127.0.0.1:PORT: write group_sends into Redis as\n"
	    "                          channels_redis 4.0 does (instead of --publish); "
	    "--pub-conns\n"
	    "                          sender threads, --rate as above (total)\n"
	    "  --group G               group for --publish-redis (default notifications)\n"
	    "  --prefix P              channels_redis key prefix (default asgi)\n"
	    "  --redis-capacity N      the publisher's channel capacity (default 100, as "
	    "Channels)\n"
	    "  --prefill K             with --publish-redis and --server-pid: SIGSTOP the server,\n"
	    "                          write K group_sends, SIGCONT; deliveries_per_s is then the\n"
	    "                          drain rate from SIGCONT (latencies include the stop)\n"
	    "  --window W              with --publish-redis: a sender waits while W broadcasts\n"
	    "                          are not yet received by every connection (a Redis writer\n"
	    "                          gets no answer from the node to pace it; default 0: no "
	    "wait)\n"
	    "  --churn PCT             close PCT %% of the connections per minute (close frame,\n"
	    "                          wait for the server's) and reopen each at once\n"
	    "  --report-interval S     one JSON line every S seconds: connections open, frames,\n"
	    "                          broadcasts published and failed, p50/p99, losses; with\n"
	    "                          --publish at a fixed --rate it also tracks losses: a\n"
	    "                          broadcast answered 2xx that a connection open from before\n"
	    "                          its send until --drain s after its answer never got\n"
	    "  --report-file PATH      the interval lines go to PATH instead of stdout\n"
	    "  --keep-publishing       --publish: go on through refused connects, errors and\n"
	    "                          overdue answers, counting them as failed publishes\n"
	    "  --publish-timeout S     with --keep-publishing: an answer overdue by S fails\n"
	    "                          (default 5)\n"
	    "  --catchup K             recovery: N clients open with ?recover=, all close, K\n"
	    "                          broadcasts go to --publish, all N reconnect at once with\n"
	    "                          ?recover=GROUP@EPOCH:OFFSET (--group); each must get the K\n"
	    "                          envelopes in order, then recovered:true missed:K; the time\n"
	    "                          each takes (exit 1 unless every client caught up)\n"
	    "  --catchup-hold          --catchup: once the server has the K frames, say so on\n"
	    "                          stderr and wait for SIGUSR1 before reconnecting (a script\n"
	    "                          may restart the server meanwhile; at most "
	    "--connect-timeout)\n"
	    "  -q, --quiet             no progress lines\n"
	    "Prints progress to stderr, a summary, then one JSON line on stdout.\n");
}

static void
set_defaults(void)
{
	opt.n = 100;
	opt.sources = 0;
	opt.connect_rate = 5000;
	opt.connect_timeout = 60;
	opt.rate = 10;
	opt.pub_conns = 1;
	opt.pipeline = 1;
	opt.size = 200;
	opt.duration = 5;
	opt.drain = 5;
	opt.settle = 1;
	opt.threads = 1;
	snprintf(opt.body_mode, sizeof opt.body_mode, "herald");
	opt.group = "notifications";
	opt.prefix = "asgi";
	opt.redis_capacity = 100;
	opt.publish_timeout = 5;
}

/* The long options (getopt_long); the short ones are -u -n -d -q -h. */
enum {
	O_SRC = 256,
	O_CR,
	O_CT,
	O_PUB,
	O_BODY,
	O_HDR,
	O_RATE,
	O_PC,
	O_PIPE,
	O_SIZE,
	O_DRAIN,
	O_SETTLE,
	O_THR,
	O_PID,
	O_RPUB,
	O_GROUP,
	O_PREFIX,
	O_RCAP,
	O_PREFILL,
	O_WINDOW,
	O_CHURN,
	O_RINT,
	O_RFILE,
	O_KEEP,
	O_PTO,
	O_CATCHUP,
	O_HOLD
};

static const struct option lo[] = {
	{ "url", required_argument, NULL, 'u' },
	{ "connections", required_argument, NULL, 'n' },
	{ "sources", required_argument, NULL, O_SRC },
	{ "connect-rate", required_argument, NULL, O_CR },
	{ "connect-timeout", required_argument, NULL, O_CT },
	{ "publish", required_argument, NULL, O_PUB },
	{ "body", required_argument, NULL, O_BODY },
	{ "header", required_argument, NULL, O_HDR },
	{ "rate", required_argument, NULL, O_RATE },
	{ "pub-conns", required_argument, NULL, O_PC },
	{ "pipeline", required_argument, NULL, O_PIPE },
	{ "size", required_argument, NULL, O_SIZE },
	{ "duration", required_argument, NULL, 'd' },
	{ "drain", required_argument, NULL, O_DRAIN },
	{ "settle", required_argument, NULL, O_SETTLE },
	{ "client-threads", required_argument, NULL, O_THR },
	{ "server-pid", required_argument, NULL, O_PID },
	{ "publish-redis", required_argument, NULL, O_RPUB },
	{ "group", required_argument, NULL, O_GROUP },
	{ "prefix", required_argument, NULL, O_PREFIX },
	{ "redis-capacity", required_argument, NULL, O_RCAP },
	{ "prefill", required_argument, NULL, O_PREFILL },
	{ "window", required_argument, NULL, O_WINDOW },
	{ "churn", required_argument, NULL, O_CHURN },
	{ "report-interval", required_argument, NULL, O_RINT },
	{ "report-file", required_argument, NULL, O_RFILE },
	{ "keep-publishing", no_argument, NULL, O_KEEP },
	{ "publish-timeout", required_argument, NULL, O_PTO },
	{ "catchup", required_argument, NULL, O_CATCHUP },
	{ "catchup-hold", no_argument, NULL, O_HOLD },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* Defaults, then the command line into opt. -1 to go on, else the exit
 * code (0 after --help). */
int
parse_args(int argc, char **argv, const char **url, const char **pub)
{
	set_defaults();
	int ch;
	while ((ch = getopt_long(argc, argv, "u:n:d:qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'u':
			*url = optarg;
			break;
		case 'n':
			opt.n = atoi(optarg);
			break;
		case O_SRC:
			opt.sources = atoi(optarg);
			break;
		case O_CR:
			opt.connect_rate = atof(optarg);
			break;
		case O_CT:
			opt.connect_timeout = atof(optarg);
			break;
		case O_PUB:
			*pub = optarg;
			break;
		case O_BODY:
			snprintf(opt.body_mode, sizeof opt.body_mode, "%s", optarg);
			break;
		case O_HDR:
			snprintf(opt.header, sizeof opt.header, "%s", optarg);
			break;
		case O_RATE:
			opt.rate = atof(optarg);
			break;
		case O_PC:
			opt.pub_conns = atoi(optarg);
			break;
		case O_PIPE:
			opt.pipeline = atoi(optarg);
			break;
		case O_SIZE:
			opt.size = atoi(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case O_DRAIN:
			opt.drain = atof(optarg);
			break;
		case O_SETTLE:
			opt.settle = atof(optarg);
			break;
		case O_THR:
			opt.threads = atoi(optarg);
			break;
		case O_PID:
			opt.server_pid = atoi(optarg);
			break;
		case O_RPUB:
			opt.redis_url = optarg;
			break;
		case O_GROUP:
			opt.group = optarg;
			break;
		case O_PREFIX:
			opt.prefix = optarg;
			break;
		case O_RCAP:
			opt.redis_capacity = atol(optarg);
			break;
		case O_PREFILL:
			opt.prefill = atol(optarg);
			break;
		case O_WINDOW:
			opt.window = atol(optarg);
			break;
		case O_CHURN:
			opt.churn = atof(optarg);
			break;
		case O_RINT:
			opt.report_interval = atof(optarg);
			break;
		case O_RFILE:
			opt.report_file = optarg;
			break;
		case O_KEEP:
			opt.keep_publishing = true;
			break;
		case O_PTO:
			opt.publish_timeout = atof(optarg);
			break;
		case O_CATCHUP:
			opt.catchup = atol(optarg);
			if (opt.catchup <= 0) {
				fprintf(stderr, "herald-bench: --catchup wants K >= 1\n");
				return 2;
			}
			break;
		case O_HOLD:
			opt.catchup_hold = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}
