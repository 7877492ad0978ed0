"""One imported building's rows: record them, swap them (`indoor import --replace`), join its floors.

The contract tables have no building column on vertices and edges, so an import records the ids
it wrote in `indoor_building_vertices` / `indoor_building_edges` (the service's own tables).
Rooms and the floor plan carry `building` themselves. A building without a name is stored under
'' in the helper tables (and NULL in the contract tables), like `indoor_level_names`.
"""

from __future__ import annotations

# Imports one at a time: each takes the next free ids and may delete or join a building's rows.
# A transaction-scoped lock (works through pgbouncer in transaction mode).
LOCK = "SELECT pg_advisory_xact_lock(hashtext('indoor.import'))"

RECORD_VERTICES = """
INSERT INTO indoor_building_vertices (vertex, building)
SELECT unnest(%(ids)s::bigint[]), %(building)s
ON CONFLICT (vertex) DO UPDATE SET building = EXCLUDED.building
"""

RECORD_EDGES = """
INSERT INTO indoor_building_edges (edge, building)
SELECT unnest(%(ids)s::bigint[]), %(building)s
ON CONFLICT (edge) DO UPDATE SET building = EXCLUDED.building
"""

# A building's rows, one statement per table (one version bump each). An edge another tool
# attached to one of the building's vertices goes with it: no edge may point at a missing vertex.
DELETE_BUILDING = [
    (
        "edges",
        """DELETE FROM nav_edges_final e
            WHERE e.id IN (SELECT edge FROM indoor_building_edges WHERE building = %(building)s)
               OR e.source IN (SELECT vertex FROM indoor_building_vertices WHERE building = %(building)s)
               OR e.target IN (SELECT vertex FROM indoor_building_vertices WHERE building = %(building)s)""",
    ),
    (
        "vertices",
        """DELETE FROM nav_edges_work_vertices_pgr
            WHERE id IN (SELECT vertex FROM indoor_building_vertices WHERE building = %(building)s)""",
    ),
    ("rooms", "DELETE FROM room_points WHERE coalesce(building, '') = %(building)s"),
    ("floor_plan", "DELETE FROM base_floor WHERE coalesce(building, '') = %(building)s"),
    ("level_names", "DELETE FROM indoor_level_names WHERE building = %(building)s"),
    ("", "DELETE FROM indoor_building_edges WHERE building = %(building)s"),
    ("", "DELETE FROM indoor_building_vertices WHERE building = %(building)s"),
]

# Open ends: a vertex of the building whose only edge is a stairs/escalator/elevator/ramp edge
# (a CAD floor's stairs line ends where the next floor begins). Each is matched with the nearest
# vertex of the same building on another level within `tolerance_m` (the nearest level first),
# never with another open end; an edge open at both ends is left alone.
FIND_OPEN_END_JOINS = """
CREATE TEMP TABLE open_end_joins ON COMMIT DROP AS
WITH building_vertices AS (
    SELECT v.id, v.level, v.the_geom
      FROM indoor_building_vertices b
      JOIN nav_edges_work_vertices_pgr v ON v.id = b.vertex
     WHERE b.building = %(building)s
), degree AS (
    SELECT v.id, count(*) AS edges, bool_and(e.kind IN ('stairs', 'escalator', 'elevator', 'ramp')) AS vertical
      FROM building_vertices v
      JOIN nav_edges_final e ON e.source = v.id OR e.target = v.id
     GROUP BY v.id
), open_end AS (
    SELECT v.* FROM building_vertices v JOIN degree d USING (id) WHERE d.edges = 1 AND d.vertical
)
SELECT o.id AS open_vertex, m.id AS vertex, m.the_geom,
       ST_Distance(o.the_geom::geography, m.the_geom::geography) AS shift_m
  FROM open_end o
 CROSS JOIN LATERAL (
       SELECT v.id, v.the_geom
         FROM building_vertices v
        WHERE v.level <> o.level
          AND v.id NOT IN (SELECT id FROM open_end)
          AND ST_DWithin(v.the_geom::geography, o.the_geom::geography, %(tolerance_m)s)
        ORDER BY abs(v.level - o.level), ST_Distance(v.the_geom::geography, o.the_geom::geography), v.id
        LIMIT 1) m
 -- an edge open at both ends stays as it is (one UPDATE row per edge)
 WHERE NOT EXISTS (SELECT 1 FROM nav_edges_final e JOIN open_end o2 ON o2.id IN (e.source, e.target)
                    WHERE o.id IN (e.source, e.target) AND o2.id <> o.id)
"""

# The open end's edge now ends at the matched vertex. Its cost grows by the shift, so it stays
# >= the geodesic distance between its vertices (DATA.md): d(a, m) <= d(a, o) + d(o, m).
JOIN_OPEN_ENDS = """
UPDATE nav_edges_final e
   SET source = CASE WHEN e.source = j.open_vertex THEN j.vertex ELSE e.source END,
       target = CASE WHEN e.target = j.open_vertex THEN j.vertex ELSE e.target END,
       wkb_geometry = CASE WHEN e.source = j.open_vertex THEN ST_SetPoint(e.wkb_geometry, 0, j.the_geom)
                           ELSE ST_SetPoint(e.wkb_geometry, ST_NPoints(e.wkb_geometry) - 1, j.the_geom) END,
       cost = CASE WHEN e.cost < 0 THEN e.cost ELSE e.cost + j.shift_m END,
       reverse_cost = CASE WHEN e.reverse_cost < 0 THEN e.reverse_cost ELSE e.reverse_cost + j.shift_m END
  FROM open_end_joins j
 WHERE e.source = j.open_vertex OR e.target = j.open_vertex
"""

DELETE_JOINED_OPEN_ENDS = [
    "DELETE FROM nav_edges_work_vertices_pgr v USING open_end_joins j WHERE v.id = j.open_vertex",
    "DELETE FROM indoor_building_vertices b USING open_end_joins j WHERE b.vertex = j.open_vertex",
]

COUNT_OPEN_ENDS = """
SELECT count(*) FROM indoor_building_vertices b
 WHERE b.building = %(building)s
   AND (SELECT count(*) FROM nav_edges_final e WHERE e.source = b.vertex OR e.target = b.vertex) = 1
   AND EXISTS (SELECT 1 FROM nav_edges_final e
                WHERE (e.source = b.vertex OR e.target = b.vertex)
                  AND e.kind IN ('stairs', 'escalator', 'elevator', 'ramp'))
"""


def key(building: str | None) -> str:
    return building or ""


def lock(cur) -> None:
    cur.execute(LOCK)


def record(cur, building: str | None, vertex_ids: list[int], edge_ids: list[int]) -> None:
    """Remember which vertices and edges this import wrote for `building`."""
    cur.execute(RECORD_VERTICES, {"ids": vertex_ids, "building": key(building)})
    cur.execute(RECORD_EDGES, {"ids": edge_ids, "building": key(building)})


def delete(cur, building: str | None) -> dict[str, int]:
    """Delete every row of `building` (network, rooms, floor plan, level names); -> counts."""
    counts = {}
    for name, statement in DELETE_BUILDING:
        cur.execute(statement, {"building": key(building)})
        if name:
            counts[name] = cur.rowcount
    return counts


def join_open_ends(cur, building: str | None, tolerance_m: float) -> tuple[int, int]:
    """Join the building's open stairs ends to the nearest vertex of another level within
    `tolerance_m`; -> (ends joined, ends still open)."""
    params = {"building": key(building), "tolerance_m": tolerance_m}
    cur.execute(FIND_OPEN_END_JOINS, params)
    joined = cur.rowcount
    if joined:
        cur.execute(JOIN_OPEN_ENDS)
        for statement in DELETE_JOINED_OPEN_ENDS:
            cur.execute(statement)
    cur.execute("DROP TABLE open_end_joins")
    cur.execute(COUNT_OPEN_ENDS, params)
    return joined, int(cur.fetchone()[0])
