/* edge-upstream's routes: what a request head asks for and the response it gets queued (see
 * upstream.c for the routes and what they send). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upstream.h"

#define UP_HELLO "hello from upstream\n"
#define UP_EARLY "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"

static void access_log(const struct up_conn *c, int status)
{
	char line[200];
	int n;

	if (up_access_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %d conn=%" PRIu64 "\n", c->reqline, status, c->id);
	if (n > 0 &&
	    write(up_access_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		perror("edge-upstream: access log");
}

int up_out_append(struct up_conn *c, const void *data, size_t len)
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

static int respond_head(struct up_conn *c, int status, uint64_t body_len)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %" PRIu64
		     "\r\n%s\r\n",
		     status, up_status_text(status), body_len,
		     c->close_after ? "Connection: close\r\n" : "");
	access_log(c, status);
	return up_out_append(c, head, (size_t)n);
}

/* Queues a response head whose framing is up to the caller: fields are its header lines. */
static int respond_fields(struct up_conn *c, int status, const char *fields)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s\r\n", status,
		     up_status_text(status), fields, c->close_after ? "Connection: close\r\n" : "");
	access_log(c, status);
	return up_out_append(c, head, (size_t)n);
}

int up_respond(struct up_conn *c, int status, const char *body, size_t len)
{
	if (respond_head(c, status, len))
		return -ENOMEM;
	return c->head_only ? 0 : up_out_append(c, body, len);
}

/* Queues the head of a streamed body of n pattern bytes (framed by the caller's fields, or
 * by Content-Length when fields is NULL); flush() sends the body. */
static int respond_stream(struct up_conn *c, const char *fields, uint64_t n)
{
	int err = fields ? respond_fields(c, 200, fields) : respond_head(c, 200, n);

	c->stream_left = c->head_only ? 0 : n;
	c->stream_pos = 0;
	return err;
}

/* The GET (and HEAD) routes that exercise a client's framing and connection reuse. */
static int get_route(struct up_conn *c, const char *target)
{
	char body[64];
	uint64_t n;
	int len, err;

	if (!strcmp(target, "/conn")) {
		len = snprintf(body, sizeof(body), "conn=%" PRIu64 " requests=%" PRIu64 "\n", c->id,
			       c->requests);
		return up_respond(c, 200, body, (size_t)len);
	}
	if (!strncmp(target, "/chunked/", 9)) {
		if (!up_parse_u64(target + 9, strlen(target + 9), UP_BYTES_MAX, &n))
			return up_respond_lit(c, 400, "N must be 0..1073741824\n");
		err = respond_stream(c,
				     "Content-Type: application/octet-stream\r\n"
				     "Transfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n",
				     n);
		c->chunked = !c->head_only;
		c->chunk_no = 0;
		return err;
	}
	if (!strcmp(target, "/close")) {
		c->close_after = true;
		return up_respond_lit(c, 200, "bye\n");
	}
	if (!strncmp(target, "/eof/", 5)) {
		if (!up_parse_u64(target + 5, strlen(target + 5), UP_BYTES_MAX, &n))
			return up_respond_lit(c, 400, "N must be 0..1073741824\n");
		/* Connection: close only when the request asked for it (respond_fields adds it). */
		err = respond_stream(c, "Content-Type: application/octet-stream\r\n", n);
		c->close_after = true;
		return err;
	}
	if (!strncmp(target, "/status/", 8)) {
		if (!up_parse_u64(target + 8, strlen(target + 8), 599, &n) || n < 200)
			return up_respond_lit(c, 400, "C must be 200..599\n");
		if (n == 204 || n == 304)
			return respond_fields(c, (int)n, "");
		len = snprintf(body, sizeof(body), "status %d\n", (int)n);
		return up_respond(c, (int)n, body, (size_t)len);
	}
	if (!strcmp(target, "/early")) {
		if (up_out_append(c, UP_EARLY, sizeof(UP_EARLY) - 1))
			return -ENOMEM;
		return up_respond_lit(c, 200, UP_HELLO);
	}
	return up_respond_lit(c, 404, "not found\n");
}

/* A complete head of head_len bytes is at c->in, its empty line the last blank bytes: route it. */
int up_handle_head(struct up_conn *c, size_t head_len, size_t blank)
{
	const char *h = c->in, *v, *sp1, *sp2, *eol = memchr(c->in, '\n', head_len);
	char method[16], target[128];
	size_t vlen, mlen, tlen;
	bool http10;
	uint64_t n;

	c->route = UP_R_FIXED;
	c->head_only = false;
	c->requests++;
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
		return up_respond_lit(c, 400, "bad request line\n");
	}
	memcpy(method, h, mlen);
	method[mlen] = '\0';
	memcpy(target, sp1 + 1, tlen);
	target[tlen] = '\0';
	snprintf(c->reqline, sizeof(c->reqline), "%s %s", method, target);
	http10 = sp2[8] == '0';
	c->head_only = !strcmp(method, "HEAD");

	c->close_after = http10;
	if (up_header_value(h, head_len, "Connection", &v, &vlen)) {
		if (up_value_has(v, vlen, "close"))
			c->close_after = true;
		else if (up_value_has(v, vlen, "keep-alive"))
			c->close_after = false;
	}
	c->req_chunked = 0;
	c->req_trailers = 0;
	if (up_header_value(h, head_len, "Transfer-Encoding", &v, &vlen)) {
		if (strcmp(target, "/count") || !up_value_has(v, vlen, "chunked")) {
			c->close_after = true;
			return up_respond_lit(c, 501,
					      "chunked request bodies are read on /count only\n");
		}
		c->req_chunked = 1;
	}
	if (up_header_value(h, head_len, "Content-Length", &v, &vlen) &&
	    !up_parse_u64(v, vlen, UINT64_MAX / 16, &c->body_left)) {
		c->close_after = true;
		return up_respond_lit(c, 400, "bad content-length\n");
	}
	if (c->body_left && up_header_value(h, head_len, "Expect", &v, &vlen) &&
	    up_value_has(v, vlen, "100-continue"))
		c->cont_left = sizeof(UP_CONTINUE) - 1;

	if (!strcmp(target, "/echo") || !strncmp(target, "/echo?", 6))
		return up_respond(c, 200, h, head_len);
	if (!strcmp(target, "/headers")) {
		const char *first = (const char *)memchr(h, '\n', head_len) + 1;

		return up_respond(c, 200, first, head_len - blank - (size_t)(first - h));
	}
	if (!strcmp(target, "/proxy"))
		return c->proxy ? up_respond(c, 200, c->proxy, c->proxy_len)
				: up_respond_lit(c, 200, "no proxy header\n");
	if (!strcmp(target, "/count")) {
		if (strcmp(method, "POST") && strcmp(method, "PUT"))
			return up_respond_lit(c, 405, "POST or PUT\n");
		c->route = UP_R_COUNT;
		return 0;
	}
	if (strcmp(method, "GET") && !c->head_only)
		return up_respond_lit(c, 405, "GET only\n");
	if (!strcmp(target, "/"))
		return up_respond_lit(c, 200, UP_HELLO);
	if (!strncmp(target, "/bytes/", 7)) {
		if (!up_parse_u64(target + 7, strlen(target + 7), UP_BYTES_MAX, &n))
			return up_respond_lit(c, 400, "N must be 0..1073741824\n");
		return respond_stream(c, NULL, n);
	}
	return get_route(c, target);
}
