/* Between the snapshot's builders: snapshot.c (sites, CAs, trust sets, rules, identity rules,
 * the lookups) and snapshot_sni.c (SNI objects: server certificates, CA hints, TLS contexts). */
#ifndef EDGE_SNAPSHOT_INT_H
#define EDGE_SNAPSHOT_INT_H

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "store.h"

#define BUILD_FAIL(...)                             \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		rc = -EINVAL;                       \
		goto out;                           \
	} while (0)

struct ca_row {
	int64_t id;
	char *name;
	char *trust_domain; /* NULL: none */
	X509 *cert;
	X509_CRL *crl;
};

struct build {
	struct edge_snapshot *s;
	X509 *builtin;
	char *builtin_td; /* the built-in CA's SPIFFE trust domain, or NULL */
	struct ca_row *cas;
	size_t n_cas;
	const struct edge_config *cfg;
	const struct edge_crl_extra *extra; /* CRLs the daemon fetched, or NULL */
};

/* A copy of a text column ("" for NULL); NULL when out of memory. */
static inline char *edge_snap_col_dup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return strdup(t ? (const char *)t : "");
}

/* A nullable text column; "" counts as unset too. */
static inline const char *edge_snap_col_text(sqlite3_stmt *q, int i)
{
	const char *t = sqlite3_column_type(q, i) == SQLITE_NULL
				? NULL
				: (const char *)sqlite3_column_text(q, i);

	return t && *t ? t : NULL;
}

/* snapshot_lookup.c: whether a hostname (or a wildcard) is under one of the sites; the
 * wildcard one label up of a hostname ("*.example.com" for "a.example.com"), false for none. */
bool edge_snap_under_site(const struct edge_snapshot *s, const char *host);
bool edge_snap_wildcard_of(const char *host, char *buf, size_t len);
/* The SNI objects, sorted by hostname, with their TLS contexts when hooks is not NULL. */
int edge_snap_load_snis(struct edge_store *st, struct build *b, const struct edge_tls_hooks *hooks,
			char *err, size_t errlen);

#endif
