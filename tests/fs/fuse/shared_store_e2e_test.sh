#!/usr/bin/env bash
# --shared-store on a real mount (issue 10, "coherence with other writers"): what another
# writer does to the store shows through the mount at once, with no kernel cache in the
# way: a rewritten file's new bytes and size, a new name, a removed one.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: shared_store_e2e_test.sh PATH_TO_CADCANFS}")
enter_scratch_dir shared
mkdir store mnt
echo "first version" >store/scan.txt

check "mount with --shared-store" 0 "$(run mount --plain store mnt --shared-store)"
check "read through the mount" "first version" "$(cat mnt/scan.txt)"
# Another writer rewrites the file in place (same inode, new length and bytes). Without
# --shared-store the kernel would still report the old size for up to a second.
echo "second, longer version from another workstation" >store/scan.txt
check "its new size, at once" "$(stat -c %s store/scan.txt)" "$(stat -c %s mnt/scan.txt)"
check "the other writer's bytes" "second, longer version from another workstation" \
  "$(cat mnt/scan.txt)"
echo new >store/added.txt
check "a name another writer added" "added.txt scan.txt" "$(ls mnt | tr '\n' ' ' | sed 's/ $//')"
rm store/added.txt
[ ! -e mnt/added.txt ]
check "a name another writer removed" 0 $?
check "unmount" 0 "$(run unmount mnt)"

report shared_store_e2e
