/*
 * ALPN lists: text <-> wire (alpn.h).
 */
#include "alpn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int edge_alpn_parse(const char *text, unsigned char *wire, size_t *wirelen, char *err,
		    size_t errlen)
{
	const char *p = text ? text : "";
	size_t n = 0, count = 0;

	*wirelen = 0;
	if (!*p)
		return 0;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (!len) {
			snprintf(err, errlen,
				 "ALPN list '%s': an empty protocol name (a ',' at an end or "
				 "two together)",
				 text);
			return -EINVAL;
		}
		if (len > EDGE_ALPN_TOKEN_MAX) {
			snprintf(err, errlen, "ALPN protocol '%.*s': longer than %d characters",
				 (int)len, p, EDGE_ALPN_TOKEN_MAX);
			return -EINVAL;
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c <= 0x20 || c >= 0x7f) {
				snprintf(err, errlen,
					 "ALPN protocol '%.*s': only printable ASCII, no space "
					 "(as IANA registers them: h2, http/1.1, ...)",
					 (int)len, p);
				return -EINVAL;
			}
		}
		if (edge_alpn_has(wire, n, p, len)) {
			snprintf(err, errlen, "ALPN protocol '%.*s' is listed twice", (int)len, p);
			return -EINVAL;
		}
		if (++count > EDGE_MAX_ALPN) {
			snprintf(err, errlen, "ALPN list '%s': more than %d protocols", text,
				 EDGE_MAX_ALPN);
			return -EINVAL;
		}
		wire[n++] = (unsigned char)len;
		memcpy(wire + n, p, len);
		n += len;
		if (!end)
			break;
		p = end + 1;
	}
	*wirelen = n;
	return 0;
}

bool edge_alpn_has(const unsigned char *wire, size_t wirelen, const char *tok, size_t len)
{
	for (size_t i = 0; i < wirelen; i += 1 + (size_t)wire[i])
		if (wire[i] == len && i + 1 + len <= wirelen && !memcmp(wire + i + 1, tok, len))
			return true;
	return false;
}

bool edge_alpn_beyond_http1(const unsigned char *wire, size_t wirelen)
{
	for (size_t i = 0; i < wirelen; i += 1 + (size_t)wire[i])
		if (wire[i] != 8 || memcmp(wire + i + 1, "http/1.1", 8))
			return true;
	return false;
}

bool edge_alpn_only_http(const unsigned char *wire, size_t wirelen)
{
	for (size_t i = 0; i < wirelen; i += 1 + (size_t)wire[i])
		if (!(wire[i] == 8 && !memcmp(wire + i + 1, "http/1.1", 8)) &&
		    !(wire[i] == 2 && !memcmp(wire + i + 1, "h2", 2)))
			return false;
	return true;
}
