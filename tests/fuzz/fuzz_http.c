/*
 * libFuzzer target for the request-direction rewriter of headers mode
 * (userspace/forward.c), plain C: clang -fsanitize=fuzzer,address,undefined.
 * Besides memory safety it checks what the relay relies on:
 *   - the result never depends on how the stream is cut: the input fed whole
 *     and fed in pieces (sizes taken from the first input byte) gives the same
 *     output, the same request count and the same refusal;
 *   - no client-sent Client-Cert, Client-Cert-Chain or X-Client-Verify field
 *     survives in a rewritten head: each head carries exactly one X-Client-Verify,
 *     the edge's;
 *   - the output never has more bytes than the input plus one injected block per head;
 *   - a refusal is 400, 421 or 431 with a reason;
 *   - with rw->hop (--protocol http; a bit of the first byte) no Connection or Keep-Alive
 *     field survives either, and what is dropped after a close request does not depend on
 *     the cuts; the cut run also trims the rewriter's buffers between pieces.
 * tests/fuzz/run.sh runs it for a bounded time over tests/fuzz/corpus/http/.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forward.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

#define INJ "X-Client-Verify: SUCCESS\r\n"

struct run {
	char *out;
	size_t len, cap;
	uint64_t requests;
	int status;
	const char *reason;
	int rc;
	uint64_t dropped;
};

static struct edge_http_rw rw;

static void collect(struct run *r)
{
	size_t n = rw.out_len - rw.out_off;

	if (!n)
		return;
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->out = realloc(r->out, r->cap);
		CHECK(r->out);
	}
	memcpy(r->out + r->len, rw.out + rw.out_off, n);
	r->len += n;
	rw.out_off = rw.out_len;
}

static void feed(const uint8_t *data, size_t size, unsigned int step, bool hop, struct run *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	edge_http_rw_init(&rw, "api.example.test", INJ, strlen(INJ));
	rw.hop = hop;
	while (off < size) {
		size_t n = step && size - off > step ? step : size - off;
		ssize_t k = edge_http_rw_feed(&rw, (const char *)data + off, n);

		collect(r);
		if (k < 0) {
			r->rc = (int)k;
			break;
		}
		CHECK((size_t)k <= n);
		CHECK(k > 0 || n == 0);
		off += (size_t)k;
		if (step)
			edge_http_rw_trim(&rw); /* as the relay does when the client goes quiet */
	}
	r->requests = rw.requests;
	r->dropped = rw.dropped;
	r->status = rw.status;
	r->reason = rw.reason;
	edge_http_rw_free(&rw);
}

/* Counts lines that start (case-insensitively) with name followed by ':'. */
static size_t count_field(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name), c = 0;

	for (size_t i = 0; i + n < len; i++)
		if ((i == 0 || p[i - 1] == '\n') && !strncasecmp(p + i, name, n) && p[i + n] == ':')
			c++;
	return c;
}

static bool ci_contains(const uint8_t *p, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++)
		if (!strncasecmp((const char *)p + i, word, n))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, cut;
	unsigned int step;
	bool hop;

	if (!size)
		return 0;
	step = (data[0] % 17) + 1;
	hop = (data[0] / 17) & 1; /* --protocol http: hop-by-hop fields are the edge's */
	data++;
	size--;
	feed(data, size, 0, hop, &whole);
	feed(data, size, step, hop, &cut);
	CHECK(whole.dropped == cut.dropped);
	CHECK(hop || whole.dropped == 0);
	CHECK(whole.rc == cut.rc);
	CHECK(whole.len == cut.len && (!whole.len || !memcmp(whole.out, cut.out, whole.len)));
	CHECK(whole.requests == cut.requests);
	CHECK(whole.status == cut.status);
	CHECK(whole.rc == 0 || whole.rc == -EPROTO);
	if (whole.rc) {
		CHECK(whole.status == 400 || whole.status == 421 || whole.status == 431);
		CHECK(whole.reason && whole.reason == cut.reason);
	} else {
		CHECK(whole.status == 0);
	}
	CHECK(whole.len <= size + whole.requests * strlen(INJ));
	/* Every head the rewriter emitted carries our one X-Client-Verify, and client copies
	 * of the three fields are gone. Bodies are opaque, so only inputs without bodies
	 * (no Content-Length / Transfer-Encoding anywhere) are counted. */
	if (!ci_contains(data, size, "content-length") &&
	    !ci_contains(data, size, "transfer-encoding")) {
		CHECK(count_field(whole.out, whole.len, "x-client-verify") == whole.requests);
		CHECK(count_field(whole.out, whole.len, "client-cert") == 0);
		CHECK(count_field(whole.out, whole.len, "client-cert-chain") == 0);
		if (hop) {
			CHECK(count_field(whole.out, whole.len, "connection") == 0);
			CHECK(count_field(whole.out, whole.len, "keep-alive") == 0);
		}
	}
	free(whole.out);
	free(cut.out);
	return 0;
}
