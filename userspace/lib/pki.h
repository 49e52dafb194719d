/*
 * OpenSSL helpers shared by mtls-edgectl and mtls-edged: strict PEM parsing,
 * certificate facts (fingerprint, subject, serial, validity), CA and CRL checks,
 * key generation, certificate issuing, CSRs (hostname rules: hostname.h).
 *
 * Every function returns 0 or a negative errno and never prints: on failure it
 * fills err (OpenSSL's error queue drained into it). Input that is wrong (bad
 * PEM, not a CA, expired, bad hostname...) is -EINVAL, or -EKEYEXPIRED for a
 * certificate or CRL outside its validity; -ENOMEM and -EIO are internal.
 * Messages name no file: callers prefix "FILE: ".
 */
#ifndef EDGE_PKI_H
#define EDGE_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hostname.h"

#define EDGE_PKI_MAX_CHAIN 100 /* certificates in one chain file */
#define EDGE_PKI_FP_LEN 65     /* SHA-256 as 64 hex digits + NUL */
#define EDGE_PKI_SERIAL_LEN 43 /* 20 octets as hex + sign + NUL */
#define EDGE_PKI_CN_MAX 64     /* RFC 5280 ub-common-name */
#define EDGE_PKI_CA_DAYS 3650
#define EDGE_PKI_BACKDATE 300 /* notBefore = now - 5 minutes */
#define EDGE_PKI_CA_CN "mtls-edge built-in CA"

enum edge_key_type {
	EDGE_KEY_EC_P256,
	EDGE_KEY_EC_P384,
	EDGE_KEY_RSA_2048,
	EDGE_KEY_RSA_3072,
	EDGE_KEY_RSA_4096,
};

/* "ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096" <-> enum. */
int edge_pki_key_type_parse(const char *s, enum edge_key_type *out);
const char *edge_pki_key_type_name(enum edge_key_type t);
/* Names any key the edge accepts ("ec-p256", "rsa-3072", "ec-p521"...);
 * -EINVAL for weak or unsupported keys (RSA < 2048, DSA, other curves). */
int edge_pki_key_describe(const EVP_PKEY *pk, char *out, size_t outlen, char *err, size_t errlen);
int edge_pki_keygen(enum edge_key_type t, EVP_PKEY **out, char *err, size_t errlen);

/* Strict PEM: explanatory text around blocks is allowed; binary or DER input,
 * a missing END line, bad base64, PEM headers, trailing bytes after the DER and
 * private keys where a certificate is expected are refused with the reason. */
int edge_pki_cert_parse(const char *pem, size_t len, X509 **out, char *err, size_t errlen);
/* One or more certificates (leaf first), nothing else, at most EDGE_PKI_MAX_CHAIN. */
int edge_pki_chain_parse(const char *pem, size_t len, STACK_OF(X509) **out, char *err,
			 size_t errlen);
int edge_pki_crl_parse(const char *pem, size_t len, X509_CRL **out, char *err, size_t errlen);
/* Also checks the CSR's self-signature. */
int edge_pki_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err, size_t errlen);
/* An unencrypted PEM private key. */
int edge_pki_key_parse(const char *pem, size_t len, EVP_PKEY **out, char *err, size_t errlen);

/* PEM text of a certificate / private key (PKCS#8), malloc'd; free keys with
 * OPENSSL_clear_free(s, len). */
int edge_pki_cert_pem(X509 *x, char **out);
int edge_pki_key_pem(EVP_PKEY *pk, char **out, size_t *len);

/* Facts. */
void edge_pki_fingerprint(X509 *x, char out[EDGE_PKI_FP_LEN]);      /* upper-case hex */
int edge_pki_subject(const X509_NAME *n, char *out, size_t outlen); /* "O=x, CN=y" */
int edge_pki_cn(const X509_NAME *n, char *out, size_t outlen);      /* -ENOENT: none */
int edge_pki_serial(X509 *x, char *out, size_t outlen);             /* upper-case hex */
int edge_pki_validity(X509 *x, int64_t *not_before, int64_t *not_after);
int edge_pki_asn1_time(const ASN1_TIME *t, int64_t *out);

/* Checks. */
int edge_pki_check_time(X509 *x, time_t now, char *err, size_t errlen);
/* basicConstraints CA:TRUE, keyCertSign when keyUsage is present, valid now. */
int edge_pki_check_ca(X509 *x, time_t now, char *err, size_t errlen);
/* Issuer equals the CA's subject, cRLSign when keyUsage is present, signature
 * verifies with the CA's key, lastUpdate <= now < nextUpdate. *next_update is 0
 * when the CRL has none. */
int edge_pki_check_crl(X509_CRL *crl, X509 *ca, time_t now, int64_t *next_update, char *err,
		       size_t errlen);
/* A server chain: each certificate issued by the next, the key matches the
 * leaf, the leaf is valid now. */
int edge_pki_check_chain(STACK_OF(X509) *chain, EVP_PKEY *key, time_t now, char *err,
			 size_t errlen);

/* Issuing. */
int edge_pki_make_ca(EVP_PKEY *key, const char *org, time_t now, X509 **out, char *err,
		     size_t errlen);

/* The caller has checked the names (mtls-edgectl does); DNS names are
 * normalised here. */
struct edge_pki_client {
	const char *cn;
	char **dns;
	size_t ndns;
	char **uri;
	size_t nuri;
	char **email;
	size_t nemail;
	int days; /* 1..3650 */
	time_t now;
};

int edge_pki_issue_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
			  const struct edge_pki_client *req, X509 **out, char *err, size_t errlen);

#endif
