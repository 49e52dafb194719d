/*
 * Our TLS 1.3 record layer (tlsrec.c) against OpenSSL itself: an in-memory handshake per
 * cipher suite, the application secrets from the server's key log, then records both ways
 * between OpenSSL's client and our layer in the server's place: after OpenSSL's own
 * NewSessionTickets (our sequence starts after them), with a padding client, through a
 * KeyUpdate each way, and the records it must refuse.
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certgen.h"
#include "ktls.h"
#include "tap.h"
#include "tlsrec.h"

static unsigned char csecret[EDGE_TLS_SECRET_MAX], ssecret[EDGE_TLS_SECRET_MAX];
static size_t csecret_len, ssecret_len;

static void keylog(const SSL *ssl, const char *line)
{
	size_t n;

	(void)ssl;
	if ((n = edge_ktls_secret(line, "CLIENT_TRAFFIC_SECRET_0", csecret, sizeof(csecret))))
		csecret_len = n;
	if ((n = edge_ktls_secret(line, "SERVER_TRAFFIC_SECRET_0", ssecret, sizeof(ssecret))))
		ssecret_len = n;
}

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *s, *c;
	BIO *c2s, *s2c; /* what the client wrote, what it reads */
};

static int pair_open(struct pair *p, const char *suite, EVP_PKEY *pk, X509 *cert, int tickets,
		     size_t padding)
{
	int cd = 0, sd = 0;

	memset(p, 0, sizeof(*p));
	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	p->c2s = BIO_new(BIO_s_mem());
	p->s2c = BIO_new(BIO_s_mem());
	SSL_CTX_use_certificate(p->sctx, cert);
	SSL_CTX_use_PrivateKey(p->sctx, pk);
	SSL_CTX_set_num_tickets(p->sctx, (size_t)tickets);
	SSL_CTX_set_keylog_callback(p->sctx, keylog);
	SSL_CTX_set_ciphersuites(p->sctx, suite);
	SSL_CTX_set_ciphersuites(p->cctx, suite);
	SSL_CTX_set_min_proto_version(p->cctx, TLS1_3_VERSION);
	if (padding)
		SSL_CTX_set_block_padding(p->cctx, padding);
	p->s = SSL_new(p->sctx);
	p->c = SSL_new(p->cctx);
	BIO_up_ref(p->c2s);
	BIO_up_ref(p->s2c);
	SSL_set_bio(p->c, p->s2c, p->c2s);
	SSL_set_bio(p->s, p->c2s, p->s2c);
	SSL_set_accept_state(p->s);
	SSL_set_connect_state(p->c);
	csecret_len = ssecret_len = 0;
	for (int i = 0; i < 20 && !(cd == 1 && sd == 1); i++) {
		if (cd != 1)
			cd = SSL_do_handshake(p->c);
		if (sd != 1)
			sd = SSL_do_handshake(p->s);
	}
	return cd == 1 && sd == 1 ? 0 : -1;
}

static void pair_close(struct pair *p)
{
	SSL_free(p->s);
	SSL_free(p->c);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

/* One record the client wrote, whole: its length, or -1. */
static int take_record(struct pair *p, unsigned char *rec, size_t cap)
{
	int n;

	if (BIO_read(p->c2s, rec, 5) != 5)
		return -1;
	n = rec[3] << 8 | rec[4];
	if ((size_t)n + 5 > cap || BIO_read(p->c2s, rec + 5, n) != n)
		return -1;
	return n + 5;
}

/* Our record sealed into what the client reads. */
static int give(struct pair *p, struct edge_tlsrec *r, uint8_t type, const void *in, size_t len)
{
	unsigned char rec[EDGE_TLSREC_MAX_PLAIN + EDGE_TLSREC_OVERHEAD];
	int n = edge_tlsrec_seal(r, type, in, len, rec);

	return n > 0 && BIO_write(p->s2c, rec, n) == n ? 0 : -1;
}

/* The client's next record opened by us: plaintext length (type in *type), or < 0. */
static int open_next(struct pair *p, struct edge_tlsrec *r, unsigned char *out, uint8_t *type)
{
	static unsigned char rec[EDGE_TLSREC_HDR + EDGE_TLSREC_MAX_CIPHER];
	int n = take_record(p, rec, sizeof(rec));

	if (n < 0)
		return -100;
	return edge_tlsrec_open(r, rec, (size_t)n - EDGE_TLSREC_HDR, out, type);
}

static uint16_t suite_id(SSL *s)
{
	return (uint16_t)SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(s));
}

static void one_suite(const char *suite, EVP_PKEY *pk, X509 *cert, int tickets, size_t padding)
{
	struct pair p;
	struct edge_tlsrec r;
	unsigned char out[EDGE_TLSREC_MAX_CIPHER], big[EDGE_TLSREC_MAX_PLAIN];
	char got[64];
	uint8_t type = 0;
	int n;

	if (pair_open(&p, suite, pk, cert, tickets, padding)) {
		ok(0, "%s: in-memory handshake", suite);
		return;
	}
	ok(csecret_len && csecret_len == ssecret_len,
	   "%s (%d tickets, padding %zu): both secrets logged", suite, tickets, padding);
	ok(!edge_tlsrec_init(&r, suite_id(p.s), csecret, ssecret, csecret_len, 0,
			     (uint64_t)tickets),
	   "%s: record layer set up, TX after %d tickets", suite, tickets);

	/* the client to us */
	SSL_write(p.c, "hello", 5);
	n = open_next(&p, &r, out, &type);
	ok(n == 5 && type == EDGE_TLS_CT_APPDATA && !memcmp(out, "hello", 5),
	   "%s: the client's record opens (%d bytes%s)", suite, n,
	   padding ? ", padding stripped" : "");

	/* us to the client, after OpenSSL's tickets in the same stream */
	ok(!give(&p, &r, EDGE_TLS_CT_APPDATA, "world", 5), "%s: sealed", suite);
	n = SSL_read(p.c, got, sizeof(got));
	ok(n == 5 && !memcmp(got, "world", 5), "%s: OpenSSL's client reads our record (%d)", suite,
	   n);

	/* a whole 16 KiB record */
	memset(big, 'x', sizeof(big));
	ok(!give(&p, &r, EDGE_TLS_CT_APPDATA, big, sizeof(big)), "%s: a full record sealed", suite);
	n = 0;
	for (int k; n < (int)sizeof(big) && (k = SSL_read(p.c, out, sizeof(out))) > 0;)
		n += k;
	ok(n == (int)sizeof(big), "%s: the client reads all 16384 bytes of it (%d)", suite, n);

	/* the client's KeyUpdate, update requested, then data under its new keys */
	ok(SSL_key_update(p.c, SSL_KEY_UPDATE_REQUESTED) == 1 && SSL_write(p.c, "rekeyed", 7) == 7,
	   "%s: the client sends a KeyUpdate", suite);
	n = open_next(&p, &r, out, &type);
	ok(n == 5 && type == EDGE_TLS_CT_HANDSHAKE && out[0] == 24 && out[4] == 1,
	   "%s: it opens as a KeyUpdate, update_requested", suite);
	ok(!edge_tlsrec_update(&r, false), "%s: RX rekeyed", suite);
	n = open_next(&p, &r, out, &type);
	ok(n == 7 && !memcmp(out, "rekeyed", 7), "%s: the next record opens with the new keys",
	   suite);

	/* our KeyUpdate in answer, then our data under our new keys */
	ok(!give(&p, &r, EDGE_TLS_CT_HANDSHAKE, "\x18\x00\x00\x01\x00", 5) &&
		   !edge_tlsrec_update(&r, true) && !give(&p, &r, EDGE_TLS_CT_APPDATA, "after", 5),
	   "%s: our KeyUpdate and a record under our new keys sealed", suite);
	n = SSL_read(p.c, got, sizeof(got));
	ok(n == 5 && !memcmp(got, "after", 5), "%s: the client follows our KeyUpdate (%d)", suite,
	   n);

	/* close_notify from the client */
	SSL_shutdown(p.c);
	n = open_next(&p, &r, out, &type);
	ok(n == 2 && type == EDGE_TLS_CT_ALERT && out[0] == 1 && out[1] == 0,
	   "%s: close_notify opens as an alert", suite);
	pair_close(&p);
	edge_tlsrec_free(&r);
}

/* What open must refuse, made by a mirror of our layer in the client's place. */
static void refusals(EVP_PKEY *pk, X509 *cert)
{
	struct pair p;
	struct edge_tlsrec r, peer;
	unsigned char rec[EDGE_TLSREC_HDR + EDGE_TLSREC_MAX_CIPHER], out[sizeof(rec)];
	static const unsigned char zeros[8];
	uint8_t type;
	int n;

	if (pair_open(&p, "TLS_AES_128_GCM_SHA256", pk, cert, 0, 0)) {
		ok(0, "refusals: handshake");
		return;
	}
	edge_tlsrec_init(&r, 0x1301, csecret, ssecret, csecret_len, 0, 0);
	edge_tlsrec_init(&peer, 0x1301, ssecret, csecret, csecret_len, 0, 0);

	n = edge_tlsrec_seal(&peer, EDGE_TLS_CT_APPDATA, "abc", 3, rec);
	rec[EDGE_TLSREC_HDR] ^= 1;
	is_int(edge_tlsrec_open(&r, rec, (size_t)n - 5, out, &type), -EBADMSG,
	       "a flipped ciphertext bit fails the tag: bad_record_mac");
	rec[EDGE_TLSREC_HDR] ^= 1;
	is_int(edge_tlsrec_open(&r, rec, (size_t)n - 5, out, &type), 3,
	       "the same record unflipped opens (the sequence did not move on the failure)");
	is_int(edge_tlsrec_open(&r, rec, (size_t)n - 5, out, &type), -EBADMSG,
	       "a replayed record fails: the sequence moved on");

	n = edge_tlsrec_seal(&peer, 0, zeros, sizeof(zeros), rec);
	is_int(edge_tlsrec_open(&r, rec, (size_t)n - 5, out, &type), -EPROTO,
	       "a record of zeros only (no content type): unexpected_message");

	n = edge_tlsrec_seal(&peer, EDGE_TLS_CT_APPDATA, NULL, 0, rec);
	is_int(edge_tlsrec_open(&r, rec, (size_t)n - 5, out, &type), 0,
	       "zero-length application data opens, empty");
	is_int(edge_tlsrec_open(&r, rec, 16, out, &type), -EBADMSG,
	       "a body too short for a tag and a content type fails");
	is_int(edge_tlsrec_seal(&peer, EDGE_TLS_CT_APPDATA, out, EDGE_TLSREC_MAX_PLAIN + 1, rec),
	       -EIO, "seal refuses more than 2^14 bytes");
	edge_tlsrec_free(&peer);
	ok(edge_tlsrec_init(&peer, 0x1304, csecret, ssecret, csecret_len, 0, 0) == -EINVAL &&
		   !edge_tlsrec_suite_ok(0x1304) && !edge_tlsrec_suite_ok(0xc02b),
	   "suites we do not carry are refused (CCM, TLS 1.2 numbers)");
	ok(edge_tlsrec_init(&peer, 0x1302, csecret, ssecret, csecret_len, 0, 0) == -EINVAL,
	   "a secret of the wrong length for the suite's hash is refused");
	edge_tlsrec_free(&r);
	pair_close(&p);
}

int main(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	struct spec sp = { .cn = "server", .key = pk, .ikey = pk };
	X509 *cert = make(&sp);

	one_suite("TLS_AES_128_GCM_SHA256", pk, cert, 0, 0);
	one_suite("TLS_AES_256_GCM_SHA384", pk, cert, 0, 0);
	one_suite("TLS_CHACHA20_POLY1305_SHA256", pk, cert, 0, 0);
	one_suite("TLS_AES_128_GCM_SHA256", pk, cert, 2, 0);
	one_suite("TLS_AES_256_GCM_SHA384", pk, cert, 1, 256);
	refusals(pk, cert);
	X509_free(cert);
	EVP_PKEY_free(pk);
	return tap_done();
}
