/* Between verify.c and verify_profile.c: the profile checks' result. */
#ifndef EDGE_VERIFY_INT_H
#define EDGE_VERIFY_INT_H

#include <openssl/x509.h>

#include "verify.h"

struct edge_verify_check {
	int depth;        /* the certificate it is about, 0 = the leaf */
	char check[48];   /* its stable name, docs/verify.md */
	char detail[160]; /* in words */
};

/* The project's RFC 5280 checks on a chain OpenSSL accepted (leaf first, anchor
 * last): 0, or -EACCES with *out filled. */
int edge_verify_profile(STACK_OF(X509) *chain, struct edge_verify_check *out);
/* edge_verify_chain_purpose, and on success the path it verified (leaf first, anchor last;
 * the caller frees it) when path is not NULL. */
int edge_verify_chain_path(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
			   time_t at, bool server, struct edge_verify_result *res,
			   STACK_OF(X509) **path);
/* The CRL the trust set holds for the CA named `issuer`, or NULL. */
const struct edge_crl_ref *edge_trust_crl_for(const struct edge_trust *t, const X509_NAME *issuer);

#endif
