# bench/cells/bpf.sh: the eBPF cell (its own network namespace), sourced by bench/run.sh at its place among
# the cells (its variables and functions are defined there, before the runs). Uses run.sh's
# variables and functions.
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2004 # set by run.sh, or used there and by report.sh; SPID and SPORT are its associative arrays

# ---------------------------------------------------------------------------- eBPF cell
# The offender drop attaches the daemon's tc program to lo, so this cell runs in a network
# namespace of its own: a holder process (unshare -n, lo up, sleep) keeps it; the daemon and the
# client enter it with nsenter. Its maps are pinned under a directory of its own in /sys/fs/bpf.
# Both go at exit, on failure too (cleanup: the holder is in PIDS, the pin directory is removed);
# the daemon also runs with eBPF off there, so the two rows differ only in the offender drop.
NS_PID='' BPF_PIN='' NS_WHY=''
NAME[nsedged]="mtls-edged (own netns)"
ns_setup() {
	local t
	if [ "$(id -u)" -ne 0 ]; then
		NS_WHY="needs root (a network namespace, CAP_BPF, CAP_NET_ADMIN)"
		return 1
	fi
	for t in unshare nsenter ip; do
		command -v "$t" >/dev/null || { NS_WHY="$t is not installed"; return 1; }
	done
	if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
		# What systemd does at boot (and mtls-edged itself when it pins): a machine booted
		# without it still gets the eBPF cells.
		mount -t bpf bpf /sys/fs/bpf 2>>"$RUN/netns.log" && BPFFS_MOUNTED=1 &&
			say "mounted a bpffs on /sys/fs/bpf (none was mounted; unmounted at the end)"
	fi
	if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
		NS_WHY="no bpffs on /sys/fs/bpf, and mounting one failed: $(tail -1 "$RUN/netns.log")"
		return 1
	fi
	if ! netns_hold; then
		NS_WHY=$NETNS_WHY
		return 1
	fi
	NS_PID=$NETNS_PID
	BPF_PIN=/sys/fs/bpf/mtls-edge-bench-$$
	say "eBPF cell: network namespace of pid $NS_PID, pins under $BPF_PIN"
}
# start_nsedged on|off: the daemon in the cell's namespace; sets SPID[nsedged] SPORT[nsedged].
start_nsedged() {
	local cmd=(nsenter -t "$NS_PID" -n taskset -c "$SUT_CPU" "$BIN/mtls-edged" --state "$STATE_NS"
		--listen 127.0.0.1:0 --workers 1 --log-level warn --bpf "$1" --bpf-pin-dir "$BPF_PIN")
	logcmd "nsedged $1" "${cmd[@]}"
	: >"$RUN/edged-ns.err"
	"${cmd[@]}" >>"$RUN/edged-ns.log" 2>"$RUN/edged-ns.err" &
	SPID[nsedged]=$!
	PIDS+=("${SPID[nsedged]}")
	if ! retry 200 0.05 edged_port "${SPID[nsedged]}" "$STATE_NS"; then
		NS_WHY="mtls-edged --bpf $1 did not start in the namespace: $(grep -v '^$' "$RUN/edged-ns.err" | tail -1)"
		stop_nsedged
		return 1
	fi
	SPORT[nsedged]=$(edged_port "${SPID[nsedged]}" "$STATE_NS")
	[ "$1" = off ] || "$BIN/mtls-edgectl" --state "$STATE_NS" --json status >"$RUN/edged-ns-status.json" 2>/dev/null || true
}
stop_nsedged() {
	local pid=${SPID[nsedged]:-}
	[ -z "$pid" ] || stop_pid "$pid"
	SPID[nsedged]=
	# Fresh maps for every run: each starts with no offender.
	rm -rf "$BPF_PIN"
	cat "$RUN/edged-ns.err" >>"$RUN/edged-ns.log" 2>/dev/null || true
}
# ns_curl [curl args]: one request with the untrusted certificate to the blocked hostname of the
# daemon in the namespace; prints curl's exit status (28: no answer in time).
ns_curl() {
	local h=blocked.bench.test rc=0
	nsenter -t "$NS_PID" -n curl -sk -o /dev/null --resolve "$h:${SPORT[nsedged]}:127.0.0.1" \
		--cert "$PKI/untrusted.crt" --key "$PKI/untrusted.key" "$@" "https://$h:${SPORT[nsedged]}/" \
		>/dev/null 2>&1 || rc=$?
	echo "$rc"
}
# prime_offender on|off: one failed attempt first, so that with eBPF on 127.0.0.1 is already an
# offender when the measured run starts (else its first $CONNS attempts, all in flight before
# the first failure, would be full handshakes); then, with eBPF on, checks that the next
# ClientHello is dropped (no answer within 1 s). Same first attempt with eBPF off.
prime_offender() {
	local rc
	rc=$(ns_curl --max-time 5)
	if [ "$rc" = 0 ] || [ "$rc" = 28 ]; then
		NS_RUN_WHY="the first untrusted attempt got curl status $rc, not a refusal"
		return 1
	fi
	[ "$1" = on ] || return 0
	rc=$(ns_curl --max-time 1)
	[ "$rc" = 28 ] && return 0
	NS_RUN_WHY="eBPF on, but the attempt after a failure was answered (curl status $rc): no offender drop"
	return 1
}
# cell_bpf RUN on|off: CPU per 1,000 failed attempts on the hostname with a block rule, with the
# offender drop (eBPF on) or without it (eBPF off), a fresh daemon in the namespace each time.
cell_bpf() {
	local r=$1 b=$2
	if [ -z "$NS_WHY" ] && [ -z "$NS_PID" ]; then
		ns_setup || true
	fi
	if [ -z "$NS_WHY" ] && start_nsedged "$b"; then
		if prime_offender "$b"; then
			cell_fail nsedged "$r" "failrule_$b"
		else
			say "eBPF cell (bpf $b), run $r: $NS_RUN_WHY"
			failed "failrule_${b}_rps" edged "$r" "$NS_RUN_WHY"
			failed "cpukfail_failrule_$b" edged "$r" "$NS_RUN_WHY"
		fi
		stop_nsedged
	else
		say "eBPF cell (bpf $b) not measured: $NS_WHY"
		failed "failrule_${b}_rps" edged "$r" "$NS_WHY"
		failed "cpukfail_failrule_$b" edged "$r" "$NS_WHY"
	fi
}
