/* tls-load hold with --concurrency/--sources (the scale cell): see tls-load.c's top. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <openssl/err.h>

#include "tls-load.h"

/* hold with --concurrency/--sources: see the top. One slot per connection being set up. */
struct hold_slot {
	int fd;
	SSL *ssl;
	enum load_state state;
	long idx; /* which connection: its source address and port */
	double started;
	size_t req_off, have, need;
	char buf[4096];
};

enum hold_fail { HF_CONNECT, HF_TLS, HF_HTTP, HF_TIMEOUT, HF_N };
static const char *const hold_fail_name[HF_N] = { "connect", "tls", "http", "timeout" };

struct hold_run {
	const struct load_opts *o;
	SSL_CTX *ctx;
	int ep;
	long next, held, failed, fails[HF_N];
	int last_errno;     /* of the last connect failure */
	char last_http[40]; /* the first bytes of the last answer that was not a 200 */
	int *fds;
	SSL **ssls;
};

static void hold_slot_free(struct hold_slot *sl)
{
	if (sl->ssl)
		SSL_free(sl->ssl);
	if (sl->fd >= 0)
		close(sl->fd);
	sl->ssl = NULL;
	sl->fd = -1;
	ERR_clear_error();
}

static void hold_fail_slot(struct hold_run *h, struct hold_slot *sl, enum hold_fail why, int err)
{
	h->failed++;
	h->fails[why]++;
	if (why == HF_CONNECT && err)
		h->last_errno = err;
	if (why == HF_HTTP) {
		size_t n = sl->have < sizeof(h->last_http) - 1 ? sl->have
							       : sizeof(h->last_http) - 1;

		memcpy(h->last_http, sl->buf, n);
		h->last_http[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (h->last_http[i] == '\r' || h->last_http[i] == '\n')
				h->last_http[i] = ' ';
		if (!n)
			snprintf(h->last_http, sizeof(h->last_http), "(closed without an answer)");
	}
	hold_slot_free(sl);
}

/* Starts connection h->next in sl; false when it failed at once (counted). */
static bool hold_slot_open(struct hold_run *h, struct hold_slot *sl)
{
	const struct load_opts *o = h->o;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = sl };
	struct sockaddr_in src = { .sin_family = AF_INET };
	long k = h->next % o->sources;
	int one = 1, err;

	memset(sl, 0, offsetof(struct hold_slot, buf));
	sl->fd = -1;
	sl->idx = h->next++;
	sl->started = load_now();
	/* 127.1.0.1 and up, the last octet 1-254. */
	src.sin_addr.s_addr = htonl((127u << 24) + (1u << 16) + (uint32_t)(k / 254) * 256u +
				    (uint32_t)(k % 254) + 1u);
	if (o->source_port)
		src.sin_port = htons((uint16_t)(o->source_port + sl->idx / o->sources));
	sl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sl->fd < 0) {
		hold_fail_slot(h, sl, HF_CONNECT, errno);
		return false;
	}
	setsockopt(sl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->source_port) /* the same address and port after a TIME_WAIT of an earlier run */
		setsockopt(sl->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	else
		setsockopt(sl->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(sl->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(sl->fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0 &&
	     errno != EINPROGRESS)) {
		hold_fail_slot(h, sl, HF_CONNECT, errno);
		return false;
	}
	sl->ssl = SSL_new(h->ctx);
	if (!sl->ssl || SSL_set_fd(sl->ssl, sl->fd) != 1 ||
	    SSL_set_tlsext_host_name(sl->ssl, o->sni) != 1) {
		hold_fail_slot(h, sl, HF_TLS, 0);
		return false;
	}
	sl->state = LS_CONNECTING;
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, sl->fd, &ev) < 0) {
		err = errno;
		hold_fail_slot(h, sl, HF_CONNECT, err);
		return false;
	}
	return true;
}

/* Advances one slot: 0 while it goes on, 1 held (the response to its GET / read), 2 failed
 * (counted, slot freed). */
static int hold_slot_step(struct hold_run *h, struct hold_slot *sl)
{
	struct epoll_event ev = { .data.ptr = sl };
	char req[512];
	uint32_t events = 0;
	int n, err, soerr;

	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", h->o->sni);
	switch (load_advance(sl->fd, sl->ssl, &sl->state, req, &sl->req_off, &events, &soerr)) {
	case LOAD_ON_WAIT:
		ev.events = events;
		goto wait;
	case LOAD_ON_CONNECT_FAIL:
		hold_fail_slot(h, sl, HF_CONNECT, soerr);
		return 2;
	case LOAD_ON_TLS_FAIL:
		hold_fail_slot(h, sl, HF_TLS, 0);
		return 2;
	case LOAD_ON_READ:
		break;
	}
	for (;;) {
		char *end;

		n = SSL_read(sl->ssl, sl->buf + sl->have, (int)(sizeof(sl->buf) - 1 - sl->have));
		if (n <= 0) {
			err = SSL_get_error(sl->ssl, n);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				ev.events = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
				break;
			}
			/* TLS 1.3: a refused client certificate's alert arrives here */
			hold_fail_slot(h, sl, !sl->have && err == SSL_ERROR_SSL ? HF_TLS : HF_HTTP,
				       0);
			return 2;
		}
		sl->have += (size_t)n;
		sl->buf[sl->have] = '\0';
		end = strstr(sl->buf, "\r\n\r\n");
		if (!end) {
			if (sl->have == sizeof(sl->buf) - 1) {
				hold_fail_slot(h, sl, HF_HTTP, 0);
				return 2;
			}
			continue;
		}
		if (!sl->need) {
			const char *cl = strcasestr(sl->buf, "\r\ncontent-length:");

			if (strncmp(sl->buf, "HTTP/1.1 200", 12) != 0 || !cl) {
				hold_fail_slot(h, sl, HF_HTTP, 0);
				return 2;
			}
			sl->need = (size_t)(end + 4 - sl->buf) + strtoul(cl + 17, NULL, 10);
			if (sl->need >= sizeof(sl->buf)) {
				hold_fail_slot(h, sl, HF_HTTP, 0);
				return 2;
			}
		}
		if (sl->have >= sl->need) {
			epoll_ctl(h->ep, EPOLL_CTL_DEL, sl->fd, NULL);
			h->fds[h->held] = sl->fd;
			h->ssls[h->held] = sl->ssl;
			h->held++;
			sl->fd = -1;
			sl->ssl = NULL;
			return 1;
		}
	}
wait:
	if (epoll_ctl(h->ep, EPOLL_CTL_MOD, sl->fd, &ev) < 0) {
		hold_fail_slot(h, sl, HF_CONNECT, errno);
		return 2;
	}
	return 0;
}

/* The held connections the server has not closed: nothing to read, no EOF, no error. */
static long hold_open(const struct hold_run *h)
{
	struct pollfd *p = calloc((size_t)h->held, sizeof(*p));
	long open = 0, i;

	if (!p)
		return -1;
	for (i = 0; i < h->held; i++) {
		p[i].fd = h->fds[i];
		p[i].events = POLLIN | POLLRDHUP;
	}
	if (poll(p, (nfds_t)h->held, 0) >= 0)
		for (i = 0; i < h->held; i++)
			open += p[i].revents == 0;
	free(p);
	return open;
}

int load_hold_spread(const struct load_opts *o)
{
	struct hold_run h = { .o = o, .ep = -1 };
	struct epoll_event evs[256];
	struct hold_slot *slots;
	double start, limit = (double)o->timeout_ms / 1000.0, last_scan;
	long conc = o->concurrency < o->count ? o->concurrency : o->count, i, active = 0;
	int ret = 1, n;

	slots = calloc((size_t)conc, sizeof(*slots));
	h.fds = calloc((size_t)o->count, sizeof(*h.fds));
	h.ssls = calloc((size_t)o->count, sizeof(*h.ssls));
	h.ctx = load_ctx(o);
	h.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!slots || !h.fds || !h.ssls || !h.ctx || h.ep < 0)
		goto out;
	/* 50,000 idle clients: no read and write buffers kept while idle. */
	SSL_CTX_set_mode(h.ctx, SSL_MODE_RELEASE_BUFFERS);
	for (i = 0; i < conc; i++)
		slots[i].fd = -1;
	start = last_scan = load_now();
	for (i = 0; i < conc && !load_stop; i++)
		while (h.next < o->count && !load_stop)
			if (hold_slot_open(&h, &slots[i])) {
				active++;
				break;
			}
	while (active > 0 && !load_stop) {
		double now;

		n = epoll_wait(h.ep, evs, 256, 50);
		if (n < 0 && errno != EINTR) {
			perror("tls-load: epoll_wait");
			goto out;
		}
		for (int k = 0; k < n; k++) {
			struct hold_slot *sl = evs[k].data.ptr;

			if (hold_slot_step(&h, sl) == 0)
				continue;
			active--;
			while (h.next < o->count && !load_stop)
				if (hold_slot_open(&h, sl)) {
					active++;
					break;
				}
		}
		now = load_now();
		if (now - last_scan >= 0.1) {
			last_scan = now;
			for (i = 0; i < conc; i++) {
				if (slots[i].fd < 0 || now - slots[i].started <= limit)
					continue;
				hold_fail_slot(&h, &slots[i], HF_TIMEOUT, 0);
				active--;
				while (h.next < o->count && !load_stop)
					if (hold_slot_open(&h, &slots[i])) {
						active++;
						break;
					}
			}
		}
	}
	printf("held=%ld failed=%ld seconds=%.3f\n", h.held, h.failed, load_now() - start);
	fflush(stdout);
	if (h.failed) {
		fprintf(stderr, "tls-load: hold: %ld of %ld failed:", h.failed, o->count);
		for (i = 0; i < HF_N; i++)
			if (h.fails[i])
				fprintf(stderr, " %s=%ld", hold_fail_name[i], h.fails[i]);
		if (h.fails[HF_CONNECT] && h.last_errno)
			fprintf(stderr, " (last connect error: %s)", strerror(h.last_errno));
		if (h.fails[HF_HTTP])
			fprintf(stderr, " (last answer: %s)", h.last_http);
		fputc('\n', stderr);
	}
	for (i = 0; i < conc; i++)
		if (slots[i].fd >= 0)
			hold_slot_free(&slots[i]);
	alarm((unsigned int)o->max_seconds);
	while (!load_stop)
		poll(NULL, 0, 100);
	printf("open=%ld\n", hold_open(&h));
	fflush(stdout);
	ret = h.held == o->count ? 0 : 1;
out:
	if (h.fds)
		for (i = 0; i < h.held; i++) {
			SSL_free(h.ssls[i]);
			close(h.fds[i]);
		}
	if (slots)
		for (i = 0; i < conc; i++)
			if (slots[i].fd >= 0)
				hold_slot_free(&slots[i]);
	if (h.ep >= 0)
		close(h.ep);
	SSL_CTX_free(h.ctx);
	free(h.fds);
	free(h.ssls);
	free(slots);
	return ret;
}
