/*
 * The handshake: the ClientHello callback picks the SNI object and what to
 * ask of the client, the verify callback runs the verifier and records, the
 * policy module decides. It returns the verdict (c->verdict) to the state
 * machine (conn.c), which takes it from there.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crlfetch.h"
#include "handshake.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "verify_cache.h"
#include "worker.h"

/* server_name extension: list length, then (type, length, name) entries. */
static bool parse_sni(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t list, nlen;

	if (len < 5)
		return false;
	list = (size_t)p[0] << 8 | p[1];
	if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name)
		return false;
	nlen = (size_t)p[3] << 8 | p[4];
	if (nlen == 0 || nlen + 5 > len || nlen >= outlen)
		return false;
	for (size_t i = 0; i < nlen; i++) {
		unsigned char ch = p[5 + i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || ch == '_'))
			return false;
		out[i] = (char)ch;
	}
	out[nlen] = '\0';
	return true;
}

/* Whether the ClientHello's supported_versions offers TLS 1.3. */
static bool offers_tls13(SSL *ssl)
{
	const unsigned char *v;
	size_t len;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &v, &len) || len < 1 ||
	    v[0] + 1u != len)
		return false;
	for (size_t i = 1; i + 1 < len; i += 2)
		if (v[i] == 0x03 && v[i + 1] == 0x04)
			return true;
	return false;
}

static int never_resumable(SSL *ssl, int forward_secure)
{
	(void)ssl;
	(void)forward_secure;
	return 1;
}

/*
 * [tls] session_tickets: resumption, in either version re-verified when it happens
 * (reverify_resumed). Every session belongs to the snapshot's base context, so a reload (any
 * change to the store) ends them all.
 * - TLS 1.3: stateless tickets, only when this client offers TLS 1.3 and the SNI object
 *   allows it (clearing SSL_OP_NO_TICKET for a TLS 1.2 client would give it TLS 1.2 tickets).
 * - TLS 1.2: session IDs from the base context's cache (never TLS 1.2 tickets: the cached
 *   session keeps the client's whole chain for the re-verification, and no long-lived ticket
 *   key protects TLS 1.2 secrets), only for a client that sends extended_master_secret (RFC
 *   7627: a session without it can be resumed into another connection's keys). Its session ID
 *   context is the hostname's digest, so a session resumes only under the hostname it was
 *   verified for; every other TLS 1.2 session is not resumable and is never cached.
 * A listener with its own mTLS mode neither issues nor takes either: a session verified
 * under one mode must not resume under another's.
 */
static void allow_resumption(SSL *ssl, const struct edge_conn *c)
{
	const struct edge_config *cfg = &c->w->d->cfg;
	unsigned char id[SHA256_DIGEST_LENGTH];
	const unsigned char *ems;
	size_t len;

	if (!cfg->session_tickets)
		return; /* no cache, no tickets: the contexts' defaults */
	if (cfg->listen_mtls[c->listener] != EDGE_LISTEN_MTLS_SNI)
		goto not_resumable;
	if (c->sni->tls_max >= TLS1_3_VERSION && offers_tls13(ssl)) {
		SSL_clear_options(ssl, SSL_OP_NO_TICKET);
		SSL_set_num_tickets(ssl, 1);
		return;
	}
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_extended_master_secret, &ems, &len) ||
	    !SHA256((const unsigned char *)c->host, strlen(c->host), id) ||
	    !SSL_set_session_id_context(ssl, id, sizeof(id)))
		goto not_resumable;
	return;
not_resumable: /* the SNI context's session ID context matches no cached session */
	SSL_set_not_resumable_session_callback(ssl, never_resumable);
}

/* An ALPN list (wire form, as the client or the SNI object has it) after prefix, as text:
 * "h2,http/1.1"; bytes outside printable ASCII as '?'. Returns the length written. */
static size_t alpn_text(const unsigned char *wire, size_t len, char *out, size_t cap,
			const char *prefix)
{
	size_t n = (size_t)snprintf(out, cap, "%s", prefix);

	for (size_t i = 0; i < len && n + 2 < cap; i += 1 + (size_t)wire[i]) {
		if (i)
			out[n++] = ',';
		for (size_t j = i + 1; j <= i + wire[i] && j < len && n + 1 < cap; j++)
			out[n++] = wire[j] > 0x20 && wire[j] < 0x7f ? (char)wire[j] : '?';
	}
	if (n >= cap)
		n = cap - 1;
	out[n] = '\0';
	return n;
}

static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct edge_conn *c = SSL_get_app_data(ssl);
	const struct edge_snapshot *s = c->snap;
	const unsigned char *ext;
	const char *lookup;
	size_t len;
	int mode;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len)) {
		if (!parse_sni(ext, len, c->host, sizeof(c->host))) {
			c->hs_fail = EDGE_HS_BAD_SNI;
			*al = SSL_AD_DECODE_ERROR;
			return SSL_CLIENT_HELLO_ERROR;
		}
		lookup = c->host;
	} else if (s->default_sni) {
		lookup = s->default_sni;
		snprintf(c->host, sizeof(c->host), "%s", s->default_sni);
	} else {
		snprintf(c->host, sizeof(c->host), "-");
		c->hs_fail = EDGE_HS_NO_SNI;
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	c->sni = edge_snapshot_find_sni(s, lookup);
	if (!c->sni) {
		c->hs_fail = EDGE_HS_UNKNOWN_SNI;
		*al = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	c->trust = edge_snapshot_trust(s, lookup);
	c->authz = edge_snapshot_authz(s, lookup);
	c->action = edge_snapshot_rule(s, lookup);
	c->mode = c->sni->mode;
	if (c->w->d->cfg.listen_mtls[c->listener] != EDGE_LISTEN_MTLS_SNI) {
		/* the listener's own mode replaces the SNI object's; mtls=off asks for no
		 * certificate, so no block rule can have a verdict to act on there */
		c->mode = (enum edge_mtls_mode)c->w->d->cfg.listen_mtls[c->listener];
		if (c->mode == EDGE_MTLS_OFF)
			c->action = EDGE_ACTION_NONE;
	}
	if (SSL_set_SSL_CTX(ssl, c->sni->ctx) != c->sni->ctx) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	/* Versions are chosen after this callback, from the SSL's own bounds. */
	SSL_set_min_proto_version(ssl, c->sni->tls_min);
	SSL_set_max_proto_version(ssl, c->sni->tls_max);
	switch (edge_policy_cert_request(c->mode, c->action)) {
	case EDGE_REQUEST_DEMAND:
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		break;
	case EDGE_REQUEST_ASK:
		mode = SSL_VERIFY_PEER;
		break;
	default:
		mode = SSL_VERIFY_NONE;
		break;
	}
	SSL_set_verify(ssl, mode, NULL);
	/* The CertificateRequest names the CAs trusted for the hostname asked; the SNI
	 * object's context carries its own hostname's (set per connection otherwise). */
	if (mode != SSL_VERIFY_NONE && c->sni->ca_hints == EDGE_CA_HINTS_TRUSTED &&
	    c->trust != c->sni->ctx_trust) {
		const STACK_OF(X509_NAME) *names = edge_trust_hints(c->trust);
		STACK_OF(X509_NAME) *dup = names ? SSL_dup_CA_list(names) : sk_X509_NAME_new_null();

		if (dup)
			SSL_set_client_CA_list(ssl, dup);
	}
	if (c->sni->alpn_len && c->sni->no_alpn_refuse &&
	    !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
				       &ext, &len)) {
		c->hs_fail = EDGE_HS_ALPN_MISSING;
		alpn_text(c->sni->alpn, c->sni->alpn_len, c->fail_detail, sizeof(c->fail_detail),
			  "the client offered no ALPN; the hostname serves ");
		*al = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	allow_resumption(ssl, c);
	/* Our own record layer starts at the client's first record after its Finished: OpenSSL
	 * must not have read it ahead (a TLS 1.3 client sends nothing between its ClientHello
	 * and our reply, so the buffer is empty here). Read-ahead is back on if the relay keeps
	 * OpenSSL (edge_relay_enter, edge_h2_enter). */
	if (c->w->d->cfg.own_records && !c->w->d->ktls && c->sni->tls_max >= TLS1_3_VERSION &&
	    offers_tls13(ssl))
		SSL_set_read_ahead(ssl, 0);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* The SNI object's protocols in its order: the first the client also offers (RFC 7301 3.2:
 * the server's preference). None in common: no_application_protocol. An object without
 * ALPN answers without the extension, as before there was any. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			  const unsigned char *in, unsigned int inlen, void *arg)
{
	struct edge_conn *c = SSL_get_app_data(ssl);
	const struct edge_sni *o = c->sni;
	unsigned char *sel = NULL, sel_len = 0;
	size_t n;

	(void)arg;
	if (!o || !o->alpn_len)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_select_next_proto(&sel, &sel_len, o->alpn, (unsigned int)o->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED) {
		c->hs_fail = EDGE_HS_ALPN_MISMATCH;
		n = alpn_text(in, inlen, c->fail_detail, sizeof(c->fail_detail),
			      "the client offered ");
		alpn_text(o->alpn, o->alpn_len, c->fail_detail + n, sizeof(c->fail_detail) - n,
			  "; the hostname serves ");
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

/* A verified chain of an uploaded CA names where its CRLs are: the leaf's distribution point
 * (a CRL of its issuer: the CA, or an intermediate the client sent) and the intermediate's (a
 * CRL of the CA, when the CA issued it). The fetcher follows them. The first
 * EDGE_CRLFETCH_LEAVES chains of each CA per snapshot are read, then no more. */
static void learn_crl_dp(struct edge_conn *c, X509 *leaf, STACK_OF(X509) *sent)
{
	struct edge_trust_ca *a = c->vr.anchor_ca;
	struct edge_crlfetch *f = c->w->d->crlfetch;
	char url[EDGE_CRLFETCH_URL];
	X509 *inter = NULL;

	/* a load first: once a CA's chains have been read, no write to the shared counter */
	if (!a || c->vr.builtin_anchor || !f ||
	    atomic_load_explicit(&a->dp_tries, memory_order_relaxed) >= EDGE_CRLFETCH_LEAVES ||
	    atomic_fetch_add_explicit(&a->dp_tries, 1, memory_order_relaxed) >=
		    EDGE_CRLFETCH_LEAVES)
		return;
	for (int i = 0; !inter && i < sk_X509_num(sent); i++)
		if (X509_check_issued(sk_X509_value(sent, i), leaf) == X509_V_OK &&
		    X509_cmp(sk_X509_value(sent, i), leaf))
			inter = sk_X509_value(sent, i);
	if (inter && X509_check_issued(a->cert, inter) != X509_V_OK)
		inter = NULL; /* deeper paths: not followed */
	if (!inter && X509_check_issued(a->cert, leaf) != X509_V_OK)
		return;
	if (edge_crl_dp_url(leaf, url, sizeof(url)))
		edge_crlfetch_learn(f, inter ? inter : a->cert, a->cert, a->name, url);
	if (inter && edge_crl_dp_url(inter, url, sizeof(url)))
		edge_crlfetch_learn(f, a->cert, a->cert, a->name, url);
}

/* Replaces OpenSSL's chain verification with the project's verifier. */
static int cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct edge_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	bool hit = false;
	int rc;

	if (!c || !c->sni || !c->trust) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	c->verify_ran = true;
	/* A TLS 1.3 ticket keeps the leaf, not its chain: a session that needed intermediates
	 * could not be verified again on resumption, so it gets no ticket (a TLS 1.2 session in
	 * the cache keeps both). The session remembers
	 * the hostname it was verified for (OpenSSL records it only with a servername cb). */
	if (sk_X509_num(X509_STORE_CTX_get0_untrusted(xs)) > 1)
		SSL_set_num_tickets(ssl, 0);
	SSL_SESSION_set1_hostname(SSL_get_session(ssl), c->host);
	edge_verify_audit(X509_STORE_CTX_get0_cert(xs), &c->audit);
	rc = edge_verify_chain_cached(c->w->vcache, c->snap->seq, c->trust,
				      X509_STORE_CTX_get0_cert(xs),
				      c->audit.sha256[0] ? c->audit.sha256_raw : NULL,
				      X509_STORE_CTX_get0_untrusted(xs), &c->vr, &hit);
	if (c->w->vcache)
		c->w->c.verify_cache_hits += hit, c->w->c.verify_cache_misses += !hit;
	if (rc == 0 && !hit)
		learn_crl_dp(c, X509_STORE_CTX_get0_cert(xs), X509_STORE_CTX_get0_untrusted(xs));
	if (rc == 0) /* authenticated: is this identity authorized here? */
		rc = edge_verify_authorize(c->authz, X509_STORE_CTX_get0_cert(xs), &c->vr);
	if (rc == 0) {
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		return 1;
	}
	if (rc != -EACCES) {
		c->vr.reason = EDGE_REASON_VERIFY_FAILED;
		snprintf(c->vr.detail, sizeof(c->vr.detail), "internal error: %s", strerror(-rc));
		X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	X509_STORE_CTX_set_error(xs, edge_verify_x509_error(&c->vr));
	return edge_policy_abort_handshake(c->mode, c->action) ? 0 : 1;
}

/* kTLS or our own record layer: keep the client session's TLS 1.3 application traffic
 * secrets until the relay's start installs them (kTLS takes the client's, xprt_rec both);
 * nothing else from the key log. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	struct edge_conn *c = SSL_get_app_data(ssl);

	struct edge_side *s = c ? &c->side[EDGE_CLIENT] : NULL;

	if (!s)
		return;
	if (!s->rx_secret_len)
		s->rx_secret_len = (uint8_t)edge_ktls_secret(line, "CLIENT_TRAFFIC_SECRET_0",
							     s->rx_secret, sizeof(s->rx_secret));
	if (!s->tx_secret_len)
		s->tx_secret_len = (uint8_t)edge_ktls_secret(line, "SERVER_TRAFFIC_SECRET_0",
							     s->tx_secret, sizeof(s->tx_secret));
}

/* Our own record layer starts where OpenSSL's TX left off: after the NewSessionTickets it
 * sent under the application secret, one record each. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	struct edge_conn *c = SSL_get_app_data(ssl);

	(void)version;
	(void)arg;
	if (c && write_p && content_type == SSL3_RT_HANDSHAKE && len &&
	    *(const unsigned char *)buf == SSL3_MT_NEWSESSION_TICKET &&
	    c->side[EDGE_CLIENT].tx_seq < 255)
		c->side[EDGE_CLIENT].tx_seq++;
}

/* The same for the session to the upstream, where we receive the server's. */
static void up_keylog_cb(const SSL *ssl, const char *line)
{
	struct edge_conn *c = SSL_get_app_data(ssl);

	struct edge_side *s = c ? &c->side[EDGE_UPSTREAM] : NULL;

	if (s && !s->rx_secret_len)
		s->rx_secret_len = (uint8_t)edge_ktls_secret(line, "SERVER_TRAFFIC_SECRET_0",
							     s->rx_secret, sizeof(s->rx_secret));
}

static const struct edge_tls_hooks hooks_userspace = {
	.client_hello = client_hello_cb,
	.alpn_select = alpn_select_cb,
	.cert_verify = cert_verify_cb,
};

static const struct edge_tls_hooks hooks_ktls = {
	.client_hello = client_hello_cb,
	.alpn_select = alpn_select_cb,
	.cert_verify = cert_verify_cb,
	.keylog = keylog_cb,
	.up_keylog = up_keylog_cb,
	.ktls = true,
};

static const struct edge_tls_hooks hooks_records = {
	.client_hello = client_hello_cb,
	.alpn_select = alpn_select_cb,
	.cert_verify = cert_verify_cb,
	.keylog = keylog_cb, /* both secrets, for xprt_rec */
};

const struct edge_tls_hooks *edge_handshake_hooks(bool ktls, bool own_records)
{
	return ktls ? &hooks_ktls : own_records ? &hooks_records : &hooks_userspace;
}

int edge_handshake_init(void)
{
	return OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
				NULL) == 1
		       ? 0
		       : -ENOMEM;
}

int edge_handshake_start(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];

	cl->ssl = SSL_new(c->snap->base);
	if (!cl->ssl || !SSL_set_fd(cl->ssl, cl->fd))
		return -ENOMEM;
	SSL_set_app_data(cl->ssl, c);
	/* Read what the socket has, not a record header and then its body: a
	 * third of the reads per connection. Not when sessions may go to kTLS:
	 * a record read ahead in userspace would be missing from the kernel's
	 * stream (the hand-off then keeps the session in userspace). */
	if (!c->w->d->ktls)
		SSL_set_read_ahead(cl->ssl, 1);
	if (c->w->d->cfg.own_records && !c->w->d->ktls)
		SSL_set_msg_callback(cl->ssl, msg_cb);
	SSL_set_accept_state(cl->ssl);
	return 0;
}

/* The host label of the connection's SNI object (0: none, "_other"). */
/* The verifier's check when it says more than the reason (docs/verify.md), else NULL. */
static const char *verify_check(const struct edge_conn *c)
{
	return c->vr.check[0] && strcmp(c->vr.check, edge_reason_name(c->vr.reason)) ? c->vr.check
										     : NULL;
}

static unsigned int host_label(const struct edge_conn *c)
{
	return c->sni ? c->sni->label : 0;
}

void edge_handshake_report_failure(struct edge_conn *c)
{
	struct edge_counters *k = &c->w->c;
	enum edge_reason vreason = c->hs_fail == EDGE_HS_VERIFY || c->verify_ran ? c->vr.reason
										 : EDGE_REASON_OK;
	const char *reason = edge_hs_fail_name(c->hs_fail, c->vr.reason);

	k->handshakes_failed++;
	if (vreason != EDGE_REASON_OK)
		k->by_reason[vreason]++;
	else if (c->hs_fail == EDGE_HS_UNKNOWN_SNI || c->hs_fail == EDGE_HS_NO_SNI)
		k->unknown_sni++;
	else if (c->hs_fail != EDGE_HS_TIMEOUT)
		k->tls_errors++;
	edge_metrics_handshake(c->w->d->metrics, c->w->m, host_label(c), EDGE_METRICS_FAIL,
			       edge_hs_fail_index(c->hs_fail, c->vr.reason), vreason, c->vr.issuer);
	const struct edge_log_field f[] = {
		EDGE_LF_S("peer", c->peer),
		EDGE_LF_S("sni", c->host[0] ? c->host : "-"),
		EDGE_LF_S("verdict", "fail"),
		EDGE_LF_S("reason", reason),
		EDGE_LF_S("check", c->hs_fail == EDGE_HS_VERIFY ? verify_check(c) : NULL),
		EDGE_LF_S("detail", c->fail_detail),
		EDGE_LF_S("subject", c->vr.subject[0] ? c->vr.subject : NULL),
		EDGE_LF_S("serial", c->vr.serial[0] ? c->vr.serial : NULL),
		EDGE_LF_S("issuer", c->vr.issuer[0] ? c->vr.issuer : NULL),
		EDGE_LF_S("sha256", c->audit.sha256[0] ? c->audit.sha256 : NULL),
		EDGE_LF_S("spki", c->audit.spki[0] ? c->audit.spki : NULL),
		EDGE_LF_S("sans", c->audit.sans[0] ? c->audit.sans : NULL),
		EDGE_LF_S("rule", c->vr.authz.rule_id ? c->vr.authz.text : NULL),
		EDGE_LF_N("duration_ms", edge_now_ms() - c->start_ms),
	};

	edge_log_event(EDGE_LOG_INFO, "handshake", f, sizeof(f) / sizeof(f[0]));
}

/* What OpenSSL's error says of a failed handshake; a missing client
 * certificate is the verifier's reason (no_client_cert). */
static enum edge_hs_fail classify_ssl_error(struct edge_conn *c, int err, unsigned long e)
{
	int r = ERR_GET_REASON(e);

	if (!e && (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN))
		return EDGE_HS_CLIENT_CLOSED;
	switch (r) {
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		c->vr.reason = EDGE_REASON_NO_CLIENT_CERT;
		return EDGE_HS_VERIFY;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return EDGE_HS_UNSUPPORTED_VERSION;
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
	case SSL_R_UNKNOWN_PROTOCOL:
		return EDGE_HS_NOT_TLS;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return EDGE_HS_CLIENT_CLOSED;
	case SSL_R_NO_SHARED_CIPHER:
		return EDGE_HS_NO_SHARED_CIPHER;
	default:
		return EDGE_HS_TLS_ERROR;
	}
}

static void handshake_failed(struct edge_conn *c, int err)
{
	unsigned long e = ERR_peek_error();

	if (c->verify_ran && c->vr.reason != EDGE_REASON_OK) {
		c->hs_fail = EDGE_HS_VERIFY;
		snprintf(c->fail_detail, sizeof(c->fail_detail), "%s", c->vr.detail);
	} else {
		if (c->hs_fail == EDGE_HS_OK)
			c->hs_fail = classify_ssl_error(c, err, e);
		if (!c->fail_detail[0]) /* a callback's own words come first */
			edge_log_ssl_errors(c->fail_detail, sizeof(c->fail_detail));
		else
			ERR_clear_error();
		if (!c->fail_detail[0] && err == SSL_ERROR_SYSCALL)
			snprintf(c->fail_detail, sizeof(c->fail_detail), "%s",
				 errno ? strerror(errno) : "connection closed");
	}
	ERR_clear_error();
	/* The "alert" rule's action is this failed handshake. */
	c->bpf_tag = c->action == EDGE_ACTION_ALERT && c->hs_fail == EDGE_HS_VERIFY;
	edge_handshake_report_failure(c);
}

/* A resumed session has no Certificate message, so the verify callback did not run: the
 * client certificate kept in the session is judged again, now, against this hostname's
 * current trust (validity, revocation, CA bindings), and the verdict follows as after a full
 * handshake. A session resumed under another hostname is refused. */
static void reverify_resumed(struct edge_conn *c, X509 *peer)
{
	SSL *ssl = c->side[EDGE_CLIENT].ssl;
	const char *h = SSL_SESSION_get0_hostname(SSL_get0_session(ssl));
	int rc;

	c->verify_ran = true;
	edge_verify_audit(peer, &c->audit);
	/* a TLS 1.2 session from the cache keeps the client's chain; a TLS 1.3 ticket only the
	 * leaf (a chain with intermediates gets no ticket) */
	rc = edge_verify_chain(c->trust, peer, SSL_get_peer_cert_chain(ssl), 0, &c->vr);
	if (!rc)
		rc = edge_verify_authorize(c->authz, peer, &c->vr);
	if (!rc && (!h || strcasecmp(h, c->host))) {
		c->vr.reason = EDGE_REASON_VERIFY_FAILED;
		snprintf(c->vr.detail, sizeof(c->vr.detail),
			 "session resumed under another hostname");
	} else if (rc && rc != -EACCES) {
		c->vr.reason = EDGE_REASON_VERIFY_FAILED;
		snprintf(c->vr.detail, sizeof(c->vr.detail), "internal error: %s", strerror(-rc));
	}
}

/* The protocol ALPN chose (alpn_select_cb), kept with its metrics label and counted. */
static void alpn_selected(struct edge_conn *c, SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;
	size_t k = 0;

	SSL_get0_alpn_selected(ssl, &p, &len);
	c->alpn[0] = '\0';
	c->alpn_label = 0;
	if (p && len && len < sizeof(c->alpn) && c->sni) {
		memcpy(c->alpn, p, len);
		c->alpn[len] = '\0';
		for (size_t j = 0; j < c->sni->alpn_len; j += 1 + (size_t)c->sni->alpn[j], k++)
			if (c->sni->alpn[j] == len && !memcmp(c->sni->alpn + j + 1, p, len))
				c->alpn_label = k < EDGE_MAX_ALPN ? c->sni->alpn_label[k] : 1;
	}
	edge_metrics_alpn(c->w->m, host_label(c), c->alpn_label);
}

/* The handshake is complete: the verdict, counted and logged. */
static void handshake_done(struct edge_conn *c)
{
	struct edge_worker *w = c->w;
	SSL *ssl = c->side[EDGE_CLIENT].ssl;
	enum edge_cert_request req = edge_policy_cert_request(c->mode, c->action);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	enum edge_cert_status status;
	const char *reason;

	if (peer && SSL_session_reused(ssl))
		reverify_resumed(c, peer);
	if (!peer) {
		status = EDGE_CERT_ABSENT;
		reason = req == EDGE_REQUEST_NONE ? "not_requested" : "no_client_cert";
		if (req != EDGE_REQUEST_NONE)
			c->vr.reason = EDGE_REASON_NO_CLIENT_CERT;
	} else if (c->verify_ran && c->vr.reason == EDGE_REASON_OK) {
		status = EDGE_CERT_VALID;
		reason = "ok";
	} else {
		status = EDGE_CERT_INVALID;
		reason = edge_reason_name(c->vr.reason);
	}
	c->verdict = edge_policy_decide(c->mode, c->action, status);
	w->c.verdict[c->verdict]++;
	alpn_selected(c, ssl);
	if (c->verdict == EDGE_VERDICT_PASS) {
		w->c.handshakes_ok++;
	} else {
		w->c.handshakes_failed++;
		if (status != EDGE_CERT_VALID && c->vr.reason != EDGE_REASON_OK)
			w->c.by_reason[c->vr.reason]++;
	}
	edge_metrics_handshake(w->d->metrics, w->m, host_label(c), (int)c->verdict,
			       edge_hs_fail_index(EDGE_HS_VERIFY, c->vr.reason),
			       status == EDGE_CERT_VALID ? EDGE_REASON_OK : c->vr.reason,
			       c->vr.issuer);
	const struct edge_log_field f[] = {
		EDGE_LF_S("peer", c->peer),
		EDGE_LF_S("sni", c->host),
		EDGE_LF_S("verdict", edge_verdict_name(c->verdict)),
		EDGE_LF_S("reason", reason),
		EDGE_LF_S("check", status == EDGE_CERT_INVALID ? verify_check(c) : NULL),
		EDGE_LF_S("detail", status == EDGE_CERT_INVALID ? c->vr.detail : NULL),
		EDGE_LF_S("subject", c->vr.subject),
		EDGE_LF_S("serial", c->vr.serial[0] ? c->vr.serial : "-"),
		EDGE_LF_S("issuer", c->vr.issuer[0] ? c->vr.issuer : NULL),
		EDGE_LF_S("sha256", c->audit.sha256[0] ? c->audit.sha256 : NULL),
		EDGE_LF_S("spki", c->audit.spki[0] ? c->audit.spki : NULL),
		EDGE_LF_S("sans", c->audit.sans[0] ? c->audit.sans : NULL),
		EDGE_LF_S("rule", c->vr.authz.text[0] ? c->vr.authz.text : NULL),
		EDGE_LF_S("tls", SSL_get_version(ssl)),
		EDGE_LF_S("cipher", SSL_get_cipher_name(ssl)),
		EDGE_LF_S("alpn", c->alpn[0] ? c->alpn : NULL),
		EDGE_LF_N("duration_ms", edge_now_ms() - c->start_ms),
	};

	edge_log_event(EDGE_LOG_INFO, "handshake", f, sizeof(f) / sizeof(f[0]));
	/* A block rule acted on a failed verification: the kernel takes it from here. */
	c->bpf_tag = c->verdict == EDGE_VERDICT_BLOCK || c->verdict == EDGE_VERDICT_DROP;
}

enum edge_hs_result edge_handshake_step(struct edge_conn *c)
{
	struct edge_side *cl = &c->side[EDGE_CLIENT];
	int r, err;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(cl->ssl);
	if (r == 1) {
		handshake_done(c);
		return EDGE_HS_DONE;
	}
	err = SSL_get_error(cl->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		edge_side_arm(c, cl, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
		return EDGE_HS_WAIT;
	}
	handshake_failed(c, err);
	return EDGE_HS_FAILED;
}
