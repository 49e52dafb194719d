/*
 * The verifier's own RFC 5280 profile checks, beside OpenSSL's (verify.c runs
 * them on the chain OpenSSL built and accepted): what X509_V_FLAG_X509_STRICT
 * leaves out. Each refusal has a stable check name (docs/verify.md lists them
 * with the rule they come from). And the CRL checks: what makes a CRL
 * unusable here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "verify_int.h"

static int refuse(struct edge_verify_check *out, int depth, const char *check, const char *detail)
{
	out->depth = depth;
	snprintf(out->check, sizeof(out->check), "%s", check);
	snprintf(out->detail, sizeof(out->detail), "%s", detail);
	return -EACCES;
}

/* A DNS name in preferred name syntax (RFC 1034 3.5, RFC 5280 4.2.1.6): labels of
 * letters, digits and hyphens (underscores tolerated, as private names carry them),
 * 1 to 63 octets, not starting or ending with a hyphen; 253 octets at most; no empty
 * label (so no leading or trailing dot). wildcard: a first label of "*" is allowed. */
static bool dns_name_ok(const unsigned char *p, size_t n, bool wildcard)
{
	size_t label = 0;

	if (!n || n > 253)
		return false;
	if (wildcard && n > 2 && p[0] == '*' && p[1] == '.') {
		p += 2;
		n -= 2;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = i < n ? p[i] : '.';

		if (ch == '.') {
			if (!label || label > 63 || p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (!label && ch == '-')
			return false;
		label++;
	}
	return true;
}

/* local@domain (RFC 5280 4.2.1.6, RFC 5321's Mailbox without quoting): a non-empty
 * local part of printable ASCII without '@', and a DNS name. */
static bool email_ok(const unsigned char *p, size_t n)
{
	const unsigned char *at = memchr(p, '@', n);

	if (!at || at == p)
		return false;
	for (const unsigned char *q = p; q < at; q++)
		if (*q <= 0x20 || *q >= 0x7f)
			return false;
	return dns_name_ok(at + 1, n - (size_t)(at + 1 - p), false);
}

/* scheme ":" rest (RFC 3986 3.1): a letter, then letters, digits, + - . ; no
 * spaces or control bytes anywhere. */
static bool uri_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	if (!n || !((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z'))
		return false;
	while (i < n && p[i] != ':') {
		unsigned char ch = p[i++];

		if (!(((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '+' || ch == '-' || ch == '.'))
			return false;
	}
	if (i == n || i + 1 == n)
		return false;
	for (; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

static int check_sans(X509 *x, int depth, struct edge_verify_check *out)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	for (int i = 0; !rc && gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *v;
		size_t n;

		switch (g->type) {
		case GEN_DNS:
			v = ASN1_STRING_get0_data(g->d.ia5);
			n = (size_t)ASN1_STRING_length(g->d.ia5);
			if (!dns_name_ok(v, n, depth == 0))
				rc = refuse(
					out, depth, "invalid_san",
					"a dNSName of the subjectAltName is not a valid DNS name");
			break;
		case GEN_EMAIL:
			v = ASN1_STRING_get0_data(g->d.ia5);
			n = (size_t)ASN1_STRING_length(g->d.ia5);
			if (!email_ok(v, n))
				rc = refuse(out, depth, "invalid_san",
					    "an rfc822Name of the subjectAltName is not a mailbox");
			break;
		case GEN_URI:
			v = ASN1_STRING_get0_data(g->d.ia5);
			n = (size_t)ASN1_STRING_length(g->d.ia5);
			if (!uri_ok(v, n))
				rc = refuse(out, depth, "invalid_san",
					    "a URI of the subjectAltName is not a URI");
			break;
		case GEN_IPADD:
			if (ASN1_STRING_length(g->d.ip) != 4 && ASN1_STRING_length(g->d.ip) != 16)
				rc = refuse(out, depth, "invalid_san",
					    "an iPAddress of the subjectAltName is neither 4 nor "
					    "16 octets");
			break;
		default:
			break;
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* An iPAddress subtree: address then mask, 8 or 32 octets, the mask's ones contiguous. */
static bool ip_subtree_ok(const ASN1_OCTET_STRING *s)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *p = ASN1_STRING_get0_data(s);
	bool zero = false;

	if (n != 8 && n != 32)
		return false;
	for (int i = n / 2; i < n; i++)
		for (int b = 7; b >= 0; b--) {
			bool one = p[i] >> b & 1;

			if (one && zero)
				return false;
			zero = zero || !one;
		}
	return true;
}

static int check_subtrees(STACK_OF(GENERAL_SUBTREE) *st, int depth, struct edge_verify_check *out)
{
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++) {
		const GENERAL_SUBTREE *s = sk_GENERAL_SUBTREE_value(st, i);
		const GENERAL_NAME *b = s->base;

		/* RFC 5280 4.2.1.10: minimum MUST be zero, maximum MUST be absent. */
		if (s->maximum || (s->minimum && ASN1_INTEGER_get(s->minimum) != 0))
			return refuse(out, depth, "name_constraints_malformed",
				      "a name-constraint subtree has a minimum or maximum");
		if (b->type == GEN_DNS) {
			const unsigned char *v = ASN1_STRING_get0_data(b->d.ia5);
			size_t n = (size_t)ASN1_STRING_length(b->d.ia5);

			/* "" constrains every name; otherwise a DNS name, no leading period */
			if (n && !dns_name_ok(v, n, false))
				return refuse(out, depth, "name_constraints_malformed",
					      "a dNSName subtree is not a DNS name (a leading "
					      "period is the URI form, not the dNSName one)");
		} else if (b->type == GEN_IPADD && !ip_subtree_ok(b->d.ip)) {
			return refuse(out, depth, "name_constraints_malformed",
				      "an iPAddress subtree is not an address and a contiguous "
				      "mask of 8 or 32 octets");
		}
	}
	return 0;
}

static int check_name_constraints(X509 *x, int depth, struct edge_verify_check *out)
{
	int crit = -1;
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL);
	int rc = 0;

	if (!nc)
		return crit == -1 ? 0
				  : refuse(out, depth, "malformed_extension",
					   "the nameConstraints extension does not decode");
	if (depth == 0)
		rc = refuse(out, depth, "name_constraints_in_leaf",
			    "an end-entity certificate carries nameConstraints (RFC 5280 "
			    "4.2.1.10: CA certificates only)");
	else if (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
		 sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0)
		rc = refuse(out, depth, "name_constraints_empty",
			    "nameConstraints with neither permitted nor excluded subtrees");
	else if (!(rc = check_subtrees(nc->permittedSubtrees, depth, out)))
		rc = check_subtrees(nc->excludedSubtrees, depth, out);
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

/* Extensions OpenSSL does not decode while it caches a certificate's extensions
 * (those it does, malformed, make EXFLAG_INVALID and its invalid_extension). */
static const int decoded_here[] = {
	NID_info_access,        NID_sinfo_access,    NID_certificate_policies,
	NID_policy_constraints, NID_policy_mappings, NID_inhibit_any_policy,
	NID_issuer_alt_name,
};

static int check_extensions(X509 *x, int depth, struct edge_verify_check *out)
{
	for (size_t k = 0; k < sizeof(decoded_here) / sizeof(decoded_here[0]); k++) {
		int crit = -1;
		void *v = X509_get_ext_d2i(x, decoded_here[k], &crit, NULL);
		const X509V3_EXT_METHOD *m = X509V3_EXT_get_nid(decoded_here[k]);

		if (v && m && m->it)
			ASN1_item_free(v, ASN1_ITEM_ptr(m->it));
		else if (v && m && m->ext_free)
			m->ext_free(v);
		if (!v && crit != -1) {
			char why[120];

			snprintf(why, sizeof(why), "the %s extension %s",
				 OBJ_nid2ln(decoded_here[k]),
				 crit == -2 ? "appears twice" : "does not decode");
			ERR_clear_error();
			return refuse(out, depth, "malformed_extension", why);
		}
		/* RFC 5280 4.2.1.11: conforming CAs MUST mark policyConstraints critical. */
		if (v && decoded_here[k] == NID_policy_constraints && !crit)
			return refuse(out, depth, "policy_constraints_not_critical",
				      "policyConstraints is not critical");
	}
	return 0;
}

static int check_serial(X509 *x, int depth, struct edge_verify_check *out)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	int der = sn ? i2d_ASN1_INTEGER(sn, NULL) : -1;

	/* RFC 5280 4.1.2.2: a positive integer of at most 20 octets. */
	if (!sn || der < 2)
		return refuse(out, depth, "serial_invalid", "the serial number does not encode");
	if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
		return refuse(out, depth, "serial_negative", "the serial number is negative");
	if (ASN1_STRING_length(sn) == 0 ||
	    (ASN1_STRING_length(sn) == 1 && !*ASN1_STRING_get0_data(sn)))
		return refuse(out, depth, "serial_zero", "the serial number is zero");
	/* content octets: the DER minus its tag and length */
	if (der - (der > 129 ? 3 : 2) > 20)
		return refuse(out, depth, "serial_too_long",
			      "the serial number is longer than 20 octets");
	return 0;
}

static int check_key(X509 *x, int depth, struct edge_verify_check *out)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);

	if (!pk)
		return refuse(out, depth, "malformed_key", "the public key does not decode");
	/* DSA: gone from TLS 1.3 and from the CA/B profile. */
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_DSA)
		return refuse(out, depth, "dsa_key", "a DSA key (not accepted)");
	/* CA/B BR 6.1.5: the modulus size in bits is divisible by 8. */
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) % 8)
		return refuse(out, depth, "rsa_modulus_size",
			      "the RSA modulus size is not a multiple of 8 bits");
	return 0;
}

int edge_verify_profile(STACK_OF(X509) *chain, struct edge_verify_check *out)
{
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		int rc;

		if (X509_get_version(x) != X509_VERSION_3)
			return refuse(out, i, "not_v3",
				      "a version 1 or 2 certificate in the path (only v3 is "
				      "accepted)");
		if ((rc = check_serial(x, i, out)) || (rc = check_key(x, i, out)) ||
		    (rc = check_extensions(x, i, out)) ||
		    (rc = check_name_constraints(x, i, out)) || (rc = check_sans(x, i, out)))
			return rc;
	}
	return 0;
}

/* CRL extensions OpenSSL's CRL check handles when critical (the rest make it
 * refuse with unhandled_critical_crl_extension): the same list here, so that
 * `ca crl set` refuses what verification would. */
static bool crl_ext_handled(int nid)
{
	return nid == NID_issuing_distribution_point || nid == NID_authority_key_identifier ||
	       nid == NID_crl_number;
}

const char *edge_crl_problem(X509_CRL *crl, char *buf, size_t len)
{
	const STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
	ASN1_INTEGER *num, *delta;
	bool is_delta;
	int crit = -1;

	delta = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
	is_delta = delta || crit != -1;
	ASN1_INTEGER_free(delta);
	if (is_delta) {
		snprintf(buf, len,
			 "crl_delta: a delta CRL (deltaCRLIndicator); upload the complete CRL");
		ERR_clear_error();
		return buf;
	}
	crit = -1;
	for (int i = 0; i < X509_CRL_get_ext_count(crl); i++) {
		X509_EXTENSION *e = X509_CRL_get_ext(crl, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));

		if (X509_EXTENSION_get_critical(e) && !crl_ext_handled(nid)) {
			char oid[80];

			OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(e), 1);
			snprintf(buf, len,
				 "crl_unhandled_critical_extension: the CRL has a critical "
				 "extension this verifier does not handle (%s)",
				 oid);
			return buf;
		}
	}
	for (int i = 0; i < sk_X509_REVOKED_num(revs); i++) {
		const STACK_OF(X509_EXTENSION) *exts =
			X509_REVOKED_get0_extensions(sk_X509_REVOKED_value(revs, i));

		for (int k = 0; k < sk_X509_EXTENSION_num(exts); k++) {
			X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, k);

			/* an indirect CRL's certificateIssuer is the one OpenSSL knows */
			if (X509_EXTENSION_get_critical(e) &&
			    OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_certificate_issuer) {
				snprintf(buf, len,
					 "crl_unhandled_critical_extension: an entry of the CRL "
					 "has a critical extension this verifier does not "
					 "handle");
				return buf;
			}
		}
	}
	/* RFC 5280 5.2.3: conforming CRL issuers MUST include the CRL number. */
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if (!num) {
		snprintf(buf, len,
			 crit == -1 ? "crl_number_missing: the CRL has no CRLNumber"
				    : "crl_number_missing: the CRL's CRLNumber "
				      "does not decode");
		return buf;
	}
	ASN1_INTEGER_free(num);
	return NULL;
}

int edge_crl_number_cmp(X509_CRL *a, X509_CRL *b)
{
	ASN1_INTEGER *na = X509_CRL_get_ext_d2i(a, NID_crl_number, NULL, NULL);
	ASN1_INTEGER *nb = X509_CRL_get_ext_d2i(b, NID_crl_number, NULL, NULL);
	int rc = na && nb ? ASN1_INTEGER_cmp(na, nb) : na ? 1 : nb ? -1 : 0;

	ASN1_INTEGER_free(na);
	ASN1_INTEGER_free(nb);
	ERR_clear_error();
	return rc;
}
