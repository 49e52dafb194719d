/* The watch of the etcd client: etcd.h. A handle of its own per watch, driven by a multi handle
 * so that *stop is looked at every WATCH_POLL_MS; etcd's stream is one JSON object a line. */
#include "etcd_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WATCH_POLL_MS 200
#define KEEPALIVE_IDLE_S 5 /* a watch's TCP keepalive: idle, interval, probes */
#define KEEPALIVE_INTVL_S 5
#define KEEPALIVE_CNT 3

struct watch {
	struct edge_etcd *e;
	CURL *h;
	const char *ep;
	edge_etcd_watch_fn fn;
	void *arg;
	int64_t *compacted;
	struct edge_etcd_body in; /* what came and is not a whole message yet (or a refusal) */
	bool started;             /* a first message came: a failure now ends the watch */
	bool ended;               /* rc says how */
	bool stale;               /* the token was refused: authenticate again and retry */
	bool unreached;           /* the endpoint did not answer: try the next one */
	int rc;
	char *err;
	size_t errlen;
};

static int watch_end(struct watch *w, int rc)
{
	w->ended = true;
	w->rc = rc;
	return rc;
}

static int watch_events(struct watch *w, const json_t *res, int64_t rev)
{
	const json_t *evs = json_object_get(res, "events"), *ev;
	struct edge_etcd_kv *v = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (evs && !json_is_array(evs))
		return -EPROTO;
	if (json_array_size(evs) && !(v = calloc(json_array_size(evs), sizeof(*v))))
		return -ENOMEM;
	json_array_foreach(evs, i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));

		if ((rc = edge_etcd_kv_from(json_object_get(ev, "kv"),
					    type && !strcmp(type, "DELETE"), &v[n])))
			break;
		n++;
	}
	w->started = true;
	if (!rc && (rc = w->fn(w->arg, v, n, rev)))
		watch_end(w, rc);
	for (i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
	return rc;
}

/* One message of the stream: {"result": {...}} or {"error": {...}}. */
static void watch_message(struct watch *w, const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL), *res = json_object_get(j, "result");
	struct edge_etcd_body b = { .p = (char *)p, .n = n };
	struct edge_etcd_refusal r = { 0 };
	int64_t rev = 0, comp = 0;
	const char *reason;
	int rc;

	if (!json_is_object(res)) {
		edge_etcd_refusal_of(&b, &r);
		if (!json_is_object(j) || (!r.code && !r.msg[0]))
			edge_etcd_fail(w->err, w->errlen, watch_end(w, -EPROTO),
				       "etcd %s: a watch message we cannot read", w->ep);
		else
			edge_etcd_fail(w->err, w->errlen, watch_end(w, edge_etcd_errno(&r)),
				       "etcd %s: %s", w->ep, r.msg);
		w->stale = edge_etcd_auth_stale(&r);
	} else if (edge_etcd_header_revision(res, &rev) ||
		   edge_etcd_int64(res, "compact_revision", &comp)) {
		edge_etcd_fail(w->err, w->errlen, watch_end(w, -EPROTO),
			       "etcd %s: a watch message we cannot read", w->ep);
	} else if (json_is_true(json_object_get(res, "canceled"))) {
		if (comp > 0) {
			if (w->compacted)
				*w->compacted = comp;
			edge_etcd_fail(
				w->err, w->errlen, watch_end(w, -ERANGE),
				"etcd %s: the watch's start revision was compacted (etcd keeps from "
				"revision %" PRId64 ")",
				w->ep, comp);
		} else {
			reason = json_string_value(json_object_get(res, "cancel_reason"));
			edge_etcd_msg(reason ? reason : "the watch was canceled", r.msg,
				      sizeof(r.msg));
			r.code = reason && strstr(reason, "code = Unauthenticated")
					 ? EDGE_GRPC_UNAUTHENTICATED
				 : reason && strstr(reason, "PermissionDenied")
					 ? EDGE_GRPC_PERMISSION_DENIED
					 : 0;
			w->stale = edge_etcd_auth_stale(&r);
			edge_etcd_fail(w->err, w->errlen,
				       watch_end(w, w->stale ? -EACCES : edge_etcd_errno(&r)),
				       "etcd %s: %s", w->ep, r.msg);
		}
	} else if ((rc = watch_events(w, res, rev)) && !w->ended) {
		edge_etcd_fail(w->err, w->errlen, watch_end(w, rc), "etcd %s: %s", w->ep,
			       rc == -ENOMEM ? "out of memory" : "a watch event we cannot read");
	}
	json_decref(j);
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
	struct watch *w = arg;
	size_t len = size * nmemb, used = 0;
	long status = 0;
	char *nl;
	int rc;

	if (w->ended)
		return 0;
	if ((rc = edge_etcd_body_add(&w->in, data, len))) {
		edge_etcd_fail(w->err, w->errlen, watch_end(w, rc == -EFBIG ? -EPROTO : rc),
			       "etcd %s: %s", w->ep,
			       rc == -EFBIG ? "a watch message over the size limit"
					    : "out of memory");
		return 0;
	}
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return len; /* a refusal: read when the answer has ended */
	while (!w->ended && (nl = memchr(w->in.p + used, '\n', w->in.n - used))) {
		size_t n = (size_t)(nl - (w->in.p + used));

		if (n)
			watch_message(w, w->in.p + used, n);
		used += n + 1;
	}
	memmove(w->in.p, w->in.p + used, w->in.n - used);
	w->in.n -= used;
	return w->ended ? 0 : len;
}

/* A watch's dead connection is found within about KEEPALIVE_IDLE + CNT * INTVL seconds. */
static int on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	int cnt = KEEPALIVE_CNT;

	if (purpose == CURLSOCKTYPE_IPCXN)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	return CURL_SOCKOPT_OK;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives the transfer until it ends, *stop, or the watch has ended. 1: stopped. */
static int watch_run(struct watch *w, CURLM *m, const volatile bool *stop, CURLcode *cc)
{
	int64_t deadline = now_ms() + w->e->timeout_ms;
	int running = 1;

	*cc = CURLE_OK;
	while (running && !w->ended) {
		CURLMcode mc;
		CURLMsg *msg;
		int q;

		if (stop && *stop)
			return 1;
		if (!w->started && now_ms() > deadline) {
			*cc = CURLE_OPERATION_TIMEDOUT;
			snprintf(w->err, w->errlen, "etcd %s: no answer to the watch in %u ms",
				 w->ep, w->e->timeout_ms);
			if (w->e->token)
				w->e->silent = true; /* see edge_etcd_call */
			return 0;
		}
		mc = curl_multi_perform(m, &running);
		if (!mc && running)
			mc = curl_multi_poll(m, NULL, 0, WATCH_POLL_MS, NULL);
		if (mc) {
			edge_etcd_fail(w->err, w->errlen, watch_end(w, -EIO), "etcd: libcurl: %s",
				       curl_multi_strerror(mc));
			return 0;
		}
		while ((msg = curl_multi_info_read(m, &q)))
			if (msg->msg == CURLMSG_DONE)
				*cc = msg->data.result;
	}
	return 0;
}

/* A watch on endpoint i; w->unreached when it did not answer (nothing came yet: connect, TLS,
 * a 5xx, no answer in timeout_ms), to try the next one. */
static int watch_one(struct edge_etcd *e, size_t i, const char *body, struct watch *w,
		     const volatile bool *stop)
{
	char url[EDGE_ETCD_ENDPOINT_MAX + 64], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = edge_etcd_headers(e, true);
	CURLM *m = curl_multi_init();
	CURL *h = curl_easy_init();
	struct edge_etcd_refusal r;
	long status = 0;
	CURLcode cc;
	int rc;

	w->ep = e->eps[i];
	w->h = h;
	w->in.n = 0;
	if (!hdr || !m || !h) {
		rc = edge_etcd_fail(w->err, w->errlen, -ENOMEM, "etcd: out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", w->ep);
	edge_etcd_set_common(e, h, url, body, hdr, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)KEEPALIVE_IDLE_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)KEEPALIVE_INTVL_S);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	if (curl_multi_add_handle(m, h)) {
		rc = edge_etcd_fail(w->err, w->errlen, -ENOMEM, "etcd: out of memory");
		goto out;
	}
	if (watch_run(w, m, stop, &cc)) {
		rc = 0; /* *stop */
		goto out_remove;
	}
	if (w->ended) {
		rc = w->rc;
		goto out_remove;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	w->unreached = !w->started && (cc != CURLE_OK || status == 200 || status >= 500);
	rc = -ECONNRESET;
	if (cc == CURLE_OPERATION_TIMEDOUT && !w->started && !cerr[0])
		; /* watch_run said why */
	else if (cc != CURLE_OK)
		edge_etcd_fail(w->err, w->errlen, rc, "etcd %s: %s%s", w->ep,
			       w->started ? "the watch broke: " : "",
			       cerr[0] ? cerr : curl_easy_strerror(cc));
	else if (status == 200)
		edge_etcd_fail(w->err, w->errlen, rc, "etcd %s: the member ended the watch", w->ep);
	else if (status >= 500)
		edge_etcd_fail(w->err, w->errlen, rc, "etcd %s: HTTP status %ld", w->ep, status);
	else {
		edge_etcd_refusal_of(&w->in, &r);
		w->stale = edge_etcd_auth_stale(&r);
		if (r.code)
			rc = edge_etcd_fail(w->err, w->errlen, edge_etcd_errno(&r), "etcd %s: %s",
					    w->ep, r.msg);
		else
			rc = edge_etcd_fail(w->err, w->errlen, -EPROTO,
					    "etcd %s: the watch was refused: HTTP status %ld%s%s",
					    w->ep, status, r.msg[0] ? ": " : "", r.msg);
	}
out_remove:
	curl_multi_remove_handle(m, h);
out:
	if (h)
		curl_easy_cleanup(h);
	if (m)
		curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	return rc;
}

static int watch_endpoints(struct edge_etcd *e, const char *body, struct watch *w,
			   const volatile bool *stop)
{
	char *err = w->err;
	size_t errlen = w->errlen;
	char one[512];

	if (err && errlen)
		err[0] = '\0';
	w->err = one;
	w->errlen = sizeof(one);
	for (size_t k = 0; k < e->n_eps; k++) {
		size_t i = (e->cur + k) % e->n_eps;
		int rc;

		one[0] = '\0';
		w->unreached = false;
		rc = watch_one(e, i, body, w, stop);
		if (!w->unreached) {
			/* after a failure, the next watch starts with the next endpoint */
			e->cur = rc == -ECONNRESET ? (i + 1) % e->n_eps : i;
			if (rc && one[0])
				edge_etcd_fail(err, errlen, rc, "%s", one);
			w->err = err;
			w->errlen = errlen;
			return rc;
		}
		edge_etcd_err_add(err, errlen, one);
	}
	w->err = err;
	w->errlen = errlen;
	return -ECONNREFUSED;
}

int edge_etcd_watch(struct edge_etcd *e, const char *key, const char *end, int64_t start_revision,
		    edge_etcd_watch_fn on_events, void *arg, const volatile bool *stop,
		    int64_t *compacted, char *err, size_t errlen)
{
	json_t *cr = json_pack("{s:b}", "progress_notify", 1), *req;
	struct watch w = { .e = e, .fn = on_events, .arg = arg, .compacted = compacted };
	char *body = NULL;
	int rc;

	if (compacted)
		*compacted = 0;
	rc = cr ? edge_etcd_key_range(key, end, cr) : -ENOMEM;
	if (!rc && start_revision > 0 &&
	    json_object_set_new(cr, "start_revision", edge_etcd_jint(start_revision)))
		rc = -ENOMEM;
	req = rc ? NULL : json_pack("{s:O}", "create_request", cr);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	json_decref(cr);
	if (!body)
		return edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	for (int attempt = 0;; attempt++) {
		if (stop && *stop) {
			rc = 0;
			break;
		}
		w.err = err;
		w.errlen = errlen;
		w.ended = w.started = w.stale = false;
		e->silent = false;
		rc = edge_etcd_need_token(e, err, errlen);
		if (!rc)
			rc = watch_endpoints(e, body, &w, stop);
		/* a new token for a refused or unanswered one, as edge_etcd_call does */
		if (e->user && !attempt && !w.started &&
		    ((rc == -EACCES && w.stale) || (rc == -ECONNREFUSED && e->silent))) {
			edge_etcd_drop_token(e);
			continue;
		}
		if (rc == -ECONNREFUSED || rc == -ECONNRESET)
			edge_etcd_drop_token(e);
		break;
	}
	free(w.in.p);
	free(body);
	return rc;
}
