/* The SNI object as mtls-edgectl's sni commands hold it (sni.c: the store and the commands;
 * sni_opts.c: the command line applied to it and the files checked). */
#ifndef EDGE_CTL_SNI_H
#define EDGE_CTL_SNI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alpn.h"
#include "ctl.h"

/* A server certificate chain file and its key file (real paths). */
struct sni_pair {
	char cert[PATH_MAX];
	char key[PATH_MAX];
};

struct sni {
	char host[EDGE_HOSTNAME_LEN];
	struct sni_pair pairs[EDGE_MAX_CERTS_PER_SNI]; /* [0]: sni's own; then sni_cert's */
	size_t npairs;
	char upstream[EDGE_HOSTNAME_LEN + 16];
	const char *mtls, *tls_min, *tls_max, *forward;
	const char *protocol;                                      /* "tcp" or "http" */
	const char *up_tls;                                        /* "off" or "on" */
	char up_ca[PATH_MAX], up_cert[PATH_MAX], up_key[PATH_MAX]; /* "" when unset */
	char up_sni[EDGE_HOSTNAME_LEN];
	const char *ca_hints;          /* "trusted", "none" or "list" */
	char *ca_hints_pem;            /* list: the CA certificates (malloc'd), else NULL */
	char alpn[EDGE_ALPN_WIRE_MAX]; /* "h2,http/1.1": server order; "" none */
	const char *no_alpn;           /* "allow" or "refuse" */
	int64_t created, updated;
};

/* The values each option takes, the default first. */
extern const char *const sni_mtls_modes[];
extern const char *const sni_tls_versions[];
extern const char *const sni_on_off[];
extern const char *const sni_forward_modes[];
extern const char *const sni_protocols[];
extern const char *const sni_hint_modes[];
extern const char *const sni_no_alpn_modes[];

/* v when it is one of set, else set's first (the default). */
const char *sni_choice(const char *v, const char *const *set);
/* The key type of the leaf in a chain file (edge_tlsctx_key_type()); NULL when the
 * file does not read or the key is of another type. */
const char *sni_file_key_type(const char *path);
/* Applies the command line to s; files says whether --cert/--key were given, types
 * then names their key types ("rsa, ecdsa"). */
int sni_apply_opts(struct ctl *c, struct sni *s, bool *files, char *types, size_t len);

#endif
