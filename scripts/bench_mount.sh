#!/usr/bin/env bash
# Mounted-filesystem benchmark: cadcanfs vs gocryptfs on the same disk in the same run,
# beside the native disk and libfuse's passthrough_ll (the FUSE ceiling, built here
# from the example source Debian ships in libfuse3-dev). cadcanfs runs twice: as
# mounted by default (write-through) and with --writeback-cache.
#
# This machine's disk is noisy (the same cold read varies by ±30% between runs), so
# the phases that take about a second run BENCH_ROUNDS times, interleaved across the
# filesystems, and the median is reported. Ratios are cadcanfs/gocryptfs (> 1 means
# cadcanfs is better). Called by scripts/bench.sh; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v gocryptfs >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gocryptfs >/dev/null
BIN=$(realpath build/cadcanfs)
B=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-XXXXXX")  # on the project's disk, not tmpfs
SIZE=${BENCH_SIZE:-1G}
ROUNDS=${BENCH_ROUNDS:-3}
# BENCH_SYSTEMS may drop native and/or passthrough_ll; the other three are compared.
read -r -a SYSTEMS <<<"${BENCH_SYSTEMS:-native passthrough_ll gocryptfs cadcanfs cadcanfs-wb}"
has_system() { [[ " ${SYSTEMS[*]} " == *" $1 "* ]]; }
cleanup() {
  for s in "${SYSTEMS[@]}"; do umount -l "$B/$s" 2>/dev/null || true; done
  rm -rf "$B"
}
trap cleanup EXIT

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
seconds_since() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
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
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

# ---- the filesystems under test, all mounted at once ----
has_system native && mkdir "$B/native"

PT="$B/passthrough_ll.bin"
if ! has_system passthrough_ll; then
  :
elif gcc -O2 -I/usr/share/doc/libfuse3-dev/examples \
  /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
  $(pkg-config --cflags --libs fuse3) -o "$PT" 2>/dev/null; then
  mkdir "$B/pt-src" "$B/passthrough_ll"
  "$PT" -o source="$B/pt-src" "$B/passthrough_ll"
else
  echo "passthrough_ll: could not build the libfuse example; skipping it"
  read -r -a SYSTEMS <<<"${SYSTEMS[*]/passthrough_ll/}"
fi

echo "password" >"$B/gc-pass"
mkdir "$B/gc-cipher" "$B/gocryptfs"
gocryptfs -q -init -passfile "$B/gc-pass" -scryptn 10 "$B/gc-cipher" >/dev/null
gocryptfs -q -passfile "$B/gc-pass" "$B/gc-cipher" "$B/gocryptfs" 2>/dev/null

"$BIN" keygen "$B/cc.key" >/dev/null
declare -A PID
for s in cadcanfs cadcanfs-wb; do
  "$BIN" init "$B/$s-vault" --key-file "$B/cc.key" >/dev/null
  mkdir "$B/$s"
  extra=()
  [ "$s" = cadcanfs-wb ] && extra=(--writeback-cache)
  out=$("$BIN" mount "$B/$s-vault" "$B/$s" --key-file "$B/cc.key" "${extra[@]}")
  PID[$s]=$(echo "$out" | sed -n 's/.*daemon pid \([0-9]*\).*/\1/p')
done

# ---- inputs: a CBCT-like slice folder (2,000 x 64 KiB) and a 10,000-entry tree ----
mkdir -p "$B/src/slices" "$B/src/tree"
for i in $(seq 1 2000); do head -c 65536 /dev/urandom >"$B/src/slices/slice$i.dcm"; done
for d in $(seq 1 10); do
  mkdir "$B/src/tree/case$d"
  (cd "$B/src/tree/case$d" && touch $(seq -f "scan%g.stl" 1 1000))
done
tar -C "$B/src" -cf "$B/slices.tar" slices
tar -C "$B/src" -cf "$B/tree.tar" tree
rm -rf "$B/src"

# ---- phases ----
declare -A R
declare -A SAMPLES
for s in "${SYSTEMS[@]}"; do
  drop_caches
  R[$s.write]=$(fio_bw "$B/$s" write 1M --end_fsync=1)
done
for round in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    drop_caches
    SAMPLES[$s.read]+=" $(fio_bw "$B/$s" read 1M)"
  done
done
# The same read with the ciphertext already in the page cache (fio drops the mount's
# own cache of the file before it reads): the daemon's decryption throughput, free of
# the disk's noise.
backing_dir() {
  case $1 in
    passthrough_ll) echo "$B/pt-src" ;;
    gocryptfs) echo "$B/gc-cipher" ;;
    *) echo "$B/$1-vault" ;;
  esac
}
for round in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    [ "$s" = native ] && continue  # fio would drop the very cache this row is about
    drop_caches
    find "$(backing_dir "$s")" -maxdepth 1 -type f -exec cat {} + >/dev/null
    SAMPLES[$s.warmread]+=" $(fio_bw "$B/$s" read 1M)"
  done
done
for s in "${SYSTEMS[@]}"; do
  drop_caches
  R[$s.randread]=$(fio_bw "$B/$s" randread 4k --numjobs=2 --runtime=10 --time_based)
  rm -f "$B/$s/big"
done
for round in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    rm -rf "$B/$s/slices"
    drop_caches
    t0=$(now)
    tar -C "$B/$s" -xf "$B/slices.tar"
    sync
    SAMPLES[$s.create]+=" $(seconds_since "$t0")"
  done
done
for s in "${SYSTEMS[@]}"; do tar -C "$B/$s" -xf "$B/tree.tar"; done
for round in $(seq 1 "$ROUNDS"); do
  for s in "${SYSTEMS[@]}"; do
    drop_caches
    t0=$(now)
    cat "$B/$s"/slices/* >/dev/null
    SAMPLES[$s.readall]+=" $(seconds_since "$t0")"
    drop_caches
    t0=$(now)
    ls -lR "$B/$s/tree" >/dev/null
    SAMPLES[$s.ls]+=" $(seconds_since "$t0")"
  done
done
for key in "${!SAMPLES[@]}"; do
  # shellcheck disable=SC2086  # the samples are a space-separated list on purpose
  R[$key]=$(median ${SAMPLES[$key]})
done
has_system native && R[native.warmread]="-"
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/${PID[cadcanfs]}/status")

# ---- report ----
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "mounted filesystem, $SIZE file, $(nproc) cores, median of $ROUNDS rounds where marked"
echo "ratio = cadcanfs / gocryptfs (> 1 is better); wb = cadcanfs --writeback-cache"
printf '%-40s' metric
for s in "${SYSTEMS[@]}"; do printf ' %14s' "$s"; done
printf ' %7s %7s\n' ratio "wb ratio"
row() {  # row LABEL KEY higher|lower
  local g=${R[gocryptfs.$2]} c=${R[cadcanfs.$2]} w=${R[cadcanfs-wb.$2]} r rw
  if [ "$3" = higher ]; then
    r=$(ratio "$c" "$g")
    rw=$(ratio "$w" "$g")
  else
    r=$(ratio "$g" "$c")
    rw=$(ratio "$g" "$w")
  fi
  printf '%-40s' "$1"
  for s in "${SYSTEMS[@]}"; do printf ' %14s' "${R[$s.$2]}"; done
  printf ' %7s %7s\n' "$r" "$rw"
}
row "seq write 1M + fsync (MB/s)" write higher
row "seq read 1M, cold (MB/s, median)" read higher
row "seq read 1M, ciphertext cached (MB/s)" warmread higher
row "random 4k read, 2 jobs (IOPS)" randread higher
row "create 2000 x 64 KiB (s, median)" create lower
row "read them all, cold (s, median)" readall lower
row "ls -lR 10,000 entries, cold (s, med)" ls lower
echo "cadcanfs daemon peak RSS: $((rss_kib / 1024)) MiB (target < 150 MiB)"
echo "raw samples:"
for key in $(printf '%s\n' "${!SAMPLES[@]}" | sort); do echo "  $key:${SAMPLES[$key]}"; done
