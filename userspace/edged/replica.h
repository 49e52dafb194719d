/*
 * A fleet edge ([fleet] etcd = ...): one thread keeps the state directory's store as a
 * replica of the cluster's keys in etcd (userspace/lib/fleet.h), with one watch per host.
 *
 * At start, and after a watch that ended on a compaction or a revision that went backwards
 * (etcd restored from a backup: said loudly), the whole prefix is read again; then a watch
 * from the revision after it. Every answer's keys go into the replica's fleet_kv table; at a
 * revision that wrote meta/commit (the control's publish is complete) the configuration
 * tables are rebuilt from them and checked (a snapshot is built from what is about to be
 * committed) in one transaction: a good revision commits and the main thread reloads it
 * through the usual path (edge_replica_fd); a bad one is rolled back, the previous
 * configuration keeps serving, and the reason goes to status/NODE in etcd, to the log and
 * to the metrics. The revision seen advances only on what etcd answered (events or a
 * progress notification), never on a timeout. etcd unreachable: the last good replica
 * serves (and the daemon starts from it), retries back off (200 ms to 5 s, with jitter).
 */
#ifndef EDGE_REPLICA_H
#define EDGE_REPLICA_H

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

struct edge_replica;

/* Makes the replica store in the state directory if there is none (an edge's own: a store
 * with a configuration of another origin is refused) before the daemon opens it. */
int edge_replica_prepare(const struct edge_config *cfg, char *err, size_t errlen);
/* Starts the thread (after the first snapshot is serving); hooks: the daemon's TLS hooks,
 * with which each revision's snapshot is built to check it. */
int edge_replica_new(struct edge_daemon *d, const struct edge_tls_hooks *hooks,
		     struct edge_replica **out, char *err, size_t errlen);
void edge_replica_free(struct edge_replica *r);
/* Readable when a revision was committed to the replica: reload, then edge_replica_ack. */
int edge_replica_fd(const struct edge_replica *r);
void edge_replica_ack(struct edge_replica *r);
/* For status and metrics (metrics.c renders them). */
json_t *edge_replica_json(struct edge_replica *r);
#define EDGE_REPLICA_BUCKETS 10 /* apply latency histogram: upper bounds in seconds, then +Inf */
struct edge_replica_stat {
	double bucket_le[EDGE_REPLICA_BUCKETS + 1];
	uint64_t bucket_count[EDGE_REPLICA_BUCKETS + 1]; /* cumulative */
	size_t n_buckets;
	double apply_sum_s;
	uint64_t applied, rejected, reconnects, resyncs, backwards;
	int64_t applied_rev, etcd_rev;
	bool connected;
};
void edge_replica_stats(struct edge_replica *r, struct edge_replica_stat *out);

#endif
