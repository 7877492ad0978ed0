"""Routes: the caches in front of the exact search, and the versions that keep them fresh.

A route is looked up in the worker's memory, then Redis (the finished body, keys.py); on a miss
the places are snapped (or read from the cache, snap.py), the path between their vertices is
read from the cache or computed (search.py), and the body is framed (itinerary.py). Everything
a miss computes is read in one REPEATABLE READ snapshot together with the versions it is
stored under (versions.py), so a key never holds an answer older than its version.
"""

from __future__ import annotations

import json
import logging
import time

from indoor import metrics
from indoor.extensions import cache_get, cache_get_many, cache_set, get_db, get_settings, local_cache
from indoor.routing import itinerary, keys, search, snap
from indoor.routing.errors import NoRoute
from indoor.routing.versions import current_versions, remember

log = logging.getLogger("indoor.route")


def _encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


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
    cached_key = keys.body_key(places, found_versions, profile)
    # The worker's own memory first (no round trip), then Redis.
    cached_body = local_cache().get(cached_key)
    if cached_body is not None:
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    place_keys = [keys.place_key(p, found_versions, profile) for p in places]
    cached_body, *known = cache_get_many(cached_key, *place_keys)
    if cached_body is not None:
        local_cache().set(cached_key, cached_body)
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    if None in known:
        read_at = time.monotonic()
        found_versions, resolved = get_db().read(lambda cur: snap.resolve_all(cur, places, profile, known))
        remember(found_versions, read_at)
        for place, old, new in zip(places, known, resolved, strict=True):
            if old is None and not new.get("missing"):
                cache_set(keys.place_key(place, found_versions, profile), new)
    else:
        resolved = known
    ends = [snap.as_place(r, n, p) for r, n, p in zip(resolved, names, places, strict=True)]
    if _same_place(ends[0], ends[1]):
        body = itinerary.feature_collection(
            ends[0], ends[1], {"graph_version": found_versions["graph"]}, profile, settings, same_place=True
        )
        return _encode(body), "MISS"
    for r, n in zip(resolved, names, strict=True):
        snap.require_vertex(r, n)

    source, target = resolved[0]["vertex"], resolved[1]["vertex"]
    path = cache_get(keys.path_key(found_versions["graph_key"], profile, source, target))
    searched = None
    cache_state = "HIT"
    if path is None:
        cache_state = "MISS"
        read_at = time.monotonic()
        found_versions, path, new_resolved, searched = get_db().read(
            lambda cur: search.compute(cur, places, profile, resolved, found_versions)
        )
        remember(found_versions, read_at)
        if new_resolved is not resolved:  # the places moved with the graph: answer for the new one
            resolved = new_resolved
            ends = [snap.as_place(r, n, p) for r, n, p in zip(resolved, names, places, strict=True)]
            for r, n in zip(resolved, names, strict=True):
                snap.require_vertex(r, n)
            source, target = resolved[0]["vertex"], resolved[1]["vertex"]
        cache_set(keys.path_key(found_versions["graph_key"], profile, source, target), path)
    _log(searched, cache_state, profile, source, target, path, started)
    if path["cost"] is None:
        detail = " without stairs or escalators" if profile == "accessible" else ""
        raise NoRoute(f"no route from parameter 'from' to parameter 'to'{detail}: they are not connected", cache_state)
    body = _encode(itinerary.feature_collection(ends[0], ends[1], path, profile, settings))
    cached_key = keys.body_key(places, found_versions, profile)
    cache_set(cached_key, body)
    local_cache().set(cached_key, body)
    return body, cache_state


def _same_place(a: itinerary.Place, b: itinerary.Place) -> bool:
    return itinerary.point(a.lon, a.lat) == itinerary.point(b.lon, b.lat) and a.level == b.level


def _method(searched) -> str | None:
    """How a computed path was found (the last search decides: a window that could not prove its
    answer before the overlay counts as the overlay)."""
    if searched is None or not (searched.index or searched.overlay or searched.full_graph or searched.window_tries):
        return None
    if searched.index:
        return "index"
    return "overlay" if searched.overlay else "full_graph" if searched.full_graph else "window"


def _log(searched, cache_state: str, profile: str, source, target, path: dict | None, started: float) -> None:
    metrics.observe_route(
        searched.pgrouting_ms / 1000 if searched else None, cache_hit=cache_state == "HIT", method=_method(searched)
    )
    log.info(
        "route",
        extra={
            "cache": cache_state,
            "profile": profile,
            "source_vertex": source,
            "target_vertex": target,
            "found": path["cost"] is not None if path else True,
            "pgrouting_ms": round(searched.pgrouting_ms, 2) if searched else 0.0,
            "edges_loaded": searched.edges_loaded if searched else 0,
            "window_tries": searched.window_tries if searched else 0,
            "full_graph": searched.full_graph if searched else False,
            "overlay": searched.overlay if searched else False,
            "index": searched.index if searched else False,
            "index_us": round(searched.index_us, 1) if searched else 0.0,
            "total_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
