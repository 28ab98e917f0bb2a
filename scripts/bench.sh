#!/usr/bin/env bash
# Benchmarks, reported as ratios against a reference measured in the same run (the
# machines are noisy, so absolute numbers mean little).
#
#   crypto: cadcanfs SealBlock/OpenBlock vs `openssl speed -evp aes-256-gcm` at the
#           same buffer sizes (target: >= 80% of OpenSSL).
#   mount:  a mounted cadcanfs vault vs gocryptfs over the same disk, plus the native
#           disk (run as root: it drops the page cache between phases).
#   remote: mounts over a remote-like store with 20 ms per call: store calls for
#           `ls -l` and a first byte, and the sequential read with the cache on and
#           off (scripts/bench_remote.sh; run as root).
#   access: the same vault with and without --audit-log and --policy (issue 9 limits:
#           read-all <= 1.10, ls -lR <= 1.15; run as root: it adds a user).
#   onedrive: plain and vault mounts of OneDrive over the Graph emulator with 20 ms per
#           request: Graph requests for `ls -l` and a first byte, link use of a
#           sequential read and an upload, peak RSS writing 2 GiB
#           (scripts/bench_onedrive.sh; run as root).
#
# usage: scripts/bench.sh [crypto|mount|remote|access|onedrive|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCADCANFS_BENCH=ON >/dev/null
cmake --build build -j2 >/dev/null

if [ "$what" = mount ] || [ "$what" = all ]; then
  ./scripts/bench_mount.sh
fi
if [ "$what" = remote ] || [ "$what" = all ]; then
  ./scripts/bench_remote.sh
fi
if [ "$what" = access ] || [ "$what" = all ]; then ./scripts/bench_access.sh; fi
if [ "$what" = onedrive ] || [ "$what" = all ]; then ./scripts/bench_onedrive.sh; fi
[ "$what" = crypto ] || [ "$what" = all ] || exit 0

sizes=(4096 16384 32768 65536 1048576)
json=$(mktemp)
trap 'rm -f "$json"' EXIT
./build/tests/block_crypto_bench --benchmark_min_time=1 --benchmark_format=json >"$json" 2>/dev/null

echo "block crypto vs openssl speed -evp aes-256-gcm (bytes/s; ratio = cadcanfs / openssl)"
printf '%10s %14s %14s %14s %8s %8s\n' size openssl seal open seal% open%
for size in "${sizes[@]}"; do
  # openssl prints "AES-256-GCM  <N>k" in units of 1000 bytes per second.
  ref=$(openssl speed -evp aes-256-gcm -bytes "$size" -seconds 2 2>/dev/null |
    awk '/^AES-256-GCM/ {v=$2; sub(/k$/, "", v); printf "%.0f", v * 1000}')
  seal=$(python3 -c "import json,sys; d=json.load(open('$json')); print(int(next(b['bytes_per_second'] for b in d['benchmarks'] if b['name']=='BM_SealBlock/$size')))")
  open=$(python3 -c "import json,sys; d=json.load(open('$json')); print(int(next(b['bytes_per_second'] for b in d['benchmarks'] if b['name']=='BM_OpenBlock/$size')))")
  printf '%10s %14s %14s %14s %7s%% %7s%%\n' "$size" "$ref" "$seal" "$open" \
    "$((100 * seal / ref))" "$((100 * open / ref))"
done
