/*
 * The running daemon's shared state: workers (one io_uring each), the
 * connections they own, counters, and the current snapshot.
 */
#ifndef EDGE_DAEMON_H
#define EDGE_DAEMON_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>
#include <openssl/ssl.h>

#include "config.h"
#include "ktls.h"
#include "policy.h"
#include "pool.h"
#include "snapshot.h"
#include "srclimit.h"
#include "verify.h"

/* Why a relayed connection (past its handshake) closed: a fixed set of
 * names, see edge_close_reason_name(); anything else counts as "other". */
#define EDGE_CLOSE_REASON_COUNT 25

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
	uint64_t ktls_fallback;     /* kTLS on, but this session stayed in userspace */
	uint64_t control_records;   /* alerts and handshake records after the hand-off */
	uint64_t bytes_in;  /* client -> upstream */
	uint64_t bytes_out; /* upstream -> client */
	uint64_t revoked_closed;
	uint64_t flows_tagged;      /* flows handed to the eBPF program */
	uint64_t closed;
	uint64_t closed_by[EDGE_CLOSE_REASON_COUNT]; /* relayed connections, by close reason */
	/* --forward (forward.c): identity to the upstream */
	uint64_t proxy_v2_sent;        /* PROXY v2 headers written to upstreams */
	uint64_t http_requests_rewritten; /* request heads rewritten (headers mode) */
	uint64_t http_refused_400;     /* requests refused: cannot be framed safely */
	uint64_t http_refused_421;     /* requests refused: Host is not the SNI */
	uint64_t http_refused_431;     /* requests refused: head over 16 KiB */
	/* --protocol http: the upstream keep-alive pool (pool.c) */
	uint64_t upstream_connects;    /* new upstream connections (any protocol) */
	uint64_t upstream_reused;      /* client connections given a pooled upstream connection */
	uint64_t upstream_pooled;      /* upstream connections kept after their client's end */
	uint64_t upstream_pool_closed; /* pooled connections closed: expired, evicted, found closed */
};

enum edge_conn_state {
	EDGE_CONN_HANDSHAKE = 0,
	EDGE_CONN_CONNECTING,
	EDGE_CONN_UP_HANDSHAKE, /* TLS to the upstream */
	EDGE_CONN_RELAY,
	EDGE_CONN_REPLY,     /* writing a local answer (403 page), then lingering */
	EDGE_CONN_LINGER,    /* reading and discarding until the client closes */
	EDGE_CONN_CLOSING,   /* waiting for in-flight operations to finish */
};

/* One direction of the relay: bytes read from one side, waiting to be
 * written to the other. */
struct edge_dir {
	char *buf;
	uint32_t len, off;
	bool eof;        /* the reading side ended */
	bool busy;       /* an io_uring send to the upstream is in flight (c2u) */
	bool notified;   /* u2c: close_notify sent to the client */
	bool wait;       /* splice path: a poll is armed for this direction */
};

struct edge_worker;

/* Every object named in io_uring user_data is 16-byte aligned: the low four
 * bits carry the operation (edge_ud). */
#define EDGE_UD_ALIGNED __attribute__((aligned(16)))

struct EDGE_UD_ALIGNED edge_conn {
	struct edge_conn *prev, *next;  /* worker's list, for timers and drain */
	struct edge_worker *w;
	struct edge_snapshot *snap;
	const struct edge_sni *sni;
	const struct edge_trust *trust;
	enum edge_rule_action action;
	enum edge_conn_state state;
	enum edge_verdict verdict;
	int cfd, ufd;
	SSL *ssl;
	SSL *ussl;                      /* TLS to the upstream, or NULL */
	unsigned int inflight;          /* io_uring ops that name this connection */
	bool poll_in, poll_out;         /* a poll is armed on cfd */
	bool up_poll_in, up_poll_out;   /* a poll is armed on ufd */
	bool ktls;                      /* both directions in the kernel: splice relay */
	int pipes[2][2];                /* kTLS: [0] client->upstream, [1] upstream->client */
	unsigned char rx_secret[EDGE_TLS_SECRET_MAX];    /* client's TLS 1.3 traffic secret */
	uint8_t rx_secret_len;
	unsigned char up_rx_secret[EDGE_TLS_SECRET_MAX]; /* upstream's (server) secret */
	uint8_t up_rx_secret_len;
	bool in_handshake_count;
	bool closing;
	bool verify_ran;                /* the verify callback saw a certificate */
	bool bpf_tag;                   /* a block rule acted: tag the flow at close */
	uint64_t start_ms, deadline_ms;
	struct edge_dir c2u, u2c;
	struct edge_dir out;            /* userspace relay: TLS records for the client, batched */
	uint64_t bytes_in, bytes_out;
	struct edge_verify_result vr;
	const char *fail_reason;        /* stable name of why the handshake failed */
	char fail_detail[160];
	struct sockaddr_storage peer_ss;
	char peer[64];
	char host[256];                 /* SNI as sent, lower-cased */
	const char *close_reason;
	const char *reply;              /* EDGE_CONN_REPLY: what to write */
	uint32_t reply_len, reply_off;
	struct __kernel_timespec connect_ts;
	struct edge_http_rw *rw;        /* headers mode: the request rewriter, or NULL */
	char *fwd_inject;               /* headers mode: the lines it adds */
	struct edge_http_resp *rs;      /* --protocol http: the response reader, or NULL */
	bool up_reused;                 /* the upstream connection came from the pool */
	bool c2u_held;                  /* http: requests wait for responses (pipeline full) */
	uint32_t u2c_raw;               /* http: u2c bytes at buf + off the reader let through */
	uint64_t u2c_seen;              /* http: responses seen complete by the pump */
};

struct EDGE_UD_ALIGNED edge_listener {
	int fd;
	int index;
	struct edge_worker *w;
};

struct edge_daemon;
struct edge_flowtag;
struct edge_metrics;

#define EDGE_RELAY_POOL 64 /* per worker: 1 MiB of buffers kept for reuse at most */
#define EDGE_OUT_POOL 16   /* per worker: 1 MiB of record batch buffers at most */

struct EDGE_UD_ALIGNED edge_worker {
	int id;
	pthread_t thread;
	struct io_uring ring;
	struct edge_daemon *d;
	struct edge_listener listeners[EDGE_MAX_LISTEN];
	int n_listeners;
	struct edge_conn head;          /* list sentinel */
	unsigned int n_conns;
	bool draining;
	uint64_t drain_deadline_ms;
	int64_t seen_generation;
	struct __kernel_timespec tick_ts;
	struct edge_counters c;
	/* Userspace relay: free 16 KiB buffers for reuse (see relay.c). */
	char *bufs[EDGE_RELAY_POOL];
	unsigned int n_bufs;
	char *obufs[EDGE_OUT_POOL];     /* free 64 KiB record batch buffers */
	unsigned int n_obufs;
	struct edge_pool pool;          /* idle upstream connections (pool.c) */
};

struct edge_daemon {
	struct edge_config cfg;
	struct edge_worker *workers;
	int n_workers;
	pthread_mutex_t snap_lock;
	struct edge_snapshot *snap;     /* current; swap under snap_lock */
	atomic_int handshakes_inflight;
	struct edge_srclimit srclimit;  /* handshakes in flight per source */
	atomic_bool stopping;
	atomic_int_fast64_t generation;
	/* last reload result, for status */
	pthread_mutex_t status_lock;
	bool last_reload_ok;
	char last_reload_error[512];
	int64_t last_reload_at;
	int64_t failed_generation;      /* not retried until the store changes again */
	uint64_t reloads_ok, reloads_failed;
	bool ktls;                      /* hand verified sessions to the kernel */
	struct edge_flowtag *flowtag;   /* eBPF enforcement, or NULL */
	char bpf_status[320];
	char ktls_status[320];
	char listen_text[EDGE_MAX_LISTEN][80];
	int n_listen_text;
	struct edge_metrics *metrics;   /* labelled counters, expiry (metrics.h) */
};

/* daemon.c */
struct edge_snapshot *edge_daemon_snapshot(struct edge_daemon *d);
int edge_daemon_swap_snapshot(struct edge_daemon *d, struct edge_snapshot *s);
uint64_t edge_now_ms(void);
void edge_daemon_counters(struct edge_daemon *d, struct edge_counters *sum);

/* worker.c */
const char *edge_close_reason_name(int i);
int edge_close_reason_index(const char *reason);
int edge_worker_start(struct edge_worker *w);
/* The handshake is over (done or failed): free its global and per-source slot. */
void edge_conn_handshake_over(struct edge_conn *c);
void edge_conn_close(struct edge_conn *c, const char *reason);
/* The same with a reset: nothing more reaches the client (revocation, drop). */
void edge_conn_abort(struct edge_conn *c, const char *reason);
/* Arms a poll on the client socket for POLLIN or POLLOUT (once). */
void edge_conn_arm_poll(struct edge_conn *c, unsigned int events);
/* The same on the upstream socket. */
void edge_conn_arm_upoll(struct edge_conn *c, unsigned int events);
struct io_uring_sqe *edge_worker_sqe(struct edge_worker *w);

/* handshake.c */
const struct edge_tls_hooks *edge_handshake_hooks(bool ktls);
int edge_handshake_init(void);
int edge_handshake_start(struct edge_conn *c);
void edge_handshake_step(struct edge_conn *c);
void edge_handshake_reason_counters(struct edge_conn *c);

/* relay.c */
void edge_relay_connect(struct edge_conn *c);
void edge_relay_on_connect(struct edge_conn *c, int res);
void edge_relay_on_poll(struct edge_conn *c);
void edge_relay_on_upoll(struct edge_conn *c);
void edge_relay_on_send(struct edge_conn *c, int res);
void edge_relay_reply(struct edge_conn *c, const char *text, uint32_t len);
void edge_relay_drop(struct edge_conn *c);
void edge_relay_free(struct edge_conn *c);
/* At worker exit: the free buffers. */
void edge_relay_pool_free(struct edge_worker *w);
/* headers mode: the rewriter refused a request (counts and logs it). */
void edge_relay_refused(struct edge_conn *c);

/* user_data: a pointer (16-byte aligned) with the operation in the low bits. */
enum edge_op {
	EDGE_OP_ACCEPT = 0,
	EDGE_OP_TICK,
	EDGE_OP_POLL_IN,
	EDGE_OP_POLL_OUT,
	EDGE_OP_UP_CONNECT,
	EDGE_OP_UP_SEND,
	EDGE_OP_CONN_AUX,  /* link timeouts, cancels: only settle the count */
	EDGE_OP_UP_POLL_IN,
	EDGE_OP_UP_POLL_OUT,
	EDGE_OP_SPL_C2P,   /* kTLS client -> pipe */
	EDGE_OP_SPL_P2U,   /* pipe -> upstream */
	EDGE_OP_SPL_U2P,   /* upstream -> pipe */
	EDGE_OP_SPL_P2C,   /* pipe -> kTLS client */
	EDGE_OP_MASK = 15,
};

static inline uint64_t edge_ud(void *p, enum edge_op op)
{
	assert(((uintptr_t)p & EDGE_OP_MASK) == 0);
	return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

/* identity.c: --forward */
/* proxy-v2: the header, written first on the fresh upstream connection. */
int edge_identity_send_proxy_v2(struct edge_conn *c);
/* headers: c->rw set up with this session's fields. */
int edge_identity_start_rewriter(struct edge_conn *c);

/* splice.c: the kTLS relay */
/* At relay start: 1 when both sessions went to the kernel, 0 for the
 * userspace relay, negative when the connection must close. */
int edge_splice_handoff(struct edge_conn *c);
void edge_splice_start(struct edge_conn *c);
void edge_splice_on_poll(struct edge_conn *c, enum edge_op op);
void edge_splice_on_op(struct edge_conn *c, enum edge_op op, int res);
void edge_splice_free(struct edge_conn *c);

#endif
