#!/usr/bin/env bash
# bench/smoke-test.sh: `make bench`'s smoke as TAP, for tests/run.sh. Benchmarks are not tests:
# this never asserts a time or a ratio, only that the benchmark completes and its report is well
# formed (bench/check-report.sh), and that the check itself refuses damaged reports.
#
#   1  bench/run.sh --smoke completes; its report (under build/bench-smoke/, never bench/results/)
#      is well formed.
#   2  check-report.sh refuses copies of that report with a cell emptied, a ratio missing, a
#      row gone (the h2 cell's mtls-edged terminating row and the scale cell's p99 row among
#      them), a section or a command gone, the chart truncated.
#
# Needs what `make deps-test` installs (wrk, nginx-light, haproxy, gnuplot-nox among them) and
# `make all`; a missing tool fails test 1 with its name. About 70 s.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_SMOKE_OUT:-$REPO/build/bench-smoke}
CHECK=$REPO/bench/check-report.sh
echo "1..2"

diag() { sed 's/^/# /'; }

mkdir -p "$OUT" || exit 2
log=$OUT/smoke.log # kept: what bench/run.sh said, for a failure's post-mortem
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke-check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

t0=$(date +%s)
"$REPO/bench/run.sh" --smoke --out "$OUT" >"$log" 2>&1
status=$?
secs=$(($(date +%s) - t0))
report=$(sed -n 's/^bench smoke: report well formed (\(.*\.md\), .*/\1/p' "$log" | tail -1)
if [ "$status" -eq 0 ] && [ -n "$report" ] && "$CHECK" "$report" >"$tmp/check.out" 2>&1; then
	echo "ok 1 - bench smoke completes and writes a well-formed report ($secs s)"
	echo "# report: $report"
	grep '^bench: eBPF cell' "$log" | diag
	# Cells that gave no number, with their reason (allowed: the machine may be busy).
	grep -o '| n/a: [^|]*' "$report" | grep -v 'mtls-edged only' | sort | uniq -c | diag
else
	echo "not ok 1 - bench smoke completes and writes a well-formed report (exit $status, $secs s)"
	[ "$status" -eq 77 ] && echo "# the benchmark's tools are missing: run make deps-test"
	{ tail -25 "$log"; cat "$tmp/check.out" 2>/dev/null; echo "whole log: $log"; } | diag
	echo "not ok 2 - the report check refuses damaged reports # no report to damage"
	exit 1
fi

# damage NAME SED-SCRIPT: a copy of the report (and its chart) with one thing broken; the check
# must refuse it.
dir=$(dirname "$report")
png=$(sed -n 's/^!\[[^]]*\](\([^)]*\.png\))$/\1/p' "$report" | head -1)
refused=() accepted=()
damage() {
	local name=$1 d=$tmp/$1
	mkdir -p "$d"
	sed "$2" "$report" >"$d/report.md"
	cp "$dir/$png" "$d/$png"
	[ -z "${3:-}" ] || eval "$3"
	if "$CHECK" "$d/report.md" >"$d/check.out" 2>&1; then
		accepted+=("$name")
	else
		refused+=("$name")
	fi
}
# A cell (the first number of the keep-alive 1 KiB row) emptied.
damage cell '/^| keep-alive, 1 KiB responses | req\/s /s/| [0-9.]* (\([0-9.]*\)–/| (\1–/'
# A failed cell without a reason.
damage nan '/^| server memory per 1,000 idle/s/| [0-9.]* ([0-9.]*–[0-9.]*) |/| NaN |/'
# A ratio column gone (the row loses a column).
damage ratio '/^| full mTLS handshakes, ECDSA/s/ | [0-9.]* |$/ |/'
# A row gone.
damage row '/^| server CPU per 1,000 failed handshakes /d'
# The h2 cell's mtls-edged terminating row gone, and its h2load command.
damage h2t '/^| HTTP\/2, .*, mtls-edged terminating .* | req\/s /d'
damage h2tcmd '/h2load .*https:\/\/h2t\.bench\.test\//d'
# The scale cell's p99 row gone.
damage scale '/^| scale cell: p99 latency /d'
# The fleet cell's section gone, or its numbers.
damage fleet 's/^## Fleet: revocation propagation$/## Fleet/'
damage fleetrow '/^| [0-9]* | [0-9]* | [0-9]* | [0-9]* | [0-9]* |/d'
# The commands and the machine sections gone.
damage commands 's/^## Commands/## Comands/'
damage machine '/^| OpenSSL | /d'
damage pinning '/^## Pinning/,/^## Machine/{/^Affinity checked/d}'
# The chart truncated.
# shellcheck disable=SC2016 # expanded by damage
damage png '' 'head -c 100 "$dir/$png" >"$d/$png"'
if [ ${#accepted[@]} -eq 0 ]; then
	echo "ok 2 - the report check refuses damaged reports (${refused[*]})"
else
	echo "not ok 2 - the report check refuses damaged reports"
	echo "# accepted: ${accepted[*]}"
	exit 1
fi
