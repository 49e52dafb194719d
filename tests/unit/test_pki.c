/* Unit tests for userspace/pki.c with real OpenSSL: strict PEM, keys, the
 * built-in CA and client issuing, CSRs, CA/CRL/chain checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "tap.h"

static char err[1024];

static char *pem_of_cert(X509 *x)
{
	char *s = NULL;

	return edge_pki_cert_pem(x, &s) ? NULL : s;
}

/* A CA made by hand: options for the refusal tests. */
static X509 *hand_ca(EVP_PKEY *key, const char *bc, const char *ku, long from, long to)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"hand CA", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (bc && (e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc))) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (ku && (e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku))) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, long last, long next)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, last);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, next);
	X509_CRL_set1_nextUpdate(crl, t);
	{
		ASN1_INTEGER *num = ASN1_INTEGER_new();

		ASN1_INTEGER_set(num, 1);
		X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
		ASN1_INTEGER_free(num);
	}
	X509_CRL_sign(crl, key, EVP_sha256());
	ASN1_TIME_free(t);
	return crl;
}

static char *pem_of_crl(X509_CRL *crl)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	PEM_write_bio_X509_CRL(b, crl);
	n = BIO_get_mem_data(b, &data);
	s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

static void test_pem(X509 *ca, EVP_PKEY *key)
{
	char *pem = pem_of_cert(ca), *buf, *kpem;
	size_t len = strlen(pem), klen;
	unsigned char *der = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	int n;

	is_int(edge_pki_cert_parse(pem, len, &x, err, sizeof(err)), 0, "a PEM certificate parses");
	ok(x && !X509_cmp(x, ca), "and is the same certificate");
	X509_free(x);

	buf = malloc(len + 200);
	snprintf(buf, len + 200, "Subject: test\nexplanatory text\n%s\ntrailing text\n", pem);
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), 0,
	       "text around the PEM block is allowed");
	X509_free(x);

	is_int(edge_pki_cert_parse("", 0, &x, err, sizeof(err)), -EINVAL, "empty input refused");
	ok(strstr(err, "empty") != NULL, "  with 'empty': %s", err);
	is_int(edge_pki_cert_parse(" \n\n", 3, &x, err, sizeof(err)), -EINVAL,
	       "whitespace-only input refused");

	n = i2d_X509(ca, &der);
	is_int(edge_pki_cert_parse((char *)der, (size_t)n, &x, err, sizeof(err)), -EINVAL,
	       "DER refused");
	ok(strstr(err, "DER") != NULL, "  with 'DER': %s", err);
	OPENSSL_free(der);

	n = (int)(strstr(pem, "-----END") - pem);
	snprintf(buf, len + 200, "%.*s", n, pem);
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), -EINVAL,
	       "missing END line refused");
	ok(strstr(err, "missing '-----END CERTIFICATE-----'") != NULL, "  precisely: %s", err);

	snprintf(buf, len + 200, "%s", pem);
	buf[40] = '!';
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), -EINVAL,
	       "bad base64 refused");
	ok(strstr(err, "base64") != NULL, "  with 'base64': %s", err);

	snprintf(buf, len + 200, "%s", pem);
	memmove(strstr(buf, "-----END") - 5, strstr(buf, "-----END") - 1,
		strlen(strstr(buf, "-----END") - 1) + 1);
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), -EINVAL,
	       "truncated base64 body refused");

	snprintf(buf, len + 200, "%s", pem);
	memcpy(strstr(buf, "-----END ") + 9, "CERTIFICATX", 11);
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), -EINVAL,
	       "END line with another label refused");

	edge_pki_key_pem(key, &kpem, &klen);
	is_int(edge_pki_cert_parse(kpem, klen, &x, err, sizeof(err)), -EINVAL,
	       "a private key instead of a certificate refused");
	ok(strstr(err, "private key") != NULL, "  with 'private key': %s", err);
	is_int(edge_pki_cert_parse("hello world\n", 12, &x, err, sizeof(err)), -EINVAL,
	       "text without a PEM block refused");
	ok(strstr(err, "no PEM block") != NULL, "  with 'no PEM block': %s", err);

	free(buf);
	buf = malloc(2 * len + 1);
	snprintf(buf, 2 * len + 1, "%s%s", pem, pem);
	is_int(edge_pki_cert_parse(buf, strlen(buf), &x, err, sizeof(err)), -EINVAL,
	       "two certificates refused where one is expected");
	is_int(edge_pki_chain_parse(buf, strlen(buf), &chain, err, sizeof(err)), 0,
	       "but accepted as a chain");
	is_int(sk_X509_num(chain), 2, "  of two certificates");
	sk_X509_pop_free(chain, X509_free);
	free(buf);

	buf = malloc(len + klen + 1);
	snprintf(buf, len + klen + 1, "%s%s", pem, kpem);
	is_int(edge_pki_chain_parse(buf, strlen(buf), &chain, err, sizeof(err)), -EINVAL,
	       "a chain file holding a key is refused");
	free(buf);

	{
		EVP_PKEY *k2 = NULL;

		is_int(edge_pki_key_parse(kpem, klen, &k2, err, sizeof(err)), 0, "key PEM parses");
		ok(k2 && EVP_PKEY_eq(k2, key) == 1, "  to the same key");
		EVP_PKEY_free(k2);
		is_int(edge_pki_key_parse(pem, len, &k2, err, sizeof(err)), -EINVAL,
		       "a certificate is not a key");
	}
	{
		BIO *b = BIO_new(BIO_s_mem());
		EVP_PKEY *k2 = NULL;
		char *data;
		long n2;

		PEM_write_bio_PrivateKey(b, key, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"pw");
		n2 = BIO_get_mem_data(b, &data);
		is_int(edge_pki_key_parse(data, (size_t)n2, &k2, err, sizeof(err)), -EINVAL,
		       "an encrypted key is refused");
		ok(strstr(err, "encrypted") != NULL, "  with 'encrypted': %s", err);
		BIO_free(b);
	}
	OPENSSL_clear_free(kpem, klen);
	free(pem);
}

static void test_ca_checks(void)
{
	EVP_PKEY *k = NULL;
	X509 *x;

	edge_pki_keygen(EDGE_KEY_EC_P256, &k, err, sizeof(err));
	x = hand_ca(k, "critical,CA:TRUE", "critical,keyCertSign,cRLSign", -60, 86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), 0, "a CA passes");
	X509_free(x);
	x = hand_ca(k, "critical,CA:TRUE", NULL, -60, 86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EINVAL,
	       "a CA without keyUsage refused (it must say keyCertSign)");
	ok(strstr(err, "no keyUsage") != NULL, "  naming the missing keyUsage: %s", err);
	X509_free(x);
	x = hand_ca(k, "critical,CA:FALSE", "critical,keyCertSign", -60, 86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EINVAL, "CA:FALSE refused");
	ok(strstr(err, "CA:TRUE") != NULL, "  naming CA:TRUE: %s", err);
	X509_free(x);
	x = hand_ca(k, NULL, NULL, -60, 86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EINVAL,
	       "no basicConstraints refused");
	X509_free(x);
	x = hand_ca(k, "critical,CA:TRUE", "critical,digitalSignature", -60, 86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EINVAL,
	       "keyUsage without keyCertSign refused");
	ok(strstr(err, "keyCertSign") != NULL, "  naming keyCertSign: %s", err);
	X509_free(x);
	x = hand_ca(k, "critical,CA:TRUE", "critical,keyCertSign", -86400 * 10, -86400);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EKEYEXPIRED,
	       "an expired CA refused");
	ok(strstr(err, "expired") != NULL, "  with 'expired': %s", err);
	X509_free(x);
	x = hand_ca(k, "critical,CA:TRUE", "critical,keyCertSign", 86400, 86400 * 10);
	is_int(edge_pki_check_ca(x, time(NULL), err, sizeof(err)), -EKEYEXPIRED,
	       "a not-yet-valid CA refused");
	ok(strstr(err, "not yet valid") != NULL, "  with 'not yet valid': %s", err);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_issue(void)
{
	static const enum edge_key_type types[] = {
		EDGE_KEY_EC_P256,
		EDGE_KEY_EC_P384,
		EDGE_KEY_RSA_2048,
	};
	char *dns[] = { "Alice.Example.COM" }, *uri[] = { "spiffe://example.com/alice" };
	char *email[] = { "alice@example.com" };
	struct edge_pki_client req = { .cn = "alice",
				       .dns = dns,
				       .ndns = 1,
				       .uri = uri,
				       .nuri = 1,
				       .email = email,
				       .nemail = 1,
				       .days = 30 };
	char name[32], serial[EDGE_PKI_SERIAL_LEN], fp[EDGE_PKI_FP_LEN], subj[256];
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	X509_STORE *store;
	X509_STORE_CTX *vctx;
	int64_t nb, na;
	time_t now = time(NULL);
	enum edge_key_type t;

	ok(!edge_pki_key_type_parse("rsa-3072", &t) && t == EDGE_KEY_RSA_3072,
	   "key type names parse");
	ok(edge_pki_key_type_parse("dsa-1024", &t) == -EINVAL, "unknown key type refused");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *k = NULL;

		is_int(edge_pki_keygen(types[i], &k, err, sizeof(err)), 0, "keygen %s",
		       edge_pki_key_type_name(types[i]));
		edge_pki_key_describe(k, name, sizeof(name), err, sizeof(err));
		ok(!strcmp(name, edge_pki_key_type_name(types[i])), "  described as %s", name);
		EVP_PKEY_free(k);
	}
	{
		EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);

		is_int(edge_pki_key_describe(weak, name, sizeof(name), err, sizeof(err)), -EINVAL,
		       "RSA-1024 refused");
		EVP_PKEY_free(weak);
	}

	edge_pki_keygen(EDGE_KEY_EC_P256, &cakey, err, sizeof(err));
	is_int(edge_pki_make_ca(cakey, "example.com", now, &ca, err, sizeof(err)), 0,
	       "built-in CA made");
	is_int(edge_pki_check_ca(ca, now, err, sizeof(err)), 0, "  and is a valid CA");
	edge_pki_subject(X509_get_subject_name(ca), subj, sizeof(subj));
	ok(!strcmp(subj, "O=example.com, CN=mtls-edge built-in CA"), "  subject %s", subj);
	ok(X509_get_pathlen(ca) == 0, "  pathlen 0");
	ok(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN), "  keyCertSign+cRLSign");
	edge_pki_validity(ca, &nb, &na);
	ok(na - (int64_t)now == 3650LL * 86400, "  valid 10 years");
	ok((int64_t)now - nb == EDGE_PKI_BACKDATE, "  notBefore backdated 300 s");
	test_pem(ca, cakey);

	edge_pki_keygen(EDGE_KEY_RSA_2048, &key, err, sizeof(err));
	req.now = now;
	is_int(edge_pki_issue_client(ca, cakey, key, &req, &x, err, sizeof(err)), 0,
	       "client certificate issued");
	edge_pki_serial(x, serial, sizeof(serial));
	ok(strlen(serial) == 32 && strspn(serial, "0123456789ABCDEF") == 32,
	   "  128-bit upper-case hex serial %s", serial);
	edge_pki_fingerprint(x, fp);
	ok(strlen(fp) == 64 && strspn(fp, "0123456789ABCDEF") == 64, "  SHA-256 fingerprint");
	ok(!(X509_get_extension_flags(x) & EXFLAG_CA), "  CA:FALSE");
	ok(X509_get_key_usage(x) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT),
	   "  RSA: digitalSignature+keyEncipherment");
	ok(X509_get_extended_key_usage(x) == XKU_SSL_CLIENT, "  clientAuth only");
	ok(X509_check_host(x, "alice.example.com", 0, 0, NULL) == 1, "  DNS SAN lower-cased");
	ok(X509_check_email(x, "alice@example.com", 0, 0) == 1, "  e-mail SAN");
	edge_pki_validity(x, &nb, &na);
	ok(na - (int64_t)now == 30 * 86400, "  30 days");
	store = X509_STORE_new();
	X509_STORE_add_cert(store, ca);
	vctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(vctx, store, x, NULL);
	X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_CLIENT);
	is_int(X509_verify_cert(vctx), 1, "  verifies against the CA as a TLS client");
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);

	{ /* a CSR: parsed, signature checked */
		X509_REQ *r = X509_REQ_new(), *got = NULL;
		BIO *b = BIO_new(BIO_s_mem());
		char *data, cn[64];
		long n;

		X509_REQ_set_pubkey(r, key);
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_ASC,
					   (const unsigned char *)"bob", -1, -1, 0);
		X509_REQ_sign(r, key, EVP_sha256());
		PEM_write_bio_X509_REQ(b, r);
		n = BIO_get_mem_data(b, &data);
		is_int(edge_pki_csr_parse(data, (size_t)n, &got, err, sizeof(err)), 0,
		       "CSR parses and its signature verifies");
		ok(got && !edge_pki_cn(X509_REQ_get_subject_name(got), cn, sizeof(cn)) &&
			   !strcmp(cn, "bob"),
		   "  its CN is bob");
		X509_REQ_free(got);
		X509_REQ_set_pubkey(r, cakey); /* now the signature no longer matches */
		BIO_reset(b);
		PEM_write_bio_X509_REQ(b, r);
		n = BIO_get_mem_data(b, &data);
		is_int(edge_pki_csr_parse(data, (size_t)n, &got, err, sizeof(err)), -EINVAL,
		       "CSR with a bad signature refused");
		BIO_free(b);
		X509_REQ_free(r);
	}
	{ /* chain checks */
		STACK_OF(X509) *chain = sk_X509_new_null();

		sk_X509_push(chain, x);
		sk_X509_push(chain, ca);
		is_int(edge_pki_check_chain(chain, key, now, err, sizeof(err)), 0,
		       "leaf + CA chain with the leaf's key passes");
		is_int(edge_pki_check_chain(chain, cakey, now, err, sizeof(err)), -EINVAL,
		       "the wrong key refused");
		sk_X509_set(chain, 0, ca);
		sk_X509_set(chain, 1, x);
		is_int(edge_pki_check_chain(chain, key, now, err, sizeof(err)), -EINVAL,
		       "a chain out of order refused");
		sk_X509_free(chain);
	}
	{ /* CRLs */
		EVP_PKEY *other = NULL;
		X509 *oca = NULL, *noku;
		X509_CRL *crl;
		int64_t next = 0;
		char *pem;

		crl = make_crl(ca, cakey, -60, 86400);
		pem = pem_of_crl(crl);
		X509_CRL_free(crl);
		crl = NULL;
		is_int(edge_pki_crl_parse(pem, strlen(pem), &crl, err, sizeof(err)), 0,
		       "CRL parses");
		is_int(edge_pki_check_crl(crl, ca, now, &next, err, sizeof(err)), 0,
		       "  and checks against its CA");
		ok(next > (int64_t)now, "  nextUpdate reported");
		edge_pki_keygen(EDGE_KEY_EC_P256, &other, err, sizeof(err));
		edge_pki_make_ca(other, "example.com", now, &oca, err, sizeof(err));
		is_int(edge_pki_check_crl(crl, oca, now, &next, err, sizeof(err)), -EINVAL,
		       "the same issuer name with another key: signature refused");
		ok(strstr(err, "signature") != NULL, "  with 'signature': %s", err);
		is_int(edge_pki_check_crl(crl, ca, now + 2 * 86400, &next, err, sizeof(err)),
		       -EKEYEXPIRED, "past nextUpdate refused");
		X509_CRL_free(crl);
		free(pem);
		noku = hand_ca(other, "critical,CA:TRUE", "critical,keyCertSign", -60, 86400);
		crl = make_crl(noku, other, -60, 86400);
		is_int(edge_pki_check_crl(crl, noku, now, &next, err, sizeof(err)), -EINVAL,
		       "a CA without cRLSign cannot sign CRLs");
		ok(strstr(err, "cRLSign") != NULL, "  naming cRLSign: %s", err);
		is_int(edge_pki_check_crl(crl, ca, now, &next, err, sizeof(err)), -EINVAL,
		       "a CRL from another issuer refused");
		X509_CRL_free(crl);
		X509_free(noku);
		X509_free(oca);
		EVP_PKEY_free(other);
	}
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
}

int main(void)
{
	test_issue();
	test_ca_checks();
	return tap_done();
}
