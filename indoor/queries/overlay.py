"""The route overlay: precomputed shortcuts that let pgRouting cross a campus exactly in a few ms.

pgRouting loads every edge it is given (about 2 us an edge) and searches fast, so a route is
as quick as the graph it is handed is small. The overlay partitions the vertices into cells
(one floor of one building, as a rule) and stores, for every cell, the shortest path between
each pair of its boundary vertices (ends of an edge that leaves the cell) using only the
cell's own edges. A route from cell A to cell B then hands pgRouting:

- every edge inside A and inside B (the ends can be anywhere in their cells),
- every edge between cells (stairs, escalators, elevators, ramps: always few),
- for every other cell, its shortcuts instead of its edges.

This is exact: any path splits into runs inside one cell joined by edges between cells; a run
inside a cell other than A and B goes from a boundary vertex to a boundary vertex, so a
shortcut is never longer than it. pgRouting's answer, with each shortcut unpacked into the
edges it stands for, is a shortest path of the whole graph.

Cells are the connected components of same-level corridors and doors (stairs, escalators,
elevators and ramps always join cells); a component of more than `max_vertices` vertices is
split spatially (k-means). Any partition is exact; this one keeps boundaries small. Edges of
kind stairs or escalator never lie inside a cell, so one overlay serves both profiles.

The overlay is a copy of one graph version: `indoor_route_overlay.graph_key` names it, and a
route reads it in the same snapshot as the versions, so it is used only while it is the
current graph. Building it takes one transaction on the primary (a few seconds for 300,000
edges); readers never wait for it (DELETE and INSERT, no TRUNCATE), and it never waits long for
another client's lock: `lock_timeout` (SET LOCAL, so through pgbouncer too) makes it give up,
and the next route that finds the overlay stale asks again.

The same build stores the network's connected components per profile, ignoring direction
(`indoor_route_components`, keyed by the graph key): a route between two components is
answered at once, without a search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg2 import sql

from indoor.queries.validity import EDGES as USABLE_EDGES
from indoor.queries.validity import VERTICES, is_open_sql, open_cost_sql
from indoor.queries.versions import versions

# One builder at a time across workers and hosts; transaction-scoped (works through pgbouncer).
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('indoor.route_overlay'))"

BUILD_SNAPSHOT = """
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SET LOCAL jit = off;
SELECT set_config('lock_timeout', %(lock_timeout_ms)s, true)
"""

# The overlay's graph (NULL when that graph's components are missing: an overlay built by an
# older release), and whether the last build is too recent to build again: builds start at
# least `min_s` apart, and wait four times as long as the last one took after it ended.
STATE = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM indoor_route_components c WHERE c.graph_key = o.graph_key)
            THEN o.graph_key END,
       clock_timestamp() < built_at + make_interval(secs => greatest(%(min_s)s, build_ms / 1000.0 * 5))
  FROM indoor_route_overlay o
 WHERE id = 1
"""

# Same-level corridors and doors, open at least one way: what cells are made of (stairs,
# escalators, elevators and ramps carry people between floors or buildings: they join cells).
# Open means a finite cost >= 0 (queries/validity.py: NaN and Infinity are closed).
CELL_EDGES = f"""
SELECT e.id, e.source, e.target, 1::float8 AS cost, 1::float8 AS reverse_cost
  FROM {USABLE_EDGES} e
  JOIN {VERTICES} a ON a.id = e.source
  JOIN {VERTICES} b ON b.id = e.target
 WHERE a.level = b.level
   AND e.kind NOT IN ('stairs', 'escalator', 'elevator', 'ramp')
   AND {is_open_sql("e")}
"""  # noqa: S608 - constant fragments

CLEAR = [
    "DELETE FROM indoor_route_shortcuts",
    "DELETE FROM indoor_route_edges",
    "DELETE FROM indoor_route_cells",
]

# A cell's id is its smallest vertex id (pgr_connectedComponents names components so too).
CELLS = "INSERT INTO indoor_route_cells (vertex, cell) SELECT node, component FROM pgr_connectedComponents(%(edges)s)"

# Components too big to be loaded whole by a route are cut in k spatial parts.
SPLIT_BIG_CELLS = f"""
WITH big AS (
    SELECT cell, ceil(count(*)::float8 / %(max_vertices)s)::int AS parts
      FROM indoor_route_cells GROUP BY cell HAVING count(*) > %(max_vertices)s
), assigned AS (
    SELECT c.vertex, c.cell, ST_ClusterKMeans(v.the_geom, big.parts) OVER (PARTITION BY c.cell) AS part
      FROM indoor_route_cells c
      JOIN big USING (cell)
      JOIN {VERTICES} v ON v.id = c.vertex
), named AS (
    SELECT vertex, min(vertex) OVER (PARTITION BY cell, part) AS cell FROM assigned
)
UPDATE indoor_route_cells c SET cell = named.cell FROM named WHERE c.vertex = named.vertex AND c.cell <> named.cell
"""  # noqa: S608 - constant fragments; values are parameters

# Every edge, with its cell when both ends are in it (and it is no stair or escalator, so the
# shortcuts serve the accessible profile too); NULL for an edge between cells. Costs are copied
# as routes read them: NULL, NaN and Infinity become -1 (closed).
EDGES = f"""
INSERT INTO indoor_route_edges (id, source, target, cost, reverse_cost, kind, cell)
SELECT e.id, e.source, e.target, {open_cost_sql("e.cost")}, {open_cost_sql("e.reverse_cost")}, e.kind,
       CASE WHEN a.cell = b.cell AND e.kind NOT IN ('stairs', 'escalator') THEN a.cell END
  FROM {USABLE_EDGES} e
  LEFT JOIN indoor_route_cells a ON a.vertex = e.source
  LEFT JOIN indoor_route_cells b ON b.vertex = e.target
"""  # noqa: S608 - constant fragments

# Boundary vertices: the ends of edges between cells, with their cells.
BOUNDARY = """
SELECT DISTINCT c.cell, c.vertex
  FROM (SELECT source AS vertex FROM indoor_route_edges WHERE cell IS NULL
        UNION SELECT target FROM indoor_route_edges WHERE cell IS NULL) x
  JOIN indoor_route_cells c USING (vertex)
"""

# A cell with too many boundary vertices would need too many shortcuts (their square): it is
# dissolved, its vertices in no cell and its edges between cells (always loaded: slower
# routes, never wrong ones).
DISSOLVE_CROWDED = """
WITH crowded AS (
    SELECT cell FROM ({boundary}) b GROUP BY cell HAVING count(*) > %(max_boundary)s
), uncelled AS (
    DELETE FROM indoor_route_cells WHERE cell IN (SELECT cell FROM crowded) RETURNING 1
), dissolved AS (
    UPDATE indoor_route_edges SET cell = NULL WHERE cell IN (SELECT cell FROM crowded) RETURNING 1
)
SELECT (SELECT count(*) FROM crowded), (SELECT count(*) FROM uncelled), (SELECT count(*) FROM dissolved)
"""

# Shortest paths between the boundary vertices of each cell over that cell's own edges: one
# pgr_dijkstra for all cells (cells share no edge, so each search stays in its cell), each
# path kept as the vertices, edges and costs it unpacks into. Ids from -2 down: pgRouting's
# -1 marks the end of a path.
SHORTCUTS = """
INSERT INTO indoor_route_shortcuts (id, cell, source, target, cost, nodes, edges, costs)
SELECT -1 - row_number() OVER (ORDER BY p.start_vid, p.end_vid), c.cell, p.start_vid, p.end_vid,
       p.cost, p.nodes, p.edges, p.costs
  FROM (SELECT start_vid, end_vid, sum(cost) AS cost,
               array_agg(node ORDER BY path_seq) AS nodes,
               array_agg(edge ORDER BY path_seq) AS edges,
               array_agg(cost ORDER BY path_seq) AS costs
          FROM pgr_dijkstra(%(edges)s, %(pairs)s, true)
         WHERE edge >= 0
         GROUP BY start_vid, end_vid) p
  JOIN indoor_route_cells c ON c.vertex = p.start_vid
"""

INNER_EDGES = "SELECT id, source, target, cost, reverse_cost FROM indoor_route_edges WHERE cell IS NOT NULL"

PAIRS = """
WITH b AS ({boundary})
SELECT x.vertex AS source, y.vertex AS target FROM b x JOIN b y ON x.cell = y.cell AND x.vertex <> y.vertex
"""

COUNTS = """
SELECT (SELECT count(*) FROM indoor_route_edges),
       (SELECT count(DISTINCT cell) FROM indoor_route_cells),
       (SELECT count(*) FROM indoor_route_edges WHERE cell IS NULL),
       (SELECT count(*) FROM ({boundary}) b),
       (SELECT count(*) FROM indoor_route_shortcuts),
       (SELECT coalesce(sum(cardinality(edges)), 0) FROM indoor_route_shortcuts)
"""

SAVE_STATE = """
INSERT INTO indoor_route_overlay (id, graph_key, built_at, build_ms, edges, cells, edges_between_cells,
                                  boundary_vertices, shortcuts)
VALUES (1, %(graph_key)s, now(), %(build_ms)s, %(edges)s, %(cells)s, %(between)s, %(boundary)s, %(shortcuts)s)
ON CONFLICT (id) DO UPDATE SET graph_key = EXCLUDED.graph_key, built_at = EXCLUDED.built_at,
    build_ms = EXCLUDED.build_ms, edges = EXCLUDED.edges, cells = EXCLUDED.cells,
    edges_between_cells = EXCLUDED.edges_between_cells, boundary_vertices = EXCLUDED.boundary_vertices,
    shortcuts = EXCLUDED.shortcuts
"""

ANALYZE = [
    "ANALYZE indoor_route_cells",
    "ANALYZE indoor_route_edges",
    "ANALYZE indoor_route_shortcuts",
    "ANALYZE indoor_route_components",
]

# Components of the graph as the search sees it, with every edge both ways: an edge open at least
# one way (queries/validity.py, as every search reads costs) that the profile may use.
COMPONENT_EDGES = f"""
SELECT e.id, e.source, e.target, 1::float8 AS cost, 1::float8 AS reverse_cost
  FROM {USABLE_EDGES} e
 WHERE {is_open_sql("e")}
   AND NOT (%(accessible)s AND e.kind IN ('stairs', 'escalator'))
"""  # noqa: S608 - constant fragments; values are parameters

CLEAR_COMPONENTS = "DELETE FROM indoor_route_components"

COMPONENTS = """
INSERT INTO indoor_route_components (graph_key, profile, vertex, component)
SELECT %(graph_key)s, %(profile)s, node, component FROM pgr_connectedComponents(%(edges)s)
"""


@dataclass(frozen=True)
class Built:
    graph_key: str
    build_ms: float
    edges: int
    cells: int
    edges_between_cells: int
    boundary_vertices: int
    shortcuts: int
    shortcut_edges: int
    dissolved_cells: int


def build(
    cur,
    *,
    max_vertices: int,
    max_boundary: int,
    force: bool = False,
    min_interval_s: float | None = None,
    lock_timeout_ms: int = 0,
) -> Built | str:
    """Rebuild the overlay and the components for the graph this transaction sees; the caller
    commits.

    Returns "busy" when another builder holds the lock, "fresh" when the overlay already is the
    current graph's (unless `force`), "recent" when `min_interval_s` is given and the last
    build is too recent (see STATE), else what was built. Must be the transaction's first
    statement (it sets the isolation level). With `lock_timeout_ms`, a lock another client holds
    longer than that raises psycopg2.errors.LockNotAvailable (0: wait as long as it takes).
    """
    started = time.perf_counter()
    cur.execute(BUILD_SNAPSHOT, {"lock_timeout_ms": str(max(int(lock_timeout_ms), 0))})
    cur.execute(TRY_LOCK)
    if not cur.fetchone()[0]:
        return "busy"
    graph_key = versions(cur)["graph_key"]
    cur.execute(STATE, {"min_s": float(min_interval_s or 0.0)})
    row = cur.fetchone()
    if row and row[0] == graph_key and not force:
        return "fresh"
    if row and row[1] and min_interval_s is not None and not force:
        return "recent"
    for statement in CLEAR:
        cur.execute(statement)
    cur.execute(CELLS, {"edges": CELL_EDGES})
    cur.execute(SPLIT_BIG_CELLS, {"max_vertices": max(int(max_vertices), 1)})
    cur.execute(EDGES)
    cur.execute(sql.SQL(DISSOLVE_CROWDED).format(boundary=sql.SQL(BOUNDARY)), {"max_boundary": int(max_boundary)})
    dissolved_cells = int(cur.fetchone()[0])
    cur.execute(SHORTCUTS, {"edges": INNER_EDGES, "pairs": PAIRS.format(boundary=BOUNDARY)})
    cur.execute(CLEAR_COMPONENTS)
    for profile in ("walking", "accessible"):
        edges = cur.mogrify(COMPONENT_EDGES, {"accessible": profile == "accessible"}).decode()
        cur.execute(COMPONENTS, {"graph_key": graph_key, "profile": profile, "edges": edges})
    for statement in ANALYZE:
        cur.execute(statement)
    cur.execute(COUNTS.format(boundary=BOUNDARY))
    edges, cells, between, boundary, shortcuts, shortcut_edges = (int(x) for x in cur.fetchone())
    build_ms = (time.perf_counter() - started) * 1000
    cur.execute(
        SAVE_STATE,
        {
            "graph_key": graph_key,
            "build_ms": round(build_ms, 1),
            "edges": edges,
            "cells": cells,
            "between": between,
            "boundary": boundary,
            "shortcuts": shortcuts,
        },
    )
    return Built(graph_key, build_ms, edges, cells, between, boundary, shortcuts, shortcut_edges, dissolved_cells)


# -- at route time ------------------------------------------------------------------------

# A database whose init-db predates the overlay has none of its tables: routes use windows.
TABLES_EXIST = """
SELECT to_regclass('indoor_route_overlay') IS NOT NULL AND to_regclass('indoor_route_cells') IS NOT NULL
   AND to_regclass('indoor_route_edges') IS NOT NULL AND to_regclass('indoor_route_shortcuts') IS NOT NULL
   AND to_regclass('indoor_route_components') IS NOT NULL
"""


def tables_exist(cur) -> bool:
    cur.execute(TABLES_EXIST)
    return bool(cur.fetchone()[0])


# Whether the overlay is the graph of this snapshot, whether it is worth using (every route
# through it loads all the shortcuts and edges between cells: on a small or finely cut network
# that can be more than a window, or the whole graph), and the two vertices' cells (NULL: the
# vertex lies in no cell, all its edges are between cells).
CELLS_OF = """
SELECT o.graph_key,
       o.shortcuts + o.edges_between_cells <= %(max_share)s * o.edges,
       (SELECT cell FROM indoor_route_cells WHERE vertex = %(source)s),
       (SELECT cell FROM indoor_route_cells WHERE vertex = %(target)s)
  FROM indoor_route_overlay o
 WHERE o.id = 1
"""

UNPACK = "SELECT id, nodes, edges, costs FROM indoor_route_shortcuts WHERE id = ANY(%(ids)s)"


@dataclass(frozen=True)
class Cells:
    current: bool  # built for this snapshot's graph
    useful: bool  # small enough against the graph to be worth it
    source: int | None
    target: int | None


# The components of some vertices for a graph and a profile (no row: not computed for that graph).
COMPONENTS_OF = """
SELECT vertex, component FROM indoor_route_components
 WHERE graph_key = %(graph_key)s AND profile = %(profile)s AND vertex = ANY(%(vertices)s::bigint[])
"""


def components(cur, graph_key: str, profile: str, vertices: list[int]) -> dict[int, int]:
    """{vertex: component} of that graph for those of `vertices` it has (none: not built yet)."""
    cur.execute(COMPONENTS_OF, {"graph_key": graph_key, "profile": profile, "vertices": list(vertices)})
    return {int(v): int(c) for v, c in cur.fetchall()}


def connected(cur, graph_key: str, profile: str, source_vertex: int, target_vertex: int) -> bool | None:
    """False when the two vertices are in different components of that graph (no path, whatever
    the directions); True when in the same one (a path may exist); None when unknown (the
    components of that graph are not built yet)."""
    found = components(cur, graph_key, profile, [source_vertex, target_vertex])
    if source_vertex not in found or target_vertex not in found:
        return None
    return found[source_vertex] == found[target_vertex]


def cells_of(cur, source_vertex: int, target_vertex: int, graph_key: str, max_share: float) -> Cells | None:
    """The overlay's state and the cells of two vertices; None when there is no overlay."""
    cur.execute(CELLS_OF, {"source": source_vertex, "target": target_vertex, "max_share": max_share})
    row = cur.fetchone()
    if row is None:
        return None
    return Cells(row[0] == graph_key, bool(row[1]), row[2], row[3])


def edges_sql(cur, cells: Cells, not_allowed: tuple[str, ...]) -> str:
    """What pgRouting gets: the two cells' edges, the edges between cells (but those of a kind
    in `not_allowed`), every other cell's shortcuts (one way each: a shortcut is directed)."""
    ends = sorted({c for c in (cells.source, cells.target) if c is not None})
    ends_array = sql.SQL("ARRAY[{}]::bigint[]").format(sql.SQL(", ").join(sql.Literal(c) for c in ends))
    between = sql.SQL("cell IS NULL")
    if not_allowed:
        between += sql.SQL(" AND kind NOT IN ({})").format(sql.SQL(", ").join(sql.Literal(k) for k in not_allowed))
    query = sql.SQL(
        "SELECT id, source, target, cost, reverse_cost FROM indoor_route_edges WHERE cell = ANY({ends})"
        " UNION ALL SELECT id, source, target, cost, reverse_cost FROM indoor_route_edges WHERE {between}"
        " UNION ALL SELECT id, source, target, cost, -1::float8 FROM indoor_route_shortcuts"
        " WHERE cell <> ALL({ends})"
    ).format(ends=ends_array, between=between)
    return query.as_string(cur)


def unpack(cur, rows: list[tuple]) -> list[tuple]:
    """pgr_dijkstra's (node, edge, cost) rows with every shortcut replaced by its edges."""
    ids = sorted({edge for _, edge, _ in rows if edge < -1})
    if not ids:
        return rows
    cur.execute(UNPACK, {"ids": ids})
    paths = {row[0]: list(zip(row[1], row[2], row[3], strict=True)) for row in cur.fetchall()}
    out = []
    for node, edge, cost in rows:
        if edge < -1:
            out.extend(paths[edge])
        else:
            out.append((node, edge, cost))
    return out
