#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

#define LINE_MAX_LEN 4096

static enum edge_log_level log_level = EDGE_LOG_INFO;
static enum edge_log_format log_format = EDGE_LOG_TEXT;
static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "logfmt", "json" };

void edge_log_set_level(enum edge_log_level level)
{
	log_level = level;
}
enum edge_log_level edge_log_get_level(void)
{
	return log_level;
}
void edge_log_set_format(enum edge_log_format f)
{
	log_format = f;
}

const char *edge_log_format_name(enum edge_log_format f)
{
	return (unsigned int)f <= EDGE_LOG_JSON ? format_names[f] : "?";
}

int edge_log_parse_level(const char *s, enum edge_log_level *out)
{
	if (!strcasecmp(s, "err") || !strcasecmp(s, "error"))
		*out = EDGE_LOG_ERR;
	else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
		*out = EDGE_LOG_WARN;
	else if (!strcasecmp(s, "info"))
		*out = EDGE_LOG_INFO;
	else if (!strcasecmp(s, "debug"))
		*out = EDGE_LOG_DEBUG;
	else
		return -EINVAL;
	return 0;
}

int edge_log_parse_format(const char *s, enum edge_log_format *out)
{
	for (int i = 0; i <= EDGE_LOG_JSON; i++) {
		if (!strcmp(s, format_names[i])) {
			*out = (enum edge_log_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static bool logfmt_bare(const char *v)
{
	if (!*v)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '=' || *p == '"' || *p == '\\')
			return false;
	return true;
}

/* Escapes v between quotes into out (JSON or logfmt escapes). Whole escapes
 * only: a truncated value still ends with its closing quote. */
static size_t quoted(char *out, size_t len, const char *v, bool json)
{
	size_t o = 0;

	if (len < 3) {
		if (len)
			out[0] = '\0';
		return 0;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)v; *p;) {
		char e[8];
		size_t el, step = 1;

		if (*p == '"' || *p == '\\') {
			e[0] = '\\', e[1] = (char)*p, el = 2;
		} else if (*p == '\n') {
			memcpy(e, "\\n", 2), el = 2;
		} else if (*p == '\t') {
			memcpy(e, "\\t", 2), el = 2;
		} else if (*p == '\r') {
			memcpy(e, "\\r", 2), el = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			el = (size_t)snprintf(e, sizeof(e), json ? "\\u%04x" : "\\x%02x", *p);
		} else if (*p >= 0x80 && !(step = utf8_len(p))) {
			step = 1;
			el = (size_t)snprintf(e, sizeof(e), json ? "\\ufffd" : "\\x%02x", *p);
		} else {
			memcpy(e, p, step), el = step;
		}
		if (o + el + 2 > len)
			break;
		memcpy(out + o, e, el);
		o += el;
		p += step;
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

size_t edge_log_logfmt_value(char *out, size_t len, const char *v)
{
	if (logfmt_bare(v)) {
		size_t n = strlen(v);

		if (!len)
			return 0;
		if (n >= len)
			return quoted(out, len, v, false); /* truncated: quoted stays well-formed */
		memcpy(out, v, n + 1);
		return n;
	}
	return quoted(out, len, v, false);
}

size_t edge_log_json_string(char *out, size_t len, const char *v)
{
	return quoted(out, len, v, true);
}

/* A line being built; never overflows, always NUL-terminated. */
struct line {
	char buf[LINE_MAX_LEN];
	size_t len;
};

static void put(struct line *l, const char *s)
{
	size_t n = strlen(s), room = sizeof(l->buf) - 8 - l->len; /* room for "}" and "\n" */

	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

static void put_value(struct line *l, const char *v, bool json)
{
	size_t room = sizeof(l->buf) - 8 - l->len;

	l->len += json ? edge_log_json_string(l->buf + l->len, room, v)
		       : edge_log_logfmt_value(l->buf + l->len, room, v);
}

static bool line_start(struct line *l, enum edge_log_level level)
{
	struct timespec ts;
	struct tm tm;
	char t[40];

	if (level > log_level)
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	l->len = 0;
	l->buf[0] = '\0';
	if (log_format == EDGE_LOG_JSON) {
		put(l, "{\"time\":\"");
		put(l, t);
		put(l, "\",\"level\":\"");
		put(l, level_names[level]);
		put(l, "\",\"msg\":");
	} else if (log_format == EDGE_LOG_LOGFMT) {
		put(l, "time=");
		put(l, t);
		put(l, " level=");
		put(l, level_names[level]);
		put(l, " msg=");
	} else {
		put(l, t);
		put(l, " ");
		put(l, level_names[level]);
		put(l, " ");
	}
	return true;
}

/* One write per line so threads never interleave within a line. */
static void line_end(struct line *l)
{
	if (log_format == EDGE_LOG_JSON)
		l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	fwrite(l->buf, 1, l->len, stderr);
}

__attribute__((format(printf, 3, 0))) static void
log_vwrite(enum edge_log_level level, const char *suffix, const char *fmt, va_list ap)
{
	struct line l;
	char msg[2048];
	size_t n;

	if (!line_start(&l, level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (suffix && *suffix)
		snprintf(msg + n, sizeof(msg) - n, ": %s", suffix);
	if (log_format == EDGE_LOG_TEXT)
		put(&l, msg);
	else
		put_value(&l, msg, log_format == EDGE_LOG_JSON);
	line_end(&l);
}

void edge_log_write(enum edge_log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
	errno = saved;
}

void edge_log_event(enum edge_log_level level, const char *event, const struct edge_log_field *f,
		    size_t n)
{
	bool json = log_format == EDGE_LOG_JSON;
	int saved = errno;
	struct line l;

	if (!line_start(&l, level))
		return;
	if (json)
		put_value(&l, event, true);
	else
		put(&l, event);
	for (size_t i = 0; i < n; i++) {
		char num[32];

		if (!f[i].is_num && !f[i].str)
			continue;
		if (json) {
			put(&l, ",");
			put_value(&l, f[i].key, true);
			put(&l, ":");
		} else {
			put(&l, " ");
			put(&l, f[i].key);
			put(&l, "=");
		}
		if (f[i].is_num) {
			snprintf(num, sizeof(num), "%lld", f[i].num);
			put(&l, num);
		} else {
			put_value(&l, f[i].str, json);
		}
	}
	line_end(&l);
	errno = saved;
}

void edge_log_ssl_errors(char *buf, unsigned long len)
{
	unsigned long e;
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];

		ERR_error_string_n(e, one, sizeof(one));
		if (off < len - 1) {
			int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", one);
			if (n > 0)
				off += (size_t)n;
		}
	}
}

void edge_log_ssl(enum edge_log_level level, const char *fmt, ...)
{
	char errs[1024];
	va_list ap;

	edge_log_ssl_errors(errs, sizeof(errs));
	va_start(ap, fmt);
	log_vwrite(level, errs, fmt, ap);
	va_end(ap);
}
