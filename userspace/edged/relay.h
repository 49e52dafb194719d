/*
 * The RELAY state: bytes both ways between the two sides. Each direction
 * either pumps (recv from its source into a buffer, through its filter if
 * it has one, send to its destination) or splices (splice.c): a direction
 * splices when both of its sides are kernel sockets (kTLS or plain TCP) and
 * no filter reads it. The end of a direction passes on as a half-close
 * (close_notify, FIN); the connection is done when both ends have passed.
 */
#ifndef EDGE_RELAY_H
#define EDGE_RELAY_H

#include "conn.h"

/* The handlers of the RELAY state (conn.c's table). */
struct edge_step edge_relay_enter(struct edge_conn *c);
struct edge_step edge_relay_on_io(struct edge_conn *c, enum edge_op op, int res);
struct edge_step edge_relay_timeout(struct edge_conn *c);
/* Sets up both directions for the sides' transports and the filters: their
 * mode (a spliced one takes its pipe when it first reads). 0, or the reason to close. */
enum edge_close_reason edge_relay_setup(struct edge_conn *c);
/* The rule: splice when both sides are kernel sockets and no filter reads it. */
enum edge_flow_mode edge_relay_mode(const struct edge_conn *c, const struct edge_dir *d);
/* Runs both directions as an event would: the next step. */
struct edge_step edge_relay_run(struct edge_conn *c);
/* At close: the buffers, pipes and filters the relay holds. */
void edge_relay_free(struct edge_conn *c);

/* --protocol http: a client idle between requests this long (one tick of the worker's timer:
 * looked at 100-200 ms after its last I/O) gives its upstream connection back to the
 * worker's pool (pool.c); its next request takes one from there, or connects. nginx gives it
 * back at once after each response; a short wait spares a client that sends its requests back
 * to back the round trip through the pool. */
#define EDGE_PARK_MS 100
/* When the relay's next park look is due (0: none). */
uint64_t edge_relay_park_at(const struct edge_conn *c);
/* The look (the worker's tick, due by edge_relay_park_at): parks it when it is idle between
 * messages both ways, else waits for its next I/O before looking again. */
void edge_relay_park_look(struct edge_conn *c, uint64_t now_ms);

#endif
