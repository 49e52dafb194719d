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
	if (c->c2u.eof && !c->c2u.busy && c->u2c.eof && c->u2c.notified)
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

/* A TLS error on the client side: log OpenSSL's words once, close. */
static void client_tls_error(struct edge_conn *c, const char *op)
{
	char errs[256];

	edge_log_ssl_errors(errs, sizeof(errs));
	pr_debug("client %s peer=%s sni=%s: %s", op, c->peer, c->host,
		 errs[0] ? errs : strerror(errno));
	edge_conn_close(c, "client_tls_error");
}

/* client -> upstream: SSL_read into the buffer, then one send at a time. */
static void c2u_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;

	while (!c->closing && !d->eof && !d->busy) {
		int n, err;

		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, d->buf, EDGE_RELAY_BUF);
		if (n > 0) {
			d->len = (uint32_t)n;
			d->off = 0;
			c->bytes_in += (uint64_t)n;
			submit_send(c);
			return;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ) {
			edge_conn_arm_poll(c, POLLIN);
			return;
		}
		if (err == SSL_ERROR_WANT_WRITE) {
			edge_conn_arm_poll(c, POLLOUT);
			return;
		}
		if (is_eof(err)) {
			/* close_notify (or a bare FIN) becomes a half-close upstream. */
			ERR_clear_error();
			d->eof = true;
			shutdown(c->ufd, SHUT_WR);
			check_done(c);
			return;
		}
		client_tls_error(c, "read");
		return;
	}
}

/* upstream -> client: one recv at a time, then SSL_write all of it. */
static void u2c_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;

	while (!c->closing) {
		int n, err;

		if (d->off < d->len) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(c->ssl, d->buf + d->off, (int)(d->len - d->off));
			if (n > 0) {
				d->off += (uint32_t)n;
				c->bytes_out += (uint64_t)n;
				continue;
			}
			err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_WRITE) {
				edge_conn_arm_poll(c, POLLOUT);
			} else if (err == SSL_ERROR_WANT_READ) {
				edge_conn_arm_poll(c, POLLIN);
			} else {
				client_tls_error(c, "write");
			}
			return;
		}
		if (d->eof) {
			if (!d->notified) {
				ERR_clear_error();
				n = SSL_shutdown(c->ssl);
				if (n < 0) {
					err = SSL_get_error(c->ssl, n);
					if (err == SSL_ERROR_WANT_WRITE) {
						edge_conn_arm_poll(c, POLLOUT);
						return;
					}
					ERR_clear_error();
				}
				d->notified = true;
				shutdown(c->cfd, SHUT_WR);
				check_done(c);
			}
			return;
		}
		if (!d->busy)
			submit_recv(c);
		return;
	}
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
	c->state = EDGE_CONN_RELAY;
	touch(c);
	if (c->ktls) {
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
	if (d->off < d->len) {
		submit_send(c);
		return;
	}
	d->len = d->off = 0;
	if (d->eof)
		check_done(c);
	else
		c2u_pump(c);
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
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* Silent: no alert, no close_notify; the reset ends it at once. */
	setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	edge_conn_close(c, "dropped");
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
