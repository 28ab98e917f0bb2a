"""The drive model: a real folder tree on disk plus the metadata Graph reports.

Files and folders under the root directory are what the drive holds; ids, eTags,
cTags, times and the change log for delta live in memory (an emulator restart looks
like a fresh enumeration of the same files with new ids). Ids survive renames and
moves, as OneDrive's do. Names are case-insensitive and case-preserving.

The shapes follow OneDrive for Business: ids like "01ABC...", eTags "\"{GUID},N\"",
cTags only on files, quickXorHash as the only hash, delta items without cTag, without
parentReference.path, and deletions without name.

Thread safety: every public method takes self.lock (an RLock); callers that need
several calls to be atomic hold it themselves.
"""

import base64
import datetime
import os
import secrets
import shutil
import threading
import time
import urllib.parse
import uuid

from quickxorhash import quickxorhash_file_b64

FORBIDDEN_CHARS = set('"*:<>?/\\|\x00')
RESERVED_NAMES = {".lock", "desktop.ini"}
RESERVED_DEVICES = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {
    f"lpt{i}" for i in range(10)}
MAX_NAME_BYTES = 255  # the disk's limit; OneDrive documents none (see README)


class GraphError(Exception):
    """An error reply in Graph's JSON shape."""

    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}


def not_found():
    return GraphError(404, "itemNotFound", "The resource could not be found.")


def invalid_request(message, inner=None):
    return GraphError(400, "invalidRequest", message, inner)


def iso_time(seconds, fraction=True):
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    if fraction:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """An RFC 3339 timestamp as seconds; fileSystemInfo keeps whole seconds (1 s precision)."""
    if not isinstance(text, str):
        raise invalid_request("A timestamp must be a string.")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_request("A timestamp is not a valid ISO 8601 date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return float(int(moment.timestamp()))


def name_problem(name, is_folder):
    """Why OneDrive would refuse this name, or None."""
    if not isinstance(name, str) or name == "":
        return "The name is empty."
    if any(c in FORBIDDEN_CHARS for c in name):
        return "The name contains invalid characters."
    if name[0] == " " or name[-1] == " ":
        return "The name begins or ends with a space."
    if name[-1] == ".":
        return "The name ends with a period."
    folded = name.casefold()
    if folded in RESERVED_NAMES or folded.split(".")[0] in RESERVED_DEVICES:
        return "The name is reserved."
    if folded.startswith("~$") or "_vti_" in folded:
        return "The name is reserved."
    if is_folder and name.startswith("~"):
        return "A folder name cannot begin with a tilde."
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return "The name is too long."
    return None


def encode_segment(segment):
    return urllib.parse.quote(segment, safe="!$&'()*+,;=:@-._~")


class Item:
    __slots__ = ("id", "name", "parent_id", "is_folder", "guid", "etag_n", "ctag_n",
                 "created", "modified", "fs_created", "fs_modified", "size", "quick_xor",
                 "changed_seq", "children")

    def __init__(self, item_id, name, parent_id, is_folder, now):
        self.id = item_id
        self.name = name
        self.parent_id = parent_id
        self.is_folder = is_folder
        self.guid = str(uuid.uuid4()).upper()
        self.etag_n = 1
        self.ctag_n = 1
        self.created = now
        self.modified = now
        self.fs_created = float(int(now))
        self.fs_modified = float(int(now))
        self.size = 0
        self.quick_xor = None
        self.changed_seq = 0
        self.children = {} if is_folder else None  # casefolded name -> id

    @property
    def etag(self):
        return f'"{{{self.guid}}},{self.etag_n}"'

    @property
    def ctag(self):
        return f'"c:{{{self.guid}}},{self.ctag_n}"'


class Tombstone:
    __slots__ = ("id", "parent_id", "is_folder", "changed_seq")

    def __init__(self, item, seq):
        self.id = item.id
        self.parent_id = item.parent_id
        self.is_folder = item.is_folder
        self.changed_seq = seq


class Drive:
    def __init__(self, root_dir, staging_dir, quota_bytes, max_path_length=400):
        self.lock = threading.RLock()
        self.root_dir = os.path.abspath(root_dir)
        self.staging_dir = staging_dir
        self.quota_bytes = quota_bytes
        self.max_path_length = max_path_length
        self.drive_id = "b!" + secrets.token_urlsafe(48)
        self.seq = 0
        self.delta_epoch = secrets.token_hex(4)
        self.items = {}
        self.tombstones = {}
        os.makedirs(self.root_dir, exist_ok=True)
        root = Item(self._new_id(), "root", None, True, time.time())
        self.root_id = root.id
        self.items[root.id] = root
        self._bump(root)
        self._scan(root)

    # ---- ids, sequence, paths -------------------------------------------------------

    def _new_id(self):
        return "01" + base64.b32encode(secrets.token_bytes(20)).decode("ascii")

    def _bump(self, item, content=False, metadata=False):
        """Records a change of item for delta; ancestors change too (size, cTag)."""
        self.seq += 1
        if content:
            item.ctag_n += 1
        if content or metadata:
            item.etag_n += 1
            item.modified = time.time()
        item.changed_seq = self.seq
        parent = self.items.get(item.parent_id)
        while parent is not None:
            parent.changed_seq = self.seq
            parent = self.items.get(parent.parent_id)

    def _scan(self, folder):
        disk = self.disk_path(folder)
        for entry in sorted(os.scandir(disk), key=lambda e: e.name):
            is_folder = entry.is_dir(follow_symlinks=False)
            if not is_folder and not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            item = Item(self._new_id(), entry.name, folder.id, is_folder, time.time())
            item.fs_modified = float(int(stat.st_mtime))
            item.fs_created = item.fs_modified
            self.items[item.id] = item
            folder.children[entry.name.casefold()] = item.id
            if is_folder:
                self._scan(item)
            else:
                item.size = stat.st_size
                item.quick_xor = quickxorhash_file_b64(entry.path)
            self._bump(item)

    def rel_path(self, item):
        """The decoded path from the root, without a leading slash ("" for the root)."""
        names = []
        while item.parent_id is not None:
            names.append(item.name)
            item = self.items[item.parent_id]
        return "/".join(reversed(names))

    def disk_path(self, item):
        rel = self.rel_path(item)
        return os.path.join(self.root_dir, rel) if rel else self.root_dir

    def _check_path_length(self, parent, name, subtree_extra=0):
        parent_rel = self.rel_path(parent)
        length = len(name) + (len(parent_rel) + 1 if parent_rel else 0) + subtree_extra
        if length > self.max_path_length:
            raise invalid_request("The path is too long.", "pathIsTooLong")

    def _longest_suffix(self, folder):
        """Length of the longest "/child/..." path below folder."""
        longest = 0
        for child_id in folder.children.values():
            child = self.items[child_id]
            extra = 1 + len(child.name)
            if child.is_folder:
                extra += self._longest_suffix(child)
            longest = max(longest, extra)
        return longest

    # ---- lookups --------------------------------------------------------------------

    def get(self, item_id):
        with self.lock:
            if item_id == "root":
                item_id = self.root_id
            item = self.items.get(item_id)
            if item is None:
                raise not_found()
            return item

    def child(self, folder, name):
        if not folder.is_folder:
            return None
        child_id = folder.children.get(name.casefold())
        return self.items[child_id] if child_id else None

    def walk(self, base, segments):
        """Resolves path segments below base: (item or None, parent, last name)."""
        with self.lock:
            parent, item = None, base
            for index, segment in enumerate(segments):
                if item is None or not item.is_folder:
                    raise not_found()
                parent, item = item, self.child(item, segment)
                if item is None and index != len(segments) - 1:
                    raise not_found()
            return item, parent, segments[-1] if segments else None

    def children(self, folder):
        with self.lock:
            if not folder.is_folder:
                raise invalid_request("The item is not a folder.")
            kids = [self.items[i] for i in folder.children.values()]
            return sorted(kids, key=lambda item: (item.name.casefold(), item.name))

    def folder_size(self, folder):
        total = 0
        for child_id in folder.children.values():
            child = self.items[child_id]
            total += self.folder_size(child) if child.is_folder else child.size
        return total

    def used_bytes(self):
        return sum(i.size for i in self.items.values() if not i.is_folder)

    def check_quota(self, extra_bytes, replacing=None):
        freed = replacing.size if replacing is not None and not replacing.is_folder else 0
        if self.used_bytes() - freed + extra_bytes > self.quota_bytes:
            raise GraphError(507, "quotaLimitReached", "Insufficient Space Available",
                             "insufficientQuota")

    def check_if_match(self, item, if_match):
        if if_match is None:
            return
        if item is None:
            raise GraphError(412, "resourceModified", "The resource has changed since the "
                             "caller last read it; usually an eTag mismatch",
                             "entityTagDoesNotMatch")
        values = [v.strip() for v in if_match.split(",")] if "{" not in if_match else [
            if_match.strip()]
        if "*" in values:
            return
        tags = {item.etag} | ({item.ctag} if not item.is_folder else set())
        if not any(v in tags for v in values):
            raise GraphError(412, "resourceModified", "The resource has changed since the "
                             "caller last read it; usually an eTag mismatch",
                             "entityTagDoesNotMatch")

    # ---- naming and conflicts ---------------------------------------------------------

    def _unique_name(self, folder, name, is_folder):
        stem, ext = name, ""
        if not is_folder and "." in name.strip("."):
            dot = name.rfind(".")
            stem, ext = name[:dot], name[dot:]
        n = 1
        while True:
            candidate = f"{stem} {n}{ext}"
            if self.child(folder, candidate) is None:
                return candidate
            n += 1

    def _resolve_conflict(self, parent, name, is_folder, behavior):
        """Returns (name to use, existing item to replace or None)."""
        existing = self.child(parent, name)
        if existing is None:
            return name, None
        if behavior == "rename":
            return self._unique_name(parent, name, is_folder), None
        if behavior == "replace":
            return name, existing
        raise GraphError(409, "nameAlreadyExists",
                         "The specified item name already exists.")

    def _validate_new_name(self, parent, name, is_folder):
        if not parent.is_folder:
            raise invalid_request("The parent item is not a folder.")
        problem = name_problem(name, is_folder)
        if problem:
            raise invalid_request(problem, "invalidPath")
        self._check_path_length(parent, name)

    # ---- changes --------------------------------------------------------------------

    def create_folder(self, parent, name, behavior):
        with self.lock:
            self._validate_new_name(parent, name, True)
            name, replaced = self._resolve_conflict(parent, name, True, behavior)
            if replaced is not None:
                self._delete_tree(replaced)
            item = Item(self._new_id(), name, parent.id, True, time.time())
            os.mkdir(os.path.join(self.disk_path(parent), name))
            self.items[item.id] = item
            parent.children[name.casefold()] = item.id
            self._bump(item)
            return item

    def stage_path(self):
        return os.path.join(self.staging_dir, secrets.token_hex(12))

    def commit_file(self, staged, parent, name, behavior, if_match=None, fs_info=None,
                    target=None, quick_xor=None):
        """Moves a staged file into the drive, as a new item or new content of one.

        target: an existing file addressed by id (its name and parent are used).
        quick_xor: the staged file's hash when the caller already has it; otherwise it
        is computed here, before the lock is taken.
        Returns (item, created).
        """
        if quick_xor is None:  # "" leaves the item without a hash
            quick_xor = quickxorhash_file_b64(staged)
        size = os.path.getsize(staged)
        with self.lock:
            if target is not None:
                if target.id not in self.items:
                    raise not_found()
                if target.is_folder:
                    raise invalid_request("A folder has no content.")
                parent, name, existing = self.items[target.parent_id], target.name, target
            else:
                if parent.id not in self.items:
                    raise GraphError(404, "itemNotFound", "The parent folder was deleted.")
                self._validate_new_name(parent, name, False)
                existing = self.child(parent, name)
                if existing is not None and existing.is_folder:
                    raise GraphError(409, "nameAlreadyExists",
                                     "The specified item name already exists.")
                name, existing = self._resolve_conflict(parent, name, False, behavior)
            self.check_if_match(existing, if_match)
            self.check_quota(size, existing)
            fs_times = self._parse_fs_info(fs_info)
            if existing is None:
                item = Item(self._new_id(), name, parent.id, False, time.time())
                self.items[item.id] = item
                parent.children[name.casefold()] = item.id
                created = True
            else:
                item, created = existing, False
            destination = os.path.join(self.disk_path(parent), item.name)
            _move_file(staged, destination)
            item.size = size
            item.quick_xor = quick_xor
            item.fs_modified = fs_times.get("modified", float(int(time.time())))
            os.utime(destination, (item.fs_modified, item.fs_modified))
            if "created" in fs_times or created:
                item.fs_created = fs_times.get("created", item.fs_modified)
            if not created:
                self._bump(item, content=True)
            else:
                self._bump(item)
            return item, created

    def _parse_fs_info(self, fs_info):
        if fs_info is None:
            return {}
        if not isinstance(fs_info, dict):
            raise invalid_request("fileSystemInfo must be an object.")
        times = {}
        if "lastModifiedDateTime" in fs_info:
            times["modified"] = parse_time(fs_info["lastModifiedDateTime"])
        if "createdDateTime" in fs_info:
            times["created"] = parse_time(fs_info["createdDateTime"])
        return times

    def update(self, item, name=None, new_parent=None, fs_info=None, behavior="fail",
               if_match=None):
        """PATCH: rename, move (which resets the mtime unless fileSystemInfo is sent),
        and set times."""
        with self.lock:
            if item.id == self.root_id and (name is not None or new_parent is not None):
                raise invalid_request("The root cannot be renamed or moved.")
            self.check_if_match(item, if_match)
            fs_times = self._parse_fs_info(fs_info)
            parent = self.items[item.parent_id] if item.parent_id else None
            target_parent = new_parent if new_parent is not None else parent
            target_name = name if name is not None else item.name
            moved = new_parent is not None and new_parent.id != item.parent_id
            if moved or target_name != item.name:
                if moved:
                    ancestor = target_parent
                    while ancestor is not None:
                        if ancestor.id == item.id:
                            raise invalid_request("A folder cannot be moved into itself.")
                        ancestor = self.items.get(ancestor.parent_id)
                self._validate_new_name(target_parent, target_name, item.is_folder)
                if item.is_folder:
                    self._check_path_length(target_parent, target_name,
                                            self._longest_suffix(item))
                clash = self.child(target_parent, target_name)
                if clash is not None and clash.id != item.id:
                    target_name, replaced = self._resolve_conflict(
                        target_parent, target_name, item.is_folder, behavior)
                    if replaced is not None:
                        self._delete_tree(replaced)
                old_disk = self.disk_path(item)
                new_disk = os.path.join(self.disk_path(target_parent), target_name)
                os.rename(old_disk, new_disk)
                del parent.children[item.name.casefold()]
                old_parent = parent
                item.name = target_name
                item.parent_id = target_parent.id
                target_parent.children[target_name.casefold()] = item.id
                if moved:
                    self._bump(old_parent)
                    if "modified" not in fs_times:
                        fs_times["modified"] = float(int(time.time()))
            if "modified" in fs_times:
                item.fs_modified = fs_times["modified"]
                os.utime(self.disk_path(item), (item.fs_modified, item.fs_modified))
            if "created" in fs_times:
                item.fs_created = fs_times["created"]
            self._bump(item, metadata=True)
            return item

    def touch(self, item):
        """A metadata change by the service itself (a new eTag, same content)."""
        with self.lock:
            if item.id in self.items:
                self._bump(item, metadata=True)

    def delete(self, item, if_match=None):
        with self.lock:
            if item.id == self.root_id:
                raise GraphError(403, "accessDenied", "The root cannot be deleted.")
            self.check_if_match(item, if_match)
            self._delete_tree(item)

    def _delete_tree(self, item):
        parent = self.items[item.parent_id]
        disk = self.disk_path(item)
        if item.is_folder:
            shutil.rmtree(disk)
        else:
            os.unlink(disk)
        del parent.children[item.name.casefold()]
        self._forget(item)
        self._bump(parent)

    def _forget(self, item):
        if item.is_folder:
            for child_id in list(item.children.values()):
                self._forget(self.items[child_id])
        del self.items[item.id]
        self.seq += 1
        self.tombstones[item.id] = Tombstone(item, self.seq)

    def wipe(self):
        with self.lock:
            root = self.items[self.root_id]
            for child_id in list(root.children.values()):
                self._delete_tree(self.items[child_id])

    # ---- delta ----------------------------------------------------------------------

    def delta_token(self, seq=None):
        raw = f"{self.delta_epoch}.{self.seq if seq is None else seq}"
        return "aTE" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def parse_delta_token(self, token):
        """The sequence number a token stands for, or None when it is unknown/expired."""
        if not token.startswith("aTE"):
            return None
        try:
            padded = token[3:] + "=" * (-len(token[3:]) % 4)
            epoch, seq = base64.urlsafe_b64decode(padded).decode().split(".")
            seq = int(seq)
        except (ValueError, UnicodeDecodeError):
            return None
        if epoch != self.delta_epoch or seq > self.seq or seq < 0:
            return None
        return seq

    def expire_delta_tokens(self):
        with self.lock:
            self.delta_epoch = secrets.token_hex(4)

    def changes_since(self, since):
        """Items to report: live ones in tree order (parents first), then deletions.

        since None means a full enumeration (no deletions)."""
        with self.lock:
            live = []
            stack = [self.items[self.root_id]]
            while stack:
                item = stack.pop()
                if since is None or item.changed_seq > since:
                    live.append(item)
                if item.is_folder:
                    kids = sorted((self.items[i] for i in item.children.values()),
                                  key=lambda k: k.name.casefold(), reverse=True)
                    stack.extend(kids)
            if since is None:
                return live, []
            gone = sorted((t for t in self.tombstones.values() if t.changed_seq > since),
                          key=lambda t: t.changed_seq)
            return live, gone


def _move_file(source, destination):
    try:
        os.replace(source, destination)
    except OSError:
        shutil.move(source, destination)
