#!/usr/bin/env bats
# mtls-edgectl verify: the daemon's own verifier, offline, against the store; exit 0 only when
# the certificate is valid for the hostname.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	add_sni b.example.test
	client_cert alice
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
}

teardown() {
	stop_all
}

@test "a valid certificate: exit 0, reason ok, and what the daemon would do" {
	run ctl verify "$DIR/alice.crt" --host api.example.test
	assert_success
	assert_output --regexp "verdict: +valid"
	assert_output --regexp "reason: +ok"
	assert_output --regexp "daemon: +relay to the upstream"
}

@test "the offline verdict is the daemon's verdict, reason for reason" {
	start_daemon
	for who in mallory alice; do
		log_mark
		edge_curl_as "$who" api.example.test / >/dev/null 2>&1 || true
		wait_log "handshake peer=.* sni=api.example.test verdict="
		live=$(log_since | grep -o 'verdict=[a-z]* reason=[a-z_]*' | head -1 | sed 's/.*reason=//')
		run ctl verify "$DIR/$who.crt" --host api.example.test --json
		echo "$output" | grep -q "\"reason\":\"$live\"" ||
			fail "$who: the daemon said $live, verify said: $output"
	done
}

@test "an unknown CA, an expired and a revoked certificate: exit 5 with the reason" {
	run ctl verify "$DIR/mallory.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +unknown_ca"
	assert_output --regexp "daemon: +refuse: the handshake fails with a TLS alert"
	run faketime -f '-400d' "$BIN/mtls-edgectl" --state "$STATE" cert create --cn old --days 30 \
		--out "$DIR/old"
	assert_success
	run ctl verify "$DIR/old.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +cert_expired"
	# --at judges another moment: alice's 365-day certificate, 400 days from now.
	run ctl verify "$DIR/alice.crt" --host api.example.test --at "$(($(date +%s) + 400 * 86400))"
	assert_failure 5
	assert_output --regexp "reason: +cert_expired"
	run ctl cert revoke "$(openssl x509 -in "$DIR/alice.crt" -noout -serial | cut -d= -f2)" --yes
	assert_success
	run ctl verify "$DIR/alice.crt" --host api.example.test
	assert_failure 5
	assert_output --regexp "reason: +cert_revoked"
}

@test "trust is per hostname: an uploaded CA's certificate verifies only where it is bound" {
	make_ca "$PKI/partner" "partner CA"
	make_client_cert "$PKI/partner" "$DIR/carol" carol
	upload_ca "$PKI/partner" partner api.example.test
	run ctl verify "$DIR/carol.crt" --host api.example.test
	assert_success
	run ctl verify "$DIR/carol.crt" --host b.example.test
	assert_failure 5
	assert_output --regexp "reason: +unknown_ca"
}

@test "verify refuses bad input clearly" {
	run ctl verify "$DIR/alice.crt"
	assert_failure 2
	assert_output --partial "--host"
	run ctl verify "$DIR/alice.key" --host api.example.test
	assert_failure 5
	run ctl verify "$DIR/alice.crt" --host api.example.test --at yesterday
	assert_failure 2
}

# ca_under ISSUER PREFIX CN: an intermediate CA signed by ISSUER.
ca_under() {
	sign_cert "$1" "$2" "$3" "basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign"
}

@test "--trust without a store: anchors from a file, an intermediate one too; --json names the check and the depth" {
	make_ca "$PKI/root" "test root"
	ca_under "$PKI/root" "$PKI/inter" "test intermediate"
	make_client_cert "$PKI/inter" "$DIR/dan" dan
	nostore=(--state "$DIR/no-store-here")
	run "$BIN/mtls-edgectl" "${nostore[@]}" verify "$DIR/dan.crt" --trust "$PKI/root.crt" \
		--chain "$PKI/inter.crt" --json
	assert_success
	assert_output --partial '"verdict":"valid"'
	[ ! -e "$DIR/no-store-here" ] || fail "verify --trust made a store"
	# the intermediate alone anchors the path (no partial chains was a refusal)
	run "$BIN/mtls-edgectl" "${nostore[@]}" verify "$DIR/dan.crt" --trust "$PKI/inter.crt"
	assert_success
	# without the intermediate: unknown_ca at depth 0, exit 5
	run "$BIN/mtls-edgectl" "${nostore[@]}" verify "$DIR/dan.crt" --trust "$PKI/root.crt" --json
	assert_failure 5
	assert_output --partial '"reason":"unknown_ca"'
	assert_output --partial '"depth":0'
	run ctl verify "$DIR/dan.crt" --trust "$PKI/root.crt" --host api.example.test
	assert_failure 2
	run ctl verify "$DIR/dan.crt" --trust "$DIR/missing.pem"
	assert_failure
	[ "$status" -ne 0 ] && [ "$status" -ne 2 ] || fail "a missing --trust file: exit $status"
}

@test "--crl, repeatable, for any CA of the path; a CRL this verifier cannot use refuses" {
	make_ca "$PKI/root" "test root"
	ca_under "$PKI/root" "$PKI/inter" "test intermediate"
	make_client_cert "$PKI/inter" "$DIR/dan" dan
	make_client_cert "$PKI/inter" "$DIR/eve" eve
	ca_crl "$PKI/root" "$DIR/root.crl"
	ca_crl "$PKI/inter" "$DIR/inter.crl" -- "$DIR/eve.crt"
	v=(verify --trust "$PKI/root.crt" --chain "$PKI/inter.crt" --crl "$DIR/root.crl" --crl "$DIR/inter.crl")
	run ctl "${v[@]}" "$DIR/dan.crt"
	assert_success
	run ctl "${v[@]}" "$DIR/eve.crt" --json
	assert_failure 5
	assert_output --partial '"reason":"cert_revoked"'
	run ctl verify --trust "$PKI/root.crt" --chain "$PKI/inter.crt" "$DIR/eve.crt"
	assert_success
	# A CRL with a critical extension nobody handles, and one without a CRLNumber.
	d=$(mktemp -d "$DIR/crl.XXXXXX")
	: >"$d/index.txt"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ndefault_md=sha256\ndefault_crl_days=7\ncrl_extensions=x\n[x]\n1.3.6.1.4.1.99999.1=critical,ASN1:NULL\n' \
		"$d/index.txt" >"$d/crit.cnf"
	openssl ca -config "$d/crit.cnf" -gencrl -keyfile "$PKI/inter.key" -cert "$PKI/inter.crt" \
		-out "$DIR/crit.crl" 2>/dev/null
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ndefault_md=sha256\ndefault_crl_days=7\n' \
		"$d/index.txt" >"$d/nonum.cnf"
	openssl ca -config "$d/nonum.cnf" -gencrl -keyfile "$PKI/inter.key" -cert "$PKI/inter.crt" \
		-out "$DIR/nonum.crl" 2>/dev/null
	run ctl verify --trust "$PKI/root.crt" --chain "$PKI/inter.crt" --crl "$DIR/crit.crl" \
		"$DIR/dan.crt" --json
	assert_failure 5
	assert_output --partial '"reason":"crl_invalid"'
	assert_output --partial '"check":"crl_unhandled_critical_extension"'
	run ctl verify --trust "$PKI/root.crt" --chain "$PKI/inter.crt" --crl "$DIR/nonum.crl" \
		"$DIR/dan.crt" --json
	assert_failure 5
	assert_output --partial '"check":"crl_number_missing"'
	run ctl verify --trust "$PKI/root.crt" --crl "$DIR/dan.crt" "$DIR/dan.crt"
	assert_failure 2
}

@test "ca crl set refuses a CRL with an unhandled critical extension, without a CRLNumber, or a delta" {
	make_ca "$PKI/partner" "partner CA"
	upload_ca "$PKI/partner" partner
	id=$CA_ID
	d=$(mktemp -d "$DIR/crl.XXXXXX")
	: >"$d/index.txt"
	echo 01 >"$d/crlnumber"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ndefault_md=sha256\ndefault_crl_days=7\ncrl_extensions=x\n[x]\n1.3.6.1.4.1.99999.1=critical,ASN1:NULL\n' \
		"$d/index.txt" >"$d/crit.cnf"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ndefault_md=sha256\ndefault_crl_days=7\n' \
		"$d/index.txt" >"$d/nonum.cnf"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=7\ncrl_extensions=x\n[x]\ndeltaCRL=critical,ASN1:INTEGER:1\n' \
		"$d/index.txt" "$d/crlnumber" >"$d/delta.cnf"
	for k in crit nonum delta; do
		openssl ca -config "$d/$k.cnf" -gencrl -keyfile "$PKI/partner.key" -cert "$PKI/partner.crt" \
			-out "$DIR/$k.crl" 2>/dev/null || fail "openssl ca: no $k CRL"
	done
	run ctl ca crl set "$id" "$DIR/crit.crl"
	assert_failure 5
	assert_output --partial "critical extension this verifier does not handle (1.3.6.1.4.1.99999.1)"
	run ctl ca crl set "$id" "$DIR/nonum.crl"
	assert_failure 5
	assert_output --partial "no CRLNumber"
	run ctl ca crl set "$id" "$DIR/delta.crl"
	assert_failure 5
	assert_output --partial "delta CRL"
	# nothing was stored: the CA still has no CRL
	run ctl ca get "$id" --json
	assert_success
	assert_output --partial '"crl":false'
	ca_crl "$PKI/partner" "$DIR/good.crl"
	run ctl ca crl set "$id" "$DIR/good.crl"
	assert_success
}

@test "--depth 0 to 98, self-issued CAs not counted; a chain of 100 certificates is read and refused by depth" {
	make_ca "$PKI/root" "test root"
	ca_under "$PKI/root" "$PKI/inter" "test intermediate"
	make_client_cert "$PKI/inter" "$DIR/dan" dan
	make_client_cert "$PKI/root" "$DIR/top" top
	run ctl verify "$DIR/top.crt" --trust "$PKI/root.crt" --depth 0
	assert_success
	run ctl verify "$DIR/dan.crt" --trust "$PKI/root.crt" --chain "$PKI/inter.crt" --depth 0 --json
	assert_failure 5
	assert_output --partial '"reason":"chain_too_long"'
	run ctl verify "$DIR/dan.crt" --trust "$PKI/root.crt" --chain "$PKI/inter.crt" --depth 1
	assert_success
	run ctl verify "$DIR/dan.crt" --trust "$PKI/root.crt" --depth -1
	assert_failure 2
	# 98 intermediates: leaf + 98 + root = 100 certificates in the path.
	prev="$PKI/root"
	: >"$DIR/long-chain.pem"
	for i in $(seq 1 98); do
		ca_under "$prev" "$PKI/i$i" "intermediate $i"
		cat "$PKI/i$i.crt" "$DIR/long-chain.pem" >"$DIR/long.tmp" && mv "$DIR/long.tmp" "$DIR/long-chain.pem"
		prev="$PKI/i$i"
	done
	make_client_cert "$prev" "$DIR/deep" deep
	run ctl verify "$DIR/deep.crt" --trust "$PKI/root.crt" --chain "$DIR/long-chain.pem" --json
	assert_failure 5
	assert_output --partial '"reason":"chain_too_long"'
	run ctl verify "$DIR/deep.crt" --trust "$PKI/root.crt" --chain "$DIR/long-chain.pem" --depth 98
	assert_success
	# 101 in one file is the parser's refusal, said as such
	cat "$DIR/deep.crt" "$DIR/long-chain.pem" "$PKI/root.crt" "$DIR/top.crt" >"$DIR/too-many.pem"
	run ctl verify "$DIR/too-many.pem" --trust "$PKI/root.crt"
	assert_failure 5
	assert_output --partial "100"
}

@test "--purpose server checks a server chain; nonconforming certificates are named by their check; notAfter is inclusive" {
	make_server_cert api.example.test
	run ctl verify "$PKI/api.example.test.crt" --trust "$PKI/server-ca.crt" --purpose server
	assert_success
	run ctl verify "$PKI/api.example.test.crt" --trust "$PKI/server-ca.crt" --json
	assert_failure 5
	assert_output --partial '"reason":"invalid_purpose"'
	run ctl verify "$DIR/alice.crt" --host api.example.test --purpose server
	assert_failure 2
	run ctl verify "$DIR/alice.crt" --host api.example.test --purpose both
	assert_failure 2
	make_ca "$PKI/root" "test root"
	sign_cert "$PKI/root" "$DIR/noakid" noakid "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=none"
	run ctl verify "$DIR/noakid.crt" --trust "$PKI/root.crt" --json
	assert_failure 5
	assert_output --partial '"reason":"nonconforming"'
	assert_output --partial '"check":"authority_key_id_missing"'
	sign_cert "$PKI/root" "$DIR/ksign" ksign "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyCertSign
extendedKeyUsage=clientAuth"
	run ctl verify "$DIR/ksign.crt" --trust "$PKI/root.crt" --json
	assert_failure 5
	assert_output --partial '"check":"key_cert_sign_in_non_ca"'
	# valid through the very second of notAfter, expired the next one
	end=$(date -d "$(openssl x509 -in "$DIR/alice.crt" -noout -enddate | cut -d= -f2)" +%s)
	run ctl verify "$DIR/alice.crt" --host api.example.test --at "$end"
	assert_success
	run ctl verify "$DIR/alice.crt" --host api.example.test --at "$((end + 1))" --json
	assert_failure 5
	assert_output --partial '"reason":"cert_expired"'
}

@test "the daemon refuses a nonconforming client certificate with the same reason and check as verify" {
	make_ca "$PKI/partner" "partner CA"
	sign_cert "$PKI/partner" "$DIR/noakid" noakid "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=none"
	make_client_cert "$PKI/partner" "$DIR/carol" carol
	upload_ca "$PKI/partner" partner api.example.test
	run ctl verify "$DIR/noakid.crt" --host api.example.test --json
	assert_failure 5
	assert_output --partial '"check":"authority_key_id_missing"'
	start_daemon
	log_mark
	run edge_curl_as noakid api.example.test /
	assert_failure
	wait_log "handshake peer=.* sni=api.example.test verdict=[a-z]+ reason=nonconforming check=authority_key_id_missing"
	run edge_curl_as carol api.example.test /
	assert_success
}

@test "the verified-chain cache: a returning client is a hit; revocation, an identity rule and an unbinding still refuse it" {
	start_daemon
	for _ in 1 2 3; do
		run edge_curl_as alice api.example.test /
		assert_output "hello from upstream"
	done
	run ctl status --json
	hits=$(jq -r .counters.verify_cache_hits <<<"$output")
	# each of the 2 workers has its own cache: of 3 handshakes, one worker had two
	[ "$hits" -ge 1 ] || fail "three handshakes with one chain, $hits cache hits: $output"
	# an identity rule that denies alice: a new snapshot, the cached verdict is not used
	run --separate-stderr ctl identity deny api.example.test --cn alice --json
	assert_success
	rule=$(grep -o '"id": *[0-9]*' <<<"$output" | head -1 | grep -o '[0-9]*$')
	log_mark
	run edge_curl_as alice api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=[a-z]+ reason=denied"
	run ctl identity delete "$rule"
	assert_success
	run edge_curl_as alice api.example.test /
	assert_output "hello from upstream"
	run edge_curl_as alice api.example.test /
	assert_output "hello from upstream"
	# revoked: refused at once, cached or not
	run ctl cert revoke "$(openssl x509 -in "$DIR/alice.crt" -noout -serial | cut -d= -f2)" --yes
	assert_success
	log_mark
	run edge_curl_as alice api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=[a-z]+ reason=cert_revoked"
	# an uploaded CA's client, cached, then its CA bound elsewhere
	make_ca "$PKI/partner" "partner CA"
	make_client_cert "$PKI/partner" "$DIR/carol" carol
	upload_ca "$PKI/partner" partner api.example.test
	id=$CA_ID
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	run ctl ca hosts set "$id" b.example.test
	assert_success
	log_mark
	run edge_curl_as carol api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=[a-z]+ reason=unknown_ca"
}
