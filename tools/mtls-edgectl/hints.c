/* The CA names of the CertificateRequest (sni add|update --ca-hints): a list of
 * CA certificates of its own, or the CAs trusted for the hostname, whose names
 * must fit in EDGE_CA_HINTS_MAX bytes (DER) as the daemon sends them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "pki.h"
#include "snapshot.h"

/* The DER size of a certificate's subject, as the daemon counts it; -1 when the
 * stored PEM does not parse. */
static long subject_der(const char *pem, size_t len)
{
	char err[256];
	X509 *x = NULL;
	int n;

	if (!pem || edge_pki_cert_parse(pem, len, &x, err, sizeof(err)))
		return -1;
	n = i2d_X509_NAME(X509_get_subject_name(x), NULL);
	X509_free(x);
	return n > 0 ? n : 0;
}

/* "a.b.c" -> "*.b.c" (as the daemon's trust lookup goes one label up). */
static bool wildcard_of(const char *host, char *buf, size_t len)
{
	const char *dot = strchr(host, '.');

	if (!dot || !dot[1] || !strncmp(host, "*.", 2))
		return false;
	snprintf(buf, len, "*%s", dot);
	return true;
}

static bool in_list(json_t *hosts, const char *h)
{
	json_t *e;
	size_t i;

	CTL_ARRAY_EACH(hosts, i, e)
		if (!strcmp(json_string_value(e), h))
			return true;
	return false;
}

/* The DER bytes of the names trusted for bound hostname h: the built-in CA's,
 * then every CA bound to h or to its wildcard, once per binding (the daemon's
 * trust set for h, snapshot.c). -1 on a store error (printed). */
static long trusted_der(struct ctl *c, const char *h, long builtin)
{
	char wild[EDGE_HOSTNAME_LEN + 2] = "";
	sqlite3_stmt *st;
	long total = builtin;

	wildcard_of(h, wild, sizeof(wild));
	st = ctl_sql(c,
		     "SELECT ca.pem FROM ca_host JOIN ca ON ca.id = ca_host.ca_id"
		     " WHERE ca_host.hostname = ?1 OR ca_host.hostname = ?2",
		     "ss", h, wild);
	if (!st)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		long n = subject_der((const char *)sqlite3_column_text(st, 0),
				     (size_t)sqlite3_column_bytes(st, 0));

		total += n > 0 ? n : 0;
	}
	sqlite3_finalize(st);
	return total;
}

int ctl_hints_check_trusted(struct ctl *c, json_t *hosts)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT cert_pem FROM builtin_ca WHERE id = 1", NULL);
	long builtin = 0;
	int rc = CTL_OK;

	if (!st)
		return CTL_EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		builtin = subject_der((const char *)sqlite3_column_text(st, 0),
				      (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	builtin = builtin > 0 ? builtin : 0;
	st = ctl_sql(c, "SELECT DISTINCT hostname FROM ca_host ORDER BY hostname", NULL);
	if (!st)
		return CTL_EIO;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		char wild[EDGE_HOSTNAME_LEN + 2];
		long total;

		if (!in_list(hosts, h) &&
		    !(wildcard_of(h, wild, sizeof(wild)) && in_list(hosts, wild)))
			continue;
		total = trusted_der(c, h, builtin);
		if (total < 0)
			rc = CTL_EIO;
		else if (total > EDGE_CA_HINTS_MAX)
			rc = ctl_error(CTL_EINVAL,
				       "the names of the CAs trusted for %s would take %ld bytes, "
				       "over the %d (16 KiB) a CertificateRequest carries; bind "
				       "fewer CAs there, or CAs with shorter subjects",
				       h, total, EDGE_CA_HINTS_MAX);
	}
	sqlite3_finalize(st);
	return rc;
}

int ctl_hints_read_list(struct ctl *c, const char *opt, const char *file, char **pem)
{
	STACK_OF(X509) *certs = NULL;
	char *buf = NULL, *out = NULL;
	size_t len, total = 0, outlen = 0;
	int rc;

	*pem = NULL;
	if ((rc = ctl_read_input(file, &buf, &len)))
		return rc;
	if (edge_pki_chain_parse(buf, len, &certs, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "--%s %s: %s", opt, file, c->err);
		goto out;
	}
	for (int i = 0; !rc && i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		char subject[512], *one = NULL;
		int n = i2d_X509_NAME(X509_get_subject_name(x), NULL);

		edge_pki_subject(X509_get_subject_name(x), subject, sizeof(subject));
		if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
			rc = ctl_error(CTL_EINVAL,
				       "--%s %s: certificate %d (%s) is not a CA certificate "
				       "(basicConstraints CA:TRUE is missing)",
				       opt, file, i + 1, subject);
			break;
		}
		total += n > 0 ? (size_t)n : 0;
		if (edge_pki_cert_pem(x, &one)) {
			rc = ctl_error(CTL_EIO, "out of memory");
			break;
		}
		{
			size_t l = strlen(one);
			char *grown = realloc(out, outlen + l + 1);

			if (!grown) {
				free(one);
				rc = ctl_error(CTL_EIO, "out of memory");
				break;
			}
			out = grown;
			memcpy(out + outlen, one, l + 1);
			outlen += l;
			free(one);
		}
	}
	if (!rc && total > EDGE_CA_HINTS_MAX)
		rc = ctl_error(CTL_EINVAL,
			       "--%s %s: the CA names take %zu bytes, over the %d (16 KiB) a "
			       "CertificateRequest carries",
			       opt, file, total, EDGE_CA_HINTS_MAX);
	if (!rc) {
		*pem = out;
		out = NULL;
	}
out:
	sk_X509_pop_free(certs, X509_free);
	free(out);
	free(buf);
	return rc;
}

json_t *ctl_hints_names(const char *pem)
{
	json_t *arr = json_array();
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x;

	while (arr && b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		BIO *m = BIO_new(BIO_s_mem());
		char *data;
		long n;

		if (m && X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
		    (n = BIO_get_mem_data(m, &data)) >= 0)
			json_array_append_new(arr, json_stringn(data, (size_t)n));
		BIO_free(m);
		X509_free(x);
	}
	ERR_clear_error(); /* the end of the bundle */
	BIO_free(b);
	return arr;
}
