/*
 * Why a connection closed and why a handshake failed: enums with one name
 * table each (reason.c), as the verifier's reasons are (verify.h). Logs,
 * status and metrics index the tables; nothing compares reason strings.
 */
#ifndef EDGE_REASON_H
#define EDGE_REASON_H

#include "verify.h"

/*
 * Why a connection past its handshake closed. The reasons up to
 * EDGE_CLOSE_COUNT are counted (closed_by[], mtls_edge_relay_closed_total);
 * a connection that ends in its handshake is not (its handshake line and
 * enum edge_hs_fail say why).
 */
enum edge_close_reason {
	EDGE_CLOSE_NONE = 0, /* not closing */
	EDGE_CLOSE_DONE,
	EDGE_CLOSE_SHUTDOWN,
	EDGE_CLOSE_IDLE_TIMEOUT,
	EDGE_CLOSE_BLOCKED,
	EDGE_CLOSE_CERT_REVOKED,
	EDGE_CLOSE_CERT_EXPIRED,
	EDGE_CLOSE_UPSTREAM_CONNECT_FAILED,
	EDGE_CLOSE_UPSTREAM_TLS_FAILED,
	EDGE_CLOSE_UPSTREAM_TLS_TIMEOUT,
	EDGE_CLOSE_UPSTREAM_TLS_ERROR,
	EDGE_CLOSE_UPSTREAM_ERROR,
	EDGE_CLOSE_UPSTREAM_RESET,
	EDGE_CLOSE_UPSTREAM_ALERT,
	EDGE_CLOSE_CLIENT_TLS_ERROR,
	EDGE_CLOSE_CLIENT_ERROR,
	EDGE_CLOSE_CLIENT_RESET,
	EDGE_CLOSE_CLIENT_ALERT,
	EDGE_CLOSE_BAD_RECORD,
	EDGE_CLOSE_RENEGOTIATION,
	EDGE_CLOSE_KEY_UPDATE,
	EDGE_CLOSE_HTTP_REFUSED, /* the log line names the refusal (its detail) */
	EDGE_CLOSE_KTLS_INSTALL_FAILED,
	EDGE_CLOSE_OUT_OF_MEMORY,
	EDGE_CLOSE_INTERNAL_ERROR,
	EDGE_CLOSE_NOT_AUTHORIZED,  /* a rule change no longer admits its certificate */
	EDGE_CLOSE_UPSTREAM_ALPN,   /* the TLS upstream did not select the client's protocol */
	EDGE_CLOSE_H2_STREAM_RESET, /* an HTTP/2 stream: the client reset it */
	EDGE_CLOSE_H2_CLOSED,       /* an HTTP/2 stream: its connection closed */
	EDGE_CLOSE_H2_GOAWAY,       /* HTTP/2: the edge sent GOAWAY for an error or a flood */
	EDGE_CLOSE_OTHER,
	EDGE_CLOSE_COUNT,                        /* the counted ones end here */
	EDGE_CLOSE_HANDSHAKE = EDGE_CLOSE_COUNT, /* ended in its handshake */
	EDGE_CLOSE_NREASONS,
};

/* "done", "client_reset", ...; "other" for a value out of range. */
const char *edge_close_reason_name(enum edge_close_reason r);

/* The two ends of a connection. */
enum edge_side_id {
	EDGE_CLIENT = 0,
	EDGE_UPSTREAM = 1,
};

/* How a transport failed (side.h), before it is a reason of one side. */
enum edge_xprt_fail {
	EDGE_XF_ERROR = 0,  /* a system call failed (not a reset) */
	EDGE_XF_RESET,      /* ECONNRESET, EPIPE */
	EDGE_XF_TLS,        /* the TLS layer refused what it read */
	EDGE_XF_ALERT,      /* the peer sent a fatal alert (kTLS) */
	EDGE_XF_BAD_RECORD, /* a record failed its MAC (kTLS) */
	EDGE_XF_KEY_UPDATE, /* a KeyUpdate the kernel cannot follow (kTLS) */
	EDGE_XF_RENEG,      /* a renegotiation attempt (kTLS) */
	EDGE_XF_NOMEM,
	EDGE_XF_COUNT,
};

/* The close reason of a transport failure on one side. */
enum edge_close_reason edge_close_reason_of(enum edge_side_id side, enum edge_xprt_fail f);

/*
 * Why a handshake failed. EDGE_HS_VERIFY: the verifier's reason (enum
 * edge_reason, no_client_cert included) says why; the others are the
 * handshake's own.
 */
enum edge_hs_fail {
	EDGE_HS_OK = 0,
	EDGE_HS_VERIFY,
	EDGE_HS_UNKNOWN_SNI,
	EDGE_HS_NO_SNI,
	EDGE_HS_BAD_SNI,
	EDGE_HS_TLS_ERROR,
	EDGE_HS_CLIENT_CLOSED,
	EDGE_HS_NOT_TLS,
	EDGE_HS_UNSUPPORTED_VERSION,
	EDGE_HS_NO_SHARED_CIPHER,
	EDGE_HS_TIMEOUT,
	EDGE_HS_INTERNAL_ERROR,
	EDGE_HS_ALPN_MISMATCH, /* offered ALPN, none of the SNI object's */
	EDGE_HS_ALPN_MISSING,  /* offered no ALPN where the SNI object refuses that */
	EDGE_HS_FAIL_COUNT,
};

/* The stable name: the verifier's reason's for EDGE_HS_VERIFY. */
const char *edge_hs_fail_name(enum edge_hs_fail f, enum edge_reason vreason);

/*
 * Failed handshakes are counted by one index over both kinds: the
 * verifier's reasons but ok (0 .. EDGE_REASON_COUNT - 2), then the
 * handshake's own (EDGE_HS_UNKNOWN_SNI ..), then "other".
 */
#define EDGE_HS_FAIL_INDEXES (EDGE_REASON_COUNT - 1 + EDGE_HS_FAIL_COUNT - EDGE_HS_UNKNOWN_SNI + 1)
size_t edge_hs_fail_index(enum edge_hs_fail f, enum edge_reason vreason);
const char *edge_hs_fail_index_name(size_t i);

/* Why the edge sent an HTTP/2 client GOAWAY (h2.c; mtls_edge_h2_goaway_total's labels). */
enum edge_h2_goaway {
	EDGE_H2_GOAWAY_PROTOCOL = 0,  /* nghttp2 found a protocol error */
	EDGE_H2_GOAWAY_RAPID_RESET,   /* streams opened and reset too fast (CVE-2023-44487) */
	EDGE_H2_GOAWAY_HEADER_FLOOD,  /* CONTINUATION frames, or a header block too long */
	EDGE_H2_GOAWAY_CONTROL_FLOOD, /* PING, SETTINGS, PRIORITY, empty frames too fast */
	EDGE_H2_GOAWAY_IDLE,          /* idle_timeout with no stream open */
	EDGE_H2_GOAWAY_SHUTDOWN,      /* the daemon drains */
	EDGE_H2_GOAWAY_COUNT,
};

const char *edge_h2_goaway_name(enum edge_h2_goaway g);

#endif
