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

/* The block rule's answer: c->reply and how the connection closes after it. */
void edge_reply_forbidden(struct edge_conn *c);

struct edge_step edge_reply_enter(struct edge_conn *c);
struct edge_step edge_reply_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_linger_enter(struct edge_conn *c);
struct edge_step edge_linger_on_io(struct edge_conn *c, enum edge_op op, int res);
/* Either state's deadline: close with the reason the answer gave. */
struct edge_step edge_reply_timeout(struct edge_conn *c);

#endif
