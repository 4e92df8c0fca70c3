/*
 * iothread.c: an I/O thread: one libwebsockets context, its own SO_REUSEPORT
 * listeners adopted as raw files (lws 4.1.6 does not share a port), its mailbox's
 * eventfd adopted as a raw file (one wait for both), and every connection it
 * accepted, in its connection table (conn.c).
 *
 * The write path, per-connection queues and the batched sends at the end of
 * each mailbox drain, is outq.c.
 * The WebSocket handshake and inbound frames are ws.c, the HTTP API http.c
 * (framed by http_lws.c on TLS, by http1.c on plain-text sockets).
 *
 * An I/O thread never waits on another thread: its requests to the router
 * and the bridge go through post.c (timeout 0, a retry list flushed at the
 * end of every drain and every tick), and the router's HTTP replies that
 * found this thread's mailbox full wait on a late list that every drain
 * answers.
 *
 * Threads: everything here runs on the I/O thread except start/post_stop/
 * join/fini (main thread).
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/transport_impl.h"

#define MAIL_DRAIN_CAP 256
/*
 * The ws rx buffer lws mallocs for every connection (rx_buffer_size). Every
 * 16 KiB block touched a fresh page per connection: 6.4 KB of RSS per idle
 * connection at 16384, 3.0 KB at 1024 (herald-bench, 5,000 idle
 * connections, one thread). Inbound frames are small commands; a bigger
 * one arrives in several RECEIVE callbacks and ws.c reassembles it
 * up to --max-message.
 */
#define HR_WS_RX_BUF 1024
#define STOP_GRACE_US (2 * LWS_USEC_PER_SEC)

static int acceptor_cb(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
static int mbox_cb(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/*
 * protocols[0] serves plain HTTP and, because browsers and most clients send
 * no Sec-WebSocket-Protocol, lws binds upgraded WebSockets to the vhost's
 * default protocol, which is index 0, too (server-ws.c). One callback thus
 * sees both; tx_packet_size lets one send() carry a whole scratch buffer.
 */
static const struct lws_protocols protocols[]
    = { { "http", hr_ws__callback, 0, HR_WS_RX_BUF, 0, NULL, HR_SCRATCH },
	      { "herald-acceptor", acceptor_cb, 0, 0, 0, NULL, 0 },
	      { "herald-mailbox", mbox_cb, 0, 0, 0, NULL, 0 },
	      { "herald-http1", hr_http1__callback, 0, 0, 0, NULL, 0 },
	      { NULL, NULL, 0, 0, 0, NULL, 0 } };

static hr_iothread *
thread_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* ---------------------------------------------------------------- raw fds */

static int
acceptor_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	t = thread_of(wsi);
	int lfd = (int)lws_get_socket_fd(wsi);
	for (int i = 0; i < 1024; i++) {
		int fd = hr_sys__accept(lfd);
		if (fd < 0)
			break; /* EAGAIN, or EMFILE & co: the next turn retries */
		if (t->stopping) {
			hr_sys__close(fd);
			continue;
		}
		/* plain text: a raw socket whose requests http1.c frames (it
		 * hands WebSocket upgrades to lws); TLS: lws's own h1 server */
		lws_sock_file_fd_type sfd = { .sockfd = fd };
		/* lws 4.1.6 closes an adopted socket itself when adoption fails
		 * (lib/core-net/adopt.c): never close fd here after this */
		if (t->node->cfg.tls_cert != NULL)
			(void)lws_adopt_socket_vhost(t->vh, fd);
		else
			(void)lws_adopt_descriptor_vhost(
			    t->vh, LWS_ADOPT_SOCKET, sfd, "herald-http1", NULL);
	}
	return 0;
}

static void
on_stop_grace(lws_sorted_usec_list_t *sul)
{
	hr_iothread *t = lws_container_of(sul, hr_iothread, stop_sul);
	hr_evloop__stop(t);
}

static void
begin_stop(hr_iothread *t)
{
	if (t->stopping)
		return;
	t->stopping = true;
	for (size_t i = 0; i < t->n_listen; i++)
		if (t->acceptors[i] != NULL)
			lws_set_timeout(
			    t->acceptors[i], PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	hr_ws__close_all(t);
	if (t->n_ws == 0)
		hr_evloop__stop(t);
	else
		lws_sul_schedule(t->ctx, 0, &t->stop_sul, on_stop_grace, STOP_GRACE_US);
}

/* ---------------------------------------------------------------- tick, late replies */

/* Every HR_TICK_MS (evloop.c). */
static void
tick(hr_iothread *t)
{
	hr_ws__tick(t);
	hr_post__retry(t);
}

/* The replies that waited on the late list, oldest first. */
static void
late_replies(hr_iothread *t)
{
	hr_late_reply *l, *rev = NULL;

	pthread_mutex_lock(&t->late_mu);
	l = t->late;
	t->late = NULL;
	pthread_mutex_unlock(&t->late_mu);
	while (l != NULL) {
		hr_late_reply *next = l->next;
		l->next = rev;
		rev = l;
		l = next;
	}
	while (rev != NULL) {
		hr_late_reply *next = rev->next;
		hr_http__on_reply(t, rev->conn, rev->status);
		free(rev);
		rev = next;
	}
}

/*
 * A history envelope's offset on a recover connection: the next one is
 * taken; one at or below what it has was replayed already; one past the
 * next means a frame was lost on the way (a mailbox full): never silently,
 * so the connection is closed with 1013 and its client resumes.
 */
static bool
next_offset(hr_conn *c, uint64_t offset)
{
	if (offset <= c->ws.rec_floor)
		return false;
	if (offset != c->ws.rec_floor + 1) {
		hr_outq__close_slow(c);
		return false;
	}
	c->ws.rec_floor = offset;
	return true;
}

/*
 * An envelope's history ring (its generation, a number): a recover
 * connection takes the ring of its replay, or the first it is sent when it
 * had none. Another ring means the group's history moved to a new epoch,
 * whose offsets start at 1 again: next_offset would skip them as replayed,
 * so the connection is closed with 1013 instead and its client resumes
 * (told recovered:false). The router closes them first (epoch_moved); this
 * holds if that mail was lost. One integer compare, only for envelopes.
 */
static bool
same_ring(hr_conn *c, uint32_t gen)
{
	if (c->ws.rec_gen == gen)
		return true;
	if (c->ws.rec_gen == 0) {
		c->ws.rec_gen = gen;
		return true;
	}
	c->ws.epoch_closed = true; /* close_code is 0 here: this 1013 wins */
	hr_outq__close(c, 1013, "epoch changed");
	return false;
}

static void
on_frames(hr_iothread *t, hr_msg *frame, hr_idlist *ids, uint64_t offset, uint32_t gen)
{
	for (uint32_t i = 0; i < ids->n; i++) {
		hr_conn *c = hr_conn__get(t, ids->ids[i]);
		if (c == NULL || !c->ws.is_ws || !c->ws.counted || c->ws.close_code != 0)
			continue;
		if (gen != 0 && !same_ring(c, gen))
			continue;
		if (offset > 0 && !next_offset(c, offset))
			continue;
		if (frame != NULL)
			hr_outq__queue(c, hr_msg_ref(frame));
	}
	hr_msg_unref(frame);
	hr_idlist_unref(ids);
}

/* A resume's answer (actors/history.h): ahead of every later frame. */
static void
on_replay(hr_iothread *t, hr_replay *rp)
{
	hr_conn *c = hr_conn__get(t, rp->conn);
	if (c != NULL && c->ws.is_ws && c->ws.counted && c->ws.close_code == 0) {
		c->ws.rec_floor = rp->floor;
		c->ws.rec_gen = rp->gen;
		hr_outq__queue_replay(c, rp->frames, rp->n); /* takes the references */
		rp->n = 0;
	} else if (c != NULL && c->ws.is_ws && !c->ws.counted) {
		/* lws writes the 101 and calls ESTABLISHED in the turn that
		 * registered the connection, so this never happens; if it did,
		 * the client must not go on without its replay */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
	hr_replay_free(rp);
}

static int
mbox_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	hr_iothread *t;
	hr_mail m;

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		/* lws_cancel_service: post_stop's fallback from another thread
		 * (or the libev tick). A deferred batch normally goes at the end
		 * of the turn (evloop.c); sending it here too costs nothing. */
		t = thread_of(wsi);
		hr_mailbox_batch_end_deferred();
		if (t->exit)
			hr_evloop__stop(t);
		return 0;
	}
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	t = thread_of(wsi);
	t->draining = true;
	hr_mailbox_batch_begin();
	/* The fd does not poll readable for a batch already taken from nng. */
	for (int i = 0; i < MAIL_DRAIN_CAP || hr_mailbox_buffered(t->mbox) > 0; i++) {
		if (hr_mailbox_recv(t->mbox, &m, 0) != 0)
			break;
		switch (m.kind) {
		case HR_MAIL_IO_FRAME:
			on_frames(t, m.p1, m.p2, m.u64, m.u32);
			break;
		case HR_MAIL_IO_REPLAY:
			on_replay(t, m.p1);
			break;
		case HR_MAIL_IO_HTTP_REPLY:
			hr_http__on_reply(t, m.u64, (int)(int32_t)m.u32);
			break;
		case HR_MAIL_IO_STOP:
			begin_stop(t);
			break;
		case HR_MAIL_IO_TLS_RELOAD:
			/* SIGHUP (node.c checked the pair): lws re-reads both
			 * files into this context's vhost for new connections */
			(void)lws_tls_cert_updated(
			    t->ctx, t->node->cfg.tls_cert, t->node->cfg.tls_key, NULL, 0, NULL, 0);
			break;
		default:
			break;
		}
	}
	t->draining = false;
	late_replies(t);
	hr_outq__flush_drained(t);
	hr_post__retry(t);
	hr_mailbox_batch_end();
	return 0;
}

static void
mail_drop(void *arg, hr_mail *m)
{
	if (m->kind == HR_MAIL_IO_FRAME) {
		hr_msg_unref(m->p1);
		hr_idlist_unref(m->p2);
		m->p1 = m->p2 = NULL;
	} else if (m->kind == HR_MAIL_IO_REPLAY) {
		hr_replay_free(m->p1);
		m->p1 = NULL;
	}
}

/* ---------------------------------------------------------------- lifecycle */

int
hr_iothread__mailbox(hr_iothread *t)
{
	if (pthread_mutex_init(&t->late_mu, NULL) != 0)
		return HR_EIO;
	t->late_mu_ok = true;
	return hr_mailbox_create(&t->mbox, 8192, mail_drop, t);
}

/*
 * No lws "validity" timers: by default lws 4.1.6 pings a ws connection idle
 * for 300 s and hangs up at 310 s on its own (context.c default_retry), and
 * re-arms that per-connection timer on every pong by a sorted insertion
 * into the thread's timer list, O(connections): at 15,000 connections
 * answering herald's pings that insertion alone took ~17 % of a core.
 * herald's pings and timeouts (ws.c) replace it; a zero hangup turns it off
 * (wsi-timeout.c _lws_validity_confirmed_role).
 */
static const lws_retry_bo_t no_validity
    = { .secs_since_valid_ping = 0, .secs_since_valid_hangup = 0 };

/* The bounds of HR_HANDSHAKE_TIMEOUT_S & co (transport_impl.h). */
static void
set_limits(struct lws_context_creation_info *info)
{
	info->timeout_secs = HR_HANDSHAKE_TIMEOUT_S;
	info->timeout_secs_ah_idle = HR_HANDSHAKE_TIMEOUT_S;
	info->keepalive_timeout = HR_HTTP_KEEPALIVE_S;
	info->max_http_header_data = HR_HTTP_HEADER_MAX;
	info->retry_and_idle_policy = &no_validity;
}

/*
 * The client SSL_CTX of a TLS context's vhost. Left to itself, lws 4.1.6
 * makes one per vhost (lws_tls_client_create_vhost_context, with the
 * system's CA store) and frees it at destroy through a refcount it finds in
 * the SSL_CTX's ex_data at openssl_SSL_CTX_private_data_index; but every
 * context created with LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT takes a new
 * index (lws_context_init_ssl_library), so with two I/O threads or more
 * only the last context's client SSL_CTX was found, and freed, and every
 * other one (about 700 KB each) leaked at exit (fixed in lws 4.2.0, commit
 * ffa0a38a1, issue #2178). herald dials nothing through lws: a bare client
 * SSL_CTX of its own, which lws never frees (provided_client_ssl_ctx).
 */
static int
tls_client_create(hr_iothread *t, struct lws_context_creation_info *info)
{
	if ((t->tls_client = SSL_CTX_new(TLS_client_method())) == NULL)
		return HR_ENOMEM;
	info->provided_client_ssl_ctx = t->tls_client;
	return 0;
}

/* The lws context, then what it borrowed (either thread, once). */
static void
context_destroy(hr_iothread *t)
{
	hr_evloop__destroy(t);
	SSL_CTX_free(t->tls_client);
	t->tls_client = NULL;
}

static void *
run(void *arg)
{
	hr_iothread *t = arg;
	hr_evloop__run(t);
	hr_mailbox_batch_end_deferred(); /* a turn cut short by the stop */
	lws_sul_cancel(&t->stop_sul);
	lws_sul_cancel(&t->tick_sul);
	context_destroy(t);
	hr_post__retry_at_exit(t); /* after the closes of the destroy, which post */
	return NULL;
}

int
hr_iothread__start(hr_iothread *t)
{
	struct lws_context_creation_info info;
	void *foreign_loop = NULL;
	int mfd, dfd, rv;

	/* the server's ping (RFC 6455 5.5.2): a payload, so that lws 4.1.6
	 * reports the pong (it drops empty ones without a callback) */
	static const unsigned char ping[] = { 0x89, 0x04, 'h', 'r', 'l', 'd' };

	if ((t->scratch = malloc(HR_SCRATCH)) == NULL)
		return HR_ENOMEM;
	if ((rv = hr_msg_copy(ping, sizeof(ping), &t->ping_frame)) != 0)
		return rv;
	if ((rv = hr_sys__sendbatch_create(&t->sendbatch, t->node->cfg.io_uring)) != 0)
		return rv;
	if (t->index == 0)
		hr_log(HR_LOG_INFO, "fan-out sends: %s",
		    hr_sys__sendbatch_uring(t->sendbatch) ? "io_uring" : "sendmsg");
	t->tick = tick;
	hr_sys__random(&t->rng, sizeof(t->rng));
	t->rng |= 1;
	hr_conn__table_init(t);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = t;
	info.pt_serv_buf_size = 16384;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	set_limits(&info);
	if ((rv = hr_evloop__create(t, &info, &foreign_loop)) != 0)
		return rv;
	if (t->node->cfg.tls_cert != NULL) {
		/* With CONTEXT_PORT_NO_LISTEN lws 4.1.6 never turns TLS on for the
		 * vhost (tls-server.c); NO_LISTEN_SERVER is its "server that adopts
		 * its sockets" mode, which does. Adopted sockets then start TLS
		 * (lws_adopt_socket_vhost passes LWS_ADOPT_ALLOW_SSL). */
		info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = t->node->cfg.tls_cert;
		info.ssl_private_key_filepath = t->node->cfg.tls_key;
		if ((rv = tls_client_create(t, &info)) != 0)
			return rv;
		/* lws advertises "h2,http/1.1" by default, but herald's lws
		 * serves only HTTP/1: a client that picked h2 got an empty
		 * reply (curl without --http1.1) */
		info.alpn = "http/1.1";
	}
	if ((t->ctx = lws_create_context(&info)) == NULL) {
		if (t->evloop != HR_EVLOOP_POLL)
			hr_log(HR_LOG_ERROR,
			    "--event-loop %s: libwebsockets cannot use it (is "
			    "libwebsockets-evlib-%s installed?)",
			    hr_event_loop_name(t->evloop),
			    t->evloop == HR_EVLOOP_LIBEV ? "ev" : "uv");
		return HR_EIO;
	}
	if ((t->vh = lws_get_vhost_by_name(t->ctx, "default")) == NULL)
		return HR_EIO;

	if (hr_mailbox_fd(t->mbox, &mfd) != 0 || (dfd = dup(mfd)) < 0)
		return HR_EIO;
	lws_sock_file_fd_type fd = { .filefd = dfd };
	if (lws_adopt_descriptor_vhost(t->vh, LWS_ADOPT_RAW_FILE_DESC, fd, "herald-mailbox", NULL)
	    == NULL) {
		hr_sys__close(dfd);
		return HR_EIO;
	}
	for (size_t i = 0; i < t->n_listen; i++) {
		lws_sock_file_fd_type lfd = { .filefd = t->listen_fd[i] };
		t->acceptors[i] = lws_adopt_descriptor_vhost(
		    t->vh, LWS_ADOPT_RAW_FILE_DESC, lfd, "herald-acceptor", NULL);
		if (t->acceptors[i] == NULL)
			return HR_EIO;
		t->listen_fd[i] = -1; /* lws owns it now */
	}
	if (pthread_create(&t->thread, NULL, run, t) != 0)
		return HR_EIO;
	t->started = true;
	return 0;
}

void
hr_iothread__post_stop(hr_iothread *t)
{
	hr_mail m = { .kind = HR_MAIL_IO_STOP };
	if (t->mbox != NULL && hr_mailbox_post(t->mbox, &m, 1000) != 0 && t->ctx != NULL) {
		/* mailbox jammed: fall back to the grace timer's effect */
		t->exit = true;
		lws_cancel_service(t->ctx);
	}
}

void
hr_iothread__join(hr_iothread *t)
{
	if (t->started) {
		pthread_join(t->thread, NULL);
		t->started = false;
	}
}

int
hr_iothread__join_until(hr_iothread *t, const struct timespec *deadline)
{
	if (t->started) {
		int rv = pthread_timedjoin_np(t->thread, NULL, deadline);
		if (rv != 0)
			return rv == ETIMEDOUT ? HR_ETIMEDOUT : HR_EIO;
		t->started = false;
	}
	return 0;
}

void
hr_iothread__fini(hr_iothread *t)
{
	hr_iothread__join(t);
	context_destroy(t); /* a thread that never started, or failed to */
	for (size_t i = 0; i < t->n_listen; i++)
		if (t->listen_fd[i] >= 0)
			hr_sys__close(t->listen_fd[i]);
	t->n_listen = 0;
	hr_mailbox_destroy(t->mbox);
	t->mbox = NULL;
	if (t->late_mu_ok) {
		/* replies that came after the thread ended: nobody to answer */
		while (t->late != NULL) {
			hr_late_reply *l = t->late;
			t->late = l->next;
			free(l);
		}
		pthread_mutex_destroy(&t->late_mu);
		t->late_mu_ok = false;
	}
	hr_conn__table_fini(t);
	free(t->scratch);
	t->scratch = NULL;
	hr_msg_unref(t->ping_frame);
	t->ping_frame = NULL;
	hr_sys__sendbatch_destroy(t->sendbatch);
	t->sendbatch = NULL;
	free(t->flush);
	t->flush = NULL;
	t->nflush = t->flushcap = 0;
}
