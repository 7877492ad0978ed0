"""Closures: what is closed, from when until when, and for which profiles.

A closure is resolved to edge ids when it is made (queries/closures.py) and kept in our own
table, so the network is never written and removing a closure restores exactly what was there.
Each worker keeps the list of closures not yet over, read again whenever the 'closures'
version changes (the versions are read at most ROUTE_VERSION_MAX_AGE_S apart, so a closure
applies to routes within about a second of its commit); which of them are active is decided per
request from the clock, so a closure starts and ends on time without any write. Routes key
their caches by the set active at request time (routing/keys.py), so no cached route outlives
a closure's start, end or removal.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask import current_app

from indoor.errors import ApiError, BadRequest, NotFound
from indoor.extensions import get_db, get_settings
from indoor.queries import closures as queries
from indoor.queries.routing import PROFILES
from indoor.queries.validity import MAX_LEVEL

_STATE = "indoor.closures"
MAX_IDS = 1000
MAX_REASON = 500
CONNECTOR_CATEGORIES = ("elevator", "stairs", "escalator", "ramp")


@dataclass(frozen=True)
class Closure:
    """A closure as routing sees it."""

    id: int
    edges: frozenset
    starts_at: float  # epoch seconds
    ends_at: float | None
    profiles: tuple | None  # None: every profile
    reason: str | None
    label: str | None

    def active(self, now: float) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def applies_to(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles

    def summary(self) -> dict:
        """What a route says of a closure it went around (route.closures, error.closures)."""
        return {"id": self.id, "reason": self.reason, "ends_at": iso(self.ends_at), "label": self.label}

    def sentence(self) -> str:
        what = self.label or f"closure {self.id}"
        until = f"until {iso(self.ends_at)}" if self.ends_at is not None else "until further notice"
        why = f" ({self.reason})" if self.reason else ""
        return f"{what} is closed {until}{why}"


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- routing: the active closures of this moment ------------------------------------------------


def active(found_versions: dict, profile: str, now: float | None = None) -> tuple[Closure, ...]:
    """The closures active now for `profile`, from this worker's list of the 'closures' version
    in `found_versions` (read again when it changed)."""
    if not found_versions.get("closures"):
        return ()  # no 'closures' version: init-db has not made the table here (an older database)
    key = found_versions["closures_key"]
    state = current_app.extensions.get(_STATE)
    if state is None or state[0] != key:
        rows = get_db().read(queries.current, timeout_ms=2000)
        listed = tuple(
            Closure(
                int(r[0]),
                frozenset(int(e) for e in r[1] or ()),
                float(r[2]),
                float(r[3]) if r[3] is not None else None,
                tuple(r[4]) if r[4] is not None else None,
                r[5],
                r[6],
            )  # fmt: skip
            for r in rows
        )
        state = (key, listed)
        current_app.extensions[_STATE] = state
    now = time.time() if now is None else now
    return tuple(c for c in state[1] if c.active(now) and c.applies_to(profile) and c.edges)


# -- the API ---------------------------------------------------------------------------------------


def _ids(body: dict, name: str) -> list[int]:
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise BadRequest(f"field '{name}' must be a list of at most {MAX_IDS} ids")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in value):
        raise BadRequest(f"field '{name}' must hold positive integer ids")
    return sorted(set(value))


def _time(body: dict, name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise BadRequest(f"field '{name}' must be an RFC 3339 time such as 2026-12-07T18:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"field '{name}' must be an RFC 3339 time such as 2026-12-07T18:00:00Z") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"field '{name}' needs a time zone (Z or +hh:mm)")
    return parsed


def _levels(body: dict) -> list[Decimal]:
    value = body.get("levels", [])
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 200:
        raise BadRequest("field 'levels' must be a list of at most 200 levels")
    levels = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > MAX_LEVEL:
            raise BadRequest(f"field 'levels' must hold numbers between -{MAX_LEVEL} and {MAX_LEVEL}")
        try:
            levels.append(Decimal(str(v)))
        except InvalidOperation:
            raise BadRequest("field 'levels' must hold numbers") from None
    return sorted(set(levels))


def _area(body: dict) -> str | None:
    value = body.get("area")
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "Polygon" or not isinstance(value.get("coordinates"), list):
        raise BadRequest("field 'area' must be a GeoJSON Polygon")
    rings = value["coordinates"]
    if not rings or len(rings) > 50 or sum(len(r) if isinstance(r, list) else 0 for r in rings) > 5000:
        raise BadRequest("field 'area' must be a GeoJSON Polygon of at most 5000 positions")
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4:
            raise BadRequest("field 'area': every ring needs at least 4 positions")
        for p in ring:
            ok = (
                isinstance(p, list) and len(p) in (2, 3)
                and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in p)
            )  # fmt: skip
            if not ok or not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                raise BadRequest("field 'area': positions must be [lon, lat] in WGS 84")
        if ring[0] != ring[-1]:
            raise BadRequest("field 'area': every ring must end where it starts")
    return json.dumps({"type": "Polygon", "coordinates": rings}, allow_nan=False)


def parse(body) -> dict:
    """A closure request's fields, checked (400 naming the field)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    known = {"rooms", "edges", "area", "levels", "starts_at", "ends_at", "reason", "profiles"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"field {unknown[0]!r} is unknown; known: {', '.join(sorted(known))}")
    values = {
        "rooms": _ids(body, "rooms"),
        "requested_edges": _ids(body, "edges"),
        "area": _area(body),
        "levels": _levels(body),
        "starts_at": _time(body, "starts_at"),
        "ends_at": _time(body, "ends_at"),
    }
    if not (values["rooms"] or values["requested_edges"] or values["area"]):
        raise BadRequest("at least one of the fields 'rooms', 'edges', 'area' must name something to close")
    if values["area"] and not values["levels"]:
        raise BadRequest("field 'levels' is needed with 'area'")
    if values["ends_at"] is not None:
        if values["ends_at"] <= (values["starts_at"] or datetime.now(UTC)):
            raise BadRequest("field 'ends_at' must be after 'starts_at' (or after now)")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON or not reason.isprintable()):
        raise BadRequest(f"field 'reason' must be printable text of at most {MAX_REASON} characters")
    values["reason"] = reason.strip() or None if reason else None
    profiles = body.get("profiles")
    if profiles is not None:
        if not isinstance(profiles, list) or not profiles or not all(p in PROFILES for p in profiles):
            raise BadRequest(f"field 'profiles' must be a non-empty list of {', '.join(PROFILES)}")
        profiles = sorted(set(profiles))
    values["profiles"] = profiles
    return values


def _label(rooms: list[tuple]) -> str | None:
    """How messages name what a closure closes: 'elevator Aufzug1', 'room E01.14', ..."""
    names = []
    for _, label, category, _, _ in rooms:
        kind = category if category in CONNECTOR_CATEGORIES else "room"
        names.append(label if label.lower().startswith(kind) else f"{kind} {label}")
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") if names else None


def _write_timeout_ms() -> int:
    """A closure's write resolves rooms and areas to edges: twice a read's statement timeout."""
    return 2 * get_settings().pg_statement_timeout_ms


def create(values: dict, created_by: str) -> dict:
    with get_db().transaction(timeout_ms=_write_timeout_ms()) as cur:
        edges = set()
        rooms = queries.rooms(cur, values["rooms"]) if values["rooms"] else []
        missing = sorted(set(values["rooms"]) - {int(r[0]) for r in rooms})
        if missing:
            raise BadRequest(f"field 'rooms': room {missing[0]} does not exist or has no usable position")
        for room in rooms:
            edges.update(int(e) for e in room[4])
        if values["requested_edges"]:
            known = set(queries.known_edges(cur, values["requested_edges"]))
            unknown = [e for e in values["requested_edges"] if e not in known]
            if unknown:
                raise BadRequest(f"field 'edges': edge {unknown[0]} does not exist")
            edges.update(known)
        if values["area"]:
            ok, why = queries.area_valid(cur, values["area"])
            if not ok:
                raise BadRequest(f"field 'area' is not a valid polygon: {why}")
            edges.update(queries.area_edges(cur, values["area"], values["levels"]))
        if not edges:
            raise ApiError(422, "unprocessable", "the closure closes no edge of the network")
        ordered = sorted(edges)
        buildings = sorted({r[3] for r in rooms if r[3]} | set(queries.edge_buildings(cur, ordered)))
        row = queries.insert(
            cur,
            {
                **values,
                "edges": ordered,
                "label": _label(rooms),
                "buildings": buildings,
                "created_by": created_by,
            },
        )
    return as_json(row)


def as_json(row: tuple) -> dict:
    (closure_id, rooms, edges, area, levels, label, buildings, starts_at, ends_at, reason, profiles,
     is_active, created_at, created_by, deleted_at, deleted_by, _, _) = row  # fmt: skip
    found = {
        "id": int(closure_id),
        "rooms": [int(r) for r in rooms],
        "edges": [int(e) for e in edges],
        "edges_closed": len(edges),
        "area": json.loads(area) if area else None,
        "levels": [float(v) if v != v.to_integral_value() else int(v) for v in levels],
        "label": label,
        "buildings": list(buildings),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "reason": reason,
        "profiles": list(profiles) if profiles is not None else list(PROFILES),
        "active": bool(is_active),
        "created_at": created_at,
        "created_by": created_by,
    }
    if deleted_at is not None:
        found.update(deleted_at=deleted_at, deleted_by=deleted_by)
    return found


def get(closure_id: int) -> dict:
    row = get_db().read(lambda cur: queries.one(cur, closure_id))
    if row is None:
        raise NotFound(f"closure {closure_id} does not exist")
    return as_json(row)


def listing(active_only: bool | None, building: str | None) -> list[dict]:
    return [as_json(r) for r in get_db().read(lambda cur: queries.listing(cur, active_only, building))]


def remove(closure_id: int, deleted_by: str) -> None:
    with get_db().transaction(timeout_ms=_write_timeout_ms()) as cur:
        row = queries.delete(cur, closure_id, deleted_by)
        exists = row is not None or queries.one(cur, closure_id) is not None
    if not exists:
        raise NotFound(f"closure {closure_id} does not exist")


# -- a building re-imported ------------------------------------------------------------------------


def before_replace(cur, building: str | None) -> list[dict]:
    """The building's closures as keys that outlive its ids: call before its rows are deleted."""
    return queries.following(cur, building) if building else []


def after_replace(cur, building: str | None, kept: list[dict]) -> dict[str, int]:
    """Each kept closure names the building's new rooms and edges (the same name, level and
    category; the same kind and geometry) and closes their edges; what is not found again is
    dropped from it. In the import's transaction: routes never see the closure half-followed.
    -> {"closures": n, "rooms_lost": n, "edges_lost": n}."""
    counts = {"closures": 0, "rooms_lost": 0, "edges_lost": 0}
    for closure in kept:
        new_rooms = queries.rooms_again(cur, building, closure["room_keys"])
        new_edges = queries.edges_again(cur, building, closure["edge_keys"])
        own_rooms = {key[0] for key in closure["room_keys"]}
        own_edges = {key[0] for key in closure["edge_keys"]}
        rooms = sorted({new_rooms.get(r, r) for r in closure["rooms"] if r not in own_rooms or r in new_rooms})
        requested = sorted(
            {new_edges.get(e, e) for e in closure["requested_edges"] if e not in own_edges or e in new_edges}
        )
        edges = set(queries.known_edges(cur, requested)) if requested else set()
        for room in queries.rooms(cur, rooms) if rooms else []:
            edges.update(int(e) for e in room[4])
        if closure["area"]:
            edges.update(queries.area_edges(cur, closure["area"], closure["levels"]))
        queries.followed(cur, closure["id"], rooms, requested, sorted(edges))
        counts["closures"] += 1
        counts["rooms_lost"] += len(own_rooms) - len(new_rooms)
        counts["edges_lost"] += len(own_edges) - len(new_edges)
    return counts
