#!/usr/bin/env bash
# A OneDrive folder on a real mount while the Graph emulator (tests/graph_emulator,
# 127.0.0.1 only, stopped by this test) misbehaves as the service does (issue 8,
# "Fault tests"): throttled listings and uploads, a connection dropped in the middle of
# a 64 MiB upload, a reply lost after its fragment landed, an access token and download
# URLs that expire mid-transfer, another client's edit of an open file, and a full drive.
# Every transfer is checked byte for byte against what landed in the drive.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: onedrive_faults_e2e_test.sh PATH_TO_CADCANFS}")
# shellcheck source=../../testing/onedrive_e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/onedrive_e2e_lib.sh"
enter_scratch_dir onedrive-faults
mkdir -p drive/Cases/listed drive/Cases/listed2 mnt cache
for i in $(seq 1 30); do echo "$i" >"drive/Cases/listed/file-$i.txt"; done
for i in $(seq 1 31); do echo "$i" >"drive/Cases/listed2/file-$i.txt"; done
start_graph_emulator

"$BIN" keygen key >/dev/null
check "login" 0 "$(sign_in tokens --key-file key)"
mount_cases() {  # prints the exit code; a failure's message goes to stderr
  local code
  code=$(run mount onedrive:/Cases mnt --plain --token-file tokens --key-file key \
    --graph-url "$graph_url" --cache-dir cache --poll-interval 1)
  [ "$code" = 0 ] || cat "$WORK/err" >&2
  echo "$code"
}
fault() { control POST /faults "$1" >/dev/null; }
# The emulator's QuickXorHash of a drive file, and ours of a local one.
drive_hash() {
  control GET "/remote/item?path=$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["file"]["hashes"]["quickXorHash"])'
}
local_hash() {
  python3 - "$1" "$(dirname "$EMULATOR")" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from quickxorhash import QuickXorHash
h = QuickXorHash()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.b64digest())
PY
}
check "mount" 0 "$(mount_cases)"

# ---- throttled listings: 429 with and without Retry-After ----
fault '{"fault": "429", "on": "graph.children", "retry_after": 1, "times": 1}'
check "a listing throttled with Retry-After completes" 30 "$(ls mnt/listed | wc -l)"
fault '{"fault": "429", "on": "graph.children", "times": 2}'
check "a listing throttled without Retry-After completes" 31 "$(ls mnt/listed2 | wc -l)"
check "the throttled requests were answered 429" yes \
  "$([ "$(counter statuses 'graph.children 429')" -ge 3 ] && echo yes)"

# ---- a throttled upload, and a 64 MiB upload whose connection drops ----
head -c 12000000 /dev/urandom >throttled.bin
fault '{"fault": "503", "on": "graph.session", "times": 1}'
fault '{"fault": "429", "on": "upload.fragment", "retry_after": 1, "times": 1}'
cp throttled.bin mnt/; check "cp under throttling" 0 $?
head -c 67108864 /dev/urandom >big.bin
fault '{"fault": "drop", "on": "upload.fragment", "store": true, "skip": 1, "times": 1}'
fault '{"fault": "lose_reply", "on": "upload.fragment", "skip": 3, "times": 1}'
cp big.bin mnt/; check "cp of 64 MiB with a dropped connection and a lost reply" 0 $?
check "unmount waits for the uploads" 0 "$(run unmount mnt)"
cmp throttled.bin drive/Cases/throttled.bin; check "the throttled upload landed whole" 0 $?
cmp big.bin drive/Cases/big.bin; check "the 64 MiB upload landed whole" 0 $?
check "its QuickXorHash matches" "$(local_hash big.bin)" "$(drive_hash /Cases/big.bin)"
check "every fault fired" 7 "$(counter faults_fired)"

# ---- an access token that expires in the middle of an upload ----
check "mount again" 0 "$(mount_cases)"
head -c 31457280 /dev/urandom >expiring.bin
control POST /settings '{"bandwidth_bps": 20000000}' >/dev/null
cp expiring.bin mnt/ &
cp_pid=$!
for _ in $(seq 200); do
  [ "$(counter statuses 'upload.fragment 202')" -ge 1 ] && break
  sleep 0.05
done
tokens_before=$(sha256sum <tokens)
renewals_before=$(counter statuses 'auth.token 200')
control POST /tokens/expire >/dev/null
wait "$cp_pid"; check "cp while the token expires" 0 $?
# The fragments went to the session's pre-authenticated URL; a lookup needs the token.
control POST /remote/mkdir '{"path": "/Cases/after-expiry"}' >/dev/null
ls -d mnt/after-expiry >/dev/null; check "a lookup after the expiry" 0 $?
check "unmount after the expiry" 0 "$(run unmount mnt)"
control POST /settings '{"bandwidth_bps": 0}' >/dev/null
cmp expiring.bin drive/Cases/expiring.bin; check "the upload outlived its token" 0 $?
check "the token was renewed" yes \
  "$([ "$(counter statuses 'auth.token 200')" -gt "$renewals_before" ] && echo yes)"
# The daemon left its working directory when it mounted: the rotated refresh token
# still goes to the token file named (relative) on the command line.
check "the rotated token was saved to the token file" changed \
  "$([ "$(sha256sum <tokens)" != "$tokens_before" ] && echo changed)"

# ---- download URLs that expire in the middle of a read ----
check "mount to read" 0 "$(mount_cases)"
dd if=mnt/big.bin of=head.bin bs=1M count=4 status=none
control POST /download-urls/expire >/dev/null
cmp big.bin mnt/big.bin; check "a read goes on past an expired download URL" 0 $?
check "the expired URL was refused and replaced" yes \
  "$([ "$(counter statuses 'download 401')" -ge 1 ] && echo yes)"

# ---- another client edits a file this mount has open for writing ----
echo "ours, first" >mnt/shared.txt
sync mnt/shared.txt
exec 3>>mnt/shared.txt
echo "ours, appended" >&3
control POST /remote/write '{"path": "/Cases/shared.txt", "text": "theirs\n"}' >/dev/null
exec 3>&-
copy=""
for _ in $(seq 100); do
  copy=$(ls drive/Cases | grep '^shared (conflicted copy ' || true)
  [ -n "$copy" ] && break
  sleep 0.1
done
check "their version keeps the name" "theirs" "$(cat drive/Cases/shared.txt)"
check "ours lands as a conflict copy" "ours, first|ours, appended" \
  "$([ -n "$copy" ] && tr '\n' '|' <"drive/Cases/$copy" | sed 's/|$//')"

# ---- a full drive: ENOSPC, and the daemon stays up ----
control POST /settings '{"quota_bytes": 1}' >/dev/null
dd if=/dev/zero of=mnt/full.bin bs=1M count=6 conv=fsync status=none 2>dd.err
check "fsync on a full drive fails" 1 $?
grep -q "No space left on device" dd.err; check "with ENOSPC" 0 $?
rm -f mnt/full.bin
control POST /settings '{"quota_bytes": 1099511627776}' >/dev/null
check "the daemon still serves" 30 "$(ls mnt/listed | wc -l)"
check "unmount" 0 "$(run unmount mnt)"

check "no token sent to content URLs" "0 0" \
  "$(counter auth_header_on_content_urls download) $(counter auth_header_on_content_urls upload)"
report onedrive_faults_e2e
