/* The CRL fetcher: crlfetch.h. One thread, one libcurl easy handle per fetch, a mutex over the
 * table of distribution points (taken by the handshake only the first times a CA is seen). */
#include "crlfetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pki.h"
#include "verify.h"

#define RETRY_MIN_S 5
#define RETRY_MAX_S 600

struct dp {
	char url[EDGE_CRLFETCH_URL];
	char ca[128];   /* the anchor's name, and the intermediate's subject when it issues */
	X509 *issuer;   /* who signs the CRL: the anchor, or an intermediate under it */
	X509 *anchor;   /* the uploaded CA the chains end at */
	X509_CRL *good; /* the last good CRL, or NULL */
	int64_t last_attempt, last_ok, next_at, this_update, next_update;
	char number[48]; /* its CRLNumber, decimal */
	char error[200]; /* the last failure, "" after a success */
	unsigned int backoff_s;
	uint64_t ok, failed;
	size_t bytes;
};

struct edge_crlfetch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop;
	atomic_bool stopping; /* read by a fetch in progress, without the lock */
	int efd;
	unsigned int timeout_ms, max_bytes, refresh_max_s;
	struct dp dps[EDGE_CRLFETCH_MAX];
	size_t n;
	uint64_t dropped; /* distribution points not followed: the table was full */
};

bool edge_crl_dp_url(X509 *x, char *out, size_t len)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	bool found = false;

	for (int i = 0; !found && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

		/* a full CRL only: not one for some reasons, nor one another issuer signs */
		if (!dp->distpoint || dp->distpoint->type != 0 || dp->reasons || dp->CRLissuer)
			continue;
		for (int k = 0; !found && k < sk_GENERAL_NAME_num(dp->distpoint->name.fullname);
		     k++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, k);
			const unsigned char *v;
			int n;
			bool ok = true;

			if (g->type != GEN_URI)
				continue;
			v = ASN1_STRING_get0_data(g->d.ia5);
			n = ASN1_STRING_length(g->d.ia5);
			if (n < 8 || (size_t)n >= len || strncasecmp((const char *)v, "http://", 7))
				continue;
			for (int j = 0; j < n; j++)
				ok = ok && v[j] > 0x20 && v[j] < 0x7f;
			if (ok) {
				memcpy(out, v, (size_t)n);
				out[n] = '\0';
				found = true;
			}
		}
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_clear_error();
	return found;
}

static void wake_main(struct edge_crlfetch *f)
{
	uint64_t one = 1;

	if (write(f->efd, &one, sizeof(one)) != sizeof(one))
		pr_warn("crl: cannot wake the main thread: %s", strerror(errno));
}

struct body {
	unsigned char *p;
	size_t n, max;
	bool over;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb;
	unsigned char *p;

	if (b->n + len > b->max) {
		b->over = true;
		return 0; /* aborts the transfer */
	}
	p = realloc(b->p, b->n + len);
	if (!p)
		return 0;
	memcpy(p + b->n, data, len);
	b->p = p;
	b->n += len;
	return len;
}

/* GET url: 0 and the body, or an error in words. */
/* A fetch in progress ends when the daemon stops, not at its timeout. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct edge_crlfetch *f = arg;

	return atomic_load(&f->stopping) ? 1 : 0;
}

static int fetch(struct edge_crlfetch *f, const char *url, struct body *b, char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	long status = 0;

	b->max = f->max_bytes;
	if (!h) {
		snprintf(err, errlen, "libcurl: cannot make a handle");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max_bytes);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mtls-edged CRL fetcher");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (b->over || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "the CRL is larger than fetch_max_bytes (%u)", f->max_bytes);
		return -EFBIG;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "fetch failed: %s", cerr[0] ? cerr : curl_easy_strerror(rc));
		return -EIO;
	}
	if (status != 200) {
		snprintf(err, errlen, "fetch failed: HTTP status %ld", status);
		return -EIO;
	}
	return 0;
}

/* DER, as CRL distribution points serve them (RFC 5280 4.2.1.13), or PEM. */
static X509_CRL *parse_crl(const struct body *b)
{
	const unsigned char *p = b->p;
	X509_CRL *crl = NULL;

	if (b->n > 10 && !memcmp(b->p, "-----BEGIN", 10)) {
		BIO *bio = BIO_new_mem_buf(b->p, (int)b->n);

		crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
	} else if (b->n) {
		crl = d2i_X509_CRL(NULL, &p, (long)b->n);
		if (crl && p != b->p + b->n) { /* bytes after it: not a CRL file */
			X509_CRL_free(crl);
			crl = NULL;
		}
	}
	ERR_clear_error();
	return crl;
}

static void number_text(X509_CRL *crl, char *out, size_t len)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	BIGNUM *bn = n ? ASN1_INTEGER_to_BN(n, NULL) : NULL;
	char *dec = bn ? BN_bn2dec(bn) : NULL;

	snprintf(out, len, "%s", dec ? dec : "");
	OPENSSL_free(dec);
	BN_free(bn);
	ASN1_INTEGER_free(n);
}

/* When to fetch again after a good CRL: before its nextUpdate (by a tenth of its validity, at
 * least a minute), at least every refresh_max_s, never sooner than RETRY_MIN_S. */
static int64_t next_refresh(const struct edge_crlfetch *f, int64_t now, int64_t tu, int64_t nu)
{
	int64_t at = now + f->refresh_max_s;

	if (nu) {
		int64_t margin = (nu - tu) / 10;

		if (margin < 60)
			margin = 60;
		if (nu - margin < at)
			at = nu - margin;
	}
	return at < now + RETRY_MIN_S ? now + RETRY_MIN_S : at;
}

static int64_t backoff(struct dp *d, int64_t now)
{
	unsigned int s = d->backoff_s ? d->backoff_s * 2 : RETRY_MIN_S;

	if (s > RETRY_MAX_S)
		s = RETRY_MAX_S;
	d->backoff_s = s;
	/* jitter: up to a fifth more, so that a fleet does not come back at once */
	return now + s + (int64_t)((unsigned int)random() % (s / 5 + 1));
}

/* One fetch of d (the lock is not held); then the table is updated under it. */
static void fetch_one(struct edge_crlfetch *f, size_t i)
{
	char url[EDGE_CRLFETCH_URL], ca[128], err[200] = "";
	struct body b = { 0 };
	X509 *issuer;
	X509_CRL *crl = NULL, *held;
	int64_t now = time(NULL), next = 0;
	bool changed = false;
	struct dp *d;
	int rc;

	pthread_mutex_lock(&f->lock);
	d = &f->dps[i];
	snprintf(url, sizeof(url), "%s", d->url);
	snprintf(ca, sizeof(ca), "%s", d->ca);
	issuer = d->issuer;
	X509_up_ref(issuer);
	held = d->good;
	if (held)
		X509_CRL_up_ref(held);
	d->last_attempt = now;
	pthread_mutex_unlock(&f->lock);

	rc = fetch(f, url, &b, err, sizeof(err));
	if (!rc && !(crl = parse_crl(&b))) {
		snprintf(err, sizeof(err), "the response (%zu bytes) is not a CRL", b.n);
		rc = -EINVAL;
	}
	/* the same checks as `ca crl set`: the CA's name and signature, dates, usability */
	if (!rc && edge_pki_check_crl(crl, issuer, (time_t)now, &next, err, sizeof(err)))
		rc = -EINVAL;
	if (!rc && held && edge_crl_number_cmp(crl, held) < 0) {
		char a[48], h[48];

		number_text(crl, a, sizeof(a));
		number_text(held, h, sizeof(h));
		snprintf(err, sizeof(err), "older than the CRL held (CRLNumber %s < %s)", a, h);
		rc = -EINVAL;
	}

	pthread_mutex_lock(&f->lock);
	d = &f->dps[i];
	if (rc) {
		d->failed++;
		snprintf(d->error, sizeof(d->error), "%s", err);
		d->next_at = backoff(d, now);
	} else {
		int64_t tu = 0;

		edge_pki_asn1_time(X509_CRL_get0_lastUpdate(crl), &tu);
		changed = !held || X509_CRL_match(crl, held) != 0;
		d->ok++;
		d->error[0] = '\0';
		d->backoff_s = 0;
		d->last_ok = now;
		d->bytes = b.n;
		d->this_update = tu;
		d->next_update = next;
		d->next_at = next_refresh(f, now, tu, next);
		if (changed) {
			X509_CRL_free(d->good);
			d->good = crl;
			crl = NULL;
			number_text(d->good, d->number, sizeof(d->number));
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (rc)
		pr_warn("crl: %s (CA %s): %s; %s", url, ca, err,
			held ? "the last good CRL stays in use until its nextUpdate"
			     : "no CRL of it yet");
	else if (changed)
		pr_info("crl: %s (CA %s): a new CRL, reloading to use it", url, ca);
	if (!rc && changed)
		wake_main(f);
	X509_CRL_free(crl);
	X509_CRL_free(held);
	X509_free(issuer);
	free(b.p);
}

static void *run(void *arg)
{
	struct edge_crlfetch *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		int64_t now = time(NULL), soonest = now + 3600;
		size_t due = SIZE_MAX;
		struct timespec ts;

		for (size_t i = 0; i < f->n; i++) {
			if (f->dps[i].next_at <= now && due == SIZE_MAX)
				due = i;
			if (f->dps[i].next_at < soonest)
				soonest = f->dps[i].next_at;
		}
		if (due != SIZE_MAX) {
			pthread_mutex_unlock(&f->lock);
			fetch_one(f, due);
			pthread_mutex_lock(&f->lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += soonest > now ? soonest - now : 1;
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int edge_crlfetch_new(const struct edge_config *cfg, struct edge_crlfetch **out)
{
	struct edge_crlfetch *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->timeout_ms = cfg->crl_fetch_timeout_ms;
	f->max_bytes = cfg->crl_fetch_max_bytes;
	f->refresh_max_s = cfg->crl_refresh_max_s;
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) ||
	    pthread_create(&f->thread, NULL, run, f)) {
		if (f->efd >= 0)
			close(f->efd);
		free(f);
		return -EIO;
	}
	f->started = true;
	*out = f;
	return 0;
}

void edge_crlfetch_free(struct edge_crlfetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	atomic_store(&f->stopping, true);
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->started)
		pthread_join(f->thread, NULL);
	for (size_t i = 0; i < f->n; i++) {
		X509_free(f->dps[i].issuer);
		X509_free(f->dps[i].anchor);
		X509_CRL_free(f->dps[i].good);
	}
	close(f->efd);
	curl_global_cleanup();
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int edge_crlfetch_fd(const struct edge_crlfetch *f)
{
	return f->efd;
}

void edge_crlfetch_ack(struct edge_crlfetch *f)
{
	uint64_t v;

	while (read(f->efd, &v, sizeof(v)) == sizeof(v))
		;
}

void edge_crlfetch_learn(struct edge_crlfetch *f, X509 *issuer, X509 *anchor, const char *name,
			 const char *url)
{
	struct dp *d;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		if (!strcmp(f->dps[i].url, url) && !X509_cmp(f->dps[i].issuer, issuer) &&
		    !X509_cmp(f->dps[i].anchor, anchor)) {
			pthread_mutex_unlock(&f->lock);
			return;
		}
	}
	if (f->n == EDGE_CRLFETCH_MAX) {
		f->dropped++;
		pthread_mutex_unlock(&f->lock);
		pr_warn("crl: %s (CA %s) not followed: %d distribution points are already", url,
			name ? name : "?", EDGE_CRLFETCH_MAX);
		return;
	}
	d = &f->dps[f->n++];
	memset(d, 0, sizeof(*d));
	snprintf(d->url, sizeof(d->url), "%s", url);
	if (X509_cmp(issuer, anchor)) {
		char sub[96] = "";

		X509_NAME_oneline(X509_get_subject_name(issuer), sub, sizeof(sub));
		snprintf(d->ca, sizeof(d->ca), "%s %s", name ? name : "?", sub);
	} else {
		snprintf(d->ca, sizeof(d->ca), "%s", name ? name : "?");
	}
	X509_up_ref(issuer);
	X509_up_ref(anchor);
	d->issuer = issuer;
	d->anchor = anchor;
	d->next_at = 0; /* now */
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pr_info("crl: CA %s names the CRL %s: fetching it, then keeping it fresh", d->ca, url);
}

void edge_crlfetch_refresh(struct edge_crlfetch *f)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++)
		f->dps[i].next_at = 0;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void edge_crlfetch_get(struct edge_crlfetch *f, struct edge_crl_extra *out)
{
	out->n = 0;
	pthread_mutex_lock(&f->lock);
	out->v = f->n ? calloc(f->n, sizeof(*out->v)) : NULL;
	for (size_t i = 0; out->v && i < f->n; i++) {
		const struct dp *d = &f->dps[i];
		struct edge_crl_fetched *v = &out->v[out->n];

		if (!d->good)
			continue;
		X509_CRL_up_ref(d->good);
		X509_up_ref(d->anchor);
		v->crl = d->good;
		v->anchor = d->anchor;
		v->by_anchor = !X509_cmp(d->issuer, d->anchor);
		out->n++;
	}
	pthread_mutex_unlock(&f->lock);
}

void edge_crlfetch_put(struct edge_crl_extra *x)
{
	for (size_t i = 0; i < x->n; i++) {
		X509_CRL_free(x->v[i].crl);
		X509_free(x->v[i].anchor);
	}
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

static json_t *time_or_null(int64_t t)
{
	return t ? json_integer(t) : json_null();
}

json_t *edge_crlfetch_json(struct edge_crlfetch *f)
{
	json_t *a = json_array();
	int64_t now = time(NULL);

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; a && i < f->n; i++) {
		const struct dp *d = &f->dps[i];
		json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:I}", "url", d->url, "ca", d->ca,
				      "have_crl", d->good != NULL, "fetches_ok", (json_int_t)d->ok,
				      "fetches_failed", (json_int_t)d->failed);

		json_object_set_new(o, "crl_number",
				    d->number[0] ? json_string(d->number) : json_null());
		json_object_set_new(o, "this_update", time_or_null(d->this_update));
		json_object_set_new(o, "next_update", time_or_null(d->next_update));
		json_object_set_new(o, "age_s",
				    d->last_ok ? json_integer(now - d->last_ok) : json_null());
		json_object_set_new(o, "last_attempt", time_or_null(d->last_attempt));
		json_object_set_new(o, "next_refresh", json_integer(d->next_at));
		json_object_set_new(o, "stale",
				    json_boolean(d->good && d->next_update &&
						 d->next_update <= now));
		json_object_set_new(o, "last_error",
				    d->error[0] ? json_string(d->error) : json_null());
		json_object_set_new(o, "bytes", json_integer((json_int_t)d->bytes));
		json_array_append_new(a, o);
	}
	pthread_mutex_unlock(&f->lock);
	return a;
}

size_t edge_crlfetch_stats(struct edge_crlfetch *f, struct edge_crl_stat *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (; n < f->n && n < max; n++) {
		const struct dp *d = &f->dps[n];

		snprintf(out[n].ca, sizeof(out[n].ca), "%s", d->ca);
		snprintf(out[n].url, sizeof(out[n].url), "%s", d->url);
		out[n].ok = d->ok;
		out[n].failed = d->failed;
		out[n].last_ok = d->last_ok;
		out[n].next_update = d->next_update;
		out[n].failing = d->error[0] != '\0';
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}
