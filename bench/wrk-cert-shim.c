/* wrk-cert-shim: an LD_PRELOAD library that gives every SSL_CTX a client certificate, so that
 * wrk (which has no option for one) and other OpenSSL clients can do mutual TLS.
 *
 *   EDGE_SHIM_CERT=client.crt EDGE_SHIM_KEY=client.key LD_PRELOAD=.../wrk-cert-shim.so wrk ...
 *
 * Environment (all optional; with none set the library changes nothing):
 *   EDGE_SHIM_CERT       certificate chain (PEM, leaf first) loaded into every new SSL_CTX
 *   EDGE_SHIM_KEY        its private key (PEM); default: EDGE_SHIM_CERT
 *   EDGE_SHIM_SNI        server name sent in every ClientHello, replacing the client's own
 *                        (wrk sends the URL's host, openssl s_time sends none)
 *   EDGE_SHIM_NO_RESUME  "1": every handshake is a full one (the session kept by SSL_clear,
 *                        which wrk calls before it reconnects, is dropped before SSL_connect)
 *
 * A certificate or key that does not load is fatal (exit 111, one line on stderr): a benchmark
 * that silently ran without its client certificate would measure the wrong thing.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define SHIM_EXIT 111

typedef SSL_CTX *(*shim_ctx_new_fn)(const SSL_METHOD *);
typedef SSL_CTX *(*shim_ctx_new_ex_fn)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
typedef int (*shim_connect_fn)(SSL *);

/* SSL_CTX_new may call SSL_CTX_new_ex through the PLT, that is, through us: configure once. */
static __thread int shim_depth;

static void *shim_next(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	if (!fn) {
		fprintf(stderr, "wrk-cert-shim: %s not found in the libraries after this one\n",
			name);
		_exit(SHIM_EXIT);
	}
	return fn;
}

static void shim_fail(const char *what, const char *file)
{
	char buf[256];
	unsigned long e;

	fprintf(stderr, "wrk-cert-shim: cannot %s %s", what, file);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, ": %s", buf);
	}
	fputc('\n', stderr);
	_exit(SHIM_EXIT);
}

static void shim_configure(SSL_CTX *ctx)
{
	const char *cert = getenv("EDGE_SHIM_CERT");
	const char *key = getenv("EDGE_SHIM_KEY");

	if (!cert || !*cert)
		return;
	if (!key || !*key)
		key = cert;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		shim_fail("load the certificate", cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		shim_fail("load the private key", key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		shim_fail("match the private key to the certificate", cert);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
	static shim_ctx_new_fn next;
	SSL_CTX *ctx;

	if (!next)
		next = (shim_ctx_new_fn)shim_next("SSL_CTX_new");
	shim_depth++;
	ctx = next(method);
	shim_depth--;
	if (ctx && shim_depth == 0)
		shim_configure(ctx);
	return ctx;
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
	static shim_ctx_new_ex_fn next;
	SSL_CTX *ctx;

	if (!next)
		next = (shim_ctx_new_ex_fn)shim_next("SSL_CTX_new_ex");
	shim_depth++;
	ctx = next(libctx, propq, method);
	shim_depth--;
	if (ctx && shim_depth == 0)
		shim_configure(ctx);
	return ctx;
}

int SSL_connect(SSL *ssl)
{
	static shim_connect_fn next;
	const char *sni, *no_resume;

	if (!next)
		next = (shim_connect_fn)shim_next("SSL_connect");
	if (SSL_in_before(ssl)) {
		sni = getenv("EDGE_SHIM_SNI");
		no_resume = getenv("EDGE_SHIM_NO_RESUME");
		if (sni && *sni && SSL_set_tlsext_host_name(ssl, sni) != 1)
			shim_fail("set the server name", sni);
		if (no_resume && strcmp(no_resume, "1") == 0 && SSL_get_session(ssl))
			SSL_set_session(ssl, NULL);
	}
	return next(ssl);
}
