/*
 * The response direction of `--protocol http`: a streaming reader of the
 * upstream's HTTP/1.1 responses. See httpresp.h.
 *
 * Modelled on the request rewriter in forward.c (gather, emit, one head at a
 * time), with one difference in spirit: the request side refuses what it
 * cannot parse, this side never refuses. The upstream is the edge's own
 * (configured) server, but it is not trusted to be well-formed: whatever
 * cannot be framed with certainty passes to the client as it is, raw to the
 * end, and the connection is not reused ("broken"). Nothing is ever lost:
 * the bytes gathered so far go to out unchanged, the rest passes raw.
 *
 * Each call is either absorbing (head, chunk line, chunk CRLF, trailers:
 * gathered into buf and emitted to out) or raw (body bytes, chunk data,
 * close-delimited): never both, so the caller sends out[] first and then the
 * raw bytes, and the client's byte order is the upstream's.
 *
 * Choices the header leaves open:
 *   - HTTP/1.0 responses are never reusable, keep-alive or not (simpler, and
 *     HTTP/1.0 keep-alive is rare enough not to matter); a minor version
 *     above 1 is read as 1.1 (RFC 9112 2.6).
 *   - The status code is three digits, 100..599; the SP after it may be
 *     missing when the reason is empty ("HTTP/1.1 200").
 *   - Content-Length is checked on every final response without
 *     Transfer-Encoding, also those that have no body (HEAD, 204, 304): one
 *     that cannot be read means the upstream cannot be trusted to frame.
 *   - Transfer-Encoding in an HTTP/1.0 response is faulty framing (RFC 9112
 *     6.1): read to the close.
 *   - 101 takes its request from the queue but is never a complete response:
 *     the rest of the stream is not HTTP (UNTIL_CLOSE; close_done is not set,
 *     so the tunnel keeps flowing). The request rewriter refuses Upgrade, so
 *     it should not happen.
 *   - A 1xx head is passed unchanged, also for a close request; only the
 *     final response is rewritten. Connection: close on a 1xx, or an HTTP/1.0
 *     1xx, also spends the connection.
 *   - A head, chunk line or trailer section that turns out to be broken is
 *     emitted as received, never rewritten (even for a close request).
 *   - A chunk extension or trailer field is passed unchanged; no empty line
 *     is allowed before a status line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpresp.h"
#include "httptok.h"

#define CONN_CLOSE "Connection: close\r\n"

void edge_http_resp_init(struct edge_http_resp *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->reusable = true;
}

void edge_http_resp_free(struct edge_http_resp *rs)
{
	free(rs->out);
	rs->out = NULL;
	rs->out_len = rs->out_off = rs->out_cap = 0;
	free(rs->buf);
	rs->buf = NULL;
	rs->buf_len = 0;
}

void edge_http_resp_trim(struct edge_http_resp *rs)
{
	if (rs->out_off == rs->out_len) {
		free(rs->out);
		rs->out = NULL;
		rs->out_len = rs->out_off = rs->out_cap = 0;
	}
	if (!rs->buf_len) {
		free(rs->buf);
		rs->buf = NULL;
	}
}

int edge_http_resp_expect(struct edge_http_resp *rs, bool head, bool close)
{
	unsigned int slot;

	if (rs->pending >= EDGE_HTTP_PIPELINE_MAX)
		return -ENOSPC;
	slot = (rs->q_first + rs->pending) % EDGE_HTTP_PIPELINE_MAX;
	rs->q[slot].head = head;
	rs->q[slot].close = close;
	rs->pending++;
	return 0;
}

bool edge_http_resp_idle(const struct edge_http_resp *rs)
{
	/* out drained too: a pooled connection must not carry this client's bytes */
	return rs->state == EDGE_RESP_HEAD && !rs->buf_len && !rs->pending && rs->reusable &&
	       !rs->broken && rs->out_off == rs->out_len;
}

bool edge_http_resp_eof_ok(const struct edge_http_resp *rs)
{
	if (rs->broken)
		return false; /* nothing can be said of a stream that could not be read */
	if (rs->state == EDGE_RESP_UNTIL_CLOSE)
		return true;
	return rs->state == EDGE_RESP_HEAD && !rs->buf_len;
}

/* ---- small helpers (the shared ones are in httptok.h) ---- */

static int emit(struct edge_http_resp *rs, const void *data, size_t len)
{
	return edge_http_append(&rs->out, &rs->out_len, &rs->out_cap, data, len);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The next element of a comma-separated list value v[*pos..n), without its
 * OWS; false when there is none left. Empty elements are returned as such.
 */
static bool list_next(const char *v, size_t n, size_t *pos, const char **el, size_t *el_len)
{
	size_t i = *pos, s, e;

	if (i > n)
		return false;
	while (i < n && is_ows(v[i]))
		i++;
	s = i;
	while (i < n && v[i] != ',')
		i++;
	e = i;
	while (e > s && is_ows(v[e - 1]))
		e--;
	*el = v + s;
	*el_len = e - s;
	*pos = i + 1; /* past the comma, or past the end: the last element */
	return true;
}

struct field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* Splits one field line (without its CRLF); false when it is malformed
 * (obs-fold, no name, a non-token name, a control character in the value). */
static bool parse_field(const char *p, size_t n, struct field *f)
{
	const char *colon = memchr(p, ':', n);
	const char *v, *e = p + n;

	if (!colon || colon == p)
		return false;
	for (const char *q = p; q < colon; q++)
		if (!edge_http_is_tchar((unsigned char)*q))
			return false; /* also a leading SP/HT: obs-fold */
	for (v = colon + 1; v < e; v++)
		if (!edge_http_is_vchar_or_ws((unsigned char)*v))
			return false;
	v = colon + 1;
	while (v < e && is_ows(*v))
		v++;
	while (e > v && is_ows(e[-1]))
		e--;
	f->name = p;
	f->name_len = (size_t)(colon - p);
	f->value = v;
	f->value_len = (size_t)(e - v);
	return true;
}

/* ---- the reader ---- */

/* The stream cannot be read: what was gathered goes out unchanged, the rest raw. */
static int broken(struct edge_http_resp *rs)
{
	int rc = emit(rs, rs->buf, rs->buf_len);

	rs->buf_len = 0;
	rs->state = EDGE_RESP_UNTIL_CLOSE;
	rs->broken = true;
	rs->reusable = false;
	return rc;
}

/* A final response is complete (its body too). */
static void response_done(struct edge_http_resp *rs)
{
	rs->responses++;
	if (rs->cur_close)
		rs->close_done = true;
	rs->cur_head = rs->cur_close = false;
	rs->state = EDGE_RESP_HEAD;
	rs->left = 0;
}

/*
 * Gathers bytes into buf until a complete unit: one line (line) or a block
 * ending in an empty line (an empty line alone is a block too). Returns 1 when
 * complete, 0 when it needs more, -EPROTO when the bytes cannot be a unit
 * (bare CR or LF, NUL, over max): then *used stops before the offending byte,
 * which is left for the raw stream.
 */
static int gather(struct edge_http_resp *rs, const char *in, size_t len, size_t *used, size_t max,
		  bool line)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		unsigned char prev = rs->buf_len ? (unsigned char)rs->buf[rs->buf_len - 1] : 0;

		if (rs->buf_len >= max || (prev == '\r' && c != '\n') ||
		    (c == '\n' && prev != '\r') || c == '\0') {
			*used = i;
			return -EPROTO;
		}
		rs->buf[rs->buf_len++] = (char)c;
		if (c != '\n')
			continue;
		if (line || rs->buf_len == 2 ||
		    (rs->buf_len >= 4 && !memcmp(rs->buf + rs->buf_len - 4, "\r\n\r\n", 4))) {
			*used = i + 1;
			return 1;
		}
	}
	*used = i;
	return 0;
}

/* "HTTP/1.x SSS reason" (without its CRLF); false when it is not one. */
static bool parse_status_line(const char *p, size_t n, int *status, bool *http10)
{
	if (n < 12 || memcmp(p, "HTTP/1.", 7) || !is_digit(p[7]) || p[8] != ' ' ||
	    !is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]))
		return false;
	if (p[9] < '1' || p[9] > '5')
		return false;
	if (n > 12 && p[12] != ' ')
		return false;
	for (size_t i = 13; i < n; i++)
		if (!edge_http_is_vchar_or_ws((unsigned char)p[i]))
			return false;
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	*http10 = p[7] == '0';
	return true;
}

/* The head in buf, as the client gets it: unchanged, or (close) without its
 * Connection and Keep-Alive fields and with "Connection: close". */
static int emit_head(struct edge_http_resp *rs, bool close)
{
	const char *p = rs->buf, *end = rs->buf + rs->buf_len - 2; /* before the empty line */
	const char *eol = memmem(p, rs->buf_len, "\r\n", 2);
	int rc;

	if (!close)
		return emit(rs, rs->buf, rs->buf_len);
	if ((rc = emit(rs, p, (size_t)(eol - p) + 2)))
		return rc;
	for (const char *l = eol + 2; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		const char *colon = memchr(l, ':', (size_t)(le - l)); /* checked by parse_field */
		size_t nl = (size_t)(colon - l);

		if (!edge_http_name_is(l, nl, "connection") &&
		    !edge_http_name_is(l, nl, "keep-alive") &&
		    (rc = emit(rs, l, (size_t)(le - l) + 2)))
			return rc;
		l = le + 2;
	}
	if ((rc = emit(rs, CONN_CLOSE, strlen(CONN_CLOSE))))
		return rc;
	return emit(rs, "\r\n", 2);
}

/* What the fields of a head say about framing and the connection. */
struct head_info {
	unsigned int n_cl, n_te; /* fields */
	bool cl_set;             /* cl holds the first value */
	bool cl_bad;             /* a Content-Length that cannot be read, or two differ */
	uint64_t cl;
	bool te_chunked; /* the last transfer coding is chunked */
	bool conn_close; /* a Connection field has the close token */
};

static void scan_content_length(const struct field *f, struct head_info *h)
{
	const char *el;
	size_t pos = 0, el_len;
	uint64_t v;

	h->n_cl++;
	while (list_next(f->value, f->value_len, &pos, &el, &el_len)) {
		if (!edge_http_parse_length(el, el_len, &v) || (h->cl_set && v != h->cl)) {
			h->cl_bad = true;
			return;
		}
		h->cl = v;
		h->cl_set = true;
	}
}

static void scan_transfer_encoding(const struct field *f, struct head_info *h)
{
	const char *el;
	size_t pos = 0, el_len;

	h->n_te++;
	while (list_next(f->value, f->value_len, &pos, &el, &el_len))
		if (el_len) /* empty list elements do not count (RFC 9110 5.6.1) */
			h->te_chunked = edge_http_name_is(el, el_len, "chunked");
}

static void scan_connection(const struct field *f, struct head_info *h)
{
	const char *el;
	size_t pos = 0, el_len;

	while (list_next(f->value, f->value_len, &pos, &el, &el_len))
		if (edge_http_name_is(el, el_len, "close"))
			h->conn_close = true;
}

/*
 * A complete head is in buf: read it, emit it (rewritten for a close
 * request), pick the framing of what follows. A head that cannot be read
 * makes the stream broken (not an error).
 */
static int process_head(struct edge_http_resp *rs)
{
	const char *p = rs->buf, *end = rs->buf + rs->buf_len - 2; /* before the empty line */
	const char *eol = memmem(p, rs->buf_len, "\r\n", 2);
	struct head_info h = { 0 };
	bool http10 = false, no_body;
	int status = 0, rc;

	if (!parse_status_line(p, (size_t)(eol - p), &status, &http10))
		return broken(rs);
	rs->status = status;
	rs->block = EDGE_RESP_BLOCK_HEAD;
	for (const char *l = eol + 2; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		struct field f;

		if (!parse_field(l, (size_t)(le - l), &f))
			return broken(rs);
		if (edge_http_name_is(f.name, f.name_len, "content-length"))
			scan_content_length(&f, &h);
		else if (edge_http_name_is(f.name, f.name_len, "transfer-encoding"))
			scan_transfer_encoding(&f, &h);
		else if (edge_http_name_is(f.name, f.name_len, "connection"))
			scan_connection(&f, &h);
		l = le + 2;
	}
	if (h.conn_close || http10)
		rs->reusable = false;

	/* Interim (1xx but 101): as it is; the final response to the same request follows. */
	if (status < 200 && status != 101)
		return emit(rs, rs->buf, rs->buf_len);

	if (!h.n_te && h.cl_bad)
		return broken(rs); /* before the request is taken: the stream is raw now */

	/* A final response: it answers the oldest request, or none (read as a GET's). */
	if (rs->pending) {
		rs->cur_head = rs->q[rs->q_first].head;
		rs->cur_close = rs->q[rs->q_first].close;
		rs->q_first = (rs->q_first + 1) % EDGE_HTTP_PIPELINE_MAX;
		rs->pending--;
	} else {
		rs->cur_head = rs->cur_close = false;
		rs->reusable = false;
	}

	if (status == 101) {
		/* Switching Protocols: what follows is not HTTP. */
		rs->reusable = false;
		rs->state = EDGE_RESP_UNTIL_CLOSE;
		return emit(rs, rs->buf, rs->buf_len);
	}
	if ((rc = emit_head(rs, rs->cur_close)))
		return rc;

	no_body = rs->cur_head || status == 204 || status == 304;
	if (no_body) {
		response_done(rs);
	} else if (h.n_te) {
		if (h.n_cl)
			rs->reusable = false; /* both: TE wins, but the sender is suspect */
		if (h.te_chunked && !http10) {
			rs->state = EDGE_RESP_CHUNK_LINE;
		} else {
			rs->state = EDGE_RESP_UNTIL_CLOSE;
			rs->reusable = false;
		}
	} else if (h.n_cl) {
		rs->left = h.cl;
		if (h.cl)
			rs->state = EDGE_RESP_BODY;
		else
			response_done(rs);
	} else {
		rs->state = EDGE_RESP_UNTIL_CLOSE; /* close-delimited */
		rs->reusable = false;
	}
	return 0;
}

/* A chunk line is in buf: hex size (at most 15 digits), BWS, extensions. */
static int process_chunk_line(struct edge_http_resp *rs)
{
	const char *p = rs->buf, *e = rs->buf + rs->buf_len - 2;
	uint64_t size = 0;
	size_t digits = 0;

	for (; p < e; p++, digits++) {
		unsigned char c = (unsigned char)*p;
		unsigned int d = c >= '0' && c <= '9'                     ? c - '0'
				 : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
									  : 16;

		if (d == 16)
			break;
		if (digits == 15)
			return broken(rs);
		size = size * 16 + d;
	}
	if (!digits)
		return broken(rs);
	while (p < e && is_ows(*p))
		p++;
	if (p < e && *p != ';')
		return broken(rs);
	for (; p < e; p++)
		if (!edge_http_is_vchar_or_ws((unsigned char)*p))
			return broken(rs);
	rs->left = size;
	rs->state = size ? EDGE_RESP_CHUNK_DATA : EDGE_RESP_TRAILER;
	return rs->decode ? 0 : emit(rs, rs->buf, rs->buf_len);
}

/* The trailer section (possibly just the empty line) is in buf. */
static int process_trailers(struct edge_http_resp *rs)
{
	const char *end = rs->buf + rs->buf_len - 2;
	int rc;

	for (const char *l = rs->buf; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		struct field f;

		if (!parse_field(l, (size_t)(le - l), &f))
			return broken(rs);
		l = le + 2;
	}
	if (rs->decode && rs->buf_len > 2)
		rs->block = EDGE_RESP_BLOCK_TRAILERS;
	if ((!rs->decode || rs->buf_len > 2) && (rc = emit(rs, rs->buf, rs->buf_len)))
		return rc;
	response_done(rs);
	return 0;
}

static bool raw_state(enum edge_resp_state s)
{
	return s == EDGE_RESP_BODY || s == EDGE_RESP_CHUNK_DATA || s == EDGE_RESP_UNTIL_CLOSE;
}

/* Body bytes: as many as the framing allows, passed unchanged. */
static size_t pass(struct edge_http_resp *rs, size_t len)
{
	size_t take;

	if (rs->state == EDGE_RESP_UNTIL_CLOSE)
		return len;
	take = len < rs->left ? len : (size_t)rs->left;
	rs->left -= take;
	if (!rs->left) {
		if (rs->state == EDGE_RESP_BODY)
			response_done(rs);
		else
			rs->state = EDGE_RESP_CHUNK_CRLF;
	}
	return take;
}

ssize_t edge_http_resp_feed(struct edge_http_resp *rs, const char *in, size_t len, bool *raw)
{
	size_t i = 0;

	*raw = false;
	if (rs->out_off == rs->out_len)
		rs->out_off = rs->out_len = 0;
	rs->block = EDGE_RESP_BLOCK_NONE;
	if (rs->close_done)
		return 0;
	if (!rs->buf && len && !(rs->buf = malloc(EDGE_HTTP_HEAD_MAX)))
		return -ENOMEM;
	/* Absorbing: until a unit that must be returned at once, or a raw state. */
	while (i < len && !raw_state(rs->state)) {
		size_t used = 0;
		int rc = 0;

		switch (rs->state) {
		case EDGE_RESP_HEAD:
			rc = gather(rs, in + i, len - i, &used, EDGE_HTTP_HEAD_MAX, false);
			i += used;
			if (rc < 0)
				rc = broken(rs);
			else if (rc == 1 && !(rc = process_head(rs))) {
				rs->buf_len = 0;
				return (ssize_t)i; /* one head at a time */
			}
			break;
		case EDGE_RESP_CHUNK_LINE:
			rc = gather(rs, in + i, len - i, &used, EDGE_HTTP_LINE_MAX, true);
			i += used;
			if (rc < 0)
				rc = broken(rs);
			else if (rc == 1) {
				rc = process_chunk_line(rs);
				rs->buf_len = 0;
			}
			break;
		case EDGE_RESP_CHUNK_CRLF:
			/* exactly CRLF after the chunk's data, judged byte by byte */
			if (in[i] != (rs->buf_len ? '\n' : '\r')) {
				rc = broken(rs);
				break;
			}
			rs->buf[rs->buf_len++] = in[i++];
			if (rs->buf_len == 2) {
				rc = rs->decode ? 0 : emit(rs, rs->buf, 2);
				rs->buf_len = 0;
				rs->state = EDGE_RESP_CHUNK_LINE;
			}
			break;
		case EDGE_RESP_TRAILER:
			rc = gather(rs, in + i, len - i, &used, EDGE_HTTP_HEAD_MAX, false);
			i += used;
			if (rc < 0)
				rc = broken(rs);
			else if (rc == 1 && !(rc = process_trailers(rs))) {
				rs->buf_len = 0;
				return (ssize_t)i; /* the response is complete (or broken) */
			}
			break;
		default:
			break;
		}
		if (rc < 0)
			return rc; /* -ENOMEM: the only error */
	}
	/* Raw: only when nothing was absorbed by this call, so that out (the
	 * bytes before) still goes first. */
	if (i == 0 && len && raw_state(rs->state)) {
		*raw = true;
		return (ssize_t)pass(rs, len);
	}
	return (ssize_t)i;
}

int edge_http_resp_out_append(struct edge_http_resp *rs, const char *p, size_t n)
{
	return emit(rs, p, n);
}
