#!/usr/bin/env bash
# Real mounts of a store that cannot write in place (issue 10 §4), in both formats: a
# plain mount and an encrypted vault on `remote-like:DIR?latency_ms=20`, which behaves
# as OneDrive does (whole-object commits, its name rules, no symlinks), with writes
# staged encrypted in the cache directory. For each: cp -a and diff -r, save-in-place
# through a temporary file and rename, office lock files, fio with verification,
# unmount waiting for the uploads, a kill -9 with commits still owed that the next
# mount finishes, a change made in the store behind an open file that ends as a
# conflict copy beside it, and no plaintext in the cache directory, its journal or
# (for the vault) the store. The vault also checks its lease (a second mount is
# refused; a killed holder's lease is taken over at once) and info, fsck, decrypt and
# map on the remote store.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: remote_mount_e2e_test.sh PATH_TO_CADCANFS}")
enter_scratch_dir remote

MARKER="Smith_Jane_$(date +%s%N)"
gen() { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }
# A file whose content, not only its name, carries the marker.
late_content() { printf '%s late %s\n' "$MARKER" "$1"; gen "late$1" 300000; }

"$BIN" keygen key >/dev/null
mkdir src
mkdir -p "src/$MARKER/cbct" "src/$MARKER/photos"
gen cbct 1500000 >"src/$MARKER/cbct/volume-$MARKER.dcm"
for i in 1 2; do gen "photo$i" $((100000 * i)) >"src/$MARKER/photos/p$i.jpg"; done
printf '%s\n' "$MARKER notes" >"src/$MARKER/notes.txt"
gen cbct 1500000 >expected.dcm
printf 'PATCH' | dd of=expected.dcm bs=1 seek=700000 conv=notrunc status=none

# 0 if no file under the given places holds the marker or PATCH in its name or bytes.
marker_absent() {
  local place found=0
  for place in "$@"; do
    for pattern in "$MARKER" "PATCH"; do
      grep -rlFa -- "$pattern" "$place" >/dev/null 2>&1 && found=1
    done
    find "$place" -name "*Smith*" | grep -q . && found=1
  done
  echo "$found"
}

# run_format FORMAT: every check over one format ("plain" or "vault"). $STORE is the
# store's directory, $CACHE its cache directory; $label prefixes every check.
run_format() {
  local format=$1 pid ok i conflict ours theirs
  label=$format
  STORE="$WORK/$format-remote"
  CACHE="$WORK/$format-cache"
  VIEW="$WORK/$format-view"
  mkdir "$STORE" mnt
  format_args=(--key-file key --cache-dir "$CACHE")
  if [ "$format" = plain ]; then
    format_args+=(--plain)
  else
    "$BIN" init "remote-like:$STORE" --key-file key >/dev/null
    check "$label: init on a remote-like store" 0 $?
  fi
  mount_remote() {  # mount_remote [LATENCY_MS]
    "$BIN" mount "remote-like:$STORE?latency_ms=${1:-20}" mnt "${format_args[@]}" >"$WORK/out" 2>"$WORK/err"
  }
  # The store's content in plaintext: the store itself, or the vault decrypted.
  store_view() {
    if [ "$format" = plain ]; then
      VIEW=$STORE
      return
    fi
    rm -rf "$VIEW"
    "$BIN" decrypt "remote-like:$STORE" "$VIEW" --key-file key --quiet >/dev/null 2>&1
  }

  mount_remote; check "$label: mount of a remote-like store" 0 $?
  pid=$(daemon_pid)
  if [ "$format" = vault ]; then
    mkdir mnt2
    "$BIN" mount "remote-like:$STORE" mnt2 "${format_args[@]}" >"$WORK/out2" 2>"$WORK/err2"
    check "$label: a second mount is refused by the lease" 13 $?
    check "$label: with one line saying who holds it" \
      "cadcanfs: the vault is in use by pid $pid: unmount it first" "$(cat "$WORK/err2")"
    rmdir mnt2
  fi

  cp -a "src/$MARKER" mnt/; check "$label: cp -a a case tree" 0 $?
  diff -r "src/$MARKER" "mnt/$MARKER" >/dev/null; check "$label: diff -r through the mount" 0 $?

  # Save in place the way CAD programs do: write a temporary file, rename it over.
  gen saved 500000 >"mnt/$MARKER/notes.txt.tmp" && mv -f "mnt/$MARKER/notes.txt.tmp" "mnt/$MARKER/notes.txt"
  cmp -s <(gen saved 500000) "mnt/$MARKER/notes.txt"; check "$label: save through a temporary file and rename" 0 $?
  # A rewrite in the middle of a file: the store can only replace it whole.
  printf 'PATCH' | dd of="mnt/$MARKER/cbct/volume-$MARKER.dcm" bs=1 seek=700000 conv=notrunc status=none
  cmp -s expected.dcm "mnt/$MARKER/cbct/volume-$MARKER.dcm"; check "$label: a write in the middle reads back" 0 $?
  # LibreOffice's lock file, made and removed as it opens and closes a document.
  touch "mnt/$MARKER/.~lock.report.odt#" && rm "mnt/$MARKER/.~lock.report.odt#"
  check "$label: office lock file" 0 $?
  ln -s x "mnt/$MARKER/link" 2>/dev/null; check "$label: no symlinks on this store" 1 $?
  if command -v fio >/dev/null; then
    fio --name=verify --directory=mnt --size=2M --bs=64k --rw=randwrite --verify=crc32c \
      --ioengine=psync --do_verify=1 --output=/dev/null >/dev/null 2>&1
    check "$label: fio randwrite with verification" 0 $?
    rm -f mnt/verify.*
  fi
  # Two files for the conflict below: the one kept open, and (vault) a second valid
  # ciphertext to put in its place behind the mount's back.
  printf 'base version\n' >"mnt/$MARKER/report.txt"
  printf 'store version\n' >"mnt/$MARKER/theirs.txt"

  "$BIN" unmount mnt; wait_gone "$pid"
  check "$label: unmount waits for the uploads" 0 $?
  store_view
  diff -r "src/$MARKER/photos" "$VIEW/$MARKER/photos" >/dev/null
  check "$label: the store holds every file after unmount" 0 $?
  cmp -s <(gen saved 500000) "$VIEW/$MARKER/notes.txt"; check "$label: the renamed save is in the store" 0 $?

  # kill -9 with commits still owed: the next mount finds them in its journal. A slow
  # store (300 ms a call) keeps the commits queued; the pause lets the kernel deliver
  # the releases, which is when a stage is journalled (close(2) itself does not wait).
  mount_remote 300; pid=$(daemon_pid)
  for i in 1 2; do late_content "$i" >"mnt/$MARKER/late-$i-$MARKER.bin"; done
  sleep 0.5
  kill -9 "$pid"; wait_gone "$pid"
  "$BIN" unmount mnt >/dev/null 2>&1
  # What the crash left: staged blocks and their journal, none of it readable.
  find "$CACHE" -name '*.journal' | grep -q .; check "$label: the kill left a journal" 0 $?
  check "$label: no plaintext in the staged blocks or the journal" 0 "$(marker_absent "$CACHE")"
  mount_remote; check "$label: remount after kill -9 (a dead holder's lock is taken over)" 0 $?
  pid=$(daemon_pid)
  if [ "$format" = vault ]; then
    grep -q "recovered after an unclean stop" "$WORK/err"
    check "$label: the lease left behind counts as an unclean stop" 0 $?
  fi
  ok=0
  for i in 1 2; do cmp -s <(late_content "$i") "mnt/$MARKER/late-$i-$MARKER.bin" && ok=$((ok + 1)); done
  check "$label: closed files written before the kill read back" 2 "$ok"

  # A change in the store behind a file open for writing: ours becomes a conflict copy.
  # The other writer replaces the object, as a sync client does, so its eTag changes.
  exec 3<>"mnt/$MARKER/report.txt"
  printf 'our version\n' >&3
  if [ "$format" = plain ]; then
    ours="$MARKER/report.txt"
    printf 'store version\n' >"$WORK/replacement"
  else
    # Another valid ciphertext in its place (file headers are not bound to a path).
    "$BIN" map "remote-like:$STORE" "$MARKER/theirs.txt" --key-file key --to-cipher >map.out
    theirs=$(sed -n 's/^ciphertext: //p' map.out)
    "$BIN" map "remote-like:$STORE" "$MARKER/report.txt" --key-file key --to-cipher >map.out
    ours=$(sed -n 's/^ciphertext: //p' map.out)
    cp "$STORE/$theirs" "$WORK/replacement"
  fi
  mv "$WORK/replacement" "$STORE/$ours"
  exec 3>&-
  "$BIN" unmount mnt; wait_gone "$pid"
  store_view
  ok=0
  for i in 1 2; do cmp -s <(late_content "$i") "$VIEW/$MARKER/late-$i-$MARKER.bin" && ok=$((ok + 1)); done
  check "$label: and reach the store at the next unmount" 2 "$ok"
  check "$label: nothing is left staged" "" "$(find "$CACHE" -type f)"

  mount_remote; pid=$(daemon_pid)
  check "$label: the store's change keeps the name" "store version" "$(cat "mnt/$MARKER/report.txt")"
  conflict=$(find "mnt/$MARKER" -name 'report (conflicted copy *).txt')
  check "$label: ours is a conflict copy beside it" "our version" "$(cat "$conflict" 2>/dev/null)"
  "$BIN" unmount mnt; wait_gone "$pid"

  if [ "$format" = plain ]; then
    # The search below finds what is there: a plain store holds the marker as it is.
    check "$label: the marker search sees a plain store's names" 1 "$(marker_absent "$STORE")"
    check "$label: no plaintext name or content in the cache directory" 0 "$(marker_absent "$CACHE")"
  else
    check "$label: no plaintext name or content in the cache directory or the store" 0 \
      "$(marker_absent "$CACHE" "$STORE")"
    find "$STORE" -name '*conflicted copy*' | grep -q .
    check "$label: the conflict copy's name is encrypted in the store" 1 $?
    "$BIN" info "remote-like:$STORE" >/dev/null; check "$label: info on the remote store" 0 $?
    "$BIN" fsck "remote-like:$STORE" --key-file key --quiet >fsck.out 2>&1
    check "$label: fsck of the remote store is clean" 0 $?
    check "$label: no lease is left after a clean unmount" no \
      "$([ -e "$STORE/cadcanfs.lock" ] && echo yes || echo no)"
  fi
  rmdir mnt
}

# REMOTE_E2E_FORMATS narrows the run (the sanitizer build runs the vault half only).
for format in ${REMOTE_E2E_FORMATS:-plain vault}; do run_format "$format"; done
report "remote mount e2e"
