/* A fleet edge's replica of its cluster's keys in etcd: replica.h. */
#include "replica.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "fleet.h"
#include "log.h"
#include "snapshot.h"
#include "store.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define APPLY_WAIT_MS 2000 /* for the main thread's reload of a committed revision */
/* apply latency buckets (seconds): from the answer that completed a revision to its swap */
static const double buckets[EDGE_REPLICA_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1,
						      0.25,  0.5,  1,     2.5,  5 };
#define N_BUCKETS EDGE_REPLICA_BUCKETS

struct edge_replica {
	struct edge_daemon *d;
	const struct edge_tls_hooks *hooks; /* the daemon's, for the check of each revision */
	pthread_t thr;
	bool started;
	volatile bool stop;
	int wake_fd;
	struct edge_store *st; /* the thread's own read-write connection */
	struct edge_etcd *etcd;
	char prefix[EDGE_FLEET_PREFIX_MAX],
		end[EDGE_FLEET_END_MAX]; /* [prefix, end): configuration */
	char node[EDGE_FLEET_NODE_MAX + 1];
	bool synced;        /* the prefix was read since the last compaction or reset */
	bool held;          /* etcd was restored without revocations this edge has: it holds */
	int64_t seen_rev;   /* everything up to it is in fleet_kv (the thread's) */
	int64_t commit_rev; /* meta/commit's mod_revision in fleet_kv (the thread's) */
	unsigned int backoff_ms;
	/* under lock: status and metrics */
	pthread_mutex_t lock;
	int64_t applied_rev, rejected_rev, etcd_rev, last_apply_ms, last_contact;
	char rejected_reason[512], last_error[512];
	bool connected;
	uint64_t applied, rejected, reconnects, resyncs, backwards;
	uint64_t hist[N_BUCKETS + 1];
	double hist_sum;
};

static int64_t meta_int(struct edge_store *st, const char *key)
{
	char *v = NULL;
	int64_t n = 0;

	if (!edge_store_meta_get(st, key, &v) && v)
		n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

static int meta_put_int(struct edge_store *st, const char *key, int64_t v, char *err, size_t errlen)
{
	char b[32];

	snprintf(b, sizeof(b), "%lld", (long long)v);
	return edge_store_meta_set(st, key, b, err, errlen);
}

int edge_replica_prepare(const struct edge_config *cfg, char *err, size_t errlen)
{
	const struct edge_fleet_config *f = &cfg->fleet;
	char prefix[EDGE_FLEET_PREFIX_MAX], *role = NULL, *cluster = NULL;
	struct edge_store *st = NULL;
	int rc;

	if (!f->cluster[0]) {
		snprintf(err, errlen, "[fleet] etcd is set but cluster is not");
		return -EINVAL;
	}
	if ((rc = edge_fleet_prefix(f->cluster, prefix, sizeof(prefix), err, errlen)) ||
	    (f->node[0] && (rc = edge_fleet_node_ok(f->node, err, errlen))))
		return rc;
	if (!f->cert[0] != !f->key[0] || !f->user[0] != !f->password_file[0]) {
		snprintf(err, errlen,
			 "[fleet] cert and key go together, and so do user and"
			 " password_file");
		return -EINVAL;
	}
	rc = edge_store_open(cfg->state_dir, EDGE_STORE_CREATE, &st, err, errlen);
	if (rc)
		return rc;
	edge_store_meta_get(st, "fleet_role", &role);
	edge_store_meta_get(st, "fleet_cluster", &cluster);
	if (role && !strcmp(role, "edge") && cluster && strcmp(cluster, f->cluster)) {
		snprintf(err, errlen,
			 "%s is the replica of cluster %s, not %s: an edge of another cluster needs"
			 " a state directory of its own",
			 cfg->state_dir, cluster, f->cluster);
		rc = -EINVAL;
	} else if (role && strcmp(role, "edge")) {
		snprintf(err, errlen,
			 "%s holds the control store of cluster %s: an edge needs a state directory"
			 " of its own",
			 cfg->state_dir, cluster ? cluster : "?");
		rc = -EINVAL;
	} else if (!role) {
		sqlite3_stmt *q = edge_store_prepare(
			st, "SELECT (SELECT count(*) FROM sni) + (SELECT count(*) FROM ca)", err,
			errlen);
		int64_t n = -1;

		if (q && sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		if (n != 0) {
			snprintf(err, errlen,
				 "%s holds a configuration of its own (single-host): an edge's"
				 " replica needs a state directory of its own, which mtls-edged"
				 " makes",
				 cfg->state_dir);
			rc = -EINVAL;
		}
	}
	if (!rc && !(rc = edge_store_begin(st, err, errlen))) {
		if ((rc = edge_fleet_replica_init(st, err, errlen)) ||
		    (rc = edge_store_meta_set(st, "fleet_role", "edge", err, errlen)) ||
		    (rc = edge_store_meta_set(st, "fleet_cluster", f->cluster, err, errlen)))
			edge_store_rollback(st);
		else
			rc = edge_store_exec(st, "COMMIT", err, errlen);
	}
	free(role);
	free(cluster);
	edge_store_close(st);
	return rc;
}

/* ---- status ---- */

static void put_status(struct edge_replica *r)
{
	char key[EDGE_FLEET_PREFIX_MAX + 80], err[256], *v;
	json_t *o;

	pthread_mutex_lock(&r->lock);
	o = json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:s}", "applied_revision",
		      (json_int_t)r->applied_rev, "seen_revision", (json_int_t)r->seen_rev,
		      "rejected_revision", (json_int_t)r->rejected_rev, "apply_ms",
		      (json_int_t)r->last_apply_ms, "reason", r->rejected_reason, "generation",
		      (json_int_t)atomic_load(&r->d->generation), "at", (json_int_t)time(NULL),
		      "etcd", r->connected ? "connected" : "unreachable");
	pthread_mutex_unlock(&r->lock);
	v = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!v)
		return;
	snprintf(key, sizeof(key), "%s" EDGE_FLEET_STATUS_DIR "%s", r->prefix, r->node);
	if (edge_etcd_put(r->etcd, key, v, err, sizeof(err)))
		pr_debug("fleet: status not written: %s", err);
	free(v);
}

static void set_error(struct edge_replica *r, const char *err)
{
	pthread_mutex_lock(&r->lock);
	snprintf(r->last_error, sizeof(r->last_error), "%s", err);
	pthread_mutex_unlock(&r->lock);
}

/* ---- applying a revision ---- */

static void observe(struct edge_replica *r, uint64_t ms)
{
	double s = (double)ms / 1000.0;
	size_t i = 0;

	while (i < N_BUCKETS && s > buckets[i])
		i++;
	r->hist[i]++;
	r->hist_sum += s;
	r->last_apply_ms = (int64_t)ms;
}

/* In the open transaction: the tables rebuilt from fleet_kv and checked. 0: good, the
 * caller commits; otherwise rolled back to before the rebuild (fleet_kv stays). */
static int rebuild(struct edge_replica *r, char *err, size_t errlen)
{
	struct edge_snapshot *s = NULL;
	int rc;

	if ((rc = edge_store_exec(r->st, "SAVEPOINT fleet_apply", err, errlen)))
		return rc;
	rc = edge_fleet_import(r->st, err, errlen);
	if (!rc)
		rc = edge_snapshot_build(r->st, &r->d->cfg, r->hooks, &s, err, errlen);
	edge_snapshot_unref(s);
	if (rc) {
		char e2[256];

		edge_store_exec(r->st, "ROLLBACK TO fleet_apply", e2, sizeof(e2));
		edge_store_exec(r->st, "RELEASE fleet_apply", e2, sizeof(e2));
		return rc;
	}
	return edge_store_exec(r->st, "RELEASE fleet_apply", err, errlen);
}

/* Ends the transaction the thread opened: the revision commit_rev applied (or refused). */
static int finish(struct edge_replica *r, bool apply, uint64_t t0)
{
	char err[768] = "";
	int64_t rev = r->commit_rev, gen = 0;
	int rc = 0;

	if (apply)
		rc = rebuild(r, err, sizeof(err));
	if (apply && rc) {
		pr_err("fleet: revision %lld refused, the previous configuration keeps serving: %s",
		       (long long)rev, err);
		pthread_mutex_lock(&r->lock);
		r->rejected_rev = rev;
		r->rejected++;
		snprintf(r->rejected_reason, sizeof(r->rejected_reason), "%s", err);
		pthread_mutex_unlock(&r->lock);
		meta_put_int(r->st, "fleet_rejected_revision", rev, err, sizeof(err));
		edge_store_meta_set(r->st, "fleet_rejected_reason", r->rejected_reason, err,
				    sizeof(err));
		apply = false;
	}
	if (apply)
		meta_put_int(r->st, "fleet_revision", rev, err, sizeof(err));
	meta_put_int(r->st, "fleet_seen_revision", r->seen_rev, err, sizeof(err));
	/* the generation moves only with a configuration change */
	rc = apply ? edge_store_commit(r->st, err, sizeof(err))
		   : edge_store_exec(r->st, "COMMIT", err, sizeof(err));
	if (rc) {
		edge_store_rollback(r->st);
		pr_err("fleet: the replica could not be written: %s", err);
		set_error(r, err);
		r->synced = false; /* read it all again */
		return rc;
	}
	if (apply) {
		uint64_t n = 1;

		edge_store_generation(r->st, &gen);
		if (write(r->wake_fd, &n, sizeof(n)) < 0)
			pr_warn("fleet: cannot wake the main thread: %s", strerror(errno));
		for (int i = 0;
		     i < APPLY_WAIT_MS / 5 && atomic_load(&r->d->generation) < gen && !r->stop; i++)
			usleep(5000);
		pthread_mutex_lock(&r->lock);
		if (atomic_load(&r->d->generation) >= gen) {
			r->applied_rev = rev;
			r->applied++;
			r->rejected_reason[0] = '\0';
			observe(r, edge_now_ms() - t0);
		} else {
			/* the reload itself refused it (status says why) */
			r->rejected_rev = rev;
			r->rejected++;
			snprintf(r->rejected_reason, sizeof(r->rejected_reason),
				 "the daemon did not load generation %lld (see its last reload)",
				 (long long)gen);
		}
		pthread_mutex_unlock(&r->lock);
		pr_info("fleet: revision %lld applied (generation %lld) in %llu ms", (long long)rev,
			(long long)gen, (unsigned long long)(edge_now_ms() - t0));
	}
	if (apply || r->rejected_rev == rev)
		put_status(r);
	return 0;
}

/* A key of etcd's (absolute) into fleet_kv; our own prefix only, the edges' status never. */
static int take(struct edge_replica *r, const struct edge_etcd_kv *kv, bool *commit, char *err,
		size_t errlen)
{
	size_t plen = strlen(r->prefix);
	const char *rel = kv->key + plen;

	if (strncmp(kv->key, r->prefix, plen) ||
	    !strncmp(rel, EDGE_FLEET_STATUS_DIR, strlen(EDGE_FLEET_STATUS_DIR)))
		return 0;
	if (!strcmp(rel, EDGE_FLEET_COMMIT_KEY) && kv->value) {
		*commit = true;
		r->commit_rev = kv->mod_revision;
	}
	return edge_fleet_kv_set(r->st, rel, kv->value, kv->mod_revision, err, errlen);
}

/* The whole prefix again: fleet_kv replaced; applied when its meta/commit is not the one
 * applied (a compaction with no change applies nothing). */
/* etcd (restored from a backup) lacks revocations this edge has: it keeps its replica and the
 * configuration serving, refused and said in the log and status, and reads etcd again at every
 * meta/commit until they are back (the control's next publish, or 'fleet sync'). */
static void hold(struct edge_replica *r, int64_t revision, size_t lost, const char *list)
{
	pthread_mutex_lock(&r->lock);
	r->rejected_rev = revision;
	r->rejected++;
	snprintf(r->rejected_reason, sizeof(r->rejected_reason),
		 "etcd at revision %lld lacks %zu revocation%s this edge has (%s): a restore from"
		 " a backup older than them? This edge keeps its configuration, and no revoked"
		 " certificate gets in, until the control publishes again ('mtls-edgectl fleet"
		 " sync')",
		 (long long)revision, lost, lost == 1 ? "" : "s", list);
	pr_err("fleet: %s", r->rejected_reason);
	pthread_mutex_unlock(&r->lock);
	r->held = true;
	r->seen_rev = revision; /* the watch goes on from etcd's revision */
	put_status(r);
}

static int full_sync(struct edge_replica *r)
{
	struct edge_etcd_kvs kvs = { 0 };
	char err[768] = "", list[256] = "";
	bool commit = false, back;
	int64_t old_commit;
	size_t lost = 0;
	uint64_t t0 = edge_now_ms();
	int rc;

	rc = edge_etcd_range(r->etcd, r->prefix, r->end, &kvs, err, sizeof(err));
	if (rc) {
		set_error(r, err);
		pr_warn("fleet: cannot read cluster keys: %s", err);
		return rc;
	}
	pthread_mutex_lock(&r->lock);
	r->connected = true;
	r->etcd_rev = kvs.revision;
	r->last_contact = time(NULL);
	r->resyncs++;
	pthread_mutex_unlock(&r->lock);
	back = kvs.revision < r->seen_rev;
	if (back) {
		pr_warn("fleet: etcd's revision went BACK from %lld to %lld (etcd restored from a"
			" backup?): full resync, the configuration is taken as etcd has it now ('"
			"mtls-edgectl fleet sync' at the control publishes its own again)",
			(long long)r->seen_rev, (long long)kvs.revision);
		pthread_mutex_lock(&r->lock);
		r->backwards++;
		pthread_mutex_unlock(&r->lock);
	}
	if ((rc = edge_store_begin(r->st, err, sizeof(err))) ||
	    ((back || r->held) && (rc = edge_fleet_kv_keep_revoked(r->st, err, sizeof(err)))) ||
	    (rc = edge_fleet_kv_clear(r->st, err, sizeof(err)))) {
		edge_store_rollback(r->st);
		goto out;
	}
	old_commit = r->commit_rev;
	r->commit_rev = 0;
	for (size_t i = 0; !rc && i < kvs.n; i++)
		rc = take(r, &kvs.v[i], &commit, err, sizeof(err));
	if (!rc && (back || r->held))
		rc = edge_fleet_kv_lost_revoked(r->st, &lost, list, sizeof(list), err, sizeof(err));
	if (rc) {
		edge_store_rollback(r->st);
		r->commit_rev = old_commit;
		goto out;
	}
	if (lost) {
		edge_store_rollback(r->st);
		hold(r, kvs.revision, lost, list);
		r->commit_rev = old_commit;
		r->synced = true;
		goto out;
	}
	r->seen_rev = kvs.revision;
	r->held = false;
	pthread_mutex_lock(&r->lock);
	/* after a restore, whatever etcd has is applied anew */
	commit = r->commit_rev && (back || r->commit_rev != r->applied_rev);
	pthread_mutex_unlock(&r->lock);
	rc = finish(r, commit, t0);
	if (!rc)
		r->synced = true;
out:
	if (rc) {
		pr_err("fleet: full read not applied: %s", err);
		set_error(r, err);
	}
	edge_etcd_kvs_free(&kvs);
	return rc;
}

#define WATCH_RESYNC 1 /* on_events: the revision went backwards */

static int on_events(void *arg, const struct edge_etcd_kv *ev, size_t n, int64_t revision)
{
	struct edge_replica *r = arg;
	char err[768] = "";
	bool commit = false;
	uint64_t t0 = edge_now_ms();
	int rc;

	pthread_mutex_lock(&r->lock);
	r->connected = true;
	r->etcd_rev = revision;
	r->last_contact = time(NULL);
	r->backoff_ms = 0;
	pthread_mutex_unlock(&r->lock);
	if (revision < r->seen_rev)
		return WATCH_RESYNC; /* full_sync says it loudly */
	size_t mine = 0, plen = strlen(r->prefix);

	for (size_t i = 0; i < n; i++)
		mine += !strncmp(ev[i].key, r->prefix, plen) &&
			strncmp(ev[i].key + plen, EDGE_FLEET_STATUS_DIR,
				strlen(EDGE_FLEET_STATUS_DIR));
	if (!mine) {
		/* a progress notification (all up to it was sent) */
		r->seen_rev = revision;
		return 0;
	}
	if (r->held) {
		/* holding (hold()): at each publish, etcd is read again whole */
		for (size_t i = 0; i < n; i++)
			if (!strcmp(ev[i].key + plen, EDGE_FLEET_COMMIT_KEY))
				return WATCH_RESYNC;
		r->seen_rev = revision;
		return 0;
	}
	if ((rc = edge_store_begin(r->st, err, sizeof(err))))
		goto fail;
	for (size_t i = 0; !rc && i < n; i++)
		rc = take(r, &ev[i], &commit, err, sizeof(err));
	if (rc) {
		edge_store_rollback(r->st);
		goto fail;
	}
	r->seen_rev = revision;
	if (finish(r, commit, t0))
		return WATCH_RESYNC;
	return 0;
fail:
	pr_err("fleet: watch events not taken: %s", err);
	set_error(r, err);
	r->synced = false;
	return WATCH_RESYNC;
}

static void pause_ms(struct edge_replica *r, unsigned int ms)
{
	for (unsigned int t = 0; t < ms && !r->stop; t += 50)
		usleep(50 * 1000);
}

static void backoff(struct edge_replica *r)
{
	unsigned int b = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;

	if (b > BACKOFF_MAX_MS)
		b = BACKOFF_MAX_MS;
	r->backoff_ms = b;
	/* jitter: a fleet that lost etcd together does not come back together */
	pause_ms(r, b / 2 + (unsigned int)(random() % (b / 2 + 1)));
}

static void *run(void *arg)
{
	struct edge_replica *r = arg;

	while (!r->stop) {
		char err[768] = "";
		int64_t compacted = 0;
		int rc;

		if (!r->synced) {
			if (full_sync(r)) {
				pthread_mutex_lock(&r->lock);
				r->connected = false;
				pthread_mutex_unlock(&r->lock);
				backoff(r);
			}
			continue;
		}
		put_status(r);
		rc = edge_etcd_watch(r->etcd, r->prefix, r->end, r->seen_rev + 1, on_events, r,
				     &r->stop, &compacted, err, sizeof(err));
		if (r->stop)
			break;
		pthread_mutex_lock(&r->lock);
		r->reconnects++;
		pthread_mutex_unlock(&r->lock);
		if (rc == -ERANGE) {
			pr_info("fleet: revision %lld was compacted (etcd keeps from %lld): reading"
				" the cluster's keys again",
				(long long)(r->seen_rev + 1), (long long)compacted);
			r->synced = false;
			continue;
		}
		if (rc == WATCH_RESYNC) {
			r->synced = false;
			continue;
		}
		pr_warn("fleet: watch ended: %s; the last good configuration keeps serving",
			err[0] ? err : "etcd closed it");
		set_error(r, err[0] ? err : "watch ended");
		pthread_mutex_lock(&r->lock);
		r->connected = false;
		pthread_mutex_unlock(&r->lock);
		backoff(r);
	}
	return NULL;
}

int edge_replica_new(struct edge_daemon *d, const struct edge_tls_hooks *hooks,
		     struct edge_replica **out, char *err, size_t errlen)
{
	const struct edge_fleet_config *f = &d->cfg.fleet;
	const struct edge_etcd_opts o = {
		.endpoints = f->etcd,
		.ca_file = f->ca[0] ? f->ca : NULL,
		.cert_file = f->cert[0] ? f->cert : NULL,
		.key_file = f->key[0] ? f->key : NULL,
		.user = f->user[0] ? f->user : NULL,
		.password_file = f->password_file[0] ? f->password_file : NULL,
	};
	struct edge_replica *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->d = d;
	r->hooks = hooks;
	r->wake_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	if (f->node[0])
		snprintf(r->node, sizeof(r->node), "%s", f->node);
	else if (gethostname(r->node, sizeof(r->node)) || edge_fleet_node_ok(r->node, err, errlen))
		snprintf(r->node, sizeof(r->node), "edge-%ld", (long)getpid());
	if (!(rc = edge_fleet_prefix(f->cluster, r->prefix, sizeof(r->prefix), err, errlen)))
		edge_fleet_config_end(r->prefix, r->end, sizeof(r->end));
	if (rc || (rc = edge_etcd_new(&o, &r->etcd, err, errlen)) ||
	    (rc = edge_store_open(d->cfg.state_dir, 0, &r->st, err, errlen)))
		goto fail;
	r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->wake_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r->applied_rev = meta_int(r->st, "fleet_revision");
	r->seen_rev = meta_int(r->st, "fleet_seen_revision");
	r->rejected_rev = meta_int(r->st, "fleet_rejected_revision");
	/* A replica with a past resumes its watch from there (what changed while it was away);
	 * compacted meanwhile, it reads the whole prefix. A new one reads it first. */
	r->synced = r->seen_rev > 0;
	if ((rc = edge_store_begin(r->st, err, errlen)) ||
	    (rc = edge_store_meta_set(r->st, "fleet_node", r->node, err, errlen)) ||
	    (rc = edge_store_exec(r->st, "COMMIT", err, errlen))) {
		edge_store_rollback(r->st);
		goto fail;
	}
	edge_etcd_set_stop(r->etcd, &r->stop);
	srandom((unsigned int)(getpid() ^ time(NULL)));
	if (pthread_create(&r->thr, NULL, run, r)) {
		rc = -EAGAIN;
		snprintf(err, errlen, "cannot start the fleet thread");
		goto fail;
	}
	r->started = true;
	pr_info("fleet: node %s of cluster %s (etcd %s), replica at revision %lld", r->node,
		f->cluster, f->etcd, (long long)r->applied_rev);
	*out = r;
	return 0;
fail:
	edge_replica_free(r);
	return rc;
}

void edge_replica_free(struct edge_replica *r)
{
	if (!r)
		return;
	r->stop = true;
	if (r->started)
		pthread_join(r->thr, NULL);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	edge_etcd_free(r->etcd);
	edge_store_close(r->st);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int edge_replica_fd(const struct edge_replica *r)
{
	return r->wake_fd;
}

void edge_replica_ack(struct edge_replica *r)
{
	uint64_t n;

	if (read(r->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_debug("fleet: eventfd: %s", strerror(errno));
}

json_t *edge_replica_json(struct edge_replica *r)
{
	json_t *o;

	pthread_mutex_lock(&r->lock);
	o = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "node",
		      r->node, "prefix", r->prefix, "etcd_connected", r->connected,
		      "applied_revision", (json_int_t)r->applied_rev, "etcd_revision",
		      (json_int_t)r->etcd_rev, "rejected_revision", (json_int_t)r->rejected_rev,
		      "rejected_reason", r->rejected_reason, "last_error", r->last_error,
		      "apply_ms", (json_int_t)r->last_apply_ms, "reconnects",
		      (json_int_t)r->reconnects, "resyncs", (json_int_t)r->resyncs, "last_contact",
		      (json_int_t)r->last_contact);
	pthread_mutex_unlock(&r->lock);
	return o;
}

void edge_replica_stats(struct edge_replica *r, struct edge_replica_stat *out)
{
	uint64_t cum = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i <= N_BUCKETS; i++) {
		cum += r->hist[i];
		out->bucket_count[i] = cum;
		out->bucket_le[i] = i < N_BUCKETS ? buckets[i] : 0;
	}
	out->n_buckets = N_BUCKETS;
	out->apply_sum_s = r->hist_sum;
	out->applied = r->applied;
	out->rejected = r->rejected;
	out->reconnects = r->reconnects;
	out->resyncs = r->resyncs;
	out->backwards = r->backwards;
	out->applied_rev = r->applied_rev;
	out->etcd_rev = r->etcd_rev;
	out->connected = r->connected;
	pthread_mutex_unlock(&r->lock);
}
