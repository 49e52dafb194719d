/*
 * A side of plain TCP: the upstream without TLS. Reads are recv() after a
 * poll says there is something; writes are io_uring sends, so that the
 * bytes of many connections leave in one submit.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "worker.h"

static ssize_t tcp_recv(struct edge_conn *c, struct edge_side *s, void *buf, size_t len)
{
	if (s->drained) {
		s->want = POLLIN;
		return EDGE_IO_AGAIN;
	}
	for (;;) {
		ssize_t r = recv(s->fd, buf, len, MSG_DONTWAIT);

		if (r > 0 && (size_t)r < len)
			s->drained = true;
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->want = POLLIN;
			return EDGE_IO_AGAIN;
		}
		pr_debug("%s recv peer=%s sni=%s: %s",
			 s->id == EDGE_UPSTREAM ? "upstream" : "client", c->peer, c->host,
			 strerror(errno));
		return edge_side_failed(s, errno == ECONNRESET ? EDGE_XF_RESET : EDGE_XF_ERROR);
	}
}

static int tcp_shutw(struct edge_conn *c, struct edge_side *s)
{
	shutdown(s->fd, SHUT_WR);
	return 0;
}

const struct edge_xprt_ops edge_xprt_tcp = {
	.name = "tcp",
	.kernel = true,
	.recv = tcp_recv,
	.send = edge_side_send_async,
	.shutw = tcp_shutw,
};
