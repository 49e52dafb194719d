/*
 * One worker: an io_uring, its SO_REUSEPORT listeners, its connections. The
 * completion loop reads the operation of each completion: accepts and the
 * timer are the worker's own, everything else goes to the connection it
 * names (conn.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "splice.h"
#include "verify_cache.h"
#include "worker.h"

#define EDGE_RING_ENTRIES 1024
#define EDGE_TICK_MS 100

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

/* The wake-up of a reload: a read on the worker's eventfd. */
static void arm_wake(struct edge_worker *w)
{
	struct io_uring_sqe *sqe;

	if (w->wake_fd < 0 || !(sqe = edge_worker_sqe(w)))
		return;
	io_uring_prep_read(sqe, w->wake_fd, &w->wake_count, sizeof(w->wake_count), 0);
	io_uring_sqe_set_data64(sqe, edge_ud(w, EDGE_OP_WAKE));
}

static void handle_accept(struct edge_worker *w, const struct edge_listener *l, int fd)
{
	struct edge_daemon *d = w->d;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

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
	edge_conn_accept(w, fd, &ss, l->index);
}

/* A new snapshot: close the connections whose client certificate it revokes
 * (a built-in revocation, or a new CRL of an uploaded CA). */
static void apply_generation(struct edge_worker *w)
{
	struct edge_snapshot *s = edge_daemon_snapshot(w->d);

	if (s->seq != w->seen_seq) {
		w->seen_seq = s->seq;
		for (struct edge_conn *c = w->head.next, *n; c != &w->head; c = n) {
			n = c->next;
			edge_conn_recheck(c, s);
		}
	}
	atomic_store(&w->applied_seq, w->seen_seq);
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
	/* HTTP/2 connections say GOAWAY now (h2.c), so that their clients open no new stream. */
	for (struct edge_conn *c = w->head.next; c != &w->head; c = c->next)
		if (c->h2s)
			edge_conn_kick(c);
}

static void tick(struct edge_worker *w)
{
	uint64_t now = edge_now_ms();
	time_t wall = time(NULL);
	int64_t off;

	if (atomic_load(&w->d->stopping) && !w->draining)
		start_drain(w);
	apply_generation(w);
	edge_pool_sweep(w, now);
	if (w->draining && now >= w->drain_deadline_ms) {
		for (struct edge_conn *c = w->head.next, *n; c != &w->head; c = n) {
			n = c->next;
			edge_conn_tick(c, now, (int64_t)wall, true);
		}
		return;
	}
	/* The wall clock was set: each certificate's end is filed again by the new time (an
	 * end filed too early finds nothing due and is filed again). time() counts whole
	 * seconds, so the offset wanders by up to one between ticks. */
	off = (int64_t)wall * 1000 - (int64_t)now;
	if (w->wall_off && llabs(off - w->wall_off) > 2000)
		for (struct edge_conn *c = w->head.next; c != &w->head; c = c->next)
			if (c->state != EDGE_CONN_CLOSING)
				edge_conn_arm(c, now, (int64_t)wall);
	w->wall_off = off;
	/* Only the connections due for a look: a walk of them all, every tick, was a stall of
	 * milliseconds with thousands held (the tail latency of the rest). */
	edge_conn_timers(w, now, (int64_t)wall);
}

static void *worker_main(void *arg)
{
	struct edge_worker *w = arg;
	int accepting = w->n_listeners;

	for (int i = 0; i < w->n_listeners; i++)
		arm_accept(&w->listeners[i]);
	arm_tick(w);
	arm_wake(w);
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
			enum edge_op op = edge_ud_op(cqe->user_data);
			void *p = edge_ud_ptr(cqe->user_data);

			seen++;
			if (!p)
				continue;
			if (op == EDGE_OP_ACCEPT) {
				struct edge_listener *l = p;

				if (cqe->res >= 0)
					handle_accept(w, l, cqe->res);
				else if (cqe->res != -ECANCELED)
					pr_warn("accept on %s: %s", w->d->listen_text[l->index],
						strerror(-cqe->res));
				if (!(cqe->flags & IORING_CQE_F_MORE)) {
					if (w->draining)
						accepting--;
					else
						arm_accept(l);
				}
			} else if (op == EDGE_OP_WAKE) {
				apply_generation(w); /* before the reload's answer (daemon.c) */
				if (cqe->res > 0 || cqe->res == -EINTR || cqe->res == -EAGAIN)
					arm_wake(w);
			} else if (op == EDGE_OP_TICK) {
				tick(w);
				if (!(w->draining && w->n_conns == 0))
					arm_tick(w);
			} else {
				edge_conn_dispatch(p, op, cqe->res);
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
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	edge_pool_free(w);
	edge_buf_pools_free(w);
	edge_splice_pool_free(w);
	edge_vcache_free(w->vcache);
	w->vcache = NULL;
	return NULL;
}

int edge_worker_start(struct edge_worker *w)
{
	struct io_uring_params p = { 0 };
	int rc;

	w->head.next = w->head.prev = &w->head;
	edge_timer_wheel_init(&w->timers, EDGE_TICK_MS, edge_now_ms());
	edge_buf_pools_init(w);
	atomic_store(&w->applied_seq, w->seen_seq);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		pr_warn("worker %d: eventfd: %s: reloads apply at its next tick (100 ms)", w->id,
			strerror(errno));
	w->m = edge_metrics_worker(w->d->metrics, (size_t)w->id);
	/* without it every chain is verified in full: slower, never wrong */
	if (w->d->cfg.verify_cache && !(w->vcache = edge_vcache_new()))
		pr_warn("worker %d: no memory for the verified-chain cache", w->id);
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
