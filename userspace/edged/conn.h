/*
 * A connection: one state machine over two sides. Its states, and the
 * handlers that run on entering a state, on an I/O completion and at its
 * deadline, are one table in conn.c; a handler returns the next step (stay,
 * move to another state, or close with a reason) and only conn.c changes the
 * state or closes. The sides (side.h) carry the bytes; the relay (relay.c)
 * moves them in two directions.
 */
#ifndef EDGE_CONN_H
#define EDGE_CONN_H

#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include <linux/time_types.h>

#include "alpn.h"
#include "policy.h"
#include "reason.h"
#include "ring.h"
#include "side.h"
#include "timer.h"
#include "verify.h"

struct edge_worker;
struct edge_snapshot;
struct edge_sni;
struct edge_trust;
struct edge_http_rw;
struct edge_http_resp;
struct edge_filter;
struct edge_h2;
struct edge_h2_stream;

enum edge_conn_state {
	EDGE_CONN_HANDSHAKE = 0, /* the client's TLS handshake (handshake.c) */
	EDGE_CONN_CONNECTING,    /* the upstream connect, bounded by a link timeout (upstream.c) */
	EDGE_CONN_UP_HANDSHAKE,  /* TLS to the upstream (upstream.c) */
	EDGE_CONN_RELAY,         /* bytes both ways; each direction pumps or splices (relay.c) */
	EDGE_CONN_REPLY,         /* a local answer (403, a refusal) is written (reply.c) */
	EDGE_CONN_LINGER,        /* reading and discarding until the client closes (reply.c) */
	EDGE_CONN_DRAIN,         /* after a refused handshake: its alert out, the client's last
				    flight read and discarded, so that the close is no reset (reply.c) */
	EDGE_CONN_H2,      /* HTTP/2 terminated: frames both ways, a child per stream (h2.c) */
	EDGE_CONN_CLOSING, /* operations in flight are cancelled; freed when none is left */
	EDGE_CONN_NSTATES,
};

/* What a handler tells the state machine. */
struct edge_step {
	uint8_t next;  /* enum edge_conn_state; EDGE_CONN_NSTATES: stay */
	uint8_t close; /* enum edge_close_reason, with next = EDGE_CONN_CLOSING */
	bool reset;    /* close with a reset: nothing queued reaches the client */
};

static inline struct edge_step edge_stay(void)
{
	return (struct edge_step){ .next = EDGE_CONN_NSTATES };
}

static inline struct edge_step edge_move(enum edge_conn_state s)
{
	return (struct edge_step){ .next = (uint8_t)s };
}

static inline struct edge_step edge_close(enum edge_close_reason r)
{
	return (struct edge_step){ .next = EDGE_CONN_CLOSING, .close = (uint8_t)r };
}

static inline struct edge_step edge_abort(enum edge_close_reason r)
{
	return (struct edge_step){ .next = EDGE_CONN_CLOSING, .close = (uint8_t)r, .reset = true };
}

static inline bool edge_stays(struct edge_step s)
{
	return s.next == EDGE_CONN_NSTATES;
}

/* The two directions of the relay: index = the side they read from. */
enum edge_dir_id {
	EDGE_C2U = EDGE_CLIENT,   /* client -> upstream */
	EDGE_U2C = EDGE_UPSTREAM, /* upstream -> client */
};

enum edge_flow_mode {
	EDGE_FLOW_PUMP = 0, /* read into a buffer, through the filter, written out */
	EDGE_FLOW_SPLICE,   /* socket -> pipe -> socket in the kernel (splice.c) */
};

struct edge_dir {
	enum edge_dir_id id;
	enum edge_flow_mode mode;
	const struct edge_filter *filter; /* pump only: reads and rewrites the bytes */
	struct edge_buf in;               /* pump: bytes read from the source, not yet through */
	bool eof;                         /* the source ended (or the filter ended it) */
	bool done;                        /* the end was passed on (or needs not be) */
	bool held;                        /* pump: the filter holds the source back */
	/* splice */
	int pipe[2];
	uint32_t piped; /* bytes in the pipe */
	bool busy;      /* a splice is in flight */
	uint8_t waits;  /* the polls it waits on: EDGE_WAIT_BIT(side, events) */
};

/* A direction's wait on a side's poll: on its completion, that direction goes on. */
#define EDGE_WAIT_BIT(side, events) ((uint8_t)(1u << ((side)*2 + ((events) == POLLOUT))))

static inline enum edge_side_id edge_dir_src(const struct edge_dir *d)
{
	return (enum edge_side_id)d->id;
}

static inline enum edge_side_id edge_dir_dst(const struct edge_dir *d)
{
	return d->id == EDGE_C2U ? EDGE_UPSTREAM : EDGE_CLIENT;
}

struct EDGE_UD_ALIGNED edge_conn {
	struct edge_conn *prev, *next; /* the worker's list, for drain and reloads */
	struct edge_timer timer;       /* in the worker's wheel for its next look (conn.c) */
	struct edge_worker *w;
	struct edge_snapshot *snap; /* the one it started with */
	const struct edge_sni *sni;
	const struct edge_trust *trust;
	const struct edge_authz *authz; /* the hostname's identity rules, or NULL */
	enum edge_rule_action action;
	enum edge_mtls_mode mode; /* the SNI object's, or its listener's own (mtls=MODE) */
	int listener;             /* the index of the listen address it came in on */
	enum edge_conn_state state;
	enum edge_verdict verdict;
	enum edge_close_reason close;   /* why it closes: the first reason given wins */
	const char *close_detail;       /* logged for reason= when set (an HTTP refusal's name) */
	unsigned int inflight;          /* io_uring operations that name this connection */
	struct edge_side side[2];       /* [EDGE_CLIENT], [EDGE_UPSTREAM] */
	struct edge_dir dir[2];         /* [EDGE_C2U], [EDGE_U2C] */
	uint64_t start_ms, deadline_ms; /* deadline 0: none (the connect has a link timeout) */
	uint64_t bytes_in, bytes_out;   /* read from the client, written to it */
	/* the handshake (handshake.c) */
	bool in_handshake_count; /* holds a global and a per-source handshake slot */
	bool verify_ran;         /* the verify callback saw a certificate */
	bool bpf_tag;            /* a block rule acted: tag the flow at close */
	enum edge_hs_fail hs_fail;
	struct edge_verify_result vr;
	struct edge_cert_audit audit; /* the presented leaf, for the handshake line */
	X509 *leaf; /* the client's leaf, own reference, once its SSL is gone (kTLS: released) */
	char fail_detail[160];
	char alpn[EDGE_ALPN_TOKEN_MAX + 1]; /* the protocol negotiated, "" for none */
	unsigned int alpn_label;            /* its metrics label (0: none negotiated) */
	struct sockaddr_storage peer_ss;
	char peer[64];
	char host[256]; /* SNI as sent, lower-cased */
	/* a local answer (reply.c): the text, and how the connection closes after it */
	const char *reply;
	uint32_t reply_len, reply_off;
	enum edge_close_reason reply_close;
	const char *reply_detail;
	/* the upstream (upstream.c) */
	struct __kernel_timespec connect_ts;
	bool up_reused; /* the upstream connection came from the pool */
	/* --protocol http: the upstream connection goes back to the pool while the client is
	 * idle between requests (relay.c) */
	bool relay_started; /* the relay was entered: a later enter is the return of a parked one */
	bool parked;        /* no upstream connection now: the next request takes one */
	uint64_t active_ms; /* the relay's last I/O */
	uint64_t park_no;   /* active_ms when a look found it not parkable: none until the next */
	/* the filters (filter.c) */
	struct edge_http_rw *rw;   /* the request rewriter (headers mode, --protocol http) */
	char *fwd_inject;          /* headers mode: the lines it adds */
	struct edge_http_resp *rs; /* --protocol http: the response reader */
	uint32_t u2c_raw;          /* http: response bytes at in.off the reader let through */
	uint64_t u2c_seen;         /* http: responses seen complete by the pump */
	/* HTTP/2 (h2.c) */
	struct edge_h2 *h2s;       /* the parent: its session and streams */
	struct edge_h2_stream *h2; /* a child: its stream (NULL once either is gone) */
	bool h2_child;             /* a child: for its whole life */
	int32_t h2_stream_id;      /* a child: its stream's id (for the close line) */
	bool kick_queued;          /* an EDGE_OP_KICK is in flight (edge_conn_kick) */
	bool kick_set;             /* kick_step is applied at the kick's completion */
	struct edge_step kick_step;
};

/* conn.c */
/* A new connection on fd from ss: its handshake starts. */
void edge_conn_accept(struct edge_worker *w, int fd, const struct sockaddr_storage *ss,
		      int listener);
/* A completion that names c. */
void edge_conn_dispatch(struct edge_conn *c, enum edge_op op, int res);
/* A look at c from the worker's tick: its deadline, the drain's end (drain_over), its
 * certificate's expiry at wall; then c is filed for its next look (or freed). */
void edge_conn_tick(struct edge_conn *c, uint64_t now_ms, int64_t wall, bool drain_over);
/* The worker's tick: a look at each connection whose next look is due by now_ms. */
void edge_conn_timers(struct edge_worker *w, uint64_t now_ms, int64_t wall);
/* Files c for its next look (its deadline, its certificate's end) unless it is filed for an
 * earlier one; after the wall clock jumped, or when the certificate's end starts to count. */
void edge_conn_arm(struct edge_conn *c, uint64_t now_ms, int64_t wall);
/* edge_conn_deadline(), edge_conn_look_soon(): worker.h (inline: the states' handlers set
 * deadlines, and conn.c calls those handlers). */
/* A new snapshot s: closes c when s revokes its client certificate. */
void edge_conn_recheck(struct edge_conn *c, struct edge_snapshot *s);
/* The state's name, for logs and tests. */
const char *edge_conn_state_name(enum edge_conn_state s);
/* "ktls" once the client's session went to the kernel, else "userspace". */
const char *edge_conn_path(const struct edge_conn *c);
/* Applies a step to c as a handler's result would be (for the unit tests). */
void edge_conn_apply(struct edge_conn *c, struct edge_step st);
/* side.c: wakes c from outside its own handlers, with an io_uring no-op: at its completion
 * c->kick_step is applied when kick_set (a child's start, or its end), else its state's on_io
 * gets EDGE_OP_KICK (once, however many kicks come before it runs; in the states that have
 * no use for it, as a poll of the client side). */
void edge_conn_kick(struct edge_conn *c);

#endif
