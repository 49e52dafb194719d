/*
 * HTTP/2 connection reuse ("coalescing", RFC 9113 9.1.1, RFC 9110 4.3.3): a browser that
 * holds an h2 connection to hostname A sends it the requests for hostname B as well when A's
 * server certificate covers B. Where the edge reads HTTP it can answer 421; with
 * --protocol tcp it relays the bytes unread, so B's requests would pass under A's
 * verification and reach A's upstream. sni add|update therefore refuses h2 on an SNI object
 * of protocol tcp whose certificate covers another SNI object with another mTLS mode,
 * other trusted CAs or other identity rules (and an object such a certificate covers),
 * and says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "alpn.h"
#include "ctl.h"
#include "hostname.h"

#define MAX_SANS 64

struct obj {
	char host[EDGE_HOSTNAME_LEN];
	char mtls[16];
	bool h2_tcp; /* protocol tcp with h2 in its ALPN list */
};

/* "a.b.c" -> "*.b.c"; "" for a wildcard or a single label. */
static void wildcard_of(const char *host, char *out, size_t len)
{
	const char *dot = strchr(host, '.');

	out[0] = '\0';
	if (dot && dot[1] && strncmp(host, "*.", 2))
		snprintf(out, len, "*%s", dot);
}

/* The DNS names of the leaf in a chain file, lower-case; how many (0 when it does not read:
 * the write's own checks say why). */
static size_t file_sans(const char *path, char sans[][EDGE_HOSTNAME_LEN], size_t max)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	GENERAL_NAMES *gens = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
	size_t n = 0;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *p;
		int len;

		if (g->type != GEN_DNS)
			continue;
		p = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		if (len <= 0 || len >= EDGE_HOSTNAME_LEN || memchr(p, 0, (size_t)len))
			continue;
		for (int j = 0; j < len; j++)
			sans[n][j] = (char)(p[j] >= 'A' && p[j] <= 'Z' ? p[j] - 'A' + 'a' : p[j]);
		sans[n][len] = '\0';
		if (sans[n][len - 1] == '.')
			sans[n][len - 1] = '\0';
		n++;
	}
	GENERAL_NAMES_free(gens);
	X509_free(x);
	if (f)
		fclose(f);
	ERR_clear_error();
	return n;
}

/* "label.rest" with one label before rest. */
static bool one_label_under(const char *name, const char *rest)
{
	size_t n = strlen(name), r = strlen(rest);
	const char *dot;

	if (n <= r + 1 || strcmp(name + n - r, rest) || name[n - r - 1] != '.')
		return false;
	dot = memchr(name, '.', n - r - 1);
	return !dot && strncmp(name, "*", 1);
}

/* The name under host (an SNI object's: exact or "*.d") that the certificate name san
 * covers, into out; false when it covers none. */
static bool covers(const char *san, const char *host, char *out, size_t len)
{
	bool wild_san = !strncmp(san, "*.", 2), wild_host = !strncmp(host, "*.", 2);

	if (!strcmp(san, host) || (wild_san && !wild_host && one_label_under(host, san + 2))) {
		snprintf(out, len, "%s", host);
		return true;
	}
	if (wild_host && !wild_san && one_label_under(san, host + 2)) {
		snprintf(out, len, "%s", san);
		return true;
	}
	return false;
}

/* The rows of table whose hostname is the one the daemon's lookup finds for name: name's
 * own when it has any, else its wildcard's. The key of the set of a column (sorted, as
 * text) into out; exact names of ca_host also trust what is bound to their wildcard, as in
 * the daemon (snapshot.c). */
static int policy_key(struct ctl *c, const char *table, const char *col, const char *name,
		      bool merge_wild, char *out, size_t len)
{
	char wild[EDGE_HOSTNAME_LEN + 1], sql[512];
	sqlite3_stmt *st;
	bool exact;

	wildcard_of(name, wild, sizeof(wild));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE hostname = ?", table);
	exact = ctl_int(c, sql, "s", name) > 0;
	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(group_concat(v, char(10)), '') FROM (SELECT DISTINCT %s AS v"
		 " FROM %s WHERE hostname = ?1 OR (?2 != '' AND hostname = ?2) ORDER BY v)",
		 col, table);
	st = ctl_sql(c, sql, "ss", exact ? name : wild, exact && merge_wild ? wild : "");
	if (!st)
		return CTL_EIO;
	out[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return CTL_OK;
}

/* What differs between a connection verified for a and a request for b: NULL if nothing. */
static const char *differs(struct ctl *c, const struct obj *oa, const char *a, const struct obj *ob,
			   const char *b, int *rc)
{
	static char ka[8192], kb[8192];

	if (strcmp(oa->mtls, ob->mtls))
		return "another mTLS mode";
	if ((*rc = policy_key(c, "ca_host", "ca_id", a, true, ka, sizeof(ka))) ||
	    (*rc = policy_key(c, "ca_host", "ca_id", b, true, kb, sizeof(kb))))
		return NULL;
	if (strcmp(ka, kb))
		return "other trusted CAs";
	if ((*rc = policy_key(c, "idrule", "effect || ' ' || field || ' ' || value", a, false, ka,
			      sizeof(ka))) ||
	    (*rc = policy_key(c, "idrule", "effect || ' ' || field || ' ' || value", b, false, kb,
			      sizeof(kb))))
		return NULL;
	return strcmp(ka, kb) ? "other identity rules" : NULL;
}

/* The SNI object that serves name: its own, else its wildcard's; -1 for none. */
static ssize_t serving(const struct obj *objs, size_t n, const char *name)
{
	char wild[EDGE_HOSTNAME_LEN + 1];

	for (size_t i = 0; i < n; i++)
		if (!strcmp(objs[i].host, name))
			return (ssize_t)i;
	wildcard_of(name, wild, sizeof(wild));
	for (size_t i = 0; wild[0] && i < n; i++)
		if (!strcmp(objs[i].host, wild))
			return (ssize_t)i;
	return -1;
}

/* One h2 object x (objs[ix]) against the others; only pairs with the written host count. */
static int check_one(struct ctl *c, const struct obj *objs, size_t n, size_t ix,
		     const char *written)
{
	static char sans[MAX_SANS][EDGE_HOSTNAME_LEN];
	const struct obj *x = &objs[ix];
	size_t ns = 0;
	sqlite3_stmt *st = ctl_sql(c,
				   "SELECT cert_file FROM sni WHERE hostname = ?1 UNION ALL"
				   " SELECT cert_file FROM sni_cert WHERE hostname = ?1",
				   "s", x->host);
	int rc = CTL_OK;

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW && ns < MAX_SANS)
		ns += file_sans((const char *)sqlite3_column_text(st, 0), sans + ns, MAX_SANS - ns);
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct obj *b = &objs[i];
		char name[EDGE_HOSTNAME_LEN];
		const char *why;

		if (i == ix || (written && strcmp(x->host, written) && strcmp(b->host, written)))
			continue;
		for (size_t k = 0; k < ns && !rc; k++) {
			if (!covers(sans[k], b->host, name, sizeof(name)) ||
			    serving(objs, n, name) != (ssize_t)i)
				continue;
			why = differs(c, x, x->host, b, name, &rc);
			if (rc || !why)
				continue;
			return ctl_error(
				CTL_EINVAL,
				"ALPN h2 on %s (--protocol tcp): its certificate also covers %s "
				"(SNI object %s), which has %s; a browser may send %s's requests "
				"on a connection verified for %s (HTTP/2 connection reuse), and "
				"--protocol tcp relays them unread to %s's upstream. Use a "
				"certificate that does not cover %s, the same mTLS mode, CAs and "
				"identity rules on both, or no h2 on %s",
				x->host, name, b->host, why, name, x->host, x->host, name, x->host);
		}
	}
	return rc;
}

int ctl_coalesce_check(struct ctl *c, const char *written)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT hostname, mtls, protocol, alpn FROM sni", NULL);
	struct obj *objs = NULL;
	size_t n = 0;
	int rc = CTL_OK;

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct obj *more = realloc(objs, (n + 1) * sizeof(*objs));
		unsigned char wire[EDGE_ALPN_WIRE_MAX];
		size_t wl = 0;
		char err[256];

		if (!more) {
			rc = ctl_error(CTL_EIO, "out of memory");
			break;
		}
		objs = more;
		snprintf(objs[n].host, sizeof(objs[n].host), "%s", sqlite3_column_text(st, 0));
		snprintf(objs[n].mtls, sizeof(objs[n].mtls), "%s", sqlite3_column_text(st, 1));
		objs[n].h2_tcp = !strcmp((const char *)sqlite3_column_text(st, 2), "tcp") &&
				 !edge_alpn_parse((const char *)sqlite3_column_text(st, 3), wire,
						  &wl, err, sizeof(err)) &&
				 edge_alpn_has(wire, wl, "h2", 2);
		n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; !rc && i < n; i++)
		if (objs[i].h2_tcp)
			rc = check_one(c, objs, n, i, written);
	free(objs);
	return rc;
}
