/* forward.c: the PROXY v2 header, the RFC 9440 header block, and the request
 * rewriter fed every way a stream can be cut (byte by byte, in odd pieces, whole). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "tap.h"

#define INJ "X-Client-Verify: SUCCESS\r\n"
#define HOST "api.example.test"

struct result {
	char out[65536];
	size_t out_len;
	int status;
	const char *reason;
	uint64_t requests;
};

/* Feeds in to a fresh rewriter in pieces of `step` bytes (0: whole), draining out as the
 * relay does; returns 0, or the negative result that stopped it. */
static int run(const char *in, size_t len, size_t step, struct result *r)
{
	struct edge_http_rw *rw = malloc(sizeof(*rw));
	size_t off = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	edge_http_rw_init(rw, "API.example.test", INJ, strlen(INJ));
	while (off < len) {
		size_t n = step && len - off > step ? step : len - off;
		ssize_t k = edge_http_rw_feed(rw, in + off, n);

		if (rw->out && rw->out_len - rw->out_off + r->out_len < sizeof(r->out)) {
			memcpy(r->out + r->out_len, rw->out + rw->out_off,
			       rw->out_len - rw->out_off);
			r->out_len += rw->out_len - rw->out_off;
		}
		rw->out_off = rw->out_len;
		if (k < 0) {
			rc = (int)k;
			break;
		}
		off += (size_t)k;
	}
	r->status = rw->status;
	r->reason = rw->reason;
	r->requests = rw->requests;
	edge_http_rw_free(rw);
	free(rw);
	return rc;
}

static const size_t steps[] = { 0, 1, 2, 3, 7, 64 };
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

/* in becomes exactly want, for every way of cutting it. */
static void rewrites(const char *in, const char *want, uint64_t requests, const char *name)
{
	struct result r;
	bool good = true;

	for (size_t i = 0; i < NSTEPS; i++) {
		int rc = run(in, strlen(in), steps[i], &r);

		if (rc || r.out_len != strlen(want) || memcmp(r.out, want, r.out_len) ||
		    r.requests != requests) {
			printf("# step %zu: rc=%d reason=%s requests=%llu out (%zu):\n# %.*s\n",
			       steps[i], rc, r.reason ? r.reason : "-",
			       (unsigned long long)r.requests, r.out_len, (int)r.out_len, r.out);
			good = false;
			break;
		}
	}
	ok(good, "%s", name);
}

/* in is refused with status and reason, for every way of cutting it; out holds only
 * what came before (prefix). */
static void refuses(const char *in, size_t len, int status, const char *reason, const char *prefix,
		    const char *name)
{
	struct result r;
	bool good = true;

	for (size_t i = 0; i < NSTEPS; i++) {
		int rc = run(in, len, steps[i], &r);

		if (rc != -EPROTO || r.status != status || !r.reason || strcmp(r.reason, reason) ||
		    r.out_len != strlen(prefix) || memcmp(r.out, prefix, r.out_len)) {
			printf("# step %zu: rc=%d status=%d reason=%s out=%.*s\n", steps[i], rc,
			       r.status, r.reason ? r.reason : "-", (int)r.out_len, r.out);
			good = false;
			break;
		}
	}
	ok(good, "%s", name);
}

#define REFUSES(in, status, reason, name) refuses(in, sizeof(in) - 1, status, reason, "", name)
#define REFUSES2(in, status, reason, prefix, name) \
	refuses(in, sizeof(in) - 1, status, reason, prefix, name)

static void test_rewriter(void)
{
	static char big[EDGE_HTTP_HEAD_MAX + 200];

	rewrites("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n", 1,
		 "a plain GET gets the edge's lines before the empty line");
	rewrites("GET / HTTP/1.1\r\nHost: API.Example.TEST:8443\r\nAccept: */*\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: API.Example.TEST:8443\r\nAccept: */*\r\n" INJ "\r\n", 1,
		 "Host matches without regard to case or port");
	rewrites("GET / HTTP/1.1\r\nHost: api.example.test.\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: api.example.test.\r\n" INJ "\r\n", 1,
		 "a fully qualified Host (root dot) matches");
	rewrites("GET / HTTP/1.1\r\nclient-cert: :Zm9v:\r\nHost: api.example.test\r\n"
		 "Client-Cert-Chain: :YQ==:\r\nX-CLIENT-VERIFY: SUCCESS\r\nx-client-verify: x\r\n"
		 "X-Keep: 1\r\nClient-Cert: :YmFy:\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Keep: 1\r\n" INJ "\r\n", 1,
		 "client-sent Client-Cert, Client-Cert-Chain, X-Client-Verify stripped, any case, "
		 "duplicates too");
	rewrites("GET / HTTP/1.1\r\nX-Client-Verify-Extra: 1\r\nClient-Certs: 2\r\n"
		 "Host: api.example.test\r\n\r\n",
		 "GET / HTTP/1.1\r\nX-Client-Verify-Extra: 1\r\nClient-Certs: 2\r\n"
		 "Host: api.example.test\r\n" INJ "\r\n",
		 1, "fields that only start with our names are kept");
	rewrites("\r\n\r\nGET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n", 1,
		 "empty lines before a request line are skipped");
	rewrites("POST /x HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 11\r\n\r\n"
		 "Host: a\r\n\r\nGET / HTTP/1.1\r\nHost: api.example.test\r\nClient-Cert: :x:\r\n\r\n",
		 "POST /x HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 11\r\n" INJ "\r\n"
		 "Host: a\r\n\r\nGET / HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n",
		 2,
		 "a Content-Length body passes untouched (even when it looks like a head); the next "
		 "request is rewritten");
	rewrites("POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: Chunked\r\n\r\n"
		 "5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n"
		 "Client-Cert: :x:\r\n\r\nGET /2 HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: Chunked\r\n" INJ
		 "\r\n5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n"
		 "GET /2 HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n",
		 2,
		 "a chunked body passes, trailers lose our names, the next request is rewritten");
	rewrites("POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "0\r\n\r\n",
		 "POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n" INJ
		 "\r\n0\r\n\r\n",
		 1, "an empty chunked body");
	rewrites("GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.0\r\n" INJ "\r\n", 1,
		 "HTTP/1.0 without Host is accepted");
	rewrites("GET http://api.example.test:443/p HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "GET http://api.example.test:443/p HTTP/1.1\r\nHost: api.example.test\r\n" INJ
		 "\r\n",
		 1, "absolute-form naming the SNI");
	rewrites("OPTIONS * HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "OPTIONS * HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n", 1, "OPTIONS *");
	rewrites("GET / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 0\r\n\r\n"
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 0\r\n" INJ "\r\n"
		 "GET / HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n",
		 2, "Content-Length: 0 and pipelining");

	REFUSES("GET / HTTP/1.1\r\nHost: other.example.test\r\n\r\n", 421, "host_mismatch",
		"Host naming another name: 421");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test.evil\r\n\r\n", 421, "host_mismatch",
		"Host with the SNI as a prefix: 421");
	REFUSES("GET / HTTP/1.1\r\nHost: xapi.example.test\r\n\r\n", 421, "host_mismatch",
		"Host with the SNI as a suffix: 421");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test:80x\r\n\r\n", 421, "host_mismatch",
		"Host with a bad port: 421");
	REFUSES("GET / HTTP/1.1\r\nHost: \r\n\r\n", 421, "host_mismatch", "empty Host: 421");
	REFUSES("GET http://evil.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n", 421,
		"host_mismatch", "absolute-form naming another host: 421");
	REFUSES("GET http://api.example.test@evil.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		400, "bad_target", "absolute-form with userinfo: 400");
	REFUSES("GET / HTTP/1.1\r\n\r\n", 400, "missing_host", "HTTP/1.1 without Host: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\r\nHost: api.example.test\r\n\r\n", 400,
		"duplicate_host", "two Host fields: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 3\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		400, "content_length_and_transfer_encoding",
		"Content-Length and Transfer-Encoding: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		400, "bad_transfer_encoding", "a transfer coding other than chunked: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		400, "bad_transfer_encoding", "two Transfer-Encoding fields: 400");
	REFUSES("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
		"bad_transfer_encoding", "Transfer-Encoding in HTTP/1.0: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1\r\n"
		"Content-Length: 1\r\n\r\n",
		400, "duplicate_content_length", "two Content-Length fields: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: -1\r\n\r\n", 400,
		"bad_content_length", "negative Content-Length: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1, 1\r\n\r\n", 400,
		"bad_content_length", "Content-Length list: 400");
	REFUSES("POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 9999999999999999999\r\n"
		"\r\n",
		400, "bad_content_length", "Content-Length of 19 digits: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\r\nX-A: 1\r\n folded\r\n\r\n", 400,
		"obs_fold", "obs-fold: 400");
	REFUSES("GET / HTTP/1.1\r\nHost : api.example.test\r\n\r\n", 400, "bad_header",
		"whitespace before the colon: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\r\nNoColon\r\n\r\n", 400, "bad_header",
		"a field line without a colon: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\r\nX: a\x01b\r\n\r\n", 400, "bad_header",
		"a control character in a value: 400");
	REFUSES("GET / HTTP/1.1\nHost: api.example.test\n\n", 400, "bare_lf", "bare LF: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\rX: 1\r\n\r\n", 400, "bare_cr",
		"bare CR: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.\0example.test\r\n\r\n", 400, "nul_byte",
		"a NUL byte: 400");
	REFUSES("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "http2_preface",
		"the HTTP/2 preface: 400");
	REFUSES("GET / HTTP/1.2\r\nHost: api.example.test\r\n\r\n", 400, "bad_version",
		"HTTP/1.2: 400");
	REFUSES("GET /  HTTP/1.1\r\nHost: api.example.test\r\n\r\n", 400, "bad_version",
		"two spaces in the request line: 400");
	REFUSES("GET\r\n\r\n", 400, "bad_request_line", "no target: 400");
	REFUSES("CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test\r\n\r\n", 400,
		"connect", "CONNECT: 400");
	REFUSES("GET / HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n\r\n",
		400, "upgrade", "Upgrade: 400");
	REFUSES("GET foo HTTP/1.1\r\nHost: api.example.test\r\n\r\n", 400, "bad_target",
		"a relative target: 400");
	/* Mid-body: the head and the good bytes are out already; the stream stops there. */
#define CHUNKED "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n"
	REFUSES2(CHUNKED "\r\nzz\r\n", 400, "bad_chunk_size", CHUNKED INJ "\r\n",
		 "a chunk size that is not hex: 400");
	REFUSES2(CHUNKED "\r\n1000000000000000\r\n", 400, "bad_chunk_size", CHUNKED INJ "\r\n",
		 "a 16-digit chunk size: 400");
	REFUSES2(CHUNKED "\r\n-1\r\n", 400, "bad_chunk_size", CHUNKED INJ "\r\n",
		 "a negative chunk size: 400");
	REFUSES2(CHUNKED "\r\n\r\n", 400, "bad_chunk_size", CHUNKED INJ "\r\n",
		 "an empty chunk size line: 400");
	REFUSES2(CHUNKED "\r\n2\r\nabX\r\n", 400, "bad_chunk_end", CHUNKED INJ "\r\n2\r\nab",
		 "chunk data longer than its size: 400");
	REFUSES2(CHUNKED "\r\n0\r\n folded\r\n\r\n", 400, "obs_fold", CHUNKED INJ "\r\n0\r\n",
		 "obs-fold in trailers: 400");

	/* A refused request after a good one: the good one is out, nothing of the bad. */
	REFUSES2("GET /1 HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
		 "GET /2 HTTP/1.1\r\nHost: evil.test\r\n\r\n",
		 421, "host_mismatch", "GET /1 HTTP/1.1\r\nHost: api.example.test\r\n" INJ "\r\n",
		 "a bad second request: the first is forwarded, the second is not");

	/* Head size bound. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Big: ", 47);
	refuses(big, sizeof(big), 431, "head_too_large", "", "a head over 16 KiB: 431");
	{
		size_t n = EDGE_HTTP_HEAD_MAX - 4;
		struct result r;
		int rc;

		memset(big, 'a', n);
		memcpy(big, "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Big: ", 47);
		memcpy(big + n, "\r\n\r\n", 4);
		rc = run(big, n + 4, 0, &r);
		ok(!rc && r.requests == 1 && r.out_len == n + 2 + strlen(INJ) + 2,
		   "a head of exactly 16 KiB passes");
	}
	{
		struct result r;
		int rc = run("\r\n", 2, 0, &r);

		ok(!rc && !r.out_len && !r.status, "an empty line alone waits");
		rc = run("GET / HTTP/1.1\r\nHost: api", 25, 1, &r);
		ok(!rc && !r.out_len && !r.requests, "a partial head emits nothing");
	}
}

static void test_refusal_pages(void)
{
	static const int statuses[] = { 400, 421, 431 };

	for (size_t i = 0; i < 3; i++) {
		size_t len;
		const char *p = edge_http_refusal(statuses[i], &len);
		const char *body = strstr(p, "\r\n\r\n");
		const char *cl = strstr(p, "Content-Length: ");
		char line[32];

		snprintf(line, sizeof(line), "HTTP/1.1 %d ", statuses[i]);
		ok(body && cl && !strncmp(p, line, strlen(line)) &&
			   strtoul(cl + 16, NULL, 10) == len - (size_t)(body + 4 - p) &&
			   strstr(p, "Connection: close\r\n"),
		   "the %d page is well formed and its Content-Length is right", statuses[i]);
	}
}

static void test_proxy_v2(void)
{
	static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	struct edge_forward_id id = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&id.src, *d4 = (struct sockaddr_in *)&id.dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&id.src;
	unsigned char sha[32], out[EDGE_PP2_MAX];
	size_t len = 0;
	int rc;

	memset(sha, 0xab, sizeof(sha));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.1", &s4->sin_addr);
	d4->sin_family = AF_INET;
	d4->sin_port = htons(443);
	inet_pton(AF_INET, "198.51.100.7", &d4->sin_addr);
	id.authority = HOST;
	id.alpn = "h2";
	id.cert_conn = id.cert_sess = true;
	id.verify = 0;
	id.verify_text = "SUCCESS";
	id.version = "TLSv1.3";
	id.cipher = "TLS_AES_128_GCM_SHA256";
	id.cn = "alice";
	id.serial = "0A1B";
	id.sha256 = sha;
	rc = edge_forward_proxy_v2(&id, out, sizeof(out), &len);
	is_int(rc, 0, "PROXY v2 over IPv4 builds");
	ok(!memcmp(out, sig, 12) && out[12] == 0x21 && out[13] == 0x11,
	   "signature, v2 PROXY, TCP4");
	is_int((out[14] << 8 | out[15]) + 16, len, "the length field covers the rest");
	ok(!memcmp(out + 16, "\xc0\x00\x02\x01\xc6\x33\x64\x07\x9c\x40\x01\xbb", 12),
	   "addresses and ports in network order");
	{
		/* Walk the TLVs: AUTHORITY, SSL (with sub-TLVs), 0xE0, 0xE1, 0xE2. */
		const unsigned char *t = out + 28, *end = out + len;
		int seen = 0;

		while (t + 3 <= end) {
			size_t tl = (size_t)t[1] << 8 | t[2];

			if (t + 3 + tl > end)
				break;
			if (t[0] == EDGE_PP2_TYPE_AUTHORITY && tl == strlen(HOST) &&
			    !memcmp(t + 3, HOST, tl))
				seen |= 1;
			if (t[0] == EDGE_PP2_TYPE_SSL && t[3] == 0x07 &&
			    !memcmp(t + 4, "\0\0\0\0", 4) && tl == 5 + 3 + 7 + 3 + 5 + 3 + 22)
				seen |= 2;
			if (t[0] == EDGE_PP2_TYPE_EDGE_SHA256 && tl == 32 &&
			    !memcmp(t + 3, sha, 32))
				seen |= 4;
			if (t[0] == EDGE_PP2_TYPE_EDGE_SERIAL && tl == 4 &&
			    !memcmp(t + 3, "0A1B", 4))
				seen |= 8;
			if (t[0] == EDGE_PP2_TYPE_EDGE_VERIFY && tl == 7 &&
			    !memcmp(t + 3, "SUCCESS", 7))
				seen |= 16;
			if (t[0] == EDGE_PP2_TYPE_ALPN && tl == 2 && !memcmp(t + 3, "h2", 2))
				seen |= 32;
			t += 3 + tl;
		}
		ok(t == end, "the TLVs fill the header exactly");
		is_int(seen, 63,
		       "ALPN, AUTHORITY, SSL (client 0x07, verify 0, 3 sub-TLVs), SHA-256, "
		       "serial and verify TLVs present");
	}
	/* IPv6, and IPv4-mapped IPv6 folding to IPv4. */
	memset(&id.src, 0, sizeof(id.src));
	memset(&id.dst, 0, sizeof(id.dst));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(1);
	inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
	((struct sockaddr_in6 *)&id.dst)->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::2", &((struct sockaddr_in6 *)&id.dst)->sin6_addr);
	rc = edge_forward_proxy_v2(&id, out, sizeof(out), &len);
	ok(!rc && out[13] == 0x21 && out[16 + 15] == 1 && out[32 + 15] == 2, "TCP6 addresses");
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &s6->sin6_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.10", &((struct sockaddr_in6 *)&id.dst)->sin6_addr);
	rc = edge_forward_proxy_v2(&id, out, sizeof(out), &len);
	ok(!rc && out[13] == 0x11 && out[19] == 9 && out[23] == 10,
	   "IPv4-mapped addresses are sent as TCP4");
	id.dst.ss_family = AF_UNSPEC;
	rc = edge_forward_proxy_v2(&id, out, sizeof(out), &len);
	ok(!rc && out[13] == 0x00, "unlike families: UNSPEC");
	rc = edge_forward_proxy_v2(&id, out, 20, &len);
	is_int(rc, -ENOSPC, "a buffer too small: -ENOSPC");
}

static void test_headers(void)
{
	static const unsigned char leaf[] = { 0x30, 0x82, 0x01 }, ca[] = { 0xff, 0xee, 0xdd, 0xcc };
	const unsigned char *chain[] = { ca, leaf };
	size_t chain_len[] = { sizeof(ca), 2 };
	struct edge_forward_id id = { 0 };
	char *out = NULL;
	size_t len = 0;
	int rc;

	id.verify_text = "NONE";
	rc = edge_forward_headers(&id, &out, &len);
	ok(!rc && len == strlen("X-Client-Verify: NONE\r\n") &&
		   !memcmp(out, "X-Client-Verify: NONE\r\n", len),
	   "no certificate: X-Client-Verify only");
	free(out);
	id.leaf = leaf;
	id.leaf_len = sizeof(leaf);
	id.verify_text = "FAILED:unknown_ca";
	rc = edge_forward_headers(&id, &out, &len);
	ok(!rc && len == strlen("Client-Cert: :MIIB:\r\nX-Client-Verify: FAILED:unknown_ca\r\n") &&
		   !memcmp(out, "Client-Cert: :MIIB:\r\nX-Client-Verify: FAILED:unknown_ca\r\n",
			   len),
	   "a leaf: Client-Cert as a byte sequence, no chain field");
	free(out);
	id.chain = chain;
	id.chain_len = chain_len;
	id.n_chain = 2;
	id.verify_text = "SUCCESS\r\nX-Evil: 1";
	rc = edge_forward_headers(&id, &out, &len);
	ok(!rc && strstr(out, "Client-Cert-Chain: :/+7dzA==:, :MII=:\r\n") &&
		   strstr(out, "X-Client-Verify: SUCCESS??X-Evil: 1\r\n"),
	   "the chain as a list of byte sequences, padding right; control bytes neutralised");
	free(out);
}

/* --protocol http: the rewriter with no injected lines, keeping Connection, Keep-Alive and
 * Proxy-Connection to itself and saying per head what the relay needs. */
struct hop_result {
	char out[8192];
	size_t out_len;
	char heads[16]; /* per head: 'H' HEAD, 'C' close, 'B' both, '-' neither */
	uint64_t dropped;
	int rc;
};

static void run_hop(const char *in, size_t step, struct hop_result *r)
{
	struct edge_http_rw *rw = malloc(sizeof(*rw));
	size_t off = 0, len = strlen(in), nh = 0;

	memset(r, 0, sizeof(*r));
	edge_http_rw_init(rw, HOST, NULL, 0);
	rw->hop = true;
	while (off < len) {
		size_t n = step && len - off > step ? step : len - off;
		uint64_t before = rw->requests;
		ssize_t k = edge_http_rw_feed(rw, in + off, n);

		if (rw->requests != before && nh + 1 < sizeof(r->heads))
			r->heads[nh++] = rw->last_head ? (rw->last_close ? 'B' : 'H')
						       : (rw->last_close ? 'C' : '-');
		if (rw->out && rw->out_len - rw->out_off + r->out_len < sizeof(r->out)) {
			memcpy(r->out + r->out_len, rw->out + rw->out_off,
			       rw->out_len - rw->out_off);
			r->out_len += rw->out_len - rw->out_off;
		}
		rw->out_off = rw->out_len;
		edge_http_rw_trim(rw); /* as the relay does when the client goes quiet */
		if (k < 0) {
			r->rc = (int)k;
			break;
		}
		off += (size_t)k;
	}
	r->dropped = rw->dropped;
	edge_http_rw_free(rw);
	free(rw);
}

static void hop(const char *in, const char *want, const char *heads, uint64_t dropped,
		const char *name)
{
	struct hop_result r;
	bool good = true;

	for (size_t i = 0; i < NSTEPS && good; i++) {
		run_hop(in, steps[i], &r);
		if (r.rc || r.out_len != strlen(want) || memcmp(r.out, want, r.out_len) ||
		    strcmp(r.heads, heads) || r.dropped != dropped) {
			printf("# step %zu: rc=%d heads=%s dropped=%llu out (%zu):\n# %.*s\n",
			       steps[i], r.rc, r.heads, (unsigned long long)r.dropped, r.out_len,
			       (int)r.out_len, r.out);
			good = false;
		}
	}
	ok(good, "%s", name);
}

static void test_hop(void)
{
	enum edge_protocol p;

	ok(!edge_protocol_parse("http", &p) && p == EDGE_PROTOCOL_HTTP, "protocol http");
	ok(!edge_protocol_parse("tcp", &p) && p == EDGE_PROTOCOL_TCP, "protocol tcp");
	is_int(edge_protocol_parse("HTTP", &p), -EINVAL, "protocol is exact");
	ok(!strcmp(edge_protocol_name(EDGE_PROTOCOL_HTTP), "http"), "protocol name");

	hop("GET / HTTP/1.1\r\nHost: " HOST
	    "\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
	    "Accept: */*\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: " HOST "\r\nAccept: */*\r\n\r\n", "-", 0,
	    "http: Connection and Keep-Alive are the edge's, the rest passes");
	hop("GET /a HTTP/1.1\r\nHost: " HOST "\r\nconnection: TE ,  Close\r\n\r\n"
	    "GET /b HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
	    "GET /a HTTP/1.1\r\nHost: " HOST "\r\n\r\n", "C", 43,
	    "http: a close request is the last; what follows is dropped, counted");
	hop("HEAD /x HTTP/1.1\r\nHost: " HOST "\r\nProxy-Connection: keep-alive\r\n\r\n"
	    "GET /y HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
	    "HEAD /x HTTP/1.1\r\nHost: " HOST "\r\n\r\nGET /y HTTP/1.1\r\nHost: " HOST "\r\n\r\n",
	    "H-", 0, "http: HEAD is reported per head, pipelined requests pass");
	hop("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	    "GET / HTTP/1.0\r\n\r\n", "C", 18,
	    "http: an HTTP/1.0 client's connection ends after its response");
	hop("POST /p HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
	    "helloGET",
	    "POST /p HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: 5\r\n\r\nhello", "C", 3,
	    "http: a close request's body passes whole, then nothing");
	hop("GET / HTTP/1.1\r\nHost: " HOST "\r\nConnection: closed\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: " HOST "\r\n\r\n", "-", 0,
	    "http: only the token close closes");
	{
		struct edge_http_rw rw;
		const char *head = "GET / HTTP/1.1\r\nHost: " HOST "\r\n\r\nGET / HT";
		size_t first = strlen(head) - 8;

		edge_http_rw_init(&rw, HOST, NULL, 0);
		rw.hop = true;
		edge_http_rw_feed(&rw, head, strlen(head)); /* one head at a time */
		rw.out_off = rw.out_len;
		edge_http_rw_trim(&rw);
		ok(!rw.buf && !rw.out, "trim: an idle rewriter holds no buffer");
		edge_http_rw_feed(&rw, head + first, 8);
		edge_http_rw_trim(&rw);
		ok(rw.buf && rw.buf_len == 8, "trim: a partial head is kept");
		edge_http_rw_free(&rw);
	}
}

int main(void)
{
	enum edge_forward f;

	ok(!edge_forward_parse("none", &f) && f == EDGE_FORWARD_NONE, "parse none");
	ok(!edge_forward_parse("proxy-v2", &f) && f == EDGE_FORWARD_PROXY_V2, "parse proxy-v2");
	ok(!edge_forward_parse("headers", &f) && f == EDGE_FORWARD_HEADERS, "parse headers");
	is_int(edge_forward_parse("Headers", &f), -EINVAL, "parse is exact");
	ok(!strcmp(edge_forward_name(EDGE_FORWARD_PROXY_V2), "proxy-v2"), "name");
	test_rewriter();
	test_refusal_pages();
	test_proxy_v2();
	test_headers();
	test_hop();
	return tap_done();
}
