/*
 * Local answers: the block rule's 403 page, or the answer to a refused
 * request, written to the client (REPLY), then reading and discarding
 * until the client closes (LINGER), so that its unread request does not
 * turn our close into a reset that eats the answer. Both bounded by
 * EDGE_LINGER_MS. The handlers of both states (conn.c's table).
 */
#ifndef EDGE_REPLY_H
#define EDGE_REPLY_H

#include "conn.h"

#define EDGE_LINGER_MS 2000
#define EDGE_DRAIN_MS 1000         /* after a refused handshake */
#define EDGE_DRAIN_MAX (64 * 1024) /* bytes read and discarded at most */

/* The block rule's answer: c->reply and how the connection closes after it. */
void edge_reply_forbidden(struct edge_conn *c);

struct edge_step edge_reply_enter(struct edge_conn *c);
struct edge_step edge_reply_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_linger_enter(struct edge_conn *c);
struct edge_step edge_linger_on_io(struct edge_conn *c, enum edge_op op, int res);
/* DRAIN: the handshake's alert is out; the write side is shut and what the client
 * still sends is read raw (it is no TLS we would decrypt) and dropped, until its end,
 * EDGE_DRAIN_MAX bytes or EDGE_DRAIN_MS: a close with unread bytes would be a reset
 * that the client sees before the alert (a TLS 1.2 client's last flight). */
struct edge_step edge_drain_enter(struct edge_conn *c);
struct edge_step edge_drain_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_drain_timeout(struct edge_conn *c);
/* Either state's deadline: close with the reason the answer gave. */
struct edge_step edge_reply_timeout(struct edge_conn *c);

#endif
