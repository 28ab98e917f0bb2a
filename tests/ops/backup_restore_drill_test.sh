#!/usr/bin/env bash
# The restore drill of issue 11, end to end on a real mount: write a case tree, back up
# while writing continues, change and delete files, back up again, restore one patient's
# folder from the first snapshot and compare it with what the mount showed then. Also
# checks that the second backup copies only the changed ciphertext files (rsync's own
# statistics), that a file rewritten during the copy is copied again, and that a
# damaged, shortened or padded snapshot fails its check and is not restored.
# Needs root (FUSE mount).
set -u
# shellcheck source-path=SCRIPTDIR source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: backup_restore_drill_test.sh PATH_TO_CADCANFS SCRIPTS_DIR}")
SCRIPTS=$(realpath "${2:?usage: backup_restore_drill_test.sh PATH_TO_CADCANFS SCRIPTS_DIR}")
WORK=$(mktemp -d /tmp/cadcanfs-drill-XXXXXX)
daemon=""
writer=""

cleanup() {
  if [ -n "$writer" ]; then kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null; fi
  if grep -q " $WORK/mnt fuse.cadcanfs " /proc/mounts; then umount -l "$WORK/mnt"; fi
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

# Deterministic pseudo-random bytes: gen SEED BYTES
gen() { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 </dev/zero 2>/dev/null | head -c "$2"; }
# The value of "Number of regular files transferred" in one section of rsync-stats.txt.
transferred() {  # transferred SNAPSHOT SECTION_PREFIX
  awk -v s="== $2" 'index($0, s) == 1 { on = 1; next } /^== / { on = 0 }
    on && /^Number of regular files transferred/ { gsub(",", ""); n += $NF }
    END { print n + 0 }' "$1/rsync-stats.txt"
}
# Regular files of the live vault whose ciphertext is new or differs from a manifest.
changed_since() {  # changed_since MANIFEST
  (cd vault && find . -type f ! -path ./cadcanfs.lock -print0 | xargs -0 sha256sum) |
    LC_ALL=C sort | LC_ALL=C comm -23 - <(LC_ALL=C sort "$1") | wc -l
}

"$BIN" keygen key >/dev/null
"$BIN" init vault --key-file key >/dev/null
mkdir mnt
check "mount" 0 "$(run mount vault mnt --key-file key)"
daemon=$(sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' out)

# ---- a case tree: three patients, a few MB each ----
MARKER=Zzyzx_Marker
for patient in "Doe, Jane" "Roe, Richard" "$MARKER Patient"; do
  mkdir -p mnt/"$patient"/cbct mnt/"$patient"/scans
  gen "$patient-cbct" 2500000 >"mnt/$patient/cbct/${MARKER}_volume.dcm"
  gen "$patient-upper" 600000 >mnt/"$patient"/scans/upper.stl
  gen "$patient-lower" 400000 >mnt/"$patient"/scans/lower.stl
  gen "$patient-photo" 300000 >mnt/"$patient"/photo.jpg
done
mkdir mnt/Incoming

# What the mount shows of Doe's folder at snapshot time: the background writes below
# go to Incoming only, and nothing else touches Doe until the first backup is done.
cp -a mnt/"Doe, Jane" doe-at-snapshot-1

# ---- back up while a scanner keeps exporting into Incoming ----
(
  for i in $(seq 1 60); do
    [ -e stop-writer ] && break
    for chunk in 1 2 3 4 5 6; do
      gen "incoming-$i-$chunk" 131072 >>mnt/Incoming/"scan $i.stl"
      sleep 0.03
    done
  done
) &
writer=$!
sleep 0.5
# Rewrites a block of Roe's upper scan in place once the first copy pass is done: the
# snapshot must hold the rewritten version, copied again because its ctime moved.
hook="head -c 32768 /dev/urandom | dd of='$WORK/mnt/Roe, Richard/scans/upper.stl' bs=32768 seek=3 conv=notrunc status=none"
CADCANFS_TEST_BACKUP_AFTER_COPY=$hook "$SCRIPTS/backup-vault.sh" vault backups >backup1.out 2>backup1.err
check "first backup while writing" 0 $?
check "first backup: one summary line off a terminal" 1 "$(wc -l <backup1.out)"
echo "first backup said: $(cat backup1.out)"
touch stop-writer
wait "$writer"
writer=""
snap1=$(realpath backups/latest)
recopied=$(sed -n 's/^recopied_after_change=//p' "$snap1/backup.info")
[ "${recopied:-0}" -ge 1 ]; check "a file changed during the copy was copied again" 0 $?
roe_cipher=$("$BIN" map vault "Roe, Richard/scans/upper.stl" --key-file key | sed 's/^ciphertext: //')
cmp -s "$snap1/vault/$roe_cipher" "vault/$roe_cipher"; check "the snapshot holds the rewritten file" 0 $?
check "first snapshot matches its manifest" 0 "$("$SCRIPTS/backup-vault.sh" --quiet --verify "$snap1" >/dev/null 2>&1; echo $?)"
# Every file, including the ones the scanner was writing, was copied whole.
check "first snapshot passes fsck" 0 "$(run fsck "$snap1/vault" --key-file key)"
[ ! -e "$snap1/vault/cadcanfs.lock" ]; check "the lock file is not backed up" 0 $?

# ---- change and delete files, then back up again ----
# Rewritten in place with its modification time put back (as `cp -p` and `rsync -a` do):
# same size and mtime, so rsync's quick check alone would keep the stale copy. Its new
# ctime makes the backup compare it by content.
photo="mnt/Roe, Richard/photo.jpg"
photo_mtime=$(stat -c %y "$photo")
gen "roe-photo-v2" 300000 | dd of="$photo" conv=notrunc status=none
touch -m -d "$photo_mtime" "$photo"
gen "doe-upper-v2" 650000 >mnt/"Doe, Jane"/scans/upper.stl
gen "doe-more" 100000 >>"mnt/Doe, Jane/cbct/${MARKER}_volume.dcm"
rm mnt/"Doe, Jane"/photo.jpg
gen "doe-notes" 5000 >mnt/"Doe, Jane"/notes.txt
rm mnt/Incoming/"scan 1.stl"
expected=$(changed_since "$snap1/manifest.sha256")
total=$(find vault -type f ! -name cadcanfs.lock | wc -l)
sleep 1  # a new snapshot name (they have one-second resolution; a clash gets a suffix anyway)
"$SCRIPTS/backup-vault.sh" vault backups >backup2.out 2>backup2.err
check "second backup" 0 $?
echo "second backup said: $(cat backup2.out)"
snap2=$(realpath backups/latest)
[ "$snap1" != "$snap2" ]; check "a second snapshot" 0 $?
[ "$expected" -ge 3 ] && [ "$expected" -lt $((total / 2)) ]; check "a few of $total files changed ($expected)" 0 $?
check "second backup copies only the changed ciphertext files" "$expected" \
  "$(($(transferred "$snap2" "main pass") + $(transferred "$snap2" "same size and mtime")))"
check "the file with its old mtime was compared by content" 1 \
  "$(sed -n 's/^rechecked_by_content=//p' "$snap2/backup.info")"
check "and copied" 1 "$(transferred "$snap2" "same size and mtime")"
photo_cipher=$("$BIN" map vault "Roe, Richard/photo.jpg" --key-file key | sed 's/^ciphertext: //')
cmp -s "$snap2/vault/$photo_cipher" "vault/$photo_cipher"; check "the snapshot holds its new content" 0 $?
cmp -s "$snap1/vault/$photo_cipher" "$snap2/vault/$photo_cipher"; check "snapshot 1 keeps the old one" 1 $?
unchanged=$("$BIN" map vault "$MARKER Patient/cbct/${MARKER}_volume.dcm" --key-file key | sed 's/^ciphertext: //')
check "an unchanged file is a hard link to the first snapshot" "$(stat -c %i "$snap1/vault/$unchanged")" \
  "$(stat -c %i "$snap2/vault/$unchanged")"

# ---- restore snapshot 1's version of one patient folder ----
check "restore Doe from snapshot 1" 0 "$("$SCRIPTS/restore-vault.sh" --cadcanfs "$BIN" --key-file key \
  "$snap1" restore1 "Doe, Jane" >restore.out 2>&1; echo $?)"
diff -r doe-at-snapshot-1 restore1/"Doe, Jane" >/dev/null; check "diff -r against the folder at snapshot 1" 0 $?
[ "$(ls restore1)" = "Doe, Jane" ]; check "only that folder was restored" 0 $?
check "restore Doe from the newest snapshot" 0 "$("$SCRIPTS/restore-vault.sh" --cadcanfs "$BIN" --key-file key \
  backups restore2 "Doe, Jane" >/dev/null 2>&1; echo $?)"
diff -r mnt/"Doe, Jane" restore2/"Doe, Jane" >/dev/null; check "the newest snapshot has today's folder" 0 $?

# ---- a tar backup restores the same way ----
check "tar backup" 0 "$("$SCRIPTS/backup-vault.sh" --quiet --tar vault tar/vault.tar >/dev/null 2>&1; echo $?)"
check "restore from the tar backup" 0 "$("$SCRIPTS/restore-vault.sh" --quiet --cadcanfs "$BIN" --key-file key \
  tar/vault.tar restore3 "Doe, Jane" 2>&1; echo $?)"
diff -r mnt/"Doe, Jane" restore3/"Doe, Jane" >/dev/null; check "tar restore equals the folder" 0 $?

# ---- a damaged snapshot is caught without the key, and not restored ----
verify() { "$SCRIPTS/backup-vault.sh" --quiet --verify "$1" >verify.out 2>&1; echo $?; }
cp -a "$snap2" flipped
flip_byte "flipped/vault/$unchanged" 70000
check "a flipped byte fails the check" 42 "$(verify flipped)"
grep -qF "${unchanged}: FAILED" verify.out; check "the check names the damaged ciphertext file" 0 $?
check "restore refuses a snapshot that fails its check" 42 "$("$SCRIPTS/restore-vault.sh" --cadcanfs "$BIN" \
  --key-file key flipped restore4 >/dev/null 2>&1; echo $?)"
[ ! -e restore4 ]; check "nothing was restored from it" 0 $?
cp -a "$snap2" shortened && rm "shortened/vault/$unchanged"
check "a missing file fails the check" 42 "$(verify shortened)"
cp -a "$snap2" padded && cp "padded/vault/$unchanged" "padded/vault/$unchanged.extra"
check "an extra file fails the check" 42 "$(verify padded)"
check "not a snapshot" 43 "$(verify vault)"
# Damage in the backup itself is shared by every snapshot that links to the file; a
# --full run makes a copy that shares nothing with them.
flip_byte "$snap2/vault/$unchanged" 70000
check "damage shared through a hard link shows in snapshot 1" 42 "$(verify "$snap1")"
sleep 1
check "a full backup" 0 "$("$SCRIPTS/backup-vault.sh" --quiet --full vault backups >/dev/null 2>&1; echo $?)"
check "the full backup copied every file" "$(wc -l <"$(realpath backups/latest)/manifest.sha256")" \
  "$(transferred "$(realpath backups/latest)" "main pass")"
check "and matches its manifest" 0 "$(verify backups/latest)"

# ---- nothing the backup writes carries a plaintext name ----
grep -rqa "$MARKER" backups backup1.out backup1.err backup2.out backup2.err tar
check "no plaintext name in backups or their output" 1 $?

check "unmount" 0 "$(run unmount mnt)"
daemon=""

# ---- a file rewritten through every retry is reported, not passed off as consistent ----
(for _ in $(seq 1 80); do
  printf 'x' | dd of="vault/$unchanged" bs=1 seek=300 conv=notrunc status=none
  sleep 0.05
done) &
writer=$!
"$SCRIPTS/backup-vault.sh" --retries 1 vault busy >/dev/null 2>busy.err
check "a file that never settles: exit 41" 41 $?
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
writer=""
check "it is listed by its ciphertext path" "./$unchanged" "$(cat busy/latest/still-changing.txt)"
check "in one sentence" 1 "$(wc -l <busy.err)"

report backup_restore_drill
