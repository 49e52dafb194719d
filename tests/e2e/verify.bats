#!/usr/bin/env bats
# mtls-edgectl verify: the daemon's own verifier, offline, against the store; exit 0 only when
# the certificate is valid for the hostname.

load helpers

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	add_sni b.example.test
	client_cert alice
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
}

teardown() {
	stop_all
}

@test "a valid certificate: exit 0, reason ok, and what the daemon would do" {
	run ctl verify "$DIR/alice.crt" --host api.example.test
	assert_success
	assert_output --regexp "verdict: +valid"
	assert_output --regexp "reason: +ok"
	assert_output --regexp "daemon: +relay to the upstream"
}

@test "the offline verdict is the daemon's verdict, reason for reason" {
	start_daemon
	for who in mallory alice; do
		log_mark
		edge_curl_as "$who" api.example.test / >/dev/null 2>&1 || true
		wait_log "handshake peer=.* sni=api.example.test verdict="
		live=$(log_since | grep -o 'verdict=[a-z]* reason=[a-z_]*' | head -1 | sed 's/.*reason=//')
		run ctl verify "$DIR/$who.crt" --host api.example.test --json
		echo "$output" | grep -q "\"reason\":\"$live\"" ||
			fail "$who: the daemon said $live, verify said: $output"
	done
}

@test "an unknown CA, an expired and a revoked certificate: exit 5 with the reason" {
	run ctl verify "$DIR/mallory.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +unknown_ca"
	assert_output --regexp "daemon: +refuse: the handshake fails with a TLS alert"
	run faketime -f '-400d' "$BIN/mtls-edgectl" --state "$STATE" cert create --cn old --days 30 \
		--out "$DIR/old"
	assert_success
	run ctl verify "$DIR/old.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +cert_expired"
	# --at judges another moment: alice's 365-day certificate, 400 days from now.
	run ctl verify "$DIR/alice.crt" --host api.example.test --at "$(($(date +%s) + 400 * 86400))"
	assert_failure 5
	assert_output --regexp "reason: +cert_expired"
	run ctl cert revoke "$(openssl x509 -in "$DIR/alice.crt" -noout -serial | cut -d= -f2)" --yes
	assert_success
	run ctl verify "$DIR/alice.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +cert_revoked"
}

@test "trust is per hostname: an uploaded CA's certificate verifies only where it is bound" {
	make_ca "$PKI/partner" "partner CA"
	make_client_cert "$PKI/partner" "$DIR/carol" carol
	run ctl ca upload "$PKI/partner.crt" --name partner --json
	id=$(echo "$output" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
	run ctl ca hosts set "$id" api.example.test
	assert_success
	run ctl verify "$DIR/carol.crt" --host api.example.test
	assert_success
	run ctl verify "$DIR/carol.crt" --host b.example.test
	assert_failure 5
	assert_output --regexp "reason: +unknown_ca"
}

@test "verify refuses bad input clearly" {
	run ctl verify "$DIR/alice.crt"
	assert_failure 2
	assert_output --partial "--host"
	run ctl verify "$DIR/alice.key" --host api.example.test
	assert_failure 5
	run ctl verify "$DIR/alice.crt" --host api.example.test --at yesterday
	assert_failure 2
}
