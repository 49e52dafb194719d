/* Between etcd.c (the client, its HTTP exchanges, authentication), etcd_kv.c (range, get, put,
 * txn) and etcd_watch.c (the watch). */
#ifndef EDGE_ETCD_INT_H
#define EDGE_ETCD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd.h"

#define EDGE_ETCD_ENDPOINT_MAX 256
#define EDGE_ETCD_BODY_MAX (64u << 20) /* an answer, or one message of a watch */

/* gRPC status codes etcd answers with */
#define EDGE_GRPC_INVALID_ARGUMENT 3
#define EDGE_GRPC_NOT_FOUND 5
#define EDGE_GRPC_PERMISSION_DENIED 7
#define EDGE_GRPC_RESOURCE_EXHAUSTED 8
#define EDGE_GRPC_FAILED_PRECONDITION 9
#define EDGE_GRPC_OUT_OF_RANGE 11
#define EDGE_GRPC_UNAUTHENTICATED 16

struct edge_etcd {
	char *eps[EDGE_ETCD_MAX_ENDPOINTS];
	size_t n_eps, cur; /* cur: the endpoint that answered last */
	char *ca_file, *cert_file, *key_file, *user, *password, *token;
	bool auth_off; /* etcd said its authentication is not enabled: no token to send */
	bool curl_init;
	bool silent;               /* a request with a token met a timeout with no byte of answer */
	const volatile bool *stop; /* edge_etcd_set_stop */
	unsigned int timeout_ms;
	CURL *h; /* the unary calls' handle */
};

/* etcd's answer to a request it refused: its gRPC code and message */
struct edge_etcd_refusal {
	int code;
	char msg[384];
};

/* what came of an answer so far, NUL-terminated */
struct edge_etcd_body {
	char *p;
	size_t n;
	bool over; /* over EDGE_ETCD_BODY_MAX */
};

/* err (when not NULL) = the message; returns rc. */
int edge_etcd_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* err += "; " s: the failures of several endpoints in one message */
void edge_etcd_err_add(char *err, size_t errlen, const char *s);
/* etcd's message without its "rpc error: code = X desc = " and "etcdserver: " */
void edge_etcd_msg(const char *s, char *out, size_t len);
/* the token sent is invalid or expired, or none was and one is needed */
bool edge_etcd_auth_stale(const struct edge_etcd_refusal *r);
/* the negative errno of a refusal */
int edge_etcd_errno(const struct edge_etcd_refusal *r);

/* JSON strings of base64 (NULL: out of memory) */
json_t *edge_etcd_b64(const void *p, size_t n);
json_t *edge_etcd_b64s(const char *s);
/* an int64 as protobuf's JSON writes it (a string), NULL: out of memory */
json_t *edge_etcd_jint(int64_t v);
/* an int64 field, a string or a number; absent: 0. 0 or -EPROTO. */
int edge_etcd_int64(const json_t *o, const char *name, int64_t *v);
/* header.revision of an answer */
int edge_etcd_header_revision(const json_t *o, int64_t *rev);
/* a KeyValue (value NULL when deleted): 0, -EPROTO or -ENOMEM, *kv zeroed on failure */
int edge_etcd_kv_from(const json_t *j, bool deleted, struct edge_etcd_kv *kv);
/* req.key and req.range_end of every key under prefix */
int edge_etcd_key_range(const char *key, const char *end, json_t *req);

/* appends to the body: 0, -EFBIG (over the limit) or -ENOMEM */
int edge_etcd_body_add(struct edge_etcd_body *b, const char *data, size_t len);
/* a request's headers, the token with them when auth; NULL: out of memory */
struct curl_slist *edge_etcd_headers(const struct edge_etcd *e, bool auth);
/* the options a request and a watch share: URL, protocols, TLS files, timeouts, the body */
void edge_etcd_set_common(const struct edge_etcd *e, CURL *h, const char *url, const char *body,
			  struct curl_slist *hdr, char *cerr);
/* etcd's refusal in an answer that is not 200 (code 0 and "" when it is none) */
void edge_etcd_refusal_of(const struct edge_etcd_body *b, struct edge_etcd_refusal *r);
/* a token, when one is needed and there is none */
int edge_etcd_need_token(struct edge_etcd *e, char *err, size_t errlen);
/* forgets the token (the next call authenticates again) */
void edge_etcd_drop_token(struct edge_etcd *e);
/* a unary call: the request (consumed) to each endpoint in turn, from the one that answered
 * last; once more with a new token when etcd says the one sent is invalid or expired */
int edge_etcd_call(struct edge_etcd *e, const char *path, json_t *req, json_t **out, char *err,
		   size_t errlen);

#endif
