/*
 * The TLS ClientHello SNI parser, in plain C shared by the tc program
 * (clang -target bpf), the daemon (the host-name hash) and the tests and
 * fuzzer (the same code over a byte buffer).
 *
 * It parses one TCP payload that must hold the whole first TLS record:
 * record header (type 22, version 3.x), handshake header (type 1), legacy
 * version, random, session id, cipher suites, compression methods, then at
 * most EDGE_SNI_MAX_EXTENSIONS extensions up to server_name. Every length is
 * checked against the one that encloses it before it is used; what does not
 * add up is EDGE_SNI_MALFORMED, what does not fit in the segment is
 * EDGE_SNI_PARTIAL, and the caller passes both untouched.
 *
 * Bytes are read only through edge_sni_load(): bpf_skb_load_bytes() in BPF
 * (the kernel checks the offset and reaches paged data; the verifier sees
 * only fixed-size stack buffers), a bounds-checked memcpy() elsewhere.
 */
#ifndef EDGE_SNI_PARSE_H
#define EDGE_SNI_PARSE_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define EDGE_TLS_CONTENT_HANDSHAKE 22
#define EDGE_TLS_HANDSHAKE_CLIENT_HELLO 1
#define EDGE_TLS_EXT_SERVER_NAME 0
#define EDGE_TLS_RECORD_MAX 16384  /* plaintext record limit, RFC 8446 5.1 */
#define EDGE_SNI_MAX_EXTENSIONS 32 /* browsers send about 20, GREASE included */
#define EDGE_SNI_NAME_MAX 255      /* a DNS name is at most 253 */
#define EDGE_SNI_CHUNK 32          /* bytes hashed per load; a power of two */

#define EDGE_FNV1A_INIT 2166136261u
#define EDGE_FNV1A_PRIME 16777619u

enum edge_sni_result {
	EDGE_SNI_FOUND = 0, /* a complete ClientHello with a host_name */
	EDGE_SNI_ABSENT,    /* a complete ClientHello without server_name */
	EDGE_SNI_NOT_HELLO, /* not a handshake record starting a ClientHello */
	EDGE_SNI_PARTIAL,   /* the ClientHello goes on past this segment or record */
	EDGE_SNI_MALFORMED, /* lengths that do not add up, an empty or oversize name,
			     * too many extensions */
};

struct edge_sni {
	__u32 host_hash; /* edge_sni_hash() of the name */
	__u16 name_off;  /* where the name starts in the payload */
	__u16 name_len;  /* 1 .. EDGE_SNI_NAME_MAX */
};

#ifdef __bpf__
/* The payload starts at byte base of the packet. */
struct edge_sni_src {
	struct __sk_buff *skb;
	__u32 base;
};

static __always_inline int edge_sni_load(const struct edge_sni_src *src, __u32 off, void *dst,
					 __u32 len)
{
	return bpf_skb_load_bytes(src->skb, src->base + off, dst, len);
}
#else
#include <string.h>

struct edge_sni_src {
	const __u8 *data;
	__u32 len;
};

static inline int edge_sni_load(const struct edge_sni_src *src, __u32 off, void *dst, __u32 len)
{
	if (off > src->len || len > src->len - off)
		return -1;
	memcpy(dst, src->data + off, len);
	return 0;
}
#endif

/* 32-bit FNV-1a over the name with ASCII letters lower-cased: the key the
 * daemon and the program agree on for a hostname. Branch-free lower-casing:
 * bit 8 of c + 191 says c >= 'A', bit 8 of c + 165 says c > 'Z'. */
static __always_inline __u32 edge_sni_hash_step(__u32 h, __u8 c)
{
	__u32 x = c;

	x |= ((x + 191) & ~(x + 165) & 0x100) >> 3;
	return (h ^ x) * EDGE_FNV1A_PRIME;
}

static __always_inline __u32 edge_sni_hash(const char *name, __u32 len)
{
	__u32 h = EDGE_FNV1A_INIT;

	for (__u32 i = 0; i < len; i++)
		h = edge_sni_hash_step(h, (__u8)name[i]);
	return h;
}

/* The same hash over len (1 .. EDGE_SNI_NAME_MAX) bytes of the source: whole
 * EDGE_SNI_CHUNK-byte loads, then the tail a byte at a time. Every load has a
 * constant size, so the verifier tracks no length and prunes the loops. */
static __always_inline int edge_sni_hash_src(const struct edge_sni_src *src, __u32 off, __u32 len,
					     __u32 *out)
{
	__u8 buf[EDGE_SNI_CHUNK];
	__u32 h = EDGE_FNV1A_INIT, done = 0;

	for (int c = 0; c < EDGE_SNI_NAME_MAX / EDGE_SNI_CHUNK; c++) {
		if (len - done < EDGE_SNI_CHUNK)
			break;
		if (edge_sni_load(src, off + done, buf, EDGE_SNI_CHUNK))
			return -1;
		for (int i = 0; i < EDGE_SNI_CHUNK; i++)
			h = edge_sni_hash_step(h, buf[i]);
		done += EDGE_SNI_CHUNK;
	}
	for (int i = 0; i < EDGE_SNI_CHUNK - 1; i++) {
		if (done >= len)
			break;
		if (edge_sni_load(src, off + done, buf, 1))
			return -1;
		h = edge_sni_hash_step(h, buf[0]);
		done++;
	}
	if (done != len)
		return -1;
	*out = h;
	return 0;
}

static __always_inline __u32 edge_sni_be16(const __u8 *p)
{
	return (__u32)p[0] << 8 | p[1];
}

/* The server_name extension body of elen bytes at off (RFC 6066 3). */
static __always_inline int edge_sni_server_name(const struct edge_sni_src *src, __u32 off,
						__u32 elen, struct edge_sni *out)
{
	__u8 b[5];
	__u32 list_len, name_len;

	if (elen < sizeof(b))
		return EDGE_SNI_MALFORMED;
	if (edge_sni_load(src, off, b, sizeof(b)))
		return EDGE_SNI_PARTIAL;
	list_len = edge_sni_be16(b);
	name_len = edge_sni_be16(b + 3);
	if (list_len != elen - 2)
		return EDGE_SNI_MALFORMED;
	if (b[2] != 0) /* name_type host_name, the only one defined */
		return EDGE_SNI_MALFORMED;
	if (name_len == 0 || name_len > EDGE_SNI_NAME_MAX || 3 + name_len > list_len)
		return EDGE_SNI_MALFORMED;
	if (edge_sni_hash_src(src, off + 5, name_len, &out->host_hash))
		return EDGE_SNI_PARTIAL;
	out->name_off = (__u16)(off + 5);
	out->name_len = (__u16)name_len;
	return EDGE_SNI_FOUND;
}

/* Parses the ClientHello at the start of a TCP payload of len bytes. Offsets
 * stay below 5 + EDGE_TLS_RECORD_MAX + 65535, so no sum overflows. */
static __always_inline int edge_sni_parse(const struct edge_sni_src *src, __u32 len,
					  struct edge_sni *out)
{
	__u8 b[6];
	__u32 rec_len, hs_len, off, end, ext_end, n;

	if (len < sizeof(b)) {
		if (len == 0 || edge_sni_load(src, 0, b, 1) || b[0] != EDGE_TLS_CONTENT_HANDSHAKE)
			return EDGE_SNI_NOT_HELLO;
		return EDGE_SNI_PARTIAL;
	}
	if (edge_sni_load(src, 0, b, sizeof(b)))
		return EDGE_SNI_PARTIAL;
	if (b[0] != EDGE_TLS_CONTENT_HANDSHAKE || b[1] != 3 ||
	    b[5] != EDGE_TLS_HANDSHAKE_CLIENT_HELLO)
		return EDGE_SNI_NOT_HELLO;
	rec_len = edge_sni_be16(b + 3);
	if (rec_len < 4 || rec_len > EDGE_TLS_RECORD_MAX)
		return EDGE_SNI_MALFORMED;
	if (5 + rec_len > len)
		return EDGE_SNI_PARTIAL; /* the record goes on in a later segment */

	if (edge_sni_load(src, 6, b, 3))
		return EDGE_SNI_PARTIAL;
	hs_len = (__u32)b[0] << 16 | (__u32)b[1] << 8 | b[2];
	if (4 + hs_len > rec_len)
		return EDGE_SNI_PARTIAL; /* the ClientHello goes on in a later record */
	end = 9 + hs_len;

	off = 9 + 2 + 32; /* legacy_version, random */
	if (off + 1 > end || edge_sni_load(src, off, b, 1))
		return EDGE_SNI_MALFORMED;
	if (b[0] > 32) /* legacy_session_id */
		return EDGE_SNI_MALFORMED;
	off += 1 + b[0];
	if (off + 2 > end || edge_sni_load(src, off, b, 2))
		return EDGE_SNI_MALFORMED;
	n = edge_sni_be16(b); /* cipher_suites */
	if (n < 2 || (n & 1))
		return EDGE_SNI_MALFORMED;
	off += 2 + n;
	if (off + 1 > end || edge_sni_load(src, off, b, 1))
		return EDGE_SNI_MALFORMED;
	if (b[0] < 1) /* legacy_compression_methods */
		return EDGE_SNI_MALFORMED;
	off += 1 + b[0];
	if (off == end)
		return EDGE_SNI_ABSENT; /* no extensions at all */
	if (off + 2 > end || edge_sni_load(src, off, b, 2))
		return EDGE_SNI_MALFORMED;
	ext_end = off + 2 + edge_sni_be16(b);
	if (ext_end != end)
		return EDGE_SNI_MALFORMED;
	off += 2;

	for (int i = 0; i < EDGE_SNI_MAX_EXTENSIONS; i++) {
		__u32 type, elen;

		if (off == ext_end)
			return EDGE_SNI_ABSENT;
		if (off + 4 > ext_end || edge_sni_load(src, off, b, 4))
			return EDGE_SNI_MALFORMED;
		type = edge_sni_be16(b);
		elen = edge_sni_be16(b + 2);
		off += 4;
		if (off + elen > ext_end)
			return EDGE_SNI_MALFORMED;
		if (type == EDGE_TLS_EXT_SERVER_NAME)
			return edge_sni_server_name(src, off, elen, out);
		off += elen;
	}
	return EDGE_SNI_MALFORMED; /* more extensions than we walk */
}

#endif
