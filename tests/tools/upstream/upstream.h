/*
 * edge-upstream's parts (see upstream.c for what it is).
 */
#ifndef EDGE_UPSTREAM_H
#define EDGE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A PROXY v2 header at in[0..in_len): its length (> 0) when complete, 0 when
 * more is needed, -1 when it is not one. What it says is appended to *text,
 * a line each: "family=inet src=A:P dst=A:P", then "tlv=0xTT len=N text=..."
 * (hex=... when not printable); PP2_TYPE_SSL as "tlv=0x20 client=0xCC
 * verify=N" and its sub-TLVs as "tlv=0x20/0xTT ...".
 */
int up_proxy_parse(const char *in, size_t in_len, char **text, size_t *text_len);

/* http.c */
/* The reason phrase of a status code ("OK", ...; "Status" or "Error" for others). */
const char *up_status_text(int status);
/* The length of the request head at in[0..len) up to and including its empty line, 0 while
 * it is incomplete; *blank gets the empty line's length (2 for CRLF, 1 for a bare LF). */
size_t up_head_end(const char *in, size_t len, size_t *blank);
/* The value of field name (case-insensitive) in a head, the request line skipped. */
bool up_header_value(const char *head, size_t len, const char *name, const char **val,
		     size_t *vlen);
/* Whether a value holds token anywhere (case-insensitive). */
bool up_value_has(const char *v, size_t len, const char *token);
/* Digits only, at most max. */
bool up_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* listen.c: binds spec ("ADDR:PORT", "[V6]:PORT") and listens, non-blocking; writes the bound
 * address as "ADDR:PORT" to bound; the fd, or -1 (said on stderr). */
int up_listen(const char *spec, char *bound, size_t len);

#endif
