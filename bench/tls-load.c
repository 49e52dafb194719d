/* tls-load: the two TLS clients the benchmark needs that wrk and openssl s_time are not.
 *
 *   tls-load hold  --connect IP:PORT --sni NAME --cert F --key F --count N [--max-seconds S]
 *                  [--concurrency C --sources N [--source-port P] [--timeout-ms T]]
 *   tls-load churn --connect IP:PORT --sni NAME [--cert F --key F] --seconds S [--concurrency C]
 *                  [--timeout-ms T]
 *   tls-load serve --listen IP:PORT --port-file F --cert F --key F --ca F
 *
 * hold   opens N connections one after another; on each: TCP connect, a full TLS handshake with
 *        the client certificate, one keep-alive `GET /` whose 200 response is read (so the server
 *        has verified the certificate and set up whatever it keeps per connection). Then prints
 *        `held=N failed=M` and keeps every connection open and idle until SIGTERM/SIGINT or
 *        S seconds (default 60). Exit 0 when all N were held, 1 otherwise.
 *        With --concurrency or --sources (the scale cell): C (default 32) connections are being
 *        set up at a time (non-blocking), each from a source address of its own among N:
 *        connection i binds 127.1.0.1 + (i % N) (last octet 1-254) before it connects, so that
 *        many connections to one server port do not run out of local ports; with --source-port
 *        its local port is P + i / N (outside the kernel's ephemeral range, the caller's
 *        choice), else the kernel picks one at connect (IP_BIND_ADDRESS_NO_PORT). A connection
 *        not held within T ms (default 10000) fails. Prints `held=N failed=M seconds=S` (S: the
 *        time to set up all of them) and, on stderr, why the failed ones failed; at the end
 *        (signal or S seconds) `open=K` on stdout: the held connections the server had not
 *        closed (nothing to read, no EOF or reset).
 * churn  for S seconds keeps C (default 32) connections in flight; each: connect, full handshake
 *        (no session resumption), `GET /` with `Connection: close`, read to EOF. Counts `ok` (a
 *        200 status line arrived) and `rejected` (anything else: a TLS alert, a reset, EOF, a
 *        non-200 status, T ms (default 10000) without an answer: a dropped ClientHello).
 *        Prints `ok=N rejected=M timeouts=K seconds=S` (the timeouts are among the rejected).
 * serve  the reference server: OpenSSL's own minimum for the same work, one connection at a time
 *        (blocking): accept, handshake requiring a client certificate that verifies against --ca
 *        (no tickets, no session cache), read the request head, answer a fixed 200, close. Port 0
 *        picks one, written to --port-file. Runs until SIGTERM/SIGINT.
 *
 * Only loopback addresses are accepted: this is a load generator. Bounded in time and count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls-load.h"

volatile sig_atomic_t load_stop;

static void load_on_signal(int sig)
{
	(void)sig;
	load_stop = 1;
}

double load_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void load_ssl_error(const char *what)
{
	char buf[256];
	unsigned long e;

	fprintf(stderr, "tls-load: %s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, ": %s", buf);
	}
	fputc('\n', stderr);
}

SSL_CTX *load_ctx(const struct load_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		load_ssl_error("SSL_CTX_new");
		return NULL;
	}
	/* Like wrk: the server's certificate is not checked (the server checks ours). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (o->cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, o->key ? o->key : o->cert, SSL_FILETYPE_PEM) !=
			    1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			load_ssl_error("cannot load the client certificate or key");
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

int load_socket(const struct load_opts *o, bool nonblock)
{
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!nonblock) {
		struct timeval tv = { .tv_sec = LOAD_IO_TIMEOUT_S };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0 &&
	    errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* One blocking connection with a verified handshake and one answered request, or NULL. */
static SSL *load_hold_one(SSL_CTX *ctx, const struct load_opts *o, int *fdp)
{
	char req[512], buf[4096];
	size_t have = 0, need = 0;
	char *end;
	SSL *ssl = NULL;
	int fd, n;

	fd = load_socket(o, false);
	if (fd < 0)
		return NULL;
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, o->sni) != 1 ||
	    SSL_connect(ssl) != 1)
		goto fail;
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", o->sni);
	if (SSL_write(ssl, req, n) != n)
		goto fail;
	for (;;) {
		n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (n <= 0)
			goto fail;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end) {
			if (have == sizeof(buf) - 1)
				goto fail;
			continue;
		}
		if (!need) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");

			if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !cl)
				goto fail;
			need = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
			if (need >= sizeof(buf))
				goto fail;
		}
		if (have >= need)
			break;
	}
	*fdp = fd;
	return ssl;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static int load_hold(const struct load_opts *o)
{
	struct load_conn *conns;
	long held = 0, failed = 0, i;
	SSL_CTX *ctx;
	int ret = 1;

	conns = calloc((size_t)o->count, sizeof(*conns));
	ctx = load_ctx(o);
	if (!conns || !ctx)
		goto out;
	for (i = 0; i < o->count && !load_stop; i++) {
		conns[held].ssl = load_hold_one(ctx, o, &conns[held].fd);
		if (conns[held].ssl)
			held++;
		else
			failed++;
	}
	printf("held=%ld failed=%ld\n", held, failed);
	fflush(stdout);
	alarm((unsigned int)o->max_seconds);
	while (!load_stop)
		poll(NULL, 0, 100);
	ret = held == o->count ? 0 : 1;
	for (i = 0; i < held; i++) {
		SSL_free(conns[i].ssl);
		close(conns[i].fd);
	}
out:
	SSL_CTX_free(ctx);
	free(conns);
	return ret;
}

static void load_conn_close(struct load_conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	ERR_clear_error();
}

static int load_conn_open(int ep, SSL_CTX *ctx, const struct load_opts *o, struct load_conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

	memset(c, 0, sizeof(*c));
	c->fd = load_socket(o, true);
	if (c->fd < 0)
		return c->fd;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, o->sni) != 1) {
		load_conn_close(c);
		return -ENOMEM;
	}
	c->state = LS_CONNECTING;
	c->started = load_now();
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		int err = -errno;

		load_conn_close(c);
		return err;
	}
	return 0;
}

enum load_advance load_advance(int fd, SSL *ssl, enum load_state *state, const char *req,
			       size_t *req_off, uint32_t *events, int *soerr)
{
	socklen_t len;
	int n = 0, err;

	for (;;) {
		switch (*state) {
		case LS_CONNECTING:
			*soerr = 0;
			len = sizeof(*soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, soerr, &len) < 0)
				*soerr = errno;
			if (*soerr)
				return LOAD_ON_CONNECT_FAIL;
			*state = LS_HANDSHAKE;
			continue;
		case LS_HANDSHAKE:
			n = SSL_connect(ssl);
			if (n == 1) {
				*state = LS_WRITE;
				continue;
			}
			break;
		case LS_WRITE:
			n = SSL_write(ssl, req + *req_off, (int)(strlen(req) - *req_off));
			if (n > 0) {
				*req_off += (size_t)n;
				if (*req_off == strlen(req))
					*state = LS_READ;
				continue;
			}
			break; /* a refusal after the handshake (TLS 1.3: the alert comes here) */
		case LS_READ:
			return LOAD_ON_READ;
		}
		err = SSL_get_error(ssl, n);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return LOAD_ON_TLS_FAIL;
		*events = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return LOAD_ON_WAIT;
	}
}

/* Advances one connection. Returns 0 while it goes on (interest set), 1 ok, 2 rejected. */
static int load_conn_step(int ep, const struct load_opts *o, struct load_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	char req[512], buf[16384];
	uint32_t events = 0;
	int n, err, soerr;

	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		 o->sni);
	switch (load_advance(c->fd, c->ssl, &c->state, req, &c->req_off, &events, &soerr)) {
	case LOAD_ON_WAIT:
		ev.events = events;
		goto wait;
	case LOAD_ON_CONNECT_FAIL:
	case LOAD_ON_TLS_FAIL:
		return 2;
	case LOAD_ON_READ:
		break;
	}
	for (;;) {
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n > 0) {
			size_t take = sizeof(c->head) - c->head_len;

			if (take > (size_t)n)
				take = (size_t)n;
			memcpy(c->head + c->head_len, buf, take);
			c->head_len += take;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			ev.events = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
			break;
		}
		/* EOF, close_notify, alert or reset: the exchange is over. */
		return c->head_len >= 12 && (memcmp(c->head, "HTTP/1.1 200", 12) == 0 ||
					     memcmp(c->head, "HTTP/1.0 200", 12) == 0)
			       ? 1
			       : 2;
	}
wait:
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return 2;
	return 0;
}

static int load_churn(const struct load_opts *o)
{
	struct epoll_event evs[256];
	struct load_conn *conns;
	long ok = 0, rejected = 0, timeouts = 0, i;
	double start, end, now, last_scan, limit = (double)o->timeout_ms / 1000.0;
	SSL_CTX *ctx;
	int ep, n, r, ret = 1;

	conns = calloc((size_t)o->concurrency, sizeof(*conns));
	ctx = load_ctx(o);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !ctx || ep < 0)
		goto out;
	for (i = 0; i < o->concurrency; i++)
		conns[i].fd = -1;
	start = load_now();
	end = start + (double)o->seconds;
	for (i = 0; i < o->concurrency; i++) {
		r = load_conn_open(ep, ctx, o, &conns[i]);
		if (r < 0) {
			fprintf(stderr, "tls-load: connect: %s\n", strerror(-r));
			goto out;
		}
	}
	last_scan = start;
	while (!load_stop && (now = load_now()) < end) {
		n = epoll_wait(ep, evs, 256, limit < 0.5 ? 10 : 50);
		if (n < 0 && errno != EINTR) {
			perror("tls-load: epoll_wait");
			goto out;
		}
		for (int k = 0; k < n; k++) {
			struct load_conn *c = evs[k].data.ptr;

			r = load_conn_step(ep, o, c);
			if (r == 0)
				continue;
			if (r == 1)
				ok++;
			else
				rejected++;
			load_conn_close(c);
			if (load_now() < end && load_conn_open(ep, ctx, o, c) < 0)
				rejected++;
		}
		now = load_now();
		if (now - last_scan >= limit / 10) {
			last_scan = now;
			for (i = 0; i < o->concurrency; i++) {
				if (conns[i].fd >= 0 && now - conns[i].started > limit) {
					rejected++;
					timeouts++;
					load_conn_close(&conns[i]);
					if (now < end && load_conn_open(ep, ctx, o, &conns[i]) < 0)
						rejected++;
				}
			}
		}
	}
	printf("ok=%ld rejected=%ld timeouts=%ld seconds=%.3f\n", ok, rejected, timeouts,
	       load_now() - start);
	ret = 0;
out:
	if (conns)
		for (i = 0; i < o->concurrency; i++)
			if (conns[i].fd >= 0)
				load_conn_close(&conns[i]);
	if (ep >= 0)
		close(ep);
	SSL_CTX_free(ctx);
	free(conns);
	return ret;
}

static int load_serve(const struct load_opts *o)
{
	static const char resp[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
	struct sockaddr_in addr = o->addr;
	socklen_t alen = sizeof(addr);
	SSL_CTX *ctx = NULL;
	int one = 1, lfd, ret = 1;
	char buf[4096];
	FILE *pf;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 512) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		perror("tls-load: listen");
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		load_ssl_error("cannot set up the server");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 3);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	pf = fopen(o->port_file, "w");
	if (!pf || fprintf(pf, "%u\n", ntohs(addr.sin_port)) < 0 || fclose(pf) != 0) {
		perror("tls-load: --port-file");
		goto out;
	}
	while (!load_stop) {
		struct timeval tv = { .tv_sec = LOAD_IO_TIMEOUT_S };
		size_t have = 0;
		SSL *ssl;
		int fd, n;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("tls-load: accept");
			goto out;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ssl = SSL_new(ctx);
		if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
			while (have < sizeof(buf) - 1) {
				n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
				if (n <= 0)
					break;
				have += (size_t)n;
				buf[have] = '\0';
				if (strstr(buf, "\r\n\r\n")) {
					SSL_write(ssl, resp, sizeof(resp) - 1);
					SSL_shutdown(ssl);
					break;
				}
			}
		}
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
	}
	ret = 0;
out:
	SSL_CTX_free(ctx);
	if (lfd >= 0)
		close(lfd);
	return ret;
}

static void load_usage(FILE *f)
{
	fputs("usage: tls-load hold  --connect IP:PORT --sni NAME --cert F --key F --count N"
	      " [--max-seconds S]\n"
	      "                      [--concurrency C --sources N [--source-port P]"
	      " [--timeout-ms T]]\n"
	      "       tls-load churn --connect IP:PORT --sni NAME [--cert F --key F] --seconds S"
	      " [--concurrency C] [--timeout-ms T]\n"
	      "       tls-load serve --listen IP:PORT --port-file F --cert F --key F --ca F\n",
	      f);
}

static long load_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "tls-load: %s must be an integer from %ld to %ld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'C' },
		{ "listen", required_argument, NULL, 'C' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'a' },
		{ "sni", required_argument, NULL, 's' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "concurrency", required_argument, NULL, 'j' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "sources", required_argument, NULL, 'S' },
		{ "source-port", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct load_opts o = { .concurrency = 32, .max_seconds = 60, .timeout_ms = 10000 };
	const char *connect_to = NULL, *mode;
	struct sigaction sa = { .sa_flags = 0 };
	struct rlimit rl;
	char host[64], *colon;
	int opt;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		load_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	mode = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'C':
			connect_to = optarg;
			break;
		case 's':
			o.sni = optarg;
			break;
		case 'c':
			o.cert = optarg;
			break;
		case 'k':
			o.key = optarg;
			break;
		case 'a':
			o.ca = optarg;
			break;
		case 'p':
			o.port_file = optarg;
			break;
		case 'n':
			o.count = load_num(optarg, 1, LOAD_COUNT_MAX, "--count");
			break;
		case 't':
			o.seconds = load_num(optarg, 1, LOAD_SECONDS_MAX, "--seconds");
			break;
		case 'm':
			o.max_seconds = load_num(optarg, 1, LOAD_SECONDS_MAX, "--max-seconds");
			break;
		case 'j':
			o.concurrency = load_num(optarg, 1, LOAD_CONC_MAX, "--concurrency");
			o.spread = true;
			break;
		case 'S':
			o.sources = load_num(optarg, 1, LOAD_SOURCES_MAX, "--sources");
			o.spread = true;
			break;
		case 'P':
			o.source_port = load_num(optarg, 1024, 65535, "--source-port");
			break;
		case 'T':
			o.timeout_ms = load_num(optarg, 10, 60000, "--timeout-ms");
			break;
		case 'h':
			load_usage(stdout);
			return 0;
		default:
			load_usage(stderr);
			return 2;
		}
	}
	if (strcmp(mode, "serve") == 0)
		o.sni = "-";
	if (!connect_to || !o.sni || strlen(connect_to) >= sizeof(host)) {
		load_usage(stderr);
		return 2;
	}
	strcpy(host, connect_to);
	colon = strrchr(host, ':');
	if (!colon) {
		fprintf(stderr, "tls-load: --connect and --listen want IP:PORT\n");
		return 2;
	}
	*colon = '\0';
	o.addr.sin_family = AF_INET;
	o.addr.sin_port = htons((unsigned short)load_num(colon + 1, 0, 65535, "the port"));
	if (inet_pton(AF_INET, host, &o.addr.sin_addr) != 1 ||
	    (ntohl(o.addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "tls-load: the address must be in 127.0.0.0/8: %s\n", host);
		return 2;
	}
	/* No SA_RESTART: a signal must interrupt the blocking accept() of serve. */
	sa.sa_handler = load_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (strcmp(mode, "hold") == 0) {
		if (!o.cert || !o.count) {
			load_usage(stderr);
			return 2;
		}
		if (!o.spread)
			return load_hold(&o);
		if (!o.sources)
			o.sources = 1;
		if (o.source_port && o.source_port + (o.count - 1) / o.sources > 65535) {
			fprintf(stderr,
				"tls-load: --source-port %ld + %ld connections per source"
				" passes port 65535\n",
				o.source_port, (o.count + o.sources - 1) / o.sources);
			return 2;
		}
		return load_hold_spread(&o);
	}
	if (strcmp(mode, "churn") == 0) {
		if (!o.seconds) {
			load_usage(stderr);
			return 2;
		}
		return load_churn(&o);
	}
	if (strcmp(mode, "serve") == 0) {
		if (!o.cert || !o.key || !o.ca || !o.port_file) {
			load_usage(stderr);
			return 2;
		}
		return load_serve(&o);
	}
	load_usage(stderr);
	return 2;
}
