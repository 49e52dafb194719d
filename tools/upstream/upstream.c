/* edge-upstream: a small HTTP/1.1 server for the tests, the demo and the benchmarks.
 *
 *   edge-upstream --listen ADDR:PORT [--port-file F] [--workers N] [--access-log F] [--proxy-v2]
 *
 * Routes:
 *   GET /            200 "hello from upstream\n"
 *   GET /bytes/N     200 with N bytes (N <= 1 GiB), byte i = (i * 131 + 7) & 0xff, streamed
 *   ANY /echo        200 whose body is the request head exactly as received
 *   POST|PUT /count  200 "BYTES FNV1A64HEX\n" over the request body (Content-Length only)
 *   ANY /headers     200 whose body is the request's header lines exactly as received
 *   ANY /proxy       200 with what the connection's PROXY v2 header said (--proxy-v2), one
 *                    line each: "family=inet src=A:P dst=A:P", then "tlv=0xTT len=N text=..."
 *                    (or hex=... when not printable); PP2_TYPE_SSL as "tlv=0x20 client=0xCC
 *                    verify=N" and its sub-TLVs as "tlv=0x20/0xTT ..."
 *
 * --proxy-v2: every connection must start with a PROXY protocol v2 header (else it is closed).
 *
 * One epoll loop per worker thread, all on one listening socket (EPOLLEXCLUSIVE); edge-triggered,
 * non-blocking, keep-alive, pipelining-safe (one request at a time per connection), request heads
 * bounded at 64 KiB (431). The access log gets one line per request. SIGTERM/SIGINT exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define UP_HEAD_MAX   (64 * 1024)
#define UP_BYTES_MAX  (1ULL << 30)
#define UP_PATTERN    (256 * 1024)
#define UP_EVENTS     256
#define UP_HELLO      "hello from upstream\n"
#define UP_CONTINUE   "HTTP/1.1 100 Continue\r\n\r\n"

enum up_state { UP_HEAD, UP_BODY, UP_WRITE, UP_DRAIN, UP_PROXY };
enum up_route { UP_R_FIXED, UP_R_COUNT };

struct up_conn {
	int fd;
	enum up_state state;
	enum up_route route;
	bool close_after;
	char *in;                 /* received, not yet consumed */
	size_t in_len, in_cap;
	char *out;                /* response head and small bodies */
	size_t out_len, out_off, out_cap;
	uint64_t stream_left;     /* /bytes/N body still to send */
	uint64_t stream_pos;
	uint64_t body_left;       /* request body still to read */
	uint64_t body_seen, body_hash;
	size_t cont_left;         /* bytes of "100 Continue" still to send */
	char reqline[160];        /* "METHOD TARGET" for the access log */
	char *proxy;              /* --proxy-v2: what the header said, as text */
	size_t proxy_len;
};

static int listen_fd = -1;
static int access_fd = -1;
static bool proxy_v2;
static unsigned char pattern[UP_PATTERN + 256];

static void access_log(const struct up_conn *c, int status)
{
	char line[200];
	int n;

	if (access_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %d\n", c->reqline, status);
	if (n > 0 && write(access_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		perror("edge-upstream: access log");
}

static int out_append(struct up_conn *c, const void *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_len + len < 512 ? 512 : c->out_len + len;
		char *p = realloc(c->out, cap);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	default:  return "Error";
	}
}

/* Queues a response head for a body of body_len bytes; body bytes follow separately. */
static int respond_head(struct up_conn *c, int status, uint64_t body_len)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %" PRIu64 "\r\n%s\r\n",
		     status, status_text(status), body_len, c->close_after ? "Connection: close\r\n" : "");
	access_log(c, status);
	return out_append(c, head, (size_t)n);
}

static int respond(struct up_conn *c, int status, const char *body, size_t len)
{
	if (respond_head(c, status, len))
		return -ENOMEM;
	return out_append(c, body, len);
}

#define respond_lit(c, status, text) respond(c, status, text, sizeof(text) - 1)

/* Case-insensitive value of header name in the head (lines after the request line). */
static bool header_value(const char *head, size_t len, const char *name, const char **val,
			 size_t *vlen)
{
	const char *p = memchr(head, '\n', len), *end = head + len;
	size_t nlen = strlen(name);

	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v, *ve;

		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
			v = p + nlen + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*val = v;
			*vlen = (size_t)(ve - v);
			return true;
		}
		p = eol;
	}
	return false;
}

static bool value_has(const char *v, size_t len, const char *token)
{
	size_t tlen = strlen(token);

	for (size_t i = 0; i + tlen <= len; i++)
		if (!strncasecmp(v + i, token, tlen))
			return true;
	return false;
}

static bool parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* A complete head of head_len bytes is at c->in: route it. */
static int handle_head(struct up_conn *c, size_t head_len)
{
	const char *h = c->in, *v, *sp1, *sp2, *eol = memchr(c->in, '\n', head_len);
	char method[16], target[128];
	size_t vlen, mlen, tlen;
	bool http10;
	uint64_t n;

	c->route = UP_R_FIXED;
	c->body_left = c->body_seen = 0;
	c->body_hash = 0xcbf29ce484222325ULL;
	sp1 = memchr(h, ' ', (size_t)(eol - h));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	mlen = sp1 ? (size_t)(sp1 - h) : 0;
	tlen = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
	if (!sp2 || !mlen || mlen >= sizeof(method) || !tlen || tlen >= sizeof(target) ||
	    strncmp(sp2 + 1, "HTTP/1.", 7)) {
		snprintf(c->reqline, sizeof(c->reqline), "- -");
		c->close_after = true;
		return respond_lit(c, 400, "bad request line\n");
	}
	memcpy(method, h, mlen);
	method[mlen] = '\0';
	memcpy(target, sp1 + 1, tlen);
	target[tlen] = '\0';
	snprintf(c->reqline, sizeof(c->reqline), "%s %s", method, target);
	http10 = sp2[8] == '0';

	c->close_after = http10;
	if (header_value(h, head_len, "Connection", &v, &vlen)) {
		if (value_has(v, vlen, "close"))
			c->close_after = true;
		else if (value_has(v, vlen, "keep-alive"))
			c->close_after = false;
	}
	if (header_value(h, head_len, "Transfer-Encoding", &v, &vlen)) {
		c->close_after = true;
		return respond_lit(c, 501, "chunked request bodies are not supported\n");
	}
	if (header_value(h, head_len, "Content-Length", &v, &vlen) &&
	    !parse_u64(v, vlen, UINT64_MAX / 16, &c->body_left)) {
		c->close_after = true;
		return respond_lit(c, 400, "bad content-length\n");
	}
	if (c->body_left && header_value(h, head_len, "Expect", &v, &vlen) &&
	    value_has(v, vlen, "100-continue"))
		c->cont_left = sizeof(UP_CONTINUE) - 1;

	if (!strcmp(target, "/echo") || !strncmp(target, "/echo?", 6))
		return respond(c, 200, h, head_len);
	if (!strcmp(target, "/headers")) {
		const char *first = (const char *)memchr(h, '\n', head_len) + 1;

		return respond(c, 200, first, head_len - 2 - (size_t)(first - h));
	}
	if (!strcmp(target, "/proxy"))
		return c->proxy ? respond(c, 200, c->proxy, c->proxy_len)
				: respond_lit(c, 200, "no proxy header\n");
	if (!strcmp(target, "/count")) {
		if (strcmp(method, "POST") && strcmp(method, "PUT"))
			return respond_lit(c, 405, "POST or PUT\n");
		c->route = UP_R_COUNT;
		return 0;
	}
	if (strcmp(method, "GET"))
		return respond_lit(c, 405, "GET only\n");
	if (!strcmp(target, "/"))
		return respond_lit(c, 200, UP_HELLO);
	if (!strncmp(target, "/bytes/", 7)) {
		if (!parse_u64(target + 7, strlen(target + 7), UP_BYTES_MAX, &n))
			return respond_lit(c, 400, "N must be 0..1073741824\n");
		c->stream_left = n;
		c->stream_pos = 0;
		return respond_head(c, 200, n);
	}
	return respond_lit(c, 404, "not found\n");
}

static void consume(struct up_conn *c, size_t n);

/* Appends one line of the PROXY header's description. */
static int proxy_line(struct up_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int proxy_line(struct up_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	p = realloc(c->proxy, c->proxy_len + (size_t)n + 2);
	if (!p)
		return -ENOMEM;
	c->proxy = p;
	memcpy(p + c->proxy_len, line, (size_t)n);
	p[c->proxy_len + (size_t)n] = '\n';
	c->proxy_len += (size_t)n + 1;
	return 0;
}

/* One TLV value as text when printable, else as hex. */
static int proxy_tlv(struct up_conn *c, const char *type, const unsigned char *v, size_t len)
{
	char val[700];
	bool text = len > 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			text = false;
	for (size_t i = 0; i < len && o + 3 < sizeof(val); i++)
		o += (size_t)snprintf(val + o, sizeof(val) - o, text ? "%c" : "%02x", v[i]);
	val[o] = '\0';
	return proxy_line(c, "tlv=%s len=%zu %s=%s", type, len, text ? "text" : "hex", val);
}

/* A PROXY v2 header at c->in: 1 parsed (and consumed), 0 incomplete, -1 bad. */
static int proxy_parse(struct up_conn *c)
{
	static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	const unsigned char *p = (const unsigned char *)c->in, *t, *end;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	size_t len, alen = 0;

	if (c->in_len < 16)
		return memcmp(p, sig, c->in_len < 12 ? c->in_len : 12) ? -1 : 0;
	if (memcmp(p, sig, 12) || p[12] != 0x21)
		return -1;
	len = (size_t)p[14] << 8 | p[15];
	if (c->in_len < 16 + len)
		return 0;
	if (p[13] == 0x11 && len >= 12) {
		alen = 12;
		inet_ntop(AF_INET, p + 16, a, sizeof(a));
		inet_ntop(AF_INET, p + 20, b, sizeof(b));
		proxy_line(c, "family=inet src=%s:%u dst=%s:%u", a, p[24] << 8 | p[25], b,
			   p[26] << 8 | p[27]);
	} else if (p[13] == 0x21 && len >= 36) {
		alen = 36;
		inet_ntop(AF_INET6, p + 16, a, sizeof(a));
		inet_ntop(AF_INET6, p + 32, b, sizeof(b));
		proxy_line(c, "family=inet6 src=[%s]:%u dst=[%s]:%u", a, p[48] << 8 | p[49], b,
			   p[50] << 8 | p[51]);
	} else if (p[13] == 0x00) {
		proxy_line(c, "family=unspec");
	} else {
		return -1;
	}
	end = p + 16 + len;
	for (t = p + 16 + alen; t < end;) {
		size_t tl;
		char type[16];

		if (end - t < 3 || (size_t)(end - t - 3) < (tl = (size_t)t[1] << 8 | t[2]))
			return -1;
		snprintf(type, sizeof(type), "0x%02x", t[0]);
		if (t[0] == 0x20 && tl >= 5) {
			const unsigned char *s = t + 8, *se = t + 3 + tl;

			proxy_line(c, "tlv=0x20 client=0x%02x verify=%u", t[3],
				   (unsigned)t[4] << 24 | (unsigned)t[5] << 16 | (unsigned)t[6] << 8 | t[7]);
			while (s < se) {
				size_t sl;

				if (se - s < 3 || (size_t)(se - s - 3) < (sl = (size_t)s[1] << 8 | s[2]))
					return -1;
				snprintf(type, sizeof(type), "0x20/0x%02x", s[0]);
				proxy_tlv(c, type, s + 3, sl);
				s += 3 + sl;
			}
		} else {
			proxy_tlv(c, type, t + 3, tl);
		}
		t += 3 + tl;
	}
	consume(c, 16 + len);
	return 1;
}

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

/* Sends what is queued; 0 when all is out, -EAGAIN, or another negative errno. */
static int flush(struct up_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
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

/* Runs the connection until it must wait for the socket; returns false when it is to be closed. */
static bool drive(struct up_conn *c)
{
	for (;;) {
		ssize_t n = 0;
		char *end;

		switch (c->state) {
		case UP_PROXY:
			if (c->in_len) {
				int r = proxy_parse(c);

				if (r < 0) {
					fprintf(stderr, "edge-upstream: bad PROXY v2 header\n");
					return false;
				}
				if (r > 0) {
					c->state = UP_HEAD;
					continue;
				}
			}
			n = fill(c);
			break;
		case UP_HEAD:
			end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
			if (end) {
				size_t head_len = (size_t)(end - c->in) + 4;

				if (handle_head(c, head_len))
					return false;
				consume(c, head_len);
				c->state = UP_BODY;
				continue;
			}
			n = fill(c);
			if (n == -ENOBUFS) {
				snprintf(c->reqline, sizeof(c->reqline), "- -");
				c->close_after = true;
				if (respond_lit(c, 431, "request head over 64 KiB\n"))
					return false;
				c->state = UP_WRITE;
				continue;
			}
			break;
		case UP_BODY:
			while (c->cont_left) {
				n = send(c->fd, UP_CONTINUE + sizeof(UP_CONTINUE) - 1 - c->cont_left,
					 c->cont_left, MSG_NOSIGNAL);
				if (n < 0)
					return errno == EAGAIN;
				c->cont_left -= (size_t)n;
			}
			if (c->in_len && c->body_left) {
				size_t take = c->in_len < c->body_left ? c->in_len : (size_t)c->body_left;

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
					int len = snprintf(body, sizeof(body), "%" PRIu64 " %016" PRIx64 "\n",
							   c->body_seen, c->body_hash);

					if (respond(c, 200, body, (size_t)len))
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

static void conn_close(struct up_conn *c)
{
	close(c->fd);
	free(c->proxy);
	free(c->in);
	free(c->out);
	free(c);
}

static void accept_all(int ep)
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
		c->state = proxy_v2 ? UP_PROXY : UP_HEAD;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("edge-upstream: epoll_ctl");
			conn_close(c);
		}
	}
}

static void *worker(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };
	struct epoll_event events[UP_EVENTS];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	(void)arg;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		perror("edge-upstream: epoll");
		exit(1);
	}
	for (;;) {
		int n = epoll_wait(ep, events, UP_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			struct up_conn *c = events[i].data.ptr;

			if (!c)
				accept_all(ep);
			else if (!drive(c))
				conn_close(c);
		}
		if (n < 0 && errno != EINTR) {
			perror("edge-upstream: epoll_wait");
			exit(1);
		}
	}
	return NULL;
}

/* Binds spec ("ADDR:PORT", "[V6]:PORT"), fills the bound address as "ADDR:PORT"; returns the fd. */
static int open_listener(const char *spec, char *bound, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[128], port[16], *colon;
	int fd = -1, one = 1, err;

	snprintf(host, sizeof(host), "%s", spec[0] == '[' ? spec + 1 : spec);
	colon = strrchr(host, ':');
	if (!colon || colon == host) {
		fprintf(stderr, "edge-upstream: %s: expected ADDR:PORT\n", spec);
		return -1;
	}
	*colon = '\0';
	if (colon[-1] == ']')
		colon[-1] = '\0';
	err = getaddrinfo(host, colon + 1, &hints, &ai);
	if (err) {
		fprintf(stderr, "edge-upstream: %s: %s\n", spec, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		fprintf(stderr, "edge-upstream: %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	} else {
		getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(bound, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	}
	freeaddrinfo(ai);
	return fd;
}

static int usage(FILE *f, int code)
{
	fprintf(f, "usage: edge-upstream --listen ADDR:PORT [--port-file F] [--workers N] "
		   "[--access-log F] [--proxy-v2]\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = NULL, *port_file = NULL, *access_file = NULL;
	char bound[192];
	int workers = 2, opt, sig;
	sigset_t set;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_spec = optarg; break;
		case 'p': port_file = optarg; break;
		case 'a': access_file = optarg; break;
		case 'P': proxy_v2 = true; break;
		case 'w':
			workers = atoi(optarg);
			if (workers < 1 || workers > 256)
				return usage(stderr, 2);
			break;
		case 'h': return usage(stdout, 0);
		default:  return usage(stderr, 2);
		}
	}
	if (!listen_spec || optind != argc)
		return usage(stderr, 2);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)((i * 131 + 7) & 0xff);
	if (access_file) {
		access_fd = open(access_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (access_fd < 0) {
			fprintf(stderr, "edge-upstream: %s: %s\n", access_file, strerror(errno));
			return 1;
		}
	}
	listen_fd = open_listener(listen_spec, bound, sizeof(bound));
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
