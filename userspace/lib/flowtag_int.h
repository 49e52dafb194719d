/*
 * Inside the flowtag module: the handle and the map table, shared by
 * flowtag.c (load, attach, pins) and flowmaps.c (tag, read, clear).
 * Other modules use flowtag.h.
 */
#ifndef EDGE_FLOWTAG_INT_H
#define EDGE_FLOWTAG_INT_H

#include <time.h>

#include <bpf/bpf.h>

#include "../../bpf/edge_maps.h"

enum { MAP_FLOWS, MAP_OFFENDERS, MAP_PORTS, MAP_STATS, MAP_HOST_STATS, MAP_COUNT };

static const struct {
	const char *name;
	__u32 key_size, value_size;
} map_defs[MAP_COUNT] __attribute__((unused)) = {
	[MAP_FLOWS] = { EDGE_MAP_FAILED_FLOWS, sizeof(struct edge_flow_key),
			sizeof(struct edge_flow_val) },
	[MAP_OFFENDERS] = { EDGE_MAP_OFFENDERS, sizeof(struct edge_offender_key),
			    sizeof(struct edge_offender_val) },
	[MAP_PORTS] = { EDGE_MAP_LISTEN_PORTS, sizeof(__u16), sizeof(__u8) },
	[MAP_STATS] = { EDGE_MAP_STATS, sizeof(__u32), sizeof(__u64) },
	[MAP_HOST_STATS] = { EDGE_MAP_HOST_STATS, sizeof(__u32), sizeof(__u64) },
};

struct edge_flowtag {
	struct edge_bpf *skel; /* NULL when opened from the pins only */
	int fd[MAP_COUNT];     /* owned by skel, or by us without one */
	__u32 max_entries[MAP_COUNT];
	int ncpus;
	int n_ifs;
	int *ifindex; /* where this handle attached the filter */
};

/* CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), which expiries use. */
static inline __u64 edge_flowtag_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

#endif
