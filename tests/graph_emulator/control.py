"""The control API for tests, on its own port (never counted, never faulted, no
latency). JSON in, JSON out. See README.md for the list of endpoints."""

import base64
import json
import os
import urllib.parse

from drive import GraphError
from httpbase import Handler, json_reply

SETTING_TYPES = {
    "latency_ms": float, "bandwidth_bps": float, "quota_bytes": int,
    "access_token_ttl": float, "download_url_ttl": float, "upload_session_ttl": float,
    "device_code_ttl": float, "device_code_interval": float, "slow_down_increment": float,
    "refresh_token_reuse": bool, "max_path_length": int, "simple_upload_max": int,
    "hash_uploads": bool,
}


class ControlHandler(Handler):
    paced = False

    def route(self, method):
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path.rstrip("/")
        query = dict(urllib.parse.parse_qsl(parts.query))
        body = self.read_body()
        try:
            args = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_reply(400, {"error": "the body is not JSON"})
        try:
            result = self.control(method, path, query, args)
        except (KeyError, ValueError, TypeError) as error:
            return json_reply(400, {"error": str(error)})
        except GraphError as error:
            return json_reply(error.status, {"error": error.message, "code": error.code})
        if result is None:
            return json_reply(404, {"error": f"no control endpoint {method} {path}"})
        return json_reply(200, result)

    def control(self, method, path, query, args):
        emu = self.emu
        auth = emu.auth
        if method == "GET" and path == "/info":
            return emu.info()
        if method == "POST" and path == "/device/approve":
            return {"user_code": auth.set_device_code_state(args.get("user_code"), "approved")}
        if method == "POST" and path == "/device/decline":
            return {"user_code": auth.set_device_code_state(args.get("user_code"), "declined")}
        if method == "POST" and path == "/device/expire":
            return {"user_code": auth.set_device_code_state(args.get("user_code"), "expired")}
        if method == "POST" and path == "/tokens":
            return auth.issue_directly(args.get("scope", "Files.ReadWrite offline_access"))
        if method == "POST" and path == "/tokens/expire":
            auth.expire_access_tokens()
            return {}
        if method == "POST" and path == "/tokens/revoke-refresh":
            auth.revoke_refresh_tokens()
            return {}
        if method == "POST" and path == "/download-urls/expire":
            emu.expire_download_urls()
            return {}
        if method == "POST" and path == "/upload-sessions/expire":
            emu.uploads.expire_all()
            return {}
        if method == "POST" and path == "/delta/expire":
            emu.drive.expire_delta_tokens()
            return {}
        if method == "POST" and path == "/faults":
            return emu.faults.add(args)
        if method == "GET" and path == "/faults":
            return {"faults": emu.faults.snapshot()}
        if method == "DELETE" and path == "/faults":
            emu.faults.clear()
            return {}
        if method == "GET" and path == "/settings":
            return dict(emu.settings)
        if method == "POST" and path == "/settings":
            return emu.apply_settings({k: SETTING_TYPES[k](v) for k, v in args.items()})
        if method == "GET" and path == "/counters":
            return emu.counters.snapshot()
        if method == "POST" and path == "/counters/reset":
            emu.counters.reset()
            return {}
        if method == "POST" and path == "/reset":
            emu.reset(wipe_drive=bool(args.get("wipe_drive", False)))
            return {}
        if path.startswith("/remote/"):
            return self.remote(method, path[len("/remote/"):], query, args)
        return None

    def remote(self, method, op, query, args):
        """Changes and reads by "another client", addressed by path from the root."""
        emu = self.emu
        drive = emu.drive
        if method == "GET" and op == "item":
            return emu.item_json(emu.item_at(query["path"]), "/drive")
        if method == "GET" and op == "read":
            item = emu.item_at(query["path"])
            with open(drive.disk_path(item), "rb") as f:
                return {"content_b64": base64.b64encode(f.read()).decode()}
        if method != "POST":
            return None
        if op == "write":
            data = base64.b64decode(args["content_b64"]) if "content_b64" in args else \
                args.get("text", "").encode()
            parent_path, _, name = args["path"].rstrip("/").rpartition("/")
            parent = emu.item_at(parent_path or "/")
            staged = drive.stage_path()
            with open(staged, "wb") as f:
                f.write(data)
            try:
                item, _ = drive.commit_file(staged, parent, name, "replace")
            finally:
                if os.path.exists(staged):
                    os.unlink(staged)
        elif op == "mkdir":
            parent_path, _, name = args["path"].rstrip("/").rpartition("/")
            item = drive.create_folder(emu.item_at(parent_path or "/"), name, "fail")
        elif op == "rename":
            item = drive.update(emu.item_at(args["path"]), name=args["new_name"])
        elif op == "move":
            item = drive.update(emu.item_at(args["path"]),
                                new_parent=emu.item_at(args["new_parent"]))
        elif op == "delete":
            item = emu.item_at(args["path"])
            drive.delete(item)
            return {"id": item.id}
        else:
            return None
        return emu.item_json(item, "/drive")
