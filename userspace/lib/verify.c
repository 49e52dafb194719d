#include "verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

static const char *const reason_names[EDGE_REASON_COUNT] = {
	[EDGE_REASON_OK] = "ok",
	[EDGE_REASON_NO_CLIENT_CERT] = "no_client_cert",
	[EDGE_REASON_CERT_EXPIRED] = "cert_expired",
	[EDGE_REASON_CERT_NOT_YET_VALID] = "cert_not_yet_valid",
	[EDGE_REASON_UNKNOWN_CA] = "unknown_ca",
	[EDGE_REASON_CERT_REVOKED] = "cert_revoked",
	[EDGE_REASON_CRL_EXPIRED] = "crl_expired",
	[EDGE_REASON_INVALID_PURPOSE] = "invalid_purpose",
	[EDGE_REASON_LEAF_IS_CA] = "leaf_is_ca",
	[EDGE_REASON_CHAIN_TOO_LONG] = "chain_too_long",
	[EDGE_REASON_BAD_SIGNATURE] = "bad_signature",
	[EDGE_REASON_WEAK_KEY] = "weak_key",
	[EDGE_REASON_WEAK_SIGNATURE] = "weak_signature",
	[EDGE_REASON_VERIFY_FAILED] = "verify_failed",
	[EDGE_REASON_NOT_AUTHORIZED] = "not_authorized",
	[EDGE_REASON_DENIED] = "denied",
};

const char *edge_reason_name(enum edge_reason r)
{
	return (unsigned int)r < EDGE_REASON_COUNT ? reason_names[r] : "?";
}

static enum edge_reason reason_from_x509(int err)
{
	switch (err) {
	case X509_V_OK:
		return EDGE_REASON_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return EDGE_REASON_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return EDGE_REASON_CERT_NOT_YET_VALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return EDGE_REASON_UNKNOWN_CA;
	case X509_V_ERR_CERT_REVOKED:
		return EDGE_REASON_CERT_REVOKED;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return EDGE_REASON_CRL_EXPIRED;
	case X509_V_ERR_INVALID_PURPOSE:
		return EDGE_REASON_INVALID_PURPOSE;
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		return EDGE_REASON_CHAIN_TOO_LONG;
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
		return EDGE_REASON_WEAK_KEY;
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return EDGE_REASON_WEAK_SIGNATURE;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		return EDGE_REASON_BAD_SIGNATURE;
	default:
		return EDGE_REASON_VERIFY_FAILED;
	}
}

/* "CN=alice,O=Example" (RFC 2253, as nginx's $ssl_client_s_dn). */
static void name_rfc2253(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	buf[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

void edge_verify_describe(X509 *leaf, struct edge_verify_result *res)
{
	const ASN1_INTEGER *sn;
	struct tm tm = { 0 };
	BIGNUM *bn;

	res->subject[0] = res->issuer[0] = res->serial[0] = '\0';
	if (!leaf)
		return;
	name_rfc2253(X509_get_subject_name(leaf), res->subject, sizeof(res->subject));
	name_rfc2253(X509_get_issuer_name(leaf), res->issuer, sizeof(res->issuer));
	ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm);
	res->not_after = timegm(&tm);
	sn = X509_get0_serialNumber(leaf);
	bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	if (bn) {
		char *hex = BN_bn2hex(bn);

		if (hex)
			snprintf(res->serial, sizeof(res->serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
	}
}

static void fail(struct edge_verify_result *res, enum edge_reason reason, int x509_err, int depth,
		 const char *detail)
{
	res->reason = reason;
	res->x509_err = x509_err;
	res->err_depth = depth;
	snprintf(res->detail, sizeof(res->detail), "%s",
		 detail ? detail : X509_verify_cert_error_string(x509_err));
}

static int cmp_serial(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const struct edge_crl_ref *crl_for(const struct edge_trust *t, X509 *issuer)
{
	for (size_t i = 0; i < t->n_crls; i++)
		if (!X509_cmp(t->crls[i].issuer, issuer))
			return &t->crls[i];
	return NULL;
}

/* Checks that OpenSSL's chain verification does not make (or makes only
 * loosely), on the verified chain. */
static int check_chain(const struct edge_trust *t, STACK_OF(X509) *chain, X509 *leaf, time_t at,
		       struct edge_verify_result *res)
{
	X509 *anchor = sk_X509_value(chain, sk_X509_num(chain) - 1);
	X509 *issuer = sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
	const struct edge_crl_ref *cr;

	res->builtin_anchor = t->builtin && !X509_cmp(anchor, t->builtin);
	for (size_t i = 0; i < t->n_cas; i++) {
		if (!X509_cmp(anchor, t->cas[i].cert)) {
			res->anchor = t->cas[i].name;
			res->trust_domain = t->cas[i].trust_domain;
			break;
		}
	}

	if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
		fail(res, EDGE_REASON_INVALID_PURPOSE, X509_V_ERR_INVALID_PURPOSE, 0,
		     "keyUsage does not allow digitalSignature");
		return -EACCES;
	}
	/* The built-in CA's revocations: a sorted serial list, no CRL needed. */
	if (res->builtin_anchor && t->n_revoked) {
		const char *key = res->serial;

		if (bsearch(&key, t->revoked, t->n_revoked, sizeof(char *), cmp_serial)) {
			fail(res, EDGE_REASON_CERT_REVOKED, X509_V_ERR_CERT_REVOKED, 0, NULL);
			return -EACCES;
		}
	}
	/* An uploaded CA's CRL. Never fail open: a stale CRL refuses. */
	if (issuer && (cr = crl_for(t, issuer))) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(cr->crl);
		X509_REVOKED *rev = NULL;
		time_t now = at ? at : time(NULL);

		if (next && X509_cmp_time(next, &now) < 0) {
			fail(res, EDGE_REASON_CRL_EXPIRED, X509_V_ERR_CRL_HAS_EXPIRED, 0, NULL);
			return -EACCES;
		}
		if (X509_CRL_get0_by_cert(cr->crl, &rev, leaf) == 1) {
			fail(res, EDGE_REASON_CERT_REVOKED, X509_V_ERR_CERT_REVOKED, 0, NULL);
			return -EACCES;
		}
	}
	return 0;
}

int edge_verify_chain(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
		      time_t at, struct edge_verify_result *res)
{
	X509_STORE_CTX *ctx;
	X509_VERIFY_PARAM *param;
	int rc, ok;

	memset(res, 0, sizeof(*res));
	if (!leaf) {
		fail(res, EDGE_REASON_NO_CLIENT_CERT, X509_V_OK, 0, "no client certificate");
		return -EACCES;
	}
	edge_verify_describe(leaf, res);
	/* OpenSSL 3.0 accepts a CA certificate as a client leaf: named first,
	 * before the purpose check can hide it behind a vaguer reason. */
	if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
		fail(res, EDGE_REASON_LEAF_IS_CA, X509_V_ERR_INVALID_CA, 0,
		     "client certificate is a CA certificate (basicConstraints CA:TRUE)");
		return -EACCES;
	}
	ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, trust->store, leaf, untrusted)) {
		X509_STORE_CTX_free(ctx);
		return -ENOMEM;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	X509_VERIFY_PARAM_set_depth(param, trust->depth);
	/* 112-bit security: RSA and DH below 2048 bits and SHA-1 signatures refused. */
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (at)
		X509_VERIFY_PARAM_set_time(param, at);
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		int err = X509_STORE_CTX_get_error(ctx);

		fail(res, reason_from_x509(err), err, X509_STORE_CTX_get_error_depth(ctx), NULL);
		rc = -EACCES;
	} else {
		rc = check_chain(trust, X509_STORE_CTX_get0_chain(ctx), leaf, at, res);
	}
	if (!rc) {
		res->reason = EDGE_REASON_OK;
		res->x509_err = X509_V_OK;
		snprintf(res->detail, sizeof(res->detail), "ok");
	}
	X509_STORE_CTX_free(ctx);
	return rc;
}

bool edge_trust_revokes(const struct edge_trust *t, X509 *leaf, const char *serial,
			bool builtin_anchor)
{
	if (builtin_anchor)
		return t->builtin && t->n_revoked &&
		       bsearch(&serial, t->revoked, t->n_revoked, sizeof(char *), cmp_serial);
	for (size_t i = 0; i < t->n_crls; i++) {
		X509_REVOKED *rev = NULL;

		if (!X509_NAME_cmp(X509_CRL_get_issuer(t->crls[i].crl),
				   X509_get_issuer_name(leaf)) &&
		    X509_CRL_get0_by_cert(t->crls[i].crl, &rev, leaf) == 1)
			return true;
	}
	return false;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Appends "TAG:value" to the SAN list; false once it is full (then ends it with "..."). */
static bool san_put(char *buf, size_t len, size_t *off, const char *tag, const char *v, size_t vl)
{
	size_t need = (*off ? 1 : 0) + strlen(tag) + 1 + vl;

	if (*off + need + 4 > len) {
		snprintf(buf + *off, len - *off, "%s...", *off ? "," : "");
		*off = len;
		return false;
	}
	*off += (size_t)snprintf(buf + *off, len - *off, "%s%s:%.*s", *off ? "," : "", tag, (int)vl,
				 v);
	return true;
}

void edge_verify_audit(X509 *leaf, struct edge_cert_audit *out)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	GENERAL_NAMES *gens;
	size_t off = 0;
	int n;

	memset(out, 0, sizeof(*out));
	if (!leaf)
		return;
	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) && mdlen == 32)
		hex(md, 32, out->sha256);
	/* The certificate's own SubjectPublicKeyInfo, as it was read: i2d_PUBKEY would encode the
	 * key again through OpenSSL 3.0's encoder framework, a tenth of a handshake's cost. */
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
	if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) && mdlen == 32)
		hex(md, 32, out->spki);
	OPENSSL_free(der);
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && off < sizeof(out->sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[64];
		const char *tag = NULL, *v = NULL;
		size_t vl = 0;

		switch (g->type) {
		case GEN_DNS:
		case GEN_URI:
		case GEN_EMAIL:
			tag = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
			v = (const char *)ASN1_STRING_get0_data(g->d.ia5);
			vl = (size_t)ASN1_STRING_length(g->d.ia5);
			/* printable ASCII only: a NUL or a control byte would forge the line */
			for (size_t k = 0; k < vl; k++)
				if ((unsigned char)v[k] < 0x21 || (unsigned char)v[k] > 0x7e ||
				    v[k] == ',' || v[k] == '"')
					v = NULL;
			break;
		case GEN_IPADD:
			tag = "IP";
			if (ASN1_STRING_length(g->d.ip) == 4 || ASN1_STRING_length(g->d.ip) == 16) {
				const unsigned char *a = ASN1_STRING_get0_data(g->d.ip);

				if (inet_ntop(ASN1_STRING_length(g->d.ip) == 4 ? AF_INET : AF_INET6,
					      a, ip, sizeof(ip))) {
					v = ip;
					vl = strlen(ip);
				}
			}
			break;
		default:
			break;
		}
		if (tag)
			san_put(out->sans, sizeof(out->sans), &off, tag, v ? v : "(unprintable)",
				v ? vl : 13);
	}
	GENERAL_NAMES_free(gens);
}

int edge_verify_authorize(const struct edge_authz *rules, X509 *leaf,
			  struct edge_verify_result *res)
{
	const struct edge_authz_anchor a = { .name = res->anchor,
					     .trust_domain = res->trust_domain };
	int rc = edge_authz_check(rules, leaf, &a, &res->authz);

	if (rc)
		return rc;
	if (res->authz.decision == EDGE_AUTHZ_ADMIT)
		return 0;
	fail(res,
	     res->authz.decision == EDGE_AUTHZ_DENIED ? EDGE_REASON_DENIED
						      : EDGE_REASON_NOT_AUTHORIZED,
	     EDGE_X509_ERR_NOT_AUTHORIZED, 0, res->authz.text);
	return -EACCES;
}

int edge_verify_x509_error(const struct edge_verify_result *res)
{
	return res->x509_err ? res->x509_err : X509_V_ERR_APPLICATION_VERIFICATION;
}

struct edge_trust *edge_trust_new(int depth)
{
	struct edge_trust *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->store = X509_STORE_new();
	if (!t->store) {
		free(t);
		return NULL;
	}
	t->depth = depth;
	return t;
}

int edge_trust_add_ca(struct edge_trust *t, X509 *ca, bool builtin)
{
	return edge_trust_add_named_ca(t, ca, builtin, builtin ? "builtin" : NULL, NULL);
}

int edge_trust_add_named_ca(struct edge_trust *t, X509 *ca, bool builtin, const char *name,
			    const char *trust_domain)
{
	struct edge_trust_ca *n;
	X509_NAME *subject;
	int der;

	/* A CA bound to a hostname and to its wildcard comes twice: once is enough. */
	for (size_t i = 0; i < t->n_cas; i++)
		if (!X509_cmp(t->cas[i].cert, ca))
			return 0;
	n = realloc(t->cas, (t->n_cas + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->cas = n;
	n = &t->cas[t->n_cas];
	memset(n, 0, sizeof(*n));
	if ((name && !(n->name = strdup(name))) ||
	    (trust_domain && !(n->trust_domain = strdup(trust_domain)))) {
		free(n->name);
		return -ENOMEM;
	}
	if (!t->ca_names && !(t->ca_names = sk_X509_NAME_new_null()))
		goto nomem;
	subject = X509_NAME_dup(X509_get_subject_name(ca));
	if (!subject || !sk_X509_NAME_push(t->ca_names, subject)) {
		X509_NAME_free(subject);
		goto nomem;
	}
	der = i2d_X509_NAME(subject, NULL);
	t->ca_names_der += der > 0 ? (size_t)der : 0;
	if (!X509_STORE_add_cert(t->store, ca))
		return -EINVAL;
	X509_up_ref(ca);
	n->cert = ca;
	t->n_cas++;
	if (builtin) {
		X509_up_ref(ca);
		X509_free(t->builtin);
		t->builtin = ca;
	}
	return 0;
nomem:
	free(n->name);
	free(n->trust_domain);
	return -ENOMEM;
}

int edge_trust_add_crl(struct edge_trust *t, X509 *issuer, X509_CRL *crl)
{
	struct edge_crl_ref *n = realloc(t->crls, (t->n_crls + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	t->crls = n;
	X509_up_ref(issuer);
	X509_CRL_up_ref(crl);
	t->crls[t->n_crls].issuer = issuer;
	t->crls[t->n_crls].crl = crl;
	t->n_crls++;
	return 0;
}

int edge_trust_set_revoked(struct edge_trust *t, char *const *serials, size_t n)
{
	char **copy = n ? calloc(n, sizeof(char *)) : NULL;

	if (n && !copy)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(serials[i]);
		if (!copy[i]) {
			while (i--)
				free(copy[i]);
			free(copy);
			return -ENOMEM;
		}
	}
	if (n)
		qsort(copy, n, sizeof(char *), cmp_serial);
	t->revoked = copy;
	t->n_revoked = n;
	return 0;
}

void edge_trust_free(struct edge_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	X509_free(t->builtin);
	for (size_t i = 0; i < t->n_cas; i++) {
		X509_free(t->cas[i].cert);
		free(t->cas[i].name);
		free(t->cas[i].trust_domain);
	}
	free(t->cas);
	sk_X509_NAME_pop_free(t->ca_names, X509_NAME_free);
	for (size_t i = 0; i < t->n_revoked; i++)
		free(t->revoked[i]);
	free(t->revoked);
	for (size_t i = 0; i < t->n_crls; i++) {
		X509_free(t->crls[i].issuer);
		X509_CRL_free(t->crls[i].crl);
	}
	free(t->crls);
	free(t);
}
