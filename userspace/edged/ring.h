/*
 * io_uring user_data: a pointer (16-byte aligned) with the operation in the
 * low four bits. The worker's completion loop (worker.c) reads the operation
 * first: ACCEPT and TICK name the worker's own objects, every other one a
 * connection (conn.c). Operations of one side or one direction of a
 * connection come in pairs: OP + side (enum edge_side_id) or OP + direction.
 */
#ifndef EDGE_RING_H
#define EDGE_RING_H

#include <assert.h>
#include <stdint.h>

/* Every object named in io_uring user_data is 16-byte aligned. */
#define EDGE_UD_ALIGNED __attribute__((aligned(16)))

enum edge_op {
	EDGE_OP_ACCEPT = 0, /* struct edge_listener */
	EDGE_OP_TICK,       /* struct edge_worker */
	EDGE_OP_POLL_IN,    /* + side: a poll on that side's socket */
	EDGE_OP_POLL_IN_UP,
	EDGE_OP_POLL_OUT, /* + side */
	EDGE_OP_POLL_OUT_UP,
	EDGE_OP_SEND, /* + side: an io_uring send (xprt_tcp, xprt_ktls) */
	EDGE_OP_SEND_UP,
	EDGE_OP_SPLICE_IN, /* + direction: source socket -> the direction's pipe */
	EDGE_OP_SPLICE_IN_U2C,
	EDGE_OP_SPLICE_OUT, /* + direction: the pipe -> destination socket */
	EDGE_OP_SPLICE_OUT_U2C,
	EDGE_OP_CONNECT, /* the upstream connect */
	EDGE_OP_AUX,     /* link timeouts, cancels: only settle the count */
	EDGE_OP_WAKE,    /* struct edge_worker: its eventfd was written (a new snapshot) */
	EDGE_OP_KICK,    /* struct edge_conn: a no-op, to run it from its own completion */
	EDGE_OP_MASK = 15,
};

static inline uint64_t edge_ud(void *p, enum edge_op op)
{
	assert(((uintptr_t)p & EDGE_OP_MASK) == 0);
	return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

static inline enum edge_op edge_ud_op(uint64_t ud)
{
	return (enum edge_op)(ud & EDGE_OP_MASK);
}

static inline void *edge_ud_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~(uint64_t)EDGE_OP_MASK);
}

#endif
