#!/usr/bin/env bats
# Refusals reach the client whole: a refused handshake's alert is not lost to a reset (the
# edge reads the client's last flight away before it closes), and a revocation or a rule
# change closes the live connections it hits before the command that made it returns.

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


# late_alert NAME TLS: a handshake as NAME that the edge refuses, by a client that sends its
# last flight record by record and reads late: prints what it got ("alert: ..." or "reset: ...").
late_alert() {
	"$BIN/edge-client" --connect "127.0.0.1:$EDGE_PORT" --sni "$API" --ca "$PKI/server-ca.crt" \
		--cert "$DIR/$1.crt" --key "$DIR/$1.key" --tls "$2" --timeout 10 late-alert
}

@test "a refused TLS 1.2 or 1.3 handshake's alert reaches a client that sends slowly and reads late" {
	start_daemon
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	for v in 1.2 1.3; do
		for _ in 1 2 3 4 5; do
			run late_alert alice "$v"
			assert_success
			assert_output "alert: certificate revoked"
		done
	done
	wait_log "handshake .*verdict=fail reason=cert_revoked"
	# the draining connections end with the clients: nothing is left open
	retry 200 0.05 no_open_daemon_sockets
}

@test "the alert rule's alert and an unknown CA's are not lost to a reset either" {
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	add_sni alerted.example.test
	run ctl rule add --host alerted.example.test --action alert
	assert_success
	start_daemon
	for _ in 1 2 3; do
		run late_alert mallory 1.2
		assert_output --regexp "^alert: (unknown CA|bad certificate)$"
	done
	run "$BIN/edge-client" --connect "127.0.0.1:$EDGE_PORT" --sni alerted.example.test \
		--ca "$PKI/server-ca.crt" --cert "$DIR/mallory.crt" --key "$DIR/mallory.key" --tls 1.2 \
		--timeout 10 late-alert
	assert_output --regexp "^alert: "
}

@test "a client that keeps sending after a refused handshake is cut at a bound" {
	start_daemon
	run ctl cert revoke "$(serial_of alice)" --yes
	fd_mark
	# A refused handshake, then megabytes of garbage: the edge reads at most 64 KiB of it
	# (or a second) before it closes; the client's writes then fail.
	run bash -c '{ printf "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"; head -c 4000000 /dev/zero; } |
		timeout 20 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -CAfile "$3" \
			-cert "$4" -key "$5" -tls1_2 -ign_eof' _ "$EDGE_PORT" "$API" "$PKI/server-ca.crt" \
		"$DIR/alice.crt" "$DIR/alice.key"
	assert_output --partial "alert certificate revoked"
	fds_back
}

@test "cert revoke closes the live keep-alive connections it hits before it returns" {
	local done_at late
	start_daemon
	"$BIN/edge-client" --connect "127.0.0.1:$EDGE_PORT" --sni "$API" --ca "$PKI/server-ca.crt" \
		--cert "$DIR/alice.crt" --key "$DIR/alice.key" --timeout 20 poll 400 20 \
		>"$DIR/poll.out" 2>&1 3>&- &
	track_pid "$!"
	retry 200 0.05 grep -q "^5 sent=.* ok$" "$DIR/poll.out"
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	done_at=$(date +%s%3N)
	retry 200 0.05 grep -q " closed$" "$DIR/poll.out"
	# No request sent after the command returned was answered.
	late=$(awk -v t="$done_at" '$3 == "ok" { split($2, a, "="); if (a[2] > t) n++ } END { print n + 0 }' \
		"$DIR/poll.out")
	[ "$late" = 0 ] || fail "$late requests sent after cert revoke returned were answered: $(cat "$DIR/poll.out")"
	run edge_curl_as bob "$API" /
	assert_output "hello from upstream"
}

@test "an identity rule change closes the live keep-alive connections it refuses before it returns" {
	local done_at late
	start_daemon
	"$BIN/edge-client" --connect "127.0.0.1:$EDGE_PORT" --sni "$API" --ca "$PKI/server-ca.crt" \
		--cert "$DIR/alice.crt" --key "$DIR/alice.key" --timeout 20 poll 400 20 \
		>"$DIR/poll.out" 2>&1 3>&- &
	track_pid "$!"
	retry 200 0.05 grep -q "^5 sent=.* ok$" "$DIR/poll.out"
	run ctl identity deny "$API" --cn alice
	assert_success
	done_at=$(date +%s%3N)
	retry 200 0.05 grep -q " closed$" "$DIR/poll.out"
	late=$(awk -v t="$done_at" '$3 == "ok" { split($2, a, "="); if (a[2] > t) n++ } END { print n + 0 }' \
		"$DIR/poll.out")
	[ "$late" = 0 ] || fail "$late requests sent after identity deny returned were answered"
}
