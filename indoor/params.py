"""Parsing and validation of query parameters. Every failure is a 400 that names the parameter."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


# -- routes -------------------------------------------------------------------------------

MAX_ROOM_ID = 2**31 - 1  # room_points.ogc_fid is an integer


@dataclass(frozen=True)
class RoomPlace:
    room: int


@dataclass(frozen=True)
class PointPlace:
    lon: float
    lat: float
    level: Decimal


def place(name: str) -> RoomPlace | PointPlace:
    """A route end: a room id (`17`) or a point `lon,lat` / `lon,lat,level` (level 0 by default)."""
    raw = arg(name, max_length=100)
    if raw is None or not raw.strip():
        raise BadRequest(f"parameter '{name}' is required: a room id or lon,lat[,level]")
    return parse_place(raw.strip(), name)


def parse_place(raw: str, name: str) -> RoomPlace | PointPlace:
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) == 1:
        if not parts[0].isascii() or not parts[0].isdigit():
            raise BadRequest(f"parameter '{name}' must be a room id (a non-negative integer) or lon,lat[,level]")
        room = int(parts[0])
        if room > MAX_ROOM_ID:
            raise BadRequest(f"parameter '{name}' is not a valid room id (at most {MAX_ROOM_ID})")
        return RoomPlace(room)
    if len(parts) not in (2, 3):
        raise BadRequest(f"parameter '{name}' must be a room id or lon,lat[,level]")
    lon = finite_float(parts[0], name)
    lat = finite_float(parts[1], name)
    if not -180 <= lon <= 180:
        raise BadRequest(f"parameter '{name}': longitude must be between -180 and 180")
    if not -90 <= lat <= 90:
        raise BadRequest(f"parameter '{name}': latitude must be between -90 and 90")
    point_level = parse_level(parts[2], name) if len(parts) == 3 else Decimal(0)
    return PointPlace(lon, lat, point_level)


def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (exact, lower case), or `default` when absent."""
    raw = arg(name, max_length=32)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise BadRequest(f"parameter '{name}' must be one of: {', '.join(allowed)}")
    return raw
