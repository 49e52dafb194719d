/*
 * The TLS contexts of a snapshot: the options every server context shares,
 * an SNI object's server context (its chains and keys, one per key type,
 * checked), and the context of the edge as a TLS client of an SNI object's
 * upstream.
 */
#include "tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>

#include "log.h"
#include "store.h"

void edge_tlsctx_common(SSL_CTX *ctx, const struct edge_tls_hooks *hooks)
{
	/* SSL_set_SSL_CTX() keeps the options of the context the SSL was made
	 * from, so the base and every SNI context carry the same ones. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mtls-edge", 9);
	/* The largest handshake message a client may send: its Certificate.
	 * A real chain of three RSA-4096 certificates is under 8 KiB. */
	SSL_CTX_set_max_cert_list(ctx, EDGE_MAX_CERT_LIST);
	SSL_CTX_set_cert_verify_callback(ctx, hooks->cert_verify, NULL);
	if (hooks->alpn_select)
		SSL_CTX_set_alpn_select_cb(ctx, hooks->alpn_select, NULL);
	if (hooks->ktls)
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	if (hooks->keylog)
		SSL_CTX_set_keylog_callback(ctx, hooks->keylog);
}

int edge_tlsctx_check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb)) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (sb.st_mode & 0077) {
		snprintf(err, errlen,
			 "key file %s is readable or writable by group or others"
			 " (mode %04o); run 'chmod 600 %s'",
			 path, (unsigned int)(sb.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

const char *edge_tlsctx_key_type(const EVP_PKEY *pk)
{
	if (!pk)
		return NULL;
	if (EVP_PKEY_is_a(pk, "RSA"))
		return "rsa";
	if (EVP_PKEY_is_a(pk, "EC"))
		return "ecdsa";
	if (EVP_PKEY_is_a(pk, "ED25519"))
		return "ed25519";
	return NULL;
}

/* With several pairs: the leaf just loaded (pairs[i]) is of a type that may stand beside
 * others, and of none loaded before it (OpenSSL would replace that one). */
static int check_type(struct edge_sni *o, const struct edge_tls_pair *pairs, size_t i,
		      const char **types, char *err, size_t errlen)
{
	const EVP_PKEY *pk = X509_get0_pubkey(SSL_CTX_get0_certificate(o->ctx));

	types[i] = edge_tlsctx_key_type(pk);
	if (!types[i]) {
		snprintf(err, errlen,
			 "sni %s: certificate %s: its %s key cannot stand beside other"
			 " certificates (one each of rsa, ecdsa, ed25519)",
			 o->hostname, pairs[i].cert,
			 pk && EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk)
							   : "unknown");
		return -EINVAL;
	}
	for (size_t j = 0; j < i; j++) {
		if (!strcmp(types[j], types[i])) {
			snprintf(err, errlen,
				 "sni %s: certificates %s and %s are both %s: at most one"
				 " per key type",
				 o->hostname, pairs[j].cert, pairs[i].cert, types[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int edge_tlsctx_server(struct edge_sni *o, const struct edge_tls_pair *pairs, size_t n,
		       const struct edge_tls_hooks *hooks, char *err, size_t errlen)
{
	const char *types[EDGE_MAX_CERTS_PER_SNI];
	char ssl_err[512], aerr[256];
	int rc;

	if (!n || n > EDGE_MAX_CERTS_PER_SNI) {
		snprintf(err, errlen, "sni %s: %zu server certificates (1 to %d)", o->hostname, n,
			 EDGE_MAX_CERTS_PER_SNI);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = edge_tlsctx_check_key_file(pairs[i].key, aerr, sizeof(aerr)))) {
			snprintf(err, errlen, "sni %s: %s", o->hostname, aerr);
			return rc;
		}
	}
	o->ctx = SSL_CTX_new(TLS_server_method());
	if (!o->ctx)
		return -ENOMEM;
	edge_tlsctx_common(o->ctx, hooks);
	SSL_CTX_set_min_proto_version(o->ctx, o->tls_min);
	SSL_CTX_set_max_proto_version(o->ctx, o->tls_max);
	/* One chain and key per key type, in turn: each load makes its type's the
	 * current one, which the key and the check then apply to. */
	for (size_t i = 0; i < n; i++) {
		const X509 *leaf;

		ERR_clear_error();
		if (SSL_CTX_use_certificate_chain_file(o->ctx, pairs[i].cert) != 1) {
			edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
			snprintf(err, errlen, "sni %s: cannot load certificate chain %s: %s",
				 o->hostname, pairs[i].cert, ssl_err);
			return -EINVAL;
		}
		if (n > 1 && (rc = check_type(o, pairs, i, types, err, errlen)))
			return rc;
		leaf = SSL_CTX_get0_certificate(o->ctx);
		if (SSL_CTX_use_PrivateKey_file(o->ctx, pairs[i].key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(o->ctx) != 1) {
			/* OpenSSL's words never include key material. */
			edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
			snprintf(err, errlen, "sni %s: cannot use private key %s: %s", o->hostname,
				 pairs[i].key, ssl_err);
			return -EINVAL;
		}
		/* A key of another type than its leaf goes to that type's certificate (an
		 * earlier pair's), which it may match: it must be this leaf's. */
		if (SSL_CTX_get0_certificate(o->ctx) != leaf) {
			snprintf(err, errlen,
				 "sni %s: cannot use private key %s: it does not match the"
				 " certificate %s",
				 o->hostname, pairs[i].key, pairs[i].cert);
			return -EINVAL;
		}
	}
	return 0;
}

/* The edge as a TLS client of the upstream: its certificate verified against
 * upstream_ca (or the system's CAs), by name or by IP; a client certificate
 * when upstream_cert is set. */
int edge_tlsctx_upstream(struct edge_sni *o, const char *ca, const char *cert, const char *key,
			 const char *name, const struct edge_tls_hooks *hooks, char *err,
			 size_t errlen)
{
	char ssl_err[512], host[256];
	int rc;

	o->up_ctx = SSL_CTX_new(TLS_client_method());
	if (!o->up_ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(o->up_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(o->up_ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(o->up_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(o->up_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(o->up_ctx, SSL_VERIFY_PEER, NULL);
	if (hooks->ktls) {
		SSL_CTX_set_options(o->up_ctx, SSL_OP_ENABLE_KTLS);
		SSL_CTX_set_keylog_callback(o->up_ctx, hooks->up_keylog);
	}
	ERR_clear_error();
	if (ca ? SSL_CTX_load_verify_locations(o->up_ctx, ca, NULL) != 1
	       : SSL_CTX_set_default_verify_paths(o->up_ctx) != 1) {
		edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
		snprintf(err, errlen, "sni %s: cannot load the upstream CA %s: %s", o->hostname,
			 ca ? ca : "(system)", ssl_err);
		return -EINVAL;
	}
	if (cert || key) {
		if (!cert || !key) {
			snprintf(err, errlen,
				 "sni %s: upstream mTLS needs both a certificate and a key",
				 o->hostname);
			return -EINVAL;
		}
		if ((rc = edge_tlsctx_check_key_file(key, ssl_err, sizeof(ssl_err)))) {
			snprintf(err, errlen, "sni %s: upstream %s", o->hostname, ssl_err);
			return rc;
		}
		if (SSL_CTX_use_certificate_chain_file(o->up_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(o->up_ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(o->up_ctx) != 1) {
			edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
			snprintf(err, errlen,
				 "sni %s: cannot use the upstream client certificate %s"
				 " and key %s: %s",
				 o->hostname, cert, key, ssl_err);
			return -EINVAL;
		}
	}
	/* Without --upstream-sni, the upstream's own host part names it. */
	if (!name) {
		const char *t = o->upstream_text, *end = strrchr(t, ':');
		size_t n = end ? (size_t)(end - t) : strlen(t);

		if (n && t[0] == '[' && t[n - 1] == ']') {
			t++;
			n -= 2;
		}
		snprintf(host, sizeof(host), "%.*s", (int)n, t);
		name = host;
		if (o->upstream.ss.ss_family == AF_INET6 || strspn(host, "0123456789.") == n) {
			o->up_ip = strdup(host);
			return o->up_ip ? 0 : -ENOMEM;
		}
	}
	o->up_name = strdup(name);
	return o->up_name ? 0 : -ENOMEM;
}
