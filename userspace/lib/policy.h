/*
 * The verdict: a pure function of the SNI object's mTLS mode, the block rule
 * that covers the hostname (if any) and the verifier's result. No OpenSSL
 * types and no I/O, so every combination is unit-tested.
 */
#ifndef EDGE_POLICY_H
#define EDGE_POLICY_H

#include <stdbool.h>

enum edge_mtls_mode {
	EDGE_MTLS_REQUIRED = 0,
	EDGE_MTLS_OPTIONAL,
	EDGE_MTLS_OFF,
};

enum edge_rule_action {
	EDGE_ACTION_NONE = 0, /* no block rule covers the hostname */
	EDGE_ACTION_BLOCK,    /* HTTP 403 page, then close */
	EDGE_ACTION_ALERT,    /* TLS alert during the handshake */
	EDGE_ACTION_DROP,     /* close silently */
};

enum edge_cert_status {
	EDGE_CERT_ABSENT = 0, /* the client sent no certificate */
	EDGE_CERT_VALID,
	EDGE_CERT_INVALID,
};

/* What the server asks of the client in the handshake. */
enum edge_cert_request {
	EDGE_REQUEST_NONE = 0, /* no CertificateRequest */
	EDGE_REQUEST_ASK,      /* ask; the handshake completes without one */
	EDGE_REQUEST_DEMAND,   /* ask; no certificate fails the handshake */
};

enum edge_verdict {
	EDGE_VERDICT_PASS = 0,   /* verified (or mTLS off): relay */
	EDGE_VERDICT_UNVERIFIED, /* optional mode: relay, verdict forwarded */
	EDGE_VERDICT_BLOCK,      /* rule: 403 page, close */
	EDGE_VERDICT_DROP,       /* rule: close silently */
	EDGE_VERDICT_REFUSE,     /* the handshake failed with a TLS alert */
};

enum edge_cert_request edge_policy_cert_request(enum edge_mtls_mode mode,
						enum edge_rule_action action);
/* Called when the chain fails verification during the handshake: true means
 * abort the handshake now with the verifier's TLS alert. */
bool edge_policy_abort_handshake(enum edge_mtls_mode mode, enum edge_rule_action action);
enum edge_verdict edge_policy_decide(enum edge_mtls_mode mode, enum edge_rule_action action,
				     enum edge_cert_status cert);

const char *edge_verdict_name(enum edge_verdict v);
const char *edge_mtls_mode_name(enum edge_mtls_mode m);
int edge_mtls_mode_parse(const char *s, enum edge_mtls_mode *out);
const char *edge_rule_action_name(enum edge_rule_action a);
int edge_rule_action_parse(const char *s, enum edge_rule_action *out);

#endif
