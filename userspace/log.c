#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

static enum edge_log_level log_level = EDGE_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void edge_log_set_level(enum edge_log_level level) { log_level = level; }
enum edge_log_level edge_log_get_level(void) { return log_level; }

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

static void log_vwrite(enum edge_log_level level, const char *suffix,
		       const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	/* One write per line so threads never interleave within a line. */
	if (suffix && *suffix)
		fprintf(stderr, "%s: %s\n", line, suffix);
	else
		fprintf(stderr, "%s\n", line);
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
