#!/usr/bin/env bats
# HTTP/2 terminated by the edge (`--protocol http --alpn h2,http/1.1`): libnghttp2 reads the
# client's frames and each stream goes to the upstream as an HTTP/1.1 request on a pooled
# connection (edge-upstream, the suite's HTTP/1.1 server). Clients: curl --http2, nghttp, and
# tests/tools/h2probe.py (python3-h2) for what no polite client sends (floods, resets).
# tests/vm/ runs the first tests again in the kTLS guest (EDGE_EXPECT_PATH=ktls): the client's
# session in the kernel, the frames read and written through it in plaintext.

bats_require_minimum_version 1.5.0
load helpers

HOST=api.example.test
EXPECT=${EDGE_EXPECT_PATH:-userspace}

setup() {
	edge_setup
	start_upstream
	make_site
	client_cert alice
	add_sni "$HOST" --protocol http --alpn h2,http/1.1
}

teardown() {
	stop_all
}

# daemon [args]: one worker; kTLS on only where the kernel has it (the guest).
daemon() {
	start_daemon --ktls "$([ "$EXPECT" = ktls ] && echo on || echo off)" --workers 1 "$@"
}

# h2 PATH [curl args]: curl --http2 as alice to $HOST.
h2() {
	local path=$1
	shift
	edge_curl_as alice "$HOST" "$path" --http2 "$@"
}

@test "h2 terminated: curl --http2 negotiates h2 and gets the upstream's answer over HTTP/1.1" {
	daemon
	run h2 / -w '%{http_version} %{response_code}'
	assert_success
	assert_output "hello from upstream
2 200"
	wait_log "handshake .*sni=$HOST verdict=pass .*alpn=h2"
	# the connection's line (the stream's has stream=1) names the path its session took
	wait_log "close peer=.* sni=$HOST .*path=$EXPECT reason=done verdict=pass$"
	run ctl metrics
	assert_line "mtls_edge_h2_connections_total 1"
	assert_line "mtls_edge_h2_streams_total 1"
}

# probe COMMAND [args]: tests/tools/h2probe.py as alice to $HOST.
probe() {
	timeout 60 /usr/bin/python3 "$REPO/tests/tools/h2probe.py" --port "$EDGE_PORT" --sni "$HOST" \
		--ca "$PKI/server-ca.crt" --cert "$DIR/alice.crt" --key "$DIR/alice.key" "$@"
}

# sha_of_bytes N: the SHA-256 of edge-upstream's /bytes/N body.
sha_of_bytes() {
	# byte i is (i * 131 + 7) & 0xff: a period of 256
	/usr/bin/python3 -c 'import hashlib,sys; n=int(sys.argv[1]); p=bytes(((i*131+7)&0xff) for i in range(256)); print(hashlib.sha256((p*(n//256+1))[:n]).hexdigest())' "$1"
}

@test "h2 terminated: bodies framed every way come out whole; trailers of a chunked response are HTTP/2 trailers" {
	daemon
	run probe get /bytes/1048576
	assert_success
	assert_line "status 200"
	assert_line "body 1048576 $(sha_of_bytes 1048576)"
	run probe get /chunked/300000
	assert_success
	assert_line "body 300000 $(sha_of_bytes 300000)"
	assert_line "trailer x-trailer: done"
	refute_line --partial "header transfer-encoding"
	run probe get /eof/70000
	assert_success
	assert_line "body 70000 $(sha_of_bytes 70000)"
	run probe get /status/204
	assert_line "status 204"
	assert_line "body 0 $(sha_of_bytes 0)"
	run probe get /bytes/5000 --method HEAD
	assert_line "status 200"
	assert_line "header content-length: 5000"
	assert_line "body 0 $(sha_of_bytes 0)"
	run probe get /early
	assert_line "status 200"
	assert_line --partial "body 20 "
}

@test "h2 terminated: request bodies with and without content-length, in many DATA frames, reach the upstream whole" {
	daemon
	want=$(/usr/bin/python3 -c '
n=1000000; h=0xcbf29ce484222325
for i in range(n):
    h ^= (i*131+7)&0xff; h = (h*0x100000001b3) & 0xffffffffffffffff
print("%d %016x" % (n, h))')
	# with content-length: as it is
	run probe get /count --method POST --body-bytes 1000000 --chunks 100 --length
	assert_success
	assert_line "status 200"
	assert_line "text $want"
	# without: the edge frames it chunked, and the client's trailers follow the last chunk
	run probe get /count --method POST --body-bytes 1000000 --chunks 100 --trailer "x-t:1"
	assert_success
	assert_line "status 200"
	assert_line "text $want chunked trailers=1"
	# a POST with no body at all gets Content-Length: 0
	run probe get /echo --method POST --header "x-one:1" --header "cookie:a=1" --header "cookie:b=2"
	assert_success
	assert_line "status 200"
	assert_line "text POST /echo HTTP/1.1"
	assert_line "text Host: $HOST"
	assert_line "text x-one: 1"
	assert_line "text Content-Length: 0"
	# cookie fields are one line again (RFC 9113 8.2.3)
	assert_line "text Cookie: a=1; b=2"
	refute_line --partial "text Transfer-Encoding"
}

@test "h2 terminated: :authority must name the verified SNI (421 for that stream, the connection goes on)" {
	daemon
	counter_mark
	run probe get / --authority other.example.test
	assert_success
	assert_line "status 421"
	run probe get / --authority "$HOST:443"
	assert_line "status 200"
	assert_line "text hello from upstream"
	# two requests on one connection: the 421 does not end it
	run probe get / --authority other.example.test --repeat 2
	[ "$(grep -c '^status 421' <<<"$output")" = 2 ] || fail "$output"
	assert_counter http_refused_421 3
}

@test "h2 terminated: --forward headers puts the verified identity on every stream, and the client's own copy is dropped" {
	run ctl sni update "$HOST" --forward headers
	assert_success
	daemon
	run probe get /headers --header "client-cert::forged:" --header "x-client-verify:SUCCESS" --repeat 3
	assert_success
	[ "$(grep -c '^text X-Client-Verify: SUCCESS$' <<<"$output")" = 3 ] || fail "$output"
	[ "$(grep -c '^text Client-Cert: :' <<<"$output")" = 3 ] || fail "$output"
	refute_line --partial "forged"
	refute_line "text x-client-verify: SUCCESS"
}

@test "h2 terminated: nghttp with 100 concurrent streams, each its own upstream request, every one answered" {
	daemon --default-sni "$HOST"
	up_mark
	run timeout 60 nghttp -ns -m 100 -H ":authority: $HOST" --cert "$DIR/alice.crt" --key "$DIR/alice.key" \
		"https://127.0.0.1:$EDGE_PORT/bytes/20000"
	assert_success
	[ "$(grep -cE ' 200 +[0-9.]+KB? +/bytes/20000$' <<<"$output")" = 100 ] || fail "want 100 answers: $output"
	[ "$(tail -n +$((UP_MARK + 1)) "$UP_LOG" | grep -c '^GET /bytes/20000 200 ')" = 100 ] ||
		fail "upstream: $(cat "$UP_LOG")"
	# Beyond SETTINGS_MAX_CONCURRENT_STREAMS (128) a stream is refused, never queued without bound.
	run probe streams 200 /bytes/100
	assert_success
	assert_line --regexp '^ok (1[2-9][0-9]|200)$'
	assert_line "unanswered 0"
}

@test "h2 floods end in GOAWAY, counted by reason, with the daemon's memory flat" {
	daemon
	# warm up the allocator and the pools before the first measure
	run probe get /bytes/100000 --repeat 20
	assert_success
	local before after
	before=$(daemon_rss_kb)
	# The probes go on sending after the GOAWAY: the edge reads and drops that (linger) so the
	# close is no reset that loses the GOAWAY (it did, on a busy machine).
	for _ in 1 2 3; do
		run probe rapid-reset 20000
		assert_line "goaway 11" # ENHANCE_YOUR_CALM
		run probe continuation 100
		assert_line "goaway 11"
		run probe ping 5000
		assert_line "goaway 11"
		run probe settings 5000
		assert_line "goaway 11"
		run probe empty-data 5000
		assert_line "goaway 11"
	done
	after=$(daemon_rss_kb)
	[ $((after - before)) -lt 16384 ] || fail "RSS grew by $((after - before)) KiB over the floods"
	run ctl metrics
	assert_line --regexp '^mtls_edge_h2_goaway_total\{reason="rapid_reset"\} 3$'
	assert_line --regexp '^mtls_edge_h2_goaway_total\{reason="control_flood"\} 9$'
	assert_line --regexp '^mtls_edge_h2_goaway_total\{reason="header_flood"\} 3$'
	# and it still serves
	run probe get /
	assert_line "text hello from upstream"
}

@test "h2 terminated: a header list over 16 KiB gets 431 for its stream; the connection goes on" {
	daemon
	local big
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	run probe get / --header "x-big:$big" --repeat 2
	assert_success
	[ "$(grep -c '^status 431' <<<"$output")" = 2 ] || fail "$output"
	run probe get /
	assert_line "status 200"
}

@test "h2 terminated: revoking the certificate closes the live HTTP/2 connection and its streams before cert revoke returns" {
	daemon
	log_mark
	h2 /bytes/500000000 --limit-rate 200k -o /dev/null >"$DIR/live.out" 2>&1 3>&- &
	track_pid $!
	wait_log "handshake peer=.* verdict=pass reason=ok subject=\"CN=alice\".* alpn=h2"
	retry 200 0.05 grep -q "GET /bytes/500000000" "$UP_LOG"
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	run log_since
	assert_output --partial "revoked peer="
	assert_output --regexp "close peer=.* sni=$HOST .*reason=cert_revoked"
	# the stream's upstream request ended with it
	wait_log "close peer=.* sni=$HOST .*reason=connection_closed verdict=pass stream=1"
	retry 200 0.05 no_open_daemon_sockets
	run h2 /
	assert_failure
}

@test "h2 terminated: an upstream that is down is a 502 for the stream; the connection goes on" {
	local port
	port=$(closed_port)
	run ctl sni update "$HOST" --upstream "127.0.0.1:$port"
	assert_success
	daemon
	run probe get / --repeat 2
	assert_success
	[ "$(grep -c '^status 502' <<<"$output")" = 2 ] || fail "$output"
	assert_counter h2_local 2
}

@test "h2 terminated: gRPC cannot go to an HTTP/1.1 upstream: grpcio gets UNIMPLEMENTED saying why" {
	# sni add|update says so when it is written
	run ctl sni update "$HOST" --alpn h2,http/1.1
	assert_success
	assert_output --partial "gRPC calls there get UNIMPLEMENTED"
	daemon
	run timeout 30 /usr/bin/python3 "$REPO/tests/tools/grpc_echo.py" client \
		--target "127.0.0.1:$EDGE_PORT" --ca "$PKI/server-ca.crt" --authority "$HOST" \
		--cert "$DIR/alice.crt" --key "$DIR/alice.key" --call say --arg hi
	assert_failure
	assert_output --partial "ended: UNIMPLEMENTED"
	assert_output --partial "--protocol tcp"
	assert_upstream_untouched
}

@test "h2 terminated: a client that reads slowly holds the edge to bounded memory, and gets every byte" {
	daemon
	local before after
	run probe get /bytes/100000 --repeat 5
	before=$(daemon_rss_kb)
	# 6 MiB read at 2 MiB/s: the edge holds a window's worth, the upstream waits for it.
	h2 /bytes/6291456 --limit-rate 2M -o "$DIR/slow.body" >"$DIR/slow.out" 2>&1 3>&- &
	local dl=$!
	track_pid "$dl"
	retry 200 0.05 test -s "$DIR/slow.body"
	sleep 1
	after=$(daemon_rss_kb)
	[ $((after - before)) -lt 4096 ] || fail "RSS grew by $((after - before)) KiB for one slow stream"
	wait_pid "$dl" 60 || fail "the slow download failed: $(cat "$DIR/slow.out")"
	[ "$(sha256sum <"$DIR/slow.body" | cut -d' ' -f1)" = "$(sha_of_bytes 6291456)" ] ||
		fail "the slow download's bytes differ"
}

@test "h2 terminated: idle connections get GOAWAY at idle_timeout; curl and nghttp see a clean end" {
	cat >"$DIR/edged.conf" <<EOF
[limits]
idle_timeout = 1s
EOF
	daemon --config "$DIR/edged.conf"
	log_mark
	# nghttp holds the connection after its request until the server ends it (-w: no timeout
	# of its own); the edge's GOAWAY(NO_ERROR) is a clean end, exit 0
	run timeout 30 nghttp -n -H ":authority: $HOST" --cert "$DIR/alice.crt" --key "$DIR/alice.key" \
		"https://127.0.0.1:$EDGE_PORT/"
	assert_success
	run probe idle
	assert_success
	assert_line "goaway 0"
	run ctl metrics
	assert_line --regexp '^mtls_edge_h2_goaway_total\{reason="idle"\} [1-9]'
	wait_log "close peer=.* sni=$HOST .*reason=idle_timeout"
}

@test "h2 terminated: a daemon that stops says GOAWAY, lets the open stream finish, then exits" {
	daemon
	log_mark
	# 16 MiB at 8 MiB/s: more than the sockets buffer, so the edge carries it during the drain
	h2 /bytes/16777216 --limit-rate 8M -o "$DIR/drain.body" >"$DIR/drain.out" 2>&1 3>&- &
	local dl=$!
	track_pid "$dl"
	retry 200 0.05 test -s "$DIR/drain.body"
	kill -TERM "$EDGE_PID"
	wait_pid "$dl" 60 || fail "the download did not finish: $(cat "$DIR/drain.out")"
	[ "$(sha256sum <"$DIR/drain.body" | cut -d' ' -f1)" = "$(sha_of_bytes 16777216)" ] ||
		fail "the drained download's bytes differ"
	wait_pid "$EDGE_PID" 30 || fail "the daemon did not exit 0"
	run log_since
	assert_output --regexp "close peer=.* sni=$HOST .*reason=shutdown verdict=pass"
}
