/*
 * The connection state machine with fake sides: two transports that read
 * from and write to memory, so that the relay's pump, the ends of the two
 * directions, the close reasons, the request filter and the local answer
 * are driven by completions the test hands to edge_conn_dispatch(), as the
 * worker's ring would. No socket, no TLS: the sides' fds are -1, so nothing
 * is armed in a ring (side.c arms only real fds).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "filter.h"
#include "forward.h"
#include "log.h"
#include "relay.h"
#include "tap.h"
#include "worker.h"

/* One fake side: what recv hands out, what send received. */
struct fake {
	const char *in; /* bytes recv hands out, then ... */
	size_t in_len, in_off;
	bool in_eof;    /* ... 0 (the end), or AGAIN (want POLLIN) */
	int in_fail;    /* recv fails this way (EDGE_XF_* + 1), 0: never */
	char out[4096]; /* what send got */
	size_t out_len;
	size_t send_max; /* at most this much per send (0: all) */
	bool async;      /* send as an io_uring send would: ASYNC, completion by the test */
	int shutw;       /* times shutw was called */
	int recvs;       /* times recv was called */
	bool kernel;
};

static struct fake fakes[2];

static struct fake *fake_of(const struct edge_side *s)
{
	return &fakes[s->id];
}

static ssize_t fake_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	struct fake *f = fake_of(s);
	size_t n = f->in_len - f->in_off;

	f->recvs++;
	if (f->in_fail)
		return edge_side_failed(s, (enum edge_xprt_fail)(f->in_fail - 1));
	if (n) {
		if (n > len)
			n = len;
		memcpy(buf, f->in + f->in_off, n);
		f->in_off += n;
		return (ssize_t)n;
	}
	if (f->in_eof)
		return 0;
	s->want = POLLIN;
	return EDGE_IO_AGAIN;
}

static ssize_t fake_send(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len)
{
	struct fake *f = fake_of(s);

	if (f->send_max && len > f->send_max)
		len = f->send_max;
	if (f->out_len + len > sizeof(f->out))
		return edge_side_failed(s, EDGE_XF_RESET);
	memcpy(f->out + f->out_len, buf, len);
	f->out_len += len;
	if (f->async) {
		s->sending = true;
		c->inflight++; /* the completion the test will hand back */
		return EDGE_IO_ASYNC;
	}
	return (ssize_t)len;
}

static int fake_shutw(struct edge_conn *c, struct edge_side *s)
{
	fake_of(s)->shutw++;
	return 0;
}

static const struct edge_xprt_ops fake_ops = {
	.name = "fake",
	.recv = fake_recv,
	.send = fake_send,
	.shutw = fake_shutw,
};
static const struct edge_xprt_ops fake_kernel_ops = {
	.name = "fake-kernel",
	.kernel = true,
	.recv = fake_recv,
	.send = fake_send,
	.shutw = fake_shutw,
};

static struct edge_daemon daemon_;
static struct edge_worker *w;

static void worker_setup(void)
{
	w = aligned_alloc(16, sizeof(*w));
	memset(w, 0, sizeof(*w));
	edge_config_defaults(&daemon_.cfg);
	w->d = &daemon_;
	w->head.next = w->head.prev = &w->head;
	edge_timer_wheel_init(&w->timers, 100, 0);
	edge_buf_pools_init(w);
}

/* A connection past its handshakes, in RELAY over the two fake sides. */
static struct edge_conn *relay_conn(void)
{
	struct edge_conn *c = aligned_alloc(16, sizeof(*c));

	memset(c, 0, sizeof(*c));
	memset(fakes, 0, sizeof(fakes));
	c->w = w;
	for (int i = 0; i < 2; i++) {
		c->side[i].id = (enum edge_side_id)i;
		c->side[i].fd = -1;
		c->side[i].ops = &fake_ops;
		c->dir[i].pipe[0] = c->dir[i].pipe[1] = -1;
	}
	snprintf(c->host, sizeof(c->host), "api.example.test");
	snprintf(c->peer, sizeof(c->peer), "192.0.2.1:40000");
	c->next = &w->head;
	c->prev = w->head.prev;
	w->head.prev->next = c;
	w->head.prev = c;
	w->n_conns++;
	c->state = EDGE_CONN_RELAY;
	return c;
}

/* A completion that names c, as the worker hands it over. */
static void complete(struct edge_conn *c, enum edge_op op, int res)
{
	c->inflight++;
	edge_conn_dispatch(c, op, res);
}

static uint64_t closed_by(enum edge_close_reason r)
{
	return w->c.closed_by[r];
}

static void test_table(void)
{
	const char *seen[EDGE_CONN_NSTATES];

	for (int s = 0; s < EDGE_CONN_NSTATES; s++) {
		bool dup = false;

		seen[s] = edge_conn_state_name((enum edge_conn_state)s);
		for (int t = 0; t < s; t++)
			dup |= !strcmp(seen[s], seen[t]);
		ok(strcmp(seen[s], "?") && !dup, "state %d has a name of its own: %s", s, seen[s]);
	}
	ok(!strcmp(edge_conn_state_name(EDGE_CONN_NSTATES), "?"), "no state past the table");
	ok(!strcmp(seen[EDGE_CONN_HANDSHAKE], "handshake") &&
		   !strcmp(seen[EDGE_CONN_CONNECTING], "connecting") &&
		   !strcmp(seen[EDGE_CONN_UP_HANDSHAKE], "up_handshake") &&
		   !strcmp(seen[EDGE_CONN_RELAY], "relay") &&
		   !strcmp(seen[EDGE_CONN_REPLY], "reply") &&
		   !strcmp(seen[EDGE_CONN_LINGER], "linger") &&
		   !strcmp(seen[EDGE_CONN_DRAIN], "drain") &&
		   !strcmp(seen[EDGE_CONN_CLOSING], "closing"),
	   "the table's rows are in the states' order");
	ok(edge_stays(edge_stay()) && !edge_stays(edge_move(EDGE_CONN_RELAY)) &&
		   !edge_stays(edge_close(EDGE_CLOSE_DONE)),
	   "a step stays, moves or closes");
	ok(edge_abort(EDGE_CLOSE_CERT_REVOKED).reset && !edge_close(EDGE_CLOSE_DONE).reset,
	   "an abort resets, a close does not");
	for (int r = EDGE_CLOSE_DONE; r < EDGE_CLOSE_NREASONS; r++)
		ok(strcmp(edge_close_reason_name((enum edge_close_reason)r), "other") ||
			   r == EDGE_CLOSE_OTHER,
		   "close reason %d has a name: %s", r,
		   edge_close_reason_name((enum edge_close_reason)r));
	is_int(edge_close_reason_of(EDGE_CLIENT, EDGE_XF_RESET), EDGE_CLOSE_CLIENT_RESET,
	       "a reset on the client side: client_reset");
	is_int(edge_close_reason_of(EDGE_UPSTREAM, EDGE_XF_ALERT), EDGE_CLOSE_UPSTREAM_ALERT,
	       "an alert from the upstream: upstream_alert");
	ok(!strcmp(edge_hs_fail_name(EDGE_HS_VERIFY, EDGE_REASON_UNKNOWN_CA), "unknown_ca") &&
		   !strcmp(edge_hs_fail_name(EDGE_HS_TIMEOUT, EDGE_REASON_OK), "handshake_timeout"),
	   "a handshake failure is named by the verifier's reason or its own");
}

static void test_modes(void)
{
	struct edge_conn *c = relay_conn();

	c->side[EDGE_CLIENT].ops = &fake_kernel_ops;
	c->side[EDGE_UPSTREAM].ops = &fake_kernel_ops;
	c->dir[EDGE_C2U].id = EDGE_C2U;
	c->dir[EDGE_U2C].id = EDGE_U2C;
	is_int(edge_relay_mode(c, &c->dir[EDGE_C2U]), EDGE_FLOW_SPLICE,
	       "both sides in the kernel, no filter: the direction splices");
	c->dir[EDGE_C2U].filter = &edge_filter_request;
	is_int(edge_relay_mode(c, &c->dir[EDGE_C2U]), EDGE_FLOW_PUMP,
	       "a filter reads it: the direction pumps");
	is_int(edge_relay_mode(c, &c->dir[EDGE_U2C]), EDGE_FLOW_SPLICE,
	       "... while the other direction still splices");
	c->side[EDGE_UPSTREAM].ops = &fake_ops;
	is_int(edge_relay_mode(c, &c->dir[EDGE_U2C]), EDGE_FLOW_PUMP,
	       "a side in userspace: the direction pumps");
	edge_conn_apply(c, edge_close(EDGE_CLOSE_SHUTDOWN));
	edge_conn_tick(c, 0, 0, false); /* frees it */
}

static void test_relay(void)
{
	struct edge_conn *c = relay_conn();
	unsigned int conns = w->n_conns;

	fakes[EDGE_CLIENT].in = "GET / HTTP/1.0\r\n\r\n";
	fakes[EDGE_CLIENT].in_len = 18;
	fakes[EDGE_UPSTREAM].in = "HTTP/1.0 200 OK\r\n\r\nhello";
	fakes[EDGE_UPSTREAM].in_len = 24;
	fakes[EDGE_UPSTREAM].send_max = 5; /* partial writes */
	is_int(edge_relay_setup(c), EDGE_CLOSE_NONE, "the directions are set up");
	is_int(c->dir[EDGE_C2U].mode, EDGE_FLOW_PUMP, "userspace sides pump");
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	is_int(fakes[EDGE_UPSTREAM].out_len, 18,
	       "the request reached the upstream, in 5-byte writes");
	ok(!memcmp(fakes[EDGE_UPSTREAM].out, "GET / HTTP/1.0\r\n\r\n", 18), "unaltered");
	is_int(fakes[EDGE_CLIENT].out_len, 24, "the response reached the client");
	is_int(c->bytes_in, 18, "bytes_in counts what the client sent");
	is_int(c->bytes_out, 24, "bytes_out what it got");
	is_int(c->state, EDGE_CONN_RELAY, "both sides quiet: still relaying");
	ok(c->dir[EDGE_C2U].in.p == NULL && c->dir[EDGE_U2C].in.p == NULL,
	   "quiet directions hold no buffer");

	fakes[EDGE_CLIENT].in_eof = true;
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	is_int(fakes[EDGE_UPSTREAM].shutw, 1, "the client's end is a half-close upstream");
	is_int(fakes[EDGE_CLIENT].shutw, 0, "the client's side stays open");
	ok(c->dir[EDGE_C2U].done && !c->dir[EDGE_U2C].done, "one direction done");
	is_int(c->state, EDGE_CONN_RELAY, "the response direction goes on");
	fakes[EDGE_UPSTREAM].in_eof = true;
	complete(c, EDGE_OP_POLL_IN_UP, POLLIN);
	is_int(fakes[EDGE_CLIENT].shutw, 1, "the upstream's end reaches the client");
	is_int(closed_by(EDGE_CLOSE_DONE), 1, "both ends passed on: closed as done");
	is_int(w->n_conns, conns - 1, "and freed");
}

/* A poll's completion runs the directions that wait on it, not both. */
static void test_wakeups(void)
{
	struct edge_conn *c = relay_conn();

	edge_relay_setup(c);
	complete(c, EDGE_OP_POLL_IN, POLLIN); /* armed before the relay: both directions run */
	ok(fakes[EDGE_CLIENT].recvs == 1 && fakes[EDGE_UPSTREAM].recvs == 1,
	   "a poll no direction waits on runs both");
	ok(c->dir[EDGE_C2U].waits == EDGE_WAIT_BIT(EDGE_CLIENT, POLLIN) &&
		   c->dir[EDGE_U2C].waits == EDGE_WAIT_BIT(EDGE_UPSTREAM, POLLIN),
	   "each direction waits on its source");
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	ok(fakes[EDGE_CLIENT].recvs == 2 && fakes[EDGE_UPSTREAM].recvs == 1,
	   "the client's POLLIN runs the request direction only");
	complete(c, EDGE_OP_POLL_IN_UP, POLLIN);
	ok(fakes[EDGE_CLIENT].recvs == 2 && fakes[EDGE_UPSTREAM].recvs == 2,
	   "the upstream's POLLIN runs the response direction only");
	edge_conn_apply(c, edge_close(EDGE_CLOSE_SHUTDOWN));
	edge_conn_tick(c, 0, 0, false);
}

/* EDGE_OP_KICK (h2's wake-ups): a step set for it is applied; without one the relay runs both
 * directions, whatever their client-side waits; in a state that has no use for it, it is a
 * client poll; in closing, nothing. */
static void test_kick(void)
{
	struct edge_conn *c = relay_conn();

	edge_relay_setup(c);
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	ok(c->dir[EDGE_C2U].waits == EDGE_WAIT_BIT(EDGE_CLIENT, POLLIN),
	   "the request waits on the client");
	c->kick_queued = true;
	complete(c, EDGE_OP_KICK, 0);
	ok(fakes[EDGE_CLIENT].recvs == 2 && fakes[EDGE_UPSTREAM].recvs == 2 && !c->kick_queued,
	   "a kick runs both directions, and another may be queued");
	ok(c->dir[EDGE_C2U].waits == EDGE_WAIT_BIT(EDGE_CLIENT, POLLIN),
	   "each direction waits again on what it waits for");
	c->kick_set = true;
	c->kick_step = edge_abort(EDGE_CLOSE_H2_STREAM_RESET);
	c->inflight++; /* another operation in flight: c outlives its close */
	complete(c, EDGE_OP_KICK, 0);
	ok(c->state == EDGE_CONN_CLOSING && c->close == EDGE_CLOSE_H2_STREAM_RESET && !c->kick_set,
	   "a kick with a step applies it (a child killed from its own completion)");
	c->kick_set = true;
	c->kick_step = edge_move(EDGE_CONN_RELAY);
	c->inflight++;
	edge_conn_dispatch(c, EDGE_OP_KICK, 0);
	ok(c->state == EDGE_CONN_CLOSING, "in closing a kick's step is not applied");
	edge_conn_dispatch(c, EDGE_OP_AUX, 0); /* the last one: freed */
}

static void test_async_send(void)
{
	struct edge_conn *c = relay_conn();

	fakes[EDGE_CLIENT].in = "abcdefgh";
	fakes[EDGE_CLIENT].in_len = 8;
	fakes[EDGE_UPSTREAM].async = true;
	fakes[EDGE_UPSTREAM].send_max = 3;
	edge_relay_setup(c);
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	ok(c->side[EDGE_UPSTREAM].sending, "a send is in flight");
	is_int(fakes[EDGE_UPSTREAM].out_len, 3, "nothing more is sent while it is");
	c->inflight--; /* fake_send counted the completion; complete() counts it again */
	complete(c, EDGE_OP_SEND_UP, 3);
	is_int(fakes[EDGE_UPSTREAM].out_len, 6, "its completion sends the next part");
	c->inflight--;
	complete(c, EDGE_OP_SEND_UP, 3);
	c->inflight--;
	complete(c, EDGE_OP_SEND_UP, 2);
	is_int(fakes[EDGE_UPSTREAM].out_len, 8, "all of it, in order");
	ok(!memcmp(fakes[EDGE_UPSTREAM].out, "abcdefgh", 8), "unaltered");
	ok(!c->side[EDGE_UPSTREAM].sending, "nothing in flight once it is all out");
	fakes[EDGE_CLIENT].in = "ij";
	fakes[EDGE_CLIENT].in_len = 2;
	fakes[EDGE_CLIENT].in_off = 0;
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	ok(c->side[EDGE_UPSTREAM].sending, "more from the client: a send in flight");
	c->inflight--;
	complete(c, EDGE_OP_SEND_UP, -EPIPE);
	is_int(closed_by(EDGE_CLOSE_UPSTREAM_ERROR), 1, "a failed send closes: upstream_error");
}

static void test_failures(void)
{
	struct edge_conn *c = relay_conn();

	fakes[EDGE_CLIENT].in_fail = EDGE_XF_RESET + 1;
	edge_relay_setup(c);
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	is_int(closed_by(EDGE_CLOSE_CLIENT_RESET), 1, "a client reset: client_reset");

	c = relay_conn();
	fakes[EDGE_UPSTREAM].in_fail = EDGE_XF_TLS + 1;
	edge_relay_setup(c);
	complete(c, EDGE_OP_POLL_IN_UP, POLLIN);
	is_int(closed_by(EDGE_CLOSE_UPSTREAM_TLS_ERROR), 1,
	       "a TLS error upstream: upstream_tls_error");

	c = relay_conn();
	edge_relay_setup(c);
	c->deadline_ms = 10;
	edge_conn_tick(c, 5, 0, false);
	is_int(c->state, EDGE_CONN_RELAY, "before its deadline a connection stays");
	edge_conn_tick(c, 11, 0, false);
	is_int(closed_by(EDGE_CLOSE_IDLE_TIMEOUT), 1, "at its deadline: idle_timeout");
	is_int(w->c.idle_timeouts, 1, "counted");

	c = relay_conn();
	edge_relay_setup(c);
	edge_conn_tick(c, 0, 0, true);
	is_int(closed_by(EDGE_CLOSE_SHUTDOWN), 3, "the drain's end: shutdown");
}

/* headers mode: a request whose Host is not the SNI is refused with 421, once
 * the upstream has answered what came before it. */
static void test_refusal(void);

/* The worker's wheel: a tick looks only at what is due, deadlines pushed later cost a look
 * that files them again, a certificate's end is filed from the handshake's end. */
static void test_timers(void)
{
	struct edge_conn *c = relay_conn(), *d = relay_conn();
	unsigned int n = w->n_conns;
	uint64_t t0 = 1000000;

	edge_timer_wheel_init(&w->timers, 100, t0);
	edge_relay_setup(c);
	edge_relay_setup(d);
	edge_conn_deadline(c, t0 + 500);
	edge_conn_deadline(d, t0 + 5000);
	ok(edge_timer_filed(&c->timer) && c->timer.at == t0 + 500, "a deadline files it");
	edge_conn_deadline(c, t0 + 800); /* the idle timeout's push at a read */
	is_int(c->timer.at, t0 + 500, "a later deadline leaves the earlier look filed");
	edge_conn_timers(w, t0 + 499, 0);
	ok(c->state == EDGE_CONN_RELAY && d->state == EDGE_CONN_RELAY, "nothing due: nothing");
	edge_conn_timers(w, t0 + 520, 0);
	ok(c->state == EDGE_CONN_RELAY && edge_timer_filed(&c->timer) && c->timer.at == t0 + 800,
	   "the earlier look finds nothing due and files it for the deadline now");
	edge_conn_timers(w, t0 + 810, 0);
	is_int(closed_by(EDGE_CLOSE_IDLE_TIMEOUT), 2, "at that deadline it closes: idle_timeout");
	is_int(w->n_conns, n - 1, "and is freed");
	ok(d->state == EDGE_CONN_RELAY && edge_timer_filed(&d->timer),
	   "the other, due later, was not touched");

	/* a certificate that ends 3 s from now (wall clock 5000) */
	d->verify_ran = true;
	d->vr.not_after = 5003;
	edge_conn_arm(d, t0 + 810, 5000);
	is_int(d->timer.at, t0 + 810 + 4000, "its certificate's end files it (expired once past)");
	edge_conn_timers(w, t0 + 4700, 5003);
	is_int(d->state, EDGE_CONN_RELAY, "still valid in its last second");
	edge_conn_timers(w, t0 + 4810, 5004);
	is_int(closed_by(EDGE_CLOSE_CERT_EXPIRED), 1, "past it: cert_expired");
	is_int(w->n_conns, n - 2, "freed");
	is_int(w->timers.filed, 0, "the wheel holds nothing of either");
}

static void test_refusal(void)
{
	struct edge_conn *c = relay_conn();
	static const char req[] = "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
				  "GET / HTTP/1.1\r\nHost: other.example.test\r\n\r\n";

	fakes[EDGE_CLIENT].in = req;
	fakes[EDGE_CLIENT].in_len = sizeof(req) - 1;
	ok(!edge_filter_request_start(c, NULL, 0), "the request filter");
	edge_relay_setup(c);
	ok(c->dir[EDGE_C2U].filter == &edge_filter_request && !c->dir[EDGE_U2C].filter,
	   "it reads the request direction only");
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	ok(fakes[EDGE_UPSTREAM].out_len > 0 &&
		   strstr(fakes[EDGE_UPSTREAM].out, "api.example.test") &&
		   !strstr(fakes[EDGE_UPSTREAM].out, "other.example.test"),
	   "the good request went upstream, the refused one did not");
	is_int(fakes[EDGE_UPSTREAM].shutw, 1, "the upstream's request stream ends after it");
	is_int(w->c.http_refused_421, 1, "counted as a 421");
	is_int(c->state, EDGE_CONN_RELAY, "the answer waits for the response before it");
	fakes[EDGE_UPSTREAM].in = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	fakes[EDGE_UPSTREAM].in_len = strlen(fakes[EDGE_UPSTREAM].in);
	fakes[EDGE_UPSTREAM].in_eof = true;
	complete(c, EDGE_OP_POLL_IN_UP, POLLIN);
	is_int(c->state, EDGE_CONN_LINGER, "the answer written, the connection lingers");
	ok(strstr(fakes[EDGE_CLIENT].out, "200 OK") &&
		   strstr(fakes[EDGE_CLIENT].out, "421 Misdirected Request") &&
		   strstr(fakes[EDGE_CLIENT].out, "200 OK") < strstr(fakes[EDGE_CLIENT].out, "421"),
	   "the client got the response, then the 421");
	is_int(fakes[EDGE_CLIENT].shutw, 1, "and the end of what we send");
	fakes[EDGE_CLIENT].in_eof = true;
	complete(c, EDGE_OP_POLL_IN, POLLIN);
	is_int(closed_by(EDGE_CLOSE_HTTP_REFUSED), 1, "the client's end: closed as http_refused");
}

/* The block rule's page, then the linger, bounded by its deadline. */
static void test_reply(void)
{
	struct edge_conn *c = relay_conn();

	c->state = EDGE_CONN_HANDSHAKE;
	c->reply = "HTTP/1.1 403 Forbidden\r\n\r\n";
	c->reply_len = (uint32_t)strlen(c->reply);
	c->reply_close = EDGE_CLOSE_BLOCKED;
	fakes[EDGE_CLIENT].in = "GET /unread HTTP/1.1\r\n\r\n";
	fakes[EDGE_CLIENT].in_len = strlen(fakes[EDGE_CLIENT].in);
	fakes[EDGE_CLIENT].send_max = 7;
	edge_conn_apply(c, edge_move(EDGE_CONN_REPLY));
	is_int(fakes[EDGE_CLIENT].out_len, c->reply_len, "the page is written whole");
	is_int(fakes[EDGE_CLIENT].shutw, 1, "then the end of what we send");
	is_int(c->state, EDGE_CONN_LINGER, "then the linger: what the client sent is read away");
	is_int(fakes[EDGE_CLIENT].in_off, fakes[EDGE_CLIENT].in_len, "all of it");
	ok(c->deadline_ms > 0, "with a deadline");
	edge_conn_tick(c, c->deadline_ms, 0, false);
	is_int(closed_by(EDGE_CLOSE_BLOCKED), 1, "at the deadline: closed as blocked");
}

int main(void)
{
	edge_log_set_level(EDGE_LOG_ERR);
	worker_setup();
	test_table();
	test_modes();
	test_relay();
	test_wakeups();
	test_kick();
	test_async_send();
	test_failures();
	test_refusal();
	test_reply();
	test_timers();
	is_int(w->n_conns, 0, "every connection was freed");
	edge_buf_pools_free(w);
	free(w);
	return tap_done();
}
