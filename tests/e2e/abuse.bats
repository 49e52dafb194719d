#!/usr/bin/env bats
# Handshake abuse: stalled handshakes, per-source caps, the global cap. Healthy clients from other
# sources keep getting through.
# shellcheck disable=SC2154

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

# hold_open N SRC: N TCP connections from SRC that never send a byte; prints the holder's pid.
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
		sleep 30;
	' "$EDGE_PORT" "$1" "$2" >"$DIR/holder.out" 2>&1 3>&- &
	track_pid $!
	retry 100 0.05 grep -q held "$DIR/holder.out"
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
	retry 40 0.05 no_open_daemon_sockets
}

@test "one source at its handshake cap is refused; other sources still complete" {
	config "max_handshakes_per_source = 2" "handshake_timeout = 20s"
	start_daemon -c "$DIR/edged.conf"
	hold_open 2 127.0.0.1
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
	config "max_handshakes = 3" "handshake_timeout = 20s"
	start_daemon -c "$DIR/edged.conf"
	hold_open 3 127.0.0.1
	run raw_tcp 16030100
	assert_success
	run ctl status --json
	assert_output --regexp '"handshake_cap_refused": ?[1-9]'
	assert_output --regexp '"handshakes_inflight": ?3'
}
