#!/usr/bin/env bash
# The fleet demo behind `make run-fleet` / `make stop-fleet` (docs/fleet.md).
#
#   config/fleet-demo.sh start   fresh state in ./demo-fleet/: one etcd member, a control store,
#                                a demo upstream and two edges (mtls-edged with a [fleet]
#                                section), all on loopback; shows a request through each edge,
#                                then the commands to try (a revocation at the control refuses
#                                the certificate on both edges)
#   config/fleet-demo.sh stop    stops the processes recorded in ./demo-fleet/*.pid (only those)
#
# FLEET_DEMO_DIR puts the state elsewhere (the tests do). etcd here speaks plain HTTP with no
# authentication, to keep the walkthrough short; a real fleet runs it with TLS both ways and a
# user per node (docs/fleet.md, "Operating it"). start stops a running fleet demo first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BIN=$REPO/build
DEMO=${FLEET_DEMO_DIR:-demo-fleet}
mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)
CONTROL=$DEMO/control
PKI=$DEMO/pki
HOST=api.example.test
SITE=example.test
CLUSTER=demo
EDGES=(edge-1 edge-2)

DEMO_WHO="fleet demo"
CTL_STATE=$CONTROL
# prog_of NAME: edge-N runs mtls-edged; etcd, edge-upstream themselves.
prog_of() {
	local p=${1%%-[0-9]*}
	[ "$p" = edge ] && p=mtls-edged
	echo "$p"
}
# shellcheck source=config/demo-lib.sh
. "$REPO/config/demo-lib.sh"

# the edges first, while etcd answers them; etcd last
stop() {
	local e
	for e in "${EDGES[@]}"; do stop_one "$e"; done
	stop_one edge-upstream
	stop_one etcd
}

# free_port FROM: the first port from FROM on that nothing on 127.0.0.1 listens on.
free_port() {
	local p=$1
	while (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		p=$((p + 1))
		((p < $1 + 100)) || die "no free port in $1..$p"
	done
	echo "$p"
}

# spawn NAME LOG CMD...: CMD in a session of its own, its pid in NAME.pid.
spawn() {
	local name=$1 log=$2
	shift 2
	setsid "$@" </dev/null >>"$log" 2>&1 &
	echo $! >"$DEMO/$name.pid"
}

start() {
	local b t cport pport etcd_url up_port port rev k e
	local -a ports=()
	for b in mtls-edged mtls-edgectl edge-upstream; do
		[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make first"
	done
	for t in etcd openssl curl jq; do
		command -v "$t" >/dev/null || die "$t is missing (make deps-fleet installs it)"
	done

	stop
	trap 'stop' EXIT # a failed start leaves nothing running
	rm -rf "$CONTROL" "$PKI" "$DEMO/etcd" "$DEMO"/edge-*
	rm -f "$DEMO"/*.crt "$DEMO"/*.key "$DEMO"/*.log "$DEMO"/*.conf "$DEMO"/*.port
	umask 077
	mkdir -p "$CONTROL" "$PKI"

	# etcd: one member, plain HTTP on loopback
	cport=$(free_port 2379)
	pport=$(free_port $((cport + 1)))
	etcd_url=http://127.0.0.1:$cport
	spawn etcd "$DEMO/etcd.log" etcd --name demo1 --data-dir "$DEMO/etcd" \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "demo1=http://127.0.0.1:$pport" --log-level warn
	for ((k = 0; k < 100; k++)); do
		curl -sf --max-time 1 "$etcd_url/health" >/dev/null 2>&1 && break
		pid_of etcd >/dev/null || die "etcd did not start: $(tail -5 "$DEMO/etcd.log")"
		sleep 0.1
	done
	curl -sf --max-time 1 "$etcd_url/health" >/dev/null || die "etcd does not answer: $(tail -5 "$DEMO/etcd.log")"
	say "fleet demo: etcd on $etcd_url (state in $DEMO/etcd)"

	# the control store: the built-in CA, an SNI object, two client certificates, then the
	# fleet (fleet init publishes what the store has; every later command publishes itself)
	ctl init --site "$SITE"
	server_pki
	spawn edge-upstream "$DEMO/edge-upstream.log" "$BIN/edge-upstream" --listen 127.0.0.1:0 \
		--port-file "$DEMO/upstream.port" --access-log "$DEMO/upstream-access.log"
	wait_for "$DEMO/upstream.port" '^[0-9]+$' "$(pid_of edge-upstream)" 20 ||
		die "edge-upstream did not start: $(cat "$DEMO/edge-upstream.log")"
	up_port=$(<"$DEMO/upstream.port")
	ctl sni add "$HOST" --cert "$PKI/$HOST.crt" --key "$PKI/$HOST.key" \
		--upstream "127.0.0.1:$up_port" --protocol http --alpn h2,http/1.1
	ctl cert create --cn alice --out "$DEMO/alice"
	ctl cert create --cn bob --out "$DEMO/bob"
	ctl fleet init --etcd "$etcd_url" --cluster "$CLUSTER"
	rev=$("$BIN/mtls-edgectl" --state "$CONTROL" fleet status --json 2>/dev/null | jq -r .commit_revision)
	say "fleet demo: control store $CONTROL, cluster $CLUSTER published at etcd revision $rev"

	# two edges: each its own state directory (its replica) and port, one watch each
	port=8543
	for e in "${EDGES[@]}"; do
		port=$(free_port "$port")
		ports+=("$port")
		printf '[fleet]\netcd = %s\ncluster = %s\nnode = %s\n' "$etcd_url" "$CLUSTER" "$e" \
			>"$DEMO/$e.conf"
		spawn "$e" "$DEMO/$e.log" "$BIN/mtls-edged" --state "$DEMO/$e" \
			--listen "127.0.0.1:$port" --workers 1 --log-level info --bpf off -c "$DEMO/$e.conf"
		if ! wait_for "$DEMO/$e.log" "fleet: revision $rev applied" "$(pid_of "$e")" 20; then
			tail -n 20 "$DEMO/$e.log" >&2
			die "$e did not take the cluster's configuration (log above, $DEMO/$e.log)"
		fi
		port=$((port + 1))
	done
	trap - EXIT
	printf '%s\n' "${ports[@]}" >"$DEMO/edges.port"

	local cb="curl --cacert $PKI/server-ca.crt"
	for k in 0 1; do
		say "fleet demo: ${EDGES[k]} on 127.0.0.1:${ports[k]} (pid $(pid_of "${EDGES[k]}"), replica in $DEMO/${EDGES[k]})"
	done
	say
	for k in 0 1; do
		local url="https://$HOST:${ports[k]}/"
		say "\$ $cb --resolve $HOST:${ports[k]}:127.0.0.1 --cert $DEMO/alice.crt --key $DEMO/alice.key $url"
		curl --cacert "$PKI/server-ca.crt" --resolve "$HOST:${ports[k]}:127.0.0.1" -sS --max-time 10 \
			--cert "$DEMO/alice.crt" --key "$DEMO/alice.key" "$url" 2>&1 || say "fleet demo: that request failed; see $DEMO/${EDGES[k]}.log"
	done
	cat <<EOF

Try, from $REPO:
  # alice through each edge (both follow the control through etcd)
  $cb --resolve $HOST:${ports[0]}:127.0.0.1 --cert $DEMO/alice.crt --key $DEMO/alice.key https://$HOST:${ports[0]}/
  $cb --resolve $HOST:${ports[1]}:127.0.0.1 --cert $DEMO/alice.crt --key $DEMO/alice.key https://$HOST:${ports[1]}/
  # revoke alice at the control: etcd takes it first, both edges refuse her within a moment
  $BIN/mtls-edgectl --state $CONTROL cert revoke \$($BIN/mtls-edgectl --state $CONTROL cert list --json | jq -r '.[] | select(.cn=="alice") | .serial') --yes
  $cb --resolve $HOST:${ports[1]}:127.0.0.1 --cert $DEMO/alice.crt --key $DEMO/alice.key https://$HOST:${ports[1]}/
  # bob still gets in
  $cb --resolve $HOST:${ports[1]}:127.0.0.1 --cert $DEMO/bob.crt --key $DEMO/bob.key https://$HOST:${ports[1]}/
  # the control's revision and each edge's, as the edges report it in etcd
  $BIN/mtls-edgectl --state $CONTROL fleet status
  # an edge's replica refuses changes: configuration comes from the control only
  $BIN/mtls-edgectl --state $DEMO/edge-1 site add other.test

Logs: $DEMO/edge-1.log, $DEMO/edge-2.log ("fleet: revision R applied"), $DEMO/etcd.log
Stop the fleet demo with: make stop-fleet
EOF
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
	echo "usage: config/fleet-demo.sh start|stop" >&2
	exit 2
	;;
esac
