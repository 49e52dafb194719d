/*
 * Identity rules: the parsers of the entries' values (edge_authz_normalize, authz.c, calls them
 * field by field) and those the check reuses on a certificate's SAN values: dns, email, uri (with SPIFFE IDs), ip,
 * sha256/spki/ski hex and base64, serial, cn and ca; dn is in authz_dn.c. The rules, field by
 * field, are in authz.c's opening comment. Nothing is printed: refusals go to err.
 */
#include "authz.h"
#include "authz_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- characters, errors ---------------------------------------------------------------------- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool edge_authz_utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		uint32_t cp, min;
		size_t k;

		if (c < 0x80) {
			if (!c)
				return false;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

int edge_authz_bad(const struct why *w, const char *fmt, ...)
{
	char msg[256], shown[72];
	size_t n = 0, i = 0;
	va_list ap;

	if (!w->err || !w->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The value as given, its first 64 bytes, control bytes as '?'. */
	for (const char *p = w->in ? w->in : ""; p[i] && n < 64; i++, n++)
		shown[n] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
	while (w->in && w->in[i] && n && ((unsigned char)w->in[i] & 0xc0) == 0x80)
		i--, n--; /* not in the middle of a character */
	shown[n] = '\0';
	snprintf(w->err, w->errlen, "'%s%s': %s", shown, w->in && w->in[i] ? "..." : "", msg);
	return -EINVAL;
}

/* ---- dns, email ------------------------------------------------------------------------------ */

/* A hostname (n bytes, no NUL) lower-cased into out (EDGE_AUTHZ_HOST_MAX bytes). */
int edge_authz_host_norm(const struct why *w, const char *s, size_t n, bool wild, char *out)
{
	unsigned char addr[16];
	size_t lab = 0, start = 0;

	n -= n && s[n - 1] == '.';
	if (!n || n >= EDGE_AUTHZ_HOST_MAX)
		return edge_authz_bad(w, "a hostname has 1 to 253 characters");
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return edge_authz_bad(w, "write IDNs in their xn-- (A-label) form");
		out[i] = lower(s[i]);
	}
	out[n] = '\0';
	if (n >= 2 && out[0] == '*' && out[1] == '.') {
		if (!wild)
			return edge_authz_bad(w, "a wildcard is not allowed here");
		start = 2;
	}
	if (inet_pton(AF_INET, out + start, addr) == 1 ||
	    inet_pton(AF_INET6, out + start, addr) == 1)
		return edge_authz_bad(
			w, "an IP address, not a hostname (an ip entry matches addresses)");
	for (size_t i = start; i <= n; i++) {
		char c = out[i];

		if (c == '.' || i == n) {
			if (!lab)
				return edge_authz_bad(w, "an empty label");
			if (out[i - 1] == '-')
				return edge_authz_bad(w, "a label ends with '-'");
			lab = 0;
		} else if (c == '*') {
			return edge_authz_bad(w, "'*' is allowed only as the whole first label "
						 "('*.example.com')");
		} else if (!is_alpha(c) && !is_digit(c) && c != '-') {
			return edge_authz_bad(w,
					      "an invalid character (letters, digits, '-' and '.')");
		} else if (!lab && c == '-') {
			return edge_authz_bad(w, "a label starts with '-'");
		} else if (++lab > 63) {
			return edge_authz_bad(w, "a label is longer than 63 characters");
		}
	}
	return 0;
}

int edge_authz_email_norm(const struct why *w, const char *s, size_t n, struct sb *out)
{
	const char *at = memchr(s, '@', n);
	char host[EDGE_AUTHZ_HOST_MAX];
	int rc;

	if (!at || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
		return edge_authz_bad(w, "an email address has exactly one '@'");
	if (at == s)
		return edge_authz_bad(w, "the local part (before '@') is empty");
	for (const char *p = s; p < at; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return edge_authz_bad(w,
					      "the local part is printable ASCII without spaces");
	rc = edge_authz_host_norm(w, at + 1, n - (size_t)(at - s) - 1, false, host);
	if (rc)
		return rc;
	sb_putn(out, s, (size_t)(at - s) + 1);
	sb_puts(out, host);
	return 0;
}

/* ---- uri ------------------------------------------------------------------------------------- */

static int spiffe_check(const struct why *w, const char *p, const char *end, bool prefix)
{
	const char *td = p + 2;

	if (end - p < 2 || p[0] != '/' || p[1] != '/')
		return edge_authz_bad(w, "a SPIFFE ID is spiffe://trust-domain/path");
	for (p = td; p < end && *p != '/'; p++) {
		char c = *p;

		if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '-' || c == '_')
			continue;
		return edge_authz_bad(w, "%s",
				      c >= 'A' && c <= 'Z' ? "a SPIFFE trust domain is lower-case"
				      : c == ':'           ? "a SPIFFE ID has no port"
				      : c == '@'           ? "a SPIFFE ID has no userinfo"
				      : c == '?'           ? "a SPIFFE ID has no query"
				      : c == '#'
					      ? "a SPIFFE ID has no fragment"
					      : "an invalid character in the SPIFFE trust domain "
						"(a-z, 0-9, '.', '-', '_')");
	}
	if (p == td)
		return edge_authz_bad(w, "the SPIFFE trust domain is empty");
	while (p < end) {
		const char *seg = ++p;

		for (; p < end && *p != '/'; p++) {
			char c = *p;

			if (is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_')
				continue;
			return edge_authz_bad(w, "%s",
					      c == '?'   ? "a SPIFFE ID has no query"
					      : c == '#' ? "a SPIFFE ID has no fragment"
					      : c == '%'
						      ? "a SPIFFE ID has no percent-encoding"
						      : "an invalid character in the SPIFFE path "
							"(A-Z, a-z, 0-9, '.', '-', '_')");
		}
		if (p == seg && !(prefix && p == end))
			return edge_authz_bad(w, "an empty segment in the SPIFFE path");
		if ((p - seg == 1 && seg[0] == '.') || (p - seg == 2 && !memcmp(seg, "..", 2)))
			return edge_authz_bad(w, "'.' and '..' are not allowed in a SPIFFE path");
	}
	return 0;
}

/* The canonical URI into out; *spiffe set when its scheme is spiffe. */
int edge_authz_uri_norm(const struct why *w, const char *s, size_t n, bool prefix, struct sb *out,
			bool *spiffe)
{
	size_t i = 0, auth_end;

	if (!n || !is_alpha(s[0]))
		return edge_authz_bad(w,
				      "a URI starts with a scheme and ':' (spiffe:, https:, ...)");
	while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || strchr("+-.", s[i])))
		i++;
	if (i == n || s[i] != ':')
		return edge_authz_bad(w,
				      "a URI starts with a scheme and ':' (spiffe:, https:, ...)");
	if (i + 1 == n)
		return edge_authz_bad(w, "nothing after the scheme");
	for (size_t j = 0; j < n; j++) {
		unsigned char c = (unsigned char)s[j];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			return edge_authz_bad(w, "a URI has no whitespace");
		if (c < 0x20 || c == 0x7f)
			return edge_authz_bad(w, "a URI has no control characters");
		if (c >= 0x80)
			return edge_authz_bad(w,
					      "a URI is ASCII (percent-encode other characters)");
	}
	*spiffe = i == 6 && !strncasecmp(s, "spiffe", 6);
	if (*spiffe) {
		int rc = spiffe_check(w, s + i + 1, s + n, prefix);

		if (rc)
			return rc;
	}
	auth_end = i + 1;
	if (n - auth_end >= 2 && s[auth_end] == '/' && s[auth_end + 1] == '/')
		for (auth_end += 2; auth_end < n && !strchr("/?#", s[auth_end]);)
			auth_end++;
	for (size_t j = 0; j < auth_end; j++)
		sb_putc(out, lower(s[j]));
	sb_putn(out, s + auth_end, n - auth_end);
	return 0;
}

/* ---- ip, hex --------------------------------------------------------------------------------- */

int edge_authz_ip_parse(const struct why *w, const char *s, unsigned char *addr, int *alen,
			int *plen)
{
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	char buf[INET6_ADDRSTRLEN + 8];

	if (n >= sizeof(buf))
		return edge_authz_bad(w, "not an IPv4 or IPv6 address");
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		*alen = 4;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		*alen = 16;
	else
		return edge_authz_bad(w, "not an IPv4 or IPv6 address (or ADDRESS/LENGTH)");
	*plen = *alen * 8;
	if (slash) {
		const char *p = slash + 1;
		int v = 0;

		if (!*p || strlen(p) > 3)
			return edge_authz_bad(w, "the prefix length after '/' is a number");
		for (; *p; p++) {
			if (!is_digit(*p))
				return edge_authz_bad(w, "the prefix length after '/' is a number");
			v = v * 10 + (*p - '0');
		}
		if (v > *alen * 8)
			return edge_authz_bad(w, "a prefix length is 0 to %d for an IPv%d address",
					      *alen * 8, *alen == 4 ? 4 : 6);
		*plen = v;
	}
	return 0;
}

/* "network/len" of addr (alen bytes) with the host bits cleared. */
void edge_authz_ip_format(const unsigned char *addr, int alen, int plen, struct sb *out)
{
	unsigned char net[16];
	char txt[INET6_ADDRSTRLEN + 8];

	for (int i = 0; i < alen; i++) {
		int bits = plen - i * 8;

		net[i] = bits >= 8   ? addr[i]
			 : bits <= 0 ? 0
				     : addr[i] & (unsigned char)(0xff << (8 - bits));
	}
	inet_ntop(alen == 4 ? AF_INET : AF_INET6, net, txt, INET6_ADDRSTRLEN);
	snprintf(txt + strlen(txt), 8, "/%d", plen);
	sb_puts(out, txt);
}

/* Hex digits, ':' allowed between bytes, into out (at most max bytes): the count, or -EINVAL. */
int edge_authz_hex_parse(const struct why *w, const char *s, unsigned char *out, size_t max)
{
	size_t digits = 0;

	for (const char *p = s; *p; p++) {
		int v = hex_val(*p);

		if (v >= 0) {
			if (digits / 2 >= max)
				return edge_authz_bad(w, "more than %zu bytes", max);
			out[digits / 2] = digits % 2 ? (unsigned char)(out[digits / 2] | v)
						     : (unsigned char)(v << 4);
			digits++;
		} else if (*p != ':' || !digits || digits % 2 || hex_val(p[1]) < 0) {
			return edge_authz_bad(
				w, "not hex (digits 0-9 a-f, bytes optionally separated by ':')");
		}
	}
	if (!digits || digits % 2)
		return edge_authz_bad(w, "hex needs two digits a byte");
	return (int)(digits / 2);
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* 32 bytes: 64 hex digits (':' allowed) or, for spki, 44 characters of base64. */
int edge_authz_digest_norm(const struct why *w, const char *s, size_t n, bool b64, struct sb *out)
{
	unsigned char md[64];
	uint32_t acc = 0;
	int bits = 0, k = 0;

	if (b64 && n == 44 && s[43] == '=' && !strchr(s, ':')) {
		for (int i = 0; i < 43; i++) {
			int v = b64_val(s[i]);

			if (v < 0)
				return edge_authz_bad(w, "not base64 (A-Z a-z 0-9 + /)");
			acc = (acc << 6 | (uint32_t)v) & 0xffff;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				md[k++] = (unsigned char)(acc >> bits);
			}
		}
		if (acc & 3)
			return edge_authz_bad(
				w, "not canonical base64 (the last character's low bits are set)");
	} else {
		k = edge_authz_hex_parse(w, s, md, sizeof(md));
		if (k < 0)
			return k;
		if (k != 32)
			return edge_authz_bad(w, "a SHA-256 digest is 32 bytes (64 hex digits%s)",
					      b64 ? ", or 44 characters of base64" : "");
	}
	sb_hex(out, md, 32, false);
	return 0;
}

int edge_authz_serial_norm(const struct why *w, const char *s, struct sb *out)
{
	const char *p = s + (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 2 : 0);
	char digits[EDGE_AUTHZ_VALUE_MAX];
	size_t n = 0;

	for (; *p; p++) {
		if (hex_val(*p) >= 0) {
			if (n || *p != '0') {
				if (n == sizeof(digits) - 2)
					return edge_authz_bad(w,
							      "a serial of more than %d hex digits",
							      EDGE_AUTHZ_VALUE_MAX - 3);
				digits[n++] = *p >= 'a' ? (char)(*p - 'a' + 'A') : *p;
			}
		} else if (*p != ':' || p == s || hex_val(p[-1]) < 0 || hex_val(p[1]) < 0) {
			return edge_authz_bad(w,
					      "a serial is hex (an optional 0x, ':' between digits)");
		}
	}
	if (hex_val(p[-1]) < 0)
		return edge_authz_bad(w, "a serial is hex (an optional 0x, ':' between digits)");
	if (!n)
		sb_putc(out, '0');
	else if (n % 2)
		sb_putc(out, '0'); /* whole bytes, as BN_bn2hex writes them */
	sb_putn(out, digits, n);
	return 0;
}
