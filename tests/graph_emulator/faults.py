"""Fault injection, request counters and the latency/bandwidth pacer.

A fault rule is a JSON object added through the control API:
  {"fault": "429", "on": "graph.children", "times": 1, "skip": 0, "retry_after": 2}
- fault: "429" | "503" | "509" | "500" | "504" (that status with Graph's error body),
  "drop" (close the connection without a reply; on upload.fragment after reading
  keep_bytes of the body (default half), which are stored when "store": true; on
  download after sending keep_bytes of the body (default half)), "lose_reply" (do the
  work, then close without a reply), "ignore_range" (download answers 200 with the
  whole file), "slow_down" (a device-code poll answers slow_down), "omit_hashes" (the final
  upload reply carries no file.hashes), "session_gone" (upload URL answers 404),
  "stale_etag" (after an upload, the item's eTag changes once more, so the eTag in the
  reply is already stale, as D#800 reports), "412" (resourceModified, the eTag race).
- on: a request kind or a prefix of one ("graph" matches "graph.children"; "*" all).
- times: how many matching requests it hits (-1 for every one); skip: how many
  matching requests pass first.
"""

import threading
import time

STATUS_FAULTS = {
    "429": (429, "activityLimitReached", "The request has been throttled", "throttledRequest"),
    "503": (503, "serviceNotAvailable", "The service is not available. Try the request "
            "again after a delay.", None),
    "509": (509, "bandwidthLimitExceeded", "Bandwidth limit exceeded.", "throttledRequest"),
    "500": (500, "generalException", "An unspecified error has occurred.", None),
    "504": (504, "gatewayTimeout", "The gateway timed out.", None),
    "412": (412, "resourceModified", "The resource has changed since the caller last read "
            "it; usually an eTag mismatch", "entityTagDoesNotMatch"),
}
OTHER_FAULTS = {"drop", "lose_reply", "ignore_range", "slow_down", "omit_hashes",
                "session_gone", "stale_etag"}
DEFAULT_TARGET = {"drop": "upload.fragment", "lose_reply": "upload.fragment",
                  "ignore_range": "download", "slow_down": "auth.token",
                  "omit_hashes": "upload", "session_gone": "upload",
                  "stale_etag": "*"}


def kind_matches(pattern, kind):
    return pattern == "*" or kind == pattern or kind.startswith(pattern + ".")


class FaultBook:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rule):
        fault = str(rule.get("fault", ""))
        if fault not in STATUS_FAULTS and fault not in OTHER_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        clean = {
            "fault": fault,
            "on": str(rule.get("on", DEFAULT_TARGET.get(fault, "graph"))),
            "times": int(rule.get("times", 1)),
            "skip": int(rule.get("skip", 0)),
            "retry_after": rule.get("retry_after"),
            "keep_bytes": rule.get("keep_bytes"),
            "store": bool(rule.get("store", False)),
            "fired": 0,
        }
        if clean["retry_after"] is not None:
            clean["retry_after"] = int(clean["retry_after"])
        with self.lock:
            self.rules.append(clean)
        return clean

    def take(self, kind, faults):
        """The first live rule for this request kind among the given fault names, counted
        as fired; or None. Rules for other fault names are left alone."""
        with self.lock:
            for rule in self.rules:
                if rule["fault"] not in faults or not kind_matches(rule["on"], kind):
                    continue
                if rule["times"] != -1 and rule["fired"] >= rule["times"]:
                    continue
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    continue
                rule["fired"] += 1
                return dict(rule)
            return None

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self):
        with self.lock:
            self.rules = []


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = {}
            self.statuses = {}
            self.auth_header_on_content_urls = {"download": 0, "upload": 0}
            self.faults_fired = 0

    def count(self, kind, has_authorization):
        """Counts a request; the handler then reports its status through count_status."""
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            family = kind.split(".")[0]
            if has_authorization and family in self.auth_header_on_content_urls:
                self.auth_header_on_content_urls[family] += 1

    def count_status(self, kind, status):
        with self.lock:
            key = f"{kind} {status}"
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def fired(self):
        with self.lock:
            self.faults_fired += 1

    def snapshot(self):
        with self.lock:
            graph = sum(n for k, n in self.requests.items() if k.startswith("graph."))
            return {
                "requests": dict(self.requests),
                "statuses": dict(self.statuses),
                "graph_requests": graph,
                "auth_header_on_content_urls": dict(self.auth_header_on_content_urls),
                "faults_fired": self.faults_fired,
            }


class Pacer:
    """Added latency per request and one shared bandwidth limit for all transfers,
    like a single network link (parallel requests share it)."""

    def __init__(self, settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.next_free = 0.0

    def delay_request(self):
        latency_ms = self.settings["latency_ms"]
        if latency_ms > 0:
            time.sleep(latency_ms / 1000.0)

    def transfer(self, nbytes):
        """Sleeps as long as sending nbytes takes at the configured bandwidth."""
        bps = self.settings["bandwidth_bps"]
        if bps <= 0 or nbytes <= 0:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + nbytes / bps
            wait = self.next_free - now
        time.sleep(wait)
