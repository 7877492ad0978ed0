"""Where a path runs, by name: the named room, corridor or area around a point on its level, the
building it is in, the room a connector stands in, a level's display name.

One `Spaces` per worker per (floor-plan, rooms) version, read in one snapshot
(queries/spaces.py) and kept in memory as R-trees per level, so naming a route's points is a few
vectorised look-ups, not a database round trip. Floor-plan and rooms edits bump those versions
(triggers), so the names are never older than the versions a body is cached under.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import shapely
from flask import current_app

from indoor.extensions import get_db
from indoor.queries import spaces as queries
from indoor.queries.versions import versions
from indoor.routing.background import run_logged, run_off_loop

log = logging.getLogger("indoor.spaces")

_STATE = "indoor.spaces"
# A connector's labelled room point counts within this distance of where the connector starts.
CONNECTOR_ROOM_M = 12.0
_M_PER_DEG = 111_320.0

# What kind of space a layer is, for the words ("Follow corridor F03", "Cross the Foyer").
CORRIDOR_LAYERS = {"corridor", "walkway", "hallway", "hall way", "passage", "circulation"}
AREA_LAYERS = {"area", "yes", "hall", "lobby", "foyer", "concourse", "platform", "open", "opentobelow"}
_CATEGORIES = {
    "elevator": "elevator",
    "stairs": "stairs",
    "steps": "stairs",
    "staircase": "stairs",
    "escalator": "escalator",
    "ramp": "ramp",
}


def space_kind(layer: str | None) -> str:
    """corridor, area or room: how the words name a space of this layer."""
    layer = (layer or "").lower()
    if layer in CORRIDOR_LAYERS:
        return "corridor"
    if layer in AREA_LAYERS:
        return "area"
    return "room"


@dataclass(frozen=True)
class Space:
    name: str
    layer: str  # corridor | area | room (space_kind)
    building: str | None = field(default=None, compare=False)  # the same space whoever drew it


def _level(value) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class Spaces:
    """The named things of one floor-plan and rooms version."""

    def __init__(self, rows: queries.SpaceRows, seen: dict):
        self.key = _key(seen)
        self.numbers = (seen["floor"], seen["rooms"])
        self.loaded_at = time.monotonic()
        self._spaces: dict[float, tuple] = {}  # level -> (tree, [Space], areas)
        by_level: dict[float, list] = {}
        kinds: dict = {}  # a layer's kind, worked out once per distinct layer
        for layer, name, level, building, wkb in rows.spaces:
            kind = kinds.get(layer) or kinds.setdefault(layer, space_kind(layer))
            by_level.setdefault(float(level), []).append((kind, name, building, bytes(wkb)))
        for level, found in by_level.items():
            shapes = shapely.from_wkb([row[3] for row in found])
            bad = ~shapely.is_valid(shapes)
            if bad.any():  # a self-touching ring another tool drew: repaired, not dropped
                shapes[bad] = shapely.make_valid(shapes[bad])
            self._spaces[level] = (
                shapely.STRtree(shapes),
                [Space(name, kind, building) for kind, name, building, _ in found],
                shapely.area(shapes),
            )
        self._footprints: dict[float, tuple] = {}
        by_level = {}
        for building, level, *box in rows.footprints:
            if None not in box:
                by_level.setdefault(float(level), []).append((building, box))
        for level, found in by_level.items():
            shapes = shapely.box(*np.array([row[1] for row in found], dtype=float).T)
            self._footprints[level] = (shapely.STRtree(shapes), [row[0] for row in found], shapely.area(shapes))
        self._connector_rooms: dict[float, list] = {}
        for category, name, level, lon, lat in rows.connector_rooms:
            self._connector_rooms.setdefault(float(level), []).append((_CATEGORIES[category], name, lon, lat))
        self._level_names: dict[tuple, str] = {}
        shared: dict[float, set] = {}
        for building, level, name in rows.level_names:
            self._level_names[(building or "", float(level))] = name
            shared.setdefault(float(level), set()).add(name)
        for level, names in shared.items():  # a level every building names alike
            if len(names) == 1:
                self._level_names.setdefault(("", level), next(iter(names)))

    def _smallest(self, tables: dict, points: list[tuple]) -> list:
        """For each (lon, lat, level): what the smallest shape of its level holding it names."""
        found: list = [None] * len(points)
        by_level: dict[float, list[int]] = {}
        for k, point in enumerate(points):
            by_level.setdefault(point[2], []).append(k)
        for level, ks in by_level.items():
            table = tables.get(_level(level))
            if table is None:
                continue
            tree, named, areas = table
            geometries = shapely.points([(points[k][0], points[k][1]) for k in ks])
            hits, shapes = tree.query(geometries, predicate="intersects")
            if not len(hits):
                continue
            # The smallest shape per point: sort the hits by area, keep each point's first.
            order = np.lexsort((areas[shapes], hits))
            hits, shapes = hits[order], shapes[order]
            first = np.ones(len(hits), dtype=bool)
            first[1:] = hits[1:] != hits[:-1]
            for i, j in zip(hits[first].tolist(), shapes[first].tolist(), strict=True):
                found[ks[i]] = named[j]
        return found

    def spaces_at(self, points: list[tuple]) -> list[Space | None]:
        """The named space around each (lon, lat, level): the smallest that holds it."""
        return self._smallest(self._spaces, points)

    def buildings_at(self, points: list[tuple]) -> list[str | None]:
        """The building whose footprint holds each (lon, lat, level): the smallest."""
        return self._smallest(self._footprints, points)

    def connector_name(self, kind: str, lon: float, lat: float, level) -> str | None:
        """The name of the room a connector stands in: the nearest labelled room point of its
        kind (an elevator, a staircase) close by, else a named room drawn around where it starts."""
        best, best_m = None, CONNECTOR_ROOM_M
        scale = math.cos(math.radians(lat))
        for category, name, room_lon, room_lat in self._connector_rooms.get(_level(level), ()):
            if category != kind:
                continue
            metres = math.hypot((room_lon - lon) * scale, room_lat - lat) * _M_PER_DEG
            if metres <= best_m:
                best, best_m = name, metres
        if best is None:
            space = self.spaces_at([(lon, lat, level)])[0]
            if space is not None and space.layer == "room":
                return space.name
        return best

    def level_name(self, level, building: str | None = None) -> str | None:
        level = _level(level)
        if level is None:
            return None
        return self._level_names.get((building or "", level)) or self._level_names.get(("", level))


def _state() -> dict:
    return current_app.extensions.setdefault(_STATE, {"lock": threading.Lock(), "spaces": None, "loading": None})


def _key(found_versions: dict) -> str:
    return f"{found_versions['floor_key']}:{found_versions['rooms_key']}"


def _fits(held: Spaces | None, found_versions: dict) -> bool:
    """Held names serve `found_versions`: the same versions, or newer ones just read (a worker's
    versions may lag the database by ROUTE_VERSION_MAX_AGE_S; never rebuild back and forth)."""
    if held is None:
        return False
    if held.key == _key(found_versions):
        return True
    newer = held.numbers[0] >= found_versions["floor"] and held.numbers[1] >= found_versions["rooms"]
    return newer and time.monotonic() - held.loaded_at < 5.0


def _load(state: dict) -> Spaces:
    started = time.perf_counter()
    seen, rows = get_db().read(lambda cur: (versions(cur), queries.space_rows(cur)))
    # The R-trees are built off the event loop (shapely releases the GIL): requests go on.
    held = run_off_loop(Spaces, rows, seen)
    log.info(
        "spaces loaded", extra={"spaces": len(rows.spaces), "ms": round((time.perf_counter() - started) * 1000, 1)}
    )
    state["spaces"] = held
    return held


def prefetch(found_versions: dict) -> None:
    """Start reading the names in the background when the worker does not hold these versions'
    (a route miss calls this first: its search then overlaps the read)."""
    state = _state()
    if _fits(state["spaces"], found_versions):
        return
    with state["lock"]:
        if state["loading"] is not None:
            return
        state["loading"] = done = threading.Event()
    app = current_app._get_current_object()
    threading.Thread(target=_load_in_background, args=(app, state, done), name="spaces", daemon=True).start()


def _load_in_background(app, state: dict, done) -> None:
    try:
        with app.app_context():
            run_logged(log, lambda: _load(state), "names not loaded", "names load failed")
    finally:
        with state["lock"]:
            state["loading"] = None
        done.set()


def current(found_versions: dict) -> Spaces:
    """The worker's Spaces for the floor-plan and rooms versions of `found_versions`: held, or the
    load in flight, else read now (in one snapshot; database trouble raises as for any read)."""
    state = _state()
    if _fits(state["spaces"], found_versions):
        return state["spaces"]
    loading = state["loading"]
    if loading is not None:
        loading.wait()
        if _fits(state["spaces"], found_versions):
            return state["spaces"]
    return _load(state)
