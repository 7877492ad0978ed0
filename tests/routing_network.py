"""Seeded random multi-level networks for the routing tests, written with plain SQL.

Levels 0, 1, 2 are jittered grids (some corridors missing, some diagonal, some one-way, a few
closed, a few drawn with a bend, a few doubled); a wall splits levels 0 and 1 with one gap each,
so neighbours across it must detour far (their best path leaves any small window). Stairs,
one-way escalators and an elevator join the levels; a mezzanine at 0.5 hangs off level 0 by
ramps; an attic (level 3) is reachable by stairs only; an island on level 0 is reachable from
nowhere. Every cost is computed in PostGIS as the geodesic length (vertex to vertex, or of the
bent line) plus a random extra that is often exactly 0, so DATA.md's invariant holds, tightly.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field

import networkx as nx
import psycopg2
from psycopg2.extras import execute_values

M_PER_DEG_LAT = 111_132.0
# room_points.category of the rooms R00, R01, ... in turn (None: no category); drawn from no
# random number, so the networks are what they were before categories.
CATEGORIES = ["toilets", None, "shop", None, None, "toilets", "Kiosk", None, None]


@dataclass
class Network:
    origin: tuple[float, float]
    vertices: dict = field(default_factory=dict)  # id -> (level, lon, lat)
    rooms: list = field(default_factory=list)  # (label, level, lon, lat, category)
    wall_pairs: list = field(default_factory=list)  # (vertex, vertex) neighbours across a wall
    attic: list = field(default_factory=list)
    island: list = field(default_factory=list)
    gadgets: list = field(default_factory=list)  # (a, b, apex): the best a-b path bends out to the apex


def network_database(pg_cluster, name: str, seed: int, origin: tuple[float, float], grid: int = 13):
    """A new database `name` with the schema (init-db) and a generated network: (url, network,
    an open connection to it)."""
    from tests.conftest import run_cli

    url = pg_cluster.create_database(f"{name}_{os.getpid()}")
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        net = build(cur, seed, origin, grid=grid)
    return url, net, conn


def build(cur, seed: int, origin: tuple[float, float], grid: int = 13, spacing: float = 12.0) -> Network:
    rnd = random.Random(seed)
    lon0, lat0 = origin
    m_per_deg_lon = 111_320.0 * math.cos(math.radians(lat0))
    net = Network(origin)
    vertices, edges = [], []

    def lonlat(x, y):
        return lon0 + x / m_per_deg_lon, lat0 + y / M_PER_DEG_LAT

    def vertex(level, x, y):
        vid = len(vertices) + 1
        lon, lat = lonlat(x, y)
        vertices.append((vid, level, lon, lat))
        net.vertices[vid] = (level, lon, lat)
        return vid

    def edge(a, b, kind, extra=(0.0, 0.0), closed=(False, False), bend=0.0, backwards=False):
        # extra: (absolute metres, relative share) added to the geodesic length, each direction.
        # backwards: the line is drawn from target to source (a common digitising slip).
        fwd, rev = _extra(rnd) if extra is None else (extra, extra)
        edges.append(
            (len(edges) + 1, a, b, kind, fwd[0], fwd[1], rev[0], rev[1], closed[0], closed[1], bend, backwards)
        )

    wall = grid // 2  # corridors between column wall-1 and wall are blocked ...
    gaps = {0: grid - 1, 1: 0}  # ... except in one row, per level
    nodes = {}
    for level in (0, 1, 2):
        for i in range(grid):
            for j in range(grid):
                jitter = (rnd.uniform(-3, 3), rnd.uniform(-3, 3))
                nodes[level, i, j] = vertex(level, i * spacing + jitter[0], j * spacing + jitter[1])
        for i in range(grid):
            for j in range(grid):
                for di, dj, share in ((1, 0, 0.92), (0, 1, 0.92), (1, 1, 0.12), (1, -1, 0.08)):
                    a, b = (level, i, j), (level, i + di, j + dj)
                    if b not in nodes or rnd.random() > share:
                        continue
                    if level in gaps and di and i == wall - 1 and not (dj == 0 and j == gaps[level]):
                        if level == 0 and j <= 2 and dj == 0:
                            net.wall_pairs.append((nodes[a], nodes[b]))
                        continue
                    roll = rnd.random()
                    closed = (False, True) if roll < 0.10 else (True, False) if roll < 0.13 else (False, False)
                    bend = rnd.uniform(1.0, 4.0) if rnd.random() < 0.1 else 0.0
                    backwards = rnd.random() < 0.03
                    edge(nodes[a], nodes[b], "corridor", extra=None, closed=closed, bend=bend, backwards=backwards)
                    if rnd.random() < 0.03:  # a parallel edge, cheaper or dearer
                        edge(nodes[b], nodes[a], "corridor", extra=None)
    # Between the levels.
    for level in (0, 1):
        up = level + 1
        for _ in range(3):
            i, j = rnd.randrange(grid), rnd.randrange(grid)
            edge(nodes[level, i, j], nodes[up, min(i + 1, grid - 1), j], "stairs", extra=(rnd.uniform(3, 8), 0.0))
        for direction in (0, 1):
            i, j = rnd.randrange(grid), rnd.randrange(grid)
            a, b = nodes[level, i, j], nodes[up, i, min(j + 1, grid - 1)]
            edge(*((a, b) if direction == 0 else (b, a)), "escalator", extra=(2.0, 0.0), closed=(False, True))
    ei, ej = rnd.randrange(1, grid - 1), rnd.randrange(1, grid - 1)
    cars = []
    for level in (0, 1, 2):
        car = vertex(level, ei * spacing + 1.5, ej * spacing + 1.5)
        edge(nodes[level, ei, ej], car, "door")
        if cars:
            edge(cars[-1], car, "elevator", extra=(rnd.uniform(5, 15), 0.0))
        cars.append(car)
    # Mezzanine 0.5 over the south-west corner: ramps from level 0, stairs on to level 1.
    mezz = {}
    for i in range(3):
        for j in range(3):
            mezz[i, j] = vertex(0.5, 20 + i * 9.0, 20 + j * 9.0)
    for i in range(3):
        for j in range(3):
            for di, dj in ((1, 0), (0, 1)):
                if (i + di, j + dj) in mezz:
                    edge(mezz[i, j], mezz[i + di, j + dj], "corridor", extra=None)
    edge(nodes[0, 1, 1], mezz[0, 0], "ramp", extra=(1.0, 0.0))
    edge(mezz[2, 2], nodes[0, 5, 5], "ramp", extra=(0.0, 0.0))
    edge(mezz[2, 0], nodes[1, 5, 2], "stairs", extra=(4.0, 0.0))
    # Attic (3): stairs only.
    attic = {}
    for i in range(3):
        for j in range(3):
            attic[i, j] = vertex(3, 40 + i * 8.0, 40 + j * 8.0)
            net.attic.append(attic[i, j])
    for i in range(3):
        for j in range(3):
            for di, dj in ((1, 0), (0, 1)):
                if (i + di, j + dj) in attic:
                    edge(attic[i, j], attic[i + di, j + dj], "corridor", extra=None)
    edge(nodes[2, 3, 3], attic[0, 0], "stairs", extra=(5.0, 0.0))
    # Island: level 0, far east, connected to nothing else.
    far = grid * spacing + 400.0
    island = [vertex(0, far + k * 10.0, 30.0) for k in range(4)]
    net.island = island
    for a, b in zip(island, island[1:], strict=False):
        edge(a, b, "corridor", extra=None)
    # Bends (level 2, east of the grid): from a to b, the straight corridor costs 2 m more than
    # the way out to an apex and back; every piece of that way costs exactly its geodesic length,
    # so the apex lies right on the ellipse of the optimal cost, and the two short corridors at
    # the apex touch nothing else: a window a little too small misses them.
    for k in range(12):
        length = rnd.uniform(20, 80)
        x0, y0 = grid * spacing + 60 + (k % 4) * 100, (k // 4) * 90.0
        share, height = rnd.uniform(0.2, 0.8), rnd.uniform(0.2, 0.7) * length * rnd.choice((-1, 1))
        ax, ay = x0 + share * length, y0 + height
        a, b = vertex(2, x0, y0), vertex(2, x0 + length, y0)
        near_a = vertex(2, x0 + 0.9 * (ax - x0), y0 + 0.9 * height)
        apex = vertex(2, ax, ay)
        near_b = vertex(2, ax + 0.1 * (x0 + length - ax), ay - 0.1 * height)
        via = math.hypot(share * length, height) + math.hypot((1 - share) * length, height)
        for u, v in ((a, near_a), (near_a, apex), (apex, near_b), (near_b, b)):
            edge(u, v, "corridor")
        edge(a, b, "corridor", extra=(via - length + 2.0, 0.0))
        net.gadgets.append((a, b, apex))
    # Rooms: most exactly on a vertex, some a few metres off.
    usable_levels = [(v, lv) for v, (lv, _, _) in net.vertices.items()]
    for k in range(45):
        vid, level = rnd.choice(usable_levels)
        _, lon, lat = net.vertices[vid]
        if k % 3 == 0:
            lon += rnd.uniform(-4, 4) / m_per_deg_lon
            lat += rnd.uniform(-4, 4) / M_PER_DEG_LAT
        net.rooms.append((f"R{k:02d}", level, lon, lat, CATEGORIES[k % len(CATEGORIES)]))
    # Categories only some can reach: the attic (stairs only), the island (from nowhere).
    net.rooms.append(("Attic room", 3, *net.vertices[attic[2, 2]][1:], "attic"))
    net.rooms.append(("Island room", 0, *net.vertices[island[-1]][1:], "island"))
    _write(cur, vertices, edges, net.rooms)
    return net


def _extra(rnd) -> tuple[tuple[float, float], tuple[float, float]]:
    def one():
        roll = rnd.random()
        if roll < 0.4:
            return (0.0, 0.0)  # exactly the geodesic length: the tight case for windows
        if roll < 0.8:
            return (0.0, rnd.uniform(0.0, 0.4))
        return (rnd.uniform(0.0, 30.0), 0.0)  # a slow corridor

    return one(), one()


def _write(cur, vertices, edges, rooms) -> None:
    cur.execute(
        "CREATE TEMP TABLE gen_edges (id bigint, source bigint, target bigint, kind text, fa float8,"
        " fr float8, ra float8, rr float8, fclosed bool, rclosed bool, bend float8, backwards bool) ON COMMIT DROP"
    )
    execute_values(
        cur,
        "INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom)"
        " SELECT v.id, v.level, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)"
        " FROM (VALUES %s) AS v(id, level, lon, lat)",
        vertices,
        template="(%s::bigint, %s::numeric, %s::float8, %s::float8)",
    )
    execute_values(cur, "INSERT INTO gen_edges VALUES %s", edges)
    # Geometry from source to target (a bend: a middle point pushed sideways); cost from PostGIS.
    cur.execute(
        """
        INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
        SELECT g.id, g.source, g.target,
               CASE WHEN g.fclosed THEN -1 ELSE len.m * (1 + g.fr) + g.fa END,
               CASE WHEN g.rclosed THEN -1 ELSE len.m * (1 + g.rr) + g.ra END,
               g.kind, CASE WHEN g.backwards THEN ST_Reverse(geom.line) ELSE geom.line END
          FROM gen_edges g
          JOIN nav_edges_work_vertices_pgr a ON a.id = g.source
          JOIN nav_edges_work_vertices_pgr b ON b.id = g.target
         CROSS JOIN LATERAL (
               SELECT CASE WHEN g.bend = 0 THEN ST_MakeLine(a.the_geom, b.the_geom)
                           ELSE ST_MakeLine(ARRAY[a.the_geom,
                                ST_Translate(ST_LineInterpolatePoint(ST_MakeLine(a.the_geom, b.the_geom), 0.5),
                                             g.bend / 70000.0, g.bend / 111000.0),
                                b.the_geom]) END AS line) geom
         CROSS JOIN LATERAL (SELECT ST_Length(geom.line::geography) AS m) len
        """
    )
    execute_values(
        cur,
        "INSERT INTO room_points (text, level, category, wkb_geometry)"
        " SELECT r.label, r.level, r.category, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)"
        " FROM (VALUES %s) AS r(label, level, lon, lat, category)",
        rooms,
        template="(%s, %s::numeric, %s::float8, %s::float8, %s::text)",
    )
    cur.execute("ANALYZE nav_edges_final; ANALYZE nav_edges_work_vertices_pgr; ANALYZE room_points")


def graphs(cur) -> dict[str, nx.DiGraph]:
    """The network read back from the database, as directed graphs per profile (min cost per pair)."""
    cur.execute("SELECT source, target, cost, reverse_cost, kind FROM nav_edges_final")
    result = {"walking": nx.DiGraph(), "accessible": nx.DiGraph()}
    for source, target, cost, reverse_cost, kind in cur.fetchall():
        for profile, graph in result.items():
            if profile == "accessible" and kind in ("stairs", "escalator"):
                continue
            for a, b, c in ((source, target, cost), (target, source, reverse_cost)):
                if c >= 0 and (not graph.has_edge(a, b) or graph[a][b]["weight"] > c):
                    graph.add_edge(a, b, weight=c)
    return result


# The snapping rule of API.md, by brute force: the geodesically nearest vertex on the level that
# has an open edge the profile may use (ties: smaller id), within ROUTE_MAX_SNAP_M.
EXPECTED_SNAP = """
SELECT v.id, ST_Distance(v.the_geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) AS d
  FROM nav_edges_work_vertices_pgr v
 WHERE v.level = %(level)s
   AND ST_Distance(v.the_geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography) <= %(max_m)s
   AND EXISTS (SELECT 1 FROM nav_edges_final e
                WHERE (e.source = v.id OR e.target = v.id) AND (e.cost >= 0 OR e.reverse_cost >= 0)
                  AND (%(profile)s = 'walking' OR e.kind NOT IN ('stairs', 'escalator')))
 ORDER BY d, v.id
 LIMIT 1
"""


def expected_snap(cur, lon, lat, level, profile, max_m=50.0):
    cur.execute(EXPECTED_SNAP, {"lon": lon, "lat": lat, "level": level, "profile": profile, "max_m": max_m})
    row = cur.fetchone()
    return (row[0], row[1]) if row else (None, None)
