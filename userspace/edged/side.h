/*
 * One side of a connection (the client or the upstream) and its transport:
 * plain TCP (xprt_tcp.c), TLS in userspace with OpenSSL (xprt_tls.c), or
 * kernel TLS after the hand-off (xprt_ktls.c). The relay (relay.c) moves
 * bytes between two sides through these calls only; it never looks at
 * OpenSSL or at the kind of socket. side.c holds the io_uring operations a
 * side arms (polls, sends, cancels).
 */
#ifndef EDGE_SIDE_H
#define EDGE_SIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "ktls.h"
#include "reason.h"
#include "tlsrec.h"

struct edge_conn;
struct edge_worker;

/* A byte range held in a buffer from a worker's free list (buf.c). */
struct edge_buf {
	char *p;
	uint32_t len, off;
};

/* What a transport call did when it moved no bytes (>= 0: bytes; 0 from recv: EOF). */
enum {
	EDGE_IO_AGAIN = -1, /* not ready: side->want says which poll to arm */
	EDGE_IO_ASYNC = -2, /* send: an io_uring send of the range is in flight (EDGE_OP_SEND) */
	EDGE_IO_FAIL = -3,  /* failed, logged; side->fail says how */
};

struct edge_side;

struct edge_xprt_ops {
	const char *name; /* "tcp", "tls", "ktls" */
	bool kernel;      /* the kernel holds the whole byte stream: a direction between two
			      such sides can splice */
	/* Plaintext in: bytes, 0 at the peer's end (close_notify or FIN), AGAIN, FAIL. */
	ssize_t (*recv)(struct edge_conn *c, struct edge_side *s, void *buf, size_t len);
	/* Plaintext out: bytes taken, AGAIN, ASYNC (buf must stay until the completion), FAIL. */
	ssize_t (*send)(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len);
	/* What the transport holds back goes out: 0, AGAIN, FAIL. NULL: holds nothing. */
	int (*flush)(struct edge_conn *c, struct edge_side *s);
	/* The end of what we send: close_notify if TLS, then a half-close. 0, AGAIN, FAIL. */
	int (*shutw)(struct edge_conn *c, struct edge_side *s);
	/* kernel TLS: a splice from this side stopped at a record that is not application
	 * data: reads and handles it. 1 handled, 0 close_notify (the end), AGAIN, FAIL. */
	int (*control)(struct edge_conn *c, struct edge_side *s);
};

extern const struct edge_xprt_ops edge_xprt_tcp;
extern const struct edge_xprt_ops edge_xprt_tls;
extern const struct edge_xprt_ops edge_xprt_ktls;
extern const struct edge_xprt_ops edge_xprt_rec;

struct edge_rec;

struct edge_side {
	int fd;                          /* -1: none (not yet connected, or pooled) */
	SSL *ssl;                        /* the TLS session (kept after the kTLS hand-off) */
	const struct edge_xprt_ops *ops; /* NULL until the side carries bytes */
	enum edge_side_id id;
	bool poll_in, poll_out; /* a poll is armed on fd */
	bool sending;           /* an io_uring send is in flight */
	bool drained; /* the last recv() read less than it asked: the socket is empty, and reads
			 say AGAIN without a system call until a POLLIN completes (xprt_tcp,
			 xprt_rec; as nginx's ready flag) */
	short want;   /* after AGAIN: POLLIN or POLLOUT */
	enum edge_xprt_fail fail; /* after FAIL */
	struct edge_buf out;      /* xprt_tls with batching: records not yet sent */
	struct edge_rec *rec;     /* xprt_rec: our own TLS 1.3 record layer (the SSL is gone) */
	/* TLS 1.3: the peer's application traffic secret, for the kTLS RX install or
	 * xprt_rec; ours (the client side only), for xprt_rec; wiped at the relay's start */
	unsigned char rx_secret[EDGE_TLS_SECRET_MAX];
	unsigned char tx_secret[EDGE_TLS_SECRET_MAX];
	uint8_t rx_secret_len, tx_secret_len;
	uint8_t tx_seq; /* records OpenSSL sent under tx_secret (its NewSessionTickets) */
};

/* side.c */
/* Arms a poll on the side's socket for POLLIN or POLLOUT (once). */
void edge_side_arm(struct edge_conn *c, struct edge_side *s, short events);
/* Arms the poll the last AGAIN asked for. */
void edge_side_wait(struct edge_conn *c, struct edge_side *s);
struct edge_dir;
/* The same for a relay direction, which goes on when that poll completes. */
void edge_dir_wait(struct edge_conn *c, struct edge_dir *d, struct edge_side *s, short events);
/* Takes back the polls armed on the side (their completions still come). */
void edge_side_unarm(struct edge_conn *c, struct edge_side *s);
/* An io_uring send of buf[0..len) on the side: EDGE_IO_ASYNC. */
ssize_t edge_side_send_async(struct edge_conn *c, struct edge_side *s, const void *buf, size_t len);
/* Cancels every operation on fd (at close). */
void edge_side_cancel_fd(struct edge_conn *c, int fd);
/* A transport failure: records how and returns EDGE_IO_FAIL. */
static inline int edge_side_failed(struct edge_side *s, enum edge_xprt_fail f)
{
	s->fail = f;
	return EDGE_IO_FAIL;
}

/* xprt_ktls.c: at relay start, both TLS sessions to the kernel (TX and RX; the
 * TLS 1.3 RX keys from rx_secret): 1 (the sides' ops are now edge_xprt_ktls),
 * 0 (they stay in userspace, counted as a fallback), or -EIO (half installed:
 * the connection must close). The secrets are wiped either way. */
int edge_xprt_ktls_handoff(struct edge_conn *c);
/* After a hand-off of both sides: the SSL objects go (the kernel has the keys, and xprt_ktls
 * reads and writes records without OpenSSL); the client's leaf stays, for the rechecks. Not
 * for a connection whose SSL is still read (identity per HTTP/2 stream). */
void edge_xprt_ktls_release(struct edge_conn *c);

/* xprt_rec.c: at relay start on the userspace path, a TLS 1.3 client session goes from
 * OpenSSL to our own record layer when it can (an AEAD suite we carry, both secrets logged,
 * nothing read ahead): 1 (the side's ops are now edge_xprt_rec, its SSL freed, the leaf kept in
 * c->leaf for the rechecks), 0 (it stays OpenSSL's). The secrets are wiped either way. */
int edge_xprt_rec_takeover(struct edge_conn *c);
/* At the connection's end: the record layer's contexts and buffers. */
void edge_xprt_rec_free(struct edge_conn *c, struct edge_side *s);

/* xprt_tls.c: the batching write BIO in front of the client socket (userspace relay). */
void edge_xprt_tls_batch(struct edge_conn *c, struct edge_side *s);
/* The batch (s->out) to the socket: 1 all of it sent, 0 the socket is full (the rest stays),
 * -1 failed (errno). */
int edge_side_out_send(struct edge_side *s);
/* The same for a transport's flush: 0 nothing left (the buffer goes back to the free list),
 * AGAIN (want POLLOUT), FAIL. */
int edge_side_out_flush(struct edge_conn *c, struct edge_side *s);

#endif
