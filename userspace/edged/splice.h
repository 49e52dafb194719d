/*
 * A spliced direction: both of its sides are kernel sockets (kTLS or plain
 * TCP) and no filter reads it, so bytes go socket -> pipe -> socket with
 * IORING_OP_SPLICE and never enter userspace. Each splice is non-blocking;
 * when a side is not ready, a poll on it re-arms the direction.
 */
#ifndef EDGE_SPLICE_H
#define EDGE_SPLICE_H

#include "conn.h"

/* A direction holds a pipe only while it splices: taken from the worker's free list (or made)
 * at a splice in, given back empty when the source has nothing more to read (an idle
 * connection holds none). At the connection's end its pipe is closed. */
void edge_splice_close(struct edge_worker *w, struct edge_dir *d);
/* The worker's free pipes closed (at its end). */
void edge_splice_pool_free(struct edge_worker *w);
/* The next splice of the direction (or nothing while one is in flight or it waits):
 * stays, or the step its end brings (end: the relay's end of a direction). */
struct edge_step edge_splice_pump(struct edge_conn *c, struct edge_dir *d,
				  struct edge_step (*end)(struct edge_conn *, struct edge_dir *));
/* A splice of the direction completed (op: EDGE_OP_SPLICE_IN or EDGE_OP_SPLICE_OUT). */
struct edge_step edge_splice_done(struct edge_conn *c, struct edge_dir *d, enum edge_op op,
				  int res);

#endif
