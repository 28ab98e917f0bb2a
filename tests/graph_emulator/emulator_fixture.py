"""Start the Graph emulator for a test, and talk to it.

    from emulator_fixture import EmulatorProcess
    with EmulatorProcess(["--latency-ms", "20"]) as emu:
        emu.info["graph_url"], emu.info["login_url"], emu.root
        emu.control("POST", "/device/approve")
        status, headers, body = http_request("GET", emu.info["graph_url"] + "/me/drive",
                                             headers=emu.bearer())

The emulator runs as a child process on ephemeral ports in a fresh temporary folder
(the drive is <tmp>/root); stop() (or leaving the with block, or interpreter exit)
terminates it with SIGTERM and removes the folder.
"""

import atexit
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "graph_emulator.py")
START_TIMEOUT_S = 15


def http_request(method, url, body=None, headers=None, timeout=30):
    """One request, no redirects followed: (status, headers dict lower-cased, body)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


class EmulatorProcess:
    def __init__(self, args=(), root=None):
        self.args = list(args)
        self.tmp = tempfile.mkdtemp(prefix="graph-emulator-test-")
        self.root = root or os.path.join(self.tmp, "root")
        self.process = None
        self.info = None
        self._token = None

    def start(self):
        port_file = os.path.join(self.tmp, "ports.json")
        self.process = subprocess.Popen(
            [sys.executable, EMULATOR, "--root", self.root, "--port-file", port_file]
            + self.args)
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(port_file):
            if self.process.poll() is not None:
                raise RuntimeError("the Graph emulator exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Graph emulator did not start in time")
            time.sleep(0.02)
        with open(port_file) as f:
            self.info = json.load(f)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def control(self, method, path, body=None):
        status, _, data = http_request(method, self.info["control_url"] + path,
                                       body if body is not None else {})
        if status != 200:
            raise RuntimeError(f"control {method} {path} failed: {status} {data!r}")
        return json.loads(data)

    def bearer(self):
        """An Authorization header with a token issued through the control API."""
        if self._token is None:
            self._token = self.control("POST", "/tokens")["access_token"]
        return {"Authorization": "Bearer " + self._token}
