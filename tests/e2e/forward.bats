#!/usr/bin/env bats
# Identity to the upstream (`sni add|update --forward none|proxy-v2|headers`): the RFC 9440
# headers and X-Client-Verify as the upstream sees them, client-sent copies stripped, 421 when
# Host is not the SNI, keep-alive and pipelined requests; the PROXY v2 header and its TLVs as
# edge-upstream parsed them, and nginx reading it (`listen ... proxy_protocol`).
#
# tests/vm/ runs the same file with EDGE_EXPECT_PATH=ktls, where the relay tests demand the kTLS
# path: headers mode reads the request direction as plaintext from the kTLS socket (recvmsg) and
# splices the response direction.

load helpers

EXPECT=${EDGE_EXPECT_PATH:-userspace}
HOST=api.example.test

setup() {
	edge_setup
	make_site
	client_cert alice
}

teardown() {
	stop_all
}

daemon() {
	if [ "$EXPECT" = ktls ]; then
		start_daemon --ktls on
	else
		start_daemon
	fi
}

# The base64 of a PEM certificate's DER, as RFC 9440 sends it.
der_b64() {
	openssl x509 -in "$1" -outform DER | base64 -w0
}

# raw_tls BYTES: sends BYTES (printf format) over TLS as alice, prints what came back.
raw_tls() {
	# shellcheck disable=SC2059 # the format is the request
	printf "$1" | timeout 10 openssl s_client -connect "127.0.0.1:$EDGE_PORT" -servername "$HOST" \
		-CAfile "$PKI/server-ca.crt" -cert "$DIR/alice.crt" -key "$DIR/alice.key" \
		-quiet -ign_eof 2>/dev/null
}

@test "sni --forward is stored, shown, and refused when unknown" {
	start_upstream
	add_sni "$HOST" --forward headers
	assert_output --partial "forward headers"
	run ctl --json sni get "$HOST"
	assert_success
	assert_output --partial '"forward":"headers"'
	run ctl sni update "$HOST" --forward proxy-v2
	assert_success
	run ctl sni get "$HOST"
	assert_output --regexp 'forward: +proxy-v2'
	run ctl sni update "$HOST" --forward xff
	assert_failure 2
	assert_output --partial "--forward: 'xff' is not one of none|proxy-v2|headers"
	run ctl --json sni get "$HOST"
	assert_output --partial '"forward":"proxy-v2"'
}

@test "headers: a verified certificate reaches the upstream as RFC 9440 Client-Cert" {
	start_upstream
	add_sni "$HOST" --forward headers
	daemon
	local v
	for v in 1.2 1.3; do
		log_mark
		run edge_curl_as alice "$HOST" /headers --tls-max "$v" --tlsv"$v"
		assert_success
		assert_line "Client-Cert: :$(der_b64 "$DIR/alice.crt"):"$'\r'
		assert_line "X-Client-Verify: SUCCESS"$'\r'
		refute_output --partial "Client-Cert-Chain"
		assert_line --partial "Host: $HOST:$EDGE_PORT"
		wait_log "close peer=.* path=$EXPECT"
	done
}

@test "headers: the client's chain goes in Client-Cert-Chain, leaf excluded" {
	start_upstream
	add_sni "$HOST" --forward headers
	ctl --json ca get builtin | perl -MJSON::PP -e 'print decode_json(join "", <STDIN>)->{pem}' \
		>"$DIR/builtin.crt"
	cat "$DIR/alice.crt" "$DIR/builtin.crt" >"$DIR/alice-chain.crt"
	daemon
	run edge_curl "$HOST" /headers --cert "$DIR/alice-chain.crt" --key "$DIR/alice.key"
	assert_success
	assert_line "Client-Cert: :$(der_b64 "$DIR/alice.crt"):"$'\r'
	assert_line "Client-Cert-Chain: :$(der_b64 "$DIR/builtin.crt"):"$'\r'
	assert_line "X-Client-Verify: SUCCESS"$'\r'
}

@test "headers: mTLS optional without a certificate forwards NONE and no Client-Cert" {
	start_upstream
	add_sni "$HOST" --forward headers --mtls optional
	daemon
	run edge_curl "$HOST" /headers
	assert_success
	assert_line "X-Client-Verify: NONE"$'\r'
	refute_output --partial "Client-Cert"
}

@test "headers: a certificate that fails verification (optional) forwards FAILED:reason" {
	start_upstream
	add_sni "$HOST" --forward headers --mtls optional
	make_ca "$PKI/other-ca" "some other CA"
	make_client_cert "$PKI/other-ca" "$DIR/mallory" mallory
	daemon
	run edge_curl_as mallory "$HOST" /headers
	assert_success
	assert_line "X-Client-Verify: FAILED:unknown_ca"$'\r'
	assert_line "Client-Cert: :$(der_b64 "$DIR/mallory.crt"):"$'\r'
}

@test "headers: client-sent Client-Cert, Client-Cert-Chain and X-Client-Verify are stripped" {
	start_upstream
	add_sni "$HOST" --forward headers --mtls optional
	daemon
	run edge_curl "$HOST" /headers -H 'Client-Cert: :Zm9yZ2Vk:' -H 'client-cert-chain: :eA==:' \
		-H 'X-CLIENT-VERIFY: SUCCESS' -H 'x-client-verify: SUCCESS' -H 'X-Kept: yes'
	assert_success
	assert_line "X-Client-Verify: NONE"$'\r'
	assert_line "X-Kept: yes"$'\r'
	refute_output --partial "Zm9yZ2Vk"
	refute_output --partial "eA=="
	[ "$(grep -ci '^x-client-verify:' <<<"$output")" -eq 1 ]
	[ "$(grep -ci '^client-cert' <<<"$output")" -eq 0 ]
}

@test "headers: Host naming another hostname gets 421 and nothing reaches the upstream" {
	start_upstream
	add_sni "$HOST" --forward headers
	daemon
	up_mark
	log_mark
	counter_mark http_refused_421
	run edge_curl_as alice "$HOST" /headers -H "Host: other.example.test" -o /dev/null \
		-w '%{http_code}'
	assert_success
	assert_output 421
	wait_log "http refused peer=.* sni=$HOST status=421 reason=host_mismatch"
	wait_log "close peer=.* path=$EXPECT reason=host_mismatch"
	assert_upstream_untouched
	assert_counter http_refused_421 1
	run ctl metrics
	assert_output --partial "mtls_edge_http_refused_421_total 1"
	# Case and port do not matter; the SNI object's name does.
	run edge_curl_as alice "$HOST" /headers -H "Host: API.Example.Test:8443" -o /dev/null \
		-w '%{http_code}'
	assert_output 200
}

@test "headers: keep-alive and pipelined requests are each rewritten, a POST body passes whole" {
	start_upstream
	add_sni "$HOST" --forward headers
	daemon
	log_mark
	run raw_tls "GET /headers HTTP/1.1\r\nHost: $HOST\r\nX-Client-Verify: forged\r\n\r\nPOST /count HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 11\r\n\r\nhello worldGET /headers HTTP/1.1\r\nHost: $HOST\r\nClient-Cert: :Zm9yZ2Vk:\r\nConnection: close\r\n\r\n"
	assert_success
	[ "$(grep -c '^X-Client-Verify: SUCCESS' <<<"$output")" -eq 2 ]
	[ "$(grep -c '^Client-Cert: :' <<<"$output")" -eq 2 ]
	refute_output --partial forged
	refute_output --partial Zm9yZ2Vk
	# FNV-1a 64 of "hello world"
	assert_output --partial "11 779a65e7023cd2e7"
	[ "$(grep -c 'handshake peer=.*verdict=pass' <(log_since))" -eq 1 ]
	[ "$(wc -l <"$UP_LOG")" -eq 3 ]
	wait_log "close peer=.* path=$EXPECT"
}

@test "headers: a large POST body passes whole (same digest as with forwarding off)" {
	start_upstream
	add_sni "$HOST" --forward headers
	add_sni plain.example.test
	daemon
	head -c 4194304 /dev/urandom >"$DIR/body"
	run edge_curl_as alice plain.example.test /count --data-binary @"$DIR/body"
	assert_success
	local want=$output
	[[ $want == "4194304 "* ]]
	log_mark
	run edge_curl_as alice "$HOST" /count --data-binary @"$DIR/body"
	assert_success
	assert_output "$want"
	wait_log "close peer=.* sni=$HOST .*path=$EXPECT"
}

@test "headers: a refused request after good ones: the good ones are answered, then 421" {
	start_upstream
	add_sni "$HOST" --forward headers
	daemon
	up_mark
	run raw_tls "GET / HTTP/1.1\r\nHost: $HOST\r\n\r\nGET /headers HTTP/1.1\r\nHost: evil.example.test\r\n\r\n"
	assert_success
	assert_output --partial "hello from upstream"
	assert_output --partial "HTTP/1.1 421 Misdirected Request"
	[ "$(wc -l <"$UP_LOG")" -eq $((UP_MARK + 1)) ]
}

@test "headers: requests that cannot be framed safely get 400 and close" {
	start_upstream
	add_sni "$HOST" --forward headers
	daemon
	up_mark
	log_mark
	run raw_tls "POST /count HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	assert_output --partial "HTTP/1.1 400 Bad Request"
	wait_log "http refused .* status=400 reason=content_length_and_transfer_encoding"
	run raw_tls "GET / HTTP/1.1\r\nHost: $HOST\r\nX-A: 1\r\n folded\r\n\r\n"
	assert_output --partial "HTTP/1.1 400 Bad Request"
	wait_log "reason=obs_fold"
	run raw_tls "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	assert_output --partial "HTTP/1.1 400 Bad Request"
	wait_log "reason=http2_preface"
	assert_upstream_untouched
}

@test "proxy-v2: edge-upstream parses the addresses and every TLV" {
	start_upstream --proxy-v2
	add_sni "$HOST" --forward proxy-v2
	daemon
	log_mark
	run edge_curl_as alice "$HOST" /proxy --tlsv1.3
	assert_success
	assert_line --regexp "^family=inet src=127\.0\.0\.1:[0-9]+ dst=127\.0\.0\.1:$EDGE_PORT\$"
	assert_line "tlv=0x02 len=${#HOST} text=$HOST"
	assert_line "tlv=0x20 client=0x07 verify=0"
	assert_line "tlv=0x20/0x21 len=7 text=TLSv1.3"
	assert_line "tlv=0x20/0x22 len=5 text=alice"
	assert_line --regexp '^tlv=0x20/0x23 len=[0-9]+ text=TLS_'
	assert_line "tlv=0x20/0x24 len=17 text=ecdsa-with-SHA256"
	assert_line --regexp '^tlv=0x20/0x25 len=[0-9]+ text=EC256$'
	local sha serial
	sha=$(openssl x509 -in "$DIR/alice.crt" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : |
		tr 'A-F' 'a-f')
	serial=$(openssl x509 -in "$DIR/alice.crt" -noout -serial | cut -d= -f2)
	assert_line "tlv=0xe0 len=32 hex=$sha"
	assert_line "tlv=0xe1 len=${#serial} text=$serial"
	assert_line "tlv=0xe2 len=7 text=SUCCESS"
	wait_log "close peer=.* path=$EXPECT"
}

@test "proxy-v2: no certificate (optional) sets no certificate bits and a non-zero verify" {
	start_upstream --proxy-v2
	add_sni "$HOST" --forward proxy-v2 --mtls optional
	daemon
	run edge_curl "$HOST" /proxy
	assert_success
	assert_line --regexp '^tlv=0x20 client=0x01 verify=[1-9][0-9]*$'
	assert_line "tlv=0xe2 len=4 text=NONE"
	refute_output --partial "tlv=0x20/0x22"
	refute_output --partial "tlv=0xe0"
}

@test "proxy-v2: nginx as the upstream reads the client's address from the header" {
	local port
	port=$(closed_port)
	# shellcheck disable=SC2016 # nginx variables
	start_nginx "server {
		listen 127.0.0.1:$port proxy_protocol;
		location / { return 200 \"client=\$proxy_protocol_addr:\$proxy_protocol_port server=\$proxy_protocol_server_addr:\$proxy_protocol_server_port\n\"; }
	}" "$port"
	SNI_UPSTREAM=127.0.0.1:$port add_sni "$HOST" --forward proxy-v2
	daemon
	log_mark
	run edge_curl_as alice "$HOST" / -w 'local=%{local_port}\n'
	assert_success
	local cport=${output##*local=}
	assert_line "client=127.0.0.1:$cport server=127.0.0.1:$EDGE_PORT"
	refute grep -qE 'header is too large|broken header: "[^"]' "$DIR/nginx/logs/error.log"
	wait_log "close peer=.* path=$EXPECT"
}

# start_pp2_strip BACKEND_PORT: a TCP relay on 127.0.0.1:0 that reads the PROXY v2 header
# first (appending it as hex to $DIR/pp2.hex), then relays the rest to BACKEND_PORT; sets PP2_PORT.
start_pp2_strip() {
	perl -e '
		use IO::Socket::INET; use IO::Select;
		my ($back, $pf, $hf) = @ARGV;
		my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 8,
			ReuseAddr => 1) or die "listen: $!\n";
		open(my $f, ">", "$pf.tmp") or die; print $f $l->sockport, "\n"; close $f;
		rename "$pf.tmp", $pf;
		while (my $c = $l->accept) {
			my $h = "";
			while (length($h) < 16) { sysread($c, $h, 16 - length($h), length($h)) or last }
			my $len = length($h) == 16 ? unpack("n", substr($h, 14, 2)) : 0;
			while (length($h) < 16 + $len) {
				sysread($c, $h, 16 + $len - length($h), length($h)) or last
			}
			open(my $o, ">>", $hf) or die; print $o unpack("H*", $h), "\n"; close $o;
			my $b = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $back)
				or die "connect: $!\n";
			my $s = IO::Select->new($c, $b);
			OUTER: while (my @r = $s->can_read) {
				for my $fh (@r) {
					my $n = sysread($fh, my $buf, 65536);
					last OUTER if !$n;
					syswrite($fh == $c ? $b : $c, $buf);
				}
			}
			close $b; close $c;
		}' "$1" "$DIR/pp2.port" "$DIR/pp2.hex" >"$DIR/pp2.out" 2>&1 3>&- &
	track_pid $!
	retry 100 0.05 test -s "$DIR/pp2.port" || fail "pp2 relay did not start: $(cat "$DIR/pp2.out")"
	PP2_PORT=$(<"$DIR/pp2.port")
}

@test "proxy-v2 to a TLS upstream: the header comes first, then the upstream's TLS handshake" {
	make_ca "$PKI/up-ca" "upstream CA"
	sign_cert "$PKI/up-ca" "$PKI/up" up.internal "subjectAltName=DNS:up.internal
extendedKeyUsage=serverAuth"
	mkdir -p "$DIR/www"
	head -c 300000 /dev/urandom >"$DIR/www/blob"
	(cd "$DIR/www" && exec openssl s_server -accept 127.0.0.1:0 -cert "$PKI/up.crt" \
		-key "$PKI/up.key" -WWW >"$DIR/s_server.out" 2>&1 3>&-) &
	track_pid $!
	retry 100 0.05 grep -q '^ACCEPT' "$DIR/s_server.out"
	start_pp2_strip "$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$DIR/s_server.out")"
	SNI_UPSTREAM=127.0.0.1:$PP2_PORT add_sni "$HOST" --forward proxy-v2 --upstream-tls on \
		--upstream-ca "$PKI/up-ca.crt" --upstream-sni up.internal
	daemon
	log_mark
	run edge_curl_as alice "$HOST" /blob -o "$DIR/got"
	assert_success
	cmp "$DIR/www/blob" "$DIR/got"
	# signature, v2 PROXY, TCP4, then ... PP2_TYPE_AUTHORITY with the SNI
	run cat "$DIR/pp2.hex"
	assert_output --regexp "^0d0a0d0a000d0a515549540a2111.*02$(printf '%04x' ${#HOST})$(printf '%s' "$HOST" | hex)"
	wait_log "close peer=.* sni=$HOST .*path=$EXPECT"
}

@test "headers to a TLS upstream (nginx): nginx sees the edge's fields, not the client's" {
	local port
	make_ca "$PKI/up-ca" "upstream CA"
	sign_cert "$PKI/up-ca" "$PKI/up" up.internal "subjectAltName=DNS:up.internal
extendedKeyUsage=serverAuth"
	port=$(closed_port)
	start_nginx "server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $PKI/up.crt;
		ssl_certificate_key $PKI/up.key;
		location / { return 200 \"verify=\$http_x_client_verify cert=\$http_client_cert\n\"; }
	}" "$port"
	SNI_UPSTREAM=127.0.0.1:$port add_sni "$HOST" --forward headers --upstream-tls on \
		--upstream-ca "$PKI/up-ca.crt" --upstream-sni up.internal
	daemon
	log_mark
	run edge_curl_as alice "$HOST" / -H 'X-Client-Verify: forged'
	assert_success
	assert_output "verify=SUCCESS cert=:$(der_b64 "$DIR/alice.crt"):"
	wait_log "close peer=.* sni=$HOST .*path=$EXPECT"
}

@test "forward none: the upstream sees the client's headers untouched" {
	start_upstream
	add_sni "$HOST"
	daemon
	run edge_curl_as alice "$HOST" /headers -H 'X-Client-Verify: SUCCESS'
	assert_success
	assert_line "X-Client-Verify: SUCCESS"$'\r'
	refute_output --partial "Client-Cert"
}

@test "headers with --protocol http: identity on every request, on the $EXPECT path" {
	start_upstream
	add_sni "$HOST" --forward headers --protocol http
	daemon
	counter_mark upstream_reused
	for _ in 1 2 3; do
		log_mark
		run edge_curl_as alice "$HOST" /headers -H 'X-Client-Verify: forged'
		assert_success
		assert_line "X-Client-Verify: SUCCESS"$'\r'
		refute_output --partial "forged"
		wait_log "close peer=.* path=$EXPECT"
	done
	# The kTLS path splices the responses and never reads them: no upstream keep-alive there.
	[ "$EXPECT" != ktls ] || assert_counter upstream_reused 0
}
