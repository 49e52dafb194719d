/*
 * edge-flood: many short connections to mtls-edged, from several threads, for the abuse and soak
 * tests (a shell loop of openssl s_client manages a few dozen a second; this manages thousands).
 *
 *   edge-flood --connect HOST:PORT --sni NAME --ca F --count N [--parallel P]
 *              [--mix KIND,KIND...] [--good-cert F --good-key F] [--bad-cert F --bad-key F]
 *              [--timeout SECS] [--source ADDR]
 *
 * Connection i is of kind mix[i % len(mix)]. Kinds, and what counts as the expected outcome:
 *   nocert    a TLS 1.3 handshake with no client certificate: the server must end it with an
 *             alert or a close, never serve a request
 *   wrongca   the same presenting --bad-cert (from a CA the hostname does not trust)
 *   garbage   an HTTP request instead of a ClientHello: the server must close
 *   cut       a ClientHello record header announcing 512 bytes, 40 of them, then FIN: the
 *             server must close
 *   ok        --good-cert: GET / must answer 200 (a healthy client during the flood)
 * Prints one line: "count=N expected=N unexpected=N KIND=expected/total ... elapsed_ms=N" and
 * exits 0 only when every connection had its expected outcome.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum kind { K_NOCERT, K_WRONGCA, K_GARBAGE, K_CUT, K_OK, K_COUNT };
static const char *const kind_names[K_COUNT] = { "nocert", "wrongca", "garbage", "cut", "ok" };

static struct addrinfo *target;
static struct sockaddr_in source; /* --source: the local IPv4 address to connect from */
static const char *sni;
static SSL_CTX *ctx_plain, *ctx_bad, *ctx_good;
static enum kind mix[32];
static int n_mix;
static long count;
static int timeout_s = 10;
static atomic_long next_i;
static atomic_long total[K_COUNT], good[K_COUNT];
static atomic_long first_error_logged;

static void die(const char *what)
{
	fprintf(stderr, "edge-flood: %s", what);
	if (ERR_peek_error()) {
		fprintf(stderr, ": ");
		ERR_print_errors_fp(stderr);
	} else {
		fprintf(stderr, "\n");
	}
	exit(2);
}

static void note(enum kind k, long i, const char *why)
{
	if (atomic_fetch_add(&first_error_logged, 1) < 5)
		fprintf(stderr, "edge-flood: connection %ld (%s): %s\n", i, kind_names[k], why);
}

static int tcp_connect(void)
{
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = socket(target->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (source.sin_family && bind(fd, (struct sockaddr *)&source, sizeof(source))) {
		close(fd);
		return -1;
	}
	if (connect(fd, target->ai_addr, target->ai_addrlen)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until the server closes (0 or a reset); false on a timeout. */
static bool server_closes(int fd)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

static bool raw_kind(int fd, enum kind k)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: flood\r\n\r\n";
	unsigned char cut[40] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
	const void *p = k == K_GARBAGE ? (const void *)http : cut;
	size_t len = k == K_GARBAGE ? sizeof(http) - 1 : sizeof(cut);

	if (write(fd, p, len) != (ssize_t)len)
		return false;
	shutdown(fd, SHUT_WR);
	return server_closes(fd);
}

/* A TLS kind: the outcome for a failing kind is "no response ever came", for ok a 200. */
static bool tls_kind(int fd, enum kind k, long i)
{
	SSL_CTX *ctx = k == K_OK ? ctx_good : k == K_WRONGCA ? ctx_bad : ctx_plain;
	SSL *ssl = SSL_new(ctx);
	char req[256], buf[4096];
	int n, got = 0;
	bool res = false;

	if (!ssl)
		return false;
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni);
	if (SSL_connect(ssl) != 1) {
		/* TLS 1.2 or an early alert: the handshake itself failed. */
		res = k != K_OK;
		if (!res)
			note(k, i, "handshake failed");
		goto out;
	}
	/* TLS 1.3: the client's handshake ends before the server has judged the certificate. */
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		res = k != K_OK;
		goto out;
	}
	while ((n = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got)) > 0) {
		got += n;
		if (got >= (int)sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	if (k == K_OK) {
		res = !strncmp(buf, "HTTP/1.1 200", 12);
		if (!res)
			note(k, i, got ? "not a 200" : "no response");
	} else {
		res = got == 0;
		if (!res)
			note(k, i, "a failing client got a response");
	}
out:
	ERR_clear_error();
	SSL_free(ssl);
	return res;
}

static void *worker(void *arg)
{
	long i;

	(void)arg;
	while ((i = atomic_fetch_add(&next_i, 1)) < count) {
		enum kind k = mix[i % n_mix];
		int fd = tcp_connect();
		bool res = false;

		if (fd < 0) {
			note(k, i, strerror(errno));
		} else {
			res = k == K_GARBAGE || k == K_CUT ? raw_kind(fd, k) : tls_kind(fd, k, i);
			close(fd);
		}
		atomic_fetch_add(&total[k], 1);
		if (res)
			atomic_fetch_add(&good[k], 1);
	}
	return NULL;
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		die("SSL_CTX_new");
	/* The edge's certificate is checked: a refusal must come from the edge. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		die("cannot load --ca");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1))
		die("cannot load a client certificate or key");
	return ctx;
}

static void parse_mix(const char *s)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	n_mix = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < K_COUNT && strcmp(tok, kind_names[k]); k++)
			;
		if (k == K_COUNT || n_mix == (int)(sizeof(mix) / sizeof(mix[0])))
			die("--mix wants up to 32 of nocert, wrongca, garbage, cut, ok");
		mix[n_mix++] = (enum kind)k;
	}
}

int main(int argc, char **argv)
{
	const char *connect_to = NULL, *ca = NULL, *gc = NULL, *gk = NULL, *bc = NULL, *bk = NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	char host[256], line[512] = "";
	pthread_t th[64];
	int parallel = 4, off = 0;
	long ok_all = 0;
	struct timespec t0, t1;
	const char *colon;

	/* A server that refuses at once resets the connection: a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	parse_mix("nocert,wrongca,garbage,cut");
	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help")) {
			puts("usage: edge-flood --connect HOST:PORT --sni NAME --ca F --count N"
			     " [--parallel P] [--mix KIND,...] [--good-cert F --good-key F]"
			     " [--bad-cert F --bad-key F] [--timeout SECS] [--source ADDR]");
			return 0;
		}
		if (!v)
			die("every option takes a value (see --help)");
		if (!strcmp(a, "--connect"))
			connect_to = v;
		else if (!strcmp(a, "--sni"))
			sni = v;
		else if (!strcmp(a, "--ca"))
			ca = v;
		else if (!strcmp(a, "--count"))
			count = atol(v);
		else if (!strcmp(a, "--parallel"))
			parallel = atoi(v);
		else if (!strcmp(a, "--mix"))
			parse_mix(v);
		else if (!strcmp(a, "--good-cert"))
			gc = v;
		else if (!strcmp(a, "--good-key"))
			gk = v;
		else if (!strcmp(a, "--bad-cert"))
			bc = v;
		else if (!strcmp(a, "--bad-key"))
			bk = v;
		else if (!strcmp(a, "--timeout"))
			timeout_s = atoi(v);
		else if (!strcmp(a, "--source") && inet_pton(AF_INET, v, &source.sin_addr) == 1)
			source.sin_family = AF_INET;
		else
			die("unknown option (see --help)");
	}
	if (!connect_to || !sni || count <= 0 || parallel < 1 || parallel > 64 || timeout_s < 1)
		die("need --connect, --sni, --count > 0, --parallel 1..64 (see --help)");
	colon = strrchr(connect_to, ':');
	if (!colon || (size_t)(colon - connect_to) >= sizeof(host))
		die("--connect wants HOST:PORT");
	memcpy(host, connect_to, (size_t)(colon - connect_to));
	host[colon - connect_to] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &target))
		die("cannot resolve --connect");
	ctx_plain = client_ctx(ca, NULL, NULL);
	for (int m = 0; m < n_mix; m++) {
		if (mix[m] == K_WRONGCA && !ctx_bad) {
			if (!bc || !bk)
				die("--mix wrongca needs --bad-cert and --bad-key");
			ctx_bad = client_ctx(ca, bc, bk);
		} else if (mix[m] == K_OK && !ctx_good) {
			if (!gc || !gk)
				die("--mix ok needs --good-cert and --good-key");
			ctx_good = client_ctx(ca, gc, gk);
		}
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int t = 0; t < parallel; t++)
		if (pthread_create(&th[t], NULL, worker, NULL))
			die("pthread_create");
	for (int t = 0; t < parallel; t++)
		pthread_join(th[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (int k = 0; k < K_COUNT; k++) {
		long n = atomic_load(&total[k]), g = atomic_load(&good[k]);

		ok_all += g;
		if (n)
			off += snprintf(line + off, sizeof(line) - (size_t)off, " %s=%ld/%ld",
					kind_names[k], g, n);
	}
	printf("count=%ld expected=%ld unexpected=%ld%s elapsed_ms=%lld\n", count, ok_all,
	       count - ok_all, line,
	       (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	SSL_CTX_free(ctx_plain);
	SSL_CTX_free(ctx_bad);
	SSL_CTX_free(ctx_good);
	freeaddrinfo(target);
	return ok_all == count ? 0 : 1;
}
