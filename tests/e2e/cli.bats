#!/usr/bin/env bats
# mtls-edgectl end to end: every command, every limit, every refusal with the
# store compared (sqlite3 .dump) before and after, key file modes, --json,
# concurrent writers, SIGKILL during writes. Each test has its own state dir.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# MTLS_EDGE_BIN: run against binaries elsewhere (default: the build tree).
BIN=${MTLS_EDGE_BIN:-$BATS_TEST_DIRNAME/../../build}

setup() {
	W=$BATS_TEST_TMPDIR
	STATE=$W/state
	DAEMON_PID=
	cd "$W" || return 1
}

teardown() {
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
}

ctl() {
	"$BIN/mtls-edgectl" --state "$STATE" "$@"
}

dump() {
	sqlite3 "$STATE/state.db" .dump
}

sql() {
	sqlite3 "$STATE/state.db" "$@"
}

# retry N DELAY CMD...: until CMD succeeds.
retry() {
	local n=$1 d=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep "$d"
	done
	return 1
}

# json_field JSON PATH: a value from a JSON document (sqlite's JSON1, no jq needed);
# fails unless the document is valid JSON.
json_field() {
	local doc=${1//\'/\'\'}
	[ "$(sqlite3 :memory: "SELECT json_valid('$doc')")" = 1 ] || fail "not JSON: $1"
	sqlite3 :memory: "SELECT json_extract('$doc', '$2')"
}

# json_len JSON: the length of a JSON array.
json_len() {
	local doc=${1//\'/\'\'}
	sqlite3 :memory: "SELECT json_array_length('$doc')"
}

# refuse CODE REGEX ARGS...: mtls-edgectl ARGS exits CODE with exactly one
# "mtls-edgectl: error: ..." line matching REGEX, and the store is unchanged.
refuse() {
	local code=$1 re=$2 before after
	shift 2
	before=$(dump)
	run --separate-stderr ctl "$@"
	[ "$status" -eq "$code" ] ||
		fail "'$*' exited $status, want $code; stderr: $stderr; stdout: $output"
	[ "$(grep -c '^mtls-edgectl: error: ' <<<"$stderr")" -eq 1 ] ||
		fail "want one error line, got: $stderr"
	[[ $stderr =~ mtls-edgectl:\ error:\ .*$re ]] || fail "error does not match '$re': $stderr"
	after=$(dump)
	[ "$before" = "$after" ] || fail "the store changed: $(diff <(echo "$before") <(echo "$after"))"
}

init_site() {
	run ctl init --site example.com
	assert_success
}

# mkca NAME [openssl req args]: a self-signed CA NAME.crt/NAME.key (CA:TRUE, keyCertSign, cRLSign).
mkca() {
	local name=$1
	shift
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 \
		-keyout "$name.key" -out "$name.crt" -subj "/CN=$name" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign "$@" 2>/dev/null ||
		fail "openssl: cannot make CA $name"
	chmod 600 "$name.key"
}

# mkleaf CA NAME EXTENSIONS: NAME.crt/NAME.key signed by CA.
mkleaf() {
	{
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2.key" \
			-out "$2.csr" -subj "/CN=$2" 2>/dev/null &&
			openssl x509 -req -in "$2.csr" -CA "$1.crt" -CAkey "$1.key" -CAcreateserial \
				-days 400 -out "$2.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
	} || fail "openssl: cannot make $2"
	chmod 600 "$2.key"
}

# server HOST: HOST.crt/HOST.key, a server certificate from a test CA "srvca".
server() {
	[ -s srvca.crt ] || mkca srvca
	mkleaf srvca "$1" "subjectAltName=DNS:$1
extendedKeyUsage=serverAuth"
}

# mkcrl CA OUT [openssl ca args]: a CRL signed by CA.
mkcrl() {
	local d
	d=$(mktemp -d "$W/crl.XXXX")
	touch "$d/index.txt"
	echo 01 >"$d/crlnumber"
	printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\ndefault_crl_days = 30\n' \
		"$d/index.txt" "$d/crlnumber" >"$d/ca.cnf"
	openssl ca -config "$d/ca.cnf" -gencrl -keyfile "$1.key" -cert "$1.crt" -out "$2" \
		"${@:3}" 2>/dev/null || fail "openssl: cannot make a CRL for $1"
}

# faketime_ok: faketime (LD_PRELOAD) cannot load into an ASan-linked binary.
faketime_ok() {
	! ldd "$BIN/mtls-edgectl" 2>/dev/null | grep -q libasan
}

start_daemon() {
	"$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off >"$W/daemon.log" 2>&1 &
	DAEMON_PID=$!
	retry 200 0.05 ctl status >/dev/null || fail "mtls-edged did not answer: $(cat "$W/daemon.log")"
}

# ---- help, usage ---------------------------------------------------------------------------

@test "--help on every command and noun prints usage to stdout and exits 0" {
	local cmd words cmds=("" init status reload)
	for cmd in site "site add" "site list" "site delete" cert "cert create" "cert list" "cert get" \
		"cert revoke" ca "ca upload" "ca list" "ca get" "ca delete" "ca hosts" "ca hosts set" \
		"ca hosts get" "ca crl" "ca crl set" "ca crl delete" sni "sni add" "sni update" "sni get" \
		"sni list" "sni delete" rule "rule add" "rule list" "rule delete"; do cmds+=("$cmd"); done
	for cmd in "${cmds[@]}"; do
		read -ra words <<<"$cmd" # "ca hosts set": three arguments; "": none
		run --separate-stderr "$BIN/mtls-edgectl" "${words[@]}" --help
		[ "$status" -eq 0 ] || fail "'$cmd --help' exited $status"
		[[ $output == usage:* ]] || fail "'$cmd --help' printed: $output"
		[ -z "$stderr" ] || fail "'$cmd --help' wrote to stderr: $stderr"
		run "$BIN/mtls-edgectl" -h "${words[@]}"
		[ "$status" -eq 0 ] || fail "'-h $cmd' exited $status"
	done
	run "$BIN/mtls-edgectl" cert create --help --bogus
	assert_success
	assert_output --partial "--cn NAME"
	run "$BIN/mtls-edgectl" --version
	assert_success
	assert_output --regexp '^mtls-edgectl [0-9]'
}

@test "usage errors exit 2 with one error line" {
	init_site
	refuse 2 "unknown command 'frobnicate'" frobnicate
	refuse 2 "unknown command 'ca frob'" ca frob
	refuse 2 "'ca' needs a subcommand" ca
	refuse 2 "unknown option '--bogus'" site list --bogus
	refuse 2 "missing arguments" site add
	refuse 2 "too many arguments" site add a.example.com b.example.com
	refuse 2 "--name needs a value" ca upload x.pem --name
	refuse 2 "--json takes no value|unknown option" site list --json=1
	refuse 2 "given more than once" ca upload x.pem --name a --name b
	refuse 2 "--state needs a value" site list --state
	run "$BIN/mtls-edgectl"
	assert_failure 2
}

@test "commands need an initialised store (exit 3), MTLS_EDGE_STATE is honoured" {
	run --separate-stderr ctl site list
	assert_failure 3
	[[ $stderr == *"run 'mtls-edgectl init"* ]]
	MTLS_EDGE_STATE=$STATE run "$BIN/mtls-edgectl" init --site example.com
	assert_success
	MTLS_EDGE_STATE=$STATE run "$BIN/mtls-edgectl" site list
	assert_success
	assert_output --partial example.com
}

# ---- init, sites ---------------------------------------------------------------------------

@test "init creates a 0700 state dir, the store and the built-in CA with a 0600 key" {
	run --separate-stderr ctl init --site Example.COM
	assert_success
	[[ $stderr == *"note: mtls-edged is not running; the change applies when it starts"* ]]
	[ "$(stat -c %a "$STATE")" = 700 ]
	[ "$(stat -c %a "$STATE/ca")" = 700 ]
	[ "$(stat -c %a "$STATE/ca/builtin.key")" = 600 ]
	[ "$(stat -c %a "$STATE/state.db")" = 600 ]
	[ "$(sql 'SELECT domain FROM site')" = example.com ]
	[ "$(sql 'SELECT key_type FROM builtin_ca')" = ec-p256 ]
	ctl ca get builtin --pem >builtin.pem
	run openssl x509 -in builtin.pem -noout -text
	assert_output --partial "CA:TRUE, pathlen:0"
	assert_output --partial "Certificate Sign, CRL Sign"
	assert_output --partial "Subject Key Identifier"
	assert_output --regexp "Subject: O ?= ?example.com, CN ?= ?mtls-edge built-in CA"
	# 10 years
	run openssl x509 -in builtin.pem -noout -checkend $((3649 * 86400))
	assert_success
	# the store never holds the key
	! dump | grep -q "PRIVATE KEY" || false
	openssl pkey -in "$STATE/ca/builtin.key" -pubout | cmp - <(openssl x509 -in builtin.pem -noout -pubkey)
}

@test "init refuses a second time, a bad domain, a bad key type; rsa-2048 works" {
	refuse 5 "invalid hostname" init --site 'bad_domain.com' && [ ! -e "$STATE" ] ||
		[ ! -e "$STATE/state.db" ]
	run ctl init --site example.com --ca-key-type nope
	assert_failure 2
	[ ! -e "$STATE/state.db" ]
	ctl init --site example.com --ca-key-type rsa-2048
	ctl ca get builtin --pem | openssl x509 -noout -text | grep -q "Public-Key: (2048 bit)"
	local key
	key=$(sha256sum "$STATE/ca/builtin.key")
	refuse 5 "already initialised" init --site example.com
	refuse 5 "already initialised" init --site other.com --ca-key-type ec-p384
	[ "$key" = "$(sha256sum "$STATE/ca/builtin.key")" ]
}

@test "site add, list, delete; refusals keep the store" {
	init_site
	ctl site add Example.ORG.
	refuse 5 "already exists" site add example.org
	refuse 5 "invalid hostname" site add '*.example.net'
	refuse 5 "invalid hostname" site add 'exa mple.net'
	refuse 5 "IP address" site add 10.0.0.1
	run ctl site list
	assert_success
	assert_line --index 0 --regexp '^DOMAIN +CREATED$'
	assert_line --index 2 --regexp '^example.org +[0-9T:-]+Z$'
	run --separate-stderr ctl --json site list
	[ "$(json_field "$output" '$[1].domain')" = example.org ]
	[ -n "$(json_field "$output" '$[1].created_epoch')" ]
	refuse 3 "no site nope.com" site delete nope.com
	ctl site delete example.org
	[ "$(sql 'SELECT count(*) FROM site')" = 1 ]
}

@test "site delete refuses while hostnames depend on it; --force removes them in one go" {
	init_site
	ctl site add example.org
	ctl site add a.example.com
	server api.example.org
	ctl sni add api.example.org --cert api.example.org.crt --key api.example.org.key --upstream 127.0.0.1:9
	mkca partner
	id=$(ctl ca upload partner.crt --name partner)
	ctl ca hosts set "$id" x.example.org x.a.example.com
	ctl rule add --host y.example.org --action drop
	ctl rule add --host y.example.org z.example.com --action block
	refuse 5 "still covers 4 hostname" site delete example.org
	# a.example.com still covers x.a.example.com: deleting example.com orphans nothing
	run ctl site delete example.com
	assert_failure 5 # z.example.com in rule 2
	run --separate-stderr ctl --json site delete example.org --force
	assert_success
	[ "$(json_field "$output" '$.deleted')" = example.org ]
	[ "$(sql 'SELECT count(*) FROM sni')" = 0 ]
	[ "$(sql 'SELECT hostname FROM ca_host')" = x.a.example.com ]
	[ "$(sql 'SELECT id FROM rule')" = 2 ] # rule 1 lost its only hostname
	[ "$(sql 'SELECT hostname FROM rule_host')" = z.example.com ]
}

# ---- client certificates -------------------------------------------------------------------

@test "cert create writes a 0644 certificate and a 0600 key, records no key" {
	init_site
	run --separate-stderr ctl cert create --cn alice --out "$W/alice"
	assert_success
	assert_line --regexp '^serial: +[0-9A-F]{32}$'
	assert_line --regexp '^cn: +alice$'
	assert_line --regexp '^not_after: +[0-9-]+T[0-9:]+Z$'
	assert_line --regexp "^certificate: +$W/alice.crt$"
	assert_line --regexp "^key: +$W/alice.key$"
	[ "$(stat -c %a alice.crt)" = 644 ]
	[ "$(stat -c %a alice.key)" = 600 ]
	ctl ca get builtin --pem >builtin.pem
	run openssl verify -purpose sslclient -CAfile builtin.pem alice.crt
	assert_success
	run openssl x509 -in alice.crt -noout -text
	assert_output --partial "CA:FALSE"
	assert_output --partial "TLS Web Client Authentication"
	assert_output --regexp "Key Usage: critical"
	assert_output --partial "Digital Signature"
	refute_output --partial "Key Encipherment"
	assert_output --partial "Authority Key Identifier"
	serial=$(openssl x509 -in alice.crt -noout -serial | cut -d= -f2)
	[ "$(sql "SELECT cn || ' ' || status || ' ' || key_type FROM client_cert WHERE serial = '$serial'")" = "alice active ec-p256" ]
	! dump | grep -q "PRIVATE KEY" || false
	# default validity 365 days, notBefore 5 minutes back
	nb=$(date -d "$(openssl x509 -in alice.crt -noout -startdate | cut -d= -f2)" +%s)
	na=$(date -d "$(openssl x509 -in alice.crt -noout -enddate | cut -d= -f2)" +%s)
	[ $((na - nb)) -eq $((365 * 86400 + 300)) ]
	# never overwrites, and a refusal leaves the store alone
	refuse 5 "alice.crt already exists" cert create --cn alice2 --out "$W/alice"
	# ... nor removes the files that were there
	[ -f alice.key ] && openssl pkey -in alice.key -noout || fail "alice.key is gone or broken"
}

@test "cert create: key types, SANs, --days bounds, --json" {
	init_site
	for kt in ec-p384 rsa-2048 rsa-3072; do
		run ctl cert create --cn "k-$kt" --key-type "$kt" --out "$W/$kt"
		assert_success
		[ "$(sql "SELECT key_type FROM client_cert WHERE cn = 'k-$kt'")" = "$kt" ]
	done
	openssl x509 -in rsa-2048.crt -noout -text | grep -q "Key Encipherment"
	run --separate-stderr ctl --json cert create --cn bob --days 10 --dns Bob.Example.com --uri spiffe://example.com/bob \
		--email bob@example.com --out "$W/bob"
	assert_success
	[ "$(json_field "$output" '$.cn')" = bob ]
	[[ $(json_field "$output" '$.serial') =~ ^[0-9A-F]{32}$ ]]
	[ "$(json_field "$output" '$.key')" = "$W/bob.key" ]
	[ -n "$(json_field "$output" '$.not_after_epoch')" ]
	run openssl x509 -in bob.crt -noout -ext subjectAltName
	assert_output --partial "DNS:bob.example.com, URI:spiffe://example.com/bob, email:bob@example.com"
	run openssl x509 -in bob.crt -noout -checkend $((11 * 86400))
	assert_failure
	refuse 5 "out of range" cert create --cn x --days 0 --out "$W/x"
	refuse 5 "out of range" cert create --cn x --days 3651 --out "$W/x"
	refuse 2 "not a number" cert create --cn x --days ten --out "$W/x"
	refuse 2 "key-type" cert create --cn x --key-type dsa --out "$W/x"
	refuse 2 "exactly one of --out PREFIX and --stdout" cert create --cn x
	refuse 2 "exactly one of --out PREFIX and --stdout" cert create --cn x --out "$W/x" --stdout
	refuse 2 "needs --cn" cert create --out "$W/x"
	refuse 5 "invalid hostname" cert create --cn x --dns 'a b' --out "$W/x"
	refuse 5 "not a URI" cert create --cn x --uri 'no-scheme' --out "$W/x"
	refuse 5 "not an e-mail address" cert create --cn x --email 'nobody' --out "$W/x"
	refuse 5 "1 to 64 characters" cert create --cn "$(printf 'x%.0s' {1..65})" --out "$W/x"
	[ ! -e "$W/x.crt" ] && [ ! -e "$W/x.key" ]
}

@test "cert create --stdout shows the key once; --csr issues for a request; --p12" {
	init_site
	run --separate-stderr ctl cert create --cn once --stdout
	assert_success
	assert_output --partial "BEGIN CERTIFICATE"
	assert_output --partial "BEGIN PRIVATE KEY"
	[ "$(sql "SELECT count(*) FROM client_cert WHERE cn = 'once'")" = 1 ]
	run --separate-stderr ctl --json cert create --cn once2 --stdout
	[[ $(json_field "$output" '$.key_pem') == *"PRIVATE KEY"* ]]
	openssl req -new -newkey rsa:2048 -nodes -keyout req.key -out req.csr -subj "/O=evil/CN=carol" 2>/dev/null
	run ctl cert create --csr req.csr --out "$W/carol"
	assert_success
	[ ! -e carol.key ]
	[ "$(openssl x509 -in carol.crt -noout -subject)" = "subject=CN = carol" ]
	cmp <(openssl x509 -in carol.crt -noout -pubkey) <(openssl pkey -in req.key -pubout)
	[ "$(sql "SELECT key_type FROM client_cert WHERE cn = 'carol'")" = rsa-2048 ]
	ctl cert create --csr req.csr --cn dave --out "$W/dave"
	[ "$(openssl x509 -in dave.crt -noout -subject)" = "subject=CN = dave" ]
	# a tampered request: its signature no longer verifies
	sed '4s/[A-Za-z]/x/' req.csr >bad.csr
	openssl req -in bad.csr -noout 2>/dev/null && sed '5s/[A-Za-z]/y/' req.csr >bad.csr
	refuse 5 "bad.csr: " cert create --csr bad.csr --out "$W/bad"
	refuse 5 "holds a CERTIFICATE, not a certificate request" cert create --csr carol.crt --out "$W/bad"
	refuse 2 "does not apply with --csr" cert create --csr req.csr --key-type rsa-2048 --out "$W/bad"
	[ ! -e bad.crt ]

	echo 's3cret pass' >pw
	ctl cert create --cn erin --out "$W/erin" --p12 "$W/erin.p12" --p12-pass-file pw
	[ "$(stat -c %a erin.p12)" = 600 ]
	run openssl pkcs12 -in erin.p12 -nodes -passin 'pass:s3cret pass'
	assert_success
	assert_output --partial "BEGIN PRIVATE KEY"
	assert_output --partial "subject=CN = erin"
	refuse 2 "p12-pass-file when stdin is not a terminal" cert create --cn f --out "$W/f" --p12 "$W/f.p12" </dev/null
	[ ! -e f.crt ] && [ ! -e f.p12 ]
}

@test "faketime: a certificate created 400 days ago with --days 30 is expired" {
	faketime_ok || skip "faketime cannot preload into an ASan build"
	init_site
	run faketime '-400 days' "$BIN/mtls-edgectl" --state "$STATE" cert create --cn old --days 30 --out "$W/old"
	assert_success
	ctl ca get builtin --pem >builtin.pem
	run openssl verify -CAfile builtin.pem -no_check_time old.crt
	assert_success
	run openssl verify -CAfile builtin.pem old.crt
	assert_failure
	assert_output --partial "expired"
	run ctl cert list
	assert_output --regexp 'old +ec-p256 +[0-9T:-]+Z +expired'
}

@test "cert list filters, cert get, cert revoke asks unless --yes" {
	init_site
	ctl cert create --cn a --out "$W/a" >/dev/null
	ctl cert create --cn b --days 10 --out "$W/b" >/dev/null
	ctl cert create --cn c --days 100 --out "$W/c" >/dev/null
	sa=$(openssl x509 -in a.crt -noout -serial | cut -d= -f2)
	sb=$(openssl x509 -in b.crt -noout -serial | cut -d= -f2)
	run ctl cert list
	assert_line --index 0 --regexp '^SERIAL +CN +KEY +NOT_AFTER +STATUS$'
	[ "${#lines[@]}" -eq 4 ]
	run ctl cert list --expiring 30d
	[ "${#lines[@]}" -eq 2 ]
	assert_line --index 1 --partial "$sb"
	run --separate-stderr ctl --json cert list --expiring 101d
	[ "$(json_field "$output" '$[1].cn')" = c ]
	[ "$(json_len "$output")" = 2 ]
	refuse 2 "not a duration" cert list --expiring soon
	refuse 2 "not one of active|revoked" cert list --status gone

	run ctl cert get "$sa"
	assert_line --regexp '^cn: +a$'
	assert_line --regexp '^status: +active$'
	run ctl cert get "$(tr 'A-F' 'a-f' <<<"$sa")" --pem
	cmp <(echo "$output") <(openssl x509 -in a.crt)
	refuse 3 "no certificate with serial 00DEAD" cert get 00DEAD
	refuse 2 "not a serial number" cert get xyz

	refuse 2 "stdin is not a terminal; pass --yes" cert revoke "$sa" </dev/null
	run --separate-stderr ctl cert revoke "$sa" --yes
	assert_success
	[ "$(sql "SELECT status FROM client_cert WHERE serial = '$sa'")" = revoked ]
	[ -n "$(sql "SELECT revoked_at FROM client_cert WHERE serial = '$sa'")" ]
	refuse 5 "already revoked" cert revoke "$sa" --yes
	refuse 3 "no certificate" cert revoke 0ABC --yes
	run ctl cert list --status revoked
	[ "${#lines[@]}" -eq 2 ]
	assert_line --index 1 --regexp "^$sa +a .* revoked$"
	run ctl cert list --status active
	[ "${#lines[@]}" -eq 3 ]
}

# ---- uploaded CAs --------------------------------------------------------------------------

@test "ca upload: the id, --json, list, get, get builtin" {
	init_site
	mkca one
	run --separate-stderr ctl ca upload one.crt --name one
	assert_success
	assert_output 1
	mkca two
	run --separate-stderr ctl --json ca upload two.crt --name "second CA"
	assert_success
	[ "$(json_field "$output" '$.id')" = 2 ]
	[ "$(json_field "$output" '$.fingerprint')" = "$(openssl x509 -in two.crt -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)" ]
	run ctl ca list
	assert_line --index 0 --regexp '^ID +NAME +SUBJECT +NOT_AFTER +HOSTS +CRL_NEXT_UPDATE +TRUST_DOMAIN$'
	assert_line --index 2 --regexp '^2 +second CA +CN=two '
	run --separate-stderr ctl --json ca list
	[ "$(json_field "$output" '$[0].name')" = one ]
	run ctl ca get 1
	assert_line --regexp '^subject: +CN=one$'
	run ctl ca get 1 --pem
	cmp <(echo "$output") <(openssl x509 -in one.crt)
	refuse 3 "no uploaded CA with ID 9" ca get 9
	refuse 2 "not a CA ID" ca get x
	run --separate-stderr ctl --json ca get builtin
	[ "$(json_field "$output" '$.key_type')" = ec-p256 ]
}

@test "ca upload refuses malformed PEM and non-CAs with the reason, store unchanged" {
	init_site
	mkca good
	: >empty.pem
	refuse 5 "empty.pem: the file is empty" ca upload empty.pem --name x
	openssl x509 -in good.crt -outform DER -out good.der
	refuse 5 "good.der: DER \(binary ASN.1\) data, not PEM" ca upload good.der --name x
	head -c 300 /dev/urandom >random.bin
	refuse 5 "random.bin: .*(binary|DER)" ca upload random.bin --name x
	sed '3s/^./*/' good.crt >bad64.pem
	refuse 5 "bad64.pem: bad base64" ca upload bad64.pem --name x
	grep -v -- '-----END' good.crt >noend.pem
	refuse 5 "noend.pem: missing '-----END CERTIFICATE-----' line" ca upload noend.pem --name x
	refuse 5 "good.key: holds a private key" ca upload good.key --name x
	echo "not a certificate" >text.pem
	refuse 5 "text.pem: no PEM block found" ca upload text.pem --name x
	cat good.crt good.crt >two.pem
	refuse 5 "two.pem: holds 2 PEM blocks" ca upload two.pem --name x
	refuse 5 "nothere.pem: cannot read" ca upload nothere.pem --name x

	mkleaf good leaf "basicConstraints=critical,CA:FALSE
extendedKeyUsage=clientAuth"
	refuse 5 "leaf.crt: not a CA certificate: basicConstraints CA:TRUE is missing" ca upload leaf.crt --name x
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout nks.key \
		-out nks.crt -subj /CN=nks -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,digitalSignature 2>/dev/null
	refuse 5 "nks.crt: not a CA certificate: keyUsage lacks keyCertSign" ca upload nks.crt --name x
	faketime '-60 days' openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-keyout old.key -out old.crt -subj /CN=old -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	refuse 5 "old.crt: the certificate has expired" ca upload old.crt --name x
	faketime '+10 days' openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-keyout new.key -out new.crt -subj /CN=new -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	refuse 5 "new.crt: the certificate is not yet valid" ca upload new.crt --name x
	ctl ca get builtin --pem >builtin.pem
	refuse 5 "this is the built-in CA" ca upload builtin.pem --name x
	refuse 2 "needs --name" ca upload good.crt
	refuse 5 "--name must have 1 to 64" ca upload good.crt --name ""

	ctl ca upload good.crt --name good
	refuse 5 "already uploaded as CA 1" ca upload good.crt --name other
	mkca good2
	refuse 5 "the name 'good' is taken by CA 1" ca upload good2.crt --name good
	# text around the block is fine (openssl x509 -text output)
	openssl x509 -in good2.crt -text >good2.txt
	ctl ca upload good2.txt --name good2
}

@test "the 6th uploaded CA is refused with the limit, the other 5 intact" {
	init_site
	for i in 1 2 3 4 5 6; do mkca "ca$i"; done
	local k # not i: bats' run changes i
	for k in 1 2 3 4 5; do
		run --separate-stderr ctl ca upload "ca$k.crt" --name "n$k"
		assert_success
		assert_output "$k"
	done
	refuse 4 "limit of 5 uploaded CAs reached" ca upload ca6.crt --name n6
	[ "$(sql 'SELECT group_concat(name) FROM ca ORDER BY id')" = "n1,n2,n3,n4,n5" ]
	ctl ca delete 3
	run --separate-stderr ctl ca upload ca6.crt --name n6
	assert_success
	assert_output 6
}

@test "ca hosts set: 1..50 names under a site, all or nothing; ca hosts get" {
	init_site
	ctl site add example.org
	mkca p
	ctl ca upload p.crt --name p
	ctl ca hosts set 1 A.Example.com '*.example.com' a.example.com api.example.org
	run ctl ca hosts get 1
	assert_output "$(printf 'HOSTNAME\n*.example.com\na.example.com\napi.example.org')"
	run --separate-stderr ctl --json ca hosts get 1
	[ "$(json_field "$output" '$.hosts[2]')" = api.example.org ]
	before=$(sql 'SELECT group_concat(hostname) FROM ca_host')
	refuse 5 "'evil.com' is not under any site" ca hosts set 1 b.example.com evil.com
	refuse 5 "'badexample.com' is not under any site" ca hosts set 1 badexample.com
	refuse 5 "invalid hostname 'a\*\.example\.com'" ca hosts set 1 'a*.example.com'
	refuse 5 "invalid hostname" ca hosts set 1 -- b.example.com '-x.example.com'
	refuse 4 "51 hostnames given; at most 50 per call" ca hosts set 1 $(seq -f 'h%g.example.com' 1 51)
	refuse 3 "no uploaded CA with ID 7" ca hosts set 7 a.example.com
	refuse 2 "missing arguments" ca hosts set 1
	[ "$(sql 'SELECT group_concat(hostname) FROM ca_host')" = "$before" ]
	run ctl ca hosts set 1 $(seq -f 'h%g.example.com' 1 50)
	assert_success
	[ "$(sql 'SELECT count(*) FROM ca_host')" = 50 ]
	ctl ca hosts set 1 only.example.com
	[ "$(sql 'SELECT group_concat(hostname) FROM ca_host')" = only.example.com ]
}

@test "ca delete refuses a bound CA unless --force, which unbinds in the same transaction" {
	init_site
	mkca p
	ctl ca upload p.crt --name p
	ctl ca hosts set 1 a.example.com b.example.com
	refuse 5 "bound to 2 hostname" ca delete 1
	refuse 3 "no uploaded CA with ID 5" ca delete 5
	gen=$(sql "SELECT value FROM meta WHERE key = 'generation'")
	run --separate-stderr ctl --json ca delete 1 --force
	assert_success
	[ "$(json_field "$output" '$.unbound[1]')" = b.example.com ]
	[ "$(sql 'SELECT count(*) FROM ca') $(sql 'SELECT count(*) FROM ca_host')" = "0 0" ]
	[ "$(sql "SELECT value FROM meta WHERE key = 'generation'")" = $((gen + 1)) ]
}

@test "ca crl set checks issuer, signature, cRLSign and dates; ca crl delete" {
	init_site
	mkca p
	mkca q
	ctl ca upload p.crt --name p
	mkcrl p p.crl
	mkcrl q q.crl
	run --separate-stderr ctl ca crl set 1 p.crl
	assert_success
	[ -n "$(sql 'SELECT crl_next_update FROM ca WHERE id = 1')" ]
	refuse 5 "q.crl: the CRL was issued by 'CN=q', not by this CA" ca crl set 1 q.crl
	# same name, another key: the signature check catches it
	mkdir other && (cd other && mkca p) && mkcrl other/p forged.crl
	refuse 5 "forged.crl: the CRL's signature does not verify" ca crl set 1 forged.crl
	refuse 5 "p.crt: holds a CERTIFICATE, not a X.509 CRL" ca crl set 1 p.crt
	refuse 3 "no uploaded CA with ID 4" ca crl set 4 p.crl
	if faketime_ok; then
		before=$(dump)
		run --separate-stderr faketime '+40 days' "$BIN/mtls-edgectl" --state "$STATE" ca crl set 1 p.crl
		assert_failure 5
		[[ $stderr == *"the CRL has expired (nextUpdate"* ]]
		[ "$before" = "$(dump)" ]
	fi
	mkcrl p soon.crl -crlhours 2
	run --separate-stderr ctl ca crl set 1 soon.crl
	assert_success
	[[ $stderr == *"warning: the CRL's nextUpdate is"* ]]
	# a CA without cRLSign cannot sign CRLs
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout nc.key \
		-out nc.crt -subj /CN=nc -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	ctl ca upload nc.crt --name nc
	mkcrl nc nc.crl
	refuse 5 "lacks cRLSign" ca crl set 2 nc.crl
	ctl ca crl delete 1
	[ -z "$(sql 'SELECT crl_pem FROM ca WHERE id = 1')" ]
	refuse 3 "CA 1 has no CRL" ca crl delete 1
}

# ---- SNI objects ---------------------------------------------------------------------------

@test "sni add stores real paths (never key bytes); get, list, update, delete" {
	init_site
	server api.example.com
	run ctl sni add API.example.com --cert ./api.example.com.crt --key api.example.com.key \
		--upstream 127.0.0.1:8080
	assert_success
	[ "$(sql 'SELECT cert_file || " " || key_file FROM sni')" = "$W/api.example.com.crt $W/api.example.com.key" ]
	[ "$(sql 'SELECT mtls || tls_min || tls_max FROM sni')" = required1.21.3 ]
	! dump | grep -q "PRIVATE KEY" || false
	cat api.example.com.crt srvca.crt >chain.crt
	run --separate-stderr ctl --json sni add '*.example.com' --cert chain.crt --key api.example.com.key \
		--upstream '[::1]:443' --mtls optional --tls-min 1.3
	assert_success
	[ "$(json_field "$output" '$.upstream')" = '[::1]:443' ]
	run ctl sni list
	assert_line --index 0 --regexp '^HOSTNAME +MTLS +TLS_MIN +TLS_MAX +UPSTREAM +UP_TLS +FORWARD +PROTOCOL +CERT +CA_HINTS +ALPN$'
	assert_line --index 1 --regexp '^\*\.example\.com +optional +1\.3 +1\.3 +\[::1\]:443 '
	run ctl sni get api.example.com
	assert_line --regexp '^upstream: +127.0.0.1:8080$'
	ctl sni update api.example.com --mtls off --upstream backend.example:81
	[ "$(sql "SELECT mtls || ' ' || upstream FROM sni WHERE hostname = 'api.example.com'")" = "off backend.example:81" ]
	for cmd in update get delete; do
		refuse 3 "no SNI object for x.example.com" sni $cmd x.example.com
	done
	ctl sni delete '*.example.com'
	[ "$(sql 'SELECT count(*) FROM sni')" = 1 ]
}

@test "sni add refusals: key mode, mismatched key, chain order, site, duplicates, TLS, upstream" {
	init_site
	server api.example.com
	server other.example.com
	for mode in 644 640; do
		chmod $mode api.example.com.key
		refuse 5 "mode 0$mode: it must not be readable by group or others; run: chmod 600 $W/api.example.com.key" \
			sni add api.example.com --cert api.example.com.crt --key api.example.com.key --upstream 127.0.0.1:1
	done
	chmod 600 api.example.com.key
	refuse 5 "does not match the certificate" sni add api.example.com --cert api.example.com.crt \
		--key other.example.com.key --upstream 127.0.0.1:1
	cat srvca.crt api.example.com.crt >reversed.crt
	refuse 5 "order it leaf first" sni add api.example.com --cert reversed.crt --key api.example.com.key --upstream 127.0.0.1:1
	cat api.example.com.crt api.example.com.key >combined.pem
	refuse 5 "holds a private key" sni add api.example.com --cert combined.pem --key api.example.com.key --upstream 127.0.0.1:1
	refuse 5 "cannot read|No such file" sni add api.example.com --cert nope.crt --key api.example.com.key --upstream 127.0.0.1:1
	server api.example.net
	refuse 5 "'api.example.net' is not under any site" sni add api.example.net --cert api.example.net.crt \
		--key api.example.net.key --upstream 127.0.0.1:1
	local ok=(--cert api.example.com.crt --key api.example.com.key)
	refuse 5 "--tls-min 1.3 is above --tls-max 1.2" sni add api.example.com "${ok[@]}" --upstream 127.0.0.1:1 --tls-min 1.3 --tls-max 1.2
	refuse 2 "--mtls: 'sometimes' is not one of required|optional|off" sni add api.example.com "${ok[@]}" --upstream 127.0.0.1:1 --mtls sometimes
	refuse 2 "--tls-max: '1.1' is not one of 1.2|1.3" sni add api.example.com "${ok[@]}" --upstream 127.0.0.1:1 --tls-max 1.1
	for up in 127.0.0.1 127.0.0.1:0 127.0.0.1:65536 ::1:443 '[::1]' 'host name:80' ':80'; do
		refuse 5 "--upstream" sni add api.example.com "${ok[@]}" --upstream "$up"
	done
	refuse 2 "needs --cert FILE --key FILE --upstream" sni add api.example.com --cert api.example.com.crt
	faketime '-60 days' openssl x509 -req -in api.example.com.csr -CA srvca.crt -CAkey srvca.key \
		-days 30 -out expired.crt 2>/dev/null
	refuse 5 "the certificate has expired" sni add api.example.com --cert expired.crt --key api.example.com.key --upstream 127.0.0.1:1
	run ctl sni add api.example.com "${ok[@]}" --upstream 127.0.0.1:1
	assert_success
	refuse 5 "already exists; use 'mtls-edgectl sni update'" sni add api.example.com "${ok[@]}" --upstream 127.0.0.1:2
	refuse 5 "--tls-min 1.3 is above --tls-max 1.2" sni update api.example.com --tls-min 1.3 --tls-max 1.2
	chmod 604 api.example.com.key
	refuse 5 "mode 0604" sni update api.example.com --key api.example.com.key
}

@test "sni --protocol tcp|http: add, update, get, list, --json; default tcp; a bad value exits 2" {
	init_site
	server api.example.com
	server web.example.com
	run --separate-stderr ctl sni add api.example.com --cert api.example.com.crt \
		--key api.example.com.key --upstream 127.0.0.1:8080
	assert_success
	[[ $output != *protocol* ]] || fail "the default is not worth a mention: $output"
	[ "$(sql 'SELECT protocol FROM sni')" = tcp ]
	run --separate-stderr ctl --json sni get api.example.com
	assert_success
	[ "$(json_field "$output" '$.protocol')" = tcp ]
	run --separate-stderr ctl sni update api.example.com --protocol http
	assert_success
	assert_output "updated SNI object api.example.com -> 127.0.0.1:8080 (mTLS required, TLS 1.2-1.3, protocol http)"
	[ "$(sql 'SELECT protocol FROM sni')" = http ]
	run ctl sni get api.example.com
	assert_success
	assert_line --regexp '^protocol: +http$'
	run --separate-stderr ctl sni add web.example.com --cert web.example.com.crt \
		--key web.example.com.key --upstream 127.0.0.1:8081 --protocol=http --forward headers
	assert_success
	assert_output --partial "(mTLS required, TLS 1.2-1.3, protocol http, forward headers)"
	run --separate-stderr ctl --json sni add '*.example.com' --cert api.example.com.crt \
		--key api.example.com.key --upstream 127.0.0.1:8082 --protocol tcp
	assert_success
	[ "$(json_field "$output" '$.protocol')" = tcp ]
	run ctl sni list
	assert_success
	assert_line --index 0 --regexp '^HOSTNAME +MTLS +TLS_MIN +TLS_MAX +UPSTREAM +UP_TLS +FORWARD +PROTOCOL +CERT +CA_HINTS +ALPN$'
	assert_line --index 1 --regexp '^\*\.example\.com +required +1\.2 +1\.3 +127\.0\.0\.1:8082 +off +none +tcp +/'
	assert_line --index 2 --regexp '^api\.example\.com +.* +none +http +/'
	assert_line --index 3 --regexp '^web\.example\.com +.* +headers +http +/'
	run --separate-stderr ctl --json sni list
	assert_success
	[ "$(json_field "$output" '$[1].protocol')" = http ]
	[ "$(json_field "$output" '$[2].forward')" = headers ]
	# other options leave it alone
	ctl sni update api.example.com --mtls optional
	[ "$(sql "SELECT protocol FROM sni WHERE hostname = 'api.example.com'")" = http ]
	refuse 2 "--protocol: 'udp' is not one of tcp\|http" sni update api.example.com --protocol udp
	refuse 2 "--protocol: 'HTTP' is not one of tcp\|http" sni update api.example.com --protocol HTTP
	refuse 2 "--protocol: 'h2' is not one of tcp\|http" sni add x.example.com --cert api.example.com.crt \
		--key api.example.com.key --upstream 127.0.0.1:1 --protocol h2
	refuse 2 "--protocol needs a value" sni update api.example.com --protocol
	ctl sni update api.example.com --protocol tcp
	[ "$(sql "SELECT protocol FROM sni WHERE hostname = 'api.example.com'")" = tcp ]
}

@test "sni --protocol http refuses --forward proxy-v2, given or already set, and writes nothing" {
	init_site
	server api.example.com
	local ok=(--cert api.example.com.crt --key api.example.com.key --upstream 127.0.0.1:8080)
	refuse 2 "--protocol http cannot carry --forward proxy-v2: a PROXY v2 header names one client, and an http upstream connection is reused for many clients; use --forward headers" \
		sni add api.example.com "${ok[@]}" --protocol http --forward proxy-v2
	[ "$(sql 'SELECT count(*) FROM sni')" = 0 ]
	run --separate-stderr ctl sni add api.example.com "${ok[@]}" --forward proxy-v2
	assert_success
	# the stored forward mode conflicts with a new protocol
	refuse 2 "--protocol http cannot carry --forward proxy-v2 \(already set\): .*use --forward headers" \
		sni update api.example.com --protocol http
	refuse 2 "--protocol http cannot carry --forward proxy-v2: " \
		sni update api.example.com --protocol http --forward proxy-v2
	run --separate-stderr ctl sni update api.example.com --protocol http --forward headers
	assert_success
	[ "$(sql 'SELECT protocol || " " || forward FROM sni')" = "http headers" ]
	# the stored protocol conflicts with a new forward mode
	refuse 2 "--protocol http \(already set\) cannot carry --forward proxy-v2: " \
		sni update api.example.com --forward proxy-v2
	refuse 2 "--protocol http \(already set\) cannot carry --forward proxy-v2: " \
		sni update api.example.com --forward proxy-v2 --mtls off
	run --separate-stderr ctl sni update api.example.com --forward none
	assert_success
	# both at once, the other way round
	run --separate-stderr ctl sni update api.example.com --protocol tcp --forward proxy-v2
	assert_success
	[ "$(sql 'SELECT protocol || " " || forward FROM sni')" = "tcp proxy-v2" ]
}

@test "a schema v1 store: mtls-edged reads it unchanged, the next mtls-edgectl command migrates it" {
	[ -x "$BIN/mtls-edged" ] || skip "build/mtls-edged is not built"
	init_site
	server api.example.com
	ctl sni add api.example.com --cert api.example.com.crt --key api.example.com.key \
		--upstream 127.0.0.1:9 --forward headers
	# back to what a v1 build left: no protocol column (nor v3's, v4's or v5's), schema_version 1
	sql "ALTER TABLE sni DROP COLUMN no_alpn; ALTER TABLE sni DROP COLUMN alpn;
		DROP TABLE sni_cert; DROP TABLE idrule; ALTER TABLE sni DROP COLUMN ca_hints_pem; ALTER TABLE sni DROP COLUMN ca_hints;
		ALTER TABLE ca DROP COLUMN trust_domain; ALTER TABLE builtin_ca DROP COLUMN trust_domain;
		ALTER TABLE sni DROP COLUMN protocol; UPDATE meta SET value = '1' WHERE key = 'schema_version'"
	before=$(dump)
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off --check
	assert_success
	assert_output --partial "configuration and store OK"
	[ "$(dump)" = "$before" ] || fail "mtls-edged --check changed the store"
	start_daemon
	[ "$(sql "SELECT value FROM meta WHERE key = 'schema_version'")" = 1 ]
	gen=$(sql "SELECT value FROM meta WHERE key = 'generation'")
	run ctl sni list
	assert_success
	assert_line --index 1 --regexp '^api\.example\.com +.* +headers +tcp +/'
	[ "$(sql "SELECT value FROM meta WHERE key = 'schema_version'")" = 5 ]
	[ "$(sql "SELECT value FROM meta WHERE key = 'generation'")" = "$gen" ]
	[ "$(sql 'SELECT hostname || " " || upstream || " " || forward || " " || protocol FROM sni')" = \
		"api.example.com 127.0.0.1:9 headers tcp" ]
	# the running daemon, started on v1, takes the migrated store's next state
	run --separate-stderr ctl sni update api.example.com --protocol http
	assert_success
	[ -z "$stderr" ] || fail "the reload did not go through: $stderr"
	run --separate-stderr ctl --json status
	assert_success
	[ "$(json_field "$output" '$.generation')" = "$(sql "SELECT value FROM meta WHERE key = 'generation'")" ]
	[ "$(json_field "$output" '$.last_reload.ok')" = 1 ]
	# a store from a newer build: both refuse it
	sql "UPDATE meta SET value = '6' WHERE key = 'schema_version'"
	refuse 1 "schema version 6 is newer than this build understands" sni list
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off --check
	assert_failure
	assert_output --partial "schema version 6, newer than this build understands"
}

# ---- rules ---------------------------------------------------------------------------------

@test "rule add needs a hostname condition; list; delete" {
	init_site
	refuse 5 "a rule needs a hostname condition .* would apply to every hostname" rule add --action block
	refuse 2 "needs --action" rule add --host a.example.com
	refuse 2 "--action: 'kill' is not one of block|alert|drop" rule add --host a.example.com --action kill
	refuse 5 "'a.example.org' is not under any site" rule add --host a.example.org --action drop
	run --separate-stderr ctl rule add --host A.example.com --host '*.api.example.com' --action block
	assert_success
	assert_output 1
	run --separate-stderr ctl --json rule add --host b.example.com c.example.com b.example.com --action alert
	assert_success
	[ "$(json_field "$output" '$.id')" = 2 ]
	[ "$(json_field "$output" '$.hosts[1]')" = c.example.com ]
	run ctl rule list
	assert_line --index 0 --regexp '^ID +ACTION +HOSTS +CREATED$'
	assert_line --index 1 --regexp '^1 +block +\*\.api\.example\.com, a\.example\.com '
	refuse 3 "no rule with ID 9" rule delete 9
	ctl rule delete 1
	[ "$(sql 'SELECT count(*) FROM rule_host WHERE rule_id = 1')" = 0 ]
}

# ---- the daemon ----------------------------------------------------------------------------

@test "status and reload exit 6 when mtls-edged is not running; writes say so and succeed" {
	init_site
	run --separate-stderr ctl status
	assert_failure 6
	[[ $stderr == "mtls-edgectl: error: mtls-edged is not running"* ]]
	run ctl reload
	assert_failure 6
	run --separate-stderr ctl site add example.org
	assert_success
	[[ $stderr == *"note: mtls-edged is not running; the change applies when it starts"* ]]
}

@test "with mtls-edged running: writes reload it; a refused state exits 7 and status shows it" {
	[ -x "$BIN/mtls-edged" ] || skip "build/mtls-edged is not built"
	init_site
	server api.example.com
	ctl sni add api.example.com --cert api.example.com.crt --key api.example.com.key --upstream 127.0.0.1:9
	start_daemon
	run --separate-stderr ctl site add example.org
	assert_success
	[ -z "$stderr" ]
	run --separate-stderr ctl --json status
	assert_success
	[ "$(json_field "$output" '$.generation')" = "$(sql "SELECT value FROM meta WHERE key = 'generation'")" ]
	[ "$(json_field "$output" '$.last_reload.ok')" = 1 ]
	run ctl status
	assert_line --regexp '^pid: +[0-9]+$'
	assert_line --regexp '^last_reload.ok: +yes$'
	run ctl reload
	assert_success
	assert_output --regexp '^reloaded: generation [0-9]+$'
	# break the server certificate: the next snapshot cannot be built
	echo garbage >api.example.com.crt
	run --separate-stderr ctl site add example.net
	assert_failure 7
	[[ $stderr == *"warning: the store changed but mtls-edged refused the new state"* ]]
	[ "$(sql "SELECT count(*) FROM site WHERE domain = 'example.net'")" = 1 ]
	run ctl status
	assert_line --regexp '^last_reload.ok: +no$'
	run ctl reload
	assert_failure 7
}

# ---- concurrency and crashes ---------------------------------------------------------------

@test "two concurrent writers are serialised: every write lands, one generation each" {
	init_site
	gen0=$(sql "SELECT value FROM meta WHERE key = 'generation'")
	(for i in $(seq 1 15); do ctl site add "a$i.example" 2>/dev/null || echo FAIL; done) >w1.out &
	p1=$!
	(for i in $(seq 1 15); do ctl site add "b$i.example" 2>/dev/null || echo FAIL; done) >w2.out &
	p2=$!
	(for i in $(seq 1 5); do ctl cert create --cn "c$i" --out "$W/c$i" 2>/dev/null || echo FAIL; done) >w3.out &
	p3=$!
	wait $p1 $p2 $p3
	! grep -q FAIL w1.out w2.out w3.out || false
	[ "$(sql 'SELECT count(*) FROM site')" = 31 ]
	[ "$(sql 'SELECT count(*) FROM client_cert')" = 5 ]
	[ "$(sql "SELECT value FROM meta WHERE key = 'generation'")" = $((gen0 + 35)) ]
	# the same name from two writers at once: exactly one wins
	(ctl site add same.example >/dev/null 2>&1 && echo rc=0 || echo "rc=$?") >s1.out &
	p1=$!
	(ctl site add same.example >/dev/null 2>&1 && echo rc=0 || echo "rc=$?") >s2.out &
	p2=$!
	wait $p1 $p2 || true
	[ "$(cat s1.out s2.out | sort | tr '\n' ' ')" = "rc=0 rc=5 " ]
}

@test "SIGKILL during writes leaves the old or the new state, never a torn store" {
	init_site
	mkca p
	ctl ca upload p.crt --name p
	# the binary itself in the background (a function would run in a subshell that
	# SIGKILL would hit instead)
	for i in $(seq 1 25); do
		"$BIN/mtls-edgectl" --state "$STATE" ca hosts set 1 $(seq -f "h%g-$i.example.com" 1 50) \
			>/dev/null 2>&1 &
		pid=$!
		"$BIN/mtls-edgectl" --state "$STATE" cert create --cn "k$i" --key-type rsa-2048 \
			--out "$W/k$i" >/dev/null 2>&1 &
		pid2=$!
		sleep "0.0$((RANDOM % 9))"
		kill -9 "$pid" "$pid2" 2>/dev/null || true
		wait "$pid" "$pid2" 2>/dev/null || true
	done
	[ "$(sql 'PRAGMA integrity_check')" = ok ]
	[ "$(sql 'PRAGMA foreign_key_check' | wc -l)" = 0 ]
	# bindings are all from one call: 0 or 50 of the same suffix, never a mix
	n=$(sql 'SELECT count(*) FROM ca_host')
	[ "$n" = 0 ] || [ "$n" = 50 ]
	[ "$(sql "SELECT count(DISTINCT substr(hostname, instr(hostname, '-'))) FROM ca_host")" -le 1 ]
	# every recorded certificate is whole
	sql 'SELECT cert_pem FROM client_cert' | grep -c 'END CERTIFICATE' >count || true
	[ "$(cat count)" = "$(sql "SELECT count(*) FROM client_cert")" ] ||
		fail "$(cat count) whole PEMs for $(sql "SELECT count(*) FROM client_cert") rows"
	ctl cert list >/dev/null
	ctl site add after.example
}

# ---- identity rules, trust domains, CA hints (schema 3) ------------------------------------

# bigca NAME N: a self-signed CA whose subject has N OU attributes of 64 characters (about 75
# bytes of DER each): CA names that a CertificateRequest cannot carry, for N above 220.
bigca() {
	local subj
	subj="/CN=$1$(printf '/OU=%064d' $(seq 1 "$2"))"
	mkca "$1" -subj "$subj"
}

@test "identity --help says what allow and deny entries mean together" {
	local cmd words
	for cmd in identity "identity allow" "identity deny" "identity list" "identity delete" \
		"ca trust-domain"; do
		read -ra words <<<"$cmd"
		run --separate-stderr "$BIN/mtls-edgectl" "${words[@]}" --help
		[ "$status" -eq 0 ] || fail "'$cmd --help' exited $status"
		[[ $output == usage:* ]] || fail "'$cmd --help' printed: $output"
	done
	run "$BIN/mtls-edgectl" identity allow --help
	assert_line --partial "deny wins"
	assert_line --partial "with any allow entry, a certificate must match one"
	assert_line --partial "no entries: every verified certificate passes"
	assert_line --regexp '^  --uri-prefix URI\.\.\. '
	run "$BIN/mtls-edgectl" identity --help
	assert_line --partial "deny wins"
	run "$BIN/mtls-edgectl" --help
	refute_output --partial "with any allow entry"
}

@test "identity allow, deny, list, delete: one entry per value, one transaction, --json" {
	init_site
	mkca partner
	ctl ca upload partner.crt --name partner
	gen=$(sql "SELECT value FROM meta WHERE key = 'generation'")
	run --separate-stderr ctl identity allow API.example.com --cn bob --ca partner --cn alice \
		--dns '*.Svc.example.com'
	assert_success
	assert_line --index 0 --regexp '^ID +HOSTNAME +EFFECT +FIELD +VALUE$'
	assert_line --index 1 --regexp '^1 +api\.example\.com +allow +cn +bob$'
	assert_line --index 2 --regexp '^2 +api\.example\.com +allow +cn +alice$'
	assert_line --index 3 --regexp '^3 +api\.example\.com +allow +dns +\*\.svc\.example\.com$'
	assert_line --index 4 --regexp '^4 +api\.example\.com +allow +ca +partner$'
	[[ $stderr == *"note: mtls-edged is not running"* ]]
	[ "$(sql "SELECT value FROM meta WHERE key = 'generation'")" = $((gen + 1)) ]
	run --separate-stderr ctl --json identity deny '*.example.com' --email Bob@Example.COM \
		--serial 0x0a:bc --email Bob@example.com
	assert_success
	[ "$(json_len "$output")" = 2 ] # the second --email is the first one (canonical), folded
	[ "$(json_field "$output" '$[0].id')" = 5 ]
	[ "$(json_field "$output" '$[0].effect')" = deny ]
	[ "$(json_field "$output" '$[0].field')" = email ]
	[ "$(json_field "$output" '$[0].value')" = Bob@example.com ]
	[ "$(json_field "$output" '$[1].field')" = serial ]
	[ "$(json_field "$output" '$[1].value')" = 0ABC ]
	[ "$(json_field "$output" '$[1].hostname')" = '*.example.com' ]
	[ -n "$(json_field "$output" '$[1].created_epoch')" ]
	# the same value under the other effect is another entry (deny wins)
	ctl identity deny api.example.com --cn bob >/dev/null
	run ctl identity list
	assert_success
	[ "${#lines[@]}" -eq 8 ]
	assert_line --index 1 --regexp '^5 +\*\.example\.com +deny +email +Bob@example\.com$'
	assert_line --index 3 --regexp '^1 +api\.example\.com +allow +cn +bob$'
	assert_line --index 7 --regexp '^7 +api\.example\.com +deny +cn +bob$'
	run --separate-stderr ctl --json identity list API.EXAMPLE.com
	assert_success
	[ "$(json_len "$output")" = 5 ]
	[ "$(json_field "$output" '$[4].effect')" = deny ]
	run --separate-stderr ctl --json identity list nothing.example.com
	assert_success
	assert_output '[]'
	refuse 5 "invalid hostname" identity list 'a b'
	# delete: all or none
	refuse 3 "no identity entry with ID 99; none deleted" identity delete 3 99
	refuse 2 "'x' is not an identity entry ID" identity delete x
	refuse 2 "missing arguments" identity delete
	run --separate-stderr ctl identity delete 3 1 3
	assert_success
	assert_output "deleted identity entries 3, 1"
	run --separate-stderr ctl --json identity delete 2
	assert_success
	[ "$(json_field "$output" '$.deleted[0]')" = 2 ]
	[ "$(sql 'SELECT group_concat(id) FROM (SELECT id FROM idrule ORDER BY id)')" = 4,5,6,7 ]
	refuse 3 "no identity entry with ID 1" identity delete 1
	refuse 2 "needs at least one of --dn --cn --dns" identity allow api.example.com
	refuse 2 "unknown option '--subject'" identity allow api.example.com --subject x
}

@test "identity: every field is stored in canonical form" {
	init_site
	local fp
	fp=$(printf 'AB:%.0s' {1..31})AB
	run --separate-stderr ctl --json identity allow api.example.com \
		--dn 'CN=bob, O=Acme\, Inc.' --cn 'Bob Smith' --dns 'API.Svc.Example.COM.' \
		--uri 'HTTPS://Example.ORG/a/B' --uri-prefix spiffe://example.org/ns/ \
		--email Bob@Example.COM --ip 192.0.2.77/24 --ip 2001:DB8::1 --sha256 "$fp" \
		--spki AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= --ski AB:CD:01 --ca builtin \
		--serial 0x0105
	assert_success
	[ "$(json_len "$output")" = 13 ]
	[ "$(sql "SELECT group_concat(v, ' ') FROM (SELECT field || '=' || value AS v FROM idrule ORDER BY id)")" = \
		"dn=2.5.4.3=bob,2.5.4.10=Acme\\, Inc. cn=Bob Smith dns=api.svc.example.com uri=https://example.org/a/B uri-prefix=spiffe://example.org/ns/ email=Bob@example.com ip=192.0.2.0/24 ip=2001:db8::1/128 sha256=$(printf 'ab%.0s' {1..32}) spki=$(printf '0%.0s' {1..64}) ski=abcd01 ca=builtin serial=0105" ]
	# a value in canonical form is its own canonical form: an identical entry
	refuse 5 "api.example.com already has this entry: 2 \(allow cn=Bob Smith\)" \
		identity allow api.example.com --cn 'Bob Smith'
	refuse 5 "already has this entry: 9 \(allow sha256=abab" identity allow api.example.com \
		--sha256 "$(printf 'ab%.0s' {1..32})"
}

@test "identity: a value that cannot match is refused per field, naming the option; nothing written" {
	init_site
	ctl identity allow api.example.com --cn keep >/dev/null
	refuse 5 "--dn 'bob': '=' expected after the attribute type 'bob'" identity allow api.example.com --dn bob
	refuse 5 "--dn 'CN=a;b': ';' must be escaped" identity allow api.example.com --dn 'CN=a;b'
	before=$(dump)
	run --separate-stderr ctl identity allow api.example.com --cn $'bo\xffb'
	[ "$status" -eq 5 ] || fail "invalid UTF-8 exited $status"
	# the message shows the byte as given: compare bytes, not characters
	LC_ALL=C grep -qx "mtls-edgectl: error: --cn 'bo.b': not valid UTF-8" <<<"$stderr" ||
		fail "unexpected error: $stderr"
	[ "$(dump)" = "$before" ]
	refuse 5 "--cn '': an empty cn value" identity allow api.example.com --cn ''
	refuse 5 "--dns 'a\.\.example\.com': an empty label" identity allow api.example.com --dns a..example.com
	refuse 5 "--uri 'no-scheme': a URI starts with a scheme" identity allow api.example.com --uri no-scheme
	refuse 5 "--uri-prefix 'spiffe://Example.org/': a SPIFFE trust domain is lower-case" \
		identity deny api.example.com --uri-prefix spiffe://Example.org/
	refuse 5 "--email 'bob': an email address has exactly one '@'" identity allow api.example.com --email bob
	refuse 5 "--ip '300\.1\.1\.1': not an IPv4 or IPv6 address" identity allow api.example.com --ip 300.1.1.1
	refuse 5 "--ip '10\.0\.0\.0/33': a prefix length is 0 to 32" identity allow api.example.com --ip 10.0.0.0/33
	refuse 5 "--sha256 'abcd': a SHA-256 digest is 32 bytes" identity allow api.example.com --sha256 abcd
	refuse 5 "--spki '.*': hex needs two digits a byte" identity allow api.example.com --spki "$(printf 'a%.0s' {1..63})"
	refuse 5 "--ski 'xyz': not hex" identity allow api.example.com --ski xyz
	refuse 5 "--ca .*: a CA name has no control characters" identity allow api.example.com --ca $'bad\tname'
	refuse 5 "--ca has space: no uploaded CA has this name" identity allow api.example.com --ca 'has space'
	refuse 5 "--serial 'ghij': a serial is hex" identity allow api.example.com --serial ghij
	# one bad value among good ones refuses the whole command
	refuse 5 "--ip 'x'" identity allow api.example.com --cn a --dns b.example.com --ip x
	[ "$(sql 'SELECT count(*) FROM idrule')" = 1 ]
}

@test "identity: unknown CA, hostname outside every site, duplicates, the 1,000 entries limit" {
	init_site
	mkca partner
	ctl ca upload partner.crt --name partner
	refuse 5 "--ca nope: no uploaded CA has this name \(the built-in CA is 'builtin'" \
		identity allow api.example.com --ca nope
	refuse 5 "'api.example.org' is not under any site \(sites: example.com\)" \
		identity deny api.example.org --cn bob
	refuse 5 "invalid hostname" identity allow 'a b.example.com' --cn bob
	refuse 5 "invalid hostname" identity allow 10.0.0.1 --cn bob
	refuse 5 "invalid hostname" identity allow 'a.*.example.com' --cn bob
	ctl identity allow api.example.com --cn bob --ca partner >/dev/null
	refuse 5 "api.example.com already has this entry: 1 \(allow cn=bob\)" \
		identity allow api.example.com --cn carol --cn bob
	# a CA that identity entries name is not deleted under them, --force or not
	refuse 5 "CA 1 \(partner\) is named by 1 identity entry; delete them first with 'mtls-edgectl identity delete 2'" \
		ca delete 1 --force
	refuse 5 "the name is the built-in CA's" ca upload partner.crt --name Builtin
	# 998 more in one command: 1,000 exactly
	local args=() k
	for k in $(seq 1 998); do args+=(--cn "user$k"); done
	run --separate-stderr ctl identity deny api.example.com "${args[@]}"
	assert_success
	[ "$(sql "SELECT count(*) FROM idrule WHERE hostname = 'api.example.com'")" = 1000 ]
	refuse 4 "limit of 1000 identity entries per hostname: api.example.com has 1000, this would add 1" \
		identity deny api.example.com --cn one-more
	# another hostname has its own 1,000; 1,001 in one command is refused whole
	args+=(--cn a --cn b --cn c)
	refuse 4 "limit of 1000 identity entries per hostname: www.example.com has 0, this would add 1001" \
		identity allow www.example.com "${args[@]}"
	run --separate-stderr ctl identity allow www.example.com --cn a
	assert_success
}

@test "site delete --force removes the identity entries that fall under that site only" {
	init_site
	ctl site add example.org
	ctl identity allow api.example.org --cn bob >/dev/null
	ctl identity allow api.example.com --cn bob >/dev/null
	refuse 5 "still covers 1 hostname binding\(s\), SNI object\(s\), rule hostname\(s\) or identity entries" \
		site delete example.org
	run --separate-stderr ctl --json site delete example.org --force
	assert_success
	[ "$(json_field "$output" '$.removed.identity[0].hostname')" = api.example.org ]
	[ "$(sql 'SELECT hostname FROM idrule')" = api.example.com ]
}

@test "trust domains: ca upload --trust-domain, ca trust-domain ID|builtin TD|--clear, list and get" {
	init_site
	mkca p
	mkca q
	run --separate-stderr ctl --json ca upload p.crt --name p --trust-domain partner.example
	assert_success
	[ "$(json_field "$output" '$.trust_domain')" = partner.example ]
	run --separate-stderr ctl --json ca upload q.crt --name q
	assert_success
	[ "$(json_field "$output" '$.trust_domain')" = "" ]
	[ "$(sql 'SELECT id || trust_domain FROM ca WHERE trust_domain IS NOT NULL')" = 1partner.example ]
	run ctl ca list
	assert_line --index 0 --regexp ' +CRL_NEXT_UPDATE +TRUST_DOMAIN$'
	assert_line --index 1 --regexp '^1 +p +CN=p .* +partner\.example$'
	assert_line --index 2 --regexp '^2 +q +CN=q .* +-$'
	run ctl ca get 1
	assert_line --regexp '^trust_domain: +partner\.example$'
	run --separate-stderr ctl --json ca list
	[ "$(json_field "$output" '$[0].trust_domain')" = partner.example ]
	[ "$(json_field "$output" '$[1].trust_domain')" = "" ]
	run --separate-stderr ctl ca trust-domain 2 other.example
	assert_success
	assert_output "CA 2 (q) vouches for the SPIFFE trust domain other.example"
	run --separate-stderr ctl --json ca trust-domain 1 --clear
	assert_success
	[ "$(json_field "$output" '$.id')" = 1 ]
	[ "$(sql 'SELECT count(*) FROM ca WHERE id = 1 AND trust_domain IS NULL')" = 1 ]
	run ctl ca get 1
	assert_line --regexp '^trust_domain: +-$'
	run --separate-stderr ctl ca trust-domain builtin example.com
	assert_success
	assert_output "the built-in CA vouches for the SPIFFE trust domain example.com"
	run --separate-stderr ctl --json ca get builtin
	[ "$(json_field "$output" '$.trust_domain')" = example.com ]
	run ctl ca get builtin
	assert_line --regexp '^trust_domain: +example\.com$'
	ctl ca trust-domain builtin --clear
	[ "$(sql 'SELECT count(*) FROM builtin_ca WHERE trust_domain IS NULL')" = 1 ]
	# what a trust domain is not
	refuse 5 "trust domain 'spiffe://x.example': write the trust domain alone, without a scheme" \
		ca trust-domain 2 spiffe://x.example
	refuse 5 "trust domain 'x.example:8443': a trust domain has no port" ca trust-domain 2 x.example:8443
	refuse 5 "trust domain 'X.example': a trust domain is lower-case" ca trust-domain 2 X.example
	refuse 5 "trust domain 'x.example/ns': a trust domain has no path" ca trust-domain 2 x.example/ns
	refuse 5 "trust domain 'x y': a trust domain has only a-z, 0-9" ca trust-domain 2 'x y'
	refuse 5 "trust domain '': a trust domain has 1 to 255 characters" ca trust-domain 2 ''
	refuse 5 "a trust domain has 1 to 255 characters" ca trust-domain 2 "$(printf 'a%.0s' {1..256})"
	refuse 5 "--trust-domain 'spiffe://p.example': write the trust domain alone" \
		ca upload q.crt --name q2 --trust-domain spiffe://p.example
	refuse 2 "give a trust domain or --clear" ca trust-domain 2
	refuse 2 "give a trust domain or --clear" ca trust-domain 2 x.example --clear
	refuse 3 "no uploaded CA with ID 7" ca trust-domain 7 x.example
	refuse 2 "not a CA ID" ca trust-domain x x.example
	ctl ca trust-domain 2 "$(printf 'a%.0s' {1..255})"
}

@test "sni --ca-hints trusted|none|FILE: stored, shown in get, list and --json" {
	init_site
	server api.example.com
	local ok=(--cert api.example.com.crt --key api.example.com.key --upstream 127.0.0.1:9)
	run --separate-stderr ctl sni add api.example.com "${ok[@]}"
	assert_success
	[[ $output != *"CA hints"* ]] || fail "the default is not worth a mention: $output"
	[ "$(sql 'SELECT ca_hints || coalesce(ca_hints_pem, "-") FROM sni')" = trusted- ]
	run --separate-stderr ctl --json sni get api.example.com
	[ "$(json_field "$output" '$.ca_hints')" = trusted ]
	[ "$(json_field "$output" '$.ca_hints_names')" = "" ]
	run --separate-stderr ctl sni update api.example.com --ca-hints none
	assert_success
	assert_output --partial ", CA hints none)"
	run ctl sni list
	assert_line --index 0 --regexp '^HOSTNAME +.* +PROTOCOL +CERT +CA_HINTS +ALPN$'
	assert_line --index 1 --regexp '^api\.example\.com +.* +tcp +/.* +none +-$'
	mkca hint1
	mkca hint2 -subj "/O=Hint, Inc./CN=hint two"
	openssl x509 -in hint2.crt -text >bundle.pem # text around the blocks is fine
	cat hint1.crt >>bundle.pem
	run --separate-stderr ctl sni update api.example.com --ca-hints bundle.pem
	assert_success
	assert_output --partial ", CA hints list (2))"
	[ "$(sql 'SELECT ca_hints FROM sni')" = list ]
	[ "$(sql 'SELECT ca_hints_pem FROM sni' | grep -c 'END CERTIFICATE')" = 2 ]
	! sql 'SELECT ca_hints_pem FROM sni' | grep -q 'Subject:' || fail "the text around the blocks was stored"
	run ctl sni list
	assert_line --index 1 --regexp ' +list \(2\) +-$'
	run ctl sni get api.example.com
	assert_line --regexp '^ca_hints: +list \(2\)$'
	run --separate-stderr ctl --json sni list
	[ "$(json_field "$output" '$[0].ca_hints')" = list ]
	[ "$(json_field "$output" '$[0].ca_hints_names[0]')" = 'CN=hint two,O=Hint\, Inc.' ]
	[ "$(json_field "$output" '$[0].ca_hints_names[1]')" = CN=hint1 ]
	# other options leave it alone; trusted drops the list
	ctl sni update api.example.com --mtls optional
	[ "$(sql 'SELECT ca_hints FROM sni')" = list ]
	run --separate-stderr ctl --json sni update api.example.com --ca-hints trusted
	assert_success
	[ "$(json_field "$output" '$.ca_hints')" = trusted ]
	[ "$(sql 'SELECT ca_hints || coalesce(ca_hints_pem, "-") FROM sni')" = trusted- ]
	server web.example.com
	run --separate-stderr ctl --json sni add web.example.com --cert web.example.com.crt \
		--key web.example.com.key --upstream 127.0.0.1:9 --ca-hints=hint1.crt
	assert_success
	[ "$(json_field "$output" '$.ca_hints_names[0]')" = CN=hint1 ]
}

@test "sni --ca-hints FILE refusals: not a CA, bad PEM, over 16 KiB of names; the store unchanged" {
	init_site
	server api.example.com
	ctl sni add api.example.com --cert api.example.com.crt --key api.example.com.key --upstream 127.0.0.1:9
	mkca hint
	cat hint.crt api.example.com.crt >mixed.pem
	refuse 5 "--ca-hints mixed.pem: certificate 2 \(CN=api.example.com\) is not a CA certificate" \
		sni update api.example.com --ca-hints mixed.pem
	: >empty.pem
	refuse 5 "--ca-hints empty.pem: the file is empty" sni update api.example.com --ca-hints empty.pem
	refuse 5 "--ca-hints hint.key: holds a private key" sni update api.example.com --ca-hints hint.key
	grep -v -- '-----END' hint.crt >noend.pem
	refuse 5 "noend.pem: missing '-----END CERTIFICATE-----' line" sni update api.example.com --ca-hints noend.pem
	refuse 5 "nothere.pem: cannot read" sni update api.example.com --ca-hints nothere.pem
	refuse 5 "cannot read" sni update api.example.com --ca-hints ''
	server web.example.com
	refuse 5 "--ca-hints mixed.pem" sni add web.example.com --cert web.example.com.crt \
		--key web.example.com.key --upstream 127.0.0.1:9 --ca-hints mixed.pem
	# 230 attributes of 64 characters: about 17 KB of DER names
	bigca big 230
	refuse 5 "--ca-hints big.crt: the CA names take [0-9]+ bytes, over the 16384 \(16 KiB\) a CertificateRequest carries" \
		sni update api.example.com --ca-hints big.crt
	bigca half 120
	cat half.crt hint.crt >fits.pem
	run --separate-stderr ctl sni update api.example.com --ca-hints fits.pem
	assert_success
	cat half.crt half.crt >twice.pem
	refuse 5 "the CA names take [0-9]+ bytes, over the 16384" sni update api.example.com --ca-hints twice.pem
}

@test "ca hosts set: the CAs trusted for a hostname must name themselves in 16 KiB" {
	init_site
	ctl site add example.org
	bigca big 230
	bigca half1 120
	bigca half2 120
	ctl ca upload big.crt --name big
	ctl ca upload half1.crt --name half1
	ctl ca upload half2.crt --name half2
	refuse 5 "the names of the CAs trusted for api.example.com would take [0-9]+ bytes, over the 16384 \(16 KiB\)" \
		ca hosts set 1 api.example.com
	refuse 5 "trusted for \*\.example\.com would take" ca hosts set 1 ok.example.org '*.example.com'
	ctl ca hosts set 2 '*.example.com' api.example.org
	ctl ca hosts set 3 other.example.org
	# api.example.com would trust half2 and, through its wildcard, half1
	refuse 5 "trusted for api.example.com would take" ca hosts set 3 other.example.org api.example.com
	# and the other way round: a wildcard over a bound exact name
	ctl ca hosts set 3 www.example.org
	refuse 5 "trusted for www.example.org would take" ca hosts set 2 '*.example.org'
	[ "$(sql 'SELECT group_concat(v) FROM (SELECT ca_id || hostname AS v FROM ca_host ORDER BY 1)')" = \
		"2*.example.com,2api.example.org,3www.example.org" ]
}

@test "a schema v2 store: mtls-edged reads it unchanged, the next mtls-edgectl command migrates it" {
	[ -x "$BIN/mtls-edged" ] || skip "build/mtls-edged is not built"
	init_site
	server api.example.com
	mkca p
	ctl sni add api.example.com --cert api.example.com.crt --key api.example.com.key \
		--upstream 127.0.0.1:9 --protocol http
	ctl ca upload p.crt --name p
	ctl ca hosts set 1 api.example.com
	# back to what a v2 build left: no v3 columns, no idrule, no sni_cert, no v5 columns, schema_version 2
	sql "ALTER TABLE sni DROP COLUMN no_alpn; ALTER TABLE sni DROP COLUMN alpn;
		DROP TABLE sni_cert; DROP TABLE idrule; ALTER TABLE sni DROP COLUMN ca_hints_pem; ALTER TABLE sni DROP COLUMN ca_hints;
		ALTER TABLE ca DROP COLUMN trust_domain; ALTER TABLE builtin_ca DROP COLUMN trust_domain;
		UPDATE meta SET value = '2' WHERE key = 'schema_version'"
	before=$(dump)
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off --check
	assert_success
	assert_output --partial "configuration and store OK"
	[ "$(dump)" = "$before" ] || fail "mtls-edged --check changed the store"
	start_daemon
	[ "$(sql "SELECT value FROM meta WHERE key = 'schema_version'")" = 2 ]
	gen=$(sql "SELECT value FROM meta WHERE key = 'generation'")
	run ctl sni list
	assert_success
	assert_line --index 1 --regexp '^api\.example\.com +.* +http +/.* +trusted +-$'
	[ "$(sql "SELECT value FROM meta WHERE key = 'schema_version'")" = 5 ]
	[ "$(sql "SELECT value FROM meta WHERE key = 'generation'")" = "$gen" ]
	[ "$(sql 'SELECT hostname || " " || protocol || " " || ca_hints FROM sni')" = "api.example.com http trusted" ]
	[ "$(sql 'SELECT name || " " || coalesce(trust_domain, "-") FROM ca')" = "p -" ]
	[ "$(sql 'SELECT ca_id || hostname FROM ca_host')" = 1api.example.com ]
	[ "$(sql 'SELECT count(*) FROM idrule')" = 0 ]
	# the running daemon, started on v2, takes the migrated store's next states
	run --separate-stderr ctl identity allow api.example.com --ca p
	assert_success
	[[ $stderr != *warning* ]] || fail "the reload did not go through: $stderr"
	run --separate-stderr ctl ca trust-domain 1 partner.example
	assert_success
	[[ $stderr != *warning* ]] || fail "the reload did not go through: $stderr"
	run --separate-stderr ctl --json status
	assert_success
	[ "$(json_field "$output" '$.generation')" = "$(sql "SELECT value FROM meta WHERE key = 'generation'")" ]
	[ "$(json_field "$output" '$.last_reload.ok')" = 1 ]
	# a store from a newer build: both refuse it
	sql "UPDATE meta SET value = '6' WHERE key = 'schema_version'"
	refuse 1 "schema version 6 is newer than this build understands" identity list
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --bpf off --check
	assert_failure
	assert_output --partial "schema version 6, newer than this build understands"
}

# ---- PKCS#12 (issue #19) ---------------------------------------------------------------------

@test "cert --help lists --p12 and --p12-pass-file; cert create --help says when to use --p12-legacy" {
	run "$BIN/mtls-edgectl" cert --help
	assert_success
	assert_output --partial "--p12 FILE"
	assert_output --partial "--p12-pass-file FILE"
	run "$BIN/mtls-edgectl" cert create --help
	assert_success
	assert_line --regexp '^  --p12 FILE '
	assert_line --regexp '^  --p12-pass-file FILE +.*pipe'
	assert_line --regexp '^  --p12-legacy +.*3DES.*SHA-1 MAC'
	assert_output --partial "older macOS and Android"
	assert_output --partial "Java 8 before 8u301"
}

@test "cert create --p12-pass-file: a pipe, /dev/stdin or a file; one newline stripped; never echoed or stored" {
	init_site
	local pw='Pipe-pw 7f3a'
	run --separate-stderr ctl cert create --cn pipe --out "$W/pipe" --p12 "$W/pipe.p12" \
		--p12-pass-file <(echo "$pw")
	assert_success
	[[ "$output$stderr" != *"$pw"* ]] || fail "the password was echoed"
	run openssl pkcs12 -in pipe.p12 -nodes -passin "pass:$pw"
	assert_success
	assert_output --partial "subject=CN = pipe"
	run --separate-stderr ctl cert create --cn stdin --out "$W/stdin" --p12 "$W/stdin.p12" \
		--p12-pass-file /dev/stdin <<<"$pw"
	assert_success
	[[ "$output$stderr" != *"$pw"* ]] || fail "the password was echoed"
	openssl pkcs12 -in stdin.p12 -nodes -passin "pass:$pw" >/dev/null 2>&1 || fail "wrong password in stdin.p12"
	# no newline at the end, or a CRLF one: the same password
	printf '%s' "$pw" >pw.raw
	printf '%s\r\n' "$pw" >pw.crlf
	ctl cert create --cn raw --out "$W/raw" --p12 "$W/raw.p12" --p12-pass-file pw.raw
	ctl cert create --cn crlf --out "$W/crlf" --p12 "$W/crlf.p12" --p12-pass-file pw.crlf
	for f in raw crlf; do
		openssl pkcs12 -in "$f.p12" -nodes -passin "pass:$pw" >/dev/null 2>&1 || fail "wrong password in $f.p12"
	done
	# a password of 1 KiB is read whole; one byte more is refused
	head -c 1024 /dev/zero | tr '\0' k >pw.1k
	ctl cert create --cn onek --out "$W/onek" --p12 "$W/onek.p12" --p12-pass-file pw.1k
	openssl pkcs12 -in onek.p12 -nodes -passin "pass:$(cat pw.1k)" >/dev/null 2>&1 || fail "wrong password in onek.p12"
	! grep -rqaF "$pw" "$STATE" || fail "the password is in the state directory"
	refuse 5 "empty password" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file <(printf '')
	refuse 5 "empty password" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file <(echo)
	refuse 5 "/dev/null: empty password" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file /dev/null
	head -c 1025 /dev/zero | tr '\0' k >pw.long
	refuse 5 "too long" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file pw.long
	refuse 5 "too long" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file /dev/zero
	refuse 5 "line break" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file <(printf 'a\nb\n')
	refuse 5 "not a regular file, a pipe or a character device" cert create --cn x --out "$W/x" \
		--p12 "$W/x.p12" --p12-pass-file "$W"
	refuse 5 "cannot read" cert create --cn x --out "$W/x" --p12 "$W/x.p12" --p12-pass-file "$W/none"
	[ ! -e x.crt ] && [ ! -e x.key ] && [ ! -e x.p12 ]
}

@test "cert create --p12-legacy: 3DES and a SHA-1 MAC; the default AES-256 and SHA-256; both read without the legacy provider" {
	init_site
	echo 'legacy pw' >pw
	ctl cert create --cn new --out "$W/new" --p12 "$W/new.p12" --p12-pass-file pw
	run ctl cert create --cn old --out "$W/old" --p12 "$W/old.p12" --p12-pass-file pw --p12-legacy
	assert_success
	[ "$(stat -c %a old.p12)" = 600 ]
	run openssl pkcs12 -in new.p12 -info -noout -passin file:pw
	assert_success
	assert_output --partial "MAC: sha256"
	assert_output --partial "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC"
	refute_output --partial "TripleDES"
	run openssl pkcs12 -in old.p12 -info -noout -passin file:pw
	assert_success
	assert_output --partial "MAC: sha1"
	assert_output --partial "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"
	assert_output --partial "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"
	refute_output --partial "AES"
	run openssl pkcs12 -in old.p12 -nodes -passin file:pw
	assert_success
	assert_output --partial "BEGIN PRIVATE KEY"
	assert_output --partial "subject=CN = old"
	[ "$(grep -c 'BEGIN CERTIFICATE' <<<"$output")" -eq 2 ] # the leaf and the built-in CA
	refuse 2 "--p12-legacy needs --p12 FILE" cert create --cn x --out "$W/x" --p12-legacy
	refuse 2 "does not apply with --csr" cert create --csr new.crt --out "$W/x" --p12 "$W/x.p12" --p12-legacy
}

@test "cert create --p12, default and --p12-legacy: Java's keytool loads both, keys included" {
	command -v keytool >/dev/null || skip "needs keytool (openjdk-17-jre-headless: tools/deps.sh test installs it)"
	init_site
	echo 'keytool pw' >pw
	ctl cert create --cn new --out "$W/new" --p12 "$W/new.p12" --p12-pass-file pw
	ctl cert create --cn old --out "$W/old" --p12 "$W/old.p12" --p12-pass-file pw --p12-legacy
	for f in new old; do
		run keytool -list -storetype PKCS12 -keystore "$f.p12" -storepass 'keytool pw'
		assert_success
		assert_output --partial "$f, "
		assert_output --partial "PrivateKeyEntry"
		# copying into a JKS store decrypts the key
		run keytool -importkeystore -noprompt -srckeystore "$f.p12" -srcstoretype PKCS12 \
			-srcstorepass 'keytool pw' -destkeystore "$f.jks" -deststoretype JKS \
			-deststorepass 'keytool pw' -destkeypass 'keytool pw'
		assert_success
		[ -s "$f.jks" ]
	done
}

@test "README.md and docs/*.md link only to files a fresh clone has (make bench writes bench/results/)" {
	local repo=$BATS_TEST_DIRNAME/../.. doc target dir n=0
	command -v git >/dev/null && git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
		skip "needs a git work tree (what a clone has is what git tracks)"
	for doc in README.md docs/*.md; do
		dir=$(dirname "$doc")
		while read -r target; do
			target=${target%%#*}
			[ -n "$target" ] || continue
			n=$((n + 1))
			[ -e "$repo/$dir/$target" ] || fail "$doc links $target, which does not exist"
			! git -C "$repo" check-ignore -q "$dir/$target" ||
				fail "$doc links $target, which git ignores: a fresh clone does not have it"
		done < <(grep -oE '\]\([^)]+\)' "$repo/$doc" | sed -E 's/^\]\((.*)\)$/\1/' | grep -vE '^[a-z]+:')
	done
	[ "$n" -ge 5 ] || fail "found only $n links"
	grep -q '(docs/bench-example.md)' "$repo/README.md"
	grep -q 'make bench' "$repo/README.md"
}
