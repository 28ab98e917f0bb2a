#!/usr/bin/env bash
# Mounted-filesystem benchmark: cadcanfs vs gocryptfs (and the native disk) on the same
# disk in the same run. Every figure is printed with its cadcanfs/gocryptfs ratio
# (> 1 means cadcanfs is better). Called by scripts/bench.sh; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v gocryptfs >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gocryptfs >/dev/null
BIN=$(realpath build/cadcanfs)
B=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-XXXXXX")  # on the project's disk, not tmpfs
cleanup() {
  for m in "$B"/cc-mnt "$B"/gc-mnt; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$B"
}
trap cleanup EXIT
SIZE=${BENCH_SIZE:-1G}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
fio_bw() {  # fio_bw DIR RW BS [extra...] -> MB/s (or IOPS for randread)
  local dir=$1 rw=$2 bs=$3
  shift 3
  fio --name=b --directory="$dir" --filename=big --rw="$rw" --bs="$bs" --size="$SIZE" \
    --ioengine=psync --output-format=json "$@" 2>/dev/null |
    python3 -c "import json,sys; j=json.load(sys.stdin)['jobs']; \
r=sum(x['read']['bw_bytes'] for x in j); w=sum(x['write']['bw_bytes'] for x in j); \
io=sum(x['read']['iops'] for x in j); \
print(int(io) if '$rw'=='randread' else int((r+w)/1e6))"
}

# A CBCT-like slice folder (2,000 x 64 KiB) and a 10,000-entry tree, as tarballs.
mkdir -p "$B/src/slices" "$B/src/tree"
for i in $(seq 1 2000); do head -c 65536 /dev/urandom >"$B/src/slices/slice$i.dcm"; done
for d in $(seq 1 10); do
  mkdir "$B/src/tree/case$d"
  (cd "$B/src/tree/case$d" && touch $(seq -f "scan%g.stl" 1 1000))
done
tar -C "$B/src" -cf "$B/slices.tar" slices
tar -C "$B/src" -cf "$B/tree.tar" tree
rm -rf "$B/src"

measure() {  # measure NAME DIR -> fills results
  local name=$1 dir=$2 t0 t1
  drop_caches
  R["$name.write"]=$(fio_bw "$dir" write 1M --end_fsync=1)
  drop_caches
  R["$name.read"]=$(fio_bw "$dir" read 1M)
  drop_caches
  R["$name.randread"]=$(fio_bw "$dir" randread 4k --numjobs=2 --runtime=10 --time_based)
  rm -f "$dir/big"
  drop_caches
  t0=$(now); tar -C "$dir" -xf "$B/slices.tar"; sync; t1=$(now)
  R["$name.create"]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  drop_caches
  t0=$(now); cat "$dir"/slices/* >/dev/null; t1=$(now)
  R["$name.readall"]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  tar -C "$dir" -xf "$B/tree.tar"
  drop_caches
  t0=$(now); ls -lR "$dir/tree" >/dev/null; t1=$(now)
  R["$name.ls"]=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
}

declare -A R
mkdir "$B/native"
measure native "$B/native"

echo "password" >"$B/gc-pass"
mkdir "$B/gc-cipher" "$B/gc-mnt"
gocryptfs -q -init -passfile "$B/gc-pass" -scryptn 10 "$B/gc-cipher" >/dev/null
gocryptfs -q -passfile "$B/gc-pass" "$B/gc-cipher" "$B/gc-mnt"
measure gocryptfs "$B/gc-mnt"
fusermount3 -u "$B/gc-mnt"

"$BIN" keygen "$B/cc.key" >/dev/null
"$BIN" init "$B/cc-vault" --key-file "$B/cc.key" >/dev/null
mkdir "$B/cc-mnt"
out=$("$BIN" mount "$B/cc-vault" "$B/cc-mnt" --key-file "$B/cc.key")
pid=$(echo "$out" | sed -n 's/.*daemon pid \([0-9]*\).*/\1/p')
measure cadcanfs "$B/cc-mnt"
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
"$BIN" unmount "$B/cc-mnt"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "mounted filesystem, $SIZE file, $(nproc) cores (ratio: cadcanfs vs gocryptfs, > 1 is better)"
printf '%-34s %10s %10s %10s %7s\n' metric native gocryptfs cadcanfs ratio
row() {  # row LABEL KEY higher|lower
  local n=${R[native.$2]} g=${R[gocryptfs.$2]} c=${R[cadcanfs.$2]} r
  if [ "$3" = higher ]; then r=$(ratio "$c" "$g"); else r=$(ratio "$g" "$c"); fi
  printf '%-34s %10s %10s %10s %7s\n' "$1" "$n" "$g" "$c" "$r"
}
row "seq write 1M + fsync (MB/s)" write higher
row "seq read 1M, cold (MB/s)" read higher
row "random 4k read, 2 jobs (IOPS)" randread higher
row "create 2000 x 64 KiB (s)" create lower
row "read them all, cold (s)" readall lower
row "ls -lR 10,000 entries, cold (s)" ls lower
echo "cadcanfs daemon peak RSS: $((rss_kib / 1024)) MiB (target < 150 MiB)"
echo "passthrough_ll: not built (Debian ships no libfuse examples); see docs/performance.md"
