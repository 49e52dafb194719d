/*
 * A filter reads a pumped direction between the source's recv and the
 * destination's send (relay.c): the request rewriter on client -> upstream
 * (headers mode and --protocol http: filter_request.c) and the response
 * reader on upstream -> client (--protocol http: filter_response.c). The
 * relay calls, in its loop: out (what to send next), sent (how much went),
 * step (no output pending: consume the input, or decide), and at the ends
 * eof, end and quiet.
 */
#ifndef EDGE_FILTER_H
#define EDGE_FILTER_H

#include <stddef.h>

#include "conn.h"

/* What step() tells the pump to do next. */
enum edge_filter_next {
	EDGE_FILTER_AGAIN = 0, /* loop: there may be output or more input to take */
	EDGE_FILTER_READ,      /* the input is through: read from the source (or end) */
	EDGE_FILTER_STOP,      /* stop pumping this direction until an event */
	EDGE_FILTER_KICK,      /* pump the other direction, then loop */
	EDGE_FILTER_KICK_STOP, /* pump the other direction, then stop */
	EDGE_FILTER_STEP,      /* *st says what (close, or a move) */
};

struct edge_filter {
	const char *name;
	/* The next bytes for the destination (0: none); *st set on a failure. */
	size_t (*out)(struct edge_conn *c, struct edge_dir *d, const char **p,
		      struct edge_step *st);
	void (*sent)(struct edge_conn *c, struct edge_dir *d, size_t n);
	/* Nothing is waiting to be sent: take input from d->in, or decide. */
	enum edge_filter_next (*step)(struct edge_conn *c, struct edge_dir *d,
				      struct edge_step *st);
	/* The source ended (recv returned 0). NULL: nothing to note. */
	void (*eof)(struct edge_conn *c, struct edge_dir *d);
	/* The source ended and everything is through: READ for the relay's end
	 * (the destination's shutw), or the filter's own (STOP, KICK_STOP, STEP).
	 * NULL: always the relay's. */
	enum edge_filter_next (*end)(struct edge_conn *c, struct edge_dir *d, struct edge_step *st);
	/* The source has nothing for now: give back the buffers that hold nothing. */
	void (*quiet)(struct edge_conn *c, struct edge_dir *d);
};

/* filter_request.c */
extern const struct edge_filter edge_filter_request;
/* headers mode: the rewriter with this session's identity lines (identity.c's). */
int edge_filter_request_start(struct edge_conn *c, char *inject, size_t inject_len);
/* --protocol http: the request reader (the rewriter of headers mode, or one
 * that adds nothing), made hop-by-hop aware. */
int edge_filter_http_start(struct edge_conn *c);

/* filter_response.c */
extern const struct edge_filter edge_filter_response;
/* --protocol http on the userspace relay, not with PROXY v2: the upstream
 * connection is pooled (pool.c) when its client is done with it. */
bool edge_filter_http_pooling(const struct edge_conn *c);

/* Both: free what the filters of c hold. */
void edge_filter_free(struct edge_conn *c);

#endif
