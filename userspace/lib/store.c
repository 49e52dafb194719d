#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct edge_store {
	sqlite3 *db;
	char *dir;
	unsigned int nested_reads; /* begin_read inside an open transaction (a fleet replica's
				      check of what it is about to commit) */
};

#define STR_(x) #x
#define STR(x) STR_(x)

/* v2: what the upstream speaks (sni add|update --protocol). Appended last, in
 * the same words as the v1 -> v2 ALTER TABLE, so that a new store's sni table
 * and a migrated one's are the same, down to their text in sqlite_master. */
#define SNI_PROTOCOL_COLUMN \
	"protocol TEXT NOT NULL DEFAULT 'tcp' CHECK (protocol IN ('tcp','http'))"

/* v3: the CA names of the CertificateRequest (sni add|update --ca-hints), the
 * SPIFFE trust domain a CA vouches for (ca upload --trust-domain, ca
 * trust-domain), identity rules (identity allow|deny). The same rule as for
 * v2: each column in the words of its ALTER TABLE, appended last. */
#define SNI_CA_HINTS_COLUMN \
	"ca_hints TEXT NOT NULL DEFAULT 'trusted' CHECK (ca_hints IN ('trusted','none','list'))"
#define SNI_CA_HINTS_PEM_COLUMN "ca_hints_pem TEXT"
#define TRUST_DOMAIN_COLUMN "trust_domain TEXT"
#define IDRULE_TABLE                                                                        \
	"CREATE TABLE idrule(id INTEGER PRIMARY KEY AUTOINCREMENT, hostname TEXT NOT NULL," \
	" effect TEXT NOT NULL CHECK (effect IN ('allow','deny')), field TEXT NOT NULL,"    \
	" value TEXT NOT NULL, created_at INTEGER NOT NULL,"                                \
	" UNIQUE (hostname, effect, field, value))"
#define IDRULE_INDEX "CREATE INDEX idrule_by_host ON idrule(hostname)"

/* v4: an SNI object's further server certificates (sni add|update with --cert
 * and --key given more than once), one per key type: sni.cert_file and
 * key_file stay the first pair, these rows the others in the order given
 * (pos 2, 3). Their key types are the files' own (a renewal may replace a
 * file in place): the CLI and the snapshot check them, the store does not.
 * An object's rows go with it (ON DELETE CASCADE; INSERT OR REPLACE into sni
 * deletes them too). */
#define SNI_CERT_TABLE                                                                             \
	"CREATE TABLE sni_cert(hostname TEXT NOT NULL REFERENCES sni(hostname) ON DELETE CASCADE," \
	" pos INTEGER NOT NULL CHECK (pos BETWEEN 2 AND " STR(                                     \
		EDGE_MAX_CERTS_PER_SNI) "),"                                                       \
					" cert_file TEXT NOT NULL, key_file TEXT NOT NULL, PRIMARY KEY (hostname, pos))"

/* v5: the application protocols an SNI object negotiates (sni add|update --alpn): ALPN
 * tokens joined by ',' in server preference order, '' for none (no ALPN extension in the
 * answer, as before); no_alpn: what a client that offers no ALPN at all gets. The CLI checks
 * the tokens; the snapshot checks them again. */
#define SNI_ALPN_COLUMN "alpn TEXT NOT NULL DEFAULT ''"
#define SNI_NO_ALPN_COLUMN \
	"no_alpn TEXT NOT NULL DEFAULT 'allow' CHECK (no_alpn IN ('allow','refuse'))"

/* A new store: the current schema (EDGE_SCHEMA_VERSION) in one go. */
static const char *const schema[] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	"CREATE TABLE site(domain TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
	"CREATE TABLE builtin_ca(id INTEGER PRIMARY KEY CHECK (id = 1),"
	" cert_pem TEXT NOT NULL, key_type TEXT NOT NULL, subject TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL, created_at INTEGER NOT NULL, " TRUST_DOMAIN_COLUMN ")",
	"CREATE TABLE client_cert(serial TEXT PRIMARY KEY, cn TEXT NOT NULL,"
	" sans TEXT NOT NULL DEFAULT '', key_type TEXT NOT NULL,"
	" fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'active'"
	" CHECK (status IN ('active','revoked')), revoked_at INTEGER,"
	" cert_pem TEXT NOT NULL, created_at INTEGER NOT NULL)",
	"CREATE TABLE ca(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
	" fingerprint TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
	" not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, pem TEXT NOT NULL,"
	" crl_pem TEXT, crl_next_update INTEGER, created_at INTEGER NOT NULL, " TRUST_DOMAIN_COLUMN
	")",
	"CREATE TABLE ca_host(ca_id INTEGER NOT NULL REFERENCES ca(id) ON DELETE CASCADE,"
	" hostname TEXT NOT NULL, PRIMARY KEY (ca_id, hostname))",
	"CREATE INDEX ca_host_by_name ON ca_host(hostname)",
	"CREATE TABLE sni(hostname TEXT PRIMARY KEY, cert_file TEXT NOT NULL,"
	" key_file TEXT NOT NULL, tls_min TEXT NOT NULL DEFAULT '1.2'"
	" CHECK (tls_min IN ('1.2','1.3')), tls_max TEXT NOT NULL DEFAULT '1.3'"
	" CHECK (tls_max IN ('1.2','1.3')), mtls TEXT NOT NULL DEFAULT 'required'"
	" CHECK (mtls IN ('required','optional','off')), upstream TEXT NOT NULL,"
	" forward TEXT NOT NULL DEFAULT 'none',"
	" upstream_tls TEXT NOT NULL DEFAULT 'off' CHECK (upstream_tls IN ('off','on')),"
	" upstream_ca TEXT, upstream_cert TEXT, upstream_key TEXT, upstream_sni TEXT,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, " SNI_PROTOCOL_COLUMN
	", " SNI_CA_HINTS_COLUMN ", " SNI_CA_HINTS_PEM_COLUMN ", " SNI_ALPN_COLUMN
	", " SNI_NO_ALPN_COLUMN ")",
	"CREATE TABLE rule(id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL"
	" CHECK (action IN ('block','alert','drop')), created_at INTEGER NOT NULL)",
	"CREATE TABLE rule_host(rule_id INTEGER NOT NULL REFERENCES rule(id) ON DELETE CASCADE,"
	" hostname TEXT NOT NULL, PRIMARY KEY (rule_id, hostname))",
	IDRULE_TABLE,
	IDRULE_INDEX,
	SNI_CERT_TABLE,
	"INSERT INTO meta(key, value) VALUES ('schema_version', '" STR(
		EDGE_SCHEMA_VERSION) "'),"
				     " ('generation', '0')",
	NULL,
};

/* An existing store, one step at a time: migrations[i] takes version i + 1 to
 * i + 2. Every row is kept; new columns get their defaults. The steps run in
 * migrate()'s one transaction, with the version bump, so a store is at one
 * version or the next, never between. */
static const char *const migrate_v1_v2[] = {
	"ALTER TABLE sni ADD COLUMN " SNI_PROTOCOL_COLUMN,
	NULL,
};

static const char *const migrate_v2_v3[] = {
	"ALTER TABLE sni ADD COLUMN " SNI_CA_HINTS_COLUMN,
	"ALTER TABLE sni ADD COLUMN " SNI_CA_HINTS_PEM_COLUMN,
	"ALTER TABLE ca ADD COLUMN " TRUST_DOMAIN_COLUMN,
	"ALTER TABLE builtin_ca ADD COLUMN " TRUST_DOMAIN_COLUMN,
	IDRULE_TABLE,
	IDRULE_INDEX,
	NULL,
};

static const char *const migrate_v3_v4[] = {
	SNI_CERT_TABLE,
	NULL,
};

static const char *const migrate_v4_v5[] = {
	"ALTER TABLE sni ADD COLUMN " SNI_ALPN_COLUMN,
	"ALTER TABLE sni ADD COLUMN " SNI_NO_ALPN_COLUMN,
	NULL,
};

static const char *const *const migrations[] = {
	migrate_v1_v2,
	migrate_v2_v3,
	migrate_v3_v4,
	migrate_v4_v5,
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == EDGE_SCHEMA_VERSION - 1,
	       "one migration per schema version after 1");

__attribute__((format(printf, 3, 0))) static void set_err(char *err, size_t errlen, const char *fmt,
							  const char *a, const char *b)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b ? b : "");
#pragma GCC diagnostic pop
}

sqlite3 *edge_store_db(struct edge_store *st)
{
	return st->db;
}
const char *edge_store_dir(const struct edge_store *st)
{
	return st->dir;
}

int edge_store_exec(struct edge_store *st, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_err(err, errlen, "store: %s%s", msg ? msg : sqlite3_errmsg(st->db), NULL);
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

sqlite3_stmt *edge_store_prepare(struct edge_store *st, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		set_err(err, errlen, "store: %s%s", sqlite3_errmsg(st->db), NULL);
		return NULL;
	}
	return stmt;
}

static int schema_version(struct edge_store *st, int *ver)
{
	sqlite3_stmt *stmt;
	int rc;

	*ver = 0;
	rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1,
				&stmt, NULL);
	if (rc != SQLITE_OK)
		return 0; /* no meta table: empty database */
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*ver = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return 0;
}

static int run_all(struct edge_store *st, const char *const *sql, char *err, size_t errlen)
{
	int rc = 0;

	for (int i = 0; !rc && sql[i]; i++)
		rc = edge_store_exec(st, sql[i], err, errlen);
	return rc;
}

/* Creates the schema of an empty store, or brings an older one up to
 * EDGE_SCHEMA_VERSION; one transaction. */
static int migrate(struct edge_store *st, char *err, size_t errlen)
{
	char v[16], sql[96];
	int ver, rc = 0;

	if (edge_store_begin(st, err, errlen))
		return -EIO;
	schema_version(st, &ver);
	snprintf(v, sizeof(v), "%d", ver);
	if (ver > EDGE_SCHEMA_VERSION) {
		set_err(err, errlen,
			"store: schema version %s is newer than this build "
			"understands%s; upgrade mtls-edge",
			v, NULL);
		rc = -EPROTO;
		goto out;
	}
	if (ver < 0) {
		set_err(err, errlen, "store: bad schema version %s%s", v, NULL);
		rc = -EPROTO;
		goto out;
	}
	if (ver == 0) {
		rc = run_all(st, schema, err, errlen);
		if (rc)
			goto out;
		ver = EDGE_SCHEMA_VERSION;
	}
	if (ver < EDGE_SCHEMA_VERSION) {
		for (; ver < EDGE_SCHEMA_VERSION; ver++) {
			rc = run_all(st, migrations[ver - 1], err, errlen);
			if (rc) {
				char m[400];

				/* "store: migrating ...: <SQLite's words>" */
				snprintf(m, sizeof(m), "%s",
					 err ? err + (strncmp(err, "store: ", 7) ? 0 : 7) : "");
				snprintf(v, sizeof(v), "%d", ver);
				set_err(err, errlen, "store: migrating from schema version %s: %s",
					v, m);
				goto out;
			}
		}
		snprintf(sql, sizeof(sql),
			 "UPDATE meta SET value = '%d'"
			 " WHERE key = 'schema_version'",
			 EDGE_SCHEMA_VERSION);
		if ((rc = edge_store_exec(st, sql, err, errlen)))
			goto out;
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "store: commit: %s%s", sqlite3_errmsg(st->db), NULL);
		rc = -EIO;
		goto out;
	}
	return 0;
out:
	edge_store_rollback(st);
	return rc;
}

int edge_store_open(const char *state_dir, int flags, struct edge_store **out, char *err,
		    size_t errlen)
{
	struct edge_store *st;
	char path[4096];
	struct stat sb;
	int rc, oflags;

	*out = NULL;
	if (flags & EDGE_STORE_CREATE) {
		if (mkdir(state_dir, 0700) && errno != EEXIST) {
			rc = -errno;
			set_err(err, errlen, "cannot create state directory %s: %s", state_dir,
				strerror(-rc));
			return rc;
		}
	}
	if (stat(state_dir, &sb)) {
		rc = -errno;
		if (rc == -ENOENT)
			set_err(err, errlen,
				"no state directory %s (run 'mtls-edgectl init "
				"--state %s')",
				state_dir, state_dir);
		else
			set_err(err, errlen, "cannot read state directory %s: %s", state_dir,
				strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(sb.st_mode)) {
		set_err(err, errlen, "state directory %s is not a directory%s", state_dir, NULL);
		return -ENOTDIR;
	}
	snprintf(path, sizeof(path), "%s/%s", state_dir, EDGE_STORE_FILE);
	if (!(flags & EDGE_STORE_CREATE) && access(path, F_OK)) {
		set_err(err, errlen, "no store in %s (run 'mtls-edgectl init --state %s')",
			state_dir, state_dir);
		return -ENOENT;
	}

	st = calloc(1, sizeof(*st));
	if (!st || !(st->dir = strdup(state_dir))) {
		free(st);
		return -ENOMEM;
	}
	/* The daemon opens read-write too: WAL readers need the -shm file. */
	oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
	if (flags & EDGE_STORE_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &st->db, oflags, NULL) != SQLITE_OK) {
		set_err(err, errlen, "cannot open store %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : "out of memory");
		rc = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 10000);
	sqlite3_extended_result_codes(st->db, 1);
	if ((rc = edge_store_exec(st, "PRAGMA foreign_keys = ON", err, errlen)))
		goto fail;
	if (!(flags & EDGE_STORE_RDONLY)) {
		if ((rc = edge_store_exec(st, "PRAGMA journal_mode = WAL", err, errlen)))
			goto fail;
		if ((rc = edge_store_exec(st, "PRAGMA synchronous = FULL", err, errlen)))
			goto fail;
		if ((rc = migrate(st, err, errlen)))
			goto fail;
	} else {
		/* The daemon never writes, so it never migrates: it reads every
		 * version from EDGE_SCHEMA_VERSION_READ_MIN on (snapshot.c fills in
		 * a missing column's default), and the next mtls-edgectl command
		 * migrates the store. Only a newer or an unknown one is refused. */
		int ver;
		char v[16];

		schema_version(st, &ver);
		snprintf(v, sizeof(v), "%d", ver);
		if (ver > EDGE_SCHEMA_VERSION) {
			set_err(err, errlen,
				"store %s has schema version %s, newer than this "
				"build understands; upgrade mtls-edged",
				path, v);
			rc = -EPROTO;
			goto fail;
		}
		if (ver < EDGE_SCHEMA_VERSION_READ_MIN) {
			set_err(err, errlen,
				"store %s has no schema (version %s); run "
				"'mtls-edgectl init' or restore the store",
				path, v);
			rc = -EPROTO;
			goto fail;
		}
	}
	if (flags & EDGE_STORE_CREATE)
		chmod(path, 0600);
	*out = st;
	return 0;
fail:
	edge_store_close(st);
	return rc;
}

int edge_store_schema_version(struct edge_store *st)
{
	int ver;

	schema_version(st, &ver);
	return ver;
}

void edge_store_close(struct edge_store *st)
{
	if (!st)
		return;
	sqlite3_close_v2(st->db);
	free(st->dir);
	free(st);
}

int edge_store_begin(struct edge_store *st, char *err, size_t errlen)
{
	return edge_store_exec(st, "BEGIN IMMEDIATE", err, errlen);
}

int edge_store_begin_read(struct edge_store *st, char *err, size_t errlen)
{
	if (!sqlite3_get_autocommit(st->db)) {
		st->nested_reads++; /* inside the caller's transaction: it sees its own writes */
		return 0;
	}
	return edge_store_exec(st, "BEGIN", err, errlen);
}

void edge_store_end_read(struct edge_store *st)
{
	if (st->nested_reads) {
		st->nested_reads--;
		return;
	}
	sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
}

int edge_store_commit(struct edge_store *st, char *err, size_t errlen)
{
	int rc;

	rc = edge_store_exec(st,
			     "UPDATE meta SET value = CAST(value AS INTEGER) + 1"
			     " WHERE key = 'generation'",
			     err, errlen);
	if (!rc)
		rc = edge_store_exec(st, "COMMIT", err, errlen);
	if (rc)
		edge_store_rollback(st);
	return rc;
}

void edge_store_rollback(struct edge_store *st)
{
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int edge_store_generation(struct edge_store *st, int64_t *gen)
{
	sqlite3_stmt *stmt;
	int rc = -EIO;

	if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'generation'", -1, &stmt,
			       NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*gen = sqlite3_column_int64(stmt, 0);
		rc = 0;
	}
	sqlite3_finalize(stmt);
	return rc;
}
