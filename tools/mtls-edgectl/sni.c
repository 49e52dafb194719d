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
#include "sni.h"
#include "tlsctx.h"

static const struct ctl_col sni_cols[] = {
	{ "hostname", "HOSTNAME" }, { "mtls", "MTLS" },         { "tls_min", "TLS_MIN" },
	{ "tls_max", "TLS_MAX" },   { "upstream", "UPSTREAM" }, { "upstream_tls", "UP_TLS" },
	{ "forward", "FORWARD" },   { "protocol", "PROTOCOL" }, { "cert_file", "CERT" },
	{ "ca_hints", "CA_HINTS" }, { "alpn", "ALPN" },         { NULL, NULL },
};

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
		const char *t = sni_file_key_type(s->pairs[i].cert);

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
	s->mtls = sni_choice((const char *)sqlite3_column_text(st, 4), sni_mtls_modes);
	s->tls_min = sni_choice((const char *)sqlite3_column_text(st, 5), sni_tls_versions);
	s->tls_max = sni_choice((const char *)sqlite3_column_text(st, 6), sni_tls_versions);
	s->forward = sni_choice((const char *)sqlite3_column_text(st, 7), sni_forward_modes);
	s->created = sqlite3_column_int64(st, 8);
	s->updated = sqlite3_column_int64(st, 9);
	s->up_tls = sni_choice((const char *)sqlite3_column_text(st, 10), sni_on_off);
	snprintf(s->up_ca, sizeof(s->up_ca), "%s", sqlite3_column_text(st, 11));
	snprintf(s->up_cert, sizeof(s->up_cert), "%s", sqlite3_column_text(st, 12));
	snprintf(s->up_key, sizeof(s->up_key), "%s", sqlite3_column_text(st, 13));
	snprintf(s->up_sni, sizeof(s->up_sni), "%s", sqlite3_column_text(st, 14));
	s->protocol = sni_choice((const char *)sqlite3_column_text(st, 15), sni_protocols);
	s->ca_hints = sni_choice((const char *)sqlite3_column_text(st, 16), sni_hint_modes);
	free(s->ca_hints_pem);
	s->ca_hints_pem = sqlite3_column_type(st, 17) == SQLITE_NULL
				  ? NULL
				  : strdup((const char *)sqlite3_column_text(st, 17));
	snprintf(s->alpn, sizeof(s->alpn), "%s", sqlite3_column_text(st, 18));
	s->no_alpn = sni_choice((const char *)sqlite3_column_text(st, 19), sni_no_alpn_modes);
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
		if ((rc = sni_apply_opts(c, &s, &files, types, sizeof(types))) ||
		    (rc = ctl_begin(c))) {
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
		rc = sni_apply_opts(c, &s, &files, types, sizeof(types));
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
				const char *t = sni_file_key_type(s.pairs[i].cert);

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
	  "application sni_protocols to negotiate, in the edge's order (h2,http/1.1; any ALPN token); "
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
