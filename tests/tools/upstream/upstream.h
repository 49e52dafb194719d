/*
 * edge-upstream's parts (see upstream.c for what it is).
 */
#ifndef EDGE_UPSTREAM_H
#define EDGE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A PROXY v2 header at in[0..in_len): its length (> 0) when complete, 0 when
 * more is needed, -1 when it is not one. What it says is appended to *text,
 * a line each: "family=inet src=A:P dst=A:P", then "tlv=0xTT len=N text=..."
 * (hex=... when not printable); PP2_TYPE_SSL as "tlv=0x20 client=0xCC
 * verify=N" and its sub-TLVs as "tlv=0x20/0xTT ...".
 */
int up_proxy_parse(const char *in, size_t in_len, char **text, size_t *text_len);

#define UP_BYTES_MAX (1ULL << 30)
#define UP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* One connection: its request in, its response out. */
enum up_state { UP_HEAD, UP_BODY, UP_WRITE, UP_DRAIN, UP_PROXY };
enum up_route { UP_R_FIXED, UP_R_COUNT };

struct up_conn {
	int fd;
	enum up_state state;
	enum up_route route;
	bool close_after;
	char *in; /* received, not yet consumed */
	size_t in_len, in_cap;
	char *out; /* response head and small bodies */
	size_t out_len, out_off, out_cap;
	uint64_t stream_left; /* /bytes/N, /eof/N, /chunked/N body still to send */
	uint64_t stream_pos;
	uint64_t chunk_no; /* /chunked/N: chunks framed so far */
	bool chunked;      /* /chunked/N: stream_left goes out framed, then the trailer */
	bool head_only;    /* HEAD: the head a GET would get, no body */
	uint64_t id;       /* process-wide accept order, from 1 */
	uint64_t requests; /* request heads seen on this connection, the current one included */
	struct up_conn *prev,
		*next;      /* --idle-timeout: the worker's list, least recently active first */
	uint64_t active_ms; /* --idle-timeout: last event, CLOCK_MONOTONIC */
	uint64_t body_left; /* request body still to read */
	uint64_t body_seen, body_hash;
	size_t cont_left; /* bytes of "100 Continue" still to send */
	int req_chunked;  /* /count with a chunked body: 1 chunk line, 2 data, 3 CRLF, 4 trailers */
	unsigned int req_trailers;
	char reqline[160]; /* "METHOD TARGET" for the access log */
	char *proxy;       /* --proxy-v2: what the header said, as text */
	size_t proxy_len;
};

/* route.c */
extern int up_access_fd; /* --access-log; -1: none */
/* Appends to the connection's response buffer; -ENOMEM. */
int up_out_append(struct up_conn *c, const void *data, size_t len);
/* Queues a whole response: its head (Content-Length: len) and, unless HEAD, the body. */
int up_respond(struct up_conn *c, int status, const char *body, size_t len);
#define up_respond_lit(c, status, text) up_respond(c, status, text, sizeof(text) - 1)
/* A complete head of head_len bytes is at c->in, its empty line the last blank bytes: routes
 * it (queues the response, or sets up the body a route reads); -ENOMEM. */
int up_handle_head(struct up_conn *c, size_t head_len, size_t blank);

/* http.c */
/* The reason phrase of a status code ("OK", ...; "Status" or "Error" for others). */
const char *up_status_text(int status);
/* The length of the request head at in[0..len) up to and including its empty line, 0 while
 * it is incomplete; *blank gets the empty line's length (2 for CRLF, 1 for a bare LF). */
size_t up_head_end(const char *in, size_t len, size_t *blank);
/* The value of field name (case-insensitive) in a head, the request line skipped. */
bool up_header_value(const char *head, size_t len, const char *name, const char **val,
		     size_t *vlen);
/* Whether a value holds token anywhere (case-insensitive). */
bool up_value_has(const char *v, size_t len, const char *token);
/* Digits only, at most max. */
bool up_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* listen.c: binds spec ("ADDR:PORT", "[V6]:PORT") and listens, non-blocking; writes the bound
 * address as "ADDR:PORT" to bound; the fd, or -1 (said on stderr). */
int up_listen(const char *spec, char *bound, size_t len);

#endif
