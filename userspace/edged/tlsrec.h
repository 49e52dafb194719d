/*
 * A TLS 1.3 record layer of our own (RFC 8446 section 5), for a client
 * session after its handshake: the application traffic secrets OpenSSL
 * logged, two AEAD contexts and two sequence numbers. It seals and opens
 * records and follows KeyUpdate; xprt_rec.c puts it on a socket. About 2 KiB
 * per session where OpenSSL's SSL object keeps about 17.
 */
#ifndef EDGE_TLSREC_H
#define EDGE_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define EDGE_TLSREC_HDR 5
#define EDGE_TLSREC_TAG 16
#define EDGE_TLSREC_MAX_PLAIN 16384                                  /* 2^14 */
#define EDGE_TLSREC_MAX_CIPHER (EDGE_TLSREC_MAX_PLAIN + 256)         /* a record's body at most */
#define EDGE_TLSREC_OVERHEAD (EDGE_TLSREC_HDR + 1 + EDGE_TLSREC_TAG) /* what we add per record */
#define EDGE_TLSREC_SECRET_MAX 48                                    /* SHA-384 */

/* Content types. */
enum {
	EDGE_TLS_CT_ALERT = 21,
	EDGE_TLS_CT_HANDSHAKE = 22,
	EDGE_TLS_CT_APPDATA = 23,
};

/* Alert descriptions we send. */
enum {
	EDGE_TLS_AD_CLOSE_NOTIFY = 0,
	EDGE_TLS_AD_UNEXPECTED_MESSAGE = 10,
	EDGE_TLS_AD_BAD_RECORD_MAC = 20,
	EDGE_TLS_AD_RECORD_OVERFLOW = 22,
	EDGE_TLS_AD_ILLEGAL_PARAMETER = 47,
	EDGE_TLS_AD_DECODE_ERROR = 50,
};

struct edge_tlsrec_dir {
	EVP_CIPHER_CTX *ctx;
	unsigned char iv[12];
	unsigned char secret[EDGE_TLSREC_SECRET_MAX]; /* for the next KeyUpdate */
	uint64_t seq;
};

struct edge_tlsrec {
	const EVP_MD *md;
	uint16_t suite; /* 0x1301..0x1303 */
	uint8_t key_len, secret_len;
	struct edge_tlsrec_dir rx, tx;
};

/* Whether we can carry this TLS 1.3 cipher suite (its IANA number). */
bool edge_tlsrec_suite_ok(uint16_t suite);

/* Sets r up from the two application traffic secrets (the peer's for rx, ours for tx) and
 * the sequence numbers the session is at. 0, or -EINVAL / -ENOMEM (r holds nothing then). */
int edge_tlsrec_init(struct edge_tlsrec *r, uint16_t suite, const unsigned char *rx_secret,
		     const unsigned char *tx_secret, size_t secret_len, uint64_t rx_seq,
		     uint64_t tx_seq);
/* The contexts freed and every secret wiped. */
void edge_tlsrec_free(struct edge_tlsrec *r);

/* Seals len bytes (len <= EDGE_TLSREC_MAX_PLAIN) of content type into out, which has room
 * for len + EDGE_TLSREC_OVERHEAD bytes: returns the record's length, or -EIO. */
int edge_tlsrec_seal(struct edge_tlsrec *r, uint8_t type, const void *in, size_t len,
		     unsigned char *out);

/* Opens the record rec[0 .. EDGE_TLSREC_HDR + body) (its header checked by the caller: type
 * 23, body length at most EDGE_TLSREC_MAX_CIPHER) into out (room for the body's length; out may
 * be rec + EDGE_TLSREC_HDR): the plaintext's length and its content type in *type, or
 * -EBADMSG (the tag does not match: bad_record_mac), -EMSGSIZE (more than 2^14 bytes inside:
 * record_overflow), -EPROTO (no content type: unexpected_message). */
int edge_tlsrec_open(struct edge_tlsrec *r, const unsigned char *rec, size_t body,
		     unsigned char *out, uint8_t *type);

/* KeyUpdate: the direction's next traffic secret, key and IV (RFC 8446 7.2), sequence 0. */
int edge_tlsrec_update(struct edge_tlsrec *r, bool tx);

#endif
