#!/usr/bin/env bash
# End-to-end test of the access layer's commands: case-code (both ways), audit verify
# on intact and tampered logs (each tamper kind and its exit code), audit show with and
# without --resolve, and policy check. A planted patient name must appear only where
# --resolve or --reverse print it on purpose.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: audit_cli_test.sh PATH_TO_CADCANFS PATH_TO_AUDIT_LOG_WRITER}")
WRITER=$(realpath "${2:?usage: audit_cli_test.sh PATH_TO_CADCANFS PATH_TO_AUDIT_LOG_WRITER}")
WORK=$(mktemp -d /tmp/cadcanfs-audit-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

PLANTED="Qwzxplanted_Vexmira"
CASE="${PLANTED}_2026-03-01"
mkdir -p "src/SmithDental/$CASE" src/SmithDental/Other_Case src/JonesOrtho/Roe_Rick
printf 'scan' >"src/SmithDental/$CASE/${PLANTED}_upper.stl"
printf 'x' >src/JonesOrtho/Roe_Rick/a.stl
"$BIN" keygen k1 >/dev/null && "$BIN" keygen k2 >/dev/null
"$BIN" init vault --key-file k1 >/dev/null && "$BIN" encrypt vault src/ --key-file k1 >/dev/null

# case-code: stable, keyed, and reversible by a key holder.
check "case-code" 0 "$(run case-code vault "SmithDental/$CASE" --key-file k1)"
code=$(cat out)
[[ "$code" =~ ^C-[0-9A-HJKMNP-TV-Z]{6}$ ]]; check "case code shape" 0 $?
run case-code vault "SmithDental/$CASE/" --key-file k1 >/dev/null
check "case code is stable" "$code" "$(cat out)"
check "case-code with another vault's key" 5 "$(run case-code vault "SmithDental/$CASE" --key-file k2)"
check "case-code of a missing folder" 10 "$(run case-code vault "SmithDental/No_One" --key-file k1)"
check "case-code of a missing folder: one line" yes "$(one_line)"
grep -q "No_One" err; check "missing folder's name not printed" 1 $?
check "case-code --reverse" 0 "$(run case-code vault --reverse "$code" --key-file k1)"
check "reverse finds the folder" "SmithDental/$CASE" "$(cat out)"
check "reverse in lowercase" 0 "$(run case-code vault --reverse "${code,,}" --key-file k1)"
check "reverse of an unknown code" 10 "$(run case-code vault --reverse C-000000 --key-file k1)"
check "reverse of a malformed code" 2 "$(run case-code vault --reverse Smith --key-file k1)"
check "reverse at depth 3 finds nothing" 10 \
  "$(run case-code vault --reverse "$code" --case-depth 3 --key-file k1)"

# A log with a mount, two downloads, a denial and an unmount.
cipher=$("$BIN" map vault "SmithDental/$CASE/${PLANTED}_upper.stl" --key-file k1 | sed 's/^ciphertext: //')
fid=$(od -An -tx1 -j16 -N16 "vault/$cipher" | tr -d ' \n')
[ ${#fid} = 32 ]; check "file id read from the header" 0 $?
"$WRITER" k1 audit.log mount "read:$code:$fid" "read:$code:$fid" "denied:$code" unmount
check "writer" 0 $?
check "verify intact" 0 "$(run audit verify audit.log --key-file k1)"
grep -q "intact: 5 lines" out; check "verify counts lines" 0 $?
check "verify through the vault's config" 0 "$(run audit verify audit.log --vault vault --key-file k1)"
check "verify with another key" 5 "$(run audit verify audit.log --key-file k2)"
check "verify with another key: one line" yes "$(one_line)"
check "verify of a missing log" 10 "$(run audit verify nowhere.log --key-file k1)"
check "verify without a key" 4 "$(run audit verify audit.log)"
check "verify with a passphrase but no vault" 2 \
  "$(run audit verify audit.log --passphrase-file k1)"
check "verify without a log" 2 "$(run audit verify --key-file k1)"
check "audit without a subcommand" 2 "$(run audit --key-file k1)"

# Each kind of tampering, with the line it is found at.
sed '3s/"uid":[0-9]*/"uid":4242/' audit.log >edited.log
check "edited line" 40 "$(run audit verify edited.log --key-file k1)"
grep -q "^cadcanfs: line 3: .*edited" err; check "edited line pinpointed" 0 $?
sed '2d' audit.log >removed.log
check "removed line" 40 "$(run audit verify removed.log --key-file k1)"
grep -q "^cadcanfs: line 2: a line was removed before this one" err; check "removed line pinpointed" 0 $?
sed '3{h;d};4G' audit.log >reordered.log
check "reordered lines" 40 "$(run audit verify reordered.log --key-file k1)"
grep -q "^cadcanfs: line 3: lines were reordered" err; check "reordered pinpointed" 0 $?
sed '4{p}' audit.log >inserted.log
check "repeated line" 40 "$(run audit verify inserted.log --key-file k1)"
grep -q "^cadcanfs: line 5: " err; check "repeated line pinpointed" 0 $?
head -c -20 audit.log >cut.log
check "truncated tail" 42 "$(run audit verify cut.log --key-file k1)"
grep -q "^cadcanfs: line 5: the last line is cut off" err; check "truncated tail pinpointed" 0 $?
head -n 4 audit.log >open.log
check "log without its unmount line" 43 "$(run audit verify open.log --key-file k1)"

# Rotation: the chain runs on across files given oldest first.
"$WRITER" k1 rot.log mount "read:$code:$fid" rotate "read:$code:$fid" rotate unmount
check "writer with rotations" 0 $?
mapfile -t rotated < <(printf '%s\n' rot.log.* | sort)
check "two rotated files" 2 "${#rotated[@]}"
check "verify across files" 0 "$(run audit verify "${rotated[@]}" rot.log --key-file k1)"
check "verify a missing middle file" 40 "$(run audit verify "${rotated[0]}" rot.log --key-file k1)"
grep -q "^cadcanfs: file 2 of 2, line 1: " err; check "gap pinpointed" 0 $?

# show: codes and ids only, names with --resolve.
check "show" 0 "$(run audit show audit.log --key-file k1)"
check "show prints every line" 5 "$(wc -l <out)"
grep -q "open-read uid=.* case=$code fid=$fid result=ok" out; check "show fields" 0 $?
grep -q "attempt=open-write result=EACCES" out; check "show denial" 0 $?
check "show marks edited lines" 0 "$(run audit show edited.log --key-file k1)"
[ "$(grep -c '^UNVERIFIED ' out)" = 1 ]; check "one line marked" 0 $?
check "show --resolve" 0 "$(run audit show audit.log --resolve vault --key-file k1)"
grep -q "case=$code(SmithDental/$CASE) fid=$fid(SmithDental/$CASE/${PLANTED}_upper.stl)" out
check "resolved names" 0 $?

# No patient name anywhere but in the output of --resolve and --reverse.
if grep -rqa "$PLANTED" ./*.log ./rot.log*; then check "no name in any log" 0 1; fi
run audit show audit.log --key-file k1 >/dev/null
if grep -qa "$PLANTED" out err; then check "no name in show without --resolve" 0 1; fi
run audit verify edited.log --key-file k1 >/dev/null
if grep -qa "$PLANTED" out err; then check "no name in verify output" 0 1; fi

# After a master-key rotation: case codes stay (they come from the name key), while old
# audit logs need the old key (the audit key comes from the master key).
"$BIN" keygen k3 >/dev/null
check "rekey" 0 "$(run rekey vault --key-file k1 --new-key-file k3)"
check "case-code after rekey" 0 "$(run case-code vault "SmithDental/$CASE" --key-file k3)"
check "case code survives a key rotation" "$code" "$(cat out)"
check "old log with the new key" 5 "$(run audit verify audit.log --key-file k3)"
check "old log with the old key" 0 "$(run audit verify audit.log --key-file k1)"

# policy check.
cat >policy.json <<'JSON'
{"version": 1, "principals": {"staff": {"users": ["root"], "role": "office", "office": "SmithDental"}}}
JSON
chmod 600 policy.json
check "policy check" 0 "$(run policy check policy.json)"
printf '{"version": 1, "principals": {}, "colour": 1}' >bad.json
check "policy check of a broken policy" 41 "$(run policy check bad.json)"
check "broken policy: one line" yes "$(one_line)"
chmod 666 policy.json
check "policy check of a world-writable policy" 41 "$(run policy check policy.json)"
check "policy without check" 2 "$(run policy policy.json)"

report audit_cli
