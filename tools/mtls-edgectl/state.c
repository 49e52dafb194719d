/* The state store as the CLI uses it: open, one transaction per write
 * command, small statement helpers, the "hostname falls under a site" rule. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fleet.h"
#include "pki.h"

int ctl_open_store(struct ctl *c, int flags)
{
	int rc = edge_store_open(c->state, flags, &c->st, c->err, sizeof(c->err));

	if (rc == -ENOENT)
		return ctl_error(CTL_ENOENT, "%s", c->err);
	if (rc)
		return ctl_error(CTL_EIO, "%s", c->err);
	return CTL_OK;
}

int ctl_begin(struct ctl *c)
{
	char *role = NULL, *cluster = NULL;
	int rc = CTL_OK;

	if (edge_store_begin(c->st, c->err, sizeof(c->err)))
		return ctl_error(CTL_EIO, "%s", c->err);
	edge_store_meta_get(c->st, "fleet_role", &role);
	if (role && !strcmp(role, "edge")) {
		edge_store_meta_get(c->st, "fleet_cluster", &cluster);
		edge_store_rollback(c->st);
		rc = ctl_error(CTL_EINVAL,
			       "%s is the replica of fleet cluster %s, which mtls-edged keeps from"
			       " etcd: make the change at the control store (it reaches every edge"
			       " through etcd)",
			       c->state, cluster ? cluster : "?");
	}
	free(role);
	free(cluster);
	return rc;
}

int ctl_commit(struct ctl *c)
{
	if (edge_store_commit(c->st, c->err, sizeof(c->err)))
		return ctl_error(CTL_EIO, "%s", c->err);
	return CTL_OK;
}

void ctl_rollback(struct ctl *c)
{
	edge_store_rollback(c->st);
}

static sqlite3_stmt *vsql(struct ctl *c, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *st = edge_store_prepare(c->st, sql, c->err, sizeof(c->err));
	int rc = SQLITE_OK;

	if (!st) {
		ctl_error(CTL_EIO, "%s", c->err);
		return NULL;
	}
	for (int i = 0; fmt && fmt[i] && rc == SQLITE_OK; i++) {
		if (fmt[i] == 's')
			rc = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
					       SQLITE_TRANSIENT);
		else if (fmt[i] == 'i')
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		else
			rc = sqlite3_bind_null(st, i + 1);
	}
	if (rc != SQLITE_OK) {
		ctl_error(CTL_EIO, "store: %s", sqlite3_errmsg(edge_store_db(c->st)));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

sqlite3_stmt *ctl_sql(struct ctl *c, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, fmt);
	st = vsql(c, sql, fmt, ap);
	va_end(ap);
	return st;
}

int ctl_exec(struct ctl *c, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	st = vsql(c, sql, fmt, ap);
	va_end(ap);
	if (!st)
		return CTL_EIO;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return CTL_OK;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return ctl_error(CTL_EINVAL, "store refused the change: %s",
				 sqlite3_errmsg(edge_store_db(c->st)));
	return ctl_error(CTL_EIO, "store: %s", sqlite3_errmsg(edge_store_db(c->st)));
}

int64_t ctl_int(struct ctl *c, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	st = vsql(c, sql, fmt, ap);
	va_end(ap);
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		v = 0;
	else
		ctl_error(CTL_EIO, "store: %s", sqlite3_errmsg(edge_store_db(c->st)));
	sqlite3_finalize(st);
	return v;
}

int ctl_host_norm(const char *in, bool wildcard, char *out, size_t outlen)
{
	char err[256];

	if (edge_hostname_norm(in, wildcard, out, outlen, err, sizeof(err)))
		return ctl_error(CTL_EINVAL, "invalid hostname %s", err);
	return CTL_OK;
}

int ctl_host_covered(struct ctl *c, const char *host)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT domain FROM site ORDER BY domain", NULL);
	char sites[512] = "";
	size_t off = 0;
	bool under = false;

	if (!st)
		return CTL_EIO;
	while (!under && sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 0);

		under = edge_hostname_under(host, d);
		if (off < sizeof(sites) - 1)
			off += (size_t)snprintf(sites + off, sizeof(sites) - off, "%s%s",
						off ? ", " : "", d);
	}
	sqlite3_finalize(st);
	if (under)
		return CTL_OK;
	return ctl_error(CTL_EINVAL,
			 "hostname '%s' is not under any site (sites: %s); add the "
			 "site first with '" CTL_PROG " site add DOMAIN'",
			 host, *sites ? sites : "none");
}

int ctl_host_list(struct ctl *c, char **in, int n, int max, json_t **out)
{
	json_t *arr = json_array();
	int rc = CTL_OK;

	*out = NULL;
	if (!arr)
		return ctl_error(CTL_EIO, "out of memory");
	if (max > 0 && n > max) {
		json_decref(arr);
		return ctl_error(CTL_ELIMIT, "%d hostnames given; at most %d per call", n, max);
	}
	for (int i = 0; !rc && i < n; i++) {
		char host[EDGE_HOSTNAME_LEN];
		bool dup = false;
		size_t k;
		json_t *e;

		rc = ctl_host_norm(in[i], true, host, sizeof(host));
		CTL_ARRAY_EACH(arr, k, e)
			dup |= !strcmp(json_string_value(e), host);
		if (!rc && !dup)
			rc = ctl_host_covered(c, host);
		if (!rc && !dup)
			json_array_append_new(arr, json_string(host));
	}
	if (rc)
		json_decref(arr);
	else
		*out = arr;
	return rc;
}
