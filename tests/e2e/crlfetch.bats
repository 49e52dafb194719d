#!/usr/bin/env bats
# Revocation that maintains itself: the daemon follows the http:// CRL distribution point its
# clients' certificates name, against a real HTTP server on loopback (tests/tools/crl_server.py)
# serving CRLs that change, go stale, are oversized, have a bad signature, or hang.

load helpers

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	make_ca "$PKI/partner" "partner CA"
	upload_ca "$PKI/partner" partner api.example.test
	WWW=$DIR/www
	mkdir -p "$WWW" "$DIR/crl"
	/usr/bin/python3 "$REPO/tests/tools/crl_server.py" "$WWW" "$DIR/crl.port" \
		>>"$DIR/crl-server.log" 2>&1 3>&- &
	track_pid $!
	retry 100 0.05 test -s "$DIR/crl.port" || fail "the CRL server did not start"
	CRL_URL="http://127.0.0.1:$(<"$DIR/crl.port")/partner.crl"
	for who in carol dave; do
		sign_cert "$PKI/partner" "$DIR/$who" "$who" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
crlDistributionPoints=URI:$CRL_URL"
	done
	echo 01 >"$DIR/crl/number"
	printf '[crl]\nfetch_timeout_ms = 1000\nfetch_max_bytes = 4096\n' >"$DIR/edged.conf"
	export CA_ID WWW CRL_URL
}

teardown() {
	stop_all
}

# served_crl CA_PREFIX OUT [openssl ca args] [-- CERT_FILE...]: ca_crl, in DER (as distribution
# points serve CRLs).
served_crl() {
	local out=$2
	ca_crl "$1" "$out.pem" "${@:3}"
	openssl crl -in "$out.pem" -outform DER -out "$out"
}

# partner_crl OUT [openssl ca args] [-- NAME...]: the partner CA's next CRL (its CRLNumber goes
# up each time), revoking $DIR/NAME.crt.
partner_crl() {
	local out=$1 files=() args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	for who in "$@"; do
		files+=("$DIR/$who.crt")
	done
	served_crl "$PKI/partner" "$out" "${args[@]}" -- "${files[@]}"
}

# status_has TEXT: the daemon's status JSON contains TEXT.
status_has() {
	ctl status --json | grep -qF -- "$1"
}

@test "a distribution point is learned from a client certificate, fetched, and a new CRL closes a live connection" {
	partner_crl "$WWW/partner.crl"
	start_daemon -c "$DIR/edged.conf"
	log_mark
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	wait_log "crl: CA partner names the CRL $CRL_URL"
	wait_log "crl: $CRL_URL \(CA partner\): a new CRL, reloading to use it"
	retry 100 0.05 status_has '"crl_number":"1"'
	run ctl status --json
	assert_output --partial '"have_crl":true'
	assert_output --partial '"last_error":null'
	# Carol has a slow download open when the revoking CRL is published.
	partner_crl "$WWW/partner.crl" -- carol
	log_mark
	edge_curl_as carol api.example.test /bytes/500000000 --limit-rate 200k -o /dev/null \
		>"$DIR/live.out" 2>&1 3>&- &
	track_pid $!
	wait_log "handshake peer=.* verdict=pass reason=ok subject=\"CN=carol\""
	run ctl crl refresh
	assert_success
	wait_log "a new CRL, reloading to use it"
	wait_log "revoked peer=.* closing the live connection"
	retry 200 0.05 no_open_daemon_sockets
	run edge_curl_as carol api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=fail reason=cert_revoked"
	run edge_curl_as dave api.example.test /
	assert_output "hello from upstream"
	run ctl metrics
	assert_output --regexp "mtls_edge_crl_fetches_total\{ca=\"partner\",url=\"[^\"]*\",result=\"ok\"\} [2-9]"
	assert_output --partial "mtls_edge_crl_next_update_timestamp_seconds{ca=\"partner\""
}

@test "a bad fetch keeps the last good CRL: bad signature, oversized, older, not a CRL, 404, a hang; status and metrics say it" {
	partner_crl "$WWW/partner.crl" -- carol
	cp "$WWW/partner.crl" "$DIR/good.crl"
	start_daemon -c "$DIR/edged.conf"
	log_mark
	run edge_curl_as dave api.example.test /
	assert_output "hello from upstream"
	wait_log "a new CRL, reloading to use it"
	retry 100 0.05 status_has '"crl_number":"1"'
	# A newer CRL (number 2) that is then replaced by each bad answer in turn.
	partner_crl "$DIR/newer.crl" -- carol
	cp "$DIR/newer.crl" "$WWW/partner.crl"
	run ctl crl refresh
	retry 100 0.05 status_has '"crl_number":"2"'
	# the same name, another key
	make_ca "$DIR/rogue" "partner CA"
	: >"$DIR/crl/rogue-index.txt"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=7\n' \
		"$DIR/crl/rogue-index.txt" "$DIR/crl/number" >"$DIR/crl/rogue.cnf"
	# (PEM: the fetcher reads either form)
	openssl ca -config "$DIR/crl/rogue.cnf" -gencrl -keyfile "$DIR/rogue.key" -cert "$DIR/rogue.crt" \
		-out "$DIR/rogue.crl" 2>/dev/null || fail "openssl ca: no rogue CRL"
	head -c 6000 /dev/urandom >"$DIR/big.crl"
	printf 'not a CRL\n' >"$DIR/junk.crl"
	for bad in rogue:"signature does not verify" big:"larger than fetch_max_bytes" \
		good:"older than the CRL held" junk:"is not a CRL" gone:"HTTP status 404" \
		hang:"timed out"; do
		name=${bad%%:*}
		words=${bad#*:}
		rm -f "$WWW/partner.crl" "$WWW/partner.crl.hang"
		case $name in
		gone) ;;
		hang)
			cp "$DIR/newer.crl" "$WWW/partner.crl"
			: >"$WWW/partner.crl.hang"
			;;
		*) cp "$DIR/$name.crl" "$WWW/partner.crl" ;;
		esac
		run ctl crl refresh
		assert_success
		retry 100 0.1 status_has "$words" || fail "$name: status never said '$words': $(ctl status --json)"
		# the last good CRL (number 2, revoking carol) is still the one in use
		status_has '"crl_number":"2"' || fail "$name: the last good CRL was dropped"
		run edge_curl_as carol api.example.test /
		assert_failure
		run edge_curl_as dave api.example.test /
		assert_output "hello from upstream"
	done
	rm -f "$WWW/partner.crl.hang"
	run ctl metrics
	assert_output --regexp 'mtls_edge_crl_fetch_failing\{ca="partner",url="[^"]*"\} 1'
	assert_output --regexp 'mtls_edge_crl_fetches_total\{ca="partner",url="[^"]*",result="failed"\} ([6-9]|[1-9][0-9])'
	wait_log "the last good CRL stays in use until its nextUpdate"
}

@test "a fetched CRL that goes stale refuses every chain of its CA: never fail open" {
	# nextUpdate 8 seconds after it is made; then the server has no newer one
	partner_crl "$WWW/partner.crl" -crlsec 8
	start_daemon -c "$DIR/edged.conf"
	log_mark
	run edge_curl_as dave api.example.test /
	wait_log "a new CRL, reloading to use it"
	rm -f "$WWW/partner.crl"
	# wait for its nextUpdate, then dave (revoked by nobody) is refused
	refused() { ! edge_curl_as dave api.example.test / >/dev/null 2>&1; }
	retry 300 0.1 refused || fail "dave still passes past the CRL's nextUpdate"
	wait_log "sni=api.example.test verdict=fail reason=crl_expired"
	run ctl status --json
	assert_output --partial '"stale":true'
	assert_output --partial "HTTP status 404"
}

@test "[crl] fetch = off follows nothing" {
	partner_crl "$WWW/partner.crl" -- carol
	printf '[crl]\nfetch = off\n' >"$DIR/off.conf"
	start_daemon -c "$DIR/off.conf"
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	run ctl status --json
	assert_output --partial '"crl_fetch":"off"'
	run ctl crl refresh
	assert_failure 6
	[ ! -s "$DIR/crl-server.log" ] || fail "the CRL server was asked: $(cat "$DIR/crl-server.log")"
}

@test "a chain through an intermediate: the leaf's point (the intermediate's CRL) and the intermediate's (the CA's) are both followed" {
	base=${CRL_URL%/partner.crl}
	sign_cert "$PKI/partner" "$PKI/issuing" "partner issuing CA" "basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
crlDistributionPoints=URI:$base/partner.crl"
	for who in erin frank; do
		sign_cert "$PKI/issuing" "$DIR/$who" "$who" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
crlDistributionPoints=URI:$base/issuing.crl"
		cat "$PKI/issuing.crt" >>"$DIR/$who.crt" # the client sends its intermediate
	done
	served_crl "$PKI/partner" "$WWW/partner.crl"
	served_crl "$PKI/issuing" "$WWW/issuing.crl"
	start_daemon -c "$DIR/edged.conf"
	log_mark
	run edge_curl_as erin api.example.test /
	assert_output "hello from upstream"
	wait_log "crl: CA partner .*names the CRL $base/issuing.crl"
	wait_log "crl: CA partner names the CRL $base/partner.crl"
	retry 100 0.05 bash -c "[ \"\$(\"$BIN/mtls-edgectl\" --state \"$STATE\" status --json | grep -o '\"have_crl\":true' | wc -l)\" -eq 2 ]" ||
		fail "two CRLs were not fetched: $(ctl status --json)"
	# the intermediate revokes erin
	served_crl "$PKI/issuing" "$WWW/issuing.crl" -- "$DIR/erin.crt"
	log_mark
	run ctl crl refresh
	wait_log "issuing.crl .*a new CRL, reloading to use it"
	run edge_curl_as erin api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=fail reason=cert_revoked .*subject=\"CN=erin\""
	run edge_curl_as frank api.example.test /
	assert_output "hello from upstream"
	# the CA revokes the intermediate: frank goes too
	served_crl "$PKI/partner" "$WWW/partner.crl" -- "$PKI/issuing.crt"
	log_mark
	run ctl crl refresh
	wait_log "partner.crl \(CA partner\): a new CRL, reloading to use it"
	run edge_curl_as frank api.example.test /
	assert_failure
	wait_log "sni=api.example.test verdict=fail reason=cert_revoked .*subject=\"CN=frank\""
}

@test "a fetch that hangs does not hold up the daemon's stop" {
	partner_crl "$WWW/partner.crl"
	: >"$WWW/partner.crl.hang" # the server answers after 30 s
	printf '[crl]\nfetch_timeout_ms = 60000\n' >"$DIR/slow.conf"
	start_daemon -c "$DIR/slow.conf"
	log_mark
	run edge_curl_as carol api.example.test /
	assert_output "hello from upstream"
	wait_log "crl: CA partner names the CRL"
	retry 200 0.05 grep -q "hanging on GET /partner.crl" "$DIR/crl-server.log"
	kill -TERM "$EDGE_PID"
	# under the server's 30 s and the fetch's 60 s: the fetch was cut, not waited for
	wait_pid "$EDGE_PID" 20 || fail "mtls-edged still running 20 s after SIGTERM"
}
