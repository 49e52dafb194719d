#!/usr/bin/env bash
# The demo behind `make run` / `make stop`.
#
#   config/demo.sh start    fresh demo state in ./demo/, starts edge-upstream and mtls-edged on
#                           loopback, shows one verified request and the commands to try
#   config/demo.sh stop     stops the processes recorded in ./demo/*.pid (and nothing else)
#
# start stops a running demo first, so it can be run again at any time.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BIN=build
DEMO=demo
STATE=$DEMO/state
PKI=$DEMO/pki
HOST=api.example.test
SITE=example.test
FIRST_PORT=8443

DEMO_WHO=demo
CTL_STATE=$STATE
prog_of() { echo "$1"; }
# shellcheck source=config/demo-lib.sh
. "$REPO/config/demo-lib.sh"

stop() {
	stop_one mtls-edged
	stop_one edge-upstream
}

# port_busy PORT: something listens on 127.0.0.1:PORT (or on every address).
port_busy() {
	(: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	local b up_pid edge_pid up_port port out
	for b in mtls-edged mtls-edgectl edge-upstream; do
		[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make first"
	done
	command -v openssl >/dev/null || die "openssl is missing (make deps)"
	command -v curl >/dev/null || die "curl is missing (make deps)"

	stop
	trap 'stop' EXIT # a failed start leaves nothing running
	rm -rf "$STATE" "$PKI"
	rm -f "$DEMO"/*.crt "$DEMO"/*.key "$DEMO"/*.log "$DEMO"/*.port
	umask 077
	mkdir -p "$DEMO" "$STATE" "$PKI"

	say "demo: state in $DEMO/ (site $SITE, hostname $HOST)"
	ctl init --site "$SITE"
	server_pki

	setsid "$BIN/edge-upstream" --listen 127.0.0.1:0 --port-file "$DEMO/upstream.port" \
		--access-log "$DEMO/upstream-access.log" </dev/null >>"$DEMO/edge-upstream.log" 2>&1 &
	up_pid=$!
	echo "$up_pid" >"$DEMO/edge-upstream.pid"
	wait_for "$DEMO/upstream.port" '^[0-9]+$' "$up_pid" ||
		die "edge-upstream did not start: $(cat "$DEMO/edge-upstream.log")"
	up_port=$(<"$DEMO/upstream.port")

	# HTTP read both ways (the upstream keep-alive pool); h2 from clients terminated by the edge
	ctl sni add "$HOST" --cert "$PKI/$HOST.crt" --key "$PKI/$HOST.key" --upstream "127.0.0.1:$up_port" \
		--protocol http --alpn h2,http/1.1
	ctl cert create --cn alice --out "$DEMO/alice"
	ctl cert create --cn bob --out "$DEMO/bob"

	port=$FIRST_PORT
	while port_busy "$port"; do
		port=$((port + 1))
		((port < FIRST_PORT + 100)) || die "no free port in $FIRST_PORT..$port"
	done
	# eBPF enforcement stays off in the demo: it would attach to this host's lo and, by
	# design, stay attached after 'make stop' (README: [bpf] mode).
	setsid "$BIN/mtls-edged" --state "$STATE" --listen "127.0.0.1:$port" --log-level info \
		--bpf off </dev/null >>"$DEMO/mtls-edged.log" 2>&1 &
	edge_pid=$!
	echo "$edge_pid" >"$DEMO/mtls-edged.pid"
	if ! wait_for "$DEMO/mtls-edged.log" "listening addr=127\.0\.0\.1:$port" "$edge_pid"; then
		tail -n 20 "$DEMO/mtls-edged.log" >&2
		die "mtls-edged did not start (log above, $DEMO/mtls-edged.log)"
	fi
	trap - EXIT

	local curl_base="curl --resolve $HOST:$port:127.0.0.1 --cacert $PKI/server-ca.crt"
	local url="https://$HOST:$port/"
	local curl_args=(--resolve "$HOST:$port:127.0.0.1" --cacert "$PKI/server-ca.crt")
	say "demo: edge-upstream on 127.0.0.1:$up_port (pid $up_pid), mtls-edged on 127.0.0.1:$port (pid $edge_pid)"
	say
	say "\$ $curl_base --cert $DEMO/alice.crt --key $DEMO/alice.key $url"
	if out=$(curl "${curl_args[@]}" -sS --max-time 10 --cert "$DEMO/alice.crt" --key "$DEMO/alice.key" "$url" 2>&1); then
		say "$out"
	else
		say "$out"
		say "demo: the verified request failed; see $DEMO/mtls-edged.log"
	fi
	cat <<EOF

Try, from $REPO:
  # alice and bob hold client certificates from the built-in CA: both get the upstream's answer
  $curl_base --cert $DEMO/alice.crt --key $DEMO/alice.key $url
  $curl_base --cert $DEMO/bob.crt --key $DEMO/bob.key ${url}echo
  # HTTP/2: the edge terminates it and asks the upstream in HTTP/1.1 (the echo shows the request)
  $curl_base --http2 -w '%{http_version}\n' --cert $DEMO/alice.crt --key $DEMO/alice.key ${url}echo
  # no client certificate: refused during the handshake (TLS 1.3 certificate_required)
  $curl_base $url
  # the handshake in detail
  openssl s_client -connect 127.0.0.1:$port -servername $HOST -CAfile $PKI/server-ca.crt -cert $DEMO/alice.crt -key $DEMO/alice.key
  # the state
  $BIN/mtls-edgectl --state $STATE sni list
  $BIN/mtls-edgectl --state $STATE cert list

One log line per handshake: $DEMO/mtls-edged.log   (tail -f it while you try the commands)
Stop the demo with: make stop
EOF
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
	echo "usage: config/demo.sh start|stop" >&2
	exit 2
	;;
esac
