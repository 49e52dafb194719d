/*
 * The relay between a verified client and its upstream. The upstream side
 * uses io_uring connect and send, and reads when an io_uring poll says there
 * is something to read; the client side is TLS in userspace, driven by polls.
 * Each direction holds at most one buffer, and only while bytes are in it, so
 * a stalled reader stops the other side from reading (back-pressure) and an
 * idle connection holds no buffer at all. The kTLS path replaces both sides
 * with splice; see splice.c.
 */
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "daemon.h"
#include "forward.h"
#include "httpresp.h"
#include "log.h"
#include "pool.h"

#define EDGE_RELAY_BUF (16 * 1024)
#define EDGE_OUT_BUF (64 * 1024)
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

/* A direction's buffer back to a free list (pool, *n of cap), or freed. */
static void dir_release(char **pool, unsigned int *n, unsigned int cap, struct edge_dir *d)
{
	if (!d->buf)
		return;
	if (*n < cap)
		pool[(*n)++] = d->buf;
	else
		free(d->buf);
	d->buf = NULL;
	d->len = d->off = 0;
}

static void buf_give(struct edge_worker *w, struct edge_dir *d)
{
	dir_release(w->bufs, &w->n_bufs, EDGE_RELAY_POOL, d);
}

void edge_relay_pool_free(struct edge_worker *w)
{
	while (w->n_bufs)
		free(w->bufs[--w->n_bufs]);
	while (w->n_obufs)
		free(w->obufs[--w->n_obufs]);
}

/*
 * Writes to the client, batched. OpenSSL writes a TLS record (at most 16 KiB
 * of plaintext) per BIO write; through a socket BIO that is a send per
 * record, and with TCP_NODELAY a pushed segment per record. Bulk responses
 * go out faster when the records of one pass of the pump leave in a single
 * send: this BIO gathers them in a 64 KiB buffer (taken from the worker's
 * free list while bytes are in it, so an idle connection holds none) and
 * sends when it is full and whenever the pump runs out of input
 * (client_flush). Installed as the client's write BIO for the userspace
 * relay only; reads still come straight from the socket, and the kTLS path
 * never sees it.
 */
static int out_send(struct edge_conn *c)
{
	struct edge_dir *o = &c->out;

	while (o->off < o->len) {
		ssize_t n = send(c->cfd, o->buf + o->off, o->len - o->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			o->off += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == 0)
			errno = EPIPE;
		return -1;
	}
	o->len = o->off = 0;
	return 1;
}

static void out_release(struct edge_worker *w, struct edge_dir *o)
{
	dir_release(w->obufs, &w->n_obufs, EDGE_OUT_POOL, o);
}

static int out_bio_write(BIO *b, const char *in, int inl)
{
	struct edge_conn *c = BIO_get_data(b);
	struct edge_dir *o = &c->out;
	struct edge_worker *w = c->w;
	uint32_t room;

	BIO_clear_retry_flags(b);
	if (inl <= 0)
		return 0;
	if (!o->buf) {
		o->buf = w->n_obufs ? w->obufs[--w->n_obufs] : malloc(EDGE_OUT_BUF);
		if (!o->buf) {
			errno = ENOMEM;
			return -1;
		}
	}
	if (o->len == EDGE_OUT_BUF) {
		int r = out_send(c);

		if (r < 0)
			return -1;
		if (r == 0) {
			BIO_set_retry_write(b);
			return -1;
		}
	}
	room = EDGE_OUT_BUF - o->len;
	if ((uint32_t)inl < room)
		room = (uint32_t)inl;
	memcpy(o->buf + o->len, in, room);
	o->len += room;
	return (int)room;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct edge_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH: { /* OpenSSL flushes after an alert: send what fits */
		int r = out_send(c);

		BIO_clear_retry_flags(b);
		if (r == 0)
			BIO_set_retry_write(b);
		return r > 0 ? 1 : r;
	}
	case BIO_CTRL_WPENDING:
		return (long)(c->out.len - c->out.off);
	case BIO_CTRL_PENDING:
		return 0;
	default:
		return 0; /* no kTLS, no fd, no datagram controls here */
	}
}

static BIO_METHOD *out_method;

static void out_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "edge batch");

	if (m && (!BIO_meth_set_write(m, out_bio_write) || !BIO_meth_set_ctrl(m, out_bio_ctrl))) {
		BIO_meth_free(m);
		m = NULL;
	}
	out_method = m;
}

/* Put the batching BIO in front of the client socket for writes. On failure
 * the socket BIO stays: correct, one send per record. */
static void out_install(struct edge_conn *c)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, out_method_init);
	if (!out_method || !(b = BIO_new(out_method)))
		return;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set0_wbio(c->ssl, b); /* the socket BIO stays as the read BIO */
}

/* Send what is batched: true when nothing is left; false when the rest waits
 * for POLLOUT (armed) or the connection is closed on a send error. */
static bool client_flush(struct edge_conn *c)
{
	int r;

	if (c->out.len == c->out.off) {
		out_release(c->w, &c->out);
		return true;
	}
	r = out_send(c);
	if (r > 0) {
		out_release(c->w, &c->out);
		return true;
	}
	if (r == 0) {
		edge_conn_arm_poll(c, POLLOUT);
		return false;
	}
	pr_debug("client send peer=%s sni=%s: %s", c->peer, c->host, strerror(errno));
	edge_conn_close(c, errno == ECONNRESET || errno == EPIPE ? "client_reset" : "client_error");
	return false;
}

void edge_relay_free(struct edge_conn *c)
{
	if (c->ktls) {
		free(c->c2u.buf);
		c->c2u.buf = NULL;
	} else {
		buf_give(c->w, &c->c2u);
		buf_give(c->w, &c->u2c);
		out_release(c->w, &c->out);
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

/*
 * --protocol http with its upstream keep-alive pool: on the userspace relay
 * only (on the kTLS path the response direction is spliced, never read), and
 * never with PROXY v2, whose header names one client per connection.
 */
static bool http_pooling(const struct edge_conn *c)
{
	return c->sni->protocol == EDGE_PROTOCOL_HTTP && !c->w->d->ktls &&
	       c->sni->forward != EDGE_FORWARD_PROXY_V2;
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
	if (http_pooling(c)) {
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

static void check_done(struct edge_conn *c)
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
	if (!errs[0] && (errno == ECONNRESET || errno == EPIPE))
		edge_conn_close(c, upstream ? "upstream_reset" : "client_reset");
	else
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
	if (c->ufd < 0)
		return; /* --protocol http: already back in the pool */
	if (c->ussl) {
		ERR_clear_error();
		SSL_shutdown(c->ussl); /* close_notify; best effort on a full buffer */
		ERR_clear_error();
	}
	shutdown(c->ufd, SHUT_WR);
}

static void u2c_pump(struct edge_conn *c);
static void reply_with(struct edge_conn *c, const char *text, uint32_t len, const char *reason);

/* --protocol http: between responses, with none awaited. */
static bool http_between(const struct edge_conn *c)
{
	const struct edge_http_resp *rs = c->rs;

	return rs->pending == 0 && rs->state == EDGE_RESP_HEAD && rs->buf_len == 0;
}

/* Takes back an armed poll on the upstream socket (its completion still
 * comes, as ECANCELED, and finds ufd gone). */
static void up_poll_cancel(struct edge_conn *c, bool armed, enum edge_op op)
{
	struct io_uring_sqe *sqe;

	if (!armed)
		return;
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_poll_remove(sqe, edge_ud(c, op));
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_CONN_AUX));
	c->inflight++;
}

/*
 * --protocol http: this client connection gets no more responses (a close
 * request was answered, the client finished, or a refusal is due). Its
 * upstream connection goes to the pool when it is between messages both
 * ways with nothing left over; the client's end follows the usual way
 * (u2c EOF: close_notify, FIN).
 */
static void http_end(struct edge_conn *c)
{
	const struct edge_http_rw *rw = c->rw;
	struct edge_dir *d = &c->u2c;

	if (c->ufd >= 0 && edge_http_resp_idle(c->rs) &&
	    (rw->state == EDGE_HTTP_HEAD || (rw->status && rw->refused_between)) &&
	    rw->out_off == rw->out_len && !c->c2u.busy && d->off == d->len && !d->eof) {
		up_poll_cancel(c, c->up_poll_in, EDGE_OP_UP_POLL_IN);
		up_poll_cancel(c, c->up_poll_out, EDGE_OP_UP_POLL_OUT);
		edge_pool_put(c->w, c->sni, c->ufd, c->ussl);
		c->ufd = -1;
		c->ussl = NULL;
	}
	d->eof = true;
}

/* --protocol http: the client is done sending. Between requests, the
 * connection ends once the responses awaited are out; in the middle of
 * one, the upstream gets the half-close (and is not reused). */
static void http_client_done(struct edge_conn *c)
{
	const struct edge_http_rw *rw = c->rw;

	c->c2u.eof = true;
	if (c->ufd >= 0 && !c->u2c.eof &&
	    (rw->state != EDGE_HTTP_HEAD || rw->out_off != rw->out_len || c->c2u.busy)) {
		c->rs->reusable = false;
		upstream_eof(c);
	} else if (!c->u2c.eof && c->rs->pending == 0) {
		u2c_pump(c); /* ends it: nothing more is coming */
		return;
	}
	check_done(c);
}

/* client -> upstream: SSL_read a buffer, write all of it, read again. */
static void c2u_pump(struct edge_conn *c)
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
			if (!ssl_wait(c, c->ussl, n))
				tls_error(c, true, "write");
			return;
		}
		if (c->rw && d->off < d->len) {
			uint64_t before = c->rw->requests;
			ssize_t k;

			if (c->rs && c->rw->state == EDGE_HTTP_HEAD &&
			    c->rs->pending >= EDGE_HTTP_PIPELINE_MAX) {
				c->c2u_held = true; /* until a response is out (u2c_pump_http) */
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
				 * before it (u2c_pump_http); the upstream stays open. */
				if (c->rs->pending == 0)
					u2c_pump(c);
				return;
			}
			/* Refused, and the good bytes before it are out: end the upstream's
			 * request stream; its EOF brings the answer (u2c_pump). */
			upstream_eof(c);
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
		if (ssl_wait(c, c->ssl, n)) {
			buf_give(c->w, d); /* nothing to hold while the client is quiet */
			if (c->rw)
				edge_http_rw_trim(c->rw);
			return;
		}
		if (is_eof(SSL_get_error(c->ssl, n))) {
			ERR_clear_error();
			if (c->rs) {
				http_client_done(c);
				return;
			}
			/* close_notify (or a bare FIN) becomes a half-close upstream. */
			upstream_eof(c);
			check_done(c);
			return;
		}
		tls_error(c, false, "read");
		return;
	}
}

/* The upstream's side has ended (or, --protocol http, this client gets
 * nothing more): every response before a refused request is out, so answer
 * it; else close_notify and FIN to the client. */
static void u2c_end(struct edge_conn *c)
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
	if (!client_flush(c))
		return;
	d->notified = true;
	shutdown(c->cfd, SHUT_WR);
	check_done(c);
}

/*
 * Reads from the upstream into u2c's buffer: 1 with bytes, 0 at its end
 * (d->eof set), -1 when the pump must return (waiting, with the buffer
 * given back and the client's batch flushed, or closed on an error).
 */
static int up_read(struct edge_conn *c)
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
				if (client_flush(c))
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
	if (ssl_wait(c, c->ussl, n)) {
		buf_give(c->w, d);
		if (c->rs)
			edge_http_resp_trim(c->rs);
		client_flush(c);
		return -1;
	}
	if (is_eof(SSL_get_error(c->ussl, n))) {
		ERR_clear_error();
		d->eof = true;
		return 0;
	}
	tls_error(c, true, "read");
	return -1;
}

/*
 * upstream -> client for --protocol http: what the response reader lets
 * through (heads, rewritten for a client that asked to close, and bodies
 * as they are). After the response to a close request, after the client's
 * end, or before a refusal's answer, the upstream connection goes back to
 * the pool (http_end).
 */
static void u2c_pump_http(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;
	struct edge_http_resp *rs = c->rs;

	bool gather = true;

	while (!c->closing) {
		bool from_out = rs->out_off < rs->out_len;
		uint32_t left = from_out ? (uint32_t)(rs->out_len - rs->out_off) : c->u2c_raw;
		int n;

		if (from_out && gather && !c->u2c_raw && d->off < d->len && left < EDGE_RELAY_BUF) {
			/* A head waits: what follows it in the buffer (its body, the next
			 * responses) joins it, so that a small response is one TLS record. */
			bool raw = false;
			ssize_t k = edge_http_resp_feed(rs, d->buf + d->off, d->len - d->off, &raw);
			uint32_t take = 0;

			if (k > 0 && raw) {
				take = EDGE_RELAY_BUF - left;
				if ((uint32_t)k < take)
					take = (uint32_t)k;
				if (edge_http_resp_out_append(rs, d->buf + d->off, take))
					k = -ENOMEM;
				c->u2c_raw = (uint32_t)k - take;
			} else if (k > 0) {
				take = (uint32_t)k;
			}
			if (k < 0) {
				edge_conn_close(c, "out_of_memory");
				return;
			}
			d->off += take;
			gather = k > 0;
			continue;
		}
		if (left) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(c->ssl, from_out ? rs->out + rs->out_off : d->buf + d->off,
				      (int)left);
			if (n > 0) {
				if (from_out) {
					rs->out_off += (size_t)n;
				} else {
					d->off += (uint32_t)n;
					c->u2c_raw -= (uint32_t)n;
				}
				c->bytes_out += (uint64_t)n;
				continue;
			}
			if (!ssl_wait(c, c->ssl, n))
				tls_error(c, false, "write");
			return;
		}
		if (rs->responses != c->u2c_seen) {
			c->u2c_seen = rs->responses;
			if (c->c2u_held) { /* the pipeline has room again */
				c->c2u_held = false;
				c2u_pump(c);
				continue;
			}
		}
		if (!d->eof && (rs->close_done ||
				((c->c2u.eof || (c->rw->status && c->state == EDGE_CONN_RELAY)) &&
				 http_between(c)))) {
			http_end(c);
			continue;
		}
		if (d->off < d->len) {
			bool raw = false;
			ssize_t k = edge_http_resp_feed(rs, d->buf + d->off, d->len - d->off, &raw);

			if (k < 0) {
				edge_conn_close(c, "out_of_memory");
				return;
			}
			if (raw)
				c->u2c_raw = (uint32_t)k;
			else
				d->off += (uint32_t)k;
			if (!k && rs->out_off == rs->out_len) {
				/* After the response to a close request: not this client's. */
				rs->reusable = false;
				d->off = d->len;
			}
			continue;
		}
		d->len = d->off = 0;
		if (d->eof) {
			u2c_end(c);
			return;
		}
		if ((n = up_read(c)) < 0)
			return;
		if (n == 0)
			rs->reusable = false;
	}
}

/* upstream -> client: read a buffer from the upstream, SSL_write all of it. */
static void u2c_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;

	if (c->rs) {
		u2c_pump_http(c);
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
			if (!ssl_wait(c, c->ssl, n))
				tls_error(c, false, "write");
			return;
		}
		d->len = d->off = 0;
		if (d->eof) {
			u2c_end(c);
			return;
		}
		if (up_read(c) < 0)
			return;
	}
}

/* --protocol http: the request reader (the rewriter of headers mode, or one
 * that adds nothing) and the response reader. */
static int http_start(struct edge_conn *c)
{
	if (!c->rw) {
		c->rw = malloc(sizeof(*c->rw));
		if (!c->rw)
			return -ENOMEM;
		/* c->host is the SNI as sent, or the default SNI object's name. */
		edge_http_rw_init(c->rw, c->host, NULL, 0);
	}
	c->rw->hop = true;
	c->rs = malloc(sizeof(*c->rs));
	if (!c->rs)
		return -ENOMEM;
	edge_http_resp_init(c->rs);
	return 0;
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
	if (http_pooling(c) && http_start(c)) {
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
	out_install(c);
	u2c_pump(c);
	c2u_pump(c);
	if (!c->closing)
		client_flush(c);
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
		check_done(c);
	else
		c2u_pump(c);
	if (!c->closing)
		client_flush(c); /* a TLS read may have queued a record (KeyUpdate) */
}

/* A poll on the upstream socket fired (userspace relay; any upstream). */
void edge_relay_on_upoll(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_UP_HANDSHAKE) {
		up_handshake_step(c);
	} else if (c->state == EDGE_CONN_RELAY) {
		touch(c);
		c2u_pump(c);
		u2c_pump(c);
		if (!c->closing && c->state == EDGE_CONN_RELAY)
			client_flush(c);
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
	if (!client_flush(c))
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
		c2u_pump(c);
		u2c_pump(c);
		if (!c->closing && c->state == EDGE_CONN_RELAY)
			client_flush(c);
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
