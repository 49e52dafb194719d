#!/usr/bin/env bash
# bench/check-report.sh REPORT.md: is this bench/run.sh report well formed? Never looks at how
# fast anything was: only that every cell is there with numbers or a stated reason.
#
#   - the results table has every row of bench/report.sh's ROWS (by label), once, with 8 columns;
#     each server cell "median (min–max)" (optionally "[k of N runs]") or "n/a: reason"; each
#     ratio a number or "n/a: reason". A bare NaN (a cell that failed without a reason) is bad.
#   - the floor table has 2 key types x 4 servers, each cell "median (min–max)" or "n/a: reason",
#     each ratio a number or "n/a: reason".
#   - the sections: Results, Against the floor, Pinning (server and load CPUs), Chart, Machine and
#     versions (CPU, kernel, OpenSSL, the three servers, wrk), Commands (taskset, wrk, s_time,
#     tls-load, openssl speed, h2load on h2.bench.test (nginx, HAProxy; mtls-edged relaying) and on
#     h2t.bench.test (mtls-edged terminating)), and when the scale cell has a number, its
#     tls-load hold with spread sources (--sources); the chart the report shows exists next to it
#     and is a PNG.
#
# Prints one line per problem; exit 0 when there is none, 1 otherwise, 2 on usage.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: bench/check-report.sh REPORT.md" >&2; exit 2; }
report=$1
[ -s "$report" ] || { echo "no report at $report"; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The expected rows, from the one list that makes them.
labels=$(sed -n 's/^\t"[a-z0-9_]*|\([^|]*\)|.*/\1/p' "$here/report.sh")
[ -n "$labels" ] || { echo "cannot read the rows from $here/report.sh"; exit 1; }

bad=0
problem() { echo "$*"; bad=1; }

awk -v labels="$labels" '
function num(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$/ }
function na(x) { return x ~ /^n\/a: [^ ].*/ }
function cell(x) { return x ~ /^[0-9.e+-]+ \([0-9.e+-]+–[0-9.e+-]+\)( \[[0-9]+ of [0-9]+ runs\])?$/ }
function cols(line, c,   n, i) {
	n = split(line, c, " \\| ")
	for (i = 1; i <= n; i++) gsub(/^\| ?| ?\|$/, "", c[i])
	return n
}
BEGIN { nl = split(labels, want, "\n"); for (i = 1; i <= nl; i++) need[want[i]] = 0 }
/^\| cell \| unit \| better \| mtls-edged \| nginx \| HAProxy \| mtls-edged ÷ nginx \| HAProxy ÷ nginx \|$/ { t = 1; next }
/^\| key type \| server \|/ { t = 2; next }
/^\|---/ { next }
/^\| / && t == 1 {
	n = cols($0, c)
	if (n != 8) { print "results row with " n " columns, not 8: " $0; bad++; next }
	if (!(c[1] in need)) { print "unexpected results row: " c[1] " (" c[2] ")"; bad++; next }
	seen[c[1] SUBSEP c[2]]++
	need[c[1]]++
	for (i = 4; i <= 6; i++) if (!cell(c[i]) && !na(c[i])) { print "cell not \"median (min–max)\" nor \"n/a: reason\": \"" c[i] "\" in: " c[1] " (" c[2] ")"; bad++ }
	for (i = 7; i <= 8; i++) if (!num(c[i]) && !na(c[i])) { print "ratio not a number nor \"n/a: reason\": \"" c[i] "\" in: " c[1] " (" c[2] ")"; bad++ }
	next
}
/^\| / && t == 2 {
	n = cols($0, c)
	if (n != 10) { print "floor row with " n " columns, not 10: " $0; bad++; next }
	hw++
	kt[c[1]]++
	for (i = 3; i <= 10; i++) {
		if (i == 5 || i == 8 || i == 9) { if (!num(c[i]) && !na(c[i])) { print "floor table ratio not a number nor \"n/a: reason\": \"" c[i] "\" in: " c[1] ", " c[2]; bad++ } }
		else if (!cell(c[i]) && !na(c[i])) { print "floor table cell not \"median (min–max)\" nor \"n/a: reason\": \"" c[i] "\" in: " c[1] ", " c[2]; bad++ }
	}
	next
}
/^$/ { t = 0 }
/^## / { sec[substr($0, 4)] = 1 }
END {
	for (l in need) {
		# A label may appear on several rows (req/s and MB/s of one size); each at least once.
		if (need[l] == 0) { print "results row missing: " l; bad++ }
	}
	for (k in seen) if (seen[k] > 1) { split(k, p, SUBSEP); print "results row twice: " p[1] " (" p[2] ")"; bad++ }
	if (hw != 8) { print "floor table has " hw + 0 " rows, not 8 (2 key types x 4 servers)"; bad++ }
	if (kt["ECDSA P-256"] != 4 || kt["RSA-2048"] != 4) { print "floor table: want 4 rows each for ECDSA P-256 and RSA-2048"; bad++ }
	split("Results|Pinning|Chart|Machine and versions|Commands", s, "|")
	for (i in s) if (!(s[i] in sec)) { print "section missing: ## " s[i]; bad++ }
	f = 0
	for (x in sec) if (x ~ /^Against the floor/) f = 1
	if (!f) { print "section missing: ## Against the floor"; bad++ }
	exit bad ? 1 : 0
}' "$report" || bad=1

# A section's text: from its heading to the next one.
section() { awk -v h="## $1" 'index($0, h) == 1 {on = 1; next} /^## / {on = 0} on' "$report"; }

machine=$(section "Machine and versions")
for k in CPU memory kernel OpenSSL mtls-edged nginx HAProxy wrk; do
	grep -Eq "^\| $k \| [^ |]" <<<"$machine" || problem "machine and versions: no \"$k\" row with a value"
done
pins=$(section Pinning)
grep -Eq 'taskset -c [0-9]+' <<<"$pins" || problem "pinning: no taskset"
grep -Eq '^\| mtls-edged, nginx, HAProxy .*\| [0-9]+ \|' <<<"$pins" || problem "pinning: no CPU for the servers"
grep -Eq '^\| wrk, openssl s_time, tls-load .*\| [0-9]+ \|' <<<"$pins" || problem "pinning: no CPU for the load"
grep -Eq '^Affinity checked at the end of the run: .*CPU [0-9]' <<<"$pins" || problem "pinning: no affinity check"
cmds=$(section Commands)
for k in 'taskset -c' 'wrk ' 'openssl s_time' 'tls-load churn' 'tls-load hold' 'tls-load serve' 'openssl speed' 'mtls-edged'; do
	grep -qF -- "$k" <<<"$cmds" || problem "commands: no \"$k\" command"
done
# The h2 cell: h2load on the relayed hostname (and the peers') and on mtls-edged's terminating one.
for h in h2.bench.test h2t.bench.test; do
	grep -Eq "h2load .*https://$h/" <<<"$cmds" || problem "commands: no \"h2load ... https://$h/\" command"
done

# The scale cell (its three rows come from ROWS like the others): a number in one of them means
# its client ran, with its sources spread.
if grep -Eq '^\| scale cell: .* \| [0-9.e+-]+ \([0-9.e+-]+–' "$report"; then
	grep -Eq 'tls-load hold .*--sources [0-9]+' <<<"$cmds" ||
		problem "commands: the scale cell has numbers but no \"tls-load hold ... --sources N\" command"
fi

# The fleet cell: its section, with a row of numbers or the reason it has none.
if ! grep -q '^## Fleet: revocation propagation$' "$report"; then
	problem "no \"## Fleet: revocation propagation\" section"
elif ! grep -Eq '^\| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \|' "$report" && ! grep -q '^n/a: bench/fleet.sh' "$report"; then
	problem "the fleet section has no numbers and no reason"
fi

png=$(sed -n 's/^!\[[^]]*\](\([^)]*\.png\))$/\1/p' "$report" | head -1)
if [ -z "$png" ]; then
	problem "the report shows no chart (![...](FILE.png))"
else
	png=$(dirname "$report")/$png
	if [ ! -s "$png" ] || [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then
		problem "chart missing or not a PNG: $png"
	elif [ "$(head -c 16 "$png" | tail -c 4)" != IHDR ] || [ "$(stat -c %s "$png")" -lt 1000 ]; then
		problem "chart is a truncated PNG: $png"
	fi
fi
exit $bad
