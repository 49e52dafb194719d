#!/usr/bin/env bash
# Runs one command in a qemu guest that boots Debian's own kernel (which has kTLS), and exits with
# the command's exit status.
#
#   tests/vm/run-in-guest.sh [--timeout SECS] [--mem MIB] [--quiet] [--verbose] [--bzimage]
#                              -- CMD [ARGS...]
#
# The guest sees the host's root read-only (virtio-9p) at the same paths, so CMD is a host path
# (a binary built in build/, say) and runs as root with the repository as its working directory;
# /tmp and /run are fresh tmpfs, writable. Nothing in the guest reaches a network but lo.
# Its stdout and stderr both come out on this script's stdout, as text lines, while it runs; the
# guest's own lines ("vm: ...": modules loaded, timings) go to stderr (--quiet: only on failure;
# --verbose: the whole console, kernel and firmware included). The full console of the last run is
# kept in build/vm/last-console.log.
#
# Exit status: CMD's; 124 when the guest outlives --timeout (default 600 s: qemu, and only it, is
# killed); 125 when the guest never ran CMD or never reported its status (set-up failed, the
# kernel panicked, qemu failed to start: the console tail says which).
# qemu runs under TCG (software emulation) with -cpu max, never KVM: this host's /dev/kvm is
# KVM-PVM, which cannot run an ordinary kernel. The kernel is Debian's (build/vm/kver names it),
# booted from its unpacked ELF build/vm/vmlinux (PVH entry) when setup.sh could make it, which
# saves the ~5 s of decompressing /boot/vmlinuz under emulation; --bzimage boots /boot/vmlinuz-*.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VMDIR=$REPO/build/vm
case $REPO in
*[[:space:],]*)
	echo "run-in-guest: the repository path '$REPO' has a space or a comma; qemu's -fsdev and the" \
		"kernel command line cannot carry it" >&2
	exit 125 ;;
esac

usage() {
	echo "usage: tests/vm/run-in-guest.sh [--timeout SECS] [--mem MIB] [--quiet] [--verbose]" \
		"[--bzimage] -- CMD [ARGS...]" >&2
	exit 2
}

timeout=600 mem=1024 quiet=0 verbose=0 bzimage=0
while (($#)); do
	case $1 in
	--timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
	--timeout=*) timeout=${1#*=}; shift ;;
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--mem=*) mem=${1#*=}; shift ;;
	-q | --quiet) quiet=1; shift ;;
	-v | --verbose) verbose=1; shift ;;
	--bzimage) bzimage=1; shift ;;
	-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "run-in-guest: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
(($#)) || usage
if ! [[ $timeout =~ ^[1-9][0-9]*$ ]]; then
	echo "run-in-guest: --timeout wants whole seconds, not '$timeout'" >&2
	exit 2
fi
if ! [[ $mem =~ ^[1-9][0-9]*$ ]]; then
	echo "run-in-guest: --mem wants MiB, not '$mem'" >&2
	exit 2
fi

note() { ((quiet)) || echo "vm: $*" >&2; }
fail() {
	echo "run-in-guest: $*" >&2
	exit 125
}

# Packages and initramfs (a no-op when both are in place).
"$REPO/tests/vm/setup.sh" >&2 || fail "tests/vm/setup.sh failed: the guest cannot be started"
kver=$(cat "$VMDIR/kver") || fail "no $VMDIR/kver (tests/vm/setup.sh should have written it)"
kernel=/boot/vmlinuz-$kver
if ((!bzimage)) && [ -f "$VMDIR/vmlinux" ]; then
	kernel=$VMDIR/vmlinux # the same kernel, unpacked: PVH entry, no decompression (setup.sh)
fi
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (package qemu-system-x86)"

# The command travels as a script on the host root; the guest copies it in before covering /tmp.
# The kernel command line splits on blanks, so its path must have none.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/edge-vm.XXXXXX") || fail "cannot make a temp dir"
if [[ $tmp =~ [[:space:]] ]]; then
	rmdir "$tmp"
	tmp=$(mktemp -d /tmp/edge-vm.XXXXXX) || fail "cannot make a temp dir"
fi
qpid='' spid='' fpid=''
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	[ -n "$qpid" ] && kill -KILL "$qpid" 2>/dev/null
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$fpid" ] && wait "$fpid" 2>/dev/null # ends at qemu's end of output
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

{
	echo '#!/bin/bash'
	echo 'exec 2>&1'
	printf 'cd %q || exit 125\n' "$REPO"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$tmp/cmd"
chmod 0644 "$tmp/cmd"

# cryptomgr.notests: the crypto self-tests at module load cost 2-3 s under emulation; kTLS in
# the guest is still checked end to end (ktls_probe compares every byte, and in TLS 1.3 one side
# of each direction is OpenSSL's own code).
# shellcheck disable=SC2054 # the commas belong to qemu's option syntax
qemu=(qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m "$mem"
	-nographic -no-reboot -nic none
	-kernel "$kernel" -initrd "$VMDIR/initramfs.cpio.gz"
	-fsdev local,id=r,path=/,readonly=on,security_model=none,multidevs=remap
	-device virtio-9p-pci,fsdev=r,mount_tag=hostroot
	-fsdev "local,id=repo,path=$REPO,readonly=on,security_model=none,multidevs=remap"
	-device virtio-9p-pci,fsdev=repo,mount_tag=repo
	-append "console=ttyS0 quiet panic=-1 cryptomgr.notests edge.cmdfile=$tmp/cmd edge.repo=$REPO")

# usec: $EPOCHREALTIME as whole microseconds. secs US: microseconds as seconds, one decimal.
usec() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

# The console filter: firmware and boot lines are logged (and the guest's "vm:" lines shown on
# stderr) up to @@GUEST-START@@, the command's lines go to stdout up to @@GUEST-EXIT=N@@.
filter() {
	local line state=boot esc=$'\e' re_exit='^(.*)@@GUEST-EXIT=([0-9]+)@@'
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$tmp/console.log"
		case $state in
		boot)
			# SeaBIOS clears the screen with escape sequences that share a line with ours.
			while [[ $line =~ ^(.*)$esc(\[[0-9\;?]*[A-Za-z]|c)(.*)$ ]]; do
				line=${BASH_REMATCH[1]}${BASH_REMATCH[3]}
			done
			if [[ $line == *@@GUEST-START@@* ]]; then
				state=cmd
				usec >"$tmp/started"
			elif ((verbose)); then
				printf '%s\n' "$line" >&2
			elif ((!quiet)) && [[ $line == *"vm: "* ]]; then
				# (With "quiet", firmware text without a newline may come first.)
				printf 'vm: %s\n' "${line#*vm: }" >&2
			fi
			;;
		cmd)
			if [[ $line =~ $re_exit ]]; then
				[ -n "${BASH_REMATCH[1]}" ] && printf '%s\n' "${BASH_REMATCH[1]}"
				echo "${BASH_REMATCH[2]}" >"$tmp/status"
				state=finished
			else
				printf '%s\n' "$line"
			fi
			;;
		finished)
			((verbose)) && printf '%s\n' "$line" >&2
			;;
		esac
	done
}

mkfifo "$tmp/console" || fail "cannot make a fifo in $tmp"
: >"$tmp/console.log"
t0=$(usec)
"${qemu[@]}" </dev/null >"$tmp/console" 2>"$tmp/qemu.err" &
qpid=$!
filter <"$tmp/console" &
fpid=$!
sleep "$timeout" &
spid=$!

# Whichever ends first: qemu, or the time limit.
qemu_pid=$qpid
ended=
wait -n -p ended "$qpid" "$spid"
qrc=$?
if [ "$ended" != "$qpid" ]; then
	timed_out=1
	kill -TERM "$qpid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
else
	timed_out=0
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
fi
qpid='' spid=''
wait "$fpid"
fpid=''
t1=$(usec)
cp "$tmp/console.log" "$VMDIR/last-console.log" 2>/dev/null

boot=
[ -f "$tmp/started" ] && boot=$(($(cat "$tmp/started") - t0))
tail_console() {
	echo "run-in-guest: last console lines (all in $VMDIR/last-console.log):" >&2
	sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' "$tmp/console.log" | tail -n 25 | sed 's/^/  | /' >&2
	[ -s "$tmp/qemu.err" ] && sed 's/^/  qemu: /' "$tmp/qemu.err" >&2
}

if ((timed_out)); then
	echo "run-in-guest: timed out after ${timeout}s; killed qemu (pid $qemu_pid)" >&2
	((quiet)) || tail_console
	exit 124
fi
if [ ! -f "$tmp/status" ]; then
	if [ -z "$boot" ]; then
		echo "run-in-guest: the guest never started the command (qemu exit $qrc)" >&2
	else
		echo "run-in-guest: the command never reported its exit status (qemu exit $qrc)" >&2
	fi
	tail_console
	exit 125
fi
status=$(cat "$tmp/status")
note "exit $status; boot $(secs "$boot") s, command $(secs $((t1 - t0 - boot))) s," \
	"total $(secs $((t1 - t0))) s"
exit "$status"
