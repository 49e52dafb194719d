/* rule add|list|delete: block rules ("client certificate verified = false AND
 * hostname in [...] -> action"). The hostname condition is mandatory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pki.h"

static const char *const actions[] = { "block", "alert", "drop", NULL };

static int cmd_rule_add(struct ctl *c)
{
	char **opt_hosts, **all;
	const char *action;
	json_t *hosts = NULL, *e, *out = NULL;
	int nopt = ctl_opts(c, "host", &opt_hosts), n = 0, rc;
	int64_t id = 0;
	size_t i;

	if (!nopt)
		return ctl_error(CTL_EINVAL,
				 "a rule needs a hostname condition (--host HOST): "
				 "without one it would apply to every hostname of every site; "
				 "give the hostnames (or *.domain) the rule is for");
	if (!ctl_opt(c, "action"))
		return ctl_error(CTL_EUSAGE, "rule add needs --action block|alert|drop");
	if ((rc = ctl_opt_choice(c, "action", actions, NULL, &action)))
		return rc;
	/* --host a --host b, or --host a b c */
	all = calloc((size_t)(nopt + c->nargs), sizeof(*all));
	if (!all)
		return ctl_error(CTL_EIO, "out of memory");
	for (int k = 0; k < nopt; k++)
		all[n++] = opt_hosts[k];
	for (int k = 0; k < c->nargs; k++)
		all[n++] = c->args[k];
	for (int k = 0; !rc && k < n; k++) {
		char host[EDGE_HOSTNAME_LEN];

		rc = ctl_host_norm(all[k], true, host, sizeof(host));
	}
	if (rc || (rc = ctl_begin(c)))
		goto out;
	if ((rc = ctl_host_list(c, all, n, 0, &hosts)) ||
	    (rc = ctl_exec(c, "INSERT INTO rule(action, created_at) VALUES (?, ?)", "si", action,
			   (int64_t)c->now)))
		goto finish;
	id = sqlite3_last_insert_rowid(edge_store_db(c->st));
	CTL_ARRAY_EACH(hosts, i, e)
		if (!rc)
			rc = ctl_exec(c, "INSERT INTO rule_host(rule_id, hostname) VALUES (?, ?)",
				      "is", id, json_string_value(e));
	if (!rc) {
		out = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)id, "action", action, "hosts",
				hosts);
		ctl_json_time(out, "created", (int64_t)c->now);
	}
finish:
	rc = ctl_finish(c, rc, out, "%lld", (long long)id);
out:
	json_decref(hosts);
	free(all);
	return rc;
}

static int cmd_rule_list(struct ctl *c)
{
	static const struct ctl_col cols[] = {
		{ "id", "ID" },           { "action", "ACTION" }, { "hosts", "HOSTS" },
		{ "created", "CREATED" }, { NULL, NULL },
	};
	sqlite3_stmt *st = ctl_sql(c, "SELECT id, action, created_at FROM rule ORDER BY id", NULL);
	json_t *arr = json_array();

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		sqlite3_stmt *h = ctl_sql(c,
					  "SELECT hostname FROM rule_host WHERE rule_id = ? "
					  "ORDER BY hostname",
					  "i", id);
		json_t *o = json_pack("{s:I, s:s, s:[]}", "id", (json_int_t)id, "action",
				      sqlite3_column_text(st, 1), "hosts");

		while (h && sqlite3_step(h) == SQLITE_ROW)
			json_array_append_new(json_object_get(o, "hosts"),
					      json_string((const char *)sqlite3_column_text(h, 0)));
		sqlite3_finalize(h);
		ctl_json_time(o, "created", sqlite3_column_int64(st, 2));
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(st);
	return ctl_emit(c, arr, cols);
}

static int cmd_rule_delete(struct ctl *c)
{
	int64_t id;
	int rc;

	if ((rc = ctl_arg_id(c->args[0], "rule", &id)) || (rc = ctl_begin(c)))
		return rc;
	if (ctl_int(c, "SELECT count(*) FROM rule WHERE id = ?", "i", id) != 1)
		rc = ctl_error(CTL_ENOENT, "no rule with ID %lld", (long long)id);
	if (!rc)
		rc = ctl_exec(c, "DELETE FROM rule_host WHERE rule_id = ?", "i", id);
	if (!rc)
		rc = ctl_exec(c, "DELETE FROM rule WHERE id = ?", "i", id);
	return ctl_finish(c, rc, json_pack("{s:I}", "deleted", (json_int_t)id), "deleted rule %lld",
			  (long long)id);
}

static const struct ctl_opt add_opts[] = {
	{ "host", CTL_ARG | CTL_MULTI, "HOST",
	  "hostname condition (exact or *.domain, under a "
	  "site); more hostnames may follow" },
	{ "action", CTL_ARG, "ACTION",
	  "block (HTTP 403 then close), alert (TLS alert), drop "
	  "(silent close)" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_rule_cmds[] = {
	{ "rule add", "--host HOST... --action block|alert|drop",
	  "add a block rule for "
	  "connections whose client certificate fails verification",
	  add_opts, 0, -1, CTL_STORE, cmd_rule_add },
	{ "rule list", "", "list block rules", NULL, 0, 0, CTL_STORE, cmd_rule_list },
	{ "rule delete", "ID", "delete a block rule", NULL, 1, 1, CTL_STORE, cmd_rule_delete },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
