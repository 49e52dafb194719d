#include "ktls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

int edge_ktls_probe(char *why, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = -1, c = -1, s = -1, rc = 0;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al) ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) || (s = accept(l, NULL, NULL)) < 0) {
		rc = -errno;
		snprintf(why, len, "cannot make a loopback TCP pair to probe: %s", strerror(-rc));
		goto out;
	}
	if (setsockopt(s, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		rc = -errno;
		snprintf(why, len, "setsockopt(TCP_ULP, \"tls\"): %s%s", strerror(-rc),
			 rc == -ENOENT ? " (the kernel has no tls module: CONFIG_TLS is not set"
					 " or 'modprobe tls' was not run)"
				       : "");
		goto out;
	}
	snprintf(why, len, "TCP_ULP tls attaches");
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return rc;
}

static int unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

size_t edge_ktls_secret(const char *line, const char *label, unsigned char *out, size_t outlen)
{
	size_t ll = strlen(label);
	const char *p;
	size_t n = 0;

	if (strncmp(line, label, ll) || line[ll] != ' ')
		return 0;
	p = strchr(line + ll + 1, ' '); /* skip the client random */
	if (!p)
		return 0;
	for (p++; p[0] && p[1] && n < outlen; p += 2) {
		int hi = unhex(p[0]), lo = unhex(p[1]);

		if (hi < 0 || lo < 0)
			break;
		out[n++] = (unsigned char)(hi << 4 | lo);
	}
	return n;
}

bool edge_ktls_cipher_ok(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	uint16_t id = c ? (uint16_t)SSL_CIPHER_get_protocol_id(c) : 0;

	return id >= 0x1301 && id <= 0x1303;
}

/* Fetched once: a fetch per derivation takes the provider store's locks (four per
 * connection taken over by xprt_rec, more on each KeyUpdate). */
static EVP_KDF *hkdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

static void hkdf_fetch(void)
{
	hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

int edge_tls13_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
			    const char *label, unsigned char *out, size_t out_len)
{
	unsigned char info[2 + 1 + 255 + 1];
	size_t llen = strlen(label), ilen = 0;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM params[5];
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ok;

	if (6 + llen > 255)
		return -EINVAL;
	info[ilen++] = (unsigned char)(out_len >> 8);
	info[ilen++] = (unsigned char)out_len;
	info[ilen++] = (unsigned char)(6 + llen);
	memcpy(info + ilen, "tls13 ", 6);
	ilen += 6;
	memcpy(info + ilen, label, llen);
	ilen += llen;
	info[ilen++] = 0; /* empty context */

	pthread_once(&hkdf_once, hkdf_fetch);
	kctx = hkdf ? EVP_KDF_CTX_new(hkdf) : NULL;
	if (!kctx)
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
						      secret_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, ilen);
	params[3] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[4] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, out_len, params);
	EVP_KDF_CTX_free(kctx);
	return ok == 1 ? 0 : -EINVAL;
}

int edge_ktls_install_rx13(SSL *ssl, int fd, const unsigned char *secret, size_t secret_len,
			   char *err, size_t errlen)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	unsigned char key[32], iv[12];
	const EVP_MD *md;
	size_t key_len, ci_len;
	uint16_t id;
	int rc;

	if (!cipher || !(md = SSL_CIPHER_get_handshake_digest(cipher))) {
		snprintf(err, errlen, "no negotiated cipher");
		return -EINVAL;
	}
	id = (uint16_t)SSL_CIPHER_get_protocol_id(cipher);
	memset(&ci, 0, sizeof(ci));
	switch (id) {
	case 0x1301: /* TLS_AES_128_GCM_SHA256 */
		key_len = 16;
		ci_len = sizeof(ci.g128);
		ci.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		break;
	case 0x1302: /* TLS_AES_256_GCM_SHA384 */
		key_len = 32;
		ci_len = sizeof(ci.g256);
		ci.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		break;
	case 0x1303: /* TLS_CHACHA20_POLY1305_SHA256 */
		key_len = 32;
		ci_len = sizeof(ci.cc);
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		break;
	default:
		snprintf(err, errlen, "cipher %s is not offloadable", SSL_CIPHER_get_name(cipher));
		return -EOPNOTSUPP;
	}
	if (edge_tls13_expand_label(md, secret, secret_len, "key", key, key_len) ||
	    edge_tls13_expand_label(md, secret, secret_len, "iv", iv, sizeof(iv))) {
		snprintf(err, errlen, "HKDF-Expand-Label failed");
		rc = -EINVAL;
		goto out;
	}
	ci.g128.info.version = TLS_1_3_VERSION;
	/* The 12-byte IV splits into salt (4) + iv (8) for AES-GCM; the record
	 * sequence starts at 0: no application record was read in userspace. */
	if (id == 0x1303) {
		memcpy(ci.cc.iv, iv, 12);
		memcpy(ci.cc.key, key, 32);
	} else if (id == 0x1301) {
		memcpy(ci.g128.salt, iv, 4);
		memcpy(ci.g128.iv, iv + 4, 8);
		memcpy(ci.g128.key, key, 16);
	} else {
		memcpy(ci.g256.salt, iv, 4);
		memcpy(ci.g256.iv, iv + 4, 8);
		memcpy(ci.g256.key, key, 32);
	}
	if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, (socklen_t)ci_len)) {
		rc = -errno;
		snprintf(err, errlen, "setsockopt(TLS_RX): %s", strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&ci, sizeof(ci));
	return rc;
}

int edge_ktls_read_record(int fd, uint8_t *type, unsigned char *buf, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(uint8_t))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	*type = 0;
	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *(uint8_t *)CMSG_DATA(cm);
	return (int)n;
}

int edge_ktls_send_alert(int fd, uint8_t level, uint8_t desc)
{
	unsigned char alert[2] = { level, desc };
	char cbuf[CMSG_SPACE(sizeof(uint8_t))];
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(uint8_t));
	*(uint8_t *)CMSG_DATA(cm) = 21; /* alert */
	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(alert) ? 0
											: -errno;
}
