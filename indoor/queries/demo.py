"""Write a generated campus (indoor.demo) through the contract tables.

Rows go in by COPY into temporary staging tables, then one INSERT ... SELECT per table that
places the metre geometry at lon/lat and computes each cost in PostGIS as the geodesic length
plus the edge's extra (negative extra = closed that way). One statement per table also means
one graph-version bump for the whole campus.
"""

from __future__ import annotations

import io

from indoor.demo import _M_PER_DEG_LAT, _M_PER_DEG_LON, ORIGIN_LAT, ORIGIN_LON, Campus, to_lonlat

NEXT_IDS = """SELECT (SELECT coalesce(max(id), 0) + 1 FROM nav_edges_work_vertices_pgr),
                     (SELECT coalesce(max(id), 0) + 1 FROM nav_edges_final)"""

STAGE = """
CREATE TEMP TABLE demo_vertices (id bigint, level numeric, lon float8, lat float8) ON COMMIT DROP;
CREATE TEMP TABLE demo_edges (id bigint, source bigint, target bigint, kind text,
                              extra_fwd float8, extra_rev float8) ON COMMIT DROP;
CREATE TEMP TABLE demo_rooms (label text, level numeric, building text, lon float8, lat float8) ON COMMIT DROP;
CREATE TEMP TABLE demo_plan (layer text, name text, level numeric, building text, wkt text) ON COMMIT DROP;
"""

INSERT_VERTICES = """
INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom)
SELECT id, level, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM demo_vertices
"""

INSERT_EDGES = """
INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
SELECT e.id, e.source, e.target,
       CASE WHEN e.extra_fwd < 0 THEN -1 ELSE d.len + e.extra_fwd END,
       CASE WHEN e.extra_rev < 0 THEN -1 ELSE d.len + e.extra_rev END,
       e.kind, ST_MakeLine(a.the_geom, b.the_geom)
  FROM demo_edges e
  JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
  JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
 CROSS JOIN LATERAL (SELECT ST_Distance(a.the_geom::geography, b.the_geom::geography) AS len) d
"""

INSERT_ROOMS = """
INSERT INTO room_points (text, level, building, wkb_geometry)
SELECT label, level, building, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM demo_rooms
"""

# metres -> degrees around the campus origin: x' = x / m_per_deg_lon + lon0, y' likewise.
INSERT_PLAN = """
INSERT INTO base_floor (layer, name, level, building, wkb_geometry)
SELECT layer, name, level, building,
       ST_SetSRID(ST_Affine(ST_GeomFromText(wkt), %(ax)s, 0, 0, %(ey)s, %(x0)s, %(y0)s), 4326)
  FROM demo_plan
"""


def next_ids(cur) -> tuple[int, int]:
    cur.execute(NEXT_IDS)
    first_vertex, first_edge = cur.fetchone()
    return int(first_vertex), int(first_edge)


def write_campus(cur, campus: Campus) -> dict[str, int]:
    cur.execute(STAGE)
    _copy(cur, "demo_vertices", ((vid, level, *to_lonlat(x, y)) for vid, level, x, y in campus.vertices))
    _copy(cur, "demo_edges", campus.edges)
    _copy(cur, "demo_rooms", ((label, level, b, *to_lonlat(x, y)) for label, level, b, x, y in campus.rooms))
    _copy(cur, "demo_plan", campus.plan)
    counts = {}
    for name, statement in (("vertices", INSERT_VERTICES), ("edges", INSERT_EDGES), ("rooms", INSERT_ROOMS)):
        cur.execute(statement)
        counts[name] = cur.rowcount
    cur.execute(
        INSERT_PLAN, {"ax": 1.0 / _M_PER_DEG_LON, "ey": 1.0 / _M_PER_DEG_LAT, "x0": ORIGIN_LON, "y0": ORIGIN_LAT}
    )
    counts["floor_plan"] = cur.rowcount
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
