#!/usr/bin/env bats
# TLS and mTLS from the edge to the upstream: the upstream's certificate verified (CA and name),
# the edge's client certificate presented when configured. The upstream is a real TLS server
# (openssl s_server -WWW serving a file), with and without a client-certificate requirement.

load helpers

# In the kTLS guest (EDGE_EXPECT_PATH=ktls) both sessions must go to the kernel: the relay
# splices between two kTLS sockets.
EXPECT=${EDGE_EXPECT_PATH:-userspace}

start_edge() {
	if [ "$EXPECT" = ktls ]; then
		start_daemon --ktls on
	else
		start_daemon
	fi
}

setup() {
	edge_setup
	make_site
	client_cert alice
	# The upstream's PKI: its own CA, a server cert for up.internal, and a client cert the
	# edge presents to it.
	make_ca "$PKI/up-ca" "upstream CA"
	sign_cert "$PKI/up-ca" "$PKI/up" up.internal "subjectAltName=DNS:up.internal
extendedKeyUsage=serverAuth"
	make_client_cert "$PKI/up-ca" "$PKI/edge-client" "the edge"
	mkdir -p "$DIR/www"
	head -c 3000000 /dev/urandom >"$DIR/www/blob"
}

teardown() {
	stop_all
}

# start_tls_upstream [s_server args]: s_server -WWW on 127.0.0.1:0; sets TLS_UP_PORT.
start_tls_upstream() {
	(cd "$DIR/www" && exec openssl s_server -accept 127.0.0.1:0 -cert "$PKI/up.crt" \
		-key "$PKI/up.key" -WWW "$@" >"$DIR/s_server.out" 2>&1 3>&-) &
	track_pid $!
	retry 100 0.05 grep -q '^ACCEPT' "$DIR/s_server.out"
	TLS_UP_PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$DIR/s_server.out")
}

# tls_sni CA NAME [sni add options]: api.example.test relays over TLS to the s_server upstream,
# verifying it against CA's certificate and the name NAME.
tls_sni() {
	local ca=$1 name=$2
	shift 2
	SNI_UPSTREAM=127.0.0.1:$TLS_UP_PORT add_sni api.example.test --upstream-tls on \
		--upstream-ca "$PKI/$ca.crt" --upstream-sni "$name" "$@"
}

fetch_blob() {
	edge_curl_as alice api.example.test /blob -o "$DIR/got"
}

@test "TLS to the upstream: its certificate is verified and the bytes arrive unaltered" {
	start_tls_upstream
	tls_sni up-ca up.internal
	start_edge
	log_mark
	run fetch_blob
	assert_success
	cmp "$DIR/www/blob" "$DIR/got"
	wait_log "close peer=.* path=$EXPECT"
	run ctl sni get api.example.test --json
	assert_output --partial '"upstream_tls":"on"'
}

@test "mTLS to the upstream: the edge presents its client certificate" {
	start_tls_upstream -Verify 1 -CAfile "$PKI/up-ca.crt"
	tls_sni up-ca up.internal \
		--upstream-cert "$PKI/edge-client.crt" --upstream-key "$PKI/edge-client.key"
	start_edge
	log_mark
	run fetch_blob
	assert_success
	cmp "$DIR/www/blob" "$DIR/got"
	wait_log "close peer=.* path=$EXPECT"
}

@test "an upstream that demands a client certificate refuses an edge without one" {
	start_tls_upstream -Verify 1 -CAfile "$PKI/up-ca.crt"
	tls_sni up-ca up.internal
	start_daemon
	log_mark
	run fetch_blob
	assert_failure
	wait_log "upstream tls failed sni=api.example.test"
}

@test "an upstream certificate from the wrong CA is refused, and said so" {
	start_tls_upstream
	make_ca "$PKI/other-ca" "some other CA"
	tls_sni other-ca up.internal
	start_daemon
	log_mark
	run fetch_blob
	assert_failure
	wait_log "upstream tls failed sni=api.example.test .*verify="
	run ctl status --json
	assert_output --regexp '"upstream_tls_failed": ?[1-9]'
}

@test "an upstream certificate for another name is refused" {
	start_tls_upstream
	tls_sni up-ca wrong.internal
	start_daemon
	log_mark
	run fetch_blob
	assert_failure
	wait_log "upstream tls failed sni=api.example.test .*hostname mismatch"
}

@test "sni add refuses an upstream client certificate without its key, and a key others can read" {
	make_server_cert api.example.test
	run ctl sni add api.example.test --cert "$PKI/api.example.test.crt" \
		--key "$PKI/api.example.test.key" --upstream 127.0.0.1:1 --upstream-tls on \
		--upstream-cert "$PKI/edge-client.crt"
	assert_failure 2
	assert_output --partial "--upstream-cert and --upstream-key go together"
	chmod 644 "$PKI/edge-client.key"
	run ctl sni add api.example.test --cert "$PKI/api.example.test.crt" \
		--key "$PKI/api.example.test.key" --upstream 127.0.0.1:1 --upstream-tls on \
		--upstream-cert "$PKI/edge-client.crt" --upstream-key "$PKI/edge-client.key"
	assert_failure 5
	assert_output --partial "chmod 600"
	run ctl sni list --json
	assert_output "[]"
}
