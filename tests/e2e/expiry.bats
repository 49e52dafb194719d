#!/usr/bin/env bats
# Expiry (issue 8): the daemon warns (log + metrics) about server certificates, CAs and CRLs
# within [tls] expiry_warn_days, at start, at every reload and hourly; `cert list --expiring`.

load helpers
bats_require_minimum_version 1.5.0

API=api.example.test
SHORT=short.example.test

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni "$API" # its server certificate: 400 days
}

teardown() {
	stop_all
}

# Days left round down. A validity of whole days from now would say N in the second it was made
# and N-1 in any later one; every validity here ends half a day past a whole number of days, so
# days_left is exact for the next 12 hours. openssl x509 and req take only -days, so they are
# run 12 hours in the past (faketime) with one day more.

# short_sni: an SNI object whose server certificate expires in 5.5 days (days_left 5).
short_sni() {
	requires faketime
	make_server_ca
	if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$SHORT.key" -out "$PKI/$SHORT.csr" -subj "/CN=$SHORT" >/dev/null 2>&1 ||
		! faketime '-12 hours' openssl x509 -req -in "$PKI/$SHORT.csr" -CA "$PKI/server-ca.crt" \
			-CAkey "$PKI/server-ca.key" -CAcreateserial -days 6 -out "$PKI/$SHORT.crt" \
			-extfile <(printf '%s\n' "subjectAltName=DNS:$SHORT" "basicConstraints=critical,CA:FALSE" \
				"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth") >/dev/null 2>&1; then
		fail "openssl: cannot sign $SHORT"
	fi
	chmod 600 "$PKI/$SHORT.key"
	add_sni "$SHORT"
}

# partner_ca: an uploaded CA valid for 10.5 days (days_left 10) with a CRL whose nextUpdate is
# in 3.5 days (days_left 3).
partner_ca() {
	requires faketime
	faketime '-12 hours' openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 11 -keyout "$PKI/partner.key" -out "$PKI/partner.crt" -subj "/CN=partner CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 ||
		fail "openssl: cannot make the partner CA"
	run --separate-stderr ctl ca upload "$PKI/partner.crt" --name partner --json
	assert_success
	PARTNER_ID=$(jq -r .id <<<"$output")
	mkdir -p "$DIR/crl"
	: >"$DIR/crl/index.txt"
	echo 01 >"$DIR/crl/number"
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\n' \
		"$DIR/crl/index.txt" "$DIR/crl/number" >"$DIR/crl/ca.cnf"
	openssl ca -config "$DIR/crl/ca.cnf" -gencrl -crldays 3 -crlhours 12 -keyfile "$PKI/partner.key" \
		-cert "$PKI/partner.crt" -out "$DIR/crl/empty.pem" 2>/dev/null ||
		fail "openssl: cannot make the partner CRL"
	run ctl ca crl set "$PARTNER_ID" "$DIR/crl/empty.pem"
	assert_success
}

epoch_of() { # epoch_of CERT
	date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s
}

@test "server certificates, CAs and CRLs within expiry_warn_days: a warning each, and gauges" {
	short_sni
	partner_ca
	printf '[tls]\nexpiry_warn_days = 20\n' >"$DIR/edged.conf"
	start_daemon -c "$DIR/edged.conf" --metrics-listen 127.0.0.1:0
	grep -E "warn expiry kind=server_cert name=$SHORT state=expiring not_after=[0-9T:-]+Z days_left=5 warn_days=20 check=start" "$LOG"
	grep -E "warn expiry kind=ca name=partner state=expiring .*days_left=10 " "$LOG"
	grep -E "warn expiry kind=crl name=partner state=expiring .*days_left=3 " "$LOG"
	# 400 days is outside a 20-day window; the built-in CA lives for years
	! grep -E "expiry kind=server_cert name=$API" "$LOG" || false
	! grep -E "expiry kind=builtin_ca" "$LOG" || false

	ctl metrics | prom_parse >"$DIR/m" || fail "exposition rejected"
	na=$(date -u -d "@$(epoch_of "$PKI/$SHORT.crt")" +%Y-%m-%dT%H:%M:%SZ)
	assert_equal "$(prom_value "$DIR/m" "mtls_edge_cert_expiring{kind=\"server_cert\",name=\"$SHORT\",not_after=\"$na\"}")" 1
	assert_equal "$(prom_value "$DIR/m" mtls_edge_certs_expiring)" 3
	assert_equal "$(prom_value "$DIR/m" mtls_edge_expiry_warn_days)" 20
	assert_equal "$(prom_value "$DIR/m" "mtls_edge_cert_expiry_timestamp_seconds{kind=\"server_cert\",name=\"$API\"}")" "$(epoch_of "$PKI/$API.crt")"
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_cert_expiry_timestamp_seconds{kind="ca",name="partner"}')" "$(epoch_of "$PKI/partner.crt")"
	ctl ca get builtin --pem >"$DIR/builtin.pem"
	assert_equal "$(prom_value "$DIR/m" 'mtls_edge_cert_expiry_timestamp_seconds{kind="builtin_ca",name="builtin"}')" "$(epoch_of "$DIR/builtin.pem")"
	grep -q '^mtls_edge_cert_expiry_timestamp_seconds{kind="crl",name="partner"} ' "$DIR/m"

	run --separate-stderr ctl --json status
	assert_success
	[ "$(jq -r '.expiring | length' <<<"$output")" = 3 ]
	[ "$(jq -r ".expiring[] | select(.name == \"$SHORT\") | .days_left" <<<"$output")" = 5 ]
	run ctl status
	assert_line --regexp "^expiring.server_cert/$SHORT: +[0-9T:-]+Z \(5 days left\)$"
}

@test "the default window is 30 days; each reload checks again" {
	start_daemon
	log_mark
	short_sni # its reload brings the 5-day certificate
	wait_log "warn expiry kind=server_cert name=$SHORT state=expiring .*warn_days=30 check=\"(admin socket|store changed)\""
	run --separate-stderr ctl --json status
	[ "$(jq -r "[.expiring[] | select(.name == \"$SHORT\")] | length" <<<"$output")" = 1 ]
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 -c <(printf '[tls]\nexpiry_warn_days = soon\n') --check
	assert_failure 2
	assert_output --partial "expiry_warn_days: 'soon' is not a number from 0 to 3650"
}

@test "the check runs hourly (a clock running 3600 times faster)" {
	ldd "$BIN/mtls-edged" 2>/dev/null | grep -q libasan && skip "faketime cannot preload into an ASan build"
	requires faketime
	short_sni
	: >"$LOG"
	# start_daemon's command under faketime: an hour of CLOCK_MONOTONIC in a second. BIN is
	# set for start_daemon only (bash restores it when the function returns).
	faketime_daemon "$DIR/bin" "+0 x3600"
	BIN=$DIR/bin start_daemon
	retry 100 0.1 grep -q "expiry kind=server_cert name=$SHORT .*check=hourly" "$LOG"
}

@test "cert list --expiring: within the window, already-expired ones shown as such" {
	client_cert soon --days 10
	client_cert later --days 100
	if ! ldd "$BIN/mtls-edgectl" 2>/dev/null | grep -q libasan; then
		run faketime '-400 days' "$BIN/mtls-edgectl" --state "$STATE" cert create --cn old --days 30 --out "$DIR/old"
		assert_success
		old=1
	fi
	run ctl cert list --expiring 30d
	assert_success
	assert_line --index 0 --regexp '^SERIAL +CN +KEY +NOT_AFTER +STATUS$'
	assert_line --regexp ' soon +ec-p256 +[0-9T:-]+Z +active$'
	refute_line --partial ' later '
	if [ -n "${old:-}" ]; then
		assert_line --regexp ' old +ec-p256 +[0-9T:-]+Z +expired$'
		[ "${#lines[@]}" -eq 3 ]
	fi
	run --separate-stderr ctl --json cert list --expiring 240h
	[ "$(jq -r '[.[] | select(.cn == "soon")] | length' <<<"$output")" = 1 ]
	run --separate-stderr ctl --json cert list --expiring 15w
	[ "$(jq -r '[.[] | select(.cn == "later")] | length' <<<"$output")" = 1 ]
	run --separate-stderr ctl --json cert list --expiring 9d
	[ "$(jq -r '[.[] | select(.cn == "soon")] | length' <<<"$output")" = 0 ]
	# a revoked certificate is not listed, even when it expires soon
	run ctl cert revoke "$(openssl x509 -in "$DIR/soon.crt" -noout -serial | cut -d= -f2)" --yes
	run ctl cert list --expiring 30d
	refute_line --partial ' soon '

	run --separate-stderr ctl cert list --expiring 30x
	assert_failure 2
	# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
	[[ $stderr == *"--expiring: '30x' is not a duration like 30d, 12h or 2w (unknown unit 'x'; want d, h or w)"* ]]
	run --separate-stderr ctl cert list --expiring d
	assert_failure 2
	[[ $stderr == *"it must start with a number"* ]]
	run --separate-stderr ctl cert list --expiring ''
	assert_failure 2
	[[ $stderr == *"--expiring: empty"* ]]
	run --separate-stderr ctl cert list --expiring 99999999999999999999d
	assert_failure 2
	[[ $stderr == *"too long (at most 100000d)"* ]]
}
