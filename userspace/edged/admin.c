#include "admin.h"
#include "crlfetch.h"
#include "replica.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "flowtag.h"
#include "handshake.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

static int admin_path(const char *dir, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if ((size_t)snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", dir,
			     EDGE_ADMIN_SOCKET) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "state directory path too long for the admin socket: %s",
			 dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

int edge_admin_open(const char *state_dir, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd, rc;

	if ((rc = admin_path(state_dir, &sun, err, errlen)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		snprintf(err, errlen,
			 "another mtls-edged is running on %s (its admin socket %s"
			 " answers)",
			 state_dir, sun.sun_path);
		return -EADDRINUSE;
	}
	unlink(sun.sun_path); /* stale, from a daemon that did not exit cleanly */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16)) {
		rc = -errno;
		snprintf(err, errlen, "admin socket %s: %s", sun.sun_path, strerror(-rc));
		close(fd);
		return rc;
	}
	chmod(sun.sun_path, 0600);
	return fd;
}

void edge_admin_close(int fd, const char *state_dir)
{
	struct sockaddr_un sun;
	char err[64];

	if (fd < 0)
		return;
	close(fd);
	if (!admin_path(state_dir, &sun, err, sizeof(err)))
		unlink(sun.sun_path);
}

int edge_admin_reload(struct edge_daemon *d, struct edge_store *st, const char *why)
{
	struct edge_snapshot *s = NULL;
	char err[512] = "";
	int rc;

	int64_t gen = -1;
	uint64_t seq;

	struct edge_crl_extra fetched = { 0 };

	edge_store_generation(st, &gen);
	if (d->crlfetch)
		edge_crlfetch_get(d->crlfetch, &fetched);
	rc = edge_snapshot_build_crls(st, &d->cfg,
				      edge_handshake_hooks(d->ktls, d->cfg.own_records), &fetched,
				      &s, err, sizeof(err));
	edge_crlfetch_put(&fetched);
	pthread_mutex_lock(&d->status_lock);
	d->last_reload_at = time(NULL);
	d->last_reload_ok = rc == 0;
	if (rc) {
		snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err);
		d->failed_generation = gen;
		d->reloads_failed++;
	} else {
		d->last_reload_error[0] = '\0';
		d->failed_generation = -1;
		d->reloads_ok++;
	}
	pthread_mutex_unlock(&d->status_lock);
	if (rc) {
		pr_err("reload (%s) refused, the previous state keeps serving: %s", why, err);
		return rc;
	}
	pr_info("reload (%s): generation %lld, %zu SNI objects, %zu bound hostnames,"
		" %zu rules, %zu revoked",
		why, (long long)s->generation, s->n_sni, s->n_trust, s->n_rules, s->n_revoked);
	edge_metrics_label_snapshot(d->metrics, s);
	gen = s->generation;
	edge_daemon_swap_snapshot(d, s);
	seq = s->seq;
	/* The live connections a revocation or a rule change refuses are closed before the
	 * reload is answered (so before `cert revoke` returns): the workers are woken now
	 * rather than at their next tick. */
	if (d->workers && !edge_daemon_apply(d, seq, 1000))
		pr_warn("reload (%s): a worker has not applied generation %lld within 1 s", why,
			(long long)gen);
	edge_admin_expiry_check(d, st, why);
	return 0;
}

void edge_admin_expiry_check(struct edge_daemon *d, struct edge_store *st, const char *why)
{
	struct edge_expiry_item *items;
	int64_t now = time(NULL), window = (int64_t)d->cfg.expiry_warn_days * 86400;
	char err[256] = "";
	size_t n;

	if (edge_expiry_scan(st, &items, &n, err, sizeof(err))) {
		d->metrics->expiry_scans_failed++;
		pr_warn("expiry check (%s) failed: %s", why, err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		long left = edge_expiry_days_left(items[i].not_after, now);
		char na[32];
		time_t t = (time_t)items[i].not_after;
		struct tm tm;

		if (items[i].not_after - now > window)
			continue;
		gmtime_r(&t, &tm);
		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", &tm);
		const struct edge_log_field f[] = {
			EDGE_LF_S("kind", edge_expiry_kind_name(items[i].kind)),
			EDGE_LF_S("name", items[i].name),
			EDGE_LF_S("state", items[i].not_after <= now ? "expired" : "expiring"),
			EDGE_LF_S("not_after", na),
			EDGE_LF_N("days_left", left),
			EDGE_LF_N("warn_days", d->cfg.expiry_warn_days),
			EDGE_LF_S("check", why),
		};

		edge_log_event(EDGE_LOG_WARN, "expiry", f, sizeof(f) / sizeof(f[0]));
	}
	edge_metrics_set_expiry(d->metrics, items, n, now, d->cfg.expiry_warn_days);
}

static json_t *counters_json(struct edge_daemon *d)
{
	struct edge_counters k;
	json_t *o = json_object(), *r = json_object(), *v = json_object(), *cl = json_object();

	edge_daemon_counters(d, &k);
	for (int i = 0; i < EDGE_REASON_COUNT; i++)
		if (k.by_reason[i])
			json_object_set_new(r, edge_reason_name(i),
					    json_integer((json_int_t)k.by_reason[i]));
	for (int i = 0; i <= EDGE_VERDICT_REFUSE; i++)
		json_object_set_new(v, edge_verdict_name(i),
				    json_integer((json_int_t)k.verdict[i]));
	for (const struct edge_counter_field *f = edge_counter_fields; f->name; f++)
		json_object_set_new(o, f->name,
				    json_integer((json_int_t) *
						 (const uint64_t *)((const char *)&k + f->off)));
	json_object_set_new(o, "verify_failures", r);
	for (int i = EDGE_CLOSE_DONE; i < EDGE_CLOSE_COUNT; i++)
		if (k.closed_by[i])
			json_object_set_new(cl, edge_close_reason_name(i),
					    json_integer((json_int_t)k.closed_by[i]));
	json_object_set_new(o, "closed_by_reason", cl);
	json_object_set_new(o, "verdicts", v);
	json_object_set_new(o, "handshakes_inflight",
			    json_integer(atomic_load(&d->handshakes_inflight)));
	return o;
}

/* Handshakes by SNI object and verdict, and what expires soon. */
static void labelled_json(struct edge_daemon *d, json_t *o)
{
	struct edge_metrics *m = d->metrics;
	struct edge_metrics_worker *k = edge_metrics_sum(m);
	json_t *hosts = json_object(), *exp = json_array();
	int64_t now = time(NULL);

	pthread_mutex_lock(&m->lock);
	for (size_t h = 0; h < m->n_hosts; h++) {
		json_t *v = json_object();

		for (int i = 0; i < EDGE_METRICS_VERDICTS; i++)
			if (k && k->handshakes[h][i] &&
			    i != EDGE_VERDICT_REFUSE) /* counted as fail */
				json_object_set_new(v,
						    i == EDGE_METRICS_FAIL ? "fail"
									   : edge_verdict_name(i),
						    json_integer((json_int_t)k->handshakes[h][i]));
		if (json_object_size(v))
			json_object_set_new(hosts, m->hosts[h], v);
		else
			json_decref(v);
	}
	for (size_t i = 0; i < m->n_expiry; i++) {
		const struct edge_expiry_item *it = &m->expiry[i];
		json_t *e;

		if (it->not_after - now > (int64_t)m->warn_days * 86400)
			continue;
		e = json_object();
		json_object_set_new(e, "kind", json_string(edge_expiry_kind_name(it->kind)));
		json_object_set_new(e, "name", json_string(it->name));
		json_object_set_new(e, "not_after", json_integer(it->not_after));
		json_object_set_new(e, "days_left",
				    json_integer(edge_expiry_days_left(it->not_after, now)));
		json_array_append_new(exp, e);
	}
	json_object_set_new(o, "expiry_warn_days", json_integer(m->warn_days));
	pthread_mutex_unlock(&m->lock);
	free(k);
	json_object_set_new(o, "handshakes_by_host", hosts);
	json_object_set_new(o, "expiring", exp);
}

static json_t *bpf_json(struct edge_daemon *d)
{
	json_t *o = json_object();
	struct edge_flowtag_stats st;
	unsigned int flows = 0, offenders = 0;

	json_object_set_new(o, "status", json_string(d->bpf_status));
	if (d->flowtag && !edge_flowtag_stats(d->flowtag, &st)) {
		json_object_set_new(o, "packets", json_integer((json_int_t)st.packets));
		json_object_set_new(o, "flow_drops", json_integer((json_int_t)st.flow_drops));
		json_object_set_new(o, "hello_drops", json_integer((json_int_t)st.hello_drops));
		json_object_set_new(o, "hellos_parsed", json_integer((json_int_t)st.hellos_parsed));
		json_object_set_new(o, "hellos_odd", json_integer((json_int_t)st.hellos_odd));
		json_object_set_new(o, "hellos_split", json_integer((json_int_t)st.hellos_split));
		json_object_set_new(o, "hellos_given_up",
				    json_integer((json_int_t)st.hellos_given_up));
		if (!edge_flowtag_count(d->flowtag, &flows, &offenders)) {
			json_object_set_new(o, "tagged_flows", json_integer(flows));
			json_object_set_new(o, "offenders", json_integer(offenders));
		}
	}
	return o;
}

static json_t *status_json(struct edge_daemon *d)
{
	json_t *o = json_object(), *l = json_array(), *lr = json_object(), *lm = json_object();
	unsigned int conns = edge_daemon_open_conns(d);

	for (int i = 0; i < d->n_listen_text; i++) {
		int m = d->cfg.listen_mtls[i];

		json_array_append_new(l, json_string(d->listen_text[i]));
		/* each listener's mTLS mode: "sni" (each SNI object's own) or its mtls=MODE */
		json_object_set_new(lm, d->listen_text[i],
				    json_string(m == EDGE_LISTEN_MTLS_SNI
							? "sni"
							: edge_mtls_mode_name((enum edge_mtls_mode)
										      m)));
	}
	pthread_mutex_lock(&d->status_lock);
	json_object_set_new(lr, "ok", json_boolean(d->last_reload_ok));
	json_object_set_new(lr, "error", json_string(d->last_reload_error));
	json_object_set_new(lr, "at", json_integer(d->last_reload_at));
	json_object_set_new(lr, "succeeded", json_integer((json_int_t)d->reloads_ok));
	json_object_set_new(lr, "failed", json_integer((json_int_t)d->reloads_failed));
	pthread_mutex_unlock(&d->status_lock);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "generation", json_integer(atomic_load(&d->generation)));
	json_object_set_new(o, "listen", l);
	json_object_set_new(o, "listen_mtls", lm);
	json_object_set_new(o, "workers", json_integer(d->n_workers));
	json_object_set_new(o, "connections", json_integer(conns));
	json_object_set_new(o, "ktls", json_string(d->ktls_status));
	json_object_set_new(o, "bpf", bpf_json(d));
	json_object_set_new(o, "last_reload", lr);
	json_object_set_new(o, "counters", counters_json(d));
	json_object_set_new(o, "log_format", json_string(edge_log_format_name(d->cfg.log_format)));
	json_object_set_new(o, "metrics_listen",
			    d->cfg.metrics_on ? json_string(d->cfg.metrics_listen.text)
					      : json_null());
	json_object_set_new(o, "crl_fetch",
			    d->crlfetch ? edge_crlfetch_json(d->crlfetch) : json_string("off"));
	json_object_set_new(o, "fleet",
			    d->replica ? edge_replica_json(d->replica) : json_string("off"));
	labelled_json(d, o);
	return o;
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void reply(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s) {
		size_t len = strlen(s);

		s[len] = '\n';            /* json_dumps leaves room for the NUL we replace */
		send_all(fd, s, len + 1); /* the metrics can be larger than one send */
		free(s);
	}
	json_decref(o);
}

void edge_admin_serve(struct edge_daemon *d, int lfd, struct edge_store *st)
{
	struct timeval tv = { .tv_sec = 2 };
	char line[128];
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < sizeof(line) - 1 &&
	       (n = recv(fd, line + len, sizeof(line) - 1 - len, 0)) > 0) {
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strcmp(line, "reload")) {
		json_t *o = json_object();
		int rc = edge_admin_reload(d, st, "admin socket");

		json_object_set_new(o, "ok", json_boolean(rc == 0));
		json_object_set_new(o, "generation", json_integer(atomic_load(&d->generation)));
		if (rc) {
			pthread_mutex_lock(&d->status_lock);
			json_object_set_new(o, "error", json_string(d->last_reload_error));
			pthread_mutex_unlock(&d->status_lock);
		}
		reply(fd, o);
	} else if (!strcmp(line, "status")) {
		reply(fd, status_json(d));
	} else if (!strcmp(line, "crl-refresh")) {
		json_t *o = json_object();

		if (d->crlfetch)
			edge_crlfetch_refresh(d->crlfetch);
		json_object_set_new(o, "ok", json_boolean(d->crlfetch != NULL));
		if (!d->crlfetch)
			json_object_set_new(o, "error", json_string("[crl] fetch is off"));
		reply(fd, o);
	} else if (!strcmp(line, "metrics")) {
		struct edge_mbuf b = { 0 };
		json_t *o = json_object();

		edge_metrics_render(d, &b);
		json_object_set_new(o, "ok", json_boolean(!b.oom));
		if (b.oom)
			json_object_set_new(o, "error", json_string("out of memory"));
		else
			json_object_set_new(o, "text", json_stringn(b.p ? b.p : "", b.len));
		json_object_set_new(o, "content_type", json_string(EDGE_METRICS_CONTENT_TYPE));
		edge_mbuf_free(&b);
		reply(fd, o);
	} else {
		json_t *o = json_object();

		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error",
				    json_string("unknown request (want reload, status or metrics)"));
		reply(fd, o);
	}
	close(fd);
}

int edge_admin_http_open(struct edge_addr *a, char *err, size_t errlen)
{
	int fd, one = 1, rc;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a->ss, a->len) || listen(fd, 16))
		goto fail;
	a->len = sizeof(a->ss);
	getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
	edge_addr_format((struct sockaddr *)&a->ss, a->text, sizeof(a->text));
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "cannot listen for metrics on %s: %s", a->text, strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}

static void http_reply(int fd, const char *status, const char *type, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, type, len);

	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

/* One request per connection, read within a second: a client that sends
 * nothing holds the main thread for that long at most. */
void edge_admin_http_serve(struct edge_daemon *d, int lfd)
{
	struct timeval tv = { .tv_sec = 1 };
	char req[2048], *sp;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 2;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1 && (n = recv(fd, req + len, sizeof(req) - 1 - len, 0)) > 0) {
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[len] = '\0';
	req[strcspn(req, "\r\n")] = '\0';
	/* "GET /metrics HTTP/1.1", a query string allowed. */
	sp = strchr(req, ' ');
	if (!strncmp(req, "GET /metrics", 12) && (req[12] == ' ' || req[12] == '?') && sp) {
		struct edge_mbuf b = { 0 };

		edge_metrics_render(d, &b);
		if (b.oom)
			http_reply(fd, "500 Internal Server Error", "text/plain", "out of memory\n",
				   14);
		else
			http_reply(fd, "200 OK", EDGE_METRICS_CONTENT_TYPE, b.p ? b.p : "", b.len);
		edge_mbuf_free(&b);
	} else {
		static const char nf[] = "404 Not Found: the metrics are at GET /metrics\n";

		http_reply(fd, "404 Not Found", "text/plain", nf, sizeof(nf) - 1);
	}
	close(fd);
}
