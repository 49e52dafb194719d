/*
 * libFuzzer target for the strict PEM parsers behind `ca upload`, `ca crl set`, `sni add`,
 * `cert create --csr` and `verify` (userspace/pki.c): every input goes through each of
 * edge_pki_cert_parse, _chain_parse, _crl_parse, _csr_parse and _key_parse. Besides memory
 * safety it checks their contract: 0 with an object or a negative errno with none and a
 * message; a chain holds 1..EDGE_PKI_MAX_CHAIN certificates; what parses as a certificate
 * survives the facts the CLI prints and the CA check, and its PEM re-parses to the same
 * certificate.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "pki.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

/* The contract of a refusal: a negative errno and a terminated, non-empty message. */
static void refused(int rc, const char *err, size_t len)
{
	CHECK(rc < 0);
	CHECK(memchr(err, '\0', len) != NULL && err[0]);
}

static void cert_facts(X509 *x)
{
	char fp[EDGE_PKI_FP_LEN], buf[512], err[512];
	int64_t nb, na;
	char *pem = NULL;
	X509 *again = NULL;

	edge_pki_fingerprint(x, fp);
	CHECK(strlen(fp) == EDGE_PKI_FP_LEN - 1);
	edge_pki_subject(X509_get_subject_name(x), buf, sizeof(buf));
	edge_pki_cn(X509_get_subject_name(x), buf, sizeof(buf));
	edge_pki_serial(x, buf, sizeof(buf));
	edge_pki_validity(x, &nb, &na);
	if (edge_pki_check_ca(x, 1790000000, err, sizeof(err)))
		CHECK(err[0]);
	edge_pki_check_time(x, 1790000000, err, sizeof(err));
	/* What the store keeps is the normalised PEM: it must parse back to the same thing. */
	if (edge_pki_cert_pem(x, &pem) == 0) {
		CHECK(edge_pki_cert_parse(pem, strlen(pem), &again, err, sizeof(err)) == 0);
		CHECK(again && X509_cmp(x, again) == 0);
		X509_free(again);
		free(pem);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *pem = (const char *)data;
	char err[512];
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	X509_CRL *crl = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *pk = NULL;
	int rc;

	if (size > 65536)
		return 0;

	memset(err, 0, sizeof(err));
	rc = edge_pki_cert_parse(pem, size, &x, err, sizeof(err));
	if (rc == 0) {
		CHECK(x);
		cert_facts(x);
		X509_free(x);
	} else {
		refused(rc, err, sizeof(err));
	}

	memset(err, 0, sizeof(err));
	rc = edge_pki_chain_parse(pem, size, &chain, err, sizeof(err));
	if (rc == 0) {
		CHECK(chain && sk_X509_num(chain) >= 1 && sk_X509_num(chain) <= EDGE_PKI_MAX_CHAIN);
		sk_X509_pop_free(chain, X509_free);
	} else {
		refused(rc, err, sizeof(err));
	}

	memset(err, 0, sizeof(err));
	rc = edge_pki_crl_parse(pem, size, &crl, err, sizeof(err));
	if (rc == 0) {
		CHECK(crl);
		X509_CRL_free(crl);
	} else {
		refused(rc, err, sizeof(err));
	}

	memset(err, 0, sizeof(err));
	rc = edge_pki_csr_parse(pem, size, &req, err, sizeof(err));
	if (rc == 0) {
		CHECK(req);
		X509_REQ_free(req);
	} else {
		refused(rc, err, sizeof(err));
	}

	memset(err, 0, sizeof(err));
	rc = edge_pki_key_parse(pem, size, &pk, err, sizeof(err));
	if (rc == 0) {
		char name[64];

		CHECK(pk);
		edge_pki_key_describe(pk, name, sizeof(name), err, sizeof(err));
		EVP_PKEY_free(pk);
	} else {
		refused(rc, err, sizeof(err));
	}
	ERR_clear_error();
	return 0;
}
