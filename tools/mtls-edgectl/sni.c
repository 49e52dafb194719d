/* sni add|update|get|list|delete: SNI objects. The store holds the real paths
 * of the server certificate chains and keys (one pair per key type: the first
 * in sni, the others in sni_cert), never key bytes; the CA hint list
 * (--ca-hints FILE) is stored as the certificates themselves. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "alpn.h"
#include "ctl.h"
#include "pki.h"
#include "tlsctx.h"

/* A server certificate chain file and its key file (real paths). */
struct sni_pair {
	char cert[PATH_MAX];
	char key[PATH_MAX];
};

struct sni {
	char host[EDGE_HOSTNAME_LEN];
	struct sni_pair pairs[EDGE_MAX_CERTS_PER_SNI]; /* [0]: sni's own; then sni_cert's */
	size_t npairs;
	char upstream[EDGE_HOSTNAME_LEN + 16];
	const char *mtls, *tls_min, *tls_max, *forward;
	const char *protocol;                                      /* "tcp" or "http" */
	const char *up_tls;                                        /* "off" or "on" */
	char up_ca[PATH_MAX], up_cert[PATH_MAX], up_key[PATH_MAX]; /* "" when unset */
	char up_sni[EDGE_HOSTNAME_LEN];
	const char *ca_hints;          /* "trusted", "none" or "list" */
	char *ca_hints_pem;            /* list: the CA certificates (malloc'd), else NULL */
	char alpn[EDGE_ALPN_WIRE_MAX]; /* "h2,http/1.1": server order; "" none */
	const char *no_alpn;           /* "allow" or "refuse" */
	int64_t created, updated;
};

static const char *const mtls_modes[] = { "required", "optional", "off", NULL };
static const char *const tls_versions[] = { "1.2", "1.3", NULL };
static const char *const on_off[] = { "off", "on", NULL };
static const char *const forward_modes[] = { "none", "proxy-v2", "headers", NULL };
static const char *const protocols[] = { "tcp", "http", NULL };
static const char *const hint_modes[] = { "trusted", "none", "list", NULL };
static const char *const no_alpn_modes[] = { "allow", "refuse", NULL };

static const struct ctl_col sni_cols[] = {
	{ "hostname", "HOSTNAME" }, { "mtls", "MTLS" },         { "tls_min", "TLS_MIN" },
	{ "tls_max", "TLS_MAX" },   { "upstream", "UPSTREAM" }, { "upstream_tls", "UP_TLS" },
	{ "forward", "FORWARD" },   { "protocol", "PROTOCOL" }, { "cert_file", "CERT" },
	{ "ca_hints", "CA_HINTS" }, { "alpn", "ALPN" },         { NULL, NULL },
};

/* The key type of the leaf in a chain file (edge_tlsctx_key_type()); NULL when the
 * file does not read or the key is of another type. */
static const char *file_key_type(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	const char *t = x ? edge_tlsctx_key_type(X509_get0_pubkey(x)) : NULL;

	ERR_clear_error();
	X509_free(x);
	if (f)
		fclose(f);
	return t;
}

/* "h2,http/1.1" as ["h2", "http/1.1"]. */
static json_t *alpn_json(const char *text)
{
	json_t *a = json_array();
	const char *p = text;

	while (a && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		json_array_append_new(a, json_stringn(p, len));
		p += len + (end ? 1 : 0);
	}
	return a;
}

/* cert_file and key_file: the first pair (as before there were several); certs: all. */
static json_t *sni_json(const struct sni *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
			      " s:s}",
			      "hostname", s->host, "mtls", s->mtls, "tls_min", s->tls_min,
			      "tls_max", s->tls_max, "upstream", s->upstream, "cert_file",
			      s->pairs[0].cert, "key_file", s->pairs[0].key, "forward", s->forward,
			      "protocol", s->protocol, "upstream_tls", s->up_tls, "upstream_ca",
			      s->up_ca, "upstream_cert", s->up_cert, "upstream_key", s->up_key,
			      "upstream_sni", s->up_sni);
	json_t *certs = json_array();

	for (size_t i = 0; i < s->npairs; i++) {
		const char *t = file_key_type(s->pairs[i].cert);

		json_array_append_new(certs,
				      json_pack("{s:o, s:s, s:s}", "key_type",
						t ? json_string(t) : json_null(), "cert_file",
						s->pairs[i].cert, "key_file", s->pairs[i].key));
	}
	json_object_set_new(o, "certs", certs);
	json_object_set_new(o, "alpn", alpn_json(s->alpn));
	json_object_set_new(o, "no_alpn", json_string(s->no_alpn));
	json_object_set_new(o, "ca_hints", json_string(s->ca_hints));
	json_object_set_new(o, "ca_hints_names",
			    !strcmp(s->ca_hints, "list") ? ctl_hints_names(s->ca_hints_pem)
							 : json_null());
	ctl_json_time(o, "created", s->created);
	ctl_json_time(o, "updated", s->updated);
	return o;
}

/* For people: the ALPN list as it is written ("h2,http/1.1"), "-" for none. */
static void alpn_people(json_t *o)
{
	json_t *a = json_object_get(o, "alpn"), *e;
	char list[EDGE_ALPN_WIRE_MAX] = "";
	size_t i;

	CTL_ARRAY_EACH(a, i, e)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "," : "",
			 json_string_value(e));
	json_object_set_new(o, "alpn", json_string(list[0] ? list : "-"));
}

/* For people: a list's size beside it ("list (2)"); one server certificate as
 * cert_file and key_file alone, several also as certs.TYPE lines (get) or the
 * first with a count ("/etc/ssl/api-rsa.crt (+1)", list). */
static void people_text(struct ctl *c, json_t *o, bool table)
{
	json_t *certs = json_object_get(o, "certs"), *e, *by_type;
	size_t n = json_array_size(certs), i;
	char text[PATH_MAX + 32];

	if (c->json)
		return;
	alpn_people(o);
	if (!strcmp(json_string_value(json_object_get(o, "ca_hints")), "list")) {
		snprintf(text, sizeof(text), "list (%zu)",
			 json_array_size(json_object_get(o, "ca_hints_names")));
		json_object_set_new(o, "ca_hints", json_string(text));
	}
	if (n > 1 && table) {
		snprintf(text, sizeof(text), "%s (+%zu)",
			 json_string_value(json_object_get(o, "cert_file")), n - 1);
		json_object_set_new(o, "cert_file", json_string(text));
	} else if (n > 1 && (by_type = json_object())) {
		CTL_ARRAY_EACH(certs, i, e) {
			const char *t = json_string_value(json_object_get(e, "key_type"));
			char key[32], line[2 * PATH_MAX + 16];

			if (t)
				snprintf(key, sizeof(key), "%s", t);
			else
				snprintf(key, sizeof(key), "#%zu", i + 1);
			snprintf(line, sizeof(line), "%s (key %s)",
				 json_string_value(json_object_get(e, "cert_file")),
				 json_string_value(json_object_get(e, "key_file")));
			json_object_set_new(by_type, key, json_string(line));
		}
		json_object_set_new(o, "certs", by_type);
		return;
	}
	json_object_del(o, "certs");
}

static const char *choice(const char *v, const char *const *set)
{
	for (int i = 0; set[i]; i++)
		if (!strcmp(v, set[i]))
			return set[i];
	return set[0];
}

#define SNI_COLUMNS                                                                  \
	"hostname, cert_file, key_file, upstream, mtls, tls_min, tls_max, "          \
	"forward, created_at, updated_at, upstream_tls, coalesce(upstream_ca, ''), " \
	"coalesce(upstream_cert, ''), coalesce(upstream_key, ''), "                  \
	"coalesce(upstream_sni, ''), protocol, ca_hints, ca_hints_pem, alpn, no_alpn"
#define SNI_INSERT_COLUMNS                                                                    \
	"hostname, cert_file, key_file, upstream, mtls, tls_min, "                            \
	"tls_max, forward, created_at, updated_at, upstream_tls, upstream_ca, "               \
	"upstream_cert, upstream_key, upstream_sni, protocol, ca_hints, ca_hints_pem, alpn, " \
	"no_alpn"

/* One sni row, then its further certificates (sni_cert, in order). */
static int sni_row(struct ctl *c, sqlite3_stmt *st, struct sni *s)
{
	sqlite3_stmt *more;

	snprintf(s->host, sizeof(s->host), "%s", sqlite3_column_text(st, 0));
	snprintf(s->pairs[0].cert, sizeof(s->pairs[0].cert), "%s", sqlite3_column_text(st, 1));
	snprintf(s->pairs[0].key, sizeof(s->pairs[0].key), "%s", sqlite3_column_text(st, 2));
	s->npairs = 1;
	snprintf(s->upstream, sizeof(s->upstream), "%s", sqlite3_column_text(st, 3));
	s->mtls = choice((const char *)sqlite3_column_text(st, 4), mtls_modes);
	s->tls_min = choice((const char *)sqlite3_column_text(st, 5), tls_versions);
	s->tls_max = choice((const char *)sqlite3_column_text(st, 6), tls_versions);
	s->forward = choice((const char *)sqlite3_column_text(st, 7), forward_modes);
	s->created = sqlite3_column_int64(st, 8);
	s->updated = sqlite3_column_int64(st, 9);
	s->up_tls = choice((const char *)sqlite3_column_text(st, 10), on_off);
	snprintf(s->up_ca, sizeof(s->up_ca), "%s", sqlite3_column_text(st, 11));
	snprintf(s->up_cert, sizeof(s->up_cert), "%s", sqlite3_column_text(st, 12));
	snprintf(s->up_key, sizeof(s->up_key), "%s", sqlite3_column_text(st, 13));
	snprintf(s->up_sni, sizeof(s->up_sni), "%s", sqlite3_column_text(st, 14));
	s->protocol = choice((const char *)sqlite3_column_text(st, 15), protocols);
	s->ca_hints = choice((const char *)sqlite3_column_text(st, 16), hint_modes);
	free(s->ca_hints_pem);
	s->ca_hints_pem = sqlite3_column_type(st, 17) == SQLITE_NULL
				  ? NULL
				  : strdup((const char *)sqlite3_column_text(st, 17));
	snprintf(s->alpn, sizeof(s->alpn), "%s", sqlite3_column_text(st, 18));
	s->no_alpn = choice((const char *)sqlite3_column_text(st, 19), no_alpn_modes);
	more = ctl_sql(c,
		       "SELECT cert_file, key_file FROM sni_cert WHERE hostname = ? ORDER BY pos",
		       "s", s->host);
	if (!more)
		return CTL_EIO;
	while (s->npairs < EDGE_MAX_CERTS_PER_SNI && sqlite3_step(more) == SQLITE_ROW) {
		struct sni_pair *p = &s->pairs[s->npairs++];

		snprintf(p->cert, sizeof(p->cert), "%s", sqlite3_column_text(more, 0));
		snprintf(p->key, sizeof(p->key), "%s", sqlite3_column_text(more, 1));
	}
	sqlite3_finalize(more);
	return CTL_OK;
}

/* The SNI object for host, or exit 3. */
static int find_sni(struct ctl *c, const char *host, struct sni *s)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT " SNI_COLUMNS " FROM sni WHERE hostname = ?", "s",
				   host);
	int found, rc = CTL_OK;

	if (!st)
		return CTL_EIO;
	found = sqlite3_step(st) == SQLITE_ROW;
	if (found)
		rc = sni_row(c, st, s);
	sqlite3_finalize(st);
	if (rc)
		return rc;
	return found ? CTL_OK : ctl_error(CTL_ENOENT, "no SNI object for %s", host);
}

static int real_path(const char *opt, const char *in, char *out)
{
	if (!realpath(in, out))
		return ctl_error(CTL_EINVAL, "--%s %s: %s", opt, in, strerror(errno));
	return CTL_OK;
}

/* A private key file must be its owner's alone. */
static int check_key_mode(const char *opt, const char *path)
{
	struct stat sb;

	if (stat(path, &sb))
		return ctl_error(CTL_EINVAL, "--%s %s: %s", opt, path, strerror(errno));
	if (sb.st_mode & 077)
		return ctl_error(CTL_EINVAL,
				 "key file %s has mode %04o: it must not be readable "
				 "by group or others; run: chmod 600 %s",
				 path, (unsigned)(sb.st_mode & 07777), path);
	return CTL_OK;
}

/* The edge as a TLS client of the upstream: a CA bundle to verify it, and
 * for mTLS a client certificate chain and key that match. */
static int check_upstream_tls(struct ctl *c, const struct sni *s)
{
	char *buf = NULL, *kbuf = NULL;
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *key = NULL;
	size_t len, klen = 0;
	int rc = CTL_OK;

	if (!!s->up_cert[0] != !!s->up_key[0])
		return ctl_error(CTL_EUSAGE, "--upstream-cert and --upstream-key go together");
	if (s->up_ca[0]) {
		if ((rc = ctl_read_input(s->up_ca, &buf, &len)))
			return rc;
		if (edge_pki_chain_parse(buf, len, &certs, c->err, sizeof(c->err)))
			rc = ctl_error(CTL_EINVAL, "%s: %s", s->up_ca, c->err);
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		free(buf);
		buf = NULL;
		if (rc)
			return rc;
	}
	if (!s->up_cert[0])
		return CTL_OK;
	if ((rc = check_key_mode("upstream-key", s->up_key)) ||
	    (rc = ctl_read_input(s->up_cert, &buf, &len)) ||
	    (rc = ctl_read_input(s->up_key, &kbuf, &klen)))
		goto out;
	if (edge_pki_chain_parse(buf, len, &certs, c->err, sizeof(c->err)) ||
	    edge_pki_key_parse(kbuf, klen, &key, c->err, sizeof(c->err)) ||
	    edge_pki_check_chain(certs, key, c->now, c->err, sizeof(c->err)))
		rc = ctl_error(CTL_EINVAL, "upstream client certificate %s: %s", s->up_cert,
			       c->err);
out:
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	if (kbuf)
		OPENSSL_clear_free(kbuf, klen);
	free(buf);
	return rc;
}

/* A chain and its key file: readable, strict PEM, the key private to its owner
 * and matching the leaf, each certificate issued by the next, leaf valid.
 * *type: the leaf's key type (edge_tlsctx_key_type(), NULL for another). */
static int check_pair(struct ctl *c, const struct sni *s, const struct sni_pair *p,
		      const char **type)
{
	char *cbuf = NULL, *kbuf = NULL, probe[EDGE_HOSTNAME_LEN + 8];
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	size_t clen, klen = 0;
	int rc;

	if ((rc = check_key_mode("key", p->key)))
		return rc;
	if ((rc = ctl_read_input(p->cert, &cbuf, &clen)) ||
	    (rc = ctl_read_input(p->key, &kbuf, &klen)))
		goto out;
	if (edge_pki_chain_parse(cbuf, clen, &chain, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->cert, c->err);
		goto out;
	}
	if (edge_pki_key_parse(kbuf, klen, &key, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->key, c->err);
		goto out;
	}
	if (edge_pki_check_chain(chain, key, c->now, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->cert, c->err);
		goto out;
	}
	*type = edge_tlsctx_key_type(key);
	if (s->npairs > 1 && !*type) {
		rc = ctl_error(CTL_EINVAL,
			       "%s: its %s key cannot stand beside other certificates (one each "
			       "of rsa, ecdsa, ed25519)",
			       p->cert,
			       EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
		goto out;
	}
	snprintf(probe, sizeof(probe), "%s%s", s->host[0] == '*' ? "x" : "",
		 s->host + (s->host[0] == '*'));
	if (X509_check_host(sk_X509_value(chain, 0), probe, 0, 0, NULL) != 1)
		ctl_warn("%s does not cover %s (no matching subjectAltName); clients will "
			 "refuse it",
			 p->cert, s->host);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	if (kbuf)
		OPENSSL_clear_free(kbuf, klen);
	free(cbuf);
	return rc;
}

/* Every pair, and at most one of each key type. types: a description for the
 * message ("rsa, ecdsa"). */
static int check_files(struct ctl *c, const struct sni *s, char *types, size_t len)
{
	const char *type[EDGE_MAX_CERTS_PER_SNI];
	int rc;

	types[0] = '\0';
	for (size_t i = 0; i < s->npairs; i++) {
		if ((rc = check_pair(c, s, &s->pairs[i], &type[i])))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(type[j], type[i]))
				return ctl_error(CTL_EINVAL,
						 "--cert %s and --cert %s are both %s certificates: "
						 "at most one per key type (rsa, ecdsa, ed25519)",
						 s->pairs[j].cert, s->pairs[i].cert, type[i]);
		snprintf(types + strlen(types), len - strlen(types), "%s%s", i ? ", " : "",
			 type[i] ? type[i] : "");
	}
	return CTL_OK;
}

/* --cert and --key, the Nth of one with the Nth of the other: the set given replaces the
 * object's. An object with one certificate may change one file alone (a renewal with
 * the same key: --cert only). */
static int apply_pairs(struct ctl *c, struct sni *s, bool *files)
{
	char **certs, **keys;
	int nc = ctl_opts(c, "cert", &certs), nk = ctl_opts(c, "key", &keys), rc;

	*files = nc || nk;
	if (!*files)
		return CTL_OK;
	if (nc + nk == 1 && s->npairs == 1) {
		if (nc)
			return real_path("cert", certs[0], s->pairs[0].cert);
		return real_path("key", keys[0], s->pairs[0].key);
	}
	if (nc != nk)
		return ctl_error(CTL_EUSAGE,
				 "--cert and --key go in pairs, the first --key with the first "
				 "--cert: %d --cert, %d --key%s",
				 nc, nk,
				 s->npairs > 1 ? " (the pairs given replace every certificate of "
						 "the object: give each one to keep)"
					       : "");
	if (nc > EDGE_MAX_CERTS_PER_SNI)
		return ctl_error(CTL_EINVAL,
				 "%d certificates: at most %d, one per key type (rsa, ecdsa, "
				 "ed25519)",
				 nc, EDGE_MAX_CERTS_PER_SNI);
	for (int i = 0; i < nc; i++) {
		if ((rc = real_path("cert", certs[i], s->pairs[i].cert)) ||
		    (rc = real_path("key", keys[i], s->pairs[i].key)))
			return rc;
	}
	s->npairs = (size_t)nc;
	return CTL_OK;
}

/* --upstream-tls and its files; an empty path ("") clears one. */
static int apply_upstream_tls(struct ctl *c, struct sni *s)
{
	static const struct {
		const char *opt;
		size_t off;
	} files[] = {
		{ "upstream-ca", offsetof(struct sni, up_ca) },
		{ "upstream-cert", offsetof(struct sni, up_cert) },
		{ "upstream-key", offsetof(struct sni, up_key) },
	};
	const char *name = ctl_opt(c, "upstream-sni");
	bool touched = ctl_opt(c, "upstream-tls") || name;
	int rc;

	if ((rc = ctl_opt_choice(c, "upstream-tls", on_off, s->up_tls, &s->up_tls)))
		return rc;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *v = ctl_opt(c, files[i].opt);
		char *dst = (char *)s + files[i].off;

		if (!v)
			continue;
		touched = true;
		if (!*v)
			dst[0] = '\0';
		else if ((rc = real_path(files[i].opt, v, dst)))
			return rc;
	}
	if (name && *name) {
		if ((rc = ctl_host_norm(name, false, s->up_sni, sizeof(s->up_sni))))
			return rc;
	} else if (name) {
		s->up_sni[0] = '\0';
	}
	if (!touched || strcmp(s->up_tls, "on"))
		return CTL_OK;
	return check_upstream_tls(c, s);
}

/* --ca-hints trusted|none|FILE (a file named "none": ./none). */
static int apply_hints(struct ctl *c, struct sni *s)
{
	const char *v = ctl_opt(c, "ca-hints");
	int rc;

	if (!v)
		return CTL_OK;
	free(s->ca_hints_pem);
	s->ca_hints_pem = NULL;
	if (!strcmp(v, "trusted") || !strcmp(v, "none")) {
		s->ca_hints = choice(v, hint_modes);
		return CTL_OK;
	}
	if ((rc = ctl_hints_read_list(c, "ca-hints", v, &s->ca_hints_pem)))
		return rc;
	s->ca_hints = "list";
	return CTL_OK;
}

/* --alpn LIST ("" for none) and --no-alpn; what the protocol and forward mode can carry. */
static int apply_alpn(struct ctl *c, struct sni *s)
{
	const char *v = ctl_opt(c, "alpn");
	unsigned char wire[EDGE_ALPN_WIRE_MAX];
	size_t wl;
	int rc;

	if ((rc = ctl_opt_choice(c, "no-alpn", no_alpn_modes, s->no_alpn, &s->no_alpn)))
		return rc;
	if (v) {
		if (edge_alpn_parse(v, wire, &wl, c->err, sizeof(c->err)))
			return ctl_error(CTL_EINVAL, "--alpn: %s", c->err);
		snprintf(s->alpn, sizeof(s->alpn), "%s", v);
	}
	if (edge_alpn_parse(s->alpn, wire, &wl, c->err, sizeof(c->err)))
		return ctl_error(CTL_EINVAL, "stored ALPN of %s: %s", s->host, c->err);
	if (!wl && !strcmp(s->no_alpn, "refuse"))
		return ctl_error(CTL_EUSAGE,
				 "--no-alpn refuse%s needs an ALPN list%s: with none the edge "
				 "negotiates no protocol, and a client offering none is what every "
				 "client is; give --alpn LIST, or --no-alpn allow",
				 ctl_opt(c, "no-alpn") ? "" : " (already set)",
				 v ? " (--alpn '' clears it)" : "");
	if (!edge_alpn_beyond_http1(wire, wl))
		return CTL_OK;
	/* On update either side may be the stored one: say which. --protocol http terminates
	 * h2 (the daemon's h2.c); it knows no other protocol beyond HTTP/1.1. */
	if (!strcmp(s->protocol, "http") && !edge_alpn_only_http(wire, wl))
		return ctl_error(CTL_EUSAGE,
				 "--alpn %s%s with --protocol http%s: the edge reads HTTP from the "
				 "client in --protocol http (h2 and http/1.1); any other protocol "
				 "through the edge needs --protocol tcp, with an upstream that "
				 "speaks it",
				 s->alpn, v ? "" : " (already set)",
				 ctl_opt(c, "protocol") ? "" : " (already set)");
	if (!strcmp(s->protocol, "http")) {
		if (edge_alpn_has(wire, wl, "h2", 2) && (v || ctl_opt(c, "protocol")))
			ctl_warn("%s: h2 is terminated by the edge and each request goes to the upstream "
				 "as HTTP/1.1; gRPC calls there get UNIMPLEMENTED (gRPC needs HTTP/2 to "
				 "its server: --protocol tcp --alpn h2 with an h2 upstream)",
				 s->host);
		return CTL_OK;
	}
	if (!strcmp(s->forward, "headers"))
		return ctl_error(CTL_EUSAGE,
				 "--alpn %s%s with --forward headers%s: headers mode writes the "
				 "identity into HTTP/1.1 request heads and cannot read another "
				 "protocol; use --forward proxy-v2 (it carries the ALPN too) or "
				 "--alpn http/1.1",
				 s->alpn, v ? "" : " (already set)",
				 ctl_opt(c, "forward") ? "" : " (already set)");
	return CTL_OK;
}

/* Applies the command line to s; files says whether --cert/--key were given, types
 * then names their key types ("rsa, ecdsa"). */
static int apply_opts(struct ctl *c, struct sni *s, bool *files, char *types, size_t len)
{
	const char *up = ctl_opt(c, "upstream");
	int rc;

	if ((rc = ctl_opt_choice(c, "mtls", mtls_modes, s->mtls, &s->mtls)) ||
	    (rc = ctl_opt_choice(c, "tls-min", tls_versions, s->tls_min, &s->tls_min)) ||
	    (rc = ctl_opt_choice(c, "tls-max", tls_versions, s->tls_max, &s->tls_max)) ||
	    (rc = ctl_opt_choice(c, "forward", forward_modes, s->forward, &s->forward)) ||
	    (rc = ctl_opt_choice(c, "protocol", protocols, s->protocol, &s->protocol)))
		return rc;
	/* On update either side may be the stored one: say which. */
	if (!strcmp(s->protocol, "http") && !strcmp(s->forward, "proxy-v2"))
		return ctl_error(CTL_EUSAGE,
				 "--protocol http%s cannot carry --forward proxy-v2%s: "
				 "a PROXY v2 header names one client, and an http upstream "
				 "connection is reused for many clients; use --forward headers",
				 ctl_opt(c, "protocol") ? "" : " (already set)",
				 ctl_opt(c, "forward") ? "" : " (already set)");
	if (strcmp(s->tls_min, s->tls_max) > 0)
		return ctl_error(CTL_EINVAL, "--tls-min %s is above --tls-max %s", s->tls_min,
				 s->tls_max);
	if (up) {
		char host[EDGE_HOSTNAME_LEN];
		uint16_t port;

		if (edge_hostname_port_parse(up, host, sizeof(host), &port, c->err, sizeof(c->err)))
			return ctl_error(CTL_EINVAL, "--upstream %s", c->err);
		snprintf(s->upstream, sizeof(s->upstream), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
			 host, port);
	}
	if ((rc = apply_pairs(c, s, files)))
		return rc;
	if ((rc = apply_upstream_tls(c, s)) || (rc = apply_hints(c, s)) || (rc = apply_alpn(c, s)))
		return rc;
	return *files ? check_files(c, s, types, len) : CTL_OK;
}

static int sni_write(struct ctl *c, bool update)
{
	struct sni s = { .mtls = "required",
			 .tls_min = "1.2",
			 .tls_max = "1.3",
			 .forward = "none",
			 .protocol = "tcp",
			 .up_tls = "off",
			 .ca_hints = "trusted",
			 .no_alpn = "allow",
			 .npairs = 1,
			 .created = c->now,
			 .updated = c->now };
	char hints[32] = "", types[64] = "", certs[80] = "";
	bool files;
	int rc = ctl_host_norm(c->args[0], true, s.host, sizeof(s.host));

	if (rc)
		return rc;
	if (!update) {
		if (!ctl_opt(c, "cert") || !ctl_opt(c, "key") || !ctl_opt(c, "upstream"))
			return ctl_error(CTL_EUSAGE, "sni add needs --cert FILE --key FILE "
						     "--upstream HOST:PORT");
		if ((rc = apply_opts(c, &s, &files, types, sizeof(types))) || (rc = ctl_begin(c))) {
			free(s.ca_hints_pem);
			return rc;
		}
		if (ctl_int(c, "SELECT count(*) FROM sni WHERE hostname = ?", "s", s.host))
			rc = ctl_error(CTL_EINVAL,
				       "an SNI object for %s already exists; use '" CTL_PROG
				       " sni update'",
				       s.host);
	} else if ((rc = ctl_begin(c))) {
		return rc;
	} else if (!(rc = find_sni(c, s.host, &s))) {
		rc = apply_opts(c, &s, &files, types, sizeof(types));
		s.updated = c->now;
	}
	if (!rc)
		rc = ctl_host_covered(c, s.host);
	if (!rc)
		rc = ctl_exec(c,
			      "INSERT OR REPLACE INTO sni(" SNI_INSERT_COLUMNS ") VALUES "
			      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, nullif(?, ''), nullif(?, ''),"
			      " nullif(?, ''), nullif(?, ''), ?, ?, nullif(?, ''), ?, ?)",
			      "ssssssssiissssssssss", s.host, s.pairs[0].cert, s.pairs[0].key,
			      s.upstream, s.mtls, s.tls_min, s.tls_max, s.forward, s.created,
			      s.updated, s.up_tls, s.up_ca, s.up_cert, s.up_key, s.up_sni,
			      s.protocol, s.ca_hints, s.ca_hints_pem ? s.ca_hints_pem : "", s.alpn,
			      s.no_alpn);
	/* The further pairs: the REPLACE above deleted the old rows (ON DELETE CASCADE);
	 * this says so without relying on it. */
	if (!rc)
		rc = ctl_exec(c, "DELETE FROM sni_cert WHERE hostname = ?", "s", s.host);
	for (size_t i = 1; !rc && i < s.npairs; i++)
		rc = ctl_exec(c,
			      "INSERT INTO sni_cert(hostname, pos, cert_file, key_file)"
			      " VALUES (?, ?, ?, ?)",
			      "siss", s.host, (int64_t)(i + 1), s.pairs[i].cert, s.pairs[i].key);
	if (!rc)
		rc = ctl_coalesce_check(c, s.host);
	if (!rc && s.npairs > 1) {
		if (!files) /* an update that kept them: the types of the files now */
			for (size_t i = 0; i < s.npairs; i++) {
				const char *t = file_key_type(s.pairs[i].cert);

				snprintf(types + strlen(types), sizeof(types) - strlen(types),
					 "%s%s", i ? ", " : "", t ? t : "?");
			}
		snprintf(certs, sizeof(certs), ", %zu certificates: %s", s.npairs, types);
	}
	if (!rc && strcmp(s.ca_hints, "trusted")) {
		json_t *names = ctl_hints_names(s.ca_hints_pem);

		snprintf(hints, sizeof(hints), ", CA hints %s", s.ca_hints);
		if (!strcmp(s.ca_hints, "list"))
			snprintf(hints, sizeof(hints), ", CA hints list (%zu)",
				 json_array_size(names));
		json_decref(names);
	}
	rc = ctl_finish(c, rc, sni_json(&s),
			"%s SNI object %s -> %s (mTLS %s, TLS %s-%s%s%s%s%s%s%s%s%s%s)",
			update ? "updated" : "added", s.host, s.upstream, s.mtls, s.tls_min,
			s.tls_max, certs, strcmp(s.protocol, "tcp") ? ", protocol " : "",
			strcmp(s.protocol, "tcp") ? s.protocol : "",
			strcmp(s.forward, "none") ? ", forward " : "",
			strcmp(s.forward, "none") ? s.forward : "", hints,
			s.alpn[0] ? ", ALPN " : "", s.alpn,
			s.alpn[0] && !strcmp(s.no_alpn, "refuse") ? " (required)" : "");
	free(s.ca_hints_pem);
	return rc;
}

static int cmd_sni_add(struct ctl *c)
{
	return sni_write(c, false);
}

static int cmd_sni_update(struct ctl *c)
{
	return sni_write(c, true);
}

static int cmd_sni_get(struct ctl *c)
{
	struct sni s = { 0 };
	int rc = ctl_host_norm(c->args[0], true, s.host, sizeof(s.host));

	json_t *o;

	if (rc || (rc = find_sni(c, s.host, &s)))
		return rc;
	o = sni_json(&s);
	free(s.ca_hints_pem);
	if (o)
		people_text(c, o, false);
	return ctl_emit(c, o, NULL);
}

static int cmd_sni_list(struct ctl *c)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT " SNI_COLUMNS " FROM sni ORDER BY hostname", NULL);
	json_t *arr = json_array();
	struct sni s = { 0 };
	int rc = CTL_OK;

	if (!st)
		return CTL_EIO;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		json_t *o;

		if ((rc = sni_row(c, st, &s)))
			break;
		o = sni_json(&s);
		if (o)
			people_text(c, o, true);
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(st);
	free(s.ca_hints_pem);
	if (rc) {
		json_decref(arr);
		return rc;
	}
	return ctl_emit(c, arr, sni_cols);
}

static int cmd_sni_delete(struct ctl *c)
{
	char host[EDGE_HOSTNAME_LEN];
	int rc = ctl_host_norm(c->args[0], true, host, sizeof(host));

	if (rc || (rc = ctl_begin(c)))
		return rc;
	if (ctl_int(c, "SELECT count(*) FROM sni WHERE hostname = ?", "s", host) != 1)
		rc = ctl_error(CTL_ENOENT, "no SNI object for %s", host);
	if (!rc) /* its sni_cert rows too (ON DELETE CASCADE) */
		rc = ctl_exec(c, "DELETE FROM sni WHERE hostname = ?", "s", host);
	/* the names it served may now fall to a wildcard object with another policy */
	if (!rc)
		rc = ctl_coalesce_check(c, NULL);
	return ctl_finish(c, rc, json_pack("{s:s}", "deleted", host), "deleted SNI object %s",
			  host);
}

static const struct ctl_opt sni_opts[] = {
	{ "cert", CTL_ARG | CTL_MULTI, "FILE",
	  "server certificate chain, PEM, leaf first; once per key type (rsa, ecdsa, ed25519); "
	  "update: the pairs given replace them all" },
	{ "key", CTL_ARG | CTL_MULTI, "FILE",
	  "its private key, PEM, mode 0600 or stricter (the Nth goes with the Nth --cert)" },
	{ "upstream", CTL_ARG, "HOST:PORT", "where verified connections go ([v6]:port too)" },
	{ "mtls", CTL_ARG, "MODE", "required (default), optional or off" },
	{ "tls-min", CTL_ARG, "VER", "1.2 (default) or 1.3" },
	{ "tls-max", CTL_ARG, "VER", "1.2 or 1.3 (default)" },
	{ "forward", CTL_ARG, "MODE",
	  "identity to the upstream: none (default), proxy-v2 or "
	  "headers" },
	{ "protocol", CTL_ARG, "tcp|http",
	  "what the upstream speaks: tcp (default) or http "
	  "(HTTP/1.1, connections reused)" },
	{ "upstream-tls", CTL_ARG, "on|off", "TLS to the upstream (default off: plain TCP)" },
	{ "upstream-ca", CTL_ARG, "FILE",
	  "CA bundle that verifies the upstream (default: the "
	  "system's)" },
	{ "upstream-cert", CTL_ARG, "FILE", "client certificate the edge presents (mTLS)" },
	{ "upstream-key", CTL_ARG, "FILE", "its key, mode 0600" },
	{ "upstream-sni", CTL_ARG, "NAME",
	  "SNI sent and name checked (default: the upstream's "
	  "host; an IP is checked as an IP)" },
	{ "alpn", CTL_ARG, "LIST",
	  "application protocols to negotiate, in the edge's order (h2,http/1.1; any ALPN token); "
	  "a client offering none of them gets no_application_protocol; '' for none (default)" },
	{ "no-alpn", CTL_ARG, "allow|refuse",
	  "a client that offers no ALPN at all: allow (default) or refuse" },
	{ "ca-hints", CTL_ARG, "trusted|none|FILE",
	  "CAs the CertificateRequest names: those trusted for the hostname (default), none, "
	  "or the CA certificates in FILE (PEM)" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_sni_cmds[] = {
	{ "sni add", "HOST --cert F --key F --upstream HOST:PORT",
	  "add an SNI object (HOST "
	  "exact or *.domain, under a site)",
	  sni_opts, 1, 1, CTL_STORE, cmd_sni_add },
	{ "sni update", "HOST", "change an SNI object (only the options given)", sni_opts, 1, 1,
	  CTL_STORE, cmd_sni_update },
	{ "sni get", "HOST", "show an SNI object", NULL, 1, 1, CTL_STORE, cmd_sni_get },
	{ "sni list", "", "list SNI objects", NULL, 0, 0, CTL_STORE, cmd_sni_list },
	{ "sni delete", "HOST", "delete an SNI object", NULL, 1, 1, CTL_STORE, cmd_sni_delete },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
