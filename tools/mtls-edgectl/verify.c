/* verify: the daemon's own verifier, offline. It builds the same trust sets
 * from the store (edge_snapshot_build without TLS contexts), runs
 * edge_verify_chain() for the hostname, and says what the daemon would do
 * with the result (edge_policy_decide); the hostname's identity rules after a valid
 * chain (edge_verify_authorize), naming the entry that decided. Exit 0 only when
 * the certificate is valid and admitted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ctl.h"
#include "pki.h"
#include "policy.h"
#include "snapshot.h"
#include "verify.h"

/* "2026-01-31T12:00:00Z", "2026-01-31" or seconds since the epoch. */
static int parse_at(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *end;
	char *e;
	long long v;

	errno = 0;
	v = strtoll(s, &e, 10);
	if (*s && !*e && !errno) {
		*out = (time_t)v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!end || *end)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static int read_chain(struct ctl *c, const char *path, STACK_OF(X509) **out)
{
	char *buf = NULL;
	size_t len;
	int rc = ctl_read_input(path, &buf, &len);

	if (rc)
		return rc;
	if (edge_pki_chain_parse(buf, len, out, c->err, sizeof(c->err)))
		rc = ctl_error(CTL_EINVAL, "%s: %s", path, c->err);
	free(buf);
	return rc;
}

/* What the daemon does for this hostname with this result. */
static const char *daemon_action(const struct edge_snapshot *s, const char *host,
				 enum edge_reason reason)
{
	const struct edge_sni *sni = edge_snapshot_find_sni(s, host);
	enum edge_rule_action action = edge_snapshot_rule(s, host);
	enum edge_cert_status st = reason == EDGE_REASON_OK ? EDGE_CERT_VALID : EDGE_CERT_INVALID;

	if (!sni)
		return "refuse: no SNI object for this hostname (unrecognized_name)";
	switch (edge_policy_decide(sni->mode, action, st)) {
	case EDGE_VERDICT_PASS:
		return "relay to the upstream";
	case EDGE_VERDICT_UNVERIFIED:
		return "relay, verdict forwarded as failed (mTLS optional)";
	case EDGE_VERDICT_BLOCK:
		return "block rule: HTTP 403, then close";
	case EDGE_VERDICT_DROP:
		return "drop rule: close silently";
	case EDGE_VERDICT_REFUSE:
		break;
	}
	return "refuse: the handshake fails with a TLS alert";
}

/* --trust FILE: the anchors, without a store (intermediates too: a partial chain is a path). */
static int trust_from_file(struct ctl *c, const char *path, int depth, struct edge_trust **out)
{
	STACK_OF(X509) *anchors = NULL;
	struct edge_trust *t;
	int rc = read_chain(c, path, &anchors);

	if (rc)
		return rc;
	t = edge_trust_new(depth);
	for (int i = 0; t && !rc && i < sk_X509_num(anchors); i++)
		if (edge_trust_add_named_ca(t, sk_X509_value(anchors, i), false, NULL, NULL))
			rc = ctl_error(CTL_EINVAL, "%s: certificate %d cannot be a trust anchor",
				       path, i + 1);
	sk_X509_pop_free(anchors, X509_free);
	if (!t)
		return ctl_error(CTL_EIO, "out of memory");
	if (rc) {
		edge_trust_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* --crl FILE...: each for the CA its issuer names, anywhere in the path. */
static int add_crls(struct ctl *c, struct edge_trust *t)
{
	char **files = NULL;
	int n = ctl_opts(c, "crl", &files), rc = 0;

	for (int i = 0; !rc && i < n; i++) {
		X509_CRL *crl = NULL;
		char *buf = NULL;
		size_t len;

		if ((rc = ctl_read_input(files[i], &buf, &len)))
			break;
		if (edge_pki_crl_parse(buf, len, &crl, c->err, sizeof(c->err)))
			rc = ctl_error(CTL_EUSAGE, "--crl %s: %s", files[i], c->err);
		else if (edge_trust_add_crl(t, NULL, crl))
			rc = ctl_error(CTL_EIO, "--crl %s: cannot add it", files[i]);
		X509_CRL_free(crl);
		free(buf);
	}
	return rc;
}

static int cmd_verify(struct ctl *c)
{
	const char *host_in = ctl_opt(c, "host"), *chain_file = ctl_opt(c, "chain");
	const char *at_s = ctl_opt(c, "at"), *trust_file = ctl_opt(c, "trust");
	const char *purpose = ctl_opt(c, "purpose");
	STACK_OF(X509) *certs = NULL, *extra = NULL;
	struct edge_snapshot *snap = NULL;
	struct edge_trust *own = NULL, *trust;
	struct edge_verify_result r;
	struct edge_config cfg;
	char host[EDGE_HOSTNAME_LEN] = "", when[32];
	time_t at = 0;
	bool server = false;
	long depth;
	X509 *leaf;
	json_t *o;
	int rc;

	if (!host_in && !trust_file)
		return ctl_error(CTL_EUSAGE,
				 "verify needs --host HOST (the hostname's trust, from the store) or"
				 " --trust FILE (anchors of your own)");
	if (host_in && trust_file)
		return ctl_error(CTL_EUSAGE, "--host and --trust: give one (--host reads the "
					     "trust from the store)");
	if (purpose && !(server = !strcmp(purpose, "server")) && strcmp(purpose, "client"))
		return ctl_error(CTL_EUSAGE, "--purpose %s: want client or server", purpose);
	if (server && host_in)
		return ctl_error(CTL_EUSAGE, "--purpose server checks a chain against --trust; the "
					     "daemon verifies only clients (--host)");
	if (host_in && (rc = ctl_host_norm(host_in, false, host, sizeof(host))))
		return rc;
	if (at_s && parse_at(at_s, &at))
		return ctl_error(CTL_EUSAGE,
				 "--at %s: want YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or epoch"
				 " seconds",
				 at_s);
	edge_config_defaults(&cfg);
	/* a --depth out of range is a bad command line here (2), not a bad certificate (5) */
	if ((rc = ctl_opt_int(c, "depth", 0, EDGE_VERIFY_MAX_CHAIN - 2, cfg.verify_depth, &depth)))
		return rc == CTL_EINVAL ? CTL_EUSAGE : rc;
	cfg.verify_depth = (int)depth;
	if ((rc = read_chain(c, c->args[0], &certs)))
		return rc;
	if (chain_file && (rc = read_chain(c, chain_file, &extra)))
		goto out;
	/* The leaf first; anything after it, and --chain, are untrusted intermediates. */
	leaf = sk_X509_shift(certs);
	while (extra && sk_X509_num(extra))
		sk_X509_push(certs, sk_X509_shift(extra));
	if (trust_file) {
		rc = trust_from_file(c, trust_file, cfg.verify_depth, &own);
		trust = own;
	} else if (!(rc = ctl_open_store(c, 0)) &&
		   edge_snapshot_build(c->st, &cfg, NULL, &snap, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "cannot read the trust from the store: %s", c->err);
	}
	/* The snapshot is this command's own: --crl adds to the hostname's trust set. */
	if (!rc && !trust_file)
		trust = (struct edge_trust *)edge_snapshot_trust(snap, host);
	if (!rc)
		rc = add_crls(c, trust);
	if (rc) {
		X509_free(leaf);
		goto out;
	}
	/* What the daemon runs: the chain against the hostname's trust, then its
	 * identity rules. */
	if (!edge_verify_chain_purpose(trust, leaf, certs, at, server, &r) && snap &&
	    edge_verify_authorize(edge_snapshot_authz(snap, host), leaf, &r) == -ENOMEM) {
		X509_free(leaf);
		rc = ctl_error(CTL_EIO, "out of memory");
		goto out;
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "verdict",
		      r.reason == EDGE_REASON_OK ? "valid" : "invalid", "reason",
		      edge_reason_name(r.reason), "check", r.check, "detail", r.detail, "subject",
		      r.subject, "serial", r.serial, "builtin_ca", r.builtin_anchor);
	json_object_set_new(o, "host", host[0] ? json_string(host) : json_null());
	json_object_set_new(o, "purpose", json_string(server ? "server" : "client"));
	/* which certificate of the path the refusal is about: 0 = the one given */
	json_object_set_new(o, "depth",
			    r.reason == EDGE_REASON_OK ? json_null() : json_integer(r.err_depth));
	if (snap)
		json_object_set_new(o, "daemon", json_string(daemon_action(snap, host, r.reason)));
	json_object_set_new(o, "ca", r.anchor ? json_string(r.anchor) : json_null());
	json_object_set_new(o, "rule", r.authz.text[0] ? json_string(r.authz.text) : json_null());
	json_object_set_new(o, "at", json_string(ctl_iso(at ? at : c->now, when)));
	X509_free(leaf);
	rc = ctl_emit(c, o, NULL);
	if (!rc && r.reason != EDGE_REASON_OK)
		rc = CTL_EINVAL;
out:
	edge_snapshot_unref(snap);
	edge_trust_free(own);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(extra, X509_free);
	return rc;
}

static const struct ctl_opt verify_opts[] = {
	{ "host", CTL_ARG, "HOST", "the hostname the client would ask for (its trust set)" },
	{ "trust", CTL_ARG, "FILE",
	  "trust anchors from FILE instead of the store (a CA, or an intermediate)" },
	{ "crl", CTL_ARG | CTL_MULTI, "FILE", "a CRL for any CA of the path (repeatable)" },
	{ "chain", CTL_ARG, "FILE", "intermediate certificates the client would send" },
	{ "at", CTL_ARG, "TIME", "verify as of this time (YYYY-MM-DD[THH:MM:SSZ] or epoch)" },
	{ "depth", CTL_ARG, "N",
	  "maximum intermediates, self-issued ones not counted (default 3, as [tls] "
	  "verify_depth; 0: the leaf under an anchor)" },
	{ "purpose", CTL_ARG, "client|server",
	  "what the leaf is for (server: with --trust only; the daemon verifies clients)" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_verify_cmds[] = {
	{ "verify", "CERT (--host HOST | --trust FILE)",
	  "run the daemon's verifier on a certificate; exit 0 only when it is"
	  " valid (5 when it is not, 2 for a bad command line)",
	  verify_opts, 1, 1, 0, cmd_verify },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
