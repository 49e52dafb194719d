/* mtls-edged configuration: one INI file, overridable from the command line. */
#ifndef EDGE_CONFIG_H
#define EDGE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "log.h"

#define EDGE_MAX_LISTEN 16
#define EDGE_MAX_WORKERS 64
#define EDGE_DEFAULT_STATE_DIR "/var/lib/mtls-edge"

struct edge_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80]; /* as written by the user, normalised: "1.2.3.4:443", "[::1]:443" */
};

enum edge_ktls_mode {
	EDGE_KTLS_AUTO = 0, /* use kTLS where the kernel has it */
	EDGE_KTLS_ON,       /* refuse to start without kTLS */
	EDGE_KTLS_OFF,      /* always the userspace relay */
};

enum edge_bpf_mode {
	EDGE_BPF_AUTO = 0, /* enforce in the kernel where eBPF loads; warn once otherwise */
	EDGE_BPF_ON,       /* refuse to start without it */
	EDGE_BPF_OFF,
};

#define EDGE_MAX_BPF_IFACES 16
#define EDGE_LISTEN_MTLS_SNI (-1) /* a listener that follows each SNI object's mTLS mode */

struct edge_config {
	char state_dir[PATH_MAX];
	struct edge_addr listen[EDGE_MAX_LISTEN];
	int listen_mtls[EDGE_MAX_LISTEN]; /* EDGE_LISTEN_MTLS_SNI, or an enum edge_mtls_mode that
					     replaces every SNI object's on that listener */
	int n_listen;
	int workers;
	enum edge_log_level log_level;
	enum edge_log_format log_format;
	unsigned int handshake_timeout_ms;
	unsigned int max_handshakes;
	unsigned int max_handshakes_per_source;
	unsigned int idle_timeout_ms;
	unsigned int upstream_connect_timeout_ms;
	unsigned int upstream_keepalive; /* idle upstream connections kept per worker */
	unsigned int upstream_keepalive_timeout_ms;
	unsigned int drain_timeout_ms;
	unsigned int reload_poll_ms;
	int verify_depth;
	bool session_tickets; /* [tls] session_tickets: TLS 1.3 resumption, re-verified */
	bool verify_cache;    /* [tls] verify_cache: verified chains remembered per snapshot */
	bool own_records;     /* [tls] record_layer = edge: TLS 1.3 records after the handshake
				 are ours (xprt_rec.c), not OpenSSL's */
	/* [crl]: CRLs the daemon fetches from the distribution points of client chains */
	bool crl_fetch;
	unsigned int crl_fetch_timeout_ms;
	unsigned int crl_fetch_max_bytes;
	unsigned int crl_refresh_max_s; /* refreshed at least this often, and before nextUpdate */
	enum edge_ktls_mode ktls;
	char default_sni[256];
	enum edge_bpf_mode bpf_mode;
	unsigned int offender_ttl_ms;
	char bpf_pin_dir[PATH_MAX];
	char bpf_ifaces[EDGE_MAX_BPF_IFACES][32]; /* empty: chosen from the listen addresses */
	int n_bpf_ifaces;
	unsigned int expiry_warn_days; /* [tls]: warn about certificates and CRLs this close */
	bool metrics_on;               /* [metrics] listen is set */
	struct edge_addr metrics_listen;
	bool metrics_allow_remote; /* a non-loopback metrics address, written on purpose */
	/* [fleet]: this edge keeps its store as a replica of a cluster in etcd (fleet.h) */
	struct edge_fleet_config {
		bool on;           /* etcd is set */
		char etcd[1024];   /* client URLs, ',' between */
		char cluster[64];  /* the keys' prefix: /mtls-edge/CLUSTER/ */
		char node[64];     /* this edge's name: status/NODE (default: hostname) */
		char ca[PATH_MAX]; /* etcd's CA; cert and key: this edge's client pair */
		char cert[PATH_MAX];
		char key[PATH_MAX];
		char user[64]; /* etcd user (auth on), with password_file */
		char password_file[PATH_MAX];
	} fleet;
};

void edge_config_defaults(struct edge_config *cfg);
/* Reads an INI file over the current values. Errors: "FILE:LINE: message". */
int edge_config_load(struct edge_config *cfg, const char *path, char *err, size_t errlen);
/* "ADDR:PORT", "[V6]:PORT", "*:PORT" or ":PORT" (any address). Port 0 is allowed. */
int edge_addr_parse(const char *text, struct edge_addr *out, char *err, size_t errlen);
/* Formats an address as "1.2.3.4:443" or "[::1]:443". */
void edge_addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* [tls] default_sni (and --default-sni): the SNI object's hostname for clients sending none. */
int edge_config_set_default_sni(struct edge_config *cfg, const char *host, char *err,
				size_t errlen);
/* [metrics] listen: off (empty or "off") or ADDR:PORT. */
int edge_config_set_metrics(struct edge_config *cfg, const char *text, char *err, size_t errlen);
int edge_config_add_listen(struct edge_config *cfg, const char *text, char *err, size_t errlen);
/* "250ms", "10s", "5m", "1h", plain number = seconds. */
int edge_parse_duration_ms(const char *s, unsigned int *out_ms);
int edge_ktls_mode_parse(const char *s, enum edge_ktls_mode *out);
int edge_bpf_mode_parse(const char *s, enum edge_bpf_mode *out);
const char *edge_bpf_mode_name(enum edge_bpf_mode m);
const char *edge_ktls_mode_name(enum edge_ktls_mode m);
/* Checks cross-field rules (at least one listener, ...). */
int edge_config_validate(const struct edge_config *cfg, char *err, size_t errlen);

#endif
