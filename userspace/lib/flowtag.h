/*
 * The eBPF enforcement, userspace side: owns the tc ingress program
 * (bpf/edge.bpf.c, through its bpftool skeleton), pins its maps, tags failed
 * flows and offenders, reads the counters. Used by the daemon (open, tag,
 * close) and by mtls-edgectl (open_pinned, list, stats, clear).
 *
 * Maps live under a bpffs directory (EDGE_FLOWTAG_PIN_DIR by default):
 * failed_flows, offenders, listen_ports, stats, host_stats (not sni_walks, the
 * program's ClientHellos in progress across segments). A daemon that
 * restarts reuses them, so tags and counters survive the restart; a pinned
 * map whose layout no longer matches this build is replaced (tags are
 * short-lived). The tc filter is a netlink cls_bpf filter on the clsact
 * ingress hook (handle and priority EDGE_TC_HANDLE/EDGE_TC_PRIORITY), not a
 * bpf_link: kernel 6.1 has no tcx. It stays on the interface until detached;
 * opening again replaces the program in place, without a gap.
 *
 * Every function returns 0 or a negative errno and never prints. After open,
 * tag, stats, list and clear may be called from any thread.
 *
 * Implemented in flowtag.c (load, attach, pins) and flowmaps.c (map operations).
 */
#ifndef EDGE_FLOWTAG_H
#define EDGE_FLOWTAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EDGE_FLOWTAG_PIN_DIR "/sys/fs/bpf/mtls-edge"

struct edge_flowtag;

/* hellos_split and hellos_given_up count ClientHellos longer than their
 * segment, followed into the next (bpf/sni_parse.h); each is also in
 * hellos_parsed or hellos_odd. */
struct edge_flowtag_stats {
	uint64_t packets;         /* packets the program ran on */
	uint64_t flow_drops;      /* packets of tagged flows dropped */
	uint64_t hello_drops;     /* offenders' ClientHellos dropped */
	uint64_t hellos_parsed;   /* ClientHellos parsed to their SNI or its absence */
	uint64_t hellos_odd;      /* cut, continued in a record, malformed, given up: passed */
	uint64_t hellos_split;    /* walks that ended in a later segment than the first */
	uint64_t hellos_given_up; /* walks given up: another sequence number, expired */
};

enum edge_flowtag_kind {
	EDGE_FLOWTAG_FLOW,     /* a tagged 5-tuple: peer and local set */
	EDGE_FLOWTAG_OFFENDER, /* a (source, hostname): peer set, its port 0 */
};

struct edge_flowtag_entry {
	enum edge_flowtag_kind kind;
	struct sockaddr_storage peer;  /* AF_INET or AF_INET6 */
	struct sockaddr_storage local; /* flows only; zeroed for offenders */
	uint32_t host_hash;            /* edge_flowtag_host_hash(); 0: no hostname */
	uint64_t ttl_ms;               /* time left; 0 once expired */
	bool expired;                  /* still in the map, no longer enforced */
};

/* Called once an entry; a non-zero return stops the walk and is returned. */
typedef int (*edge_flowtag_cb)(const struct edge_flowtag_entry *e, void *arg);

/* Loads the program (reusing the maps pinned under pin_dir, NULL for the
 * default; bpffs is mounted on its parent if it is not one), attaches it to
 * the ingress of each interface and makes listen_ports exactly ports (host
 * byte order, at most 64). Interfaces must be Ethernet or loopback:
 * -EOPNOTSUPP for L3 devices (WireGuard, tun), -ENODEV for unknown ones.
 * On failure nothing stays attached by this call; the pins stay (they may
 * hold a running daemon's tags). */
int edge_flowtag_open(const char *pin_dir, const char *const *ifnames, int n_ifnames,
		      const uint16_t *ports, int n_ports, struct edge_flowtag **out, char *err,
		      size_t errlen);

/* The maps pinned by a running (or stopped) daemon, for the CLI: no load, no
 * attach. -ENOENT when nothing is pinned there. */
int edge_flowtag_open_pinned(const char *pin_dir, struct edge_flowtag **out, char *err,
			     size_t errlen);

/* Tags the flow peer -> local for ttl_s seconds and records (peer address,
 * host) as an offender for as long; host NULL or "" tags the flow only.
 * IPv4-mapped IPv6 addresses are tagged as the IPv4 packets they are. */
int edge_flowtag_tag(struct edge_flowtag *ft, const struct sockaddr *peer,
		     const struct sockaddr *local, const char *host, unsigned int ttl_s);

/* The hash the program computes over a ClientHello's SNI: 32-bit FNV-1a
 * over the bytes, ASCII letters lower-cased. */
uint32_t edge_flowtag_host_hash(const char *host);

/* The counters, summed over the CPUs. */
int edge_flowtag_stats(struct edge_flowtag *ft, struct edge_flowtag_stats *out);

/* Packets dropped for one hostname (by hash), summed over the CPUs; 0 and
 * success when there were none. */
int edge_flowtag_host_drops(struct edge_flowtag *ft, uint32_t host_hash, uint64_t *drops);

/* Walks the tagged flows, then the offenders, expired ones included. */
int edge_flowtag_list(struct edge_flowtag *ft, edge_flowtag_cb cb, void *arg);

/* Entries in failed_flows and offenders, expired ones included. */
int edge_flowtag_count(struct edge_flowtag *ft, unsigned int *flows, unsigned int *offenders);

/* Lifts the blocks: every entry, or those whose source address (port
 * ignored) is source. */
int edge_flowtag_clear(struct edge_flowtag *ft, const struct sockaddr *source);

/* Frees ft. detach: also removes the tc filters this handle attached (the
 * daemon's choice on exit); the pinned maps stay either way, so a restart
 * finds its tags and counters. No-op for NULL. */
void edge_flowtag_close(struct edge_flowtag *ft, bool detach);
/* The program reads Ethernet frames: true for Ethernet devices and loopback. */
bool edge_flowtag_iface_ok(const char *ifname);

/* Removes the pinned maps under pin_dir (NULL: the default) and the
 * directory: every tag and counter is gone. */
int edge_flowtag_unpin(const char *pin_dir, char *err, size_t errlen);

#endif
