/* Output: errors on stderr, tables or "key: value" lines for people, JSON for
 * machines. Commands build one JSON value; this file renders it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

__attribute__((format(printf, 2, 0))) static void vmsg(const char *kind, const char *fmt,
						       va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, CTL_PROG ": %s: %s\n", kind, line);
}

int ctl_error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("error", fmt, ap);
	va_end(ap);
	return code;
}

void ctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning", fmt, ap);
	va_end(ap);
}

void ctl_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("note", fmt, ap);
	va_end(ap);
}

int ctl_errno_exit(int rc)
{
	switch (rc) {
	case 0:
		return CTL_OK;
	case -ENOENT:
		return CTL_ENOENT;
	case -ENOSPC:
		return CTL_ELIMIT;
	case -EINVAL:
	case -EEXIST:
	case -EKEYEXPIRED:
	case -ENAMETOOLONG:
	case -EBADMSG:
		return CTL_EINVAL;
	default:
		return CTL_EIO;
	}
}

const char *ctl_iso(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void ctl_json_time(json_t *o, const char *key, int64_t t)
{
	char k[64], buf[32];

	snprintf(k, sizeof(k), "%s_epoch", key);
	json_object_set_new(o, key, t ? json_string(ctl_iso(t, buf)) : json_null());
	json_object_set_new(o, k, t ? json_integer(t) : json_null());
}

static int dump(json_t *v)
{
	int rc = json_dumpf(v, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	json_decref(v);
	putchar('\n');
	return rc ? ctl_error(CTL_EIO, "cannot write the JSON output") : CTL_OK;
}

/* A value as people read it: arrays joined with ", ", null as "-". */
static void text(const json_t *v, char *out, size_t len)
{
	size_t i, off = 0;
	json_t *e;

	out[0] = '\0';
	switch (json_typeof(v)) {
	case JSON_STRING:
		snprintf(out, len, "%s", *json_string_value(v) ? json_string_value(v) : "-");
		break;
	case JSON_INTEGER:
		snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(out, len, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
		break;
	case JSON_ARRAY:
		CTL_ARRAY_EACH(v, i, e) {
			if (off + 3 >= len)
				break;
			off += (size_t)snprintf(out + off, len - off, "%s", i ? ", " : "");
			text(e, out + off, len - off);
			off += strlen(out + off);
		}
		if (!off)
			snprintf(out, len, "-");
		break;
	case JSON_OBJECT: {
		char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);

		snprintf(out, len, "%s", s ? s : "");
		free(s);
		break;
	}
	default:
		snprintf(out, len, "-");
	}
}

static bool hidden(const char *key)
{
	size_t n = strlen(key);

	return !strcmp(key, "pem") || (n > 6 && !strcmp(key + n - 6, "_epoch"));
}

/* Nested objects flatten to "outer.inner". */
static void kv_collect(const json_t *o, const char *prefix, json_t *flat)
{
	const char *key;
	json_t *v;

	CTL_OBJECT_EACH((json_t *)o, key, v) {
		char k[256];

		if (hidden(key))
			continue;
		snprintf(k, sizeof(k), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(v))
			kv_collect(v, k, flat);
		else
			json_object_set(flat, k, v);
	}
}

static void print_kv(const json_t *o)
{
	json_t *flat = json_object(), *v;
	const char *key;
	int w = 0;

	kv_collect(o, "", flat);
	CTL_OBJECT_EACH(flat, key, v)
		if ((int)strlen(key) > w)
			w = (int)strlen(key);
	CTL_OBJECT_EACH(flat, key, v) {
		char buf[4096];

		text(v, buf, sizeof(buf));
		printf("%s:%*s %s\n", key, w - (int)strlen(key), "", buf);
	}
	json_decref(flat);
}

static void print_table(const json_t *arr, const struct ctl_col *cols)
{
	size_t ncol = 0, nrow = json_array_size(arr), i;
	int *w;

	while (cols[ncol].key)
		ncol++;
	w = calloc(ncol, sizeof(*w));
	if (!w)
		return;
	for (size_t k = 0; k < ncol; k++)
		w[k] = (int)strlen(cols[k].header);
	for (i = 0; i < nrow; i++) {
		for (size_t k = 0; k < ncol; k++) {
			char buf[1024];

			text(json_object_get(json_array_get(arr, i), cols[k].key), buf,
			     sizeof(buf));
			if ((int)strlen(buf) > w[k])
				w[k] = (int)strlen(buf);
		}
	}
	for (i = 0; i <= nrow; i++) {
		for (size_t k = 0; k < ncol; k++) {
			char buf[1024];
			bool last = k + 1 == ncol;

			if (i == 0)
				snprintf(buf, sizeof(buf), "%s", cols[k].header);
			else
				text(json_object_get(json_array_get(arr, i - 1), cols[k].key), buf,
				     sizeof(buf));
			printf("%-*s%s", last ? 0 : w[k], buf, last ? "\n" : "  ");
		}
	}
	free(w);
}

int ctl_emit(struct ctl *c, json_t *v, const struct ctl_col *cols)
{
	if (!v)
		return ctl_error(CTL_EIO, "out of memory");
	if (c->json)
		return dump(v);
	if (json_is_array(v) && cols)
		print_table(v, cols);
	else if (json_is_object(v))
		print_kv(v);
	json_decref(v);
	return CTL_OK;
}

int ctl_emit_msgv(struct ctl *c, json_t *v, const char *fmt, va_list ap)
{
	if (!v)
		return ctl_error(CTL_EIO, "out of memory");
	if (c->json)
		return dump(v);
	json_decref(v);
	vprintf(fmt, ap);
	putchar('\n');
	return CTL_OK;
}

int ctl_emit_msg(struct ctl *c, json_t *v, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ctl_emit_msgv(c, v, fmt, ap);
	va_end(ap);
	return rc;
}
