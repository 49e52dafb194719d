/* Unit tests for userspace/store.c with real SQLite in a fresh temp directory:
 * schema creation, reopen, generation bumps, rollback, writer serialisation,
 * read-only opens, refusal of a newer schema. */
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
	is_int(count(st, "SELECT value FROM meta WHERE key = 'schema_version'"), EDGE_SCHEMA_VERSION,
	       "schema version recorded");
	is_int(count(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
		     "('meta','site','builtin_ca','client_cert','ca','ca_host','sni','rule',"
		     "'rule_host')"), 9, "every table of schema v1 exists");
	{
		sqlite3_stmt *s = edge_store_prepare(st, "PRAGMA journal_mode", err, sizeof(err));

		ok(s && sqlite3_step(s) == SQLITE_ROW &&
		   !strcmp((const char *)sqlite3_column_text(s, 0), "wal"), "journal mode is WAL");
		sqlite3_finalize(s);
	}
	is_int(edge_store_generation(st, &gen), 0, "generation readable");
	is_int(gen, 0, "generation starts at 0");

	is_int(edge_store_begin(st, err, sizeof(err)), 0, "BEGIN IMMEDIATE");
	is_int(edge_store_exec(st, "INSERT INTO site(domain, created_at) VALUES ('example.com', 1)",
			       err, sizeof(err)), 0, "insert a site");
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
			   err, sizeof(err)) == -EIO, "a duplicate primary key fails");
	ok(edge_store_exec(st, "INSERT INTO sni(hostname, cert_file, key_file, upstream, tls_min,"
			   " created_at, updated_at) VALUES ('a', 'c', 'k', 'u', '1.1', 0, 0)",
			   err, sizeof(err)) == -EIO, "tls_min outside 1.2/1.3 fails its CHECK");
	ok(edge_store_exec(st, "INSERT INTO ca_host(ca_id, hostname) VALUES (42, 'a.example.com')",
			   err, sizeof(err)) == -EIO, "a binding to a missing CA fails (foreign key)");
	edge_store_rollback(st);

	/* Cascades: deleting a CA or rule deletes its bindings. */
	edge_store_begin(st, err, sizeof(err));
	edge_store_exec(st, "INSERT INTO ca(id, name, fingerprint, subject, not_before, not_after,"
			" pem, created_at) VALUES (1, 'n', 'F', 'CN=x', 0, 1, 'p', 0)", err, sizeof(err));
	edge_store_exec(st, "INSERT INTO ca_host VALUES (1, 'a.example.com')", err, sizeof(err));
	edge_store_exec(st, "DELETE FROM ca WHERE id = 1", err, sizeof(err));
	is_int(count(st, "SELECT count(*) FROM ca_host"), 0, "deleting a CA cascades to bindings");
	edge_store_rollback(st);

	/* Two writers: the second BEGIN IMMEDIATE waits, then times out. */
	is_int(edge_store_open(state, 0, &st2, err, sizeof(err)), 0, "a second connection opens");
	edge_store_begin(st, err, sizeof(err));
	sqlite3_busy_timeout(edge_store_db(st2), 200);
	ok(edge_store_begin(st2, err, sizeof(err)) != 0, "a second writer is refused while the "
	   "first holds the lock: %s", err);
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
