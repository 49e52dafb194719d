/*
 * Identity rules: which verified client certificates may reach a hostname
 * (authorization, after the verifier's authentication). A hostname's rules
 * are allow and deny entries, each matching one parsed field of the leaf:
 *
 *   deny wins: a certificate that matches a deny entry is refused (denied);
 *   with any allow entry present, a certificate must match one (else
 *   not_authorized); with no entries, every verified certificate is admitted
 *   (the behaviour before rules existed).
 *
 * Matching is on parsed fields (subject attributes, SAN entries, digests),
 * never on substrings of a printed name. A rule set is compiled into hash
 * sets once per snapshot: a check costs a few lookups per certificate fact,
 * whatever the number of entries. No OpenSSL state is kept between calls.
 * Modules that decide never print: errors go to the caller's buffer.
 */
#ifndef EDGE_AUTHZ_H
#define EDGE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

enum edge_authz_field {
	EDGE_AUTHZ_DN = 0,     /* "dn": the subject DN, exact, written in RFC 4514 form */
	EDGE_AUTHZ_CN,         /* "cn": a commonName attribute of the subject, exact */
	EDGE_AUTHZ_DNS,        /* "dns": a SAN dNSName; "*.example.com" matches one label */
	EDGE_AUTHZ_URI,        /* "uri": a SAN URI, exact */
	EDGE_AUTHZ_URI_PREFIX, /* "uri-prefix": a SAN URI under this prefix, at a '/' boundary */
	EDGE_AUTHZ_EMAIL,      /* "email": a SAN rfc822Name (the domain compared without case) */
	EDGE_AUTHZ_IP,         /* "ip": a SAN iPAddress: an address, or a CIDR block */
	EDGE_AUTHZ_SHA256,     /* "sha256": SHA-256 of the leaf's DER (its fingerprint) */
	EDGE_AUTHZ_SPKI,       /* "spki": SHA-256 of its SubjectPublicKeyInfo (survives renewal) */
	EDGE_AUTHZ_SKI,        /* "ski": its subject key identifier */
	EDGE_AUTHZ_CA,         /* "ca": the CA the chain is anchored at: "builtin" or an uploaded
				  CA's name */
	EDGE_AUTHZ_SERIAL,     /* "serial": its serial number; canonical in BN_bn2hex's form: whole
				  bytes, upper case ("0105" for 0x105, "0" for zero) */
	EDGE_AUTHZ_NFIELDS,
};

enum edge_authz_effect {
	EDGE_AUTHZ_ALLOW = 0,
	EDGE_AUTHZ_DENY,
};

enum edge_authz_decision {
	EDGE_AUTHZ_ADMIT = 0, /* no deny entry matched, and an allow entry did or none exists */
	EDGE_AUTHZ_NOT_AUTHORIZED, /* allow entries exist and none matched */
	EDGE_AUTHZ_DENIED,         /* a deny entry matched */
};

/* "dn", "cn", ... as above; NULL out of range. */
const char *edge_authz_field_name(enum edge_authz_field f);
/* The field of a name as above: 0, or -EINVAL. */
int edge_authz_field_parse(const char *s, enum edge_authz_field *out);
const char *edge_authz_effect_name(enum edge_authz_effect e); /* "allow", "deny" */
int edge_authz_effect_parse(const char *s, enum edge_authz_effect *out);
const char *
edge_authz_decision_name(enum edge_authz_decision d); /* "ok", "not_authorized", "denied" */

/*
 * Checks a rule's value for field f and writes its canonical form to out
 * (what the store keeps, and what the matcher compares): 0, -ENOSPC when it
 * does not fit in outlen, or -EINVAL with the reason in err (a malformed DN,
 * a URI without a scheme, a fingerprint of the wrong length, an address that
 * does not parse...). EDGE_AUTHZ_CA is only checked for form here: whether
 * the CA exists is the caller's to say. It may work in place (out == value):
 * the value is read whole before out is written.
 */
#define EDGE_AUTHZ_VALUE_MAX 1024
int edge_authz_normalize(enum edge_authz_field f, const char *value, char *out, size_t outlen,
			 char *err, size_t errlen);

/* One hostname's compiled entries. */
struct edge_authz;

struct edge_authz *edge_authz_new(void);
void edge_authz_free(struct edge_authz *a);
/* Adds an entry; value is canonical (edge_authz_normalize's); id names it in results (the
 * store's row id) and must be positive, 0 being a result's "no entry". 0, -EINVAL (id <= 0,
 * e or f out of range, value not canonical), -ENOMEM. A duplicate (e, f, value) keeps the
 * first id. */
int edge_authz_add(struct edge_authz *a, enum edge_authz_effect e, enum edge_authz_field f,
		   const char *value, int64_t id);
/* How many entries, and how many of them allow. */
size_t edge_authz_count(const struct edge_authz *a);
size_t edge_authz_allow_count(const struct edge_authz *a);

/* The chain's anchor, as the verifier found it. */
struct edge_authz_anchor {
	const char *name;         /* "builtin", an uploaded CA's name, or NULL */
	const char *trust_domain; /* its SPIFFE trust domain, or NULL when it has none */
};

/*
 * rule_id is the entry that decided, or 0 when none did: no entries, no allow entry matched,
 * or a fail-closed refusal (DENIED with the reason in text). effect and field are that
 * entry's and mean something only when rule_id != 0.
 */
struct edge_authz_result {
	enum edge_authz_decision decision;
	int64_t rule_id;
	enum edge_authz_effect effect;
	enum edge_authz_field field;
	char text[192]; /* "deny cn=bob (#12)", "no allow entry matched", a refusal's reason, "" */
};

/*
 * Runs a verified leaf through the entries (a NULL or empty set admits, whatever
 * the leaf). A SAN URI with the spiffe scheme matches a uri or uri-prefix entry
 * only when its trust domain is the anchor's (anchor->trust_domain): a SPIFFE ID
 * is believed only from its own trust domain's CA. A SAN that holds a NUL byte
 * or is not valid for its type never matches. With entries, a NULL leaf, or one
 * the check cannot read whole (more than 256 SAN entries or 64 subject
 * attributes, an unreadable subjectAltName), is DENIED with rule_id 0.
 * 0, -EINVAL (res NULL), or -ENOMEM (then res is no verdict: it reads as a bare
 * ADMIT, so a caller must refuse on a non-zero return).
 */
int edge_authz_check(const struct edge_authz *a, X509 *leaf, const struct edge_authz_anchor *anchor,
		     struct edge_authz_result *res);

#endif
