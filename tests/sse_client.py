"""A minimal Server-Sent Events client for tests: parses the stream as EventSource does."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Event:
    event: str
    id: str | None
    data: str
    received: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.data)


@dataclass
class Comment:
    text: str
    received: float = field(default_factory=time.monotonic)


@dataclass
class Retry:
    ms: int


class EventStream:
    """GET `path` with `Accept: text/event-stream`; iterate `items()` for Event/Comment/Retry."""

    def __init__(self, base_url: str, path: str, headers: dict | None = None, timeout: float = 30.0):
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def body(self) -> bytes:
        return self.response.read()

    def items(self):
        event_type, event_id, data = "", None, []
        while True:
            raw = self.response.readline()
            if not raw:
                return
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data or event_type:
                    yield Event(event_type or "message", event_id, "\n".join(data))
                event_type, data = "", []
                continue
            if line.startswith(":"):
                yield Comment(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event_type = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
            elif name == "retry":
                yield Retry(int(value))

    def events(self):
        return [item for item in self.items() if isinstance(item, Event)]

    def close(self, abort: bool = False) -> None:
        """Close; `abort=True` resets the connection (RST) as a crashed or killed client would."""
        sock = self.conn.sock
        if abort and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.response.close()
        self.conn.close()


def feature_ids(events) -> list[int]:
    return [f["id"] for e in events if e.event == "features" for f in e.json()["features"]]
