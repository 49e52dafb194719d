#!/usr/bin/env bats
# README.md's walkthrough ("Try it"), run as it is written: the shell block between the
# walkthrough markers, with the installed binaries (make install DESTDIR=...) on PATH, in this
# test's directory, a free loopback port and edge-upstream as the application. Every
# "# prints X" comment is checked, and so is the block of verdicts that follows it.
# shellcheck disable=SC2016 # single quotes: text for another shell, on purpose

load helpers

setup() {
	edge_setup
	DEST=$DIR/dest
	run make -s --no-print-directory -C "$REPO" BUILD="$BIN" install DESTDIR="$DEST" PREFIX=/usr
	assert_success
}

teardown() {
	stop_all
}

# walkthrough: the commands between the markers, continuation lines joined, each
# "CMD # prints X" turned into a check that CMD printed exactly X.
walkthrough() {
	sed -n '/^<!-- walkthrough:begin -->$/,/^<!-- walkthrough:end -->$/p' "$REPO/README.md" |
		sed -e '1,2d' -e '$d' | sed -e '$d' |
		awk '/\\$/ { sub(/\\$/, ""); buf = buf $0; next } { print buf $0; buf = "" }' |
		sed -E 's/^(.*[^ ]) +# prints (.*)$/out=$(\1); [ "$out" = "\2" ] || { echo "README says \2, got: $out" >\&2; exit 1; }/'
}

@test "README walkthrough: the commands run and print what the README says" {
	run walkthrough
	assert_success
	script=$output
	# The markers enclose one sh block, and it has the checks and the daemon it promises.
	[ "$(grep -c 'README says' <<<"$script")" -ge 5 ] || fail "few '# prints' checks: $script"
	grep -q '^mtls-edged ' <<<"$script"
	grep -q '^mtls-edgectl rule add ' <<<"$script"
	start_upstream
	port=$(closed_port)
	[ -n "$port" ]
	mkdir "$DIR/try"
	# A daemon left behind by a failing step is stopped with the script.
	printf '%s\n%s\n' 'trap '\''[ -z "${EDGED:-}" ] || kill "$EDGED" 2>/dev/null || true'\'' EXIT' "$script" \
		>"$DIR/walkthrough.sh"
	cd "$DIR/try"
	run env PATH="$DEST/usr/sbin:$DEST/usr/bin:$PATH" PORT="$port" UPSTREAM="127.0.0.1:$UP_PORT" \
		MTLS_EDGE_STATE= timeout 120 bash -e "$DIR/walkthrough.sh"
	[ "$status" -eq 0 ] || fail "the walkthrough failed (status $status):"$'\n'"$output"$'\n'"$(cat edged.log 2>/dev/null)"
	# The verdicts block after the walkthrough is what its last grep printed, in order.
	want=$(sed -n '/^<!-- walkthrough:end -->$/,$p' "$REPO/README.md" |
		sed -n '/^```$/,/^```$/p' | sed -n '2,/^```$/p' | sed '$d')
	[ "$(wc -l <<<"$want")" -eq 4 ] || fail "the README's verdicts block: $want"
	got=$(grep -E '^sni=' <<<"$output")
	[ "$got" = "$want" ] || fail "README shows:"$'\n'"$want"$'\n'"the walkthrough printed:"$'\n'"$got"
	# The daemon drained and stopped; the files are where the README says.
	grep -q 'info stopped' edged.log
	[ -s state/state.db ] && [ -s alice.crt ] && [ "$(stat -c %a alice.key)" = 600 ]
}
