/*
 * The one certificate verifier: the daemon's verify callback and
 * `mtls-edgectl verify` both run edge_verify_chain() against a trust set.
 * It decides nothing; it names what is wrong with a chain, with a stable
 * reason used in logs, counters and --json.
 */
#ifndef EDGE_VERIFY_H
#define EDGE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

enum edge_reason {
	EDGE_REASON_OK = 0,
	EDGE_REASON_NO_CLIENT_CERT,
	EDGE_REASON_CERT_EXPIRED,
	EDGE_REASON_CERT_NOT_YET_VALID,
	EDGE_REASON_UNKNOWN_CA,
	EDGE_REASON_CERT_REVOKED,
	EDGE_REASON_CRL_EXPIRED,
	EDGE_REASON_INVALID_PURPOSE,
	EDGE_REASON_LEAF_IS_CA,
	EDGE_REASON_CHAIN_TOO_LONG,
	EDGE_REASON_BAD_SIGNATURE,
	EDGE_REASON_WEAK_KEY,       /* RSA below 2048 bits, or a comparable key */
	EDGE_REASON_WEAK_SIGNATURE, /* SHA-1 or weaker in the chain */
	EDGE_REASON_VERIFY_FAILED,  /* any other chain error; detail says which */
	EDGE_REASON_COUNT,
};

/* One CRL, for the uploaded CA whose certificate is `issuer`. */
struct edge_crl_ref {
	X509 *issuer;
	X509_CRL *crl;
};

/*
 * The trust set of one hostname: the built-in CA (when the hostname falls
 * under a site) plus the uploaded CAs bound to the hostname. Immutable once
 * built; owned by a snapshot.
 */
struct edge_trust {
	X509_STORE *store;
	X509 *builtin;  /* NULL when the built-in CA is not trusted here */
	char **revoked; /* built-in CA's revoked serials, sorted hex */
	size_t n_revoked;
	struct edge_crl_ref *crls;
	size_t n_crls;
	int depth; /* maximum intermediates */
};

struct edge_verify_result {
	enum edge_reason reason;
	int x509_err; /* OpenSSL's X509_V_ERR_*, or X509_V_OK */
	int err_depth;
	char detail[160]; /* OpenSSL's words, e.g. "certificate has expired" */
	char subject[256];
	char issuer[256];
	char serial[80];     /* upper-case hex */
	time_t not_after;    /* the leaf's, for closing at expiry */
	bool builtin_anchor; /* the chain ends at the built-in CA */
};

/* at == 0: now. Returns 0 when the chain is valid, -EACCES when it is not
 * (res->reason says why), another negative errno on internal failure. */
int edge_verify_chain(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
		      time_t at, struct edge_verify_result *res);
/* Fills subject, issuer and serial from the leaf. */
void edge_verify_describe(X509 *leaf, struct edge_verify_result *res);
/* Whether the trust set now revokes a certificate that verified earlier:
 * the built-in CA's revoked serials, or the CRL of the leaf's issuer. */
bool edge_trust_revokes(const struct edge_trust *t, X509 *leaf, const char *serial,
			bool builtin_anchor);
/* The X509_V_ERR_* to report to the TLS stack (selects the alert). */
int edge_verify_x509_error(const struct edge_verify_result *res);

const char *edge_reason_name(enum edge_reason r);

/* Trust set construction (the snapshot builds them; unit tests too). */
struct edge_trust *edge_trust_new(int depth);
int edge_trust_add_ca(struct edge_trust *t, X509 *ca, bool builtin);
int edge_trust_add_crl(struct edge_trust *t, X509 *issuer, X509_CRL *crl);
/* Takes a sorted copy of the serials. */
int edge_trust_set_revoked(struct edge_trust *t, char *const *serials, size_t n);
void edge_trust_free(struct edge_trust *t);

#endif
