/* pool.c: the idle upstream connections of a worker, with socketpairs for connections: the
 * bound, a burst's headroom and its trim at the sweep, expiry, and what a take skips. */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool.h"
#include "snapshot.h"
#include "tap.h"
#include "worker.h"

static struct edge_daemon daemon_;
static struct edge_worker *w;
static struct edge_sni sni;
static int peers[256]; /* the other ends, kept open so that a pooled one stays idle */
static int n_peers;

static int conn_fd(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
		return -1;
	peers[n_peers++] = sv[1];
	return sv[0];
}

int main(void)
{
	uint64_t t0;
	unsigned int max;
	int fd;
	SSL *ssl;

	w = aligned_alloc(16, sizeof(*w));
	memset(w, 0, sizeof(*w));
	edge_config_defaults(&daemon_.cfg);
	w->d = &daemon_;
	daemon_.cfg.upstream_keepalive = max = 2;
	sni.upstream.ss.ss_family = AF_INET;
	sni.upstream.len = sizeof(struct sockaddr_in);

	t0 = edge_now_ms();
	for (unsigned int i = 0; i < max * EDGE_POOL_BURST + 3; i++)
		edge_pool_put(w, &sni, conn_fd(), NULL);
	is_int((int)w->pool.n, (int)(max * EDGE_POOL_BURST),
	       "a burst keeps up to EDGE_POOL_BURST times the bound");
	is_int((int)w->c.upstream_pool_closed, 3, "past that, the least recently used are closed");
	/* t0 is older than every entry (a busy machine may take a while over the puts): their age
	 * is 0 then, not a wrapped difference */
	edge_pool_sweep(w, t0);
	is_int((int)w->pool.n, (int)(max * EDGE_POOL_BURST), "a sweep right after keeps them all");
	edge_pool_sweep(w, edge_now_ms() + EDGE_POOL_BURST_MS + 50);
	is_int((int)w->pool.n, (int)max,
	       "a sweep after EDGE_POOL_BURST_MS trims back to the bound");
	fd = edge_pool_take(w, &sni, &ssl);
	ok(fd >= 0 && !ssl, "a take gets one of them");
	close(fd);
	close(peers[n_peers - 2]); /* the one left: its peer closes while it waits */
	fd = edge_pool_take(w, &sni, &ssl);
	ok(fd < 0 && w->pool.n == 0, "one its upstream closed is not handed out, and is dropped");
	edge_pool_put(w, &sni, conn_fd(), NULL);
	edge_pool_sweep(w, edge_now_ms() + daemon_.cfg.upstream_keepalive_timeout_ms + 1);
	is_int((int)w->pool.n, 0, "upstream_keepalive_timeout expires an idle one");
	daemon_.cfg.upstream_keepalive = 0;
	ok(!edge_pool_put(w, &sni, conn_fd(), NULL) && w->pool.n == 0,
	   "upstream_keepalive = 0 keeps none");
	edge_pool_free(w);
	for (int i = 0; i < n_peers; i++)
		close(peers[i]);
	free(w);
	return tap_done();
}
