"""Shared HTTP plumbing: a reply value, Graph's error body, body reading with the
bandwidth pacer, and a handler base that turns routes' replies into responses.

Handlers run on ThreadingHTTPServer threads with HTTP/1.1 keep-alive, so every reply
carries Content-Length and every request body is read (or the connection closed).
"""

import datetime
import http.server
import json
import sys
import traceback
import uuid

from drive import GraphError

CHUNK = 128 * 1024
DROP = object()  # a route's reply meaning: close the connection without answering


class Reply:
    def __init__(self, status, body=b"", headers=None, stream=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.stream = stream  # (file object, offset, length) for downloads
        self.truncate_after = None  # a fault: send this many body bytes, then hang up


def json_reply(status, obj, headers=None):
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Reply(status, json.dumps(obj).encode("utf-8"), all_headers)


def graph_error_reply(error, client_request_id=None):
    inner = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4())}
    if client_request_id:
        inner["client-request-id"] = client_request_id
    if error.inner:
        inner["code"] = error.inner
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    return json_reply(error.status, body, error.headers)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply goes out as two writes (headers, then body). With Nagle's algorithm on, the
    # second waits for the client's delayed ACK of the first: 40 ms added to every
    # request, which the service does not have and which hid our own round trips.
    disable_nagle_algorithm = True
    server_version = "GraphEmulator/1.0"
    paced = True  # add the configured latency before each request

    @property
    def emu(self):
        return self.server.emulator

    def log_message(self, fmt, *args):
        if self.emu.verbose:
            sys.stderr.write("graph-emulator: " + (fmt % args) + "\n")

    def content_length(self):
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return None
        return length if length >= 0 else None

    def read_body(self, paced=False):
        length = self.content_length() or 0
        self.body_consumed = True
        parts = []
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            if paced:
                self.emu.pacer.transfer(len(chunk))
            parts.append(chunk)
            length -= len(chunk)
        return b"".join(parts)

    def read_json(self, body):
        if not body.strip():
            return {}
        try:
            value = json.loads(body)
        except ValueError:
            raise GraphError(400, "invalidRequest", "The request body is not valid JSON.") \
                from None
        if not isinstance(value, dict):
            raise GraphError(400, "invalidRequest", "The request body must be a JSON object.")
        return value

    def route(self, method):  # overridden: returns a Reply or DROP
        raise NotImplementedError

    def _dispatch(self, method):
        self.body_consumed = False
        self.request_kind = None  # set by routes that count the request
        if self.paced:
            self.emu.pacer.delay_request()
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
                raise GraphError(411, "invalidRequest", "A Content-Length is required; "
                                 "chunked request bodies are not accepted.")
            reply = self.route(method)
        except GraphError as error:
            reply = graph_error_reply(error, self.headers.get("client-request-id"))
            if (self.content_length() or 0) > 0 and not self.body_consumed:
                self.close_connection = True  # the unread body would poison keep-alive
        except ConnectionError:
            self.close_connection = True
            return
        except Exception:  # an emulator bug: answer 500 and show it
            traceback.print_exc()
            reply = graph_error_reply(GraphError(500, "generalException",
                                                 "The emulator failed."))
            self.close_connection = True
        if reply is DROP:
            self.close_connection = True
            self.count_status("dropped")
            return
        self.count_status(reply.status)
        self.send(reply, head=(method == "HEAD"))

    def count_request(self, kind):
        """Counts this request under kind, noting an Authorization header."""
        self.request_kind = kind
        self.emu.counters.count(kind, "Authorization" in self.headers)

    def count_status(self, status):
        if self.request_kind is not None:
            self.emu.counters.count_status(self.request_kind, status)

    def send(self, reply, head=False):
        self.send_response(reply.status)
        headers = dict(reply.headers)
        headers.setdefault("request-id", str(uuid.uuid4()))
        if self.headers.get("client-request-id"):
            headers.setdefault("client-request-id", self.headers["client-request-id"])
        length = reply.stream[2] if reply.stream else len(reply.body)
        if reply.status not in (204, 304):
            headers["Content-Length"] = str(length)
        if self.close_connection:
            headers["Connection"] = "close"
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        if reply.stream:
            fileobj, offset, length = reply.stream
            if reply.truncate_after is not None:
                length = min(length, reply.truncate_after)
                self.close_connection = True
            self._stream(fileobj, offset, length)
        elif reply.body:
            self.wfile.write(reply.body)

    def _stream(self, fileobj, offset, length):
        try:
            fileobj.seek(offset)
            while length > 0:
                chunk = fileobj.read(min(CHUNK, length))
                if not chunk:
                    break
                self.emu.pacer.transfer(len(chunk))
                self.wfile.write(chunk)
                length -= len(chunk)
        finally:
            fileobj.close()

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")
