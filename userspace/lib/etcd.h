/*
 * An etcd v3 client over etcd's JSON gateway (the HTTP/1.1 + JSON face of its gRPC API that
 * etcd 3.4 serves on the client port: POST /v3/kv/range, /v3/kv/txn, /v3/kv/put,
 * /v3/watch, /v3/auth/authenticate), with libcurl and jansson. Keys and values are bytes
 * on the wire (base64 in the JSON); this API takes and gives NUL-terminated strings (our
 * keys and values are text).
 *
 * Endpoints: several (the members of a cluster); a request that cannot reach one (connect,
 * TLS, a 5xx, a timeout) goes to the next, in turn, and the one that answered stays first
 * for the next request. TLS: the etcd CA, and the client's certificate and key (etcd's
 * --client-cert-auth). Auth (etcd's --auth on): a user and password give a token
 * (/v3/auth/authenticate) sent as the Authorization header, fetched again when etcd says it
 * is invalid or expired.
 *
 * Errors: every call returns 0 or a negative errno and fills err with what went wrong, the
 * endpoint and etcd's own message ("etcd https://127.0.0.1:2379: permission denied").
 * -ECONNREFUSED: no endpoint answered; -EACCES: authentication or permission; -ECANCELED:
 * a transaction's comparison failed (someone else wrote first); -ERANGE: a watch's start
 * revision was compacted (*compacted holds etcd's compact revision); -EPROTO: an answer we
 * could not read. Not thread-safe: one struct edge_etcd per thread.
 */
#ifndef EDGE_ETCD_H
#define EDGE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_ETCD_MAX_ENDPOINTS 16

struct edge_etcd_opts {
	const char *endpoints; /* "https://a:2379,https://b:2379": ',' between, no spaces */
	const char *ca_file;   /* the etcd cluster's CA (PEM); NULL: the system's */
	const char *cert_file; /* the client certificate (PEM), with key_file; NULL: none */
	const char *key_file;
	const char *user;          /* NULL: no authentication */
	const char *password_file; /* the user's password: the file's first line */
	unsigned int timeout_ms;   /* per unary request (connect included); 0: 5000 */
};

struct edge_etcd;

/* Parses the endpoints and reads the password file; nothing is sent yet. */
int edge_etcd_new(const struct edge_etcd_opts *o, struct edge_etcd **out, char *err, size_t errlen);
void edge_etcd_free(struct edge_etcd *e);
/* The endpoint the last request used (for messages). */
const char *edge_etcd_endpoint(const struct edge_etcd *e);

struct edge_etcd_kv {
	char *key, *value;    /* value NULL for a DELETE event */
	int64_t mod_revision; /* the revision that wrote (or deleted) it */
	int64_t create_revision;
};

struct edge_etcd_kvs {
	struct edge_etcd_kv *v;
	size_t n;
	int64_t revision; /* the store's revision the answer is at (header.revision) */
};
void edge_etcd_kvs_free(struct edge_etcd_kvs *kvs);

/* Every key in [key, end), sorted by key, at one revision (end NULL: every key that starts
 * with key); all pages (etcd's limit per answer) are fetched at that same revision. */
int edge_etcd_range(struct edge_etcd *e, const char *key, const char *end,
		    struct edge_etcd_kvs *out, char *err, size_t errlen);
/* One key: 0, *value (malloc'd; NULL when the key is absent) and *mod_revision (0 then) set. */
/* A flag that, once true, ends the request in flight (-EINTR) and every later one: a daemon
 * that stops does not wait for an etcd that does not answer. */
void edge_etcd_set_stop(struct edge_etcd *e, const volatile bool *stop);
int edge_etcd_get(struct edge_etcd *e, const char *key, char **value, int64_t *mod_revision,
		  char *err, size_t errlen);
int edge_etcd_put(struct edge_etcd *e, const char *key, const char *value, char *err,
		  size_t errlen);

/* A transaction: if the key guard's mod_revision is guard_rev (0: the key does not exist),
 * the ops run, all or none; otherwise nothing runs and the call is -ECANCELED. op value
 * NULL: delete that key. *revision: the revision the transaction made (or saw). At most
 * EDGE_ETCD_TXN_MAX ops (etcd's --max-txn-ops default). */
#define EDGE_ETCD_TXN_MAX 128
struct edge_etcd_op {
	const char *key, *value;
};
int edge_etcd_txn(struct edge_etcd *e, const char *guard, int64_t guard_rev,
		  const struct edge_etcd_op *ops, size_t n_ops, int64_t *revision, char *err,
		  size_t errlen);

/*
 * A watch on every key in [key, end) (end NULL: every key that starts with key) from
 * start_revision on, with progress notifications
 * (header.revision advances with no event: everything up to it was sent). Blocks: for each
 * answer etcd streams, on_events(arg, events, n, header_revision) is called (n 0: a progress
 * notification or the watch's creation); a non-zero return ends the watch with that value.
 * Returns when the stream ends (-ECONNRESET: the member went away; the caller watches again
 * from the last revision it has), when *stop becomes true (checked at least every 200 ms;
 * 0), or with -ERANGE and *compacted when start_revision is gone. One endpoint at a time: on
 * a failure the next call starts with the next endpoint (one that does not answer before the
 * watch is created is passed over at once, as for a request).
 */
typedef int (*edge_etcd_watch_fn)(void *arg, const struct edge_etcd_kv *ev, size_t n,
				  int64_t revision);
int edge_etcd_watch(struct edge_etcd *e, const char *key, const char *end, int64_t start_revision,
		    edge_etcd_watch_fn on_events, void *arg, const volatile bool *stop,
		    int64_t *compacted, char *err, size_t errlen);

#endif
