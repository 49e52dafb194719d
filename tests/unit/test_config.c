/* INI config: values, defaults, durations, addresses, "file:line: message". */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char path[64];

static int load_text(struct edge_config *cfg, const char *text, char *err, size_t errlen)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/edge-config-XXXXXX");
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	edge_config_defaults(cfg);
	int rc = edge_config_load(cfg, path, err, errlen);
	unlink(path);
	return rc;
}

int main(void)
{
	struct edge_config cfg;
	struct edge_addr a;
	char err[512], want[128];
	unsigned int ms;

	edge_config_defaults(&cfg);
	ok(!strcmp(cfg.state_dir, "/var/lib/mtls-edge"), "default state dir");
	is_int(cfg.workers, 2, "default workers");
	is_int(cfg.handshake_timeout_ms, 10000, "default handshake timeout 10 s");
	is_int(cfg.n_listen, 0, "no default listener");
	ok(edge_config_validate(&cfg, err, sizeof(err)) < 0 && strstr(err, "--listen"),
	   "no listener refused, naming --listen: %s", err);

	ok(!load_text(&cfg,
		      "; comment\n[daemon]\nstate_dir = /srv/edge\nlisten = 127.0.0.1:8443\n"
		      "listen = [::1]:9443, 0.0.0.0:10443\nworkers = 4\nlog_level = debug\n"
		      "[limits]\nhandshake_timeout = 1500ms\nmax_handshakes = 64\nmax_handshakes_per_source = 8\n"
		      "idle_timeout = 5m\nupstream_connect_timeout = 2\ndrain_timeout = 1h\n"
		      "[tls]\ndefault_sni = api.example.com\nverify_depth = 2\n",
		      err, sizeof(err)),
	   "full config loads: %s", err);
	ok(!strcmp(cfg.state_dir, "/srv/edge"), "state_dir read");
	is_int(cfg.n_listen, 3, "three listeners (repeated and comma-separated)");
	ok(!strcmp(cfg.listen[0].text, "127.0.0.1:8443"), "IPv4 listener: %s", cfg.listen[0].text);
	ok(!strcmp(cfg.listen[1].text, "[::1]:9443"), "IPv6 listener: %s", cfg.listen[1].text);
	is_int(cfg.listen[1].ss.ss_family, AF_INET6, "IPv6 family");
	is_int(cfg.workers, 4, "workers read");
	is_int(cfg.log_level, EDGE_LOG_DEBUG, "log level read");
	is_int(cfg.handshake_timeout_ms, 1500, "1500ms");
	is_int(cfg.max_handshakes, 64, "max_handshakes read");
	is_int(cfg.max_handshakes_per_source, 8, "max_handshakes_per_source read");
	is_int(cfg.idle_timeout_ms, 300000, "5m");
	is_int(cfg.upstream_connect_timeout_ms, 2000, "bare number is seconds");
	is_int(cfg.drain_timeout_ms, 3600000, "1h");
	ok(!strcmp(cfg.default_sni, "api.example.com"), "default_sni read");
	is_int(cfg.verify_depth, 2, "verify_depth read");
	ok(!edge_config_validate(&cfg, err, sizeof(err)), "valid config validates");

	/* Logs, metrics, expiry. */
	is_int(cfg.log_format, EDGE_LOG_TEXT, "default log_format is text");
	ok(!load_text(&cfg,
		      "[daemon]\nlog_format = json\n[tls]\nexpiry_warn_days = 14\n"
		      "[metrics]\nlisten = 127.0.0.1:9100\n",
		      err, sizeof(err)),
	   "log_format, expiry_warn_days, [metrics] listen load: %s", err);
	is_int(cfg.log_format, EDGE_LOG_JSON, "log_format = json");
	is_int(cfg.expiry_warn_days, 14, "expiry_warn_days = 14");
	ok(cfg.metrics_on && !strcmp(cfg.metrics_listen.text, "127.0.0.1:9100"), "metrics listen");
	edge_config_add_listen(&cfg, "127.0.0.1:8443", err, sizeof(err));
	ok(!edge_config_validate(&cfg, err, sizeof(err)), "loopback metrics validate: %s", err);
	ok(!load_text(&cfg, "[daemon]\nlisten = 127.0.0.1:1\n[metrics]\nlisten = 0.0.0.0:9100\n",
		      err, sizeof(err)) &&
		   edge_config_validate(&cfg, err, sizeof(err)) == -22 &&
		   strstr(err, "allow_remote = yes"),
	   "non-loopback metrics refused: %s", err);
	ok(!load_text(&cfg,
		      "[daemon]\nlisten = 127.0.0.1:1\n[metrics]\nlisten = [::]:9100\n"
		      "allow_remote = yes\n",
		      err, sizeof(err)) &&
		   !edge_config_validate(&cfg, err, sizeof(err)),
	   "allowed with allow_remote = yes: %s", err);
	ok(!load_text(&cfg, "[daemon]\nlisten = 127.0.0.1:1\n[metrics]\nlisten = [::1]:9100\n", err,
		      sizeof(err)) &&
		   !edge_config_validate(&cfg, err, sizeof(err)),
	   "[::1] is loopback: %s", err);
	ok(!load_text(&cfg, "[metrics]\nlisten = off\n", err, sizeof(err)) && !cfg.metrics_on,
	   "listen = off");
	ok(load_text(&cfg, "[daemon]\nlog_format = xml\n", err, sizeof(err)) == -22 &&
		   strstr(err, ":2: log_format: 'xml' is not one of text, logfmt, json"),
	   "bad log_format refused: %s", err);
	ok(load_text(&cfg, "[tls]\nexpiry_warn_days = -1\n", err, sizeof(err)) == -22 &&
		   strstr(err, "expiry_warn_days: '-1'"),
	   "bad expiry_warn_days refused: %s", err);
	ok(load_text(&cfg, "[metrics]\nlisten = nowhere\n", err, sizeof(err)) == -22 &&
		   strstr(err, ":2: listen: bad address 'nowhere'"),
	   "bad metrics address: %s", err);

	/* Errors name the file and the line. */
	ok(load_text(&cfg, "[daemon]\nworkers = 4\nworkers = lots\n", err, sizeof(err)) == -22,
	   "bad workers refused");
	snprintf(want, sizeof(want), "%s:3: workers: 'lots'", path);
	ok(strstr(err, want) != NULL, "error has file:line: %s", err);
	ok(load_text(&cfg, "[daemon]\nfrobnicate = 1\n", err, sizeof(err)) == -22 &&
		   strstr(err, ":2: unknown key 'frobnicate' in section [daemon]"),
	   "unknown key refused: %s", err);
	ok(load_text(&cfg, "[limits]\nhandshake_timeout = soon\n", err, sizeof(err)) == -22 &&
		   strstr(err, "not a duration"),
	   "bad duration refused: %s", err);
	ok(load_text(&cfg, "[daemon]\nlisten = 127.0.0.1:99999\n", err, sizeof(err)) == -22 &&
		   strstr(err, "bad port"),
	   "bad port refused: %s", err);
	ok(load_text(&cfg, "[daemon\nlisten = 1\n", err, sizeof(err)) == -22 && strstr(err, ":1:"),
	   "syntax error at line 1: %s", err);
	ok(edge_config_load(&cfg, "/nonexistent/edge.conf", err, sizeof(err)) < 0 &&
		   strstr(err, "No such file"),
	   "missing file: %s", err);

	/* The annotated config shipped in config/ states exactly the defaults. */
	{
		struct edge_config def, shipped;

		edge_config_defaults(&def);
		edge_config_defaults(&shipped);
		ok(!edge_config_load(&shipped, "config/mtls-edged.conf", err, sizeof(err)),
		   "config/mtls-edged.conf loads: %s", err);
		ok(!strcmp(shipped.state_dir, def.state_dir) && shipped.workers == def.workers &&
			   shipped.log_level == def.log_level &&
			   shipped.handshake_timeout_ms == def.handshake_timeout_ms &&
			   shipped.max_handshakes == def.max_handshakes &&
			   shipped.max_handshakes_per_source == def.max_handshakes_per_source &&
			   shipped.idle_timeout_ms == def.idle_timeout_ms &&
			   shipped.upstream_connect_timeout_ms == def.upstream_connect_timeout_ms &&
			   shipped.drain_timeout_ms == def.drain_timeout_ms &&
			   shipped.ktls == def.ktls && shipped.verify_depth == def.verify_depth &&
			   !shipped.default_sni[0] && shipped.log_format == def.log_format &&
			   shipped.expiry_warn_days == def.expiry_warn_days &&
			   shipped.session_tickets == def.session_tickets &&
			   shipped.crl_fetch == def.crl_fetch &&
			   shipped.verify_cache == def.verify_cache &&
			   shipped.own_records == def.own_records &&
			   shipped.crl_fetch_timeout_ms == def.crl_fetch_timeout_ms &&
			   shipped.crl_fetch_max_bytes == def.crl_fetch_max_bytes &&
			   shipped.crl_refresh_max_s == def.crl_refresh_max_s &&
			   shipped.metrics_on == def.metrics_on &&
			   shipped.metrics_allow_remote == def.metrics_allow_remote,
		   "its values are the compiled-in defaults");
		is_int(shipped.n_listen, 1, "it has one listener");
	}

	/* Durations and addresses. */
	ok(!edge_parse_duration_ms("250ms", &ms) && ms == 250, "250ms");
	ok(!edge_parse_duration_ms("0.5s", &ms) && ms == 500, "0.5s");
	ok(edge_parse_duration_ms("-1s", &ms) < 0, "negative refused");
	ok(edge_parse_duration_ms("10d", &ms) < 0, "unknown unit refused");
	ok(!edge_addr_parse("*:443", &a, err, sizeof(err)) && !strcmp(a.text, "0.0.0.0:443"),
	   "*:443 is any address: %s", a.text);
	ok(!edge_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), "port 0 allowed");
	ok(edge_addr_parse("127.0.0.1", &a, err, sizeof(err)) < 0, "missing port refused");
	ok(edge_addr_parse("[::1:443", &a, err, sizeof(err)) < 0, "unclosed bracket refused");
	return tap_done();
}
