/* Verified chains, remembered: verify_cache.h. */
#include "verify_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "verify_int.h"

struct slot {
	unsigned char key[32];
	const struct edge_trust *trust;
	uint64_t epoch;
	STACK_OF(X509) *path; /* leaf first, anchor last; NULL: empty */
	struct edge_verify_result res;
};

struct edge_vcache {
	struct slot s[EDGE_VCACHE_SLOTS];
	uint64_t hits, misses;
};

struct edge_vcache *edge_vcache_new(void)
{
	return calloc(1, sizeof(struct edge_vcache));
}

void edge_vcache_free(struct edge_vcache *vc)
{
	if (!vc)
		return;
	for (size_t i = 0; i < EDGE_VCACHE_SLOTS; i++)
		sk_X509_pop_free(vc->s[i].path, X509_free);
	free(vc);
}

void edge_vcache_stats(const struct edge_vcache *vc, uint64_t *hits, uint64_t *misses)
{
	*hits = vc ? vc->hits : 0;
	*misses = vc ? vc->misses : 0;
}

/* SHA-256 over the SHA-256 of each presented certificate, the leaf first: what the client
 * sent, exactly. leaf_md: the leaf's SHA-256 when the caller has it (the audit record's). */
static int chain_key(X509 *leaf, const unsigned char *leaf_md, STACK_OF(X509) *sent,
		     unsigned char key[32])
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 32;
	int ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	int count = sent ? sk_X509_num(sent) : 0; /* sk_X509_num(NULL) is -1 */

	if (leaf_md)
		memcpy(md, leaf_md, 32);
	ok = ok && (leaf_md || X509_digest(leaf, EVP_sha256(), md, &n)) &&
	     EVP_DigestUpdate(h, md, n);
	/* the peer chain OpenSSL hands over starts with the leaf itself: hashed once */
	for (int i = 0; ok && i < count; i++)
		ok = sk_X509_value(sent, i) == leaf ||
		     (X509_digest(sk_X509_value(sent, i), EVP_sha256(), md, &n) &&
		      EVP_DigestUpdate(h, md, n));
	ok = ok && EVP_DigestFinal_ex(h, key, &n) && n == 32;
	EVP_MD_CTX_free(h);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -ENOMEM;
}

/* What can change within one snapshot while the chain stays the same: time. Every
 * certificate of the path inside its validity (notAfter inclusive), and every CRL the path
 * was checked against not past its nextUpdate. Anything else (bindings, revocations, CRLs,
 * the CA set) makes a new snapshot, whose trust sets are new: a miss. */
static bool still_valid(const struct slot *sl, time_t now)
{
	time_t before = now - 1;

	for (int i = 0; i < sk_X509_num(sl->path); i++) {
		X509 *x = sk_X509_value(sl->path, i);

		if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0 ||
		    X509_cmp_time(X509_get0_notAfter(x), &before) <= 0)
			return false;
		if (i + 1 < sk_X509_num(sl->path)) {
			const struct edge_crl_ref *cr = edge_trust_crl_for(sl->trust,
									   X509_get_issuer_name(x));
			const ASN1_TIME *next = cr ? X509_CRL_get0_nextUpdate(cr->crl) : NULL;

			if (next && X509_cmp_time(next, &now) <= 0)
				return false;
		}
	}
	return true;
}

int edge_verify_chain_cached(struct edge_vcache *vc, uint64_t epoch, const struct edge_trust *trust,
			     X509 *leaf, const unsigned char *leaf_md, STACK_OF(X509) *untrusted,
			     struct edge_verify_result *res, bool *hit)
{
	unsigned char key[32];
	STACK_OF(X509) *path = NULL;
	struct slot *sl;
	time_t now = time(NULL);
	int rc;

	*hit = false;
	if (!vc || !leaf || chain_key(leaf, leaf_md, untrusted, key))
		return edge_verify_chain(trust, leaf, untrusted, 0, res);
	sl = &vc->s[(key[0] | (unsigned int)key[1] << 8) % EDGE_VCACHE_SLOTS];
	if (sl->path && sl->trust == trust && sl->epoch == epoch && !memcmp(sl->key, key, 32) &&
	    still_valid(sl, now)) {
		vc->hits++;
		*hit = true;
		*res = sl->res;
		memset(&res->authz, 0, sizeof(res->authz));
		return 0;
	}
	vc->misses++;
	rc = edge_verify_chain_path(trust, leaf, untrusted, 0, false, res, &path);
	if (rc) /* only what verified is remembered */
		return rc;
	sk_X509_pop_free(sl->path, X509_free);
	memcpy(sl->key, key, 32);
	sl->trust = trust;
	sl->epoch = epoch;
	sl->path = path;
	sl->res = *res;
	return 0;
}
