/*
 * Certificates and CRLs for the verifier's unit tests, made in memory from a spec
 * (test_rfc5280.c, test_vcache.c): v3 with key identifiers by default, each deviation named.
 */
#ifndef EDGE_TEST_CERTGEN_H
#define EDGE_TEST_CERTGEN_H

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "tap.h"

struct spec {
	const char *cn;   /* NULL: an empty subject */
	const char *subj; /* the subject CN taken from this name instead (self-issued) */
	EVP_PKEY *key;    /* the subject's */
	X509 *issuer;     /* NULL: self-signed */
	EVP_PKEY *ikey;   /* the issuer's */
	bool ca;          /* CA:TRUE, keyCertSign, cRLSign; else CA:FALSE, digitalSignature */
	bool v1;          /* a version 1 certificate (no extensions) */
	const unsigned char *serial; /* big-endian magnitude; NULL: a counter */
	size_t serial_len;
	time_t not_after; /* 0: in a year */
	const char *bc;   /* basicConstraints value instead of the default */
	const char *ku;   /* keyUsage instead of the default */
	bool no_skid, no_akid, no_bc;
	const char *ext[4]; /* more extensions, "name=value" (openssl's config syntax) */
	int raw_nid;        /* one extension as raw DER content */
	const char *raw_hex;
	bool raw_crit;
};

static inline void add_ext(X509 *x, X509 *issuer, const char *name, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf(NULL, &ctx, name, value);
	if (!e)
		BAIL_OUT("cannot make %s=%s", name, value);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

static long serial_counter = 1000; /* serials of certificates without one of their own */

static inline X509 *make(const struct spec *s)
{
	X509 *x = X509_new(), *is = s->issuer ? s->issuer : x;

	X509_set_version(x, s->v1 ? X509_VERSION_1 : X509_VERSION_3);
	if (s->serial) {
		ASN1_INTEGER *sn = X509_get_serialNumber(x);

		ASN1_STRING_set(sn, s->serial, (int)s->serial_len);
	} else {
		ASN1_INTEGER_set(X509_get_serialNumber(x), serial_counter++);
	}
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	if (s->not_after)
		ASN1_TIME_set(X509_getm_notAfter(x), s->not_after);
	else
		X509_gmtime_adj(X509_getm_notAfter(x), 365 * 86400L);
	if (s->cn || s->subj)
		X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					   (const unsigned char *)(s->subj ? s->subj : s->cn), -1,
					   -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(is));
	X509_set_pubkey(x, s->key);
	if (!s->v1) {
		if (!s->no_bc)
			add_ext(x, is, "basicConstraints",
				s->bc   ? s->bc
				: s->ca ? "critical,CA:TRUE"
					: "critical,CA:FALSE");
		add_ext(x, is, "keyUsage",
			s->ku   ? s->ku
			: s->ca ? "critical,keyCertSign,cRLSign"
				: "critical,digitalSignature");
		if (!s->ca)
			add_ext(x, is, "extendedKeyUsage", "clientAuth");
		if (!s->no_skid)
			add_ext(x, is, "subjectKeyIdentifier", "hash");
		if (s->issuer && !s->no_akid)
			add_ext(x, is, "authorityKeyIdentifier", "keyid:always");
		for (int i = 0; i < 4 && s->ext[i]; i++) {
			char buf[256], *eq;

			snprintf(buf, sizeof(buf), "%s", s->ext[i]);
			eq = strchr(buf, '=');
			*eq = '\0';
			add_ext(x, is, buf, eq + 1);
		}
		if (s->raw_nid) {
			long n = 0;
			unsigned char *der = OPENSSL_hexstr2buf(s->raw_hex, &n);
			ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
			X509_EXTENSION *e;

			ASN1_OCTET_STRING_set(os, der, (int)n);
			e = X509_EXTENSION_create_by_NID(NULL, s->raw_nid, s->raw_crit, os);
			X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
			ASN1_OCTET_STRING_free(os);
			OPENSSL_free(der);
		}
	}
	X509_sign(x, s->ikey ? s->ikey : s->key, EVP_sha256());
	return x;
}

static inline X509_CRL *make_crl(X509 *ca, EVP_PKEY *key, long revoked, bool number,
				 const char *crit_ext, long next_s)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(c, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(c, X509_get_subject_name(ca));
	X509_gmtime_adj(t, -60);
	X509_CRL_set1_lastUpdate(c, t);
	X509_gmtime_adj(t, next_s);
	X509_CRL_set1_nextUpdate(c, t);
	if (number) {
		ASN1_INTEGER *n = ASN1_INTEGER_new();

		ASN1_INTEGER_set(n, 7);
		X509_CRL_add1_ext_i2d(c, NID_crl_number, n, 0, 0);
		ASN1_INTEGER_free(n);
	}
	if (crit_ext) {
		/* an extension nobody handles, critical (1.3.6.1.4.1.99999.1, NULL content) */
		ASN1_OBJECT *o = OBJ_txt2obj(crit_ext, 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		X509_EXTENSION *e;

		ASN1_OCTET_STRING_set(os, (const unsigned char *)"\x05\x00", 2);
		e = X509_EXTENSION_create_by_OBJ(NULL, o, 1, os);
		X509_CRL_add_ext(c, e, -1);
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(os);
		ASN1_OBJECT_free(o);
	}
	if (revoked) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, revoked);
		X509_REVOKED_set_serialNumber(rv, sn);
		X509_gmtime_adj(t, -30);
		X509_REVOKED_set_revocationDate(rv, t);
		X509_CRL_add0_revoked(c, rv);
		ASN1_INTEGER_free(sn);
	}
	X509_CRL_sort(c);
	X509_CRL_sign(c, key, EVP_sha256());
	ASN1_TIME_free(t);
	return c;
}

/* An RSA public key with a modulus of `bits` bits (OpenSSL's key generation rounds an odd
 * size down; the public half is all a leaf needs here). */
static inline EVP_PKEY *rsa_public(int bits)
{
	BIGNUM *n = BN_new(), *e = BN_new();
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	OSSL_PARAM *params;
	EVP_PKEY *pk = NULL;

	BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD);
	BN_set_word(e, 65537);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n);
	OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e);
	params = OSSL_PARAM_BLD_to_param(b);
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		BAIL_OUT("cannot make an RSA-%d public key", bits);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return pk;
}

#endif
