/*
 * mtls-edge tc ingress program: drops every packet of a flow the daemon
 * tagged after a failed verification, and the ClientHellos of a source the
 * daemon recorded as an offender for that hostname, until their expiry.
 * A ClientHello longer than its segment is followed into the next segments
 * of its flow (sni_walks; the rules are in sni_parse.h's header comment).
 *
 * Only TCP over IPv4 and IPv6 behind an Ethernet header (Ethernet devices and
 * loopback; VLAN tags are stripped before tc ingress, and skipped, two at
 * most, where they are not) is looked at; everything else, and everything it
 * cannot parse, passes with TC_ACT_UNSPEC so that filters after this one
 * still run. Packets are read with bpf_skb_load_bytes(), which also reaches
 * the paged part of a non-linear skb (where a TCP payload usually is).
 * Built from UAPI headers only: clang -target bpf, then bpftool gen skeleton.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "edge_maps.h"
#include "sni_parse.h"

#define EDGE_PASS TC_ACT_UNSPEC
#define EDGE_DROP TC_ACT_SHOT

#define EDGE_IP_MF 0x2000
#define EDGE_IP_OFFSET 0x1fff
#define EDGE_IP6_MAX_EXT_HDRS 4
#define EDGE_LEN_UNKNOWN 0xffffffffu /* BIG TCP GRO packets: IP length 0 */

struct edge_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct edge_ip6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EDGE_FAILED_FLOWS_MAX);
	__type(key, struct edge_flow_key);
	__type(value, struct edge_flow_val);
} failed_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EDGE_OFFENDERS_MAX);
	__type(key, struct edge_offender_key);
	__type(value, struct edge_offender_val);
} offenders SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EDGE_SNI_WALKS_MAX);
	__type(key, struct edge_flow_key);
	__type(value, struct edge_sni_walk_val);
} sni_walks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EDGE_LISTEN_PORTS_MAX);
	__type(key, __u16);
	__type(value, __u8);
} listen_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EDGE_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, EDGE_HOST_STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} host_stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no other writer */
}

static __always_inline void host_drop(__u32 host_hash)
{
	__u64 one = 1, *v;

	if (!host_hash)
		return;
	v = bpf_map_lookup_elem(&host_stats, &host_hash);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&host_stats, &host_hash, &one, BPF_NOEXIST);
}

/* len bytes at off from the start of the packet (the Ethernet header). */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *dst, __u32 len)
{
	return bpf_skb_load_bytes(skb, off, dst, len);
}

/* Fills the addresses of key, and the offset and length of the TCP segment:
 * EDGE_LEN_UNKNOWN when the IP header says 0. Returns 0 for a TCP segment we
 * can look at, 1 for the first fragment of one (its rest comes without a TCP
 * header: a ClientHello walk cannot follow it). */
static __always_inline int parse_l3(struct __sk_buff *skb, struct edge_flow_key *key, __u32 *off,
				    __u32 *l4_len)
{
	struct ethhdr eth;
	__be16 proto;

	if (load(skb, 0, &eth, sizeof(eth)))
		return -1;
	proto = eth.h_proto;
	*off = sizeof(eth);
	for (int i = 0; i < 2; i++) {
		struct edge_vlan_hdr vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (load(skb, *off, &vh, sizeof(vh)))
			return -1;
		proto = vh.proto;
		*off += sizeof(vh);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		__u32 hl, tot;

		if (load(skb, *off, &ip, sizeof(ip)))
			return -1;
		if (ip.version != 4 || ip.ihl < 5 || ip.protocol != IPPROTO_TCP)
			return -1;
		if (ip.frag_off & bpf_htons(EDGE_IP_OFFSET))
			return -1; /* a later fragment: no TCP header to read */
		hl = ip.ihl * 4;
		tot = bpf_ntohs(ip.tot_len);
		if (tot && tot < hl)
			return -1;
		/* A first fragment (MF set) carries only the start of the
		 * segment; l4_len covers what is in this packet, so the
		 * parser sees a ClientHello cut short and passes it. */
		*off += hl;
		*l4_len = tot ? tot - hl : EDGE_LEN_UNKNOWN;
		key->family = EDGE_AF_INET;
		__builtin_memcpy(key->saddr, &ip.saddr, 4);
		__builtin_memcpy(key->daddr, &ip.daddr, 4);
		return ip.frag_off & bpf_htons(EDGE_IP_MF) ? 1 : 0;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u32 len;
		__u8 next;
		int frag = 0;

		if (load(skb, *off, &ip6, sizeof(ip6)))
			return -1;
		if (ip6.version != 6)
			return -1;
		len = bpf_ntohs(ip6.payload_len);
		if (!len)
			len = EDGE_LEN_UNKNOWN; /* no length to subtract from stays unknown */
		next = ip6.nexthdr;
		*off += sizeof(ip6);
		for (int i = 0; i < EDGE_IP6_MAX_EXT_HDRS; i++) {
			__u8 eh[2];
			__u32 ehl;

			if (next == IPPROTO_TCP)
				break;
			if (next == IPPROTO_FRAGMENT) {
				struct edge_ip6_frag_hdr fh;

				if (len < sizeof(fh) || load(skb, *off, &fh, sizeof(fh)))
					return -1;
				if (fh.frag_off & bpf_htons(0xfff8))
					return -1; /* a later fragment */
				/* M set: the first of several, not an atomic fragment */
				frag = !!(fh.frag_off & bpf_htons(1));
				next = fh.nexthdr;
				*off += sizeof(fh);
				if (len != EDGE_LEN_UNKNOWN)
					len -= sizeof(fh);
				continue;
			}
			if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
			    next != IPPROTO_DSTOPTS)
				return -1;
			if (load(skb, *off, eh, sizeof(eh)))
				return -1;
			ehl = ((__u32)eh[1] + 1) * 8;
			if (len < ehl)
				return -1;
			next = eh[0];
			*off += ehl;
			if (len != EDGE_LEN_UNKNOWN)
				len -= ehl;
		}
		if (next != IPPROTO_TCP)
			return -1;
		*l4_len = len;
		key->family = EDGE_AF_INET6;
		__builtin_memcpy(key->saddr, &ip6.saddr, 16);
		__builtin_memcpy(key->daddr, &ip6.daddr, 16);
		return frag;
	}
	return -1;
}

/* The ClientHello walk this segment goes on with: 1 with the walk in *wv
 * when the flow has one waiting for exactly this sequence number; a walk
 * waiting for another, or expired, is given up (deleted, counted) and 0. */
static __always_inline int walk_resume(const struct edge_flow_key *key, __u32 seq,
				       struct edge_sni_walk_val *wv)
{
	struct edge_sni_walk_val *v = bpf_map_lookup_elem(&sni_walks, key);

	if (!v)
		return 0;
	if (v->seq_next == seq && bpf_ktime_get_ns() < v->expires_ns) {
		__builtin_memcpy(wv, v, sizeof(*wv));
		return 1;
	}
	bpf_map_delete_elem(&sni_walks, key);
	stat_inc(EDGE_STAT_HELLOS_GIVEN_UP);
	stat_inc(EDGE_STAT_HELLOS_ODD);
	return 0;
}

SEC("tc")
int edge_ingress(struct __sk_buff *skb)
{
	struct edge_flow_key key = {};
	struct edge_offender_key okey = {};
	struct edge_offender_val *ov;
	struct edge_flow_val *fv;
	struct edge_sni_walk_val wv = {};
	struct edge_sni_src src;
	struct edge_sni sni = {};
	struct tcphdr th;
	__u32 off = 0, l4_len = 0, thl, plen, seq;
	__u16 port;
	__u64 now;
	int r, resumed, frag;

	stat_inc(EDGE_STAT_PACKETS);
	frag = parse_l3(skb, &key, &off, &l4_len);
	if (frag < 0)
		return EDGE_PASS;
	if (l4_len < sizeof(th) || load(skb, off, &th, sizeof(th)))
		return EDGE_PASS;
	thl = th.doff * 4;
	if (thl < sizeof(th) || thl > l4_len)
		return EDGE_PASS;
	key.sport = th.source;
	key.dport = th.dest;

	fv = bpf_map_lookup_elem(&failed_flows, &key);
	if (fv) {
		now = bpf_ktime_get_ns();
		if (now < fv->expires_ns) {
			stat_inc(EDGE_STAT_FLOW_DROPS);
			host_drop(fv->host_hash);
			return EDGE_DROP;
		}
		/* Expired: left for the LRU or the daemon to remove, so a
		 * fresh tag written meanwhile is never deleted here. */
	}

	if (l4_len == thl || l4_len == EDGE_LEN_UNKNOWN)
		return EDGE_PASS; /* no data; or a GRO train, never a first segment */
	port = bpf_ntohs(th.dest);
	if (!bpf_map_lookup_elem(&listen_ports, &port))
		return EDGE_PASS;

	src.skb = skb;
	src.base = off + thl;
	plen = l4_len - thl;
	seq = bpf_ntohl(th.seq);
	resumed = walk_resume(&key, seq, &wv);
	if (!resumed) {
		r = edge_sni_begin(&src, plen, &wv.walk);
		if (r != EDGE_SNI_MORE)
			goto verdict;
		wv.expires_ns = bpf_ktime_get_ns() + EDGE_SNI_WALK_TTL_NS;
	}
	r = edge_sni_continue(&src, plen, &wv.walk, &sni);
	if (r == EDGE_SNI_MORE && !frag) {
		wv.seq_next = seq + plen;
		bpf_map_update_elem(&sni_walks, &key, &wv, BPF_ANY);
		return EDGE_PASS;
	}
	if (r == EDGE_SNI_MORE)
		r = EDGE_SNI_PARTIAL; /* an IP fragment: the rest is not a TCP segment */
	if (resumed) {
		bpf_map_delete_elem(&sni_walks, &key);
		stat_inc(r == EDGE_SNI_PARTIAL ? EDGE_STAT_HELLOS_GIVEN_UP
					       : EDGE_STAT_HELLOS_SPLIT);
	}

verdict:
	if (r == EDGE_SNI_NOT_HELLO)
		return EDGE_PASS;
	if (r != EDGE_SNI_FOUND && r != EDGE_SNI_ABSENT) {
		stat_inc(EDGE_STAT_HELLOS_ODD);
		return EDGE_PASS;
	}
	stat_inc(EDGE_STAT_HELLOS_PARSED);
	if (r != EDGE_SNI_FOUND)
		return EDGE_PASS;

	okey.family = key.family;
	__builtin_memcpy(okey.addr, key.saddr, sizeof(okey.addr));
	okey.host_hash = sni.host_hash;
	ov = bpf_map_lookup_elem(&offenders, &okey);
	if (!ov)
		return EDGE_PASS;
	now = bpf_ktime_get_ns();
	if (now >= ov->expires_ns)
		return EDGE_PASS;
	if (resumed) {
		/* The earlier segments reached the socket: a retransmission of
		 * this one would find no walk and pass. Drop the flow instead. */
		struct edge_flow_val tag = { .expires_ns = ov->expires_ns,
					     .host_hash = sni.host_hash };

		bpf_map_update_elem(&failed_flows, &key, &tag, BPF_ANY);
	}
	stat_inc(EDGE_STAT_HELLO_DROPS);
	host_drop(sni.host_hash);
	return EDGE_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
