#!/usr/bin/env bash
# systemd-analyze verify on every unit in systemd/ (works without systemd as PID 1).
# The units name /usr/bin/cadcanfs, which verify requires to exist: copies point at the
# built binary instead. Any output (an unknown key, a bad value) fails the test too.
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 PATH_TO_CADCANFS SYSTEMD_DIR}")
UNITS=$(realpath "${2:?usage: $0 PATH_TO_CADCANFS SYSTEMD_DIR}")
WORK=$(mktemp -d /tmp/cadcanfs-verify-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failed=0
for unit in "$UNITS"/*.service "$UNITS"/*.timer; do
  sed "s|/usr/bin/cadcanfs|$BIN|g" "$unit" >"$WORK/$(basename "$unit")"
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
exit "$failed"
