"""The uncached route's fast path (indoor/routing/graph_arrays.py): the path's edges and the snap
from arrays held with the route index, and routes computed with no database read. Every answer
equals what the SQL reads give (PATH_EDGES, NEAREST_VERTEX) and networkx, on the seeded networks
and on rows another tool wrote badly; after an edit the new graph version's answers are exact."""

from __future__ import annotations

import logging
import random
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indoor.queries import routing as routing_queries
from indoor.routing import graph_arrays
from indoor.routing import index as route_index
from tests import routing_network
from tests.test_routes import _routes_equal_networkx, clear_route_cache, make_app, route

ORIGIN = (-43.1729, -22.9068)  # Rio de Janeiro: other seeds and places than the other routing tests
M_PER_DEG_LAT = 111_132.0

# Rows another tool wrote badly, on top of the seeded network: what the SQL reads read around.
LOOSE = [
    # What another tool's tables may allow that init-db's do not (tests/test_hostile_data.py).
    "ALTER TABLE nav_edges_final ALTER COLUMN wkb_geometry DROP NOT NULL",
    "ALTER TABLE nav_edges_final ALTER COLUMN wkb_geometry TYPE geometry USING wkb_geometry",
    "ALTER TABLE nav_edges_final ALTER COLUMN kind DROP NOT NULL",
    "ALTER TABLE nav_edges_work_vertices_pgr ALTER COLUMN the_geom DROP NOT NULL",
    "ALTER TABLE nav_edges_work_vertices_pgr ALTER COLUMN the_geom TYPE geometry USING the_geom",
]
HOSTILE = LOOSE + [
    # No geometry, an empty one, NaN coordinates: drawn straight between the vertices, or nothing.
    "UPDATE nav_edges_final SET wkb_geometry = NULL WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 3)",
    "UPDATE nav_edges_final SET wkb_geometry = 'SRID=4326;LINESTRING EMPTY'"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 3 OFFSET 3)",
    "UPDATE nav_edges_final SET wkb_geometry = ST_SetPoint(wkb_geometry, 0, ST_MakePoint('NaN', 1))"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 2 OFFSET 6)",
    # A line with Z, a multi-line, one drawn backwards, one with an integer coordinate.
    "UPDATE nav_edges_final SET wkb_geometry = ST_Force3D(wkb_geometry)"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 2 OFFSET 8)",
    "UPDATE nav_edges_final SET wkb_geometry = ST_Multi(wkb_geometry)"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 2 OFFSET 10)",
    "UPDATE nav_edges_final SET wkb_geometry = ST_Reverse(wkb_geometry)"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 4 OFFSET 12)",
    "UPDATE nav_edges_final SET wkb_geometry = ST_SetPoint(wkb_geometry, 0, ST_MakePoint(-43, ST_Y(ST_StartPoint(wkb_geometry))))"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 1 OFFSET 16)",
    # A NULL kind, a vertex row missing, a vertex without a position, a level beyond +-1000.
    "UPDATE nav_edges_final SET kind = NULL WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 3 OFFSET 20)",
    "DELETE FROM nav_edges_work_vertices_pgr WHERE id = (SELECT source FROM nav_edges_final ORDER BY id LIMIT 1 OFFSET 30)",
    "UPDATE nav_edges_work_vertices_pgr SET the_geom = NULL"
    " WHERE id = (SELECT target FROM nav_edges_final ORDER BY id LIMIT 1 OFFSET 40)",
    "UPDATE nav_edges_work_vertices_pgr SET level = 5000"
    " WHERE id = (SELECT target FROM nav_edges_final ORDER BY id LIMIT 1 OFFSET 50)",
    # Closed both ways (a NULL and a NaN cost read as closed): its vertices may stop being usable.
    "UPDATE nav_edges_final SET cost = -1, reverse_cost = -1"
    " WHERE id IN (SELECT id FROM nav_edges_final ORDER BY id LIMIT 5 OFFSET 60)",
]  # fmt: skip


@pytest.fixture(scope="module")
def network(pg_cluster):
    url, net, conn = routing_network.network_database(pg_cluster, "fast_path", 41, ORIGIN)
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
    conn.rollback()
    yield url, net, graphs, conn
    conn.close()


@pytest.fixture(scope="module")
def hostile(pg_cluster):
    url, net, conn = routing_network.network_database(pg_cluster, "fast_path_hostile", 43, ORIGIN, 9)
    with conn, conn.cursor() as cur:
        for statement in HOSTILE:
            cur.execute(statement)
    yield url, net, conn
    conn.close()


def _app(url, redis_url):
    return make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false")


def _built(app):
    with app.app_context():
        index = route_index.build_now()
    assert index is not None and index.arrays is not None and index.arrays.graph_key == index.graph_key
    return index


def _edges_both_ways(cur):
    cur.execute("SELECT id, source, target FROM nav_edges_final ORDER BY id")
    return cur.fetchall()


def _path_edges_equal_sql(index, conn) -> tuple[int, set]:
    """Every edge travelled each way: the arrays' edge equals PATH_EDGES's, or they do not hold
    it. -> (how many held, the edges not held one way or both)."""
    held, not_held = 0, set()
    with conn.cursor() as cur:
        routing_queries.begin_snapshot(cur)
        for edge, source, target in _edges_both_ways(cur):
            for node in (source, target):
                rows = [(node, edge, 1.5)]
                mine = graph_arrays.path_edges(index.arrays, rows)
                if mine is None:
                    not_held.add(edge)
                    continue
                (sql_edge,) = routing_queries.path_edges(cur, rows)
                (edge_mine,) = mine
                assert edge_mine.kind == sql_edge.kind, (edge, node)
                for a, b in ((edge_mine.from_level, sql_edge.from_level), (edge_mine.to_level, sql_edge.to_level)):
                    assert float(a) == float(b) and type(_json_level(a)) is type(_json_level(b)), (edge, node)
                assert edge_mine.coordinates == sql_edge.coordinates, (edge, node)
                # The very numbers JSON reads: floats, never an int where SQL gives a float.
                assert [type(x) for c in edge_mine.coordinates for x in c] == [
                    type(x) for c in sql_edge.coordinates for x in c
                ], (edge, node)
                held += 1
    conn.rollback()
    return held, not_held


def _json_level(value):
    from indoor.routing.itinerary import json_level

    return json_level(value)


def test_path_edges_from_the_arrays_equal_the_sql_read(network, redis_url):
    """Every edge of a seeded network (bends, one-ways, doubled edges, levels 0.5 and 3), each way."""
    url, _, _, conn = network
    index = _built(_app(url, redis_url))
    held, not_held = _path_edges_equal_sql(index, conn)
    assert held > 1000 and not not_held, (held, not_held)


def test_path_edges_on_rows_another_tool_wrote(hostile, redis_url):
    """Missing, empty, NaN, 3D, multi and backwards geometries, integer coordinates, NULL kinds,
    vertices missing or without position or level: the arrays give PATH_EDGES's answer, or leave
    the edge to it."""
    url, _, conn = hostile
    index = _built(_app(url, redis_url))
    held, not_held = _path_edges_equal_sql(index, conn)
    # Left to SQL: the 3D and multi-lines, the integer coordinate, and edges at a vertex without a
    # row or position (drawn as is from that end, turned by distance from the other), nothing else.
    with conn.cursor() as cur:
        cur.execute(
            """SELECT e.id FROM nav_edges_final e
                WHERE ST_NDims(e.wkb_geometry) <> 2 OR ST_GeometryType(e.wkb_geometry) <> 'ST_LineString'
                   OR EXISTS (SELECT 1 FROM ST_DumpPoints(e.wkb_geometry) p
                               WHERE ST_X(p.geom) = floor(ST_X(p.geom)) OR ST_Y(p.geom) = floor(ST_Y(p.geom)))
                   OR NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.source)
                   OR NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.target)"""
        )
        expected = {r[0] for r in cur.fetchall()}
    conn.rollback()
    assert held > 300 and not_held and not_held <= expected, (held, not_held, expected)


def _snap_sql(conn, lon, lat, level, profile):
    with conn.cursor() as cur:
        found = routing_queries.nearest_vertex(cur, lon, lat, level, profile, 50.0)
    conn.rollback()
    return found


def _check_snap(index, conn, lon, lat, level, profile, counts):
    mine = graph_arrays.nearest(index.arrays, lon, lat, level, profile, 50.0)
    expected = _snap_sql(conn, lon, lat, level, profile)
    if mine is graph_arrays.UNANSWERED:
        counts["sql"] += 1
        return
    assert expected is not None, (lon, lat, level, profile, mine)
    assert mine.vertex == expected.vertex, (lon, lat, level, profile, mine, expected)
    assert (mine.lon, mine.lat) == (expected.lon, expected.lat)
    assert abs(mine.metres - expected.metres) < 1e-6, (mine.metres, expected.metres)
    counts["memory"] += 1


LEVELS = [Decimal("0"), Decimal("0.5"), Decimal("1"), Decimal("1.0"), Decimal("2"), Decimal("3"), Decimal("7")]


@pytest.mark.parametrize("which", ["seeded", "hostile"])
def test_snap_in_memory_equals_the_sql_snap(network, hostile, redis_url, which):
    """Random points near vertices (a few metres, up to past ROUTE_MAX_SNAP_M), on every level and
    on levels without a network, both profiles: the same vertex and metres as NEAREST_VERTEX, or
    the SQL snap answers (no vertex within the limit, or too close to call)."""
    url, conn = (network[0], network[3]) if which == "seeded" else (hostile[0], hostile[2])
    index = _built(_app(url, redis_url))
    with conn.cursor() as cur:
        cur.execute("SELECT ST_X(the_geom), ST_Y(the_geom), level FROM nav_edges_work_vertices_pgr"
                    " WHERE the_geom IS NOT NULL AND level = level ORDER BY id")  # fmt: skip
        vertices = cur.fetchall()
    conn.rollback()
    rnd = random.Random(which)
    counts = {"memory": 0, "sql": 0}
    for _ in range(300):
        lon, lat, level = rnd.choice(vertices)
        radius = rnd.choice([0.0, 2.0, 10.0, 45.0, 60.0, 300.0])
        lon += rnd.uniform(-1, 1) * radius / (M_PER_DEG_LAT * 0.92)
        lat += rnd.uniform(-1, 1) * radius / M_PER_DEG_LAT
        if rnd.random() < 0.2:
            level = rnd.choice(LEVELS)
        for profile in ("walking", "accessible"):
            _check_snap(index, conn, lon, lat, level, profile, counts)
    assert counts["memory"] > 300, counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dx=st.floats(-400, 400, allow_nan=False),
    dy=st.floats(-400, 400, allow_nan=False),
    level=st.sampled_from(LEVELS),
    profile=st.sampled_from(["walking", "accessible"]),
)
def test_snap_in_memory_property(network, redis_url, dx, dy, level, profile):
    """Anywhere within 400 m of the network, any level: in memory or SQL, never another answer."""
    url, _, _, conn = network
    app = _snap_app(url, redis_url)
    index = route_index._state(app)["index"]
    lon = ORIGIN[0] + 60 / (M_PER_DEG_LAT * 0.92) + dx / (M_PER_DEG_LAT * 0.92)
    lat = ORIGIN[1] + 60 / M_PER_DEG_LAT + dy / M_PER_DEG_LAT
    _check_snap(index, conn, lon, lat, level, profile, {"memory": 0, "sql": 0})


_APPS = {}


def _snap_app(url, redis_url):
    if url not in _APPS:
        app = _app(url, redis_url)
        _built(app)
        _APPS[url] = app
    return _APPS[url]


def test_routes_with_no_database_read_equal_networkx(network, redis_url, caplog):
    """Rooms, points, detours, both profiles, answered by the index with the snap and the path's
    edges from the arrays and no read for the paths: equal to networkx, well formed."""
    url, net, _, conn = network
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
    conn.rollback()
    app = _app(url, redis_url)
    clear_route_cache(redis_url)
    try:
        _built(app)
        computed = _routes_equal_networkx(app, "fast", net, graphs, conn, caplog)
        searched = [r for r in computed if r.decided_by == "search"]
        assert searched and all(r.index and r.no_read and r.path_from_arrays for r in searched), [
            r.__dict__ for r in searched if not r.no_read
        ][:2]
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


def test_bodies_are_the_same_with_and_without_the_arrays(network, redis_url):
    """The whole body (legs, geometry, levels, maneuvers, words) byte for byte, fast path or SQL."""
    url, net, _, conn = network
    fast, slow = _app(url, redis_url), make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false")
    _built(fast)
    index = _built(slow)
    index.arrays = None  # this worker reads paths and snaps by SQL
    rnd = random.Random(5)
    rooms = [r[0] for r in _rooms(conn)]
    compared = 0
    try:
        for _ in range(60):
            a, b = rnd.choice(rooms), rnd.choice(rooms)
            profile = rnd.choice(["walking", "accessible"])
            clear_route_cache(redis_url)
            one = route(fast.test_client(), a, b, profile)
            clear_route_cache(redis_url)
            two = route(slow.test_client(), a, b, profile)
            assert one.status_code == two.status_code, (a, b, profile)
            assert one.get_data() == two.get_data(), (a, b, profile)
            compared += one.status_code == 200
    finally:
        for app in (fast, slow):
            app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
    assert compared > 30


def test_after_an_edit_answers_are_the_new_versions(network, redis_url, caplog):
    """Costs edited by another client (followed in place by the index): the first routes read
    the path's edges by SQL in their snapshot, the arrays are read again in the background, then
    routes are read-free again; a vertex moved: the snap is the new position's. Every answer
    equals networkx on the graph as it is then."""
    url, net, _, conn = network
    app = _app(url, redis_url)
    clear_route_cache(redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        _built(app)
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE nav_edges_final SET cost = cost + 7 WHERE id IN"
                        " (SELECT id FROM nav_edges_final WHERE kind = 'corridor' ORDER BY id LIMIT 40)")  # fmt: skip
        _wait_for_arrays(app, conn)
        with conn.cursor() as cur:
            graphs = routing_network.graphs(cur)
        conn.rollback()
        caplog.clear()
        _routes_equal_networkx(app, "fast-after-costs", net, graphs, conn, caplog)
        # A vertex moved 30 m east: a place beside its new position snaps to it.
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, ST_X(the_geom), ST_Y(the_geom), level FROM nav_edges_work_vertices_pgr"
                        " WHERE level = 0 ORDER BY id LIMIT 1 OFFSET 20")  # fmt: skip
            vertex, lon, lat, level = cur.fetchone()
            moved = lon + 30 / (M_PER_DEG_LAT * 0.92)
            cur.execute("UPDATE nav_edges_work_vertices_pgr SET the_geom = ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
                        " WHERE id = %s", (moved, lat, vertex))  # fmt: skip
        deadline = time.monotonic() + 2.0
        while True:  # within ROUTE_VERSION_MAX_AGE_S the worker may still name the older version
            body = route(app.test_client(), f"{moved!r},{lat!r},{level}", f"{lon!r},{lat!r},{level}").get_json()
            if body["route"]["from"].get("vertex") == vertex or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body["route"]["from"]["vertex"] == vertex
        assert body["route"]["from"]["connector_m"] < 0.01
        _wait_for_arrays(app, conn)
        with conn.cursor() as cur:
            graphs = routing_network.graphs(cur)
        conn.rollback()
        clear_route_cache(redis_url)
        caplog.clear()
        computed = _routes_equal_networkx(app, "fast-after-move", net, graphs, conn, caplog)
        assert any(r.no_read for r in computed)
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


def _wait_for_arrays(app, conn):
    """Route until the worker's index and arrays are the database's graph version (a route of
    the new version starts their read in the background)."""
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM indoor_versions WHERE name = 'graph'")
        version = cur.fetchone()[0]
    conn.rollback()
    client = app.test_client()
    rooms = [r[0] for r in _rooms(conn)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        client.get("/api/route/", query_string={"from": rooms[0], "to": rooms[-1]})
        index = route_index._state(app)["index"]
        if (
            index is not None
            and index.graph_key.startswith(f"{version}-")
            and index.arrays is not None
            and index.arrays.graph_key == index.graph_key
        ):
            return
        time.sleep(0.1)
    raise AssertionError("the arrays never reached the new graph version")


def _rooms(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid")
        rows = cur.fetchall()
    conn.rollback()
    return rows


def test_a_failed_read_of_the_arrays_leaves_routes_to_sql(pg_cluster, redis_url):
    """A geometry PostGIS cannot write as GeoJSON (a curve another tool drew): no arrays or SQL
    for that edge, the index still built, routes still answered."""
    url, net, conn = routing_network.network_database(pg_cluster, "fast_path_curve", 47, ORIGIN, 7)
    try:
        with conn, conn.cursor() as cur:
            for statement in LOOSE:
                cur.execute(statement)
            cur.execute("UPDATE nav_edges_final SET wkb_geometry = ST_GeomFromText("
                        "'CIRCULARSTRING(-43.1729 -22.9068, -43.1728 -22.9067, -43.1727 -22.9068)', 4326)"
                        " WHERE id = (SELECT min(id) FROM nav_edges_final)")  # fmt: skip
        app = _app(url, redis_url)
        with app.app_context():
            index = route_index.build_now()
        assert index is not None
        if index.arrays is not None:
            with conn.cursor() as cur:
                cur.execute("SELECT id, source FROM nav_edges_final ORDER BY id LIMIT 1")
                edge, source = cur.fetchone()
            conn.rollback()
            assert graph_arrays.path_edges(index.arrays, [(source, edge, 1.0)]) is None
        rooms = [r[0] for r in _rooms(conn)]
        response = route(app.test_client(), rooms[0], rooms[1])
        assert response.status_code in (200, 422)
        app.extensions["indoor.db"].close()
    finally:
        conn.close()


def test_bad_places_through_the_fast_path(network, redis_url):
    """Points off the globe, NaN, a level without a network, far from it: the same clear 4xx as
    without the arrays."""
    url, _, _, _ = network
    fast = _app(url, redis_url)
    slow = make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false")
    _built(fast)
    _built(slow).arrays = None
    near = f"{ORIGIN[0] + 0.0005!r},{ORIGIN[1] + 0.0005!r},0"
    try:
        for bad in ("181,0,0", "nan,1,0", "1,nan,0", f"{ORIGIN[0]},{ORIGIN[1]},55", f"{ORIGIN[0] + 0.05},{ORIGIN[1]},0",
                    f"{ORIGIN[0]},{ORIGIN[1]},0.25", "-43.17,-22.90,1e400"):  # fmt: skip
            clear_route_cache(redis_url)
            one = route(fast.test_client(), bad, near)
            clear_route_cache(redis_url)
            two = route(slow.test_client(), bad, near)
            assert one.status_code == two.status_code and 400 <= one.status_code < 500, (bad, one.get_json())
            assert one.get_json() == two.get_json(), bad
    finally:
        for app in (fast, slow):
            app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)


def test_rooms_in_memory_equal_the_sql_read(hostile, redis_url):
    """Every room, with rooms another tool wrote badly (no level, NaN and empty positions, a
    polygon, a level beyond +-1000, NULL names): the worker's rooms give ROOM's answer."""
    url, _, conn = hostile
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE room_points ALTER COLUMN level DROP NOT NULL")
        cur.execute("ALTER TABLE room_points ALTER COLUMN text DROP NOT NULL")
        cur.execute("ALTER TABLE room_points ALTER COLUMN wkb_geometry TYPE geometry USING wkb_geometry")
        cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid LIMIT 7")
        ids = [r[0] for r in cur.fetchall()]
        for statement, room in zip(
            [
                "UPDATE room_points SET level = NULL WHERE ogc_fid = %s",
                "UPDATE room_points SET wkb_geometry = ST_MakePoint('NaN', 1)::geometry WHERE ogc_fid = %s",
                "UPDATE room_points SET wkb_geometry = 'SRID=4326;POINT EMPTY' WHERE ogc_fid = %s",
                "UPDATE room_points SET wkb_geometry = ST_Buffer(wkb_geometry, 0.0001) WHERE ogc_fid = %s",
                "UPDATE room_points SET level = 5000 WHERE ogc_fid = %s",
                "UPDATE room_points SET text = NULL, building = NULL WHERE ogc_fid = %s",
                "UPDATE room_points SET level = 1.50 WHERE ogc_fid = %s",
            ],
            ids,
            strict=True,
        ):
            cur.execute(statement, (room,))
    app = _app(url, redis_url)
    try:
        with app.app_context():
            from indoor.extensions import get_db

            rooms = get_db().read(graph_arrays._read_rooms)
        assert rooms is not None
        with conn.cursor() as cur:
            cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid")
            every = [r[0] for r in cur.fetchall()]
            for room_id in [*every, max(every) + 1, -5]:
                expected, mine = routing_queries.room(cur, room_id), graph_arrays.room(rooms, room_id)
                if expected is None:
                    assert mine is None
                    continue
                assert (mine.id, mine.name, mine.building, mine.lon, mine.lat) == (
                    expected.id, expected.name, expected.building, expected.lon, expected.lat
                ), room_id  # fmt: skip
                if expected.lon is not None:
                    assert mine.level == expected.level, room_id
        conn.rollback()
    finally:
        app.extensions["indoor.db"].close()


def test_a_route_with_every_place_in_memory_reads_nothing(network, redis_url, caplog):
    """Once the worker holds the rooms of the current version, an uncached route between rooms
    reads neither places nor paths from the database, and its answer equals networkx."""
    url, net, _, conn = network
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)  # as the earlier tests left the graph
    conn.rollback()
    app = _app(url, redis_url)
    clear_route_cache(redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        _built(app)
        client = app.test_client()
        rooms = [r[0] for r in _rooms(conn)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the first route starts the rooms' read
            client.get("/api/route/", query_string={"from": rooms[0], "to": rooms[1]})
            if app.extensions.get(graph_arrays._ROOMS, {}).get("rooms") is not None:
                break
            time.sleep(0.1)
        clear_route_cache(redis_url)
        caplog.clear()
        lines = _routes_equal_networkx(app, "fast-memory", net, graphs, conn, caplog)
        read_free = [r for r in lines if not r.places_read and r.no_read]
        assert len(read_free) > len(lines) // 2, (len(read_free), len(lines))
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()
