/*
 * HTTP/2 from clients, terminated (`--protocol http` with h2 negotiated):
 * libnghttp2 reads and writes the client's frames; each stream becomes an
 * HTTP/1.1 request on an upstream connection of its own, taken from the
 * worker's keep-alive pool or connected, as nginx does.
 *
 * A stream is carried by a child connection (conn.c's edge_conn_spawn): an
 * edge_conn whose upstream side is an ordinary one and whose client side is
 * the stream (edge_xprt_h2 below). The child runs the same machine as an
 * HTTP/1.1 client connection: connect or pool, upstream TLS, the request
 * rewriter (the 421 check against the verified SNI, the identity headers of
 * --forward headers, PROXY v2), the response reader, pooling. What it
 * receives from its client side is the request as HTTP/1.1 text built from
 * the stream's headers and DATA; what it sends there is the response as
 * HTTP/1.1, which the stream decodes (httpresp.h's decode mode) into
 * HEADERS, DATA and trailers.
 *
 * The parent (state EDGE_CONN_H2) owns the streams; the children never call
 * its handlers, nor it theirs: either side wakes the other with a kick (an
 * io_uring no-op completion, edge_conn_kick), so that neither runs inside
 * the other. Buffers are bounded per stream: the request body by the flow
 * control window the edge grants as the child takes the bytes, the response
 * by EDGE_H2_BODY_MAX (the child waits when it is full).
 *
 * Limits answered with GOAWAY (counted by reason, mtls_edge_h2_goaway_total):
 * concurrent streams (REFUSED_STREAM beyond), header list size (431 for the
 * stream), rapid reset, CONTINUATION and header floods, SETTINGS/PING and
 * other control frame floods, and whatever nghttp2 finds a protocol error.
 */
#ifndef EDGE_H2_H
#define EDGE_H2_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

#define EDGE_H2_MAX_STREAMS 128              /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define EDGE_H2_HEADER_LIST_MAX (16 * 1024)  /* SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 6.5.2) */
#define EDGE_H2_HEADER_BLOCK_MAX (64 * 1024) /* bytes of one header block on the wire */
#define EDGE_H2_HEADER_FRAMES_MAX 32         /* frames of one (HEADERS + CONTINUATIONs) */
#define EDGE_H2_STREAM_WINDOW 65535          /* a stream's request body in the edge, at most */
#define EDGE_H2_CONN_WINDOW (1024 * 1024)    /* all of a connection's request bodies */
#define EDGE_H2_BODY_MAX (64 * 1024)         /* a stream's response bytes waiting for the client */
#define EDGE_H2_OUT_MAX (64 * 1024)          /* frames waiting for the client: no reading beyond */
#define EDGE_H2_RESET_BURST 200              /* client resets of unanswered streams ... */
#define EDGE_H2_RESET_RATE 20                /* ... then per second */
#define EDGE_H2_CONTROL_BURST 1000           /* PING, SETTINGS, PRIORITY, empty frames ... */
#define EDGE_H2_CONTROL_RATE 100             /* ... then per second */

/* The handshake chose h2 and the SNI object reads HTTP: the edge terminates it. */
bool edge_h2_terminates(const struct edge_conn *c);

/* The parent's state (conn.c's table). */
struct edge_step edge_h2_enter(struct edge_conn *c);
struct edge_step edge_h2_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_h2_timeout(struct edge_conn *c);
/* The parent closes: its children are closed too (and no longer name it). */
void edge_h2_close(struct edge_conn *c);
/* The parent is freed. */
void edge_h2_free(struct edge_conn *c);

/* A child's parent's client socket (identity.c: the address the client reached), or -1. */
int edge_h2_parent_fd(const struct edge_conn *c);
/* A child closes: its stream ends (a 502, or a reset when part of the response went). */
void edge_h2_child_closed(struct edge_conn *c);

/* The child's client side: the stream. */
extern const struct edge_xprt_ops edge_xprt_h2;

#endif
