#!/usr/bin/env bash
# End-to-end test of the access layer on a real `-o allow_other` mount, with real Linux
# users made here (useradd) and operations run as them (runuser): each office sees
# only its cases, a read-only designer sees its assigned case and cannot write,
# reloads (file change and SIGHUP) apply without a remount, two users alternating on
# the same paths never see each other's view (default and writeback cache modes),
# a pseudonymized designer sees case codes and no patient name through the
# pseudonymized view's mountpoint (and nothing of its case in the real one), stable
# across remounts, while writes there land in the real case; a user's own view
# (--user-view) answers its owner only;
# every audited operation writes exactly one line with the right fields, `audit
# verify` passes and catches an edited line, --audit-syslog mirrors every audit line
# unchanged to a syslog socket read here, and a planted patient name appears in no
# audit line, syslog datagram, daemon log (--debug) or stderr. Needs root.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN_SRC=$(realpath "${1:?usage: access_mount_e2e_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-access-XXXXXX)
chmod 755 "$WORK"
BIN="$WORK/cadcanfs"
cp "$BIN_SRC" "$BIN" && chmod 755 "$BIN"
PREFIX="ccacc$$"
ALICE="${PREFIX}a"  # SmithDental staff, through the group
DAVE="${PREFIX}d"   # JonesOrtho staff
BOB="${PREFIX}b"    # designer: read on one SmithDental case
SMITH_GROUP="${PREFIX}g"
PLANTED="Qwzxplanted_Vexmira"
CASE="${PLANTED}_2026-03-01"
OTHER="Other_Case"
DAEMON_PID=""
SYSLOG_PID=""

cleanup() {
  [ -n "$SYSLOG_PID" ] && kill "$SYSLOG_PID" 2>/dev/null
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
  for u in "$ALICE" "$DAVE" "$BOB"; do userdel "$u" 2>/dev/null; done
  groupdel "$SMITH_GROUP" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1

groupadd "$SMITH_GROUP"
useradd -M -N -s /bin/sh -G "$SMITH_GROUP" "$ALICE"
useradd -M -N -s /bin/sh "$DAVE"
useradd -M -N -s /bin/sh "$BOB"
as() { local who=$1; shift; runuser -u "$who" -- "$@"; }
# Every stderr of cadcanfs commands lands in cli.err too, for the patient-name check.
run() { "$BIN" "$@" >"$WORK/out" 2>"$WORK/err"; local rc=$?; cat "$WORK/err" >>"$WORK/cli.err"; echo "$rc"; }
mounted() { grep -q " $1 fuse.cadcanfs " /proc/mounts && echo yes || echo no; }
wait_mounted() { for _ in $(seq 1 250); do [ "$(mounted "$1")" = yes ] && return 0; sleep 0.02; done; return 1; }
listing() { as "$1" ls "$2" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
lines() { wc -l <"$WORK/audit.log"; }
new_lines() { tail -n +"$(($1 + 1))" "$WORK/audit.log"; }

write_policy() {  # write_policy BOB_CASE_PATTERN...
  local assignments="" sep="" bob_extra=""
  [ -n "${BOB_PSEUDONYMIZED:-}" ] && bob_extra=', "pseudonymize": true'
  for pattern in "$@"; do
    assignments+="$sep{\"principal\": \"bob\", \"office\": \"SmithDental\", \"case\": \"$pattern\", \"access\": \"read\"}"
    sep=","
  done
  cat >"$WORK/policy.tmp" <<EOF
{
  "version": 1,
  "principals": {
    "smith-staff": {"groups": ["$SMITH_GROUP"], "role": "office", "office": "SmithDental"},
    "jones-staff": {"users": ["$DAVE"], "role": "office", "office": "JonesOrtho"},
    "bob": {"users": ["$BOB"], "role": "designer"$bob_extra}
  },
  "assignments": [$assignments]
}
EOF
  chmod 600 "$WORK/policy.tmp" && mv "$WORK/policy.tmp" "$WORK/policy.json"
}

# The vault: two SmithDental cases (one named after the planted patient), one JonesOrtho.
mkdir -p "src/SmithDental/$CASE" "src/SmithDental/$OTHER" src/JonesOrtho/Roe_Rick
printf 'upper scan' >"src/SmithDental/$CASE/${PLANTED}_upper.stl"
printf 'other' >"src/SmithDental/$OTHER/x.stl"
printf 'to be tampered with' >"src/SmithDental/$CASE/${PLANTED}_lower.stl"
printf 'jones' >src/JonesOrtho/Roe_Rick/a.stl
find src -type d -exec chmod 777 {} + && find src -type f -exec chmod 666 {} +
"$BIN" keygen key >/dev/null && "$BIN" init vault --key-file key >/dev/null
"$BIN" encrypt vault src/ --key-file key >/dev/null
chmod -R a+rwX vault
write_policy "Qwz*"
mkdir mnt

# ---- refusals at startup ----
echo '{"version": 1, "principals": {}, "bogus": 1}' >bad.json && chmod 600 bad.json
check "broken policy refused" 41 "$(run mount vault mnt --key-file key --policy bad.json)"
check "broken policy: one line" yes "$(one_line)"
mkdir audit.dir
check "unwritable audit log refused" 44 "$(run mount vault mnt --key-file key --audit-log audit.dir)"
check "unwritable audit log: one line" yes "$(one_line)"
check "--audit-sync needs --audit-log" 2 "$(run mount vault mnt --key-file key --audit-sync)"
check "nothing mounted after refusals" no "$(mounted "$WORK/mnt")"

# A syslog daemon stand-in: every datagram sent to syslog.sock becomes a line of
# syslog.out (what journald or rsyslog would have stored).
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
' "$WORK/syslog.sock" "$WORK/syslog.out" &
SYSLOG_PID=$!
for _ in $(seq 1 100); do [ -S "$WORK/syslog.sock" ] && break; sleep 0.02; done

start_daemon() {  # start_daemon EXTRA_FLAGS...: foreground daemon with --debug, logs kept
  CADCANFS_SYSLOG_SOCKET="$WORK/syslog.sock" "$BIN" mount vault mnt --key-file key \
    -o allow_other --policy "$WORK/policy.json" --audit-log "$WORK/audit.log" --audit-syslog \
    --debug -f "$@" >>"$WORK/daemon.out" 2>>"$WORK/daemon.err" &
  DAEMON_PID=$!
  wait_mounted "$WORK/mnt"
}
stop_daemon() {
  "$BIN" unmount mnt 2>>"$WORK/cli.err"
  wait_gone "$DAEMON_PID"
  DAEMON_PID=""
}

# Two users alternating on the same paths must never see each other's view: the
# kernel's dentry, attribute and listing caches are shared by all of them.
alternate() {  # alternate MODE_NAME
  local mode=$1 leaked=0
  for _ in 1 2 3; do
    [ "$(listing "$ALICE" mnt)" = "SmithDental" ] || leaked=1
    as "$ALICE" stat -c %s "mnt/SmithDental/$OTHER/x.stl" >/dev/null || leaked=1
    [ "$(listing "$DAVE" mnt)" = "JonesOrtho" ] || leaked=1
    as "$DAVE" stat "mnt/SmithDental/$OTHER/x.stl" >/dev/null 2>&1 && leaked=1
    as "$DAVE" ls mnt/SmithDental >/dev/null 2>&1 && leaked=1
    [ "$(listing "$BOB" mnt/SmithDental)" = "$CASE" ] || leaked=1
    [ "$(listing "$ALICE" mnt/SmithDental)" = "$OTHER $CASE" ] || leaked=1
    as "$BOB" cat "mnt/SmithDental/$OTHER/x.stl" >/dev/null 2>&1 && leaked=1
    # Attributes stay cached at every depth: right after Alice's walks, another user's
    # stat of the folders themselves must still be refused, and a cached positive
    # dentry must not answer mkdir with EEXIST.
    as "$ALICE" stat "mnt/SmithDental/$OTHER" >/dev/null || leaked=1
    as "$BOB" stat "mnt/SmithDental/$OTHER" >/dev/null 2>&1 && leaked=1
    as "$DAVE" stat mnt/SmithDental >/dev/null 2>&1 && leaked=1
    as "$DAVE" mkdir mnt/SmithDental 2>&1 | grep -q 'File exists' && leaked=1
  done
  check "alternating users see only their own view ($mode)" 0 "$leaked"
}

# ---- visibility and enforcement ----
start_daemon; check "mounted with a policy" yes "$(mounted "$WORK/mnt")"
check "office sees its office only" "SmithDental" "$(listing "$ALICE" mnt)"
check "office sees its cases" "$OTHER $CASE" "$(listing "$ALICE" mnt/SmithDental)"
check "office reads its case" "other" "$(as "$ALICE" cat "mnt/SmithDental/$OTHER/x.stl")"
check "second office sees only its own" "JonesOrtho" "$(listing "$DAVE" mnt)"
as "$DAVE" ls mnt/SmithDental >/dev/null 2>&1; check "second office: other office is ENOENT" 2 $?
check "second office: lookup says no such file" 1 \
  "$(as "$DAVE" stat mnt/SmithDental 2>&1 | grep -c 'No such file')"
as "$DAVE" cat "mnt/SmithDental/$CASE/${PLANTED}_upper.stl" >/dev/null 2>&1
check "second office cannot open the first's files" 1 $?
check "designer sees the assigned case only" "$CASE" "$(listing "$BOB" mnt/SmithDental)"
check "designer reads the assigned case" "upper scan" \
  "$(as "$BOB" cat "mnt/SmithDental/$CASE/${PLANTED}_upper.stl")"
as "$BOB" ls "mnt/SmithDental/$OTHER" >/dev/null 2>&1; check "unassigned case is invisible" 2 $?
check "read-only designer cannot write (EACCES)" 1 "$(as "$BOB" sh -c \
  "echo x >>'mnt/SmithDental/$CASE/${PLANTED}_upper.stl'" 2>&1 | grep -c 'Permission denied')"
as "$BOB" touch "mnt/SmithDental/$CASE/new.stl" 2>/dev/null; check "read-only designer cannot create" 1 $?
as "$BOB" mkdir "mnt/SmithDental/$CASE/d" 2>/dev/null; check "read-only designer cannot mkdir" 1 $?
as "$BOB" rm -f "mnt/SmithDental/$CASE/${PLANTED}_upper.stl" 2>/dev/null
check "read-only designer cannot delete" 1 $?
as "$BOB" truncate -s 0 "mnt/SmithDental/$CASE/${PLANTED}_upper.stl" 2>/dev/null
check "read-only designer cannot truncate" 1 $?
check "the file is intact" "upper scan" "$(as "$ALICE" cat "mnt/SmithDental/$CASE/${PLANTED}_upper.stl")"
ls mnt >/dev/null 2>&1; check "root has no bypass" "" "$(ls mnt 2>/dev/null)"
alternate "default cache"

# ---- audit: exactly one line per operation, with the right fields ----
code=$("$BIN" case-code vault "SmithDental/$CASE" --key-file key 2>>cli.err)
alice_uid=$(id -u "$ALICE"); bob_uid=$(id -u "$BOB")
audit_one() {  # audit_one NAME EVENT UID [WANT_FID] -- COMMAND...: runs it, checks one line
  local name=$1 event=$2 uid=$3 want_fid=$4 before; shift 5
  before=$(lines)
  "$@" >/dev/null 2>&1
  local added; added=$(new_lines "$before")
  check "audit $name: one line" 1 "$(printf '%s\n' "$added" | grep -c .)"
  check "audit $name: event" "\"event\":\"$event\"" "$(grep -o "\"event\":\"[a-z-]*\"" <<<"$added")"
  check "audit $name: uid" "\"uid\":$uid" "$(grep -o "\"uid\":[0-9]*" <<<"$added")"
  check "audit $name: case code" "\"case\":\"$code\"" "$(grep -o '"case":"[^"]*"' <<<"$added")"
  if [ "$want_fid" = fid ]; then
    grep -Eq '"fid":"[0-9a-f]{32}"' <<<"$added"; check "audit $name: file id" 0 $?
  fi
}
F="mnt/SmithDental/$CASE"
audit_one open-read open-read "$bob_uid" fid -- as "$BOB" cat "$F/${PLANTED}_upper.stl"
grep -q '"process":"cat"' <(tail -n 1 audit.log); check "audit: process name" 0 $?
audit_one open-write open-write "$alice_uid" fid -- as "$ALICE" sh -c "echo more >>'$F/${PLANTED}_upper.stl'"
audit_one create create "$alice_uid" fid -- as "$ALICE" sh -c ": >'$F/${PLANTED}_crown.stl'"
audit_one truncate truncate "$alice_uid" - -- as "$ALICE" python3 -c "import os,sys; os.truncate(sys.argv[1], 0)" "$F/${PLANTED}_crown.stl"
audit_one mkdir create "$alice_uid" - -- as "$ALICE" mkdir "$F/${PLANTED}_parts"
audit_one rename rename "$alice_uid" - -- as "$ALICE" mv "$F/${PLANTED}_crown.stl" "$F/${PLANTED}_parts/c.stl"
audit_one delete delete "$alice_uid" - -- as "$ALICE" rm "$F/${PLANTED}_parts/c.stl"
audit_one rmdir delete "$alice_uid" - -- as "$ALICE" rmdir "$F/${PLANTED}_parts"
audit_one denied denied "$bob_uid" - -- as "$BOB" sh -c "echo x >>'$F/${PLANTED}_upper.stl'"
grep -q '"attempt":"open-write","result":"EACCES"' <(tail -n 1 audit.log)
check "audit denied: attempt and result" 0 $?
# A block that fails authentication: the read is EIO and the tamper is on record.
cipher=$("$BIN" map vault "SmithDental/$CASE/${PLANTED}_lower.stl" --key-file key 2>>cli.err |
  sed 's/^ciphertext: //')
size=$(stat -c %s "vault/$cipher")
printf '\xff' | dd of="vault/$cipher" bs=1 seek=$((size - 1)) conv=notrunc status=none
before=$(lines)
check "tampered block: the read fails" 1 \
  "$(as "$ALICE" cat "$F/${PLANTED}_lower.stl" 2>&1 | grep -c 'Input/output error')"
check "tampered block: one tamper line" 1 "$(new_lines "$before" | grep -c '"event":"tamper"')"
new_lines "$before" | grep '"event":"tamper"' | grep -Eq "\"case\":\"$code\",\"fid\":\"[0-9a-f]{32}\""
check "tamper line: case code and file id" 0 $?

# ---- reload without remount: file change, then SIGHUP ----
write_policy "Qwz*" "Other_*"
for _ in $(seq 1 100); do [ "$(listing "$BOB" mnt/SmithDental)" = "$OTHER $CASE" ] && break; sleep 0.05; done
check "reload on file change" "$OTHER $CASE" "$(listing "$BOB" mnt/SmithDental)"
write_policy "Qwz*"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 100); do [ "$(listing "$BOB" mnt/SmithDental)" = "$CASE" ] && break; sleep 0.05; done
check "reload after SIGHUP revokes" "$CASE" "$(listing "$BOB" mnt/SmithDental)"
check "SIGHUP keeps the mount" yes "$(mounted "$WORK/mnt")"
echo '{"version": 1' >"$WORK/policy.json"; chmod 600 "$WORK/policy.json"
kill -HUP "$DAEMON_PID"; sleep 0.3
check "a broken reload keeps the old policy" "$CASE" "$(listing "$BOB" mnt/SmithDental)"
write_policy "Qwz*"
# SIGUSR1 rotates the audit log at the next line; the chain continues in the new file.
kill -USR1 "$DAEMON_PID"
as "$ALICE" cat "mnt/SmithDental/$OTHER/x.stl" >/dev/null
check "SIGUSR1 rotated the audit log" 1 "$(find . -maxdepth 1 -name 'audit.log.*' | wc -l)"
check "SIGUSR1 keeps the mount" yes "$(mounted "$WORK/mnt")"
stop_daemon

# ---- the writeback cache mode ----
start_daemon --writeback-cache
alternate "writeback cache"
stop_daemon

# ---- the pseudonymized view: a second mountpoint of the same daemon ----
BOB_PSEUDONYMIZED=yes write_policy "Qwz*"
mkdir view
start_daemon --pseudonymized-view "$WORK/view"
wait_mounted "$WORK/view"; check "the view is mounted" yes "$(mounted "$WORK/view")"
check "pseudonymized designer: the case shows as its code" "$code" "$(listing "$BOB" view/SmithDental)"
check "pseudonymized designer: nothing of it in the real view" "" "$(listing "$BOB" mnt/SmithDental)"
check "pseudonymized designer: names inside show the code" "${code}_lower.stl ${code}_upper.stl" \
  "$(listing "$BOB" "view/SmithDental/$code")"
check "pseudonymized designer reads the scan" "$(as "$ALICE" cat "mnt/SmithDental/$CASE/${PLANTED}_upper.stl")" \
  "$(as "$BOB" cat "view/SmithDental/$code/${code}_upper.stl")"
as "$BOB" stat "view/SmithDental/$CASE" >/dev/null 2>&1; check "a patient name cannot be probed in the view" 1 $?
check "no patient name in the designer's whole view" 0 "$(as "$BOB" ls -laR view 2>&1 | grep -c "$PLANTED")"
check "another office sees nothing in the view either" "JonesOrtho" "$(listing "$DAVE" view)"
as "$ALICE" sh -c "echo note >'view/SmithDental/$code/${code}_note.txt'"
check "a write through the view lands in the real case" "note" \
  "$(as "$ALICE" cat "mnt/SmithDental/$CASE/${code}_note.txt")"
as "$ALICE" sh -c "echo changed >'mnt/SmithDental/$CASE/${code}_note.txt'"
check "a change in the real view reaches the view" "changed" \
  "$(as "$ALICE" cat "view/SmithDental/$code/${code}_note.txt")"
before=$(lines)
as "$BOB" cat "view/SmithDental/$code/${code}_upper.stl" >/dev/null
check "an open through the view is audited with the case code" 1 \
  "$(new_lines "$before" | grep -c "\"event\":\"open-read\",.*\"case\":\"$code\"")"
stop_daemon
check "unmounting the vault ends the view" no "$(mounted "$WORK/view")"
start_daemon --pseudonymized-view "$WORK/view"; wait_mounted "$WORK/view"
check "case codes are stable across remounts" "$code" "$(listing "$BOB" view/SmithDental)"
stop_daemon
# ---- a user's own view: only its owner is answered, and the kernel keeps its dentries ----
mkdir uview && chown "$ALICE" uview && chmod 700 uview
start_daemon --user-view "$WORK/uview"
wait_mounted "$WORK/uview"; check "a user view is mounted" yes "$(mounted "$WORK/uview")"
check "the owner's view follows the policy" "SmithDental" "$(listing "$ALICE" uview)"
check "the owner reads her case there" "other" "$(as "$ALICE" cat "uview/SmithDental/$OTHER/x.stl")"
check "another user is refused in it" 1 \
  "$(as "$DAVE" ls uview 2>&1 | grep -c 'Permission denied')"
ls uview >/dev/null 2>&1; check "root is refused in it too" 2 $?
as "$ALICE" sh -c "echo mine >'uview/SmithDental/$OTHER/mine.txt'"
check "a write through the user view is in the vault" "mine" \
  "$(as "$ALICE" cat "mnt/SmithDental/$OTHER/mine.txt")"
as "$ALICE" sh -c "echo again >'mnt/SmithDental/$OTHER/mine.txt'"
check "a change through the shared mount reaches the user view" "again" \
  "$(as "$ALICE" cat "uview/SmithDental/$OTHER/mine.txt")"
as "$ALICE" rm "uview/SmithDental/$OTHER/mine.txt"
stop_daemon
check "unmounting the vault ends the user view" no "$(mounted "$WORK/uview")"
# With the writeback cache the kernel writes pages back (and times) without the
# writer's credentials: a user view must take them.
start_daemon --writeback-cache --user-view "$WORK/uview"; wait_mounted "$WORK/uview"
head -c 3000000 /dev/urandom >wb.bin && chmod 644 wb.bin
as "$ALICE" sh -c "cat '$WORK/wb.bin' >'uview/SmithDental/$OTHER/wb.bin' && touch -m -d '2020-01-02 03:04:05' 'uview/SmithDental/$OTHER/wb.bin'"
as "$ALICE" sync
as "$ALICE" cmp wb.bin "mnt/SmithDental/$OTHER/wb.bin"; check "a writeback write through a user view lands whole" 0 $?
check "its time too" "2020-01-02" "$(as "$ALICE" stat -c %y "mnt/SmithDental/$OTHER/wb.bin" | cut -c1-10)"
as "$ALICE" rm "uview/SmithDental/$OTHER/wb.bin"
stop_daemon
check "--user-view needs -o allow_other" 2 \
  "$(run mount vault mnt --key-file key --policy policy.json --user-view uview)"
check "--pseudonymized-view needs --policy" 2 \
  "$(run mount vault mnt --key-file key --pseudonymized-view view)"
write_policy "Qwz*"

# ---- --audit-syslog: every line reached syslog, unchanged ----
kill "$SYSLOG_PID"; wait "$SYSLOG_PID" 2>/dev/null; SYSLOG_PID=""
check "syslog lines are tagged cadcanfs-audit at authpriv.notice" 0 \
  "$(grep -cv '^<85>[A-Z][a-z][a-z] [ 0-9][0-9] [0-9:]\{8\} cadcanfs-audit\[[0-9]*\]: {' syslog.out)"
sed 's/^[^{]*//' syslog.out >syslog.lines
cat audit.log.* audit.log >audit.all
check "syslog holds every audit line, unchanged" "$(wc -l <audit.all) same" \
  "$(wc -l <syslog.lines) $(cmp -s syslog.lines audit.all && echo same)"

# ---- the log verifies, and an edited line is caught ----
check "audit verify passes across the rotation" 0 \
  "$(run audit verify audit.log.* audit.log --key-file key)"
check "mount and unmount lines" "6 6" \
  "$(cat audit.log.* audit.log | grep -c '"event":"mount"') $(grep -c '"event":"unmount"' audit.log)"
sed "5s/\"uid\":[0-9]*/\"uid\":4242/" audit.log >edited.log
check "audit verify catches an edited line" 40 "$(run audit verify edited.log --key-file key)"

# ---- no patient name anywhere ----
touch cli.err
for f in audit.log audit.log.* syslog.out daemon.out daemon.err cli.err; do
  check "planted name absent from $f" 0 "$(grep -c "$PLANTED" "$f")"
done
grep -q "lookup\|open" daemon.err; check "the daemon logged with --debug" 0 $?

report access_mount_e2e
