/*
 * Identity to the upstream, per SNI object (`--forward none|proxy-v2|headers`).
 *
 * - proxy-v2: a PROXY protocol v2 header written first on the upstream TCP
 *   connection: the client's addresses, PP2_TYPE_ALPN (the protocol negotiated,
 *   when one was), PP2_TYPE_AUTHORITY (the SNI),
 *   PP2_TYPE_SSL (client bits, verify result, version, CN, cipher, signature
 *   and key algorithm of the edge's certificate) and our own TLVs (below).
 * - headers: every HTTP/1.1 request head on the connection is rewritten: the
 *   client's own Client-Cert, Client-Cert-Chain and X-Client-Verify fields are
 *   removed, the edge's are added (RFC 9440), and Host must name the SNI.
 *
 * Pure: no I/O, no OpenSSL, no printing (it is also built into a fuzzer).
 */
#ifndef EDGE_FORWARD_H
#define EDGE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum edge_forward {
	EDGE_FORWARD_NONE = 0,
	EDGE_FORWARD_PROXY_V2,
	EDGE_FORWARD_HEADERS,
};

/* "none", "proxy-v2", "headers"; -EINVAL for anything else. */
int edge_forward_parse(const char *s, enum edge_forward *out);
const char *edge_forward_name(enum edge_forward f);

/*
 * What the upstream speaks, per SNI object (`--protocol tcp|http`). tcp: the
 * edge relays bytes and knows nothing of their meaning. http: HTTP/1.1; the
 * edge reads request and response framing, so that an upstream connection
 * outlives its client connection (a per-worker keep-alive pool, see pool.c).
 */
enum edge_protocol {
	EDGE_PROTOCOL_TCP = 0,
	EDGE_PROTOCOL_HTTP,
};

/* "tcp", "http"; -EINVAL for anything else. */
int edge_protocol_parse(const char *s, enum edge_protocol *out);
const char *edge_protocol_name(enum edge_protocol p);

/* PROXY v2 TLV types (PP2_TYPE_* and PP2_SUBTYPE_SSL_* from the spec) and ours,
 * in the range the spec leaves to private use (0xE0..0xEF). */
#define EDGE_PP2_TYPE_ALPN 0x01
#define EDGE_PP2_TYPE_AUTHORITY 0x02
#define EDGE_PP2_TYPE_SSL 0x20
#define EDGE_PP2_SUBTYPE_SSL_VERSION 0x21
#define EDGE_PP2_SUBTYPE_SSL_CN 0x22
#define EDGE_PP2_SUBTYPE_SSL_CIPHER 0x23
#define EDGE_PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define EDGE_PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define EDGE_PP2_CLIENT_SSL 0x01
#define EDGE_PP2_CLIENT_CERT_CONN 0x02
#define EDGE_PP2_CLIENT_CERT_SESS 0x04
#define EDGE_PP2_TYPE_EDGE_SHA256 0xE0 /* SHA-256 of the leaf's DER, 32 raw bytes */
#define EDGE_PP2_TYPE_EDGE_SERIAL 0xE1 /* the leaf's serial, upper-case hex (ASCII) */
#define EDGE_PP2_TYPE_EDGE_VERIFY 0xE2 /* SUCCESS, NONE or FAILED:reason (ASCII) */
#define EDGE_PP2_MAX 4096              /* our header's bound: longer strings give -ENOSPC */

/* What the edge knows about one client connection. Strings may be NULL. */
struct edge_forward_id {
	struct sockaddr_storage src, dst; /* client's address, the address it reached */
	const char *authority;            /* the SNI the client sent */
	const char *alpn;                 /* the protocol ALPN chose, or NULL */
	bool cert_conn, cert_sess;        /* a certificate on this connection / session */
	uint32_t verify;                  /* 0: presented and verified; else not */
	const char *verify_text;          /* SUCCESS, NONE, FAILED:reason */
	const char *version, *cipher, *sig_alg, *key_alg, *cn, *serial;
	const unsigned char *sha256; /* 32 bytes, or NULL */
	const unsigned char *leaf;   /* DER, or NULL: no certificate */
	size_t leaf_len;
	const unsigned char *const *chain; /* DER each, the client's chain after the leaf */
	const size_t *chain_len;
	size_t n_chain;
};

/* The PROXY v2 header into out; -ENOSPC when it does not fit in cap.
 * Unlike families (or neither IPv4 nor IPv6) give an AF_UNSPEC header. */
int edge_forward_proxy_v2(const struct edge_forward_id *id, unsigned char *out, size_t cap,
			  size_t *len);

/* The header lines added to every request in headers mode, each ending in
 * CRLF: Client-Cert and Client-Cert-Chain (RFC 9440, omitted without a
 * certificate / without a chain) and X-Client-Verify. *out is malloc'd. */
int edge_forward_headers(const struct edge_forward_id *id, char **out, size_t *len);

/* ---- the request-direction rewriter ---- */

#define EDGE_HTTP_HEAD_MAX (16 * 1024) /* request head, and trailer section */
#define EDGE_HTTP_LINE_MAX 1024        /* chunk-size line with its extensions */

enum edge_http_state {
	EDGE_HTTP_HEAD = 0,
	EDGE_HTTP_BODY, /* Content-Length bytes */
	EDGE_HTTP_CHUNK_LINE,
	EDGE_HTTP_CHUNK_DATA,
	EDGE_HTTP_CHUNK_CRLF,
	EDGE_HTTP_TRAILER,
	EDGE_HTTP_FAILED,
};

struct edge_http_rw {
	/* set by edge_http_rw_init */
	char host[256];     /* the SNI, lower-case: Host must name it */
	const char *inject; /* the lines to add, not owned */
	size_t inject_len;
	/* parser */
	enum edge_http_state state;
	char *buf; /* the head (or trailers, or a chunk line) so far:
					  EDGE_HTTP_HEAD_MAX bytes, held only while one is
					  incomplete or until edge_http_rw_trim */
	size_t buf_len;
	size_t skipped; /* empty lines before a request line */
	uint64_t left;  /* body or chunk bytes still to pass */
	/* bytes to send upstream: out[out_off..out_len) */
	char *out;
	size_t out_len, out_off, out_cap;
	/* --protocol http (set after init): Connection, Keep-Alive and
	 * Proxy-Connection are hop-by-hop, the edge's own; they are taken out
	 * of each head so the upstream connection stays open for the next
	 * client, and what they asked for is reported per head */
	bool hop;
	bool last_head;   /* the last head was a HEAD request */
	bool last_close;  /* ... and its client wants the connection closed
					  after the response (Connection: close, HTTP/1.0) */
	uint64_t dropped; /* bytes after a close request's message: dropped */
	/* results */
	uint64_t requests;    /* heads rewritten */
	int status;           /* 400, 421 or 431 once refused */
	bool refused_between; /* ... at a head: no byte of it went upstream */
	const char *reason;   /* stable name of why */
};

void edge_http_rw_init(struct edge_http_rw *rw, const char *host, const char *inject,
		       size_t inject_len);
void edge_http_rw_free(struct edge_http_rw *rw);
/* Between reads: gives back the buffers that hold nothing (an idle
 * keep-alive connection then holds none). */
void edge_http_rw_trim(struct edge_http_rw *rw);
/*
 * Consumes client bytes and appends what the upstream must get to out. Stops
 * after each complete head so that out stays small. Returns the bytes
 * consumed; -EPROTO when the request is refused (status and reason say how;
 * out still holds the earlier requests' bytes, which are good), -ENOMEM.
 */
ssize_t edge_http_rw_feed(struct edge_http_rw *rw, const char *in, size_t len);
/* The whole answer for a refusal (status line, headers, body), static text. */
const char *edge_http_refusal(int status, size_t *len);

#endif
