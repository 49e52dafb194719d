/* httpresp.c: the response reader of --protocol http, fed every way a stream can
 * be cut (whole, byte by byte, in odd pieces, split in two at every position). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpresp.h"
#include "tap.h"

#define CLIENT_MAX (64 * 1024)

struct result {
	char client[CLIENT_MAX]; /* what the client gets: out and raw bytes in order */
	size_t client_len;
	size_t consumed;
	int rc;
	bool misuse; /* a call broke the feed contract */
	uint64_t responses;
	unsigned int pending;
	enum edge_resp_state state;
	bool reusable, broken, close_done, eof_ok, idle;
};

static void append(struct result *r, const char *p, size_t n)
{
	if (!n)
		return;
	if (n > sizeof(r->client) - r->client_len) {
		r->misuse = true;
		return;
	}
	memcpy(r->client + r->client_len, p, n);
	r->client_len += n;
}

/* Feeds the requests then in to a fresh reader, in pieces of `step` bytes (0:
 * whole), the first piece ending at `split` when not 0; drains out before the
 * raw bytes as the relay does. reqs: one letter a request, g GET, h HEAD, c GET
 * and H HEAD whose client wants the connection closed. */
static void run_on(struct edge_http_resp *rs, const char *in, size_t len, size_t step, size_t split,
		   struct result *r)
{
	size_t off = 0;

	while (off < len) {
		size_t n = step && len - off > step ? step : len - off;
		bool raw = true;
		ssize_t k;

		if (split && off < split && n > split - off)
			n = split - off;
		k = edge_http_resp_feed(rs, in + off, n, &raw);
		if (k < 0) {
			r->rc = (int)k;
			break;
		}
		if ((size_t)k > n || (k == 0 && !rs->close_done) || (raw && k == 0))
			r->misuse = true;
		if (rs->out_len > rs->out_off)
			append(r, rs->out + rs->out_off, rs->out_len - rs->out_off);
		rs->out_off = rs->out_len;
		if (raw)
			append(r, in + off, (size_t)k);
		if (!k)
			break;
		off += (size_t)k;
	}
	r->consumed = off;
	r->responses = rs->responses;
	r->pending = rs->pending;
	r->state = rs->state;
	r->reusable = rs->reusable;
	r->broken = rs->broken;
	r->close_done = rs->close_done;
	r->eof_ok = edge_http_resp_eof_ok(rs);
	r->idle = edge_http_resp_idle(rs);
}

static void run(const char *in, size_t len, const char *reqs, size_t step, size_t split,
		struct result *r)
{
	struct edge_http_resp *rs = malloc(sizeof(*rs));

	memset(r, 0, sizeof(*r));
	edge_http_resp_init(rs);
	for (const char *q = reqs; *q; q++)
		if (edge_http_resp_expect(rs, *q == 'h' || *q == 'H', *q == 'c' || *q == 'H'))
			r->misuse = true;
	run_on(rs, in, len, step, split, r);
	edge_http_resp_free(rs);
	free(rs);
}

struct want {
	const char *client; /* NULL: the input, unchanged */
	size_t consumed;    /* 0: all of it */
	uint64_t responses;
	unsigned int pending;
	enum edge_resp_state state;
	bool reusable, broken, close_done, eof_ok, idle;
};

static bool same(const struct result *r, const char *in, size_t len, const struct want *w)
{
	const char *client = w->client ? w->client : in;
	size_t client_len = w->client ? strlen(w->client) : len;

	return !r->rc && !r->misuse && r->client_len == client_len &&
	       !memcmp(r->client, client, client_len) &&
	       r->consumed == (w->consumed ? w->consumed : len) && r->responses == w->responses &&
	       r->pending == w->pending && r->state == w->state && r->reusable == w->reusable &&
	       r->broken == w->broken && r->close_done == w->close_done && r->eof_ok == w->eof_ok &&
	       r->idle == w->idle;
}

static void show(const struct result *r, size_t step, size_t split)
{
	printf("# step %zu split %zu: rc=%d misuse=%d consumed=%zu responses=%llu pending=%u "
	       "state=%d reusable=%d broken=%d close_done=%d eof_ok=%d idle=%d client (%zu):\n"
	       "# %.*s\n",
	       step, split, r->rc, r->misuse, r->consumed, (unsigned long long)r->responses,
	       r->pending, r->state, r->reusable, r->broken, r->close_done, r->eof_ok, r->idle,
	       r->client_len, (int)(r->client_len < 400 ? r->client_len : 400), r->client);
}

static const size_t steps[] = { 0, 1, 2, 3, 7, 64 };
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

/* in, after the requests reqs, gives want for every way of cutting it. */
static void reads(const char *in, size_t len, const char *reqs, const struct want *w,
		  const char *name)
{
	static struct result r;
	size_t every = len > 4096 ? 97 : 1;

	for (size_t i = 0; i < NSTEPS; i++) {
		run(in, len, reqs, steps[i], 0, &r);
		if (!same(&r, in, len, w)) {
			show(&r, steps[i], 0);
			ok(0, "%s", name);
			return;
		}
	}
	for (size_t split = 1; split < len; split += every) {
		run(in, len, reqs, 0, split, &r);
		if (!same(&r, in, len, w)) {
			show(&r, 0, split);
			ok(0, "%s", name);
			return;
		}
	}
	ok(1, "%s", name);
}

#define READS(in, reqs, name, ...)                          \
	do {                                                \
		struct want w_ = { __VA_ARGS__ };           \
		reads(in, sizeof(in) - 1, reqs, &w_, name); \
	} while (0)

/* Between responses, reusable, nothing pending: what the pool wants. */
#define IDLE .state = EDGE_RESP_HEAD, .reusable = true, .eof_ok = true, .idle = true
/* Spent, between responses. */
#define SPENT .state = EDGE_RESP_HEAD, .reusable = false, .eof_ok = true
/* Could not be read: the rest passed raw. */
#define BROKEN .state = EDGE_RESP_UNTIL_CLOSE, .broken = true
/* ... in a head: its request still waits (for nothing). */
#define BROKEN_HEAD BROKEN, .pending = 1

#define OK200 "HTTP/1.1 200 OK\r\n"
#define CHUNKED OK200 "Transfer-Encoding: chunked\r\n\r\n"

static void test_framing(void)
{
	READS(OK200 "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "g",
	      "a Content-Length response passes unchanged; the connection is idle after it",
	      .responses = 1, IDLE);
	READS(OK200 "Content-Length: 5\r\n\r\nhello" OK200
		    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		    "HTTP/1.1 204 No Content\r\n\r\n",
	      "ggg", "three pipelined responses (length, chunked, 204) in one buffer",
	      .responses = 3, IDLE);
	READS(OK200 "Content-Length: 24\r\n\r\nHTTP/1.1 200 OK\r\n\r\nxxxxx", "g",
	      "a body that looks like a head is a body", .responses = 1, IDLE);
	READS(OK200 "Content-Length: 0\r\n\r\n" OK200 "Content-Length: 1\r\n\r\nx", "gg",
	      "Content-Length: 0", .responses = 2, IDLE);
	READS(OK200 "Content-Length: 100\r\n\r\n" OK200 "Content-Length: 2\r\n\r\nhi", "hg",
	      "a response to HEAD has no body, whatever its Content-Length", .responses = 2, IDLE);
	READS(OK200 "Transfer-Encoding: chunked\r\n\r\n" OK200 "Content-Length: 2\r\n\r\nhi", "hg",
	      "a response to HEAD has no body, even chunked", .responses = 2, IDLE);
	READS("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
	      "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n",
	      "gg", "204 and 304 have no body", .responses = 2, IDLE);
	READS("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx"
	      "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
	      "gg", "a status line without reason, with or without its space", .responses = 2,
	      IDLE);
	READS("HTTP/1.1 100 Continue\r\n\r\n" OK200 "Content-Length: 2\r\n\r\nok", "g",
	      "100 Continue then the final response: one response", .responses = 1, IDLE);
	READS("HTTP/1.1 100 Continue\r\n\r\n", "g", "100 Continue alone: the request still waits",
	      .pending = 1, .state = EDGE_RESP_HEAD, .reusable = true, .eof_ok = true);
	READS("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
	      "HTTP/1.1 103 Early Hints\r\nLink: </t.js>; rel=preload\r\n\r\n" OK200
	      "Content-Length: 2\r\n\r\nok" OK200 "Content-Length: 0\r\n\r\n",
	      "gg", "two 103 then 200, then the next response", .responses = 2, IDLE);
	READS(OK200 "Transfer-Encoding: gzip, Chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n"
		    "1a \t; ext\r\nabcdefghijklmnopqrstuvwxyz\r\n00A\r\n0123456789\r\n"
		    "0;last\r\nX-Checksum: 1\r\nX-Other: two\r\n\r\n" OK200
		    "Content-Length: 2\r\n\r\nhi",
	      "gg", "chunked with extensions and trailers, then the next response", .responses = 2,
	      IDLE);
	READS(OK200 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "g", "an empty chunked body",
	      .responses = 1, IDLE);
	READS(OK200 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	      "g", "Transfer-Encoding and Content-Length: chunked wins, the connection is spent",
	      .responses = 1, SPENT);
	READS(OK200
	      "Transfer-Encoding: chunked\r\nContent-Length: junk\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	      "g", "Transfer-Encoding and a bad Content-Length: chunked wins, spent",
	      .responses = 1, SPENT);
	READS(OK200 "Content-Length: 5, 5\r\n\r\nhello", "g", "Content-Length: 5, 5 is 5",
	      .responses = 1, IDLE);
	READS(OK200 "Content-Length: 5\r\ncontent-length:5\r\n\r\nhello", "g",
	      "two Content-Length fields of the same value", .responses = 1, IDLE);
	READS(OK200 "Content-Length: 000000000000000005\r\n\r\nhello", "g",
	      "a Content-Length of 18 digits", .responses = 1, IDLE);
	READS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:\r\nX-B: \tv a l\t\r\n\r\nhello", "g",
	      "empty values and inner whitespace", .responses = 1, IDLE);
	{
		/* The ring: more than EDGE_HTTP_PIPELINE_MAX requests over time, answered one
		 * by one, HEAD and GET alternating. */
		struct edge_http_resp *rs = malloc(sizeof(*rs));
		static struct result r;
		static const char get[] = OK200 "Content-Length: 3\r\n\r\nabc";
		static const char head[] = OK200 "Content-Length: 3\r\n\r\n";
		bool good = true;

		edge_http_resp_init(rs);
		for (int i = 0; i < 3 * EDGE_HTTP_PIPELINE_MAX && good; i++) {
			good = !edge_http_resp_expect(rs, i % 2, false) &&
			       !edge_http_resp_expect(rs, (i + 1) % 2, false);
			memset(&r, 0, sizeof(r));
			run_on(rs, i % 2 ? head : get, i % 2 ? sizeof(head) - 1 : sizeof(get) - 1,
			       0, 0, &r);
			good = good && !r.misuse && r.pending == 1;
			memset(&r, 0, sizeof(r));
			run_on(rs, i % 2 ? get : head, i % 2 ? sizeof(get) - 1 : sizeof(head) - 1,
			       0, 0, &r);
			good = good && !r.misuse && r.idle && r.responses == (uint64_t)(2 * i + 2);
		}
		ok(good, "the request ring wraps: %d requests, HEAD and GET, each its own framing",
		   6 * EDGE_HTTP_PIPELINE_MAX);
		edge_http_resp_free(rs);
		free(rs);
	}
}

static void test_spent(void)
{
	READS(OK200 "Content-Type: text/plain\r\n\r\nall of this until the close", "g",
	      "no Content-Length nor Transfer-Encoding: close-delimited, spent, EOF is fine",
	      .state = EDGE_RESP_UNTIL_CLOSE, .eof_ok = true, .pending = 0);
	READS(OK200 "Transfer-Encoding: gzip\r\n\r\n\x1f\x8b binary", "g",
	      "a transfer coding other than chunked last: close-delimited",
	      .state = EDGE_RESP_UNTIL_CLOSE, .eof_ok = true);
	READS(OK200 "Transfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "g",
	      "chunked not last: close-delimited", .state = EDGE_RESP_UNTIL_CLOSE, .eof_ok = true);
	READS("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "g",
	      "Transfer-Encoding in HTTP/1.0: close-delimited", .state = EDGE_RESP_UNTIL_CLOSE,
	      .eof_ok = true);
	READS(OK200 "Connection: close\r\nContent-Length: 2\r\n\r\nhi", "g",
	      "Connection: close: not reusable", .responses = 1, SPENT);
	READS(OK200 "Connection: Keep-Alive, \tCLOSE \r\nContent-Length: 2\r\n\r\nhi", "g",
	      "Connection tokens: close among others, any case, OWS", .responses = 1, SPENT);
	READS(OK200 "Connection: closed, x-close\r\nContent-Length: 2\r\n\r\nhi", "g",
	      "Connection tokens that only contain close do not count", .responses = 1, IDLE);
	READS("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "g", "HTTP/1.0: not reusable",
	      .responses = 1, SPENT);
	READS("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
	      "Content-Length: 2\r\n\r\nhi",
	      "g", "HTTP/1.0 with keep-alive: still not reusable", .responses = 1, SPENT);
	READS(OK200 "Content-Length: 2\r\n\r\nhi", "", "a response with no request: spent",
	      .responses = 1, SPENT);
	READS(OK200 "Content-Length: 2\r\n\r\nhi" OK200 "Content-Length: 3\r\n\r\nabc", "g",
	      "a second response to one request: read as a GET's, spent", .responses = 2, SPENT);
	READS(OK200 "Content-Length: 5\r\n\r\n" OK200 "Content-Length: 5\r\n\r\nhello", "h",
	      "a response after the HEAD's answer is read as a GET's, spent", .responses = 2,
	      SPENT);
	READS("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "\r\n\x81\x05hello HTTP/1.1 200 OK\r\n\r\n",
	      "c", "101: the head unchanged, then raw to the end, spent (close_done never set)",
	      .state = EDGE_RESP_UNTIL_CLOSE, .eof_ok = true);
	READS(OK200 "Content-Length: 10\r\n\r\nhel", "g", "EOF mid-body is not fine", .pending = 0,
	      .state = EDGE_RESP_BODY, .reusable = true);
	READS(OK200 "Content-Length: 10\r\n", "g", "EOF mid-head is not fine", .client = "",
	      .pending = 1, .state = EDGE_RESP_HEAD, .reusable = true);
	READS(OK200 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "g",
	      "EOF between chunks is not fine", .state = EDGE_RESP_CHUNK_LINE, .reusable = true);
	READS(OK200 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n", "g",
	      "EOF in the trailers is not fine", .client = CHUNKED "5\r\nhello\r\n0\r\n",
	      .state = EDGE_RESP_TRAILER, .reusable = true);
	READS("", "g", "no bytes: between responses, fine", .pending = 1, .state = EDGE_RESP_HEAD,
	      .reusable = true, .eof_ok = true);
}

static void test_broken(void)
{
	static char big[EDGE_HTTP_HEAD_MAX + 200];

	READS("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", "g", "bare LF: broken, bytes pass",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 2\r\nX: a\rb\r\n\r\nhi", "g", "bare CR: broken", BROKEN_HEAD);
	READS(OK200 "Content-Length: 2\r\nX: a\0b\r\n\r\nhi", "g", "a NUL byte: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 2\r\n\r\nhi"
		    "HTTP/1.1 200 OK\n\nrest",
	      "gg", "bare LF in a second head: the first is done, the rest passes", .responses = 1,
	      BROKEN_HEAD);
	READS("HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nhi", "g", "a two-digit status: broken",
	      BROKEN_HEAD);
	READS("HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nhi", "g", "status 099: broken",
	      BROKEN_HEAD);
	READS("HTTP/1.1 600 X\r\nContent-Length: 2\r\n\r\nhi", "g", "status 600: broken",
	      BROKEN_HEAD);
	READS("HTTP/1.1  200 OK\r\n\r\n", "g", "two spaces: broken", BROKEN_HEAD);
	READS("HTTP/1.1 200OK\r\n\r\n", "g", "no space after the status: broken", BROKEN_HEAD);
	READS("HTTP/2 200\r\n\r\n", "g", "HTTP/2: broken", BROKEN_HEAD);
	READS("ICY 200 OK\r\n\r\n", "g", "not HTTP: broken", BROKEN_HEAD);
	READS("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "g",
	      "an empty line before the status line: broken", BROKEN_HEAD);
	READS("HTTP/1.1 200 OK\x01\r\n\r\n", "g", "a control byte in the reason: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 2\r\nX: 1\r\n folded\r\n\r\nhi", "g", "obs-fold: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length : 2\r\n\r\nhi", "g", "space before a colon: broken",
	      BROKEN_HEAD);
	READS(OK200 "NoColon\r\n\r\n", "g", "a field without a colon: broken", BROKEN_HEAD);
	READS(OK200 ": x\r\n\r\n", "g", "a field without a name: broken", BROKEN_HEAD);
	READS(OK200 "X: a\x7f\r\n\r\n", "g", "DEL in a value: broken", BROKEN_HEAD);
	READS(OK200 "Content-Length: 5, 6\r\n\r\nhello", "g", "Content-Length: 5, 6: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "g",
	      "two Content-Length fields that differ: broken", BROKEN_HEAD);
	READS(OK200 "Content-Length: +5\r\n\r\nhello", "g", "Content-Length: +5: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 5x\r\n\r\nhello", "g", "Content-Length: 5x: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: \r\n\r\nhello", "g", "an empty Content-Length: broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 5,\r\n\r\nhello", "g", "Content-Length: 5, (empty): broken",
	      BROKEN_HEAD);
	READS(OK200 "Content-Length: 1000000000000000000\r\n\r\nhello", "g",
	      "a Content-Length of 19 digits: broken", BROKEN_HEAD);
	READS(OK200 "Content-Length: 5, 6\r\n\r\nhello", "c",
	      "a broken head for a close request passes unchanged", BROKEN_HEAD);
	READS("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", "g",
	      "a bad Content-Length even without a body: broken", BROKEN_HEAD);
	READS(CHUNKED "5\r\nhelloX\r\n0\r\n\r\n", "g", "chunk data longer than its size: broken",
	      BROKEN);
	READS(CHUNKED "5\r\nhello\rX\n0\r\n\r\n", "g", "CR then not LF after chunk data: broken",
	      BROKEN);
	READS(CHUNKED "5\r\nhello\n0\r\n\r\n", "g", "bare LF after chunk data: broken", BROKEN);
	READS(CHUNKED "zz\r\n", "g", "a chunk size that is not hex: broken", BROKEN);
	READS(CHUNKED "-1\r\n", "g", "a negative chunk size: broken", BROKEN);
	READS(CHUNKED "\r\n", "g", "an empty chunk line: broken", BROKEN);
	READS(CHUNKED "1000000000000000\r\n", "g", "a 16-digit chunk size: broken", BROKEN);
	READS(CHUNKED "5 x\r\nhello\r\n", "g", "junk after a chunk size: broken", BROKEN);
	READS(CHUNKED "5;a=\x01\r\nhello\r\n", "g", "a control byte in an extension: broken",
	      BROKEN);
	READS(CHUNKED "0\r\n folded\r\n\r\n", "g", "obs-fold in trailers: broken", BROKEN);
	READS(CHUNKED "fffffffffffffff\r\nabc", "g", "a 15-digit chunk size is fine",
	      .state = EDGE_RESP_CHUNK_DATA, .reusable = true);
	memset(big, 'a', sizeof(big));
	memcpy(big, CHUNKED "1;", strlen(CHUNKED "1;"));
	{
		struct want w = { BROKEN };

		reads(big, strlen(CHUNKED) + EDGE_HTTP_LINE_MAX + 10, "g", &w,
		      "a chunk line over EDGE_HTTP_LINE_MAX: broken, bytes pass");
	}

	/* Head size bound: over it, broken and every byte passes; at it, fine. */
	memset(big, 'a', sizeof(big));
	memcpy(big, OK200 "X-Big: ", strlen(OK200 "X-Big: "));
	{
		struct want w = { BROKEN };

		w.pending = 1;
		reads(big, sizeof(big), "g", &w, "a head over 16 KiB: broken, every byte passes");
	}
	{
		size_t n = EDGE_HTTP_HEAD_MAX - 4;
		struct want w = { .responses = 1, IDLE };

		memcpy(big + n, "\r\n\r\n", 4);
		memcpy(big + n - 22, "\r\nContent-Length: 0001", 22);
		big[EDGE_HTTP_HEAD_MAX] = '!';
		reads(big, EDGE_HTTP_HEAD_MAX + 1, "g", &w,
		      "a head of exactly 16 KiB is read (its 1-byte body after it)");
	}
	{
		/* Trailers over 16 KiB. */
		size_t n = strlen(CHUNKED "0\r\nX: ");
		struct want w = { BROKEN };

		memset(big, 'a', sizeof(big));
		memcpy(big, CHUNKED "0\r\nX: ", n);
		reads(big, sizeof(big), "g", &w, "trailers over 16 KiB: broken, every byte passes");
	}
}

#define CLOSE "Connection: close\r\n"

static void test_close(void)
{
	READS(OK200 "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n"
		    "X-A: 1\r\nkeep-alive: max=9\r\n\r\nhello" OK200 "Content-Length: 3\r\n\r\nabc",
	      "c",
	      "a close request: Connection and Keep-Alive fields go, Connection: close comes, the "
	      "body is unchanged, the bytes after are not consumed",
	      .client = OK200 "Content-Length: 5\r\nX-A: 1\r\n" CLOSE "\r\nhello",
	      .consumed = sizeof(OK200
				 "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
				 "Content-Length: 5\r\nX-A: 1\r\nkeep-alive: max=9\r\n\r\nhello") -
			  1,
	      .responses = 1, .close_done = true, IDLE);
	READS(OK200 "Content-Length: 2\r\n\r\nhi" OK200 "CONNECTION: Close\r\nContent-Length: 2\r\n"
		    "\r\nhi",
	      "gc", "pipelined: only the close request's response is rewritten",
	      .client = OK200 "Content-Length: 2\r\n\r\nhi" OK200 "Content-Length: 2\r\n" CLOSE
			      "\r\nhi",
	      .responses = 2, .close_done = true, SPENT);
	READS("HTTP/1.1 100 Continue\r\n\r\n" OK200 "Transfer-Encoding: chunked\r\n\r\n"
	      "2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n",
	      "c",
	      "100 Continue passes unchanged; the chunked final response is rewritten and ends "
	      "with its trailers",
	      .client = "HTTP/1.1 100 Continue\r\n\r\n" OK200 "Transfer-Encoding: chunked\r\n" CLOSE
			"\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n",
	      .responses = 1, .close_done = true, IDLE);
	READS("HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n", "H",
	      "a HEAD close request's response",
	      .client = "HTTP/1.1 304 Not Modified\r\n" CLOSE "\r\n", .responses = 1,
	      .close_done = true, IDLE);
	READS(OK200 "Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhiHTTP/1.1 200 OK\r\n"
		    "\r\n",
	      "c", "a close request's response gets Connection: close where it was",
	      .client = OK200 "Content-Length: 2\r\n" CLOSE "\r\nhi",
	      .consumed = sizeof(OK200 "Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi") - 1,
	      .responses = 1, .close_done = true, IDLE);
	READS(OK200 "Connection: keep-alive\r\n\r\nclose-delimited", "c",
	      "a close-delimited response to a close request: rewritten, runs to the end",
	      .client = OK200 CLOSE "\r\nclose-delimited", .state = EDGE_RESP_UNTIL_CLOSE,
	      .eof_ok = true);
	{
		/* After close_done, a feed consumes nothing. */
		struct edge_http_resp *rs = malloc(sizeof(*rs));
		static const char in[] = OK200 "Content-Length: 0\r\n\r\n";
		bool raw = true;
		ssize_t k1, k2;

		edge_http_resp_init(rs);
		edge_http_resp_expect(rs, false, true);
		k1 = edge_http_resp_feed(rs, in, sizeof(in) - 1, &raw);
		rs->out_off = rs->out_len;
		k2 = edge_http_resp_feed(rs, in, sizeof(in) - 1, &raw);
		ok(k1 == (ssize_t)sizeof(in) - 1 && rs->close_done && k2 == 0 && !raw &&
			   rs->out_len == 0,
		   "after close_done feed returns 0 and out is empty");
		edge_http_resp_free(rs);
		free(rs);
	}
}

#define HEAD3 OK200 "Content-Length: 3\r\n\r\n"

static void test_api(void)
{
	struct edge_http_resp *rs = malloc(sizeof(*rs));
	int i, rc = 0;
	bool raw;
	ssize_t k;

	edge_http_resp_init(rs);
	ok(edge_http_resp_idle(rs) && edge_http_resp_eof_ok(rs) && rs->reusable && !rs->broken,
	   "a new reader is idle, reusable and fine at EOF");
	for (i = 0; i < EDGE_HTTP_PIPELINE_MAX && !rc; i++)
		rc = edge_http_resp_expect(rs, false, false);
	ok(!rc && rs->pending == EDGE_HTTP_PIPELINE_MAX, "%d requests can wait",
	   EDGE_HTTP_PIPELINE_MAX);
	is_int(edge_http_resp_expect(rs, false, false), -ENOSPC, "the next one: -ENOSPC");
	ok(!edge_http_resp_idle(rs) && edge_http_resp_eof_ok(rs),
	   "requests pending: not idle; EOF before a response starts is still between responses");

	/* Each call absorbs or passes raw; a head is returned alone; out resets when drained. */
	k = edge_http_resp_feed(rs, HEAD3 "abcHTTP", strlen(HEAD3) + 7, &raw);
	ok(k == (ssize_t)strlen(HEAD3) && !raw && rs->out_len == strlen(HEAD3) &&
		   !memcmp(rs->out, HEAD3, strlen(HEAD3)),
	   "a head: absorbed, returned alone, in out");
	k = edge_http_resp_feed(rs, "abcHTTP", 7, &raw);
	ok(k == 3 && raw && rs->out_len == strlen(HEAD3),
	   "the body: raw, only its bytes; out not yet drained");
	rs->out_off = rs->out_len;
	k = edge_http_resp_feed(rs, "HTTP", 4, &raw);
	ok(k == 4 && !raw && rs->out_len == 0 && rs->out_off == 0 && rs->buf_len == 4,
	   "out resets when drained; a partial head is absorbed, nothing out");
	ok(!edge_http_resp_eof_ok(rs), "EOF in a head is not fine");
	k = edge_http_resp_feed(rs, "\n", 1, &raw);
	ok(k == 1 && raw && rs->broken && rs->out_len == 4 && !memcmp(rs->out, "HTTP", 4),
	   "a bad byte first in a call: the gathered bytes in out, the byte raw");
	k = edge_http_resp_feed(rs, "", 0, &raw);
	ok(k == 0, "an empty feed consumes nothing");
	edge_http_resp_free(rs);
	edge_http_resp_free(rs);
	ok(!rs->out && !rs->out_len, "free twice is harmless");
	free(rs);
}

/* Decode mode (an HTTP/2 stream's view, h2.c): fed in pieces of every size, what comes out is
 * the head alone, the body without chunk framing, the trailers alone, in that order. */
static void decode_run(const char *in, size_t step, bool head_req, char *body, size_t *body_len,
		       char *blocks, size_t *blocks_len, uint64_t *responses, bool *broken)
{
	struct edge_http_resp rs;
	size_t off = 0, len = strlen(in);

	edge_http_resp_init(&rs);
	rs.decode = true;
	edge_http_resp_expect(&rs, head_req, false);
	*body_len = *blocks_len = 0;
	while (off < len) {
		size_t n = step && len - off > step ? step : len - off;
		bool raw = false;
		ssize_t k = edge_http_resp_feed(&rs, in + off, n, &raw);

		if (k <= 0)
			break;
		if (raw) {
			memcpy(body + *body_len, in + off, (size_t)k);
			*body_len += (size_t)k;
		} else if (rs.out_len > rs.out_off) {
			blocks[(*blocks_len)++] = rs.block == EDGE_RESP_BLOCK_HEAD ? 'H' : 'T';
			if (rs.block == EDGE_RESP_BLOCK_TRAILERS)
				blocks[(*blocks_len)++] = rs.out_len - rs.out_off ==
									  strlen("X-T: 1\r\n\r\n")
								  ? '1'
								  : '?';
			rs.out_off = rs.out_len;
		}
		off += (size_t)k;
	}
	*responses = rs.responses;
	*broken = rs.broken;
	edge_http_resp_free(&rs);
}

static void test_decode(void)
{
	static const char chunked[] =
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3;ext=1\r\nabc\r\n0010\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n";
	static const char plain[] = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
				    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
	static const char nochunks[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				       "0\r\n\r\n";
	static const char bad[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
	char body[256], blocks[16];
	size_t bl, kl, s;
	uint64_t resp;
	bool brk, all = true;

	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		decode_run(chunked, steps[s], false, body, &bl, blocks, &kl, &resp, &brk);
		all &= bl == 19 && !memcmp(body, "abc0123456789abcdef", 19) && kl == 3 &&
		       !memcmp(blocks, "HT1", 3) && resp == 1 && !brk;
	}
	ok(all, "chunked: the data alone, then the trailers alone, at every cut");
	all = true;
	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		decode_run(plain, steps[s], false, body, &bl, blocks, &kl, &resp, &brk);
		all &= bl == 5 && !memcmp(body, "hello", 5) && kl == 2 &&
		       !memcmp(blocks, "HH", 2) && resp == 1;
	}
	ok(all, "a 1xx head, then the final head, then the body, at every cut");
	decode_run(head, 0, true, body, &bl, blocks, &kl, &resp, &brk);
	ok(bl == 0 && kl == 1 && resp == 1, "HEAD: the head, complete with it, no body");
	decode_run(nochunks, 1, false, body, &bl, blocks, &kl, &resp, &brk);
	ok(bl == 0 && kl == 1 && resp == 1, "chunked with no data and no trailers: the head only");
	decode_run(bad, 0, false, body, &bl, blocks, &kl, &resp, &brk);
	ok(brk && resp == 0, "a bad chunk line: broken (the stream is reset, not passed raw)");
}

int main(void)
{
	test_decode();
	test_framing();
	test_spent();
	test_broken();
	test_close();
	test_api();
	return tap_done();
}
