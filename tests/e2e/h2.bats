#!/usr/bin/env bats
# HTTP/2 and gRPC through the edge with the clients people use: a real gRPC client and server
# (Debian's python3-grpcio: tests/tools/grpc_echo.py) and nghttp with many concurrent streams,
# over `--protocol tcp --alpn h2` (the edge relays the HTTP/2 bytes to an upstream that speaks
# them with prior knowledge). The CLI and handshake cases of ALPN are in alpn.bats.

bats_require_minimum_version 1.5.0
load helpers

# shellcheck disable=SC2034 # the hostname api_setup (helpers.bash) makes an SNI object for
API=api.example.test
GRPC=grpc.example.test
# Debian's python3 (its dist-packages hold grpcio), whatever python3 the PATH finds first.
PY=/usr/bin/python3
ECHO=$REPO/tests/tools/grpc_echo.py

setup() {
	api_setup
	rm -f "$DIR/grpc.port"
	"$PY" "$ECHO" server --port-file "$DIR/grpc.port" >"$DIR/grpc.out" 2>&1 3>&- &
	track_pid $!
	retry 200 0.05 test -s "$DIR/grpc.port" || fail "grpc_echo server did not start: $(cat "$DIR/grpc.out")"
	SNI_UPSTREAM=127.0.0.1:$(<"$DIR/grpc.port") add_sni "$GRPC" --alpn h2
}

teardown() {
	stop_all
}

# grpc_call NAME|- CALL [args]: grpc_echo's client through the edge as $GRPC, presenting
# $DIR/NAME.crt (- for no certificate).
grpc_call() {
	local who=$1 call=$2 cert=()
	shift 2
	[ "$who" = - ] || cert=(--cert "$DIR/$who.crt" --key "$DIR/$who.key")
	timeout 30 "$PY" "$ECHO" client --target "127.0.0.1:$EDGE_PORT" --ca "$PKI/server-ca.crt" \
		--authority "$GRPC" "${cert[@]}" --call "$call" "$@"
}


@test "gRPC: unary and server-streaming calls pass with a client certificate; ALPN h2 is logged and counted" {
	start_daemon
	log_mark
	run grpc_call alice say --arg hello
	assert_success
	assert_output "echo:hello"
	wait_log "handshake .*sni=$GRPC verdict=pass reason=ok subject=\"CN=alice\".* alpn=h2"
	run grpc_call alice tick --arg 5
	assert_success
	assert_output $'tick 0\ntick 1\ntick 2\ntick 3\ntick 4'
	run ctl metrics
	assert_line --regexp "^mtls_edge_alpn_total\{host=\"$GRPC\",protocol=\"h2\"\} [1-9][0-9]*$"
}

@test "gRPC: no certificate is refused (UNAVAILABLE), and nothing reaches the server" {
	start_daemon
	log_mark
	run grpc_call - say --arg hello
	assert_failure
	assert_output --partial "ended: UNAVAILABLE"
	refute_output --partial "echo:"
	wait_log "handshake .*sni=$GRPC verdict=fail reason=no_client_cert"
}

@test "gRPC: an SNI object without ALPN is refused by the client itself (why --alpn h2 exists)" {
	run ctl sni update "$GRPC" --alpn ''
	assert_success
	start_daemon
	run grpc_call alice say --arg hello
	assert_failure
	assert_output --partial "ended: UNAVAILABLE"
	refute_output --partial "echo:"
}

@test "gRPC: revoking the certificate ends a live stream, closed before cert revoke returns" {
	start_daemon
	log_mark
	grpc_call alice forever --timeout 60 >"$DIR/forever.out" 2>&1 3>&- &
	track_pid $!
	retry 200 0.05 grep -q '^tick 2$' "$DIR/forever.out" ||
		fail "no stream: $(cat "$DIR/forever.out")"
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	# The daemon closed the live connection as part of the revocation: logged and gone by now.
	run log_since
	assert_output --partial "revoked peer="
	assert_output --regexp "close peer=.* sni=$GRPC .*reason=cert_revoked"
	no_open_daemon_sockets || fail "a daemon socket is still open after the revocation"
	# The client's stream ends with an error (not a clean end, not still running).
	retry 200 0.05 grep -q '^ended: ' "$DIR/forever.out" ||
		fail "the stream did not end: $(tail -3 "$DIR/forever.out")"
	run grep '^ended: ' "$DIR/forever.out"
	assert_output --regexp '^ended: (UNAVAILABLE|INTERNAL|CANCELLED)'
	# And the next call is refused at the handshake.
	run grpc_call alice say --arg again
	assert_failure
	wait_log "handshake .*sni=$GRPC verdict=fail reason=cert_revoked"
}

@test "nghttp: 50 concurrent streams on one connection through the edge, every one answered" {
	local port
	port=$(closed_port)
	start_nginx "server {
		listen 127.0.0.1:$port http2;
		location / { return 200 \"stream answer\\n\"; }
	}" "$port"
	# nghttp sends no SNI to an address: the daemon's default SNI names the object.
	SNI_UPSTREAM=127.0.0.1:$port add_sni h2.example.test --alpn h2
	start_daemon --default-sni h2.example.test
	log_mark
	run timeout 30 nghttp -ns -m 50 --cert "$DIR/alice.crt" --key "$DIR/alice.key" \
		"https://127.0.0.1:$EDGE_PORT/x"
	assert_success
	[ "$(grep -cE ' 200 +[0-9]+ +/x$' <<<"$output")" = 50 ] || fail "want 50 answers: $output"
	# One TLS connection carried them all.
	[ "$(log_since | grep -c 'handshake .*sni=h2.example.test verdict=pass .*alpn=h2')" = 1 ] ||
		fail "want one handshake: $(log_since)"
	# Without a certificate nghttp gets nothing.
	run timeout 30 nghttp -ns "https://127.0.0.1:$EDGE_PORT/x"
	refute_output --regexp ' 200 +[0-9]+ +/x$'
}
