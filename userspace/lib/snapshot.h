/*
 * An immutable view of the store for the data path: one SSL_CTX per SNI
 * object, one trust set per bound hostname, the block rules. Built whole or
 * not at all; connections hold a reference to the snapshot they started with.
 */
#ifndef EDGE_SNAPSHOT_H
#define EDGE_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "alpn.h"
#include "authz.h"
#include "config.h"
#include "forward.h"
#include "policy.h"
#include "verify.h"

struct edge_store;

#define EDGE_MAX_CERT_LIST (32 * 1024)
#define EDGE_CA_HINTS_MAX (16 * 1024) /* the CA names of a CertificateRequest, DER */
/* [tls] session_tickets: the TLS 1.2 sessions a snapshot's cache keeps, oldest out first */
#define EDGE_SESSION_CACHE_SIZE 8192

/* The CA names an SNI object's CertificateRequest carries. */
enum edge_ca_hints {
	EDGE_CA_HINTS_TRUSTED = 0, /* the CAs trusted for the hostname the client asked */
	EDGE_CA_HINTS_NONE,        /* none: the client offers whatever it has */
	EDGE_CA_HINTS_LIST,        /* a list of its own (ca_hints_pem's subjects) */
};

struct edge_sni {
	char *hostname; /* "api.example.com" or "*.example.com" */
	SSL_CTX *ctx;   /* server chains + keys (one per key type), versions, verify callback */
	enum edge_mtls_mode mode;
	int tls_min, tls_max; /* TLS1_2_VERSION / TLS1_3_VERSION */
	struct edge_addr upstream;
	char *upstream_text;
	SSL_CTX *up_ctx;             /* TLS to the upstream, or NULL for plain TCP */
	char *up_name;               /* SNI and the name checked in its certificate, or NULL */
	char *up_ip;                 /* with no name: the IP checked in its certificate */
	enum edge_forward forward;   /* identity to the upstream */
	enum edge_protocol protocol; /* tcp: bytes; http: framing read, upstream kept alive */
	unsigned int label; /* the daemon's metrics label for hostname (0 until it sets one) */
	enum edge_ca_hints ca_hints;
	const struct edge_trust *ctx_trust; /* trusted hints: the trust whose CA names ctx carries;
					       another trust's are set per connection */
	unsigned char alpn[EDGE_ALPN_WIRE_MAX]; /* ALPN, server order, wire form (alpn.h) */
	size_t alpn_len;                        /* 0: none negotiated (no ALPN in the answer) */
	bool no_alpn_refuse;                    /* a client offering no ALPN is refused */
	unsigned int alpn_label[EDGE_MAX_ALPN]; /* the daemon's metrics labels of alpn's tokens */
};

struct edge_trust_entry {
	char *hostname; /* a bound hostname, exact or wildcard */
	struct edge_trust *trust;
};

struct edge_authz_entry {
	char *hostname;           /* exact or wildcard */
	struct edge_authz *rules; /* its identity rules, compiled */
};

struct edge_rule_entry {
	char *hostname; /* exact or wildcard */
	enum edge_rule_action action;
	int64_t rule_id;
};

struct edge_snapshot {
	atomic_int refs;
	int64_t generation;
	uint64_t seq;  /* the daemon's count of snapshots swapped in: a rebuild for a fetched CRL
			 keeps the store's generation, and the workers apply each snapshot once */
	SSL_CTX *base; /* dispatch context: ClientHello callback only */
	struct edge_sni *snis; /* sorted by hostname */
	size_t n_sni;
	struct edge_trust_entry *trusts; /* sorted by hostname */
	size_t n_trust;
	struct edge_trust *site_trust; /* built-in CA only: site hostnames without bindings */
	struct edge_trust *no_trust;   /* trusts nothing: hostnames outside every site */
	struct edge_rule_entry *rules; /* sorted by hostname */
	size_t n_rules;
	struct edge_authz_entry *authz; /* identity rules, sorted by hostname */
	size_t n_authz;
	char **sites;
	size_t n_sites;
	char **revoked; /* built-in CA's revoked serials, sorted */
	size_t n_revoked;
	char *default_sni;
};

/* Callbacks the data path installs in every SSL_CTX the snapshot makes. */
struct edge_tls_hooks {
	SSL_client_hello_cb_fn client_hello;
	int (*cert_verify)(X509_STORE_CTX *ctx, void *arg);
	SSL_CTX_keylog_cb_func keylog;           /* kTLS, own records: TLS 1.3 secrets; or NULL */
	SSL_CTX_keylog_cb_func up_keylog;        /* the same for sessions to the upstream */
	SSL_CTX_alpn_select_cb_func alpn_select; /* the SNI object's ALPN choice */
	bool ktls;                               /* SSL_OP_ENABLE_KTLS */
};

/* hooks == NULL builds the trust sets and rules only (no SNI contexts). */
int edge_snapshot_build(struct edge_store *st, const struct edge_config *cfg,
			const struct edge_tls_hooks *hooks, struct edge_snapshot **out, char *err,
			size_t errlen);
/* CRLs from elsewhere than the store (the daemon's fetcher, crlfetch.c). */
struct edge_crl_fetched {
	X509_CRL *crl;
	X509 *anchor;   /* the uploaded CA the chains it was learned from end at */
	bool by_anchor; /* issued by that CA itself; else by an intermediate under it */
};
struct edge_crl_extra {
	struct edge_crl_fetched *v;
	size_t n;
};
/* The same, with fetched CRLs: one the anchor issued replaces that uploaded CA's stored CRL
 * when it is newer (a greater CRLNumber) or the CA has none stored; one an intermediate issued
 * joins every trust set holding its anchor (OpenSSL checks it for chains through that
 * intermediate, CRL_CHECK_ALL). */
int edge_snapshot_build_crls(struct edge_store *st, const struct edge_config *cfg,
			     const struct edge_tls_hooks *hooks, const struct edge_crl_extra *extra,
			     struct edge_snapshot **out, char *err, size_t errlen);
struct edge_snapshot *edge_snapshot_ref(struct edge_snapshot *s);
void edge_snapshot_unref(struct edge_snapshot *s);

/* Exact name first, then the wildcard one label up. NULL when none. */
const struct edge_sni *edge_snapshot_find_sni(const struct edge_snapshot *s, const char *host);
/* The trust set for the hostname a client asked for (never NULL). */
const struct edge_trust *edge_snapshot_trust(const struct edge_snapshot *s, const char *host);
enum edge_rule_action edge_snapshot_rule(const struct edge_snapshot *s, const char *host);
/* The identity rules for the hostname a client asked for: exact name first, then the
 * wildcard one label up; NULL when it has none (every verified certificate passes). */
const struct edge_authz *edge_snapshot_authz(const struct edge_snapshot *s, const char *host);
/* The CA names to send for this trust set: NULL when over EDGE_CA_HINTS_MAX. */
const STACK_OF(X509_NAME) *edge_trust_hints(const struct edge_trust *t);

#endif
