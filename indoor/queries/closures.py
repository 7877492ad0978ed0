"""Closures (indoor/live/closures.py): what a closure closes, resolved to edge ids when it is
made; the closures themselves in indoor_closures (ours: the contract tables are never written).

A room is its named floor-plan polygon (base_floor: the polygon on the room's level whose name
is the room's label, the one holding the room's point first), or, where the floor plan has none,
a disc of ROOM_RADIUS_M around its point. It closes every edge that runs inside it, enters it or
starts or ends inside it: on the room's level, and any edge between levels that touches its
footprint (so closing an elevator's room closes the elevator on every level). Rows other tools
wrote are read as everywhere (queries/validity.py): unusable geometries and levels match nothing.
"""

from __future__ import annotations

from indoor.queries.validity import MAX_LEVEL, in_lonlat_sql

ROOM_RADIUS_M = 1.5

_LEVEL_OK = f"BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}"

# The edges near a shape: the edge's line or either vertex in it. Three searches, each on its own
# spatial index, joined by UNION: one condition ORing the three could use no index, and read (and
# test against the shape) every edge of the campus: 11.8 s for one elevator on 339,212 edges.
_EDGES_IN = f"""
SELECT e.id, a.level AS a_level, b.level AS b_level
  FROM (SELECT e.id FROM nav_edges_final e
         WHERE ST_Intersects(e.wkb_geometry, shape.geom) AND {in_lonlat_sql("e.wkb_geometry")}
        UNION
        SELECT e.id FROM nav_edges_work_vertices_pgr v JOIN nav_edges_final e ON e.source = v.id
         WHERE ST_Intersects(v.the_geom, shape.geom) AND {in_lonlat_sql("v.the_geom")}
        UNION
        SELECT e.id FROM nav_edges_work_vertices_pgr v JOIN nav_edges_final e ON e.target = v.id
         WHERE ST_Intersects(v.the_geom, shape.geom) AND {in_lonlat_sql("v.the_geom")}) near_ids
  JOIN nav_edges_final e ON e.id = near_ids.id
  LEFT JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
  LEFT JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
"""  # noqa: S608 - constant fragments

# A room of these categories is a connector's own (an elevator, a staircase): closing it closes
# the connector's edges between any levels under it (the whole shaft). Any other room closes
# only what lies on its own level, or reaches it: not a staircase two floors below an office.
_CONNECTOR_CATEGORIES = "'elevator', 'lift', 'stairs', 'steps', 'staircase', 'escalator', 'ramp'"

ROOMS = f"""
WITH room AS (
  SELECT rp.ogc_fid, trim(rp.text) AS label, rp.level, nullif(trim(rp.building), '') AS building,
         lower(rp.category) AS category, rp.wkb_geometry AS point
    FROM room_points rp
   WHERE rp.ogc_fid = ANY(%(rooms)s::bigint[])
     AND ST_GeometryType(rp.wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("rp.wkb_geometry")}
     AND rp.level {_LEVEL_OK}),
shape AS MATERIALIZED (
  SELECT room.*, coalesce(
           (SELECT bf.wkb_geometry
              FROM (SELECT named.ogc_fid, named.wkb_geometry FROM base_floor named
                     WHERE trim(named.name) = room.label AND named.level = room.level
                    OFFSET 0) bf  -- the name first: no other polygon of the level is read whole
             WHERE ST_GeometryType(bf.wkb_geometry) IN ('ST_Polygon', 'ST_MultiPolygon')
               AND {in_lonlat_sql("bf.wkb_geometry")} AND ST_IsValid(bf.wkb_geometry)
             ORDER BY ST_Intersects(bf.wkb_geometry, room.point) DESC, bf.ogc_fid LIMIT 1),
           ST_Buffer(room.point::geography, {ROOM_RADIUS_M})::geometry) AS geom
    FROM room)
SELECT shape.ogc_fid, shape.label, shape.category, shape.building,
       coalesce((SELECT array_agg(DISTINCT near.id ORDER BY near.id) FROM ({_EDGES_IN}) near
                  WHERE near.a_level = shape.level OR near.b_level = shape.level
                     OR (near.a_level IS DISTINCT FROM near.b_level
                         AND shape.category IN ({_CONNECTOR_CATEGORIES}))), '{{}}')
  FROM shape
 ORDER BY shape.ogc_fid
"""  # noqa: S608 - constant fragments; values are parameters

AREA = f"""
WITH shape AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(area)s), 4326) AS geom)
SELECT coalesce(array_agg(DISTINCT near.id ORDER BY near.id), '{{}}')
  FROM shape, LATERAL ({_EDGES_IN}) near
 WHERE near.a_level = ANY(%(levels)s::numeric[]) OR near.b_level = ANY(%(levels)s::numeric[])
"""  # noqa: S608 - constant fragments; values are parameters

# Whether a GeoJSON polygon is one PostGIS takes as a valid lon/lat polygon: (ok, why).
AREA_VALID = f"""
SELECT ST_IsValid(g) AND {in_lonlat_sql("g")}, ST_IsValidReason(g)
  FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(area)s), 4326) AS g) x
"""  # noqa: S608 - constant fragments

EDGES_KNOWN = "SELECT array_agg(id ORDER BY id) FROM nav_edges_final WHERE id = ANY(%(edges)s::bigint[])"

EDGE_BUILDINGS = """
SELECT coalesce(array_agg(DISTINCT building ORDER BY building), '{}')
  FROM indoor_building_edges WHERE edge = ANY(%(edges)s::bigint[])
"""

_COLUMNS = """
id, rooms, edges, ST_AsGeoJSON(area, 7), levels, label, buildings,
to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
reason, profiles,
deleted_at IS NULL AND starts_at <= now() AND (ends_at IS NULL OR ends_at > now()),
to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), created_by,
to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), deleted_by,
extract(epoch FROM starts_at)::float8, extract(epoch FROM ends_at)::float8
"""

INSERT = f"""
INSERT INTO indoor_closures (rooms, requested_edges, edges, area, levels, label, buildings, starts_at, ends_at,
                             reason, profiles, created_by)
VALUES (%(rooms)s::bigint[], %(requested_edges)s::bigint[], %(edges)s::bigint[],
        CASE WHEN %(area)s::text IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromGeoJSON(%(area)s), 4326) END,
        %(levels)s::numeric[], %(label)s, %(buildings)s::text[],
        coalesce(%(starts_at)s::timestamptz, now()), %(ends_at)s::timestamptz, %(reason)s, %(profiles)s::text[],
        %(created_by)s)
RETURNING {_COLUMNS}
"""  # noqa: S608 - constant fragments; values are parameters

ONE = f"SELECT {_COLUMNS} FROM indoor_closures WHERE id = %(id)s"  # noqa: S608

LIST = f"""
SELECT {_COLUMNS} FROM indoor_closures
 WHERE (%(building)s::text IS NULL OR %(building)s = ANY(buildings))
   AND (%(active)s::boolean IS NULL
        OR %(active)s = (deleted_at IS NULL AND starts_at <= now() AND (ends_at IS NULL OR ends_at > now())))
 ORDER BY id DESC
 LIMIT 1000
"""  # noqa: S608 - constant fragments; values are parameters

DELETE = f"""
UPDATE indoor_closures SET deleted_at = now(), deleted_by = %(deleted_by)s
 WHERE id = %(id)s AND deleted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608

# What routing needs: every closure not removed and not over, with its window (epoch seconds).
CURRENT = """
SELECT id, edges, extract(epoch FROM starts_at)::float8, extract(epoch FROM ends_at)::float8,
       profiles, reason, label
  FROM indoor_closures
 WHERE deleted_at IS NULL AND (ends_at IS NULL OR ends_at > now())
 ORDER BY id
"""

NOW = "SELECT extract(epoch FROM now())::float8"


def rooms(cur, room_ids: list[int]) -> list[tuple]:
    """(room id, label, category, building, [edge ids]) of each room that exists and is located."""
    cur.execute(ROOMS, {"rooms": room_ids})
    return cur.fetchall()


def area_valid(cur, area: str) -> tuple[bool, str]:
    cur.execute(AREA_VALID, {"area": area})
    ok, why = cur.fetchone()
    return bool(ok), why or ""


def area_edges(cur, area: str, levels: list) -> list[int]:
    cur.execute(AREA, {"area": area, "levels": levels})
    return list(cur.fetchone()[0])


def known_edges(cur, edge_ids: list[int]) -> list[int]:
    cur.execute(EDGES_KNOWN, {"edges": edge_ids})
    return list(cur.fetchone()[0] or [])


def edge_buildings(cur, edge_ids: list[int]) -> list[str]:
    cur.execute(EDGE_BUILDINGS, {"edges": edge_ids})
    return list(cur.fetchone()[0])


def insert(cur, values: dict) -> tuple:
    cur.execute(INSERT, values)
    return cur.fetchone()


def one(cur, closure_id: int) -> tuple | None:
    cur.execute(ONE, {"id": closure_id})
    return cur.fetchone()


def listing(cur, active: bool | None, building: str | None) -> list[tuple]:
    cur.execute(LIST, {"active": active, "building": building})
    return cur.fetchall()


def delete(cur, closure_id: int, deleted_by: str) -> tuple | None:
    cur.execute(DELETE, {"id": closure_id, "deleted_by": deleted_by})
    return cur.fetchone()


def current(cur) -> list[tuple]:
    cur.execute(CURRENT)
    return cur.fetchall()


# -- a building re-imported (`indoor import --replace`): its closures follow it -------------------
# An import writes new ids (rooms from their sequence, edges from the next free id), so ids kept
# in a closure would close nothing, or whatever edge took an old number. Before the building's rows
# are deleted, what its closures name is kept as keys; after the new rows are written, each key is
# looked up again and the closure's edges are resolved anew.

# Closures not removed and not over that touch the building.
FOLLOWING = """
SELECT id, rooms, requested_edges, ST_AsGeoJSON(area, 7), levels
  FROM indoor_closures
 WHERE deleted_at IS NULL AND (ends_at IS NULL OR ends_at > now()) AND %(building)s = ANY(buildings)
 ORDER BY id
"""

# A room is found again by its name, level and category in the building.
ROOM_KEYS = """
SELECT ogc_fid, trim(text), level, lower(category) FROM room_points
 WHERE ogc_fid = ANY(%(rooms)s::bigint[]) AND coalesce(building, '') = %(building)s
"""

# An edge by its kind and geometry, among the building's edges.
EDGE_KEYS = """
SELECT e.id, e.kind, ST_AsEWKB(e.wkb_geometry)
  FROM nav_edges_final e JOIN indoor_building_edges b ON b.edge = e.id AND b.building = %(building)s
 WHERE e.id = ANY(%(edges)s::bigint[])
"""

# The new id of each kept room, where exactly one room of the building has its keys.
ROOMS_AGAIN = """
SELECT k.old, min(rp.ogc_fid)
  FROM unnest(%(old)s::bigint[], %(label)s::text[], %(level)s::numeric[], %(category)s::text[])
       AS k(old, label, level, category)
  JOIN room_points rp ON trim(rp.text) = k.label AND rp.level = k.level
                     AND lower(rp.category) IS NOT DISTINCT FROM k.category
                     AND coalesce(rp.building, '') = %(building)s
 GROUP BY k.old HAVING count(*) = 1
"""

EDGES_AGAIN = """
SELECT k.old, min(e.id)
  FROM unnest(%(old)s::bigint[], %(kind)s::text[], %(geom)s::bytea[]) AS k(old, kind, geom)
  JOIN indoor_building_edges b ON b.building = %(building)s
  JOIN nav_edges_final e ON e.id = b.edge AND e.kind IS NOT DISTINCT FROM k.kind
                        AND ST_Equals(e.wkb_geometry, ST_GeomFromEWKB(k.geom))
 GROUP BY k.old HAVING count(*) = 1
"""

FOLLOWED = """
UPDATE indoor_closures SET rooms = %(rooms)s::bigint[], requested_edges = %(requested_edges)s::bigint[],
                           edges = %(edges)s::bigint[]
 WHERE id = %(id)s
"""


def following(cur, building: str) -> list[dict]:
    """What the building's closures name, as keys that outlive its ids (before its rows go)."""
    cur.execute(FOLLOWING, {"building": building})
    kept = []
    for closure_id, room_ids, edge_ids, area, levels in cur.fetchall():
        cur.execute(ROOM_KEYS, {"rooms": list(room_ids), "building": building})
        room_keys = cur.fetchall()
        cur.execute(EDGE_KEYS, {"edges": list(edge_ids), "building": building})
        edge_keys = [(i, kind, bytes(geom)) for i, kind, geom in cur.fetchall()]
        kept.append({"id": closure_id, "rooms": list(room_ids), "requested_edges": list(edge_ids), "area": area,
                     "levels": list(levels), "room_keys": room_keys, "edge_keys": edge_keys})  # fmt: skip
    return kept


def rooms_again(cur, building: str, room_keys: list[tuple]) -> dict[int, int]:
    if not room_keys:
        return {}
    old, label, level, category = (list(column) for column in zip(*room_keys, strict=True))
    cur.execute(ROOMS_AGAIN, {"old": old, "label": label, "level": level, "category": category, "building": building})
    return dict(cur.fetchall())


def edges_again(cur, building: str, edge_keys: list[tuple]) -> dict[int, int]:
    if not edge_keys:
        return {}
    old, kind, geom = (list(column) for column in zip(*edge_keys, strict=True))
    cur.execute(EDGES_AGAIN, {"old": old, "kind": kind, "geom": geom, "building": building})
    return dict(cur.fetchall())


def followed(cur, closure_id: int, rooms: list[int], requested_edges: list[int], edges: list[int]) -> None:
    cur.execute(FOLLOWED, {"id": closure_id, "rooms": rooms, "requested_edges": requested_edges, "edges": edges})
