/*
 * Inside the identity-rule module: what its three files share. authz_value.c defines the
 * value parsers (edge_authz_normalize, and what the check reuses on SAN values), authz_dn.c
 * the DN parser and the subject's rendering, authz.c the names, the set and the check.
 * Other modules use authz.h.
 */
#ifndef EDGE_AUTHZ_INT_H
#define EDGE_AUTHZ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <openssl/x509.h>

#include "authz.h"

#define EDGE_AUTHZ_HOST_MAX 254 /* a hostname, lower-cased, and its NUL */
#define EDGE_AUTHZ_MAX_ATTRS 64 /* attributes of a dn entry, or of a subject the check reads */

static inline bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int hex_val(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A bounded string builder over cap bytes: once a write does not fit with its NUL, over is
 * set and nothing more is written. */
struct sb {
	char *p;
	size_t len, cap;
	bool over;
};

static inline void sb_putn(struct sb *b, const void *s, size_t n)
{
	if (b->over || n >= b->cap - b->len) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void sb_putc(struct sb *b, char c)
{
	sb_putn(b, &c, 1);
}

static inline void sb_puts(struct sb *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static inline void sb_hex(struct sb *b, const unsigned char *s, size_t n, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		char x[2] = { digits[s[i] >> 4], digits[s[i] & 15] };

		sb_putn(b, x, 2);
	}
}

/* Where a refusal goes: err (NULL when a certificate's value is checked: no message); in is
 * the value as given, quoted in the message. */
struct why {
	char *err;
	size_t errlen;
	const char *in;
};

/* ---- authz_value.c --------------------------------------------------------------------------- */

/* Writes "'VALUE': message" to w->err when there is one; always -EINVAL. */
__attribute__((format(printf, 2, 3))) int edge_authz_bad(const struct why *w, const char *fmt, ...);
/* n bytes of valid UTF-8 (shortest forms, no surrogates) without a NUL byte. */
bool edge_authz_utf8_ok(const unsigned char *s, size_t n);
/* A hostname (n bytes, no NUL) checked and lower-cased into out (EDGE_AUTHZ_HOST_MAX bytes),
 * one trailing dot dropped; "*.rest" only when wild. 0 or -EINVAL. */
int edge_authz_host_norm(const struct why *w, const char *s, size_t n, bool wild, char *out);
/* local@domain (n bytes) in canonical form appended to out. 0 or -EINVAL. */
int edge_authz_email_norm(const struct why *w, const char *s, size_t n, struct sb *out);
/* A URI (n bytes) in canonical form appended to out; *spiffe set when its scheme is spiffe
 * (then held to SPIFFE's rules, a trailing '/' allowed when prefix). 0 or -EINVAL. */
int edge_authz_uri_norm(const struct why *w, const char *s, size_t n, bool prefix, struct sb *out,
			bool *spiffe);
/* "network/len" of addr (alen bytes: 4 or 16) with the host bits cleared, appended to out. */
void edge_authz_ip_format(const unsigned char *addr, int alen, int plen, struct sb *out);
/* "ADDR" or "ADDR/LEN" (IPv4 or IPv6) into addr; *alen 4 or 16, *plen the prefix (the whole
 * address without one). 0 or -EINVAL. */
int edge_authz_ip_parse(const struct why *w, const char *s, unsigned char *addr, int *alen,
			int *plen);
/* Hex digits, ':' allowed between bytes, into out (at most max bytes): the count, or -EINVAL. */
int edge_authz_hex_parse(const struct why *w, const char *s, unsigned char *out, size_t max);
/* 32 bytes: 64 hex digits (':' allowed) or, for spki (b64), 44 characters of base64; lower-case
 * hex appended to out. 0 or -EINVAL. */
int edge_authz_digest_norm(const struct why *w, const char *s, size_t n, bool b64, struct sb *out);
/* A serial number (hex, an optional 0x, ':' between digits) in upper-case hex, whole bytes,
 * appended to out. 0 or -EINVAL. */
int edge_authz_serial_norm(const struct why *w, const char *s, struct sb *out);

/* ---- authz_dn.c ------------------------------------------------------------------------------ */

/* A DN in RFC 4514 form (len bytes) in canonical form into out, which starts empty. 0 or
 * -EINVAL. */
int edge_authz_dn_norm(const struct why *w, const char *s, size_t len, struct sb *out);
/* The subject nm (count entries, at most EDGE_AUTHZ_MAX_ATTRS) in canonical form into out,
 * which starts empty; false when it can match no entry (as with no entries at all). */
bool edge_authz_dn_render(const X509_NAME *nm, int count, struct sb *out);

#endif
