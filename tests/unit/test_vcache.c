/* The verified-chain cache never admits what a full verification would refuse: a hit only for
 * the same chain, trust set and snapshot, and only while the path's certificates and CRLs are
 * current. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "tap.h"
#include "verify_cache.h"

static struct edge_verify_result r;
static bool hit;

static int run(struct edge_vcache *vc, uint64_t epoch, struct edge_trust *t, X509 *leaf)
{
	return edge_verify_chain_cached(vc, epoch, t, leaf, NULL, NULL, &r, &hit);
}

/* Waits until the second after `until` has begun (the test's certificates end then). */
static void wait_past(time_t until)
{
	while (time(NULL) <= until + 1)
		usleep(100 * 1000);
}

int main(void)
{
	EVP_PKEY *ck = EVP_EC_gen("P-256"), *lk = EVP_EC_gen("P-256"), *ok2 = EVP_EC_gen("P-256");
	/* bob's serial is 0x65: the one the revocation list below names */
	static const unsigned char s65[] = { 0x65 };
	X509 *ca = make(&(struct spec){ .cn = "ca", .key = ck, .ca = true });
	X509 *other = make(&(struct spec){ .cn = "other", .key = ok2, .ca = true });
	X509 *alice = make(&(struct spec){ .cn = "alice", .key = lk, .issuer = ca, .ikey = ck });
	X509 *bob = make(&(struct spec){ .cn = "bob",
					 .key = lk,
					 .issuer = ca,
					 .ikey = ck,
					 .serial = s65,
					 .serial_len = 1 });
	X509 *mallory =
		make(&(struct spec){ .cn = "mallory", .key = lk, .issuer = other, .ikey = ok2 });
	struct edge_vcache *vc = edge_vcache_new();
	struct edge_trust *t = edge_trust_new(3), *t2 = edge_trust_new(3);
	char *revoked[] = { "65" }; /* bob */
	uint64_t hits, misses;

	edge_trust_add_ca(t, ca, true);
	is_int(run(vc, 1, t, alice), 0, "first verification: in full");
	ok(!hit, "  a miss");
	is_int(run(vc, 1, t, alice), 0, "the same chain again");
	ok(hit && r.reason == EDGE_REASON_OK && r.builtin_anchor && strstr(r.subject, "alice"),
	   "  a hit, with the full verification's verdict and facts");
	{
		/* as the daemon calls it: the audit record's digest, the peer chain led by the leaf */
		struct edge_cert_audit au;
		STACK_OF(X509) *sent = sk_X509_new_null();

		edge_verify_audit(alice, &au);
		sk_X509_push(sent, alice);
		edge_verify_chain_cached(vc, 1, t, alice, au.sha256_raw, sent, &r, &hit);
		ok(hit, "the same chain given its digest and led by the leaf: the same key, a hit");
		sk_X509_free(sent);
	}
	run(vc, 2, t, alice);
	ok(!hit, "another snapshot (epoch): a miss");
	is_int(run(vc, 1, t, bob), 0, "another chain verifies");
	ok(!hit, "  a miss");
	is_int(run(vc, 1, t, mallory), -EACCES, "an unknown CA is refused");
	is_int(run(vc, 1, t, mallory), -EACCES, "  and again: refusals are not remembered");
	ok(!hit, "  (a miss both times)");

	/* a reload that revokes bob makes a new trust set: the cached verdict is not used */
	edge_trust_add_ca(t2, ca, true);
	edge_trust_set_revoked(t2, revoked, 1);
	run(vc, 3, t2, bob);
	ok(!hit && r.reason == EDGE_REASON_CERT_REVOKED, "revoked in the next snapshot: refused");
	/* unbound CA: a trust set without it */
	{
		struct edge_trust *t3 = edge_trust_new(3);

		edge_trust_add_ca(t3, other, false);
		is_int(run(vc, 4, t3, alice), -EACCES, "a trust set without the CA: refused");
		edge_trust_free(t3);
	}
	{
		/* a leaf that ends in two seconds: once it has, a cached verdict must not admit it */
		time_t end = time(NULL) + 2;
		X509 *brief = make(&(struct spec){ .cn = "brief",
						   .key = lk,
						   .issuer = ca,
						   .ikey = ck,
						   .not_after = end });

		run(vc, 1, t, brief);
		run(vc, 1, t, brief); /* a hit while it lasts, if the machine is quick */
		wait_past(end);
		run(vc, 1, t, brief);
		ok(!hit && r.reason == EDGE_REASON_CERT_EXPIRED,
		   "expired since it was cached: refused");
		X509_free(brief);
	}
	{
		/* a CRL that reaches its nextUpdate: the cached verdict must not outlive it */
		struct edge_trust *tc = edge_trust_new(3);
		time_t end = time(NULL) + 2;
		X509_CRL *crl = make_crl(other, ok2, 0, true, NULL, 2);

		edge_trust_add_named_ca(tc, other, false, "other", NULL);
		edge_trust_add_crl(tc, other, crl);
		run(vc, 5, tc, mallory);
		run(vc, 5, tc, mallory);
		wait_past(end);
		run(vc, 5, tc, mallory);
		ok(!hit && r.reason == EDGE_REASON_CRL_EXPIRED,
		   "its CRL went stale since: refused");
		X509_CRL_free(crl);
		edge_trust_free(tc);
	}
	edge_vcache_stats(vc, &hits, &misses);
	ok(hits >= 1 && misses >= 8, "hits %llu, misses %llu", (unsigned long long)hits,
	   (unsigned long long)misses);
	is_int(edge_verify_chain_cached(NULL, 1, t, alice, NULL, NULL, &r, &hit), 0,
	       "no cache: a full verification");
	ok(!hit, "  never a hit");
	edge_vcache_free(vc);
	edge_trust_free(t);
	edge_trust_free(t2);
	X509 *all[] = { ca, other, alice, bob, mallory };
	for (int i = 0; i < 5; i++)
		X509_free(all[i]);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ok2);
	return tap_done();
}
