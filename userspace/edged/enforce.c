#include "enforce.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"
#include "flowtag.h"
#include "log.h"

static void add_iface(char names[][32], int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(names[i], name))
			return;
	if (*n < EDGE_MAX_BPF_IFACES && edge_flowtag_iface_ok(name))
		snprintf(names[(*n)++], 32, "%s", name);
}

static bool is_any(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

/* The interfaces that carry the listen addresses: the one that owns each
 * address, every supported interface that is up for a wildcard. */
static int choose_ifaces(const struct edge_config *cfg, char names[][32])
{
	struct ifaddrs *ifs, *i;
	int n = 0;

	if (getifaddrs(&ifs))
		return 0;
	for (int l = 0; l < cfg->n_listen; l++) {
		const struct sockaddr *la = (const struct sockaddr *)&cfg->listen[l].ss;

		for (i = ifs; i; i = i->ifa_next) {
			if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
				continue;
			if (is_any(la) || same_addr(la, i->ifa_addr) ||
			    ((i->ifa_flags & IFF_LOOPBACK) && la->sa_family == AF_INET &&
			     (ntohl(((const struct sockaddr_in *)la)->sin_addr.s_addr) >> 24) ==
				     127))
				add_iface(names, &n, i->ifa_name);
		}
	}
	freeifaddrs(ifs);
	return n;
}

int edge_enforce_open(struct edge_daemon *d, char *err, size_t errlen)
{
	const struct edge_config *cfg = &d->cfg;
	char names[EDGE_MAX_BPF_IFACES][32];
	const char *ptrs[EDGE_MAX_BPF_IFACES] = { 0 };
	uint16_t ports[EDGE_MAX_LISTEN] = { 0 };
	char why[512] = "";
	int n, rc;

	if (cfg->bpf_mode == EDGE_BPF_OFF) {
		snprintf(d->bpf_status, sizeof(d->bpf_status), "off (config)");
		return 0;
	}
	if (cfg->n_bpf_ifaces) {
		n = cfg->n_bpf_ifaces;
		memcpy(names, cfg->bpf_ifaces, sizeof(names));
	} else {
		n = choose_ifaces(cfg, names);
	}
	for (int i = 0; i < n; i++)
		ptrs[i] = names[i];
	for (int l = 0; l < cfg->n_listen; l++) {
		const struct sockaddr *la = (const struct sockaddr *)&cfg->listen[l].ss;

		ports[l] = ntohs(la->sa_family == AF_INET
					 ? ((const struct sockaddr_in *)la)->sin_port
					 : ((const struct sockaddr_in6 *)la)->sin6_port);
	}
	if (!n) {
		snprintf(why, sizeof(why),
			 "no Ethernet or loopback interface carries the listen"
			 " addresses (set [bpf] interfaces)");
		rc = -ENODEV;
	} else {
		rc = edge_flowtag_open(cfg->bpf_pin_dir, ptrs, n, ports, cfg->n_listen, &d->flowtag,
				       why, sizeof(why));
	}
	if (rc) {
		d->flowtag = NULL;
		if (cfg->bpf_mode == EDGE_BPF_ON) {
			snprintf(err, errlen,
				 "[bpf] mode = on, but eBPF enforcement cannot load: %s", why);
			return rc;
		}
		snprintf(d->bpf_status, sizeof(d->bpf_status), "unavailable: %s", why);
		pr_warn("eBPF enforcement unavailable (%s): block rules act in userspace only",
			why);
		return 0;
	}
	{
		size_t off = (size_t)snprintf(d->bpf_status, sizeof(d->bpf_status),
					      "on: tc ingress on");
		for (int i = 0; i < n && off < sizeof(d->bpf_status); i++)
			off += (size_t)snprintf(d->bpf_status + off, sizeof(d->bpf_status) - off,
						" %s", names[i]);
	}
	return 0;
}

void edge_enforce_tag(struct edge_conn *c)
{
	struct edge_daemon *d = c->w->d;
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	int rc;

	if (!d->flowtag || getsockname(c->side[EDGE_CLIENT].fd, (struct sockaddr *)&local, &len))
		return;
	rc = edge_flowtag_tag(d->flowtag, (struct sockaddr *)&c->peer_ss, (struct sockaddr *)&local,
			      c->host, (d->cfg.offender_ttl_ms + 999) / 1000);
	if (rc) {
		pr_warn("bpf tag peer=%s sni=%s: %s", c->peer, c->host, strerror(-rc));
		return;
	}
	c->w->c.flows_tagged++;
	pr_info("bpf tagged peer=%s sni=%s ttl=%us: its flow and its next ClientHellos for this"
		" hostname are dropped in the kernel",
		c->peer, c->host, (d->cfg.offender_ttl_ms + 999) / 1000);
}

void edge_enforce_close(struct edge_daemon *d)
{
	/* Keep the program attached and the maps pinned: tags and offenders stay
	 * enforced across a restart, which reuses them. */
	if (d->flowtag)
		edge_flowtag_close(d->flowtag, false);
	d->flowtag = NULL;
}
