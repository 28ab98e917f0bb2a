"""The second listener: pre-authenticated download URLs and upload-session URLs.

Neither needs a token, and the real service may answer 401 when one is sent; here
requests that carry an Authorization header are served but counted (counter
auth_header_on_content_urls), so tests can assert the client never sends one.

Request kinds: download, upload.fragment (PUT), upload.status (GET), upload.cancel
(DELETE).

Upload sessions enforce the documented rules: fragments in order, each a multiple of
327,680 bytes except the last, each under 60 MiB, Content-Range present and matching
Content-Length, the same total on every fragment, no empty files. Replies: 202 with
nextExpectedRanges, then 201 (new item) or 200 (replaced) with the item; 416 for an
overlap or a gap; 404 for an unknown or expired session; 204 on DELETE.
"""

import os
import re
import secrets
import threading
import time
import urllib.parse

from drive import GraphError, invalid_request, iso_time, name_problem
from faults import STATUS_FAULTS
from graph_api import conflict_behavior, status_fault_error
from httpbase import CHUNK, DROP, Handler, Reply, graph_error_reply, json_reply
from quickxorhash import QuickXorHash

FRAGMENT_UNIT = 327680
MAX_FRAGMENT = 60 * 1024 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def session_not_found():
    return GraphError(404, "itemNotFound", "The upload session was not found.",
                      "uploadSessionNotFound")


class Session:
    def __init__(self, staged, ttl):
        self.id = secrets.token_urlsafe(32)
        self.lock = threading.Lock()
        self.staged = staged
        self.expires_at = time.time() + ttl
        self.total = None
        self.received = 0
        self.hasher = QuickXorHash()  # of the bytes stored so far, which arrive in order
        self.parent_id = None
        self.name = None
        self.target_id = None  # an existing file addressed by id
        self.behavior = "fail"
        self.if_match = None
        self.fs_info = None
        self.ref_prefix = "/drive"


class UploadSessions:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.sessions = {}

    def url(self, session):
        return f"{self.emu.content_url}/upload/{session.id}"

    def get(self, session_id):
        with self.lock:
            session = self.sessions.get(session_id)
            if session is not None and time.time() > session.expires_at:
                self._discard(session)
                session = None
            return session

    def _discard(self, session):
        self.sessions.pop(session.id, None)
        if os.path.exists(session.staged):
            os.unlink(session.staged)

    def discard(self, session):
        with self.lock:
            self._discard(session)

    def expire_all(self):
        with self.lock:
            for session in list(self.sessions.values()):
                session.expires_at = 0

    def create(self, handler, request, obj):
        """POST .../createUploadSession: checks name, conflicts, If-Match and quota now."""
        drive = self.emu.drive
        item_spec = obj.get("item") or {}
        if not isinstance(item_spec, dict):
            raise invalid_request("item must be an object.")
        if obj.get("deferCommit"):
            raise GraphError(501, "notSupported", "The emulator does not support deferCommit.")
        session = Session(drive.stage_path(), self.emu.settings["upload_session_ttl"])
        open(session.staged, "wb").close()
        session.ref_prefix = request.ref_prefix
        session.if_match = handler.headers.get("If-Match")
        session.fs_info = item_spec.get("fileSystemInfo")
        drive._parse_fs_info(session.fs_info)
        with drive.lock:
            item, parent, name = request.resolve()
            if request.segments is None:
                if item.is_folder:
                    raise invalid_request("A folder has no content.")
                session.target_id = item.id
                existing = item
            else:
                spec_name = item_spec.get("name")
                if spec_name is not None and spec_name != name:
                    raise invalid_request("The name in the body does not match the path.")
                problem = name_problem(name, False)
                if problem:
                    raise invalid_request(problem, "invalidPath")
                drive._check_path_length(parent, name)
                session.parent_id, session.name, existing = parent.id, name, item
            default = "replace" if existing is not None and not existing.is_folder else "fail"
            session.behavior = conflict_behavior(item_spec, default)
            if existing is not None and (existing.is_folder or session.behavior == "fail") \
                    and session.target_id is None:
                raise GraphError(409, "nameAlreadyExists",
                                 "The specified item name already exists.")
            drive.check_if_match(existing, session.if_match)
            size = item_spec.get("fileSize")
            if size is not None:
                if not isinstance(size, int) or size <= 0:
                    raise invalid_request("An upload session cannot create an empty file; "
                                          "use a simple upload.")
                drive.check_quota(size, existing)
                session.total = size
        with self.lock:
            self.sessions[session.id] = session
        return json_reply(200, {"uploadUrl": self.url(session),
                                "expirationDateTime": iso_time(session.expires_at),
                                "nextExpectedRanges": ["0-"]})

    def status_json(self, session):
        ranges = [] if session.total == session.received else [f"{session.received}-"]
        return {"expirationDateTime": iso_time(session.expires_at),
                "nextExpectedRanges": ranges}


class ContentHandler(Handler):
    def route(self, method):
        path = urllib.parse.urlsplit(self.path).path
        prefix, _, token = path.lstrip("/").partition("/")
        if prefix == "download" and method in ("GET", "HEAD"):
            kind = "download"
        elif prefix == "upload" and method in ("PUT", "GET", "DELETE"):
            kind = {"PUT": "upload.fragment", "GET": "upload.status",
                    "DELETE": "upload.cancel"}[method]
        else:
            self.count_request("content.unknown")
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        self.count_request(kind)
        rule = self.emu.faults.take(kind, set(STATUS_FAULTS) | {"session_gone"})
        if rule is not None:
            self.emu.counters.fired()
            if rule["fault"] == "session_gone":
                raise session_not_found()
            if not rule["store"]:
                raise status_fault_error(rule)
        if kind == "download":
            reply = self.download(token)
        elif kind == "upload.fragment":
            reply = self.fragment(token)
        elif kind == "upload.status":
            session = self.emu.uploads.get(token)
            if session is None:
                raise session_not_found()
            reply = json_reply(200, self.emu.uploads.status_json(session))
        else:
            session = self.emu.uploads.get(token)
            if session is None:
                raise session_not_found()
            self.emu.uploads.discard(session)
            reply = Reply(204)
        if reply is DROP:
            return DROP
        if kind != "upload.fragment":
            drop = self.emu.faults.take(kind, {"drop"})
            if drop is not None:
                self.emu.counters.fired()
                if not reply.stream:
                    return DROP
                reply.truncate_after = drop["keep_bytes"] if drop["keep_bytes"] is not None \
                    else reply.stream[2] // 2
        if rule is not None:  # "store": the work was done, the reply is the fault
            if reply.stream:
                reply.stream[0].close()
            reply = graph_error_reply(status_fault_error(rule))
        if self.emu.faults.take(kind, {"lose_reply"}) is not None:
            self.emu.counters.fired()
            if reply.stream:
                reply.stream[0].close()
            return DROP
        return reply

    # ---- downloads ------------------------------------------------------------------

    def download(self, token):
        drive = self.emu.drive
        item_id = self.emu.check_download_token(token)
        if item_id is None:
            raise GraphError(401, "unauthenticated", "The download URL has expired or is "
                             "not valid.")
        with drive.lock:
            item = drive.items.get(item_id)
            if item is None:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
            fileobj = open(drive.disk_path(item), "rb")
            etag = item.etag
        size = os.fstat(fileobj.fileno()).st_size
        headers = {"Accept-Ranges": "bytes", "ETag": etag,
                   "Content-Type": "application/octet-stream"}
        wanted = self.headers.get("Range")
        ignore = self.emu.faults.take("download", {"ignore_range"})
        if ignore is not None:
            self.emu.counters.fired()
        match = RANGE.match(wanted.strip()) if wanted and ignore is None else None
        if match is None:  # no Range, or one we cannot parse (suffix, multiple): whole file
            return Reply(200, b"", headers, (fileobj, 0, size))
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
        if start >= size or end < start:
            fileobj.close()
            headers["Content-Range"] = f"bytes */{size}"
            raise GraphError(416, "invalidRange", "The specified byte range is invalid or "
                             "unavailable.", None, headers)
        end = min(end, size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Reply(206, b"", headers, (fileobj, start, end - start + 1))

    # ---- upload fragments -----------------------------------------------------------

    def fragment(self, token):
        uploads = self.emu.uploads
        session = uploads.get(token)
        if session is None:
            raise session_not_found()
        length = self.content_length()
        if length is None:
            raise GraphError(411, "invalidRequest", "Content-Length is required.")
        if length >= MAX_FRAGMENT:
            self.close_connection = True
            raise GraphError(413, "invalidRequest", "The request message is too big.",
                             "maxFragmentSizeExceeded")
        with session.lock:
            return self._fragment_locked(session, length)

    def _fragment_locked(self, session, length):
        match = CONTENT_RANGE.match(self.headers.get("Content-Range", "").strip())
        if match is None:
            raise invalid_request("The Content-Range header is missing or malformed.")
        start, end, total = (int(g) for g in match.groups())
        if end < start or end >= total:
            raise invalid_request("The Content-Range header is missing or malformed.")
        if end - start + 1 != length:
            raise invalid_request("The Content-Range header length does not match the "
                                  "provided number of bytes.")
        if session.total is not None and total != session.total:
            raise invalid_request(f"The current upload session is for {session.total} total "
                                  f"bytes, but the current fragment declares a total of "
                                  f"{total}.", "fragmentLengthMismatch")
        if end + 1 < total and length % FRAGMENT_UNIT != 0:
            raise invalid_request("Every fragment but the last must be a multiple of "
                                  "327,680 bytes.", "invalidFragmentSize")
        if start != session.received:
            self.read_body(paced=True)  # keep the connection usable
            inner = "fragmentOverlap" if start < session.received else "fragmentOutOfOrder"
            message = ("Uploaded fragment overlaps with existing data." if start <
                       session.received else "Fragments must be uploaded in order.")
            raise GraphError(416, "invalidRange", message, inner)
        if session.total is None:
            drive = self.emu.drive
            with drive.lock:
                target = drive.items.get(session.target_id) if session.target_id else None
                drive.check_quota(total, target)
            session.total = total
        drop = self.emu.faults.take("upload.fragment", {"drop"})
        if drop is not None:
            self.emu.counters.fired()
            keep = drop["keep_bytes"] if drop["keep_bytes"] is not None else length // 2
            return self._receive(session, start, min(keep, length), drop["store"], dropped=True)
        return self._receive(session, start, length, True, dropped=False)

    def _receive(self, session, start, length, store, dropped):
        # A fragment counts, and is hashed, only once all of it arrived: a client that
        # dies mid-body sends it again later, from `received`.
        arrived = []
        with open(session.staged, "r+b") as out:
            out.seek(start)
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(CHUNK, remaining))
                if not chunk:
                    raise ConnectionError("client closed the connection mid-fragment")
                self.emu.pacer.transfer(len(chunk))
                if store:
                    out.write(chunk)
                    arrived.append(chunk)
                remaining -= len(chunk)
        if self.emu.settings["hash_uploads"]:
            for chunk in arrived:
                session.hasher.update(chunk)
        self.body_consumed = not dropped
        if store:
            session.received = start + length
            session.expires_at = time.time() + self.emu.settings["upload_session_ttl"]
        if dropped:
            return DROP
        if session.received < session.total:
            return json_reply(202, self.emu.uploads.status_json(session))
        return self._commit(session)

    def _commit(self, session):
        drive = self.emu.drive
        with open(session.staged, "r+b") as f:
            f.truncate(session.total)
        staged_copy = drive.stage_path()
        os.link(session.staged, staged_copy)
        try:
            target = drive.items.get(session.target_id) if session.target_id else None
            if session.target_id and target is None:
                raise GraphError(404, "itemNotFound", "The item was deleted.")
            parent = drive.items.get(session.parent_id) if session.parent_id else None
            if session.parent_id and parent is None:
                raise GraphError(404, "itemNotFound", "The parent folder was deleted.")
            item, created = drive.commit_file(staged_copy, parent, session.name,
                                              session.behavior, session.if_match,
                                              session.fs_info, target,
                                              session.hasher.b64digest()
                                              if self.emu.settings["hash_uploads"] else "")
        finally:
            if os.path.exists(staged_copy):
                os.unlink(staged_copy)
        self.emu.uploads.discard(session)
        body = self.emu.item_json(item, session.ref_prefix)
        self.emu.apply_stale_etag("upload.fragment", item)
        if self.emu.faults.take("upload.fragment", {"omit_hashes"}) is not None:
            self.emu.counters.fired()
            body.get("file", {}).pop("hashes", None)
        return json_reply(201 if created else 200, body)
