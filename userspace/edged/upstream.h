/*
 * The upstream side: the connect (or an idle connection from the pool),
 * the PROXY v2 header, the TLS handshake to the upstream. The handlers of
 * the CONNECTING and UP_HANDSHAKE states (conn.c's table).
 */
#ifndef EDGE_UPSTREAM_H
#define EDGE_UPSTREAM_H

#include "conn.h"

/* A pooled upstream connection for c (--protocol http): its fd and TLS session on the upstream
 * side, counted as reused; false when the pool has none for its upstream. */
bool edge_upstream_reuse(struct edge_conn *c);
struct edge_step edge_upstream_connect(struct edge_conn *c);
struct edge_step edge_upstream_on_connect(struct edge_conn *c, enum edge_op op, int res);
/* A connect that io_uring answered EINPROGRESS (then waited on with a poll) timed out. */
struct edge_step edge_upstream_connect_timeout(struct edge_conn *c);
struct edge_step edge_upstream_hs_enter(struct edge_conn *c);
struct edge_step edge_upstream_hs_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_upstream_hs_timeout(struct edge_conn *c);

#endif
