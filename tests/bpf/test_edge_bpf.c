/*
 * The tc program through BPF_PROG_TEST_RUN on crafted Ethernet + IPv4/IPv6 +
 * TCP packets: tagged flows, offenders' ClientHellos, every odd ClientHello of
 * packets.h, ClientHellos cut into two or three segments at every offset (the
 * walk followed through sni_walks, and given up), other traffic, and floods
 * that must stay within the map bounds.
 * Needs root and a kernel with BPF: exits 77 saying why otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../bpf/edge_maps.h"
#include "../unit/tap.h"
#include "edge.skel.h"
#include "harness.h"
#include "packets.h"

static void send_cut(const struct flow_spec *f, const uint8_t *hello, size_t n, const size_t *cuts,
		     int n_cuts, __u32 *v)
{
	struct flow_spec g = *f;
	__u32 seq0 = f->seq ? f->seq : 0x1000;
	size_t at = 0;

	for (int i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : n;

		g.seq = seq0 + (__u32)at;
		v[i] = send_pkt(&g, TCP_ACK | TCP_PSH, hello + at, to - at);
		at = to;
	}
}

/* Where the extensions start in hello: a first segment must reach that far. */
static size_t first_ext(const uint8_t *hello, size_t n)
{
	struct edge_sni_src src = { .data = hello, .len = (__u32)n };
	struct edge_sni_walk w;

	return edge_sni_begin(&src, (__u32)n, &w) == EDGE_SNI_MORE ? w.next : 0;
}

/* Every cut of hello in two from the extensions on, each on a flow of its own
 * (source port base + offset): the segment that completes the name is
 * dropped when host is blocked (the first or the second), everything else
 * passes; a walk that went on is counted once. *bad: the first wrong cut. */
static int cut_everywhere(const struct flow_spec *f, uint16_t base, const uint8_t *hello, size_t n,
			  size_t name_end, int blocked, size_t *bad)
{
	struct flow_spec g = *f;
	__u64 split = counter(EDGE_STAT_HELLOS_SPLIT), drops = counter(EDGE_STAT_HELLO_DROPS);
	__u64 want_split = 0, want_drops = 0;
	size_t fe = first_ext(hello, n);
	int cuts = 0;

	*bad = 0;
	for (size_t k = fe; k < n && !*bad; k++) {
		int in_first = name_end && k >= name_end;
		__u32 v[2];

		g.sport = (uint16_t)(base + k);
		send_cut(&g, hello, n, &k, 1, v);
		if (v[0] != (blocked && in_first ? DROP : PASS) ||
		    v[1] != (blocked && !in_first ? DROP : PASS))
			*bad = k;
		want_split += !in_first;
		want_drops += blocked;
		cuts++;
	}
	if (!*bad && (counter(EDGE_STAT_HELLOS_SPLIT) - split != want_split ||
		      counter(EDGE_STAT_HELLO_DROPS) - drops != want_drops)) {
		printf("#   split %llu (want %llu), drops %llu (want %llu)\n",
		       (unsigned long long)(counter(EDGE_STAT_HELLOS_SPLIT) - split),
		       (unsigned long long)want_split,
		       (unsigned long long)(counter(EDGE_STAT_HELLO_DROPS) - drops),
		       (unsigned long long)want_drops);
		*bad = (size_t)-1;
	}
	return cuts;
}

static int walk_get(const struct flow_spec *f, struct edge_sni_walk_val *v)
{
	struct edge_flow_key k = flow_key(f);

	return bpf_map_lookup_elem(walks_fd(), &k, v);
}

/* The program and the plain-C parser agree on every seed of the fuzz corpus
 * as a first segment: the verdict, and which counter moved (none for a walk
 * that goes on). Returns the number of disagreements; *files the number of
 * inputs run. Each from its own source port, from f's on. */
static int corpus_agrees(const char *dir, const struct flow_spec *f, unsigned int *files)
{
	uint8_t buf[PKT_MAX - 128];
	struct dirent *de;
	int bad = 0;
	DIR *d = opendir(dir);

	*files = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[512];
		struct edge_sni sni;
		struct edge_sni_walk w;
		struct edge_sni_src src = { .data = buf };
		struct flow_spec ff = *f;
		__u64 parsed, odd;
		size_t n;
		FILE *fp;
		int r, drop;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fp = fopen(path, "rb");
		if (!fp)
			continue;
		n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		if (!n)
			continue;
		src.len = (__u32)n;
		r = edge_sni_parse(&src, (__u32)n, &sni, &w);
		drop = r == EDGE_SNI_FOUND &&
		       sni.host_hash == edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1);
		parsed = counter(EDGE_STAT_HELLOS_PARSED);
		odd = counter(EDGE_STAT_HELLOS_ODD);
		ff.sport = (uint16_t)(f->sport + *files); /* a flow each: a walk stays per flow */
		if (send_pkt(&ff, TCP_ACK | TCP_PSH, buf, n) != (drop ? DROP : PASS) ||
		    counter(EDGE_STAT_HELLOS_PARSED) - parsed !=
			    (r == EDGE_SNI_FOUND || r == EDGE_SNI_ABSENT) ||
		    counter(EDGE_STAT_HELLOS_ODD) - odd !=
			    (r == EDGE_SNI_PARTIAL || r == EDGE_SNI_MALFORMED)) {
			printf("#   %s: the program disagrees with the parser (%s)\n", de->d_name,
			       sni_result_name(r));
			bad++;
		}
		(*files)++;
	}
	closedir(d);
	return bad;
}

int main(void)
{
	struct flow_spec f, other_src, other_port, rev;
	uint8_t buf[PKT_MAX];
	__u16 port = TLS_PORT;
	__u8 one = 1;
	__u64 before, parsed, odd;
	__u32 r;
	size_t n;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		return skip("not root: loading BPF programs and BPF_PROG_TEST_RUN need "
			    "CAP_BPF and CAP_NET_ADMIN");
	libbpf_set_print(silent);
	rc = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL);
	if (rc <= 0)
		return skip(rc == 0 ? "this kernel has no BPF_PROG_TYPE_SCHED_CLS"
				    : "this kernel refuses BPF (bpf(2) failed; CONFIG_BPF_SYSCALL "
				      "off, or seccomp/lockdown?)");
	ncpus = libbpf_num_possible_cpus();
	if (load())
		goto out;
	bpf_map_update_elem(bpf_map__fd(skel->maps.listen_ports), &port, &one, BPF_ANY);

	/* ---- untagged traffic -------------------------------------------------------- */
	before = counter(EDGE_STAT_PACKETS);
	is_int(send_pkt(&v4, TCP_SYN, NULL, 0), PASS, "IPv4 SYN of an untagged flow passes");
	is_int(send_pkt(&v4, TCP_ACK | TCP_PSH, (const uint8_t *)"hello", 5), PASS,
	       "IPv4 data of an untagged flow passes");
	is_int(send_pkt(&v6, TCP_ACK | TCP_PSH, (const uint8_t *)"hello", 5), PASS,
	       "IPv6 data of an untagged flow passes");
	is_int(send_hello(&v4, BLOCKED_HOST), PASS,
	       "ClientHello from a source with no record passes");
	is_int(counter(EDGE_STAT_PACKETS) - before, 4, "packets counted");

	/* ---- tagged flows ------------------------------------------------------------ */
	before = counter(EDGE_STAT_FLOW_DROPS);
	ok(tag_flow(&v4, 60000000000ll, BLOCKED_HOST) == 0, "tag an IPv4 flow for 60 s");
	is_int(send_pkt(&v4, TCP_ACK | TCP_PSH, (const uint8_t *)"more", 4), DROP,
	       "data of the tagged IPv4 flow is dropped");
	is_int(send_pkt(&v4, TCP_ACK, NULL, 0), DROP, "a bare ACK of the tagged flow is dropped");
	is_int(send_pkt(&v4, TCP_FIN | TCP_ACK, NULL, 0), DROP,
	       "a FIN of the tagged flow is dropped");
	f = v4;
	f.vlan = 1;
	is_int(send_pkt(&f, TCP_ACK, NULL, 0), DROP,
	       "the tagged flow behind a VLAN tag is dropped");
	f = v4;
	f.sport = 40002;
	is_int(send_pkt(&f, TCP_ACK, NULL, 0), PASS, "another source port passes");
	rev = v4;
	rev.saddr = v4.daddr;
	rev.daddr = v4.saddr;
	rev.sport = v4.dport;
	rev.dport = v4.sport;
	is_int(send_pkt(&rev, TCP_ACK, NULL, 0), PASS, "the reverse direction passes");
	n = pkt_build(buf, sizeof(buf), &v4, TCP_ACK | TCP_PSH, (const uint8_t *)"more", 4);
	put16(buf + 14 + 2, 0); /* IPv4 length 0, as BIG TCP GRO packets carry */
	is_int(run(buf, n), DROP, "a tagged packet with IPv4 length 0 (BIG TCP) is dropped");
	f = v4;
	f.ipproto = 17;
	is_int(send_pkt(&f, 0, NULL, 0), PASS, "UDP with the tagged addresses and ports passes");
	f = v4;
	f.frag_off = 0x2000 | 100;
	is_int(send_pkt(&f, TCP_ACK, NULL, 0), PASS,
	       "a non-first IPv4 fragment passes (no TCP header to match)");
	is_int(counter(EDGE_STAT_FLOW_DROPS) - before, 5, "flow drops counted");
	is_int(host_drops(BLOCKED_HOST), 5, "flow drops counted for the hostname");

	ok(tag_flow(&v6, 60000000000ll, NULL) == 0, "tag an IPv6 flow without a hostname");
	is_int(send_pkt(&v6, TCP_ACK | TCP_PSH, (const uint8_t *)"more", 4), DROP,
	       "data of the tagged IPv6 flow is dropped");
	n = pkt_build(buf, sizeof(buf), &v6, TCP_ACK, NULL, 0);
	put16(buf + 14 + 4, 0);
	is_int(run(buf, n), DROP,
	       "a tagged packet with IPv6 payload length 0 (BIG TCP) is dropped");
	n = pkt_build(buf, sizeof(buf), &v6, TCP_ACK, NULL, 0);
	memmove(buf + 14 + 40 + 8, buf + 14 + 40, n - 14 - 40); /* insert a hop-by-hop header */
	memset(buf + 14 + 40, 0, 8);
	buf[14 + 40] = 6; /* next: TCP; length 0 = 8 bytes of PadN */
	buf[14 + 40 + 2] = 1;
	buf[14 + 40 + 3] = 4;
	buf[14 + 6] = 0;
	put16(buf + 14 + 4, 20 + 8);
	is_int(run(buf, n + 8), DROP, "the tagged IPv6 flow behind a hop-by-hop header is dropped");

	f = v4;
	f.sport = 40003;
	ok(tag_flow(&f, -1000000ll, BLOCKED_HOST) == 0, "tag a flow that expired 1 ms ago");
	is_int(send_pkt(&f, TCP_ACK | TCP_PSH, (const uint8_t *)"more", 4), PASS,
	       "data of an expired tag passes");
	f = v4;
	f.sport = 40004;
	ok(tag_flow(&f, 300000000ll, BLOCKED_HOST) == 0, "tag a flow for 300 ms");
	is_int(send_pkt(&f, TCP_ACK, NULL, 0), DROP, "dropped while the tag lives");
	usleep(350000);
	is_int(send_pkt(&f, TCP_ACK, NULL, 0), PASS, "passes once the tag expired");

	/* ---- offenders' ClientHellos -------------------------------------------------- */
	other_src = v4;
	other_src.saddr = "192.0.2.9";
	other_src.sport = 40100;
	other_port = v4;
	other_port.sport = 40101;
	other_port.dport = OTHER_PORT;
	f = v4;
	f.sport = 40102; /* a new connection from the offender */
	before = counter(EDGE_STAT_HELLO_DROPS);
	ok(add_offender(AF_INET, v4.saddr, BLOCKED_HOST, 60000000000ll) == 0,
	   "record 192.0.2.1 as an offender on " BLOCKED_HOST);
	is_int(send_hello(&f, BLOCKED_HOST), DROP,
	       "its ClientHello for " BLOCKED_HOST " is dropped");
	is_int(send_hello(&f, "Blocked.EXAMPLE"), DROP, "also with the name in another case");
	is_int(send_hello(&f, OTHER_HOST), PASS, "its ClientHello for " OTHER_HOST " passes");
	is_int(send_hello(&f, NULL), PASS, "its ClientHello without SNI passes");
	is_int(send_hello(&other_src, BLOCKED_HOST), PASS,
	       "a ClientHello for " BLOCKED_HOST " from another source passes");
	is_int(send_hello(&other_port, BLOCKED_HOST), PASS,
	       "a ClientHello to a port that is not a TLS listener passes");
	is_int(send_pkt(&f, TCP_SYN, NULL, 0), PASS, "the offender's SYN passes");
	is_int(send_pkt(&f, TCP_ACK | TCP_PSH, (const uint8_t *)"GET /", 5), PASS,
	       "the offender's non-TLS data passes");
	is_int(counter(EDGE_STAT_HELLO_DROPS) - before, 2, "hello drops counted");
	is_int(host_drops(BLOCKED_HOST), 5 + 1 + 2,
	       "flow and hello drops counted for the hostname");

	f = v6;
	f.sport = 40102;
	ok(add_offender(AF_INET6, v6.saddr, BLOCKED_HOST, 60000000000ll) == 0,
	   "record 2001:db8::1 as an offender");
	is_int(send_hello(&f, BLOCKED_HOST), DROP,
	       "its IPv6 ClientHello for " BLOCKED_HOST " is dropped");
	is_int(send_hello(&f, OTHER_HOST), PASS, "its IPv6 ClientHello for " OTHER_HOST " passes");
	f.vlan = 1;
	is_int(send_hello(&f, BLOCKED_HOST), DROP, "and behind a VLAN tag");

	ok(add_offender(AF_INET, "192.0.2.7", BLOCKED_HOST, -1000000ll) == 0,
	   "record 192.0.2.7 as an offender that expired 1 ms ago");
	f = v4;
	f.saddr = "192.0.2.7";
	is_int(send_hello(&f, BLOCKED_HOST), PASS, "the expired offender's ClientHello passes");

	/* ---- every crafted ClientHello from the offender, as a first segment ---------- */
	f = v4;
	for (size_t i = 0; i < N_SNI_CASES; i++) {
		const struct sni_case *tc = &sni_cases[i];
		int blocked = tc->want == EDGE_SNI_FOUND &&
			      edge_sni_hash(tc->host, (__u32)strlen(tc->host)) ==
				      edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1);

		n = tc->build(buf, sizeof(buf));
		f.sport = (uint16_t)(42000 + i); /* a flow each: a walk that goes on stays */
		parsed = counter(EDGE_STAT_HELLOS_PARSED);
		odd = counter(EDGE_STAT_HELLOS_ODD);
		r = send_pkt(&f, TCP_ACK | TCP_PSH, buf, n);
		ok(r == (blocked ? DROP : PASS) &&
			   counter(EDGE_STAT_HELLOS_PARSED) - parsed ==
				   (tc->want == EDGE_SNI_FOUND || tc->want == EDGE_SNI_ABSENT) &&
			   counter(EDGE_STAT_HELLOS_ODD) - odd ==
				   (tc->want == EDGE_SNI_PARTIAL || tc->want == EDGE_SNI_MALFORMED),
		   "offender's %s: %s, counted as %s", tc->name, blocked ? "dropped" : "passes",
		   sni_result_name(tc->want));
		if (tc->want == EDGE_SNI_MORE) {
			struct edge_sni_walk_val wv;

			ok(walk_get(&f, &wv) == 0 && wv.seq_next == 0x1000 + n,
			   "  and its walk waits for sequence number 0x1000 + %zu", n);
		}
	}
	clear_map(walks_fd(), sizeof(struct edge_flow_key));

	/* The fuzz seeds, real clients' ClientHellos among them, through both. */
	{
		unsigned int files;

		f = v4;
		f.sport = 41000;
		rc = corpus_agrees("tests/fuzz/corpus/sni", &f, &files);
		clear_map(walks_fd(), sizeof(struct edge_flow_key));
		ok(rc == 0 && files >= 10,
		   "the program and the plain-C parser agree on all %u seeds of tests/fuzz/corpus/sni",
		   files);
		if (rc < 0)
			printf("#   cannot read tests/fuzz/corpus/sni (run from the repository root)\n");
	}

	/* IP length fields that claim more than the packet holds. */
	n = c_blocked(buf, sizeof(buf));
	f = v4;
	f.sport = 40300;
	f.tot_extra = 200;
	is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, n - 150), PASS,
	       "IPv4 length beyond the packet: the cut ClientHello passes");
	f = v6;
	f.sport = 40300;
	f.tot_extra = 200;
	is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, n - 150), PASS,
	       "IPv6 length beyond the packet: the cut ClientHello passes");
	f = v4;
	f.sport = 40301;
	f.frag_off = 0x2000; /* MF, offset 0: the first fragment */
	is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, n / 2), PASS,
	       "the first IPv4 fragment of a ClientHello passes");
	ok(walks() == 0, "  and starts no walk: the rest of its segment has no TCP header");

	/* ---- ClientHellos across segments (issue 19) ------------------------------------ */
	{
		struct hello_layout lo;
		struct edge_sni_walk_val wv;
		struct edge_flow_key fk;
		struct edge_flow_val fval;
		size_t cut = SEG_MSS, cuts[2], bad, name_end;
		__u64 split, given_up, drops, fdrops;
		__u32 v[3];
		int nc;

		/* server_name before the key share: found in the first segment. */
		n = hello_mlkem(buf, sizeof(buf), BLOCKED_HOST, 1, &lo);
		f = v4;
		f.sport = 40400;
		parsed = counter(EDGE_STAT_HELLOS_PARSED);
		send_cut(&f, buf, n, &cut, 1, v);
		is_int(v[0], DROP,
		       "a %zu-byte ClientHello, SNI before the key share: its first %d-byte "
		       "segment is dropped",
		       n, SEG_MSS);
		ok(counter(EDGE_STAT_HELLOS_PARSED) - parsed == 1 && walks() == 0,
		   "  parsed from the first segment, no walk left");
		n = hello_mlkem(buf, sizeof(buf), OTHER_HOST, 1, &lo);
		f.sport = 40401;
		send_cut(&f, buf, n, &cut, 1, v);
		ok(v[0] == PASS && v[1] == PASS && walks() == 0,
		   "the same for " OTHER_HOST ": both segments pass, no walk left");

		/* server_name after the key share: found in the second segment. */
		n = hello_mlkem(buf, sizeof(buf), BLOCKED_HOST, 0, &lo);
		f.sport = 40402;
		split = counter(EDGE_STAT_HELLOS_SPLIT);
		drops = counter(EDGE_STAT_HELLO_DROPS);
		f.seq = 0x1000;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS), PASS,
		       "SNI after the key share: the first segment passes");
		ok(walk_get(&f, &wv) == 0 && wv.seq_next == 0x1000 + SEG_MSS &&
			   wv.walk.pos == SEG_MSS && wv.walk.next == lo.sni &&
			   wv.expires_ns > now_ns() &&
			   wv.expires_ns <= now_ns() + EDGE_SNI_WALK_TTL_NS,
		   "  its walk waits for sequence number 0x1000 + %d, server_name at %zu, "
		   "for at most %llu s",
		   SEG_MSS, lo.sni, EDGE_SNI_WALK_TTL_NS / 1000000000ull);
		f.seq = 0x1000 + SEG_MSS;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), DROP,
		       "  the second segment, with the name, is dropped");
		ok(counter(EDGE_STAT_HELLOS_SPLIT) - split == 1 &&
			   counter(EDGE_STAT_HELLO_DROPS) - drops == 1 && walks() == 0,
		   "  counted as a hello drop across segments; the walk is deleted");
		fk = flow_key(&f);
		ok(bpf_map_lookup_elem(bpf_map__fd(skel->maps.failed_flows), &fk, &fval) == 0 &&
			   fval.host_hash ==
				   edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1) &&
			   fval.expires_ns > now_ns() + 50000000000ull,
		   "  and the flow is tagged until the offender's expiry");
		fdrops = counter(EDGE_STAT_FLOW_DROPS);
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), DROP,
		       "  so its retransmission is dropped too");
		is_int(counter(EDGE_STAT_FLOW_DROPS) - fdrops, 1, "  as a flow drop");

		n = hello_mlkem(buf, sizeof(buf), OTHER_HOST, 0, &lo);
		f.sport = 40403;
		split = counter(EDGE_STAT_HELLOS_SPLIT);
		send_cut(&f, buf, n, &cut, 1, v);
		fk = flow_key(&f);
		ok(v[0] == PASS && v[1] == PASS && walks() == 0 &&
			   counter(EDGE_STAT_HELLOS_SPLIT) - split == 1 &&
			   bpf_map_lookup_elem(bpf_map__fd(skel->maps.failed_flows), &fk, &fval),
		   "the same for " OTHER_HOST ": both pass, the walk ends and goes, no tag");
		n = hello_mlkem(buf, sizeof(buf), BLOCKED_HOST, 0, &lo);
		f = v6;
		f.sport = 40404;
		send_cut(&f, buf, n, &cut, 1, v);
		ok(v[0] == PASS && v[1] == DROP && walks() == 0,
		   "over IPv6: the first segment passes, the second is dropped");
		f.vlan = 1;
		f.sport = 40405;
		send_cut(&f, buf, n, &cut, 1, v);
		ok(v[0] == PASS && v[1] == DROP && walks() == 0, "and behind a VLAN tag");

		/* Three segments, the name in the third. */
		f = v4;
		f.sport = 40406;
		cuts[0] = 700;
		cuts[1] = SEG_MSS;
		split = counter(EDGE_STAT_HELLOS_SPLIT);
		send_cut(&f, buf, n, cuts, 2, v);
		ok(v[0] == PASS && v[1] == PASS && v[2] == DROP && walks() == 0 &&
			   counter(EDGE_STAT_HELLOS_SPLIT) - split == 1,
		   "three segments (700, 748, %zu bytes): the third, with the name, is dropped",
		   n - SEG_MSS);
		cuts[0] = lo.sni + 3;
		cuts[1] = lo.sni + 9 + 4;
		f.sport = 40407;
		send_cut(&f, buf, n, cuts, 2, v);
		ok(v[0] == PASS && v[1] == PASS && v[2] == DROP && walks() == 0,
		   "cut inside server_name's header and inside the name: the third is dropped");

		/* Every cut from the extensions on, both orders, both names, and without SNI. */
		for (int after = 0; after < 2; after++) {
			const char *order = after ? "before" : "after";

			n = hello_mlkem(buf, sizeof(buf), BLOCKED_HOST, after, &lo);
			name_end = lo.sni + 9 + sizeof(BLOCKED_HOST) - 1;
			nc = cut_everywhere(&v4, 20000, buf, n, name_end, 1, &bad);
			ok(!bad && walks() == 0,
			   "SNI %s the key share, cut at each of %d offsets: the segment completing " BLOCKED_HOST
			   " is dropped, the other passes, no walk left",
			   order, nc);
			if (bad)
				printf("#   wrong at the cut at %zd\n", (ssize_t)bad);
			n = hello_mlkem(buf, sizeof(buf), OTHER_HOST, after, &lo);
			name_end = lo.sni + 9 + sizeof(OTHER_HOST) - 1;
			nc = cut_everywhere(&v4, 23000, buf, n, name_end, 0, &bad);
			ok(!bad && walks() == 0,
			   "SNI %s the key share, " OTHER_HOST
			   ", cut at each of %d offsets: all pass",
			   order, nc);
			if (bad)
				printf("#   wrong at the cut at %zd\n", (ssize_t)bad);
			clear_map(bpf_map__fd(skel->maps.failed_flows),
				  sizeof(struct edge_flow_key));
		}
		n = hello_mlkem(buf, sizeof(buf), NULL, 0, &lo);
		parsed = counter(EDGE_STAT_HELLOS_PARSED);
		nc = cut_everywhere(&v4, 26000, buf, n, 0, 0, &bad);
		ok(!bad && walks() == 0 && counter(EDGE_STAT_HELLOS_PARSED) - parsed == (__u64)nc,
		   "no SNI, cut at each of %d offsets: all pass, each parsed as absent once", nc);

		/* Given up: what the walk does not expect passes, and its state goes. */
		n = hello_mlkem(buf, sizeof(buf), BLOCKED_HOST, 0, &lo);
		f = v4;
		f.sport = 40410;
		f.seq = 0x1000;
		given_up = counter(EDGE_STAT_HELLOS_GIVEN_UP);
		odd = counter(EDGE_STAT_HELLOS_ODD);
		send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS);
		f.seq = 0x1000 + SEG_MSS + 1;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS + 1, n - SEG_MSS - 1), PASS,
		       "a second segment one byte further on passes (given up)");
		ok(walks() == 0 && counter(EDGE_STAT_HELLOS_GIVEN_UP) - given_up == 1 &&
			   counter(EDGE_STAT_HELLOS_ODD) - odd == 1,
		   "  the walk is deleted, counted as given up and odd");
		f.seq = 0x1000 + SEG_MSS;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), PASS,
		       "  the right one after it passes: no guess without the walk");

		f.sport = 40411;
		f.seq = 0x1000;
		send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS);
		ok(walk_get(&f, &wv) == 0, "a walk waits");
		wv.expires_ns = now_ns() - 1;
		fk = flow_key(&f);
		bpf_map_update_elem(walks_fd(), &fk, &wv, BPF_EXIST);
		f.seq = 0x1000 + SEG_MSS;
		given_up = counter(EDGE_STAT_HELLOS_GIVEN_UP);
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), PASS,
		       "  once expired, its next segment passes");
		ok(walks() == 0 && counter(EDGE_STAT_HELLOS_GIVEN_UP) - given_up == 1,
		   "  given up and deleted");

		f.sport = 40412;
		f.seq = 0x1000 + SEG_MSS;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), PASS,
		       "out of order: the second segment first passes");
		f.seq = 0x1000;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS), PASS,
		       "  then the first passes, and its walk waits for what already went");
		clear_map(walks_fd(), sizeof(struct edge_flow_key));

		f.sport = 40413;
		f.seq = 0x1000;
		send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS);
		given_up = counter(EDGE_STAT_HELLOS_GIVEN_UP);
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS), PASS,
		       "the first segment retransmitted while its walk waits passes");
		ok(counter(EDGE_STAT_HELLOS_GIVEN_UP) - given_up == 1 && walks() == 1,
		   "  the old walk is given up, a new one starts");
		f.seq = 0x1000 + SEG_MSS;
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), DROP,
		       "  and the second segment is dropped");

		f.sport = 40414;
		f.seq = 0x1000;
		send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS);
		f.seq = 0x1000 + SEG_MSS;
		is_int(send_pkt(&f, TCP_ACK, NULL, 0), PASS,
		       "a bare ACK while a walk waits passes");
		ok(walks() == 1, "  and leaves the walk be");
		is_int(send_pkt(&f, TCP_ACK | TCP_PSH, buf + SEG_MSS, n - SEG_MSS), DROP,
		       "  which the second segment then completes");

		/* Tagged flows are dropped before any walk. */
		clear_map(walks_fd(), sizeof(struct edge_flow_key));
		clear_map(bpf_map__fd(skel->maps.failed_flows), sizeof(struct edge_flow_key));

		/* A flood of first segments: the walks stay within their bound. */
		f = v4;
		f.saddr = "192.0.2.77";
		for (__u32 i = 0; i < EDGE_SNI_WALKS_MAX + 4000; i++) {
			f.sport = (uint16_t)(1024 + i);
			send_pkt(&f, TCP_ACK | TCP_PSH, buf, SEG_MSS);
		}
		nc = (int)walks();
		ok(nc <= EDGE_SNI_WALKS_MAX && nc >= EDGE_SNI_WALKS_MAX / 2,
		   "%u first segments from one source: sni_walks holds %d walks, within its %u "
		   "(LRU)",
		   EDGE_SNI_WALKS_MAX + 4000, nc, EDGE_SNI_WALKS_MAX);
		clear_map(walks_fd(), sizeof(struct edge_flow_key));
	}

	/* ---- not TCP/IP ---------------------------------------------------------------- */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 12, "\x08\x06", 2); /* ARP */
	is_int(run(buf, 60), PASS, "ARP passes");
	is_int(run(buf, 14), PASS, "an Ethernet header alone passes");
	n = pkt_build(buf, sizeof(buf), &v4, TCP_ACK, NULL, 0);
	put16(buf + 14 + 2, 10); /* total length 10 */
	is_int(run(buf, n), PASS, "an IPv4 total length shorter than the header passes");
	n = pkt_build(buf, sizeof(buf), &v4, TCP_ACK, NULL, 0);
	put16(buf + 14 + 2, 30); /* room for 10 of the 20 bytes of TCP header */
	is_int(run(buf, n), PASS, "an IPv4 total length that cuts the TCP header passes");
	n = pkt_build(buf, sizeof(buf), &v6, TCP_ACK, NULL, 0);
	buf[14 + 6] = 0; /* a hop-by-hop header claiming more than the payload */
	is_int(run(buf, n), PASS, "an IPv6 extension header past the payload passes");
	n = pkt_build(buf, sizeof(buf), &v4, TCP_ACK, NULL, 0);
	buf[14 + 20 + 12] = 2 << 4; /* data offset 8 bytes */
	is_int(run(buf, n), PASS, "a TCP header with data offset 2 passes");
	n = pkt_build(buf, sizeof(buf), &v4, TCP_ACK, NULL, 0);
	buf[14] = 0x44; /* IHL 4 */
	is_int(run(buf, n), PASS, "an IPv4 header with IHL 4 passes");

	/* ---- flood: 200,000 failing flows ---------------------------------------------- */
	{
		int ffd = bpf_map__fd(skel->maps.failed_flows);
		int ofd = bpf_map__fd(skel->maps.offenders);
		struct edge_flow_key k = flow_key(&v4);
		struct edge_flow_val v = { .expires_ns = now_ns() + 60000000000ull };
		unsigned int cnt, fails = 0;

		clear_map(ffd, sizeof(k));
		for (__u32 i = 0; i < 200000; i++) {
			k.saddr[1] = (__u8)(i >> 16); /* 192.x.y.z, port from i too */
			k.saddr[2] = (__u8)(i >> 8);
			k.saddr[3] = (__u8)i;
			k.sport = htons((__u16)(10000 + i % 50000));
			if (bpf_map_update_elem(ffd, &k, &v, BPF_ANY))
				fails++;
		}
		is_int(fails, 0, "200,000 distinct flows tagged without an error");
		cnt = count_entries(ffd, sizeof(k));
		ok(cnt <= EDGE_FAILED_FLOWS_MAX && cnt >= EDGE_FAILED_FLOWS_MAX / 2,
		   "failed_flows holds %u entries: within its %u (LRU)", cnt,
		   EDGE_FAILED_FLOWS_MAX);
		f = v4;
		f.saddr = "192.3.13.63"; /* i = 199999 = 0x030d3f */
		f.sport = (uint16_t)(10000 + 199999 % 50000);
		is_int(send_pkt(&f, TCP_ACK, NULL, 0), DROP,
		       "the newest tagged flow is still dropped");
		f = v4;
		f.sport = 40102;
		is_int(send_hello(&f, BLOCKED_HOST), DROP,
		       "the offender recorded before the flood is still enforced");
		is_int(count_entries(ofd, sizeof(struct edge_offender_key)), 3,
		       "offenders untouched by the flow flood");

		for (__u32 i = 0; i < 200000; i++) {
			struct edge_offender_key ok_ = { .family = EDGE_AF_INET, .host_hash = i };
			struct edge_offender_val ov = { .expires_ns = now_ns() + 60000000000ull };

			ok_.addr[0] = 198;
			ok_.addr[3] = (__u8)i;
			bpf_map_update_elem(ofd, &ok_, &ov, BPF_ANY);
		}
		cnt = count_entries(ofd, sizeof(struct edge_offender_key));
		ok(cnt <= EDGE_OFFENDERS_MAX && cnt >= EDGE_OFFENDERS_MAX / 2,
		   "offenders holds %u entries after 200,000 records: within its %u (LRU)", cnt,
		   EDGE_OFFENDERS_MAX);
	}

out:
	edge_bpf__destroy(skel);
	return tap_done();
}
