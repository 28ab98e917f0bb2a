#!/usr/bin/env bash
# Remote-store benchmark (issue 10, "Performance"): cadcanfs mounted over
# `remote-like:DIR?latency_ms=20`, a local directory that costs what OneDrive costs
# per request, counting the store calls each operation makes. The store writes its
# per-kind counters to a counts= file, which this script reads from outside the daemon.
#
# For a plain tree and (where the build can mount one on a remote store) a vault:
#   - `ls -l` of a 2,000-entry directory (target: at most 3 store calls);
#   - the first byte of a 300 MB file after open (target: at most 2 calls);
#   - a sequential read of that file: MB/s and the most ranged reads in flight at once
#     (target: at least 4), and the same read with the cache off (--cache-size 0).
# Every phase runs on a fresh mount, so neither the kernel nor the daemon has cached
# anything. Called by scripts/bench.sh (target `remote`); needs root for mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath build/cadcanfs)
B=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-remote-XXXXXX")
LATENCY_MS=${BENCH_LATENCY_MS:-20}
BIG_MB=${BENCH_REMOTE_MB:-300}
ENTRIES=2000
cleanup() {
  { grep -o "$B/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$B"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
# counts FILE KEY: one counter from the daemon's counts file (0 before its first write).
counts() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2],0))" "$1" "$2" 2>/dev/null || echo 0; }
# snapshot FILE: a copy of the counts now, for calls_since.
snapshot() { cp "$1" "$1.before" 2>/dev/null || echo '{}' >"$1.before"; }
# calls_since FILE: "total kind=n kind=n..." for the calls since the last snapshot.
calls_since() {
  python3 - "$1" <<'PY'
import json, sys
now = json.load(open(sys.argv[1]))
then = json.load(open(sys.argv[1] + ".before"))
skip = ("total", "read-range-max-in-flight")
kinds = {k: v - then.get(k, 0) for k, v in now.items() if k not in skip}
print(sum(kinds.values()), " ".join(f"{k}={v}" for k, v in sorted(kinds.items()) if v))
PY
}
# The store rewrites its counts file at most every 100 ms: wait until it has settled.
settle() { sleep 0.4; }

"$BIN" keygen "$B/key" >/dev/null
mkdir "$B/mnt" "$B/cache"

# ---- inputs: a plain tree, and a vault holding the same files ----
make_inputs() {  # make_inputs DIR: the 2,000-entry folder and the big file under DIR
  mkdir -p "$1/slices"
  (cd "$1/slices" && head -c 4096 /dev/urandom >seed && for i in $(seq 1 "$ENTRIES"); do
    cp seed "slice$i.dcm"
  done && rm seed)
  head -c "$((BIG_MB * 1000000))" /dev/urandom >"$1/volume.dcm"
}
mkdir "$B/plain"
make_inputs "$B/plain"
formats=(plain)
"$BIN" init "$B/vault" --key-file "$B/key" >/dev/null
"$BIN" mount "$B/vault" "$B/mnt" --key-file "$B/key" >/dev/null
make_inputs "$B/mnt"
"$BIN" unmount "$B/mnt"
sleep 0.5

# mount_remote FORMAT COUNTS [extra mount flags...]
mount_remote() {
  local format=$1 counts_file=$2
  shift 2
  local flags=(--key-file "$B/key" --cache-dir "$B/cache")
  [ "$format" = plain ] && flags+=(--plain)
  rm -f "$counts_file"
  "$BIN" mount "remote-like:$B/$format?latency_ms=$LATENCY_MS&counts=$counts_file" "$B/mnt" \
    "${flags[@]}" "$@" >/dev/null 2>"$B/mount.err"
}
unmount_remote() { "$BIN" unmount "$B/mnt"; sleep 0.3; }

if mount_remote vault "$B/probe.json"; then
  formats+=(vault)
  unmount_remote
else
  echo "vault: skipped, this build cannot mount a vault on a remote store: $(cat "$B/mount.err")"
fi

printf '\nremote-like store, %s ms per call (counts are store calls)\n' "$LATENCY_MS"
printf '%-6s %-34s %8s %8s %s\n' format phase calls seconds detail
for format in "${formats[@]}"; do
  # ls -l: the listing should carry every entry's attributes (no Stat per entry).
  c="$B/ls.json"
  mount_remote "$format" "$c"
  settle
  snapshot "$c"
  t=$(now)
  ls -l "$B/mnt/slices" >/dev/null
  secs=$(elapsed "$t")
  settle
  read -r total kinds <<<"$(calls_since "$c")"
  printf '%-6s %-34s %8s %8s %s\n' "$format" "ls -l, $ENTRIES entries" "$total" "$secs" \
    "$kinds (target <= 3 calls)"
  unmount_remote

  # The first byte: the lookup happens before the open, as it would after an ls.
  c="$B/first.json"
  mount_remote "$format" "$c"
  stat "$B/mnt/volume.dcm" >/dev/null
  settle
  snapshot "$c"
  t=$(now)
  head -c 1 "$B/mnt/volume.dcm" >/dev/null
  secs=$(elapsed "$t")
  settle
  read -r total kinds <<<"$(calls_since "$c")"
  printf '%-6s %-34s %8s %8s %s\n' "$format" "first byte of ${BIG_MB} MB after open" "$total" \
    "$secs" "$kinds (target <= 2 calls)"
  unmount_remote

  # The sequential read, cached and uncached.
  declare -A rate
  for cache in default off; do
    c="$B/seq-$cache.json"
    extra=()
    [ "$cache" = off ] && extra=(--cache-size 0)
    mount_remote "$format" "$c" "${extra[@]}"
    settle
    snapshot "$c"
    t=$(now)
    dd if="$B/mnt/volume.dcm" of=/dev/null bs=1M status=none
    secs=$(elapsed "$t")
    settle
    read -r total _ <<<"$(calls_since "$c")"
    rate[$cache]=$(python3 -c "print(f'{$BIG_MB / $secs:.1f}')")
    printf '%-6s %-34s %8s %8s %s\n' "$format" "sequential read, cache $cache" "$total" "$secs" \
      "${rate[$cache]} MB/s, max ranged reads in flight $(counts "$c" read-range-max-in-flight) (target >= 4)"
    unmount_remote
  done
  printf '%-6s %-34s %8s %8s %s\n' "$format" "cache on / cache off" "" "" \
    "$(python3 -c "print(f'{${rate[default]} / ${rate[off]}:.1f}x')")"
done
