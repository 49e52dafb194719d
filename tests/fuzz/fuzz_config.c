/*
 * libFuzzer target for the daemon's config parser (userspace/config.c, libinih underneath):
 * each input is written to a memfd and loaded through edge_config_load() by its
 * /proc/self/fd path, exactly as the daemon loads -c FILE. Besides memory safety it checks the
 * parser's promises: a loaded config holds only values in the documented ranges, every string
 * is terminated, and a refusal says "FILE:LINE: message" (or "FILE: ...").
 *
 * Listen addresses go through getaddrinfo(); a fuzzed "listen = somename:1" must not become a
 * DNS query, so this binary's getaddrinfo() allows numeric hosts only (the real one underneath).
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo h = { 0 };

	if (!real)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	return real(node, service, &h, res);
}

static bool terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct edge_config cfg;
	char err[1024];
	int rc;

	if (fd < 0) {
		fd = memfd_create("fuzz-config", MFD_CLOEXEC);
		CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (size > 65536)
		return 0;
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

	edge_config_defaults(&cfg);
	memset(err, 0x5a, sizeof(err));
	rc = edge_config_load(&cfg, path, err, sizeof(err));
	if (rc) {
		CHECK(rc < 0);
		CHECK(terminated(err, sizeof(err)));
		/* "PATH:LINE: message" or "PATH: message", never an empty message. */
		CHECK(!strncmp(err, path, strlen(path)) && err[strlen(path)] == ':');
		CHECK(strlen(err) > strlen(path) + 2);
	}
	/* Whatever was applied before a refusal must be in range too. */
	CHECK(cfg.workers >= 1 && cfg.workers <= EDGE_MAX_WORKERS);
	CHECK(cfg.n_listen >= 0 && cfg.n_listen <= EDGE_MAX_LISTEN);
	CHECK(cfg.verify_depth >= 0 && cfg.verify_depth <= 10);
	CHECK(cfg.crl_fetch_timeout_ms >= 100 && cfg.crl_fetch_timeout_ms <= 120000);
	CHECK(cfg.crl_fetch_max_bytes >= 1024 && cfg.crl_fetch_max_bytes <= 256u << 20);
	CHECK(cfg.crl_refresh_max_s >= 5 && cfg.crl_refresh_max_s <= 86400);
	CHECK(cfg.max_handshakes >= 1 && cfg.max_handshakes <= 1000000);
	CHECK(cfg.max_handshakes_per_source >= 1 && cfg.max_handshakes_per_source <= 1000000);
	CHECK(cfg.handshake_timeout_ms <= 7u * 86400000u);
	CHECK(cfg.idle_timeout_ms <= 7u * 86400000u);
	CHECK(cfg.ktls <= EDGE_KTLS_OFF && cfg.bpf_mode <= EDGE_BPF_OFF);
	CHECK(cfg.n_bpf_ifaces >= 0 && cfg.n_bpf_ifaces <= EDGE_MAX_BPF_IFACES);
	CHECK(terminated(cfg.state_dir, sizeof(cfg.state_dir)) && cfg.state_dir[0]);
	CHECK(terminated(cfg.default_sni, sizeof(cfg.default_sni)));
	CHECK(terminated(cfg.bpf_pin_dir, sizeof(cfg.bpf_pin_dir)) && cfg.bpf_pin_dir[0]);
	for (int i = 0; i < cfg.n_bpf_ifaces; i++)
		CHECK(cfg.bpf_ifaces[i][0] && strlen(cfg.bpf_ifaces[i]) < 16);
	for (int i = 0; i < cfg.n_listen; i++) {
		CHECK(terminated(cfg.listen[i].text, sizeof(cfg.listen[i].text)));
		CHECK(cfg.listen[i].len > 0 && cfg.listen[i].len <= sizeof(cfg.listen[i].ss));
	}
	memset(err, 0x5a, sizeof(err));
	if (edge_config_validate(&cfg, err, sizeof(err)))
		CHECK(terminated(err, sizeof(err)) && err[0]);
	return 0;
}
