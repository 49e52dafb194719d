/* The exposition writer, the bounded label table, and the log escapers and formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "tap.h"

/* Runs one edge_log_* call with stderr captured; returns the line without the time. */
static char captured[4096];

static const char *capture_event(enum edge_log_format f, const char *event,
				 const struct edge_log_field *fl, size_t n)
{
	char path[] = "/tmp/edge-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	FILE *in;
	size_t len;
	char *p;

	fflush(stderr);
	dup2(fd, 2);
	edge_log_set_format(f);
	if (event)
		edge_log_event(EDGE_LOG_WARN, event, fl, n);
	else
		edge_log_write(EDGE_LOG_INFO, "plain %s \"message\"", "text");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	edge_log_set_format(EDGE_LOG_TEXT);
	in = fopen(path, "r");
	len = in ? fread(captured, 1, sizeof(captured) - 1, in) : 0;
	captured[len] = '\0';
	/* exactly one line: strip its newline, or leave a marker that fails the comparison */
	if (len && captured[len - 1] == '\n' && !memchr(captured, '\n', len - 1))
		captured[len - 1] = '\0';
	else
		snprintf(captured, sizeof(captured), "Z  (not one line)");
	if (in)
		fclose(in);
	close(fd);
	unlink(path);
	/* drop the timestamp: "2026-...Z " / time=...Z / {"time":"...Z", */
	p = strstr(captured, "Z");
	if (!p)
		return captured;
	return p + (f == EDGE_LOG_JSON ? 3 : 2);
}

static void test_exposition(void)
{
	struct edge_mbuf b = { 0 };
	char out[64];

	edge_metrics_escape_label(out, sizeof(out), "a\"b\\c\nd");
	ok(!strcmp(out, "a\\\"b\\\\c\\nd"), "label value escaped: %s", out);
	edge_metrics_escape_label(out, 4, "ab\"c");
	ok(!strcmp(out, "ab"), "a truncated label never ends inside an escape: '%s'", out);

	edge_metrics_family(&b, "edge_x_total", "counter", "Counts \"x\"; a \\ and a\nnewline.");
	edge_metrics_sample_u(&b, "edge_x_total",
			      (const char *const[]){ "host", "a\"b", "verdict", "pass", NULL },
			      18446744073709551615ull);
	edge_metrics_sample(&b, "edge_x_total", NULL, -3);
	ok(b.p && !strcmp(b.p,
			  "# HELP edge_x_total Counts \"x\"; a \\\\ and a\\nnewline.\n"
			  "# TYPE edge_x_total counter\n"
			  "edge_x_total{host=\"a\\\"b\",verdict=\"pass\"} 18446744073709551615\n"
			  "edge_x_total -3\n"),
	   "HELP escapes \\ and newline only; labels in order; values exact");
	if (b.p && strstr(b.p, "-3\n") != b.p + b.len - 3)
		printf("# got: %s\n", b.p);
	edge_mbuf_free(&b);

	for (int i = 0; i < 2000; i++)
		edge_metrics_sample(&b, "edge_many", (const char *const[]){ "i", "x", NULL }, i);
	ok(!b.oom && b.len == 2000 * strlen("edge_many{i=\"x\"} \n") + 10 * 1 + 90 * 2 + 900 * 3 +
				      1000 * 4,
	   "the buffer grows past its first 4 KiB: %zu bytes", b.len);
	ok(b.len > 4096 && !strcmp(b.p + b.len - strlen("edge_many{i=\"x\"} 1999\n"),
				   "edge_many{i=\"x\"} 1999\n"),
	   "and ends with the last sample");
	edge_mbuf_free(&b);
}

/* A handshake counted as the daemon counts it: the host's label, the failure's index. */
static void hs(struct edge_metrics *m, size_t worker, const char *host, int verdict,
	       enum edge_hs_fail fail, enum edge_reason vreason, const char *issuer)
{
	edge_metrics_handshake(m, edge_metrics_worker(m, worker), edge_metrics_host_label(m, host),
			       verdict, edge_hs_fail_index(fail, vreason), vreason, issuer);
}

static void test_labels(void)
{
	struct edge_metrics *m;
	struct edge_metrics_worker *w0, *sum;
	struct edge_expiry_item *items = calloc(2, sizeof(*items));
	char host[32];

	ok(!edge_metrics_new(&m, 2), "metrics table for two workers");
	w0 = edge_metrics_worker(m, 0);
	ok(w0 && edge_metrics_worker(m, 1) && !edge_metrics_worker(m, 2), "one table per worker");
	hs(m, 0, NULL, EDGE_METRICS_FAIL, EDGE_HS_UNKNOWN_SNI, EDGE_REASON_OK, "");
	hs(m, 0, "api.example.com", EDGE_VERDICT_PASS, EDGE_HS_OK, EDGE_REASON_OK, "");
	hs(m, 0, "api.example.com", EDGE_VERDICT_PASS, EDGE_HS_OK, EDGE_REASON_OK, "");
	is_int(w0->handshakes[0][EDGE_METRICS_FAIL], 1, "no SNI object: _other");
	ok(!strcmp(m->hosts[1], "api.example.com"), "an SNI object's hostname is a label");
	is_int(edge_metrics_host_label(m, "api.example.com"), 1, "the same name, the same label");
	is_int(w0->handshakes[1][EDGE_VERDICT_PASS], 2, "counted under it");
	is_int(w0->fail_reasons[EDGE_METRICS_FAIL_REASONS - 1], 0, "unknown_sni is a known reason");
	for (int i = 0; i < 300; i++) {
		snprintf(host, sizeof(host), "h%d.example.com", i);
		hs(m, 0, host, EDGE_METRICS_FAIL, EDGE_HS_FAIL_COUNT, EDGE_REASON_OK, "");
	}
	is_int(m->n_hosts, EDGE_METRICS_MAX_HOSTS, "the host labels stop at the bound");
	is_int(w0->handshakes[0][EDGE_METRICS_FAIL], 1 + 300 - (EDGE_METRICS_MAX_HOSTS - 2),
	       "the rest land in _other");
	is_int(w0->fail_reasons[EDGE_METRICS_FAIL_REASONS - 1], 300, "an unknown reason is other");
	ok(!strcmp(edge_metrics_fail_reason_name(EDGE_METRICS_FAIL_REASONS - 1), "other") &&
		   !strcmp(edge_metrics_fail_reason_name(0), edge_reason_name(1)),
	   "reason names: the verifier's first, other last");
	ok(!strcmp(edge_metrics_fail_reason_name(edge_hs_fail_index(EDGE_HS_TIMEOUT,
								    EDGE_REASON_OK)),
		   "handshake_timeout") &&
		   !strcmp(edge_metrics_fail_reason_name(
				   edge_hs_fail_index(EDGE_HS_VERIFY, EDGE_REASON_NO_CLIENT_CERT)),
			   "no_client_cert"),
	   "a failure's index names it");

	items[0].kind = EDGE_EXPIRY_BUILTIN_CA;
	snprintf(items[0].name, sizeof(items[0].name), "builtin");
	snprintf(items[0].subject, sizeof(items[0].subject), "CN=edge CA");
	items[1].kind = EDGE_EXPIRY_CA;
	snprintf(items[1].name, sizeof(items[1].name), "partner");
	snprintf(items[1].subject, sizeof(items[1].subject), "CN=partner CA");
	edge_metrics_set_expiry(m, items, 2, 1000, 30);
	hs(m, 0, "api.example.com", EDGE_METRICS_FAIL, EDGE_HS_VERIFY, EDGE_REASON_CERT_EXPIRED,
	   "CN=partner CA");
	hs(m, 1, "api.example.com", EDGE_VERDICT_REFUSE, EDGE_HS_VERIFY, EDGE_REASON_CERT_REVOKED,
	   "CN=edge CA");
	hs(m, 1, "api.example.com", EDGE_METRICS_FAIL, EDGE_HS_VERIFY, EDGE_REASON_UNKNOWN_CA,
	   "CN=someone else");
	sum = edge_metrics_sum(m);
	ok(sum != NULL, "the workers' counters summed");
	ok(!strcmp(m->cas[3], "partner"), "an uploaded CA's name is a label");
	is_int(sum->verify_failures[1][EDGE_REASON_CERT_EXPIRED][3], 1, "ca=partner");
	is_int(sum->verify_failures[1][EDGE_REASON_CERT_REVOKED][2], 1, "ca=builtin");
	is_int(sum->verify_failures[1][EDGE_REASON_UNKNOWN_CA][0], 1,
	       "an unknown issuer: ca=_none");
	is_int(sum->handshakes[1][EDGE_VERDICT_REFUSE], 0,
	       "verdict refuse is not a label of its own");
	is_int(sum->handshakes[1][EDGE_METRICS_FAIL], 3,
	       "it counts as fail (with the two failures), as the log names it");
	is_int(sum->handshakes[1][EDGE_VERDICT_PASS], 2, "the sum has worker 0's counts too");
	free(sum);
	edge_metrics_free(m);
}

static void test_log(void)
{
	char out[64];
	enum edge_log_format f;
	const struct edge_log_field fl[] = {
		EDGE_LF_S("peer", "127.0.0.1:5"), EDGE_LF_S("subject", "CN=a \"b\""),
		EDGE_LF_S("skipped", NULL),       EDGE_LF_N("bytes", 42),
		EDGE_LF_S("empty", ""),
	};

	edge_log_logfmt_value(out, sizeof(out), "plain");
	ok(!strcmp(out, "plain"), "logfmt: a plain token stays bare");
	edge_log_logfmt_value(out, sizeof(out), "");
	ok(!strcmp(out, "\"\""), "logfmt: empty is \"\"");
	edge_log_logfmt_value(out, sizeof(out), "a=b c\"d\\e\nf\x01");
	ok(!strcmp(out, "\"a=b c\\\"d\\\\e\\nf\\x01\""), "logfmt: quoted and escaped: %s", out);
	edge_log_logfmt_value(out, 8, "abcdefghijkl");
	ok(!strcmp(out, "\"abcde\""), "logfmt: a truncated value is still closed: %s", out);
	edge_log_json_string(out, sizeof(out), "a\"b\\c\n\x01\xc3\xa9\xff");
	ok(!strcmp(out, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\""),
	   "json: escapes, UTF-8 kept, a stray byte replaced: %s", out);
	edge_log_json_string(out, 6, "a\"bcdef");
	ok(!strcmp(out, "\"a\\\"\""), "json: truncated at a whole escape: %s", out);

	ok(!edge_log_parse_format("logfmt", &f) && f == EDGE_LOG_LOGFMT, "logfmt parses");
	ok(edge_log_parse_format("yaml", &f) < 0, "yaml refused");
	ok(!strcmp(edge_log_format_name(EDGE_LOG_JSON), "json"), "json named");

	ok(!strcmp(capture_event(EDGE_LOG_TEXT, "handshake", fl, 5),
		   "warn handshake peer=127.0.0.1:5 subject=\"CN=a \\\"b\\\"\" bytes=42 empty=\"\""),
	   "text event: %s", captured);
	ok(!strcmp(capture_event(EDGE_LOG_LOGFMT, "handshake", fl, 5),
		   "level=warn msg=handshake peer=127.0.0.1:5 subject=\"CN=a \\\"b\\\"\" bytes=42"
		   " empty=\"\""),
	   "logfmt event: %s", captured);
	ok(!strcmp(capture_event(EDGE_LOG_JSON, "handshake", fl, 5),
		   "\"level\":\"warn\",\"msg\":\"handshake\",\"peer\":\"127.0.0.1:5\","
		   "\"subject\":\"CN=a \\\"b\\\"\",\"bytes\":42,\"empty\":\"\"}"),
	   "json event: %s", captured);
	ok(!strcmp(capture_event(EDGE_LOG_JSON, NULL, NULL, 0),
		   "\"level\":\"info\",\"msg\":\"plain text \\\"message\\\"\"}"),
	   "json plain message: %s", captured);
	ok(!strcmp(capture_event(EDGE_LOG_LOGFMT, NULL, NULL, 0),
		   "level=info msg=\"plain text \\\"message\\\"\""),
	   "logfmt plain message: %s", captured);
}

int main(void)
{
	test_exposition();
	test_labels();
	test_log();
	return tap_done();
}
