"""What every row gets: options, the stack, the running service and a log."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.client import Http, Response


@dataclass
class Context:
    cfg: object
    stack: object
    base_url: str = ""
    server_log: object = None  # stack.ServerLog of the service at base_url
    started: float = field(default_factory=time.perf_counter)
    shared: dict = field(default_factory=dict)  # figures one row hands to another (e.g. SSE rate -> tipg row)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port

    def http(self) -> Http:
        return Http(self.base_url)

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)


def missing(resp: Response, path: str) -> str | None:
    """None when the endpoint answered 200; else the reason the row cannot be measured."""
    if resp.status == 200:
        return None
    try:
        code = json.loads(resp.body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"endpoint answered {resp.status} (GET {path}: {resp.snippet(120)})"
    return f"endpoint answered {resp.status} {code} (GET {path})"
