"""Write a routing network with its rooms and floor plan through the contract tables.

Used by `indoor demo` (a generated campus) and `indoor import-osm` (a real building). Rows go in
by COPY into temporary staging tables, then one INSERT ... SELECT per table. Every cost is
computed here, in PostGIS, as the geodesic length of the edge's line plus the edge's extra
(negative extra = closed that way), so "cost >= geodesic distance between the vertices"
(DATA.md) holds by construction. One statement per table also means one graph-version bump.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field


@dataclass
class Network:
    vertices: list = field(default_factory=list)  # (id, level, lon, lat)
    # (id, source, target, kind, extra_fwd, extra_rev, wkt or None for a straight line)
    edges: list = field(default_factory=list)
    rooms: list = field(default_factory=list)  # (label, level, building, lon, lat, category or None)
    plan: list = field(default_factory=list)  # (layer, name, level, building, wkt in lon/lat)
    level_names: list = field(default_factory=list)  # (building or '', level, display name)


NEXT_IDS = """SELECT (SELECT coalesce(max(id), 0) + 1 FROM nav_edges_work_vertices_pgr),
                     (SELECT coalesce(max(id), 0) + 1 FROM nav_edges_final)"""

STAGE = """
CREATE TEMP TABLE stage_vertices (id bigint, level numeric, lon float8, lat float8) ON COMMIT DROP;
CREATE TEMP TABLE stage_edges (id bigint, source bigint, target bigint, kind text,
                               extra_fwd float8, extra_rev float8, wkt text) ON COMMIT DROP;
CREATE TEMP TABLE stage_rooms (label text, level numeric, building text, lon float8, lat float8,
                               category text) ON COMMIT DROP;
CREATE TEMP TABLE stage_plan (layer text, name text, level numeric, building text, wkt text) ON COMMIT DROP;
CREATE TEMP TABLE stage_level_names (building text, level numeric, name text) ON COMMIT DROP;
"""

INSERT_VERTICES = """
INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom)
SELECT id, level, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM stage_vertices
"""

INSERT_EDGES = """
INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
SELECT e.id, e.source, e.target,
       CASE WHEN e.extra_fwd < 0 THEN -1 ELSE d.len + e.extra_fwd END,
       CASE WHEN e.extra_rev < 0 THEN -1 ELSE d.len + e.extra_rev END,
       e.kind, g.geom
  FROM stage_edges e
  JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
  JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
 CROSS JOIN LATERAL (SELECT coalesce(ST_SetSRID(ST_GeomFromText(e.wkt), 4326),
                                     ST_MakeLine(a.the_geom, b.the_geom)) AS geom) g
 CROSS JOIN LATERAL (SELECT greatest(ST_Length(g.geom::geography),
                                     ST_Distance(a.the_geom::geography, b.the_geom::geography)) AS len) d
"""

INSERT_ROOMS = """
INSERT INTO room_points (text, level, building, category, wkb_geometry)
SELECT label, level, building, category, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM stage_rooms
"""

INSERT_PLAN = """
INSERT INTO base_floor (layer, name, level, building, wkb_geometry)
SELECT layer, name, level, building, ST_SetSRID(ST_GeomFromText(wkt), 4326) FROM stage_plan
"""


# The last import's name for a level wins (one building's re-import renames its levels).
UPSERT_LEVEL_NAMES = """
INSERT INTO indoor_level_names (building, level, name)
SELECT DISTINCT ON (coalesce(building, ''), level) coalesce(building, ''), level, name FROM stage_level_names
ON CONFLICT (building, level) DO UPDATE SET name = EXCLUDED.name
"""


def next_ids(cur) -> tuple[int, int]:
    """The first free vertex and edge ids: a new network is appended after what is there."""
    cur.execute(NEXT_IDS)
    first_vertex, first_edge = cur.fetchone()
    return int(first_vertex), int(first_edge)


def write_network(cur, network: Network) -> dict[str, int]:
    cur.execute(STAGE)
    _copy(cur, "stage_vertices", network.vertices)
    _copy(cur, "stage_edges", network.edges)
    _copy(cur, "stage_rooms", network.rooms)
    _copy(cur, "stage_plan", network.plan)
    _copy(cur, "stage_level_names", network.level_names)
    counts = {}
    for name, statement in (
        ("vertices", INSERT_VERTICES),
        ("edges", INSERT_EDGES),
        ("rooms", INSERT_ROOMS),
        ("floor_plan", INSERT_PLAN),
        ("level_names", UPSERT_LEVEL_NAMES),
    ):
        cur.execute(statement)
        counts[name] = cur.rowcount
    return counts


def _copy(cur, table: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_value(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buffer)


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
