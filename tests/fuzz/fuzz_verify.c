/*
 * libFuzzer target for the verifier's own checks (userspace/verify.c) on a client certificate
 * from the fuzzer. Input: one flags byte, then a DER certificate. Bit 0: re-issue it from the
 * harness's CA (issuer name and signature), so that parsing-level mutations reach the checks
 * after the chain is built; bit 1: make it valid now; bits 2-3: the digest of that signature
 * (sha256, sha1, sha384, sha512). Seeds: tests/fuzz/seeds.sh.
 *
 * Besides memory safety it checks the verifier's verdicts against OpenSSL's own answers: a
 * certificate it accepts is signed by the trusted CA, valid now, no CA, fit for clientAuth,
 * with digitalSignature when keyUsage is present, a key and signature of at least 112-bit
 * strength, and not revoked; a refusal has a named reason, an X509 error for the alert and a
 * message; the reason for a CA:TRUE leaf is leaf_is_ca.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "verify.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static EVP_PKEY *ca_key;
static X509 *ca;
static struct edge_trust *builtin_trust, *uploaded_trust;

static void setup(void)
{
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *e;
	X509_CRL *crl;
	char *revoked[] = { "0BAD", "65" };

	ca_key = EVP_EC_gen("P-256");
	ca = X509_new();
	CHECK(ca_key && ca);
	X509_set_version(ca, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
	X509_gmtime_adj(X509_getm_notBefore(ca), -86400L * 365);
	X509_gmtime_adj(X509_getm_notAfter(ca), 86400L * 3650);
	n = X509_get_subject_name(ca);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz CA", -1, -1,
				   0);
	X509_set_issuer_name(ca, n);
	X509_set_pubkey(ca, ca_key);
	X509V3_set_ctx(&v3, ca, ca, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(ca, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
	X509_add_ext(ca, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
	X509_add_ext(ca, e, -1);
	X509_EXTENSION_free(e);
	CHECK(X509_sign(ca, ca_key, EVP_sha256()) > 0);

	/* The built-in CA with a revoked-serial list, and the same CA as an uploaded one with a
	 * CRL revoking serial 0x66. */
	builtin_trust = edge_trust_new(3);
	CHECK(builtin_trust && edge_trust_add_ca(builtin_trust, ca, true) == 0);
	CHECK(edge_trust_set_revoked(builtin_trust, revoked, 2) == 0);
	uploaded_trust = edge_trust_new(3);
	CHECK(uploaded_trust && edge_trust_add_ca(uploaded_trust, ca, false) == 0);
	crl = X509_CRL_new();
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_INTEGER *sn = ASN1_INTEGER_new();
	ASN1_TIME *t = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, 86400L * 30);

	ASN1_INTEGER_set(sn, 0x66);
	X509_REVOKED_set_serialNumber(rev, sn);
	X509_REVOKED_set_revocationDate(rev, t);
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, n);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_set1_nextUpdate(crl, next);
	X509_CRL_add0_revoked(crl, rev);
	X509_CRL_add1_ext_i2d(crl, NID_crl_number, sn, 0, 0); /* a CRLNumber, as RFC 5280 wants */
	CHECK(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	CHECK(edge_trust_add_crl(uploaded_trust, ca, crl) == 0);
	X509_CRL_free(crl);
	ASN1_INTEGER_free(sn);
	ASN1_TIME_free(t);
	ASN1_TIME_free(next);
}

static void check_verdict(const struct edge_trust *t, X509 *x, bool builtin)
{
	struct edge_verify_result r;
	int rc = edge_verify_chain(t, x, NULL, 0, &r);

	CHECK(rc == 0 || rc == -EACCES || rc == -ENOMEM);
	if (getenv("FUZZ_VERIFY_DEBUG")) /* to see what a seed reaches */
		fprintf(stderr, "%s trust: %s (%s)\n", builtin ? "built-in" : "uploaded",
			edge_reason_name(r.reason), r.detail);
	if (rc == -ENOMEM)
		return;
	CHECK((rc == 0) == (r.reason == EDGE_REASON_OK));
	CHECK(strcmp(edge_reason_name(r.reason), "?") != 0);
	CHECK(memchr(r.detail, '\0', sizeof(r.detail)) && r.detail[0]);
	CHECK(memchr(r.subject, '\0', sizeof(r.subject)) &&
	      memchr(r.serial, '\0', sizeof(r.serial)));
	if (rc) {
		CHECK(edge_verify_x509_error(&r) != X509_V_OK);
		/* Named first, whatever else is wrong with it. */
		if (X509_get_extension_flags(x) & EXFLAG_CA)
			CHECK(r.reason == EDGE_REASON_LEAF_IS_CA);
		return;
	}
	/* Accepted: OpenSSL, asked directly, must agree on every count. */
	uint32_t flags = X509_get_extension_flags(x);
	int secbits = -1;
	uint32_t sigflags = 0;
	EVP_PKEY *pub = X509_get0_pubkey(x);

	CHECK(!(flags & EXFLAG_CA) && !(flags & EXFLAG_INVALID));
	CHECK(X509_check_issued(ca, x) == X509_V_OK);
	CHECK(pub && X509_verify(x, ca_key) == 1);
	CHECK(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
	CHECK(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
	CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1);
	if (flags & EXFLAG_KUSAGE)
		CHECK(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	CHECK(EVP_PKEY_get_security_bits(pub) >= 112);
	CHECK(X509_get_signature_info(x, NULL, NULL, &secbits, &sigflags) == 1 && secbits >= 112);
	CHECK(r.builtin_anchor == builtin);
	/* The RFC 5280 profile (docs/verify.md), each fact read from OpenSSL directly. */
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

	CHECK(X509_get_version(x) == X509_VERSION_3);
	CHECK(ASN1_STRING_type(sn) == V_ASN1_INTEGER && ASN1_STRING_length(sn) >= 1 &&
	      ASN1_STRING_length(sn) <= 20);
	CHECK(!(X509_get_key_usage(x) & KU_KEY_CERT_SIGN) || !(flags & EXFLAG_KUSAGE));
	CHECK(EVP_PKEY_get_base_id(pub) != EVP_PKEY_DSA);
	CHECK(EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA || EVP_PKEY_get_bits(pub) % 8 == 0);
	CHECK(X509_get0_authority_key_id(x) != NULL);
	CHECK(X509_get_ext_by_NID(x, NID_name_constraints, -1) < 0);
	CHECK(!edge_trust_revokes(t, x, r.serial, r.builtin_anchor));
	if (builtin)
		CHECK(strcmp(r.serial, "65") && strcmp(r.serial, "0BAD"));
	else
		CHECK(strcmp(r.serial, "66"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const EVP_MD *(*const mds[4])(void) = { EVP_sha256, EVP_sha1, EVP_sha384,
						       EVP_sha512 };
	const unsigned char *p;
	X509 *x;
	uint8_t flags;

	if (!ca)
		setup();
	if (size < 2 || size > 16384)
		return 0;
	flags = data[0];
	p = data + 1;
	x = d2i_X509(NULL, &p, (long)(size - 1));
	if (!x) {
		ERR_clear_error();
		return 0;
	}
	if (flags & 2) {
		X509_gmtime_adj(X509_getm_notBefore(x), -86400);
		X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	}
	if (flags & 1) {
		X509V3_CTX v3;
		X509_EXTENSION *e;
		int i;

		X509_set_issuer_name(x, X509_get_subject_name(ca));
		/* the CA's key identifier, as an issuing CA writes it */
		while ((i = X509_get_ext_by_NID(x, NID_authority_key_identifier, -1)) >= 0)
			X509_EXTENSION_free(X509_delete_ext(x, i));
		X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
		if (e && X509_get_version(x) == X509_VERSION_3)
			X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		/* A key X509_sign cannot use with this digest: judged as it came. */
		X509_sign(x, ca_key, mds[(flags >> 2) & 3]());
	}
	check_verdict(builtin_trust, x, true);
	check_verdict(uploaded_trust, x, false);
	X509_free(x);
	ERR_clear_error();
	return 0;
}
