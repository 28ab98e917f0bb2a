#!/usr/bin/env python3
"""A Microsoft Graph (OneDrive driveItem) and identity-platform emulator for tests.

Listens on 127.0.0.1 only, on three ports:
  graph   - Graph under /v1.0 and the device-code/token endpoints (the --graph-url is
            http://127.0.0.1:PORT/v1.0 and the --login-url http://127.0.0.1:PORT);
  content - pre-authenticated download URLs and upload-session URLs (a different port,
            as the real service uses a different host);
  control - the test control API (README.md).
The drive is a real folder tree under --root. See README.md for usage and for where the
emulator is deliberately stricter than, or knowingly different from, the service.

Module layout: drive.py (the tree, ids, tags, names, delta log), auth.py (tokens),
faults.py (faults, counters, pacer), graph_api.py (Graph routes), content.py (download
and upload URLs), control.py (control API), quickxorhash.py.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from auth import Auth  # noqa: E402
from content import ContentHandler, UploadSessions  # noqa: E402
from control import ControlHandler  # noqa: E402
from drive import Drive, GraphError, encode_segment, iso_time, not_found  # noqa: E402
from faults import Counters, FaultBook, Pacer  # noqa: E402
from graph_api import GraphHandler  # noqa: E402

DEFAULT_SETTINGS = {
    "latency_ms": 0.0,
    "bandwidth_bps": 0.0,  # 0: unlimited
    "quota_bytes": 1 << 40,
    "access_token_ttl": 3599.0,
    "download_url_ttl": 3600.0,
    "upload_session_ttl": 86400.0,
    "device_code_ttl": 900.0,
    "device_code_interval": 5.0,
    "slow_down_increment": 5.0,
    "refresh_token_reuse": False,
    "max_path_length": 400,
    "simple_upload_max": 4 * 1024 * 1024,
    # False: uploads are not hashed and their items carry no hashes (some service
    # replies carry none), so that a benchmark measures the client, not this
    # emulator's pure-Python QuickXorHash (about 30 MB/s).
    "hash_uploads": True,
}
MAX_DELTA_CURSORS = 256


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, handler, emulator):
        super().__init__(("127.0.0.1", port), handler)
        self.emulator = emulator

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up (a cancelled read, a test's dropped request)
        super().handle_error(request, client_address)


class Emulator:
    def __init__(self, root, settings=None, ports=(0, 0, 0), verbose=False):
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings.update(settings or {})
        self.initial_settings = dict(self.settings)
        self.verbose = verbose
        root = os.path.abspath(root)
        os.makedirs(root, exist_ok=True)
        self.staging_dir = tempfile.mkdtemp(prefix=".graph-emulator-staging-",
                                            dir=os.path.dirname(root))
        self.drive = Drive(root, self.staging_dir, self.settings["quota_bytes"],
                           self.settings["max_path_length"])
        self.auth = Auth(self.settings)
        self.faults = FaultBook()
        self.counters = Counters()
        self.pacer = Pacer(self.settings)
        self.uploads = UploadSessions(self)
        self.delta_cursors = collections.OrderedDict()
        self.cursor_lock = threading.Lock()
        self.url_key = secrets.token_bytes(32)
        self.download_not_before = 0.0
        self.servers = [Server(ports[0], GraphHandler, self),
                        Server(ports[1], ContentHandler, self),
                        Server(ports[2], ControlHandler, self)]
        self.graph_port, self.content_port, self.control_port = (
            s.server_address[1] for s in self.servers)
        self.login_url = f"http://127.0.0.1:{self.graph_port}"
        self.graph_url = f"{self.login_url}/v1.0"
        self.content_url = f"http://127.0.0.1:{self.content_port}"
        self.control_url = f"http://127.0.0.1:{self.control_port}"
        self.threads = []

    # ---- lifecycle ------------------------------------------------------------------

    def start(self):
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def info(self):
        return {"graph_url": self.graph_url, "login_url": self.login_url,
                "content_url": self.content_url, "control_url": self.control_url,
                "graph_port": self.graph_port, "content_port": self.content_port,
                "control_port": self.control_port, "drive_id": self.drive.drive_id,
                "root_id": self.drive.root_id, "root_dir": self.drive.root_dir,
                "pid": os.getpid()}

    def apply_settings(self, changes):
        self.settings.update(changes)
        self.drive.quota_bytes = self.settings["quota_bytes"]
        self.drive.max_path_length = self.settings["max_path_length"]
        return dict(self.settings)

    def reset(self, wipe_drive=False):
        self.faults.clear()
        self.counters.reset()
        self.settings.clear()
        self.apply_settings(dict(self.initial_settings))
        if wipe_drive:
            self.drive.wipe()

    def apply_stale_etag(self, kind, item):
        """The stale_etag fault: the eTag an upload just returned changes right after."""
        if self.faults.take(kind, {"stale_etag"}) is not None:
            self.counters.fired()
            self.drive.touch(item)

    # ---- serialisation --------------------------------------------------------------

    def item_json(self, item, ref_prefix, delta=False, select=None):
        drive = self.drive
        with drive.lock:
            body = {
                "createdDateTime": iso_time(item.created),
                "eTag": item.etag,
                "id": item.id,
                "lastModifiedDateTime": iso_time(item.modified),
                "name": item.name,
                "size": drive.folder_size(item) if item.is_folder else item.size,
                "fileSystemInfo": {"createdDateTime": iso_time(item.fs_created, False),
                                   "lastModifiedDateTime": iso_time(item.fs_modified, False)},
            }
            reference = {"driveId": drive.drive_id, "driveType": "business"}
            if item.parent_id is not None:
                reference["id"] = item.parent_id
                if not delta:
                    parent_rel = drive.rel_path(drive.items[item.parent_id])
                    encoded = "/".join(encode_segment(s) for s in parent_rel.split("/")
                                       ) if parent_rel else ""
                    reference["path"] = f"{ref_prefix}/root:" + (f"/{encoded}" if encoded
                                                                  else "")
            body["parentReference"] = reference
            if item.is_folder:
                body["folder"] = {"childCount": len(item.children)}
                if item.id == drive.root_id:
                    body["root"] = {}
            else:
                if not delta:  # Business leaves cTag out of delta
                    body["cTag"] = item.ctag
                body["file"] = {"mimeType": "application/octet-stream"}
                if item.quick_xor:
                    body["file"]["hashes"] = {"quickXorHash": item.quick_xor}
                wants_url = (not delta and select is None) or (
                    select is not None and "@microsoft.graph.downloadUrl" in select)
                if wants_url:
                    body["@microsoft.graph.downloadUrl"] = self.mint_download_url(item)
        if select is not None:
            body = {k: v for k, v in body.items() if k in select}
        return body

    def tombstone_json(self, tombstone):
        return {"id": tombstone.id, "deleted": {},
                "parentReference": {"driveId": self.drive.drive_id, "driveType": "business",
                                    "id": tombstone.parent_id}}

    def item_at(self, path):
        """Control API helper: the item at a decoded path like "/A/b.txt"."""
        segments = [s for s in path.split("/") if s]
        item, _, _ = self.drive.walk(self.drive.get("root"), segments)
        if item is None:
            raise not_found()
        return item

    def folder_by_reference_path(self, path):
        """parentReference.path such as "/drive/root:/A%20B" to the folder item."""
        _, colon, rest = path.partition("root:")
        if not colon:
            raise GraphError(400, "invalidRequest", "parentReference.path is not valid.")
        segments = [urllib.parse.unquote(s) for s in rest.split("/") if s]
        item, _, _ = self.drive.walk(self.drive.get("root"), segments)
        if item is None:
            raise not_found()
        return item

    # ---- opaque tokens: download URLs, skip tokens, delta cursors ----------------------

    def _sign(self, payload):
        return hmac.new(self.url_key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def mint_download_url(self, item):
        now = time.time()
        payload = base64.urlsafe_b64encode(json.dumps(
            {"i": item.id, "e": now + self.settings["download_url_ttl"], "m": now}
        ).encode()).decode().rstrip("=")
        return f"{self.content_url}/download/{payload}.{self._sign(payload)}"

    def check_download_token(self, token):
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        now = time.time()
        if now > data["e"] or data["m"] < self.download_not_before:
            return None
        return data["i"]

    def expire_download_urls(self):
        self.download_not_before = time.time()
        time.sleep(0.002)  # URLs minted from now on are distinguishable

    def encode_skiptoken(self, folder_id, offset):
        payload = base64.urlsafe_b64encode(f"{folder_id}|{offset}".encode()).decode()
        return payload.rstrip("=") + "." + self._sign(payload.rstrip("="))[:16]

    def decode_skiptoken(self, token, folder_id):
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)[:16]):
            raise GraphError(400, "invalidRequest", "The skip token is not valid.")
        owner, _, offset = base64.urlsafe_b64decode(
            payload + "=" * (-len(payload) % 4)).decode().partition("|")
        if owner != folder_id:
            raise GraphError(400, "invalidRequest", "The skip token is for another folder.")
        return int(offset)

    def store_delta_cursor(self, entries, end_seq):
        key = secrets.token_urlsafe(24)
        with self.cursor_lock:
            self.delta_cursors[key] = (entries, end_seq)
            while len(self.delta_cursors) > MAX_DELTA_CURSORS:
                self.delta_cursors.popitem(last=False)
        return key


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".port-file-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(temp, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder holding the drive's files")
    parser.add_argument("--port", type=int, default=0, help="Graph port (0: any free)")
    parser.add_argument("--content-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--port-file", help="write the ports and URLs here (JSON)")
    parser.add_argument("--control-port-file", help="write the control port here (text)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    for key, value in DEFAULT_SETTINGS.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, dest=key, action="store_true", default=value)
        else:
            parser.add_argument(flag, dest=key, type=type(value), default=value)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = {key: getattr(args, key) for key in DEFAULT_SETTINGS}
    emulator = Emulator(args.root, settings,
                        (args.port, args.content_port, args.control_port), args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    if args.control_port_file:
        write_atomically(args.control_port_file, f"{emulator.control_port}\n")
    if args.port_file:
        write_atomically(args.port_file, json.dumps(emulator.info(), indent=1) + "\n")
    while not stop.wait(3600):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
