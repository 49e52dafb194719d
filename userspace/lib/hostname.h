/*
 * Hostname rules shared by mtls-edgectl and mtls-edged: normalising a
 * hostname (exact or "*." wildcard), "is it under this site", HOST:PORT.
 * Pure: no I/O; errors go to err as one sentence naming the input.
 */
#ifndef EDGE_HOSTNAME_H
#define EDGE_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_HOSTNAME_LEN 254 /* 253 characters + NUL */

/* Hostnames: lower-cased, one trailing dot dropped, LDH labels of 1..63, at
 * most 253 characters, not an IP address; "*.rest" only if wildcard_ok. */
int edge_hostname_norm(const char *in, bool wildcard_ok, char *out, size_t outlen, char *err,
		       size_t errlen);
/* host (normalised, maybe "*.x") equals domain or lies under it. */
bool edge_hostname_under(const char *host, const char *domain);
/* "host:port", "1.2.3.4:port", "[v6]:port"; port 1..65535. host gets the
 * address or normalised name without brackets. */
int edge_hostname_port_parse(const char *in, char *host, size_t hostlen, uint16_t *port, char *err,
			     size_t errlen);

#endif
