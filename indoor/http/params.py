"""Parsing and validation of query parameters. Every failure is a 400 that names the parameter."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import struct
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote_to_bytes

from flask import request

from indoor.errors import BadRequest
from indoor.queries.validity import MAX_LEVEL

MAX_PARAM_LENGTH = 256


def arg(name: str, max_length: int = MAX_PARAM_LENGTH) -> str | None:
    """The raw query parameter, or None; rejects repeats, NUL bytes, control characters and absurd lengths."""
    values = request.args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"parameter '{name}' is given more than once")
    return _checked(name, values[0], max_length)


def arg_list(name: str, maximum: int, max_length: int = MAX_PARAM_LENGTH) -> list[str]:
    """Every value of a repeatable parameter, in order (at most `maximum`), each checked as arg() does."""
    values = request.args.getlist(name)
    if len(values) > maximum:
        raise BadRequest(f"parameter '{name}' is given {len(values)} times (at most {maximum})")
    return [_checked(name, value, max_length) for value in values]


def _checked(name: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise BadRequest(f"parameter '{name}' is too long (at most {max_length} characters)")
    if "\x00" in value or "\ufffd" in value or any(ord(c) < 32 for c in value):
        raise BadRequest(f"parameter '{name}' contains invalid characters")
    if "%" in value and not _valid_utf8(name):
        raise BadRequest(f"parameter '{name}' is not valid UTF-8")
    return value


def _valid_utf8(name: str) -> bool:
    """Werkzeug keeps an undecodable escape such as %FF as the literal text "%FF": look at the bytes."""
    wanted = name.encode()
    for pair in request.query_string.split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) != wanted:
            continue
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def level(name: str = "level") -> Decimal | None:
    """An OSM-style level: 0, 1, -1, 0.5 ... (a finite number of modest size)."""
    raw = arg(name, max_length=16)
    if raw is None:
        return None
    return parse_level(raw, name)


# The one grammar of every number a parameter holds, as people write numbers: ASCII digits, an
# optional sign, at most one decimal point, an optional exponent. Nothing Python's float() or
# Decimal() also accept: no "1_0", no Arabic-Indic or full-width digits, no spaces, no "nan",
# "inf" or "infinity".
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def is_number(raw: str) -> bool:
    return _NUMBER.fullmatch(raw) is not None


def parse_level(raw: str, name: str = "level") -> Decimal:
    if not is_number(raw):
        raise BadRequest(f"parameter '{name}' must be a number, e.g. 0, 1, -1 or 0.5")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the grammar admits only what Decimal reads
        raise BadRequest(f"parameter '{name}' must be a number, e.g. 0, 1, -1 or 0.5") from None
    if not value.is_finite() or abs(value) > MAX_LEVEL:
        raise BadRequest(f"parameter '{name}' must be a finite number between -{MAX_LEVEL} and {MAX_LEVEL}")
    return value


def finite_float(raw: str, name: str) -> float:
    if not is_number(raw):
        raise BadRequest(f"parameter '{name}' must be a number (digits, optional sign, decimal point, exponent)")
    value = float(raw)
    if not math.isfinite(value):
        raise BadRequest(f"parameter '{name}' must be a finite number")
    return value


# -- listing filters ------------------------------------------------------------------------

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def text(name: str, max_length: int = MAX_PARAM_LENGTH, strip: bool = False) -> str | None:
    """A free-text filter; an empty value is the same as an absent one."""
    raw = arg(name, max_length=max_length)
    if raw is not None and strip:
        raw = raw.strip()
    return raw or None


def limit(default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Page size: 1.., capped at `maximum` (a larger value is not an error)."""
    raw = arg("limit", max_length=32)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest("parameter 'limit' must be an integer")
    value = int(raw)
    if value < 1:
        raise BadRequest(f"parameter 'limit' must be at least 1 (at most {maximum} are returned)")
    return min(value, maximum)


def bbox(name: str = "bbox") -> tuple[float, float, float, float] | None:
    """`minlon,minlat,maxlon,maxlat` in WGS 84 degrees."""
    raw = arg(name, max_length=200)
    if raw is None:
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadRequest(f"parameter '{name}' must be four numbers: minlon,minlat,maxlon,maxlat")
    minlon, minlat, maxlon, maxlat = (finite_float(part, name) for part in parts)
    if not (-180 <= minlon <= 180 and -180 <= maxlon <= 180):
        raise BadRequest(f"parameter '{name}': longitudes must be between -180 and 180")
    if not (-90 <= minlat <= 90 and -90 <= maxlat <= 90):
        raise BadRequest(f"parameter '{name}': latitudes must be between -90 and 90")
    if minlon > maxlon or minlat > maxlat:
        raise BadRequest(f"parameter '{name}': minimum greater than maximum (minlon,minlat,maxlon,maxlat)")
    return minlon, minlat, maxlon, maxlat


def feature_id(raw: str, name: str = "id") -> int:
    """A feature id from the path: an integer of at most 18 digits."""
    if not raw or len(raw) > 19 or not _INTEGER.fullmatch(raw) or raw[0] == "+":
        raise BadRequest(f"'{name}' must be an integer")
    return int(raw)


# -- cursors --------------------------------------------------------------------------------
#
# A cursor is the keyset position (the last id delivered, or "before the first") bound to the
# listing it came from: a checksum covers the position and a canonical description of the
# resource and its filters. A cursor edited by hand, truncated, or taken from another listing
# (other filters, other resource) fails the check: 400, never a wrong page. The checksum is
# not a secret and needs none: a cursor grants nothing the same request without it could not
# ask for; it only has to be self-consistent, and the same on every worker and every instance.

_CURSOR_VERSION = 1
_CURSOR_KEY = b"indoor.cursor.v1"
_CURSOR_LAYOUT = struct.Struct(">BBq")  # version, has position, last id
_CURSOR_MAC_BYTES = 8
_CURSOR_LENGTH = 24  # base64 of 10 + 8 bytes, no padding


def scope(resource: str, filters: dict) -> bytes:
    """A canonical description of one listing: equal filters give equal bytes."""
    parts = [resource]
    for key in sorted(filters):
        value = filters[key]
        if isinstance(value, Decimal):
            value = value.normalize() if value != 0 else Decimal(0)
        elif isinstance(value, tuple):
            value = ",".join(repr(float(v)) for v in value)
        parts.append(f"{key}={'' if value is None else value}")
    # \x1f (unit separator) cannot occur in a parameter value: arg() rejects control characters.
    return "\x1f".join(parts).encode()


def encode_cursor(last_id: int | None, listing: bytes) -> str:
    payload = _CURSOR_LAYOUT.pack(_CURSOR_VERSION, last_id is not None, last_id or 0)
    mac = hashlib.blake2b(payload + listing, digest_size=_CURSOR_MAC_BYTES, key=_CURSOR_KEY).digest()
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def decode_cursor(raw: str, listing: bytes, name: str = "cursor") -> int | None:
    """The last id a cursor stands for (None: before the first); 400 if it is not one of ours."""
    invalid = BadRequest(f"{name} is invalid: not a cursor of this listing (same resource and filters)")
    if len(raw) != _CURSOR_LENGTH or not raw.isascii():
        raise invalid
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    payload, mac = data[: _CURSOR_LAYOUT.size], data[_CURSOR_LAYOUT.size :]
    expected = hashlib.blake2b(payload + listing, digest_size=_CURSOR_MAC_BYTES, key=_CURSOR_KEY).digest()
    if len(payload) != _CURSOR_LAYOUT.size or not hmac.compare_digest(mac, expected):
        raise invalid
    version, has_position, last_id = _CURSOR_LAYOUT.unpack(payload)
    if version != _CURSOR_VERSION or has_position not in (0, 1):
        raise invalid
    return last_id if has_position else None


def cursor(listing: bytes, name: str = "cursor") -> int | None:
    """The `cursor` query parameter, decoded; None when absent (start at the beginning)."""
    raw = arg(name, max_length=64)
    if raw is None:
        return None
    return decode_cursor(raw, listing, f"parameter '{name}'")


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


@dataclass(frozen=True)
class CategoryPlace:
    category: str


CATEGORY_PREFIX = "category:"
MAX_CATEGORY_LENGTH = 64


def place(name: str) -> RoomPlace | PointPlace | CategoryPlace:
    """A route end: a room id (`17`), a point `lon,lat` / `lon,lat,level` (level 0 by default) or
    `category:NAME` (the nearest room of that category, by route cost)."""
    raw = arg(name, max_length=100)
    if raw is None or raw == "":
        raise BadRequest(f"parameter '{name}' is required: a room id, lon,lat[,level] or category:NAME")
    return route_place(raw, name)


def places(name: str, maximum: int) -> list[RoomPlace | PointPlace | CategoryPlace]:
    """A repeatable place parameter (`via`), in order, at most `maximum` of them."""
    found = []
    for raw in arg_list(name, maximum, max_length=100):
        if raw == "":
            raise BadRequest(f"parameter '{name}' is empty: a room id, lon,lat[,level] or category:NAME")
        found.append(route_place(raw, name))
    return found


def route_place(raw: str, name: str) -> RoomPlace | PointPlace | CategoryPlace:
    if raw[: len(CATEGORY_PREFIX)].lower() == CATEGORY_PREFIX:
        category = raw[len(CATEGORY_PREFIX) :].strip()
        if not category or len(category) > MAX_CATEGORY_LENGTH or not category.isprintable():
            raise BadRequest(
                f"parameter '{name}': category:NAME needs a category name (1 to {MAX_CATEGORY_LENGTH} characters)"
            )
        return CategoryPlace(category)
    return parse_place(raw, name)


def parse_place(raw: str, name: str) -> RoomPlace | PointPlace:
    parts = raw.split(",")
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
