/*
 * http_lws.c: the HTTP framing of connections that lws's own h1 server
 * parses (the TLS listeners; plain-text ones are http1.c's): a request's
 * head and body from lws's callbacks into http.c, and the answer, kept until
 * lws calls HTTP_WRITEABLE, written with lws's header helpers. http.c
 * answers through the connection's framing hook, set here.
 *
 * Threads: the owning I/O thread only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "transport/transport_impl.h"

/* Keep the response for the next HTTP_WRITEABLE (body copied). */
static int
respond(hr_conn *c, int status, const char *type, const char *body, size_t len)
{
	hr_http_conn *h = c->http;
	free(h->resp);
	h->resp = malloc(len + 1);
	if (h->resp == NULL) {
		h->resp_len = 0;
		return -1;
	}
	memcpy(h->resp, body, len);
	h->resp[len] = '\0';
	h->resp_len = len;
	h->resp_status = status;
	h->resp_type = type;
	h->resp_ready = true;
	h->awaiting_reply = false;
	lws_callback_on_writable(c->wsi);
	return 0;
}

static const hr_http_framing lws_framing = { respond, NULL };

static int
write_response(struct lws *wsi, hr_conn *c)
{
	hr_http_conn *h = c->http;
	size_t cap = LWS_PRE + 1024 + h->resp_len;
	unsigned char *buf, *start, *p, *end;
	int rv = 0;

	if (!h->resp_ready)
		return 0;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap - 1;
	if (lws_add_http_common_headers(
	        wsi, (unsigned)h->resp_status, h->resp_type, h->resp_len, &p, end)
	    || (h->close_after
	        && lws_add_http_header_by_token(
	            wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end))
	    || lws_finalize_http_header(wsi, &p, end)) {
		free(buf);
		return -1;
	}
	memcpy(p, h->resp, h->resp_len);
	p += h->resp_len;
	if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) != (int)(p - start))
		rv = -1;
	free(buf);
	hr_http__conn_fini(c);
	if (rv == 0 && h->close_after)
		rv = -1;
	if (rv == 0 && lws_http_transaction_completed(wsi))
		rv = -1;
	return rv;
}

/* The head of a request lws parsed (TLS connections). */
static int
on_lws_request(hr_iothread *t, struct lws *wsi, hr_conn *c, const char *uri)
{
	char auth[1024], key[1024], ct[256], cl[32];
	hr_http_req req = { .uri = uri, .clen = -1 };
	char *ptr;
	int ulen, k;

	req.method = lws_http_get_uri_and_method(wsi, &ptr, &ulen);
	if ((k = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION)) > 0) {
		req.auth = auth;
		req.auth_len = (size_t)k;
	}
	if ((k = lws_hdr_custom_copy(wsi, key, sizeof(key), "x-api-key:", 10)) > 0) {
		req.api_key = key;
		req.api_key_len = (size_t)k;
	}
	k = lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE);
	if (k > 0) {
		req.ctype = ct;
		req.ctype_len = (size_t)k;
	} else if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0) {
		req.ctype = "?"; /* too long to be application/json */
		req.ctype_len = 1;
	}
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		req.clen = atoll(cl);
	req.chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	return hr_http__request(t, c, &req);
}

int
hr_http_lws__callback(
    hr_iothread *t, struct lws *wsi, enum lws_callback_reasons reason, void *in, size_t len)
{
	hr_conn *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (c == NULL && hr_conn__new(t, wsi, &c) != 0)
			return -1;
		if (hr_http__attach(c, &lws_framing) != 0)
			return -1;
		return on_lws_request(t, wsi, c, in ? (const char *)in : "/") < 0 ? -1 : 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (c == NULL || c->http == NULL)
			return -1;
		if (c->http->resp_ready || c->http->awaiting_reply)
			return 0;
		if (c->http->body_len + len > HR_HTTP_BODY_MAX) {
			/* stop reading: answer and close */
			c->http->close_after = true;
			lws_rx_flow_control(wsi, 0);
			return hr_http__respond_error(c, 413, "body over 1 MiB") < 0 ? -1 : 0;
		}
		if (c->http->pending_status == 0) {
			char *nb = realloc(c->http->body, c->http->body_len + len + 1);
			if (nb == NULL)
				return -1;
			memcpy(nb + c->http->body_len, in, len);
			c->http->body = nb;
			c->http->body_len += len;
			c->http->body[c->http->body_len] = '\0';
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (c == NULL || c->http == NULL)
			return -1;
		if (c->http->resp_ready || c->http->awaiting_reply) {
			/* A second completion for one request with a body is lws
			 * 4.1.6 re-reading a pipelined request from its buflist
			 * (lws_http_action's loop, which never ends): close the
			 * connection rather than spin. Plain-text connections
			 * never get here (http1.c). */
			return c->http->req_clen > 0 && !c->http->close_after ? -1 : 0;
		}
		return hr_http__body_complete(t, c) < 0 ? -1 : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c == NULL || c->http == NULL)
			return 0;
		return write_response(wsi, c);
	default:
		return 0;
	}
}
