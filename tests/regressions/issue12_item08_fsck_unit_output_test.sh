#!/usr/bin/env bash
# Issue 12, item 8: fsck printed plaintext paths, and the shipped fsck unit sent them to
# the journal. A vault with a distinctive plaintext name and damage is checked the way
# the unit runs it (its ExecStart line, its credential, stdout and stderr captured as
# the journal would get them; the vault named by a test copy of its config file); the
# name must not appear. With --show-names it must.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: $0 PATH_TO_CADCANFS PATH_TO_FSCK_UNIT}")
UNIT=$(realpath "${2:?usage: $0 PATH_TO_CADCANFS PATH_TO_FSCK_UNIT}")
WORK=$(mktemp -d /tmp/cadcanfs-item08-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

MARKER=Zzyzx_Patient
mkdir -p src/"$MARKER"/cbct
head -c 200000 /dev/urandom >src/"$MARKER"/cbct/"${MARKER}_slice.dcm"
"$BIN" keygen key >/dev/null
"$BIN" init vault --key-file key >/dev/null
"$BIN" encrypt vault src/ --key-file key >/dev/null
victim=vault/$("$BIN" map vault "$MARKER/cbct/${MARKER}_slice.dcm" --key-file key | sed 's/^ciphertext: //')
flip_byte "$victim" 5000

# The unit's command line, with the binary and the config (/etc/cadcanfs/%i.conf, which
# names the vault) of this test.
printf 'vault = %s\nmountpoint = %s\n' "$WORK/vault" "$WORK/mnt" >office.conf
chmod 644 office.conf
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
check "the unit has one ExecStart" 1 "$(printf '%s\n' "$exec_start" | grep -c .)"
case "$exec_start" in *--show-names*) check "the unit never passes --show-names" no yes ;; esac
case "$exec_start" in *"/etc/cadcanfs/%i.conf"*) ;; *) check "the unit reads /etc/cadcanfs/%i.conf" no yes ;; esac
read -r -a argv <<<"$exec_start"
argv[0]=$BIN
for i in "${!argv[@]}"; do argv[$i]=${argv[$i]//\/etc\/cadcanfs\/%i.conf/$WORK/office.conf}; done

# The key comes as the unit's credential.
mkdir creds && cp key creds/cadcanfs.key && chmod 600 creds/cadcanfs.key
if systemd-run --wait --pipe --quiet -p LoadCredential=cadcanfs.key:"$WORK"/key true >/dev/null 2>&1; then
  systemd-run --wait --pipe --quiet -p LoadCredential=cadcanfs.key:"$WORK"/key \
    "${argv[@]}" >journal 2>&1
  code=$?
  echo "ran the unit command under systemd-run"
else
  # No systemd manager here: run it as systemd would, with the credential directory
  # and both output streams captured into one "journal".
  CREDENTIALS_DIRECTORY=$WORK/creds "${argv[@]}" >journal 2>&1 </dev/null
  code=$?
  echo "ran the unit command with its output captured (no systemd manager)"
fi
check "fsck from the unit finds the damage" 20 "$code"
grep -q "$MARKER" journal; check "no plaintext name in the unit's output" 1 $?
grep -q "fid:" journal; check "the damaged file is named by its file id" 0 $?
grep -qF "${victim#vault/}" journal; check "the damaged file's ciphertext path is shown" 0 $?

CREDENTIALS_DIRECTORY=$WORK/creds "$BIN" fsck vault --show-names >terminal 2>&1
check "fsck --show-names finds the damage" 20 $?
grep -q "$MARKER" terminal; check "--show-names prints the plaintext path" 0 $?

report "issue12 item08"
