# bench/report.sh: the report of bench/run.sh, sourced by it: report_write turns the raw runs
# ($RAW) into the tables, the chart and bench/results/<time>.md (bench/check-report.sh says
# whether a report is well formed). Uses run.sh's variables and functions.
# shellcheck shell=bash
# shellcheck disable=SC2154 # set by run.sh

report_write() {
mkdir -p "$OUT"
REPORT=$OUT/$STAMP.md
PNG=$OUT/$STAMP.png
SUMMARY=$RUN/summary.tsv
# The floor of each run, in µs per handshake, from that run's openssl speed (formulas in the report).
awk -F'\t' '$2 == "openssl" && $1 ~ /^speed_/ && $4 ~ /^[0-9.]+$/ && $4 > 0 { v[$3, $1] = $4; runs[$3] = 1 }
END {
	for (r in runs) {
		s = v[r, "speed_p256_sign"]; pv = v[r, "speed_p256_verify"]; x = v[r, "speed_x25519"]
		rs = v[r, "speed_rsa_sign"]; rv = v[r, "speed_rsa_verify"]
		printf "floor_ec\topenssl\t%s\t%s\n", r, (s && pv && x) ? sprintf("%.2f", (1 / s + 2 / pv + 1 / x) * 1e6) : "NaN"
		printf "floor_rsa\topenssl\t%s\t%s\n", r, (rs && rv && pv && x) ? sprintf("%.2f", (1 / rs + 1 / rv + 1 / pv + 1 / x) * 1e6) : "NaN"
	}
}' "$RAW" | sort -t"$(printf '\t')" -k1,1 -k3,3n >"$RUN/floors.tsv"
cat "$RUN/floors.tsv" >>"$RAW"
# summary: metric server runs median min max valid-runs. The statistics are over the runs that
# produced a number; NaN when none did (the table then says how many runs failed).
awk -F'\t' 'NR > 1 {
	k = $1 SUBSEP $2
	if (!(k in n)) { order[++m] = k; n[k] = 0; c[k] = 0 }
	n[k]++
	if ($4 ~ /^-?[0-9.]+$/) v[k, ++c[k]] = $4 + 0
}
END {
	for (i = 1; i <= m; i++) {
		k = order[i]; q = c[k]
		split(k, p, SUBSEP)
		if (q == 0) { printf "%s\t%s\t%d\tNaN\tNaN\tNaN\t0\n", p[1], p[2], n[k]; continue }
		for (a = 1; a <= q; a++) x[a] = v[k, a]
		for (a = 2; a <= q; a++) { t = x[a]; b = a - 1; while (b > 0 && x[b] > t) { x[b + 1] = x[b]; b-- } x[b + 1] = t }
		med = q % 2 ? x[(q + 1) / 2] : (x[q / 2] + x[q / 2 + 1]) / 2
		printf "%s\t%s\t%d\t%.6g\t%.6g\t%.6g\t%d\n", p[1], p[2], n[k], med, x[1], x[q], q
	}
}' "$RAW" >"$SUMMARY"

summ() { # summ METRIC SERVER FIELD(med|min|max|runs|valid)
	awk -F'\t' -v m="$1" -v s="$2" -v f="$3" '$1 == m && $2 == s {
		print (f == "med" ? $4 : f == "min" ? $5 : f == "max" ? $6 : f == "runs" ? $3 : $7); found = 1; exit
	} END { if (!found) print "NaN" }' "$SUMMARY"
}
fmt() { # a number with sensible significant digits, or NaN
	awk -v x="$1" 'BEGIN {
		if (x !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) { print "NaN"; exit }
		a = x < 0 ? -x : x
		if (a >= 100) printf "%.0f\n", x
		else if (a >= 10) printf "%.1f\n", x
		else if (a >= 1) printf "%.2f\n", x
		else printf "%.3g\n", x
	}'
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+(e[-+]?[0-9]+)?$/ || b !~ /^[0-9.]+(e[-+]?[0-9]+)?$/ || b + 0 == 0) print "NaN"
		else printf "%.2f\n", a / b
	}'
}
na_why() { # na_why METRIC SERVER: why its runs gave no number, if run.sh said so (the first run's)
	awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s {print $4; exit}' "$NA"
}
shown() { # shown RATIO: the ratio for a table; NaN (a side with no number) says so
	if [ "$1" = NaN ]; then echo "n/a: a side has no number (see its cell)"; else echo "$1"; fi
}
cell() { # cell METRIC SERVER [SCALE]: "median (min–max)", "[k of N runs]" after it when runs failed
	local med nruns valid why x=${3:-1}
	med=$(summ "$1" "$2" med)
	if [ "$med" = NaN ]; then
		why=$(na_why "$1" "$2")
		if [ -n "$why" ]; then echo "n/a: $why"; else echo NaN; fi
		return
	fi
	if [ "$x" != 1 ]; then
		nruns=$(summ "$1" "$2" runs) valid=$(summ "$1" "$2" valid)
		echo "$(fmt "$(awk -v v="$med" -v x="$x" 'BEGIN {print v * x}')") ($(fmt "$(awk -v v="$(summ "$1" "$2" min)" -v x="$x" 'BEGIN {print v * x}')")–$(fmt "$(awk -v v="$(summ "$1" "$2" max)" -v x="$x" 'BEGIN {print v * x}')"))$([ "$valid" = "$nruns" ] || echo " [$valid of $nruns runs]")"
		return
	fi
	nruns=$(summ "$1" "$2" runs) valid=$(summ "$1" "$2" valid)
	echo "$(fmt "$med") ($(fmt "$(summ "$1" "$2" min)")–$(fmt "$(summ "$1" "$2" max)"))$([ "$valid" = "$nruns" ] || echo " [$valid of $nruns runs]")"
}

# Rows: metric id | label | unit | better | servers measured | chart label. Servers measured: "all",
# "edged:REF" (mtls-edged only; its ratio column is against nginx's REF metric, "-" for none), or
# "self:REF" (mtls-edged only; its ratio is against mtls-edged's own REF metric in the same run).
ROWS=(
	"ka1k_rps|keep-alive, 1 KiB responses|req/s|higher|all|1 KiB req/s"
	"ka1k_mbs|keep-alive, 1 KiB responses|MB/s|higher|all|1 KiB MB/s"
	"ka64k_rps|keep-alive, 64 KiB responses|req/s|higher|all|64 KiB req/s"
	"ka64k_mbs|keep-alive, 64 KiB responses|MB/s|higher|all|64 KiB MB/s"
	"ka1m_rps|keep-alive, 1 MiB responses|req/s|higher|all|1 MiB req/s"
	"ka1m_mbs|keep-alive, 1 MiB responses|MB/s|higher|all|1 MiB MB/s"
	"cpugb_1k|server CPU per GB relayed, 1 KiB responses|CPU-s/GB|lower|all|CPU/GB 1 KiB"
	"cpugb_64k|server CPU per GB relayed, 64 KiB responses|CPU-s/GB|lower|all|CPU/GB 64 KiB"
	"cpugb_1m|server CPU per GB relayed, 1 MiB responses|CPU-s/GB|lower|all|CPU/GB 1 MiB"
	"loadcpu_1k|load CPU busy during the 1 KiB cell (wrk and edge-upstream share it; near 100: the cell measured the load side, and MB/s cannot show a server faster than that)|%|context|all|-"
	"loadcpu_64k|load CPU busy during the 64 KiB cell (as above)|%|context|all|-"
	"loadcpu_1m|load CPU busy during the 1 MiB cell (as above)|%|context|all|-"
	"h2_rps|HTTP/2, 8 connections x 100 streams, 1 KiB responses (h2load; mtls-edged column: the relay, h2 passed unread to an h2c backend; nginx and HAProxy terminate and proxy each stream as HTTP/1.1)|req/s|higher|all|h2 req/s (edged relays)"
	"cpukreq_h2|server CPU per 1,000 HTTP/2 requests, 1 KiB responses (mtls-edged column: the relay; the h2c backend's HTTP/2 work is on the load CPU)|CPU-s|lower|all|CPU/1k h2 req (edged relays)"
	"h2t_rps|HTTP/2, 8 connections x 100 streams, 1 KiB responses, mtls-edged terminating (--protocol http: each stream as HTTP/1.1 to the HTTP/1.1 backend nginx and HAProxy proxy to; ratio: ÷ nginx's HTTP/2 row)|req/s|higher|edged:h2_rps|h2 req/s (edged terminates)"
	"cpukreq_h2t|server CPU per 1,000 HTTP/2 requests, 1 KiB responses, mtls-edged terminating (ratio: ÷ nginx's)|CPU-s|lower|edged:cpukreq_h2|CPU/1k h2 req (edged terminates)"
	"hs_ec_rps|full mTLS handshakes, ECDSA P-256 (wrk, new connection per request)|handshakes/s|higher|all|hs/s ECDSA"
	"hs_rsa_rps|full mTLS handshakes, RSA-2048 (wrk, new connection per request)|handshakes/s|higher|all|hs/s RSA"
	"cpukhs_ec|server CPU per 1,000 handshakes, ECDSA P-256|CPU-s|lower|all|CPU/hs ECDSA"
	"cpukhs_rsa|server CPU per 1,000 handshakes, RSA-2048|CPU-s|lower|all|CPU/hs RSA"
	"hs_rules_rps|full mTLS handshakes, ECDSA P-256, a hostname with 1,000 identity rules (ratio: ÷ mtls-edged without rules)|handshakes/s|higher|self:hs_ec_rps|hs/s 1,000 rules"
	"cpukhs_rules|server CPU per 1,000 handshakes, ECDSA P-256, 1,000 identity rules (ratio: ÷ mtls-edged without rules)|CPU-s|lower|self:cpukhs_ec|CPU/hs 1,000 rules"
	"stime_ec_rps|sequential handshakes, ECDSA P-256 (openssl s_time -new)|handshakes/s|higher|all|s_time ECDSA"
	"stime_rsa_rps|sequential handshakes, RSA-2048 (openssl s_time -new)|handshakes/s|higher|all|s_time RSA"
	"mem_kconn|server memory per 1,000 idle verified connections|MiB|lower|all|MiB/1k idle conns"
	"scale_mem_kconn|scale cell: server memory per 1,000 of the held idle verified connections|MiB|lower|all|MiB/1k conns, scale"
	"scale_accept_rps|scale cell: accept rate (full verified handshakes) while setting up the held connections|connections/s|higher|all|accepts/s, scale"
	"scale_p99_ms|scale cell: p99 latency of a separate 1 KiB keep-alive client while they are held|ms|lower|all|p99 1 KiB, scale"
	"fail_rps|failed handshakes, untrusted client certificate|failures/s|higher|all|failures/s"
	"cpukfail_fail|server CPU per 1,000 failed handshakes|CPU-s|lower|all|CPU/failure"
	"failrule_off_rps|failed attempts, hostname with a block rule (drop), eBPF off (own netns)|attempts/s|higher|edged:fail_rps|attempts/s rule, eBPF off"
	"cpukfail_failrule_off|server CPU per 1,000 failed attempts, block rule, eBPF off (own netns)|CPU-s|lower|edged:cpukfail_fail|CPU/attempt rule, eBPF off"
	"failrule_on_rps|failed attempts, block rule + eBPF offender drop (own netns)|attempts/s|higher|edged:fail_rps|attempts/s rule, eBPF on"
	"cpukfail_failrule_on|server CPU per 1,000 failed attempts, block rule + eBPF offender drop (own netns)|CPU-s|lower|edged:cpukfail_fail|CPU/attempt rule, eBPF on"
)
CHART_PEERS=$RUN/chart-peers.dat
CHART_HW=$RUN/chart-hw.dat
CHART_HS=$RUN/chart-hs.dat
: >"$CHART_PEERS"
TABLE=$RUN/table.md
{
	echo "| cell | unit | better | mtls-edged | nginx | HAProxy | mtls-edged ÷ nginx | HAProxy ÷ nginx |"
	echo "|---|---|---|---|---|---|---|---|"
	for row in "${ROWS[@]}"; do
		IFS='|' read -r id label unit better who short <<<"$row"
		e=$(cell "$id" edged)
		if [ "$who" = all ]; then
			n=$(cell "$id" nginx) h=$(cell "$id" haproxy)
			re=$(ratio "$(summ "$id" edged med)" "$(summ "$id" nginx med)")
			rh=$(ratio "$(summ "$id" haproxy med)" "$(summ "$id" nginx med)")
			[ "$short" = - ] || printf '"%s" %s %s\n' "$short" "$re" "$rh" >>"$CHART_PEERS"
		else
			n="n/a: mtls-edged only" h="n/a: mtls-edged only" rh="n/a: mtls-edged only"
			ref=${who#*:} refsrv=nginx
			[[ $who == self:* ]] && refsrv=edged
			if [ "$ref" = - ]; then
				re="n/a: nginx has no such row"
			else
				re=$(ratio "$(summ "$id" edged med)" "$(summ "$ref" "$refsrv" med)")
				[ "$re" = NaN ] && [ -n "$(na_why "$id" edged)" ] && re="n/a: $(na_why "$id" edged)"
				if [[ $re =~ ^[0-9.]+$ && $refsrv == nginx ]]; then # the chart is against nginx
					printf '"%s" %s NaN\n' "$short" "$re" >>"$CHART_PEERS"
				fi
			fi
		fi
		echo "| $label | $unit | $better | $e | $n | $h | $(shown "$re") | $(shown "$rh") |"
	done
} >"$TABLE"

FLOOR_EC=$(summ floor_ec openssl med) FLOOR_RSA=$(summ floor_rsa openssl med) # µs
LIMIT_EC=$(awk -v f="$FLOOR_EC" 'BEGIN {if (f + 0 > 0) printf "%.1f", 1e6 / f; else print "NaN"}')
LIMIT_RSA=$(awk -v f="$FLOOR_RSA" 'BEGIN {if (f + 0 > 0) printf "%.1f", 1e6 / f; else print "NaN"}')
inv() { awk -v f="$1" 'BEGIN {if (f + 0 > 0) printf "%.1f\n", 1e6 / f; else print "NaN"}'; } # µs -> 1/s
speed() { cell "speed_$1" openssl; } # openssl speed, median (min–max) over the runs
HWTABLE=$RUN/hw.md
: >"$CHART_HW"
: >"$CHART_HS"
{
	echo "| key type | server | handshakes/s | limit from the floor (handshakes/s) | handshakes/s ÷ limit | CPU per handshake (µs) | floor per handshake (µs) | CPU ÷ floor | CPU ÷ reference server | server CPU busy during the cell (%) |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for k in ec rsa; do
		if [ "$k" = ec ]; then kl="ECDSA P-256" lim=$LIMIT_EC fl=$FLOOR_EC; else kl="RSA-2048" lim=$LIMIT_RSA fl=$FLOOR_RSA; fi
		hs=() cr=()
		ref_us=$(awk -v c="$(summ "cpukhs_$k" ref med)" 'BEGIN {if (c ~ /^[0-9.]+/) printf "%.1f", c * 1000; else print "NaN"}')
		for s in "${SERVERS[@]}" ref; do
			med=$(summ "hs_${k}_rps" "$s" med)
			cpu_us=$(awk -v c="$(summ "cpukhs_$k" "$s" med)" 'BEGIN {if (c ~ /^[0-9.]+/) printf "%.1f", c * 1000; else print "NaN"}')
			hs+=("$(ratio "$med" "$lim")")
			cr+=("$(ratio "$cpu_us" "$fl")")
			# The limit's min–max: 1/floor at the floor's max and min.
			lim_cell="$(fmt "$lim") ($(fmt "$(inv "$(summ "floor_$k" openssl max)")")–$(fmt "$(inv "$(summ "floor_$k" openssl min)")"))"
			echo "| $kl | ${NAME[$s]} | $(cell "hs_${k}_rps" "$s") | $lim_cell | $(shown "${hs[-1]}") | $(cell "cpukhs_$k" "$s" 1000) | $(cell "floor_$k" openssl) | $(shown "${cr[-1]}") | $(shown "$(ratio "$cpu_us" "$ref_us")") | $(cell "busy_hs_$k" "$s") |"
		done
		printf '"%s" %s %s %s %s\n' "$kl" "${hs[@]}" >>"$CHART_HS"
		printf '"%s" %s %s %s %s\n' "$kl" "${cr[@]}" >>"$CHART_HW"
	done
} >"$HWTABLE"

# The offender drop in one line: CPU per failed attempt with eBPF on ÷ with it off.
BPF_GAIN=$(ratio "$(summ cpukfail_failrule_on edged med)" "$(summ cpukfail_failrule_off edged med)")

gnuplot -e "peers='$CHART_PEERS'; hs='$CHART_HS'; hw='$CHART_HW'; out='$PNG'; subtitle='$STAMP'" \
	"$BENCH/chart.gp" 2>"$RUN/gnuplot.err" || say "gnuplot failed: $(cat "$RUN/gnuplot.err")"

other_med=$(awk -F'\t' '$1 == "other_cpu0" {print $4}' "$RAW" | sort -g | awk '{a[NR] = $1} END {print NR ? a[int((NR + 1) / 2)] : "NaN"}')
other_max=$(awk -F'\t' '$1 == "other_cpu0" {print $4}' "$RAW" | sort -g | tail -1)
errors_total=$(awk -F'\t' '$1 ~ /^errors_/ && $4 > 0 {n += $4} END {print n + 0}' "$RAW")
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
git_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=
if git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
	git_dirty=" (with uncommitted changes)"
fi
# The kTLS section (--ktls): the 64 KiB and 1 MiB keep-alive cells of four servers in the same
# runs, as ratios; in the emulated guest the absolute numbers mean nothing.
ktls_section() {
	local id label m k u nk n
	echo "## The kTLS path"
	echo
	echo "The 64 KiB and 1 MiB keep-alive cells above, in the same runs (interleaved), on four servers: mtls-edged on the kTLS splice path (\`[tls] ktls = on\`, SNI objects with \`--protocol ${BENCH_PROTOCOL:-http}\`: once verified, the session's keys are in the kernel and the bytes move socket to pipe to socket), mtls-edged on its userspace relay (\`[tls] ktls = off\`, the same state), nginx with \`ssl_conf_command Options KTLS\` (OpenSSL hands its records to the kernel) and nginx as above. Ratios only matter here${KTLS_GUEST:+: this run is in the kTLS guest, qemu TCG, where every instruction is emulated and the absolute figures mean nothing}."
	echo
	echo "| cell | unit | better | mtls-edged kTLS | mtls-edged userspace | nginx kTLS | nginx | kTLS ÷ userspace (mtls-edged) | mtls-edged kTLS ÷ nginx kTLS |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for row in "ka64k_mbs|keep-alive MB/s, 64 KiB responses|MB/s|higher" "ka1m_mbs|keep-alive MB/s, 1 MiB responses|MB/s|higher" \
		"cpugb_64k|server CPU per GB relayed, 64 KiB|CPU-s|lower" "cpugb_1m|server CPU per GB relayed, 1 MiB|CPU-s|lower"; do
		IFS='|' read -r id label u m <<<"$row"
		k=$(summ "$id" edged med) n=$(summ "$id" edged_user med) nk=$(summ "$id" nginx_ktls med)
		echo "| $label | $u | $m | $(cell "$id" edged) | $(cell "$id" edged_user) | $(cell "$id" nginx_ktls) | $(cell "$id" nginx) | $(shown "$(ratio "$k" "$n")") | $(shown "$(ratio "$k" "$nk")") |"
	done
	echo
	echo "- Which path each mtls-edged served on (its status counters at the end): kTLS daemon ${paths:-unknown}; userspace daemon $(grep -o '"path_userspace":[0-9]*,"path_ktls":[0-9]*' "$RUN/edged-user-status.json" 2>/dev/null || echo unknown). kTLS in the daemon: ${ktls_line:-unknown}."
	echo "- Checked before the runs: one request to each kTLS server raised the kernel's TlsTxSw (TX sessions it took, /proc/net/tls_stat), and none to the two others. $KTLS_CHECK"
	echo "- /proc/net/tls_stat at the end: $(tr -s ' \t' ' ' <"$RUN/tls_stat" 2>/dev/null | paste -sd';' - | sed 's/;/; /g')."
	echo
}

ktls_line=$(grep -o '"ktls":"\([^"\\]\|\\.\)*"' "$RUN/edged-status.json" 2>/dev/null | sed 's/^"ktls":"//; s/"$//; s/\\"/"/g' || true)
bpf_line=$(grep -o '"bpf":{[^}]*}' "$RUN/edged-ns-status.json" 2>/dev/null | sed 's/^"bpf"://; s/"//g; s/,/, /g' || true)
paths=$(grep -o '"path_userspace":[0-9]*,"path_ktls":[0-9]*' "$RUN/edged-status.json" 2>/dev/null || true)

{
	echo "# mtls-edge benchmark, $STARTED"
	echo
	if [ "$SMOKE" = 1 ]; then
		echo "**Smoke run** ($RUNS run per cell, ${DUR} s load runs, $HOLD_COUNT idle connections, $SCALE_COUNT in the scale cell): checks that the benchmark works; the numbers mean little."
	else
		echo "$RUNS runs per cell, ${DUR} s per keep-alive and wrk handshake run, ${STIME_DUR} s per s_time and failure run, $HOLD_COUNT idle connections, $SCALE_COUNT in the scale cell; the whole benchmark took $ELAPSED s."
	fi
	echo
	if awk -v m="$other_med" 'BEGIN {exit !(m + 0 > 10)}'; then
		echo "**Warning: the machine was busy during this run** (other work took a median ${other_med}% of CPU $SUT_CPU while a server was under load): the absolute numbers and the CPU figures are inflated and noisy; ratios within one run are still side by side, but rerun on a quiet machine before quoting them."
		echo
	fi
	echo "mtls-edged (--workers 1, SNI objects with \`--protocol ${BENCH_PROTOCOL:-http}\`), nginx (worker_processes 1) and HAProxy (nbthread 1) each on CPU $SUT_CPU;"
	echo "every client (wrk, openssl s_time, tls-load) and the upstream (edge-upstream, 1 worker) on CPU $LOAD_CPU."
	echo "Same server certificates, same client certificates (issued by mtls-edge's built-in CA), same upstream, same clients; runs interleaved across the three servers."
	echo
	echo "## Results"
	echo
	echo "Each cell: median of $RUNS run(s) (min–max); \"[k of N runs]\" when some runs failed (the failures are in the raw data). Ratios: median ÷ nginx's median in the same run; for the \"lower\" rows a ratio below 1 means less CPU or memory than nginx."
	echo
	cat "$TABLE"
	echo
	echo "- MB = 10^6 bytes of HTTP response (head and body, as counted by wrk); GB = 10^9 bytes. CPU is utime+stime of all the server's processes and threads (/proc/PID/stat, before and after each run), including the kernel work done in their context."
	echo "- Handshake cells: wrk -t1 -c$CONNS with \`Connection: close\`, so every request is a new TCP connection and a full TLS 1.3 handshake with the client certificate (the shim drops any session; no server issues tickets); s_time: one connection at a time, handshake only."
	echo "- Memory: RSS growth of all the server's processes while tls-load holds $HOLD_COUNT connections, each after a verified handshake and one answered \`GET /\` (each server then holds an upstream connection per idle client: mtls-edged gives one back to its pool only when the client connection ends), scaled to 1,000. Each run starts a fresh server process and warms it up for 1 s first (an allocator keeps what it got, so a second measurement in the same process would read almost nothing). Kernel socket memory is not in RSS. The floor under every server that keeps OpenSSL's session object for an idle connection (nginx, HAProxy, mtls-edged with \`[tls] record_layer = openssl\`): OpenSSL 3.0's own allocations for the server side of one such session (bench/ssl-mem.c: the same certificates and settings, in memory, no server around it), $(cell sslmem_kconn openssl) MiB per 1,000 sessions in $(fmt "$(summ sslmem_allocs openssl med)") allocations each (malloc's overhead not counted); its largest sites: $(awk '{printf "%s%s %.0f B", (NR > 1 ? ", " : ""), $4, $2}' "$RUN/sslmem-sites.txt" 2>/dev/null). mtls-edged's TLS 1.3 sessions (the bench's) leave it after the handshake: its own record layer keeps two AEAD contexts and the client's leaf, and the SSL object is freed."
	echo "- Scale cell: $SCALE_COUNT idle verified connections held at once${SC_SHORT:+ (**$SC_SHORT**)}, each after a full mTLS handshake (ECDSA P-256 client certificate) and one answered keep-alive \`GET /\`, set up by tls-load hold $CONNS at a time from $SC_SOURCES source addresses (127.1.0.1 and up, $SCALE_PER_SOURCE connections each, bound before the connect$([ -n "$SC_SPORT" ] && echo ", local ports from $SC_SPORT, above the kernel's ephemeral range")) so that one server port does not run out of local ports. A fresh process of each server per run (same binaries and configs as the other cells$([ -n "$SC_NS_PID" ] && echo ", in a network namespace of their own with an edge-upstream of their own on the same port: the sockets, their ports and TIME_WAITs stay out of the host's loopback")), warmed up for 1 s. Accept rate: held connections ÷ the seconds to set them all up (client and server on a core each: it may be the client's limit). Memory: RSS growth of all the server's processes once all are held, scaled to 1,000 (kernel socket memory is not in RSS). p99: wrk -t1 -c$CONNS --latency for ${SC_DUR} s on 1 KiB keep-alive responses while they are held (wrk's own connections are new handshakes). A run fails (n/a) when fewer than $SCALE_COUNT were held, or the server closed some of them during the hold. Open files: this run's limit $(ulimit -n) (raised by run.sh); nginx worker_connections $NGX_CONNS, worker_rlimit_nofile $NGX_NOFILE; HAProxy maxconn $HAP_MAXCONN; mtls-edged inherits the limit. Upstream connections the servers held for the $SCALE_COUNT (median over runs): mtls-edged $(fmt "$(summ scale_upstream_conns edged med)"), nginx $(fmt "$(summ scale_upstream_conns nginx med)"), HAProxy $(fmt "$(summ scale_upstream_conns haproxy med)")."
	echo "- HTTP/2: h2load -t1 -c$H2_CONNS -m100 through the shim (client certificate ECDSA P-256), the same 1 KiB answer from one nginx backend on CPU $LOAD_CPU, which has an HTTP/1.1 port and an h2c (prior knowledge) port. Like for like: nginx, HAProxy and mtls-edged terminating (\`h2t.bench.test\`: \`--protocol http --alpn h2,http/1.1\`, the \"mtls-edged terminating\" rows, measured in each run right after the other three) take HTTP/2 and proxy each stream as HTTP/1.1 to the HTTP/1.1 port, each over its keep-alive connections (mtls-edged: the worker's pool, \`upstream_keepalive\`). The relay (\`h2.bench.test\`: \`--protocol tcp --alpn h2,http/1.1\`, the mtls-edged column of the first two HTTP/2 rows) passes the HTTP/2 bytes unread to the h2c port: the HTTP/2 work is then the backend's, on the load CPU, and not in the server CPU figure."
	echo "- Failures: tls-load churn with $CONNS connections in flight, a client certificate from a CA none of the servers trusts. nginx completes the handshake and answers HTTP 400; HAProxy and mtls-edged end the handshake with an alert."
	echo "- Block rule and the eBPF offender drop (mtls-edged only; the ratio column is against nginx's failed-handshake row): a hostname of mtls-edged with \`rule add --action drop\`, the same untrusted client, the client giving each attempt 1 s. A fresh daemon per run, in a network namespace the benchmark makes (\`unshare -n\`, loopback up; the daemon and the client enter it with \`nsenter\`), with its maps pinned under a directory of its own in /sys/fs/bpf; both are removed at the end, on failure too. Before each measured run one failed attempt makes 127.0.0.1 an offender for that hostname (else the first $CONNS attempts, in flight before any failure, would all be full handshakes), and with eBPF on the bench checks that the next attempt gets no answer. With eBPF on, the daemon's tc program then drops the offender's ClientHellos in the kernel until \`[bpf] offender_ttl\` (60 s): they never reach the daemon's TLS code. The daemon still accepts each TCP connection; it waits for a ClientHello that never comes until its handshake deadline (\`handshake_timeout\`, 10 s), and once the source has \`max_handshakes_per_source\` (64) such connections it closes the new ones at accept: the attempt rate is then that of accept-and-close, and the CPU is that of the accepts. The kernel's drop itself runs in the softirq of the sending side (the client's CPU on loopback) and is not in the server's CPU. With eBPF off, every attempt is a full failed handshake. CPU per failed attempt, on ÷ off: **$BPF_GAIN**. eBPF in the namespace: ${bpf_line:-unknown}."
	echo "- Client certificate for wrk: bench/wrk-cert-shim.c (LD_PRELOAD; loads EDGE_SHIM_CERT/EDGE_SHIM_KEY into every SSL_CTX, sets the SNI, drops sessions). Checked in this run against nginx with \`ssl_verify_client on\`: HTTP $SHIM_NOCERT without it, $SHIM_CERT with it."
	echo "- Machine noise: CPU $SUT_CPU time used by anything but the server under test during the load runs: median ${other_med}%, max ${other_max}% of wall time. HTTP/socket errors over all wrk runs: $errors_total (a run with over 1% errors counts as failed: NaN)."
	echo
	echo "## Against the floor: openssl speed, and a minimal OpenSSL server"
	echo
	echo "openssl speed on CPU $SUT_CPU ($SPEED_SECS s per algorithm, once per run), median (min–max): ECDSA P-256 $(speed p256_sign) sign/s, $(speed p256_verify) verify/s; RSA-2048 $(speed rsa_sign) sign/s, $(speed rsa_verify) verify/s; X25519 $(speed x25519) derive/s."
	echo
	echo "Two floors, two ratios. The arithmetic floor per full mTLS handshake is the public-key work the server must do, at openssl speed's rates (\"CPU ÷ floor\"); the library floor is what a minimal OpenSSL server spends on the same handshake (\"CPU ÷ reference server\"). With OpenSSL 3.0 the second is about 4–6 times the first for every server: bench/PROFILE.md has the profile (X.509 and public-key decoding through the 3.0 decoder framework, provider fetches, the kernel's TCP work, allocations)."
	echo
	echo "- ECDSA P-256 profile (server key P-256, client key P-256, client CA P-256): 1 P-256 sign (CertificateVerify) + 2 P-256 verifies (the CA's signature on the client certificate, the client's CertificateVerify) + 1 X25519 derive = $(fmt "$FLOOR_EC") µs, limit $(fmt "$LIMIT_EC") handshakes/s on one core."
	echo "- RSA-2048 profile (server key RSA-2048, client key RSA-2048, client CA P-256): 1 RSA-2048 sign + 1 RSA-2048 verify (client CertificateVerify) + 1 P-256 verify (the CA's signature) + 1 X25519 derive = $(fmt "$FLOOR_RSA") µs, limit $(fmt "$LIMIT_RSA") handshakes/s."
	echo "- Not counted, so the floor is a lower bound: the ephemeral X25519 key generation (a fixed-base multiplication, cheaper than a derive), hashing, HKDF, record encryption, the TCP connection and the HTTP request. TLS 1.3 signs with RSA-PSS where openssl speed times PKCS#1 v1.5: the same private-key operation."
	echo "- OpenSSL reference server: tls-load serve (bench/tls-load.c), the least an OpenSSL server can do for the same exchange: one connection at a time, blocking; require and verify the client certificate (no tickets, no session cache), read the request head, answer a fixed 200, close. Same CPU, certificates and client (tls-load churn, $CONNS connections in flight, Connection: close). \"CPU ÷ reference server\" is the issue's \"CPU per handshake against the library's own floor\" as measured; \"CPU ÷ floor\" is against the openssl speed arithmetic."
	echo "- The client core does about as much public-key work as the server (for RSA the same RSA sign), so with one core each the handshake rate may be bounded by the client: \"server CPU busy\" below tells how loaded the server was. CPU ÷ floor does not depend on that."
	echo
	cat "$HWTABLE"
	echo
	if [ -s "$RUN/fleet.md" ]; then
		cat "$RUN/fleet.md"
		echo
	fi
	[ "$KTLS" = 0 ] || ktls_section
	echo "## Chart"
	echo
	echo "![ratios to nginx and to the openssl speed limit]($(basename "$PNG"))"
	echo
	echo "## Pinning"
	echo
	echo "| process | CPU | how |"
	echo "|---|---|---|"
	echo "| mtls-edged, nginx, HAProxy (the server under test, one at a time under load) | $SUT_CPU | \`taskset -c $SUT_CPU\` at start (all threads and worker processes inherit it) |"
	echo "| mtls-edged in the eBPF cell's network namespace | $SUT_CPU | \`nsenter -t PID -n taskset -c $SUT_CPU\` |"
	echo "| OpenSSL reference server (tls-load serve), openssl speed | $SUT_CPU | \`taskset -c $SUT_CPU\` |"
	echo "| wrk, openssl s_time, tls-load churn/hold (every client) | $LOAD_CPU | \`taskset -c $LOAD_CPU\` |"
	echo "| the scale cell's servers / its client, wrk and edge-upstream$([ -n "$SC_NS_PID" ] && echo " (its own network namespace)") | $SUT_CPU / $LOAD_CPU | \`$([ -n "$SC_NS_PID" ] && echo "nsenter -t PID -n ")taskset -c\` |"
	echo "| edge-upstream (the upstream, 1 worker) | $LOAD_CPU | \`taskset -c $LOAD_CPU\` |"
	echo
	echo "Affinity checked at the end of the run: $PIN_CHECK."
	echo
	echo "## Machine and versions"
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| CPU | $cpu_model, $ncpu CPUs (server on CPU $SUT_CPU, load on CPU $LOAD_CPU) |"
	echo "| memory | $mem_total |"
	echo "| kernel | $(uname -srmv) |"
	echo "| load average at the start / end | $LOADAVG0 / $(cut -d' ' -f1-3 /proc/loadavg) |"
	echo "| OpenSSL | $(openssl version) |"
	echo "| mtls-edged | $("$BIN/mtls-edged" --version 2>&1 | head -1), git $git_rev$git_dirty; kTLS: ${ktls_line:-unknown}; ${paths:-path counters unknown} |"
	echo "| nginx | $(nginx -v 2>&1 | head -1) |"
	echo "| HAProxy | $(haproxy -v 2>&1 | head -1) |"
	echo "| wrk | $(wrk --version 2>&1 | head -1) |"
	echo "| gnuplot | $(gnuplot --version 2>&1 | head -1) |"
	echo
	echo "## Commands"
	echo
	echo "Paths are this run's temporary directory. Each command ran once per run per cell."
	echo
	echo '```'
	printf '%q ' "${EDGED_CMD[@]}"; echo "   # pinned: taskset -c $SUT_CPU"
	echo "nginx -p $RUN -c $RUN/nginx.conf -e $RUN/nginx-error.log   # pinned: taskset -c $SUT_CPU"
	echo "haproxy -db -f $RUN/haproxy.cfg   # pinned: taskset -c $SUT_CPU"
	echo "# the scale cell's servers: nginx with $RUN/scale-nginx.conf (nginx.conf but its pid and error log), haproxy with $RUN/scale-haproxy.cfg (the same as haproxy.cfg but the port)"
	echo "$BIN/edge-upstream --listen 127.0.0.1:0 --port-file $RUN/upstream.port --workers 1   # pinned: taskset -c $LOAD_CPU"
	printf '%q ' "${SPEED_CMD[@]}"; echo
	cat "$CMDS"
	echo '```'
	echo
	echo "mtls-edged's state (mtls-edgectl): \`init --site bench.test --ca-key-type ec-p256\`; \`cert create --key-type ec-p256|rsa-2048\`; \`sni add {ec,rsa,blocked}.bench.test --mtls required\`; \`sni add h2.bench.test --mtls required --protocol tcp --alpn h2,http/1.1\` (the relay, to the h2c port); \`sni add h2t.bench.test --mtls required --protocol http --alpn h2,http/1.1\` (terminating, to the HTTP/1.1 port); \`rule add --host blocked.bench.test --action drop\`."
	echo
	echo "<details><summary>nginx.conf</summary>"
	echo
	echo '```nginx'
	cat "$RUN/nginx.conf"
	echo '```'
	echo "</details>"
	echo
	echo "<details><summary>haproxy.cfg</summary>"
	echo
	echo '```'
	cat "$RUN/haproxy.cfg"
	echo '```'
	echo "</details>"
	echo
	echo "<details><summary>every run (metric, server, run, value)</summary>"
	echo
	echo '```'
	cat "$RAW"
	echo '```'
	echo "</details>"
} >"$REPORT"
}
