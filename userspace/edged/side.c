/*
 * The io_uring operations of a connection's sides: the polls a transport
 * waits on, the sends of xprt_tcp and xprt_ktls, and the cancels at close.
 * Each one counts in c->inflight until its completion comes back (conn.c).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "log.h"
#include "worker.h"

static struct io_uring_sqe *sqe_for(struct edge_conn *c)
{
	struct io_uring_sqe *sqe = edge_worker_sqe(c->w);

	if (!sqe)
		pr_warn("worker %d: io_uring submission queue full, an operation of peer=%s is lost",
			c->w->id, c->peer);
	return sqe;
}

void edge_side_arm(struct edge_conn *c, struct edge_side *s, short events)
{
	bool *armed = events == POLLIN ? &s->poll_in : &s->poll_out;
	struct io_uring_sqe *sqe;
	enum edge_op op;

	if (*armed || c->state == EDGE_CONN_CLOSING || s->fd < 0 || !(sqe = sqe_for(c)))
		return;
	op = (events == POLLIN ? EDGE_OP_POLL_IN : EDGE_OP_POLL_OUT) + s->id;
	io_uring_prep_poll_add(sqe, s->fd, (unsigned int)events);
	io_uring_sqe_set_data64(sqe, edge_ud(c, op));
	*armed = true;
	c->inflight++;
}

void edge_side_wait(struct edge_conn *c, struct edge_side *s)
{
	edge_side_arm(c, s, s->want ? s->want : POLLIN);
}

void edge_dir_wait(struct edge_conn *c, struct edge_dir *d, struct edge_side *s, short events)
{
	d->waits |= EDGE_WAIT_BIT(s->id, events);
	edge_side_arm(c, s, events);
}

static void unarm(struct edge_conn *c, bool armed, enum edge_op op)
{
	struct io_uring_sqe *sqe;

	if (!armed || !(sqe = sqe_for(c)))
		return;
	io_uring_prep_poll_remove(sqe, edge_ud(c, op));
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_AUX));
	c->inflight++;
}

void edge_side_unarm(struct edge_conn *c, struct edge_side *s)
{
	unarm(c, s->poll_in, EDGE_OP_POLL_IN + s->id);
	unarm(c, s->poll_out, EDGE_OP_POLL_OUT + s->id);
}

ssize_t edge_side_send_async(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe = sqe_for(c);

	if (!sqe)
		return edge_side_failed(s, EDGE_XF_ERROR);
	io_uring_prep_send(sqe, s->fd, buf, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_SEND + s->id));
	s->sending = true;
	c->inflight++;
	return EDGE_IO_ASYNC;
}

void edge_side_cancel_fd(struct edge_conn *c, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd < 0 || !(sqe = sqe_for(c)))
		return;
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_AUX));
	c->inflight++;
}

void edge_conn_kick(struct edge_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->kick_queued || c->state == EDGE_CONN_CLOSING || !(sqe = sqe_for(c)))
		return;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, edge_ud(c, EDGE_OP_KICK));
	c->kick_queued = true;
	c->inflight++;
}
