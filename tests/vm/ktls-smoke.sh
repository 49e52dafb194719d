#!/usr/bin/env bash
# kTLS smoke test: builds build/ktls_probe (tests/ktls/ktls_probe.c) and runs it on the host and
# in the qemu guest (Debian's kernel, which has kTLS). Prints TAP; the probe's output is shown
# as "# " lines.
#
#   tests/vm/ktls-smoke.sh
#
# 1  the probe builds (installs gcc, libc6-dev, libssl-dev, pkg-config if missing; root)
# 2  on the host it exits 77 and says ktls_ulp=no (this kernel has no CONFIG_TLS; if a host ever
#    has kTLS, exit 0 with ktls_ulp=yes passes too)
# 3  in the guest it exits 0: TLS 1.2 offloaded both ways and TLS 1.3 sending, for AES-128-GCM,
#    AES-256-GCM and ChaCha20-Poly1305, 1 MiB each way intact (never a skip: this is where the
#    suite runs the kTLS path)
# GUEST_TIMEOUT (seconds, default 300) bounds the guest run.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 2
case ${1:-} in
-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac

PROBE=build/ktls_probe
SRC=tests/ktls/ktls_probe.c
GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
mkdir -p build
out=$(mktemp "${TMPDIR:-/tmp}/ktls-smoke.XXXXXX") || exit 2
trap 'rm -f "$out" "$PROBE.tmp"' EXIT
failed=0

# show: stdin as TAP comments, line by line as it comes.
show() { sed -u 's/^/# /'; }
result() { # OK DESCRIPTION
	if [ "$1" = ok ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
	fi
}

echo "1..3"

n=1
# The guest's packages and initramfs, and what the probe builds with; then the probe.
build() {
	local flags
	tests/vm/setup.sh gcc libc6-dev libssl-dev pkg-config || return 1
	flags=$(pkg-config --cflags --libs openssl) || return 1
	# shellcheck disable=SC2086 # pkg-config prints a word list
	cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wformat=2 -Wshadow -o "$PROBE.tmp" "$SRC" \
		$flags && mv "$PROBE.tmp" "$PROBE"
}
if build 2>&1 | show; [ "${PIPESTATUS[0]}" -eq 0 ]; then
	result ok "ktls_probe builds"
else
	result fail "ktls_probe builds (see above)"
	for n in 2 3; do
		echo "not ok $n - not run: no probe"
	done
	exit 1
fi

n=2
"$PROBE" 2>&1 | tee "$out" | show
rc=${PIPESTATUS[0]}
if ((rc == 77)) && grep -q '^ktls_ulp=no' "$out"; then
	result ok "host ($(uname -r)): no kTLS, exit 77; the userspace fallback moves the bytes"
elif ((rc == 0)) && grep -q '^ktls_ulp=yes' "$out"; then
	result ok "host ($(uname -r)) has kTLS: exit 0, offload as expected"
else
	result fail "host ($(uname -r)): exit $rc, want 77 (no kTLS) or 0 (kTLS as expected)"
fi

n=3
tests/vm/run-in-guest.sh --timeout "$GUEST_TIMEOUT" -- "$PROBE" 2>&1 | show
rc=${PIPESTATUS[0]}
kver=$(cat build/vm/kver 2>/dev/null)
case $rc in
0) result ok "guest (${kver:-?}): kTLS as expected" ;;
77) result fail "guest (${kver:-?}): the probe found no kTLS (exit 77) in a kernel that has it" ;;
124) result fail "guest (${kver:-?}): timed out after ${GUEST_TIMEOUT}s" ;;
125) result fail "guest (${kver:-?}): the guest never ran the probe (see the console above)" ;;
*) result fail "guest (${kver:-?}): exit $rc (MISMATCH lines above say what differed)" ;;
esac
exit "$failed"
