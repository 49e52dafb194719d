/* sni add|update: the command line applied to an SNI object, and the files it names
 * checked (readable, a key that matches its certificate, no group or world access to keys). */
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

const char *const sni_mtls_modes[] = { "required", "optional", "off", NULL };
const char *const sni_tls_versions[] = { "1.2", "1.3", NULL };
const char *const sni_on_off[] = { "off", "on", NULL };
const char *const sni_forward_modes[] = { "none", "proxy-v2", "headers", NULL };
const char *const sni_protocols[] = { "tcp", "http", NULL };
const char *const sni_hint_modes[] = { "trusted", "none", "list", NULL };
const char *const sni_no_alpn_modes[] = { "allow", "refuse", NULL };

const char *sni_choice(const char *v, const char *const *set)
{
	for (int i = 0; set[i]; i++)
		if (!strcmp(v, set[i]))
			return set[i];
	return set[0];
}

/* The key type of the leaf in a chain file (edge_tlsctx_key_type()); NULL when the
 * file does not read or the key is of another type. */
const char *sni_file_key_type(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	const char *t = x ? edge_tlsctx_key_type(X509_get0_pubkey(x)) : NULL;

	ERR_clear_error();
	X509_free(x);
	if (f)
		fclose(f);
	return t;
}

static int real_path(const char *opt, const char *in, char *out)
{
	if (!realpath(in, out))
		return ctl_error(CTL_EINVAL, "--%s %s: %s", opt, in, strerror(errno));
	return CTL_OK;
}

/* A private key file must be its owner's alone. */
static int check_key_mode(const char *opt, const char *path)
{
	struct stat sb;

	if (stat(path, &sb))
		return ctl_error(CTL_EINVAL, "--%s %s: %s", opt, path, strerror(errno));
	if (sb.st_mode & 077)
		return ctl_error(CTL_EINVAL,
				 "key file %s has mode %04o: it must not be readable "
				 "by group or others; run: chmod 600 %s",
				 path, (unsigned)(sb.st_mode & 07777), path);
	return CTL_OK;
}

/* The edge as a TLS client of the upstream: a CA bundle to verify it, and
 * for mTLS a client certificate chain and key that match. */
static int check_upstream_tls(struct ctl *c, const struct sni *s)
{
	char *buf = NULL, *kbuf = NULL;
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *key = NULL;
	size_t len, klen = 0;
	int rc = CTL_OK;

	if (!!s->up_cert[0] != !!s->up_key[0])
		return ctl_error(CTL_EUSAGE, "--upstream-cert and --upstream-key go together");
	if (s->up_ca[0]) {
		if ((rc = ctl_read_input(s->up_ca, &buf, &len)))
			return rc;
		if (edge_pki_chain_parse(buf, len, &certs, c->err, sizeof(c->err)))
			rc = ctl_error(CTL_EINVAL, "%s: %s", s->up_ca, c->err);
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
		free(buf);
		buf = NULL;
		if (rc)
			return rc;
	}
	if (!s->up_cert[0])
		return CTL_OK;
	if ((rc = check_key_mode("upstream-key", s->up_key)) ||
	    (rc = ctl_read_input(s->up_cert, &buf, &len)) ||
	    (rc = ctl_read_input(s->up_key, &kbuf, &klen)))
		goto out;
	if (edge_pki_chain_parse(buf, len, &certs, c->err, sizeof(c->err)) ||
	    edge_pki_key_parse(kbuf, klen, &key, c->err, sizeof(c->err)) ||
	    edge_pki_check_chain(certs, key, c->now, c->err, sizeof(c->err)))
		rc = ctl_error(CTL_EINVAL, "upstream client certificate %s: %s", s->up_cert,
			       c->err);
out:
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	if (kbuf)
		OPENSSL_clear_free(kbuf, klen);
	free(buf);
	return rc;
}

/* A chain and its key file: readable, strict PEM, the key private to its owner
 * and matching the leaf, each certificate issued by the next, leaf valid.
 * *type: the leaf's key type (edge_tlsctx_key_type(), NULL for another). */
static int check_pair(struct ctl *c, const struct sni *s, const struct sni_pair *p,
		      const char **type)
{
	char *cbuf = NULL, *kbuf = NULL, probe[EDGE_HOSTNAME_LEN + 8];
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	size_t clen, klen = 0;
	int rc;

	if ((rc = check_key_mode("key", p->key)))
		return rc;
	if ((rc = ctl_read_input(p->cert, &cbuf, &clen)) ||
	    (rc = ctl_read_input(p->key, &kbuf, &klen)))
		goto out;
	if (edge_pki_chain_parse(cbuf, clen, &chain, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->cert, c->err);
		goto out;
	}
	if (edge_pki_key_parse(kbuf, klen, &key, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->key, c->err);
		goto out;
	}
	if (edge_pki_check_chain(chain, key, c->now, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EINVAL, "%s: %s", p->cert, c->err);
		goto out;
	}
	*type = edge_tlsctx_key_type(key);
	if (s->npairs > 1 && !*type) {
		rc = ctl_error(CTL_EINVAL,
			       "%s: its %s key cannot stand beside other certificates (one each "
			       "of rsa, ecdsa, ed25519)",
			       p->cert,
			       EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
		goto out;
	}
	snprintf(probe, sizeof(probe), "%s%s", s->host[0] == '*' ? "x" : "",
		 s->host + (s->host[0] == '*'));
	if (X509_check_host(sk_X509_value(chain, 0), probe, 0, 0, NULL) != 1)
		ctl_warn("%s does not cover %s (no matching subjectAltName); clients will "
			 "refuse it",
			 p->cert, s->host);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	if (kbuf)
		OPENSSL_clear_free(kbuf, klen);
	free(cbuf);
	return rc;
}

/* Every pair, and at most one of each key type. types: a description for the
 * message ("rsa, ecdsa"). */
static int check_files(struct ctl *c, const struct sni *s, char *types, size_t len)
{
	const char *type[EDGE_MAX_CERTS_PER_SNI];
	int rc;

	types[0] = '\0';
	for (size_t i = 0; i < s->npairs; i++) {
		if ((rc = check_pair(c, s, &s->pairs[i], &type[i])))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(type[j], type[i]))
				return ctl_error(CTL_EINVAL,
						 "--cert %s and --cert %s are both %s certificates: "
						 "at most one per key type (rsa, ecdsa, ed25519)",
						 s->pairs[j].cert, s->pairs[i].cert, type[i]);
		snprintf(types + strlen(types), len - strlen(types), "%s%s", i ? ", " : "",
			 type[i] ? type[i] : "");
	}
	return CTL_OK;
}

/* --cert and --key, the Nth of one with the Nth of the other: the set given replaces the
 * object's. An object with one certificate may change one file alone (a renewal with
 * the same key: --cert only). */
static int apply_pairs(struct ctl *c, struct sni *s, bool *files)
{
	char **certs, **keys;
	int nc = ctl_opts(c, "cert", &certs), nk = ctl_opts(c, "key", &keys), rc;

	*files = nc || nk;
	if (!*files)
		return CTL_OK;
	if (nc + nk == 1 && s->npairs == 1) {
		if (nc)
			return real_path("cert", certs[0], s->pairs[0].cert);
		return real_path("key", keys[0], s->pairs[0].key);
	}
	if (nc != nk)
		return ctl_error(CTL_EUSAGE,
				 "--cert and --key go in pairs, the first --key with the first "
				 "--cert: %d --cert, %d --key%s",
				 nc, nk,
				 s->npairs > 1 ? " (the pairs given replace every certificate of "
						 "the object: give each one to keep)"
					       : "");
	if (nc > EDGE_MAX_CERTS_PER_SNI)
		return ctl_error(CTL_EINVAL,
				 "%d certificates: at most %d, one per key type (rsa, ecdsa, "
				 "ed25519)",
				 nc, EDGE_MAX_CERTS_PER_SNI);
	for (int i = 0; i < nc; i++) {
		if ((rc = real_path("cert", certs[i], s->pairs[i].cert)) ||
		    (rc = real_path("key", keys[i], s->pairs[i].key)))
			return rc;
	}
	s->npairs = (size_t)nc;
	return CTL_OK;
}

/* --upstream-tls and its files; an empty path ("") clears one. */
static int apply_upstream_tls(struct ctl *c, struct sni *s)
{
	static const struct {
		const char *opt;
		size_t off;
	} files[] = {
		{ "upstream-ca", offsetof(struct sni, up_ca) },
		{ "upstream-cert", offsetof(struct sni, up_cert) },
		{ "upstream-key", offsetof(struct sni, up_key) },
	};
	const char *name = ctl_opt(c, "upstream-sni");
	bool touched = ctl_opt(c, "upstream-tls") || name;
	int rc;

	if ((rc = ctl_opt_choice(c, "upstream-tls", sni_on_off, s->up_tls, &s->up_tls)))
		return rc;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *v = ctl_opt(c, files[i].opt);
		char *dst = (char *)s + files[i].off;

		if (!v)
			continue;
		touched = true;
		if (!*v)
			dst[0] = '\0';
		else if ((rc = real_path(files[i].opt, v, dst)))
			return rc;
	}
	if (name && *name) {
		if ((rc = ctl_host_norm(name, false, s->up_sni, sizeof(s->up_sni))))
			return rc;
	} else if (name) {
		s->up_sni[0] = '\0';
	}
	if (!touched || strcmp(s->up_tls, "on"))
		return CTL_OK;
	return check_upstream_tls(c, s);
}

/* --ca-hints trusted|none|FILE (a file named "none": ./none). */
static int apply_hints(struct ctl *c, struct sni *s)
{
	const char *v = ctl_opt(c, "ca-hints");
	int rc;

	if (!v)
		return CTL_OK;
	free(s->ca_hints_pem);
	s->ca_hints_pem = NULL;
	if (!strcmp(v, "trusted") || !strcmp(v, "none")) {
		s->ca_hints = sni_choice(v, sni_hint_modes);
		return CTL_OK;
	}
	if ((rc = ctl_hints_read_list(c, "ca-hints", v, &s->ca_hints_pem)))
		return rc;
	s->ca_hints = "list";
	return CTL_OK;
}

/* --alpn LIST ("" for none) and --no-alpn; what the protocol and forward mode can carry. */
static int apply_alpn(struct ctl *c, struct sni *s)
{
	const char *v = ctl_opt(c, "alpn");
	unsigned char wire[EDGE_ALPN_WIRE_MAX];
	size_t wl;
	int rc;

	if ((rc = ctl_opt_choice(c, "no-alpn", sni_no_alpn_modes, s->no_alpn, &s->no_alpn)))
		return rc;
	if (v) {
		if (edge_alpn_parse(v, wire, &wl, c->err, sizeof(c->err)))
			return ctl_error(CTL_EINVAL, "--alpn: %s", c->err);
		snprintf(s->alpn, sizeof(s->alpn), "%s", v);
	}
	if (edge_alpn_parse(s->alpn, wire, &wl, c->err, sizeof(c->err)))
		return ctl_error(CTL_EINVAL, "stored ALPN of %s: %s", s->host, c->err);
	if (!wl && !strcmp(s->no_alpn, "refuse"))
		return ctl_error(CTL_EUSAGE,
				 "--no-alpn refuse%s needs an ALPN list%s: with none the edge "
				 "negotiates no protocol, and a client offering none is what every "
				 "client is; give --alpn LIST, or --no-alpn allow",
				 ctl_opt(c, "no-alpn") ? "" : " (already set)",
				 v ? " (--alpn '' clears it)" : "");
	if (!edge_alpn_beyond_http1(wire, wl))
		return CTL_OK;
	/* On update either side may be the stored one: say which. --protocol http terminates
	 * h2 (the daemon's h2.c); it knows no other protocol beyond HTTP/1.1. */
	if (!strcmp(s->protocol, "http") && !edge_alpn_only_http(wire, wl))
		return ctl_error(CTL_EUSAGE,
				 "--alpn %s%s with --protocol http%s: the edge reads HTTP from the "
				 "client in --protocol http (h2 and http/1.1); any other protocol "
				 "through the edge needs --protocol tcp, with an upstream that "
				 "speaks it",
				 s->alpn, v ? "" : " (already set)",
				 ctl_opt(c, "protocol") ? "" : " (already set)");
	if (!strcmp(s->protocol, "http")) {
		if (edge_alpn_has(wire, wl, "h2", 2) && (v || ctl_opt(c, "protocol")))
			ctl_warn("%s: h2 is terminated by the edge and each request goes to the upstream "
				 "as HTTP/1.1; gRPC calls there get UNIMPLEMENTED (gRPC needs HTTP/2 to "
				 "its server: --protocol tcp --alpn h2 with an h2 upstream)",
				 s->host);
		return CTL_OK;
	}
	if (!strcmp(s->forward, "headers"))
		return ctl_error(CTL_EUSAGE,
				 "--alpn %s%s with --forward headers%s: headers mode writes the "
				 "identity into HTTP/1.1 request heads and cannot read another "
				 "protocol; use --forward proxy-v2 (it carries the ALPN too) or "
				 "--alpn http/1.1",
				 s->alpn, v ? "" : " (already set)",
				 ctl_opt(c, "forward") ? "" : " (already set)");
	return CTL_OK;
}

/* Applies the command line to s; files says whether --cert/--key were given, types
 * then names their key types ("rsa, ecdsa"). */
int sni_apply_opts(struct ctl *c, struct sni *s, bool *files, char *types, size_t len)
{
	const char *up = ctl_opt(c, "upstream");
	int rc;

	if ((rc = ctl_opt_choice(c, "mtls", sni_mtls_modes, s->mtls, &s->mtls)) ||
	    (rc = ctl_opt_choice(c, "tls-min", sni_tls_versions, s->tls_min, &s->tls_min)) ||
	    (rc = ctl_opt_choice(c, "tls-max", sni_tls_versions, s->tls_max, &s->tls_max)) ||
	    (rc = ctl_opt_choice(c, "forward", sni_forward_modes, s->forward, &s->forward)) ||
	    (rc = ctl_opt_choice(c, "protocol", sni_protocols, s->protocol, &s->protocol)))
		return rc;
	/* On update either side may be the stored one: say which. */
	if (!strcmp(s->protocol, "http") && !strcmp(s->forward, "proxy-v2"))
		return ctl_error(CTL_EUSAGE,
				 "--protocol http%s cannot carry --forward proxy-v2%s: "
				 "a PROXY v2 header names one client, and an http upstream "
				 "connection is reused for many clients; use --forward headers",
				 ctl_opt(c, "protocol") ? "" : " (already set)",
				 ctl_opt(c, "forward") ? "" : " (already set)");
	if (strcmp(s->tls_min, s->tls_max) > 0)
		return ctl_error(CTL_EINVAL, "--tls-min %s is above --tls-max %s", s->tls_min,
				 s->tls_max);
	if (up) {
		char host[EDGE_HOSTNAME_LEN];
		uint16_t port;

		if (edge_hostname_port_parse(up, host, sizeof(host), &port, c->err, sizeof(c->err)))
			return ctl_error(CTL_EINVAL, "--upstream %s", c->err);
		snprintf(s->upstream, sizeof(s->upstream), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
			 host, port);
	}
	if ((rc = apply_pairs(c, s, files)))
		return rc;
	if ((rc = apply_upstream_tls(c, s)) || (rc = apply_hints(c, s)) || (rc = apply_alpn(c, s)))
		return rc;
	return *files ? check_files(c, s, types, len) : CTL_OK;
}
