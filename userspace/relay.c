/*
 * The relay between a verified client and its upstream. The upstream side
 * uses io_uring connect/recv/send; the client side is TLS in userspace,
 * driven by io_uring polls. Each direction holds at most one buffer, so a
 * stalled reader stops the other side from reading (back-pressure).
 * The kTLS path replaces the client side with splice; see ktls.c.
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
#include "log.h"

#define EDGE_RELAY_BUF (16 * 1024)
#define EDGE_LINGER_MS 2000

static void touch(struct edge_conn *c)
{
	c->deadline_ms = edge_now_ms() + c->w->d->cfg.idle_timeout_ms;
}

void edge_relay_free(struct edge_conn *c)
{
	free(c->c2u.buf);
	c->c2u.buf = c->u2c.buf = NULL;
}

void edge_relay_connect(struct edge_conn *c)
{
	const struct edge_addr *a = &c->sni->upstream;
	unsigned int ms = c->w->d->cfg.upstream_connect_timeout_ms;
	struct io_uring_sqe *sqe;
	int one = 1;

	c->state = EDGE_CONN_CONNECTING;
	c->deadline_ms = 0; /* the link timeout bounds the connect */
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

	io_uring_prep_send(sqe, c->ufd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_UP_SEND));
	d->busy = true;
	c->inflight++;
}

static void submit_recv(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;
	struct io_uring_sqe *sqe = edge_worker_sqe(c->w);

	io_uring_prep_recv(sqe, c->ufd, d->buf, EDGE_RELAY_BUF, 0);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_UP_RECV));
	d->busy = true;
	c->inflight++;
}

static void check_done(struct edge_conn *c)
{
	if (c->c2u.eof && !c->c2u.busy && c->c2u.len == 0 && c->u2c.eof && c->u2c.notified)
		edge_conn_close(c, "done");
}

static bool is_eof(int err)
{
	unsigned long e = ERR_peek_error();

	if (err == SSL_ERROR_ZERO_RETURN)
		return true;
	if (err == SSL_ERROR_SYSCALL && !e)
		return true;
	return err == SSL_ERROR_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* A TLS error on one side: log OpenSSL's words once, close. */
static void tls_error(struct edge_conn *c, bool upstream, const char *op)
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
	edge_conn_close(c, upstream ? "upstream_tls_error" : "client_tls_error");
}

/* What to do with a non-blocking OpenSSL result that moved no bytes:
 * arm the poll it asks for and return true, or return false (EOF/error). */
static bool ssl_wait(struct edge_conn *c, SSL *ssl, int n)
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
static void upstream_eof(struct edge_conn *c)
{
	c->c2u.eof = true;
	if (c->ussl) {
		ERR_clear_error();
		SSL_shutdown(c->ussl); /* close_notify; best effort on a full buffer */
		ERR_clear_error();
	}
	shutdown(c->ufd, SHUT_WR);
}

/* client -> upstream: SSL_read a buffer, write all of it, read again. */
static void c2u_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;

	while (!c->closing) {
		int n;

		if (d->off < d->len) {
			if (!c->ussl) {
				if (!d->busy)
					submit_send(c);
				return;
			}
			ERR_clear_error();
			n = SSL_write(c->ussl, d->buf + d->off, (int)(d->len - d->off));
			if (n > 0) {
				d->off += (uint32_t)n;
				continue;
			}
			if (!ssl_wait(c, c->ussl, n))
				tls_error(c, true, "write");
			return;
		}
		d->len = d->off = 0;
		if (d->eof)
			return;
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, d->buf, EDGE_RELAY_BUF);
		if (n > 0) {
			d->len = (uint32_t)n;
			c->bytes_in += (uint64_t)n;
			continue;
		}
		if (ssl_wait(c, c->ssl, n))
			return;
		if (is_eof(SSL_get_error(c->ssl, n))) {
			/* close_notify (or a bare FIN) becomes a half-close upstream. */
			ERR_clear_error();
			upstream_eof(c);
			check_done(c);
			return;
		}
		tls_error(c, false, "read");
		return;
	}
}

/* upstream -> client: read a buffer from the upstream, SSL_write all of it. */
static void u2c_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;

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
			if (!ssl_wait(c, c->ssl, n))
				tls_error(c, false, "write");
			return;
		}
		d->len = d->off = 0;
		if (d->eof) {
			if (!d->notified) {
				ERR_clear_error();
				n = SSL_shutdown(c->ssl);
				if (n < 0 && SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_WRITE) {
					edge_conn_arm_poll(c, POLLOUT);
					return;
				}
				ERR_clear_error();
				d->notified = true;
				shutdown(c->cfd, SHUT_WR);
				check_done(c);
			}
			return;
		}
		if (!c->ussl) {
			if (!d->busy)
				submit_recv(c);
			return;
		}
		ERR_clear_error();
		n = SSL_read(c->ussl, d->buf, EDGE_RELAY_BUF);
		if (n > 0) {
			d->len = (uint32_t)n;
			continue;
		}
		if (ssl_wait(c, c->ussl, n))
			return;
		if (is_eof(SSL_get_error(c->ussl, n))) {
			ERR_clear_error();
			d->eof = true;
			continue;
		}
		tls_error(c, true, "read");
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
	c->c2u.buf = malloc(2 * EDGE_RELAY_BUF);
	if (!c->c2u.buf) {
		edge_conn_close(c, "out_of_memory");
		return;
	}
	c->u2c.buf = c->c2u.buf + EDGE_RELAY_BUF;
	w->c.path_userspace++;
	u2c_pump(c);
	c2u_pump(c);
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
	if (ssl_wait(c, c->ussl, n))
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
	if (c->sni->up_ctx)
		up_handshake_start(c);
	else
		relay_start(c);
}

void edge_relay_on_recv(struct edge_conn *c, int res)
{
	struct edge_dir *d = &c->u2c;

	d->busy = false;
	if (res < 0) {
		pr_debug("upstream recv peer=%s sni=%s: %s", c->peer, c->host, strerror(-res));
		edge_conn_close(c, "upstream_error");
		return;
	}
	touch(c);
	if (res == 0)
		d->eof = true;
	d->len = (uint32_t)res;
	d->off = 0;
	u2c_pump(c);
}

void edge_relay_on_send(struct edge_conn *c, int res)
{
	struct edge_dir *d = &c->c2u;

	d->busy = false;
	if (res <= 0) {
		pr_debug("upstream send peer=%s sni=%s: %s", c->peer, c->host,
			 strerror(res ? -res : EPIPE));
		edge_conn_close(c, "upstream_error");
		return;
	}
	touch(c);
	d->off += (uint32_t)res;
	if (d->off == d->len && d->eof)
		check_done(c);
	else
		c2u_pump(c);
}

/* A poll on the upstream socket fired (TLS upstream, userspace relay). */
void edge_relay_on_upoll(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_UP_HANDSHAKE) {
		up_handshake_step(c);
	} else if (c->state == EDGE_CONN_RELAY) {
		touch(c);
		c2u_pump(c);
		u2c_pump(c);
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
	SSL_shutdown(c->ssl);
	ERR_clear_error();
	shutdown(c->cfd, SHUT_WR);
	c->state = EDGE_CONN_LINGER;
	c->deadline_ms = edge_now_ms() + EDGE_LINGER_MS;
	linger_pump(c);
}

void edge_relay_reply(struct edge_conn *c, const char *text, uint32_t len)
{
	c->state = EDGE_CONN_REPLY;
	c->reply = text;
	c->reply_len = len;
	c->reply_off = 0;
	c->close_reason = "blocked";
	c->deadline_ms = edge_now_ms() + EDGE_LINGER_MS;
	reply_pump(c);
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
		c2u_pump(c);
		u2c_pump(c);
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
