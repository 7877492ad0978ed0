"""What an uncached route needs besides its search, held with the route index per graph version:
the path's edges (kind, levels, geometry) and the snap (usable vertices per level), so a route
whose snapshot is the index's graph version reads neither from PostgreSQL.

Plain numpy arrays only (flat arrays, offsets for the variable-length geometry), one dataclass,
so a store shared between processes can carry them as named arrays. Read by
queries/graph_arrays.py with the index's own read, in the same snapshot: they are exactly that
graph version's (`graph_key`), and are used only for a route of that version; any other route,
and anything the arrays do not hold exactly, is read by SQL as before.

The snap: among the vertices of the place's level that the profile may use, the geodesic
nearest within ROUTE_MAX_SNAP_M, ties to the smaller id, as NEAREST_VERTEX decides. Distances are
WGS84 geodesics (pyproj's GeographicLib, the algorithm PostGIS uses for geography); where two
candidates or a candidate and the limit are closer than the two implementations could be apart
(TIE_M), the SQL snap decides. No vertex within the limit: the SQL snap answers (it also says how
far the nearest one is).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np
import psycopg2
from flask import current_app

from indoor.extensions import get_db, get_settings
from indoor.queries import graph_arrays as queries
from indoor.queries.routing import PathEdge, Room, Snap
from indoor.queries.versions import versions
from indoor.routing.background import run_logged

log = logging.getLogger("indoor.route_index")

TIE_M = 1e-3  # closer than this: the SQL snap decides (the two geodesics agree to ~1e-9 m)
_GEOD = None


def _geod():
    global _GEOD
    if _GEOD is None:
        from pyproj import Geod

        _GEOD = Geod(ellps="WGS84")
    return _GEOD


@dataclass(frozen=True)
class RouteArrays:
    graph_key: str
    # Edges, in id order.
    edge_ids: np.ndarray  # int64, sorted, unique
    edge_source: np.ndarray  # int64: travelled from it, the geometry is as held
    edge_kind: np.ndarray  # int32: 0 NULL, else 1 + position in `kinds`
    kinds: np.ndarray  # str
    level_source: np.ndarray  # float64: the level at each end, as the SQL path read gives it
    level_target: np.ndarray
    points: np.ndarray  # int32: points of the geometry from the source; -1: not held (SQL reads it)
    first: np.ndarray  # int64: where its points start in `coords`
    reversible: np.ndarray  # bool: from the target it is exactly the points reversed
    coords: np.ndarray  # float64 (n, 2): lon, lat
    # Vertices a place may snap to (located, on a level the API serves), by level then lon.
    vertex_ids: np.ndarray  # int64
    vertex_lon: np.ndarray  # float64
    vertex_lat: np.ndarray
    levels: np.ndarray  # str: each level's numeric text (trim_scale)
    level_starts: np.ndarray  # int64, len(levels) + 1: the vertices of level k are [starts[k], starts[k + 1])
    walking: np.ndarray  # bool: the walking profile may snap to it
    accessible: np.ndarray  # bool: the accessible profile may
    snap_held: np.ndarray  # bool, 0-d: False when the SQL snap must answer (a located vertex not a point)


def as_arrays(arrays: RouteArrays) -> dict[str, np.ndarray]:
    """Its fields as named arrays (the route index store keeps them beside the index's)."""
    return {f.name: np.asarray(getattr(arrays, f.name)) for f in fields(RouteArrays) if f.name != "graph_key"}


def from_arrays(graph_key: str, held: dict) -> RouteArrays | None:
    """as_arrays() read back (mapped read-only); None when a field is missing (stored by another
    version of this code: routes read by SQL until the worker reads them itself)."""
    names = [f.name for f in fields(RouteArrays) if f.name != "graph_key"]
    if any(name not in held for name in names):
        return None
    return RouteArrays(graph_key=graph_key, **{name: held[name] for name in names})


def load(cur, graph_key: str, edges) -> RouteArrays | None:
    """The arrays of this snapshot's graph (of key `graph_key`; `edges`: the index's edge records
    read in this snapshot, queries/route_index.py), or None when they cannot be read (routes read
    by SQL). In a savepoint, so a failure leaves the index's read usable."""
    cur.execute("SAVEPOINT route_arrays")
    try:
        queries.no_jit(cur)
        kinds, path_edges_read, numbers = queries.load_edges(cur)
        levels, vertices, not_points = queries.load_vertices(cur)
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT route_arrays")
        log.warning("route arrays not loaded for graph %s: %s (routes read paths and snaps by SQL)", graph_key,
                    type(exc).__name__)  # fmt: skip
        return None
    cur.execute("RELEASE SAVEPOINT route_arrays")
    return build(graph_key, kinds, path_edges_read, numbers, levels, vertices, not_points, edges)


def _usable(vertex_ids: np.ndarray, index_edges) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex, whether the walking and the accessible profile may snap to it: as
    NEAREST_VERTEX's EXISTS, an edge at it open one way (a cost >= 0 and finite), for accessible
    also of a kind it takes (the index's `accessible`: NULL kinds are not)."""
    cost, reverse_cost = index_edges["cost"].astype(np.float64), index_edges["reverse_cost"].astype(np.float64)
    is_open = ((cost >= 0) & np.isfinite(cost)) | ((reverse_cost >= 0) & np.isfinite(reverse_cost))
    accessible = is_open & index_edges["accessible"].astype(bool)
    walking_at, accessible_at = np.zeros(len(vertex_ids), bool), np.zeros(len(vertex_ids), bool)
    for end in ("source", "target"):
        ends = index_edges[end].astype(np.int64)
        at = np.searchsorted(vertex_ids, ends)
        found = at < len(vertex_ids)
        found[found] &= vertex_ids[at[found]] == ends[found]
        walking_at[at[found & is_open]] = True
        accessible_at[at[found & accessible]] = True
    return walking_at, accessible_at


def build(graph_key, kinds, edges, numbers, levels, vertices, not_points, index_edges) -> RouteArrays | None:
    edge_ids = edges["id"].astype(np.int64)
    if len(edge_ids) > 1 and not (np.diff(edge_ids) > 0).all():
        return None  # duplicate ids: the SQL read joins by id, the arrays could not say which
    points = edges["points"].astype(np.int32)
    counts = np.maximum(points, 0).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else np.zeros(0, np.int64)
    if int(counts.sum()) * 2 != len(numbers):
        return None  # never seen: the geometry and its counts disagree
    coords = numbers.reshape(-1, 2)
    # A whole number is written without a point: JSON reads it as an int, which the body would
    # show as such. Such an edge is left to the SQL read (a coordinate on a whole degree).
    whole = np.flatnonzero((coords == np.floor(coords)).any(axis=1))
    if len(whole):
        owner = np.searchsorted(first, whole, side="right") - 1
        points = points.copy()
        points[np.unique(owner)] = -1
    level_code = vertices["level"].astype(np.int64) - 1
    ids = vertices["id"].astype(np.int64)
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        return None  # duplicate vertex ids: the SQL snap could answer either
    walking, accessible = _usable(ids, index_edges)
    order = np.lexsort((vertices["id"], vertices["lon"], level_code))
    sorted_levels = level_code[order]
    starts = np.searchsorted(sorted_levels, np.arange(len(levels) + 1)).astype(np.int64)
    return RouteArrays(
        graph_key=graph_key,
        edge_ids=edge_ids,
        edge_source=edges["source"].astype(np.int64),
        edge_kind=edges["kind"].astype(np.int32),
        kinds=np.asarray(kinds, dtype=str),
        level_source=edges["level_s"].astype(np.float64),
        level_target=edges["level_t"].astype(np.float64),
        points=points,
        first=first,
        reversible=edges["reversible"].astype(bool),
        coords=coords,
        vertex_ids=vertices["id"].astype(np.int64)[order],
        vertex_lon=vertices["lon"].astype(np.float64)[order],
        vertex_lat=vertices["lat"].astype(np.float64)[order],
        levels=np.asarray(levels, dtype=str),
        level_starts=starts,
        walking=walking[order],
        accessible=accessible[order],
        snap_held=np.asarray(not_points == 0),
    )


# -- the path's edges ---------------------------------------------------------------------------


def _level(value: float):
    return int(value) if value.is_integer() else value


def path_edges(arrays: RouteArrays, rows) -> list[PathEdge] | None:
    """PATH_EDGES's answer for the (vertex left, edge, cost) rows, from the arrays; None when
    some edge is not held (the SQL read answers)."""
    ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    at = np.searchsorted(arrays.edge_ids, ids)
    if (at >= len(arrays.edge_ids)).any():
        return None
    if not (arrays.edge_ids[at] == ids).all() or (arrays.points[at] < 0).any():
        return None
    out = []
    for (node, edge, cost), k in zip(rows, at.tolist(), strict=True):
        n, start = int(arrays.points[k]), int(arrays.first[k])
        coordinates = arrays.coords[start : start + n].tolist()
        if node == arrays.edge_source[k]:
            from_level, to_level = arrays.level_source[k], arrays.level_target[k]
        elif arrays.reversible[k]:
            from_level, to_level = arrays.level_target[k], arrays.level_source[k]
            coordinates.reverse()
        else:
            return None
        code = int(arrays.edge_kind[k])
        kind = str(arrays.kinds[code - 1]) if code else None
        out.append(PathEdge(int(edge), kind, float(from_level), float(to_level), float(cost), coordinates))
    return out


# -- the snap -----------------------------------------------------------------------------------

UNANSWERED = object()  # the SQL snap must answer


def _level_code(arrays: RouteArrays, level) -> int | None:
    try:
        wanted = Decimal(str(level)) if not isinstance(level, Decimal) else level
    except ArithmeticError:
        return None
    for code, text in enumerate(arrays.levels.tolist()):
        if Decimal(text) == wanted:
            return code
    return None


def nearest(arrays: RouteArrays, lon: float, lat: float, level, profile: str, max_m: float):
    """The Snap NEAREST_VERTEX gives for a place, or UNANSWERED (the SQL snap must answer: not
    held, no vertex within `max_m`, or too close to call). `profile`: walking or accessible."""
    if not bool(arrays.snap_held) or profile not in ("walking", "accessible"):
        return UNANSWERED
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > 85.0:
        return UNANSWERED
    code = _level_code(arrays, level)
    if code is None:
        return UNANSWERED
    lo, hi = int(arrays.level_starts[code]), int(arrays.level_starts[code + 1])
    # A box holding every point within max_m (twice the conservative degrees of windows.py).
    dlat = 2.0 * max_m / 110574.0
    dlon = 2.0 * max_m / (111319.0 * max(math.cos(math.radians(min(90.0, abs(lat) + dlat))), 1e-9))
    a = lo + int(np.searchsorted(arrays.vertex_lon[lo:hi], lon - dlon, side="left"))
    b = lo + int(np.searchsorted(arrays.vertex_lon[lo:hi], lon + dlon, side="right"))
    if a >= b:
        return UNANSWERED
    lats = arrays.vertex_lat[a:b]
    usable = arrays.walking[a:b] if profile == "walking" else arrays.accessible[a:b]
    pick = np.flatnonzero(usable & (lats >= lat - dlat) & (lats <= lat + dlat)) + a
    if not len(pick):
        return UNANSWERED
    lons, lats = arrays.vertex_lon[pick], arrays.vertex_lat[pick]
    _, _, metres = _geod().inv(np.full(len(pick), lon), np.full(len(pick), lat), lons, lats)
    metres = np.asarray(metres, dtype=np.float64)
    if (np.abs(metres - max_m) < TIE_M).any():
        return UNANSWERED
    within = metres <= max_m
    if not within.any():
        return UNANSWERED
    pick, metres = pick[within], metres[within]
    best = int(np.argmin(metres))
    close = np.flatnonzero(metres - metres[best] < TIE_M)
    if len(close) > 1:
        return UNANSWERED
    k = int(pick[best])
    return Snap(int(arrays.vertex_ids[k]), float(arrays.vertex_lon[k]), float(arrays.vertex_lat[k]), level,
                float(metres[best]))  # fmt: skip


def timed_load(cur, graph_key: str, edges) -> tuple[RouteArrays | None, float]:
    started = time.perf_counter()
    arrays = load(cur, graph_key, edges)
    return arrays, (time.perf_counter() - started) * 1000


# -- the rooms: where each is, per rooms version --------------------------------------------------
#
# A room's row as ROOM reads it, for every room of one rooms version (`rooms_key`), so a place
# given as a room is located with no read. Used only with the versions the route's keys name
# (ROUTE_VERSION_MAX_AGE_S old at most, as every cached answer). Loaded in the background the
# first time a route asks for a version the worker does not hold; meanwhile ROOM answers.

_ROOMS = "indoor.route_rooms"


@dataclass(frozen=True)
class RoomArrays:
    rooms_key: str
    ids: np.ndarray  # int64, sorted, unique
    located: np.ndarray  # bool: a point in lon/lat on a level the API serves
    lon: np.ndarray  # float64
    lat: np.ndarray
    level: np.ndarray  # int32: position in `levels` (located rooms)
    levels: np.ndarray  # str: trim_scale texts
    name_bytes: np.ndarray  # uint8: the names, UTF-8, one after another
    name_start: np.ndarray  # int64
    name_len: np.ndarray  # int64; -1: NULL
    building_bytes: np.ndarray
    building_start: np.ndarray
    building_len: np.ndarray


def _texts(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    encoded = [v.encode() if v is not None else b"" for v in values]
    lengths = np.fromiter((len(e) if v is not None else -1 for e, v in zip(encoded, values, strict=True)),
                          dtype=np.int64, count=len(values))  # fmt: skip
    starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]]).astype(np.int64) if len(values) else lengths
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), starts, lengths


def _text(blob: np.ndarray, start: np.ndarray, length: np.ndarray, k: int) -> str | None:
    n = int(length[k])
    return None if n < 0 else blob[int(start[k]) : int(start[k]) + n].tobytes().decode()


def build_rooms(rooms_key: str, levels, records, names, buildings) -> RoomArrays | None:
    ids = records["id"].astype(np.int64)
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        return None  # duplicate room ids: ROOM would read either
    name_bytes, name_start, name_len = _texts(names)
    building_bytes, building_start, building_len = _texts(buildings)
    return RoomArrays(
        rooms_key=rooms_key,
        ids=ids,
        located=records["located"].astype(bool),
        lon=records["lon"].astype(np.float64),
        lat=records["lat"].astype(np.float64),
        level=(records["level"].astype(np.int64) - 1).astype(np.int32),
        levels=np.asarray(levels, dtype=str),
        name_bytes=name_bytes,
        name_start=name_start,
        name_len=name_len,
        building_bytes=building_bytes,
        building_start=building_start,
        building_len=building_len,
    )


def room(rooms: RoomArrays, room_id: int):
    """ROOM's Room for `room_id` (None: no such room)."""
    k = int(np.searchsorted(rooms.ids, room_id))
    if k >= len(rooms.ids) or rooms.ids[k] != room_id:
        return None
    name = _text(rooms.name_bytes, rooms.name_start, rooms.name_len, k)
    building = _text(rooms.building_bytes, rooms.building_start, rooms.building_len, k)
    if not rooms.located[k]:
        return Room(int(room_id), name, None, building, None, None)
    level = Decimal(str(rooms.levels[int(rooms.level[k])]))
    return Room(int(room_id), name, level, building, float(rooms.lon[k]), float(rooms.lat[k]))


def rooms_of(rooms_key: str) -> RoomArrays | None:
    """This worker's rooms of `rooms_key`, or None (a read of them is started in the background)."""
    app = current_app._get_current_object()
    state = app.extensions.setdefault(_ROOMS, {"rooms": None, "loading": False, "lock": threading.Lock()})
    rooms = state["rooms"]
    if rooms is not None and rooms.rooms_key == rooms_key:
        return rooms
    with state["lock"]:
        if state["loading"]:
            return None
        state["loading"] = True
    threading.Thread(target=_load_rooms_in_background, args=(app, state), name="route-rooms", daemon=True).start()
    return None


def _read_rooms(cur) -> RoomArrays | None:
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    rooms_key = versions(cur)["rooms_key"]
    return build_rooms(rooms_key, *queries.load_rooms(cur))


def _load_rooms_in_background(app, state) -> None:
    def load():
        with app.app_context():
            started = time.perf_counter()
            rooms = get_db().read(_read_rooms, timeout_ms=int(get_settings().route_index_load_timeout_s * 1000))
            if rooms is not None:
                state["rooms"] = rooms
                log.info("route rooms ready", extra={"rooms_key": rooms.rooms_key, "rooms": len(rooms.ids),
                                                     "total_ms": round((time.perf_counter() - started) * 1000, 1)})  # fmt: skip

    try:
        run_logged(log, load, "route rooms not read", "route rooms read failed")
    finally:
        with state["lock"]:
            state["loading"] = False
