/*
 * The tc program through BPF_PROG_TEST_RUN on crafted Ethernet + IPv4/IPv6 +
 * TCP packets: tagged flows, offenders' ClientHellos, every odd ClientHello of
 * packets.h, other traffic, and a flood that must stay within the map bounds.
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
#include "packets.h"

#define TLS_PORT 8443
#define OTHER_PORT 8080
#define PASS ((__u32)TC_ACT_UNSPEC)
#define DROP ((__u32)TC_ACT_SHOT)

static struct edge_bpf *skel;
static int prog_fd, ncpus;
static char verifier_log[1 << 20];

static const struct flow_spec v4 = { .family = AF_INET,
				     .saddr = "192.0.2.1",
				     .daddr = "192.0.2.2",
				     .sport = 40001,
				     .dport = TLS_PORT };
static const struct flow_spec v6 = { .family = AF_INET6,
				     .saddr = "2001:db8::1",
				     .daddr = "2001:db8::2",
				     .sport = 40001,
				     .dport = TLS_PORT };

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static __u32 run(const uint8_t *pkt, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (__u32)len,
		    .repeat = 1);
	int rc = bpf_prog_test_run_opts(prog_fd, &opts);

	if (rc) {
		printf("#   BPF_PROG_TEST_RUN: %s\n", strerror(-rc));
		return 0xdead;
	}
	return opts.retval;
}

/* Runs one packet of flow f with payload; returns the program's verdict. */
static __u32 send_pkt(const struct flow_spec *f, uint8_t flags, const uint8_t *payload, size_t plen)
{
	uint8_t pkt[PKT_MAX];
	size_t n = pkt_build(pkt, sizeof(pkt), f, flags, payload, plen);

	if (!n) {
		printf("#   packet does not fit\n");
		return 0xdead;
	}
	return run(pkt, n);
}

static __u32 send_hello(const struct flow_spec *f, const char *host)
{
	uint8_t hello[PKT_MAX];
	struct hello_spec s = hello_default(host);
	size_t n = hello_build(hello, sizeof(hello), &s, NULL);

	return send_pkt(f, TCP_ACK | TCP_PSH, hello, n);
}

static void wire(const char *addr, int family, __u8 out[16])
{
	memset(out, 0, 16);
	inet_pton(family, addr, out);
}

static struct edge_flow_key flow_key(const struct flow_spec *f)
{
	struct edge_flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = f->family == AF_INET ? EDGE_AF_INET : EDGE_AF_INET6;
	wire(f->saddr, f->family, k.saddr);
	wire(f->daddr, f->family, k.daddr);
	k.sport = htons(f->sport);
	k.dport = htons(f->dport);
	return k;
}

static int tag_flow(const struct flow_spec *f, __s64 ttl_ns, const char *host)
{
	struct edge_flow_key k = flow_key(f);
	struct edge_flow_val v = { .expires_ns = now_ns() + (__u64)ttl_ns,
				   .host_hash = host ? edge_sni_hash(host, (__u32)strlen(host))
						     : 0 };

	return bpf_map_update_elem(bpf_map__fd(skel->maps.failed_flows), &k, &v, BPF_ANY);
}

static int add_offender(int family, const char *addr, const char *host, __s64 ttl_ns)
{
	struct edge_offender_key k;
	struct edge_offender_val v = { .expires_ns = now_ns() + (__u64)ttl_ns };

	memset(&k, 0, sizeof(k));
	k.family = family == AF_INET ? EDGE_AF_INET : EDGE_AF_INET6;
	wire(addr, family, k.addr);
	k.host_hash = edge_sni_hash(host, (__u32)strlen(host));
	return bpf_map_update_elem(bpf_map__fd(skel->maps.offenders), &k, &v, BPF_ANY);
}

static __u64 counter(enum edge_stat s)
{
	__u64 vals[ncpus], sum = 0;
	__u32 key = s;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &key, vals))
		return 0;
	for (int c = 0; c < ncpus; c++)
		sum += vals[c];
	return sum;
}

static __u64 host_drops(const char *host)
{
	__u64 vals[ncpus], sum = 0;
	__u32 key = edge_sni_hash(host, (__u32)strlen(host));

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.host_stats), &key, vals))
		return 0;
	for (int c = 0; c < ncpus; c++)
		sum += vals[c];
	return sum;
}

static unsigned int count_entries(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	unsigned int n = 0;

	for (int rc = bpf_map_get_next_key(fd, NULL, next); !rc && n < 1000000;
	     rc = bpf_map_get_next_key(fd, key, next)) {
		memcpy(key, next, key_size);
		n++;
	}
	return n;
}

static void clear_map(int fd, size_t key_size)
{
	unsigned char key[64];

	(void)key_size;
	while (!bpf_map_get_next_key(fd, NULL, key))
		bpf_map_delete_elem(fd, key);
}

/* The program and the plain-C parser agree on every seed of the fuzz corpus:
 * the verdict, and which counter moved. Returns the number of disagreements;
 * *files the number of inputs run. */
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
		struct edge_sni_src src = { .data = buf };
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
		r = edge_sni_parse(&src, (__u32)n, &sni);
		drop = r == EDGE_SNI_FOUND &&
		       sni.host_hash == edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1);
		parsed = counter(EDGE_STAT_HELLOS_PARSED);
		odd = counter(EDGE_STAT_HELLOS_ODD);
		if (send_pkt(f, TCP_ACK | TCP_PSH, buf, n) != (drop ? DROP : PASS) ||
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

static int skip(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fprintf(stderr, "test_edge_bpf: SKIP: %s\n", why);
	return 77;
}

static int load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .kernel_log_buf = verifier_log,
		    .kernel_log_size = sizeof(verifier_log), .kernel_log_level = 0);
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	int rc;

	skel = edge_bpf__open_opts(&oo);
	ok(skel != NULL, "BPF object opens");
	if (!skel)
		return -1;
	rc = edge_bpf__load(skel);
	ok(rc == 0, "the verifier accepts edge_ingress on kernel this test runs on");
	if (rc) {
		/* libbpf retries with a log on failure: print its tail. */
		size_t len = strlen(verifier_log);
		const char *tail = len > 4000 ? verifier_log + len - 4000 : verifier_log;

		printf("#   load: %s; verifier log tail:\n", strerror(-rc));
		for (const char *l = tail; *l;) {
			const char *e = strchr(l, '\n');
			int ln = e ? (int)(e - l) : (int)strlen(l);

			printf("#   | %.*s\n", ln, l);
			l += ln + (e ? 1 : 0);
		}
		return -1;
	}
	prog_fd = bpf_program__fd(skel->progs.edge_ingress);
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(prog_fd, &info, &info_len))
		printf("# edge_ingress: %u BPF instructions, %u processed by the verifier\n",
		       info.xlated_prog_len / 8, info.verified_insns);
	return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
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

	/* ---- every crafted ClientHello from the offender ------------------------------ */
	f = v4;
	f.sport = 40200;
	for (size_t i = 0; i < N_SNI_CASES; i++) {
		const struct sni_case *tc = &sni_cases[i];
		int blocked = tc->want == EDGE_SNI_FOUND &&
			      edge_sni_hash(tc->host, (__u32)strlen(tc->host)) ==
				      edge_sni_hash(BLOCKED_HOST, sizeof(BLOCKED_HOST) - 1);

		n = tc->build(buf, sizeof(buf));
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
	}

	/* The fuzz seeds, real clients' ClientHellos among them, through both. */
	{
		unsigned int files;

		f = v4;
		f.sport = 40250;
		rc = corpus_agrees("tests/fuzz/corpus/sni", &f, &files);
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
