/*
 * --protocol http on the userspace relay: the response direction through
 * httpresp.c's reader, the client connection's end after a close request or
 * the client's own, and its upstream connection handed to the worker's
 * keep-alive pool (pool.c) when it is between messages both ways.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "forward.h"
#include "httpresp.h"
#include "log.h"
#include "pool.h"
#include "relay_int.h"

/*
 * --protocol http with its upstream keep-alive pool: on the userspace relay
 * only (on the kTLS path the response direction is spliced, never read), and
 * never with PROXY v2, whose header names one client per connection.
 */
bool edge_relay_http_pooling(const struct edge_conn *c)
{
	return c->sni->protocol == EDGE_PROTOCOL_HTTP && !c->w->d->ktls &&
	       c->sni->forward != EDGE_FORWARD_PROXY_V2;
}

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
void edge_relay_http_client_done(struct edge_conn *c)
{
	const struct edge_http_rw *rw = c->rw;

	c->c2u.eof = true;
	if (c->ufd >= 0 && !c->u2c.eof &&
	    (rw->state != EDGE_HTTP_HEAD || rw->out_off != rw->out_len || c->c2u.busy)) {
		c->rs->reusable = false;
		edge_relay_upstream_eof(c);
	} else if (!c->u2c.eof && c->rs->pending == 0) {
		edge_relay_u2c_pump(c); /* ends it: nothing more is coming */
		return;
	}
	edge_relay_check_done(c);
}

/* --protocol http: the request reader (the rewriter of headers mode, or one
 * that adds nothing) and the response reader. */
int edge_relay_http_start(struct edge_conn *c)
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

/*
 * upstream -> client for --protocol http: what the response reader lets
 * through (heads, rewritten for a client that asked to close, and bodies
 * as they are). After the response to a close request, after the client's
 * end, or before a refusal's answer, the upstream connection goes back to
 * the pool (http_end).
 */
void edge_relay_u2c_pump_http(struct edge_conn *c)
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
			if (!edge_relay_ssl_wait(c, c->ssl, n))
				edge_relay_tls_error(c, false, "write");
			return;
		}
		if (rs->responses != c->u2c_seen) {
			c->u2c_seen = rs->responses;
			if (c->c2u_held) { /* the pipeline has room again */
				c->c2u_held = false;
				edge_relay_c2u_pump(c);
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
			edge_relay_u2c_end(c);
			return;
		}
		if ((n = edge_relay_up_read(c)) < 0)
			return;
		if (n == 0)
			rs->reusable = false;
	}
}

