# Shared helpers for the end-to-end shell tests. Source it after setting BIN (the
# cadcanfs binary) and WORK (the scratch directory); finish with `report NAME`.
passed=0
failed=0

check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1 (expected $2, got $3)"
  fi
}
# Runs cadcanfs with stdout in $WORK/out and stderr in $WORK/err; prints its exit code.
run() { "$BIN" "$@" >"$WORK/out" 2>"$WORK/err"; echo $?; }
# "yes" if the last run's error is one line starting "cadcanfs: " (one clear sentence).
one_line() { [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q '^cadcanfs: ' "$WORK/err" && echo yes || echo no; }
report() {  # report NAME: prints the tally; fails the test if any check failed
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}
# Damages FILE by inverting the byte at OFFSET. Inverting, not overwriting with a fixed
# value, so the file always changes (a fixed 0xff would be a no-op on 1 byte in 256).
flip_byte() {  # flip_byte FILE OFFSET
  local old
  old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((255 - old)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# Makes the scratch directory WORK (/tmp/cadcanfs-NAME-XXXXXX) and enters it; at exit,
# whatever is mounted below it is unmounted and it is removed.
enter_scratch_dir() {  # enter_scratch_dir NAME
  WORK=$(mktemp -d "/tmp/cadcanfs-$1-XXXXXX")
  trap remove_scratch_dir EXIT
  cd "$WORK" || exit 1
}
remove_scratch_dir() {
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
# The pid a background mount printed ("daemon pid N") in the last run's output.
daemon_pid() { sed -n 's/.*daemon pid \([0-9]*\).*/\1/p' "$WORK/out"; }
# Waits up to 10 s for process PID to end; fails if it does not.
wait_gone() { for _ in $(seq 1 500); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.02; done; return 1; }
