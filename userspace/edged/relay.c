/*
 * The relay between a verified client and its upstream: see relay.h. Each
 * pumped direction holds at most one buffer, and only while bytes are in it,
 * so a stalled reader stops the other side from reading (back-pressure) and
 * an idle connection holds no buffer at all.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "forward.h"
#include "httpresp.h"
#include "identity.h"
#include "log.h"
#include "relay.h"
#include "snapshot.h"
#include "splice.h"
#include "upstream.h"
#include "worker.h"

static bool park_candidate(const struct edge_conn *c);

/* I/O: the idle timeout starts again, and so does the wait before a park. */
static void touch(struct edge_conn *c)
{
	c->active_ms = edge_now_ms();
	edge_conn_deadline(c, c->active_ms + c->w->d->cfg.idle_timeout_ms);
	if (park_candidate(c))
		edge_conn_file_at(c, c->active_ms + EDGE_PARK_MS);
}

static struct edge_step failed(struct edge_side *s)
{
	return edge_close(edge_close_reason_of(s->id, s->fail));
}

static struct edge_step pump(struct edge_conn *c, struct edge_dir *d);

static struct edge_dir *other(struct edge_conn *c, const struct edge_dir *d);

/* ---- parking: --protocol http, a client idle between requests holds no upstream ---- */

/* A relay whose upstream connection may go back to the pool once its client is idle. */
static bool park_candidate(const struct edge_conn *c)
{
	return c->state == EDGE_CONN_RELAY && !c->parked && !c->h2_child && c->rw && c->rs &&
	       c->side[EDGE_UPSTREAM].ops && edge_filter_http_pooling(c);
}

uint64_t edge_relay_park_at(const struct edge_conn *c)
{
	if (!park_candidate(c) || c->park_no == c->active_ms)
		return 0;
	return c->active_ms + EDGE_PARK_MS;
}

/* Between messages both ways, nothing buffered, nothing in flight on the upstream side. */
static bool parkable(const struct edge_conn *c)
{
	const struct edge_side *up = &c->side[EDGE_UPSTREAM], *cl = &c->side[EDGE_CLIENT];
	const struct edge_dir *c2u = &c->dir[EDGE_C2U], *u2c = &c->dir[EDGE_U2C];
	const struct edge_http_rw *rw = c->rw;

	return rw->state == EDGE_HTTP_HEAD && !rw->buf_len && rw->out_off == rw->out_len &&
	       !rw->status && edge_http_resp_idle(c->rs) && !c->u2c_raw && !c->reply &&
	       !up->sending && !up->poll_out && up->fd >= 0 && c2u->in.off == c2u->in.len &&
	       !c2u->eof && !c2u->held && u2c->in.off == u2c->in.len && !u2c->eof &&
	       cl->out.off == cl->out.len && !cl->sending;
}

void edge_relay_park_look(struct edge_conn *c, uint64_t now_ms)
{
	struct edge_side *up = &c->side[EDGE_UPSTREAM];
	const uint8_t up_bits = EDGE_WAIT_BIT(EDGE_UPSTREAM, POLLIN) |
				EDGE_WAIT_BIT(EDGE_UPSTREAM, POLLOUT);

	if (!park_candidate(c) || now_ms < c->active_ms + EDGE_PARK_MS)
		return;
	if (!parkable(c)) {
		c->park_no = c->active_ms; /* looked again after its next I/O */
		return;
	}
	/* its poll's completion still comes, as ECANCELED: a wakeup that finds nothing */
	edge_side_unarm(c, up);
	edge_pool_put(c->w, c->sni, up->fd, up->ssl);
	c->w->c.upstream_parked++;
	up->fd = -1;
	up->ssl = NULL;
	up->ops = NULL;
	up->drained = false;
	up->want = 0;
	c->dir[EDGE_C2U].waits &= (uint8_t)~up_bits;
	c->dir[EDGE_U2C].waits &= (uint8_t)~up_bits;
	edge_buf_give(&c->w->relay_bufs, &c->dir[EDGE_U2C].in);
	c->parked = true;
}

/* The client's next request is here: an upstream connection from the pool, else a connect
 * (CONNECTING, then the relay again, edge_relay_enter). */
static struct edge_step unpark(struct edge_conn *c)
{
	struct edge_side *up = &c->side[EDGE_UPSTREAM];

	c->parked = false;
	if (!edge_upstream_reuse(c))
		return edge_move(EDGE_CONN_CONNECTING);
	up->ops = up->ssl ? &edge_xprt_tls : &edge_xprt_tcp;
	return edge_stay();
}

static struct edge_dir *other(struct edge_conn *c, const struct edge_dir *d)
{
	return &c->dir[d->id == EDGE_C2U ? EDGE_U2C : EDGE_C2U];
}

static struct edge_step check_done(struct edge_conn *c)
{
	if (c->dir[EDGE_C2U].done && c->dir[EDGE_U2C].done)
		return edge_close(EDGE_CLOSE_DONE);
	return edge_stay();
}

/* The source ended and everything it sent is through: pass the end on (a
 * half-close of the destination), or answer a refused request. */
static struct edge_step dir_end(struct edge_conn *c, struct edge_dir *d)
{
	const struct edge_filter *f = d->mode == EDGE_FLOW_PUMP ? d->filter : NULL;
	struct edge_side *dst = &c->side[edge_dir_dst(d)];
	struct edge_step st = edge_stay();

	if (f && f->end) {
		enum edge_filter_next n = f->end(c, d, &st);

		if (n == EDGE_FILTER_STEP)
			return st;
		if (n != EDGE_FILTER_READ) {
			if (n == EDGE_FILTER_KICK || n == EDGE_FILTER_KICK_STOP) {
				st = pump(c, other(c, d));
				if (!edge_stays(st))
					return st;
			}
			return check_done(c);
		}
	}
	if (d->id == EDGE_U2C && c->reply)
		return edge_move(EDGE_CONN_REPLY); /* every response before the refusal is out */
	if (dst->ops) {
		int r = dst->ops->shutw(c, dst);

		if (r == EDGE_IO_AGAIN) {
			edge_dir_wait(c, d, dst, dst->want);
			return edge_stay();
		}
		if (r == EDGE_IO_FAIL)
			return failed(dst);
	}
	d->done = true;
	return check_done(c);
}

static void sent(struct edge_conn *c, struct edge_dir *d, size_t n)
{
	if (d->filter)
		d->filter->sent(c, d, n);
	else
		d->in.off += (uint32_t)n;
	if (edge_dir_dst(d) == EDGE_CLIENT)
		c->bytes_out += n;
}

/* A pumped direction: send what is ready, let the filter take the input,
 * read more; until a side must wait. */
static struct edge_step buf_pump(struct edge_conn *c, struct edge_dir *d)
{
	struct edge_side *src = &c->side[edge_dir_src(d)], *dst = &c->side[edge_dir_dst(d)];
	const struct edge_filter *f = d->filter;
	struct edge_step st = edge_stay();

	while (!dst->sending) {
		const char *p = d->in.p + d->in.off;
		size_t left = d->in.len - d->in.off;
		ssize_t n;
		int r;

		if (f) {
			left = f->out(c, d, &p, &st);
			if (!edge_stays(st))
				return st;
		}
		if (left && !dst->ops && c->parked) { /* a request for a parked relay */
			st = unpark(c);
			if (!edge_stays(st))
				return st;
			st = pump(c, other(c, d)); /* the response direction reads the new one */
			if (!edge_stays(st))
				return st;
			continue;
		}
		if (left && !dst->ops) { /* the upstream went back to the pool: nobody to send to */
			sent(c, d, left);
			continue;
		}
		if (left) {
			n = dst->ops->send(c, dst, p, left);
			if (n > 0) {
				sent(c, d, (size_t)n);
				continue;
			}
			if (n == EDGE_IO_ASYNC)
				return edge_stay(); /* the completion goes on (edge_relay_on_io) */
			if (n == EDGE_IO_AGAIN) {
				edge_dir_wait(c, d, dst, dst->want);
				return edge_stay();
			}
			return failed(dst);
		}
		if (f) {
			switch (f->step(c, d, &st)) {
			case EDGE_FILTER_AGAIN:
				continue;
			case EDGE_FILTER_READ:
				break;
			case EDGE_FILTER_STOP:
				return edge_stay();
			case EDGE_FILTER_KICK:
				st = pump(c, other(c, d));
				if (!edge_stays(st))
					return st;
				continue;
			case EDGE_FILTER_KICK_STOP:
				return pump(c, other(c, d));
			case EDGE_FILTER_STEP:
				return st;
			}
		}
		d->in.len = d->in.off = 0;
		if (d->eof) {
			edge_buf_give(&c->w->relay_bufs, &d->in); /* nothing more comes this way */
			return d->done ? edge_stay() : dir_end(c, d);
		}
		if (!src->ops)
			return edge_stay(); /* parked: the upstream side reads again once unparked */
		if (!edge_buf_take(&c->w->relay_bufs, &d->in))
			return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
		n = src->ops->recv(c, src, d->in.p, EDGE_RELAY_BUF);
		if (n > 0) {
			d->in.len = (uint32_t)n;
			if (src->id == EDGE_CLIENT)
				c->bytes_in += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			d->eof = true;
			if (f && f->eof)
				f->eof(c, d);
			continue;
		}
		if (n != EDGE_IO_AGAIN)
			return failed(src);
		/* Nothing to read: wait without a buffer, once what this pass wrote
		 * is out (else the destination's POLLOUT brings us back). */
		edge_buf_give(&c->w->relay_bufs, &d->in);
		if (f && f->quiet)
			f->quiet(c, d);
		r = dst->ops && dst->ops->flush ? dst->ops->flush(c, dst) : 0; /* parked: none */
		if (r == EDGE_IO_FAIL)
			return failed(dst);
		if (r == EDGE_IO_AGAIN)
			edge_dir_wait(c, d, dst, dst->want);
		else
			edge_dir_wait(c, d, src, src->want);
		return edge_stay();
	}
	return edge_stay();
}

static struct edge_step pump(struct edge_conn *c, struct edge_dir *d)
{
	if (d->mode == EDGE_FLOW_SPLICE)
		return edge_splice_pump(c, d, dir_end);
	return buf_pump(c, d);
}

/* The client's batched records out. */
static struct edge_step flush_client(struct edge_conn *c)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];
	int r;

	if (!s->ops || !s->ops->flush)
		return edge_stay();
	r = s->ops->flush(c, s);
	if (r == EDGE_IO_AGAIN) /* the direction that writes to the client goes on at POLLOUT */
		edge_dir_wait(c, &c->dir[EDGE_U2C], s, POLLOUT);
	else if (r == EDGE_IO_FAIL)
		return failed(s);
	return edge_stay();
}

struct edge_step edge_relay_run(struct edge_conn *c)
{
	struct edge_step st = pump(c, &c->dir[EDGE_C2U]);

	if (!edge_stays(st))
		return st;
	st = pump(c, &c->dir[EDGE_U2C]);
	if (!edge_stays(st))
		return st;
	return flush_client(c);
}

enum edge_flow_mode edge_relay_mode(const struct edge_conn *c, const struct edge_dir *d)
{
	const struct edge_side *src = &c->side[edge_dir_src(d)], *dst = &c->side[edge_dir_dst(d)];

	if (src->ops && dst->ops && src->ops->kernel && dst->ops->kernel && !d->filter)
		return EDGE_FLOW_SPLICE;
	return EDGE_FLOW_PUMP;
}

enum edge_close_reason edge_relay_setup(struct edge_conn *c)
{
	for (int i = 0; i < 2; i++) {
		struct edge_dir *d = &c->dir[i];

		d->id = (enum edge_dir_id)i;
		if (i == EDGE_C2U)
			d->filter = c->rw ? &edge_filter_request : NULL;
		else
			d->filter = c->rs ? &edge_filter_response : NULL;
		d->mode = edge_relay_mode(c, d); /* a splice takes its pipe at its first read */
	}
	return EDGE_CLOSE_NONE;
}

/* Both sessions are up: the filters, the kernel hand-off, the directions. */
struct edge_step edge_relay_enter(struct edge_conn *c)
{
	struct edge_worker *w = c->w;
	struct edge_side *cl = &c->side[EDGE_CLIENT], *up = &c->side[EDGE_UPSTREAM];
	enum edge_close_reason why;
	struct edge_step st;
	int rc = 0;

	touch(c);
	if (c->relay_started) { /* back from CONNECTING: the parked relay's new upstream */
		up->ops = up->ssl ? &edge_xprt_tls : &edge_xprt_tcp;
		return edge_relay_run(c);
	}
	c->relay_started = true;
	/* headers: the request direction goes through the rewriter on either path
	 * (on the kTLS one it reads plaintext from the kernel). */
	if (c->sni->forward == EDGE_FORWARD_HEADERS) {
		char *inject = NULL;
		size_t len = 0;

		if (edge_identity_headers(c, &inject, &len) ||
		    edge_filter_request_start(c, inject, len))
			return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	}
	/* An HTTP/2 stream's child (h2.c) always reads HTTP (the 421 check, the response's
	 * end), pooled or not; its client side stays the stream. */
	if ((edge_filter_http_pooling(c) || c->h2_child) && edge_filter_http_start(c))
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	if (!c->h2_child)
		cl->ops = &edge_xprt_tls;
	up->ops = up->ssl ? &edge_xprt_tls : &edge_xprt_tcp;
	if (w->d->ktls && !c->h2_child)
		rc = edge_xprt_ktls_handoff(c);
	if (rc < 0)
		return edge_close(EDGE_CLOSE_KTLS_INSTALL_FAILED);
	if (rc == 1)
		edge_xprt_ktls_release(c); /* the identity above was taken while the SSL was there */
	else if (!c->h2_child && w->d->cfg.own_records && !w->d->ktls && !edge_xprt_rec_takeover(c))
		SSL_set_read_ahead(cl->ssl, 1); /* OpenSSL keeps it: fewer reads (handshake.c) */
	why = edge_relay_setup(c);
	if (why)
		return edge_close(why);
	if (c->h2_child) {
		/* counted with its parent */
	} else if (cl->ops == &edge_xprt_ktls) {
		w->c.path_ktls++;
	} else {
		w->c.path_userspace++;
		if (cl->ops == &edge_xprt_tls)
			edge_xprt_tls_batch(c, cl);
	}
	st = pump(c, &c->dir[EDGE_U2C]);
	if (!edge_stays(st))
		return st;
	st = pump(c, &c->dir[EDGE_C2U]);
	if (!edge_stays(st))
		return st;
	return flush_client(c);
}

/* An io_uring send of a side completed: its direction goes on. */
static struct edge_step on_sent(struct edge_conn *c, enum edge_side_id side, int res)
{
	struct edge_side *s = &c->side[side];
	struct edge_dir *d = &c->dir[side == EDGE_UPSTREAM ? EDGE_C2U : EDGE_U2C];
	struct edge_step st;

	s->sending = false;
	if (res <= 0) {
		pr_debug("%s send peer=%s sni=%s: %s",
			 side == EDGE_UPSTREAM ? "upstream" : "client", c->peer, c->host,
			 strerror(res ? -res : EPIPE));
		return edge_close(edge_close_reason_of(side, EDGE_XF_ERROR));
	}
	sent(c, d, (size_t)res);
	st = pump(c, d);
	if (!edge_stays(st))
		return st;
	return flush_client(c); /* a TLS read may have queued a record (KeyUpdate) */
}

/* A poll completed: the directions that wait on it go on (both when none did: a poll
 * armed before the relay). */
static struct edge_step on_poll(struct edge_conn *c, enum edge_side_id side, short events)
{
	uint8_t bit = EDGE_WAIT_BIT(side, events);
	bool c2u = c->dir[EDGE_C2U].waits & bit, u2c = c->dir[EDGE_U2C].waits & bit;
	struct edge_step st = edge_stay();

	c->dir[EDGE_C2U].waits &= (uint8_t)~bit;
	c->dir[EDGE_U2C].waits &= (uint8_t)~bit;
	if (!c2u && !u2c)
		return edge_relay_run(c);
	if (c2u)
		st = pump(c, &c->dir[EDGE_C2U]);
	if (u2c && edge_stays(st))
		st = pump(c, &c->dir[EDGE_U2C]);
	return edge_stays(st) ? flush_client(c) : st;
}

struct edge_step edge_relay_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	struct edge_step st;

	touch(c);
	switch (op) {
	case EDGE_OP_POLL_IN:
	case EDGE_OP_POLL_IN_UP:
		return on_poll(c, (enum edge_side_id)(op - EDGE_OP_POLL_IN), POLLIN);
	case EDGE_OP_POLL_OUT:
	case EDGE_OP_POLL_OUT_UP:
		return on_poll(c, (enum edge_side_id)(op - EDGE_OP_POLL_OUT), POLLOUT);
	case EDGE_OP_SEND:
	case EDGE_OP_SEND_UP:
		return on_sent(c, (enum edge_side_id)(op - EDGE_OP_SEND), res);
	case EDGE_OP_SPLICE_IN:
	case EDGE_OP_SPLICE_IN_U2C:
		st = edge_splice_done(c, &c->dir[op - EDGE_OP_SPLICE_IN], EDGE_OP_SPLICE_IN, res);
		if (!edge_stays(st))
			return st;
		break;
	case EDGE_OP_KICK: /* a child's stream has bytes or room (h2.c): both directions go on */
		c->dir[EDGE_C2U].waits &= (uint8_t) ~(EDGE_WAIT_BIT(EDGE_CLIENT, POLLIN) |
						      EDGE_WAIT_BIT(EDGE_CLIENT, POLLOUT));
		c->dir[EDGE_U2C].waits &= (uint8_t) ~(EDGE_WAIT_BIT(EDGE_CLIENT, POLLIN) |
						      EDGE_WAIT_BIT(EDGE_CLIENT, POLLOUT));
		return edge_relay_run(c);
	case EDGE_OP_SPLICE_OUT:
	case EDGE_OP_SPLICE_OUT_U2C:
		st = edge_splice_done(c, &c->dir[op - EDGE_OP_SPLICE_OUT], EDGE_OP_SPLICE_OUT, res);
		if (!edge_stays(st))
			return st;
		break;
	default:
		return edge_stay();
	}
	return edge_relay_run(c);
}

struct edge_step edge_relay_timeout(struct edge_conn *c)
{
	c->w->c.idle_timeouts++;
	return edge_close(EDGE_CLOSE_IDLE_TIMEOUT);
}

void edge_relay_free(struct edge_conn *c)
{
	for (int i = 0; i < 2; i++) {
		edge_buf_give(&c->w->relay_bufs, &c->dir[i].in);
		edge_splice_close(c->w, &c->dir[i]);
	}
	edge_buf_give(&c->w->out_bufs, &c->side[EDGE_CLIENT].out);
	edge_filter_free(c);
}
