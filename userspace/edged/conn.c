/*
 * The connection state machine: the one table of states and their handlers,
 * and the only code that changes a connection's state or closes it. Handlers
 * (handshake.c through the wrappers below, upstream.c, relay.c, reply.c)
 * return a step; edge_conn_apply() carries it out: it enters the next state
 * (whose enter handler may return a further step), or closes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conn.h"
#include "enforce.h"
#include "h2.h"
#include "handshake.h"
#include "authz.h"
#include "log.h"
#include "relay.h"
#include "reply.h"
#include "snapshot.h"
#include "upstream.h"
#include "worker.h"

/* ---- the HANDSHAKE state: handshake.c's result, and the verdict's step ---- */

/* What follows a verdict. */
static struct edge_step verdict_step(struct edge_conn *c)
{
	switch (c->verdict) {
	case EDGE_VERDICT_PASS:
	case EDGE_VERDICT_UNVERIFIED:
		return edge_move(edge_h2_terminates(c) ? EDGE_CONN_H2 : EDGE_CONN_CONNECTING);
	case EDGE_VERDICT_BLOCK:
		edge_reply_forbidden(c);
		return edge_move(EDGE_CONN_REPLY);
	case EDGE_VERDICT_DROP: /* silent: no alert, no close_notify; a reset ends it at once */
		return edge_abort(EDGE_CLOSE_HANDSHAKE);
	case EDGE_VERDICT_REFUSE: /* a completed handshake (a resumed session judged again) */
	default:
		c->side[EDGE_CLIENT].ops->shutw(c, &c->side[EDGE_CLIENT]); /* close_notify */
		return edge_move(EDGE_CONN_DRAIN);
	}
}

static struct edge_step hs_result(struct edge_conn *c, enum edge_hs_result r)
{
	switch (r) {
	case EDGE_HS_WAIT:
		return edge_stay();
	case EDGE_HS_DONE:
		return verdict_step(c);
	case EDGE_HS_FAILED:
	default:
		/* The alert is out: read the client's last flight away before the close, so
		 * that it reaches the client (a client gone or idle is closed at once). */
		if (c->hs_fail == EDGE_HS_CLIENT_CLOSED || c->hs_fail == EDGE_HS_TIMEOUT)
			return edge_close(EDGE_CLOSE_HANDSHAKE);
		return edge_move(EDGE_CONN_DRAIN);
	}
}

static struct edge_step hs_enter(struct edge_conn *c)
{
	edge_conn_deadline(c, c->start_ms + c->w->d->cfg.handshake_timeout_ms);
	if (edge_handshake_start(c))
		return edge_close(EDGE_CLOSE_HANDSHAKE);
	return hs_result(c, edge_handshake_step(c));
}

static struct edge_step hs_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	if (op != EDGE_OP_POLL_IN && op != EDGE_OP_POLL_OUT)
		return edge_stay();
	return hs_result(c, edge_handshake_step(c));
}

static struct edge_step hs_timeout(struct edge_conn *c)
{
	c->hs_fail = EDGE_HS_TIMEOUT;
	c->w->c.handshake_timeouts++;
	edge_handshake_report_failure(c);
	return edge_close(EDGE_CLOSE_HANDSHAKE);
}

/* ---- the table ---- */

struct edge_state_ops {
	const char *name;
	struct edge_step (*enter)(struct edge_conn *c); /* arms I/O, sets the deadline */
	struct edge_step (*on_io)(struct edge_conn *c, enum edge_op op, int res); /* a completion */
	struct edge_step (*on_timeout)(struct edge_conn *c); /* the deadline passed */
};

/* In enum edge_conn_state's order (test_conn checks each name against its state). */
/* clang-format off */
static const struct edge_state_ops states[] = {
	/* name           enter                   on_io                     on_timeout */
	{ "handshake",    hs_enter,               hs_on_io,                 hs_timeout },
	{ "connecting",   edge_upstream_connect,  edge_upstream_on_connect, edge_upstream_connect_timeout },
	{ "up_handshake", edge_upstream_hs_enter, edge_upstream_hs_on_io,   edge_upstream_hs_timeout },
	{ "relay",        edge_relay_enter,       edge_relay_on_io,         edge_relay_timeout },
	{ "reply",        edge_reply_enter,       edge_reply_on_io,         edge_reply_timeout },
	{ "linger",       edge_linger_enter,      edge_linger_on_io,        edge_reply_timeout },
	{ "drain",        edge_drain_enter,       edge_drain_on_io,         edge_drain_timeout },
	{ "h2",           edge_h2_enter,          edge_h2_on_io,            edge_h2_timeout },
	{ "closing",      NULL,                   NULL,                     NULL },
};
/* clang-format on */
_Static_assert(sizeof(states) / sizeof(states[0]) == EDGE_CONN_NSTATES, "a row per state");

const char *edge_conn_state_name(enum edge_conn_state s)
{
	return (unsigned int)s < EDGE_CONN_NSTATES ? states[s].name : "?";
}

/* ---- closing ---- */

const char *edge_conn_path(const struct edge_conn *c)
{
	return c->side[EDGE_CLIENT].ops == &edge_xprt_ktls ? "ktls" : "userspace";
}

static void log_close(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_HANDSHAKE || c->state == EDGE_CONN_DRAIN)
		return; /* the handshake line already said how it ended */
	c->w->c.closed_by[c->close < EDGE_CLOSE_COUNT ? c->close : EDGE_CLOSE_OTHER]++;
	const struct edge_log_field f[] = {
		EDGE_LF_S("peer", c->peer),
		EDGE_LF_S("sni", c->host),
		EDGE_LF_N("bytes_in", c->bytes_in),
		EDGE_LF_N("bytes_out", c->bytes_out),
		EDGE_LF_N("duration_ms", edge_now_ms() - c->start_ms),
		EDGE_LF_S("path", edge_conn_path(c)),
		EDGE_LF_S("reason",
			  c->close_detail ? c->close_detail : edge_close_reason_name(c->close)),
		EDGE_LF_S("verdict", edge_verdict_name(c->verdict)),
		EDGE_LF_N("stream", c->h2_stream_id), /* an HTTP/2 stream's child only */
	};

	edge_log_event(EDGE_LOG_INFO, "close", f, sizeof(f) / sizeof(f[0]) - !c->h2_child);
}

/* The handshake is over (done or failed): its global and per-source slots are free. */
static void handshake_over(struct edge_conn *c)
{
	if (!c->in_handshake_count)
		return;
	atomic_fetch_sub(&c->w->d->handshakes_inflight, 1);
	edge_srclimit_put(&c->w->d->srclimit, (struct sockaddr *)&c->peer_ss);
	c->in_handshake_count = false;
}

static void conn_close(struct edge_conn *c, enum edge_close_reason reason, bool reset)
{
	struct edge_worker *w = c->w;

	if (c->state == EDGE_CONN_CLOSING)
		return;
	if (!c->close)
		c->close = reason ? reason : EDGE_CLOSE_OTHER;
	log_close(c);
	if (c->bpf_tag)
		edge_enforce_tag(c); /* after the rule's action: the client's last packets pass */
	if (reset) {
		/* A reset: what is queued for the client is discarded, not delivered. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->side[EDGE_CLIENT].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	c->state = EDGE_CONN_CLOSING;
	handshake_over(c);
	if (c->h2s)
		edge_h2_close(c); /* its streams' children close too */
	if (c->h2_child) {
		edge_h2_child_closed(c); /* its stream ends */
	} else {
		w->c.bytes_in += c->bytes_in; /* a child's bytes are its parent's too */
		w->c.bytes_out += c->bytes_out;
	}
	if (c->inflight) {
		for (int i = 0; i < 2; i++) {
			edge_side_cancel_fd(c, c->side[i].fd);
			edge_side_cancel_fd(c, c->dir[i].pipe[0]);
			edge_side_cancel_fd(c, c->dir[i].pipe[1]);
		}
		edge_timer_unfile(&w->timers, &c->timer); /* the last completion frees it */
	} else {
		edge_conn_look_soon(c); /* the caller's maybe_free, or the next tick */
	}
}

static void conn_free(struct edge_conn *c)
{
	struct edge_worker *w = c->w;

	for (int i = 0; i < 2; i++) {
		struct edge_side *s = &c->side[i];

		if (s->ssl)
			SSL_free(s->ssl);
		edge_xprt_rec_free(c, s);
		if (s->fd >= 0)
			close(s->fd);
		OPENSSL_cleanse(s->rx_secret, sizeof(s->rx_secret));
		OPENSSL_cleanse(s->tx_secret, sizeof(s->tx_secret));
	}
	X509_free(c->leaf);
	edge_timer_unfile(&w->timers, &c->timer);
	edge_relay_free(c);
	edge_h2_free(c);
	edge_snapshot_unref(c->snap);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	w->n_conns--;
	w->c.closed++;
	free(c);
}

static void maybe_free(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_CLOSING && c->inflight == 0)
		conn_free(c);
}

/* ---- the machine ---- */

void edge_conn_apply(struct edge_conn *c, struct edge_step st)
{
	while (!edge_stays(st) && c->state != EDGE_CONN_CLOSING) {
		if (st.next == EDGE_CONN_CLOSING) {
			conn_close(c, (enum edge_close_reason)st.close, st.reset);
			return;
		}
		bool handshake_done = c->state == EDGE_CONN_HANDSHAKE &&
				      st.next != EDGE_CONN_HANDSHAKE;

		if (handshake_done)
			handshake_over(c);
		c->state = (enum edge_conn_state)st.next;
		if (handshake_done) /* the certificate's end counts from here */
			edge_conn_arm(c, edge_now_ms(), (int64_t)time(NULL));
		st = states[c->state].enter ? states[c->state].enter(c) : edge_stay();
	}
}

void edge_conn_dispatch(struct edge_conn *c, enum edge_op op, int res)
{
	const struct edge_state_ops *s = &states[c->state];

	c->inflight--;
	if (op == EDGE_OP_KICK) {
		struct edge_step st = c->kick_step;
		bool set = c->kick_set;

		c->kick_queued = false;
		c->kick_set = false;
		if (set && c->state != EDGE_CONN_CLOSING) {
			edge_conn_apply(c, st);
			maybe_free(c);
			return;
		}
		/* Only the relay and h2 know a kick; the others take it as a client poll. */
		if (c->state != EDGE_CONN_RELAY && c->state != EDGE_CONN_H2)
			op = EDGE_OP_POLL_IN;
	}
	/* the op's poll is no longer armed */
	if (op >= EDGE_OP_POLL_IN && op <= EDGE_OP_POLL_IN_UP)
		c->side[op - EDGE_OP_POLL_IN].poll_in = c->side[op - EDGE_OP_POLL_IN].drained =
			false;
	else if (op >= EDGE_OP_POLL_OUT && op <= EDGE_OP_POLL_OUT_UP)
		c->side[op - EDGE_OP_POLL_OUT].poll_out = false;
	if (op != EDGE_OP_AUX && s->on_io)
		edge_conn_apply(c, s->on_io(c, op, res));
	maybe_free(c);
}

void edge_conn_tick(struct edge_conn *c, uint64_t now_ms, int64_t wall, bool drain_over)
{
	const struct edge_state_ops *s = &states[c->state];

	if (c->state == EDGE_CONN_CLOSING) {
		maybe_free(c);
		return;
	}
	if (drain_over) {
		edge_conn_apply(c, edge_close(EDGE_CLOSE_SHUTDOWN));
	} else if (c->deadline_ms && now_ms >= c->deadline_ms) {
		edge_conn_apply(c, s->on_timeout ? s->on_timeout(c) : edge_close(EDGE_CLOSE_OTHER));
	} else if (c->state >= EDGE_CONN_CONNECTING && !c->h2_child && c->verify_ran &&
		   c->vr.not_after && c->vr.not_after < wall) {
		pr_info("expired peer=%s sni=%s serial=%s: closing the live connection", c->peer,
			c->host, c->vr.serial);
		edge_conn_apply(c, edge_abort(EDGE_CLOSE_CERT_EXPIRED));
	} else if (c->state == EDGE_CONN_RELAY) {
		edge_relay_park_look(c, now_ms);
	}
	if (c->state != EDGE_CONN_CLOSING)
		edge_conn_arm(c, now_ms, wall);
	maybe_free(c);
}

/* ---- timers: each connection filed in its worker's wheel for its next look ---- */

/* When c next needs a look: its deadline and, past its handshake, the end of its client
 * certificate's validity (wall-clock seconds, converted at now_ms); 0: never. */
static uint64_t next_look(const struct edge_conn *c, uint64_t now_ms, int64_t wall)
{
	uint64_t at = c->deadline_ms, park = edge_relay_park_at(c);

	if (park && (!at || park < at))
		at = park;
	if (c->state >= EDGE_CONN_CONNECTING && c->state != EDGE_CONN_CLOSING && !c->h2_child &&
	    c->verify_ran && c->vr.not_after) {
		int64_t left = c->vr.not_after + 1 - wall; /* expired once not_after < wall */
		uint64_t end = left <= 0 ? now_ms : now_ms + (uint64_t)left * 1000;

		if (!at || end < at)
			at = end;
	}
	return at;
}

void edge_conn_arm(struct edge_conn *c, uint64_t now_ms, int64_t wall)
{
	edge_conn_file_at(c, next_look(c, now_ms, wall));
}

struct timers_now {
	uint64_t now_ms;
	int64_t wall;
};

static void timer_fire(struct edge_timer *t, void *arg)
{
	const struct timers_now *tn = arg;
	struct edge_conn *c = (struct edge_conn *)((char *)t - offsetof(struct edge_conn, timer));

	edge_conn_tick(c, tn->now_ms, tn->wall, false);
}

void edge_conn_timers(struct edge_worker *w, uint64_t now_ms, int64_t wall)
{
	struct timers_now tn = { now_ms, wall };

	edge_timer_expire(&w->timers, now_ms, timer_fire, &tn);
}

void edge_conn_recheck(struct edge_conn *c, struct edge_snapshot *s)
{
	const struct edge_authz_anchor anchor = { .name = c->vr.anchor,
						  .trust_domain = c->vr.trust_domain };
	struct edge_authz_result ar;
	X509 *leaf;

	/* A child goes with its parent (h2.c). */
	if (c->state == EDGE_CONN_CLOSING || c->state < EDGE_CONN_CONNECTING || !c->verify_ran ||
	    c->vr.reason != EDGE_REASON_OK || c->h2_child)
		return;
	leaf = c->leaf ? c->leaf : SSL_get0_peer_certificate(c->side[EDGE_CLIENT].ssl);
	if (!leaf)
		return;
	if (edge_trust_revokes(edge_snapshot_trust(s, c->host), leaf, c->vr.serial,
			       c->vr.builtin_anchor)) {
		pr_info("revoked peer=%s sni=%s serial=%s: closing the live connection", c->peer,
			c->host, c->vr.serial);
		c->w->c.revoked_closed++;
		edge_conn_apply(c, edge_abort(EDGE_CLOSE_CERT_REVOKED));
	} else if (edge_authz_check(edge_snapshot_authz(s, c->host), leaf, &anchor, &ar) ||
		   ar.decision != EDGE_AUTHZ_ADMIT) { /* out of memory refuses too */
		pr_info("not authorized peer=%s sni=%s serial=%s: %s: closing the live connection",
			c->peer, c->host, c->vr.serial, ar.text);
		c->w->c.unauthorized_closed++;
		edge_conn_apply(c, edge_abort(EDGE_CLOSE_NOT_AUTHORIZED));
	}
	maybe_free(c);
}

void edge_conn_accept(struct edge_worker *w, int fd, const struct sockaddr_storage *ss,
		      int listener)
{
	struct edge_daemon *d = w->d;
	struct edge_conn *c = aligned_alloc(16, sizeof(*c));
	int one = 1;

	if (!c) {
		edge_srclimit_put(&d->srclimit, (const struct sockaddr *)ss);
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->listener = listener;
	for (int i = 0; i < 2; i++) {
		c->side[i].id = (enum edge_side_id)i;
		c->side[i].fd = -1;
		c->dir[i].id = (enum edge_dir_id)i;
		c->dir[i].pipe[0] = c->dir[i].pipe[1] = -1;
	}
	c->side[EDGE_CLIENT].fd = fd;
	c->side[EDGE_CLIENT].ops = &edge_xprt_tls;
	c->next = &w->head;
	c->prev = w->head.prev;
	w->head.prev->next = c;
	w->head.prev = c;
	w->n_conns++;
	c->start_ms = edge_now_ms();
	c->peer_ss = *ss;
	edge_addr_format((const struct sockaddr *)ss, c->peer, sizeof(c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->snap = edge_daemon_snapshot(d);
	atomic_fetch_add(&d->handshakes_inflight, 1);
	c->in_handshake_count = true;
	c->state = EDGE_CONN_HANDSHAKE;
	edge_conn_apply(c, edge_move(EDGE_CONN_HANDSHAKE));
	maybe_free(c);
}
