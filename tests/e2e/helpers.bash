# Helpers for the end-to-end tests: processes, a test PKI, clients. Loaded by every tests/e2e/*.bats.
#
# Every test gets its own directory ($DIR = $BATS_TEST_TMPDIR), state store, ports (bound to
# 127.0.0.1:0 and read back) and processes; teardown stops only the pids recorded here.
# shellcheck shell=bash
# shellcheck disable=SC2154 # status and output are set by bats' run

load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$REPO/build}
SITE=example.test
PIDS=()

# edge_setup: the per-test directories and file names. Call from setup().
edge_setup() {
	DIR=$BATS_TEST_TMPDIR
	STATE=$DIR/state
	PKI=$DIR/pki
	LOG=$DIR/edged.log
	UP_LOG=$DIR/upstream.access
	mkdir -p "$PKI"
	: >"$LOG"
	: >"$UP_LOG"
	export DIR STATE PKI LOG UP_LOG
}

# retry N DELAY CMD...: runs CMD (through `run`) until it succeeds, at most N times, DELAY apart.
retry() {
	local attempts=$1 delay=$2 i
	shift 2
	for ((i = 0; i < attempts; i++)); do
		run "$@"
		if [ "$status" -eq 0 ]; then
			return 0
		fi
		sleep "$delay"
	done
	echo "retry: \"$*\" failed $attempts times; last status $status, output:" >&2
	echo "$output" >&2
	return 1
}

# track_pid PID: stop_all stops this process too.
track_pid() {
	PIDS+=("$1")
}

# no_open_daemon_sockets: no accepted socket of the daemon is established or half-closed.
no_open_daemon_sockets() {
	[ "$(open_daemon_sockets)" -eq 0 ]
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	read -r _ _ state _ <"/proc/$1/stat" || return 1
	[ "$state" != Z ]
}

# wait_pid PID SECONDS: waits for our child PID to exit; returns its exit status, or 124 if it
# is still running after SECONDS.
wait_pid() {
	local pid=$1 limit=$2 deadline
	deadline=$(($(date +%s%N) + limit * 1000000000))
	while pid_alive "$pid"; do
		if (($(date +%s%N) > deadline)); then
			return 124
		fi
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
}

# now_ms: wall clock in milliseconds.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# start_upstream [extra args]: edge-upstream on 127.0.0.1:0 (UP_LISTEN: another address);
# sets UP_PORT and UP_PID.
# Requests it receives are logged one a line in $UP_LOG.
# shellcheck disable=SC2120 # suites pass arguments; helpers here do not
start_upstream() {
	rm -f "$DIR/upstream.port"
	"$BIN/edge-upstream" --listen "${UP_LISTEN:-127.0.0.1:0}" --port-file "$DIR/upstream.port" \
		--access-log "$UP_LOG" --workers 2 "$@" >>"$DIR/upstream.out" 2>&1 3>&- &
	UP_PID=$!
	PIDS+=("$UP_PID")
	retry 100 0.05 test -s "$DIR/upstream.port" || fail "edge-upstream did not start: $(cat "$DIR/upstream.out")"
	UP_PORT=$(<"$DIR/upstream.port")
	export UP_PORT UP_PID
}

# closed_port: prints a loopback port nothing listens on (an upstream started and stopped).
closed_port() {
	local port
	"$BIN/edge-upstream" --listen 127.0.0.1:0 --port-file "$DIR/closed.port" >/dev/null 2>&1 3>&- &
	local pid=$!
	retry 100 0.05 test -s "$DIR/closed.port" || return 1
	port=$(<"$DIR/closed.port")
	kill -TERM "$pid"
	wait_pid "$pid" 5 >/dev/null || kill -KILL "$pid" 2>/dev/null
	echo "$port"
}

# start_daemon [extra args]: mtls-edged on 127.0.0.1:0 with this test's state; waits until it
# logs its listening address and sets EDGE_PORT and EDGE_PID.
start_daemon() {
	local from port
	from=$(($(wc -l <"$LOG") + 1))
	# eBPF enforcement is off unless a test asks for it (BPF_MODE): it attaches to interfaces
	# and pins maps, which only tests in their own network namespace may do.
	"$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --workers 2 --log-level debug \
		--bpf "${BPF_MODE:-off}" "$@" >>"$LOG" 2>&1 3>&- &
	EDGE_PID=$!
	PIDS+=("$EDGE_PID")
	local i
	# Up to 30 s: a bound for a hang, not a speed requirement (ASan builds start slowly).
	for ((i = 0; i < 600; i++)); do
		port=$(tail -n +"$from" "$LOG" | grep -o 'listening addr=127\.0\.0\.1:[0-9]*' | head -n1)
		[ -n "$port" ] && break
		if ! pid_alive "$EDGE_PID"; then
			local st=0
			wait "$EDGE_PID" || st=$?
			fail "mtls-edged exited with status $st during start-up; log:"$'\n'"$(cat "$LOG")"
		fi
		sleep 0.05
	done
	[ -n "$port" ] || fail "mtls-edged logged no 'listening addr=127.0.0.1:PORT' within 30 s; log:"$'\n'"$(cat "$LOG")"
	EDGE_PORT=${port##*:}
	export EDGE_PORT EDGE_PID
}

# daemon_log: the daemon's log so far.
daemon_log() {
	cat "$LOG"
}

# log_mark: remembers where the log ends; log_since prints what came after it.
log_mark() {
	LOG_MARK=$(wc -l <"$LOG")
}
log_since() {
	tail -n +"$((${LOG_MARK:-0} + 1))" "$LOG"
}

# wait_log REGEX: waits for a log line after the mark matching the extended REGEX. It returns
# as soon as the line is there; the bound (10 s) only ends a wait for a line that never comes.
wait_log() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	retry 200 0.05 bash -c 'tail -n +"$1" "$2" | grep -E -- "$3"' _ "$((${LOG_MARK:-0} + 1))" "$LOG" "$1"
}

# up_requests: how many requests the upstream has received.
up_requests() {
	wc -l <"$UP_LOG"
}

# up_mark / assert_upstream_untouched: no request reached the upstream since up_mark.
up_mark() {
	UP_MARK=$(up_requests)
}
assert_upstream_untouched() {
	local now
	now=$(up_requests)
	if [ "$now" -ne "${UP_MARK:-0}" ]; then
		fail "the upstream received $((now - ${UP_MARK:-0})) request(s) it should not have:"$'\n'"$(tail -n +"$((${UP_MARK:-0} + 1))" "$UP_LOG")"
	fi
}

# stop_all: stops the processes this test started (TERM, bounded wait, KILL); shows the daemon
# log when the test failed. Call from teardown().
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do
		if pid_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for pid in "${PIDS[@]}"; do
		if ! wait_pid "$pid" 5 >/dev/null 2>&1 && pid_alive "$pid"; then
			echo "# pid $pid ignored SIGTERM for 5 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	PIDS=()
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -s "${LOG:-}" ]; then
		echo "--- mtls-edged log ($LOG) ---"
		tail -n 200 "$LOG"
		echo "--- end of log ---"
	fi
}

# ctl ARGS...: mtls-edgectl on this test's state.
ctl() {
	"$BIN/mtls-edgectl" --state "$STATE" "$@"
}

# make_site: a state store with the built-in CA for example.test.
make_site() {
	run ctl init --site "$SITE"
	assert_success
}

# make_server_ca: the test's server CA ($PKI/server-ca.crt), unrelated to the edge's client CA.
make_server_ca() {
	[ -s "$PKI/server-ca.crt" ] && return 0
	make_ca "$PKI/server-ca" "mtls-edge test server CA"
}

# make_ca PREFIX CN: a self-signed CA, PREFIX.crt and PREFIX.key.
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 \
		-keyout "$1.key" -out "$1.crt" -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 ||
		fail "openssl: cannot create CA $2"
	chmod 600 "$1.key"
}

# sign_cert CA_PREFIX PREFIX CN EXTENSIONS [openssl x509 args]: a leaf signed by the CA.
sign_cert() {
	local ca=$1 out=$2 cn=$3 ext=$4
	shift 4
	if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$out.key" -out "$out.csr" -subj "/CN=$cn" >/dev/null 2>&1 ||
		! openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
			-days 400 -out "$out.crt" -extfile <(printf '%s\n' "$ext") "$@" >/dev/null 2>&1; then
		fail "openssl: cannot sign $cn with $ca"
	fi
	chmod 600 "$out.key"
	rm -f "$out.csr"
}

# upload_ca PREFIX NAME [HOST...]: uploads PREFIX.crt as the client CA NAME (its id in CA_ID)
# and binds it to the hostnames given.
upload_ca() {
	local prefix=$1 name=$2
	shift 2
	run ctl ca upload "$prefix.crt" --name "$name" --json
	assert_success
	CA_ID=$(echo "$output" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
	[ -n "$CA_ID" ] || fail "ca upload printed no id: $output"
	if [ $# -gt 0 ]; then
		run ctl ca hosts set "$CA_ID" "$@"
		assert_success
	fi
}

# serial_of NAME: the serial of $DIR/NAME.crt, as openssl prints it (upper-case hex).
serial_of() {
	openssl x509 -in "$DIR/$1.crt" -noout -serial | cut -d= -f2
}

# ca_crl CA_PREFIX OUT [openssl ca args...] [-- CERT_FILE...]: a PEM CRL of the CA, revoking the
# given certificates; each CA has an index and a CRLNumber of its own, going up with each CRL.
ca_crl() {
	local ca=$1 out=$2 cert d args=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	d=$DIR/crl-of-$(basename "$ca")
	mkdir -p "$d"
	[ -s "$d/number" ] || echo 01 >"$d/number"
	: >"$d/index.txt"
	for cert in "$@"; do
		printf 'R\t300101000000Z\t240101000000Z\t%s\tunknown\t/CN=%s\n' \
			"$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)" "$(basename "$cert")" >>"$d/index.txt"
	done
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s\ncrlnumber=%s\ndefault_md=sha256\ndefault_crl_days=7\n' \
		"$d/index.txt" "$d/number" >"$d/ca.cnf"
	openssl ca -config "$d/ca.cnf" -gencrl -keyfile "$ca.key" -cert "$ca.crt" "${args[@]}" -out "$out" \
		2>/dev/null || fail "openssl ca: no CRL of $ca"
}

# make_server_cert HOST: $PKI/HOST.crt and $PKI/HOST.key (0600), SAN HOST, from the server CA.
make_server_cert() {
	make_server_ca
	sign_cert "$PKI/server-ca" "$PKI/$1" "$1" \
		"subjectAltName=DNS:$1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
}

# make_client_cert CA_PREFIX PREFIX CN: a client certificate (clientAuth) from a test CA.
make_client_cert() {
	sign_cert "$1" "$2" "$3" \
		"basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}

# add_sni HOST [sni add options]: an SNI object for HOST with a server certificate from the
# test's server CA, relaying to the upstream (or to $SNI_UPSTREAM when set).
add_sni() {
	local host=$1
	shift
	[ -s "$PKI/$host.crt" ] || make_server_cert "$host"
	run ctl sni add "$host" --cert "$PKI/$host.crt" --key "$PKI/$host.key" \
		--upstream "${SNI_UPSTREAM:-127.0.0.1:$UP_PORT}" "$@"
	assert_success
}

# client_cert NAME [cert create options]: $DIR/NAME.crt and $DIR/NAME.key from the built-in CA.
client_cert() {
	local name=$1
	shift
	run ctl cert create --cn "$name" --out "$DIR/$name" "$@"
	assert_success
	[ -s "$DIR/$name.crt" ] || fail "cert create wrote no $DIR/$name.crt"
}


# edge_curl HOST PATH [curl args]: HTTPS to the daemon as HOST, trusting the test server CA.
edge_curl() {
	local host=$1 path=${2#/}
	shift 2
	curl -sS --max-time 10 --resolve "$host:$EDGE_PORT:127.0.0.1" \
		--cacert "$PKI/server-ca.crt" "https://$host:$EDGE_PORT/$path" "$@"
}

# edge_curl_as NAME HOST PATH [curl args]: edge_curl presenting $DIR/NAME.crt and NAME.key.
edge_curl_as() {
	local name=$1
	shift
	edge_curl "$1" "$2" --cert "$DIR/$name.crt" --key "$DIR/$name.key" "${@:3}"
}

# edge_s_client HOST|- [s_client args]: openssl s_client against the daemon, sending one HTTP
# request and waiting for the server to close ("-" for no SNI at all).
edge_s_client() {
	local host=$1 sni
	shift
	if [ "$host" = - ]; then
		sni=(-noservername)
	else
		sni=(-servername "$host")
	fi
	printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" |
		timeout 10 openssl s_client -connect "127.0.0.1:$EDGE_PORT" "${sni[@]}" \
			-CAfile "$PKI/server-ca.crt" -ign_eof "$@" 2>&1
}

# raw_tcp HEX [half]: sends the bytes (hex) to the daemon, half-closes when asked, then reads
# until the server closes (FIN or reset) or 5 s pass. Prints "closed bytes=N" or "open bytes=N";
# succeeds only when the server closed.
raw_tcp() {
	perl -e '
		use IO::Socket::INET;
		my ($port, $hex, $half) = @ARGV;
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port)
			or die "connect: $!\n";
		$s->syswrite(pack("H*", $hex));
		$s->shutdown(1) if $half;
		my ($n, $buf, $closed) = (0, "", 0);
		my $rin = "";
		vec($rin, fileno($s), 1) = 1;
		my $deadline = 5;
		while ($deadline > 0) {
			my $rout = $rin;
			my $r = select($rout, undef, undef, 0.1);
			$deadline -= 0.1 if !$r;
			next if !$r;
			my $got = $s->sysread($buf, 65536);
			if (!defined $got || $got == 0) { $closed = 1; last }
			$n += $got;
		}
		printf "%s bytes=%d\n", $closed ? "closed" : "open", $n;
		exit($closed ? 0 : 1);
	' "$EDGE_PORT" "$1" "${2:-}"
}

# open_daemon_sockets: how many accepted sockets of the daemon are established or half-closed.
open_daemon_sockets() {
	ss -Htn state established state close-wait "( sport = :$EDGE_PORT )" | wc -l
}

# hex: stdin as a hex string, for raw_tcp.
hex() {
	od -An -v -tx1 | tr -d ' \n'
}

# requires CMD...: skips the test (loudly, with the reason) when a tool is missing.
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "needs $c (install it: make deps-test)"
	done
}

# counter NAME: a counter from the daemon's status JSON (counters, or counters.verify_failures
# for a verifier reason; 0 when a reason has not been seen yet).
counter() {
	local json v
	json=$(ctl status --json) || fail "status --json failed: $json"
	v=$(grep -o "\"$1\": *[0-9]*" <<<"$json" | head -n1 | grep -o '[0-9]*$')
	echo "${v:-0}"
}

# counter_mark NAME...: remembers counters; counter_delta NAME: the increase since the mark.
declare -gA COUNTER_MARK
counter_mark() {
	local n
	for n in "$@"; do
		COUNTER_MARK[$n]=$(counter "$n")
	done
}
counter_delta() {
	echo $(($(counter "$1") - ${COUNTER_MARK[$1]:-0}))
}

# assert_counter NAME DELTA: the counter grew by exactly DELTA since counter_mark.
assert_counter() {
	local d
	d=$(counter_delta "$1")
	[ "$d" -eq "$2" ] || fail "counter $1 grew by $d since the mark, want $2:"$'\n'"$(ctl status --json)"
}

# counter_delta_ge NAME N: the counter grew by N or more since counter_mark.
counter_delta_ge() {
	[ "$(counter_delta "$1")" -ge "$2" ]
}

# wait_counter NAME DELTA: for a counter the daemon moves after the log line a test waits for
# (closed: when the connection is freed; upstream_pooled: when the client's end is read): waits
# until it has grown by DELTA, then asserts exactly DELTA.
wait_counter() {
	retry 200 0.05 counter_delta_ge "$1" "$2" || true
	assert_counter "$1" "$2"
}

# inflight_is N: the daemon has exactly N handshakes in flight.
inflight_is() {
	[ "$(counter handshakes_inflight)" -eq "$1" ]
}

# wait_inflight N: waits until the daemon counts N handshakes in flight (the connections a test
# opened have been accepted, or the ones that ended have left the count).
wait_inflight() {
	retry 200 0.05 inflight_is "$1" ||
		fail "handshakes in flight: $(counter handshakes_inflight), want $1"
}

# daemon_fds: how many fds the daemon holds; fd_mark remembers it, fds_back waits (up to 10 s)
# until the daemon holds no more than at the mark.
daemon_fds() {
	find "/proc/$EDGE_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}
fd_mark() {
	FD_MARK=$(daemon_fds)
}
fds_back() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	retry 200 0.05 bash -c '[ "$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l)" -le "$2" ]' \
		_ "$EDGE_PID" "$FD_MARK" ||
		fail "the daemon holds $(daemon_fds) fds, $FD_MARK before: $(ls -l "/proc/$EDGE_PID/fd")"
}

# daemon_rss_kb: the daemon's resident set in KiB.
daemon_rss_kb() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$EDGE_PID/status"
}

# daemon_cpu_ticks: the CPU time the daemon has used (user + system, in clock ticks: 1/100 s).
# CPU used, unlike wall-clock time, does not grow when the machine is busy with other work.
daemon_cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$EDGE_PID/stat"
}

# hold_download NAME HOST PATH [curl args]: a download through the daemon (as NAME) that stays
# established for as long as the test needs, however slow the machine: curl writes into a FIFO
# that nothing reads until release_download, so once the pipe is full the connection waits on
# back-pressure and cannot finish on its own. Returns when the first 4 KiB have arrived (the
# connection is established and relaying); sets HOLD_PID.
hold_download() {
	local name=$1 host=$2 path=$3 rw
	shift 3
	rm -f "$DIR/hold.fifo" "$DIR/hold.body"
	mkfifo "$DIR/hold.fifo"
	# Read-write first: opening it does not wait for a writer, so a curl that fails before it
	# opens its output cannot leave this shell blocked.
	exec {rw}<>"$DIR/hold.fifo"
	# --max-time 600 overrides edge_curl's 10 s: a bound for a hang only.
	edge_curl_as "$name" "$host" "$path" --max-time 600 -o "$DIR/hold.fifo" "$@" \
		2>"$DIR/hold.err" 3>&- &
	HOLD_PID=$!
	track_pid "$HOLD_PID"
	timeout 30 dd bs=4096 count=1 iflag=fullblock status=none <&"$rw" >"$DIR/hold.body" ||
		fail "the held download did not start: $(cat "$DIR/hold.err")"
	# From here curl is the only writer: the reader sees EOF when curl closes its output.
	exec {HOLD_FD}<"$DIR/hold.fifo"
	exec {rw}<&-
}

# release_download: reads the held download to its end into $DIR/hold.body and waits for curl;
# fails unless curl succeeded.
release_download() {
	local st=0
	timeout 120 cat <&"$HOLD_FD" >>"$DIR/hold.body" || st=$?
	exec {HOLD_FD}<&-
	[ "$st" -eq 0 ] || fail "reading the held download failed (status $st)"
	wait_pid "$HOLD_PID" 60 || st=$?
	[ "$st" -eq 0 ] || fail "the held download failed (curl status $st): $(cat "$DIR/hold.err")"
}

# ---- metrics (tests/e2e/metrics.bats, logs.bats, expiry.bats) -----------------------------

# prom_parse: reads a Prometheus text exposition (0.0.4) on stdin, checks it strictly enough
# (HELP/TYPE once per family and before its samples, samples of a family together, counters
# named *_total, label values escaped, numeric values, no duplicate series, final newline) and
# prints each sample as `name{k="v",...} value` with the labels sorted. Fails naming the line.
prom_parse() {
	perl -e '
		use strict;
		my $text = do { local $/; <STDIN> };
		die "prom: empty exposition\n" if $text eq "";
		die "prom: no newline at the end\n" if substr($text, -1) ne "\n";
		my (%type, %help, %seen, %done, %series);
		my $cur = "";
		my $n = 0;
		sub fam_of { my ($t, $name) = @_; for my $s ("_total", "_sum", "_count", "_bucket", "") {
			(my $f = $name) =~ s/\Q$s\E$// or next; return $f if $s eq "" || exists $t->{$f}; }
			return $name; }
		for my $line (split /\n/, $text) {
			$n++;
			next if $line eq "";
			if ($line =~ /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/) {
				my ($kw, $name, $rest) = ($1, $2, $3);
				die "prom:$n: $kw for $name after its samples\n" if $seen{$name};
				if ($kw eq "TYPE") {
					die "prom:$n: second TYPE for $name\n" if exists $type{$name};
					die "prom:$n: bad type \"$rest\"\n"
						unless $rest =~ /^(counter|gauge|histogram|summary|untyped)$/;
					die "prom:$n: counter $name does not end in _total\n"
						if $rest eq "counter" && $name !~ /_total$/;
					$type{$name} = $rest;
				} else {
					die "prom:$n: second HELP for $name\n" if exists $help{$name};
					die "prom:$n: bad escape in HELP\n" if $rest =~ /\\[^\\n]/;
					$help{$name} = $rest;
				}
				next;
			}
			next if $line =~ /^#/;
			$line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)(?: (-?\d+))?$/
				or die "prom:$n: not a sample: $line\n";
			my ($name, $labels, $value) = ($1, $2 // "", $3);
			$value =~ /^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?Inf|NaN)$/
				or die "prom:$n: bad value \"$value\"\n";
			my $fam = fam_of(\%type, $name);
			die "prom:$n: $name has no TYPE\n" unless exists $type{$fam};
			die "prom:$n: samples of $fam are not together\n" if $done{$fam} && $cur ne $fam;
			$done{$cur} = 1 if $cur ne "" && $cur ne $fam;
			$cur = $fam;
			$seen{$fam} = 1;
			my %l;
			my $rest = $labels;
			while ($rest ne "") {
				$rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//
					or die "prom:$n: bad labels {$labels}\n";
				die "prom:$n: label $1 twice\n" if exists $l{$1};
				$l{$1} = $2;
			}
			my $key = $name . (%l ? "{" . join(",", map { "$_=\"$l{$_}\"" } sort keys %l) . "}" : "");
			die "prom:$n: duplicate series $key\n" if $series{$key}++;
			print "$key $value\n";
		}
	'
}

# prom_value PARSED SERIES: the value of one series (as prom_parse prints it), 0 when absent.
prom_value() {
	local v
	v=$(awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print substr($0, length(s) + 2) }' "$1")
	echo "${v:-0}"
}

# metrics_port: the port of the HTTP metrics endpoint, from the daemon's log.
metrics_port() {
	local p
	p=$(grep -o 'metrics at http://127\.0\.0\.1:[0-9]*' "$LOG" | tail -n1)
	[ -n "$p" ] || return 1
	echo "${p##*:}"
}

# faketime_daemon DIR SPEC: writes DIR/mtls-edged, which execs the real daemon with libfaketime
# preloaded (FAKETIME=SPEC). Not through the faketime program: it forks and waits, so the pid
# start_daemon records would be faketime's, and stopping it would orphan the daemon.
faketime_daemon() {
	local lib
	lib=$(find /usr/lib -path '*/faketime/libfaketimeMT.so.1' -print -quit 2>/dev/null)
	[ -n "$lib" ] || skip "libfaketime is not installed (make deps-test)"
	mkdir -p "$1"
	printf '#!/bin/sh\nLD_PRELOAD=%q FAKETIME=%q exec %q "$@"\n' "$lib" "$2" "$BIN/mtls-edged" \
		>"$1/mtls-edged"
	chmod +x "$1/mtls-edged"
}

# faketime_daemon_file DIR FILE: like faketime_daemon, but the offset is read from FILE at every
# clock read ("+0" to start with): writing "+1h" to FILE moves the running daemon's wall clock an
# hour on, at once. Its monotonic clock (timeouts, ticks) is left alone.
faketime_daemon_file() {
	local lib
	lib=$(find /usr/lib -path '*/faketime/libfaketimeMT.so.1' -print -quit 2>/dev/null)
	[ -n "$lib" ] || skip "libfaketime is not installed (make deps-test)"
	mkdir -p "$1"
	echo +0 >"$2"
	printf '#!/bin/sh\nLD_PRELOAD=%q FAKETIME_TIMESTAMP_FILE=%q FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 exec %q "$@"\n' \
		"$lib" "$2" "$BIN/mtls-edged" >"$1/mtls-edged"
	chmod +x "$1/mtls-edged"
}

# api_setup: the set-up most suites share: a site, an upstream, one SNI object for $API and
# alice's client certificate.
api_setup() {
	edge_setup
	# shellcheck disable=SC2119 # the upstream's defaults
	start_upstream
	make_site
	add_sni "$API"
	client_cert alice
}

# start_nginx SERVER-BLOCKS PORT...: nginx on 127.0.0.1 with its own prefix, config and pid file
# in the test directory, in the foreground as one process (stopped by pid at teardown); waits
# until every PORT accepts.
start_nginx() {
	requires nginx
	mkdir -p "$DIR/nginx/logs"
	cat >"$DIR/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log info;
events { worker_connections 64; }
http {
	access_log $DIR/nginx/logs/access.log;
	client_body_temp_path $DIR/nginx/body;
	proxy_temp_path $DIR/nginx/proxy;
	fastcgi_temp_path $DIR/nginx/fastcgi;
	uwsgi_temp_path $DIR/nginx/uwsgi;
	scgi_temp_path $DIR/nginx/scgi;
	$1
}
EOF
	nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/logs/error.log" \
		>"$DIR/nginx/out" 2>&1 3>&- &
	track_pid $!
	local port
	for port in "${@:2}"; do
		retry 100 0.05 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port" ||
			fail "nginx did not start: $(cat "$DIR/nginx/out" "$DIR/nginx/logs/error.log")"
	done
}
