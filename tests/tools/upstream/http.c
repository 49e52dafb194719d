/*
 * edge-upstream: the small pieces of HTTP/1.1 it reads and writes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "upstream.h"

const char *up_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return status < 400 ? "Status" : "Error";
	}
}

size_t up_head_end(const char *in, size_t len, size_t *blank)
{
	const char *p = in, *end;

	if (!in) /* nothing read yet: memchr must not see NULL, even for 0 bytes */
		return 0;
	end = in + len;
	/* Every line ends in LF, with or without the CR before it (RFC 9112, section 2.2). */
	while ((p = memchr(p, '\n', (size_t)(end - p))) && ++p < end) {
		if (*p == '\n') {
			*blank = 1;
			return (size_t)(p + 1 - in);
		}
		if (*p == '\r' && p + 1 < end && p[1] == '\n') {
			*blank = 2;
			return (size_t)(p + 2 - in);
		}
	}
	return 0;
}

/* Case-insensitive value of header name in the head (lines after the request line). */
bool up_header_value(const char *head, size_t len, const char *name, const char **val, size_t *vlen)
{
	const char *p = memchr(head, '\n', len), *end = head + len;
	size_t nlen = strlen(name);

	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v, *ve;

		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
			v = p + nlen + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*val = v;
			*vlen = (size_t)(ve - v);
			return true;
		}
		p = eol;
	}
	return false;
}

bool up_value_has(const char *v, size_t len, const char *token)
{
	size_t tlen = strlen(token);

	for (size_t i = 0; i + tlen <= len; i++)
		if (!strncasecmp(v + i, token, tlen))
			return true;
	return false;
}

bool up_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}
