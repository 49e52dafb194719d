/*
 * libFuzzer target for the tc program's SNI parser (bpf/sni_parse.h), built
 * as plain C: clang -fsanitize=fuzzer,address,undefined. Besides memory
 * safety it checks what the program relies on: a name is inside the input
 * and hashes to the reported value, and a verdict never depends on bytes past
 * the TLS record it came from. tests/fuzz/run.sh runs it for a bounded time.
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

static int parse(const uint8_t *data, size_t size, struct edge_sni *sni)
{
	struct edge_sni_src src = { .data = data, .len = (__u32)size };

	memset(sni, 0xa5, sizeof(*sni));
	return edge_sni_parse(&src, (__u32)size, sni);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t longer[65536 + 64];
	struct edge_sni sni, again;
	size_t rec_end;
	int r, r2;

	if (size > 65536)
		return 0;
	r = parse(data, size, &sni);
	CHECK(r >= EDGE_SNI_FOUND && r <= EDGE_SNI_MALFORMED);
	rec_end = size >= 5 ? 5 + ((size_t)data[3] << 8 | data[4]) : 0;

	if (r == EDGE_SNI_FOUND || r == EDGE_SNI_ABSENT) {
		/* A verdict needs the whole record in the segment. */
		CHECK(size >= 9 && data[0] == 22 && data[1] == 3 && data[5] == 1);
		CHECK(rec_end <= size && rec_end - 5 <= EDGE_TLS_RECORD_MAX);
	}
	if (r == EDGE_SNI_FOUND) {
		CHECK(sni.name_len >= 1 && sni.name_len <= EDGE_SNI_NAME_MAX);
		CHECK((size_t)sni.name_off + sni.name_len <= rec_end);
		CHECK(sni.host_hash ==
		      edge_sni_hash((const char *)data + sni.name_off, sni.name_len));
	}

	/* The same bytes with garbage after them: what was decided stays decided. */
	if (r != EDGE_SNI_PARTIAL && size >= 6 && size + 64 <= sizeof(longer)) {
		memcpy(longer, data, size);
		memset(longer + size, 0xff, 64);
		r2 = parse(longer, size + 64, &again);
		CHECK(r2 == r);
		if (r == EDGE_SNI_FOUND)
			CHECK(again.host_hash == sni.host_hash && again.name_off == sni.name_off &&
			      again.name_len == sni.name_len);
	}
	return 0;
}
