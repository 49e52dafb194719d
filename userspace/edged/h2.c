/*
 * HTTP/2 terminated: see h2.h. The parent's session: nghttp2's callbacks
 * (the request headers and DATA of each stream, built into HTTP/1.1 text
 * for its child), the limits and floods, and the pump over the client side.
 * A stream's own side (its child, edge_xprt_h2, the response) is in
 * h2_stream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"
#include "log.h"
#include "snapshot.h"

bool edge_h2_terminates(const struct edge_conn *c)
{
	return c->sni && c->sni->protocol == EDGE_PROTOCOL_HTTP && !strcmp(c->alpn, "h2");
}

static char *dup_n(const uint8_t *v, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, v, n);
		s[n] = '\0';
	}
	return s;
}

/* ---- the token buckets ---- */

static void refill(struct edge_h2 *h)
{
	uint64_t now = edge_now_ms();
	double dt = (double)(now - h->bucket_ms) / 1000.0;

	h->bucket_ms = now;
	h->reset_tokens += dt * EDGE_H2_RESET_RATE;
	if (h->reset_tokens > EDGE_H2_RESET_BURST)
		h->reset_tokens = EDGE_H2_RESET_BURST;
	h->control_tokens += dt * EDGE_H2_CONTROL_RATE;
	if (h->control_tokens > EDGE_H2_CONTROL_BURST)
		h->control_tokens = EDGE_H2_CONTROL_BURST;
}

/* GOAWAY for a limit or an error: counted, logged once; the connection closes once it is out. */
static void goaway(struct edge_h2 *h, enum edge_h2_goaway why, uint32_t code)
{
	if (h->closing)
		return;
	h->closing = true;
	h->close_reason = why == EDGE_H2_GOAWAY_IDLE       ? EDGE_CLOSE_IDLE_TIMEOUT
			  : why == EDGE_H2_GOAWAY_SHUTDOWN ? EDGE_CLOSE_SHUTDOWN
							   : EDGE_CLOSE_H2_GOAWAY;
	ctr(h)->h2_goaway[why]++;
	if (why != EDGE_H2_GOAWAY_IDLE && why != EDGE_H2_GOAWAY_SHUTDOWN) {
		pr_info("h2 goaway peer=%s sni=%s reason=%s streams=%u", h->c->peer, h->c->host,
			edge_h2_goaway_name(why), h->n_streams);
		h->c->close_detail = edge_h2_goaway_name(why);
	}
	nghttp2_session_terminate_session(h->s, code);
}

/* A control frame costs a token; none left is a flood. */
static bool control_frame(struct edge_h2 *h)
{
	refill(h);
	if (h->control_tokens < 1) {
		goaway(h, EDGE_H2_GOAWAY_CONTROL_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM);
		return false;
	}
	h->control_tokens -= 1;
	return true;
}

/* ---- streams ---- */

static struct edge_h2_stream *stream_of(struct edge_h2 *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

/* ---- the request: headers and DATA from the client ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->h2 = h;
	st->id = f->hd.stream_id;
	edge_http_resp_init(&st->dec);
	st->dec.decode = true;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	h->n_streams++;
	ctr(h)->h2_streams++;
	nghttp2_session_set_stream_user_data(s, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
		     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st = stream_of(h, f->hd.stream_id);
	const char *n = (const char *)name, *v = (const char *)value;
	int rc = 0;

	if (!st || st->too_large)
		return 0;
	st->hdr_bytes += nl + vl + 32;
	if (st->hdr_bytes > EDGE_H2_HEADER_LIST_MAX) {
		st->too_large = true;
		return 0;
	}
	if (st->in_trailers || st->started) { /* the client's trailers: go up only when chunked */
		if (st->chunked && n[0] != ':' && !edge_h2_hop_field(n, nl) &&
		    ((rc = edge_h2_req_add(st, n, nl)) || (rc = edge_h2_req_add(st, ": ", 2)) ||
		     (rc = edge_h2_req_add(st, v, vl)) || (rc = edge_h2_req_add(st, "\r\n", 2))))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (n[0] == ':') {
		if (nl == 7 && !memcmp(n, ":method", 7) && vl < sizeof(st->method))
			memcpy(st->method, v, vl);
		else if (nl == 7 && !memcmp(n, ":scheme", 7) && vl < sizeof(st->scheme))
			memcpy(st->scheme, v, vl);
		else if (nl == 5 && !memcmp(n, ":path", 5) && !st->path)
			st->path = dup_n(value, vl);
		else if (nl == 10 && !memcmp(n, ":authority", 10) && !st->authority)
			st->authority = dup_n(value, vl);
		else
			st->bad_pseudo = true; /* :protocol (extended CONNECT), or too long */
		return 0;
	}
	if (nl == 4 && !memcmp(n, "host", 4)) {
		if (!st->host)
			st->host = dup_n(value, vl);
		return 0;
	}
	if (nl == 6 && !memcmp(n, "cookie", 6)) {
		if ((st->cookie_len &&
		     edge_h2_append(&st->cookie, &st->cookie_len, &st->cookie_cap, "; ", 2)) ||
		    edge_h2_append(&st->cookie, &st->cookie_len, &st->cookie_cap, v, vl))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (edge_h2_hop_field(n, nl))
		return 0; /* te: trailers is all HTTP/2 allows; HTTP/1.1 hop-by-hop is ours */
	if (nl == 14 && !memcmp(n, "content-length", 14))
		st->has_length = true;
	if (nl == 12 && !memcmp(n, "content-type", 12) && vl >= 16 &&
	    !strncasecmp(v, "application/grpc", 16))
		st->grpc = true;
	if ((rc = edge_h2_req_add(st, n, nl)) || (rc = edge_h2_req_add(st, ": ", 2)) ||
	    (rc = edge_h2_req_add(st, v, vl)) || (rc = edge_h2_req_add(st, "\r\n", 2)))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

/* The request's head is complete: build its HTTP/1.1 form, spawn its child (or answer). */
static int stream_start(struct edge_h2 *h, struct edge_h2_stream *st, bool end)
{
	const char *auth = st->authority ? st->authority : st->host;
	char *fields = st->req;
	size_t fields_len = st->req_len;
	bool bodyless_ok, head_req;
	int rc = 0;

	st->started = true;
	st->req_end = end;
	if (st->too_large) {
		edge_h2_answer_local(st, 431, "431 Request Header Fields Too Large: over 16 KiB\n");
		return 0;
	}
	if (!strcmp(st->method, "CONNECT") || st->bad_pseudo) {
		edge_h2_answer_local(st, 405,
				     "405 Method Not Allowed: the edge opens no tunnels\n");
		return 0;
	}
	if (st->grpc) {
		edge_h2_answer_grpc(st);
		return 0;
	}
	head_req = !strcmp(st->method, "HEAD");
	bodyless_ok = head_req || !strcmp(st->method, "GET") || !strcmp(st->method, "DELETE") ||
		      !strcmp(st->method, "OPTIONS") || !strcmp(st->method, "TRACE");
	st->chunked = !end && !st->has_length;
	st->req = NULL;
	st->req_len = st->req_cap = 0;
	if ((rc = edge_h2_req_add(st, st->method, strlen(st->method))) ||
	    (rc = edge_h2_req_add(st, " ", 1)) ||
	    (rc = edge_h2_req_add(st, st->path ? st->path : "/",
				  st->path ? strlen(st->path) : 1)) ||
	    (rc = edge_h2_req_add(st, " HTTP/1.1\r\n", 11)))
		goto out;
	if (auth && ((rc = edge_h2_req_add(st, "Host: ", 6)) ||
		     (rc = edge_h2_req_add(st, auth, strlen(auth))) ||
		     (rc = edge_h2_req_add(st, "\r\n", 2))))
		goto out;
	if (fields_len && (rc = edge_h2_req_add(st, fields, fields_len)))
		goto out;
	if (st->cookie_len && ((rc = edge_h2_req_add(st, "Cookie: ", 8)) ||
			       (rc = edge_h2_req_add(st, st->cookie, st->cookie_len)) ||
			       (rc = edge_h2_req_add(st, "\r\n", 2))))
		goto out;
	if (st->chunked && (rc = edge_h2_req_add(st, "Transfer-Encoding: chunked\r\n", 28)))
		goto out;
	if (end && !st->has_length && !bodyless_ok &&
	    (rc = edge_h2_req_add(st, "Content-Length: 0\r\n", 19)))
		goto out;
	if ((rc = edge_h2_req_add(st, "\r\n", 2)))
		goto out;
	if (edge_http_resp_expect(&st->dec, head_req, false))
		rc = -ENOMEM;
	else if (!(st->child = edge_h2_spawn(h->c, st)))
		rc = -ENOMEM;
out:
	free(fields);
	if (rc) {
		edge_h2_answer_local(st, 503,
				     "503 Service Unavailable: the edge is out of memory\n");
		return 0;
	}
	return 0;
}

static void stream_req_end(struct edge_h2_stream *st)
{
	if (st->req_end)
		return;
	st->req_end = true;
	if (st->chunked && st->child &&
	    edge_h2_req_add(st, st->in_trailers ? "\r\n" : "0\r\n\r\n", st->in_trailers ? 2 : 5))
		st->resp_failed = true;
	edge_h2_wake_child(st, true);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st = f->hd.stream_id ? stream_of(h, f->hd.stream_id) : NULL;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (!st)
			return 0;
		if (!st->started && f->headers.cat == NGHTTP2_HCAT_REQUEST)
			return stream_start(h, st, end);
		if (end)
			stream_req_end(st);
		return 0;
	case NGHTTP2_DATA:
		if (!f->hd.length && !end && !control_frame(h))
			return 0;
		if (st && end)
			stream_req_end(st);
		return 0;
	case NGHTTP2_PING:
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			control_frame(h);
		return 0;
	case NGHTTP2_PRIORITY:
	case NGHTTP2_WINDOW_UPDATE:
		if (f->hd.type == NGHTTP2_PRIORITY || !f->window_update.window_size_increment)
			control_frame(h);
		return 0;
	default:
		return 0;
	}
}

static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st;

	if (hd->type == NGHTTP2_HEADERS) {
		st = stream_of(h, hd->stream_id);
		if (st && st->started) {
			st->in_trailers = true;
			if (st->chunked && st->child && edge_h2_req_add(st, "0\r\n", 3))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
	}
	if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
		st = stream_of(h, hd->stream_id);
		if (hd->type == NGHTTP2_HEADERS)
			h->block_frames = 0;
		if (hd->type == NGHTTP2_HEADERS && st)
			st->block_bytes = 0;
		/* a header block in too many frames, or too long (CVE-2024-27316 and kin) */
		if (++h->block_frames > EDGE_H2_HEADER_FRAMES_MAX ||
		    (st && (st->block_bytes += hd->length) > EDGE_H2_HEADER_BLOCK_MAX)) {
			goaway(h, EDGE_H2_GOAWAY_HEADER_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM);
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st = stream_of(h, id);
	char line[24];
	int n;

	if (!st || !st->child || st->req_end) {
		nghttp2_session_consume(s, id, len); /* nobody reads it */
		return 0;
	}
	if (st->chunked) {
		n = snprintf(line, sizeof(line), "%zx\r\n", len);
		if (edge_h2_req_add(st, line, (size_t)n) || edge_h2_req_add(st, data, len) ||
		    edge_h2_req_add(st, "\r\n", 2))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (edge_h2_req_add(st, data, len)) {
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	st->unconsumed += len;
	edge_h2_wake_child(st, true);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct edge_h2 *h = ud;
	struct edge_h2_stream *st = stream_of(h, id);
	struct edge_conn *child;

	if (!st || h->dying)
		return 0;
	nghttp2_session_set_stream_user_data(s, id, NULL);
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	h->n_streams--;
	child = st->child;
	if (child) {
		child->h2 = NULL;
		st->child = NULL;
	}
	if (code != NGHTTP2_NO_ERROR && !st->resp_end && !st->resp_failed) {
		/* reset before its response was out: a client's reset (or ours, counted apart) */
		ctr(h)->h2_client_resets++;
		refill(h);
		if (h->reset_tokens < 1)
			goaway(h, EDGE_H2_GOAWAY_RAPID_RESET, NGHTTP2_ENHANCE_YOUR_CALM);
		else
			h->reset_tokens -= 1;
	}
	if (child)
		edge_h2_kill_child(child, code == NGHTTP2_NO_ERROR ? EDGE_CLOSE_DONE
								   : EDGE_CLOSE_H2_STREAM_RESET);
	edge_h2_stream_free(st);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct edge_h2 *h = ud;

	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		ctr(h)->h2_refused++;
	/* nghttp2's own GOAWAY (ours set closing first): a protocol error, or its flood limits */
	if (f->hd.type == NGHTTP2_GOAWAY && !h->closing &&
	    !(h->shutdown && f->goaway.error_code == NGHTTP2_NO_ERROR))
		goaway(h,
		       f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM
			       ? EDGE_H2_GOAWAY_CONTROL_FLOOD
			       : EDGE_H2_GOAWAY_PROTOCOL,
		       f->goaway.error_code);
	return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
	struct edge_h2 *h = ud;

	pr_debug("h2 invalid frame peer=%s sni=%s type=%u: %s", h->c->peer, h->c->host, f->hd.type,
		 nghttp2_strerror(err));
	return 0;
}

/* ---- the parent's pump ---- */

/* Frames out to the client: 0 all out (or nothing to send), 1 waiting, -1 failed. */
static int write_out(struct edge_conn *c, struct edge_h2 *h)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];

	for (;;) {
		/* An io_uring send (kTLS) reads out[out_off..) until its completion: no realloc. */
		if (cl->sending)
			return 1;
		while (h->out_len - h->out_off < EDGE_H2_OUT_MAX) {
			const uint8_t *p;
			ssize_t n = nghttp2_session_mem_send(h->s, &p);

			if (n < 0) {
				pr_warn("h2 peer=%s sni=%s: %s", c->peer, c->host,
					nghttp2_strerror((int)n));
				return -1;
			}
			if (!n)
				break;
			if (h->out_off == h->out_len)
				h->out_off = h->out_len = 0;
			if (edge_h2_append(&h->out, &h->out_len, &h->out_cap, p, (size_t)n))
				return -1;
		}
		if (h->out_off == h->out_len)
			break;
		ssize_t n = cl->ops->send(c, cl, h->out + h->out_off, h->out_len - h->out_off);

		if (n > 0) {
			c->bytes_out += (uint64_t)n;
			h->out_off += (size_t)n;
			continue;
		}
		if (n == EDGE_IO_ASYNC)
			return 1;
		if (n == EDGE_IO_AGAIN) {
			edge_side_wait(c, cl);
			return 1;
		}
		return -1;
	}
	if (h->out_off == h->out_len && h->out_cap > 2 * EDGE_H2_OUT_MAX) {
		free(h->out); /* after a burst, the big buffer goes */
		h->out = NULL;
		h->out_len = h->out_off = h->out_cap = 0;
	}
	if (cl->ops->flush) {
		int r = cl->ops->flush(c, cl);

		if (r == EDGE_IO_AGAIN) {
			edge_side_wait(c, cl);
			return 1;
		}
		if (r == EDGE_IO_FAIL)
			return -1;
	}
	return 0;
}

static struct edge_step failed(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];

	return edge_close(edge_close_reason_of(EDGE_CLIENT, cl->fail));
}

static void touch(struct edge_conn *c)
{
	edge_conn_deadline(c, edge_now_ms() + c->w->d->cfg.idle_timeout_ms);
}

/*
 * The GOAWAY is out: the streams end, the write side closes (close_notify), and what the
 * client still sends is read and dropped until its end, bounded (reply.c's LINGER). A
 * close with the flood's bytes unread would be a reset, which the client sees before the
 * GOAWAY that says why.
 */
static struct edge_step linger(struct edge_conn *c, struct edge_h2 *h)
{
	edge_h2_close(c);
	c->reply = NULL;
	c->reply_len = 0;
	c->reply_close = h->close_reason;
	c->reply_detail = c->close_detail;
	return edge_move(EDGE_CONN_REPLY);
}

static struct edge_step pump(struct edge_conn *c)
{
	struct edge_h2 *h = c->h2s;
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	char buf[16 * 1024]; /* a TLS record's plaintext */

	if (c->w->draining && !h->shutdown) {
		/* Graceful: the streams open finish, no new one is taken; the session ends after. */
		h->shutdown = true;
		ctr(h)->h2_goaway[EDGE_H2_GOAWAY_SHUTDOWN]++;
		nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(h->s),
				      NGHTTP2_NO_ERROR, NULL, 0);
	}
	for (;;) {
		int w = write_out(c, h);
		ssize_t n, rv;

		if (w < 0)
			return failed(c);
		if (w == 0 && h->closing)
			return linger(c, h);
		if (w == 0 && !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))
			return edge_close(h->shutdown ? EDGE_CLOSE_SHUTDOWN : EDGE_CLOSE_DONE);
		if (w == 1 && h->out_len - h->out_off >= EDGE_H2_OUT_MAX)
			return edge_stay(); /* the client reads slowly: no more from it until then */
		if (h->closing)
			return edge_stay();
		n = cl->ops->recv(c, cl, buf, sizeof(buf));
		if (n == EDGE_IO_AGAIN) {
			edge_side_wait(c, cl);
			return edge_stay();
		}
		if (n == 0)
			return edge_close(EDGE_CLOSE_DONE); /* the client's end; its streams with it */
		if (n < 0)
			return failed(c);
		c->bytes_in += (uint64_t)n;
		rv = nghttp2_session_mem_recv(h->s, (const uint8_t *)buf, (size_t)n);
		if (rv < 0 && !h->closing) {
			bool flood = rv == NGHTTP2_ERR_FLOODED;

			if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
			    rv == NGHTTP2_ERR_HEADER_COMP)
				goaway(h, EDGE_H2_GOAWAY_HEADER_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM);
			else
				goaway(h,
				       flood ? EDGE_H2_GOAWAY_CONTROL_FLOOD
					     : EDGE_H2_GOAWAY_PROTOCOL,
				       flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
			pr_debug("h2 peer=%s: %s", c->peer, nghttp2_strerror((int)rv));
		}
	}
}

struct edge_step edge_h2_enter(struct edge_conn *c)
{
	struct edge_worker *w = c->w;
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	struct edge_h2 *h;
	int rc;

	touch(c);
	cl->ops = &edge_xprt_tls;
	if (w->d->ktls && edge_xprt_ktls_handoff(c) < 0)
		return edge_close(EDGE_CLOSE_KTLS_INSTALL_FAILED);
	if (cl->ops == &edge_xprt_ktls) {
		w->c.path_ktls++;
	} else {
		w->c.path_userspace++;
		edge_xprt_tls_batch(c, cl);
		if (!w->d->ktls)
			SSL_set_read_ahead(cl->ssl, 1); /* OpenSSL keeps it (handshake.c) */
		OPENSSL_cleanse(cl->rx_secret, sizeof(cl->rx_secret));
		OPENSSL_cleanse(cl->tx_secret, sizeof(cl->tx_secret));
		cl->rx_secret_len = cl->tx_secret_len = 0;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	c->h2s = h;
	h->c = c;
	h->reset_tokens = EDGE_H2_RESET_BURST;
	h->control_tokens = EDGE_H2_CONTROL_BURST;
	h->bucket_ms = edge_now_ms();
	if (nghttp2_session_callbacks_new(&cb))
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
	if (nghttp2_option_new(&opt)) {
		nghttp2_session_callbacks_del(cb);
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	}
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_stream_reset_rate_limit(opt, 4 * EDGE_H2_RESET_BURST,
						   2 * EDGE_H2_RESET_RATE);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_continuations(opt, 2 * EDGE_H2_HEADER_FRAMES_MAX); /* ours first */
	rc = nghttp2_session_server_new2(&h->s, cb, h, opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (rc)
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, EDGE_H2_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, EDGE_H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, EDGE_H2_HEADER_LIST_MAX },
	};
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, EDGE_H2_CONN_WINDOW))
		return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
	w->c.h2_connections++;
	return pump(c);
}

struct edge_step edge_h2_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	struct edge_h2 *h = c->h2s;

	switch (op) {
	case EDGE_OP_SEND:
		cl->sending = false;
		if (res <= 0)
			return edge_close(EDGE_CLOSE_CLIENT_ERROR);
		c->bytes_out += (uint64_t)res;
		h->out_off += (size_t)res;
		break;
	case EDGE_OP_POLL_IN:
	case EDGE_OP_POLL_OUT:
	case EDGE_OP_KICK:
		break;
	default:
		return edge_stay();
	}
	if (op != EDGE_OP_KICK)
		touch(c);
	return pump(c);
}

/* Idle with no stream open: GOAWAY, then the close; with streams, their own timers run. */
struct edge_step edge_h2_timeout(struct edge_conn *c)
{
	struct edge_h2 *h = c->h2s;

	if (h->n_streams && !h->closing) {
		touch(c);
		return edge_stay();
	}
	if (h->closing) /* the GOAWAY did not get out in time */
		return edge_close(h->close_reason);
	c->w->c.idle_timeouts++;
	goaway(h, EDGE_H2_GOAWAY_IDLE, NGHTTP2_NO_ERROR);
	edge_conn_deadline(c, edge_now_ms() + 1000);
	return pump(c);
}

void edge_h2_close(struct edge_conn *c)
{
	struct edge_h2 *h = c->h2s;

	if (!h)
		return;
	h->dying = true;
	for (struct edge_h2_stream *st = h->streams; st; st = st->next) {
		struct edge_conn *child = st->child;

		st->h2 = NULL;
		st->child = NULL;
		if (!child)
			continue;
		child->h2 = NULL;
		edge_h2_kill_child(child, EDGE_CLOSE_H2_CLOSED);
	}
}

void edge_h2_free(struct edge_conn *c)
{
	struct edge_h2 *h = c->h2s;
	struct edge_h2_stream *st, *next;

	if (!h)
		return;
	h->dying = true;
	for (st = h->streams; st; st = next) {
		next = st->next;
		edge_h2_stream_free(st);
	}
	nghttp2_session_del(h->s);
	free(h->out);
	free(h);
	c->h2s = NULL;
}
