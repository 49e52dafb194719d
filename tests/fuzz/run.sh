#!/usr/bin/env bash
# Runs the libFuzzer target over the SNI parser of the tc program for a bounded time.
#
#   tests/fuzz/run.sh [FUZZER] [SECONDS]    (defaults: build/fuzz/fuzz_sni, $FUZZ_TIME or 30)
#
# Starts from the committed seeds in tests/fuzz/corpus/sni/ (crafted ClientHellos of
# tests/bpf/packets.h, and ones captured from openssl s_client and curl), which it only reads:
# new inputs go to a temp dir, removed afterwards. A crash or a failed check leaves its input in
# build/fuzz/ (crash-*, timeout-*, oom-*) and fails. TAP output: one test line, exit 0 or 1;
# exit 77 when the fuzzer is not built (make fuzz; it needs clang and libclang-rt-14-dev).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 2
fuzzer=${1:-build/fuzz/fuzz_sni}
secs=${2:-${FUZZ_TIME:-30}}
seeds=tests/fuzz/corpus/sni

case $fuzzer in
-h | --help)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
if [[ ! $secs =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz: want whole seconds, not '$secs'" >&2
	exit 2
fi
if [ ! -x "$fuzzer" ]; then
	echo "1..0 # SKIP $fuzzer is not built (make fuzz; needs clang and libclang-rt-14-dev)"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/edge-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
artifacts=$(dirname "$fuzzer")/

echo "1..1"
# -timeout: one input taking over 2 s is a hang; -rss_limit_mb bounds memory.
"$fuzzer" -max_total_time="$secs" -timeout=2 -rss_limit_mb=1024 -max_len=4096 \
	-artifact_prefix="$artifacts" -print_final_stats=1 "$work" "$seeds" >"$work/log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n1)
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - fuzz_sni: ${runs:-?} inputs in ${secs} s from $(ls "$seeds" | wc -l) seeds, ${cov:-cov: ?}, no crash"
	exit 0
fi
echo "not ok 1 - fuzz_sni: exit $rc after ${runs:-?} inputs (artifacts in $artifacts)"
grep -E 'ERROR|SUMMARY|Test unit written|artifact_prefix|==[0-9]+==' "$work/log" | head -n 20 | sed 's/^/#   /'
tail -n 15 "$work/log" | sed 's/^/#   /'
exit 1
