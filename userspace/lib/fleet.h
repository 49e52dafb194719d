/*
 * A fleet's configuration as etcd keys: what the control store publishes and what an edge's
 * replica is rebuilt from. Under one prefix per cluster, "/mtls-edge/CLUSTER/":
 *
 *   meta/schema                {"schema_version":5}: the store schema the rows are in
 *   meta/commit                {"generation":G,"at":T}: written last by every publish; an
 *                              edge applies the keys as they are at a revision that wrote it
 *   site/DOMAIN                one key per row of each configuration table, the row as a
 *   builtin_ca/1               JSON object of its columns (text, integers, null), keyed by
 *   client_cert/SERIAL         its primary key ('/' between the columns of a composite one)
 *   ca/ID, ca_host/ID/HOST
 *   sni/HOST, sni_cert/HOST/POS
 *   rule/ID, rule_host/ID/HOST
 *   idrule/ID
 *   revoked/SERIAL             {"revoked_at":T}: a revoked certificate of the built-in CA
 *                              (its client_cert row carries no status: revocations are keys
 *                              of their own, small and watched)
 *   status/NODE                what an edge says of itself (edges write only this)
 *
 * Never in etcd: the built-in CA's private key (STATE/ca/builtin.key, not in the store) and
 * SNI objects' server keys: sni rows carry file paths, which every edge host provides.
 *
 * An edge's replica is an ordinary store (state.db) with one more table, fleet_kv(key,
 * value, mod_revision): etcd's keys as last seen, relative to the prefix. The
 * configuration tables are rebuilt from it (edge_fleet_import) inside the transaction
 * that also checks the result (a snapshot built from it) before it commits.
 */
#ifndef EDGE_FLEET_H
#define EDGE_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define EDGE_FLEET_CLUSTER_MAX 63
#define EDGE_FLEET_PREFIX_MAX (EDGE_FLEET_CLUSTER_MAX + 16)
#define EDGE_FLEET_END_MAX (EDGE_FLEET_PREFIX_MAX + 8)
#define EDGE_FLEET_NODE_MAX 63
#define EDGE_FLEET_COMMIT_KEY "meta/commit"
#define EDGE_FLEET_SCHEMA_KEY "meta/schema"
#define EDGE_FLEET_STATUS_DIR "status/"

/* "/mtls-edge/CLUSTER/" for a cluster name of 1..63 of [a-z0-9._-]. */
int edge_fleet_prefix(const char *cluster, char *out, size_t outlen, char *err, size_t errlen);
/* The end of the configuration's key range, prefix + "status/": every configuration key sorts
 * before the status keys, so an edge reads and watches [prefix, end) and never sees what the
 * other edges write of themselves (with thousands of edges, that fan-out would be most of
 * each watch's traffic). A table whose name sorts after "status" is refused by the export. */
void edge_fleet_config_end(const char *prefix, char *out, size_t outlen);
/* A node name: 1..63 of [A-Za-z0-9._-]. */
int edge_fleet_node_ok(const char *node, char *err, size_t errlen);

/* The store's configuration as relative keys and JSON values, each key once, in key order
 * per table; fn's non-zero return stops it and is returned. Inside the caller's
 * transaction (the control publishes what it is about to commit). */
typedef int (*edge_fleet_kv_fn)(void *arg, const char *key, const char *value);
int edge_fleet_export(struct edge_store *st, edge_fleet_kv_fn fn, void *arg, char *err,
		      size_t errlen);

/* meta rows the fleet code keeps (fleet_role, fleet_revision...): value malloc'd, NULL when
 * absent; set inside the caller's write transaction. */
int edge_store_meta_get(struct edge_store *st, const char *key, char **value);
int edge_store_meta_set(struct edge_store *st, const char *key, const char *value, char *err,
			size_t errlen);

/* The replica's fleet_kv table, made if missing. */
int edge_fleet_replica_init(struct edge_store *st, char *err, size_t errlen);
/* fleet_kv: one key put (value) or deleted (value NULL); all of them gone (a full re-read). */
int edge_fleet_kv_set(struct edge_store *st, const char *key, const char *value,
		      int64_t mod_revision, char *err, size_t errlen);
int edge_fleet_kv_clear(struct edge_store *st, char *err, size_t errlen);
/* fleet_kv's value of a key (malloc'd; NULL: absent) and its mod_revision. */
int edge_fleet_kv_get(struct edge_store *st, const char *key, char **value, int64_t *mod_revision);

/* A full re-read after etcd's revision went backwards (etcd restored from a backup) must not
 * re-admit a certificate this edge has seen revoked: before fleet_kv is cleared, its revoked/
 * keys are kept aside (in the caller's transaction); after the re-read, *lost is how many of
 * them etcd no longer has, the first few serials in list ("0A, 0B, ..."). */
int edge_fleet_kv_keep_revoked(struct edge_store *st, char *err, size_t errlen);
int edge_fleet_kv_lost_revoked(struct edge_store *st, size_t *lost, char *list, size_t listlen,
			       char *err, size_t errlen);

/* The configuration tables rebuilt from fleet_kv, in the caller's transaction: every row
 * checked (the key names its row, the columns are the table's, the schema is this build's).
 * On an error nothing is undone here: the caller rolls back to its savepoint. */
int edge_fleet_import(struct edge_store *st, char *err, size_t errlen);

#endif
