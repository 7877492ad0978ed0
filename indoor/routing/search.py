"""The exact search: which edges each pgr_dijkstra gets, and when an answer is proven optimal.

With the in-memory route index on (ROUTE_INDEX) and built for the snapshot's graph version,
one search in it answers (`indexed_path`, see index.py); otherwise `shortest_path` routes between cells through the overlay's shortcuts when the overlay is the
current graph's (see queries/overlay.py for why that is exact); otherwise, or within one cell,
it searches a small window around the two vertices (see windows.py for why a window answer can
be proven optimal), widens when it cannot prove it, and ends on the whole graph. The first
window's radius is learned per worker from recent routes. The SQL it runs is in
queries/routing.py and queries/overlay.py.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from flask import current_app

from indoor.extensions import get_settings
from indoor.queries import overlay as overlay_queries
from indoor.queries import routing as queries
from indoor.queries.routing import PathEdge, Snap
from indoor.routing import geometry, index, itinerary, overlay, snap, windows

_EXTENT = "indoor.route_extent"
_RATIOS = "indoor.route_ratios"


@dataclass
class PathSearch:
    """A shortest vertex-to-vertex path (cost None: none exists) and what finding it took."""

    cost: float | None
    edges: list[PathEdge] = field(default_factory=list)
    pgrouting_ms: float = 0.0
    edges_loaded: int = 0
    window_tries: int = 0
    full_graph: bool = False
    overlay: bool = False  # answered through the overlay's shortcuts
    overlay_stale: bool = False  # an overlay was asked for but is not the current graph's
    decided_by: str = "search"  # or "components": the two are in different components, no search
    index: bool = False  # answered by the worker's in-memory route index (index.py)
    index_us: float = 0.0  # the index search's time, microseconds
    held: bool = False  # the path drawn from the worker's memory (geometry.py): no round trip


def same_place(a: dict, b: dict) -> bool:
    """Two resolved places at the same point (7 decimals) and level: a part of length 0."""
    return itinerary.point(a["lon"], a["lat"]) == itinerary.point(b["lon"], b["lat"]) and a["level"] == b["level"]


def compute(
    cur, places, profile: str, resolved: list, versions_used: dict, parts: list[int]
) -> tuple[dict, dict, list, dict]:
    """The paths of `parts` (part k: from place k to place k+1), exact, in one snapshot with its
    versions: (versions, {k: path}, resolved places, {k: PathSearch}).

    If the graph or the rooms changed since the places were snapped, they are snapped again in
    this snapshot and every part is computed (paths cached under the older versions are not
    this graph's), so the paths, the vertices and the version they are cached under all agree.
    """
    found_versions = queries.snapshot_versions(cur)
    if found_versions != versions_used:
        resolved = [snap.resolve(cur, p, profile, found_versions["graph_key"]) for p in places]
        if any(r.get("missing") or r.get("unlocated") or r.get("vertex") is None for r in resolved):
            return found_versions, {}, resolved, {}
        parts = [k for k in range(len(places) - 1) if not same_place(resolved[k], resolved[k + 1])]
    paths, searches = {}, {}
    for k in parts:
        paths[k], searches[k] = _compute_part(cur, resolved[k], resolved[k + 1], profile, found_versions)
    return found_versions, paths, resolved, searches


def _compute_part(cur, start: dict, end: dict, profile: str, found_versions: dict) -> tuple[dict, PathSearch]:
    settings = get_settings()
    source, target = (
        queries.Snap(r["vertex"], r["vertex_lon"], r["vertex_lat"], r["level"], r["connector_m"]) for r in (start, end)
    )
    graph_version = found_versions["graph"]
    straight = windows.lower_bound_distance_m((source.lon, source.lat), (target.lon, target.lat))
    same_level = start["level"] == end["level"]
    # Avoided kinds and closed edges (Rules): windows and the whole graph only, which take any
    # edge filter; the index, overlay and components hold the profiles' graphs.
    plain = queries.is_plain(profile)
    graph_key = found_versions["graph_key"] if plain and settings.route_overlay and overlay.available(cur) else None
    linked = None
    # The index answers "not connected" as fast as any pair: the components are for the searches.
    # Closures alone: the index re-weights their arcs (index.py); kinds avoided: the searches.
    use_index = settings.route_index and (plain or not profile.avoid)
    search = indexed_path(cur, source, target, profile, found_versions["graph_key"]) if use_index else None
    if search is None:
        if graph_key is not None and source.vertex != target.vertex:
            linked = overlay_queries.connected(cur, graph_key, profile, source.vertex, target.vertex)
        if linked is False:
            search = PathSearch(cost=None, decided_by="components")
        else:
            search = shortest_path(
                cur,
                source,
                target,
                profile,
                max_window_tries=settings.route_window_tries,
                first_radius=first_radius(straight, same_level),
                extent=lambda: network_extent(cur, graph_version),
                graph_key=graph_key,
                overlay_max_share=settings.route_overlay_max_share,
            )
        if search.overlay_stale or (graph_key is not None and linked is None and source.vertex != target.vertex):
            overlay.request_rebuild()  # the overlay or the components are not this graph's yet
    learn(search.cost, straight, same_level)
    return _path_of(search, graph_version), search


def _path_of(search: PathSearch, graph_version: int) -> dict:
    """A part's path as cached."""
    return {
        "graph_version": graph_version,
        "cost": search.cost,
        "edge_ids": [e.id for e in search.edges],  # which closures a path would have crossed
        "edges": [
            (e.kind, itinerary.json_level(e.from_level), itinerary.json_level(e.to_level), e.cost, e.coordinates)
            for e in search.edges
        ],
    }


def can_hold(profile, found_versions: dict) -> bool:
    """Whether compute_held() may answer for this graph version (both copies held; nothing done)."""
    graph_key = found_versions["graph_key"]
    return (
        get_settings().route_index
        and (queries.is_plain(profile) or not profile.avoid)
        and geometry.peek(graph_key) is not None
        and index.held(graph_key) is not None
    )


def compute_held(resolved: list, profile, found_versions: dict, parts: list[int]) -> tuple[dict, dict] | None:
    """compute()'s paths for `parts` without a round trip: ({k: path}, {k: PathSearch}) when this
    worker's route index and route geometry (geometry.py) both hold the graph version
    `found_versions` names and answer every part exactly; else None (compute() then reads them
    in a snapshot). The versions are those the places were resolved under, so the paths are
    that version's, as a cached path would be."""
    if not can_hold(profile, found_versions):
        return None  # a copy or an index behind this version follows the edit in compute()'s snapshot
    graph_key = found_versions["graph_key"]
    held = geometry.peek(graph_key)
    usable = _usable_index(graph_key, profile, peek=True)
    if usable is None:
        return None
    found_index, name, closed = usable
    paths, searches = {}, {}
    for k in parts:
        start, end = resolved[k], resolved[k + 1]
        if found_index.graph_key != graph_key:
            return None  # an edit moved the index on meanwhile
        started = time.perf_counter()
        found = found_index.path(start["vertex"], end["vertex"], name, closed)
        if found is None:
            return None
        search = PathSearch(cost=found[0], index=True, held=True, index_us=(time.perf_counter() - started) * 1e6)
        path = held.path(found[1], found_versions["graph"])
        if path is None:
            return None
        if found[1]:
            search.cost = path["cost"]
        else:
            path["cost"] = search.cost  # no edges: 0.0 (the same vertex) or None (not connected)
        straight = windows.lower_bound_distance_m((start["vertex_lon"], start["vertex_lat"]),
                                                  (end["vertex_lon"], end["vertex_lat"]))  # fmt: skip
        learn(search.cost, straight, start["level"] == end["level"])
        paths[k], searches[k] = path, search
    return paths, searches


def _usable_index(graph_key: str, profile, cur=None, peek: bool = False) -> tuple | None:
    """(index, profile name, closed edge ids) when this worker's route index holds this graph
    version and can answer for `profile` (closures: once its closures metric is ready); else None
    (a build may have been started, or with `peek`, nothing done)."""
    found_index = index.held(graph_key) if peek else index.current(graph_key, cur)
    if found_index is None:
        return None
    closed = profile.closed if isinstance(profile, queries.Rules) else ()
    name = queries.profile_name(profile)
    if closed and not (index.closed_ready(found_index, name) and found_index.graph_key == graph_key):
        return None
    return found_index, name, closed


def index_costs(resolved: list, parts: list[int], profile, graph_key: str) -> dict[int, dict]:
    """{part: {"cost", "edge_ids"}} of the parts this worker's route index answers for this graph
    version: a path's cost and its edges' ids, nothing read from the database (enough to tell
    which active closures a route went around, not to draw it). Parts it cannot answer are left
    out for the searches."""
    usable = _usable_index(graph_key, profile) if get_settings().route_index and queries.is_plain(profile) else None
    if usable is None:
        return {}
    found_index, name, closed = usable
    answered = {}
    for k in parts:
        found = found_index.path(resolved[k]["vertex"], resolved[k + 1]["vertex"], name, closed)
        if found is not None:
            cost, rows = found
            answered[k] = {"cost": cost, "edge_ids": [edge for _, edge, _ in rows]}
    return answered


def indexed_path(cur, source: Snap, target: Snap, profile: str, graph_key: str) -> PathSearch | None:
    """The path through this worker's route index when it holds this snapshot's graph version
    (its edges then read in this snapshot); None when it does not (a build is started) or
    cannot tell."""
    usable = _usable_index(graph_key, profile, cur)
    if usable is None:
        return None
    found_index, name, closed = usable
    started = time.perf_counter()
    found = found_index.path(source.vertex, target.vertex, name, closed)
    if found is None:
        return None
    search = PathSearch(cost=found[0], index=True, index_us=(time.perf_counter() - started) * 1e6)
    if found[1]:
        held = geometry.ready(graph_key, cur)
        edges = held.path_edges(found[1]) if held is not None else None
        search.edges = edges if edges is not None else queries.path_edges(cur, found[1])
        search.cost = sum(e.cost for e in search.edges)
    return search


def _search(cur, source: int, target: int, boxes, profile: str, search: PathSearch) -> float | None:
    """One pgr_dijkstra over the edges in `boxes` (None: all edges); fills `search`."""
    if boxes is None:
        search.full_graph = True
    else:
        search.window_tries += 1
    edges = queries.edges_sql(cur, boxes, profile)
    return _take(search, queries.path(cur, source, target, edges, queries.NETWORK_TABLES, boxes is None))


def _search_overlay(cur, source: int, target: int, cells: overlay_queries.Cells, profile: str, search: PathSearch):
    """One pgr_dijkstra over the two cells, the edges between cells and the other shortcuts."""
    search.overlay = True
    not_allowed = queries.NOT_ACCESSIBLE if profile == "accessible" else ()
    edges = overlay_queries.edges_sql(cur, cells, not_allowed)
    run = queries.path(cur, source, target, edges, queries.OVERLAY_TABLES, True, unpack=overlay_queries.unpack)
    return _take(search, run)


def _take(search: PathSearch, run: queries.PathRun) -> float | None:
    """The latest search's answer becomes the answer; the costs of all searches add up."""
    search.pgrouting_ms += run.pgrouting_ms
    search.edges_loaded += run.edges_loaded
    search.cost, search.edges = run.cost, run.edges
    return run.cost


def shortest_path(
    cur,
    source: Snap,
    target: Snap,
    profile: str,
    *,
    max_window_tries: int = 3,
    first_radius: float | None = None,
    extent=None,
    graph_key: str | None = None,
    overlay_max_share: float = 0.1,
) -> PathSearch:
    """The exact shortest path from vertex `source` to vertex `target` (see windows.py).

    With `graph_key` (this snapshot's, see versions()) and an overlay built for it (see
    queries/overlay.py) whose shortcuts and edges between cells are at most `overlay_max_share`
    of the edges: two vertices in different cells are routed through the overlay; two in one
    cell try one window first (often a few dozen edges), accepted only when it proves its
    answer, else the overlay. Otherwise: windows.

    The first window's radius is `first_radius` (default 1.5 x the distance + 20 m). A window
    answer C is accepted when C <= its radius; C > radius is confirmed by one window of radius C;
    no answer widens the window two-fold, and after `max_window_tries` windows (or once the
    window would hold the whole network: `extent()` gives the network's bbox) the whole graph
    is searched.
    """
    search = PathSearch(cost=None)
    if source.vertex == target.vertex:
        search.cost = 0.0
        return search
    s, t = (source.lon, source.lat), (target.lon, target.lat)
    straight = windows.lower_bound_distance_m(s, t)
    radius = first_radius if first_radius is not None else 1.5 * straight + 20.0
    # No path is shorter than the straight line: a smaller radius would hold nothing.
    radius = max(radius, straight, 1.0)
    cells = (
        overlay_queries.cells_of(cur, source.vertex, target.vertex, graph_key, overlay_max_share) if graph_key else None
    )
    search.overlay_stale = graph_key is not None and (cells is None or not cells.current)
    if cells is not None and cells.current and cells.useful:
        if cells.source is not None and cells.source == cells.target:
            boxes = windows.ellipse_cover(s, t, radius)
            if boxes:
                cost = _search(cur, source.vertex, target.vertex, boxes, profile, search)
                if cost is not None and cost <= radius:
                    return search
        _search_overlay(cur, source.vertex, target.vertex, cells, profile, search)
        return search
    while search.window_tries < max_window_tries:
        boxes = windows.ellipse_cover(s, t, radius)
        if boxes is None:
            break
        if search.window_tries and extent is not None and holds_network(boxes, extent()):
            break  # this window is the whole network: search it plainly
        if boxes:
            cost = _search(cur, source.vertex, target.vertex, boxes, profile, search)
            if cost is not None:
                if cost <= radius:
                    return search
                # The optimum is <= cost, so the window of radius `cost` holds it: exact.
                boxes = windows.ellipse_cover(s, t, cost)
                if boxes is None:
                    break
                _search(cur, source.vertex, target.vertex, boxes, profile, search)
                return search
        radius *= 2
    _search(cur, source.vertex, target.vertex, None, profile, search)
    return search


def holds_network(boxes: list[windows.Box], extent: windows.Box | None) -> bool:
    """Whether the boxes' bounding box contains the whole network (then a window saves nothing)."""
    if extent is None:
        return True  # no edges at all
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return x1 <= extent[0] and y1 <= extent[1] and x2 >= extent[2] and y2 >= extent[3]


# -- remembered per worker: the network's extent, how long routes are ---------------------


def network_extent(cur, graph_version: int):
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


def first_radius(straight_m: float, same_level: bool) -> float:
    learned = current_app.extensions.get(_RATIOS) or {"ratio": (), "extra": ()}
    factor = min(max(_quantile(learned["ratio"], _DEFAULT_FACTOR), 1.05), 4.0)
    extra = _MARGIN_M if same_level else max(_quantile(learned["extra"], _DEFAULT_LEVEL_CHANGE_M), _MARGIN_M)
    return factor * straight_m + extra


def learn(cost: float | None, straight_m: float, same_level: bool) -> None:
    if cost is None or not math.isfinite(cost):
        return
    learned = current_app.extensions.setdefault(
        _RATIOS, {"ratio": deque(maxlen=_SAMPLES), "extra": deque(maxlen=_SAMPLES)}
    )
    if same_level and straight_m >= _MARGIN_M:
        learned["ratio"].append(cost / straight_m)
    elif not same_level:
        factor = min(max(_quantile(learned["ratio"], _DEFAULT_FACTOR), 1.05), 4.0)
        learned["extra"].append(cost - factor * straight_m)
