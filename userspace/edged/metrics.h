/*
 * Metrics: the Prometheus text exposition format (version 0.0.4) and the
 * labelled counters behind it. Served by the admin socket (`metrics`) and by
 * the optional HTTP endpoint ([metrics] listen, GET /metrics).
 *
 * Label space is bounded: host is the SNI object a client reached (its
 * configured hostname, at most EDGE_METRICS_MAX_HOSTS of them) or "_other";
 * ca is "builtin", an uploaded CA's name, "_none" (no configured CA issued
 * the leaf) or "_other" past EDGE_METRICS_MAX_CAS; protocol an ALPN token of
 * an SNI object's list, "_none" (none negotiated) or "_other" past
 * EDGE_METRICS_MAX_ALPN. Nothing a client sends
 * becomes a label.
 */
#ifndef EDGE_METRICS_H
#define EDGE_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expiry.h"
#include "policy.h"
#include "reason.h"
#include "verify.h"

/* A growing text buffer; on allocation failure it stops growing and says so. */
#define EDGE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct edge_mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void edge_mbuf_printf(struct edge_mbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void edge_mbuf_free(struct edge_mbuf *b);

/* A label value: \ -> \\, " -> \", newline -> \n. Returns the length. */
size_t edge_metrics_escape_label(char *out, size_t len, const char *v);
/* # HELP (\ and newline escaped) and # TYPE lines of one family. */
void edge_metrics_family(struct edge_mbuf *b, const char *name, const char *type, const char *help);
/* One sample; labels are "key", "value" pairs ending with NULL (or labels NULL). */
void edge_metrics_sample(struct edge_mbuf *b, const char *name, const char *const *labels,
			 long long v);
void edge_metrics_sample_u(struct edge_mbuf *b, const char *name, const char *const *labels,
			   unsigned long long v);

#define EDGE_METRICS_MAX_HOSTS 128
#define EDGE_METRICS_MAX_CAS 10  /* _none, _other, builtin, uploaded CAs */
#define EDGE_METRICS_MAX_ALPN 16 /* _none, _other, the SNI objects' ALPN tokens */
#define EDGE_METRICS_VERDICTS (EDGE_VERDICT_REFUSE + 2) /* the verdicts, then "fail" */
#define EDGE_METRICS_FAIL (EDGE_VERDICT_REFUSE + 1)
/* Failure reasons: the verifier's (but ok), the handshake's own, "other" (reason.h). */
#define EDGE_METRICS_FAIL_REASONS EDGE_HS_FAIL_INDEXES

struct edge_ca_subject {
	char subject[256];
	int ca; /* index into cas[] */
};

/* One worker's labelled counters: written by that worker alone, without a
 * lock; read racily (64-bit loads) and summed when they are shown. */
struct edge_metrics_worker {
	uint64_t handshakes[EDGE_METRICS_MAX_HOSTS][EDGE_METRICS_VERDICTS];
	uint64_t verify_failures[EDGE_METRICS_MAX_HOSTS][EDGE_REASON_COUNT][EDGE_METRICS_MAX_CAS];
	uint64_t fail_reasons[EDGE_METRICS_FAIL_REASONS]; /* failed handshakes, by reason */
	uint64_t alpn[EDGE_METRICS_MAX_HOSTS][EDGE_METRICS_MAX_ALPN]; /* completed, by protocol */
	/* the worker's copy of the CA subjects, as of the scan numbered subjects_gen */
	uint64_t subjects_gen;
	struct edge_ca_subject *subjects;
	size_t n_subjects;
};

struct edge_metrics {
	pthread_mutex_t lock;                /* the label tables and the expiry scan */
	char *hosts[EDGE_METRICS_MAX_HOSTS]; /* [0] "_other" */
	size_t n_hosts;
	char *cas[EDGE_METRICS_MAX_CAS];    /* [0] "_none", [1] "_other", [2] "builtin" */
	char *alpns[EDGE_METRICS_MAX_ALPN]; /* [0] "_none", [1] "_other", then ALPN tokens */
	size_t n_alpns;
	size_t n_cas;
	struct edge_ca_subject *subjects; /* the current CAs, from the last expiry scan */
	size_t n_subjects;
	atomic_uint_fast64_t subjects_gen; /* bumped with every new subjects table */
	struct edge_metrics_worker *workers;
	size_t n_workers;
	/* The last expiry scan. */
	struct edge_expiry_item *expiry;
	size_t n_expiry;
	int64_t expiry_at;
	unsigned int warn_days;
	atomic_uint_fast64_t expiry_scans_failed;
};

/* The table, with n_workers workers' counters. */
int edge_metrics_new(struct edge_metrics **out, size_t n_workers);
void edge_metrics_free(struct edge_metrics *m);
/* Worker i's counters. */
struct edge_metrics_worker *edge_metrics_worker(struct edge_metrics *m, size_t i);

/* The label of an SNI object's hostname: its slot, given while there are
 * some (0, "_other", past EDGE_METRICS_MAX_HOSTS). Kept for the daemon's life. */
unsigned int edge_metrics_host_label(struct edge_metrics *m, const char *host);
struct edge_snapshot;
/* Gives every SNI object of s its host label and its ALPN tokens theirs (before s is
 * published). */
void edge_metrics_label_snapshot(struct edge_metrics *m, struct edge_snapshot *s);

/* A handshake ended, counted in the worker's table mw: verdict is an enum
 * edge_verdict or EDGE_METRICS_FAIL (refuse, logged as "fail", is counted as
 * fail); host its SNI object's label (0: none); fail_index the reason of a
 * failure (edge_hs_fail_index); vreason/issuer what the verifier found
 * (EDGE_REASON_OK when it found nothing wrong or never ran). */
void edge_metrics_handshake(struct edge_metrics *m, struct edge_metrics_worker *mw,
			    unsigned int host, int verdict, size_t fail_index,
			    enum edge_reason vreason, const char *issuer);
/* A handshake completed with the protocol labelled alpn (0: none negotiated). */
static inline void edge_metrics_alpn(struct edge_metrics_worker *mw, unsigned int host,
				     unsigned int alpn)
{
	if (host < EDGE_METRICS_MAX_HOSTS && alpn < EDGE_METRICS_MAX_ALPN)
		mw->alpn[host][alpn]++;
}
/* Every worker's counters summed into *out (allocated; free() it); NULL on ENOMEM. */
struct edge_metrics_worker *edge_metrics_sum(struct edge_metrics *m);
/* Takes the items of an expiry scan (and frees the previous ones); the CA
 * labels follow the scan's CAs. */
void edge_metrics_set_expiry(struct edge_metrics *m, struct edge_expiry_item *items, size_t n,
			     int64_t at, unsigned int warn_days);
/* The failure reasons' names, in fail_reasons[] order ("other" last). */
const char *edge_metrics_fail_reason_name(size_t i);

/* The scalar fields of struct edge_counters, for the exposition and for
 * status: a new counter in that struct needs one row here. */
struct edge_counter_field {
	const char *name; /* the field's name; the metric is mtls_edge_NAME_total */
	const char *help;
	size_t off;
};
extern const struct edge_counter_field edge_counter_fields[];

struct edge_daemon;
/* The whole exposition of the running daemon. */
void edge_metrics_render(struct edge_daemon *d, struct edge_mbuf *b);

#endif
