#!/usr/bin/env bash
# Restores plaintext from a backup made by backup-vault.sh, offline, with the key.
#
#   restore-vault.sh [--quiet] [--json] [--cadcanfs BIN] KEYOPTS SNAPSHOT OUT [PATH...]
#
# SNAPSHOT is a snapshot directory (DEST/<date>), a backup directory DEST (its newest
# snapshot, DEST/latest), or a tar file made with --tar. PATHs are plaintext paths
# relative to the vault root ("Doe, Jane" restores one patient's folder); without any,
# the whole vault is restored. KEYOPTS is --key-file F or --passphrase-file F, or none
# with a systemd credential, as for cadcanfs.
#
# The snapshot is first checked against its manifest (no key needed); a snapshot that
# does not match is not restored. Then `cadcanfs decrypt` writes the plaintext to OUT,
# authenticating every byte.
#
# Exit codes: 0 done; 2 usage; 42 the snapshot does not match its manifest; 43 not a
# snapshot; anything else is cadcanfs decrypt's exit code (docs/cli.md).
set -euo pipefail

readonly kExitUsage=2 kExitNotSnapshot=43

here=$(dirname "$(realpath "$0")")
cadcanfs=cadcanfs
decrypt_flags=()
key_options=()
args=()

die() {  # die CODE SENTENCE
  echo "restore-vault: $2" >&2
  exit "$1"
}
usage() {
  die "$kExitUsage" "usage: restore-vault.sh [--quiet] [--json] [--cadcanfs BIN] [--key-file F | --passphrase-file F] SNAPSHOT OUT [PATH...]"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quiet | --json) decrypt_flags+=("$1") ;;
    --cadcanfs | --key-file | --passphrase-file)
      if [ $# -lt 2 ]; then usage; fi
      if [ "$1" = --cadcanfs ]; then cadcanfs=$2; else key_options+=("$1" "$2"); fi
      shift
      ;;
    --) shift; args+=("$@"); break ;;
    -*) usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ ${#args[@]} -lt 2 ]; then usage; fi
snapshot=${args[0]}
out=${args[1]}
paths=("${args[@]:2}")

# A backup directory stands for its newest snapshot.
if [ -d "$snapshot" ] && [ ! -d "$snapshot/vault" ] && [ -d "$snapshot/latest/vault" ]; then
  snapshot=$(realpath "$snapshot/latest")
fi

# A tar backup is unpacked next to nothing else: a private temporary directory.
if [ -f "$snapshot" ]; then
  unpacked=$(mktemp -d "${TMPDIR:-/tmp}/cadcanfs-restore-XXXXXX")
  trap 'rm -rf "$unpacked"' EXIT
  tar --xattrs --xattrs-include='*' -xpf "$snapshot" -C "$unpacked" ||
    die "$kExitNotSnapshot" "$snapshot cannot be read as a tar backup"
  snapshot=$unpacked
fi
if [ ! -d "$snapshot" ]; then die "$kExitNotSnapshot" "$snapshot does not exist"; fi

verified=0
"$here/backup-vault.sh" --quiet --verify "$snapshot" || verified=$?
if [ "$verified" != 0 ]; then
  echo "restore-vault: nothing was restored: the snapshot failed its check" >&2
  exit "$verified"
fi

decrypted=0
"$cadcanfs" decrypt "$snapshot/vault" "$out" "${paths[@]}" "${key_options[@]}" \
  "${decrypt_flags[@]}" || decrypted=$?
exit "$decrypted"
