"""The in-memory route index (indoor/routing/index.py): exact against networkx and full-graph
pgr_dijkstra, fresh after edits of costs and of the topology, built off the event loop."""

from __future__ import annotations

import json
import logging
import os
import random
import time

import networkx as nx
import psycopg2
import pytest

from indoor.queries.routing import full_graph_distance
from indoor.routing import index as route_index
from tests import routing_network
from tests.conftest import run_cli
from tests.http import get_json
from tests.test_routes import (
    _categories_equal_networkx,
    _routes_equal_networkx,
    _vias_equal_networkx,
    clear_route_cache,
    make_app,
)

NETWORKS = {
    # name: (seed, origin lon/lat): other seeds and places than test_routes' windows and overlays.
    "reykjavik": (31, (-21.9426, 64.1466)),
    "singapore": (11, (103.8198, 1.3521)),
}


@pytest.fixture(scope="module")
def indexed_networks(pg_cluster):
    built = {}

    def get(name, grid=13):
        if name not in built:
            seed, origin = NETWORKS[name]
            built[name] = routing_network.network_database(pg_cluster, f"index_{name}", seed, origin, grid)
        return built[name]

    yield get
    for _, _, conn in built.values():
        conn.close()


def _index_app(url, redis_url):
    # The overlay off, so that a route the index does not answer would show as a window search.
    return make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false")


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_index_routes_equal_an_independent_shortest_path(indexed_networks, redis_url, name, caplog):
    """Rooms, points, neighbours across walls, detours: both profiles, one-way and closed edges,
    stairs-only attics and an unreachable island, each answered by the index and equal to networkx."""
    url, net, conn = indexed_networks(name)
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
    conn.rollback()
    app = _index_app(url, redis_url)
    clear_route_cache(redis_url)
    try:
        with app.app_context():
            index = route_index.build_now()
        assert index is not None and index.edge_count > 500
        computed = _routes_equal_networkx(app, name, net, graphs, conn, caplog)
        assert computed and all(r.index for r in computed), [r.__dict__ for r in computed if not r.index][:2]
        assert not any(r.window_tries or r.full_graph or r.overlay for r in computed)
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_via_and_category_routes_by_the_index_equal_networkx(indexed_networks, redis_url, name, caplog):
    """Vias (each part by the index) and the nearest room of a category (one many-to-many sweep
    of the index, the near-best costed exactly), both profiles, against networkx."""
    url, net, conn = indexed_networks(name)
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
    conn.rollback()
    app = _index_app(url, redis_url)
    clear_route_cache(redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        with app.app_context():
            assert route_index.build_now() is not None
        _vias_equal_networkx(app, name, net, graphs, conn)
        _categories_equal_networkx(app, name, net, graphs, conn)
        parts = [
            r for r in caplog.records if r.name == "indoor.route" and r.getMessage() == "route" and r.cache == "MISS"
        ]
        assert parts and all(r.index for r in parts if r.decided_by == "search")
        chosen = [r for r in caplog.records if r.name == "indoor.route" and r.getMessage() == "route category"]
        assert chosen and all(r.decided_by == "index" and r.searches == 0 for r in chosen)
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


# The bench's campus shapes (bench/rows_shapes.py), small: `indoor demo` options.
CAMPUS_SHAPES = {
    "buildings in a row": ("--buildings", "3", "--levels", "3", "--grid", "7"),
    "grid of buildings": ("--buildings", "4", "--columns", "2", "--levels", "3", "--grid", "6"),
    "one huge building": ("--levels", "2", "--grid", "22"),
    "station of many levels": ("--levels", "9", "--grid", "7"),
}


@pytest.mark.parametrize("shape", sorted(CAMPUS_SHAPES))
def test_index_is_exact_on_every_campus_shape(pg_cluster, redis_url, shape):
    """The generated campuses the bench measures, small: every index answer (both profiles)
    equals networkx, and a few equal full-graph pgr_dijkstra."""
    url = pg_cluster.create_database(f"index_shape_{shape.split()[0]}_{shape.split()[-1]}_{os.getpid()}")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "demo", "--seed", "5", *CAMPUS_SHAPES[shape])
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    app = _index_app(url, redis_url)
    try:
        with app.app_context():
            index = route_index.build_now()
        assert index is not None and index.edge_count > 500, shape
        _compare(index, conn, random.Random(shape), pairs=120)
    finally:
        app.extensions["indoor.db"].close()
        conn.close()


def _compare(index, conn, rnd, pairs=150, reference_pairs=6):
    """Random vertex pairs through the index against networkx (and a few against full-graph
    pgr_dijkstra): the same cost within 1e-6 relative, and a path that joins up."""
    with conn.cursor() as cur:
        graphs = routing_network.graphs(cur)
        cur.execute("SELECT id, source, target, cost, reverse_cost FROM nav_edges_final")
        edges = {row[0]: row[1:] for row in cur.fetchall()}
        vertices = sorted(set(graphs["walking"].nodes))
        found = {"walking": 0, "accessible": 0}
        for k in range(pairs):
            profile = ("walking", "accessible")[k % 2]
            a, b = rnd.sample(vertices, 2)
            try:
                expected = nx.dijkstra_path_length(graphs[profile], a, b)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                expected = None
            answer = index.path(a, b, profile)
            assert answer is not None, (a, b, profile)
            cost, rows = answer
            if expected is None:
                assert cost is None and rows == [], (a, b, profile)
                continue
            assert cost is not None and abs(cost - expected) <= 1e-6 * max(1.0, expected), (a, b, profile, cost)
            at = a
            for node, edge, edge_cost in rows:  # vertex to vertex, each edge in an open direction
                source, target, forward, backward = edges[edge]
                assert node == at
                at, expected_cost = (target, forward) if source == node else (source, backward)
                assert edge_cost == expected_cost and edge_cost >= 0
            assert at == b
            found[profile] += 1
            if k < reference_pairs:
                reference = full_graph_distance(cur, a, b, profile)
                assert abs(reference - cost) <= 1e-6 * max(1.0, reference)
    conn.rollback()
    assert found["walking"] > pairs / 4 and found["accessible"] > pairs / 5, found


EDITS = [
    # (what, SQL, how the index follows)
    ("three corridors cost more", "UPDATE nav_edges_final SET cost = cost + 25, reverse_cost = reverse_cost + 25"
     " WHERE id IN (SELECT id FROM nav_edges_final WHERE kind = 'corridor' AND cost >= 0 AND reverse_cost >= 0"
     " ORDER BY id LIMIT 3 OFFSET 40)", "followed"),
    ("two corridors cost less, read whole", "UPDATE nav_edges_final SET cost = cost - 1"
     " WHERE id IN (SELECT id FROM nav_edges_final WHERE kind = 'corridor' AND cost >= 1 ORDER BY id LIMIT 2"
     " OFFSET 70)", "updated"),
    ("a corridor closes one way, another both", "UPDATE nav_edges_final SET reverse_cost = -1 WHERE id = "
     "(SELECT min(id) FROM nav_edges_final WHERE kind = 'corridor' AND reverse_cost >= 0);"
     " UPDATE nav_edges_final SET cost = -1, reverse_cost = -1 WHERE id = "
     "(SELECT max(id) FROM nav_edges_final WHERE kind = 'corridor' AND cost >= 0)", "followed"),
    ("every cost changes", "UPDATE nav_edges_final SET cost = CASE WHEN cost >= 0 THEN cost * 1.37 + 0.01 ELSE cost"
     " END, reverse_cost = CASE WHEN reverse_cost >= 0 THEN reverse_cost * 1.21 ELSE reverse_cost END",
     "recustomized"),
    ("a stair becomes a ramp (the accessible metric changes)", "UPDATE nav_edges_final SET kind = 'ramp' WHERE id ="
     " (SELECT min(id) FROM nav_edges_final WHERE kind = 'stairs')", "followed"),
    ("a corridor is removed (closed in the index)", "DELETE FROM nav_edges_final WHERE id ="
     " (SELECT min(id) + 30 FROM nav_edges_final WHERE kind = 'corridor')", "followed"),
    ("corridors are removed", "DELETE FROM nav_edges_final WHERE id IN (SELECT id FROM nav_edges_final"
     " WHERE kind = 'corridor' ORDER BY id DESC LIMIT 25)", "built"),
    ("a long one-way shortcut is added", "INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind,"
     " wkb_geometry) SELECT (SELECT max(id) + 1 FROM nav_edges_final), a.id, b.id,"
     " ST_Distance(a.the_geom::geography, b.the_geom::geography), -1, 'corridor', ST_MakeLine(a.the_geom, b.the_geom)"
     " FROM nav_edges_work_vertices_pgr a, nav_edges_work_vertices_pgr b"
     " WHERE a.id = (SELECT min(id) FROM nav_edges_work_vertices_pgr WHERE level = 0)"
     " AND b.id = (SELECT max(id) FROM nav_edges_work_vertices_pgr WHERE level = 0 AND id <> ALL(%(island)s))",
     "followed"),
    ("a corridor is re-attached across the level", "UPDATE nav_edges_final e SET source = a.id, target = b.id,"
     " cost = ST_Distance(a.the_geom::geography, b.the_geom::geography) + 3, reverse_cost ="
     " ST_Distance(a.the_geom::geography, b.the_geom::geography) + 1, wkb_geometry = ST_MakeLine(a.the_geom, b.the_geom)"
     " FROM nav_edges_work_vertices_pgr a, nav_edges_work_vertices_pgr b"
     " WHERE e.id = (SELECT min(id) + 3 FROM nav_edges_final WHERE kind = 'corridor')"
     " AND a.id = (SELECT min(id) + 2 FROM nav_edges_work_vertices_pgr WHERE level = 1)"
     " AND b.id = (SELECT max(id) - 2 FROM nav_edges_work_vertices_pgr WHERE level = 1)", "followed"),
    ("every cost changes again (on the topology built with the added edges)", "UPDATE nav_edges_final SET cost ="
     " CASE WHEN cost >= 0 THEN cost + 0.5 ELSE cost END", "recustomized"),
]  # fmt: skip


def _follow(cur):
    """What a route does in its snapshot: the index of that snapshot's graph, moved on if it can."""
    from indoor.queries.routing import begin_snapshot
    from indoor.queries.versions import versions

    begin_snapshot(cur)
    return route_index.current(versions(cur)["graph_key"], cur)


def test_index_follows_edits_of_costs_and_topology_exactly(pg_cluster, redis_url):
    """Edits by another client: a few edges' costs followed from the change log in the route's
    own snapshot, or re-weighted after a whole read, all costs re-customised, the topology
    rebuilt; after each, every answer equals networkx and full-graph pgr_dijkstra."""
    from indoor.extensions import get_db

    url, net, conn = routing_network.network_database(pg_cluster, "index_edits", 77, (151.2093, -33.8688), 9)
    app = _index_app(url, redis_url)
    rnd = random.Random(77)
    try:
        with app.app_context():
            index = route_index.build_now()
            assert route_index._state(app)["last"] == {"how": "built"}
            _compare(index, conn, rnd)
            for what, statement, how in EDITS:
                with conn, conn.cursor() as cur:
                    cur.execute(statement, {"island": list(net.island) or [0]})
                    assert cur.rowcount > 0, what
                state = route_index._state(app)
                if how == "followed":  # by the first route after the edit, in its snapshot
                    index = get_db().read(_follow)
                    assert index is not None and state["last"]["how"] == how, what
                    # An added or re-attached edge is routed beside the index until a new topology.
                    assert bool(index.added) == ("added" in what or "re-attached" in what), what
                    _compare(index, conn, rnd)  # with added edges beside the index, if any
                    # Added edges start a new topology in the background: wait for it.
                    deadline = time.monotonic() + 60
                    while state["building"] and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert not state["building"]
                    index = state["index"]
                    assert not index.added and index.graph_key == get_db().read(_follow).graph_key, what
                else:
                    index = route_index.build_now()
                    assert state["last"]["how"] == how, what
                cur = conn.cursor()
                cur.execute("SELECT version FROM indoor_versions WHERE name = 'graph'")
                assert index.graph_key.startswith(f"{cur.fetchone()[0]}-"), what
                conn.rollback()
                _compare(index, conn, rnd)
    finally:
        app.extensions["indoor.db"].close()
        conn.close()


def test_a_graph_the_index_cannot_hold_exactly_is_routed_by_windows(pg_cluster, redis_url, caplog):
    """A NaN cost (another tool's bad write): no index for that version, routes stay exact by windows."""
    url, net, conn = routing_network.network_database(pg_cluster, "index_nan", 5, (13.40, 52.52), 7)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE nav_edges_final SET cost = 'NaN' WHERE id = (SELECT max(id) FROM nav_edges_final)")
    app = _index_app(url, redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        with app.app_context():
            assert route_index.build_now() is None
        ids = sorted(v for v, (level, _, _) in net.vertices.items() if level == 0 and v not in net.island)
        (_, lon1, lat1), (_, lon2, lat2) = net.vertices[ids[0]], net.vertices[ids[-1]]
        response = app.test_client().get(f"/api/route/?from={lon1!r},{lat1!r},0&to={lon2!r},{lat2!r},0")
        assert response.status_code == 200
        record = [r for r in caplog.records if r.name == "indoor.route"][-1]
        assert not record.index and (record.window_tries or record.full_graph)
        # and no build is started again for this version
        assert not route_index._state(app)["building"]
    finally:
        app.extensions["indoor.db"].close()
        conn.close()


@pytest.mark.slow
def test_a_worker_answers_other_requests_while_its_index_builds(serve, fresh_database, workdir):
    """One gevent worker: the first route starts the build (seconds on this campus); health
    checks and routes are answered meanwhile, the latter exactly (by windows); then by the index."""
    url = fresh_database("index_busy")
    assert run_cli(url, "init-db").returncode == 0
    demo = run_cli(url, "demo", "--grid", "60", "--levels", "3", "--min-edges", "120000")
    assert demo.returncode == 0, demo.stderr
    server = serve(workers=1, DATABASE_URL=url, ROUTE_OVERLAY="false")
    log_path = workdir / f"gunicorn-{server.port}.log"
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid")
    rooms = [r[0] for r in cur.fetchall()]
    rnd = random.Random(3)

    def ready() -> bool:
        return any('"route index ready"' in line for line in log_path.read_text().splitlines())

    status, _ = get_json(f"{server.base_url}/api/route/?from={rooms[0]}&to={rooms[-1]}")
    assert status == 200
    answered_while_building = 0
    routes_while_building = []
    while not ready():
        status, _ = get_json(f"{server.base_url}/api/health/")
        assert status == 200
        if not ready():
            answered_while_building += 1
        a, b = rnd.sample(rooms, 2)
        status, body = get_json(f"{server.base_url}/api/route/?from={a}&to={b}")
        assert status in (200, 422)
        if status == 200 and not ready():
            routes_while_building.append(body["route"])
    assert answered_while_building >= 3 and routes_while_building
    for answer in routes_while_building[:3]:  # exact meanwhile
        reference = full_graph_distance(cur, answer["from"]["vertex"], answer["to"]["vertex"])
        expected = answer["from"]["connector_m"] + reference + answer["to"]["connector_m"]
        assert abs(answer["distance_m"] - expected) <= 0.01
    # Now the index answers (a pair not asked before), exactly.
    for _ in range(5):
        a, b = rnd.sample(rooms, 2)
        status, body = get_json(f"{server.base_url}/api/route/?from={a}&to={b}&profile=accessible")
        if status == 200:
            break
    assert status == 200
    answer = body["route"]
    reference = full_graph_distance(cur, answer["from"]["vertex"], answer["to"]["vertex"], "accessible")
    assert abs(answer["distance_m"] - (answer["from"]["connector_m"] + reference + answer["to"]["connector_m"])) <= 0.01
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    routes = [x for x in lines if x.get("message") == "route" and x.get("cache") == "MISS"]
    assert routes[-1]["index"] is True and not routes[-1]["window_tries"] and not routes[-1]["full_graph"]
    built = [x for x in lines if x.get("message") == "route index ready"]
    assert built[0]["edges"] >= 120000 and built[0]["how"] == "built"
    conn.close()


def test_an_edit_reaches_index_routes_within_1s(serve, fresh_database, workdir):
    """As deployed (index on, overlay off): an edit by psql changes the next routes within 1 s
    (meanwhile windows answer exactly), and the index follows the edited graph."""
    url = fresh_database("index_edit")
    assert run_cli(url, "init-db").returncode == 0
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        net = routing_network.build(cur, 8, (2.3522, 48.8566), grid=9)
    server = serve(workers=2, DATABASE_URL=url, ROUTE_OVERLAY="false")
    log_path = workdir / f"gunicorn-{server.port}.log"
    editor = psycopg2.connect(url)
    editor.autocommit = True
    cur = editor.cursor()
    ids = sorted(v for v, (level, _, _) in net.vertices.items() if level == 0 and v not in net.island)
    (_, lon1, lat1), (_, lon2, lat2) = net.vertices[ids[0]], net.vertices[ids[-1]]
    target = f"{server.base_url}/api/route/?from={lon1!r},{lat1!r},0&to={lon2!r},{lat2!r},0"

    def logged(message: str) -> list:
        lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
        return [x for x in lines if x.get("message") == message]

    # New pairs (uncached) until both workers have built their index.
    rnd = random.Random(8)
    deadline = time.monotonic() + 30
    while len(logged("route index ready")) < 2 and time.monotonic() < deadline:
        a, b = (net.vertices[v] for v in rnd.sample(ids, 2))
        get_json(f"{server.base_url}/api/route/?from={a[1]!r},{a[2]!r},0&to={b[1]!r},{b[2]!r},0")
        time.sleep(0.05)
    assert len(logged("route index ready")) == 2
    status, body = get_json(target)
    assert status == 200
    before = body["route"]["distance_m"]
    cur.execute(
        "UPDATE nav_edges_final SET cost = cost + 1000,"
        " reverse_cost = CASE WHEN reverse_cost >= 0 THEN reverse_cost + 1000 ELSE reverse_cost END"
        " WHERE source = %(v)s OR target = %(v)s",
        {"v": body["route"]["from"]["vertex"]},
    )
    routes_before = len(logged("route"))
    committed = time.monotonic()
    seen = []
    while (started := time.monotonic() - committed) < 2.5:
        status, body = get_json(target)
        assert status == 200
        seen.append((started, body["route"]["distance_m"]))
        time.sleep(0.01)
    late = [value for started, value in seen if started >= 1.0]
    assert len(late) >= 10 and all(abs(value - (before + 1000)) <= 0.01 for value in late), seen
    # Each worker's first route after the edit moved its index on (the change log: a few arcs
    # re-weighted in the route's own snapshot), so every route since was the index's.
    followed = [x["how"] for x in logged("route index ready")][2:]
    assert followed and set(followed) == {"followed"}, followed
    after = [x for x in logged("route")[routes_before:] if x["cache"] == "MISS"]
    assert after and all(x["index"] for x in after), after
    # New pairs, now answered by the index of each worker (the first route a worker computes
    # after the edit may still be a window's, while it re-weights), each exact.
    by_index = 0
    for _ in range(12):
        a, b = (net.vertices[v] for v in rnd.sample(ids, 2))
        status, body = get_json(f"{server.base_url}/api/route/?from={a[1]!r},{a[2]!r},0&to={b[1]!r},{b[2]!r},0")
        if status != 200:
            continue
        ends = body["route"]["from"], body["route"]["to"]
        expected = ends[0]["connector_m"] + full_graph_distance(cur, ends[0]["vertex"], ends[1]["vertex"])
        assert abs(body["route"]["distance_m"] - expected - ends[1]["connector_m"]) <= 0.01
        last = logged("route")[-1]
        by_index += last["index"] is True and last["source_vertex"] == ends[0]["vertex"]
        time.sleep(0.05)
    assert by_index >= 6
    editor.close()
