/*
 * Between h2.c (the parent's session: nghttp2's callbacks, the pump over the client side,
 * the limits) and h2_stream.c (a stream: its child connection, edge_xprt_h2, the response
 * turned into frames). h2_stream.c never calls into h2.c.
 */
#ifndef EDGE_H2_INT_H
#define EDGE_H2_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "httpresp.h"
#include "worker.h"

struct edge_h2_stream {
	struct edge_h2 *h2;
	struct edge_h2_stream *prev, *next; /* the session's list */
	int32_t id;
	struct edge_conn *child; /* NULL before it is spawned, and once it closed */
	/* the request as the child reads it: head, then the body (chunked when the
	 * client gave no content-length) */
	char *req;
	size_t req_len, req_off, req_cap;
	size_t unconsumed;  /* DATA bytes in req not yet given back to flow control */
	size_t hdr_bytes;   /* header list size so far (RFC 9113 6.5.2) */
	size_t block_bytes; /* header block bytes on the wire (HEADERS + CONTINUATION) */
	char *cookie;       /* cookie fields, joined with "; " (RFC 9113 8.2.3) */
	size_t cookie_len, cookie_cap;
	char method[24], scheme[8];
	char *path, *authority, *host;
	bool has_length, grpc, too_large, bad_pseudo;
	bool started;             /* the head is built and the child (or a local answer) is on */
	bool req_end;             /* END_STREAM from the client */
	bool chunked;             /* the body goes up chunked */
	bool in_trailers;         /* the client's trailer section */
	bool wants_in, wants_out; /* the child waits for request bytes / response room */
	/* the response */
	struct edge_http_resp dec;
	bool resp_submitted, resp_end, resp_failed;
	char *body; /* response body bytes for the client: body[body_off..body_len) */
	size_t body_len, body_off, body_cap;
	nghttp2_nv *trailers;
	size_t n_trailers;
	char *trailer_text; /* what trailers point into */
	const char *local;  /* a local answer's body (static), or NULL */
	size_t local_len, local_off;
};

struct edge_h2 {
	nghttp2_session *s;
	struct edge_conn *c;
	struct edge_h2_stream *streams; /* the open ones */
	unsigned int n_streams;
	char *out; /* frames for the client: out[out_off..out_len) */
	size_t out_len, out_off, out_cap;
	unsigned int block_frames; /* frames of the header block being read */
	bool shutdown;             /* the daemon drains: GOAWAY(NO_ERROR) sent, streams finish */
	bool dying;                /* the parent closes: callbacks do nothing */
	bool closing;              /* GOAWAY queued: close once the output is out */
	enum edge_close_reason close_reason;
	/* token buckets (h2.h's limits), refilled by elapsed time */
	double reset_tokens, control_tokens;
	uint64_t bucket_ms;
};

static inline struct edge_counters *ctr(const struct edge_h2 *h)
{
	return &h->c->w->c;
}

/* h2_stream.c */
int edge_h2_append(char **p, size_t *len, size_t *cap, const void *data, size_t n);
int edge_h2_req_add(struct edge_h2_stream *st, const void *data, size_t n);
void edge_h2_stream_free(struct edge_h2_stream *st);
/* Flow control: the DATA bytes the child took (or that nobody will take) are given back. */
void edge_h2_give_back(struct edge_h2_stream *st);
/* The child waits for request bytes (in) or response room (out): wake it. */
void edge_h2_wake_child(struct edge_h2_stream *st, bool in);
/* The edge answers the stream itself: status, a text body (static). */
void edge_h2_answer_local(struct edge_h2_stream *st, int status, const char *body);
/* gRPC needs HTTP/2 to its server: a trailers-only gRPC error saying so. */
void edge_h2_answer_grpc(struct edge_h2_stream *st);
/* Hop-by-hop in HTTP/1.1, never in HTTP/2 (RFC 9113 8.2.2). */
bool edge_h2_hop_field(const char *n, size_t l);
/* The child ends, from its own completion (never inside the parent's handlers). */
void edge_h2_kill_child(struct edge_conn *child, enum edge_close_reason why);
/* A child for stream st (started by its first kick), or NULL. */
struct edge_conn *edge_h2_spawn(struct edge_conn *p, struct edge_h2_stream *st);

#endif
