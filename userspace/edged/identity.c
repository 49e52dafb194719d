/*
 * What the edge tells the upstream about the client (--forward): the facts
 * of the verified session in the shape forward.c builds from, then the PROXY
 * v2 header written on the upstream connection, or the request rewriter for
 * headers mode with this session's fields.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "forward.h"
#include "h2.h"
#include "identity.h"
#include "log.h"
#include "snapshot.h"
#include "worker.h"

/* What forward.c needs, taken from the session; the buffers are the caller's. */
struct fwd_buf {
	char cn[256], serial[96], verify[64], sig_alg[64], key_alg[64];
	unsigned char sha256[32];
	unsigned char *der[1 + 16];
	size_t der_len[1 + 16];
	size_t n_der;
};

static void fwd_buf_free(struct fwd_buf *b)
{
	for (size_t i = 0; i < b->n_der; i++)
		OPENSSL_free(b->der[i]);
	b->n_der = 0;
}

static void fwd_id(struct edge_conn *c, struct edge_forward_id *id, struct fwd_buf *b)
{
	SSL *ssl = c->side[EDGE_CLIENT].ssl;
	X509 *peer = SSL_get0_peer_certificate(ssl), *own = SSL_get_certificate(ssl);
	bool verified = peer && c->verify_ran && c->vr.reason == EDGE_REASON_OK;
	socklen_t sl = sizeof(id->dst);
	EVP_PKEY *pk = own ? X509_get0_pubkey(own) : NULL;

	memset(id, 0, sizeof(*id));
	memset(b, 0, sizeof(*b));
	id->src = c->peer_ss;
	if (getsockname(c->h2_child ? edge_h2_parent_fd(c) : c->side[EDGE_CLIENT].fd,
			(struct sockaddr *)&id->dst, &sl))
		id->dst.ss_family = AF_UNSPEC;
	id->authority = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	id->alpn = c->alpn[0] ? c->alpn : NULL;
	id->version = SSL_get_version(ssl);
	id->cipher = SSL_get_cipher_name(ssl);
	if (own) {
		snprintf(b->sig_alg, sizeof(b->sig_alg), "%s",
			 OBJ_nid2sn(X509_get_signature_nid(own)));
		id->sig_alg = b->sig_alg;
	}
	if (pk && EVP_PKEY_get0_type_name(pk)) {
		snprintf(b->key_alg, sizeof(b->key_alg), "%s%d", EVP_PKEY_get0_type_name(pk),
			 EVP_PKEY_get_bits(pk));
		id->key_alg = b->key_alg;
	}
	id->verify = verified ? 0 : c->vr.x509_err ? (uint32_t)c->vr.x509_err : 1;
	snprintf(b->verify, sizeof(b->verify), "%s%s",
		 verified ? "SUCCESS"
		 : peer   ? "FAILED:"
			  : "NONE",
		 peer && !verified
			 ? edge_reason_name(c->vr.reason ? c->vr.reason : EDGE_REASON_VERIFY_FAILED)
			 : "");
	id->verify_text = b->verify;
	if (!peer)
		return;
	id->cert_sess = true;
	id->cert_conn = !SSL_session_reused(ssl);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, b->cn,
				      sizeof(b->cn)) > 0)
		id->cn = b->cn;
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		if (hex) {
			snprintf(b->serial, sizeof(b->serial), "%s", hex);
			id->serial = b->serial;
		}
		OPENSSL_free(hex);
		BN_free(bn);
	}
	if (X509_digest(peer, EVP_sha256(), b->sha256, NULL))
		id->sha256 = b->sha256;
	{
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* server side: no leaf */
		int n = chain ? sk_X509_num(chain) : 0;

		for (int i = -1; i < n && b->n_der < sizeof(b->der) / sizeof(b->der[0]); i++) {
			X509 *x = i < 0 ? peer : sk_X509_value(chain, i);
			unsigned char *der = NULL;
			int len = i2d_X509(x, &der);

			if (len <= 0)
				break;
			b->der[b->n_der] = der;
			b->der_len[b->n_der++] = (size_t)len;
		}
	}
	if (b->n_der) {
		id->leaf = b->der[0];
		id->leaf_len = b->der_len[0];
		id->chain = (const unsigned char *const *)&b->der[1];
		id->chain_len = &b->der_len[1];
		id->n_chain = b->n_der - 1;
	}
}

/* proxy-v2: the header goes first on the upstream connection, before any
 * TLS to the upstream; a fresh socket's send buffer always takes it whole. */
int edge_identity_send_proxy_v2(struct edge_conn *c)
{
	unsigned char hdr[EDGE_PP2_MAX];
	struct edge_forward_id id;
	struct fwd_buf b;
	size_t len = 0;
	ssize_t n;
	int rc;

	fwd_id(c, &id, &b);
	rc = edge_forward_proxy_v2(&id, hdr, sizeof(hdr), &len);
	fwd_buf_free(&b);
	if (rc) {
		pr_warn("proxy-v2 sni=%s peer=%s: header does not fit: %s", c->host, c->peer,
			strerror(-rc));
		return rc;
	}
	n = send(c->side[EDGE_UPSTREAM].fd, hdr, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != (ssize_t)len) {
		pr_warn("proxy-v2 sni=%s upstream=%s peer=%s: %s", c->host, c->sni->upstream_text,
			c->peer, n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	c->w->c.proxy_v2_sent++;
	return 0;
}

/* headers: the lines the rewriter adds for this session. */
int edge_identity_headers(struct edge_conn *c, char **out, size_t *len)
{
	struct edge_forward_id id;
	struct fwd_buf b;
	int rc;

	fwd_id(c, &id, &b);
	rc = edge_forward_headers(&id, out, len);
	fwd_buf_free(&b);
	return rc;
}
