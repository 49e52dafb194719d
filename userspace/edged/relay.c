/*
 * The relay between a verified client and its upstream. The upstream side
 * uses io_uring connect and send, and reads when an io_uring poll says there
 * is something to read; the client side is TLS in userspace, driven by polls.
 * Each direction holds at most one buffer, and only while bytes are in it, so
 * a stalled reader stops the other side from reading (back-pressure) and an
 * idle connection holds no buffer at all. The kTLS path replaces both sides
 * with splice; see splice.c. The client's batched writes are in relay_out.c,
 * --protocol http and its upstream keep-alive pool in relay_http.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "daemon.h"
#include "forward.h"
#include "httpresp.h"
#include "log.h"
#include "pool.h"
#include "relay_int.h"

#define EDGE_LINGER_MS 2000

static void touch(struct edge_conn *c)
{
	c->deadline_ms = edge_now_ms() + c->w->d->cfg.idle_timeout_ms;
}

/*
 * Buffers: a direction of the userspace relay holds one only while bytes are
 * in it (or a read into it is under way), so an idle connection holds none;
 * they come from and go back to a small free list per worker. The kTLS path's
 * request buffer (headers mode, splice.c) is its own allocation.
 */
static bool buf_take(struct edge_conn *c, struct edge_dir *d)
{
	struct edge_worker *w = c->w;

	if (!d->buf)
		d->buf = w->n_bufs ? w->bufs[--w->n_bufs] : malloc(EDGE_RELAY_BUF);
	if (d->buf)
		return true;
	edge_conn_close(c, "out_of_memory");
	return false;
}

static void buf_give(struct edge_worker *w, struct edge_dir *d)
{
	edge_relay_dir_release(w->bufs, &w->n_bufs, EDGE_RELAY_POOL, d);
}

void edge_relay_pool_free(struct edge_worker *w)
{
	while (w->n_bufs)
		free(w->bufs[--w->n_bufs]);
	while (w->n_obufs)
		free(w->obufs[--w->n_obufs]);
}

void edge_relay_free(struct edge_conn *c)
{
	if (c->ktls) {
		free(c->c2u.buf);
		c->c2u.buf = NULL;
	} else {
		buf_give(c->w, &c->c2u);
		buf_give(c->w, &c->u2c);
		edge_relay_out_release(c->w, &c->out);
	}
	if (c->rw) {
		edge_http_rw_free(c->rw);
		free(c->rw);
		c->rw = NULL;
	}
	if (c->rs) {
		edge_http_resp_free(c->rs);
		free(c->rs);
		c->rs = NULL;
	}
	free(c->fwd_inject);
	c->fwd_inject = NULL;
}

/* The rewriter refused a request: count it, say why; the answer goes out
 * once the requests before it are answered (u2c_pump here and in splice.c). */
void edge_relay_refused(struct edge_conn *c)
{
	struct edge_counters *k = &c->w->c;

	if (c->rw->status == 421)
		k->http_refused_421++;
	else if (c->rw->status == 431)
		k->http_refused_431++;
	else
		k->http_refused_400++;
	pr_info("http refused peer=%s sni=%s status=%d reason=%s after=%llu", c->peer, c->host,
		c->rw->status, c->rw->reason, (unsigned long long)c->rw->requests);
}

/* The next bytes for the upstream: as read from the client, or rewritten. */
static uint32_t wire(struct edge_conn *c, const char **p)
{
	struct edge_dir *d = &c->c2u;

	if (c->rw) {
		*p = c->rw->out + c->rw->out_off;
		return (uint32_t)(c->rw->out_len - c->rw->out_off);
	}
	*p = d->buf + d->off;
	return d->len - d->off;
}

static void wire_sent(struct edge_conn *c, uint32_t n)
{
	if (c->rw)
		c->rw->out_off += n;
	else
		c->c2u.off += n;
}

static void relay_start(struct edge_conn *c);

void edge_relay_connect(struct edge_conn *c)
{
	const struct edge_addr *a = &c->sni->upstream;
	unsigned int ms = c->w->d->cfg.upstream_connect_timeout_ms;
	struct io_uring_sqe *sqe;
	int one = 1;

	c->state = EDGE_CONN_CONNECTING;
	c->deadline_ms = 0; /* the link timeout bounds the connect */
	if (edge_relay_http_pooling(c)) {
		SSL *ssl;
		int fd = edge_pool_take(c->w, c->sni, &ssl);

		if (fd >= 0) {
			c->ufd = fd;
			c->ussl = ssl;
			if (ssl)
				SSL_set_app_data(ssl, c);
			c->up_reused = true;
			c->w->c.upstream_reused++;
			relay_start(c);
			return;
		}
	}
	c->w->c.upstream_connects++;
	c->ufd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->ufd < 0) {
		pr_err("upstream socket sni=%s: %s", c->host, strerror(errno));
		edge_conn_close(c, "upstream_error");
		return;
	}
	setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_connect(sqe, c->ufd, (const struct sockaddr *)&a->ss, a->len);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_UP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	c->inflight++;
	c->connect_ts.tv_sec = ms / 1000;
	c->connect_ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_link_timeout(sqe, &c->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_CONN_AUX));
	c->inflight++;
}

static void submit_send(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;
	struct io_uring_sqe *sqe = edge_worker_sqe(c->w);
	const char *p;
	uint32_t n = wire(c, &p);

	io_uring_prep_send(sqe, c->ufd, p, n, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_UP_SEND));
	d->busy = true;
	c->inflight++;
}

void edge_relay_check_done(struct edge_conn *c)
{
	if (c->c2u.eof && !c->c2u.busy && c->c2u.len == 0 && c->u2c.eof && c->u2c.notified)
		edge_conn_close(c, "done");
}

/* close_notify, or a bare FIN; a reset (errno set: callers zero it before
 * the read) is not an end but an error. */
static bool is_eof(int err)
{
	unsigned long e = ERR_peek_error();

	if (err == SSL_ERROR_ZERO_RETURN)
		return true;
	if (err == SSL_ERROR_SYSCALL && !e)
		return errno == 0;
	return err == SSL_ERROR_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* A TLS error on one side: log OpenSSL's words once, close. */
void edge_relay_tls_error(struct edge_conn *c, bool upstream, const char *op)
{
	char errs[256];

	edge_log_ssl_errors(errs, sizeof(errs));
	if (upstream) {
		/* In TLS 1.3 an upstream that refuses our client certificate says so
		 * after our side of the handshake is done: it shows up here. */
		c->w->c.upstream_tls_failed++;
		pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"%s\" (on %s)",
			c->host, c->sni->upstream_text, c->peer, errs[0] ? errs : strerror(errno),
			op);
	} else {
		pr_debug("client %s peer=%s sni=%s: %s", op, c->peer, c->host,
			 errs[0] ? errs : strerror(errno));
	}
	if (!errs[0] && (errno == ECONNRESET || errno == EPIPE))
		edge_conn_close(c, upstream ? "upstream_reset" : "client_reset");
	else
		edge_conn_close(c, upstream ? "upstream_tls_error" : "client_tls_error");
}

/* What to do with a non-blocking OpenSSL result that moved no bytes:
 * arm the poll it asks for and return true, or return false (EOF/error). */
bool edge_relay_ssl_wait(struct edge_conn *c, SSL *ssl, int n)
{
	int err = SSL_get_error(ssl, n);
	bool up = ssl == c->ussl;

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		unsigned int ev = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;

		if (up)
			edge_conn_arm_upoll(c, ev);
		else
			edge_conn_arm_poll(c, ev);
		return true;
	}
	return false;
}

/* The client is done sending: pass it on as a half-close. */
void edge_relay_upstream_eof(struct edge_conn *c)
{
	c->c2u.eof = true;
	if (c->ufd < 0)
		return; /* --protocol http: already back in the pool */
	if (c->ussl) {
		ERR_clear_error();
		SSL_shutdown(c->ussl); /* close_notify; best effort on a full buffer */
		ERR_clear_error();
	}
	shutdown(c->ufd, SHUT_WR);
}

static void reply_with(struct edge_conn *c, const char *text, uint32_t len, const char *reason);

/* client -> upstream: SSL_read a buffer, write all of it, read again. */
void edge_relay_c2u_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;

	while (!c->closing) {
		const char *p;
		uint32_t left = wire(c, &p);
		int n;

		if (left) {
			if (!c->ussl) {
				if (!d->busy)
					submit_send(c);
				return;
			}
			ERR_clear_error();
			n = SSL_write(c->ussl, p, (int)left);
			if (n > 0) {
				wire_sent(c, (uint32_t)n);
				continue;
			}
			if (!edge_relay_ssl_wait(c, c->ussl, n))
				edge_relay_tls_error(c, true, "write");
			return;
		}
		if (c->rw && d->off < d->len) {
			uint64_t before = c->rw->requests;
			ssize_t k;

			if (c->rs && c->rw->state == EDGE_HTTP_HEAD &&
			    c->rs->pending >= EDGE_HTTP_PIPELINE_MAX) {
				c->c2u_held = true; /* until a response is out (relay_http.c) */
				return;
			}
			k = edge_http_rw_feed(c->rw, d->buf + d->off, d->len - d->off);
			if (c->fwd_inject)
				c->w->c.http_requests_rewritten += c->rw->requests - before;
			if (c->rs && c->rw->requests != before)
				edge_http_resp_expect(c->rs, c->rw->last_head, c->rw->last_close);
			if (k == -ENOMEM) {
				edge_conn_close(c, "out_of_memory");
				return;
			}
			if (k < 0) {
				edge_relay_refused(c);
				d->len = d->off = 0; /* the rest of what the client sent is dropped */
			} else
				d->off += (uint32_t)k;
			continue;
		}
		d->len = d->off = 0;
		if (c->rw && c->rw->status && !d->eof) {
			buf_give(c->w, d);
			if (c->rs) {
				/* --protocol http: the answer goes out after the responses
				 * before it (relay_http.c); the upstream stays open. */
				if (c->rs->pending == 0)
					edge_relay_u2c_pump(c);
				return;
			}
			/* Refused, and the good bytes before it are out: end the upstream's
			 * request stream; its EOF brings the answer (u2c_pump). */
			edge_relay_upstream_eof(c);
			return;
		}
		if (d->eof) {
			buf_give(c->w, d); /* nothing more will come this way */
			return;
		}
		if (!buf_take(c, d))
			return;
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, d->buf, EDGE_RELAY_BUF);
		if (n > 0) {
			d->len = (uint32_t)n;
			c->bytes_in += (uint64_t)n;
			continue;
		}
		if (edge_relay_ssl_wait(c, c->ssl, n)) {
			buf_give(c->w, d); /* nothing to hold while the client is quiet */
			if (c->rw)
				edge_http_rw_trim(c->rw);
			return;
		}
		if (is_eof(SSL_get_error(c->ssl, n))) {
			ERR_clear_error();
			if (c->rs) {
				edge_relay_http_client_done(c);
				return;
			}
			/* close_notify (or a bare FIN) becomes a half-close upstream. */
			edge_relay_upstream_eof(c);
			edge_relay_check_done(c);
			return;
		}
		edge_relay_tls_error(c, false, "read");
		return;
	}
}

/* The upstream's side has ended (or, --protocol http, this client gets
 * nothing more): every response before a refused request is out, so answer
 * it; else close_notify and FIN to the client. */
void edge_relay_u2c_end(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;
	int n;

	buf_give(c->w, d); /* nothing more will come this way */
	if (c->rw && c->rw->status) {
		size_t len;
		const char *text = edge_http_refusal(c->rw->status, &len);

		reply_with(c, text, (uint32_t)len, c->rw->reason);
		return;
	}
	if (d->notified)
		return;
	ERR_clear_error();
	n = SSL_shutdown(c->ssl);
	if (n < 0 && SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_WRITE) {
		edge_conn_arm_poll(c, POLLOUT);
		return;
	}
	ERR_clear_error();
	/* The last records and the close_notify out before the FIN; on POLLOUT
	 * this comes back here (a second SSL_shutdown sends nothing). */
	if (!edge_relay_client_flush(c))
		return;
	d->notified = true;
	shutdown(c->cfd, SHUT_WR);
	edge_relay_check_done(c);
}

/*
 * Reads from the upstream into u2c's buffer: 1 with bytes, 0 at its end
 * (d->eof set), -1 when the pump must return (waiting, with the buffer
 * given back and the client's batch flushed, or closed on an error).
 */
int edge_relay_up_read(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;
	int n;

	if (!buf_take(c, d))
		return -1;
	if (!c->ussl) {
		for (;;) {
			ssize_t r = recv(c->ufd, d->buf, EDGE_RELAY_BUF, MSG_DONTWAIT);

			if (r > 0) {
				d->len = (uint32_t)r;
				return 1;
			}
			if (r == 0) {
				d->eof = true;
				return 0;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* Wait for the upstream without a buffer, once what this
				 * pass wrote is out (else POLLOUT brings us back). */
				buf_give(c->w, d);
				if (c->rs)
					edge_http_resp_trim(c->rs);
				if (edge_relay_client_flush(c))
					edge_conn_arm_upoll(c, POLLIN);
				return -1;
			}
			pr_debug("upstream recv peer=%s sni=%s: %s", c->peer, c->host,
				 strerror(errno));
			edge_conn_close(c, errno == ECONNRESET ? "upstream_reset" : "upstream_error");
			return -1;
		}
	}
	ERR_clear_error();
	errno = 0;
	n = SSL_read(c->ussl, d->buf, EDGE_RELAY_BUF);
	if (n > 0) {
		d->len = (uint32_t)n;
		return 1;
	}
	if (edge_relay_ssl_wait(c, c->ussl, n)) {
		buf_give(c->w, d);
		if (c->rs)
			edge_http_resp_trim(c->rs);
		edge_relay_client_flush(c);
		return -1;
	}
	if (is_eof(SSL_get_error(c->ussl, n))) {
		ERR_clear_error();
		d->eof = true;
		return 0;
	}
	edge_relay_tls_error(c, true, "read");
	return -1;
}

/* upstream -> client: read a buffer from the upstream, SSL_write all of it. */
void edge_relay_u2c_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;

	if (c->rs) {
		edge_relay_u2c_pump_http(c);
		return;
	}
	while (!c->closing) {
		int n;

		if (d->off < d->len) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(c->ssl, d->buf + d->off, (int)(d->len - d->off));
			if (n > 0) {
				d->off += (uint32_t)n;
				c->bytes_out += (uint64_t)n;
				continue;
			}
			if (!edge_relay_ssl_wait(c, c->ssl, n))
				edge_relay_tls_error(c, false, "write");
			return;
		}
		d->len = d->off = 0;
		if (d->eof) {
			edge_relay_u2c_end(c);
			return;
		}
		if (edge_relay_up_read(c) < 0)
			return;
	}
}

/* Both sessions are up: the kernel relay or the userspace one. */
static void relay_start(struct edge_conn *c)
{
	struct edge_worker *w = c->w;
	int rc = 0;

	c->state = EDGE_CONN_RELAY;
	touch(c);
	/* headers: the request direction goes through the rewriter on either path
	 * (on the kTLS one it reads plaintext from the kernel; see splice.c). */
	if (c->sni->forward == EDGE_FORWARD_HEADERS && edge_identity_start_rewriter(c)) {
		edge_conn_close(c, "out_of_memory");
		return;
	}
	if (edge_relay_http_pooling(c) && edge_relay_http_start(c)) {
		edge_conn_close(c, "out_of_memory");
		return;
	}
	if (w->d->ktls)
		rc = edge_splice_handoff(c);
	if (rc < 0) {
		edge_conn_close(c, "ktls_install_failed");
		return;
	}
	if (rc > 0) {
		edge_splice_start(c);
		return;
	}
	w->c.path_userspace++;
	edge_relay_out_install(c);
	edge_relay_u2c_pump(c);
	edge_relay_c2u_pump(c);
	if (!c->closing)
		edge_relay_client_flush(c);
}

static void up_handshake_step(struct edge_conn *c)
{
	int n;

	ERR_clear_error();
	n = SSL_do_handshake(c->ussl);
	if (n == 1) {
		pr_debug("upstream tls sni=%s upstream=%s %s %s", c->host, c->sni->upstream_text,
			 SSL_get_version(c->ussl), SSL_get_cipher_name(c->ussl));
		relay_start(c);
		return;
	}
	if (edge_relay_ssl_wait(c, c->ussl, n))
		return;
	{
		char errs[256];
		long vr = SSL_get_verify_result(c->ussl);

		edge_log_ssl_errors(errs, sizeof(errs));
		c->w->c.upstream_tls_failed++;
		pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"%s\"%s%s", c->host,
			c->sni->upstream_text, c->peer, errs[0] ? errs : "connection closed",
			vr != X509_V_OK ? " verify=" : "",
			vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		edge_conn_close(c, "upstream_tls_failed");
	}
}

static void up_handshake_start(struct edge_conn *c)
{
	const struct edge_sni *o = c->sni;

	c->ussl = SSL_new(o->up_ctx);
	if (!c->ussl || !SSL_set_fd(c->ussl, c->ufd)) {
		edge_conn_close(c, "out_of_memory");
		return;
	}
	SSL_set_app_data(c->ussl, c);
	if (!c->w->d->ktls)
		SSL_set_read_ahead(c->ussl, 1); /* as for the client (handshake.c) */
	if (o->up_name) {
		SSL_set_tlsext_host_name(c->ussl, o->up_name);
		SSL_set1_host(c->ussl, o->up_name);
	} else if (o->up_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ussl), o->up_ip);
	}
	SSL_set_connect_state(c->ussl);
	c->state = EDGE_CONN_UP_HANDSHAKE;
	c->deadline_ms = edge_now_ms() + c->w->d->cfg.upstream_connect_timeout_ms;
	up_handshake_step(c);
}

void edge_relay_on_connect(struct edge_conn *c, int res)
{
	struct edge_worker *w = c->w;

	if (res < 0) {
		w->c.upstream_connect_failed++;
		pr_warn("upstream connect failed sni=%s upstream=%s peer=%s error=\"%s\"", c->host,
			c->sni->upstream_text, c->peer,
			res == -ECANCELED ? "connect timed out" : strerror(-res));
		/* Tell the client we are done rather than leaving it waiting. */
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		edge_conn_close(c, "upstream_connect_failed");
		return;
	}
	if (c->sni->forward == EDGE_FORWARD_PROXY_V2 && edge_identity_send_proxy_v2(c)) {
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		edge_conn_close(c, "upstream_error");
		return;
	}
	if (c->sni->up_ctx)
		up_handshake_start(c);
	else
		relay_start(c);
}

void edge_relay_on_send(struct edge_conn *c, int res)
{
	struct edge_dir *d = &c->c2u;
	const char *p;

	d->busy = false;
	if (res <= 0) {
		pr_debug("upstream send peer=%s sni=%s: %s", c->peer, c->host,
			 strerror(res ? -res : EPIPE));
		edge_conn_close(c, "upstream_error");
		return;
	}
	touch(c);
	wire_sent(c, (uint32_t)res);
	if (d->eof && !wire(c, &p))
		edge_relay_check_done(c);
	else
		edge_relay_c2u_pump(c);
	if (!c->closing)
		edge_relay_client_flush(c); /* a TLS read may have queued a record (KeyUpdate) */
}

/* A poll on the upstream socket fired (userspace relay; any upstream). */
void edge_relay_on_upoll(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_UP_HANDSHAKE) {
		up_handshake_step(c);
	} else if (c->state == EDGE_CONN_RELAY) {
		touch(c);
		edge_relay_c2u_pump(c);
		edge_relay_u2c_pump(c);
		if (!c->closing && c->state == EDGE_CONN_RELAY)
			edge_relay_client_flush(c);
	}
}

/* After the reply: read and discard until the client closes, so that its
 * unread request does not turn our close into a reset that eats the reply. */
static void linger_pump(struct edge_conn *c)
{
	char sink[4096];

	for (;;) {
		int n, err;

		ERR_clear_error();
		n = SSL_read(c->ssl, sink, sizeof(sink));
		if (n > 0)
			continue;
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ) {
			edge_conn_arm_poll(c, POLLIN);
			return;
		}
		if (err == SSL_ERROR_WANT_WRITE) {
			edge_conn_arm_poll(c, POLLOUT);
			return;
		}
		ERR_clear_error();
		edge_conn_close(c, c->close_reason);
		return;
	}
}

static void reply_pump(struct edge_conn *c)
{
	while (c->reply_off < c->reply_len) {
		int n, err;

		ERR_clear_error();
		n = SSL_write(c->ssl, c->reply + c->reply_off, (int)(c->reply_len - c->reply_off));
		if (n > 0) {
			c->reply_off += (uint32_t)n;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE) {
			edge_conn_arm_poll(c, POLLOUT);
		} else if (err == SSL_ERROR_WANT_READ) {
			edge_conn_arm_poll(c, POLLIN);
		} else {
			ERR_clear_error();
			edge_conn_close(c, c->close_reason);
		}
		return;
	}
	SSL_shutdown(c->ssl); /* again on a POLLOUT re-entry: sends nothing twice */
	ERR_clear_error();
	if (!edge_relay_client_flush(c))
		return;
	shutdown(c->cfd, SHUT_WR);
	c->state = EDGE_CONN_LINGER;
	c->deadline_ms = edge_now_ms() + EDGE_LINGER_MS;
	linger_pump(c);
}

static void reply_with(struct edge_conn *c, const char *text, uint32_t len, const char *reason)
{
	c->state = EDGE_CONN_REPLY;
	c->reply = text;
	c->reply_len = len;
	c->reply_off = 0;
	c->close_reason = reason;
	c->deadline_ms = edge_now_ms() + EDGE_LINGER_MS;
	reply_pump(c);
}

void edge_relay_reply(struct edge_conn *c, const char *text, uint32_t len)
{
	reply_with(c, text, len, "blocked");
}

void edge_relay_drop(struct edge_conn *c)
{
	/* Silent: no alert, no close_notify; the reset ends it at once. */
	edge_conn_abort(c, "dropped");
}

void edge_relay_on_poll(struct edge_conn *c)
{
	switch (c->state) {
	case EDGE_CONN_RELAY:
		touch(c);
		edge_relay_c2u_pump(c);
		edge_relay_u2c_pump(c);
		if (!c->closing && c->state == EDGE_CONN_RELAY)
			edge_relay_client_flush(c);
		break;
	case EDGE_CONN_REPLY:
		reply_pump(c);
		break;
	case EDGE_CONN_LINGER:
		linger_pump(c);
		break;
	default:
		break;
	}
}
