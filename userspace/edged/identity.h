/*
 * What the edge tells the upstream about the client (--forward): the PROXY
 * v2 header on the fresh upstream connection, or the identity lines the
 * request rewriter adds (headers mode; forward.c builds both).
 */
#ifndef EDGE_IDENTITY_H
#define EDGE_IDENTITY_H

#include <stddef.h>

struct edge_conn;

/* proxy-v2: the header, written first on the fresh upstream connection. */
int edge_identity_send_proxy_v2(struct edge_conn *c);
/* headers: this session's lines for the rewriter (*out is malloc'ed). */
int edge_identity_headers(struct edge_conn *c, char **out, size_t *len);

#endif
