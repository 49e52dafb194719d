#!/usr/bin/env bats
# eBPF enforcement end to end, on this host's kernel: a client whose certificate fails on a
# hostname with a block rule gets the rule's action, then its flow and its next ClientHellos for
# that hostname are dropped in the kernel until the TTL; good clients and other hostnames are
# untouched. These tests attach a tc program to lo, so tests/run.sh runs this file in a network
# namespace of its own (unshare -n), with its own bpffs pin directory.

load ../helpers

setup_file() {
	if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
		echo "# refusing to attach to the host's lo: run me as tests/run.sh does" >&3
		echo "# (unshare -n -- bash -c 'ip link set lo up; bats tests/e2e/netns/bpf.bats')" >&3
		return 1
	fi
	[ "$(id -u)" -eq 0 ] || skip "eBPF enforcement needs root (CAP_BPF, CAP_NET_ADMIN)"
}

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	add_sni other.example.test --mtls optional
	client_cert alice
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	PIN=/sys/fs/bpf/mtls-edge-test-$$-$BATS_TEST_NUMBER
	export PIN
}

teardown() {
	stop_all
	rm -rf "$PIN"
}

daemon_with_rule() {
	run ctl rule add --host api.example.test --action "$1"
	assert_success
	printf '[bpf]\noffender_ttl = %s\n' "${TTL:-60s}" >"$DIR/edged.conf"
	BPF_MODE=on start_daemon -c "$DIR/edged.conf" --bpf-pin-dir "$PIN"
}

# as SOURCE NAME HOST: curl from a source address with NAME's certificate.
as() {
	edge_curl "$3" / --interface "$1" --cert "$DIR/$2.crt" --key "$DIR/$2.key" --max-time 3
}

handshakes_from() {
	grep -c "handshake peer=$1:[0-9]* sni=$2 " "$LOG" || true
}

stat_of() {
	ctl stats --pin-dir "$PIN" --json | sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p"
}

@test "the daemon loads the program on lo, and says so" {
	daemon_with_rule block
	assert grep -q "bpf=on: tc ingress on lo" "$LOG"
	run tc filter show dev lo ingress
	assert_output --partial edge_ingress
}

@test "block: 403 for a bad certificate, then its ClientHellos for that hostname never reach the daemon" {
	daemon_with_rule block
	log_mark
	run as 127.0.0.2 mallory api.example.test
	assert_success
	assert_output "403 Forbidden: a valid client certificate is required"
	wait_log "bpf tagged peer=127.0.0.2:[0-9]+ sni=api.example.test"
	before=$(handshakes_from 127.0.0.2 api.example.test)
	drops=$(stat_of hello_drops)
	# The repeat offender's ClientHello is dropped in the kernel: no handshake, no answer.
	run as 127.0.0.2 mallory api.example.test
	assert_failure
	[ "$(handshakes_from 127.0.0.2 api.example.test)" -eq "$before" ] ||
		fail "the daemon saw a handshake from the offender"
	[ "$(stat_of hello_drops)" -gt "$drops" ] || fail "the BPF hello_drops counter did not move"
	# A good client from another source, and the offender on another hostname, are untouched.
	run as 127.0.0.1 alice api.example.test
	assert_success
	assert_output "hello from upstream"
	run as 127.0.0.2 mallory other.example.test
	assert_success
	assert_output "hello from upstream"
}

@test "after the TTL the offender gets a handshake again" {
	# The TTL runs from the tag; the dropped attempt that follows lasts up to 3 s (curl's
	# --max-time) and TCP retransmits its ClientHello meanwhile. With a TTL of 2 s a
	# retransmission could outlive the tag and be answered, so the TTL is well past that attempt.
	TTL=10s daemon_with_rule block
	run as 127.0.0.3 mallory api.example.test
	assert_output "403 Forbidden: a valid client certificate is required"
	run as 127.0.0.3 mallory api.example.test
	assert_failure
	# Then the tag expires: the daemon answers (with the 403) again. Retried until it does
	# (up to 30 s, three times the TTL), not after a fixed wait.
	retry 60 0.5 as 127.0.0.3 mallory api.example.test
	assert_output "403 Forbidden: a valid client certificate is required"
}

@test "flows list shows the flow and the offender; flows clear --source lifts the block" {
	daemon_with_rule drop
	run as 127.0.0.4 mallory api.example.test
	assert_failure
	wait_log "bpf tagged peer=127.0.0.4"
	run ctl flows list --pin-dir "$PIN"
	assert_success
	assert_output --regexp "offender +127\.0\.0\.4 +- +api\.example\.test"
	assert_output --regexp "flow +127\.0\.0\.4:[0-9]+ +127\.0\.0\.1:$EDGE_PORT +api\.example\.test"
	run ctl flows clear --source 127.0.0.4 --pin-dir "$PIN"
	assert_success
	log_mark
	run as 127.0.0.4 mallory api.example.test
	wait_log "handshake peer=127.0.0.4:[0-9]+ sni=api.example.test verdict=drop"
}

@test "alert: the handshake fails with a TLS alert, and the source is then dropped" {
	daemon_with_rule alert
	log_mark
	run as 127.0.0.5 mallory api.example.test
	assert_failure
	wait_log "handshake peer=127.0.0.5:[0-9]+ sni=api.example.test verdict=fail reason=unknown_ca"
	wait_log "bpf tagged peer=127.0.0.5"
	run as 127.0.0.5 alice api.example.test
	assert_failure # even a good certificate: the source is an offender on this hostname until the TTL
}

@test "a flood of failing flows keeps the maps within their bounds and the counters honest" {
	daemon_with_rule drop
	for n in $(seq 1 40); do
		as "127.0.1.$n" mallory api.example.test >/dev/null 2>&1 || true
	done
	retry 40 0.1 bash -c "[ \$(grep -c 'bpf tagged' '$LOG') -ge 40 ]"
	flows=$(stat_of tagged_flows)
	offenders=$(stat_of offenders)
	[ "$offenders" -eq 40 ] || fail "offenders: $offenders, want 40"
	[ "$flows" -ge 40 ] && [ "$flows" -le 65536 ] || fail "tagged flows: $flows"
	run as 127.0.0.1 alice api.example.test
	assert_success
}
