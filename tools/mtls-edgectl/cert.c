/* cert create|list|get|revoke: client certificates issued by the built-in CA.
 * Private keys are written once (file 0600 or stdout) and never stored. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "pki.h"

#define CERT_COLUMNS                                                       \
	"serial, cn, sans, key_type, fingerprint, not_before, not_after, " \
	"status, revoked_at, created_at, cert_pem"

static const struct ctl_col cert_cols[] = {
	{ "serial", "SERIAL" },       { "cn", "CN" },        { "key_type", "KEY" },
	{ "not_after", "NOT_AFTER" }, { "state", "STATUS" }, { NULL, NULL },
};

/* A row of CERT_COLUMNS as JSON. */
static json_t *cert_json(struct ctl *c, sqlite3_stmt *st)
{
	int64_t na = sqlite3_column_int64(st, 6);
	const char *status = (const char *)sqlite3_column_text(st, 7);
	bool revoked = !strcmp(status, "revoked"), expired = na < (int64_t)c->now;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "serial", sqlite3_column_text(st, 0),
			      "cn", sqlite3_column_text(st, 1), "sans", sqlite3_column_text(st, 2),
			      "key_type", sqlite3_column_text(st, 3), "fingerprint",
			      sqlite3_column_text(st, 4));

	ctl_json_time(o, "not_before", sqlite3_column_int64(st, 5));
	ctl_json_time(o, "not_after", na);
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "expired", json_boolean(expired));
	json_object_set_new(o, "state",
			    json_string(revoked   ? "revoked"
					: expired ? "expired"
						  : "active"));
	ctl_json_time(o, "revoked_at", sqlite3_column_int64(st, 8));
	ctl_json_time(o, "created", sqlite3_column_int64(st, 9));
	json_object_set_new(o, "pem", json_string((const char *)sqlite3_column_text(st, 10)));
	return o;
}

/* "4a:0b..." or "4A0B..." -> "4A0B..." */
static int serial_arg(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in && n + 1 < outlen; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in))
			return ctl_error(CTL_EUSAGE, "'%s' is not a serial number (hex digits)",
					 in);
		out[n++] = (char)toupper((unsigned char)*in);
	}
	out[n] = '\0';
	if (!n || *in)
		return ctl_error(CTL_EUSAGE, "a serial number has 1 to 40 hex digits");
	return CTL_OK;
}

/* The built-in CA: certificate from the store, key from STATE/ca/builtin.key. */
static int load_ca(struct ctl *c, X509 **ca, EVP_PKEY **key)
{
	sqlite3_stmt *st = ctl_sql(c, "SELECT cert_pem FROM builtin_ca WHERE id = 1", NULL);
	char path[4096], *pem = NULL;
	size_t len = 0;
	int rc;

	if (!st)
		return CTL_EIO;
	rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -ENOENT;
	if (!rc)
		rc = edge_pki_cert_parse((const char *)sqlite3_column_text(st, 0),
					 (size_t)sqlite3_column_bytes(st, 0), ca, c->err,
					 sizeof(c->err));
	sqlite3_finalize(st);
	if (rc == -ENOENT)
		return ctl_error(CTL_ENOENT, "%s has no built-in CA (run 'init')", c->state);
	if (rc)
		return ctl_error(CTL_EIO, "the built-in CA in the store is unreadable: %s", c->err);
	snprintf(path, sizeof(path), "%s/" EDGE_STORE_CA_KEY, c->state);
	rc = ctl_read_input(path, &pem, &len);
	if (!rc && edge_pki_key_parse(pem, len, key, c->err, sizeof(c->err)))
		rc = ctl_error(CTL_EIO, "%s: %s", path, c->err);
	if (pem)
		OPENSSL_clear_free(pem, len);
	if (!rc && X509_check_private_key(*ca, *key) != 1)
		rc = ctl_error(CTL_EIO, "%s does not match the built-in CA certificate", path);
	if (rc == CTL_EINVAL)
		rc = CTL_EIO;
	return rc;
}

/* The password file: a regular file, a pipe (<(echo pw), /dev/stdin) or a
 * character device; at most EDGE_P12_PASS_MAX bytes, one trailing newline
 * stripped. The password is never echoed and never stored. */
#define EDGE_P12_PASS_MAX 1024

static int read_pass_file(const char *file, char *pw, size_t len)
{
	char buf[EDGE_P12_PASS_MAX + 1];
	size_t off = 0;
	struct stat sb;
	int fd, rc = CTL_OK;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ctl_error(CTL_EINVAL, "%s: cannot read: %s", file, strerror(errno));
	if (fstat(fd, &sb) || !(S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)))
		rc = ctl_error(CTL_EINVAL, "%s: not a regular file, a pipe or a character device",
			       file);
	while (!rc && off < sizeof(buf)) {
		ssize_t n = read(fd, buf + off, sizeof(buf) - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = ctl_error(CTL_EIO, "%s: read failed: %s", file, strerror(errno));
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (!rc && off > EDGE_P12_PASS_MAX)
		rc = ctl_error(CTL_EINVAL, "%s: password too long (more than %d bytes)", file,
			       EDGE_P12_PASS_MAX);
	if (!rc && off && buf[off - 1] == '\n')
		off -= off > 1 && buf[off - 2] == '\r' ? 2 : 1;
	if (!rc && !off)
		rc = ctl_error(CTL_EINVAL, "%s: empty password", file);
	if (!rc && (memchr(buf, '\n', off) || memchr(buf, '\r', off) || memchr(buf, '\0', off)))
		rc = ctl_error(CTL_EINVAL,
			       "%s: the password has a line break or a NUL byte (one line, "
			       "at most one newline at its end)",
			       file);
	if (!rc && off >= len)
		rc = ctl_error(CTL_EINVAL, "%s: password too long", file);
	if (!rc) {
		memcpy(pw, buf, off);
		pw[off] = '\0';
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int p12_password(struct ctl *c, char *pw, size_t len)
{
	const char *file = ctl_opt(c, "p12-pass-file");

	if (file)
		return read_pass_file(file, pw, len);
	if (!isatty(STDIN_FILENO))
		return ctl_error(CTL_EUSAGE,
				 "--p12 needs --p12-pass-file when stdin is not a terminal");
	if (EVP_read_pw_string(pw, (int)len, "PKCS#12 export password: ", 1))
		return ctl_error(CTL_EUSAGE, "no password entered");
	return *pw ? CTL_OK : ctl_error(CTL_EUSAGE, "empty password");
}

/* Default: OpenSSL 3's AES-256-CBC with PBKDF2 and an HMAC-SHA-256 MAC. legacy:
 * pbeWithSHA1And3-KeyTripleDES-CBC for the key and the certificates and an
 * HMAC-SHA-1 MAC, for key stores that cannot read the former (older macOS and
 * Android, Java 8 before 8u301). 3DES is in OpenSSL 3's default provider (only
 * RC2, which is not used here, needs the legacy one). */
static int p12_bytes(const char *pw, const char *cn, EVP_PKEY *key, X509 *x, X509 *ca, bool legacy,
		     unsigned char **der, int *len)
{
	int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : 0;
	STACK_OF(X509) *cas = sk_X509_new_null();
	PKCS12 *p12 = NULL;
	char why[256] = "unknown error";
	unsigned long e;

	*der = NULL;
	if (cas && sk_X509_push(cas, ca))
		p12 = PKCS12_create(pw, cn, key, x, cas, nid, nid, 0, legacy ? -1 : 0, 0);
	sk_X509_free(cas);
	if (p12 && legacy &&
	    !PKCS12_set_mac(p12, pw, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha1())) {
		PKCS12_free(p12);
		p12 = NULL;
	}
	*len = p12 ? i2d_PKCS12(p12, der) : -1;
	PKCS12_free(p12);
	if (*len > 0)
		return CTL_OK;
	e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	return ctl_error(CTL_EIO, "cannot build the PKCS#12 file%s: %s",
			 legacy ? " (3DES, SHA-1 MAC)" : "", why);
}

static int check_names(struct ctl *c, struct edge_pki_client *req)
{
	char host[EDGE_HOSTNAME_LEN];
	int rc = CTL_OK;

	if (!*req->cn || strlen(req->cn) > EDGE_PKI_CN_MAX)
		return ctl_error(CTL_EINVAL, "the common name must have 1 to %d characters",
				 EDGE_PKI_CN_MAX);
	for (const char *p = req->cn; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ctl_error(CTL_EINVAL, "the common name has control characters");
	for (size_t i = 0; !rc && i < req->ndns; i++)
		rc = ctl_host_norm(req->dns[i], true, host, sizeof(host));
	for (size_t i = 0; !rc && i < req->nuri; i++) {
		const char *u = req->uri[i], *colon = strchr(u, ':');
		bool ok = colon && colon > u && isalpha((unsigned char)u[0]) && colon[1];

		for (const char *q = u; ok && q < colon; q++)
			ok = isalnum((unsigned char)*q) || strchr("+-.", *q);
		for (const char *q = u; ok && *q; q++)
			ok = (unsigned char)*q > 0x20 && *q != 0x7f;
		if (!ok)
			rc = ctl_error(CTL_EINVAL,
				       "--uri '%s' is not a URI (scheme:rest, e.g. "
				       "spiffe://example.org/client)",
				       u);
	}
	for (size_t i = 0; !rc && i < req->nemail; i++) {
		const char *e = req->email[i], *at = strchr(e, '@');

		if (!at || at == e || !at[1] || strchr(at + 1, '@') || strpbrk(e, " \t\r\n,"))
			rc = ctl_error(CTL_EINVAL, "--email '%s' is not an e-mail address", e);
	}
	(void)c;
	return rc;
}

static void sans_text(const struct edge_pki_client *req, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (int t = 0; t < 3; t++) {
		char **v = t == 0 ? req->dns : t == 1 ? req->uri : req->email;
		size_t n = t == 0 ? req->ndns : t == 1 ? req->nuri : req->nemail;

		for (size_t i = 0; i < n && off < len; i++)
			off += (size_t)snprintf(out + off, len - off, "%s%s:%s", off ? ", " : "",
						t == 0   ? "DNS"
						: t == 1 ? "URI"
							 : "email",
						v[i]);
	}
}

struct outfile {
	char path[4096];
	int fd;
	bool want;
};

/* What cert create delivers once the certificate is recorded: its files, then
 * the report (or the PEM on stdout). */
struct issued {
	struct outfile *f; /* .crt, .key, .p12 */
	const char *prefix, *p12, *serial, *cn, *key_type, *sans, *pem, *kpem;
	const unsigned char *p12der;
	size_t klen;
	int p12len;
	int64_t nb, na;
	bool csr, to_stdout;
};

static int issued_done(struct ctl *c, void *arg)
{
	const struct issued *d = arg;
	struct outfile *f = d->f;
	json_t *out;
	int rc = 0;

	for (int i = 0; i < 3; i++) {
		const void *data = i == 0   ? (const void *)d->pem
				   : i == 1 ? (const void *)d->kpem
					    : (const void *)d->p12der;
		size_t dlen = i == 0 ? strlen(d->pem) : i == 1 ? d->klen : (size_t)d->p12len;

		if (f[i].want && !rc)
			rc = ctl_write_close(f[i].fd, f[i].path, data, dlen);
		else if (f[i].want)
			close(f[i].fd);
		f[i].want = false;
	}
	if (rc) {
		ctl_warn("certificate %s is recorded in the store; revoke it if its files are lost",
			 d->serial);
		return rc;
	}
	out = json_pack("{s:s, s:s, s:s, s:s}", "serial", d->serial, "cn", d->cn, "key_type",
			d->key_type, "sans", d->sans);
	ctl_json_time(out, "not_before", d->nb);
	ctl_json_time(out, "not_after", d->na);
	if (d->prefix) {
		json_object_set_new(out, "certificate", json_string(f[0].path));
		json_object_set_new(out, "key", d->csr ? json_null() : json_string(f[1].path));
	}
	if (d->p12)
		json_object_set_new(out, "p12", json_string(d->p12));
	if (d->to_stdout && c->json) {
		json_object_set_new(out, "certificate_pem", json_string(d->pem));
		json_object_set_new(out, "key_pem", d->kpem ? json_string(d->kpem) : json_null());
	}
	if (d->to_stdout && !c->json) {
		fputs(d->pem, stdout);
		if (d->kpem)
			fputs(d->kpem, stdout);
		fprintf(stderr, "serial: %s  cn: %s  not_after: %s\n", d->serial, d->cn,
			ctl_iso(d->na, (char[32]){ 0 }));
		json_decref(out);
		return CTL_OK;
	}
	return ctl_emit(c, out, NULL);
}

static int cmd_cert_create(struct ctl *c)
{
	const char *csr_file = ctl_opt(c, "csr"), *prefix = ctl_opt(c, "out");
	const char *kt_name = ctl_opt(c, "key-type"), *p12 = ctl_opt(c, "p12");
	bool to_stdout = ctl_flag(c, "stdout");
	struct edge_pki_client req = { .cn = ctl_opt(c, "cn"), .now = c->now };
	struct outfile f[3] = { 0 }; /* .crt, .key, .p12 */
	enum edge_key_type kt = EDGE_KEY_EC_P256;
	char csr_cn[EDGE_PKI_CN_MAX * 4 + 1], serial[EDGE_PKI_SERIAL_LEN], fp[EDGE_PKI_FP_LEN];
	char key_type[32], sans[2048], pw[EDGE_P12_PASS_MAX + 1] = "", *buf = NULL, *pem = NULL,
							      *kpem = NULL;
	unsigned char *p12der = NULL;
	size_t len, klen = 0;
	int p12len = 0, rc, n;
	X509_REQ *csr = NULL;
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	int64_t nb, na;
	long days;

	if (!prefix == !to_stdout)
		return ctl_error(CTL_EUSAGE, "give exactly one of --out PREFIX and --stdout");
	if (csr_file && (kt_name || p12))
		return ctl_error(CTL_EUSAGE,
				 "--%s does not apply with --csr (the key stays with "
				 "the requester)",
				 kt_name ? "key-type" : "p12");
	if (ctl_opt(c, "p12-pass-file") && !p12)
		return ctl_error(CTL_EUSAGE, "--p12-pass-file needs --p12 FILE");
	if (ctl_flag(c, "p12-legacy") && !p12)
		return ctl_error(CTL_EUSAGE, "--p12-legacy needs --p12 FILE");
	if (!csr_file && !req.cn)
		return ctl_error(CTL_EUSAGE, "cert create needs --cn NAME (or --csr FILE)");
	if (kt_name && edge_pki_key_type_parse(kt_name, &kt))
		return ctl_error(CTL_EUSAGE,
				 "--key-type: '%s' is not one of "
				 "ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096",
				 kt_name);
	if ((rc = ctl_opt_int(c, "days", 1, EDGE_PKI_CA_DAYS, 365, &days)))
		return rc;
	req.days = (int)days;
	n = ctl_opts(c, "dns", &req.dns);
	req.ndns = (size_t)n;
	n = ctl_opts(c, "uri", &req.uri);
	req.nuri = (size_t)n;
	n = ctl_opts(c, "email", &req.email);
	req.nemail = (size_t)n;

	if (csr_file) {
		if ((rc = ctl_read_input(csr_file, &buf, &len)))
			goto out;
		if (edge_pki_csr_parse(buf, len, &csr, c->err, sizeof(c->err)) ||
		    edge_pki_key_describe(X509_REQ_get0_pubkey(csr), key_type, sizeof(key_type),
					  c->err, sizeof(c->err))) {
			rc = ctl_error(CTL_EINVAL, "%s: %s", csr_file, c->err);
			goto out;
		}
		if (!req.cn) {
			if (edge_pki_cn(X509_REQ_get_subject_name(csr), csr_cn, sizeof(csr_cn))) {
				rc = ctl_error(CTL_EINVAL,
					       "%s: the request has no common name; "
					       "give one with --cn",
					       csr_file);
				goto out;
			}
			req.cn = csr_cn;
		}
	}
	if ((rc = check_names(c, &req)))
		goto out;
	if (p12 && (rc = p12_password(c, pw, sizeof(pw))))
		goto out;
	if ((rc = load_ca(c, &ca, &cakey)))
		goto out;
	if (!csr && edge_pki_keygen(kt, &key, c->err, sizeof(c->err))) {
		rc = ctl_error(CTL_EIO, "%s", c->err);
		goto out;
	}
	if (!csr)
		snprintf(key_type, sizeof(key_type), "%s", edge_pki_key_type_name(kt));
	if (edge_pki_issue_client(ca, cakey, csr ? X509_REQ_get0_pubkey(csr) : key, &req, &x,
				  c->err, sizeof(c->err)) ||
	    edge_pki_cert_pem(x, &pem) || (key && edge_pki_key_pem(key, &kpem, &klen))) {
		rc = ctl_error(CTL_EIO, "%s", c->err);
		goto out;
	}
	if (p12 &&
	    (rc = p12_bytes(pw, req.cn, key, x, ca, ctl_flag(c, "p12-legacy"), &p12der, &p12len)))
		goto out;
	edge_pki_serial(x, serial, sizeof(serial));
	edge_pki_fingerprint(x, fp);
	edge_pki_validity(x, &nb, &na);
	sans_text(&req, sans, sizeof(sans));

	/* Reserve the output files (never overwrite), then record, then write. */
	if (prefix) {
		snprintf(f[0].path, sizeof(f[0].path), "%s.crt", prefix);
		snprintf(f[1].path, sizeof(f[1].path), "%s.key", prefix);
		f[0].want = true;
		f[1].want = !csr;
	}
	snprintf(f[2].path, sizeof(f[2].path), "%s", p12 ? p12 : "");
	f[2].want = p12 != NULL;
	for (int i = 0; i < 3; i++) { /* .want from here on: created by us */
		if (f[i].want && !rc)
			rc = ctl_create(f[i].path, i ? 0600 : 0644, &f[i].fd);
		else
			f[i].want = false;
		f[i].want &= !rc;
	}
	if (rc || (rc = ctl_begin(c)))
		goto out;
	rc = ctl_exec(c,
		      "INSERT INTO client_cert(serial, cn, sans, key_type, fingerprint, "
		      "not_before, not_after, status, cert_pem, created_at) VALUES "
		      "(?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
		      "sssssiisi", serial, req.cn, sans, key_type, fp, nb, na, pem,
		      (int64_t)c->now);
	rc = ctl_finish_with(c, rc, issued_done,
			     &(struct issued){
				     .f = f,
				     .prefix = prefix,
				     .p12 = p12,
				     .serial = serial,
				     .cn = req.cn,
				     .key_type = key_type,
				     .sans = sans,
				     .pem = pem,
				     .kpem = kpem,
				     .p12der = p12der,
				     .klen = klen,
				     .p12len = p12len,
				     .nb = nb,
				     .na = na,
				     .csr = csr != NULL,
				     .to_stdout = to_stdout,
			     });
out:
	for (int i = 0; i < 3; i++) {
		if (f[i].want) {
			close(f[i].fd);
			unlink(f[i].path);
		}
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	if (kpem)
		OPENSSL_clear_free(kpem, klen);
	if (p12der)
		OPENSSL_clear_free(p12der, (size_t)p12len);
	free(pem);
	free(buf);
	X509_free(x);
	X509_free(ca);
	X509_REQ_free(csr);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}

/* --expiring: "30d", "12h", "2w" (a bare number is days), at most 100000 days. */
static int parse_window(const char *s, int64_t *out)
{
	const char *p = s;
	long long v = 0, unit;

	if (!*s)
		return ctl_error(CTL_EUSAGE,
				 "--expiring: empty (want a duration like 30d, 12h or 2w)");
	if (!isdigit((unsigned char)*p))
		return ctl_error(CTL_EUSAGE,
				 "--expiring: '%s' is not a duration like 30d, 12h or 2w"
				 " (it must start with a number)",
				 s);
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p++ - '0');
		if (v > 100000LL * 24)
			return ctl_error(CTL_EUSAGE,
					 "--expiring: '%s' is too long (at most 100000d)", s);
	}
	if (!*p || !strcmp(p, "d"))
		unit = 86400;
	else if (!strcmp(p, "h"))
		unit = 3600;
	else if (!strcmp(p, "w"))
		unit = 7 * 86400;
	else
		return ctl_error(CTL_EUSAGE,
				 "--expiring: '%s' is not a duration like 30d, 12h or 2w"
				 " (unknown unit '%s'; want d, h or w)",
				 s, p);
	if (v * unit > 100000LL * 86400)
		return ctl_error(CTL_EUSAGE, "--expiring: '%s' is too long (at most 100000d)", s);
	*out = (int64_t)(v * unit);
	return CTL_OK;
}

static int cmd_cert_list(struct ctl *c)
{
	const char *exp = ctl_opt(c, "expiring"), *status;
	static const char *const statuses[] = { "active", "revoked", NULL };
	int64_t horizon = INT64_MAX;
	sqlite3_stmt *st;
	json_t *arr;
	int rc;

	if ((rc = ctl_opt_choice(c, "status", statuses, NULL, &status)))
		return rc;
	if (exp) {
		int64_t window = 0;

		if ((rc = parse_window(exp, &window)))
			return rc;
		horizon = (int64_t)c->now + window;
		status = "active";
	}
	st = ctl_sql(c,
		     "SELECT " CERT_COLUMNS " FROM client_cert WHERE (?1 IS NULL OR "
		     "status = ?1) AND (?2 IS NULL OR not_after <= ?2) "
		     "ORDER BY created_at, rowid",
		     status ? "s" : "n", status);
	if (!st)
		return CTL_EIO;
	if (exp)
		sqlite3_bind_int64(st, 2, horizon);
	arr = json_array();
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(arr, cert_json(c, st));
	sqlite3_finalize(st);
	if (c->json) { /* the list leaves the PEMs out; 'cert get' has them */
		size_t i;
		json_t *o;

		CTL_ARRAY_EACH(arr, i, o)
			json_object_del(o, "pem");
	}
	return ctl_emit(c, arr, cert_cols);
}

/* Looks the serial up: *o gets the row as JSON. */
static int find_cert(struct ctl *c, const char *arg, char *serial, size_t len, json_t **o)
{
	sqlite3_stmt *st;
	int rc = serial_arg(arg, serial, len);

	*o = NULL;
	if (rc)
		return rc;
	st = ctl_sql(c, "SELECT " CERT_COLUMNS " FROM client_cert WHERE serial = ?", "s", serial);
	if (!st)
		return CTL_EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		*o = cert_json(c, st);
	sqlite3_finalize(st);
	return *o ? CTL_OK : ctl_error(CTL_ENOENT, "no certificate with serial %s", serial);
}

static int cmd_cert_get(struct ctl *c)
{
	char serial[EDGE_PKI_SERIAL_LEN];
	json_t *o;
	int rc = find_cert(c, c->args[0], serial, sizeof(serial), &o);

	if (rc)
		return rc;
	if (ctl_flag(c, "pem") && !c->json) {
		fputs(json_string_value(json_object_get(o, "pem")), stdout);
		json_decref(o);
		return CTL_OK;
	}
	return ctl_emit(c, o, NULL);
}

static int confirm(const char *what)
{
	char line[16];

	if (!isatty(STDIN_FILENO))
		return ctl_error(CTL_EUSAGE, "not revoking without confirmation: stdin is not a "
					     "terminal; pass --yes");
	fprintf(stderr, "Revoke %s? This cannot be undone. Type yes to confirm: ", what);
	if (!fgets(line, sizeof(line), stdin) || strcmp(line, "yes\n"))
		return ctl_error(CTL_EUSAGE, "not confirmed; nothing changed");
	return CTL_OK;
}

static int cmd_cert_revoke(struct ctl *c)
{
	char serial[EDGE_PKI_SERIAL_LEN], what[256];
	json_t *o, *out = NULL;
	int rc = find_cert(c, c->args[0], serial, sizeof(serial), &o);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "certificate %s (CN %s)", serial,
		 json_string_value(json_object_get(o, "cn")));
	if (!strcmp(json_string_value(json_object_get(o, "status")), "revoked"))
		rc = ctl_error(CTL_EINVAL, "%s is already revoked (at %s)", what,
			       json_string_value(json_object_get(o, "revoked_at")));
	json_decref(o);
	if (rc || (!ctl_flag(c, "yes") && (rc = confirm(what))) || (rc = ctl_begin(c)))
		return rc;
	rc = ctl_exec(c,
		      "UPDATE client_cert SET status = 'revoked', revoked_at = ? WHERE "
		      "serial = ? AND status = 'active'",
		      "is", (int64_t)c->now, serial);
	if (!rc && sqlite3_changes(edge_store_db(c->st)) != 1)
		rc = ctl_error(CTL_EINVAL, "%s was revoked meanwhile", what);
	if (!rc) {
		out = json_pack("{s:s, s:s}", "serial", serial, "status", "revoked");
		ctl_json_time(out, "revoked_at", (int64_t)c->now);
	}
	return ctl_finish(c, rc, out, "revoked %s", what);
}

static const struct ctl_opt create_opts[] = {
	{ "cn", CTL_ARG, "NAME", "subject common name (default with --csr: the request's)" },
	{ "key-type", CTL_ARG, "TYPE",
	  "ec-p256 (default), ec-p384, rsa-2048, rsa-3072, "
	  "rsa-4096" },
	{ "days", CTL_ARG, "N", "validity in days, 1 to 3650 (default 365)" },
	{ "csr", CTL_ARG, "FILE", "issue for this PEM request (its signature is checked)" },
	{ "dns", CTL_ARG | CTL_MULTI, "NAME", "subjectAltName DNS name" },
	{ "uri", CTL_ARG | CTL_MULTI, "URI", "subjectAltName URI (SPIFFE ID...)" },
	{ "email", CTL_ARG | CTL_MULTI, "ADDR", "subjectAltName e-mail address" },
	{ "out", CTL_ARG, "PREFIX", "write PREFIX.crt (0644) and PREFIX.key (0600)" },
	{ "stdout", 0, NULL, "print the certificate and key instead (shown once)" },
	{ "p12", CTL_ARG, "FILE",
	  "also write a PKCS#12 bundle (0600) for browsers\n(AES-256-CBC, PBKDF2, SHA-256 MAC)" },
	{ "p12-pass-file", CTL_ARG, "FILE",
	  "its password: a file, a pipe or /dev/stdin (one line,\nat most 1 KiB); default: "
	  "prompt on the terminal" },
	{ "p12-legacy", 0, NULL,
	  "the bundle in 3DES with a SHA-1 MAC, for key stores that\ncannot read AES-256 "
	  "PKCS#12: older macOS and Android,\nJava 8 before 8u301" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt list_opts[] = {
	{ "expiring", CTL_ARG, "DURATION",
	  "only active ones expiring within 30d, 12h, 2w... (and"
	  " those already expired)" },
	{ "status", CTL_ARG, "STATUS", "active or revoked" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_opt revoke_opts[] = {
	{ "yes", 0, NULL, "do not ask for confirmation" },
	{ NULL, 0, NULL, NULL },
};

const struct ctl_cmd ctl_cert_cmds[] = {
	{ "cert create", "--cn NAME --out PREFIX|--stdout [--p12 FILE [--p12-pass-file FILE]]",
	  "issue a client certificate from "
	  "the built-in CA",
	  create_opts, 0, 0, CTL_STORE, cmd_cert_create },
	{ "cert list", "", "list issued client certificates", list_opts, 0, 0, CTL_STORE,
	  cmd_cert_list },
	{ "cert get", "SERIAL", "show one client certificate", ctl_pem_opts, 1, 1, CTL_STORE,
	  cmd_cert_get },
	{ "cert revoke", "SERIAL", "revoke a client certificate (live connections close)",
	  revoke_opts, 1, 1, CTL_STORE, cmd_cert_revoke },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL },
};
