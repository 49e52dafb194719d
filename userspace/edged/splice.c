/*
 * The kTLS relay: once both directions of the client's session live in the
 * kernel, bytes move with IORING_OP_SPLICE through one pipe per direction
 * and never enter userspace. Each splice is non-blocking; when a side is not
 * ready, a poll on that side re-arms the direction. A record that is not
 * application data (alert, KeyUpdate, renegotiation) makes the client->pipe
 * splice fail with EINVAL; it is read with recvmsg and handled here.
 *
 * With `--forward headers` the request direction cannot be spliced: it is read
 * as plaintext from the kTLS socket with recvmsg (control records come with
 * their type in a control message), rewritten (forward.c) and sent; the
 * response direction is spliced as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "daemon.h"
#include "forward.h"
#include "log.h"

#define EDGE_SPLICE_CHUNK (64 * 1024)
#define EDGE_RECORD_BUF (16384 + 256)
#define TLS_RT_APPDATA 23
#define TLS_RT_ALERT 21
#define TLS_RT_HANDSHAKE 22

/* Can this session run in the kernel both ways? TLS 1.2 both ways and
 * TLS 1.3 TX are OpenSSL's doing; TLS 1.3 RX is ours (*install). */
static bool side_offloadable(SSL *ssl, uint8_t secret_len, bool *install, const char **why)
{
	*install = false;
	if (!BIO_get_ktls_send(SSL_get_wbio(ssl))) {
		*why = "no kTLS TX (cipher or version not offloadable)";
		return false;
	}
	if (BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		return true;
	if (SSL_version(ssl) != TLS1_3_VERSION || !edge_ktls_cipher_ok(ssl) || !secret_len) {
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

/*
 * At relay start. Our own RX installs happen only when the whole relay goes
 * to the kernel: a key installed behind OpenSSL's back would break its reads,
 * so a session that stays in userspace keeps OpenSSL's view intact (OpenSSL
 * drives any kTLS it enabled itself transparently).
 */
int edge_splice_handoff(struct edge_conn *c)
{
	const char *why = "";
	char err[160] = "";
	bool ic = false, iu = false, ok;
	int rc = 0;

	ok = side_offloadable(c->ssl, c->rx_secret_len, &ic, &why) &&
	     (!c->ussl || side_offloadable(c->ussl, c->up_rx_secret_len, &iu, &why));
	if (ok && iu && edge_ktls_install_rx13(c->ussl, c->ufd, c->up_rx_secret,
					       c->up_rx_secret_len, err, sizeof(err))) {
		ok = false; /* nothing installed yet: the userspace relay is intact */
		why = err;
	}
	if (ok && ic && edge_ktls_install_rx13(c->ssl, c->cfd, c->rx_secret, c->rx_secret_len,
					       err, sizeof(err))) {
		ok = false;
		why = err;
		if (iu) {
			pr_warn("ktls peer=%s sni=%s: client RX install failed after the upstream's:"
				" %s; closing", c->peer, c->host, err);
			rc = -EIO;
		}
	}
	OPENSSL_cleanse(c->rx_secret, sizeof(c->rx_secret));
	OPENSSL_cleanse(c->up_rx_secret, sizeof(c->up_rx_secret));
	c->rx_secret_len = c->up_rx_secret_len = 0;
	c->ktls = ok;
	if (!ok) {
		c->w->c.ktls_fallback++;
		pr_debug("ktls peer=%s sni=%s: %s; userspace relay", c->peer, c->host, why);
	}
	return rc ? rc : ok;
}

void edge_splice_free(struct edge_conn *c)
{
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (c->pipes[i][j] >= 0)
				close(c->pipes[i][j]);
}

static void submit_splice(struct edge_conn *c, enum edge_op op, int in, int out, unsigned int len)
{
	struct io_uring_sqe *sqe = edge_worker_sqe(c->w);

	io_uring_prep_splice(sqe, in, -1, out, -1, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	io_uring_sqe_set_data64(sqe, edge_ud(c, op));
	c->inflight++;
}

/* The client is done sending: tell the upstream (close_notify first when
 * the upstream session is TLS), then half-close. */
static void upstream_eof(struct edge_conn *c)
{
	c->c2u.eof = true;
	if (c->ussl)
		edge_ktls_send_alert(c->ufd, 1, 0);
	shutdown(c->ufd, SHUT_WR);
}

static void check_done(struct edge_conn *c)
{
	if (c->c2u.eof && c->c2u.len == 0 && !c->c2u.busy && c->u2c.notified)
		edge_conn_close(c, "done");
}

static void c2u_rewrite(struct edge_conn *c);
static void control_handle(struct edge_conn *c, int fd, uint8_t type, const unsigned char *buf,
			   int n);

/* client -> upstream */
static void c2u_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;

	if (c->rw) {
		c2u_rewrite(c);
		return;
	}
	if (c->closing || d->busy || d->wait)
		return;
	if (d->len) {
		submit_splice(c, EDGE_OP_SPL_P2U, c->pipes[0][0], c->ufd, d->len);
		d->busy = true;
	} else if (!d->eof) {
		submit_splice(c, EDGE_OP_SPL_C2P, c->cfd, c->pipes[0][1], EDGE_SPLICE_CHUNK);
		d->busy = true;
	}
}

/* upstream -> client */
static void u2c_pump(struct edge_conn *c)
{
	struct edge_dir *d = &c->u2c;

	if (c->closing || d->busy || d->wait)
		return;
	if (d->len) {
		submit_splice(c, EDGE_OP_SPL_P2C, c->pipes[1][0], c->cfd, d->len);
		d->busy = true;
	} else if (!d->eof) {
		submit_splice(c, EDGE_OP_SPL_U2P, c->ufd, c->pipes[1][1], EDGE_SPLICE_CHUNK);
		d->busy = true;
	} else if (!d->notified && c->rw && c->rw->status) {
		/* Every response before the refused request is out: answer it. */
		size_t len;
		const char *text = edge_http_refusal(c->rw->status, &len);

		d->notified = true;
		if (send(c->cfd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
			pr_debug("ktls peer=%s sni=%s: refusal not sent whole", c->peer, c->host);
		edge_ktls_send_alert(c->cfd, 1, 0);
		shutdown(c->cfd, SHUT_WR);
		edge_conn_close(c, c->rw->reason);
	} else if (!d->notified) {
		/* Upstream EOF, all relayed: close_notify, then a half-close. */
		edge_ktls_send_alert(c->cfd, 1, 0);
		shutdown(c->cfd, SHUT_WR);
		d->notified = true;
		check_done(c);
	}
}

/*
 * client -> upstream with the request rewriter: recvmsg a record's worth of
 * plaintext, feed it, send what comes out, one step at a time; a direction
 * that must wait arms a poll and sets wait (cleared by edge_splice_on_poll).
 */
static void c2u_rewrite(struct edge_conn *c)
{
	struct edge_dir *d = &c->c2u;
	struct edge_http_rw *rw = c->rw;

	while (!c->closing && !d->wait) {
		size_t left = rw->out_len - rw->out_off;
		uint8_t type;
		ssize_t k;
		int n;

		if (left) {
			k = send(c->ufd, rw->out + rw->out_off, left, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k < 0 && errno == EAGAIN) {
				d->wait = true;
				edge_conn_arm_upoll(c, POLLOUT);
				return;
			}
			if (k <= 0) {
				pr_debug("upstream send peer=%s sni=%s: %s", c->peer, c->host,
					 k ? strerror(errno) : "closed");
				edge_conn_close(c, "upstream_error");
				return;
			}
			rw->out_off += (size_t)k;
			continue;
		}
		if (d->off < d->len) {
			uint64_t before = rw->requests;

			k = edge_http_rw_feed(rw, d->buf + d->off, d->len - d->off);
			c->w->c.http_requests_rewritten += rw->requests - before;
			if (k == -ENOMEM) {
				edge_conn_close(c, "out_of_memory");
				return;
			}
			if (k < 0) {
				edge_relay_refused(c);
				d->len = d->off = 0;
			} else {
				d->off += (uint32_t)k;
			}
			continue;
		}
		d->len = d->off = 0;
		if (rw->status) {
			/* The good bytes are out: end the upstream's request stream; its EOF
			 * brings the answer (u2c_pump). */
			if (!d->eof)
				upstream_eof(c);
			return;
		}
		if (d->eof)
			return;
		n = edge_ktls_read_record(c->cfd, &type, (unsigned char *)d->buf, EDGE_RECORD_BUF);
		if (n == -EAGAIN) {
			d->wait = true;
			edge_conn_arm_poll(c, POLLIN);
			return;
		}
		if (n == 0) { /* FIN without close_notify */
			upstream_eof(c);
			check_done(c);
			return;
		}
		if (n < 0 || type != TLS_RT_APPDATA) {
			control_handle(c, c->cfd, type, (const unsigned char *)d->buf, n);
			if (n < 0 || c->closing || d->eof)
				return;
			continue;
		}
		d->len = (uint32_t)n;
		c->bytes_in += (uint64_t)n;
	}
}

void edge_splice_start(struct edge_conn *c)
{
	if (c->rw && !c->c2u.buf) {
		c->c2u.buf = malloc(EDGE_RECORD_BUF);
		if (!c->c2u.buf) {
			edge_conn_close(c, "out_of_memory");
			return;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(c->pipes[i], O_NONBLOCK | O_CLOEXEC)) {
			pr_warn("ktls peer=%s: pipe: %s", c->peer, strerror(errno));
			edge_conn_close(c, "out_of_memory");
			return;
		}
	}
	c->w->c.path_ktls++;
	c2u_pump(c);
	u2c_pump(c);
}

/* A record that is not application data arrived on a kTLS socket: from the
 * client (fd = cfd) or from a TLS upstream (fd = ufd). */
static void control_record(struct edge_conn *c, int fd)
{
	unsigned char buf[EDGE_RECORD_BUF];
	uint8_t type;
	int n = edge_ktls_read_record(fd, &type, buf, sizeof(buf));

	control_handle(c, fd, type, buf, n);
}

/* A record read with its type (n < 0: the read failed). */
static void control_handle(struct edge_conn *c, int fd, uint8_t type, const unsigned char *buf,
			   int n)
{
	bool client = fd == c->cfd;
	const char *side = client ? "client" : "upstream";

	c->w->c.control_records++;
	if (n == -EAGAIN) {
		if (client) {
			c->c2u.wait = true;
			edge_conn_arm_poll(c, POLLIN);
		} else {
			c->u2c.wait = true;
			edge_conn_arm_upoll(c, POLLIN);
		}
		return;
	}
	if (n < 0) {
		pr_info("ktls peer=%s sni=%s: %s %s", c->peer, c->host, side,
			n == -EBADMSG ? "sent a corrupted record (bad MAC): closing" : strerror(-n));
		edge_conn_close(c, n == -EBADMSG ? "bad_record" : client ? "client_error"
									 : "upstream_error");
		return;
	}
	if (type == TLS_RT_ALERT && n >= 2 && buf[1] == 0) {
		/* close_notify: a half-close towards the other side. */
		if (client) {
			upstream_eof(c);
			check_done(c);
		} else {
			/* Relay what is left, then close_notify and a half-close to the client. */
			c->u2c.eof = true;
			u2c_pump(c);
		}
		return;
	}
	if (type == TLS_RT_ALERT) {
		if (!client) {
			/* As on the userspace path: an upstream that refuses us says so here. */
			c->w->c.upstream_tls_failed++;
			pr_warn("upstream tls failed sni=%s upstream=%s peer=%s error=\"alert level=%u"
				" desc=%u\" (after the hand-off)", c->host, c->sni->upstream_text, c->peer,
				n > 0 ? buf[0] : 0, n > 1 ? buf[1] : 0);
		} else {
			pr_info("ktls peer=%s sni=%s: client alert level=%u desc=%u: closing", c->peer,
				c->host, n > 0 ? buf[0] : 0, n > 1 ? buf[1] : 0);
		}
		edge_conn_close(c, client ? "client_alert" : "upstream_alert");
		return;
	}
	if (type == TLS_RT_HANDSHAKE && n >= 1 && buf[0] == 4 && !client) {
		/* NewSessionTicket from a TLS 1.3 upstream: read (so the kernel's
		 * record sequence moves on) and set aside; we never resume. */
		c2u_pump(c);
		u2c_pump(c);
		return;
	}
	if (type == TLS_RT_HANDSHAKE && n >= 1) {
		/* KeyUpdate (24) needs a kernel that rekeys; a ClientHello (1) or a
		 * HelloRequest (0) is a renegotiation, which we refuse: close cleanly. */
		pr_info("ktls peer=%s sni=%s: %s sent post-handshake message type %u (%s):"
			" closing cleanly", c->peer, c->host, side, buf[0],
			buf[0] == 24 ? "KeyUpdate" : buf[0] <= 1 ? "renegotiation" : "other");
		edge_ktls_send_alert(c->cfd, 1, 0);
		if (c->ussl)
			edge_ktls_send_alert(c->ufd, 1, 0);
		edge_conn_close(c, buf[0] == 24 ? "key_update" : "renegotiation");
		return;
	}
	pr_info("ktls peer=%s sni=%s: %s sent record type %u: closing", c->peer, c->host, side,
		type);
	edge_conn_close(c, client ? "client_error" : "upstream_error");
}

void edge_splice_on_op(struct edge_conn *c, enum edge_op op, int res)
{
	struct edge_dir *d = (op == EDGE_OP_SPL_C2P || op == EDGE_OP_SPL_P2U) ? &c->c2u : &c->u2c;

	d->busy = false;
	c->deadline_ms = edge_now_ms() + c->w->d->cfg.idle_timeout_ms;
	if (res == -EAGAIN) {
		d->wait = true;
		switch (op) {
		case EDGE_OP_SPL_C2P: edge_conn_arm_poll(c, POLLIN); break;
		case EDGE_OP_SPL_P2U: edge_conn_arm_upoll(c, POLLOUT); break;
		case EDGE_OP_SPL_U2P: edge_conn_arm_upoll(c, POLLIN); break;
		default: edge_conn_arm_poll(c, POLLOUT); break;
		}
		return;
	}
	if (res < 0) {
		if (op == EDGE_OP_SPL_C2P && (res == -EINVAL || res == -EBADMSG)) {
			control_record(c, c->cfd);
		} else if (op == EDGE_OP_SPL_U2P && c->ussl && (res == -EINVAL || res == -EBADMSG)) {
			control_record(c, c->ufd);
		} else {
			bool client = op == EDGE_OP_SPL_C2P || op == EDGE_OP_SPL_P2C;

			pr_debug("splice op=%d peer=%s sni=%s: %s", op, c->peer, c->host,
				 strerror(-res));
			edge_conn_close(c, res == -ECONNRESET || res == -EPIPE
					   ? (client ? "client_reset" : "upstream_reset")
					   : (client ? "client_error" : "upstream_error"));
		}
		return;
	}
	switch (op) {
	case EDGE_OP_SPL_C2P:
		if (res == 0) { /* FIN without close_notify */
			upstream_eof(c);
			check_done(c);
		}
		d->len += (uint32_t)res;
		c->bytes_in += (uint64_t)res;
		break;
	case EDGE_OP_SPL_P2U:
		d->len -= (uint32_t)res;
		if (!d->len && d->eof)
			check_done(c);
		break;
	case EDGE_OP_SPL_U2P:
		if (res == 0)
			d->eof = true;
		d->len += (uint32_t)res;
		break;
	default: /* EDGE_OP_SPL_P2C */
		d->len -= (uint32_t)res;
		c->bytes_out += (uint64_t)res;
		break;
	}
	c2u_pump(c);
	u2c_pump(c);
}

/* A poll armed by a direction fired: that direction may go on. */
void edge_splice_on_poll(struct edge_conn *c, enum edge_op op)
{
	if (op == EDGE_OP_POLL_IN || op == EDGE_OP_UP_POLL_OUT)
		c->c2u.wait = false;
	else
		c->u2c.wait = false;
	c2u_pump(c);
	u2c_pump(c);
}
