# Shared helpers for the shell tests that mount OneDrive against the Graph emulator
# (tests/graph_emulator, 127.0.0.1 only). Source it after e2e_lib.sh and
# enter_scratch_dir; the emulator is stopped, and the scratch directory removed, at exit.
EMULATOR="$(dirname "${BASH_SOURCE[0]}")/../graph_emulator/graph_emulator.py"
emu_pid=""

stop_graph_emulator() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null; wait "$emu_pid" 2>/dev/null; fi
  emu_pid=""
}
stop_graph_emulator_and_clean_up() {
  for m in $(grep -o "$WORK/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
  stop_graph_emulator
  rm -rf "$WORK"
}

# Starts the emulator over the drive folder $WORK/drive (made if missing), with any
# extra emulator flags, and sets graph_url, login_url and control_url.
start_graph_emulator() {  # start_graph_emulator [EMULATOR_FLAGS...]
  mkdir -p "$WORK/drive"
  rm -f "$WORK/ports.json"
  python3 "$EMULATOR" --root "$WORK/drive" --port-file "$WORK/ports.json" \
    --device-code-interval 0 "$@" >>"$WORK/emulator.log" 2>&1 &
  emu_pid=$!
  trap stop_graph_emulator_and_clean_up EXIT
  for _ in $(seq 200); do [ -s "$WORK/ports.json" ] && break; sleep 0.05; done
  graph_url=$(emulator_port_of graph_url)
  login_url=$(emulator_port_of login_url)
  control_url=$(emulator_port_of control_url)
}
emulator_port_of() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$WORK/ports.json" "$1"
}

# Sends one request to the emulator's control API and prints the reply's body.
control() {  # control METHOD PATH [JSON]
  python3 - "$control_url$2" "$1" "${3:-{\}}" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method=sys.argv[2])
req.add_header("Content-Type", "application/json")
print(urllib.request.urlopen(req).read().decode())
PY
}
# One field of GET /counters, e.g. `counter requests graph.children` (0 if absent).
counter() {  # counter SECTION [KEY]
  control GET /counters | python3 -c '
import json, sys
c = json.load(sys.stdin)[sys.argv[1]]
print(c.get(sys.argv[2], 0) if len(sys.argv) > 2 else c)' "$@"
}

# Runs the device-code sign-in as a user would: `cadcanfs login` prints a code, which is
# approved through the control API. Prints login's exit code.
sign_in() {  # sign_in TOKEN_FILE KEYOPTS...
  local token_file=$1
  shift
  "$BIN" login --token-file "$token_file" --login-url "$login_url" "$@" >"$WORK/login.out" 2>&1 &
  local login_pid=$!
  for _ in $(seq 200); do grep -q "enter the code" "$WORK/login.out" && break; sleep 0.05; done
  local code
  code=$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' "$WORK/login.out")
  control POST /device/approve "{\"user_code\": \"$code\"}" >/dev/null
  wait "$login_pid"
  echo $?
}
