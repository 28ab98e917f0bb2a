#!/usr/bin/env bash
# End-to-end tests of `cadcanfs mount` with real tools: daemon life cycle and exit
# codes, an unprivileged user, cp/tar/diff/git, fio with verification, the
# never-plaintext-on-disk marker search, kill -9 during writes, and a full disk.
# Needs root (it creates a user, a tmpfs and mount namespaces).
# CADCANFS_TEST_FORMAT=plain runs it over `mount --plain DIR` (one core, two formats);
# what only a vault has (a key, fsck, ciphertext on disk) is skipped, and says so.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN_SRC=$(realpath "${1:?usage: mount_e2e_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-mnt-XXXXXX)
chmod 755 "$WORK"
BIN="$WORK/cadcanfs"
cp "$BIN_SRC" "$BIN" && chmod 755 "$BIN"
TEST_USER=cadcanfs-e2e
FORMAT=${CADCANFS_TEST_FORMAT:-vault}
# The plain run is a subset, to keep the suite's time: smaller fio files, a shorter
# write burst before the kill, and the kill -9 test without --writeback-cache (the
# kernel's page cache is the same in both formats).
if [ "$FORMAT" = plain ]; then
  STORE_OPTS=(--plain)
  FIO_SIZE=32M
  CRASH_AFTER=0.5
else
  STORE_OPTS=(--key-file key)
  FIO_SIZE=256M
  CRASH_AFTER=1.5
fi
# new_store DIR: an empty vault, or an empty folder for --plain.
new_store() {
  if [ "$FORMAT" = plain ]; then mkdir "$1"; else "$BIN" init "$1" --key-file key >/dev/null; fi
}
vault_only() {  # vault_only WHAT: true for a vault; for plain, says what is skipped
  [ "$FORMAT" = vault ] && return 0
  echo "skipped over plain: $1"
  return 1
}

cleanup() {
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  pkill -9 -f "$WORK/cadcanfs" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

mounted() { grep -q " $1 fuse.cadcanfs " /proc/mounts && echo yes || echo no; }
# Deterministic pseudo-random bytes: gen SEED BYTES
gen() { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }

"$BIN" keygen key >/dev/null
"$BIN" keygen other.key >/dev/null
new_store vault
mkdir mnt

# ---- errors before mounting: one line each, documented exit codes ----
check "missing vault" 3 "$(run mount nowhere mnt "${STORE_OPTS[@]}")"; check "missing vault: one line" yes "$(one_line)"
if vault_only "wrong key (a plain folder has no key)"; then
  check "wrong key" 5 "$(run mount vault mnt --key-file other.key)"; check "wrong key: one line" yes "$(one_line)"
fi
check "missing mountpoint" 11 "$(run mount vault nomnt "${STORE_OPTS[@]}")"; check "missing mountpoint: one line" yes "$(one_line)"
mkdir busy && touch busy/x
check "non-empty mountpoint" 7 "$(run mount vault busy "${STORE_OPTS[@]}")"; check "non-empty: one line" yes "$(one_line)"
check "no /dev/fuse" 11 "$(unshare -m sh -c "mount -t tmpfs none /dev && '$BIN' mount vault mnt ${STORE_OPTS[*]} -f" >out 2>err; echo $?)"
check "no /dev/fuse: one line" yes "$(one_line)"
check "unmount of nothing" 10 "$(run unmount mnt)"

# ---- daemon life cycle ----
check "mount detaches once live" 0 "$(run mount vault mnt "${STORE_OPTS[@]}")"
check "mounted after exit" yes "$(mounted "$WORK/mnt")"
check "readiness is one line" 1 "$(wc -l <out)"
pid=$(daemon_pid)
mkdir mnt2
check "in-use mountpoint" 11 "$(run mount vault mnt "${STORE_OPTS[@]}")"; check "in-use: one line" yes "$(one_line)"
echo "hello" >mnt/hello.txt
kill -TERM "$pid"; wait_gone "$pid"; check "SIGTERM ends the daemon" 0 $?
check "SIGTERM unmounts" no "$(mounted "$WORK/mnt")"
check "remount" 0 "$(run mount vault mnt "${STORE_OPTS[@]}")"
check "data survives remount" hello "$(cat mnt/hello.txt)"
pid=$(daemon_pid)
check "cadcanfs unmount" 0 "$(run unmount mnt)"
# unmount returns once the daemon has exited, so what runs next finds its locks free
check "the daemon has exited when unmount returns" gone \
  "$(if kill -0 "$pid" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then echo running; else echo gone; fi)"
wait_gone "$pid"; check "daemon exits after unmount" 0 $?
check "mount for fusermount3" 0 "$(run mount vault mnt "${STORE_OPTS[@]}")"
pid=$(daemon_pid)
fusermount3 -u mnt; check "fusermount3 -u" no "$(mounted "$WORK/mnt")"
wait_gone "$pid"

# stale mountpoint: the daemon is killed
check "mount before kill" 0 "$(run mount vault mnt "${STORE_OPTS[@]}")"
kill -9 "$(daemon_pid)"; sleep 0.2
check "stale mountpoint" 12 "$(run mount vault mnt "${STORE_OPTS[@]}")"; check "stale: one line" yes "$(one_line)"
grep -q "transport endpoint is not connected" err; check "stale message" 0 $?
check "unmount clears a stale mount" 0 "$(run unmount mnt)"

# --read-only, --uid/--gid
check "read-only mount" 0 "$(run mount vault mnt "${STORE_OPTS[@]}" --read-only --uid 4321 --gid 4322)"
pid=$(daemon_pid)
check "read-only: reads" hello "$(cat mnt/hello.txt)"
echo x 2>/dev/null >mnt/new.txt; check "read-only: write refused" 1 $?
check "forced owner" "4321:4322" "$(stat -c %u:%g mnt/hello.txt)"
"$BIN" unmount mnt; wait_gone "$pid"

# ---- unprivileged user through fusermount3 ----
# Debian's udev rule makes /dev/fuse 0666; some container images leave it 0600.
chmod 0666 /dev/fuse
id "$TEST_USER" >/dev/null 2>&1 || useradd -M -d "$WORK/home" -s /bin/sh "$TEST_USER"
mkdir -p "$WORK/user" && chown "$TEST_USER" "$WORK/user"
as_user() { su -s /bin/sh "$TEST_USER" -c "cd '$WORK/user' && $*"; }
if [ "$FORMAT" = plain ]; then
  as_user "mkdir v m"
  USER_OPTS="--plain"
else
  as_user "'$BIN' keygen k >/dev/null && '$BIN' init v --key-file k >/dev/null && mkdir m"
  USER_OPTS="--key-file k"
fi
check "user mount" 0 "$(as_user "'$BIN' mount v m $USER_OPTS" >/dev/null 2>&1; echo $?)"
check "user mount is live" yes "$(mounted "$WORK/user/m")"
as_user "echo user-data >m/f && cat m/f" >user.out 2>&1
check "user writes and reads" user-data "$(cat user.out)"
check "user owns the files" "$TEST_USER" "$(as_user "stat -c %U m/f" 2>/dev/null)"
check "user unmount" 0 "$(as_user "'$BIN' unmount m" >/dev/null 2>&1; echo $?)"
check "user mount gone" no "$(mounted "$WORK/user/m")"

# allow_other: another user reads through a root mount
check "allow_other mount" 0 "$(run mount vault mnt "${STORE_OPTS[@]}" -o allow_other)"
pid=$(daemon_pid)
chmod 755 mnt
echo shared >mnt/shared.txt && chmod 644 mnt/shared.txt
check "other user reads with allow_other" shared "$(su -s /bin/sh "$TEST_USER" -c "cat '$WORK/mnt/shared.txt'" 2>&1)"
su -s /bin/sh "$TEST_USER" -c "echo x >'$WORK/mnt/shared.txt'" 2>/dev/null
check "permissions enforced for other users" refused "$([ $? -ne 0 ] && echo refused)"
check "file unchanged by the refused write" shared "$(cat mnt/shared.txt)"
"$BIN" unmount mnt; wait_gone "$pid"

# ---- real tools: cp -a, tar, diff -r, git ----
"$BIN" mount vault mnt "${STORE_OPTS[@]}" >out 2>&1; pid=$(daemon_pid)
mkdir -p tree/"Doe, Jane"/scans tree/empty-dir
gen tree1 3000000 >tree/"Doe, Jane"/scans/"upper jaw.stl"
gen tree2 70000 >tree/"Doe, Jane"/notes.txt
chmod 600 tree/"Doe, Jane"/notes.txt
ln -s "scans/upper jaw.stl" tree/"Doe, Jane"/latest
ln tree/"Doe, Jane"/notes.txt tree/hardlink.txt
touch -d "2020-01-02 03:04:05" tree/"Doe, Jane"/scans/"upper jaw.stl"
cp -a tree mnt/copied; check "cp -a" 0 $?
diff -r --no-dereference tree mnt/copied; check "diff -r after cp -a" 0 $?
check "cp -a keeps mtime" "$(stat -c %Y tree/"Doe, Jane"/scans/"upper jaw.stl")" "$(stat -c %Y mnt/copied/"Doe, Jane"/scans/"upper jaw.stl")"
check "cp -a keeps modes" 600 "$(stat -c %a mnt/copied/"Doe, Jane"/notes.txt)"
mkdir mnt/untarred && tar -C tree -cf - . | tar -C mnt/untarred -xf -; check "tar extract" 0 $?
diff -r --no-dereference tree mnt/untarred; check "diff -r after tar" 0 $?
tar -C mnt/untarred -cf tarback.tar . && mkdir tarback && tar -C tarback -xf tarback.tar
diff -r --no-dereference tree tarback; check "tar out of the mount" 0 $?
(
  cd mnt/copied && git init -q && git add -A && git -c user.email=t@e -c user.name=t commit -qm one &&
    echo change >>"Doe, Jane"/notes.txt && git status --porcelain | grep -q notes.txt &&
    git -c user.email=t@e -c user.name=t commit -qam two && git fsck >/dev/null 2>&1 && test -z "$(git status --porcelain)"
); check "git init/add/commit/status/fsck" 0 $?

# ---- fio with verification: 1 GiB in total (vault) ----
fio --name=seq --directory=mnt --rw=write --bs=1M --size=$FIO_SIZE --numjobs=2 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --ioengine=psync --group_reporting >fio1.out 2>&1
check "fio sequential verify" 0 $?
fio --name=rand --directory=mnt --rw=randwrite --bs=4k-64k --size=$FIO_SIZE --numjobs=2 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --ioengine=psync --group_reporting >fio2.out 2>&1
check "fio random verify" 0 $?
grep -qi "verify.*bad\|crc32c.*fail" fio1.out fio2.out; check "fio reports no bad blocks" 1 $?
rm -f mnt/seq.* mnt/rand.*
"$BIN" unmount mnt; wait_gone "$pid"
vault_only "fsck after tools" && check "fsck after tools" 0 "$(run fsck vault --key-file key)"

# ---- never plaintext on disk ----
MARKER="cadcanfsMARKER$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
"$BIN" mount vault mnt "${STORE_OPTS[@]}" -f --debug >daemon.log 2>&1 &
fpid=$!
for _ in $(seq 1 250); do [ "$(mounted "$WORK/mnt")" = yes ] && break; sleep 0.02; done
mkdir "mnt/dir-$MARKER"
for i in 1 2 3 4; do
  { for _ in $(seq 1 2000); do printf '%s line %s\n' "$MARKER" "$i"; done; } >"mnt/dir-$MARKER/file-$MARKER-$i"
done
setfattr -n "user.$MARKER" -v "$MARKER" "mnt/dir-$MARKER/file-$MARKER-1"
ln -s "target-$MARKER" "mnt/dir-$MARKER/link-$MARKER"
grep -c "$MARKER" "mnt/dir-$MARKER/file-$MARKER-2" >/dev/null
mv "mnt/dir-$MARKER/file-$MARKER-3" "mnt/renamed-$MARKER"
rm "mnt/dir-$MARKER/file-$MARKER-4"
cat "mnt/dir-$MARKER"/* >/dev/null 2>&1
"$BIN" unmount mnt; wait "$fpid"
B64=$(printf '%s' "$MARKER" | base64 -w0 | tr -d '=')
found=0
if [ "$FORMAT" = plain ]; then
  # A plain folder holds names and content as they are (it is under /tmp too): only
  # the daemon's own log must not.
  echo "skipped over plain: the marker search of the store, /tmp and the caches"
  MARKER_PLACES=("$WORK/daemon.log")
else
  MARKER_PLACES=("$WORK/vault" "$WORK/daemon.log" /tmp /var/tmp "${XDG_CACHE_HOME:-$HOME/.cache}" /root/.cache)
fi
for pattern in "$MARKER" "$B64"; do
  for place in "${MARKER_PLACES[@]}"; do
    [ -e "$place" ] || continue
    if grep -rlFa -- "$pattern" "$place" 2>/dev/null | grep -v '^/proc' | grep -q .; then
      echo "marker found under $place"; found=1
    fi
  done
  [ "$FORMAT" = vault ] && getfattr -R -d -m - "$WORK/vault" 2>/dev/null | grep -qF -- "$pattern" && found=1
done
check "marker never on disk" 0 "$found"
grep -q "lookup parent=" daemon.log; check "debug log records operations" 0 $?

# ---- kill -9 during heavy writes ----
# crash_test LABEL [MOUNT OPTIONS...]: fsynced files must read back exactly. A block
# of a file that was being written either reads right or gives EIO; with
# --writeback-cache it may also read as zeros, where the kernel had not yet written the
# page back (documented: data not yet fsynced lives only in the kernel's cache there).
crash_test() {
  local label=$1 zeros_ok=0 pid ok wrong f size i v="crash-vault-$1"
  shift
  [ "${1:-}" = --writeback-cache ] && zeros_ok=1
  new_store "$v"
  "$BIN" mount "$v" mnt "${STORE_OPTS[@]}" "$@" >out 2>&1; pid=$(daemon_pid)
  mkdir mnt/crash
  for i in 1 2 3 4 5; do
    gen "synced$i" 5000000 | dd of="mnt/crash/synced-$i" bs=1M conv=fsync status=none iflag=fullblock
  done
  for i in 1 2 3 4; do
    (gen "flight$i" 400000000 | dd of="mnt/crash/flight-$i" bs=64k status=none 2>/dev/null) &
  done
  sleep "$CRASH_AFTER"
  kill -9 "$pid"
  wait 2>/dev/null
  "$BIN" unmount mnt >/dev/null 2>&1
  check "$label: remount after kill -9" 0 "$(run mount "$v" mnt "${STORE_OPTS[@]}")"; pid=$(daemon_pid)
  ok=0
  for i in 1 2 3 4 5; do cmp -s <(gen "synced$i" 5000000) "mnt/crash/synced-$i" && ok=$((ok + 1)); done
  check "$label: every fsynced file reads back exactly" 5 "$ok"
  wrong=0
  for i in 1 2 3 4; do
    f="mnt/crash/flight-$i"
    [ -e "$f" ] || continue
    size=$(stat -c %s "$f")
    gen "flight$i" "$size" >expected.bin
    python3 - "$f" expected.bin "$zeros_ok" <<'PY' || { echo "flight-$i returned wrong bytes"; wrong=1; }
import os, sys
got, want = os.open(sys.argv[1], os.O_RDONLY), open(sys.argv[2], "rb").read()
zeros_ok = sys.argv[3] == "1"
bad = 0
for off in range(0, len(want), 32768):
    try:
        block = os.pread(got, 32768, off)
    except OSError as e:
        if e.errno != 5: bad += 1
        continue
    if block == want[off:off + 32768]:
        continue
    # Writeback: pages the kernel never sent read as zeros, alone or beside real data.
    expected = want[off:off + 32768]
    if zeros_ok and all(g == w or g == 0 for g, w in zip(block, expected)):
        continue
    bad += 1
sys.exit(1 if bad else 0)
PY
  done
  check "$label: in-flight files never return wrong bytes" 0 "$wrong"
  "$BIN" unmount mnt; wait_gone "$pid"
  vault_only "$label: fsck after the crash" || return 0
  # --show-names: the checks below tell fsynced and in-flight files apart by name.
  "$BIN" fsck "$v" --key-file key --show-names >fsck.out 2>&1
  grep -q "synced-" fsck.out; check "$label: fsck: fsynced files are clean" 1 $?
  grep -v "flight-" fsck.out | grep -qi "damaged\|failed\|tamper"
  check "$label: fsck: damage only in in-flight files" 1 $?
}
crash_test write-through
vault_only "the kill -9 test with --writeback-cache" && crash_test writeback --writeback-cache

# ---- a full disk gives ENOSPC and damages nothing ----
mkdir small && mount -t tmpfs -o size=48m tmpfs small
new_store small/vault && mkdir smallmnt
"$BIN" mount small/vault smallmnt "${STORE_OPTS[@]}" >out 2>&1; pid=$(daemon_pid)
gen existing 8000000 >smallmnt/existing
dd if=/dev/zero of=smallmnt/filler bs=1M count=100 2>dd.err
check "writer gets an error on a full disk" 1 $?
grep -q "No space left" dd.err; check "the error is ENOSPC" 0 $?
cmp -s <(gen existing 8000000) smallmnt/existing; check "existing file intact" 0 $?
echo "more" >>smallmnt/existing 2>/dev/null
rm -f smallmnt/filler
cmp -s <(gen existing 8000000) <(head -c 8000000 smallmnt/existing); check "existing file intact after retry" 0 $?
"$BIN" unmount smallmnt; wait_gone "$pid"
vault_only "fsck after ENOSPC" && check "fsck clean after ENOSPC" 0 "$(run fsck small/vault --key-file key)"
umount small

report "mount e2e"
