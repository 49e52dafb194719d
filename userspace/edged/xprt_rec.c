/*
 * A client side on our own TLS 1.3 record layer (tlsrec.c), once the handshake
 * is done on the userspace path: OpenSSL's SSL object is freed, and the side
 * is the socket, two AEAD contexts and, only while bytes are in them, a buffer
 * of records read and the batch of records to send (taken from the worker's
 * free lists, so an idle connection holds neither). What a peer may send after
 * the handshake is answered as OpenSSL would: application data, close_notify,
 * KeyUpdate (followed, and answered when the peer asks); anything else ends the
 * session with the alert RFC 8446 names.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "log.h"
#include "snapshot.h"
#include "worker.h"

#define TLS_MT_KEY_UPDATE 24

struct edge_rec {
	struct edge_tlsrec t;
	struct edge_buf in;      /* records read: [off, len) not yet opened */
	uint32_t pt_off, pt_len; /* an opened record's plaintext not yet returned, inside in */
	unsigned char hs[4 + 1]; /* a post-handshake message in pieces (KeyUpdate is 5 bytes) */
	uint8_t hs_len;
	bool ku_owed;  /* the peer asked for our KeyUpdate: sent before our next record */
	bool closed_w; /* close_notify or a fatal alert is sealed: nothing more goes out */
	bool shut;     /* shutw: close_notify sealed */
	bool ended;    /* recv: end (0) or FAIL met after data, returned at the next call */
	int end;
};

/* Room for n more bytes in the batch: 1, 0 (full and the socket takes no more), -1 (failed). */
static int out_room(struct edge_conn *c, struct edge_side *s, size_t n)
{
	struct edge_buf *o = &s->out;
	int r;

	if (!edge_buf_take(&c->w->out_bufs, o)) {
		errno = ENOMEM;
		return -1;
	}
	if (EDGE_OUT_BUF - o->len >= n)
		return 1;
	r = edge_side_out_send(s);
	if (r < 0)
		return -1;
	if (o->off) { /* part of it left: what is sent makes room */
		memmove(o->p, o->p + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	return EDGE_OUT_BUF - o->len >= n;
}

/* One record into the batch (room checked). */
static int seal(struct edge_side *s, uint8_t type, const void *in, size_t len)
{
	int n = edge_tlsrec_seal(&s->rec->t, type, in, len, (unsigned char *)s->out.p + s->out.len);

	if (n < 0)
		return n;
	s->out.len += (uint32_t)n;
	return 0;
}

/* Our KeyUpdate(update_not_requested) out, then our new keys: 1 done (or none owed), 0 no
 * room yet, -1 failed. */
static int pay_key_update(struct edge_conn *c, struct edge_side *s)
{
	static const unsigned char ku[5] = { TLS_MT_KEY_UPDATE, 0, 0, 1, 0 };
	struct edge_rec *r = s->rec;
	int room;

	if (!r->ku_owed)
		return 1;
	room = out_room(c, s, sizeof(ku) + EDGE_TLSREC_OVERHEAD);
	if (room <= 0)
		return room;
	if (seal(s, EDGE_TLS_CT_HANDSHAKE, ku, sizeof(ku)) || edge_tlsrec_update(&r->t, true))
		return -1;
	r->ku_owed = false;
	return 1;
}

/* A fatal alert, best effort (what fits goes out now), and the session ends: FAIL. */
static int fatal(struct edge_conn *c, struct edge_side *s, uint8_t desc, enum edge_xprt_fail f,
		 const char *what)
{
	struct edge_rec *r = s->rec;
	const unsigned char alert[2] = { 2, desc };

	pr_info("client tls peer=%s sni=%s: %s: sending alert %u, closing", c->peer, c->host, what,
		desc);
	if (!r->closed_w && out_room(c, s, sizeof(alert) + EDGE_TLSREC_OVERHEAD) > 0 &&
	    !seal(s, EDGE_TLS_CT_ALERT, alert, sizeof(alert)))
		edge_side_out_send(s);
	r->closed_w = true;
	return edge_side_failed(s, f);
}

/* A handshake record's plaintext: only a KeyUpdate may come from a client now. 1 go on. */
static int handshake(struct edge_conn *c, struct edge_side *s, const unsigned char *p, size_t n)
{
	struct edge_rec *r = s->rec;

	while (n) {
		size_t take = sizeof(r->hs) - r->hs_len;

		if (take > n)
			take = n;
		memcpy(r->hs + r->hs_len, p, take);
		r->hs_len += (uint8_t)take;
		p += take;
		n -= take;
		if (r->hs_len >= 1 && r->hs[0] != TLS_MT_KEY_UPDATE) {
			/* A ClientHello is a renegotiation, which TLS 1.3 does not have. */
			return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE,
				     r->hs[0] == 1 ? EDGE_XF_RENEG : EDGE_XF_TLS,
				     "a post-handshake message other than KeyUpdate");
		}
		if (r->hs_len >= 4 && (r->hs[1] || r->hs[2] || r->hs[3] != 1))
			return fatal(c, s, EDGE_TLS_AD_DECODE_ERROR, EDGE_XF_TLS,
				     "a KeyUpdate of the wrong length");
		if (r->hs_len < sizeof(r->hs))
			continue;
		if (r->hs[4] > 1)
			return fatal(c, s, EDGE_TLS_AD_ILLEGAL_PARAMETER, EDGE_XF_TLS,
				     "a KeyUpdate with an undefined request_update");
		if (n) /* the rest of the record is under the old keys */
			return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
				     "data after a KeyUpdate in its record");
		if (edge_tlsrec_update(&r->t, false))
			return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_ERROR,
				     "the KeyUpdate's keys could not be derived");
		if (r->hs[4] == 1 && !r->closed_w)
			r->ku_owed = true; /* sent before our next record, or at the next flush */
		r->hs_len = 0;
		c->w->c.control_records++;
	}
	return 1;
}

/* The next whole record in the buffer opened: >0 plaintext bytes at *pt, 0 the end
 * (close_notify), AGAIN (no whole record buffered), FAIL; with *handled, 1 (a control record
 * handled, or empty data) or FAIL. */
static ssize_t next_record(struct edge_conn *c, struct edge_side *s, unsigned char **pt,
			   bool *handled)
{
	struct edge_rec *r = s->rec;
	struct edge_buf *in = &r->in;
	unsigned char *rec = (unsigned char *)in->p + in->off;
	size_t avail = in->len - in->off, body;
	uint8_t type = 0;
	int n;

	*handled = false;
	if (avail < EDGE_TLSREC_HDR)
		return EDGE_IO_AGAIN;
	body = (size_t)rec[3] << 8 | rec[4];
	if (rec[0] != EDGE_TLS_CT_APPDATA)
		return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
			     "an unprotected record after the handshake");
	if (body > EDGE_TLSREC_MAX_CIPHER)
		return fatal(c, s, EDGE_TLS_AD_RECORD_OVERFLOW, EDGE_XF_TLS,
			     "a record over 2^14 + 256 bytes");
	if (avail < EDGE_TLSREC_HDR + body)
		return EDGE_IO_AGAIN;
	in->off += (uint32_t)(EDGE_TLSREC_HDR + body);
	n = edge_tlsrec_open(&r->t, rec, body, rec + EDGE_TLSREC_HDR, &type);
	if (n == -EBADMSG)
		return fatal(c, s, EDGE_TLS_AD_BAD_RECORD_MAC, EDGE_XF_BAD_RECORD,
			     "a corrupted record (bad MAC)");
	if (n == -EMSGSIZE)
		return fatal(c, s, EDGE_TLS_AD_RECORD_OVERFLOW, EDGE_XF_TLS,
			     "a record over 2^14 bytes of plaintext");
	if (n < 0)
		return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
			     "a record with no content type");
	*pt = rec + EDGE_TLSREC_HDR;
	if (r->hs_len && type != EDGE_TLS_CT_HANDSHAKE)
		return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
			     "a handshake message interleaved with another record");
	switch (type) {
	case EDGE_TLS_CT_APPDATA:
		*handled = n == 0; /* zero-length application data is allowed: nothing to return */
		return n ? n : 1;
	case EDGE_TLS_CT_ALERT:
		c->w->c.control_records++;
		if (n == 2 && (*pt)[1] == EDGE_TLS_AD_CLOSE_NOTIFY)
			return 0;
		if (n != 2)
			return fatal(c, s, EDGE_TLS_AD_DECODE_ERROR, EDGE_XF_TLS,
				     "an alert record of the wrong length");
		pr_info("client tls peer=%s sni=%s: client alert level=%u desc=%u: closing",
			c->peer, c->host, (*pt)[0], (*pt)[1]);
		r->closed_w = true; /* after a fatal alert nothing more is sent */
		return edge_side_failed(s, EDGE_XF_ALERT);
	case EDGE_TLS_CT_HANDSHAKE:
		if (!n)
			return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
				     "an empty handshake record");
		*handled = true;
		return handshake(c, s, *pt, (size_t)n);
	default:
		return fatal(c, s, EDGE_TLS_AD_UNEXPECTED_MESSAGE, EDGE_XF_TLS,
			     "a record of an unknown content type");
	}
}

/* More records from the socket into the buffer: 1 read some, 0 EOF, AGAIN, FAIL. */
static int fill(struct edge_conn *c, struct edge_side *s)
{
	struct edge_buf *in = &s->rec->in;

	if (!edge_buf_take(&c->w->rec_bufs, in))
		return edge_side_failed(s, EDGE_XF_NOMEM);
	if (in->off == in->len) {
		in->off = in->len = 0;
	} else if (in->off && EDGE_REC_BUF - in->len < EDGE_TLSREC_HDR + EDGE_TLSREC_MAX_CIPHER) {
		memmove(in->p, in->p + in->off, in->len - in->off); /* a whole record must fit */
		in->len -= in->off;
		in->off = 0;
	}
	if (s->drained) {
		if (in->off == in->len)
			edge_buf_give(&c->w->rec_bufs, in);
		s->want = POLLIN;
		return EDGE_IO_AGAIN;
	}
	for (;;) {
		size_t room = EDGE_REC_BUF - in->len;
		ssize_t n = recv(s->fd, in->p + in->len, room, MSG_DONTWAIT);

		if (n > 0) {
			in->len += (uint32_t)n;
			s->drained = (size_t)n < room;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (in->off == in->len)
				edge_buf_give(&c->w->rec_bufs, in); /* idle: no buffer held */
			s->want = POLLIN;
			return EDGE_IO_AGAIN;
		}
		pr_debug("client read peer=%s sni=%s: %s", c->peer, c->host, strerror(errno));
		return edge_side_failed(s, errno == ECONNRESET || errno == EPIPE ? EDGE_XF_RESET
										 : EDGE_XF_ERROR);
	}
}

/* Plaintext of the records buffered (and, when none is, of what one read brings) into buf:
 * as many whole records as fit, so a large upload moves in few passes. An end or a failure
 * met after some data is returned at the next call, the data first. */
static ssize_t rec_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	struct edge_rec *r = s->rec;
	size_t got = 0;

	if (r->ended) {
		r->ended = false;
		return r->end;
	}
	for (;;) {
		unsigned char *pt = NULL;
		bool handled;
		ssize_t n;

		if (r->pt_len) {
			size_t k = r->pt_len < len - got ? r->pt_len : len - got;

			memcpy((char *)buf + got, r->in.p + r->pt_off, k);
			r->pt_off += (uint32_t)k;
			r->pt_len -= (uint32_t)k;
			got += k;
			if (len - got < EDGE_TLSREC_MAX_PLAIN)
				return (ssize_t)got;
		}
		n = next_record(c, s, &pt, &handled);
		if (n == EDGE_IO_AGAIN) {
			if (got)
				return (ssize_t)got; /* the rest waits for the next call */
			n = fill(c, s);
			if (n == 1)
				continue;
			return n; /* 0: FIN, with or without close_notify, as OpenSSL's path */
		}
		if (handled && n > 0) { /* a control record handled, or empty data */
			if (r->ku_owed && pay_key_update(c, s) < 0) {
				n = edge_side_failed(s, EDGE_XF_ERROR);
			} else {
				continue;
			}
		}
		if (n <= 0) { /* close_notify or a failure */
			if (!got)
				return n;
			r->ended = true;
			r->end = (int)n;
			return (ssize_t)got;
		}
		r->pt_off = (uint32_t)(pt - (unsigned char *)r->in.p);
		r->pt_len = (uint32_t)n;
	}
}

static ssize_t rec_send(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len)
{
	struct edge_rec *r = s->rec;
	const char *p = buf;
	size_t taken = 0;

	if (r->closed_w)
		return edge_side_failed(s, EDGE_XF_ERROR);
	while (taken < len) {
		size_t k = len - taken < EDGE_TLSREC_MAX_PLAIN ? len - taken
							       : EDGE_TLSREC_MAX_PLAIN;
		int room = pay_key_update(c, s);

		if (room > 0)
			room = out_room(c, s, k + EDGE_TLSREC_OVERHEAD);
		if (room < 0)
			return edge_side_failed(s, errno == ECONNRESET || errno == EPIPE
							   ? EDGE_XF_RESET
							   : EDGE_XF_ERROR);
		if (!room) {
			if (taken)
				break;
			s->want = POLLOUT;
			return EDGE_IO_AGAIN;
		}
		if (seal(s, EDGE_TLS_CT_APPDATA, p + taken, k))
			return edge_side_failed(s, EDGE_XF_ERROR);
		taken += k;
	}
	return (ssize_t)taken;
}

static int rec_flush(struct edge_conn *c, struct edge_side *s)
{
	int r = s->rec->ku_owed ? pay_key_update(c, s) : 1;

	if (r < 0)
		return edge_side_failed(s, EDGE_XF_ERROR);
	if (r == 0) {
		s->want = POLLOUT;
		return EDGE_IO_AGAIN;
	}
	return edge_side_out_flush(c, s);
}

static int rec_shutw(struct edge_conn *c, struct edge_side *s)
{
	static const unsigned char close_notify[2] = { 1, EDGE_TLS_AD_CLOSE_NOTIFY };
	struct edge_rec *r = s->rec;
	int room;

	if (!r->shut && !r->closed_w) {
		room = pay_key_update(c, s);
		if (room > 0)
			room = out_room(c, s, sizeof(close_notify) + EDGE_TLSREC_OVERHEAD);
		if (room == 0) {
			s->want = POLLOUT;
			return EDGE_IO_AGAIN;
		}
		if (room < 0 || seal(s, EDGE_TLS_CT_ALERT, close_notify, sizeof(close_notify))) {
			r->closed_w = true;
			return edge_side_failed(s, EDGE_XF_ERROR);
		}
		r->shut = r->closed_w = true;
	}
	room = edge_side_out_flush(c, s);
	if (room)
		return room;
	shutdown(s->fd, SHUT_WR);
	return 0;
}

const struct edge_xprt_ops edge_xprt_rec = {
	.name = "tls13",
	.kernel = false,
	.recv = rec_recv,
	.send = rec_send,
	.flush = rec_flush,
	.shutw = rec_shutw,
};

int edge_xprt_rec_takeover(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	SSL *ssl = cl->ssl;
	const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
	uint16_t suite = ci ? (uint16_t)SSL_CIPHER_get_protocol_id(ci) : 0;
	struct edge_rec *r;
	int rc = 0;

	if (cl->ops != &edge_xprt_tls || SSL_version(ssl) != TLS1_3_VERSION ||
	    !edge_tlsrec_suite_ok(suite) || !cl->rx_secret_len ||
	    cl->rx_secret_len != cl->tx_secret_len || cl->tx_seq == 255 /* counted no further */ ||
	    /* what OpenSSL read past the handshake stays OpenSSL's (read-ahead is off for
	     * TLS 1.3: only a client that sent data before our Finished gets here) */
	    SSL_pending(ssl) || SSL_has_pending(ssl) || BIO_get_ktls_send(SSL_get_wbio(ssl)) ||
	    BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		goto out;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	if (edge_tlsrec_init(&r->t, suite, cl->rx_secret, cl->tx_secret, cl->rx_secret_len, 0,
			     cl->tx_seq)) {
		free(r);
		goto out;
	}
	c->leaf = SSL_get1_peer_certificate(ssl); /* for the rechecks at each reload */
	SSL_free(ssl);
	cl->ssl = NULL;
	cl->rec = r;
	cl->ops = &edge_xprt_rec;
	c->w->c.own_records++;
	rc = 1;
out:
	OPENSSL_cleanse(cl->rx_secret, sizeof(cl->rx_secret));
	OPENSSL_cleanse(cl->tx_secret, sizeof(cl->tx_secret));
	cl->rx_secret_len = cl->tx_secret_len = 0;
	return rc;
}

void edge_xprt_rec_free(struct edge_conn *c, struct edge_side *s)
{
	if (!s->rec)
		return;
	edge_buf_give(&c->w->rec_bufs, &s->rec->in);
	edge_tlsrec_free(&s->rec->t);
	free(s->rec);
	s->rec = NULL;
}
