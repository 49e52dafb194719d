/* A spliced direction: see splice.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "splice.h"
#include "worker.h"

#define EDGE_SPLICE_CHUNK (64 * 1024)

/* The direction's pipe, from the worker's free list or a new one: 0, or -errno. */
static int pipe_take(struct edge_worker *w, struct edge_dir *d)
{
	struct edge_pipe_pool *pl = &w->pipes;

	if (d->pipe[0] >= 0)
		return 0;
	if (pl->n) {
		pl->n--;
		d->pipe[0] = pl->fd[pl->n][0];
		d->pipe[1] = pl->fd[pl->n][1];
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC)) {
		d->pipe[0] = d->pipe[1] = -1;
		return -errno;
	}
	return 0;
}

/* An idle direction's pipe back to the free list: only from a splice in's completion that
 * found nothing to read with nothing piped (every completion of the direction is in, so its
 * count of piped bytes is exact: the pipe is empty). */
static void pipe_give(struct edge_worker *w, struct edge_dir *d)
{
	struct edge_pipe_pool *pl = &w->pipes;

	if (d->piped || d->busy || pl->n == EDGE_PIPE_POOL)
		return; /* kept: the direction reuses it */
	pl->fd[pl->n][0] = d->pipe[0];
	pl->fd[pl->n][1] = d->pipe[1];
	pl->n++;
	d->pipe[0] = d->pipe[1] = -1;
}

/* At the connection's end: closed, never pooled (a cancelled splice may have left bytes). */
void edge_splice_close(struct edge_worker *w, struct edge_dir *d)
{
	(void)w;
	for (int i = 0; i < 2; i++) {
		if (d->pipe[i] >= 0)
			close(d->pipe[i]);
		d->pipe[i] = -1;
	}
}

void edge_splice_pool_free(struct edge_worker *w)
{
	struct edge_pipe_pool *pl = &w->pipes;

	while (pl->n) {
		pl->n--;
		close(pl->fd[pl->n][0]);
		close(pl->fd[pl->n][1]);
	}
}

static struct edge_step submit(struct edge_conn *c, struct edge_dir *d, enum edge_op op, int in,
			       int out, unsigned int len)
{
	struct io_uring_sqe *sqe = edge_worker_sqe(c->w);

	if (!sqe)
		return edge_close(EDGE_CLOSE_INTERNAL_ERROR);
	io_uring_prep_splice(sqe, in, -1, out, -1, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	io_uring_sqe_set_data64(sqe, edge_ud(c, op + d->id));
	c->inflight++;
	d->busy = true;
	return edge_stay();
}

struct edge_step edge_splice_pump(struct edge_conn *c, struct edge_dir *d,
				  struct edge_step (*end)(struct edge_conn *, struct edge_dir *))
{
	struct edge_side *src = &c->side[edge_dir_src(d)], *dst = &c->side[edge_dir_dst(d)];

	if (d->busy || d->waits)
		return edge_stay();
	if (d->piped)
		return submit(c, d, EDGE_OP_SPLICE_OUT, d->pipe[0], dst->fd, d->piped);
	if (!d->eof) {
		int rc = pipe_take(c->w, d);

		if (rc) {
			pr_warn("splice peer=%s sni=%s: pipe: %s", c->peer, c->host, strerror(-rc));
			return edge_close(EDGE_CLOSE_OUT_OF_MEMORY);
		}
		return submit(c, d, EDGE_OP_SPLICE_IN, src->fd, d->pipe[1], EDGE_SPLICE_CHUNK);
	}
	return d->done ? edge_stay() : end(c, d);
}

/* A side is not ready: wait for its poll. */
static struct edge_step wait_for(struct edge_conn *c, struct edge_dir *d, struct edge_side *s,
				 short ev)
{
	edge_dir_wait(c, d, s, ev);
	return edge_stay();
}

static struct edge_step failed(struct edge_conn *c, struct edge_side *s, int res)
{
	pr_debug("splice %s peer=%s sni=%s: %s", s->id == EDGE_CLIENT ? "client" : "upstream",
		 c->peer, c->host, strerror(-res));
	return edge_close(edge_close_reason_of(s->id, res == -ECONNRESET || res == -EPIPE
							      ? EDGE_XF_RESET
							      : EDGE_XF_ERROR));
}

struct edge_step edge_splice_done(struct edge_conn *c, struct edge_dir *d, enum edge_op op, int res)
{
	struct edge_side *src = &c->side[edge_dir_src(d)], *dst = &c->side[edge_dir_dst(d)];
	bool in = op == EDGE_OP_SPLICE_IN;

	d->busy = false;
	if (res == -EAGAIN && in && d->pipe[0] >= 0)
		pipe_give(c->w, d); /* idle: its empty pipe goes back to the free list */
	if (res == -EAGAIN)
		return wait_for(c, d, in ? src : dst, in ? POLLIN : POLLOUT);
	if (res < 0 && in && src->ops->control && (res == -EINVAL || res == -EBADMSG)) {
		/* A record that is not application data: the transport reads it. */
		int r = src->ops->control(c, src);

		if (r == EDGE_IO_AGAIN)
			return wait_for(c, d, src, POLLIN);
		if (r == EDGE_IO_FAIL)
			return edge_close(edge_close_reason_of(src->id, src->fail));
		if (r == 0)
			d->eof = true; /* close_notify */
		return edge_stay();
	}
	if (res < 0)
		return failed(c, in ? src : dst, res);
	if (in) {
		if (res == 0)
			d->eof = true; /* FIN */
		d->piped += (uint32_t)res;
		if (src->id == EDGE_CLIENT)
			c->bytes_in += (uint64_t)res;
	} else {
		d->piped -= (uint32_t)res;
		if (dst->id == EDGE_CLIENT)
			c->bytes_out += (uint64_t)res;
	}
	return edge_stay();
}
