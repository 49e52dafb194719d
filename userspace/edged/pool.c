/*
 * The per-worker pool of idle upstream connections; see pool.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "pool.h"
#include "snapshot.h"
#include "worker.h"

static bool same_addr(const struct edge_pooled *p, const struct edge_addr *a)
{
	return !memcmp(&p->addr, &a->ss, a->len);
}

static void pooled_close(struct edge_worker *w, struct edge_pooled *p)
{
	if (p->ssl) {
		ERR_clear_error();
		SSL_shutdown(p->ssl); /* close_notify, best effort: the socket is non-blocking */
		ERR_clear_error();
		SSL_free(p->ssl);
	}
	close(p->fd);
	w->c.upstream_pool_closed++;
}

static void drop_at(struct edge_pool *pl, unsigned int i)
{
	memmove(&pl->e[i], &pl->e[i + 1], (pl->n - i - 1) * sizeof(pl->e[0]));
	pl->n--;
}

/* Idle means nothing to read and not closed: a byte, an EOF or an error
 * seen while idle makes the connection useless for the next request. */
static bool still_idle(const struct edge_pooled *p)
{
	char b;
	ssize_t n;

	if (p->ssl && SSL_has_pending(p->ssl))
		return false;
	n = recv(p->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int edge_pool_take(struct edge_worker *w, const struct edge_sni *o, SSL **ssl)
{
	struct edge_pool *pl = &w->pool;
	uint64_t now = edge_now_ms();

	/* The most recently used first: the warmest, the furthest from expiring. */
	for (unsigned int i = pl->n; i-- > 0;) {
		struct edge_pooled p = pl->e[i];

		if (p.ctx != o->up_ctx || !same_addr(&p, &o->upstream))
			continue;
		drop_at(pl, i);
		if (now - p.since_ms > w->d->cfg.upstream_keepalive_timeout_ms || !still_idle(&p)) {
			pooled_close(w, &p);
			continue;
		}
		*ssl = p.ssl;
		return p.fd;
	}
	*ssl = NULL;
	return -1;
}

bool edge_pool_put(struct edge_worker *w, const struct edge_sni *o, int fd, SSL *ssl)
{
	struct edge_pool *pl = &w->pool;
	unsigned int max = w->d->cfg.upstream_keepalive;
	struct edge_pooled p = { .fd = fd, .ssl = ssl, .ctx = o->up_ctx, .since_ms = edge_now_ms() };

	if (!max || w->draining) {
		pooled_close(w, &p);
		return false;
	}
	if (pl->n == max * EDGE_POOL_BURST) {
		pooled_close(w, &pl->e[0]); /* the least recently used makes room */
		drop_at(pl, 0);
	}
	if (pl->n == pl->cap) {
		unsigned int cap = pl->cap ? pl->cap * 2 : 8;
		struct edge_pooled *e;

		if (cap > max * EDGE_POOL_BURST)
			cap = max * EDGE_POOL_BURST;
		e = realloc(pl->e, cap * sizeof(*e));
		if (!e) {
			pooled_close(w, &p);
			return false;
		}
		pl->e = e;
		pl->cap = cap;
	}
	memcpy(&p.addr, &o->upstream.ss, o->upstream.len);
	if (ssl)
		SSL_set_app_data(ssl, NULL);
	pl->e[pl->n++] = p;
	w->c.upstream_pooled++;
	return true;
}

void edge_pool_sweep(struct edge_worker *w, uint64_t now_ms)
{
	struct edge_pool *pl = &w->pool;
	unsigned int ms = w->d->cfg.upstream_keepalive_timeout_ms;

	/* Oldest first: stop at the first one still within its time, and within the bound once
	 * a burst's extra connections have waited EDGE_POOL_BURST_MS for the requests after it.
	 * An entry pooled after now_ms was read (the caller's clock is a tick old) is 0 ms old:
	 * the difference must not wrap around. */
	while (pl->n) {
		uint64_t age = now_ms > pl->e[0].since_ms ? now_ms - pl->e[0].since_ms : 0;

		if (!(age > ms || w->draining ||
		      (pl->n > w->d->cfg.upstream_keepalive && age >= EDGE_POOL_BURST_MS)))
			break;
		pooled_close(w, &pl->e[0]);
		drop_at(pl, 0);
	}
}

void edge_pool_free(struct edge_worker *w)
{
	struct edge_pool *pl = &w->pool;

	while (pl->n) {
		pooled_close(w, &pl->e[pl->n - 1]);
		pl->n--;
	}
	free(pl->e);
	pl->e = NULL;
	pl->cap = 0;
}
