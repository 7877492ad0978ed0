"""What a route reads besides its search, held in memory per graph version: each edge's line and
levels (what PATH_EDGES reads for a path, queries/routing.py) and each usable vertex's position
(what NEAREST_VERTEX snaps to). An uncached route whose graph version is held here is snapped
and drawn without a round trip to PostgreSQL; the answers are the SQL's, exactly:

- a path's edges: the same kinds, levels and coordinates (the same 7-decimal GeoJSON numbers,
  read once by PostgreSQL's own ST_AsGeoJSON), drawn from the end nearer the vertex left, as
  PATH_EDGES decides it per direction. An edge the copy cannot answer exactly (see
  queries/route_geometry.py: curves, 3D, loops, lines or vertices another tool left unusable)
  sends its path to the SQL.
- a snap: the usable vertex of the place's level nearest by ST_DistanceSpheroid (the same
  geodesic, PROJ's, computed on the same doubles: equal to the last bit; ties to the smaller
  id), within ROUTE_MAX_SNAP_M. Whatever is not certain goes to the SQL: no vertex near, a level
  the copy does not hold exactly, a best one within a micrometre of the limit.

Fresh: held per graph key, built in the background the first time a route asks for a version
(the SQL answers meanwhile), once per machine: the first worker writes the arrays to the
machine's store (index_store.py, under its lock) and every worker maps them read-only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from flask import current_app

from indoor.extensions import get_db, get_settings
from indoor.queries import route_geometry as queries
from indoor.queries.route_index import key_order
from indoor.queries.routing import PathEdge, Snap
from indoor.routing import index_store
from indoor.routing.background import run_logged, run_off_loop

log = logging.getLogger("indoor.route_geometry")

_STATE = "indoor.route_geometry"
_STORE_SUFFIX = ".geometry"  # a directory beside the route index's (whose pruning removes all else)
_A, _RF = 6378137.0, 298.257223563
_B = _A * (1 - 1 / _RF)  # as PROJ derives it for EPSG:4326, which PostGIS's spheroid takes
_E2 = (_A * _A - _B * _B) / (_A * _A)
_SURE_M = 1e-6  # a best vertex this close to the snap limit is left to the SQL


def _geod():
    import pyproj

    return pyproj.Geod(a=_A, f=(_A - _B) / _A)


def _as_postgis(degrees: np.ndarray) -> np.ndarray:
    """Degrees as PostGIS hands them to PROJ: to radians and back (its GEOGRAPHIC_POINT)."""
    return ((np.pi * degrees) / 180.0) * 180.0 / np.pi


@dataclass
class PathGeometry:
    graph_key: str
    edge_ids: np.ndarray  # sorted
    edge_sources: np.ndarray  # vertex id of each edge's source
    edge_flags: np.ndarray  # queries.PLAIN | REVERSED_FROM_SOURCE | REVERSED_FROM_TARGET
    edge_levels: np.ndarray  # (n, 2): level at the source end, at the target end
    edge_kinds: np.ndarray  # index into kinds
    edge_offsets: np.ndarray  # n + 1: where each edge's numbers start in coordinates
    coordinates: np.ndarray  # lon, lat, lon, lat ...
    kinds: list[str]
    vertex_lon: np.ndarray  # usable vertices, sorted by (level, lat)
    vertex_lat: np.ndarray
    vertex_ids: np.ndarray
    vertex_accessible: np.ndarray  # bool
    level_values: np.ndarray  # the levels held, ascending (float)
    level_starts: np.ndarray  # len(level_values) + 1: each level's range of vertices
    exact_levels: dict = field(default_factory=dict)  # float -> the one Decimal it stands for
    geod: object = None

    def path_edges(self, rows) -> list[PathEdge] | None:
        """PATH_EDGES' answer for a path given as (vertex left, edge, cost) rows; None when an
        edge is not one this copy draws exactly (the SQL then reads the path)."""
        drawn = self.drawn(rows)
        return None if drawn is None else [PathEdge(*fields) for fields in zip(*drawn, strict=True)]

    def path(self, rows, graph_version: int) -> dict | None:
        """The path as search.py caches it (its cost, edge ids and edges as JSON values) for
        (vertex left, edge, cost) rows, or None (see path_edges). No object per edge: a route
        crosses hundreds."""
        drawn = self.drawn(rows)
        if drawn is None:
            return None
        ids, kinds, from_levels, to_levels, costs, lines = drawn
        return {
            "graph_version": graph_version,
            "cost": sum(costs),
            "edge_ids": ids,
            "edges": list(zip(kinds, from_levels, to_levels, costs, lines, strict=True)),
        }

    def drawn(self, rows) -> tuple[list, ...] | None:
        """(ids, kinds, from levels, to levels, costs, coordinates) of the path's edges, columns
        of lists (levels as JSON values: itinerary.json_level); None when an edge is not one
        this copy draws exactly."""
        if not rows:
            return [], [], [], [], [], []
        nodes, ids, costs = (list(column) for column in zip(*rows, strict=True))
        edges = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self.edge_ids, edges)
        if (at >= len(self.edge_ids)).any():
            return None
        flags = self.edge_flags[at]
        if (self.edge_ids[at] != edges).any() or not (flags & queries.PLAIN).all():
            return None
        forward = self.edge_sources[at] == np.asarray(nodes, dtype=np.int64)
        reversed_ = np.where(forward, flags & queries.REVERSED_FROM_SOURCE, flags & queries.REVERSED_FROM_TARGET)
        levels = self.edge_levels[at]
        from_levels = np.where(forward, levels[:, 0], levels[:, 1])
        to_levels = np.where(forward, levels[:, 1], levels[:, 0])
        starts, ends = self.edge_offsets[at], self.edge_offsets[at + 1]
        counts = ends - starts
        # Every number of the path in one gather, as [lon, lat] pairs, then split per edge.
        gather = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(counts.sum())
        pairs = self.coordinates[gather].reshape(-1, 2).tolist()
        bounds = (np.concatenate(([0], np.cumsum(counts))) // 2).tolist()
        lines = [pairs[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        for n in np.flatnonzero(reversed_).tolist():
            lines[n].reverse()
        names = self.kinds
        kinds = [names[k] for k in self.edge_kinds[at].tolist()]
        return (
            [int(i) for i in ids],
            kinds,
            _json_levels(from_levels),
            _json_levels(to_levels),
            [float(c) for c in costs],
            lines,
        )

    def nearest(self, lon: float, lat: float, level, profile: str, max_m: float) -> Snap | None:
        """NEAREST_VERTEX's answer when it is certain here; None when the SQL must decide."""
        if profile not in ("walking", "accessible") or not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        wanted = Decimal(level) if not isinstance(level, float) else Decimal(repr(level))
        value = float(wanted)
        if self.exact_levels.get(value) != wanted:
            return None  # a level no usable vertex has, or one a float cannot tell apart
        k = int(np.searchsorted(self.level_values, value))
        start, end = int(self.level_starts[k]), int(self.level_starts[k + 1])
        # The box NEAREST_VERTEX reads (conservative metres per degree), by latitude then longitude.
        dlat = max_m / 110574.0
        dlon = max_m / (111319.0 * max(math.cos(math.radians(min(90.0, abs(lat) + dlat))), 1e-9))
        lats = self.vertex_lat[start:end]
        lo, hi = (
            start + int(np.searchsorted(lats, lat - dlat, "left")),
            start + int(np.searchsorted(lats, lat + dlat, "right")),
        )
        lons = self.vertex_lon[lo:hi]
        inside = (lons >= lon - dlon) & (lons <= lon + dlon)
        if profile == "accessible":
            inside &= self.vertex_accessible[lo:hi]
        found = np.flatnonzero(inside)
        if not len(found):
            return None  # nothing within the limit: the SQL says how far the nearest is
        # A close approximation (the ellipsoid's local radii) picks the few that can be nearest;
        # the geodesic decides among them.
        phi = math.radians(lat)
        w = 1 - _E2 * math.sin(phi) ** 2
        north, east = _A * (1 - _E2) / w**1.5, _A / math.sqrt(w) * math.cos(phi)
        near_lon, near_lat = lons[found], self.vertex_lat[lo:hi][found]
        approx = np.hypot(np.radians(near_lat - lat) * north, np.radians(near_lon - lon) * east)
        keep = approx <= approx.min() * 1.001 + 1e-3
        found, near_lon, near_lat = found[keep], near_lon[keep], near_lat[keep]
        _, _, metres = self.geod.inv(
            _as_postgis(near_lon), _as_postgis(near_lat),
            _as_postgis(np.full(len(found), lon)), _as_postgis(np.full(len(found), lat)),
        )  # fmt: skip
        metres = np.atleast_1d(np.asarray(metres, dtype=np.float64))
        ids = self.vertex_ids[lo:hi][found]
        best = min(range(len(found)), key=lambda j: (metres[j], ids[j]))
        if metres[best] > max_m - _SURE_M:
            return None  # at (or beyond) the limit: the SQL's own test decides
        level_held = self.exact_levels[value]  # the vertex's numeric, as the SQL returns it
        return Snap(int(ids[best]), float(near_lon[best]), float(near_lat[best]), level_held, float(metres[best]))


def _json_levels(levels: np.ndarray) -> list:
    """itinerary.json_level of each (integral levels as ints), in one pass when all are."""
    if (levels == np.floor(levels)).all():
        return levels.astype(np.int64).tolist()
    return [int(v) if v.is_integer() else v for v in levels.tolist()]


# -- building (pure: what PostgreSQL read in, arrays out) ----------------------------------------


def arrays_of(read: queries.GeometryRead) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays a PathGeometry maps, and its meta (kinds, levels), from one read."""
    edges = read.edges
    order = np.argsort(edges["id"], kind="stable")
    numbers = edges["numbers"].astype(np.int64)
    offsets_read = np.concatenate(([0], np.cumsum(numbers)))
    tokens = read.coordinates.split(",") if read.coordinates else []
    if len(tokens) != int(offsets_read[-1]):
        raise ValueError("route geometry: coordinates do not match their edges")
    # json reads "13" as an int and "13.0" as a float: an edge with an integral number is left to
    # the SQL (the copy holds floats), so the JSON it gives is the SQL's to the character.
    coordinates = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))
    flags = edges["flags"].astype(np.uint8)
    integral = [k for k, t in enumerate(tokens) if "." not in t and "e" not in t and "E" not in t]
    if integral:
        owners = np.searchsorted(offsets_read, np.asarray(integral), "right") - 1
        flags[owners] &= ~np.uint8(queries.PLAIN)
    # Rows in id order; their numbers gathered to match.
    counts = numbers[order]
    starts = offsets_read[:-1][order]
    gather = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(int(counts.sum()))
    kinds, kind_codes = np.unique(np.asarray(read.kinds, dtype=object).astype(str), return_inverse=True)
    # Usable vertices: an open edge touches them (walking); an open edge of a kind the accessible
    # profile takes (accessible).
    open_ = (flags & queries.OPEN) != 0
    accessible_edge = open_ & ((flags & queries.ACCESSIBLE_KIND) != 0)
    ends = np.concatenate((edges["source"], edges["target"])).astype(np.int64)
    usable_ids = np.unique(ends[np.concatenate((open_, open_))])
    accessible_ids = np.unique(ends[np.concatenate((accessible_edge, accessible_edge))])
    vertices = read.vertices
    vertex_ids = vertices["id"].astype(np.int64)
    usable = np.isin(vertex_ids, usable_ids)
    point = vertices["point"] != 0
    levels = vertices["level"].astype(np.float64)
    unsure = np.unique(levels[usable & ~point])  # the SQL would read a vertex that is not a point
    chosen = usable & point & ~np.isin(levels, unsure)
    v_ids, v_lon, v_lat, v_level = vertex_ids[chosen], vertices["lon"][chosen], vertices["lat"][chosen], levels[chosen]
    v_order = np.lexsort((v_ids, v_lat, v_level))
    level_values, level_first = np.unique(v_level[v_order], return_index=True)
    arrays = {
        "edge_ids": edges["id"].astype(np.int64)[order],
        "edge_sources": edges["source"].astype(np.int64)[order],
        "edge_flags": flags[order],
        "edge_levels": np.stack((edges["source_level"], edges["target_level"]), axis=1).astype(np.float64)[order],
        "edge_kinds": kind_codes.astype(np.int32)[order],
        "edge_offsets": np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        "coordinates": coordinates[gather] if len(gather) else coordinates,
        "vertex_lon": v_lon.astype(np.float64)[v_order],
        "vertex_lat": v_lat.astype(np.float64)[v_order],
        "vertex_ids": v_ids[v_order],
        "vertex_accessible": np.isin(v_ids[v_order], accessible_ids),
        "level_values": level_values,
        "level_starts": np.concatenate((level_first, [len(v_order)])).astype(np.int64),
    }
    exact = {}
    for text in read.levels:  # '1' and '1.0' are one numeric: one level
        value = Decimal(text)
        exact.setdefault(float(value), {}).setdefault(value, text)
    held = set(level_values.tolist())
    # A float that stands for two numerics (beyond a double's precision) is left to the SQL.
    meta = {
        "kinds": [str(k) for k in kinds],
        "levels": {repr(f): next(iter(t.values())) for f, t in exact.items() if len(t) == 1 and f in held},
    }
    return arrays, meta


def from_arrays(graph_key: str, arrays: dict, meta: dict) -> PathGeometry:
    return PathGeometry(
        graph_key=graph_key,
        **{name: arrays[name] for name in _ARRAYS},
        kinds=list(meta["kinds"]),
        exact_levels={float(f): Decimal(t) for f, t in meta["levels"].items()},
        geod=_geod(),
    )


_ARRAYS = ("edge_ids", "edge_sources", "edge_flags", "edge_levels", "edge_kinds", "edge_offsets", "coordinates",
           "vertex_lon", "vertex_lat", "vertex_ids", "vertex_accessible", "level_values", "level_starts")  # fmt: skip


def read_and_build(cur) -> PathGeometry:
    """One graph version read and held (tests, and a worker without the machine's store)."""
    read = queries.load(cur)
    arrays, meta = arrays_of(read)
    return from_arrays(read.graph_key, arrays, meta)


# -- the worker's copy ----------------------------------------------------------------------


def _state(app) -> dict:
    return app.extensions.setdefault(_STATE, {"lock": threading.Lock(), "current": None, "building": False})


def ready(graph_key: str) -> PathGeometry | None:
    """This graph version's copy when this worker holds it; else None, and it is built (in the
    background, unless a build runs) when the route index is on."""
    app = current_app._get_current_object()
    state = _state(app)
    held = state["current"]
    if held is not None and held.graph_key == graph_key:
        return held
    if held is not None and key_order(graph_key) < key_order(held.graph_key):
        return None  # a snapshot older than the copy: never go back
    if get_settings().route_index:
        with state["lock"]:
            if state["building"]:
                return None
            state["building"] = True
        threading.Thread(target=_build_in_background, args=(app, state), name="route-geometry", daemon=True).start()
    return None


def _build_in_background(app, state) -> None:
    def build():
        with app.app_context():
            build_now(state)

    try:
        run_logged(log, build, "route geometry not built", "route geometry build failed")
    finally:
        with state["lock"]:
            state["building"] = False


def _store_base(app):
    from indoor.routing import index

    base = index._store_dir(app)
    if base is None:
        return None
    base = base.with_name(base.name + _STORE_SUFFIX)
    try:
        index_store.ensure_private(base)
    except OSError as exc:
        log.warning("route geometry store %s not usable (%s): each worker reads its own", base, exc)
        return None
    return base


def build_now(state=None) -> PathGeometry | None:
    """Make this worker's copy the current graph version's: mapped from the machine's store when
    another worker wrote it, else read here (under the store's lock) and written to it."""
    app = current_app._get_current_object()
    state = state or _state(app)
    started = time.perf_counter()
    base = _store_base(app)

    def adopt(geometry: PathGeometry, how: str) -> PathGeometry:
        held = state["current"]
        if held is None or key_order(held.graph_key) <= key_order(geometry.graph_key):
            state["current"] = geometry
        log.info(
            "route geometry ready",
            extra={"graph_key": geometry.graph_key, "how": how, "edges": len(geometry.edge_ids),
                   "vertices": len(geometry.vertex_ids), "total_ms": round((time.perf_counter() - started) * 1000, 1)},
        )  # fmt: skip
        return state["current"]

    def read():
        return get_db().read(queries.load, timeout_ms=int(get_settings().route_index_load_timeout_s * 1000))

    if base is None:
        found = read()
        arrays, meta = run_off_loop(arrays_of, found)
        return adopt(from_arrays(found.graph_key, arrays, meta), "read")
    from indoor.queries.versions import versions

    graph_key = get_db().read(lambda cur: versions(cur)["graph_key"])
    stored = _load(base, graph_key)
    if stored is not None:
        return adopt(stored, "loaded")
    lock, held = index_store.BuildLock(base), False
    try:
        held = lock.acquire(lambda: index_store.exists(base, graph_key), get_settings().route_index_load_timeout_s * 10)
        stored = _load(base, graph_key)
        if stored is not None:
            return adopt(stored, "loaded")
        found = read()
        arrays, meta = run_off_loop(arrays_of, found)
        if held:
            run_off_loop(index_store.save, base, found.graph_key, arrays, None, meta)
            index_store.prune(base, sorted(index_store.versions(base), key=key_order, reverse=True))
            stored = _load(base, found.graph_key)
            if stored is not None:
                return adopt(stored, "read")
        return adopt(from_arrays(found.graph_key, arrays, meta), "read")
    finally:
        if held:
            lock.release()
        lock.close()


def _load(base, graph_key: str) -> PathGeometry | None:
    if not index_store.exists(base, graph_key):
        return None
    found = index_store.load(base, graph_key)
    if found is None:
        return None
    arrays, _, meta = found
    return from_arrays(graph_key, arrays, meta)
