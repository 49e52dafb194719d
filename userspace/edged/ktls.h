/*
 * Kernel TLS: the probe, the TLS 1.3 RX key install that OpenSSL 3.0 does not
 * do, and the control records that end the splice path.
 */
#ifndef EDGE_KTLS_H
#define EDGE_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define EDGE_TLS_SECRET_MAX 64

/* Attaches the "tls" ULP to a loopback TCP pair. 0 when the kernel has kTLS;
 * otherwise a negative errno and the reason in why. */
int edge_ktls_probe(char *why, size_t len);

/* Parses a keylog line; copies the secret named by label (TLS 1.3
 * "CLIENT_TRAFFIC_SECRET_0" or "SERVER_TRAFFIC_SECRET_0") into out.
 * Returns its length, or 0 for any other line. */
size_t edge_ktls_secret(const char *line, const char *label, unsigned char *out, size_t outlen);
/* Whether the kernel can take this TLS 1.3 cipher suite. */
bool edge_ktls_cipher_ok(const SSL *ssl);

/* HKDF-Expand-Label (RFC 8446 7.1) with an empty context. */
int edge_tls13_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
			    const char *label, unsigned char *out, size_t out_len);

/* Installs TLS 1.3 RX on fd from the peer's traffic secret, record
 * sequence 0. -EOPNOTSUPP for a cipher the kernel cannot take. */
int edge_ktls_install_rx13(SSL *ssl, int fd, const unsigned char *secret, size_t secret_len,
			   char *err, size_t errlen);

/* Reads one non-data record from a kTLS RX socket: returns its length and
 * the record type in *type, or a negative errno (-EBADMSG: corrupted). */
int edge_ktls_read_record(int fd, uint8_t *type, unsigned char *buf, size_t len);

/* Sends an alert record through kTLS TX (close_notify: level 1, desc 0). */
int edge_ktls_send_alert(int fd, uint8_t level, uint8_t desc);

#endif
