#!/usr/bin/env bats
# The management plane, live in the running daemon: block rules and their actions, revocation
# (new handshakes refused once the command returns; live connections closed), CRLs replaced hot,
# and a change the daemon cannot apply leaving the old state serving.

load helpers

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	add_sni open.example.test
	client_cert alice
	client_cert bob
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
}

teardown() {
	stop_all
}


@test "rule block: a failed certificate gets the 403 page; no certificate too; a valid one passes" {
	run ctl rule add --host api.example.test --action block
	assert_success
	start_daemon
	up_mark
	run edge_curl_as mallory api.example.test / -i
	assert_success
	assert_output --partial "HTTP/1.1 403 Forbidden"
	assert_output --partial "403 Forbidden: a valid client certificate is required"
	run edge_curl api.example.test / -i
	assert_success
	assert_output --partial "HTTP/1.1 403 Forbidden"
	assert_upstream_untouched
	run edge_curl_as alice api.example.test /
	assert_success
	assert_output "hello from upstream"
	# Another hostname keeps its own behaviour (required mode: a TLS alert).
	run edge_curl_as mallory open.example.test /
	assert_failure
	refute_output --partial "403"
}

@test "rule alert: the handshake ends in a TLS alert" {
	run ctl rule add --host api.example.test --action alert
	assert_success
	start_daemon
	up_mark
	run edge_s_client api.example.test -cert "$DIR/mallory.crt" -key "$DIR/mallory.key"
	assert_output --regexp "alert (unknown ca|bad certificate)"
	assert_upstream_untouched
	run edge_curl_as alice api.example.test /
	assert_output "hello from upstream"
}

@test "rule drop: the connection is closed without an answer" {
	run ctl rule add --host api.example.test --action drop
	assert_success
	start_daemon
	up_mark
	log_mark
	run edge_curl_as mallory api.example.test / -i
	assert_failure
	refute_output --partial "HTTP/1.1"
	wait_log "verdict=drop reason=unknown_ca"
	assert_upstream_untouched
}

@test "cert revoke: new handshakes refused as soon as it returns, and the live download closed" {
	start_daemon
	run edge_curl_as alice api.example.test /
	assert_output "hello from upstream"
	# A slow download that stays open. The mark first: its handshake line may come before the
	# next command of this shell runs.
	log_mark
	edge_curl_as alice api.example.test /bytes/500000000 --limit-rate 200k -o /dev/null \
		>"$DIR/live.out" 2>&1 3>&- &
	local dl=$!
	track_pid "$dl"
	wait_log "handshake peer=.* verdict=pass reason=ok subject=\"CN=alice\""
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	# The reload is synchronous: the very next handshake is refused.
	run edge_curl_as alice api.example.test /
	assert_failure
	wait_log "reason=cert_revoked"
	wait_log "revoked peer=.* closing the live connection"
	# In the kTLS guest the live connection had no SSL object left (its leaf was kept for this).
	if [ "${EDGE_EXPECT_PATH:-}" = ktls ]; then
		[ "$(counter ktls_released)" -ge 1 ] || fail "no kTLS connection released its SSL objects"
	fi
	# The daemon's side is cut at once (a reset). The client may still read what its own
	# kernel had already received, so the test looks at the daemon's sockets, not at curl.
	retry 200 0.05 no_open_daemon_sockets
	# Bob, from the same CA, is untouched.
	run edge_curl_as bob api.example.test /
	assert_output "hello from upstream"
}

@test "an uploaded CA's CRL refuses new handshakes and closes live ones; a replaced CRL applies hot" {
	local id serial
	make_ca "$PKI/partner" "partner CA"
	make_client_cert "$PKI/partner" "$DIR/carol" carol
	run ctl ca upload "$PKI/partner.crt" --name partner --json
	assert_success
	id=$(echo "$output" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
	run ctl ca hosts set "$id" api.example.test
	assert_success
	start_daemon
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	# A CRL from the partner CA that revokes carol.
	serial=$(serial_of carol)
	mkdir -p "$DIR/crl"
	: >"$DIR/crl/index.txt"
	printf 'R\t300101000000Z\t240101000000Z\t%s\tunknown\t/CN=carol\n' "$serial" >"$DIR/crl/index.txt"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=7\n' \
		"$DIR/crl/index.txt" "$DIR/crl/number" >"$DIR/crl/ca.cnf"
	echo 01 >"$DIR/crl/number"
	openssl ca -config "$DIR/crl/ca.cnf" -gencrl -keyfile "$PKI/partner.key" \
		-cert "$PKI/partner.crt" -out "$DIR/crl/revoked.pem" 2>/dev/null
	# Carol has a slow download open when the CRL lands.
	log_mark
	edge_curl_as carol api.example.test /bytes/500000000 --limit-rate 200k -o /dev/null \
		>"$DIR/live.out" 2>&1 3>&- &
	local dl=$!
	track_pid "$dl"
	wait_log "handshake peer=.* verdict=pass reason=ok subject=\"CN=carol\""
	run ctl ca crl set "$id" "$DIR/crl/revoked.pem"
	assert_success
	# Its nextUpdate is a week away: the CLI warns before it goes stale.
	run ctl ca list
	assert_success
	assert_output --partial "the CRL of CA $id reaches its nextUpdate"
	run edge_curl_as carol api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=fail reason=cert_revoked"
	wait_log "revoked peer=.* closing the live connection"
	# The daemon's side is cut at once (a reset). The client may still read what its own
	# kernel had already received, so the test looks at the daemon's sockets, not at curl.
	retry 200 0.05 no_open_daemon_sockets
	# An empty CRL replaces it: carol is back, with no restart.
	: >"$DIR/crl/index.txt"
	openssl ca -config "$DIR/crl/ca.cnf" -gencrl -keyfile "$PKI/partner.key" \
		-cert "$PKI/partner.crt" -out "$DIR/crl/empty.pem" 2>/dev/null
	run ctl ca crl set "$id" "$DIR/crl/empty.pem"
	assert_success
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
}

@test "a change the daemon cannot apply leaves the old state serving, and status says why" {
	start_daemon
	# The server key vanishes behind the store's back; the next change cannot be applied.
	mv "$PKI/open.example.test.key" "$PKI/open.example.test.key.away"
	run ctl site add example.org
	assert_failure 7
	assert_output --partial "open.example.test.key"
	run ctl status --json
	assert_output --regexp '"last_reload":\{[^}]*"ok":false'
	assert_output --partial "open.example.test.key"
	# The old snapshot keeps serving both hostnames.
	run edge_curl_as alice open.example.test /
	assert_output "hello from upstream"
	# Put it back and make a change: the daemon takes it.
	mv "$PKI/open.example.test.key.away" "$PKI/open.example.test.key"
	run ctl site add example.net
	assert_success
	run ctl status --json
	assert_output --regexp '"last_reload":\{[^}]*"ok":true'
}

@test "the daemon refuses to start with a key others can read, or a world-writable state dir" {
	chmod 644 "$PKI/api.example.test.key"
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --bpf off --check
	assert_failure
	assert_output --partial "chmod 600"
	chmod 600 "$PKI/api.example.test.key"
	chmod 0777 "$STATE"
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --bpf off --check
	assert_failure
	assert_output --partial "world-writable"
	chmod 0700 "$STATE"
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --bpf off --check
	assert_success
}
