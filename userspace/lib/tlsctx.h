/*
 * The TLS contexts a snapshot builds (tlsctx.c): shared options, an SNI
 * object's server context, the edge's client context towards its upstream.
 */
#ifndef EDGE_TLSCTX_H
#define EDGE_TLSCTX_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "snapshot.h"

/* What every server context of a snapshot carries (the base one too). */
void edge_tlsctx_common(SSL_CTX *ctx, const struct edge_tls_hooks *hooks);
/* 0 when the key file exists and only its owner may read or write it. */
int edge_tlsctx_check_key_file(const char *path, char *err, size_t errlen);
/* o->ctx: o's server chain and key (o->hostname, tls_min and tls_max set). */
int edge_tlsctx_server(struct edge_sni *o, const char *cert, const char *key,
		       const struct edge_tls_hooks *hooks, char *err, size_t errlen);
/* o->up_ctx (and up_name or up_ip): TLS to o's upstream, verified against ca (NULL: the
 * system's CAs), with a client certificate when cert and key are given, checked against
 * name (NULL: the upstream address's host part). */
int edge_tlsctx_upstream(struct edge_sni *o, const char *ca, const char *cert, const char *key,
			 const char *name, const struct edge_tls_hooks *hooks, char *err,
			 size_t errlen);

#endif
