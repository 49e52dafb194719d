# Hosts for the fleet tests: each one a network namespace of its own (ip netns), joined by a
# veth pair to one bridge in the test's namespace, which is the control host (mtls-edgectl,
# curl and the demo upstream run there, at 10.77.0.254). Host K is at 10.77.0.K. Nothing
# leaves the test's namespace: tests/run.sh gives the file one of its own, and
# hosts_setup refuses to build the bridge in a namespace that has other links.
# shellcheck shell=bash

HOSTS_NET=10.77.0
HOSTS_CONTROL=$HOSTS_NET.254
HOSTS=()

# hosts_setup: the bridge (flbr) and the control's address on it.
hosts_setup() {
	local other
	command -v ip >/dev/null || skip "ip (iproute2) is not installed"
	other=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
		grep -vxE 'lo|flbr|flv[0-9]+' || true)
	[ -z "$other" ] || skip "this namespace has other links ($other): run the file through tests/run.sh, which gives it a network namespace of its own"
	HOSTS_TAG=mefl$$
	ip link del flbr 2>/dev/null || true
	ip link add flbr type bridge || fail "ip: cannot add a bridge"
	ip addr add "$HOSTS_CONTROL/24" dev flbr
	ip link set flbr up
	export HOSTS_TAG
}

# host_ns K: the name of host K's network namespace.
host_ns() {
	echo "$HOSTS_TAG-$1"
}

# host_ip K: host K's address.
host_ip() {
	echo "$HOSTS_NET.$1"
}

# host_add K: host K, its namespace with lo and eth0 (10.77.0.K) on the bridge.
host_add() {
	local k=$1 ns
	ns=$(host_ns "$k")
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns" || fail "ip: cannot add namespace $ns"
	HOSTS+=("$k")
	ip link add "flv$k" type veth peer name eth0 netns "$ns" || fail "ip: no veth for host $k"
	ip link set "flv$k" master flbr up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$(host_ip "$k")/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# host_in K: HOST_IN, the words that run a command in host K's namespace:
# "${HOST_IN[@]}" CMD... & gives CMD's pid in $! (bash forks once, ip netns exec execs CMD).
host_in() {
	# shellcheck disable=SC2034 # for the caller
	HOST_IN=(ip netns exec "$(host_ns "$1")")
}

# host_link K up|down: host K's cable in or out (its processes go on; no packet passes).
host_link() {
	ip link set "flv$1" "$2"
}

# hosts_teardown: every host's namespace and the bridge. Processes still in a namespace keep
# it until they end (the caller stops them by pid first).
hosts_teardown() {
	local k
	for k in "${HOSTS[@]}"; do
		ip netns del "$(host_ns "$k")" 2>/dev/null || true
		ip link del "flv$k" 2>/dev/null || true
	done
	HOSTS=()
	ip link del flbr 2>/dev/null || true
}
