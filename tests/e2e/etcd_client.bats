#!/usr/bin/env bats
# The etcd client of userspace/lib (etcd.h), through build/etcd-probe, against real one-member
# etcd clusters on loopback (TLS with client certificates, as the fleet runs them): put, get,
# a range over several pages, transactions, watches (events, progress, compaction, the stop
# flag, a member going away), failover, authentication, and what TLS refuses.

load helpers

setup() {
	requires etcd etcdctl
	edge_setup
	make_ca "$PKI/ca" "etcd test CA"
	# the server's certificate serves its JSON gateway's own gRPC client too: clientAuth
	sign_cert "$PKI/ca" "$PKI/server" "etcd test server" "subjectAltName=IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth"
	# without a CommonName: with authentication on, etcd 3.4's JSON gateway refuses a client
	# certificate that has one (test "auth: ... CommonName")
	client_cert_no_cn "$PKI/ca" "$PKI/client"
	make_client_cert "$PKI/ca" "$PKI/named" "node1"
	make_ca "$PKI/other-ca" "another CA"
	client_cert_no_cn "$PKI/other-ca" "$PKI/stranger"
	ECTL_AUTH=()
}

teardown() {
	local f
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$DIR"/*.etcd.log; do
			[ -s "$f" ] || continue
			echo "--- $f ---"
			tail -n 40 "$f"
		done
	fi
	stop_all
}

# client_cert_no_cn CA_PREFIX PREFIX: a client certificate whose subject is O=mtls-edge only.
client_cert_no_cn() {
	if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$2.key" -out "$2.csr" -subj "/O=mtls-edge" >/dev/null 2>&1 ||
		! openssl x509 -req -in "$2.csr" -CA "$1.crt" -CAkey "$1.key" -CAcreateserial \
			-days 400 -out "$2.crt" -extfile <(printf '%s\n' \
			"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=clientAuth") >/dev/null 2>&1; then
		fail "openssl: cannot sign a client certificate with $1"
	fi
	chmod 600 "$2.key"
	rm -f "$2.csr"
}

# free_port: a loopback port nothing listens on.
free_port() {
	rm -f "$DIR/closed.port"
	closed_port
}

# start_etcd NAME [etcd args]: a one-member cluster NAME (data in $DIR/NAME, log in
# $DIR/NAME.etcd.log), TLS with client certificates on its client port; waits until it answers.
# Again with the same NAME: the same member and ports (a restart). Sets ETCD_PID and ETCD_EP.
start_etcd() {
	local name=$1 cport pport
	shift
	if [ -s "$DIR/$name.ports" ]; then
		read -r cport pport <"$DIR/$name.ports"
	else
		cport=$(free_port) || fail "no free port"
		pport=$(free_port) || fail "no free port"
		while [ "$pport" = "$cport" ]; do
			pport=$(free_port) || fail "no free port"
		done
		echo "$cport $pport" >"$DIR/$name.ports"
	fi
	ETCD_EP=https://127.0.0.1:$cport
	etcd --name "$name" --data-dir "$DIR/$name" \
		--listen-client-urls "$ETCD_EP" --advertise-client-urls "$ETCD_EP" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$name=http://127.0.0.1:$pport" \
		--cert-file "$PKI/server.crt" --key-file "$PKI/server.key" \
		--client-cert-auth --trusted-ca-file "$PKI/ca.crt" "$@" \
		>>"$DIR/$name.etcd.log" 2>&1 3>&- &
	ETCD_PID=$!
	track_pid "$ETCD_PID"
	# Up to 20 s: a bound for a hang, not a speed requirement.
	retry 400 0.05 ectl_at "$ETCD_EP" endpoint health ||
		fail "etcd $name did not start: $(tail -n 30 "$DIR/$name.etcd.log")"
	export ETCD_EP ETCD_PID
}

# stop_pid PID: SIGTERM to one of our processes and a bounded wait for its end.
stop_pid() {
	kill -TERM "$1"
	wait_pid "$1" 20 >/dev/null || true
	! pid_alive "$1" || fail "pid $1 still runs 20 s after SIGTERM"
}

# ectl_at ENDPOINT ARGS...: etcdctl with the client certificate (and root, once auth is on).
ectl_at() {
	ETCDCTL_API=3 etcdctl --endpoints "$1" --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" --command-timeout 10s "${ECTL_AUTH[@]}" "${@:2}"
}

ectl() {
	ectl_at "$ETCD_EP" "$@"
}

# probe ENDPOINTS ARGS...: etcd-probe with the CA and the client certificate, bounded in time.
probe() {
	timeout 60 "$BIN/etcd-probe" --endpoints "$1" --ca "$PKI/ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" --timeout-ms 3000 "${@:2}"
}

# probe_bg OUT ENDPOINTS ARGS...: the probe in the background (WATCH_PID), its output in OUT;
# waits for its watch's "created" line.
probe_bg() {
	local out=$1
	shift
	"$BIN/etcd-probe" --endpoints "$1" --ca "$PKI/ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" --timeout-ms 3000 "${@:2}" >"$out" 2>&1 3>&- &
	WATCH_PID=$!
	track_pid "$WATCH_PID"
	retry 400 0.05 grep -q '^created revision=' "$out" ||
		fail "the watch did not start: $(cat "$out")"
}

# finish_bg OUT: waits (bounded) for the background probe's end; its output in $output.
finish_bg() {
	local st=0
	wait_pid "$WATCH_PID" 30 || st=$?
	output=$(cat "$1")
	mapfile -t lines <"$1"
	status=$st
	[ "$st" -ne 124 ] || fail "the probe still runs after 30 s: $output"
}

# revision: etcd's current revision.
revision() {
	ectl endpoint status -w json | grep -o '"revision":[0-9]*' | head -n1 | cut -d: -f2
}

# enable_auth: users root (role root) and node1 (role fleet: readwrite on /fleet/), auth on;
# node1's password in $DIR/node1.pw.
enable_auth() {
	ectl user add root --new-user-password=rootpw >/dev/null
	ectl user grant-role root root >/dev/null
	ectl user add node1 --new-user-password=node1pw >/dev/null
	ectl role add fleet >/dev/null
	ectl role grant-permission fleet --prefix=true readwrite /fleet/ >/dev/null
	ectl user grant-role node1 fleet >/dev/null
	ectl auth enable >/dev/null
	ECTL_AUTH=(--user root:rootpw)
	printf 'node1pw\nnot this line\n' >"$DIR/node1.pw"
	printf 'wrong\n' >"$DIR/wrong.pw"
	chmod 600 "$DIR/node1.pw" "$DIR/wrong.pw"
}

@test "put, get, an empty value, a key that is absent" {
	start_etcd n1
	run probe "$ETCD_EP" put /k/a hello -- get /k/a -- put /k/empty "" -- get /k/empty \
		-- get /k/none
	assert_success
	assert_line --index 1 --regexp '^hello mod=[0-9]+$'
	assert_line --index 3 --regexp '^ mod=[0-9]+$'
	assert_line --index 4 absent
	run ectl get /k/a --print-value-only
	assert_output hello
}

@test "range of a prefix: every key, sorted, over several pages, and nothing outside it" {
	start_etcd n1
	# 1,200 keys: three pages of 500; neighbours on both sides of the prefix's range
	run probe "$ETCD_EP" fill /big/ 1200 -- put /big0 out -- put /bia out -- put /big out
	assert_success
	rev=$(revision)
	run probe "$ETCD_EP" count /big/
	assert_success
	assert_output "revision=$rev count=1200 first=/big/00000 last=/big/01199 sorted=yes"
	run probe "$ETCD_EP" count ""
	assert_success
	assert_output "revision=$rev count=1203 first=/bia last=/big0 sorted=yes"
	# the full answer of a small range: values and revisions as etcd has them
	run probe "$ETCD_EP" put /s/b 2 -- put /s/a 1 -- put /s/a 1b -- range /s/ -- range /none/
	assert_success
	assert_line --index 3 "revision=$((rev + 3)) count=2"
	assert_line --index 4 "/s/a=1b mod=$((rev + 3)) create=$((rev + 2))"
	assert_line --index 5 "/s/b=2 mod=$((rev + 1)) create=$((rev + 1))"
	assert_line --index 6 "revision=$((rev + 3)) count=0"
	# [key, end): the fleet's configuration range leaves the status keys out
	run probe "$ETCD_EP" put /f/status/n1 x -- put /f/sni/a 1 -- put /f/meta/commit 2 -- count /f/ /f/status/
	assert_success
	assert_line --index 3 "revision=$((rev + 6)) count=2 first=/f/meta/commit last=/f/sni/a sorted=yes"
}

@test "txn: all the ops when the guard holds, none and ECANCELED when it does not" {
	start_etcd n1
	run probe "$ETCD_EP" txn /t/guard 0 /t/guard=1 /t/x=2 /t/y=3
	assert_success
	rev=$(revision)
	assert_output "ok revision=$rev"
	# the guard exists now: a second "create" loses
	run probe "$ETCD_EP" txn /t/guard 0 /t/guard=other /t/z=4
	assert_failure
	assert_line --index 0 "revision=$rev"
	assert_line --index 1 --partial "error: ECANCELED: etcd $ETCD_EP: the transaction did not run"
	run probe "$ETCD_EP" get /t/guard -- get /t/z
	assert_output "1 mod=$rev
absent"
	# at its revision: a put and a delete together
	run probe "$ETCD_EP" txn /t/guard "$rev" /t/guard=2 /t/x -- get /t/x -- get /t/guard
	assert_success
	assert_line --index 0 "ok revision=$((rev + 1))"
	assert_line --index 1 absent
	assert_line --index 2 "2 mod=$((rev + 1))"
	# a stale revision: nothing runs
	run probe "$ETCD_EP" txn /t/guard "$rev" /t/y
	assert_failure
	assert_output --partial "is not at revision $rev"
	run probe "$ETCD_EP" get /t/y
	assert_output "3 mod=$rev"
	# more operations than etcd takes in one transaction
	ops=()
	for ((i = 0; i < 129; i++)); do
		ops+=("/t/many$i=v")
	done
	run probe "$ETCD_EP" txn /t/guard 0 "${ops[@]}"
	assert_failure
	assert_output --partial "error: EINVAL: etcd: a transaction of 129 operations (at most 128)"
}

@test "watch: puts and deletes under the prefix from a past revision, nothing outside it" {
	start_etcd n1
	run probe "$ETCD_EP" put /w/a 1
	assert_success
	from=$(revision)
	probe_bg "$DIR/watch.out" "$ETCD_EP" watch /w/ "$from" 3
	ectl put /wx outside >/dev/null
	ectl put /w/b 2 >/dev/null
	ectl del /w/a >/dev/null
	finish_bg "$DIR/watch.out"
	assert_success
	assert_output "created revision=$((from))
put /w/a=1 mod=$from
put /w/b=2 mod=$((from + 2))
delete /w/a mod=$((from + 3))
done"
}

@test "watch: progress notifications advance the revision with no event" {
	start_etcd n1 --experimental-watch-progress-notify-interval 200ms
	run probe "$ETCD_EP" put /elsewhere x
	assert_success
	rev=$(revision)
	run probe "$ETCD_EP" watch /quiet/ 0 0 2
	assert_success
	assert_output "created revision=$rev
progress revision=$rev
progress revision=$rev
done"
}

@test "watch: a compacted start revision is ERANGE, with etcd's compact revision" {
	start_etcd n1
	run probe "$ETCD_EP" put /c/a 1 -- put /c/a 2 -- put /c/a 3
	assert_success
	rev=$(revision)
	ectl compact "$rev" >/dev/null
	run probe "$ETCD_EP" watch /c/ 2
	assert_failure
	assert_line --partial "error: ERANGE: etcd $ETCD_EP: the watch's start revision was compacted"
	assert_line "compacted=$rev"
	# from the compact revision on, it works
	run probe "$ETCD_EP" watch /c/ "$rev" 1
	assert_success
	assert_line "put /c/a=3 mod=$rev"
}

@test "watch: the stop flag ends it with 0" {
	start_etcd n1
	probe_bg "$DIR/watch.out" "$ETCD_EP" watch /s/ 0
	kill -TERM "$WATCH_PID"
	finish_bg "$DIR/watch.out"
	assert_success
	assert_line --index 1 stopped
}

@test "failover: a dead endpoint first, the live one answers and stays; none alive: ECONNREFUSED" {
	start_etcd n1
	dead=https://127.0.0.1:$(free_port)
	run probe "$dead,$ETCD_EP" endpoint -- put /f/a 1 -- endpoint -- get /f/a -- endpoint
	assert_success
	assert_output --regexp "^endpoint=$dead
put /f/a
endpoint=$ETCD_EP
1 mod=[0-9]+
endpoint=$ETCD_EP\$"
	# a watch goes past the dead endpoint too
	probe_bg "$DIR/watch.out" "$dead,$ETCD_EP" watch /f/ 0 1
	ectl put /f/b 2 >/dev/null
	finish_bg "$DIR/watch.out"
	assert_success
	assert_line "put /f/b=2 mod=$(revision)"
	dead2=https://127.0.0.1:$(free_port)
	run probe "$dead,$dead2" get /f/a
	assert_failure
	assert_output --partial "error: ECONNREFUSED: etcd $dead: "
	assert_output --partial "; etcd $dead2: "
}

@test "watch: the member going away is ECONNRESET, and the next call starts with the next endpoint" {
	start_etcd a
	ep_a=$ETCD_EP pid_a=$ETCD_PID
	start_etcd b
	ep_b=$ETCD_EP
	probe_bg "$DIR/watch.out" "$ep_a,$ep_b" --keep-going watch /m/ 0 -- endpoint -- put /m/x 1
	stop_pid "$pid_a"
	finish_bg "$DIR/watch.out"
	assert_failure # the watch's error
	assert_line --index 1 --partial "error: ECONNRESET: etcd $ep_a: "
	assert_line --index 2 "endpoint=$ep_b"
	assert_line --index 3 "put /m/x"
	run ectl_at "$ep_b" get /m/x --print-value-only
	assert_output 1
}

@test "auth: a user and password, permission denied outside its role, wrong passwords" {
	start_etcd n1
	enable_auth
	pw=(--user node1 --password-file "$DIR/node1.pw")
	run probe "$ETCD_EP" "${pw[@]}" put /fleet/a 1 -- get /fleet/a -- range /fleet/
	assert_success
	assert_line --index 1 --regexp '^1 mod=[0-9]+$'
	assert_line --index 3 --regexp '^/fleet/a=1 '
	run probe "$ETCD_EP" "${pw[@]}" put /other 1
	assert_failure
	assert_output "error: EACCES: etcd $ETCD_EP: permission denied"
	run probe "$ETCD_EP" "${pw[@]}" txn /fleet/g 0 /fleet/g=1 /other=2 -- get /fleet/g
	assert_failure
	assert_line "error: EACCES: etcd $ETCD_EP: permission denied"
	run probe "$ETCD_EP" "${pw[@]}" get /fleet/g
	assert_output absent
	run probe "$ETCD_EP" "${pw[@]}" watch /other/ 0
	assert_failure
	assert_output "error: EACCES: etcd $ETCD_EP: permission denied"
	run probe "$ETCD_EP" --user node1 --password-file "$DIR/wrong.pw" get /fleet/a
	assert_failure
	assert_output --partial "error: EACCES: etcd $ETCD_EP: authentication failed"
	run probe "$ETCD_EP" get /fleet/a
	assert_failure
	assert_output --partial "error: EACCES: etcd $ETCD_EP: user name is empty (etcd's authentication is on"
	# a watch with the token
	probe_bg "$DIR/watch.out" "$ETCD_EP" "${pw[@]}" watch /fleet/ 0 1
	ectl put /fleet/b 2 >/dev/null
	finish_bg "$DIR/watch.out"
	assert_success
	assert_line --regexp '^put /fleet/b=2 mod=[0-9]+$'
}

@test "auth: a client certificate with a CommonName is refused by the JSON gateway, in words" {
	start_etcd n1
	enable_auth
	for cmd in "get /fleet/a" "watch /fleet/ 0"; do
		# shellcheck disable=SC2086 # the command's words
		run timeout 60 "$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/ca.crt" \
			--cert "$PKI/named.crt" --key "$PKI/named.key" --user node1 \
			--password-file "$DIR/node1.pw" $cmd
		assert_failure
		assert_output --partial "error: EACCES: etcd $ETCD_EP: the client certificate has a CommonName, which etcd's JSON gateway refuses while authentication is on"
	done
	# before authentication is on, it is accepted
	start_etcd n2
	run timeout 60 "$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/ca.crt" \
		--cert "$PKI/named.crt" --key "$PKI/named.key" put /x 1
	assert_success
}

# token_of USER PASSWORD: a token of etcd's, by hand.
token_of() {
	curl -sS --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key" \
		-X POST "$ETCD_EP/v3/auth/authenticate" -d "{\"name\":\"$1\",\"password\":\"$2\"}" |
		sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}

# token_valid TOKEN: etcd still takes it (not "invalid auth token").
token_valid() {
	! curl -sS --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" -H "Authorization: $1" -X POST "$ETCD_EP/v3/kv/range" \
		-d '{"key":"L2ZsZWV0L2E="}' | grep -q 'invalid auth token'
}

# same_password: node1's password set again, to the same: etcd drops node1's tokens.
same_password() {
	ectl user passwd node1 --interactive=false <<<node1pw >/dev/null
}

@test "auth: a token etcd no longer takes is fetched again, for calls and watches" {
	start_etcd n1
	enable_auth
	ectl put /fleet/a 1 >/dev/null
	"$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/ca.crt" --cert "$PKI/client.crt" \
		--key "$PKI/client.key" --user node1 --password-file "$DIR/node1.pw" \
		get /fleet/a -- wait "$DIR/go" -- get /fleet/a -- put /fleet/b 2 -- wait "$DIR/go2" \
		-- watch /fleet/ 0 1 >"$DIR/probe.out" 2>&1 3>&- &
	WATCH_PID=$!
	track_pid "$WATCH_PID"
	retry 400 0.05 grep -q mod= "$DIR/probe.out" || fail "no first get: $(cat "$DIR/probe.out")"
	# a password change (even to the same) invalidates the user's tokens: the probe's, and
	# this one, which shows it
	tok=$(token_of node1 node1pw)
	[ -n "$tok" ] || fail "no token for node1"
	token_valid "$tok" || fail "a fresh token is not valid"
	same_password
	! token_valid "$tok" || fail "etcd still takes node1's token after a password change"
	touch "$DIR/go"
	retry 400 0.05 grep -q '^put /fleet/b' "$DIR/probe.out" || fail "no put: $(cat "$DIR/probe.out")"
	tok=$(token_of node1 node1pw)
	same_password
	! token_valid "$tok" || fail "etcd still takes node1's token after a password change"
	touch "$DIR/go2"
	retry 400 0.05 grep -q '^created' "$DIR/probe.out" || fail "no watch: $(cat "$DIR/probe.out")"
	ectl put /fleet/c 3 >/dev/null
	finish_bg "$DIR/probe.out"
	assert_success
	assert_line --index 0 --regexp '^1 mod=[0-9]+$'
	assert_line --index 1 --regexp '^1 mod=[0-9]+$'
	assert_line --index 2 "put /fleet/b"
	assert_line --regexp '^put /fleet/c=3 mod=[0-9]+$'
	run ectl get /fleet/b --print-value-only
	assert_output 2
}

@test "TLS: without a client certificate, or with another CA, no endpoint answers" {
	start_etcd n1
	run timeout 60 "$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/ca.crt" get /x
	assert_failure
	assert_output --partial "error: ECONNREFUSED: etcd $ETCD_EP: "
	run timeout 60 "$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/other-ca.crt" \
		--cert "$PKI/client.crt" --key "$PKI/client.key" get /x
	assert_failure
	assert_output --partial "error: ECONNREFUSED: etcd $ETCD_EP: SSL certificate problem"
	run timeout 60 "$BIN/etcd-probe" --endpoints "$ETCD_EP" --ca "$PKI/ca.crt" \
		--cert "$PKI/stranger.crt" --key "$PKI/stranger.key" get /x
	assert_failure
	assert_output --partial "error: ECONNREFUSED: etcd $ETCD_EP: "
	run probe "$ETCD_EP" get /x
	assert_success
	assert_output absent
}

@test "options: endpoints, user and password file are checked before anything is sent" {
	run probe "" get /x
	assert_failure
	assert_output "error: EINVAL: etcd: no endpoints"
	run probe "ftp://127.0.0.1:1" get /x
	assert_failure
	assert_output --partial "error: EINVAL: etcd: bad endpoint 'ftp://127.0.0.1:1'"
	run probe "https://127.0.0.1:1,,https://127.0.0.1:2" get /x
	assert_failure
	assert_output --partial "error: EINVAL: etcd: bad endpoint ''"
	eps=https://127.0.0.1:1
	for ((i = 2; i <= 17; i++)); do
		eps+=",https://127.0.0.1:$i"
	done
	run probe "$eps" get /x
	assert_failure
	assert_output "error: EINVAL: etcd: more than 16 endpoints"
	run probe https://127.0.0.1:1 --user node1 get /x
	assert_failure
	assert_output --partial "error: EINVAL: "
	run probe https://127.0.0.1:1 --user node1 --password-file "$DIR/none" get /x
	assert_failure
	assert_output --partial "error: ENOENT: etcd: the password file $DIR/none: "
	: >"$DIR/empty.pw"
	run probe https://127.0.0.1:1 --user node1 --password-file "$DIR/empty.pw" get /x
	assert_failure
	assert_output --partial "error: EINVAL: etcd: the password file $DIR/empty.pw: its first line is empty"
}
