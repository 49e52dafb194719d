/* The snapshot's lookups by hostname, the data path's per-handshake questions: exact name
 * first, then the wildcard one label up (snapshot.h). */
#include <stdio.h>
#include <string.h>

#include "snapshot_int.h"

bool edge_snap_under_site(const struct edge_snapshot *s, const char *host)
{
	size_t hl;

	if (!strncmp(host, "*.", 2))
		host += 2;
	hl = strlen(host);
	for (size_t i = 0; i < s->n_sites; i++) {
		size_t sl = strlen(s->sites[i]);

		if (!strcmp(host, s->sites[i]))
			return true;
		if (hl > sl && host[hl - sl - 1] == '.' && !strcmp(host + hl - sl, s->sites[i]))
			return true;
	}
	return false;
}

/* "a.b.c" -> "*.b.c"; false when the name has a single label. */
bool edge_snap_wildcard_of(const char *host, char *buf, size_t len)
{
	const char *dot = strchr(host, '.');

	if (!dot || !dot[1] || !strncmp(host, "*.", 2))
		return false;
	snprintf(buf, len, "*%s", dot);
	return true;
}

static void *find_host(const void *base, size_t n, size_t size, const char *host)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *name = *(char *const *)((const char *)base + mid * size);
		int c = strcmp(host, name);

		if (!c)
			return (char *)base + mid * size;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void *find_host_or_wildcard(const void *base, size_t n, size_t size, const char *host)
{
	char wild[300];
	void *e = find_host(base, n, size, host);

	if (!e && edge_snap_wildcard_of(host, wild, sizeof(wild)))
		e = find_host(base, n, size, wild);
	return e;
}

const struct edge_sni *edge_snapshot_find_sni(const struct edge_snapshot *s, const char *host)
{
	return find_host_or_wildcard(s->snis, s->n_sni, sizeof(struct edge_sni), host);
}

const struct edge_trust *edge_snapshot_trust(const struct edge_snapshot *s, const char *host)
{
	const struct edge_trust_entry *e = find_host_or_wildcard(s->trusts, s->n_trust, sizeof(*e),
								 host);

	if (e)
		return e->trust;
	return edge_snap_under_site(s, host) ? s->site_trust : s->no_trust;
}

enum edge_rule_action edge_snapshot_rule(const struct edge_snapshot *s, const char *host)
{
	const struct edge_rule_entry *e = find_host_or_wildcard(s->rules, s->n_rules, sizeof(*e),
								host);

	return e ? e->action : EDGE_ACTION_NONE;
}

const struct edge_authz *edge_snapshot_authz(const struct edge_snapshot *s, const char *host)
{
	const struct edge_authz_entry *e = find_host_or_wildcard(s->authz, s->n_authz, sizeof(*e),
								 host);

	return e ? e->rules : NULL;
}

const STACK_OF(X509_NAME) *edge_trust_hints(const struct edge_trust *t)
{
	return t->ca_names_der <= EDGE_CA_HINTS_MAX ? t->ca_names : NULL;
}
