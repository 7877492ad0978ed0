"""The routing references: room pairs, snapping as the API does, full-graph pgr_dijkstra, scipy."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from psycopg2.extras import execute_values

from bench.client import Http

# The whole network, as pgRouting reads it with no search window (the reference the API must beat).
EDGES_SQL = {
    "walking": "SELECT id, source, target, cost, reverse_cost FROM nav_edges_final",
    "accessible": (
        "SELECT id, source, target, cost, reverse_cost FROM nav_edges_final WHERE kind NOT IN ('stairs', 'escalator')"
    ),
}

ROOMS = "SELECT ogc_fid, level, building FROM room_points ORDER BY ogc_fid"

# A place snaps to the nearest vertex on its level (KNN <->), as API.md says; the connector is the
# straight line from the room point to that vertex, in geodesic metres.
SNAP = """
SELECT r.ogc_fid, v.id, ST_Distance(r.wkb_geometry::geography, v.the_geom::geography)
  FROM room_points r
 CROSS JOIN LATERAL (SELECT w.id, w.the_geom FROM nav_edges_work_vertices_pgr w
                      WHERE w.level = r.level
                      ORDER BY w.the_geom <-> r.wkb_geometry LIMIT 1) v
 WHERE r.ogc_fid = ANY(%s)
"""

# The tag keeps the reference's own statements out of the service's pg_stat_statements share.
REFERENCE_ONE = "/* bench-reference */ SELECT coalesce(sum(cost), 0), count(*) FROM pgr_dijkstra(%s, %s, %s)"

PAIRS_TABLE = "CREATE TEMP TABLE IF NOT EXISTS bench_pairs (source bigint, target bigint, profile text)"
REFERENCE_ALL = """/* bench-reference */
SELECT start_vid, end_vid, agg_cost
  FROM pgr_dijkstraCost(%s, format('SELECT source, target FROM bench_pairs WHERE profile = %%L', %s::text))
"""

# Top-level statements that call a pgRouting function, minus the reference's own (its own role:
# a tag in a comment would not do, pg_stat_statements merges statements that differ only there).
PGR_STATEMENTS = r"""
SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0)
  FROM pg_stat_statements
 WHERE toplevel AND query ~* 'pgr_[a-z_]+\s*\('
   AND userid <> (SELECT oid FROM pg_roles WHERE rolname = %s)
"""


@dataclass
class Pair:
    source_room: int
    target_room: int
    profile: str
    source_level: float
    target_level: float
    source_building: str | None
    target_building: str | None

    @property
    def cross_level(self) -> bool:
        return self.source_level != self.target_level

    @property
    def cross_building(self) -> bool:
        return self.source_building != self.target_building

    def path(self) -> str:
        suffix = "" if self.profile == "walking" else f"&profile={self.profile}"
        return f"/api/route/?from={self.source_room}&to={self.target_room}{suffix}"


def sample_pairs(cur, n: int, seed: int, accessible_every: int) -> list[Pair]:
    cur.execute(ROOMS)
    rooms = cur.fetchall()
    rnd = random.Random(seed)
    pairs, seen = [], set()
    while len(pairs) < n and len(seen) < len(rooms) ** 2:
        a, b = rnd.choice(rooms), rnd.choice(rooms)
        profile = "accessible" if accessible_every and (len(pairs) + 1) % accessible_every == 0 else "walking"
        key = (a[0], b[0], profile)
        if a[0] == b[0] or key in seen:
            continue
        seen.add(key)
        pairs.append(Pair(a[0], b[0], profile, float(a[1]), float(b[1]), a[2], b[2]))
    return pairs


def snap(cur, room_ids) -> dict[int, tuple[int, float]]:
    cur.execute(SNAP, (sorted(set(room_ids)),))
    return {room: (vertex, float(connector)) for room, vertex, connector in cur.fetchall()}


def end_to_end(pair: Pair, snaps: dict, path_cost: float | None) -> float | None:
    """What the API's route.distance_m must be: connector + network path + connector."""
    if path_cost is None:
        return None
    (_, c1), (_, c2) = snaps[pair.source_room], snaps[pair.target_room]
    return c1 + path_cost + c2


def reference_one(cur, pair: Pair, snaps: dict) -> tuple[float | None, float]:
    """Full-graph pgr_dijkstra for one pair, timed at the client over the bench's one connection."""
    s, t = snaps[pair.source_room][0], snaps[pair.target_room][0]
    started = time.perf_counter()
    cur.execute(REFERENCE_ONE, (EDGES_SQL[pair.profile], s, t))
    cost, hops = cur.fetchone()
    elapsed = time.perf_counter() - started
    if s == t:
        return 0.0, elapsed
    return (float(cost) if hops else None), elapsed


def reference_all(cur, pairs: list[Pair], snaps: dict) -> tuple[dict[int, float | None], float]:
    """Full-graph path costs for every pair: one pgr_dijkstraCost per profile (one graph load each)."""
    started = time.perf_counter()
    cur.execute(PAIRS_TABLE)
    cur.execute("TRUNCATE bench_pairs")
    execute_values(
        cur,
        "INSERT INTO bench_pairs (source, target, profile) VALUES %s",
        [(snaps[p.source_room][0], snaps[p.target_room][0], p.profile) for p in pairs],
    )
    costs: dict[tuple[int, int, str], float] = {}
    for profile in sorted({p.profile for p in pairs}):
        cur.execute(REFERENCE_ALL, (EDGES_SQL[profile], profile))
        for s, t, cost in cur.fetchall():
            costs[(s, t, profile)] = float(cost)
    out = {}
    for i, p in enumerate(pairs):
        s, t = snaps[p.source_room][0], snaps[p.target_room][0]
        out[i] = 0.0 if s == t else costs.get((s, t, p.profile))
    return out, time.perf_counter() - started


def reset_statement_stats(cur) -> None:
    cur.execute("SELECT pg_stat_statements_reset()")


def pgr_statement_time(cur, reference_role: str) -> tuple[float, int]:
    """(seconds, calls) spent in the service's statements that call pgr_* since the last reset."""
    cur.execute(PGR_STATEMENTS, (reference_role,))
    total_ms, calls = cur.fetchone()
    return float(total_ms) / 1000.0, int(calls)


class InMemoryGraph:
    """The same network in a scipy CSR matrix: the physical floor for a shortest path here."""

    def __init__(self, cur):
        import numpy as np
        from scipy.sparse import csr_matrix

        started = time.perf_counter()
        cur.execute("SELECT source, target, cost, reverse_cost, kind FROM nav_edges_final")
        rows = cur.fetchall()
        src = np.array([r[0] for r in rows], dtype=np.int64)
        dst = np.array([r[1] for r in rows], dtype=np.int64)
        cost = np.array([r[2] for r in rows], dtype=np.float64)
        rcost = np.array([r[3] for r in rows], dtype=np.float64)
        stairs = np.array([r[4] in ("stairs", "escalator") for r in rows])
        self.ids = np.unique(np.concatenate([src, dst]))
        a, b = np.searchsorted(self.ids, src), np.searchsorted(self.ids, dst)
        n = len(self.ids)
        self.graphs = {}
        for profile, keep in (("walking", np.ones(len(rows), bool)), ("accessible", ~stairs)):
            rows_, cols, weights = [], [], []
            for u, v, w in ((a, b, cost), (b, a, rcost)):
                usable = keep & (w >= 0)
                rows_.append(u[usable])
                cols.append(v[usable])
                weights.append(w[usable])
            r, c, w = np.concatenate(rows_), np.concatenate(cols), np.concatenate(weights)
            # Parallel edges: keep the cheapest (a CSR build would add them up).
            order = np.lexsort((w, c, r))
            r, c, w = r[order], c[order], w[order]
            first = np.ones(len(r), bool)
            first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
            self.graphs[profile] = csr_matrix((w[first], (r[first], c[first])), shape=(n, n))
        self.load_s = time.perf_counter() - started
        self.np = np

    def shortest(self, profile: str, source_vertex: int, target_vertex: int) -> tuple[float | None, float]:
        from scipy.sparse.csgraph import dijkstra

        s = int(self.np.searchsorted(self.ids, source_vertex))
        t = int(self.np.searchsorted(self.ids, target_vertex))
        started = time.perf_counter()
        dist = dijkstra(self.graphs[profile], directed=True, indices=s)
        elapsed = time.perf_counter() - started
        d = float(dist[t])
        return (None if d == float("inf") else d), elapsed


def wait_for_index(base_url: str, server_log, rooms: list[int], workers: int, since: int = 0, timeout: float = 300):
    """Routes between random rooms (new pairs, so each is computed) until every worker logged its
    route index ready for the current graph (each builds it in the background after its first
    route), and at the start (`since` 0) its route geometry too (geometry.py: read once per
    machine, mapped by the others); the index's ready lines. Raises after `timeout` seconds."""
    rnd = random.Random(99)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = server_log.lines("route index ready")[since:]
        drawn = since > 0 or len(server_log.lines("route geometry ready")) >= workers
        if len(ready) >= workers and drawn:  # each worker logs once per graph version
            return ready
        a, b = rnd.sample(rooms, 2)
        Http(base_url).get(f"/api/route/?from={a}&to={b}&profile=accessible")  # a new connection: any worker
        time.sleep(0.05)
    raise RuntimeError(f"the route index was not ready on {workers} workers within {timeout:.0f} s")
