#!/usr/bin/env bash
# The flat vault layout through a real mount (issue 10 §3): a vault on a store that
# refuses any path over 400 characters, as OneDrive does, holds a 20-level tree of
# 60-character folder names, and it round-trips through the mount and `decrypt`. The
# same tree in the tree layout fails with ENAMETOOLONG, which is why the flat one exists.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: flat_layout_e2e_test.sh PATH_TO_CADCANFS}")
enter_scratch_dir flat

deep=""
for level in $(seq 1 20); do
  name=$(printf 'Patient folder %02d %s' "$level" "$(printf 'x%.0s' $(seq 1 42))")
  deep="${deep:+$deep/}$name"
done
check "60-character names" 60 "${#name}"
mkdir -p "src/$deep"
head -c 300000 /dev/urandom >"src/$deep/upper jaw.stl"
echo "top" >src/notes.txt
"$BIN" keygen key >/dev/null

# mount_vault LAYOUT: a fresh vault in that layout on a 400-character remote-like store.
mount_vault() {
  mkdir -p "$1-store" "$1-mnt"
  "$BIN" init "remote-like:$WORK/$1-store" --layout "$1" --key-file key >/dev/null
  "$BIN" mount "remote-like:$WORK/$1-store" "$1-mnt" --key-file key --cache-dir "$WORK/$1-cache" \
    >"$WORK/out" 2>"$WORK/err"
}
unmount_vault() {
  local pid
  pid=$(daemon_pid)
  "$BIN" unmount "$1-mnt"
  wait_gone "$pid"
}

mount_vault flat
check "mount a flat vault" 0 $?
cp -a src/. flat-mnt/
check "cp -a of a 20-level tree" 0 $?
diff -r src flat-mnt >/dev/null
check "diff -r through the mount" 0 $?
unmount_vault flat
check "unmount" 0 $?
longest=$(cd flat-store && find . -mindepth 1 | awk '{ print length($0) - 2 }' | sort -n | tail -1)
[ "$longest" -le 400 ]
check "the longest store path ($longest) fits in 400 characters" 0 $?
"$BIN" decrypt "remote-like:$WORK/flat-store" restored --key-file key --quiet >/dev/null 2>&1
check "decrypt" 0 $?
diff -r src restored >/dev/null
check "diff -r of the decrypted tree" 0 $?
"$BIN" fsck "remote-like:$WORK/flat-store" --key-file key >/dev/null 2>&1
check "fsck finds nothing" 0 $?
cipher=$("$BIN" map "remote-like:$WORK/flat-store" "$deep/upper jaw.stl" --key-file key | sed 's/^ciphertext: //')
check "map names a path in the flat tree" "cadcanfs.dirs" "${cipher%%/*}"

mount_vault tree
check "mount a tree vault" 0 $?
mkdir -p "tree-mnt/$deep" 2>"$WORK/mkdir.err"
check "the tree layout runs out of path" 1 $?
grep -q "File name too long" "$WORK/mkdir.err"
check "with ENAMETOOLONG" 0 $?
unmount_vault tree

report flat_layout_e2e
