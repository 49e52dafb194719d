#!/usr/bin/env bats
# Issue 19, end to end: post-quantum ClientHellos (an X25519MLKEM768 key share of 1,216 bytes,
# 1.6 KB in all) cut by TCP into two segments at a 1500-byte MTU. A veth pair joins this test's
# network namespace (the daemon's, made by tests/run.sh with unshare -n) to a client namespace
# the test makes (held by a sleeping process it starts); the client side sends one MSS per skb,
# as a NIC does, so tc sees the segments one by one. A repeat offender's crafted ClientHello for
# its hostname is dropped in the kernel (no answer), with server_name in the first segment and in
# the second; another hostname is answered.

load ../helpers

setup_file() {
	if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ]; then
		echo "# refusing to make interfaces in the host's namespace: run me as tests/run.sh does" >&3
		echo "# (unshare -n -- bash -c 'ip link set lo up; bats tests/e2e/netns/bpf_segments.bats')" >&3
		return 1
	fi
	[ "$(id -u)" -eq 0 ] || skip "eBPF enforcement needs root (CAP_BPF, CAP_NET_ADMIN)"
}

setup() {
	requires python3 nsenter unshare ip bpftool
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	add_sni other.example.test --mtls optional
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	PIN=/sys/fs/bpf/mtls-edge-seg-$$-$BATS_TEST_NUMBER
	export PIN
	peer_setup
}

teardown() {
	stop_all
	ip link del "$VETH" 2>/dev/null || true
	rm -rf "$PIN"
}

# peer_setup: the client's namespace (a sleeping process of this test holds it; stop_all ends
# it, and the namespace and its end of the veth go with it) and the veth pair, MTU 1500:
# $VETH $NET.1 here, ${VETH}c $NET.2 there.
peer_setup() {
	VETH=vseg$BATS_TEST_NUMBER
	NET=10.77.$BATS_TEST_NUMBER
	unshare -n sleep 600 3>&- &
	PEER_PID=$!
	track_pid "$PEER_PID"
	# shellcheck disable=SC2016 # expanded by the inner shell
	retry 100 0.05 bash -c '[ "$(readlink /proc/$1/ns/net)" != "$(readlink /proc/self/ns/net)" ]' \
		_ "$PEER_PID" || fail "the client namespace did not come up"
	ip link add "$VETH" mtu 1500 type veth peer name "${VETH}c" mtu 1500 ||
		fail "cannot make a veth pair"
	ip link set "${VETH}c" netns "$PEER_PID"
	ip addr add "$NET.1/24" dev "$VETH"
	ip link set "$VETH" up
	in_peer ip link set lo up
	in_peer ip addr add "$NET.2/24" dev "${VETH}c"
	# Without this a 1.6 KB write crosses the veth as one GSO packet, which tc sees whole.
	in_peer ip link set "${VETH}c" gso_max_segs 1 up
	export VETH NET PEER_PID
}

# in_peer CMD...: CMD in the client's network namespace.
in_peer() {
	nsenter -t "$PEER_PID" -n "$@"
}

# daemon_on_veth: the daemon with a drop rule for api.example.test, listening on the veth too
# (it attaches to the interfaces of its listen addresses); sets VPORT.
daemon_on_veth() {
	run ctl rule add --host api.example.test --action drop
	assert_success
	printf '[bpf]\noffender_ttl = 60s\n' >"$DIR/edged.conf"
	BPF_MODE=on start_daemon -c "$DIR/edged.conf" --bpf-pin-dir "$PIN" --listen "$NET.1:0"
	retry 40 0.05 grep -q "listening addr=$NET\.1:" "$LOG" || fail "no listener on $NET.1"
	VPORT=$(grep -o "listening addr=$NET\.1:[0-9]*" "$LOG" | head -n1)
	VPORT=${VPORT##*:}
	assert grep -q "bpf=on: tc ingress on.* $VETH" "$LOG"
	export VPORT
}

# offend: mallory's certificate fails on api.example.test from the client namespace; the daemon
# drops the connection and records $NET.2 as an offender for the hostname.
offend() {
	log_mark
	run in_peer curl -sS --max-time 3 --resolve "api.example.test:$VPORT:$NET.1" \
		--cacert "$PKI/server-ca.crt" --cert "$DIR/mallory.crt" --key "$DIR/mallory.key" \
		"https://api.example.test:$VPORT/"
	assert_failure
	wait_log "bpf tagged peer=$NET\.2:[0-9]+ sni=api.example.test"
}

# The crafted ClientHello, as Chrome sends one: GREASE, supported_groups, a key_share of
# X25519MLKEM768 (1,216 bytes) and X25519, signature_algorithms, supported_versions (TLS 1.3),
# ALPN, an ECH GREASE of 218 bytes; server_name first or last (argv: host addr port
# first|last). One send() on a plain TCP socket: TCP cuts it at the MSS. Prints "answered N"
# (exit 0) when the server sends anything within 4 s, "closed" (exit 2), or "silent" (exit 1).
BIG_HELLO_PY='
import os, socket, struct, sys
host, addr, port, where = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def ext(t, body): return struct.pack("!HH", t, len(body)) + body
name = host.encode()
sni = ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
shares = struct.pack("!HH", 0x11ec, 1216) + os.urandom(1216) + struct.pack("!HH", 0x1d, 32) + os.urandom(32)
rest = (ext(0x0a0a, b"") + ext(10, struct.pack("!HHH", 4, 0x11ec, 0x1d))
	+ ext(51, struct.pack("!H", len(shares)) + shares)
	+ ext(13, struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401))
	+ ext(43, bytes([2, 3, 4])) + ext(45, bytes([1, 1]))
	+ ext(16, struct.pack("!H", 12) + b"\x02h2\x08http/1.1")
	+ ext(0xfe0d, os.urandom(218)))
exts = sni + rest if where == "first" else rest + sni
body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32)
	+ struct.pack("!HHHH", 6, 0x1301, 0x1302, 0x1303) + b"\x01\x00"
	+ struct.pack("!H", len(exts)) + exts)
hs = b"\x01" + len(body).to_bytes(3, "big") + body
hello = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
assert len(hello) > 1500, len(hello)
s = socket.create_connection((addr, port), timeout=4)
s.sendall(hello)
try:
	got = s.recv(65536)
except socket.timeout:
	print("silent")
	sys.exit(1)
print("answered %d" % len(got) if got else "closed")
sys.exit(0 if got else 2)
'

# big_hello HOST first|last: the crafted ClientHello from the client namespace to the veth
# listener.
big_hello() {
	in_peer timeout 10 python3 -c "$BIG_HELLO_PY" "$1" "$NET.1" "$VPORT" "$2"
}

# bpf_stat INDEX: a counter of the program's stats map (enum edge_stat in bpf/edge_maps.h),
# summed over the CPUs, read with bpftool from the pin; 0 for a slot the map does not have.
bpf_stat() {
	bpftool -j map lookup pinned "$PIN/stats" key "$1" 0 0 0 2>/dev/null | python3 -c '
import json, sys
d = json.loads(sys.stdin.read() or "null") or {}
v = d.get("values", [])
print(sum(int.from_bytes(bytes(int(b, 16) for b in x["value"]), "little")
	if isinstance(x["value"], list) else int(x["value"]) for x in v))'
}

STAT_HELLO_DROPS=2
STAT_HELLOS_SPLIT=5

@test "a 1.6 KB ClientHello crosses the veth in two segments: answered when nobody is blocked" {
	daemon_on_veth
	split=$(bpf_stat $STAT_HELLOS_SPLIT)
	run big_hello api.example.test last
	assert_success
	assert_output --regexp '^answered [0-9]+$'
	[ "$(bpf_stat $STAT_HELLOS_SPLIT)" -gt "$split" ] ||
		fail "the program did not follow the ClientHello into its second segment"
}

@test "offender, server_name after the key share (second segment): dropped, no answer" {
	daemon_on_veth
	offend
	drops=$(bpf_stat $STAT_HELLO_DROPS)
	split=$(bpf_stat $STAT_HELLOS_SPLIT)
	log_mark
	run big_hello api.example.test last
	assert_failure
	assert_output silent
	[ "$(bpf_stat $STAT_HELLO_DROPS)" -gt "$drops" ] || fail "hello_drops did not move"
	[ "$(bpf_stat $STAT_HELLOS_SPLIT)" -gt "$split" ] || fail "hellos_split did not move"
	# The first segment reached the daemon; the second, and its retransmissions, never did.
	if log_since | grep -E "handshake peer=$NET\.2:[0-9]+ sni=api.example.test verdict="; then
		fail "the daemon finished a handshake with the offender"
	fi
	# The same source, another hostname: answered.
	run big_hello other.example.test last
	assert_success
	assert_output --regexp '^answered [0-9]+$'
}

@test "offender, server_name before the key share (the record goes on): dropped, no answer" {
	daemon_on_veth
	offend
	drops=$(bpf_stat $STAT_HELLO_DROPS)
	run big_hello api.example.test first
	assert_failure
	assert_output silent
	[ "$(bpf_stat $STAT_HELLO_DROPS)" -gt "$drops" ] || fail "hello_drops did not move"
	run big_hello other.example.test first
	assert_success
	assert_output --regexp '^answered [0-9]+$'
}
