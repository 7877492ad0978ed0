"""The nearest room of a category by route cost: an exact, bounded one-to-many search.

`to=category:NAME` is the room of that category (room_points.category, any level) with the
smallest route cost from the place before it; `from=category:NAME` the one with the smallest
cost to the place after it. The cost of a room is its path cost plus its connector.

Exact as the windows are (windows.py): every vertex of a path of cost <= R from vertex s lies
within geodesic distance R of s, so the edges meeting the cover of that disc hold every such
path. One pgr_dijkstraCost from s to the candidates in that window gives costs never below the
true ones, and exact for every candidate whose path costs <= R. If the best total b (path +
connector) is <= R, no candidate outside can beat it (its total is > R); if b > R, one more
window of radius b holds every candidate of total <= b, exactly. No answer widens the window
(x2, ROUTE_WINDOW_TRIES), then the whole graph. Candidates in another component of the
current graph than s (components built with the overlay) are dropped before any search.
"""

from __future__ import annotations

from dataclasses import dataclass

from indoor.extensions import get_settings
from indoor.queries import overlay as overlay_queries
from indoor.queries import routing as queries
from indoor.routing import index, overlay, search, snap, windows


@dataclass
class Choice:
    """What a category resolves to: the room's resolved place, or why none ("unknown": no room
    has the category; "unreachable": none can be reached), and what finding it took."""

    resolved: dict | None
    why: str | None = None
    pgrouting_ms: float = 0.0
    edges_loaded: int = 0
    searches: int = 0
    decided_by: str = "search"


def choose(cur, category: str, neighbour: dict, outward: bool, profile: str, known: tuple | None = None):
    """In one snapshot: (the versions, the room of `category` nearest from `neighbour`'s vertex
    (outward) or to it, the category's snapped rooms). `neighbour` is a resolved place with a
    vertex; `known` (versions, rooms) are the category's rooms if already snapped (cached), used
    when they are of this snapshot's versions."""
    settings = get_settings()
    found_versions = queries.snapshot_versions(cur)
    if known is not None and known[0] == found_versions:
        candidates = known[1]
    else:
        candidates = queries.category_rooms(cur, category, profile, settings.route_max_snap_m)
    rooms = candidates
    if candidates is None:
        return found_versions, Choice(None, "unknown", decided_by="rooms"), rooms
    vertex = neighbour["vertex"]
    choice = Choice(None)
    # The worker's route index first: one sweep tells the best room and the unreachable ones,
    # so neither the components nor pgRouting are asked.
    plain = queries.is_plain(profile)  # the index and components hold the profiles' graphs only
    indexed = index.current(found_versions["graph_key"], cur) if plain and settings.route_index and candidates else None
    ranked = indexed.nearest_of(vertex, candidates, outward, profile) if indexed is not None else None
    if ranked is not None:
        choice.decided_by = "index"
        best = ranked[0][2] if ranked else None
    else:
        candidates = _same_component(cur, candidates, vertex, profile, found_versions, choice)
        if not candidates:
            choice.why = "unreachable"
            return found_versions, choice, rooms
        best = _nearest(cur, candidates, neighbour, outward, profile, found_versions["graph"], choice)
    if best is None:
        choice.why = "unreachable"
    else:
        choice.resolved = snap.room_resolved(best.room, best.snap)
    return found_versions, choice, rooms


def _same_component(cur, candidates, vertex: int, profile: str, found_versions: dict, choice: Choice) -> list:
    """The candidates in the same component as `vertex` (components built with the overlay for
    this graph); all of them while the components are not this graph's."""
    settings = get_settings()
    if not candidates or not queries.is_plain(profile) or not (settings.route_overlay and overlay.available(cur)):
        return candidates
    graph_key = found_versions["graph_key"]
    found = overlay_queries.components(cur, graph_key, profile, [vertex, *(c.snap.vertex for c in candidates)])
    if vertex not in found:
        overlay.request_rebuild()  # the components are not this graph's yet
        return candidates
    kept = [c for c in candidates if found.get(c.snap.vertex, found[vertex]) == found[vertex]]
    choice.decided_by = "components" if not kept else "search"
    return kept


def _nearest(cur, candidates, neighbour: dict, outward: bool, profile: str, graph_version: int, choice: Choice):
    settings = get_settings()
    here = (neighbour["vertex_lon"], neighbour["vertex_lat"])
    straight = {id(c): windows.lower_bound_distance_m(here, (c.snap.lon, c.snap.lat)) for c in candidates}
    # The first window: what the likeliest best candidate needs, as a single route's first
    # radius would be (a room on another level costs a detour to stairs or an elevator).
    level = float(neighbour["level"])
    radius = min(search.first_radius(straight[id(c)], float(c.snap.level) == level) for c in candidates)
    radius = max(radius, min(straight.values()), 1.0)
    tries = 0
    while tries < settings.route_window_tries:
        # A disc of radius R is the ellipse with both foci at the centre and major axis 2R.
        boxes = windows.ellipse_cover(here, here, 2 * radius)
        if boxes is None:
            break
        if tries and search.holds_network(boxes, search.network_extent(cur, graph_version)):
            break
        tries += 1
        inside = [c for c in candidates if straight[id(c)] <= radius]
        best = _best(cur, inside, neighbour, boxes, outward, profile, choice)
        if best is not None:
            if best[0] <= radius:
                return best[1]
            # Every candidate of total <= b lies within a window of radius b: exact.
            radius = best[0]
            boxes = windows.ellipse_cover(here, here, 2 * radius)
            if boxes is None:
                break
            inside = [c for c in candidates if straight[id(c)] <= radius]
            best = _best(cur, inside, neighbour, boxes, outward, profile, choice)
            return best[1] if best is not None else None
        radius *= 2
    best = _best(cur, candidates, neighbour, None, outward, profile, choice)
    return best[1] if best is not None else None


def _best(cur, candidates, neighbour: dict, boxes, outward: bool, profile: str, choice: Choice):
    """(total, candidate) of the smallest path cost + connector (ties: smaller room id) over the
    edges in `boxes` (None: all), or None when none is reached."""
    vertex = neighbour["vertex"]
    others = sorted({c.snap.vertex for c in candidates if c.snap.vertex != vertex})
    costs: dict[int, float] = {vertex: 0.0}
    if others:
        edges = queries.edges_sql(cur, boxes, profile)
        found, ms, loaded = queries.path_costs(cur, vertex, others, edges, outward, seqscan=boxes is None)
        costs.update(found)
        choice.pgrouting_ms += ms
        choice.edges_loaded += loaded
        choice.searches += 1
    reached = [(costs[c.snap.vertex] + c.snap.metres, c.room.id, c) for c in candidates if c.snap.vertex in costs]
    if not reached:
        return None
    total, _, best = min(reached, key=lambda r: (r[0], r[1]))
    return total, best
