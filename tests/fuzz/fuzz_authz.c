/*
 * libFuzzer target for the identity rules (userspace/lib/authz.c), plain C:
 * clang -fsanitize=fuzzer,address,undefined. The first byte picks the mode:
 *   - below 0x80: the rest (up to its first NUL) is a rule value for field (byte % 12).
 *     edge_authz_normalize must not crash; a value it accepts is canonical
 *     (normalize(out) == out), shorter than EDGE_AUTHZ_VALUE_MAX, fits in exactly its length
 *     + 1 bytes (-ENOSPC with one byte less), and edge_authz_add takes it (a second time too,
 *     as a duplicate); a refusal is -EINVAL with a message;
 *   - 0x80 and above: the rest is a DER certificate (d2i_X509), checked against a fixed set
 *     with allow and deny entries of every field, a deny-only set and an empty set; bits 0-1
 *     pick the anchor (none, the built-in CA, a CA of trust domain example.test, one of
 *     another). Every result is well formed: a decision the set can give, a rule id that names
 *     one of its entries of that decision's effect (or 0), a NUL-terminated text, the same
 *     result when checked again; the empty set admits everything.
 * tests/fuzz/run.sh runs it for a bounded time over tests/fuzz/corpus/authz/.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "authz.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

/* Entries of the fixed set: allow ids 1.., deny ids 101.. */
static const struct {
	enum edge_authz_effect e;
	enum edge_authz_field f;
	const char *v;
} rules[] = {
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DN, "CN=client,O=Example" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CN, "client" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "*.example.test" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI, "https://example.test/a" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.test/ns/" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_EMAIL, "a@example.test" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_IP, "10.0.0.0/8" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_IP, "2001:db8::/32" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_SHA256,
	  "0000000000000000000000000000000000000000000000000000000000000000" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_SPKI, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_SKI, "0102030405" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CA, "builtin" },
	{ EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_SERIAL, "65" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_DN, "CN=bob" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_CN, "bob" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_DNS, "evil.example.test" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_URI, "spiffe://example.test/ns/evil" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_URI_PREFIX, "https://example.test/evil/" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_EMAIL, "evil@example.test" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_IP, "10.6.6.6" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_SHA256,
	  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_SPKI,
	  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_SKI, "ff" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_CA, "evil-ca" },
	{ EDGE_AUTHZ_DENY, EDGE_AUTHZ_SERIAL, "66" },
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

static struct edge_authz *full, *deny_only, *empty;

static void setup(void)
{
	char v[EDGE_AUTHZ_VALUE_MAX];
	int64_t allow_id = 1, deny_id = 101;

	full = edge_authz_new();
	deny_only = edge_authz_new();
	empty = edge_authz_new();
	CHECK(full && deny_only && empty);
	for (size_t i = 0; i < NRULES; i++) {
		bool deny = rules[i].e == EDGE_AUTHZ_DENY;
		int64_t id = deny ? deny_id++ : allow_id++;

		CHECK(!edge_authz_normalize(rules[i].f, rules[i].v, v, sizeof(v), NULL, 0));
		CHECK(!edge_authz_add(full, rules[i].e, rules[i].f, v, id));
		if (deny)
			CHECK(!edge_authz_add(deny_only, rules[i].e, rules[i].f, v, id));
	}
	CHECK(edge_authz_count(full) == NRULES);
}

static void check_value(enum edge_authz_field f, const char *in)
{
	char out[EDGE_AUTHZ_VALUE_MAX], again[EDGE_AUTHZ_VALUE_MAX], err[256];
	struct edge_authz *a;
	size_t n;
	int rc;

	err[0] = 'x';
	rc = edge_authz_normalize(f, in, out, sizeof(out), err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc) {
		CHECK(err[0] && memchr(err, '\0', sizeof(err)));
		return;
	}
	n = strlen(out);
	CHECK(n > 0 && n < EDGE_AUTHZ_VALUE_MAX);
	CHECK(!edge_authz_normalize(f, out, again, sizeof(again), err, sizeof(err)));
	CHECK(!strcmp(out, again));
	CHECK(!edge_authz_normalize(f, in, again, n + 1, NULL, 0) && !strcmp(out, again));
	CHECK(edge_authz_normalize(f, in, again, n, NULL, 0) == -ENOSPC);
	a = edge_authz_new();
	CHECK(a);
	CHECK(!edge_authz_add(a, EDGE_AUTHZ_ALLOW, f, out, 1));
	CHECK(!edge_authz_add(a, EDGE_AUTHZ_ALLOW, f, out, 2));
	CHECK(!edge_authz_add(a, EDGE_AUTHZ_DENY, f, out, 3));
	CHECK(edge_authz_count(a) == 2 && edge_authz_allow_count(a) == 1);
	edge_authz_free(a);
}

static void check_result(const struct edge_authz_result *r, bool has_allow)
{
	CHECK(memchr(r->text, '\0', sizeof(r->text)));
	switch (r->decision) {
	case EDGE_AUTHZ_ADMIT:
		CHECK(has_allow ? r->rule_id >= 1 && r->rule_id <= 100 : r->rule_id == 0);
		CHECK(!r->rule_id ||
		      (r->effect == EDGE_AUTHZ_ALLOW && !strncmp(r->text, "allow ", 6)));
		break;
	case EDGE_AUTHZ_NOT_AUTHORIZED:
		CHECK(has_allow && r->rule_id == 0 && !strcmp(r->text, "no allow entry matched"));
		break;
	case EDGE_AUTHZ_DENIED:
		CHECK(r->rule_id == 0 || (r->rule_id > 100 && r->effect == EDGE_AUTHZ_DENY &&
					  !strncmp(r->text, "deny ", 5)));
		CHECK(r->text[0]);
		break;
	default:
		CHECK(0);
	}
}

static void check_cert(const uint8_t *data, size_t size, unsigned int mode)
{
	static const struct edge_authz_anchor anchors[] = {
		{ "builtin", NULL },
		{ "example-ca", "example.test" },
		{ "other-ca", "other.test" },
	};
	const struct edge_authz_anchor *anc = mode & 3 ? &anchors[(mode & 3) - 1] : NULL;
	const unsigned char *p = data;
	struct edge_authz_result r, again;
	X509 *x = d2i_X509(NULL, &p, (long)size);
	int rc;

	if (!x)
		return;
	rc = edge_authz_check(full, x, anc, &r);
	CHECK(rc == 0 || rc == -ENOMEM);
	if (!rc) {
		check_result(&r, true);
		CHECK(!edge_authz_check(full, x, anc, &again));
		CHECK(again.decision == r.decision && again.rule_id == r.rule_id &&
		      !strcmp(again.text, r.text));
	}
	rc = edge_authz_check(deny_only, x, anc, &r);
	CHECK(rc == 0 || rc == -ENOMEM);
	if (!rc)
		check_result(&r, false);
	CHECK(!edge_authz_check(empty, x, anc, &r));
	CHECK(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 0 && !r.text[0]);
	X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	char *v;

	if (!ready) {
		setup();
		ready = true;
	}
	if (!size)
		return 0;
	if (data[0] >= 0x80) {
		check_cert(data + 1, size - 1, data[0]);
		return 0;
	}
	v = malloc(size);
	CHECK(v);
	memcpy(v, data + 1, size - 1);
	v[size - 1] = '\0';
	check_value((enum edge_authz_field)(data[0] % EDGE_AUTHZ_NFIELDS), v);
	free(v);
	return 0;
}
