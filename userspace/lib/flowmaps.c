/*
 * The flowtag module's map operations: tag a flow and an offender, read the
 * counters, list, count and clear. Loading and attaching are in flowtag.c.
 */
#include "flowtag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "flowtag_int.h"

/* An address as the program sees it on the wire: IPv4-mapped IPv6 is IPv4. */
static int wire_addr(const struct sockaddr *sa, __u8 *family, __u8 addr[16], __be16 *port)
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		*family = EDGE_AF_INET;
		memcpy(addr, &in->sin_addr, 4);
		*port = in->sin_port;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			*family = EDGE_AF_INET;
			memcpy(addr, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			*family = EDGE_AF_INET6;
			memcpy(addr, &in6->sin6_addr, 16);
		}
		*port = in6->sin6_port;
		return 0;
	}
	return -EAFNOSUPPORT;
}

static void sockaddr_from_wire(struct sockaddr_storage *ss, __u8 family, const __u8 addr[16],
			       __be16 port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == EDGE_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, addr, 4);
		in->sin_port = port;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, addr, 16);
		in6->sin6_port = port;
	}
}

int edge_flowtag_tag(struct edge_flowtag *ft, const struct sockaddr *peer,
		     const struct sockaddr *local, const char *host, unsigned int ttl_s)
{
	struct edge_flow_key key;
	struct edge_flow_val val;
	struct edge_offender_key okey;
	struct edge_offender_val oval;
	__u8 lfamily;
	__u64 expires;
	int rc;

	if (!ft || !peer || !local || !ttl_s)
		return -EINVAL;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	if (wire_addr(peer, &key.family, key.saddr, &key.sport) ||
	    wire_addr(local, &lfamily, key.daddr, &key.dport))
		return -EAFNOSUPPORT;
	if (lfamily != key.family)
		return -EINVAL;
	expires = edge_flowtag_now_ns() + (__u64)ttl_s * 1000000000ull;
	val.expires_ns = expires;
	val.host_hash = host && host[0] ? edge_flowtag_host_hash(host) : 0;
	rc = bpf_map_update_elem(ft->fd[MAP_FLOWS], &key, &val, BPF_ANY);
	if (rc || !val.host_hash)
		return rc;

	memset(&okey, 0, sizeof(okey));
	okey.family = key.family;
	memcpy(okey.addr, key.saddr, sizeof(okey.addr));
	okey.host_hash = val.host_hash;
	oval.expires_ns = expires;
	return bpf_map_update_elem(ft->fd[MAP_OFFENDERS], &okey, &oval, BPF_ANY);
}

/* Sums one per-CPU __u64 value; 0 when the key is absent. */
static int percpu_sum(struct edge_flowtag *ft, int fd, const void *key, uint64_t *sum)
{
	__u64 *vals = calloc((size_t)ft->ncpus, sizeof(*vals));
	int rc;

	*sum = 0;
	if (!vals)
		return -ENOMEM;
	rc = bpf_map_lookup_elem(fd, key, vals);
	if (!rc)
		for (int c = 0; c < ft->ncpus; c++)
			*sum += vals[c];
	free(vals);
	return rc == -ENOENT ? 0 : rc;
}

int edge_flowtag_stats(struct edge_flowtag *ft, struct edge_flowtag_stats *out)
{
	uint64_t v[EDGE_STAT_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	for (__u32 i = 0; i < EDGE_STAT_MAX; i++) {
		rc = percpu_sum(ft, ft->fd[MAP_STATS], &i, &v[i]);
		if (rc)
			return rc;
	}
	out->packets = v[EDGE_STAT_PACKETS];
	out->flow_drops = v[EDGE_STAT_FLOW_DROPS];
	out->hello_drops = v[EDGE_STAT_HELLO_DROPS];
	out->hellos_parsed = v[EDGE_STAT_HELLOS_PARSED];
	out->hellos_odd = v[EDGE_STAT_HELLOS_ODD];
	out->hellos_split = v[EDGE_STAT_HELLOS_SPLIT];
	out->hellos_given_up = v[EDGE_STAT_HELLOS_GIVEN_UP];
	return 0;
}

int edge_flowtag_host_drops(struct edge_flowtag *ft, uint32_t host_hash, uint64_t *drops)
{
	__u32 key = host_hash;

	return percpu_sum(ft, ft->fd[MAP_HOST_STATS], &key, drops);
}

static void fill_ttl(struct edge_flowtag_entry *e, __u64 expires_ns, __u64 now)
{
	e->expired = now >= expires_ns;
	e->ttl_ms = e->expired ? 0 : (expires_ns - now + 999999) / 1000000;
}

/* The walks below are bounded: an entry evicted under the cursor makes
 * get_next_key start over, so a busy map could otherwise be walked forever. */
int edge_flowtag_list(struct edge_flowtag *ft, edge_flowtag_cb cb, void *arg)
{
	struct edge_flow_key fk, fnext;
	struct edge_flow_val fv;
	struct edge_offender_key ok, onext;
	struct edge_offender_val ov;
	struct edge_flowtag_entry e;
	__u64 now = edge_flowtag_now_ns();
	__u32 steps;
	int rc;

	steps = 2 * ft->max_entries[MAP_FLOWS];
	for (rc = bpf_map_get_next_key(ft->fd[MAP_FLOWS], NULL, &fnext); !rc && steps--;
	     rc = bpf_map_get_next_key(ft->fd[MAP_FLOWS], &fk, &fnext)) {
		fk = fnext;
		if (bpf_map_lookup_elem(ft->fd[MAP_FLOWS], &fk, &fv))
			continue; /* evicted meanwhile */
		memset(&e, 0, sizeof(e));
		e.kind = EDGE_FLOWTAG_FLOW;
		sockaddr_from_wire(&e.peer, fk.family, fk.saddr, fk.sport);
		sockaddr_from_wire(&e.local, fk.family, fk.daddr, fk.dport);
		e.host_hash = fv.host_hash;
		fill_ttl(&e, fv.expires_ns, now);
		rc = cb(&e, arg);
		if (rc)
			return rc;
	}
	if (rc && rc != -ENOENT)
		return rc;

	steps = 2 * ft->max_entries[MAP_OFFENDERS];
	for (rc = bpf_map_get_next_key(ft->fd[MAP_OFFENDERS], NULL, &onext); !rc && steps--;
	     rc = bpf_map_get_next_key(ft->fd[MAP_OFFENDERS], &ok, &onext)) {
		ok = onext;
		if (bpf_map_lookup_elem(ft->fd[MAP_OFFENDERS], &ok, &ov))
			continue;
		memset(&e, 0, sizeof(e));
		e.kind = EDGE_FLOWTAG_OFFENDER;
		sockaddr_from_wire(&e.peer, ok.family, ok.addr, 0);
		e.host_hash = ok.host_hash;
		fill_ttl(&e, ov.expires_ns, now);
		rc = cb(&e, arg);
		if (rc)
			return rc;
	}
	return rc == -ENOENT ? 0 : rc;
}

static int count_keys(struct edge_flowtag *ft, int m, void *key, void *next, size_t key_size,
		      unsigned int *n)
{
	__u32 steps = 2 * ft->max_entries[m];
	int rc;

	*n = 0;
	for (rc = bpf_map_get_next_key(ft->fd[m], NULL, next); !rc && steps--;
	     rc = bpf_map_get_next_key(ft->fd[m], key, next)) {
		memcpy(key, next, key_size);
		(*n)++;
	}
	if (*n > ft->max_entries[m])
		*n = ft->max_entries[m]; /* a walk that started over */
	return rc == -ENOENT || !rc ? 0 : rc;
}

int edge_flowtag_count(struct edge_flowtag *ft, unsigned int *flows, unsigned int *offenders)
{
	struct edge_flow_key fk, fnext;
	struct edge_offender_key ok, onext;
	int rc;

	rc = count_keys(ft, MAP_FLOWS, &fk, &fnext, sizeof(fk), flows);
	if (!rc)
		rc = count_keys(ft, MAP_OFFENDERS, &ok, &onext, sizeof(ok), offenders);
	return rc;
}

/* Deletes the keys of map m for which match() holds (all when NULL). */
static int clear_map(struct edge_flowtag *ft, int m, size_t key_size,
		     bool (*match)(const void *key, __u8 family, const __u8 *addr), __u8 family,
		     const __u8 *addr)
{
	__u32 max = ft->max_entries[m], n = 0;
	unsigned char *keys, *cur, *next;
	int rc;

	keys = calloc((size_t)max + 2, key_size);
	if (!keys)
		return -ENOMEM;
	cur = keys + (size_t)max * key_size;
	next = cur + key_size;
	for (rc = bpf_map_get_next_key(ft->fd[m], NULL, next); !rc && n < max;
	     rc = bpf_map_get_next_key(ft->fd[m], cur, next)) {
		memcpy(cur, next, key_size);
		if (!match || match(cur, family, addr))
			memcpy(keys + (size_t)n++ * key_size, cur, key_size);
	}
	if (rc == -ENOENT || n == max)
		rc = 0;
	for (__u32 i = 0; i < n && !rc; i++) {
		rc = bpf_map_delete_elem(ft->fd[m], keys + (size_t)i * key_size);
		if (rc == -ENOENT) /* expired into the LRU meanwhile */
			rc = 0;
	}
	free(keys);
	return rc;
}

static bool flow_from(const void *key, __u8 family, const __u8 *addr)
{
	const struct edge_flow_key *k = key;

	return k->family == family && !memcmp(k->saddr, addr, sizeof(k->saddr));
}

static bool offender_from(const void *key, __u8 family, const __u8 *addr)
{
	const struct edge_offender_key *k = key;

	return k->family == family && !memcmp(k->addr, addr, sizeof(k->addr));
}

int edge_flowtag_clear(struct edge_flowtag *ft, const struct sockaddr *source)
{
	__u8 family = 0, addr[16] = { 0 };
	__be16 port;
	int rc;

	if (source && wire_addr(source, &family, addr, &port))
		return -EAFNOSUPPORT;
	rc = clear_map(ft, MAP_FLOWS, sizeof(struct edge_flow_key), source ? flow_from : NULL,
		       family, addr);
	if (!rc)
		rc = clear_map(ft, MAP_OFFENDERS, sizeof(struct edge_offender_key),
			       source ? offender_from : NULL, family, addr);
	return rc;
}
