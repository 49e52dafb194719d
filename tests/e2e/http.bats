#!/usr/bin/env bats
# `sni add --protocol http`: the edge reads HTTP/1.1 framing both ways, and an upstream
# connection outlives its client connection (the per-worker keep-alive pool). edge-upstream's
# GET /conn answers "conn=ID requests=N": ID names the upstream's TCP connection, N counts the
# requests it has carried, so a test sees which client connections shared one.
#
# The pool is on the userspace relay only (the kTLS path splices the response direction and
# never reads it); these tests run the daemon without kTLS.

load helpers

HOST=api.example.test

setup() {
	edge_setup
	make_site
	client_cert alice
}

teardown() {
	stop_all
}

# daemon [extra args]: one worker (one pool), kTLS off.
daemon() {
	start_daemon --ktls off --workers 1 "$@"
}

# conn_of PATH...: GETs each path on its own client connection; prints the upstream
# connection id of each /conn answer, one per line.
conn_ids() {
	local p out
	for p in "$@"; do
		out=$(edge_curl_as alice "$HOST" "$p") || fail "curl $p failed: $out"
		[[ $out =~ conn=([0-9]+) ]] || fail "no conn= in the answer to $p: $out"
		echo "${BASH_REMATCH[1]}"
	done
}

# raw_tls BYTES: sends BYTES (printf format) over TLS as alice, prints what came back (the
# connection must end by itself within 10 s).
raw_tls() {
	# shellcheck disable=SC2059 # the format is the request
	printf "$1" | timeout 10 openssl s_client -connect "127.0.0.1:$EDGE_PORT" -servername "$HOST" \
		-CAfile "$PKI/server-ca.crt" -cert "$DIR/alice.crt" -key "$DIR/alice.key" \
		-quiet -ign_eof 2>/dev/null
}

@test "http: one upstream connection carries one client connection after another" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	counter_mark upstream_connects upstream_reused upstream_pooled
	run conn_ids /conn /conn /conn /conn /conn
	assert_success
	[ "$(sort -u <<<"$output" | wc -l)" -eq 1 ] || fail "five clients, more than one upstream connection: $output"
	run edge_curl_as alice "$HOST" /conn
	assert_output --regexp "requests=6"
	assert_counter upstream_connects 1
	assert_counter upstream_reused 5
	# The sixth goes back to the pool when the daemon reads the end of its client, which curl
	# may have sent after it printed the answer.
	wait_counter upstream_pooled 6
	wait_log "close peer=.* path=userspace reason=done"
}

# paused_client GO PATH...: one TLS connection as alice; GETs the first path, then waits for the
# file GO (at most 20 s) before each further one; prints each answer's status line and body,
# one per line. A path "." closes the connection instead (after the wait).
paused_client() {
	/usr/bin/python3 - "$EDGE_PORT" "$HOST" "$PKI/server-ca.crt" "$DIR/alice.crt" "$DIR/alice.key" "$@" <<'PY'
import os, socket, ssl, sys, time
port, host, ca, cert, key, go = sys.argv[1:7]
paths = sys.argv[7:]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10), server_hostname=host)
f = s.makefile("rb")
for i, p in enumerate(paths):
    if i:
        for _ in range(400):
            if os.path.exists(go):
                break
            time.sleep(0.05)
        os.unlink(go)
    if p == ".":
        break
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (p, host)).encode())
    status = f.readline().decode().strip()
    n = 0
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        if line.lower().startswith("content-length:"):
            n = int(line.split(":")[1])
    print(status, f.read(n).decode().strip(), flush=True)
PY
}

# park_then_ask [PATH]: the client asks for PATH (/conn), idles until its relay gave the
# upstream connection back, asks again on the same connection; prints both answers.
park_then_ask() {
	local out=$DIR/paused.out path=${1:-/conn}
	counter_mark upstream_parked
	paused_client "$DIR/go" "$path" "$path" >"$out" 2>"$DIR/paused.err" &
	local pid=$!
	wait_counter upstream_parked 1
	: >"$DIR/go"
	wait "$pid" || fail "the paused client failed: $(cat "$DIR/paused.err")"
	cat "$out"
}

@test "http: a client idle between requests gives its upstream connection back, and its next request takes one" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	counter_mark upstream_connects upstream_reused
	run park_then_ask
	assert_success
	assert_line --index 0 --regexp '^HTTP/1.1 200 .* conn=([0-9]+) requests=1$'
	assert_line --index 1 --regexp '^HTTP/1.1 200 .* conn=([0-9]+) requests=2$'
	[ "$(cut -d' ' -f4 <<<"$output" | sort -u | wc -l)" -eq 1 ] || fail "not the pooled one: $output"
	assert_counter upstream_connects 1
	assert_counter upstream_reused 1
	run edge_curl_as alice "$HOST" /conn
	assert_output --regexp "requests=3"
}

@test "http: a parked client whose upstream connection the pool did not keep connects again" {
	start_upstream
	add_sni "$HOST" --protocol http
	printf '[limits]\nupstream_keepalive = 0\n' >"$DIR/none.conf"
	daemon -c "$DIR/none.conf"
	counter_mark upstream_connects upstream_reused
	run park_then_ask
	assert_success
	assert_line --index 0 --regexp '^HTTP/1.1 200 .* conn=([0-9]+) requests=1$'
	assert_line --index 1 --regexp '^HTTP/1.1 200 .* conn=([0-9]+) requests=1$'
	[ "$(cut -d' ' -f4 <<<"$output" | sort -u | wc -l)" -eq 2 ] || fail "one upstream connection: $output"
	assert_counter upstream_connects 2
	assert_counter upstream_reused 0
}

@test "http: a parked client's close ends its connection, and the pool keeps the upstream's" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	counter_mark upstream_parked upstream_pool_closed
	paused_client "$DIR/go" /conn . >"$DIR/paused.out" 2>"$DIR/paused.err" &
	local pid=$!
	wait_counter upstream_parked 1
	: >"$DIR/go"
	wait "$pid" || fail "the paused client failed: $(cat "$DIR/paused.err")"
	wait_log "close peer=.* path=userspace reason=done"
	assert_counter upstream_pool_closed 0
	run edge_curl_as alice "$HOST" /conn
	assert_output --regexp "requests=2"
}

@test "http: a parked client whose upstream went away meanwhile: its next request ends the connection, cleanly" {
	start_upstream
	add_sni "$HOST" --protocol http
	printf '[limits]\nupstream_keepalive = 0\n' >"$DIR/none.conf"
	daemon -c "$DIR/none.conf"
	counter_mark upstream_parked upstream_connect_failed
	paused_client "$DIR/go" /conn /conn >"$DIR/paused.out" 2>"$DIR/paused.err" &
	local pid=$!
	wait_counter upstream_parked 1
	kill "$UP_PID"
	wait "$UP_PID" 2>/dev/null || true
	: >"$DIR/go"
	wait "$pid" || fail "the client saw more than the connection's end: $(cat "$DIR/paused.err")"
	run cat "$DIR/paused.out"
	assert_line --index 0 --regexp '^HTTP/1.1 200 .* conn=[0-9]+ requests=1$'
	[ "$(grep -c HTTP/ "$DIR/paused.out")" -eq 1 ] || fail "an answer to the second request: $output"
	assert_counter upstream_connect_failed 1
	wait_log "close peer=.* reason=upstream_connect_failed"
	run ctl status
	assert_success
}

@test "tcp (the default): every client connection gets its own upstream connection" {
	start_upstream
	add_sni "$HOST"
	daemon
	counter_mark upstream_connects upstream_reused
	run conn_ids /conn /conn /conn
	assert_success
	[ "$(sort -u <<<"$output" | wc -l)" -eq 3 ] || fail "tcp shared an upstream connection: $output"
	assert_counter upstream_connects 3
	assert_counter upstream_reused 0
}

@test "http: a client's Connection: close ends its connection, with Connection: close, and not the upstream's" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	run edge_curl_as alice "$HOST" /conn -i -H 'Connection: close'
	assert_success
	assert_line "Connection: close"$'\r'
	assert_output --regexp "conn=([0-9]+) requests=1"
	local first=${output##*conn=}
	first=${first%% *}
	# The upstream saw no Connection: close (it keeps its connection open) ...
	run edge_curl_as alice "$HOST" /headers -H 'Connection: close' -H 'Keep-Alive: timeout=9'
	assert_success
	refute_output --partial "onnection"
	refute_output --partial "Keep-Alive"
	# ... and the next client gets the same one.
	run conn_ids /conn
	assert_output "$first"
	# HTTP/1.0: closed after its response too.
	run edge_curl_as alice "$HOST" /conn --http1.0 -i
	assert_success
	assert_line "Connection: close"$'\r'
	assert_output --partial "conn=$first "
}

@test "http: keep-alive and pipelined requests on one client connection; after a close request nothing more" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	run edge_curl_as alice "$HOST" /conn -o /dev/null --next "https://$HOST:$EDGE_PORT/conn" \
		--cacert "$PKI/server-ca.crt" --cert "$DIR/alice.crt" --key "$DIR/alice.key" \
		--resolve "$HOST:$EDGE_PORT:127.0.0.1"
	assert_success
	assert_output --regexp "requests=2"
	local req="GET /conn HTTP/1.1\r\nHost: $HOST\r\n\r\n"
	run raw_tls "${req}HEAD / HTTP/1.1\r\nHost: $HOST\r\n\r\nGET /conn HTTP/1.1\r\nHost: $HOST\r\nConnection: close\r\n\r\n${req}${req}"
	assert_success
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 3 ] || fail "want 3 responses, got: $output"
	[ "$(grep -c '^Connection: close' <<<"$output")" -eq 1 ] || fail "want one Connection: close: $output"
	# The HEAD's answer has a Content-Length and no body: the next response follows it.
	assert_output --regexp "requests=3"
	refute_output --regexp "requests=4"
	refute_output --partial "hello from upstream"
}

@test "http: bodies framed every way pass byte for byte, and the connection is reused after each" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	local id want got path
	id=$(conn_ids /conn)
	for path in /bytes/300000 /chunked/300000 /status/204 /status/304 /early /; do
		want=$(curl -sS --raw "http://127.0.0.1:$UP_PORT$path" -D - | sha256sum)
		got=$(edge_curl_as alice "$HOST" "$path" --raw -D - | sha256sum)
		[ "$want" = "$got" ] || fail "$path: the response differs through the edge"
		run conn_ids /conn
		assert_output "$id"
	done
	run edge_curl_as alice "$HOST" / -I
	assert_success
	assert_line --partial "Content-Length: 20"
	run conn_ids /conn
	assert_output "$id"
	# A request body, Content-Length and chunked.
	head -c 200000 /dev/urandom >"$DIR/body"
	want=$(curl -sS --data-binary @"$DIR/body" "http://127.0.0.1:$UP_PORT/count")
	run edge_curl_as alice "$HOST" /count --data-binary @"$DIR/body"
	assert_output "$want"
	run conn_ids /conn
	assert_output "$id"
}

@test "http: an upstream connection that cannot be reused is not" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	local a b c
	a=$(conn_ids /conn)
	# A close-delimited body: the upstream ends the connection.
	run edge_curl_as alice "$HOST" /eof/100000 -o "$DIR/eof"
	assert_success
	[ "$(stat -c %s "$DIR/eof")" -eq 100000 ] || fail "close-delimited body cut short"
	b=$(conn_ids /conn)
	[ "$a" != "$b" ] || fail "reused the connection of a close-delimited response"
	# The upstream says Connection: close.
	run edge_curl_as alice "$HOST" /close
	assert_output "bye"
	c=$(conn_ids /conn)
	[ "$b" != "$c" ] || fail "reused a connection the upstream closed"
	# A client that goes away in the middle of a response: that connection is spent.
	run edge_curl_as alice "$HOST" /bytes/50000000 --max-filesize 1000 -o /dev/null
	run conn_ids /conn
	refute_output "$c"
	run edge_curl_as alice "$HOST" /conn
	assert_output --regexp "requests=2"
}

# up_closed_pooled N: N of the daemon's connections to the upstream have been closed by the
# upstream (its FIN received, the daemon's end not yet closed: CLOSE-WAIT).
up_closed_pooled() {
	[ "$(ss -Htn state close-wait "( dport = :$UP_PORT )" | wc -l)" -eq "$1" ]
}

@test "http: an idle connection the upstream closed is not handed out" {
	start_upstream --idle-timeout 300
	add_sni "$HOST" --protocol http
	# The pool's own expiry far away: only the check when a connection is taken can drop it.
	printf '[limits]\nupstream_keepalive_timeout = 1h\n' >"$DIR/long.conf"
	daemon -c "$DIR/long.conf"
	counter_mark upstream_pool_closed upstream_connects
	local a b
	a=$(conn_ids /conn)
	# Not a fixed sleep: until the upstream's close (after its 300 ms idle timeout) has reached
	# the pooled connection.
	retry 200 0.05 up_closed_pooled 1
	b=$(conn_ids /conn)
	[ "$a" != "$b" ] || fail "the upstream closed $a, yet it was used"
	assert_counter upstream_pool_closed 1
	assert_counter upstream_connects 2
}

pool_closed_is() {
	[ "$(counter_delta upstream_pool_closed)" -eq "$1" ]
}

@test "http: upstream_keepalive_timeout and upstream_keepalive bound the pool" {
	start_upstream
	add_sni "$HOST" --protocol http
	printf '[limits]\nupstream_keepalive_timeout = 300ms\n' >"$DIR/short.conf"
	daemon -c "$DIR/short.conf"
	counter_mark upstream_pool_closed
	local a b
	a=$(conn_ids /conn)
	retry 50 0.1 pool_closed_is 1
	b=$(conn_ids /conn)
	[ "$a" != "$b" ] || fail "an expired connection was used"
	stop_all
	start_upstream
	run ctl sni update "$HOST" --upstream "127.0.0.1:$UP_PORT"
	assert_success
	printf '[limits]\nupstream_keepalive = 0\n' >"$DIR/none.conf"
	daemon -c "$DIR/none.conf"
	run conn_ids /conn /conn
	assert_success
	[ "$(sort -u <<<"$output" | wc -l)" -eq 2 ] || fail "upstream_keepalive = 0 kept one: $output"
}

@test "http: a refused request is answered without waiting for the upstream, which stays pooled" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	local id
	id=$(conn_ids /conn)
	run raw_tls "GET /conn HTTP/1.1\r\nHost: $HOST\r\n\r\nGET / HTTP/1.1\r\nHost: other.example.test\r\n\r\n"
	assert_success
	assert_output --partial "conn=$id requests=2"
	assert_output --partial "HTTP/1.1 421"
	run conn_ids /conn
	assert_output "$id"
	run edge_curl_as alice "$HOST" /conn -i -H 'Upgrade: websocket' -H 'Connection: upgrade'
	assert_line --partial "HTTP/1.1 400"
}

@test "http: many clients at once, every answer right, a bounded number of upstream connections" {
	start_upstream
	add_sni "$HOST" --protocol http
	daemon
	counter_mark upstream_connects upstream_reused
	local i pids=()
	for i in $(seq 1 20); do
		edge_curl_as alice "$HOST" /bytes/20000 -o "$DIR/par.$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || fail "a concurrent client failed"
	done
	for i in $(seq 1 20); do
		cmp -s "$DIR/par.$i" <(curl -sS "http://127.0.0.1:$UP_PORT/bytes/20000") ||
			fail "client $i got a different body"
	done
	for i in $(seq 1 20); do
		edge_curl_as alice "$HOST" /conn -o /dev/null || fail "sequential client $i failed"
	done
	[ "$(counter_delta upstream_connects)" -le 20 ] || fail "more upstream connections than concurrent clients"
	[ "$(counter_delta upstream_reused)" -ge 20 ] || fail "sequential clients did not reuse"
}

@test "http: a TLS upstream's connection and session are reused too" {
	make_ca "$PKI/up-ca" "upstream CA"
	sign_cert "$PKI/up-ca" "$PKI/up" up.internal "subjectAltName=DNS:up.internal
extendedKeyUsage=serverAuth"
	local port
	port=$(closed_port)
	# shellcheck disable=SC2016 # nginx variables
	start_nginx "server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $PKI/up.crt;
		ssl_certificate_key $PKI/up.key;
		location / { return 200 \"tls-conn=\$connection requests=\$connection_requests\n\"; }
	}" "$port"
	SNI_UPSTREAM=127.0.0.1:$port add_sni "$HOST" --protocol http --upstream-tls on \
		--upstream-ca "$PKI/up-ca.crt" --upstream-sni up.internal
	daemon
	counter_mark upstream_connects upstream_reused
	local i out ids=()
	for i in 1 2 3; do
		out=$(edge_curl_as alice "$HOST" /) || fail "request $i failed: $out"
		[[ $out =~ tls-conn=([0-9]+)\ requests=$i ]] || fail "request $i: $out"
		ids+=("${BASH_REMATCH[1]}")
	done
	[ "${ids[0]}" = "${ids[1]}" ] && [ "${ids[1]}" = "${ids[2]}" ] ||
		fail "three clients, more than one upstream TLS connection: ${ids[*]}"
	assert_counter upstream_connects 1
	assert_counter upstream_reused 2
	# a client idle between its requests: the TLS connection goes to the pool and comes back
	run park_then_ask /
	assert_success
	assert_line --index 0 "HTTP/1.1 200 OK tls-conn=${ids[0]} requests=4"
	assert_line --index 1 "HTTP/1.1 200 OK tls-conn=${ids[0]} requests=5"
	assert_counter upstream_connects 1
}

@test "edge-upstream: request heads whose lines end in a bare LF, alone or mixed with CRLF (RFC 9112, section 2.2)" {
	start_upstream
	local out want fd
	want=$(curl -sS --data-binary abc "http://127.0.0.1:$UP_PORT/count")
	# Four pipelined requests on one connection; the last asks to close it.
	exec {fd}<>"/dev/tcp/127.0.0.1/$UP_PORT" # not 3: bats' own
	printf '%s' $'GET /conn HTTP/1.1\nHost: a\n\n' $'GET /headers HTTP/1.1\nHost: b\r\nX-Mixed: 1\n\n' \
		$'POST /count HTTP/1.1\nHost: c\nContent-Length: 3\n\nabc' \
		$'GET /echo HTTP/1.1\nHost: d\nConnection: close\n\n' >&"$fd"
	out=$(timeout 10 cat <&"$fd" && echo .) || fail "the upstream did not close the connection: $out"
	exec {fd}<&-
	out=${out%.} # the "." kept the answer's last newlines
	[ "$(grep -c $'^HTTP/1.1 200 OK\r$' <<<"$out")" -eq 4 ] || fail "want four 200 answers: $out"
	[[ $out == *"conn=2 requests=1"* ]] || fail "GET /conn: $out"
	[[ $out == *$'\r\n\r\nHost: b\r\nX-Mixed: 1\n'HTTP/1.1* ]] || fail "GET /headers: $out"
	[[ $out == *$'\r\n\r\n'"$want"* ]] || fail "POST /count, want $want: $out"
	[[ $out == *$'\r\n\r\nGET /echo HTTP/1.1\nHost: d\nConnection: close\n\n' ]] || fail "GET /echo: $out"
	run cat "$UP_LOG"
	assert_line --index 1 "GET /conn 200 conn=2"
	assert_line --index 2 "GET /headers 200 conn=2"
	assert_line --index 3 "POST /count 200 conn=2"
	assert_line --index 4 "GET /echo 200 conn=2"
}
