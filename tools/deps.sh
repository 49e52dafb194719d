#!/usr/bin/env bash
# Install the Debian packages mtls-edge needs to build, run, test and benchmark.
# Usage: tools/deps.sh [build|test|bench]   (each level includes the ones before it)
set -euo pipefail
level=${1:-build}
pkgs=(gcc make pkg-config libssl-dev openssl liburing-dev libsqlite3-dev sqlite3
      libinih-dev libjansson-dev curl clang libbpf-dev bpftool)
if [ "$level" = test ] || [ "$level" = bench ]; then
    pkgs+=(bats bats-assert bats-support bats-file libclang-rt-14-dev faketime
           procps iproute2 psmisc perl nginx-light)
fi
if [ "$level" = bench ]; then
    pkgs+=(wrk nginx-light haproxy gnuplot-nox)
fi
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
