/* The SNI parser of the tc program, built as plain C, on the same crafted
 * ClientHellos and packets as the BPF_PROG_TEST_RUN tests. No root needed. */
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

static int parse(const uint8_t *p, size_t len, struct edge_sni *out)
{
	struct edge_sni_src src = { .data = p, .len = (__u32)len };

	memset(out, 0, sizeof(*out));
	return edge_sni_parse(&src, (__u32)len, out);
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
		/* Every prefix of a complete ClientHello is partial or not one at all: never a
		 * verdict on bytes that are not there. */
		if (tc->want == EDGE_SNI_FOUND || tc->want == EDGE_SNI_ABSENT) {
			size_t bad = 0;

			for (size_t k = 0; k < n; k++) {
				r = parse(hello, k, &sni);
				if (r != EDGE_SNI_PARTIAL && !(k == 0 && r == EDGE_SNI_NOT_HELLO))
					bad = bad ? bad : k + 1;
			}
			ok(!bad, "%s: all %zu shorter prefixes are partial", tc->name, n);
			if (bad)
				printf("#   prefix of %zu bytes: %s\n", bad - 1,
				       sni_result_name(parse(hello, bad - 1, &sni)));
		}
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

		r = edge_sni_parse(&src, (__u32)n, &sni);
		ok(r != EDGE_SNI_FOUND && r != EDGE_SNI_ABSENT,
		   "payload length beyond the buffer: no verdict (%s)", sni_result_name(r));
	}
	return tap_done();
}
