/*
 * The publish of every committed change of a control store to etcd (the keys:
 * userspace/lib/fleet.h). It runs in the write command's transaction, before its commit
 * (write.c): etcd takes the change in one transaction guarded by the revision of meta/commit
 * as this command read it, or the command fails and the store is rolled back. The store and
 * etcd never diverge by a command: what etcd did not take is not committed here. The fleet
 * commands (fleet.c) read the same settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "etcd.h"
#include "fleet.h"

#define PUBLISH_TRIES 3

void ctl_fleet_cfg_free(struct ctl_fleet_cfg *f)
{
	free(f->role);
	free(f->cluster);
	free(f->endpoints);
	free(f->ca);
	free(f->cert);
	free(f->key);
	free(f->user);
	free(f->password_file);
	memset(f, 0, sizeof(*f));
}

int ctl_fleet_cfg_read(struct ctl *c, struct ctl_fleet_cfg *f)
{
	struct {
		const char *key;
		char **v;
	} m[] = {
		{ "fleet_role", &f->role },      { "fleet_cluster", &f->cluster },
		{ "fleet_etcd", &f->endpoints }, { "fleet_etcd_ca", &f->ca },
		{ "fleet_etcd_cert", &f->cert }, { "fleet_etcd_key", &f->key },
		{ "fleet_etcd_user", &f->user }, { "fleet_etcd_password_file", &f->password_file },
	};

	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (edge_store_meta_get(c->st, m[i].key, m[i].v)) {
			ctl_fleet_cfg_free(f);
			return ctl_error(CTL_EIO, "store: cannot read %s", m[i].key);
		}
	if (f->cluster &&
	    edge_fleet_prefix(f->cluster, f->prefix, sizeof(f->prefix), c->err, sizeof(c->err))) {
		ctl_fleet_cfg_free(f);
		return ctl_error(CTL_EIO, "store: %s", c->err);
	}
	return CTL_OK;
}

int ctl_fleet_etcd(struct ctl *c, const struct ctl_fleet_cfg *f, struct edge_etcd **e)
{
	const struct edge_etcd_opts o = {
		.endpoints = f->endpoints,
		.ca_file = f->ca,
		.cert_file = f->cert,
		.key_file = f->key,
		.user = f->user,
		.password_file = f->password_file,
	};

	if (edge_etcd_new(&o, e, c->err, sizeof(c->err)))
		return ctl_error(CTL_EINVAL, "fleet: %s", c->err);
	return CTL_OK;
}

/* ---- publish ---- */

struct kvlist {
	char **k, **v;
	size_t n, cap;
};

static int kv_add(void *arg, const char *key, const char *value)
{
	struct kvlist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		char **k = realloc(l->k, cap * sizeof(*k)), **v;

		if (!k)
			return -ENOMEM;
		l->k = k;
		if (!(v = realloc(l->v, cap * sizeof(*v))))
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->k[l->n] = strdup(key);
	l->v[l->n] = strdup(value);
	if (!l->k[l->n] || !l->v[l->n]) {
		free(l->k[l->n]);
		free(l->v[l->n]);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static void kv_free(struct kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->k[i]);
		free(l->v[i]);
	}
	free(l->k);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct kvlist *sort_list; /* qsort has no argument */
static int by_key(const void *a, const void *b)
{
	return strcmp(sort_list->k[*(const size_t *)a], sort_list->k[*(const size_t *)b]);
}

/* The ops that take etcd's keys (cur, under prefix) to the wanted ones (want, relative,
 * sorted through idx). Status keys are the edges' and meta/commit is written last. */
static int diff(const struct kvlist *want, const size_t *idx, const struct edge_etcd_kvs *cur,
		size_t plen, struct edge_etcd_op **ops, size_t *n_ops, char ***own)
{
	size_t i = 0, j = 0, n = 0, cap = want->n + cur->n + 1;
	struct edge_etcd_op *o = calloc(cap, sizeof(*o));
	char **names = calloc(cap, sizeof(*names));

	if (!o || !names) {
		free(o);
		free(names);
		return -ENOMEM;
	}
	while (i < want->n || j < cur->n) {
		const char *ck = j < cur->n ? cur->v[j].key + plen : NULL;
		int cmp;

		if (ck && (!strncmp(ck, EDGE_FLEET_STATUS_DIR, strlen(EDGE_FLEET_STATUS_DIR)) ||
			   !strcmp(ck, EDGE_FLEET_COMMIT_KEY))) {
			j++;
			continue;
		}
		cmp = i >= want->n ? 1 : !ck ? -1 : strcmp(want->k[idx[i]], ck);
		if (cmp < 0 || (cmp == 0 && strcmp(want->v[idx[i]], cur->v[j].value))) {
			names[n] = (char *)want->k[idx[i]];
			o[n++].value = want->v[idx[i]];
		} else if (cmp > 0) {
			names[n] = (char *)ck;
			o[n++].value = NULL;
		}
		if (cmp <= 0)
			i++;
		if (cmp >= 0)
			j++;
	}
	*ops = o;
	*n_ops = n;
	*own = names;
	return 0;
}

/* One try: read etcd, send what differs. -ECANCELED: another writer came first. */
static int publish_once(struct ctl *c, struct edge_etcd *e, const struct ctl_fleet_cfg *f,
			const struct kvlist *want, const size_t *idx, int64_t gen,
			int64_t *revision, size_t *changed)
{
	struct edge_etcd_kvs cur = { 0 };
	struct edge_etcd_op *ops = NULL;
	char **names = NULL, commit[128], **full = NULL;
	size_t plen = strlen(f->prefix), n = 0;
	int64_t guard = 0;
	int rc;

	char end[EDGE_FLEET_END_MAX];

	edge_fleet_config_end(f->prefix, end, sizeof(end));
	rc = edge_etcd_range(e, f->prefix, end, &cur, c->err, sizeof(c->err));
	if (rc)
		return rc;
	for (size_t j = 0; j < cur.n; j++)
		if (!strcmp(cur.v[j].key + plen, EDGE_FLEET_COMMIT_KEY))
			guard = cur.v[j].mod_revision;
	if ((rc = diff(want, idx, &cur, plen, &ops, &n, &names)))
		goto out;
	snprintf(commit, sizeof(commit), "{\"at\":%lld,\"generation\":%lld}", (long long)c->now,
		 (long long)gen);
	names[n] = EDGE_FLEET_COMMIT_KEY;
	ops[n++].value = commit;
	*changed = n - 1;
	/* absolute keys */
	full = calloc(n, sizeof(*full));
	if (!full) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		if (asprintf(&full[k], "%s%s", f->prefix, names[k]) < 0) {
			full[k] = NULL;
			rc = -ENOMEM;
			goto out;
		}
		ops[k].key = full[k];
	}
	/* More ops than one etcd transaction takes: in parts, meta/commit in the last, each
	 * guarded the same way; an edge applies only revisions that wrote meta/commit. */
	for (size_t off = 0; !rc && off < n; off += EDGE_ETCD_TXN_MAX)
		rc = edge_etcd_txn(e, full[n - 1], guard, ops + off,
				   n - off < EDGE_ETCD_TXN_MAX ? n - off : EDGE_ETCD_TXN_MAX,
				   revision, c->err, sizeof(c->err));
out:
	if (full)
		for (size_t k = 0; k < n; k++)
			free(full[k]);
	free(full);
	free(ops);
	free(names);
	edge_etcd_kvs_free(&cur);
	return rc;
}

int ctl_fleet_publish(struct ctl *c)
{
	struct ctl_fleet_cfg f;
	struct kvlist want = { 0 };
	struct edge_etcd *e = NULL;
	size_t *idx = NULL, changed = 0;
	int64_t gen = 0, revision = 0;
	char rev[32];
	int rc, tries = 0;

	if ((rc = ctl_fleet_cfg_read(c, &f)))
		return rc;
	if (!f.role || strcmp(f.role, "control")) {
		ctl_fleet_cfg_free(&f);
		return CTL_OK;
	}
	if ((rc = ctl_fleet_etcd(c, &f, &e)))
		goto out;
	if (edge_store_generation(c->st, &gen) ||
	    edge_fleet_export(c->st, kv_add, &want, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "fleet: %s", c->err[0] ? c->err : "cannot read the store");
		goto out;
	}
	idx = calloc(want.n + 1, sizeof(*idx));
	if (!idx) {
		rc = ctl_error(CTL_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < want.n; i++)
		idx[i] = i;
	sort_list = &want;
	qsort(idx, want.n, sizeof(*idx), by_key);
	do {
		c->err[0] = '\0';
		rc = publish_once(c, e, &f, &want, idx, gen + 1, &revision, &changed);
	} while (rc == -ECANCELED && ++tries < PUBLISH_TRIES);
	if (rc) {
		rc = ctl_error(CTL_EIO,
			       "etcd did not take the change, so nothing was committed (the store"
			       " and cluster %s are as they were): %s",
			       f.cluster,
			       rc == -ECANCELED ? "another control writer changed the cluster at"
						  " the same time, every try"
						: c->err);
		goto out;
	}
	snprintf(rev, sizeof(rev), "%lld", (long long)revision);
	if (edge_store_meta_set(c->st, "fleet_revision", rev, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "%s", c->err);
		goto out;
	}
	c->published = true;
	ctl_note("fleet: published to cluster %s at etcd revision %lld (%zu keys changed)",
		 f.cluster, (long long)revision, changed);
out:
	free(idx);
	kv_free(&want);
	edge_etcd_free(e);
	ctl_fleet_cfg_free(&f);
	return rc;
}
