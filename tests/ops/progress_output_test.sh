#!/usr/bin/env bash
# What encrypt, decrypt, fsck, rekey and the backup scripts print (issue 11, "Long-
# running commands show progress"): on a terminal (under script(1)) a progress line;
# off a terminal only the one-line summary; --quiet nothing; --json one JSON object.
# None of it may carry a plaintext name: the tree holds a planted one.
set -u
# shellcheck source-path=SCRIPTDIR source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: progress_output_test.sh PATH_TO_CADCANFS SCRIPTS_DIR}")
SCRIPTS=$(realpath "${2:?usage: progress_output_test.sh PATH_TO_CADCANFS SCRIPTS_DIR}")
WORK=$(mktemp -d /tmp/cadcanfs-progress-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

PLANTED=Qwertzu_Planted
mkdir -p src/"$PLANTED Patient"/scans
for i in 1 2 3 4 5; do head -c 1500000 /dev/urandom >"src/$PLANTED Patient/scans/$PLANTED $i.stl"; done
for k in 1 2 3 4 5 6; do "$BIN" keygen "key$k" >/dev/null; done
"$BIN" init vault --key-file key1 >/dev/null

# Runs a command on a pseudo-terminal; the terminal's output goes to tty.out.
on_tty() {
  local command
  printf -v command '%q ' "$@"
  script -qec "$command" /dev/null >tty.out 2>&1 </dev/null
  echo $?
}
# Runs a command off a terminal: stdout in out, stderr in err.
off_tty() { "$@" >out 2>err </dev/null; echo $?; }
no_planted_name() { grep -rqa "$PLANTED" "$@" && echo found || echo none; }
valid_json() { python3 -m json.tool <out >/dev/null 2>&1 && [ "$(wc -l <out)" = 1 ] && echo yes || echo no; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1" <out; }

# One run of a command on a terminal: progress, 100%, the summary, and no name.
#   check_outputs NAME PROGRESS_PATTERN SUMMARY_PATTERN -- COMMAND...
check_outputs() {
  local name=$1 progress=$2 summary=$3
  shift 4
  check "$name on a terminal" 0 "$(on_tty "$@")"
  grep -qa "$progress" tty.out; check "$name on a terminal shows progress" 0 $?
  grep -qa "(100%)" tty.out; check "$name progress reaches 100%" 0 $?
  grep -qa "$summary" tty.out; check "$name on a terminal ends with its summary" 0 $?
  check "$name: no name on the terminal" none "$(no_planted_name tty.out)"
}

# ---- encrypt ----
check_outputs encrypt "encrypting: [0-9]*/5 files, .*MiB" "encrypted 5 files" -- \
  "$BIN" encrypt vault src/ tty --key-file key1
check "encrypt off a terminal" 0 "$(off_tty "$BIN" encrypt vault src/ plain --key-file key1)"
check "encrypt off a terminal: only the summary" 1 "$(wc -l <out)"
grep -q "^encrypted 5 files" out; check "encrypt summary line" 0 $?
check "encrypt off a terminal: nothing on stderr" 0 "$(wc -c <err)"
check "encrypt --quiet" 0 "$(off_tty "$BIN" encrypt vault src/ quiet --key-file key1 --quiet)"
check "encrypt --quiet prints nothing" 0 "$(cat out err | wc -c)"
check "encrypt --json" 0 "$(off_tty "$BIN" encrypt vault src/ json --key-file key1 --json)"
check "encrypt --json is one JSON object" yes "$(valid_json)"
check "encrypt --json counts the files" 5 "$(json_field files)"
check "encrypt: no name off a terminal" none "$(no_planted_name out err)"
check "--quiet and --json together" 2 "$(off_tty "$BIN" encrypt vault src/ x --key-file key1 --quiet --json)"

# ---- fsck ----
check_outputs fsck "checking: [0-9]*/20 files" "checked 20 files" -- "$BIN" fsck vault --key-file key1
check "fsck off a terminal" 0 "$(off_tty "$BIN" fsck vault --key-file key1)"
check "fsck off a terminal: only the summary" 1 "$(wc -l <out)"
check "fsck --quiet" 0 "$(off_tty "$BIN" fsck vault --key-file key1 --quiet)"
check "fsck --quiet prints nothing" 0 "$(cat out err | wc -c)"
check "fsck --json" 0 "$(off_tty "$BIN" fsck vault --key-file key1 --json)"
check "fsck --json is one JSON object" yes "$(valid_json)"
check "fsck --json counts the files" 20 "$(json_field files_checked)"
cp -a vault damaged
victim=$("$BIN" map damaged "tty/$PLANTED Patient/scans/$PLANTED 1.stl" --key-file key1 | sed 's/^ciphertext: //')
flip_byte "damaged/$victim" 5000
check "fsck --json on damage" 20 "$(off_tty "$BIN" fsck damaged --key-file key1 --json)"
check "fsck --json on damage is one JSON object" yes "$(valid_json)"
check "fsck --json lists the damaged file" "$victim" \
  "$(python3 -c "import json,sys; print(json.load(sys.stdin)['damaged'][0]['cipher_path'])" <out)"
check "fsck --json: no name" none "$(no_planted_name out err)"
check "fsck --quiet on damage" 20 "$(off_tty "$BIN" fsck damaged --key-file key1 --quiet)"
check "fsck --quiet still lists the damage, without a summary" "damaged: $victim" \
  "$(cut -d' ' -f1-2 out)"
check "fsck on damage on a terminal" 20 "$(on_tty "$BIN" fsck damaged --key-file key1)"
check "fsck on damage: no name on the terminal" none "$(no_planted_name tty.out)"

# ---- decrypt ----
check_outputs decrypt "decrypting: [0-9]*/5 files, .*MiB" "decrypted 5 files" -- \
  "$BIN" decrypt vault out-tty tty --key-file key1
diff -r src out-tty/tty >/dev/null; check "decrypt on a terminal restores the files" 0 $?
check "decrypt off a terminal" 0 "$(off_tty "$BIN" decrypt vault out-plain plain --key-file key1)"
check "decrypt off a terminal: only the summary" 1 "$(wc -l <out)"
check "decrypt --quiet" 0 "$(off_tty "$BIN" decrypt vault out-quiet quiet --key-file key1 --quiet)"
check "decrypt --quiet prints nothing" 0 "$(cat out err | wc -c)"
check "decrypt --json" 0 "$(off_tty "$BIN" decrypt vault out-json json --key-file key1 --json)"
check "decrypt --json is one JSON object" yes "$(valid_json)"
check "decrypt --json counts the bytes" 7500000 "$(json_field bytes)"
check "decrypt: no name off a terminal" none "$(no_planted_name out err)"

# ---- rekey: two passes over the files, counted in files ----
check_outputs rekey "rekeying (pass 2 of 2): [0-9]*/20 files" "rewrapped 20 file keys" -- \
  "$BIN" rekey vault --key-file key1 --new-key-file key2
check "rekey off a terminal" 0 "$(off_tty "$BIN" rekey vault --key-file key2 --new-key-file key3)"
check "rekey off a terminal: only the summary" 1 "$(wc -l <out)"
check "rekey --quiet" 0 "$(off_tty "$BIN" rekey vault --key-file key3 --new-key-file key4 --quiet)"
check "rekey --quiet prints nothing" 0 "$(cat out err | wc -c)"
check "rekey --json" 0 "$(off_tty "$BIN" rekey vault --key-file key4 --new-key-file key5 --json)"
check "rekey --json is one JSON object" yes "$(valid_json)"
check "rekey --json counts the files" 20 "$(json_field files_rewrapped)"
check "rekey: no name off a terminal" none "$(no_planted_name out err)"

# ---- the backup and restore scripts ----
check "backup on a terminal" 0 "$(on_tty "$SCRIPTS/backup-vault.sh" vault backups)"
grep -qa "100%" tty.out; check "backup on a terminal shows rsync's progress" 0 $?
check "backup: no name on the terminal" none "$(no_planted_name tty.out)"
check "backup off a terminal" 0 "$(off_tty "$SCRIPTS/backup-vault.sh" vault backups)"
check "backup off a terminal: only the summary" 1 "$(wc -l <out)"
grep -q "^backup-vault: snapshot [0-9TZ-]*: [0-9]* files" out; check "backup summary counts the files" 0 $?
check "backup --quiet" 0 "$(off_tty "$SCRIPTS/backup-vault.sh" --quiet vault backups)"
check "backup --quiet prints nothing" 0 "$(cat out err | wc -c)"
check "restore on a terminal" 0 "$(on_tty "$SCRIPTS/restore-vault.sh" --cadcanfs "$BIN" \
  --key-file key5 backups restored "tty/$PLANTED Patient")"
grep -qa "decrypting: [0-9]*/5 files" tty.out; check "restore on a terminal shows progress" 0 $?
check "restore off a terminal" 0 "$(off_tty "$SCRIPTS/restore-vault.sh" --cadcanfs "$BIN" \
  --key-file key5 backups restored-plain)"
check "restore off a terminal: only the summary" 1 "$(wc -l <out)"
check "restore --json" 0 "$(off_tty "$SCRIPTS/restore-vault.sh" --json --cadcanfs "$BIN" \
  --key-file key5 backups restored-json)"
check "restore --json is one JSON object" yes "$(valid_json)"
check "backup and restore: no name" none "$(no_planted_name out err backups)"

report progress_output
