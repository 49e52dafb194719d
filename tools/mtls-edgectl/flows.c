/* flows list|clear and stats: what the eBPF program enforces, read from its
 * pinned maps (the daemon need not run). Hostnames are stored in the kernel as
 * hashes; they are named here from the hostnames the store knows. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "flowtag.h"

static const char *pin_dir(struct ctl *c)
{
	const char *d = ctl_opt(c, "pin-dir");

	return d && *d ? d : EDGE_FLOWTAG_PIN_DIR;
}

static int open_maps(struct ctl *c, struct edge_flowtag **ft)
{
	int rc = edge_flowtag_open_pinned(pin_dir(c), ft, c->err, sizeof(c->err));

	if (rc == -ENOENT)
		return ctl_error(CTL_ENOENT,
				 "no eBPF maps pinned in %s: mtls-edged has not run with"
				 " [bpf] mode auto|on on this host (%s)",
				 pin_dir(c), c->err);
	if (rc)
		return ctl_error(ctl_errno_exit(rc), "%s: %s", pin_dir(c), c->err);
	return CTL_OK;
}

/* The hostname whose hash this is, among those the store names; else "". */
static const char *host_name(struct ctl *c, uint32_t hash, char *buf, size_t len)
{
	sqlite3_stmt *st;

	buf[0] = '\0';
	if (!hash)
		return buf;
	st = ctl_sql(c,
		     "SELECT hostname FROM rule_host UNION SELECT hostname FROM sni"
		     " UNION SELECT hostname FROM ca_host",
		     NULL);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);

		if (edge_flowtag_host_hash(h) == hash) {
			snprintf(buf, len, "%s", h);
			break;
		}
	}
	sqlite3_finalize(st);
	if (!buf[0])
		snprintf(buf, len, "#%08x", hash);
	return buf;
}

struct list_ctx {
	struct ctl *c;
	json_t *arr;
};

static int list_one(const struct edge_flowtag_entry *e, void *arg)
{
	struct list_ctx *lc = arg;
	char src[80], dst[80] = "", host[300];

	edge_addr_format((const struct sockaddr *)&e->peer, src, sizeof(src));
	if (e->kind == EDGE_FLOWTAG_FLOW)
		edge_addr_format((const struct sockaddr *)&e->local, dst, sizeof(dst));
	else
		*strrchr(src, ':') = '\0'; /* an offender is a source address, no port */
	json_array_append_new(lc->arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "kind",
						 e->kind == EDGE_FLOWTAG_FLOW ? "flow" : "offender",
						 "source", src, "destination", dst, "hostname",
						 host_name(lc->c, e->host_hash, host, sizeof(host)),
						 "host_hash", (json_int_t)e->host_hash, "ttl_ms",
						 (json_int_t)e->ttl_ms, "expired", e->expired));
	return 0;
}

static int cmd_flows_list(struct ctl *c)
{
	static const struct ctl_col cols[] = {
		{ "kind", "KIND" },
		{ "source", "SOURCE" },
		{ "destination", "DESTINATION" },
		{ "hostname", "HOSTNAME" },
		{ "ttl_ms", "TTL_MS" },
		{ "expired", "EXPIRED" },
		{ NULL, NULL },
	};
	struct list_ctx lc = { .c = c, .arr = json_array() };
	struct edge_flowtag *ft;
	int rc;

	if ((rc = open_maps(c, &ft))) {
		json_decref(lc.arr);
		return rc;
	}
	rc = edge_flowtag_list(ft, list_one, &lc);
	edge_flowtag_close(ft, false);
	if (rc) {
		json_decref(lc.arr);
		return ctl_error(CTL_EIO, "cannot read the maps: %s", strerror(-rc));
	}
	return ctl_emit(c, lc.arr, cols);
}

static int cmd_flows_clear(struct ctl *c)
{
	const char *src = ctl_opt(c, "source");
	struct sockaddr_storage ss = { 0 };
	struct edge_flowtag *ft;
	int rc;

	if (src) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET, src, &in->sin_addr) == 1)
			in->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, src, &in6->sin6_addr) == 1)
			in6->sin6_family = AF_INET6;
		else
			return ctl_error(CTL_EINVAL, "--source %s is not an IPv4 or IPv6 address",
					 src);
	}
	if ((rc = open_maps(c, &ft)))
		return rc;
	rc = edge_flowtag_clear(ft, src ? (struct sockaddr *)&ss : NULL);
	edge_flowtag_close(ft, false);
	if (rc)
		return ctl_error(CTL_EIO, "cannot clear the maps: %s", strerror(-rc));
	return ctl_emit_msg(c, json_pack("{s:s}", "cleared", src ? src : "all"),
			    "cleared the tagged flows and offenders of %s",
			    src ? src : "every source");
}

static int cmd_stats(struct ctl *c)
{
	struct edge_flowtag_stats s;
	struct edge_flowtag *ft;
	unsigned int flows = 0, offenders = 0;
	sqlite3_stmt *st;
	json_t *o, *hosts = json_object();
	int rc;

	if ((rc = open_maps(c, &ft))) {
		json_decref(hosts);
		return rc;
	}
	rc = edge_flowtag_stats(ft, &s);
	if (!rc)
		rc = edge_flowtag_count(ft, &flows, &offenders);
	/* Drops per hostname, for the hostnames block rules name. */
	st = ctl_sql(c, "SELECT DISTINCT hostname FROM rule_host ORDER BY hostname", NULL);
	while (!rc && st && sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		uint64_t drops = 0;

		if (!edge_flowtag_host_drops(ft, edge_flowtag_host_hash(h), &drops))
			json_object_set_new(hosts, h, json_integer((json_int_t)drops));
	}
	sqlite3_finalize(st);
	edge_flowtag_close(ft, false);
	if (rc) {
		json_decref(hosts);
		return ctl_error(CTL_EIO, "cannot read the maps: %s", strerror(-rc));
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o}", "packets",
		      (json_int_t)s.packets, "flow_drops", (json_int_t)s.flow_drops, "hello_drops",
		      (json_int_t)s.hello_drops, "hellos_parsed", (json_int_t)s.hellos_parsed,
		      "hellos_odd", (json_int_t)s.hellos_odd, "hellos_split",
		      (json_int_t)s.hellos_split, "hellos_given_up", (json_int_t)s.hellos_given_up,
		      "tagged_flows", flows, "offenders", offenders, "drops_by_hostname", hosts);
	return ctl_emit(c, o, NULL);
}

static const struct ctl_opt pin_opts[] = {
	{ "pin-dir", CTL_ARG, "DIR",
	  "where mtls-edged pinned its maps (default " EDGE_FLOWTAG_PIN_DIR ")" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt clear_opts[] = {
	{ "source", CTL_ARG, "ADDR", "only this source address (default: every source)" },
	{ "pin-dir", CTL_ARG, "DIR",
	  "where mtls-edged pinned its maps (default " EDGE_FLOWTAG_PIN_DIR ")" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_flows_cmds[] = {
	{ "flows list", "", "tagged flows and offenders the eBPF program drops, with their TTL",
	  pin_opts, 0, 0, CTL_STORE, cmd_flows_list },
	{ "flows clear", "", "lift the eBPF blocks (of one source with --source)", clear_opts, 0, 0,
	  CTL_STORE, cmd_flows_clear },
	{ "stats", "", "eBPF counters: packets, drops by reason and by hostname", pin_opts, 0, 0,
	  CTL_STORE, cmd_stats },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
