/*
 * The daemon's side of eBPF enforcement: load the tc program on the right
 * interfaces per [bpf] mode, and tag a connection's flow and (source,
 * hostname) once its block rule's action is done.
 */
#ifndef EDGE_ENFORCE_H
#define EDGE_ENFORCE_H

#include <stddef.h>

struct edge_daemon;
struct edge_conn;

/* 0, also when mode = auto and eBPF is unavailable (warned once, status says
 * why); negative when mode = on and it cannot load (err says why). */
int edge_enforce_open(struct edge_daemon *d, char *err, size_t errlen);
/* Tags the connection's 5-tuple and its (source, hostname) with the offender TTL. */
void edge_enforce_tag(struct edge_conn *c);
void edge_enforce_close(struct edge_daemon *d);

#endif
