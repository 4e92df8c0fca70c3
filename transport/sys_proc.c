/*
 * sys_proc.c: the process and its sockets as the kernel sees them: what the
 * process_* metrics show (read from /proc/self as Prometheus's standard
 * process collector does, so the numbers mean the same) and a socket's peer
 * address for the logs. Any thread: nothing here keeps state.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/transport_impl.h"

/* The boot time (btime of /proc/stat), in seconds since the epoch; 0 when
 * it cannot be read. */
static double
boot_time(void)
{
	char line[256];
	double bt = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long v;
		if (sscanf(line, "btime %llu", &v) == 1) {
			bt = (double)v;
			break;
		}
	}
	fclose(f);
	return bt;
}

/* starttime (field 22 of /proc/self/stat) in clock ticks after boot. */
static int
start_ticks(unsigned long long *out)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;

	if (f == NULL)
		return HR_EIO;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name (field 2) is in parentheses and may hold spaces:
	 * count the fields after its closing one */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return HR_EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return HR_EIO;
	}
	return sscanf(p, " %llu", out) == 1 ? 0 : HR_EIO;
}

static long
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the directory's own descriptor */
}

void
hr_sys__proc_stats(hr_proc_stats *st)
{
	static double started; /* the start time does not change: read once */
	static atomic_bool have_start;
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vsz_pages, rss_pages, ticks;
	long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	memset(st, 0, sizeof(*st));
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		st->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
		    + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if ((f = fopen("/proc/self/statm", "re")) != NULL) {
		if (fscanf(f, "%llu %llu", &vsz_pages, &rss_pages) == 2 && page > 0) {
			st->virtual_bytes = vsz_pages * (unsigned long long)page;
			st->resident = rss_pages * (unsigned long long)page;
		}
		fclose(f);
	}
	st->open_fds = count_fds();
	st->max_fds = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		st->max_fds = (long)rl.rlim_cur;
	if (!atomic_load(&have_start)) {
		double bt = boot_time();
		if (bt > 0 && hz > 0 && start_ticks(&ticks) == 0) {
			started = bt + (double)ticks / (double)hz;
			atomic_store(&have_start, true);
		}
	}
	if (atomic_load(&have_start))
		st->start_time = started;
}

int
hr_sys__peer_addr(int fd, uint8_t addr[16], uint16_t *port)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return HR_EIO;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		memcpy(addr, v4_mapped, 12);
		memcpy(addr + 12, &a->sin_addr, 4);
		*port = ntohs(a->sin_port);
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		memcpy(addr, &a->sin6_addr, 16);
		*port = ntohs(a->sin6_port);
		return 0;
	}
	return HR_EIO;
}
