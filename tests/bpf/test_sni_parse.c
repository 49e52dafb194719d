/* The SNI parser of the tc program, built as plain C, on the same crafted
 * ClientHellos and packets as the BPF_PROG_TEST_RUN tests, in one segment and
 * cut into two or more at every offset. No root needed. */
#include <stdio.h>
#include <string.h>

#include "../unit/tap.h"
#include "packets.h"

/* ClientHellos of real clients, captured into the fuzz seed corpus. */
static const struct {
	const char *file;
	int want;
	const char *host;
} captured[] = {
	{ "tests/fuzz/corpus/sni/openssl-tls13-blocked-example", EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "tests/fuzz/corpus/sni/openssl-tls12-blocked-example", EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "tests/fuzz/corpus/sni/curl-blocked-example", EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "tests/fuzz/corpus/sni/openssl-no-sni", EDGE_SNI_ABSENT, NULL },
};

static struct edge_sni_walk walk;

/* p as a first segment; on EDGE_SNI_MORE the walk is in walk. */
static int parse(const uint8_t *p, size_t len, struct edge_sni *out)
{
	struct edge_sni_src src = { .data = p, .len = (__u32)len };

	memset(out, 0, sizeof(*out));
	return edge_sni_parse(&src, (__u32)len, out, &walk);
}

/* The next segment of the walk. */
static int more(const uint8_t *p, size_t len, struct edge_sni *out)
{
	struct edge_sni_src src = { .data = p, .len = (__u32)len };

	return edge_sni_continue(&src, (__u32)len, &walk, out);
}

/* p cut into segments at cuts[0] < cuts[1] < ... < n: the result once the
 * walk ends, is given up (PARTIAL), or needs more than p has (MORE). */
static int parse_cut(const uint8_t *p, size_t n, const size_t *cuts, int n_cuts,
		     struct edge_sni *out)
{
	size_t at = n_cuts ? cuts[0] : n;
	int r = parse(p, at, out);

	for (int i = 1; i <= n_cuts && r == EDGE_SNI_MORE; i++) {
		size_t to = i < n_cuts ? cuts[i] : n;

		r = more(p + at, to - at, out);
		at = to;
	}
	return r;
}

static int same(int r, const struct edge_sni *a, int want, const struct edge_sni *b)
{
	return r == want &&
	       (r != EDGE_SNI_FOUND || (a->host_hash == b->host_hash &&
					a->name_off == b->name_off && a->name_len == b->name_len));
}

/* Where the extensions start: the first segment must reach that far. */
static size_t first_ext(const uint8_t *p, size_t n)
{
	struct edge_sni_src src = { .data = p, .len = (__u32)n };
	struct edge_sni_walk w;

	return edge_sni_begin(&src, (__u32)n, &w) == EDGE_SNI_MORE ? w.next : 0;
}

int main(void)
{
	static const struct flow_spec flows[] = {
		{ .family = AF_INET,
		  .saddr = "192.0.2.1",
		  .daddr = "192.0.2.2",
		  .sport = 40000,
		  .dport = 8443 },
		{ .family = AF_INET6,
		  .saddr = "2001:db8::1",
		  .daddr = "2001:db8::2",
		  .sport = 40000,
		  .dport = 8443,
		  .vlan = 1 },
	};
	uint8_t hello[PKT_MAX], pkt[PKT_MAX];
	struct edge_sni sni;
	size_t n, plen;
	int r;

	/* The hash: FNV-1a 32 reference values, and case folding. */
	is_int(edge_sni_hash("", 0), 0x811c9dc5u, "FNV-1a of the empty string");
	is_int(edge_sni_hash("a", 1), 0xe40c292cu, "FNV-1a of \"a\"");
	is_int(edge_sni_hash("foobar", 6), 0xbf9cf968u, "FNV-1a of \"foobar\"");
	is_int(edge_sni_hash("FooBAR", 6), 0xbf9cf968u, "ASCII letters fold to lower case");
	ok(edge_sni_hash("@[`{", 4) != edge_sni_hash("`{@[", 4) &&
		   edge_sni_hash("@", 1) != edge_sni_hash("`", 1) &&
		   edge_sni_hash("[", 1) != edge_sni_hash("{", 1),
	   "only A-Z fold: '@' '[' stay apart from '`' '{'");
	for (unsigned int c = 0; c < 256; c++) {
		char a = (char)c, b = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);

		if (edge_sni_hash(&a, 1) != edge_sni_hash(&b, 1)) {
			ok(0, "byte %u folds like tolower() in the C locale", c);
			break;
		}
		if (c == 255)
			ok(1, "every byte folds like tolower() in the C locale");
	}

	/* Every crafted ClientHello, on its own. */
	for (size_t i = 0; i < N_SNI_CASES; i++) {
		const struct sni_case *tc = &sni_cases[i];

		n = tc->build(hello, sizeof(hello));
		if (!n) {
			ok(0, "%s: built", tc->name);
			continue;
		}
		r = parse(hello, n, &sni);
		ok(r == tc->want, "%s: %s", tc->name, sni_result_name(tc->want));
		if (r != tc->want)
			printf("#   got %s\n", sni_result_name(r));
		if (tc->want == EDGE_SNI_FOUND && r == EDGE_SNI_FOUND) {
			ok(sni.name_off + sni.name_len <= n &&
				   sni.host_hash ==
					   edge_sni_hash((const char *)hello + sni.name_off,
							 sni.name_len) &&
				   sni.host_hash ==
					   edge_sni_hash(tc->host, (__u32)strlen(tc->host)),
			   "%s: name in bounds, hash of %.20s%s", tc->name, tc->host,
			   strlen(tc->host) > 20 ? "..." : "");
		}
		/* Every prefix is partial before the extensions, then more until the whole
		 * name is in, then found, with the same name: never a verdict on bytes that
		 * are not there. */
		if (tc->want == EDGE_SNI_FOUND || tc->want == EDGE_SNI_ABSENT) {
			struct edge_sni whole = sni, pre;
			size_t bad = 0, fe = first_ext(hello, n);
			size_t name_end = whole.name_off + whole.name_len;

			if (!fe)
				fe = n; /* no extensions: cut anywhere, it is not followed */

			for (size_t k = 0; k < n && !bad; k++) {
				r = parse(hello, k, &pre);
				if (k == 0)
					bad = r != EDGE_SNI_NOT_HELLO;
				else if (k < fe)
					bad = r != EDGE_SNI_PARTIAL;
				else if (tc->want == EDGE_SNI_FOUND && k >= name_end)
					bad = !same(r, &pre, EDGE_SNI_FOUND, &whole);
				else
					bad = r != EDGE_SNI_MORE;
				if (bad)
					bad = k + 1;
			}
			ok(!bad, "%s: its %zu prefixes: partial, more, then %s", tc->name, n,
			   tc->want == EDGE_SNI_FOUND ? "found" : "more to the end");
			if (bad)
				printf("#   prefix of %zu bytes: %s\n", bad - 1,
				       sni_result_name(parse(hello, bad - 1, &pre)));
		}
	}

	/* Every case cut into two segments at every offset: the walk goes on in the second
	 * and ends as over one buffer, given up only when the cut is before the
	 * extensions. Then the first segment up to the extensions and the rest a byte a
	 * segment. */
	for (size_t i = 0; i < N_SNI_CASES; i++) {
		const struct sni_case *tc = &sni_cases[i];
		struct edge_sni whole, cut;
		size_t bad = 0, gave_up = 0, fe, cuts[PKT_MAX];
		int rw, nc = 0;

		n = tc->build(hello, sizeof(hello));
		rw = parse(hello, n, &whole);
		fe = first_ext(hello, n);
		for (size_t k = 1; k < n && !bad; k++) {
			r = parse_cut(hello, n, &k, 1, &cut);
			if (r == EDGE_SNI_PARTIAL && rw != EDGE_SNI_PARTIAL) {
				gave_up++;
				if (k >= fe && fe)
					bad = k;
			} else if (!same(r, &cut, rw, &whole)) {
				bad = k;
			}
		}
		ok(!bad,
		   "%s: cut in two at each of %zu offsets: %s (%zu cuts before the "
		   "extensions given up)",
		   tc->name, n ? n - 1 : 0, sni_result_name(rw), gave_up);
		if (bad)
			printf("#   cut at %zu: %s\n", bad,
			       sni_result_name(parse_cut(hello, n, &bad, 1, &cut)));
		if (fe) {
			cuts[nc++] = fe;
			for (size_t k = fe + 1; k < n; k++)
				cuts[nc++] = k;
			r = parse_cut(hello, n, cuts, nc, &cut);
			ok(same(r, &cut, rw, &whole), "%s: the extensions a byte a segment: %s",
			   tc->name, sni_result_name(r));
		}
	}

	/* The cuts of issue 19, one by one, in a ClientHello with server_name after a
	 * 1,216-byte key share and in one with it before. */
	{
		struct hello_layout lo;
		struct edge_sni whole, cut;
		struct {
			const char *what;
			size_t at;
		} pts[8];
		size_t np = 0;
		__u32 want = edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1);

		n = hello_mlkem(hello, sizeof(hello), BLOCKED_HOST, 0, &lo);
		pts[np].what = "at the MSS, in the key share";
		pts[np++].at = SEG_MSS;
		pts[np].what = "between the key share and server_name";
		pts[np++].at = lo.sni;
		pts[np].what = "inside server_name's extension header";
		pts[np++].at = lo.sni + 2;
		pts[np].what = "inside server_name's list header";
		pts[np++].at = lo.sni + 6;
		pts[np].what = "inside the name";
		pts[np++].at = lo.sni + 9 + 5;
		pts[np].what = "after the name's first byte";
		pts[np++].at = lo.sni + 10;
		pts[np].what = "inside the key share's header";
		pts[np++].at = lo.keyshare + 3;
		pts[np].what = "right after the name";
		pts[np++].at = lo.sni + 9 + sizeof(BLOCKED_HOST) - 1;
		is_int(parse(hello, n, &whole), EDGE_SNI_FOUND,
		       "a %zu-byte ClientHello, SNI after the key share, in one buffer: found", n);
		for (size_t j = 0; j < np; j++) {
			r = parse_cut(hello, n, &pts[j].at, 1, &cut);
			ok(same(r, &cut, EDGE_SNI_FOUND, &whole) && cut.host_hash == want,
			   "cut %s (%zu): found " BLOCKED_HOST " %s", pts[j].what, pts[j].at,
			   pts[j].at >= lo.sni + 9 + sizeof(BLOCKED_HOST) - 1 ? "in the first"
									      : "in the second");
		}
		r = parse(hello, SEG_MSS, &cut);
		ok(r == EDGE_SNI_MORE && walk.pos == SEG_MSS && walk.next == lo.sni &&
			   walk.phase == EDGE_SNI_AT_EXT && walk.ext_end == n,
		   "the walk at the MSS: next segment at %u, next extension at %u, %u to go",
		   walk.pos, walk.next, walk.ext_end - walk.pos);

		n = hello_mlkem(hello, sizeof(hello), BLOCKED_HOST, 1, &lo);
		r = parse(hello, SEG_MSS, &cut);
		ok(r == EDGE_SNI_FOUND && cut.host_hash == want && n > SEG_MSS,
		   "SNI before the key share: found in the first %d of %zu bytes", SEG_MSS, n);

		/* A walk that does not add up is given up, never trusted. */
		n = hello_mlkem(hello, sizeof(hello), BLOCKED_HOST, 0, &lo);
		r = parse(hello, lo.sni + 2, &cut);
		ok(r == EDGE_SNI_MORE && walk.carry_len == 2, "cut in the header: 2 bytes carried");
		walk.pos++;
		ok(more(hello + lo.sni + 2, n - lo.sni - 2, &cut) == EDGE_SNI_PARTIAL,
		   "a carry that does not end where the segment starts: partial");
		parse(hello, lo.sni + 12, &cut);
		walk.name_done = 300;
		ok(more(hello + lo.sni + 12, n - lo.sni - 12, &cut) == EDGE_SNI_PARTIAL,
		   "a name hashed past its length: partial");
		parse(hello, SEG_MSS, &cut);
		walk.phase = 7;
		ok(more(hello + SEG_MSS, n - SEG_MSS, &cut) == EDGE_SNI_PARTIAL,
		   "an unknown phase: partial");
	}

	/* The same hellos inside the packets the BPF tests send: the parser reads the payload
	 * where the program would. */
	for (size_t f = 0; f < sizeof(flows) / sizeof(flows[0]); f++) {
		int agree = 1;

		for (size_t i = 0; i < N_SNI_CASES; i++) {
			n = sni_cases[i].build(hello, sizeof(hello));
			plen = pkt_build(pkt, sizeof(pkt), &flows[f], TCP_ACK | TCP_PSH, hello, n);
			if (!plen ||
			    parse(pkt + pkt_payload_off(&flows[f]),
				  plen - pkt_payload_off(&flows[f]), &sni) != sni_cases[i].want)
				agree = 0;
		}
		ok(agree, "every case gives the same result inside an %s%s packet",
		   flows[f].family == AF_INET ? "IPv4" : "IPv6", flows[f].vlan ? " VLAN" : "");
	}

	for (size_t i = 0; i < sizeof(captured) / sizeof(captured[0]); i++) {
		FILE *fp = fopen(captured[i].file, "rb");

		n = fp ? fread(hello, 1, sizeof(hello), fp) : 0;
		if (fp)
			fclose(fp);
		r = n ? parse(hello, n, &sni) : -1;
		ok(r == captured[i].want &&
			   (r != EDGE_SNI_FOUND ||
			    sni.host_hash == edge_sni_hash(captured[i].host,
							   (__u32)strlen(captured[i].host))),
		   "captured %s: %s", captured[i].file + sizeof("tests/fuzz/corpus/sni/") - 1,
		   sni_result_name(captured[i].want));
		if (!n)
			printf("#   cannot read %s (run from the repository root)\n",
			       captured[i].file);
	}

	/* A source shorter than the length it claims: the load fails, nothing is read. */
	n = c_blocked(hello, sizeof(hello));
	{
		struct edge_sni_src src = { .data = hello, .len = (__u32)(n - 10) };

		r = edge_sni_parse(&src, (__u32)n, &sni, &walk);
		ok(r == EDGE_SNI_PARTIAL,
		   "payload length beyond the buffer: partial, no verdict (%s)",
		   sni_result_name(r));
	}
	return tap_done();
}
