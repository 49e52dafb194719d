/*
 * Revocation that maintains itself: one thread fetches the http:// CRL distribution points that
 * client chains of uploaded CAs name (the leaf's, and that of an intermediate the client sends
 * when the uploaded CA issued it; learned at the handshake), checks each CRL like
 * `ca crl set` does, refreshes it before its nextUpdate, and keeps the last good one when a
 * fetch fails. A new CRL is handed to the main thread (edge_crlfetch_fd), whose reload builds a
 * snapshot with it (edge_snapshot_build_crls) and closes the live connections it revokes.
 */
#ifndef EDGE_CRLFETCH_H
#define EDGE_CRLFETCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "config.h"
#include "snapshot.h"

#define EDGE_CRLFETCH_MAX 64    /* distribution points followed */
#define EDGE_CRLFETCH_URL 512   /* the longest URL taken */
#define EDGE_CRLFETCH_LEAVES 16 /* leaves of a CA read for a distribution point, per snapshot */

struct edge_crlfetch;

int edge_crlfetch_new(const struct edge_config *cfg, struct edge_crlfetch **out);
/* Stops the thread and frees everything. */
void edge_crlfetch_free(struct edge_crlfetch *f);
/* Readable when a fetched CRL changed what the daemon should use: then reload. */
int edge_crlfetch_fd(const struct edge_crlfetch *f);
void edge_crlfetch_ack(struct edge_crlfetch *f);
/* The distribution point a certificate of a verified chain names: the CRL `issuer` signs (the
 * uploaded CA `anchor` the chain ends at, named `name`, or an intermediate under it), followed
 * from now on (edge_crl_dp_url reads it). Nothing when it is already. */
void edge_crlfetch_learn(struct edge_crlfetch *f, X509 *issuer, X509 *anchor, const char *name,
			 const char *url);
/* Fetch every distribution point now (`mtls-edgectl crl refresh`). */
void edge_crlfetch_refresh(struct edge_crlfetch *f);
/* The good CRLs, referenced (edge_crlfetch_put gives them back). */
void edge_crlfetch_get(struct edge_crlfetch *f, struct edge_crl_extra *out);
void edge_crlfetch_put(struct edge_crl_extra *x);
/* For status: one object per distribution point. */
json_t *edge_crlfetch_json(struct edge_crlfetch *f);
/* For metrics: a copy of each distribution point's counts (at most max). */
struct edge_crl_stat {
	char ca[128];
	char url[EDGE_CRLFETCH_URL];
	uint64_t ok, failed;
	int64_t last_ok, next_update;
	bool failing;
};
size_t edge_crlfetch_stats(struct edge_crlfetch *f, struct edge_crl_stat *out, size_t max);

/* The first http:// URL of a full-CRL distribution point of x (no reasons, no cRLIssuer),
 * printable and shorter than len; false when it has none. */
bool edge_crl_dp_url(X509 *x, char *out, size_t len);

#endif
