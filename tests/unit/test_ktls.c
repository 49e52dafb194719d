/*
 * The TLS 1.3 RX key install, checked against OpenSSL itself: an in-memory
 * handshake per cipher, the secret from the key log, key and IV from our
 * HKDF-Expand-Label, and the client's first application record decrypted
 * with them (sequence 0), exactly what the kernel will be asked to do.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ktls.h"
#include "tap.h"

static unsigned char secret[EDGE_TLS_SECRET_MAX];
static size_t secret_len;

static void keylog(const SSL *ssl, const char *line)
{
	size_t n = edge_ktls_secret(line, "CLIENT_TRAFFIC_SECRET_0", secret, sizeof(secret));

	if (n)
		secret_len = n;
}

static X509 *self_signed(EVP_PKEY *pk)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"server", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	X509_sign(x, pk, EVP_sha256());
	return x;
}

static int decrypt_first_record(const char *suite, const unsigned char *rec, size_t len,
				const unsigned char *key, const unsigned char *iv,
				unsigned char *out)
{
	const EVP_CIPHER *c = !strcmp(suite, "TLS_AES_128_GCM_SHA256")   ? EVP_aes_128_gcm()
			      : !strcmp(suite, "TLS_AES_256_GCM_SHA384") ? EVP_aes_256_gcm()
									 : EVP_chacha20_poly1305();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t clen = len - 5 - 16;
	int n = 0, f = 0, ok;

	/* Sequence 0: the nonce is the IV itself; the AAD is the record header. */
	ok = EVP_DecryptInit_ex(ctx, c, NULL, NULL, NULL) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) &&
	     EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) &&
	     EVP_DecryptUpdate(ctx, NULL, &n, rec, 5) &&
	     EVP_DecryptUpdate(ctx, out, &n, rec + 5, (int)clen) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(rec + 5 + clen)) &&
	     EVP_DecryptFinal_ex(ctx, out + n, &f) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? n + f : -1;
}

static void one_suite(const char *suite, EVP_PKEY *pk, X509 *cert)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
	BIO *c2s = BIO_new(BIO_s_mem()), *s2c = BIO_new(BIO_s_mem());
	SSL *s, *c;
	static const char msg[] = "hello through the kernel";
	unsigned char rec[512], plain[512], key[32], iv[12];
	int rl, pl, cd = 0, sd = 0;
	const EVP_MD *md;
	size_t key_len;

	SSL_CTX_use_certificate(sctx, cert);
	SSL_CTX_use_PrivateKey(sctx, pk);
	SSL_CTX_set_num_tickets(sctx, 0);
	SSL_CTX_set_keylog_callback(sctx, keylog);
	SSL_CTX_set_ciphersuites(sctx, suite);
	SSL_CTX_set_ciphersuites(cctx, suite);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	BIO_up_ref(c2s);
	BIO_up_ref(s2c);
	SSL_set_bio(c, s2c, c2s);
	SSL_set_bio(s, c2s, s2c);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	secret_len = 0;
	for (int i = 0; i < 20 && !(cd == 1 && sd == 1); i++) {
		if (cd != 1)
			cd = SSL_do_handshake(c);
		if (sd != 1)
			sd = SSL_do_handshake(s);
	}
	ok(cd == 1 && sd == 1, "%s: in-memory handshake", suite);
	ok(secret_len > 0, "%s: CLIENT_TRAFFIC_SECRET_0 from the key log (%zu bytes)", suite,
	   secret_len);
	ok(BIO_ctrl_pending(c2s) == 0, "%s: the server read no application record", suite);

	SSL_write(c, msg, sizeof(msg));
	rl = BIO_read(c2s, rec, sizeof(rec));
	ok(rl > 5 && rec[0] == 23, "%s: client wrote one application record (%d bytes)", suite, rl);

	md = SSL_CIPHER_get_handshake_digest(SSL_get_current_cipher(s));
	key_len = strcmp(suite, "TLS_AES_128_GCM_SHA256") ? 32 : 16;
	ok(!edge_tls13_expand_label(md, secret, secret_len, "key", key, key_len) &&
		   !edge_tls13_expand_label(md, secret, secret_len, "iv", iv, sizeof(iv)),
	   "%s: key and IV derived", suite);
	pl = decrypt_first_record(suite, rec, (size_t)rl, key, iv, plain);
	ok(pl == (int)sizeof(msg) + 1 && plain[pl - 1] == 23 && !memcmp(plain, msg, sizeof(msg)),
	   "%s: the record decrypts at sequence 0 with our key and IV", suite);

	key[0] ^= 1;
	ok(decrypt_first_record(suite, rec, (size_t)rl, key, iv, plain) < 0,
	   "%s: a wrong key fails the tag (the check can fail)", suite);
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int main(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *cert = self_signed(pk);
	unsigned char out[64];
	char why[256];
	int rc;

	one_suite("TLS_AES_128_GCM_SHA256", pk, cert);
	one_suite("TLS_AES_256_GCM_SHA384", pk, cert);
	one_suite("TLS_CHACHA20_POLY1305_SHA256", pk, cert);

	is_int(edge_ktls_secret("SERVER_TRAFFIC_SECRET_0 00 aabb", "CLIENT_TRAFFIC_SECRET_0", out,
				sizeof(out)),
	       0, "other key-log labels ignored");
	is_int(edge_ktls_secret("CLIENT_TRAFFIC_SECRET_00 00 aabb", "CLIENT_TRAFFIC_SECRET_0", out,
				sizeof(out)),
	       0, "a label that only starts the same is ignored");
	is_int(edge_ktls_secret("CLIENT_TRAFFIC_SECRET_0 0011 aabbcc", "CLIENT_TRAFFIC_SECRET_0",
				out, sizeof(out)),
	       3, "client secret parsed");
	ok(out[0] == 0xaa && out[2] == 0xcc, "secret bytes");

	rc = edge_ktls_probe(why, sizeof(why));
	ok(rc == 0 || strstr(why, "TCP_ULP"), "probe answers with a reason: %s", why);
	X509_free(cert);
	EVP_PKEY_free(pk);
	return tap_done();
}
