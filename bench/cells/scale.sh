# bench/cells/scale.sh: the scale cell, sourced by bench/run.sh at its place among
# the cells (its variables and functions are defined there, before the runs). Uses run.sh's
# variables and functions.
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2004 # set by run.sh, or used there and by report.sh; SPID and SPORT are its associative arrays

# ---------------------------------------------------------------------------- scale cell
# SCALE_COUNT idle verified connections held at once (each: a full mTLS handshake with the ECDSA
# client certificate and one answered keep-alive `GET /`, as in the memory cell), set up $CONNS at
# a time by tls-load hold, from SCALE_PER_SOURCE connections per source address (127.1.0.1 and
# up, bound before the connect) so that one server port does not run out of local ports. Per
# server and run: the accept (handshake) rate while they are set up, the RSS growth per 1,000
# held, and the p99 of a separate 1 KiB keep-alive client (wrk -c$CONNS --latency) while they are
# held. Fresh processes of each server (same binary and config as the other cells: nginx and
# HAProxy rendered from the same templates, mtls-edged with EDGED_CMD on a copy of the state), in
# a network namespace of their own when root, with an edge-upstream of their own on UP_PORT.
SCALE_PER_SOURCE=200
SC_NS=() SC_NS_PID='' SC_READY='' SC_SOURCES=1 SC_SPORT=''
NAME[sc_edged]="mtls-edged (scale cell)" NAME[sc_nginx]="nginx (scale cell)" NAME[sc_haproxy]="HAProxy (scale cell)"
# sc_setup: the namespace and its upstream (root), else the host's loopback for a small count.
sc_setup() {
	local t hi pid
	SC_READY=1
	if [ "$(id -u)" -eq 0 ]; then
		for t in unshare nsenter ip; do
			command -v "$t" >/dev/null || { SC_WHY="$t is not installed (the scale cell's network namespace)"; return 1; }
		done
		if ! netns_hold; then
			SC_WHY=$NETNS_WHY
			return 1
		fi
		SC_NS_PID=$NETNS_PID
		SC_NS=(nsenter -t "$SC_NS_PID" -n)
		rm -f "$RUN/scale-upstream.port"
		"${SC_NS[@]}" taskset -c "$LOAD_CPU" "$BIN/edge-upstream" --listen "127.0.0.1:$UP_PORT" \
			--port-file "$RUN/scale-upstream.port" --workers 1 >"$RUN/scale-upstream.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if ! retry 100 0.05 test -s "$RUN/scale-upstream.port"; then
			SC_WHY="edge-upstream did not start in the scale cell's namespace: $(tail -1 "$RUN/scale-upstream.log")"
			return 1
		fi
		say "scale cell: network namespace of pid $SC_NS_PID, its edge-upstream pid $pid on 127.0.0.1:$UP_PORT"
	elif [ "$SCALE_COUNT" -gt 5000 ]; then
		SC_WHY="needs root: $SCALE_COUNT connections are held in a network namespace of their own (not on this host's loopback)"
		return 1
	fi
	# Local ports above the kernel's ephemeral range when there is room, so that the held
	# connections take none of it; else the kernel picks them at connect.
	read -r _ hi < <("${SC_NS[@]}" cat /proc/sys/net/ipv4/ip_local_port_range)
	SC_SOURCES=$(((SCALE_COUNT + SCALE_PER_SOURCE - 1) / SCALE_PER_SOURCE))
	if [ "${hi:-65535}" -le $((65535 - SCALE_PER_SOURCE)) ]; then
		SC_SPORT=$((hi + 1))
	fi
	return 0
}
# sc_listening PID PORT: like listening, in the scale cell's namespace.
sc_listening() { "${SC_NS[@]}" ss -Hltnp "sport = :$2" | grep -q "pid=$1,"; }
# sc_start SERVER: a fresh process of SERVER for the scale cell: SPID[sc_SERVER] SPORT[sc_SERVER].
sc_start() {
	local s=$1 k=sc_$1 port pid i cmd=()
	if [ "$s" = edged ]; then
		for ((i = 0; i < ${#EDGED_CMD[@]}; i++)); do # EDGED_CMD on the scale cell's state
			if [ "${EDGED_CMD[$i]}" = --state ]; then
				cmd+=(--state "$STATE_SC")
				i=$((i + 1))
			else
				cmd+=("${EDGED_CMD[$i]}")
			fi
		done
		logcmd "scale edged" "${SC_NS[@]}" taskset -c "$SUT_CPU" "${cmd[@]}"
		"${SC_NS[@]}" taskset -c "$SUT_CPU" "${cmd[@]}" >>"$RUN/scale-edged.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if retry 200 0.05 edged_port "$pid" "$STATE_SC"; then
			SPID[$k]=$pid SPORT[$k]=$(edged_port "$pid" "$STATE_SC")
			return 0
		fi
		sc_stop "$s" "$pid"
		return 1
	fi
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		if [ "$s" = nginx ]; then
			render "$BENCH/nginx.conf.in" "$port" |
				sed "s#$RUN/nginx\.pid#$RUN/scale-nginx.pid#; s#$RUN/nginx-error\.log#$RUN/scale-nginx-error.log#" \
					>"$RUN/scale-nginx.conf"
			cmd=(nginx -p "$RUN" -c "$RUN/scale-nginx.conf" -e "$RUN/scale-nginx-error.log")
		else
			render "$BENCH/haproxy.cfg.in" "$port" >"$RUN/scale-haproxy.cfg"
			cmd=(haproxy -db -f "$RUN/scale-haproxy.cfg")
		fi
		logcmd "scale $s" "${SC_NS[@]}" taskset -c "$SUT_CPU" "${cmd[@]}"
		"${SC_NS[@]}" taskset -c "$SUT_CPU" "${cmd[@]}" >>"$RUN/scale-$s.out" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if retry 100 0.05 sc_listening "$pid" "$port"; then
			SPID[$k]=$pid SPORT[$k]=$port
			return 0
		fi
		sc_stop "$s" "$pid"
	done
	return 1
}
# sc_stop SERVER [PID]: stops the scale cell's process of SERVER (by pid).
sc_stop() {
	local pid=${2:-${SPID[sc_$1]:-}}
	[ -n "$pid" ] || return 0
	stop_pid "$pid" 400
	SPID[sc_$1]=
}
SC_METRICS=(scale_mem_kconn scale_accept_rps scale_p99_ms)
sc_failed() { # sc_failed SERVER RUN WHY: the cell's three rows
	local m
	for m in "${SC_METRICS[@]}"; do failed "$m" "$1" "$2" "$3"; done
}
# cell_scale SERVER RUN
cell_scale() {
	local s=$1 r=$2 k=sc_$1 before after pid held failed secs open why up t0 wait_s
	if [ -z "$SC_WHY" ] && [ -z "$SC_READY" ]; then sc_setup || true; fi
	if [ -n "$SC_WHY" ]; then
		[ "$s$r" != "${SERVERS[0]}1" ] || say "scale cell not measured: $SC_WHY"
		sc_failed "$s" "$r" "$SC_WHY"
		return
	fi
	if ! sc_start "$s"; then
		why="${NAME[$s]} did not start for the scale cell: $(tail -2 "$RUN/scale-$s.out" "$RUN/scale-edged.log" "$RUN/scale-nginx-error.log" 2>/dev/null | grep -v '^==>' | grep . | tail -1 | tr -d '|' | cut -c1-120)"
		say "$why"
		sc_failed "$s" "$r" "$why"
		return
	fi
	churn "$k" ec.bench.test 1 "$PKI/client-ec" # warm-up: every code path once
	retry 200 0.05 test "$(established "$k")" -eq 0 || true
	before=$(rss_kib "$k")
	local cmd=("${SC_NS[@]}" taskset -c "$LOAD_CPU" "$LOAD" hold --connect "127.0.0.1:${SPORT[$k]}"
		--sni ec.bench.test --cert "$PKI/client-ec.crt" --key "$PKI/client-ec.key"
		--count "$SCALE_COUNT" --concurrency "$CONNS" --sources "$SC_SOURCES"
		${SC_SPORT:+--source-port "$SC_SPORT"} --timeout-ms 10000 --max-seconds 900)
	logcmd "scale hold $s" "${cmd[@]}"
	: >"$RUN/scale-hold.out" # emptied here: see cell_memory
	: >"$RUN/scale-hold.err"
	probe_start "$k"
	"${cmd[@]}" >>"$RUN/scale-hold.out" 2>>"$RUN/scale-hold.err" &
	pid=$!
	PIDS+=("$pid")
	t0=$SECONDS
	# Bounded: at least 100 connections/s, else the client is stopped (it then says what it held).
	wait_s=$((60 + SCALE_COUNT / 100))
	retry $((wait_s * 20)) 0.05 grep -q '^held=' "$RUN/scale-hold.out" ||
		{ kill -TERM "$pid" 2>/dev/null || true; retry 100 0.05 grep -q '^held=' "$RUN/scale-hold.out" || true; }
	probe_end "$k" "$r"
	held=$(sed -n 's/^held=\([0-9]*\).*/\1/p' "$RUN/scale-hold.out")
	failed=$(sed -n 's/^held=[0-9]* failed=\([0-9]*\).*/\1/p' "$RUN/scale-hold.out")
	secs=$(sed -n 's/^held=.* seconds=\([0-9.]*\).*/\1/p' "$RUN/scale-hold.out")
	record scale_held "$s" "$r" "${held:-0}"
	record scale_failed "$s" "$r" "${failed:-NaN}"
	record scale_hold_seconds "$s" "$r" "${secs:-$((SECONDS - t0))}"
	if [ "${held:-0}" -gt 0 ]; then
		record cpukhs_scale "$s" "$r" "$(awk -v c="$P_CPU" -v n="$held" 'BEGIN {printf "%.4f", c / n * 1000}')"
	fi
	sleep 0.5 # let the server finish with the last request
	after=$(rss_kib "$k")
	record scale_rss_before_kib "$s" "$r" "$before"
	record scale_rss_held_kib "$s" "$r" "$after"
	# Upstream connections the server holds for them (mtls-edged: one per held client).
	up=$("${SC_NS[@]}" ss -Htn state established "( dport = :$UP_PORT )" | wc -l)
	record scale_upstream_conns "$s" "$r" "$up"
	W_REQ=0 W_ERR=-1 W_P99=
	if [ "${held:-0}" -eq "$SCALE_COUNT" ] && alive "$pid"; then
		probe_start "$k"
		WRK_SAVE=$RUN/scale-wrk.out wrk_run "$k" ec "$SC_DUR" /bytes/1024 --latency
		probe_end "$k" "$r"
		record errors_scale "$s" "$r" "$W_ERR"
	fi
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
	open=$(sed -n 's/^open=\([0-9-]*\).*/\1/p' "$RUN/scale-hold.out")
	record scale_open "$s" "$r" "${open:-NaN}"
	if [ "$s" = edged ]; then
		"$BIN/mtls-edgectl" --state "$STATE_SC" --json status >"$RUN/scale-edged-status-$r.json" 2>/dev/null || true
	fi
	if [ "${held:-0}" -ne "$SCALE_COUNT" ]; then
		why="held ${held:-0} of $SCALE_COUNT ($(tail -1 "$RUN/scale-hold.err" 2>/dev/null | sed 's/^tls-load: hold: //' | tr -d '|' | cut -c1-160))"
		say "${NAME[$s]}: scale cell $why"
		sc_failed "$s" "$r" "$why"
	elif [ "${open:-0}" != "$held" ]; then
		why="the server closed $((held - ${open:-0})) of the $held held connections during the hold"
		say "${NAME[$s]}: $why"
		sc_failed "$s" "$r" "$why"
	else
		record scale_mem_kconn "$s" "$r" "$(awk -v a="$before" -v b="$after" -v n="$held" 'BEGIN {printf "%.3f", (b - a) / n * 1000 / 1024}')"
		record scale_accept_rps "$s" "$r" "$(awk -v n="$held" -v t="$secs" 'BEGIN {if (t > 0) printf "%.1f", n / t; else print "NaN"}')"
		if wrk_ok && [ -n "$W_P99" ]; then
			record scale_p99_ms "$s" "$r" "$(awk -v u="$W_P99" 'BEGIN {printf "%.3f", u / 1000}')"
		else
			failed scale_p99_ms "$s" "$r" "$(wrk_why)"
		fi
	fi
	sc_stop "$s"
}
