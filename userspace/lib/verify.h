/*
 * The one certificate verifier: the daemon's verify callback and
 * `mtls-edgectl verify` both run edge_verify_chain() against a trust set.
 * It decides nothing; it names what is wrong with a chain, with a stable
 * reason used in logs, counters and --json.
 */
#ifndef EDGE_VERIFY_H
#define EDGE_VERIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "authz.h"

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
	EDGE_REASON_NOT_AUTHORIZED, /* valid, but no allow entry of the hostname matches (authz.h) */
	EDGE_REASON_DENIED,         /* valid, but a deny entry of the hostname matches */
	EDGE_REASON_NONCONFORMING,  /* outside the RFC 5280 profile; check names which rule */
	EDGE_REASON_CRL_INVALID,    /* a CRL of the path cannot be used; check names why */
	EDGE_REASON_COUNT,
};

/* Certificates in one presented chain that the verifier reads (and refuses by
 * depth, not by the parser). */
#define EDGE_VERIFY_MAX_CHAIN 100

/* The X509_V_ERR_* of a refused identity: none of OpenSSL's, so that its
 * alert is certificate_unknown (OpenSSL 3.0 maps verification errors to alerts
 * through a fixed table, which has no way to access_denied). */
#define EDGE_X509_ERR_NOT_AUTHORIZED 1001

/* A trust anchor with its name, as rules and logs call it. */
struct edge_trust_ca {
	X509 *cert;
	char *name;           /* "builtin", an uploaded CA's name, or NULL */
	char *trust_domain;   /* the SPIFFE trust domain it vouches for, or NULL */
	atomic_uint dp_tries; /* the daemon's CRL fetcher: leaves read for a distribution point */
};

/* One CRL, for the CA whose certificate is `issuer` (NULL: the CA its issuer
 * name names, as `mtls-edgectl verify --crl` gives them). */
struct edge_crl_ref {
	X509 *issuer;
	X509_CRL *crl;
	char *problem; /* why it cannot be used (edge_crl_problem), or NULL */
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
	int depth;                 /* maximum intermediates, self-issued ones not counted */
	struct edge_trust_ca *cas; /* the anchors, with their names */
	size_t n_cas;
	STACK_OF(X509_NAME) *ca_names; /* their subjects, for the CertificateRequest */
	size_t ca_names_der;           /* the DER size of that list */
};

struct edge_verify_result {
	enum edge_reason reason;
	int x509_err; /* OpenSSL's X509_V_ERR_*, or X509_V_OK */
	int err_depth;
	char check[48];   /* the stable name of the check that refused ("" when valid) */
	char detail[160]; /* OpenSSL's words, e.g. "certificate has expired" */
	char subject[256];
	char issuer[256];
	char serial[80];          /* upper-case hex */
	time_t not_after;         /* the leaf's, for closing at expiry */
	bool builtin_anchor;      /* the chain ends at the built-in CA */
	const char *anchor;       /* the anchor's name ("builtin", an uploaded CA's), or NULL;
				owned by the trust set */
	const char *trust_domain; /* the anchor's SPIFFE trust domain, or NULL */
	struct edge_trust_ca *anchor_ca; /* the anchor in the trust set (owned by it), or NULL */
	struct edge_authz_result authz;  /* what the hostname's identity rules said */
};

/* at == 0: now. Returns 0 when the chain is valid, -EACCES when it is not
 * (res->reason says why), another negative errno on internal failure. */
int edge_verify_chain(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
		      time_t at, struct edge_verify_result *res);
/* The same for a server certificate (`mtls-edgectl verify --purpose server`):
 * serverAuth instead of clientAuth, keyEncipherment as good as digitalSignature. */
int edge_verify_chain_purpose(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
			      time_t at, bool server, struct edge_verify_result *res);
/* Why a CRL cannot be used by this verifier, as "check: words" (a stable
 * check name, then what is wrong), or NULL when it can: no CRLNumber, a delta
 * CRL, a critical extension it does not handle (in the CRL or an entry). */
const char *edge_crl_problem(X509_CRL *crl, char *buf, size_t len);
/* > 0 when a's CRLNumber is greater than b's, 0 when equal, < 0 when smaller (a CRL
 * without one counts as the smallest). */
int edge_crl_number_cmp(X509_CRL *a, X509_CRL *b);
/* What the audit record says of a presented leaf (the handshake log line). */
struct edge_cert_audit {
	char sha256[65];              /* SHA-256 of its DER (its fingerprint), lower-case hex */
	unsigned char sha256_raw[32]; /* the same, the digest's bytes (the chain cache's key) */
	char spki[65];                /* SHA-256 of its SubjectPublicKeyInfo */
	char sans[512]; /* "DNS:a.example,URI:spiffe://td/x,IP:192.0.2.1,email:a@b", cut
			    at a bound with "..." ("" when it has none) */
};
void edge_verify_audit(X509 *leaf, struct edge_cert_audit *out);

/* After a valid chain: the hostname's identity rules (NULL: none). 0 when they
 * admit the leaf; -EACCES when they refuse it (res->reason is not_authorized
 * or denied, res->authz names the entry); -ENOMEM. */
int edge_verify_authorize(const struct edge_authz *rules, X509 *leaf,
			  struct edge_verify_result *res);
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
/* The same with the anchor's name and SPIFFE trust domain (either may be NULL). */
int edge_trust_add_named_ca(struct edge_trust *t, X509 *ca, bool builtin, const char *name,
			    const char *trust_domain);
/* issuer may be NULL (the CA the CRL's issuer name names). A CRL the verifier
 * cannot use is kept, and refuses every chain through its CA (crl_invalid). */
int edge_trust_add_crl(struct edge_trust *t, X509 *issuer, X509_CRL *crl);
/* Takes a sorted copy of the serials. */
int edge_trust_set_revoked(struct edge_trust *t, char *const *serials, size_t n);
void edge_trust_free(struct edge_trust *t);

#endif
