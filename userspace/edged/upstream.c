/* The upstream side of a connection: see upstream.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "filter.h"
#include "identity.h"
#include "log.h"
#include "snapshot.h"
#include "upstream.h"
#include "worker.h"

/* Tell the client we are done rather than leaving it waiting: close_notify. */
static void client_goodbye(struct edge_conn *c)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];

	if (c->h2_child)
		return; /* the session is the parent's: the stream gets a 502 (h2.c) */
	if (!s->ssl) {  /* a parked relay's reconnect: the session left OpenSSL (xprt_rec) */
		if (s->ops && s->ops->shutw)
			s->ops->shutw(c, s);
		return;
	}
	ERR_clear_error();
	SSL_shutdown(s->ssl);
	ERR_clear_error();
}

bool edge_upstream_reuse(struct edge_conn *c)
{
	struct edge_side *up = &c->side[EDGE_UPSTREAM];
	SSL *ssl;
	int fd = edge_pool_take(c->w, c->sni, &ssl);

	if (fd < 0)
		return false;
	up->fd = fd;
	up->ssl = ssl;
	if (ssl)
		SSL_set_app_data(ssl, c);
	c->up_reused = true;
	c->w->c.upstream_reused++;
	return true;
}

struct edge_step edge_upstream_connect(struct edge_conn *c)
{
	const struct edge_addr *a = &c->sni->upstream;
	unsigned int ms = c->w->d->cfg.upstream_connect_timeout_ms;
	struct edge_side *up = &c->side[EDGE_UPSTREAM];
	struct io_uring_sqe *sqe;
	int one = 1;

	edge_conn_deadline(c, 0); /* the link timeout bounds the connect */
	if (edge_filter_http_pooling(c) && edge_upstream_reuse(c))
		return edge_move(EDGE_CONN_RELAY);
	c->w->c.upstream_connects++;
	up->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (up->fd < 0) {
		pr_err("upstream socket sni=%s: %s", c->host, strerror(errno));
		return edge_close(EDGE_CLOSE_UPSTREAM_ERROR);
	}
	setsockopt(up->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sqe = edge_worker_sqe(c->w);
	if (!sqe)
		return edge_close(EDGE_CLOSE_INTERNAL_ERROR);
	io_uring_prep_connect(sqe, up->fd, (const struct sockaddr *)&a->ss, a->len);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_CONNECT));
	sqe->flags |= IOSQE_IO_LINK;
	c->inflight++;
	c->connect_ts.tv_sec = ms / 1000;
	c->connect_ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
	sqe = edge_worker_sqe(c->w);
	if (!sqe)
		return edge_stay(); /* connected or refused, without a bound */
	io_uring_prep_link_timeout(sqe, &c->connect_ts, 0);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_AUX));
	c->inflight++;
	return edge_stay();
}

/* The connect did not finish inline: io_uring gives the socket's own answer when the request
 * ran where it could not wait (the socket is non-blocking), so wait for it to be writable. */
static bool connect_pending(int res)
{
	return res == -EINPROGRESS || res == -EALREADY || res == -EAGAIN;
}

struct edge_step edge_upstream_on_connect(struct edge_conn *c, enum edge_op op, int res)
{
	struct edge_worker *w = c->w;
	struct edge_side *up = &c->side[EDGE_UPSTREAM];

	if (op == EDGE_OP_POLL_OUT_UP) { /* after a pending connect: its result */
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(up->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		res = -err;
	} else if (op != EDGE_OP_CONNECT) {
		return edge_stay();
	} else if (connect_pending(res)) {
		edge_conn_deadline(c, edge_now_ms() + c->w->d->cfg.upstream_connect_timeout_ms);
		edge_side_arm(c, up, POLLOUT);
		return edge_stay();
	}
	edge_conn_deadline(c, 0);
	if (res < 0) {
		w->c.upstream_connect_failed++;
		pr_warn("upstream connect failed sni=%s upstream=%s peer=%s error=\"%s\"", c->host,
			c->sni->upstream_text, c->peer,
			res == -ECANCELED ? "connect timed out" : strerror(-res));
		client_goodbye(c);
		return edge_close(EDGE_CLOSE_UPSTREAM_CONNECT_FAILED);
	}
	if (c->sni->forward == EDGE_FORWARD_PROXY_V2 && edge_identity_send_proxy_v2(c)) {
		client_goodbye(c);
		return edge_close(EDGE_CLOSE_UPSTREAM_ERROR);
	}
	return edge_move(c->sni->up_ctx ? EDGE_CONN_UP_HANDSHAKE : EDGE_CONN_RELAY);
}

/* --protocol tcp relays the client's protocol unread: the upstream must have selected the
 * one the client negotiated with the edge (the only one the edge offered it). */
static bool up_alpn_ok(struct edge_conn *c, SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;
	size_t want = strlen(c->alpn);
	char got[EDGE_ALPN_TOKEN_MAX + 1];

	if (!want || c->sni->protocol != EDGE_PROTOCOL_TCP)
		return true;
	SSL_get0_alpn_selected(ssl, &p, &len);
	if (len == want && !memcmp(p, c->alpn, want))
		return true;
	snprintf(got, sizeof(got), "%.*s", (int)(len < sizeof(got) ? len : sizeof(got) - 1),
		 p ? (const char *)p : "");
	c->w->c.upstream_alpn_mismatch++;
	pr_warn("upstream alpn mismatch sni=%s upstream=%s peer=%s alpn=%s upstream_alpn=%s",
		c->host, c->sni->upstream_text, c->peer, c->alpn, got[0] ? got : "-");
	client_goodbye(c);
	return false;
}

static struct edge_step up_handshake_step(struct edge_conn *c)
{
	struct edge_side *up = &c->side[EDGE_UPSTREAM];
	char errs[256];
	long vr;
	int n, err;

	ERR_clear_error();
	n = SSL_do_handshake(up->ssl);
	if (n == 1) {
		pr_debug("upstream tls sni=%s upstream=%s %s %s", c->host, c->sni->upstream_text,
			 SSL_get_version(up->ssl), SSL_get_cipher_name(up->ssl));
		return up_alpn_ok(c, up->ssl) ? edge_move(EDGE_CONN_RELAY)
					      : edge_close(EDGE_CLOSE_UPSTREAM_ALPN);
	}
	err = SSL_get_error(up->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		edge_side_arm(c, up, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
		return edge_stay();
	}
	vr = SSL_get_verify_result(up->ssl);
	edge_log_ssl_errors(errs, sizeof(errs));
	c->w->c.upstream_tls_failed++;
	pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"%s\"%s%s", c->host,
		c->sni->upstream_text, c->peer, errs[0] ? errs : "connection closed",
		vr != X509_V_OK ? " verify=" : "",
		vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
	client_goodbye(c);
	return edge_close(EDGE_CLOSE_UPSTREAM_TLS_FAILED);
}

/* A pending connect (above) outlived the connect timeout. */
struct edge_step edge_upstream_connect_timeout(struct edge_conn *c)
{
	c->w->c.upstream_connect_failed++;
	pr_warn("upstream connect failed sni=%s upstream=%s peer=%s error=\"connect timed out\"",
		c->host, c->sni->upstream_text, c->peer);
	client_goodbye(c);
	return edge_close(EDGE_CLOSE_UPSTREAM_CONNECT_FAILED);
}

struct edge_step edge_upstream_hs_enter(struct edge_conn *c)
{
	const struct edge_sni *o = c->sni;
	struct edge_side *up = &c->side[EDGE_UPSTREAM];

	up->ssl = SSL_new(o->up_ctx);
	if (!up->ssl || !SSL_set_fd(up->ssl, up->fd))
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	SSL_set_app_data(up->ssl, c);
	if (!c->w->d->ktls)
		SSL_set_read_ahead(up->ssl, 1); /* as for the client (handshake.c) */
	if (o->up_name) {
		SSL_set_tlsext_host_name(up->ssl, o->up_name);
		SSL_set1_host(up->ssl, o->up_name);
	} else if (o->up_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(up->ssl), o->up_ip);
	}
	if (c->alpn[0] && o->protocol == EDGE_PROTOCOL_TCP) {
		/* exactly the client's protocol: the bytes that follow are its */
		unsigned char wire[EDGE_ALPN_TOKEN_MAX + 1];
		size_t n = strlen(c->alpn);

		wire[0] = (unsigned char)n;
		memcpy(wire + 1, c->alpn, n);
		if (SSL_set_alpn_protos(up->ssl, wire, (unsigned int)n + 1))
			return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	}
	SSL_set_connect_state(up->ssl);
	edge_conn_deadline(c, edge_now_ms() + c->w->d->cfg.upstream_connect_timeout_ms);
	return up_handshake_step(c);
}

struct edge_step edge_upstream_hs_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	if (op != EDGE_OP_POLL_IN_UP && op != EDGE_OP_POLL_OUT_UP)
		return edge_stay();
	return up_handshake_step(c);
}

struct edge_step edge_upstream_hs_timeout(struct edge_conn *c)
{
	c->w->c.upstream_tls_failed++;
	pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"handshake timed out\"",
		c->host, c->sni->upstream_text, c->peer);
	return edge_close(EDGE_CLOSE_UPSTREAM_TLS_TIMEOUT);
}
