#!/usr/bin/env bash
# cadcanfs doctor on this machine, and on the same machine with parts of it changed
# inside a private mount namespace (unshare -m): a swap partition in /proc/swaps,
# core dumps handed to a crash handler, /dev/fuse missing, a loose key file, a config
# asking for allow_other as a non-root user without user_allow_other.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: doctor_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-doctor-test-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
chmod 755 "$WORK"
"$BIN" keygen key >/dev/null
# doctor's lines for CHECK; its exit code is the last line.
finding() { grep "$1" out | cut -c1-8 | tr -d ' '; }
in_namespace() {  # in_namespace SETUP_COMMANDS: runs doctor with SETUP done privately
  unshare -m --propagation private sh -c "$1 && exec \"$BIN\" doctor --key-file key" >out 2>err
  echo $?
}

check "doctor on this machine" 0 "$(run doctor --key-file key)"
check "FUSE checked with a test mount" ok "$(finding 'FUSE in the kernel: protocol 7\.[0-9]*, a test mount worked')"
check "/dev/fuse" ok "$(finding '^ok *\/dev\/fuse')"
check "the key file is fine" ok "$(finding 'key file: from --key-file')"
check "a summary line" 1 "$(grep -c '^cadcanfs doctor: 0 problems' out)"
check "the test mount is gone" 0 "$(grep -c cadcanfs-doctor /proc/self/mountinfo)"

chmod 644 key
check "loose key file: problem, exit 30" 30 "$(run doctor --key-file key)"
check "loose key file: named" problem "$(finding 'key file: .*readable by group or others')"
chmod 600 key

printf 'Filename\tType\tSize\tUsed\tPriority\n/dev/vda\tpartition\t1048572\t0\t-2\n' >swaps
check "unencrypted swap: exit 30" 30 "$(in_namespace "mount --bind $WORK/swaps /proc/swaps")"
check "unencrypted swap: problem" problem "$(finding 'swap: /dev/vda is not encrypted')"
printf 'Filename\tType\tSize\tUsed\tPriority\n/dev/zram0\tpartition\t1048572\t0\t100\n' >swaps
check "zram swap: fine" 0 "$(in_namespace "mount --bind $WORK/swaps /proc/swaps")"
check "zram swap: ok" ok "$(finding 'swap: encrypted or in RAM')"

echo '|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h' >pattern
check "crash handler: still no problem" 0 "$(in_namespace "mount --bind $WORK/pattern /proc/sys/kernel/core_pattern")"
check "crash handler: warning" warning "$(finding 'core dumps of other programs: handed to a crash handler')"
check "cadcanfs' own core dumps are off" ok "$(finding 'core dumps of cadcanfs: off')"

check "no /dev/fuse: exit 30" 30 "$(in_namespace "mount --bind /dev/null /dev/fuse")"
check "no /dev/fuse: problem" problem "$(finding '/dev/fuse: is not the FUSE character device')"

# A non-root user whose config asks for allow_other needs user_allow_other.
printf 'vault = %s/vault\nmountpoint = %s/mnt\noptions = allow_other\n' "$WORK" "$WORK" >user.conf
: >fuse.conf
unshare -m --propagation private sh -c "mount --bind $WORK/fuse.conf /etc/fuse.conf &&
  exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$BIN\" doctor --config user.conf" >out 2>&1
check "allow_other without user_allow_other: exit 30" 30 $?
check "allow_other without user_allow_other: problem" problem "$(finding 'user_allow_other: -o allow_other')"
echo user_allow_other >fuse.conf
unshare -m --propagation private sh -c "mount --bind $WORK/fuse.conf /etc/fuse.conf &&
  exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$BIN\" doctor --config user.conf" >out 2>&1
check "allow_other with user_allow_other" ok "$(finding 'user_allow_other: set in /etc/fuse.conf')"

check "doctor with a bad config: exit 31" 31 "$(printf 'bogus = 1\n' >bad.conf; run doctor --config bad.conf)"
check "doctor with a bad config: one line" yes "$(one_line)"
report "doctor"
