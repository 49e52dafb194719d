#!/usr/bin/env bats
# Metrics (issue 8): the Prometheus exposition over the admin socket (`mtls-edgectl metrics`) and
# the HTTP endpoint ([metrics] listen), parsed strictly and checked against what each test did.

load helpers
bats_require_minimum_version 1.5.0

API=api.example.test

setup() {
	api_setup
}

teardown() {
	stop_all
}

# scrape NAME: both expositions, parsed, into $DIR/NAME.admin and $DIR/NAME.http.
scrape() {
	local port
	ctl metrics >"$DIR/$1.admin.txt" || fail "mtls-edgectl metrics failed"
	prom_parse <"$DIR/$1.admin.txt" >"$DIR/$1.admin" || fail "admin exposition rejected"
	port=$(metrics_port) || fail "no metrics endpoint in the log"
	curl -sS --max-time 5 -D "$DIR/$1.headers" "http://127.0.0.1:$port/metrics" >"$DIR/$1.http.txt" ||
		fail "GET /metrics failed"
	prom_parse <"$DIR/$1.http.txt" >"$DIR/$1.http" || fail "HTTP exposition rejected"
}

@test "handshakes, verify failures, paths and bytes in the exposition match what the test did" {
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	start_daemon --metrics-listen 127.0.0.1:0
	log_mark
	counter_mark closed

	# good
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	wait_log "close peer=.* sni=$API .*reason=done"
	# bad certificate (unknown CA), no certificate, unknown SNI
	run edge_curl_as mallory "$API" /
	assert_failure
	run edge_s_client "$API" -tls1_3
	refute_output --partial 'hello from upstream'
	run edge_s_client nope.example.test
	refute_output --partial 'hello from upstream'
	wait_log "handshake .*sni=$API verdict=fail reason=unknown_ca"
	wait_log "handshake .*sni=$API verdict=fail reason=no_client_cert"
	wait_log "handshake .*sni=nope.example.test verdict=fail reason=unknown_sni"
	# A line is logged before its connection leaves the in-flight count and adds its bytes to
	# the totals: scrape once all four connections are freed, not in that window.
	wait_counter closed 4

	scrape m
	for f in m.admin m.http; do
		v() { prom_value "$DIR/$f" "$1"; }
		assert_equal "$(v "mtls_edge_handshakes_total{host=\"$API\",verdict=\"pass\"}")" 1
		assert_equal "$(v "mtls_edge_handshakes_total{host=\"$API\",verdict=\"fail\"}")" 2
		assert_equal "$(v 'mtls_edge_handshakes_total{host="_other",verdict="fail"}')" 1
		assert_equal "$(v "mtls_edge_verify_failures_total{ca=\"_none\",host=\"$API\",reason=\"unknown_ca\"}")" 1
		assert_equal "$(v "mtls_edge_verify_failures_total{ca=\"_none\",host=\"$API\",reason=\"no_client_cert\"}")" 1
		assert_equal "$(v 'mtls_edge_handshake_failures_total{reason="unknown_sni"}')" 1
		assert_equal "$(v 'mtls_edge_handshake_failures_total{reason="unknown_ca"}')" 1
		assert_equal "$(v 'mtls_edge_handshake_failures_total{reason="no_client_cert"}')" 1
		assert_equal "$(v mtls_edge_handshakes_ok_total)" 1
		assert_equal "$(v mtls_edge_handshakes_failed_total)" 3
		assert_equal "$(v mtls_edge_accepted_total)" 4
		assert_equal "$(v mtls_edge_handshakes_in_flight)" 0
		assert_equal "$(($(v 'mtls_edge_connections_total{path="ktls"}') + $(v 'mtls_edge_connections_total{path="userspace"}')))" 1
		assert_equal "$(v 'mtls_edge_reloads_total{result="failed"}')" 0
		assert_equal "$(v mtls_edge_bpf_enabled)" 0
		# The label space: nothing but the SNI object and the one bucket.
		run grep -c '^mtls_edge_handshakes_total{' "$DIR/$f"
		assert_output 3
	done
	# bytes: the close line's counts, each way
	bin=$(log_since | grep "close peer=.* sni=$API " | grep -o 'bytes_in=[0-9]*' | cut -d= -f2)
	bout=$(log_since | grep "close peer=.* sni=$API " | grep -o 'bytes_out=[0-9]*' | cut -d= -f2)
	[ "$bin" -gt 0 ] && [ "$bout" -gt 0 ]
	assert_equal "$(prom_value "$DIR/m.http" 'mtls_edge_relayed_bytes_total{direction="client_to_upstream"}')" "$bin"
	assert_equal "$(prom_value "$DIR/m.http" 'mtls_edge_relayed_bytes_total{direction="upstream_to_client"}')" "$bout"
	assert_equal "$(prom_value "$DIR/m.http" mtls_edge_bytes_out_total)" "$bout"
	# The HTTP answer is the exposition format's content type.
	grep -qi '^content-type: text/plain; version=0.0.4' "$DIR/m.headers"
	# Counters from both endpoints agree (nothing happened in between).
	diff <(grep -v -e _timestamp_seconds -e mtls_edge_bpf "$DIR/m.admin") \
		<(grep -v -e _timestamp_seconds -e mtls_edge_bpf "$DIR/m.http")
}

@test "an SNI the daemon does not serve never becomes a label" {
	start_daemon --metrics-listen 127.0.0.1:0
	log_mark
	for h in a b c; do
		edge_s_client "$h.attacker.test" >/dev/null || true
	done
	wait_log "sni=c.attacker.test verdict=fail reason=unknown_sni"
	scrape s
	assert_equal "$(prom_value "$DIR/s.admin" 'mtls_edge_handshakes_total{host="_other",verdict="fail"}')" 3
	run grep -c attacker "$DIR/s.admin.txt"
	assert_output 0
}

@test "the CA label names the uploaded CA that issued a refused certificate, or builtin" {
	local id
	make_ca "$PKI/partner" "partner CA"
	# A partner certificate for servers only: invalid_purpose, issued by a known CA.
	sign_cert "$PKI/partner" "$DIR/srv" srv "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
	run ctl ca upload "$PKI/partner.crt" --name partner --json
	assert_success
	id=$(echo "$output" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
	run ctl ca hosts set "$id" "$API"
	assert_success
	client_cert bob
	run ctl cert revoke "$(openssl x509 -in "$DIR/bob.crt" -noout -serial | cut -d= -f2)" --yes
	assert_success
	start_daemon --metrics-listen 127.0.0.1:0
	log_mark
	run edge_curl_as srv "$API" /
	assert_failure
	run edge_curl_as bob "$API" /
	assert_failure
	wait_log "verdict=fail reason=invalid_purpose"
	wait_log "verdict=fail reason=cert_revoked"
	scrape ca
	assert_equal "$(prom_value "$DIR/ca.http" "mtls_edge_verify_failures_total{ca=\"partner\",host=\"$API\",reason=\"invalid_purpose\"}")" 1
	assert_equal "$(prom_value "$DIR/ca.http" "mtls_edge_verify_failures_total{ca=\"builtin\",host=\"$API\",reason=\"cert_revoked\"}")" 1
}

@test "reloads: successes and failures are counted; status summarises the same numbers" {
	start_daemon --metrics-listen 127.0.0.1:0
	run edge_curl_as alice "$API" /
	assert_success
	run ctl site add example.org
	assert_success
	echo garbage >"$PKI/$API.crt"
	run ctl reload
	assert_failure 7
	scrape r
	assert_equal "$(prom_value "$DIR/r.admin" 'mtls_edge_reloads_total{result="ok"}')" 1
	assert_equal "$(prom_value "$DIR/r.admin" 'mtls_edge_reloads_total{result="failed"}')" 1
	assert_equal "$(prom_value "$DIR/r.admin" mtls_edge_last_reload_ok)" 0
	run --separate-stderr ctl --json status
	assert_success
	[ "$(jq -r ".handshakes_by_host[\"$API\"].pass" <<<"$output")" = 1 ]
	[ "$(jq -r .last_reload.succeeded <<<"$output")" = 1 ]
	[ "$(jq -r .last_reload.failed <<<"$output")" = 1 ]
	[ "$(jq -r .metrics_listen <<<"$output")" = "127.0.0.1:$(metrics_port)" ]
	[ "$(jq -r .counters.handshakes_ok <<<"$output")" = "$(prom_value "$DIR/r.admin" mtls_edge_handshakes_ok_total)" ]
	run ctl status
	assert_line --regexp "^handshakes_by_host\.$API\.pass: +1$"
	assert_line --regexp '^last_reload.failed: +1$'
}

@test "the HTTP endpoint answers GET /metrics only; it is off unless configured" {
	start_daemon --metrics-listen 127.0.0.1:0
	port=$(metrics_port)
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metricsx"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics?x=1"
	assert_output 200
	# the daemon still serves after a client that sends nothing and goes away
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	exec 5>&-
	run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics"
	assert_output 200
	stop_all
	: >"$LOG"
	start_daemon
	run grep -c 'metrics at http' "$LOG"
	assert_output 0
	run --separate-stderr ctl --json status
	[ "$(jq -r .metrics_listen <<<"$output")" = null ]
	run ctl metrics
	assert_success
	assert_output --partial '# TYPE mtls_edge_handshakes_total counter'
}

@test "a metrics address off loopback is refused unless allow_remote = yes is written" {
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --metrics-listen 0.0.0.0:0 --check
	assert_failure 2
	assert_output --partial "[metrics] listen = 0.0.0.0:0 is not a loopback address"
	assert_output --partial "allow_remote = yes"
	printf '[metrics]\nlisten = 0.0.0.0:0\nallow_remote = yes\n' >"$DIR/remote.conf"
	run "$BIN/mtls-edged" -c "$DIR/remote.conf" --state "$STATE" --listen 127.0.0.1:0 --check
	assert_success
	printf '[metrics]\nallow_remote = maybe\n' >"$DIR/bad.conf"
	run "$BIN/mtls-edged" -c "$DIR/bad.conf" --state "$STATE" --listen 127.0.0.1:0 --check
	assert_failure 2
	assert_output --partial "bad.conf:2: allow_remote: 'maybe' is not yes or no"
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --metrics-listen nowhere --check
	assert_failure 2
	assert_output --partial "--metrics-listen: bad address 'nowhere'"
}
