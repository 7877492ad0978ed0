"""The whole network in one read, for the in-memory route index (indoor/routing/index.py).

Every edge and every vertex is packed by PostgreSQL into one bytea each (fixed-width big-endian
records), so a 400,000-edge network crosses as two values that numpy reads without a Python
object per row: the worker's event loop is not held by a row-by-row fetch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indoor.queries.routing import NOT_ACCESSIBLE
from indoor.queries.versions import versions

# One record per edge: id, source, target, cost, reverse_cost (as pgRouting reads them) and
# whether the accessible profile may take it (kind NOT IN (...) is NULL for a NULL kind: such an
# edge is left out of the accessible edges query, so it is not accessible here either). A row with
# a NULL in any of them makes its record NULL: `complete` counts those that are not. In id order,
# so that an edit that moves rows leaves the same edges in the same places.
EDGES = """
SELECT count(*), count(r), string_agg(r, ''::bytea ORDER BY id, source, target)
  FROM (SELECT id, source, target, int8send(id::bigint) || int8send(source::bigint) || int8send(target::bigint)
               || float8send(cost::float8) || float8send(reverse_cost::float8)
               || CASE WHEN coalesce(kind <> ALL(%(not_accessible)s::text[]), false)
                       THEN '\\x01'::bytea ELSE '\\x00'::bytea END AS r
          FROM nav_edges_final) e
"""

# Vertex positions: only the index's cell order uses them (a better order, a faster search);
# a vertex missing here stands at 0,0 and is still routed exactly.
VERTICES = """
SELECT string_agg(int8send(id::bigint) || float8send(ST_X(the_geom)) || float8send(ST_Y(the_geom)), ''::bytea)
  FROM nav_edges_work_vertices_pgr
 WHERE the_geom IS NOT NULL
"""

EDGE_RECORD = np.dtype([("id", ">i8"), ("source", ">i8"), ("target", ">i8"), ("cost", ">f8"),
                        ("reverse_cost", ">f8"), ("accessible", "u1")])  # fmt: skip
VERTEX_RECORD = np.dtype([("id", ">i8"), ("lon", ">f8"), ("lat", ">f8")])


@dataclass(frozen=True)
class GraphArrays:
    """One graph version, as read in one snapshot."""

    graph_key: str
    edges: np.ndarray  # EDGE_RECORD
    vertices: np.ndarray  # VERTEX_RECORD
    complete: bool  # False: some edge has a NULL id, end or cost (the index is not used)


def _records(value, dtype) -> np.ndarray:
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
        edges=_records(packed, EDGE_RECORD),
        vertices=_records(vertices, VERTEX_RECORD),
        complete=total == complete,
    )
