#include "hostname.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int edge_hostname_norm(const char *in, bool wildcard_ok, char *out, size_t outlen, char *err,
		       size_t errlen)
{
	size_t len = strlen(in), lab = 0;
	char buf[EDGE_HOSTNAME_LEN + 2];
	const char *name = buf, *why = NULL;
	unsigned char addr[16];

	len -= len && in[len - 1] == '.';
	if (!len || len >= EDGE_HOSTNAME_LEN)
		return fail(err, errlen, -EINVAL, "'%.64s%s': a hostname has 1 to 253 characters",
			    in, len > 64 ? "..." : "");
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)in[i]);
	buf[len] = '\0';
	if (!strncmp(buf, "*.", 2) && !wildcard_ok)
		return fail(err, errlen, -EINVAL, "'%s': a wildcard is not allowed here", in);
	name += strncmp(buf, "*.", 2) ? 0 : 2;
	if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
		return fail(err, errlen, -EINVAL, "'%s' is an IP address, not a hostname", in);
	for (const char *p = name; !why; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.' || !c) {
			why = !lab ? "empty label" : p[-1] == '-' ? "a label ends with '-'" : NULL;
			if (!c)
				break;
			lab = 0;
		} else if (c == '*') {
			why = "'*' is allowed only as the whole first label ('*.example.com')";
		} else if (!(isalnum(c) || c == '-') || c >= 0x80) {
			why = "invalid character (letters, digits, '-' and '.'; the xn-- form "
			      "for IDNs)";
		} else if (!lab && c == '-') {
			why = "a label starts with '-'";
		} else if (++lab > 63) {
			why = "a label is longer than 63 characters";
		}
	}
	if (why)
		return fail(err, errlen, -EINVAL, "'%s': %s", in, why);
	if ((size_t)snprintf(out, outlen, "%s", buf) >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

bool edge_hostname_under(const char *host, const char *domain)
{
	size_t h, d = strlen(domain);

	if (!strncmp(host, "*.", 2))
		host += 2;
	h = strlen(host);
	if (h == d)
		return !strcmp(host, domain);
	return h > d && host[h - d - 1] == '.' && !strcmp(host + h - d, domain);
}

int edge_hostname_port_parse(const char *in, char *host, size_t hostlen, uint16_t *port, char *err,
			     size_t errlen)
{
	const char *colon = in[0] == '[' ? strstr(in, "]:") : strrchr(in, ':');
	const char *hs = in[0] == '[' ? in + 1 : in;
	size_t hl = colon ? (size_t)(colon - hs) : 0;
	char h[EDGE_HOSTNAME_LEN];
	unsigned char addr[16];
	char *end = h;
	long p;

	if (!colon || !hl || hl >= sizeof(h))
		return fail(err, errlen, -EINVAL, "'%s': expected HOST:PORT or [IPv6]:PORT", in);
	memcpy(h, hs, hl);
	h[hl] = '\0';
	if (in[0] == '[') {
		colon++;
		if (inet_pton(AF_INET6, h, addr) != 1)
			return fail(err, errlen, -EINVAL, "'%s': '%s' is not an IPv6 address", in,
				    h);
	} else if (strchr(h, ':')) {
		return fail(err, errlen, -EINVAL,
			    "'%s': an IPv6 address needs brackets: "
			    "[ADDRESS]:PORT",
			    in);
	} else if (inet_pton(AF_INET, h, addr) != 1) {
		int rc = edge_hostname_norm(h, false, h, sizeof(h), err, errlen);

		if (rc)
			return rc;
	}
	p = isdigit((unsigned char)colon[1]) ? strtol(colon + 1, &end, 10) : 0;
	if (p < 1 || p > 65535 || *end)
		return fail(err, errlen, -EINVAL, "'%s': the port must be a number from 1 to 65535",
			    in);
	if ((size_t)snprintf(host, hostlen, "%s", h) >= hostlen)
		return -ENAMETOOLONG;
	*port = (uint16_t)p;
	return 0;
}
