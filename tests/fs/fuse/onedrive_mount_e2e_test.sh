#!/usr/bin/env bash
# A plain OneDrive folder mounted for real (issue 8), against the Graph emulator
# (tests/graph_emulator, 127.0.0.1 only, stopped by this test): sign in with the device
# code, mount onedrive:/Cases with --plain, copy a case tree in and out, check what
# landed in the drive, and see another client's rename and delete within two polls.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: onedrive_mount_e2e_test.sh PATH_TO_CADCANFS}")
EMULATOR="$(dirname "$(realpath "$0")")/../../graph_emulator/graph_emulator.py"
enter_scratch_dir onedrive
emu_pid=""
stop_emulator() {
  remove_scratch_dir_mounts
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null; fi
  rm -rf "$WORK"
}
remove_scratch_dir_mounts() {
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
}
trap stop_emulator EXIT

mkdir drive mnt cache
mkdir drive/Cases
python3 "$EMULATOR" --root "$WORK/drive" --port-file "$WORK/ports.json" --device-code-interval 0 \
  >emulator.log 2>&1 &
emu_pid=$!
for _ in $(seq 200); do [ -s ports.json ] && break; sleep 0.05; done
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' ports.json "$1"; }
graph_url=$(port_of graph_url)
login_url=$(port_of login_url)
control_url=$(port_of control_url)
control() {  # control METHOD PATH [JSON]
  python3 - "$control_url$2" "$1" "${3:-{\}}" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method=sys.argv[2])
req.add_header("Content-Type", "application/json")
print(urllib.request.urlopen(req).read().decode())
PY
}

"$BIN" keygen key >/dev/null
# The device-code sign-in: the code the command prints is approved as a user would.
"$BIN" login --token-file tokens --key-file key --login-url "$login_url" >login.out 2>&1 &
login_pid=$!
for _ in $(seq 200); do grep -q "enter the code" login.out && break; sleep 0.05; done
code=$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' login.out)
control POST /device/approve "{\"user_code\": \"$code\"}" >/dev/null
wait "$login_pid"
check "login" 0 $?

mount_onedrive() {
  run mount onedrive:/Cases mnt --plain --token-file tokens --key-file key \
    --graph-url "$graph_url" --cache-dir cache --poll-interval 1 "$@"
}
check "mount onedrive:/Cases" 0 "$(mount_onedrive)"

# A case tree in and out, as a CAD program's export would arrive.
mkdir -p src/Smith_Jane/scans
head -c 6000000 /dev/urandom >src/Smith_Jane/scans/upper.stl  # an upload session
head -c 3000 /dev/urandom >src/Smith_Jane/scans/lower.ply       # a simple upload
: >src/Smith_Jane/empty.txt
cp -r src/Smith_Jane mnt/
check "cp -r into the mount" 0 $?
check "diff -r through the mount" 0 "$(diff -r src/Smith_Jane mnt/Smith_Jane >diff.out 2>&1; echo $?)"
[ -s diff.out ] && cat diff.out
check "ls -l shows the sizes" 6000000 "$(stat -c %s mnt/Smith_Jane/scans/upper.stl)"
check "unmount waits for the uploads" 0 "$(run unmount mnt)"
check "what landed in OneDrive" 0 "$(diff -r src/Smith_Jane drive/Cases/Smith_Jane >/dev/null; echo $?)"

# Another client renames and deletes; a mount sees it within two poll intervals.
check "mount again" 0 "$(mount_onedrive)"
check "listed after a remount" "lower.ply upper.stl" "$(ls mnt/Smith_Jane/scans | tr '\n' ' ' | sed 's/ $//')"
control POST /remote/rename '{"path": "/Cases/Smith_Jane/scans/lower.ply", "new_name": "lower jaw.ply"}' >/dev/null
control POST /remote/delete '{"path": "/Cases/Smith_Jane/empty.txt"}' >/dev/null
sleep 2.5
check "another client's rename shows" "lower jaw.ply upper.stl" \
  "$(ls mnt/Smith_Jane/scans | tr '\n' ' ' | sed 's/ $//')"
[ ! -e mnt/Smith_Jane/empty.txt ]
check "another client's delete shows" 0 $?
check "unmount" 0 "$(run unmount mnt)"

# No token or Authorization header reached a download or upload URL.
check "no token sent to content URLs" "0 0" "$(control GET /counters | python3 -c \
  'import json,sys; c=json.load(sys.stdin)["auth_header_on_content_urls"]; print(c.get("download",0), c.get("upload",0))')"

report onedrive_mount_e2e
