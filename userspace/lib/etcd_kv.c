/* The key-value calls of the etcd client: etcd.h. */
#include "etcd_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT 500 /* keys per range answer */

static int kvs_add(struct edge_etcd_kvs *out, const json_t *kvs, size_t *cap)
{
	size_t i;
	json_t *kv;

	if (kvs && !json_is_array(kvs))
		return -EPROTO;
	json_array_foreach(kvs, i, kv) {
		int rc;

		if (out->n == *cap) {
			size_t c = *cap ? 2 * *cap : 64;
			struct edge_etcd_kv *v = realloc(out->v, c * sizeof(*v));

			if (!v)
				return -ENOMEM;
			out->v = v;
			*cap = c;
		}
		if ((rc = edge_etcd_kv_from(kv, false, &out->v[out->n])))
			return rc;
		out->n++;
	}
	return 0;
}

static int bad_answer(struct edge_etcd *e, int rc, char *err, size_t errlen)
{
	return rc == -ENOMEM ? edge_etcd_fail(err, errlen, rc, "etcd: out of memory")
			     : edge_etcd_fail(err, errlen, rc, "etcd %s: an answer we cannot read",
					      edge_etcd_endpoint(e));
}

int edge_etcd_range(struct edge_etcd *e, const char *key, const char *end,
		    struct edge_etcd_kvs *out, char *err, size_t errlen)
{
	json_t *req = json_object(), *ans = NULL;
	size_t cap = 0;
	bool more;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = req ? edge_etcd_key_range(key, end, req) : -ENOMEM;
	if (!rc && json_object_set_new(req, "limit", edge_etcd_jint(PAGE_LIMIT)))
		rc = -ENOMEM;
	if (rc) {
		json_decref(req);
		return edge_etcd_fail(err, errlen, rc, "etcd: out of memory");
	}
	do {
		const struct edge_etcd_kv *last;

		json_incref(req);
		if ((rc = edge_etcd_call(e, "/v3/kv/range", req, &ans, err, errlen)))
			break;
		more = json_is_true(json_object_get(ans, "more"));
		rc = out->revision ? 0 : edge_etcd_header_revision(ans, &out->revision);
		if (!rc && !out->revision)
			rc = -EPROTO;
		if (!rc)
			rc = kvs_add(out, json_object_get(ans, "kvs"), &cap);
		json_decref(ans);
		if (!rc && more && !out->n)
			rc = -EPROTO;
		if (rc) {
			bad_answer(e, rc, err, errlen);
			break;
		}
		if (!more)
			break;
		/* the next page: from just after the last key (its bytes and a NUL), at the
		 * revision of the first */
		last = &out->v[out->n - 1];
		if (json_object_set_new(req, "key",
					edge_etcd_b64(last->key, strlen(last->key) + 1)) ||
		    json_object_set_new(req, "revision", edge_etcd_jint(out->revision)))
			rc = edge_etcd_fail(err, errlen, -ENOMEM, "etcd: out of memory");
	} while (!rc);
	json_decref(req);
	if (rc)
		edge_etcd_kvs_free(out);
	return rc;
}

int edge_etcd_get(struct edge_etcd *e, const char *key, char **value, int64_t *mod_revision,
		  char *err, size_t errlen)
{
	json_t *ans = NULL, *kvs;
	struct edge_etcd_kv kv = { 0 };
	int rc;

	*value = NULL;
	*mod_revision = 0;
	rc = edge_etcd_call(e, "/v3/kv/range", json_pack("{s:o}", "key", edge_etcd_b64s(key)), &ans,
			    err, errlen);
	if (rc)
		return rc;
	kvs = json_object_get(ans, "kvs");
	if (kvs && !json_is_array(kvs))
		rc = -EPROTO;
	else if (json_array_size(kvs))
		rc = edge_etcd_kv_from(json_array_get(kvs, 0), false, &kv);
	json_decref(ans);
	if (rc)
		return bad_answer(e, rc, err, errlen);
	free(kv.key);
	*value = kv.value;
	*mod_revision = kv.mod_revision;
	return 0;
}

int edge_etcd_put(struct edge_etcd *e, const char *key, const char *value, char *err, size_t errlen)
{
	json_t *ans = NULL;
	int rc = edge_etcd_call(e, "/v3/kv/put",
				json_pack("{s:o, s:o}", "key", edge_etcd_b64s(key), "value",
					  edge_etcd_b64s(value)),
				&ans, err, errlen);

	json_decref(ans);
	return rc;
}

int edge_etcd_txn(struct edge_etcd *e, const char *guard, int64_t guard_rev,
		  const struct edge_etcd_op *ops, size_t n_ops, int64_t *revision, char *err,
		  size_t errlen)
{
	json_t *req, *succ = json_array(), *ans = NULL;
	int64_t rev = 0;
	int rc = succ ? 0 : -ENOMEM;

	if (revision)
		*revision = 0;
	if (n_ops > EDGE_ETCD_TXN_MAX) {
		json_decref(succ);
		return edge_etcd_fail(err, errlen, -EINVAL,
				      "etcd: a transaction of %zu operations (at most %d)", n_ops,
				      EDGE_ETCD_TXN_MAX);
	}
	for (size_t i = 0; !rc && i < n_ops; i++) {
		json_t *op = ops[i].value ? json_pack("{s:{s:o, s:o}}", "request_put", "key",
						      edge_etcd_b64s(ops[i].key), "value",
						      edge_etcd_b64s(ops[i].value))
					  : json_pack("{s:{s:o}}", "request_delete_range", "key",
						      edge_etcd_b64s(ops[i].key));

		rc = json_array_append_new(succ, op) ? -ENOMEM : 0;
	}
	if (rc) {
		json_decref(succ);
		return edge_etcd_fail(err, errlen, rc, "etcd: out of memory");
	}
	if (guard)
		req = json_pack("{s:[{s:o, s:s, s:s, s:o}], s:o}", "compare", "key",
				edge_etcd_b64s(guard), "target", "MOD", "result", "EQUAL",
				"mod_revision", edge_etcd_jint(guard_rev), "success", succ);
	else
		req = json_pack("{s:o}", "success", succ);
	if ((rc = edge_etcd_call(e, "/v3/kv/txn", req, &ans, err, errlen)))
		return rc;
	rc = edge_etcd_header_revision(ans, &rev);
	if (rc)
		bad_answer(e, rc, err, errlen);
	else if (!json_is_true(json_object_get(ans, "succeeded")) && !guard_rev)
		rc = edge_etcd_fail(
			err, errlen, -ECANCELED,
			"etcd %s: the transaction did not run: %s exists (someone else wrote first)",
			edge_etcd_endpoint(e), guard ? guard : "");
	else if (!json_is_true(json_object_get(ans, "succeeded")))
		rc = edge_etcd_fail(
			err, errlen, -ECANCELED,
			"etcd %s: the transaction did not run: %s is not at revision %" PRId64
			" (someone else wrote first)",
			edge_etcd_endpoint(e), guard ? guard : "", guard_rev);
	if (revision)
		*revision = rev;
	json_decref(ans);
	return rc;
}
