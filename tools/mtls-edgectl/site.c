/* init (state directory, store, built-in CA, first site) and site add|list|delete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "ctl.h"
#include "pki.h"

static int site_arg(const char *in, char *out)
{
	return ctl_host_norm(in, false, out, EDGE_HOSTNAME_LEN);
}

/* ---- init --------------------------------------------------------------- */

/* What init reports once the store is committed. */
struct initialised {
	const char *site, *subject, *fp, *key_type, *keypath;
	int64_t na;
	bool *linked;
};

static int init_done(struct ctl *c, void *arg)
{
	const struct initialised *d = arg;
	json_t *out;

	*d->linked = false; /* committed: the key stays */
	out = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "state", c->state, "site", d->site,
			"ca", "subject", d->subject, "fingerprint", d->fp, "key_type", d->key_type,
			"key_file", d->keypath);
	ctl_json_time(json_object_get(out, "ca"), "not_after", d->na);
	return ctl_emit_msg(c, out, "initialised %s: site %s, built-in CA %s (%s), key %s",
			    c->state, d->site, d->fp, d->key_type, d->keypath);
}

static int already_initialised(struct ctl *c, const char *keypath)
{
	char db[4096];
	int64_t n;

	snprintf(db, sizeof(db), "%s/" EDGE_STORE_FILE, c->state);
	if (!access(db, F_OK)) {
		int rc = ctl_open_store(c, 0);

		if (rc)
			return rc;
		n = ctl_int(c, "SELECT count(*) FROM builtin_ca", NULL);
		if (n < 0)
			return CTL_EIO;
		if (n > 0)
			return ctl_error(CTL_EINVAL,
					 "%s is already initialised (it has a built-in "
					 "CA); use 'site add' for more sites",
					 c->state);
	}
	if (!access(keypath, F_OK))
		return ctl_error(CTL_EINVAL,
				 "%s exists but the store has no built-in CA; move the "
				 "key away before running init again",
				 keypath);
	return CTL_OK;
}

static int cmd_init(struct ctl *c)
{
	const char *kt_name = ctl_opt(c, "ca-key-type"), *site_in = ctl_opt(c, "site");
	char site[EDGE_HOSTNAME_LEN], keypath[4096], tmp[4200], cadir[4096];
	char fp[EDGE_PKI_FP_LEN], subject[512], *pem = NULL;
	enum edge_key_type kt = EDGE_KEY_EC_P256;
	int64_t nb, na;
	EVP_PKEY *key = NULL;
	X509 *ca = NULL;
	bool linked = false;
	struct stat sb;
	int rc;

	if (!site_in)
		return ctl_error(CTL_EUSAGE, "init needs --site DOMAIN");
	if (kt_name && edge_pki_key_type_parse(kt_name, &kt))
		return ctl_error(CTL_EUSAGE,
				 "--ca-key-type: '%s' is not one of "
				 "ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096",
				 kt_name);
	rc = site_arg(site_in, site);
	if (rc)
		return rc;
	if (mkdir(c->state, 0700) && errno != EEXIST)
		return ctl_error(CTL_EIO, "cannot create the state directory %s: %s", c->state,
				 strerror(errno));
	if (stat(c->state, &sb) || !S_ISDIR(sb.st_mode))
		return ctl_error(CTL_EIO, "%s is not a directory", c->state);
	snprintf(cadir, sizeof(cadir), "%s/ca", c->state);
	snprintf(keypath, sizeof(keypath), "%s/" EDGE_STORE_CA_KEY, c->state);
	snprintf(tmp, sizeof(tmp), "%s.new-%ld", keypath, (long)getpid());
	rc = already_initialised(c, keypath);
	if (rc)
		return rc;

	if (edge_pki_keygen(kt, &key, c->err, sizeof(c->err)) ||
	    edge_pki_make_ca(key, site, c->now, &ca, c->err, sizeof(c->err)) ||
	    edge_pki_cert_pem(ca, &pem)) {
		rc = ctl_error(CTL_EIO, "%s", c->err);
		goto out;
	}
	edge_pki_fingerprint(ca, fp);
	edge_pki_subject(X509_get_subject_name(ca), subject, sizeof(subject));
	edge_pki_validity(ca, &nb, &na);
	if (mkdir(cadir, 0700) && errno != EEXIST) {
		rc = ctl_error(CTL_EIO, "cannot create %s: %s", cadir, strerror(errno));
		goto out;
	}
	{
		char *kpem;
		size_t klen;
		int fd;

		if (edge_pki_key_pem(key, &kpem, &klen)) {
			rc = ctl_error(CTL_EIO, "cannot encode the CA key");
			goto out;
		}
		rc = ctl_create(tmp, 0600, &fd);
		if (!rc)
			rc = ctl_write_close(fd, tmp, kpem, klen);
		OPENSSL_clear_free(kpem, klen);
		if (rc)
			goto out;
	}
	if (!c->st && (rc = ctl_open_store(c, EDGE_STORE_CREATE)))
		goto out;
	if ((rc = ctl_begin(c)))
		goto out;
	if (ctl_int(c, "SELECT count(*) FROM builtin_ca", NULL) != 0) {
		rc = ctl_error(CTL_EINVAL, "%s is already initialised", c->state);
		goto finish;
	}
	rc = ctl_exec(c,
		      "INSERT INTO builtin_ca(id, cert_pem, key_type, subject, fingerprint,"
		      " not_before, not_after, created_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
		      "ssssiii", pem, edge_pki_key_type_name(kt), subject, fp, nb, na,
		      (int64_t)c->now);
	if (!rc)
		rc = ctl_exec(c, "INSERT OR IGNORE INTO site(domain, created_at) VALUES (?, ?)",
			      "si", site, (int64_t)c->now);
	if (rc)
		goto finish;
	/* link(): never replaces a key that appeared meanwhile. */
	if (link(tmp, keypath)) {
		rc = errno == EEXIST
			     ? ctl_error(CTL_EINVAL, "%s appeared meanwhile", keypath)
			     : ctl_error(CTL_EIO, "cannot create %s: %s", keypath, strerror(errno));
		goto finish;
	}
	linked = true;
finish:
	rc = ctl_finish_with(c, rc, init_done,
			     &(struct initialised){
				     .site = site,
				     .subject = subject,
				     .fp = fp,
				     .key_type = edge_pki_key_type_name(kt),
				     .keypath = keypath,
				     .na = na,
				     .linked = &linked,
			     });
out:
	if (linked) /* not committed */
		unlink(keypath);
	unlink(tmp);
	free(pem);
	X509_free(ca);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- site --------------------------------------------------------------- */

static int cmd_site_add(struct ctl *c)
{
	char site[EDGE_HOSTNAME_LEN];
	int rc = site_arg(c->args[0], site);

	if (rc || (rc = ctl_begin(c)))
		return rc;
	if (ctl_int(c, "SELECT count(*) FROM site WHERE domain = ?", "s", site) != 0)
		rc = ctl_error(CTL_EINVAL, "site %s already exists", site);
	else
		rc = ctl_exec(c, "INSERT INTO site(domain, created_at) VALUES (?, ?)", "si", site,
			      (int64_t)c->now);
	return ctl_finish(c, rc, json_pack("{s:s}", "domain", site), "added site %s", site);
}

static int cmd_site_list(struct ctl *c)
{
	static const struct ctl_col cols[] = {
		{ "domain", "DOMAIN" },
		{ "created", "CREATED" },
		{ NULL, NULL },
	};
	sqlite3_stmt *st = ctl_sql(c, "SELECT domain, created_at FROM site ORDER BY domain", NULL);
	json_t *arr = json_array();

	if (!st)
		return CTL_EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *o = json_pack("{s:s}", "domain", sqlite3_column_text(st, 0));

		ctl_json_time(o, "created", sqlite3_column_int64(st, 1));
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(st);
	return ctl_emit(c, arr, cols);
}

/* What would be left outside every site: hostnames under this one and under
 * no other. */
static const struct {
	const char *what, *select, *del;
} deps[] = {
	{ "sni", "SELECT 0, hostname FROM sni", "DELETE FROM sni WHERE hostname = ?2" },
	{ "ca_hosts", "SELECT ca_id, hostname FROM ca_host",
	  "DELETE FROM ca_host WHERE ca_id = ?1 AND hostname = ?2" },
	{ "rule_hosts", "SELECT rule_id, hostname FROM rule_host",
	  "DELETE FROM rule_host WHERE rule_id = ?1 AND hostname = ?2" },
	{ "identity", "SELECT id, hostname FROM idrule",
	  "DELETE FROM idrule WHERE id = ?1 AND hostname = ?2" },
};

static int orphans(struct ctl *c, const char *site, json_t *found, int *count)
{
	*count = 0;
	for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
		sqlite3_stmt *st = ctl_sql(c, deps[i].select, NULL);
		json_t *arr = json_array();

		if (!st)
			return CTL_EIO;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *h = (const char *)sqlite3_column_text(st, 1);

			if (!edge_hostname_under(h, site) ||
			    ctl_int(c,
				    "SELECT count(*) FROM site WHERE domain != ?1 AND "
				    "(?2 = domain OR ?2 LIKE '%.' || domain)",
				    "ss", site, h) > 0)
				continue;
			json_array_append_new(arr,
					      i ? json_pack("{s:I, s:s}", "id",
							    (json_int_t)sqlite3_column_int64(st, 0),
							    "hostname", h)
						: json_string(h));
			(*count)++;
		}
		sqlite3_finalize(st);
		json_object_set_new(found, deps[i].what, arr);
	}
	return CTL_OK;
}

static int remove_orphans(struct ctl *c, json_t *found)
{
	int rc = CTL_OK;

	for (size_t i = 0; !rc && i < sizeof(deps) / sizeof(deps[0]); i++) {
		json_t *arr = json_object_get(found, deps[i].what), *e;
		size_t k;

		CTL_ARRAY_EACH(arr, k, e) {
			const char *h = i ? json_string_value(json_object_get(e, "hostname"))
					  : json_string_value(e);
			json_int_t id = i ? json_integer_value(json_object_get(e, "id")) : 0;

			if (!rc)
				rc = ctl_exec(c, deps[i].del, "is", (int64_t)id, h);
		}
	}
	if (!rc) /* a rule without a hostname condition would apply everywhere */
		rc = ctl_exec(c, "DELETE FROM rule WHERE id NOT IN (SELECT rule_id FROM rule_host)",
			      NULL);
	return rc;
}

static int cmd_site_delete(struct ctl *c)
{
	char site[EDGE_HOSTNAME_LEN];
	json_t *found = json_object(), *out = NULL;
	int rc = site_arg(c->args[0], site), n = 0;

	if (rc || (rc = ctl_begin(c)))
		goto out;
	if (ctl_int(c, "SELECT count(*) FROM site WHERE domain = ?", "s", site) != 1) {
		rc = ctl_error(CTL_ENOENT, "no site %s", site);
		goto finish;
	}
	if ((rc = orphans(c, site, found, &n)))
		goto finish;
	if (n && !ctl_flag(c, "force")) {
		rc = ctl_error(CTL_EINVAL,
			       "site %s still covers %d hostname binding(s), SNI "
			       "object(s), rule hostname(s) or identity entries that fall under no "
			       "other site; delete them first, or pass --force to delete them with "
			       "the site",
			       site, n);
		goto finish;
	}
	if ((rc = remove_orphans(c, found)) ||
	    (rc = ctl_exec(c, "DELETE FROM site WHERE domain = ?", "s", site)))
		goto finish;
	out = json_pack("{s:s, s:O}", "deleted", site, "removed", found);
finish:
	rc = ctl_finish(c, rc, out, "deleted site %s%s", site,
			n ? " and what fell under it only" : "");
out:
	json_decref(found);
	return rc;
}

static const struct ctl_opt init_opts[] = {
	{ "site", CTL_ARG, "DOMAIN", "the first site (apex domain)" },
	{ "ca-key-type", CTL_ARG, "TYPE",
	  "ec-p256 (default), ec-p384, rsa-2048, rsa-3072, "
	  "rsa-4096" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt delete_opts[] = {
	{ "force", 0, NULL,
	  "also delete the bindings, SNI objects, rule hostnames and identity entries that "
	  "fall under this site only" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_site_cmds[] = {
	{ "init", "--site DOMAIN", "create the state directory, the store and the built-in CA",
	  init_opts, 0, 0, 0, cmd_init },
	{ "site add", "DOMAIN", "add a site: hostnames used anywhere must fall under one", NULL, 1,
	  1, CTL_STORE, cmd_site_add },
	{ "site list", "", "list the sites", NULL, 0, 0, CTL_STORE, cmd_site_list },
	{ "site delete", "DOMAIN", "delete a site (refused while hostnames depend on it)",
	  delete_opts, 1, 1, CTL_STORE, cmd_site_delete },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
