/*
 * One worker thread: an io_uring, its SO_REUSEPORT listeners, the
 * connections it owns, its counters, its free buffers and its pool of idle
 * upstream connections. Nothing here is shared with another worker.
 */
#ifndef EDGE_WORKER_H
#define EDGE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <liburing.h>

#include "conn.h"
#include "daemon.h"
#include "pool.h"
#include "ring.h"

struct edge_metrics_worker;

struct EDGE_UD_ALIGNED edge_listener {
	int fd;
	int index;
	struct edge_worker *w;
};

/* a direction's buffer: four TLS records' plaintext, one read from a plain socket */
#define EDGE_RELAY_BUF (64 * 1024)
/* the client's batched TLS records (xprt_tls.c, xprt_rec.c): four whole 16 KiB records */
#define EDGE_OUT_BUF (4 * (16384 + 22) + 64)
/* xprt_rec.c: records read, not yet opened: two of the largest */
#define EDGE_REC_BUF (2 * (5 + 16384 + 256))
#define EDGE_REC_POOL 32     /* per worker: 1 MiB of them kept for reuse at most */
#define EDGE_BUF_POOL_MAX 32 /* the most buffers a free list keeps */
#define EDGE_RELAY_POOL 16   /* per worker: 1 MiB of relay buffers kept for reuse at most */
#define EDGE_OUT_POOL 16     /* per worker: 1 MiB of record batch buffers at most */
_Static_assert(EDGE_REC_POOL <= EDGE_BUF_POOL_MAX && EDGE_OUT_POOL <= EDGE_BUF_POOL_MAX &&
		       EDGE_RELAY_POOL <= EDGE_BUF_POOL_MAX,
	       "a free list's cap fits its array");

/* Empty pipes for spliced directions (splice.c). */
#define EDGE_PIPE_POOL 64
struct edge_pipe_pool {
	int fd[EDGE_PIPE_POOL][2];
	unsigned int n;
};

/* A free list of buffers of one size (buf.c). */
struct edge_buf_pool {
	char *free[EDGE_BUF_POOL_MAX];
	unsigned int n, cap; /* cap <= EDGE_BUF_POOL_MAX */
	uint32_t size;
};

struct EDGE_UD_ALIGNED edge_worker {
	int id;
	pthread_t thread;
	struct io_uring ring;
	struct edge_daemon *d;
	struct edge_listener listeners[EDGE_MAX_LISTEN];
	int n_listeners;
	struct edge_conn head; /* list sentinel */
	unsigned int n_conns;
	struct edge_timer_wheel timers; /* each connection's next look (conn.c) */
	int64_t wall_off; /* wall clock minus the monotonic one at the last tick, ms */
	bool draining;
	uint64_t drain_deadline_ms;
	uint64_t seen_seq;
	atomic_uint_fast64_t applied_seq; /* the last snapshot (its seq) whose revocations and
					     rules it has applied to its connections */
	int wake_fd;                      /* eventfd: written at each reload (daemon.c) */
	uint64_t wake_count;              /* where its io_uring read lands */
	struct __kernel_timespec tick_ts;
	struct edge_counters c;
	struct edge_metrics_worker *m;   /* this worker's labelled counters (metrics.h) */
	struct edge_vcache *vcache;      /* verified chains (verify_cache.h), or NULL */
	struct edge_buf_pool relay_bufs; /* free EDGE_RELAY_BUF buffers */
	struct edge_buf_pool out_bufs;   /* free EDGE_OUT_BUF buffers */
	struct edge_buf_pool rec_bufs;   /* free EDGE_REC_BUF buffers */
	struct edge_pipe_pool pipes;     /* free empty pipes (splice.c) */
	struct edge_pool pool;           /* idle upstream connections (pool.c) */
};

/* worker.c */
int edge_worker_start(struct edge_worker *w);

/* The next SQE of the worker's ring; submits what is queued to make room when it is full.
 * NULL only when that submit failed too: callers give up the operation. */
static inline struct io_uring_sqe *edge_worker_sqe(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* Files c in its worker's wheel for a look at at_ms (0: none) unless it is filed for an
 * earlier one (conn.c's timers). */
static inline void edge_conn_file_at(struct edge_conn *c, uint64_t at_ms)
{
	if (at_ms && (!edge_timer_filed(&c->timer) || at_ms < c->timer.at))
		edge_timer_file(&c->w->timers, &c->timer, at_ms);
}

/* Sets c's deadline (0: none), filed for a look then. A later deadline than the look c is
 * filed for costs nothing now: that look finds nothing due and files c again (the idle
 * timeout moves at every read). */
static inline void edge_conn_deadline(struct edge_conn *c, uint64_t at_ms)
{
	c->deadline_ms = at_ms;
	edge_conn_file_at(c, at_ms);
}

/* A look at c at the next tick (a closing connection nothing else will free). */
static inline void edge_conn_look_soon(struct edge_conn *c)
{
	edge_timer_file(&c->w->timers, &c->timer, 0); /* filed for a past time: the next tick */
}

/* buf.c: the worker's free lists of relay and batch buffers. */
void edge_buf_pools_init(struct edge_worker *w);
void edge_buf_pools_free(struct edge_worker *w);
/* b->p from the pool (kept when b already has one): false on allocation failure. Inline:
 * the relay takes and gives a buffer several times per request. */
static inline bool edge_buf_take(struct edge_buf_pool *pl, struct edge_buf *b)
{
	if (!b->p)
		b->p = pl->n ? pl->free[--pl->n] : malloc(pl->size);
	return b->p != NULL;
}

/* b->p back to the pool (or freed when it is full); b is empty after. */
static inline void edge_buf_give(struct edge_buf_pool *pl, struct edge_buf *b)
{
	if (b->p) {
		if (pl->n < pl->cap)
			pl->free[pl->n++] = b->p;
		else
			free(b->p);
	}
	b->p = NULL;
	b->len = b->off = 0;
}

#endif
