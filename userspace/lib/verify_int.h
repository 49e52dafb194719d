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

#endif
