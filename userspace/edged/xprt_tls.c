/*
 * A side with TLS in userspace (OpenSSL over a non-blocking socket). Every
 * OpenSSL error queue of the data path is cleared here: before each call, and
 * after it is logged. The client side's writes go through a batching BIO.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "log.h"
#include "snapshot.h"
#include "worker.h"

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

/* WANT_READ or WANT_WRITE: the poll it asks for. */
static bool wants(struct edge_side *s, int err)
{
	if (err == SSL_ERROR_WANT_READ) {
		s->want = POLLIN;
		return true;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		s->want = POLLOUT;
		return true;
	}
	return false;
}

/* A TLS error on one side: OpenSSL's words once in the log; a reset or a TLS error. */
static int tls_failed(struct edge_conn *c, struct edge_side *s, const char *op)
{
	char errs[256];
	int saved = errno;

	edge_log_ssl_errors(errs, sizeof(errs));
	ERR_clear_error();
	if (s->id == EDGE_UPSTREAM) {
		/* In TLS 1.3 an upstream that refuses our client certificate says so
		 * after our side of the handshake is done: it shows up here. */
		c->w->c.upstream_tls_failed++;
		pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"%s\" (on %s)",
			c->host, c->sni->upstream_text, c->peer, errs[0] ? errs : strerror(saved),
			op);
	} else {
		pr_debug("client %s peer=%s sni=%s: %s", op, c->peer, c->host,
			 errs[0] ? errs : strerror(saved));
	}
	return edge_side_failed(s, !errs[0] && (saved == ECONNRESET || saved == EPIPE)
					   ? EDGE_XF_RESET
					   : EDGE_XF_TLS);
}

static ssize_t tls_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	int n, err;

	ERR_clear_error();
	errno = 0;
	n = SSL_read(s->ssl, buf, (int)len);
	if (n > 0)
		return n;
	err = SSL_get_error(s->ssl, n);
	if (wants(s, err))
		return EDGE_IO_AGAIN;
	if (is_eof(err)) {
		ERR_clear_error();
		return 0;
	}
	return tls_failed(c, s, "read");
}

static ssize_t tls_send(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_write(s->ssl, buf, (int)len);
	if (n > 0)
		return n;
	if (wants(s, SSL_get_error(s->ssl, n)))
		return EDGE_IO_AGAIN;
	return tls_failed(c, s, "write");
}

/*
 * Writes to the client, batched. OpenSSL writes a TLS record (at most 16 KiB
 * of plaintext) per BIO write; through a socket BIO that is a send per
 * record, and with TCP_NODELAY a pushed segment per record. Bulk responses
 * go out faster when the records of one pass of the pump leave in a single
 * send: this BIO gathers them in a 64 KiB buffer (taken from the worker's
 * free list while bytes are in it, so an idle connection holds none) and
 * sends when it is full and whenever the pump runs out of input (flush).
 * Installed as the client's write BIO for the userspace relay only; reads
 * still come straight from the socket, and the kTLS path never sees it.
 */
int edge_side_out_send(struct edge_side *s)
{
	struct edge_buf *o = &s->out;

	while (o->off < o->len) {
		ssize_t n = send(s->fd, o->p + o->off, o->len - o->off,
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

static int out_bio_write(BIO *b, const char *in, int inl)
{
	struct edge_conn *c = BIO_get_data(b);
	struct edge_side *s = &c->side[EDGE_CLIENT];
	struct edge_buf *o = &s->out;
	uint32_t room;

	BIO_clear_retry_flags(b);
	if (inl <= 0)
		return 0;
	if (!edge_buf_take(&c->w->out_bufs, o)) {
		errno = ENOMEM;
		return -1;
	}
	if (o->len == EDGE_OUT_BUF) {
		int r = edge_side_out_send(s);

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
	memcpy(o->p + o->len, in, room);
	o->len += room;
	return (int)room;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct edge_conn *c = BIO_get_data(b);
	struct edge_side *s = &c->side[EDGE_CLIENT];

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH: { /* OpenSSL flushes after an alert: send what fits */
		int r = edge_side_out_send(s);

		BIO_clear_retry_flags(b);
		if (r == 0)
			BIO_set_retry_write(b);
		return r > 0 ? 1 : r;
	}
	case BIO_CTRL_WPENDING:
		return (long)(s->out.len - s->out.off);
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
void edge_xprt_tls_batch(struct edge_conn *c, struct edge_side *s)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, out_method_init);
	if (s->id != EDGE_CLIENT || !out_method || !(b = BIO_new(out_method)))
		return;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set0_wbio(s->ssl, b); /* the socket BIO stays as the read BIO */
}

int edge_side_out_flush(struct edge_conn *c, struct edge_side *s)
{
	int r;

	if (s->out.len != s->out.off) {
		r = edge_side_out_send(s);
		if (r == 0) {
			s->want = POLLOUT;
			return EDGE_IO_AGAIN;
		}
		if (r < 0) {
			pr_debug("client send peer=%s sni=%s: %s", c->peer, c->host,
				 strerror(errno));
			return edge_side_failed(s, errno == ECONNRESET || errno == EPIPE
							   ? EDGE_XF_RESET
							   : EDGE_XF_ERROR);
		}
	}
	edge_buf_give(&c->w->out_bufs, &s->out);
	return 0;
}

/* What is batched goes out: 0 when nothing is left (the buffer goes back);
 * AGAIN when the rest waits for POLLOUT. */
static int tls_flush(struct edge_conn *c, struct edge_side *s)
{
	return edge_side_out_flush(c, s);
}

/* close_notify, what is batched, then the FIN. Called again on POLLOUT until
 * it returns 0 (a second SSL_shutdown sends nothing twice). */
static int tls_shutw(struct edge_conn *c, struct edge_side *s)
{
	int n, r;

	ERR_clear_error();
	n = SSL_shutdown(s->ssl);
	if (n < 0 && SSL_get_error(s->ssl, n) == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		s->want = POLLOUT;
		return EDGE_IO_AGAIN;
	}
	ERR_clear_error();
	r = tls_flush(c, s);
	if (r)
		return r;
	shutdown(s->fd, SHUT_WR);
	return 0;
}

const struct edge_xprt_ops edge_xprt_tls = {
	.name = "tls",
	.kernel = false,
	.recv = tls_recv,
	.send = tls_send,
	.flush = tls_flush,
	.shutw = tls_shutw,
};
