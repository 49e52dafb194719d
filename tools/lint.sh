#!/usr/bin/env bash
# Checks the style of the tracked files; fails on any finding, with the findings printed.
#
#   tools/lint.sh [fmt|cppcheck|shellcheck]...     (default: all three)
#
# - fmt         clang-format --dry-run -Werror (the repository's .clang-format) on every tracked
#               *.c and *.h; `make fmt` (clang-format -i) fixes what it reports.
# - cppcheck    cppcheck --enable=warning,portability on the tracked C sources under userspace/,
#               tools/ and tests/tools/ (headers through their includes), with -Iuserspace/lib
#               -Iuserspace/edged -Ibuild (build/edge.skel.h exists after `make`). A false positive
#               is silenced where it is, with `// cppcheck-suppress ID` and a reason.
# - shellcheck  every tracked shell script: *.sh, *.bash, *.bats and any file whose #! line names
#               sh, bash, dash or bats (files they source are followed). Directives go next to
#               what they excuse, with a reason.
# Files are found with `git ls-files`, so the lists follow files as they move; a tracked file
# missing from the work tree (a move in progress) is skipped. One line per part ("lint: PART:
# N files clean", or the findings and a count), then "lint: ok" or "lint: N problems" (a file
# clang-format would change is one problem; every cppcheck or shellcheck finding is one). Exit
# status: 0 clean, 1 findings, 2 a tool missing or bad usage.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2

usage() {
	echo "usage: tools/lint.sh [fmt|cppcheck|shellcheck]..." >&2
	exit 2
}

parts=()
for a in "$@"; do
	case $a in
	fmt | cppcheck | shellcheck) parts+=("$a") ;;
	-h | --help)
		awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
		exit 0
		;;
	*) usage ;;
	esac
done
((${#parts[@]})) || parts=(fmt cppcheck shellcheck)

# --- tools --------------------------------------------------------------------------------------
# need COMMAND PACKAGE: all missing tools are named before the script gives up.
missing=0
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "lint: $1 not found: install the Debian package $2 (tools/deps.sh test installs it)" >&2
	missing=1
}
need git git
for p in "${parts[@]}"; do
	case $p in
	fmt) need clang-format clang-format ;;
	cppcheck) need cppcheck cppcheck ;;
	shellcheck) need shellcheck shellcheck ;;
	esac
done
((missing == 0)) || exit 2
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "lint: $REPO is not a git work tree: the file lists come from git ls-files" >&2
	exit 2
fi

# tracked PATHSPEC...: the tracked files that exist in the work tree, one a line.
tracked() {
	local f
	git ls-files -z -- "$@" | while IFS= read -r -d '' f; do
		[ -f "$f" ] && printf '%s\n' "$f"
	done
}

problems=0

# indent [SUFFIX]: the findings on stdin, indented under their part's line.
indent() {
	local line
	while IFS= read -r line; do
		printf '  %s%s\n' "$line" "${1:-}"
	done
}

# --- clang-format -------------------------------------------------------------------------------
lint_fmt() {
	local -a files
	local raw rc out n bad ver
	mapfile -t files < <(tracked '*.c' '*.h')
	if [ ! -f .clang-format ]; then
		echo "lint: clang-format: no .clang-format at the top of the repository"
		problems=$((problems + 1))
		return
	fi
	ver=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
	[ "$ver" = 14 ] ||
		echo "lint: clang-format: note: version ${ver:-?}; .clang-format is tuned for 14 (Debian 12)"
	((${#files[@]})) || { echo "lint: clang-format: no C files"; return; }
	raw=$(clang-format --style=file --dry-run -Werror "${files[@]}" 2>&1)
	rc=$?
	# One line per place to change (the "error:" lines, without clang-format's excerpts).
	out=$(sed -n 's/^\([^ :]*:[0-9]*\):[0-9]*: error: .*\[-Wclang-format-violations\]$/\1/p' \
		<<<"$raw" | uniq)
	if [ -z "$out" ] && ((rc == 0)); then
		echo "lint: clang-format: ${#files[@]} files clean"
		return
	fi
	if [ -z "$out" ]; then # clang-format itself failed (a bad .clang-format, say)
		indent <<<"$raw"
		echo "lint: clang-format: failed (exit $rc)"
		problems=$((problems + 1))
		return
	fi
	indent ': not formatted' <<<"$out"
	bad=$(cut -d: -f1 <<<"$out" | sort -u | wc -l)
	n=$(wc -l <<<"$out")
	echo "lint: clang-format: $bad of ${#files[@]} files need formatting, at $n lines (make fmt)"
	problems=$((problems + bad))
}

# --- cppcheck -----------------------------------------------------------------------------------
lint_cppcheck() {
	local -a files
	local out n
	mapfile -t files < <(tracked 'userspace/*.c' 'tools/*.c' 'tests/tools/*.c')
	((${#files[@]})) || { echo "lint: cppcheck: no C files"; return; }
	[ -f build/edge.skel.h ] ||
		echo "lint: cppcheck: note: no build/edge.skel.h (run make): the code that includes it is checked without it"
	out=$(cppcheck --quiet --enable=warning,portability --error-exitcode=1 --inline-suppr \
		--suppress=missingIncludeSystem --std=c11 \
		--template='{file}:{line}: {severity}: {message} [{id}]' \
		-Iuserspace/lib -Iuserspace/edged -Ibuild "${files[@]}" 2>&1)
	local rc=$?
	if ((rc == 0)) && [ -z "$out" ]; then
		echo "lint: cppcheck: ${#files[@]} files clean"
		return
	fi
	# Only the finding lines count; anything else cppcheck printed is shown as it is.
	indent <<<"$out"
	n=$(grep -c '^[^ ]*:[0-9]*: [a-z]*: ' <<<"$out")
	((n > 0)) || n=1
	echo "lint: cppcheck: $n findings (${#files[@]} files checked)"
	problems=$((problems + n))
}

# --- shellcheck ---------------------------------------------------------------------------------
# is_shell FILE: a shell script by its name or its #! line.
is_shell() {
	local first=
	case $1 in
	*.sh | *.bash | *.bats) return 0 ;;
	esac
	IFS= read -r -n 200 first <"$1" 2>/dev/null
	[[ $first =~ ^#!.*[/[:space:]](sh|bash|dash|bats)([[:space:]]|$) ]]
}

lint_shellcheck() {
	local -a files=()
	local f out n bad
	while IFS= read -r f; do
		is_shell "$f" && files+=("$f")
	done < <(tracked)
	((${#files[@]})) || { echo "lint: shellcheck: no shell scripts"; return; }
	out=$(shellcheck --external-sources --format=gcc "${files[@]}" 2>&1)
	if [ -z "$out" ]; then
		echo "lint: shellcheck: ${#files[@]} files clean"
		return
	fi
	indent <<<"$out"
	n=$(wc -l <<<"$out")
	bad=$(cut -d: -f1 <<<"$out" | sort -u | wc -l)
	echo "lint: shellcheck: $n findings in $bad of ${#files[@]} files"
	problems=$((problems + n))
}

for p in "${parts[@]}"; do
	"lint_$p"
done
if ((problems)); then
	echo "lint: $problems problems"
	exit 1
fi
echo "lint: ok"
