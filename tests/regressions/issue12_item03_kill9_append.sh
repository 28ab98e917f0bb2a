#!/usr/bin/env bash
# Issue 12, item 3, end to end: a writer appends records of odd sizes to a file on a
# real mount and fsyncs every few of them, logging the size each fsync made durable.
# The daemon is killed with SIGKILL mid-stream; after a remount the logged durable
# prefix must read back exactly. Several rounds, in both cache modes.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
BIN=$(realpath "${1:?usage: issue12_item03_kill9_append.sh PATH_TO_CADCANFS}")
enter_scratch_dir kill9

cat >writer.py <<'PY'
import os, sys
path, log_path = sys.argv[1], sys.argv[2]
def content(offset, n):
    return bytes(((offset + j) * 131 + (offset + j) // 7) % 251 for j in range(n))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
size = os.fstat(fd).st_size
log = open(log_path, "a")
sizes = [1, 7, 300, 4096, 5000, 10240, 32767, 32768, 40000, 3]
i = 0
try:
    while True:
        n = sizes[i % len(sizes)]
        os.write(fd, content(size, n))
        size += n
        i += 1
        if i % 3 == 0:
            os.fsync(fd)
            log.write("%d\n" % size)
            log.flush()
            os.fsync(log.fileno())
except OSError:
    pass
PY

cat >verify.py <<'PY'
import os, sys
path, durable = sys.argv[1], int(sys.argv[2])
def content(offset, n):
    return bytes(((offset + j) * 131 + (offset + j) // 7) % 251 for j in range(n))
fd = os.open(path, os.O_RDONLY)
got = b""
while len(got) < durable:
    chunk = os.pread(fd, durable - len(got), len(got))
    if not chunk:
        break
    got += chunk
sys.exit(0 if got == content(0, durable) else 1)
PY

"$BIN" keygen key >/dev/null
mkdir mnt
for mode in "" --writeback-cache; do
  label=${mode:-write-through}
  "$BIN" init "vault$mode" --key-file key >/dev/null
  for round in 1 2 3; do
    "$BIN" mount "vault$mode" mnt --key-file key $mode >out 2>&1
    pid=$(daemon_pid)
    : >"durable$mode.txt"
    python3 writer.py mnt/log.bin "durable$mode.txt" &
    writer=$!
    # Kill only once the writer is streaming (a loaded machine starts Python slowly).
    for _ in $(seq 1 500); do [ -s "durable$mode.txt" ] && break; sleep 0.02; done
    sleep "0.$((1 + round * 2))"
    kill -9 "$pid"
    wait "$writer" 2>/dev/null
    "$BIN" unmount mnt >/dev/null 2>&1
    check "$label round $round: remount" 0 "$(run mount "vault$mode" mnt --key-file key $mode)"
    durable=$(tail -n 1 "durable$mode.txt")
    durable=${durable:-0}
    [ "$durable" -gt 0 ]; check "$label round $round: the writer made progress" 0 $?
    python3 verify.py mnt/log.bin "$durable"
    check "$label round $round: the fsynced prefix ($durable bytes) reads back exactly" 0 $?
    size=$(stat -c %s mnt/log.bin)
    [ "$size" -ge "$durable" ]; check "$label round $round: the size covers the fsynced prefix" 0 $?
    "$BIN" unmount mnt >/dev/null 2>&1
    sleep 0.2
  done
  check "$label: fsck clean after the kills" 0 "$(run fsck "vault$mode" --key-file key)"
done
report "kill -9 append"
