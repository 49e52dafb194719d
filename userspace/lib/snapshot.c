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

#define BUILD_FAIL(...)                             \
	do {                                        \
		snprintf(err, errlen, __VA_ARGS__); \
		rc = -EINVAL;                       \
		goto out;                           \
	} while (0)

struct ca_row {
	int64_t id;
	char *name;
	X509 *cert;
	X509_CRL *crl;
};

struct build {
	struct edge_snapshot *s;
	X509 *builtin;
	struct ca_row *cas;
	size_t n_cas;
	const struct edge_config *cfg;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool under_site(const struct edge_snapshot *s, const char *host)
{
	size_t hl;

	if (!strncmp(host, "*.", 2))
		host += 2;
	hl = strlen(host);
	for (size_t i = 0; i < s->n_sites; i++) {
		size_t sl = strlen(s->sites[i]);

		if (!strcmp(host, s->sites[i]))
			return true;
		if (hl > sl && host[hl - sl - 1] == '.' && !strcmp(host + hl - sl, s->sites[i]))
			return true;
	}
	return false;
}

/* "a.b.c" -> "*.b.c"; false when the name has a single label. */
static bool wildcard_of(const char *host, char *buf, size_t len)
{
	const char *dot = strchr(host, '.');

	if (!dot || !dot[1] || !strncmp(host, "*.", 2))
		return false;
	snprintf(buf, len, "*%s", dot);
	return true;
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

static char *col_dup(sqlite3_stmt *stmt, int i)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	return strdup(t ? (const char *)t : "");
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

		if (!n || !(n[s->n_sites] = col_dup(q, 0))) {
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
	sqlite3_stmt *q = edge_store_prepare(st, "SELECT cert_pem FROM builtin_ca WHERE id = 1",
					     err, errlen);
	struct edge_snapshot *s = b->s;
	int rc = 0;

	if (!q)
		return -EIO;
	if (sqlite3_step(q) == SQLITE_ROW) {
		b->builtin = pem_cert((const char *)sqlite3_column_text(q, 0));
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

		if (!n || !(n[s->n_revoked] = col_dup(q, 0))) {
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

static int load_cas(struct edge_store *st, struct build *b, char *err, size_t errlen)
{
	sqlite3_stmt *q = edge_store_prepare(st,
					     "SELECT id, name, pem, crl_pem FROM ca ORDER BY id",
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
		r->name = col_dup(q, 1);
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
	int rc = edge_trust_add_ca(t, r->cert, false);

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
		if (edge_trust_add_ca(t, b->builtin, true) ||
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
		e->hostname = col_dup(q, 0);
		e->trust = e->hostname ? new_trust(b, under_site(s, e->hostname)) : NULL;
		if (!e->trust) {
			free(e->hostname);
			rc = -ENOMEM;
			break;
		}
		s->n_trust++;
		rc = bind_pattern(st, b, e->trust, e->hostname, err, errlen);
		/* An exact name also trusts what is bound to its wildcard. */
		if (!rc && wildcard_of(e->hostname, wild, sizeof(wild)))
			rc = bind_pattern(st, b, e->trust, wild, err, errlen);
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
		if (!(e->hostname = col_dup(q, 0))) {
			rc = -ENOMEM;
			break;
		}
		s->n_rules++;
	}
	sqlite3_finalize(q);
	return rc;
}

static void set_common_options(SSL_CTX *ctx, const struct edge_tls_hooks *hooks)
{
	/* SSL_set_SSL_CTX() keeps the options of the context the SSL was made
	 * from, so the base and every SNI context carry the same ones. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mtls-edge", 9);
	/* The largest handshake message a client may send: its Certificate.
	 * A real chain of three RSA-4096 certificates is under 8 KiB. */
	SSL_CTX_set_max_cert_list(ctx, EDGE_MAX_CERT_LIST);
	SSL_CTX_set_cert_verify_callback(ctx, hooks->cert_verify, NULL);
	if (hooks->ktls) {
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
		SSL_CTX_set_keylog_callback(ctx, hooks->keylog);
	}
}

static int parse_version(const char *v)
{
	return !strcmp(v, "1.3") ? TLS1_3_VERSION : TLS1_2_VERSION;
}

static int check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb)) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (sb.st_mode & 0077) {
		snprintf(err, errlen,
			 "key file %s is readable or writable by group or others"
			 " (mode %04o); run 'chmod 600 %s'",
			 path, (unsigned int)(sb.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/* A nullable text column; "" counts as unset too. */
static const char *col_text(sqlite3_stmt *q, int i)
{
	const char *t = sqlite3_column_type(q, i) == SQLITE_NULL
				? NULL
				: (const char *)sqlite3_column_text(q, i);

	return t && *t ? t : NULL;
}

/* The edge as a TLS client of the upstream: its certificate verified against
 * upstream_ca (or the system's CAs), by name or by IP; a client certificate
 * when upstream_cert is set. */
static int build_upstream_tls(struct edge_sni *o, sqlite3_stmt *q,
			      const struct edge_tls_hooks *hooks, char *err, size_t errlen)
{
	const char *ca = col_text(q, 8), *cert = col_text(q, 9), *key = col_text(q, 10);
	const char *name = col_text(q, 11);
	char ssl_err[512], host[256];
	int rc;

	o->up_ctx = SSL_CTX_new(TLS_client_method());
	if (!o->up_ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(o->up_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(o->up_ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(o->up_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(o->up_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(o->up_ctx, SSL_VERIFY_PEER, NULL);
	if (hooks->ktls) {
		SSL_CTX_set_options(o->up_ctx, SSL_OP_ENABLE_KTLS);
		SSL_CTX_set_keylog_callback(o->up_ctx, hooks->up_keylog);
	}
	ERR_clear_error();
	if (ca ? SSL_CTX_load_verify_locations(o->up_ctx, ca, NULL) != 1
	       : SSL_CTX_set_default_verify_paths(o->up_ctx) != 1) {
		edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
		snprintf(err, errlen, "sni %s: cannot load the upstream CA %s: %s", o->hostname,
			 ca ? ca : "(system)", ssl_err);
		return -EINVAL;
	}
	if (cert || key) {
		if (!cert || !key) {
			snprintf(err, errlen,
				 "sni %s: upstream mTLS needs both a certificate and a key",
				 o->hostname);
			return -EINVAL;
		}
		if ((rc = check_key_file(key, ssl_err, sizeof(ssl_err)))) {
			snprintf(err, errlen, "sni %s: upstream %s", o->hostname, ssl_err);
			return rc;
		}
		if (SSL_CTX_use_certificate_chain_file(o->up_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(o->up_ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(o->up_ctx) != 1) {
			edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
			snprintf(err, errlen,
				 "sni %s: cannot use the upstream client certificate %s"
				 " and key %s: %s",
				 o->hostname, cert, key, ssl_err);
			return -EINVAL;
		}
	}
	/* Without --upstream-sni, the upstream's own host part names it. */
	if (!name) {
		const char *t = o->upstream_text, *end = strrchr(t, ':');
		size_t n = end ? (size_t)(end - t) : strlen(t);

		if (n && t[0] == '[' && t[n - 1] == ']') {
			t++;
			n -= 2;
		}
		snprintf(host, sizeof(host), "%.*s", (int)n, t);
		name = host;
		if (o->upstream.ss.ss_family == AF_INET6 || strspn(host, "0123456789.") == n) {
			o->up_ip = strdup(host);
			return o->up_ip ? 0 : -ENOMEM;
		}
	}
	o->up_name = strdup(name);
	return o->up_name ? 0 : -ENOMEM;
}

static int build_sni(struct edge_sni *o, sqlite3_stmt *q, const struct edge_tls_hooks *hooks,
		     char *err, size_t errlen)
{
	const char *cert = (const char *)sqlite3_column_text(q, 1);
	const char *key = (const char *)sqlite3_column_text(q, 2);
	const char *mode = (const char *)sqlite3_column_text(q, 5);
	char ssl_err[512], aerr[256];
	int rc;

	o->hostname = col_dup(q, 0);
	o->upstream_text = col_dup(q, 6);
	if (!o->hostname || !o->upstream_text)
		return -ENOMEM;
	o->tls_min = parse_version((const char *)sqlite3_column_text(q, 3));
	o->tls_max = parse_version((const char *)sqlite3_column_text(q, 4));
	if (edge_mtls_mode_parse(mode ? mode : "", &o->mode)) {
		snprintf(err, errlen, "sni %s: unknown mtls mode '%s'", o->hostname, mode);
		return -EINVAL;
	}
	if (edge_forward_parse(col_text(q, 12) ? col_text(q, 12) : "none", &o->forward)) {
		snprintf(err, errlen, "sni %s: unknown forward mode '%s'", o->hostname,
			 col_text(q, 12));
		return -EINVAL;
	}
	if (edge_protocol_parse(col_text(q, 13) ? col_text(q, 13) : "tcp", &o->protocol)) {
		snprintf(err, errlen, "sni %s: unknown protocol '%s'", o->hostname,
			 col_text(q, 13));
		return -EINVAL;
	}
	if (edge_addr_parse(o->upstream_text, &o->upstream, aerr, sizeof(aerr))) {
		snprintf(err, errlen, "sni %s: upstream: %s", o->hostname, aerr);
		return -EINVAL;
	}
	if (!hooks)
		return 0;
	rc = check_key_file(key, aerr, sizeof(aerr));
	if (rc) {
		snprintf(err, errlen, "sni %s: %s", o->hostname, aerr);
		return rc;
	}
	o->ctx = SSL_CTX_new(TLS_server_method());
	if (!o->ctx)
		return -ENOMEM;
	set_common_options(o->ctx, hooks);
	SSL_CTX_set_min_proto_version(o->ctx, o->tls_min);
	SSL_CTX_set_max_proto_version(o->ctx, o->tls_max);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(o->ctx, cert) != 1) {
		edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
		snprintf(err, errlen, "sni %s: cannot load certificate chain %s: %s", o->hostname,
			 cert, ssl_err);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(o->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(o->ctx) != 1) {
		/* OpenSSL's words never include key material. */
		edge_log_ssl_errors(ssl_err, sizeof(ssl_err));
		snprintf(err, errlen, "sni %s: cannot use private key %s: %s", o->hostname, key,
			 ssl_err);
		return -EINVAL;
	}
	if (sqlite3_column_type(q, 7) != SQLITE_NULL &&
	    !strcmp((const char *)sqlite3_column_text(q, 7), "on"))
		return build_upstream_tls(o, q, hooks, err, errlen);
	return 0;
}

static int load_snis(struct edge_store *st, struct build *b, const struct edge_tls_hooks *hooks,
		     char *err, size_t errlen)
{
	struct edge_snapshot *s = b->s;
	sqlite3_stmt *q;
	int rc = 0;

	/* A v1 store (the daemon reads it as it is; the next mtls-edgectl
	 * command migrates it) has no protocol column: every object is tcp. */
	q = edge_store_prepare(st,
			       edge_store_schema_version(st) >= 2
				       ? "SELECT hostname, cert_file, key_file, tls_min, tls_max,"
					 " mtls, upstream, upstream_tls, upstream_ca, upstream_cert,"
					 " upstream_key, upstream_sni, forward, protocol"
					 " FROM sni ORDER BY hostname"
				       : "SELECT hostname, cert_file, key_file, tls_min, tls_max,"
					 " mtls, upstream, upstream_tls, upstream_ca, upstream_cert,"
					 " upstream_key, upstream_sni, forward, 'tcp'"
					 " FROM sni ORDER BY hostname",
			       err, errlen);
	if (!q)
		return -EIO;
	while (!rc && sqlite3_step(q) == SQLITE_ROW) {
		struct edge_sni *n = realloc(s->snis, (s->n_sni + 1) * sizeof(*n));

		if (!n) {
			rc = -ENOMEM;
			break;
		}
		s->snis = n;
		memset(&s->snis[s->n_sni], 0, sizeof(*n));
		s->n_sni++;
		rc = build_sni(&s->snis[s->n_sni - 1], q, hooks, err, errlen);
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
	struct build b = { .cfg = cfg };
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
	    (rc = load_rules(st, &b, err, errlen)) || (rc = load_snis(st, &b, hooks, err, errlen)))
		goto out;
	if (!hooks) /* policy only: `mtls-edgectl verify` needs no TLS contexts */
		goto done;

	b.s->base = SSL_CTX_new(TLS_server_method());
	if (!b.s->base)
		BUILD_FAIL("cannot create the TLS context: out of memory");
	set_common_options(b.s->base, hooks);
	SSL_CTX_set_client_hello_cb(b.s->base, hooks->client_hello, NULL);
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
	for (size_t i = 0; i < b.n_cas; i++) {
		free(b.cas[i].name);
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
static void *find_host(const void *base, size_t n, size_t size, const char *host)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *name = *(char *const *)((const char *)base + mid * size);
		int c = strcmp(host, name);

		if (!c)
			return (char *)base + mid * size;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void *find_host_or_wildcard(const void *base, size_t n, size_t size, const char *host)
{
	char wild[300];
	void *e = find_host(base, n, size, host);

	if (!e && wildcard_of(host, wild, sizeof(wild)))
		e = find_host(base, n, size, wild);
	return e;
}

const struct edge_sni *edge_snapshot_find_sni(const struct edge_snapshot *s, const char *host)
{
	return find_host_or_wildcard(s->snis, s->n_sni, sizeof(struct edge_sni), host);
}

const struct edge_trust *edge_snapshot_trust(const struct edge_snapshot *s, const char *host)
{
	const struct edge_trust_entry *e = find_host_or_wildcard(s->trusts, s->n_trust, sizeof(*e),
								 host);

	if (e)
		return e->trust;
	return under_site(s, host) ? s->site_trust : s->no_trust;
}

enum edge_rule_action edge_snapshot_rule(const struct edge_snapshot *s, const char *host)
{
	const struct edge_rule_entry *e = find_host_or_wildcard(s->rules, s->n_rules, sizeof(*e),
								host);

	return e ? e->action : EDGE_ACTION_NONE;
}
