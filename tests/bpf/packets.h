/*
 * Crafted TLS ClientHellos and the Ethernet + IPv4/IPv6 + TCP packets around
 * them, shared by the BPF_PROG_TEST_RUN tests (test_edge_bpf.c) and the
 * plain-C parser tests (test_sni_parse.c), so both judge the same bytes.
 * sni_cases[] lists every ClientHello with what the parser must say of it
 * (as a first segment: EDGE_SNI_MORE says the walk goes on in the next).
 */
#ifndef EDGE_TEST_PACKETS_H
#define EDGE_TEST_PACKETS_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "../../bpf/sni_parse.h"

#define PKT_MAX 4096 /* BPF_PROG_TEST_RUN takes at most a page of packet */
#define BLOCKED_HOST "blocked.example"
#define OTHER_HOST "other.example"

/* ---- ClientHello ---------------------------------------------------------------------- */

struct hello_spec {
	const char *host;  /* NULL: no server_name extension */
	int record_minor;  /* record layer version 3.x */
	int sid_len;       /* legacy_session_id bytes */
	int n_suites;      /* cipher suites */
	int n_ext_before;  /* filler extensions before server_name */
	int filler_len;    /* bytes in each of them */
	int no_extensions; /* no extensions block at all */
	int pad_after;     /* bytes of a padding extension after server_name */
	int ks_mlkem;      /* a key_share with an X25519MLKEM768 share of this many bytes
			    * (1216) and an X25519 one, as browsers send; 0: none */
	int ks_after;      /* that key_share after server_name, not before it */
};

/* Where the builder put what, for the cases that break one field. */
struct hello_layout {
	size_t rec_len, hs_len, sid, suites, comp, ext_len, sni, sni_name_len, total;
	size_t keyshare; /* where the key_share extension starts */
};

static inline void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put24(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 16);
	put16(p + 1, v);
}

static inline size_t put_ext(uint8_t *p, unsigned int type, const uint8_t *data, size_t len)
{
	put16(p, type);
	put16(p + 2, len);
	if (len)
		memcpy(p + 4, data, len);
	return 4 + len;
}

/* A key_share extension: an X25519MLKEM768 share of len bytes, then X25519's 32. */
static inline size_t put_keyshare(uint8_t *p, size_t len)
{
	size_t n = 6;

	put16(p, 0x0033);
	put16(p + 2, 2 + 4 + len + 4 + 32);
	put16(p + 4, 4 + len + 4 + 32);
	put16(p + n, 0x11ec);
	put16(p + n + 2, len);
	memset(p + n + 4, 0x6b, len);
	n += 4 + len;
	put16(p + n, 0x001d);
	put16(p + n + 2, 32);
	memset(p + n + 4, 0x2c, 32);
	return n + 4 + 32;
}

/* Builds a ClientHello record; returns its length (0 if cap is too small). */
static inline size_t hello_build(uint8_t *p, size_t cap, const struct hello_spec *s,
				 struct hello_layout *lo)
{
	static const uint8_t versions[] = { 4, 0x03, 0x04, 0x03, 0x03 }; /* TLS 1.3, 1.2 */
	uint8_t filler[1400];
	size_t n = 0, ext_start, hlen = s->host ? strlen(s->host) : 0;
	struct hello_layout l;

	if (cap < 5 + 4 + 2 + 32 + 1 + (size_t)s->sid_len + 2 + 2 * (size_t)s->n_suites + 2 + 2 +
			    (size_t)s->n_ext_before * (4 + (size_t)s->filler_len) + 9 + hlen + 9 +
			    4 + (size_t)s->pad_after +
			    (s->ks_mlkem ? 46 + (size_t)s->ks_mlkem : 0) ||
	    (size_t)s->filler_len > sizeof(filler) || (size_t)s->pad_after > sizeof(filler))
		return 0;
	memset(&l, 0, sizeof(l));
	p[n++] = 22;
	p[n++] = 3;
	p[n++] = (uint8_t)s->record_minor;
	l.rec_len = n;
	n += 2;
	p[n++] = 1; /* client_hello */
	l.hs_len = n;
	n += 3;
	p[n++] = 3; /* legacy_version 1.2 */
	p[n++] = 3;
	for (int i = 0; i < 32; i++)
		p[n++] = (uint8_t)(0xa0 + i); /* random */
	l.sid = n;
	p[n++] = (uint8_t)s->sid_len;
	for (int i = 0; i < s->sid_len; i++)
		p[n++] = (uint8_t)i;
	l.suites = n;
	put16(p + n, 2 * (size_t)s->n_suites);
	n += 2;
	for (int i = 0; i < s->n_suites; i++, n += 2)
		put16(p + n, 0x1301 + (size_t)i);
	l.comp = n;
	p[n++] = 1;
	p[n++] = 0; /* null compression */
	if (!s->no_extensions) {
		l.ext_len = n;
		n += 2;
		ext_start = n;
		memset(filler, 0x5a, sizeof(filler));
		for (int i = 0; i < s->n_ext_before; i++) /* GREASE-like types 0x?a?a */
			n += put_ext(p + n, 0x0a0a + 0x1010 * (size_t)(i % 15), filler,
				     (size_t)s->filler_len);
		if (s->ks_mlkem && !s->ks_after) {
			l.keyshare = n;
			n += put_keyshare(p + n, (size_t)s->ks_mlkem);
		}
		if (s->host) {
			l.sni = n;
			put16(p + n, 0); /* server_name */
			put16(p + n + 2, 2 + 1 + 2 + hlen);
			put16(p + n + 4, 1 + 2 + hlen);
			p[n + 6] = 0; /* host_name */
			l.sni_name_len = n + 7;
			put16(p + n + 7, hlen);
			memcpy(p + n + 9, s->host, hlen);
			n += 9 + hlen;
		}
		if (s->ks_mlkem && s->ks_after) {
			l.keyshare = n;
			n += put_keyshare(p + n, (size_t)s->ks_mlkem);
		}
		n += put_ext(p + n, 0x002b, versions, sizeof(versions));
		if (s->pad_after) {
			memset(filler, 0, sizeof(filler));
			n += put_ext(p + n, 0x0015, filler, (size_t)s->pad_after);
		}
		put16(p + l.ext_len, n - ext_start);
	}
	put24(p + l.hs_len, n - 9);
	put16(p + l.rec_len, n - 5);
	l.total = n;
	if (lo)
		*lo = l;
	return n;
}

static inline struct hello_spec hello_default(const char *host)
{
	struct hello_spec s = { .host = host,
				.record_minor = 1,
				.sid_len = 32,
				.n_suites = 16,
				.n_ext_before = 8,
				.filler_len = 12 };
	return s;
}

/* ---- the cases ------------------------------------------------------------------------ */

struct sni_case {
	const char *name;
	size_t (*build)(uint8_t *p, size_t cap);
	int want;         /* EDGE_SNI_* */
	const char *host; /* what the hash must equal, for EDGE_SNI_FOUND */
};

static inline size_t hello_with(uint8_t *p, size_t cap, const char *host)
{
	struct hello_spec s = hello_default(host);

	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_blocked(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, BLOCKED_HOST);
}

static inline size_t c_other(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, OTHER_HOST);
}

static inline size_t c_upper(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, "BLOCKED.Example");
}

/* Names of 1, 31, 32, 33 and 253 bytes: every path of the chunked hash. */
#define NAME_253                                                           \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa." \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb." \
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc." \
	"ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define NAME_31 "abcdefghijklmnopqrstuvwxyz.ABCD"
#define NAME_32 "abcdefghijklmnopqrstuvwxyz.ABCDE"
#define NAME_33 "abcdefghijklmnopqrstuvwxyz.ABCDEF"

static inline size_t c_name1(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, "x");
}

static inline size_t c_name31(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, NAME_31);
}

static inline size_t c_name32(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, NAME_32);
}

static inline size_t c_name33(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, NAME_33);
}

static inline size_t c_name253(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, NAME_253);
}

/* A post-quantum key share (about 1,200 bytes) before server_name, as
 * browsers that shuffle their extensions may send. */
static inline size_t c_big_keyshare(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(BLOCKED_HOST);

	s.n_ext_before = 1;
	s.filler_len = 1216;
	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_many_ext(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(BLOCKED_HOST);

	s.n_ext_before = EDGE_SNI_MAX_EXTENSIONS - 2; /* server_name is number 31 */
	s.filler_len = 2;
	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_too_many_ext(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(BLOCKED_HOST);

	s.n_ext_before = EDGE_SNI_MAX_EXTENSIONS + 8;
	s.filler_len = 0;
	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_tls12_record(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(BLOCKED_HOST);

	s.record_minor = 3;
	s.sid_len = 0;
	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_no_sni(uint8_t *p, size_t cap)
{
	return hello_with(p, cap, NULL);
}

static inline size_t c_no_extensions(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(NULL);

	s.no_extensions = 1;
	return hello_build(p, cap, &s, NULL);
}

/* Post-quantum ClientHellos: an X25519MLKEM768 key share makes them longer
 * than a segment of a 1500-byte MTU (SEG_MSS bytes of payload with TCP
 * timestamps), with server_name before or after the key share. */
#define SEG_MSS 1448
#define MLKEM768_SHARE 1216

static inline size_t hello_mlkem(uint8_t *p, size_t cap, const char *host, int ks_after,
				 struct hello_layout *lo)
{
	struct hello_spec s = hello_default(host);

	s.ks_mlkem = MLKEM768_SHARE;
	s.ks_after = ks_after;
	return hello_build(p, cap, &s, lo);
}

static inline size_t c_mlkem_sni_last(uint8_t *p, size_t cap)
{
	return hello_mlkem(p, cap, BLOCKED_HOST, 0, NULL);
}

static inline size_t c_mlkem_sni_first(uint8_t *p, size_t cap)
{
	return hello_mlkem(p, cap, BLOCKED_HOST, 1, NULL);
}

static inline size_t cut_at_mss(size_t n)
{
	return n > SEG_MSS ? SEG_MSS : n;
}

static inline size_t c_mlkem_sni_last_seg1(uint8_t *p, size_t cap)
{
	return cut_at_mss(c_mlkem_sni_last(p, cap));
}

static inline size_t c_mlkem_sni_first_seg1(uint8_t *p, size_t cap)
{
	return cut_at_mss(c_mlkem_sni_first(p, cap));
}

static inline size_t c_mlkem_no_sni_seg1(uint8_t *p, size_t cap)
{
	return cut_at_mss(hello_mlkem(p, cap, NULL, 0, NULL));
}

/* The first segment ends in the cipher suites: not followed. */
static inline size_t c_cut_in_suites(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);

	hello_build(p, cap, &s, &l);
	return l.suites + 7;
}

/* Cut short: the segment ends inside the record, as a ClientHello longer
 * than the segment arrives (the rest follows in the next one). */
static inline size_t c_fragmented(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n;

	s.pad_after = 1200;
	n = hello_build(p, cap, &s, NULL);
	return n > 1000 ? 1000 : n; /* the name is in; the record end is not */
}

static inline size_t c_truncated(uint8_t *p, size_t cap)
{
	size_t n = c_blocked(p, cap);

	return n - 1;
}

static inline size_t c_header_only(uint8_t *p, size_t cap)
{
	c_blocked(p, cap);
	return 3;
}

/* The ClientHello says it is longer than its record: continued in the next
 * record (TLS-level fragmentation). */
static inline size_t c_hs_spans_records(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put24(p + l.hs_len, n - 9 + 200);
	return n;
}

static inline size_t c_record_len_zero(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.rec_len, 0);
	return n;
}

static inline size_t c_record_len_huge(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.rec_len, 0xffff);
	return n;
}

static inline size_t c_sid_too_long(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	p[l.sid] = 33;
	return n;
}

static inline size_t c_suites_odd(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.suites, 31);
	return n;
}

static inline size_t c_suites_past_end(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.suites, 0xfffe);
	return n;
}

static inline size_t c_no_compression(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	p[l.comp] = 0;
	return n;
}

static inline size_t c_ext_len_mismatch(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.ext_len, n - l.ext_len - 2 + 4);
	return n;
}

static inline size_t c_ext_len_huge(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.ext_len + 2 + 2, 0xffff); /* the first extension's length */
	return n;
}

static inline size_t c_sni_ext_huge(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.sni + 2, 0xffff);
	return n;
}

static inline size_t c_sni_empty_name(uint8_t *p, size_t cap)
{
	struct hello_spec s = hello_default("");

	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_sni_empty_ext(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	/* server_name with an empty body, as servers echo it: shift the rest. */
	size_t body = l.sni + 4, blen = 5 + strlen(BLOCKED_HOST);

	memmove(p + body, p + body + blen, n - body - blen);
	n -= blen;
	put16(p + l.sni + 2, 0);
	put16(p + l.ext_len, n - l.ext_len - 2);
	put24(p + l.hs_len, n - 9);
	put16(p + l.rec_len, n - 5);
	return n;
}

static inline size_t c_sni_name_past_list(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	put16(p + l.sni_name_len, strlen(BLOCKED_HOST) + 1);
	return n;
}

static inline size_t c_sni_name_too_long(uint8_t *p, size_t cap)
{
	static char name[301];
	struct hello_spec s;

	memset(name, 'n', sizeof(name) - 1);
	s = hello_default(name);
	return hello_build(p, cap, &s, NULL);
}

static inline size_t c_sni_not_host_name(uint8_t *p, size_t cap)
{
	struct hello_layout l;
	struct hello_spec s = hello_default(BLOCKED_HOST);
	size_t n = hello_build(p, cap, &s, &l);

	p[l.sni + 6] = 1;
	return n;
}

static inline size_t c_server_hello(uint8_t *p, size_t cap)
{
	size_t n = c_blocked(p, cap);

	p[5] = 2;
	return n;
}

static inline size_t c_app_data(uint8_t *p, size_t cap)
{
	size_t n = c_blocked(p, cap);

	p[0] = 23;
	return n;
}

static inline size_t c_http(uint8_t *p, size_t cap)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: " BLOCKED_HOST "\r\n\r\n";

	if (cap < sizeof(req))
		return 0;
	memcpy(p, req, sizeof(req) - 1);
	return sizeof(req) - 1;
}

static inline size_t c_sslv2(uint8_t *p, size_t cap)
{
	size_t n = c_blocked(p, cap);

	p[1] = 2; /* not version 3.x */
	return n;
}

static const struct sni_case sni_cases[] = {
	{ "ClientHello with SNI " BLOCKED_HOST, c_blocked, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "ClientHello with SNI " OTHER_HOST, c_other, EDGE_SNI_FOUND, OTHER_HOST },
	{ "upper-case SNI hashes as lower case", c_upper, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "1-byte name", c_name1, EDGE_SNI_FOUND, "x" },
	{ "31-byte name", c_name31, EDGE_SNI_FOUND, NAME_31 },
	{ "32-byte name", c_name32, EDGE_SNI_FOUND, NAME_32 },
	{ "33-byte name", c_name33, EDGE_SNI_FOUND, NAME_33 },
	{ "253-byte name", c_name253, EDGE_SNI_FOUND, NAME_253 },
	{ "SNI after a 1,216-byte key share", c_big_keyshare, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "SNI as extension 31 of 32", c_many_ext, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "SNI after an X25519MLKEM768 key share", c_mlkem_sni_last, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "SNI before an X25519MLKEM768 key share", c_mlkem_sni_first, EDGE_SNI_FOUND,
	  BLOCKED_HOST },
	{ "first segment (1448 bytes): SNI, then the key share goes on", c_mlkem_sni_first_seg1,
	  EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "first segment (1448 bytes): the key share goes on, SNI after it", c_mlkem_sni_last_seg1,
	  EDGE_SNI_MORE, NULL },
	{ "first segment (1448 bytes) of a ClientHello without SNI", c_mlkem_no_sni_seg1,
	  EDGE_SNI_MORE, NULL },
	{ "record version 3.3, no session id", c_tls12_record, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "no server_name extension", c_no_sni, EDGE_SNI_ABSENT, NULL },
	{ "no extensions at all", c_no_extensions, EDGE_SNI_ABSENT, NULL },
	{ "fragmented: ClientHello longer than the segment", c_fragmented, EDGE_SNI_FOUND,
	  BLOCKED_HOST },
	{ "truncated by one byte", c_truncated, EDGE_SNI_FOUND, BLOCKED_HOST },
	{ "record header only", c_header_only, EDGE_SNI_PARTIAL, NULL },
	{ "first segment ends in the cipher suites", c_cut_in_suites, EDGE_SNI_PARTIAL, NULL },
	{ "ClientHello continues in the next record", c_hs_spans_records, EDGE_SNI_PARTIAL, NULL },
	{ "record length 0", c_record_len_zero, EDGE_SNI_MALFORMED, NULL },
	{ "record length 65535", c_record_len_huge, EDGE_SNI_MALFORMED, NULL },
	{ "session id of 33 bytes", c_sid_too_long, EDGE_SNI_MALFORMED, NULL },
	{ "odd cipher suites length", c_suites_odd, EDGE_SNI_MALFORMED, NULL },
	{ "cipher suites past the end", c_suites_past_end, EDGE_SNI_MALFORMED, NULL },
	{ "no compression method", c_no_compression, EDGE_SNI_MALFORMED, NULL },
	{ "extensions length past the end", c_ext_len_mismatch, EDGE_SNI_MALFORMED, NULL },
	{ "extension length 65535", c_ext_len_huge, EDGE_SNI_MALFORMED, NULL },
	{ "server_name length 65535", c_sni_ext_huge, EDGE_SNI_MALFORMED, NULL },
	{ "zero-length SNI", c_sni_empty_name, EDGE_SNI_MALFORMED, NULL },
	{ "empty server_name extension", c_sni_empty_ext, EDGE_SNI_MALFORMED, NULL },
	{ "SNI name longer than its list", c_sni_name_past_list, EDGE_SNI_MALFORMED, NULL },
	{ "300-byte SNI name", c_sni_name_too_long, EDGE_SNI_MALFORMED, NULL },
	{ "SNI name_type 1", c_sni_not_host_name, EDGE_SNI_MALFORMED, NULL },
	{ "more extensions than the walk's bound", c_too_many_ext, EDGE_SNI_MALFORMED, NULL },
	{ "handshake type 2 (ServerHello)", c_server_hello, EDGE_SNI_NOT_HELLO, NULL },
	{ "application data record", c_app_data, EDGE_SNI_NOT_HELLO, NULL },
	{ "plain HTTP", c_http, EDGE_SNI_NOT_HELLO, NULL },
	{ "record version 2.x", c_sslv2, EDGE_SNI_NOT_HELLO, NULL },
};

#define N_SNI_CASES (sizeof(sni_cases) / sizeof(sni_cases[0]))

static inline const char *sni_result_name(int r)
{
	switch (r) {
	case EDGE_SNI_FOUND:
		return "found";
	case EDGE_SNI_ABSENT:
		return "absent";
	case EDGE_SNI_NOT_HELLO:
		return "not a ClientHello";
	case EDGE_SNI_PARTIAL:
		return "partial";
	case EDGE_SNI_MALFORMED:
		return "malformed";
	case EDGE_SNI_MORE:
		return "more";
	}
	return "?";
}

/* ---- packets -------------------------------------------------------------------------- */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

struct flow_spec {
	int family; /* AF_INET or AF_INET6 */
	const char *saddr, *daddr;
	uint16_t sport, dport;
	int vlan;      /* one 802.1Q tag */
	int ipproto;   /* 0: TCP */
	int frag_off;  /* IPv4 fragment offset in 8-byte units */
	int tot_extra; /* added to the IP length field: says more than is there */
	uint32_t seq;  /* TCP sequence number; 0: 0x1000 */
};

static inline uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ethernet [+ VLAN] + IP + TCP (20 bytes) + payload; returns the length. */
static inline size_t pkt_build(uint8_t *p, size_t cap, const struct flow_spec *f, uint8_t flags,
			       const uint8_t *payload, size_t plen)
{
	size_t n = 0, ip, l4 = 20 + plen;

	if (cap < 14 + 4 + 40 + l4)
		return 0;
	memset(p, 0, 14 + 4 + 40 + 20);
	memcpy(p, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02", 12);
	n = 12;
	if (f->vlan) {
		put16(p + n, 0x8100);
		put16(p + n + 2, 42);
		n += 4;
	}
	put16(p + n, f->family == AF_INET ? 0x0800 : 0x86dd);
	n += 2;
	ip = n;
	if (f->family == AF_INET) {
		p[n] = 0x45;
		put16(p + n + 2, 20 + l4 + (size_t)f->tot_extra);
		put16(p + n + 4, 0x1234);
		put16(p + n + 6, f->frag_off ? (size_t)f->frag_off : 0x4000);
		p[n + 8] = 64;
		p[n + 9] = (uint8_t)(f->ipproto ? f->ipproto : 6);
		inet_pton(AF_INET, f->saddr, p + n + 12);
		inet_pton(AF_INET, f->daddr, p + n + 16);
		put16(p + n + 10, ip_csum(p + ip, 20));
		n += 20;
	} else {
		p[n] = 0x60;
		put16(p + n + 4, l4 + (size_t)f->tot_extra);
		p[n + 6] = (uint8_t)(f->ipproto ? f->ipproto : 6);
		p[n + 7] = 64;
		inet_pton(AF_INET6, f->saddr, p + n + 8);
		inet_pton(AF_INET6, f->daddr, p + n + 24);
		n += 40;
	}
	put16(p + n, f->sport);
	put16(p + n + 2, f->dport);
	put16(p + n + 4, (f->seq ? f->seq : 0x1000) >> 16); /* seq */
	put16(p + n + 6, (f->seq ? f->seq : 0x1000) & 0xffff);
	p[n + 12] = 5 << 4;
	p[n + 13] = flags;
	put16(p + n + 14, 65535);
	n += 20;
	if (plen)
		memcpy(p + n, payload, plen);
	return n + plen;
}

/* Where the TCP payload starts in a packet pkt_build() made. */
static inline size_t pkt_payload_off(const struct flow_spec *f)
{
	return 14 + (f->vlan ? 4 : 0) + (f->family == AF_INET ? 20 : 40) + 20;
}

#endif
