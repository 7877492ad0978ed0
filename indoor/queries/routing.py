"""Routing in the database: snapping places to vertices, exact pgr_dijkstra on small graphs.

`shortest_path` routes between cells through the overlay's shortcuts when the overlay is the
current graph's (see queries/overlay.py for why that is exact); otherwise, or within one cell,
it searches a small window around the two vertices (see indoor/windows.py for why a window
answer can be proven optimal), widens when it cannot prove it, and ends on the whole graph.
`full_graph_distance` is the plain full-graph pgr_dijkstra, the reference the benchmark
compares against. Every function takes a cursor; run it through `get_db().read`.

Inner SQL for pgRouting is composed with psycopg2.sql (literals, never string formatting).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

from indoor import windows
from indoor.queries import overlay

log = logging.getLogger(__name__)

PROFILES = ("walking", "accessible")
# Kinds an accessible route never uses.
NOT_ACCESSIBLE = ("stairs", "escalator")

# -- warm-up ------------------------------------------------------------------------------

HAS_PGROUTING = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgrouting')"

# Loads the pgRouting and PostGIS libraries into the backend (tens of ms, paid once per connection).
WARM_UP = """
SELECT (SELECT count(*) FROM pgr_dijkstra(
            'SELECT 1::bigint AS id, 1::bigint AS source, 2::bigint AS target,'
            ' 1::float8 AS cost, 1::float8 AS reverse_cost', 1::bigint, 2::bigint)),
       ST_Distance(ST_MakePoint(0, 0)::geography, ST_MakePoint(0, 1)::geography)
"""


def warm_connection(conn) -> None:
    """On-connect hook for the pool: a tiny pgr_dijkstra, so no user pays the library load."""
    try:
        with conn.cursor() as cur:
            cur.execute(HAS_PGROUTING)
            if cur.fetchone()[0]:
                cur.execute(WARM_UP)
    except psycopg2.Error as exc:
        if conn.closed:
            raise
        # A database without pgRouting yet (before init-db): nothing to warm.
        log.warning("routing warm-up skipped: %s", type(exc).__name__)
        conn.rollback()


# -- snapping -----------------------------------------------------------------------------

ROOM = """
SELECT ogc_fid, text, level, building, ST_X(wkb_geometry), ST_Y(wkb_geometry)
  FROM room_points
 WHERE ogc_fid = %(room)s
"""

NEAREST_VERTEX = """
SELECT v.id, ST_X(v.the_geom), ST_Y(v.the_geom), v.level,
       ST_Distance(v.the_geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS metres
  FROM (SELECT ST_Distance(k.the_geom::geography,
                           ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) * 1.01 + 0.01 AS r
          FROM nav_edges_work_vertices_pgr k
         WHERE k.level = %(level)s::numeric
           AND EXISTS (SELECT 1 FROM nav_edges_final e
                        WHERE (e.source = k.id OR e.target = k.id)
                          AND (e.cost >= 0 OR e.reverse_cost >= 0)
                          AND NOT (%(accessible)s AND e.kind IN ('stairs', 'escalator')))
         ORDER BY k.the_geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)
         LIMIT 1) AS knn,
       nav_edges_work_vertices_pgr v
 WHERE v.level = %(level)s::numeric
   AND v.the_geom && ST_Expand(
         ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326),
         knn.r / (111319.0 * greatest(cos(radians(least(90.0, abs(%(lat)s) + knn.r / 110574.0))), 1e-9)),
         knn.r / 110574.0)
   AND EXISTS (SELECT 1 FROM nav_edges_final e
                WHERE (e.source = v.id OR e.target = v.id)
                  AND (e.cost >= 0 OR e.reverse_cost >= 0)
                  AND NOT (%(accessible)s AND e.kind IN ('stairs', 'escalator')))
 ORDER BY metres, v.id
 LIMIT 1
"""


@dataclass(frozen=True)
class Room:
    id: int
    name: str
    level: object  # Decimal
    building: str | None
    lon: float
    lat: float


@dataclass(frozen=True)
class Snap:
    vertex: int
    lon: float
    lat: float
    level: object  # Decimal
    metres: float  # geodesic, place -> vertex


def room(cur, room_id: int) -> Room | None:
    cur.execute(ROOM, {"room": room_id})
    row = cur.fetchone()
    return Room(int(row[0]), row[1], row[2], row[3], float(row[4]), float(row[5])) if row else None


def nearest_vertex(cur, lon: float, lat: float, level, profile: str) -> Snap | None:
    """The vertex a place at (lon, lat) on `level` snaps to, or None when the level has none."""
    cur.execute(NEAREST_VERTEX, {"lon": lon, "lat": lat, "level": level, "accessible": profile == "accessible"})
    row = cur.fetchone()
    return Snap(int(row[0]), float(row[1]), float(row[2]), row[3], float(row[4])) if row else None


# -- shortest paths -----------------------------------------------------------------------

_EDGE_COLUMNS = sql.SQL("SELECT id, source, target, cost, reverse_cost FROM nav_edges_final WHERE ")

# Rows of the given tables this backend has read in this transaction (index and sequential):
# read before and after a search, the difference is how many edges pgRouting loaded, with no
# second scan to count them. A window is always read through the GiST index (so the count is
# the window's edges, not a whole table scanned by a sequential plan); the whole graph by a
# sequential scan.
ROWS_READ = """
SELECT set_config('enable_seqscan', %(seqscan)s, true),
       (SELECT sum(pg_stat_get_xact_tuples_fetched(t) + pg_stat_get_xact_tuples_returned(t))
          FROM unnest(%(tables)s::regclass[]) AS t)
"""
NETWORK_TABLES = ["nav_edges_final"]
OVERLAY_TABLES = ["indoor_route_edges", "indoor_route_shortcuts"]

PATH = "SELECT node, edge, cost FROM pgr_dijkstra(%(edges_sql)s, %(source)s::bigint, %(target)s::bigint, true)"

# The path's edges in travel order: kind, levels at both ends, geometry drawn in the direction
# of travel (7 decimals, by PostGIS): from the end nearer the vertex we leave, so a line drawn
# backwards still joins up. An edge whose vertex row is missing (a data error) takes the level
# of its other end rather than failing the route.
PATH_EDGES = """
SELECT e.kind, coalesce(a.level, b.level, 0), coalesce(b.level, a.level, 0),
       ST_AsGeoJSON(CASE WHEN a.the_geom IS NULL AND e.source = p.node THEN e.wkb_geometry
                         WHEN a.the_geom IS NULL THEN ST_Reverse(e.wkb_geometry)
                         WHEN ST_Distance(ST_StartPoint(e.wkb_geometry), a.the_geom)
                              <= ST_Distance(ST_EndPoint(e.wkb_geometry), a.the_geom) THEN e.wkb_geometry
                         ELSE ST_Reverse(e.wkb_geometry) END, 7)::json -> 'coordinates'
  FROM unnest(%(nodes)s::bigint[], %(edges)s::bigint[]) WITH ORDINALITY AS p(node, edge, ord)
  JOIN nav_edges_final e ON e.id = p.edge
  LEFT JOIN nav_edges_work_vertices_pgr a ON a.id = p.node
  LEFT JOIN nav_edges_work_vertices_pgr b ON b.id = CASE WHEN e.source = p.node THEN e.target ELSE e.source END
 ORDER BY p.ord
"""

FULL_GRAPH_COST = """
SELECT sum(cost), count(*) FROM pgr_dijkstra(%(edges_sql)s, %(source)s::bigint, %(target)s::bigint, true)
"""

GRAPH_EXTENT = """
SELECT set_config('enable_seqscan', 'on', true);
SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Extent(wkb_geometry) AS x FROM nav_edges_final) e
"""

# One snapshot for the whole transaction; no JIT (its compile time, tens of ms, is never won
# back on these short statements).
BEGIN_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET LOCAL jit = off"


@dataclass(frozen=True)
class PathEdge:
    id: int
    kind: str
    from_level: object  # Decimal
    to_level: object
    cost: float
    coordinates: list  # [[lon, lat], ...] in the direction of travel


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
    index: bool = False  # answered by the worker's in-memory route index (indoor/route_index.py)
    index_us: float = 0.0  # the index search's time, microseconds


def _where(boxes: list[windows.Box] | None, profile: str) -> sql.Composable:
    """The edge filter: the window's boxes (None: all edges) and the profile's kinds."""
    parts = []
    if boxes is not None:
        tests = [
            sql.SQL("wkb_geometry && ST_MakeEnvelope({}, {}, {}, {}, 4326)").format(
                *(sql.Literal(float(x)) for x in box)
            )
            for box in boxes
        ]
        parts.append(sql.SQL("(") + sql.SQL(" OR ").join(tests) + sql.SQL(")"))
    if profile == "accessible":
        parts.append(sql.SQL("kind NOT IN ({})").format(sql.SQL(", ").join(sql.Literal(k) for k in NOT_ACCESSIBLE)))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def edges_sql(cur, boxes: list[windows.Box] | None, profile: str) -> str:
    """The edges query handed to pgRouting."""
    return (_EDGE_COLUMNS + _where(boxes, profile)).as_string(cur)


def _rows_read(cur, tables: list[str], seqscan: bool) -> int:
    cur.execute(ROWS_READ, {"seqscan": "on" if seqscan else "off", "tables": tables})
    return int(cur.fetchone()[1] or 0)


def _search(cur, source: int, target: int, boxes, profile: str, search: PathSearch) -> float | None:
    """One pgr_dijkstra over the edges in `boxes` (None: all edges); fills `search`."""
    if boxes is None:
        search.full_graph = True
    else:
        search.window_tries += 1
    return _run(cur, source, target, edges_sql(cur, boxes, profile), NETWORK_TABLES, boxes is None, search)


def _search_overlay(cur, source: int, target: int, cells: overlay.Cells, profile: str, search: PathSearch):
    """One pgr_dijkstra over the two cells, the edges between cells and the other shortcuts."""
    search.overlay = True
    not_allowed = NOT_ACCESSIBLE if profile == "accessible" else ()
    edges = overlay.edges_sql(cur, cells, not_allowed)
    return _run(cur, source, target, edges, OVERLAY_TABLES, True, search, unpack=overlay.unpack)


def _run(cur, source, target, edges: str, tables: list[str], seqscan: bool, search: PathSearch, unpack=None):
    before = _rows_read(cur, tables, seqscan)
    started = time.perf_counter()
    cur.execute(PATH, {"edges_sql": edges, "source": source, "target": target})
    rows = [row for row in cur.fetchall() if row[1] != -1]  # the last row (edge -1) is the target
    search.pgrouting_ms += (time.perf_counter() - started) * 1000
    search.edges_loaded += _rows_read(cur, tables, seqscan) - before
    if not rows:
        search.cost, search.edges = None, []
        return None
    if unpack is not None:
        rows = unpack(cur, rows)
    search.edges = path_edges(cur, rows)
    search.cost = sum(e.cost for e in search.edges)
    return search.cost


def path_edges(cur, rows) -> list[PathEdge]:
    """The edges of a path given as (vertex left, edge, cost) rows in travel order."""
    cur.execute(PATH_EDGES, {"nodes": [r[0] for r in rows], "edges": [r[1] for r in rows]})
    details = cur.fetchall()
    if len(details) != len(rows):  # cannot happen in one snapshot; never answer a broken path
        raise RuntimeError("path edges vanished during the search")
    return [
        PathEdge(int(edge), kind, from_level, to_level, float(cost), coordinates)
        for (_, edge, cost), (kind, from_level, to_level, coordinates) in zip(rows, details, strict=True)
    ]


def graph_extent(cur) -> windows.Box | None:
    cur.execute(GRAPH_EXTENT)
    row = cur.fetchone()
    return tuple(float(x) for x in row) if row and row[0] is not None else None


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
    """The exact shortest path from vertex `source` to vertex `target` (see indoor/windows.py).

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
    cells = overlay.cells_of(cur, source.vertex, target.vertex, graph_key, overlay_max_share) if graph_key else None
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
        if search.window_tries and extent is not None and _holds(boxes, extent()):
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


def _holds(boxes: list[windows.Box], extent: windows.Box | None) -> bool:
    """Whether the boxes' bounding box contains the whole network (then a window saves nothing)."""
    if extent is None:
        return True  # no edges at all
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return x1 <= extent[0] and y1 <= extent[1] and x2 >= extent[2] and y2 >= extent[3]


def full_graph_distance(cur, source_vertex: int, target_vertex: int, profile: str = "walking") -> float | None:
    """Plain pgr_dijkstra over every edge: the reference cost (None: no path)."""
    if source_vertex == target_vertex:
        return 0.0
    cur.execute(
        FULL_GRAPH_COST,
        {"edges_sql": edges_sql(cur, None, profile), "source": source_vertex, "target": target_vertex},
    )
    total, rows = cur.fetchone()
    return float(total) if rows else None


def begin_snapshot(cur) -> None:
    """Make the rest of this transaction see one snapshot (versions, vertices, edges alike)."""
    cur.execute(BEGIN_SNAPSHOT)
