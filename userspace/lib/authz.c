/*
 * Identity rules (authz.h): rule values, their canonical form, the compiled sets, the check.
 * This file holds the names, the set and the check; the values are parsed in authz_value.c
 * (a dn's in authz_dn.c), what they share is in authz_int.h.
 *
 * Values and their canonical form (edge_authz_normalize), per field:
 *   dn          an RFC 4514 string: RDNs separated by unescaped ',', the attributes of a
 *               multi-valued RDN by '+'; a type is a short name (CN O OU C L ST STREET DC UID SN
 *               GN serialNumber title emailAddress, case-insensitive; any other name OpenSSL
 *               knows, as it spells it) or a dotted OID; a value takes the escapes \, \+ \" \\
 *               \< \> \; \= \# \<space> and \XX (hex), must be UTF-8 without NUL, and drops
 *               its unescaped leading and trailing spaces (so "CN=bob, O=x" is "CN=bob,O=x");
 *               the #hex (BER) form is refused. Canonical: the RDNs in the order written (RFC
 *               4514's: the most specific first), each attribute OID=VALUE with the dotted OID,
 *               the attributes of an RDN sorted (bytewise on OID=VALUE), a value escaped:
 *               , + " \ < > ; with a backslash, a leading '#' or space and a trailing space
 *               with a backslash, bytes 0x01-0x1f and 0x7f as \XX; "2.5.4.3=bob,2.5.4.10=Acme\,
 *               Inc.". The subject is rendered the same way from its X509_NAME (last RDN
 *               first); it matches exactly (case-sensitive); an attribute with a NUL byte,
 *               invalid UTF-8 or a string type that does not convert means the DN never
 *               matches. At most 64 attributes.
 *   cn          1..1023 bytes of UTF-8, exact; matches any commonName attribute of the subject.
 *   dns         LDH labels of 1..63, at most 253 characters, one trailing dot dropped,
 *               lower-cased; "*.rest" as the whole left-most label only; not an IP address;
 *               non-ASCII is refused (IDNs in their xn-- form). A SAN dNSName (normalised the
 *               same way, else it never matches) matches the entry equal to it and the entry
 *               "*." + all after its first label; a SAN "*.x" only the entry "*.x".
 *   uri         scheme ':' rest: the scheme RFC 3986's (a letter, then letters, digits, + - .),
 *   uri-prefix  the rest non-empty, printable ASCII (no space, control or non-ASCII byte).
 *               Canonical: the scheme and the authority (after "//", up to '/', '?' or '#')
 *               lower-cased. spiffe: "spiffe://TD" then "/SEG"...: TD of [a-z0-9.-_] (no
 *               upper case, port or userinfo), segments of [A-Za-z0-9.-_], not empty, not "."
 *               or "..", no query or fragment; a uri-prefix may end in '/'. uri matches a SAN
 *               URI exactly; uri-prefix P matches u when u == P, or P ends in '/' and u starts
 *               with P, or u starts with P + "/" (hash lookups of u's prefixes at each '/').
 *               A SAN URI that is not valid (a spiffe one by SPIFFE's rules) never matches; a
 *               spiffe one (the scheme in any case) matches only when the anchor has a trust
 *               domain equal to its own.
 *   email       local@domain with one '@': the local part printable ASCII without spaces,
 *               kept as written; the domain as a dns name without wildcard, lower-cased. A SAN
 *               rfc822Name matches when equal after the same normalisation.
 *   ip          an IPv4 or IPv6 address, or ADDR/LEN; canonical "network/len" with the host
 *               bits cleared ("192.0.2.1/32", "2001:db8::/32"; inet_ntop's form); an IPv4-mapped
 *               IPv6 entry stays IPv6. A SAN iPAddress of 4 bytes matches IPv4 entries, of 16
 *               bytes IPv6 ones (one lookup per prefix length in use); of another length, none.
 *   sha256      32 bytes in hex (either case, ':' between bytes allowed); lower-case hex;
 *               SHA-256 of the leaf's DER.
 *   spki        the same, or base64 (44 characters with the padding); lower-case hex; SHA-256
 *               of the leaf's whole SubjectPublicKeyInfo DER (i2d_X509_PUBKEY of the cert's
 *               own, which is i2d_PUBKEY of its key; not X509_pubkey_digest: key bits only).
 *   ski         1..64 bytes in hex; lower-case hex; the subject key identifier extension.
 *   ca          1..64 characters, no control character (the CLI's CA names), exact
 *               ("builtin": the built-in CA); anchor->name.
 *   serial      hex (':' allowed, optional 0x); BN_bn2hex's form: upper case, whole bytes
 *               (leading zero bytes dropped, so "0105" for 0x105), "0" for zero. A negative
 *               serial never matches.
 * edge_authz_add takes only canonical values (normalize(v) == v) and positive ids, else
 * -EINVAL.
 *
 * The set: one open-addressing hash table (power-of-two slots, load <= 0.5, FNV-1a over
 * effect, field and value), a bitmask per effect of the fields in use (the check computes
 * only the facts they need) and the prefix lengths the ip entries use. A duplicate (effect,
 * field, value) keeps the first entry's id.
 *
 * The check: every fact of the leaf is looked up; the earliest added matching deny entry
 * denies; else, with allow entries, the earliest added matching allow entry admits and none
 * is not_authorized ("no allow entry matched"); with no entries (or a NULL set) every leaf is
 * admitted. With entries, a leaf with more than 256 SAN entries, more than 64 subject
 * attributes, an unreadable subjectAltName extension or no leaf at all is denied with rule_id
 * 0 and the reason in text. Results name the entry "deny cn=bob (#12)" (the value cut with
 * "..." to fit text, control bytes shown as '?'); effect and field mean something only when
 * rule_id is not 0. Nothing is printed; the set is read-only once built, so checks on it may
 * run in parallel.
 */
#include "authz.h"
#include "authz_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#define MAX_SANS 256

static const char *const field_names[EDGE_AUTHZ_NFIELDS] = {
	[EDGE_AUTHZ_DN] = "dn",
	[EDGE_AUTHZ_CN] = "cn",
	[EDGE_AUTHZ_DNS] = "dns",
	[EDGE_AUTHZ_URI] = "uri",
	[EDGE_AUTHZ_URI_PREFIX] = "uri-prefix",
	[EDGE_AUTHZ_EMAIL] = "email",
	[EDGE_AUTHZ_IP] = "ip",
	[EDGE_AUTHZ_SHA256] = "sha256",
	[EDGE_AUTHZ_SPKI] = "spki",
	[EDGE_AUTHZ_SKI] = "ski",
	[EDGE_AUTHZ_CA] = "ca",
	[EDGE_AUTHZ_SERIAL] = "serial",
};
static const char *const effect_names[] = {
	[EDGE_AUTHZ_ALLOW] = "allow",
	[EDGE_AUTHZ_DENY] = "deny",
};
static const char *const decision_names[] = {
	[EDGE_AUTHZ_ADMIT] = "ok",
	[EDGE_AUTHZ_NOT_AUTHORIZED] = "not_authorized",
	[EDGE_AUTHZ_DENIED] = "denied",
};

const char *edge_authz_field_name(enum edge_authz_field f)
{
	return (unsigned int)f < EDGE_AUTHZ_NFIELDS ? field_names[f] : NULL;
}

int edge_authz_field_parse(const char *s, enum edge_authz_field *out)
{
	for (unsigned int i = 0; s && i < EDGE_AUTHZ_NFIELDS; i++) {
		if (!strcmp(s, field_names[i])) {
			*out = (enum edge_authz_field)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *edge_authz_effect_name(enum edge_authz_effect e)
{
	return (unsigned int)e < 2 ? effect_names[e] : "?";
}

int edge_authz_effect_parse(const char *s, enum edge_authz_effect *out)
{
	for (unsigned int i = 0; s && i < 2; i++) {
		if (!strcmp(s, effect_names[i])) {
			*out = (enum edge_authz_effect)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *edge_authz_decision_name(enum edge_authz_decision d)
{
	return (unsigned int)d < 3 ? decision_names[d] : "?";
}

/* ---- normalize ------------------------------------------------------------------------------- */

int edge_authz_normalize(enum edge_authz_field f, const char *value, char *out, size_t outlen,
			 char *err, size_t errlen)
{
	char buf[EDGE_AUTHZ_VALUE_MAX], host[EDGE_AUTHZ_HOST_MAX];
	unsigned char bytes[64];
	struct sb b = { buf, 0, sizeof(buf), false };
	struct why w = { err, errlen, value };
	size_t n = value ? strlen(value) : 0;
	bool spiffe;
	int rc = 0;

	buf[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if ((unsigned int)f >= EDGE_AUTHZ_NFIELDS)
		return edge_authz_bad(&w, "no such field");
	if (!n)
		return edge_authz_bad(&w, "an empty %s value", edge_authz_field_name(f));
	switch (f) {
	case EDGE_AUTHZ_DN:
		rc = edge_authz_dn_norm(&w, value, n, &b);
		break;
	case EDGE_AUTHZ_CN:
		if (n >= EDGE_AUTHZ_VALUE_MAX)
			return edge_authz_bad(&w, "a cn is at most %d bytes",
					      EDGE_AUTHZ_VALUE_MAX - 1);
		if (!edge_authz_utf8_ok((const unsigned char *)value, n))
			return edge_authz_bad(&w, "not valid UTF-8");
		sb_putn(&b, value, n);
		break;
	case EDGE_AUTHZ_DNS:
		rc = edge_authz_host_norm(&w, value, n, true, host);
		if (!rc)
			sb_puts(&b, host);
		break;
	case EDGE_AUTHZ_URI:
	case EDGE_AUTHZ_URI_PREFIX:
		rc = edge_authz_uri_norm(&w, value, n, f == EDGE_AUTHZ_URI_PREFIX, &b, &spiffe);
		break;
	case EDGE_AUTHZ_EMAIL:
		rc = edge_authz_email_norm(&w, value, n, &b);
		break;
	case EDGE_AUTHZ_IP: {
		unsigned char addr[16];
		int alen = 0, plen = 0;

		rc = edge_authz_ip_parse(&w, value, addr, &alen, &plen);
		if (!rc)
			edge_authz_ip_format(addr, alen, plen, &b);
		break;
	}
	case EDGE_AUTHZ_SHA256:
	case EDGE_AUTHZ_SPKI:
		rc = edge_authz_digest_norm(&w, value, n, f == EDGE_AUTHZ_SPKI, &b);
		break;
	case EDGE_AUTHZ_SKI:
		rc = edge_authz_hex_parse(&w, value, bytes, sizeof(bytes));
		if (rc > 0)
			sb_hex(&b, bytes, (size_t)rc, false);
		rc = rc < 0 ? rc : 0;
		break;
	case EDGE_AUTHZ_CA:
		/* the CLI's CA names: 1 to 64 characters, no control character */
		if (n > 64)
			return edge_authz_bad(&w, "a CA name has at most 64 characters");
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
				return edge_authz_bad(&w, "a CA name has no control characters");
		sb_putn(&b, value, n);
		break;
	case EDGE_AUTHZ_SERIAL:
		rc = edge_authz_serial_norm(&w, value, &b);
		break;
	case EDGE_AUTHZ_NFIELDS:
		break;
	}
	if (rc)
		return rc;
	if (b.over)
		return edge_authz_bad(&w, "longer than %d bytes in canonical form",
				      EDGE_AUTHZ_VALUE_MAX - 1);
	if (b.len >= outlen)
		return -ENOSPC;
	memmove(out, buf, b.len + 1);
	return 0;
}

/* ---- the set --------------------------------------------------------------------------------- */

struct entry {
	uint64_t hash;
	int64_t id;
	char *value;
	size_t len;
	uint32_t seq; /* the order of addition: the earliest match decides */
	uint8_t effect, field;
};

struct edge_authz {
	struct entry *ents;
	size_t n, cap, nallow;
	uint32_t *slots; /* 0: empty, else an index into ents + 1 */
	size_t nslots;
	uint32_t fields[2]; /* per effect, 1 << field for each field with entries */
	uint64_t ip4len;    /* bit L: an ip entry "x.x.x.x/L" exists */
	uint64_t ip6len[3]; /* the same for IPv6, L = 0..128 */
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const void *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)s)[i]) * FNV_PRIME;
	return h;
}

static uint64_t fnv_key(int effect, int field)
{
	unsigned char k[2] = { (unsigned char)effect, (unsigned char)field };

	return fnv(FNV_OFFSET, k, 2);
}

static size_t slot_of(uint64_t h, size_t nslots)
{
	h ^= h >> 33; /* FNV's low bits alone are weak: mix the high ones in */
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (nslots - 1);
}

static const struct entry *find(const struct edge_authz *a, uint64_t h, int effect, int field,
				const char *v, size_t n)
{
	if (!a->nslots)
		return NULL;
	for (size_t i = slot_of(h, a->nslots);; i = (i + 1) & (a->nslots - 1)) {
		const struct entry *x;

		if (!a->slots[i])
			return NULL;
		x = &a->ents[a->slots[i] - 1];
		if (x->hash == h && x->effect == effect && x->field == field && x->len == n &&
		    !memcmp(x->value, v, n))
			return x;
	}
}

struct edge_authz *edge_authz_new(void)
{
	return calloc(1, sizeof(struct edge_authz));
}

void edge_authz_free(struct edge_authz *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->ents[i].value);
	free(a->ents);
	free(a->slots);
	free(a);
}

size_t edge_authz_count(const struct edge_authz *a)
{
	return a ? a->n : 0;
}

size_t edge_authz_allow_count(const struct edge_authz *a)
{
	return a ? a->nallow : 0;
}

static int grow(struct edge_authz *a)
{
	size_t nslots = a->nslots ? a->nslots * 2 : 16;
	uint32_t *slots;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		struct entry *e = cap < UINT32_MAX / 4 ? realloc(a->ents, cap * sizeof(*e)) : NULL;

		if (!e)
			return -ENOMEM;
		a->ents = e;
		a->cap = cap;
	}
	if ((a->n + 1) * 2 <= a->nslots)
		return 0;
	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		size_t s = slot_of(a->ents[i].hash, nslots);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = (uint32_t)i + 1;
	}
	free(a->slots);
	a->slots = slots;
	a->nslots = nslots;
	return 0;
}

int edge_authz_add(struct edge_authz *a, enum edge_authz_effect e, enum edge_authz_field f,
		   const char *value, int64_t id)
{
	char canon[EDGE_AUTHZ_VALUE_MAX];
	size_t n, s;
	struct entry *x;
	uint64_t h;

	if (!a || !value || id <= 0 || (unsigned int)e > EDGE_AUTHZ_DENY ||
	    edge_authz_normalize(f, value, canon, sizeof(canon), NULL, 0) || strcmp(canon, value))
		return -EINVAL;
	n = strlen(value);
	h = fnv(fnv_key(e, f), value, n);
	if (find(a, h, e, f, value, n))
		return 0; /* a duplicate keeps the first id */
	if (grow(a))
		return -ENOMEM;
	x = &a->ents[a->n];
	x->value = strdup(value);
	if (!x->value)
		return -ENOMEM;
	x->hash = h;
	x->id = id;
	x->len = n;
	x->seq = (uint32_t)a->n;
	x->effect = (uint8_t)e;
	x->field = (uint8_t)f;
	for (s = slot_of(h, a->nslots); a->slots[s];)
		s = (s + 1) & (a->nslots - 1);
	a->slots[s] = (uint32_t)++a->n;
	a->nallow += e == EDGE_AUTHZ_ALLOW;
	a->fields[e] |= 1u << f;
	if (f == EDGE_AUTHZ_IP) {
		int plen = atoi(strchr(value, '/') + 1);

		if (strchr(value, ':'))
			a->ip6len[plen / 64] |= 1ULL << (plen % 64);
		else
			a->ip4len |= 1ULL << plen;
	}
	return 0;
}

/* ---- the check ------------------------------------------------------------------------------- */

struct hits {
	const struct edge_authz *a;
	const struct entry *e[2]; /* the earliest matching allow and deny entries */
};

static void hit(struct hits *m, const struct entry *x)
{
	if (x && (!m->e[x->effect] || x->seq < m->e[x->effect]->seq))
		m->e[x->effect] = x;
}

static bool wants(const struct edge_authz *a, enum edge_authz_field f)
{
	return (a->fields[0] | a->fields[1]) & (1u << f);
}

static void probe(struct hits *m, enum edge_authz_field f, const char *v, size_t n)
{
	for (int e = 0; e < 2; e++)
		if (m->a->fields[e] & (1u << f))
			hit(m, find(m->a, fnv(fnv_key(e, f), v, n), e, f, v, n));
}

/* uri-prefix entries for u: each prefix that ends just before or just after a '/', and u. */
static void probe_prefixes(struct hits *m, const char *u, size_t n)
{
	for (int e = 0; e < 2; e++) {
		uint64_t h = fnv_key(e, EDGE_AUTHZ_URI_PREFIX);

		if (!(m->a->fields[e] & (1u << EDGE_AUTHZ_URI_PREFIX)))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (u[i] == '/')
				hit(m, find(m->a, h, e, EDGE_AUTHZ_URI_PREFIX, u, i));
			h = fnv(h, u + i, 1);
			if (u[i] == '/')
				hit(m, find(m->a, h, e, EDGE_AUTHZ_URI_PREFIX, u, i + 1));
		}
		hit(m, find(m->a, h, e, EDGE_AUTHZ_URI_PREFIX, u, n));
	}
}

static void probe_ip(struct hits *m, const unsigned char *addr, int alen)
{
	for (int plen = 0; plen <= alen * 8; plen++) {
		char buf[64];
		struct sb b = { buf, 0, sizeof(buf), false };
		bool used = alen == 4 ? m->a->ip4len >> plen & 1
				      : m->a->ip6len[plen / 64] >> (plen % 64) & 1;

		if (!used)
			continue;
		edge_authz_ip_format(addr, alen, plen, &b);
		probe(m, EDGE_AUTHZ_IP, buf, b.len);
	}
}

static const struct why quiet = { NULL, 0, NULL };

static void probe_san(struct hits *m, const GENERAL_NAME *g, const struct edge_authz_anchor *anc)
{
	const ASN1_STRING *s = NULL;
	const char *v;
	char host[EDGE_AUTHZ_HOST_MAX], buf[EDGE_AUTHZ_VALUE_MAX];
	struct sb b = { buf, 0, sizeof(buf), false };
	bool spiffe;
	int n;

	if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL ||
	    g->type == GEN_IPADD)
		s = g->d.ia5;
	if (!s)
		return;
	v = (const char *)ASN1_STRING_get0_data(s);
	n = ASN1_STRING_length(s);
	if (g->type == GEN_IPADD) {
		if ((n == 4 || n == 16) && wants(m->a, EDGE_AUTHZ_IP))
			probe_ip(m, (const unsigned char *)v, n);
		return;
	}
	if (n <= 0 || memchr(v, '\0', (size_t)n))
		return; /* a NUL byte: it never matches */
	if (g->type == GEN_DNS && wants(m->a, EDGE_AUTHZ_DNS) &&
	    !edge_authz_host_norm(&quiet, v, (size_t)n, true, host)) {
		const char *dot = strchr(host, '.');

		probe(m, EDGE_AUTHZ_DNS, host, strlen(host));
		if (host[0] != '*' && dot) {
			sb_putc(&b, '*');
			sb_puts(&b, dot);
			probe(m, EDGE_AUTHZ_DNS, buf, b.len);
		}
	} else if (g->type == GEN_URI &&
		   (wants(m->a, EDGE_AUTHZ_URI) || wants(m->a, EDGE_AUTHZ_URI_PREFIX)) &&
		   !edge_authz_uri_norm(&quiet, v, (size_t)n, false, &b, &spiffe) && !b.over) {
		if (spiffe) {
			/* spiffe://TD[/...]: believed only from TD's own CA */
			const char *td = buf + 9, *end = strchr(td, '/');
			size_t tl = end ? (size_t)(end - td) : strlen(td);

			if (!anc || !anc->trust_domain || strlen(anc->trust_domain) != tl ||
			    memcmp(anc->trust_domain, td, tl))
				return;
		}
		probe(m, EDGE_AUTHZ_URI, buf, b.len);
		probe_prefixes(m, buf, b.len);
	} else if (g->type == GEN_EMAIL && wants(m->a, EDGE_AUTHZ_EMAIL) &&
		   !edge_authz_email_norm(&quiet, v, (size_t)n, &b) && !b.over) {
		probe(m, EDGE_AUTHZ_EMAIL, buf, b.len);
	}
}

static void probe_subject(struct hits *m, const X509_NAME *nm, int count)
{
	if (wants(m->a, EDGE_AUTHZ_DN)) {
		char buf[EDGE_AUTHZ_VALUE_MAX];
		struct sb b = { buf, 0, sizeof(buf), false };

		if (edge_authz_dn_render(nm, count, &b) && !b.over)
			probe(m, EDGE_AUTHZ_DN, buf, b.len);
	}
	if (!wants(m->a, EDGE_AUTHZ_CN))
		return;
	for (int i = -1; (i = X509_NAME_get_index_by_NID(nm, NID_commonName, i)) >= 0;) {
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u,
					    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));

		if (n > 0 && n < EDGE_AUTHZ_VALUE_MAX && edge_authz_utf8_ok(u, (size_t)n))
			probe(m, EDGE_AUTHZ_CN, (const char *)u, (size_t)n);
		OPENSSL_free(u);
	}
}

/* The digests, the key identifier, the serial. 0 or -ENOMEM. */
static int probe_digests(struct hits *m, X509 *leaf)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char buf[EDGE_AUTHZ_VALUE_MAX];
	struct sb b = { buf, 0, sizeof(buf), false };
	const ASN1_OCTET_STRING *ski;
	const ASN1_INTEGER *sn;

	if (wants(m->a, EDGE_AUTHZ_SHA256)) {
		if (!X509_digest(leaf, EVP_sha256(), md, NULL))
			return -ENOMEM;
		sb_hex(&b, md, 32, false);
		probe(m, EDGE_AUTHZ_SHA256, buf, b.len);
	}
	if (wants(m->a, EDGE_AUTHZ_SPKI)) {
		unsigned char *der = NULL;
		int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &der);
		int ok = n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL);

		OPENSSL_free(der);
		if (!ok)
			return -ENOMEM;
		b.len = 0;
		sb_hex(&b, md, 32, false);
		probe(m, EDGE_AUTHZ_SPKI, buf, b.len);
	}
	ski = wants(m->a, EDGE_AUTHZ_SKI) ? X509_get0_subject_key_id(leaf) : NULL;
	if (ski && ASN1_STRING_length(ski) > 0 && ASN1_STRING_length(ski) <= 64) {
		b.len = 0;
		sb_hex(&b, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski), false);
		probe(m, EDGE_AUTHZ_SKI, buf, b.len);
	}
	sn = wants(m->a, EDGE_AUTHZ_SERIAL) ? X509_get0_serialNumber(leaf) : NULL;
	if (sn && ASN1_STRING_type(sn) == V_ASN1_INTEGER) {
		const unsigned char *d = ASN1_STRING_get0_data(sn);
		size_t i = 0, n = (size_t)(ASN1_STRING_length(sn) > 0 ? ASN1_STRING_length(sn) : 0);

		while (i < n && !d[i])
			i++;
		b.len = 0;
		b.over = false;
		if (i == n)
			sb_putc(&b, '0');
		else
			sb_hex(&b, d + i, n - i, true);
		if (!b.over)
			probe(m, EDGE_AUTHZ_SERIAL, buf, b.len);
	}
	return 0;
}

static void describe(struct edge_authz_result *res, const struct entry *x)
{
	char head[32], tail[32];
	size_t room, vn = x->len;
	bool cut = false;

	snprintf(head, sizeof(head), "%s %s=", effect_names[x->effect], field_names[x->field]);
	snprintf(tail, sizeof(tail), " (#%lld)", (long long)x->id);
	room = sizeof(res->text) - 1 - strlen(head) - strlen(tail);
	if (vn > room) {
		for (vn = room - 3; vn && ((unsigned char)x->value[vn] & 0xc0) == 0x80;)
			vn--;
		cut = true;
	}
	snprintf(res->text, sizeof(res->text), "%s%.*s%s%s", head, (int)vn, x->value,
		 cut ? "..." : "", tail);
	for (char *p = res->text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	res->rule_id = x->id;
	res->effect = (enum edge_authz_effect)x->effect;
	res->field = (enum edge_authz_field)x->field;
}

static int refuse(struct edge_authz_result *res, const char *why)
{
	res->decision = EDGE_AUTHZ_DENIED;
	res->effect = EDGE_AUTHZ_DENY;
	snprintf(res->text, sizeof(res->text), "%s", why);
	return 0;
}

int edge_authz_check(const struct edge_authz *a, X509 *leaf, const struct edge_authz_anchor *anchor,
		     struct edge_authz_result *res)
{
	struct hits m = { a, { NULL, NULL } };
	const X509_NAME *subject;
	GENERAL_NAMES *gens;
	int crit = -1, count, nsan = 0, rc;

	if (!res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (!a || !a->n)
		return 0;
	if (!leaf)
		return refuse(res, "no certificate to check the identity rules against");
	subject = X509_get_subject_name(leaf);
	count = subject ? X509_NAME_entry_count(subject) : 0;
	if (count > EDGE_AUTHZ_MAX_ATTRS)
		return refuse(res, "the certificate's subject has more than 64 attributes");
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (!gens && crit != -1)
		return refuse(res, "the certificate's subjectAltName extension cannot be read");
	nsan = gens ? sk_GENERAL_NAME_num(gens) : 0;
	if (nsan > MAX_SANS) {
		GENERAL_NAMES_free(gens);
		return refuse(res, "the certificate has more than 256 subjectAltName entries");
	}
	for (int i = 0; i < nsan; i++)
		probe_san(&m, sk_GENERAL_NAME_value(gens, i), anchor);
	GENERAL_NAMES_free(gens);
	if (subject)
		probe_subject(&m, subject, count);
	rc = probe_digests(&m, leaf);
	if (rc)
		return rc;
	if (wants(a, EDGE_AUTHZ_CA) && anchor && anchor->name && strlen(anchor->name) <= 64)
		probe(&m, EDGE_AUTHZ_CA, anchor->name, strlen(anchor->name));
	if (m.e[EDGE_AUTHZ_DENY]) {
		res->decision = EDGE_AUTHZ_DENIED;
		describe(res, m.e[EDGE_AUTHZ_DENY]);
	} else if (m.e[EDGE_AUTHZ_ALLOW]) {
		describe(res, m.e[EDGE_AUTHZ_ALLOW]);
	} else if (a->nallow) {
		res->decision = EDGE_AUTHZ_NOT_AUTHORIZED;
		snprintf(res->text, sizeof(res->text), "no allow entry matched");
	}
	return 0;
}
