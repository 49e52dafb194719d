#!/usr/bin/env bats
# Logs (issue 8): [daemon] log_format = text|logfmt|json (and --log-format); one line per
# handshake and per close with their fields; every line parses; no key material.

load helpers
bats_require_minimum_version 1.5.0

API=api.example.test

setup() {
	api_setup
	# A subject that needs quoting in every format.
	run ctl cert create --cn 'Eve "the" Tester = x' --out "$DIR/quoted"
	assert_success
}

teardown() {
	stop_all
}

# logfmt_parse: each line of stdin as logfmt; prints KEY<TAB>VALUE lines (values unescaped),
# a blank line after each record; fails naming the first line that does not parse.
logfmt_parse() {
	perl -e '
		use strict;
		my $n = 0;
		while (my $line = <STDIN>) {
			$n++;
			chomp $line;
			my $rest = $line;
			my %seen;
			while ($rest ne "") {
				$rest =~ s/^([A-Za-z_][A-Za-z0-9_.]*)=// or die "logfmt:$n: no key at: $rest\n";
				my $k = $1;
				my $v;
				if ($rest =~ s/^"((?:[^"\\]|\\["\\ntr]|\\x[0-9a-f]{2})*)"//) {
					$v = $1;
					$v =~ s/\\(x([0-9a-f]{2})|.)/defined $2 ? chr(hex $2) : $1 eq "n" ? "\n" : $1 eq "t" ? "\t" : $1 eq "r" ? "\r" : $1/ge;
				} elsif ($rest =~ s/^([^\s"=\\]+)//) {
					$v = $1;
				} else {
					die "logfmt:$n: bad value for $k at: $rest\n";
				}
				die "logfmt:$n: $k twice\n" if $seen{$k}++;
				print "$k\t$v\n";
				last if $rest eq "";
				$rest =~ s/^ (?=\S)// or die "logfmt:$n: want one space at: $rest\n";
			}
			for my $k ("time", "level", "msg") { die "logfmt:$n: no $k\n" unless $seen{$k} }
			print "\n";
		}
	'
}

# record FILE MSG N: the Nth (1-based) parsed record with msg=MSG from logfmt_parse output.
record() {
	awk -v want="$2" -v n="$3" 'BEGIN { RS = ""; FS = "\n" }
		{ for (i = 1; i <= NF; i++) if ($i == "msg\t" want) { if (++c == n) print; next } }' "$1"
}

field() { # field RECORD KEY
	awk -F '\t' -v k="$2" '$1 == k { print substr($0, length(k) + 2) }' <<<"$1"
}

@test "logfmt: every line parses; handshake and close lines carry their fields" {
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	start_daemon --log-format logfmt
	log_mark
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	run edge_curl_as quoted "$API" /
	assert_output "hello from upstream"
	run edge_curl_as mallory "$API" /
	assert_failure
	wait_log 'msg=close '
	wait_log 'msg=handshake .*reason=unknown_ca'
	retry 60 0.05 bash -c "[ \$(grep -c 'msg=close' '$LOG') -ge 2 ]"
	logfmt_parse <"$LOG" >"$DIR/parsed" || fail "the log is not logfmt"

	hs=$(record "$DIR/parsed" handshake 1)
	[ "$(field "$hs" level)" = info ]
	[ "$(field "$hs" sni)" = "$API" ]
	[ "$(field "$hs" verdict)" = pass ]
	[ "$(field "$hs" reason)" = ok ]
	[ "$(field "$hs" subject)" = "CN=alice" ]
	[ "$(field "$hs" serial)" = "$(openssl x509 -in "$DIR/alice.crt" -noout -serial | cut -d= -f2)" ]
	[ "$(field "$hs" issuer)" = "$(openssl x509 -in "$DIR/alice.crt" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')" ]
	[[ $(field "$hs" tls) == TLSv1.* ]]
	[ -n "$(field "$hs" cipher)" ]
	[[ $(field "$hs" peer) == 127.0.0.1:* ]]
	[[ $(field "$hs" duration_ms) =~ ^[0-9]+$ ]]

	hs=$(record "$DIR/parsed" handshake 2)
	[ "$(field "$hs" subject)" = "$(openssl x509 -in "$DIR/quoted.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" ]
	[[ $(field "$hs" subject) == *'\"the\" Tester = x' ]]

	hs=$(record "$DIR/parsed" handshake 3)
	[ "$(field "$hs" verdict)" = fail ]
	[ "$(field "$hs" reason)" = unknown_ca ]
	[ "$(field "$hs" subject)" = CN=mallory ]
	[ -n "$(field "$hs" detail)" ]

	cl=$(record "$DIR/parsed" close 1)
	[ "$(field "$cl" sni)" = "$API" ]
	[[ $(field "$cl" bytes_in) =~ ^[1-9][0-9]*$ ]]
	[[ $(field "$cl" bytes_out) =~ ^[1-9][0-9]*$ ]]
	[[ $(field "$cl" duration_ms) =~ ^[0-9]+$ ]]
	[[ $(field "$cl" path) =~ ^(ktls|userspace)$ ]]
	[ "$(field "$cl" reason)" = "done" ]
	# plain messages are msg values too, and the listening line still names the address
	grep -q '^time=[^ ]* level=info msg="listening addr=127.0.0.1:[0-9]*"$' "$LOG"
}

@test "json: every line is a JSON object; handshake and close lines carry typed fields" {
	start_daemon --log-format json
	log_mark
	run edge_curl_as alice "$API" /
	assert_output "hello from upstream"
	run edge_curl_as quoted "$API" /
	assert_output "hello from upstream"
	run edge_s_client "$API" -tls1_3
	wait_log '"msg":"handshake".*"reason":"no_client_cert"'
	retry 60 0.05 bash -c "[ \$(grep -c '\"msg\":\"close\"' '$LOG') -ge 2 ]"
	jq -e -s 'all(.[]; type == "object" and has("time") and has("level") and has("msg"))' "$LOG" >/dev/null ||
		fail "a log line is not a JSON object with time, level, msg"

	run jq -r -s '[.[] | select(.msg == "handshake")][0] | [.sni, .verdict, .reason, .subject, .tls, (.duration_ms | type)] | @tsv' "$LOG"
	assert_output "$API	pass	ok	CN=alice	$(jq -r -s '[.[] | select(.msg == "handshake")][0].tls' "$LOG")	number"
	run jq -r -s '[.[] | select(.msg == "handshake")][1].subject' "$LOG"
	assert_output "$(openssl x509 -in "$DIR/quoted.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
	run jq -r -s '[.[] | select(.msg == "handshake" and .verdict == "fail")][0] | [.reason, .level] | @tsv' "$LOG"
	assert_output "no_client_cert	info"
	run jq -r -s '[.[] | select(.msg == "close")][0] | [(.bytes_in | type), (.bytes_out | type), (.bytes_in > 0), .path, .reason] | @tsv' "$LOG"
	assert_output --regexp '^number	number	true	(ktls|userspace)	done$'
	run jq -r -s '[.[] | select(.msg | startswith("listening addr="))] | length' "$LOG"
	assert_output 1
}

@test "log_format in the config file; a bad value names the file and line" {
	printf '[daemon]\nlog_format = json\n' >"$DIR/json.conf"
	start_daemon -c "$DIR/json.conf"
	retry 60 0.05 jq -e -s 'any(.[]; .msg | startswith("mtls-edged"))' "$LOG"
	printf '[daemon]\nlog_format = yaml\n' >"$DIR/bad.conf"
	run "$BIN/mtls-edged" -c "$DIR/bad.conf" --state "$STATE" --listen 127.0.0.1:0 --check
	assert_failure 2
	assert_output --partial "bad.conf:2: log_format: 'yaml' is not one of text, logfmt, json"
	run "$BIN/mtls-edged" --state "$STATE" --listen 127.0.0.1:0 --log-format xml --check
	assert_failure 2
	assert_output --partial "--log-format: 'xml' is not one of text, logfmt, json"
}

@test "no key material in any log format, at debug level" {
	for f in text logfmt json; do
		: >"$LOG"
		log_mark
		start_daemon --log-format "$f"
		run edge_curl_as alice "$API" /
		assert_output "hello from upstream"
		run edge_s_client "$API" -tls1_2
		wait_log 'no_client_cert'
		kill -TERM "$EDGE_PID"
		wait_pid "$EDGE_PID" 60 || fail "mtls-edged did not stop" # a bound for a hang only
		cat "$LOG" >>"$DIR/all.log"
	done
	LOG=$DIR/all.log
	! grep -q 'PRIVATE KEY' "$LOG" || false
	! grep -qi 'secret' "$LOG" || false
	# no line of any private key's base64 body appears in the log
	for key in "$DIR/alice.key" "$PKI/$API.key" "$STATE/ca/builtin.key"; do
		[ -s "$key" ] || fail "no key at $key"
		grep -v -- '-----' "$key" | while read -r l; do
			[ ${#l} -lt 16 ] && continue
			! grep -qF -- "$l" "$LOG" || fail "a line of $key is in the log"
		done
	done
}
