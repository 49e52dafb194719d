/*
 * ktls_probe: what kernel TLS this kernel and this OpenSSL really give, found by doing it.
 *
 *   cc -std=gnu11 -O2 -Wall -Wextra -o build/ktls_probe tests/ktls/ktls_probe.c \
 *      $(pkg-config --cflags --libs openssl)
 *   build/ktls_probe        (tests/vm/ktls-smoke.sh builds it, runs it here and in the guest)
 *
 * 1. TCP_ULP "tls" on a connected loopback TCP pair: "ktls_ulp=yes", or "ktls_ulp=no (why)".
 * 2. For TLS 1.2 and 1.3, each with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305: an OpenSSL
 *    server and client in this process, over loopback TCP, both with SSL_OP_ENABLE_KTLS and a
 *    self-signed P-256 certificate made in memory. Each side prints
 *      tls=1.2 cipher=ECDHE-ECDSA-AES128-GCM-SHA256 ktls_send=1 ktls_recv=1 side=client xfer=ok
 *    (BIO_get_ktls_send/recv on its write/read BIO after the handshake), and the kernel's own view
 *    (getsockopt SOL_TLS TLS_TX/TLS_RX: version and cipher) must agree. Then 1 MiB goes each way
 *    and is compared byte for byte, and both sides close with close_notify.
 * 3. /proc/net/tls_stat.
 *
 * Expected with kTLS in the kernel: TLS 1.2 offloads both directions for all three ciphers;
 * TLS 1.3 offloads sending, and receiving only from OpenSSL 3.2 on (3.0 installs no TLS 1.3 RX
 * keys in the kernel). Without kTLS: nothing offloads and the bytes still arrive intact.
 * Exit: 0 all as expected with kTLS; 77 the kernel has no kTLS (ktls_ulp=no) and the fallback
 * worked; 1 anything else (a flag, the kernel's view, a handshake or a byte not as expected).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/tls.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define PROBE_XFER_BYTES (1u << 20)
#define PROBE_CHUNK 16384
#define PROBE_STALL_MS 30000 /* no progress for this long on loopback is a hang */

struct probe_case {
	int version;         /* TLS1_2_VERSION, TLS1_3_VERSION */
	const char *ciphers; /* the one suite offered, OpenSSL's name */
	int kernel_cipher;   /* TLS_CIPHER_* the kernel must report */
};

static const struct probe_case probe_cases[] = {
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", TLS_CIPHER_CHACHA20_POLY1305 },
	{ TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305 },
};

/* One end of a connection and the bytes it must send and receive. */
struct probe_end {
	const char *name;
	SSL *ssl;
	int fd;
	const unsigned char *tx; /* PROBE_XFER_BYTES to send */
	unsigned char *rx;       /* PROBE_XFER_BYTES received */
	size_t tx_off, rx_off;
	bool handshaken, close_sent, close_seen, want_write;
};

static int mismatches;

/* Drains the OpenSSL error queue into one line. */
static void print_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	fprintf(stderr, "ktls_probe: %s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, ": %s", buf);
	}
	fputc('\n', stderr);
}

/* A failed SSL call on one end: where it was, its SSL error, errno and the OpenSSL errors. */
static int end_failed(const struct probe_end *e, const char *what, int ssl_err)
{
	char line[200];
	int saved = errno;

	snprintf(line, sizeof(line),
		 "%s: %s failed, %zu bytes sent and %zu received (SSL error %d, %s)", e->name, what,
		 e->tx_off, e->rx_off, ssl_err, strerror(saved));
	print_ssl_errors(line);
	return -1;
}

__attribute__((format(printf, 1, 2))) static void mismatch(const char *fmt, ...)
{
	va_list ap;

	mismatches++;
	fputs("MISMATCH: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A connected loopback TCP pair; 0 or a negative errno. */
static int tcp_pair(int *client, int *server)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sa);
	int lfd, cfd = -1, sfd = -1, err;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len))
		goto fail;
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (sfd < 0)
		goto fail;
	close(lfd);
	*client = cfd;
	*server = sfd;
	return 0;
fail:
	err = -errno;
	if (cfd >= 0)
		close(cfd);
	close(lfd);
	return err;
}

/* 1. Can a TCP socket take the "tls" upper layer protocol at all? */
static bool probe_ulp(void)
{
	int c, s, err;

	err = tcp_pair(&c, &s);
	if (err) {
		printf("ktls_ulp=no (cannot make a loopback TCP pair: %s)\n", strerror(-err));
		return false;
	}
	if (setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")))
		err = -errno;
	close(c);
	close(s);
	if (err) {
		printf("ktls_ulp=no (%s)\n", strerror(-err));
		return false;
	}
	printf("ktls_ulp=yes\n");
	return true;
}

/* The self-signed P-256 certificate both ends use (server presents, client trusts). */
static int make_cert(EVP_PKEY **pkey_out, X509 **cert_out)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;

	if (!pkey || !x)
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"ktls-probe", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey) ||
	    !X509_sign(x, pkey, EVP_sha256()))
		goto fail;
	*pkey_out = pkey;
	*cert_out = x;
	return 0;
fail:
	print_ssl_errors("cannot make the test certificate");
	X509_free(x);
	EVP_PKEY_free(pkey);
	return -1;
}

static SSL_CTX *make_ctx(const struct probe_case *pc, bool server, EVP_PKEY *pkey, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!SSL_CTX_set_min_proto_version(ctx, pc->version) ||
	    !SSL_CTX_set_max_proto_version(ctx, pc->version))
		goto fail;
	if (pc->version == TLS1_3_VERSION ? !SSL_CTX_set_ciphersuites(ctx, pc->ciphers)
					  : !SSL_CTX_set_cipher_list(ctx, pc->ciphers))
		goto fail;
	if (server) {
		if (!SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, pkey))
			goto fail;
	} else {
		if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert))
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
fail:
	print_ssl_errors(server ? "server SSL_CTX" : "client SSL_CTX");
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * Moves one end forward as far as it goes without blocking: handshake, then sending and
 * receiving its share, then close_notify both ways. 1 when it moved, 0 when it must wait,
 * -1 on a failure (already printed).
 */
static int step(struct probe_end *e, bool closing)
{
	size_t n;
	int r, err, moved = 0;

	e->want_write = false;
	if (!e->handshaken) {
		r = SSL_do_handshake(e->ssl);
		if (r == 1) {
			e->handshaken = true;
			return 1;
		}
		err = SSL_get_error(e->ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			e->want_write = err == SSL_ERROR_WANT_WRITE;
			return 0;
		}
		return end_failed(e, "handshake", err);
	}
	while (e->tx_off < PROBE_XFER_BYTES) {
		size_t len = PROBE_XFER_BYTES - e->tx_off;

		if (len > PROBE_CHUNK)
			len = PROBE_CHUNK;
		if (SSL_write_ex(e->ssl, e->tx + e->tx_off, len, &n)) {
			e->tx_off += n;
			moved = 1;
			continue;
		}
		err = SSL_get_error(e->ssl, 0);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
			e->want_write = err == SSL_ERROR_WANT_WRITE;
			break;
		}
		return end_failed(e, "SSL_write", err);
	}
	if (closing && !e->close_sent && e->tx_off == PROBE_XFER_BYTES) {
		r = SSL_shutdown(e->ssl);
		if (r >= 0) {
			e->close_sent = true;
			moved = 1;
		} else {
			err = SSL_get_error(e->ssl, r);
			if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ)
				return end_failed(e, "SSL_shutdown", err);
			e->want_write = err == SSL_ERROR_WANT_WRITE;
		}
	}
	while (!e->close_seen) {
		unsigned char extra[1];
		unsigned char *buf = e->rx + e->rx_off;
		size_t room = PROBE_XFER_BYTES - e->rx_off;

		if (!room) {
			buf = extra; /* only close_notify may come now */
			room = sizeof(extra);
		}
		if (SSL_read_ex(e->ssl, buf, room, &n)) {
			if (buf == extra) {
				fprintf(stderr, "ktls_probe: %s: more than %u bytes arrived\n",
					e->name, PROBE_XFER_BYTES);
				return -1;
			}
			e->rx_off += n;
			moved = 1;
			continue;
		}
		err = SSL_get_error(e->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (err == SSL_ERROR_ZERO_RETURN && e->rx_off == PROBE_XFER_BYTES) {
			e->close_seen = true;
			moved = 1;
			break;
		}
		return end_failed(e, "SSL_read", err);
	}
	return moved;
}

static bool end_done(const struct probe_end *e, bool closing)
{
	if (!closing)
		return e->handshaken;
	return e->close_sent && e->close_seen;
}

/* Steps both ends until both are done; polls when neither can move. 0 or -1. */
static int drive(struct probe_end *a, struct probe_end *b, bool closing)
{
	struct pollfd pfd[2];
	int ra, rb;

	for (;;) {
		ra = end_done(a, closing) ? 0 : step(a, closing);
		rb = end_done(b, closing) ? 0 : step(b, closing);
		if (ra < 0 || rb < 0)
			return -1;
		if (end_done(a, closing) && end_done(b, closing))
			return 0;
		if (ra || rb)
			continue;
		pfd[0] = (struct pollfd){ .fd = a->fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = b->fd, .events = POLLIN };
		if (a->want_write)
			pfd[0].events |= POLLOUT;
		if (b->want_write)
			pfd[1].events |= POLLOUT;
		ra = poll(pfd, 2, PROBE_STALL_MS);
		if (ra < 0 && errno != EINTR) {
			perror("ktls_probe: poll");
			return -1;
		}
		if (ra == 0) {
			fprintf(stderr, "ktls_probe: no progress for %d ms\n", PROBE_STALL_MS);
			end_failed(a, "waiting", 0);
			return end_failed(b, "waiting", 0);
		}
	}
}

/* The kernel's own record of a direction: its TLS version and cipher, or 0 when not offloaded. */
static int kernel_view(int fd, int dir, int *version)
{
	struct tls_crypto_info ci;
	socklen_t len = sizeof(ci); /* only the header: never the keys */

	if (getsockopt(fd, SOL_TLS, dir, &ci, &len))
		return 0;
	*version = ci.version;
	return ci.cipher_type;
}

/* Checks one end's offload flags against what is expected and against the kernel. */
static void check_end(const struct probe_case *pc, const char *vname, const struct probe_end *e,
		      bool ulp, bool expect_rx13)
{
	int send = BIO_get_ktls_send(SSL_get_wbio(e->ssl));
	int recv = BIO_get_ktls_recv(SSL_get_rbio(e->ssl));
	int want_send = ulp;
	int want_recv = ulp && (pc->version == TLS1_2_VERSION || expect_rx13);
	const char *cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(e->ssl));
	int dirs[2] = { TLS_TX, TLS_RX }, flags[2] = { send, recv };
	int i, kver = 0, kcipher;

	printf("tls=%s cipher=%s ktls_send=%d ktls_recv=%d side=%s\n", vname, cipher, send, recv,
	       e->name);
	if (strcmp(cipher, pc->ciphers))
		mismatch("tls=%s side=%s: cipher %s negotiated, expected %s", vname, e->name,
			 cipher, pc->ciphers);
	if (send != want_send)
		mismatch("tls=%s side=%s: ktls_send=%d, expected %d", vname, e->name, send,
			 want_send);
	if (recv != want_recv)
		mismatch("tls=%s side=%s: ktls_recv=%d, expected %d", vname, e->name, recv,
			 want_recv);
	for (i = 0; i < 2; i++) {
		kcipher = kernel_view(e->fd, dirs[i], &kver);
		if (!flags[i] && !kcipher)
			continue;
		if (!flags[i] || kcipher != pc->kernel_cipher || kver != pc->version)
			mismatch("tls=%s side=%s %s: OpenSSL says %d, the kernel has cipher %d "
				 "version 0x%04x (expected cipher %d version 0x%04x)",
				 vname, e->name, i ? "rx" : "tx", flags[i], kcipher, kver,
				 pc->kernel_cipher, pc->version);
	}
}

static void fill(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x >> 24);
	}
}

/* One handshake + transfer + close. 0, or -1 with the reason printed. */
static int run_case(const struct probe_case *pc, EVP_PKEY *pkey, X509 *cert, bool ulp,
		    bool expect_rx13, const unsigned char *c2s, const unsigned char *s2c,
		    unsigned char *rxc, unsigned char *rxs)
{
	const char *vname = pc->version == TLS1_3_VERSION ? "1.3" : "1.2";
	struct probe_end cl = { .name = "client", .fd = -1, .tx = c2s, .rx = rxc };
	struct probe_end sv = { .name = "server", .fd = -1, .tx = s2c, .rx = rxs };
	SSL_CTX *cctx = NULL, *sctx = NULL;
	int ret = -1, err, before = mismatches;

	cctx = make_ctx(pc, false, pkey, cert);
	sctx = make_ctx(pc, true, pkey, cert);
	if (!cctx || !sctx)
		goto out;
	err = tcp_pair(&cl.fd, &sv.fd);
	if (err) {
		fprintf(stderr, "ktls_probe: loopback TCP pair: %s\n", strerror(-err));
		goto out;
	}
	if (fcntl(cl.fd, F_SETFL, O_NONBLOCK) || fcntl(sv.fd, F_SETFL, O_NONBLOCK)) {
		perror("ktls_probe: O_NONBLOCK");
		goto out;
	}
	cl.ssl = SSL_new(cctx);
	sv.ssl = SSL_new(sctx);
	if (!cl.ssl || !sv.ssl || !SSL_set_fd(cl.ssl, cl.fd) || !SSL_set_fd(sv.ssl, sv.fd)) {
		print_ssl_errors("SSL_new/SSL_set_fd");
		goto out;
	}
	SSL_set_connect_state(cl.ssl);
	SSL_set_accept_state(sv.ssl);

	if (drive(&cl, &sv, false)) {
		printf("tls=%s cipher=%s handshake=failed\n", vname, pc->ciphers);
		goto out;
	}
	check_end(pc, vname, &cl, ulp, expect_rx13);
	check_end(pc, vname, &sv, ulp, expect_rx13);

	memset(rxc, 0, PROBE_XFER_BYTES);
	memset(rxs, 0, PROBE_XFER_BYTES);
	if (drive(&cl, &sv, true)) {
		printf("tls=%s cipher=%s xfer=failed\n", vname, pc->ciphers);
		goto out;
	}
	if (memcmp(rxs, c2s, PROBE_XFER_BYTES) || memcmp(rxc, s2c, PROBE_XFER_BYTES)) {
		printf("tls=%s cipher=%s xfer=corrupt\n", vname, pc->ciphers);
		goto out;
	}
	printf("tls=%s cipher=%s xfer=ok (%u bytes each way, close_notify both ways)%s\n", vname,
	       pc->ciphers, PROBE_XFER_BYTES, mismatches == before ? "" : " but flags mismatched");
	ret = 0;
out:
	SSL_free(cl.ssl);
	SSL_free(sv.ssl);
	if (cl.fd >= 0)
		close(cl.fd);
	if (sv.fd >= 0)
		close(sv.fd);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return ret;
}

static void print_tls_stat(void)
{
	char line[256];
	FILE *f = fopen("/proc/net/tls_stat", "r");

	if (!f) {
		printf("/proc/net/tls_stat: %s\n", strerror(errno));
		return;
	}
	printf("/proc/net/tls_stat:\n");
	while (fgets(line, sizeof(line), f))
		printf("  %s", line);
	fclose(f);
}

int main(void)
{
	unsigned char *c2s = NULL, *s2c = NULL, *rxc = NULL, *rxs = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	struct utsname u;
	bool ulp, expect_rx13;
	size_t i;
	int failures = 0, ret = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (uname(&u) == 0)
		printf("kernel=%s\n", u.release);
	printf("openssl=%s\n", OpenSSL_version(OPENSSL_VERSION));
	/* OpenSSL 3.0 and 3.1 install TLS 1.3 receive keys in the kernel never; 3.2 does. */
	expect_rx13 = OpenSSL_version_num() >= 0x30200000L;

	ulp = probe_ulp();

	c2s = malloc(PROBE_XFER_BYTES);
	s2c = malloc(PROBE_XFER_BYTES);
	rxc = malloc(PROBE_XFER_BYTES);
	rxs = malloc(PROBE_XFER_BYTES);
	if (!c2s || !s2c || !rxc || !rxs) {
		fprintf(stderr, "ktls_probe: out of memory\n");
		goto out;
	}
	fill(c2s, PROBE_XFER_BYTES, 0x6b746c73636c6e74ull);
	fill(s2c, PROBE_XFER_BYTES, 0x6b746c7373727672ull);
	if (make_cert(&pkey, &cert))
		goto out;

	for (i = 0; i < sizeof(probe_cases) / sizeof(probe_cases[0]); i++)
		if (run_case(&probe_cases[i], pkey, cert, ulp, expect_rx13, c2s, s2c, rxc, rxs))
			failures++;

	print_tls_stat();
	if (failures || mismatches) {
		printf("ktls_probe: FAIL: %d case(s) failed, %d mismatch(es)\n", failures,
		       mismatches);
	} else if (!ulp) {
		printf("ktls_probe: SKIP: this kernel has no kTLS "
		       "(the userspace fallback works)\n");
		ret = 77;
	} else {
		printf("ktls_probe: OK: kTLS as expected for OpenSSL %s "
		       "(TLS 1.2 send+recv, TLS 1.3 send%s)\n",
		       OpenSSL_version(OPENSSL_VERSION_STRING), expect_rx13 ? "+recv" : " only");
		ret = 0;
	}
out:
	X509_free(cert);
	EVP_PKEY_free(pkey);
	free(c2s);
	free(s2c);
	free(rxc);
	free(rxs);
	return ret;
}
