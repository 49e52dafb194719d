/*
 * What the parts of the userspace relay share: relay.c (the pumps, the
 * upstream connect and handshake, the local replies), relay_out.c (the
 * client's batched writes) and relay_http.c (--protocol http and its
 * upstream keep-alive pool). Not for the rest of the daemon: see daemon.h.
 */
#ifndef EDGE_RELAY_INT_H
#define EDGE_RELAY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

#define EDGE_RELAY_BUF (16 * 1024)
#define EDGE_OUT_BUF (64 * 1024)

/* relay.c */
void edge_relay_c2u_pump(struct edge_conn *c);
void edge_relay_u2c_pump(struct edge_conn *c);
/* Reads from the upstream into u2c: 1 with bytes, 0 at its end (eof set),
 * -1 when the pump must return (waiting, or closed on an error). */
int edge_relay_up_read(struct edge_conn *c);
/* The upstream side ended: a refusal's answer, or close_notify and FIN. */
void edge_relay_u2c_end(struct edge_conn *c);
/* An OpenSSL result that moved nothing: the poll it wants armed (true), or false. */
bool edge_relay_ssl_wait(struct edge_conn *c, SSL *ssl, int n);
void edge_relay_tls_error(struct edge_conn *c, bool upstream, const char *op);
/* The client is done sending: a half-close upstream. */
void edge_relay_upstream_eof(struct edge_conn *c);
void edge_relay_check_done(struct edge_conn *c);

/* relay_out.c */
/* A direction's buffer back to a free list (pool, *n of cap), or freed. */
void edge_relay_dir_release(char **pool, unsigned int *n, unsigned int cap, struct edge_dir *d);
void edge_relay_out_install(struct edge_conn *c);
void edge_relay_out_release(struct edge_worker *w, struct edge_dir *o);
/* Sends what is batched: true when nothing is left; false when the rest waits
 * for POLLOUT (armed) or the connection was closed on a send error. */
bool edge_relay_client_flush(struct edge_conn *c);

/* relay_http.c */
bool edge_relay_http_pooling(const struct edge_conn *c);
int edge_relay_http_start(struct edge_conn *c);
void edge_relay_http_client_done(struct edge_conn *c);
void edge_relay_u2c_pump_http(struct edge_conn *c);

#endif
