#!/usr/bin/env python3
"""A stand-in for systemctl, for tests that run docs/operations.md without systemd as
PID 1 (tests/ops/operations_doc_test.sh). It runs the INSTALLED units from
/usr/lib/systemd/system the way systemd would, as far as the test can observe:

  * cadcanfs@NAME.service (Type=notify) through tests/ops/unit_harness.py: its
    ExecStartPre=, ExecStart= with a notify socket and the LoadCredential= key, and
    ExecStop= then SIGTERM on stop. `start` returns once READY=1 arrived.
  * Type=oneshot units (cadcanfs-backup@, cadcanfs-fsck@): EnvironmentFile= and ${VAR}
    in ExecStart=, LoadCredential=, and the sandbox settings that decide what the
    process can read: User=/Group= with AmbientCapabilities= and
    CapabilityBoundingSet= (setpriv), InaccessiblePaths=, ProtectHome=yes,
    PrivateTmp=yes (a private mount namespace) and UMask=. The rest of the sandbox is
    checked by systemd-analyze verify (ops_systemd_verify).
  * `enable --now X.timer` checks the timer and its service are installed.

usage: systemctl (start|stop|status|enable --now) UNIT
       systemctl exec UNIT -- COMMAND...   (COMMAND in UNIT's sandbox; for tests)
State (pids, journals) lives in $SHIM_STATE.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from unit_harness import Unit, parse_unit  # noqa: E402

UNIT_DIR = "/usr/lib/systemd/system"
STATE = os.environ.get("SHIM_STATE", "/run/systemctl-shim")


def split_name(unit):
    """cadcanfs@office.service -> (path of cadcanfs@.service, "office")."""
    stem, suffix = unit.rsplit(".", 1)
    prefix, instance = stem.split("@", 1)
    return os.path.join(UNIT_DIR, "%s@.%s" % (prefix, suffix)), instance


def state_file(unit):
    return os.path.join(STATE, unit + ".json")


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def start_notify(unit, path, instance):
    service = Unit(path, instance, "/usr/bin/cadcanfs", "/etc/cadcanfs/%s.conf" % instance,
                   "/etc/cadcanfs/keys/%s.key" % instance, STATE)
    ready, _ = service.start()
    if not ready:
        print("Job for %s failed." % unit, file=sys.stderr)
        return 1
    with open(state_file(unit), "w", encoding="utf-8") as f:
        json.dump({"pid": service.process.pid, "messages": service.messages}, f)
    return 0


def stop_notify(unit, path, instance):
    if not os.path.exists(state_file(unit)):
        return 0
    with open(state_file(unit), encoding="utf-8") as f:
        pid = json.load(f)["pid"]
    service = Unit(path, instance, "/usr/bin/cadcanfs", "/etc/cadcanfs/%s.conf" % instance,
                   "/etc/cadcanfs/keys/%s.key" % instance, STATE)
    service.run_exec("ExecStop", dict(os.environ))
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        while alive(pid):
            time.sleep(0.05)
    os.unlink(state_file(unit))
    return 0


def environment_file(lines):
    """NAME=value lines of the EnvironmentFile= (systemd's syntax, no quoting)."""
    values = {}
    for line in lines:
        path = line.lstrip("-")
        with open(path, encoding="utf-8") as f:
            for raw in f:
                raw = raw.strip()
                if raw and not raw.startswith("#") and "=" in raw:
                    name, value = raw.split("=", 1)
                    values[name] = value
    return values


def sandboxed(service, argv):
    """argv wrapped in the unit's mount namespace and credentials, as a shell line."""
    hidden = [p.lstrip("-") for line in service.get("InaccessiblePaths", []) for p in line.split()]
    if service.get("ProtectHome", ["no"])[-1] == "yes":
        hidden += ["/root", "/home", "/run/user"]
    steps = ["cd /"]
    if service.get("PrivateTmp", ["no"])[-1] == "yes":
        steps += ["mount -t tmpfs -o mode=1777 tmpfs /tmp", "mount -t tmpfs -o mode=1777 tmpfs /var/tmp"]
    for path in hidden:
        if os.path.isdir(path):
            steps.append("mount -t tmpfs -o ro,mode=000 none %s" % shlex.quote(path))
    if "UMask" in service:
        steps.append("umask %s" % service["UMask"][-1])
    command = []
    if "User" in service:
        caps = [c.strip().lower().replace("cap_", "")
                for line in service.get("AmbientCapabilities", []) for c in line.split()]
        bounding = [c.strip().lower().replace("cap_", "")
                    for line in service.get("CapabilityBoundingSet", []) for c in line.split()]
        plus = lambda names: ",".join(["-all"] + ["+" + n for n in names])  # noqa: E731
        command = ["setpriv", "--reuid=" + service["User"][-1],
                   "--regid=" + service.get("Group", service["User"])[-1], "--clear-groups",
                   "--inh-caps=" + plus(caps), "--ambient-caps=" + plus(caps),
                   "--bounding-set=" + plus(bounding)]
        if service.get("NoNewPrivileges", ["no"])[-1] == "yes":
            command.append("--no-new-privs")
        command.append("--")
    steps.append("exec " + " ".join(shlex.quote(a) for a in command + argv))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", " && ".join(steps)]


def run_oneshot(unit, path, instance, override=None):
    service = parse_unit(path)
    env = dict(os.environ)
    values = environment_file([line.replace("%i", instance)
                               for line in service.get("EnvironmentFile", [])])
    env.update(values)
    cleanup = []
    for credential in service.get("LoadCredential", []):
        name, source = credential.replace("%i", instance).split(":", 1)
        # Outside /tmp, which PrivateTmp= hides, as systemd's /run/credentials is.
        directory = tempfile.mkdtemp(prefix="cadcanfs-shim-credentials-", dir="/run")
        cleanup.append(directory)
        with open(source, "rb") as src, open(os.path.join(directory, name), "wb") as dst:
            dst.write(src.read())
        os.chmod(os.path.join(directory, name), 0o400)
        env["CREDENTIALS_DIRECTORY"] = directory
    if override:
        argv = override
    else:
        (line,) = service["ExecStart"]
        argv = [values.get(a[2:-1], "") if a.startswith("${") and a.endswith("}") else a
                for a in shlex.split(line.replace("%i", instance))]
    journal = os.path.join(STATE, "journal-" + unit)
    try:
        with open(journal, "ab") as log:
            code = subprocess.run(sandboxed(service, argv), env=env, stdin=subprocess.DEVNULL,
                                  stdout=None if override else log,
                                  stderr=None if override else log).returncode
    finally:
        for directory in cleanup:
            shutil.rmtree(directory, ignore_errors=True)
    if code != 0 and not override:
        print("Job for %s failed (exit %d); see %s." % (unit, code, journal), file=sys.stderr)
        return 1
    return code


def main(args):
    os.makedirs(STATE, exist_ok=True)
    if args[:2] == ["enable", "--now"]:
        args = ["start", args[2]]
    verb, unit = args[0], args[1]
    path, instance = split_name(unit)
    if not os.path.exists(path):
        print("Unit %s not found." % unit, file=sys.stderr)
        return 5
    if unit.endswith(".timer"):
        service_path = path[: -len(".timer")] + ".service"
        return 0 if verb in ("start", "stop") and os.path.exists(service_path) else 5
    notify = parse_unit(path).get("Type", ["simple"])[-1] == "notify"
    if verb == "exec":
        return run_oneshot(unit, path, instance, override=args[3:])
    if verb == "start":
        return start_notify(unit, path, instance) if notify else run_oneshot(unit, path, instance)
    if verb == "stop":
        return stop_notify(unit, path, instance) if notify else 0
    if verb == "restart":
        if notify:
            stop_notify(unit, path, instance)
            return start_notify(unit, path, instance)
        return run_oneshot(unit, path, instance)
    if verb == "status":
        if not os.path.exists(state_file(unit)):
            print("%s: inactive" % unit)
            return 3
        with open(state_file(unit), encoding="utf-8") as f:
            state = json.load(f)
        running = alive(state["pid"])
        print("%s: %s" % (unit, "active (running)" if running else "failed"))
        for message in state["messages"]:
            for line in message.split("\n"):
                if line.startswith("STATUS="):
                    print("  Status: \"%s\"" % line[len("STATUS="):])
        return 0 if running else 3
    print("systemctl shim: %s is not supported" % verb, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
