#!/usr/bin/env bash
# Install the Debian packages mtls-edge needs to build, run, test and benchmark.
# Usage: tools/deps.sh [build|fleet|test|bench|profile]   (each level includes the ones before
# it; fleet: build and etcd, for make run-fleet)
set -euo pipefail
level=${1:-build}
pkgs=(gcc make pkg-config libssl-dev openssl liburing-dev libsqlite3-dev sqlite3
      libinih-dev libjansson-dev libcurl4-openssl-dev libnghttp2-dev curl clang libbpf-dev bpftool)
if [ "$level" = test ] || [ "$level" = bench ] || [ "$level" = profile ]; then
    pkgs+=(bats bats-assert bats-support bats-file libclang-rt-14-dev faketime
           procps iproute2 psmisc perl systemd groff-base man-db strace jq)
    # make lint (tools/lint.sh): the style of the C and shell code.
    pkgs+=(shellcheck cppcheck clang-format)
    # The benchmark: `make test` runs its smoke (bench/smoke-test.sh), so it needs its tools too.
    pkgs+=(wrk nginx-light haproxy gnuplot-nox util-linux nghttp2-client)
    # HTTP/2 and gRPC clients of the ALPN tests (tests/e2e/h2.bats, h2http.bats: python3-h2 for
    # tests/tools/h2probe.py); Java's keytool (cli.bats:
    # the PKCS#12 files load in a Java 17 keystore).
    pkgs+=(python3-grpcio python3-h2 openjdk-17-jre-headless)
    # The fleet tests and bench (tests/e2e/netns/fleet.bats, etcd_client.bats, bench/fleet.sh) start
    # their own etcd members. On a machine with systemd the package also enables a default etcd on
    # 127.0.0.1:2379; nothing here uses it.
    pkgs+=(etcd-server etcd-client)
fi
if [ "$level" = fleet ]; then
    pkgs+=(etcd-server etcd-client jq)
fi
if [ "$level" = profile ]; then
    # Profiling the handshake and the daemon's memory (bench/PROFILE.md); make bench needs none.
    pkgs+=(linux-perf valgrind heaptrack gdb)
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
# Another apt (unattended-upgrades, a second make) may hold the dpkg lock: wait for it.
echo "deps: waiting up to 10 minutes for the dpkg lock if another apt holds it"
# Refresh the package lists once if they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
fi
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
