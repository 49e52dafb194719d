/*
 * The pieces of HTTP/1.1 syntax that both directions' readers use: the
 * request rewriter (forward.c) and the response reader (httpresp.c).
 * Header-only, pure.
 */
#ifndef EDGE_HTTPTOK_H
#define EDGE_HTTPTOK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: what a field name or a method is made of. */
static inline bool edge_http_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A byte a field value may hold: VCHAR, obs-text, SP or HTAB. */
static inline bool edge_http_is_vchar_or_ws(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* name[0..n) is want, ignoring case. */
static inline bool edge_http_name_is(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && !strncasecmp(name, want, n);
}

/* A Content-Length value: digits only, at most 18 (no uint64_t overflow). */
static inline bool edge_http_parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (!n || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return true;
}

/* Appends data to a growing buffer (*buf, *len of *cap; 4 KiB, doubling): 0 or -ENOMEM. */
static inline int edge_http_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
	if (!n)
		return 0;
	if (*len > SIZE_MAX / 4 || n > SIZE_MAX / 4 - *len)
		return -ENOMEM; /* and c * 2 below cannot overflow */
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *p;

		while (c < *len + n)
			c *= 2;
		p = realloc(*buf, c);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	return 0;
}

#endif
