#!/usr/bin/env bats
# ALPN per SNI object (`sni add|update --alpn LIST --no-alpn allow|refuse`): the edge's order
# decides, a client offering none of the list gets no_application_protocol, one offering no ALPN
# is let in or refused; the protocol is in the handshake line, the metrics and the PROXY v2
# header; with --protocol tcp the bytes of that protocol are relayed unread (h2 to an h2c
# upstream), and a TLS upstream must select exactly the client's protocol. h2 on a certificate
# that covers an SNI object with another policy is refused (HTTP/2 connection reuse).

bats_require_minimum_version 1.5.0
load helpers

API=api.example.test
# In the kTLS guest (EDGE_EXPECT_PATH=ktls) the h2 relay tests demand the kernel's path.
EXPECT=${EDGE_EXPECT_PATH:-userspace}

setup() {
	api_setup
}

teardown() {
	stop_all
}

start_edge() {
	if [ "$EXPECT" = ktls ]; then
		start_daemon --ktls on
	else
		start_daemon
	fi
}

# alpn_client ALPN|- [s_client args]: s_client as alice offering ALPN (- for none).
alpn_client() {
	local alpn=$1
	shift
	if [ "$alpn" = - ]; then
		edge_s_client "$API" -cert "$DIR/alice.crt" -key "$DIR/alice.key" "$@"
	else
		edge_s_client "$API" -cert "$DIR/alice.crt" -key "$DIR/alice.key" -alpn "$alpn" "$@"
	fi
}

@test "sni --alpn: stored in order, shown by get, list and --json, cleared with ''" {
	run ctl sni update "$API" --alpn h2,http/1.1
	assert_success
	assert_output --partial "ALPN h2,http/1.1"
	run ctl sni get "$API"
	assert_output --regexp 'alpn: +h2,http/1\.1'
	assert_output --regexp 'no_alpn: +allow'
	run --separate-stderr ctl --json sni get "$API"
	[ "$(echo "$output" | jq -c .alpn)" = '["h2","http/1.1"]' ] || fail "json: $output"
	[ "$(echo "$output" | jq -r .no_alpn)" = allow ] || fail "json: $output"
	run ctl sni list
	assert_output --regexp "$API .* h2,http/1\.1"
	run ctl sni update "$API" --no-alpn refuse
	assert_success
	assert_output --partial "ALPN h2,http/1.1 (required)"
	# refuse without a list means nothing: refused, either way round
	run ctl sni update "$API" --alpn ''
	assert_failure 2
	assert_output --partial "--no-alpn refuse (already set) needs an ALPN list (--alpn '' clears it)"
	run ctl sni update "$API" --alpn '' --no-alpn allow
	assert_success
	run ctl sni add other.example.test --cert "$PKI/$API.crt" --key "$PKI/$API.key" \
		--upstream "127.0.0.1:$UP_PORT" --no-alpn refuse
	assert_failure 2
	assert_output --partial "--no-alpn refuse needs an ALPN list"
	run --separate-stderr ctl --json sni get "$API"
	[ "$(echo "$output" | jq -c .alpn)" = '[]' ] || fail "json: $output"
	run ctl sni get "$API"
	assert_output --regexp 'alpn: +-'
}

@test "sni --alpn: bad lists are refused with the reason and change nothing" {
	run ctl sni update "$API" --alpn postgresql
	assert_success
	local cases=("h2,,http/1.1|an empty protocol name" "h2,h2|listed twice"
		"h 2|only printable ASCII" "a,b,c,d,e,f,g,h,i|more than 8 protocols"
		"0123456789012345678901234567890123|longer than 32 characters")
	local c
	for c in "${cases[@]}"; do
		run ctl sni update "$API" --alpn "${c%%|*}"
		assert_failure 5
		assert_output --partial "${c#*|}"
	done
	run ctl sni update "$API" --no-alpn maybe
	assert_failure
	assert_output --partial "allow|refuse"
	run --separate-stderr ctl --json sni get "$API"
	[ "$(echo "$output" | jq -c .alpn)" = '["postgresql"]' ] || fail "changed: $output"
}

@test "sni --alpn: protocol http reads h2 and http/1.1 only; forward headers under tcp reads http/1.1 only" {
	# --protocol http terminates h2 (h2http.bats): accepted, with or without headers mode
	run ctl sni update "$API" --protocol http --alpn h2,http/1.1
	assert_success
	run ctl sni update "$API" --forward headers
	assert_success
	run ctl sni update "$API" --forward none
	assert_success
	# any other protocol needs the byte relay
	run ctl sni update "$API" --alpn h2,postgresql
	assert_failure 2
	assert_output --partial "--protocol http (already set): the edge reads HTTP from the client"
	run ctl sni update "$API" --protocol tcp --alpn h2
	assert_success
	run ctl sni update "$API" --forward headers
	assert_failure 2
	assert_output --partial "headers mode writes the identity into HTTP/1.1 request heads"
	# Either side may be the stored one.
	run ctl sni update "$API" --alpn postgresql
	assert_success
	run ctl sni update "$API" --protocol http
	assert_failure 2
	assert_output --partial "--alpn postgresql (already set)"
	run --separate-stderr ctl --json sni get "$API"
	[ "$(echo "$output" | jq -r .protocol)" = tcp ] || fail "changed: $output"
}

@test "ALPN: the edge's order decides; none in common is no_application_protocol; none offered passes" {
	run ctl sni update "$API" --alpn h2,http/1.1
	assert_success
	start_edge
	log_mark
	run alpn_client http/1.1,h2
	assert_output --partial "ALPN protocol: h2"
	wait_log "handshake .*sni=$API verdict=pass .*alpn=h2"
	run alpn_client http/1.1
	assert_output --partial "ALPN protocol: http/1.1"
	assert_output --partial "hello from upstream"
	wait_log "handshake .*sni=$API verdict=pass .*alpn=http/1.1"
	log_mark
	run alpn_client foo,bar
	assert_output --partial "no application protocol"
	refute_output --partial "hello from upstream"
	wait_log "handshake .*sni=$API verdict=fail reason=alpn_mismatch detail=\"the client offered foo,bar; the hostname serves h2,http/1.1\""
	# No ALPN at all: allowed (the default), no alpn= in the line.
	log_mark
	run alpn_client -
	assert_output --partial "No ALPN negotiated"
	assert_output --partial "hello from upstream"
	wait_log "handshake .*sni=$API verdict=pass"
	run log_since
	refute_output --partial "alpn="
	# Metrics by protocol, and the refusal by reason.
	run ctl metrics
	assert_success
	assert_line --regexp "^mtls_edge_alpn_total\{host=\"$API\",protocol=\"h2\"\} 1$"
	assert_line --regexp "^mtls_edge_alpn_total\{host=\"$API\",protocol=\"http/1.1\"\} 1$"
	assert_line --regexp "^mtls_edge_alpn_total\{host=\"$API\",protocol=\"_none\"\} 1$"
	assert_line --regexp '^mtls_edge_handshake_failures_total\{reason="alpn_mismatch"\} 1$'
}

@test "ALPN: --no-alpn refuse turns away a client that offers none; an object without ALPN answers none" {
	run ctl sni update "$API" --alpn h2 --no-alpn refuse
	assert_success
	start_edge
	log_mark
	run alpn_client -
	assert_output --partial "no application protocol"
	refute_output --partial "hello from upstream"
	wait_log "handshake .*sni=$API verdict=fail reason=alpn_missing detail=\"the client offered no ALPN; the hostname serves h2\""
	run alpn_client h2
	assert_output --partial "ALPN protocol: h2"
	# Back to no ALPN: the answer has none, whatever the client offers (as before ALPN).
	run ctl sni update "$API" --alpn '' --no-alpn allow
	assert_success
	run alpn_client h2
	assert_output --partial "No ALPN negotiated"
	assert_output --partial "hello from upstream"
}

@test "ALPN: the PROXY v2 header carries the protocol negotiated (PP2_TYPE_ALPN)" {
	stop_all
	start_upstream --proxy-v2
	run ctl sni update "$API" --upstream "127.0.0.1:$UP_PORT" --forward proxy-v2 --alpn h2,http/1.1
	assert_success
	start_edge
	run edge_curl_as alice "$API" /proxy --http1.1
	assert_success
	assert_line "tlv=0x01 len=8 text=http/1.1"
	assert_line "tlv=0x02 len=${#API} text=$API"
}

# h2c_nginx: nginx serving HTTP/2 with prior knowledge (h2c) on a cleartext port; sets H2C_PORT.
h2c_nginx() {
	H2C_PORT=$(closed_port)
	start_nginx "server {
		listen 127.0.0.1:$H2C_PORT http2;
		location / { return 200 \"h2 upstream saw \$server_protocol\\n\"; }
	}" "$H2C_PORT"
}

@test "--protocol tcp with h2: curl --http2 speaks HTTP/2 end to end to an h2c upstream" {
	h2c_nginx
	run ctl sni update "$API" --upstream "127.0.0.1:$H2C_PORT" --alpn h2,http/1.1
	assert_success
	start_edge
	log_mark
	run edge_curl_as alice "$API" /x --http2 -w '%{http_version}\n'
	assert_success
	assert_output $'h2 upstream saw HTTP/2.0\n2'
	wait_log "handshake .*sni=$API verdict=pass .*alpn=h2"
	wait_log "close peer=.* path=$EXPECT"
	# Several streams on one connection.
	run edge_curl_as alice "$API" /a --http2 -w '%{http_version}\n' \
		--next --resolve "$API:$EDGE_PORT:127.0.0.1" --cacert "$PKI/server-ca.crt" \
		--cert "$DIR/alice.crt" --key "$DIR/alice.key" --http2 -w '%{http_version}\n' \
		"https://$API:$EDGE_PORT/b"
	assert_success
	[ "$(grep -c '^2$' <<<"$output")" = 2 ] || fail "two h2 responses: $output"
	# No certificate: no entry, whatever the protocol.
	run edge_curl "$API" /x --http2
	assert_failure
}

# tls_h2_upstream: nginx with TLS and h2 (ALPN h2, http/1.1) on a port; sets TLS_UP_PORT and the
# upstream PKI (up-ca, up.internal).
tls_upstream_pki() {
	make_ca "$PKI/up-ca" "upstream CA"
	sign_cert "$PKI/up-ca" "$PKI/up" up.internal "subjectAltName=DNS:up.internal
extendedKeyUsage=serverAuth"
}

@test "--protocol tcp with a TLS upstream: it is offered exactly the client's protocol" {
	tls_upstream_pki
	TLS_UP_PORT=$(closed_port)
	start_nginx "server {
		listen 127.0.0.1:$TLS_UP_PORT ssl http2;
		ssl_certificate $PKI/up.crt;
		ssl_certificate_key $PKI/up.key;
		location / { return 200 \"tls upstream saw \$server_protocol\\n\"; }
	}" "$TLS_UP_PORT"
	run ctl sni update "$API" --upstream "127.0.0.1:$TLS_UP_PORT" --upstream-tls on \
		--upstream-ca "$PKI/up-ca.crt" --upstream-sni up.internal --alpn h2,http/1.1
	assert_success
	start_edge
	run edge_curl_as alice "$API" /x --http2 -w '%{http_version}\n'
	assert_success
	assert_output $'tls upstream saw HTTP/2.0\n2'
	wait_log "close peer=.* path=$EXPECT"
	# The client's http/1.1 is what the upstream is offered, and speaks.
	run edge_curl_as alice "$API" /x --http1.1 -w '%{http_version}\n'
	assert_success
	assert_output $'tls upstream saw HTTP/1.1\n1.1'
}

@test "--protocol tcp with a TLS upstream that selects no protocol: closed, counted, logged" {
	tls_upstream_pki
	(exec openssl s_server -accept 127.0.0.1:0 -cert "$PKI/up.crt" -key "$PKI/up.key" -WWW \
		>"$DIR/s_server.out" 2>&1 3>&-) &
	track_pid $!
	retry 100 0.05 grep -q '^ACCEPT' "$DIR/s_server.out"
	TLS_UP_PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$DIR/s_server.out")
	run ctl sni update "$API" --upstream "127.0.0.1:$TLS_UP_PORT" --upstream-tls on \
		--upstream-ca "$PKI/up-ca.crt" --upstream-sni up.internal --alpn h2
	assert_success
	start_edge
	counter_mark upstream_alpn_mismatch
	log_mark
	run edge_curl_as alice "$API" /x --http2
	assert_failure
	wait_log "upstream alpn mismatch sni=$API upstream=127.0.0.1:$TLS_UP_PORT .* alpn=h2 upstream_alpn=-"
	wait_log "close peer=.* reason=upstream_alpn_mismatch"
	assert_counter upstream_alpn_mismatch 1
}

@test "h2 on a certificate that covers an SNI object with another policy is refused, and says which" {
	make_server_ca
	# One certificate for both names.
	sign_cert "$PKI/server-ca" "$PKI/both" "$API" "subjectAltName=DNS:$API,DNS:admin.example.test
extendedKeyUsage=serverAuth"
	add_sni admin.example.test --mtls optional
	run ctl sni update "$API" --cert "$PKI/both.crt" --key "$PKI/both.key" --alpn h2
	assert_failure 5
	assert_output --partial "its certificate also covers admin.example.test (SNI object admin.example.test), which has another mTLS mode"
	run --separate-stderr ctl --json sni get "$API"
	[ "$(echo "$output" | jq -c .alpn)" = '[]' ] || fail "changed: $output"
	# The same policy on both: nothing to gain by reuse, accepted.
	run ctl sni update admin.example.test --mtls required
	assert_success
	run ctl sni update "$API" --cert "$PKI/both.crt" --key "$PKI/both.key" --alpn h2
	assert_success
	# Now the other side changes: its trust (an uploaded CA bound to it) or mTLS mode would
	# differ from the h2 object's, so that write is refused too.
	run ctl sni update admin.example.test --mtls off
	assert_failure 5
	assert_output --partial "ALPN h2 on $API (--protocol tcp): its certificate also covers admin.example.test"
	# A wildcard SNI object that the certificate's name falls under counts too.
	run ctl sni delete admin.example.test
	assert_success
	make_server_cert '*.example.test'
	run ctl sni add '*.example.test' --cert "$PKI/*.example.test.crt" \
		--key "$PKI/*.example.test.key" --upstream "127.0.0.1:$UP_PORT" --mtls optional
	assert_failure 5
	assert_output --partial "covers admin.example.test (SNI object *.example.test), which has another mTLS mode"
	run ctl sni get '*.example.test'
	assert_failure 3
	# Without h2 (HTTP/1.1 connections are not reused across hostnames) nothing is refused.
	run ctl sni update "$API" --alpn http/1.1
	assert_success
	add_sni '*.example.test' --mtls optional
	run ctl sni update "$API" --alpn h2,http/1.1
	assert_failure 5
	assert_output --partial "covers admin.example.test (SNI object *.example.test)"
}

@test "h2 coalescing: other identity rules count as another policy" {
	make_server_ca
	sign_cert "$PKI/server-ca" "$PKI/both" "$API" "subjectAltName=DNS:$API,DNS:admin.example.test
extendedKeyUsage=serverAuth"
	add_sni admin.example.test
	run ctl identity allow admin.example.test --cn alice
	assert_success
	run ctl sni update "$API" --cert "$PKI/both.crt" --key "$PKI/both.key" --alpn h2
	assert_failure 5
	assert_output --partial "which has other identity rules"
	run ctl identity allow "$API" --cn alice
	assert_success
	run ctl sni update "$API" --cert "$PKI/both.crt" --key "$PKI/both.key" --alpn h2
	assert_success
	# Later changes of either side's policy are held to the same rule.
	run ctl identity allow admin.example.test --cn bob
	assert_failure 5
	assert_output --partial "covers admin.example.test (SNI object admin.example.test), which has other identity rules"
	make_ca "$PKI/partner" "partner CA"
	run ctl ca upload "$PKI/partner.crt" --name partner
	assert_success
	run ctl ca hosts set 1 admin.example.test
	assert_failure 5
	assert_output --partial "which has other trusted CAs"
	run ctl ca hosts set 1 admin.example.test "$API"
	assert_success
	run ctl identity list
	refute_output --partial bob
}
