#!/usr/bin/env bash
# OneDrive benchmark (issue 8, "Performance"): cadcanfs mounted over the Graph emulator
# (tests/graph_emulator, 127.0.0.1 only, stopped at exit) with 20 ms added to every
# request, counting the requests each operation makes (the emulator's counters), for a
# plain folder (--plain) and an encrypted vault:
#   - `ls -l` of a 2,000-file folder on a fresh mount (target: at most 3 Graph requests);
#   - the first byte of a 300 MB file after its lookup (target: at most 2 round trips);
#   - a sequential read of that file and an upload of 256 MiB under a bandwidth limit
#     (target: the link is the limit, so MB/s over the link's rate is near 1);
#   - the daemon's peak RSS while a 2 GiB file is written and uploaded (target: under
#     200 MiB).
# While it measures, the emulator does not hash uploads (its QuickXorHash is pure Python,
# about 30 MB/s, and would be the bottleneck); the client's hash check then has nothing
# to compare, as with service replies that carry no hash.
#
# rclone is not run beside it: its onedrive backend takes the Graph endpoint from a
# fixed table of national clouds (global, us, de, cn; backend/onedrive, "region") and
# offers no option to point it elsewhere, so it cannot reach the emulator without
# intercepting TLS to graph.microsoft.com. docs/performance.md compares our numbers
# with what peers.md reports for rclone instead.
#
# Called by scripts/bench.sh (target `onedrive`); needs root for mounts. The binary is
# build/cadcanfs, or $CADCANFS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${CADCANFS_BIN:-build/cadcanfs}")
EMULATOR=$PWD/tests/graph_emulator/graph_emulator.py
LATENCY_MS=${BENCH_LATENCY_MS:-20}
BIG_MB=${BENCH_ONEDRIVE_MB:-300}
UPLOAD_MIB=${BENCH_UPLOAD_MIB:-256}
RSS_MIB=${BENCH_RSS_MIB:-2048}
LINK_MBPS=${BENCH_LINK_MBPS:-50}  # the emulated link, in MB/s (10^6 bytes)
ENTRIES=2000
B=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-onedrive-XXXXXX")
emu_pid=""
cleanup() {
  { grep -o "$B/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  rm -rf "$B"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$B/ports.json" "$1"; }
control() {  # control METHOD PATH [JSON]
  python3 - "$control_url$2" "$1" "${3:-{\}}" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method=sys.argv[2])
req.add_header("Content-Type", "application/json")
print(urllib.request.urlopen(req).read().decode())
PY
}
# "total kind=n ..." of the requests since the last reset (control calls never count).
# Sign-in and the change feed's first enumeration of the drive (delta, in the
# background from the mount on) are shown apart: they are not the operation's.
requests_since_reset() {
  control GET /counters | python3 -c '
import json, sys
kinds = json.load(sys.stdin)["requests"]
apart = {k: v for k, v in kinds.items() if k.startswith("auth.") or k == "graph.delta"}
kinds = {k: v for k, v in kinds.items() if k not in apart}
text = " ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
if apart:
    text += " (apart: " + " ".join(f"{k}={v}" for k, v in sorted(apart.items())) + ")"
print(sum(kinds.values()), text)'
}
settings() { control POST /settings "$1" >/dev/null; }

# ---- the drive: a plain folder, made before the emulator starts (it serves it) ----
mkdir -p "$B/drive/Plain/slices" "$B/mnt" "$B/cache"
(cd "$B/drive/Plain/slices" && head -c 4096 /dev/urandom >seed && for i in $(seq 1 "$ENTRIES"); do
  cp seed "slice$i.dcm"
done && rm seed)
head -c "$((BIG_MB * 1000000))" /dev/urandom >"$B/volume.dcm"
cp "$B/volume.dcm" "$B/drive/Plain/volume.dcm"
head -c "$((UPLOAD_MIB << 20))" /dev/urandom >"$B/upload.bin"

python3 "$EMULATOR" --root "$B/drive" --port-file "$B/ports.json" --device-code-interval 0 \
  >"$B/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 200); do [ -s "$B/ports.json" ] && break; sleep 0.05; done
graph_url=$(port_of graph_url)
login_url=$(port_of login_url)
control_url=$(port_of control_url)

"$BIN" keygen "$B/key" >/dev/null
"$BIN" login --token-file "$B/tokens" --key-file "$B/key" --login-url "$login_url" >"$B/login.out" 2>&1 &
login_pid=$!
for _ in $(seq 200); do grep -q "enter the code" "$B/login.out" && break; sleep 0.05; done
control POST /device/approve "{\"user_code\": \"$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' "$B/login.out")\"}" >/dev/null
wait "$login_pid"
OD=(--token-file "$B/tokens" --key-file "$B/key" --graph-url "$graph_url" --cache-dir "$B/cache"
  --poll-interval 3600)

# mount_folder FORMAT: onedrive:/Plain with --plain, or the vault onedrive:/Vault.
mount_folder() {
  if [ "$1" = plain ]; then
    "$BIN" mount onedrive:/Plain "$B/mnt" --plain "${OD[@]}" >"$B/mount.out"
  else
    "$BIN" mount onedrive:/Vault "$B/mnt" "${OD[@]}" >"$B/mount.out"
  fi
}
unmount_folder() { "$BIN" unmount "$B/mnt" 2>/dev/null; sleep 0.3; }

# ---- the vault: the same files, written through a mount (no latency meanwhile) ----
"$BIN" init onedrive:/Vault "${OD[@]:0:6}" >/dev/null
mount_folder vault
cp -r "$B/drive/Plain/slices" "$B/mnt/"
cp "$B/volume.dcm" "$B/mnt/"
unmount_folder
settings "{\"latency_ms\": $LATENCY_MS, \"hash_uploads\": false}"

printf '\nGraph emulator, %s ms per request (requests exclude sign-in)\n' "$LATENCY_MS"
printf '%-6s %-38s %8s %8s %s\n' format phase requests seconds detail
for format in plain vault; do
  mount_folder "$format"
  control POST /counters/reset >/dev/null
  t=$(now)
  ls -l "$B/mnt/slices" >/dev/null
  secs=$(elapsed "$t")
  read -r total kinds <<<"$(requests_since_reset)"
  printf '%-6s %-38s %8s %8s %s\n' "$format" "ls -l, $ENTRIES files, fresh mount" "$total" "$secs" \
    "$kinds (target <= 3)"
  unmount_folder

  mount_folder "$format"
  stat "$B/mnt/volume.dcm" >/dev/null
  control POST /counters/reset >/dev/null
  t=$(now)
  head -c 1 "$B/mnt/volume.dcm" >/dev/null
  secs=$(elapsed "$t")
  read -r total kinds <<<"$(requests_since_reset)"
  printf '%-6s %-38s %8s %8s %s\n' "$format" "first byte of ${BIG_MB} MB after lookup" "$total" \
    "$secs" "$kinds (target <= 2 round trips)"
  unmount_folder

  settings "{\"bandwidth_bps\": $((LINK_MBPS * 1000000))}"
  mount_folder "$format"
  t=$(now)
  dd if="$B/mnt/volume.dcm" of=/dev/null bs=1M status=none
  secs=$(elapsed "$t")
  printf '%-6s %-38s %8s %8s %s\n' "$format" "sequential read, ${BIG_MB} MB" "" "$secs" \
    "$(python3 -c "r = $BIG_MB / $secs; print(f'{r:.1f} MB/s = {r / $LINK_MBPS:.2f} of the ${LINK_MBPS} MB/s link (target near 1)')")"
  # The upload starts at close (the file is staged while it is written): timed from
  # the end of cp until the daemon's status says nothing is left to upload.
  cp "$B/upload.bin" "$B/mnt/upload.bin"
  t=$(now)
  until "$BIN" status "$B/mnt" --json | grep -q '"pending_commits":0'; do sleep 0.05; done
  secs=$(elapsed "$t")
  unmount_folder
  mb=$(python3 -c "print($UPLOAD_MIB * 1048576 / 1e6)")
  printf '%-6s %-38s %8s %8s %s\n' "$format" "upload of ${UPLOAD_MIB} MiB after close" "" "$secs" \
    "$(python3 -c "r = $mb / $secs; print(f'{r:.1f} MB/s = {r / $LINK_MBPS:.2f} of the link (target near 1)')")"
  [ "$format" = plain ] && upload_secs_plain=$secs
  [ "$format" = vault ] && upload_secs_vault=$secs
  settings '{"bandwidth_bps": 0}'
  mount_folder "$format"
  rm -f "$B/mnt/upload.bin"
  unmount_folder
  [ "$format" = vault ] || continue

  # Peak RSS (the vault: encryption on top of staging and upload): a 2 GiB file
  # written and uploaded; VmHWM once the upload has ended.
  mount_folder "$format"
  pid=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$B/mount.out")
  t=$(now)
  head -c "$((RSS_MIB << 20))" /dev/zero | tr '\0' 'x' >"$B/mnt/big.bin"
  while "$BIN" status "$B/mnt" --json 2>/dev/null | grep -q '"pending_commits": *[1-9]'; do sleep 0.5; done
  hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  secs=$(elapsed "$t")
  rm -f "$B/mnt/big.bin"
  unmount_folder
  printf '%-6s %-38s %8s %8s %s\n' "$format" "peak RSS writing ${RSS_MIB} MiB" "" "$secs" \
    "$hwm MiB (target < 200)"
done

# The same upload by a bare client (Python's urllib, no staging, no encryption): one
# session, sequential 10 MiB fragments, as Graph requires. What it reaches is what the
# emulator's link, latency and per-fragment handling allow; ours is quoted against it.
settings "{\"bandwidth_bps\": $((LINK_MBPS * 1000000))}"
token=$(control POST /tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
reference_secs=$(python3 - "$graph_url" "$token" "$B/upload.bin" <<'PY'
import json, sys, time, urllib.request
graph, token, path = sys.argv[1:]
data = open(path, "rb").read()
req = urllib.request.Request(graph + "/me/drive/root:/reference.bin:/createUploadSession",
                             data=b"{}", method="POST")
req.add_header("Authorization", "Bearer " + token)
req.add_header("Content-Type", "application/json")
start = time.time()
url = json.load(urllib.request.urlopen(req))["uploadUrl"]
fragment = 10 << 20
for offset in range(0, len(data), fragment):
    chunk = data[offset:offset + fragment]
    put = urllib.request.Request(url, data=chunk, method="PUT")
    put.add_header("Content-Range", f"bytes {offset}-{offset + len(chunk) - 1}/{len(data)}")
    urllib.request.urlopen(put).read()
print(f"{time.time() - start:.3f}")
PY
)
settings '{"bandwidth_bps": 0}'
mb=$(python3 -c "print($UPLOAD_MIB * 1048576 / 1e6)")
printf '%-6s %-38s %8s %8s %s\n' "bare" "upload of ${UPLOAD_MIB} MiB, 10 MiB fragments" "" \
  "$reference_secs" "$(python3 -c "r = $mb / $reference_secs; print(f'{r:.1f} MB/s = {r / $LINK_MBPS:.2f} of the link')")"
printf 'upload, bare client time / ours: plain %s, vault %s (1 = as fast as the protocol allows here)\n' \
  "$(python3 -c "print(f'{$reference_secs / $upload_secs_plain:.2f}')")" \
  "$(python3 -c "print(f'{$reference_secs / $upload_secs_vault:.2f}')")"

