/*
 * Handshakes in flight per source address, shared by all workers: a flood or
 * a slowloris from one source fills only its own share of the handshake slots.
 * Bounded: at most `capacity` sources are tracked (one per handshake in flight).
 */
#ifndef EDGE_SRCLIMIT_H
#define EDGE_SRCLIMIT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

struct edge_srclimit {
	pthread_mutex_t lock;
	unsigned int per_source;
	unsigned int capacity;
	uint32_t n_buckets;
	int32_t *buckets; /* head node index or -1 */
	struct edge_src_node {
		uint8_t addr[16];
		uint32_t count;
		int32_t next; /* chain, or free list */
	} * nodes;
	int32_t free_head;
};

int edge_srclimit_init(struct edge_srclimit *l, unsigned int capacity, unsigned int per_source);
void edge_srclimit_destroy(struct edge_srclimit *l);
/* 0 when the source may start one more handshake, -EBUSY when it is at its
 * cap, -ENOSPC when the table is full (only when capacity is exceeded). */
int edge_srclimit_take(struct edge_srclimit *l, const struct sockaddr *sa);
void edge_srclimit_put(struct edge_srclimit *l, const struct sockaddr *sa);

#endif
