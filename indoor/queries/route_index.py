"""The whole network in one read, for the in-memory route index (indoor/routing/index.py).

Every edge and every vertex is packed by PostgreSQL into one bytea each (fixed-width big-endian
records), so a 400,000-edge network crosses as two values that numpy reads without a Python
object per row: the worker's event loop is not held by a row-by-row fetch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indoor.queries import validity
from indoor.queries.routing import NOT_ACCESSIBLE
from indoor.queries.versions import versions

# One record per edge: id, source, target, cost, reverse_cost (as pgRouting reads them) and
# whether the accessible profile may take it (kind NOT IN (...) is NULL for a NULL kind: such an
# edge is left out of the accessible edges query, so it is not accessible here either). A row with
# a NULL in any of them makes its record NULL: `complete` counts those that are not. In id order,
# so that an edit that moves rows leaves the same edges in the same places.
EDGES = f"""
SELECT count(*), count(r), string_agg(r, ''::bytea ORDER BY id, source, target)
  FROM (SELECT id, source, target, int8send(id::bigint) || int8send(source::bigint) || int8send(target::bigint)
               || float8send(cost::float8) || float8send(reverse_cost::float8)
               || CASE WHEN coalesce(kind <> ALL(%(not_accessible)s::text[]), false)
                       THEN '\\x01'::bytea ELSE '\\x00'::bytea END AS r
          FROM {validity.EDGES} k) e
"""  # noqa: S608 - constant fragments; values are parameters

# Vertex positions and levels: only the index's vertex order uses them (a better order, a faster
# search); a vertex missing here stands at the first one's place and is still routed exactly.
VERTICES = f"""
SELECT string_agg(int8send(id::bigint) || float8send(ST_X(the_geom)) || float8send(ST_Y(the_geom))
                  || float8send(coalesce(level, 0)::float8), ''::bytea)
  FROM {validity.VERTICES} v
 WHERE the_geom IS NOT NULL
"""  # noqa: S608 - constant fragments

EDGE_RECORD = np.dtype([("id", ">i8"), ("source", ">i8"), ("target", ">i8"), ("cost", ">f8"),
                        ("reverse_cost", ">f8"), ("accessible", "u1")])  # fmt: skip
VERTEX_RECORD = np.dtype([("id", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("level", ">f8")])


@dataclass(frozen=True)
class GraphArrays:
    """One graph version, as read in one snapshot."""

    graph_key: str
    edges: np.ndarray  # EDGE_RECORD
    vertices: np.ndarray  # VERTEX_RECORD
    complete: bool  # False: some edge has a NULL id, end or cost (the index is not used)


def records(value, dtype) -> np.ndarray:
    """Fixed-width records packed by PostgreSQL into one bytea, as a numpy array (no row objects)."""
    return np.frombuffer(bytes(value), dtype=dtype) if value is not None else np.zeros(0, dtype=dtype)


def load(cur) -> GraphArrays:
    """Every edge and vertex with the graph version they belong to, in one snapshot."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    found = versions(cur)
    cur.execute(EDGES, {"not_accessible": list(NOT_ACCESSIBLE)})
    total, complete, packed = cur.fetchone()
    cur.execute(VERTICES)
    (vertices,) = cur.fetchone()
    return GraphArrays(
        graph_key=found["graph_key"],
        edges=records(packed, EDGE_RECORD),
        vertices=records(vertices, VERTEX_RECORD),
        complete=total == complete,
    )


# The edges changed after version `since` up to this snapshot's `until`: complete only when the
# log holds `since` with the time of the key the index was built for (the same history) and
# every version after it (a log that began later, or was pruned, makes the index read the graph
# whole); `everything` when some statement changed too many edges to list.
CHANGES = """
SELECT count(DISTINCT c.version) FILTER (WHERE c.version > %(since)s) = %(until)s - %(since)s
       AND coalesce(bool_or(c.version = %(since)s
                            AND (extract(epoch FROM c.changed_at) * 1000000)::bigint = %(since_stamp)s), false),
       coalesce(bool_or(c.edge_ids IS NULL) FILTER (WHERE c.version > %(since)s), false),
       coalesce(array_agg(DISTINCT e.id) FILTER (WHERE e.id IS NOT NULL AND c.version > %(since)s), '{}')
  FROM indoor_graph_changes c
  LEFT JOIN LATERAL unnest(c.edge_ids) AS e(id) ON true
 WHERE c.version >= %(since)s AND c.version <= %(until)s
"""

CHANGED_EDGES = f"""
SELECT id, source, target, cost, reverse_cost, coalesce(kind <> ALL(%(not_accessible)s::text[]), false)
  FROM {validity.EDGES} e
 WHERE id = ANY(%(ids)s::bigint[])
"""  # noqa: S608 - constant fragments; values are parameters

HAS_CHANGES = "SELECT to_regclass('indoor_graph_changes') IS NOT NULL"


def key_order(graph_key: str) -> tuple[int, int]:
    """Graph keys in the order their versions were made (by the time of the bump: a database
    re-created under the same name counts from 1 again, later)."""
    version, stamp = _version_and_stamp(graph_key)
    return (stamp or 0, version)


def _version_and_stamp(graph_key: str) -> tuple[int, int | None]:
    version, _, stamp = graph_key.partition("-")
    return int(version), int(stamp) if stamp else None


@dataclass(frozen=True)
class Changes:
    complete: bool  # every version in between is logged and listed
    edge_ids: list[int]
    rows: list[tuple]  # (id, source, target, cost, reverse_cost, accessible) of those still there


def has_changes(cur) -> bool:
    cur.execute(HAS_CHANGES)
    return bool(cur.fetchone()[0])


def changes(cur, since: str, until: str, max_edges: int) -> Changes:
    """What the graph versions after key `since` up to key `until` changed, in this snapshot; at
    most `max_edges` edges are read (more: not complete)."""
    (since_version, since_stamp), (until_version, _) = (_version_and_stamp(k) for k in (since, until))
    if since_stamp is None or until_version <= since_version:
        return Changes(False, [], [])
    cur.execute(CHANGES, {"since": since_version, "until": until_version, "since_stamp": since_stamp})
    logged, everything, ids = cur.fetchone()
    if not logged or everything or len(ids) > max_edges:
        return Changes(False, [], [])
    rows = []
    if ids:
        cur.execute(CHANGED_EDGES, {"ids": ids, "not_accessible": list(NOT_ACCESSIBLE)})
        rows = cur.fetchall()
    return Changes(True, [int(i) for i in ids], rows)
