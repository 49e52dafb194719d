#!/usr/bin/env bash
# tools/layering.sh [BUILD]: checks with nm that the built objects keep the layers the tree
# shows, and prints TAP:
#   - nothing in userspace/lib calls into userspace/edged or the CLI (lib is what they share);
#   - no circle of calls among the objects of the daemon, of the CLI, or of lib: for each
#     group, an edge A -> B when A needs a symbol B defines, and tsort finds no loop.
# BUILD is the build tree (default build); run `make all` first. Exit 1 when a check fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
obj=$build/obj

groups=(lib edged ctl)
declare -A src=([lib]=userspace/lib [edged]=userspace/edged [ctl]=tools/mtls-edgectl)
declare -A dir=([lib]=$obj/userspace/lib [edged]=$obj/userspace/edged [ctl]=$obj/tools/mtls-edgectl)
for g in "${groups[@]}"; do
	if ! compgen -G "${dir[$g]}/*.o" >/dev/null; then
		echo "1..0 # SKIP no objects in ${dir[$g]} (run make all)"
		exit 0
	fi
done
command -v nm >/dev/null || { echo "layering: nm is missing (package binutils)" >&2; exit 2; }
command -v tsort >/dev/null || { echo "layering: tsort is missing (package coreutils)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# defs: "symbol group/object" for every global symbol an object defines; uses: "object symbol".
for g in "${groups[@]}"; do
	for o in "${dir[$g]}"/*.o; do
		[ -e "${src[$g]}/$(basename "$o" .o).c" ] || continue # a stale object of a source gone
		name=$g/$(basename "$o" .o)
		nm --defined-only -g "$o" | awk -v n="$name" 'NF == 3 { print $3, n }' >>"$tmp/defs"
		nm -u "$o" | awk -v n="$name" '{ print n, $NF }' >>"$tmp/uses"
	done
done
# edges: "from to" for every use a defined symbol resolves (main is defined twice; skip it).
awk 'NR == FNR { if ($1 != "main") def[$1] = $2; next }
     ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' "$tmp/defs" "$tmp/uses" |
	sort -u >"$tmp/edges"

status=0 n=0
check() { # check DESCRIPTION FILE: ok when FILE is empty, else not ok with its lines
	n=$((n + 1))
	if [ -s "$2" ]; then
		echo "not ok $n $1"
		sed 's/^/#   /' "$2"
		status=1
	else
		echo "ok $n $1"
	fi
}

echo "1..4"
awk '$1 ~ /^lib\// && $2 !~ /^lib\// { print $1 " -> " $2 " (" $3 ")" }' "$tmp/edges" >"$tmp/bad"
check "nothing in userspace/lib calls into userspace/edged or the CLI" "$tmp/bad"
for g in edged ctl lib; do
	awk -v g="$g/" 'index($1, g) == 1 && index($2, g) == 1 { print $1, $2 }' "$tmp/edges" |
		sort -u >"$tmp/$g.pairs"
	if tsort "$tmp/$g.pairs" >/dev/null 2>"$tmp/$g.loop"; then
		: >"$tmp/$g.loop"
	else
		{
			grep -v '^tsort: .*input contains a loop' "$tmp/$g.loop" | sed 's/^tsort: //' |
				sort -u | paste -sd' ' | sed 's/^/in a loop: /'
			# the edges among the objects named in the loop, with the symbol that makes each
			grep -v '^tsort: .*input contains a loop' "$tmp/$g.loop" | sed 's/^tsort: //' \
				>"$tmp/$g.members"
			awk 'NR == FNR { m[$1] = 1; next } ($1 in m) && ($2 in m) { print $1 " -> " $2 " (" $3 ")" }' \
				"$tmp/$g.members" "$tmp/edges"
		} >"$tmp/$g.report"
		mv "$tmp/$g.report" "$tmp/$g.loop"
	fi
	case $g in
	edged) what="the daemon's objects (userspace/edged)" ;;
	ctl) what="the CLI's objects (tools/mtls-edgectl)" ;;
	lib) what="the library's objects (userspace/lib)" ;;
	esac
	check "no circle of calls among $what: $(wc -l <"$tmp/$g.pairs") edges" "$tmp/$g.loop"
done
exit $status
