#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "log.h"
#include "store.h"
#include "snapshot_int.h"
#include "tlsctx.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static X509_CRL *pem_crl(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_CRL *c = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return c;
}

static int load_sites(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	sqlite3_stmt *q = edge_store_prepare(st, "SELECT domain FROM site ORDER BY domain", err,
					     errlen);
	struct edge_snapshot *s = b->s;
	int rc = 0;

	if (!q)
		return -EIO;
	while (sqlite3_step(q) == SQLITE_ROW) {
		char **n = realloc(s->sites, (s->n_sites + 1) * sizeof(char *));

		if (!n || !(n[s->n_sites] = edge_snap_col_dup(q, 0))) {
			if (n)
				s->sites = n;
			rc = -ENOMEM;
			break;
		}
		s->sites = n;
		s->n_sites++;
	}
	sqlite3_finalize(q);
	return rc;
}

static int load_builtin(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	sqlite3_stmt *q =
		edge_store_prepare(st,
				   edge_store_schema_version(st) >= 3
					   ? "SELECT cert_pem, trust_domain FROM builtin_ca"
					     " WHERE id = 1"
					   : "SELECT cert_pem, NULL FROM builtin_ca WHERE id = 1",
				   err, errlen);
	struct edge_snapshot *s = b->s;
	int rc = 0;

	if (!q)
		return -EIO;
	if (sqlite3_step(q) == SQLITE_ROW) {
		b->builtin = pem_cert((const char *)sqlite3_column_text(q, 0));
		if (sqlite3_column_type(q, 1) != SQLITE_NULL &&
		    !(b->builtin_td = edge_snap_col_dup(q, 1)))
			rc = -ENOMEM;
		if (!b->builtin) {
			snprintf(err, errlen,
				 "built-in CA certificate in the store does not parse");
			rc = -EINVAL;
		}
	}
	sqlite3_finalize(q);
	if (rc)
		return rc;

	q = edge_store_prepare(st,
			       "SELECT serial FROM client_cert WHERE status = 'revoked'"
			       " ORDER BY serial",
			       err, errlen);
	if (!q)
		return -EIO;
	while (sqlite3_step(q) == SQLITE_ROW) {
		char **n = realloc(s->revoked, (s->n_revoked + 1) * sizeof(char *));

		if (!n || !(n[s->n_revoked] = edge_snap_col_dup(q, 0))) {
			if (n)
				s->revoked = n;
			rc = -ENOMEM;
			break;
		}
		s->revoked = n;
		s->n_revoked++;
	}
	sqlite3_finalize(q);
	if (s->n_revoked)
		qsort(s->revoked, s->n_revoked, sizeof(char *), cmp_str);
	return rc;
}

/* A fetched CRL of this CA (its name, its signature) replaces the store's when it is newer
 * (a greater CRLNumber) or the store has none. */
static void prefer_fetched(struct build *b, struct ca_row *r)
{
	for (size_t i = 0; b->extra && i < b->extra->n; i++) {
		X509_CRL *c = b->extra->v[i].crl;

		if (!b->extra->v[i].by_anchor ||
		    X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(r->cert)) ||
		    X509_CRL_verify(c, X509_get0_pubkey(r->cert)) != 1) {
			ERR_clear_error();
			continue;
		}
		if (r->crl && edge_crl_number_cmp(c, r->crl) <= 0)
			continue;
		X509_CRL_up_ref(c);
		X509_CRL_free(r->crl);
		r->crl = c;
	}
}

static int load_cas(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	sqlite3_stmt *q = edge_store_prepare(st,
					     edge_store_schema_version(st) >= 3
						     ? "SELECT id, name, pem, crl_pem, trust_domain"
						       " FROM ca ORDER BY id"
						     : "SELECT id, name, pem, crl_pem, NULL FROM ca"
						       " ORDER BY id",
					     err, errlen);
	int rc = 0;

	if (!q)
		return -EIO;
	while (sqlite3_step(q) == SQLITE_ROW) {
		struct ca_row *n = realloc(b->cas, (b->n_cas + 1) * sizeof(*n));
		struct ca_row *r;

		if (!n) {
			rc = -ENOMEM;
			break;
		}
		b->cas = n;
		r = &b->cas[b->n_cas++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(q, 0);
		r->name = edge_snap_col_dup(q, 1);
		if (sqlite3_column_type(q, 4) != SQLITE_NULL &&
		    !(r->trust_domain = edge_snap_col_dup(q, 4))) {
			rc = -ENOMEM;
			break;
		}
		r->cert = pem_cert((const char *)sqlite3_column_text(q, 2));
		if (!r->cert) {
			snprintf(err, errlen, "uploaded CA %lld does not parse", (long long)r->id);
			rc = -EINVAL;
			break;
		}
		if (sqlite3_column_type(q, 3) != SQLITE_NULL) {
			r->crl = pem_crl((const char *)sqlite3_column_text(q, 3));
			if (!r->crl) {
				snprintf(err, errlen, "CRL of uploaded CA %lld does not parse",
					 (long long)r->id);
				rc = -EINVAL;
				break;
			}
		}
		prefer_fetched(b, r);
	}
	sqlite3_finalize(q);
	return rc;
}

static const struct ca_row *find_ca(const struct build *b, int64_t id)
{
	for (size_t i = 0; i < b->n_cas; i++)
		if (b->cas[i].id == id)
			return &b->cas[i];
	return NULL;
}

static int trust_add_row(struct edge_trust *t, const struct ca_row *r)
{
	int rc = edge_trust_add_named_ca(t, r->cert, false, r->name, r->trust_domain);

	if (!rc && r->crl)
		rc = edge_trust_add_crl(t, r->cert, r->crl);
	return rc;
}

static struct edge_trust *new_trust(struct build *b, bool with_builtin)
{
	struct edge_trust *t = edge_trust_new(b->cfg->verify_depth);

	if (!t)
		return NULL;
	if (with_builtin && b->builtin) {
		if (edge_trust_add_named_ca(t, b->builtin, true, "builtin", b->builtin_td) ||
		    edge_trust_set_revoked(t, b->s->revoked, b->s->n_revoked)) {
			edge_trust_free(t);
			return NULL;
		}
	}
	return t;
}

/* Adds every CA bound to `pattern` to t. */
static int bind_pattern(struct edge_store *st, struct build *b, struct edge_trust *t,
			const char *pattern, char *err, size_t errlen)
{
	sqlite3_stmt *q = edge_store_prepare(st, "SELECT ca_id FROM ca_host WHERE hostname = ?1",
					     err, errlen);
	int rc = 0;

	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, pattern, -1, SQLITE_STATIC);
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		const struct ca_row *r = find_ca(b, sqlite3_column_int64(q, 0));

		if (r)
			rc = trust_add_row(t, r);
	}
	sqlite3_finalize(q);
	return rc;
}

/* Fetched CRLs of intermediates, for the trust sets that hold the CA they chain to. */
static int add_intermediate_crls(struct build *b, struct edge_trust *t)
{
	for (size_t i = 0; b->extra && i < b->extra->n; i++) {
		const struct edge_crl_fetched *f = &b->extra->v[i];
		bool holds = false;

		for (size_t k = 0; !f->by_anchor && !holds && k < t->n_cas; k++)
			holds = !X509_cmp(t->cas[k].cert, f->anchor);
		if (holds) {
			int rc = edge_trust_add_crl(t, NULL, f->crl);

			if (rc)
				return rc;
		}
	}
	return 0;
}

static int load_trusts(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	struct edge_snapshot *s = b->s;
	sqlite3_stmt *q;
	int rc = 0;

	s->site_trust = new_trust(b, true);
	s->no_trust = new_trust(b, false);
	if (!s->site_trust || !s->no_trust)
		return -ENOMEM;

	q = edge_store_prepare(st, "SELECT DISTINCT hostname FROM ca_host ORDER BY hostname", err,
			       errlen);
	if (!q)
		return -EIO;
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		struct edge_trust_entry *n = realloc(s->trusts, (s->n_trust + 1) * sizeof(*n));
		struct edge_trust_entry *e;
		char wild[300];

		if (!n) {
			rc = -ENOMEM;
			break;
		}
		s->trusts = n;
		e = &s->trusts[s->n_trust];
		e->hostname = edge_snap_col_dup(q, 0);
		e->trust = e->hostname ? new_trust(b, edge_snap_under_site(s, e->hostname)) : NULL;
		if (!e->trust) {
			free(e->hostname);
			rc = -ENOMEM;
			break;
		}
		s->n_trust++;
		rc = bind_pattern(st, b, e->trust, e->hostname, err, errlen);
		/* An exact name also trusts what is bound to its wildcard. */
		if (!rc && edge_snap_wildcard_of(e->hostname, wild, sizeof(wild)))
			rc = bind_pattern(st, b, e->trust, wild, err, errlen);
		if (!rc)
			rc = add_intermediate_crls(b, e->trust);
	}
	sqlite3_finalize(q);
	return rc;
}

static int load_rules(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	struct edge_snapshot *s = b->s;
	sqlite3_stmt *q;
	int rc = 0;

	/* The oldest rule that names a hostname decides for it. */
	q = edge_store_prepare(st,
			       "SELECT h.hostname, r.action, MIN(r.id) FROM rule r"
			       " JOIN rule_host h ON h.rule_id = r.id GROUP BY h.hostname"
			       " ORDER BY h.hostname",
			       err, errlen);
	if (!q)
		return -EIO;
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		struct edge_rule_entry *n = realloc(s->rules, (s->n_rules + 1) * sizeof(*n));
		struct edge_rule_entry *e;

		if (!n) {
			rc = -ENOMEM;
			break;
		}
		s->rules = n;
		e = &s->rules[s->n_rules];
		if (edge_rule_action_parse((const char *)sqlite3_column_text(q, 1), &e->action)) {
			snprintf(err, errlen, "rule %lld has an unknown action",
				 (long long)sqlite3_column_int64(q, 2));
			rc = -EINVAL;
			break;
		}
		e->rule_id = sqlite3_column_int64(q, 2);
		if (!(e->hostname = edge_snap_col_dup(q, 0))) {
			rc = -ENOMEM;
			break;
		}
		s->n_rules++;
	}
	sqlite3_finalize(q);
	return rc;
}

/* Identity rules, compiled per hostname (a schema 3 store; none before). */
static int load_idrules(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	struct edge_snapshot *s = b->s;
	sqlite3_stmt *q;
	int rc = 0;

	if (edge_store_schema_version(st) < 3)
		return 0;
	q = edge_store_prepare(st,
			       "SELECT hostname, effect, field, value, id FROM idrule"
			       " ORDER BY hostname, id",
			       err, errlen);
	if (!q)
		return -EIO;
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		const char *host = (const char *)sqlite3_column_text(q, 0);
		const char *value = (const char *)sqlite3_column_text(q, 3);
		int64_t id = sqlite3_column_int64(q, 4);
		struct edge_authz_entry *e = s->n_authz ? &s->authz[s->n_authz - 1] : NULL;
		enum edge_authz_effect effect;
		enum edge_authz_field field;

		if (!host || !value ||
		    edge_authz_effect_parse((const char *)sqlite3_column_text(q, 1), &effect) ||
		    edge_authz_field_parse((const char *)sqlite3_column_text(q, 2), &field)) {
			snprintf(err, errlen, "identity rule %lld is not one this build reads",
				 (long long)id);
			rc = -EINVAL;
			break;
		}
		if (!e || strcmp(e->hostname, host)) {
			struct edge_authz_entry *n = realloc(s->authz,
							     (s->n_authz + 1) * sizeof(*n));

			if (!n) {
				rc = -ENOMEM;
				break;
			}
			s->authz = n;
			e = &s->authz[s->n_authz];
			e->hostname = strdup(host);
			e->rules = edge_authz_new();
			if (!e->hostname || !e->rules) {
				free(e->hostname);
				edge_authz_free(e->rules);
				rc = -ENOMEM;
				break;
			}
			s->n_authz++;
		}
		rc = edge_authz_add(e->rules, effect, field, value, id);
		if (rc == -EINVAL)
			snprintf(err, errlen,
				 "identity rule %lld: '%s' is not a %s value this build"
				 " reads",
				 (long long)id, value, edge_authz_field_name(field));
	}
	sqlite3_finalize(q);
	return rc;
}

static void free_snapshot(struct edge_snapshot *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->base);
	for (size_t i = 0; i < s->n_sni; i++) {
		SSL_CTX_free(s->snis[i].ctx);
		SSL_CTX_free(s->snis[i].up_ctx);
		free(s->snis[i].up_name);
		free(s->snis[i].up_ip);
		free(s->snis[i].hostname);
		free(s->snis[i].upstream_text);
	}
	free(s->snis);
	for (size_t i = 0; i < s->n_trust; i++) {
		free(s->trusts[i].hostname);
		edge_trust_free(s->trusts[i].trust);
	}
	free(s->trusts);
	edge_trust_free(s->site_trust);
	edge_trust_free(s->no_trust);
	for (size_t i = 0; i < s->n_rules; i++)
		free(s->rules[i].hostname);
	free(s->rules);
	for (size_t i = 0; i < s->n_authz; i++) {
		free(s->authz[i].hostname);
		edge_authz_free(s->authz[i].rules);
	}
	free(s->authz);
	for (size_t i = 0; i < s->n_sites; i++)
		free(s->sites[i]);
	free(s->sites);
	for (size_t i = 0; i < s->n_revoked; i++)
		free(s->revoked[i]);
	free(s->revoked);
	free(s->default_sni);
	free(s);
}

int edge_snapshot_build(struct edge_store *st, const struct edge_config *cfg,
			const struct edge_tls_hooks *hooks, struct edge_snapshot **out, char *err,
			size_t errlen)
{
	return edge_snapshot_build_crls(st, cfg, hooks, NULL, out, err, errlen);
}

int edge_snapshot_build_crls(struct edge_store *st, const struct edge_config *cfg,
			     const struct edge_tls_hooks *hooks, const struct edge_crl_extra *extra,
			     struct edge_snapshot **out, char *err, size_t errlen)
{
	struct build b = { .cfg = cfg, .extra = extra };
	int rc;

	*out = NULL;
	b.s = calloc(1, sizeof(*b.s));
	if (!b.s)
		return -ENOMEM;
	atomic_init(&b.s->refs, 1);
	if ((rc = edge_store_begin_read(st, err, errlen)))
		goto out_free;
	if ((rc = edge_store_generation(st, &b.s->generation))) {
		snprintf(err, errlen, "store has no generation (not initialised?)");
		goto out;
	}
	if ((rc = load_sites(st, &b, err, errlen)) || (rc = load_builtin(st, &b, err, errlen)) ||
	    (rc = load_cas(st, &b, err, errlen)) || (rc = load_trusts(st, &b, err, errlen)) ||
	    (rc = load_rules(st, &b, err, errlen)) || (rc = load_idrules(st, &b, err, errlen)) ||
	    (rc = edge_snap_load_snis(st, &b, hooks, err, errlen)))
		goto out;
	if (!hooks) /* policy only: `mtls-edgectl verify` needs no TLS contexts */
		goto done;

	b.s->base = SSL_CTX_new(TLS_server_method());
	if (!b.s->base)
		BUILD_FAIL("cannot create the TLS context: out of memory");
	edge_tlsctx_common(b.s->base, hooks);
	SSL_CTX_set_client_hello_cb(b.s->base, hooks->client_hello, NULL);
	if (cfg->session_tickets) {
		/* TLS 1.2 resumption: session IDs, cached in the base context (every session's
		 * home, whichever SNI context served it), only for the connections the
		 * ClientHello callback lets resume; each SNI context's mode decides whether its
		 * ServerHello carries the session ID at all. */
		SSL_CTX_set_session_cache_mode(b.s->base, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(b.s->base, EDGE_SESSION_CACHE_SIZE);
		for (size_t i = 0; i < b.s->n_sni; i++)
			SSL_CTX_set_session_cache_mode(b.s->snis[i].ctx, SSL_SESS_CACHE_SERVER);
	}
	if (cfg->default_sni[0]) {
		if (!edge_snapshot_find_sni(b.s, cfg->default_sni))
			BUILD_FAIL("default_sni %s has no SNI object", cfg->default_sni);
		b.s->default_sni = strdup(cfg->default_sni);
	}
done:
	rc = 0;
out:
	edge_store_end_read(st);
out_free:
	free(b.builtin_td);
	for (size_t i = 0; i < b.n_cas; i++) {
		free(b.cas[i].name);
		free(b.cas[i].trust_domain);
		X509_free(b.cas[i].cert);
		X509_CRL_free(b.cas[i].crl);
	}
	free(b.cas);
	X509_free(b.builtin);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(-rc));
		free_snapshot(b.s);
		return rc;
	}
	*out = b.s;
	return 0;
}

struct edge_snapshot *edge_snapshot_ref(struct edge_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void edge_snapshot_unref(struct edge_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		free_snapshot(s);
}

/* bsearch over arrays of structs whose first member is the hostname. */
