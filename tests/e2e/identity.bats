#!/usr/bin/env bats
# Identity rules: which verified certificates may reach a hostname (authorization after the
# verifier's authentication), on every action of the policy table, live in the running daemon;
# the CA names the CertificateRequest carries; the audit fields of the handshake line.

bats_require_minimum_version 1.5.0
load helpers

API=api.example.test

setup() {
	api_setup
	client_cert bob
}

teardown() {
	stop_all
}

# The id of the first entry a command printed (--json).
first_id() {
	echo "$1" | jq -r 'if type == "array" then .[0].id else .id end'
}

@test "allow: only the named identity passes; another certificate of the same CA is refused (alert)" {
	run --separate-stderr ctl identity allow "$API" --cn bob --json
	assert_success
	id=$(first_id "$output")
	start_daemon
	up_mark
	run edge_curl_as alice "$API" /
	assert_failure
	wait_log "handshake .*sni=$API verdict=fail reason=not_authorized"
	assert_upstream_untouched
	run edge_s_client "$API" -cert "$DIR/alice.crt" -key "$DIR/alice.key"
	assert_output --partial "alert certificate unknown"
	run edge_curl_as bob "$API" /
	assert_success
	assert_output "hello from upstream"
	wait_log "handshake .*sni=$API verdict=pass reason=ok subject=\"CN=bob\".* rule=\"allow cn=bob \\(#$id\\)\""
	# Another hostname without rules admits every verified certificate, as before rules.
	add_sni open.example.test
	run edge_curl_as alice open.example.test /
	assert_output "hello from upstream"
}

@test "deny wins over allow; the entry that decided is logged, counted and in status" {
	run ctl identity allow "$API" --ca builtin
	assert_success
	run --separate-stderr ctl identity deny "$API" --cn alice --json
	assert_success
	id=$(first_id "$output")
	start_daemon
	run edge_curl_as alice "$API" /
	assert_failure
	wait_log "handshake .*sni=$API verdict=fail reason=denied detail=\"deny cn=alice \\(#$id\\)\""
	run edge_curl_as bob "$API" /
	assert_output "hello from upstream"
	run ctl --json status
	assert_success
	[ "$(echo "$output" | jq -r '.counters.verify_failures.denied')" = 1 ] ||
		fail "status has no denied count: $output"
	run ctl metrics
	assert_success
	assert_output --partial "mtls_edge_verify_failures_total{host=\"$API\",reason=\"denied\",ca=\"builtin\"} 1"
}

@test "each action of the policy table applies to a refused identity: block, drop, optional" {
	run ctl identity allow "$API" --cn bob
	assert_success
	run ctl rule add --host "$API" --action block
	assert_success
	add_sni opt.example.test --mtls optional --forward headers
	run ctl identity allow opt.example.test --cn bob
	assert_success
	add_sni drop.example.test
	run ctl identity allow drop.example.test --cn bob
	assert_success
	run ctl rule add --host drop.example.test --action drop
	assert_success
	start_daemon
	run edge_curl_as alice "$API" / -i
	assert_success
	assert_output --partial "HTTP/1.1 403 Forbidden"
	wait_log "handshake .*sni=$API verdict=block reason=not_authorized"
	run edge_curl_as alice drop.example.test / -i
	assert_failure
	refute_output --partial "HTTP/1.1"
	wait_log "handshake .*sni=drop.example.test verdict=drop reason=not_authorized"
	# optional: relayed, and the upstream is told the certificate failed, and why
	run edge_curl_as alice opt.example.test /headers
	assert_success
	assert_output --partial "FAILED:not_authorized"
	wait_log "handshake .*sni=opt.example.test verdict=unverified reason=not_authorized"
	run edge_curl_as bob opt.example.test /headers
	assert_output --partial "SUCCESS"
}

@test "a rule change is live when the command returns and closes the live connections it refuses" {
	start_daemon
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	# The mark first: the download's handshake line may come before the next command runs.
	log_mark
	edge_curl_as alice "$API" /bytes/500000000 --limit-rate 200k -o /dev/null \
		>"$DIR/live.out" 2>&1 3>&- &
	track_pid "$!"
	wait_log "handshake peer=.* verdict=pass reason=ok subject=\"CN=alice\""
	run ctl identity deny "$API" --cn alice
	assert_success
	# The reload is synchronous: the very next handshake is refused.
	run edge_curl_as alice "$API" /
	assert_failure
	wait_log "not authorized peer=.* closing the live connection"
	retry 200 0.05 no_open_daemon_sockets
	assert_counter unauthorized_closed 1
	# In the kTLS guest the live connection had no SSL object left (its leaf was kept for this).
	if [ "${EDGE_EXPECT_PATH:-}" = ktls ]; then
		[ "$(counter ktls_released)" -ge 1 ] || fail "no kTLS connection released its SSL objects"
	fi
	run edge_curl_as bob "$API" /
	assert_output "hello from upstream"
	# The entry deleted: alice passes again.
	run --separate-stderr ctl identity list "$API" --json
	id=$(first_id "$output")
	run ctl identity delete "$id"
	assert_success
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
}

@test "a SPIFFE ID is believed only from its trust domain's CA" {
	local id
	make_ca "$PKI/partner" "partner CA"
	sign_cert "$PKI/partner" "$DIR/svc" svc "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://partner.example/ns/prod/svc"
	run --separate-stderr ctl ca upload "$PKI/partner.crt" --name partner --trust-domain partner.example --json
	assert_success
	id=$(echo "$output" | jq -r .id)
	run ctl ca hosts set "$id" "$API"
	assert_success
	run ctl identity allow "$API" --uri-prefix spiffe://partner.example/ns/prod/
	assert_success
	# The same SPIFFE ID from the built-in CA, which is not partner.example's.
	client_cert forged --uri spiffe://partner.example/ns/prod/svc
	start_daemon
	run edge_curl_as svc "$API" /
	assert_output "hello from upstream"
	wait_log "handshake .*verdict=pass .*sans=URI:spiffe://partner.example/ns/prod/svc "
	run edge_curl_as forged "$API" /
	assert_failure
	wait_log "handshake .*verdict=fail reason=not_authorized"
}

@test "the CertificateRequest names the trusted CAs, none, or a list of its own" {
	local builtin="mtls-edge built-in CA" # its subject's CN
	add_sni none.example.test --ca-hints none
	make_ca "$PKI/hint" "hint CA"
	add_sni list.example.test --ca-hints "$PKI/hint.crt"
	start_daemon
	for v in -tls1_2 -tls1_3; do
		run edge_s_client "$API" "$v" -cert "$DIR/alice.crt" -key "$DIR/alice.key"
		assert_output --partial "Acceptable client certificate CA names"
		assert_output --partial "CN = $builtin"
		run edge_s_client none.example.test "$v" -cert "$DIR/alice.crt" -key "$DIR/alice.key"
		assert_output --partial "No client certificate CA names sent"
		run edge_s_client list.example.test "$v" -cert "$DIR/alice.crt" -key "$DIR/alice.key"
		assert_output --partial "CN = hint CA"
		refute_output --partial "CN = $builtin"
	done
}

@test "verify --host gives the daemon's verdict offline, naming the entry" {
	run --separate-stderr ctl identity allow "$API" --cn bob --json
	id=$(first_id "$output")
	run --separate-stderr ctl verify "$DIR/alice.crt" --host "$API" --json
	[ "$status" -eq 5 ] || fail "verify of a refused identity exited $status: $output"
	[ "$(echo "$output" | jq -r .reason)" = not_authorized ]
	run --separate-stderr ctl verify "$DIR/bob.crt" --host "$API" --json
	assert_success
	[ "$(echo "$output" | jq -r .rule)" = "allow cn=bob (#$id)" ] || fail "$output"
	[ "$(echo "$output" | jq -r .ca)" = builtin ]
}

@test "the handshake line carries the audit record: fingerprint, SPKI, SANs" {
	local fp spki
	client_cert carol --dns carol.example.test --email carol@example.test
	fp=$(openssl x509 -in "$DIR/carol.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : |
		tr A-F a-f)
	spki=$(openssl x509 -in "$DIR/carol.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -d' ' -f1)
	start_daemon
	run edge_curl_as carol "$API" /
	assert_output "hello from upstream"
	wait_log "handshake .*subject=\"CN=carol\".* sha256=$fp spki=$spki sans=DNS:carol.example.test,email:carol@example.test "
	! grep -q "PRIVATE" "$LOG" || false
}
