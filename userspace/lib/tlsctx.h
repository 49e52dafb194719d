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
/* A server certificate chain file (PEM, leaf first) and its private key file. */
struct edge_tls_pair {
	const char *cert, *key;
};

/* The key type of a server certificate, as an SNI object holds one of each: "rsa", "ecdsa"
 * or "ed25519" (OpenSSL keeps one certificate per type and picks by the client's signature
 * algorithms); NULL for a key that cannot stand beside others (RSA-PSS, Ed448...). */
const char *edge_tlsctx_key_type(const EVP_PKEY *pk);
/* o->ctx: o's server chains and keys (o->hostname, tls_min and tls_max set), 1 to
 * EDGE_MAX_CERTS_PER_SNI pairs, loaded in turn; more than one: each of another
 * edge_tlsctx_key_type(). Each key file private to its owner, each key its leaf's. */
int edge_tlsctx_server(struct edge_sni *o, const struct edge_tls_pair *pairs, size_t n,
		       const struct edge_tls_hooks *hooks, char *err, size_t errlen);
/* o->up_ctx (and up_name or up_ip): TLS to o's upstream, verified against ca (NULL: the
 * system's CAs), with a client certificate when cert and key are given, checked against
 * name (NULL: the upstream address's host part). */
int edge_tlsctx_upstream(struct edge_sni *o, const char *ca, const char *cert, const char *key,
			 const char *name, const struct edge_tls_hooks *hooks, char *err,
			 size_t errlen);

#endif
