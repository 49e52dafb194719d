#!/usr/bin/env bats
# `make run-fleet` (config/fleet-demo.sh) as a newcomer runs it: it starts etcd, the control and
# two edges on loopback, its request through each edge answers, the revocation it suggests
# refuses the certificate on both edges, and `make stop-fleet` (stop) ends every process it
# started. The state goes to this test's directory (FLEET_DEMO_DIR).

load helpers

setup() {
	command -v etcd >/dev/null || skip "etcd is not installed (make deps-test installs etcd-server)"
	edge_setup
	export FLEET_DEMO_DIR=$DIR/fleet
}

teardown() {
	"$REPO/config/fleet-demo.sh" stop >/dev/null 2>&1 || true
}

# demo_curl PORT NAME: alice's or bob's request through the edge on PORT.
demo_curl() {
	curl -sS --max-time 10 --cacert "$FLEET_DEMO_DIR/pki/server-ca.crt" \
		--resolve "api.example.test:$1:127.0.0.1" --cert "$FLEET_DEMO_DIR/$2.crt" \
		--key "$FLEET_DEMO_DIR/$2.key" "https://api.example.test:$1/"
}

@test "fleet demo: starts etcd, a control and two edges; a revocation at the control reaches both; stop ends it all" {
	run "$REPO/config/fleet-demo.sh" start
	assert_success
	[ "$(grep -c '^hello from upstream$' <<<"$output")" = 2 ] || fail "not two answers: $output"
	assert_output --partial "make stop-fleet"
	local -a ports pids
	mapfile -t ports <"$FLEET_DEMO_DIR/edges.port"
	[ "${#ports[@]}" = 2 ] || fail "edges.port: ${ports[*]}"
	for f in etcd edge-upstream edge-1 edge-2; do
		pids+=("$(cat "$FLEET_DEMO_DIR/$f.pid")")
	done
	# the revocation the demo prints, as it prints it
	local revoke
	revoke=$(grep -A1 '# revoke alice at the control' <<<"$output" | tail -1)
	run bash -c "$revoke"
	assert_success
	assert_output --partial "published to cluster demo"
	refute_output --partial "is not running"
	for p in "${ports[@]}"; do
		retry 100 0.05 bash -c "! curl -s --max-time 5 --cacert '$FLEET_DEMO_DIR/pki/server-ca.crt' --resolve 'api.example.test:$p:127.0.0.1' --cert '$FLEET_DEMO_DIR/alice.crt' --key '$FLEET_DEMO_DIR/alice.key' 'https://api.example.test:$p/'" ||
			fail "the edge on $p still lets alice in"
		run demo_curl "$p" alice
		assert_failure
		assert_output --partial "certificate revoked"
		run demo_curl "$p" bob
		assert_output "hello from upstream"
	done
	run "$BIN/mtls-edgectl" --state "$FLEET_DEMO_DIR/control" fleet status --json
	assert_success
	jq -e '(.nodes | length) == 2 and .in_sync' <<<"$output" || fail "$output"
	run "$REPO/config/fleet-demo.sh" stop
	assert_success
	for p in "${pids[@]}"; do
		! pid_alive "$p" || fail "pid $p still runs after stop"
	done
}
