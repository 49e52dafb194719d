/* Unit tests for userspace/lib/authz.c's rule values: every field's canonical form
 * (edge_authz_normalize), idempotent, and the refusals with their words. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "authz.h"
#include "tap.h"

static char err[256];

struct norm_case {
	enum edge_authz_field f;
	const char *in, *want; /* want NULL: refused; then want_err is in the message */
	const char *want_err;
};

static void check_norm(const struct norm_case *c)
{
	char out[EDGE_AUTHZ_VALUE_MAX], again[EDGE_AUTHZ_VALUE_MAX];
	const char *name = edge_authz_field_name(c->f);
	int rc = edge_authz_normalize(c->f, c->in, out, sizeof(out), err, sizeof(err));

	if (!c->want) {
		ok(rc == -EINVAL && *err && (!c->want_err || strstr(err, c->want_err)),
		   "%s '%.40s' refused: %s", name, c->in, err);
		return;
	}
	ok(!rc && !strcmp(out, c->want), "%s '%.40s' -> '%s'", name, c->in, rc ? err : out);
	rc = edge_authz_normalize(c->f, out, again, sizeof(again), err, sizeof(err));
	ok(!rc && !strcmp(again, out), "%s '%.40s' is canonical (idempotent)", name, out);
}

static void test_normalize(void)
{
	static const struct norm_case cases[] = {
		/* dn */
		{ EDGE_AUTHZ_DN, "CN=bob", "2.5.4.3=bob", NULL },
		{ EDGE_AUTHZ_DN, "cn=bob, o=Acme", "2.5.4.3=bob,2.5.4.10=Acme", NULL },
		{ EDGE_AUTHZ_DN, "CN = bob ,O=Acme  ", "2.5.4.3=bob,2.5.4.10=Acme", NULL },
		{ EDGE_AUTHZ_DN, "CN=a\\,b\\+c\\;d\\<e\\>f\\\"g\\\\h\\=i",
		  "2.5.4.3=a\\,b\\+c\\;d\\<e\\>f\\\"g\\\\h=i", NULL },
		{ EDGE_AUTHZ_DN, "CN=\\ lead\\ ", "2.5.4.3=\\ lead\\ ", NULL },
		{ EDGE_AUTHZ_DN, "CN=\\#x#", "2.5.4.3=\\#x#", NULL },
		{ EDGE_AUTHZ_DN, "CN=a\\2Cb\\0a", "2.5.4.3=a\\,b\\0A", NULL },
		{ EDGE_AUTHZ_DN, "CN=caf\\C3\\A9", "2.5.4.3=caf\xc3\xa9", NULL },
		{ EDGE_AUTHZ_DN, "OU=b+CN=a", "2.5.4.11=b+2.5.4.3=a", NULL },
		{ EDGE_AUTHZ_DN, "CN=a+OU=b", "2.5.4.11=b+2.5.4.3=a", NULL },
		{ EDGE_AUTHZ_DN, "2.5.4.3=x,2.5.4.03=y", "2.5.4.3=x,2.5.4.3=y", NULL },
		{ EDGE_AUTHZ_DN, "CN=", "2.5.4.3=", NULL },
		{ EDGE_AUTHZ_DN, "DC=example,DC=com",
		  "0.9.2342.19200300.100.1.25=example,0.9.2342.19200300.100.1.25=com", NULL },
		{ EDGE_AUTHZ_DN, "STREET=Main,street=x,emailAddress=a@b,serialNumber=7,GN=g,SN=s",
		  "2.5.4.9=Main,2.5.4.9=x,1.2.840.113549.1.9.1=a@b,2.5.4.5=7,2.5.4.42=g,2.5.4.4=s",
		  NULL },
		{ EDGE_AUTHZ_DN, "commonName=x", "2.5.4.3=x", NULL },
		{ EDGE_AUTHZ_DN, "CN=#04036263", NULL, "#hex" },
		{ EDGE_AUTHZ_DN, "FOO=bar", NULL, "unknown attribute type" },
		{ EDGE_AUTHZ_DN, "CN", NULL, "'='" },
		{ EDGE_AUTHZ_DN, "CN=a,", NULL, "missing" },
		{ EDGE_AUTHZ_DN, ",CN=a", NULL, "missing" },
		{ EDGE_AUTHZ_DN, "CN=a+", NULL, "missing" },
		{ EDGE_AUTHZ_DN, "CN=a\\00b", NULL, "NUL" },
		{ EDGE_AUTHZ_DN, "CN=a\\zz", NULL, "escape" },
		{ EDGE_AUTHZ_DN, "CN=a\\", NULL, "escape" },
		{ EDGE_AUTHZ_DN, "CN=a;b", NULL, "escaped" },
		{ EDGE_AUTHZ_DN, "CN=a\"b", NULL, "escaped" },
		{ EDGE_AUTHZ_DN, "CN=\\C3", NULL, "UTF-8" },
		{ EDGE_AUTHZ_DN, "1..2=x", NULL, "unknown" },
		{ EDGE_AUTHZ_DN, "", NULL, "empty" },
		/* cn */
		{ EDGE_AUTHZ_CN, "Bob Smith", "Bob Smith", NULL },
		{ EDGE_AUTHZ_CN, " x, y+z ", " x, y+z ", NULL },
		{ EDGE_AUTHZ_CN, "caf\xc3\xa9", "caf\xc3\xa9", NULL },
		{ EDGE_AUTHZ_CN, "", NULL, "empty" },
		{ EDGE_AUTHZ_CN, "\xff", NULL, "UTF-8" },
		{ EDGE_AUTHZ_CN, "\xc0\xaf", NULL, "UTF-8" },
		{ EDGE_AUTHZ_CN, "\xed\xa0\x80", NULL, "UTF-8" },
		/* dns */
		{ EDGE_AUTHZ_DNS, "Example.COM", "example.com", NULL },
		{ EDGE_AUTHZ_DNS, "example.com.", "example.com", NULL },
		{ EDGE_AUTHZ_DNS, "*.Example.com", "*.example.com", NULL },
		{ EDGE_AUTHZ_DNS, "xn--bcher-kva.example", "xn--bcher-kva.example", NULL },
		{ EDGE_AUTHZ_DNS, "localhost", "localhost", NULL },
		{ EDGE_AUTHZ_DNS,
		  "b\xc3\xbc"
		  "cher.example",
		  NULL, "xn--" },
		{ EDGE_AUTHZ_DNS, "a*.example.com", NULL, "first label" },
		{ EDGE_AUTHZ_DNS, "*.*.example.com", NULL, "first label" },
		{ EDGE_AUTHZ_DNS, "*", NULL, "first label" },
		{ EDGE_AUTHZ_DNS, "*.", NULL, "'*'" },
		{ EDGE_AUTHZ_DNS, "a..b", NULL, "empty label" },
		{ EDGE_AUTHZ_DNS, "-a.example", NULL, "starts with '-'" },
		{ EDGE_AUTHZ_DNS, "a-.example", NULL, "ends with '-'" },
		{ EDGE_AUTHZ_DNS, "a_b.example", NULL, "invalid character" },
		{ EDGE_AUTHZ_DNS, "a b.example", NULL, "invalid character" },
		{ EDGE_AUTHZ_DNS, "192.0.2.1", NULL, "IP address" },
		{ EDGE_AUTHZ_DNS,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x", NULL,
		  "63" },
		/* uri, uri-prefix */
		{ EDGE_AUTHZ_URI, "HTTPS://Example.COM/Path?Q=1#F",
		  "https://example.com/Path?Q=1#F", NULL },
		{ EDGE_AUTHZ_URI, "urn:uuid:ABC-1", "urn:uuid:ABC-1", NULL },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/ns/Prod/sa",
		  "spiffe://example.org/ns/Prod/sa", NULL },
		{ EDGE_AUTHZ_URI, "SPIFFE://example.org/a", "spiffe://example.org/a", NULL },
		{ EDGE_AUTHZ_URI, "spiffe://example.org", "spiffe://example.org", NULL },
		{ EDGE_AUTHZ_URI, "example.com/x", NULL, "scheme" },
		{ EDGE_AUTHZ_URI, "1http://x", NULL, "scheme" },
		{ EDGE_AUTHZ_URI, "https:", NULL, "nothing after" },
		{ EDGE_AUTHZ_URI, "https://a b/", NULL, "whitespace" },
		{ EDGE_AUTHZ_URI, "https://a/\x01", NULL, "control" },
		{ EDGE_AUTHZ_URI, "https://a/\xc3\xa9", NULL, "ASCII" },
		{ EDGE_AUTHZ_URI, "spiffe://Example.org/a", NULL, "lower-case" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org:8443/a", NULL, "port" },
		{ EDGE_AUTHZ_URI, "spiffe://u@example.org/a", NULL, "userinfo" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/a?x=1", NULL, "query" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/a#f", NULL, "fragment" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org//a", NULL, "empty segment" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/a/", NULL, "empty segment" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/a/../b", NULL, "'..'" },
		{ EDGE_AUTHZ_URI, "spiffe://example.org/a%20b", NULL, "percent" },
		{ EDGE_AUTHZ_URI, "spiffe:///a", NULL, "empty" },
		{ EDGE_AUTHZ_URI, "spiffe:example.org/a", NULL, "spiffe://" },
		{ EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns/", "spiffe://example.org/ns/",
		  NULL },
		{ EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/", "spiffe://example.org/", NULL },
		{ EDGE_AUTHZ_URI_PREFIX, "HTTPS://A.example/B/", "https://a.example/B/", NULL },
		{ EDGE_AUTHZ_URI_PREFIX, "spiffe://example.org/ns//", NULL, "empty segment" },
		/* email */
		{ EDGE_AUTHZ_EMAIL, "Alice@Example.COM", "Alice@example.com", NULL },
		{ EDGE_AUTHZ_EMAIL, "a.b+tag@example.com.", "a.b+tag@example.com", NULL },
		{ EDGE_AUTHZ_EMAIL, "alice", NULL, "one '@'" },
		{ EDGE_AUTHZ_EMAIL, "a@b@example.com", NULL, "one '@'" },
		{ EDGE_AUTHZ_EMAIL, "@example.com", NULL, "local part" },
		{ EDGE_AUTHZ_EMAIL, "a b@example.com", NULL, "local part" },
		{ EDGE_AUTHZ_EMAIL, "a@-x.example", NULL, "starts with '-'" },
		{ EDGE_AUTHZ_EMAIL, "a@*.example.com", NULL, "wildcard" },
		{ EDGE_AUTHZ_EMAIL, "a@", NULL, "1 to 253" },
		/* ip */
		{ EDGE_AUTHZ_IP, "10.1.2.3/8", "10.0.0.0/8", NULL },
		{ EDGE_AUTHZ_IP, "192.0.2.1", "192.0.2.1/32", NULL },
		{ EDGE_AUTHZ_IP, "192.0.2.255/25", "192.0.2.128/25", NULL },
		{ EDGE_AUTHZ_IP, "0.0.0.0/0", "0.0.0.0/0", NULL },
		{ EDGE_AUTHZ_IP, "2001:DB8::1/32", "2001:db8::/32", NULL },
		{ EDGE_AUTHZ_IP, "2001:0db8:0:0:0:0:0:1", "2001:db8::1/128", NULL },
		{ EDGE_AUTHZ_IP, "::ffff:10.0.0.1", "::ffff:10.0.0.1/128", NULL },
		{ EDGE_AUTHZ_IP, "10.0.0.0/08", "10.0.0.0/8", NULL },
		{ EDGE_AUTHZ_IP, "10.0.0.0/33", NULL, "0 to 32" },
		{ EDGE_AUTHZ_IP, "2001:db8::/129", NULL, "0 to 128" },
		{ EDGE_AUTHZ_IP, "10.0.0", NULL, "not an IPv4" },
		{ EDGE_AUTHZ_IP, "host.example", NULL, "not an IPv4" },
		{ EDGE_AUTHZ_IP, "10.0.0.1/", NULL, "prefix length" },
		{ EDGE_AUTHZ_IP, "10.0.0.1/x", NULL, "prefix length" },
		{ EDGE_AUTHZ_IP, "10.0.0.1/-1", NULL, "prefix length" },
		{ EDGE_AUTHZ_IP, "fe80::1%eth0", NULL, "not an IPv4" },
		/* sha256, spki */
		{ EDGE_AUTHZ_SHA256,
		  "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"
		  "23:45:67:89",
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", NULL },
		{ EDGE_AUTHZ_SHA256,
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", NULL },
		{ EDGE_AUTHZ_SHA256,
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567", NULL,
		  "32 bytes" },
		{ EDGE_AUTHZ_SHA256,
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678", NULL,
		  "two digits" },
		{ EDGE_AUTHZ_SHA256,
		  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567zz", NULL,
		  "not hex" },
		{ EDGE_AUTHZ_SHA256, "ab::cd", NULL, "not hex" },
		{ EDGE_AUTHZ_SHA256, ":abcd", NULL, "not hex" },
		{ EDGE_AUTHZ_SHA256, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL,
		  "not hex" },
		{ EDGE_AUTHZ_SPKI, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "0000000000000000000000000000000000000000000000000000000000000000", NULL },
		{ EDGE_AUTHZ_SPKI, "//////////////////////////////////////////8=",
		  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", NULL },
		{ EDGE_AUTHZ_SPKI, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", NULL,
		  "canonical" },
		{ EDGE_AUTHZ_SPKI, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*A=", NULL, "base64" },
		{ EDGE_AUTHZ_SPKI, "AAAA", NULL, "44 characters" },
		/* ski */
		{ EDGE_AUTHZ_SKI, "AB:CD", "abcd", NULL },
		{ EDGE_AUTHZ_SKI, "0a", "0a", NULL },
		{ EDGE_AUTHZ_SKI, "ABC", NULL, "two digits" },
		{ EDGE_AUTHZ_SKI, "AB:", NULL, "not hex" },
		/* ca */
		{ EDGE_AUTHZ_CA, "builtin", "builtin", NULL },
		{ EDGE_AUTHZ_CA, "Corp-CA_1.x", "Corp-CA_1.x", NULL },
		{ EDGE_AUTHZ_CA, "second CA", "second CA",
		  NULL }, /* uploaded CA names have spaces */
		{ EDGE_AUTHZ_CA, "corp\tca", NULL, "control" },
		{ EDGE_AUTHZ_CA,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, "64" },
		/* serial */
		{ EDGE_AUTHZ_SERIAL, "0x0105", "0105", NULL },
		{ EDGE_AUTHZ_SERIAL, "01:05", "0105", NULL },
		{ EDGE_AUTHZ_SERIAL, "105", "0105", NULL },
		{ EDGE_AUTHZ_SERIAL, "00:00:ab:cd", "ABCD", NULL },
		{ EDGE_AUTHZ_SERIAL, "0", "0", NULL },
		{ EDGE_AUTHZ_SERIAL, "000", "0", NULL },
		{ EDGE_AUTHZ_SERIAL, "0X65", "65", NULL },
		{ EDGE_AUTHZ_SERIAL, "0x", NULL, "hex" },
		{ EDGE_AUTHZ_SERIAL, "12:", NULL, "hex" },
		{ EDGE_AUTHZ_SERIAL, ":12", NULL, "hex" },
		{ EDGE_AUTHZ_SERIAL, "g1", NULL, "hex" },
		{ EDGE_AUTHZ_SERIAL, "-5", NULL, "hex" },
	};
	char big[EDGE_AUTHZ_VALUE_MAX + 8], out[EDGE_AUTHZ_VALUE_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_norm(&cases[i]);

	memset(big, 'a', EDGE_AUTHZ_VALUE_MAX - 1);
	big[EDGE_AUTHZ_VALUE_MAX - 1] = '\0';
	is_int(edge_authz_normalize(EDGE_AUTHZ_CN, big, out, sizeof(out), err, sizeof(err)), 0,
	       "a cn of 1023 bytes is accepted");
	big[EDGE_AUTHZ_VALUE_MAX - 1] = 'a';
	big[EDGE_AUTHZ_VALUE_MAX] = '\0';
	is_int(edge_authz_normalize(EDGE_AUTHZ_CN, big, out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "a cn of 1024 bytes is refused: %s", err);
	memcpy(big, "https://x/", 10);
	is_int(edge_authz_normalize(EDGE_AUTHZ_URI, big, out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "a uri of 1024 bytes is refused: %s", err);
	is_int(edge_authz_normalize(EDGE_AUTHZ_DNS, "example.com", out, 11, err, sizeof(err)),
	       -ENOSPC, "-ENOSPC when the canonical form does not fit");
	is_int(edge_authz_normalize(EDGE_AUTHZ_DNS, "example.com", out, 12, err, sizeof(err)), 0,
	       "... and 0 when it just fits");
	strcpy(big, "Example.COM");
	ok(!edge_authz_normalize(EDGE_AUTHZ_DNS, big, big, sizeof(big), NULL, 0) &&
		   !strcmp(big, "example.com"),
	   "normalize in place, without an error buffer");
	is_int(edge_authz_normalize(EDGE_AUTHZ_NFIELDS, "x", out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "a field out of range is refused");
	is_int(edge_authz_normalize(EDGE_AUTHZ_CN, NULL, out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "a NULL value is refused");
}

int main(void)
{
	test_normalize();
	return tap_done();
}
