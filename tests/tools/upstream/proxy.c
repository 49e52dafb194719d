/*
 * edge-upstream --proxy-v2: the PROXY protocol v2 header each connection
 * starts with, parsed into the text GET /proxy answers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "upstream.h"

/* Appends one line of the PROXY header's description. */
static int proxy_line(char **buf, size_t *blen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int proxy_line(char **buf, size_t *blen, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	p = realloc(*buf, *blen + (size_t)n + 2);
	if (!p)
		return -ENOMEM;
	*buf = p;
	memcpy(p + *blen, line, (size_t)n);
	p[*blen + (size_t)n] = '\n';
	*blen += (size_t)n + 1;
	return 0;
}

/* One TLV value as text when printable, else as hex. */
static int proxy_tlv(char **buf, size_t *blen, const char *type, const unsigned char *v, size_t len)
{
	char val[700];
	bool text = len > 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			text = false;
	for (size_t i = 0; i < len && o + 3 < sizeof(val); i++)
		o += (size_t)snprintf(val + o, sizeof(val) - o, text ? "%c" : "%02x", v[i]);
	val[o] = '\0';
	return proxy_line(buf, blen, "tlv=%s len=%zu %s=%s", type, len, text ? "text" : "hex", val);
}

int up_proxy_parse(const char *in, size_t in_len, char **text, size_t *text_len)
{
	static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	const unsigned char *p = (const unsigned char *)in, *t, *end;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	size_t len, alen = 0;

	if (in_len < 16)
		return memcmp(p, sig, in_len < 12 ? in_len : 12) ? -1 : 0;
	if (memcmp(p, sig, 12) || p[12] != 0x21)
		return -1;
	len = (size_t)p[14] << 8 | p[15];
	if (in_len < 16 + len)
		return 0;
	if (p[13] == 0x11 && len >= 12) {
		alen = 12;
		inet_ntop(AF_INET, p + 16, a, sizeof(a));
		inet_ntop(AF_INET, p + 20, b, sizeof(b));
		proxy_line(text, text_len, "family=inet src=%s:%u dst=%s:%u", a, p[24] << 8 | p[25],
			   b, p[26] << 8 | p[27]);
	} else if (p[13] == 0x21 && len >= 36) {
		alen = 36;
		inet_ntop(AF_INET6, p + 16, a, sizeof(a));
		inet_ntop(AF_INET6, p + 32, b, sizeof(b));
		proxy_line(text, text_len, "family=inet6 src=[%s]:%u dst=[%s]:%u", a,
			   p[48] << 8 | p[49], b, p[50] << 8 | p[51]);
	} else if (p[13] == 0x00) {
		proxy_line(text, text_len, "family=unspec");
	} else {
		return -1;
	}
	end = p + 16 + len;
	for (t = p + 16 + alen; t < end;) {
		size_t tl;
		char type[16];

		if (end - t < 3 || (size_t)(end - t - 3) < (tl = (size_t)t[1] << 8 | t[2]))
			return -1;
		snprintf(type, sizeof(type), "0x%02x", t[0]);
		if (t[0] == 0x20 && tl >= 5) {
			const unsigned char *s = t + 8, *se = t + 3 + tl;

			proxy_line(text, text_len, "tlv=0x20 client=0x%02x verify=%u", t[3],
				   (unsigned)t[4] << 24 | (unsigned)t[5] << 16 |
					   (unsigned)t[6] << 8 | t[7]);
			while (s < se) {
				size_t sl;

				if (se - s < 3 ||
				    (size_t)(se - s - 3) < (sl = (size_t)s[1] << 8 | s[2]))
					return -1;
				snprintf(type, sizeof(type), "0x20/0x%02x", s[0]);
				proxy_tlv(text, text_len, type, s + 3, sl);
				s += 3 + sl;
			}
		} else {
			proxy_tlv(text, text_len, type, t + 3, tl);
		}
		t += 3 + tl;
	}
	return (int)(16 + len);
}
