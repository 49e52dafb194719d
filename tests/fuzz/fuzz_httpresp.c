/*
 * libFuzzer target for the response reader of --protocol http
 * (userspace/httpresp.c), plain C: clang -fsanitize=fuzzer,address,undefined.
 * The first input byte says how the stream is cut (bits 0-2), which of three
 * queued requests were HEAD requests (bits 3-5) and which one, if any, was a
 * close request (bits 6-7: none, or request 0, 1 or 2, then the last queued);
 * the rest is what the upstream sent. Besides memory safety it checks what
 * the relay relies on:
 *   - the result never depends on how the stream is cut: fed whole and fed
 *     in pieces, the client gets the same bytes and every result is the same;
 *   - each call keeps the feed contract: it consumes something (until
 *     close_done), never more than it was given, and out holds a bounded
 *     amount;
 *   - without a close request the client's byte stream is the upstream's,
 *     byte for byte, all of it but an unfinished unit (head, chunk line,
 *     trailers) at the end;
 *   - with one, it is the same stream up to the end of that request's
 *     response, except its head, which is the original without Connection and
 *     Keep-Alive fields and with "Connection: close" (so never more output than
 *     input plus that line); the bytes after it are not consumed.
 * tests/fuzz/run.sh runs it for a bounded time over tests/fuzz/corpus/httpresp/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpresp.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

#define CLOSE_LINE "Connection: close\r\n"
#define NREQ 3

struct run {
	char *client;
	size_t len, cap;
	size_t consumed;
	size_t held; /* consumed, not yet out: a unit in progress */
	unsigned int pops;
	size_t head_start[NREQ], head_end[NREQ]; /* in the input: the final head of request i */
	uint64_t responses;
	unsigned int pending;
	enum edge_resp_state state;
	bool reusable, broken, close_done, eof_ok, idle;
};

static struct edge_http_resp rs;

static void append(struct run *r, const char *p, size_t n)
{
	if (!n)
		return;
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->client = realloc(r->client, r->cap);
		CHECK(r->client);
	}
	memcpy(r->client + r->len, p, n);
	r->len += n;
}

/* Piece sizes cycle through step, 1 and 5 * step + 3; step 0: whole. */
static size_t piece(unsigned int step, unsigned int k)
{
	if (!step)
		return SIZE_MAX;
	return k % 3 == 0 ? step : k % 3 == 1 ? 1 : 5 * (size_t)step + 3;
}

static void feed(const uint8_t *data, size_t size, unsigned int step, unsigned int head_mask,
		 int close_at, struct run *r)
{
	unsigned int nreq = close_at >= 0 ? (unsigned int)close_at + 1 : NREQ;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	edge_http_resp_init(&rs);
	for (unsigned int i = 0; i < nreq; i++)
		CHECK(!edge_http_resp_expect(&rs, head_mask >> i & 1, (int)i == close_at));
	for (unsigned int k = 0; off < size; k++) {
		size_t n = size - off < piece(step, k) ? size - off : piece(step, k);
		unsigned int before = rs.pending;
		size_t out_n;
		bool raw = false;
		ssize_t got = edge_http_resp_feed(&rs, (const char *)data + off, n, &raw);

		CHECK(got >= 0 && (size_t)got <= n);
		CHECK(got > 0 || rs.close_done);
		CHECK(!raw || got > 0);
		out_n = rs.out_len - rs.out_off;
		CHECK(out_n <= EDGE_HTTP_HEAD_MAX + EDGE_HTTP_LINE_MAX + 64);
		if (rs.pending < before) {
			/* a final head: it alone is in out, and it ends where the call stopped */
			CHECK(rs.pending == before - 1 && !raw && r->pops < NREQ);
			CHECK(out_n <= off + (size_t)got + strlen(CLOSE_LINE));
			r->head_end[r->pops] = off + (size_t)got;
			r->head_start[r->pops] = off + (size_t)got -
						 (out_n < off + (size_t)got ? out_n
									    : off + (size_t)got);
			r->pops++;
		}
		if (out_n)
			append(r, rs.out + rs.out_off, out_n);
		rs.out_off = rs.out_len;
		if (raw)
			append(r, (const char *)data + off, (size_t)got);
		if (!got)
			break;
		off += (size_t)got;
	}
	r->consumed = off;
	r->held = rs.buf_len;
	r->responses = rs.responses;
	r->pending = rs.pending;
	r->state = rs.state;
	r->reusable = rs.reusable;
	r->broken = rs.broken;
	r->close_done = rs.close_done;
	r->eof_ok = edge_http_resp_eof_ok(&rs);
	r->idle = edge_http_resp_idle(&rs);
	if (r->close_done) {
		bool raw;

		CHECK(edge_http_resp_feed(&rs, "x", 1, &raw) == 0);
	}
	edge_http_resp_free(&rs);
}

static void same(const struct run *a, const struct run *b)
{
	CHECK(a->len == b->len && (!a->len || !memcmp(a->client, b->client, a->len)));
	CHECK(a->consumed == b->consumed && a->held == b->held && a->pops == b->pops);
	CHECK(!memcmp(a->head_end, b->head_end, sizeof(a->head_end)));
	CHECK(a->responses == b->responses && a->pending == b->pending && a->state == b->state);
	CHECK(a->reusable == b->reusable && a->broken == b->broken);
	CHECK(a->close_done == b->close_done && a->eof_ok == b->eof_ok && a->idle == b->idle);
}

/* The head as a close request's client must get it, written independently of
 * httpresp.c: Connection and Keep-Alive fields out, Connection: close in. */
static void rewritten(const char *h, size_t n, struct run *want)
{
	const char *end = h + n - 2, *l;

	if (n >= 12 && !memcmp(h + 9, "101", 3)) {
		append(want, h, n); /* 101 is passed as it is */
		return;
	}
	l = memmem(h, n, "\r\n", 2) + 2;
	append(want, h, (size_t)(l - h));
	while (l < end) {
		const char *le = memmem(l, (size_t)(end - l), "\r\n", 2) + 2;

		if (strncasecmp(l, "connection:", 11) && strncasecmp(l, "keep-alive:", 11))
			append(want, l, (size_t)(le - l));
		l = le;
	}
	append(want, CLOSE_LINE "\r\n", strlen(CLOSE_LINE "\r\n"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run plain, plain_cut, close, close_cut, want = { 0 };
	unsigned int step, head_mask;
	int close_at;

	if (!size)
		return 0;
	step = (data[0] & 7) + 1;
	head_mask = data[0] >> 3 & 7;
	close_at = (int)(data[0] >> 6) - 1;
	data++;
	size--;

	/* The same requests, no close: the client gets the input, unchanged. */
	feed(data, size, 0, head_mask, -1, &plain);
	feed(data, size, step, head_mask, -1, &plain_cut);
	same(&plain, &plain_cut);
	CHECK(!plain.close_done && plain.consumed == size);
	CHECK(plain.held <= size && plain.len == size - plain.held);
	CHECK(!plain.len || !memcmp(plain.client, data, plain.len));
	CHECK(plain.pending + plain.pops == NREQ);
	CHECK(!plain.idle || plain.reusable);
	CHECK(!plain.broken || (!plain.reusable && plain.state == EDGE_RESP_UNTIL_CLOSE));

	if (close_at >= 0) {
		unsigned int c = (unsigned int)close_at;

		feed(data, size, 0, head_mask, close_at, &close);
		feed(data, size, step, head_mask, close_at, &close_cut);
		same(&close, &close_cut);
		CHECK(close.close_done || close.consumed == size);
		CHECK(close.len <= close.consumed + strlen(CLOSE_LINE));
		/* The framing is the same with or without close: the heads are where they
		 * were; the close request's head is rewritten, nothing else changes. */
		CHECK(close.pops <= plain.pops);
		for (unsigned int i = 0; i < close.pops; i++)
			CHECK(close.head_end[i] == plain.head_end[i]);
		if (close.pops > c) {
			size_t hs = plain.head_start[c], he = plain.head_end[c];

			CHECK(close.head_end[c] == he && he + close.held <= close.consumed);
			append(&want, (const char *)data, hs);
			rewritten((const char *)data + hs, he - hs, &want);
			append(&want, (const char *)data + he, close.consumed - close.held - he);
		} else {
			CHECK(!close.close_done);
			append(&want, (const char *)data, close.consumed - close.held);
		}
		CHECK(want.len == close.len &&
		      (!want.len || !memcmp(want.client, close.client, want.len)));
		free(close.client);
		free(close_cut.client);
		free(want.client);
	}
	free(plain.client);
	free(plain_cut.client);
	return 0;
}
