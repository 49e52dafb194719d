/* identity allow|deny|list|delete: identity rules, per hostname allow and deny
 * entries on one parsed field of a verified client certificate each (authz.h:
 * the fields, their canonical values and how they match). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "ctl.h"
#include "pki.h"

const char *const ctl_identity_notes[] = {
	"deny wins: a certificate that matches a deny entry is refused;",
	"with any allow entry, a certificate must match one of the allow entries;",
	"no entries: every verified certificate passes (as without rules).",
	"An exact hostname with entries of its own does not use its *.domain's entries.",
	NULL,
};

static const struct ctl_col id_cols[] = {
	{ "id", "ID" },       { "hostname", "HOSTNAME" }, { "effect", "EFFECT" },
	{ "field", "FIELD" }, { "value", "VALUE" },       { NULL, NULL },
};

/* One entry as given, in canonical form. */
struct entry {
	enum edge_authz_field field;
	char value[EDGE_AUTHZ_VALUE_MAX];
};

static json_t *entry_json(int64_t id, const char *host, const char *effect, const char *field,
			  const char *value, int64_t created)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)id, "hostname", host,
			      "effect", effect, "field", field, "value", value);

	ctl_json_time(o, "created", created);
	return o;
}

/* Every value of every field option, through edge_authz_normalize, duplicates
 * folded: *out (n of them), or exit 2 (none given) or 5 (naming the option). */
static int collect(struct ctl *c, struct entry **out, int *n)
{
	int total = 0, rc = CTL_OK;
	struct entry *e;

	*out = NULL;
	*n = 0;
	for (int f = 0; f < EDGE_AUTHZ_NFIELDS; f++) {
		char **v;

		total += ctl_opts(c, edge_authz_field_name(f), &v);
	}
	if (!total)
		return ctl_error(CTL_EUSAGE,
				 "'%s' needs at least one of --dn --cn --dns --uri --uri-prefix "
				 "--email --ip --sha256 --spki --ski --ca --serial",
				 c->cmd->path);
	e = calloc((size_t)total, sizeof(*e));
	if (!e)
		return ctl_error(CTL_EIO, "out of memory");
	for (int f = 0; !rc && f < EDGE_AUTHZ_NFIELDS; f++) {
		const char *name = edge_authz_field_name(f);
		char **v, why[512];
		int nv = ctl_opts(c, name, &v);

		for (int k = 0; !rc && k < nv; k++) {
			bool dup = false;
			int r = edge_authz_normalize(f, v[k], e[*n].value, sizeof(e[*n].value), why,
						     sizeof(why));

			if (r == -EINVAL || (r && !why[0]))
				rc = ctl_error(CTL_EINVAL, "--%s %s", name,
					       why[0] ? why : "is not a valid value");
			else if (r)
				rc = ctl_error(CTL_EINVAL, "--%s: the value is too long", name);
			for (int j = 0; !rc && j < *n; j++)
				dup |= e[j].field == (enum edge_authz_field)f &&
				       !strcmp(e[j].value, e[*n].value);
			if (!rc && !dup)
				e[(*n)++].field = f;
		}
	}
	if (rc) {
		free(e);
		*n = 0;
		return rc;
	}
	*out = e;
	return CTL_OK;
}

/* In the transaction: every --ca names a CA there is; no entry exists already;
 * the hostname stays within EDGE_MAX_IDRULES_PER_HOST. */
static int check_entries(struct ctl *c, const char *host, const char *effect, const struct entry *e,
			 int n)
{
	int64_t have;

	for (int i = 0; i < n; i++) {
		const char *field = edge_authz_field_name(e[i].field);
		int64_t id;

		if (e[i].field == EDGE_AUTHZ_CA && strcmp(e[i].value, "builtin")) {
			id = ctl_int(c, "SELECT count(*) FROM ca WHERE name = ?", "s", e[i].value);
			if (id < 0)
				return CTL_EIO;
			if (!id)
				return ctl_error(
					CTL_EINVAL,
					"--ca %s: no uploaded CA has this name (the "
					"built-in CA is 'builtin'; 'ca list' shows the others)",
					e[i].value);
		}
		id = ctl_int(c,
			     "SELECT id FROM idrule WHERE hostname = ? AND effect = ? AND"
			     " field = ? AND value = ?",
			     "ssss", host, effect, field, e[i].value);
		if (id < 0)
			return CTL_EIO;
		if (id)
			return ctl_error(CTL_EINVAL, "%s already has this entry: %lld (%s %s=%s)",
					 host, (long long)id, effect, field, e[i].value);
	}
	have = ctl_int(c, "SELECT count(*) FROM idrule WHERE hostname = ?", "s", host);
	if (have < 0)
		return CTL_EIO;
	if (have + n > EDGE_MAX_IDRULES_PER_HOST)
		return ctl_error(CTL_ELIMIT,
				 "limit of %d identity entries per hostname: %s has %lld, this "
				 "would add %d",
				 EDGE_MAX_IDRULES_PER_HOST, host, (long long)have, n);
	return CTL_OK;
}

static int print_rows(struct ctl *c, void *arg)
{
	json_t *rows = arg;

	return ctl_emit(c, json_incref(rows), id_cols);
}

static int identity_add(struct ctl *c, const char *effect)
{
	char host[EDGE_HOSTNAME_LEN];
	struct entry *e = NULL;
	json_t *rows = NULL;
	int n = 0, rc;

	if ((rc = ctl_host_norm(c->args[0], true, host, sizeof(host))) ||
	    (rc = collect(c, &e, &n)) || (rc = ctl_begin(c)))
		goto out;
	if (!(rows = json_array())) {
		rc = ctl_error(CTL_EIO, "out of memory");
		goto finish;
	}
	if ((rc = ctl_host_covered(c, host)) || (rc = check_entries(c, host, effect, e, n)))
		goto finish;
	for (int i = 0; !rc && i < n; i++) {
		const char *field = edge_authz_field_name(e[i].field);

		rc = ctl_exec(c,
			      "INSERT INTO idrule(hostname, effect, field, value, created_at)"
			      " VALUES (?, ?, ?, ?, ?)",
			      "ssssi", host, effect, field, e[i].value, (int64_t)c->now);
		if (!rc)
			json_array_append_new(
				rows, entry_json(sqlite3_last_insert_rowid(edge_store_db(c->st)),
						 host, effect, field, e[i].value, (int64_t)c->now));
	}
	if (!rc)
		rc = ctl_coalesce_check(c, NULL);
finish:
	rc = ctl_finish_with(c, rc, print_rows, rows);
out:
	json_decref(rows);
	free(e);
	return rc;
}

static int cmd_identity_allow(struct ctl *c)
{
	return identity_add(c, edge_authz_effect_name(EDGE_AUTHZ_ALLOW));
}

static int cmd_identity_deny(struct ctl *c)
{
	return identity_add(c, edge_authz_effect_name(EDGE_AUTHZ_DENY));
}

static int cmd_identity_list(struct ctl *c)
{
	char host[EDGE_HOSTNAME_LEN] = "";
	sqlite3_stmt *st;
	json_t *arr;
	int rc;

	if (c->nargs && (rc = ctl_host_norm(c->args[0], true, host, sizeof(host))))
		return rc;
	st = ctl_sql(c,
		     "SELECT id, hostname, effect, field, value, created_at FROM idrule"
		     " WHERE ?1 = '' OR hostname = ?1 ORDER BY hostname, id",
		     "s", host);
	if (!st)
		return CTL_EIO;
	arr = json_array();
	while (arr && sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, entry_json(sqlite3_column_int64(st, 0),
						      (const char *)sqlite3_column_text(st, 1),
						      (const char *)sqlite3_column_text(st, 2),
						      (const char *)sqlite3_column_text(st, 3),
						      (const char *)sqlite3_column_text(st, 4),
						      sqlite3_column_int64(st, 5)));
	sqlite3_finalize(st);
	return ctl_emit(c, arr, id_cols);
}

static int cmd_identity_delete(struct ctl *c)
{
	int64_t *ids = calloc((size_t)c->nargs, sizeof(*ids));
	json_t *deleted = json_array();
	char list[256] = "";
	int n = 0, rc = CTL_OK;
	size_t off = 0;

	if (!ids || !deleted) {
		rc = ctl_error(CTL_EIO, "out of memory");
		goto out;
	}
	for (int k = 0; !rc && k < c->nargs; k++) {
		bool dup = false;

		char *end;

		errno = 0;
		ids[n] = strtoll(c->args[k], &end, 10);
		if (!*c->args[k] || *end || errno || ids[n] < 1)
			rc = ctl_error(CTL_EUSAGE,
				       "'%s' is not an identity entry ID (a positive number)",
				       c->args[k]);
		for (int j = 0; !rc && j < n; j++)
			dup |= ids[j] == ids[n];
		n += !rc && !dup;
	}
	if (rc || (rc = ctl_begin(c)))
		goto out;
	for (int k = 0; !rc && k < n; k++) {
		int64_t have = ctl_int(c, "SELECT count(*) FROM idrule WHERE id = ?", "i", ids[k]);

		if (have < 0)
			rc = CTL_EIO;
		else if (!have)
			rc = ctl_error(CTL_ENOENT, "no identity entry with ID %lld%s",
				       (long long)ids[k], n > 1 ? "; none deleted" : "");
	}
	for (int k = 0; !rc && k < n; k++) {
		rc = ctl_exec(c, "DELETE FROM idrule WHERE id = ?", "i", ids[k]);
		json_array_append_new(deleted, json_integer(ids[k]));
		if (off < sizeof(list) - 1)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%lld",
						k ? ", " : "", (long long)ids[k]);
	}
	if (!rc)
		rc = ctl_coalesce_check(c, NULL);
	rc = ctl_finish(c, rc, json_pack("{s:O}", "deleted", deleted), "deleted identity %s %s",
			n == 1 ? "entry" : "entries", list);
out:
	json_decref(deleted);
	free(ids);
	return rc;
}

static const struct ctl_opt add_opts[] = {
	{ "dn", CTL_ARG | CTL_MULTI, "DN",
	  "the subject DN, exact (RFC 4514: 'CN=bob,O=Acme', most specific first)" },
	{ "cn", CTL_ARG | CTL_MULTI, "NAME", "a commonName of the subject, exact" },
	{ "dns", CTL_ARG | CTL_MULTI, "NAME", "a SAN dNSName ('*.example.com': one label)" },
	{ "uri", CTL_ARG | CTL_MULTI, "URI", "a SAN URI, exact (spiffe://td/path...)" },
	{ "uri-prefix", CTL_ARG | CTL_MULTI, "URI", "a SAN URI under this prefix, at a '/'" },
	{ "email", CTL_ARG | CTL_MULTI, "ADDR", "a SAN rfc822Name" },
	{ "ip", CTL_ARG | CTL_MULTI, "ADDR[/LEN]", "a SAN iPAddress, or within a CIDR block" },
	{ "sha256", CTL_ARG | CTL_MULTI, "HEX", "the certificate's SHA-256 fingerprint" },
	{ "spki", CTL_ARG | CTL_MULTI, "HEX|B64",
	  "SHA-256 of its SubjectPublicKeyInfo (survives renewal with the same key)" },
	{ "ski", CTL_ARG | CTL_MULTI, "HEX", "its subject key identifier" },
	{ "ca", CTL_ARG | CTL_MULTI, "NAME",
	  "the CA that verified it: builtin, or an uploaded CA's name" },
	{ "serial", CTL_ARG | CTL_MULTI, "HEX", "its serial number" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_identity_cmds[] = {
	{ "identity allow", "HOST --FIELD VALUE...",
	  "admit certificates that match one of these entries (HOST exact or *.domain)", add_opts,
	  1, 1, CTL_STORE, cmd_identity_allow },
	{ "identity deny", "HOST --FIELD VALUE...",
	  "refuse certificates that match one of these entries (deny wins)", add_opts, 1, 1,
	  CTL_STORE, cmd_identity_deny },
	{ "identity list", "[HOST]", "list identity entries (all, or one hostname's)", NULL, 0, 1,
	  CTL_STORE, cmd_identity_list },
	{ "identity delete", "ID...", "delete identity entries (all or none)", NULL, 1, -1,
	  CTL_STORE, cmd_identity_delete },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
