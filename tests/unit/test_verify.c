/* The verifier on an in-memory PKI: every reason it names. */
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tap.h"
#include "verify.h"

static EVP_PKEY *key(void)
{
	return EVP_EC_gen("P-256");
}

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* Issues a certificate for pk signed by (issuer, ikey); self-signed when
 * issuer is NULL. Validity is [now + from, now + to] seconds. */
static const EVP_MD *sign_md;

static X509 *issue(const char *cn, EVP_PKEY *pk, X509 *issuer, EVP_PKEY *ikey, long serial,
		   long from, long to, const char *bc, const char *eku)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509_set_pubkey(x, pk);
	ext(x, issuer ? issuer : x, NID_basic_constraints, bc);
	ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
	if (issuer)
		ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (!strncmp(bc, "critical,CA:TRUE", 16))
		ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	else
		ext(x, issuer ? issuer : x, NID_key_usage, "critical,digitalSignature");
	if (eku)
		ext(x, issuer ? issuer : x, NID_ext_key_usage, eku);
	X509_sign(x, ikey ? ikey : pk, sign_md ? sign_md : EVP_sha256());
	return x;
}

static X509_CRL *crl(X509 *ca, EVP_PKEY *cakey, long revoked_serial, long next_update)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(c, 1);
	{
		ASN1_INTEGER *num = ASN1_INTEGER_new();

		ASN1_INTEGER_set(num, 1);
		X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, 0);
		ASN1_INTEGER_free(num);
	}
	X509_CRL_set_issuer_name(c, X509_get_subject_name(ca));
	X509_gmtime_adj(t, -60);
	X509_CRL_set1_lastUpdate(c, t);
	X509_gmtime_adj(t, next_update);
	X509_CRL_set1_nextUpdate(c, t);
	if (revoked_serial) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, revoked_serial);
		X509_REVOKED_set_serialNumber(r, sn);
		X509_gmtime_adj(t, -30);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(c, r);
		ASN1_INTEGER_free(sn);
	}
	X509_CRL_sort(c);
	X509_CRL_sign(c, cakey, EVP_sha256());
	ASN1_TIME_free(t);
	return c;
}

static enum edge_reason run(struct edge_trust *t, X509 *leaf, STACK_OF(X509) *chain,
			    struct edge_verify_result *r)
{
	edge_verify_chain(t, leaf, chain, 0, r);
	return r->reason;
}

int main(void)
{
	const long day = 86400;
	EVP_PKEY *bk = key(), *uk = key(), *ok_k = key(), *ik = key(), *ik2 = key(), *ek = key();
	X509 *builtin = issue("builtin", bk, NULL, NULL, 1, -1000 * day, 3650 * day,
			      "critical,CA:TRUE", NULL);
	X509 *uploaded = issue("uploaded", uk, NULL, NULL, 2, -day, 3650 * day, "critical,CA:TRUE",
			       NULL);
	X509 *other = issue("other", ek, NULL, NULL, 3, -day, 3650 * day, "critical,CA:TRUE", NULL);
	X509 *alice = issue("alice", ok_k, builtin, bk, 100, -day, 365 * day, "critical,CA:FALSE",
			    "clientAuth");
	X509 *bob = issue("bob", ok_k, builtin, bk, 101, -day, 365 * day, "critical,CA:FALSE",
			  "clientAuth");
	X509 *expired = issue("old", ok_k, builtin, bk, 102, -400 * day, -30 * day,
			      "critical,CA:FALSE", "clientAuth");
	X509 *future = issue("future", ok_k, builtin, bk, 103, 10 * day, 365 * day,
			     "critical,CA:FALSE", "clientAuth");
	X509 *leaf_ca = issue("leafca", ok_k, builtin, bk, 104, -day, 365 * day, "critical,CA:TRUE",
			      "clientAuth");
	X509 *server_only = issue("srv", ok_k, builtin, bk, 105, -day, 365 * day,
				  "critical,CA:FALSE", "serverAuth");
	X509 *foreign = issue("mallory", ok_k, other, ek, 106, -day, 365 * day, "critical,CA:FALSE",
			      "clientAuth");
	X509 *carol = issue("carol", ok_k, uploaded, uk, 200, -day, 365 * day, "critical,CA:FALSE",
			    "clientAuth");
	X509 *dave = issue("dave", ok_k, uploaded, uk, 201, -day, 365 * day, "critical,CA:FALSE",
			   "clientAuth");
	X509 *inter1 = issue("inter1", ik, builtin, bk, 300, -day, 365 * day, "critical,CA:TRUE",
			     NULL);
	X509 *inter2 = issue("inter2", ik2, inter1, ik, 301, -day, 365 * day, "critical,CA:TRUE",
			     NULL);
	X509 *deep = issue("deep", ok_k, inter2, ik2, 302, -day, 365 * day, "critical,CA:FALSE",
			   "clientAuth");
	X509_CRL *crl_dave = crl(uploaded, uk, 201, 7 * day);
	X509_CRL *crl_stale = crl(uploaded, uk, 0, -60);
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct edge_trust *t = edge_trust_new(3), *t_up, *t_stale, *t_shallow;
	struct edge_verify_result r;
	char *revoked[] = { "65" }; /* bob, serial 101 */

	edge_trust_add_ca(t, builtin, true);
	is_int(run(t, alice, NULL, &r), EDGE_REASON_OK, "built-in CA cert verifies");
	ok(r.builtin_anchor, "anchored at the built-in CA");
	ok(!strcmp(r.serial, "64"), "serial as upper-case hex: %s", r.serial);
	ok(strstr(r.subject, "CN=alice") != NULL, "subject recorded: %s", r.subject);
	ok(r.not_after > time(NULL), "not_after recorded");
	is_int(run(t, bob, NULL, &r), EDGE_REASON_OK, "a second cert from the same CA verifies");
	is_int(run(t, expired, NULL, &r), EDGE_REASON_CERT_EXPIRED, "expired refused");
	ok(!strcmp(r.detail, "certificate has expired"), "OpenSSL's words kept: %s", r.detail);
	is_int(run(t, future, NULL, &r), EDGE_REASON_CERT_NOT_YET_VALID, "not yet valid refused");
	is_int(run(t, foreign, NULL, &r), EDGE_REASON_UNKNOWN_CA, "unknown CA refused");
	is_int(run(t, carol, NULL, &r), EDGE_REASON_UNKNOWN_CA,
	       "uploaded CA's cert refused where that CA is not bound");
	is_int(run(t, leaf_ca, NULL, &r), EDGE_REASON_LEAF_IS_CA, "leaf with CA:TRUE refused");
	is_int(run(t, server_only, NULL, &r), EDGE_REASON_INVALID_PURPOSE,
	       "serverAuth-only EKU refused");
	is_int(run(t, NULL, NULL, &r), EDGE_REASON_NO_CLIENT_CERT, "no certificate named");
	ok(edge_verify_chain(t, expired, NULL, time(NULL) - 200 * 86400, &r) == 0,
	   "--at in the past: the then-valid cert verifies");

	sk_X509_push(chain, inter2);
	sk_X509_push(chain, inter1);
	is_int(run(t, deep, chain, &r), EDGE_REASON_OK, "two intermediates within depth 3");
	t_shallow = edge_trust_new(1);
	edge_trust_add_ca(t_shallow, builtin, true);
	is_int(run(t_shallow, deep, chain, &r), EDGE_REASON_CHAIN_TOO_LONG,
	       "two intermediates refused at depth 1");

	edge_trust_set_revoked(t, revoked, 1);
	is_int(run(t, bob, NULL, &r), EDGE_REASON_CERT_REVOKED, "built-in revoked serial refused");
	is_int(run(t, alice, NULL, &r), EDGE_REASON_OK, "other built-in certs unaffected");

	t_up = edge_trust_new(3);
	edge_trust_add_ca(t_up, uploaded, false);
	edge_trust_add_crl(t_up, uploaded, crl_dave);
	is_int(run(t_up, carol, NULL, &r), EDGE_REASON_OK, "bound uploaded CA's cert verifies");
	ok(!r.builtin_anchor, "not anchored at the built-in CA");
	is_int(run(t_up, dave, NULL, &r), EDGE_REASON_CERT_REVOKED, "CRL-revoked cert refused");
	is_int(run(t_up, alice, NULL, &r), EDGE_REASON_UNKNOWN_CA,
	       "no built-in trust where it was not added");

	t_stale = edge_trust_new(3);
	edge_trust_add_ca(t_stale, uploaded, false);
	edge_trust_add_crl(t_stale, uploaded, crl_stale);
	is_int(run(t_stale, carol, NULL, &r), EDGE_REASON_CRL_EXPIRED,
	       "CRL past nextUpdate refuses (never fail open)");

	ok(!strcmp(edge_reason_name(EDGE_REASON_CERT_EXPIRED), "cert_expired"),
	   "stable reason name");

	{
		EVP_PKEY *weak = EVP_RSA_gen(1024);
		X509 *small = issue("small", weak, builtin, bk, 400, -day, day, "critical,CA:FALSE",
				    "clientAuth");
		X509 *sha1;

		is_int(run(t, small, NULL, &r), EDGE_REASON_WEAK_KEY,
		       "RSA-1024 client key refused");
		sign_md = EVP_sha1();
		sha1 = issue("sha1", ok_k, builtin, bk, 401, -day, day, "critical,CA:FALSE",
			     "clientAuth");
		sign_md = NULL;
		is_int(run(t, sha1, NULL, &r), EDGE_REASON_WEAK_SIGNATURE,
		       "SHA-1-signed client certificate refused (%s)", r.detail);
		X509_free(small);
		X509_free(sha1);
		EVP_PKEY_free(weak);
	}

	edge_trust_free(t);
	edge_trust_free(t_up);
	edge_trust_free(t_stale);
	edge_trust_free(t_shallow);
	sk_X509_free(chain);
	X509 *all[] = { builtin,     uploaded, other, alice, bob,    expired, future, leaf_ca,
			server_only, foreign,  carol, dave,  inter1, inter2,  deep };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		X509_free(all[i]);
	X509_CRL_free(crl_dave);
	X509_CRL_free(crl_stale);
	EVP_PKEY *keys[] = { bk, uk, ok_k, ik, ik2, ek };
	for (size_t i = 0; i < 6; i++)
		EVP_PKEY_free(keys[i]);
	return tap_done();
}
