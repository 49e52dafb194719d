/* The admin socket (STATE/mtls-edged.sock): one request line, one JSON line. */
#ifndef EDGE_ADMIN_H
#define EDGE_ADMIN_H

#include "daemon.h"

/* Binds the socket; refuses when another daemon answers on it. */
int edge_admin_open(const char *state_dir, char *err, size_t errlen);
/* Serves one client on the listening fd (called when it is readable). */
void edge_admin_serve(struct edge_daemon *d, int lfd, struct edge_store *st);
void edge_admin_close(int fd, const char *state_dir);
/* Rebuilds the snapshot from the store; keeps the old one on failure. */
int edge_admin_reload(struct edge_daemon *d, struct edge_store *st, const char *why);

/* Checks what expires (server certificates, CAs, CRLs): a warning per item
 * within [tls] expiry_warn_days, and the metrics' gauges. */
void edge_admin_expiry_check(struct edge_daemon *d, struct edge_store *st, const char *why);

/* The HTTP metrics endpoint ([metrics] listen): GET /metrics, 404 otherwise. */
int edge_admin_http_open(struct edge_addr *a, char *err, size_t errlen);
/* Serves one client on the listening fd (called when it is readable). */
void edge_admin_http_serve(struct edge_daemon *d, int lfd);

#endif
