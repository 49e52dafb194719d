# shellcheck shell=bash
# What config/demo.sh (make run) and config/fleet-demo.sh (make run-fleet) share; sourced by both.
# The caller sets DEMO (its state directory), DEMO_WHO (the prefix of its messages), BIN, PKI,
# HOST, CTL_STATE (the store mtls-edgectl works on) and prog_of NAME (the program NAME.pid runs).

say() { printf '%s\n' "$*"; }
die() {
	printf '%s: %s\n' "$DEMO_WHO" "$*" >&2
	exit 1
}

# pid_of NAME: the live pid recorded in NAME.pid, if it still runs the program prog_of names.
pid_of() {
	local pid prog
	pid=$(cat "$DEMO/$1.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	prog=$(prog_of "$1")
	[ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$prog" || return 1
	echo "$pid"
}

# stop_one NAME: TERM, up to 15 s for the drain, then KILL.
stop_one() {
	local pid i
	if pid=$(pid_of "$1"); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "$DEMO_WHO: $1 (pid $pid) still running after 15 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "$DEMO_WHO: stopped $1 (pid $pid)"
	fi
	rm -f "$DEMO/$1.pid"
}

# ctl ARGS...: mtls-edgectl on CTL_STATE, quiet unless it fails.
ctl() {
	local out
	out=$("$BIN/mtls-edgectl" --state "$CTL_STATE" "$@" 2>&1) || die "'mtls-edgectl $*' failed: $out"
}

# wait_for FILE REGEX PID [SECONDS]: up to SECONDS (10) for a line matching REGEX in FILE while
# PID lives.
wait_for() {
	local i
	for ((i = 0; i < ${4:-10} * 10; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# server_pki: a server CA and HOST's certificate under PKI (the demo's, never a real one).
server_pki() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-keyout "$PKI/server-ca.key" -out "$PKI/server-ca.crt" -subj "/CN=mtls-edge demo server CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$HOST.key" -out "$PKI/$HOST.csr" -subj "/CN=$HOST" 2>/dev/null
	openssl x509 -req -in "$PKI/$HOST.csr" -CA "$PKI/server-ca.crt" -CAkey "$PKI/server-ca.key" \
		-CAcreateserial -days 365 -out "$PKI/$HOST.crt" 2>/dev/null -extfile <(
		printf 'subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\n' "$HOST"
		printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
	)
	chmod 600 "$PKI"/*.key
	rm -f "$PKI/$HOST.csr"
}
