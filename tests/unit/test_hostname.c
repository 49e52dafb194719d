/* Unit tests for userspace/hostname.c: hostname rules, "under a site", HOST:PORT. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hostname.h"
#include "tap.h"

static char err[1024];

static void test_hostnames(void)
{
	static const struct {
		const char *in;
		bool wild;
		const char *want;
	} good[] = {
		{ "Example.COM", false, "example.com" },
		{ "example.com.", false, "example.com" },
		{ "*.Example.com", true, "*.example.com" },
		{ "a-b.x1.example", false, "a-b.x1.example" },
		{ "xn--bcher-kva.example", false, "xn--bcher-kva.example" },
		{ "localhost", false, "localhost" },
	};
	static const struct {
		const char *in;
		bool wild;
	} bad[] = {
		{ "", false },
		{ ".", false },
		{ "*.example.com", false },
		{ "a*.example.com", true },
		{ "*", true },
		{ "a..b", false },
		{ "-a.example", false },
		{ "a-.example", false },
		{ "a_b.example", false },
		{ "exa mple.com", false },
		{ "1.2.3.4", false },
		{ "::1", false },
		{ "bücher.example", false },
		{ "*.*.example.com", true },
		{ ".example.com", false },
	};
	char out[EDGE_HOSTNAME_LEN], long_label[80], long_name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = edge_hostname_norm(good[i].in, good[i].wild, out, sizeof(out), err,
					    sizeof(err));

		ok(!rc && !strcmp(out, good[i].want), "hostname '%s' -> '%s'", good[i].in, out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(edge_hostname_norm(bad[i].in, bad[i].wild, out, sizeof(out), err,
					  sizeof(err)),
		       -EINVAL, "hostname '%s' refused: %s", bad[i].in, err);
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".example");
	is_int(edge_hostname_norm(long_label, false, out, sizeof(out), err, sizeof(err)), -EINVAL,
	       "a 64-character label refused");
	long_label[1] = '.';
	is_int(edge_hostname_norm(long_label, false, out, sizeof(out), err, sizeof(err)), 0,
	       "a 62-character label accepted");
	for (int i = 0; i < 254; i += 2)
		memcpy(long_name + i, "a.", 2);
	long_name[253] = '\0'; /* 253 characters */
	is_int(edge_hostname_norm(long_name, false, out, sizeof(out), err, sizeof(err)), 0,
	       "a 253-character name accepted");
	memcpy(long_name + 253, ".a", 3); /* 255 */
	is_int(edge_hostname_norm(long_name, false, out, sizeof(out), err, sizeof(err)), -EINVAL,
	       "a 255-character name refused");

	ok(edge_hostname_under("example.com", "example.com"), "a site is under itself");
	ok(edge_hostname_under("a.b.example.com", "example.com"), "a subdomain is under it");
	ok(edge_hostname_under("*.example.com", "example.com"), "*.site is under the site");
	ok(edge_hostname_under("*.a.example.com", "example.com"), "*.sub.site is under the site");
	ok(!edge_hostname_under("badexample.com", "example.com"), "badexample.com is not");
	ok(!edge_hostname_under("example.com", "a.example.com"), "a parent is not under a child");
	ok(!edge_hostname_under("*.example.com", "a.example.com"), "*.site is not under a.site");
	ok(!edge_hostname_under("example.org", "example.com"), "another domain is not");
}

static void test_hostport(void)
{
	static const struct {
		const char *in;
		const char *host;
		unsigned port;
	} good[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 },
		{ "[::1]:443", "::1", 443 },
		{ "Backend.Example:1", "backend.example", 1 },
		{ "localhost:65535", "localhost", 65535 },
		{ "[2001:db8::1]:80", "2001:db8::1", 80 },
	};
	static const char *const bad[] = {
		"localhost",
		"localhost:",
		":80",
		"localhost:0",
		"localhost:65536",
		"localhost:8o",
		"::1:443",
		"[::1]443",
		"[::1]",
		"[nothex]:80",
		"host_name:80",
		"h:+80",
		"h: 80",
		"h:99999999999999999999",
		"[]:80",
		"*.example.com:443",
	};
	char host[EDGE_HOSTNAME_LEN];
	uint16_t port;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = edge_hostname_port_parse(good[i].in, host, sizeof(host), &port, err,
						  sizeof(err));

		ok(!rc && !strcmp(host, good[i].host) && port == good[i].port, "'%s' -> %s port %u",
		   good[i].in, rc ? err : host, rc ? 0u : (unsigned)port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(edge_hostname_port_parse(bad[i], host, sizeof(host), &port, err,
						sizeof(err)),
		       -EINVAL, "'%s' refused: %s", bad[i], err);
}

int main(void)
{
	test_hostnames();
	test_hostport();
	return tap_done();
}
