/*
 * Verified chains, remembered per worker (no lock): a client that comes back with the same
 * chain skips the path building and the signature checks. A hit is taken only for the same
 * trust set of the same snapshot (every reload makes new ones), and only while every
 * certificate of the path is inside its validity and every CRL it was checked against is
 * before its nextUpdate; then the verdict is the one a full verification gave. Refusals are
 * never remembered. The identity rules run after it, on every handshake.
 */
#ifndef EDGE_VERIFY_CACHE_H
#define EDGE_VERIFY_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "verify.h"

#define EDGE_VCACHE_SLOTS 256 /* direct-mapped by the chain's SHA-256 */

struct edge_vcache;

struct edge_vcache *edge_vcache_new(void);
void edge_vcache_free(struct edge_vcache *vc);
/* edge_verify_chain at the current time, through the cache; epoch names the snapshot that
 * owns trust (its seq); leaf_md: the leaf's SHA-256 when the caller has it, else NULL.
 * vc == NULL: no cache. *hit says whether it answered. */
int edge_verify_chain_cached(struct edge_vcache *vc, uint64_t epoch, const struct edge_trust *trust,
			     X509 *leaf, const unsigned char *leaf_md, STACK_OF(X509) *untrusted,
			     struct edge_verify_result *res, bool *hit);
void edge_vcache_stats(const struct edge_vcache *vc, uint64_t *hits, uint64_t *misses);

#endif
