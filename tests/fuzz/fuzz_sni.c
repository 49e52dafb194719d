/*
 * libFuzzer target for the tc program's SNI parser (bpf/sni_parse.h), built
 * as plain C: clang -fsanitize=fuzzer,address,undefined. Besides memory
 * safety it checks what the program relies on: a name is inside the input
 * and the ClientHello and hashes to the reported value; a verdict never
 * depends on bytes past the ClientHello, nor on bytes not received (a walk
 * goes on only while the ClientHello does); and the input cut into two
 * segments, and into three, at points the fuzzer chooses ends in the same
 * result as in one buffer (hash, name offset and length, or the walk left
 * for a next segment) whenever the walk is not given up, and it is given up
 * only for a cut before the extensions. The cut points come from the input's
 * last bytes, so the seeds stay plain ClientHellos (tests/bpf reads them
 * too) and the fuzzer moves the cuts by mutating those bytes.
 * tests/fuzz/run.sh runs it for a bounded time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../bpf/sni_parse.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static int parse(const uint8_t *data, size_t size, struct edge_sni *sni, struct edge_sni_walk *w)
{
	struct edge_sni_src src = { .data = data, .len = (__u32)size };

	memset(sni, 0xa5, sizeof(*sni));
	memset(w, 0x5a, sizeof(*w));
	return edge_sni_parse(&src, (__u32)size, sni, w);
}

/* data cut into segments at cuts[0] < cuts[1] < ... < size, each in a buffer
 * of its own (so ASan sees a read past a segment). */
static int parse_cut(const uint8_t *data, size_t size, const size_t *cuts, int n_cuts,
		     struct edge_sni *sni, struct edge_sni_walk *w)
{
	size_t at = cuts[0];
	uint8_t *seg = malloc(at);
	int r;

	CHECK(seg);
	memcpy(seg, data, at);
	r = parse(seg, at, sni, w);
	free(seg);
	for (int i = 1; i <= n_cuts && r == EDGE_SNI_MORE; i++) {
		size_t to = i < n_cuts ? cuts[i] : size;
		struct edge_sni_src src;

		seg = malloc(to - at);
		CHECK(seg);
		memcpy(seg, data + at, to - at);
		src.data = seg;
		src.len = (__u32)(to - at);
		r = edge_sni_continue(&src, (__u32)(to - at), w, sni);
		free(seg);
		at = to;
	}
	return r;
}

/* Where the extensions start (the first segment must reach them); 0 when the
 * input has none to walk. */
static size_t first_ext(const uint8_t *data, size_t size)
{
	struct edge_sni_src src = { .data = data, .len = (__u32)size };
	struct edge_sni_walk w;

	return edge_sni_begin(&src, (__u32)size, &w) == EDGE_SNI_MORE ? w.next : 0;
}

/* The cut ends as the whole did, or is given up before the extensions. */
static void check_cut(const uint8_t *data, size_t size, const size_t *cuts, int n_cuts, int r,
		      const struct edge_sni *sni, const struct edge_sni_walk *w)
{
	struct edge_sni c;
	struct edge_sni_walk cw;
	int rc = parse_cut(data, size, cuts, n_cuts, &c, &cw);

	if (rc == EDGE_SNI_PARTIAL && r != EDGE_SNI_PARTIAL) {
		size_t fe = first_ext(data, size);

		CHECK(!fe || cuts[0] < fe);
		return;
	}
	CHECK(rc == r);
	if (r == EDGE_SNI_FOUND)
		CHECK(c.host_hash == sni->host_hash && c.name_off == sni->name_off &&
		      c.name_len == sni->name_len);
	if (r == EDGE_SNI_MORE)
		CHECK(!memcmp(&cw, w, sizeof(cw)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t longer[65536 + 64];
	struct edge_sni sni, again;
	struct edge_sni_walk w, w2;
	size_t rec_end = 0, hs_end = 0, cuts[2];
	int r, r2;

	if (size > 65536)
		return 0;
	r = parse(data, size, &sni, &w);
	CHECK(r >= EDGE_SNI_FOUND && r <= EDGE_SNI_MORE);
	if (size >= 9) {
		rec_end = 5 + ((size_t)data[3] << 8 | data[4]);
		hs_end = 9 + ((size_t)data[6] << 16 | (size_t)data[7] << 8 | data[8]);
	}

	if (r == EDGE_SNI_FOUND || r == EDGE_SNI_ABSENT || r == EDGE_SNI_MORE) {
		/* A ClientHello within its record, whether or not the segment holds it all. */
		CHECK(size >= 9 && data[0] == 22 && data[1] == 3 && data[5] == 1);
		CHECK(rec_end - 5 <= EDGE_TLS_RECORD_MAX && hs_end <= rec_end);
	}
	if (r == EDGE_SNI_ABSENT)
		CHECK(hs_end <= size); /* every byte of it walked over */
	if (r == EDGE_SNI_MORE)
		CHECK(hs_end > size && w.pos == size && w.next <= w.ext_end && w.ext_end == hs_end);
	if (r == EDGE_SNI_FOUND) {
		CHECK(sni.name_len >= 1 && sni.name_len <= EDGE_SNI_NAME_MAX);
		CHECK((size_t)sni.name_off + sni.name_len <= hs_end);
		CHECK((size_t)sni.name_off + sni.name_len <= size);
		CHECK(sni.host_hash ==
		      edge_sni_hash((const char *)data + sni.name_off, sni.name_len));
	}

	/* The same bytes with garbage after them: what was decided stays decided. */
	if (r != EDGE_SNI_PARTIAL && r != EDGE_SNI_MORE && size >= 6 &&
	    size + 64 <= sizeof(longer)) {
		memcpy(longer, data, size);
		memset(longer + size, 0xff, 64);
		r2 = parse(longer, size + 64, &again, &w2);
		CHECK(r2 == r);
		if (r == EDGE_SNI_FOUND)
			CHECK(again.host_hash == sni.host_hash && again.name_off == sni.name_off &&
			      again.name_len == sni.name_len);
	}

	/* Two segments, cut where the last two bytes say; three, where the two before. */
	if (size >= 2) {
		cuts[0] = 1 + ((size_t)data[size - 2] << 8 | data[size - 1]) % (size - 1);
		check_cut(data, size, cuts, 1, r, &sni, &w);
	}
	if (size >= 4) {
		cuts[0] = 1 + ((size_t)data[size - 4] << 8 | data[size - 3]) % (size - 2);
		cuts[1] = cuts[0] + 1 +
			  ((size_t)data[size - 1] << 8 | data[size - 2]) % (size - cuts[0] - 1);
		check_cut(data, size, cuts, 2, r, &sni, &w);
	}
	return 0;
}
