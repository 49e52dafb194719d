/*
 * The response filter on upstream -> client, for --protocol http on the
 * userspace relay: httpresp.c's reader. It lets heads (rewritten for a
 * client that asked to close) and bodies through, joins a small response's
 * head and body in one TLS record, lets the request direction go on when
 * the pipeline has room again, and hands the upstream connection to the
 * worker's keep-alive pool (pool.c) when this client is done with it: after
 * the response to a close request, after the client's end, or before a
 * refusal's answer.
 */
#include <errno.h>

#include "filter.h"
#include "forward.h"
#include "httpresp.h"
#include "snapshot.h"
#include "worker.h"

/*
 * --protocol http with its upstream keep-alive pool: on the userspace relay
 * only (on the kTLS path the response direction is spliced, never read), and
 * never with PROXY v2, whose header names one client per connection.
 */
bool edge_filter_http_pooling(const struct edge_conn *c)
{
	return c->sni->protocol == EDGE_PROTOCOL_HTTP && (!c->w->d->ktls || c->h2_child) &&
	       c->sni->forward != EDGE_FORWARD_PROXY_V2;
}

/* What goes to the client next: a head the reader wrote (with what follows it
 * in the buffer joined to it, so that a small response is one TLS record),
 * or body bytes the reader let through as they are. */
static size_t resp_out(struct edge_conn *c, struct edge_dir *d, const char **p,
		       struct edge_step *st)
{
	struct edge_http_resp *rs = c->rs;
	struct edge_buf *in = &d->in;

	if (rs->out_off >= rs->out_len) { /* no head waits: body bytes let through, if any */
		*p = in->p + in->off;
		return c->u2c_raw;
	}
	for (;;) {
		bool from_out = rs->out_off < rs->out_len, raw = false;
		size_t left = from_out ? rs->out_len - rs->out_off : c->u2c_raw;
		uint32_t take = 0;
		ssize_t k;

		if (!from_out || c->u2c_raw || in->off >= in->len || left >= EDGE_RELAY_BUF) {
			*p = from_out ? rs->out + rs->out_off : in->p + in->off;
			return left;
		}
		k = edge_http_resp_feed(rs, in->p + in->off, in->len - in->off, &raw);
		if (k > 0 && raw) {
			take = EDGE_RELAY_BUF - (uint32_t)left;
			if ((uint32_t)k < take)
				take = (uint32_t)k;
			if (edge_http_resp_out_append(rs, in->p + in->off, take))
				k = -ENOMEM;
			c->u2c_raw = (uint32_t)k - take;
		} else if (k > 0) {
			take = (uint32_t)k;
		}
		if (k < 0) {
			*st = edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
			return 0;
		}
		in->off += take;
		if (k == 0) { /* nothing more joins the head */
			*p = rs->out + rs->out_off;
			return rs->out_len - rs->out_off;
		}
	}
}

static void resp_sent(struct edge_conn *c, struct edge_dir *d, size_t n)
{
	struct edge_http_resp *rs = c->rs;

	if (rs->out_off < rs->out_len) {
		rs->out_off += n;
	} else {
		d->in.off += (uint32_t)n;
		c->u2c_raw -= (uint32_t)n;
	}
}

/* Between responses, with none awaited. */
static bool between(const struct edge_conn *c)
{
	const struct edge_http_resp *rs = c->rs;

	return rs->pending == 0 && rs->state == EDGE_RESP_HEAD && rs->buf_len == 0;
}

/*
 * This client connection gets no more responses (a close request was
 * answered, the client finished, or a refusal is due). Its upstream
 * connection goes to the pool when it is between messages both ways with
 * nothing left over; the client's end follows the usual way (the end of
 * this direction: close_notify, FIN, or the refusal's answer).
 */
static void http_end(struct edge_conn *c, struct edge_dir *d)
{
	const struct edge_http_rw *rw = c->rw;
	struct edge_side *up = &c->side[EDGE_UPSTREAM];

	if (up->ops && edge_filter_http_pooling(c) && edge_http_resp_idle(c->rs) &&
	    (rw->state == EDGE_HTTP_HEAD || (rw->status && rw->refused_between)) &&
	    rw->out_off == rw->out_len && !up->sending && d->in.off == d->in.len && !d->eof) {
		edge_side_unarm(c, up); /* their completions come, as ECANCELED */
		edge_pool_put(c->w, c->sni, up->fd, up->ssl);
		up->fd = -1;
		up->ssl = NULL;
		up->ops = NULL; /* the side carries nothing more */
	}
	d->eof = true;
}

static enum edge_filter_next resp_step(struct edge_conn *c, struct edge_dir *d,
				       struct edge_step *st)
{
	struct edge_http_resp *rs = c->rs;
	struct edge_buf *in = &d->in;

	if (rs->responses != c->u2c_seen) {
		c->u2c_seen = rs->responses;
		if (c->dir[EDGE_C2U].held) { /* the pipeline has room again */
			c->dir[EDGE_C2U].held = false;
			return EDGE_FILTER_KICK;
		}
	}
	if (!d->eof && (rs->close_done ||
			((c->dir[EDGE_C2U].eof || (c->rw->status && c->state == EDGE_CONN_RELAY)) &&
			 between(c)))) {
		http_end(c, d);
		return EDGE_FILTER_AGAIN;
	}
	if (in->off < in->len) {
		bool raw = false;
		ssize_t k = edge_http_resp_feed(rs, in->p + in->off, in->len - in->off, &raw);

		if (k < 0) {
			*st = edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
			return EDGE_FILTER_STEP;
		}
		if (raw)
			c->u2c_raw = (uint32_t)k;
		else
			in->off += (uint32_t)k;
		if (!k && rs->out_off == rs->out_len) {
			/* After the response to a close request: not this client's. */
			rs->reusable = false;
			in->off = in->len;
		}
		return EDGE_FILTER_AGAIN;
	}
	return EDGE_FILTER_READ;
}

static void resp_eof(struct edge_conn *c, struct edge_dir *d)
{
	c->rs->reusable = false;
}

static void resp_quiet(struct edge_conn *c, struct edge_dir *d)
{
	edge_http_resp_trim(c->rs);
}

const struct edge_filter edge_filter_response = {
	.name = "http response",
	.out = resp_out,
	.sent = resp_sent,
	.step = resp_step,
	.eof = resp_eof,
	.quiet = resp_quiet,
};
