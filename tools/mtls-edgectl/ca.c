/* ca upload|list|get|delete|trust-domain, ca hosts set|get, ca crl set|delete:
 * uploaded client CAs (at most EDGE_MAX_UPLOADED_CAS), their hostname bindings,
 * CRLs and SPIFFE trust domains (the built-in CA's trust domain too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "pki.h"

#define CA_NAME_MAX 64
#define CRL_WARN_DAYS 7
#define TRUST_DOMAIN_MAX 255

static const struct ctl_col ca_cols[] = {
	{ "id", "ID" },
	{ "name", "NAME" },
	{ "subject", "SUBJECT" },
	{ "not_after", "NOT_AFTER" },
	{ "hosts", "HOSTS" },
	{ "crl_next_update", "CRL_NEXT_UPDATE" },
	{ "trust_domain", "TRUST_DOMAIN" },
	{ NULL, NULL },
};

static json_t *ca_hosts(struct ctl *c, int64_t id)
{
	sqlite3_stmt *st = ctl_sql(c,
				   "SELECT hostname FROM ca_host WHERE ca_id = ? ORDER BY "
				   "hostname",
				   "i", id);
	json_t *arr = json_array();

	while (st && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
	sqlite3_finalize(st);
	return arr;
}

/* A text column, JSON null when NULL. */
static json_t *nullable(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);

	return t ? json_string(t) : json_null();
}

/* A SPIFFE trust domain as the SPIFFE ID spec writes it: 1 to 255 of a-z 0-9 . - _
 * (no scheme, no port, no path, no upper case). Exit 5 naming what is wrong. */
static int trust_domain_check(const char *what, const char *td)
{
	size_t n = strlen(td), ok = strspn(td, "abcdefghijklmnopqrstuvwxyz0123456789.-_");
	const char *why = NULL;

	if (!n || n > TRUST_DOMAIN_MAX)
		why = "a trust domain has 1 to 255 characters";
	else if (strstr(td, "://") || !strncasecmp(td, "spiffe:", 7))
		why = "write the trust domain alone, without a scheme ('example.org', not "
		      "'spiffe://example.org')";
	else if (ok == n)
		return CTL_OK;
	else if (td[ok] == ':')
		why = "a trust domain has no port";
	else if (td[ok] == '/')
		why = "a trust domain has no path";
	else if (td[ok] >= 'A' && td[ok] <= 'Z')
		why = "a trust domain is lower-case";
	else
		why = "a trust domain has only a-z, 0-9, '.', '-' and '_'";
	return ctl_error(CTL_EINVAL, "%s '%s': %s", what, td, why);
}

#define CA_COLUMNS                                                                 \
	"id, name, subject, fingerprint, not_before, not_after, crl_next_update, " \
	"created_at, pem, crl_pem IS NOT NULL, trust_domain"

static json_t *ca_json(struct ctl *c, sqlite3_stmt *st)
{
	int64_t id = sqlite3_column_int64(st, 0);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name",
			      sqlite3_column_text(st, 1), "subject", sqlite3_column_text(st, 2),
			      "fingerprint", sqlite3_column_text(st, 3));

	ctl_json_time(o, "not_before", sqlite3_column_int64(st, 4));
	ctl_json_time(o, "not_after", sqlite3_column_int64(st, 5));
	json_object_set_new(o, "expired",
			    json_boolean(sqlite3_column_int64(st, 5) < (int64_t)c->now));
	json_object_set_new(o, "hosts", ca_hosts(c, id));
	json_object_set_new(o, "crl", json_boolean(sqlite3_column_int(st, 9)));
	ctl_json_time(o, "crl_next_update", sqlite3_column_int64(st, 6));
	json_object_set_new(o, "trust_domain", nullable(st, 10));
	ctl_json_time(o, "created", sqlite3_column_int64(st, 7));
	json_object_set_new(o, "pem", json_string((const char *)sqlite3_column_text(st, 8)));
	return o;
}

/* The uploaded CA with this ID as JSON, or exit 3. */
static int find_ca(struct ctl *c, int64_t id, json_t **o)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT " CA_COLUMNS " FROM ca WHERE id = ?", "i", id);

	*o = NULL;
	if (!st)
		return CTL_EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		*o = ca_json(c, st);
	sqlite3_finalize(st);
	return *o ? CTL_OK : ctl_error(CTL_ENOENT, "no uploaded CA with ID %lld", (long long)id);
}

static int cmd_ca_upload(struct ctl *c)
{
	const char *file = c->args[0], *name = ctl_opt(c, "name");
	const char *td = ctl_opt(c, "trust-domain");
	char fp[EDGE_PKI_FP_LEN], subject[512], *pem = NULL;
	int64_t nb, na, n, id;
	X509 *x = NULL;
	size_t len;
	json_t *out = NULL;
	int rc;

	if (!name)
		return ctl_error(CTL_EUSAGE, "ca upload needs --name NAME");
	if (!*name || strlen(name) > CA_NAME_MAX)
		return ctl_error(CTL_EINVAL, "--name must have 1 to %d characters", CA_NAME_MAX);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ctl_error(CTL_EINVAL, "--name has control characters");
	if (!strcasecmp(name, "builtin"))
		return ctl_error(CTL_EINVAL, "--name %s: the name is the built-in CA's", name);
	if (td && (rc = trust_domain_check("--trust-domain", td)))
		return rc;
	if ((rc = ctl_read_input(file, &pem, &len)))
		return rc;
	if (edge_pki_cert_parse(pem, len, &x, c->err, sizeof(c->err)) ||
	    edge_pki_check_ca(x, c->now, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", file, c->err);
		goto out;
	}
	free(pem);
	pem = NULL;
	edge_pki_fingerprint(x, fp);
	edge_pki_subject(X509_get_subject_name(x), subject, sizeof(subject));
	edge_pki_validity(x, &nb, &na);
	if (edge_pki_cert_pem(x, &pem)) { /* stored normalised: the certificate only */
		rc = ctl_error(CTL_EIO, "out of memory");
		goto out;
	}
	if ((rc = ctl_begin(c)))
		goto out;
	if ((n = ctl_int(c, "SELECT id FROM ca WHERE fingerprint = ?", "s", fp)) != 0)
		rc = n < 0 ? CTL_EIO
			   : ctl_error(CTL_EINVAL,
				       "%s: this certificate is already "
				       "uploaded as CA %lld",
				       file, (long long)n);
	else if (ctl_int(c, "SELECT count(*) FROM builtin_ca WHERE fingerprint = ?", "s", fp))
		rc = ctl_error(CTL_EINVAL, "%s: this is the built-in CA; it is trusted already",
			       file);
	else if ((n = ctl_int(c, "SELECT id FROM ca WHERE name = ?", "s", name)) != 0)
		rc = n < 0 ? CTL_EIO
			   : ctl_error(CTL_EINVAL, "the name '%s' is taken by CA %lld", name,
				       (long long)n);
	else if ((n = ctl_int(c, "SELECT count(*) FROM ca", NULL)) >= EDGE_MAX_UPLOADED_CAS)
		rc = ctl_error(CTL_ELIMIT, "limit of %d uploaded CAs reached; delete one first",
			       EDGE_MAX_UPLOADED_CAS);
	else if (n < 0)
		rc = CTL_EIO;
	if (!rc)
		rc = ctl_exec(c,
			      "INSERT INTO ca(name, fingerprint, subject, not_before, not_after,"
			      " pem, created_at, trust_domain) VALUES (?, ?, ?, ?, ?, ?, ?,"
			      " nullif(?, ''))",
			      "sssiisis", name, fp, subject, nb, na, pem, (int64_t)c->now,
			      td ? td : "");
	id = sqlite3_last_insert_rowid(edge_store_db(c->st));
	if (!rc) {
		out = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name", name,
				"subject", subject, "fingerprint", fp);
		ctl_json_time(out, "not_after", na);
		json_object_set_new(out, "trust_domain", td ? json_string(td) : json_null());
	}
	rc = ctl_finish(c, rc, out, "%lld", (long long)id);
out:
	free(pem);
	X509_free(x);
	return rc;
}

static int cmd_ca_list(struct ctl *c)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT " CA_COLUMNS " FROM ca ORDER BY id", NULL);
	json_t *arr = json_array(), *o;
	size_t i;

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, ca_json(c, st));
	sqlite3_finalize(st);
	CTL_ARRAY_EACH(arr, i, o) {
		json_int_t next = json_integer_value(json_object_get(o, "crl_next_update_epoch"));
		json_int_t end = json_integer_value(json_object_get(o, "not_after_epoch"));
		json_int_t id = json_integer_value(json_object_get(o, "id"));
		char when[32];

		json_object_del(o, "pem");
		/* Warn before it happens: a stale CRL refuses every client of its CA. */
		if (next && next <= c->now)
			ctl_warn("the CRL of CA %lld is past its nextUpdate (%s): every client of this CA"
				 " is refused; set a fresh one with 'ca crl set %lld FILE'",
				 (long long)id, ctl_iso(next, when), (long long)id);
		else if (next && next - c->now <= 7 * 86400)
			ctl_warn("the CRL of CA %lld reaches its nextUpdate on %s: after that every client"
				 " of this CA is refused; set a fresh one before",
				 (long long)id, ctl_iso(next, when));
		if (end && end - c->now < 30 * 86400)
			ctl_warn("CA %lld expires on %s", (long long)id, ctl_iso(end, when));
	}
	return ctl_emit(c, arr, ca_cols);
}

static int get_builtin(struct ctl *c)
{
	sqlite3_stmt *st = ctl_sql(c,
				   "SELECT subject, fingerprint, key_type, not_before, "
				   "not_after, cert_pem, trust_domain FROM builtin_ca WHERE id = 1",
				   NULL);
	char key[4096];
	json_t *o = NULL;

	if (!st)
		return CTL_EIO;
	snprintf(key, sizeof(key), "%s/" EDGE_STORE_CA_KEY, c->state);
	if (sqlite3_step(st) == SQLITE_ROW) {
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "builtin", "subject",
			      sqlite3_column_text(st, 0), "fingerprint", sqlite3_column_text(st, 1),
			      "key_type", sqlite3_column_text(st, 2), "key_file", key);
		ctl_json_time(o, "not_before", sqlite3_column_int64(st, 3));
		ctl_json_time(o, "not_after", sqlite3_column_int64(st, 4));
		json_object_set_new(o, "pem",
				    json_string((const char *)sqlite3_column_text(st, 5)));
		json_object_set_new(o, "trust_domain", nullable(st, 6));
	}
	sqlite3_finalize(st);
	if (!o)
		return ctl_error(CTL_ENOENT, "%s has no built-in CA (run 'init')", c->state);
	if (ctl_flag(c, "pem") && !c->json) {
		fputs(json_string_value(json_object_get(o, "pem")), stdout);
		json_decref(o);
		return CTL_OK;
	}
	return ctl_emit(c, o, NULL);
}

static int cmd_ca_get(struct ctl *c)
{
	int64_t id;
	json_t *o;
	int rc;

	if (!strcmp(c->args[0], "builtin"))
		return get_builtin(c);
	if ((rc = ctl_arg_id(c->args[0], "CA", &id)) || (rc = find_ca(c, id, &o)))
		return rc;
	if (ctl_flag(c, "pem") && !c->json) {
		fputs(json_string_value(json_object_get(o, "pem")), stdout);
		json_decref(o);
		return CTL_OK;
	}
	return ctl_emit(c, o, NULL);
}

/* Identity entries that name this CA (--ca NAME): a CA they name is not deleted
 * under them, --force or not. Removing an allow entry could leave its hostname
 * with none, which admits every verified certificate: the user deletes them. */
static int named_by_identity(struct ctl *c, int64_t id, const char *name)
{
	sqlite3_stmt *st = ctl_sql(c,
				   "SELECT id FROM idrule WHERE field = 'ca' AND value = ?"
				   " ORDER BY id",
				   "s", name);
	char ids[200] = "";
	size_t off = 0;
	int n = 0;

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (off < sizeof(ids) - 24)
			off += (size_t)snprintf(ids + off, sizeof(ids) - off, " %lld",
						(long long)sqlite3_column_int64(st, 0));
		n++;
	}
	sqlite3_finalize(st);
	if (!n)
		return CTL_OK;
	return ctl_error(CTL_EINVAL,
			 "CA %lld (%s) is named by %d identity entr%s; delete them first with "
			 "'" CTL_PROG " identity delete%s%s'",
			 (long long)id, name, n, n == 1 ? "y" : "ies", ids,
			 off >= sizeof(ids) - 24 ? " ..." : "");
}

static int cmd_ca_delete(struct ctl *c)
{
	json_t *o = NULL, *hosts = NULL, *out = NULL;
	int64_t id;
	int rc;

	if ((rc = ctl_arg_id(c->args[0], "CA", &id)) || (rc = ctl_begin(c)))
		return rc;
	if ((rc = find_ca(c, id, &o)))
		goto finish;
	hosts = json_object_get(o, "hosts");
	if ((rc = named_by_identity(c, id, json_string_value(json_object_get(o, "name")))))
		goto finish;
	if (json_array_size(hosts) && !ctl_flag(c, "force")) {
		rc = ctl_error(CTL_EINVAL,
			       "CA %lld (%s) is bound to %zu hostname(s); pass --force "
			       "to unbind and delete it",
			       (long long)id, json_string_value(json_object_get(o, "name")),
			       json_array_size(hosts));
		goto finish;
	}
	if ((rc = ctl_exec(c, "DELETE FROM ca_host WHERE ca_id = ?", "i", id)) ||
	    (rc = ctl_exec(c, "DELETE FROM ca WHERE id = ?", "i", id)))
		goto finish;
	if ((rc = ctl_coalesce_check(c, NULL)))
		goto finish;
	out = json_pack("{s:I, s:O}", "deleted", (json_int_t)id, "unbound", hosts);
finish:
	rc = ctl_finish(c, rc, out, "deleted CA %lld%s", (long long)id,
			json_array_size(hosts) ? " and its hostname bindings" : "");
	json_decref(o);
	return rc;
}

/* ---- bindings ----------------------------------------------------------- */

static int cmd_hosts_set(struct ctl *c)
{
	json_t *hosts = NULL, *o = NULL, *e, *out = NULL;
	int64_t id;
	size_t i;
	int rc;

	if (c->nargs - 1 > EDGE_MAX_HOSTS_PER_BIND)
		return ctl_error(CTL_ELIMIT, "%d hostnames given; at most %d per call",
				 c->nargs - 1, EDGE_MAX_HOSTS_PER_BIND);
	if ((rc = ctl_arg_id(c->args[0], "CA", &id)))
		return rc;
	for (int k = 1; k < c->nargs; k++) { /* syntax first, before any lock */
		char host[EDGE_HOSTNAME_LEN];

		if ((rc = ctl_host_norm(c->args[k], true, host, sizeof(host))))
			return rc;
	}
	if ((rc = ctl_begin(c)))
		return rc;
	if ((rc = find_ca(c, id, &o)) ||
	    (rc = ctl_host_list(c, c->args + 1, c->nargs - 1, EDGE_MAX_HOSTS_PER_BIND, &hosts)) ||
	    (rc = ctl_exec(c, "DELETE FROM ca_host WHERE ca_id = ?", "i", id)))
		goto finish;
	CTL_ARRAY_EACH(hosts, i, e)
		if (!rc)
			rc = ctl_exec(c, "INSERT INTO ca_host(ca_id, hostname) VALUES (?, ?)", "is",
				      id, json_string_value(e));
	if (!rc)
		rc = ctl_hints_check_trusted(c, hosts);
	if (!rc)
		rc = ctl_coalesce_check(c, NULL);
	if (!rc)
		out = json_pack("{s:I, s:O}", "id", (json_int_t)id, "hosts", hosts);
finish:
	rc = ctl_finish(c, rc, out, "CA %lld is bound to %zu hostname(s)", (long long)id,
			json_array_size(hosts));
	json_decref(hosts);
	json_decref(o);
	return rc;
}

static int cmd_hosts_get(struct ctl *c)
{
	static const struct ctl_col cols[] = { { "hostname", "HOSTNAME" }, { NULL, NULL } };
	json_t *o, *rows, *e;
	int64_t id;
	size_t i;
	int rc;

	if ((rc = ctl_arg_id(c->args[0], "CA", &id)) || (rc = find_ca(c, id, &o)))
		return rc;
	if (c->json) {
		rows = json_pack("{s:I, s:O}", "id", (json_int_t)id, "hosts",
				 json_object_get(o, "hosts"));
		json_decref(o);
		return ctl_emit(c, rows, NULL);
	}
	rows = json_array();
	CTL_ARRAY_EACH(json_object_get(o, "hosts"), i, e)
		json_array_append_new(rows, json_pack("{s:O}", "hostname", e));
	json_decref(o);
	return ctl_emit(c, rows, cols);
}

/* ---- trust domains ------------------------------------------------------ */

static int cmd_trust_domain(struct ctl *c)
{
	const char *td = c->nargs > 1 ? c->args[1] : NULL;
	bool builtin = !strcmp(c->args[0], "builtin");
	char who[64] = "the built-in CA";
	json_t *o = NULL;
	int64_t id = 0;
	int rc;

	if (!td == !ctl_flag(c, "clear"))
		return ctl_error(CTL_EUSAGE, "give a trust domain or --clear (one of them)");
	if ((!builtin && (rc = ctl_arg_id(c->args[0], "CA", &id))) ||
	    (td && (rc = trust_domain_check("trust domain", td))) || (rc = ctl_begin(c)))
		return rc;
	if (builtin) {
		if (ctl_int(c, "SELECT count(*) FROM builtin_ca WHERE id = 1", NULL) != 1)
			rc = ctl_error(CTL_ENOENT, "%s has no built-in CA (run 'init')", c->state);
		else
			rc = ctl_exec(
				c,
				"UPDATE builtin_ca SET trust_domain = nullif(?, '') WHERE id = 1",
				"s", td ? td : "");
	} else if (!(rc = find_ca(c, id, &o))) {
		snprintf(who, sizeof(who), "CA %lld (%.40s)", (long long)id,
			 json_string_value(json_object_get(o, "name")));
		rc = ctl_exec(c, "UPDATE ca SET trust_domain = nullif(?, '') WHERE id = ?", "si",
			      td ? td : "", id);
	}
	json_decref(o);
	o = builtin ? json_pack("{s:s}", "id", "builtin")
		    : json_pack("{s:I}", "id", (json_int_t)id);
	json_object_set_new(o, "trust_domain", td ? json_string(td) : json_null());
	return ctl_finish(c, rc, o,
			  td ? "%s vouches for the SPIFFE trust domain %s"
			     : "%s vouches for no SPIFFE trust domain%s",
			  who, td ? td : "");
}

/* ---- CRLs --------------------------------------------------------------- */

/* What crl set prints once the CRL is committed. */
struct crl_set {
	int64_t id, next;
	X509_CRL *crl;
};

static int crl_set_done(struct ctl *c, void *arg)
{
	const struct crl_set *r = arg;
	int revoked = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(r->crl));
	char when[32];
	json_t *out;

	if (r->next && r->next - (int64_t)c->now < CRL_WARN_DAYS * 86400)
		ctl_warn("the CRL's nextUpdate is %s: after it every client of CA %lld is refused "
			 "until a newer CRL is set",
			 ctl_iso(r->next, when), (long long)r->id);
	out = json_pack("{s:I, s:i}", "id", (json_int_t)r->id, "revoked",
			revoked < 0 ? 0 : revoked);
	ctl_json_time(out, "next_update", r->next);
	return ctl_emit_msg(c, out, "CRL set on CA %lld: %d revoked, next update %s",
			    (long long)r->id, revoked < 0 ? 0 : revoked,
			    r->next ? ctl_iso(r->next, when) : "none");
}

static int cmd_crl_set(struct ctl *c)
{
	const char *file = c->args[1];
	char *buf = NULL, *pem = NULL;
	sqlite3_stmt *st = NULL;
	X509_CRL *crl = NULL;
	X509 *ca = NULL;
	int64_t id, next = 0;
	size_t len;
	int rc;

	if ((rc = ctl_arg_id(c->args[0], "CA", &id)) || (rc = ctl_read_input(file, &buf, &len)))
		return rc;
	if (edge_pki_crl_parse(buf, len, &crl, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", file, c->err);
		goto out;
	}
	if ((rc = ctl_begin(c)))
		goto out;
	st = ctl_sql(c, "SELECT pem FROM ca WHERE id = ?", "i", id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		rc = st ? ctl_error(CTL_ENOENT, "no uploaded CA with ID %lld", (long long)id)
			: CTL_EIO;
		goto finish;
	}
	if (edge_pki_cert_parse((const char *)sqlite3_column_text(st, 0),
				(size_t)sqlite3_column_bytes(st, 0), &ca, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "CA %lld in the store is unreadable: %s", (long long)id,
			       c->err);
		goto finish;
	}
	if (edge_pki_check_crl(crl, ca, c->now, &next, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", file, c->err);
		goto finish;
	}
	{ /* stored normalised: the CRL only */
		BIO *bio = BIO_new(BIO_s_mem());
		char *data;
		long n = bio && PEM_write_bio_X509_CRL(bio, crl) ? BIO_get_mem_data(bio, &data)
								 : -1;

		pem = n > 0 ? strndup(data, (size_t)n) : NULL;
		BIO_free(bio);
	}
	rc = pem ? ctl_exec(c,
			    "UPDATE ca SET crl_pem = ?, crl_next_update = NULLIF(?, 0) "
			    "WHERE id = ?",
			    "sii", pem, next, id)
		 : ctl_error(CTL_EIO, "out of memory");
	if (!rc) {
		sqlite3_finalize(st);
		st = NULL;
	}
finish:
	rc = ctl_finish_with(c, rc, crl_set_done,
			     &(struct crl_set){ .id = id, .next = next, .crl = crl });
out:
	sqlite3_finalize(st);
	free(pem);
	free(buf);
	X509_free(ca);
	X509_CRL_free(crl);
	return rc;
}

static int cmd_crl_delete(struct ctl *c)
{
	int64_t id, has;
	int rc;

	if ((rc = ctl_arg_id(c->args[0], "CA", &id)) || (rc = ctl_begin(c)))
		return rc;
	has = ctl_int(c, "SELECT count(*) FROM ca WHERE id = ?", "i", id) > 0
		      ? ctl_int(c, "SELECT crl_pem IS NOT NULL FROM ca WHERE id = ?", "i", id)
		      : -2;
	if (has != 1)
		rc = has == -1 ? CTL_EIO
		     : has == -2
			     ? ctl_error(CTL_ENOENT, "no uploaded CA with ID %lld", (long long)id)
			     : ctl_error(CTL_ENOENT, "CA %lld has no CRL", (long long)id);
	else
		rc = ctl_exec(c,
			      "UPDATE ca SET crl_pem = NULL, crl_next_update = NULL WHERE "
			      "id = ?",
			      "i", id);
	return ctl_finish(c, rc, json_pack("{s:I}", "id", (json_int_t)id),
			  "CRL removed from CA %lld", (long long)id);
}

static const struct ctl_opt upload_opts[] = {
	{ "name", CTL_ARG, "NAME", "a unique name for the CA (1 to 64 characters)" },
	{ "trust-domain", CTL_ARG, "TD",
	  "the SPIFFE trust domain whose IDs this CA may vouch for (example.org)" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt td_opts[] = {
	{ "clear", 0, NULL, "the CA vouches for no trust domain" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt delete_opts[] = {
	{ "force", 0, NULL, "unbind its hostnames and delete it (one transaction)" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_ca_cmds[] = {
	{ "ca upload", "FILE --name NAME [--trust-domain TD]",
	  "upload a client CA (PEM, CA:TRUE, keyCertSign, "
	  "valid now; at most 5)",
	  upload_opts, 1, 1, CTL_STORE, cmd_ca_upload },
	{ "ca list", "", "list uploaded CAs", NULL, 0, 0, CTL_STORE, cmd_ca_list },
	{ "ca get", "ID|builtin", "show an uploaded CA, or the built-in one", ctl_pem_opts, 1, 1,
	  CTL_STORE, cmd_ca_get },
	{ "ca delete", "ID", "delete an uploaded CA (refused while bound unless --force)",
	  delete_opts, 1, 1, CTL_STORE, cmd_ca_delete },
	{ "ca trust-domain", "ID|builtin TD|--clear",
	  "set the SPIFFE trust domain a CA vouches for (spiffe://TD/... IDs)", td_opts, 1, 2,
	  CTL_STORE, cmd_trust_domain },
	{ "ca hosts set", "ID HOST...",
	  "bind the CA to these hostnames (replaces the set; "
	  "1 to 50)",
	  NULL, 2, -1, CTL_STORE, cmd_hosts_set },
	{ "ca hosts get", "ID", "list the hostnames bound to the CA", NULL, 1, 1, CTL_STORE,
	  cmd_hosts_get },
	{ "ca crl set", "ID FILE", "set the CA's CRL (PEM; signature, issuer and dates checked)",
	  NULL, 2, 2, CTL_STORE, cmd_crl_set },
	{ "ca crl delete", "ID", "remove the CA's CRL", NULL, 1, 1, CTL_STORE, cmd_crl_delete },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
