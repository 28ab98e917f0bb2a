"""Runs cadcanfs@.service the way systemd does, without systemd as PID 1.

The unit file itself is read: its ExecStartPre=, ExecStart= and ExecStop= lines run
with the built binary in place of /usr/bin/cadcanfs and a test config in place of
/etc/cadcanfs/%i.conf. Like systemd, the harness
  * binds a datagram socket and passes it as $NOTIFY_SOCKET (sd_notify(3) protocol),
    so the test sees READY=1, STATUS=, STOPPING=1 and MAINPID= as systemd would;
  * copies the key named by LoadCredential=cadcanfs.key:... into a fresh credentials
    directory (mode 0400) and passes it as $CREDENTIALS_DIRECTORY;
  * stops with ExecStop=, then SIGTERM to the main process if it is still running.
"""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def mounted(mountpoint):
    """Whether a mount sits exactly on `mountpoint` (from /proc/self/mountinfo)."""
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            if line.split()[4].replace("\\040", " ") == target:
                return True
    return False


def parse_unit(unit_path):
    """Returns {key: [values]} for the [Service] section of `unit_path`."""
    service = {}
    section = None
    with open(unit_path, encoding="utf-8") as unit:
        for raw in unit:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                service.setdefault(key, []).append(value)
    return service


class Unit:
    def __init__(self, unit_path, instance, binary, config_path, key_path, work):
        self.service = parse_unit(unit_path)
        self.instance = instance
        self.binary = binary
        self.config_path = config_path
        self.key_path = key_path
        self.work = work
        self.process = None
        self.messages = []
        self.socket = None
        self.log_path = os.path.join(work, "journal-" + instance)

    def command(self, line):
        """A unit command line as argv, with this test's binary and config."""
        line = line.replace("/etc/cadcanfs/%i.conf", self.config_path)
        line = line.replace("%i", self.instance)
        argv = shlex.split(line)
        if argv[0] == "/usr/bin/cadcanfs":
            argv[0] = self.binary
        return argv

    def credentials(self):
        (credential,) = self.service["LoadCredential"]
        name, source = credential.split(":", 1)
        assert name == "cadcanfs.key", credential
        assert source == "/etc/cadcanfs/keys/%i.key", credential
        directory = tempfile.mkdtemp(prefix="creds-", dir=self.work)
        shutil.copyfile(self.key_path, os.path.join(directory, name))
        os.chmod(os.path.join(directory, name), 0o400)
        return directory

    def environment(self):
        env = dict(os.environ)
        env["CREDENTIALS_DIRECTORY"] = self.credentials()
        env["NOTIFY_SOCKET"] = self.notify_path
        return env

    def run_exec(self, key, env):
        for line in self.service.get(key, []):
            ignore_failure = line.startswith("-")
            code = subprocess.run(self.command(line.lstrip("-")), env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True).returncode
            if code != 0 and not ignore_failure:
                return code
        return 0

    def receive(self, timeout):
        """Waits up to `timeout` s for one notify datagram; returns it or None."""
        self.socket.settimeout(timeout)
        try:
            data = self.socket.recv(4096).decode()
        except socket.timeout:
            return None
        self.messages.append(data)
        return data

    def start(self, on_ready=None, timeout=30):
        """ExecStartPre, then ExecStart. Returns (ready, probe result). `on_ready` runs
        the moment READY=1 arrives, before anything else happens."""
        self.notify_path = os.path.join(self.work, "notify-" + self.instance)
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.notify_path)
        env = self.environment()
        if self.run_exec("ExecStartPre", env) != 0:
            return False, None
        (exec_start,) = self.service["ExecStart"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(exec_start), env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(0.1)
            if message is not None and "READY=1" in message.split("\n"):
                return True, on_ready() if on_ready else None
            if message is None and self.process.poll() is not None:
                while self.receive(0.05) is not None:
                    pass
                return False, None
        raise AssertionError("no READY=1 and no exit within %d s" % timeout)

    def stop(self, use_exec_stop=True, timeout=30):
        """ExecStop (if asked), then SIGTERM if the daemon still runs. Returns its exit code."""
        if use_exec_stop:
            self.run_exec("ExecStop", self.environment())
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        while self.receive(0.05) is not None:
            pass
        self.socket.close()
        return code

    def wait_exit(self, timeout=30):
        return self.process.wait(timeout=timeout)


class Checks:
    """Counts checks like tests/testing/e2e_lib.sh and fails the test at the end."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, expected, actual):
        if expected == actual:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s (expected %r, got %r)" % (name, expected, actual))

    def report(self, name):
        print("%s: %d passed, %d failed" % (name, self.passed, self.failed))
        return 0 if self.failed == 0 else 1
