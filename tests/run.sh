#!/usr/bin/env bash
# Runs the test suites and tallies their TAP output.
#
#   tests/run.sh [unit|fuzz|all]     (default: all)
#
# unit: build/tests/test_*, the layering of build/'s objects (tools/layering.sh), then
#       build/asan/tests/test_* (when that tree is built), each from the repo root; all: also
#       every libFuzzer target for FUZZ_TIME s (default 20) and every tests/e2e/*.bats through
#       `bats --tap` (soak.bats runs 10,000 failed handshakes against build/asan/mtls-edged,
#       and skips loudly when `make asan` has not built it); fuzz: only the libFuzzer targets.
# Each runner's output is shown as it runs. A test line "ok", "not ok" or "ok ... # skip REASON"
# counts as passed, failed or skipped; a runner that exits 77 is one skip; a runner that dies
# without a complete plan, or exits non-zero with no failing line (a sanitizer report at exit),
# is a failure. The last line is exactly "N passed, N failed" (", N skipped" when any); the exit
# status is non-zero when anything failed.
set -uo pipefail

mode=${1:-all}
case $mode in
unit | fuzz | all) ;;
-h | --help)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: tests/run.sh [unit|fuzz|all]" >&2
	exit 2
	;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
# Per-runner wall-clock bound, so one hung test cannot hang the suite.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
E2E_TIMEOUT=${E2E_TIMEOUT:-1200}
VM_TIMEOUT=${VM_TIMEOUT:-1800}
# Sanitizers: any report is a failure; keep the defaults of whoever calls us otherwise.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=24}

passed=0 failed=0 skipped=0
failures=() skips=() notes=()
out=$(mktemp "${TMPDIR:-/tmp}/edge-run.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT

fail() { failed=$((failed + 1)); failures+=("$1"); }

# host_bpf_state: what of mtls-edge's eBPF is on the host: a tc filter on lo with our handle,
# the default pin directory. Empty when nothing is.
host_bpf_state() {
	local s=''
	tc filter show dev lo ingress 2>/dev/null | grep -q 'handle 0xed6e' && s+='tc filter on lo; '
	[ -e /sys/fs/bpf/mtls-edge ] && s+='/sys/fs/bpf/mtls-edge pinned; '
	printf '%s' "${s%; }"
}
skip() { skipped=$((skipped + 1)); skips+=("$1"); }

# tally NAME STATUS: counts the TAP lines in $out for the runner NAME that exited with STATUS.
tally() {
	local name=$1 status=$2 line plan='' n=0 bad=0 desc
	while IFS= read -r line; do
		case $line in
		'ok '* | 'not ok '*)
			n=$((n + 1))
			desc=${line#ok }
			[[ $line == 'not ok '* ]] && desc=${line#not ok }
			shopt -s nocasematch
			if [[ $line =~ \#[[:space:]]*(skip|todo)[[:space:]]*(.*)$ ]]; then
				shopt -u nocasematch
				skip "$name: ${desc%%#*}-- ${BASH_REMATCH[2]:-no reason given}"
			elif [[ $line == 'not ok '* ]]; then
				shopt -u nocasematch
				bad=$((bad + 1))
				fail "$name: $desc"
			else
				shopt -u nocasematch
				passed=$((passed + 1))
			fi
			;;
		1..*)
			plan=${line#1..}
			;;
		esac
	done <"$out"

	if ((status == 77)); then
		skip "$name: whole runner skipped (exit 77) -- $(grep -m1 -i 'skip' "$out" || tail -n1 "$out")"
		return
	fi
	if [[ $plan =~ ^0[[:space:]]*\#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]]*(.*) ]]; then
		skip "$name: whole runner skipped -- ${BASH_REMATCH[1]:-no reason given}"
		return
	fi
	plan=${plan%%[!0-9]*}
	if ((status == 124)); then
		fail "$name: timed out (killed after its time limit)"
	elif [ -z "$plan" ]; then
		if ((status > 128)); then
			fail "$name: crashed without a plan (signal $((status - 128)), after $n tests)"
		else
			fail "$name: no TAP plan (exit $status, after $n tests)"
		fi
	elif ((n < plan)); then
		fail "$name: plan 1..$plan but only $n tests ran (exit $status)"
	elif ((status != 0 && bad == 0)); then
		fail "$name: exit status $status with no failing test (sanitizer report or crash at exit?)"
	fi
}

# run NAME TIMEOUT CMD...: shows the runner's output as it comes, then tallies it.
run() {
	local name=$1 limit=$2 status
	shift 2
	printf '\n=== %s\n' "$name"
	timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	tally "$name" "$status"
}

# run_unit_tree DIR LABEL: every test_* binary in DIR, and a failure for a source with no binary.
run_unit_tree() {
	local dir=$1 label=$2 src bin
	for src in tests/unit/test_*.c; do
		[ -e "$src" ] || continue
		bin=$dir/$(basename "$src" .c)
		if [ ! -x "$bin" ]; then
			fail "$label/$(basename "$bin"): not built ($bin missing; run make)"
		fi
	done
	for bin in "$dir"/test_*; do
		[[ -f $bin && -x $bin ]] || continue
		run "$label/$(basename "$bin")" "$UNIT_TIMEOUT" "$bin"
	done
}

if [ "$mode" != fuzz ]; then
	if ! compgen -G 'tests/unit/test_*.c' >/dev/null; then
		notes+=("no unit tests in tests/unit yet")
	fi
	run_unit_tree build/tests unit
	# The layers of the tree, read off the built objects with nm (no circle, lib calls no daemon).
	run "layering" "$UNIT_TIMEOUT" tools/layering.sh build
	if [ -d build/asan/tests ]; then
		run_unit_tree build/asan/tests asan
	else
		notes+=("ASan/UBSan tree not built (make asan): unit tests ran without sanitizers")
	fi
fi

# libFuzzer: every tests/fuzz/fuzz_NAME.c that has a seed corpus tests/fuzz/corpus/NAME/, each for
# FUZZ_TIME seconds (default 20; tests/fuzz/run.sh). A target with no binary is a failure.
if [ "$mode" = all ] || [ "$mode" = fuzz ]; then
	for src in tests/fuzz/fuzz_*.c; do
		[ -e "$src" ] || continue
		name=$(basename "$src" .c)
		if [ ! -d "tests/fuzz/corpus/${name#fuzz_}" ]; then
			notes+=("fuzz/${name#fuzz_}: no seed corpus tests/fuzz/corpus/${name#fuzz_}/, not run")
		elif [ -x "build/fuzz/$name" ]; then
			run "fuzz/${name#fuzz_}" "$UNIT_TIMEOUT" tests/fuzz/run.sh "build/fuzz/$name"
		else
			fail "fuzz/${name#fuzz_}: build/fuzz/$name not built (make fuzz-build)"
		fi
	done
fi

if [ "$mode" = all ]; then
	if ! command -v bats >/dev/null; then
		fail "e2e: bats is not installed (make deps-test)"
	else
		bpf_before=$(host_bpf_state)
		for f in tests/e2e/*.bats; do
			[ -e "$f" ] || continue
			run "e2e/$(basename "$f")" "$E2E_TIMEOUT" bats --tap "$f"
			# Host suites run the daemon with --bpf off; one that forgets attaches to the
			# host's lo and pins maps that outlive it. Name the suite that did.
			bpf_now=$(host_bpf_state)
			if [ "$bpf_now" != "$bpf_before" ]; then
				fail "e2e/$(basename "$f"): left eBPF state on the host (${bpf_now}); host suites must pass --bpf off"
				bpf_before=$bpf_now
			else
				passed=$((passed + 1))
			fi
		done
		# Tests that attach eBPF programs get a network namespace of their own.
		for f in tests/e2e/netns/*.bats; do
			[ -e "$f" ] || continue
			# shellcheck disable=SC2016 # "$1" is for the inner bash, which gets $f as its $1
			run "e2e/netns/$(basename "$f")" "$E2E_TIMEOUT" unshare -n -- bash -c \
				'ip link set lo up && exec bats --tap "$1"' _ "$f"
		done
	fi
fi

# `make bench`'s smoke: it completes and writes a well-formed report under build/ (no time asserted).
if [ "$mode" = all ]; then
	run "bench/smoke" "${BENCH_TIMEOUT:-300}" bench/smoke-test.sh
fi

# kTLS: this kernel has none, so the probe and the relay suite also run in a Debian guest kernel
# that has it (tests/vm), where every relay test demands path=ktls. EDGE_SKIP_VM=1 skips them
# loudly (counted as skipped, with the reason).
if [ "$mode" = all ]; then
	if [ "${EDGE_SKIP_VM:-}" = 1 ]; then
		skips+=("vm: kTLS guest tests skipped because EDGE_SKIP_VM=1")
		skipped=$((skipped + 1))
	elif ! tests/vm/setup.sh; then
		fail "vm: tests/vm/setup.sh could not prepare the kTLS guest"
	else
		run "vm/ktls-smoke" "$VM_TIMEOUT" tests/vm/ktls-smoke.sh
		run "vm/relay+upstream_tls (kTLS)" "$VM_TIMEOUT" tests/vm/run-in-guest.sh \
			--timeout "$((VM_TIMEOUT - 30))" -- env EDGE_EXPECT_PATH=ktls \
			bats --tap tests/e2e/relay.bats tests/e2e/upstream_tls.bats
		# Identity forwarding: proxy-v2 and headers mode with the client side in the kernel
		# (the request direction read as plaintext from the kTLS socket, responses spliced).
		run "vm/forward (kTLS)" "$VM_TIMEOUT" tests/vm/run-in-guest.sh \
			--timeout "$((VM_TIMEOUT - 30))" -- env EDGE_EXPECT_PATH=ktls \
			bats --tap tests/e2e/forward.bats
		# ALPN with --protocol tcp: HTTP/2 spliced between kTLS sockets, a TLS upstream offered
		# the client's protocol (the CLI and handshake cases need no kernel: host only).
		run "vm/alpn h2 relay (kTLS)" "$VM_TIMEOUT" tests/vm/run-in-guest.sh \
			--timeout "$((VM_TIMEOUT - 30))" -- env EDGE_EXPECT_PATH=ktls \
			bats --tap -f 'protocol tcp with' tests/e2e/alpn.bats
		# Revocation and identity rules reach live kTLS connections, whose SSL objects were
		# freed after the hand-off (only the leaf is kept).
		run "vm/live rechecks (kTLS)" "$VM_TIMEOUT" tests/vm/run-in-guest.sh \
			--timeout "$((VM_TIMEOUT - 30))" -- env EDGE_EXPECT_PATH=ktls \
			bats --tap -f 'cert revoke: new handshakes|CRL refuses new handshakes|rule change is live' \
			tests/e2e/live.bats tests/e2e/identity.bats
		# HTTP/2 terminated (--protocol http): nghttp2 reads and writes the client's frames
		# through the kTLS socket; the streams go upstream as HTTP/1.1.
		run "vm/h2 terminated (kTLS)" "$VM_TIMEOUT" tests/vm/run-in-guest.sh \
			--timeout "$((VM_TIMEOUT - 30))" -- env EDGE_EXPECT_PATH=ktls \
			bats --tap -f 'curl --http2 negotiates|bodies framed|request bodies|must name|forward headers puts|revoking' \
			tests/e2e/h2http.bats
	fi
fi

echo
for n in "${notes[@]}"; do
	echo "NOTE: $n"
done
for s in "${skips[@]}"; do
	echo "SKIPPED: $s"
done
for f in "${failures[@]}"; do
	echo "FAILED: $f"
done
summary="$passed passed, $failed failed"
((skipped)) && summary+=", $skipped skipped"
echo "$summary"
((failed == 0))
