#!/usr/bin/env bash
# bench/ktls-guest.sh: the bench's kTLS section, taken in the kTLS guest (tests/vm: qemu TCG
# booting Debian's 6.1 kernel, CONFIG_TLS=m, over this host's root file system), since this
# host's kernel has no kTLS.
#
# Usage: bench/ktls-guest.sh [--runs N] [--duration S] [--timeout S] [--out FILE] [--append REPORT]
#
# Runs `bench/run.sh --ktls --only ka64k,ka1m,ktls` in the guest: the 64 KiB and 1 MiB keep-alive
# cells on mtls-edged's kTLS splice path, its userspace relay, nginx with kTLS and nginx, side by
# side in the same runs. The guest is emulated: only the ratios mean something. Writes the
# guest's whole report to FILE (default bench/results/ktls-guest-<UTC time>.md); with --append,
# also appends its kTLS section to REPORT (make bench does this to the run's report). 3 runs of
# 5 s by default; about 15-25 minutes on a quiet 2-core machine. Exits non-zero, saying why,
# when the guest cannot run or the bench fails in it (its console is in build/vm/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
RUNS=3 DUR=5 TIMEOUT=2400 OUT='' APPEND=''
while [ $# -gt 0 ]; do
	case $1 in
	--runs) RUNS=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--timeout) TIMEOUT=$2; shift ;;
	--out) OUT=$2; shift ;;
	--append) APPEND=$2; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "ktls-guest: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ $RUNS =~ ^[1-9]$ && $DUR =~ ^[1-9][0-9]?$ && $TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
	{ echo "ktls-guest: --runs 1-9, --duration 1-99, --timeout seconds" >&2; exit 2; }
say() { printf 'ktls-guest: %s\n' "$*" >&2; }

for b in mtls-edged mtls-edgectl edge-upstream; do
	[ -x "build/$b" ] || { say "build/$b is missing: run make all"; exit 1; }
done
# The guest (packages, kernel, initramfs: quiet when all is there), and the bench's helpers,
# built here: the guest sees the repository read-only.
tests/vm/setup.sh >&2 || { say "the kTLS guest could not be set up (tests/vm/setup.sh)"; exit 1; }
bench/run.sh --build-only >&2 || { say "bench/run.sh --build-only failed"; exit 1; }

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${OUT:-bench/results/ktls-guest-$STAMP.md}
mkdir -p "$(dirname "$OUT")" build/vm
LOG=build/vm/ktls-bench.log
say "booting the guest: bench/run.sh --ktls --only ka64k,ka1m,ktls --runs $RUNS --duration $DUR (log: $LOG)"
rc=0
# The guest's 2 vCPUs are CPU 0 (the servers) and 1 (the clients), as on the host.
# shellcheck disable=SC2016 # the inner shell expands them
tests/vm/run-in-guest.sh --timeout "$TIMEOUT" --mem 2048 -- bash -c '
	set -o pipefail
	KTLS_GUEST=1 bench/run.sh --ktls --only ka64k,ka1m,ktls --runs "$1" --duration "$2" \
		--out /tmp/ktls-bench >&2 || exit $?
	echo "@@REPORT-BEGIN@@"
	cat /tmp/ktls-bench/20*.md
	echo "@@REPORT-END@@"' _ "$RUNS" "$DUR" >"$LOG" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
	say "the guest run failed (exit $rc): $(grep -E 'bench: error|^vm:|GUEST' "$LOG" | tail -3 | tr '\n' ' ')"
	exit 1
fi
sed -n '/^@@REPORT-BEGIN@@$/,/^@@REPORT-END@@$/p' "$LOG" | sed '1d;$d' >"$OUT"
grep -q '^## The kTLS path' "$OUT" || { say "the guest's report has no kTLS section: $OUT, $LOG"; exit 1; }
say "the guest's report: $OUT"
if [ -n "$APPEND" ]; then
	{
		echo
		sed -n '/^## The kTLS path/,/^## /p' "$OUT" | sed '$d' |
			sed "1s/.*/## The kTLS path (in the kTLS guest: bench\/ktls-guest.sh, $RUNS runs of $DUR s)/"
		echo "The guest's whole report (its other cells cover this section's runs only): \`$(basename "$OUT")\`."
		echo
	} >>"$APPEND"
	say "appended its kTLS section to $APPEND"
fi
