/*
 * etcd-probe: drives the etcd client of userspace/lib (etcd.h) for tests/e2e/etcd_client.bats.
 *
 *   etcd-probe --endpoints LIST [--ca F] [--cert F --key F] [--user U --password-file F]
 *              [--timeout-ms N] [--keep-going] COMMAND [ARGS] [-- COMMAND [ARGS]]...
 *
 * The commands run in order on one client (so that it keeps its endpoint and its token), up to
 * the first that fails (with --keep-going: all of them, the exit status 1 when one failed):
 *   put KEY VALUE             edge_etcd_put
 *   get KEY                   "VALUE mod=REV", or "absent"
 *   range PREFIX [END]        "revision=R count=N", then "KEY=VALUE mod=M create=C" per key
 *                             (with END: the keys in [PREFIX, END))
 *   count PREFIX [END]        "revision=R count=N first=KEY last=KEY sorted=yes|no"
 *   fill PREFIX N             N keys PREFIX00000.. (value v0..), EDGE_ETCD_TXN_MAX a transaction
 *   txn GUARD REV [OP]...     OP: KEY=VALUE (a put) or KEY (a delete); "ok revision=R"
 *   watch PREFIX START [EVENTS [PROGRESS]]
 *                             "created revision=R", then "put KEY=VALUE mod=M", "delete KEY mod=M"
 *                             and "progress revision=R" lines; "done" after EVENTS events or
 *                             PROGRESS progress notifications (0: no limit); SIGTERM or SIGINT
 *                             set the stop flag: "stopped"
 *   wait FILE                 until FILE exists (60 s at most)
 *   endpoint                  "endpoint=URL", the endpoint the last request used
 * A failure prints "error: ENAME: message" ("compacted=R" too for ERANGE) and exits 1; bad usage
 * exits 2.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"

static volatile bool stop;

static void on_signal(int sig)
{
	stop = true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: etcd-probe --endpoints LIST [--ca F] [--cert F --key F] "
		"[--user U --password-file F] [--timeout-ms N] [--keep-going] COMMAND [ARGS] "
		"[-- ...]\n");
	exit(2);
}

static int failed(int rc, const char *err, int64_t compacted)
{
	printf("error: %s: %s\n", strerrorname_np(-rc) ? strerrorname_np(-rc) : "?", err);
	if (rc == -ERANGE && compacted)
		printf("compacted=%" PRId64 "\n", compacted);
	return 1;
}

static int64_t num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || !*s || *end)
		usage();
	return v;
}

struct watch_state {
	int64_t max_events, max_progress, events, progress;
	bool created;
};

static int on_events(void *arg, const struct edge_etcd_kv *ev, size_t n, int64_t revision)
{
	struct watch_state *w = arg;

	if (!n) {
		printf("%s revision=%" PRId64 "\n", w->created ? "progress" : "created", revision);
		if (w->created && w->max_progress && ++w->progress >= w->max_progress)
			return 1;
		w->created = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (ev[i].value)
			printf("put %s=%s mod=%" PRId64 "\n", ev[i].key, ev[i].value,
			       ev[i].mod_revision);
		else
			printf("delete %s mod=%" PRId64 "\n", ev[i].key, ev[i].mod_revision);
	}
	w->events += (int64_t)n;
	return w->max_events && w->events >= w->max_events ? 1 : 0;
}

static int cmd_range(struct edge_etcd *e, const char *prefix, const char *end, bool summary)
{
	struct edge_etcd_kvs kvs;
	char err[1024];
	bool sorted = true;
	int rc = edge_etcd_range(e, prefix, end, &kvs, err, sizeof(err));

	if (rc)
		return failed(rc, err, 0);
	for (size_t i = 1; i < kvs.n; i++)
		sorted = sorted && strcmp(kvs.v[i - 1].key, kvs.v[i].key) < 0;
	printf("revision=%" PRId64 " count=%zu", kvs.revision, kvs.n);
	if (summary)
		printf(" first=%s last=%s sorted=%s", kvs.n ? kvs.v[0].key : "",
		       kvs.n ? kvs.v[kvs.n - 1].key : "", sorted ? "yes" : "no");
	printf("\n");
	for (size_t i = 0; !summary && i < kvs.n; i++)
		printf("%s=%s mod=%" PRId64 " create=%" PRId64 "\n", kvs.v[i].key, kvs.v[i].value,
		       kvs.v[i].mod_revision, kvs.v[i].create_revision);
	edge_etcd_kvs_free(&kvs);
	return 0;
}

static int cmd_fill(struct edge_etcd *e, const char *prefix, int64_t n)
{
	struct edge_etcd_op ops[EDGE_ETCD_TXN_MAX];
	char keys[EDGE_ETCD_TXN_MAX][256], values[EDGE_ETCD_TXN_MAX][32], err[1024];
	int64_t rev = 0;

	for (int64_t done = 0; done < n;) {
		size_t k = 0;
		int rc;

		for (; k < EDGE_ETCD_TXN_MAX && done < n; k++, done++) {
			snprintf(keys[k], sizeof(keys[k]), "%s%05" PRId64, prefix, done);
			snprintf(values[k], sizeof(values[k]), "v%" PRId64, done);
			ops[k] = (struct edge_etcd_op){ .key = keys[k], .value = values[k] };
		}
		rc = edge_etcd_txn(e, NULL, 0, ops, k, &rev, err, sizeof(err));
		if (rc)
			return failed(rc, err, 0);
	}
	printf("filled %" PRId64 " revision=%" PRId64 "\n", n, rev);
	return 0;
}

static int cmd_txn(struct edge_etcd *e, char **argv, int argc)
{
	struct edge_etcd_op ops[EDGE_ETCD_TXN_MAX + 8];
	char err[1024];
	int64_t rev = 0;
	size_t n = 0;
	int rc;

	if (argc < 2 || argc - 2 > EDGE_ETCD_TXN_MAX + 8)
		usage();
	for (int i = 2; i < argc; i++, n++) {
		char *eq = strchr(argv[i], '=');

		if (eq)
			*eq = '\0';
		ops[n] = (struct edge_etcd_op){ .key = argv[i], .value = eq ? eq + 1 : NULL };
	}
	rc = edge_etcd_txn(e, argv[0], num(argv[1]), ops, n, &rev, err, sizeof(err));
	if (rc) {
		printf("revision=%" PRId64 "\n", rev);
		return failed(rc, err, 0);
	}
	printf("ok revision=%" PRId64 "\n", rev);
	return 0;
}

static int cmd_watch(struct edge_etcd *e, char **argv, int argc)
{
	struct watch_state w = { 0 };
	int64_t compacted = 0;
	char err[1024];
	int rc;

	if (argc < 2)
		usage();
	w.max_events = argc > 2 ? num(argv[2]) : 0;
	w.max_progress = argc > 3 ? num(argv[3]) : 0;
	rc = edge_etcd_watch(e, argv[0], NULL, num(argv[1]), on_events, &w, &stop, &compacted, err,
			     sizeof(err));
	if (rc < 0)
		return failed(rc, err, compacted);
	printf("%s\n", rc ? "done" : "stopped");
	return 0;
}

static int cmd_wait(const char *file)
{
	for (int i = 0; i < 1200; i++) {
		if (!access(file, F_OK))
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
	printf("error: ETIMEDOUT: %s did not appear\n", file);
	return 1;
}

/* One command: argv[0] and its arguments. */
static int run(struct edge_etcd *e, char **argv, int argc)
{
	const char *c = argv[0];
	char err[1024], *value = NULL;
	int64_t rev = 0;
	int rc;

	if (!strcmp(c, "put") && argc == 3) {
		if ((rc = edge_etcd_put(e, argv[1], argv[2], err, sizeof(err))))
			return failed(rc, err, 0);
		printf("put %s\n", argv[1]);
	} else if (!strcmp(c, "get") && argc == 2) {
		if ((rc = edge_etcd_get(e, argv[1], &value, &rev, err, sizeof(err))))
			return failed(rc, err, 0);
		if (value)
			printf("%s mod=%" PRId64 "\n", value, rev);
		else
			printf("absent\n");
		free(value);
	} else if (!strcmp(c, "range") && (argc == 2 || argc == 3)) {
		return cmd_range(e, argv[1], argc == 3 ? argv[2] : NULL, false);
	} else if (!strcmp(c, "count") && (argc == 2 || argc == 3)) {
		return cmd_range(e, argv[1], argc == 3 ? argv[2] : NULL, true);
	} else if (!strcmp(c, "fill") && argc == 3) {
		return cmd_fill(e, argv[1], num(argv[2]));
	} else if (!strcmp(c, "txn")) {
		return cmd_txn(e, argv + 1, argc - 1);
	} else if (!strcmp(c, "watch")) {
		return cmd_watch(e, argv + 1, argc - 1);
	} else if (!strcmp(c, "wait") && argc == 2) {
		return cmd_wait(argv[1]);
	} else if (!strcmp(c, "endpoint") && argc == 1) {
		printf("endpoint=%s\n", edge_etcd_endpoint(e));
	} else {
		usage();
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "ca", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "keep-going", no_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	struct edge_etcd_opts o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct edge_etcd *e;
	char err[1024];
	bool keep_going = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			o.endpoints = optarg;
			break;
		case 'a':
			o.ca_file = optarg;
			break;
		case 'c':
			o.cert_file = optarg;
			break;
		case 'k':
			o.key_file = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'g':
			keep_going = true;
			break;
		case 't':
			o.timeout_ms = (unsigned int)num(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((rc = edge_etcd_new(&o, &e, err, sizeof(err))))
		return failed(rc, err, 0);
	rc = 0;
	for (int i = optind; (!rc || keep_going) && i < argc;) {
		int j = i;

		while (j < argc && strcmp(argv[j], "--"))
			j++;
		if (j == i)
			usage();
		rc |= run(e, argv + i, j - i);
		i = j + 1;
	}
	edge_etcd_free(e);
	return rc;
}
