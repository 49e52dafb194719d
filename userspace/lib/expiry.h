/*
 * What expires: the server certificates of every SNI object, the built-in
 * CA, each uploaded CA and its CRL's nextUpdate. Read from the store (and
 * the SNI objects' certificate files); decides nothing and prints nothing.
 */
#ifndef EDGE_EXPIRY_H
#define EDGE_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

struct edge_store;

enum edge_expiry_kind {
	EDGE_EXPIRY_SERVER_CERT = 0, /* name: the SNI object's hostname; one with several
					certificates names each with its key type,
					"api.example.com (rsa)" */
	EDGE_EXPIRY_BUILTIN_CA,      /* name: "builtin" */
	EDGE_EXPIRY_CA,              /* name: the uploaded CA's name */
	EDGE_EXPIRY_CRL,             /* name: the CA's name; not_after: nextUpdate */
};

struct edge_expiry_item {
	enum edge_expiry_kind kind;
	char name[256];
	int64_t not_after; /* Unix seconds */
	char subject[256]; /* CAs: RFC 2253, as the verifier names issuers */
};

/* Fills *items (malloc'd, caller frees) with every dated object. A server
 * certificate file that cannot be read is left out (the snapshot refuses it). */
int edge_expiry_scan(struct edge_store *st, struct edge_expiry_item **items, size_t *n, char *err,
		     size_t errlen);
const char *edge_expiry_kind_name(enum edge_expiry_kind k);
/* Days left (rounded down; negative once past) at now. */
long edge_expiry_days_left(int64_t not_after, int64_t now);

#endif
