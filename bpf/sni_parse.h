/*
 * The TLS ClientHello SNI parser, in plain C shared by the tc program
 * (clang -target bpf), the daemon (the host-name hash) and the tests and
 * fuzzer (the same code over a byte buffer).
 *
 * A ClientHello need not fit in one TCP segment: with a post-quantum key
 * share (X25519MLKEM768, 1,216 bytes) browsers' and OpenSSL 3.5's are 1.5 to
 * 1.9 KB, two segments at a 1500-byte MTU, and with the extension order
 * shuffled server_name is in either. So the parse is a walk over the bytes of
 * the first TLS record that stops where a segment ends and goes on in the
 * next one:
 *
 * - edge_sni_parse(src, len, out, walk) reads a flow's first data segment:
 *   the record header (type 22, version 3.x), the handshake header (type 1),
 *   legacy version, random, session id, cipher suites, compression methods and
 *   the extensions' length must all be in it (edge_sni_begin); then the
 *   extensions are walked, up to server_name, as far as the segment goes.
 * - edge_sni_continue(src, len, walk, out) goes on with the next segment,
 *   the one that starts where the last ended. The tc program calls
 *   edge_sni_begin() then edge_sni_continue() on a first segment, so the walk
 *   is compiled (and verified) once.
 *
 * Results:
 * - FOUND as soon as the whole host_name has been read, whether or not the
 *   record goes on: nothing after server_name is read, in one segment or two.
 * - ABSENT when the walk reaches the end of the extensions (all of their
 *   bytes received) without server_name; MALFORMED for lengths that do not add
 *   up (every length is checked against the one enclosing it before it is
 *   used), an empty or oversize name, more than EDGE_SNI_MAX_EXTENSIONS
 *   extensions; NOT_HELLO when the segment does not start a ClientHello record.
 * - MORE when the segment ended first: *walk says where the next one goes on.
 * - PARTIAL when the walk cannot be followed: the fixed part cut by the end of
 *   the first segment, a ClientHello longer than its record (continued in a
 *   second TLS record), a load that fails inside len. The caller passes it.
 *
 * The walk (struct edge_sni_walk, 32 bytes, kept per flow by the program):
 * offsets from the record's first byte (the stream) of the next segment
 * (pos), of the next item (next: an extension header, server_name's body,
 * the rest of the name) and of the extensions' end; the extensions walked so
 * far (the bound counts over all segments); the first bytes of a header that
 * a segment's end cut (at most 4: of the 4-byte extension header or of
 * server_name's 5-byte list, name type and name length), carried in a u64; a
 * name cut by a segment's end is hashed as far as it goes and the hash state
 * kept (FNV-1a runs over the bytes in order). An extension's body that goes
 * past the segment is skipped in the next one (next > pos). Every segment
 * moves the walk on by its whole length or ends it, and the walk never passes
 * the extensions' end (at most 5 + EDGE_TLS_RECORD_MAX bytes into the stream),
 * so every offset fits in 16 bits. The walk reads the same bytes in the same
 * order however the stream is cut: a walk that is not given up ends in the
 * same result (hash, name offset and length included) as over one buffer
 * (tests/fuzz/fuzz_sni.c checks it at fuzzer-chosen cuts).
 *
 * How the tc program follows a walk (bpf/edge.bpf.c, map sni_walks: LRU,
 * EDGE_SNI_WALKS_MAX flows, key the 5-tuple): a MORE is stored with the TCP
 * sequence number expected next and an expiry EDGE_SNI_WALK_TTL_NS after the
 * first segment; the next data segment of that flow goes on only when its
 * sequence number is exactly that one and the walk has not expired. Anything
 * else (another sequence number: out of order, a retransmission cut
 * elsewhere, a new ClientHello; an expired walk) gives the walk up: the state
 * is deleted, the segment is parsed as a possible first one, and the
 * ClientHello passes. A walk that ends (in any result) deletes its state. Only
 * FOUND, for a name its source is an offender for, drops; a hello dropped in
 * a later segment also tags its flow (failed_flows, until the offender's
 * expiry), as its earlier segments already reached the socket and a
 * retransmission of the dropped one would otherwise pass. A client that sends
 * its segments out of order on purpose is not followed: it costs a handshake,
 * which the daemon's own rule still refuses.
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
#define EDGE_SNI_EXT_HDR 4         /* extension type, length */
#define EDGE_SNI_SNI_HDR 5         /* server_name_list length, name_type, name length */

#define EDGE_FNV1A_INIT 2166136261u
#define EDGE_FNV1A_PRIME 16777619u

enum edge_sni_result {
	EDGE_SNI_FOUND = 0, /* a host_name, whole, in this segment or across segments */
	EDGE_SNI_ABSENT,    /* a complete ClientHello without server_name */
	EDGE_SNI_NOT_HELLO, /* not a handshake record starting a ClientHello */
	EDGE_SNI_PARTIAL,   /* cannot be followed: cut in its fixed part, continued in
			     * another record, or a failed load; passed */
	EDGE_SNI_MALFORMED, /* lengths that do not add up, an empty or oversize name,
			     * too many extensions */
	EDGE_SNI_MORE,      /* the segment ended first: go on from the walk with the next */
};

enum edge_sni_phase {
	EDGE_SNI_AT_EXT = 0, /* next: an extension header */
	EDGE_SNI_AT_SNI,     /* next: server_name's body, elen bytes */
	EDGE_SNI_IN_NAME,    /* next: the rest of the host_name */
};

struct edge_sni {
	__u32 host_hash; /* edge_sni_hash() of the name */
	__u16 name_off;  /* where the name starts, from the first byte of the record */
	__u16 name_len;  /* 1 .. EDGE_SNI_NAME_MAX */
};

/* Where a walk stands between segments. Offsets count from the record's first
 * byte; no implicit padding (it is a map value). */
struct edge_sni_walk {
	__u64 carry;     /* the carried bytes of a cut header, big-endian */
	__u32 hash;      /* IN_NAME: FNV-1a over the name bytes hashed so far */
	__u16 pos;       /* where the next segment starts */
	__u16 next;      /* where the next item starts (its first carried byte) */
	__u16 ext_end;   /* where the extensions (and the ClientHello) end */
	__u16 elen;      /* AT_SNI: server_name's length */
	__u16 name_off;  /* IN_NAME: where the name starts */
	__u16 name_len;  /* IN_NAME */
	__u16 name_done; /* IN_NAME: name bytes hashed */
	__u8 phase;      /* enum edge_sni_phase */
	__u8 n_ext;      /* extension headers read */
	__u8 carry_len;  /* 0 .. EDGE_SNI_SNI_HDR - 1 */
	__u8 pad[3];
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

/* The same hash, from state *h, over len (0 .. EDGE_SNI_NAME_MAX) bytes of the
 * source: whole EDGE_SNI_CHUNK-byte loads, then the tail a byte at a time.
 * Every load has a constant size, so the verifier tracks no length and prunes
 * the loops. */
static __always_inline int edge_sni_hash_src(const struct edge_sni_src *src, __u32 off, __u32 len,
					     __u32 *h)
{
	__u8 buf[EDGE_SNI_CHUNK];
	__u32 v = *h, done = 0;

	for (int c = 0; c < EDGE_SNI_NAME_MAX / EDGE_SNI_CHUNK; c++) {
		if (len - done < EDGE_SNI_CHUNK)
			break;
		if (edge_sni_load(src, off + done, buf, EDGE_SNI_CHUNK))
			return -1;
		for (int i = 0; i < EDGE_SNI_CHUNK; i++)
			v = edge_sni_hash_step(v, buf[i]);
		done += EDGE_SNI_CHUNK;
	}
	for (int i = 0; i < EDGE_SNI_CHUNK - 1; i++) {
		if (done >= len)
			break;
		if (edge_sni_load(src, off + done, buf, 1))
			return -1;
		v = edge_sni_hash_step(v, buf[0]);
		done++;
	}
	if (done != len)
		return -1;
	*h = v;
	return 0;
}

static __always_inline __u32 edge_sni_be16(const __u8 *p)
{
	return (__u32)p[0] << 8 | p[1];
}

/* n bytes of the fixed part at off: MALFORMED past the ClientHello's end,
 * PARTIAL past the segment's (the walk does not follow a cut there) or on a
 * failed load, 0 with the bytes in b. */
static __always_inline int edge_sni_fixed(const struct edge_sni_src *src, __u32 len, __u32 end,
					  __u32 off, __u8 *b, __u32 n)
{
	if (off + n > end)
		return EDGE_SNI_MALFORMED;
	if (off + n > len || edge_sni_load(src, off, b, n))
		return EDGE_SNI_PARTIAL;
	return 0;
}

/* The first segment of a flow's data, of len bytes, up to the extensions:
 * EDGE_SNI_MORE with *w ready to walk them from this segment on (with
 * edge_sni_continue()), or the result when there is nothing to walk. */
static __always_inline int edge_sni_begin(const struct edge_sni_src *src, __u32 len,
					  struct edge_sni_walk *w)
{
	__u8 b[6];
	__u32 rec_len, hs_len, off, end, ext_end, n;
	int r;

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
	if (len < 9 || edge_sni_load(src, 6, b, 3))
		return EDGE_SNI_PARTIAL;
	hs_len = (__u32)b[0] << 16 | (__u32)b[1] << 8 | b[2];
	if (4 + hs_len > rec_len)
		return EDGE_SNI_PARTIAL; /* the ClientHello goes on in a later record */
	end = 9 + hs_len;

	off = 9 + 2 + 32; /* legacy_version, random */
	if ((r = edge_sni_fixed(src, len, end, off, b, 1)))
		return r;
	if (b[0] > 32) /* legacy_session_id */
		return EDGE_SNI_MALFORMED;
	off += 1 + b[0];
	if ((r = edge_sni_fixed(src, len, end, off, b, 2)))
		return r;
	n = edge_sni_be16(b); /* cipher_suites */
	if (n < 2 || (n & 1))
		return EDGE_SNI_MALFORMED;
	off += 2 + n;
	if ((r = edge_sni_fixed(src, len, end, off, b, 1)))
		return r;
	if (b[0] < 1) /* legacy_compression_methods */
		return EDGE_SNI_MALFORMED;
	off += 1 + b[0];
	if (off == end) /* no extensions at all */
		return end > len ? EDGE_SNI_PARTIAL : EDGE_SNI_ABSENT;
	if ((r = edge_sni_fixed(src, len, end, off, b, 2)))
		return r;
	ext_end = off + 2 + edge_sni_be16(b);
	if (ext_end != end)
		return EDGE_SNI_MALFORMED;

	__builtin_memset(w, 0, sizeof(*w));
	w->next = (__u16)(off + 2);
	w->ext_end = (__u16)ext_end;
	w->phase = EDGE_SNI_AT_EXT;
	return EDGE_SNI_MORE;
}

/* The segment ended before the walk did: the next one starts len further on. */
static __always_inline int edge_sni_more(struct edge_sni_walk *w, __u32 len)
{
	w->pos = (__u16)(w->pos + len);
	return EDGE_SNI_MORE;
}

/* A header of need bytes (EDGE_SNI_EXT_HDR or EDGE_SNI_SNI_HDR) at w->next:
 * the bytes carried from earlier segments, then this one's. 1 with the header
 * in *hdr (big-endian), 0 when the segment ended first (what it had is
 * carried), -1 when the walk does not add up or a load fails. */
static __always_inline int edge_sni_header(const struct edge_sni_src *src, __u32 len,
					   struct edge_sni_walk *w, __u32 need, __u64 *hdr)
{
	__u8 b[8];
	__u64 v = w->carry;
	__u32 have = w->carry_len, rel;

	if (have) {
		if ((__u32)w->next + have != w->pos || have >= need)
			return -1;
		rel = 0;
	} else {
		if (w->next < w->pos)
			return -1;
		rel = (__u32)w->next - w->pos;
		v = 0;
		if (rel + need <= len) { /* the usual case: all of it in this segment */
			if (edge_sni_load(src, rel, b, need))
				return -1;
			for (__u32 i = 0; i < need; i++)
				v = v << 8 | b[i];
			*hdr = v;
			return 1;
		}
	}
	for (int i = 0; i < EDGE_SNI_SNI_HDR; i++) {
		if (have >= need || rel >= len)
			break;
		if (edge_sni_load(src, rel, b, 1))
			return -1;
		v = v << 8 | b[0];
		have++;
		rel++;
	}
	if (have < need) {
		w->carry = v;
		w->carry_len = (__u8)have;
		return 0;
	}
	w->carry = 0;
	w->carry_len = 0;
	*hdr = v;
	return 1;
}

/* The server_name body's first 5 bytes in hdr (RFC 6066 3): MALFORMED, or 0
 * with the walk set to hash the name. */
static __always_inline int edge_sni_server_name(struct edge_sni_walk *w, __u64 hdr)
{
	__u32 list_len = (__u32)(hdr >> 24) & 0xffff, name_len = (__u32)hdr & 0xffff;

	if (list_len != (__u32)w->elen - 2)
		return EDGE_SNI_MALFORMED;
	if (((hdr >> 16) & 0xff) != 0) /* name_type host_name, the only one defined */
		return EDGE_SNI_MALFORMED;
	if (name_len == 0 || name_len > EDGE_SNI_NAME_MAX || 3 + name_len > list_len)
		return EDGE_SNI_MALFORMED;
	w->next += EDGE_SNI_SNI_HDR;
	w->name_off = w->next;
	w->name_len = (__u16)name_len;
	w->name_done = 0;
	w->hash = EDGE_FNV1A_INIT;
	w->phase = EDGE_SNI_IN_NAME;
	return 0;
}

/* Walks the extensions over the len bytes of the segment that starts at
 * w->pos: from edge_sni_begin() in the first segment, from the walk of the
 * last one in the next. FOUND, ABSENT, MALFORMED, MORE (*w updated for the
 * next segment) or PARTIAL (a walk that does not add up, a failed load). */
static __always_inline int edge_sni_continue(const struct edge_sni_src *src, __u32 len,
					     struct edge_sni_walk *w, struct edge_sni *out)
{
	__u32 end = (__u32)w->pos + len, rel, n;
	__u64 hdr;
	int r;

	if (w->phase == EDGE_SNI_AT_EXT) {
		for (int i = 0; i <= EDGE_SNI_MAX_EXTENSIONS; i++) {
			__u32 type, elen;

			if (w->n_ext >= EDGE_SNI_MAX_EXTENSIONS)
				return EDGE_SNI_MALFORMED; /* more extensions than we walk */
			if (w->next > end)
				return edge_sni_more(w, len); /* in an extension's body */
			if (w->next == w->ext_end)
				return EDGE_SNI_ABSENT;
			if (w->next + EDGE_SNI_EXT_HDR > w->ext_end)
				return EDGE_SNI_MALFORMED;
			r = edge_sni_header(src, len, w, EDGE_SNI_EXT_HDR, &hdr);
			if (r < 0)
				return EDGE_SNI_PARTIAL;
			if (!r)
				return edge_sni_more(w, len);
			type = (__u32)(hdr >> 16) & 0xffff;
			elen = (__u32)hdr & 0xffff;
			w->n_ext++;
			if ((__u32)w->next + EDGE_SNI_EXT_HDR + elen > w->ext_end)
				return EDGE_SNI_MALFORMED;
			w->next += EDGE_SNI_EXT_HDR;
			if (type == EDGE_TLS_EXT_SERVER_NAME) {
				w->phase = EDGE_SNI_AT_SNI;
				w->elen = (__u16)elen;
				break;
			}
			w->next += (__u16)elen;
		}
		if (w->phase != EDGE_SNI_AT_SNI)
			return EDGE_SNI_MALFORMED;
	}

	if (w->phase == EDGE_SNI_AT_SNI) {
		if (w->elen < EDGE_SNI_SNI_HDR)
			return EDGE_SNI_MALFORMED;
		r = edge_sni_header(src, len, w, EDGE_SNI_SNI_HDR, &hdr);
		if (r < 0)
			return EDGE_SNI_PARTIAL;
		if (!r)
			return edge_sni_more(w, len);
		if ((r = edge_sni_server_name(w, hdr)))
			return r;
	}

	if (w->phase != EDGE_SNI_IN_NAME || w->next < w->pos || w->name_done > w->name_len ||
	    w->name_len > EDGE_SNI_NAME_MAX)
		return EDGE_SNI_PARTIAL;
	rel = (__u32)w->next - w->pos;
	n = (__u32)w->name_len - w->name_done;
	if (rel >= len)
		n = 0;
	else if (n > len - rel)
		n = len - rel;
	if (n && edge_sni_hash_src(src, rel, n, &w->hash))
		return EDGE_SNI_PARTIAL;
	w->next += (__u16)n;
	w->name_done += (__u16)n;
	if (w->name_done < w->name_len)
		return edge_sni_more(w, len);
	out->host_hash = w->hash;
	out->name_off = w->name_off;
	out->name_len = w->name_len;
	return EDGE_SNI_FOUND;
}

/* Parses the ClientHello at the start of a flow's first data segment, of len
 * bytes: the result, and on EDGE_SNI_MORE the walk to go on with in the next
 * segment (edge_sni_continue()). Offsets stay below 5 + EDGE_TLS_RECORD_MAX +
 * 65535, so no sum overflows. */
static __always_inline int edge_sni_parse(const struct edge_sni_src *src, __u32 len,
					  struct edge_sni *out, struct edge_sni_walk *w)
{
	int r = edge_sni_begin(src, len, w);

	if (r != EDGE_SNI_MORE)
		return r;
	return edge_sni_continue(src, len, w, out);
}

#endif
