#!/usr/bin/env bash
# docs/operations.md, run as a new admin would: every fenced block marked
# `<!-- doc-test: NAME -->` is pulled out of the doc and run as written, so the doc
# cannot rot. The test installs with `cmake --install`, makes a key and a vault, runs
# cadcanfs@office.service, adds a patient folder through the mount, backs it up with
# cadcanfs-backup@office.service, checks and restores it, checks the vault with
# cadcanfs-fsck@office.service and rotates the key.
#
# The commands name /etc/cadcanfs, /srv, /usr, /var/backups and /root. They run in a
# private mount namespace where each of those is an overlay whose changes land in a
# temporary directory: the host's files are never touched. There is no systemd as
# PID 1: tests/ops/systemctl_shim.py stands in for systemctl and runs the installed
# units. Each block must succeed, except the commands the doc marks `# exit N`, which
# must exit N (and `cadcanfs doctor`, whose verdict on swap depends on the machine).
#
# usage: operations_doc_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "${1:?usage: operations_doc_test.sh BUILD_DIR SOURCE_DIR}")
SOURCE=$(realpath "${2:?usage: operations_doc_test.sh BUILD_DIR SOURCE_DIR}")
HERE=$(dirname "$(realpath "$0")")

if [ "${CADCANFS_DOC_TEST_WORK:-}" = "" ]; then
  work=$(mktemp -d /tmp/cadcanfs-doc-XXXXXX)
  trap 'rm -rf "$work"' EXIT
  rc=0
  CADCANFS_DOC_TEST_WORK=$work unshare -m --propagation private "$0" "$@" || rc=$?
  exit "$rc"
fi

# ---- Inside the private mount namespace. ----
WORK=$CADCANFS_DOC_TEST_WORK
# shellcheck source=../testing/e2e_lib.sh
source "$HERE/../testing/e2e_lib.sh"
set +e  # checks count failures; a failing command must not end the test early

for dir in /etc /usr /var /srv /root; do
  name=${dir#/}
  mkdir -p "$WORK/overlay/$name/upper" "$WORK/overlay/$name/work"
  mount -t overlay overlay \
    -o "lowerdir=$dir,upperdir=$WORK/overlay/$name/upper,workdir=$WORK/overlay/$name/work" "$dir" ||
    { echo "FAIL: cannot put an overlay on $dir"; exit 1; }
done
export SHIM_STATE=$WORK/systemd
mkdir -p "$WORK/bin" "$WORK/admin" "$SHIM_STATE"
stop_services() { PATH=$WORK/bin:$PATH systemctl stop cadcanfs@office.service >/dev/null 2>&1; }
trap stop_services EXIT
# systemctl is the shim; the example configs already name the doc's paths, so the
# admin's `editor` leaves them as they are.
printf '#!/bin/sh\nexec python3 %q "$@"\n' "$HERE/systemctl_shim.py" >"$WORK/bin/systemctl"
printf '#!/bin/sh\nexit 0\n' >"$WORK/bin/editor"
chmod +x "$WORK/bin/systemctl" "$WORK/bin/editor"
export PATH=$WORK/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The blocks, one file each: blocks/NAME.sh.
mkdir -p "$WORK/blocks"
awk -v dir="$WORK/blocks" '
  /^<!-- doc-test: [a-z-]+ -->$/ { name = $3; want = 1; next }
  want && /^```/ { want = 0; out = dir "/" name ".sh"; next }
  out && /^```$/ { close(out); out = ""; next }
  out { print > out }' "$SOURCE/docs/operations.md"

# Runs block NAME from the admin's directory; every command that fails is checked
# against the `# exit N` the doc gives it.
run_block() {
  local name=$1 block=$WORK/blocks/$1.sh failures=$WORK/failures-$1
  check "the doc has the block $name" yes "$([ -s "$block" ] && echo yes || echo no)"
  : >"$failures"
  (
    cd "$WORK/admin" || exit 1
    trap 'printf "%s\t%s\n" "$?" "$BASH_COMMAND" >>"$failures"' ERR
    # shellcheck disable=SC1090
    source "$block"
  ) >"$WORK/output-$name" 2>&1
  local expected actual
  expected=$(grep -o '# exit [1-9][0-9]*' "$block" | sed 's/# exit //' | sort | tr '\n' ' ')
  actual=$(grep -v $'^30\tcadcanfs doctor' "$failures" | cut -f1 | sort | tr '\n' ' ')
  check "block $name: only the failures the doc announces" "$expected" "$actual"
  if [ "$expected" != "$actual" ]; then sed 's/^/    /' "$failures" "$WORK/output-$name"; fi
}
key_is_live() { cadcanfs fsck /srv/office/vault --key-file "$1" >/dev/null 2>&1; }

ln -s "$BUILD" "$WORK/admin/build"
run_block install
check "installed: cadcanfs in /usr/bin" yes "$([ -x /usr/bin/cadcanfs ] && echo yes || echo no)"
check "installed: the backup user exists" yes "$(id -u cadcanfs-backup >/dev/null 2>&1 && echo yes || echo no)"
check "installed: /var/backups/cadcanfs belongs to it" "cadcanfs-backup 700" \
  "$(stat -c '%U %a' /var/backups/cadcanfs 2>&1)"

run_block key-and-vault
check "the key is 0600" 600 "$(stat -c %a /etc/cadcanfs/keys/office.key 2>&1)"

run_block service
check "the service has mounted the vault" yes "$(mountpoint -q /srv/office/cases && echo yes || echo no)"
grep -q '"Serving the vault' "$WORK/output-service"
check "systemctl status shows the service's STATUS=" 0 $?

# A patient folder from a scanner export, one file of it readable by its owner only.
mkdir -p "$WORK/admin/Doe, Jane/cbct"
head -c 300000 /dev/urandom >"$WORK/admin/Doe, Jane/cbct/slice_001.dcm"
echo "crown 16, zirconia" >"$WORK/admin/Doe, Jane/order.txt"
chown 4321:4321 "$WORK/admin/Doe, Jane/cbct/slice_001.dcm"
chmod 600 "$WORK/admin/Doe, Jane/cbct/slice_001.dcm"
run_block add-files
grep -qx 'Doe, Jane' "$WORK/output-add-files"
check "the patient folder is in the mount" 0 $?
grep -rq 'Doe' <(find /srv/office/vault)
check "the vault holds no plaintext name" 1 $?

# The backup runs as cadcanfs-backup: the 0600 file of user 4321 is read only through
# CAP_DAC_READ_SEARCH, and the key is out of its reach.
run_block backup
check "a snapshot was made" yes "$([ -f /var/backups/cadcanfs/office/latest/manifest.sha256 ] && echo yes || echo no)"
check "the snapshot belongs to the backup user" cadcanfs-backup \
  "$(stat -c %U /var/backups/cadcanfs/office/latest/vault/cadcanfs.conf 2>&1)"
check "the backup's summary line is in its journal" 1 \
  "$(grep -c '^backup-vault: snapshot .* 0 still changing$' "$SHIM_STATE/journal-cadcanfs-backup@office.service")"
systemctl exec cadcanfs-backup@office.service -- cat /etc/cadcanfs/keys/office.key >/dev/null 2>&1
check "the backup service cannot read the key" 1 $?
cp /etc/cadcanfs/keys/office.key /root/old.key
systemctl exec cadcanfs-backup@office.service -- cat /root/old.key >/dev/null 2>&1
check "the backup service cannot read keys in /root" 1 $?
rm /root/old.key
systemctl exec cadcanfs-backup@office.service -- touch /srv/office/vault/x >/dev/null 2>&1
check "the backup service cannot write to the vault" 1 $?

run_block verify-backup
grep -q '^backup-vault: snapshot OK: [0-9]* files match the manifest$' "$WORK/output-verify-backup"
check "the snapshot matches its manifest" 0 $?

# The folder is lost; the restore brings it back as it was at the backup.
rm -rf "/srv/office/cases/Doe, Jane"
run_block restore
diff -r "$WORK/admin/Doe, Jane" "/srv/restore/Doe, Jane" >/dev/null 2>&1
check "the restored folder is the one backed up" 0 $?
run_block restore-into-mount
diff -r "$WORK/admin/Doe, Jane" "/srv/office/cases/Doe, Jane" >/dev/null 2>&1
check "the folder is back in the mount" 0 $?

run_block fsck
check "the fsck unit checked the vault" 1 \
  "$(grep -c '0 problems$' "$SHIM_STATE/journal-cadcanfs-fsck@office.service")"

cp /etc/cadcanfs/keys/office.key "$WORK/key-before-rotation"
run_block rotate
check "the service is back after the rotation" yes "$(mountpoint -q /srv/office/cases && echo yes || echo no)"
cmp -s "$WORK/admin/Doe, Jane/order.txt" "/srv/office/cases/Doe, Jane/order.txt"
check "the files read back through the new key" 0 $?
key_is_live /etc/cadcanfs/keys/office.key
check "the new key opens the vault" 0 $?
key_is_live "$WORK/key-before-rotation"
check "the old key no longer does (wrong key, exit 5)" 5 $?
check "the old key was shredded" no "$([ -e /root/office-old.key ] && echo yes || echo no)"

run_block access
grep -qx 'Doe_Jane_2026-03-01' "$WORK/output-access"
check "office staff see their office's case" 0 $?
check "a designer without a case sees nothing" 0 "$(grep -c 'SmithDental' "$WORK/output-access")"
run_block assign
check "the assignment takes effect without a remount" 1 \
  "$(grep -cx 'Doe_Jane_2026-03-01' "$WORK/output-assign")"
run_block audit
grep -q 'crown 16, zirconia' "$WORK/output-audit"
check "the designer reads the assigned case" 0 $?
grep -q 'open-read uid=[0-9]*(erin)' "$WORK/output-audit"
check "the audit log shows the designer's open" 0 $?
grep -q 'Doe\|Jane\|order.txt' /var/log/cadcanfs/office.audit
check "the audit log holds no name" 1 $?

systemctl stop cadcanfs@office.service
check "systemctl stop unmounts" no "$(mountpoint -q /srv/office/cases && echo yes || echo no)"
cadcanfs audit verify /var/log/cadcanfs/office.audit* --key-file /etc/cadcanfs/keys/office.key >/dev/null 2>&1
check "after the stop the audit log verifies" 0 $?
report "operations doc"
