"""Routes: the cache in front of queries.routing, and the versions that keep it fresh.

Three things are cached in Redis, all keyed by the versions the database's triggers bump
(indoor_versions: 'graph' for the network tables, 'rooms' for room_points), each with the time
it last changed (so entries of another or a re-created database never match):

- the finished response, keyed by (versions, profile, the two places as asked): a hit is one
  Redis round trip and no database;
- place -> snapped vertex, keyed by (graph version[, rooms version for a room], profile, place);
- vertex -> vertex path, keyed by (graph version, profile, source vertex, target vertex);
  "no route" is cached too. Two ways of naming the same vertices share it.

A worker keeps the versions it read for ROUTE_VERSION_MAX_AGE_S (0.5 s), and an edit by any
client (psql, QGIS, ogr2ogr) changes them, so within that time every key changes: a route
computed on an older graph sits under a key nobody asks for any more. Everything a miss
computes is read in one REPEATABLE READ snapshot together with the versions it is stored under,
so a key never holds an answer older than its version.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque

from flask import current_app

from indoor import itinerary, metrics, overlay, route_index, windows
from indoor.errors import ApiError, NotFound
from indoor.extensions import cache_get, cache_get_many, cache_set, get_db, get_settings, local_cache
from indoor.params import RoomPlace
from indoor.queries import routing as queries
from indoor.queries.versions import versions

log = logging.getLogger("indoor.route")

_VERSIONS = "indoor.route_versions"
_EXTENT = "indoor.route_extent"
_RATIOS = "indoor.route_ratios"
_KEY_VERSION = "v1"


class NoRoute(ApiError):
    def __init__(self, message: str, cache_state: str | None = None):
        super().__init__(422, "no_route", message, {"X-Cache": cache_state} if cache_state else None)


# -- versions -----------------------------------------------------------------------------


def current_versions() -> dict:
    """queries.versions.versions(), read at most ROUTE_VERSION_MAX_AGE_S ago."""
    state = current_app.extensions.setdefault(_VERSIONS, {"at": float("-inf"), "versions": None})
    now = time.monotonic()
    if state["versions"] is None or now - state["at"] > get_settings().route_version_max_age_s:
        found = get_db().read(versions, timeout_ms=2000)
        _remember(found, now)
    return state["versions"]


def _remember(found: dict, read_at: float) -> None:
    """Keep versions read by a query that started at `read_at` (monotonic), if they are newer."""
    state = current_app.extensions.setdefault(_VERSIONS, {"at": float("-inf"), "versions": None})
    if read_at >= state["at"]:
        state["versions"], state["at"] = dict(found), read_at


def _graph_extent(cur, graph_version: int):
    """The network's bounding box, computed once per graph version (only a route with no
    answer in its first window asks for it)."""
    memo = current_app.extensions.get(_EXTENT)
    if memo and memo[0] == graph_version:
        return memo[1]
    extent = queries.graph_extent(cur)
    current_app.extensions[_EXTENT] = (graph_version, extent)
    return extent


# How much longer than the straight line routes of this network are: the first window's radius
# is a high quantile of what recent routes needed, so most routes need one window and few load a
# needlessly big one. Same-level routes scale with the distance (corridors are not straight);
# routes between levels also detour to stairs or an elevator (a roughly constant extra).
# A heuristic only: whatever the radius, the answer is exact.
_QUANTILE = 0.9
_SAMPLES = 256
_DEFAULT_FACTOR = 1.5
_DEFAULT_LEVEL_CHANGE_M = 60.0
_MARGIN_M = 20.0


def _quantile(values, default: float) -> float:
    if len(values) < 16:
        return default
    ordered = sorted(values)
    return ordered[int(_QUANTILE * (len(ordered) - 1))]


def _first_radius(straight_m: float, same_level: bool) -> float:
    learned = current_app.extensions.get(_RATIOS) or {"ratio": (), "extra": ()}
    factor = min(max(_quantile(learned["ratio"], _DEFAULT_FACTOR), 1.05), 4.0)
    extra = _MARGIN_M if same_level else max(_quantile(learned["extra"], _DEFAULT_LEVEL_CHANGE_M), _MARGIN_M)
    return factor * straight_m + extra


def _learn(cost: float | None, straight_m: float, same_level: bool) -> None:
    if cost is None:
        return
    learned = current_app.extensions.setdefault(
        _RATIOS, {"ratio": deque(maxlen=_SAMPLES), "extra": deque(maxlen=_SAMPLES)}
    )
    if same_level and straight_m >= _MARGIN_M:
        learned["ratio"].append(cost / straight_m)
    elif not same_level:
        factor = min(max(_quantile(learned["ratio"], _DEFAULT_FACTOR), 1.05), 4.0)
        learned["extra"].append(cost - factor * straight_m)


# -- places -------------------------------------------------------------------------------


def _place_key(place, found_versions: dict, profile: str) -> str:
    if isinstance(place, RoomPlace):
        return f"route:{_KEY_VERSION}:place:{found_versions['graph_key']}:{found_versions['rooms_key']}:{profile}:{_canonical(place)}"
    return f"route:{_KEY_VERSION}:place:{found_versions['graph_key']}:{profile}:{_canonical(place)}"


def _canonical(place) -> str:
    if isinstance(place, RoomPlace):
        return f"r{place.room}"
    return f"p{place.lon!r},{place.lat!r},{place.level.normalize()}"


def _body_key(places, found_versions: dict, profile: str) -> str:
    """The finished response, keyed by exactly what it depends on."""
    rooms = found_versions["rooms_key"] if any(isinstance(p, RoomPlace) for p in places) else "-"
    ends = ":".join(_canonical(p) for p in places)
    return f"route:{_KEY_VERSION}:body:{found_versions['graph_key']}:{rooms}:{profile}:{ends}"


def _encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _path_key(graph_key: str, profile: str, source: int, target: int) -> str:
    return f"route:{_KEY_VERSION}:path:{graph_key}:{profile}:{source}:{target}"


def _resolve(cur, place, profile: str) -> dict:
    """Where a place is and the vertex it snaps to: a plain dict (cached as is).

    {"missing": True} for an unknown room; "vertex" None when its level has no usable vertex.
    """
    if isinstance(place, RoomPlace):
        room = queries.room(cur, place.room)
        if room is None:
            return {"missing": True}
        level = itinerary.json_level(room.level)
        lon, lat = room.lon, room.lat
        resolved = {
            "description": {
                "room": room.id,
                "name": room.name,
                "level": level,
                "building": room.building,
                "coordinates": itinerary.point(lon, lat),
            },
            "label": room.name,
        }
        level_value = room.level
    else:
        lon, lat, level_value = place.lon, place.lat, place.level
        level = itinerary.json_level(level_value)
        resolved = {"description": {"coordinates": itinerary.point(lon, lat), "level": level}, "label": None}
    resolved.update(lon=lon, lat=lat, level=level)
    snap = queries.nearest_vertex(cur, lon, lat, level_value, profile)
    if snap is None:
        resolved["vertex"] = None
    else:
        resolved.update(vertex=snap.vertex, vertex_lon=snap.lon, vertex_lat=snap.lat, connector_m=snap.metres)
        resolved["description"].update(vertex=snap.vertex, connector_m=round(snap.metres, 3))
    return resolved


def _resolve_all(cur, places, profile: str, known: list) -> tuple[dict, list]:
    """Versions and every place not in `known`, in one snapshot."""
    queries.begin_snapshot(cur)
    found_versions = versions(cur)
    return found_versions, [
        k if k is not None else _resolve(cur, p, profile) for p, k in zip(places, known, strict=True)
    ]


def _as_place(resolved: dict, name: str, raw) -> itinerary.Place:
    if resolved.get("missing"):
        raise NotFound(f"room {raw.room} (parameter '{name}') does not exist")
    return itinerary.Place(
        description=resolved["description"],
        lon=resolved["lon"],
        lat=resolved["lat"],
        level=resolved["level"],
        label=resolved["label"],
        vertex_lon=resolved.get("vertex_lon", 0.0),
        vertex_lat=resolved.get("vertex_lat", 0.0),
        connector_m=resolved.get("connector_m", 0.0),
    )


def _require_vertex(resolved: dict, name: str) -> None:
    if resolved.get("vertex") is None:
        raise NoRoute(
            f"no route: parameter '{name}' is on level {resolved['level']}, which has no walkable network"
            " for this profile"
        )


# -- paths --------------------------------------------------------------------------------


def _compute(cur, places, profile: str, resolved: list, versions_used: dict) -> tuple[dict, dict, list, object]:
    """The path between the two snapped vertices, exact, in one snapshot with its versions.

    If the graph or the rooms changed since the places were snapped, they are snapped again in
    this snapshot, so the path, the vertices and the version it is cached under all agree.
    """
    settings = get_settings()
    queries.begin_snapshot(cur)
    found_versions = versions(cur)
    if found_versions != versions_used:
        resolved = [_resolve(cur, p, profile) for p in places]
        if any(r.get("missing") or r.get("vertex") is None for r in resolved):
            return found_versions, {}, resolved, None
    source, target = (
        queries.Snap(r["vertex"], r["vertex_lon"], r["vertex_lat"], r["level"], r["connector_m"]) for r in resolved
    )
    graph_version = found_versions["graph"]
    straight = windows.lower_bound_distance_m((source.lon, source.lat), (target.lon, target.lat))
    same_level = resolved[0]["level"] == resolved[1]["level"]
    search = _indexed(cur, source, target, profile, found_versions["graph_key"]) if settings.route_index else None
    search = search or queries.shortest_path(
        cur,
        source,
        target,
        profile,
        max_window_tries=settings.route_window_tries,
        first_radius=_first_radius(straight, same_level),
        extent=lambda: _graph_extent(cur, graph_version),
        graph_key=found_versions["graph_key"] if settings.route_overlay and overlay.available(cur) else None,
        overlay_max_share=settings.route_overlay_max_share,
    )
    if search.overlay_stale:
        overlay.request_rebuild()
    _learn(search.cost, straight, same_level)
    path = {
        "graph_version": graph_version,
        "cost": search.cost,
        "edges": [
            (e.kind, itinerary.json_level(e.from_level), itinerary.json_level(e.to_level), e.cost, e.coordinates)
            for e in search.edges
        ],
    }
    return found_versions, path, resolved, search


def _indexed(cur, source, target, profile: str, graph_key: str):
    """The path through this worker's route index when it holds this snapshot's graph version
    (then its edges are read in this snapshot); None when it does not (a build is started)."""
    index = route_index.current(graph_key)
    if index is None:
        return None
    started = time.perf_counter()
    found = index.path(source.vertex, target.vertex, profile)
    if found is None:
        return None
    search = queries.PathSearch(cost=found[0], index=True, index_us=(time.perf_counter() - started) * 1e6)
    if found[1]:
        search.edges = queries.path_edges(cur, found[1])
        search.cost = sum(e.cost for e in search.edges)
    return search


def route_between(origin, destination, profile: str) -> tuple[bytes, str]:
    """The route body as JSON (API.md, Routes) and "HIT" or "MISS" (whether the path was cached).

    A hit costs one Redis round trip: the finished body. Otherwise the places (cached or
    snapped), then the path (cached or computed), then the body is built and cached.
    """
    started = time.perf_counter()
    settings = get_settings()
    places = [origin, destination]
    names = ["from", "to"]
    found_versions = current_versions()
    body_key = _body_key(places, found_versions, profile)
    # The worker's own memory first (no round trip), then Redis.
    cached_body = local_cache().get(body_key)
    if cached_body is not None:
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    keys = [_place_key(p, found_versions, profile) for p in places]
    cached_body, *known = cache_get_many(body_key, *keys)
    if cached_body is not None:
        local_cache().set(body_key, cached_body)
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    if None in known:
        read_at = time.monotonic()
        found_versions, resolved = get_db().read(lambda cur: _resolve_all(cur, places, profile, known))
        _remember(found_versions, read_at)
        for place, old, new in zip(places, known, resolved, strict=True):
            if old is None and not new.get("missing"):
                cache_set(_place_key(place, found_versions, profile), new)
    else:
        resolved = known
    ends = [_as_place(r, n, p) for r, n, p in zip(resolved, names, places, strict=True)]
    if _same_place(ends[0], ends[1]):
        body = itinerary.feature_collection(
            ends[0], ends[1], {"graph_version": found_versions["graph"]}, profile, settings, same_place=True
        )
        return _encode(body), "MISS"
    for r, n in zip(resolved, names, strict=True):
        _require_vertex(r, n)

    source, target = resolved[0]["vertex"], resolved[1]["vertex"]
    path = cache_get(_path_key(found_versions["graph_key"], profile, source, target))
    search = None
    cache_state = "HIT"
    if path is None:
        cache_state = "MISS"
        read_at = time.monotonic()
        found_versions, path, new_resolved, search = get_db().read(
            lambda cur: _compute(cur, places, profile, resolved, found_versions)
        )
        _remember(found_versions, read_at)
        if new_resolved is not resolved:  # the places moved with the graph: answer for the new one
            resolved = new_resolved
            ends = [_as_place(r, n, p) for r, n, p in zip(resolved, names, places, strict=True)]
            for r, n in zip(resolved, names, strict=True):
                _require_vertex(r, n)
            source, target = resolved[0]["vertex"], resolved[1]["vertex"]
        cache_set(_path_key(found_versions["graph_key"], profile, source, target), path)
    _log(search, cache_state, profile, source, target, path, started)
    if path["cost"] is None:
        detail = " without stairs or escalators" if profile == "accessible" else ""
        raise NoRoute(f"no route from parameter 'from' to parameter 'to'{detail}: they are not connected", cache_state)
    body = _encode(itinerary.feature_collection(ends[0], ends[1], path, profile, settings))
    body_key = _body_key(places, found_versions, profile)
    cache_set(body_key, body)
    local_cache().set(body_key, body)
    return body, cache_state


def _same_place(a: itinerary.Place, b: itinerary.Place) -> bool:
    return itinerary.point(a.lon, a.lat) == itinerary.point(b.lon, b.lat) and a.level == b.level


def _method(search) -> str | None:
    """How a computed path was found (the last search decides: a window that could not prove its
    answer before the overlay counts as the overlay)."""
    if search is None or not (search.index or search.overlay or search.full_graph or search.window_tries):
        return None
    if search.index:
        return "index"
    return "overlay" if search.overlay else "full_graph" if search.full_graph else "window"


def _log(search, cache_state: str, profile: str, source, target, path: dict | None, started: float) -> None:
    metrics.observe_route(
        search.pgrouting_ms / 1000 if search else None, cache_hit=cache_state == "HIT", method=_method(search)
    )
    log.info(
        "route",
        extra={
            "cache": cache_state,
            "profile": profile,
            "source_vertex": source,
            "target_vertex": target,
            "found": path["cost"] is not None if path else True,
            "pgrouting_ms": round(search.pgrouting_ms, 2) if search else 0.0,
            "edges_loaded": search.edges_loaded if search else 0,
            "window_tries": search.window_tries if search else 0,
            "full_graph": search.full_graph if search else False,
            "overlay": search.overlay if search else False,
            "index": search.index if search else False,
            "index_us": round(search.index_us, 1) if search else 0.0,
            "total_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
