#!/usr/bin/env bats
# Listeners with their own policy: `--listen 'ADDR:PORT mtls=MODE'` (and the file's listen key)
# gives one listener an mTLS mode for every SNI object, beside listeners that follow each SNI
# object's own; `--default-sni` on the command line as well as in the file.

bats_require_minimum_version 1.5.0
load helpers

API=api.example.test

setup() {
	api_setup
}

teardown() {
	stop_all
}

# start_two MODE [args]: the daemon with its usual listener (each SNI object's mode) and a second
# one with mtls=MODE; sets EDGE_PORT (the first) and OWN_PORT (the second).
start_two() {
	local mode=$1
	shift
	start_daemon --listen "127.0.0.1:0 mtls=$mode" "$@"
	OWN_PORT=$(grep -o "listening addr=127\.0\.0\.1:[0-9]* mtls=$mode" "$LOG" | tail -n1 |
		sed 's/.*:\([0-9]*\) .*/\1/')
	[ -n "$OWN_PORT" ] || fail "no 'listening addr=... mtls=$mode' line in the log"
	[ "$OWN_PORT" != "$EDGE_PORT" ] || fail "both listeners logged port $EDGE_PORT"
}

# stop_edge: stops the daemon this test started (the upstream keeps running).
stop_edge() {
	kill -TERM "$EDGE_PID"
	wait_pid "$EDGE_PID" 10 || fail "mtls-edged still running 10 s after SIGTERM"
}

# on PORT CMD...: runs CMD with EDGE_PORT set to PORT.
on() {
	local port=$1 saved=$EDGE_PORT rc=0
	shift
	EDGE_PORT=$port
	"$@" || rc=$?
	EDGE_PORT=$saved
	return "$rc"
}

@test "an mtls=off listener beside the mTLS one: no certificate asked there, still required here" {
	start_two off
	# The mTLS listener: no certificate, no entry; the SNI object's mode (required) holds.
	log_mark
	up_mark
	run edge_curl "$API" /
	assert_failure
	wait_log "handshake .*sni=$API verdict=fail reason=no_client_cert"
	assert_upstream_untouched
	# The mtls=off listener: no CertificateRequest, straight to the upstream.
	log_mark
	run on "$OWN_PORT" edge_curl "$API" /
	assert_success
	assert_output "hello from upstream"
	wait_log "handshake .*sni=$API verdict=pass reason=not_requested"
	EDGE_PORT=$OWN_PORT run edge_s_client "$API"
	refute_output --partial "Acceptable client certificate CA names"
	assert_output --partial "hello from upstream"
	# A client that has a certificate is not asked for it there either.
	run on "$OWN_PORT" edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	# The mTLS listener still admits a verified client.
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	# status names each listener's mode.
	run --separate-stderr ctl --json status
	assert_success
	[ "$(echo "$output" | jq -r --arg a "127.0.0.1:$OWN_PORT" '.listen_mtls[$a]')" = off ] ||
		fail "status: $output"
	[ "$(echo "$output" | jq -r --arg a "127.0.0.1:$EDGE_PORT" '.listen_mtls[$a]')" = sni ] ||
		fail "status: $output"
}

@test "a block rule has no verdict to act on at an mtls=off listener; it still acts at the mTLS one" {
	run ctl rule add --host "$API" --action block
	assert_success
	start_two off
	run edge_curl "$API" / -o /dev/null -w '%{http_code}'
	assert_output 403
	run on "$OWN_PORT" edge_curl "$API" /
	assert_success
	assert_output "hello from upstream"
}

@test "mtls=required and mtls=optional listeners replace an SNI object's mode in both directions" {
	add_sni opt.example.test --mtls optional
	add_sni open.example.test --mtls off
	start_two required
	# The usual listener: optional lets a client without a certificate in, off asks nothing.
	run edge_curl opt.example.test /
	assert_output "hello from upstream"
	run edge_curl open.example.test /
	assert_output "hello from upstream"
	# The mtls=required listener: both refuse a client without one and admit a verified one.
	log_mark
	up_mark
	run on "$OWN_PORT" edge_curl opt.example.test /
	assert_failure
	run on "$OWN_PORT" edge_curl open.example.test /
	assert_failure
	wait_log "handshake .*sni=opt\.example\.test verdict=fail reason=no_client_cert"
	wait_log "handshake .*sni=open\.example\.test verdict=fail reason=no_client_cert"
	assert_upstream_untouched
	run on "$OWN_PORT" edge_curl_as alice open.example.test /
	assert_output "hello from upstream"
	stop_edge
	# An mtls=optional listener: a required SNI object lets an unverified client through there.
	start_two optional
	log_mark
	run on "$OWN_PORT" edge_curl "$API" /
	assert_output "hello from upstream"
	wait_log "handshake .*sni=$API verdict=unverified reason=no_client_cert"
	run edge_curl "$API" /
	assert_failure
}

@test "session_tickets = on: a listener with its own mode neither issues tickets nor resumes another's (TLS 1.3 and 1.2)" {
	printf '[tls]\nsession_tickets = on\n' >"$DIR/edged.conf"
	start_two off -c "$DIR/edged.conf"
	# The mTLS listener issues a ticket (the SNI object's own mode).
	run edge_s_client "$API" -cert "$DIR/alice.crt" -key "$DIR/alice.key" -sess_out "$DIR/sess"
	assert_output --partial 'hello from upstream'
	[ -s "$DIR/sess" ] || fail "the mTLS listener issued no ticket"
	# Presented at the mtls=off listener: a full handshake, not a resumption.
	EDGE_PORT=$OWN_PORT run edge_s_client "$API" -sess_in "$DIR/sess"
	assert_output --partial 'hello from upstream'
	assert_output --partial 'New, TLSv1.3'
	refute_output --partial 'Reused'
	# The mtls=off listener issues none: a session from there cannot resume at the mTLS one
	# without the certificate the mTLS listener requires.
	EDGE_PORT=$OWN_PORT run edge_s_client "$API" -sess_out "$DIR/sess-off"
	assert_output --partial 'hello from upstream'
	refute_output --partial 'Post-Handshake New Session Ticket arrived'
	[ ! -e "$DIR/sess-off" ] || fail "the mtls=off listener issued a ticket"
	# TLS 1.2 (session IDs from the cache) the same: resumable at the mTLS listener only.
	run edge_s_client "$API" -tls1_2 -cert "$DIR/alice.crt" -key "$DIR/alice.key" \
		-sess_out "$DIR/sess12"
	assert_output --partial 'hello from upstream'
	run edge_s_client "$API" -tls1_2 -sess_in "$DIR/sess12"
	assert_output --partial 'Reused, TLSv1.2'
	EDGE_PORT=$OWN_PORT run edge_s_client "$API" -tls1_2 -sess_in "$DIR/sess12"
	assert_output --partial 'New, TLSv1.2'
	assert_output --partial 'hello from upstream'
}

@test "the file's listen key takes mtls=MODE too, comma-separated with plain addresses" {
	printf '[daemon]\nlisten = 127.0.0.1:0 mtls=off, 127.0.0.1:0\n' >"$DIR/edged.conf"
	# --listen replaces the file's addresses: run the daemon with the file's alone.
	"$BIN/mtls-edged" --state "$STATE" -c "$DIR/edged.conf" --workers 1 --bpf off \
		>>"$LOG" 2>&1 3>&- &
	EDGE_PID=$!
	PIDS+=("$EDGE_PID")
	retry 200 0.05 grep -q 'listening addr=127\.0\.0\.1:[0-9]*$' "$LOG" || fail "no plain listener: $(cat "$LOG")"
	off=$(grep -o 'listening addr=127\.0\.0\.1:[0-9]* mtls=off' "$LOG" | sed 's/.*:\([0-9]*\) .*/\1/')
	plain=$(grep -o 'listening addr=127\.0\.0\.1:[0-9]*$' "$LOG" | sed 's/.*://')
	[ -n "$off" ] && [ -n "$plain" ] || fail "listeners not logged: $(cat "$LOG")"
	run on "$off" edge_curl "$API" /
	assert_output "hello from upstream"
	run on "$plain" edge_curl "$API" /
	assert_failure
}

@test "bad listener options: a clear error naming the option, nothing started" {
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" --listen "127.0.0.1:0 mtls=maybe" --bpf off
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "status $status: $output"
	assert_output --partial "--listen: 'mtls=maybe': the mTLS mode is one of required, optional, off"
	refute_output --partial "listening addr="
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" --listen "mtls=off 127.0.0.1:0" --bpf off
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "status $status: $output"
	assert_output --partial "'mtls=off' comes before any address"
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" --listen "127.0.0.1:0 proxy=on" --bpf off
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "status $status: $output"
	assert_output --partial "'proxy=on': the only listener option is mtls=MODE"
	printf '[daemon]\nlisten = 127.0.0.1:0 mtls=none\n' >"$DIR/edged.conf"
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" -c "$DIR/edged.conf" --check
	assert_failure
	assert_output --partial "'mtls=none': the mTLS mode is one of required, optional, off"
}

@test "--default-sni: a client that sends no SNI gets that SNI object; an unknown one is refused at start" {
	start_daemon --default-sni "$API"
	log_mark
	run edge_s_client - -cert "$DIR/alice.crt" -key "$DIR/alice.key"
	assert_output --partial "hello from upstream"
	wait_log "handshake .*sni=$API verdict=pass reason=ok"
	stop_edge
	# Without it, no SNI is unrecognized_name, as before.
	start_daemon
	run edge_s_client - -cert "$DIR/alice.crt" -key "$DIR/alice.key"
	refute_output --partial "hello from upstream"
	assert_output --partial "unrecognized name"
	# The command line wins over the file.
	add_sni other.example.test
	printf '[tls]\ndefault_sni = other.example.test\n' >"$DIR/edged.conf"
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" -c "$DIR/edged.conf" --listen 127.0.0.1:0 \
		--default-sni nowhere.example.test --check
	assert_failure
	assert_output --partial "default_sni nowhere.example.test has no SNI object"
	run timeout 10 "$BIN/mtls-edged" --state "$STATE" -c "$DIR/edged.conf" --listen 127.0.0.1:0 --check
	assert_success
}
