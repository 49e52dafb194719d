/* Unit tests for userspace/store.c with real SQLite in a fresh temp directory:
 * schema creation, reopen, generation bumps, rollback, writer serialisation,
 * read-only opens, the v1 -> v4, v2 -> v4 and v3 -> v4 migrations, refusal of a
 * newer schema. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

static char err[512];

static int64_t count(struct edge_store *st, const char *sql)
{
	sqlite3_stmt *s = edge_store_prepare(st, sql, err, sizeof(err));
	int64_t v = -1;

	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Schema v1 as the first release created it, word for word. */
static const char *const schema_v1 =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE site(domain TEXT PRIMARY KEY, created_at INTEGER NOT NULL);"
	"CREATE TABLE builtin_ca(id INTEGER PRIMARY KEY CHECK (id = 1),"
	" cert_pem TEXT NOT NULL, key_type TEXT NOT NULL, subject TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE client_cert(serial TEXT PRIMARY KEY, cn TEXT NOT NULL,"
	" sans TEXT NOT NULL DEFAULT '', key_type TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'active'"
	" CHECK (status IN ('active','revoked')), revoked_at INTEGER,"
	" cert_pem TEXT NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE ca(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
	" fingerprint TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
	" not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, pem TEXT NOT NULL,"
	" crl_pem TEXT, crl_next_update INTEGER, created_at INTEGER NOT NULL);"
	"CREATE TABLE ca_host(ca_id INTEGER NOT NULL REFERENCES ca(id) ON DELETE CASCADE,"
	" hostname TEXT NOT NULL, PRIMARY KEY (ca_id, hostname));"
	"CREATE INDEX ca_host_by_name ON ca_host(hostname);"
	"CREATE TABLE sni(hostname TEXT PRIMARY KEY, cert_file TEXT NOT NULL,"
	" key_file TEXT NOT NULL, tls_min TEXT NOT NULL DEFAULT '1.2'"
	" CHECK (tls_min IN ('1.2','1.3')), tls_max TEXT NOT NULL DEFAULT '1.3'"
	" CHECK (tls_max IN ('1.2','1.3')), mtls TEXT NOT NULL DEFAULT 'required'"
	" CHECK (mtls IN ('required','optional','off')), upstream TEXT NOT NULL,"
	" forward TEXT NOT NULL DEFAULT 'none',"
	" upstream_tls TEXT NOT NULL DEFAULT 'off' CHECK (upstream_tls IN ('off','on')),"
	" upstream_ca TEXT, upstream_cert TEXT, upstream_key TEXT, upstream_sni TEXT,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE TABLE rule(id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL"
	" CHECK (action IN ('block','alert','drop')), created_at INTEGER NOT NULL);"
	"CREATE TABLE rule_host(rule_id INTEGER NOT NULL REFERENCES rule(id) ON DELETE CASCADE,"
	" hostname TEXT NOT NULL, PRIMARY KEY (rule_id, hostname));"
	"INSERT INTO meta(key, value) VALUES ('schema_version', '1'), ('generation', '0');";

/* Schema v2 on top of v1: what the v1 -> v2 migration (and a new v2 store, word
 * for word, as the v1 test below checks) left, and the rows a v2 build could
 * write: an uploaded CA with a CRL and a binding, the built-in CA, a client
 * certificate, an SNI object with protocol http. */
static const char *const schema_v1_v2 =
	"ALTER TABLE sni ADD COLUMN protocol TEXT NOT NULL DEFAULT 'tcp'"
	" CHECK (protocol IN ('tcp','http'));"
	"UPDATE meta SET value = '2' WHERE key = 'schema_version';"
	"INSERT INTO builtin_ca VALUES (1, 'BPEM', 'ec-p256', 'O=example.com, CN=b', 'BF', 8, 9, 10);"
	"INSERT INTO client_cert(serial, cn, key_type, fingerprint, not_before, not_after,"
	" cert_pem, created_at) VALUES ('0A', 'alice', 'ec-p256', 'CF', 11, 12, 'CPEM', 13);"
	"INSERT INTO ca(id, name, fingerprint, subject, not_before, not_after, pem, crl_pem,"
	" crl_next_update, created_at) VALUES (4, 'partner', 'PF', 'CN=p', 14, 15, 'PPEM',"
	" 'CRL', 16, 17);"
	"INSERT INTO ca_host VALUES (4, 'api.example.com');"
	"UPDATE sni SET protocol = 'http' WHERE hostname = 'api.example.com';";

/* Schema v3 on top of v2: the v2 -> v3 migration's statements, word for word, and
 * rows a v3 build could write: CA hints as a list, a trust domain, identity rules. */
static const char *const schema_v2_v3 =
	"ALTER TABLE sni ADD COLUMN ca_hints TEXT NOT NULL DEFAULT 'trusted'"
	" CHECK (ca_hints IN ('trusted','none','list'));"
	"ALTER TABLE sni ADD COLUMN ca_hints_pem TEXT;"
	"ALTER TABLE ca ADD COLUMN trust_domain TEXT;"
	"ALTER TABLE builtin_ca ADD COLUMN trust_domain TEXT;"
	"CREATE TABLE idrule(id INTEGER PRIMARY KEY AUTOINCREMENT, hostname TEXT NOT NULL,"
	" effect TEXT NOT NULL CHECK (effect IN ('allow','deny')), field TEXT NOT NULL,"
	" value TEXT NOT NULL, created_at INTEGER NOT NULL,"
	" UNIQUE (hostname, effect, field, value));"
	"CREATE INDEX idrule_by_host ON idrule(hostname);"
	"UPDATE meta SET value = '3' WHERE key = 'schema_version';"
	"UPDATE sni SET ca_hints = 'list', ca_hints_pem = 'HPEM' WHERE hostname = '*.example.com';"
	"UPDATE ca SET trust_domain = 'partner.example';"
	"INSERT INTO idrule(hostname, effect, field, value, created_at)"
	" VALUES ('api.example.com', 'allow', 'cn', 'alice', 18);";

/* Schema v4 on top of v3: the v3 -> v4 migration's statement, word for word, and a
 * further certificate a v4 build could write. */
static const char *const schema_v3_v4 =
	"CREATE TABLE sni_cert(hostname TEXT NOT NULL REFERENCES sni(hostname) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL CHECK (pos BETWEEN 2 AND 3),"
	" cert_file TEXT NOT NULL, key_file TEXT NOT NULL, PRIMARY KEY (hostname, pos));"
	"UPDATE meta SET value = '4' WHERE key = 'schema_version';"
	"INSERT INTO sni_cert VALUES ('api.example.com', 2, '/e', '/ek');";

/* A v1 store in dir/name, written with SQLite directly (as a v1 build left it,
 * WAL included) with two SNI objects, a site, a rule and generation 7; a v2
 * one (version 2) with the rows of schema_v1_v2 too, a v3 one with those of
 * schema_v2_v3 as well; extra runs after it. 0 or -1. */
static int make_store(const char *dir, const char *name, int version, const char *extra)
{
	char state[700], path[800];
	sqlite3 *db = NULL;
	int rc = -1;

	snprintf(state, sizeof(state), "%s/%s", dir, name);
	snprintf(path, sizeof(path), "%s/" EDGE_STORE_FILE, state);
	if (mkdir(state, 0700) || sqlite3_open(path, &db) != SQLITE_OK)
		goto out;
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, schema_v1, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "INSERT INTO site VALUES ('example.com', 1);"
			 "INSERT INTO sni(hostname, cert_file, key_file, upstream, forward,"
			 " created_at, updated_at) VALUES"
			 " ('api.example.com', '/c', '/k', '127.0.0.1:8080', 'headers', 2, 3),"
			 " ('*.example.com', '/c2', '/k2', '[::1]:443', 'proxy-v2', 4, 5);"
			 "INSERT INTO rule(id, action, created_at) VALUES (1, 'block', 6);"
			 "INSERT INTO rule_host VALUES (1, 'bad.example.com');"
			 "UPDATE meta SET value = '7' WHERE key = 'generation'",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    (version >= 2 && sqlite3_exec(db, schema_v1_v2, NULL, NULL, NULL) != SQLITE_OK) ||
	    (version >= 3 && sqlite3_exec(db, schema_v2_v3, NULL, NULL, NULL) != SQLITE_OK) ||
	    (version >= 4 && sqlite3_exec(db, schema_v3_v4, NULL, NULL, NULL) != SQLITE_OK) ||
	    (extra && sqlite3_exec(db, extra, NULL, NULL, NULL) != SQLITE_OK)) {
		printf("# v%d store: %s\n", version, sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}

/* The text of a schema object, as sqlite_master has it (static buffer). */
static const char *schema_sql(struct edge_store *st, const char *name)
{
	static char buf[2][2048];
	static int which;
	sqlite3_stmt *s = edge_store_prepare(st, "SELECT sql FROM sqlite_master WHERE name = ?1",
					     err, sizeof(err));
	char *out = buf[which ^= 1];

	out[0] = '\0';
	if (s && sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		snprintf(out, sizeof(buf[0]), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return out;
}

static void test_migration(const char *dir, const char *fresh_state)
{
	struct edge_store *st = NULL, *fresh = NULL;
	char state[700];
	int64_t gen = -1;

	snprintf(state, sizeof(state), "%s/v1", dir);
	if (make_store(dir, "v1", 1, NULL)) {
		ok(0, "made a v1 store by hand");
		return;
	}

	/* The daemon's open neither migrates nor refuses it. */
	err[0] = '\0';
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "a read-only open accepts a v1 store: %s", err);
	is_int(edge_store_schema_version(st), 1, "  and leaves it at version 1");
	is_int(count(st, "SELECT count(*) FROM pragma_table_info('sni') WHERE name = 'protocol'"),
	       0, "  without the protocol column");
	edge_store_close(st);
	st = NULL;

	/* mtls-edgectl's open migrates it. */
	err[0] = '\0';
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0,
	       "a read-write open migrates a v1 store: %s", err);
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"), 5,
	       "  schema_version is 5 (four steps, one transaction)");
	is_int(edge_store_schema_version(st), EDGE_SCHEMA_VERSION,
	       "  edge_store_schema_version says so");
	is_int(count(st, "SELECT count(*) FROM sni"), 2, "  both SNI objects kept");
	is_int(count(st, "SELECT count(*) FROM sni WHERE protocol = 'tcp'"), 2,
	       "  each with protocol tcp (the default)");
	is_int(count(st, "SELECT count(*) FROM sni WHERE hostname = 'api.example.com' AND"
			 " cert_file = '/c' AND key_file = '/k' AND upstream = '127.0.0.1:8080' AND"
			 " forward = 'headers' AND mtls = 'required' AND tls_min = '1.2' AND"
			 " tls_max = '1.3' AND upstream_tls = 'off' AND upstream_ca IS NULL AND"
			 " created_at = 2 AND updated_at = 3"),
	       1, "  every column of a row kept");
	is_int(count(st, "SELECT count(*) FROM site") + count(st, "SELECT count(*) FROM rule_host"),
	       2, "  the other tables' rows kept");
	edge_store_generation(st, &gen);
	is_int(gen, 7, "  the generation unchanged (nothing to reload)");
	edge_store_begin(st, err, sizeof(err));
	ok(edge_store_exec(st, "UPDATE sni SET protocol = 'udp'", err, sizeof(err)) == -EIO,
	   "  protocol outside tcp/http fails its CHECK");
	is_int(edge_store_exec(st,
			       "UPDATE sni SET protocol = 'http' WHERE hostname ="
			       " 'api.example.com'",
			       err, sizeof(err)),
	       0, "  http is accepted");
	edge_store_rollback(st);
	ok(edge_store_exec(st,
			   "INSERT INTO sni(hostname, cert_file, key_file, upstream, protocol,"
			   " created_at, updated_at) VALUES ('b', 'c', 'k', 'u', NULL, 0, 0)",
			   err, sizeof(err)) == -EIO,
	   "  protocol NULL fails NOT NULL");

	is_int(edge_store_open(fresh_state, 0, &fresh, err, sizeof(err)), 0, "a new store opens");
	ok(!strcmp(schema_sql(st, "sni"), schema_sql(fresh, "sni")),
	   "  its sni table is the migrated one, word for word");
	is_int(count(st, "SELECT count(*) FROM sni WHERE ca_hints = 'trusted' AND"
			 " ca_hints_pem IS NULL"),
	       2, "  the v3 columns at their defaults too");
	edge_store_close(fresh);
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0, "reopening a migrated store");
	is_int(count(st, "SELECT count(*) FROM sni WHERE protocol = 'tcp'"), 2,
	       "  migrates nothing twice");
	edge_store_close(st);
	st = NULL;

	/* A migration that fails leaves the store as it was. */
	snprintf(state, sizeof(state), "%s/v1-bad", dir);
	if (make_store(dir, "v1-bad", 1, "ALTER TABLE sni ADD COLUMN protocol TEXT")) {
		ok(0, "made a broken v1 store by hand");
		return;
	}
	ok(edge_store_open(state, 0, &st, err, sizeof(err)) < 0,
	   "a migration that fails fails the open: %s", err);
	ok(strstr(err, "migrating from schema version 1") != NULL, "  and says what it was doing");
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "  the store is still readable");
	is_int(edge_store_schema_version(st), 1, "  still at version 1 (rolled back)");
	edge_store_close(st);
}

/* Every table and index of a v5 store, word for word, in st and fresh. */
static void same_schema(struct edge_store *st, struct edge_store *fresh)
{
	static const char *const names[] = {
		"sni", "ca", "builtin_ca", "idrule", "idrule_by_host", "sni_cert"
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ok(schema_sql(st, names[i])[0] &&
			   !strcmp(schema_sql(st, names[i]), schema_sql(fresh, names[i])),
		   "  %s is the new store's, word for word", names[i]);
}

static void test_migration_v2(const char *dir, const char *fresh_state)
{
	struct edge_store *st = NULL, *fresh = NULL;
	char state[700];
	int64_t gen = -1;

	snprintf(state, sizeof(state), "%s/v2", dir);
	if (make_store(dir, "v2", 2, NULL)) {
		ok(0, "made a v2 store by hand");
		return;
	}

	/* The daemon's open reads a v2 store as it is. */
	err[0] = '\0';
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "a read-only open accepts a v2 store: %s", err);
	is_int(edge_store_schema_version(st), 2, "  and leaves it at version 2");
	is_int(count(st, "SELECT count(*) FROM pragma_table_info('sni') WHERE name = 'ca_hints'"),
	       0, "  without the ca_hints column");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE name = 'idrule'"), 0,
	       "  nor the idrule table");
	edge_store_close(st);
	st = NULL;

	/* mtls-edgectl's open migrates it: one step, every row kept. */
	err[0] = '\0';
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0,
	       "a read-write open migrates a v2 store: %s", err);
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"), 5,
	       "  schema_version is 5");
	edge_store_generation(st, &gen);
	is_int(gen, 7, "  the generation unchanged");
	is_int(count(st, "SELECT count(*) FROM sni WHERE ca_hints = 'trusted' AND"
			 " ca_hints_pem IS NULL"),
	       2, "  both SNI objects kept, CA hints trusted (the default), no list");
	is_int(count(st, "SELECT count(*) FROM sni WHERE hostname = 'api.example.com' AND"
			 " protocol = 'http' AND forward = 'headers' AND cert_file = '/c' AND"
			 " created_at = 2 AND updated_at = 3"),
	       1, "  the v2 columns of a row kept (protocol http)");
	is_int(count(st, "SELECT count(*) FROM ca WHERE id = 4 AND name = 'partner' AND"
			 " fingerprint = 'PF' AND subject = 'CN=p' AND not_before = 14 AND"
			 " not_after = 15 AND pem = 'PPEM' AND crl_pem = 'CRL' AND"
			 " crl_next_update = 16 AND created_at = 17 AND trust_domain IS NULL"),
	       1, "  the uploaded CA kept, no trust domain");
	is_int(count(st, "SELECT count(*) FROM builtin_ca WHERE cert_pem = 'BPEM' AND"
			 " fingerprint = 'BF' AND created_at = 10 AND trust_domain IS NULL"),
	       1, "  the built-in CA kept, no trust domain");
	is_int(count(st, "SELECT count(*) FROM client_cert") +
		       count(st, "SELECT count(*) FROM ca_host") +
		       count(st, "SELECT count(*) FROM rule_host") +
		       count(st, "SELECT count(*) FROM site"),
	       4, "  the other tables' rows kept");
	is_int(count(st, "SELECT count(*) FROM idrule"), 0, "  idrule exists, empty");

	edge_store_begin(st, err, sizeof(err));
	ok(edge_store_exec(st, "UPDATE sni SET ca_hints = 'some'", err, sizeof(err)) == -EIO,
	   "  ca_hints outside trusted/none/list fails its CHECK");
	is_int(edge_store_exec(st,
			       "UPDATE sni SET ca_hints = 'list', ca_hints_pem = 'P' WHERE"
			       " hostname = 'api.example.com'",
			       err, sizeof(err)),
	       0, "  list is accepted");
	is_int(edge_store_exec(st, "UPDATE ca SET trust_domain = 'partner.example'", err,
			       sizeof(err)),
	       0, "  a trust domain is accepted");
	is_int(edge_store_exec(st,
			       "INSERT INTO idrule(hostname, effect, field, value, created_at)"
			       " VALUES ('api.example.com', 'allow', 'cn', 'bob', 1),"
			       " ('api.example.com', 'deny', 'cn', 'bob', 1)",
			       err, sizeof(err)),
	       0, "  identity entries are accepted (the same value under both effects too)");
	ok(edge_store_exec(st,
			   "INSERT INTO idrule(hostname, effect, field, value, created_at)"
			   " VALUES ('api.example.com', 'allow', 'cn', 'bob', 2)",
			   err, sizeof(err)) == -EIO,
	   "  an identical entry fails UNIQUE");
	ok(edge_store_exec(st,
			   "INSERT INTO idrule(hostname, effect, field, value, created_at)"
			   " VALUES ('api.example.com', 'maybe', 'cn', 'eve', 2)",
			   err, sizeof(err)) == -EIO,
	   "  an effect outside allow/deny fails its CHECK");
	ok(edge_store_exec(st,
			   "INSERT INTO idrule(hostname, effect, field, value, created_at)"
			   " VALUES (NULL, 'deny', 'cn', 'eve', 2)",
			   err, sizeof(err)) == -EIO,
	   "  a NULL hostname fails NOT NULL");
	edge_store_rollback(st);
	ok(edge_store_exec(st, "UPDATE sni SET ca_hints = NULL WHERE hostname = 'api.example.com'",
			   err, sizeof(err)) == -EIO,
	   "  ca_hints NULL fails NOT NULL");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
			 " name = 'idrule_by_host' AND tbl_name = 'idrule'"),
	       1, "  idrule is indexed by hostname");

	is_int(edge_store_open(fresh_state, 0, &fresh, err, sizeof(err)), 0, "a new store opens");
	same_schema(st, fresh);
	edge_store_close(fresh);
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0, "reopening a migrated store");
	is_int(count(st,
		     "SELECT count(*) FROM pragma_table_info('sni') WHERE name LIKE 'ca_hints%'"),
	       2, "  migrates nothing twice");
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "a read-only open accepts the v4 store");
	edge_store_close(st);
	st = NULL;

	/* A failing step (the table exists) rolls back the ALTERs before it too. */
	snprintf(state, sizeof(state), "%s/v2-bad", dir);
	if (make_store(dir, "v2-bad", 2, "CREATE TABLE idrule(x)")) {
		ok(0, "made a broken v2 store by hand");
		return;
	}
	ok(edge_store_open(state, 0, &st, err, sizeof(err)) < 0,
	   "a v2 migration that fails fails the open: %s", err);
	ok(strstr(err, "migrating from schema version 2") != NULL, "  and says what it was doing");
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "  the store is still readable");
	is_int(edge_store_schema_version(st), 2, "  still at version 2");
	is_int(count(st, "SELECT count(*) FROM pragma_table_info('sni') WHERE name = 'ca_hints'"),
	       0, "  without the columns its first steps added");
	edge_store_close(st);
}

static void test_migration_v3(const char *dir, const char *fresh_state)
{
	struct edge_store *st = NULL, *fresh = NULL;
	char state[700];
	int64_t gen = -1;

	snprintf(state, sizeof(state), "%s/v3", dir);
	if (make_store(dir, "v3", 3, NULL)) {
		ok(0, "made a v3 store by hand");
		return;
	}

	/* The daemon's open reads a v3 store as it is. */
	err[0] = '\0';
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "a read-only open accepts a v3 store: %s", err);
	is_int(edge_store_schema_version(st), 3, "  and leaves it at version 3");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE name = 'sni_cert'"), 0,
	       "  without the sni_cert table");
	edge_store_close(st);
	st = NULL;

	/* mtls-edgectl's open migrates it: one step, every row kept. */
	err[0] = '\0';
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0,
	       "a read-write open migrates a v3 store: %s", err);
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"), 5,
	       "  schema_version is 5");
	edge_store_generation(st, &gen);
	is_int(gen, 7, "  the generation unchanged");
	is_int(count(st, "SELECT count(*) FROM sni WHERE hostname = 'api.example.com' AND"
			 " cert_file = '/c' AND key_file = '/k' AND protocol = 'http' AND"
			 " forward = 'headers' AND ca_hints = 'trusted' AND created_at = 2 AND"
			 " updated_at = 3"),
	       1, "  an SNI object kept, its one certificate still sni's cert_file and key_file");
	is_int(count(st, "SELECT count(*) FROM sni WHERE hostname = '*.example.com' AND"
			 " cert_file = '/c2' AND key_file = '/k2' AND ca_hints = 'list' AND"
			 " ca_hints_pem = 'HPEM'"),
	       1, "  the other kept with its v3 columns (a CA hint list)");
	is_int(count(st, "SELECT count(*) FROM ca WHERE trust_domain = 'partner.example'") +
		       count(st, "SELECT count(*) FROM idrule WHERE value = 'alice'") +
		       count(st, "SELECT count(*) FROM client_cert") +
		       count(st, "SELECT count(*) FROM ca_host") +
		       count(st, "SELECT count(*) FROM rule_host") +
		       count(st, "SELECT count(*) FROM site"),
	       6, "  the other tables' rows kept");
	is_int(count(st, "SELECT count(*) FROM sni_cert"), 0,
	       "  sni_cert exists, empty (one certificate each)");

	edge_store_begin(st, err, sizeof(err));
	is_int(edge_store_exec(st,
			       "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			       " ('api.example.com', 2, '/e', '/ek'),"
			       " ('api.example.com', 3, '/d', '/dk')",
			       err, sizeof(err)),
	       0, "  further certificates are accepted (places 2 and 3)");
	ok(edge_store_exec(st,
			   "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			   " ('api.example.com', 2, '/x', '/xk')",
			   err, sizeof(err)) == -EIO,
	   "  a place taken twice fails the primary key");
	ok(edge_store_exec(st,
			   "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			   " ('*.example.com', 1, '/x', '/xk')",
			   err, sizeof(err)) == -EIO,
	   "  place 1 (sni's own) fails its CHECK");
	ok(edge_store_exec(st,
			   "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			   " ('*.example.com', 4, '/x', '/xk')",
			   err, sizeof(err)) == -EIO,
	   "  a place over EDGE_MAX_CERTS_PER_SNI fails its CHECK");
	ok(edge_store_exec(st,
			   "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			   " ('nope.example.com', 2, '/x', '/xk')",
			   err, sizeof(err)) == -EIO,
	   "  a certificate of a missing SNI object fails (foreign key)");
	ok(edge_store_exec(st,
			   "INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			   " ('*.example.com', 2, '/x', NULL)",
			   err, sizeof(err)) == -EIO,
	   "  a NULL key file fails NOT NULL");
	edge_store_exec(st,
			"INSERT OR REPLACE INTO sni(hostname, cert_file, key_file, upstream,"
			" created_at, updated_at) VALUES ('api.example.com', '/r', '/rk', 'u', 1, 1)",
			err, sizeof(err));
	is_int(count(st, "SELECT count(*) FROM sni_cert"), 0,
	       "  replacing the sni row deletes its certificates (cascade)");
	edge_store_exec(st,
			"INSERT INTO sni_cert(hostname, pos, cert_file, key_file) VALUES"
			" ('api.example.com', 2, '/e', '/ek')",
			err, sizeof(err));
	edge_store_exec(st, "DELETE FROM sni WHERE hostname = 'api.example.com'", err, sizeof(err));
	is_int(count(st, "SELECT count(*) FROM sni_cert"), 0, "  and so does deleting it");
	edge_store_rollback(st);

	is_int(edge_store_open(fresh_state, 0, &fresh, err, sizeof(err)), 0, "a new store opens");
	same_schema(st, fresh);
	edge_store_close(fresh);
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0, "reopening a migrated store");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE name = 'sni_cert'"), 1,
	       "  migrates nothing twice");
	edge_store_close(st);
	st = NULL;

	/* A failing step (the table exists) leaves the store at version 3. */
	snprintf(state, sizeof(state), "%s/v3-bad", dir);
	if (make_store(dir, "v3-bad", 3, "CREATE TABLE sni_cert(x)")) {
		ok(0, "made a broken v3 store by hand");
		return;
	}
	ok(edge_store_open(state, 0, &st, err, sizeof(err)) < 0,
	   "a v3 migration that fails fails the open: %s", err);
	ok(strstr(err, "migrating from schema version 3") != NULL, "  and says what it was doing");
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "  the store is still readable");
	is_int(edge_store_schema_version(st), 3, "  still at version 3");
	edge_store_close(st);
}

static void test_migration_v4(const char *dir, const char *fresh_state)
{
	struct edge_store *st = NULL, *fresh = NULL;
	char state[700];
	int64_t gen = -1;

	snprintf(state, sizeof(state), "%s/v4", dir);
	if (make_store(dir, "v4", 4, NULL)) {
		ok(0, "made a v4 store by hand");
		return;
	}

	/* The daemon's open reads a v4 store as it is (no ALPN: none negotiated). */
	err[0] = '\0';
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "a read-only open accepts a v4 store: %s", err);
	is_int(edge_store_schema_version(st), 4, "  and leaves it at version 4");
	is_int(count(st, "SELECT count(*) FROM pragma_table_info('sni') WHERE name = 'alpn'"), 0,
	       "  without the alpn column");
	edge_store_close(st);
	st = NULL;

	err[0] = '\0';
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0,
	       "a read-write open migrates a v4 store: %s", err);
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"), 5,
	       "  schema_version is 5");
	edge_store_generation(st, &gen);
	is_int(gen, 7, "  the generation unchanged");
	is_int(count(st, "SELECT count(*) FROM sni WHERE alpn = '' AND no_alpn = 'allow'"), 2,
	       "  both SNI objects kept, no ALPN (as before), clients without ALPN allowed");
	is_int(count(st, "SELECT count(*) FROM sni WHERE hostname = 'api.example.com' AND"
			 " cert_file = '/c' AND protocol = 'http' AND forward = 'headers' AND"
			 " ca_hints = 'trusted' AND created_at = 2 AND updated_at = 3"),
	       1, "  an SNI object's earlier columns kept");
	is_int(count(st, "SELECT count(*) FROM sni_cert WHERE hostname = 'api.example.com' AND"
			 " pos = 2 AND cert_file = '/e' AND key_file = '/ek'"),
	       1, "  its further certificate kept");
	edge_store_begin(st, err, sizeof(err));
	is_int(edge_store_exec(st, "UPDATE sni SET alpn = 'h2,http/1.1', no_alpn = 'refuse'", err,
			       sizeof(err)),
	       0, "  an ALPN list and no_alpn refuse are accepted");
	ok(edge_store_exec(st, "UPDATE sni SET no_alpn = 'maybe'", err, sizeof(err)) == -EIO,
	   "  no_alpn outside allow/refuse fails its CHECK");
	ok(edge_store_exec(st, "UPDATE sni SET alpn = NULL", err, sizeof(err)) == -EIO,
	   "  a NULL alpn fails NOT NULL");
	edge_store_rollback(st);

	is_int(edge_store_open(fresh_state, 0, &fresh, err, sizeof(err)), 0, "a new store opens");
	same_schema(st, fresh);
	edge_store_close(fresh);
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0, "reopening a migrated store");
	is_int(count(st, "SELECT count(*) FROM pragma_table_info('sni') WHERE name = 'alpn'"), 1,
	       "  migrates nothing twice");
	edge_store_close(st);
	st = NULL;

	/* A failing step (the column exists) leaves the store at version 4. */
	snprintf(state, sizeof(state), "%s/v4-bad", dir);
	if (make_store(dir, "v4-bad", 4, "ALTER TABLE sni ADD COLUMN no_alpn TEXT")) {
		ok(0, "made a broken v4 store by hand");
		return;
	}
	ok(edge_store_open(state, 0, &st, err, sizeof(err)) < 0,
	   "a v4 migration that fails fails the open: %s", err);
	ok(strstr(err, "migrating from schema version 4") != NULL, "  and says what it was doing");
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "  the store is still readable");
	is_int(edge_store_schema_version(st), 4, "  still at version 4");
	edge_store_close(st);
}

static void rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		printf("# could not remove %s\n", dir);
}

int main(void)
{
	char tmpl[] = "/tmp/edge-test-store.XXXXXX", *dir, state[600], path[700];
	struct edge_store *st = NULL, *st2 = NULL;
	struct stat sb;
	int64_t gen = -1, gen2 = -1;

	dir = mkdtemp(tmpl);
	if (!dir) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(state, sizeof(state), "%s/state", dir);

	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), -ENOENT,
	       "opening a missing state directory is -ENOENT");
	ok(strstr(err, "init") != NULL, "  and says to run init: %s", err);
	is_int(edge_store_open(state, EDGE_STORE_CREATE, &st, err, sizeof(err)), 0,
	       "EDGE_STORE_CREATE creates the directory and store");
	ok(!stat(state, &sb) && (sb.st_mode & 0777) == 0700, "state directory is 0700");
	snprintf(path, sizeof(path), "%s/" EDGE_STORE_FILE, state);
	ok(!stat(path, &sb) && (sb.st_mode & 0077) == 0, "state.db is private to its owner");
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"),
	       EDGE_SCHEMA_VERSION, "schema version recorded");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
			 "('meta','site','builtin_ca','client_cert','ca','ca_host','sni','rule',"
			 "'rule_host','idrule','sni_cert')"),
	       11, "every table of schema v4 exists");
	{
		sqlite3_stmt *s = edge_store_prepare(st, "PRAGMA journal_mode", err, sizeof(err));

		ok(s && sqlite3_step(s) == SQLITE_ROW &&
			   !strcmp((const char *)sqlite3_column_text(s, 0), "wal"),
		   "journal mode is WAL");
		sqlite3_finalize(s);
	}
	is_int(edge_store_generation(st, &gen), 0, "generation readable");
	is_int(gen, 0, "generation starts at 0");

	is_int(edge_store_begin(st, err, sizeof(err)), 0, "BEGIN IMMEDIATE");
	is_int(edge_store_exec(st, "INSERT INTO site(domain, created_at) VALUES ('example.com', 1)",
			       err, sizeof(err)),
	       0, "insert a site");
	is_int(edge_store_commit(st, err, sizeof(err)), 0, "commit");
	edge_store_generation(st, &gen);
	is_int(gen, 1, "commit bumped the generation");

	is_int(edge_store_begin(st, err, sizeof(err)), 0, "second transaction");
	edge_store_exec(st, "INSERT INTO site(domain, created_at) VALUES ('example.org', 2)", err,
			sizeof(err));
	edge_store_exec(st, "DELETE FROM site WHERE domain = 'example.com'", err, sizeof(err));
	edge_store_rollback(st);
	is_int(count(st, "SELECT count(*) FROM site WHERE domain = 'example.com'"), 1,
	       "rollback kept the deleted row");
	is_int(count(st, "SELECT count(*) FROM site WHERE domain = 'example.org'"), 0,
	       "rollback dropped the inserted row");
	edge_store_generation(st, &gen);
	is_int(gen, 1, "rollback left the generation alone");

	is_int(edge_store_begin(st, err, sizeof(err)), 0, "constraint test transaction");
	ok(edge_store_exec(st, "INSERT INTO site(domain, created_at) VALUES ('example.com', 3)",
			   err, sizeof(err)) == -EIO,
	   "a duplicate primary key fails");
	ok(edge_store_exec(st,
			   "INSERT INTO sni(hostname, cert_file, key_file, upstream, tls_min,"
			   " created_at, updated_at) VALUES ('a', 'c', 'k', 'u', '1.1', 0, 0)",
			   err, sizeof(err)) == -EIO,
	   "tls_min outside 1.2/1.3 fails its CHECK");
	ok(edge_store_exec(st, "INSERT INTO ca_host(ca_id, hostname) VALUES (42, 'a.example.com')",
			   err, sizeof(err)) == -EIO,
	   "a binding to a missing CA fails (foreign key)");
	edge_store_rollback(st);

	/* Cascades: deleting a CA or rule deletes its bindings. */
	edge_store_begin(st, err, sizeof(err));
	edge_store_exec(st,
			"INSERT INTO ca(id, name, fingerprint, subject, not_before, not_after,"
			" pem, created_at) VALUES (1, 'n', 'F', 'CN=x', 0, 1, 'p', 0)",
			err, sizeof(err));
	edge_store_exec(st, "INSERT INTO ca_host VALUES (1, 'a.example.com')", err, sizeof(err));
	edge_store_exec(st, "DELETE FROM ca WHERE id = 1", err, sizeof(err));
	is_int(count(st, "SELECT count(*) FROM ca_host"), 0, "deleting a CA cascades to bindings");
	edge_store_rollback(st);

	/* Two writers: the second BEGIN IMMEDIATE waits, then times out. */
	is_int(edge_store_open(state, 0, &st2, err, sizeof(err)), 0, "a second connection opens");
	edge_store_begin(st, err, sizeof(err));
	sqlite3_busy_timeout(edge_store_db(st2), 200);
	ok(edge_store_begin(st2, err, sizeof(err)) != 0,
	   "a second writer is refused while the "
	   "first holds the lock: %s",
	   err);
	edge_store_rollback(st);
	is_int(edge_store_begin(st2, err, sizeof(err)), 0, "and gets it once the first is done");
	edge_store_exec(st2, "INSERT INTO site(domain, created_at) VALUES ('b.example', 4)", err,
			sizeof(err));
	is_int(edge_store_commit(st2, err, sizeof(err)), 0, "second writer commits");
	edge_store_generation(st, &gen);
	is_int(gen, 2, "the first connection sees generation 2");
	edge_store_close(st2);
	st2 = NULL;

	/* Reopen, read-only, consistent reads. */
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), 0, "reopen");
	is_int(count(st, "SELECT count(*) FROM site"), 2, "data survived the reopen");
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), 0,
	       "read-only open (the daemon's)");
	is_int(edge_store_begin_read(st, err, sizeof(err)), 0, "consistent read begins");
	edge_store_generation(st, &gen2);
	is_int(gen2, 2, "read-only connection sees the generation");
	edge_store_end_read(st);
	edge_store_close(st);
	st = NULL;

	test_migration(dir, state);
	test_migration_v2(dir, state);
	test_migration_v3(dir, state);
	test_migration_v4(dir, state);

	/* A store from a newer build is refused, not migrated down. */
	edge_store_open(state, 0, &st, err, sizeof(err));
	edge_store_exec(st, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", err,
			sizeof(err));
	edge_store_close(st);
	st = NULL;
	is_int(edge_store_open(state, 0, &st, err, sizeof(err)), -EPROTO,
	       "a newer schema version is refused");
	ok(strstr(err, "newer") != NULL, "  and says so: %s", err);
	is_int(edge_store_open(state, EDGE_STORE_RDONLY, &st, err, sizeof(err)), -EPROTO,
	       "also read-only");

	/* A missing store in an existing directory. */
	snprintf(path, sizeof(path), "%s/empty", dir);
	mkdir(path, 0700);
	is_int(edge_store_open(path, 0, &st, err, sizeof(err)), -ENOENT,
	       "a directory without state.db is -ENOENT");
	ok(strstr(err, "init") != NULL, "  pointing at init: %s", err);
	snprintf(path, sizeof(path), "%s/state/" EDGE_STORE_FILE, dir);
	is_int(edge_store_open(path, 0, &st, err, sizeof(err)), -ENOTDIR,
	       "a file as the state directory is -ENOTDIR");

	rm_rf(dir);
	return tap_done();
}
