/* Unit tests for userspace/lib/authz.c: field names, the compiled sets, and the check against
 * certificates made here with the OpenSSL API (rule values' canonical form: test_authz_norm.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "authz.h"
#include "tap.h"

static char err[256];
static EVP_PKEY *pkey;

/* ---- certificates ---------------------------------------------------------------------------- */

struct san {
	int type;
	const char *v;
	int n; /* 0: strlen(v) */
};

static X509 *cert_new(long serial)
{
	X509 *x = X509_new();

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	return x;
}

/* set: 0 a new RDN, -1 the previous RDN (a multi-valued one). */
static void subj(X509 *x, const char *type, const char *v, int n, int set)
{
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), type, MBSTRING_UTF8,
				   (const unsigned char *)v, n ? n : -1, -1, set);
}

static void add_sans(X509 *x, const struct san *s, size_t n)
{
	GENERAL_NAMES *g = sk_GENERAL_NAME_new_null();

	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_STRING *v = s[i].type == GEN_IPADD ? ASN1_OCTET_STRING_new()
							: ASN1_IA5STRING_new();

		ASN1_STRING_set(v, s[i].v, s[i].n ? s[i].n : (int)strlen(s[i].v));
		GENERAL_NAME_set0_value(gn, s[i].type, v);
		sk_GENERAL_NAME_push(g, gn);
	}
	X509_add1_ext_i2d(x, NID_subject_alt_name, g, 0, X509V3_ADD_DEFAULT);
	GENERAL_NAMES_free(g);
}

static X509 *cert_done(X509 *x)
{
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, pkey, EVP_sha256());
	return x;
}

/* alice: C=US, O="Acme, Inc.", OU=eng+UID=alice, CN=alice; serial 0x105; an SKI 01..14;
 * SANs of every type, duplicates, and NUL bytes in a dNSName, an rfc822Name and a URI. */
static X509 *cert_alice(void)
{
	static const struct san sans[] = {
		{ GEN_DNS, "api.example.com", 0 },
		{ GEN_DNS, "API.Example.COM", 0 },
		{ GEN_DNS, "evil.example.com\0.attacker.test", 31 },
		{ GEN_DNS, "*.wild.example.com", 0 },
		{ GEN_URI, "spiffe://example.org/ns/prod/sa/web", 0 },
		{ GEN_URI, "https://Example.COM/Path/To", 0 },
		{ GEN_URI, "https://nul.example/a\0/b", 24 },
		{ GEN_EMAIL, "Alice@Example.COM", 0 },
		{ GEN_EMAIL, "bob@example.com\0.x", 18 },
		{ GEN_IPADD, "\xc0\x00\x02\x0a", 4 },
		{ GEN_IPADD, "\xc0\x00\x02\x0a", 4 },
		{ GEN_IPADD, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x05", 16 },
		{ GEN_IPADD, "\x0a\0\0\x01\xff\xff\xff\0", 8 },
		{ GEN_URI, "spiffe://example.org/ns/prod/sa/web", 0 },
	};
	X509 *x = cert_new(0x105);
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	unsigned char id[20];

	subj(x, "C", "US", 0, 0);
	subj(x, "O", "Acme, Inc.", 0, 0);
	subj(x, "OU", "eng", 0, 0);
	subj(x, "UID", "alice", 0, -1);
	subj(x, "CN", "alice", 0, 0);
	add_sans(x, sans, sizeof(sans) / sizeof(sans[0]));
	for (int i = 0; i < 20; i++)
		id[i] = (unsigned char)(i + 1);
	ASN1_OCTET_STRING_set(ski, id, sizeof(id));
	X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT);
	ASN1_OCTET_STRING_free(ski);
	return cert_done(x);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static const struct edge_authz_anchor td_org = { "corp-ca", "example.org" };
static const struct edge_authz_anchor td_other = { "other-ca", "other.org" };
static const struct edge_authz_anchor no_td = { "builtin", NULL };

/* One entry (raw, normalised first) against x, as an allow and as a deny: 1 when both say it
 * matches, 0 when both say it does not, -1 when they disagree or the value is refused. */
static int matches(X509 *x, const struct edge_authz_anchor *anc, enum edge_authz_field f,
		   const char *raw)
{
	char v[EDGE_AUTHZ_VALUE_MAX];
	int said[2];

	if (edge_authz_normalize(f, raw, v, sizeof(v), err, sizeof(err))) {
		printf("#   '%s' refused: %s\n", raw, err);
		return -1;
	}
	for (int e = 0; e < 2; e++) {
		struct edge_authz *a = edge_authz_new();
		struct edge_authz_result r;

		if (edge_authz_add(a, (enum edge_authz_effect)e, f, v, 7) ||
		    edge_authz_check(a, x, anc, &r)) {
			edge_authz_free(a);
			return -1;
		}
		if (e == EDGE_AUTHZ_ALLOW)
			said[e] = r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 7 ? 1
				  : r.decision == EDGE_AUTHZ_NOT_AUTHORIZED        ? 0
										   : -1;
		else
			said[e] = r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 7 ? 1
				  : r.decision == EDGE_AUTHZ_ADMIT && !r.rule_id    ? 0
										    : -1;
		edge_authz_free(a);
	}
	return said[0] == said[1] ? said[0] : -1;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_names(void)
{
	static const char *const want[] = { "dn", "cn",     "dns",  "uri", "uri-prefix", "email",
					    "ip", "sha256", "spki", "ski", "ca",         "serial" };
	enum edge_authz_field f;
	enum edge_authz_effect e;
	bool all = true;

	for (int i = 0; i < EDGE_AUTHZ_NFIELDS; i++) {
		const char *n = edge_authz_field_name((enum edge_authz_field)i);

		all = all && n && !strcmp(n, want[i]) && !edge_authz_field_parse(n, &f) &&
		      f == (enum edge_authz_field)i;
	}
	ok(all, "every field has its name, and the name parses back");
	ok(!edge_authz_field_name(EDGE_AUTHZ_NFIELDS), "a field out of range has no name");
	is_int(edge_authz_field_parse("DNS", &f), -EINVAL, "field names are lower-case");
	is_int(edge_authz_field_parse("subject", &f), -EINVAL, "an unknown field is refused");
	ok(!strcmp(edge_authz_effect_name(EDGE_AUTHZ_ALLOW), "allow") &&
		   !strcmp(edge_authz_effect_name(EDGE_AUTHZ_DENY), "deny"),
	   "effect names");
	ok(!edge_authz_effect_parse("deny", &e) && e == EDGE_AUTHZ_DENY &&
		   !edge_authz_effect_parse("allow", &e) && e == EDGE_AUTHZ_ALLOW,
	   "effect names parse back");
	is_int(edge_authz_effect_parse("block", &e), -EINVAL, "an unknown effect is refused");
	ok(!strcmp(edge_authz_decision_name(EDGE_AUTHZ_ADMIT), "ok") &&
		   !strcmp(edge_authz_decision_name(EDGE_AUTHZ_NOT_AUTHORIZED), "not_authorized") &&
		   !strcmp(edge_authz_decision_name(EDGE_AUTHZ_DENIED), "denied"),
	   "decision names");
}

static void test_add(void)
{
	struct edge_authz *a = edge_authz_new();
	X509 *x = cert_alice();
	struct edge_authz_result r;

	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "API.example.com", 1), -EINVAL,
	       "add refuses a value that is not canonical");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DN, "CN=alice", 1), -EINVAL,
	       "add refuses a DN that is not canonical");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_IP, "192.0.2.1", 1), -EINVAL,
	       "add refuses an address without its length");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_NFIELDS, "x", 1), -EINVAL,
	       "add refuses a field out of range");
	is_int(edge_authz_add(a, (enum edge_authz_effect)2, EDGE_AUTHZ_CN, "x", 1), -EINVAL,
	       "add refuses an effect out of range");
	is_int(edge_authz_add(NULL, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CN, "x", 1), -EINVAL,
	       "add refuses a NULL set");
	is_int(edge_authz_count(a), 0, "nothing refused was added");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "api.example.com", 11), 0,
	       "add takes a canonical value");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "api.example.com", 12), 0,
	       "a duplicate is not an error");
	is_int(edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_DNS, "api.example.com", 13), 0,
	       "the same value with the other effect is another entry");
	is_int(edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CN, "api.example.com", 14), 0,
	       "the same value in another field is another entry");
	is_int(edge_authz_count(a), 3, "three entries");
	is_int(edge_authz_allow_count(a), 2, "two of them allow");
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 13, "the deny entry decides (#%lld)",
	   (long long)r.rule_id);
	edge_authz_free(a);
	a = edge_authz_new();
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "api.example.com", 11);
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "api.example.com", 12);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 11, "a duplicate keeps the first id");
	is_int(edge_authz_count(NULL), 0, "a NULL set counts 0");
	edge_authz_free(a);
	edge_authz_free(NULL);
	X509_free(x);
}

static void test_fields(void)
{
	X509 *x = cert_alice(), *w, *odd;
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	char hex[200], colons[200], b64[64];
	unsigned int mdlen;
	int derlen;
	static const struct san wsans[] = {
		{ GEN_DNS, "example.com", 0 },
		{ GEN_DNS, "a.b.example.com", 0 },
	};

	/* dn */
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "CN=alice,OU=eng+UID=alice,O=Acme\\, Inc.,C=US"), 1,
	       "dn: the subject in RFC 4514 form matches");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "cn=alice, uid=alice+ou=eng, o=Acme\\2C Inc., c=US"),
	       1, "dn: whatever the order inside a multi-valued RDN, type case and escapes");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN,
		       "2.5.4.3=alice,0.9.2342.19200300.100.1.1=alice+2.5.4.11=eng,"
		       "2.5.4.10=Acme\\, Inc.,2.5.4.6=US"),
	       1, "dn: the canonical form matches");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "CN=Alice,OU=eng+UID=alice,O=Acme\\, Inc.,C=US"), 0,
	       "dn: values are case-sensitive");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "C=US,O=Acme\\, Inc.,OU=eng+UID=alice,CN=alice"), 0,
	       "dn: the RDN order matters (RFC 4514: the most specific first)");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "CN=alice,OU=eng,UID=alice,O=Acme\\, Inc.,C=US"), 0,
	       "dn: two RDNs are not one multi-valued RDN");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "CN=alice,O=Acme\\, Inc.,C=US"), 0,
	       "dn: a missing RDN does not match");
	is_int(matches(x, NULL, EDGE_AUTHZ_DN, "CN=alice"), 0, "dn: the CN alone does not match");
	/* cn */
	is_int(matches(x, NULL, EDGE_AUTHZ_CN, "alice"), 1, "cn: exact");
	is_int(matches(x, NULL, EDGE_AUTHZ_CN, "Alice"), 0, "cn: case-sensitive");
	is_int(matches(x, NULL, EDGE_AUTHZ_CN, "alic"), 0, "cn: no substrings");
	is_int(matches(x, NULL, EDGE_AUTHZ_CN, "eng"), 0, "cn: another attribute is not a CN");
	/* dns */
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "api.example.com"), 1, "dns: exact");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "API.EXAMPLE.COM."), 1, "dns: case-insensitive");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "*.example.com"), 1, "dns: *.example.com");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "*.com"), 0, "dns: a wildcard covers one label");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "evil.example.com"), 0,
	       "dns: a dNSName with a NUL byte never matches");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "*.attacker.test"), 0,
	       "dns: ... nor does what follows its NUL");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "*.wild.example.com"), 1,
	       "dns: a SAN wildcard matches the same literal entry");
	is_int(matches(x, NULL, EDGE_AUTHZ_DNS, "x.wild.example.com"), 0,
	       "dns: a SAN wildcard matches no name under it");
	w = cert_new(1);
	subj(w, "CN", "wild", 0, 0);
	add_sans(w, wsans, 2);
	cert_done(w);
	is_int(matches(w, NULL, EDGE_AUTHZ_DNS, "*.example.com"), 0,
	       "dns: *.example.com matches neither example.com nor a.b.example.com");
	is_int(matches(w, NULL, EDGE_AUTHZ_DNS, "*.b.example.com"), 1,
	       "dns: *.b.example.com matches a.b.example.com");
	is_int(matches(w, NULL, EDGE_AUTHZ_DNS, "*.a.b.example.com"), 0,
	       "dns: *.a.b.example.com does not match a.b.example.com");
	/* uri, uri-prefix, SPIFFE */
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI, "spiffe://example.org/ns/prod/sa/web"), 1,
	       "uri: a SPIFFE ID from its trust domain's CA");
	is_int(matches(x, &td_other, EDGE_AUTHZ_URI, "spiffe://example.org/ns/prod/sa/web"), 0,
	       "uri: the same SPIFFE ID from a CA of another trust domain does not match");
	is_int(matches(x, &no_td, EDGE_AUTHZ_URI, "spiffe://example.org/ns/prod/sa/web"), 0,
	       "uri: ... nor from a CA without a trust domain");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "spiffe://example.org/ns/prod/sa/web"), 0,
	       "uri: ... nor without an anchor");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI, "spiffe://example.org/ns/prod/sa/Web"), 0,
	       "uri: the path is case-sensitive");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "https://example.com/Path/To"), 1,
	       "uri: a non-SPIFFE URI from any anchor; its authority without case");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "HTTPS://EXAMPLE.com/Path/To"), 1,
	       "uri: the scheme and authority of the entry without case");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "https://example.com/path/to"), 0,
	       "uri: the path of a URI is case-sensitive");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "https://example.com/Path"), 0, "uri: no prefixes");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI, "https://nul.example/a"), 0,
	       "uri: a URI with a NUL byte never matches");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI_PREFIX, "https://nul.example/"), 0,
	       "uri-prefix: ... nor under a prefix");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/prod/"), 1,
	       "uri-prefix: a prefix ending in '/'");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/prod"), 1,
	       "uri-prefix: a prefix followed by '/'");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/prod/sa/web"), 1,
	       "uri-prefix: the URI itself");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org"), 1,
	       "uri-prefix: the trust domain");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/pro"), 0,
	       "uri-prefix: not in the middle of a segment");
	is_int(matches(x, &td_org, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/prod/sa/web/"),
	       0, "uri-prefix: not longer than the URI");
	is_int(matches(x, &td_other, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/"), 0,
	       "uri-prefix: a SPIFFE ID only from its trust domain's CA");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI_PREFIX, "https://example.com/Path"), 1,
	       "uri-prefix: a https prefix");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI_PREFIX, "https://example.com/Pa"), 0,
	       "uri-prefix: ... at a '/' boundary only");
	is_int(matches(x, NULL, EDGE_AUTHZ_URI_PREFIX, "https://example.com/path"), 0,
	       "uri-prefix: ... case-sensitive in the path");
	/* email */
	is_int(matches(x, NULL, EDGE_AUTHZ_EMAIL, "Alice@example.com"), 1, "email: exact");
	is_int(matches(x, NULL, EDGE_AUTHZ_EMAIL, "Alice@EXAMPLE.com"), 1,
	       "email: the domain without case");
	is_int(matches(x, NULL, EDGE_AUTHZ_EMAIL, "alice@example.com"), 0,
	       "email: the local part with case");
	is_int(matches(x, NULL, EDGE_AUTHZ_EMAIL, "bob@example.com"), 0,
	       "email: an rfc822Name with a NUL byte never matches");
	/* ip */
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "192.0.2.10"), 1, "ip: an IPv4 address");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "192.0.2.0/24"), 1, "ip: an IPv4 block");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "0.0.0.0/0"), 1, "ip: every IPv4 address");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "192.0.2.11"), 0, "ip: another address");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "10.0.0.0/8"), 0,
	       "ip: another block (nor an iPAddress of 8 bytes)");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "2001:db8::5"), 1, "ip: an IPv6 address");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "2001:db8::/32"), 1, "ip: an IPv6 block");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "2001:db9::/32"), 0, "ip: another IPv6 block");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "::ffff:192.0.2.10"), 0,
	       "ip: an IPv4-mapped entry does not match the IPv4 address");
	is_int(matches(x, NULL, EDGE_AUTHZ_IP, "::/0"), 1, "ip: every IPv6 address");
	/* sha256 */
	X509_digest(x, EVP_sha256(), md, &mdlen);
	for (unsigned int i = 0; i < 32; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
		snprintf(colons + 3 * i, 4, "%02X:", md[i]);
	}
	colons[95] = '\0';
	is_int(matches(x, NULL, EDGE_AUTHZ_SHA256, hex), 1, "sha256: the fingerprint");
	is_int(matches(x, NULL, EDGE_AUTHZ_SHA256, colons), 1, "sha256: as AB:CD:...");
	hex[0] = hex[0] == '0' ? '1' : '0';
	is_int(matches(x, NULL, EDGE_AUTHZ_SHA256, hex), 0, "sha256: another fingerprint");
	/* spki: SHA-256 of the SubjectPublicKeyInfo DER, not of the key bits */
	derlen = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	EVP_Digest(der, (size_t)derlen, md, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	is_int(matches(x, NULL, EDGE_AUTHZ_SPKI, hex), 1, "spki: SHA-256 of i2d_PUBKEY, in hex");
	is_int(matches(x, NULL, EDGE_AUTHZ_SPKI, b64), 1, "spki: ... in base64 (%s)", b64);
	X509_pubkey_digest(x, EVP_sha256(), md, &mdlen);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	is_int(matches(x, NULL, EDGE_AUTHZ_SPKI, hex), 0,
	       "spki: the digest of the key bits alone does not match");
	/* ski */
	is_int(matches(x, NULL, EDGE_AUTHZ_SKI,
		       "01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:"
		       "12:13:14"),
	       1, "ski: the subject key identifier");
	is_int(matches(x, NULL, EDGE_AUTHZ_SKI, "0102030405060708090a0b0c0d0e0f1011121315"), 0,
	       "ski: another one");
	is_int(matches(w, NULL, EDGE_AUTHZ_SKI, "0102030405060708090a0b0c0d0e0f1011121314"), 0,
	       "ski: a certificate without one");
	/* ca */
	is_int(matches(x, &td_org, EDGE_AUTHZ_CA, "corp-ca"), 1, "ca: the anchor's name");
	is_int(matches(x, &td_org, EDGE_AUTHZ_CA, "Corp-CA"), 0, "ca: case-sensitive");
	is_int(matches(x, &no_td, EDGE_AUTHZ_CA, "builtin"), 1, "ca: the built-in CA");
	is_int(matches(x, &td_org, EDGE_AUTHZ_CA, "builtin"), 0, "ca: another anchor");
	is_int(matches(x, NULL, EDGE_AUTHZ_CA, "builtin"), 0, "ca: no anchor");
	/* serial */
	is_int(matches(x, NULL, EDGE_AUTHZ_SERIAL, "0105"), 1, "serial: BN_bn2hex's form");
	is_int(matches(x, NULL, EDGE_AUTHZ_SERIAL, "0x105"), 1, "serial: 0x105");
	is_int(matches(x, NULL, EDGE_AUTHZ_SERIAL, "00:00:01:05"), 1, "serial: 00:00:01:05");
	is_int(matches(x, NULL, EDGE_AUTHZ_SERIAL, "106"), 0, "serial: another");
	is_int(matches(w, NULL, EDGE_AUTHZ_SERIAL, "1"), 1, "serial: 1 (written 01)");
	is_int(matches(w, NULL, EDGE_AUTHZ_SERIAL, "01"), 1, "serial: 01");

	/* Escapes and NUL bytes in the subject. */
	odd = cert_new(0);
	subj(odd, "O", "a\nb", 0, 0);
	subj(odd, "CN", "#hash, +plus ", 0, 0);
	subj(odd, "CN", "bad\0guy", 7, 0);
	cert_done(odd);
	is_int(matches(odd, NULL, EDGE_AUTHZ_SERIAL, "0"), 1, "serial: zero is 0");
	is_int(matches(odd, NULL, EDGE_AUTHZ_CN, "#hash, +plus "), 1,
	       "cn: special characters are plain in a cn");
	is_int(matches(odd, NULL, EDGE_AUTHZ_CN, "bad"), 0,
	       "cn: a CN with a NUL byte never matches");
	is_int(matches(odd, NULL, EDGE_AUTHZ_DN, "CN=bad,CN=\\#hash\\, \\+plus\\ ,O=a\\0Ab"), 0,
	       "dn: a subject with a NUL byte never matches");
	X509_free(odd);
	odd = cert_new(0);
	subj(odd, "O", "a\nb", 0, 0);
	subj(odd, "CN", "#hash, +plus ", 0, 0);
	cert_done(odd);
	is_int(matches(odd, NULL, EDGE_AUTHZ_DN, "CN=\\#hash\\, \\+plus\\ ,O=a\\0ab"), 1,
	       "dn: escaped specials, leading '#', trailing space and a control byte");
	is_int(matches(odd, NULL, EDGE_AUTHZ_DN, "CN=\\#hash\\, \\+plus,O=a\\0ab"), 0,
	       "dn: an escaped trailing space counts");
	X509_free(odd);
	X509_free(w);
	X509_free(x);
}

static void test_decisions(void)
{
	X509 *x = cert_alice();
	struct edge_authz *a = edge_authz_new();
	struct edge_authz_result r;
	char long_uri[400];

	memset(&r, 0x55, sizeof(r));
	ok(!edge_authz_check(NULL, x, NULL, &r) && r.decision == EDGE_AUTHZ_ADMIT && !r.rule_id &&
		   !r.text[0],
	   "a NULL set admits, rule 0, no text");
	ok(!edge_authz_check(a, x, NULL, &r) && r.decision == EDGE_AUTHZ_ADMIT && !r.rule_id &&
		   !r.text[0],
	   "an empty set admits");
	ok(!edge_authz_check(a, NULL, NULL, &r) && r.decision == EDGE_AUTHZ_ADMIT,
	   "an empty set admits even without a certificate");

	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_CN, "bob", 12);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && !r.rule_id && !r.text[0],
	   "deny entries only, none matching: admitted");
	ok(!edge_authz_check(a, NULL, NULL, &r) && r.decision == EDGE_AUTHZ_DENIED && !r.rule_id,
	   "with entries, no certificate is denied: %s", r.text);

	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CN, "carol", 2);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_NOT_AUTHORIZED && !r.rule_id &&
		   !strcmp(r.text, "no allow entry matched"),
	   "allow entries, none matching: not_authorized, '%s'", r.text);

	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/", 3);
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, "api.example.com", 4);
	edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 3 && r.effect == EDGE_AUTHZ_ALLOW &&
		   r.field == EDGE_AUTHZ_URI_PREFIX &&
		   !strcmp(r.text, "allow uri-prefix=spiffe://example.org/ns/ (#3)"),
	   "the first allow entry added that matches decides: '%s'", r.text);
	edge_authz_check(a, x, &td_other, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 4, "... then the next one (#%lld)",
	   (long long)r.rule_id);

	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_CN, "alice", 20);
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_IP, "192.0.2.0/24", 21);
	edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 20 && r.effect == EDGE_AUTHZ_DENY &&
		   r.field == EDGE_AUTHZ_CN && !strcmp(r.text, "deny cn=alice (#20)"),
	   "deny wins over allow: '%s'", r.text);
	edge_authz_free(a);

	a = edge_authz_new();
	memcpy(long_uri, "https://example.com/", 20);
	memset(long_uri + 20, 'p', sizeof(long_uri) - 21);
	long_uri[sizeof(long_uri) - 1] = '\0';
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_URI, long_uri, 9);
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_URI_PREFIX, "https://example.com/Path", 9);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 9 &&
		   !strcmp(r.text, "deny uri-prefix=https://example.com/Path (#9)"),
	   "a match on uri-prefix: '%s'", r.text);
	edge_authz_free(a);
	a = edge_authz_new();
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_URI_PREFIX, long_uri, 10);
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_CN, "alice", 11);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 11,
	   "a prefix longer than the URI does not match; the cn does (#%lld)",
	   (long long)r.rule_id);
	edge_authz_free(a);
	a = edge_authz_new();
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI, long_uri, 10);
	{
		X509 *y = cert_new(3);
		struct san s = { GEN_URI, long_uri, 0 };

		add_sans(y, &s, 1);
		cert_done(y);
		edge_authz_check(a, y, NULL, &r);
		ok(r.decision == EDGE_AUTHZ_ADMIT && strlen(r.text) < sizeof(r.text) &&
			   strstr(r.text, "... (#10)") &&
			   !strncmp(r.text, "allow uri=https://", 18),
		   "a long value is cut with '...': '%s'", r.text);
		X509_free(y);
	}
	edge_authz_free(a);
	X509_free(x);
}

static void test_bounds(void)
{
	struct san many[257];
	char names[257][32];
	struct edge_authz *a = edge_authz_new(), *empty = edge_authz_new();
	struct edge_authz_result r;
	X509 *x, *y;

	for (int i = 0; i < 257; i++) {
		snprintf(names[i], sizeof(names[i]), "h%d.example.com", i);
		many[i] = (struct san){ GEN_DNS, names[i], 0 };
	}
	many[256].v = names[0]; /* 256 distinct names and a duplicate */
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_CN, "many", 1);
	x = cert_new(1);
	subj(x, "CN", "many", 0, 0);
	add_sans(x, many, 256);
	cert_done(x);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 1, "256 SAN entries are checked");
	X509_free(x);
	x = cert_new(1);
	subj(x, "CN", "many", 0, 0);
	add_sans(x, many, 257);
	cert_done(x);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && !r.rule_id && strstr(r.text, "256"),
	   "257 SAN entries fail closed: '%s'", r.text);
	edge_authz_check(empty, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT, "... and are ignored by an empty set");
	X509_free(x);

	x = cert_new(1);
	y = cert_new(1);
	for (int i = 0; i < 64; i++)
		subj(x, "OU", "many", 0, 0);
	for (int i = 0; i < 65; i++)
		subj(y, "CN", "many", 0, 0);
	cert_done(x);
	cert_done(y);
	edge_authz_free(a);
	a = edge_authz_new();
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_SERIAL, "01", 1);
	edge_authz_check(a, x, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 1, "64 subject attributes are checked");
	edge_authz_check(a, y, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && !r.rule_id && strstr(r.text, "64"),
	   "65 subject attributes fail closed: '%s'", r.text);
	edge_authz_check(empty, y, NULL, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT, "... and are ignored by an empty set");
	X509_free(x);
	X509_free(y);
	edge_authz_free(a);
	edge_authz_free(empty);
}

static void test_large(void)
{
	struct edge_authz *a = edge_authz_new();
	struct edge_authz_result r;
	X509 *x = cert_alice();
	char v[64];
	int rc = 0;

	for (int i = 0; i < 10000 && !rc; i++) {
		snprintf(v, sizeof(v), "h%d.example.net", i);
		rc = edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_DNS, v, 100 + i);
		snprintf(v, sizeof(v), "spiffe://example.org/ns/n%d/", i);
		rc = rc ? rc
			: edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI_PREFIX, v, 20000 + i);
		snprintf(v, sizeof(v), "10.%d.%d.0/24", i / 256, i % 256);
		rc = rc ? rc : edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_IP, v, 40000 + i);
	}
	is_int(rc, 0, "30,000 entries added");
	is_int(edge_authz_count(a), 30000, "... counted");
	is_int(edge_authz_allow_count(a), 20000, "... 20,000 of them allow");
	edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_NOT_AUTHORIZED, "none matches alice: %s",
	   edge_authz_decision_name(r.decision));
	edge_authz_add(a, EDGE_AUTHZ_ALLOW, EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/prod/",
		       7);
	edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_ADMIT && r.rule_id == 7,
	   "the entry added last is found (#%lld)", (long long)r.rule_id);
	edge_authz_add(a, EDGE_AUTHZ_DENY, EDGE_AUTHZ_IP, "192.0.2.10/32", 8);
	edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 8, "... and a deny among 10,000 (#%lld)",
	   (long long)r.rule_id);
	for (int i = 0; i < 1000; i++)
		edge_authz_check(a, x, &td_org, &r);
	ok(r.decision == EDGE_AUTHZ_DENIED && r.rule_id == 8, "1,000 checks answer the same");
	edge_authz_free(a);
	X509_free(x);
}

int main(void)
{
	pkey = EVP_EC_gen("P-256");
	if (!pkey) {
		printf("1..0 # SKIP no P-256 key\n");
		return 77;
	}
	test_names();
	test_add();
	test_fields();
	test_decisions();
	test_bounds();
	test_large();
	EVP_PKEY_free(pkey);
	return tap_done();
}
