#!/usr/bin/env bash
# bench/fleet.sh: how fast a revocation at a fleet's control reaches its edges (docs/fleet.md).
#
#   bench/fleet.sh [--nodes "5 20 50"] [--revokes N] [--out FILE.md] [--keep]
#
# One etcd member (Debian's etcd 3.4, plain HTTP on loopback: the cost measured is the fleet's,
# not TLS), one control store, and for each count of the list that many mtls-edged edges (one
# worker each, every one its own state directory, replica and watch) on this machine. Then N
# revocations (default 20; --smoke-sized runs pass fewer), one at a time: for each, the time
# from just before `mtls-edgectl cert revoke` starts to the moment each edge logs that it
# serves the revision that carries it ("fleet: revision R applied": after the swap, and after
# its workers closed the live connections it revokes, so a new handshake is refused from
# then on). Reported per count: p50, p99 and max over all (edge, revocation) pairs, and the
# slowest edge's median. The goal (issue: fleet): p99 under 1 s at 50 edges.
#
# Writes a markdown section to FILE (default: stdout) and the raw latencies beside it
# (FILE.tsv). Only the processes started here are stopped, by pid; everything listens on
# 127.0.0.1 only. Needs build/ (make all) and etcd (make deps-test).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$REPO/build
NODES="5 20 50"
REVOKES=20
OUT=
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--nodes) NODES=$2; shift ;;
	--revokes) REVOKES=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "fleet bench: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[[ $REVOKES =~ ^[1-9][0-9]{0,2}$ ]] || { echo "fleet bench: --revokes must be 1-999" >&2; exit 2; }
for n in $NODES; do
	[[ $n =~ ^[1-9][0-9]?$|^100$ ]] || { echo "fleet bench: --nodes: 1-100 each" >&2; exit 2; }
done
for t in etcd curl jq openssl; do
	command -v "$t" >/dev/null || { echo "fleet bench: $t is not installed (make deps-test)" >&2; exit 1; }
done
[ -x "$BIN/mtls-edged" ] || { echo "fleet bench: build first (make all)" >&2; exit 1; }

RUN=$(mktemp -d /tmp/mtls-edge-fleet.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then echo "fleet bench: kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
say() { echo "fleet bench: $*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
retry() { # retry N DELAY CMD...
	local n=$1 d=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep "$d"; done
	return 1
}

# etcd, one member
CP=$(free_port) PP=$(free_port)
ETCD=http://127.0.0.1:$CP
etcd --name b1 --data-dir "$RUN/etcd" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
	--listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
	--initial-cluster "b1=http://127.0.0.1:$PP" --log-level warn >"$RUN/etcd.log" 2>&1 &
PIDS+=($!)
retry 200 0.05 curl -sf "$ETCD/health" || { say "etcd did not start: $(tail -3 "$RUN/etcd.log")"; exit 1; }

# the upstream, the control store, its certificates
"$BIN/edge-upstream" --listen 127.0.0.1:0 --port-file "$RUN/up.port" --workers 1 >"$RUN/up.log" 2>&1 &
PIDS+=($!)
retry 100 0.05 test -s "$RUN/up.port"
CTL=("$BIN/mtls-edgectl" --state "$RUN/control")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 -subj /CN=api.bench.test \
	-addext subjectAltName=DNS:api.bench.test -keyout "$RUN/srv.key" -out "$RUN/srv.crt" >/dev/null 2>&1
"${CTL[@]}" init --site bench.test >/dev/null
"${CTL[@]}" sni add api.bench.test --cert "$RUN/srv.crt" --key "$RUN/srv.key" \
	--upstream "127.0.0.1:$(cat "$RUN/up.port")" >/dev/null 2>&1
"${CTL[@]}" fleet init --etcd "$ETCD" --cluster bench >/dev/null 2>&1

# iso_ms TIMESTAMP: a log line's UTC ISO time (2026-12-03T13:01:16.033Z) as epoch ms
iso_ms() { date -u -d "$1" +%s%3N; }

TSV=${OUT:-$RUN/fleet.md}.tsv
: >"$TSV"
ROWS=()
for n in $NODES; do
	say "$n edges, $REVOKES revocations"
	serials=()
	for ((r = 1; r <= REVOKES; r++)); do
		"${CTL[@]}" cert create --cn "c$n-$r" --out "$RUN/c$n-$r" >/dev/null 2>&1
		serials+=("$(openssl x509 -in "$RUN/c$n-$r.crt" -noout -serial | cut -d= -f2)")
	done
	rev=$("${CTL[@]}" fleet status --json 2>/dev/null | jq -r .commit_revision)
	epids=()
	for ((k = 1; k <= n; k++)); do
		printf '[fleet]\netcd = %s\ncluster = bench\nnode = e%d\n' "$ETCD" "$k" >"$RUN/e$k.conf"
		rm -rf "$RUN/e$n-$k"
		"$BIN/mtls-edged" --state "$RUN/e$n-$k" --listen 127.0.0.1:0 --workers 1 --bpf off \
			--log-level info -c "$RUN/e$k.conf" >"$RUN/e$n-$k.log" 2>&1 &
		epids+=($!)
		PIDS+=($!)
	done
	for ((k = 1; k <= n; k++)); do
		retry 600 0.05 grep -q "fleet: revision $rev applied" "$RUN/e$n-$k.log" ||
			{ say "edge $k of $n did not apply revision $rev: $(tail -3 "$RUN/e$n-$k.log")"; exit 1; }
	done
	lat=()
	for ((r = 1; r <= REVOKES; r++)); do
		t0=$(date +%s%3N)
		"${CTL[@]}" cert revoke "${serials[r - 1]}" --yes >/dev/null 2>&1
		rev=$("${CTL[@]}" fleet status --json 2>/dev/null | jq -r .commit_revision)
		for ((k = 1; k <= n; k++)); do
			retry 400 0.025 grep -q "fleet: revision $rev applied" "$RUN/e$n-$k.log" ||
				{ say "edge $k did not apply revision $rev"; exit 1; }
			at=$(sed -n "s/^\([^ ]*\) info fleet: revision $rev applied.*/\1/p" "$RUN/e$n-$k.log" | head -1)
			ms=$(($(iso_ms "$at") - t0))
			lat+=("$ms")
			printf '%s\t%s\t%s\t%s\n' "$n" "$r" "$k" "$ms" >>"$TSV"
		done
	done
	# nth Q: the sample at quantile Q (nearest rank) of the sorted values on stdin
	nth() { awk -v q="$1" '{v[NR] = $1} END {i = int((NR - 1) * q) + 1; print v[i]}'; }
	all=$(awk -F'\t' -v n="$n" '$1 == n {print $4}' "$TSV" | sort -n)
	p50=$(nth 0.5 <<<"$all") p99=$(nth 0.99 <<<"$all") max=$(tail -1 <<<"$all")
	slow=0
	for ((k = 1; k <= n; k++)); do
		med=$(awk -F'\t' -v n="$n" -v k="$k" '$1 == n && $3 == k {print $4}' "$TSV" | sort -n | nth 0.5)
		[ "$med" -le "$slow" ] || slow=$med
	done
	rss=0
	for p in "${epids[@]}"; do
		rss=$((rss + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	ROWS+=("| $n | $REVOKES | $p50 | $p99 | $max | $slow | $((rss / n / 1024)) |")
	for p in "${epids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${epids[@]}"; do wait "$p" 2>/dev/null || true; done
done

{
	echo "## Fleet: revocation propagation"
	echo
	echo "From just before \`mtls-edgectl cert revoke\` at the control to each edge serving the revision that carries it (its log line \`fleet: revision R applied\`, written after the swap and after its workers closed the live connections the revocation ends: new handshakes are refused from then on). One etcd member on loopback (plain HTTP), every edge an mtls-edged with one worker, its own replica and one watch, all on this machine with the control and etcd ($(nproc) CPUs: the edges share them). Milliseconds; every (edge, revocation) pair is one sample. The goal is p99 under 1 s at 50 edges."
	echo
	echo "| edges | revocations | p50 ms | p99 ms | max ms | slowest edge's median ms | RSS per edge MiB |"
	echo "|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Command: \`bench/fleet.sh --nodes \"$NODES\" --revokes $REVOKES\`; etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}')."
} >"${OUT:-/dev/stdout}"
