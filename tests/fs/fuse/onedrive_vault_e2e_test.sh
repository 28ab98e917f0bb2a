#!/usr/bin/env bash
# An encrypted vault in OneDrive (issue 8), for real, against the Graph emulator
# (tests/graph_emulator, 127.0.0.1 only, stopped by this test):
#   - init onedrive:/Vaults/Office (the folder is made), info, a real mount: a file matrix
#     in and out with diff -r, a 20-level deep tree, fio --verify, a remount;
#   - the offline commands on the OneDrive vault: fsck, map, decrypt, encrypt, rekey
#     (the stored sign-in moves to the new key);
#   - a --ciphertext view signed in with --no-token-store and no key, copied with
#     cp -a as a backup would, and restored from that copy with decrypt;
#   - the never-plaintext-on-disk marker, in vault mode and in plain mode: not in the
#     cache (staging, journal), the token store, the daemon's log or /tmp.
set -u
# shellcheck source=../../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: onedrive_vault_e2e_test.sh PATH_TO_CADCANFS}")
# shellcheck source=../../testing/onedrive_e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../../testing/onedrive_e2e_lib.sh"
enter_scratch_dir onedrive-vault
mkdir -p mnt cache
start_graph_emulator

"$BIN" keygen key >/dev/null
"$BIN" keygen new.key >/dev/null
check "login" 0 "$(sign_in tokens --key-file key)"
VAULT=onedrive:/Vaults/Office
OD=(--token-file tokens --graph-url "$graph_url")
mounted() { grep -q " $WORK/mnt fuse" /proc/mounts && echo yes || echo no; }
mount_vault() { run mount "$VAULT" mnt "${OD[@]}" --key-file key --cache-dir cache --poll-interval 1 "$@"; }

# ---- init, info ----
check "init makes the folder and the vault" 0 "$(run init "$VAULT" "${OD[@]}" --key-file key)"
grep -q "flat layout" out; check "a OneDrive vault has the flat layout" 0 $?
[ -f drive/Vaults/Office/cadcanfs.conf ]; check "the config is in OneDrive" 0 $?
check "init of an existing vault" 7 "$(run init "$VAULT" "${OD[@]}" --key-file key)"
check "info" 0 "$(run info "$VAULT" "${OD[@]}" --key-file key)"
grep -q "layout:         flat" out; check "info reads the OneDrive config" 0 $?
check "no token file: a usage error" 2 "$(run info "$VAULT" --graph-url "$graph_url" --key-file key)"
check "no token file: one line" yes "$(one_line)"
check "a token file and --no-token-store" 2 "$(run info "$VAULT" "${OD[@]}" --no-token-store --key-file key)"
check "the token file under another key" 51 "$(run info "$VAULT" "${OD[@]}" --key-file new.key)"
check "another key: one line" yes "$(one_line)"
check "--plain with --ciphertext" 2 "$(run mount "$VAULT" mnt "${OD[@]}" --key-file key --plain --ciphertext)"
check "a missing OneDrive folder" 3 "$(run info onedrive:/Nowhere "${OD[@]}" --key-file key)"

# ---- a real mount: a file matrix, a deep tree, fio ----
mkdir -p src/"Doe, Jane"/scans src/"Müller Åsa"/photos src/empty-dir
: >src/"Doe, Jane"/empty.txt
head -c 1 /dev/urandom >src/"Doe, Jane"/one.bin
head -c 4095 /dev/urandom >src/"Doe, Jane"/scans/4095.bin
head -c 32768 /dev/urandom >src/"Doe, Jane"/scans/block.bin
head -c 32769 /dev/urandom >src/"Doe, Jane"/scans/block+1.bin
head -c 6000000 /dev/urandom >src/"Doe, Jane"/scans/"upper jaw.stl"  # an upload session
head -c 300000 /dev/urandom >src/"Müller Åsa"/photos/"smile (1).jpg"
touch -d "2020-01-02 03:04:05" src/"Doe, Jane"/scans/"upper jaw.stl"
deep=src/deep
for i in $(seq -w 1 20); do deep="$deep/level-$i-a-folder-name-long-enough-to-matter"; done
mkdir -p "$deep" && echo "twenty levels down" >"$deep/leaf.txt"

check "mount the vault" 0 "$(mount_vault)"
cp -a src/. mnt/; check "cp -a into the vault" 0 $?
diff -r src mnt; check "diff -r through the mount" 0 $?
check "mtime kept" "$(stat -c %Y src/"Doe, Jane"/scans/"upper jaw.stl")" \
  "$(stat -c %Y mnt/"Doe, Jane"/scans/"upper jaw.stl")"
check "a 20-level path longer than OneDrive's 400" yes "$([ ${#deep} -gt 400 ] && echo yes)"
fio --name=seq --directory=mnt --rw=write --bs=256k --size=8M --numjobs=2 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --ioengine=psync --group_reporting >fio1.out 2>&1
check "fio sequential verify" 0 $?
fio --name=rand --directory=mnt --rw=randwrite --bs=4k-64k --size=8M --numjobs=2 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --ioengine=psync --group_reporting >fio2.out 2>&1
check "fio random verify" 0 $?
rm -f mnt/seq.* mnt/rand.*
check "unmount waits for the uploads" 0 "$(run unmount mnt)"
find drive/Vaults -name '*Jane*' -o -name '*level-01*' | grep -q .
check "no plaintext name in OneDrive" 1 $?
check "remount" 0 "$(mount_vault)"
diff -r src mnt; check "diff -r after a remount" 0 $?
check "unmount" 0 "$(run unmount mnt)"
for _ in $(seq 100); do [ -e drive/Vaults/Office/cadcanfs.lock ] || break; sleep 0.05; done

# ---- a daemon killed mid-upload resumes the upload session after a remount ----
head -c 41943040 /dev/urandom >big.bin  # four 10 MiB fragments
control POST /settings '{"bandwidth_bps": 8000000}' >/dev/null
check "mount for the killed upload" 0 "$(mount_vault)"
pid=$(daemon_pid)
control POST /counters/reset >/dev/null
cp big.bin mnt/big.bin  # close(2) journals the staged file; the upload runs after it
for _ in $(seq 300); do
  [ "$(counter statuses 'upload.fragment 202')" -ge 2 ] && break
  sleep 0.05
done
kill -9 "$pid"; wait_gone "$pid"
check "two fragments landed before the kill" yes "$([ "$(counter statuses 'upload.fragment 202')" -ge 2 ] && echo yes)"
control POST /settings '{"bandwidth_bps": 0}' >/dev/null
check "unmount the dead mount" 0 "$(run unmount mnt)"
check "remount after the kill" 0 "$(mount_vault)"
check "unmount waits for the resumed upload" 0 "$(run unmount mnt)"
check "the upload resumed its session (no second one)" 1 "$(counter requests graph.session)"
check "mount to read it back" 0 "$(mount_vault)"
cmp big.bin mnt/big.bin; check "the resumed upload is byte-identical" 0 $?
rm mnt/big.bin
check "unmount" 0 "$(run unmount mnt)"

# ---- the offline commands on a OneDrive vault ----
check "fsck" 0 "$(run fsck "$VAULT" "${OD[@]}" --key-file key)"
check "map a deep path" 0 "$(run map "$VAULT" "${deep#src/}/leaf.txt" "${OD[@]}" --key-file key --to-cipher)"
check "decrypt" 0 "$(run decrypt "$VAULT" restored "${OD[@]}" --key-file key)"
diff -r src restored; check "diff -r of what decrypt wrote" 0 $?
mkdir extra && head -c 5000000 /dev/urandom >extra/"Roe, Ann.ply"
check "encrypt into the OneDrive vault" 0 "$(run encrypt "$VAULT" extra/ imported "${OD[@]}" --key-file key)"
check "rekey" 0 "$(run rekey "$VAULT" "${OD[@]}" --key-file key --new-key-file new.key)"
check "the sign-in moved to the new key" 0 "$(run fsck "$VAULT" "${OD[@]}" --key-file new.key)"
grep -q " 0 problems" out; check "fsck after rekey finds no problem" 0 $?

# ---- a --ciphertext view without any key, and a restore from its copy ----
"$BIN" mount "$VAULT" mnt --ciphertext --no-token-store --graph-url "$graph_url" \
  --login-url "$login_url" >ct.out 2>&1 &
ct_pid=$!
for _ in $(seq 200); do grep -q "enter the code" ct.out && break; sleep 0.05; done
control POST /device/approve "{\"user_code\": \"$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' ct.out)\"}" >/dev/null
wait "$ct_pid"; check "mount --ciphertext --no-token-store, no key" 0 $?
[ -f mnt/cadcanfs.conf ]; check "the view shows the stored objects" 0 $?
touch mnt/new 2>/dev/null; check "the view is read-only" 1 $?
cp -a mnt backup; check "cp -a of the ciphertext" 0 $?
check "unmount the view" 0 "$(run unmount mnt)"
check "the old key no longer opens it" 5 "$(run decrypt backup from-backup --key-file key)"
check "decrypt the backup copy" 0 "$(run decrypt backup from-backup --key-file new.key)"
diff -r src from-backup --exclude imported; check "the backup restores the files" 0 $?
cmp extra/"Roe, Ann.ply" from-backup/imported/"Roe, Ann.ply"; check "and what encrypt added" 0 $?

# ---- never plaintext on disk, vault and plain ----
# marker_run MODE: writes, renames and removes marker-named files through a mount in
# MODE (vault | plain), with --debug logging; prints where the marker was found.
marker_run() {
  local marker=$1 mode=$2 opts=(--key-file new.key) folder=onedrive:/Vaults/Office
  if [ "$mode" = plain ]; then
    opts=(--plain --key-file new.key)
    folder=onedrive:/Cases
    control POST /remote/mkdir '{"path": "/Cases"}' >/dev/null
  fi
  "$BIN" mount "$folder" mnt "${OD[@]}" "${opts[@]}" --cache-dir cache -f --debug \
    >"daemon-$mode.log" 2>&1 &
  local pid=$!
  for _ in $(seq 250); do [ "$(mounted)" = yes ] && break; sleep 0.02; done
  mkdir "mnt/dir-$marker"
  for i in 1 2 3; do
    { for _ in $(seq 1 2000); do printf '%s line %s\n' "$marker" "$i"; done; } >"mnt/dir-$marker/file-$marker-$i"
  done
  head -c 5000000 /dev/zero | sed "s/^/$marker/" >"mnt/dir-$marker/big-$marker"
  mv "mnt/dir-$marker/file-$marker-2" "mnt/renamed-$marker"
  rm "mnt/dir-$marker/file-$marker-3"
  cat "mnt/dir-$marker"/* >/dev/null
  "$BIN" unmount mnt >/dev/null 2>&1
  wait "$pid"
}
MARKER="cadcanfsMARKER$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
touch marker-start
marker_run "$MARKER" vault
marker_run "$MARKER" plain
[ -d "drive/Cases/dir-$MARKER" ]; check "the plain folder got its files" 0 $?
B64=$(printf '%s' "$MARKER" | base64 -w0 | tr -d '=')
found=0
for pattern in "$MARKER" "$B64"; do
  # OneDrive's side (the drive and the emulator's upload staging) holds the plain
  # folder as it is; everything on this machine's side must not.
  # What changed since the marker runs began: the cache and its journal, the token
  # store, the logs, and anything a library put in /tmp.
  changed=$(find /tmp /var/tmp /root/.cache "$WORK" -xdev -newer marker-start 2>/dev/null |
    grep -v "^$WORK/drive/Cases\|^$WORK/\.graph-emulator-staging-\|^$WORK/mnt")
  hits=$({ grep -F -- "$pattern" <<<"$changed"
    tr '\n' '\0' <<<"$changed" | xargs -0 grep -lFa -- "$pattern" 2>/dev/null; } | sort -u)
  if [ -n "$hits" ]; then echo "marker found: $hits"; found=1; fi
done
check "marker never on disk (cache, journal, token store, logs, /tmp)" 0 "$found"
grep -q "lookup parent=" daemon-vault.log; check "the debug log records operations" 0 $?

check "no token sent to content URLs" "0 0" \
  "$(counter auth_header_on_content_urls download) $(counter auth_header_on_content_urls upload)"
report onedrive_vault_e2e
