#include "admin.h"

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
#include "log.h"
#include "store.h"

static int admin_path(const char *dir, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if ((size_t)snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", dir,
			     EDGE_ADMIN_SOCKET) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "state directory path too long for the admin socket: %s", dir);
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
		snprintf(err, errlen, "another mtls-edged is running on %s (its admin socket %s"
			 " answers)", state_dir, sun.sun_path);
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

	edge_store_generation(st, &gen);
	rc = edge_snapshot_build(st, &d->cfg, edge_handshake_hooks(d->ktls), &s, err, sizeof(err));
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
		" %zu rules, %zu revoked", why, (long long)s->generation, s->n_sni, s->n_trust,
		s->n_rules, s->n_revoked);
	edge_daemon_swap_snapshot(d, s);
	return 0;
}

static json_t *counters_json(struct edge_daemon *d)
{
	struct edge_counters k;
	json_t *o = json_object(), *r = json_object(), *v = json_object();

	edge_daemon_counters(d, &k);
	for (int i = 0; i < EDGE_REASON_COUNT; i++)
		if (k.by_reason[i])
			json_object_set_new(r, edge_reason_name(i), json_integer((json_int_t)k.by_reason[i]));
	for (int i = 0; i <= EDGE_VERDICT_REFUSE; i++)
		json_object_set_new(v, edge_verdict_name(i), json_integer((json_int_t)k.verdict[i]));
#define C(name) json_object_set_new(o, #name, json_integer((json_int_t)k.name))
	C(accepted);
	C(handshakes_ok);
	C(handshakes_failed);
	C(unknown_sni);
	C(tls_errors);
	C(handshake_timeouts);
	C(handshake_cap_refused);
	C(handshake_source_refused);
	C(upstream_connect_failed);
	C(upstream_tls_failed);
	C(idle_timeouts);
	C(path_userspace);
	C(path_ktls);
	C(ktls_fallback);
	C(control_records);
	C(bytes_in);
	C(bytes_out);
	C(revoked_closed);
	C(flows_tagged);
	C(closed);
#undef C
	json_object_set_new(o, "verify_failures", r);
	json_object_set_new(o, "verdicts", v);
	json_object_set_new(o, "handshakes_inflight",
			    json_integer(atomic_load(&d->handshakes_inflight)));
	return o;
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
		if (!edge_flowtag_count(d->flowtag, &flows, &offenders)) {
			json_object_set_new(o, "tagged_flows", json_integer(flows));
			json_object_set_new(o, "offenders", json_integer(offenders));
		}
	}
	return o;
}

static json_t *status_json(struct edge_daemon *d)
{
	json_t *o = json_object(), *l = json_array(), *lr = json_object();
	unsigned int conns = 0;

	for (int i = 0; i < d->n_listen_text; i++)
		json_array_append_new(l, json_string(d->listen_text[i]));
	for (int i = 0; i < d->n_workers; i++)
		conns += __atomic_load_n(&d->workers[i].n_conns, __ATOMIC_RELAXED);
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
	json_object_set_new(o, "workers", json_integer(d->n_workers));
	json_object_set_new(o, "connections", json_integer(conns));
	json_object_set_new(o, "ktls", json_string(d->ktls_status));
	json_object_set_new(o, "bpf", bpf_json(d));
	json_object_set_new(o, "last_reload", lr);
	json_object_set_new(o, "counters", counters_json(d));
	return o;
}

static void reply(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s) {
		size_t len = strlen(s);

		s[len] = '\n'; /* json_dumps leaves room for the NUL we replace */
		if (send(fd, s, len + 1, MSG_NOSIGNAL) < 0)
			pr_debug("admin reply: %s", strerror(errno));
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
	while (len < sizeof(line) - 1 && (n = recv(fd, line + len, sizeof(line) - 1 - len, 0)) > 0) {
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
	} else {
		json_t *o = json_object();

		json_object_set_new(o, "ok", json_false());
		json_object_set_new(o, "error", json_string("unknown request (want reload or status)"));
		reply(fd, o);
	}
	close(fd);
}
