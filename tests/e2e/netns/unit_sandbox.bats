#!/usr/bin/env bats
# The systemd unit's sandbox is enough for the installed daemon: under exactly the unit's
# CapabilityBoundingSet (as root, the way the unit runs it) mtls-edged listens on port 443,
# loads and attaches its eBPF program, pins its maps, serves, reloads and drains; and every
# system call it makes is in the unit's SystemCallFilter (io_uring and bpf included), every
# socket in its RestrictAddressFamilies.
# There is no systemd here to run the unit itself; this checks its two lists instead.
# It attaches to lo, so tests/run.sh runs it in a network namespace of its own.

load ../helpers

setup_file() {
	if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
		echo "# refusing to attach to the host's lo: run me as tests/run.sh does" >&3
		echo "# (unshare -n -- bash -c 'ip link set lo up; bats tests/e2e/netns/unit_sandbox.bats')" >&3
		return 1
	fi
	[ "$(id -u)" -eq 0 ] || skip "needs root (it installs, attaches eBPF, binds port 443)"
}

setup() {
	edge_setup
	DEST=$DIR/dest
	UNIT=$DEST/usr/lib/systemd/system/mtls-edged.service
	PIN=/sys/fs/bpf/mtls-edge-test-sandbox-$$-$BATS_TEST_NUMBER
	export DEST UNIT PIN
	run make -s --no-print-directory -C "$REPO" BUILD="$BIN" install DESTDIR="$DEST" PREFIX=/usr
	assert_success
}

teardown() {
	stop_all
	rm -rf "$PIN"
}

# unit_value KEY: the value of KEY= in the installed unit (the last one).
unit_value() {
	sed -n "s/^$1=//p" "$UNIT" | tail -n1
}

# expand_filter NAME...: the system calls of these names and @groups, one a line.
expand_filter() {
	local n
	for n in "$@"; do
		if [[ $n == @* ]]; then
			# shellcheck disable=SC2046 # one word per member
			expand_filter $(systemd-analyze syscall-filter "$n" | tail -n +2 | grep -v '^ *#' | tr -d ' ')
		else
			echo "$n"
		fi
	done
}

@test "the unit's capabilities and system-call filter carry the daemon: port 443, eBPF on, serve, reload, drain" {
	requires systemd-analyze strace setpriv
	caps=$(unit_value CapabilityBoundingSet)
	[ -n "$caps" ]
	# CAP_NET_ADMIN CAP_BPF -> +net_admin,+bpf for setpriv.
	bset=$(tr ' ' '\n' <<<"$caps" | sed 's/^CAP_//' | tr '[:upper:]' '[:lower:]' | sed 's/^/+/' | paste -sd,)
	# shellcheck disable=SC2046 # one word per entry of the filter
	allowed=$(expand_filter $(unit_value SystemCallFilter) | sort -u)
	grep -qx io_uring_enter <<<"$allowed" || fail "the unit's filter blocks io_uring_enter"

	start_upstream
	make_site
	add_sni api.example.test
	client_cert alice
	run ctl rule add --host api.example.test --action block
	assert_success

	# As the unit runs it: root, only the bounding set's capabilities, no new privileges.
	setpriv --bounding-set="-all,$bset" --no-new-privs -- \
		strace -f -qq -o "$DIR/trace" \
		"$DEST/usr/sbin/mtls-edged" --state "$STATE" --listen 127.0.0.1:443 --workers 2 \
		--log-level debug --bpf on --bpf-pin-dir "$PIN" >>"$LOG" 2>&1 3>&- &
	track_pid $!
	tracer=$!
	retry 200 0.05 grep -q 'listening addr=127.0.0.1:443' "$LOG"
	run grep -o 'bpf=on: tc ingress on lo' "$LOG"
	assert_success
	edged=$(pgrep -P "$tracer" -x mtls-edged)
	[ -n "$edged" ]
	track_pid "$edged"
	run grep CapEff "/proc/$edged/status"
	refute_output --partial 'ffffffff' # not a full root

	export EDGE_PORT=443 # for edge_curl
	run edge_curl_as alice api.example.test / -o /dev/null -w '%{http_code}'
	assert_success
	assert_output 200
	run edge_curl api.example.test / -w '%{http_code}'
	assert_output --partial 403
	# The daemon tagged the failed source in its pinned maps.
	run ctl flows list --pin-dir "$PIN"
	assert_success
	assert_output --partial api.example.test
	log_mark
	kill -HUP "$edged"
	wait_log 'reload'
	kill -TERM "$edged"
	wait_pid "$tracer" 20
	run grep -c 'info stopped' "$LOG"
	assert_output 1

	# "PID name(args) = ..." and "PID <... name resumed>": the calls made, by name.
	used=$(grep -oE '^[0-9]+ +[a-z_0-9]+\(' "$DIR/trace" | sed -E 's/^[0-9]+ +//; s/\($//' | sort -u)
	grep -qx io_uring_enter <<<"$used" || fail "strace saw no io_uring_enter: $used"
	grep -qx bpf <<<"$used" || fail "strace saw no bpf(): $used"
	# Every socket it opened is of a family RestrictAddressFamilies= allows.
	families=$(grep -oE ' socket(pair)?\(AF_[A-Z0-9]+' "$DIR/trace" | sed 's/.*(//' | sort -u)
	grep -qx AF_NETLINK <<<"$families" || fail "strace saw no netlink socket: $families"
	allowed_af=$(unit_value RestrictAddressFamilies | tr ' ' '\n' | sort -u)
	missing=$(comm -23 <(echo "$families") <(echo "$allowed_af"))
	[ -z "$missing" ] || fail "address families the unit's RestrictAddressFamilies would refuse: $missing"
	missing=$(comm -23 <(echo "$used") <(echo "$allowed"))
	[ -z "$missing" ] || fail "system calls the unit's SystemCallFilter would refuse: $missing"
}

@test "under the unit's capabilities, a server key another user owns is refused with its reason (README: keys owned by root)" {
	requires setpriv
	caps=$(unit_value CapabilityBoundingSet)
	bset=$(tr ' ' '\n' <<<"$caps" | sed 's/^CAP_//' | tr '[:upper:]' '[:lower:]' | sed 's/^/+/' | paste -sd,)
	make_site
	SNI_UPSTREAM=127.0.0.1:9 add_sni api.example.test
	edged() {
		setpriv --bounding-set="-all,$bset" --no-new-privs -- \
			"$DEST/usr/sbin/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --bpf off --check
	}
	run edged
	assert_success
	chown nobody "$PKI/api.example.test.key"
	run edged
	assert_failure 1
	assert_output --partial "cannot use private key $PKI/api.example.test.key"
	assert_output --partial 'Permission denied'
}
