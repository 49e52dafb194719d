#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "policy.h"

void edge_config_defaults(struct edge_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (int i = 0; i < EDGE_MAX_LISTEN; i++)
		cfg->listen_mtls[i] = EDGE_LISTEN_MTLS_SNI;
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", EDGE_DEFAULT_STATE_DIR);
	cfg->workers = 2;
	cfg->log_level = EDGE_LOG_INFO;
	cfg->handshake_timeout_ms = 10000;
	cfg->max_handshakes = 1024;
	cfg->max_handshakes_per_source = 64;
	cfg->idle_timeout_ms = 300000;
	cfg->upstream_connect_timeout_ms = 5000;
	cfg->upstream_keepalive = 32;
	cfg->upstream_keepalive_timeout_ms = 4000;
	cfg->drain_timeout_ms = 10000;
	cfg->reload_poll_ms = 250;
	cfg->crl_fetch = true;
	cfg->verify_cache = true;
	cfg->own_records = true;
	cfg->crl_fetch_timeout_ms = 10000;
	cfg->crl_fetch_max_bytes = 10u << 20;
	cfg->crl_refresh_max_s = 3600;
	cfg->verify_depth = 3;
	cfg->offender_ttl_ms = 60000;
	cfg->expiry_warn_days = 30;
	snprintf(cfg->bpf_pin_dir, sizeof(cfg->bpf_pin_dir), "/sys/fs/bpf/mtls-edge");
}

void edge_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "unknown");
	}
}

int edge_addr_parse(const char *text, struct edge_addr *out, char *err, size_t errlen)
{
	char host[256];
	const char *port_s, *colon;
	struct addrinfo hints = { 0 }, *res = NULL;
	char *end;
	long port;
	size_t hlen;
	int rc;

	if (!text || !*text) {
		snprintf(err, errlen, "empty address (want ADDR:PORT)");
		return -EINVAL;
	}
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "bad address '%s' (want [IPV6]:PORT)", text);
			return -EINVAL;
		}
		hlen = (size_t)(close - text - 1);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text + 1, hlen);
		port_s = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			snprintf(err, errlen, "bad address '%s' (want ADDR:PORT)", text);
			return -EINVAL;
		}
		hlen = (size_t)(colon - text);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text, hlen);
		port_s = colon + 1;
	}
	host[hlen] = '\0';
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (!*port_s || *end || errno || port < 0 || port > 65535) {
		snprintf(err, errlen, "bad port in '%s' (want 0-65535)", text);
		return -EINVAL;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo((hlen == 0 || !strcmp(host, "*")) ? NULL : host, port_s, &hints, &res);
	if (rc || !res) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	edge_addr_format((struct sockaddr *)&out->ss, out->text, sizeof(out->text));
	return 0;
toolong:
	snprintf(err, errlen, "address too long: '%.64s...'", text);
	return -EINVAL;
}

int edge_config_add_listen(struct edge_config *cfg, const char *text, char *err, size_t errlen)
{
	char buf[512], *tok, *save = NULL;
	int rc;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		/* "ADDR:PORT mtls=MODE": the listener's own mTLS mode, for every SNI object */
		if (!strncmp(tok, "mtls=", 5)) {
			enum edge_mtls_mode m;

			if (!cfg->n_listen) {
				snprintf(err, errlen, "'%s' comes before any address", tok);
				return -EINVAL;
			}
			if (edge_mtls_mode_parse(tok + 5, &m)) {
				snprintf(err, errlen,
					 "'%s': the mTLS mode is one of required, optional, off",
					 tok);
				return -EINVAL;
			}
			cfg->listen_mtls[cfg->n_listen - 1] = (int)m;
			continue;
		}
		if (strchr(tok, '=')) {
			snprintf(err, errlen, "'%s': the only listener option is mtls=MODE", tok);
			return -EINVAL;
		}
		if (cfg->n_listen >= EDGE_MAX_LISTEN) {
			snprintf(err, errlen, "too many listen addresses (at most %d)",
				 EDGE_MAX_LISTEN);
			return -E2BIG;
		}
		rc = edge_addr_parse(tok, &cfg->listen[cfg->n_listen], err, errlen);
		if (rc)
			return rc;
		cfg->listen_mtls[cfg->n_listen] = EDGE_LISTEN_MTLS_SNI;
		cfg->n_listen++;
	}
	return 0;
}

int edge_config_set_default_sni(struct edge_config *cfg, const char *host, char *err, size_t errlen)
{
	if (strlen(host) >= sizeof(cfg->default_sni)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	snprintf(cfg->default_sni, sizeof(cfg->default_sni), "%s", host);
	return 0;
}

int edge_config_set_metrics(struct edge_config *cfg, const char *text, char *err, size_t errlen)
{
	if (!*text || !strcmp(text, "off")) {
		cfg->metrics_on = false;
		return 0;
	}
	if (edge_addr_parse(text, &cfg->metrics_listen, err, errlen))
		return -EINVAL;
	cfg->metrics_on = true;
	return 0;
}

static bool addr_is_loopback(const struct edge_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&a->ss;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return false;
}

int edge_parse_duration_ms(const char *s, unsigned int *out_ms)
{
	char *end;
	double v;
	double mult = 1000.0;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	if (!strcmp(end, "ms"))
		mult = 1.0;
	else if (!strcmp(end, "s") || !*end)
		mult = 1000.0;
	else if (!strcmp(end, "m"))
		mult = 60000.0;
	else if (!strcmp(end, "h"))
		mult = 3600000.0;
	else
		return -EINVAL;
	v *= mult;
	if (v > 86400000.0 * 7)
		return -ERANGE;
	*out_ms = (unsigned int)v;
	return 0;
}

static int parse_uint(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

struct ini_ctx {
	struct edge_config *cfg;
	char msg[512];
};

/* libinih handler: returns 0 to report an error at the current line. */
/* [fleet] KEY = VALUE: text fields, checked for length (and the names for their form). */
static int fleet_key(struct edge_fleet_config *f, const char *name, const char *value, char *msg,
		     size_t msglen)
{
	static const struct {
		const char *name;
		size_t off, len;
	} keys[] = {
#define FK(n) \
	{ #n, offsetof(struct edge_fleet_config, n), sizeof(((struct edge_fleet_config *)0)->n) }
		FK(etcd), FK(cluster), FK(node), FK(ca),
		FK(cert), FK(key),     FK(user), FK(password_file),
#undef FK
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(name, keys[i].name))
			continue;
		if (!*value || strlen(value) >= keys[i].len) {
			snprintf(msg, msglen, "%s: empty or longer than %zu bytes", name,
				 keys[i].len - 1);
			return -EINVAL;
		}
		snprintf((char *)f + keys[i].off, keys[i].len, "%s", value);
		if (!strcmp(name, "etcd"))
			f->on = true;
		return 0;
	}
	snprintf(msg, msglen,
		 "unknown key '%s' in section [fleet] (etcd, cluster, node, ca, cert, key, user,"
		 " password_file)",
		 name);
	return -EINVAL;
}

static int config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *ctx = user;
	struct edge_config *cfg = ctx->cfg;
	unsigned int *dur = NULL;
	long v;

#define IS(s, n) (!strcmp(section, s) && !strcmp(name, n))
	if (IS("daemon", "state_dir")) {
		if (!*value || strlen(value) >= sizeof(cfg->state_dir)) {
			snprintf(ctx->msg, sizeof(ctx->msg), "state_dir: empty or too long");
			return 0;
		}
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", value);
	} else if (IS("daemon", "listen")) {
		char e[256];

		if (edge_config_add_listen(cfg, value, e, sizeof(e))) {
			snprintf(ctx->msg, sizeof(ctx->msg), "listen: %s", e);
			return 0;
		}
	} else if (IS("daemon", "workers")) {
		if (parse_uint(value, 1, EDGE_MAX_WORKERS, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "workers: '%s' is not a number from 1 to %d", value,
				 EDGE_MAX_WORKERS);
			return 0;
		}
		cfg->workers = (int)v;
	} else if (IS("daemon", "log_level")) {
		if (edge_log_parse_level(value, &cfg->log_level)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "log_level: '%s' is not one of error, warn, info, debug", value);
			return 0;
		}
	} else if (IS("daemon", "log_format")) {
		if (edge_log_parse_format(value, &cfg->log_format)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "log_format: '%s' is not one of text, logfmt, json", value);
			return 0;
		}
	} else if (IS("metrics", "listen")) {
		char e[256];

		if (edge_config_set_metrics(cfg, value, e, sizeof(e))) {
			snprintf(ctx->msg, sizeof(ctx->msg), "listen: %s", e);
			return 0;
		}
	} else if (IS("metrics", "allow_remote")) {
		if (!strcmp(value, "yes") || !strcmp(value, "no")) {
			cfg->metrics_allow_remote = !strcmp(value, "yes");
		} else {
			snprintf(ctx->msg, sizeof(ctx->msg), "allow_remote: '%s' is not yes or no",
				 value);
			return 0;
		}
	} else if (IS("tls", "expiry_warn_days")) {
		if (parse_uint(value, 0, 3650, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "expiry_warn_days: '%s' is not a number from 0 to 3650", value);
			return 0;
		}
		cfg->expiry_warn_days = (unsigned int)v;
	} else if (IS("limits", "handshake_timeout")) {
		dur = &cfg->handshake_timeout_ms;
	} else if (IS("limits", "idle_timeout")) {
		dur = &cfg->idle_timeout_ms;
	} else if (IS("limits", "upstream_connect_timeout")) {
		dur = &cfg->upstream_connect_timeout_ms;
	} else if (IS("limits", "upstream_keepalive")) {
		if (parse_uint(value, 0, 10000, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "upstream_keepalive: '%s' is not a number from 0 to 10000", value);
			return 0;
		}
		cfg->upstream_keepalive = (unsigned int)v;
	} else if (IS("limits", "upstream_keepalive_timeout")) {
		dur = &cfg->upstream_keepalive_timeout_ms;
	} else if (IS("limits", "drain_timeout")) {
		dur = &cfg->drain_timeout_ms;
	} else if (IS("limits", "max_handshakes")) {
		if (parse_uint(value, 1, 1000000, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "max_handshakes: '%s' is not a number from 1 to 1000000", value);
			return 0;
		}
		cfg->max_handshakes = (unsigned int)v;
	} else if (IS("limits", "max_handshakes_per_source")) {
		if (parse_uint(value, 1, 1000000, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "max_handshakes_per_source: '%s' is not a number from 1 to 1000000",
				 value);
			return 0;
		}
		cfg->max_handshakes_per_source = (unsigned int)v;
	} else if (IS("tls", "verify_depth")) {
		if (parse_uint(value, 0, 10, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "verify_depth: '%s' is not a number from 0 to 10", value);
			return 0;
		}
		cfg->verify_depth = (int)v;
	} else if (IS("tls", "verify_cache")) {
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "verify_cache: '%s' is not one of on, off", value);
			return 0;
		}
		cfg->verify_cache = !strcmp(value, "on");
	} else if (IS("crl", "fetch")) {
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(ctx->msg, sizeof(ctx->msg), "fetch: '%s' is not one of on, off",
				 value);
			return 0;
		}
		cfg->crl_fetch = !strcmp(value, "on");
	} else if (IS("crl", "fetch_timeout_ms")) {
		if (parse_uint(value, 100, 120000, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "fetch_timeout_ms: '%s' is not a number from 100 to 120000",
				 value);
			return 0;
		}
		cfg->crl_fetch_timeout_ms = (unsigned int)v;
	} else if (IS("crl", "fetch_max_bytes")) {
		if (parse_uint(value, 1024, 256L << 20, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "fetch_max_bytes: '%s' is not a number from 1024 to 268435456",
				 value);
			return 0;
		}
		cfg->crl_fetch_max_bytes = (unsigned int)v;
	} else if (IS("crl", "refresh_max_s")) {
		if (parse_uint(value, 5, 86400, &v)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "refresh_max_s: '%s' is not a number from 5 to 86400", value);
			return 0;
		}
		cfg->crl_refresh_max_s = (unsigned int)v;
	} else if (IS("tls", "record_layer")) {
		if (strcmp(value, "edge") && strcmp(value, "openssl")) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "record_layer: '%s' is not one of edge, openssl", value);
			return 0;
		}
		cfg->own_records = !strcmp(value, "edge");
	} else if (IS("tls", "session_tickets")) {
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "session_tickets: '%s' is not one of on, off", value);
			return 0;
		}
		cfg->session_tickets = !strcmp(value, "on");
	} else if (IS("tls", "ktls")) {
		if (edge_ktls_mode_parse(value, &cfg->ktls)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "ktls: '%s' is not one of auto, on, off", value);
			return 0;
		}
	} else if (IS("bpf", "mode")) {
		if (edge_bpf_mode_parse(value, &cfg->bpf_mode)) {
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "mode: '%s' is not one of auto, on, off", value);
			return 0;
		}
	} else if (IS("bpf", "offender_ttl")) {
		dur = &cfg->offender_ttl_ms;
	} else if (IS("bpf", "pin_dir")) {
		if (!*value || strlen(value) >= sizeof(cfg->bpf_pin_dir)) {
			snprintf(ctx->msg, sizeof(ctx->msg), "pin_dir: empty or too long");
			return 0;
		}
		snprintf(cfg->bpf_pin_dir, sizeof(cfg->bpf_pin_dir), "%s", value);
	} else if (IS("bpf", "interfaces")) {
		char buf[512], *tok, *save = NULL;

		snprintf(buf, sizeof(buf), "%s", value);
		cfg->n_bpf_ifaces = 0;
		for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (cfg->n_bpf_ifaces == EDGE_MAX_BPF_IFACES || strlen(tok) >= 16) {
				snprintf(ctx->msg, sizeof(ctx->msg),
					 "interfaces: at most %d names of"
					 " at most 15 characters",
					 EDGE_MAX_BPF_IFACES);
				return 0;
			}
			snprintf(cfg->bpf_ifaces[cfg->n_bpf_ifaces++], 32, "%s", tok);
		}
	} else if (!strcmp(section, "fleet")) {
		if (fleet_key(&cfg->fleet, name, value, ctx->msg, sizeof(ctx->msg)))
			return 0;
	} else if (IS("tls", "default_sni")) {
		char e[128];

		if (edge_config_set_default_sni(cfg, value, e, sizeof(e))) {
			snprintf(ctx->msg, sizeof(ctx->msg), "default_sni: %s", e);
			return 0;
		}
	} else {
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown key '%s' in section [%s]", name,
			 section);
		return 0;
	}
#undef IS
	if (dur && edge_parse_duration_ms(value, dur)) {
		snprintf(ctx->msg, sizeof(ctx->msg),
			 "%s: '%s' is not a duration (like 500ms, 10s, 5m)", name, value);
		return 0;
	}
	return 1;
}

int edge_config_load(struct edge_config *cfg, const char *path, char *err, size_t errlen)
{
	struct ini_ctx ctx = { .cfg = cfg };
	FILE *f;
	int line;

	f = fopen(path, "r");
	if (!f) {
		int rc = -errno;

		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	line = ini_parse_file(f, config_ini_handler, &ctx);
	fclose(f);
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 ctx.msg[0] ? ctx.msg : "syntax error (want [section] or key = value)");
		return -EINVAL;
	}
	if (line < 0) {
		snprintf(err, errlen, "%s: cannot read", path);
		return -EIO;
	}
	return 0;
}

int edge_ktls_mode_parse(const char *s, enum edge_ktls_mode *out)
{
	if (!strcmp(s, "auto"))
		*out = EDGE_KTLS_AUTO;
	else if (!strcmp(s, "on"))
		*out = EDGE_KTLS_ON;
	else if (!strcmp(s, "off"))
		*out = EDGE_KTLS_OFF;
	else
		return -EINVAL;
	return 0;
}

_Static_assert((int)EDGE_BPF_AUTO == (int)EDGE_KTLS_AUTO && (int)EDGE_BPF_ON == (int)EDGE_KTLS_ON &&
		       (int)EDGE_BPF_OFF == (int)EDGE_KTLS_OFF,
	       "[bpf] mode and [tls] ktls share their words");

int edge_bpf_mode_parse(const char *s, enum edge_bpf_mode *out)
{
	return edge_ktls_mode_parse(s, (enum edge_ktls_mode *)out); /* same words, same order */
}

const char *edge_bpf_mode_name(enum edge_bpf_mode m)
{
	return edge_ktls_mode_name((enum edge_ktls_mode)m);
}

const char *edge_ktls_mode_name(enum edge_ktls_mode m)
{
	return m == EDGE_KTLS_ON ? "on" : m == EDGE_KTLS_OFF ? "off" : "auto";
}

int edge_config_validate(const struct edge_config *cfg, char *err, size_t errlen)
{
	if (cfg->n_listen == 0) {
		snprintf(err, errlen,
			 "no listen address (set [daemon] listen or pass --listen ADDR:PORT)");
		return -EINVAL;
	}
	if (cfg->metrics_on && !cfg->metrics_allow_remote &&
	    !addr_is_loopback(&cfg->metrics_listen)) {
		snprintf(err, errlen,
			 "[metrics] listen = %s is not a loopback address: the metrics"
			 " name hostnames and CAs; write allow_remote = yes in [metrics] to serve"
			 " them there",
			 cfg->metrics_listen.text);
		return -EINVAL;
	}
	if (cfg->handshake_timeout_ms == 0 || cfg->upstream_connect_timeout_ms == 0) {
		snprintf(err, errlen, "timeouts must be greater than zero");
		return -EINVAL;
	}
	return 0;
}
