/*
 * mtls-edgectl: one command table, one argument parser (main.c), one file per
 * noun. Command functions and the ctl_* helpers return an exit code (enum
 * ctl_exit) and have already printed the error when it is not CTL_OK.
 */
#ifndef EDGE_CTL_H
#define EDGE_CTL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store.h"

#define CTL_PROG "mtls-edgectl"
#define CTL_VERSION "0.1.0"

enum ctl_exit {
	CTL_OK = 0,
	CTL_EIO = 1,      /* internal or I/O error */
	CTL_EUSAGE = 2,   /* bad command line */
	CTL_ENOENT = 3,   /* object not found */
	CTL_ELIMIT = 4,   /* limit reached */
	CTL_EINVAL = 5,   /* invalid input: bad PEM, not a CA, exists, not under a site... */
	CTL_EDAEMON = 6,  /* daemon unreachable (status, reload) */
	CTL_EREFUSED = 7, /* store changed, the running daemon refused the new state */
};

enum ctl_opt_flags {
	CTL_ARG = 1 << 0,   /* takes a value */
	CTL_MULTI = 1 << 1, /* may be given more than once */
};

struct ctl_opt {
	const char *name; /* long name without "--" */
	int flags;
	const char *metavar; /* "FILE" */
	const char *help;
};

struct ctl;

enum ctl_cmd_flags {
	CTL_STORE = 1 << 0, /* open the store before running */
};

struct ctl_cmd {
	const char *path; /* "ca hosts set" */
	const char *args; /* positional synopsis: "ID HOST..." */
	const char *summary;
	const struct ctl_opt *opts; /* NULL-name terminated, or NULL */
	int min_args, max_args;     /* positional arguments; max -1: any */
	int flags;
	int (*run)(struct ctl *c);
};

struct ctl_optval {
	int n;
	char **v;
};

struct ctl {
	const char *state;
	bool json;
	const struct ctl_cmd *cmd;
	char **args; /* positional arguments */
	int nargs;
	struct ctl_optval *vals; /* parallel to cmd->opts */
	struct edge_store *st;
	time_t now;
	bool published; /* the change went to a fleet's etcd (publish.c) */
	char err[1024];
};

/* jansson's foreach macros spelled out with functions (lint tools that do not
 * see jansson.h can still parse the loops). */
#define CTL_ARRAY_EACH(arr, i, v) \
	for ((i) = 0; (i) < json_array_size(arr) && ((v) = json_array_get((arr), (i))); (i)++)
#define CTL_OBJECT_EACH(obj, key, v)                                                            \
	for (void *it_ = json_object_iter(obj);                                                 \
	     it_ && ((key) = json_object_iter_key(it_)) && ((v) = json_object_iter_value(it_)); \
	     it_ = json_object_iter_next((obj), it_))

/* The command tables, one per noun file ({ NULL } terminated). */
extern const struct ctl_cmd ctl_site_cmds[];     /* site.c */
extern const struct ctl_cmd ctl_cert_cmds[];     /* cert.c */
extern const struct ctl_cmd ctl_ca_cmds[];       /* ca.c */
extern const struct ctl_cmd ctl_sni_cmds[];      /* sni.c */
extern const struct ctl_cmd ctl_rule_cmds[];     /* rule.c */
extern const struct ctl_cmd ctl_identity_cmds[]; /* identity.c */
/* Lines identity's --help prints: what allow and deny entries mean together. */
extern const char *const ctl_identity_notes[];
extern const struct ctl_cmd ctl_daemon_cmds[]; /* daemon.c */
extern const struct ctl_cmd ctl_flows_cmds[];  /* flows.c */
extern const struct ctl_cmd ctl_verify_cmds[]; /* verify.c */
extern const struct ctl_cmd ctl_fleet_cmds[];  /* fleet.c */

/* publish.c: in the open transaction of a write command, before its commit (write.c): a
 * control store's change goes to etcd (one guarded transaction); 0 for a store in no
 * fleet; an exit code (printed) when etcd did not take it: the command then rolls back. */
int ctl_fleet_publish(struct ctl *c);
/* The store's fleet settings (meta rows fleet_*: paths only, never a key or a password). */
struct ctl_fleet_cfg {
	char *role, *cluster, *endpoints, *ca, *cert, *key, *user, *password_file;
	char prefix[80]; /* EDGE_FLEET_PREFIX_MAX */
};
int ctl_fleet_cfg_read(struct ctl *c, struct ctl_fleet_cfg *f);
void ctl_fleet_cfg_free(struct ctl_fleet_cfg *f);
struct edge_etcd;
int ctl_fleet_etcd(struct ctl *c, const struct ctl_fleet_cfg *f, struct edge_etcd **e);

/* args.c: the running command's option values (filled by the parser in
 * main.c, which declares nothing here) and arguments. */
/* Index of the option named by name[0..len) in opts, or -1. */
int ctl_opt_index(const struct ctl_opt *opts, const char *name, size_t len);
const char *ctl_opt(struct ctl *c, const char *name);     /* last value; "" for a flag */
int ctl_opts(struct ctl *c, const char *name, char ***v); /* all values */
bool ctl_flag(struct ctl *c, const char *name);
/* Parses an integer option in [min, max]; absent: *out = def. */
int ctl_opt_int(struct ctl *c, const char *name, long min, long max, long def, long *out);
/* value must be one of the NULL-terminated choices; absent: def. */
int ctl_opt_choice(struct ctl *c, const char *name, const char *const *choices, const char *def,
		   const char **out);
/* A positive integer ID argument. */
int ctl_arg_id(const char *s, const char *what, int64_t *id);
/* Options shared by several commands. */
extern const struct ctl_opt ctl_pem_opts[];

/* output.c: printing only (errors, tables, "key: value" lines, JSON). */
int ctl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ctl_errno_exit(int rc); /* -ENOENT -> 3, -EINVAL... -> 5, others -> 1 */
const char *ctl_iso(int64_t t, char buf[32]);
/* Sets key (ISO-8601 UTC, or null when t is 0) and key_epoch. */
void ctl_json_time(json_t *o, const char *key, int64_t t);

struct ctl_col {
	const char *key;
	const char *header;
};

/* Prints v (and releases it): JSON as is with --json; otherwise an array as a
 * table with cols, an object as aligned "key: value" lines (keys ending in
 * _epoch and "pem" left out). */
int ctl_emit(struct ctl *c, json_t *v, const struct ctl_col *cols);
/* --json: v; otherwise the one-line message. Releases v. */
int ctl_emit_msg(struct ctl *c, json_t *v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with a va_list (for write.c). */
int ctl_emit_msgv(struct ctl *c, json_t *v, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* state.c: the store as the CLI uses it. */
int ctl_open_store(struct ctl *c, int flags);
/* The transaction of a write command: begun by the command, ended by write.c. */
int ctl_begin(struct ctl *c);
int ctl_commit(struct ctl *c); /* rolls back on failure */
void ctl_rollback(struct ctl *c);
/* Prepares sql and binds args by fmt: 's' text, 'i' int64, 'n' null. */
sqlite3_stmt *ctl_sql(struct ctl *c, const char *sql, const char *fmt, ...);
/* Runs a statement without results: 0, or an exit code (exists -> 5). */
int ctl_exec(struct ctl *c, const char *sql, const char *fmt, ...);
/* First column of the first row as an integer; -1 on error (printed). */
int64_t ctl_int(struct ctl *c, const char *sql, const char *fmt, ...);
/* Syntax of a hostname (exit 5 with the reason). */
int ctl_host_norm(const char *in, bool wildcard, char *out, size_t outlen);
/* The hostname must equal or fall under a site (in the open transaction). */
int ctl_host_covered(struct ctl *c, const char *host);
/* Normalises, folds duplicates and checks each against the sites: *out gets
 * a JSON array of the hostnames. At most max (exit 4 above). */
int ctl_host_list(struct ctl *c, char **in, int n, int max, json_t **out);

/* hints.c: the CA names a CertificateRequest carries (at most EDGE_CA_HINTS_MAX
 * bytes of DER names). */
/* In the open transaction, after a change to hosts' bindings (a JSON array of
 * hostnames): exit 5 when the CAs trusted for one of them, or for a bound
 * hostname under one of its wildcards, have names over the bound. */
int ctl_hints_check_trusted(struct ctl *c, json_t *hosts);
/* A --ca-hints FILE: CA certificates only (PEM), their names within the bound.
 * *pem: the certificates re-encoded (malloc'd); exit 5 with the reason. */
int ctl_hints_read_list(struct ctl *c, const char *opt, const char *file, char **pem);
/* The RFC 2253 subjects of the certificates in pem, as a JSON array. */
json_t *ctl_hints_names(const char *pem);

/* coalesce.c: in the open transaction, after a write: exit 5 when an SNI object of protocol
 * tcp with h2 in its ALPN has a certificate that covers another with another mTLS mode,
 * trust or identity rules, one of the two being host (the SNI object written; NULL: any, after
 * a change of bindings, identity rules or SNI objects). */
int ctl_coalesce_check(struct ctl *c, const char *host);

/* files.c: input files and the files the CLI creates. */
int ctl_read_input(const char *path, char **buf, size_t *len);
/* Creates a new file with exactly this mode (O_EXCL: exit 5 when it exists). */
int ctl_create(const char *path, mode_t mode, int *fd);
/* Writes, syncs and closes fd; unlinks path on failure. */
int ctl_write_close(int fd, const char *path, const void *buf, size_t len);

/* daemon.c: talking to mtls-edged. */
/* After a committed write, ask mtls-edged to reload: 0 or 7 (a daemon that is
 * not running is not an error). Called by write.c only. */
int ctl_reload(struct ctl *c);

/* write.c: the end of every write command, called in the open transaction. */
/* rc != 0 rolls back and returns rc (v is released); otherwise commit, print v
 * or the message (ctl_emit_msg), reload the daemon. */
int ctl_finish(struct ctl *c, int rc, json_t *v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same for a command whose output is more than a message: after the
 * commit, done(c, arg) prints (and does what must follow the commit); the
 * daemon reloads when it returns 0. */
int ctl_finish_with(struct ctl *c, int rc, int (*done)(struct ctl *c, void *arg), void *arg);

#endif
