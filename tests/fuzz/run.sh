#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time.
#
#   tests/fuzz/run.sh [FUZZER] [SECONDS]    (defaults: build/fuzz/fuzz_sni, $FUZZ_TIME or 20)
#
# build/fuzz/fuzz_NAME starts from the committed seeds in tests/fuzz/corpus/NAME/ (sni: crafted
# and captured ClientHellos; config: INI files; pem: good and malformed PEM; verify: a flags
# byte and a DER certificate, from tests/fuzz/seeds.sh), which it only reads: new inputs go to
# a temp dir, removed afterwards. A crash or a failed check leaves its input in build/fuzz/
# (crash-*, timeout-*, oom-*) and fails. TAP output: one test line, exit 0 or 1; exit 77 when
# the fuzzer is not built (make fuzz-build; it needs clang and libclang-rt-14-dev).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 2
fuzzer=${1:-build/fuzz/fuzz_sni}
secs=${2:-${FUZZ_TIME:-20}}
name=$(basename "$fuzzer")
seeds=tests/fuzz/corpus/${name#fuzz_}

case $fuzzer in
-h | --help)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
if [[ ! $secs =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz: want whole seconds, not '$secs'" >&2
	exit 2
fi
if [ ! -x "$fuzzer" ]; then
	echo "1..0 # SKIP $fuzzer is not built (make fuzz-build; needs clang and libclang-rt-14-dev)"
	exit 77
fi
if [ ! -d "$seeds" ]; then
	echo "fuzz: no seed corpus $seeds for $fuzzer" >&2
	exit 2
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
	echo "ok 1 - $name: ${runs:-?} inputs in ${secs} s from $(find "$seeds" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l) seeds, ${cov:-cov: ?}, no crash"
	exit 0
fi
echo "not ok 1 - $name: exit $rc after ${runs:-?} inputs (artifacts in $artifacts)"
grep -E 'ERROR|SUMMARY|Test unit written|artifact_prefix|==[0-9]+==' "$work/log" | head -n 20 | sed 's/^/#   /'
tail -n 15 "$work/log" | sed 's/^/#   /'
exit 1
