/*
 * history_driver.c: drives the Redis layer's shared history (layer.h
 * "shared history") from stdin, one operation per line, as one node would:
 * its own layer (its own client_prefix), the sequencer (pump) and the log
 * tail. Used by tests/layer/test_redis_history.py, which runs several of
 * these beside channels_redis. Single-threaded; output flushed per line.
 *
 *   history_driver --redis URL[,URL...]
 *   config [capacity N] [expiry S] [group_expiry S] -> ok
 *   member G                 -> the shared member's name
 *   register G SIZE TTL      -> ok | error <reason>
 *   group_send G JSON        -> ok delivered=N full=M (herald's own writer)
 *   pump [MAX]               -> sequenced=N (every shard, one script each)
 *   mark                     -> ok (tail from the logs' ends from now on)
 *   tail MS                  -> ev G EPOCH OFFSET JSON ... then `end N`
 *   run MS [N]               -> for MS ms (or until N events came), as the
 *                               bridge's history thread: tail, pump, sleep
 *                               10 ms after a round that found nothing; ev
 *                               lines as they come, then `end N`
 *   range G EPOCH AFTER MAX TTL -> pos EPOCH LATEST COMPLETE, ev lines, `end N`
 *   stats                    -> expired=.. bad=..
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helper_driver.h"

#define MAX_HOSTS 16
#define MAX_EV 256

static hr_layer *layer;
static const char *hosts[MAX_HOSTS];
static size_t n_hosts;
static char cursors[MAX_HOSTS][HR_HISTORY_CURSOR];
static hr_layer_hevent ev[MAX_EV];

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
print_events(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		printf(
		    "ev %s %s %llu ", ev[i].group, ev[i].epoch, (unsigned long long)ev[i].offset);
		driver_print_msg(ev[i].msg);
	}
	hr_layer_hevents_release(ev, n);
}

/* Pump every shard once; the number sequenced, or a negative error. */
static long
pump_all(size_t max)
{
	long total = 0;
	for (size_t s = 0; s < hr_layer_history_shards(layer); s++) {
		size_t k;
		int rv = hr_layer_history_pump(layer, s, max, &k);
		if (rv != 0)
			return rv;
		total += (long)k;
	}
	return total;
}

/* Tail every shard once (block_ms each); prints; the count or an error. */
static long
tail_all(int block_ms)
{
	long total = 0;
	for (size_t s = 0; s < hr_layer_history_shards(layer); s++) {
		size_t n;
		int rv = hr_layer_history_tail(layer, s, cursors[s], block_ms, ev, MAX_EV, &n);
		if (rv != 0)
			return rv;
		print_events(n);
		total += (long)n;
	}
	return total;
}

static void
run(char *line)
{
	char *rest = line;
	char *op = driver_next_tok(&rest);
	int rv;
	if (op == NULL || op[0] == '\0' || op[0] == '#')
		return;
	if (strcmp(op, "config") == 0) {
		memset(cursors, 0, sizeof(cursors));
		driver_print_result(
		    driver_configure(&layer, &hr_layer_redis_ops, hosts, n_hosts, rest, NULL));
		return;
	}
	if (layer == NULL) {
		puts("error no layer");
		return;
	}
	if (strcmp(op, "member") == 0) {
		char *g = driver_next_tok(&rest);
		char name[HR_NAME_MAX + 1];
		rv = g != NULL ? hr_layer_history_member(layer, g, name, sizeof(name)) : HR_EINVAL;
		if (rv == 0)
			puts(name);
		else
			driver_print_result(rv);
	} else if (strcmp(op, "register") == 0) {
		char *g = driver_next_tok(&rest), *sz = driver_next_tok(&rest);
		char *ttl = driver_next_tok(&rest);
		if (g == NULL || sz == NULL || ttl == NULL) {
			puts("error input");
			return;
		}
		driver_print_result(
		    hr_layer_history_register(layer, g, strtoul(sz, NULL, 10), strtod(ttl, NULL)));
	} else if (strcmp(op, "group_send") == 0) {
		driver_group_send_op(layer, rest);
	} else if (strcmp(op, "pump") == 0) {
		char *mx = driver_next_tok(&rest);
		long k = pump_all(mx != NULL ? strtoul(mx, NULL, 10) : 100);
		if (k >= 0)
			printf("sequenced=%ld\n", k);
		else
			driver_print_result((int)k);
	} else if (strcmp(op, "mark") == 0) {
		memset(cursors, 0, sizeof(cursors));
		long k = tail_all(1);
		if (k == 0)
			puts("ok");
		else if (k < 0)
			driver_print_result((int)k);
		else
			printf("error %ld entries after mark\n", k);
	} else if (strcmp(op, "tail") == 0 || strcmp(op, "run") == 0) {
		char *ms = driver_next_tok(&rest), *until = driver_next_tok(&rest);
		int block = ms != NULL ? atoi(ms) : 0;
		long want = until != NULL ? atol(until) : -1;
		if (block <= 0) {
			puts("error input");
			return;
		}
		long total = 0, k = 0;
		if (op[0] == 't') {
			k = tail_all(block);
			total = k;
		} else {
			double end = mono() + block / 1000.0;
			while (mono() < end && (want < 0 || total < want)) {
				long got, seq;
				if ((k = got = tail_all(0)) < 0 || (k = seq = pump_all(100)) < 0)
					break;
				total += got;
				fflush(stdout);
				if (got == 0 && seq == 0) {
					struct timespec idle = { 0, 10000000 };
					nanosleep(&idle, NULL);
				}
			}
		}
		if (k < 0)
			driver_print_result((int)k);
		else
			printf("end %ld\n", total);
	} else if (strcmp(op, "range") == 0) {
		char *g = driver_next_tok(&rest), *e = driver_next_tok(&rest);
		char *after = driver_next_tok(&rest), *mx = driver_next_tok(&rest);
		char *ttl = driver_next_tok(&rest);
		if (g == NULL || e == NULL || after == NULL || mx == NULL || ttl == NULL) {
			puts("error input");
			return;
		}
		size_t max = strtoul(mx, NULL, 10), n = 0;
		hr_layer_hpos pos;
		rv = hr_layer_history_range(layer, g, e, strtoull(after, NULL, 10),
		    strtod(ttl, NULL), ev, max < MAX_EV ? max : MAX_EV, &n, &pos);
		if (rv != 0) {
			driver_print_result(rv);
			return;
		}
		printf("pos %s %llu %d\n", pos.epoch, (unsigned long long)pos.latest, pos.complete);
		print_events(n);
		printf("end %zu\n", n);
	} else if (strcmp(op, "stats") == 0) {
		hr_layer_stats st;
		hr_layer_get_stats(layer, &st);
		printf("expired=%llu bad=%llu\n", (unsigned long long)st.expired,
		    (unsigned long long)st.bad);
	} else {
		puts("error unknown op");
	}
}

int
main(int argc, char **argv)
{
	int rv = driver_redis_loop(argc, argv, "history_driver", hosts, &n_hosts, MAX_HOSTS, run);
	hr_layer_destroy(layer);
	driver_fini();
	return rv;
}
