/* mtls-edged: options, start-up and tear-down order only. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "crlfetch.h"
#include "replica.h"
#include "daemon.h"
#include "enforce.h"
#include "handshake.h"
#include "ktls.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "worker.h"

#define EDGE_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mtls-edged [-c FILE] [--state DIR] [--listen ADDR:PORT]... [--workers N]\n"
		"                  [--log-level LEVEL] [--ktls auto|on|off] [--bpf auto|on|off]\n"
		"                  [--bpf-pin-dir DIR] [--log-format text|logfmt|json]\n"
		"                  [--metrics-listen ADDR:PORT] [--default-sni HOST] [--check]\n"
		"\n"
		"The mtls-edge data plane: terminates TLS, verifies client certificates per\n"
		"hostname against the state store that mtls-edgectl manages, relays verified\n"
		"connections to each SNI object's upstream.\n"
		"\n"
		"  -c, --config FILE     INI configuration (see config/mtls-edged.conf)\n"
		"      --state DIR       state directory (default %s)\n"
		"      --listen 'ADDR:PORT [mtls=MODE]'  listen address; repeatable; replaces the\n"
		"                        file's; mtls=off|optional|required: that listener's own\n"
		"                        mTLS mode for every SNI object (off: no client certificate)\n"
		"      --workers N       io_uring event loops (default 2)\n"
		"      --log-level L     error, warn, info or debug\n"
		"      --log-format F    text (default), logfmt or json\n"
		"      --default-sni HOST  the SNI object for clients that send no SNI (as the file's\n"
		"                        [tls] default_sni)\n"
		"      --metrics-listen ADDR:PORT  serve GET /metrics there (loopback only\n"
		"                        unless [metrics] allow_remote = yes); off to disable\n"
		"      --ktls MODE       auto, on (refuse to start without kTLS) or off\n"
		"      --bpf MODE        eBPF enforcement: auto, on (refuse to start without it) or off\n"
		"      --bpf-pin-dir DIR where its maps are pinned (default /sys/fs/bpf/mtls-edge)\n"
		"      --check           load the configuration and the store, then exit\n"
		"  -h, --help            this text\n"
		"      --version         the version\n"
		"\n"
		"Signals: SIGHUP reloads the store, SIGTERM drains and exits.\n",
		EDGE_DEFAULT_STATE_DIR);
}

struct cli {
	const char *config;
	const char *state;
	const char *listen[EDGE_MAX_LISTEN];
	int n_listen;
	const char *workers;
	const char *log_level;
	const char *log_format;
	const char *metrics_listen;
	const char *ktls;
	const char *bpf;
	const char *bpf_pin_dir;
	const char *default_sni;
	bool check;
};

static int parse_cli(int argc, char **argv, struct cli *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "check", no_argument, NULL, 'C' },
		{ "ktls", required_argument, NULL, 'K' },
		{ "bpf", required_argument, NULL, 'B' },
		{ "bpf-pin-dir", required_argument, NULL, 'P' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "metrics-listen", required_argument, NULL, 'M' },
		{ "default-sni", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->state = optarg;
			break;
		case 'l':
			if (o->n_listen == EDGE_MAX_LISTEN) {
				fprintf(stderr, "mtls-edged: at most %d --listen\n",
					EDGE_MAX_LISTEN);
				return 2;
			}
			o->listen[o->n_listen++] = optarg;
			break;
		case 'w':
			o->workers = optarg;
			break;
		case 'L':
			o->log_level = optarg;
			break;
		case 'C':
			o->check = true;
			break;
		case 'F':
			o->log_format = optarg;
			break;
		case 'M':
			o->metrics_listen = optarg;
			break;
		case 'K':
			o->ktls = optarg;
			break;
		case 'B':
			o->bpf = optarg;
			break;
		case 'P':
			o->bpf_pin_dir = optarg;
			break;
		case 'D':
			o->default_sni = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("mtls-edged %s\n", EDGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mtls-edged: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

static int apply_cli(struct edge_config *cfg, const struct cli *o, char *err, size_t errlen)
{
	int rc;

	if (o->config && (rc = edge_config_load(cfg, o->config, err, errlen)))
		return rc;
	if (o->state)
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", o->state);
	if (o->n_listen) {
		cfg->n_listen = 0;
		for (int i = 0; i < o->n_listen; i++) {
			if ((rc = edge_config_add_listen(cfg, o->listen[i], err, errlen))) {
				char e[300];

				snprintf(e, sizeof(e), "--listen: %s", err);
				snprintf(err, errlen, "%s", e);
				return rc;
			}
		}
	}
	if (o->default_sni && (rc = edge_config_set_default_sni(cfg, o->default_sni, err, errlen)))
		return rc;
	if (o->workers) {
		char *end;
		long v = strtol(o->workers, &end, 10);

		if (*end || v < 1 || v > EDGE_MAX_WORKERS) {
			snprintf(err, errlen, "--workers: '%s' is not a number from 1 to %d",
				 o->workers, EDGE_MAX_WORKERS);
			return -EINVAL;
		}
		cfg->workers = (int)v;
	}
	if (o->log_level && edge_log_parse_level(o->log_level, &cfg->log_level)) {
		snprintf(err, errlen, "--log-level: '%s' is not one of error, warn, info, debug",
			 o->log_level);
		return -EINVAL;
	}
	if (o->log_format && edge_log_parse_format(o->log_format, &cfg->log_format)) {
		snprintf(err, errlen, "--log-format: '%s' is not one of text, logfmt, json",
			 o->log_format);
		return -EINVAL;
	}
	if (o->metrics_listen) {
		char e[256];

		if (edge_config_set_metrics(cfg, o->metrics_listen, e, sizeof(e))) {
			snprintf(err, errlen, "--metrics-listen: %s", e);
			return -EINVAL;
		}
	}
	if (o->ktls && edge_ktls_mode_parse(o->ktls, &cfg->ktls)) {
		snprintf(err, errlen, "--ktls: '%s' is not one of auto, on, off", o->ktls);
		return -EINVAL;
	}
	if (o->bpf && edge_bpf_mode_parse(o->bpf, &cfg->bpf_mode)) {
		snprintf(err, errlen, "--bpf: '%s' is not one of auto, on, off", o->bpf);
		return -EINVAL;
	}
	if (o->bpf_pin_dir)
		snprintf(cfg->bpf_pin_dir, sizeof(cfg->bpf_pin_dir), "%s", o->bpf_pin_dir);
	return edge_config_validate(cfg, err, errlen);
}

static int check_state_dir(const char *dir, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(dir, &sb)) {
		snprintf(err, errlen,
			 "state directory %s: %s (create it with 'mtls-edgectl --state"
			 " %s init --site DOMAIN')",
			 dir, strerror(errno), dir);
		return -errno;
	}
	if (sb.st_mode & S_IWOTH) {
		snprintf(err, errlen,
			 "state directory %s is world-writable (mode %04o); anyone could"
			 " replace the store: run 'chmod o-w %s'",
			 dir, (unsigned int)(sb.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

static int open_listener(struct edge_addr *a, char *err, size_t errlen)
{
	int fd, one = 1, rc;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a->ss, a->len) || listen(fd, 4096))
		goto fail;
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* One listener per worker and address; port 0 becomes the first one's port. */
static int open_listeners(struct edge_daemon *d, char *err, size_t errlen)
{
	for (int a = 0; a < d->cfg.n_listen; a++) {
		struct edge_addr *addr = &d->cfg.listen[a];

		for (int i = 0; i < d->n_workers; i++) {
			struct edge_worker *w = &d->workers[i];
			int fd = open_listener(addr, err, errlen);

			if (fd < 0)
				return fd;
			w->listeners[a] = (struct edge_listener){ .fd = fd, .index = a, .w = w };
			w->n_listeners = a + 1;
			if (i == 0) {
				addr->len = sizeof(addr->ss);
				getsockname(fd, (struct sockaddr *)&addr->ss, &addr->len);
				edge_addr_format((struct sockaddr *)&addr->ss, addr->text,
						 sizeof(addr->text));
			}
		}
		snprintf(d->listen_text[a], sizeof(d->listen_text[a]), "%s", addr->text);
		d->n_listen_text = a + 1;
	}
	return 0;
}

static void close_listeners(struct edge_daemon *d)
{
	for (int i = 0; i < d->n_workers; i++)
		for (int a = 0; a < d->workers[i].n_listeners; a++)
			close(d->workers[i].listeners[a].fd);
}

/* kTLS is probed once; `ktls = on` without it refuses to start. */
static int edge_probe_ktls(struct edge_daemon *d)
{
	char why[256];

	if (d->cfg.ktls == EDGE_KTLS_OFF) {
		snprintf(d->ktls_status, sizeof(d->ktls_status),
			 "off (config): userspace TLS relay");
		return 0;
	}
	if (edge_ktls_probe(why, sizeof(why))) {
		if (d->cfg.ktls == EDGE_KTLS_ON) {
			pr_err("cannot start: ktls = on, but the kernel has no kTLS: %s", why);
			return -1;
		}
		snprintf(d->ktls_status, sizeof(d->ktls_status),
			 "unavailable: %s; userspace TLS relay", why);
		pr_warn("kTLS unavailable (%s): verified sessions use the userspace TLS relay",
			why);
		return 0;
	}
	d->ktls = true;
	snprintf(d->ktls_status, sizeof(d->ktls_status), "available: splice relay");
	return 0;
}

#define EDGE_EXPIRY_CHECK_MS (3600u * 1000u)

/* The main thread: signals, the admin socket, the metrics endpoint, the
 * store's generation, a fetched CRL, and the hourly expiry check. */
static void main_loop(struct edge_daemon *d, struct edge_store *st, int sfd, int afd, int mfd)
{
	uint64_t next_expiry = edge_now_ms() + EDGE_EXPIRY_CHECK_MS;

	while (!atomic_load(&d->stopping)) {
		struct pollfd p[5] = { { .fd = sfd, .events = POLLIN },
				       { .fd = afd, .events = POLLIN },
				       { .fd = mfd, .events = POLLIN },
				       { .fd = d->crlfetch ? edge_crlfetch_fd(d->crlfetch) : -1,
					 .events = POLLIN },
				       { .fd = d->replica ? edge_replica_fd(d->replica) : -1,
					 .events = POLLIN } };
		int64_t gen;

		/* an fd of -1 is skipped by poll */
		if (poll(p, 5, (int)d->cfg.reload_poll_ms) < 0 && errno != EINTR)
			break;
		if (p[4].revents & POLLIN) {
			edge_replica_ack(d->replica);
			edge_admin_reload(d, st, "fleet revision");
		}
		if (p[3].revents & POLLIN) {
			edge_crlfetch_ack(d->crlfetch);
			edge_admin_reload(d, st, "CRL fetched");
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					edge_admin_reload(d, st, "SIGHUP");
				} else {
					pr_info("signal %s: draining connections (at most %u ms)",
						strsignal((int)si.ssi_signo),
						d->cfg.drain_timeout_ms);
					atomic_store(&d->stopping, true);
				}
			}
		}
		if (p[1].revents & POLLIN)
			edge_admin_serve(d, afd, st);
		if (mfd >= 0 && (p[2].revents & POLLIN))
			edge_admin_http_serve(d, mfd);
		if (edge_now_ms() >= next_expiry) {
			edge_admin_expiry_check(d, st, "hourly");
			next_expiry = edge_now_ms() + EDGE_EXPIRY_CHECK_MS;
		}
		/* A change made while the admin socket was unreachable still lands. */
		if (!edge_store_generation(st, &gen) && gen != atomic_load(&d->generation) &&
		    gen != d->failed_generation)
			edge_admin_reload(d, st, "store changed");
	}
}

int main(int argc, char **argv)
{
	struct edge_daemon d = { 0 };
	struct edge_store *st = NULL;
	struct edge_snapshot *snap = NULL;
	struct cli o = { 0 };
	char err[768] = "";
	sigset_t mask;
	int rc, sfd = -1, afd = -1, mfd = -1, started = 0;
	bool srclimit_ready = false;

	if ((rc = parse_cli(argc, argv, &o)))
		return rc;
	edge_config_defaults(&d.cfg);
	if ((rc = apply_cli(&d.cfg, &o, err, sizeof(err)))) {
		fprintf(stderr, "mtls-edged: %s\n", err);
		return 2;
	}
	edge_log_set_level(d.cfg.log_level);
	edge_log_set_format(d.cfg.log_format);
	pthread_mutex_init(&d.snap_lock, NULL);
	pthread_mutex_init(&d.status_lock, NULL);
	rc = 1;
	if (edge_metrics_new(&d.metrics, (size_t)d.cfg.workers)) {
		pr_err("cannot start: out of memory");
		goto out;
	}
	if (edge_probe_ktls(&d))
		goto out;
	if ((d.cfg.fleet.on && edge_replica_prepare(&d.cfg, err, sizeof(err))) ||
	    check_state_dir(d.cfg.state_dir, err, sizeof(err)) ||
	    edge_store_open(d.cfg.state_dir, EDGE_STORE_RDONLY, &st, err, sizeof(err)) ||
	    edge_handshake_init() ||
	    edge_snapshot_build(st, &d.cfg, edge_handshake_hooks(d.ktls, d.cfg.own_records), &snap,
				err, sizeof(err))) {
		pr_err("cannot start: %s", err[0] ? err : "TLS library initialisation failed");
		goto out;
	}
	edge_metrics_label_snapshot(d.metrics, snap);
	d.snap = snap;
	d.last_reload_ok = true;
	d.failed_generation = -1;
	d.last_reload_at = time(NULL);
	atomic_store(&d.generation, snap->generation);
	if (o.check) {
		printf("configuration and store OK: generation %lld, %zu SNI objects\n",
		       (long long)snap->generation, snap->n_sni);
		rc = 0;
		goto out;
	}
	edge_admin_expiry_check(&d, st, "start");
	afd = edge_admin_open(d.cfg.state_dir, err, sizeof(err));
	if (afd < 0) {
		pr_err("cannot start: %s", err);
		goto out;
	}
	if (d.cfg.metrics_on) {
		mfd = edge_admin_http_open(&d.cfg.metrics_listen, err, sizeof(err));
		if (mfd < 0) {
			pr_err("cannot start: %s", err);
			goto out;
		}
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	/* after the mask: the fetcher's thread inherits it (signals go to the signalfd) */
	if (d.cfg.crl_fetch && edge_crlfetch_new(&d.cfg, &d.crlfetch)) {
		pr_err("cannot start: the CRL fetcher did not start ([crl] fetch = off goes without)");
		goto out;
	}
	if (edge_srclimit_init(&d.srclimit, d.cfg.max_handshakes,
			       d.cfg.max_handshakes_per_source)) {
		pr_err("cannot start: out of memory");
		goto out;
	}
	srclimit_ready = true;
	d.n_workers = d.cfg.workers;
	d.workers = aligned_alloc(16, (size_t)d.n_workers * sizeof(*d.workers));
	if (d.workers)
		memset(d.workers, 0, (size_t)d.n_workers * sizeof(*d.workers));
	if (sfd < 0 || !d.workers) {
		pr_err("cannot start: %s", strerror(errno));
		goto out;
	}
	/* Port 0 becomes a real port here; the eBPF program needs the real ones. */
	if (open_listeners(&d, err, sizeof(err)) || edge_enforce_open(&d, err, sizeof(err))) {
		pr_err("cannot start: %s", err);
		close_listeners(&d);
		goto out;
	}
	for (int i = 0; i < d.n_workers; i++) {
		d.workers[i].id = i;
		d.workers[i].d = &d;
		d.workers[i].seen_seq = snap->seq;
		if (edge_worker_start(&d.workers[i])) {
			pr_err("cannot start worker %d", i);
			atomic_store(&d.stopping, true);
			for (int j = i; j < d.n_workers; j++)
				for (int a = 0; a < d.workers[j].n_listeners; a++)
					close(d.workers[j].listeners[a].fd);
			goto join;
		}
		started++;
	}
	for (int a = 0; a < d.n_listen_text; a++)
		if (d.cfg.listen_mtls[a] == EDGE_LISTEN_MTLS_SNI)
			pr_info("listening addr=%s", d.listen_text[a]);
		else /* its own mTLS mode, for every SNI object */
			pr_info("listening addr=%s mtls=%s", d.listen_text[a],
				edge_mtls_mode_name((enum edge_mtls_mode)d.cfg.listen_mtls[a]));
	pr_info("mtls-edged %s started: %d workers, state %s, generation %lld, %zu SNI objects,"
		" ktls=%s, bpf=%s",
		EDGE_VERSION, d.n_workers, d.cfg.state_dir, (long long)snap->generation,
		snap->n_sni, d.ktls_status, d.bpf_status);
	if (mfd >= 0)
		pr_info("metrics at http://%s/metrics", d.cfg.metrics_listen.text);
	/* a fleet edge serves its replica as it is, then follows etcd */
	if (d.cfg.fleet.on && edge_replica_new(&d, edge_handshake_hooks(d.ktls, d.cfg.own_records),
					       &d.replica, err, sizeof(err))) {
		pr_err("cannot start the fleet replica: %s", err);
		atomic_store(&d.stopping, true);
		goto join;
	}
	main_loop(&d, st, sfd, afd, mfd);
	rc = 0;
join:
	for (int i = 0; i < started; i++)
		pthread_join(d.workers[i].thread, NULL);
	if (rc == 0)
		pr_info("stopped");
out:
	edge_admin_close(afd, d.cfg.state_dir);
	if (mfd >= 0)
		close(mfd);
	edge_enforce_close(&d);
	edge_crlfetch_free(d.crlfetch);
	edge_replica_free(d.replica);
	if (sfd >= 0)
		close(sfd);
	free(d.workers);
	if (srclimit_ready)
		edge_srclimit_destroy(&d.srclimit);
	edge_snapshot_unref(d.snap);
	if (!d.snap)
		edge_snapshot_unref(snap);
	edge_store_close(st);
	edge_metrics_free(d.metrics);
	return rc;
}
