/*
 * The state store: one SQLite database (WAL) in the state directory, shared by
 * mtls-edgectl (writer) and mtls-edged (reader). Schema v5:
 *
 *   meta(key, value)               schema_version, generation (bumped per write)
 *   site(domain)                   apex domains; bound hostnames must fall under one
 *   builtin_ca(id=1, ...)          the installation's CA certificate; its private
 *                                  key lives in STATE/ca/builtin.key (0600), never here;
 *                                  trust_domain (v3): the SPIFFE trust domain it vouches
 *                                  for, NULL: none
 *   client_cert(serial, ...)       certificates issued by the built-in CA (no keys)
 *   ca(id, name, pem, crl_pem...)  uploaded client CAs (at most EDGE_MAX_UPLOADED_CAS);
 *                                  trust_domain (v3) as for builtin_ca
 *   ca_host(ca_id, hostname)       CA <-> hostname bindings
 *   sni(hostname, ...)             SNI objects; server cert and key are file paths;
 *                                  upstream_tls on: upstream_ca (verify), upstream_cert
 *                                  and upstream_key (mTLS to the upstream), upstream_sni;
 *                                  protocol tcp|http (v2; a v1 store gets the column,
 *                                  every row 'tcp', when mtls-edgectl first opens it);
 *                                  ca_hints trusted|none|list (v3, default trusted) and
 *                                  ca_hints_pem (list: the CA certificates, PEM, whose
 *                                  subjects the CertificateRequest names);
 *                                  alpn (v5): ALPN tokens, ',' between, server order,
 *                                  '' none; no_alpn allow|refuse (v5): a client that
 *                                  offers none
 *   sni_cert(hostname, pos,        an SNI object's further server certificates (v4): the
 *            cert_file, key_file)  first pair is sni's cert_file and key_file, these the
 *                                  others (pos 2..EDGE_MAX_CERTS_PER_SNI, in the order
 *                                  given), one per key type (rsa, ecdsa, ed25519: checked
 *                                  on the files, by the CLI and the snapshot); deleted
 *                                  with their sni row
 *   rule(id, action), rule_host    block rules and their hostname conditions
 *   idrule(id, hostname, effect,   identity rules (v3): allow|deny entries on one parsed
 *          field, value)           field of the leaf (edge_authz_field_name()), the value
 *                                  in edge_authz_normalize()'s canonical form; unique per
 *                                  (hostname, effect, field, value), at most
 *                                  EDGE_MAX_IDRULES_PER_HOST per hostname
 *
 * Timestamps are Unix seconds. Serials and fingerprints are upper-case hex.
 */
#ifndef EDGE_STORE_H
#define EDGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define EDGE_STORE_FILE "state.db"
#define EDGE_STORE_CA_KEY "ca/builtin.key"
#define EDGE_ADMIN_SOCKET "mtls-edged.sock"
#define EDGE_SCHEMA_VERSION 5
/* The oldest schema a read-only open (the daemon's) accepts without a migration. */
#define EDGE_SCHEMA_VERSION_READ_MIN 1
#define EDGE_MAX_UPLOADED_CAS 5
#define EDGE_MAX_HOSTS_PER_BIND 50
#define EDGE_MAX_IDRULES_PER_HOST 1000
/* Server certificates of one SNI object: one per key type (RSA, ECDSA, Ed25519). */
#define EDGE_MAX_CERTS_PER_SNI 3
/* ALPN of one SNI object: at most this many tokens, each 1..EDGE_ALPN_TOKEN_MAX bytes of
 * printable ASCII other than ','. */
#define EDGE_MAX_ALPN 8
#define EDGE_ALPN_TOKEN_MAX 32

enum edge_store_flags {
	EDGE_STORE_RDONLY = 1 << 0, /* daemon: never writes */
	EDGE_STORE_CREATE = 1 << 1, /* init: create the directory and schema */
};

struct edge_store;

/* Opens STATE/state.db. Without EDGE_STORE_CREATE a missing store is -ENOENT
 * with "no store in DIR (run 'mtls-edgectl init')" in err. A read-write open
 * migrates an older schema to EDGE_SCHEMA_VERSION (one transaction, every row
 * kept); EDGE_STORE_RDONLY never does, and accepts EDGE_SCHEMA_VERSION_READ_MIN
 * up to EDGE_SCHEMA_VERSION. A newer schema is -EPROTO either way. */
int edge_store_open(const char *state_dir, int flags, struct edge_store **out, char *err,
		    size_t errlen);
/* meta.schema_version as it is now (0: none); read it inside the read
 * transaction whose rows depend on it. */
int edge_store_schema_version(struct edge_store *st);
void edge_store_close(struct edge_store *st);
sqlite3 *edge_store_db(struct edge_store *st);
const char *edge_store_dir(const struct edge_store *st);

/* BEGIN IMMEDIATE: writers are serialised (busy timeout 10 s). */
int edge_store_begin(struct edge_store *st, char *err, size_t errlen);
/* Bumps meta.generation and commits. */
int edge_store_commit(struct edge_store *st, char *err, size_t errlen);
void edge_store_rollback(struct edge_store *st);
/* A consistent read: BEGIN (deferred) ... edge_store_end_read(). Inside a transaction
 * already open on this connection, both do nothing: the read sees that transaction's
 * writes (a fleet replica checks a revision before it commits it). */
int edge_store_begin_read(struct edge_store *st, char *err, size_t errlen);
void edge_store_end_read(struct edge_store *st);

/* meta.generation: changes on every committed write. */
int edge_store_generation(struct edge_store *st, int64_t *gen);

/* Runs one statement without results; fills err with SQLite's message. */
int edge_store_exec(struct edge_store *st, const char *sql, char *err, size_t errlen);

/* Prepares sql or fills err; returns NULL on failure. */
sqlite3_stmt *edge_store_prepare(struct edge_store *st, const char *sql, char *err, size_t errlen);

#endif
