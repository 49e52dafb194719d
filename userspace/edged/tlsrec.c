#include "tlsrec.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ktls.h"

/* Fetched once: an implicit fetch per EVP_CipherInit_ex would take the provider store's
 * locks for every record. */
static EVP_CIPHER *ciphers[3];
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	ciphers[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	ciphers[1] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	ciphers[2] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

bool edge_tlsrec_suite_ok(uint16_t suite)
{
	return suite >= 0x1301 && suite <= 0x1303;
}

/* Key and IV from the direction's secret, into its context (enc: 1 seal, 0 open). */
static int set_keys(struct edge_tlsrec *r, struct edge_tlsrec_dir *d, int enc)
{
	unsigned char key[32];
	int rc = -EINVAL;

	if (edge_tls13_expand_label(r->md, d->secret, r->secret_len, "key", key, r->key_len) ||
	    edge_tls13_expand_label(r->md, d->secret, r->secret_len, "iv", d->iv, sizeof(d->iv)))
		goto out;
	if (EVP_CipherInit_ex(d->ctx, NULL, NULL, key, NULL, enc) != 1)
		goto out;
	d->seq = 0;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int dir_init(struct edge_tlsrec *r, struct edge_tlsrec_dir *d, const unsigned char *secret,
		    uint64_t seq, int enc)
{
	const EVP_CIPHER *ci = ciphers[r->suite - 0x1301];

	d->ctx = EVP_CIPHER_CTX_new();
	if (!d->ctx || !ci)
		return -ENOMEM;
	if (EVP_CipherInit_ex(d->ctx, ci, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_IVLEN, sizeof(d->iv), NULL) != 1)
		return -EINVAL;
	memcpy(d->secret, secret, r->secret_len);
	if (set_keys(r, d, enc))
		return -EINVAL;
	d->seq = seq;
	return 0;
}

int edge_tlsrec_init(struct edge_tlsrec *r, uint16_t suite, const unsigned char *rx_secret,
		     const unsigned char *tx_secret, size_t secret_len, uint64_t rx_seq,
		     uint64_t tx_seq)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!edge_tlsrec_suite_ok(suite))
		return -EINVAL;
	pthread_once(&fetched, fetch_ciphers);
	r->suite = suite;
	r->md = suite == 0x1302 ? EVP_sha384() : EVP_sha256();
	r->key_len = suite == 0x1301 ? 16 : 32;
	r->secret_len = (uint8_t)EVP_MD_get_size(r->md);
	if (secret_len != r->secret_len)
		return -EINVAL;
	rc = dir_init(r, &r->rx, rx_secret, rx_seq, 0);
	if (!rc)
		rc = dir_init(r, &r->tx, tx_secret, tx_seq, 1);
	if (rc)
		edge_tlsrec_free(r);
	return rc;
}

void edge_tlsrec_free(struct edge_tlsrec *r)
{
	EVP_CIPHER_CTX_free(r->rx.ctx);
	EVP_CIPHER_CTX_free(r->tx.ctx);
	OPENSSL_cleanse(r, sizeof(*r));
}

/* The per-record nonce: the IV XOR the sequence number, big-endian on the right. */
static void nonce(const struct edge_tlsrec_dir *d, unsigned char out[12])
{
	memcpy(out, d->iv, 12);
	for (int i = 0; i < 8; i++)
		out[11 - i] ^= (unsigned char)(d->seq >> (8 * i));
}

int edge_tlsrec_seal(struct edge_tlsrec *r, uint8_t type, const void *in, size_t len,
		     unsigned char *out)
{
	struct edge_tlsrec_dir *d = &r->tx;
	size_t body = len + 1 + EDGE_TLSREC_TAG;
	unsigned char n[12];
	int l;

	if (len > EDGE_TLSREC_MAX_PLAIN)
		return -EIO;
	out[0] = EDGE_TLS_CT_APPDATA; /* the outer type of every protected record */
	out[1] = 3;
	out[2] = 3;
	out[3] = (unsigned char)(body >> 8);
	out[4] = (unsigned char)body;
	nonce(d, n);
	if (EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, n, 1) != 1 ||
	    EVP_EncryptUpdate(d->ctx, NULL, &l, out, EDGE_TLSREC_HDR) != 1 ||
	    (len && EVP_EncryptUpdate(d->ctx, out + EDGE_TLSREC_HDR, &l, in, (int)len) != 1) ||
	    EVP_EncryptUpdate(d->ctx, out + EDGE_TLSREC_HDR + len, &l, &type, 1) != 1 ||
	    EVP_EncryptFinal_ex(d->ctx, out + EDGE_TLSREC_HDR + len + 1, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, EDGE_TLSREC_TAG,
				out + EDGE_TLSREC_HDR + len + 1) != 1)
		return -EIO;
	d->seq++;
	return (int)(EDGE_TLSREC_HDR + body);
}

int edge_tlsrec_open(struct edge_tlsrec *r, const unsigned char *rec, size_t body,
		     unsigned char *out, uint8_t *type)
{
	struct edge_tlsrec_dir *d = &r->rx;
	size_t clen;
	unsigned char n[12];
	int l, ok;

	if (body < 1 + EDGE_TLSREC_TAG)
		return -EBADMSG; /* no room for a tag and a content type: it cannot authenticate */
	clen = body - EDGE_TLSREC_TAG;
	nonce(d, n);
	ok = EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, n, 0) == 1 &&
	     EVP_DecryptUpdate(d->ctx, NULL, &l, rec, EDGE_TLSREC_HDR) == 1 &&
	     EVP_DecryptUpdate(d->ctx, out, &l, rec + EDGE_TLSREC_HDR, (int)clen) == 1 &&
	     EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, EDGE_TLSREC_TAG,
				 (void *)(rec + EDGE_TLSREC_HDR + clen)) == 1 &&
	     EVP_DecryptFinal_ex(d->ctx, out + clen, &l) == 1;
	if (!ok) {
		OPENSSL_cleanse(out, clen); /* nothing unauthenticated stays readable */
		return -EBADMSG;
	}
	d->seq++;
	while (clen && !out[clen - 1]) /* the padding */
		clen--;
	if (!clen)
		return -EPROTO;
	*type = out[--clen];
	if (clen > EDGE_TLSREC_MAX_PLAIN)
		return -EMSGSIZE;
	return (int)clen;
}

int edge_tlsrec_update(struct edge_tlsrec *r, bool tx)
{
	struct edge_tlsrec_dir *d = tx ? &r->tx : &r->rx;
	unsigned char next[EDGE_TLSREC_SECRET_MAX];
	int rc;

	if (edge_tls13_expand_label(r->md, d->secret, r->secret_len, "traffic upd", next,
				    r->secret_len))
		return -EINVAL;
	memcpy(d->secret, next, r->secret_len);
	OPENSSL_cleanse(next, sizeof(next));
	rc = set_keys(r, d, tx ? 1 : 0);
	return rc;
}
