#!/usr/bin/env bats
# The relay after the handshake: every TLS version and cipher, large transfers both ways with
# their content checked, close_notify, upstream EOF, KeyUpdate, renegotiation, corrupted records.
#
# On a kernel without kTLS this runs the userspace relay. tests/vm/ runs the same file in a
# Debian guest with EDGE_EXPECT_PATH=ktls, where every assertion also demands the kTLS path.

load helpers

EXPECT=${EDGE_EXPECT_PATH:-userspace}
BIG=${EDGE_BIG_BYTES:-67108864}

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	client_cert alice
	if [ "$EXPECT" = ktls ]; then
		start_daemon --ktls on
	else
		start_daemon
	fi
	CLIENT=("$BIN/edge-client" --connect "127.0.0.1:$EDGE_PORT" --sni api.example.test
		--ca "$PKI/server-ca.crt" --cert "$DIR/alice.crt" --key "$DIR/alice.key" --timeout 20)
}

teardown() {
	stop_all
}

# The last close line must name the expected path.
assert_path() {
	wait_log "close peer=.* path=$EXPECT"
}

tls_stat() {
	awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null || echo 0
}

cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$EDGE_PID/stat"
}

@test "the daemon reports the relay path it will use" {
	if [ "$EXPECT" = ktls ]; then
		assert grep -q 'ktls=available' "$LOG"
	else
		assert grep -qE 'ktls=(unavailable|off)' "$LOG"
	fi
}

@test "TLS 1.2 and 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 all relay" {
	local c
	for c in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
		log_mark
		run "${CLIENT[@]}" --tls 1.3 --cipher "$c" info
		assert_success
		assert_output --partial "tls=TLSv1.3 cipher=$c"
		assert_output --partial "request ok"
		assert_path
	done
	for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 \
		ECDHE-ECDSA-CHACHA20-POLY1305; do
		log_mark
		run "${CLIENT[@]}" --tls 1.2 --cipher "$c" info
		assert_success
		assert_output --partial "tls=TLSv1.2 cipher=$c"
		assert_path
	done
}

@test "a large download arrives whole and unaltered" {
	local before after tx0 tx1
	before=$(cpu_ticks)
	tx0=$(tls_stat TlsTxSw)
	log_mark
	run "${CLIENT[@]}" get "$BIG"
	assert_success
	assert_output --partial "get ok bytes=$BIG"
	assert_path
	after=$(cpu_ticks)
	tx1=$(tls_stat TlsTxSw)
	echo "# download $BIG bytes: daemon CPU $(((after - before) * 10)) ms ($EXPECT path)" >&3
	if [ "$EXPECT" = ktls ]; then
		[ "$tx1" -gt "$tx0" ] || fail "/proc/net/tls_stat TlsTxSw did not grow ($tx0 -> $tx1)"
	fi
}

@test "a client that reads slowly gets every byte and the close_notify; the daemon's memory stays bounded" {
	local rss0 rss1
	rss0=$(daemon_rss_kb)
	log_mark
	# 16 MiB with pauses: the daemon's sends to the client meet a full socket buffer and wait
	# for POLLOUT (userspace: the batched records; kTLS: the splice) while the upstream waits.
	run "${CLIENT[@]}" slow-get 16777216
	assert_success
	assert_output --partial "get ok bytes=16777216"
	assert_output --partial "close_notify received"
	assert_path
	rss1=$(daemon_rss_kb)
	# A connection holds at most a 16 KiB read buffer and a 64 KiB batch per direction.
	[ $((rss1 - rss0)) -lt 8192 ] || fail "daemon RSS grew by $((rss1 - rss0)) KiB for one slow reader"
}

@test "pipelined requests read late: every response whole and in order" {
	# 100 x 400 KB (more than the socket buffers on both sides hold) queued before the client reads a byte: between responses the upstream has
	# nothing to read for a moment while the client's socket is full, the case where the
	# daemon's batched records must wait for POLLOUT rather than for the upstream.
	run "${CLIENT[@]}" pipeline 100 400000
	assert_success
	assert_output --partial "pipeline ok responses=100 bytes=400000"
	assert_path
}

@test "a large upload arrives whole and unaltered" {
	local before after rx0 rx1
	before=$(cpu_ticks)
	rx0=$(tls_stat TlsRxSw)
	log_mark
	run "${CLIENT[@]}" put "$BIG"
	assert_success
	assert_output --partial "put ok bytes=$BIG"
	assert_path
	after=$(cpu_ticks)
	rx1=$(tls_stat TlsRxSw)
	echo "# upload $BIG bytes: daemon CPU $(((after - before) * 10)) ms ($EXPECT path)" >&3
	if [ "$EXPECT" = ktls ]; then
		[ "$rx1" -gt "$rx0" ] || fail "/proc/net/tls_stat TlsRxSw did not grow ($rx0 -> $rx1)"
	fi
}

@test "TLS 1.2 moves the same bytes both ways" {
	run "${CLIENT[@]}" --tls 1.2 get 1048576
	assert_success
	assert_output --partial "get ok bytes=1048576"
	run "${CLIENT[@]}" --tls 1.2 put 1048576
	assert_success
	assert_output --partial "put ok bytes=1048576"
}

@test "close_notify from the client is a half-close: the response still arrives" {
	log_mark
	run "${CLIENT[@]}" close-notify
	assert_success
	assert_output --partial "response after close_notify"
	wait_log "close peer=.* path=$EXPECT reason=done"
}

@test "upstream EOF reaches the client as close_notify and the connection ends cleanly" {
	log_mark
	run "${CLIENT[@]}" get 100000
	assert_success
	assert_output --partial "close_notify received"
	wait_log "close peer=.* path=$EXPECT reason=done"
	retry 200 0.05 no_open_daemon_sockets
}

@test "a TLS 1.3 KeyUpdate is handled or ends in a clean close, never a hang" {
	log_mark
	run "${CLIENT[@]}" --tls 1.3 keyupdate
	assert_success
	assert_output --regexp "handled|closed"
	refute_output --partial hang
	if [ "$EXPECT" = userspace ]; then
		# our own record layer follows it: the second request is answered under the
		# client's new keys, after our KeyUpdate in answer (update_requested)
		assert_output --partial handled
		assert_output --partial "server KeyUpdate received"
	fi
	retry 200 0.05 no_open_daemon_sockets
}

@test "TLS 1.3 on the userspace relay runs on the edge's own record layer; TLS 1.2 stays OpenSSL's" {
	[ "$EXPECT" = userspace ] || skip "the kTLS path: the kernel seals and opens the records"
	local before
	before=$(counter own_records)
	run "${CLIENT[@]}" --tls 1.3 get 1000000
	assert_success
	assert_output --partial "get ok bytes=1000000"
	[ "$(counter own_records)" -eq $((before + 1)) ] || fail "own_records did not count it"
	run "${CLIENT[@]}" --tls 1.2 get 1000000
	assert_success
	[ "$(counter own_records)" -eq $((before + 1)) ] || fail "a TLS 1.2 session went to it"
}

@test "record_layer = openssl keeps every TLS 1.3 session OpenSSL's, and it relays the same" {
	[ "$EXPECT" = userspace ] || skip "the kTLS path: the kernel seals and opens the records"
	kill "$EDGE_PID"
	wait_pid "$EDGE_PID" 20 || true
	printf '[tls]\nrecord_layer = openssl\n' >"$DIR/edged.conf"
	start_daemon --config "$DIR/edged.conf"
	local client=("${CLIENT[@]}")
	client[2]="127.0.0.1:$EDGE_PORT"
	run "${client[@]}" --tls 1.3 get 1000000
	assert_success
	assert_output --partial "get ok bytes=1000000"
	run "${client[@]}" --tls 1.3 keyupdate
	assert_output --partial handled
	[ "$(counter own_records)" -eq 0 ] || fail "a session went to our record layer"
	printf '[tls]\nrecord_layer = kernel\n' >"$DIR/bad.conf"
	run "$BIN/mtls-edged" --config "$DIR/bad.conf" --check
	assert_failure
	assert_output --partial "record_layer: 'kernel' is not one of edge, openssl"
}

@test "a TLS 1.2 renegotiation attempt is refused, within a bound" {
	log_mark
	run "${CLIENT[@]}" --tls 1.2 reneg
	assert_success
	assert_output --regexp "refused|closed"
	retry 200 0.05 no_open_daemon_sockets
}

@test "a corrupted record after the handshake closes the connection" {
	log_mark
	run "${CLIENT[@]}" corrupt
	assert_success
	assert_output --partial closed
	retry 200 0.05 no_open_daemon_sockets
}

@test "the status counters name the path taken" {
	run "${CLIENT[@]}" info
	assert_success
	run ctl status --json
	assert_success
	if [ "$EXPECT" = ktls ]; then
		assert_output --regexp '"path_ktls": ?[1-9]'
	else
		assert_output --regexp '"path_userspace": ?[1-9]'
	fi
}
