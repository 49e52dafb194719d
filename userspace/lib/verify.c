#include "verify.h"
#include "verify_int.h"

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
	[EDGE_REASON_NONCONFORMING] = "nonconforming",
	[EDGE_REASON_CRL_INVALID] = "crl_invalid",
};

const char *edge_reason_name(enum edge_reason r)
{
	return (unsigned int)r < EDGE_REASON_COUNT ? reason_names[r] : "?";
}

/* OpenSSL's errors as the verifier names them: a reason (the counters' and the
 * policy's) and a check (the stable name of what refused, for logs and --json). */
static const struct {
	int err;
	enum edge_reason reason;
	const char *check;
} x509_errors[] = {
	{ X509_V_ERR_CERT_HAS_EXPIRED, EDGE_REASON_CERT_EXPIRED, "cert_expired" },
	{ X509_V_ERR_CERT_NOT_YET_VALID, EDGE_REASON_CERT_NOT_YET_VALID, "cert_not_yet_valid" },
	{ X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, EDGE_REASON_NONCONFORMING, "bad_validity" },
	{ X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, EDGE_REASON_NONCONFORMING, "bad_validity" },
	{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, EDGE_REASON_UNKNOWN_CA, "unknown_ca" },
	{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, EDGE_REASON_UNKNOWN_CA, "unknown_ca" },
	{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, EDGE_REASON_UNKNOWN_CA, "self_signed" },
	{ X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, EDGE_REASON_UNKNOWN_CA, "untrusted_root" },
	{ X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, EDGE_REASON_UNKNOWN_CA, "unknown_ca" },
	{ X509_V_ERR_CERT_REVOKED, EDGE_REASON_CERT_REVOKED, "cert_revoked" },
	{ X509_V_ERR_CRL_HAS_EXPIRED, EDGE_REASON_CRL_EXPIRED, "crl_expired" },
	{ X509_V_ERR_CRL_NOT_YET_VALID, EDGE_REASON_CRL_INVALID, "crl_not_yet_valid" },
	{ X509_V_ERR_UNABLE_TO_GET_CRL, EDGE_REASON_CRL_INVALID, "crl_unusable" },
	{ X509_V_ERR_CRL_SIGNATURE_FAILURE, EDGE_REASON_CRL_INVALID, "crl_bad_signature" },
	{ X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE, EDGE_REASON_CRL_INVALID,
	  "crl_bad_signature" },
	{ X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION, EDGE_REASON_CRL_INVALID,
	  "crl_unhandled_critical_extension" },
	{ X509_V_ERR_DIFFERENT_CRL_SCOPE, EDGE_REASON_CRL_INVALID, "crl_scope" },
	{ X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, EDGE_REASON_CRL_INVALID, "crl_issuer" },
	{ X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, EDGE_REASON_CRL_INVALID, "crl_issuer_no_crl_sign" },
	{ X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, EDGE_REASON_CRL_INVALID, "crl_bad_dates" },
	{ X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD, EDGE_REASON_CRL_INVALID, "crl_bad_dates" },
	{ X509_V_ERR_CRL_PATH_VALIDATION_ERROR, EDGE_REASON_CRL_INVALID, "crl_path" },
	{ X509_V_ERR_INVALID_PURPOSE, EDGE_REASON_INVALID_PURPOSE, "invalid_purpose" },
	{ X509_V_ERR_CERT_CHAIN_TOO_LONG, EDGE_REASON_CHAIN_TOO_LONG, "chain_too_long" },
	{ X509_V_ERR_PATH_LENGTH_EXCEEDED, EDGE_REASON_CHAIN_TOO_LONG, "path_length_exceeded" },
	{ X509_V_ERR_EE_KEY_TOO_SMALL, EDGE_REASON_WEAK_KEY, "weak_key" },
	{ X509_V_ERR_CA_KEY_TOO_SMALL, EDGE_REASON_WEAK_KEY, "weak_key" },
	{ X509_V_ERR_CA_MD_TOO_WEAK, EDGE_REASON_WEAK_SIGNATURE, "weak_signature" },
	{ X509_V_ERR_CERT_SIGNATURE_FAILURE, EDGE_REASON_BAD_SIGNATURE, "bad_signature" },
	{ X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY, EDGE_REASON_BAD_SIGNATURE,
	  "bad_signature" },
	{ X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE, EDGE_REASON_BAD_SIGNATURE, "bad_signature" },
	/* X509_V_FLAG_X509_STRICT's RFC 5280 checks */
	{ X509_V_ERR_INVALID_CA, EDGE_REASON_NONCONFORMING, "invalid_ca" },
	{ X509_V_ERR_INVALID_EXTENSION, EDGE_REASON_NONCONFORMING, "malformed_extension" },
	{ X509_V_ERR_INVALID_NON_CA, EDGE_REASON_NONCONFORMING, "invalid_non_ca" },
	{ X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, EDGE_REASON_NONCONFORMING,
	  "unhandled_critical_extension" },
	{ X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA, EDGE_REASON_NONCONFORMING,
	  "path_length_in_non_ca" },
	{ X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN, EDGE_REASON_NONCONFORMING,
	  "path_length_without_key_cert_sign" },
	{ X509_V_ERR_CA_BCONS_NOT_CRITICAL, EDGE_REASON_NONCONFORMING,
	  "ca_basic_constraints_not_critical" },
	{ X509_V_ERR_CA_CERT_MISSING_KEY_USAGE, EDGE_REASON_NONCONFORMING, "ca_key_usage_missing" },
	{ X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA, EDGE_REASON_NONCONFORMING,
	  "key_cert_sign_in_non_ca" },
	{ X509_V_ERR_ISSUER_NAME_EMPTY, EDGE_REASON_NONCONFORMING, "issuer_name_empty" },
	{ X509_V_ERR_SUBJECT_NAME_EMPTY, EDGE_REASON_NONCONFORMING, "subject_name_empty" },
	{ X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL, EDGE_REASON_NONCONFORMING,
	  "san_not_critical_with_empty_subject" },
	{ X509_V_ERR_EMPTY_SUBJECT_ALT_NAME, EDGE_REASON_NONCONFORMING, "san_empty" },
	{ X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY, EDGE_REASON_NONCONFORMING,
	  "signature_algorithm_mismatch" },
	{ X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL, EDGE_REASON_NONCONFORMING,
	  "authority_key_id_critical" },
	{ X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL, EDGE_REASON_NONCONFORMING,
	  "subject_key_id_critical" },
	{ X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER, EDGE_REASON_NONCONFORMING,
	  "authority_key_id_missing" },
	{ X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER, EDGE_REASON_NONCONFORMING,
	  "subject_key_id_missing" },
	{ X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3, EDGE_REASON_NONCONFORMING, "not_v3" },
	{ X509_V_ERR_EC_KEY_EXPLICIT_PARAMS, EDGE_REASON_NONCONFORMING, "ec_explicit_params" },
	{ X509_V_ERR_PERMITTED_VIOLATION, EDGE_REASON_NONCONFORMING, "name_not_permitted" },
	{ X509_V_ERR_EXCLUDED_VIOLATION, EDGE_REASON_NONCONFORMING, "name_excluded" },
	{ X509_V_ERR_SUBTREE_MINMAX, EDGE_REASON_NONCONFORMING, "name_constraints_malformed" },
	{ X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE, EDGE_REASON_NONCONFORMING,
	  "name_constraints_unsupported" },
	{ X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, EDGE_REASON_NONCONFORMING,
	  "name_constraints_unsupported" },
	{ X509_V_ERR_UNSUPPORTED_NAME_SYNTAX, EDGE_REASON_NONCONFORMING, "invalid_san" },
	{ X509_V_ERR_NO_EXPLICIT_POLICY, EDGE_REASON_NONCONFORMING, "no_explicit_policy" },
	{ X509_V_ERR_INVALID_POLICY_EXTENSION, EDGE_REASON_NONCONFORMING, "malformed_extension" },
};

static enum edge_reason reason_from_x509(int err, const char **check)
{
	*check = "verify_failed";
	if (err == X509_V_OK) {
		*check = "";
		return EDGE_REASON_OK;
	}
	for (size_t i = 0; i < sizeof(x509_errors) / sizeof(x509_errors[0]); i++)
		if (x509_errors[i].err == err) {
			*check = x509_errors[i].check;
			return x509_errors[i].reason;
		}
	return EDGE_REASON_VERIFY_FAILED;
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
		 const char *check, const char *detail)
{
	res->reason = reason;
	res->x509_err = x509_err;
	res->err_depth = depth;
	snprintf(res->check, sizeof(res->check), "%s", check ? check : edge_reason_name(reason));
	snprintf(res->detail, sizeof(res->detail), "%s",
		 detail ? detail : X509_verify_cert_error_string(x509_err));
}

static int cmp_serial(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A CRL is found by its issuer's name, as OpenSSL finds it. */
const struct edge_crl_ref *edge_trust_crl_for(const struct edge_trust *t, const X509_NAME *issuer)
{
	for (size_t i = 0; i < t->n_crls; i++)
		if (!X509_NAME_cmp(X509_CRL_get_issuer(t->crls[i].crl), issuer))
			return &t->crls[i];
	return NULL;
}

/* One verification's facts for the callback OpenSSL calls on each error. */
struct verify_run {
	const struct edge_trust *t;
	time_t now;
};

/* OpenSSL's errors the verifier overrides, each for a reason of RFC 5280's. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	const struct verify_run *v = X509_STORE_CTX_get_app_data(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	time_t before;

	if (ok || !v || !cur)
		return ok;
	switch (X509_STORE_CTX_get_error(ctx)) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		/* CRLs are checked for every CA that has one (CRL_CHECK_ALL); a CA without one
		 * revokes by other means (the built-in CA's serial list) or not at all. A CA
		 * whose CRL OpenSSL could not use stays refused. */
		return !edge_trust_crl_for(v->t, X509_get_issuer_name(cur));
	case X509_V_ERR_CERT_HAS_EXPIRED:
		/* RFC 5280 4.1.2.5: valid through notAfter, inclusive; OpenSSL counts its
		 * last second as expired. */
		before = v->now - 1;
		return X509_cmp_time(X509_get0_notAfter(cur), &before) > 0;
	default:
		return 0;
	}
}

/* Intermediates that count against the depth: self-issued ones do not (RFC 5280 6.1, as
 * for pathLenConstraint), nor the leaf, nor the anchor. */
static int path_depth(STACK_OF(X509) *chain)
{
	int n = 0;

	for (int i = 1; i + 1 < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)))
			n++;
	}
	return n;
}

/* Checks that OpenSSL's chain verification does not make (or makes only
 * loosely), on the verified chain. */
static int check_chain(const struct edge_trust *t, STACK_OF(X509) *chain, X509 *leaf, bool server,
		       struct edge_verify_result *res)
{
	X509 *anchor = sk_X509_value(chain, sk_X509_num(chain) - 1);
	struct edge_verify_check pc;
	uint32_t ku = X509_get_key_usage(leaf);

	res->builtin_anchor = t->builtin && !X509_cmp(anchor, t->builtin);
	for (size_t i = 0; i < t->n_cas; i++) {
		if (!X509_cmp(anchor, t->cas[i].cert)) {
			res->anchor = t->cas[i].name;
			res->trust_domain = t->cas[i].trust_domain;
			/* the trust set is immutable but for this hint the fetcher keeps in it */
			res->anchor_ca = (struct edge_trust_ca *)&t->cas[i];
			break;
		}
	}
	if (path_depth(chain) > t->depth) {
		fail(res, EDGE_REASON_CHAIN_TOO_LONG, X509_V_ERR_CERT_CHAIN_TOO_LONG,
		     sk_X509_num(chain) - 1, "chain_too_long", NULL);
		return -EACCES;
	}
	if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    !(ku & (KU_DIGITAL_SIGNATURE | (server ? KU_KEY_ENCIPHERMENT : 0)))) {
		fail(res, EDGE_REASON_INVALID_PURPOSE, X509_V_ERR_INVALID_PURPOSE, 0,
		     "key_usage_no_digital_signature", "keyUsage does not allow digitalSignature");
		return -EACCES;
	}
	/* A CRL kept in the trust set that this verifier cannot use: every chain through its
	 * CA is refused (never fail open). */
	for (int i = 0; i + 1 < sk_X509_num(chain); i++) {
		const struct edge_crl_ref *cr =
			edge_trust_crl_for(t, X509_get_issuer_name(sk_X509_value(chain, i)));

		if (cr && cr->problem) {
			const char *colon = strchr(cr->problem, ':');

			fail(res, EDGE_REASON_CRL_INVALID, X509_V_ERR_UNABLE_TO_GET_CRL, i, NULL,
			     colon ? colon + 2 : cr->problem);
			snprintf(res->check, sizeof(res->check), "%.*s",
				 colon ? (int)(colon - cr->problem) : (int)strlen(cr->problem),
				 cr->problem);
			return -EACCES;
		}
	}
	if (edge_verify_profile(chain, &pc)) {
		fail(res, EDGE_REASON_NONCONFORMING, X509_V_ERR_APPLICATION_VERIFICATION, pc.depth,
		     pc.check, pc.detail);
		return -EACCES;
	}
	/* The built-in CA's revocations: a sorted serial list, no CRL needed. */
	if (res->builtin_anchor && t->n_revoked) {
		const char *key = res->serial;

		if (bsearch(&key, t->revoked, t->n_revoked, sizeof(char *), cmp_serial)) {
			fail(res, EDGE_REASON_CERT_REVOKED, X509_V_ERR_CERT_REVOKED, 0, NULL, NULL);
			return -EACCES;
		}
	}
	return 0;
}

/* One attempt at a path through `untrusted`. *culprit: the presented certificate the
 * failure is about, when it is one of `untrusted` (another path may avoid it). */
static int verify_once(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
		       time_t at, bool server, struct edge_verify_result *res, X509 **culprit,
		       STACK_OF(X509) **path)
{
	struct verify_run run = { .t = trust, .now = at ? at : time(NULL) };
	unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int rc;

	*culprit = NULL;
	if (!ctx || !X509_STORE_CTX_init(ctx, trust->store, leaf, untrusted)) {
		X509_STORE_CTX_free(ctx);
		return -ENOMEM;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_STORE_CTX_set_purpose(ctx, server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
	/* OpenSSL's own depth bound is only the parser's: the depth that counts is checked on
	 * the path it built, without self-issued certificates. */
	X509_VERIFY_PARAM_set_depth(param, EDGE_VERIFY_MAX_CHAIN);
	/* 112-bit security: RSA and DH below 2048 bits and SHA-1 signatures refused. */
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (trust->n_crls)
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	X509_VERIFY_PARAM_set_flags(param, flags);
	X509_VERIFY_PARAM_set_time(param, run.now);
	X509_STORE_CTX_set_app_data(ctx, &run);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
		const char *check = NULL;
		enum edge_reason reason = reason_from_x509(err, &check);

		fail(res, reason, err, depth, check, NULL);
		if (depth > 0 && chain && depth < sk_X509_num(chain))
			*culprit = sk_X509_value(chain, depth);
		rc = -EACCES;
	} else {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		rc = check_chain(trust, chain, leaf, server, res);
		if (rc && res->err_depth > 0 && res->err_depth < sk_X509_num(chain))
			*culprit = sk_X509_value(chain, res->err_depth);
		if (!rc && path && !(*path = X509_STORE_CTX_get1_chain(ctx)))
			rc = -ENOMEM;
	}
	X509_STORE_CTX_free(ctx);
	return rc;
}

/* Tries of other paths after the first fails: each drops one presented certificate. */
#define EDGE_VERIFY_MAX_PATHS 8

int edge_verify_chain_path(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
			   time_t at, bool server, struct edge_verify_result *res,
			   STACK_OF(X509) **path)
{
	struct edge_verify_result first;
	STACK_OF(X509) *rest = NULL;
	X509 *culprit = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!leaf) {
		fail(res, EDGE_REASON_NO_CLIENT_CERT, X509_V_OK, 0, NULL, "no client certificate");
		return -EACCES;
	}
	edge_verify_describe(leaf, res);
	/* OpenSSL 3.0 accepts a CA certificate as a client leaf: named first,
	 * before the purpose check can hide it behind a vaguer reason. */
	if (X509_get_extension_flags(leaf) & EXFLAG_CA) {
		fail(res, EDGE_REASON_LEAF_IS_CA, X509_V_ERR_INVALID_CA, 0, NULL,
		     "client certificate is a CA certificate (basicConstraints CA:TRUE)");
		return -EACCES;
	}
	rc = verify_once(trust, leaf, untrusted, at, server, res, &culprit, path);
	/* OpenSSL builds one path and does not go back: when a presented intermediate is what
	 * failed, try the paths without it (an alternative issuer, a cross-signature, the
	 * anchor itself), a bounded number of times. The first failure is the one reported. */
	if (rc == -EACCES && culprit && untrusted) {
		first = *res;
		rest = sk_X509_dup(untrusted);
		for (int tries = 0;
		     rest && rc == -EACCES && culprit && tries < EDGE_VERIFY_MAX_PATHS; tries++) {
			int k = -1;

			for (int i = 0; i < sk_X509_num(rest); i++)
				if (sk_X509_value(rest, i) == culprit)
					k = i;
			if (k < 0)
				break;
			sk_X509_delete(rest, k);
			memset(res, 0, sizeof(*res));
			edge_verify_describe(leaf, res);
			rc = verify_once(trust, leaf, rest, at, server, res, &culprit, path);
		}
		sk_X509_free(rest);
		if (rc)
			*res = first;
		rc = rc == -ENOMEM ? -ENOMEM : rc;
	}
	if (!rc) {
		res->reason = EDGE_REASON_OK;
		res->x509_err = X509_V_OK;
		res->check[0] = '\0';
		snprintf(res->detail, sizeof(res->detail), "ok");
	}
	return rc;
}

int edge_verify_chain_purpose(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
			      time_t at, bool server, struct edge_verify_result *res)
{
	return edge_verify_chain_path(trust, leaf, untrusted, at, server, res, NULL);
}

int edge_verify_chain(const struct edge_trust *trust, X509 *leaf, STACK_OF(X509) *untrusted,
		      time_t at, struct edge_verify_result *res)
{
	return edge_verify_chain_purpose(trust, leaf, untrusted, at, false, res);
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
	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) && mdlen == 32) {
		memcpy(out->sha256_raw, md, 32);
		hex(md, 32, out->sha256);
	}
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
	     EDGE_X509_ERR_NOT_AUTHORIZED, 0, NULL, res->authz.text);
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
	char why[200];
	const char *problem = edge_crl_problem(crl, why, sizeof(why));

	if (!n)
		return -ENOMEM;
	t->crls = n;
	n = &t->crls[t->n_crls];
	memset(n, 0, sizeof(*n));
	if (problem && !(n->problem = strdup(problem)))
		return -ENOMEM;
	/* OpenSSL's CRL check finds it in the store (CRL_CHECK_ALL: every CA of the path). */
	if (!X509_STORE_add_crl(t->store, crl)) {
		free(n->problem);
		return -EINVAL;
	}
	if (issuer)
		X509_up_ref(issuer);
	X509_CRL_up_ref(crl);
	n->issuer = issuer;
	n->crl = crl;
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
		free(t->crls[i].problem);
	}
	free(t->crls);
	free(t);
}
