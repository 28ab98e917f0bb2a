#!/usr/bin/env bash
# cpack -G DEB from the build tree, then the package unpacked with dpkg -x into a clean
# directory: cadcanfs --version runs from there, the dependencies are declared, and the
# helper links, units (naming /usr/bin/cadcanfs), man page and examples are in place.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BUILD=$(realpath "${1:?usage: package_deb_test.sh BUILD_DIR SOURCE_DIR}")
SOURCE=$(realpath "${2:?usage: package_deb_test.sh BUILD_DIR SOURCE_DIR}")
WORK=$(mktemp -d /tmp/cadcanfs-deb-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/out" >cpack.log 2>&1
check "cpack -G DEB" 0 $?
deb=$(find out -name '*.deb' | head -n1)
check "a .deb was built" yes "$([ -f "$deb" ] && echo yes || echo no)"
depends=$(dpkg-deb -f "$deb" Depends)
for dependency in fuse3 libfuse3-3 libssl3 libcurl4 libc6 libstdc++6; do
  check "Depends names $dependency" yes "$(grep -qw "$dependency" <<<"$depends" && echo yes || echo no)"
done
dpkg -x "$deb" root
check "dpkg -x" 0 $?
root/usr/bin/cadcanfs --version >version 2>&1
check "cadcanfs --version runs from the unpacked package" 0 $?
check "--version names the release" 1 "$(grep -c '^cadcanfs [0-9]' version)"
check "--version names the vault formats" 1 "$(grep -c '^vault formats: reads 1 to 3, writes 2 (tree layout) and 3 (flat layout)$' version)"
check "--version names libfuse" 1 "$(grep -c '^libfuse 3\.' version)"
check "--version names OpenSSL" 1 "$(grep -c '^OpenSSL 3\.' version)"
check "--version names libcurl" 1 "$(grep -c '^libcurl [0-9]' version)"
for helper in mount.cadcanfs mount.fuse.cadcanfs; do
  check "$helper links to the binary" root/usr/bin/cadcanfs \
    "$(realpath --relative-to=. "root/usr/sbin/$helper")"
done
for unit in cadcanfs@.service cadcanfs-fsck@.service cadcanfs-fsck@.timer \
  cadcanfs-backup@.service cadcanfs-backup@.timer; do
  check "unit $unit installed" yes "$([ -f "root/usr/lib/systemd/system/$unit" ] && echo yes || echo no)"
done
check "the unit runs /usr/bin/cadcanfs" 1 \
  "$(grep -c '^ExecStart=/usr/bin/cadcanfs mount --config' root/usr/lib/systemd/system/cadcanfs@.service)"
# shellcheck disable=SC2016  # ${VAULT} and ${BACKUP} are the unit's, not the shell's
check "the backup unit runs the installed script" 1 \
  "$(grep -c '^ExecStart=/usr/libexec/cadcanfs/backup-vault.sh ${VAULT} ${BACKUP}$' \
    root/usr/lib/systemd/system/cadcanfs-backup@.service)"
for script in backup-vault.sh restore-vault.sh; do
  check "$script installed, executable" yes \
    "$([ -x "root/usr/libexec/cadcanfs/$script" ] && echo yes || echo no)"
done
check "the backup user is declared (sysusers.d)" 1 \
  "$(grep -c '^u cadcanfs-backup ' root/usr/lib/sysusers.d/cadcanfs.conf)"
check "the backup directory is declared (tmpfiles.d)" 1 \
  "$(grep -c '^d /var/backups/cadcanfs 0700 cadcanfs-backup ' root/usr/lib/tmpfiles.d/cadcanfs.conf)"
dpkg-deb -e "$deb" control
check "the postinst applies them" 2 "$(grep -cE 'systemd-(sysusers|tmpfiles --create) cadcanfs.conf' control/postinst)"
check "Recommends rsync" yes "$(dpkg-deb -f "$deb" Recommends | grep -qw rsync && echo yes || echo no)"
check "example backup config installed" yes \
  "$([ -f root/usr/share/doc/cadcanfs/examples/office.backup.conf ] && echo yes || echo no)"
check "man page installed" yes "$([ -s root/usr/share/man/man8/cadcanfs.8 ] && echo yes || echo no)"
check "example config installed" yes \
  "$([ -f root/usr/share/doc/cadcanfs/examples/office.conf ] && echo yes || echo no)"
check "OneDrive unit drop-in installed" yes \
  "$([ -f root/usr/share/doc/cadcanfs/examples/onedrive.conf ] && echo yes || echo no)"
check "operations guide installed" yes \
  "$([ -f root/usr/share/doc/cadcanfs/operations.md ] && echo yes || echo no)"
# The example config is valid as shipped (its vault and mountpoint need not exist).
cp root/usr/share/doc/cadcanfs/examples/office.conf . && chmod 644 office.conf
root/usr/bin/cadcanfs doctor --config office.conf >/dev/null 2>err
code=$?
check "the example config parses" yes "$([ "$code" != 31 ] && echo yes || echo no)"
check "the shipped unit matches the source" "$(sed -n 's/^ExecStart=//p' "$SOURCE/systemd/cadcanfs@.service")" \
  "$(sed -n 's/^ExecStart=//p' root/usr/lib/systemd/system/cadcanfs@.service)"
report "package deb"
