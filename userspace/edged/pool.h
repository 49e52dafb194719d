/*
 * Idle upstream connections of `--protocol http`, per worker. When a client
 * connection ends between responses, its upstream connection (and TLS
 * session, for a TLS upstream) comes here instead of being closed, and the
 * next client of the same upstream takes it: no connect, no upstream
 * handshake. Bounded by upstream_keepalive entries (a burst may hold more for
 * a moment, below; the least recently used one is closed to make room) and
 * upstream_keepalive_timeout of idleness.
 * A pooled connection has no io_uring operation in flight; one the upstream
 * has closed (or sent anything on) while idle is found out when taken and
 * closed then.
 */
#ifndef EDGE_POOL_H
#define EDGE_POOL_H

/*
 * Bursts: the connections a burst of responses gives back (an HTTP/2 client's hundred streams
 * answered at once) are what the burst of requests after it needs. Up to EDGE_POOL_BURST times
 * upstream_keepalive are kept; past upstream_keepalive, those idle EDGE_POOL_BURST_MS are
 * closed at the next sweep (the worker's tick). Closing them at once cost a connect per
 * stream, and most of the CPU went to the kernel's search for a free port among TIME_WAITs.
 */
#define EDGE_POOL_BURST 16
#define EDGE_POOL_BURST_MS 100

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct edge_worker;
struct edge_sni;

struct edge_pooled {
	int fd;
	SSL *ssl;                     /* the upstream TLS session, or NULL */
	const SSL_CTX *ctx;           /* its SNI object's upstream context (held by ssl) */
	struct sockaddr_storage addr; /* the upstream's address */
	uint64_t since_ms;            /* idle since */
};

struct edge_pool {
	struct edge_pooled *e; /* oldest first */
	unsigned int n, cap;
};

/* An idle connection to o's upstream, alive as far as can be told: its fd
 * (and *ssl, NULL for plain TCP), or -1. */
int edge_pool_take(struct edge_worker *w, const struct edge_sni *o, SSL **ssl);
/* Keeps fd (and ssl) for o's upstream; false when it was closed instead
 * (pooling off). Takes ownership either way. */
bool edge_pool_put(struct edge_worker *w, const struct edge_sni *o, int fd, SSL *ssl);
/* Closes the connections idle longer than upstream_keepalive_timeout. */
void edge_pool_sweep(struct edge_worker *w, uint64_t now_ms);
/* Closes them all (worker exit, drain). */
void edge_pool_free(struct edge_worker *w);

#endif
