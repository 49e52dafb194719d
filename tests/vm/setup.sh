#!/usr/bin/env bash
# Prepares the qemu guest that tests kTLS (the host kernel has none): installs what it needs and
# builds build/vm/initramfs.cpio.gz. Idempotent and quiet when everything is in place.
#
#   tests/vm/setup.sh [EXTRA-PACKAGE...]
#
# Packages (Debian 12): qemu-system-x86 linux-image-amd64 busybox-static kmod xz-utils, and any
# EXTRA ones (ktls-smoke.sh adds what the probe builds with). Missing ones are installed with
# apt-get, which needs root; `apt-get update` runs first only when the lists are over a day old.
# The initramfs is rebuilt when it is missing, older than this script, tests/vm/init or the
# kernel, or made for another kernel than the newest (generic) Debian 6.1 one installed. build/vm/kver names that kernel;
# build/vm/vmlinux is its uncompressed ELF, which run-in-guest.sh boots (PVH entry) in place of
# /boot/vmlinuz-$(cat build/vm/kver) to save the decompression.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VMDIR=$REPO/build/vm
INITRAMFS=$VMDIR/initramfs.cpio.gz
INIT_SRC=$REPO/tests/vm/init
# In this order: insmod does not resolve dependencies.
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache
	9pnet 9pnet_virtio 9p)
PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static kmod xz-utils)

say() { echo "vm-setup: $*"; }
die() {
	echo "vm-setup: error: $*" >&2
	exit 1
}

case ${1:-} in
-h | --help)
	awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
	exit 0
	;;
esac
PACKAGES+=("$@")

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# --- packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" -ne 0 ]; then
		die "missing packages: ${missing[*]}
  install them as root: apt-get -o DPkg::Lock::Timeout=300 install --no-install-recommends ${missing[*]}
  (or run this script as root)"
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Another apt (unattended-upgrades, tools/deps.sh) may hold the dpkg lock: wait for it.
	say "waiting up to 10 minutes for the dpkg lock if another apt holds it"
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
		say "package lists are absent or older than a day: apt-get update"
		apt-get -o DPkg::Lock::Timeout=600 update -q
	fi
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# --- the guest kernel -----------------------------------------------------------------------
# The newest generic Debian 6.1 kernel (not -cloud or -rt) with its image in /boot and its
# module tree.
kver=
for d in $(printf '%s\n' /lib/modules/6.1* | sort -V); do
	[ -d "$d" ] || continue
	v=${d#/lib/modules/}
	[[ $v == *-cloud-* || $v == *-rt-* ]] && continue
	[ -f "/boot/vmlinuz-$v" ] && kver=$v
done
[ -n "$kver" ] ||
	die "no Debian 6.1 kernel: need /boot/vmlinuz-6.1* and /lib/modules/6.1* (package linux-image-amd64)"
[ -r "/boot/vmlinuz-$kver" ] ||
	die "/boot/vmlinuz-$kver is not readable by $(id -un) (qemu reads it; run as root or chmod a+r it)"
moddir=/lib/modules/$kver
[ -f "$moddir/kernel/net/tls/tls.ko" ] || compgen -G "$moddir/kernel/net/tls/tls.ko.*" >/dev/null ||
	die "$moddir has no net/tls/tls.ko: this kernel cannot test kTLS"
[ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static)"
file_is_static() { ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if command -v readelf >/dev/null && ! file_is_static /bin/busybox; then
	die "/bin/busybox is dynamically linked: install busybox-static (not busybox)"
fi
[ -x /usr/sbin/modprobe ] || die "/usr/sbin/modprobe missing (package kmod); the guest loads tls with it"

# --- the kernel, uncompressed ---------------------------------------------------------------
# /boot/vmlinuz is a bzImage: under TCG, SeaBIOS's real-mode entry and the kernel's own xz
# decompression cost about 5 s a boot. Its payload is the kernel's ELF, which has a PVH entry
# note (CONFIG_PVH=y), so qemu -kernel can start it directly; run-in-guest.sh boots
# build/vm/vmlinux when it is there and the bzImage otherwise (or with --bzimage).
vmlinux=$VMDIR/vmlinux
trap 'rm -f "$vmlinux.$$"' EXIT
extract_vmlinux() {
	local img=/boot/vmlinuz-$kver hdr sects off len magic start
	grep -q '^CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null || {
		say "note: /boot/config-$kver lacks CONFIG_PVH=y; the guest boots the bzImage"
		return 1
	}
	hdr=$(dd if="$img" bs=1 skip=514 count=4 2>/dev/null)
	[ "$hdr" = HdrS ] || { say "note: $img is not a bzImage; the guest boots it as it is"; return 1; }
	sects=$(od -An -tu1 -j497 -N1 "$img" | tr -d ' ')
	((sects)) || sects=4
	read -r off len < <(od -An -tu4 -j584 -N8 "$img")
	start=$(((sects + 1) * 512 + off))
	magic=$(od -An -tx1 -j"$start" -N4 "$img" | tr -d ' ')
	mkdir -p "$VMDIR"
	payload() { dd if="$img" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$len" status=none; }
	case $magic in
	fd377a58)
		command -v xz >/dev/null || {
			say "note: xz missing (package xz-utils); the guest boots the bzImage"
			return 1
		}
		payload | xz -dc --single-stream >"$vmlinux.$$" ;;
	1f8b*) payload | gzip -dc >"$vmlinux.$$" 2>/dev/null ;;
	28b52ffd)
		command -v zstd >/dev/null || {
			say "note: zstd missing (package zstd); the guest boots the bzImage"
			return 1
		}
		payload | zstd -qdc >"$vmlinux.$$" 2>/dev/null ;;
	*) say "note: $img has a payload compressed as $magic, not known here; the guest boots the bzImage"
		return 1 ;;
	esac
	if [ "$(od -An -tx1 -N4 "$vmlinux.$$" 2>/dev/null | tr -d ' ')" != 7f454c46 ]; then
		rm -f "$vmlinux.$$"
		say "note: could not unpack the kernel's ELF from $img; the guest boots the bzImage"
		return 1
	fi
	mv "$vmlinux.$$" "$vmlinux"
}
if [ ! -f "$vmlinux" ] || [ "$vmlinux" -ot "/boot/vmlinuz-$kver" ] ||
	[ "$(cat "$VMDIR/kver" 2>/dev/null)" != "$kver" ]; then
	rm -f "$vmlinux"
	extract_vmlinux && say "unpacked /boot/vmlinuz-$kver to $vmlinux for a direct (PVH) boot"
fi

# --- the initramfs --------------------------------------------------------------------------
fresh=1
if [ ! -f "$INITRAMFS" ] || [ "$INITRAMFS" -ot "${BASH_SOURCE[0]}" ] ||
	[ "$INITRAMFS" -ot "$INIT_SRC" ] || [ "$INITRAMFS" -ot "/boot/vmlinuz-$kver" ] ||
	[ "$(cat "$VMDIR/kver" 2>/dev/null)" != "$kver" ]; then
	fresh=0
fi
if ((fresh)); then
	exit 0
fi

say "building $INITRAMFS for kernel $kver"
mkdir -p "$VMDIR"
stage=$(mktemp -d "$VMDIR/initramfs.XXXXXX")
trap 'rm -rf "$stage" "$stage.cpio.gz" "$vmlinux.$$"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,newroot,modules,etc/edge-vm}
cp /bin/busybox "$stage/bin/busybox"
install -m 0755 "$INIT_SRC" "$stage/init"
echo "$kver" >"$stage/etc/edge-vm/kver"

# Each module by its file name under the kernel's tree ("_" and "-" are the same to modprobe),
# decompressed if the tree ships it compressed; a built-in one is left out.
builtin=$moddir/modules.builtin
unpack() { # SRC DST
	case $1 in
	*.ko) cp "$1" "$2" ;;
	*.ko.xz) command -v xz >/dev/null || die "$1 is xz-compressed and xz is missing (package xz-utils)"
		xz -dc "$1" >"$2" ;;
	*.ko.zst) command -v zstd >/dev/null || die "$1 is zstd-compressed and zstd is missing (package zstd)"
		zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) die "do not know how to unpack $1" ;;
	esac
}
absent=()
: >"$stage/etc/edge-vm/modules"
for m in "${MODULES[@]}"; do
	pat=${m//[-_]/[-_]}
	if [ -f "$builtin" ] && grep -Eq "/${pat}\.ko\$" "$builtin"; then
		continue
	fi
	src=$(find "$moddir/kernel" -regextype posix-extended \
		-regex ".*/${pat}\.ko(\.xz|\.zst|\.gz)?" -print -quit)
	if [ -z "$src" ]; then
		absent+=("$m")
		continue
	fi
	unpack "$src" "$stage/modules/$m.ko"
	echo "$m" >>"$stage/etc/edge-vm/modules"
done
((${#absent[@]} == 0)) || die "kernel $kver lacks the modules: ${absent[*]} (looked under $moddir/kernel)"

# newc archive, owned by root whoever builds it; busybox's cpio if the system has none.
if command -v cpio >/dev/null; then
	cpio_out() { cpio --quiet -o -H newc -R 0:0; }
else
	cpio_out() { /bin/busybox cpio -o -H newc; }
fi
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio_out) | gzip -9n >"$stage.cpio.gz"
mv "$stage.cpio.gz" "$INITRAMFS"
echo "$kver" >"$VMDIR/kver"
say "initramfs ready: $(du -h "$INITRAMFS" | cut -f1), modules: $(tr '\n' ' ' <"$stage/etc/edge-vm/modules")"
