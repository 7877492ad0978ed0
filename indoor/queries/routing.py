"""Routing's SQL: snapping places to vertices, one pgr_dijkstra over a given set of edges.

Which edges a search hands pgRouting (a window, the overlay, the whole graph) is decided by
indoor/routing/search.py; this module only runs the statements. `full_graph_distance` is the
plain full-graph pgr_dijkstra, the reference the benchmark compares against. Every function
takes a cursor; run it through `get_db().read`.

Inner SQL for pgRouting is composed with psycopg2.sql (literals, never string formatting).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg2
from psycopg2 import sql

from indoor.queries.validity import EDGES, MAX_LEVEL, ROOMS, VERTICES, in_lonlat_sql, is_open_sql, open_cost_sql
from indoor.queries.versions import VERSIONS, read_versions, versions_from_rows

log = logging.getLogger(__name__)

PROFILES = ("walking", "accessible")
Box = tuple[float, float, float, float]  # (min lon, min lat, max lon, max lat)
# Kinds an accessible route never uses.
NOT_ACCESSIBLE = ("stairs", "escalator")
# What `avoid=` may name, and the edge kind each stands for.
AVOIDABLE = {"stairs": "stairs", "escalators": "escalator", "elevators": "elevator", "ramps": "ramp"}


@dataclass(frozen=True)
class Rules:
    """What a search may use beyond its profile: kinds avoided (`avoid=`) and edges closed
    (the active closures, indoor/live/closures.py). Wherever a profile name is taken, Rules are
    too; plain rules (nothing avoided, nothing closed) are searched as the profile alone."""

    profile: str
    avoid: tuple[str, ...] = ()  # edge kinds, sorted
    closed: tuple[int, ...] = ()  # edge ids, sorted

    @property
    def plain(self) -> bool:
        return not self.avoid and not self.closed


def is_plain(profile) -> bool:
    """Whether a search under `profile` is the profile's alone: the route index, the overlay
    and the components (built per profile) answer only those."""
    return not isinstance(profile, Rules) or profile.plain


def profile_name(profile) -> str:
    return profile.profile if isinstance(profile, Rules) else profile


def excluded_kinds(profile) -> list[str]:
    """The edge kinds a search under `profile` (a name or Rules) never uses."""
    kinds = set(NOT_ACCESSIBLE) if profile_name(profile) == "accessible" else set()
    if isinstance(profile, Rules):
        kinds.update(profile.avoid)
    return sorted(kinds)


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

# A room another tool left without a usable position (an empty, NaN or off-the-globe point, or
# a level that is NULL, NaN or Infinity) cannot be routed from or to: lon/lat NULL.
ROOM = f"""
SELECT ogc_fid, text, level, building,
       CASE WHEN located THEN ST_X(wkb_geometry) END, CASE WHEN located THEN ST_Y(wkb_geometry) END
  FROM (SELECT *, ST_GeometryType(wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("wkb_geometry")}
                  AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} AS located
          FROM {ROOMS} room_points
         WHERE ogc_fid = %(room)s) r
"""  # noqa: S608 - constant fragments; values are parameters

# The graph versions and the rooms `rooms` in one statement (one snapshot, one round trip): all
# a route's places need when the worker holds the graph version's vertices (routing/geometry.py).
# JSON: float8 prints exactly (shortest round trip), the level as numeric text.
VERSIONS_AND_ROOMS = f"""
SELECT (SELECT json_agg(json_build_array(name, version, (extract(epoch FROM changed_at) * 1000000)::bigint))
          FROM indoor_versions WHERE name IN ('graph', 'rooms', 'floor', 'closures')),
       (SELECT json_agg(json_build_array(ogc_fid, text, level::text, building,
                                         CASE WHEN located THEN ST_X(wkb_geometry) END,
                                         CASE WHEN located THEN ST_Y(wkb_geometry) END))
          FROM (SELECT *, ST_GeometryType(wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("wkb_geometry")}
                          AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} AS located
                  FROM {ROOMS} room_points
                 WHERE ogc_fid = ANY(%(rooms)s::bigint[])) r)
"""  # noqa: S608 - constant fragments; values are parameters

# KNN (`<->` on the (level, the_geom) GiST index), inside a box that holds every point within
# ROUTE_MAX_SNAP_M (conservative metres per degree, as in routing/windows.py), finds a near
# usable vertex: one with a position (in_lonlat) and an open edge the profile may take. The exact
# geodesic order among the usable vertices in a box of that radius decides (ties: smaller id).
# The snap never looks farther than ROUTE_MAX_SNAP_M, whatever the place: no row then. The
# metres are ST_DistanceSpheroid's (the geodesic on the geometry's doubles, as the route geometry
# in memory computes it to the last bit: routing/geometry.py; the geography distance differs from
# it by ~1e-10 of itself). The KNN
# step filters by index operators only (`&&`), not in_lonlat: a filter of functions has a default
# selectivity that makes the planner sort the whole level instead of walking the index.
NEAREST_VERTEX = f"""
SELECT v.id, ST_X(v.the_geom), ST_Y(v.the_geom), v.level,
       ST_DistanceSpheroid(v.the_geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)) AS metres
  FROM (SELECT least(CASE WHEN {in_lonlat_sql("k.the_geom")}
                          THEN ST_Distance(k.the_geom::geography,
                                           ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) * 1.01 + 0.01
                          ELSE 'Infinity' END,
                     %(max_m)s::float8) AS r
          FROM {VERTICES} k
         WHERE k.level = %(level)s::numeric
           AND k.the_geom && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326),
         %(max_m)s::float8 / (111319.0 * greatest(cos(radians(least(90.0, abs(%(lat)s) + %(max_m)s::float8 / 110574.0))), 1e-9)),
         %(max_m)s::float8 / 110574.0)
           AND EXISTS (SELECT 1 FROM {EDGES} e
                WHERE (e.source = k.id OR e.target = k.id)
                  AND {is_open_sql("e")}
                  AND NOT (e.kind = ANY(%(excluded)s::text[])))
         ORDER BY k.the_geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)
          LIMIT 1) AS knn,
       {VERTICES} v
 WHERE v.level = %(level)s::numeric
   AND v.the_geom && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326),
         knn.r / (111319.0 * greatest(cos(radians(least(90.0, abs(%(lat)s) + knn.r / 110574.0))), 1e-9)),
         knn.r / 110574.0)
   AND ST_DWithin(v.the_geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(max_m)s)
   AND {in_lonlat_sql("v.the_geom")}
   AND EXISTS (SELECT 1 FROM {EDGES} e
                WHERE (e.source = v.id OR e.target = v.id)
                  AND {is_open_sql("e")}
                  AND NOT (e.kind = ANY(%(excluded)s::text[])))
 ORDER BY metres, v.id
 LIMIT 1
"""  # noqa: S608 - constant fragments; values are parameters

# Only when a place did not snap: how far the nearest usable vertex of its level is (KNN, one
# index scan; no row: the level has no usable vertex at all). For the error message.
NEAREST_FAR = f"""
SELECT metres FROM (
  SELECT ST_Distance(k.the_geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS metres
    FROM {VERTICES} k
   WHERE k.level = %(level)s::numeric
     AND k.the_geom @ ST_MakeEnvelope(-180, -90, 180, 90, 4326)
     AND EXISTS (SELECT 1 FROM {EDGES} e
                  WHERE (e.source = k.id OR e.target = k.id)
                    AND {is_open_sql("e")}
                    AND NOT (e.kind = ANY(%(excluded)s::text[])))
   ORDER BY k.the_geom <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)
   LIMIT 16) near
 -- `@` lets an empty or NaN position through (no distance): the nearest with one, of a bounded few.
 WHERE metres < 'Infinity'
 LIMIT 1
"""  # noqa: S608 - constant fragments; values are parameters


# Every room of a category (case-insensitive) with the vertex it snaps to, as NEAREST_VERTEX
# snaps one place (the same statement, run for each room); rooms that do not snap are left out.
CATEGORY_ROOMS = sql.SQL("""
SELECT rp.ogc_fid, rp.text, rp.level, rp.building, rp.lon, rp.lat, s.*
  FROM (SELECT ogc_fid, text, level, building, ST_X(wkb_geometry) AS lon, ST_Y(wkb_geometry) AS lat
          FROM {rooms} room_points
         WHERE lower(category) = lower(%(category)s)
           AND ST_GeometryType(wkb_geometry) = 'ST_Point' AND {located}
           AND level BETWEEN -{max_level} AND {max_level}) rp
 CROSS JOIN LATERAL ({nearest}) s
 ORDER BY rp.ogc_fid
""").format(
    nearest=sql.SQL(
        NEAREST_VERTEX.replace("%(lon)s", "rp.lon").replace("%(lat)s", "rp.lat").replace("%(level)s", "rp.level")
    ),
    located=sql.SQL(in_lonlat_sql("wkb_geometry")),
    max_level=sql.Literal(MAX_LEVEL),
    rooms=sql.SQL(ROOMS),
)

# Whether any room has the category at all (snapped or not): unknown category vs none reachable.
CATEGORY_EXISTS = f"SELECT EXISTS (SELECT 1 FROM {ROOMS} r WHERE lower(category) = lower(%(category)s))"  # noqa: S608


@dataclass(frozen=True)
class Room:
    id: int
    name: str
    level: object  # Decimal
    building: str | None
    lon: float | None  # None: the room has no usable position (see ROOM)
    lat: float | None


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
    if row is None:
        return None
    located = row[4] is not None and row[5] is not None
    return Room(int(row[0]), row[1], row[2], row[3], *((float(row[4]), float(row[5])) if located else (None, None)))


def versions_and_rooms(cur, room_ids: list[int]) -> tuple[dict, dict[int, Room]]:
    """(versions() as of this statement, {id: Room} of those of `room_ids` that exist)."""
    cur.execute(VERSIONS_AND_ROOMS, {"rooms": room_ids})
    version_rows, room_rows = cur.fetchone()
    rooms = {}
    for room_id, name, level, building, lon, lat in room_rows or []:
        located = lon is not None and lat is not None
        rooms[int(room_id)] = Room(
            int(room_id), name, Decimal(level) if level is not None else None, building,
            *((float(lon), float(lat)) if located else (None, None)),
        )  # fmt: skip
    return versions_from_rows(version_rows or []), rooms


def nearest_vertex(cur, lon: float, lat: float, level, profile: str, max_m: float) -> Snap | None:
    """The vertex a place at (lon, lat) on `level` snaps to, or None when the level has no usable
    vertex within `max_m` metres."""
    cur.execute(
        NEAREST_VERTEX,
        {"lon": lon, "lat": lat, "level": level, "excluded": excluded_kinds(profile), "max_m": float(max_m)},
    )
    row = cur.fetchone()
    return Snap(int(row[0]), float(row[1]), float(row[2]), row[3], float(row[4])) if row else None


@dataclass(frozen=True)
class CategoryRoom:
    room: Room
    snap: Snap


def category_rooms(cur, category: str, profile: str, max_m: float) -> list[CategoryRoom] | None:
    """The rooms of `category` that snap (ordered by id); None when no room has the category."""
    cur.execute(CATEGORY_ROOMS, {"category": category, "excluded": excluded_kinds(profile), "max_m": float(max_m)})
    rows = cur.fetchall()
    if not rows:
        cur.execute(CATEGORY_EXISTS, {"category": category})
        return [] if cur.fetchone()[0] else None
    return [
        CategoryRoom(
            Room(int(r[0]), r[1], r[2], r[3], float(r[4]), float(r[5])),
            Snap(int(r[6]), float(r[7]), float(r[8]), r[9], float(r[10])),
        )
        for r in rows
    ]


def nearest_distance(cur, lon: float, lat: float, level, profile: str) -> float | None:
    """Metres from (lon, lat) to the nearest usable vertex of `level` (KNN order: within a hair
    of the geodesic nearest); None when the level has none."""
    cur.execute(NEAREST_FAR, {"lon": lon, "lat": lat, "level": level, "excluded": excluded_kinds(profile)})
    row = cur.fetchone()
    return float(row[0]) if row else None


# -- shortest paths -----------------------------------------------------------------------

# Costs as pgRouting must see them: NULL, NaN and Infinity are closed (queries/validity.py).
_EDGE_COLUMNS = sql.SQL(
    f"""SELECT id, source, target, {open_cost_sql("cost")} AS cost, {open_cost_sql("reverse_cost")} AS reverse_cost
    FROM {EDGES} nav_edges_final WHERE """  # noqa: S608 - constant fragments
)

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
# of its other end rather than failing the route; so does a vertex whose level is NULL, NaN or
# Infinity. An edge drawn without a usable line (empty, NaN, off the globe) is drawn straight
# between its vertices; with neither, its coordinates are NULL (nothing to draw).
PATH_EDGES = f"""
SELECT e.kind, coalesce(a.level, b.level, 0), coalesce(b.level, a.level, 0),
       substring(ST_AsGeoJSON(
           CASE WHEN NOT {in_lonlat_sql("e.wkb_geometry")} THEN
                     CASE WHEN {in_lonlat_sql("a.the_geom")} AND {in_lonlat_sql("b.the_geom")}
                          THEN ST_MakeLine(a.the_geom, b.the_geom) END
                WHEN a.the_geom IS NULL AND e.source = p.node THEN e.wkb_geometry
                WHEN a.the_geom IS NULL THEN ST_Reverse(e.wkb_geometry)
                WHEN ST_Distance(ST_StartPoint(e.wkb_geometry), a.the_geom)
                     <= ST_Distance(ST_EndPoint(e.wkb_geometry), a.the_geom) THEN e.wkb_geometry
                ELSE ST_Reverse(e.wkb_geometry) END, 7) FROM '^[^NI]*$')::json -> 'coordinates'
  FROM unnest(%(nodes)s::bigint[], %(edges)s::bigint[]) WITH ORDINALITY AS p(node, edge, ord)
  JOIN {EDGES} e ON e.id = p.edge
  LEFT JOIN (SELECT id, the_geom, CASE WHEN level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN level END AS level
               FROM {VERTICES} v) a ON a.id = p.node
  LEFT JOIN (SELECT id, the_geom, CASE WHEN level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN level END AS level
               FROM {VERTICES} v) b
         ON b.id = CASE WHEN e.source = p.node THEN e.target ELSE e.source END
 ORDER BY p.ord
"""  # noqa: S608 - constant fragments; values are parameters

# Path costs from one vertex to many, or from many to one (no row: not reachable).
COSTS_FROM = """
SELECT end_vid, agg_cost FROM pgr_dijkstraCost(%(edges_sql)s, %(vertex)s::bigint, %(others)s::bigint[], true)
"""
COSTS_TO = """
SELECT start_vid, agg_cost FROM pgr_dijkstraCost(%(edges_sql)s, %(others)s::bigint[], %(vertex)s::bigint, true)
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
class PathRun:
    """One pgr_dijkstra: the path (cost None: none exists) and what running it took."""

    cost: float | None
    edges: list[PathEdge] = field(default_factory=list)
    pgrouting_ms: float = 0.0
    edges_loaded: int = 0


def _where(boxes: list[Box] | None, profile) -> sql.Composable:
    """The edge filter: the window's boxes (None: all edges), the profile's kinds, and with
    Rules the kinds avoided and the edges closed."""
    parts = []
    if boxes is not None:
        tests = [
            sql.SQL("wkb_geometry && ST_MakeEnvelope({}, {}, {}, {}, 4326)").format(
                *(sql.Literal(float(x)) for x in box)
            )
            for box in boxes
        ]
        parts.append(sql.SQL("(") + sql.SQL(" OR ").join(tests) + sql.SQL(")"))
    excluded = excluded_kinds(profile)
    if excluded:
        parts.append(sql.SQL("kind NOT IN ({})").format(sql.SQL(", ").join(sql.Literal(k) for k in excluded)))
    if isinstance(profile, Rules) and profile.closed:
        closed = "{" + ",".join(str(int(e)) for e in profile.closed) + "}"
        parts.append(sql.SQL("NOT (id = ANY({}::bigint[]))").format(sql.Literal(closed)))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def edges_sql(cur, boxes: list[Box] | None, profile) -> str:
    """The edges query handed to pgRouting."""
    return (_EDGE_COLUMNS + _where(boxes, profile)).as_string(cur)


def _rows_read(cur, tables: list[str], seqscan: bool) -> int:
    cur.execute(ROWS_READ, {"seqscan": "on" if seqscan else "off", "tables": tables})
    return int(cur.fetchone()[1] or 0)


def path(cur, source: int, target: int, edges: str, tables: list[str], seqscan: bool, unpack=None) -> PathRun:
    """One pgr_dijkstra from `source` to `target` over the edges query `edges`; `tables` are
    those it reads (for the count of rows loaded), `unpack` rewrites shortcut rows into edges."""
    run = PathRun(cost=None)
    before = _rows_read(cur, tables, seqscan)
    started = time.perf_counter()
    cur.execute(PATH, {"edges_sql": edges, "source": source, "target": target})
    rows = [row for row in cur.fetchall() if row[1] != -1]  # the last row (edge -1) is the target
    run.pgrouting_ms = (time.perf_counter() - started) * 1000
    run.edges_loaded = _rows_read(cur, tables, seqscan) - before
    if not rows:
        return run
    if unpack is not None:
        rows = unpack(cur, rows)
    run.edges = path_edges(cur, rows)
    run.cost = sum(e.cost for e in run.edges)
    return run


def path_edges(cur, rows) -> list[PathEdge]:
    """The edges of a path given as (vertex left, edge, cost) rows in travel order."""
    cur.execute(PATH_EDGES, {"nodes": [r[0] for r in rows], "edges": [r[1] for r in rows]})
    details = cur.fetchall()
    if len(details) != len(rows):  # cannot happen in one snapshot; never answer a broken path
        raise RuntimeError("path edges vanished during the search")
    return [
        PathEdge(int(edge), kind, from_level, to_level, float(cost), coordinates or [])
        for (_, edge, cost), (kind, from_level, to_level, coordinates) in zip(rows, details, strict=True)
    ]


def path_costs(
    cur, vertex: int, others: list[int], edges: str, outward: bool, seqscan: bool
) -> tuple[dict[int, float], float, int]:
    """Shortest path costs from `vertex` to each of `others` (outward) or from each to `vertex`,
    over the edges query `edges` (`seqscan`: the whole graph): ({other: cost} for those reached,
    pgRouting ms, rows loaded)."""
    before = _rows_read(cur, NETWORK_TABLES, seqscan)
    started = time.perf_counter()
    cur.execute(COSTS_FROM if outward else COSTS_TO, {"edges_sql": edges, "vertex": vertex, "others": others})
    costs = {int(other): float(cost) for other, cost in cur.fetchall()}
    elapsed = (time.perf_counter() - started) * 1000
    return costs, elapsed, _rows_read(cur, NETWORK_TABLES, seqscan) - before


def graph_extent(cur) -> Box | None:
    cur.execute(GRAPH_EXTENT)
    row = cur.fetchone()
    return tuple(float(x) for x in row) if row and row[0] is not None else None


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


def snapshot_versions(cur) -> dict:
    """begin_snapshot(), then versions() in that snapshot: one round trip."""
    cur.execute(BEGIN_SNAPSHOT + ";\n" + VERSIONS)
    return read_versions(cur)


def begin_snapshot(cur) -> None:
    """Make the rest of this transaction see one snapshot (versions, vertices, edges alike)."""
    cur.execute(BEGIN_SNAPSHOT)
