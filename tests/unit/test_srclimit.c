/* Per-source handshake caps: counting, release, bounds, both families. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "srclimit.h"
#include "tap.h"

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	in->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &in->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;

	in->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &in->sin6_addr);
	return ss;
}

int main(void)
{
	struct edge_srclimit l;
	struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2"), c = v6("2001:db8::1");
	struct sockaddr *A = (struct sockaddr *)&a, *B = (struct sockaddr *)&b;
	int i, n;

	ok(!edge_srclimit_init(&l, 8, 3), "init: 8 slots, 3 per source");
	for (i = 0; i < 3; i++)
		is_int(edge_srclimit_take(&l, A), 0, "source A handshake %d admitted", i + 1);
	is_int(edge_srclimit_take(&l, A), -EBUSY, "source A's 4th refused");
	is_int(edge_srclimit_take(&l, B), 0, "source B unaffected by A's flood");
	is_int(edge_srclimit_take(&l, (struct sockaddr *)&c), 0, "an IPv6 source counted apart");
	edge_srclimit_put(&l, A);
	is_int(edge_srclimit_take(&l, A), 0, "a finished handshake frees A's slot");
	for (i = 0; i < 3; i++)
		edge_srclimit_put(&l, A);
	edge_srclimit_put(&l, B);
	edge_srclimit_put(&l, (struct sockaddr *)&c);
	/* Every node back on the free list: 8 distinct sources fit, a 9th does not. */
	for (i = 0, n = 0; i < 9; i++) {
		char ip[32];
		struct sockaddr_storage s;

		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		s = v4(ip);
		if (edge_srclimit_take(&l, (struct sockaddr *)&s) == 0)
			n++;
	}
	is_int(n, 8, "the table holds at most its capacity of sources (no growth)");
	edge_srclimit_destroy(&l);
	return tap_done();
}
