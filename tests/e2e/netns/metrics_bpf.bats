#!/usr/bin/env bats
# The eBPF drop counters in the metrics (issue 8): the exposition's mtls_edge_bpf_* agree with the
# program's own stats map after a blocked client retries. Attaches to lo, so tests/run.sh runs
# this file in a network namespace of its own, like bpf.bats.

load ../helpers

setup_file() {
	if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
		echo "# refusing to attach to the host's lo: run me as tests/run.sh does" >&3
		return 1
	fi
	[ "$(id -u)" -eq 0 ] || skip "eBPF enforcement needs root (CAP_BPF, CAP_NET_ADMIN)"
}

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	PIN=/sys/fs/bpf/mtls-edge-mtest-$$-$BATS_TEST_NUMBER
	export PIN
}

teardown() {
	stop_all
	rm -rf "$PIN"
}

@test "bpf drops in the metrics match the program's stats map" {
	run ctl rule add --host api.example.test --action block
	assert_success
	BPF_MODE=on start_daemon --bpf-pin-dir "$PIN"
	log_mark
	run edge_curl api.example.test / --interface 127.0.0.2 --cert "$DIR/mallory.crt" \
		--key "$DIR/mallory.key" --max-time 3
	assert_output "403 Forbidden: a valid client certificate is required"
	wait_log "bpf tagged peer=127.0.0.2:[0-9]+ sni=api.example.test"
	run edge_curl api.example.test / --interface 127.0.0.2 --cert "$DIR/mallory.crt" \
		--key "$DIR/mallory.key" --max-time 3
	assert_failure
	ctl metrics | prom_parse >"$DIR/m" || fail "exposition rejected"
	stats=$(ctl stats --pin-dir "$PIN" --json)
	hello=$(sed -n 's/.*"hello_drops": *\([0-9]*\).*/\1/p' <<<"$stats")
	flow=$(sed -n 's/.*"flow_drops": *\([0-9]*\).*/\1/p' <<<"$stats")
	[ "$hello" -gt 0 ] || fail "the offender's ClientHello was not dropped: $stats"
	assert_equal "$(prom_value "$DIR/m" mtls_edge_bpf_enabled)" 1
	# the map may count more packets after the scrape (retransmissions), never fewer
	[ "$(prom_value "$DIR/m" 'mtls_edge_bpf_drops_total{kind="hello"}')" -gt 0 ]
	[ "$(prom_value "$DIR/m" 'mtls_edge_bpf_drops_total{kind="hello"}')" -le "$hello" ]
	[ "$(prom_value "$DIR/m" 'mtls_edge_bpf_drops_total{kind="flow"}')" -le "$flow" ]
	# both ClientHellos fit one segment on lo: parsed, none followed into a second
	parsed=$(sed -n 's/.*"hellos_parsed": *\([0-9]*\).*/\1/p' <<<"$stats")
	[ "$(prom_value "$DIR/m" 'mtls_edge_bpf_hellos_total{result="parsed"}')" -ge 2 ]
	[ "$(prom_value "$DIR/m" 'mtls_edge_bpf_hellos_total{result="parsed"}')" -le "$parsed" ]
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_bpf_hello_walks_total{end="split"}')" 0
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_bpf_hello_walks_total{end="given_up"}')" 0
	st=$(ctl --json status)
	[ "$(jq -r '.bpf.hellos_split' <<<"$st")" = 0 ] || fail "status: $st"
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_verify_failures_total{ca="_none",host="api.example.test",reason="unknown_ca"}')" 1
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_handshakes_total{host="api.example.test",verdict="block"}')" 1
}
