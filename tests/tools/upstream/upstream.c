/* edge-upstream: a small HTTP/1.1 server for the tests, the demo and the benchmarks.
 *
 *   edge-upstream --listen ADDR:PORT [--port-file F] [--workers N] [--access-log F] [--proxy-v2]
 *                 [--idle-timeout MS]
 *
 * Routes:
 *   GET /            200 "hello from upstream\n"
 *   GET /bytes/N     200 with N bytes (N <= 1 GiB), byte i = (i * 131 + 7) & 0xff, streamed
 *   GET /conn        200 "conn=ID requests=N\n": ID numbers the accepted TCP connections of the
 *                    process from 1 (in accept order), N counts this connection's requests,
 *                    this one included
 *   GET /chunked/N   200 "Transfer-Encoding: chunked", the /bytes/N bytes in chunks of 1..1000
 *                    bytes (every other one with the extension ";x=1"), then the trailer field
 *                    "X-Trailer: done" (announced by "Trailer: X-Trailer")
 *   GET /close       200 "bye\n" with "Connection: close"; the server closes after writing it
 *   GET /eof/N       200 with neither Content-Length nor Transfer-Encoding (no Connection header
 *                    unless the request asked to close): the /bytes/N bytes, then the close
 *   GET /status/C    status C (200..599): 204 and 304 with no body and no Content-Length, any
 *                    other with the body "status C\n"
 *   GET /early       "103 Early Hints" with "Link: </a>; rel=preload", then what GET / sends
 *   ANY /echo        200 whose body is the request head exactly as received
 *   POST|PUT /count  200 "BYTES FNV1A64HEX\n" over the request body (Content-Length), or
 *                    "BYTES FNV1A64HEX chunked trailers=K\n" for a chunked one (K trailer
 *                    fields); chunked request bodies are read on /count only (501 elsewhere)
 *   ANY /headers     200 whose body is the request's header lines exactly as received
 *   ANY /proxy       200 with what the connection's PROXY v2 header said (--proxy-v2), one
 *                    line each: "family=inet src=A:P dst=A:P", then "tlv=0xTT len=N text=..."
 *                    (or hex=... when not printable); PP2_TYPE_SSL as "tlv=0x20 client=0xCC
 *                    verify=N" and its sub-TLVs as "tlv=0x20/0xTT ..."
 *
 * HEAD is answered wherever GET is, with the head GET would send (Content-Length included)
 * and no body; any other method gets 405 on the GET routes.
 *
 * --proxy-v2: every connection must start with a PROXY protocol v2 header (else it is closed).
 * --idle-timeout MS: close a connection that has been idle (between requests, nothing to write)
 * for MS milliseconds; without it an idle connection stays open until the client closes it.
 * A response carries "Connection: close" whenever the server closes after it (the request said
 * "Connection: close", HTTP/1.0 without keep-alive, /close, errors that end the connection).
 *
 * One epoll loop per worker thread, all on one listening socket (EPOLLEXCLUSIVE); edge-triggered,
 * non-blocking, keep-alive, pipelining-safe (one request at a time per connection), request heads
 * bounded at 64 KiB (431); a head's lines may end in CRLF or in a bare LF (RFC 9112, section 2.2,
 * lets a recipient accept one). The access log gets one line per request, "METHOD TARGET STATUS
 * conn=ID" ("- -" for a request line it could not parse). SIGTERM/SIGINT exit 0.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "upstream.h"

#define UP_HEAD_MAX (64 * 1024)
#define UP_PATTERN (256 * 1024)
#define UP_EVENTS 256
#define UP_CHUNK_MAX 1000
#define UP_CHUNK_BATCH (64 * 1024) /* chunked body bytes framed per flush round */
#define UP_TRAILER "0\r\nX-Trailer: done\r\n\r\n"

/* One per worker thread: its epoll set and, with --idle-timeout, its connections. */
struct up_worker {
	int ep;
	struct up_conn *first, *last;
};

static int listen_fd = -1;
int up_access_fd = -1;
static bool proxy_v2;
static int idle_ms; /* --idle-timeout; 0: never */
static atomic_uint_fast64_t next_conn_id = 1;
static unsigned char pattern[UP_PATTERN + 256];

static void consume(struct up_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* Reads into c->in; returns bytes read, 0 on EOF, -EAGAIN, or another negative errno. */
static ssize_t fill(struct up_conn *c)
{
	ssize_t n;

	/* Grow when full, and while a body streams through (up to the bound). */
	if (c->in_len == c->in_cap || (c->state == UP_BODY && c->in_cap < UP_HEAD_MAX)) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
		char *p;

		if (cap > UP_HEAD_MAX)
			cap = UP_HEAD_MAX;
		if (cap == c->in_cap)
			return -ENOBUFS;
		p = realloc(c->in, cap);
		if (!p)
			return -ENOMEM;
		c->in = p;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n < 0)
		return -errno;
	c->in_len += (size_t)n;
	return n;
}

/* /chunked/N: frames the next stretch of the body into c->out (an empty c->out); after the
 * last chunk, the trailer section, and the stream is done. Chunk sizes vary over 1..1000. */
static int chunk_fill(struct up_conn *c)
{
	while (c->stream_left && c->out_len < UP_CHUNK_BATCH) {
		size_t len = UP_CHUNK_MAX - (size_t)(c->chunk_no * 397 % UP_CHUNK_MAX);
		char line[32];
		int n;

		if (len > c->stream_left)
			len = (size_t)c->stream_left;
		n = snprintf(line, sizeof(line), c->chunk_no & 1 ? "%zx;x=1\r\n" : "%zx\r\n", len);
		if (up_out_append(c, line, (size_t)n) ||
		    up_out_append(c, pattern + (c->stream_pos & 0xff), len) ||
		    up_out_append(c, "\r\n", 2))
			return -ENOMEM;
		c->stream_left -= len;
		c->stream_pos += len;
		c->chunk_no++;
	}
	if (!c->stream_left) {
		c->chunked = false;
		return up_out_append(c, UP_TRAILER, sizeof(UP_TRAILER) - 1);
	}
	return 0;
}

/* Sends what is queued; 0 when all is out, -EAGAIN, or another negative errno. */
static int flush(struct up_conn *c)
{
	ssize_t n;

	for (;;) {
		while (c->out_off < c->out_len) {
			n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (n < 0)
				return -errno;
			c->out_off += (size_t)n;
		}
		c->out_off = c->out_len = 0;
		if (!c->chunked)
			break;
		if (chunk_fill(c))
			return -ENOMEM;
	}
	while (c->stream_left) {
		size_t len = c->stream_left < UP_PATTERN ? (size_t)c->stream_left : UP_PATTERN;

		n = send(c->fd, pattern + (c->stream_pos & 0xff), len, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		c->stream_left -= (uint64_t)n;
		c->stream_pos += (uint64_t)n;
	}
	return 0;
}

/* A chunked request body (/count): hashes chunk data as it comes. Returns 1 when the body
 * is done, 0 when it needs more bytes, -1 when it is not chunked framing. */
static int chunked_body(struct up_conn *c)
{
	for (;;) {
		const char *nl = memchr(c->in, '\n', c->in_len);
		size_t take;
		uint64_t size = 0;

		switch (c->req_chunked) {
		case 1: /* chunk line: hex size [; ext] CRLF */
			if (!nl)
				return c->in_len > 1024 ? -1 : 0;
			{
				const char *p = c->in;
				int digits = 0;

				for (; p < nl && isxdigit((unsigned char)*p) && digits < 15;
				     p++, digits++)
					size = size * 16 +
					       (uint64_t)(isdigit((unsigned char)*p)
								  ? *p - '0'
								  : (*p | 0x20) - 'a' + 10);
				if (!digits || nl == c->in || nl[-1] != '\r')
					return -1;
			}
			consume(c, (size_t)(nl - c->in) + 1);
			c->body_left = size;
			c->req_chunked = size ? 2 : 4;
			continue;
		case 2:
			if (!c->in_len)
				return 0;
			take = c->in_len < c->body_left ? c->in_len : (size_t)c->body_left;
			for (size_t i = 0; i < take; i++)
				c->body_hash = (c->body_hash ^ (unsigned char)c->in[i]) *
					       0x100000001b3ULL;
			c->body_seen += take;
			c->body_left -= take;
			consume(c, take);
			if (!c->body_left)
				c->req_chunked = 3;
			continue;
		case 3:
			if (c->in_len < 2)
				return 0;
			if (memcmp(c->in, "\r\n", 2))
				return -1;
			consume(c, 2);
			c->req_chunked = 1;
			continue;
		default: /* trailer lines, then the empty line */
			if (!nl)
				return c->in_len > 16384 ? -1 : 0;
			if (nl == c->in + 1 && c->in[0] == '\r') {
				consume(c, 2);
				c->req_chunked = 5; /* done: stays set for the answer */
				return 1;
			}
			c->req_trailers++;
			consume(c, (size_t)(nl - c->in) + 1);
			continue;
		case 5:
			return 1;
		}
	}
}

/* Runs the connection until it must wait for the socket; returns false when it is to be closed. */
static bool drive(struct up_conn *c)
{
	for (;;) {
		ssize_t n = 0;
		size_t head_len, blank;

		switch (c->state) {
		case UP_PROXY:
			if (c->in_len) {
				int r = up_proxy_parse(c->in, c->in_len, &c->proxy, &c->proxy_len);

				if (r < 0) {
					fprintf(stderr, "edge-upstream: bad PROXY v2 header\n");
					return false;
				}
				if (r > 0) {
					consume(c, (size_t)r);
					c->state = UP_HEAD;
					continue;
				}
			}
			n = fill(c);
			break;
		case UP_HEAD:
			head_len = up_head_end(c->in, c->in_len, &blank);
			if (head_len) {
				if (up_handle_head(c, head_len, blank))
					return false;
				consume(c, head_len);
				c->state = UP_BODY;
				continue;
			}
			n = fill(c);
			if (n == -ENOBUFS) {
				snprintf(c->reqline, sizeof(c->reqline), "- -");
				c->close_after = true;
				c->head_only = false;
				if (up_respond_lit(c, 431, "request head over 64 KiB\n"))
					return false;
				c->state = UP_WRITE;
				continue;
			}
			break;
		case UP_BODY:
			while (c->cont_left) {
				n = send(c->fd,
					 &UP_CONTINUE[sizeof(UP_CONTINUE) - 1 - c->cont_left],
					 c->cont_left, MSG_NOSIGNAL);
				if (n < 0)
					return errno == EAGAIN;
				c->cont_left -= (size_t)n;
			}
			if (c->req_chunked) {
				int r = chunked_body(c);

				if (r < 0) {
					c->close_after = true;
					if (up_respond_lit(c, 400, "bad chunked body\n"))
						return false;
					c->state = UP_WRITE;
					continue;
				}
				if (r == 0) {
					n = fill(c);
					break;
				}
			}
			if (c->in_len && c->body_left) {
				size_t take = c->in_len < c->body_left ? c->in_len
								       : (size_t)c->body_left;

				for (size_t i = 0; c->route == UP_R_COUNT && i < take; i++)
					c->body_hash = (c->body_hash ^ (unsigned char)c->in[i]) *
						       0x100000001b3ULL;
				c->body_seen += take;
				c->body_left -= take;
				consume(c, take);
			}
			if (!c->body_left) {
				if (c->route == UP_R_COUNT) {
					char body[64];
					int len = c->req_chunked
							  ? snprintf(body, sizeof(body),
								     "%" PRIu64 " %016" PRIx64
								     " chunked trailers=%u\n",
								     c->body_seen, c->body_hash,
								     c->req_trailers)
							  : snprintf(body, sizeof(body),
								     "%" PRIu64 " %016" PRIx64 "\n",
								     c->body_seen, c->body_hash);

					if (up_respond(c, 200, body, (size_t)len))
						return false;
				}
				c->state = UP_WRITE;
				continue;
			}
			n = fill(c);
			break;
		case UP_WRITE:
			n = flush(c);
			if (n == -EAGAIN)
				return true;
			if (n < 0)
				return false;
			if (c->close_after) {
				shutdown(c->fd, SHUT_WR);
				c->in_len = 0;
				c->state = UP_DRAIN;
			} else {
				c->state = UP_HEAD;
			}
			continue;
		case UP_DRAIN:
			c->in_len = 0;
			n = fill(c);
			if (n > 0)
				continue;
			break;
		}
		/* n is the result of a fill() */
		if (n == -EAGAIN)
			return true;
		if (n <= 0)
			return false;
	}
}

/* --idle-timeout: the worker's connection list, least recently active first. */
static void idle_unlink(struct up_worker *w, struct up_conn *c)
{
	*(c->prev ? &c->prev->next : &w->first) = c->next;
	*(c->next ? &c->next->prev : &w->last) = c->prev;
	c->prev = c->next = NULL;
}

static void idle_append(struct up_worker *w, struct up_conn *c, uint64_t now)
{
	c->active_ms = now;
	c->prev = w->last;
	c->next = NULL;
	*(w->last ? &w->last->next : &w->first) = c;
	w->last = c;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_close(struct up_worker *w, struct up_conn *c)
{
	if (idle_ms)
		idle_unlink(w, c);
	close(c->fd);
	free(c->proxy);
	free(c->in);
	free(c->out);
	free(c);
}

static void accept_all(struct up_worker *w, uint64_t now)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
		struct up_conn *c;
		int fd, one = 1;

		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("edge-upstream: accept");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed);
		c->state = proxy_v2 ? UP_PROXY : UP_HEAD;
		if (idle_ms)
			idle_append(w, c, now);
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("edge-upstream: epoll_ctl");
			conn_close(w, c);
		}
	}
}

/* Idle: between requests (nothing of the next one received) with nothing to write, or
 * draining after its last response. */
static bool conn_idle(const struct up_conn *c)
{
	return c->state == UP_DRAIN ||
	       ((c->state == UP_HEAD || c->state == UP_PROXY) && !c->in_len && !c->cont_left);
}

/* --idle-timeout: closes the connections idle for idle_ms; returns the epoll_wait timeout
 * until the next one can expire (-1: none to watch). A busy connection that has had no
 * event for idle_ms goes to the back of the list, as if active now. */
static int idle_sweep(struct up_worker *w, uint64_t now)
{
	struct up_conn *c;

	while ((c = w->first) && now - c->active_ms >= (uint64_t)idle_ms) {
		if (conn_idle(c)) {
			conn_close(w, c);
		} else {
			idle_unlink(w, c);
			idle_append(w, c, now);
		}
	}
	return c ? (int)(c->active_ms + (uint64_t)idle_ms - now) : -1;
}

static void *worker(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };
	struct epoll_event events[UP_EVENTS];
	struct up_worker w = { .ep = epoll_create1(EPOLL_CLOEXEC) };
	int timeout = -1;

	(void)arg;
	if (w.ep < 0 || epoll_ctl(w.ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		perror("edge-upstream: epoll");
		exit(1);
	}
	for (;;) {
		int n = epoll_wait(w.ep, events, UP_EVENTS, timeout);
		uint64_t now = idle_ms ? now_ms() : 0;

		for (int i = 0; i < n; i++) {
			struct up_conn *c = events[i].data.ptr;

			if (!c) {
				accept_all(&w, now);
			} else if (!drive(c)) {
				conn_close(&w, c);
			} else if (idle_ms) {
				idle_unlink(&w, c);
				idle_append(&w, c, now);
			}
		}
		if (n < 0 && errno != EINTR) {
			perror("edge-upstream: epoll_wait");
			exit(1);
		}
		if (idle_ms)
			timeout = idle_sweep(&w, now);
	}
	return NULL;
}

static int usage(FILE *f, int code)
{
	fprintf(f, "usage: edge-upstream --listen ADDR:PORT [--port-file F] [--workers N] "
		   "[--access-log F] [--proxy-v2] [--idle-timeout MS]\n");
	return code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "access-log", required_argument, NULL, 'a' },
		{ "proxy-v2", no_argument, NULL, 'P' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = NULL, *port_file = NULL, *access_file = NULL;
	char bound[192];
	int workers = 2, opt, sig;
	sigset_t set;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'a':
			access_file = optarg;
			break;
		case 'P':
			proxy_v2 = true;
			break;
		case 'i': {
			char *end;
			long ms;

			errno = 0;
			ms = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || ms < 1 || ms > 86400000) {
				fprintf(stderr,
					"edge-upstream: --idle-timeout: %s: expected 1..86400000 ms\n",
					optarg);
				return usage(stderr, 2);
			}
			idle_ms = (int)ms;
			break;
		}
		case 'w':
			workers = atoi(optarg);
			if (workers < 1 || workers > 256)
				return usage(stderr, 2);
			break;
		case 'h':
			return usage(stdout, 0);
		default:
			return usage(stderr, 2);
		}
	}
	if (!listen_spec || optind != argc)
		return usage(stderr, 2);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)((i * 131 + 7) & 0xff);
	if (access_file) {
		up_access_fd = open(access_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (up_access_fd < 0) {
			fprintf(stderr, "edge-upstream: %s: %s\n", access_file, strerror(errno));
			return 1;
		}
	}
	listen_fd = up_listen(listen_spec, bound, sizeof(bound));
	if (listen_fd < 0)
		return 1;

	/* Workers inherit the blocked mask; the main thread waits for the signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < workers; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, worker, NULL)) {
			fprintf(stderr, "edge-upstream: cannot start worker %d\n", i);
			return 1;
		}
		pthread_detach(t);
	}
	if (port_file) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%s\n", strrchr(bound, ':') + 1) < 0 || fclose(f) ||
		    rename(tmp, port_file)) {
			fprintf(stderr, "edge-upstream: %s: %s\n", port_file, strerror(errno));
			return 1;
		}
	}
	printf("listening %s\n", bound);
	fflush(stdout);
	while (sigwait(&set, &sig))
		;
	return 0;
}
