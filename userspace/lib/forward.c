/*
 * Identity to the upstream: the PROXY v2 header builder, the RFC 9440 header
 * block, and the streaming HTTP/1.1 request rewriter. See forward.h.
 *
 * The rewriter is strict where a lenient parser would let a client smuggle a
 * request past it: CRLF only (a bare CR or LF is refused), no obs-fold, no
 * request with both Content-Length and Transfer-Encoding, no transfer coding
 * other than "chunked", no Upgrade or CONNECT (after either the stream stops
 * being HTTP/1.1 and could carry unrewritten requests).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forward.h"
#include "httptok.h"

static const char *const forward_names[] = { "none", "proxy-v2", "headers" };

int edge_forward_parse(const char *s, enum edge_forward *out)
{
	for (size_t i = 0; i < sizeof(forward_names) / sizeof(forward_names[0]); i++) {
		if (!strcmp(s, forward_names[i])) {
			*out = (enum edge_forward)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *edge_forward_name(enum edge_forward f)
{
	return (unsigned int)f < sizeof(forward_names) / sizeof(forward_names[0]) ? forward_names[f]
										  : "none";
}

static const char *const protocol_names[] = { "tcp", "http" };

int edge_protocol_parse(const char *s, enum edge_protocol *out)
{
	for (size_t i = 0; i < sizeof(protocol_names) / sizeof(protocol_names[0]); i++) {
		if (!strcmp(s, protocol_names[i])) {
			*out = (enum edge_protocol)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *edge_protocol_name(enum edge_protocol p)
{
	return (unsigned int)p < sizeof(protocol_names) / sizeof(protocol_names[0])
		       ? protocol_names[p]
		       : "tcp";
}

/* ---- PROXY v2 ---- */

static const unsigned char pp2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

struct wbuf {
	unsigned char *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct wbuf *b, const void *data, size_t len)
{
	if (b->overflow || len > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_u8(struct wbuf *b, unsigned int v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void put_u16(struct wbuf *b, size_t v)
{
	unsigned char c[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(b, c, 2);
}

static void put_tlv(struct wbuf *b, unsigned int type, const void *val, size_t len)
{
	if (len > 0xffff) {
		b->overflow = true;
		return;
	}
	put_u8(b, type);
	put_u16(b, len);
	put(b, val, len);
}

static void put_str_tlv(struct wbuf *b, unsigned int type, const char *s)
{
	if (s && *s)
		put_tlv(b, type, s, strlen(s));
}

/* An IPv4-mapped IPv6 address as IPv4 (a dual-stack listener's view). */
static void unmap(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;

	*out = *in;
	if (in->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;
		struct in6_addr a = s6->sin6_addr;
		in_port_t port = s6->sin6_port;

		memset(out, 0, sizeof(*out));
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		memcpy(&s4->sin_addr, &a.s6_addr[12], 4);
	}
}

int edge_forward_proxy_v2(const struct edge_forward_id *id, unsigned char *out, size_t cap,
			  size_t *len)
{
	struct wbuf b = { .p = out, .cap = cap };
	struct sockaddr_storage src, dst;
	unsigned char ssl[4096];
	struct wbuf s = { .p = ssl, .cap = sizeof(ssl) };
	uint32_t v = id->verify;
	unsigned char vb[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
				(unsigned char)(v >> 8), (unsigned char)v };
	unsigned int fam = 0x00;

	unmap(&id->src, &src);
	unmap(&id->dst, &dst);
	put(&b, pp2_sig, sizeof(pp2_sig));
	put_u8(&b, 0x21); /* version 2, PROXY */
	if (src.ss_family == AF_INET && dst.ss_family == AF_INET)
		fam = 0x11;
	else if (src.ss_family == AF_INET6 && dst.ss_family == AF_INET6)
		fam = 0x21;
	put_u8(&b, fam);
	put_u16(&b, 0); /* the length, filled in below */
	if (fam == 0x11) {
		const struct sockaddr_in *a = (const void *)&src, *z = (const void *)&dst;

		put(&b, &a->sin_addr, 4);
		put(&b, &z->sin_addr, 4);
		put(&b, &a->sin_port, 2);
		put(&b, &z->sin_port, 2);
	} else if (fam == 0x21) {
		const struct sockaddr_in6 *a = (const void *)&src, *z = (const void *)&dst;

		put(&b, &a->sin6_addr, 16);
		put(&b, &z->sin6_addr, 16);
		put(&b, &a->sin6_port, 2);
		put(&b, &z->sin6_port, 2);
	}
	put_str_tlv(&b, EDGE_PP2_TYPE_ALPN, id->alpn);
	put_str_tlv(&b, EDGE_PP2_TYPE_AUTHORITY, id->authority);

	put_u8(&s, EDGE_PP2_CLIENT_SSL | (id->cert_conn ? EDGE_PP2_CLIENT_CERT_CONN : 0) |
			   (id->cert_sess ? EDGE_PP2_CLIENT_CERT_SESS : 0));
	put(&s, vb, 4);
	put_str_tlv(&s, EDGE_PP2_SUBTYPE_SSL_VERSION, id->version);
	put_str_tlv(&s, EDGE_PP2_SUBTYPE_SSL_CN, id->cn);
	put_str_tlv(&s, EDGE_PP2_SUBTYPE_SSL_CIPHER, id->cipher);
	put_str_tlv(&s, EDGE_PP2_SUBTYPE_SSL_SIG_ALG, id->sig_alg);
	put_str_tlv(&s, EDGE_PP2_SUBTYPE_SSL_KEY_ALG, id->key_alg);
	if (s.overflow)
		return -ENOSPC;
	put_tlv(&b, EDGE_PP2_TYPE_SSL, ssl, s.len);
	if (id->sha256)
		put_tlv(&b, EDGE_PP2_TYPE_EDGE_SHA256, id->sha256, 32);
	put_str_tlv(&b, EDGE_PP2_TYPE_EDGE_SERIAL, id->serial);
	put_str_tlv(&b, EDGE_PP2_TYPE_EDGE_VERIFY, id->verify_text);
	if (b.overflow || b.len - 16 > 0xffff)
		return -ENOSPC;
	out[14] = (unsigned char)((b.len - 16) >> 8);
	out[15] = (unsigned char)(b.len - 16);
	*len = b.len;
	return 0;
}

/* ---- RFC 9440 header block ---- */

static size_t b64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

static char *b64(char *o, const unsigned char *in, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = t[in[i] >> 2];
		*o++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = t[in[i + 2] & 63];
	}
	if (i < n) {
		*o++ = t[in[i] >> 2];
		if (i + 1 < n) {
			*o++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = t[(in[i + 1] & 15) << 2];
		} else {
			*o++ = t[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	return o;
}

static char *put_text(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

int edge_forward_headers(const struct edge_forward_id *id, char **out, size_t *len)
{
	const char *verify = id->verify_text && *id->verify_text ? id->verify_text : "NONE";
	size_t need = 64 + strlen(verify);
	char *buf, *o;

	if (id->leaf) {
		need += 32 + b64_len(id->leaf_len);
		for (size_t i = 0; i < id->n_chain; i++)
			need += 8 + b64_len(id->chain_len[i]);
	}
	buf = malloc(need);
	if (!buf)
		return -ENOMEM;
	o = buf;
	if (id->leaf) {
		o = put_text(o, "Client-Cert: :");
		o = b64(o, id->leaf, id->leaf_len);
		o = put_text(o, ":\r\n");
		if (id->n_chain) {
			o = put_text(o, "Client-Cert-Chain: ");
			for (size_t i = 0; i < id->n_chain; i++) {
				o = put_text(o, i ? ", :" : ":");
				o = b64(o, id->chain[i], id->chain_len[i]);
				*o++ = ':';
			}
			o = put_text(o, "\r\n");
		}
	}
	o = put_text(o, "X-Client-Verify: ");
	for (const char *p = verify; *p; p++)
		*o++ = (*p < 0x20 || *p == 0x7f) ? '?' : *p;
	o = put_text(o, "\r\n");
	*out = buf;
	*len = (size_t)(o - buf);
	return 0;
}

/* ---- the HTTP/1.1 request rewriter ---- */

static const char refusal_400[] =
	"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
	"Connection: close\r\n\r\nbad request\n";
static const char refusal_421[] =
	"HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain\r\nContent-Length: 55\r\n"
	"Connection: close\r\n\r\nmisdirected request: Host does not name the TLS server\n";
static const char refusal_431[] =
	"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
	"Content-Length: 33\r\nConnection: close\r\n\r\nrequest head over the 16 KiB cap\n";

const char *edge_http_refusal(int status, size_t *len)
{
	switch (status) {
	case 421:
		*len = sizeof(refusal_421) - 1;
		return refusal_421;
	case 431:
		*len = sizeof(refusal_431) - 1;
		return refusal_431;
	default:
		*len = sizeof(refusal_400) - 1;
		return refusal_400;
	}
}

void edge_http_rw_init(struct edge_http_rw *rw, const char *host, const char *inject,
		       size_t inject_len)
{
	size_t i;

	memset(rw, 0, sizeof(*rw));
	for (i = 0; host && host[i] && i + 1 < sizeof(rw->host); i++)
		rw->host[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
	rw->host[i] = '\0';
	rw->inject = inject;
	rw->inject_len = inject_len;
}

void edge_http_rw_free(struct edge_http_rw *rw)
{
	free(rw->out);
	rw->out = NULL;
	rw->out_len = rw->out_off = rw->out_cap = 0;
	free(rw->buf);
	rw->buf = NULL;
	rw->buf_len = 0;
}

void edge_http_rw_trim(struct edge_http_rw *rw)
{
	if (rw->out_off == rw->out_len) {
		free(rw->out);
		rw->out = NULL;
		rw->out_len = rw->out_off = rw->out_cap = 0;
	}
	if (!rw->buf_len) {
		free(rw->buf);
		rw->buf = NULL;
	}
}

static int refuse(struct edge_http_rw *rw, int status, const char *reason)
{
	rw->refused_between = rw->state == EDGE_HTTP_HEAD;
	rw->state = EDGE_HTTP_FAILED;
	rw->status = status;
	rw->reason = reason;
	return -EPROTO;
}

static int emit(struct edge_http_rw *rw, const void *data, size_t len)
{
	return edge_http_append(&rw->out, &rw->out_len, &rw->out_cap, data, len);
}

/*
 * Gathers bytes into buf until a complete unit: one line (line) or a block
 * ending in an empty line (an empty line alone is a block too). Returns 1 when
 * complete, 0 when it needs more, -EPROTO when refused. *used says how much.
 */
static int gather(struct edge_http_rw *rw, const char *in, size_t len, size_t *used, size_t max,
		  bool line, int too_long_status, const char *too_long)
{
	size_t i = 0;

	if (!rw->buf && !(rw->buf = malloc(EDGE_HTTP_HEAD_MAX)))
		return -ENOMEM;
	while (i < len) {
		unsigned char c = (unsigned char)in[i++];
		unsigned char prev = rw->buf_len ? (unsigned char)rw->buf[rw->buf_len - 1] : 0;

		*used = i;
		if (rw->buf_len >= max)
			return refuse(rw, too_long_status, too_long);
		if (prev == '\r' && c != '\n')
			return refuse(rw, 400, "bare_cr");
		if (c == '\n' && prev != '\r')
			return refuse(rw, 400, "bare_lf");
		if (c == '\0')
			return refuse(rw, 400, "nul_byte");
		rw->buf[rw->buf_len++] = (char)c;
		if (c != '\n')
			continue;
		if (line || rw->buf_len == 2 ||
		    (rw->buf_len >= 4 && !memcmp(rw->buf + rw->buf_len - 4, "\r\n\r\n", 4)))
			return 1;
	}
	*used = i;
	return 0;
}

/* The host part of an authority ("Host" value or absolute-form), without
 * port, compared case-insensitively with the SNI. */
static bool host_matches(const struct edge_http_rw *rw, const char *v, size_t n)
{
	size_t h = n;

	if (n && v[0] == '[') {
		const char *rb = memchr(v, ']', n);

		if (!rb)
			return false;
		h = (size_t)(rb - v) + 1;
		if (h < n && v[h] != ':')
			return false;
	} else {
		const char *colon = memchr(v, ':', n);

		if (colon)
			h = (size_t)(colon - v);
	}
	for (size_t i = h + 1; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	if (h && v[h - 1] == '.')
		h--; /* a fully qualified name's root dot */
	return h && h == strlen(rw->host) && !strncasecmp(v, rw->host, h);
}

static bool ours(const char *name, size_t n)
{
	return edge_http_name_is(name, n, "client-cert") ||
	       edge_http_name_is(name, n, "client-cert-chain") ||
	       edge_http_name_is(name, n, "x-client-verify");
}

struct field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* The fields --protocol http keeps to itself. */
static bool hop_by_hop(const char *name, size_t n)
{
	return edge_http_name_is(name, n, "connection") ||
	       edge_http_name_is(name, n, "keep-alive") ||
	       edge_http_name_is(name, n, "proxy-connection");
}

/* Whether a Connection value has the token close. (An HTTP/1.0 client's
 * keep-alive is not honoured: its connection ends after each response.) */
static void conn_tokens(const char *v, size_t n, bool *close)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (edge_http_name_is(v + s, e - s, "close"))
			*close = true;
	}
}

/* Splits one field line (without its CRLF); false when it is malformed. */
static int parse_field(struct edge_http_rw *rw, const char *p, size_t n, struct field *f)
{
	const char *colon = memchr(p, ':', n);
	const char *v, *e = p + n;

	if (n && (p[0] == ' ' || p[0] == '\t'))
		return refuse(rw, 400, "obs_fold");
	if (!colon || colon == p)
		return refuse(rw, 400, "bad_header");
	for (const char *q = p; q < colon; q++)
		if (!edge_http_is_tchar((unsigned char)*q))
			return refuse(rw, 400, "bad_header");
	for (v = colon + 1; v < e; v++)
		if (!edge_http_is_vchar_or_ws((unsigned char)*v))
			return refuse(rw, 400, "bad_header");
	v = colon + 1;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	f->name = p;
	f->name_len = (size_t)(colon - p);
	f->value = v;
	f->value_len = (size_t)(e - v);
	return 0;
}

static int parse_request_line(struct edge_http_rw *rw, const char *p, size_t n, bool *http10)
{
	const char *sp1 = memchr(p, ' ', n), *sp2, *t, *ver;
	size_t tl, vl;

	if (!sp1 || sp1 == p)
		return refuse(rw, 400, "bad_request_line");
	for (const char *q = p; q < sp1; q++)
		if (!edge_http_is_tchar((unsigned char)*q))
			return refuse(rw, 400, "bad_request_line");
	t = sp1 + 1;
	sp2 = memchr(t, ' ', (size_t)(p + n - t));
	if (!sp2 || sp2 == t)
		return refuse(rw, 400, "bad_request_line");
	tl = (size_t)(sp2 - t);
	ver = sp2 + 1;
	vl = (size_t)(p + n - ver);
	if (vl == 8 && !memcmp(ver, "HTTP/2.0", 8) && sp1 - p == 3 && !memcmp(p, "PRI", 3))
		return refuse(rw, 400, "http2_preface");
	if (vl != 8 || memcmp(ver, "HTTP/1.", 7) || (ver[7] != '0' && ver[7] != '1'))
		return refuse(rw, 400, "bad_version");
	*http10 = ver[7] == '0';
	for (size_t i = 0; i < tl; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return refuse(rw, 400, "bad_request_line");
	if (sp1 - p == 7 && !memcmp(p, "CONNECT", 7))
		return refuse(rw, 400, "connect");
	if (t[0] == '/' || (tl == 1 && t[0] == '*'))
		return 0;
	/* absolute-form: its authority overrides Host, so it must name the SNI too */
	{
		size_t skip = tl > 7 && !strncasecmp(t, "http://", 7)    ? 7
			      : tl > 8 && !strncasecmp(t, "https://", 8) ? 8
									 : 0;
		const char *a = t + skip, *ae = a;

		if (!skip)
			return refuse(rw, 400, "bad_target");
		while (ae < t + tl && *ae != '/' && *ae != '?' && *ae != '#')
			ae++;
		if (memchr(a, '@', (size_t)(ae - a)))
			return refuse(rw, 400, "bad_target");
		if (!host_matches(rw, a, (size_t)(ae - a)))
			return refuse(rw, 421, "host_mismatch");
	}
	return 0;
}

/* A complete head is in buf: check it, emit it rewritten, pick the body framing. */
static int process_head(struct edge_http_rw *rw)
{
	const char *p = rw->buf, *end = rw->buf + rw->buf_len - 2; /* before the empty line */
	const char *eol = memmem(p, rw->buf_len, "\r\n", 2);
	unsigned int n_host = 0, n_cl = 0, n_te = 0;
	struct field host = { 0 }, te = { 0 }, cl = { 0 };
	bool http10 = false;
	uint64_t len = 0;
	int rc;

	if ((rc = parse_request_line(rw, p, (size_t)(eol - p), &http10)))
		return rc;
	for (const char *l = eol + 2; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		struct field f;

		if ((rc = parse_field(rw, l, (size_t)(le - l), &f)))
			return rc;
		if (edge_http_name_is(f.name, f.name_len, "host"))
			n_host++, host = f;
		else if (edge_http_name_is(f.name, f.name_len, "content-length"))
			n_cl++, cl = f;
		else if (edge_http_name_is(f.name, f.name_len, "transfer-encoding"))
			n_te++, te = f;
		else if (edge_http_name_is(f.name, f.name_len, "upgrade"))
			return refuse(rw, 400, "upgrade");
		l = le + 2;
	}
	if (rw->hop) {
		bool close = http10;

		for (const char *l = eol + 2; l < end;) {
			const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
			struct field f;

			parse_field(rw, l, (size_t)(le - l), &f); /* checked above */
			if (edge_http_name_is(f.name, f.name_len, "connection"))
				conn_tokens(f.value, f.value_len, &close);
			l = le + 2;
		}
		rw->last_close = close;
		rw->last_head = !memcmp(p, "HEAD ", 5);
	}
	if (n_host > 1)
		return refuse(rw, 400, "duplicate_host");
	if (!n_host && !http10)
		return refuse(rw, 400, "missing_host");
	if (n_host && !host_matches(rw, host.value, host.value_len))
		return refuse(rw, 421, "host_mismatch");
	if (n_te && n_cl)
		return refuse(rw, 400, "content_length_and_transfer_encoding");
	if (n_te && (n_te > 1 || http10 || !edge_http_name_is(te.value, te.value_len, "chunked")))
		return refuse(rw, 400, "bad_transfer_encoding");
	if (n_cl > 1)
		return refuse(rw, 400, "duplicate_content_length");
	if (n_cl && !edge_http_parse_length(cl.value, cl.value_len, &len))
		return refuse(rw, 400, "bad_content_length");

	/* Emit: the request line and every field but ours, then the edge's. */
	if ((rc = emit(rw, p, (size_t)(eol - p) + 2)))
		return rc;
	for (const char *l = eol + 2; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		const char *colon = memchr(l, ':', (size_t)(le - l));

		if (!ours(l, (size_t)(colon - l)) &&
		    !(rw->hop && hop_by_hop(l, (size_t)(colon - l))) &&
		    (rc = emit(rw, l, (size_t)(le - l) + 2)))
			return rc;
		l = le + 2;
	}
	if ((rc = emit(rw, rw->inject, rw->inject_len)) || (rc = emit(rw, "\r\n", 2)))
		return rc;
	rw->requests++;
	rw->state = n_te ? EDGE_HTTP_CHUNK_LINE : len ? EDGE_HTTP_BODY : EDGE_HTTP_HEAD;
	rw->left = len;
	return 0;
}

static int process_chunk_line(struct edge_http_rw *rw)
{
	const char *p = rw->buf, *e = rw->buf + rw->buf_len - 2;
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
			return refuse(rw, 400, "bad_chunk_size");
		size = size * 16 + d;
	}
	if (!digits)
		return refuse(rw, 400, "bad_chunk_size");
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p < e && *p != ';')
		return refuse(rw, 400, "bad_chunk_size");
	for (; p < e; p++)
		if (!edge_http_is_vchar_or_ws((unsigned char)*p))
			return refuse(rw, 400, "bad_chunk_size");
	rw->left = size;
	rw->state = size ? EDGE_HTTP_CHUNK_DATA : EDGE_HTTP_TRAILER;
	return emit(rw, rw->buf, rw->buf_len);
}

static int process_trailers(struct edge_http_rw *rw)
{
	const char *end = rw->buf + rw->buf_len - 2;
	int rc;

	for (const char *l = rw->buf; l < end;) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2);
		struct field f;

		if ((rc = parse_field(rw, l, (size_t)(le - l), &f)))
			return rc;
		if (!ours(f.name, f.name_len) && (rc = emit(rw, l, (size_t)(le - l) + 2)))
			return rc;
		l = le + 2;
	}
	rw->state = EDGE_HTTP_HEAD;
	return emit(rw, "\r\n", 2);
}

ssize_t edge_http_rw_feed(struct edge_http_rw *rw, const char *in, size_t len)
{
	size_t i = 0;

	if (rw->state == EDGE_HTTP_FAILED)
		return -EPROTO;
	if (rw->out_off == rw->out_len)
		rw->out_off = rw->out_len = 0;
	while (i < len) {
		size_t used = 0, take;
		int rc = 0;

		switch (rw->state) {
		case EDGE_HTTP_HEAD:
			if (rw->hop && rw->last_close) {
				/* After a close request nothing more is a request (RFC 9112
				 * 9.6): the rest is dropped, the connection ends after its
				 * response. */
				rw->dropped += len - i;
				return (ssize_t)len;
			}
			rc = gather(rw, in + i, len - i, &used, EDGE_HTTP_HEAD_MAX, false, 431,
				    "head_too_large");
			i += used;
			if (rc == 1 && rw->buf_len == 2) {
				/* an empty line before a request line: skipped, bounded */
				rw->buf_len = 0;
				rw->skipped += 2;
				if (rw->skipped > EDGE_HTTP_HEAD_MAX)
					rc = refuse(rw, 400, "empty_lines");
				else
					rc = 0;
			} else if (rc == 1) {
				rc = process_head(rw);
				rw->buf_len = 0;
				rw->skipped = 0;
				if (!rc)
					return (ssize_t)i; /* one head at a time */
			}
			break;
		case EDGE_HTTP_BODY:
		case EDGE_HTTP_CHUNK_DATA:
			take = len - i < rw->left ? len - i : (size_t)rw->left;
			rc = emit(rw, in + i, take);
			i += take;
			rw->left -= take;
			if (!rw->left)
				rw->state = rw->state == EDGE_HTTP_BODY ? EDGE_HTTP_HEAD
									: EDGE_HTTP_CHUNK_CRLF;
			break;
		case EDGE_HTTP_CHUNK_LINE:
			rc = gather(rw, in + i, len - i, &used, EDGE_HTTP_LINE_MAX, true, 400,
				    "bad_chunk_size");
			i += used;
			if (rc == 1) {
				rc = process_chunk_line(rw);
				rw->buf_len = 0;
			}
			break;
		case EDGE_HTTP_CHUNK_CRLF:
			/* exactly CRLF after the chunk's data, judged byte by byte */
			if (in[i] != (rw->buf_len ? '\n' : '\r')) {
				rc = refuse(rw, 400, "bad_chunk_end");
				break;
			}
			i++;
			if (++rw->buf_len == 2) {
				rw->buf_len = 0;
				rw->state = EDGE_HTTP_CHUNK_LINE;
				rc = emit(rw, "\r\n", 2);
			}
			break;
		case EDGE_HTTP_TRAILER:
			rc = gather(rw, in + i, len - i, &used, EDGE_HTTP_HEAD_MAX, false, 400,
				    "trailers_too_large");
			i += used;
			if (rc == 1) {
				rc = process_trailers(rw);
				rw->buf_len = 0;
			}
			break;
		case EDGE_HTTP_FAILED:
			return -EPROTO;
		}
		if (rc < 0)
			return rc == -ENOMEM ? -ENOMEM : -EPROTO;
	}
	return (ssize_t)i;
}
