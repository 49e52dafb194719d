/* What the CRL fetcher takes from a certificate (its distribution point) and from a CRL (its
 * number), on certificates and CRLs made here. The fetching itself: tests/e2e/crlfetch.bats. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "crlfetch.h"
#include "tap.h"
#include "verify.h"

static EVP_PKEY *key;

/* A certificate with a cRLDistributionPoints of `dp` (openssl's config syntax), or none. */
static X509 *with_dp(const char *dp)
{
	X509 *x = X509_new();

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (dp) {
		X509V3_CTX ctx;
		X509_EXTENSION *e;
		CONF *conf = NCONF_new(NULL);
		long line;
		BIO *b = BIO_new_mem_buf("[dp]\nfullname=URI:http://crl.example/full.crl\n"
					 "reasons=keyCompromise\n"
					 "[ind]\nfullname=URI:http://crl.example/ind.crl\n"
					 "CRLissuer=dirName:iss\n[iss]\nCN=other\n",
					 -1);

		NCONF_load_bio(conf, b, &line);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		X509V3_set_nconf(&ctx, conf);
		e = X509V3_EXT_nconf(conf, &ctx, "crlDistributionPoints", dp);
		if (!e)
			BAIL_OUT("cannot make crlDistributionPoints=%s", dp);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		NCONF_free(conf);
		BIO_free(b);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

static const char *dp_of(const char *dp)
{
	static char url[EDGE_CRLFETCH_URL];
	X509 *x = with_dp(dp);
	bool found = edge_crl_dp_url(x, url, sizeof(url));

	X509_free(x);
	return found ? url : "(none)";
}

static X509_CRL *crl_numbered(long n)
{
	X509_CRL *c = X509_CRL_new();

	if (n >= 0) {
		ASN1_INTEGER *i = ASN1_INTEGER_new();

		ASN1_INTEGER_set(i, n);
		X509_CRL_add1_ext_i2d(c, NID_crl_number, i, 0, 0);
		ASN1_INTEGER_free(i);
	}
	return c;
}

int main(void)
{
	key = EVP_EC_gen("P-256");

	is_str(dp_of("URI:http://crl.example/ca.crl"), "http://crl.example/ca.crl",
	       "an http:// distribution point");
	is_str(dp_of("URI:ldap://crl.example/x,URI:http://crl.example/b.crl"),
	       "http://crl.example/b.crl", "the first http:// one of several names");
	is_str(dp_of("URI:https://crl.example/ca.crl"), "(none)", "https:// is not followed");
	is_str(dp_of("dp"), "(none)", "a point for some reasons only is not the full CRL");
	is_str(dp_of("ind"), "(none)", "a point another issuer signs (indirect) is not followed");
	is_str(dp_of("URI:http://crl.example/a b"), "(none)", "a URL with a space is refused");
	is_str(dp_of(NULL), "(none)", "no extension");
	{
		char big[700];

		memset(big, 'a', sizeof(big));
		memcpy(big, "URI:http://", 11);
		big[sizeof(big) - 1] = '\0';
		is_str(dp_of(big), "(none)", "a URL longer than EDGE_CRLFETCH_URL is refused");
	}
	{
		X509_CRL *one = crl_numbered(1), *two = crl_numbered(2), *none = crl_numbered(-1);

		ok(edge_crl_number_cmp(two, one) > 0 && edge_crl_number_cmp(one, two) < 0 &&
			   edge_crl_number_cmp(one, one) == 0,
		   "CRLNumbers compare");
		ok(edge_crl_number_cmp(one, none) > 0 && edge_crl_number_cmp(none, one) < 0,
		   "a CRL without a number is the oldest");
		X509_CRL_free(one);
		X509_CRL_free(two);
		X509_CRL_free(none);
	}
	EVP_PKEY_free(key);
	return tap_done();
}
