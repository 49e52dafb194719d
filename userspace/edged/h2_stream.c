/*
 * An HTTP/2 stream of a terminated connection (h2.h): its child connection, the child's
 * client side (edge_xprt_h2: the request as HTTP/1.1 text, the response decoded into HEADERS,
 * DATA and trailers), local answers, flow control given back as the child reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"
#include "log.h"
#include "snapshot.h"

/* ---- small buffers ---- */

int edge_h2_append(char **p, size_t *len, size_t *cap, const void *data, size_t n)
{
	if (!n)
		return 0;
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 256;
		char *q;

		while (nc < *len + n)
			nc *= 2;
		q = realloc(*p, nc);
		if (!q)
			return -ENOMEM;
		*p = q;
		*cap = nc;
	}
	memcpy(*p + *len, data, n);
	*len += n;
	return 0;
}

int edge_h2_req_add(struct edge_h2_stream *st, const void *data, size_t n)
{
	return edge_h2_append(&st->req, &st->req_len, &st->req_cap, data, n);
}

void edge_h2_stream_free(struct edge_h2_stream *st)
{
	edge_http_resp_free(&st->dec);
	free(st->req);
	free(st->cookie);
	free(st->path);
	free(st->authority);
	free(st->host);
	free(st->body);
	free(st->trailers);
	free(st->trailer_text);
	free(st);
}

/* Flow control: the DATA bytes the child took (or that nobody will take) are given back. */
void edge_h2_give_back(struct edge_h2_stream *st)
{
	struct edge_h2 *h = st->h2;

	if (!st->unconsumed || !h)
		return;
	nghttp2_session_consume(h->s, st->id, st->unconsumed);
	st->unconsumed = 0;
	edge_conn_kick(h->c); /* the WINDOW_UPDATE goes out */
}

void edge_h2_wake_child(struct edge_h2_stream *st, bool in)
{
	bool *w = in ? &st->wants_in : &st->wants_out;

	if (*w && st->child) {
		*w = false;
		edge_conn_kick(st->child);
	}
}

/* The response's bytes for DATA frames: the body queue, or a local answer. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct edge_h2_stream *st = src->ptr;
	size_t n;

	if (st->local) {
		n = st->local_len - st->local_off;
		if (n > length)
			n = length;
		memcpy(buf, st->local + st->local_off, n);
		st->local_off += n;
		if (st->local_off == st->local_len)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	n = st->body_len - st->body_off;
	if (n > length)
		n = length;
	if (n)
		memcpy(buf, st->body + st->body_off, n);
	st->body_off += n;
	if (st->body_off == st->body_len)
		st->body_off = st->body_len = 0;
	if (n)
		edge_h2_wake_child(st, false); /* room again */
	if (st->body_len == 0 && st->resp_end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->n_trailers) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (nghttp2_submit_trailer(s, id, st->trailers, st->n_trailers))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return (ssize_t)n;
	}
	if (!n)
		return NGHTTP2_ERR_DEFERRED;
	return (ssize_t)n;
}

#define NV(n, v, vl)                                                                              \
	{                                                                                         \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME \
	}

/* The edge answers the stream itself: status, a text body (static). */
void edge_h2_answer_local(struct edge_h2_stream *st, int status, const char *body)
{
	struct edge_h2 *h = st->h2;
	char code[4];
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = read_body };

	if (!h || st->resp_submitted)
		return;
	snprintf(code, sizeof(code), "%d", status);
	nghttp2_nv nv[] = {
		NV(":status", code, 3),
		NV("content-type", "text/plain", 10),
	};
	st->local = body;
	st->local_len = strlen(body);
	st->resp_submitted = st->resp_end = true;
	ctr(h)->h2_local++;
	nghttp2_submit_response(h->s, st->id, nv, 2, &dp);
	edge_conn_kick(h->c);
}

/* gRPC needs HTTP/2 to its server: a trailers-only gRPC error saying so. */
void edge_h2_answer_grpc(struct edge_h2_stream *st)
{
	static const char msg[] = "the edge speaks HTTP/1.1 to this upstream (--protocol http); "
				  "gRPC needs --protocol tcp with an HTTP/2 upstream";
	nghttp2_nv nv[] = {
		NV(":status", "200", 3),
		NV("content-type", "application/grpc", 16),
		NV("grpc-status", "12", 2), /* UNIMPLEMENTED */
		NV("grpc-message", msg, sizeof(msg) - 1),
	};

	st->resp_submitted = st->resp_end = true;
	ctr(st->h2)->h2_local++;
	nghttp2_submit_response(st->h2->s, st->id, nv, 4, NULL);
	edge_conn_kick(st->h2->c);
}

/* Hop-by-hop in HTTP/1.1, never in HTTP/2 (RFC 9113 8.2.2). */
bool edge_h2_hop_field(const char *n, size_t l)
{
	static const char *const hop[] = { "connection",       "keep-alive",
					   "proxy-connection", "transfer-encoding",
					   "upgrade",          "te",
					   "trailer" };

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strlen(hop[i]) == l && !strncasecmp(n, hop[i], l))
			return true;
	return false;
}

/* ---- the response: what the child sends its client side (HTTP/1.1), as frames ---- */

/* The head in dec.out: HEADERS (a 1xx is dropped: its final response follows). */
static int submit_head(struct edge_h2_stream *st, const char *p, size_t n)
{
	struct edge_h2 *h = st->h2;
	const char *end = p + n - 2, *l = memmem(p, n, "\r\n", 2) + 2;
	nghttp2_nv *nv;
	size_t k = 1, cap = 8;
	char code[4];
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = read_body };
	bool no_body;
	int rc;

	if (st->dec.status < 200)
		return 0;
	for (const char *q = l; q < end; q++)
		cap += *q == '\n';
	nv = calloc(cap, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	snprintf(code, sizeof(code), "%d", st->dec.status);
	nv[0] = (nghttp2_nv)NV(":status", code, 3);
	nv[0].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
	while (l < end && k < cap) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		const char *colon = memchr(l, ':', (size_t)(le - l)); /* httpresp checked it */
		const char *v = colon + 1, *ve = le;
		size_t nl = (size_t)(colon - l);

		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (!edge_h2_hop_field(l, nl)) {
			/* names go lower-case on the wire: nghttp2 copies them, we lower in place */
			for (char *q = (char *)l; q < colon; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			nv[k++] = (nghttp2_nv){ (uint8_t *)l, (uint8_t *)v, nl, (size_t)(ve - v),
						NGHTTP2_NV_FLAG_NONE };
		}
		l = le + 2;
	}
	/* A response complete with its head (HEAD, 204, 304, Content-Length: 0) has no DATA. */
	no_body = st->dec.responses > 0 && st->body_len == 0;
	st->resp_submitted = true;
	if (no_body)
		st->resp_end = true;
	rc = nghttp2_submit_response(h->s, st->id, nv, k, no_body ? NULL : &dp);
	free(nv);
	return rc ? -EIO : 0;
}

/* The trailer section in dec.out: kept as trailers for after the last DATA. */
static int keep_trailers(struct edge_h2_stream *st, const char *p, size_t n)
{
	const char *end;
	size_t k = 0, cap = 0;

	free(st->trailer_text);
	st->trailer_text = malloc(n);
	if (!st->trailer_text)
		return -ENOMEM;
	memcpy(st->trailer_text, p, n);
	p = st->trailer_text;
	end = p + n - 2;
	for (const char *q = p; q < end; q++)
		cap += *q == '\n';
	st->trailers = calloc(cap + 1, sizeof(*st->trailers));
	if (!st->trailers)
		return -ENOMEM;
	for (const char *l = p; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		char *colon = memchr(l, ':', (size_t)(le - l));
		const char *v = colon + 1, *ve = le;
		size_t nl = (size_t)(colon - l);

		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (!edge_h2_hop_field(l, nl)) {
			for (char *q = (char *)l; q < colon; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			st->trailers[k++] = (nghttp2_nv){ (uint8_t *)l, (uint8_t *)v, nl,
							  (size_t)(ve - v), NGHTTP2_NV_FLAG_NONE };
		}
		l = le + 2;
	}
	st->n_trailers = k;
	return 0;
}

/* The response cannot go on: a 502 when nothing of it went yet, else a reset. */
static void stream_fail(struct edge_h2_stream *st)
{
	struct edge_h2 *h = st->h2;

	if (!h || st->resp_end || st->resp_failed)
		return;
	if (!st->resp_submitted) {
		edge_h2_answer_local(st, 502,
				     "502 Bad Gateway: the upstream gave no complete response\n");
		return;
	}
	st->resp_failed = true;
	nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	edge_conn_kick(h->c);
}

static ssize_t xh2_send(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len)
{
	struct edge_h2_stream *st = c->h2;
	const char *p = buf;
	size_t off = 0;

	if (!st || !st->h2 || st->resp_failed)
		return edge_side_failed(s, EDGE_XF_ERROR);
	while (off < len) {
		struct edge_http_resp *d = &st->dec;
		size_t room = EDGE_H2_BODY_MAX - (st->body_len - st->body_off);
		size_t n = len - off;
		bool raw = false;
		ssize_t k;

		if (d->responses && d->state == EDGE_RESP_HEAD)
			return (ssize_t)len; /* after the one response: nobody's (not pooled) */
		if (d->state != EDGE_RESP_HEAD && n > room)
			n = room;
		if (!n) {
			if (off)
				break;
			st->wants_out = true;
			s->want = POLLOUT;
			return EDGE_IO_AGAIN;
		}
		k = edge_http_resp_feed(d, p + off, n, &raw);
		if (k < 0)
			return edge_side_failed(s, EDGE_XF_ERROR);
		if (d->broken) {
			stream_fail(st);
			return edge_side_failed(s, EDGE_XF_ERROR);
		}
		if (raw) {
			if (st->body_off && st->body_off == st->body_len)
				st->body_off = st->body_len = 0;
			if (st->body_off > EDGE_H2_BODY_MAX / 2) {
				memmove(st->body, st->body + st->body_off,
					st->body_len - st->body_off);
				st->body_len -= st->body_off;
				st->body_off = 0;
			}
			if (edge_h2_append(&st->body, &st->body_len, &st->body_cap, p + off,
					   (size_t)k))
				return edge_side_failed(s, EDGE_XF_ERROR);
		} else if (d->out_len > d->out_off) {
			int rc = d->block == EDGE_RESP_BLOCK_TRAILERS
					 ? keep_trailers(st, d->out + d->out_off,
							 d->out_len - d->out_off)
					 : submit_head(st, d->out + d->out_off,
						       d->out_len - d->out_off);

			d->out_off = d->out_len;
			if (rc)
				return edge_side_failed(s, EDGE_XF_ERROR);
		}
		off += (size_t)k;
		if (d->responses && st->resp_submitted)
			st->resp_end = true;
		if (!k && !raw)
			break;
	}
	if (st->resp_submitted) {
		nghttp2_session_resume_data(st->h2->s, st->id);
		edge_conn_kick(st->h2->c);
	}
	return off ? (ssize_t)off : (ssize_t)len;
}

/* The child is done sending its client side: the response ends here. */
static int xh2_shutw(struct edge_conn *c, struct edge_side *s)
{
	struct edge_h2_stream *st = c->h2;

	if (!st || !st->h2)
		return 0;
	if (st->resp_end || (st->resp_submitted && edge_http_resp_eof_ok(&st->dec))) {
		st->resp_end = true;
		nghttp2_session_resume_data(st->h2->s, st->id);
		edge_conn_kick(st->h2->c);
	} else {
		stream_fail(st);
	}
	return 0;
}

/* The request, as the child reads it. */
static ssize_t xh2_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	struct edge_h2_stream *st = c->h2;
	size_t n;

	if (!st || !st->h2)
		return 0;
	n = st->req_len - st->req_off;
	if (!n) {
		if (st->req_end)
			return 0;
		st->wants_in = true;
		s->want = POLLIN;
		return EDGE_IO_AGAIN;
	}
	if (n > len)
		n = len;
	memcpy(buf, st->req + st->req_off, n);
	st->req_off += n;
	if (st->req_off == st->req_len) {
		st->req_off = st->req_len = 0;
		edge_h2_give_back(st);
	}
	return (ssize_t)n;
}

const struct edge_xprt_ops edge_xprt_h2 = {
	.name = "h2",
	.kernel = false,
	.recv = xh2_recv,
	.send = xh2_send,
	.shutw = xh2_shutw,
};

/* ---- the children ---- */

/* The child ends (from its own completion: never inside the parent's handlers). */
void edge_h2_kill_child(struct edge_conn *child, enum edge_close_reason why)
{
	if (child->state == EDGE_CONN_CLOSING)
		return;
	child->kick_step = edge_abort(why);
	child->kick_set = true;
	edge_conn_kick(child);
}

/* A child for stream st: the parent's verdict, identity and snapshot; its client side is
 * the stream. It starts at the upstream connect, from its first kick. */
struct edge_conn *edge_h2_spawn(struct edge_conn *p, struct edge_h2_stream *st)
{
	struct edge_worker *w = p->w;
	struct edge_conn *c = aligned_alloc(16, sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->w = w;
	for (int i = 0; i < 2; i++) {
		c->side[i].id = (enum edge_side_id)i;
		c->side[i].fd = -1;
		c->dir[i].id = (enum edge_dir_id)i;
		c->dir[i].pipe[0] = c->dir[i].pipe[1] = -1;
	}
	c->side[EDGE_CLIENT].ops = &edge_xprt_h2;
	c->side[EDGE_CLIENT].ssl = p->side[EDGE_CLIENT].ssl; /* for identity.c: a reference */
	SSL_up_ref(c->side[EDGE_CLIENT].ssl);
	c->snap = edge_snapshot_ref(p->snap);
	c->sni = p->sni;
	c->trust = p->trust;
	c->authz = p->authz;
	c->action = p->action;
	c->mode = p->mode;
	c->listener = p->listener;
	c->verdict = p->verdict;
	c->verify_ran = p->verify_ran;
	c->vr = p->vr;
	c->audit = p->audit;
	memcpy(c->alpn, p->alpn, sizeof(c->alpn));
	c->alpn_label = p->alpn_label;
	c->peer_ss = p->peer_ss;
	memcpy(c->peer, p->peer, sizeof(c->peer));
	memcpy(c->host, p->host, sizeof(c->host));
	c->start_ms = edge_now_ms();
	c->h2 = st;
	c->h2_child = true;
	c->h2_stream_id = st->id;
	c->next = &w->head;
	c->prev = w->head.prev;
	w->head.prev->next = c;
	w->head.prev = c;
	w->n_conns++;
	c->state = EDGE_CONN_CONNECTING; /* entered at the kick */
	c->kick_step = edge_move(EDGE_CONN_CONNECTING);
	c->kick_set = true;
	edge_conn_kick(c);
	if (!c->kick_queued) { /* no room in the ring even after a submit */
		c->state = EDGE_CONN_CLOSING;
		c->close = EDGE_CLOSE_INTERNAL_ERROR;
		edge_conn_look_soon(c);
		return c; /* freed at the next tick; the stream gets its 502 from here */
	}
	return c;
}

int edge_h2_parent_fd(const struct edge_conn *c)
{
	const struct edge_h2_stream *st = c->h2;

	return st && st->h2 ? st->h2->c->side[EDGE_CLIENT].fd : -1;
}

void edge_h2_child_closed(struct edge_conn *c)
{
	struct edge_h2_stream *st = c->h2;

	if (!st)
		return;
	c->h2 = NULL;
	st->child = NULL;
	if (!st->h2)
		return;
	edge_h2_give_back(st); /* the request bytes nobody will read */
	if (!st->resp_end)
		stream_fail(st);
	nghttp2_session_resume_data(st->h2->s, st->id);
	edge_conn_kick(st->h2->c);
}
