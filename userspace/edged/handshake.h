/*
 * The client's TLS handshake: the ClientHello callback picks the SNI object,
 * the verify callback runs the verifier and records, and the policy module
 * decides the verdict. It returns its result to the state machine (conn.c);
 * it never starts what comes next.
 */
#ifndef EDGE_HANDSHAKE_H
#define EDGE_HANDSHAKE_H

#include <stdbool.h>

#include "conn.h"
#include "snapshot.h"

enum edge_hs_result {
	EDGE_HS_WAIT = 0, /* a poll is armed: call edge_handshake_step again on it */
	EDGE_HS_DONE,     /* complete: c->verdict says what follows */
	EDGE_HS_FAILED,   /* failed: counted and logged (c->hs_fail says why) */
};

/* The hooks every snapshot's SSL_CTXs get (with the kTLS secrets' keylog or not). */
const struct edge_tls_hooks *edge_handshake_hooks(bool ktls, bool own_records);
int edge_handshake_init(void);
/* The client's SSL on its socket: 0 or -ENOMEM. */
int edge_handshake_start(struct edge_conn *c);
enum edge_hs_result edge_handshake_step(struct edge_conn *c);
/* A failed handshake (c->hs_fail set): counters, metrics, the log line. */
void edge_handshake_report_failure(struct edge_conn *c);

#endif
