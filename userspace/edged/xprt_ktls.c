/*
 * A side after the kTLS hand-off: the kernel encrypts and decrypts, the
 * socket carries plaintext. Reads take one record's worth with its type
 * (recvmsg and TLS_GET_RECORD_TYPE): application data is returned, anything
 * else (alerts, post-handshake messages) is handled here. A direction
 * between two kernel sides splices (splice.c); its splice stops at a record
 * that is not data, and control() reads that one.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>

#include "log.h"
#include "snapshot.h"
#include "worker.h"

#define TLS_RT_ALERT 21
#define TLS_RT_HANDSHAKE 22
#define TLS_RT_APPDATA 23
#define EDGE_RECORD_BUF (16384 + 256)

/* A record that is not application data, or a failed read (n < 0): 1 when
 * it is handled and reading goes on, 0 for close_notify, or FAIL. */
static int record(struct edge_conn *c, struct edge_side *s, uint8_t type, const unsigned char *buf,
		  int n)
{
	const char *side = s->id == EDGE_CLIENT ? "client" : "upstream";

	c->w->c.control_records++;
	if (n < 0) {
		pr_info("ktls peer=%s sni=%s: %s %s", c->peer, c->host, side,
			n == -EBADMSG ? "sent a corrupted record (bad MAC): closing"
				      : strerror(-n));
		return edge_side_failed(s, n == -EBADMSG ? EDGE_XF_BAD_RECORD : EDGE_XF_ERROR);
	}
	if (type == TLS_RT_ALERT && n >= 2 && buf[1] == 0)
		return 0; /* close_notify: the end of this side's bytes */
	if (type == TLS_RT_ALERT) {
		if (s->id == EDGE_UPSTREAM) {
			/* As on the userspace path: an upstream that refuses us says so here. */
			c->w->c.upstream_tls_failed++;
			pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"alert level=%u"
				" desc=%u\" (after the hand-off)",
				c->host, c->sni->upstream_text, c->peer, n > 0 ? buf[0] : 0,
				n > 1 ? buf[1] : 0);
		} else {
			pr_info("ktls peer=%s sni=%s: client alert level=%u desc=%u: closing",
				c->peer, c->host, n > 0 ? buf[0] : 0, n > 1 ? buf[1] : 0);
		}
		return edge_side_failed(s, EDGE_XF_ALERT);
	}
	if (type == TLS_RT_HANDSHAKE && n >= 1 && buf[0] == 4 && s->id == EDGE_UPSTREAM)
		return 1; /* NewSessionTicket from a TLS 1.3 upstream: read, set aside; we never resume */
	if (type == TLS_RT_HANDSHAKE && n >= 1) {
		/* KeyUpdate (24) needs a kernel that rekeys; a ClientHello (1) or a
		 * HelloRequest (0) is a renegotiation, which we refuse: close cleanly. */
		pr_info("ktls peer=%s sni=%s: %s sent post-handshake message type %u (%s):"
			" closing cleanly",
			c->peer, c->host, side, buf[0],
			buf[0] == 24  ? "KeyUpdate"
			: buf[0] <= 1 ? "renegotiation"
				      : "other");
		for (int i = 0; i < 2; i++)
			if (c->side[i].ops == &edge_xprt_ktls)
				edge_ktls_send_alert(c->side[i].fd, 1, 0);
		return edge_side_failed(s, buf[0] == 24 ? EDGE_XF_KEY_UPDATE : EDGE_XF_RENEG);
	}
	pr_info("ktls peer=%s sni=%s: %s sent record type %u: closing", c->peer, c->host, side,
		type);
	return edge_side_failed(s, EDGE_XF_ERROR);
}

static ssize_t ktls_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	for (;;) {
		uint8_t type;
		int n = edge_ktls_read_record(s->fd, &type, buf, len), r;

		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			s->want = POLLIN;
			return EDGE_IO_AGAIN;
		}
		if (n == -EINTR)
			continue;
		if (n == 0)
			return 0; /* FIN without close_notify */
		if (n > 0 && type == TLS_RT_APPDATA)
			return n;
		r = record(c, s, type, buf, n);
		if (r <= 0)
			return r;
	}
}

static int ktls_control(struct edge_conn *c, struct edge_side *s)
{
	unsigned char buf[EDGE_RECORD_BUF];
	uint8_t type;
	int n = edge_ktls_read_record(s->fd, &type, buf, sizeof(buf));

	if (n == -EAGAIN || n == -EWOULDBLOCK) {
		c->w->c.control_records++;
		s->want = POLLIN;
		return EDGE_IO_AGAIN;
	}
	return record(c, s, type, buf, n);
}

static int ktls_shutw(struct edge_conn *c, struct edge_side *s)
{
	edge_ktls_send_alert(s->fd, 1, 0); /* close_notify */
	shutdown(s->fd, SHUT_WR);
	return 0;
}

const struct edge_xprt_ops edge_xprt_ktls = {
	.name = "ktls",
	.kernel = true,
	.recv = ktls_recv,
	.send = edge_side_send_async,
	.shutw = ktls_shutw,
	.control = ktls_control,
};

/* Can this session run in the kernel both ways? TLS 1.2 both ways and
 * TLS 1.3 TX are OpenSSL's doing; TLS 1.3 RX is ours (*install). */
static bool offloadable(const struct edge_side *s, bool *install, const char **why)
{
	SSL *ssl = s->ssl;

	*install = false;
	if (!BIO_get_ktls_send(SSL_get_wbio(ssl))) {
		*why = "no kTLS TX (cipher or version not offloadable)";
		return false;
	}
	if (BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		return true;
	if (SSL_version(ssl) != TLS1_3_VERSION || !edge_ktls_cipher_ok(ssl) || !s->rx_secret_len) {
		*why = "no kTLS RX for this version or cipher";
		return false;
	}
	/* Record sequence 0 holds only if OpenSSL read no application record. */
	if (SSL_pending(ssl) || SSL_has_pending(ssl)) {
		*why = "application data already read in userspace";
		return false;
	}
	*install = true;
	return true;
}

static void forget_secret(struct edge_side *s)
{
	OPENSSL_cleanse(s->rx_secret, sizeof(s->rx_secret));
	s->rx_secret_len = 0;
}

/*
 * At relay start. Our own RX installs happen only when the whole relay goes
 * to the kernel: a key installed behind OpenSSL's back would break its reads,
 * so a session that stays in userspace keeps OpenSSL's view intact (OpenSSL
 * drives any kTLS it enabled itself transparently).
 */
int edge_xprt_ktls_handoff(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT], *up = &c->side[EDGE_UPSTREAM];
	const char *why = "";
	char err[160] = "";
	bool ic = false, iu = false, ok;
	int rc = 0;

	ok = offloadable(cl, &ic, &why) && (!up->ssl || offloadable(up, &iu, &why));
	if (ok && iu &&
	    edge_ktls_install_rx13(up->ssl, up->fd, up->rx_secret, up->rx_secret_len, err,
				   sizeof(err))) {
		ok = false; /* nothing installed yet: the userspace relay is intact */
		why = err;
	}
	if (ok && ic &&
	    edge_ktls_install_rx13(cl->ssl, cl->fd, cl->rx_secret, cl->rx_secret_len, err,
				   sizeof(err))) {
		ok = false;
		why = err;
		if (iu) {
			pr_warn("ktls peer=%s sni=%s: client RX install failed after the upstream's:"
				" %s; closing",
				c->peer, c->host, err);
			rc = -EIO;
		}
	}
	forget_secret(cl);
	forget_secret(up);
	if (!ok) {
		c->w->c.ktls_fallback++;
		pr_debug("ktls peer=%s sni=%s: %s; userspace relay", c->peer, c->host, why);
		return rc;
	}
	cl->ops = &edge_xprt_ktls;
	if (up->ssl)
		up->ops = &edge_xprt_ktls;
	return 1;
}

void edge_xprt_ktls_release(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT], *up = &c->side[EDGE_UPSTREAM];

	if (cl->ops != &edge_xprt_ktls || (up->ssl && up->ops != &edge_xprt_ktls))
		return;
	c->leaf = SSL_get1_peer_certificate(cl->ssl); /* for the rechecks at each reload */
	SSL_free(cl->ssl);
	cl->ssl = NULL;
	if (up->ssl) {
		SSL_free(up->ssl);
		up->ssl = NULL;
	}
	c->w->c.ktls_released++;
}
