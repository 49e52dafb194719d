/*
 * The request filter on client -> upstream: forward.c's rewriter. In headers
 * mode it adds the client's identity and refuses what it cannot frame safely
 * (400, 421, 431); with --protocol http it also takes the hop-by-hop fields,
 * reports each head to the response reader, and holds the client back while
 * EDGE_HTTP_PIPELINE_MAX requests await their responses. Its end is the
 * client's end of sending: with --protocol http, between requests, the
 * upstream connection stays open for the pool.
 */
#include <errno.h>
#include <stdlib.h>

#include "filter.h"
#include "forward.h"
#include "httpresp.h"
#include "log.h"
#include "worker.h"

static size_t req_out(struct edge_conn *c, struct edge_dir *d, const char **p, struct edge_step *st)
{
	struct edge_http_rw *rw = c->rw;

	*p = rw->out + rw->out_off;
	return rw->out_len - rw->out_off;
}

static void req_sent(struct edge_conn *c, struct edge_dir *d, size_t n)
{
	c->rw->out_off += n;
}

/* The rewriter refused a request: count it, say why; the answer goes out
 * once the requests before it are answered (the relay's end of u2c). */
static void refused(struct edge_conn *c)
{
	struct edge_counters *k = &c->w->c;
	const struct edge_http_rw *rw = c->rw;
	size_t len;

	if (rw->status == 421)
		k->http_refused_421++;
	else if (rw->status == 431)
		k->http_refused_431++;
	else
		k->http_refused_400++;
	pr_info("http refused peer=%s sni=%s status=%d reason=%s after=%llu", c->peer, c->host,
		rw->status, rw->reason, (unsigned long long)rw->requests);
	c->reply = edge_http_refusal(rw->status, &len);
	c->reply_len = (uint32_t)len;
	c->reply_close = EDGE_CLOSE_HTTP_REFUSED;
	c->reply_detail = rw->reason;
}

static enum edge_filter_next req_step(struct edge_conn *c, struct edge_dir *d, struct edge_step *st)
{
	struct edge_http_rw *rw = c->rw;
	struct edge_buf *in = &d->in;

	if (in->off < in->len) {
		uint64_t before = rw->requests;
		ssize_t k;

		if (c->rs && rw->state == EDGE_HTTP_HEAD &&
		    c->rs->pending >= EDGE_HTTP_PIPELINE_MAX) {
			d->held = true; /* until a response is out (filter_response.c) */
			return EDGE_FILTER_STOP;
		}
		k = edge_http_rw_feed(rw, in->p + in->off, in->len - in->off);
		if (c->fwd_inject)
			c->w->c.http_requests_rewritten += rw->requests - before;
		if (c->rs && rw->requests != before)
			edge_http_resp_expect(c->rs, rw->last_head, rw->last_close);
		if (k == -ENOMEM) {
			*st = edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
			return EDGE_FILTER_STEP;
		}
		if (k < 0) {
			refused(c);
			in->len = in->off = 0; /* the rest of what the client sent is dropped */
		} else {
			in->off += (uint32_t)k;
		}
		return EDGE_FILTER_AGAIN;
	}
	if (rw->status && !d->eof) {
		edge_buf_give(&c->w->relay_bufs, in);
		/* --protocol http: the answer goes out after the responses before it
		 * (filter_response.c); the upstream stays open. */
		if (c->rs)
			return c->rs->pending == 0 ? EDGE_FILTER_KICK_STOP : EDGE_FILTER_STOP;
		/* Refused, and the good bytes before it are out: end the upstream's
		 * request stream; its end brings the answer. */
		d->eof = true;
	}
	return EDGE_FILTER_READ;
}

/* The client is done sending. Between requests (--protocol http), the
 * connection ends once the responses awaited are out, and the upstream gets
 * no half-close; in the middle of one, it does (and is not reused). */
static enum edge_filter_next req_end(struct edge_conn *c, struct edge_dir *d, struct edge_step *st)
{
	const struct edge_http_rw *rw = c->rw;
	const struct edge_dir *u2c = &c->dir[EDGE_U2C];

	if (!c->rs)
		return EDGE_FILTER_READ; /* the relay's end: a half-close upstream */
	if (c->side[EDGE_UPSTREAM].ops && !u2c->eof &&
	    (rw->state != EDGE_HTTP_HEAD || rw->out_off != rw->out_len)) {
		c->rs->reusable = false;
		return EDGE_FILTER_READ;
	}
	d->done = true;
	if (!u2c->eof && c->rs->pending == 0)
		return EDGE_FILTER_KICK_STOP; /* ends it: nothing more is coming */
	return EDGE_FILTER_STOP;
}

static void req_quiet(struct edge_conn *c, struct edge_dir *d)
{
	edge_http_rw_trim(c->rw);
}

const struct edge_filter edge_filter_request = {
	.name = "http request",
	.out = req_out,
	.sent = req_sent,
	.step = req_step,
	.end = req_end,
	.quiet = req_quiet,
};

int edge_filter_request_start(struct edge_conn *c, char *inject, size_t inject_len)
{
	c->fwd_inject = inject;
	c->rw = malloc(sizeof(*c->rw));
	if (!c->rw)
		return -ENOMEM;
	/* c->host is the SNI as sent, or the default SNI object's name without one. */
	edge_http_rw_init(c->rw, c->host, inject, inject_len);
	return 0;
}

int edge_filter_http_start(struct edge_conn *c)
{
	if (!c->rw && edge_filter_request_start(c, NULL, 0))
		return -ENOMEM;
	c->rw->hop = true;
	c->rs = malloc(sizeof(*c->rs));
	if (!c->rs)
		return -ENOMEM;
	edge_http_resp_init(c->rs);
	return 0;
}

void edge_filter_free(struct edge_conn *c)
{
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
