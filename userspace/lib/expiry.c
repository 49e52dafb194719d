#include "expiry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "store.h"
#include "tlsctx.h"

const char *edge_expiry_kind_name(enum edge_expiry_kind k)
{
	switch (k) {
	case EDGE_EXPIRY_SERVER_CERT:
		return "server_cert";
	case EDGE_EXPIRY_BUILTIN_CA:
		return "builtin_ca";
	case EDGE_EXPIRY_CA:
		return "ca";
	case EDGE_EXPIRY_CRL:
		return "crl";
	}
	return "?";
}

long edge_expiry_days_left(int64_t not_after, int64_t now)
{
	int64_t d = not_after - now;

	return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

struct list {
	struct edge_expiry_item *v;
	size_t n, cap;
};

static struct edge_expiry_item *add(struct list *l, enum edge_expiry_kind kind, const char *name,
				    int64_t not_after)
{
	struct edge_expiry_item *it;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct edge_expiry_item *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	it = &l->v[l->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
	it->not_after = not_after;
	return it;
}

static int64_t asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm = { 0 };

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

/* The subject of a PEM certificate, RFC 2253 (the verifier's issuer form). */
static void pem_subject(const char *pem, char *out, size_t len)
{
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO *m = x ? BIO_new(BIO_s_mem()) : NULL;
	int n = 0;

	out[0] = '\0';
	if (m && X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(m, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(m);
	X509_free(x);
	BIO_free(b);
}

/* The notAfter of the first certificate in a PEM file (0: unreadable), and the key
 * type it takes in an SNI object ("" when it is none of those). */
static int64_t file_not_after(const char *path, char *type, size_t len)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	int64_t t = x ? asn1_epoch(X509_get0_notAfter(x)) : 0;
	const char *kt = x ? edge_tlsctx_key_type(X509_get0_pubkey(x)) : NULL;

	snprintf(type, len, "%s", kt ? kt : "");
	X509_free(x);
	if (f)
		fclose(f);
	return t;
}

static const char *col(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return s ? (const char *)s : "";
}

/* Every SNI object's server certificates, with their place and how many the object has
 * (v4: sni's own pair first, then its sni_cert rows). */
static const char server_certs[] = "SELECT hostname, cert_file, 1, 1 FROM sni ORDER BY hostname";
static const char server_certs_v4[] =
	"SELECT a.hostname, a.cert_file, a.pos, 1 + (SELECT count(*) FROM sni_cert c"
	" WHERE c.hostname = a.hostname) FROM (SELECT hostname, cert_file, 1 AS pos FROM sni"
	" UNION ALL SELECT hostname, cert_file, pos FROM sni_cert) a ORDER BY a.hostname, a.pos";

int edge_expiry_scan(struct edge_store *st, struct edge_expiry_item **items, size_t *n, char *err,
		     size_t errlen)
{
	char types[EDGE_MAX_CERTS_PER_SNI][16];
	struct list l = { 0 };
	sqlite3_stmt *q = NULL;
	size_t n_types = 0;
	int rc = -ENOMEM, step;

	*items = NULL;
	*n = 0;
	if ((rc = edge_store_begin_read(st, err, errlen)))
		return rc;
	rc = -EIO;
	q = edge_store_prepare(st,
			       edge_store_schema_version(st) >= 4 ? server_certs_v4 : server_certs,
			       err, errlen);
	if (!q)
		goto out;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		char name[sizeof(l.v->name)], type[16];
		int64_t na = file_not_after(col(q, 1), type, sizeof(type));
		int pos = sqlite3_column_int(q, 2);

		/* Rows come by hostname, then place: the types seen so far are the
		 * object's. With several certificates: "api.example.com (rsa)"; a type
		 * that is none of the three, or one seen before (the snapshot refuses
		 * both), by its place: "api.example.com (#2)". */
		if (pos == 1)
			n_types = 0;
		snprintf(name, sizeof(name), "%s", col(q, 0));
		if (sqlite3_column_int(q, 3) > 1) {
			bool dup = !*type;

			for (size_t i = 0; !dup && i < n_types; i++)
				dup = !strcmp(types[i], type);
			if (dup)
				snprintf(name, sizeof(name), "%s (#%d)", col(q, 0), pos);
			else
				snprintf(name, sizeof(name), "%s (%s)", col(q, 0), type);
			if (!dup && n_types < sizeof(types) / sizeof(types[0]))
				snprintf(types[n_types++], sizeof(types[0]), "%s", type);
		}
		if (na && !add(&l, EDGE_EXPIRY_SERVER_CERT, name, na))
			goto oom;
	}
	sqlite3_finalize(q);
	q = edge_store_prepare(st, "SELECT not_after, cert_pem FROM builtin_ca", err, errlen);
	if (!q)
		goto out;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		struct edge_expiry_item *it = add(&l, EDGE_EXPIRY_BUILTIN_CA, "builtin",
						  sqlite3_column_int64(q, 0));

		if (!it)
			goto oom;
		pem_subject(col(q, 1), it->subject, sizeof(it->subject));
	}
	sqlite3_finalize(q);
	q = edge_store_prepare(st,
			       "SELECT name, not_after, pem, crl_next_update FROM ca"
			       " ORDER BY id",
			       err, errlen);
	if (!q)
		goto out;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		struct edge_expiry_item *it = add(&l, EDGE_EXPIRY_CA, col(q, 0),
						  sqlite3_column_int64(q, 1));

		if (!it)
			goto oom;
		pem_subject(col(q, 2), it->subject, sizeof(it->subject));
		if (sqlite3_column_type(q, 3) != SQLITE_NULL &&
		    !add(&l, EDGE_EXPIRY_CRL, col(q, 0), sqlite3_column_int64(q, 3)))
			goto oom;
	}
	sqlite3_finalize(q);
	q = NULL;
	*items = l.v;
	*n = l.n;
	l.v = NULL;
	rc = 0;
	goto out;
oom:
	rc = -ENOMEM;
	snprintf(err, errlen, "out of memory");
out:
	if (q)
		sqlite3_finalize(q);
	edge_store_end_read(st);
	free(l.v);
	return rc;
}
