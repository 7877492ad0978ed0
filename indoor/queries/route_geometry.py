"""What a route needs besides its search, for a whole graph version in one read: each edge's
line and levels as PATH_EDGES draws them (queries/routing.py), and each usable vertex's
position for snapping in memory (indoor/routing/geometry.py).

Packed by PostgreSQL as fixed-width records and one text of coordinates, so a 400,000-edge
network crosses as a few values read without a Python object per row. Only what the memory copy
answers exactly as the SQL would is marked plain; anything else (a curve, a 3D line, a loop, a
line or vertex another tool left unusable) is left to the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indoor.queries import validity
from indoor.queries.route_index import records
from indoor.queries.routing import NOT_ACCESSIBLE
from indoor.queries.validity import MAX_LEVEL, in_lonlat_sql, is_open_sql

# One record per edge (in no order: each record names its edge, and the three aggregates read the
# rows in one order): id, source, target, the levels at its source and target ends as
# PATH_EDGES reads them (coalesce(this end, the other, 0): an end whose vertex is missing or whose
# level is out of range takes the other's), whether it is plain, whether its line is drawn
# reversed when the route leaves its source / its target (PATH_EDGES: from the end nearer the
# vertex left), and how many numbers of `coordinates` are its. `coordinates`: the plain edges'
# lines as ST_AsGeoJSON prints them (7 decimals), numbers only, comma-separated, in the same order.
_EDGES = f"""
SELECT string_agg(int8send(id::bigint) || int8send(source::bigint) || int8send(target::bigint)
                  || float8send(coalesce(source_level, target_level, 0)::float8)
                  || float8send(coalesce(target_level, source_level, 0)::float8)
                  || set_byte('\\x00'::bytea, 0, (CASE WHEN plain THEN 1 ELSE 0 END)
                                                + (CASE WHEN plain AND NOT from_source_as_drawn THEN 2 ELSE 0 END)
                                                + (CASE WHEN plain AND NOT from_target_as_drawn THEN 4 ELSE 0 END)
                                                + (CASE WHEN open THEN 8 ELSE 0 END)
                                                + (CASE WHEN kind <> ALL(%(not_accessible)s::text[]) THEN 16 ELSE 0 END))
                  || int4send(CASE WHEN plain THEN numbers ELSE 0 END),
                  ''::bytea),
       array_agg(kind),
       string_agg(CASE WHEN plain THEN coordinates END, ',')
  FROM (SELECT id, source, target, kind, open, source_level, target_level, coordinates, numbers,
               shaped AND coordinates !~ '[NI]' AS plain,
               CASE WHEN shaped THEN ST_Distance(ST_StartPoint(line), a_geom) <= ST_Distance(ST_EndPoint(line), a_geom)
                    END AS from_source_as_drawn,
               CASE WHEN shaped THEN ST_Distance(ST_StartPoint(line), b_geom) <= ST_Distance(ST_EndPoint(line), b_geom)
                    END AS from_target_as_drawn
          FROM (SELECT e.id, e.source, e.target, e.kind, {is_open_sql("e")} AS open, e.wkb_geometry AS line, a.the_geom AS a_geom, b.the_geom AS b_geom,
                       CASE WHEN a.level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN a.level END AS source_level,
                       CASE WHEN b.level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN b.level END AS target_level,
                       coalesce(ST_GeometryType(e.wkb_geometry) = 'ST_LineString' AND ST_Zmflag(e.wkb_geometry) = 0
                                AND {in_lonlat_sql("e.wkb_geometry")}
                                AND {in_lonlat_sql("a.the_geom")} AND {in_lonlat_sql("b.the_geom")}
                                AND e.source <> e.target, false) AS shaped
                  FROM {validity.EDGES} e
                  LEFT JOIN {validity.VERTICES} a ON a.id = e.source
                  LEFT JOIN {validity.VERTICES} b ON b.id = e.target
                 WHERE {{where}}
                OFFSET 0) s
          CROSS JOIN LATERAL (
                SELECT CASE WHEN shaped THEN translate(substring(ST_AsGeoJSON(line, 7) FROM '"coordinates":(.*)}}$'), '[]', '')
                            END AS coordinates,
                       CASE WHEN shaped THEN 2 * ST_NPoints(line) END AS numbers) c
         OFFSET 0) e
"""  # noqa: S608 - constant fragments
EDGES = _EDGES.replace("{where}", "true")
# The same for the edges an edit changed (an id gone is not there).
CHANGED_EDGES = _EDGES.replace("{where}", "e.id = ANY(%(ids)s::bigint[])")

# Whether an open edge, and an open edge the accessible profile may take, touches each vertex (as
# NEAREST_VERTEX's EXISTS asks it), for the vertices whose edges an edit changed.
USABLE = f"""
SELECT v.id,
       EXISTS (SELECT 1 FROM {validity.EDGES} e WHERE (e.source = v.id OR e.target = v.id) AND {is_open_sql("e")}),
       EXISTS (SELECT 1 FROM {validity.EDGES} e WHERE (e.source = v.id OR e.target = v.id) AND {is_open_sql("e")}
                  AND NOT (e.kind = ANY(%(not_accessible)s::text[])))
  FROM unnest(%(ids)s::bigint[]) AS v(id)
"""  # noqa: S608 - constant fragments; values are parameters

# Every vertex NEAREST_VERTEX could snap to, with a level and a position in lon/lat (whether an
# open edge touches it is told by the edges); `point`: it is a point (ST_X reads it). `levels`:
# their distinct levels exactly (numeric, as text).
VERTICES = f"""
SELECT string_agg(int8send(id::bigint) || float8send(CASE WHEN point THEN ST_X(the_geom) ELSE 'NaN' END)
                  || float8send(CASE WHEN point THEN ST_Y(the_geom) ELSE 'NaN' END) || float8send(level::float8)
                  || CASE WHEN point THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea),
       array_agg(DISTINCT level::text)
  FROM (SELECT id, the_geom, level, ST_GeometryType(the_geom) = 'ST_Point' AS point
          FROM {validity.VERTICES} v
         WHERE level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} AND {in_lonlat_sql("the_geom")}
        OFFSET 0) v
"""  # noqa: S608 - constant fragments

EDGE_RECORD = np.dtype([("id", ">i8"), ("source", ">i8"), ("target", ">i8"), ("source_level", ">f8"), ("target_level", ">f8"),
                        ("flags", "u1"), ("numbers", ">i4")])  # fmt: skip
VERTEX_RECORD = np.dtype([("id", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("level", ">f8"), ("point", "u1")])

# What the graph-changes log lists for an edit of the vertices (queries/schema.py): the geometry
# cannot follow it (positions, levels) and reads the version whole; the index reads it as an edge
# that is not there. `CAN_FOLLOW`: whether this database's trigger logs it (else a vertex edit
# would look like no change, and the geometry never follows).
VERTICES_CHANGED = -1
CAN_FOLLOW = """
SELECT coalesce(bool_or(position('{-1}' in prosrc) > 0), false) FROM pg_proc WHERE proname = 'indoor_log_graph_change'
"""

PLAIN, REVERSED_FROM_SOURCE, REVERSED_FROM_TARGET, OPEN, ACCESSIBLE_KIND = 1, 2, 4, 8, 16


@dataclass(frozen=True)
class EdgesRead:
    edges: np.ndarray  # EDGE_RECORD
    kinds: list[str]  # per edge
    coordinates: str  # the plain edges' numbers, comma-separated


@dataclass(frozen=True)
class GeometryRead:
    """One graph version's edges and usable vertices, as read in one snapshot."""

    graph_key: str
    edges: np.ndarray  # EDGE_RECORD
    kinds: list[str]  # per edge
    coordinates: str  # the plain edges' numbers, comma-separated
    vertices: np.ndarray  # VERTEX_RECORD
    levels: list[str]  # the vertices' distinct levels, exactly
    can_follow: bool


def _edges_read(row) -> EdgesRead:
    packed, kinds, coordinates = row
    return EdgesRead(records(packed, EDGE_RECORD), list(kinds or []), coordinates or "")


def changed_edges(cur, ids: list[int]) -> EdgesRead:
    """The records of the edges `ids` in this snapshot (an id deleted is not there)."""
    cur.execute(CHANGED_EDGES, {"ids": ids, "not_accessible": list(NOT_ACCESSIBLE)})
    return _edges_read(cur.fetchone())


def usable(cur, vertex_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """{vertex: (walking may snap to it, accessible may)} in this snapshot."""
    cur.execute(USABLE, {"ids": vertex_ids, "not_accessible": list(NOT_ACCESSIBLE)})
    return {int(v): (bool(w), bool(a)) for v, w, a in cur.fetchall()}


def load(cur) -> GeometryRead:
    """Every edge's drawing and every usable vertex with the graph version they belong to."""
    from indoor.queries.versions import versions

    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET LOCAL work_mem = '64MB'")
    found = versions(cur)
    cur.execute(EDGES, {"not_accessible": list(NOT_ACCESSIBLE)})
    packed, kinds, coordinates = cur.fetchone()
    cur.execute(VERTICES)
    vertices, levels = cur.fetchone()
    cur.execute(CAN_FOLLOW)
    (can_follow,) = cur.fetchone()
    return GeometryRead(
        graph_key=found["graph_key"],
        edges=records(packed, EDGE_RECORD),
        kinds=list(kinds or []),
        coordinates=coordinates or "",
        vertices=records(vertices, VERTEX_RECORD),
        levels=list(levels or []),
        can_follow=bool(can_follow),
    )
