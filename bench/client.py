"""Small HTTP clients for the benchmark: a keep-alive client for timed requests, a raw-socket
SSE reader that is cheap enough not to be the bottleneck, and a `next`-link page follower."""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    elapsed: float  # seconds from sending the request to the last byte of the body

    def json(self):
        return json.loads(self.body)

    def snippet(self, n: int = 160) -> str:
        return self.body[:n].decode("utf-8", "replace").replace("\n", " ")


class Http:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closed it."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict | None = None) -> Response:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                started = time.perf_counter()
                self.conn.request("GET", path, headers=headers or {})
                resp = self.conn.getresponse()
                body = resp.read()
                elapsed = time.perf_counter() - started
                result = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, elapsed)
                if resp.will_close:
                    self.close()
                return result
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def path_of(href: str) -> str:
    """The path and query of a link (servers give absolute URLs; we stay on our connection)."""
    parts = urlsplit(href)
    return parts.path + ("?" + parts.query if parts.query else "")


@dataclass
class Pages:
    features: int = 0
    pages: int = 0
    elapsed: float = 0.0
    parse_s: float = 0.0  # client time spent in json.loads, included in elapsed
    first_ids: list = field(default_factory=list)
    ids_increasing: bool = True
    error: str | None = None
    capped: bool = False  # stopped at max_features, not at the last page


def follow_pages(client: Http, first_path: str, max_pages: int = 100_000, max_features: int | None = None) -> Pages:
    """GET a FeatureCollection page, then its rel=next link, until there is none."""
    result = Pages()
    path = first_path
    last_id = None
    started = time.perf_counter()
    while path and result.pages < max_pages:
        resp = client.get(path, {"Accept": "application/geo+json"})
        if resp.status != 200:
            result.error = f"HTTP {resp.status} on {path}: {resp.snippet()}"
            break
        t0 = time.perf_counter()
        page = json.loads(resp.body)
        result.parse_s += time.perf_counter() - t0
        features = page.get("features", [])
        result.features += len(features)
        result.pages += 1
        for feature in features:
            fid = feature.get("id")
            if last_id is not None and isinstance(fid, int) and fid <= last_id:
                result.ids_increasing = False
            last_id = fid if isinstance(fid, int) else last_id
        nexts = [link["href"] for link in page.get("links", []) if link.get("rel") == "next"]
        path = path_of(nexts[0]) if nexts and features else None
        if max_features is not None and result.features >= max_features:
            break
    result.elapsed = time.perf_counter() - started
    return result


# -- Server-Sent Events -----------------------------------------------------------------------


@dataclass
class SseStream:
    status: int = 0
    headers: dict = field(default_factory=dict)
    ttfb: float | None = None  # first byte of the response
    ttfe: float | None = None  # first complete `features` event (never reported early)
    elapsed: float = 0.0  # request sent -> server closed the stream
    nbytes: int = 0
    body: bytes = b""  # de-chunked body
    error: str | None = None


def stream_sse(host: str, port: int, path: str, timeout: float = 300.0, extra_headers: dict | None = None) -> SseStream:
    """Read a whole SSE response on a raw socket (Connection: close, so EOF ends it).

    While reading it only looks for the end of the first `features` event; de-chunking and
    parsing happen after the clock stops, so the client costs the measurement almost nothing.
    """
    result = SseStream()
    headers = {
        "Host": f"{host}:{port}",
        "Accept": "text/event-stream",
        "Cache-Control": "no-cache",
        "Connection": "close",
        **(extra_headers or {}),
    }
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    chunks = []
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        started = time.perf_counter()
        sock.sendall(request.encode())
        head = b""
        seen = 0
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            now = time.perf_counter()
            if result.ttfb is None:
                result.ttfb = now - started
            chunks.append(data)
            if result.ttfe is None:
                head += data
                at = head.find(b"event: features", max(0, seen - 16))
                if at >= 0 and head.find(b"\n\n", at) >= 0:
                    result.ttfe = now - started
                    head = b""
                else:
                    seen = len(head)
                    if len(head) > (8 << 20):  # no event in 8 MB: stop looking
                        result.ttfe = None
                        head = b""
                        seen = 0
        result.elapsed = time.perf_counter() - started
    except OSError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.elapsed = time.perf_counter() - started
    finally:
        sock.close()
    raw = b"".join(chunks)
    result.nbytes = len(raw)
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        result.error = result.error or "no HTTP response"
        return result
    lines = raw[:header_end].decode("latin-1").split("\r\n")
    try:
        result.status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        result.error = f"bad status line {lines[0]!r}"
        return result
    for line in lines[1:]:
        name, _, value = line.partition(":")
        result.headers[name.strip().lower()] = value.strip()
    body = raw[header_end + 4 :]
    if "chunked" in result.headers.get("transfer-encoding", "").lower():
        body, complete = dechunk(body)
        if not complete and result.error is None:
            result.error = "chunked body ended early (no terminating chunk)"
    result.body = body
    return result


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """Decode a chunked transfer-encoded body; (payload, whether the last chunk was seen)."""
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), False
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return b"".join(out), True
        start = eol + 2
        out.append(data[start : start + size])
        pos = start + size + 2


@dataclass
class SseEvent:
    event: str = "message"
    id: str | None = None
    data: str = ""


@dataclass
class SseParsed:
    events: list
    comments: int
    retry: int | None


def parse_sse(body: bytes) -> SseParsed:
    events, comments, retry = [], 0, None
    text = body.decode("utf-8")
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event = SseEvent()
        has_field = False
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "retry":
                retry = int(value)
            elif name == "event":
                event.event, has_field = value, True
            elif name == "id":
                event.id, has_field = value, True
            elif name == "data":
                data_lines.append(value)
                has_field = True
        if data_lines:
            event.data = "\n".join(data_lines)
        if has_field and (data_lines or event.event != "message"):
            events.append(event)
    return SseParsed(events, comments, retry)


@dataclass
class SseCheck:
    features: int = 0
    end_count: int | None = None
    ids_increasing: bool = True
    duplicates: int = 0
    feature_events: int = 0
    problems: list = field(default_factory=list)


def check_sse(body: bytes) -> SseCheck:
    """Count features, and check what a client relies on: ids increasing, one `end` with the count."""
    check = SseCheck()
    parsed = parse_sse(body)
    last = None
    seen = set()
    for event in parsed.events:
        if event.event == "features":
            check.feature_events += 1
            if event.id is None:
                check.problems.append("features event without id")
            for feature in json.loads(event.data).get("features", []):
                check.features += 1
                fid = feature.get("id")
                if fid in seen:
                    check.duplicates += 1
                seen.add(fid)
                if last is not None and fid <= last:
                    check.ids_increasing = False
                last = fid
        elif event.event == "end":
            check.end_count = json.loads(event.data).get("count")
        else:
            check.problems.append(f"unexpected event {event.event!r}")
    if check.end_count is None:
        check.problems.append("no end event")
    elif check.end_count != check.features:
        check.problems.append(f"end count {check.end_count} != {check.features} features received")
    return check
