"""The route geometry held in memory (indoor/routing/geometry.py): every edge drawn and every
place snapped exactly as the SQL does (PATH_EDGES, NEAREST_VERTEX), on a network with the rows
other tools write badly (those are left to the SQL); routes answered without a round trip equal
networkx; after an edit the older copy is never used; a second worker maps the first's copy."""

from __future__ import annotations

import logging
import math
import random
from decimal import Decimal

import numpy as np
import pytest

from indoor.queries import routing as queries
from indoor.routing import geometry
from indoor.routing import index as route_index
from tests import routing_network
from tests.test_routes import _routes_equal_networkx, clear_route_cache, make_app, route

# Rows other tools write: each edit makes one edge (by its position among the edges) something
# the copy must leave to the SQL, or draw exactly all the same.
HOSTILE = [
    ("a 3D line", "UPDATE nav_edges_final SET wkb_geometry = ST_Force3D(wkb_geometry, 2.5) WHERE id = %(id)s"),
    ("a multi line", "UPDATE nav_edges_final SET wkb_geometry = ST_Multi(wkb_geometry) WHERE id = %(id)s"),
    ("an empty line", "UPDATE nav_edges_final SET wkb_geometry = 'SRID=4326;LINESTRING EMPTY' WHERE id = %(id)s"),
    ("no line", "UPDATE nav_edges_final SET wkb_geometry = NULL WHERE id = %(id)s"),
    (
        "a NaN in the line",
        "UPDATE nav_edges_final SET wkb_geometry = ST_SetPoint(wkb_geometry, 0, ST_MakePoint('NaN', 1)) WHERE id = %(id)s",
    ),
    (
        "another SRID",
        "UPDATE nav_edges_final SET wkb_geometry = ST_SetSRID(wkb_geometry, 3857) WHERE id = %(id)s",
    ),
    (
        "an integral coordinate",  # GeoJSON prints 13 where the copy would hold 13.0
        "UPDATE nav_edges_final SET wkb_geometry = ST_AddPoint(wkb_geometry,"
        " ST_SetSRID(ST_MakePoint(round(ST_X(ST_StartPoint(wkb_geometry))), 1), 4326), 1) WHERE id = %(id)s",
    ),
    (
        "drawn backwards",
        "UPDATE nav_edges_final SET wkb_geometry = ST_Reverse(wkb_geometry) WHERE id = %(id)s",
    ),
    (
        "a vertex level out of range",
        "UPDATE nav_edges_work_vertices_pgr SET level = 5000"
        " WHERE id = (SELECT source FROM nav_edges_final WHERE id = %(id)s)",
    ),
    (
        "a vertex row missing",
        "DELETE FROM nav_edges_work_vertices_pgr WHERE id = (SELECT target FROM nav_edges_final WHERE id = %(id)s)",
    ),
    ("a loop", "UPDATE nav_edges_final SET target = source WHERE id = %(id)s"),
]


@pytest.fixture(scope="module")
def hostile_network(pg_cluster):
    url, net, conn = routing_network.network_database(pg_cluster, "geometry_hostile", 23, (2.3522, 48.8566), 9)
    with conn, conn.cursor() as cur:
        # As a table another tool made: any geometry, NULLs allowed.
        cur.execute("ALTER TABLE nav_edges_final ALTER COLUMN wkb_geometry TYPE geometry")
        cur.execute("ALTER TABLE nav_edges_final ALTER COLUMN wkb_geometry DROP NOT NULL")
        cur.execute("SELECT id FROM nav_edges_final ORDER BY id")
        ids = [r[0] for r in cur.fetchall()]
        spoiled = {}
        for k, (what, statement) in enumerate(HOSTILE):
            edge = ids[40 + 37 * k]
            cur.execute(statement, {"id": edge})
            assert cur.rowcount == 1, what
            spoiled[edge] = what
        # A level written as 1.0 where the others say 1: the same numeric, the same snaps.
        cur.execute("UPDATE nav_edges_work_vertices_pgr SET level = 1.0 WHERE id % 7 = 0 AND level = 1")
    yield url, net, conn, spoiled
    conn.close()


def _held(conn) -> geometry.PathGeometry:
    with conn.cursor() as cur:
        held = geometry.read_and_build(cur)
    conn.rollback()
    return held


def _as_json(edges) -> list:
    # What the route body makes of an edge (search._path_of), types included: 1 and 1.0 differ.
    return [
        (e.id, e.kind, repr(float(e.from_level)), repr(float(e.to_level)), e.cost, repr(e.coordinates)) for e in edges
    ]


def _edges_as_sql(held, cur) -> tuple[int, set, list]:
    """Each edge of this snapshot left by either end, drawn by the copy and by PATH_EDGES: every
    edge the copy draws equals the SQL's; (how many it drew, the edges it left to the SQL, rows)."""
    cur.execute("SELECT id, source, target, cost FROM nav_edges_final WHERE source IS NOT NULL ORDER BY id")
    edges = cur.fetchall()
    rows = [(s, e, c) for e, s, _, c in edges] + [(t, e, c) for e, _, t, c in edges]
    expected = queries.path_edges(cur, rows)
    answered, left = 0, set()
    for row, sql_edge in zip(rows, expected, strict=True):
        mine = held.path_edges([row])
        if mine is None:
            left.add(row[1])
            continue
        answered += 1
        assert _as_json(mine) == _as_json([sql_edge]), row
    return answered, left, rows


def test_every_edge_is_drawn_as_the_sql_draws_it_or_left_to_the_sql(hostile_network):
    """Each edge, left by either end: the copy's kind, levels and coordinates are PATH_EDGES'
    to the last digit, or the copy says it cannot tell (the spoiled rows), never something else."""
    _, _, conn, spoiled = hostile_network
    held = _held(conn)
    with conn.cursor() as cur:
        answered, left, rows = _edges_as_sql(held, cur)
    conn.rollback()
    # The copy leaves the spoiled rows it cannot draw exactly to the SQL, and draws the rest.
    drawn_anyway = {"drawn backwards", "a vertex level out of range"}  # both exact in the copy
    assert {e for e, what in spoiled.items() if what not in drawn_anyway} <= left
    assert answered >= 0.95 * len(rows)
    # A whole path at once: the same as edge by edge.
    plain = [r for r in rows if r[1] not in left][:300]
    assert _as_json(held.path_edges(plain)) == _as_json([held.path_edges([r])[0] for r in plain])
    path = held.path(plain, 7)
    assert path["cost"] == sum(r[2] for r in plain) and path["edge_ids"] == [r[1] for r in plain]


def _snaps_as_sql(held, cur, vertices, rnd, count=200) -> tuple[int, int]:
    """Random points near vertices (0-80 m off), on their level or others, both profiles: every
    snap the copy gives is NEAREST_VERTEX's; (answered by the copy, found by the SQL)."""
    answered = sql_found = 0
    for _ in range(count):
        level, lon, lat = rnd.choice(vertices)
        level = rnd.choice([Decimal(str(level)), Decimal(str(level)), Decimal("1.0"), Decimal("7"), Decimal("0.25")])
        metres = rnd.choice([0.0, 3.0, 20.0, 49.0, 80.0])
        bearing = rnd.uniform(0, 2 * math.pi)
        lon += metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        lat += metres * math.cos(bearing) / 111_132
        for profile in ("walking", "accessible"):
            mine = held.nearest(lon, lat, level, profile, 50.0)
            theirs = queries.nearest_vertex(cur, lon, lat, level, profile, 50.0)
            sql_found += theirs is not None
            if mine is None:
                continue
            answered += 1
            assert theirs is not None, (lon, lat, level, profile, mine)
            assert (mine.vertex, mine.lon, mine.lat, mine.metres, mine.level) == (
                theirs.vertex,
                theirs.lon,
                theirs.lat,
                theirs.metres,
                theirs.level,
            ), (lon, lat, level, profile)
    return answered, sql_found


def test_a_place_snaps_in_memory_to_the_vertex_and_metres_the_sql_gives(hostile_network):
    """Random points near and far (up to 80 m off a vertex), on levels that exist, that do not
    (7, 0.25) and written another way (1.0), both profiles: a snap the copy gives is
    NEAREST_VERTEX's, vertex and metres alike; the near ones it nearly always gives."""
    _, net, conn, _ = hostile_network
    held = _held(conn)
    with conn.cursor() as cur:
        answered, sql_found = _snaps_as_sql(held, cur, list(net.vertices.values()), random.Random(23), 400)
    conn.rollback()
    assert sql_found > 200
    assert answered >= 0.9 * sql_found, (answered, sql_found)


# Edits another client makes; each but the last changes a few edges and no vertex (followed).
FOLLOWED = [
    (
        "a corridor redrawn",
        "UPDATE nav_edges_final SET wkb_geometry = ST_AddPoint(wkb_geometry,"
        " ST_Translate(ST_LineInterpolatePoint(wkb_geometry, 0.5), 0.00002, 0.00001), 1)"
        " WHERE id = (SELECT min(id) + 11 FROM nav_edges_final)",
    ),
    (
        "every edge of a vertex closed",  # the vertex is no longer one to snap to
        "UPDATE nav_edges_final SET cost = -1, reverse_cost = -1"
        " WHERE source = (SELECT source FROM nav_edges_final WHERE id = (SELECT min(id) + 40 FROM nav_edges_final))"
        " OR target = (SELECT source FROM nav_edges_final WHERE id = (SELECT min(id) + 40 FROM nav_edges_final))",
    ),
    (
        "an edge to that vertex added",  # it is one to snap to again
        "INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)"
        " SELECT (SELECT max(id) + 1 FROM nav_edges_final), a.id, b.id, 5, 5, 'corridor', ST_MakeLine(a.the_geom, b.the_geom)"
        " FROM nav_edges_work_vertices_pgr a, nav_edges_work_vertices_pgr b"
        " WHERE a.id = (SELECT source FROM nav_edges_final WHERE id = (SELECT min(id) + 40 FROM nav_edges_final))"
        " AND b.id = (SELECT target FROM nav_edges_final WHERE id = (SELECT min(id) + 200 FROM nav_edges_final))",
    ),
    ("that edge deleted again", "DELETE FROM nav_edges_final WHERE id = (SELECT max(id) FROM nav_edges_final)"),
    ("an edge deleted", "DELETE FROM nav_edges_final WHERE id = (SELECT min(id) + 60 FROM nav_edges_final)"),
    (
        "an edge added, drawn backwards",
        "INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)"
        " SELECT (SELECT max(id) + 1 FROM nav_edges_final), target, source, cost, reverse_cost, 'corridor',"
        " wkb_geometry FROM nav_edges_final WHERE id = (SELECT min(id) + 80 FROM nav_edges_final)",
    ),
    (
        "a corridor made stairs",  # its vertices may no longer be accessible ones
        "UPDATE nav_edges_final SET kind = 'stairs' WHERE id IN (SELECT id FROM nav_edges_final"
        " WHERE kind = 'corridor' ORDER BY id LIMIT 30 OFFSET 100)",
    ),
]


def test_the_copy_follows_small_edits_exactly_and_reads_a_vertex_edit_whole(pg_cluster, redis_url, tmp_path, caplog):
    """After each edit of a few edges, the copy is brought to the new version in the route's
    snapshot (no read of the whole graph) and still draws every edge and snaps every place as the
    SQL does. An edit of a vertex is not followed: the version is read whole."""
    from indoor.extensions import get_db
    from indoor.queries.versions import versions

    url, net, conn = routing_network.network_database(pg_cluster, "geometry_follow", 31, (18.0686, 59.3293), 9)
    app = make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false", ROUTE_INDEX_DIR=str(tmp_path))
    caplog.set_level(logging.INFO, logger="indoor.route_geometry")
    rnd = random.Random(31)
    vertices = list(net.vertices.values())
    try:
        with app.app_context():
            geometry.build_now()
            for what, statement in FOLLOWED:
                with conn, conn.cursor() as cur:
                    cur.execute(statement)
                    assert cur.rowcount >= 1, what
                caplog.clear()

                def check(cur, what=what):
                    graph_key = versions(cur)["graph_key"]
                    held = geometry.ready(graph_key, cur)
                    assert held is not None and held.graph_key == graph_key, what
                    answered, left, rows = _edges_as_sql(held, cur)
                    assert answered == len(rows) and not left, what
                    answered, found = _snaps_as_sql(held, cur, vertices, rnd, 60)
                    assert answered >= 0.9 * found, (what, answered, found)
                    # Right at each vertex an edit touched: the snaps there are the SQL's.
                    touched = [net.vertices[v] for v in held.vertex_changed if v in net.vertices]
                    for level, lon, lat in touched:
                        for profile in ("walking", "accessible"):
                            mine = held.nearest(lon, lat, Decimal(str(level)), profile, 50.0)
                            theirs = queries.nearest_vertex(cur, lon, lat, Decimal(str(level)), profile, 50.0)
                            assert mine is None or mine == theirs, (what, profile, mine, theirs)

                get_db().read(check)
                followed = [r for r in caplog.records if r.getMessage() == "route geometry ready"]
                assert [r.how for r in followed] == ["followed"], what
            # A vertex moved: not followed (its position and the lines' direction change).
            with conn, conn.cursor() as cur:
                cur.execute(
                    "UPDATE nav_edges_work_vertices_pgr SET the_geom = ST_Translate(the_geom, 0.00003, 0)"
                    " WHERE id = (SELECT min(id) + 5 FROM nav_edges_work_vertices_pgr)"
                )
            graph_key = get_db().read(
                lambda cur: (versions(cur)["graph_key"], geometry.ready(versions(cur)["graph_key"], cur))[0]
            )
            assert geometry.build_now().graph_key == graph_key
            assert geometry._state(app)["current"].edge_changed == {}  # read whole
            get_db().read(lambda cur: _edges_as_sql(geometry.ready(graph_key, cur), cur))
    finally:
        app.extensions["indoor.db"].close()
        conn.close()


@pytest.fixture(scope="module")
def network(pg_cluster):
    url, net, conn = routing_network.network_database(pg_cluster, "geometry_routes", 29, (-0.1276, 51.5072), 11)
    yield url, net, conn
    conn.close()


def test_routes_drawn_from_memory_equal_networkx_and_an_edit_is_never_drawn_from_the_old_copy(
    network, redis_url, caplog, tmp_path
):
    """With the index and the geometry held, uncached routes take no round trip for their paths
    (the route log says `held`) and equal networkx, both profiles. After an edit, the copy of the
    older version is not used: the route is the new drawing, from the SQL until the new copy is
    held, then from memory, the same. A second worker maps the first's copy (no read of its own)."""
    url, net, conn = network
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
    conn.rollback()
    settings = {"ROUTE_INDEX": "true", "ROUTE_OVERLAY": "false", "ROUTE_INDEX_DIR": str(tmp_path)}
    app, second = make_app(url, redis_url, **settings), make_app(url, redis_url, **settings)
    clear_route_cache(redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route_geometry")
    try:
        with app.app_context():
            assert route_index.build_now() is not None
            first_copy = geometry.build_now()
        ready = [r for r in caplog.records if r.getMessage() == "route geometry ready"]
        assert [r.how for r in ready] == ["read"]
        computed = _routes_equal_networkx(app, "geometry", net, graphs, conn, caplog)
        searched = [r for r in computed if r.decided_by == "search"]
        assert searched and sum(r.held for r in searched) >= 0.9 * len(searched)
        # Places are snapped in memory too (the versions and rooms in one round trip).
        clear_route_cache(redis_url)
        caplog.set_level(logging.INFO, logger="indoor.route.phases")
        ids = _room_ids(conn, *(r[0] for r in net.rooms))
        for a, b in zip(ids, ids[1:], strict=False):
            assert route(app.test_client(), str(a), str(b), "walking").status_code in (200, 422)
        places = [r.places for r in caplog.records if r.getMessage() == "route phases"]
        assert len(places) >= 0.8 * (len(ids) - 1) and places.count("memory") >= 0.9 * len(places), places

        # The second worker maps what the first stored.
        caplog.set_level(logging.INFO, logger="indoor.route_geometry")
        with second.app_context():
            mapped = geometry.build_now()
        assert [r.how for r in caplog.records if r.getMessage() == "route geometry ready"][-1] == "loaded"
        assert isinstance(mapped.coordinates, np.memmap) and mapped.graph_key == first_copy.graph_key

        # An edit that moves a corridor's drawing: a plain edge of a route gains a point.
        client = app.test_client()
        ids = _room_ids(conn, *(r[0] for r in net.rooms[:8]))
        a, b = next((a, b) for a in ids for b in ids if a != b and _route(client, a, b, None) is not None)
        before = _route(client, a, b)
        # The same two vertices named another way: the path drawn from memory was cached too.
        at = before["route"]["from"]
        response = route(client, f"{at['coordinates'][0]},{at['coordinates'][1]},{at['level']}", str(b), "walking")
        assert response.headers["X-Cache"] == "HIT"
        again = response.get_json()["route"]
        assert again["to"]["vertex"] == before["route"]["to"]["vertex"] and again["from"]["vertex"] == at["vertex"]
        # The place given to 7 decimals (as the answer prints it) is a few millimetres from the room.
        assert abs(again["distance_m"] - before["route"]["distance_m"]) <= 0.011
        found = route_index._state(app)["index"].path(
            before["route"]["from"]["vertex"], before["route"]["to"]["vertex"], "walking"
        )
        edge = next(row[1] for row in found[1] if first_copy.path_edges([row]) is not None)
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE nav_edges_final SET wkb_geometry = ST_AddPoint(wkb_geometry,"
                " ST_Translate(ST_LineInterpolatePoint(wkb_geometry, 0.5), 0.00001, 0.00001), 1) WHERE id = %s"
                " RETURNING ST_AsGeoJSON(ST_PointN(wkb_geometry, 2), 7)::json -> 'coordinates'",
                (edge,),
            )
            added = cur.fetchone()[0]
        clear_route_cache(redis_url)
        app.extensions.pop("indoor.route_versions", None)  # the versions it trusts for 0.5 s
        after_edit = _route(client, a, b)
        assert added in _points(after_edit) and added not in _points(before)
        with app.app_context():
            assert geometry.build_now().graph_key != first_copy.graph_key
        clear_route_cache(redis_url)
        app.extensions["indoor.local_cache"] = type(app.extensions["indoor.local_cache"])(64)  # no body kept
        caplog.clear()
        caplog.set_level(logging.INFO, logger="indoor.route")
        assert _route(client, a, b) == after_edit
        assert [r.held for r in caplog.records if r.getMessage() == "route"] == [True]
    finally:
        app.extensions["indoor.db"].close()
        second.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


def _room_ids(conn, *labels: str) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT text, ogc_fid FROM room_points WHERE text = ANY(%s)", (list(labels),))
        ids = dict(cur.fetchall())
    conn.rollback()
    return [ids[label] for label in labels]


def _route(client, a: int, b: int, status: int | None = 200) -> dict | None:
    """The walking route's body (None: no route, when `status` is None)."""
    response = route(client, str(a), str(b), "walking")
    if status is None and response.status_code == 422:
        return None
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _points(value) -> list:
    """Every [lon, lat] pair anywhere in a JSON value."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(x, float) for x in value):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [p for item in value for p in _points(item)]
    return []


def test_a_read_that_fails_is_not_retried_at_once_and_routes_go_on(network, redis_url, tmp_path, caplog):
    """The whole-graph read times out (ROUTE_INDEX_LOAD_TIMEOUT_S far too short): the worker logs
    it, routes are answered from the SQL all the same, and the read is not started again by every
    route (each costs the database seconds on a large campus) but after RETRY_S."""
    import dataclasses
    import threading

    url, net, conn = network
    app = make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false", ROUTE_INDEX_DIR=str(tmp_path))
    with app.app_context():
        assert route_index.build_now() is not None  # the geometry is read once the index holds the version
    settings = app.extensions["indoor.settings"]
    app.extensions["indoor.settings"] = dataclasses.replace(settings, route_index_load_timeout_s=0.001)
    caplog.set_level(logging.INFO, logger="indoor.route_geometry")
    clear_route_cache(redis_url)
    ids = _room_ids(conn, *(r[0] for r in net.rooms[:6]))
    try:
        for a, b in zip(ids, ids[1:], strict=False):
            assert route(app.test_client(), str(a), str(b), "walking").status_code in (200, 422)
            for thread in threading.enumerate():
                if thread.name == "route-geometry":
                    thread.join(10)
        failed = [r for r in caplog.records if r.getMessage().startswith("route geometry not built")]
        assert len(failed) == 1, [r.getMessage() for r in caplog.records]
        assert geometry._state(app)["current"] is None
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
