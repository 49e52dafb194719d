#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crlfetch.h"
#include "daemon.h"
#include "replica.h"
#include "flowtag.h"
#include "snapshot.h"

void edge_mbuf_printf(struct edge_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *np;

		while (cap - b->len <= (size_t)n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

void edge_mbuf_free(struct edge_mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static size_t escape(char *out, size_t len, const char *v, bool quote)
{
	size_t o = 0;

	if (!len)
		return 0;
	for (; *v; v++) {
		const char *e = NULL;

		if (*v == '\\')
			e = "\\\\";
		else if (*v == '\n')
			e = "\\n";
		else if (*v == '"' && quote)
			e = "\\\"";
		if (e) {
			if (o + 2 >= len)
				break;
			memcpy(out + o, e, 2);
			o += 2;
		} else {
			if (o + 1 >= len)
				break;
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return o;
}

size_t edge_metrics_escape_label(char *out, size_t len, const char *v)
{
	return escape(out, len, v, true);
}

void edge_metrics_family(struct edge_mbuf *b, const char *name, const char *type, const char *help)
{
	char h[512];

	escape(h, sizeof(h), help, false);
	edge_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, h, name, type);
}

static void sample_head(struct edge_mbuf *b, const char *name, const char *const *labels)
{
	edge_mbuf_printf(b, "%s", name);
	if (!labels || !labels[0])
		return;
	for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
		char v[600];

		edge_metrics_escape_label(v, sizeof(v), labels[i + 1]);
		edge_mbuf_printf(b, "%s%s=\"%s\"", i ? "," : "{", labels[i], v);
	}
	edge_mbuf_printf(b, "}");
}

void edge_metrics_sample(struct edge_mbuf *b, const char *name, const char *const *labels,
			 long long v)
{
	sample_head(b, name, labels);
	edge_mbuf_printf(b, " %lld\n", v);
}

void edge_metrics_sample_u(struct edge_mbuf *b, const char *name, const char *const *labels,
			   unsigned long long v)
{
	sample_head(b, name, labels);
	edge_mbuf_printf(b, " %llu\n", v);
}

const char *edge_metrics_fail_reason_name(size_t i)
{
	return edge_hs_fail_index_name(i);
}

int edge_metrics_new(struct edge_metrics **out, size_t n_workers)
{
	struct edge_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->hosts[0] = strdup("_other");
	m->cas[0] = strdup("_none");
	m->cas[1] = strdup("_other");
	m->cas[2] = strdup("builtin");
	m->alpns[0] = strdup("_none");
	m->alpns[1] = strdup("_other");
	m->n_alpns = 2;
	m->n_hosts = 1;
	m->n_cas = 3;
	m->workers = calloc(n_workers ? n_workers : 1, sizeof(*m->workers));
	m->n_workers = n_workers;
	if (!m->hosts[0] || !m->cas[0] || !m->cas[1] || !m->cas[2] || !m->alpns[0] ||
	    !m->alpns[1] || !m->workers) {
		edge_metrics_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void edge_metrics_free(struct edge_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_hosts; i++)
		free(m->hosts[i]);
	for (size_t i = 0; i < EDGE_METRICS_MAX_CAS; i++)
		free(m->cas[i]);
	for (size_t i = 0; i < EDGE_METRICS_MAX_ALPN; i++)
		free(m->alpns[i]);
	for (size_t i = 0; m->workers && i < m->n_workers; i++)
		free(m->workers[i].subjects);
	free(m->workers);
	free(m->subjects);
	free(m->expiry);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct edge_metrics_worker *edge_metrics_worker(struct edge_metrics *m, size_t i)
{
	return i < m->n_workers ? &m->workers[i] : NULL;
}

unsigned int edge_metrics_host_label(struct edge_metrics *m, const char *host)
{
	unsigned int label = 0;
	char *dup;

	if (!host)
		return 0;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 1; i < m->n_hosts; i++)
		if (!strcmp(m->hosts[i], host))
			label = (unsigned int)i;
	if (!label && m->n_hosts < EDGE_METRICS_MAX_HOSTS && (dup = strdup(host))) {
		m->hosts[m->n_hosts] = dup;
		label = (unsigned int)m->n_hosts++;
	}
	pthread_mutex_unlock(&m->lock);
	return label;
}

/* The label of an ALPN token (len bytes), kept for the daemon's life; 1 ("_other") once the
 * table is full. */
static unsigned int alpn_label(struct edge_metrics *m, const unsigned char *tok, size_t len)
{
	unsigned int label = 1;
	char *dup;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 2; i < m->n_alpns; i++)
		if (strlen(m->alpns[i]) == len && !memcmp(m->alpns[i], tok, len))
			label = (unsigned int)i;
	if (label == 1 && m->n_alpns < EDGE_METRICS_MAX_ALPN &&
	    (dup = strndup((const char *)tok, len))) {
		m->alpns[m->n_alpns] = dup;
		label = (unsigned int)m->n_alpns++;
	}
	pthread_mutex_unlock(&m->lock);
	return label;
}

void edge_metrics_label_snapshot(struct edge_metrics *m, struct edge_snapshot *s)
{
	for (size_t i = 0; i < s->n_sni; i++) {
		struct edge_sni *o = &s->snis[i];
		size_t k = 0;

		o->label = edge_metrics_host_label(m, o->hostname);
		for (size_t j = 0; j < o->alpn_len && k < EDGE_MAX_ALPN;
		     j += 1 + (size_t)o->alpn[j])
			o->alpn_label[k++] = alpn_label(m, o->alpn + j + 1, o->alpn[j]);
	}
}

/* The CA that issued a leaf: its label by the issuer's subject, from the
 * worker's copy of the subjects table (taken again, under the lock, after
 * each expiry scan: once per scan, not per handshake). */
static size_t ca_index(struct edge_metrics *m, struct edge_metrics_worker *mw, const char *issuer)
{
	uint64_t gen = atomic_load(&m->subjects_gen);

	if (!issuer || !*issuer)
		return 0;
	if (mw->subjects_gen != gen) {
		struct edge_ca_subject *copy;

		pthread_mutex_lock(&m->lock);
		copy = malloc((m->n_subjects ? m->n_subjects : 1) * sizeof(*copy));
		if (copy) {
			memcpy(copy, m->subjects, m->n_subjects * sizeof(*copy));
			free(mw->subjects);
			mw->subjects = copy;
			mw->n_subjects = m->n_subjects;
			mw->subjects_gen = atomic_load(&m->subjects_gen);
		}
		pthread_mutex_unlock(&m->lock);
	}
	for (size_t i = 0; i < mw->n_subjects; i++)
		if (!strcmp(mw->subjects[i].subject, issuer))
			return (size_t)mw->subjects[i].ca;
	return 0;
}

void edge_metrics_handshake(struct edge_metrics *m, struct edge_metrics_worker *mw,
			    unsigned int host, int verdict, size_t fail_index,
			    enum edge_reason vreason, const char *issuer)
{
	if (!m || !mw || verdict < 0 || verdict >= EDGE_METRICS_VERDICTS)
		return;
	if (host >= EDGE_METRICS_MAX_HOSTS)
		host = 0;
	if (verdict == EDGE_VERDICT_REFUSE) /* a TLS alert after the handshake: "fail", as logged */
		verdict = EDGE_METRICS_FAIL;
	mw->handshakes[host][verdict]++;
	if (vreason != EDGE_REASON_OK && (unsigned int)vreason < EDGE_REASON_COUNT)
		mw->verify_failures[host][vreason][ca_index(m, mw, issuer)]++;
	if (verdict == EDGE_METRICS_FAIL)
		mw->fail_reasons[fail_index < EDGE_METRICS_FAIL_REASONS
					 ? fail_index
					 : EDGE_METRICS_FAIL_REASONS - 1]++;
}

struct edge_metrics_worker *edge_metrics_sum(struct edge_metrics *m)
{
	struct edge_metrics_worker *sum = calloc(1, sizeof(*sum));
	const size_t words = offsetof(struct edge_metrics_worker, subjects_gen) / sizeof(uint64_t);

	if (!sum)
		return NULL;
	for (size_t w = 0; w < m->n_workers; w++) {
		const uint64_t *in = (const uint64_t *)&m->workers[w];
		uint64_t *out = (uint64_t *)sum;

		for (size_t i = 0; i < words; i++)
			out[i] += __atomic_load_n(&in[i], __ATOMIC_RELAXED);
	}
	return sum;
}

/* Under the lock: the label of a CA name, kept for the daemon's life. */
static int ca_label(struct edge_metrics *m, const char *name)
{
	char *dup;

	for (size_t i = 2; i < m->n_cas; i++)
		if (!strcmp(m->cas[i], name))
			return (int)i;
	if (m->n_cas == EDGE_METRICS_MAX_CAS || !(dup = strdup(name)))
		return 1;
	m->cas[m->n_cas] = dup;
	return (int)m->n_cas++;
}

void edge_metrics_set_expiry(struct edge_metrics *m, struct edge_expiry_item *items, size_t n,
			     int64_t at, unsigned int warn_days)
{
	struct edge_ca_subject *subj = calloc(n ? n : 1, sizeof(*subj));
	size_t ns = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; subj && i < n; i++) {
		if (items[i].kind != EDGE_EXPIRY_BUILTIN_CA && items[i].kind != EDGE_EXPIRY_CA)
			continue;
		snprintf(subj[ns].subject, sizeof(subj[ns].subject), "%s", items[i].subject);
		subj[ns].ca = items[i].kind == EDGE_EXPIRY_BUILTIN_CA ? 2
								      : ca_label(m, items[i].name);
		ns++;
	}
	if (subj) {
		free(m->subjects);
		m->subjects = subj;
		m->n_subjects = ns;
		atomic_fetch_add(&m->subjects_gen, 1);
	}
	free(m->expiry);
	m->expiry = items;
	m->n_expiry = n;
	m->expiry_at = at;
	m->warn_days = warn_days;
	pthread_mutex_unlock(&m->lock);
}

/* A label list, and a row of the counter table (clang-format mangles both). */
/* clang-format off */
#define S(k, v) (const char *const[]){ k, v, NULL }
#define F(n, h) { #n, h, offsetof(struct edge_counters, n) }
/* clang-format on */

const struct edge_counter_field edge_counter_fields[] = {
	F(accepted, "TCP connections accepted."),
	F(handshakes_ok, "Handshakes that ended in the pass verdict."),
	F(handshakes_failed, "Handshakes that failed or ended in a verdict other than pass."),
	F(unknown_sni, "Handshakes refused for an SNI with no SNI object (or none sent)."),
	F(tls_errors, "Handshakes that failed at the TLS layer."),
	F(handshake_timeouts, "Handshakes closed at the handshake timeout."),
	F(handshake_cap_refused, "Connections refused at max_handshakes."),
	F(handshake_source_refused, "Connections refused at max_handshakes_per_source."),
	F(upstream_connect_failed, "Upstream connections that failed."),
	F(upstream_tls_failed, "TLS sessions to upstreams that failed."),
	F(idle_timeouts, "Relayed connections closed at the idle timeout."),
	F(path_userspace, "Verified connections relayed in userspace."),
	F(path_ktls, "Verified connections relayed by the kernel (kTLS, splice)."),
	F(ktls_fallback, "Connections that stayed in userspace although kTLS is on."),
	F(ktls_released,
	  "Connections handed to kTLS both ways whose SSL objects were then freed (no OpenSSL state left)."),
	F(own_records,
	  "TLS 1.3 connections relayed in userspace on mtls-edged's own record layer (their SSL objects freed)."),
	F(control_records,
	  "TLS control records (alerts, handshake messages) after the hand-off or on mtls-edged's own record layer."),
	F(bytes_in, "Bytes relayed from clients to upstreams, counted at close."),
	F(bytes_out, "Bytes relayed from upstreams to clients, counted at close."),
	F(revoked_closed, "Live connections closed because their certificate was revoked."),
	F(unauthorized_closed,
	  "Live connections closed because an identity rule change no longer admits their certificate."),
	F(flows_tagged, "Flows handed to the eBPF program."),
	F(closed, "Connections closed."),
	F(proxy_v2_sent, "PROXY v2 headers written to upstreams (--forward proxy-v2)."),
	F(http_requests_rewritten,
	  "Request heads rewritten with the client's identity (--forward headers)."),
	F(http_refused_400,
	  "Requests refused with 400: they cannot be framed safely (headers mode)."),
	F(http_refused_421,
	  "Requests refused with 421: Host is not the verified SNI (headers mode)."),
	F(http_refused_431,
	  "Requests refused with 431: a request head over 16 KiB (headers mode)."),
	F(upstream_connects, "New connections to upstreams."),
	F(upstream_reused,
	  "Client connections given an idle upstream connection (--protocol http)."),
	F(upstream_pooled, "Upstream connections kept for the next client (--protocol http)."),
	F(upstream_parked,
	  "Upstream connections given back to the pool by a client idle between requests "
	  "(--protocol http); its next request takes one again."),
	F(upstream_pool_closed,
	  "Idle upstream connections closed: expired, evicted or closed by the upstream."),
	F(upstream_alpn_mismatch,
	  "TLS upstreams that did not select the protocol the client negotiated (--protocol tcp)."),
	F(verify_cache_hits,
	  "Client chains verified before in this snapshot, within every validity: not verified again."),
	F(verify_cache_misses, "Client chains verified in full."),
	F(h2_connections, "Client connections whose HTTP/2 the edge terminated (--protocol http)."),
	F(h2_streams, "HTTP/2 streams (requests) opened by clients."),
	F(h2_local, "HTTP/2 streams the edge answered itself (431, 405, 502, gRPC refused)."),
	F(h2_client_resets, "HTTP/2 streams the client reset before their response was out."),
	F(h2_refused, "HTTP/2 streams refused beyond SETTINGS_MAX_CONCURRENT_STREAMS."),
#undef F
	{ NULL, NULL, 0 },
};

static void render_counters(struct edge_daemon *d, struct edge_mbuf *b)
{
	struct edge_counters k;
	const uint64_t *words = (const uint64_t *)&k;
	size_t end = 0;

	edge_daemon_counters(d, &k);
	for (const struct edge_counter_field *f = edge_counter_fields; f->name; f++) {
		char name[96];

		snprintf(name, sizeof(name), "mtls_edge_%s_total", f->name);
		edge_metrics_family(b, name, "counter", f->help);
		edge_metrics_sample_u(b, name, NULL,
				      *(const uint64_t *)((const char *)&k + f->off));
		if (f->off + sizeof(uint64_t) > end)
			end = f->off + sizeof(uint64_t);
	}
	/* The labelled array at the end is rendered below. */
	if (end < offsetof(struct edge_counters, h2_goaway) + sizeof(k.h2_goaway))
		end = offsetof(struct edge_counters, h2_goaway) + sizeof(k.h2_goaway);
	/* Fields added to struct edge_counters without a row above still show. */
	edge_metrics_family(b, "mtls_edge_counter_unnamed_total", "counter",
			    "A field of struct edge_counters with no name in the exporter yet.");
	for (size_t off = end; off < sizeof(k); off += sizeof(uint64_t)) {
		char o[24];

		snprintf(o, sizeof(o), "%zu", off);
		edge_metrics_sample_u(b, "mtls_edge_counter_unnamed_total", S("offset", o),
				      words[off / sizeof(uint64_t)]);
	}
	edge_metrics_family(b, "mtls_edge_h2_goaway_total", "counter",
			    "HTTP/2 connections the edge ended with GOAWAY, by reason (floods, errors, "
			    "idle, shutdown).");
	for (int i = 0; i < EDGE_H2_GOAWAY_COUNT; i++)
		edge_metrics_sample_u(b, "mtls_edge_h2_goaway_total",
				      S("reason", edge_h2_goaway_name(i)), k.h2_goaway[i]);
	edge_metrics_family(b, "mtls_edge_relay_closed_total", "counter",
			    "Connections closed after their handshake, by reason.");
	for (int i = EDGE_CLOSE_DONE; i < EDGE_CLOSE_COUNT; i++)
		edge_metrics_sample_u(b, "mtls_edge_relay_closed_total",
				      S("reason", edge_close_reason_name(i)), k.closed_by[i]);
	edge_metrics_family(b, "mtls_edge_connections_total", "counter",
			    "Verified connections relayed, by path.");
	edge_metrics_sample_u(b, "mtls_edge_connections_total", S("path", "ktls"), k.path_ktls);
	edge_metrics_sample_u(b, "mtls_edge_connections_total", S("path", "userspace"),
			      k.path_userspace);
	edge_metrics_family(b, "mtls_edge_relayed_bytes_total", "counter",
			    "Bytes relayed, by direction, counted when a connection closes.");
	edge_metrics_sample_u(b, "mtls_edge_relayed_bytes_total",
			      S("direction", "client_to_upstream"), k.bytes_in);
	edge_metrics_sample_u(b, "mtls_edge_relayed_bytes_total",
			      S("direction", "upstream_to_client"), k.bytes_out);
}

static void render_labelled(struct edge_metrics *m, struct edge_mbuf *b)
{
	struct edge_metrics_worker *k = edge_metrics_sum(m);

	if (!k) {
		b->oom = true;
		return;
	}
	edge_metrics_family(b, "mtls_edge_handshakes_total", "counter",
			    "Handshakes by SNI object (host, _other for none) and verdict"
			    " (pass, unverified, block, drop, fail).");
	pthread_mutex_lock(&m->lock);
	for (size_t h = 0; h < m->n_hosts; h++) {
		for (int v = 0; v < EDGE_METRICS_VERDICTS; v++) {
			const char *vn = v == EDGE_METRICS_FAIL ? "fail" : edge_verdict_name(v);

			if (k->handshakes[h][v] && v != EDGE_VERDICT_REFUSE) /* counted as fail */
				edge_metrics_sample_u(b, "mtls_edge_handshakes_total",
						      (const char *const[]){ "host", m->hosts[h],
									     "verdict", vn, NULL },
						      k->handshakes[h][v]);
		}
	}
	edge_metrics_family(b, "mtls_edge_verify_failures_total", "counter",
			    "Client certificates the verifier refused (or absent where one is"
			    " required), by host, the verifier's reason, and the CA that issued"
			    " the leaf (_none: no configured CA).");
	for (size_t h = 0; h < m->n_hosts; h++)
		for (int r = 1; r < EDGE_REASON_COUNT; r++)
			for (size_t c = 0; c < m->n_cas; c++)
				if (k->verify_failures[h][r][c])
					edge_metrics_sample_u(b, "mtls_edge_verify_failures_total",
							      (const char *const[]){
								      "host", m->hosts[h], "reason",
								      edge_reason_name(r), "ca",
								      m->cas[c], NULL },
							      k->verify_failures[h][r][c]);
	edge_metrics_family(b, "mtls_edge_alpn_total", "counter",
			    "Completed handshakes by SNI object and the application protocol"
			    " negotiated (ALPN; _none: none).");
	for (size_t h = 0; h < m->n_hosts; h++)
		for (size_t a = 0; a < m->n_alpns; a++)
			if (k->alpn[h][a])
				edge_metrics_sample_u(b, "mtls_edge_alpn_total",
						      (const char *const[]){ "host", m->hosts[h],
									     "protocol",
									     m->alpns[a], NULL },
						      k->alpn[h][a]);
	edge_metrics_family(b, "mtls_edge_handshake_failures_total", "counter",
			    "Handshakes that failed (verdict fail), by reason.");
	for (size_t i = 0; i < EDGE_METRICS_FAIL_REASONS; i++)
		if (k->fail_reasons[i])
			edge_metrics_sample_u(b, "mtls_edge_handshake_failures_total",
					      S("reason", edge_metrics_fail_reason_name(i)),
					      k->fail_reasons[i]);
	pthread_mutex_unlock(&m->lock);
	free(k);
}

static void render_expiry(struct edge_metrics *m, struct edge_mbuf *b, int64_t now)
{
	unsigned int expiring = 0;

	pthread_mutex_lock(&m->lock);
	edge_metrics_family(b, "mtls_edge_cert_expiry_timestamp_seconds", "gauge",
			    "When each server certificate, CA and CRL (nextUpdate) expires.");
	for (size_t i = 0; i < m->n_expiry; i++)
		edge_metrics_sample(b, "mtls_edge_cert_expiry_timestamp_seconds",
				    (const char *const[]){ "kind",
							   edge_expiry_kind_name(m->expiry[i].kind),
							   "name", m->expiry[i].name, NULL },
				    m->expiry[i].not_after);
	edge_metrics_family(b, "mtls_edge_cert_expiring", "gauge",
			    "1 for each certificate or CRL that expires within expiry_warn_days"
			    " (or has expired), with its notAfter (nextUpdate for CRLs).");
	for (size_t i = 0; i < m->n_expiry; i++) {
		const struct edge_expiry_item *it = &m->expiry[i];
		char na[32];
		time_t t = (time_t)it->not_after;
		struct tm tm;

		if (it->not_after - now > (int64_t)m->warn_days * 86400)
			continue;
		expiring++;
		gmtime_r(&t, &tm);
		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", &tm);
		edge_metrics_sample(b, "mtls_edge_cert_expiring",
				    (const char *const[]){ "kind", edge_expiry_kind_name(it->kind),
							   "name", it->name, "not_after", na,
							   NULL },
				    1);
	}
	edge_metrics_family(b, "mtls_edge_certs_expiring", "gauge",
			    "How many certificates and CRLs expire within expiry_warn_days.");
	edge_metrics_sample_u(b, "mtls_edge_certs_expiring", NULL, expiring);
	edge_metrics_family(b, "mtls_edge_expiry_warn_days", "gauge",
			    "The expiry warning window ([tls] expiry_warn_days).");
	edge_metrics_sample_u(b, "mtls_edge_expiry_warn_days", NULL, m->warn_days);
	edge_metrics_family(b, "mtls_edge_expiry_last_check_timestamp_seconds", "gauge",
			    "When the daemon last checked what expires.");
	edge_metrics_sample(b, "mtls_edge_expiry_last_check_timestamp_seconds", NULL, m->expiry_at);
	pthread_mutex_unlock(&m->lock);
}

static void render_bpf(struct edge_daemon *d, struct edge_mbuf *b)
{
	struct edge_flowtag_stats st;
	unsigned int flows = 0, offenders = 0;

	edge_metrics_family(b, "mtls_edge_bpf_enabled", "gauge",
			    "1 when the eBPF program enforces in the kernel.");
	edge_metrics_sample(b, "mtls_edge_bpf_enabled", NULL, d->flowtag != NULL);
	if (!d->flowtag || edge_flowtag_stats(d->flowtag, &st))
		return;
	edge_metrics_family(b, "mtls_edge_bpf_drops_total", "counter",
			    "Packets the eBPF program dropped: of tagged flows (flow) and"
			    " offenders' ClientHellos (hello).");
	edge_metrics_sample_u(b, "mtls_edge_bpf_drops_total", S("kind", "flow"), st.flow_drops);
	edge_metrics_sample_u(b, "mtls_edge_bpf_drops_total", S("kind", "hello"), st.hello_drops);
	edge_metrics_family(b, "mtls_edge_bpf_packets_total", "counter",
			    "Packets the eBPF program ran on.");
	edge_metrics_sample_u(b, "mtls_edge_bpf_packets_total", NULL, st.packets);
	edge_metrics_family(b, "mtls_edge_bpf_hellos_total", "counter",
			    "ClientHellos the eBPF program read: to their SNI or its absence (parsed),"
			    " or passed unread (odd: cut, malformed, given up).");
	edge_metrics_sample_u(b, "mtls_edge_bpf_hellos_total", S("result", "parsed"),
			      st.hellos_parsed);
	edge_metrics_sample_u(b, "mtls_edge_bpf_hellos_total", S("result", "odd"), st.hellos_odd);
	edge_metrics_family(b, "mtls_edge_bpf_hello_walks_total", "counter",
			    "ClientHellos longer than their first segment, followed into the next:"
			    " ended in a later segment (split) or given up (given_up).");
	edge_metrics_sample_u(b, "mtls_edge_bpf_hello_walks_total", S("end", "split"),
			      st.hellos_split);
	edge_metrics_sample_u(b, "mtls_edge_bpf_hello_walks_total", S("end", "given_up"),
			      st.hellos_given_up);
	if (!edge_flowtag_count(d->flowtag, &flows, &offenders)) {
		edge_metrics_family(b, "mtls_edge_bpf_tagged_flows", "gauge",
				    "Flows tagged for dropping now.");
		edge_metrics_sample_u(b, "mtls_edge_bpf_tagged_flows", NULL, flows);
		edge_metrics_family(b, "mtls_edge_bpf_offenders", "gauge",
				    "Sources whose ClientHellos are dropped now.");
		edge_metrics_sample_u(b, "mtls_edge_bpf_offenders", NULL, offenders);
	}
}

/* The CRL fetcher's distribution points (crlfetch.h). */
static void render_crl(struct edge_daemon *d, struct edge_mbuf *b)
{
	static struct edge_crl_stat st[EDGE_CRLFETCH_MAX]; /* the main thread's only */
	int64_t now = time(NULL);
	size_t n;

	if (!d->crlfetch)
		return;
	n = edge_crlfetch_stats(d->crlfetch, st, EDGE_CRLFETCH_MAX);
	edge_metrics_family(b, "mtls_edge_crl_fetches_total", "counter",
			    "CRL fetches from distribution points, by CA, URL and result.");
	for (size_t i = 0; i < n; i++) {
		edge_metrics_sample_u(b, "mtls_edge_crl_fetches_total",
				      (const char *const[]){ "ca", st[i].ca, "url", st[i].url,
							     "result", "ok", NULL },
				      st[i].ok);
		edge_metrics_sample_u(b, "mtls_edge_crl_fetches_total",
				      (const char *const[]){ "ca", st[i].ca, "url", st[i].url,
							     "result", "failed", NULL },
				      st[i].failed);
	}
	edge_metrics_family(b, "mtls_edge_crl_age_seconds", "gauge",
			    "Seconds since a distribution point last gave a good CRL.");
	for (size_t i = 0; i < n; i++)
		if (st[i].last_ok)
			edge_metrics_sample(b, "mtls_edge_crl_age_seconds",
					    (const char *const[]){ "ca", st[i].ca, "url", st[i].url,
								   NULL },
					    now - st[i].last_ok);
	edge_metrics_family(b, "mtls_edge_crl_next_update_timestamp_seconds", "gauge",
			    "The nextUpdate of the fetched CRL in use.");
	for (size_t i = 0; i < n; i++)
		if (st[i].next_update)
			edge_metrics_sample(b, "mtls_edge_crl_next_update_timestamp_seconds",
					    (const char *const[]){ "ca", st[i].ca, "url", st[i].url,
								   NULL },
					    st[i].next_update);
	edge_metrics_family(b, "mtls_edge_crl_fetch_failing", "gauge",
			    "1 while the last fetch of a distribution point failed.");
	for (size_t i = 0; i < n; i++)
		edge_metrics_sample(b, "mtls_edge_crl_fetch_failing",
				    (const char *const[]){ "ca", st[i].ca, "url", st[i].url, NULL },
				    st[i].failing);
}

/* A fleet edge's replica (replica.h). */
static void render_fleet(struct edge_daemon *d, struct edge_mbuf *b)
{
	struct edge_replica_stat s;
	static const char *const applied[] = { "result", "applied", NULL };
	static const char *const rejected[] = { "result", "rejected", NULL };

	if (!d->replica)
		return;
	edge_replica_stats(d->replica, &s);
	const struct {
		const char *name, *type, *help;
		long long v;
	} one[] = {
		{ "mtls_edge_fleet_revision", "gauge",
		  "The etcd revision of the configuration this edge serves.", s.applied_rev },
		{ "mtls_edge_fleet_etcd_revision", "gauge",
		  "etcd's revision as last seen (a watch answer or a read).", s.etcd_rev },
		{ "mtls_edge_fleet_connected", "gauge",
		  "1 while this edge reaches etcd (its watch is up).", s.connected },
		{ "mtls_edge_fleet_watch_reconnects_total", "counter",
		  "Watches on etcd that ended and were made again.", (long long)s.reconnects },
		{ "mtls_edge_fleet_resyncs_total", "counter",
		  "Full reads of the cluster's keys (start, compaction, a reset).",
		  (long long)s.resyncs },
		{ "mtls_edge_fleet_revision_backwards_total", "counter",
		  "Times etcd's revision went back (a restore), each a full resync.",
		  (long long)s.backwards },
	};
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		edge_metrics_family(b, one[i].name, one[i].type, one[i].help);
		edge_metrics_sample(b, one[i].name, NULL, one[i].v);
	}
	edge_metrics_family(b, "mtls_edge_fleet_revisions_total", "counter",
			    "Published revisions this edge applied or refused (rejected).");
	edge_metrics_sample_u(b, "mtls_edge_fleet_revisions_total", applied, s.applied);
	edge_metrics_sample_u(b, "mtls_edge_fleet_revisions_total", rejected, s.rejected);
	edge_metrics_family(b, "mtls_edge_fleet_apply_seconds", "histogram",
			    "From etcd's answer that completed a revision to the swap serving it.");
	for (size_t i = 0; i <= s.n_buckets; i++) {
		if (i < s.n_buckets)
			edge_mbuf_printf(b,
					 "mtls_edge_fleet_apply_seconds_bucket{le=\"%g\"} %llu\n",
					 s.bucket_le[i], (unsigned long long)s.bucket_count[i]);
		else
			edge_mbuf_printf(b,
					 "mtls_edge_fleet_apply_seconds_bucket{le=\"+Inf\"} %llu\n",
					 (unsigned long long)s.bucket_count[i]);
	}
	edge_mbuf_printf(b, "mtls_edge_fleet_apply_seconds_sum %g\n", s.apply_sum_s);
	edge_mbuf_printf(b, "mtls_edge_fleet_apply_seconds_count %llu\n",
			 (unsigned long long)s.bucket_count[s.n_buckets]);
}

void edge_metrics_render(struct edge_daemon *d, struct edge_mbuf *b)
{
	unsigned int conns = edge_daemon_open_conns(d);
	uint64_t ok, failed;
	bool last_ok;

	pthread_mutex_lock(&d->status_lock);
	ok = d->reloads_ok;
	failed = d->reloads_failed;
	last_ok = d->last_reload_ok;
	pthread_mutex_unlock(&d->status_lock);
	render_labelled(d->metrics, b);
	render_counters(d, b);
	edge_metrics_family(b, "mtls_edge_handshakes_in_flight", "gauge",
			    "TLS handshakes in progress.");
	edge_metrics_sample(b, "mtls_edge_handshakes_in_flight", NULL,
			    atomic_load(&d->handshakes_inflight));
	edge_metrics_family(b, "mtls_edge_connections_open", "gauge",
			    "Connections the workers hold (handshaking, relaying, closing).");
	edge_metrics_sample_u(b, "mtls_edge_connections_open", NULL, conns);
	edge_metrics_family(b, "mtls_edge_reloads_total", "counter",
			    "Snapshot rebuilds from the store, by result.");
	edge_metrics_sample_u(b, "mtls_edge_reloads_total", S("result", "ok"), ok);
	edge_metrics_sample_u(b, "mtls_edge_reloads_total", S("result", "failed"), failed);
	edge_metrics_family(b, "mtls_edge_last_reload_ok", "gauge",
			    "1 when the last reload succeeded.");
	edge_metrics_sample(b, "mtls_edge_last_reload_ok", NULL, last_ok);
	edge_metrics_family(b, "mtls_edge_generation", "gauge",
			    "The store generation being served.");
	edge_metrics_sample(b, "mtls_edge_generation", NULL,
			    (long long)atomic_load(&d->generation));
	render_bpf(d, b);
	render_expiry(d->metrics, b, (int64_t)time(NULL));
	render_crl(d, b);
	render_fleet(d, b);
}
