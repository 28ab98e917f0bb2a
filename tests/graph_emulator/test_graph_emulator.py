"""Unit tests of the Graph emulator itself, so that a bug in it cannot hide one in the
client. Each test runs its own emulator in-process on ephemeral ports (one test runs
the CLI as a child process through emulator_fixture)."""

import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from emulator_fixture import EmulatorProcess, http_request  # noqa: E402
from graph_emulator import Emulator  # noqa: E402
from quickxorhash import QuickXorHash, quickxorhash_b64, reference_quickxorhash  # noqa: E402

UNIT = 327680


class EmulatorTest(unittest.TestCase):
    settings = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="graph-emulator-unit-")
        self.root = os.path.join(self.tmp, "root")
        self.emu = Emulator(self.root, dict(self.settings)).start()
        self.token = self.ctl("POST", "/tokens")["access_token"]

    def tearDown(self):
        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ctl(self, method, path, body=None):
        status, _, data = http_request(method, self.emu.control_url + path,
                                       body if body is not None else {})
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def g(self, method, path, body=None, headers=None, token=True):
        all_headers = {"Authorization": "Bearer " + self.token} if token else {}
        all_headers.update(headers or {})
        url = path if path.startswith("http") else self.emu.graph_url + path
        status, response_headers, data = http_request(method, url, body, all_headers)
        parsed = None
        if response_headers.get("content-type", "").startswith("application/json"):
            parsed = json.loads(data)
        return status, response_headers, parsed if parsed is not None else data

    def put_file(self, path, data, headers=None, query=""):
        return self.g("PUT", f"/me/drive/root:{urllib.parse.quote(path)}:/content{query}",
                      data, headers)

    def mkdir(self, parent_path, name, behavior=None):
        body = {"name": name, "folder": {}}
        if behavior:
            body["@microsoft.graph.conflictBehavior"] = behavior
        target = "/me/drive/root/children" if parent_path == "/" else \
            f"/me/drive/root:{urllib.parse.quote(parent_path)}:/children"
        return self.g("POST", target, body)

    def error_code(self, body):
        return body["error"]["code"], body["error"]["innerError"].get("code")


class QuickXorHashTest(unittest.TestCase):
    def test_vectors_from_rclone_and_streaming(self):
        vectors = {"": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                   "Sg==": "SgAAAAAAAAAAAAAAAQAAAAAAAAA=",
                   "tbQ=": "taAFAAAAAAAAAAAAAgAAAAAAAAA=",
                   "2fuxhBJXtpWFe8dOfdGeHw==": "O9tHLAghgSvYohKFyMMxnNCHaHg=",
                   "T6LYJIfDh81JrAK309H2JMJTXis=": "zBTHrspn3mEcohlJdIUAbjGNaNg="}
        for given, expected in vectors.items():
            self.assertEqual(quickxorhash_b64(base64.b64decode(given)), expected)
        self.assertEqual(quickxorhash_b64(b"hello world"), "aCgDG9jwBhDc4Q1yawMZAAAAAAA=")
        data = os.urandom(5000)
        for chunk in (1, 7, 159, 160, 161, 4096):
            hasher = QuickXorHash()
            for start in range(0, len(data), chunk):
                hasher.update(data[start:start + chunk])
            self.assertEqual(hasher.digest(), reference_quickxorhash(data), chunk)


class DriveAndAuthTest(EmulatorTest):
    def test_drive_resource_and_root(self):
        status, _, drive = self.g("GET", "/me/drive")
        self.assertEqual(status, 200)
        self.assertEqual(drive["id"], self.emu.drive.drive_id)
        self.assertIn("remaining", drive["quota"])
        status, _, root = self.g("GET", f"/drives/{drive['id']}/root")
        self.assertEqual((status, root["root"], root["name"]), (200, {}, "root"))
        self.assertNotIn("id", root["parentReference"])
        status, _, body = self.g("GET", "/drives/b!other/root")
        self.assertEqual((status, body["error"]["code"]), (404, "itemNotFound"))

    def test_graph_requires_a_valid_bearer_token(self):
        status, headers, body = self.g("GET", "/me/drive/root", token=False)
        self.assertEqual((status, body["error"]["code"]), (401, "InvalidAuthenticationToken"))
        self.assertIn("Bearer", headers["www-authenticate"])
        status, _, _ = self.g("GET", "/me/drive/root", token=False,
                              headers={"Authorization": "bearer " + self.token})
        self.assertEqual(status, 200)  # the scheme is case-insensitive
        self.ctl("POST", "/tokens/expire")
        status, headers, body = self.g("GET", "/me/drive/root")
        self.assertEqual(status, 401)
        self.assertIn("expired", body["error"]["message"])


class ListingAndNamesTest(EmulatorTest):
    def test_children_paging_with_next_link_and_select(self):
        for i in range(25):
            self.ctl("POST", "/remote/write", {"path": f"/f{i:02d}.bin", "text": str(i)})
        names, url, pages = [], "/me/drive/root/children?$top=10&$select=id,name", 0
        while url:
            status, _, page = self.g("GET", url)
            self.assertEqual(status, 200)
            pages += 1
            for value in page["value"]:
                self.assertEqual(set(value), {"id", "name"})
                names.append(value["name"])
            url = page.get("@odata.nextLink")
            if url:
                self.assertTrue(url.startswith(self.emu.graph_url))
        self.assertEqual(pages, 3)
        self.assertEqual(sorted(names), [f"f{i:02d}.bin" for i in range(25)])
        status, _, body = self.g("GET", "/me/drive/root/children?$top=1001")
        self.assertEqual(status, 400)
        status, _, page = self.g("GET", "/me/drive/root/children")
        self.assertEqual(len(page["value"]), 25)
        item = page["value"][0]
        for key in ("id", "name", "size", "eTag", "cTag", "fileSystemInfo", "file",
                    "parentReference", "@microsoft.graph.downloadUrl"):
            self.assertIn(key, item)
        self.assertEqual(item["parentReference"]["path"], "/drive/root:")

    def test_case_insensitive_and_case_preserving(self):
        status, _, folder = self.mkdir("/", "Case")
        self.assertEqual(status, 201)
        status, _, same = self.g("GET", "/me/drive/root:/cASE")
        self.assertEqual((status, same["id"], same["name"]), (200, folder["id"], "Case"))
        status, _, body = self.mkdir("/", "CASE")
        self.assertEqual((status, body["error"]["code"]), (409, "nameAlreadyExists"))
        status, _, renamed = self.mkdir("/", "CASE", "rename")
        self.assertEqual((status, renamed["name"]), (201, "CASE 1"))
        status, _, first = self.put_file("/Case/File.txt", b"one")
        self.assertEqual(status, 201)
        status, _, second = self.put_file("/case/FILE.TXT", b"two")
        self.assertEqual((status, second["id"], second["name"]), (200, first["id"], "File.txt"))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "Case"))), ["File.txt"])
        status, _, third = self.put_file("/case/file.txt", b"3", query=
                                         "?@microsoft.graph.conflictBehavior=rename")
        self.assertEqual((status, third["name"]), (201, "file 1.txt"))

    def test_name_rules(self):
        bad = ["a:b", "a*b", 'a"b', "a<b", "a>b", "a?b", "a|b", "a\\b", " lead", "trail ",
               "dot.", "CON", "con.txt", "LPT9", "com0", ".lock", "Desktop.ini", "~$doc",
               "x_vti_y", "~folder"]
        for name in bad:
            status, _, body = self.mkdir("/", name)
            self.assertEqual(status, 400, name)
            self.assertEqual(body["error"]["code"], "invalidRequest", name)
        status, _, body = self.put_file("/" + "bad:name", b"x")
        self.assertEqual(status, 400)
        for good in ("ok name", "~file.txt", "a.b", "Ünïcode ✓"):
            if good.startswith("~"):
                status, _, _ = self.put_file("/" + good, b"x")
            else:
                status, _, _ = self.mkdir("/", good)
            self.assertEqual(status, 201, good)

    def test_addressing_forms_and_conditional_get(self):
        drive_id = self.emu.drive.drive_id
        _, _, folder = self.mkdir("/", "Docs #1")
        status, _, item = self.g("PUT", f"/drives/{drive_id}/items/{folder['id']}:/a%25b.txt:"
                                 "/content", b"x")
        self.assertEqual((status, item["name"]), (201, "a%b.txt"))
        self.assertEqual(item["parentReference"]["path"], f"/drives/{drive_id}/root:/Docs%20%231")
        for path in ("/me/drive/root:/Docs%20%231/a%25b.txt", "/me/drive/root:/Docs%20%231/"
                     "a%25b.txt:", f"/me/drive/items/{item['id']}", "/me/drive/items/root:/Docs"
                     "%20%231/a%25b.txt", "/drive/root:/docs%20%231/A%25B.TXT"):
            status, _, found = self.g("GET", path)
            self.assertEqual((status, found["id"]), (200, item["id"]), path)
        status, _, _ = self.g("GET", f"/me/drive/items/{item['id']}", None,
                              {"If-None-Match": item["eTag"]})
        self.assertEqual(status, 304)
        for i in range(3):
            self.put_file(f"/Docs #1/n{i}", b"")
        _, _, page = self.g("GET", f"/drives/{drive_id}/root:/Docs%20%231:/children?$top=2")
        self.assertTrue(page["@odata.nextLink"].startswith(f"{self.emu.graph_url}/drives/"))
        _, _, page2 = self.g("GET", page["@odata.nextLink"])
        self.assertEqual(len(page["value"]) + len(page2["value"]), 4)

    def test_path_length_limit(self):
        parent = "/".join(["d" * 99] * 3)  # 299 characters
        for depth in range(1, 4):
            self.ctl("POST", "/remote/mkdir", {"path": "/" + "/".join(["d" * 99] * depth)})
        status, _, _ = self.put_file("/" + parent + "/" + "f" * 100, b"x")  # 400 chars
        self.assertEqual(status, 201)
        status, _, body = self.put_file("/" + parent + "/" + "g" * 101, b"x")  # 401
        self.assertEqual(status, 400)
        self.assertEqual(self.error_code(body), ("invalidRequest", "pathIsTooLong"))
        _, _, deep = self.mkdir("/", "e" * 200)  # moving the 400-character tree below it
        status, _, body = self.g("PATCH", "/me/drive/root:/" + "d" * 99, {
            "parentReference": {"id": deep["id"]}})
        self.assertEqual((status, self.error_code(body)[1]), (400, "pathIsTooLong"))


class ChangesTest(EmulatorTest):
    def test_ids_survive_rename_and_move(self):
        _, _, a = self.mkdir("/", "A")
        _, _, b = self.mkdir("/", "B b")
        _, _, f = self.put_file("/A/file.txt", b"data")
        status, _, renamed = self.g("PATCH", f"/me/drive/items/{f['id']}", {"name": "new.txt"})
        self.assertEqual((status, renamed["id"], renamed["name"]), (200, f["id"], "new.txt"))
        moved_at = int(time.time())
        status, _, moved = self.g("PATCH", f"/me/drive/items/{f['id']}",
                                  {"parentReference": {"id": b["id"]}})
        self.assertEqual((status, moved["id"]), (200, f["id"]))
        self.assertEqual(moved["parentReference"]["path"], "/drive/root:/B%20b")
        self.assertGreaterEqual(  # a move resets the mtime unless it is sent again
            self.emu.drive.items[f["id"]].fs_modified, moved_at)
        status, _, found = self.g("GET", "/me/drive/root:/B%20b/new.txt")
        self.assertEqual((status, found["id"]), (200, f["id"]))
        self.assertTrue(os.path.isfile(os.path.join(self.root, "B b", "new.txt")))
        status, _, kept = self.g("PATCH", f"/me/drive/items/{f['id']}", {
            "parentReference": {"id": a["id"]},
            "fileSystemInfo": {"lastModifiedDateTime": "2020-01-02T03:04:05.678Z"}})
        self.assertEqual(kept["fileSystemInfo"]["lastModifiedDateTime"], "2020-01-02T03:04:05Z")
        status, _, body = self.g("PATCH", f"/me/drive/items/{f['id']}",
                                 {"parentReference": {"id": "root"}})
        self.assertEqual(status, 400)
        status, _, body = self.g("PATCH", f"/me/drive/items/{a['id']}",
                                 {"parentReference": {"id": a["id"]}})
        self.assertEqual(status, 400)

    def test_etag_and_ctag_changes_and_if_match(self):
        _, _, v1 = self.put_file("/x.bin", b"one")
        _, _, v2 = self.g("PATCH", f"/me/drive/items/{v1['id']}", {"name": "y.bin"})
        self.assertNotEqual(v1["eTag"], v2["eTag"])
        self.assertEqual(v1["cTag"], v2["cTag"])  # metadata only
        status, _, v3 = self.g("PUT", f"/me/drive/items/{v1['id']}/content", b"two")
        self.assertEqual(status, 200)
        self.assertNotIn(v3["eTag"], (v1["eTag"], v2["eTag"]))
        self.assertNotEqual(v3["cTag"], v2["cTag"])
        status, _, body = self.g("PUT", f"/me/drive/items/{v1['id']}/content", b"three",
                                 {"If-Match": v2["eTag"]})
        self.assertEqual((status, body["error"]["code"]), (412, "resourceModified"))
        with open(os.path.join(self.root, "y.bin"), "rb") as f:
            self.assertEqual(f.read(), b"two")
        status, _, _ = self.g("PUT", f"/me/drive/items/{v1['id']}/content", b"four",
                              {"If-Match": v3["eTag"]})
        self.assertEqual(status, 200)
        self.ctl("POST", "/remote/write", {"path": "/y.bin", "text": "other client"})
        status, _, _ = self.g("DELETE", f"/me/drive/items/{v1['id']}", None,
                              {"If-Match": v3["eTag"]})
        self.assertEqual(status, 412)
        status, _, _ = self.g("DELETE", f"/me/drive/items/{v1['id']}")
        self.assertEqual(status, 204)
        self.assertFalse(os.path.exists(os.path.join(self.root, "y.bin")))
        status, _, _ = self.g("GET", f"/me/drive/items/{v1['id']}")
        self.assertEqual(status, 404)

    def test_simple_upload_sizes_conflicts_and_quota(self):
        status, _, empty = self.put_file("/empty", b"")
        self.assertEqual((status, empty["size"]), (201, 0))
        self.assertEqual(empty["file"]["hashes"]["quickXorHash"], quickxorhash_b64(b""))
        self.assertEqual(self.emu.settings["simple_upload_max"], 4 * 1024 * 1024)
        self.ctl("POST", "/settings", {"simple_upload_max": 1000})
        self.assertEqual(self.put_file("/big", b"x" * 1001)[0], 413)
        self.assertEqual(self.put_file("/big", b"x" * 1000)[0], 201)
        status, _, body = self.put_file("/empty", b"", query=
                                        "?@microsoft.graph.conflictBehavior=fail")
        self.assertEqual((status, body["error"]["code"]), (409, "nameAlreadyExists"))
        self.ctl("POST", "/settings", {"quota_bytes": 100})
        status, _, body = self.put_file("/q", b"x" * 101)
        self.assertEqual((status, body["error"]["code"]), (507, "quotaLimitReached"))
        status, _, body = self.g("POST", "/me/drive/root:/s:/createUploadSession",
                                 {"item": {"fileSize": 101}})
        self.assertEqual(status, 507)


class UploadSessionTest(EmulatorTest):
    def create(self, path="/big.bin", item=None):
        status, _, body = self.g("POST", f"/me/drive/root:{path}:/createUploadSession",
                                 {"item": item or {}})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["uploadUrl"].startswith(self.emu.content_url))
        return body["uploadUrl"]

    def fragment(self, url, data, start, total, headers=None):
        all_headers = {"Content-Range": f"bytes {start}-{start + len(data) - 1}/{total}"}
        all_headers.update(headers or {})
        status, _, body = http_request("PUT", url, data, all_headers)
        return status, json.loads(body) if body else None

    def test_fragment_rules_and_completion(self):
        data = os.urandom(2 * UNIT + 1000)
        total = len(data)
        url = self.create(item={"fileSystemInfo": {
            "lastModifiedDateTime": "2021-05-06T07:08:09Z"}})
        status, body = self.fragment(url, data[:1000], 0, total)  # not a multiple
        self.assertEqual(status, 400)
        status, _, _ = http_request("PUT", url, data[:UNIT])  # no Content-Range
        self.assertEqual(status, 400)
        status, _, _ = http_request("PUT", url, data[:UNIT], {
            "Content-Range": f"bytes 0-{UNIT}/{total}"})  # one byte more than sent
        self.assertEqual(status, 400)
        status, body = self.fragment(url, data[:UNIT], 0, total)
        self.assertEqual((status, body["nextExpectedRanges"]), (202, [f"{UNIT}-"]))
        status, body = self.fragment(url, data[:UNIT], 0, total)  # already stored
        self.assertEqual((status, body["error"]["code"]), (416, "invalidRange"))
        status, body = self.fragment(url, data[2 * UNIT:], 2 * UNIT, total)  # a gap
        self.assertEqual(status, 416)
        status, body = self.fragment(url, data[UNIT:2 * UNIT], UNIT, total + 1)
        self.assertEqual(status, 400)  # the total changed
        status, body = self.fragment(url, data[UNIT:2 * UNIT], UNIT, total)
        self.assertEqual(status, 202)
        status, _, progress = http_request("GET", url)
        self.assertEqual(json.loads(progress)["nextExpectedRanges"], [f"{2 * UNIT}-"])
        status, item = self.fragment(url, data[2 * UNIT:], 2 * UNIT, total)
        self.assertEqual((status, item["size"]), (201, total))
        self.assertEqual(item["file"]["hashes"]["quickXorHash"], quickxorhash_b64(data))
        self.assertEqual(item["fileSystemInfo"]["lastModifiedDateTime"], "2021-05-06T07:08:09Z")
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        status, _, _ = http_request("GET", url)
        self.assertEqual(status, 404)  # the session is gone once complete
        url = self.create()  # replacing an existing file by path answers 200
        status, item2 = self.fragment(url, b"abc", 0, 3)
        self.assertEqual((status, item2["id"]), (200, item["id"]))

    def test_sessions_refuse_empty_files_and_can_be_cancelled_or_expire(self):
        status, _, _ = self.g("POST", "/me/drive/root:/e:/createUploadSession",
                              {"item": {"fileSize": 0}})
        self.assertEqual(status, 400)
        url = self.create()
        status, _, _ = http_request("DELETE", url)
        self.assertEqual(status, 204)
        status, body = self.fragment(url, b"abc", 0, 3)
        self.assertEqual((status, body["error"]["innerError"]["code"]),
                         (404, "uploadSessionNotFound"))
        url = self.create()
        self.ctl("POST", "/upload-sessions/expire")
        status, _ = self.fragment(url, b"abc", 0, 3)
        self.assertEqual(status, 404)
        self.put_file("/exists", b"x")
        status, _, body = self.g("POST", "/me/drive/root:/exists:/createUploadSession",
                                 {"item": {"@microsoft.graph.conflictBehavior": "fail"}})
        self.assertEqual(status, 409)

    def test_lost_reply_and_dropped_fragment_then_resume(self):
        data = os.urandom(3 * UNIT)
        url = self.create()
        self.ctl("POST", "/faults", {"fault": "lose_reply", "on": "upload.fragment"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.fragment(url, data[:UNIT], 0, len(data))
        _, _, progress = http_request("GET", url)  # the fragment landed all the same
        self.assertEqual(json.loads(progress)["nextExpectedRanges"], [f"{UNIT}-"])
        self.ctl("POST", "/faults", {"fault": "drop", "keep_bytes": 1000, "store": True})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.fragment(url, data[UNIT:2 * UNIT], UNIT, len(data))
        _, _, progress = http_request("GET", url)  # part of it landed
        self.assertEqual(json.loads(progress)["nextExpectedRanges"], [f"{UNIT + 1000}-"])
        status, item = self.fragment(url, data[UNIT + 1000:], UNIT + 1000, len(data))
        self.assertEqual(status, 201)
        self.assertEqual(item["file"]["hashes"]["quickXorHash"], quickxorhash_b64(data))
        counters = self.ctl("GET", "/counters")
        self.assertEqual(counters["faults_fired"], 2)
        self.assertEqual(counters["statuses"]["upload.fragment dropped"], 2)

    def test_uploads_can_go_unhashed_for_benchmarks(self):
        self.ctl("POST", "/settings", {"hash_uploads": False})
        url = self.create()
        status, item = self.fragment(url, b"abc", 0, 3)
        self.assertEqual(status, 201)
        self.assertNotIn("hashes", item["file"])

    def test_a_client_that_dies_mid_fragment_sends_it_again(self):
        # A killed client leaves part of a fragment behind: it neither counts nor
        # enters the hash, and the fragment sent again completes the file.
        data = os.urandom(2 * UNIT)
        url = self.create()
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        conn.putrequest("PUT", parts.path)
        conn.putheader("Content-Length", str(UNIT))
        conn.putheader("Content-Range", f"bytes 0-{UNIT - 1}/{len(data)}")
        conn.endheaders()
        conn.send(os.urandom(UNIT // 2))  # other bytes than the ones that will land
        conn.close()
        for _ in range(100):
            _, _, progress = http_request("GET", url)
            if json.loads(progress)["nextExpectedRanges"] == ["0-"]:
                break
            time.sleep(0.02)
        self.assertEqual(json.loads(progress)["nextExpectedRanges"], ["0-"])
        self.assertEqual(self.fragment(url, data[:UNIT], 0, len(data))[0], 202)
        status, item = self.fragment(url, data[UNIT:], UNIT, len(data))
        self.assertEqual(status, 201)
        self.assertEqual(item["file"]["hashes"]["quickXorHash"], quickxorhash_b64(data))

    def test_if_match_is_checked_again_when_the_session_commits(self):
        _, _, item = self.put_file("/shared.bin", b"v1")
        status, _, session = self.g("POST", f"/me/drive/items/{item['id']}/createUploadSession",
                                    {}, {"If-Match": item["eTag"]})
        self.assertEqual(status, 200)
        self.ctl("POST", "/remote/write", {"path": "/shared.bin", "text": "other client"})
        status, body = self.fragment(session["uploadUrl"], b"mine", 0, 4)
        self.assertEqual((status, body["error"]["code"]), (412, "resourceModified"))
        self.assertEqual(base64.b64decode(self.ctl("GET", "/remote/read?path=/shared.bin")[
            "content_b64"]), b"other client")

    def test_session_faults(self):
        self.ctl("POST", "/faults", {"fault": "session_gone"})
        url = self.create()
        status, _ = self.fragment(url, b"abc", 0, 3)
        self.assertEqual(status, 404)  # right after creation, as D#1570 reports
        self.ctl("POST", "/faults", {"fault": "omit_hashes"})
        status, item = self.fragment(url, b"abc", 0, 3)
        self.assertEqual(status, 201)
        self.assertNotIn("hashes", item["file"])
        _, _, stored = self.g("GET", "/me/drive/root:/big.bin")
        self.assertEqual(stored["file"]["hashes"]["quickXorHash"], quickxorhash_b64(b"abc"))

    def test_authorization_header_on_upload_and_download_urls_is_counted(self):
        url = self.create()
        self.fragment(url, b"abc", 0, 3, {"Authorization": "Bearer " + self.token})
        status, headers, _ = self.g("GET", "/me/drive/root:/big.bin:/content")
        http_request("GET", headers["location"])
        http_request("GET", headers["location"], headers={"Authorization": "Bearer x"})
        counters = self.ctl("GET", "/counters")
        self.assertEqual(counters["auth_header_on_content_urls"], {"download": 1, "upload": 1})
        self.assertEqual(counters["requests"]["download"], 2)


class DownloadTest(EmulatorTest):
    def test_redirect_to_other_port_ranges_and_expiry(self):
        data = bytes(range(256)) * 4
        self.put_file("/d.bin", data)
        status, headers, _ = self.g("GET", "/me/drive/root:/d.bin:/content")
        self.assertEqual(status, 302)
        location = headers["location"]
        self.assertEqual(urllib.parse.urlsplit(location).port, self.emu.content_port)
        self.assertNotEqual(self.emu.content_port, self.emu.graph_port)
        status, headers, body = http_request("GET", location, headers={"Range": "bytes=2-5"})
        self.assertEqual((status, body, headers["content-range"]),
                         (206, data[2:6], f"bytes 2-5/{len(data)}"))
        status, headers, body = http_request("GET", location, headers={"Range": "bytes=1000-"})
        self.assertEqual((status, body), (206, data[1000:]))
        status, headers, _ = http_request("GET", location, headers={"Range": "bytes=5000-"})
        self.assertEqual((status, headers["content-range"]), (416, f"bytes */{len(data)}"))
        status, _, body = http_request("GET", location, headers={"Range": "bytes=-10"})
        self.assertEqual((status, body), (200, data))  # suffix ranges are ignored
        self.ctl("POST", "/faults", {"fault": "ignore_range"})
        status, _, body = http_request("GET", location, headers={"Range": "bytes=2-5"})
        self.assertEqual((status, body), (200, data))
        self.ctl("POST", "/download-urls/expire")
        status, _, _ = http_request("GET", location, headers={"Range": "bytes=2-5"})
        self.assertEqual(status, 401)
        _, headers, _ = self.g("GET", "/me/drive/root:/d.bin:/content")
        status, _, body = http_request("GET", headers["location"])
        self.assertEqual((status, body), (200, data))

    def test_parallel_uploads_and_ranged_downloads(self):
        blobs = {f"/p{i}": os.urandom(40000 + i) for i in range(6)}

        def round_trip(path):
            status, _, _ = self.put_file(path, blobs[path])
            _, headers, _ = self.g("GET", f"/me/drive/root:{path}:/content")
            parts = [http_request("GET", headers["location"], headers={
                "Range": f"bytes={start}-{start + 32767}"})[2]
                for start in range(0, len(blobs[path]), 32768)]
            return status, b"".join(parts)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = dict(zip(blobs, pool.map(round_trip, blobs)))
        for path, (status, data) in results.items():
            self.assertEqual((status, data), (201, blobs[path]), path)

    def test_connection_dropped_mid_download(self):
        self.put_file("/half", b"0123456789")
        _, headers, _ = self.g("GET", "/me/drive/root:/half:/content")
        self.ctl("POST", "/faults", {"fault": "drop", "on": "download", "keep_bytes": 4})
        with self.assertRaises(http.client.IncompleteRead) as caught:
            http_request("GET", headers["location"])
        self.assertEqual(caught.exception.partial, b"0123")
        self.assertEqual(http_request("GET", headers["location"])[2], b"0123456789")

    def test_download_urls_expire_after_their_ttl(self):
        self.ctl("POST", "/settings", {"download_url_ttl": 0.2})
        self.put_file("/t", b"abc")
        _, headers, _ = self.g("GET", "/me/drive/root:/t:/content")
        self.assertEqual(http_request("GET", headers["location"])[0], 200)
        time.sleep(0.3)
        self.assertEqual(http_request("GET", headers["location"])[0], 401)


class DeltaTest(EmulatorTest):
    def sync(self, url):
        items = []
        while True:
            status, _, page = self.g("GET", url)
            self.assertEqual(status, 200, page)
            items += page["value"]
            self.assertNotEqual("@odata.nextLink" in page, "@odata.deltaLink" in page)
            if "@odata.deltaLink" in page:
                return items, page["@odata.deltaLink"]
            url = page["@odata.nextLink"]

    def test_delta_tokens_deletions_and_resync(self):
        self.mkdir("/", "A")
        self.put_file("/A/one", b"1")
        self.put_file("/two", b"2")
        items, link = self.sync("/me/drive/root/delta?$top=2")
        self.assertEqual([i["name"] for i in items], ["root", "A", "one", "two"])
        _, _, first = self.g("GET", "/me/drive/root/delta?$top=2")
        again = [self.g("GET", first["@odata.nextLink"])[2] for _ in range(2)]
        self.assertEqual(again[0], again[1])  # a nextLink can be retried
        self.assertTrue(all("path" not in i["parentReference"] for i in items))
        items, link = self.sync(link)
        self.assertEqual(items, [])
        one_id = self.ctl("GET", "/remote/item?path=/A/one")["id"]
        two_id = self.ctl("GET", "/remote/item?path=/two")["id"]
        self.ctl("POST", "/remote/rename", {"path": "/A/one", "new_name": "uno"})
        self.ctl("POST", "/remote/delete", {"path": "/two"})
        items, link = self.sync(link)
        by_id = {i["id"]: i for i in items}
        self.assertEqual(by_id[one_id]["name"], "uno")
        self.assertEqual(by_id[two_id]["deleted"], {})
        self.assertNotIn("name", by_id[two_id])
        self.assertNotIn(self.ctl("GET", "/remote/item?path=/A")["id"] + "x", by_id)
        self.assertEqual(by_id[one_id]["parentReference"]["id"],
                         self.ctl("GET", "/remote/item?path=/A")["id"])
        _, _, latest = self.g("GET", "/me/drive/root/delta?token=latest")
        self.assertEqual(latest["value"], [])
        status, headers, body = self.g("GET", "/me/drive/root/delta?token=bogus")
        self.assertEqual((status, body["error"]["code"]), (410, "resyncRequired"))
        self.assertTrue(headers["location"].startswith(self.emu.graph_url))
        self.ctl("POST", "/delta/expire")
        status, _, _ = self.g("GET", link)
        self.assertEqual(status, 410)


class DeviceCodeTest(EmulatorTest):
    settings = {"device_code_interval": 5}

    def post_form(self, endpoint, form):
        status, _, body = http_request(
            "POST", f"{self.emu.login_url}/common/oauth2/v2.0/{endpoint}",
            urllib.parse.urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        return status, json.loads(body)

    def start_flow(self):
        status, code = self.post_form("devicecode", {
            "client_id": "app", "scope": "Files.ReadWrite offline_access"})
        self.assertEqual(status, 200)
        self.assertEqual((type(code["interval"]), type(code["expires_in"])), (int, int))
        return code

    def poll(self, code):
        return self.post_form("token", {"grant_type":
                                        "urn:ietf:params:oauth:grant-type:device_code",
                                        "client_id": "app",
                                        "device_code": code["device_code"]})

    def test_flow_states(self):
        self.assertEqual(self.post_form("devicecode", {})[1]["error"], "invalid_request")
        code = self.start_flow()
        self.assertEqual(code["interval"], 5)
        self.assertEqual(self.poll(code)[1]["error"], "authorization_pending")
        self.assertEqual(self.poll(code)[1]["error"], "slow_down")  # 5 s have not passed
        self.assertEqual(self.emu.auth.device_codes[code["device_code"]].interval, 10)
        self.ctl("POST", "/settings", {"device_code_interval": 0})  # codes from now on
        code = self.start_flow()
        self.assertEqual(self.poll(code)[1]["error"], "authorization_pending")
        self.ctl("POST", "/device/approve", {"user_code": code["user_code"]})
        status, tokens = self.poll(code)
        self.assertEqual(status, 200)
        self.assertIn("refresh_token", tokens)
        status, _, _ = self.g("GET", "/me/drive", token=False,
                              headers={"Authorization": "Bearer " + tokens["access_token"]})
        self.assertEqual(status, 200)
        self.assertEqual(self.poll(code)[1]["error"], "invalid_grant")  # redeemed already
        declined = self.start_flow()
        self.ctl("POST", "/device/decline")
        self.assertEqual(self.poll(declined)[1]["error"], "authorization_declined")
        expired = self.start_flow()
        self.ctl("POST", "/device/expire", {"user_code": expired["user_code"]})
        self.assertEqual(self.poll(expired)[1]["error"], "expired_token")
        self.assertEqual(self.poll({"device_code": "nope"})[1]["error"],
                         "bad_verification_code")

    def test_access_token_expiry_and_refresh_rotation(self):
        self.ctl("POST", "/settings", {"access_token_ttl": 0.3})
        tokens = self.ctl("POST", "/tokens")
        auth = {"Authorization": "Bearer " + tokens["access_token"]}
        self.assertEqual(self.g("GET", "/me/drive", token=False, headers=auth)[0], 200)
        time.sleep(0.4)
        self.assertEqual(self.g("GET", "/me/drive", token=False, headers=auth)[0], 401)
        refresh = {"grant_type": "refresh_token", "client_id": "app",
                   "refresh_token": tokens["refresh_token"]}
        status, fresh = self.post_form("token", refresh)
        self.assertEqual(status, 200)
        self.assertNotEqual(fresh["refresh_token"], tokens["refresh_token"])
        self.assertEqual(self.post_form("token", refresh)[1]["error"], "invalid_grant")
        self.assertEqual(self.post_form("token", dict(refresh, client_secret="s"))[1]["error"],
                         "invalid_client")
        self.ctl("POST", "/tokens/revoke-refresh")
        status, body = self.post_form("token", dict(refresh,
                                                    refresh_token=fresh["refresh_token"]))
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))


class FaultTest(EmulatorTest):
    def test_throttling_faults(self):
        self.ctl("POST", "/faults", {"fault": "429", "on": "graph.children", "retry_after": 3})
        status, headers, body = self.g("GET", "/me/drive/root/children")
        self.assertEqual((status, headers.get("retry-after")), (429, "3"))
        self.assertEqual(body["error"]["code"], "activityLimitReached")
        self.assertEqual(self.g("GET", "/me/drive/root/children")[0], 200)  # fired once
        self.ctl("POST", "/faults", {"fault": "429", "times": 2, "skip": 1})
        statuses = [self.g("GET", "/me/drive/root")[0] for _ in range(4)]
        self.assertEqual(statuses, [200, 429, 429, 200])
        for fault, code in (("503", "serviceNotAvailable"), ("509", "bandwidthLimitExceeded")):
            self.ctl("POST", "/faults", {"fault": fault})
            status, headers, body = self.g("GET", "/me/drive/root")
            self.assertEqual((status, body["error"]["code"]), (int(fault), code))
            self.assertNotIn("retry-after", headers)
        counters = self.ctl("GET", "/counters")
        self.assertEqual(counters["faults_fired"], 5)
        self.assertEqual(counters["statuses"]["graph.children 200"], 1)
        self.assertEqual(counters["statuses"]["graph.children 429"], 1)
        self.assertEqual(counters["statuses"]["graph.item 429"], 2)
        self.ctl("POST", "/reset")
        self.assertEqual(self.ctl("GET", "/counters")["requests"], {})

    def test_server_error_and_slow_down_faults(self):
        self.ctl("POST", "/faults", {"fault": "500", "on": "graph.delta"})
        self.assertEqual(self.g("GET", "/me/drive/root/delta")[0], 500)
        self.assertEqual(self.g("GET", "/me/drive/root/delta")[0], 200)
        login = self.emu.login_url + "/common/oauth2/v2.0/"
        _, _, code = http_request("POST", login + "devicecode", b"client_id=a&scope=x")
        self.ctl("POST", "/faults", {"fault": "slow_down"})
        form = ("grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=a&"
                "device_code=" + json.loads(code)["device_code"]).encode()
        status, _, body = http_request("POST", login + "token", form)
        self.assertEqual((status, json.loads(body)["error"]), (400, "slow_down"))

    def test_stale_etag_after_upload(self):
        self.ctl("POST", "/faults", {"fault": "stale_etag", "on": "graph.upload"})
        _, _, item = self.put_file("/race", b"x")
        status, _, body = self.g("PATCH", f"/me/drive/items/{item['id']}", {"name": "r2"},
                                 {"If-Match": item["eTag"]})
        self.assertEqual((status, body["error"]["code"]), (412, "resourceModified"))
        self.ctl("POST", "/faults", {"fault": "412", "on": "graph.update"})
        status, _, _ = self.g("PATCH", f"/me/drive/items/{item['id']}", {"name": "r2"})
        self.assertEqual(status, 412)
        self.assertEqual(self.g("PATCH", f"/me/drive/items/{item['id']}", {"name": "r2"})[0], 200)

    def test_chunked_request_bodies_are_refused(self):
        status, _, body = self.g("PUT", "/me/drive/root:/c:/content", iter([b"abc"]),
                                 {"Transfer-Encoding": "chunked"})
        self.assertEqual(status, 411)

    def test_status_fault_that_stores_the_work(self):
        self.ctl("POST", "/faults", {"fault": "503", "on": "graph.upload", "store": True})
        status, _, _ = self.put_file("/stored", b"abc")
        self.assertEqual(status, 503)
        self.assertEqual(self.ctl("GET", "/remote/item?path=/stored")["size"], 3)

    def test_latency_and_bandwidth(self):
        self.put_file("/bw", b"z" * 100000)
        self.ctl("POST", "/settings", {"latency_ms": 100, "bandwidth_bps": 1000000})
        started = time.monotonic()
        _, headers, _ = self.g("GET", "/me/drive/root:/bw:/content")
        self.assertGreaterEqual(time.monotonic() - started, 0.1)
        started = time.monotonic()
        status, _, body = http_request("GET", headers["location"])
        self.assertEqual((status, len(body)), (200, 100000))
        self.assertGreaterEqual(time.monotonic() - started, 0.1 + 0.09)


class CommandLineTest(unittest.TestCase):
    def test_process_writes_port_file_serves_and_stops_on_sigterm(self):
        control_port_file = os.path.join(tempfile.gettempdir(),
                                         f"graph-emulator-control-{os.getpid()}")
        self.addCleanup(lambda: os.path.exists(control_port_file) and
                        os.unlink(control_port_file))
        emu = EmulatorProcess(["--access-token-ttl", "60",
                               "--control-port-file", control_port_file])
        os.makedirs(emu.root)
        with open(os.path.join(emu.root, "seed.txt"), "w") as f:
            f.write("seeded")
        with emu:
            info = emu.info
            self.assertEqual(len({info["graph_port"], info["content_port"],
                                  info["control_port"]}), 3)
            status, _, body = http_request(
                "GET", info["graph_url"] + "/me/drive/root:/seed.txt", headers=emu.bearer())
            self.assertEqual((status, json.loads(body)["size"]), (200, 6))
            with open(control_port_file) as f:
                self.assertEqual(int(f.read()), info["control_port"])
            process = emu.process
        self.assertEqual(process.returncode, 0)


if __name__ == "__main__":
    unittest.main()
