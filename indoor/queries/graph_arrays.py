"""What an uncached route reads besides its search, for one graph version in one read: each
edge's kind, levels and drawn geometry (as PATH_EDGES gives them, queries/routing.py) and each
vertex's position, level and whether a profile may snap to it (as NEAREST_VERTEX decides).
indoor/routing/graph_arrays.py holds them beside the route index.

Exact by construction: every value is computed here by the same SQL expressions the per-route
statements use (travel from the source and from the target each evaluated), and packed into
fixed-width big-endian records plus one text of the coordinates exactly as ST_AsGeoJSON writes
them, so numpy reads 200,000 edges without a Python object per row.
"""

from __future__ import annotations

import numpy as np

from indoor.queries.validity import MAX_LEVEL, in_lonlat_sql


def _how(node: str, a: str) -> str:
    """How PATH_EDGES draws edge `e` travelled from vertex `node` (row `a`, the other end's row
    `b`): 0 as drawn, 1 reversed, 2 straight from `a` to `b`, NULL nothing. The same CASE, with
    the in_lonlat tests computed once per row (`e_ok`, `a.ok`, `b.ok`)."""
    return f"""CASE WHEN NOT e_ok THEN CASE WHEN {a}.ok AND {"t" if a == "s" else "s"}.ok THEN 2 END
                WHEN {a}.the_geom IS NULL AND e.source = {node} THEN 0
                WHEN {a}.the_geom IS NULL THEN 1
                WHEN ST_Distance(ST_StartPoint(e.wkb_geometry), {a}.the_geom)
                     <= ST_Distance(ST_EndPoint(e.wkb_geometry), {a}.the_geom) THEN 0
                ELSE 1 END"""


# Per edge, in id order: id; source; kind (1-based position in `kinds`, 0 for NULL); the levels
# at the source and target ends as PATH_EDGES coalesces them; how many points its geometry has
# when travelled from the source (-1: the arrays do not hold it: not a 2D line); whether
# travelled from the target it is exactly that geometry reversed (drawn one way and reversed
# the other, straight both ways, nothing both ways, or a line that reads the same reversed; else routes over it that way read it
# by SQL). The coordinates of every held geometry (from the source) follow as one float8[] in
# the same order, each number the text ST_AsGeoJSON wrote, read by PostgreSQL (correctly
# rounded, as JSON parsers read it), so the arrays give the very numbers the SQL read gives.
EDGES = f"""
WITH v AS (SELECT id, the_geom, {in_lonlat_sql("the_geom")} AS ok,
                  CASE WHEN level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN level END AS level
             FROM nav_edges_work_vertices_pgr),
k AS (SELECT coalesce(array_agg(DISTINCT kind ORDER BY kind) FILTER (WHERE kind IS NOT NULL), '{{}}') AS kinds
        FROM nav_edges_final),
d AS MATERIALIZED (
      SELECT id, source, kind, level_s, level_t, fc, bc,
             CASE fc WHEN 0 THEN g WHEN 1 THEN ST_Reverse(g) WHEN 2 THEN ST_MakeLine(s_geom, t_geom) END AS fwd,
             g IS NULL AS none
        FROM (SELECT e.id, e.source, e.kind, e.wkb_geometry AS g, s.the_geom AS s_geom, t.the_geom AS t_geom,
                     coalesce(s.level, t.level, 0) AS level_s, coalesce(t.level, s.level, 0) AS level_t,
                     {_how("e.source", "s")} AS fc, {_how("e.target", "t")} AS bc
                FROM (SELECT *, {in_lonlat_sql("wkb_geometry")} AS e_ok FROM nav_edges_final) e
                LEFT JOIN v s ON s.id = e.source
                LEFT JOIN v t ON t.id = e.target
               WHERE e.id IS NOT NULL) x),
j AS MATERIALIZED (
      SELECT id, source, kind, level_s, level_t, ST_NPoints(fwd) AS n,
             CASE WHEN ST_GeometryType(fwd) = 'ST_LineString' AND ST_NDims(fwd) = 2
                  THEN substring(ST_AsGeoJSON(fwd, 7) FROM '^[^NI]*$') END AS g,
             (fwd IS NULL OR (ST_GeometryType(fwd) = 'ST_LineString' AND ST_NDims(fwd) = 2)) AS line,
             coalesce((fc, bc) IN ((0, 1), (1, 0), (2, 2)), false) OR (fc IS NULL AND bc IS NULL)
             OR (none AND fc IN (0, 1) AND bc IN (0, 1))
             OR CASE WHEN fc = bc AND fc IN (0, 1)  -- the same both ways: reversed only if symmetric
                     THEN ST_AsBinary(fwd) = ST_AsBinary(ST_Reverse(fwd)) ELSE false END AS reversible
        FROM d),
h AS MATERIALIZED (SELECT j.*, line AND (g IS NULL OR left(g, 36) = '{{"type":"LineString","coordinates":[') AS held
        FROM j)
SELECT (SELECT kinds FROM k),
       string_agg(int8send(id::bigint) || int8send(coalesce(source, 0)::bigint)
                  || int4send(coalesce(array_position((SELECT kinds FROM k), kind), 0))
                  || float8send(level_s::float8) || float8send(level_t::float8)
                  || int4send(CASE WHEN NOT held THEN -1 WHEN g IS NULL THEN 0 ELSE n END)
                  || CASE WHEN reversible THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea ORDER BY id),
       array_send(string_to_array(string_agg(translate(substr(g, 37, length(g) - 38), '[]', ''), ',' ORDER BY id)
                                  FILTER (WHERE held AND g IS NOT NULL AND n > 0), ',')::float8[])
  FROM h
"""  # noqa: S608 - constant fragments; values are parameters

EDGE_RECORD = np.dtype([("id", ">i8"), ("source", ">i8"), ("kind", ">i4"), ("level_s", ">f8"), ("level_t", ">f8"),
                        ("points", ">i4"), ("reversible", "u1")])  # fmt: skip

# Per vertex with a usable position (NEAREST_VERTEX's in_lonlat) and a level the API serves: id,
# position, level (a position in the level texts, trim_scale: numerically equal levels, one
# text); plus how many located vertices are not points (ST_X fails on them: the SQL snap then
# answers). Which profile may snap to each is computed from the index's edges (graph_arrays.py).
VERTICES = f"""
WITH u AS MATERIALIZED (
      SELECT id, the_geom, trim_scale(level)::text AS level
        FROM nav_edges_work_vertices_pgr
       WHERE {in_lonlat_sql("the_geom")} AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
         AND ST_GeometryType(the_geom) = 'ST_Point'),
l AS (SELECT coalesce(array_agg(DISTINCT level ORDER BY level), '{{}}') AS levels FROM u)
SELECT (SELECT levels FROM l),
       string_agg(int8send(id::bigint) || float8send(ST_X(the_geom)) || float8send(ST_Y(the_geom))
                  || int4send(array_position((SELECT levels FROM l), level)), ''::bytea ORDER BY id),
       (SELECT count(*) FROM nav_edges_work_vertices_pgr v
         WHERE {in_lonlat_sql("v.the_geom")} AND ST_GeometryType(v.the_geom) <> 'ST_Point')
  FROM u
"""  # noqa: S608 - constant fragments; values are parameters

VERTEX_RECORD = np.dtype([("id", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("level", ">i4")])


def _records(value, dtype) -> np.ndarray:
    return np.frombuffer(bytes(value), dtype=dtype) if value is not None else np.zeros(0, dtype=dtype)


def no_jit(cur) -> None:
    """These statements are long expressions over every row: JIT compiling them took 37 s."""
    cur.execute("SET LOCAL jit = off")


def load_edges(cur) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(kinds, EDGE_RECORDs, the held geometries' coordinates as one float array lon, lat, ...)
    in this transaction's snapshot."""
    cur.execute(EDGES)
    kinds, packed, numbers = cur.fetchone()
    return list(kinds or ()), _records(packed, EDGE_RECORD), _float8_array(numbers)


def _float8_array(value) -> np.ndarray:
    """A one-dimensional float8[] in PostgreSQL's binary form (array_send): a 20-byte header, then
    (length, value) per element."""
    if value is None:
        return np.zeros(0)
    raw = bytes(value)
    if len(raw) <= 12:  # an empty array: no dimensions
        return np.zeros(0)
    return np.frombuffer(raw, dtype=np.dtype([("n", ">i4"), ("v", ">f8")]), offset=20)["v"].astype(np.float64)


def load_vertices(cur) -> tuple[list[str], np.ndarray, int]:
    """(level texts, VERTEX_RECORDs, located vertices that are not points) in this snapshot."""
    cur.execute(VERTICES)
    levels, packed, not_points = cur.fetchone()
    return list(levels or ()), _records(packed, VERTEX_RECORD), int(not_points or 0)


# Every room as ROOM reads one (queries/routing.py), for one rooms version: id, whether it is
# located (a point in lon/lat, a level the API serves), its position and level (a position in
# the level texts, trim_scale), then the names and buildings in the same order.
ROOMS = f"""
WITH r AS MATERIALIZED (
      SELECT ogc_fid, text, building,
             coalesce(ST_GeometryType(wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("wkb_geometry")}
                      AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}, false) AS located,
             wkb_geometry, trim_scale(level)::text AS level
        FROM room_points WHERE ogc_fid IS NOT NULL),
l AS (SELECT coalesce(array_agg(DISTINCT level ORDER BY level) FILTER (WHERE located), '{{}}') AS levels FROM r)
SELECT (SELECT levels FROM l),
       string_agg(int8send(ogc_fid::bigint) || CASE WHEN located THEN '\\x01'::bytea ELSE '\\x00'::bytea END
                  || float8send(CASE WHEN located THEN ST_X(wkb_geometry) ELSE 'NaN' END)
                  || float8send(CASE WHEN located THEN ST_Y(wkb_geometry) ELSE 'NaN' END)
                  || int4send(CASE WHEN located THEN array_position((SELECT levels FROM l), level) ELSE 0 END),
                  ''::bytea ORDER BY ogc_fid),
       array_agg(text ORDER BY ogc_fid), array_agg(building ORDER BY ogc_fid)
  FROM r
"""  # noqa: S608 - constant fragments; values are parameters

ROOM_RECORD = np.dtype([("id", ">i8"), ("located", "u1"), ("lon", ">f8"), ("lat", ">f8"), ("level", ">i4")])


def load_rooms(cur) -> tuple[list[str], np.ndarray, list, list]:
    """(level texts, ROOM_RECORDs, names, buildings) of every room, in this snapshot."""
    no_jit(cur)
    cur.execute(ROOMS)
    levels, packed, names, buildings = cur.fetchone()
    return list(levels or ()), _records(packed, ROOM_RECORD), list(names or ()), list(buildings or ())
