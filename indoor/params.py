"""Parsing and validation of query parameters. Every failure is a 400 that names the parameter."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from flask import request

from indoor.errors import BadRequest

MAX_PARAM_LENGTH = 256


def arg(name: str, max_length: int = MAX_PARAM_LENGTH) -> str | None:
    """The raw query parameter, or None; rejects repeats, NUL bytes, control characters and absurd lengths."""
    values = request.args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"parameter '{name}' is given more than once")
    value = values[0]
    if len(value) > max_length:
        raise BadRequest(f"parameter '{name}' is too long (at most {max_length} characters)")
    if "\x00" in value or "\ufffd" in value or any(ord(c) < 32 for c in value):
        raise BadRequest(f"parameter '{name}' contains invalid characters")
    return value


def level(name: str = "level") -> Decimal | None:
    """An OSM-style level: 0, 1, -1, 0.5 ... (a finite number of modest size)."""
    raw = arg(name, max_length=16)
    if raw is None:
        return None
    return parse_level(raw, name)


def parse_level(raw: str, name: str = "level") -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise BadRequest(f"parameter '{name}' must be a number, e.g. 0, 1, -1 or 0.5") from None
    if not value.is_finite() or abs(value) > 1000:
        raise BadRequest(f"parameter '{name}' must be a finite number between -1000 and 1000")
    return value


def finite_float(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"parameter '{name}' must be a number") from None
    if not math.isfinite(value):
        raise BadRequest(f"parameter '{name}' must be a finite number")
    return value
