/*
 * HTTP/2 terminated: see h2.h. The parent's session (nghttp2 callbacks,
 * its pump over the client side), the streams, and edge_xprt_h2 (the
 * child's view of its stream).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "httpresp.h"
#include "log.h"
#include "snapshot.h"
#include "worker.h"

struct edge_h2_stream {
	struct edge_h2 *h2;
	struct edge_h2_stream *prev, *next; /* the session's list */
	int32_t id;
	struct edge_conn *child; /* NULL before it is spawned, and once it closed */
	/* the request as the child reads it: head, then the body (chunked when the
	 * client gave no content-length) */
	char *req;
	size_t req_len, req_off, req_cap;
	size_t unconsumed; /* DATA bytes in req not yet given back to flow control */
	size_t hdr_bytes;  /* header list size so far (RFC 9113 6.5.2) */
	size_t block_bytes; /* header block bytes on the wire (HEADERS + CONTINUATION) */
	char *cookie;      /* cookie fields, joined with "; " (RFC 9113 8.2.3) */
	size_t cookie_len, cookie_cap;
	char method[24], scheme[8];
	char *path, *authority, *host;
	bool has_length, grpc, too_large, bad_pseudo;
	bool started;     /* the head is built and the child (or a local answer) is on */
	bool req_end;     /* END_STREAM from the client */
	bool chunked;     /* the body goes up chunked */
	bool in_trailers; /* the client's trailer section */
	bool wants_in, wants_out; /* the child waits for request bytes / response room */
	/* the response */
	struct edge_http_resp dec;
	bool resp_submitted, resp_end, resp_failed;
	char *body; /* response body bytes for the client: body[body_off..body_len) */
	size_t body_len, body_off, body_cap;
	nghttp2_nv *trailers;
	size_t n_trailers;
	char *trailer_text; /* what trailers point into */
	const char *local;  /* a local answer's body (static), or NULL */
	size_t local_len, local_off;
};

struct edge_h2 {
	nghttp2_session *s;
	struct edge_conn *c;
	struct edge_h2_stream *streams; /* the open ones */
	unsigned int n_streams;
	char *out; /* frames for the client: out[out_off..out_len) */
	size_t out_len, out_off, out_cap;
	unsigned int block_frames; /* frames of the header block being read */
	bool dying;   /* the parent closes: callbacks do nothing */
	bool closing; /* GOAWAY queued: close once the output is out */
	enum edge_close_reason close_reason;
	/* token buckets (h2.h's limits), refilled by elapsed time */
	double reset_tokens, control_tokens;
	uint64_t bucket_ms;
};

static struct edge_counters *ctr(const struct edge_h2 *h)
{
	return &h->c->w->c;
}

bool edge_h2_terminates(const struct edge_conn *c)
{
	return c->sni && c->sni->protocol == EDGE_PROTOCOL_HTTP && !strcmp(c->alpn, "h2");
}

/* ---- small buffers ---- */

static int append(char **p, size_t *len, size_t *cap, const void *data, size_t n)
{
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

static int req_add(struct edge_h2_stream *st, const void *data, size_t n)
{
	return append(&st->req, &st->req_len, &st->req_cap, data, n);
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
	h->close_reason = why == EDGE_H2_GOAWAY_IDLE	   ? EDGE_CLOSE_IDLE_TIMEOUT
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

static void stream_free(struct edge_h2_stream *st)
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
static void give_back(struct edge_h2_stream *st)
{
	struct edge_h2 *h = st->h2;

	if (!st->unconsumed || !h)
		return;
	nghttp2_session_consume(h->s, st->id, st->unconsumed);
	st->unconsumed = 0;
	edge_conn_kick(h->c); /* the WINDOW_UPDATE goes out */
}

static void wake_child(struct edge_h2_stream *st, bool in)
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
	memcpy(buf, st->body + st->body_off, n);
	st->body_off += n;
	if (st->body_off == st->body_len)
		st->body_off = st->body_len = 0;
	if (n)
		wake_child(st, false); /* room again */
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

#define NV(n, v, vl)                                                                        \
	{                                                                                   \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME \
	}

/* The edge answers the stream itself: status, a text body (static). */
static void answer_local(struct edge_h2_stream *st, int status, const char *body)
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
static void answer_grpc(struct edge_h2_stream *st)
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
static bool hop_field(const char *n, size_t l)
{
	static const char *const hop[] = { "connection",	"keep-alive", "proxy-connection",
					   "transfer-encoding", "upgrade",    "te",
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
		if (!hop_field(l, nl)) {
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
		if (!hop_field(l, nl)) {
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
		answer_local(st, 502, "502 Bad Gateway: the upstream gave no complete response\n");
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
				memmove(st->body, st->body + st->body_off, st->body_len - st->body_off);
				st->body_len -= st->body_off;
				st->body_off = 0;
			}
			if (append(&st->body, &st->body_len, &st->body_cap, p + off, (size_t)k))
				return edge_side_failed(s, EDGE_XF_ERROR);
		} else if (d->out_len > d->out_off) {
			int rc = d->block == EDGE_RESP_BLOCK_TRAILERS
					 ? keep_trailers(st, d->out + d->out_off, d->out_len - d->out_off)
					 : submit_head(st, d->out + d->out_off, d->out_len - d->out_off);

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
		give_back(st);
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
static void kill_child(struct edge_conn *child, enum edge_close_reason why)
{
	if (child->state == EDGE_CONN_CLOSING)
		return;
	child->kick_step = edge_abort(why);
	child->kick_set = true;
	edge_conn_kick(child);
}

/* A child for stream st: the parent's verdict, identity and snapshot; its client side is
 * the stream. It starts at the upstream connect, from its first kick. */
static struct edge_conn *spawn(struct edge_conn *p, struct edge_h2_stream *st)
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
		return c; /* freed at the next tick; the stream gets its 502 from here */
	}
	return c;
}

int edge_h2_parent_fd(const struct edge_conn *c)
{
	const struct edge_h2_stream *st = c->h2;

	return st && st->h2 ? st->h2->c->side[EDGE_CLIENT].fd : -1;
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

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
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
		if (st->chunked && n[0] != ':' && !hop_field(n, nl) &&
		    ((rc = req_add(st, n, nl)) || (rc = req_add(st, ": ", 2)) ||
		     (rc = req_add(st, v, vl)) || (rc = req_add(st, "\r\n", 2))))
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
		if ((st->cookie_len && append(&st->cookie, &st->cookie_len, &st->cookie_cap, "; ", 2)) ||
		    append(&st->cookie, &st->cookie_len, &st->cookie_cap, v, vl))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (hop_field(n, nl))
		return 0; /* te: trailers is all HTTP/2 allows; HTTP/1.1 hop-by-hop is ours */
	if (nl == 14 && !memcmp(n, "content-length", 14))
		st->has_length = true;
	if (nl == 12 && !memcmp(n, "content-type", 12) && vl >= 16 &&
	    !strncasecmp(v, "application/grpc", 16))
		st->grpc = true;
	if ((rc = req_add(st, n, nl)) || (rc = req_add(st, ": ", 2)) || (rc = req_add(st, v, vl)) ||
	    (rc = req_add(st, "\r\n", 2)))
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
		answer_local(st, 431, "431 Request Header Fields Too Large: over 16 KiB\n");
		return 0;
	}
	if (!strcmp(st->method, "CONNECT") || st->bad_pseudo) {
		answer_local(st, 405, "405 Method Not Allowed: the edge opens no tunnels\n");
		return 0;
	}
	if (st->grpc) {
		answer_grpc(st);
		return 0;
	}
	head_req = !strcmp(st->method, "HEAD");
	bodyless_ok = head_req || !strcmp(st->method, "GET") || !strcmp(st->method, "DELETE") ||
		      !strcmp(st->method, "OPTIONS") || !strcmp(st->method, "TRACE");
	st->chunked = !end && !st->has_length;
	st->req = NULL;
	st->req_len = st->req_cap = 0;
	if ((rc = req_add(st, st->method, strlen(st->method))) || (rc = req_add(st, " ", 1)) ||
	    (rc = req_add(st, st->path ? st->path : "/", st->path ? strlen(st->path) : 1)) ||
	    (rc = req_add(st, " HTTP/1.1\r\n", 11)))
		goto out;
	if (auth && ((rc = req_add(st, "Host: ", 6)) || (rc = req_add(st, auth, strlen(auth))) ||
		     (rc = req_add(st, "\r\n", 2))))
		goto out;
	if (fields_len && (rc = req_add(st, fields, fields_len)))
		goto out;
	if (st->cookie_len && ((rc = req_add(st, "Cookie: ", 8)) ||
			       (rc = req_add(st, st->cookie, st->cookie_len)) ||
			       (rc = req_add(st, "\r\n", 2))))
		goto out;
	if (st->chunked && (rc = req_add(st, "Transfer-Encoding: chunked\r\n", 28)))
		goto out;
	if (end && !st->has_length && !bodyless_ok && (rc = req_add(st, "Content-Length: 0\r\n", 19)))
		goto out;
	if ((rc = req_add(st, "\r\n", 2)))
		goto out;
	if (edge_http_resp_expect(&st->dec, head_req, false))
		rc = -ENOMEM;
	else if (!(st->child = spawn(h->c, st)))
		rc = -ENOMEM;
out:
	free(fields);
	if (rc) {
		answer_local(st, 503, "503 Service Unavailable: the edge is out of memory\n");
		return 0;
	}
	return 0;
}

static void stream_req_end(struct edge_h2_stream *st)
{
	if (st->req_end)
		return;
	st->req_end = true;
	if (st->chunked && st->child && req_add(st, st->in_trailers ? "\r\n" : "0\r\n\r\n",
						    st->in_trailers ? 2 : 5))
		st->resp_failed = true;
	wake_child(st, true);
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
			if (st->chunked && st->child && req_add(st, "0\r\n", 3))
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

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
		   size_t len, void *ud)
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
		if (req_add(st, line, (size_t)n) || req_add(st, data, len) || req_add(st, "\r\n", 2))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (req_add(st, data, len)) {
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	st->unconsumed += len;
	wake_child(st, true);
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
		kill_child(child, code == NGHTTP2_NO_ERROR ? EDGE_CLOSE_DONE
							   : EDGE_CLOSE_H2_STREAM_RESET);
	stream_free(st);
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct edge_h2 *h = ud;

	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		ctr(h)->h2_refused++;
	/* nghttp2's own GOAWAY (ours set closing first): a protocol error, or its flood limits */
	if (f->hd.type == NGHTTP2_GOAWAY && !h->closing)
		goaway(h,
		       f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM ? EDGE_H2_GOAWAY_CONTROL_FLOOD
									 : EDGE_H2_GOAWAY_PROTOCOL,
		       f->goaway.error_code);
	return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
	struct edge_h2 *h = ud;

	pr_debug("h2 invalid frame peer=%s sni=%s type=%u: %s", h->c->peer, h->c->host,
		 f->hd.type, nghttp2_strerror(err));
	return 0;
}

/* ---- the parent's pump ---- */

/* Frames out to the client: 0 all out (or nothing to send), 1 waiting, -1 failed. */
static int write_out(struct edge_conn *c, struct edge_h2 *h)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];

	for (;;) {
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
			if (append(&h->out, &h->out_len, &h->out_cap, p, (size_t)n))
				return -1;
		}
		if (h->out_off == h->out_len)
			break;
		if (cl->sending)
			return 1;
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
	c->deadline_ms = edge_now_ms() + c->w->d->cfg.idle_timeout_ms;
}

static struct edge_step pump(struct edge_conn *c)
{
	struct edge_h2 *h = c->h2s;
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	char buf[EDGE_RELAY_BUF];

	for (;;) {
		int w = write_out(c, h);
		ssize_t n, rv;

		if (w < 0)
			return failed(c);
		if (w == 0 && (h->closing || (!nghttp2_session_want_read(h->s) &&
					      !nghttp2_session_want_write(h->s))))
			return edge_close(h->closing ? h->close_reason : EDGE_CLOSE_DONE);
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

			if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || rv == NGHTTP2_ERR_HEADER_COMP)
				goaway(h, EDGE_H2_GOAWAY_HEADER_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM);
			else
				goaway(h, flood ? EDGE_H2_GOAWAY_CONTROL_FLOOD : EDGE_H2_GOAWAY_PROTOCOL,
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
	c->deadline_ms = edge_now_ms() + 1000;
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
		kill_child(child, EDGE_CLOSE_H2_CLOSED);
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
		stream_free(st);
	}
	nghttp2_session_del(h->s);
	free(h->out);
	free(h);
	c->h2s = NULL;
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
	give_back(st); /* the request bytes nobody will read */
	if (!st->resp_end)
		stream_fail(st);
	nghttp2_session_resume_data(st->h2->s, st->id);
	edge_conn_kick(st->h2->c);
}
