"""`indoor check-graph`'s connectivity report: can people get from room to room?

What a person needs before trusting a building (issue 11):
- connected components of the graph per profile (walking; accessible: no stairs or escalators),
  direction ignored (an edge open one way counts);
- rooms that cannot reach their building's main component: each room snaps to its vertex as
  routing does (the nearest vertex on its level with an open edge usable by the profile, among
  the nearest few by distance); a building's main component is the one most of its rooms snap
  into;
- levels of a building (the levels its rooms are on) that no stairs, escalator, elevator or ramp
  joins to another level (an open edge between two levels near the building's rooms);
- one-way traps: strongly connected components, other than the largest of their component, that
  can be entered but not left (sinks) or left but never entered (sources);
- rooms farther than a threshold from any vertex on their level.

Every statement runs in the caller's transaction; scratch tables are `ON COMMIT DROP` (safe under
pgbouncer's transaction pooling).
"""

from __future__ import annotations

from indoor.queries.validity import EDGES, MAX_LEVEL, ROOMS, VERTICES, in_lonlat_sql, is_open_sql, open_cost_sql

# The edges as routing reads them (queries/validity.py): open at least one way, each direction's
# cost finite and >= 0 or -1 (closed), between vertices with a position and a level. Rows another
# tool wrote (NaN costs, empty points) are reported by the CHECKS of queries/graph.py instead.
# Edges count when open at least one way; the accessible profile never uses stairs or
# escalators (as in queries/routing).
EDGES = f"""
CREATE TEMP TABLE check_vertices ON COMMIT DROP AS
SELECT id, level, the_geom FROM {VERTICES} v
 WHERE level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} AND {in_lonlat_sql("the_geom")};
ALTER TABLE check_vertices ADD PRIMARY KEY (id);
CREATE INDEX ON check_vertices USING gist (level, the_geom);
CREATE TEMP TABLE check_edges ON COMMIT DROP AS
SELECT e.id, e.source, e.target, {open_cost_sql("e.cost")} AS cost,
       {open_cost_sql("e.reverse_cost")} AS reverse_cost, e.kind
  FROM {EDGES} e
 WHERE {is_open_sql("e")}
   AND e.source IN (SELECT id FROM check_vertices) AND e.target IN (SELECT id FROM check_vertices);
ANALYZE check_vertices;
ANALYZE check_edges;
"""  # noqa: S608 - constant fragments; values are parameters

# A room routing can locate: a point in lon/lat on a level (as queries/routing.ROOM).
LOCATED_ROOM = f"""ST_GeometryType(r.wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("r.wkb_geometry")}
   AND r.level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}"""

COMPONENTS = """
CREATE TEMP TABLE check_components ON COMMIT DROP AS
SELECT 'walking'::text AS profile, component, node FROM pgr_connectedComponents(
         'SELECT id, source, target, 1::float8 AS cost, 1::float8 AS reverse_cost FROM check_edges')
UNION ALL
SELECT 'accessible', component, node FROM pgr_connectedComponents(
         'SELECT id, source, target, 1::float8 AS cost, 1::float8 AS reverse_cost
            FROM check_edges WHERE kind NOT IN (''stairs'', ''escalator'')');
CREATE INDEX ON check_components (profile, node);
"""

COMPONENT_SIZES = """
SELECT profile, count(*) AS components, (array_agg(n ORDER BY n DESC))[1:6] AS largest
  FROM (SELECT profile, component, count(*) AS n FROM check_components GROUP BY 1, 2) c
 GROUP BY profile
"""

# The vertices each profile may snap to: an open edge it may take touches them.
USABLE_VERTICES = """
CREATE TEMP TABLE check_usable ON COMMIT DROP AS
SELECT id, bool_or(kind NOT IN ('stairs', 'escalator')) AS accessible
  FROM (SELECT source AS id, kind FROM check_edges
        UNION ALL
        SELECT target, kind FROM check_edges) ends
 GROUP BY id;
ALTER TABLE check_usable ADD PRIMARY KEY (id);
ANALYZE check_usable;
"""

# Each room's vertex per profile, the way routing snaps it (nearest of the nearest few). Most
# rooms' walking vertex is usable by the accessible profile too: only the others search again.
ROOM_SNAPS = f"""
CREATE TEMP TABLE check_rooms ON COMMIT DROP AS
SELECT r.ogc_fid, r.text, r.level, coalesce(r.building, '') AS building, 'walking'::text AS profile,
       s.id AS vertex, s.metres, r.wkb_geometry AS geom
  FROM {ROOMS} r
  LEFT JOIN LATERAL (
       SELECT k.id, ST_Distance(k.the_geom::geography, r.wkb_geometry::geography) AS metres
         FROM (SELECT v.id, v.the_geom FROM check_vertices v
                 JOIN check_usable u ON u.id = v.id
                WHERE v.level = r.level
                ORDER BY v.the_geom <-> r.wkb_geometry LIMIT 8) k
        ORDER BY metres, k.id LIMIT 1) s ON true
 WHERE (%(building)s::text IS NULL OR r.building = %(building)s)
   AND {LOCATED_ROOM};
INSERT INTO check_rooms
SELECT w.ogc_fid, w.text, w.level, w.building, 'accessible',
       CASE WHEN u.accessible THEN w.vertex ELSE s.id END,
       CASE WHEN u.accessible THEN w.metres ELSE s.metres END, w.geom
  FROM check_rooms w
  LEFT JOIN check_usable u ON u.id = w.vertex
  LEFT JOIN LATERAL (
       SELECT k.id, ST_Distance(k.the_geom::geography, w.geom::geography) AS metres
         FROM (SELECT v.id, v.the_geom FROM check_vertices v
                 JOIN check_usable a ON a.id = v.id AND a.accessible
                WHERE v.level = w.level AND NOT coalesce(u.accessible, false)
                ORDER BY v.the_geom <-> w.geom LIMIT 8) k
        ORDER BY metres, k.id LIMIT 1) s ON true
 WHERE w.profile = 'walking';
ALTER TABLE check_rooms ADD COLUMN component bigint;
UPDATE check_rooms r SET component = c.component
  FROM check_components c WHERE c.profile = r.profile AND c.node = r.vertex;
"""  # noqa: S608 - constant fragments; values are parameters

ROOM_COUNTS = "SELECT building, count(*) FROM check_rooms WHERE profile = 'walking' GROUP BY 1 ORDER BY 1"

UNREACHABLE_ROOMS = """
WITH main AS (
  SELECT DISTINCT ON (building, profile) building, profile, component
    FROM check_rooms WHERE component IS NOT NULL
   GROUP BY building, profile, component
   ORDER BY building, profile, count(*) DESC, component)
SELECT r.building, r.profile, r.ogc_fid, r.text, r.level, r.vertex IS NULL AS no_vertex
  FROM check_rooms r LEFT JOIN main m USING (building, profile)
 WHERE m.component IS NULL OR r.component IS DISTINCT FROM m.component
 ORDER BY r.building, r.profile, r.level, r.text, r.ogc_fid
"""

FAR_ROOMS = """
SELECT building, ogc_fid, text, level, metres FROM check_rooms
 WHERE profile = 'walking' AND metres > %(metres)s
 ORDER BY building, metres DESC, ogc_fid
"""

# Open edges between two levels: few, so read once and matched to each building's levels.
VERTICAL_ENDS = """
CREATE TEMP TABLE check_vertical ON COMMIT DROP AS
SELECT a.level, a.the_geom AS geom FROM check_edges e
  JOIN check_vertices a ON a.id = e.source
  JOIN check_vertices b ON b.id = e.target
 WHERE a.level <> b.level
UNION ALL
SELECT b.level, b.the_geom FROM check_edges e
  JOIN check_vertices a ON a.id = e.source
  JOIN check_vertices b ON b.id = e.target
 WHERE a.level <> b.level
"""

# A building's levels are those of its rooms; "near" is within its rooms' extent and 100 m more.
LEVELS_WITHOUT_VERTICAL = f"""
WITH levels AS (
  SELECT coalesce(building, '') AS building, level, ST_Expand(ST_Extent(wkb_geometry)::geometry, 0.0015) AS area
    FROM {ROOMS} r
   WHERE (%(building)s::text IS NULL OR building = %(building)s) AND {LOCATED_ROOM}
   GROUP BY 1, 2),
multi AS (SELECT building FROM levels GROUP BY 1 HAVING count(*) > 1)
SELECT l.building, l.level FROM levels l JOIN multi USING (building)
 WHERE NOT EXISTS (SELECT 1 FROM check_vertical v WHERE v.level = l.level AND v.geom && l.area)
 ORDER BY 1, 2
"""  # noqa: S608 - constant fragments; values are parameters

STRONG_COMPONENTS = """
CREATE TEMP TABLE check_strong ON COMMIT DROP AS
SELECT component, node FROM pgr_strongComponents(
         'SELECT id, source, target, cost, reverse_cost FROM check_edges');
CREATE INDEX ON check_strong (node);
"""

# Sinks (entered, never left) and sources (left, never entered) of the one-way condensation,
# except the largest strong component of each (undirected) component: that is the building.
ONE_WAY_TRAPS = """
WITH arcs AS (
  SELECT sa.component AS tail, sb.component AS head FROM check_edges e
    JOIN check_strong sa ON sa.node = e.source JOIN check_strong sb ON sb.node = e.target
   WHERE e.cost >= 0 AND sa.component <> sb.component
  UNION
  SELECT sb.component, sa.component FROM check_edges e
    JOIN check_strong sa ON sa.node = e.source JOIN check_strong sb ON sb.node = e.target
   WHERE e.reverse_cost >= 0 AND sa.component <> sb.component),
strong AS (
  SELECT s.component, count(*) AS vertices, min(s.node) AS sample, min(w.component) AS weak
    FROM check_strong s JOIN check_components w ON w.profile = 'walking' AND w.node = s.node
   GROUP BY s.component),
largest AS (SELECT DISTINCT ON (weak) weak, component FROM strong ORDER BY weak, vertices DESC, component)
SELECT s.component, s.vertices, s.sample, v.level, ST_X(v.the_geom), ST_Y(v.the_geom),
       EXISTS (SELECT 1 FROM arcs WHERE arcs.head = s.component) AS entered,
       EXISTS (SELECT 1 FROM arcs WHERE arcs.tail = s.component) AS left_
  FROM strong s JOIN check_vertices v ON v.id = s.sample
 WHERE s.component NOT IN (SELECT component FROM largest)
   AND EXISTS (SELECT 1 FROM arcs WHERE arcs.head = s.component OR arcs.tail = s.component)
   AND NOT (EXISTS (SELECT 1 FROM arcs WHERE arcs.head = s.component)
            AND EXISTS (SELECT 1 FROM arcs WHERE arcs.tail = s.component))
 ORDER BY s.vertices DESC, s.component
"""

ROOM_DISTANCE_M = 30.0


def connectivity_report(cur, building: str | None = None, room_distance_m: float = ROOM_DISTANCE_M) -> dict:
    """The report as plain data (see the module docstring); `errors` counts what should stop a
    building being trusted: rooms unreachable on foot, levels without a way up or down, traps."""
    params = {"building": building}
    cur.execute(EDGES)
    cur.execute(COMPONENTS)
    cur.execute(COMPONENT_SIZES)
    components = {
        profile: {"count": int(count), "largest": [int(n) for n in largest]}
        for profile, count, largest in cur.fetchall()
    }
    for profile in ("walking", "accessible"):
        components.setdefault(profile, {"count": 0, "largest": []})
    cur.execute(USABLE_VERTICES)
    cur.execute(ROOM_SNAPS, params)
    cur.execute(ROOM_COUNTS)
    buildings = {
        name: {
            "building": name or None,
            "rooms": int(count),
            "unreachable": {"walking": [], "accessible": []},
            "levels_without_vertical": [],
            "far_rooms": [],
        }
        for name, count in cur.fetchall()
    }
    cur.execute(UNREACHABLE_ROOMS)
    for name, profile, room_id, text, level, no_vertex in cur.fetchall():
        buildings[name]["unreachable"][profile].append(
            {"id": room_id, "name": text, "level": _number(level), "no_vertex": bool(no_vertex)}
        )
    cur.execute(FAR_ROOMS, {"metres": room_distance_m})
    for name, room_id, text, level, metres in cur.fetchall():
        buildings[name]["far_rooms"].append(
            {"id": room_id, "name": text, "level": _number(level), "metres": round(float(metres), 1)}
        )
    cur.execute(VERTICAL_ENDS)
    cur.execute(LEVELS_WITHOUT_VERTICAL, params)
    for name, level in cur.fetchall():
        if name in buildings:
            buildings[name]["levels_without_vertical"].append(_number(level))
    cur.execute(STRONG_COMPONENTS)
    cur.execute(ONE_WAY_TRAPS)
    traps = [
        {
            "vertices": int(vertices),
            "sample_vertex": int(sample),
            "level": _number(level),
            "lon": float(lon),
            "lat": float(lat),
            "kind": "cannot be left" if entered else "cannot be entered",
        }
        for _, vertices, sample, level, lon, lat, entered, _left in cur.fetchall()
    ]
    errors = len(traps) + sum(
        len(b["unreachable"]["walking"]) + len(b["levels_without_vertical"]) for b in buildings.values()
    )
    missing = building is not None and not buildings  # a misspelt --building must not pass quietly
    return {
        "missing_building": building if missing else None,
        "components": components,
        "buildings": list(buildings.values()),
        "one_way_traps": traps,
        "room_distance_m": room_distance_m,
        "errors": errors + missing,
    }


def _number(value):
    """A level for JSON: 0, 1, -1 as integers, 0.5 as a float."""
    number = float(value)
    return int(number) if number.is_integer() else number
