#!/usr/bin/env bash
# Real mounts of a store that cannot write in place (issue 10 §4): a plain mount of
# `remote-like:DIR?latency_ms=20`, which behaves as OneDrive does (whole-object commits,
# its name rules, no symlinks), with writes staged encrypted in the cache directory.
# cp -a and diff -r, save-in-place through a temporary file and rename, office lock
# files, fio with verification, unmount waiting for the uploads, a kill -9 with a commit
# still owed that the next mount finishes, and no plaintext in the cache directory.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: remote_mount_e2e_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-remote-XXXXXX)
cleanup() {
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

MARKER="Smith_Jane_$(date +%s%N)"
gen() { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }
daemon_pid() { sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$WORK/out"; }
wait_gone() { for _ in $(seq 1 500); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.02; done; return 1; }
mount_remote() {  # mount_remote [LATENCY_MS]
  "$BIN" mount --plain "remote-like:$WORK/remote?latency_ms=${1:-20}" mnt --key-file key \
    --cache-dir "$WORK/cache" >"$WORK/out" 2>"$WORK/err"
}

"$BIN" keygen key >/dev/null
mkdir remote mnt src
mkdir -p "src/$MARKER/cbct" "src/$MARKER/photos"
gen cbct 3000000 >"src/$MARKER/cbct/volume-$MARKER.dcm"
for i in 1 2 3; do gen "photo$i" $((100000 * i)) >"src/$MARKER/photos/p$i.jpg"; done
printf '%s\n' "$MARKER notes" >"src/$MARKER/notes.txt"

mount_remote; check "mount of a remote-like store" 0 $?
pid=$(daemon_pid)

cp -a "src/$MARKER" mnt/; check "cp -a a case tree" 0 $?
diff -r "src/$MARKER" "mnt/$MARKER" >/dev/null; check "diff -r through the mount" 0 $?

# Save in place the way CAD programs do: write a temporary file, rename it over.
gen saved 500000 >"mnt/$MARKER/notes.txt.tmp" && mv -f "mnt/$MARKER/notes.txt.tmp" "mnt/$MARKER/notes.txt"
cmp -s <(gen saved 500000) "mnt/$MARKER/notes.txt"; check "save through a temporary file and rename" 0 $?
# A rewrite in the middle of a file: the store can only replace it whole.
printf 'PATCH' | dd of="mnt/$MARKER/cbct/volume-$MARKER.dcm" bs=1 seek=1000000 conv=notrunc status=none
gen cbct 3000000 >expected.dcm
printf 'PATCH' | dd of=expected.dcm bs=1 seek=1000000 conv=notrunc status=none
cmp -s expected.dcm "mnt/$MARKER/cbct/volume-$MARKER.dcm"; check "a write in the middle reads back" 0 $?
# LibreOffice's lock file, made and removed as it opens and closes a document.
touch "mnt/$MARKER/.~lock.report.odt#" && rm "mnt/$MARKER/.~lock.report.odt#"
check "office lock file" 0 $?
ln -s x "mnt/$MARKER/link" 2>/dev/null; check "no symlinks on this store" 1 $?
if command -v fio >/dev/null; then
  fio --name=verify --directory=mnt --size=8M --bs=64k --rw=randwrite --verify=crc32c \
    --ioengine=psync --do_verify=1 --output=/dev/null >/dev/null 2>&1
  check "fio randwrite with verification" 0 $?
fi

"$BIN" unmount mnt; wait_gone "$pid"
check "unmount waits for the uploads" 0 $?
diff -r "src/$MARKER/photos" "remote/$MARKER/photos" >/dev/null
check "the store holds every file after unmount" 0 $?
cmp -s <(gen saved 500000) "remote/$MARKER/notes.txt"; check "the renamed save is in the store" 0 $?

# kill -9 with commits still owed: the next mount finds them in its journal. A slow
# store (300 ms a call) keeps the commits queued; the pause lets the kernel deliver the
# releases, which is when a stage is journalled (close(2) itself does not wait).
mount_remote 300; pid=$(daemon_pid)
for i in 1 2 3 4; do gen "late$i" 700000 >"mnt/$MARKER/late-$i.bin"; done
sleep 0.5
kill -9 "$pid"; wait_gone "$pid"
"$BIN" unmount mnt >/dev/null 2>&1
mount_remote; check "remount after kill -9" 0 $?
pid=$(daemon_pid)
ok=0
for i in 1 2 3 4; do cmp -s <(gen "late$i" 700000) "mnt/$MARKER/late-$i.bin" && ok=$((ok + 1)); done
check "closed files written before the kill read back" 4 "$ok"
"$BIN" unmount mnt; wait_gone "$pid"
ok=0
for i in 1 2 3 4; do cmp -s <(gen "late$i" 700000) "remote/$MARKER/late-$i.bin" && ok=$((ok + 1)); done
check "and reach the store at the next unmount" 4 "$ok"
check "nothing is left staged" "" "$(find cache -type f)"

# Nothing readable was ever spilled: the marker is in names and content above.
found=0
for pattern in "$MARKER" "PATCH"; do
  grep -rlFa -- "$pattern" cache >/dev/null 2>&1 && found=1
done
find cache -name "*Smith*" | grep -q . && found=1
check "no plaintext name or content in the cache directory" 0 "$found"
report "remote mount e2e"
