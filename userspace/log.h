/* Logging: one line per event on stderr, "TIME LEVEL message". */
#ifndef EDGE_LOG_H
#define EDGE_LOG_H

#include <stdarg.h>

enum edge_log_level {
	EDGE_LOG_ERR = 0,
	EDGE_LOG_WARN,
	EDGE_LOG_INFO,
	EDGE_LOG_DEBUG,
};

void edge_log_set_level(enum edge_log_level level);
enum edge_log_level edge_log_get_level(void);
/* Parses "err|error|warn|warning|info|debug"; returns 0 or -EINVAL. */
int edge_log_parse_level(const char *s, enum edge_log_level *out);
void edge_log_write(enum edge_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends the drained OpenSSL error queue to the message, as one line. */
void edge_log_ssl(enum edge_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Fills buf with the drained OpenSSL error queue ("" when empty). */
void edge_log_ssl_errors(char *buf, unsigned long len);

#define pr_err(...)   edge_log_write(EDGE_LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  edge_log_write(EDGE_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  edge_log_write(EDGE_LOG_INFO, __VA_ARGS__)
#define pr_debug(...)                                                        \
	do {                                                                 \
		if (edge_log_get_level() >= EDGE_LOG_DEBUG)                  \
			edge_log_write(EDGE_LOG_DEBUG, __VA_ARGS__);         \
	} while (0)

#endif
