#include "pki.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "verify.h"

#define MAX_BLOCKS (EDGE_PKI_MAX_CHAIN + 6)

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Appends the drained OpenSSL error queue to the message. */
__attribute__((format(printf, 4, 5))) static int fail_ssl(char *err, size_t errlen, int rc,
							  const char *fmt, ...)
{
	char ssl[512], what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	edge_log_ssl_errors(ssl, sizeof(ssl));
	return fail(err, errlen, rc, "%s%s%s", what, *ssl ? ": " : "", ssl);
}

static const char *iso_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* ---- keys --------------------------------------------------------------- */

static const struct {
	const char *name;
	int bits;
	const char *curve;
} key_types[] = {
	[EDGE_KEY_EC_P256] = { "ec-p256", 0, "P-256" },
	[EDGE_KEY_EC_P384] = { "ec-p384", 0, "P-384" },
	[EDGE_KEY_RSA_2048] = { "rsa-2048", 2048, NULL },
	[EDGE_KEY_RSA_3072] = { "rsa-3072", 3072, NULL },
	[EDGE_KEY_RSA_4096] = { "rsa-4096", 4096, NULL },
};

static const char *const curves[][2] = {
	{ "prime256v1", "ec-p256" },
	{ "secp384r1", "ec-p384" },
	{ "secp521r1", "ec-p521" },
};

int edge_pki_key_type_parse(const char *s, enum edge_key_type *out)
{
	for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
		if (!strcmp(s, key_types[i].name)) {
			*out = (enum edge_key_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *edge_pki_key_type_name(enum edge_key_type t)
{
	return key_types[t].name;
}

int edge_pki_key_describe(const EVP_PKEY *pk, char *out, size_t outlen, char *err, size_t errlen)
{
	char group[64] = "";
	int bits = EVP_PKEY_get_bits(pk);

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (bits < 2048 || bits > 8192)
			return fail(err, errlen, -EINVAL,
				    "RSA-%d keys are not accepted "
				    "(2048 to 8192 bits)",
				    bits);
		snprintf(out, outlen, "rsa-%d", bits);
		return 0;
	}
	if (!EVP_PKEY_is_a(pk, "EC"))
		return fail(err, errlen, -EINVAL, "%s keys are not accepted (RSA or ECDSA)",
			    EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
	EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL);
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (!strcmp(group, curves[i][0])) {
			snprintf(out, outlen, "%s", curves[i][1]);
			return 0;
		}
	}
	return fail(err, errlen, -EINVAL, "EC curve %s is not accepted (P-256, P-384, P-521)",
		    *group ? group : "(unknown)");
}

int edge_pki_keygen(enum edge_key_type t, EVP_PKEY **out, char *err, size_t errlen)
{
	ERR_clear_error();
	if (key_types[t].bits)
		*out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)key_types[t].bits);
	else
		*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", key_types[t].curve);
	if (!*out)
		return fail_ssl(err, errlen, -EIO, "key generation failed");
	return 0;
}

/* ---- strict PEM --------------------------------------------------------- */

struct pem_block {
	char label[48];
	unsigned char *der;
	size_t len;
};

static void blocks_free(struct pem_block *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		OPENSSL_clear_free(b[i].der, b[i].len + 3);
}

static int b64_decode(const char *s, size_t n, struct pem_block *b, size_t idx, char *err,
		      size_t errlen)
{
	size_t pad = 0;
	int got;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			pad++;
		else if (pad || !(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/'))
			return fail(err, errlen, -EINVAL,
				    "bad base64 in PEM block %zu (%s): "
				    "unexpected character '%c'",
				    idx, b->label, isprint((unsigned char)s[i]) ? s[i] : '?');
	}
	if (!n || n % 4 || pad > 2)
		return fail(err, errlen, -EINVAL, "bad base64 in PEM block %zu (%s): %s", idx,
			    b->label, n ? "truncated or mis-padded body" : "empty body");
	b->der = OPENSSL_malloc(n / 4 * 3 + 3);
	if (!b->der)
		return -ENOMEM;
	got = EVP_DecodeBlock(b->der, (const unsigned char *)s, (int)n);
	b->len = got < 0 ? 0 : (size_t)got - pad;
	if (got < 0)
		return fail(err, errlen, -EINVAL, "bad base64 in PEM block %zu (%s)", idx,
			    b->label);
	return 0;
}

/* Splits PEM text into blocks. Text around blocks is allowed (RFC 7468). */
static int pem_scan(const char *buf, size_t len, const char *want, struct pem_block *blk,
		    size_t *nblk, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	size_t bodylen = 0, n = 0;
	bool in = false, text = false;
	char *body;
	int rc = 0;

	*nblk = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
			return fail(err, errlen, -EINVAL,
				    "%s, not PEM; convert it with "
				    "'openssl x509 -inform DER -outform PEM'",
				    buf[0] == 0x30 ? "DER (binary ASN.1) data" : "binary data");
		text |= !isspace(c);
	}
	if (!text)
		return fail(err, errlen, -EINVAL, "the file is empty");
	body = malloc(len + 1);
	if (!body)
		return -ENOMEM;
	for (; !rc && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		size_t ll;

		while (le > p && isspace((unsigned char)le[-1]))
			le--;
		ll = (size_t)(le - p);
		if (!in && ll > 16 && !strncmp(p, "-----BEGIN ", 11) &&
		    !strncmp(le - 5, "-----", 5)) {
			if (n == MAX_BLOCKS)
				rc = fail(err, errlen, -EINVAL, "more than %d PEM blocks",
					  MAX_BLOCKS);
			else
				snprintf(blk[n].label, sizeof(blk[n].label), "%.*s", (int)(ll - 16),
					 p + 11);
			in = true;
			bodylen = 0;
		} else if (in && ll >= 9 && !strncmp(p, "-----END ", 9)) {
			size_t lab = strlen(blk[n].label);

			if (ll != lab + 14 || strncmp(p + 9, blk[n].label, lab) ||
			    strncmp(le - 5, "-----", 5))
				rc = fail(err, errlen, -EINVAL,
					  "PEM block %zu: END line '%.*s' does "
					  "not match '-----BEGIN %s-----'",
					  n + 1, (int)ll, p, blk[n].label);
			else if (!(rc = b64_decode(body, bodylen, &blk[n], n + 1, err, errlen)))
				n++;
			in = false;
		} else if (in && ll >= 5 && !strncmp(p, "-----", 5)) {
			rc = fail(err, errlen, -EINVAL, "missing '-----END %s-----' line",
				  blk[n].label);
		} else if (in && memchr(p, ':', ll)) {
			rc = fail(err, errlen, -EINVAL,
				  "PEM block %zu (%s) has headers (encrypted "
				  "PEM?); only plain PEM is accepted",
				  n + 1, blk[n].label);
		} else if (in) {
			for (const char *q = p; q < le; q++)
				if (!isspace((unsigned char)*q))
					body[bodylen++] = *q;
		}
		p = nl ? nl + 1 : end;
	}
	free(body);
	if (!rc && in)
		rc = fail(err, errlen, -EINVAL, "missing '-----END %s-----' line", blk[n].label);
	if (!rc && !n)
		rc = fail(err, errlen, -EINVAL,
			  "no PEM block found (expected '-----BEGIN %s-----')", want);
	if (rc)
		blocks_free(blk, n);
	else
		*nblk = n;
	return rc;
}

/* Every block must be labelled want (or alt) and decode as it, with nothing
 * after its DER; vals[] gets at most max values. */
static int pem_decode(const char *pem, size_t len, const char *want, const char *alt,
		      const ASN1_ITEM *it, const char *what, size_t max, ASN1_VALUE **vals,
		      size_t *nvals, char *err, size_t errlen)
{
	struct pem_block b[MAX_BLOCKS];
	size_t n, i;
	int rc;

	ERR_clear_error();
	rc = pem_scan(pem, len, want, b, &n, err, errlen);
	if (rc)
		return rc;
	for (i = 0; !rc && i < n; i++) {
		const char *l = b[i].label;

		if (!strcmp(l, want) || (alt && !strcmp(l, alt)))
			continue;
		if (strstr(l, "PRIVATE KEY"))
			rc = fail(err, errlen, -EINVAL, "holds a private key (%s), not a %s", l,
				  what);
		else
			rc = fail(err, errlen, -EINVAL, "holds a %s, not a %s", l, what);
	}
	if (!rc && n > max)
		rc = fail(err, errlen, -EINVAL, "holds %zu PEM blocks; %s %zu %s expected", n,
			  max == 1 ? "exactly" : "at most", max, what);
	for (i = 0; !rc && i < n; i++) {
		const unsigned char *p = b[i].der;

		vals[i] = ASN1_item_d2i(NULL, &p, (long)b[i].len, it);
		if (!vals[i])
			rc = fail_ssl(err, errlen, -EINVAL, "PEM block %zu is not a valid %s",
				      i + 1, what);
		else if (p != b[i].der + b[i].len)
			rc = fail(err, errlen, -EINVAL,
				  "trailing bytes after the %s in PEM "
				  "block %zu",
				  what, i + 1);
		if (rc && vals[i])
			ASN1_item_free(vals[i], it);
	}
	while (rc && i-- > 1)
		ASN1_item_free(vals[i - 1], it);
	blocks_free(b, n);
	*nvals = rc ? 0 : n;
	return rc;
}

int edge_pki_cert_parse(const char *pem, size_t len, X509 **out, char *err, size_t errlen)
{
	size_t n;
	return pem_decode(pem, len, "CERTIFICATE", NULL, ASN1_ITEM_rptr(X509), "X.509 certificate",
			  1, (ASN1_VALUE **)out, &n, err, errlen);
}

int edge_pki_chain_parse(const char *pem, size_t len, STACK_OF(X509) **out, char *err,
			 size_t errlen)
{
	X509 *x[EDGE_PKI_MAX_CHAIN];
	size_t n = 0; /* pem_decode leaves it unset when the PEM scan fails */
	int rc = pem_decode(pem, len, "CERTIFICATE", NULL, ASN1_ITEM_rptr(X509), "certificate",
			    EDGE_PKI_MAX_CHAIN, (ASN1_VALUE **)x, &n, err, errlen);

	*out = rc ? NULL : sk_X509_new_null();
	for (size_t i = 0; i < n; i++) {
		if (*out && !sk_X509_push(*out, x[i])) {
			sk_X509_pop_free(*out, X509_free);
			*out = NULL;
		}
		if (!*out)
			X509_free(x[i]);
	}
	return rc ? rc : *out ? 0 : -ENOMEM;
}

int edge_pki_crl_parse(const char *pem, size_t len, X509_CRL **out, char *err, size_t errlen)
{
	size_t n;
	return pem_decode(pem, len, "X509 CRL", NULL, ASN1_ITEM_rptr(X509_CRL), "X.509 CRL", 1,
			  (ASN1_VALUE **)out, &n, err, errlen);
}

int edge_pki_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err, size_t errlen)
{
	size_t n;
	int rc = pem_decode(pem, len, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST",
			    ASN1_ITEM_rptr(X509_REQ), "certificate request", 1, (ASN1_VALUE **)out,
			    &n, err, errlen);

	if (rc)
		return rc;
	if (!X509_REQ_get0_pubkey(*out) || X509_REQ_verify(*out, X509_REQ_get0_pubkey(*out)) != 1) {
		X509_REQ_free(*out);
		*out = NULL;
		return fail_ssl(err, errlen, -EINVAL, "the request's signature does not verify");
	}
	return 0;
}

static int no_password(char *buf, int size, int rwflag, void *asked)
{
	*(bool *)asked = true;
	return -1;
}

int edge_pki_key_parse(const char *pem, size_t len, EVP_PKEY **out, char *err, size_t errlen)
{
	bool asked = false;
	BIO *bio;

	*out = NULL;
	ERR_clear_error();
	if (!memmem(pem, len, "PRIVATE KEY-----", 16))
		return fail(err, errlen, -EINVAL,
			    "no PEM private key found "
			    "(expected '-----BEGIN PRIVATE KEY-----')");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return -ENOMEM;
	*out = PEM_read_bio_PrivateKey(bio, NULL, no_password, &asked);
	BIO_free(bio);
	if (*out)
		return 0;
	if (asked) {
		ERR_clear_error();
		return fail(err, errlen, -EINVAL,
			    "the private key is encrypted; store it "
			    "unencrypted with mode 0600 (openssl pkey -in F -out F.plain)");
	}
	return fail_ssl(err, errlen, -EINVAL, "not a valid PEM private key");
}

/* ---- writing ------------------------------------------------------------ */

/* PEM of a certificate or (in secure memory when there is some) a key. */
static int pem_out(X509 *x, EVP_PKEY *pk, char **out, size_t *outlen)
{
	BIO *bio = BIO_new(pk ? BIO_s_secmem() : BIO_s_mem());
	char *data, *s = NULL;
	long n = -1;

	if (bio && (x ? PEM_write_bio_X509(bio, x)
		      : PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL)))
		n = BIO_get_mem_data(bio, &data);
	if (n >= 0 && (s = malloc((size_t)n + 1))) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
		*out = s;
		if (outlen)
			*outlen = (size_t)n;
	}
	BIO_free(bio);
	return s ? 0 : -ENOMEM;
}

int edge_pki_cert_pem(X509 *x, char **out)
{
	return pem_out(x, NULL, out, NULL);
}

int edge_pki_key_pem(EVP_PKEY *pk, char **out, size_t *len)
{
	return pem_out(NULL, pk, out, len);
}

/* ---- facts -------------------------------------------------------------- */

void edge_pki_fingerprint(X509 *x, char out[EDGE_PKI_FP_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (!X509_digest(x, EVP_sha256(), md, &n))
		return;
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02X", md[i]);
}

int edge_pki_subject(const X509_NAME *n, char *out, size_t outlen)
{
	unsigned long flags = (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB) |
			      ASN1_STRFLGS_UTF8_CONVERT;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	int rc = -ENOMEM;

	if (bio && X509_NAME_print_ex(bio, n, 0, flags) >= 0) {
		long len = BIO_get_mem_data(bio, &data);

		snprintf(out, outlen, "%.*s", (int)len, data);
		rc = 0;
	}
	BIO_free(bio);
	return rc;
}

int edge_pki_cn(const X509_NAME *n, char *out, size_t outlen)
{
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *u = NULL;
	int len;

	if (i < 0)
		return -ENOENT;
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len < 0)
		return -EINVAL;
	snprintf(out, outlen, "%.*s", len, (char *)u);
	OPENSSL_free(u);
	return 0;
}

int edge_pki_serial(X509 *x, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	BN_free(bn);
	if (hex)
		snprintf(out, outlen, "%s", hex);
	OPENSSL_free(hex);
	return hex ? 0 : -ENOMEM;
}

int edge_pki_asn1_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int edge_pki_validity(X509 *x, int64_t *not_before, int64_t *not_after)
{
	return edge_pki_asn1_time(X509_get0_notBefore(x), not_before)
		       ?: edge_pki_asn1_time(X509_get0_notAfter(x), not_after);
}

/* ---- checks ------------------------------------------------------------- */

int edge_pki_check_time(X509 *x, time_t now, char *err, size_t errlen)
{
	int64_t nb, na;
	char when[32];

	if (edge_pki_validity(x, &nb, &na))
		return fail(err, errlen, -EINVAL, "unreadable validity dates");
	if (na < (int64_t)now)
		return fail(err, errlen, -EKEYEXPIRED, "the certificate has expired (notAfter %s)",
			    iso_time(na, when));
	if (nb > (int64_t)now)
		return fail(err, errlen, -EKEYEXPIRED,
			    "the certificate is not yet valid "
			    "(notBefore %s)",
			    iso_time(nb, when));
	return 0;
}

int edge_pki_check_ca(X509 *x, time_t now, char *err, size_t errlen)
{
	uint32_t flags = X509_get_extension_flags(x), ku = X509_get_key_usage(x);

	if (flags & EXFLAG_INVALID)
		return fail(err, errlen, -EINVAL, "invalid or duplicate extensions");
	if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
		return fail(err, errlen, -EINVAL,
			    "not a CA certificate: basicConstraints "
			    "CA:TRUE is missing");
	/* Strict, as the managed edges are: a CA that may sign certificates says so. */
	if (ku == UINT32_MAX)
		return fail(err, errlen, -EINVAL,
			    "not a CA certificate: no keyUsage extension "
			    "(a CA must carry keyUsage with keyCertSign)");
	if (!(ku & KU_KEY_CERT_SIGN))
		return fail(err, errlen, -EINVAL,
			    "not a CA certificate: keyUsage lacks "
			    "keyCertSign");
	return edge_pki_check_time(x, now, err, errlen);
}

int edge_pki_check_crl(X509_CRL *crl, X509 *ca, time_t now, int64_t *next_update, char *err,
		       size_t errlen)
{
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
	uint32_t ku = X509_get_key_usage(ca);
	char a[256], b[256], when[32];
	int64_t last, next = 0;

	ERR_clear_error();
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca))) {
		edge_pki_subject(X509_CRL_get_issuer(crl), a, sizeof(a));
		edge_pki_subject(X509_get_subject_name(ca), b, sizeof(b));
		return fail(err, errlen, -EINVAL,
			    "the CRL was issued by '%s', not by this CA "
			    "('%s')",
			    a, b);
	}
	if (ku != UINT32_MAX && !(ku & KU_CRL_SIGN))
		return fail(err, errlen, -EINVAL,
			    "this CA's keyUsage lacks cRLSign: it "
			    "cannot sign CRLs");
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
		return fail_ssl(err, errlen, -EINVAL,
				"the CRL's signature does not verify with "
				"this CA's key");
	/* What verification would refuse it for (no CRLNumber, a delta, an unhandled
	 * critical extension): refused here, in the verifier's words. */
	if (edge_crl_problem(crl, a, sizeof(a)))
		return fail(err, errlen, -EINVAL, "%s", a);
	if (edge_pki_asn1_time(X509_CRL_get0_lastUpdate(crl), &last) ||
	    (nu && edge_pki_asn1_time(nu, &next)))
		return fail(err, errlen, -EINVAL, "the CRL has unreadable dates");
	if (last > (int64_t)now)
		return fail(err, errlen, -EKEYEXPIRED, "the CRL is not yet valid (lastUpdate %s)",
			    iso_time(last, when));
	if (nu && next <= (int64_t)now)
		return fail(err, errlen, -EKEYEXPIRED, "the CRL has expired (nextUpdate %s)",
			    iso_time(next, when));
	*next_update = next;
	return 0;
}

int edge_pki_check_chain(STACK_OF(X509) *chain, EVP_PKEY *key, time_t now, char *err, size_t errlen)
{
	X509 *leaf = sk_X509_value(chain, 0);

	ERR_clear_error();
	for (int i = 0; i + 1 < sk_X509_num(chain); i++) {
		int v = X509_check_issued(sk_X509_value(chain, i + 1), sk_X509_value(chain, i));

		if (v != X509_V_OK)
			return fail(err, errlen, -EINVAL,
				    "certificate %d of the chain did not "
				    "issue certificate %d (%s); order it leaf first",
				    i + 2, i + 1, X509_verify_cert_error_string(v));
		if (X509_verify(sk_X509_value(chain, i),
				X509_get0_pubkey(sk_X509_value(chain, i + 1))) != 1)
			return fail_ssl(err, errlen, -EINVAL,
					"the signature of chain "
					"certificate %d does not verify",
					i + 1);
	}
	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		return fail(err, errlen, -EINVAL,
			    "the private key does not match the "
			    "certificate (the first one in the chain file)");
	}
	return edge_pki_check_time(leaf, now, err, errlen);
}

/* ---- issuing ------------------------------------------------------------ */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

static int add_names(GENERAL_NAMES *gens, int type, char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char host[EDGE_HOSTNAME_LEN];
		bool dns = type == GEN_DNS &&
			   !edge_hostname_norm(v[i], true, host, sizeof(host), NULL, 0);
		GENERAL_NAME *g = a2i_GENERAL_NAME(NULL, NULL, NULL, type, dns ? host : v[i], 0);

		if (!g || !sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			return -EINVAL;
		}
	}
	return 0;
}

/* One certificate: v3, random positive 128-bit serial, notBefore backdated,
 * subject [O=org,] CN=cn, the extensions in ext[] (value NULL ends), SANs. The
 * issuer is ca, or the certificate itself when ca is NULL. */
static int build(X509 *ca, EVP_PKEY *sign_key, EVP_PKEY *pub, const char *org, const char *cn,
		 const char *const ext[][2], GENERAL_NAMES *sans, long days, time_t now, X509 **out)
{
	unsigned char rnd[16];
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
	bool ok;

	ok = x && RAND_bytes(rnd, sizeof(rnd)) == 1;
	if (ok) {
		rnd[0] = (rnd[0] & 0x7f) | 0x40; /* positive, always 32 hex digits */
		bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
		sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	}
	ok = ok && sn && X509_set_version(x, X509_VERSION_3) && X509_set_serialNumber(x, sn) &&
	     X509_time_adj_ex(X509_getm_notBefore(x), 0, -EDGE_PKI_BACKDATE, &now) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now) &&
	     (!org || X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
						 (const unsigned char *)org, -1, -1, 0)) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name) &&
	     X509_set_pubkey(x, pub);
	for (int i = 0; ok && ext[i][1]; i++)
		ok = !add_ext(x, ca ? ca : x, OBJ_sn2nid(ext[i][0]), ext[i][1]);
	ok = ok &&
	     (!sans || X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT)) &&
	     X509_sign(x, sign_key,
		       EVP_PKEY_is_a(sign_key, "EC") && EVP_PKEY_get_bits(sign_key) == 384
			       ? EVP_sha384()
			       : EVP_sha256());
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	if (!ok)
		X509_free(x);
	*out = ok ? x : NULL;
	return ok ? 0 : -EIO;
}

int edge_pki_make_ca(EVP_PKEY *key, const char *org, time_t now, X509 **out, char *err,
		     size_t errlen)
{
	static const char *const ext[][2] = {
		{ "basicConstraints", "critical,CA:TRUE,pathlen:0" },
		{ "keyUsage", "critical,keyCertSign,cRLSign" },
		{ "subjectKeyIdentifier", "hash" },
		{ NULL, NULL },
	};

	ERR_clear_error();
	if (build(NULL, key, key, org, EDGE_PKI_CA_CN, ext, NULL, EDGE_PKI_CA_DAYS, now, out))
		return fail_ssl(err, errlen, -EIO, "cannot create the CA certificate");
	return 0;
}

int edge_pki_issue_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
			  const struct edge_pki_client *req, X509 **out, char *err, size_t errlen)
{
	const char *const ext[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", EVP_PKEY_is_a(pub, "RSA") ? "critical,digitalSignature,"
							  "keyEncipherment"
							: "critical,digitalSignature" },
		{ "extendedKeyUsage", "clientAuth" },
		{ "subjectKeyIdentifier", "hash" },
		{ "authorityKeyIdentifier", "keyid:always" },
		{ NULL, NULL },
	};
	GENERAL_NAMES *gens = NULL;
	int rc = 0;

	ERR_clear_error();
	*out = NULL;
	if (req->ndns + req->nuri + req->nemail) {
		gens = sk_GENERAL_NAME_new_null();
		if (!gens || add_names(gens, GEN_DNS, req->dns, req->ndns) ||
		    add_names(gens, GEN_URI, req->uri, req->nuri) ||
		    add_names(gens, GEN_EMAIL, req->email, req->nemail))
			rc = -ENOMEM;
	}
	if (!rc)
		rc = build(ca, ca_key, pub, NULL, req->cn, ext, gens, req->days, req->now, out);
	GENERAL_NAMES_free(gens);
	return rc ? fail_ssl(err, errlen, rc, "cannot issue the certificate") : 0;
}
