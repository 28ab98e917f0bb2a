#!/usr/bin/env bash
# The cost of the access layer (issue 9), as ratios against the same vault mounted
# without it, measured in the same run:
#
#   read-all: `cat` of 2,000 x 64 KiB files in one case, with --audit-log vs without
#             (limit: at most 10 % slower, ratio <= 1.10);
#   ls -lR:   10,000 files in 50 cases under 5 offices, with --policy (20 principals,
#             101 assignments) vs without (limit: ratio <= 1.15), on the shared mount
#             and through the user's own view (--user-view), whose kernel caches serve
#             that user only.
#
# Both run as a real user made here (useradd) through setpriv, on an allow_other
# mount, the way lab staff use it; the user is a designer assigned to every case, so
# both mounts list the same 10,000 entries. Each round mounts the one vault once per
# configuration, in turn (a vault has one writer), and the median of BENCH_ROUNDS
# rounds is reported. Every measurement starts on a fresh mount (the kernel's caches of
# the mount are empty) with the ciphertext in the page cache: what is measured is the
# daemon and the kernel's requests, not this shared machine's disk, whose cold reads
# varied by +-50 % between rounds. Called by scripts/bench.sh (target `access`); needs
# root.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath build/cadcanfs)
B=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench-access-XXXXXX")  # on the project's disk
chmod 755 "$B"
ROUNDS=${BENCH_ROUNDS:-5}
USER_NAME="ccbench$$"
GROUP_NAME="ccbenchg$$"
MNT="$B/mnt"

cleanup() {
  umount -l "$B/uview" 2>/dev/null || true
  umount -l "$MNT" 2>/dev/null || true
  userdel "$USER_NAME" 2>/dev/null || true
  groupdel "$GROUP_NAME" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT

groupadd "$GROUP_NAME"
useradd -M -N -s /bin/sh -G "$GROUP_NAME" "$USER_NAME"
as_user() { setpriv --reuid "$USER_NAME" --regid "$GROUP_NAME" --init-groups -- "$@"; }
# The ciphertext and its directories into the page cache.
warm_vault() { find "$B/vault" -type f -exec cat {} + >/dev/null; }
now() { date +%s.%N; }
seconds_since() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

# ---- the vault: 5 offices x 10 cases x 200 files, and a 2,000-slice scan in a 6th ----
offices=(Office01 Office02 Office03 Office04 Office05)
cases=()
for o in "${offices[@]}"; do
  for c in $(seq -w 1 10); do
    case_dir="$B/src/$o/Patient${c}_Name_2026-0${c: -1}-01"
    mkdir -p "$case_dir"
    (cd "$case_dir" && touch $(seq -f "scan%g.stl" 1 200))
    cases+=("$o/$(basename "$case_dir")")
  done
done
mkdir -p "$B/src/Imaging/Scan_Case/slices"
for i in $(seq 1 2000); do head -c 65536 /dev/urandom >"$B/src/Imaging/Scan_Case/slices/s$i.dcm"; done
chmod -R a+rX "$B/src"
"$BIN" keygen "$B/key" >/dev/null
"$BIN" init "$B/vault" --key-file "$B/key" >/dev/null
"$BIN" encrypt "$B/vault" "$B/src/" --key-file "$B/key" >/dev/null
chmod -R a+rX "$B/vault"  # the mount shows the vault's modes: the user must get in
rm -rf "$B/src"

# ---- the policy: 20 principals (5 office staffs by group, 15 designers by user) and
# 101 assignments; the bench user is one designer, assigned to all 50 cases ----
{
  echo '{"version": 1, "case_depth": 2, "principals": {'
  for i in 1 2 3 4 5; do
    printf '"staff%d": {"groups": [%d], "role": "office", "office": "Office0%d"},\n' \
      "$i" $((61000 + i)) "$i"
  done
  for i in $(seq 1 14); do
    printf '"designer%d": {"users": [%d], "role": "designer"},\n' "$i" $((62000 + i))
  done
  printf '"bench": {"users": ["%s"], "role": "designer"}' "$USER_NAME"
  echo '}, "assignments": ['
  sep=""
  for i in "${!cases[@]}"; do
    office=${cases[$i]%%/*}
    case_name=${cases[$i]#*/}
    printf '%s{"principal": "bench", "office": "%s", "case": "%s", "access": "read"}' \
      "$sep" "$office" "$case_name"
    sep=",
"
    printf '%s{"principal": "designer%d", "office": "%s", "case": "%s", "access": "write"}' \
      "$sep" $((i % 14 + 1)) "$office" "$case_name"
  done
  printf '%s{"principal": "bench", "office": "Imaging", "case": "Scan_Case", "access": "read"}' "$sep"
  echo ']}'
} >"$B/policy.json"
chmod 600 "$B/policy.json"
"$BIN" policy check "$B/policy.json" >/dev/null

mkdir "$MNT"
# The bench user's own view (mount --user-view): the directory's owner is its user.
mkdir -m 700 "$B/uview" && chown "$USER_NAME" "$B/uview"
mount_with() {  # mount_with FLAGS...: mounts the vault at $MNT (allow_other)
  "$BIN" mount "$B/vault" "$MNT" --key-file "$B/key" -o allow_other "$@" >/dev/null
}
unmount() { "$BIN" unmount "$MNT" >/dev/null; }
time_readall() {
  warm_vault
  local t0
  t0=$(now)
  as_user sh -c "cat '$MNT'/Imaging/Scan_Case/slices/* >/dev/null" || exit 1
  seconds_since "$t0"
}
time_ls() {  # time_ls [ROOT]: ls -lR of the offices under ROOT (default: the mount)
  local root=${1:-$MNT}
  warm_vault
  local t0 entries
  t0=$(now)
  entries=$(cd / && as_user ls -lR "${offices[@]/#/$root/}" | grep -c '^-')
  seconds_since "$t0"
  if [ "$entries" != 10000 ]; then
    echo "bench_access: ls -lR saw $entries files, not 10000" >&2
    exit 1
  fi
}

declare -A SAMPLES
configs=(plain audit policy userview)
for _ in $(seq 1 "$ROUNDS"); do
  for cfg in "${configs[@]}"; do
    case $cfg in
      plain) mount_with ;;
      audit) mount_with --audit-log "$B/audit.log" ;;
      policy) mount_with --policy "$B/policy.json" ;;
      userview) mount_with --policy "$B/policy.json" --user-view "$B/uview" ;;
    esac
    case $cfg in
      plain | audit) SAMPLES[$cfg.readall]+=" $(time_readall)" ;;
    esac
    case $cfg in
      plain | policy) SAMPLES[$cfg.ls]+=" $(time_ls)" ;;
      userview) SAMPLES[$cfg.ls]+=" $(time_ls "$B/uview")" ;;
    esac
    unmount
  done
done
declare -A R
for key in "${!SAMPLES[@]}"; do
  # shellcheck disable=SC2086  # the samples are a space-separated list on purpose
  R[$key]=$(median ${SAMPLES[$key]})
done
"$BIN" audit verify "$B/audit.log" --key-file "$B/key" >/dev/null

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
verdict() { python3 -c "print('ok' if $1 <= $2 else 'OVER LIMIT')"; }
echo
echo "access control cost, $(nproc) cores, median of $ROUNDS rounds, fresh mounts, ciphertext cached"
printf '%-44s %9s %9s %7s %7s\n' metric without with ratio limit
r=$(ratio "${R[audit.readall]}" "${R[plain.readall]}")
printf '%-44s %9s %9s %7s %7s %s\n' "read 2,000 x 64 KiB, --audit-log (s)" \
  "${R[plain.readall]}" "${R[audit.readall]}" "$r" 1.10 "$(verdict "$r" 1.10)"
r=$(ratio "${R[policy.ls]}" "${R[plain.ls]}")
printf '%-44s %9s %9s %7s %7s %s\n' "ls -lR 10,000 files, --policy (s)" \
  "${R[plain.ls]}" "${R[policy.ls]}" "$r" 1.15 "$(verdict "$r" 1.15)"
r=$(ratio "${R[userview.ls]}" "${R[plain.ls]}")
printf '%-44s %9s %9s %7s %7s %s\n' "ls -lR, --policy, the user's own view (s)" \
  "${R[plain.ls]}" "${R[userview.ls]}" "$r" 1.15 "$(verdict "$r" 1.15)"
echo "audit lines written: $(wc -l <"$B/audit.log")"
echo "raw samples:"
for key in $(printf '%s\n' "${!SAMPLES[@]}" | sort); do echo "  $key:${SAMPLES[$key]}"; done
