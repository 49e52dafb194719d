/* One worker: an io_uring, its SO_REUSEPORT listeners, its connections. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemon.h"
#include "forward.h"
#include "enforce.h"
#include "log.h"

#define EDGE_RING_ENTRIES 1024
#define EDGE_TICK_MS 100

struct io_uring_sqe *edge_worker_sqe(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe; /* never NULL after a submit with a ring this size */
}

static void arm_accept(struct edge_listener *l)
{
	struct io_uring_sqe *sqe = edge_worker_sqe(l->w);

	io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, edge_ud(l, EDGE_OP_ACCEPT));
}

static void arm_tick(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = edge_worker_sqe(w);

	w->tick_ts.tv_sec = 0;
	w->tick_ts.tv_nsec = EDGE_TICK_MS * 1000000L;
	io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, edge_ud(w, EDGE_OP_TICK));
}

void edge_conn_arm_poll(struct edge_conn *c, unsigned int events)
{
	bool *armed = events == POLLIN ? &c->poll_in : &c->poll_out;
	struct io_uring_sqe *sqe;

	if (*armed || c->closing)
		return;
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_poll_add(sqe, c->cfd, events);
	io_uring_sqe_set_data64(sqe, edge_ud(c, events == POLLIN ? EDGE_OP_POLL_IN
								: EDGE_OP_POLL_OUT));
	*armed = true;
	c->inflight++;
}

void edge_conn_arm_upoll(struct edge_conn *c, unsigned int events)
{
	bool *armed = events == POLLIN ? &c->up_poll_in : &c->up_poll_out;
	struct io_uring_sqe *sqe;

	if (*armed || c->closing)
		return;
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_poll_add(sqe, c->ufd, events);
	io_uring_sqe_set_data64(sqe, edge_ud(c, events == POLLIN ? EDGE_OP_UP_POLL_IN
								: EDGE_OP_UP_POLL_OUT));
	*armed = true;
	c->inflight++;
}

static void conn_free(struct edge_conn *c)
{
	struct edge_worker *w = c->w;

	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ussl)
		SSL_free(c->ussl);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	edge_relay_free(c);
	edge_splice_free(c);
	OPENSSL_cleanse(c->rx_secret, sizeof(c->rx_secret));
	OPENSSL_cleanse(c->up_rx_secret, sizeof(c->up_rx_secret));
	edge_snapshot_unref(c->snap);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	w->n_conns--;
	w->c.closed++;
	free(c);
}

static void cancel_fd(struct edge_conn *c, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;
	sqe = edge_worker_sqe(c->w);
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_CONN_AUX));
	c->inflight++;
}

static const char *const close_reasons[] = {
	"done", "shutdown", "idle_timeout", "blocked", "cert_revoked", "cert_expired",
	"upstream_connect_failed", "upstream_tls_failed", "upstream_tls_timeout",
	"upstream_tls_error", "upstream_error", "upstream_reset", "upstream_alert",
	"client_tls_error", "client_error", "client_reset", "client_alert", "bad_record",
	"renegotiation", "key_update", "http_refused", "ktls_install_failed", "out_of_memory",
	"internal_error", "other",
};

_Static_assert(sizeof(close_reasons) / sizeof(close_reasons[0]) == EDGE_CLOSE_REASON_COUNT,
	       "one name per EDGE_CLOSE_REASON_COUNT slot");

const char *edge_close_reason_name(int i)
{
	return i >= 0 && i < EDGE_CLOSE_REASON_COUNT ? close_reasons[i] : "other";
}

int edge_close_reason_index(const char *reason)
{
	if (!reason)
		return 0;
	for (int i = 0; i < EDGE_CLOSE_REASON_COUNT - 1; i++)
		if (!strcmp(reason, close_reasons[i]))
			return i;
	return EDGE_CLOSE_REASON_COUNT - 1;
}

static void log_close(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_HANDSHAKE)
		return; /* the handshake line already said how it ended */
	/* The HTTP refusals of headers mode (forward.c's reasons) count as one. */
	c->w->c.closed_by[edge_close_reason_index(c->rw && c->rw->status &&
						  c->close_reason == c->rw->reason
							  ? "http_refused"
							  : c->close_reason)]++;
	edge_log_event(EDGE_LOG_INFO, "close", (const struct edge_log_field[]){
		EDGE_LF_S("peer", c->peer),
		EDGE_LF_S("sni", c->host),
		EDGE_LF_N("bytes_in", c->bytes_in),
		EDGE_LF_N("bytes_out", c->bytes_out),
		EDGE_LF_N("duration_ms", edge_now_ms() - c->start_ms),
		EDGE_LF_S("path", c->ktls ? "ktls" : "userspace"),
		EDGE_LF_S("reason", c->close_reason ? c->close_reason : "done"),
		EDGE_LF_S("verdict", edge_verdict_name(c->verdict)),
	}, 8);
}

void edge_conn_handshake_over(struct edge_conn *c)
{
	if (!c->in_handshake_count)
		return;
	atomic_fetch_sub(&c->w->d->handshakes_inflight, 1);
	edge_srclimit_put(&c->w->d->srclimit, (struct sockaddr *)&c->peer_ss);
	c->in_handshake_count = false;
}

void edge_conn_close(struct edge_conn *c, const char *reason)
{
	struct edge_worker *w = c->w;

	if (c->closing)
		return;
	if (!c->close_reason)
		c->close_reason = reason;
	log_close(c);
	if (c->bpf_tag)
		edge_enforce_tag(c); /* after the rule's action: the client's last packets pass */
	c->closing = true;
	c->state = EDGE_CONN_CLOSING;
	edge_conn_handshake_over(c);
	w->c.bytes_in += c->bytes_in;
	w->c.bytes_out += c->bytes_out;
	if (c->inflight) {
		cancel_fd(c, c->cfd);
		cancel_fd(c, c->ufd);
		for (int i = 0; i < 2; i++)
			for (int j = 0; j < 2; j++)
				cancel_fd(c, c->pipes[i][j]);
	}
}

void edge_conn_abort(struct edge_conn *c, const char *reason)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* A reset: what is queued for the client is discarded, not delivered. */
	setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	edge_conn_close(c, reason);
}

static void maybe_free(struct edge_conn *c)
{
	if (c->closing && c->inflight == 0)
		conn_free(c);
}

static void handle_accept(struct edge_worker *w, int fd)
{
	struct edge_daemon *d = w->d;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct edge_conn *c;
	int one = 1;

	w->c.accepted++;
	if (w->draining) {
		close(fd);
		return;
	}
	if ((unsigned int)atomic_load(&d->handshakes_inflight) >= d->cfg.max_handshakes) {
		w->c.handshake_cap_refused++;
		pr_debug("refused connection: %u handshakes in flight (max_handshakes)",
			 d->cfg.max_handshakes);
		close(fd);
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd); /* already gone */
		return;
	}
	if (edge_srclimit_take(&d->srclimit, (struct sockaddr *)&ss)) {
		w->c.handshake_source_refused++;
		pr_debug("refused connection: source at max_handshakes_per_source (%u)",
			 d->cfg.max_handshakes_per_source);
		close(fd);
		return;
	}
	c = aligned_alloc(16, sizeof(*c));
	if (c)
		memset(c, 0, sizeof(*c));
	if (!c) {
		edge_srclimit_put(&d->srclimit, (struct sockaddr *)&ss);
		close(fd);
		return;
	}
	c->w = w;
	c->cfd = fd;
	c->ufd = -1;
	c->pipes[0][0] = c->pipes[0][1] = c->pipes[1][0] = c->pipes[1][1] = -1;
	c->next = &w->head;
	c->prev = w->head.prev;
	w->head.prev->next = c;
	w->head.prev = c;
	w->n_conns++;
	c->start_ms = edge_now_ms();
	c->peer_ss = ss;
	edge_addr_format((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->snap = edge_daemon_snapshot(d);
	atomic_fetch_add(&d->handshakes_inflight, 1);
	c->in_handshake_count = true;
	c->deadline_ms = c->start_ms + d->cfg.handshake_timeout_ms;
	if (edge_handshake_start(c))
		edge_conn_close(c, "internal_error");
	maybe_free(c);
}

/* A new snapshot: close the connections whose client certificate it revokes
 * (a built-in revocation, or a new CRL of an uploaded CA). */
static void apply_generation(struct edge_worker *w)
{
	struct edge_snapshot *s = edge_daemon_snapshot(w->d);

	if (s->generation != w->seen_generation) {
		w->seen_generation = s->generation;
		for (struct edge_conn *c = w->head.next, *n; c != &w->head; c = n) {
			X509 *leaf;

			n = c->next;
			if (c->closing || c->state < EDGE_CONN_CONNECTING || !c->verify_ran ||
			    c->vr.reason != EDGE_REASON_OK)
				continue;
			leaf = SSL_get0_peer_certificate(c->ssl);
			if (leaf && edge_trust_revokes(edge_snapshot_trust(s, c->host), leaf,
						       c->vr.serial, c->vr.builtin_anchor)) {
				pr_info("revoked peer=%s sni=%s serial=%s: closing the live connection",
					c->peer, c->host, c->vr.serial);
				w->c.revoked_closed++;
				edge_conn_abort(c, "cert_revoked");
				maybe_free(c);
			}
		}
	}
	edge_snapshot_unref(s);
}

static void start_drain(struct edge_worker *w)
{
	w->draining = true;
	w->drain_deadline_ms = edge_now_ms() + w->d->cfg.drain_timeout_ms;
	for (int i = 0; i < w->n_listeners; i++) {
		struct io_uring_sqe *sqe = edge_worker_sqe(w);

		io_uring_prep_cancel64(sqe, edge_ud(&w->listeners[i], EDGE_OP_ACCEPT), 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
}

static void tick(struct edge_worker *w)
{
	uint64_t now = edge_now_ms();
	time_t wall = time(NULL);

	if (atomic_load(&w->d->stopping) && !w->draining)
		start_drain(w);
	apply_generation(w);
	edge_pool_sweep(w, now);
	for (struct edge_conn *c = w->head.next, *n; c != &w->head; c = n) {
		n = c->next;
		if (c->closing)
			continue;
		if (w->draining && now >= w->drain_deadline_ms) {
			edge_conn_close(c, "shutdown");
		} else if (c->deadline_ms && now >= c->deadline_ms) {
			if (c->state == EDGE_CONN_HANDSHAKE) {
				c->fail_reason = "handshake_timeout";
				w->c.handshake_timeouts++;
				edge_handshake_reason_counters(c);
				edge_conn_close(c, "handshake_timeout");
			} else if (c->state == EDGE_CONN_UP_HANDSHAKE) {
				w->c.upstream_tls_failed++;
				pr_warn("upstream tls failed sni=%s upstream=%s peer=%s"
					" error=\"handshake timed out\"", c->host,
					c->sni->upstream_text, c->peer);
				edge_conn_close(c, "upstream_tls_timeout");
			} else if (c->state == EDGE_CONN_LINGER || c->state == EDGE_CONN_REPLY) {
				edge_conn_close(c, c->close_reason);
			} else {
				w->c.idle_timeouts++;
				edge_conn_close(c, "idle_timeout");
			}
		} else if (c->state >= EDGE_CONN_CONNECTING && c->verify_ran && c->vr.not_after &&
			   c->vr.not_after < wall) {
			pr_info("expired peer=%s sni=%s serial=%s: closing the live connection",
				c->peer, c->host, c->vr.serial);
			edge_conn_abort(c, "cert_expired");
		}
		maybe_free(c);
	}
}

static void dispatch_conn(struct edge_conn *c, enum edge_op op, int res)
{
	c->inflight--;
	if (c->closing)
		goto out;
	switch (op) {
	case EDGE_OP_POLL_IN:
	case EDGE_OP_POLL_OUT:
		if (op == EDGE_OP_POLL_IN)
			c->poll_in = false;
		else
			c->poll_out = false;
		if (c->state == EDGE_CONN_HANDSHAKE)
			edge_handshake_step(c);
		else if (c->ktls)
			edge_splice_on_poll(c, op);
		else
			edge_relay_on_poll(c);
		break;
	case EDGE_OP_UP_POLL_IN:
	case EDGE_OP_UP_POLL_OUT:
		if (op == EDGE_OP_UP_POLL_IN)
			c->up_poll_in = false;
		else
			c->up_poll_out = false;
		if (c->ktls)
			edge_splice_on_poll(c, op);
		else
			edge_relay_on_upoll(c);
		break;
	case EDGE_OP_SPL_C2P:
	case EDGE_OP_SPL_P2U:
	case EDGE_OP_SPL_U2P:
	case EDGE_OP_SPL_P2C:
		edge_splice_on_op(c, op, res);
		break;
	case EDGE_OP_UP_CONNECT:
		edge_relay_on_connect(c, res);
		break;
	case EDGE_OP_UP_SEND:
		edge_relay_on_send(c, res);
		break;
	default:
		break;
	}
out:
	maybe_free(c);
}

static void *worker_main(void *arg)
{
	struct edge_worker *w = arg;
	int accepting = w->n_listeners;

	for (int i = 0; i < w->n_listeners; i++)
		arm_accept(&w->listeners[i]);
	arm_tick(w);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		int rc;

		rc = io_uring_submit_and_wait(&w->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			pr_err("worker %d: io_uring: %s", w->id, strerror(-rc));
			break;
		}
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t ud = cqe->user_data;
			enum edge_op op = (enum edge_op)(ud & EDGE_OP_MASK);
			void *p = (void *)(uintptr_t)(ud & ~(uint64_t)EDGE_OP_MASK);

			seen++;
			if (!p)
				continue;
			if (op == EDGE_OP_ACCEPT) {
				struct edge_listener *l = p;

				if (cqe->res >= 0)
					handle_accept(w, cqe->res);
				else if (cqe->res != -ECANCELED)
					pr_warn("accept on %s: %s", w->d->listen_text[l->index],
						strerror(-cqe->res));
				if (!(cqe->flags & IORING_CQE_F_MORE)) {
					if (w->draining)
						accepting--;
					else
						arm_accept(l);
				}
			} else if (op == EDGE_OP_TICK) {
				tick(w);
				if (!(w->draining && w->n_conns == 0))
					arm_tick(w);
			} else {
				dispatch_conn(p, op, cqe->res);
			}
		}
		io_uring_cq_advance(&w->ring, seen);
		if (w->draining && w->n_conns == 0 && accepting <= 0)
			break;
		if (w->draining && w->n_conns == 0 && edge_now_ms() >= w->drain_deadline_ms)
			break;
	}
	for (int i = 0; i < w->n_listeners; i++)
		close(w->listeners[i].fd);
	io_uring_queue_exit(&w->ring);
	edge_relay_pool_free(w);
	edge_pool_free(w);
	return NULL;
}

int edge_worker_start(struct edge_worker *w)
{
	struct io_uring_params p = { 0 };
	int rc;

	w->head.next = w->head.prev = &w->head;
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	rc = io_uring_queue_init_params(EDGE_RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(EDGE_RING_ENTRIES, &w->ring, &p);
	}
	if (rc) {
		pr_err("worker %d: cannot set up io_uring: %s", w->id, strerror(-rc));
		return rc;
	}
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc) {
		io_uring_queue_exit(&w->ring);
		return -rc;
	}
	return 0;
}
