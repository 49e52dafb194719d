/*
 * edge-client: a TLS client for the relay tests, with the knobs curl lacks.
 *
 *   edge-client --connect HOST:PORT --sni NAME --ca F [--cert F --key F]
 *               [--tls 1.2|1.3] [--cipher NAME] [--timeout SECS]
 *               MODE [SIZE]
 *
 * Modes (each prints one result line and exits 0 on success):
 *   get SIZE        GET /bytes/SIZE; checks length and the upstream's byte pattern
 *   slow-get SIZE   the same, read slowly: nothing for 300 ms after the head, then a 20 ms
 *                   pause every 256 KiB, so the server's sends meet a full socket buffer
 *   pipeline N SIZE N pipelined GET /bytes/SIZE (the last with Connection: close), nothing
 *                   read for 500 ms, then every response checked in order
 *   put SIZE        POST /count with SIZE pattern bytes; checks the upstream's count and FNV-1a
 *   close-notify    sends a request and close_notify at once; the response must still arrive
 *   keyupdate       a request, a TLS 1.3 KeyUpdate (update requested), a second request:
 *                   "handled" when answered, "closed" on a clean close; never a hang; then
 *                   "server KeyUpdate received" when the server answered with its own
 *   reneg           a request, then a TLS 1.2 renegotiation attempt: "refused" or "closed"
 *   corrupt         a request, then a record with a flipped byte: the server must close
 *   info            the handshake only: prints version and cipher
 *   poll N MS       N requests on one keep-alive connection, MS ms apart; one line each:
 *                   "I sent=EPOCH_MS ok", or "I sent=EPOCH_MS closed" and the end
 *   late-alert      a handshake the server refuses, read late: the client's first record of
 *                   each flight goes out at once, the rest 100 ms later, and nothing is read
 *                   until 300 ms after a write; prints "alert: DESCRIPTION" when the
 *                   server's alert arrived, "reset" when the connection was reset first
 * The negotiated version and cipher are printed too.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int timeout_s = 30;

/*
 * late-alert: a socket BIO that sends each TLS record of a flight on its own, 50 ms apart (a
 * client whose last flight goes out record by record, as a busy JVM's does), and reads only
 * 300 ms after its last write (a client slow to look at what came). A server that closes
 * with the flight unread, or before it has all come, resets the connection under it.
 */
static bool late_wrote = true; /* a write since the last read (the first read waits too) */

static int late_write(BIO *b, const char *in, int inl)
{
	int fd = (int)(intptr_t)BIO_get_data(b), done = 0;

	late_wrote = true;
	while (done < inl) {
		int len = inl - done;
		ssize_t n;

		if (len > 5) {
			int rec = 5 +
				  ((unsigned char)in[done + 3] << 8 | (unsigned char)in[done + 4]);

			if (rec < len)
				len = rec;
		}
		if (done)
			usleep(50 * 1000);
		n = send(fd, in + done, (size_t)len, MSG_NOSIGNAL);
		if (n <= 0)
			return done ? done : -1;
		done += (int)n;
	}
	return done;
}

static int late_read(BIO *b, char *out, int outl)
{
	int fd = (int)(intptr_t)BIO_get_data(b);
	ssize_t n;

	if (late_wrote) {
		late_wrote = false;
		usleep(300 * 1000);
	}
	n = recv(fd, out, (size_t)outl, 0);
	return n < 0 ? -1 : (int)n;
}

static long late_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO *late_bio(int fd)
{
	static BIO_METHOD *m;
	BIO *b;

	if (!m) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "late");
		BIO_meth_set_write(m, late_write);
		BIO_meth_set_read(m, late_read);
		BIO_meth_set_ctrl(m, late_ctrl);
	}
	b = BIO_new(m);
	BIO_set_data(b, (void *)(intptr_t)fd);
	BIO_set_init(b, 1);
	return b;
}

static void die(const char *what)
{
	fprintf(stderr, "edge-client: %s", what);
	if (ERR_peek_error()) {
		fprintf(stderr, ": ");
		ERR_print_errors_fp(stderr);
	} else {
		fprintf(stderr, "%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
	}
	exit(1);
}

static unsigned char pattern(uint64_t i)
{
	return (unsigned char)((i * 131 + 7) & 0xff);
}

static int tcp_connect(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int fd;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		die("--connect wants HOST:PORT");
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res))
		die("cannot resolve --connect");
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen))
		die("connect");
	freeaddrinfo(res);
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void write_all(SSL *ssl, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		int n = SSL_write(ssl, p, (int)(len > 65536 ? 65536 : len));

		if (n <= 0)
			die("SSL_write");
		p += n;
		len -= (size_t)n;
	}
}

/* Reads the response head; returns Content-Length (or -1) and leaves any
 * body bytes already read in body/body_len. */
static long long read_head(SSL *ssl, char *buf, size_t cap, size_t *got, size_t *head_len,
			   int *status)
{
	char *end = NULL, *cl;

	*got = 0;
	while (!end) {
		int n = SSL_read(ssl, buf + *got, (int)(cap - 1 - *got));

		if (n <= 0)
			return -2;
		*got += (size_t)n;
		buf[*got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end && *got >= cap - 1)
			return -2;
	}
	*head_len = (size_t)(end + 4 - buf);
	*status = atoi(buf + 9);
	cl = strcasestr(buf, "\r\ncontent-length:");
	return cl && cl < end ? atoll(cl + 17) : -1;
}

static int do_get(SSL *ssl, const char *sni, unsigned long long size, bool slow)
{
	static char buf[1 << 16];
	char req[512];
	size_t got, head;
	unsigned long long seen = 0;
	long long cl;
	int status, n;

	snprintf(req, sizeof(req),
		 "GET /bytes/%llu HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", size, sni);
	write_all(ssl, req, strlen(req));
	cl = read_head(ssl, buf, sizeof(buf), &got, &head, &status);
	if (cl < 0 || status != 200) {
		fprintf(stderr, "edge-client: bad response (status %d, length %lld)\n", status, cl);
		return 1;
	}
	for (size_t i = head; i < got; i++, seen++)
		if ((unsigned char)buf[i] != pattern(seen))
			goto mismatch;
	if (slow)
		usleep(300000);
	while (seen < (unsigned long long)cl && (n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
		unsigned long long was = seen;

		for (int i = 0; i < n; i++, seen++)
			if ((unsigned char)buf[i] != pattern(seen))
				goto mismatch;
		if (slow && seen / (256 * 1024) != was / (256 * 1024))
			usleep(20000);
	}
	if (seen != (unsigned long long)cl || seen != size) {
		fprintf(stderr, "edge-client: got %llu of %llu bytes\n", seen, size);
		return 1;
	}
	printf("get ok bytes=%llu\n", seen);
	/* The upstream closed after its response: that must reach us as close_notify. */
	n = SSL_read(ssl, buf, 1);
	if (n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN)
		printf("close_notify received\n");
	else
		printf("no close_notify after the response\n");
	return 0;
mismatch:
	fprintf(stderr, "edge-client: byte %llu differs from the upstream's pattern\n", seen);
	return 1;
}

static int do_pipeline(SSL *ssl, const char *sni, unsigned long n, unsigned long long size)
{
	static char buf[1 << 16];
	char req[512];
	size_t got = 0, off = 0;

	for (unsigned long i = 0; i < n; i++) {
		snprintf(req, sizeof(req), "GET /bytes/%llu HTTP/1.1\r\nHost: %s\r\n%s\r\n", size,
			 sni, i + 1 == n ? "Connection: close\r\n" : "");
		write_all(ssl, req, strlen(req));
	}
	usleep(500000);
	for (unsigned long i = 0; i < n; i++) {
		unsigned long long seen = 0;
		char *end, *cl;
		int r;

		/* the head: buffered bytes first */
		for (;;) {
			buf[got] = '\0';
			end = strstr(buf + off, "\r\n\r\n");
			if (end)
				break;
			memmove(buf, buf + off, got - off);
			got -= off;
			off = 0;
			r = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
			if (r <= 0 || got + (size_t)r >= sizeof(buf) - 1) {
				fprintf(stderr, "edge-client: response %lu: no head\n", i + 1);
				return 1;
			}
			got += (size_t)r;
		}
		cl = strcasestr(buf + off, "\r\ncontent-length:");
		if (atoi(buf + off + 9) != 200 || !cl || cl > end ||
		    strtoull(cl + 17, NULL, 10) != size) {
			fprintf(stderr, "edge-client: response %lu: bad head\n", i + 1);
			return 1;
		}
		off = (size_t)(end + 4 - buf);
		while (seen < size) {
			if (off == got) {
				off = got = 0;
				r = SSL_read(ssl, buf, (int)(sizeof(buf) - 1));
				if (r <= 0) {
					fprintf(stderr,
						"edge-client: response %lu: %llu of %llu bytes\n",
						i + 1, seen, size);
					return 1;
				}
				got = (size_t)r;
			}
			for (; off < got && seen < size; off++, seen++)
				if ((unsigned char)buf[off] != pattern(seen)) {
					fprintf(stderr,
						"edge-client: response %lu: byte %llu differs\n",
						i + 1, seen);
					return 1;
				}
		}
	}
	printf("pipeline ok responses=%lu bytes=%llu\n", n, size);
	return 0;
}

static int do_put(SSL *ssl, const char *sni, unsigned long long size)
{
	static unsigned char chunk[1 << 16];
	char req[512], resp[4096];
	uint64_t hash = 0xcbf29ce484222325ULL, their_hash = 0;
	unsigned long long sent = 0, their_count = 0;
	size_t got, head;
	int status;

	snprintf(req, sizeof(req),
		 "POST /count HTTP/1.1\r\nHost: %s\r\nContent-Length: %llu\r\n"
		 "Connection: close\r\n\r\n",
		 sni, size);
	write_all(ssl, req, strlen(req));
	while (sent < size) {
		size_t n = size - sent > sizeof(chunk) ? sizeof(chunk) : (size_t)(size - sent);

		for (size_t i = 0; i < n; i++) {
			chunk[i] = pattern(sent + i);
			hash = (hash ^ chunk[i]) * 0x100000001b3ULL;
		}
		write_all(ssl, chunk, n);
		sent += n;
	}
	if (read_head(ssl, resp, sizeof(resp), &got, &head, &status) < 0 || status != 200) {
		fprintf(stderr, "edge-client: bad response to the upload (status %d)\n", status);
		return 1;
	}
	while (!memchr(resp + head, '\n', got - head)) {
		int n = SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - got));

		if (n <= 0)
			break;
		got += (size_t)n;
		resp[got] = '\0';
	}
	if (sscanf(resp + head, "%llu %" SCNx64, &their_count, &their_hash) != 2 ||
	    their_count != size || their_hash != hash) {
		fprintf(stderr,
			"edge-client: upstream counted %llu bytes hash %016" PRIx64
			", sent %llu hash %016" PRIx64 "\n",
			their_count, their_hash, size, hash);
		return 1;
	}
	printf("put ok bytes=%llu fnv=%016" PRIx64 "\n", size, hash);
	return 0;
}

/* One small keep-alive request; 0 when answered. */
static int small_request(SSL *ssl, const char *sni, bool close)
{
	char req[256], buf[4096];
	size_t got, head;
	int status;
	long long cl;

	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", sni,
		 close ? "Connection: close\r\n" : "");
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0)
		return -1;
	cl = read_head(ssl, buf, sizeof(buf), &got, &head, &status);
	if (cl < 0 || status != 200)
		return -1;
	while ((long long)(got - head) < cl) {
		int n = SSL_read(ssl, buf, sizeof(buf));

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* After a post-handshake event: did the server answer, or close cleanly? */
static int peer_key_updates; /* KeyUpdate messages the server sent us */

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	(void)arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len &&
	    *(const unsigned char *)buf == 24)
		peer_key_updates++;
}

static int answered_or_closed(SSL *ssl, const char *sni, const char *handled_word)
{
	time_t t0 = time(NULL);
	int rc = small_request(ssl, sni, true);

	if (rc == 0) {
		printf("%s\n", handled_word);
		return 0;
	}
	if (time(NULL) - t0 >= timeout_s) {
		printf("hang\n");
		return 1;
	}
	printf("closed\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *connect_to = NULL, *sni = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	const char *tls = NULL, *cipher = NULL, *mode;
	SSL_CTX *ctx;
	SSL *ssl;
	int i, fd, rc = 1;

	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die("option without a value");
		if (!strcmp(argv[i], "--connect"))
			connect_to = v;
		else if (!strcmp(argv[i], "--sni"))
			sni = v;
		else if (!strcmp(argv[i], "--ca"))
			ca = v;
		else if (!strcmp(argv[i], "--cert"))
			cert = v;
		else if (!strcmp(argv[i], "--key"))
			key = v;
		else if (!strcmp(argv[i], "--tls"))
			tls = v;
		else if (!strcmp(argv[i], "--cipher"))
			cipher = v;
		else if (!strcmp(argv[i], "--timeout"))
			timeout_s = atoi(v);
		else
			die("unknown option (see the comment at the top of edge_client.c)");
	}
	if (i >= argc || !connect_to || !sni || !ca)
		die("usage: edge-client --connect HOST:PORT --sni NAME --ca F [...] MODE [SIZE]");
	mode = argv[i];

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		die("cannot load --ca");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))
		die("cannot load --cert/--key");
	if (tls) {
		int v = !strcmp(tls, "1.3") ? TLS1_3_VERSION : TLS1_2_VERSION;

		SSL_CTX_set_min_proto_version(ctx, v);
		SSL_CTX_set_max_proto_version(ctx, v);
	}
	if (cipher) {
		/* TLS 1.3 suites and TLS 1.2 cipher lists are configured apart. */
		if (!strncmp(cipher, "TLS_", 4) ? SSL_CTX_set_ciphersuites(ctx, cipher) != 1
						: SSL_CTX_set_cipher_list(ctx, cipher) != 1)
			die("unknown --cipher");
	}
	if (!strcmp(mode, "reneg"))
		SSL_CTX_clear_options(ctx, SSL_OP_NO_RENEGOTIATION);
	fd = tcp_connect(connect_to);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	SSL_set1_host(ssl, sni);
	if (!strcmp(mode, "late-alert")) {
		BIO *b = late_bio(fd);
		unsigned long e;
		int saved;

		SSL_set_bio(ssl, b, b);
		errno = 0;
		if (SSL_connect(ssl) == 1) {
			char byte;

			/* TLS 1.3: the client's side is done before the server has judged its
			 * certificate; the refusal comes as the answer to the first read. */
			if (SSL_version(ssl) != TLS1_3_VERSION || SSL_read(ssl, &byte, 1) > 0)
				die("late-alert: the server accepted the handshake");
		}
		saved = errno;
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
			printf("alert: %s\n", SSL_alert_desc_string_long(ERR_GET_REASON(e) -
									 SSL_AD_REASON_OFFSET));
		else
			printf("reset: %s\n", saved ? strerror(saved) : ERR_reason_error_string(e));
		return 0;
	}
	if (SSL_connect(ssl) != 1)
		die("handshake");
	printf("tls=%s cipher=%s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	fflush(stdout);

	if (!strcmp(mode, "info")) {
		/* A request proves the session passed verification, not just the handshake. */
		rc = small_request(ssl, sni, true) == 0 ? 0 : 1;
		printf(rc ? "request failed\n" : "request ok\n");
	} else if ((!strcmp(mode, "get") || !strcmp(mode, "slow-get")) && i + 1 < argc) {
		rc = do_get(ssl, sni, strtoull(argv[i + 1], NULL, 10), !strcmp(mode, "slow-get"));
	} else if (!strcmp(mode, "pipeline") && i + 2 < argc) {
		rc = do_pipeline(ssl, sni, strtoul(argv[i + 1], NULL, 10),
				 strtoull(argv[i + 2], NULL, 10));
	} else if (!strcmp(mode, "put") && i + 1 < argc) {
		rc = do_put(ssl, sni, strtoull(argv[i + 1], NULL, 10));
	} else if (!strcmp(mode, "poll") && i + 2 < argc) {
		long n = strtol(argv[i + 1], NULL, 10), ms = strtol(argv[i + 2], NULL, 10);

		rc = 0;
		for (long k = 0; k < n; k++) {
			struct timespec ts;
			long long sent;
			int r;

			clock_gettime(CLOCK_REALTIME, &ts);
			sent = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			r = small_request(ssl, sni, false);
			printf("%ld sent=%lld %s\n", k, sent, r ? "closed" : "ok");
			fflush(stdout);
			if (r)
				break;
			usleep((useconds_t)ms * 1000);
		}
	} else if (!strcmp(mode, "close-notify")) {
		char req[256], buf[4096];
		size_t got, head;
		int status;

		snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", sni);
		write_all(ssl, req, strlen(req));
		SSL_shutdown(ssl); /* close_notify: a half-close, the answer must still come */
		rc = read_head(ssl, buf, sizeof(buf), &got, &head, &status) >= 0 && status == 200
			     ? 0
			     : 1;
		printf(rc ? "no response after close_notify\n" : "response after close_notify\n");
	} else if (!strcmp(mode, "keyupdate")) {
		if (small_request(ssl, sni, false))
			die("first request");
		SSL_set_msg_callback(ssl, msg_cb);
		if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1)
			die("SSL_key_update");
		rc = answered_or_closed(ssl, sni, "handled");
		if (peer_key_updates)
			printf("server KeyUpdate received\n");
	} else if (!strcmp(mode, "reneg")) {
		if (small_request(ssl, sni, false))
			die("first request");
		if (SSL_renegotiate(ssl) != 1) {
			printf("refused\n");
			rc = 0;
		} else {
			SSL_do_handshake(ssl);
			ERR_clear_error();
			/* The server must refuse: a renegotiated session is a failure. */
			rc = answered_or_closed(ssl, sni, "renegotiated");
			if (rc == 0 && SSL_renegotiate_pending(ssl) == 0 &&
			    SSL_get_shutdown(ssl) == 0 && SSL_is_init_finished(ssl) &&
			    SSL_total_renegotiations(ssl) > 0)
				rc = 1;
		}
	} else if (!strcmp(mode, "corrupt")) {
		static const unsigned char bad[] = { 23, 3,  3,  0,  32, 1,  2,  3,  4,  5,
						     6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
						     16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
						     26, 27, 28, 29, 30, 31, 32 };
		char c;
		time_t t0;

		if (small_request(ssl, sni, false))
			die("first request");
		if (write(fd, bad, sizeof(bad)) != (ssize_t)sizeof(bad))
			die("write");
		/* The server may send an alert first; it must then close. */
		t0 = time(NULL);
		while (read(fd, &c, 1) > 0)
			;
		if (time(NULL) - t0 >= timeout_s) {
			printf("hang\n");
			rc = 1;
		} else {
			printf("closed\n");
			rc = 0;
		}
	} else {
		die("unknown MODE (info, get, slow-get, pipeline, put, close-notify, keyupdate, reneg, corrupt)");
	}
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return rc;
}
