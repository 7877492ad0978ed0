"""Strict JSON (RFC 8259) as a browser's JSON.parse reads it: NaN, Infinity and -Infinity are errors."""

from __future__ import annotations

import json


class NotStrictJSON(ValueError):
    pass


def _reject(token: str):
    raise NotStrictJSON(f"{token} is not JSON (RFC 8259)")


def loads(data: bytes | str):
    """Parse like JSON.parse: Python's json accepts NaN/Infinity tokens; this refuses them."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")  # strict: invalid UTF-8 is an error too
    return json.loads(data, parse_constant=_reject)


def sse_data(body: bytes) -> list:
    """Every `data:` payload of an event stream, parsed strictly."""
    payloads = []
    for block in body.decode("utf-8").split("\n\n"):
        lines = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if lines:
            payloads.append(loads("\n".join(lines)))
    return payloads
