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
import math
import time
from contextlib import contextmanager

from indoor import metrics
from indoor.errors import NotFound
from indoor.extensions import (
    cache_get_many,
    cache_set_many,
    get_db,
    get_settings,
    local_cache,
    route_slots,
    routes_computing,
)
from indoor.http.params import CategoryPlace, RoomPlace
from indoor.live import closures
from indoor.queries.routing import AVOIDABLE, Rules, excluded_kinds
from indoor.queries.versions import versions
from indoor.routing import category, itinerary, keys, search, snap, spaces, windows
from indoor.routing.errors import NoRoute, RoutesBusy, RouteTooLong
from indoor.routing.versions import current_versions, remember

log = logging.getLogger("indoor.route")
directions_log = logging.getLogger("indoor.directions")
phases_log = logging.getLogger("indoor.route.phases")


class Phases:
    """Where a route that is not a finished body in a cache spends its time: laps that add up to
    the whole, one `route phases` log line per such request (`make bench` reports the medians)."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self.started = self.mark = time.perf_counter()
        self.computed = False  # past the caches: the line is written
        self.places = "cache"  # where the places came from: cache, memory (geometry.py) or snapshot

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.ms[name] = self.ms.get(name, 0.0) + (now - self.mark) * 1000
        self.mark = now

    def log(self, cache_state: str) -> None:
        fields = {f"{name}_ms": round(value, 3) for name, value in self.ms.items()}
        # Up to the last lap (called right after it): the laps add up to the total whatever another
        # thread does with the GIL in between.
        fields.update(cache=cache_state, places=self.places, total_ms=round((self.mark - self.started) * 1000, 3))
        phases_log.info("route phases", extra=fields)


def _json(value) -> bytes:
    # allow_nan=False: a non-finite number is a bug to see (500), never a body JSON.parse rejects.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _encode(collection: tuple[dict, list]) -> bytes:
    """A route as cached, in no language: the body without its words, a newline (never inside
    compact JSON), the maneuvers. `route.instructions` is framed per request (http/instructions.py)."""
    body, steps = collection
    return _json(body) + b"\n" + _json(steps)


def _names(count: int) -> list[str]:
    """How messages name each place: 'from', 'via' #1, ..., 'to'."""
    return ["'from'", *(f"'via' #{k}" for k in range(1, count - 1)), "'to'"]


def route_between(places: list, profile: str, avoid: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The route as cached (see _encode: the body without words, then its maneuvers) through
    `places` in order (from, vias, to) and "HIT" or "MISS" (whether every path was cached).

    A hit costs one Redis round trip: the finished body. Otherwise the places (cached or
    snapped; a category place: the room chosen, cached or searched), then each part's path
    (cached or computed, every missing part in one snapshot), then the body is built and cached.
    What a miss learns (places, paths, the body) is written to Redis in one round trip at the end.

    `avoid`: edge kinds the route must not use. The closures active now (live/closures.py) close
    their edges; the caches are keyed by the kinds avoided and the closures active, so a closure's
    start, end or removal changes every key it touches.
    """
    writes = {}
    phases = Phases()
    cache_state = "MISS"
    try:
        found_versions = current_versions()
        active = closures.active(found_versions, profile)
        closed = tuple(sorted(set().union(*(c.edges for c in active)))) if active else ()
        rules = Rules(profile, tuple(sorted(set(avoid))), closed)
        phases.lap("versions")
        body, cache_state = _route_between(places, rules, active, found_versions, writes, phases)
        return body, cache_state
    finally:
        cache_set_many(writes)
        if phases.computed:
            phases.lap("cache_writes")
            phases.log(cache_state)


def _route_between(
    places: list, rules: Rules, active: tuple, found_versions: dict, writes: dict, phases: Phases
) -> tuple[bytes, str]:
    started = time.perf_counter()
    settings = get_settings()
    names = _names(len(places))
    # What searches and snapping are handed: the profile's name when nothing is avoided or
    # closed (the index, overlay and components serve those), else the Rules.
    profile = rules if not rules.plain else rules.profile
    snap_profile = Rules(rules.profile, rules.avoid) if rules.avoid else rules.profile  # closures never move a place
    keyed = keys.rules_key(rules.profile, rules.avoid, active)
    snap_keyed = keys.rules_key(rules.profile, rules.avoid, ())
    cached_key = keys.body_key(places, found_versions, keyed)
    # The worker's own memory first (no round trip), then Redis.
    cached_body = local_cache().get(cached_key)
    if cached_body is not None:
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    fixed = [k for k, p in enumerate(places) if not isinstance(p, CategoryPlace)]
    cached_body, *cached_places = cache_get_many(
        cached_key, *(keys.place_key(places[k], found_versions, snap_keyed) for k in fixed)
    )
    if cached_body is not None:
        local_cache().set(cached_key, cached_body)
        metrics.observe_route(None, cache_hit=True)
        return cached_body, "HIT"
    phases.computed = True
    phases.lap("cache")
    with _computation_slot(settings):
        phases.lap("slot")
        spaces.prefetch(found_versions)  # the names a body needs: read in the background meanwhile
        known = [None] * len(places)
        for k, value in zip(fixed, cached_places, strict=True):
            known[k] = value
        fresh = False  # versions read by this request (not the worker's memo of the last 0.5 s)
        if any(known[k] is None for k in fixed):
            fresh = True
            read_at = time.monotonic()
            # One round trip when the worker holds the graph's vertices; else a snapshot.
            found = snap.resolve_held(places, snap_profile, known, found_versions["graph_key"])
            phases.places = "memory"
            if found is None:
                phases.places = "snapshot"
                found = get_db().read(lambda cur: snap.resolve_all(cur, places, snap_profile, known))
            found_versions, resolved = found
            remember(found_versions, read_at)
            for k in fixed:
                if known[k] is None and not resolved[k].get("missing"):
                    writes[keys.place_key(places[k], found_versions, snap_keyed)] = resolved[k]
        else:
            resolved = known
        for k in fixed:
            snap.as_place(resolved[k], names[k], places[k])  # an unknown room: 404, before anything else
        phases.lap("snap")
        resolved_versions = found_versions
        route_places = list(places)
        chosen_under = []  # the versions each category was resolved under
        for k, place in enumerate(places):
            if isinstance(place, CategoryPlace):
                neighbour = 1 if k == 0 else k - 1
                snap.require_vertex(resolved[neighbour], names[neighbour])
                versions_seen, resolved[k] = _choose(
                    place, resolved[neighbour], k != 0, profile, keyed, names, k, found_versions
                )
                chosen_under.append(versions_seen)
                route_places[k] = RoomPlace(resolved[k]["description"]["room"])
        phases.lap("category")
        ends = [snap.as_place(r, n, p) for r, n, p in zip(resolved, names, route_places, strict=True)]
        parts = [k for k in range(len(places) - 1) if not search.same_place(resolved[k], resolved[k + 1])]
        if not parts:
            body = _collection(ends, [None] * (len(places) - 1), found_versions, rules.profile)
            phases.lap("body")
            return _encode(_noted(body, rules, [])), "MISS"
        _require_vertices(resolved, names, parts)
        # No path is shorter than the straight line: a request surely over the budget costs no search.
        at_least_m = sum(
            windows.lower_bound_distance_m((ends[k].lon, ends[k].lat), (ends[k + 1].lon, ends[k + 1].lat))
            for k in parts
        )
        if at_least_m > settings.route_max_length_m:
            raise RouteTooLong(at_least_m, settings.route_max_length_m, "MISS", at_least=True)

        def path_key(k, graph_key, key_profile=keyed):
            return keys.path_key(graph_key, key_profile, resolved[k]["vertex"], resolved[k + 1]["vertex"])

        cached_paths = cache_get_many(*(path_key(k, found_versions["graph_key"]) for k in parts))
        paths = {k: path for k, path in zip(parts, cached_paths, strict=True) if path is not None}
        missing = [k for k in parts if k not in paths]
        searches = {}
        phases.lap("cache")
        if missing and not fresh and search.can_hold(profile, found_versions):
            # Every place was cached: whether the graph moved since the memo's versions is one
            # short read (compute() would read it in its snapshot), so a path is never older.
            read_at = time.monotonic()
            now_versions = get_db().read(versions, one_statement=True)
            remember(now_versions, read_at)
            fresh = now_versions == found_versions
        held = search.compute_held(resolved, profile, found_versions, missing) if missing and fresh else None
        if held is not None:  # the worker's memory holds this graph version: no round trip
            computed, searches = held
            paths.update(computed)
            # Cached all the same: a route whose places are cached then needs no database at all.
            for k, path in computed.items():
                writes[path_key(k, found_versions["graph_key"])] = path
        elif missing:
            read_at = time.monotonic()
            found_versions, computed, new_resolved, searches = get_db().read(
                lambda cur: search.compute(cur, route_places, profile, resolved, resolved_versions, missing)
            )
            remember(found_versions, read_at)
            if new_resolved is not resolved:  # the places moved with the graph: answer for the new one
                resolved = new_resolved
                ends = [snap.as_place(r, n, p) for r, n, p in zip(resolved, names, route_places, strict=True)]
                parts = [k for k in range(len(places) - 1) if not search.same_place(resolved[k], resolved[k + 1])]
                _require_vertices(resolved, names, parts)
                paths = {}
            paths.update(computed)
            for k, path in computed.items():
                writes[path_key(k, found_versions["graph_key"])] = path
        phases.lap("search")
        cache_state = "MISS" if missing else "HIT"
        for k in parts:
            _log(
                searches.get(k), cache_state, keyed, resolved[k]["vertex"], resolved[k + 1]["vertex"], paths[k], started
            )
        went_around, certain = [], True
        if active:
            went_around, certain = _closures_went_around(
                route_places, resolved, parts, paths, rules, active, found_versions, path_key, writes
            )
            phases.lap("closures")
        for k in parts:
            if paths[k]["cost"] is None:
                detail = _without(rules)
                if went_around:
                    raise NoRoute(
                        f"no route from parameter {names[k]} to parameter {names[k + 1]}{detail}: "
                        + "; ".join(c.sentence() for c in went_around),
                        cache_state,
                        [c.summary() for c in went_around],
                    )
                raise NoRoute(
                    f"no route from parameter {names[k]} to parameter {names[k + 1]}{detail}: they are not connected",
                    cache_state,
                )
            if not math.isfinite(paths[k]["cost"]):  # finite costs that add up past the largest float
                raise NoRoute("no route: the costs along the path add up to more than a number can hold", cache_state)
        length_m = sum(paths[k]["cost"] for k in parts)
        if length_m > settings.route_max_length_m:  # refused before the costly part: legs, names, body
            raise RouteTooLong(length_m, settings.route_max_length_m, cache_state)
        paths_in_order = [paths.get(k) for k in range(len(places) - 1)]
        collection = _collection(ends, paths_in_order, found_versions, rules.profile)
        phases.lap("body")
        body = _encode(_noted(collection, rules, went_around))
        phases.lap("encode")
        # Not cached: a category chosen on older data, or closures not attributed in one snapshot.
        if certain and all(seen == found_versions for seen in chosen_under):
            cached_key = keys.body_key(places, found_versions, keyed)
            writes[cached_key] = body
            local_cache().set(cached_key, body)
        return body, cache_state


@contextmanager
def _computation_slot(settings):
    """One of the worker's ROUTE_MAX_CONCURRENT slots for a route that is not a finished body in
    a cache, waited for at most ROUTE_QUEUE_WAIT_S (then 503 with Retry-After)."""
    slots = route_slots()
    with routes_computing():
        if not slots.acquire(timeout=settings.route_queue_wait_s):
            raise RoutesBusy(settings.route_queue_wait_s)
        try:
            yield
        finally:
            slots.release()


def _collection(ends, paths, found_versions: dict, profile: str) -> tuple[dict, list]:
    """The body and its maneuvers, timed: what directions add to a route (`make bench`)."""
    started = time.perf_counter()
    names = spaces.current(found_versions)
    named = time.perf_counter()
    timings = {"maneuvers_ms": 0.0}
    collection = itinerary.route_collection(
        ends, paths, found_versions["graph"], profile, get_settings(), names, timings
    )
    directions_log.info(
        "route directions",
        extra={
            "spaces_ms": round((named - started) * 1000, 3),
            "maneuvers_ms": round(timings["maneuvers_ms"], 3),
            "body_ms": round((time.perf_counter() - named) * 1000, 3),
            "steps": len(collection[1]),
        },
    )
    return collection


def _without(rules: Rules) -> str:
    """How a 422 says what the route could not use."""
    excluded = set(excluded_kinds(rules))
    named = [name for name, kind in AVOIDABLE.items() if kind in excluded]
    if not named:
        return ""
    return " without " + (", ".join(named[:-1]) + " or " + named[-1] if len(named) > 1 else named[0])


def _noted(collection: tuple[dict, list], rules: Rules, went_around: list) -> tuple[dict, list]:
    """The body with what it avoided and the active closures it went around (API.md)."""
    body, steps = collection
    if rules.avoid:
        body["route"]["avoid"] = [name for name, kind in AVOIDABLE.items() if kind in rules.avoid]
    if went_around:  # absent when no closure changed the route: the body is the open one's
        body["route"]["closures"] = [c.summary() for c in went_around]
    return body, steps


def _closures_went_around(places, resolved, parts, paths, rules, active, found_versions, path_key, writes):
    """The active closures that made a part longer or impossible: those on the part's path with
    the closures open (same places, same kinds avoided), when that path is shorter. -> (closures,
    whether both were computed on the same data: else the body is not cached)."""
    open_profile = Rules(rules.profile, rules.avoid) if rules.avoid else rules.profile
    open_keyed = keys.rules_key(rules.profile, rules.avoid, ())
    graph_key = found_versions["graph_key"]
    cached = cache_get_many(*(path_key(k, graph_key, open_keyed) for k in parts))
    open_paths = {k: p for k, p in zip(parts, cached, strict=True) if p is not None}
    missing = [k for k in parts if k not in open_paths]
    if missing:  # the route index tells the open paths' costs and edges without reading them
        open_paths.update(search.index_costs(resolved, missing, open_profile, graph_key))
        missing = [k for k in parts if k not in open_paths]
    certain = True
    if missing:
        read_at = time.monotonic()
        seen, computed, new_resolved, _ = get_db().read(
            lambda cur: search.compute(cur, places, open_profile, resolved, found_versions, missing)
        )
        remember(seen, read_at)
        if new_resolved is not resolved or seen["graph_key"] != graph_key:
            return [], False  # the graph moved meanwhile: answer without naming closures, uncached
        open_paths.update(computed)
        for k, path in computed.items():
            writes[path_key(k, graph_key, open_keyed)] = path
    found = []
    for k in parts:
        closed_cost, open_path = paths[k]["cost"], open_paths[k]
        if open_path["cost"] is None or (closed_cost is not None and closed_cost <= open_path["cost"] + 1e-6):
            continue
        used = set(open_path.get("edge_ids", ()))
        found.extend(c for c in active if c.edges & used and c not in found)
    return found, certain


def _require_vertices(resolved: list, names: list, parts: list[int]) -> None:
    for k in sorted({k for part in parts for k in (part, part + 1)}):
        snap.require_vertex(resolved[k], names[k])


def _choose(place: CategoryPlace, neighbour: dict, outward: bool, profile, keyed: str, names, k: int, found_versions):
    """The resolved room `place` stands for (see category.py), cached; 404 for a category no room
    has, 422 when no room of it can be reached. `profile`: a name or Rules; `keyed`: its key."""
    key = keys.category_key(found_versions, keyed, place.category, neighbour["vertex"], outward)
    rooms_key = keys.category_rooms_key(found_versions, keyed, place.category)
    value, rooms = cache_get_many(key, rooms_key)
    if value is None:
        read_at = time.monotonic()
        known = None if rooms is None else (found_versions, rooms)
        found_versions, choice, rooms = get_db().read(
            lambda cur: category.choose(cur, place.category, neighbour, outward, profile, known)
        )
        remember(found_versions, read_at)
        value = {"resolved": choice.resolved, "why": choice.why}
        writes = {keys.category_key(found_versions, keyed, place.category, neighbour["vertex"], outward): value}
        if known is None or known[0] != found_versions:  # rooms read from the cache go back unchanged
            writes[keys.category_rooms_key(found_versions, keyed, place.category)] = rooms
        cache_set_many(writes)
        log.info(
            "route category",
            extra={
                "profile": keyed,
                "category": place.category,
                "found": choice.resolved is not None,
                "decided_by": choice.decided_by,
                "searches": choice.searches,
                "pgrouting_ms": round(choice.pgrouting_ms, 2),
                "edges_loaded": choice.edges_loaded,
            },
        )
    neighbour_name = names[k - 1] if outward else names[k + 1]
    if value["why"] == "unknown":
        raise NotFound(f"no room has category {place.category!r} (parameter {names[k]})")
    if value["why"] is not None:
        detail = _without(profile) if isinstance(profile, Rules) else _without(Rules(profile))
        direction = "from" if outward else "to"
        raise NoRoute(
            f"no route: no room of category {place.category!r} (parameter {names[k]}) can be reached"
            f" {direction} parameter {neighbour_name}{detail}"
        )
    resolved = dict(value["resolved"])
    resolved["description"] = {**resolved["description"], "category": place.category}
    return found_versions, resolved


def _method(searched) -> str | None:
    """How a computed path was found (the last search decides: a window that could not prove its
    answer before the overlay counts as the overlay)."""
    if searched is None or not (searched.index or searched.overlay or searched.full_graph or searched.window_tries):
        return None
    if searched.index:
        return "index"
    return "overlay" if searched.overlay else "full_graph" if searched.full_graph else "window"


def _log(searched, cache_state: str, profile: str, source, target, path: dict | None, started: float) -> None:
    """One line per part of a route that was not a finished body in the cache."""
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
            "held": searched.held if searched else False,
            # How the answer was decided: a search, the components (not connected, no search),
            # or the cache (a path computed before).
            "decided_by": searched.decided_by if searched else "cache",
            "total_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
