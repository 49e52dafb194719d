/*
 * ALPN (RFC 7301) lists of the SNI objects: the text form the store and the CLI keep
 * ("h2,http/1.1": tokens joined by ',', in server preference order) and the wire form
 * OpenSSL reads (each token after its length byte). Shared by mtls-edgectl (sni add|update
 * --alpn) and the snapshot, which check the same rules. Pure: no I/O.
 */
#ifndef EDGE_ALPN_H
#define EDGE_ALPN_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* The wire form of the longest list: each token after its length byte. */
#define EDGE_ALPN_WIRE_MAX (EDGE_MAX_ALPN * (EDGE_ALPN_TOKEN_MAX + 1))

/* text ("" is the empty list) into wire (EDGE_ALPN_WIRE_MAX bytes), *wirelen its length.
 * At most EDGE_MAX_ALPN tokens, each 1..EDGE_ALPN_TOKEN_MAX bytes of printable ASCII other
 * than ',' (no space), none twice. 0, or -EINVAL with one sentence naming the token in err. */
int edge_alpn_parse(const char *text, unsigned char *wire, size_t *wirelen, char *err,
		    size_t errlen);
/* tok (len bytes) is in the wire list. */
bool edge_alpn_has(const unsigned char *wire, size_t wirelen, const char *tok, size_t len);
/* The wire list has a token other than http/1.1 (and so bytes the HTTP/1.1 parsers of the
 * edge cannot read: h2, or any other protocol). */
bool edge_alpn_beyond_http1(const unsigned char *wire, size_t wirelen);
/* Every token of the wire list is h2 or http/1.1: what --protocol http reads (HTTP/2 is
 * terminated by the daemon). */
bool edge_alpn_only_http(const unsigned char *wire, size_t wirelen);

#endif
