/* The etcd v3 client: etcd.h. The client, its HTTP exchanges (one libcurl easy handle per client
 * for the unary calls: it keeps its connections between calls), authentication, and the JSON and
 * base64 that etcd_kv.c and etcd_watch.c share. */
#include "etcd_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define PASSWORD_MAX 1024
#define TOKEN_MAX 4096

int edge_etcd_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* err += "; " s: the failures of several endpoints in one message */
void edge_etcd_err_add(char *err, size_t errlen, const char *s)
{
	size_t n;

	if (!err || !errlen)
		return;
	n = strnlen(err, errlen);
	if (n + 1 < errlen)
		snprintf(err + n, errlen - n, "%s%s", n ? "; " : "", s);
}

/* etcd's message without its "rpc error: code = X desc = " and "etcdserver: " */
void edge_etcd_msg(const char *s, char *out, size_t len)
{
	const char *d = strstr(s, "desc = ");

	if (d)
		s = d + 7;
	if (!strncmp(s, "etcdserver: ", 12))
		s += 12;
	snprintf(out, len, "%s", s);
}

bool edge_etcd_auth_stale(const struct edge_etcd_refusal *r)
{
	return r->code == EDGE_GRPC_UNAUTHENTICATED || strstr(r->msg, "invalid auth token") ||
	       strstr(r->msg, "user name is empty");
}

int edge_etcd_errno(const struct edge_etcd_refusal *r)
{
	switch (r->code) {
	case EDGE_GRPC_PERMISSION_DENIED:
	case EDGE_GRPC_UNAUTHENTICATED:
		return -EACCES;
	case EDGE_GRPC_INVALID_ARGUMENT:
		return strstr(r->msg, "authentication failed") ||
				       strstr(r->msg, "user name is empty")
			       ? -EACCES
			       : -EINVAL;
	case EDGE_GRPC_NOT_FOUND:
		return -ENOENT;
	case EDGE_GRPC_RESOURCE_EXHAUSTED:
		return -EBUSY;
	case EDGE_GRPC_OUT_OF_RANGE:
		return -ERANGE;
	default:
		return -EIO;
	}
}

/* ---- base64 and JSON ---------------------------------------------------------------------- */

json_t *edge_etcd_b64(const void *p, size_t n)
{
	char *s;
	json_t *j;

	if (n > (size_t)INT32_MAX / 2 || !(s = malloc(4 * ((n + 2) / 3) + 1)))
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	j = json_string(s);
	free(s);
	return j;
}

json_t *edge_etcd_b64s(const char *s)
{
	return edge_etcd_b64(s, strlen(s));
}

/* The bytes of a base64 string, NUL-terminated; a NUL inside is refused (keys and values are
 * text here). 0, -EPROTO or -ENOMEM. */
static int unb64(const json_t *j, char **out)
{
	const char *s = json_string_value(j);
	size_t n = s ? strlen(s) : 0, pad = 0;
	unsigned char *p;
	int len;

	*out = NULL;
	if (!s || n % 4 || n > (size_t)INT32_MAX)
		return -EPROTO;
	if (n && s[n - 1] == '=')
		pad = (n > 1 && s[n - 2] == '=') ? 2 : 1;
	if (!(p = malloc(n / 4 * 3 + 1)))
		return -ENOMEM;
	len = EVP_DecodeBlock(p, (const unsigned char *)s, (int)n);
	if (len < (int)pad || memchr(p, '\0', (size_t)len - pad)) {
		free(p);
		return -EPROTO;
	}
	p[len - pad] = '\0';
	*out = (char *)p;
	return 0;
}

/* An int64 field: a JSON string as protobuf writes them, or a number; absent: 0. */
int edge_etcd_int64(const json_t *o, const char *name, int64_t *v)
{
	const json_t *x = json_object_get(o, name);
	const char *s;
	char *end;

	*v = 0;
	if (!x)
		return 0;
	if (json_is_integer(x)) {
		*v = json_integer_value(x);
		return 0;
	}
	if (!(s = json_string_value(x)) || !*s)
		return -EPROTO;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || *end ? -EPROTO : 0;
}

json_t *edge_etcd_jint(int64_t v)
{
	return json_sprintf("%" PRId64, v);
}

int edge_etcd_header_revision(const json_t *o, int64_t *rev)
{
	return edge_etcd_int64(json_object_get(o, "header"), "revision", rev);
}

int edge_etcd_kv_from(const json_t *j, bool deleted, struct edge_etcd_kv *kv)
{
	const json_t *v = json_object_get(j, "value");
	int rc;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return -EPROTO;
	rc = unb64(json_object_get(j, "key"), &kv->key);
	if (!rc && !deleted)
		rc = v ? unb64(v, &kv->value) : ((kv->value = strdup("")) ? 0 : -ENOMEM);
	if (!rc)
		rc = edge_etcd_int64(j, "mod_revision", &kv->mod_revision);
	if (!rc)
		rc = edge_etcd_int64(j, "create_revision", &kv->create_revision);
	if (rc) {
		free(kv->key);
		free(kv->value);
		memset(kv, 0, sizeof(*kv));
	}
	return rc;
}

/* [key, range_end) into req. With end: as given. Without: every key under the prefix key,
 * range_end being key with its last byte below 0xff incremented (and cut there); "\0"
 * (every key from key on) when there is none. An empty key starts at "\0", the first key
 * there can be. */
int edge_etcd_key_range(const char *key, const char *end, json_t *req)
{
	size_t n = strlen(key), i;
	char *e;
	int rc;

	if (end)
		return json_object_set_new(req, "key",
					   n ? edge_etcd_b64s(key) : edge_etcd_b64("", 1)) ||
				       json_object_set_new(req, "range_end", edge_etcd_b64s(end))
			       ? -ENOMEM
			       : 0;
	if (!(e = malloc(n + 1)))
		return -ENOMEM;
	memcpy(e, key, n);
	for (i = n; i > 0 && (unsigned char)e[i - 1] == 0xff; i--)
		;
	if (i)
		e[i - 1]++;
	rc = json_object_set_new(req, "key", n ? edge_etcd_b64s(key) : edge_etcd_b64("", 1)) ||
	     json_object_set_new(req, "range_end", i ? edge_etcd_b64(e, i) : edge_etcd_b64("", 1));
	free(e);
	return rc ? -ENOMEM : 0;
}

/* ---- the client ------------------------------------------------------------------------------ */

static int read_password(struct edge_etcd *e, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char buf[PASSWORD_MAX + 2];
	size_t n;
	int rc = 0;

	if (!f) {
		rc = -errno;
		return edge_etcd_fail(err, errlen, rc, "etcd: the password file %s: %s", file,
				      strerror(-rc));
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	if (n > PASSWORD_MAX)
		rc = edge_etcd_fail(err, errlen, -EINVAL,
				    "etcd: the password in %s is over %d bytes", file,
				    PASSWORD_MAX);
	else if (!n)
		rc = edge_etcd_fail(err, errlen, -EINVAL,
				    "etcd: the password file %s: its first line is empty", file);
	else if (!(e->password = strndup(buf, n)))
		rc = -ENOMEM;
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int parse_endpoints(struct edge_etcd *e, const char *list, char *err, size_t errlen)
{
	const char *p = list;

	if (!list || !*list)
		return edge_etcd_fail(err, errlen, -EINVAL, "etcd: no endpoints");
	for (;;) {
		size_t n = strcspn(p, ",");
		bool ok = n && n < EDGE_ETCD_ENDPOINT_MAX;

		for (size_t i = 0; ok && i < n; i++)
			ok = p[i] > 0x20 && p[i] < 0x7f;
		if (!ok || (strncasecmp(p, "http://", 7) && strncasecmp(p, "https://", 8)))
			return edge_etcd_fail(
				err, errlen, -EINVAL,
				"etcd: bad endpoint '%.*s': http:// or https:// URLs, ',' between",
				(int)(n < EDGE_ETCD_ENDPOINT_MAX ? n : EDGE_ETCD_ENDPOINT_MAX), p);
		if (e->n_eps == EDGE_ETCD_MAX_ENDPOINTS)
			return edge_etcd_fail(err, errlen, -EINVAL, "etcd: more than %d endpoints",
					      EDGE_ETCD_MAX_ENDPOINTS);
		while (n > 8 && p[n - 1] == '/')
			n--;
		if (!(e->eps[e->n_eps++] = strndup(p, n)))
			return -ENOMEM;
		if (!p[strcspn(p, ",")])
			return 0;
		p += strcspn(p, ",") + 1;
	}
}

static int dup_opt(char **to, const char *from)
{
	return from && !(*to = strdup(from)) ? -ENOMEM : 0;
}

int edge_etcd_new(const struct edge_etcd_opts *o, struct edge_etcd **out, char *err, size_t errlen)
{
	struct edge_etcd *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
	rc = parse_endpoints(e, o->endpoints, err, errlen);
	if (!rc && o->key_file && !o->cert_file)
		rc = edge_etcd_fail(err, errlen, -EINVAL,
				    "etcd: a key file without a certificate file");
	if (!rc && !o->user != !o->password_file)
		rc = edge_etcd_fail(err, errlen, -EINVAL,
				    "etcd: a user and a password file go together");
	if (!rc && (o->user && !*o->user))
		rc = edge_etcd_fail(err, errlen, -EINVAL, "etcd: an empty user name");
	if (!rc)
		rc = dup_opt(&e->ca_file, o->ca_file) ?: dup_opt(&e->cert_file, o->cert_file)
			?: dup_opt(&e->key_file, o->key_file) ?: dup_opt(&e->user, o->user);
	if (!rc && o->password_file)
		rc = read_password(e, o->password_file, err, errlen);
	if (!rc && curl_global_init(CURL_GLOBAL_DEFAULT))
		rc = edge_etcd_fail(err, errlen, -EIO, "etcd: libcurl does not initialise");
	else if (!rc)
		e->curl_init = true;
	if (!rc && !(e->h = curl_easy_init()))
		rc = -ENOMEM;
	if (rc == -ENOMEM)
		edge_etcd_fail(err, errlen, rc, "etcd: out of memory");
	if (rc) {
		edge_etcd_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

void edge_etcd_drop_token(struct edge_etcd *e)
{
	if (e->token) {
		OPENSSL_cleanse(e->token, strlen(e->token));
		free(e->token);
	}
	e->token = NULL;
	e->auth_off = false;
}

void edge_etcd_free(struct edge_etcd *e)
{
	if (!e)
		return;
	edge_etcd_drop_token(e);
	if (e->password) {
		OPENSSL_cleanse(e->password, strlen(e->password));
		free(e->password);
	}
	for (size_t i = 0; i < e->n_eps; i++)
		free(e->eps[i]);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->user);
	if (e->h)
		curl_easy_cleanup(e->h);
	if (e->curl_init)
		curl_global_cleanup();
	free(e);
}

const char *edge_etcd_endpoint(const struct edge_etcd *e)
{
	return e->eps[e->cur];
}

void edge_etcd_kvs_free(struct edge_etcd_kvs *kvs)
{
	if (!kvs)
		return;
	for (size_t i = 0; i < kvs->n; i++) {
		free(kvs->v[i].key);
		free(kvs->v[i].value);
	}
	free(kvs->v);
	memset(kvs, 0, sizeof(*kvs));
}

/* ---- one HTTP exchange ------------------------------------------------------------------------ */

int edge_etcd_body_add(struct edge_etcd_body *b, const char *data, size_t len)
{
	char *p;

	if (b->n + len > EDGE_ETCD_BODY_MAX) {
		b->over = true;
		return -EFBIG;
	}
	if (!(p = realloc(b->p, b->n + len + 1)))
		return -ENOMEM;
	memcpy(p + b->n, data, len);
	b->p = p;
	b->n += len;
	b->p[b->n] = '\0';
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	return edge_etcd_body_add(arg, data, size * nmemb) ? 0 : size * nmemb;
}

static bool header_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *t = *l ? curl_slist_append(*l, s) : NULL;

	if (!t)
		curl_slist_free_all(*l);
	*l = t;
	return t;
}

/* The request's headers (the token, when there is one and auth), or NULL: out of memory. */
struct curl_slist *edge_etcd_headers(const struct edge_etcd *e, bool auth)
{
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
	char line[TOKEN_MAX + 32];

	if (!header_add(&l, "Expect:") || !auth || !e->token)
		return l;
	snprintf(line, sizeof(line), "Authorization: %s", e->token);
	header_add(&l, line);
	OPENSSL_cleanse(line, sizeof(line));
	return l;
}

/* The options a request and a watch share. */
void edge_etcd_set_common(const struct edge_etcd *e, CURL *h, const char *url, const char *body,
			  struct curl_slist *hdr, char *cerr)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mtls-edge etcd client");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	if (e->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, e->key_file);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
}

/* An answer in text (etcd's HTTP layer, not its gRPC gateway): its first line. */
static void text_refusal(const struct edge_etcd_body *b, struct edge_etcd_refusal *r)
{
	size_t n = 0;

	/* etcd 3.4 with authentication on refuses a gateway request whose client certificate has
	 * a CommonName (it would not be used as the user, as it is over gRPC) */
	if (memmem(b->p, b->n, "CommonName of client", 20)) {
		r->code = EDGE_GRPC_PERMISSION_DENIED;
		snprintf(r->msg, sizeof(r->msg),
			 "the client certificate has a CommonName, which etcd's JSON gateway refuses "
			 "while authentication is on: use one without (etcd: \"%.*s\")",
			 (int)strcspn(b->p, "\r\n"), b->p);
		return;
	}
	while (n < b->n && n + 1 < sizeof(r->msg) && b->p[n] >= 0x20 && b->p[n] < 0x7f)
		n++;
	memcpy(r->msg, b->p, n);
	r->msg[n] = '\0';
}

/* An answer that is not 200: etcd's refusal ({"error", "message", "code"} from a unary call,
 * {"error": {"grpc_code", "message"}} in a stream), or 0 and "" when it is none. */
void edge_etcd_refusal_of(const struct edge_etcd_body *b, struct edge_etcd_refusal *r)
{
	json_t *j = b->n ? json_loadb(b->p, b->n, 0, NULL) : NULL, *x = json_object_get(j, "error");
	const char *msg;

	r->code = 0;
	r->msg[0] = '\0';
	if (json_is_object(x)) {
		r->code = (int)json_integer_value(json_object_get(x, "grpc_code"));
		msg = json_string_value(json_object_get(x, "message"));
	} else {
		r->code = (int)json_integer_value(json_object_get(j, "code"));
		msg = json_string_value(json_object_get(j, "message"));
		if (!msg)
			msg = json_string_value(x);
	}
	if (msg)
		edge_etcd_msg(msg, r->msg, sizeof(r->msg));
	else if (!j && b->n)
		text_refusal(b, r);
	json_decref(j);
}

void edge_etcd_set_stop(struct edge_etcd *e, const volatile bool *stop)
{
	e->stop = stop;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const volatile bool *stop = arg;

	return *stop ? 1 : 0;
}

/* POST body to endpoint i. 0 and *out: etcd's answer. 1: the endpoint did not answer (connect,
 * TLS, timeout, a 5xx): try the next one. Else a negative errno, r holding etcd's refusal. */
static int post_one(struct edge_etcd *e, size_t i, const char *path, const char *body, bool auth,
		    json_t **out, struct edge_etcd_refusal *r, char *err, size_t errlen)
{
	char url[EDGE_ETCD_ENDPOINT_MAX + 64], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = edge_etcd_headers(e, auth);
	struct edge_etcd_body b = { 0 };
	const char *ep = e->eps[i];
	long status = 0;
	CURLcode cc;
	int rc;

	r->code = 0;
	r->msg[0] = '\0';
	if (!hdr)
		return edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	snprintf(url, sizeof(url), "%s%s", ep, path);
	curl_easy_reset(e->h);
	edge_etcd_set_common(e, e->h, url, body, hdr, cerr);
	curl_easy_setopt(e->h, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->h, CURLOPT_WRITEDATA, &b);
	if (e->stop) {
		if (*e->stop) {
			curl_slist_free_all(hdr);
			return edge_etcd_fail(err, errlen, -EINTR, "etcd: stopped");
		}
		curl_easy_setopt(e->h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(e->h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(e->h, CURLOPT_XFERINFODATA, (void *)e->stop);
	}
	cc = curl_easy_perform(e->h);
	curl_easy_getinfo(e->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(e->h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		rc = edge_etcd_fail(err, errlen, -EINTR, "etcd: stopped");
	else if (cc == CURLE_WRITE_ERROR || cc == CURLE_OUT_OF_MEMORY)
		rc = b.over ? edge_etcd_fail(err, errlen, -EFBIG,
					     "etcd %s: an answer over %u bytes", ep,
					     EDGE_ETCD_BODY_MAX)
			    : edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	else if (cc != CURLE_OK) {
		rc = edge_etcd_fail(err, errlen, 1, "etcd %s: %s", ep,
				    cerr[0] ? cerr : curl_easy_strerror(cc));
		if (cc == CURLE_OPERATION_TIMEDOUT && auth && e->token && !b.n)
			e->silent = true;
	} else if (status == 200) {
		*out = json_loadb(b.p ? b.p : "", b.n, 0, NULL);
		rc = json_is_object(*out) ? 0
					  : edge_etcd_fail(err, errlen, -EPROTO,
							   "etcd %s: an answer "
							   "that is not a JSON object",
							   ep);
		if (rc) {
			json_decref(*out);
			*out = NULL;
		}
	} else {
		edge_etcd_refusal_of(&b, r);
		if (status >= 500)
			rc = edge_etcd_fail(err, errlen, 1, "etcd %s: HTTP status %ld%s%s", ep,
					    status, r->msg[0] ? ": " : "", r->msg);
		else if (!r->code)
			rc = edge_etcd_fail(err, errlen, -EPROTO,
					    "etcd %s: HTTP status %ld for %s%s%s", ep, status, path,
					    r->msg[0] ? ": " : "", r->msg);
		else
			rc = edge_etcd_fail(err, errlen, edge_etcd_errno(r), "etcd %s: %s%s", ep,
					    r->msg,
					    !e->user && strstr(r->msg, "user name is empty")
						    ? " (etcd's authentication is on: give a user)"
						    : "");
	}
	if (b.p)
		OPENSSL_cleanse(b.p, b.n); /* a token, perhaps */
	free(b.p);
	return rc;
}

/* POST to each endpoint once, from the one that answered last. */
static int exchange(struct edge_etcd *e, const char *path, const char *body, bool auth,
		    json_t **out, struct edge_etcd_refusal *r, char *err, size_t errlen)
{
	char one[512];

	if (err && errlen)
		err[0] = '\0';
	for (size_t k = 0; k < e->n_eps; k++) {
		size_t i = (e->cur + k) % e->n_eps;
		int rc = post_one(e, i, path, body, auth, out, r, one, sizeof(one));

		if (rc <= 0) {
			e->cur = i;
			if (rc)
				edge_etcd_fail(err, errlen, rc, "%s", one);
			return rc;
		}
		edge_etcd_err_add(err, errlen, one);
	}
	r->code = 0;
	r->msg[0] = '\0';
	return -ECONNREFUSED;
}

static int authenticate(struct edge_etcd *e, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s, s:s}", "name", e->user, "password", e->password),
	       *ans = NULL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	struct edge_etcd_refusal r = { 0 };
	const char *tok;
	int rc;

	json_decref(req);
	if (!body)
		return edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	rc = exchange(e, "/v3/auth/authenticate", body, false, &ans, &r, err, errlen);
	OPENSSL_cleanse(body, strlen(body));
	free(body);
	if (rc && r.code == EDGE_GRPC_FAILED_PRECONDITION && strstr(r.msg, "not enabled")) {
		e->auth_off = true; /* as etcd's own client: go on without a token */
		return 0;
	}
	if (rc)
		return rc;
	tok = json_string_value(json_object_get(ans, "token"));
	rc = tok && *tok && strlen(tok) < TOKEN_MAX && !strpbrk(tok, "\r\n") ? 0 : -EPROTO;
	if (!rc && !(e->token = strdup(tok)))
		rc = -ENOMEM;
	if (rc)
		edge_etcd_fail(err, errlen, rc, "etcd %s: authenticate: %s", edge_etcd_endpoint(e),
			       rc == -ENOMEM ? "out of memory" : "an answer without a token");
	json_decref(ans);
	return rc;
}

/* A token when one is needed and there is none. */
int edge_etcd_need_token(struct edge_etcd *e, char *err, size_t errlen)
{
	return e->user && !e->token && !e->auth_off ? authenticate(e, err, errlen) : 0;
}

/* A unary call: the request (consumed) to every endpoint in turn; once more with a new token
 * when etcd says the one sent is invalid (or expired), or when every endpoint was silent to
 * it: etcd 3.4's JSON gateway never answers a request whose token the cluster does not know
 * after a restore from a backup (the member logs "invalid auth token", the request hangs).
 * When no endpoint answered, the token is dropped: the next call, after etcd is back
 * (restarted members forget their tokens), authenticates first. */
int edge_etcd_call(struct edge_etcd *e, const char *path, json_t *req, json_t **out, char *err,
		   size_t errlen)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	struct edge_etcd_refusal r = { 0 };
	int rc;

	*out = NULL;
	json_decref(req);
	if (!body)
		return edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	for (int attempt = 0;; attempt++) {
		r.code = 0;
		r.msg[0] = '\0';
		e->silent = false;
		rc = edge_etcd_need_token(e, err, errlen);
		if (!rc)
			rc = exchange(e, path, body, true, out, &r, err, errlen);
		if (e->user && !attempt &&
		    ((rc == -EACCES && edge_etcd_auth_stale(&r)) ||
		     (rc == -ECONNREFUSED && e->silent))) {
			edge_etcd_drop_token(e);
			continue;
		}
		if (rc == -ECONNREFUSED)
			edge_etcd_drop_token(e);
		break;
	}
	free(body);
	return rc;
}
