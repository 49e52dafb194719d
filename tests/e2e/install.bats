#!/usr/bin/env bats
# make install / uninstall into a DESTDIR (never this machine's /), the systemd unit checked by
# systemd-analyze, and the man pages checked against the programs' own option and command
# tables and by groff's warnings.
# shellcheck disable=SC2016 # single quotes: text for another shell, on purpose

load helpers

# The files `make install DESTDIR=$1 PREFIX=/usr` puts there, one a line, sorted.
EXPECTED_USR="etc/mtls-edge/mtls-edged.conf
usr/bin/mtls-edgectl
usr/lib/modules-load.d/mtls-edge.conf
usr/lib/systemd/system/mtls-edged.service
usr/sbin/mtls-edged
usr/share/man/man8/mtls-edgectl.8
usr/share/man/man8/mtls-edged.8"

setup() {
	edge_setup
	DEST=$DIR/dest
	mkdir -p "$DEST"
}

teardown() {
	stop_all
}

# make_in TARGET [VAR=VALUE...]: make in the repository, quietly.
make_in() {
	make -s --no-print-directory -C "$REPO" BUILD="$BIN" "$@"
}

# files_under DIR: every file and symlink under DIR, relative, sorted.
files_under() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)
}

# man_source PAGE: the page's roff with escapes folded, for searching option names.
man_source() {
	sed -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\f[BIRP]//g' "$REPO/man/$1"
}

@test "make install DESTDIR PREFIX=/usr: binaries, config, unit, modules-load.d, man pages" {
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	run files_under "$DEST"
	assert_output "$EXPECTED_USR"
	[ -x "$DEST/usr/sbin/mtls-edged" ] && [ -x "$DEST/usr/bin/mtls-edgectl" ]
	[ "$(stat -c %a "$DEST/etc/mtls-edge/mtls-edged.conf")" = 644 ]
	[ "$(stat -c %a "$DEST/usr/lib/systemd/system/mtls-edged.service")" = 644 ]
	cmp "$REPO/config/mtls-edged.conf" "$DEST/etc/mtls-edge/mtls-edged.conf"
	# The unit names the installed paths, with nothing left to fill in.
	run grep -E '^Exec' "$DEST/usr/lib/systemd/system/mtls-edged.service"
	assert_line 'ExecStart=/usr/sbin/mtls-edged -c /etc/mtls-edge/mtls-edged.conf'
	assert_line 'ExecStartPre=/usr/sbin/mtls-edged -c /etc/mtls-edge/mtls-edged.conf --check'
	run grep -cE '@[A-Z]+@' "$DEST/usr/lib/systemd/system/mtls-edged.service"
	assert_output 0
	# man finds the pages in the tree.
	run man -M "$DEST/usr/share/man" -P cat mtls-edgectl
	assert_success
	assert_output --partial 'ca hosts set'
}

@test "the default PREFIX is /usr/local, the configuration still goes to /etc, and the unit follows" {
	run make_in install DESTDIR="$DEST"
	assert_success
	[ -x "$DEST/usr/local/sbin/mtls-edged" ] && [ -x "$DEST/usr/local/bin/mtls-edgectl" ]
	[ -s "$DEST/usr/local/share/man/man8/mtls-edged.8" ]
	[ -s "$DEST/etc/mtls-edge/mtls-edged.conf" ]
	run grep '^ExecStart=' "$DEST/usr/local/lib/systemd/system/mtls-edged.service"
	assert_output 'ExecStart=/usr/local/sbin/mtls-edged -c /etc/mtls-edge/mtls-edged.conf'
	run make_in install DESTDIR="$DEST/x" PREFIX=/opt/me SYSCONFDIR=/opt/me/etc SBINDIR=/opt/me/bin
	assert_success
	[ -x "$DEST/x/opt/me/bin/mtls-edged" ] && [ -s "$DEST/x/opt/me/etc/mtls-edge/mtls-edged.conf" ]
	run grep '^ExecStart=' "$DEST/x/opt/me/lib/systemd/system/mtls-edged.service"
	assert_output 'ExecStart=/opt/me/bin/mtls-edged -c /opt/me/etc/mtls-edge/mtls-edged.conf'
}

@test "the installed binaries run: --help, --version, init, mtls-edged --check -c the installed config" {
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	run "$DEST/usr/sbin/mtls-edged" --help
	assert_success
	assert_output --partial 'Usage: mtls-edged'
	run "$DEST/usr/bin/mtls-edgectl" --version
	assert_success
	assert_output --regexp '^mtls-edgectl [0-9]'
	# The installed configuration keeps the store where the unit's StateDirectory= puts it.
	run grep -E '^state_dir *=' "$DEST/etc/mtls-edge/mtls-edged.conf"
	assert_output 'state_dir = /var/lib/mtls-edge'
	run grep -x 'StateDirectory=mtls-edge' "$DEST/usr/lib/systemd/system/mtls-edged.service"
	assert_success
	# Without a store the check says how to make one.
	run "$DEST/usr/sbin/mtls-edged" -c "$DEST/etc/mtls-edge/mtls-edged.conf" --state "$STATE" --check
	assert_failure 1
	assert_output --partial "mtls-edgectl --state $STATE init --site"
	run "$DEST/usr/bin/mtls-edgectl" --state "$STATE" init --site example.com
	assert_success
	run "$DEST/usr/sbin/mtls-edged" -c "$DEST/etc/mtls-edge/mtls-edged.conf" --state "$STATE" --check
	assert_success
	assert_output --partial 'configuration and store OK: generation'
}

@test "make uninstall removes what install put there and nothing else" {
	# Files of other software in the same tree, some beside ours.
	mkdir -p "$DEST/usr/bin" "$DEST/usr/share/man/man8" "$DEST/etc/mtls-edge" "$DEST/usr/sbin"
	echo other >"$DEST/usr/bin/other-tool"
	echo other >"$DEST/usr/share/man/man8/other.8"
	echo other >"$DEST/usr/sbin/mtls-edged.bak"
	echo mine >"$DEST/etc/mtls-edge/notes.txt"
	before=$(files_under "$DEST")
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	[ -x "$DEST/usr/sbin/mtls-edged" ]
	run make_in uninstall DESTDIR="$DEST" PREFIX=/usr
	assert_success
	run files_under "$DEST"
	assert_output "$before"
	# With nothing else in it, the configuration directory goes too.
	rm "$DEST/etc/mtls-edge/notes.txt"
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	run make_in uninstall DESTDIR="$DEST" PREFIX=/usr
	assert_success
	[ ! -e "$DEST/etc/mtls-edge" ]
	# Uninstalling again is not an error.
	run make_in uninstall DESTDIR="$DEST" PREFIX=/usr
	assert_success
}

@test "a re-install keeps an edited configuration, and so does uninstall" {
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	conf=$DEST/etc/mtls-edge/mtls-edged.conf
	sed -i 's/^workers = 2/workers = 8/' "$conf"
	grep -q '^workers = 8' "$conf"
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	assert_output --partial 'kept the existing'
	grep -q '^workers = 8' "$conf"
	run make_in uninstall DESTDIR="$DEST" PREFIX=/usr
	assert_success
	assert_output --partial 'kept'
	run files_under "$DEST"
	assert_output 'etc/mtls-edge/mtls-edged.conf'
	grep -q '^workers = 8' "$conf"
}

@test "systemd-analyze verify: the installed unit has no warnings" {
	requires systemd-analyze
	run make_in install DESTDIR="$DEST" PREFIX=/usr
	assert_success
	# verify checks that the commands exist: point them at the tree, nothing else changes.
	mkdir -p "$DIR/units"
	sed -e "s|=/usr/sbin/|=$DEST/usr/sbin/|" \
		"$DEST/usr/lib/systemd/system/mtls-edged.service" >"$DIR/units/mtls-edged.service"
	run env MANPATH="$DEST/usr/share/man" systemd-analyze verify "$DIR/units/mtls-edged.service"
	assert_success
	assert_output ''
	# The verifier does catch a mistake (an unknown key) in this form.
	sed -i 's/^ProtectHome=/ProtectHom=/' "$DIR/units/mtls-edged.service"
	run env MANPATH="$DEST/usr/share/man" systemd-analyze verify "$DIR/units/mtls-edged.service"
	assert_output --partial "Unknown key 'ProtectHom'"
}

@test "the unit: the capabilities and hardening issue #8 asks for" {
	unit=$REPO/config/mtls-edged.service.in
	run grep -E '^(CapabilityBoundingSet|AmbientCapabilities)=' "$unit"
	assert_line 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_BPF CAP_PERFMON'
	assert_line 'AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_BPF CAP_PERFMON'
	for want in NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/sys/fs/bpf \
		ProtectHome=yes PrivateTmp=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
		'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK' StateDirectory=mtls-edge \
		Type=exec 'ExecReload=/bin/kill -HUP $MAINPID'; do
		grep -qxF "$want" "$unit" || fail "the unit lacks $want"
	done
	run grep -E '^LimitNOFILE=[0-9]+$' "$unit"
	assert_success
	requires systemd-analyze
	# systemd's own exposure score for it, offline.
	mkdir -p "$DIR/units"
	sed -e "s|@SBINDIR@|$BIN|g" -e "s|@CONFDIR@|$REPO/config|g" "$unit" >"$DIR/units/mtls-edged.service"
	run systemd-analyze security --offline=yes --threshold=25 "$DIR/units/mtls-edged.service"
	assert_success
}

@test "the man pages: no groff warnings" {
	requires groff
	for page in mtls-edged.8 mtls-edgectl.8; do
		run groff -t -man -ww -z "$REPO/man/$page"
		assert_success
		assert_output ''
		run bash -c 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null' _ "$REPO/man/$page"
		assert_output ''
	done
}

@test "mtls-edged(8) documents every option of mtls-edged --help" {
	run "$BIN/mtls-edged" --help
	assert_success
	opts=$(grep -oE '(^|[ ,[])--?[a-z][a-z-]*' <<<"$output" | grep -oE -- '--?[a-z-]+' | sort -u)
	[ "$(wc -l <<<"$opts")" -ge 11 ] || fail "found too few options in --help: $opts"
	src=$(man_source mtls-edged.8 | sed -n '/^\.SH OPTIONS/,/^\.SH /p')
	for o in $opts; do
		grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$src" ||
			fail "mtls-edged --help has $o, the OPTIONS of man/mtls-edged.8 do not"
	done
	# Every [section] key the parser accepts is in the page's CONFIGURATION.
	keys=$(grep -oE 'IS\("[a-z]+", "[a-z_]+"\)' "$REPO/userspace/lib/config.c" | cut -d'"' -f4 | sort -u)
	[ -n "$keys" ]
	src=$(man_source mtls-edged.8 | sed -n '/^\.SH CONFIGURATION/,/^\.SH /p')
	for k in $keys; do
		grep -qE "^\.B $k\$" <<<"$src" || fail "config key $k is not in man/mtls-edged.8"
	done
}

@test "mtls-edgectl(8) documents every command and option of mtls-edgectl" {
	run "$BIN/mtls-edgectl" --help
	assert_success
	# "  ca hosts set ID HOST...   bind ..." -> "ca hosts set": the leading lower-case words.
	cmds=$(sed -n '/^Commands:/,/^$/p' <<<"$output" | sed -n 's/^  \([a-z]\)/\1/p' | sed 's/  .*//' |
		awk '{ p = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) p = p (i > 1 ? " " : "") $i; print p }')
	[ "$(wc -l <<<"$cmds")" -ge 30 ] || fail "found too few commands in --help: $cmds"
	src=$(man_source mtls-edgectl.8)
	while read -r cmd; do
		grep -qE "^\.B $cmd( |\$)" <<<"$src" || fail "'$cmd' has no entry in man/mtls-edgectl.8"
		# shellcheck disable=SC2086 # the command's words
		run "$BIN/mtls-edgectl" $cmd --help
		assert_success
		# shellcheck disable=SC2013 # one option a word
		for o in $(sed -n '/^Options:/,/^$/p' <<<"$output" | grep -oE -- '^  --[a-z0-9-]+'); do
			grep -qE -- "(^|[^a-z-])$o([^a-z0-9-]|\$)" <<<"$src" ||
				fail "'mtls-edgectl $cmd' has $o, man/mtls-edgectl.8 does not"
		done
	done <<<"$cmds"
	for o in --state --json --help --version; do
		grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" <<<"$src" || fail "global option $o is not in the page"
	done
	# The exit codes of --help are the page's EXIT STATUS.
	for code in 0 1 2 3 4 5 6 7; do
		man_source mtls-edgectl.8 | sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' | grep -qx "\.B $code" ||
			fail "exit code $code is not in the page"
	done
}
