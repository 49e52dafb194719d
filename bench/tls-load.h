/* tls-load (bench/tls-load.c): what its files share. tls-load-spread.c: hold with
 * --concurrency/--sources (the scale cell). */
#ifndef TLS_LOAD_H
#define TLS_LOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#define LOAD_COUNT_MAX 100000
#define LOAD_CONC_MAX 1024
#define LOAD_SECONDS_MAX 3600
#define LOAD_SOURCES_MAX (254L * 256 * 254) /* 127.1.0.1 to 127.254.255.254 */
#define LOAD_IO_TIMEOUT_S 5

enum load_state { LS_CONNECTING, LS_HANDSHAKE, LS_WRITE, LS_READ };

struct load_conn {
	int fd;
	SSL *ssl;
	enum load_state state;
	double started;
	size_t req_off;
	char head[16]; /* first bytes of the response */
	size_t head_len;
};

struct load_opts {
	struct sockaddr_in addr;
	const char *sni, *cert, *key, *ca, *port_file;
	long count, seconds, concurrency, max_seconds, timeout_ms, sources, source_port;
	bool spread; /* hold: --concurrency or --sources given (load_hold_spread) */
};

extern volatile sig_atomic_t load_stop;
double load_now(void);
void load_ssl_error(const char *what);
SSL_CTX *load_ctx(const struct load_opts *o);
/* A TCP socket connecting to o->addr (non-blocking: the connect may be in progress). */
int load_socket(const struct load_opts *o, bool nonblock);

/* The steps every non-blocking client shares: the connect's result, the handshake, the request
 * (req, from *req_off on). LOAD_ON_READ: the request is out, the response is the caller's to
 * read (*state is LS_READ); LOAD_ON_WAIT: *events is what to wait for; LOAD_ON_CONNECT_FAIL
 * (*soerr: why) and LOAD_ON_TLS_FAIL: it ended. */
enum load_advance { LOAD_ON_READ, LOAD_ON_WAIT, LOAD_ON_CONNECT_FAIL, LOAD_ON_TLS_FAIL };
enum load_advance load_advance(int fd, SSL *ssl, enum load_state *state, const char *req,
			       size_t *req_off, uint32_t *events, int *soerr);

int load_hold_spread(const struct load_opts *o);

#endif
