#!/usr/bin/env bash
# Issue 12, item 2: `rekey` on a mounted vault exited 0 and lost the files the live
# mount then wrapped under the old key. One writer at a time: while a vault is
# mounted, rekey and a second mount exit 13 with "the vault is in use by pid N:
# unmount it first"; info, fsck, decrypt and map keep working; and after the daemon is
# killed with -9 its stale lock file does not block the next mount.
# Needs root or fusermount3 with /dev/fuse.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: issue12_item02_vault_lock_e2e.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-lock-XXXXXX)

cleanup() {
  for m in "$WORK/mnt" "$WORK/mnt2"; do
    grep -q " $m fuse" /proc/mounts && { fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; }
  done
  [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

mounted() { grep -q " $1 fuse.cadcanfs " /proc/mounts && echo yes || echo no; }
in_use() { grep -qx "cadcanfs: the vault is in use by pid $1: unmount it first" "$WORK/err" && echo yes || echo no; }

"$BIN" keygen key >/dev/null
"$BIN" keygen new.key >/dev/null
"$BIN" init vault --key-file key >/dev/null
mkdir mnt mnt2
"$BIN" info vault | grep 'key id' >keys.before

check "mount" 0 "$(run mount vault mnt --key-file key)"
pid=$(daemon_pid)
echo "scan data" >mnt/scan.stl
sync mnt/scan.stl

# ---- a second writer is refused, with the daemon's pid ----
check "rekey while mounted" 13 "$(run rekey vault --key-file key --new-key-file new.key)"
check "rekey refusal: one line" yes "$(one_line)"
check "rekey refusal names the daemon" yes "$(in_use "$pid")"
check "second mount of the vault" 13 "$(run mount vault mnt2 --key-file key)"
check "second mount refusal: one line" yes "$(one_line)"
check "second mount refusal names the daemon" yes "$(in_use "$pid")"
check "second mountpoint left unmounted" no "$(mounted "$WORK/mnt2")"
run info vault >/dev/null
check "the refused rekey changed nothing" "$(cat keys.before)" "$(grep 'key id' out)"
check "the mount still serves" "scan data" "$(cat mnt/scan.stl)"

# ---- read-only commands work while mounted ----
check "info while mounted" 0 "$(run info vault)"
check "fsck while mounted" 0 "$(run fsck vault --key-file key)"
check "decrypt while mounted" 0 "$(run decrypt vault restored --key-file key)"
check "decrypted content" "scan data" "$(cat restored/scan.stl 2>/dev/null)"
check "map while mounted" 0 "$(run map vault scan.stl --key-file key)"

# ---- kill -9: the stale lock file blocks nobody ----
kill -9 "$pid"
wait_gone "$pid"
check "lock file left behind" yes "$([ -f vault/cadcanfs.lock ] && echo yes || echo no)"
fusermount3 -u -z mnt 2>/dev/null || umount -l mnt
check "dead mount cleared" no "$(mounted "$WORK/mnt")"
check "mount after kill -9" 0 "$(run mount vault mnt --key-file key)"
pid=$(daemon_pid)
check "data after remount" "scan data" "$(cat mnt/scan.stl 2>/dev/null)"
check "rekey refused again" 13 "$(run rekey vault --key-file key --new-key-file new.key)"
check "refusal names the new daemon" yes "$(in_use "$pid")"

# ---- after unmounting, rekey runs ----
check "unmount" 0 "$(run unmount mnt)"
wait_gone "$pid"
check "rekey after unmount" 0 "$(run rekey vault --key-file key --new-key-file new.key)"
check "fsck with the new key" 0 "$(run fsck vault --key-file new.key)"
check "mount with the new key" 0 "$(run mount vault mnt --key-file new.key)"
pid=$(daemon_pid)
check "data after rekey" "scan data" "$(cat mnt/scan.stl 2>/dev/null)"
check "final unmount" 0 "$(run unmount mnt)"
wait_gone "$pid"
pid=

report issue12_item02_vault_lock_e2e
