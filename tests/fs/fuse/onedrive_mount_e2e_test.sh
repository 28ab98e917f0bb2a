#!/usr/bin/env bash
# A plain OneDrive folder mounted for real (issue 8), against the Graph emulator
# (tests/graph_emulator, 127.0.0.1 only, stopped by this test): sign in with the device
# code, mount onedrive:/Cases with --plain, copy a case tree in and out, check what
# landed in the drive, and see another client's rename and delete within two polls.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: onedrive_mount_e2e_test.sh PATH_TO_CADCANFS}")
# shellcheck source=../../testing/onedrive_e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/onedrive_e2e_lib.sh"
enter_scratch_dir onedrive
mkdir -p drive/Cases mnt cache
start_graph_emulator

"$BIN" keygen key >/dev/null
check "login with the device code" 0 "$(sign_in tokens --key-file key)"

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
check "no token sent to content URLs" "0 0" \
  "$(counter auth_header_on_content_urls download) $(counter auth_header_on_content_urls upload)"

report onedrive_mount_e2e
