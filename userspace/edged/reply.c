/* Local answers and linger: see reply.h. */
#include <errno.h>
#include <sys/socket.h>

#include "reply.h"
#include "worker.h"

#define FORBIDDEN_BODY "403 Forbidden: a valid client certificate is required\n"
static const char forbidden_page[] =
	"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
	"Content-Length: 54\r\nConnection: close\r\n\r\n" FORBIDDEN_BODY;
_Static_assert(sizeof(FORBIDDEN_BODY) - 1 == 54, "Content-Length is the body's length");

void edge_reply_forbidden(struct edge_conn *c)
{
	c->reply = forbidden_page;
	c->reply_len = sizeof(forbidden_page) - 1;
	c->reply_close = EDGE_CLOSE_BLOCKED;
	c->reply_detail = NULL;
}

static struct edge_step closed(struct edge_conn *c)
{
	return edge_close(c->reply_close);
}

static struct edge_step reply_pump(struct edge_conn *c)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];
	int r;

	if (s->sending)
		return edge_stay();
	while (c->reply_off < c->reply_len) {
		ssize_t n = s->ops->send(c, s, c->reply + c->reply_off,
					 c->reply_len - c->reply_off);

		if (n > 0) {
			c->reply_off += (uint32_t)n;
			continue;
		}
		if (n == EDGE_IO_ASYNC)
			return edge_stay();
		if (n == EDGE_IO_AGAIN) {
			edge_side_wait(c, s);
			return edge_stay();
		}
		return closed(c);
	}
	r = s->ops->shutw(c, s); /* again on a POLLOUT re-entry: sends nothing twice */
	if (r == EDGE_IO_AGAIN) {
		edge_side_wait(c, s);
		return edge_stay();
	}
	if (r == EDGE_IO_FAIL)
		return closed(c);
	return edge_move(EDGE_CONN_LINGER);
}

struct edge_step edge_reply_enter(struct edge_conn *c)
{
	c->reply_off = 0;
	c->close_detail = c->reply_detail;
	edge_conn_deadline(c, edge_now_ms() + EDGE_LINGER_MS);
	return reply_pump(c);
}

struct edge_step edge_reply_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];

	if (op == EDGE_OP_SEND) {
		s->sending = false;
		if (res <= 0)
			return closed(c);
		c->reply_off += (uint32_t)res;
	} else if (op != EDGE_OP_POLL_IN && op != EDGE_OP_POLL_OUT) {
		return edge_stay(); /* the upstream's, if any: nothing to do with it now */
	}
	return reply_pump(c);
}

static struct edge_step linger_pump(struct edge_conn *c)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];
	char sink[4096];

	for (;;) {
		ssize_t n = s->ops->recv(c, s, sink, sizeof(sink));

		if (n > 0)
			continue;
		if (n == EDGE_IO_AGAIN) {
			edge_side_wait(c, s);
			return edge_stay();
		}
		return closed(c); /* the client's end, or an error */
	}
}

struct edge_step edge_linger_enter(struct edge_conn *c)
{
	edge_conn_deadline(c, edge_now_ms() + EDGE_LINGER_MS);
	return linger_pump(c);
}

struct edge_step edge_linger_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	if (op != EDGE_OP_POLL_IN && op != EDGE_OP_POLL_OUT)
		return edge_stay();
	return linger_pump(c);
}

struct edge_step edge_reply_timeout(struct edge_conn *c)
{
	return closed(c);
}

static struct edge_step drain_pump(struct edge_conn *c)
{
	struct edge_side *s = &c->side[EDGE_CLIENT];
	char sink[4096];

	for (;;) {
		ssize_t n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n > 0) {
			c->reply_off += (uint32_t)n;
			if (c->reply_off >= EDGE_DRAIN_MAX)
				return edge_close(EDGE_CLOSE_HANDSHAKE);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			edge_side_arm(c, s, POLLIN);
			return edge_stay();
		}
		return edge_close(EDGE_CLOSE_HANDSHAKE); /* the client's end, or an error */
	}
}

struct edge_step edge_drain_enter(struct edge_conn *c)
{
	c->reply_off = 0;
	edge_conn_deadline(c, edge_now_ms() + EDGE_DRAIN_MS);
	shutdown(c->side[EDGE_CLIENT].fd, SHUT_WR); /* after the alert OpenSSL wrote */
	return drain_pump(c);
}

struct edge_step edge_drain_on_io(struct edge_conn *c, enum edge_op op, int res)
{
	if (op != EDGE_OP_POLL_IN)
		return edge_stay();
	return drain_pump(c);
}

struct edge_step edge_drain_timeout(struct edge_conn *c)
{
	return edge_close(EDGE_CLOSE_HANDSHAKE);
}
