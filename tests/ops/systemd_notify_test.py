#!/usr/bin/env python3
"""cadcanfs@.service run as systemd runs it (tests/ops/unit_harness.py): the key comes
only as a credential, READY=1 arrives only once the mount is usable, STATUS= names no
path or patient, SIGTERM syncs and unmounts cleanly, ExecStop unmounts, a wrong key
never reports READY, and ExecStartPre clears a dead mount left by a crash.

usage: systemd_notify_test.py CADCANFS UNIT_FILE
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from unit_harness import Checks, Unit, mounted  # noqa: E402

PATIENT = "Zzyzx_Patient"


def main():
    binary, unit_file = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="cadcanfs-notify-")
    try:
        return run(binary, unit_file, work)
    finally:
        for name in ("mnt",):
            subprocess.run(["umount", "-l", os.path.join(work, name)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def run(binary, unit_file, work):
    t = Checks()
    os.chdir(work)
    os.makedirs("src/" + PATIENT)
    with open("src/%s/scan.stl" % PATIENT, "wb") as f:
        f.write(b"solid scan\n" * 1000)
    os.mkdir("mnt")
    for command in (["keygen", "key"], ["keygen", "other.key"],
                    ["init", "vault", "--key-file", "key"],
                    ["encrypt", "vault", "src/", "--key-file", "key"]):
        subprocess.run([binary] + command, check=True, capture_output=True)
    with open("office.conf", "w") as conf:
        conf.write("vault = %s/vault\nmountpoint = %s/mnt\noptions = allow_other\n" % (work, work))
    os.environ.pop("CREDENTIALS_DIRECTORY", None)

    # READY=1 only once the mount answers: probed the moment the datagram arrives.
    def probe():
        try:
            with open("mnt/%s/scan.stl" % PATIENT, "rb") as f:
                content = f.read()
        except OSError:
            content = b""
        return mounted("mnt") and content == b"solid scan\n" * 1000

    unit = Unit(unit_file, "office", binary, work + "/office.conf", "key", work)
    ready, usable = unit.start(on_ready=probe)
    t.check("the service reports READY=1", True, ready)
    t.check("the mount is usable when READY=1 arrives", True, usable)
    first = "\n".join(unit.messages)
    t.check("READY=1 comes with the daemon's pid as MAINPID",
            "MAINPID=%d" % unit.process.pid in first, True)
    t.check("a STATUS= line is sent", "STATUS=Serving the vault" in first, True)
    t.check("no path in the notifications", work in first, False)
    t.check("no patient name in the notifications", PATIENT in first, False)
    secret = open("key").read().strip()
    cmdline = open("/proc/%d/cmdline" % unit.process.pid).read()
    environ = open("/proc/%d/environ" % unit.process.pid, "rb").read().decode(errors="replace")
    t.check("the key is not on the daemon's command line", False, secret in cmdline)
    t.check("no key path on the daemon's command line", False, "key" in cmdline.split("\0"))
    t.check("the key is not in the daemon's environment", False, secret in environ)
    t.check("the key comes as a credential", True, "CREDENTIALS_DIRECTORY=" in environ)

    # SIGTERM with a file open for writing: the data is synced, the mount goes away.
    written = os.urandom(100000)
    handle = open("mnt/%s/late.bin" % PATIENT, "wb")
    handle.write(written)
    handle.flush()
    code = unit.stop(use_exec_stop=False)
    try:
        handle.close()
    except OSError:
        pass
    t.check("SIGTERM: the daemon exits 0", 0, code)
    t.check("SIGTERM: STOPPING=1 is sent", any("STOPPING=1" in m for m in unit.messages), True)
    t.check("SIGTERM: the mount is gone", False, mounted("mnt"))
    subprocess.run([binary, "decrypt", "vault", "out", PATIENT + "/late.bin", "--key-file", "key"],
                   capture_output=True)
    late = open("out/%s/late.bin" % PATIENT, "rb").read() if os.path.exists(
        "out/%s/late.bin" % PATIENT) else b""
    t.check("SIGTERM: data written before it is in the vault", True, late == written)

    # ExecStop= unmounts; the daemon then exits 0 by itself.
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "key", work)
    ready, _ = unit.start()
    t.check("second start reports READY=1", True, ready)
    code = unit.stop(use_exec_stop=True)
    t.check("ExecStop: the daemon exits 0", 0, code)
    t.check("ExecStop: the mount is gone", False, mounted("mnt"))

    # A wrong key: the daemon fails with exit 5 and never says READY=1.
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "other.key", work)
    ready, _ = unit.start()
    t.check("wrong key: no READY=1", False, ready)
    t.check("wrong key: exit code 5", 5, unit.wait_exit())
    t.check("wrong key: nothing mounted", False, mounted("mnt"))

    # A crash (SIGKILL) leaves a dead mount; the next start clears it and mounts again
    # (what Restart=on-failure relies on).
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "key", work)
    ready, _ = unit.start()
    os.kill(unit.process.pid, signal.SIGKILL)
    unit.wait_exit()
    time.sleep(0.1)
    try:
        os.stat("mnt")
        dead = False
    except OSError:
        dead = True
    t.check("SIGKILL leaves a dead mount", True, dead)
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "key", work)
    ready, usable = unit.start(on_ready=probe)
    t.check("restart after a crash: READY=1 and a usable mount", (True, True), (ready, usable))
    t.check("restart after a crash: clean stop", 0, unit.stop())
    return t.report("systemd notify")


if __name__ == "__main__":
    sys.exit(main())
