"""A tiny blocking HTTP client for tests against a real server (one thread per request)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def get(url: str, headers: dict | None = None, timeout: float = 30.0):
    """-> (status, headers, body bytes); never raises on HTTP errors."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, **kwargs):
    """-> (status, the parsed JSON body; a body that is not JSON, e.g. a vector tile, as bytes)."""
    status, headers, body = get(url, **kwargs)
    if body and "json" not in headers.get("Content-Type", ""):
        return status, body
    return status, json.loads(body) if body else None


def send_json(url: str, body, token: str, method: str = "POST", timeout: float = 30.0):
    """A write as an operator makes it (bearer token, JSON body) -> (status, headers, parsed body
    or None); never raises on HTTP errors."""
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a local test server
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    return status, headers, json.loads(raw) if raw else None


def concurrently(n: int, fn, *args):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: fn(*args), range(n)))
