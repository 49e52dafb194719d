/*
 * The verifier against RFC 5280 and the CA/B profile, one case per class of
 * docs/verify.md: each refused with its stable check name, beside a control
 * that differs only in what the class is about and passes. Certificates are
 * made in memory (certgen.h).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "tap.h"
#include "verify.h"

static struct edge_verify_result r;

/* The verdict on leaf with the chain (NULL-terminated) under trust. */
static const char *verdict(struct edge_trust *t, X509 *leaf, X509 *const *chain, time_t at)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	for (int i = 0; chain && chain[i]; i++)
		sk_X509_push(sk, chain[i]);
	edge_verify_chain(t, leaf, sk, at, &r);
	sk_X509_free(sk);
	return r.reason == EDGE_REASON_OK ? "ok" : r.check;
}

static struct edge_trust *trust_of(X509 *anchor, int depth)
{
	struct edge_trust *t = edge_trust_new(depth);

	edge_trust_add_named_ca(t, anchor, false, "partner", NULL);
	return t;
}

static long serial_of(X509 *x)
{
	return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

int main(void)
{
	EVP_PKEY *rk = EVP_EC_gen("P-256"), *ik = EVP_EC_gen("P-256"), *lk = EVP_EC_gen("P-256");
	EVP_PKEY *rk2 = EVP_EC_gen("P-256");
	X509 *root = make(&(struct spec){ .cn = "root", .key = rk, .ca = true });
	X509 *inter = make(&(struct spec){ .cn = "inter",
					   .key = ik,
					   .issuer = root,
					   .ikey = rk,
					   .ca = true });
	X509 *leaf = make(&(struct spec){ .cn = "leaf", .key = lk, .issuer = inter, .ikey = ik });
	X509 *direct =
		make(&(struct spec){ .cn = "direct", .key = lk, .issuer = root, .ikey = rk });
	struct edge_trust *t = trust_of(root, 3), *t0 = trust_of(root, 0);
	X509 *chain[] = { inter, NULL };
	char why[200];

	is_str(verdict(t, leaf, chain, 0), "ok", "control: root -> intermediate -> leaf");
	is_str(verdict(t, direct, NULL, 0), "ok", "control: root -> leaf");

	/* --- CRLs --- */
	{
		X509_CRL *crit = make_crl(root, rk, 0, true, "1.3.6.1.4.1.99999.1", 7 * 86400L);
		X509_CRL *nonum = make_crl(root, rk, 0, false, NULL, 7 * 86400L);
		X509_CRL *good = make_crl(root, rk, serial_of(inter), true, NULL, 7 * 86400L);
		struct edge_trust *tc = trust_of(root, 3), *tn = trust_of(root, 3),
				  *tg = trust_of(root, 3);

		ok(edge_crl_problem(crit, why, sizeof(why)) &&
			   !strncmp(why, "crl_unhandled_critical_extension:", 33),
		   "a CRL with an unhandled critical extension is unusable: %s", why);
		edge_trust_add_crl(tc, root, crit);
		is_str(verdict(tc, direct, NULL, 0), "crl_unhandled_critical_extension",
		       "... and refuses the chains of its CA at verification");
		is_int(r.reason, EDGE_REASON_CRL_INVALID, "... as crl_invalid");
		ok(edge_crl_problem(nonum, why, sizeof(why)) &&
			   !strncmp(why, "crl_number_missing:", 19),
		   "a CRL without CRLNumber is unusable: %s", why);
		edge_trust_add_crl(tn, root, nonum);
		is_str(verdict(tn, direct, NULL, 0), "crl_number_missing",
		       "... and refuses at verification");
		ok(!edge_crl_problem(good, why, sizeof(why)), "control: a v2 CRL with CRLNumber");
		edge_trust_add_crl(tg, root, good);
		is_str(verdict(tg, direct, NULL, 0), "ok", "control: its CA's chains verify");
		is_str(verdict(tg, leaf, chain, 0), "cert_revoked",
		       "every CA of the path is checked: an intermediate the root's CRL revokes");
		X509_CRL_free(crit);
		X509_CRL_free(nonum);
		X509_CRL_free(good);
		edge_trust_free(tc);
		edge_trust_free(tn);
		edge_trust_free(tg);
	}
	{
		/* A CRL for the intermediate, given by issuer name only (verify --crl). */
		X509_CRL *ic = make_crl(inter, ik, serial_of(leaf), true, NULL, 7 * 86400L);
		struct edge_trust *ti = trust_of(root, 3);

		edge_trust_add_crl(ti, NULL, ic);
		is_str(verdict(ti, leaf, chain, 0), "cert_revoked",
		       "an intermediate's CRL revokes its leaf");
		X509_CRL_free(ic);
		edge_trust_free(ti);
	}

	/* --- each class of nonconforming certificate, refused by name --- */
	{
		X509 *x = make(&(struct spec){ .cn = "ksign",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .ku = "critical,digitalSignature,keyCertSign" });

		is_str(verdict(t, x, NULL, 0), "key_cert_sign_in_non_ca",
		       "a leaf whose keyUsage has keyCertSign");
		X509_free(x);
	}
	{
		X509 *r2 = make(&(struct spec){ .cn = "root-nc",
						.key = rk2,
						.ca = true,
						.bc = "CA:TRUE" });
		X509 *x = make(&(struct spec){ .cn = "l", .key = lk, .issuer = r2, .ikey = rk2 });
		X509 *i2 = make(&(struct spec){ .cn = "inter-nc",
						.key = ik,
						.issuer = root,
						.ikey = rk,
						.ca = true,
						.bc = "CA:TRUE" });
		X509 *y = make(&(struct spec){ .cn = "l2", .key = lk, .issuer = i2, .ikey = ik });
		X509 *c2[] = { i2, NULL };
		struct edge_trust *t2 = trust_of(r2, 3);

		is_str(verdict(t2, x, NULL, 0), "ca_basic_constraints_not_critical",
		       "a root whose basicConstraints is not critical");
		is_str(verdict(t, y, c2, 0), "ca_basic_constraints_not_critical",
		       "an intermediate whose basicConstraints is not critical");
		edge_trust_free(t2);
		X509_free(r2);
		X509_free(x);
		X509_free(i2);
		X509_free(y);
	}
	{
		X509 *x = make(&(struct spec){ .cn = "noakid",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .no_akid = true });
		X509 *i2 = make(&(struct spec){ .cn = "noskid",
						.key = ik,
						.issuer = root,
						.ikey = rk,
						.ca = true,
						.no_skid = true });
		X509 *y = make(&(struct spec){
			.cn = "l",
			.key = lk,
			.issuer = i2,
			.ikey = ik,
			.no_akid = true,
			.raw_nid = NID_authority_key_identifier,
			/* a keyIdentifier of its own: the issuer has none to copy */
			.raw_hex = "3016801401020304050607080910111213141516"
				   "17181920" });
		X509 *c2[] = { i2, NULL };

		is_str(verdict(t, x, NULL, 0), "authority_key_id_missing",
		       "a leaf without authorityKeyIdentifier");
		is_str(verdict(t, y, c2, 0), "subject_key_id_missing",
		       "a CA without subjectKeyIdentifier");
		X509_free(x);
		X509_free(i2);
		X509_free(y);
	}
	{
		static const unsigned char zero[] = { 0 };
		static const unsigned char s20[20] = { 0x7f, 1,  2,  3,  4,  5,  6,  7,  8,  9,
						       10,   11, 12, 13, 14, 15, 16, 17, 18, 19 };
		static const unsigned char s21[21] = { 0x7f, 1,  2,  3,  4,  5,  6,  7,  8,  9, 10,
						       11,   12, 13, 14, 15, 16, 17, 18, 19, 20 };
		X509 *z = make(&(struct spec){ .cn = "z",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .serial = zero,
					       .serial_len = 1 });
		X509 *a = make(&(struct spec){ .cn = "a",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .serial = s20,
					       .serial_len = 20 });
		X509 *b = make(&(struct spec){ .cn = "b",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .serial = s21,
					       .serial_len = 21 });

		is_str(verdict(t, z, NULL, 0), "serial_zero", "serial number zero");
		is_str(verdict(t, a, NULL, 0), "ok", "control: a serial of 20 octets");
		is_str(verdict(t, b, NULL, 0), "serial_too_long", "a serial of 21 octets");
		X509_free(z);
		X509_free(a);
		X509_free(b);
	}
	{
		X509 *v1 = make(&(struct spec){ .cn = "v1",
						.key = lk,
						.issuer = root,
						.ikey = rk,
						.v1 = true });

		is_str(verdict(t, v1, NULL, 0), "not_v3", "a v1 leaf");
		X509_free(v1);
	}
	{
		/* AIA whose content is an INTEGER, not a SEQUENCE of AccessDescription */
		X509 *x = make(&(struct spec){ .cn = "aia",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .raw_nid = NID_info_access,
					       .raw_hex = "020101" });

		is_str(verdict(t, x, NULL, 0), "malformed_extension",
		       "a malformed authorityInfoAccess (%s)", r.detail);
		X509_free(x);
	}
	{
		X509 *i2 = make(&(struct spec){
			.cn = "pc",
			.key = ik,
			.issuer = root,
			.ikey = rk,
			.ca = true,
			.ext = { "policyConstraints=requireExplicitPolicy:0" } });
		X509 *i3 = make(&(struct spec){
			.cn = "pc",
			.key = ik,
			.issuer = root,
			.ikey = rk,
			.ca = true,
			.ext = { "policyConstraints=critical,inhibitPolicyMapping:3" } });
		X509 *y = make(&(struct spec){ .cn = "l", .key = lk, .issuer = i2, .ikey = ik });
		X509 *c2[] = { i2, NULL }, *c3[] = { i3, NULL };

		is_str(verdict(t, y, c2, 0), "policy_constraints_not_critical",
		       "a CA with a non-critical policyConstraints");
		is_str(verdict(t, y, c3, 0), "ok", "control: critical policyConstraints");
		X509_free(i2);
		X509_free(i3);
		X509_free(y);
	}
	{
		X509 *x = make(&(struct spec){ .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .ext = { "subjectAltName=DNS:a.example.com" } });
		X509 *y = make(&(struct spec){
			.key = lk,
			.issuer = root,
			.ikey = rk,
			.ext = { "subjectAltName=critical,DNS:a.example.com" } });

		is_str(verdict(t, x, NULL, 0), "san_not_critical_with_empty_subject",
		       "an empty subject with a non-critical SAN");
		is_str(verdict(t, y, NULL, 0), "ok", "control: the same SAN critical");
		X509_free(x);
		X509_free(y);
	}
	{
		X509 *x = make(&(struct spec){
			.cn = "ncleaf",
			.key = lk,
			.issuer = root,
			.ikey = rk,
			.ext = { "nameConstraints=critical,permitted;DNS:example.com" } });

		is_str(verdict(t, x, NULL, 0), "name_constraints_in_leaf",
		       "name constraints in an end-entity certificate");
		X509_free(x);
	}
	{
		X509 *dot = make(&(struct spec){
			.cn = "nc",
			.key = ik,
			.issuer = root,
			.ikey = rk,
			.ca = true,
			.ext = { "nameConstraints=critical,permitted;DNS:.example.com" } });
		X509 *empty = make(&(struct spec){ .cn = "nc",
						   .key = ik,
						   .issuer = root,
						   .ikey = rk,
						   .ca = true,
						   .raw_nid = NID_name_constraints,
						   .raw_hex = "3000",
						   .raw_crit = true });
		X509 *good = make(&(struct spec){
			.cn = "nc",
			.key = ik,
			.issuer = root,
			.ikey = rk,
			.ca = true,
			.ext = { "nameConstraints=critical,permitted;DNS:example.com" } });
		X509 *in = make(&(struct spec){ .cn = "in",
						.key = lk,
						.issuer = good,
						.ikey = ik,
						.ext = { "subjectAltName=DNS:a.example.com" } });
		X509 *bad = make(&(struct spec){ .cn = "bad",
						 .key = lk,
						 .issuer = good,
						 .ikey = ik,
						 .ext = { "subjectAltName=DNS:a..example.com" } });
		X509 *hy = make(&(struct spec){ .cn = "hy",
						.key = lk,
						.issuer = good,
						.ikey = ik,
						.ext = { "subjectAltName=DNS:-a.example.com" } });
		X509 *cd[] = { dot, NULL }, *ce[] = { empty, NULL }, *cg[] = { good, NULL };

		is_str(verdict(t, in, cd, 0), "name_constraints_malformed",
		       "a dNSName subtree with a leading period");
		is_str(verdict(t, in, ce, 0), "name_constraints_empty",
		       "name constraints with no subtree");
		is_str(verdict(t, in, cg, 0), "ok", "control: a well-formed permitted subtree");
		is_str(verdict(t, bad, cg, 0), "invalid_san",
		       "a SAN the subtree admits that is no DNS name (empty label)");
		is_str(verdict(t, hy, cg, 0), "invalid_san",
		       "... (a label starting with a hyphen)");
		X509 *all[] = { dot, empty, good, in, bad, hy };
		for (int i = 0; i < 6; i++)
			X509_free(all[i]);
	}
	{
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
		EVP_PKEY *params = NULL, *dsa = NULL, *odd = rsa_public(2049),
			 *even = rsa_public(2048);
		EVP_PKEY_CTX *kc;

		EVP_PKEY_paramgen_init(pc);
		EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, 2048);
		EVP_PKEY_CTX_set_dsa_paramgen_q_bits(pc, 224);
		EVP_PKEY_paramgen(pc, &params);
		kc = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
		EVP_PKEY_keygen_init(kc);
		EVP_PKEY_keygen(kc, &dsa);
		if (!dsa || !odd || !even)
			BAIL_OUT("cannot make the DSA and RSA keys");
		X509 *d =
			make(&(struct spec){ .cn = "dsa", .key = dsa, .issuer = root, .ikey = rk });
		X509 *o =
			make(&(struct spec){ .cn = "odd", .key = odd, .issuer = root, .ikey = rk });
		X509 *e = make(&(struct spec){ .cn = "even",
					       .key = even,
					       .issuer = root,
					       .ikey = rk });

		is_str(verdict(t, d, NULL, 0), "dsa_key", "a DSA key (2048 bits)");
		is_str(verdict(t, o, NULL, 0), "rsa_modulus_size", "an RSA modulus of 2049 bits");
		is_str(verdict(t, e, NULL, 0), "ok", "control: RSA 2048");
		X509_free(d);
		X509_free(o);
		X509_free(e);
		EVP_PKEY_free(params);
		EVP_PKEY_free(dsa);
		EVP_PKEY_free(odd);
		EVP_PKEY_free(even);
		EVP_PKEY_CTX_free(pc);
		EVP_PKEY_CTX_free(kc);
	}

	/* --- what was refused wrongly --- */
	{
		time_t end = time(NULL) + 86400 * 30;
		X509 *x = make(&(struct spec){ .cn = "until",
					       .key = lk,
					       .issuer = root,
					       .ikey = rk,
					       .not_after = end });

		is_str(verdict(t, x, NULL, end), "ok", "valid at exactly its notAfter second");
		is_str(verdict(t, x, NULL, end + 1), "cert_expired", "expired one second later");
		X509_free(x);
	}
	{
		/* root's key rollover: "root" under a new key, issued by the old one */
		X509 *si = make(&(struct spec){ .subj = "root",
						.key = rk2,
						.issuer = root,
						.ikey = rk,
						.ca = true });
		X509 *x =
			make(&(struct spec){ .cn = "rolled", .key = lk, .issuer = si, .ikey = rk2 });
		X509 *c1[] = { si, NULL };

		is_str(verdict(t0, x, c1, 0), "ok",
		       "depth 0: a self-issued CA in the path does not count");
		is_str(verdict(t0, leaf, chain, 0), "chain_too_long",
		       "depth 0: an intermediate does");
		is_str(verdict(t0, direct, NULL, 0), "ok", "depth 0: a leaf under the anchor");
		X509_free(si);
		X509_free(x);
	}
	{
		struct edge_trust *ti = trust_of(inter, 3);

		is_str(verdict(ti, leaf, NULL, 0), "ok", "an intermediate as the trust anchor");
		edge_trust_free(ti);
	}
	{
		/* Two presented intermediates for the same name and key: the first one OpenSSL
		 * picks is nonconforming (OpenSSL's strict check), then one with a malformed AIA
		 * (the project's check); the good one comes last. */
		X509 *bad1 = make(&(struct spec){ .cn = "inter",
						  .key = ik,
						  .issuer = root,
						  .ikey = rk,
						  .ca = true,
						  .bc = "CA:TRUE" });
		X509 *bad2 = make(&(struct spec){ .cn = "inter",
						  .key = ik,
						  .issuer = root,
						  .ikey = rk,
						  .ca = true,
						  .raw_nid = NID_info_access,
						  .raw_hex = "020101" });
		X509 *c3[] = { bad1, bad2, inter, NULL }, *c1[] = { bad1, NULL };

		is_str(verdict(t, leaf, c1, 0), "ca_basic_constraints_not_critical",
		       "control: the bad intermediate alone is refused");
		is_str(verdict(t, leaf, c3, 0), "ok",
		       "another path is tried when the first fails (two bad issuers, then a good one)");
		X509_free(bad1);
		X509_free(bad2);
	}
	{
		X509 *srv = make(&(struct spec){ .cn = "srv",
						 .key = lk,
						 .issuer = root,
						 .ikey = rk,
						 .ext = { "subjectAltName=DNS:api.example.com" } });
		STACK_OF(X509) *none = NULL;

		/* make() gives leaves clientAuth; a server one: */
		X509_EXTENSION_free(X509_delete_ext(srv, X509_get_ext_by_NID(srv, NID_ext_key_usage,
									     -1)));
		add_ext(srv, root, "extendedKeyUsage", "serverAuth");
		X509_sign(srv, rk, EVP_sha256());
		ok(edge_verify_chain_purpose(t, srv, none, 0, true, &r) == 0,
		   "--purpose server: a serverAuth certificate");
		ok(edge_verify_chain_purpose(t, srv, none, 0, false, &r) == -EACCES &&
			   r.reason == EDGE_REASON_INVALID_PURPOSE,
		   "--purpose client: the same refused");
		X509_free(srv);
	}
	ok(!strcmp(edge_reason_name(EDGE_REASON_NONCONFORMING), "nonconforming") &&
		   !strcmp(edge_reason_name(EDGE_REASON_CRL_INVALID), "crl_invalid"),
	   "stable reason names");

	edge_trust_free(t);
	edge_trust_free(t0);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
	X509_free(direct);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(rk2);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(lk);
	return tap_done();
}
