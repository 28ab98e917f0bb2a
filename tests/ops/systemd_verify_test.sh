#!/usr/bin/env bash
# systemd-analyze verify on every unit in systemd/ (works without systemd as PID 1).
# The units name /usr/bin/cadcanfs and /usr/libexec/cadcanfs/backup-vault.sh, which
# verify requires to exist: copies point at the built binary and at scripts/ instead.
# Any output (an unknown key, a bad value) fails the test too.
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 PATH_TO_CADCANFS SYSTEMD_DIR}")
UNITS=$(realpath "${2:?usage: $0 PATH_TO_CADCANFS SYSTEMD_DIR}")
SCRIPTS=$(realpath "$UNITS/../scripts")
WORK=$(mktemp -d /tmp/cadcanfs-verify-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failed=0
for unit in "$UNITS"/*.service "$UNITS"/*.timer; do
  sed -e "s|/usr/bin/cadcanfs|$BIN|g" -e "s|/usr/libexec/cadcanfs/|$SCRIPTS/|g" "$unit" \
    >"$WORK/$(basename "$unit")"
done
cd "$WORK" || exit 1
for unit in *; do
  instance=${unit/@./@office.}  # templates are verified as an instance
  if ! out=$(systemd-analyze verify --man=no "./$instance" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: $unit: $out"
    failed=1
  else
    echo "ok: $unit"
  fi
done
grep -q '^Type=notify$' cadcanfs@.service || { echo "FAIL: cadcanfs@.service is not Type=notify"; failed=1; }
grep -q '^LoadCredential=cadcanfs.key:/etc/cadcanfs/keys/%i.key$' cadcanfs@.service ||
  { echo "FAIL: cadcanfs@.service does not pass the key as a credential"; failed=1; }
# The backup unit never gets the key, and reads the vault with one capability only.
if grep -q '^LoadCredential' cadcanfs-backup@.service; then
  echo "FAIL: cadcanfs-backup@.service loads a credential"; failed=1
fi
grep -q '^InaccessiblePaths=-/etc/cadcanfs$' cadcanfs-backup@.service ||
  { echo "FAIL: cadcanfs-backup@.service can see /etc/cadcanfs (the keys)"; failed=1; }
grep -q '^ProtectHome=yes$' cadcanfs-backup@.service ||
  { echo "FAIL: cadcanfs-backup@.service can see /root (old keys)"; failed=1; }
grep -q '^CapabilityBoundingSet=CAP_DAC_READ_SEARCH$' cadcanfs-backup@.service ||
  { echo "FAIL: cadcanfs-backup@.service has more than CAP_DAC_READ_SEARCH"; failed=1; }
grep -q '^User=cadcanfs-backup$' cadcanfs-backup@.service ||
  { echo "FAIL: cadcanfs-backup@.service does not run as cadcanfs-backup"; failed=1; }
grep -q '^ExecStart=[^ ]* fsck --config /etc/cadcanfs/%i.conf$' cadcanfs-fsck@.service ||
  { echo "FAIL: cadcanfs-fsck@.service does not check the vault of /etc/cadcanfs/%i.conf"; failed=1; }
exit "$failed"
