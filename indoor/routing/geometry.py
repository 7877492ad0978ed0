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

import dataclasses
import functools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from flask import current_app

from indoor.extensions import computing_routes, get_db, get_settings
from indoor.queries import route_geometry as queries
from indoor.queries import route_index as route_index_queries
from indoor.queries.route_index import key_order
from indoor.queries.routing import PathEdge, Snap
from indoor.routing import index, index_store
from indoor.routing.background import run_logged, run_off_loop, start_once

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
    edge_targets: np.ndarray
    edge_flags: np.ndarray  # queries.PLAIN | REVERSED_FROM_SOURCE | REVERSED_FROM_TARGET
    edge_levels: np.ndarray  # (n, 2): level at the source end, at the target end
    edge_kinds: np.ndarray  # index into kinds
    edge_offsets: np.ndarray  # n + 1: where each edge's numbers start in coordinates
    coordinates: np.ndarray  # lon, lat, lon, lat ...
    kinds: list[str]
    vertex_lon: np.ndarray  # every vertex the SQL could snap to, sorted by (level, lat)
    vertex_lat: np.ndarray
    vertex_ids: np.ndarray
    vertex_walking: np.ndarray  # bool: an open edge touches it
    vertex_accessible: np.ndarray  # bool: an open edge the accessible profile takes touches it
    level_values: np.ndarray  # the levels held, ascending (float)
    level_starts: np.ndarray  # len(level_values) + 1: each level's range of vertices
    exact_levels: dict = field(default_factory=dict)  # float -> the one Decimal it stands for
    geod: object = None
    can_follow: bool = False  # the database logs an edit of the vertices (see follow())
    # Edits followed since the arrays were read (follow()): edge id -> its drawing now, or None
    # (gone, or not drawn exactly); vertex id -> (walking, accessible) usable now.
    edge_changed: dict = field(default_factory=dict)
    vertex_changed: dict = field(default_factory=dict)
    edge_ends: dict = field(default_factory=dict)  # edge id -> (source, target) of every edge an edit wrote

    @functools.cached_property
    def _stand_in(self) -> int | None:
        """A plain edge's id, drawn in place of an edge an edit changed (then replaced)."""
        plain = np.flatnonzero(self.edge_flags & queries.PLAIN)
        return int(self.edge_ids[plain[0]]) if len(plain) else None

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
        changed = self.edge_changed
        patched = [n for n, i in enumerate(ids) if i in changed] if changed else []
        if any(changed[ids[n]] is None for n in patched):
            return None
        edges = np.asarray(ids, dtype=np.int64)
        if patched:  # drawn from the arrays as any plain edge, then replaced by what the edit made
            if self._stand_in is None:
                return None
            edges[patched] = self._stand_in
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
        from_levels, to_levels = _json_levels(from_levels), _json_levels(to_levels)
        for n in patched:
            source, kind, source_level, target_level, line, reversed_from_source, reversed_from_target = changed[ids[n]]
            forward_n = nodes[n] == source
            kinds[n] = kind
            from_levels[n], to_levels[n] = (source_level, target_level) if forward_n else (target_level, source_level)
            lines[n] = line[::-1] if (reversed_from_source if forward_n else reversed_from_target) else list(line)
        return [int(i) for i in ids], kinds, from_levels, to_levels, [float(c) for c in costs], lines

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
        usable = (self.vertex_accessible if profile == "accessible" else self.vertex_walking)[lo:hi]
        if self.vertex_changed:  # edits followed since: those vertices as they are now
            usable = usable.copy()
            ids_here = self.vertex_ids[lo:hi]
            changed = np.flatnonzero(np.isin(ids_here, np.fromiter(self.vertex_changed, np.int64)))
            for j in changed.tolist():
                usable[j] = self.vertex_changed[int(ids_here[j])][1 if profile == "accessible" else 0]
        inside = (lons >= lon - dlon) & (lons <= lon + dlon) & usable
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

    def follow(self, graph_key: str, edge_ids: list[int], read: queries.EdgesRead, usable: dict) -> PathGeometry:
        """A copy of this geometry at `graph_key`, which an edit of the edges `edge_ids` (`read`:
        the records of those still there) and of nothing else made; `usable`: whether each vertex
        those edges touch (before and after) is usable now. The arrays are shared; the changes are
        kept beside them."""
        edge_changed = dict(self.edge_changed)
        edge_changed.update(dict.fromkeys(edge_ids))  # gone, unless read below
        edge_ends = dict(self.edge_ends)
        for edge, kind, line in _records_lines(read):
            edge_ends[int(edge["id"])] = (int(edge["source"]), int(edge["target"]))
            edge_changed[int(edge["id"])] = (
                (int(edge["source"]), kind, *_json_levels(np.asarray([edge["source_level"], edge["target_level"]])),
                 line, bool(edge["flags"] & queries.REVERSED_FROM_SOURCE),
                 bool(edge["flags"] & queries.REVERSED_FROM_TARGET))
                if edge["flags"] & queries.PLAIN and line is not None else None
            )  # fmt: skip
        return dataclasses.replace(
            self,
            graph_key=graph_key,
            edge_changed=edge_changed,
            edge_ends=edge_ends,
            vertex_changed={**self.vertex_changed, **usable},
        )

    def ends_of(self, edge_ids: list[int]) -> set[int]:
        """The vertices the edges `edge_ids` join in this copy: as read, and as edits followed
        since wrote them (an edge added, then changed again)."""
        ends = {v for edge in edge_ids for v in self.edge_ends.get(edge, ())}
        at = np.searchsorted(self.edge_ids, np.asarray(edge_ids, dtype=np.int64))
        for edge, k in zip(edge_ids, at.tolist(), strict=True):
            if k < len(self.edge_ids) and self.edge_ids[k] == edge:
                ends.update((int(self.edge_sources[k]), int(self.edge_targets[k])))
        return ends


def _records_lines(read: queries.EdgesRead):
    """(record, kind, [[lon, lat], ...] or None) per edge of a read: None when an integral number
    is in its line (see arrays_of)."""
    tokens = read.coordinates.split(",") if read.coordinates else []
    k = 0
    for edge, kind in zip(read.edges, read.kinds, strict=True):
        count = int(edge["numbers"])
        mine = tokens[k : k + count]
        k += count
        if any(_integral(t) for t in mine):
            yield edge, kind, None
            continue
        numbers = [float(t) for t in mine]
        yield edge, kind, [numbers[j : j + 2] for j in range(0, count, 2)]


def _integral(token: str) -> bool:
    """A GeoJSON number json reads as an int ("13"): the copy holds floats, so such a line is
    left to the SQL, whose JSON it would not match to the character."""
    return "." not in token and "e" not in token and "E" not in token


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
    integral = [k for k, t in enumerate(tokens) if _integral(t)]
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
    point = vertices["point"] != 0
    levels = vertices["level"].astype(np.float64)
    # A level where the SQL could meet a vertex that is not a point (an edit may make it usable)
    # is left to the SQL; on the others every vertex is held, usable or not (an edit may change that).
    chosen = point & ~np.isin(levels, np.unique(levels[~point]))
    v_ids, v_lon, v_lat, v_level = vertex_ids[chosen], vertices["lon"][chosen], vertices["lat"][chosen], levels[chosen]
    v_order = np.lexsort((v_ids, v_lat, v_level))
    level_values, level_first = np.unique(v_level[v_order], return_index=True)
    arrays = {
        "edge_ids": edges["id"].astype(np.int64)[order],
        "edge_sources": edges["source"].astype(np.int64)[order],
        "edge_targets": edges["target"].astype(np.int64)[order],
        "edge_flags": flags[order],
        "edge_levels": np.stack((edges["source_level"], edges["target_level"]), axis=1).astype(np.float64)[order],
        "edge_kinds": kind_codes.astype(np.int32)[order],
        "edge_offsets": np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        "coordinates": coordinates[gather] if len(gather) else coordinates,
        "vertex_lon": v_lon.astype(np.float64)[v_order],
        "vertex_lat": v_lat.astype(np.float64)[v_order],
        "vertex_ids": v_ids[v_order],
        "vertex_walking": np.isin(v_ids[v_order], usable_ids),
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
        "can_follow": read.can_follow,
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
        can_follow=bool(meta.get("can_follow")),
    )


_ARRAYS = ("edge_ids", "edge_sources", "edge_targets", "edge_flags", "edge_levels", "edge_kinds", "edge_offsets", "coordinates",
           "vertex_lon", "vertex_lat", "vertex_ids", "vertex_walking", "vertex_accessible", "level_values", "level_starts")  # fmt: skip


def read_and_build(cur) -> PathGeometry:
    """One graph version read and held (tests, and a worker without the machine's store)."""
    read = queries.load(cur)
    arrays, meta = arrays_of(read)
    return from_arrays(read.graph_key, arrays, meta)


# -- the worker's copy ----------------------------------------------------------------------


def _state(app) -> dict:
    return app.extensions.setdefault(
        _STATE, {"lock": threading.Lock(), "current": None, "building": False, "retry_at": float("-inf")}
    )


def peek(graph_key: str) -> PathGeometry | None:
    """This graph version's copy if this worker holds it now; nothing else is done (an older copy
    follows the edit, or the version is read, where a snapshot's cursor is at hand: ready())."""
    held = _state(current_app._get_current_object())["current"]
    return held if held is not None and held.graph_key == graph_key else None


def ready(graph_key: str, cur=None) -> PathGeometry | None:
    """This graph version's copy when this worker holds it. An older copy is brought up to it
    here when the edits in between changed a few edges and no vertex (read with `cur`, in the
    route's snapshot: a read bounded by the edit, not the campus). Otherwise None, and the
    version is read whole in the background (unless a read runs), when the route index is on."""
    app = current_app._get_current_object()
    state = _state(app)
    held = state["current"]
    if held is not None and held.graph_key == graph_key:
        return held
    if held is not None and key_order(graph_key) < key_order(held.graph_key):
        return None  # a snapshot older than the copy: never go back
    if not get_settings().route_index:
        return None
    if held is not None and cur is not None and held.can_follow and len(held.edge_changed) < MAX_CHANGED:
        followed = _follow(state, held, cur, graph_key)
        if followed is not None:
            return followed
    if index.held(graph_key) is None:
        return None  # read once the route index holds this version: one whole-graph read at a time
    if computing_routes() > 1:
        return None  # not in the middle of a burst (the read holds a connection for seconds): later
    start_once(state, "building", _build_in_background, (app, state), "route-geometry", not_before="retry_at")
    return None


RETRY_S = 30.0  # after a read that failed (the database away, a timeout): routes use the SQL meanwhile


MAX_FOLLOW = 128  # edges an edit may change for the copy to follow it (else it is read whole)
MAX_CHANGED = 4096  # edges followed since the arrays were read, before they are read whole again


def _follow(state, held: PathGeometry, cur, graph_key: str) -> PathGeometry | None:
    started = time.perf_counter()
    found = route_index_queries.changes(cur, held.graph_key, graph_key, MAX_FOLLOW)
    if not found.complete or queries.VERTICES_CHANGED in found.edge_ids:
        return None
    read = queries.changed_edges(cur, found.edge_ids)
    ends = held.ends_of(found.edge_ids) | {int(v) for e in read.edges for v in (e["source"], e["target"])}
    usable = queries.usable(cur, sorted(ends)) if ends else {}
    current = state["current"]
    if current is not held:  # the reads let other requests run: follow only the copy read for
        return current if current is not None and current.graph_key == graph_key else None
    followed = held.follow(graph_key, found.edge_ids, read, usable)
    state["current"] = followed
    log.info(
        "route geometry ready",
        extra={"graph_key": graph_key, "how": "followed", "edges_changed": len(found.edge_ids),
               "total_ms": round((time.perf_counter() - started) * 1000, 2)},
    )  # fmt: skip
    return followed


def _build_in_background(app, state) -> None:
    built = []

    def build():
        with app.app_context():
            built.append(build_now(state))

    try:
        run_logged(log, build, "route geometry not built", "route geometry build failed")
    finally:
        with state["lock"]:
            state["building"] = False
            if not built or built[0] is None:  # not again at once: a read that failed costs the database
                state["retry_at"] = time.monotonic() + RETRY_S


def _store_base(app):
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
