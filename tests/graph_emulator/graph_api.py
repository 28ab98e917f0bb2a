"""The Graph surface on the main port: /v1.0/{me/drive|drives/{id}}/..., plus the
identity endpoints /{tenant}/oauth2/v2.0/{devicecode,token}.

Request kinds (for counters and faults): graph.drive, graph.item, graph.children,
graph.mkdir, graph.update, graph.delete, graph.content (the 302), graph.upload (simple
PUT), graph.session (createUploadSession), graph.delta, graph.unknown; auth.devicecode,
auth.token.
"""

import os
import re
import urllib.parse

from auth import OAuthError
from drive import GraphError, invalid_request, not_found
from httpbase import DROP, Handler, Reply, graph_error_reply, json_reply
from faults import STATUS_FAULTS

AUTH_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/(devicecode|token)$")
ITEM_PATH = re.compile(r"^/(root|items/([^/:]+))(.*)$")
SUFFIXES = {"", "/children", "/content", "/createUploadSession", "/delta"}
KINDS = {
    ("GET", ""): "graph.item", ("HEAD", ""): "graph.item", ("PATCH", ""): "graph.update",
    ("DELETE", ""): "graph.delete", ("GET", "/children"): "graph.children",
    ("POST", "/children"): "graph.mkdir", ("GET", "/content"): "graph.content",
    ("PUT", "/content"): "graph.upload", ("POST", "/createUploadSession"): "graph.session",
    ("GET", "/delta"): "graph.delta",
}
DEFAULT_PAGE = 200
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_PAGE = 1000
WWW_AUTHENTICATE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                    'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"')


def status_fault_error(rule):
    status, code, message, inner = STATUS_FAULTS[rule["fault"]]
    headers = {}
    if rule.get("retry_after") is not None:
        headers["Retry-After"] = str(rule["retry_after"])
    return GraphError(status, code, message, inner, headers)


def conflict_behavior(obj, default):
    for key in ("@microsoft.graph.conflictBehavior", "@name.conflictBehavior"):
        if key in obj:
            value = obj[key]
            if value not in ("fail", "replace", "rename"):
                raise invalid_request("conflictBehavior must be fail, replace or rename.")
            return value
    return default


class Request:
    """A parsed Graph URL: drive addressing, the addressed item, the sub-resource."""

    def __init__(self, emu, raw_path, method):
        self.emu = emu
        parts = urllib.parse.urlsplit(raw_path)
        self.query = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            self.query[key[1:] if key.startswith("$") else key] = value
        rest = parts.path[len("/v1.0"):]
        drive = emu.drive
        me_drive = next((p for p in ("/me/drive", "/drive") if rest == p or
                         rest.startswith(p + "/")), None)
        if me_drive is not None:
            self.url_prefix, self.ref_prefix = me_drive, "/drive"
            rest = rest[len(me_drive):]
        elif rest.startswith("/drives/"):
            drive_id, _, tail = rest[8:].partition("/")
            if urllib.parse.unquote(drive_id) != drive.drive_id:
                raise not_found()
            self.url_prefix = self.ref_prefix = f"/drives/{drive.drive_id}"
            rest = "/" + tail if tail else ""
        else:
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        self.base_id = None
        self.segments = None
        self.suffix = None
        if rest in ("", "/"):
            self.kind = "graph.drive" if method == "GET" else "graph.unknown"
            return
        match = ITEM_PATH.match(rest)
        if not match:
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        self.base_id = "root" if match.group(1) == "root" else urllib.parse.unquote(
            match.group(2))
        tail = match.group(3)
        if tail.startswith(":"):
            inner = tail[1:]
            path_part, colon, tail = inner.partition(":")
            self.segments = [urllib.parse.unquote(s) for s in path_part.split("/") if s]
        self.suffix = tail
        if tail not in SUFFIXES:
            raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        self.kind = KINDS.get((method, tail), "graph.unknown")

    def resolve(self):
        """(item or None, parent, name) for path addressing; (item, None, None) by id."""
        base = self.emu.drive.get(self.base_id)
        if not self.segments:
            return base, None, None
        return self.emu.drive.walk(base, self.segments)

    def existing(self):
        item, _, _ = self.resolve()
        if item is None:
            raise not_found()
        return item

    def select(self):
        value = self.query.get("select")
        return set(s.strip() for s in value.split(",")) if value else None

    def link(self, path, params):
        return (f"{self.emu.graph_url}{self.url_prefix}{path}?" +
                urllib.parse.urlencode(params, safe="$,@"))


class GraphHandler(Handler):
    def route(self, method):
        path = urllib.parse.urlsplit(self.path).path
        auth_match = AUTH_PATH.match(path)
        if auth_match and method == "POST":
            return self.identity(auth_match.group(2))
        if path == "/devicelogin":
            self.count_request("auth.page")
            return Reply(200, b"<html><body>Emulated device login: approve the code "
                         b"through the control API.</body></html>",
                         {"Content-Type": "text/html"})
        if not path.startswith("/v1.0/"):
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        if method == "PUT" and (self.content_length() or 0) > self.emu.settings[
                "simple_upload_max"]:
            self.count_request("graph.upload")
            if self.content_length() <= DRAIN_LIMIT:
                self.read_body()  # so that the client sees the 413, not a reset
            raise GraphError(413, "requestTooLarge", "The request message is too big.",
                             "maxFileSizeExceeded")
        try:
            request = Request(self.emu, self.path, method)
        except GraphError:
            self.count_request("graph.unknown")
            raise
        kind = request.kind
        self.count_request(kind)
        body = self.read_body(paced=(kind == "graph.upload"))
        rule = self.emu.faults.take(kind, set(STATUS_FAULTS) | {"drop"})
        if rule is not None:
            self.emu.counters.fired()
            if rule["fault"] == "drop":
                return DROP
            if not rule["store"]:
                raise status_fault_error(rule)
        self.check_token()
        reply = self.graph(method, request, body)
        if rule is not None:  # a status fault with "store": the work was done
            reply = graph_error_reply(status_fault_error(rule))
        lost = self.emu.faults.take(kind, {"lose_reply"})
        if lost is not None:
            self.emu.counters.fired()
            return DROP
        return reply

    def check_token(self):
        state = self.emu.auth.access_token_state(self.headers.get("Authorization"))
        if state == "valid":
            return
        if state == "expired":
            message = "Access token has expired or is not yet valid."
            header = WWW_AUTHENTICATE + ', error="invalid_token", error_description=' \
                '"expired_token"'
        else:
            message = "Access token validation failure."
            header = WWW_AUTHENTICATE
        raise GraphError(401, "InvalidAuthenticationToken", message, None,
                         {"WWW-Authenticate": header})

    # ---- identity -------------------------------------------------------------------

    def identity(self, endpoint):
        kind = "auth." + endpoint
        self.count_request(kind)
        body = self.read_body()
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        rule = self.emu.faults.take(kind, set(STATUS_FAULTS) | {"drop", "slow_down"})
        if rule is not None:
            self.emu.counters.fired()
            if rule["fault"] == "drop":
                return DROP
            if rule["fault"] in STATUS_FAULTS:
                raise status_fault_error(rule)
        try:
            if endpoint == "devicecode":
                reply = self.emu.auth.start_device_flow(
                    form, self.emu.login_url + "/devicelogin")
            else:
                reply = self.emu.auth.token(form, rule is not None and
                                            rule["fault"] == "slow_down")
        except OAuthError as error:
            return json_reply(400, error.body())
        return json_reply(200, reply, {"Cache-Control": "no-store"})

    # ---- Graph ----------------------------------------------------------------------

    def graph(self, method, request, body):
        kind = request.kind
        if kind == "graph.drive":
            return json_reply(200, self.drive_json(request))
        if kind == "graph.item":
            return self.get_item(request)
        if kind == "graph.children":
            return self.list_children(request)
        if kind == "graph.mkdir":
            return self.create_folder(request, self.read_json(body))
        if kind == "graph.update":
            return self.update(request, self.read_json(body))
        if kind == "graph.delete":
            self.emu.drive.delete(request.existing(), self.headers.get("If-Match"))
            return Reply(204)
        if kind == "graph.content":
            return self.content_redirect(request)
        if kind == "graph.upload":
            return self.simple_upload(request, body)
        if kind == "graph.session":
            return self.emu.uploads.create(self, request, self.read_json(body))
        if kind == "graph.delta":
            return self.delta(request)
        raise GraphError(405, "invalidRequest", "The method is not allowed on this resource.")

    def drive_json(self, request):
        drive = self.emu.drive
        with drive.lock:
            used = drive.used_bytes()
        total = drive.quota_bytes
        remaining = max(0, total - used)
        state = "normal" if remaining > total * 0.1 else (
            "exceeded" if remaining == 0 else "nearing")
        return {"id": drive.drive_id, "driveType": "business",
                "owner": {"user": {"id": "emulated-user", "displayName": "Emulated User"}},
                "quota": {"total": total, "used": used, "remaining": remaining,
                          "deleted": 0, "state": state}}

    def not_modified(self, item):
        tags = self.headers.get("If-None-Match")
        if tags is None:
            return False
        return item.etag in tags or (not item.is_folder and item.ctag in tags) or tags == "*"

    def get_item(self, request):
        item = request.existing()
        if self.not_modified(item):
            return Reply(304)
        return json_reply(200, self.emu.item_json(item, request.ref_prefix,
                                                  select=request.select()))

    def page_size(self, request):
        try:
            top = int(request.query.get("top", DEFAULT_PAGE))
        except ValueError:
            raise invalid_request("$top must be an integer.") from None
        if top < 1 or top > MAX_PAGE:
            raise invalid_request(f"The limit of '{MAX_PAGE}' for Top query has been "
                                  "exceeded.")
        return top

    def list_children(self, request):
        folder = request.existing()
        top = self.page_size(request)
        offset = 0
        if "skiptoken" in request.query:
            offset = self.emu.decode_skiptoken(request.query["skiptoken"], folder.id)
        drive = self.emu.drive
        with drive.lock:
            kids = drive.children(folder)
            page = kids[offset:offset + top]
            values = [self.emu.item_json(k, request.ref_prefix, select=request.select())
                      for k in page]
        reply = {"value": values}
        if offset + top < len(kids):
            params = {"$top": top}
            if "select" in request.query:
                params["$select"] = request.query["select"]
            params["$skiptoken"] = self.emu.encode_skiptoken(folder.id, offset + top)
            reply["@odata.nextLink"] = request.link(f"/items/{folder.id}/children", params)
        return json_reply(200, reply)

    def create_folder(self, request, obj):
        parent = request.existing()
        name = obj.get("name")
        if "folder" not in obj:
            raise invalid_request("Only folders can be created this way; send a folder facet.")
        behavior = conflict_behavior(obj, "fail")
        item = self.emu.drive.create_folder(parent, name if isinstance(name, str) else "",
                                            behavior)
        return json_reply(201, self.emu.item_json(item, request.ref_prefix))

    def update(self, request, obj):
        item = request.existing()
        drive = self.emu.drive
        name = obj.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid_request("name must be a string.")
        new_parent = None
        ref = obj.get("parentReference")
        if ref is not None:
            if not isinstance(ref, dict):
                raise invalid_request("parentReference must be an object.")
            if ref.get("driveId") not in (None, drive.drive_id):
                raise invalid_request("Items cannot be moved between drives.")
            if ref.get("id") == "root":
                raise invalid_request("Use the root's id, not 'root', in parentReference.")
            if "id" in ref:
                new_parent = drive.get(ref["id"])
            elif "path" in ref:
                new_parent = self.emu.folder_by_reference_path(ref["path"])
        behavior = conflict_behavior(obj, "fail")
        item = drive.update(item, name=name, new_parent=new_parent,
                            fs_info=obj.get("fileSystemInfo"), behavior=behavior,
                            if_match=self.headers.get("If-Match"))
        return json_reply(200, self.emu.item_json(item, request.ref_prefix))

    def content_redirect(self, request):
        item = request.existing()
        if item.is_folder:
            raise GraphError(400, "invalidRequest", "Only files have content.")
        if self.not_modified(item):
            return Reply(304)
        return Reply(302, b"", {"Location": self.emu.mint_download_url(item)})

    def simple_upload(self, request, body):
        item, parent, name = request.resolve()
        target = item if request.segments is None else None
        if target is not None and target.is_folder:
            raise invalid_request("A folder has no content.")
        behavior = conflict_behavior(request.query, "replace")
        staged = self.emu.drive.stage_path()
        with open(staged, "wb") as f:
            f.write(body)
        try:
            item, created = self.emu.drive.commit_file(
                staged, parent, name, behavior, self.headers.get("If-Match"), None, target)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)
        body = self.emu.item_json(item, request.ref_prefix)
        self.emu.apply_stale_etag("graph.upload", item)
        return json_reply(201 if created else 200, body)

    def delta(self, request):
        drive = self.emu.drive
        base = drive.get(request.base_id)
        if base.id != drive.root_id or request.segments:
            raise GraphError(400, "notSupported", "Delta is only supported on the root.")
        top = self.page_size(request)
        select = request.select()
        if "skiptoken" in request.query:
            cursor = self.emu.delta_cursors.get(request.query["skiptoken"])
            if cursor is None:
                raise self.resync(request)
            entries, end_seq = cursor
        else:
            token = request.query.get("token")
            with drive.lock:
                if token == "latest":
                    since = drive.seq
                elif token:
                    since = drive.parse_delta_token(token)
                    if since is None:
                        raise self.resync(request)
                else:
                    since = None
                live, gone = drive.changes_since(since)
                entries = [self.emu.item_json(i, request.ref_prefix, delta=True,
                                              select=select) for i in live]
                entries += [self.emu.tombstone_json(t) for t in gone]
                end_seq = drive.seq
        reply = {"value": entries[:top]}
        rest = entries[top:]
        if rest:
            key = self.emu.store_delta_cursor(rest, end_seq)
            params = {"$skiptoken": key}
            if select:
                params["$select"] = ",".join(sorted(select))
            if top != DEFAULT_PAGE:
                params["$top"] = top
            reply["@odata.nextLink"] = request.link("/root/delta", params)
        else:
            params = {"token": drive.delta_token(end_seq)}
            if select:
                params["$select"] = ",".join(sorted(select))
            reply["@odata.deltaLink"] = request.link("/root/delta", params)
        return json_reply(200, reply)

    def resync(self, request):
        location = request.link("/root/delta", {})
        return GraphError(410, "resyncRequired", "Resync required. Replace any local items "
                          "with the server's version (including deletes) if you're sure "
                          "that the service was up to date with your local changes when "
                          "you last sync'd. Upload any local changes that the server "
                          "doesn't know about.", "resyncChangesApplyDifferences",
                          {"Location": location.rstrip("?")})
