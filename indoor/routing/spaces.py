"""Where a path runs, by name: the named room, corridor or area around a point on its level, the
building it is in, the room a connector stands in, a level's display name.

One `Spaces` per worker per (floor-plan, rooms) version, read in one snapshot
(queries/spaces.py) and kept in memory as R-trees per level, so naming a route's points is a few
vectorised look-ups, not a database round trip. Floor-plan and rooms edits bump those versions
(triggers), so the names are never older than the versions a body is cached under.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from itertools import chain, repeat

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
# The points whose names a Spaces keeps (numbers_at): about 200 bytes each, 40 MB at most.
NAMED_POINTS_KEPT = 200_000
_LEVEL_KEY = 1024.0  # a level number times this lies beyond every latitude (numbers_at)
_PACK = 1 << 32  # a space's and a building's numbers (+ 1) in one int: space * _PACK + building

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
        self._named_points: dict[complex, int] = {}  # a point on a level -> its packed names: numbers_at
        # Every piece middle of the walkable graph, named at once in the background (name_graph):
        # (sorted keys as numbers_at makes them, their packed names, both ending in a sentinel), None
        # until it is done.
        self._graph_named: tuple[np.ndarray, np.ndarray] | None = None
        self._named_count = 0
        self._level_ids: dict[float, int] = {}
        # Per level an R-tree and the offset of its shapes in one list for all levels, so a lookup
        # answers numbers (directions.py smooths and joins on them) and names only where needed.
        self._spaces: dict[float, tuple] = {}  # level -> (tree, offset, areas)
        self.space_list: list[Space] = []
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
            self._spaces[level] = (shapely.STRtree(shapes), len(self.space_list), shapely.area(shapes))
            self.space_list.extend(Space(name, kind, building) for kind, name, building, _ in found)
        # One number per distinct space as it compares (name and layer; the same corridor drawn
        # in pieces or on two levels is one space).
        self.space_same = _same_numbers(self.space_list)
        self._footprints: dict[float, tuple] = {}
        self.building_list: list[str] = []
        by_level = {}
        for building, level, *box in rows.footprints:
            if None not in box:
                by_level.setdefault(float(level), []).append((building, box))
        for level, found in by_level.items():
            shapes = shapely.box(*np.array([row[1] for row in found], dtype=float).T)
            self._footprints[level] = (shapely.STRtree(shapes), len(self.building_list), shapely.area(shapes))
            self.building_list.extend(row[0] for row in found)
        self.building_same = _same_numbers(self.building_list)
        rooms: dict[tuple, list] = {}
        for category, name, level, lon, lat in rows.connector_rooms:
            rooms.setdefault((float(level), _CATEGORIES[category]), []).append((name, lon, lat))
        # (level, kind) -> (names, lons, lats): a connector's room is found by one array sum
        self._connector_rooms: dict[tuple, tuple] = {
            key: ([r[0] for r in found], np.array([r[1] for r in found], dtype=float), np.array([r[2] for r in found], dtype=float))
            for key, found in rooms.items()
        }  # fmt: skip
        self._level_names: dict[tuple, str] = {}
        self._level_name_of: dict[tuple, str | None] = {}  # (level as given, building) -> level_name
        shared: dict[float, set] = {}
        for building, level, name in rows.level_names:
            self._level_names[(building or "", float(level))] = name
            shared.setdefault(float(level), set()).add(name)
        for level, names in shared.items():  # a level every building names alike
            if len(names) == 1:
                self._level_names.setdefault(("", level), next(iter(names)))

    @staticmethod
    def _smallest(tables: dict, lons: np.ndarray, lats: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """For each point (float arrays; a level NaN where there is none): the number of the
        smallest shape of its level that holds it, -1 where none does."""
        found = np.full(len(lons), -1, dtype=np.int64)
        known = ~np.isnan(levels)
        for level in np.unique(levels[known]).tolist():
            table = tables.get(level)
            if table is None:
                continue
            ks = np.flatnonzero(levels == level)
            _smallest_of(table, shapely.points(np.column_stack((lons[ks], lats[ks]))), ks, found)
        return found

    def numbers_at(self, xy: np.ndarray, level_of: np.ndarray, levels: list) -> tuple[np.ndarray, np.ndarray]:
        """For each point of `xy` ((n, 2) lon, lat) on level levels[level_of[k]] (a float, NaN:
        none): the number of the smallest named space holding it (in `space_list`) and of the
        smallest building footprint (in `building_list`), -1 where none does.

        A route's points are the middles of its path's pieces, and those are the graph's: every
        one of them is named in the background once per version (name_graph) and found here by
        one binary search. The others (the stretches from a room to the graph, a graph edited
        since) are looked up in the R-trees once and kept (for this version's lifetime, at most
        NAMED_POINTS_KEPT points)."""
        space = np.full(len(xy), -1, dtype=np.int64)
        building = np.full(len(xy), -1, dtype=np.int64)
        # A point as one complex number, its level folded into the imaginary part (each level's
        # number times _LEVEL_KEY, beyond any latitude), and its names as one int (both + 1, so -1
        # is "not named yet").
        ids = self._level_numbers_of(level_of, levels)
        ks = np.flatnonzero(~np.isnan(ids))  # no level: nothing is named there
        if not len(ks):
            return space, building
        keys = _point_keys(xy[ks], ids[ks])
        graph = self._graph_named
        if graph is not None:
            graph_keys, graph_packed = graph  # both end in a sentinel: `at` is always an index
            at = np.searchsorted(graph_keys, keys)
            packed = np.where(graph_keys[at] == keys, graph_packed[at], -1)
        else:
            packed = np.full(len(ks), -1, dtype=np.int64)
        missing = np.flatnonzero(packed < 0)
        if len(missing):
            missing_keys = keys[missing].tolist()
            known = self._named_points
            packed[missing] = np.fromiter(
                map(known.get, missing_keys, repeat(-1, len(missing))), np.int64, len(missing)
            )
            unseen = np.flatnonzero(packed[missing] < 0)
            if len(unseen):
                points = missing[unseen]
                found_space, found_building = self._numbers_at(xy[ks[points]], level_of[ks[points]], levels)
                packed[points] = _pack(found_space, found_building)
                if self._named_count + len(unseen) > NAMED_POINTS_KEPT:
                    known.clear()  # a worker that has walked every corridor starts over
                    self._named_count = 0
                self._named_count += len(unseen)
                known.update(zip([missing_keys[u] for u in unseen.tolist()], packed[points].tolist(), strict=True))
        space[ks] = packed // _PACK - 1
        building[ks] = packed % _PACK - 1
        return space, building

    def name_graph(self, levels: np.ndarray, points: np.ndarray) -> int:
        """Name every point of the walkable graph numbers_at will be asked for (graph_points: each
        on its level) for good, so that routes find theirs by a binary search. Seconds of R-tree
        work on a large campus: run it off the event loop. Returns how many points."""
        distinct, level_of = np.unique(levels, return_inverse=True)
        level_list = distinct.tolist()
        found_space, found_building = self._numbers_at(points, level_of, level_list)
        keys = _point_keys(points, self._level_numbers_of(level_of, level_list))
        order = np.argsort(keys, kind="stable")
        packed = _pack(found_space, found_building)
        # A last key no point has and none sorts after (NumPy sorts NaN last), named -1 ("not
        # named"): numbers_at's binary search then never runs past the end.
        self._graph_named = (
            np.append(keys[order], complex(math.nan, math.nan)),
            np.append(packed[order], np.int64(-1)),
        )
        return len(keys)

    def _level_numbers_of(self, level_of: np.ndarray, levels: list) -> np.ndarray:
        """Each point's level as numbers_at's keys number it (NaN: no level)."""
        return np.array([self._level_id(level) for level in levels], dtype=float)[level_of]

    def _level_id(self, level: float) -> float:
        """A small number per level seen (NaN for none), for numbers_at's keys."""
        if level != level:
            return math.nan
        return self._level_ids.setdefault(level, len(self._level_ids))

    def _numbers_at(self, xy: np.ndarray, level_of: np.ndarray, levels: list) -> tuple[np.ndarray, np.ndarray]:
        """numbers_at from the R-trees: one set of points per level for both."""
        space = np.full(len(xy), -1, dtype=np.int64)
        building = np.full(len(xy), -1, dtype=np.int64)
        for number, level in enumerate(levels):
            named, footprints = self._spaces.get(level), self._footprints.get(level)
            if named is None and footprints is None:
                continue
            ks = np.flatnonzero(level_of == number)
            if not len(ks):
                continue
            points = shapely.points(xy[ks])
            for table, found in ((named, space), (footprints, building)):
                if table is not None:
                    _smallest_of(table, points, ks, found)
        return space, building

    def space_numbers(self, lons, lats, levels) -> np.ndarray:
        """The named space around each point (index into `space_list`, -1: none): the smallest."""
        return self._smallest(self._spaces, lons, lats, levels)

    def building_numbers(self, lons, lats, levels) -> np.ndarray:
        """The building whose footprint holds each point (index into `building_list`, -1: none)."""
        return self._smallest(self._footprints, lons, lats, levels)

    def spaces_at(self, points: list[tuple]) -> list[Space | None]:
        """The named space around each (lon, lat, level): the smallest that holds it."""
        found = self.space_numbers(*_columns(points))
        return [self.space_list[k] if k >= 0 else None for k in found.tolist()]

    def buildings_at(self, points: list[tuple]) -> list[str | None]:
        """The building whose footprint holds each (lon, lat, level): the smallest."""
        found = self.building_numbers(*_columns(points))
        return [self.building_list[k] if k >= 0 else None for k in found.tolist()]

    def connector_name(self, kind: str, lon: float, lat: float, level, around=False) -> str | None:
        """The name of the room a connector stands in: the nearest labelled room point of its
        kind (an elevator, a staircase) close by, else a named room drawn around where it starts
        (`around`, where the caller has looked it up already: a Space or None)."""
        best = None
        found = self._connector_rooms.get((_level(level), kind))
        if found is not None:
            names, lons, lats = found
            scale = math.cos(math.radians(lat))
            metres = np.hypot((lons - lon) * scale, lats - lat) * _M_PER_DEG
            near = metres <= CONNECTOR_ROOM_M
            if near.any():  # the nearest; of equals, the last read
                best = names[int(np.flatnonzero(metres == metres[near].min())[-1])]
        if best is None:
            space = self.spaces_at([(lon, lat, level)])[0] if around is False else around
            if space is not None and space.layer == "room":
                return space.name
        return best

    def level_name(self, level, building: str | None = None) -> str | None:
        try:  # asked for every step: a Decimal's float() goes through a string, so remember
            return self._level_name_of[(level, building)]
        except KeyError:
            pass
        except TypeError:  # a signalling NaN cannot be hashed (nor named)
            return None
        number = _level(level)
        name = None
        if number is not None:
            name = self._level_names.get((building or "", number)) or self._level_names.get(("", number))
        if len(self._level_name_of) < 10_000:
            self._level_name_of[(level, building)] = name
        return name


def _point_keys(xy: np.ndarray, level_ids: np.ndarray) -> np.ndarray:
    """A point on a level as one complex number (numbers_at's key): its level's number times
    _LEVEL_KEY, beyond any latitude, added to the imaginary part."""
    return xy[:, 0] + 1j * (xy[:, 1] + level_ids * _LEVEL_KEY)


def _pack(space: np.ndarray, building: np.ndarray) -> np.ndarray:
    """A point's space and building numbers (-1: none) as one int, both + 1 (so -1 is "not named")."""
    return (space + 1) * _PACK + (building + 1)


def _smallest_of(table: tuple, points: np.ndarray, ks: np.ndarray, found: np.ndarray) -> None:
    """found[ks[i]] = the number of the smallest shape of `table` holding points[i], where one does."""
    tree, offset, areas = table
    hits, shapes = tree.query(points, predicate="intersects")
    if not len(hits):
        return
    # The smallest shape per point: sort the hits by area, keep each point's first.
    order = np.lexsort((areas[shapes], hits))
    hits, shapes = hits[order], shapes[order]
    first = np.ones(len(hits), dtype=bool)
    first[1:] = hits[1:] != hits[:-1]
    found[ks[hits[first]]] = offset + shapes[first]


def lonlat_of_lines(lines, count: int) -> np.ndarray:
    """The `count` coordinates of `lines` (lists of [lon, lat(, a third value a tool wrote)]) one
    after another, as an (n, 2) array of lon, lat: how both the directions and graph_points read a
    path's coordinates, so that the points they name are the same floats."""
    values = list(chain.from_iterable(chain.from_iterable(lines)))
    if len(values) == 2 * count:  # all pairs: one flat read, far cheaper than nested lists
        return np.fromiter(values, float, len(values)).reshape(-1, 2)
    return np.array([c[:2] for c in chain.from_iterable(lines)], dtype=float).reshape(-1, 2)


def graph_points(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """The points a route's directions name on these lines (rows of queries.spaces.GRAPH_LINES),
    made as directions._items makes them from a path, so that they are the same floats: the
    middle of each piece (two coordinates in a row) of a line on one level, and both ends (each
    on its end's level) of a line between levels. Returns (levels, (n, 2) lon, lat)."""
    from_levels, to_levels, texts = zip(*rows, strict=True)
    lines = [line["coordinates"] for line in json.loads("[" + ",".join(texts) + "]")]
    given_from, given_to = np.array(from_levels, dtype=float), np.array(to_levels, dtype=float)
    # As the path reads them: an end without a level takes the other's, 0 where neither has one.
    from_level = np.nan_to_num(np.where(np.isnan(given_from), given_to, given_from), nan=0.0)
    to_level = np.nan_to_num(np.where(np.isnan(given_to), given_from, given_to), nan=0.0)
    count = np.fromiter(map(len, lines), np.int64, len(lines))
    xy = lonlat_of_lines(lines, int(count.sum()))
    start = np.cumsum(count) - count
    per = np.where((from_level == to_level) & (count >= 2), count - 1, 0)
    first = np.repeat(start - (np.cumsum(per) - per), per) + np.arange(int(per.sum()))
    middles = (xy[first] + xy[first + 1]) / 2
    between = (from_level != to_level) & (count >= 1)
    ends = np.concatenate((xy[start[between]], xy[start[between] + count[between] - 1]))
    levels = np.concatenate((np.repeat(from_level, per), from_level[between], to_level[between]))
    return levels, np.concatenate((middles, ends))


def level_number(value) -> float:
    """A level as a float for the lookups: NaN where there is none (NULL, non-finite)."""
    number = _level(value)
    return math.nan if number is None else number


def _columns(points: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lons = np.array([p[0] for p in points], dtype=float)
    lats = np.array([p[1] for p in points], dtype=float)
    return lons, lats, np.array([level_number(p[2]) for p in points], dtype=float)


def _same_numbers(values: list) -> np.ndarray:
    """One number per distinct value (by equality): equal values, equal numbers; -1 stays -1."""
    seen: dict = {}
    numbers = np.array([seen.setdefault(value, len(seen)) for value in values] + [-1], dtype=np.int64)
    return numbers  # numbers[-1] == -1: index it with -1 for "none"


def _state() -> dict:
    return current_app.extensions.setdefault(
        _STATE, {"lock": threading.Lock(), "spaces": None, "loading": None, "naming": threading.Lock()}
    )


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
    app = current_app._get_current_object()
    threading.Thread(target=_name_graph_in_background, args=(app, held), name="graph-names", daemon=True).start()
    return held


def _name_graph_in_background(app, held: Spaces) -> None:
    with app.app_context():
        run_logged(log, lambda: _name_graph(held), "graph not named", "graph naming failed")


def _name_graph(held: Spaces) -> None:
    """Every point of the walkable graph a route can be named at, named once for this version
    (Spaces.name_graph). Until it is done, and for what it misses, numbers_at looks points up.
    Seconds of CPU on a large campus: one naming at a time per worker, and one whose names a newer
    version has replaced (edits in a row) stops at its next batch, so a burst of edits costs one."""
    state = _state()

    def superseded() -> bool:
        return state["spaces"] is not held

    with state["naming"]:
        if superseded():
            return
        started = time.perf_counter()
        batches: list = []

        def read(cur) -> bool:
            batches.clear()  # a retried read starts over
            for rows in queries.graph_lines(cur):
                if superseded():
                    return False
                batches.append(run_off_loop(graph_points, rows))
            return True

        if not get_db().read(read) or superseded():
            return
        levels = np.concatenate([b[0] for b in batches]) if batches else np.empty(0)
        points = np.concatenate([b[1] for b in batches]) if batches else np.empty((0, 2))
        count = run_off_loop(held.name_graph, levels, points)
    log.info("graph points named", extra={"points": count, "ms": round((time.perf_counter() - started) * 1000, 1)})


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
