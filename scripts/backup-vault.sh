#!/usr/bin/env bash
# Backs up a cadcanfs vault's ciphertext, without the key and without mounting anything.
#
#   backup-vault.sh [--quiet] [--retries N] [--full] SRC DEST   a dated snapshot in DEST
#   backup-vault.sh [--quiet] [--retries N] --tar SRC FILE.tar
#   backup-vault.sh [--quiet] --verify SNAPSHOT        check a snapshot (or tar) without the key
#
# A snapshot is DEST/<UTC date>/ with the ciphertext in vault/, SHA-256 sums of every
# regular file in manifest.sha256 (sha256sum format), every entry in manifest.tree, the
# source's state in source.state and rsync's statistics in rsync-stats.txt. Unchanged
# files are hard links into the previous snapshot (rsync --link-dest), unless --full
# asks for a fresh copy of everything. DEST/latest points at the newest complete
# snapshot.
#
# The vault may be mounted and written meanwhile. Consistency is per file: the source
# tree's state (inode, size, mtime, ctime) is listed before and after each copy pass,
# and whatever changed in between was possibly caught mid-write and is copied again,
# up to --retries times. See docs/operations.md, "Backing up".
#
# Exit codes: 0 done; 2 usage; 3 SRC is not a vault; 40 copying failed; 41 snapshot made
# but some files kept changing through every retry; 42 the snapshot does not match its
# manifest; 43 not a snapshot; 44 another backup into DEST is running.
set -euo pipefail

readonly kExitUsage=2 kExitNoVault=3 kExitCopyFailed=40 kExitStillChanging=41
readonly kExitMismatch=42 kExitNotSnapshot=43 kExitBusy=44

quiet=no
retries=5
full=no
mode=snapshot
progress=no
if [ -t 1 ]; then progress=yes; fi

die() {  # die CODE SENTENCE
  echo "backup-vault: $2" >&2
  exit "$1"
}
say() { [ "$quiet" = yes ] || echo "backup-vault: $*"; }
usage() {
  die "$kExitUsage" "usage: backup-vault.sh [--quiet] [--retries N] [--full] [--tar] SRC DEST | --verify SNAPSHOT"
}

# Every entry of the tree below DIR except the writer lock and temporary files, one
# line each: "<path><TAB><type> <inode> <size> <mtime> <ctime>", sorted by path. Any
# write through the mount changes ctime, which no program can set back. Directories
# are listed by type only: their times change with every entry added, and only their
# existence matters to the copy.
list_state() {
  (cd "$1" && find . -mindepth 1 \( -path ./cadcanfs.lock -o -name '.cadcanfs-tmp-*' \) -prune \
    -o -printf '%p\t%y %i %s %T@ %C@\n') |
    awk -F'\t' '{ if (substr($2, 1, 1) == "d") print $1 "\td"; else print }' | LC_ALL=C sort
}

# Paths whose line differs between two state listings (changed, new or gone).
changed_paths() { LC_ALL=C comm -3 "$1" "$2" | sed 's/^\t//' | cut -f1 | LC_ALL=C sort -u; }

# Runs rsync, appending its statistics to STATS_FILE. Succeeds on rsync's 0 and 24 (a
# file vanished during the copy: the before and after listings catch it, and the next
# round removes it).
run_rsync() {  # run_rsync STATS_FILE RSYNC_ARGS...
  local stats=$1 rc=0 errors
  errors=$(dirname "$1")/rsync-errors.txt
  shift
  # rsync's complaints go beside its statistics: files that vanish mid-copy are expected
  # on a live vault, and handled by the next round.
  if [ "$progress" = yes ]; then
    rsync --info=progress2 --stats "$@" 2>>"$errors" | tee -a "$stats" || rc=${PIPESTATUS[0]}
  else
    rsync --stats "$@" >>"$stats" 2>>"$errors" || rc=$?
  fi
  if [ "$rc" != 0 ] && [ "$rc" != 24 ]; then
    tail -n 5 "$errors" >&2
    die "$kExitCopyFailed" "rsync failed with exit code $rc"
  fi
}

readonly kRsyncBase=(-aHX --numeric-ids --exclude=/cadcanfs.lock '--exclude=.cadcanfs-tmp-*')

# Copies SRC into STAGE/vault until every file copied was unchanged during its copy.
# Each retry copies again only what changed during the previous pass (files created
# later belong to the next snapshot), so a busy vault still converges: only a file
# rewritten through every round stays "still changing". Sets copy_rounds_retried
# (files copied again) and still_changing (how many remain).
copy_consistently() {  # copy_consistently SRC STAGE PREVIOUS_SNAPSHOT_OR_EMPTY
  local src=$1 stage=$2 prev=$3 work=$2/.work
  mkdir -p "$work" "$stage/vault"
  list_state "$src" >"$work/before"
  cp "$work/before" "$stage/source.state"
  local link=()
  if [ -n "$prev" ]; then link=(--link-dest="$prev/vault"); fi
  echo "== main pass" >>"$stage/rsync-stats.txt"
  run_rsync "$stage/rsync-stats.txt" "${kRsyncBase[@]}" "${link[@]}" "$src/" "$stage/vault/"
  # Test hook only (tests/ops): a command that changes the vault at the worst moment.
  if [ -n "${CADCANFS_TEST_BACKUP_AFTER_COPY:-}" ]; then bash -c "$CADCANFS_TEST_BACKUP_AFTER_COPY"; fi
  list_state "$src" >"$work/after"
  changed_paths "$work/before" "$work/after" >"$work/changed"
  copy_rounds_retried=0
  local round=0
  while [ -s "$work/changed" ] && [ "$round" -lt "$retries" ]; do
    round=$((round + 1))
    copy_rounds_retried=$((copy_rounds_retried + $(wc -l <"$work/changed")))
    sleep 1  # let a writer finish the file it is in
    list_state "$src" >"$work/before"
    # Files first seen now were copied in this round: record their pre-copy state.
    awk -F'\t' 'NR == FNR { seen[$1] = 1; print; next } !($1 in seen)' \
      "$stage/source.state" "$work/before" | LC_ALL=C sort >"$work/state" &&
      mv "$work/state" "$stage/source.state"
    cp "$work/changed" "$work/round"
    echo "== retry $round: changed during the previous pass (forced)" >>"$stage/rsync-stats.txt"
    # -I: a file caught mid-write may keep its size and mtime; copy it whatever they say.
    run_rsync "$stage/rsync-stats.txt" "${kRsyncBase[@]}" -I --delete-missing-args --force \
      --files-from="$work/round" "$src/" "$stage/vault/"
    list_state "$src" >"$work/after"
    changed_paths "$work/before" "$work/after" | LC_ALL=C comm -12 - "$work/round" >"$work/changed"
  done
  still_changing=$(wc -l <"$work/changed")
  if [ "$still_changing" != 0 ]; then
    # Ciphertext paths only: they name no patient.
    cp "$work/changed" "$stage/still-changing.txt"
  fi
}

# Files that kept their size and mtime since the previous snapshot but not their inode or
# ctime: rsync's quick check would keep the old copy, so compare their contents.
recheck_same_size_and_mtime() {  # recheck_same_size_and_mtime SRC STAGE PREVIOUS
  local src=$1 stage=$2 prev=$3 work=$2/.work
  rechecked=0
  if [ -z "$prev" ] || [ ! -f "$prev/source.state" ]; then return 0; fi
  awk -F'\t' 'NR == FNR { old[$1] = $2; next }
    ($1 in old) { split(old[$1], o, " "); split($2, n, " ")
      if (n[1] == "f" && o[1] == "f" && o[3] == n[3] && o[4] == n[4] &&
          (o[2] != n[2] || o[5] != n[5])) print $1 }' \
    "$prev/source.state" "$stage/source.state" >"$work/suspects"
  rechecked=$(wc -l <"$work/suspects")
  if [ "$rechecked" = 0 ]; then return 0; fi
  echo "== same size and mtime as the previous snapshot, new ctime (checksummed)" \
    >>"$stage/rsync-stats.txt"
  run_rsync "$stage/rsync-stats.txt" "${kRsyncBase[@]}" -c --delete-missing-args \
    --files-from="$work/suspects" "$src/" "$stage/vault/"
}

# The tree listing that manifest.tree holds: type, path and symlink target.
list_tree() { (cd "$1" && find . -mindepth 1 -printf '%y %p\t%l\n') | LC_ALL=C sort; }

# Writes STAGE/manifest.sha256 and manifest.tree. A file hard-linked to the previous
# snapshot's copy (same path, same inode) keeps that snapshot's sum instead of being
# read again.
write_manifest() {  # write_manifest STAGE PREVIOUS
  local stage=$1 prev=$2 work=$1/.work
  (cd "$stage/vault" && find . -type f -printf '%i\t%p\n') | LC_ALL=C sort -t$'\t' -k2 >"$work/inodes"
  : >"$work/reused"
  if [ -n "$prev" ] && [ -f "$prev/manifest.sha256" ]; then
    (cd "$prev/vault" && find . -type f -printf '%i\t%p\n') >"$work/prev-inodes"
    awk -F'\t' 'FILENAME == ARGV[1] { ino[$2] = $1; next }
      FILENAME == ARGV[2] { same[$2] = ($2 in ino) && ino[$2] == $1; next }
      substr($0, 1, 1) != "\\" { p = substr($0, 67); if (same[p]) print }' \
      "$work/prev-inodes" "$work/inodes" "$prev/manifest.sha256" >"$work/reused"
  fi
  cut -f2 "$work/inodes" |
    LC_ALL=C comm -23 - <(cut -c67- "$work/reused" | LC_ALL=C sort) >"$work/to-hash"
  {
    cat "$work/reused"
    (cd "$stage/vault" && xargs -d '\n' -r sha256sum -- <"$work/to-hash")
  } | LC_ALL=C sort -t' ' -k3 >"$stage/manifest.sha256"
  list_tree "$stage/vault" >"$stage/manifest.tree"
}

# Checks a snapshot directory against its manifest; prints what differs (ciphertext
# paths only) and returns non-zero on any difference.
verify_snapshot_dir() {
  local snap=$1
  if [ ! -d "$snap/vault" ] || [ ! -f "$snap/manifest.sha256" ] || [ ! -f "$snap/manifest.tree" ]; then
    die "$kExitNotSnapshot" "$snap is not a complete snapshot (no vault/ or manifest)"
  fi
  local bad=0 files sums
  files=$(wc -l <"$snap/manifest.sha256")
  if ! sums=$(cd "$snap/vault" && sha256sum --quiet --strict -c ../manifest.sha256 2>&1); then
    echo "  files that differ from their sums, or are missing:" >&2
    printf '%s\n' "$sums" | sed 's/^/  /' >&2
    bad=1
  fi
  if ! diff <(list_tree "$snap/vault") "$snap/manifest.tree" >/dev/null; then
    echo "  entries added, removed or changed in type:" >&2
    diff <(list_tree "$snap/vault") "$snap/manifest.tree" | grep '^[<>]' | sed 's/^/  /' >&2 || true
    bad=1
  fi
  # Every regular file in the tree has a sum, and nothing else has one.
  if ! diff <(sed -n 's/^f \(.*\)\t$/\1/p' "$snap/manifest.tree" | LC_ALL=C sort) \
    <(cut -c67- "$snap/manifest.sha256" | LC_ALL=C sort) >/dev/null; then
    echo "  manifest.tree and manifest.sha256 disagree" >&2
    bad=1
  fi
  if [ "$bad" = 0 ]; then
    say "snapshot OK: $files files match the manifest"
    return 0
  fi
  echo "backup-vault: the snapshot does not match its manifest" >&2
  return 1
}

# Extracts a tar backup into a new temporary directory and prints its path.
extract_tar() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/cadcanfs-backup-XXXXXX")
  tar --xattrs --xattrs-include='*' -xpf "$1" -C "$dir" ||
    { rm -rf "$dir"; die "$kExitNotSnapshot" "$1 cannot be read as a tar backup"; }
  echo "$dir"
}

verify() {
  local target=$1
  if [ -f "$target" ]; then
    local dir rc=0
    dir=$(extract_tar "$target")
    verify_snapshot_dir "$dir" || rc=$kExitMismatch
    rm -rf "$dir"
    return "$rc"
  fi
  [ -d "$target" ] || die "$kExitNotSnapshot" "$target does not exist"
  verify_snapshot_dir "$target" || return "$kExitMismatch"
}

# The newest complete snapshot in DEST (by name: they are UTC dates), or nothing.
latest_snapshot() {
  find "$1" -mindepth 2 -maxdepth 2 -name manifest.sha256 -printf '%h\n' 2>/dev/null |
    { grep -E '/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{6}Z(-[0-9]+)?$' || true; } | LC_ALL=C sort | tail -n1
}

human_bytes() { numfmt --to=iec-i --suffix=B "$1"; }

summarize() {  # summarize STAGE NAME
  local stage=$1 name=$2 files bytes copied
  files=$(wc -l <"$stage/manifest.sha256")
  bytes=$(du -sb --apparent-size "$stage/vault" | cut -f1)
  copied=$(awk -F': ' '/^Number of regular files transferred/ { gsub(",", "", $2); n += $2 } END { print n + 0 }' \
    "$stage/rsync-stats.txt")
  {
    echo "snapshot=$name"
    echo "files=$files"
    echo "bytes=$bytes"
    echo "copied=$copied"
    echo "recopied_after_change=$copy_rounds_retried"
    echo "rechecked_by_content=$rechecked"
    echo "still_changing=$still_changing"
  } >"$stage/backup.info"
  say "snapshot $name: $files files ($(human_bytes "$bytes")), $copied copied," \
    "$copy_rounds_retried re-copied after changing during the copy, $still_changing still changing"
}

check_source() {
  if [ ! -f "$1/cadcanfs.conf" ] || [ ! -f "$1/cadcanfs.dirid" ]; then
    die "$kExitNoVault" "$1 is not a cadcanfs vault (back up the vault directory, never the mountpoint)"
  fi
}

backup_snapshot() {  # backup_snapshot SRC DEST
  local src dest name stage prev
  src=$(realpath "$1")
  check_source "$src"
  mkdir -p "$2"
  dest=$(realpath "$2")
  case "$dest/" in "$src"/*) die "$kExitUsage" "DEST must not be inside the vault" ;; esac
  exec 9>"$dest/.backup.lock"
  flock -n 9 || die "$kExitBusy" "another backup into $dest is running"
  rm -rf "$dest"/.incomplete-*  # left by an interrupted run; never a snapshot
  # A full copy shares nothing with earlier snapshots (after a failed --verify, say:
  # a damaged file is shared by every snapshot that links to it).
  prev=""
  if [ "$full" = no ]; then prev=$(latest_snapshot "$dest"); fi
  name=$(date -u +%Y-%m-%dT%H%M%SZ)
  local n=1 base=$name
  while [ -e "$dest/$name" ]; do name=$base-$n; n=$((n + 1)); done
  stage=$dest/.incomplete-$name
  copy_consistently "$src" "$stage" "$prev"
  recheck_same_size_and_mtime "$src" "$stage" "$prev"
  write_manifest "$stage" "$prev"
  summarize "$stage" "$name"
  rm -rf "$stage/.work"
  mv "$stage" "$dest/$name"
  ln -sfn "$name" "$dest/.latest.tmp" && mv -T "$dest/.latest.tmp" "$dest/latest"
  finish_status "$dest/$name"
}

tar_stage=""  # removed on exit, however the script ends
backup_tar() {  # backup_tar SRC FILE
  local src out stage
  src=$(realpath "$1")
  check_source "$src"
  out=$(realpath -m "$2")
  mkdir -p "$(dirname "$out")"
  stage=$(mktemp -d "$(dirname "$out")/.incomplete-tar-XXXXXX")
  tar_stage=$stage
  trap 'rm -rf "$tar_stage"' EXIT
  copy_consistently "$src" "$stage" ""
  rechecked=0
  write_manifest "$stage" ""
  summarize "$stage" "$(basename "$out")"
  rm -rf "$stage/.work"
  tar --xattrs --xattrs-include='*' --format=posix -cf "$out.part" -C "$stage" . ||
    die "$kExitCopyFailed" "writing the tar file failed"
  mv "$out.part" "$out"
  finish_status "$stage"
}

finish_status() {
  if [ "$still_changing" != 0 ]; then
    die "$kExitStillChanging" "$still_changing files were still being written after $retries retries; their copies may fail fsck (listed in still-changing.txt)"
  fi
}

main() {
  local args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --quiet) quiet=yes progress=no ;;
      --retries)
        if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then usage; fi
        retries=$2
        shift
        ;;
      --tar) mode=tar ;;
      --full) full=yes ;;
      --verify) mode=verify ;;
      --) shift; args+=("$@"); break ;;
      -*) usage ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  case "$mode" in
    verify)
      [ ${#args[@]} = 1 ] || usage
      verify "${args[0]}"
      ;;
    tar)
      [ ${#args[@]} = 2 ] || usage
      backup_tar "${args[0]}" "${args[1]}"
      ;;
    snapshot)
      [ ${#args[@]} = 2 ] || usage
      backup_snapshot "${args[0]}" "${args[1]}"
      ;;
  esac
}

main "$@"
