#!/usr/bin/env bats
# A fleet: one control store publishes every change to a real 3-member etcd cluster (TLS both
# ways, auth on, a user per node); edge daemons keep their store as a replica from one watch
# each. Revocation, new SNI objects, refusals, etcd's faults (a member killed, all of them,
# a compaction), an edge started with etcd down, two writers at once. Every etcd member and
# every edge is a host of its own (hosts.bash: a network namespace each, on one bridge; members
# at 10.77.0.1-3, edge K at 10.77.0.1K:443); the control, curl and the demo upstream are on the
# test's namespace, which tests/run.sh makes for this file (tests/e2e/netns/).

load ../helpers
load ../hosts
load ../etcd_cluster

CLUSTER=t1
PREFIX=/mtls-edge/$CLUSTER/

setup() {
	command -v etcd >/dev/null || skip "etcd is not installed (make deps-test installs etcd-server)"
	edge_setup
	hosts_setup
	export ETCD_ON_HOSTS=1
	UP_LISTEN=$HOSTS_CONTROL:0 start_upstream
	export SNI_UPSTREAM=$HOSTS_CONTROL:$UP_PORT
	make_site
	add_sni api.example.test
	client_cert alice
	client_cert bob
	etcd_pki "$DIR/etcd"
	etcd_cluster_start 3
	etcd_auth_setup "$PREFIX" node-1 node-2 node-3
	run ctl fleet init --etcd "$ETCD_ENDPOINTS" --cluster "$CLUSTER" --etcd-ca "$ETCD_CA" \
		--etcd-cert "$DIR/etcd/control.crt" --etcd-key "$DIR/etcd/control.key" \
		--etcd-user control --etcd-password-file "$ETCD_DIR/pw-control"
	assert_success
	EDGE_PIDS=()
}

teardown() {
	local k
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for k in 1 2 3; do
			[ -s "$DIR/edge-$k.log" ] || continue
			echo "--- edge $k log ---"
			tail -n 60 "$DIR/edge-$k.log"
		done
	fi
	# the edges while etcd answers, then etcd (KILL), then the rest
	for k in "${!EDGE_PIDS[@]}"; do
		kill -TERM "${EDGE_PIDS[k]}" 2>/dev/null || true
		wait_pid "${EDGE_PIDS[k]}" 10 >/dev/null 2>&1 || echo "# edge $k did not stop in 10 s"
	done
	etcd_cluster_stop
	stop_all
	hosts_teardown
}

# edge_ip K: edge K's address (host 1K); it listens on port 443 there.
edge_ip() {
	host_ip "1$1"
}

# start_edge K: mtls-edged as node-K on host 1K, its replica in $DIR/edge-K (made by the
# daemon).
start_edge() {
	local k=$1 i ip started=""
	local conf=$DIR/edge-$k.conf log=$DIR/edge-$k.log
	ip=$(edge_ip "$k")
	[ -e "/run/netns/$(host_ns "1$k")" ] || host_add "1$k"
	host_in "1$k"
	etcd_client_cert "$DIR/etcd" "node-$k"
	cat >"$conf" <<-EOF
		[fleet]
		etcd = $ETCD_ENDPOINTS
		cluster = $CLUSTER
		node = node-$k
		ca = $ETCD_CA
		cert = $DIR/etcd/node-$k.crt
		key = $DIR/etcd/node-$k.key
		user = node-$k
		password_file = $ETCD_DIR/pw-node-$k
	EOF
	local from=$(($( [ -f "$log" ] && wc -l <"$log" || echo 0) + 1))
	"${HOST_IN[@]}" "$BIN/mtls-edged" --state "$DIR/edge-$k" --listen "$ip:443" --workers 1 \
		--log-level debug --bpf off -c "$conf" >>"$log" 2>&1 3>&- &
	EDGE_PIDS[k]=$!
	track_pid "${EDGE_PIDS[k]}"
	for ((i = 0; i < 600; i++)); do
		tail -n +"$from" "$log" | grep -q "listening addr=$ip:443" && started=1 && break
		pid_alive "${EDGE_PIDS[k]}" || fail "edge $k exited: $(cat "$log")"
		sleep 0.05
	done
	[ -n "$started" ] || fail "edge $k did not start: $(cat "$log")"
}

# stop_edge K: SIGTERM, bounded wait.
stop_edge() {
	kill -TERM "${EDGE_PIDS[$1]}"
	wait_pid "${EDGE_PIDS[$1]}" 10 || fail "edge $1 did not stop"
}

# curl_edge K NAME PATH [curl args]: HTTPS to edge K as api.example.test with $DIR/NAME.crt.
curl_edge() {
	local k=$1 name=$2 path=${3#/}
	shift 3
	curl -sS --max-time 10 --resolve "api.example.test:443:$(edge_ip "$k")" \
		--cacert "$PKI/server-ca.crt" --cert "$DIR/$name.crt" --key "$DIR/$name.key" \
		"https://api.example.test/$path" "$@"
}

# edge_status K: mtls-edgectl status --json of edge K.
edge_status() {
	"$BIN/mtls-edgectl" --state "$DIR/edge-$1" status --json
}

# commit_rev: the revision of the control's last publish (meta/commit's mod_revision).
commit_rev() {
	ctl fleet status --json | jq -r .commit_revision
}

# edge_applied K: the revision edge K serves.
edge_applied() {
	edge_status "$1" | jq -r .fleet.applied_revision
}

# edge_at K REV: edge K serves revision REV or a later one.
edge_at() {
	local a
	a=$(edge_applied "$1") || return 1
	[ "$a" -ge "$2" ]
}

# all_at REV K...: every edge listed has applied REV (bounded wait).
all_at() {
	local rev=$1 k
	shift
	for k in "$@"; do
		retry 200 0.05 edge_at "$k" "$rev" || fail "edge $k is not at revision $rev: $(edge_status "$k")"
	done
}

@test "fleet: what the control has serves on every edge; the edges report their revision in etcd" {
	start_edge 1
	start_edge 2
	start_edge 3
	local rev
	rev=$(commit_rev)
	[ "$rev" -gt 0 ] || fail "nothing published: $(ctl fleet status --json)"
	all_at "$rev" 1 2 3
	for k in 1 2 3; do
		run curl_edge "$k" alice /
		assert_success
		assert_output "hello from upstream"
	done
	# A new SNI object at the control serves on every edge.
	add_sni web.example.test
	rev=$(commit_rev)
	all_at "$rev" 1 2 3
	for k in 1 2 3; do
		run curl -sS --max-time 10 --resolve "web.example.test:443:$(edge_ip "$k")" \
			--cacert "$PKI/server-ca.crt" --cert "$DIR/alice.crt" --key "$DIR/alice.key" \
			"https://web.example.test/"
		assert_output "hello from upstream"
	done
	# fleet status: every node at the control's revision, none behind.
	# shellcheck disable=SC2016 # for the inner shell
	retry 100 0.05 bash -c '"$1" --state "$2" fleet status --json | jq -e "(.nodes | length) == 3 and ([.nodes[] | select(.behind)] | length) == 0"' _ "$BIN/mtls-edgectl" "$STATE"
	run ctl fleet status
	assert_success
	assert_output --partial "node-1"
	assert_output --partial "node-3"
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" metrics
	assert_line --regexp "^mtls_edge_fleet_revision $rev$"
	assert_line "mtls_edge_fleet_connected 1"
	assert_line --regexp '^mtls_edge_fleet_apply_seconds_count [1-9][0-9]*$'
}

@test "fleet: a revocation at the control refuses the certificate on every edge and closes its live connections" {
	start_edge 1
	start_edge 2
	all_at "$(commit_rev)" 1 2
	local k t0 t1
	for k in 1 2; do
		curl_edge "$k" alice /bytes/500000000 --limit-rate 100k -o /dev/null >"$DIR/live-$k.out" 2>&1 3>&- &
		track_pid $!
	done
	for k in 1 2; do
		retry 200 0.05 grep -q 'verdict=pass reason=ok subject="CN=alice"' "$DIR/edge-$k.log"
	done
	t0=$(now_ms)
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	for k in 1 2; do
		retry 200 0.05 grep -q "revoked peer=.* closing the live connection" "$DIR/edge-$k.log" ||
			fail "edge $k did not close alice's live connection"
	done
	t1=$(now_ms)
	echo "# revoke at the control to both edges' close: $((t1 - t0)) ms" >&3
	for k in 1 2; do
		run curl_edge "$k" alice /
		assert_failure
		run curl_edge "$k" bob /
		assert_output "hello from upstream"
	done
}

@test "fleet: a bad change is refused at the control and never reaches etcd; with etcd down nothing is committed" {
	local rev before
	rev=$(etcd_revision)
	run ctl sni add bad.example.test --cert "$DIR/nope.crt" --key "$DIR/nope.key" --upstream "127.0.0.1:$UP_PORT"
	assert_failure
	[ "$(etcd_revision)" = "$rev" ] || fail "etcd moved from $rev to $(etcd_revision)"
	# etcd unreachable: the command fails, the store is as it was.
	before=$(ctl sni list --json)
	etcd_member_kill 1
	etcd_member_kill 2
	etcd_member_kill 3
	run ctl site add other.test
	assert_failure
	assert_output --partial "etcd did not take the change, so nothing was committed"
	[ "$(ctl sni list --json)" = "$before" ] || fail "the store changed"
	run ctl site list
	refute_output --partial other.test
}

@test "fleet: an edge refuses a revision it cannot apply; the old configuration serves; the reason is in status/NODE" {
	start_edge 1
	all_at "$(commit_rev)" 1
	local good
	good=$(edge_applied 1)
	# Written behind the control's back (root): a row that is not one.
	etcd_ctl put "${PREFIX}sni/broken.example.test" '{"hostname":"other"}' >/dev/null
	etcd_ctl put "${PREFIX}meta/commit" '{"at":1,"generation":999}' >/dev/null
	# shellcheck disable=SC2016 # for the inner shell
	retry 200 0.05 bash -c '"$1" --state "$2" status --json | jq -e ".fleet.rejected_revision > $3"' _ "$BIN/mtls-edgectl" "$DIR/edge-1" "$good"
	[ "$(edge_applied 1)" = "$good" ] || fail "applied moved: $(edge_status 1)"
	run curl_edge 1 alice /
	assert_output "hello from upstream"
	run etcd_ctl get "${PREFIX}status/node-1" --print-value-only
	assert_output --partial "holds the row of sni/other"
	grep -q "fleet: revision .* refused, the previous configuration keeps serving" "$DIR/edge-1.log"
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" metrics
	assert_line 'mtls_edge_fleet_revisions_total{result="rejected"} 1'
	# The control's next publish puts etcd right again, and the edge follows.
	client_cert carol
	all_at "$(commit_rev)" 1
	run curl_edge 1 carol /
	assert_output "hello from upstream"
}

@test "fleet: the edge's store is a replica: mtls-edgectl refuses to change it" {
	start_edge 1
	all_at "$(commit_rev)" 1
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" site add other.test
	assert_failure
	assert_output --partial "is the replica of fleet cluster $CLUSTER"
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" fleet status --json
	assert_success
	jq -e '.role == "edge" and .cluster == "t1" and .node == "node-1"' <<<"$output" || fail "$output"
}

@test "fleet: a member killed changes nothing; all killed, the edges serve on; back, they catch up" {
	start_edge 1
	start_edge 2
	all_at "$(commit_rev)" 1 2
	etcd_member_kill 1
	run ctl cert revoke "$(serial_of bob)" --yes
	assert_success
	all_at "$(commit_rev)" 1 2
	run curl_edge 2 bob /
	assert_failure
	local rev
	rev=$(commit_rev)
	etcd_member_kill 2
	etcd_member_kill 3
	# shellcheck disable=SC2016 # for the inner shell
	retry 200 0.05 bash -c '"$1" --state "$2" metrics | grep -qx "mtls_edge_fleet_connected 0"' _ "$BIN/mtls-edgectl" "$DIR/edge-1"
	run curl_edge 1 alice /
	assert_output "hello from upstream"
	etcd_member_start 1
	etcd_member_start 2
	etcd_member_start 3
	etcd_wait_healthy
	add_sni web.example.test
	all_at "$(commit_rev)" 1 2
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" metrics
	assert_line --regexp '^mtls_edge_fleet_watch_reconnects_total [1-9][0-9]*$'
	assert_line "mtls_edge_fleet_connected 1"
}

@test "fleet: an edge cut off from the network misses a revocation, and takes it when its cable is back" {
	start_edge 1
	start_edge 2
	all_at "$(commit_rev)" 1 2
	local before
	before=$(edge_applied 2)
	host_link 12 down
	run ctl cert revoke "$(serial_of bob)" --yes
	assert_success
	all_at "$(commit_rev)" 1
	run curl_edge 1 bob /
	assert_failure
	# cut off: edge 2 still has what it had (its admin socket is a file: it answers)
	[ "$(edge_applied 2)" = "$before" ] || fail "edge 2 moved while cut off: $(edge_status 2)"
	host_link 12 up
	# TCP keepalive (about 20 s) or the stream's own retransmission brings it back
	retry 900 0.05 edge_at 2 "$(commit_rev)" || fail "edge 2 did not catch up: $(edge_status 2)"
	run curl_edge 2 bob /
	assert_failure
	run curl_edge 2 alice /
	assert_output "hello from upstream"
}

@test "fleet: an edge started while etcd is down serves from its replica, then follows" {
	start_edge 1
	all_at "$(commit_rev)" 1
	stop_edge 1
	etcd_member_kill 1
	etcd_member_kill 2
	etcd_member_kill 3
	start_edge 1
	run curl_edge 1 alice /
	assert_output "hello from upstream"
	run edge_status 1
	jq -e '.fleet.etcd_connected == false and (.fleet.last_error | test("Couldn.t connect"))' <<<"$output" ||
		fail "$output"
	etcd_member_start 1
	etcd_member_start 2
	etcd_member_start 3
	etcd_wait_healthy
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	all_at "$(commit_rev)" 1
	run curl_edge 1 alice /
	assert_failure
}

@test "fleet: an edge that was away catches up over a compaction, re-reading what changed" {
	start_edge 1
	all_at "$(commit_rev)" 1
	stop_edge 1
	add_sni web.example.test
	run ctl cert revoke "$(serial_of bob)" --yes
	assert_success
	etcd_compact
	start_edge 1
	all_at "$(commit_rev)" 1
	grep -q "was compacted" "$DIR/edge-1.log" || fail "no compaction seen: $(cat "$DIR/edge-1.log")"
	run curl_edge 1 bob /
	assert_failure
	run curl_edge 1 alice /
	assert_output "hello from upstream"
}

@test "fleet: etcd restored from a backup: the edge resyncs loudly, re-admits no revoked certificate, and follows fleet sync" {
	start_edge 1
	client_cert carol
	all_at "$(commit_rev)" 1
	etcd_snapshot_save "$DIR/etcd.snap"
	# after the backup: alice revoked, web.example.test added
	run ctl cert revoke "$(serial_of alice)" --yes
	assert_success
	add_sni web.example.test
	all_at "$(commit_rev)" 1
	local applied
	applied=$(edge_applied 1)
	etcd_cluster_restore "$DIR/etcd.snap"
	retry 300 0.05 grep -q "etcd's revision went BACK from $applied to" "$DIR/edge-1.log" ||
		fail "no backwards resync: $(tail -20 "$DIR/edge-1.log")"
	retry 200 0.05 grep -q "lacks 1 revocation this edge has ($(serial_of alice))" "$DIR/edge-1.log" ||
		fail "the edge did not hold: $(tail -20 "$DIR/edge-1.log")"
	# it holds: alice stays out, the configuration it had keeps serving
	run curl_edge 1 alice /
	assert_failure
	run curl -sS --max-time 10 --resolve "web.example.test:443:$(edge_ip 1)" \
		--cacert "$PKI/server-ca.crt" --cert "$DIR/bob.crt" --key "$DIR/bob.key" "https://web.example.test/"
	assert_output "hello from upstream"
	[ "$(edge_applied 1)" = "$applied" ] || fail "applied moved: $(edge_status 1)"
	run "$BIN/mtls-edgectl" --state "$DIR/edge-1" metrics
	assert_line "mtls_edge_fleet_revision_backwards_total 1"
	run etcd_ctl get "${PREFIX}status/node-1" --print-value-only
	assert_output --partial "until the control publishes again"
	# another change at the control while etcd is behind: published as a diff against etcd's
	# (old) keys; the edge reads it all, still lacking nothing, and takes it
	ctl fleet status --json >"$DIR/fs.json" 2>"$DIR/fs.err"
	jq -e '.in_sync == false' "$DIR/fs.json" || fail "the control did not see etcd behind: $(cat "$DIR/fs.json")"
	grep -q "etcd restored from a backup" "$DIR/fs.err" || fail "no warning: $(cat "$DIR/fs.err")"
	run ctl fleet sync
	assert_success
	# etcd's revisions start again below the edge's: the very revision, not "at least"
	# shellcheck disable=SC2016 # for the inner shell
	retry 200 0.05 bash -c '[ "$("$1" --state "$2" status --json | jq -r .fleet.applied_revision)" = "$3" ]' \
		_ "$BIN/mtls-edgectl" "$DIR/edge-1" "$(commit_rev)" || fail "the edge did not follow: $(edge_status 1)"
	run ctl fleet status --json
	jq -e '.in_sync == true' <<<"$output" || fail "not in sync after fleet sync: $output"
	run curl_edge 1 alice /
	assert_failure
	run curl_edge 1 carol /
	assert_output "hello from upstream"
	run edge_status 1
	jq -e '.fleet.rejected_reason == "" or .fleet.rejected_reason == null' <<<"$output" || fail "$output"
}

@test "fleet: two control writers at once: each change is in etcd once, none lost" {
	start_edge 1
	local i pids=()
	for i in 1 2 3 4; do
		ctl cert create --cn "w$i" --out "$DIR/w$i" >"$DIR/w$i.out" 2>&1 &
		pids+=($!)
		ctl site add "s$i.test" >"$DIR/s$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || fail "a writer failed: $(cat "$DIR"/w*.out "$DIR"/s*.out)"
	done
	all_at "$(commit_rev)" 1
	for i in 1 2 3 4; do
		run curl_edge 1 "w$i" /
		assert_output "hello from upstream"
	done
	run etcd_ctl get "${PREFIX}site/" --prefix --keys-only
	for i in 1 2 3 4; do
		assert_line "${PREFIX}site/s$i.test"
	done
	run ctl fleet status --json
	assert_success
	[ "$(jq -r .published_revision <<<"$output")" = "$(jq -r .commit_revision <<<"$output")" ] ||
		fail "the control's last publish is not etcd's: $output"
}

