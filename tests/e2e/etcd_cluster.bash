# A real etcd cluster for the fleet tests (Debian's etcd 3.4): TLS on the client and peer URLs
# (client certificates required both ways), auth with a user per node. Each member on a
# loopback address of its own (127.0.1.K: these need no configuration on lo), or with
# ETCD_ON_HOSTS=1 each member a host of its own (hosts.bash: host K's namespace, 10.77.0.K,
# ports 2379 and 2380). Loaded after helpers (which gives DIR, PIDS, retry, fail). Every
# process is started here, recorded in ETCD_PIDS and PIDS, and stopped by pid.
# shellcheck shell=bash
# shellcheck disable=SC2154 # status and output are set by bats' run

ETCD_PIDS=()
ETCD_AUTH=0

# etcd_pki DIR: a CA (etcd-ca.crt), a server certificate for every member address, and the
# client certificates etcd_client_cert makes. Client certificates have no CommonName: with auth
# on, etcd 3.4's JSON gateway refuses one that has ("CommonName of client ... will be ignored").
etcd_pki() {
	local d=$1 k san="IP:127.0.0.1"
	mkdir -p "$d"
	for k in 1 2 3 4 5; do san+=",IP:127.0.1.$k,IP:10.77.0.$k"; done
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 \
		-keyout "$d/etcd-ca.key" -out "$d/etcd-ca.crt" -subj "/CN=etcd test CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>/dev/null 2>&1 || fail "openssl: no etcd CA"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/server.key" \
		-out "$d/server.csr" -subj "/O=etcd test/OU=member" >/dev/null 2>&1 || fail "openssl: no server key"
	openssl x509 -req -in "$d/server.csr" -CA "$d/etcd-ca.crt" -CAkey "$d/etcd-ca.key" -CAcreateserial \
		-days 400 -out "$d/server.crt" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") \
		>/dev/null 2>&1 || fail "openssl: no server certificate"
	ETCD_CA=$d/etcd-ca.crt
	ETCD_PKI=$d
	export ETCD_CA ETCD_PKI
}

# etcd_client_cert DIR NAME: DIR/NAME.crt and NAME.key (O=mtls-edge, OU=NAME, no CN).
etcd_client_cert() {
	local d=$1 n=$2
	[ -s "$d/$n.crt" ] && return 0
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$n.key" \
		-out "$d/$n.csr" -subj "/O=mtls-edge/OU=$n" >/dev/null 2>&1 || fail "openssl: no key for $n"
	openssl x509 -req -in "$d/$n.csr" -CA "$d/etcd-ca.crt" -CAkey "$d/etcd-ca.key" -CAcreateserial \
		-days 400 -out "$d/$n.crt" -extfile <(printf 'extendedKeyUsage=clientAuth\n') >/dev/null 2>&1 ||
		fail "openssl: no certificate for $n"
	chmod 600 "$d/$n.key"
}

# free_port_on ADDR: a port nothing listens on at ADDR (bound and released).
free_port_on() {
	python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

# etcd_member_run K [new|existing]: starts member K with its flags (data dir kept).
etcd_member_run() {
	local k=$1 state=${2:-existing} in=() a=${ETCD_ADDR[$1]}
	if [ "${ETCD_ON_HOSTS:-0}" = 1 ]; then
		host_in "$k"
		in=("${HOST_IN[@]}")
	fi
	"${in[@]}" etcd --name "m$k" --data-dir "$ETCD_DIR/m$k" \
		--listen-client-urls "https://$a:${ETCD_CPORT[k]}" \
		--advertise-client-urls "https://$a:${ETCD_CPORT[k]}" \
		--listen-peer-urls "https://$a:${ETCD_PPORT[k]}" \
		--initial-advertise-peer-urls "https://$a:${ETCD_PPORT[k]}" \
		--initial-cluster "$ETCD_INITIAL" --initial-cluster-state "$state" \
		--initial-cluster-token mtls-edge-test \
		--cert-file "$ETCD_PKI/server.crt" --key-file "$ETCD_PKI/server.key" \
		--client-cert-auth --trusted-ca-file "$ETCD_CA" \
		--peer-cert-file "$ETCD_PKI/server.crt" --peer-key-file "$ETCD_PKI/server.key" \
		--peer-client-cert-auth --peer-trusted-ca-file "$ETCD_CA" \
		--heartbeat-interval 50 --election-timeout 500 \
		--experimental-watch-progress-notify-interval 1s \
		--log-level warn >>"$ETCD_DIR/m$k.log" 2>&1 3>&- &
	ETCD_PIDS[k]=$!
	PIDS+=("${ETCD_PIDS[k]}")
}

# etcd_ctl ARGS...: etcdctl on every member (ETCD_CTL_EP: on those), as root when auth is on.
etcd_ctl() {
	local user=()
	[ "$ETCD_AUTH" = 1 ] && user=(--user "root:$(cat "$ETCD_DIR/pw-root")")
	ETCDCTL_API=3 etcdctl --endpoints="${ETCD_CTL_EP:-$ETCD_ENDPOINTS}" --cacert "$ETCD_CA" \
		--cert "$ETCD_PKI/control.crt" --key "$ETCD_PKI/control.key" --dial-timeout 2s \
		--command-timeout 5s "${user[@]}" "$@"
}

# etcd_wait_healthy: every member running answers (bounded: 30 s).
etcd_wait_healthy() {
	local ep
	for ep in ${ETCD_ENDPOINTS//,/ }; do
		# shellcheck disable=SC2016 # for the inner shell
		retry 600 0.05 bash -c 'ETCDCTL_API=3 etcdctl --endpoints="$1" --cacert "$2" --cert "$3" --key "$4" \
			--dial-timeout 1s --command-timeout 2s endpoint health' _ \
			"$ep" "$ETCD_CA" "$ETCD_PKI/control.crt" "$ETCD_PKI/control.key" ||
			fail "etcd member $ep is not healthy: $(tail -5 "$ETCD_DIR"/m*.log)"
	done
}

# etcd_cluster_start N: N members (1 or 3), healthy; ETCD_ENDPOINTS, ETCD_DIR.
etcd_cluster_start() {
	local n=$1 k
	ETCD_DIR=$DIR/etcd-data
	mkdir -p "$ETCD_DIR"
	etcd_client_cert "$ETCD_PKI" control
	ETCD_ADDR=() ETCD_CPORT=() ETCD_PPORT=() ETCD_INITIAL="" ETCD_ENDPOINTS=""
	for ((k = 1; k <= n; k++)); do
		if [ "${ETCD_ON_HOSTS:-0}" = 1 ]; then
			host_add "$k"
			ETCD_ADDR[k]=$(host_ip "$k") ETCD_CPORT[k]=2379 ETCD_PPORT[k]=2380
		else
			ETCD_ADDR[k]=127.0.1.$k
			ETCD_CPORT[k]=$(free_port_on "127.0.1.$k")
			ETCD_PPORT[k]=$(free_port_on "127.0.1.$k")
		fi
		ETCD_INITIAL+="${ETCD_INITIAL:+,}m$k=https://${ETCD_ADDR[k]}:${ETCD_PPORT[k]}"
		ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}https://${ETCD_ADDR[k]}:${ETCD_CPORT[k]}"
	done
	export ETCD_DIR ETCD_ENDPOINTS
	for ((k = 1; k <= n; k++)); do etcd_member_run "$k" new; done
	etcd_wait_healthy
}

# etcd_member_kill K: SIGKILL, as a crash.
etcd_member_kill() {
	kill -KILL "${ETCD_PIDS[$1]}" 2>/dev/null || true
	wait "${ETCD_PIDS[$1]}" 2>/dev/null || true
}

# etcd_member_start K: member K again, on its data.
etcd_member_start() {
	etcd_member_run "$1" existing
}

# etcd_cluster_stop: every member, by pid.
etcd_cluster_stop() {
	local p
	# KILL: a member stopped with TERM while the others go waits seconds to hand its leadership
	for p in "${ETCD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${ETCD_PIDS[@]}"; do wait_pid "$p" 5 >/dev/null 2>&1 || kill -KILL "$p" 2>/dev/null || true; done
	ETCD_PIDS=()
}

# etcd_snapshot_save FILE: a backup of the cluster's data (etcdctl snapshot save, from member 1).
etcd_snapshot_save() {
	ETCD_CTL_EP="https://${ETCD_ADDR[1]}:${ETCD_CPORT[1]}" etcd_ctl snapshot save "$1" >/dev/null ||
		fail "etcd: snapshot save failed"
}

# etcd_cluster_restore FILE: the disaster and its remedy: every member killed, its data
# replaced by FILE's (etcdctl snapshot restore, as etcd's recovery guide does it), all started
# again. etcd is as it was at the backup, revision included.
etcd_cluster_restore() {
	local f=$1 k n=${#ETCD_ADDR[@]}
	for ((k = 1; k <= n; k++)); do etcd_member_kill "$k"; done
	for ((k = 1; k <= n; k++)); do
		rm -rf "${ETCD_DIR:?}/m$k"
		ETCDCTL_API=3 etcdctl snapshot restore "$f" --name "m$k" --data-dir "$ETCD_DIR/m$k" \
			--initial-cluster "$ETCD_INITIAL" --initial-cluster-token mtls-edge-test \
			--initial-advertise-peer-urls "https://${ETCD_ADDR[k]}:${ETCD_PPORT[k]}" \
			>>"$ETCD_DIR/restore.log" 2>&1 || fail "etcd: restore failed: $(tail -5 "$ETCD_DIR/restore.log")"
	done
	for ((k = 1; k <= n; k++)); do etcd_member_run "$k" new; done
	etcd_wait_healthy
}

# etcd_auth_setup PREFIX NODE...: users with passwords (ETCD_DIR/pw-NAME, 0600): root; control
# (readwrite on PREFIX); each NODE (read on PREFIX, readwrite on PREFIX/status/NODE only).
# Then auth on.
etcd_auth_setup() {
	local prefix=$1 u
	shift
	for u in root control "$@"; do
		head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$ETCD_DIR/pw-$u"
		chmod 600 "$ETCD_DIR/pw-$u"
		etcd_ctl user add "$u" --new-user-password="$(cat "$ETCD_DIR/pw-$u")" >/dev/null ||
			fail "etcd: cannot add user $u"
	done
	etcd_ctl user grant-role root root >/dev/null
	etcd_ctl role add control >/dev/null
	etcd_ctl role grant-permission control readwrite "$prefix" --prefix=true >/dev/null
	etcd_ctl user grant-role control control >/dev/null
	for u in "$@"; do
		etcd_ctl role add "$u" >/dev/null
		etcd_ctl role grant-permission "$u" read "$prefix" --prefix=true >/dev/null
		etcd_ctl role grant-permission "$u" readwrite "${prefix}status/$u" >/dev/null
		etcd_ctl user grant-role "$u" "$u" >/dev/null
	done
	etcd_ctl auth enable >/dev/null || fail "etcd: auth enable failed"
	ETCD_AUTH=1
}

# etcd_revision: the cluster's revision now.
etcd_revision() {
	etcd_ctl get / --prefix --limit 1 -w json | jq -r .header.revision
}

# etcd_compact: compacts the history up to the revision now.
etcd_compact() {
	etcd_ctl compaction "$(etcd_revision)" >/dev/null || fail "etcd: compaction failed"
}

