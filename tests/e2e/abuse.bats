#!/usr/bin/env bats
# Handshake abuse: stalled and dripped handshakes, per-source caps, the global cap, a flood of
# failing handshakes (build/edge-flood). Healthy clients from other sources and established
# flows keep getting through.

load helpers

setup() {
	edge_setup
	start_upstream
	make_site
	add_sni api.example.test
	client_cert alice
}

teardown() {
	stop_all
}

# hold_open N SRC [accepted]: N TCP connections from SRC that never send a byte, held until the
# test ends (stop_all stops the holder). With "accepted", returns only once the daemon counts
# them as handshakes in flight: connected is not accepted (the workers take connections from the
# backlog on their own time), and a probe sent before they have would find free slots.
hold_open() {
	perl -e '
		use IO::Socket::INET;
		my ($port, $n, $src) = @ARGV;
		my @s;
		for (1 .. $n) {
			push @s, IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port,
				LocalAddr => $src) or die "connect: $!\n";
		}
		$| = 1;
		print "held\n";
		sleep while 1;
	' "$EDGE_PORT" "$1" "$2" >"$DIR/holder.out" 2>&1 3>&- &
	track_pid $!
	retry 100 0.05 grep -q held "$DIR/holder.out"
	[ "${3:-}" != accepted ] || wait_inflight "$1"
}

config() {
	printf '[limits]\n%s\n' "$@" >"$DIR/edged.conf"
}

@test "a stalled handshake is closed at the handshake timeout" {
	config "handshake_timeout = 500ms"
	start_daemon -c "$DIR/edged.conf"
	log_mark
	hold_open 1 127.0.0.1
	wait_log "verdict=fail reason=handshake_timeout"
	retry 200 0.05 no_open_daemon_sockets
}

@test "one source at its handshake cap is refused; other sources still complete" {
	# The held handshakes must outlive the test, however long it takes: no timeout near it.
	config "max_handshakes_per_source = 2" "handshake_timeout = 1h"
	start_daemon -c "$DIR/edged.conf"
	hold_open 2 127.0.0.1 accepted
	# A third handshake from the same source is closed at once, before any TLS.
	run raw_tcp 16030100
	assert_success
	assert_output "closed bytes=0"
	run ctl status --json
	assert_output --regexp '"handshake_source_refused": ?[1-9]'
	# Another source is not affected.
	run edge_curl_as alice api.example.test / --interface 127.0.0.2
	assert_success
	assert_output "hello from upstream"
}

@test "the global handshake cap bounds handshakes in flight" {
	config "max_handshakes = 3" "handshake_timeout = 1h"
	start_daemon -c "$DIR/edged.conf"
	hold_open 3 127.0.0.1 accepted
	run raw_tcp 16030100
	assert_success
	run ctl status --json
	assert_output --regexp '"handshake_cap_refused": ?[1-9]'
	assert_output --regexp '"handshakes_inflight": ?3'
}

# drip SECS_BETWEEN: a connection that sends a ClientHello one byte at a time, SECS_BETWEEN
# apart, until the server closes; prints "closed after N ms" (or "open after N ms" at 20 s).
drip() {
	perl -e '
		use IO::Socket::INET; use Time::HiRes qw(time sleep);
		my ($port, $gap) = @ARGV;
		my @hello = map { hex } unpack("(A2)*", "1603010200010001fc0303" . ("ab" x 400));
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port) or die "$!";
		$SIG{PIPE} = "IGNORE";
		my $t0 = time; my $closed = 0;
		for my $b (@hello) {
			last if time - $t0 > 20;
			my $rin = ""; vec($rin, fileno($s), 1) = 1;
			if (select($rin, undef, undef, 0) > 0) {
				my $buf; my $n = sysread($s, $buf, 4096);
				if (!$n) { $closed = 1; last }
			}
			if (!defined syswrite($s, chr($b))) { $closed = 1; last }
			sleep $gap;
		}
		printf "%s after %d ms\n", $closed ? "closed" : "open", (time - $t0) * 1000;
	' "$EDGE_PORT" "$1"
}

@test "a ClientHello dripped one byte at a time is closed at the timeout; an established download is unaffected" {
	config "handshake_timeout = 1s"
	start_daemon -c "$DIR/edged.conf"
	local ms line
	# An established download, held open (its client reads nothing) until after the drip.
	hold_download alice api.example.test /bytes/8000000
	log_mark
	run ctl status --json
	local before
	before=$(grep -o '"handshake_timeouts": *[0-9]*' <<<"$output" | grep -o '[0-9]*$')

	run drip 0.2
	assert_success
	# Closed by the server: the drip alone would have gone on for 20 s and printed "open".
	assert_output --regexp '^closed after [0-9]+ ms$'
	ms=$(grep -o '[0-9]* ms' <<<"$output" | grep -o '^[0-9]*')
	# Not before the timeout: the deadline is set at the accept, after the client's clock started.
	[ "$ms" -ge 800 ] || fail "closed after $ms ms with handshake_timeout = 1s"
	wait_log "verdict=fail reason=handshake_timeout"
	# Each byte (every 0.2 s) is progress, but the timeout runs from the accept: the drip buys
	# nothing. The daemon's own count: at least the 1 s, and nowhere near the 10 s default.
	line=$(log_since | grep 'verdict=fail reason=handshake_timeout' | head -n1)
	[[ $line =~ duration_ms=([0-9]+) ]] || fail "no duration_ms in: $line"
	[ "${BASH_REMATCH[1]}" -ge 1000 ] && [ "${BASH_REMATCH[1]}" -lt 5000 ] ||
		fail "the dripped handshake ended after ${BASH_REMATCH[1]} ms with handshake_timeout = 1s"
	run ctl status --json
	assert_output --regexp "\"handshake_timeouts\": ?$((before + 1))[,}]"
	release_download
	assert_equal "$(stat -c %s "$DIR/hold.body")" 8000000
	cmp -s "$DIR/hold.body" <(curl -sS "http://127.0.0.1:$UP_PORT/bytes/8000000") ||
		fail "the held download's bytes differ from the upstream's"
}

@test "a flood of failing handshakes: bounded in flight, healthy clients complete, memory flat" {
	make_ca "$PKI/rogue" "rogue CA"
	make_client_cert "$PKI/rogue" "$DIR/mallory" mallory
	config "max_handshakes = 64" "max_handshakes_per_source = 8" "handshake_timeout = 5s"
	start_daemon -c "$DIR/edged.conf"
	local flood=("$BIN/edge-flood" --connect "127.0.0.1:$EDGE_PORT" --sni api.example.test
		--ca "$PKI/server-ca.crt" --bad-cert "$DIR/mallory.crt" --bad-key "$DIR/mallory.key"
		--good-cert "$DIR/alice.crt" --good-key "$DIR/alice.key")
	local rss0 rss1 fp hp max=0 n
	up_mark
	fd_mark

	# Warm-up: the allocator and OpenSSL's caches reach their working size.
	run "${flood[@]}" --count 500 --parallel 8 --mix nocert,wrongca,garbage,cut
	assert_success
	rss0=$(daemon_rss_kb)
	# An established download, held open (its client reads nothing) for the whole flood.
	hold_download alice api.example.test /bytes/20000000

	# 3,000 failing handshakes from 16 threads on 127.0.0.1, 100 healthy ones from 127.0.0.2.
	"${flood[@]}" --count 3000 --parallel 16 --mix nocert,wrongca,garbage,cut \
		>"$DIR/flood.out" 2>&1 3>&- &
	fp=$!
	track_pid "$fp"
	"${flood[@]}" --count 100 --parallel 2 --mix ok --source 127.0.0.2 >"$DIR/healthy.out" 2>&1 3>&- &
	hp=$!
	track_pid "$hp"
	# Handshakes in flight, sampled while the flood runs: at most the flooding source's cap (8)
	# plus the 2 healthy clients of 127.0.0.2.
	while pid_alive "$fp"; do
		n=$(counter handshakes_inflight)
		((n > max)) && max=$n
		((n <= 8 + 2)) || fail "handshakes in flight: $n, above the flooding source's cap (8) + 2"
	done
	wait "$fp" || true
	wait "$hp" || true
	((max > 0)) || fail "no handshake was ever seen in flight during the flood"
	grep -q 'ok=100/100' "$DIR/healthy.out" || fail "healthy clients: $(cat "$DIR/healthy.out")"
	# Refused at the source cap or failed on their own: never served.
	grep -q "unexpected=0 " "$DIR/flood.out" || fail "flood: $(ls -la "$DIR"; cat "$DIR/flood.out")"
	[ "$(counter handshake_source_refused)" -gt 0 ] || fail "the per-source cap never engaged (max in flight $max)"
	assert_equal "$(up_requests)" $((UP_MARK + 100 + 1))
	rss1=$(daemon_rss_kb)
	# 3,000 failed handshakes after the warm-up; a leak of one SSL object each (several KiB)
	# would add more than 8 MiB.
	[ $((rss1 - rss0)) -lt 8192 ] || fail "RSS grew by $((rss1 - rss0)) KiB over 3,000 failed handshakes"
	release_download
	assert_equal "$(stat -c %s "$DIR/hold.body")" 20000000
	fds_back
}
