#!/usr/bin/env bash
# bench/run.sh: mtls-edged side by side with nginx and HAProxy, and against `openssl speed`.
#
# Usage: bench/run.sh [--smoke] [--runs N] [--duration S] [--wait-quiet S] [--out DIR] [--keep]
#
#   (default)   5 runs per cell, 10 s per load run; report in bench/results/<UTC time>.md,
#               copied to bench/results/latest.md (+ .png); about 30 minutes.
#   --smoke     1 run per cell, 1 s per load run, report in build/bench-smoke/; then checks
#               that the report is well formed (bench/check-report.sh) and exits non-zero if
#               not. Never asserts a time or a ratio. About 70 s. tests/run.sh runs it.
#   --runs N, --duration S   override the number of runs and the seconds per load run.
#   --wait-quiet S  first wait up to S seconds for the machine to be idle (both CPUs under 10%
#               busy over 2 s); the report says how busy it was during the load runs anyway.
#   --out DIR   write the report there instead.   --keep   keep the temp dir (configs, logs).
#   --only LIST comma-separated cells to run, for working on one of them: ka1k ka64k ka1m
#               hs rules stime fail bpf speed ref mem h2 scale fleet ktls; the others read NaN.
#               Never copied to latest.md.
#   --ktls      on a kernel with kTLS (refused where there is none): mtls-edged runs with
#               [tls] ktls = on and its SNI objects default to --protocol tcp (BENCH_PROTOCOL),
#               so verified sessions take the kTLS splice path; the ktls cell adds two servers
#               to the 64 KiB and 1 MiB keep-alive cells, mtls-edged on the userspace relay
#               ([tls] ktls = off) and nginx with `ssl_conf_command Options KTLS`, and the report
#               a section of its own ("The kTLS path"). /proc/net/tls_stat is checked to show
#               each kTLS server really offloads. bench/ktls-guest.sh runs it in the kTLS guest.
#   --ktls-guest  after the report is written, bench/ktls-guest.sh takes the kTLS section in the
#               kTLS guest and appends it to the report (make bench does this).
#   --build-only  build the bench's helpers (the wrk shim, tls-load) into build/bench and exit.
#
# Same certificates, same upstream (build/edge-upstream), same clients for the three servers
# under test; each server is pinned to CPU $BENCH_SUT_CPU (0), every client and the upstream to
# CPU $BENCH_LOAD_CPU (1). Runs are interleaved (run 1 of a cell on every server, then run 2...)
# so a drift of the machine does not favour one server. All load goes to 127.0.0.1, bounded
# in time; only the processes started here are stopped, by pid.
# The scale cell: SCALE_COUNT (50,000; --smoke 500; BENCH_SCALE_COUNT=N) idle verified connections
# held at once, their sources spread over 127.1.0.1 and up (SCALE_PER_SOURCE per address), in a
# network namespace of its own when root (fresh processes of the three servers, same binaries and
# configs, an edge-upstream of its own on the same port): 50,000 sockets, their ports and TIME_WAITs
# stay out of this host's loopback. The open files limit is raised here (ulimit -n, as root past
# the hard limit), nginx's and HAProxy's own limits by their configs.
# BENCH_EDGED_LOG=debug gives mtls-edged's log (kept with --keep) every handshake and close line.
# BENCH_EDGED_CONF=FILE runs mtls-edged with that config file (-c), e.g. to compare a setting.
# The h2 cell: h2load (100 streams per connection) through the same shim, two rows for mtls-edged.
# Like for like: nginx, HAProxy and mtls-edged terminating (h2t.bench.test: --protocol http,
# --alpn h2,http/1.1) take HTTP/2 and proxy each stream as HTTP/1.1 to the backend's HTTP/1.1
# port. The relay row (h2.bench.test: --protocol tcp, --alpn h2,http/1.1) is mtls-edged passing
# the HTTP/2 bytes unread to the backend's h2c port, whose nginx does the HTTP/2 work on the load
# CPU. One nginx backend on the load CPU serves both ports, the same 1 KiB answer.
# Requires: tools/deps.sh bench (wrk nginx-light haproxy gnuplot-nox nghttp2-client) and `make all`; the eBPF cell
# also root and unshare/nsenter (else its cells say "n/a: why"); it mounts a bpffs on /sys/fs/bpf
# for the run when none is there.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/build}
BENCH=$REPO/bench
SUT_CPU=${BENCH_SUT_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
SERVERS=(edged nginx haproxy)
declare -A NAME=([edged]=mtls-edged [nginx]=nginx [haproxy]=HAProxy)

SMOKE=0
KEEP=0
RUNS=
DUR=
OUT=
QUIET=0
ONLY=
KTLS=0
KTLS_GUEST_RUN=0
BUILD_ONLY=0
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--ktls) KTLS=1 ;;
	--ktls-guest) KTLS_GUEST_RUN=1 ;;
	--build-only) BUILD_ONLY=1 ;;
	--keep) KEEP=1 ;;
	--runs) RUNS=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--out) OUT=$2; shift ;;
	--wait-quiet) QUIET=$2; shift ;;
	--only) ONLY=,$2,; shift ;;
	-h | --help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$SMOKE" = 1 ]; then
	RUNS=${RUNS:-1} DUR=${DUR:-1} STIME_DUR=$DUR FAIL_DUR=$DUR BPF_DUR=1 HOLD_COUNT=200 SPEED_SECS=1
	SCALE_COUNT=${BENCH_SCALE_COUNT:-500}
	OUT=${OUT:-$BIN/bench-smoke}
else
	RUNS=${RUNS:-5} DUR=${DUR:-10} STIME_DUR=$(((DUR + 1) / 2)) FAIL_DUR=$(((DUR + 1) / 2)) BPF_DUR=$DUR
	HOLD_COUNT=1000 SPEED_SECS=3 SCALE_COUNT=${BENCH_SCALE_COUNT:-50000}
	OUT=${OUT:-$BENCH/results}
fi
[[ $RUNS =~ ^[1-9][0-9]?$ && $DUR =~ ^[1-9][0-9]{0,2}$ ]] ||
	{ echo "bench: --runs must be 1-99 and --duration 1-999" >&2; exit 2; }
if ! [[ $SCALE_COUNT =~ ^[1-9][0-9]{0,5}$ ]] || [ "$SCALE_COUNT" -gt 100000 ]; then
	echo "bench: BENCH_SCALE_COUNT must be 1-100000" >&2
	exit 2
fi
for c in ${ONLY//,/ }; do
	[[ $c =~ ^(ka1k|ka64k|ka1m|hs|rules|stime|fail|bpf|speed|ref|mem|h2|scale|fleet|ktls)$ ]] ||
		{ echo "bench: --only: unknown cell '$c' (ka1k ka64k ka1m hs rules stime fail bpf speed ref mem h2 scale fleet ktls)" >&2; exit 2; }
done
[ -z "$ONLY" ] || BENCH_NO_LATEST=1
# want CELL: whether --only (if given) names it; the ktls cell only with --ktls.
want() {
	[ "$1" != ktls ] || [ "$KTLS" = 1 ] || return 1
	[ -z "$ONLY" ] || [[ $ONLY == *",$1,"* ]]
}
if [[ $ONLY == *,ktls,* ]] && [ "$KTLS" = 0 ]; then
	echo "bench: --only ktls needs --ktls (a kernel with kTLS)" >&2
	exit 2
fi
if [ "$KTLS" = 1 ]; then
	BENCH_PROTOCOL=${BENCH_PROTOCOL:-tcp} # the splice path relays bytes unread
	# the kernel's TLS module, loaded if it is one (tcp_available_ulp lists it then)
	grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || modprobe tls 2>/dev/null || true
	if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
		echo "bench: --ktls: this kernel offers no kTLS (no \"tls\" in /proc/sys/net/ipv4/tcp_available_ulp, and modprobe tls did not add it: CONFIG_TLS is not set?); bench/ktls-guest.sh runs it in a guest with Debian's kernel" >&2
		exit 1
	fi
fi
CONNS=32           # wrk -c and tls-load --concurrency
SIZES=(1024 65536 1048576)
declare -A SIZE_ID=([1024]=1k [65536]=64k [1048576]=1m)

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- requirements
missing=()
for tool in wrk h2load nginx haproxy gnuplot openssl taskset cc pkg-config ss pgrep curl; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	msg="missing: ${missing[*]} (run tools/deps.sh bench; gnuplot comes from gnuplot-nox, h2load from nghttp2-client)"
	if [ "$SMOKE" = 1 ]; then
		printf 'bench smoke: SKIPPED: %s\n' "$msg" >&2
		exit 77
	fi
	die "$msg"
fi
for b in mtls-edged mtls-edgectl edge-upstream; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make all"
done
ncpu=$(nproc)
if [ "$SUT_CPU" -ge "$ncpu" ] || [ "$LOAD_CPU" -ge "$ncpu" ] || [ "$SUT_CPU" = "$LOAD_CPU" ]; then
	die "needs two CPUs (server on $SUT_CPU, load on $LOAD_CPU; this machine has $ncpu)"
fi
ulimit -n "$(ulimit -Hn)"
# The scale cell: mtls-edged has a client and an upstream socket per held connection, HAProxy
# reserves two per connection of its maxconn, tls-load and edge-upstream one each; raised for
# this run (past the hard limit too with CAP_SYS_RESOURCE: root outside a container).
SCALE_NOFILE=$((2 * SCALE_COUNT + 4096))
[ "$(ulimit -n)" -ge "$SCALE_NOFILE" ] || ulimit -n "$SCALE_NOFILE" 2>/dev/null || true
[ "$(ulimit -n)" -ge 4096 ] || die "open files limit $(ulimit -n) is below 4096"
SC_WHY='' SC_SHORT=''
if [ "$(ulimit -n)" -lt "$SCALE_NOFILE" ]; then
	# As many as this limit holds (a multiple of 1,000, at least 1,000), said in the report; a
	# count the user asked for (BENCH_SCALE_COUNT) is kept and the cell reads n/a instead.
	fit=$(((($(ulimit -n) - 4096) / 2) / 1000 * 1000))
	if [ -z "${BENCH_SCALE_COUNT:-}" ] && [ "$fit" -ge 1000 ]; then
		SC_SHORT="$SCALE_COUNT wanted; this machine's open files limit is $(ulimit -n) and raising its hard limit needs CAP_SYS_RESOURCE, which this run does not have: $fit connections, the most that limit holds ($((2 * fit + 4096)) files)"
		say "scale cell: $SC_SHORT"
		SCALE_COUNT=$fit
		SCALE_NOFILE=$((2 * SCALE_COUNT + 4096))
	else
		SC_WHY="open files limit $(ulimit -n), below the $SCALE_NOFILE the scale cell needs for $SCALE_COUNT connections (raising the hard limit needs CAP_SYS_RESOURCE)"
	fi
fi
# The servers' own limits: these, or room for the scale cell's connections when it can run
# (within SCALE_NOFILE: HAProxy refuses to start when it cannot raise its limit to about
# 2 x maxconn).
NGX_CONNS=8192 NGX_NOFILE=20000 HAP_MAXCONN=8000
if [ -z "$SC_WHY" ]; then
	[ $((SCALE_COUNT + 1024)) -le 8192 ] || NGX_CONNS=$((SCALE_COUNT + 1024))
	[ "$SCALE_NOFILE" -le 20000 ] || NGX_NOFILE=$SCALE_NOFILE
	[ $((SCALE_COUNT + 1024)) -le 8000 ] || HAP_MAXCONN=$((SCALE_COUNT + 1024))
fi
TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------- processes
RUN=$(mktemp -d /tmp/mtls-edge-bench.XXXXXX)
chmod 711 "$RUN" # nginx's workers run as nobody
PIDS=()
cleanup() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	# The eBPF cell's pins (its network namespace went with its holder process, killed above).
	if [ -n "${BPF_PIN:-}" ] && [ -e "$BPF_PIN" ]; then
		rm -rf "$BPF_PIN" || say "could not remove $BPF_PIN"
	fi
	if [ "${BPFFS_MOUNTED:-0}" = 1 ]; then
		umount /sys/fs/bpf || say "could not unmount the bpffs it mounted on /sys/fs/bpf"
	fi
	if [ "$KEEP" = 1 ]; then
		say "kept $RUN"
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# retry N DELAY CMD...: CMD until it succeeds, at most N times.
retry() {
	local n=$1 delay=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep "$delay"
	done
	return 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# forget PID: it was reaped; cleanup must not signal a pid the system may have reused.
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# tree PID: the pid and all its descendants.
tree() {
	local p
	echo "$1"
	for p in $(pgrep -P "$1" 2>/dev/null); do
		tree "$p"
	done
}

# cpu_ticks SERVER: utime+stime of all the server's processes (threads included), in ticks.
cpu_ticks() {
	local t=0 p v
	for p in $(tree "${SPID[$1]}"); do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# rss_kib SERVER: resident memory of all the server's processes.
rss_kib() {
	local t=0 p v
	for p in $(tree "${SPID[$1]}"); do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# cpu_busy N: busy ticks of CPU N (user nice system irq softirq steal) since boot.
cpu_busy() {
	awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# free_port: a loopback TCP port nothing listens on now.
# Below the kernel's ephemeral range: a port there may be any connection's local port, which a
# listener cannot bind however free ss says it is.
EPH_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${EPH_LOW:-0}" -gt 21000 ] || EPH_LOW=60000
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % (EPH_LOW - 20000)))
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
	done
}

# listening PID PORT: the process tree of PID listens on 127.0.0.1:PORT.
listening() {
	ss -Hltnp "sport = :$2" | grep -q "pid=$1,"
}

# ---------------------------------------------------------------------------- helpers (C)
HB=$BIN/bench
mkdir -p "$HB"
CFLAGS_B="-std=gnu11 -O2 -g -Wall -Wextra -Werror -Wformat=2 -Wshadow -D_GNU_SOURCE"
read -r -a OSSL <<<"$(pkg-config --cflags --libs openssl)"
if [ ! -e "$HB/wrk-cert-shim.so" ] || [ "$BENCH/wrk-cert-shim.c" -nt "$HB/wrk-cert-shim.so" ]; then
	# shellcheck disable=SC2086
	cc $CFLAGS_B -fPIC -shared -o "$HB/wrk-cert-shim.so" "$BENCH/wrk-cert-shim.c" -ldl "${OSSL[@]}"
fi
if [ ! -e "$HB/ssl-mem" ] || [ "$BENCH/ssl-mem.c" -nt "$HB/ssl-mem" ]; then
	# shellcheck disable=SC2086
	cc $CFLAGS_B -o "$HB/ssl-mem" "$BENCH/ssl-mem.c" "${OSSL[@]}"
fi
if [ ! -e "$HB/tls-load" ] || [ "$BENCH/tls-load.c" -nt "$HB/tls-load" ] || [ "$BENCH/tls-load-spread.c" -nt "$HB/tls-load" ] || [ "$BENCH/tls-load.h" -nt "$HB/tls-load" ]; then
	# shellcheck disable=SC2086
	cc $CFLAGS_B -o "$HB/tls-load" "$BENCH/tls-load.c" "$BENCH/tls-load-spread.c" "${OSSL[@]}"
fi
SHIM=$HB/wrk-cert-shim.so
LOAD=$HB/tls-load
[ "$BUILD_ONLY" = 0 ] || exit 0

# busy_pct: the busiest CPU's busy share over the next 2 seconds.
busy_pct() {
	local a b
	a=$(awk '/^cpu[0-9]/ {print $1, $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
	sleep 2
	b=$(awk '/^cpu[0-9]/ {print $1, $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
	printf '%s\n%s\n' "$a" "$b" | awk '{ if ($1 in busy) { p = ($2 - busy[$1]) / ($3 - tot[$1] + 1e-9) * 100; if (p > m) m = p } else { busy[$1] = $2; tot[$1] = $3 } } END {printf "%.0f\n", m}'
}
if [[ $QUIET =~ ^[1-9][0-9]*$ ]]; then
	deadline=$(($(date +%s) + QUIET))
	while b=$(busy_pct) && [ "$b" -ge 10 ]; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			say "the machine is still busy (${b}% on its busiest CPU); going on"
			break
		fi
		say "waiting for a quiet machine (${b}% busy on its busiest CPU)"
		sleep 8
	done
fi

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T0=$(date +%s)
LOADAVG0=$(cut -d" " -f1-3 /proc/loadavg)
say "run $STAMP: $([ "$SMOKE" = 1 ] && echo smoke || echo full), $RUNS run(s) per cell, ${DUR}s per load run, work dir $RUN"

# ---------------------------------------------------------------------------- certificates
# One state store (built-in CA, client certificates) for all three servers; the server
# certificates come from a separate server CA; the untrusted client from a CA nobody trusts.
PKI=$RUN/pki
STATE=$RUN/state
mkdir -p "$PKI"
CTL=("$BIN/mtls-edgectl" --state "$STATE")
ctl() { "${CTL[@]}" "$@" >>"$RUN/ctl.log" 2>&1 || die "mtls-edgectl $* failed: $(tail -3 "$RUN/ctl.log")"; }
ctl init --site bench.test --ca-key-type ec-p256
ctl cert create --cn bench-client-ec --key-type ec-p256 --out "$PKI/client-ec"
ctl cert create --cn bench-client-rsa --key-type rsa-2048 --out "$PKI/client-rsa"
"${CTL[@]}" ca get builtin --pem >"$PKI/client-ca.crt" 2>>"$RUN/ctl.log" ||
	die "mtls-edgectl ca get builtin --pem failed"
ossl() { openssl "$@" >>"$RUN/openssl.log" 2>&1 || die "openssl $1 failed: $(tail -3 "$RUN/openssl.log")"; }
EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
ossl req -x509 "${EC[@]}" -nodes -keyout "$PKI/server-ca.key" -out "$PKI/server-ca.crt" -days 2 \
	-subj "/CN=mtls-edge bench server CA" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign
for k in ec rsa h2 h2t; do
	if [ "$k" = rsa ]; then kopt=(-newkey rsa:2048); else kopt=("${EC[@]}"); fi
	ossl req -new "${kopt[@]}" -nodes -keyout "$PKI/server-$k.key" -out "$PKI/server-$k.csr" \
		-subj "/CN=$k.bench.test"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s.bench.test\n' \
		"$k" >"$PKI/server-$k.ext"
	ossl x509 -req -in "$PKI/server-$k.csr" -CA "$PKI/server-ca.crt" -CAkey "$PKI/server-ca.key" \
		-CAcreateserial -days 2 -out "$PKI/server-$k.crt" -extfile "$PKI/server-$k.ext"
done
ossl req -x509 "${EC[@]}" -nodes -keyout "$PKI/untrusted-ca.key" -out "$PKI/untrusted-ca.crt" \
	-days 2 -subj "/CN=a CA nobody trusts" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign
ossl req -new "${EC[@]}" -nodes -keyout "$PKI/untrusted.key" -out "$PKI/untrusted.csr" -subj "/CN=intruder"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$PKI/untrusted.ext"
ossl x509 -req -in "$PKI/untrusted.csr" -CA "$PKI/untrusted-ca.crt" -CAkey "$PKI/untrusted-ca.key" \
	-CAcreateserial -days 2 -out "$PKI/untrusted.crt" -extfile "$PKI/untrusted.ext"
chmod 600 "$PKI"/*.key

# ---------------------------------------------------------------------------- servers
taskset -c "$LOAD_CPU" "$BIN/edge-upstream" --listen 127.0.0.1:0 --port-file "$RUN/upstream.port" \
	--workers 1 >"$RUN/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
retry 100 0.05 test -s "$RUN/upstream.port" || die "edge-upstream did not start: $(cat "$RUN/upstream.log")"
UP_PORT=$(<"$RUN/upstream.port")

# The h2 cell's backend: nginx on the load CPU, HTTP/2 with prior knowledge on H2C_PORT (what
# mtls-edged relays h2.bench.test to) and HTTP/1.1 on H1_PORT (what nginx, HAProxy and mtls-edged
# terminating h2t.bench.test proxy each stream to).
mkdir -p "$RUN"/h2backend/{logs,body,proxy,fastcgi,uwsgi,scgi}
H2_BODY=$(head -c 1024 /dev/zero | tr '\0' x)
# start_h2backend: picks two free ports, starts it pinned; retries on a lost race (a port that
# free_port saw free may be taken before nginx binds it: then nginx exits).
start_h2backend() {
	local pid
	for _ in 1 2 3 4 5; do
		H2C_PORT=$(free_port)
		H1_PORT=$(free_port)
		[ "$H1_PORT" != "$H2C_PORT" ] || continue
		cat >"$RUN/h2backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $RUN/h2backend/nginx.pid;
error_log $RUN/h2backend/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $RUN/h2backend/body;
	proxy_temp_path $RUN/h2backend/proxy;
	fastcgi_temp_path $RUN/h2backend/fastcgi;
	uwsgi_temp_path $RUN/h2backend/uwsgi;
	scgi_temp_path $RUN/h2backend/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	http2_max_concurrent_streams 128;
	server {
		listen 127.0.0.1:$H2C_PORT http2;
		listen 127.0.0.1:$H1_PORT;
		location / { return 200 "$H2_BODY"; }
	}
}
EOF
		taskset -c "$LOAD_CPU" nginx -p "$RUN/h2backend" -c "$RUN/h2backend/nginx.conf" \
			-e "$RUN/h2backend/logs/error.log" >"$RUN/h2backend/out" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if retry 100 0.05 listening "$pid" "$H2C_PORT" &&
			retry 100 0.05 listening "$pid" "$H1_PORT" && alive "$pid"; then
			H2B_PID=$pid
			return 0
		fi
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget "$pid"
	done
	die "the h2 backend (nginx) did not start: $(tail -5 "$RUN/h2backend/out" "$RUN/h2backend/logs/error.log")"
}
start_h2backend

declare -A SPID SPORT
# --protocol http: the upstream speaks HTTP/1.1, so mtls-edged keeps idle upstream connections
# for the next client (upstream_keepalive), as nginx's `keepalive` and HAProxy's http-reuse do.
for k in ec rsa; do
	ctl sni add "$k.bench.test" --cert "$PKI/server-$k.crt" --key "$PKI/server-$k.key" \
		--upstream "127.0.0.1:$UP_PORT" --mtls required --protocol "${BENCH_PROTOCOL:-http}"
done
# h2.bench.test: HTTP/2 relayed unread to the backend's h2c port (the h2 cell, relay row).
ctl sni add h2.bench.test --cert "$PKI/server-h2.crt" --key "$PKI/server-h2.key" \
	--upstream "127.0.0.1:$H2C_PORT" --mtls required --protocol tcp --alpn h2,http/1.1
# h2t.bench.test: HTTP/2 terminated, each stream as HTTP/1.1 to the backend's HTTP/1.1 port, the
# one nginx and HAProxy proxy to (the h2 cell, terminating row). A certificate of its own: h2 is
# refused on a certificate that also covers an SNI object with another policy.
ctl sni add h2t.bench.test --cert "$PKI/server-h2t.crt" --key "$PKI/server-h2t.key" \
	--upstream "127.0.0.1:$H1_PORT" --mtls required --protocol http --alpn h2,http/1.1
# blocked.bench.test: the same, plus a block rule (action drop), for the failure cell with a rule.
ctl sni add blocked.bench.test --cert "$PKI/server-ec.crt" --key "$PKI/server-ec.key" \
	--upstream "127.0.0.1:$UP_PORT" --mtls required
ctl rule add --host blocked.bench.test --action drop
# rules.bench.test: the ECDSA object with 1,000 identity rules (the per-hostname maximum): 600
# deny fingerprints, 300 deny names, 99 allow names that are not the client's, and the client's.
ctl sni add rules.bench.test --cert "$PKI/server-ec.crt" --key "$PKI/server-ec.key" \
	--upstream "127.0.0.1:$UP_PORT" --mtls required --protocol "${BENCH_PROTOCOL:-http}"
mapfile -t RULE_FPS < <(head -c 19200 /dev/urandom | od -An -tx1 -v | tr -d ' \n' | fold -w64)
deny_args=()
for fp in "${RULE_FPS[@]}"; do deny_args+=(--sha256 "$fp"); done
for ((i = 0; i < 300; i++)); do deny_args+=(--cn "denied-client-$i"); done
ctl identity deny rules.bench.test "${deny_args[@]}"
allow_args=(--cn bench-client-ec)
for ((i = 0; i < 99; i++)); do allow_args+=(--cn "other-client-$i"); done
ctl identity allow rules.bench.test "${allow_args[@]}"

# The eBPF cell's daemon runs in a network namespace of its own, on a copy of the state (one
# daemon per state directory), made now, before any daemon has an admin socket in it.
STATE_NS=$RUN/state-ns
cp -a "$STATE" "$STATE_NS"
STATE_SC=$RUN/state-scale # the scale cell's daemon
cp -a "$STATE" "$STATE_SC"
STATE_KU=$RUN/state-user # --ktls: the ktls cell's mtls-edged on the userspace relay
[ "$KTLS" = 0 ] || cp -a "$STATE" "$STATE_KU"

# eBPF off here: it would attach to this host's lo and stay attached. The offender-drop cell runs
# the daemon with eBPF on in its own network namespace (below).
EDGED_CMD=("$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 1 --log-level "${BENCH_EDGED_LOG:-warn}"
	--bpf off)
# The daemon's idle upstream connections per worker as nginx's `keepalive 64` (nginx.conf.in):
# the same pool on both sides. BENCH_EDGED_CONF=FILE replaces this file (e.g. to compare
# [tls] verify_cache = off; write upstream_keepalive there too).
cat >"$RUN/edged.conf" <<EOF
[limits]
upstream_keepalive = 64
EOF
# --ktls: kTLS or nothing (the daemon refuses to start without it, and says why); the ktls
# cell's second daemon on the userspace relay
if [ "$KTLS" = 1 ]; then
	sed 's/^upstream_keepalive.*/&\n[tls]\nktls = off/' "$RUN/edged.conf" >"$RUN/edged-user.conf"
	printf '[tls]\nktls = on\n' >>"$RUN/edged.conf"
	NAME[edged]="mtls-edged (kTLS)"
	NAME[edged_user]="mtls-edged (userspace relay)"
	NAME[nginx_ktls]="nginx (kTLS)"
fi
EDGED_CMD+=(-c "${BENCH_EDGED_CONF:-$RUN/edged.conf}")
# edged_port PID [STATE]: the port the daemon with this pid listens on, from its admin socket.
edged_port() {
	local st=${2:-$STATE} js
	js=$("$BIN/mtls-edgectl" --state "$st" --json status 2>/dev/null) || return 1
	grep -q "\"pid\":$1," <<<"$js" && grep -o '"listen":\["127\.0\.0\.1:[0-9]*' <<<"$js" | grep -o '[0-9]*$'
}
# start_edged [edged_user]: the daemon (or the ktls cell's userspace one, on its own state).
start_edged() {
	local s=${1:-edged} cmd=("${EDGED_CMD[@]}") st=$STATE i
	if [ "$s" = edged_user ]; then
		st=$STATE_KU
		for ((i = 0; i < ${#cmd[@]}; i++)); do
			[ "${cmd[i]}" != "$STATE" ] || cmd[i]=$STATE_KU
			[ "${cmd[i]}" != "$RUN/edged.conf" ] || cmd[i]=$RUN/edged-user.conf
		done
	fi
	taskset -c "$SUT_CPU" "${cmd[@]}" >>"$RUN/$s.log" 2>&1 &
	SPID[$s]=$!
	PIDS+=("${SPID[$s]}")
	retry 200 0.05 edged_port "${SPID[$s]}" "$st" || die "${NAME[$s]} did not start: $(tail -5 "$RUN/$s.log")"
	SPORT[$s]=$(edged_port "${SPID[$s]}" "$st")
}
start_edged

render() { # render TEMPLATE PORT > FILE
	sed -e "s#@RUN@#$RUN#g; s#@PKI@#$PKI#g; s#@UP_PORT@#$UP_PORT#g; s#@H1_PORT@#$H1_PORT#g; s#@PORT@#$2#g" \
		-e "s#@NGX_CONNS@#$NGX_CONNS#g; s#@NGX_NOFILE@#$NGX_NOFILE#g; s#@HAP_MAXCONN@#$HAP_MAXCONN#g" "$1"
}
mkdir -p "$RUN"/nginx-tmp/{body,proxy,fastcgi,uwsgi,scgi}
for k in ec rsa h2; do
	cat "$PKI/server-$k.crt" "$PKI/server-$k.key" >"$RUN/haproxy-$k.pem"
	chmod 600 "$RUN/haproxy-$k.pem"
	printf '%s %s.bench.test\n' "$RUN/haproxy-$k.pem" "$k"
done >"$RUN/haproxy-crt.list"
# start_peer SERVER: picks a free port, renders the config, starts it pinned; retries on a lost race.
start_peer() {
	local s=$1 port pid
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		if [ "$s" = nginx ]; then
			render "$BENCH/nginx.conf.in" "$port" >"$RUN/nginx.conf"
			taskset -c "$SUT_CPU" nginx -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" \
				>"$RUN/nginx.out" 2>&1 &
		elif [ "$s" = nginx_ktls ]; then
			# the same configuration, OpenSSL told to hand the records to the kernel
			render "$BENCH/nginx.conf.in" "$port" |
				sed -e "s#$RUN/nginx\.pid#$RUN/nginx_ktls.pid#; s#$RUN/nginx-error\.log#$RUN/nginx_ktls-error.log#" \
					-e 's#^\( *\)ssl_verify_depth 3;#&\n\1ssl_conf_command Options KTLS;#' >"$RUN/nginx_ktls.conf"
			grep -q 'ssl_conf_command Options KTLS' "$RUN/nginx_ktls.conf" || die "nginx_ktls.conf: no KTLS option"
			taskset -c "$SUT_CPU" nginx -p "$RUN" -c "$RUN/nginx_ktls.conf" -e "$RUN/nginx_ktls-error.log" \
				>"$RUN/nginx_ktls.out" 2>&1 &
		else
			render "$BENCH/haproxy.cfg.in" "$port" >"$RUN/haproxy.cfg"
			taskset -c "$SUT_CPU" haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.out" 2>&1 &
		fi
		pid=$!
		PIDS+=("$pid")
		if retry 100 0.05 listening "$pid" "$port"; then
			SPID[$s]=$pid SPORT[$s]=$port
			return 0
		fi
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget "$pid"
	done
	die "$s did not start: $(tail -5 "$RUN/$s.out" "$RUN/nginx-error.log" 2>/dev/null)"
}
start_peer nginx
start_peer haproxy
KTLS_SERVERS=() # the ktls cell's two more servers
if [ "$KTLS" = 1 ]; then
	KTLS_SERVERS=(edged_user nginx_ktls)
	start_edged edged_user
	start_peer nginx_ktls
fi
# netns_hold: a network namespace of a cell's own, kept by a holder process (unshare -n, lo
# up, sleep; in PIDS, so ended at exit): its pid in NETNS_PID; 1 when it did not come up, why
# in NETNS_WHY.
netns_up() {
	[ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ] &&
		nsenter -t "$1" -n ip -o link show lo | grep -q '<[^>]*\bUP\b'
}
netns_hold() {
	unshare -n -- sh -c 'ip link set lo up && exec sleep 86400' >>"$RUN/netns.log" 2>&1 &
	NETNS_PID=$!
	PIDS+=("$NETNS_PID")
	retry 100 0.05 netns_up "$NETNS_PID" && return 0
	NETNS_WHY="could not make a network namespace: $(tail -1 "$RUN/netns.log")"
	return 1
}
# stop_pid PID [N]: TERM, up to N x 50 ms (default 200) for it to end, then KILL; forgotten.
stop_pid() {
	local pid=$1 n=${2:-200} i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < n; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
}
# restart SERVER: stops it (by pid) and starts a fresh process of it.
restart() {
	stop_pid "${SPID[$1]}"
	if [[ $1 == edged* ]]; then start_edged "$1"; else start_peer "$1"; fi
}
for s in "${SERVERS[@]}" "${KTLS_SERVERS[@]}"; do
	say "${NAME[$s]} pid ${SPID[$s]} on 127.0.0.1:${SPORT[$s]} (CPU $SUT_CPU)"
done
say "edge-upstream pid $UP_PID on 127.0.0.1:$UP_PORT (CPU $LOAD_CPU)"

# ---------------------------------------------------------------------------- sanity
# Each server refuses a client without a certificate or with an untrusted one, and answers 200
# with each client certificate; the shim gives wrk the certificate (checked against nginx).
curl_code() { # curl_code SERVER HOST [curl args]
	local s=$1 h=$2
	shift 2
	curl -sk -o /dev/null -w '%{http_code}' --max-time 5 --resolve "$h:${SPORT[$s]}:127.0.0.1" \
		"$@" "https://$h:${SPORT[$s]}/" 2>/dev/null || true
}
for s in "${SERVERS[@]}"; do
	for k in ec rsa; do
		code=$(curl_code "$s" "$k.bench.test" --cert "$PKI/client-$k.crt" --key "$PKI/client-$k.key")
		[ "$code" = 200 ] || die "${NAME[$s]}: $k client certificate got HTTP '$code', not 200"
	done
	h2hosts=(h2.bench.test)
	[ "$s" = edged ] && h2hosts+=(h2t.bench.test) # mtls-edged terminating HTTP/2
	for h in "${h2hosts[@]}"; do
		code=$(curl -sSk -o /dev/null -w '%{http_code} %{http_version}' --max-time 5 --http2 \
			--resolve "$h:${SPORT[$s]}:127.0.0.1" --cert "$PKI/client-ec.crt" \
			--key "$PKI/client-ec.key" "https://$h:${SPORT[$s]}/" 2>"$RUN/curl-h2.err" || true)
		[ "$code" = "200 2" ] ||
			die "${NAME[$s]}: $h with curl --http2 got '$code', not '200 2': $(cat "$RUN/curl-h2.err"); $(tail -3 "$RUN/edged.log" "$RUN/h2backend/logs/error.log" 2>/dev/null)"
	done
	code=$(curl_code "$s" ec.bench.test)
	[ "$code" != 200 ] || die "${NAME[$s]} answered 200 without a client certificate"
	code=$(curl_code "$s" ec.bench.test --cert "$PKI/untrusted.crt" --key "$PKI/untrusted.key")
	[ "$code" != 200 ] || die "${NAME[$s]} answered 200 to an untrusted client certificate"
done
# --ktls: each server answers, and the kTLS ones really hand their sessions to the kernel: the
# kernel's count of TX sessions it took (TlsTxSw, /proc/net/tls_stat) grows with one request.
tls_tx() { awk '$1 == "TlsTxSw" {print $2}' /proc/net/tls_stat 2>/dev/null || echo 0; }
KTLS_CHECK=
for s in "${KTLS_SERVERS[@]}" ${KTLS_SERVERS[0]:+edged nginx}; do
	before=$(tls_tx)
	code=$(curl_code "$s" ec.bench.test --cert "$PKI/client-ec.crt" --key "$PKI/client-ec.key")
	[ "$code" = 200 ] || die "${NAME[$s]}: the ec client certificate got HTTP '$code', not 200"
	after=$(tls_tx)
	case $s in
	edged | nginx_ktls) [ "$after" -gt "$before" ] ||
		die "${NAME[$s]} answered without kTLS: /proc/net/tls_stat TlsTxSw stayed at $before" ;;
	*) [ "$after" = "$before" ] || die "${NAME[$s]} should not use kTLS, but TlsTxSw went from $before to $after" ;;
	esac
	KTLS_CHECK+="${NAME[$s]}: TlsTxSw +$((after - before)) for one request; "
done
[ -z "$KTLS_CHECK" ] || say "kTLS check: $KTLS_CHECK"
wrk_status() { # the status line of one wrk request to nginx, shim env given by the caller
	env "$@" LD_PRELOAD="$SHIM" EDGE_SHIM_SNI=ec.bench.test timeout 20 \
		wrk -t1 -c1 -d1s -H "Host: ec.bench.test" -s "$RUN/status.lua" \
		"https://127.0.0.1:${SPORT[nginx]}/" 2>&1 | awk '/^STATUS/ {print $2; exit}'
}
cat >"$RUN/status.lua" <<'EOF'
response = function(status) io.write("STATUS ", status, "\n"); wrk.thread:stop() end
EOF
SHIM_NOCERT=$(wrk_status EDGE_SHIM_UNUSED=1)
SHIM_CERT=$(wrk_status EDGE_SHIM_CERT="$PKI/client-ec.crt" EDGE_SHIM_KEY="$PKI/client-ec.key")
if [ "$SHIM_CERT" != 200 ] || [ -z "$SHIM_NOCERT" ] || [ "$SHIM_NOCERT" = 200 ]; then
	die "the wrk shim does not work: nginx answered '$SHIM_NOCERT' without it, '$SHIM_CERT' with it"
fi
say "shim check against nginx: HTTP $SHIM_NOCERT without the client certificate, $SHIM_CERT with it"

# ---------------------------------------------------------------------------- measurements
RAW=$RUN/raw.tsv
printf 'metric\tserver\trun\tvalue\n' >"$RAW"
NA=$RUN/na.tsv # metric, server, run, why it gave no number (the report says "n/a: why")
: >"$NA"
CMDS=$RUN/commands.txt
: >"$CMDS"
declare -A LOGGED
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }
# failed METRIC SERVER RUN REASON: the run gave no number; the report says why when no run did.
failed() {
	record "$1" "$2" "$3" NaN
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$NA"
}
# logcmd KEY CMD...: the exact command, once per KEY, for the report.
logcmd() {
	local key=$1
	shift
	[ -n "${LOGGED[$key]:-}" ] && return
	LOGGED[$key]=1
	printf '%s\n' "$(printf '%q ' "$@")" >>"$CMDS"
}
# The state of the machine around each load run: ticks used on the server's CPU by anything but
# the server (other processes, interrupts, steal), as a share of the wall time.
probe_start() { P_T0=$(date +%s%N); P_CPU0=$(cpu_ticks "$1"); P_BUSY0=$(cpu_busy "$SUT_CPU"); P_LOAD0=$(cpu_busy "$LOAD_CPU"); }
probe_end() {
	P_WALL=$(awk -v a="$P_T0" -v b="$(date +%s%N)" 'BEGIN {printf "%.6f", (b - a) / 1e9}')
	P_CPU=$(awk -v a="$P_CPU0" -v b="$(cpu_ticks "$1")" -v t="$TCK" 'BEGIN {printf "%.4f", (b - a) / t}')
	local busy
	busy=$(awk -v a="$P_BUSY0" -v b="$(cpu_busy "$SUT_CPU")" -v t="$TCK" 'BEGIN {printf "%.4f", (b - a) / t}')
	record other_cpu0 "$1" "$2" "$(awk -v b="$busy" -v c="$P_CPU" -v w="$P_WALL" \
		'BEGIN {o = (b - c) / w * 100; if (o < 0) o = 0; printf "%.1f", o}')"
	# the load CPU's busy share (every client and edge-upstream run there): near 100, the
	# cell measured how fast the load side goes, not the server
	P_LOADPCT=$(awk -v a="$P_LOAD0" -v b="$(cpu_busy "$LOAD_CPU")" -v t="$TCK" -v w="$P_WALL" \
		'BEGIN {p = (b - a) / t / w * 100; if (p > 100) p = 100; printf "%.1f", p}')
}

# wrk_run SERVER KEY SECONDS PATH [wrk options]: sets W_REQ W_BYTES W_DUR W_ERR W_P99 (µs). In the
# scale cell's network namespace for its servers (sc_*); WRK_SAVE=FILE: wrk's whole output there.
wrk_run() { # SERVER KEY SECS PATH [WRK ARGS...]; WRK_SNI names another hostname than KEY's
	local s=$1 k=$2 secs=$3 path=$4 line out sni=${WRK_SNI:-$2.bench.test} ns=()
	shift 4
	[[ $s == sc_* ]] && ns=("${SC_NS[@]}")
	local cmd=("${ns[@]}" env LD_PRELOAD="$SHIM" EDGE_SHIM_CERT="$PKI/client-$k.crt" EDGE_SHIM_KEY="$PKI/client-$k.key"
		EDGE_SHIM_SNI="$sni" EDGE_SHIM_NO_RESUME=1
		taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -H "Host: $sni"
		"$@" -s "$BENCH/wrk-report.lua" "https://127.0.0.1:${SPORT[$s]}$path")
	logcmd "wrk $s $path $k $*" "${cmd[@]}"
	out=$(timeout $((secs + 30)) "${cmd[@]}" 2>>"$RUN/wrk.err" || true)
	[ -z "${WRK_SAVE:-}" ] || printf '%s\n' "$out" >>"$WRK_SAVE"
	line=$(grep '^WRKRESULT' <<<"$out" || true)
	W_P99=$(sed -n 's/^WRKLATENCY .*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
	W_REQ=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
	W_BYTES=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<<"$line")
	W_DUR=$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$line")
	W_ERR=$(awk '{n = 0; for (i = 5; i <= NF; i++) {split($i, kv, "="); n += kv[2]} print n}' <<<"$line")
	[ -n "$W_REQ" ] || { W_REQ=0 W_BYTES=0 W_DUR=1 W_ERR=-1; }
}

# A run's value is NaN when the run failed (no request done, or over 1% errors): never a number
# that would read as a measurement.
wrk_ok() { [ "$W_REQ" -gt 0 ] && [ "$W_ERR" -ge 0 ] && [ $((W_ERR * 100)) -le "$W_REQ" ]; }
wrk_why() {
	if [ "$W_ERR" -lt 0 ]; then echo "wrk gave no result"; else echo "wrk: $W_ERR errors in $W_REQ requests (over 1%)"; fi
}

cell_keepalive() { # SERVER RUN SIZE
	local s=$1 r=$2 n=$3 id=${SIZE_ID[$3]}
	probe_start "$s"
	wrk_run "$s" ec "$DUR" "/bytes/$n"
	probe_end "$s" "$r"
	record "errors_ka$id" "$s" "$r" "$W_ERR"
	if wrk_ok; then
		record "ka${id}_rps" "$s" "$r" "$(awk -v q="$W_REQ" -v d="$W_DUR" 'BEGIN {printf "%.1f", q / (d / 1e6)}')"
		record "ka${id}_mbs" "$s" "$r" "$(awk -v b="$W_BYTES" -v d="$W_DUR" 'BEGIN {printf "%.2f", b / (d / 1e6) / 1e6}')"
		record "cpugb_$id" "$s" "$r" "$(awk -v c="$P_CPU" -v b="$W_BYTES" 'BEGIN {printf "%.3f", c / (b / 1e9)}')"
		record "loadcpu_$id" "$s" "$r" "$P_LOADPCT"
	else
		for m in "ka${id}_rps" "ka${id}_mbs" "cpugb_$id" "loadcpu_$id"; do failed "$m" "$s" "$r" "$(wrk_why)"; done
	fi
}

cell_handshake() { # SERVER RUN KEY: a new connection (full handshake) per request
	local s=$1 r=$2 k=$3
	probe_start "$s"
	wrk_run "$s" "$k" "$DUR" / -H "Connection: close"
	probe_end "$s" "$r"
	record "errors_hs_$k" "$s" "$r" "$W_ERR"
	if wrk_ok; then
		record "hs_${k}_rps" "$s" "$r" "$(awk -v q="$W_REQ" -v d="$W_DUR" 'BEGIN {printf "%.1f", q / (d / 1e6)}')"
		record "cpukhs_$k" "$s" "$r" "$(awk -v c="$P_CPU" -v q="$W_REQ" 'BEGIN {printf "%.4f", c / q * 1000}')"
		record "busy_hs_$k" "$s" "$r" "$(awk -v c="$P_CPU" -v w="$P_WALL" 'BEGIN {printf "%.1f", c / w * 100}')"
	else
		for m in "hs_${k}_rps" "cpukhs_$k"; do failed "$m" "$s" "$r" "$(wrk_why)"; done
	fi
}

# cell_h2 SERVER RUN [HOST SUFFIX]: HTTP/2 keep-alive, H2_CONNS connections of 100 concurrent
# streams each, 1 KiB responses (h2load through the shim; its client certificate is ECDSA P-256).
# HOST h2.bench.test (the default): nginx and HAProxy terminate, mtls-edged relays (metrics h2_rps
# and cpukreq_h2); HOST h2t.bench.test, SUFFIX t: mtls-edged terminating (h2t_rps, cpukreq_h2t).
H2_CONNS=8
cell_h2() {
	local s=$1 r=$2 h=${3:-h2.bench.test} x=${4:-} out req ok2 secs bad
	local cmd=(env LD_PRELOAD="$SHIM" EDGE_SHIM_CERT="$PKI/client-ec.crt" EDGE_SHIM_KEY="$PKI/client-ec.key"
		taskset -c "$LOAD_CPU" h2load -t1 -c"$H2_CONNS" -m100 -D "$DUR"
		--connect-to="127.0.0.1:${SPORT[$s]}" "https://$h/")
	logcmd "h2load $s $h" "${cmd[@]}"
	probe_start "$s"
	out=$(timeout $((DUR + 30)) "${cmd[@]}" 2>>"$RUN/h2load.err" || true)
	probe_end "$s" "$r"
	printf '== %s %s run %s\n%s\n' "$s" "$h" "$r" "$out" >>"$RUN/h2load.out"
	# "requests: N total, N started, N done, N succeeded, N failed, ..." and "finished in Xs, ..."
	req=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
	ok2=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
	# "status codes: N 2xx, N 3xx, N 4xx, N 5xx": 4xx and 5xx are errors (h2load's "succeeded"
	# leaves them out); more than 1% fails the run, as the wrk cells' rule does
	bad=$(sed -n 's/^status codes: .* \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2/p' <<<"$out" |
		awk '{print $1 + $2}')
	secs=$(sed -n 's/^finished in \([0-9.]*\)s,.*/\1/p' <<<"$out")
	if ! grep -q '^Application protocol: h2$' <<<"$out"; then
		for m in "h2${x}_rps" "cpukreq_h2$x"; do failed "$m" "$s" "$r" "h2load did not negotiate h2"; done
	elif [ -z "$req" ] || [ "$req" = 0 ] || [ -z "$secs" ] || [ "${ok2:-0}" -lt "$req" ]; then
		for m in "h2${x}_rps" "cpukreq_h2$x"; do
			failed "$m" "$s" "$r" "h2load: ${req:-no} requests succeeded, ${ok2:-no} 2xx"
		done
	elif [ $((${bad:-0} * 100)) -gt "$req" ]; then
		for m in "h2${x}_rps" "cpukreq_h2$x"; do
			failed "$m" "$s" "$r" "h2load: ${bad} 4xx/5xx answers of $((req + bad)) (over 1%)"
		done
	else
		record "h2${x}_rps" "$s" "$r" "$(awk -v q="$req" -v d="$secs" 'BEGIN {printf "%.1f", q / d}')"
		record "cpukreq_h2$x" "$s" "$r" "$(awk -v c="$P_CPU" -v q="$req" 'BEGIN {printf "%.4f", c / q * 1000}')"
	fi
}

cell_rules() { # RUN: the ECDSA handshake cell on the hostname with 1,000 identity rules (mtls-edged)
	local r=$1
	probe_start edged
	WRK_SNI=rules.bench.test wrk_run edged ec "$DUR" / -H "Connection: close"
	probe_end edged "$r"
	record errors_hs_rules edged "$r" "$W_ERR"
	if wrk_ok; then
		record hs_rules_rps edged "$r" "$(awk -v q="$W_REQ" -v d="$W_DUR" 'BEGIN {printf "%.1f", q / (d / 1e6)}')"
		record cpukhs_rules edged "$r" "$(awk -v c="$P_CPU" -v q="$W_REQ" 'BEGIN {printf "%.4f", c / q * 1000}')"
	else
		for m in hs_rules_rps cpukhs_rules; do failed "$m" edged "$r" "$(wrk_why)"; done
	fi
}

cell_stime() { # SERVER RUN KEY: openssl s_time -new, one connection at a time
	local s=$1 r=$2 k=$3 out n t0 t1
	local cmd=(env LD_PRELOAD="$SHIM" EDGE_SHIM_SNI="$k.bench.test"
		taskset -c "$LOAD_CPU" openssl s_time -connect "127.0.0.1:${SPORT[$s]}" -new
		-cert "$PKI/client-$k.crt" -key "$PKI/client-$k.key" -CAfile "$PKI/server-ca.crt"
		-time "$STIME_DUR")
	logcmd "stime $s $k" "${cmd[@]}"
	t0=$(date +%s%N)
	out=$(timeout $((STIME_DUR + 30)) "${cmd[@]}" 2>&1 || true)
	t1=$(date +%s%N)
	n=$(awk '/connections in .*real seconds/ {print $1; exit}' <<<"$out")
	if [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ]; then
		record "stime_${k}_rps" "$s" "$r" "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n / ((b - a) / 1e9)}')"
	else
		printf '%s\n' "$out" | tail -5 >>"$RUN/stime.err"
		failed "stime_${k}_rps" "$s" "$r" "openssl s_time made no connection in ${STIME_DUR} s"
	fi
}

# churn SERVER HOST SECONDS [CERT PREFIX [TIMEOUT MS]]: tls-load churn, by default with the
# untrusted certificate; sets C_OK C_REJ C_TMO C_SECS. In the eBPF cell's network namespace when
# SERVER is nsedged.
churn() {
	local s=$1 h=$2 secs=$3 c=${4:-$PKI/untrusted} tmo=${5:-10000} line ns=()
	[ "$s" = nsedged ] && ns=(nsenter -t "$NS_PID" -n)
	[[ $s == sc_* ]] && ns=("${SC_NS[@]}")
	local cmd=("${ns[@]}" taskset -c "$LOAD_CPU" "$LOAD" churn --connect "127.0.0.1:${SPORT[$s]}" --sni "$h"
		--cert "$c.crt" --key "$c.key" --seconds "$secs" --concurrency "$CONNS" --timeout-ms "$tmo")
	logcmd "churn $s $h" "${cmd[@]}"
	line=$(timeout $((secs + 30)) "${cmd[@]}" 2>>"$RUN/tls-load.err" || true)
	C_OK=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' <<<"$line")
	C_REJ=$(sed -n 's/.* rejected=\([0-9]*\).*/\1/p' <<<"$line")
	C_TMO=$(sed -n 's/.* timeouts=\([0-9]*\).*/\1/p' <<<"$line")
	C_SECS=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
}

# cell_fail SERVER RUN [METRIC]: failed handshakes (a client certificate from an untrusted CA). For
# the eBPF cell (SERVER nsedged, METRIC failrule_on|failrule_off), on the hostname with a block
# rule (drop): once a failure has made 127.0.0.1 an offender, the daemon's eBPF program (when on)
# drops the next ClientHellos, which never get an answer; the client gives each attempt 1 s and
# counts it as failed.
cell_fail() {
	local s=$1 r=$2 host=ec.bench.test m=${3:-fail} tmo=10000 secs=$FAIL_DUR
	[ "$s" = nsedged ] && host=blocked.bench.test tmo=1000 secs=$BPF_DUR
	probe_start "$s"
	churn "$s" "$host" "$secs" "$PKI/untrusted" "$tmo"
	probe_end "$s" "$r"
	local rs=$s # the eBPF cell's rows are mtls-edged's
	[ "$s" = nsedged ] && rs=edged
	record "timeouts_$m" "$rs" "$r" "${C_TMO:-NaN}"
	if [ -n "$C_OK" ] && [ "$C_OK" -eq 0 ] && [ "${C_REJ:-0}" -gt 0 ]; then
		record "${m}_rps" "$rs" "$r" "$(awk -v n="$C_REJ" -v t="$C_SECS" 'BEGIN {printf "%.1f", n / t}')"
		record "cpukfail_$m" "$rs" "$r" "$(awk -v c="$P_CPU" -v n="$C_REJ" 'BEGIN {printf "%.4f", c / n * 1000}')"
	else
		if [ -n "$C_OK" ] && [ "$C_OK" -gt 0 ]; then
			# Never an "n/a": a server that accepts an untrusted client is a broken benchmark.
			say "${NAME[$s]} ACCEPTED $C_OK untrusted client certificates"
			record "${m}_rps" "$rs" "$r" NaN
			record "cpukfail_$m" "$rs" "$r" NaN
		else
			for x in "${m}_rps" "cpukfail_$m"; do
				failed "$x" "$rs" "$r" "tls-load churn: ${C_REJ:-no} rejections in ${secs} s (no result line: the machine too busy?)"
			done
		fi
	fi
}

established() {
	local ns=()
	[[ $1 == sc_* ]] && ns=("${SC_NS[@]}")
	"${ns[@]}" ss -Htn state established "( sport = :${SPORT[$1]} )" | wc -l
}

# cell_memory SERVER RUN: RSS growth of a fresh server process with HOLD_COUNT idle verified
# connections. Fresh, because an allocator keeps what it once got: a second measurement in the
# same process would see the memory of the first one reused and report almost nothing.
cell_memory() {
	local s=$1 r=$2 before after held pid
	restart "$s"
	churn "$s" ec.bench.test 1 "$PKI/client-ec" # warm-up: every code path once
	retry 200 0.05 test "$(established "$s")" -eq 0 || true
	before=$(rss_kib "$s")
	local cmd=(taskset -c "$LOAD_CPU" "$LOAD" hold --connect "127.0.0.1:${SPORT[$s]}" --sni ec.bench.test
		--cert "$PKI/client-ec.crt" --key "$PKI/client-ec.key" --count "$HOLD_COUNT" --max-seconds 300)
	logcmd "hold $s" "${cmd[@]}"
	# Emptied here, not by the redirection below: that one happens in the child, and the wait
	# for "held=" could read the previous server's line before it does.
	: >"$RUN/hold.out"
	"${cmd[@]}" >>"$RUN/hold.out" 2>>"$RUN/tls-load.err" &
	pid=$!
	PIDS+=("$pid")
	local t0=$SECONDS
	retry 3600 0.05 grep -q '^held=' "$RUN/hold.out" || true
	record hold_seconds "$s" "$r" $((SECONDS - t0))
	held=$(sed -n 's/^held=\([0-9]*\).*/\1/p' "$RUN/hold.out")
	sleep 0.5 # let the server finish with the last request
	after=$(rss_kib "$s")
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
	record rss_before_kib "$s" "$r" "$before"
	record rss_held_kib "$s" "$r" "$after"
	if [ "${held:-0}" -eq "$HOLD_COUNT" ]; then
		record mem_kconn "$s" "$r" "$(awk -v a="$before" -v b="$after" -v n="$held" 'BEGIN {printf "%.3f", (b - a) / n * 1000 / 1024}')"
	else
		say "${NAME[$s]}: held ${held:-0} of $HOLD_COUNT idle connections"
		failed mem_kconn "$s" "$r" "held ${held:-0} of $HOLD_COUNT idle connections ($(tail -1 "$RUN/tls-load.err" 2>/dev/null | tr -d '|' | cut -c1-80))"
	fi
	retry 200 0.05 test "$(established "$s")" -eq 0 || true
}

# OpenSSL's own memory per verified server session (bench/ssl-mem.c: the same certificates and
# TLS settings, in memory, no server around it), once per run: the floor of the memory cell.
cell_sslmem() {
	local r=$1 out
	out=$("$HB/ssl-mem" --cert "$PKI/server-ec.crt" --key "$PKI/server-ec.key" --ca "$PKI/client-ca.crt" \
		--client-cert "$PKI/client-ec.crt" --client-key "$PKI/client-ec.key" --count "$HOLD_COUNT" 2>&1) || {
		failed sslmem_kconn openssl "$r" "ssl-mem: $(tail -1 <<<"$out")"
		return
	}
	logcmd sslmem "$HB/ssl-mem" --cert "$PKI/server-ec.crt" --key "$PKI/server-ec.key" --ca "$PKI/client-ca.crt" \
		--client-cert "$PKI/client-ec.crt" --client-key "$PKI/client-ec.key" --count "$HOLD_COUNT"
	record sslmem_kconn openssl "$r" "$(awk '/^sslmem/ {split($2, b, "="); printf "%.3f", b[2] * 1000 / 1048576}' <<<"$out")"
	record sslmem_allocs openssl "$r" "$(awk '/^sslmem/ {split($3, a, "="); print a[2]}' <<<"$out")"
	[ "$r" != 1 ] || grep '^site' <<<"$out" >"$RUN/sslmem-sites.txt" || true
}

# ---------------------------------------------------------------------------- scale cell
# shellcheck source=bench/cells/scale.sh
. "$BENCH/cells/scale.sh"

# cell_reference RUN KEY: the library's own cost of the same verified handshake: tls-load serve,
# a minimal blocking OpenSSL server (verify the client, read the request, answer 200, close), on
# the same CPU with the same certificates and the same client.
NAME[ref]="OpenSSL reference server"
cell_reference() {
	local r=$1 k=$2 pid
	rm -f "$RUN/ref.port"
	local cmd=(taskset -c "$SUT_CPU" "$LOAD" serve --listen 127.0.0.1:0 --port-file "$RUN/ref.port"
		--cert "$PKI/server-$k.crt" --key "$PKI/server-$k.key" --ca "$PKI/client-ca.crt")
	logcmd "serve $k" "${cmd[@]}"
	"${cmd[@]}" >>"$RUN/ref.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	C_OK=
	if retry 100 0.05 test -s "$RUN/ref.port"; then
		SPID[ref]=$pid SPORT[ref]=$(<"$RUN/ref.port")
		probe_start ref
		churn ref "$k.bench.test" "$STIME_DUR" "$PKI/client-$k"
		probe_end ref "$r"
	fi
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
	if [ -n "$C_OK" ] && [ "$C_OK" -gt 0 ] && [ "${C_REJ:-0}" -eq 0 ]; then
		record "hs_${k}_rps" ref "$r" "$(awk -v n="$C_OK" -v t="$C_SECS" 'BEGIN {printf "%.1f", n / t}')"
		record "cpukhs_$k" ref "$r" "$(awk -v c="$P_CPU" -v n="$C_OK" 'BEGIN {printf "%.4f", c / n * 1000}')"
		record "busy_hs_$k" ref "$r" "$(awk -v c="$P_CPU" -v w="$P_WALL" 'BEGIN {printf "%.1f", c / w * 100}')"
	else
		for m in "hs_${k}_rps" "cpukhs_$k"; do
			failed "$m" ref "$r" "tls-load churn against the reference server: ok=${C_OK:-none} rejected=${C_REJ:-none}"
		done
	fi
}

# cell_speed RUN: openssl speed on the server's CPU, once per run like every other cell: the
# public-key operations a handshake needs, at the library's best rate (the "floor").
SPEED_CMD=(taskset -c "$SUT_CPU" openssl speed -mr -seconds "$SPEED_SECS" ecdsap256 rsa2048 ecdhx25519)
cell_speed() {
	local r=$1 v
	"${SPEED_CMD[@]}" >"$RUN/speed.txt" 2>/dev/null || say "openssl speed failed"
	# -mr lines: +F4:N:256:sign/s:verify/s (ECDSA), +F2:N:2048:... (RSA), +F5:N:253:op/s (X25519)
	local name tag bits col
	for v in "p256_sign F4 256 4" "p256_verify F4 256 5" "rsa_sign F2 2048 4" "rsa_verify F2 2048 5" \
		"x25519 F5 253 4"; do
		read -r name tag bits col <<<"$v"
		record "speed_$name" openssl "$r" "$(awk -F: -v f="+$tag" -v b="$bits" -v c="$col" \
			'$1 == f && $3 == b && $c ~ /^[0-9.]+$/ {print $c; found = 1} END {if (!found) print "NaN"}' "$RUN/speed.txt")"
	done
}

# ---------------------------------------------------------------------------- eBPF cell
# shellcheck source=bench/cells/bpf.sh
. "$BENCH/cells/bpf.sh"

if [ "$SMOKE" = 0 ]; then
	say "warm-up"
	for s in "${SERVERS[@]}"; do
		wrk_run "$s" ec 1 /bytes/1024
		wrk_run "$s" ec 1 / -H "Connection: close"
	done
	for s in "${KTLS_SERVERS[@]}"; do wrk_run "$s" ec 1 /bytes/65536; done
fi
for ((r = 1; r <= RUNS; r++)); do
	say "run $r of $RUNS ($(($(date +%s) - T0)) s so far)"
	for n in "${SIZES[@]}"; do
		want "ka${SIZE_ID[$n]}" || continue
		for s in "${SERVERS[@]}"; do cell_keepalive "$s" "$r" "$n"; done
		# the ktls cell: the same run, two more servers (the report's kTLS section)
		if want ktls && [ "$n" != 1024 ]; then
			for s in "${KTLS_SERVERS[@]}"; do cell_keepalive "$s" "$r" "$n"; done
		fi
	done
	for k in ec rsa; do
		if want hs; then for s in "${SERVERS[@]}"; do cell_handshake "$s" "$r" "$k"; done; fi
		if want stime; then for s in "${SERVERS[@]}"; do cell_stime "$s" "$r" "$k"; done; fi
	done
	if want rules; then cell_rules "$r"; fi
	if want h2; then
		for s in "${SERVERS[@]}"; do cell_h2 "$s" "$r"; done
		cell_h2 edged "$r" h2t.bench.test t # mtls-edged terminating, interleaved with the others
	fi
	if want fail; then for s in "${SERVERS[@]}"; do cell_fail "$s" "$r"; done; fi
	if want bpf; then for b in off on; do cell_bpf "$r" "$b"; done; fi
	if want speed; then cell_speed "$r"; fi
	if want ref; then for k in ec rsa; do cell_reference "$r" "$k"; done; fi
done
"${CTL[@]}" --json status >"$RUN/edged-status.json" 2>/dev/null || true
[ "$KTLS" = 0 ] || "$BIN/mtls-edgectl" --state "$STATE_KU" --json status >"$RUN/edged-user-status.json" 2>/dev/null || true
[ "$KTLS" = 0 ] || cp /proc/net/tls_stat "$RUN/tls_stat" 2>/dev/null || true
for s in "${SERVERS[@]}" "${KTLS_SERVERS[@]}"; do
	alive "${SPID[$s]}" || die "${NAME[$s]} died during the run (see $RUN with --keep)"
done
say "memory: $RUNS fresh start(s) of each server ($(($(date +%s) - T0)) s so far)"
for ((r = 1; r <= RUNS; r++)); do
	want mem || break
	for s in "${SERVERS[@]}"; do cell_memory "$s" "$r"; done
	cell_sslmem "$r"
done
SC_DUR=$((DUR < 5 ? DUR : 5)) # the scale cell's wrk run: a few seconds
! want scale || say "scale: $RUNS run(s) of $SCALE_COUNT held connections per server ($(($(date +%s) - T0)) s so far)"
for ((r = 1; r <= RUNS; r++)); do
	want scale || break
	for s in "${SERVERS[@]}"; do cell_scale "$s" "$r"; done
done
# The fleet cell (bench/fleet.sh): a revocation at a fleet's control to its edges, through etcd;
# its own processes, after every other cell. Smoke: 2 edges, 3 revocations.
if want fleet; then
	if [ "$SMOKE" = 1 ]; then FLEET_NODES="2" FLEET_REVOKES=3; else FLEET_NODES="5 20 50" FLEET_REVOKES=20; fi
	say "fleet: revocation propagation to ${FLEET_NODES// /, } edges ($(($(date +%s) - T0)) s so far)"
	if ! "$BENCH/fleet.sh" --nodes "$FLEET_NODES" --revokes "$FLEET_REVOKES" --out "$RUN/fleet.md" 2>"$RUN/fleet.err"; then
		printf '## Fleet: revocation propagation\n\nn/a: bench/fleet.sh failed: %s\n' "$(tail -1 "$RUN/fleet.err")" >"$RUN/fleet.md"
	fi
	cp "$RUN/fleet.md.tsv" "$OUT/fleet-$STAMP.tsv" 2>/dev/null || true
fi
# pin_of PID: the CPUs the processes of its tree may run on (from /proc, not from our intent).
pin_of() {
	local p
	for p in $(tree "$1"); do
		awk '/^Cpus_allowed_list/ {print $2}' "/proc/$p/status" 2>/dev/null
	done | sort -u | paste -sd/ -
}
PIN_CHECK=
for s in "${SERVERS[@]}"; do
	PIN_CHECK+="${NAME[$s]} (pid ${SPID[$s]} and its children) on CPU $(pin_of "${SPID[$s]}"), "
done
PIN_CHECK+="edge-upstream on CPU $(pin_of "$UP_PID"), the h2 backend on CPU $(pin_of "$H2B_PID")"
ELAPSED=$(($(date +%s) - T0))

# ---------------------------------------------------------------------------- report
# shellcheck source=bench/report.sh
. "$BENCH/report.sh"
report_write
if [ "$KTLS_GUEST_RUN" = 1 ]; then
	say "the kTLS path, in the kTLS guest ($(($(date +%s) - T0)) s so far)"
	if ! "$BENCH/ktls-guest.sh" --append "$REPORT" 2>"$RUN/ktls-guest.err"; then
		printf '## The kTLS path (in the kTLS guest)\n\nn/a: bench/ktls-guest.sh failed: %s\n\n' \
			"$(grep . "$RUN/ktls-guest.err" | tail -1)" >>"$REPORT"
	fi
fi
if [ "$SMOKE" = 0 ] && [ -z "${BENCH_NO_LATEST:-}" ]; then
	cp "$REPORT" "$OUT/latest.md"
	[ -s "$PNG" ] && cp "$PNG" "$OUT/latest.png"
elif [ "$SMOKE" = 1 ]; then
	cp "$REPORT" "$OUT/latest.md"
	[ -s "$PNG" ] && cp "$PNG" "$OUT/latest.png"
	# Keep the last few smoke reports only.
	find "$OUT" -maxdepth 1 \( -name "20*.md" -o -name "20*.png" \) | sort | head -n -6 | xargs -r rm -f
fi

echo
echo "mtls-edge benchmark $STAMP ($([ "$SMOKE" = 1 ] && echo smoke || echo full)): $REPORT"
echo
cat "$TABLE"
echo
cat "$HWTABLE"

if [ "$SMOKE" = 1 ]; then
	if "$BENCH/check-report.sh" "$REPORT"; then
		echo "bench smoke: report well formed ($REPORT, $(($(date +%s) - T0)) s)"
	else
		echo "bench smoke: FAILED: the report is not well formed: $REPORT" >&2
		exit 1
	fi
fi
