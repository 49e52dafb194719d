/* Unit tests for userspace/lib/alpn.c: ALPN lists, text to wire, and what they name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alpn.h"
#include "tap.h"

static char err[512];

static void test_parse(void)
{
	unsigned char w[EDGE_ALPN_WIRE_MAX];
	size_t n = 99;
	static const char *const bad[] = {
		",",
		"h2,",
		",h2",
		"h2,,http/1.1",
		"h2,h2",
		"h 2",
		"h2\t",
		"caf\xc3\xa9",
		"a,b,c,d,e,f,g,h,i",
		"0123456789012345678901234567890123",
	};

	is_int(edge_alpn_parse("", w, &n, err, sizeof(err)), 0, "the empty list parses");
	is_int((int)n, 0, "  to nothing (no ALPN)");
	is_int(edge_alpn_parse(NULL, w, &n, err, sizeof(err)), 0, "NULL is the empty list");
	is_int(edge_alpn_parse("h2,http/1.1", w, &n, err, sizeof(err)), 0, "h2,http/1.1 parses");
	ok(n == 12 && !memcmp(w, "\x02h2\x08http/1.1", 12), "  to its wire form, in order");
	ok(edge_alpn_has(w, n, "http/1.1", 8) && edge_alpn_has(w, n, "h2", 2) &&
		   !edge_alpn_has(w, n, "h3", 2) && !edge_alpn_has(w, n, "http/1.", 7),
	   "edge_alpn_has finds whole tokens only");
	ok(edge_alpn_beyond_http1(w, n), "h2 is beyond HTTP/1.1");
	is_int(edge_alpn_parse("http/1.1", w, &n, err, sizeof(err)), 0, "http/1.1 alone parses");
	ok(!edge_alpn_beyond_http1(w, n), "  and is not beyond HTTP/1.1");
	is_int(edge_alpn_parse("postgresql", w, &n, err, sizeof(err)), 0, "any token: postgresql");
	ok(edge_alpn_beyond_http1(w, n), "  is beyond HTTP/1.1");
	is_int(edge_alpn_parse("a,b,c,d,e,f,g,h", w, &n, err, sizeof(err)), 0,
	       "EDGE_MAX_ALPN tokens parse");
	is_int(edge_alpn_parse("01234567890123456789012345678901", w, &n, err, sizeof(err)), 0,
	       "a token of EDGE_ALPN_TOKEN_MAX characters parses");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		is_int(edge_alpn_parse(bad[i], w, &n, err, sizeof(err)), -EINVAL,
		       "'%s' refused: %s", bad[i], err);
		ok(err[0] && n == 0, "  with a reason, and no list");
	}
}

int main(void)
{
	test_parse();
	return tap_done();
}
