/*
 * The response direction of `--protocol http`: a streaming reader of the
 * upstream's HTTP/1.1 responses. It finds where each response ends, so that
 * the edge knows when an upstream connection is between responses and can
 * carry the next client's requests (pool.c), and it marks the connection
 * spent whenever it cannot be sure (close-delimited bodies, Connection: close,
 * HTTP/1.0, anything it cannot parse).
 *
 * It never changes a body and changes a head in one case only: when the
 * client asked for the connection to end after this response (its request
 * said Connection: close, or was HTTP/1.0). The edge took that option out of
 * the request so that the upstream keeps its connection; the response head
 * then loses its own Connection and Keep-Alive fields and gains
 * "Connection: close", and the edge closes the client connection after it.
 *
 * Framing, RFC 9112 section 6.3: a response to HEAD, a 1xx, 204 or 304 has no
 * body; 1xx other than 101 is followed by the final response to the same
 * request; Transfer-Encoding whose last coding is chunked is chunked (chunk
 * lines, data, trailers); any other Transfer-Encoding, or none and no
 * Content-Length, runs to the connection's close; a valid Content-Length
 * (digits only, or one value repeated in a list or in several fields) is
 * that many bytes. A head that cannot be parsed (no CRLF line ends, a bad
 * status line, a bad Content-Length, over EDGE_HTTP_HEAD_MAX) is not an error
 * for the relay: the rest of the stream passes as it is (raw, "broken") and
 * the connection is spent.
 *
 * Pure: no I/O, no OpenSSL, no printing (it is also built into a fuzzer).
 */
#ifndef EDGE_HTTPRESP_H
#define EDGE_HTTPRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "forward.h" /* EDGE_HTTP_HEAD_MAX, EDGE_HTTP_LINE_MAX */

#define EDGE_HTTP_PIPELINE_MAX 64 /* requests sent upstream and not yet answered */

enum edge_resp_state {
	EDGE_RESP_HEAD = 0, /* between responses, or inside a head */
	EDGE_RESP_BODY,     /* Content-Length bytes */
	EDGE_RESP_CHUNK_LINE,
	EDGE_RESP_CHUNK_DATA,
	EDGE_RESP_CHUNK_CRLF,
	EDGE_RESP_TRAILER,
	EDGE_RESP_UNTIL_CLOSE, /* close-delimited body, 101, or broken: raw to the end */
};

struct edge_http_resp {
	/* parser */
	enum edge_resp_state state;
	char *buf; /* the head (or trailers, or a chunk line) so far:
					   EDGE_HTTP_HEAD_MAX bytes, held from a feed until
					   edge_http_resp_trim finds it empty */
	size_t buf_len;
	uint64_t left; /* body or chunk bytes still to pass */
	/* requests awaiting their final response, oldest first (a ring) */
	struct {
		bool head;  /* a HEAD request: its response has no body */
		bool close; /* the client wants the connection closed after it */
	} q[EDGE_HTTP_PIPELINE_MAX];
	unsigned int q_first, pending;
	bool cur_head, cur_close; /* of the response being read (taken from q) */
	/* rewritten heads for the client: out[out_off..out_len) */
	char *out;
	size_t out_len, out_off, out_cap;
	/* results */
	uint64_t responses; /* final responses complete */
	bool reusable;      /* true until the connection is known spent */
	bool broken;        /* the stream could not be parsed (raw from then on) */
	bool close_done;    /* a response to a close request is complete:
					   the client connection ends here */
	/* Decoding (set after init), for a client that is not HTTP/1.1 (an HTTP/2
	 * stream, h2.c): chunk lines and the CRLF after chunk data are taken out,
	 * so that only body bytes pass raw; heads are never rewritten; and each
	 * head or non-empty trailer section is emitted to out alone, the call
	 * returning right after it, with block saying which and status the head's
	 * code. The caller takes out whole before the next call. */
	bool decode;
	enum { EDGE_RESP_BLOCK_NONE = 0, EDGE_RESP_BLOCK_HEAD, EDGE_RESP_BLOCK_TRAILERS } block;
	int status; /* of the last head read (1xx included) */
};

void edge_http_resp_init(struct edge_http_resp *rs);
void edge_http_resp_free(struct edge_http_resp *rs);
/* Between reads: gives back the buffers that hold nothing (an idle
 * keep-alive connection then holds none). */
void edge_http_resp_trim(struct edge_http_resp *rs);

/*
 * A request head went upstream. head: it was a HEAD request; close: the
 * client wants the connection closed after its response. -ENOSPC when
 * EDGE_HTTP_PIPELINE_MAX requests are already waiting (the caller stops
 * reading requests until responses come).
 */
int edge_http_resp_expect(struct edge_http_resp *rs, bool head, bool close);

/*
 * Consumes upstream bytes. Each call either absorbs head bytes (*raw false:
 * nothing of in[0..ret) goes to the client as is; a head completed by this
 * call is in out, rewritten or not, and the call returns right after it) or
 * passes body bytes (*raw true: in[0..ret) goes to the client unchanged;
 * out may still hold bytes from before, when the stream broke at the
 * call's first byte). The client always gets out[out_off..out_len) first.
 * After close_done, the bytes that follow are not consumed (returns 0):
 * nobody asked for them, and the connection must not be pooled. A broken
 * stream or a close-delimited body never sets close_done: the upstream's
 * close ends it. Returns the bytes consumed, or -ENOMEM.
 *
 * A response that arrives with no request waiting is read as an answer to
 * a GET, and the connection is spent.
 */
ssize_t edge_http_resp_feed(struct edge_http_resp *rs, const char *in, size_t len, bool *raw);

/* Appends bytes the reader let through (raw) to out, so that a head and the
 * body after it leave in one TLS record: 0 or -ENOMEM. */
int edge_http_resp_out_append(struct edge_http_resp *rs, const char *p, size_t n);

/* Between responses with none outstanding, still reusable, not broken, out
 * drained: the upstream connection may go back to the pool. (A reader is
 * one client connection's: a pooled connection's next client gets a new one.) */
bool edge_http_resp_idle(const struct edge_http_resp *rs);

/* The upstream closed its side: true when that ends a close-delimited body
 * cleanly (or the stream was between responses); false when a response was
 * cut short. */
bool edge_http_resp_eof_ok(const struct edge_http_resp *rs);

#endif
