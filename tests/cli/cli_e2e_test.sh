#!/usr/bin/env bash
# End-to-end test of the cadcanfs CLI: every step a backup operator takes, plus the
# error cases, each checked for its documented exit code.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: cli_e2e_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# A plaintext tree with awkward names, a sparse file, empty files and a symlink.
mkdir -p src/"Doe, Jane #7"/cbct src/"caf$(printf '\xc3\xa9')" src/"$(printf 'L%.0s' $(seq 1 200))"
head -c 3000000 /dev/urandom >src/"Doe, Jane #7"/cbct/"slice 001.dcm"
printf 'x' >src/"Doe, Jane #7"/"100% done: yes.txt"
: >src/empty
truncate -s 5M src/sparse && printf 'tail' >>src/sparse
ln -s "Doe, Jane #7/100% done: yes.txt" src/link
head -c 1234 /dev/urandom >src/"$(printf 'L%.0s' $(seq 1 200))"/"$(printf 'n%.0s' $(seq 1 255))"

check "keygen" 0 "$(run keygen k1)"
check "keygen refuses overwrite" 9 "$(run keygen k1)"; check "keygen refuses overwrite: one line" yes "$(one_line)"
check "key file is 0600" 600 "$(stat -c %a k1)"
check "init" 0 "$(run init vault --key-file k1)"
check "init refuses a non-empty directory" 7 "$(run init vault --key-file k1)"
check "info without a key" 0 "$(run info vault)"
grep -q "file keys" out && ! grep -qi "$(head -c 16 k1)" out || check "info shows no secret" 0 1
check "encrypt" 0 "$(run encrypt vault src/ --key-file k1)"
if grep -rqa "Doe, Jane" vault; then check "no plaintext name in vault" 0 1; fi
check "fsck clean" 0 "$(run fsck vault --key-file k1)"
check "decrypt" 0 "$(run decrypt vault restored --key-file k1)"
diff -r --no-dereference src restored >/dev/null; check "diff -r after decrypt" 0 $?

# map both ways, and a partial restore of one patient's folder from a backup copy.
check "map to cipher" 0 "$(run map vault "Doe, Jane #7/cbct" --key-file k1)"
cipher=$(sed 's/^ciphertext: //' out)
[ -d "vault/$cipher" ]; check "mapped cipher path exists" 0 $?
check "map back to plain" 0 "$(run map vault "vault/$cipher" --key-file k1)"
[ "$(cat out)" = "plaintext: Doe, Jane #7/cbct" ]; check "map round trip" 0 $?
cp -a vault backup
check "decrypt one folder from a backup copy" 0 "$(run decrypt backup partial "Doe, Jane #7" --key-file k1)"
diff -r src/"Doe, Jane #7" partial/"Doe, Jane #7" >/dev/null; check "partial restore equal" 0 $?

# Error cases: one sentence each, stable exit codes.
check "missing vault" 3 "$(run fsck nowhere --key-file k1)"; check "missing vault: one line" yes "$(one_line)"
check "not a vault" 3 "$(run fsck src --key-file k1)"
check "wrong argument" 2 "$(run fsck)"
check "decrypt of a missing path" 10 "$(run decrypt vault none "No One/scan.stl" --key-file k1)"
check "decrypt of a missing top-level path" 10 "$(run decrypt vault none "No One" --key-file k1)"
check "unknown option" 2 "$(run fsck vault --bogus)"
check "unknown command" 2 "$(run frobnicate)"
"$BIN" keygen k2 >/dev/null
check "wrong key" 5 "$(run fsck vault --key-file k2)"; check "wrong key: one line" yes "$(one_line)"
cp k1 loose && chmod 644 loose
check "loose key file permissions" 4 "$(run fsck vault --key-file loose)"
check "unreadable key file" 4 "$(run fsck vault --key-file /nonexistent/key)"
printf 'short' >badkey && chmod 600 badkey
check "malformed key file" 4 "$(run fsck vault --key-file badkey)"
check "no key given" 4 "$(run fsck vault)"
cp -a vault corrupt && printf '{garbage' >corrupt/cadcanfs.conf
check "corrupt config" 6 "$(run fsck corrupt --key-file k1)"
cp -a vault edited && sed -i 's/"block_size": 32768/"block_size": 65536/' edited/cadcanfs.conf
check "edited config" 6 "$(run fsck edited --key-file k1)"

# fsck reports damage by ciphertext path and file id (exit 20); plaintext names only
# with --show-names.
cp -a vault damaged
"$BIN" map damaged "Doe, Jane #7/cbct/slice 001.dcm" --key-file k1 >out
victim_cipher=$(sed 's/^ciphertext: //' out)
victim=damaged/$victim_cipher
printf '\xff' | dd of="$victim" bs=1 seek=5000 conv=notrunc status=none
check "fsck finds damage" 20 "$(run fsck damaged --key-file k1)"
grep -q "slice 001.dcm\|Doe, Jane" out err; check "fsck prints no plaintext name by default" 1 $?
grep -qF "damaged: $victim_cipher fid:" out; check "fsck prints the cipher path and file id" 0 $?
check "fsck --show-names" 20 "$(run fsck damaged --key-file k1 --show-names)"
grep -q "slice 001.dcm" out; check "fsck --show-names names the plaintext path" 0 $?
check "decrypt of damaged file fails" 8 "$(run decrypt damaged dmg-out --key-file k1)"

# FIFOs, sockets and device nodes: encrypted as nodes under encrypted names, restored
# as such; a device node that cannot be created is counted and makes decrypt exit 21.
mkdir nodes && mkfifo nodes/"pipe Doe" && python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" nodes/sock
mknod nodes/null c 1 3 2>/dev/null
cp -a vault nvault
check "encrypt special files" 0 "$(run encrypt nvault nodes/ --key-file k1)"
if find nvault -name '*Doe*' | grep -q .; then check "no plaintext node name in vault" 0 1; fi
check "fsck with special files" 0 "$(run fsck nvault --key-file k1)"
check "decrypt special files" 0 "$(run decrypt nvault nrestored --key-file k1)"
[ -p nrestored/"pipe Doe" ] && [ -S nrestored/sock ]; check "fifo and socket restored" 0 $?
if [ -c nodes/null ]; then
  [ -c nrestored/null ]; check "device node restored as root" 0 $?
  setpriv --inh-caps=-mknod --bounding-set=-mknod "$BIN" decrypt nvault nocap --key-file k1 >out 2>err
  check "decrypt without CAP_MKNOD is incomplete" 21 $?
  check "decrypt incomplete: one line" yes "$(one_line)"
fi

# Key rotation, then restore with only the new key.
check "rekey" 0 "$(run rekey vault --key-file k1 --new-key-file k2)"
check "old key refused after rekey" 5 "$(run fsck vault --key-file k1)"
check "decrypt with only the new key" 0 "$(run decrypt vault restored2 --key-file k2)"
diff -r --no-dereference src restored2 >/dev/null; check "diff -r after rekey" 0 $?
check "rekey rerun is a no-op" 0 "$(run rekey vault --key-file k1 --new-key-file k2)"

# A kill in the middle of rekey, then a rerun.
"$BIN" keygen k3 >/dev/null
CADCANFS_TEST_REKEY_CRASH_AFTER=2 "$BIN" rekey vault --key-file k2 --new-key-file k3 >/dev/null 2>&1
check "rekey killed mid-way" 99 $?
check "old key still reads everything" 0 "$(run decrypt vault mid --key-file k2)"
diff -r --no-dereference src mid >/dev/null; check "diff -r mid-rekey" 0 $?
check "rekey rerun finishes" 0 "$(run rekey vault --key-file k2 --new-key-file k3)"
check "fsck with the newest key" 0 "$(run fsck vault --key-file k3)"
check "decrypt after rerun" 0 "$(run decrypt vault final --key-file k3)"
diff -r --no-dereference src final >/dev/null; check "diff -r after rerun" 0 $?

# Passphrase vaults.
printf 'correct horse battery staple\n' >pass && chmod 600 pass
check "init with passphrase" 0 "$(run init pvault --passphrase-file pass)"
check "encrypt with passphrase" 0 "$(run encrypt pvault src/ --passphrase-file pass)"
printf 'wrong horse battery staple\n' >badpass && chmod 600 badpass
check "wrong passphrase" 5 "$(run fsck pvault --passphrase-file badpass)"
# systemd credential
mkdir creds && cp k3 creds/cadcanfs.key
CREDENTIALS_DIRECTORY=$WORK/creds "$BIN" fsck vault >/dev/null 2>&1
check "systemd credential" 0 $?

report "cli e2e"
