/* The snapshot's SNI objects: server certificates (one per key type), CA hints for the
 * CertificateRequest, ALPN, forwarding, and their TLS contexts (snapshot_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "alpn.h"
#include "forward.h"
#include "log.h"
#include "pki.h"
#include "snapshot_int.h"
#include "tlsctx.h"

static int parse_version(const char *v)
{
	return !strcmp(v, "1.3") ? TLS1_3_VERSION : TLS1_2_VERSION;
}

/* The subjects of the PEM certificates in pem (a hint list). */
static STACK_OF(X509_NAME) *pem_names(const char *pem)
{
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;

	if (!names || !b) {
		sk_X509_NAME_free(names);
		BIO_free(b);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));

		X509_free(x);
		if (!n || !sk_X509_NAME_push(names, n)) {
			X509_NAME_free(n);
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			names = NULL;
			break;
		}
	}
	ERR_clear_error(); /* the end of the bundle */
	BIO_free(b);
	return names;
}

static size_t names_der(const STACK_OF(X509_NAME) *names)
{
	size_t n = 0;

	for (int i = 0; i < sk_X509_NAME_num(names); i++) {
		int l = i2d_X509_NAME(sk_X509_NAME_value(names, i), NULL);

		n += l > 0 ? (size_t)l : 0;
	}
	return n;
}

/* The CA names of o's CertificateRequest (on its context). */
static int build_hints(struct build *b, struct edge_sni *o, const char *mode, const char *pem,
		       char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names = NULL;
	const STACK_OF(X509_NAME) *trusted;

	if (!mode || !strcmp(mode, "trusted")) {
		o->ca_hints = EDGE_CA_HINTS_TRUSTED;
		o->ctx_trust = edge_snapshot_trust(b->s, o->hostname);
		trusted = edge_trust_hints(o->ctx_trust);
		if (trusted && !(names = SSL_dup_CA_list(trusted)))
			return -ENOMEM;
	} else if (!strcmp(mode, "none")) {
		o->ca_hints = EDGE_CA_HINTS_NONE;
	} else if (!strcmp(mode, "list")) {
		o->ca_hints = EDGE_CA_HINTS_LIST;
		if (!pem || !(names = pem_names(pem)))
			return pem ? -ENOMEM : -EINVAL;
		if (names_der(names) > EDGE_CA_HINTS_MAX) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			snprintf(err, errlen, "sni %s: its CA hint list is over %d bytes",
				 o->hostname, EDGE_CA_HINTS_MAX);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "sni %s: unknown ca_hints '%s'", o->hostname, mode);
		return -EINVAL;
	}
	if (names)
		SSL_CTX_set_client_CA_list(o->ctx, names);
	return 0;
}

/* o's server certificates: sni's own pair, then (v4) its sni_cert rows in order. */
static int build_server(struct edge_sni *o, sqlite3_stmt *q, sqlite3_stmt *more,
			const struct edge_tls_hooks *hooks, char *err, size_t errlen)
{
	struct edge_tls_pair pairs[EDGE_MAX_CERTS_PER_SNI + 1] = {
		{ (const char *)sqlite3_column_text(q, 1),
		  (const char *)sqlite3_column_text(q, 2) },
	};
	char *files[2 * EDGE_MAX_CERTS_PER_SNI] = { NULL };
	size_t n = 1;
	int rc = 0;

	if (more) {
		sqlite3_reset(more);
		sqlite3_bind_text(more, 1, o->hostname, -1, SQLITE_STATIC);
		/* The CHECK on pos bounds the rows; one more is read to be refused. */
		while (n <= EDGE_MAX_CERTS_PER_SNI && sqlite3_step(more) == SQLITE_ROW) {
			files[2 * n - 2] = edge_snap_col_dup(more, 0);
			files[2 * n - 1] = edge_snap_col_dup(more, 1);
			if (!files[2 * n - 2] || !files[2 * n - 1]) {
				rc = -ENOMEM;
				goto out;
			}
			pairs[n].cert = files[2 * n - 2];
			pairs[n].key = files[2 * n - 1];
			n++;
		}
	}
	rc = edge_tlsctx_server(o, pairs, n, hooks, err, errlen);
out:
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		free(files[i]);
	return rc;
}

static int build_sni(struct build *b, struct edge_sni *o, sqlite3_stmt *q, sqlite3_stmt *more,
		     const struct edge_tls_hooks *hooks, char *err, size_t errlen)
{
	const char *mode = (const char *)sqlite3_column_text(q, 5);
	char aerr[256];
	int rc;

	o->hostname = edge_snap_col_dup(q, 0);
	o->upstream_text = edge_snap_col_dup(q, 6);
	if (!o->hostname || !o->upstream_text)
		return -ENOMEM;
	o->tls_min = parse_version((const char *)sqlite3_column_text(q, 3));
	o->tls_max = parse_version((const char *)sqlite3_column_text(q, 4));
	if (edge_mtls_mode_parse(mode ? mode : "", &o->mode)) {
		snprintf(err, errlen, "sni %s: unknown mtls mode '%s'", o->hostname, mode);
		return -EINVAL;
	}
	if (edge_forward_parse(edge_snap_col_text(q, 12) ? edge_snap_col_text(q, 12) : "none",
			       &o->forward)) {
		snprintf(err, errlen, "sni %s: unknown forward mode '%s'", o->hostname,
			 edge_snap_col_text(q, 12));
		return -EINVAL;
	}
	if (edge_protocol_parse(edge_snap_col_text(q, 13) ? edge_snap_col_text(q, 13) : "tcp",
				&o->protocol)) {
		snprintf(err, errlen, "sni %s: unknown protocol '%s'", o->hostname,
			 edge_snap_col_text(q, 13));
		return -EINVAL;
	}
	if (edge_addr_parse(o->upstream_text, &o->upstream, aerr, sizeof(aerr))) {
		snprintf(err, errlen, "sni %s: upstream: %s", o->hostname, aerr);
		return -EINVAL;
	}
	if (edge_alpn_parse(edge_snap_col_text(q, 16), o->alpn, &o->alpn_len, aerr, sizeof(aerr))) {
		snprintf(err, errlen, "sni %s: %s", o->hostname, aerr);
		return -EINVAL;
	}
	o->no_alpn_refuse = edge_snap_col_text(q, 17) &&
			    !strcmp(edge_snap_col_text(q, 17), "refuse");
	/* The CLI refuses both; a store written by other hands gets the same answer.
	 * protocol http reads h2 (terminated: the daemon's h2.c) and http/1.1. */
	if (o->protocol == EDGE_PROTOCOL_HTTP ? !edge_alpn_only_http(o->alpn, o->alpn_len)
					      : edge_alpn_beyond_http1(o->alpn, o->alpn_len) &&
							o->forward == EDGE_FORWARD_HEADERS) {
		snprintf(err, errlen, "sni %s: ALPN '%s' names a protocol %s cannot read",
			 o->hostname, edge_snap_col_text(q, 16),
			 o->protocol == EDGE_PROTOCOL_HTTP
				 ? "other than h2 and http/1.1, which protocol http"
				 : "other than http/1.1, which forward headers");
		return -EINVAL;
	}
	if (!hooks)
		return 0;
	if ((rc = build_server(o, q, more, hooks, err, errlen)) ||
	    (rc = build_hints(b, o, edge_snap_col_text(q, 14), edge_snap_col_text(q, 15), err,
			      errlen)))
		return rc;
	if (sqlite3_column_type(q, 7) != SQLITE_NULL &&
	    !strcmp((const char *)sqlite3_column_text(q, 7), "on"))
		return edge_tlsctx_upstream(o, edge_snap_col_text(q, 8), edge_snap_col_text(q, 9),
					    edge_snap_col_text(q, 10), edge_snap_col_text(q, 11),
					    hooks, err, errlen);
	return 0;
}

int edge_snap_load_snis(struct edge_store *st, struct build *b, const struct edge_tls_hooks *hooks,
			char *err, size_t errlen)
{
	struct edge_snapshot *s = b->s;
	sqlite3_stmt *q, *more = NULL;
	int rc = 0;

	/* An older store (the daemon reads it as it is; the next mtls-edgectl
	 * command migrates it) lacks the newer columns: their defaults stand in
	 * (v1: every object is tcp; before v3: CA hints are the trusted CAs;
	 * before v4: one server certificate each, sni's own; before v5: no ALPN). */
	static const char *const selects[] = {
		"SELECT hostname, cert_file, key_file, tls_min, tls_max, mtls, upstream,"
		" upstream_tls, upstream_ca, upstream_cert, upstream_key, upstream_sni, forward,"
		" 'tcp', 'trusted', NULL, '', 'allow' FROM sni ORDER BY hostname",
		"SELECT hostname, cert_file, key_file, tls_min, tls_max, mtls, upstream,"
		" upstream_tls, upstream_ca, upstream_cert, upstream_key, upstream_sni, forward,"
		" protocol, 'trusted', NULL, '', 'allow' FROM sni ORDER BY hostname",
		"SELECT hostname, cert_file, key_file, tls_min, tls_max, mtls, upstream,"
		" upstream_tls, upstream_ca, upstream_cert, upstream_key, upstream_sni, forward,"
		" protocol, ca_hints, ca_hints_pem, '', 'allow' FROM sni ORDER BY hostname",
		"SELECT hostname, cert_file, key_file, tls_min, tls_max, mtls, upstream,"
		" upstream_tls, upstream_ca, upstream_cert, upstream_key, upstream_sni, forward,"
		" protocol, ca_hints, ca_hints_pem, alpn, no_alpn FROM sni ORDER BY hostname",
	};
	int ver = edge_store_schema_version(st);

	q = edge_store_prepare(st,
			       selects[ver >= 5   ? 3
				       : ver >= 3 ? 2
				       : ver >= 2 ? 1
						  : 0],
			       err, errlen);
	if (!q)
		return -EIO;
	if (hooks && ver >= 4 &&
	    !(more = edge_store_prepare(st,
					"SELECT cert_file, key_file FROM sni_cert"
					" WHERE hostname = ?1 ORDER BY pos",
					err, errlen))) {
		sqlite3_finalize(q);
		return -EIO;
	}
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		struct edge_sni *n = realloc(s->snis, (s->n_sni + 1) * sizeof(*n));

		if (!n) {
			rc = -ENOMEM;
			break;
		}
		s->snis = n;
		memset(&s->snis[s->n_sni], 0, sizeof(*n));
		s->n_sni++;
		rc = build_sni(b, &s->snis[s->n_sni - 1], q, more, hooks, err, errlen);
	}
	sqlite3_finalize(more);
	sqlite3_finalize(q);
	return rc;
}
