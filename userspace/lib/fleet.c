/* A fleet's configuration as etcd keys: fleet.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fleet.h"

/* The configuration tables, parents before children (inserts in this order, deletes in the
 * other); pk: the key's columns; skip: columns that travel as keys of their own. */
struct fleet_table {
	const char *name;
	const char *pk[2];
	const char *skip[2];
};
static const struct fleet_table tables[] = {
	{ "site", { "domain" }, { NULL } },
	{ "builtin_ca", { "id" }, { NULL } },
	{ "client_cert", { "serial" }, { "status", "revoked_at" } },
	{ "ca", { "id" }, { NULL } },
	{ "ca_host", { "ca_id", "hostname" }, { NULL } },
	{ "sni", { "hostname" }, { NULL } },
	{ "sni_cert", { "hostname", "pos" }, { NULL } },
	{ "rule", { "id" }, { NULL } },
	{ "rule_host", { "rule_id", "hostname" }, { NULL } },
	{ "idrule", { "id" }, { NULL } },
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))
#define KEY_MAX 512

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static bool name_ok(const char *s, size_t max, bool upper)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || (upper && c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

int edge_fleet_prefix(const char *cluster, char *out, size_t outlen, char *err, size_t errlen)
{
	if (!name_ok(cluster, EDGE_FLEET_CLUSTER_MAX, false))
		return fail(err, errlen, -EINVAL,
			    "invalid cluster name '%s': 1 to %d of a-z, 0-9, '.', '_', '-'",
			    cluster, EDGE_FLEET_CLUSTER_MAX);
	snprintf(out, outlen, "/mtls-edge/%s/", cluster);
	return 0;
}

void edge_fleet_config_end(const char *prefix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s", prefix, EDGE_FLEET_STATUS_DIR);
}

int edge_fleet_node_ok(const char *node, char *err, size_t errlen)
{
	if (!name_ok(node, EDGE_FLEET_NODE_MAX, true))
		return fail(err, errlen, -EINVAL,
			    "invalid node name '%s': 1 to %d of A-Z, a-z, 0-9, '.', '_', '-'", node,
			    EDGE_FLEET_NODE_MAX);
	return 0;
}

static bool skipped(const struct fleet_table *t, const char *col)
{
	for (int i = 0; i < 2; i++)
		if (t->skip[i] && !strcmp(t->skip[i], col))
			return true;
	return false;
}

static sqlite3_stmt *prep(struct edge_store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;

	if (sqlite3_prepare_v2(edge_store_db(st), sql, -1, &q, NULL) != SQLITE_OK) {
		fail(err, errlen, -EIO, "store: %s", sqlite3_errmsg(edge_store_db(st)));
		return NULL;
	}
	return q;
}

/* A row as JSON (sorted keys, compact: the same row is the same bytes) and its key. */
static int row_json(const struct fleet_table *t, sqlite3_stmt *q, char *key, size_t keylen,
		    char **value, char *err, size_t errlen)
{
	json_t *o = json_object();
	size_t off = (size_t)snprintf(key, keylen, "%s", t->name);
	int n = sqlite3_column_count(q);

	if (!o)
		return -ENOMEM;
	for (int k = 0; k < 2 && t->pk[k]; k++) {
		for (int i = 0; i < n; i++) {
			if (strcmp(sqlite3_column_name(q, i), t->pk[k]))
				continue;
			off += (size_t)snprintf(key + off, off < keylen ? keylen - off : 0, "/%s",
						(const char *)sqlite3_column_text(q, i));
		}
	}
	if (off >= keylen) {
		json_decref(o);
		return fail(err, errlen, -E2BIG, "%s: a key longer than %zu bytes", t->name,
			    keylen);
	}
	for (int i = 0; i < n; i++) {
		const char *col = sqlite3_column_name(q, i);
		json_t *v;

		if (skipped(t, col))
			continue;
		switch (sqlite3_column_type(q, i)) {
		case SQLITE_INTEGER:
			v = json_integer(sqlite3_column_int64(q, i));
			break;
		case SQLITE_NULL:
			v = json_null();
			break;
		case SQLITE_TEXT:
			v = json_stringn((const char *)sqlite3_column_text(q, i),
					 (size_t)sqlite3_column_bytes(q, i));
			break;
		default:
			json_decref(o);
			return fail(err, errlen, -EPROTO, "%s.%s: neither text nor an integer",
				    t->name, col);
		}
		if (!v || json_object_set_new(o, col, v)) {
			json_decref(o);
			return -ENOMEM;
		}
	}
	*value = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return *value ? 0 : -ENOMEM;
}

static int export_table(struct edge_store *st, const struct fleet_table *t, edge_fleet_kv_fn fn,
			void *arg, char *err, size_t errlen)
{
	char sql[160], key[KEY_MAX];
	sqlite3_stmt *q;
	int rc = 0, s;

	snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY %s%s%s", t->name, t->pk[0],
		 t->pk[1] ? ", " : "", t->pk[1] ? t->pk[1] : "");
	/* the edges watch the keys below status/ only (edge_fleet_config_end) */
	if (strcmp(t->name, "status") >= 0)
		return fail(err, errlen, -EINVAL,
			    "fleet: table %s sorts after status/, out of the range the edges watch",
			    t->name);
	if (!(q = prep(st, sql, err, errlen)))
		return -EIO;
	while (!rc && (s = sqlite3_step(q)) == SQLITE_ROW) {
		char *v = NULL;

		rc = row_json(t, q, key, sizeof(key), &v, err, errlen);
		if (!rc)
			rc = fn(arg, key, v);
		free(v);
	}
	if (!rc && s != SQLITE_DONE)
		rc = fail(err, errlen, -EIO, "store: %s", sqlite3_errmsg(edge_store_db(st)));
	sqlite3_finalize(q);
	return rc;
}

int edge_fleet_export(struct edge_store *st, edge_fleet_kv_fn fn, void *arg, char *err,
		      size_t errlen)
{
	char key[KEY_MAX], v[64];
	sqlite3_stmt *q;
	int rc, s;

	snprintf(v, sizeof(v), "{\"schema_version\":%d}", edge_store_schema_version(st));
	if ((rc = fn(arg, EDGE_FLEET_SCHEMA_KEY, v)))
		return rc;
	for (size_t i = 0; i < N_TABLES; i++)
		if ((rc = export_table(st, &tables[i], fn, arg, err, errlen)))
			return rc;
	q = prep(st,
		 "SELECT serial, revoked_at FROM client_cert WHERE status = 'revoked' ORDER BY serial",
		 err, errlen);
	if (!q)
		return -EIO;
	while (!rc && (s = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(key, sizeof(key), "revoked/%s", (const char *)sqlite3_column_text(q, 0));
		snprintf(v, sizeof(v), "{\"revoked_at\":%lld}",
			 (long long)sqlite3_column_int64(q, 1));
		rc = fn(arg, key, v);
	}
	if (!rc && s != SQLITE_DONE)
		rc = fail(err, errlen, -EIO, "store: %s", sqlite3_errmsg(edge_store_db(st)));
	sqlite3_finalize(q);
	return rc;
}

/* sql's first row for key: its text column 0 (malloc'd; NULL: no row) and, when rev is
 * given, its integer column 1. */
static int get_row(struct edge_store *st, const char *sql, const char *key, char **value,
		   int64_t *rev)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;

	*value = NULL;
	if (rev)
		*rev = 0;
	if (sqlite3_prepare_v2(edge_store_db(st), sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		*value = strdup((const char *)sqlite3_column_text(q, 0));
		if (rev)
			*rev = sqlite3_column_int64(q, 1);
		if (!*value)
			rc = -ENOMEM;
	}
	sqlite3_finalize(q);
	return rc;
}

/* sql (key, then value unless it is NULL) run once. */
static int set_row(struct edge_store *st, const char *sql, const char *key, const char *value,
		   int64_t rev, char *err, size_t errlen)
{
	sqlite3_stmt *q = prep(st, sql, err, errlen);
	int s;

	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	if (value) {
		sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
		if (sqlite3_bind_parameter_count(q) == 3)
			sqlite3_bind_int64(q, 3, rev);
	}
	s = sqlite3_step(q);
	sqlite3_finalize(q);
	if (s != SQLITE_DONE)
		return fail(err, errlen, -EIO, "store: %s", sqlite3_errmsg(edge_store_db(st)));
	return 0;
}

int edge_store_meta_get(struct edge_store *st, const char *key, char **value)
{
	return get_row(st, "SELECT value FROM meta WHERE key = ?", key, value, NULL);
}

int edge_store_meta_set(struct edge_store *st, const char *key, const char *value, char *err,
			size_t errlen)
{
	return set_row(st,
		       value ? "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
			     : "DELETE FROM meta WHERE key = ?",
		       key, value, 0, err, errlen);
}

int edge_fleet_replica_init(struct edge_store *st, char *err, size_t errlen)
{
	return edge_store_exec(st,
			       "CREATE TABLE IF NOT EXISTS fleet_kv(key TEXT PRIMARY KEY,"
			       " value TEXT NOT NULL, mod_revision INTEGER NOT NULL)",
			       err, errlen);
}

int edge_fleet_kv_set(struct edge_store *st, const char *key, const char *value,
		      int64_t mod_revision, char *err, size_t errlen)
{
	return set_row(st,
		       value ? "INSERT OR REPLACE INTO fleet_kv(key, value, mod_revision)"
			       " VALUES (?, ?, ?)"
			     : "DELETE FROM fleet_kv WHERE key = ?",
		       key, value, mod_revision, err, errlen);
}

int edge_fleet_kv_clear(struct edge_store *st, char *err, size_t errlen)
{
	return edge_store_exec(st, "DELETE FROM fleet_kv", err, errlen);
}

int edge_fleet_kv_get(struct edge_store *st, const char *key, char **value, int64_t *mod_revision)
{
	return get_row(st, "SELECT value, mod_revision FROM fleet_kv WHERE key = ?", key, value,
		       mod_revision);
}

/* ---- import ---- */

/* Whether col is one of the table's columns (its PRAGMA table_info). */
static bool has_column(struct edge_store *st, const char *table, const char *col)
{
	char sql[96];
	sqlite3_stmt *q;
	bool found = false;

	snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	if (sqlite3_prepare_v2(edge_store_db(st), sql, -1, &q, NULL) != SQLITE_OK)
		return false;
	while (!found && sqlite3_step(q) == SQLITE_ROW)
		found = !strcmp((const char *)sqlite3_column_text(q, 1), col);
	sqlite3_finalize(q);
	return found;
}

static int bind_json(sqlite3_stmt *q, int i, json_t *v)
{
	if (json_is_integer(v))
		return sqlite3_bind_int64(q, i, json_integer_value(v));
	if (json_is_string(v))
		return sqlite3_bind_text(q, i, json_string_value(v), (int)json_string_length(v),
					 SQLITE_TRANSIENT);
	if (json_is_null(v))
		return sqlite3_bind_null(q, i);
	return SQLITE_MISMATCH;
}

/* The key a row's values make (as export writes it). */
static void key_of(const struct fleet_table *t, json_t *row, char *key, size_t keylen)
{
	size_t off = (size_t)snprintf(key, keylen, "%s", t->name);

	for (int k = 0; k < 2 && t->pk[k]; k++) {
		json_t *v = json_object_get(row, t->pk[k]);
		char num[24];
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;

		if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			s = num;
		}
		off += (size_t)snprintf(key + off, off < keylen ? keylen - off : 0, "/%s",
					s ? s : "\x01");
	}
}

static int insert_row(struct edge_store *st, const struct fleet_table *t, const char *key,
		      const char *value, char *err, size_t errlen)
{
	json_error_t je;
	json_t *row = json_loads(value, 0, &je), *v;
	char sql[2048], want[KEY_MAX];
	size_t off, n = 0;
	const char *col;
	sqlite3_stmt *q;
	int rc = 0, i = 0;

	if (!json_is_object(row)) {
		json_decref(row);
		return fail(err, errlen, -EPROTO, "key %s: its value is no JSON object", key);
	}
	key_of(t, row, want, sizeof(want));
	if (strcmp(want, key)) {
		json_decref(row);
		return fail(err, errlen, -EPROTO, "key %s holds the row of %s", key, want);
	}
	off = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s(", t->name);
	json_object_foreach(row, col, v) {
		if (skipped(t, col) || !has_column(st, t->name, col)) {
			/* col is the row's: said before the row goes */
			rc = fail(err, errlen, -EPROTO, "key %s: %s has no column '%s'", key,
				  t->name, col);
			json_decref(row);
			return rc;
		}
		off += (size_t)snprintf(sql + off, off < sizeof(sql) ? sizeof(sql) - off : 0,
					"%s%s", n ? ", " : "", col);
		n++;
	}
	off += (size_t)snprintf(sql + off, off < sizeof(sql) ? sizeof(sql) - off : 0, ") VALUES (");
	for (size_t k = 0; k < n; k++)
		off += (size_t)snprintf(sql + off, off < sizeof(sql) ? sizeof(sql) - off : 0, "%s?",
					k ? ", " : "");
	off += (size_t)snprintf(sql + off, off < sizeof(sql) ? sizeof(sql) - off : 0, ")");
	if (off >= sizeof(sql) || !n) {
		json_decref(row);
		return fail(err, errlen, -EPROTO, "key %s: a row of %zu columns", key, n);
	}
	if (!(q = prep(st, sql, err, errlen))) {
		json_decref(row);
		return -EIO;
	}
	json_object_foreach(row, col, v) {
		if (bind_json(q, ++i, v) != SQLITE_OK) {
			rc = fail(err, errlen, -EPROTO, "key %s: %s is neither text nor an integer",
				  key, col);
			break;
		}
	}
	if (!rc && sqlite3_step(q) != SQLITE_DONE)
		rc = fail(err, errlen, -EPROTO, "key %s: the store refused the row: %s", key,
			  sqlite3_errmsg(edge_store_db(st)));
	sqlite3_finalize(q);
	json_decref(row);
	return rc;
}

/* Every fleet_kv key under DIR/ ("site/..."), in key order: fn(key, value). */
static int each_under(struct edge_store *st, const char *dir,
		      int (*fn)(struct edge_store *st, const void *ctx, const char *key,
				const char *value, char *err, size_t errlen),
		      const void *ctx, char *err, size_t errlen)
{
	char lo[80], hi[80];
	sqlite3_stmt *q = prep(st,
			       "SELECT key, value FROM fleet_kv WHERE key >= ? AND key < ?"
			       " ORDER BY key",
			       err, errlen);
	int rc = 0, s;

	if (!q)
		return -EIO;
	snprintf(lo, sizeof(lo), "%s/", dir);
	snprintf(hi, sizeof(hi), "%s0", dir); /* '0' follows '/' */
	sqlite3_bind_text(q, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, hi, -1, SQLITE_STATIC);
	while (!rc && (s = sqlite3_step(q)) == SQLITE_ROW)
		rc = fn(st, ctx, (const char *)sqlite3_column_text(q, 0),
			(const char *)sqlite3_column_text(q, 1), err, errlen);
	if (!rc && s != SQLITE_DONE)
		rc = fail(err, errlen, -EIO, "replica: %s", sqlite3_errmsg(edge_store_db(st)));
	sqlite3_finalize(q);
	return rc;
}

int edge_fleet_kv_keep_revoked(struct edge_store *st, char *err, size_t errlen)
{
	int rc = edge_store_exec(st,
				 "CREATE TEMP TABLE IF NOT EXISTS fleet_revoked_kept"
				 " (key TEXT PRIMARY KEY)",
				 err, errlen);

	if (!rc)
		rc = edge_store_exec(st, "DELETE FROM fleet_revoked_kept", err, errlen);
	if (!rc)
		rc = edge_store_exec(st,
				     "INSERT INTO fleet_revoked_kept SELECT key FROM fleet_kv"
				     " WHERE key >= 'revoked/' AND key < 'revoked0'",
				     err, errlen);
	return rc;
}

int edge_fleet_kv_lost_revoked(struct edge_store *st, size_t *lost, char *list, size_t listlen,
			       char *err, size_t errlen)
{
	sqlite3_stmt *q = prep(st,
			       "SELECT substr(key, 9) FROM fleet_revoked_kept"
			       " WHERE key NOT IN (SELECT key FROM fleet_kv) ORDER BY key",
			       err, errlen);
	size_t used = 0;
	int s;

	*lost = 0;
	if (listlen)
		list[0] = '\0';
	if (!q)
		return -EIO;
	while ((s = sqlite3_step(q)) == SQLITE_ROW) {
		if (++*lost <= 5 && used < listlen)
			used += (size_t)snprintf(list + used, listlen - used, "%s%s",
						 *lost > 1 ? ", " : "", sqlite3_column_text(q, 0));
	}
	if (*lost > 5 && used < listlen)
		snprintf(list + used, listlen - used, ", ...");
	sqlite3_finalize(q);
	if (s != SQLITE_DONE)
		return fail(err, errlen, -EIO, "replica: %s", sqlite3_errmsg(edge_store_db(st)));
	return 0;
}

static int insert_cb(struct edge_store *st, const void *ctx, const char *key, const char *value,
		     char *err, size_t errlen)
{
	return insert_row(st, ctx, key, value, err, errlen);
}

static int revoke_cb(struct edge_store *st, const void *ctx, const char *key, const char *value,
		     char *err, size_t errlen)
{
	const char *serial = key + strlen("revoked/");
	json_t *o = json_loads(value, 0, NULL);
	json_t *at = json_object_get(o, "revoked_at");
	sqlite3_stmt *q;
	int rc = 0;

	if (!json_is_integer(at)) {
		json_decref(o);
		return fail(err, errlen, -EPROTO, "key %s: no \"revoked_at\" time", key);
	}
	q = prep(st, "UPDATE client_cert SET status = 'revoked', revoked_at = ? WHERE serial = ?",
		 err, errlen);
	if (!q) {
		json_decref(o);
		return -EIO;
	}
	sqlite3_bind_int64(q, 1, json_integer_value(at));
	sqlite3_bind_text(q, 2, serial, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = fail(err, errlen, -EIO, "replica: %s", sqlite3_errmsg(edge_store_db(st)));
	else if (!sqlite3_changes(edge_store_db(st)))
		rc = fail(err, errlen, -EPROTO, "key %s: no certificate %s (client_cert/%s)", key,
			  serial, serial);
	sqlite3_finalize(q);
	json_decref(o);
	return rc;
}

static int check_schema(struct edge_store *st, char *err, size_t errlen)
{
	char *v = NULL;
	int64_t rev;
	json_t *o, *ver;
	int rc = 0;

	edge_fleet_kv_get(st, EDGE_FLEET_SCHEMA_KEY, &v, &rev);
	if (!v)
		return fail(err, errlen, -EPROTO, "no %s key: nothing published for this cluster",
			    EDGE_FLEET_SCHEMA_KEY);
	o = json_loads(v, 0, NULL);
	ver = json_object_get(o, "schema_version");
	if (!json_is_integer(ver) || json_integer_value(ver) != edge_store_schema_version(st))
		rc = fail(err, errlen, -EPROTO,
			  "the control publishes store schema %s; this mtls-edged reads schema %d"
			  " (upgrade the one that is behind)",
			  v, edge_store_schema_version(st));
	json_decref(o);
	free(v);
	return rc;
}

int edge_fleet_import(struct edge_store *st, char *err, size_t errlen)
{
	char sql[64];
	int rc;

	if ((rc = check_schema(st, err, errlen)))
		return rc;
	for (size_t i = N_TABLES; i-- > 0;) {
		snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i].name);
		if ((rc = edge_store_exec(st, sql, err, errlen)))
			return rc;
	}
	for (size_t i = 0; i < N_TABLES; i++)
		if ((rc = each_under(st, tables[i].name, insert_cb, &tables[i], err, errlen)))
			return rc;
	return each_under(st, "revoked", revoke_cb, NULL, err, errlen);
}
