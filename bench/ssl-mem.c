/*
 * bench/ssl-mem.c: OpenSSL's own memory per verified server session, the floor under every
 * OpenSSL server's memory per idle connection on the userspace path (the mem cell's report).
 *
 *   ssl-mem --cert F --key F --ca F --client-cert F --client-key F [--count N]
 *
 * N full TLS 1.3 handshakes (the server requires and verifies the client certificate; no
 * tickets, no session cache, SSL_MODE_RELEASE_BUFFERS, as the servers of the bench are set up),
 * in memory (a BIO pair per session, replaced by a null BIO once done, so that its buffers do
 * not count), one request and one answer each, the server's SSL objects kept and the clients'
 * freed. Every allocation OpenSSL makes while they are set up is tracked
 * (CRYPTO_set_mem_functions), and the ones still live at the end are the sessions' cost:
 *
 *   sslmem bytes=B allocations=A
 *   site BYTES COUNT FILE:LINE     (per session, the five largest sites)
 *
 * malloc's own overhead per allocation (8-16 bytes) is not in B.
 */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (1u << 21) /* open addressing: live allocations while tracking */
#define SITES 4096

struct slot {
	void *p;
	size_t n;
	const char *file;
	int line;
};

static struct slot *tab;
static int tracking;
static size_t live_bytes, live_count;

static size_t h(const void *p)
{
	return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (SLOTS - 1);
}

static void add(void *p, size_t n, const char *file, int line)
{
	size_t i = h(p);

	if (!tracking || !p || live_count >= SLOTS / 2)
		return;
	while (tab[i].p)
		i = (i + 1) & (SLOTS - 1);
	tab[i] = (struct slot){ p, n, file, line };
	live_bytes += n;
	live_count++;
}

/* removes p (backward-shift deletion keeps the probe sequences whole) */
static void del(void *p)
{
	size_t i = h(p), j;

	if (!p)
		return;
	while (tab[i].p && tab[i].p != p)
		i = (i + 1) & (SLOTS - 1);
	if (!tab[i].p)
		return; /* allocated before tracking began */
	live_bytes -= tab[i].n;
	live_count--;
	tab[i].p = NULL;
	for (j = (i + 1) & (SLOTS - 1); tab[j].p; j = (j + 1) & (SLOTS - 1)) {
		size_t k = h(tab[j].p);

		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			tab[i] = tab[j];
			tab[j].p = NULL;
			i = j;
		}
	}
}

static void *t_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	add(p, n, file, line);
	return p;
}

static void *t_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	del(p);
	q = realloc(p, n);
	add(q, n, file, line);
	return q;
}

static void t_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	del(p);
	free(p);
}

static void die(const char *what)
{
	fprintf(stderr, "ssl-mem: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* both ends of one in-memory handshake, to completion */
static void handshake(SSL *s, SSL *c)
{
	int sd = 0, cd = 0;

	for (int i = 0; i < 64 && !(sd && cd); i++) {
		if (!cd && SSL_do_handshake(c) == 1)
			cd = 1;
		if (!sd && SSL_do_handshake(s) == 1)
			sd = 1;
	}
	if (!(sd && cd))
		die("the handshake did not complete");
}

static SSL *session(SSL_CTX *sctx, SSL_CTX *cctx)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *a, *b, *nb;
	char buf[256];

	if (!s || !c || !BIO_new_bio_pair(&a, 0, &b, 0))
		die("out of memory");
	SSL_set_bio(s, a, a);
	SSL_set_bio(c, b, b);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	handshake(s, c);
	if (SSL_get_verify_result(s) != X509_V_OK || !SSL_get0_peer_certificate(s))
		die("the client certificate was not verified");
	if (SSL_write(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27) != 27 ||
	    SSL_read(s, buf, sizeof(buf)) <= 0 ||
	    SSL_write(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38) != 38 ||
	    SSL_read(c, buf, sizeof(buf)) <= 0)
		die("the request did not pass");
	SSL_free(c);
	nb = BIO_new(BIO_s_null());
	if (!nb)
		die("out of memory");
	SSL_set_bio(s, nb, nb); /* frees the pair's buffers */
	return s;
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *ca = NULL, *ccert = NULL, *ckey = NULL;
	static const struct option opts[] = {
		{ "cert", 1, NULL, 'c' },       { "key", 1, NULL, 'k' },
		{ "ca", 1, NULL, 'a' },         { "client-cert", 1, NULL, 'C' },
		{ "client-key", 1, NULL, 'K' }, { "count", 1, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct {
		const char *file;
		int line;
		size_t n, count;
	} * site;
	size_t nsites = 0;
	long count = 500;
	SSL_CTX *sctx, *cctx;
	SSL **keep;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'C':
			ccert = optarg;
			break;
		case 'K':
			ckey = optarg;
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (!cert || !key || !ca || !ccert || !ckey || count < 1 || count > 100000) {
		fprintf(stderr, "usage: ssl-mem --cert F --key F --ca F --client-cert F"
				" --client-key F [--count 1-100000]\n");
		return 2;
	}
	tab = calloc(SLOTS, sizeof(*tab));
	keep = calloc((size_t)count, sizeof(*keep));
	site = calloc(SITES, sizeof(*site));
	if (!tab || !keep || !site || !CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free))
		die("cannot set up the tracking");
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx || SSL_CTX_use_certificate_chain_file(sctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(sctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_file(cctx, ccert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(cctx, ckey, SSL_FILETYPE_PEM) != 1)
		die("cannot load the certificates");
	SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(sctx, 0);
	for (int i = 0; i < 3; i++) /* the contexts' lazy set-up is not a session's */
		SSL_free(session(sctx, cctx));
	tracking = 1;
	for (long i = 0; i < count; i++)
		keep[i] = session(sctx, cctx);
	tracking = 0;
	for (size_t i = 0; i < SLOTS; i++) {
		size_t j;

		if (!tab[i].p)
			continue;
		for (j = 0; j < nsites; j++)
			if (site[j].line == tab[i].line && !strcmp(site[j].file, tab[i].file))
				break;
		if (j == nsites) {
			if (nsites == SITES)
				continue;
			site[nsites].file = tab[i].file;
			site[nsites].line = tab[i].line;
			nsites++;
		}
		site[j].n += tab[i].n;
		site[j].count++;
	}
	printf("sslmem bytes=%.0f allocations=%.1f\n", (double)live_bytes / (double)count,
	       (double)live_count / (double)count);
	for (int k = 0; k < 5 && k < (int)nsites; k++) {
		size_t best = (size_t)k;

		for (size_t j = (size_t)k + 1; j < nsites; j++)
			if (site[j].n > site[best].n)
				best = j;
		if (best != (size_t)k) {
			__typeof__(*site) t = site[k];

			site[k] = site[best];
			site[best] = t;
		}
		printf("site %.0f %.1f %s:%d\n", (double)site[k].n / (double)count,
		       (double)site[k].count / (double)count, site[k].file, site[k].line);
	}
	return 0;
}
