/*
 * The running daemon's shared state: its configuration, the workers, the
 * current snapshot and how the last reload went, the counters (summed over
 * the workers), the eBPF and kTLS status. daemon.c: the snapshot swap, the
 * clock and the counters' sum.
 */
#ifndef EDGE_DAEMON_H
#define EDGE_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"
#include "reason.h"
#include "snapshot.h"
#include "srclimit.h"
#include "verify.h"

/* Per-worker counters: one writer (the worker), read racily by the admin
 * thread for status; 64-bit loads are atomic on the platforms we run on. */
struct edge_counters {
	uint64_t accepted;
	uint64_t handshakes_ok;
	uint64_t handshakes_failed;
	uint64_t by_reason[EDGE_REASON_COUNT];
	uint64_t unknown_sni;
	uint64_t tls_errors;
	uint64_t handshake_timeouts;
	uint64_t handshake_cap_refused;
	uint64_t handshake_source_refused; /* one source at its per-source cap */
	uint64_t verdict[EDGE_VERDICT_REFUSE + 1];
	uint64_t upstream_connect_failed;
	uint64_t upstream_tls_failed;
	uint64_t idle_timeouts;
	uint64_t path_userspace;
	uint64_t path_ktls;
	uint64_t ktls_fallback;   /* kTLS on, but this session stayed in userspace */
	uint64_t ktls_released;   /* after the hand-off, the SSL objects freed */
	uint64_t own_records;     /* TLS 1.3 relayed on our own record layer (xprt_rec.c) */
	uint64_t control_records; /* alerts and handshake records after the hand-off */
	uint64_t bytes_in;        /* client -> upstream */
	uint64_t bytes_out;       /* upstream -> client */
	uint64_t revoked_closed;
	uint64_t unauthorized_closed; /* live connections a rule change no longer admits */
	uint64_t flows_tagged;        /* flows handed to the eBPF program */
	uint64_t closed;
	uint64_t closed_by[EDGE_CLOSE_COUNT]; /* relayed connections, by close reason */
	/* --forward (forward.c): identity to the upstream */
	uint64_t proxy_v2_sent;           /* PROXY v2 headers written to upstreams */
	uint64_t http_requests_rewritten; /* request heads rewritten (headers mode) */
	uint64_t http_refused_400;        /* requests refused: cannot be framed safely */
	uint64_t http_refused_421;        /* requests refused: Host is not the SNI */
	uint64_t http_refused_431;        /* requests refused: head over 16 KiB */
	/* --protocol http: the upstream keep-alive pool (pool.c) */
	uint64_t upstream_connects;    /* new upstream connections (any protocol) */
	uint64_t upstream_reused;      /* client connections given a pooled upstream connection */
	uint64_t upstream_pooled;      /* upstream connections kept after their client's end */
	uint64_t upstream_parked;      /* ... given back by a client idle between requests */
	uint64_t upstream_pool_closed; /* pooled connections closed: expired, evicted, found closed */
	/* ALPN with a TLS upstream (--protocol tcp): it did not select the client's protocol */
	uint64_t upstream_alpn_mismatch;
	/* the verified-chain cache (verify_cache.h) */
	uint64_t verify_cache_hits;
	uint64_t verify_cache_misses;
	/* HTTP/2 terminated (h2.c) */
	uint64_t h2_connections;   /* client connections read as HTTP/2 */
	uint64_t h2_streams;       /* requests (streams) opened */
	uint64_t h2_local;         /* streams the edge answered itself (431, 405, gRPC, 502) */
	uint64_t h2_client_resets; /* streams the client reset before their response was out */
	uint64_t h2_refused;       /* streams refused beyond SETTINGS_MAX_CONCURRENT_STREAMS */
	uint64_t h2_goaway[EDGE_H2_GOAWAY_COUNT];
};

_Static_assert(sizeof(struct edge_counters) % sizeof(uint64_t) == 0,
	       "struct edge_counters is summed as an array of uint64_t (edge_daemon_counters)");

struct edge_worker;
struct edge_flowtag;
struct edge_metrics;

struct edge_crlfetch;
struct edge_replica;

struct edge_daemon {
	struct edge_config cfg;
	struct edge_worker *workers;
	int n_workers;
	pthread_mutex_t snap_lock;
	struct edge_snapshot *snap; /* current; swap under snap_lock */
	atomic_int handshakes_inflight;
	struct edge_srclimit srclimit; /* handshakes in flight per source */
	atomic_bool stopping;
	atomic_int_fast64_t generation;
	/* last reload result, for status */
	pthread_mutex_t status_lock;
	bool last_reload_ok;
	char last_reload_error[512];
	int64_t last_reload_at;
	int64_t failed_generation; /* not retried until the store changes again */
	uint64_t reloads_ok, reloads_failed;
	bool ktls;                    /* hand verified sessions to the kernel */
	struct edge_flowtag *flowtag; /* eBPF enforcement, or NULL */
	char bpf_status[320];
	char ktls_status[320];
	char listen_text[EDGE_MAX_LISTEN][80];
	int n_listen_text;
	struct edge_metrics *metrics;   /* labelled counters, expiry (metrics.h) */
	struct edge_crlfetch *crlfetch; /* CRLs from distribution points, or NULL (crlfetch.h) */
	struct edge_replica *replica;   /* [fleet]: the store kept from etcd, or NULL (replica.h) */
};

/* daemon.c */
struct edge_snapshot *edge_daemon_snapshot(struct edge_daemon *d);
int edge_daemon_swap_snapshot(struct edge_daemon *d, struct edge_snapshot *s);
uint64_t edge_now_ms(void);
/* Every worker's counters, summed (read racily: one writer each). */
void edge_daemon_counters(struct edge_daemon *d, struct edge_counters *sum);
/* The connections the workers hold. */
unsigned int edge_daemon_open_conns(struct edge_daemon *d);
/* After a swap to generation gen: wakes every worker and waits (at most ms) until each has
 * applied it to its live connections (revocations, identity rules): true when all did. */
bool edge_daemon_apply(struct edge_daemon *d, uint64_t seq, unsigned int ms);

#endif
