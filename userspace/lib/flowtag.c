#include "flowtag.h"

#include <errno.h>
#include <string.h>

#include "../../bpf/edge_maps.h"
#include "../../bpf/sni_parse.h"

uint32_t edge_flowtag_host_hash(const char *host)
{
	return edge_sni_hash(host, (__u32)strlen(host));
}

/* The skeleton is generated into the build tree (bpftool gen skeleton, with
 * -I$(BUILD)). A build that has not generated it compiles only the hash above,
 * and whatever calls the rest fails to link, naming what is missing. */
#if defined(__has_include)
#if __has_include("edge.skel.h")
#define EDGE_FLOWTAG_HAVE_BPF 1
#endif
#endif

#ifdef EDGE_FLOWTAG_HAVE_BPF

#include <arpa/inet.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "edge.skel.h"
#include "flowtag_int.h"

/* libbpf reports through a process-wide print callback; while open() runs,
 * its first warning and the last line of a verifier log are kept here and end
 * up in err instead of on stderr. */
static __thread char libbpf_first[256], libbpf_verifier[256];

static void keep_line(char *dst, size_t len, const char *src, size_t n)
{
	while (n && (src[n - 1] == '\n' || src[n - 1] == ' '))
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

__attribute__((format(printf, 2, 0))) static int capture_libbpf(enum libbpf_print_level level,
								const char *fmt, va_list ap)
{
	static const char end_marker[] = "-- END PROG LOAD LOG --";
	const char *end, *line;
	char *msg;

	if (level != LIBBPF_WARN)
		return 0;
	/* A verifier log can run to megabytes and its end matters: on the heap. */
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	end = strstr(msg, end_marker);
	if (end) {
		/* The verifier's last line before its statistics says why it refused. */
		do {
			while (end > msg && end[-1] == '\n')
				end--;
			for (line = end; line > msg && line[-1] != '\n'; line--)
				;
			if (strncmp(line, "processed ", 10) &&
			    strncmp(line, "verification time", 17))
				break;
			end = line;
		} while (end > msg);
		keep_line(libbpf_verifier, sizeof(libbpf_verifier), line, (size_t)(end - line));
	} else if (!libbpf_first[0]) {
		line = strncmp(msg, "libbpf: ", 8) ? msg : msg + 8;
		keep_line(libbpf_first, sizeof(libbpf_first), line, strlen(line));
	}
	free(msg);
	return 0;
}

static const char *hint(int rc)
{
	if (rc == -EPERM)
		return " (needs root: CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)";
	return "";
}

/* Makes pin_dir, mounting bpffs on its parent when the parent is not one. */
static int make_pin_dir(const char *pin_dir, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	struct statfs st;
	char *slash;
	int rc;

	if (!statfs(pin_dir, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (snprintf(parent, sizeof(parent), "%s", pin_dir) >= (int)sizeof(parent)) {
		snprintf(err, errlen, "pin directory %s: path too long", pin_dir);
		return -ENAMETOOLONG;
	}
	slash = strrchr(parent, '/');
	if (!slash || slash == parent || !slash[1]) {
		snprintf(err, errlen, "pin directory %s: want an absolute path below a bpffs mount",
			 pin_dir);
		return -EINVAL;
	}
	*slash = '\0';
	if (statfs(parent, &st)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", parent, strerror(-rc));
		return rc;
	}
	if (st.f_type != BPF_FS_MAGIC && mount("bpf", parent, "bpf", 0, "mode=0700")) {
		rc = -errno;
		snprintf(err, errlen, "%s is not a bpffs and mounting one there failed: %s%s",
			 parent, strerror(-rc), hint(rc));
		return rc;
	}
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "mkdir %s: %s", pin_dir, strerror(-rc));
		return rc;
	}
	if (statfs(pin_dir, &st) || st.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen, "%s is not on a bpffs", pin_dir);
		return -ENOTDIR;
	}
	return 0;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len);
}

/* Points each map but sni_walks at its pin; removes a pin whose map has
 * another layout than this build's, so libbpf creates a fresh one instead of
 * failing. */
static int set_pins(struct edge_bpf *skel, const char *pin_dir, char *err, size_t errlen)
{
	struct bpf_map_info info;
	struct bpf_map *map;
	char path[PATH_MAX];
	int fd, rc;

	bpf_object__for_each_map(map, skel->obj) {
		/* A ClientHello walk lives for seconds and only with its program. */
		if (bpf_map__is_internal(map) || !strcmp(bpf_map__name(map), EDGE_MAP_SNI_WALKS))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map)) >=
		    (int)sizeof(path)) {
			snprintf(err, errlen, "pin path %s/%s: too long", pin_dir,
				 bpf_map__name(map));
			return -ENAMETOOLONG;
		}
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			rc = map_info(fd, &info);
			close(fd);
			if (rc || info.type != bpf_map__type(map) ||
			    info.key_size != bpf_map__key_size(map) ||
			    info.value_size != bpf_map__value_size(map) ||
			    info.max_entries != bpf_map__max_entries(map) ||
			    info.map_flags != bpf_map__map_flags(map)) {
				if (unlink(path)) {
					rc = -errno;
					snprintf(err, errlen, "removing stale pin %s: %s", path,
						 strerror(-rc));
					return rc;
				}
			}
		}
		rc = bpf_map__set_pin_path(map, path);
		if (rc) {
			snprintf(err, errlen, "pin path %s: %s", path, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void tc_detach(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = EDGE_TC_HANDLE, .priority = EDGE_TC_PRIORITY);

	bpf_tc_detach(&hook, &opts);
}

/* The program reads Ethernet frames: Ethernet devices (bridges, bonds, VLAN
 * devices, veth included) and loopback. Returns the ARPHRD_* type. */
static int link_type(const char *ifname)
{
	struct ifreq ifr;
	int fd, rc;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return -ENAMETOOLONG;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, ifname);
	rc = ioctl(fd, SIOCGIFHWADDR, &ifr) ? -errno : ifr.ifr_hwaddr.sa_family;
	close(fd);
	return rc;
}

bool edge_flowtag_iface_ok(const char *ifname)
{
	int t = link_type(ifname);

	return t == ARPHRD_ETHER || t == ARPHRD_LOOPBACK;
}

static int tc_attach(struct edge_flowtag *ft, const char *ifname, char *err, size_t errlen)
{
	int ifindex = (int)if_nametoindex(ifname), rc;

	if (!ifindex) {
		rc = -errno;
		snprintf(err, errlen, "interface %s: %s", ifname, strerror(-rc));
		return rc;
	}
	rc = link_type(ifname);
	if (rc != ARPHRD_ETHER && rc != ARPHRD_LOOPBACK) {
		if (rc < 0)
			snprintf(err, errlen, "interface %s: link type: %s", ifname, strerror(-rc));
		else
			snprintf(err, errlen,
				 "interface %s has link type %d, not Ethernet or loopback: the tc"
				 " program reads Ethernet frames (WireGuard, tun and other L3"
				 " devices are not supported)",
				 ifname, rc);
		return rc < 0 ? rc : -EOPNOTSUPP;
	}
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = EDGE_TC_HANDLE, .priority = EDGE_TC_PRIORITY,
		    .prog_fd = bpf_program__fd(ft->skel->progs.edge_ingress),
		    .flags = BPF_TC_F_REPLACE);

	rc = bpf_tc_hook_create(&hook); /* the clsact qdisc; -EEXIST when it is there */
	if (rc && rc != -EEXIST) {
		snprintf(err, errlen, "adding the clsact qdisc to %s: %s%s", ifname, strerror(-rc),
			 hint(rc));
		return rc;
	}
	rc = bpf_tc_attach(&hook, &opts);
	if (rc) {
		snprintf(err, errlen, "attaching the tc ingress filter to %s: %s%s", ifname,
			 strerror(-rc), hint(rc));
		return rc;
	}
	ft->ifindex[ft->n_ifs++] = ifindex;
	return 0;
}

/* listen_ports becomes exactly ports: stale ones from an earlier run go. */
static int set_ports(struct edge_flowtag *ft, const uint16_t *ports, int n_ports, char *err,
		     size_t errlen)
{
	__u16 key, next, keep[EDGE_LISTEN_PORTS_MAX];
	__u8 one = 1;
	int rc, n = 0;

	if (n_ports < 0 || n_ports > EDGE_LISTEN_PORTS_MAX) {
		snprintf(err, errlen, "%d listening ports: at most %d", n_ports,
			 EDGE_LISTEN_PORTS_MAX);
		return -E2BIG;
	}
	/* Collect first: deleting while walking restarts the walk. */
	rc = bpf_map_get_next_key(ft->fd[MAP_PORTS], NULL, &next);
	while (!rc && n < EDGE_LISTEN_PORTS_MAX) {
		keep[n++] = next;
		key = next;
		rc = bpf_map_get_next_key(ft->fd[MAP_PORTS], &key, &next);
	}
	for (int i = 0; i < n; i++) {
		bool wanted = false;

		for (int j = 0; j < n_ports; j++)
			wanted |= ports[j] == keep[i];
		if (!wanted)
			bpf_map_delete_elem(ft->fd[MAP_PORTS], &keep[i]);
	}
	for (int j = 0; j < n_ports; j++) {
		key = ports[j];
		rc = bpf_map_update_elem(ft->fd[MAP_PORTS], &key, &one, BPF_ANY);
		if (rc) {
			snprintf(err, errlen, "listen_ports: adding port %u: %s", key,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int fill_max_entries(struct edge_flowtag *ft)
{
	struct bpf_map_info info;
	int rc;

	for (int i = 0; i < MAP_COUNT; i++) {
		rc = map_info(ft->fd[i], &info);
		if (rc)
			return rc;
		ft->max_entries[i] = info.max_entries;
	}
	return 0;
}

int edge_flowtag_open(const char *pin_dir, const char *const *ifnames, int n_ifnames,
		      const uint16_t *ports, int n_ports, struct edge_flowtag **out, char *err,
		      size_t errlen)
{
	libbpf_print_fn_t old_print;
	struct edge_flowtag *ft;
	int rc;

	*out = NULL;
	if (!pin_dir)
		pin_dir = EDGE_FLOWTAG_PIN_DIR;
	if (n_ifnames < 0 || (n_ifnames && !ifnames)) {
		snprintf(err, errlen, "no interfaces given");
		return -EINVAL;
	}
	ft = calloc(1, sizeof(*ft));
	if (ft)
		ft->ifindex = calloc(n_ifnames ? (size_t)n_ifnames : 1, sizeof(int));
	if (!ft || !ft->ifindex) {
		free(ft);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < MAP_COUNT; i++)
		ft->fd[i] = -1;
	old_print = libbpf_set_print(capture_libbpf);
	libbpf_first[0] = libbpf_verifier[0] = '\0';

	rc = make_pin_dir(pin_dir, err, errlen);
	if (rc)
		goto fail;
	ft->skel = edge_bpf__open();
	if (!ft->skel) {
		rc = -errno;
		snprintf(err, errlen, "opening the BPF object: %s", strerror(-rc));
		goto fail;
	}
	rc = set_pins(ft->skel, pin_dir, err, errlen);
	if (rc)
		goto fail;
	rc = edge_bpf__load(ft->skel);
	if (rc) {
		snprintf(err, errlen, "loading the BPF program: %s%s%s%s%s%s", strerror(-rc),
			 hint(rc), libbpf_first[0] ? "; libbpf: " : "", libbpf_first,
			 libbpf_verifier[0] ? "; the verifier refused it: " : "", libbpf_verifier);
		goto fail;
	}
	ft->fd[MAP_FLOWS] = bpf_map__fd(ft->skel->maps.failed_flows);
	ft->fd[MAP_OFFENDERS] = bpf_map__fd(ft->skel->maps.offenders);
	ft->fd[MAP_PORTS] = bpf_map__fd(ft->skel->maps.listen_ports);
	ft->fd[MAP_STATS] = bpf_map__fd(ft->skel->maps.stats);
	ft->fd[MAP_HOST_STATS] = bpf_map__fd(ft->skel->maps.host_stats);
	ft->ncpus = libbpf_num_possible_cpus();
	if (ft->ncpus <= 0) {
		rc = ft->ncpus ? ft->ncpus : -EINVAL;
		snprintf(err, errlen, "counting the possible CPUs: %s", strerror(-rc));
		goto fail;
	}
	rc = fill_max_entries(ft);
	if (rc) {
		snprintf(err, errlen, "reading the map sizes: %s", strerror(-rc));
		goto fail;
	}
	rc = set_ports(ft, ports, n_ports, err, errlen);
	if (rc)
		goto fail;
	for (int i = 0; i < n_ifnames; i++) {
		rc = tc_attach(ft, ifnames[i], err, errlen);
		if (rc)
			goto fail;
	}
	libbpf_set_print(old_print);
	*out = ft;
	return 0;

fail:
	libbpf_set_print(old_print);
	edge_flowtag_close(ft, true);
	return rc;
}

int edge_flowtag_open_pinned(const char *pin_dir, struct edge_flowtag **out, char *err,
			     size_t errlen)
{
	struct bpf_map_info info;
	struct edge_flowtag *ft;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	if (!pin_dir)
		pin_dir = EDGE_FLOWTAG_PIN_DIR;
	ft = calloc(1, sizeof(*ft));
	if (!ft) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < MAP_COUNT; i++)
		ft->fd[i] = -1;
	for (int i = 0; i < MAP_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_defs[i].name);
		ft->fd[i] = bpf_obj_get(path);
		if (ft->fd[i] < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s%s", path, strerror(-rc),
				 rc == -ENOENT
					 ? " (nothing pinned: has mtls-edged run with [bpf] mode"
					   " on or auto?)"
					 : hint(rc));
			goto fail;
		}
		rc = map_info(ft->fd[i], &info);
		if (rc) {
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			goto fail;
		}
		if (info.key_size != map_defs[i].key_size ||
		    info.value_size != map_defs[i].value_size) {
			snprintf(err, errlen,
				 "%s: key/value sizes %u/%u, this build expects %u/%u (a daemon of"
				 " another version pinned it; restart mtls-edged)",
				 path, info.key_size, info.value_size, map_defs[i].key_size,
				 map_defs[i].value_size);
			rc = -EPROTO;
			goto fail;
		}
		ft->max_entries[i] = info.max_entries;
	}
	ft->ncpus = libbpf_num_possible_cpus();
	if (ft->ncpus <= 0) {
		rc = ft->ncpus ? ft->ncpus : -EINVAL;
		snprintf(err, errlen, "counting the possible CPUs: %s", strerror(-rc));
		goto fail;
	}
	*out = ft;
	return 0;

fail:
	edge_flowtag_close(ft, false);
	return rc;
}

void edge_flowtag_close(struct edge_flowtag *ft, bool detach)
{
	if (!ft)
		return;
	if (detach)
		for (int i = ft->n_ifs - 1; i >= 0; i--)
			tc_detach(ft->ifindex[i]);
	if (ft->skel)
		edge_bpf__destroy(ft->skel);
	else
		for (int i = 0; i < MAP_COUNT; i++)
			if (ft->fd[i] >= 0)
				close(ft->fd[i]);
	free(ft->ifindex);
	free(ft);
}

int edge_flowtag_unpin(const char *pin_dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	if (!pin_dir)
		pin_dir = EDGE_FLOWTAG_PIN_DIR;
	for (int i = 0; i < MAP_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_defs[i].name);
		if (unlink(path) && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "unlink %s: %s", path, strerror(-rc));
			return rc;
		}
	}
	if (rmdir(pin_dir) && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "rmdir %s: %s", pin_dir, strerror(-rc));
		return rc;
	}
	return 0;
}

#endif /* EDGE_FLOWTAG_HAVE_BPF */
