/* Unit tests for userspace/lib/fleet.c with real SQLite: a store's configuration exported as
 * keys and imported into a replica comes out row for row (revocations as keys of their own);
 * a replica refuses what is not a row: a key naming another row, an unknown column, a
 * revocation without its certificate, another schema, nothing published. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "store.h"
#include "tap.h"

static char err[512];

struct kvs {
	char *k[64], *v[64];
	int n;
};

static int collect(void *arg, const char *key, const char *value)
{
	struct kvs *l = arg;

	if (l->n == 64)
		return -E2BIG;
	l->k[l->n] = strdup(key);
	l->v[l->n] = strdup(value);
	l->n++;
	return 0;
}

static void kvs_free(struct kvs *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->k[i]);
		free(l->v[i]);
	}
	l->n = 0;
}

static const char *find(const struct kvs *l, const char *key)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->k[i], key))
			return l->v[i];
	return NULL;
}

static struct edge_store *open_store(const char *base, const char *name)
{
	char dir[512];
	struct edge_store *st = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (edge_store_open(dir, EDGE_STORE_CREATE, &st, err, sizeof(err)))
		BAIL_OUT("store %s: %s", dir, err);
	return st;
}

static void exec(struct edge_store *st, const char *sql)
{
	if (edge_store_exec(st, sql, err, sizeof(err)))
		BAIL_OUT("%s: %s", sql, err);
}

/* Every key of src into the replica's fleet_kv, then the import in a transaction. */
static int import_all(struct edge_store *rep, const struct kvs *src)
{
	int rc;

	exec(rep, "BEGIN IMMEDIATE");
	exec(rep, "DELETE FROM fleet_kv");
	for (int i = 0; i < src->n; i++)
		if (edge_fleet_kv_set(rep, src->k[i], src->v[i], i + 1, err, sizeof(err)))
			BAIL_OUT("kv_set: %s", err);
	rc = edge_fleet_import(rep, err, sizeof(err));
	if (rc)
		edge_store_rollback(rep);
	else
		exec(rep, "COMMIT");
	return rc;
}

int main(void)
{
	char tmpl[] = "/tmp/test_fleet.XXXXXX", *base = mkdtemp(tmpl), prefix[80];
	struct edge_store *ctl, *rep;
	struct kvs a = { 0 }, b = { 0 };
	const char *v;
	int same = 1;

	if (!base)
		BAIL_OUT("mkdtemp");
	ok(edge_fleet_prefix("prod-1", prefix, sizeof(prefix), err, sizeof(err)) == 0 &&
		   !strcmp(prefix, "/mtls-edge/prod-1/"),
	   "cluster prod-1 -> /mtls-edge/prod-1/");
	ok(edge_fleet_prefix("Prod/x", prefix, sizeof(prefix), err, sizeof(err)) == -EINVAL &&
		   strstr(err, "invalid cluster name"),
	   "a cluster name with '/' or capitals is refused: %s", err);
	ok(edge_fleet_node_ok("", err, sizeof(err)) == -EINVAL, "an empty node name is refused");

	ctl = open_store(base, "control");
	exec(ctl, "INSERT INTO site VALUES ('example.test', 1)");
	exec(ctl,
	     "INSERT INTO client_cert(serial, cn, key_type, fingerprint, not_before, not_after,"
	     " status, revoked_at, cert_pem, created_at) VALUES"
	     " ('0A', 'alice', 'ec', 'F1', 1, 2, 'active', NULL, 'PEM-A', 1),"
	     " ('0B', 'bob', 'ec', 'F2', 1, 2, 'revoked', 77, 'PEM-B', 1)");
	exec(ctl, "INSERT INTO ca(id, name, fingerprint, subject, not_before, not_after, pem,"
		  " created_at) VALUES (7, 'partners', 'FP', 'CN=p', 1, 2, 'PEM', 1)");
	exec(ctl, "INSERT INTO ca_host VALUES (7, 'api.example.test')");
	exec(ctl, "INSERT INTO sni(hostname, cert_file, key_file, upstream, created_at, updated_at,"
		  " alpn) VALUES ('api.example.test', '/c.pem', '/k.pem', '127.0.0.1:1', 1, 2,"
		  " 'h2,http/1.1')");
	exec(ctl, "INSERT INTO sni_cert VALUES ('api.example.test', 2, '/c2.pem', '/k2.pem')");
	exec(ctl, "INSERT INTO rule(id, action, created_at) VALUES (3, 'drop', 1)");
	exec(ctl, "INSERT INTO rule_host VALUES (3, '*.example.test')");
	exec(ctl, "INSERT INTO idrule(id, hostname, effect, field, value, created_at) VALUES"
		  " (5, 'api.example.test', 'allow', 'cn', 'alice', 1)");
	err[0] = '\0';
	ok(edge_fleet_export(ctl, collect, &a, err, sizeof(err)) == 0, "export%s", err);
	ok(find(&a, EDGE_FLEET_SCHEMA_KEY) != NULL, "meta/schema is a key");
	ok(find(&a, "sni/api.example.test") && find(&a, "sni_cert/api.example.test/2") &&
		   find(&a, "ca_host/7/api.example.test") &&
		   find(&a, "rule_host/3/*.example.test") && find(&a, "idrule/5") &&
		   find(&a, "site/example.test"),
	   "each row is a key named by its primary key");
	v = find(&a, "client_cert/0B");
	ok(v && !strstr(v, "revoked") && !strstr(v, "status"),
	   "a certificate's row carries no status: %s", v ? v : "(none)");
	is_str(find(&a, "revoked/0B"), "{\"revoked_at\":77}", "its revocation is a key of its own");
	ok(find(&a, "revoked/0A") == NULL, "an active certificate has no revoked/ key");
	{
		int below = 1;
		char end[EDGE_FLEET_END_MAX], pfx[EDGE_FLEET_PREFIX_MAX];

		for (int i = 0; i < a.n; i++)
			below = below && strcmp(a.k[i], EDGE_FLEET_STATUS_DIR) < 0;
		ok(below,
		   "every configuration key sorts before status/ (the edges watch up to it)");
		ok(edge_fleet_prefix("t1", pfx, sizeof(pfx), err, sizeof(err)) == 0, "a prefix");
		edge_fleet_config_end(pfx, end, sizeof(end));
		is_str(end, "/mtls-edge/t1/status/", "the configuration range ends at status/");
	}
	v = find(&a, "sni/api.example.test");
	ok(v && strstr(v, "\"alpn\":\"h2,http/1.1\"") && strstr(v, "\"upstream_ca\":null"),
	   "values are JSON: text, integers, null: %s", v ? v : "(none)");

	rep = open_store(base, "edge");
	ok(edge_fleet_replica_init(rep, err, sizeof(err)) == 0, "the replica's fleet_kv table");
	ok(import_all(rep, &a) == 0, "the keys import into a replica%s", err);
	ok(edge_fleet_export(rep, collect, &b, err, sizeof(err)) == 0 && a.n == b.n,
	   "the replica exports as many keys (%d, %d)", a.n, b.n);
	for (int i = 0; i < a.n; i++) {
		const char *w = find(&b, a.k[i]);

		if (!w || strcmp(w, a.v[i])) {
			same = 0;
			printf("# %s: %s vs %s\n", a.k[i], a.v[i], w ? w : "(missing)");
		}
	}
	ok(same, "... and the same ones, value for value");

	/* Refusals: each on top of the good keys, and the replica keeps its rows. */
	struct {
		const char *key, *value, *want;
	} bad[] = {
		{ "sni/web.example.test", "{\"hostname\":\"other.example.test\"}",
		  "holds the row of" },
		{ "site/x.test", "{\"domain\":\"x.test\",\"created_at\":1,\"evil\":1}",
		  "has no column 'evil'" },
		{ "site/y.test", "not json", "no JSON object" },
		{ "revoked/FF", "{\"revoked_at\":1}", "no certificate FF" },
		{ EDGE_FLEET_SCHEMA_KEY, "{\"schema_version\":999}",
		  "this mtls-edged reads schema" },
		{ "client_cert/0C",
		  "{\"serial\":\"0C\",\"cn\":\"c\",\"key_type\":\"ec\",\"fingerprint\":\"F\","
		  "\"not_before\":1,\"not_after\":2,\"cert_pem\":\"P\",\"created_at\":1,"
		  "\"status\":\"active\"}",
		  "has no column 'status'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvs c = { 0 };
		bool replaced = false;

		for (int k = 0; k < a.n; k++) {
			bool here = !strcmp(a.k[k], bad[i].key);

			collect(&c, a.k[k], here ? bad[i].value : a.v[k]);
			replaced |= here;
		}
		if (!replaced)
			collect(&c, bad[i].key, bad[i].value);
		err[0] = '\0';
		ok(import_all(rep, &c) == -EPROTO && strstr(err, bad[i].want),
		   "refused: %s = %s: %s", bad[i].key, bad[i].value, err);
		kvs_free(&c);
	}
	{
		struct kvs none = { 0 };

		ok(import_all(rep, &none) == -EPROTO && strstr(err, "nothing published"),
		   "no meta/schema: nothing published: %s", err);
	}
	ok(edge_store_schema_version(rep) > 0, "the replica is still a store");
	{
		sqlite3_stmt *q = edge_store_prepare(rep, "SELECT count(*) FROM sni", err,
						     sizeof(err));

		ok(q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1,
		   "after the refusals the replica keeps its rows");
		sqlite3_finalize(q);
	}
	/* begin_read inside an open transaction sees its writes (the replica's check) */
	exec(rep, "BEGIN IMMEDIATE");
	exec(rep, "DELETE FROM site");
	ok(edge_store_begin_read(rep, err, sizeof(err)) == 0, "begin_read nests in a transaction");
	{
		sqlite3_stmt *q = edge_store_prepare(rep, "SELECT count(*) FROM site", err,
						     sizeof(err));

		ok(q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0,
		   "... and sees the transaction's own writes");
		sqlite3_finalize(q);
	}
	edge_store_end_read(rep);
	edge_store_rollback(rep);
	{
		sqlite3_stmt *q = edge_store_prepare(rep, "SELECT count(*) FROM site", err,
						     sizeof(err));

		ok(q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1,
		   "end_read did not commit it: the rollback undid it");
		sqlite3_finalize(q);
	}
	kvs_free(&a);
	kvs_free(&b);
	edge_store_close(ctl);
	edge_store_close(rep);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd))
			printf("# could not remove %s\n", base);
	}
	return tap_done();
}
