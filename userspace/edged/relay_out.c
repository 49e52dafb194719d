/*
 * The userspace relay's writes to the client, batched (see the comment
 * below), and the per-worker free lists its buffers come from.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "log.h"
#include "relay_int.h"

/* A direction's buffer back to a free list (pool, *n of cap), or freed. */
void edge_relay_dir_release(char **pool, unsigned int *n, unsigned int cap, struct edge_dir *d)
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

/*
 * Writes to the client, batched. OpenSSL writes a TLS record (at most 16 KiB
 * of plaintext) per BIO write; through a socket BIO that is a send per
 * record, and with TCP_NODELAY a pushed segment per record. Bulk responses
 * go out faster when the records of one pass of the pump leave in a single
 * send: this BIO gathers them in a 64 KiB buffer (taken from the worker's
 * free list while bytes are in it, so an idle connection holds none) and
 * sends when it is full and whenever the pump runs out of input
 * (edge_relay_client_flush). Installed as the client's write BIO for the userspace
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

void edge_relay_out_release(struct edge_worker *w, struct edge_dir *o)
{
	edge_relay_dir_release(w->obufs, &w->n_obufs, EDGE_OUT_POOL, o);
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
void edge_relay_out_install(struct edge_conn *c)
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
bool edge_relay_client_flush(struct edge_conn *c)
{
	int r;

	if (c->out.len == c->out.off) {
		edge_relay_out_release(c->w, &c->out);
		return true;
	}
	r = out_send(c);
	if (r > 0) {
		edge_relay_out_release(c->w, &c->out);
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

