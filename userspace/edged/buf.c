/*
 * The worker's free lists of buffers: a relay direction holds a 64 KiB
 * buffer only while bytes are in it, the client's batched records one of
 * four records, and xprt_rec the records it read, so an idle connection holds none; buffers go back to the list
 * (up to its cap) instead of to malloc.
 */
#include <stdlib.h>

#include "worker.h"

void edge_buf_pools_init(struct edge_worker *w)
{
	w->relay_bufs.size = EDGE_RELAY_BUF;
	w->relay_bufs.cap = EDGE_RELAY_POOL;
	w->out_bufs.size = EDGE_OUT_BUF;
	w->out_bufs.cap = EDGE_OUT_POOL;
	w->rec_bufs.size = EDGE_REC_BUF;
	w->rec_bufs.cap = EDGE_REC_POOL;
}

static void pool_drain(struct edge_buf_pool *pl)
{
	while (pl->n)
		free(pl->free[--pl->n]);
}

void edge_buf_pools_free(struct edge_worker *w)
{
	pool_drain(&w->relay_bufs);
	pool_drain(&w->out_bufs);
	pool_drain(&w->rec_bufs);
}
