/*
 * Logging: one line per event on stderr. Three formats ([daemon] log_format):
 *   text    "TIME LEVEL message"                     (the default)
 *   logfmt  "time=TIME level=LEVEL msg=... key=value"
 *   json    {"time":"TIME","level":"LEVEL","msg":"...","key":"value"}
 * Events (handshake, close, expiring) carry their fields as key/value pairs
 * so every format renders them; plain messages become msg. Never key material.
 */
#ifndef EDGE_LOG_H
#define EDGE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum edge_log_level {
	EDGE_LOG_ERR = 0,
	EDGE_LOG_WARN,
	EDGE_LOG_INFO,
	EDGE_LOG_DEBUG,
};

enum edge_log_format {
	EDGE_LOG_TEXT = 0,
	EDGE_LOG_LOGFMT,
	EDGE_LOG_JSON,
};

/* One field of an event: a string (NULL is left out) or a number. */
struct edge_log_field {
	const char *key;
	const char *str;
	long long num;
	bool is_num;
};

#define EDGE_LF_S(k, v) ((struct edge_log_field){ .key = (k), .str = (v) })
#define EDGE_LF_N(k, v) \
	((struct edge_log_field){ .key = (k), .num = (long long)(v), .is_num = true })

void edge_log_set_level(enum edge_log_level level);
enum edge_log_level edge_log_get_level(void);
/* Parses "err|error|warn|warning|info|debug"; returns 0 or -EINVAL. */
int edge_log_parse_level(const char *s, enum edge_log_level *out);
void edge_log_set_format(enum edge_log_format f);
/* Parses "text|logfmt|json"; returns 0 or -EINVAL. */
int edge_log_parse_format(const char *s, enum edge_log_format *out);
const char *edge_log_format_name(enum edge_log_format f);
void edge_log_write(enum edge_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An event: "event k=v ..." in text, msg=event plus the fields otherwise. */
void edge_log_event(enum edge_log_level level, const char *event, const struct edge_log_field *f,
		    size_t n);
/* Appends the drained OpenSSL error queue to the message, as one line. */
void edge_log_ssl(enum edge_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Fills buf with the drained OpenSSL error queue ("" when empty). */
void edge_log_ssl_errors(char *buf, unsigned long len);

/* The escapers, for the log and its tests. Both always NUL-terminate and
 * return the length written (truncated output stays well-formed). */
/* A logfmt value: bare when it is a plain token, else "quoted" with \" \\ \n \t
 * and \xHH for other control bytes. */
size_t edge_log_logfmt_value(char *out, size_t len, const char *v);
/* A JSON string literal with its quotes; control bytes as \u00HH. */
size_t edge_log_json_string(char *out, size_t len, const char *v);

#define pr_err(...) edge_log_write(EDGE_LOG_ERR, __VA_ARGS__)
#define pr_warn(...) edge_log_write(EDGE_LOG_WARN, __VA_ARGS__)
#define pr_info(...) edge_log_write(EDGE_LOG_INFO, __VA_ARGS__)
#define pr_debug(...)                                                \
	do {                                                         \
		if (edge_log_get_level() >= EDGE_LOG_DEBUG)          \
			edge_log_write(EDGE_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
