#!/usr/bin/env bats
# One hostname, several server certificates (issue 19): an SNI object holds at most one chain per
# key type (RSA, ECDSA, Ed25519); OpenSSL picks the one the client's signature algorithms (and,
# in TLS 1.2, its cipher suites) allow. `sni get/list` show every one, the expiry check names
# each, and every refusal leaves the store byte for byte as it was.

load helpers
bats_require_minimum_version 1.5.0

API=api.example.test

setup() {
	edge_setup
	# shellcheck disable=SC2119 # the upstream's defaults
	start_upstream
	make_site
	client_cert alice
	make_server_ca
	server_cert rsa "$API"
	server_cert ecdsa "$API"
}

teardown() {
	stop_all
}

# server_cert TYPE HOST [openssl x509 args]: $PKI/HOST-TYPE.crt and .key (0600) from the test
# server CA, TYPE rsa (2048 bits), ecdsa (P-256), ed25519 or rsa-pss.
server_cert() {
	local type=$1 host=$2 out=$PKI/$2-$1
	shift 2
	local key
	case $type in
	rsa) key=(-newkey rsa:2048) ;;
	ecdsa) key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	ed25519) key=(-newkey ed25519) ;;
	rsa-pss) key=(-newkey rsa-pss -pkeyopt rsa_keygen_bits:2048) ;;
	esac
	if ! openssl req -new "${key[@]}" -nodes -keyout "$out.key" -out "$out.csr" -subj "/CN=$host" \
		>/dev/null 2>&1 ||
		! openssl x509 -req -in "$out.csr" -CA "$PKI/server-ca.crt" -CAkey "$PKI/server-ca.key" \
			-CAcreateserial -days 400 -out "$out.crt" "$@" -extfile <(printf '%s\n' \
				"subjectAltName=DNS:$host" "basicConstraints=critical,CA:FALSE" \
				"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth") \
			>/dev/null 2>&1; then
		fail "openssl: cannot make the $type certificate for $host"
	fi
	chmod 600 "$out.key"
	rm -f "$out.csr"
}

# dual_sni [sni add options]: $API with its RSA and its ECDSA certificate, in that order.
dual_sni() {
	run --separate-stderr ctl sni add "$API" --cert "$PKI/$API-rsa.crt" --key "$PKI/$API-rsa.key" \
		--cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-ecdsa.key" \
		--upstream "127.0.0.1:$UP_PORT" "$@"
	assert_success
}

dump() {
	sqlite3 "$STATE/state.db" .dump
}

# peer_key [s_client args]: a verified request as alice; prints the key algorithm of the
# certificate the server presented (rsaEncryption, id-ecPublicKey, ED25519) and fails unless the
# upstream answered.
peer_key() {
	local out
	out=$(edge_s_client "$API" -cert "$DIR/alice.crt" -key "$DIR/alice.key" \
		-client_sigalgs ecdsa_secp256r1_sha256 -verify_return_error "$@")
	grep -q 'hello from upstream' <<<"$out" || {
		echo "$out" >&2
		return 1
	}
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' <<<"$out" |
		openssl x509 -noout -text | sed -n 's/^ *Public Key Algorithm: *//p'
}

# refused CODE TEXT ARGS...: mtls-edgectl ARGS exits CODE, says TEXT on stderr, and the store is
# byte for byte what it was.
refused() {
	local code=$1 text=$2 before
	shift 2
	before=$(dump)
	run --separate-stderr ctl "$@"
	assert_failure "$code"
	# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
	[[ $stderr == *"$text"* ]] || fail "stderr lacks '$text': $stderr"
	[ "$(dump)" = "$before" ] || fail "the refused command changed the store"
}

@test "the client's signature algorithms pick the certificate: TLS 1.3 and TLS 1.2, curl" {
	dual_sni
	start_daemon

	run peer_key -tls1_3 -sigalgs rsa_pss_rsae_sha256
	assert_success
	assert_output rsaEncryption
	run peer_key -tls1_3 -sigalgs ecdsa_secp256r1_sha256
	assert_success
	assert_output id-ecPublicKey
	run peer_key -tls1_2 -sigalgs rsa_pss_rsae_sha256:rsa_pkcs1_sha256
	assert_success
	assert_output rsaEncryption
	run peer_key -tls1_2 -sigalgs ecdsa_secp256r1_sha256
	assert_success
	assert_output id-ecPublicKey
	# TLS 1.2 cipher suites name the key type too
	run peer_key -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
	assert_success
	assert_output rsaEncryption
	run peer_key -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
	assert_success
	assert_output id-ecPublicKey
	# a client that accepts neither: a handshake failure, nothing relayed
	up_mark
	run edge_s_client "$API" -tls1_3 -sigalgs ed25519 -cert "$DIR/alice.crt" -key "$DIR/alice.key"
	refute_output --partial 'hello from upstream'
	assert_upstream_untouched

	run edge_curl_as alice "$API" / -w '%{http_code}\n'
	assert_success
	assert_output "hello from upstream
200"
	run edge_curl_as alice "$API" / --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256
	assert_success
	assert_output 'hello from upstream'
}

@test "an Ed25519 certificate beside them, for the clients that ask for it" {
	server_cert ed25519 "$API"
	dual_sni --cert "$PKI/$API-ed25519.crt" --key "$PKI/$API-ed25519.key"
	assert_output "added SNI object $API -> 127.0.0.1:$UP_PORT (mTLS required, TLS 1.2-1.3, 3 certificates: rsa, ecdsa, ed25519)"
	start_daemon
	run peer_key -tls1_3 -sigalgs ed25519
	assert_success
	assert_output ED25519
	run peer_key -tls1_3 -sigalgs ecdsa_secp256r1_sha256
	assert_success
	assert_output id-ecPublicKey
	run peer_key -tls1_3 -sigalgs rsa_pss_rsae_sha256
	assert_success
	assert_output rsaEncryption
}

@test "sni add/get/list and --json show both; update replaces the set, one file alone only for one" {
	dual_sni
	assert_output "added SNI object $API -> 127.0.0.1:$UP_PORT (mTLS required, TLS 1.2-1.3, 2 certificates: rsa, ecdsa)"
	[ "$(sqlite3 "$STATE/state.db" 'SELECT cert_file || " " || key_file FROM sni')" = "$PKI/$API-rsa.crt $PKI/$API-rsa.key" ]
	[ "$(sqlite3 "$STATE/state.db" 'SELECT pos || " " || cert_file || " " || key_file FROM sni_cert')" = "2 $PKI/$API-ecdsa.crt $PKI/$API-ecdsa.key" ]

	run --separate-stderr ctl --json sni get "$API"
	assert_success
	[ "$(jq -r .cert_file <<<"$output")" = "$PKI/$API-rsa.crt" ]
	[ "$(jq -r .key_file <<<"$output")" = "$PKI/$API-rsa.key" ]
	[ "$(jq -c '[.certs[] | [.key_type, .cert_file, .key_file]]' <<<"$output")" = \
		"[[\"rsa\",\"$PKI/$API-rsa.crt\",\"$PKI/$API-rsa.key\"],[\"ecdsa\",\"$PKI/$API-ecdsa.crt\",\"$PKI/$API-ecdsa.key\"]]" ]
	run ctl sni get "$API"
	assert_success
	assert_line --regexp "^cert_file: +$PKI/$API-rsa\.crt$"
	assert_line --regexp "^certs\.rsa: +$PKI/$API-rsa\.crt \(key $PKI/$API-rsa\.key\)$"
	assert_line --regexp "^certs\.ecdsa: +$PKI/$API-ecdsa\.crt \(key $PKI/$API-ecdsa\.key\)$"
	run ctl sni list
	assert_success
	assert_line --index 0 --regexp '^HOSTNAME +MTLS +TLS_MIN +TLS_MAX +UPSTREAM +UP_TLS +FORWARD +PROTOCOL +CERT +CA_HINTS +ALPN$'
	assert_line --index 1 --regexp "^$API +required .* $PKI/$API-rsa\.crt \(\+1\) +trusted +-$"
	run --separate-stderr ctl --json sni list
	[ "$(jq -r '.[0].certs | map(.key_type) | join(",")' <<<"$output")" = rsa,ecdsa ]

	# one certificate: the output of before, certs in --json only
	server_cert ecdsa one.example.test
	run --separate-stderr ctl sni add one.example.test --cert "$PKI/one.example.test-ecdsa.crt" \
		--key "$PKI/one.example.test-ecdsa.key" --upstream "127.0.0.1:$UP_PORT"
	assert_output "added SNI object one.example.test -> 127.0.0.1:$UP_PORT (mTLS required, TLS 1.2-1.3)"
	run ctl sni get one.example.test
	refute_output --partial certs
	run ctl sni list
	assert_line --index 2 --regexp "^one\.example\.test .* $PKI/one\.example\.test-ecdsa\.crt +trusted +-$"
	run --separate-stderr ctl --json sni get one.example.test
	[ "$(jq -c '.certs | map(.key_type)' <<<"$output")" = '["ecdsa"]' ]

	# an update without --cert/--key keeps both
	run --separate-stderr ctl sni update "$API" --mtls optional
	assert_success
	assert_output "updated SNI object $API -> 127.0.0.1:$UP_PORT (mTLS optional, TLS 1.2-1.3, 2 certificates: rsa, ecdsa)"
	[ "$(sqlite3 "$STATE/state.db" 'SELECT count(*) FROM sni_cert')" = 1 ]
	# the pairs given replace the set: the ECDSA one alone now
	run --separate-stderr ctl sni update "$API" --cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-ecdsa.key"
	assert_success
	assert_output "updated SNI object $API -> 127.0.0.1:$UP_PORT (mTLS optional, TLS 1.2-1.3)"
	[ "$(sqlite3 "$STATE/state.db" 'SELECT cert_file FROM sni WHERE hostname = "'"$API"'"')" = "$PKI/$API-ecdsa.crt" ]
	[ "$(sqlite3 "$STATE/state.db" 'SELECT count(*) FROM sni_cert')" = 0 ]
	# ECDSA first, RSA second: the order given is kept
	run --separate-stderr ctl sni update "$API" --cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-ecdsa.key" \
		--cert "$PKI/$API-rsa.crt" --key "$PKI/$API-rsa.key"
	assert_success
	run --separate-stderr ctl --json sni get "$API"
	[ "$(jq -r '.certs | map(.key_type) | join(",")' <<<"$output")" = ecdsa,rsa ]
	# one file alone is for an object with one certificate (a renewal with the same key)
	refused 2 "--cert and --key go in pairs" sni update "$API" --cert "$PKI/$API-rsa.crt"
	[[ $stderr == *"give each one to keep"* ]]
	run --separate-stderr ctl sni update one.example.test --cert "$PKI/one.example.test-ecdsa.crt"
	assert_success
	# delete takes the further certificates with it
	run ctl sni delete "$API"
	assert_success
	[ "$(sqlite3 "$STATE/state.db" 'SELECT count(*) FROM sni_cert')" = 0 ]
}

@test "refusals: two of one type, a mismatched key, a readable key, unpaired or too many: store unchanged" {
	dual_sni
	server_cert rsa other.example.test
	server_cert ecdsa other.example.test
	local rsa=("--cert" "$PKI/$API-rsa.crt" "--key" "$PKI/$API-rsa.key")
	local ec=("--cert" "$PKI/$API-ecdsa.crt" "--key" "$PKI/$API-ecdsa.key")
	local up=(--upstream "127.0.0.1:$UP_PORT")

	server_cert rsa two.example.test
	cp "$PKI/two.example.test-rsa.crt" "$PKI/$API-rsa2.crt"
	cp "$PKI/two.example.test-rsa.key" "$PKI/$API-rsa2.key"
	refused 5 "--cert $PKI/$API-rsa.crt and --cert $PKI/$API-rsa2.crt are both rsa certificates: at most one per key type" \
		sni add two.example.test "${rsa[@]}" --cert "$PKI/$API-rsa2.crt" --key "$PKI/$API-rsa2.key" "${up[@]}"
	refused 5 "are both rsa certificates" \
		sni update "$API" "${rsa[@]}" --cert "$PKI/$API-rsa2.crt" --key "$PKI/$API-rsa2.key"
	refused 5 "are both ecdsa certificates" sni update "$API" "${ec[@]}" "${ec[@]}"
	# each key with its own certificate: the RSA key given with the ECDSA certificate
	refused 5 "$PKI/$API-ecdsa.crt: the private key does not match the certificate" \
		sni update "$API" "${rsa[@]}" --cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-rsa.key"
	refused 5 "$PKI/other.example.test-ecdsa.crt: the private key does not match the certificate" \
		sni update "$API" "${rsa[@]}" --cert "$PKI/other.example.test-ecdsa.crt" --key "$PKI/$API-ecdsa.key"
	# the keys swapped
	refused 5 "the private key does not match the certificate" \
		sni update "$API" --cert "$PKI/$API-rsa.crt" --key "$PKI/$API-ecdsa.key" \
		--cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-rsa.key"
	# the second key readable by others
	chmod 644 "$PKI/$API-ecdsa.key"
	refused 5 "key file $PKI/$API-ecdsa.key has mode 0644" sni update "$API" "${rsa[@]}" "${ec[@]}"
	refused 5 "run: chmod 600 $PKI/$API-ecdsa.key" sni add other.example.test "${rsa[@]}" "${ec[@]}" "${up[@]}"
	chmod 600 "$PKI/$API-ecdsa.key"
	refused 2 "--cert and --key go in pairs, the first --key with the first --cert: 2 --cert, 1 --key" \
		sni add other.example.test "${rsa[@]}" --cert "$PKI/$API-ecdsa.crt" "${up[@]}"
	server_cert ed25519 "$API"
	refused 5 "4 certificates: at most 3, one per key type" \
		sni update "$API" "${rsa[@]}" "${ec[@]}" --cert "$PKI/$API-ed25519.crt" --key "$PKI/$API-ed25519.key" \
		--cert "$PKI/$API-rsa2.crt" --key "$PKI/$API-rsa2.key"
	# a key type that has no slot of its own beside others (RSA-PSS); alone it is as before
	if server_cert rsa-pss "$API" 2>/dev/null; then
		refused 5 "$PKI/$API-rsa-pss.crt: its RSA-PSS key cannot stand beside other certificates" \
			sni update "$API" "${ec[@]}" --cert "$PKI/$API-rsa-pss.crt" --key "$PKI/$API-rsa-pss.key"
	fi
	run --separate-stderr ctl --json sni get "$API"
	[ "$(jq -r '.certs | map(.key_type) | join(",")' <<<"$output")" = rsa,ecdsa ]
}

@test "the daemon: a file changed on disk to a second key of one type is refused, the old state kept" {
	dual_sni
	start_daemon
	# the ECDSA files replaced in place by an RSA pair: the reload fails, the old snapshot serves
	cp "$PKI/$API-ecdsa.crt" "$DIR/ecdsa.crt.orig"
	cp "$PKI/$API-ecdsa.key" "$DIR/ecdsa.key.orig"
	server_cert rsa other.example.test
	cp "$PKI/other.example.test-rsa.crt" "$PKI/$API-ecdsa.crt"
	cp "$PKI/other.example.test-rsa.key" "$PKI/$API-ecdsa.key"
	log_mark
	run --separate-stderr ctl reload
	assert_failure
	wait_log "reload .*refused.*sni $API: certificates $PKI/$API-rsa\.crt and $PKI/$API-ecdsa\.crt are both rsa: at most one per key type"
	run peer_key -tls1_3 -sigalgs ecdsa_secp256r1_sha256
	assert_success
	assert_output id-ecPublicKey
	# a key that is not its certificate's (an earlier pair's): refused too
	cp "$DIR/ecdsa.crt.orig" "$PKI/$API-ecdsa.crt"
	cp "$PKI/$API-rsa.key" "$PKI/$API-ecdsa.key"
	log_mark
	run --separate-stderr ctl reload
	assert_failure
	wait_log "reload .*refused.*sni $API: cannot use private key $PKI/$API-ecdsa\.key"
	cp "$DIR/ecdsa.key.orig" "$PKI/$API-ecdsa.key"
	run --separate-stderr ctl reload
	assert_success
}

@test "expiry: each certificate checked, named with its key type" {
	rm -f "$PKI/$API-ecdsa".*
	server_cert ecdsa "$API" -days 5 # the RSA one: 400 days
	dual_sni
	server_cert rsa both.example.test -days 6
	server_cert ecdsa both.example.test -days 7
	run ctl sni add both.example.test --cert "$PKI/both.example.test-ecdsa.crt" \
		--key "$PKI/both.example.test-ecdsa.key" --cert "$PKI/both.example.test-rsa.crt" \
		--key "$PKI/both.example.test-rsa.key" --upstream "127.0.0.1:$UP_PORT"
	assert_success
	server_cert ecdsa one.example.test -days 8
	run ctl sni add one.example.test --cert "$PKI/one.example.test-ecdsa.crt" \
		--key "$PKI/one.example.test-ecdsa.key" --upstream "127.0.0.1:$UP_PORT"
	assert_success
	printf '[tls]\nexpiry_warn_days = 20\n' >"$DIR/edged.conf"
	start_daemon -c "$DIR/edged.conf" --metrics-listen 127.0.0.1:0

	grep -E "warn expiry kind=server_cert name=\"$API \(ecdsa\)\" state=expiring .*days_left=[45] " "$LOG"
	! grep -E "expiry kind=server_cert name=\"$API \(rsa\)\"" "$LOG" || false
	grep -E "warn expiry kind=server_cert name=\"both\.example\.test \(rsa\)\" state=expiring .*days_left=[56] " "$LOG"
	grep -E "warn expiry kind=server_cert name=\"both\.example\.test \(ecdsa\)\" state=expiring .*days_left=[67] " "$LOG"
	# one certificate: its hostname alone, as before
	grep -E "warn expiry kind=server_cert name=one\.example\.test state=expiring .*days_left=[78] " "$LOG"

	ctl metrics | prom_parse >"$DIR/m" || fail "exposition rejected"
	assert_equal "$(prom_value "$DIR/m" "mtls_edge_cert_expiry_timestamp_seconds{kind=\"server_cert\",name=\"$API (rsa)\"}")" \
		"$(date -d "$(openssl x509 -in "$PKI/$API-rsa.crt" -noout -enddate | cut -d= -f2)" +%s)"
	assert_equal "$(prom_value "$DIR/m" "mtls_edge_cert_expiry_timestamp_seconds{kind=\"server_cert\",name=\"$API (ecdsa)\"}")" \
		"$(date -d "$(openssl x509 -in "$PKI/$API-ecdsa.crt" -noout -enddate | cut -d= -f2)" +%s)"
	assert_equal "$(prom_value "$DIR/m" mtls_edge_certs_expiring)" 4
	run --separate-stderr ctl --json status
	assert_success
	[ "$(jq -r '[.expiring[] | select(.kind == "server_cert") | .name] | sort | join(",")' <<<"$output")" = \
		"$API (ecdsa),both.example.test (ecdsa),both.example.test (rsa),one.example.test" ]
}

@test "a schema v3 store: mtls-edged reads it, the next mtls-edgectl command migrates it to v4" {
	[ -s "$PKI/$API-ecdsa.crt" ] || fail "no certificate"
	run ctl sni add "$API" --cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-ecdsa.key" \
		--upstream "127.0.0.1:$UP_PORT"
	assert_success
	# back to what a v3 build left
	sqlite3 "$STATE/state.db" "ALTER TABLE sni DROP COLUMN no_alpn; ALTER TABLE sni DROP COLUMN alpn;
		DROP TABLE sni_cert; UPDATE meta SET value = '3' WHERE key = 'schema_version'"
	before=$(dump)
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off --check
	assert_success
	[ "$(dump)" = "$before" ] || fail "mtls-edged --check changed the store"
	start_daemon
	run peer_key -tls1_3
	assert_success
	assert_output id-ecPublicKey
	# the expiry check read the v3 store too (one certificate: the hostname alone)
	! grep -q "expiry check .* failed" "$LOG" || fail "the expiry check failed on a v3 store"
	ctl metrics | prom_parse >"$DIR/m" || fail "exposition rejected"
	grep -q "^mtls_edge_cert_expiry_timestamp_seconds{kind=\"server_cert\",name=\"$API\"} " "$DIR/m"
	[ "$(sqlite3 "$STATE/state.db" "SELECT value FROM meta WHERE key = 'schema_version'")" = 3 ]
	run --separate-stderr ctl sni list
	assert_success
	[ "$(sqlite3 "$STATE/state.db" "SELECT value FROM meta WHERE key = 'schema_version'")" = 5 ]
	[ "$(sqlite3 "$STATE/state.db" 'SELECT count(*) FROM sni_cert')" = 0 ]
	# the running daemon, started on v3, takes the second certificate
	log_mark
	run --separate-stderr ctl sni update "$API" --cert "$PKI/$API-ecdsa.crt" --key "$PKI/$API-ecdsa.key" \
		--cert "$PKI/$API-rsa.crt" --key "$PKI/$API-rsa.key"
	assert_success
	[[ $stderr != *warning* ]] || fail "the reload did not go through: $stderr"
	run peer_key -tls1_3 -sigalgs rsa_pss_rsae_sha256
	assert_success
	assert_output rsaEncryption
}
