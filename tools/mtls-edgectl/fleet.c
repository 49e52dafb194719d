/* fleet init|status: a control store's fleet (the publish of its changes: publish.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "etcd.h"
#include "fleet.h"

/* ---- fleet init ---- */

static int readable(const char *what, const char *path)
{
	if (path && access(path, R_OK))
		return ctl_error(CTL_EINVAL, "%s %s: %s", what, path, strerror(errno));
	return CTL_OK;
}

static int cmd_fleet_init(struct ctl *c)
{
	const char *etcd = ctl_opt(c, "etcd"), *cluster = ctl_opt(c, "cluster");
	const char *ca = ctl_opt(c, "etcd-ca"), *cert = ctl_opt(c, "etcd-cert");
	const char *key = ctl_opt(c, "etcd-key"), *user = ctl_opt(c, "etcd-user");
	const char *pwf = ctl_opt(c, "etcd-password-file");
	char prefix[EDGE_FLEET_PREFIX_MAX];
	struct edge_etcd *e = NULL;
	struct edge_etcd_opts o = { etcd, ca, cert, key, user, pwf, 0 };
	struct ctl_fleet_cfg old;
	int rc;

	if (!etcd || !cluster)
		return ctl_error(CTL_EUSAGE,
				 "fleet init needs --etcd URL[,URL...] and --cluster NAME");
	if (edge_fleet_prefix(cluster, prefix, sizeof(prefix), c->err, sizeof(c->err)))
		return ctl_error(CTL_EINVAL, "%s", c->err);
	if (!cert != !key)
		return ctl_error(CTL_EUSAGE, "--etcd-cert and --etcd-key go together");
	if (!user != !pwf)
		return ctl_error(CTL_EUSAGE, "--etcd-user and --etcd-password-file go together");
	if ((rc = readable("--etcd-ca", ca)) || (rc = readable("--etcd-cert", cert)) ||
	    (rc = readable("--etcd-key", key)) || (rc = readable("--etcd-password-file", pwf)))
		return rc;
	if (edge_etcd_new(&o, &e, c->err, sizeof(c->err)))
		return ctl_error(CTL_EINVAL, "%s", c->err);
	edge_etcd_free(e);
	if ((rc = ctl_begin(c)))
		return rc;
	if ((rc = ctl_fleet_cfg_read(c, &old)))
		return ctl_finish(c, rc, NULL, " ");
	if (old.cluster && strcmp(old.cluster, cluster))
		rc = ctl_error(CTL_EINVAL,
			       "this store is already the control of cluster %s; a store controls"
			       " one cluster",
			       old.cluster);
	ctl_fleet_cfg_free(&old);
	const char *const keys[][2] = {
		{ "fleet_role", "control" }, { "fleet_cluster", cluster },
		{ "fleet_etcd", etcd },      { "fleet_etcd_ca", ca },
		{ "fleet_etcd_cert", cert }, { "fleet_etcd_key", key },
		{ "fleet_etcd_user", user }, { "fleet_etcd_password_file", pwf },
	};
	for (size_t i = 0; !rc && i < sizeof(keys) / sizeof(keys[0]); i++)
		if (edge_store_meta_set(c->st, keys[i][0], keys[i][1], c->err, sizeof(c->err)))
			rc = ctl_error(CTL_EIO, "%s", c->err);
	return ctl_finish(c, rc,
			  json_pack("{s:s, s:s, s:s}", "cluster", cluster, "prefix", prefix, "etcd",
				    etcd),
			  "this store is the control of cluster %s (etcd %s, keys under %s)",
			  cluster, etcd, prefix);
}

/* ---- fleet sync ---- */

/* The control's whole configuration again (an empty write: its publish sends what differs), for
 * an etcd that lost changes (restored from a backup) or was written behind the control's back. */
static int cmd_fleet_sync(struct ctl *c)
{
	struct ctl_fleet_cfg f;
	int rc;

	if ((rc = ctl_fleet_cfg_read(c, &f)))
		return rc;
	if (!f.role || strcmp(f.role, "control")) {
		ctl_fleet_cfg_free(&f);
		return ctl_error(CTL_EINVAL,
				 "fleet sync runs on a fleet's control store (this one is %s)",
				 f.role ? "an edge's replica" : "in no fleet");
	}
	ctl_fleet_cfg_free(&f);
	if ((rc = ctl_begin(c)))
		return rc;
	return ctl_finish(c, 0, json_pack("{s:b}", "synced", 1),
			  "etcd has this control store's configuration");
}

/* ---- fleet status ---- */

static json_t *parse_or_text(const char *s)
{
	json_t *v = s ? json_loads(s, 0, NULL) : NULL;

	return v ? v : s ? json_string(s) : json_null();
}

static int edge_status(struct ctl *c)
{
	static const char *const keys[] = { "fleet_cluster",           "fleet_node",
					    "fleet_revision",          "fleet_seen_revision",
					    "fleet_rejected_revision", "fleet_rejected_reason" };
	json_t *o = json_pack("{s:s}", "role", "edge");

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v = NULL;

		edge_store_meta_get(c->st, keys[i], &v);
		json_object_set_new(o, keys[i] + strlen("fleet_"),
				    v ? json_string(v) : json_null());
		free(v);
	}
	return ctl_emit(c, o, NULL);
}

static int cmd_fleet_status(struct ctl *c)
{
	struct ctl_fleet_cfg f;
	struct edge_etcd *e = NULL;
	struct edge_etcd_kvs kvs = { 0 };
	static const struct ctl_col cols[] = {
		{ "node", "NODE" },     { "applied_revision", "APPLIED" },
		{ "behind", "BEHIND" }, { "rejected_revision", "REJECTED" },
		{ "reason", "REASON" }, { "etcd", "ETCD" },
		{ "at", "REPORTED" },   { NULL, NULL },
	};
	json_t *out = NULL, *nodes;
	int64_t gen = 0, commit_rev = 0;
	size_t plen;
	int rc;

	if ((rc = ctl_fleet_cfg_read(c, &f)))
		return rc;
	if (f.role && !strcmp(f.role, "edge")) {
		ctl_fleet_cfg_free(&f);
		return edge_status(c);
	}
	if (!f.role) {
		ctl_fleet_cfg_free(&f);
		return ctl_error(CTL_ENOENT,
				 "this store is in no fleet (make it a control: '" CTL_PROG
				 " fleet init --etcd URL --cluster NAME')");
	}
	if ((rc = ctl_fleet_etcd(c, &f, &e)))
		goto out;
	edge_store_generation(c->st, &gen);
	if (edge_etcd_range(e, f.prefix, NULL, &kvs, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "fleet: cannot read cluster %s from etcd: %s", f.cluster,
			       c->err);
		goto out;
	}
	plen = strlen(f.prefix);
	out = json_pack("{s:s, s:s, s:s, s:I, s:I}", "role", "control", "cluster", f.cluster,
			"etcd", f.endpoints, "generation", (json_int_t)gen, "etcd_revision",
			(json_int_t)kvs.revision);
	nodes = json_array();
	for (size_t j = 0; j < kvs.n; j++) {
		const char *k = kvs.v[j].key + plen;

		if (!strcmp(k, EDGE_FLEET_COMMIT_KEY)) {
			commit_rev = kvs.v[j].mod_revision;
			json_object_set_new(out, "commit", parse_or_text(kvs.v[j].value));
		}
	}
	{
		char *pub = NULL;

		edge_store_meta_get(c->st, "fleet_revision", &pub);
		json_object_set_new(out, "published_revision",
				    json_integer(pub ? strtoll(pub, NULL, 10) : 0));
		free(pub);
	}
	json_object_set_new(out, "commit_revision", json_integer(commit_rev));
	{
		json_int_t eg = json_integer_value(json_object_get(json_object_get(out, "commit"),
								   "generation"));

		json_object_set_new(out, "in_sync", json_boolean(eg == gen));
		if (eg != gen)
			ctl_warn("etcd holds generation %lld of this store, which is at %lld (etcd"
				 " restored from a backup, or written by hand?): '" CTL_PROG
				 " fleet sync' publishes it all again",
				 (long long)eg, (long long)gen);
	}
	for (size_t j = 0; j < kvs.n; j++) {
		const char *k = kvs.v[j].key + plen;
		json_t *st, *applied;

		if (strncmp(k, EDGE_FLEET_STATUS_DIR, strlen(EDGE_FLEET_STATUS_DIR)))
			continue;
		st = parse_or_text(kvs.v[j].value);
		if (!json_is_object(st)) {
			json_decref(st);
			st = json_pack("{s:s}", "reason", kvs.v[j].value);
		}
		json_object_set_new(st, "node", json_string(k + strlen(EDGE_FLEET_STATUS_DIR)));
		applied = json_object_get(st, "applied_revision");
		json_object_set_new(st, "behind",
				    json_boolean(!json_is_integer(applied) ||
						 json_integer_value(applied) != commit_rev));
		json_array_append_new(nodes, st);
	}
	if (!c->json) {
		json_t *n;
		size_t i;

		rc = ctl_emit(c, json_deep_copy(out), NULL);
		json_decref(out);
		out = NULL;
		CTL_ARRAY_EACH(nodes, i, n) {
			json_t *at = json_object_get(n, "at");
			char buf[32];

			if (json_is_integer(at))
				json_object_set_new(n, "at",
						    json_string(ctl_iso(json_integer_value(at),
									buf)));
		}
		if (!rc)
			rc = ctl_emit(c, nodes, cols);
		else
			json_decref(nodes);
		goto out;
	}
	json_object_set_new(out, "nodes", nodes);
	rc = ctl_emit(c, out, NULL);
	out = NULL;
out:
	json_decref(out);
	edge_etcd_kvs_free(&kvs);
	edge_etcd_free(e);
	ctl_fleet_cfg_free(&f);
	return rc;
}

static const struct ctl_opt init_opts[] = {
	{ "etcd", CTL_ARG, "URL[,URL...]", "the etcd cluster's client URLs (https://HOST:2379)" },
	{ "cluster", CTL_ARG, "NAME", "the cluster's name: its keys go under /mtls-edge/NAME/" },
	{ "etcd-ca", CTL_ARG, "FILE", "the CA of etcd's server certificates (PEM)" },
	{ "etcd-cert", CTL_ARG, "FILE", "this control's client certificate for etcd (PEM)" },
	{ "etcd-key", CTL_ARG, "FILE", "its private key (the path is kept, never the key)" },
	{ "etcd-user", CTL_ARG, "USER", "etcd user (etcd's auth on)" },
	{ "etcd-password-file", CTL_ARG, "FILE", "a file whose first line is its password" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_fleet_cmds[] = {
	{ "fleet init", "",
	  "make this store the control of a fleet: every committed change goes to etcd first",
	  init_opts, 0, 0, CTL_STORE, cmd_fleet_init },
	{ "fleet sync", "",
	  "publish the whole configuration again (etcd restored from a backup, or written by hand)",
	  NULL, 0, 0, CTL_STORE, cmd_fleet_sync },
	{ "fleet status", "",
	  "the control's generation and etcd revision, and every edge's applied revision", NULL, 0,
	  0, CTL_STORE, cmd_fleet_status },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
