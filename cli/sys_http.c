/*
 * sys_http.c: the small blocking HTTP/1.1 client behind `herald send`: one
 * POST over one plain TCP connection (http:// only), bounded in time (connect,
 * and the whole exchange after it, each within timeout_ms) and in size
 * (HR_CLI_HTTP_MAX_RESPONSE). Main thread of a short-lived command; the only
 * file of the CLI that talks to sockets.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_impl.h"

static int
fail(char *err, size_t errlen, int rc, const char *fmt, const char *a, const char *b)
{
	if (errlen > 0)
		snprintf(err, errlen, fmt, a, b);
	return rc;
}

int
hr_cli__url_parse(const char *url, hr_cli_url *out, char *err, size_t errlen)
{
	static const char scheme[] = "http://";
	memset(out, 0, sizeof(*out));
	if (strncasecmp(url, "https://", 8) == 0)
		return fail(
		    err, errlen, HR_EINVAL, "--url: '%s': only http:// is supported%s", url, "");
	if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return fail(
		    err, errlen, HR_EINVAL, "--url: '%s' must start with http://%s", url, "");
	const char *a = url + sizeof(scheme) - 1;
	size_t alen = strcspn(a, "/?#");
	const char *path = a + alen;
	if (memchr(a, '@', alen) != NULL)
		return fail(err, errlen, HR_EINVAL,
		    "--url: '%s': credentials in the URL are not "
		    "supported (use --api-key)%s",
		    url, "");
	const char *port = NULL;
	size_t hlen;
	if (alen > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', alen);
		if (close == NULL)
			return fail(
			    err, errlen, HR_EINVAL, "--url: '%s': no closing ']'%s", url, "");
		hlen = (size_t)(close - a - 1);
		if (hlen >= sizeof(out->host))
			goto badhost;
		memcpy(out->host, a + 1, hlen);
		if (close + 1 < a + alen) {
			if (close[1] != ':')
				goto badhost;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(a, ':', alen);
		hlen = colon ? (size_t)(colon - a) : alen;
		if (hlen >= sizeof(out->host))
			goto badhost;
		memcpy(out->host, a, hlen);
		if (colon != NULL)
			port = colon + 1;
	}
	if (out->host[0] == '\0')
		goto badhost;
	for (const char *c = out->host; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '/' || *c == '[' || *c == ']')
			goto badhost;
	if (port != NULL) {
		size_t plen = (size_t)(a + alen - port);
		unsigned long v = 0;
		if (plen == 0 || plen > 5)
			goto badport;
		for (size_t i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				goto badport;
			v = v * 10 + (unsigned long)(port[i] - '0');
		}
		if (v < 1 || v > 65535)
			goto badport;
		snprintf(out->port, sizeof(out->port), "%lu", v);
	} else {
		snprintf(out->port, sizeof(out->port), "80");
	}
	if (strpbrk(path, "?#") != NULL)
		return fail(
		    err, errlen, HR_EINVAL, "--url: '%s': no query or fragment, please%s", url, "");
	size_t plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	if (plen >= sizeof(out->base))
		return fail(err, errlen, HR_EINVAL, "--url: '%s': path too long%s", url, "");
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)path[i] <= ' ' || (unsigned char)path[i] >= 0x7f)
			return fail(err, errlen, HR_EINVAL,
			    "--url: '%s': the path has spaces or non-ASCII characters%s", url, "");
	memcpy(out->base, path, plen);
	out->base[plen] = '\0';
	return 0;
badhost:
	return fail(err, errlen, HR_EINVAL, "--url: '%s': bad host%s", url, "");
badport:
	return fail(err, errlen, HR_EINVAL, "--url: '%s': port must be 1..65535%s", url, "");
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return HR_ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = ev };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return HR_ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int
connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			int e = -errno;
			close(fd);
			return e;
		}
		int rc = wait_fd(fd, POLLOUT, deadline);
		if (rc != 0) {
			close(fd);
			return rc;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			close(fd);
			return soerr ? -soerr : HR_EIO;
		}
	}
	*fd_out = fd;
	return 0;
}

static int
send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(fd, POLLOUT, deadline);
			if (rc != 0)
				return rc;
			continue;
		}
		return w < 0 ? -errno : HR_EIO;
	}
	return 0;
}

/* Find "\r\n\r\n"; returns the offset just past it, or 0. */
static size_t
header_end(const char *b, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (b[i - 3] == '\r' && b[i - 2] == '\n' && b[i - 1] == '\r' && b[i] == '\n')
			return i + 1;
	return 0;
}

/* The value of header `name` inside the header block, or NULL. */
static const char *
header_find(const char *h, size_t hlen, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = h + hlen;
	const char *line = memchr(h, '\n', hlen); /* skip the status line */
	while (line != NULL && line + 1 < end) {
		line++;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0
		    && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		line = eol;
	}
	return NULL;
}

/* Decode a chunked body in place; *n becomes the decoded length. */
static int
dechunk(char *b, size_t *n)
{
	size_t in = 0, out = 0, len = *n;
	for (;;) {
		size_t size = 0, digits = 0;
		while (in < len) {
			char c = b[in];
			int d = c >= '0' && c <= '9' ? c - '0'
			    : c >= 'a' && c <= 'f'   ? c - 'a' + 10
			    : c >= 'A' && c <= 'F'   ? c - 'A' + 10
			                             : -1;
			if (d < 0)
				break;
			if (size > (SIZE_MAX >> 4) || ++digits > 16)
				return HR_EBADMSG;
			size = size * 16 + (size_t)d;
			in++;
		}
		if (digits == 0)
			return HR_EBADMSG;
		while (in < len && b[in] != '\n') /* extensions, "\r" */
			in++;
		if (in >= len)
			return HR_EBADMSG;
		in++;
		if (size == 0)
			break;
		if (size > len - in)
			return HR_EBADMSG;
		memmove(b + out, b + in, size);
		out += size;
		in += size;
		if (in < len && b[in] == '\r')
			in++;
		if (in >= len || b[in] != '\n')
			return HR_EBADMSG;
		in++;
	}
	*n = out;
	return 0;
}

int
hr_cli__http_post(const hr_cli_url *url, const char *path, const char *api_key, const char *body,
    size_t body_len, int timeout_ms, int *status, char **resp, size_t *resp_len, char *err,
    size_t errlen)
{
	int rc, fd = -1;
	char *buf = NULL, *req = NULL;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(url->host, url->port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", url->host, gai_strerror(gai));
		return HR_EIO;
	}
	int64_t deadline = now_ms() + timeout_ms;
	rc = HR_EIO;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rc = connect_one(ai, deadline, &fd);
		if (rc == 0)
			break;
	}
	freeaddrinfo(res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot connect to %s port %s: %s", url->host, url->port,
		    hr_strerror(rc));
		return rc == HR_ETIMEDOUT ? rc : HR_EIO;
	}

	bool v6 = strchr(url->host, ':') != NULL;
	size_t cap = 1024 + strlen(url->base) + strlen(path) + strlen(url->host)
	    + (api_key ? strlen(api_key) : 0);
	req = malloc(cap);
	if (req == NULL) {
		rc = HR_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	int hl = snprintf(req, cap,
	    "POST %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: herald/%s\r\n"
	    "Content-Type: application/json\r\nAccept: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
	    url->base, path, v6 ? "[" : "", url->host, v6 ? "]" : "", url->port, HERALD_VERSION,
	    body_len, api_key ? "Authorization: Bearer " : "", api_key ? api_key : "",
	    api_key ? "\r\n" : "");
	if (hl < 0 || (size_t)hl >= cap) {
		rc = HR_EMSGSIZE;
		snprintf(err, errlen, "request too long");
		goto out;
	}
	deadline = now_ms() + timeout_ms;
	rc = send_all(fd, req, (size_t)hl, deadline);
	if (rc == 0)
		rc = send_all(fd, body, body_len, deadline);
	if (rc != 0) {
		snprintf(err, errlen, "sending the request failed: %s", hr_strerror(rc));
		goto out;
	}

	size_t bcap = 16384, n = 0, hend = 0, want = SIZE_MAX;
	bool chunked = false;
	buf = malloc(bcap + 1);
	if (buf == NULL) {
		rc = HR_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		if (n == bcap) {
			if (bcap >= HR_CLI_HTTP_MAX_RESPONSE) {
				rc = HR_EMSGSIZE;
				snprintf(err, errlen, "response larger than %d bytes",
				    HR_CLI_HTTP_MAX_RESPONSE);
				goto out;
			}
			size_t nc = bcap * 2 > HR_CLI_HTTP_MAX_RESPONSE ? HR_CLI_HTTP_MAX_RESPONSE
			                                                : bcap * 2;
			char *nb = realloc(buf, nc + 1);
			if (nb == NULL) {
				rc = HR_ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			bcap = nc;
		}
		ssize_t r = recv(fd, buf + n, bcap - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc != 0) {
				snprintf(
				    err, errlen, "no complete answer within %d ms", timeout_ms);
				goto out;
			}
			continue;
		}
		if (r < 0) {
			rc = HR_EIO;
			snprintf(err, errlen, "reading the answer failed: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (hend == 0 && (hend = header_end(buf, n)) != 0) {
			size_t vl;
			const char *te = header_find(buf, hend, "Transfer-Encoding", &vl);
			chunked = te != NULL && vl == 7 && strncasecmp(te, "chunked", 7) == 0;
			const char *cl = header_find(buf, hend, "Content-Length", &vl);
			if (cl != NULL && !chunked) {
				size_t v = 0;
				for (size_t i = 0; i < vl; i++) {
					if (cl[i] < '0' || cl[i] > '9'
					    || v > HR_CLI_HTTP_MAX_RESPONSE) {
						rc = HR_EBADMSG;
						snprintf(err, errlen,
						    "bad Content-Length in the answer");
						goto out;
					}
					v = v * 10 + (size_t)(cl[i] - '0');
				}
				want = hend + v;
			}
		}
		if (n >= want)
			break;
	}
	if (hend == 0 || n < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
		rc = HR_EBADMSG;
		snprintf(err, errlen, "the answer is not HTTP/1.x");
		goto out;
	}
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9') {
			rc = HR_EBADMSG;
			snprintf(err, errlen, "bad status line in the answer");
			goto out;
		}
		st = st * 10 + (buf[i] - '0');
	}
	if (want != SIZE_MAX && n < want) {
		rc = HR_EBADMSG;
		snprintf(err, errlen, "the answer was cut short");
		goto out;
	}
	size_t blen = (want != SIZE_MAX ? want : n) - hend;
	memmove(buf, buf + hend, blen);
	if (chunked && dechunk(buf, &blen) != 0) {
		rc = HR_EBADMSG;
		snprintf(err, errlen, "bad chunked encoding in the answer");
		goto out;
	}
	buf[blen] = '\0';
	*status = st;
	*resp = buf;
	*resp_len = blen;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	free(req);
	if (fd >= 0)
		close(fd);
	return rc;
}
