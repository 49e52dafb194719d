/*
 * Identity rules: distinguished names. A dn entry's value in RFC 4514 form parsed into its
 * canonical form (for edge_authz_normalize, authz_value.c), and a certificate's subject
 * rendered in the same form (for the check, authz.c). The rules are in authz.c's opening
 * comment, under dn.
 */
#include "authz_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/objects.h>

#define DN_INPUT_MAX (4 * EDGE_AUTHZ_VALUE_MAX)
#define OID_MAX 96

struct dn_attr {
	char oid[OID_MAX];
	const unsigned char *v;
	size_t n;
};

static void dn_escape(struct sb *b, const unsigned char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = v[i];

		if (c < 0x20 || c == 0x7f) {
			char x[4];

			snprintf(x, sizeof(x), "\\%02X", c);
			sb_puts(b, x);
			continue;
		}
		if (strchr("\"+,;<>\\", c) || (!i && (c == ' ' || c == '#')) ||
		    (i == n - 1 && c == ' '))
			sb_putc(b, '\\');
		sb_putc(b, (char)c);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends one RDN: its attributes as OID=VALUE, sorted, joined by '+'; false when too long. */
static bool rdn_emit(struct sb *out, const struct dn_attr *at, size_t n)
{
	char tmp[EDGE_AUTHZ_VALUE_MAX], *strs[EDGE_AUTHZ_MAX_ATTRS];
	struct sb t = { tmp, 0, sizeof(tmp), false };

	for (size_t i = 0; i < n; i++) {
		strs[i] = tmp + t.len;
		sb_puts(&t, at[i].oid);
		sb_putc(&t, '=');
		dn_escape(&t, at[i].v, at[i].n);
		sb_putc(&t, '\0'); /* keeps each string's terminator */
	}
	if (t.over)
		return false;
	qsort(strs, n, sizeof(strs[0]), cmp_str);
	if (out->len)
		sb_putc(out, ',');
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(out, '+');
		sb_puts(out, strs[i]);
	}
	return !out->over;
}

static const struct {
	const char *name;
	int nid;
} dn_types[] = {
	{ "CN", NID_commonName },
	{ "O", NID_organizationName },
	{ "OU", NID_organizationalUnitName },
	{ "C", NID_countryName },
	{ "L", NID_localityName },
	{ "ST", NID_stateOrProvinceName },
	{ "STREET", NID_streetAddress },
	{ "DC", NID_domainComponent },
	{ "UID", NID_userId },
	{ "SN", NID_surname },
	{ "GN", NID_givenName },
	{ "serialNumber", NID_serialNumber },
	{ "title", NID_title },
	{ "emailAddress", NID_pkcs9_emailAddress },
};

/* An attribute type (a name or a dotted OID) as its dotted OID. */
static int dn_type(const struct why *w, const char *t, size_t tl, char *oid)
{
	bool dotted = is_digit(t[0]) && t[tl - 1] != '.';
	ASN1_OBJECT *obj = NULL;
	char name[OID_MAX];
	int nid = NID_undef, r;

	if (tl >= sizeof(name))
		return edge_authz_bad(w, "the attribute type '%.32s...' is too long", t);
	memcpy(name, t, tl);
	name[tl] = '\0';
	for (size_t i = 0; dotted && i < tl; i++)
		dotted = is_digit(t[i]) || (t[i] == '.' && t[i + 1] != '.');
	if (dotted && strchr(name, '.')) {
		obj = OBJ_txt2obj(name, 1);
	} else if (!is_digit(t[0])) {
		for (size_t i = 0; i < sizeof(dn_types) / sizeof(dn_types[0]); i++)
			if (!strcasecmp(name, dn_types[i].name))
				nid = dn_types[i].nid;
		if (nid == NID_undef)
			nid = OBJ_txt2nid(name);
		obj = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
	}
	if (!obj)
		return edge_authz_bad(
			w,
			"unknown attribute type '%s' (a short name such as CN, O, OU, C, DC, "
			"or a dotted OID)",
			name);
	r = OBJ_obj2txt(oid, OID_MAX, obj, 1);
	ASN1_OBJECT_free(obj); /* a no-op for OpenSSL's own objects */
	if (r <= 0 || r >= OID_MAX)
		return edge_authz_bad(w, "the attribute type '%s' is not a usable OID", name);
	return 0;
}

int edge_authz_dn_norm(const struct why *w, const char *s, size_t len, struct sb *out)
{
	unsigned char vals[DN_INPUT_MAX];
	struct dn_attr at[EDGE_AUTHZ_MAX_ATTRS];
	size_t vlen = 0, nat = 0, total = 0;
	const char *p = s;

	if (len >= DN_INPUT_MAX)
		return edge_authz_bad(w, "a DN is at most %d bytes", DN_INPUT_MAX - 1);
	for (;;) {
		const char *t;
		unsigned char *v = vals + vlen;
		size_t vn = 0, keep = 0, tl;
		int rc;

		while (*p == ' ')
			p++;
		for (t = p; is_alpha(*p) || is_digit(*p) || *p == '-' || *p == '.';)
			p++;
		tl = (size_t)(p - t);
		if (!tl)
			return edge_authz_bad(w, "an attribute type is missing at offset %zu",
					      (size_t)(t - s));
		while (*p == ' ')
			p++;
		if (*p != '=')
			return edge_authz_bad(w, "'=' expected after the attribute type '%.*s'",
					      (int)tl, t);
		if (total == EDGE_AUTHZ_MAX_ATTRS)
			return edge_authz_bad(w, "a DN has at most %d attributes",
					      EDGE_AUTHZ_MAX_ATTRS);
		rc = dn_type(w, t, tl, at[nat].oid);
		if (rc)
			return rc;
		for (p++; *p == ' ';)
			p++;
		if (*p == '#')
			return edge_authz_bad(
				w, "the #hex (BER) form of a value is not supported: write the "
				   "value as a string (a leading '#' as \\#)");
		while (*p && *p != ',' && *p != '+') {
			unsigned char c = (unsigned char)*p++;

			if (c == '\\') {
				if (hex_val(p[0]) >= 0 && hex_val(p[1]) >= 0) {
					c = (unsigned char)(hex_val(p[0]) << 4 | hex_val(p[1]));
					p += 2;
					if (!c)
						return edge_authz_bad(
							w, "a value with a NUL byte (\\00) never "
							   "matches");
				} else if (*p && strchr("\\,+\"<>;=# ", *p)) {
					c = (unsigned char)*p++;
				} else {
					return edge_authz_bad(
						w,
						"a bad escape at offset %zu (escape one of , + \" "
						"\\ < > ; = # and space, or a byte as \\XX)",
						(size_t)(p - 1 - s));
				}
				v[vn++] = c;
				keep = vn;
			} else if (strchr("\"<>;", c)) {
				return edge_authz_bad(w, "'%c' must be escaped in a value (\\%c)",
						      c, c);
			} else {
				v[vn++] = c;
				keep = c == ' ' ? keep : vn;
			}
		}
		vn = keep; /* unescaped trailing spaces are not part of the value */
		if (!edge_authz_utf8_ok(v, vn))
			return edge_authz_bad(w, "a value is not valid UTF-8");
		at[nat].v = v;
		at[nat++].n = vn;
		vlen += vn;
		total++;
		if (*p == '+') {
			p++;
			continue;
		}
		if (!rdn_emit(out, at, nat))
			return edge_authz_bad(w, "longer than %d bytes in canonical form",
					      EDGE_AUTHZ_VALUE_MAX - 1);
		nat = 0;
		if (!*p++)
			return 0;
	}
}

/* The subject in canonical form; false when it can match no entry. */
bool edge_authz_dn_render(const X509_NAME *nm, int count, struct sb *out)
{
	struct dn_attr at[EDGE_AUTHZ_MAX_ATTRS];
	unsigned char *bufs[EDGE_AUTHZ_MAX_ATTRS];
	bool good = count > 0;

	for (int i = count - 1; i >= 0 && good;) {
		int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, i));
		size_t nat = 0;

		for (; i >= 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, i)) == set; i--) {
			const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
			int n, r;

			bufs[nat] = NULL;
			n = ASN1_STRING_to_UTF8(&bufs[nat], X509_NAME_ENTRY_get_data(e));
			r = OBJ_obj2txt(at[nat].oid, OID_MAX, X509_NAME_ENTRY_get_object(e), 1);
			if (n < 0 || !edge_authz_utf8_ok(bufs[nat], (size_t)n) || r <= 0 ||
			    r >= OID_MAX)
				good = false;
			at[nat].v = bufs[nat];
			at[nat++].n = n < 0 ? 0 : (size_t)n;
		}
		good = good && rdn_emit(out, at, nat);
		while (nat)
			OPENSSL_free(bufs[--nat]);
	}
	return good;
}
