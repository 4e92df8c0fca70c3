/*
 * http1.c: the plain-text HTTP/1.1 API connections, parsed here instead of
 * by lws's h1 server.
 *
 * Why: lws 4.1.6 (and every later release we checked, up to v5.0.0) cannot
 * serve a pipelined request that has a body. The bytes of a second request
 * read together with the first wait in the wsi's buflist; when lws parses
 * that request's head out of the buflist, lws_http_action()
 * (roles/http/server/server.c, "if the stream wsi has its own buflist, we
 * need to deal with that first") feeds the SAME buflist segment, head
 * included, to lws_read_h1() as body, and then loops forever once the body
 * is complete: lws_read_h1() in LRS_BODY with nothing remaining consumes 0
 * bytes and the loop only ends when the buflist is empty. The I/O thread
 * spins without ever polling again: no other connection is served and
 * SIGTERM cannot stop it. Two POSTs in one send() were enough.
 *
 * So the acceptor adopts plain-text connections as lws RAW sockets (lws
 * still does the polling, reading and buffered writing) and this file frames
 * the requests: head up to 16 KiB, then Content-Length bytes of body, one
 * request at a time in order; the next one waits until the previous one is
 * answered (a group send's reply comes back through the mailbox). The
 * routing and answers are http.c's (hr_http__request), shared with the lws
 * path that TLS connections still take (http_lws.c); http.c answers through
 * this file's framing hook. A WebSocket upgrade is handed to
 * lws with the bytes read so far (lws_adopt_socket_vhost_readbuf on a dup of
 * the socket; raw sockets are closed without shutdown(), so the dup lives
 * on).
 *
 * Threads: everything on the owning I/O thread.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "transport/transport_impl.h"

#define HEAD_MAX (16u * 1024u)
/* stop reading while this much is buffered unparsed, or unwritten */
#define IN_HIGH (HR_HTTP_BODY_MAX + HEAD_MAX)
#define OUT_HIGH (256u * 1024u)
#define PUMP_MAX 256 /* requests handled per turn; the rest on the next */

/* The unparsed input: an hr_buf read from the front (off bytes are done). */
typedef struct inbuf {
	hr_buf b;
	size_t off;
} inbuf;

/* A raw HTTP/1 connection's framing state (hr_conn.h1). Allocated at
 * RAW_ADOPT, freed by hr_http1__conn_fini at RAW_CLOSE. ONLY touched from
 * the connection's I/O thread. */
struct hr_http1 {
	inbuf in;
	hr_buf out; /* always written out whole */
	bool close_when_flushed;
	bool upgrading;
	bool answered;  /* the current request has its response in out */
	bool req_close; /* the current request asked to close (or is HTTP/1.0) */
	bool peer_eof;  /* the client shut its side: finish, then close */
	bool rx_paused; /* lws_rx_flow_control(wsi, 0) in effect */
};

static const unsigned char *
in_data(const inbuf *q)
{
	return hr_buf_data(&q->b) + q->off;
}

static size_t
in_len(const inbuf *q)
{
	return hr_buf_len(&q->b) - q->off;
}

/* Append; first move what is left to a buffer of its own once the consumed
 * front outweighs it, so the dead front never exceeds the live rest. */
static int
in_append(inbuf *q, const void *p, size_t n)
{
	if (q->off > 0 && q->off > in_len(q)) {
		hr_buf nb;
		hr_buf_init(&nb, 0);
		if (hr_buf_append(&nb, in_data(q), in_len(q)) != 0) {
			hr_buf_fini(&nb);
			return HR_ENOMEM;
		}
		hr_buf_fini(&q->b);
		q->b = nb;
		q->off = 0;
	}
	return hr_buf_append(&q->b, p, n);
}

static void
in_consume(inbuf *q, size_t n)
{
	q->off += n;
	if (q->off == hr_buf_len(&q->b)) {
		hr_buf_reset(&q->b);
		q->off = 0;
	}
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "";
	}
}

/* The framing hook (hr_http_framing.respond): the response goes to out. */
static int
respond(hr_conn *c, int status, const char *type, const char *body, size_t len)
{
	struct hr_http1 *h = c->h1;
	char head[256];
	int n;

	c->http->awaiting_reply = false;
	if (h == NULL)
		return -1;
	if (h->req_close)
		c->http->close_after = true;
	n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s\r\n", status,
	    reason_phrase(status), type, len, c->http->close_after ? "connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) || hr_buf_append(&h->out, head, (size_t)n) != 0
	    || hr_buf_append(&h->out, body, len) != 0)
		return -1;
	hr_http__conn_fini(c); /* the request's body */
	if (c->http->close_after)
		h->close_when_flushed = true;
	h->answered = true;
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---------------------------------------------------------------- parsing */

/* Copy the path of target (query and fragment dropped) into out, still
 * percent-encoded: http.c splits it into segments first and decodes each
 * one, so "%2F" stays inside its segment (docs/PROTOCOL.md). Control bytes are
 * refused here. */
static int
copy_path(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n && s[i] != '?' && s[i] != '#'; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch == 0x7f || o + 1 >= outlen)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o > 0 && out[0] == '/' ? 0 : -1;
}

static int
method_of(const char *m, size_t n)
{
	static const char *const names[]
	    = { "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD" };
	static const int ids[] = { LWSHUMETH_GET, LWSHUMETH_POST, LWSHUMETH_OPTIONS, LWSHUMETH_PUT,
		LWSHUMETH_PATCH, LWSHUMETH_DELETE, LWSHUMETH_CONNECT, LWSHUMETH_HEAD };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (strlen(names[i]) == n && memcmp(names[i], m, n) == 0)
			return ids[i];
	return -1;
}

static bool
name_is(const char *name, size_t nl, const char *want)
{
	return strlen(want) == nl && strncasecmp(name, want, nl) == 0;
}

/* Does a comma-separated header value hold token (case-insensitive)? */
static bool
has_token(const char *v, size_t vl, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < vl) {
		while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < vl && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
			return true;
	}
	return false;
}

typedef hr_http1_head head;

size_t
hr_http1__head_len(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n && i < HEAD_MAX; i++) {
		if (p[i] == '\n'
		    && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
			return i + (p[i + 1] == '\n' ? 2 : 3);
	}
	return 0;
}

void
hr_http1__parse_head(char *p, size_t n, head *h)
{
	char *end = p + n, *line = p, *eol;
	bool http10;

	memset(h, 0, sizeof(*h));
	h->req.clen = -1;
	h->req.uri = h->path;
	h->req.raw_path = true;
	/* request line: METHOD SP target SP HTTP/1.x */
	eol = memchr(line, '\n', (size_t)(end - line));
	char *sp1 = memchr(line, ' ', (size_t)(eol - line));
	char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	size_t vl = sp2 ? (size_t)(eol - sp2 - 1) : 0;
	if (vl > 0 && sp2[vl] == '\r')
		vl--;
	if (sp1 == NULL || sp2 == NULL || vl != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0
	    || (sp2[8] != '0' && sp2[8] != '1')
	    || copy_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), h->path, sizeof(h->path)) != 0) {
		h->bad = true;
		return;
	}
	h->req.method = method_of(line, (size_t)(sp1 - line));
	http10 = sp2[8] == '0';
	h->keep_alive = !http10;
	bool upgrade_hdr = false;

	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		size_t ll = (size_t)(eol - line);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* the blank line */
		char *colon = memchr(line, ':', ll);
		if (colon == NULL || colon == line) {
			h->bad = true;
			return;
		}
		size_t nl = (size_t)(colon - line);
		char *v = colon + 1;
		size_t vlen = ll - nl - 1;
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (name_is(line, nl, "content-length")) {
			long long cl = 0;
			if (vlen == 0 || vlen > 18) {
				h->bad = true;
				return;
			}
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9') {
					h->bad = true;
					return;
				}
				cl = cl * 10 + (v[i] - '0');
			}
			if (h->req.clen >= 0 && h->req.clen != cl)
				h->dup_clen = true;
			h->req.clen = cl;
		} else if (name_is(line, nl, "transfer-encoding")) {
			h->req.chunked = true;
		} else if (name_is(line, nl, "content-type")) {
			h->req.ctype = v;
			h->req.ctype_len = vlen;
		} else if (name_is(line, nl, "authorization")) {
			h->req.auth = v;
			h->req.auth_len = vlen;
		} else if (name_is(line, nl, "x-api-key")) {
			h->req.api_key = v;
			h->req.api_key_len = vlen;
		} else if (name_is(line, nl, "x-forwarded-for")) {
			h->req.xff = v;
			h->req.xff_len = vlen;
		} else if (name_is(line, nl, "connection")) {
			if (has_token(v, vlen, "close"))
				h->keep_alive = false;
			else if (has_token(v, vlen, "keep-alive"))
				h->keep_alive = true;
			if (has_token(v, vlen, "upgrade"))
				upgrade_hdr = true;
		} else if (name_is(line, nl, "upgrade")) {
			if (has_token(v, vlen, "websocket"))
				h->upgrade_ws = true;
		}
	}
	h->upgrade_ws = h->upgrade_ws && upgrade_hdr && h->req.method == LWSHUMETH_GET;
	if (h->dup_clen)
		h->bad = true;
}

/* ---------------------------------------------------------------- the connection */

/*
 * A raw socket has none of lws's header timers: this is the handshake
 * timeout (docs/SECURITY.md "Limits"). Armed when the connection is adopted
 * and re-armed after each complete request, so a connection that does not
 * finish its next request (head and body) within HR_HANDSHAKE_TIMEOUT_S,
 * however slowly it trickles bytes, or idles that long between requests, is
 * closed.
 */
static void
arm_deadline(hr_conn *c)
{
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)HR_HANDSHAKE_TIMEOUT_S);
}

static void
set_rx(hr_conn *c, bool on)
{
	if (c->h1->rx_paused == !on)
		return;
	c->h1->rx_paused = !on;
	lws_rx_flow_control(c->wsi, on ? 1 : 0);
}

/* Hand the connection to lws as HTTP (a WebSocket upgrade), with the bytes
 * read so far. Returns -1: the raw wsi is to close (its fd; the dup lives). */
static int
hand_to_lws(hr_conn *c)
{
	struct hr_http1 *h = c->h1;
	int fd = dup((int)lws_get_socket_fd(c->wsi));

	h->upgrading = true;
	if (fd < 0)
		return -1;
	/* lws owns fd from here, NULL or not: it closes it when adoption
	 * fails, and NULL also means the request was served and the wsi
	 * closed inside this call (a refused upgrade: lws may still hold fd
	 * while it flushes). Closing it here closed whichever connection had
	 * been given that fd number since. */
	(void)lws_adopt_socket_vhost_readbuf(
	    c->t->vh, fd, (const char *)in_data(&h->in), in_len(&h->in));
	return -1;
}

/*
 * Handle the requests buffered, in order, while none awaits a reply.
 * Returns -1 to close the connection.
 */
static int
pump(hr_conn *c)
{
	struct hr_http1 *h = c->h1;

	for (int k = 0; k < PUMP_MAX; k++) {
		if (c->http->awaiting_reply || h->close_when_flushed
		    || hr_buf_len(&h->out) >= OUT_HIGH)
			break;
		/* the parser only reads p (it borrows it for the header values) */
		char *p = (char *)in_data(&h->in);
		size_t n = in_len(&h->in), hl = hr_http1__head_len(p, n);
		if (hl == 0) {
			if (n >= HEAD_MAX) {
				c->http->close_after = true;
				return hr_http__respond_error(c, 431, "request head over 16 KiB")
				    ? -1
				    : 0;
			}
			break; /* more to come */
		}
		head hd;
		hr_http1__parse_head(p, hl, &hd);
		if (hd.bad) {
			c->http->close_after = true;
			in_consume(&h->in, n);
			return hr_http__respond_error(c, 400, "bad request") ? -1 : 0;
		}
		if (hd.upgrade_ws) {
			if (hr_buf_len(&h->out) > 0)
				break; /* answers first, then the upgrade */
			return hand_to_lws(c);
		}
		long long cl = hd.req.clen;
		bool early = cl > (long long)HR_HTTP_BODY_MAX || (cl < 0 && hd.req.chunked);
		if (!early && cl > 0 && (size_t)cl > n - hl)
			break; /* the body is still on its way */
		h->req_close = !hd.keep_alive;
		size_t used = hl + (early || cl < 0 ? 0 : (size_t)cl);
		if (early) {
			/* answered from the head (413, chunked): close after */
			int rv = hr_http__request(c->t, c, &hd.req);
			in_consume(&h->in, in_len(&h->in));
			c->http->close_after = true;
			h->close_when_flushed = true;
			return rv < 0 ? -1 : 0;
		}
		h->answered = false;
		int rv = hr_http__request(c->t, c, &hd.req);
		if (rv == 0 && cl > 0 && !h->answered && !c->http->awaiting_reply) {
			/* the body decides: hand it over as http.c expects */
			free(c->http->body);
			if ((c->http->body = malloc((size_t)cl + 1)) == NULL)
				return -1;
			memcpy(c->http->body, p + hl, (size_t)cl);
			c->http->body[cl] = '\0';
			c->http->body_len = (size_t)cl;
			rv = hr_http__body_complete(c->t, c);
		}
		in_consume(&h->in, used);
		arm_deadline(c);
		if (rv < 0)
			return -1;
	}
	if (!c->h1->peer_eof)
		set_rx(c, in_len(&h->in) < IN_HIGH && hr_buf_len(&h->out) < OUT_HIGH);
	return 0;
}

/* The framing hook (hr_http_framing.resume): a reply arrived, go on with
 * the buffered requests. */
static void
resume(hr_conn *c)
{
	if (c->h1 != NULL && pump(c) < 0)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static const hr_http_framing h1_framing = { respond, resume };

static int
on_writeable(hr_conn *c)
{
	struct hr_http1 *h = c->h1;

	if (hr_buf_len(&h->out) > 0) {
		size_t n = hr_buf_len(&h->out);
		/* LWS_WRITE_RAW on a raw socket: lws_issue_raw, which keeps an
		 * unsent tail itself and writes it before the next callback; it
		 * only reads the buffer */
		if (lws_write(c->wsi, (unsigned char *)hr_buf_data(&h->out), n, LWS_WRITE_RAW)
		    < (int)n)
			return -1;
		hr_buf_reset(&h->out);
	}
	if (h->close_when_flushed)
		return -1;
	if (pump(c) < 0)
		return -1;
	if (hr_buf_len(&h->out) > 0)
		lws_callback_on_writable(c->wsi);
	else if (c->h1->peer_eof && !c->http->awaiting_reply)
		return -1;
	return 0;
}

int
hr_http1__callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t = lws_context_user(lws_get_context(wsi));
	hr_conn *c = lws_get_opaque_user_data(wsi);

	(void)user;
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		if (hr_conn__new(t, wsi, &c) != 0)
			return -1;
		if (hr_http__attach(c, &h1_framing) != 0)
			return -1;
		if ((c->h1 = calloc(1, sizeof(*c->h1))) == NULL)
			return -1;
		hr_buf_init(&c->h1->in.b, 0);
		hr_buf_init(&c->h1->out, 0);
		arm_deadline(c);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (c == NULL || c->h1 == NULL)
			return -1;
		if (c->h1->close_when_flushed || c->h1->upgrading)
			return 0; /* discard what follows a closing request */
		if (in_append(&c->h1->in, in, len) != 0)
			return -1;
		return pump(c);
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c == NULL || c->h1 == NULL)
			return -1;
		return on_writeable(c);
	case LWS_CALLBACK_RAW_CLOSE:
		if (c != NULL) {
			hr_http__detach(c);
			hr_http1__conn_fini(c);
			hr_conn__destroy(c);
		}
		return 0;
	default:
		return 0;
	}
}

void
hr_http1__conn_fini(hr_conn *c)
{
	if (c->h1 != NULL) {
		hr_buf_fini(&c->h1->in.b);
		hr_buf_fini(&c->h1->out);
		free(c->h1);
		c->h1 = NULL;
	}
}
