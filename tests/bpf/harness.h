/*
 * The harness of test_edge_bpf.c: the tc program loaded (skip and exit 77 when the kernel or
 * the privileges do not allow it), packets run through BPF_PROG_TEST_RUN, and its maps and
 * counters read and written. One test file includes it.
 */
#ifndef EDGE_TEST_BPF_HARNESS_H
#define EDGE_TEST_BPF_HARNESS_H

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

static int walks_fd(void)
{
	return bpf_map__fd(skel->maps.sni_walks);
}

static unsigned int walks(void)
{
	return count_entries(walks_fd(), sizeof(struct edge_flow_key));
}

/* hello[0, n) of flow f in segments cut at cuts[0] < cuts[1] < ...: each with
 * the sequence number its offset gives, from f's. The verdicts go to v[]. */
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

#endif
