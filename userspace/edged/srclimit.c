#include "srclimit.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* IPv4 as v4-mapped IPv6, so one key shape serves both families. */
static void key_of(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

static uint32_t hash_key(const uint8_t key[16], uint32_t n)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h & (n - 1);
}

int edge_srclimit_init(struct edge_srclimit *l, unsigned int capacity, unsigned int per_source)
{
	uint32_t n = 64;

	memset(l, 0, sizeof(*l));
	while (n < 2 * capacity && n < (1u << 24))
		n <<= 1;
	l->buckets = malloc(n * sizeof(*l->buckets));
	l->nodes = calloc(capacity, sizeof(*l->nodes));
	if (!l->buckets || !l->nodes) {
		free(l->buckets);
		free(l->nodes);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		l->buckets[i] = -1;
	for (unsigned int i = 0; i < capacity; i++)
		l->nodes[i].next = i + 1 < capacity ? (int32_t)(i + 1) : -1;
	l->free_head = capacity ? 0 : -1;
	l->n_buckets = n;
	l->capacity = capacity;
	l->per_source = per_source;
	pthread_mutex_init(&l->lock, NULL);
	return 0;
}

void edge_srclimit_destroy(struct edge_srclimit *l)
{
	free(l->buckets);
	free(l->nodes);
	pthread_mutex_destroy(&l->lock);
}

int edge_srclimit_take(struct edge_srclimit *l, const struct sockaddr *sa)
{
	uint8_t key[16];
	uint32_t b;
	int32_t i;
	int rc = 0;

	key_of(sa, key);
	b = hash_key(key, l->n_buckets);
	pthread_mutex_lock(&l->lock);
	for (i = l->buckets[b]; i >= 0; i = l->nodes[i].next)
		if (!memcmp(l->nodes[i].addr, key, 16))
			break;
	if (i >= 0) {
		if (l->nodes[i].count >= l->per_source)
			rc = -EBUSY;
		else
			l->nodes[i].count++;
	} else if (l->free_head < 0) {
		rc = -ENOSPC;
	} else {
		i = l->free_head;
		l->free_head = l->nodes[i].next;
		memcpy(l->nodes[i].addr, key, 16);
		l->nodes[i].count = 1;
		l->nodes[i].next = l->buckets[b];
		l->buckets[b] = i;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void edge_srclimit_put(struct edge_srclimit *l, const struct sockaddr *sa)
{
	uint8_t key[16];
	uint32_t b;
	int32_t *link;

	key_of(sa, key);
	b = hash_key(key, l->n_buckets);
	pthread_mutex_lock(&l->lock);
	for (link = &l->buckets[b]; *link >= 0; link = &l->nodes[*link].next) {
		struct edge_src_node *n = &l->nodes[*link];

		if (memcmp(n->addr, key, 16))
			continue;
		if (--n->count == 0) {
			int32_t i = *link;

			*link = n->next;
			n->next = l->free_head;
			l->free_head = i;
		}
		break;
	}
	pthread_mutex_unlock(&l->lock);
}
