#!/usr/bin/env bash
# The mount(8) helper, called as mount(8) calls it and through mount(8) itself with an
# fstab file (mount -T). mount(8) only looks for helpers in /sbin, so those runs happen
# in a private mount namespace whose /usr/sbin holds mount.fuse.cadcanfs (and
# mount.fuse3 for the cadcanfs#VAULT form) and nothing else. mount.fuse3 runs
# `cadcanfs` from a PATH that mount(8) resets; /usr/local/sbin, first on it, gets ours.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: fstab_helper_test.sh PATH_TO_CADCANFS}")
WORK=$(mktemp -d /tmp/cadcanfs-fstab-XXXXXX)
trap 'umount -l "$WORK/mnt" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
mkdir -p src/"Doe, Jane" mnt sbin bin
echo "scan" >src/"Doe, Jane"/scan.stl
"$BIN" keygen key >/dev/null
"$BIN" init vault --key-file key >/dev/null
"$BIN" encrypt vault src/ --key-file key >/dev/null
ln -s "$BIN" sbin/mount.fuse.cadcanfs
ln -s "$BIN" sbin/mount.cadcanfs
cp /usr/sbin/mount.fuse3 sbin/mount.fuse
ln -s "$BIN" bin/cadcanfs
readable() { [ "$(cat "$1/Doe, Jane/scan.stl" 2>/dev/null)" = scan ] && echo yes || echo no; }

# As mount(8) calls the helper (it strips x-* and nofail itself; keep them anyway).
sbin/mount.cadcanfs "$WORK/vault" "$WORK/mnt" -o rw,key_file="$WORK/key",allow_other,nosuid,nodev,x-systemd.automount,nofail,_netdev -t fuse.cadcanfs
check "helper: mounts" 0 $?
check "helper: the vault reads" yes "$(readable mnt)"
check "helper: FUSE options reach the mount" 1 "$(grep -c " $WORK/mnt .*nosuid,nodev.* - fuse.cadcanfs .*allow_other" /proc/self/mountinfo)"
check "helper: unmount" 0 "$(run unmount mnt)"
check "helper -f (fake): mounts nothing" 0 "$(sbin/mount.cadcanfs "$WORK/vault" "$WORK/mnt" -f -o key_file="$WORK/key"; echo $?)"
check "helper -f: nothing mounted" 0 "$(grep -c " $WORK/mnt " /proc/self/mountinfo)"
sbin/mount.cadcanfs "$WORK/vault" "$WORK/mnt" -o key_file="$WORK/nokey" 2>err
check "helper: a missing key file is a key problem (4)" 4 $?
check "helper: one line" yes "$(one_line)"
sbin/mount.cadcanfs "$WORK/vault" "$WORK/mnt" -o key_file="$WORK/key",frobnicate 2>err
check "helper: an unknown FUSE option is a usage error (2)" 2 $?

# Through mount(8): fstab lines with type fuse.cadcanfs (also with x-systemd.automount,
# which systemd's generator reads and mount(8) drops) and the cadcanfs#VAULT form.
cat >fstab <<FSTAB
$WORK/vault $WORK/mnt fuse.cadcanfs key_file=$WORK/key,allow_other,nofail,x-systemd.automount 0 0
FSTAB
cat >fstab-legacy <<FSTAB
cadcanfs#$WORK/vault $WORK/mnt fuse key_file=$WORK/key,allow_other 0 0
FSTAB
through_mount() {  # through_mount FSTAB: mount MNT from FSTAB, read, unmount, in a namespace
  unshare -m --propagation private sh -c "
    mount --bind '$WORK/sbin' /usr/sbin && mount --bind '$WORK/bin' /usr/local/sbin &&
    mount -T '$WORK/$1' '$WORK/mnt' &&
    cat '$WORK/mnt/Doe, Jane/scan.stl' &&
    umount '$WORK/mnt'" 2>err
}
check "mount -T fstab (fuse.cadcanfs)" scan "$(through_mount fstab | tail -n1)"
check "mount -T fstab (cadcanfs#VAULT)" scan "$(through_mount fstab-legacy | tail -n1)"
sleep 0.2
check "nothing left mounted" 0 "$(grep -c " $WORK/mnt " /proc/self/mountinfo)"
report "fstab helper"
