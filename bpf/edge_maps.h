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

#include "sni_parse.h"

/* Map sizes. LRU maps evict their least recently used entry when full, so a
 * flood of failing flows cannot grow them (BAD-INPUTS row 24). */
#define EDGE_FAILED_FLOWS_MAX 65536
#define EDGE_OFFENDERS_MAX 65536
#define EDGE_LISTEN_PORTS_MAX 64
#define EDGE_HOST_STATS_MAX 4096
#define EDGE_SNI_WALKS_MAX 16384 /* ClientHellos followed into a next segment at once */

/* How long a ClientHello walk waits for its next segment, from the first one:
 * the next is normally in the same flight; this leaves room for a retransmission
 * after the initial RTO (1 s) and its first back-off. */
#define EDGE_SNI_WALK_TTL_NS (3ull * 1000000000ull)

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
#define EDGE_MAP_SNI_WALKS "sni_walks" /* not pinned: walks last seconds */

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

/* sni_walks: LRU_HASH, key struct edge_flow_key, value: where the SNI walk of a
 * ClientHello that goes on past its segment stands (bpf/sni_parse.h). */
struct edge_sni_walk_val {
	__u64 expires_ns; /* CLOCK_MONOTONIC: the first segment's time + EDGE_SNI_WALK_TTL_NS */
	__u32 seq_next;   /* the TCP sequence number the next segment must have (host order) */
	__u32 pad;
	struct edge_sni_walk walk;
};

/* listen_ports: key __u16 port in host byte order, value __u8 1. */

/* stats: a PERCPU_ARRAY of __u64, one slot per counter. SPLIT and GIVEN_UP
 * count ClientHellos followed past their first segment; each of them is also
 * counted as PARSED or ODD. */
enum edge_stat {
	EDGE_STAT_PACKETS = 0,     /* packets the program ran on */
	EDGE_STAT_FLOW_DROPS,      /* packets of a tagged flow dropped */
	EDGE_STAT_HELLO_DROPS,     /* offenders' ClientHellos dropped */
	EDGE_STAT_HELLOS_PARSED,   /* ClientHellos parsed to their SNI or its absence */
	EDGE_STAT_HELLOS_ODD,      /* cut, continued in a record, malformed, given up: passed */
	EDGE_STAT_HELLOS_SPLIT,    /* walks that ended in a later segment than the first */
	EDGE_STAT_HELLOS_GIVEN_UP, /* walks given up: another sequence number, expired */
	EDGE_STAT_MAX
};

/* host_stats: LRU_PERCPU_HASH, key __u32 host_hash, value __u64 drops
 * (flow and ClientHello drops of that hostname). */

#endif
