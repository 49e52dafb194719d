/*
 * Map keys, values and limits shared by bpf/edge.bpf.c and userspace/flowtag.c.
 * UAPI types only, so the same header builds with clang -target bpf and with
 * the host compiler. Every struct is laid out without implicit padding: both
 * sides zero the explicit pad bytes, so a key built in userspace hashes the
 * same as the key the program builds from a packet.
 */
#ifndef EDGE_MAPS_H
#define EDGE_MAPS_H

#include <linux/types.h>

/* Map sizes. LRU maps evict their least recently used entry when full, so a
 * flood of failing flows cannot grow them (BAD-INPUTS row 24). */
#define EDGE_FAILED_FLOWS_MAX 65536
#define EDGE_OFFENDERS_MAX 65536
#define EDGE_LISTEN_PORTS_MAX 64
#define EDGE_HOST_STATS_MAX 4096

/* Address families as in <sys/socket.h>, which BPF code cannot include. */
#define EDGE_AF_INET 2
#define EDGE_AF_INET6 10

/* The tc filter: one handle and priority, so a restarted daemon replaces its
 * own program in place (BPF_TC_F_REPLACE) and detaches only its own filter. */
#define EDGE_TC_HANDLE 0xed6e
#define EDGE_TC_PRIORITY 0xed6e

/* Names of the maps, also the file names under the pin directory. */
#define EDGE_MAP_FAILED_FLOWS "failed_flows"
#define EDGE_MAP_OFFENDERS "offenders"
#define EDGE_MAP_LISTEN_PORTS "listen_ports"
#define EDGE_MAP_STATS "stats"
#define EDGE_MAP_HOST_STATS "host_stats"

/* A TCP flow as seen on ingress: saddr/sport are the client's, daddr/dport
 * the listener's. Addresses and ports in network byte order; an IPv4 address
 * fills the first 4 bytes and the other 12 are zero. */
struct edge_flow_key {
	__u8 family; /* EDGE_AF_INET or EDGE_AF_INET6 */
	__u8 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
};

struct edge_flow_val {
	__u64 expires_ns; /* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
	__u32 host_hash;  /* edge_sni_hash() of the hostname that failed, 0 if none */
	__u32 pad;
};

/* (source address, hostname) whose next ClientHellos are dropped. */
struct edge_offender_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
	__u32 host_hash;
};

struct edge_offender_val {
	__u64 expires_ns;
};

/* listen_ports: key __u16 port in host byte order, value __u8 1. */

/* stats: a PERCPU_ARRAY of __u64, one slot per counter. */
enum edge_stat {
	EDGE_STAT_PACKETS = 0,   /* packets the program ran on */
	EDGE_STAT_FLOW_DROPS,    /* packets of a tagged flow dropped */
	EDGE_STAT_HELLO_DROPS,   /* offenders' ClientHellos dropped */
	EDGE_STAT_HELLOS_PARSED, /* complete ClientHellos parsed (with or without SNI) */
	EDGE_STAT_HELLOS_ODD,    /* truncated, fragmented or malformed ClientHellos, passed */
	EDGE_STAT_MAX
};

/* host_stats: LRU_PERCPU_HASH, key __u32 host_hash, value __u64 drops
 * (flow and ClientHello drops of that hostname). */

#endif
