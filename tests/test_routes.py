"""GET /api/route/: exact routes (against networkx), legs, profiles, errors, cache and freshness."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from pathlib import Path

import networkx as nx
import psycopg2
import pytest
import redis

from indoor import create_app
from indoor.queries.routing import full_graph_distance
from indoor.routing.windows import covers, ellipse_cover
from scripts.services import free_port
from tests import routing_network
from tests.conftest import TEST_RATE_LIMITS, run_cli
from tests.http import get_json

# -- helpers ------------------------------------------------------------------------------


def route(client, origin, destination, profile=None):
    query = {"from": origin, "to": destination}
    if profile:
        query["profile"] = profile
    return client.get("/api/route/", query_string=query)


def assert_well_formed(body, origin_coordinates, destination_coordinates, profile):
    """Legs run from the start place to the end place without a gap; distances add up."""
    legs = body["features"]
    assert body["type"] == "FeatureCollection" and legs
    assert legs[0]["geometry"]["coordinates"][0] == origin_coordinates
    assert legs[-1]["geometry"]["coordinates"][-1] == destination_coordinates
    for before, after in zip(legs, legs[1:], strict=False):
        assert after["geometry"]["coordinates"][0] == before["geometry"]["coordinates"][-1]
        # A new leg only where the level or the kind changes.
        assert (before["properties"]["kind"], before["properties"]["level"]) != (
            after["properties"]["kind"],
            after["properties"]["level"],
        ) or "to_level" in before["properties"]
    for leg in legs:
        assert leg["type"] == "Feature" and leg["geometry"]["type"] == "LineString"
        assert len(leg["geometry"]["coordinates"]) >= 2
        if profile == "accessible":
            assert leg["properties"]["kind"] not in ("stairs", "escalator")
    summary = body["route"]
    assert abs(sum(leg["properties"]["distance_m"] for leg in legs) - summary["distance_m"]) <= 0.01 * len(legs)
    # Drawn in the direction of travel, edge after edge: the line is never longer than the cost
    # walked (costs are at least the geodesic length), so no edge is drawn back and forth.
    drawn = sum(_length_m(leg["geometry"]["coordinates"]) for leg in legs)
    assert drawn <= summary["distance_m"] * 1.02 + 1.0, (drawn, summary["distance_m"])
    steps = summary["instructions"]
    assert steps[-1]["text"].startswith("Arrive at")
    assert abs(sum(s["distance_m"] for s in steps) - summary["distance_m"]) <= 0.01 * len(steps)


def _length_m(coordinates) -> float:
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in zip(coordinates, coordinates[1:], strict=False):
        dx = (lon2 - lon1) * 111_320 * math.cos(math.radians((lat1 + lat2) / 2))
        total += math.hypot(dx, (lat2 - lat1) * 111_132)
    return total


def make_app(url, redis_url, **settings):
    # The in-memory route index off unless asked for: these tests watch windows and the overlay
    # (tests/test_route_index.py has the index's own).
    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "text",
            "ROUTE_INDEX": "false",
            **TEST_RATE_LIMITS,
            **settings,
        }  # fmt: skip
    )


def clear_route_cache(redis_url):
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("indoor:route:*"))
    if keys:
        client.delete(*keys)


# -- generated networks vs networkx ---------------------------------------------------------

NETWORKS = {
    # name: (seed, origin lon/lat): far north (long degrees of longitude are short) and far south-west.
    "tromso": (11, (18.9553, 69.6492)),
    "santiago": (23, (-70.6483, -33.4569)),
}


@pytest.fixture(scope="module")
def networks(pg_cluster, redis_url):
    built = {}

    def get(name):
        if name not in built:
            seed, origin = NETWORKS[name]
            url, net, conn = routing_network.network_database(pg_cluster, f"route_{name}", seed, origin)
            with conn.cursor() as cur:
                graphs = routing_network.graphs(cur)
            conn.rollback()
            # Windows only: the overlay has tests of its own (an app that built one would start
            # answering through it half-way through a test).
            built[name] = (url, net, graphs, conn, make_app(url, redis_url, ROUTE_OVERLAY="false"))
        return built[name]

    yield get
    for _, _, _, conn, app in built.values():
        conn.close()
        app.extensions["indoor.db"].close()


def _offset(lonlat, metres, rnd):
    lon, lat = lonlat
    angle = rnd.uniform(0, 2 * math.pi)
    return (
        lon + metres * math.cos(angle) / (111_320 * math.cos(math.radians(lat))),
        lat + metres * math.sin(angle) / 111_132,
    )


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_route_lengths_equal_an_independent_shortest_path_on_random_networks(networks, name, caplog):
    url, net, graphs, conn, app = networks(name)
    computed = _routes_equal_networkx(app, name, net, graphs, conn, caplog)
    assert any(r.window_tries >= 2 for r in computed), "no route needed a wider window"
    assert any(r.full_graph for r in computed), "no route fell back to the whole graph"
    assert sum(1 for r in computed if r.window_tries == 1 and not r.full_graph) > len(computed) / 3
    assert not any(r.overlay for r in computed)


# Small cells, so that these small networks have many (k-means parts of a level, cut corridors
# between them); in "crowded", most cells have too many boundary vertices and are dissolved.
# On networks this small the overlay outweighs the graph, so it is used whatever its share.
ALWAYS_USED = {"ROUTE_OVERLAY_MAX_SHARE": "1000"}
OVERLAYS = {
    "tromso": {"ROUTE_CELL_MAX_VERTICES": "40", "ROUTE_CELL_MAX_BOUNDARY": "64", **ALWAYS_USED},
    "santiago": {"ROUTE_CELL_MAX_VERTICES": "60", "ROUTE_CELL_MAX_BOUNDARY": "64", **ALWAYS_USED},
    "santiago-crowded": {"ROUTE_CELL_MAX_VERTICES": "60", "ROUTE_CELL_MAX_BOUNDARY": "8", **ALWAYS_USED},
}


@pytest.mark.parametrize("variant", sorted(OVERLAYS))
def test_overlay_route_lengths_equal_an_independent_shortest_path(networks, redis_url, variant, caplog):
    """The same pairs through the overlay's shortcuts: still exact, and faster on big graphs."""
    from indoor.queries.overlay import Built
    from indoor.routing import overlay

    name = variant.split("-")[0]
    url, net, graphs, conn, _ = networks(name)
    app = make_app(url, redis_url, ROUTE_OVERLAY="true", **OVERLAYS[variant])
    clear_route_cache(redis_url)  # the same pairs were asked by the windows test
    try:
        with app.app_context():
            built = overlay.build_now(force=True)
        assert isinstance(built, Built)
        levels = len({level for level, _, _ in net.vertices.values()})
        assert built.cells > 2 * levels and built.shortcuts > 0
        if variant.endswith("crowded"):
            assert built.dissolved_cells > 0
        else:
            assert built.dissolved_cells == 0
        computed = _routes_equal_networkx(app, name, net, graphs, conn, caplog)
        # Across cells always the overlay; within one a window first, the overlay when it cannot prove.
        assert sum(1 for r in computed if r.overlay) > len(computed) / 2
        assert not any(r.full_graph for r in computed)
        assert not any(r.window_tries > 1 for r in computed)
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)
        conn.rollback()


def _random_places(cur, net, rnd) -> list:
    """Every room and 30 points on or beside random vertices: (query value, lon, lat, level,
    the room's name or None)."""
    cur.execute("SELECT ogc_fid, text, level, ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points")
    places = [(str(room_id), lon, lat, level, label) for room_id, label, level, lon, lat in cur.fetchall()]
    vertex_ids = sorted(net.vertices)
    for _ in range(30):
        vid = rnd.choice(vertex_ids)
        level, lon, lat = net.vertices[vid]
        if rnd.random() < 0.5:
            lon, lat = _offset((lon, lat), rnd.uniform(0.5, 6), rnd)
        places.append((f"{lon!r},{lat!r},{level}", lon, lat, level, None))
    return places


def _routes_equal_networkx(app, name, net, graphs, conn, caplog) -> list:
    """Random place pairs (rooms, vertices, points beside them, neighbours across walls, pairs
    whose best path bends far out), both profiles, against networkx; the route log records."""
    client = app.test_client()
    rnd = random.Random(name)
    cur = conn.cursor()
    places = _random_places(cur, net, rnd)
    pairs = [(rnd.choice(places), rnd.choice(places)) for _ in range(120)]
    # Neighbours across the wall: a few metres apart, a long way round.
    for a, b in net.wall_pairs + [(a, b) for a, b, _ in net.gadgets]:
        for u, v in ((a, b), (b, a)):
            pa, pb = net.vertices[u], net.vertices[v]
            pairs.append(
                (
                    (f"{pa[1]!r},{pa[2]!r},{pa[0]}", pa[1], pa[2], pa[0], None),
                    (f"{pb[1]!r},{pb[2]!r},{pb[0]}", pb[1], pb[2], pb[0], None),
                )
            )
    caplog.set_level(logging.INFO, logger="indoor.route")
    checked = {"walking": 0, "accessible": 0}
    no_route = {"walking": 0, "accessible": 0}
    detours = 0
    for origin, destination in pairs:
        for profile in ("walking", "accessible"):
            s, s_m = routing_network.expected_snap(cur, origin[1], origin[2], origin[3], profile)
            t, t_m = routing_network.expected_snap(cur, destination[1], destination[2], destination[3], profile)
            response = route(client, origin[0], destination[0], profile)
            same = (round(origin[1], 7), round(origin[2], 7), origin[3]) == (
                round(destination[1], 7),
                round(destination[2], 7),
                destination[3],
            )
            if same:
                assert response.status_code == 200 and response.get_json()["route"]["distance_m"] == 0
                continue
            try:
                expected = s_m + nx.dijkstra_path_length(graphs[profile], s, t) + t_m if s != t else s_m + t_m
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                expected = None
            if expected is None:
                assert response.status_code == 422, (origin, destination, profile, response.get_json())
                assert response.get_json()["error"]["code"] == "no_route"
                no_route[profile] += 1
                continue
            assert response.status_code == 200, (origin, destination, profile, response.get_json())
            body = response.get_json()
            assert abs(body["route"]["distance_m"] - expected) <= 0.01, (origin[0], destination[0], profile)
            assert body["route"]["from"]["vertex"] == s and body["route"]["to"]["vertex"] == t
            assert abs(body["route"]["from"]["connector_m"] - s_m) <= 0.001
            assert abs(body["route"]["to"]["connector_m"] - t_m) <= 0.001
            assert_well_formed(
                body,
                [round(origin[1], 7), round(origin[2], 7)],
                [round(destination[1], 7), round(destination[2], 7)],
                profile,
            )
            if destination[4]:
                arrive = body["route"]["instructions"][-1]
                assert arrive["type"] == "arrive" and arrive["text"].startswith(f"Arrive at {destination[4]}")
            straight = math.hypot(
                (origin[1] - destination[1]) * 111_320 * math.cos(math.radians(origin[2])),
                (origin[2] - destination[2]) * 111_132,
            )
            if expected > 4 * straight + 50:
                detours += 1
            checked[profile] += 1
    assert checked["walking"] >= 100 and checked["accessible"] >= 80, checked
    # Rooms in the attic (stairs only) and on the island are among the pairs.
    assert no_route["accessible"] > no_route["walking"] > 0, no_route
    assert detours >= 10, "too few pairs whose best path leaves a small window"
    computed = [r for r in caplog.records if r.name == "indoor.route" and r.cache == "MISS"]
    caplog.clear()
    return computed


def _shortest(graph, cur, start, end, profile):
    """Snap both places (brute force) and walk networkx: the expected part, or None (no route)."""
    s, s_m = routing_network.expected_snap(cur, start[1], start[2], start[3], profile)
    t, t_m = routing_network.expected_snap(cur, end[1], end[2], end[3], profile)
    try:
        return s_m + (nx.dijkstra_path_length(graph, s, t) if s != t else 0.0) + t_m, s, t
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None, s, t


def _same(a, b) -> bool:
    return (round(a[1], 7), round(a[2], 7), a[3]) == (round(b[1], 7), round(b[2], 7), b[3])


def _vias_equal_networkx(app, name, net, graphs, conn) -> dict:
    """Random routes through 1-3 vias, both profiles: the sum of the parts' shortest paths, one
    continuous body that passes every via, a 'Reach' step for each."""
    client = app.test_client()
    rnd = random.Random(f"{name}-vias")
    cur = conn.cursor()
    places = _random_places(cur, net, rnd)
    counts = {"routed": 0, "no_route": 0}
    for _ in range(40):
        stops = [rnd.choice(places) for _ in range(rnd.randint(3, 5))]
        if rnd.random() < 0.2:
            stops[2] = stops[1]  # a via given twice in a row: a part of length 0
        query = {"from": stops[0][0], "to": stops[-1][0], "via": [p[0] for p in stops[1:-1]]}
        for profile in ("walking", "accessible"):
            response = client.get("/api/route/", query_string={**query, "profile": profile})
            parts = [
                (0.0, None, None) if _same(a, b) else _shortest(graphs[profile], cur, a, b, profile)
                for a, b in zip(stops, stops[1:], strict=False)
            ]
            if all(_same(a, b) for a, b in zip(stops, stops[1:], strict=False)):
                assert response.status_code == 200 and response.get_json()["route"]["distance_m"] == 0
                continue
            if any(cost is None for cost, _, _ in parts):
                assert response.status_code == 422, (query, profile, response.get_json())
                assert response.get_json()["error"]["code"] == "no_route"
                counts["no_route"] += 1
                continue
            assert response.status_code == 200, (query, profile, response.get_json())
            body = response.get_json()
            expected = sum(cost for cost, _, _ in parts)
            assert abs(body["route"]["distance_m"] - expected) <= 0.01 * len(parts), (query, profile)
            ends = [[round(p[1], 7), round(p[2], 7)] for p in (stops[0], stops[-1])]
            assert_well_formed(body, ends[0], ends[1], profile)
            assert len(body["route"]["via"]) == len(stops) - 2
            drawn = [c for leg in body["features"] for c in leg["geometry"]["coordinates"]]
            for via, described in zip(stops[1:-1], body["route"]["via"], strict=True):
                assert [round(via[1], 7), round(via[2], 7)] in drawn  # the route passes the via
                assert described["coordinates"] == [round(via[1], 7), round(via[2], 7)]
            texts = [step["text"] for step in body["route"]["instructions"]]
            nonempty = sum(1 for a, b in zip(stops, stops[1:], strict=False) if not _same(a, b))
            assert sum(1 for t in texts if t.startswith(("Reach ", "Arrive at "))) == nonempty
            counts["routed"] += 1
    conn.rollback()
    assert counts["routed"] >= 30 and counts["no_route"] >= 3, counts
    return counts


def _categories_equal_networkx(app, name, net, graphs, conn) -> dict:
    """to=category:C and from=category:C, both profiles: the room of C with the smallest route
    cost (path + connectors) over every room of C, on any level; 422 when none is reachable."""
    client = app.test_client()
    rnd = random.Random(f"{name}-categories")
    cur = conn.cursor()
    cur.execute("SELECT ogc_fid, level, ST_X(wkb_geometry), ST_Y(wkb_geometry), category FROM room_points")
    by_category = {}
    for room_id, level, lon, lat, category in cur.fetchall():
        if category:
            by_category.setdefault(category.lower(), []).append((str(room_id), lon, lat, level, room_id))
    places = _random_places(cur, net, rnd)
    counts = {"routed": 0, "no_route": 0}
    for _ in range(25):
        place = rnd.choice(places)
        category = rnd.choice(["toilets", "shop", "kiosk", "attic", "island"])
        for outward in (True, False):
            for profile in ("walking", "accessible"):
                query = {"from": place[0], "to": f"category:{category}", "profile": profile}
                if not outward:
                    query["from"], query["to"] = query["to"], query["from"]
                response = client.get("/api/route/", query_string=query)
                options = []
                for room in by_category[category]:
                    if _same(place, room):
                        options.append((0.0, room[4]))
                        continue
                    a, b = (place, room) if outward else (room, place)
                    cost, _, _ = _shortest(graphs[profile], cur, a, b, profile)
                    if cost is not None:
                        options.append((cost, room[4]))
                if not options:
                    assert response.status_code == 422, (query, response.get_json())
                    assert f"category '{category}'" in response.get_json()["error"]["message"]
                    counts["no_route"] += 1
                    continue
                assert response.status_code == 200, (query, response.get_json())
                body = response.get_json()["route"]
                best = min(cost for cost, _ in options)
                assert abs(body["distance_m"] - best) <= 0.02, (query, body["distance_m"], best)
                chosen = body["to" if outward else "from"]
                assert chosen["category"] == category
                assert chosen["room"] in {room for cost, room in options if cost <= best + 0.02}
                counts["routed"] += 1
    conn.rollback()
    assert counts["routed"] >= 40 and counts["no_route"] >= 5, counts
    return counts


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_via_and_category_routes_equal_an_independent_shortest_path(networks, name):
    url, net, graphs, conn, app = networks(name)
    _vias_equal_networkx(app, name, net, graphs, conn)
    _categories_equal_networkx(app, name, net, graphs, conn)


@pytest.mark.parametrize("variant", ["tromso", "santiago-crowded"])
def test_via_and_category_routes_through_the_overlay_and_components_equal_networkx(networks, redis_url, variant):
    from indoor.routing import overlay

    name = variant.split("-")[0]
    url, net, graphs, conn, _ = networks(name)
    app = make_app(url, redis_url, ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", **OVERLAYS[variant])
    clear_route_cache(redis_url)
    try:
        with app.app_context():
            assert not isinstance(overlay.build_now(force=True), str)
        _vias_equal_networkx(app, name, net, graphs, conn)
        _categories_equal_networkx(app, name, net, graphs, conn)
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)


def test_windowed_routes_equal_full_graph_pgr_dijkstra(networks):
    """The reference the benchmark uses agrees with the route endpoint, vertex to vertex."""
    from indoor.queries.routing import full_graph_distance

    url, net, graphs, conn, app = networks("tromso")
    client = app.test_client()
    rnd = random.Random(5)
    cur = conn.cursor()
    compared = 0
    for _ in range(40):
        a, b = rnd.sample(sorted(net.vertices), 2)
        pa, pb = net.vertices[a], net.vertices[b]
        for profile in ("walking", "accessible"):
            response = route(client, f"{pa[1]!r},{pa[2]!r},{pa[0]}", f"{pb[1]!r},{pb[2]!r},{pb[0]}", profile)
            reference = full_graph_distance(cur, a, b, profile)
            conn.rollback()
            body = response.get_json()
            if response.status_code == 422:
                continue
            if (body["route"]["from"]["vertex"], body["route"]["to"]["vertex"]) != (a, b):
                continue  # the point snapped elsewhere (a vertex the profile cannot use)
            assert reference is not None and abs(body["route"]["distance_m"] - reference) <= 0.01
            compared += 1
    assert compared >= 40


def test_every_first_window_gives_the_exact_answer(networks):
    """Whatever the first radius (too small, exact, generous), the search ends on the optimum."""
    from indoor.queries.routing import Snap, graph_extent
    from indoor.routing.search import shortest_path

    url, net, graphs, conn, app = networks("santiago")
    rnd = random.Random(9)
    cur = conn.cursor()

    def snap(vid):
        level, lon, lat = net.vertices[vid]
        return Snap(vid, lon, lat, level, 0.0)

    pairs = [(a, b, "walking") for a, b, _ in net.gadgets] + [(b, a, "accessible") for a, b, _ in net.gadgets]
    main = [v for v, (level, _, _) in net.vertices.items() if level in (0, 1, 2)]
    pairs += [(*rnd.sample(main, 2), rnd.choice(("walking", "accessible"))) for _ in range(40)]
    tries = set()
    for a, b, profile in pairs:
        try:
            optimum = nx.dijkstra_path_length(graphs[profile], a, b)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            optimum = None
        radii = [0.0, 1.0, rnd.uniform(0, 500)]
        if optimum is not None:
            radii += [optimum * f for f in (0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 2.0)] + [optimum - 0.5, optimum + 0.5]
        for radius in radii:
            search = shortest_path(
                cur, snap(a), snap(b), profile, first_radius=radius, extent=lambda: graph_extent(cur)
            )
            tries.add((search.window_tries, search.full_graph))
            if optimum is None:
                assert search.cost is None
            else:
                assert search.cost is not None and abs(search.cost - optimum) < 1e-6, (a, b, profile, radius)
                assert abs(sum(e.cost for e in search.edges) - optimum) < 1e-6
    conn.rollback()
    assert {(1, False), (2, False)} <= tries and any(full for _, full in tries)


# -- the search window --------------------------------------------------------------------


@pytest.mark.parametrize("origin", [(13.37, 52.52), (18.95, 69.65), (-70.65, -33.45), (103.8, 1.29)])
def test_search_window_contains_the_true_geodesic_ellipse(sql, origin):
    """Every point p with geo(s, p) + geo(p, t) <= R (PostGIS, on the spheroid) is inside the window."""
    rnd = random.Random(str(origin))
    lon, lat = origin
    cases = []
    for _ in range(40):
        s = (lon + rnd.uniform(-0.002, 0.002), lat + rnd.uniform(-0.002, 0.002))
        t = (s[0] + rnd.uniform(-0.004, 0.004), s[1] + rnd.uniform(-0.002, 0.002))
        for _ in range(25):
            share = rnd.uniform(-0.5, 1.5)
            p = (
                s[0] + share * (t[0] - s[0]) + rnd.uniform(-0.003, 0.003),
                s[1] + share * (t[1] - s[1]) + rnd.uniform(-0.0015, 0.0015),
            )
            cases.append((s, t, p))
    rows = sql(
        """SELECT ST_Distance(ST_MakePoint(c.sx, c.sy)::geography, ST_MakePoint(c.px, c.py)::geography)
                + ST_Distance(ST_MakePoint(c.px, c.py)::geography, ST_MakePoint(c.tx, c.ty)::geography),
                  ST_Distance(ST_MakePoint(c.sx, c.sy)::geography, ST_MakePoint(c.tx, c.ty)::geography)
             FROM unnest(%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[])
                  AS c(sx, sy, tx, ty, px, py)""",
        tuple(list(col) for col in zip(*[(s[0], s[1], t[0], t[1], p[0], p[1]) for s, t, p in cases], strict=True)),
    )
    inside = 0
    for (s, t, p), (through_p, direct) in zip(cases, rows, strict=True):
        # Half the radii put p right on the ellipse (the tight case), half anywhere.
        radius = through_p * (1 + 1e-9) if rnd.random() < 0.5 else direct * rnd.uniform(1.0, 1.6)
        if through_p <= radius:
            inside += 1
            assert covers(ellipse_cover(s, t, radius), p), (s, t, p, radius)
        # The window is not the whole world: points far outside the ellipse are left out.
        if through_p > radius * 2 + 10:
            assert not covers(ellipse_cover(s, t, radius), p)
    assert inside > 500


# -- the demo campus: profiles, instructions, errors ----------------------------------------


def _room_on(sql, level, order):
    return sql(
        f"SELECT ogc_fid, text FROM room_points WHERE level = %s AND category IS NULL ORDER BY ogc_fid {order} LIMIT 1",  # noqa: S608
        (level,),
    )[0]


def test_a_route_between_levels_has_legs_instructions_and_a_duration(client, sql):
    low, _ = _room_on(sql, 0, "ASC")
    high, high_name = _room_on(sql, 2, "DESC")
    response = route(client, low, high)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/geo+json")
    body = response.get_json()
    summary = body["route"]
    assert summary["profile"] == "walking" and summary["levels"][0] == 0 and 2 in summary["levels"]
    assert summary["from"]["room"] == low and summary["to"]["room"] == high and summary["to"]["name"] == high_name
    assert_well_formed(body, summary["from"]["coordinates"], summary["to"]["coordinates"], "walking")
    vertical = [leg["properties"] for leg in body["features"] if "to_level" in leg["properties"]]
    assert vertical and all(p["kind"] in ("stairs", "escalator", "elevator", "ramp") for p in vertical)
    texts = [s["text"] for s in summary["instructions"]]
    # The demo's connectors: stairs and escalators by kind, the elevator by its room's name.
    assert any(t.startswith(("Take the stairs up", "Take the escalator up", "Take Elevator A")) for t in texts), texts
    assert texts[-1].startswith(f"Arrive at {high_name}")
    penalties = {"stairs": 10.0, "escalator": 5.0, "elevator": 30.0}
    expected = summary["distance_m"] / 1.3 + sum(
        penalties.get(leg["properties"]["kind"], 0) for leg in body["features"]
    )
    assert abs(summary["duration_s"] - expected) <= 0.1
    assert summary["graph_version"] == sql("SELECT version FROM indoor_versions WHERE name = 'graph'")[0][0]


def test_an_uncached_route_logs_where_its_time_went_and_a_cached_one_does_not(client, sql, redis_url, caplog):
    """An operator reads one `route phases` line per route that was not a finished body in a cache:
    each phase's milliseconds, adding up to the request's route time."""
    cache = redis.Redis.from_url(redis_url)
    for key in cache.scan_iter("indoor:route:*"):  # other tests may have asked for this route
        cache.delete(key)
    low, _ = _room_on(sql, 0, "DESC")
    high, _ = _room_on(sql, 1, "ASC")
    caplog.set_level(logging.INFO, logger="indoor.route")
    assert route(client, low, high, "accessible").status_code == 200
    lines = [r for r in caplog.records if r.getMessage() == "route phases"]
    assert len(lines) == 1 and lines[0].cache == "MISS"
    phases = {k[: -len("_ms")]: v for k, v in vars(lines[0]).items() if k.endswith("_ms") and k != "total_ms"}
    assert {"versions", "cache", "slot", "snap", "search", "body", "encode", "cache_writes"} <= set(phases)
    assert all(v >= 0 for v in phases.values())
    assert sum(phases.values()) == pytest.approx(lines[0].total_ms, abs=0.05)
    caplog.clear()
    assert route(client, low, high, "accessible").status_code == 200  # the finished body, from a cache
    assert not [r for r in caplog.records if r.getMessage() == "route phases"]


def test_accessible_routes_take_the_elevator_and_are_never_shorter(client, sql):
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 2, "DESC")
    walking = route(client, low, high).get_json()["route"]
    response = route(client, low, high, "accessible")
    assert response.status_code == 200
    body = response.get_json()
    kinds = {leg["properties"]["kind"] for leg in body["features"]}
    assert "elevator" in kinds and not kinds & {"stairs", "escalator"}
    assert any(
        s["type"] == "level_change" and s["connector"]["kind"] == "elevator" and s["to_level"] == 2
        and re.fullmatch(r"Take Elevator A\d to level 2", s["text"])
        for s in body["route"]["instructions"]
    )  # fmt: skip
    assert body["route"]["profile"] == "accessible"
    assert body["route"]["distance_m"] >= walking["distance_m"]


def test_points_snap_to_the_nearest_vertex_of_their_level(client, sql):
    lon, lat = sql("SELECT ST_X(the_geom), ST_Y(the_geom) FROM nav_edges_work_vertices_pgr WHERE level = 1 LIMIT 1")[0]
    response = route(client, f"{lon + 0.00002},{lat}", f"{lon + 0.00002},{lat},1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["route"]["from"]["level"] == 0 and body["route"]["to"]["level"] == 1
    assert body["route"]["levels"][0] == 0 and body["route"]["levels"][-1] == 1
    # The straight connectors are part of the route: it starts and ends exactly at the points.
    assert body["features"][0]["geometry"]["coordinates"][0] == [round(lon + 0.00002, 7), round(lat, 7)]
    assert body["features"][-1]["geometry"]["coordinates"][-1] == [round(lon + 0.00002, 7), round(lat, 7)]


def test_same_start_and_end_is_a_route_of_length_zero(client, sql):
    room, name = _room_on(sql, 1, "ASC")
    for origin, destination in ((room, room), ("13.37,52.525,1", "13.37,52.525,1.0")):
        response = route(client, origin, destination)
        assert response.status_code == 200
        summary = response.get_json()["route"]
        assert summary["distance_m"] == 0 and summary["duration_s"] == 0
    assert route(client, room, room).get_json()["route"]["instructions"][-1]["text"].startswith(f"Arrive at {name}")


def test_unknown_room_is_404(client):
    for origin, destination, parameter in (("2147483647", "1", "from"), ("1", "2147483646", "to")):
        response = route(client, origin, destination)
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert error["code"] == "not_found" and f"'{parameter}'" in error["message"]


@pytest.mark.parametrize(
    "query, parameter",
    [
        ({"to": "1"}, "from"),
        ({"from": "1"}, "to"),
        ({"from": "", "to": "1"}, "from"),
        ({"from": "abc", "to": "1"}, "from"),
        ({"from": "1", "to": "1.5"}, "to"),
        ({"from": "-5", "to": "1"}, "from"),
        ({"from": "99999999999999999999", "to": "1"}, "from"),
        ({"from": "2147483648", "to": "1"}, "from"),
        ({"from": "nan,52.5", "to": "1"}, "from"),
        ({"from": "13.37,nan", "to": "1"}, "from"),
        ({"from": "inf,52.5", "to": "1"}, "from"),
        ({"from": "13.37,52.5,nan", "to": "1"}, "from"),
        ({"from": "13.37,52.5,Infinity", "to": "1"}, "from"),
        ({"from": "1e999,52.5", "to": "1"}, "from"),
        ({"from": "181,52.5", "to": "1"}, "from"),
        ({"from": "13.37,-90.5", "to": "1"}, "from"),
        ({"from": "1", "to": "13.37,52.5,1,2"}, "to"),
        ({"from": "1", "to": "13.37,,1"}, "to"),
        ({"from": "1", "to": "13.37,52.5,x"}, "to"),
        ({"from": "1", "to": "13.37;52.5"}, "to"),
        ({"from": "1", "to": "1", "profile": "wheelchair"}, "profile"),
        ({"from": "1", "to": "1", "profile": "WALKING"}, "profile"),
        ({"from": "1'; DROP TABLE room_points; --", "to": "1"}, "from"),
        ({"from": "1\x00", "to": "1"}, "from"),
    ],
)
def test_bad_places_and_profiles_are_400_naming_the_parameter(client, query, parameter):
    response = client.get("/api/route/", query_string=query)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and f"'{parameter}'" in error["message"]
    assert "SELECT" not in error["message"] and "Traceback" not in response.get_data(as_text=True)


def test_repeated_parameters_are_400(client):
    response = client.get("/api/route/?from=1&from=2&to=3")
    assert response.status_code == 400 and "'from'" in response.get_json()["error"]["message"]


# -- no route -----------------------------------------------------------------------------


def test_not_connected_and_stairs_only_are_422_no_route(networks):
    url, net, graphs, conn, app = networks("tromso")
    client = app.test_client()
    cur = conn.cursor()
    cur.execute("SELECT text, ogc_fid FROM room_points WHERE text IN ('Attic room', 'Island room', 'R01')")
    ids = dict(cur.fetchall())
    conn.rollback()
    for origin, destination, profile in (
        (ids["R01"], ids["Island room"], "walking"),
        (ids["Island room"], ids["Attic room"], "accessible"),
        (ids["R01"], ids["Attic room"], "accessible"),
    ):
        response = route(client, origin, destination, profile)
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"]["code"] == "no_route"
        # Asked again, the answer comes from the cache: still 422, not a stale 200.
        again = route(client, origin, destination, profile)
        assert again.status_code == 422 and again.headers["X-Cache"] == "HIT"
    # By stairs, the attic is reachable.
    assert route(client, ids["R01"], ids["Attic room"], "walking").status_code == 200
    # A level with no network at all: nothing to snap to.
    response = route(client, ids["R01"], f"{net.origin[0]},{net.origin[1]},7")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_route"
    assert "'to'" in response.get_json()["error"]["message"]


def test_places_far_from_the_network_are_refused_naming_the_parameter_and_the_distance(small_network, caplog):
    """A place snaps only within ROUTE_MAX_SNAP_M of a usable vertex of its level; farther, 422
    (a room 10 km away, the two ends of the world), with no path search at all."""
    url, net = small_network
    level, lon, lat = net.vertices[1]
    m_per_deg_lon = 111_320 * math.cos(math.radians(lat))
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO room_points (text, level, wkb_geometry)"
            " VALUES ('Far away', 0, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING ogc_fid",
            (lon + 10_000 / m_per_deg_lon, lat),
        )
        far_room = cur.fetchone()[0]
        cur.execute("SELECT min(ogc_fid) FROM room_points WHERE text <> 'Far away' AND level = 0")
        near_room = cur.fetchone()[0]
        _, nearest_m = routing_network.expected_snap(cur, lon + 10_000 / m_per_deg_lon, lat, 0, "walking", 1e9)
    app = make_app(url, "", ROUTE_OVERLAY="false", ROUTE_MAX_SNAP_M="30")
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        response = route(client, near_room, far_room)
        assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_route"
        message = response.get_json()["error"]["message"]
        assert "'to'" in message and "ROUTE_MAX_SNAP_M" in message and "30 m" in message
        metres = float(message.split(" m from")[0].rsplit(" ", 1)[1])
        assert abs(metres - nearest_m) <= 0.01 * nearest_m + 1, (message, nearest_m)
        for origin, destination, name in (("-180,0", "180,0", "'from'"), (f"{lon!r},{lat!r}", "180,0", "'to'")):
            response = route(client, origin, destination)
            assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_route"
            assert name in response.get_json()["error"]["message"]
        # A point 20 m south-west of the grid's corner still snaps (its connector is part of the
        # route), 45 m does not.
        for offset, status in ((20, 200), (45, 422)):
            d = offset / math.sqrt(2)
            point = (lon - d / m_per_deg_lon, lat - d / 111_132)
            with psycopg2.connect(url) as conn, conn.cursor() as cur:
                vertex, metres = routing_network.expected_snap(cur, *point, level, "walking", 30.0)
            answer = route(client, f"{point[0]!r},{point[1]!r},{level}", near_room)
            assert answer.status_code == status, answer.get_json()
            if status == 200:
                assert 19 < metres <= 30 and answer.get_json()["route"]["from"]["vertex"] == vertex
                assert abs(answer.get_json()["route"]["from"]["connector_m"] - metres) <= 0.001
            else:
                assert vertex is None and "'from'" in answer.get_json()["error"]["message"]
        # No path was searched for a refusal: every one came from the snap.
        assert sum(1 for r in caplog.records if r.name == "indoor.route") == 1  # only the 200 above
    finally:
        app.extensions["indoor.db"].close()


def test_a_route_via_rooms_is_the_sum_of_its_parts_and_is_cached(client, sql):
    low, _ = _room_on(sql, 0, "ASC")
    middle, middle_name = _room_on(sql, 1, "DESC")
    high, _ = _room_on(sql, 2, "DESC")
    query = {"from": low, "via": [middle, high], "to": low, "profile": "accessible"}
    first = client.get("/api/route/", query_string=query)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    parts = [
        route(client, a, b, "accessible").get_json()["route"]["distance_m"]
        for a, b in ((low, middle), (middle, high), (high, low))
    ]
    assert abs(body["route"]["distance_m"] - sum(parts)) <= 0.03
    assert [v["room"] for v in body["route"]["via"]] == [middle, high]
    assert body["route"]["from"]["room"] == low and body["route"]["to"]["room"] == low
    coordinates = body["route"]["from"]["coordinates"]
    assert_well_formed(body, coordinates, coordinates, "accessible")
    texts = [step["text"] for step in body["route"]["instructions"]]
    assert f"Reach {middle_name}" in texts and texts[-1].startswith("Arrive at")
    again = client.get("/api/route/", query_string=query)
    assert again.headers["X-Cache"] == "HIT" and again.get_data() == first.get_data()
    # In another order, another route (the order is kept).
    other = client.get("/api/route/", query_string={**query, "via": [high, middle]})
    assert [v["room"] for v in other.get_json()["route"]["via"]] == [high, middle]


def test_the_nearest_room_of_a_category_on_the_demo_campus(client, sql):
    low, _ = _room_on(sql, 0, "ASC")
    toilets = {row[0] for row in sql("SELECT ogc_fid FROM room_points WHERE category = 'toilets'")}
    assert len(toilets) >= 3  # the demo's facilities: one per level at least
    response = client.get("/api/route/", query_string={"from": low, "to": "category:Toilets"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()["route"]
    assert body["to"]["room"] in toilets and body["to"]["category"] == "Toilets"
    # No room of the category is nearer by route than the one chosen.
    for room in toilets:
        other = route(client, low, room).get_json()["route"]["distance_m"]
        assert other >= body["distance_m"] - 0.01
    # From the nearest elevator, accessible, to a room on level 2.
    high, _ = _room_on(sql, 2, "DESC")
    response = client.get(
        "/api/route/", query_string={"from": "category:elevator", "to": high, "profile": "accessible"}
    )
    assert response.status_code == 200 and response.get_json()["route"]["from"]["name"].startswith("Elevator")
    again = client.get("/api/route/", query_string={"from": "category:elevator", "to": high, "profile": "accessible"})
    assert again.headers["X-Cache"] == "HIT" and again.get_data() == response.get_data()


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ({"from": "1", "to": "category:no such thing"}, 404, ["category 'no such thing'", "'to'"]),
        ({"from": "category:", "to": "1"}, 400, ["'from'", "category"]),
        ({"from": "category:toilets", "to": "category:shop"}, 400, ["'from'", "'to'"]),
        ({"from": "1", "to": "2", "via": ["category:toilets"]}, 400, ["'via'", "category"]),
        ({"from": "1", "to": "2", "via": ["3"] * 6}, 400, ["'via'", "at most 5"]),
        ({"from": "1", "to": "2", "via": ["nowhere"]}, 400, ["'via'"]),
        ({"from": "1", "to": "2", "via": [""]}, 400, ["'via'"]),
        ({"from": "1", "to": "2", "via": ["999999999"]}, 404, ["'via' #1"]),
    ],
)
def test_bad_vias_and_categories_are_clear_errors(client, query, status, words):
    response = client.get("/api/route/", query_string=query)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == {400: "bad_request", 404: "not_found"}[status]
    for word in words:
        assert word in error["message"], error


# -- cache --------------------------------------------------------------------------------


def test_second_request_is_a_cache_hit_with_the_same_body(client, sql, redis_url):
    clear_route_cache(redis_url)
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 1, "DESC")
    first = route(client, low, high)
    second = route(client, low, high)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.get_json() == second.get_json()
    # Another way to name the same two vertices hits the cached path too.
    summary = first.get_json()["route"]
    lon, lat = summary["from"]["coordinates"]
    third = route(client, f"{lon},{lat},{summary['from']['level']}", high)
    assert third.headers["X-Cache"] == "HIT"
    assert third.get_json()["route"]["distance_m"] == summary["distance_m"]


def test_routes_are_served_when_redis_is_down(database_url, sql):
    app = make_app(database_url, f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 2, "DESC")
    answers = [route(client, low, high) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_json()["route"]["distance_m"] > 0
    # Computed without Redis, then served from the worker's own memory (same versions, same body).
    assert [a.headers["X-Cache"] for a in answers] == ["MISS", "HIT"]
    assert answers[1].get_data() == answers[0].get_data()
    app.extensions["indoor.db"].close()
    # Without the worker's memory either, every answer is computed: still 200, never a 500.
    bare = make_app(database_url, f"redis://127.0.0.1:{free_port()}/0", ROUTE_LOCAL_CACHE_ENTRIES=0)
    answers = [route(bare.test_client(), low, high) for _ in range(2)]
    assert [(a.status_code, a.headers["X-Cache"]) for a in answers] == [(200, "MISS"), (200, "MISS")]
    bare.extensions["indoor.db"].close()


def test_a_cached_route_needs_no_graph_tables(networks, redis_url):
    """While an import holds the network tables locked, cached routes are still served."""
    url, net, graphs, conn, _ = networks("santiago")
    app = make_app(url, redis_url, PG_STATEMENT_TIMEOUT_MS=400)
    client = app.test_client()
    cur = conn.cursor()
    cur.execute("SELECT ogc_fid FROM room_points WHERE text IN ('R03', 'R04', 'R05') ORDER BY text")
    a, b, c = (row[0] for row in cur.fetchall())
    conn.rollback()
    assert route(client, a, b).status_code == 200
    blocker = psycopg2.connect(url)
    try:
        with blocker.cursor() as locked:
            locked.execute("LOCK TABLE nav_edges_final, nav_edges_work_vertices_pgr IN ACCESS EXCLUSIVE MODE")
            cached = route(client, a, b)
            assert cached.status_code == 200 and cached.headers["X-Cache"] == "HIT"
            uncached = route(client, a, c)
            assert uncached.status_code == 503 and uncached.get_json()["error"]["code"] == "unavailable"
    finally:
        blocker.rollback()
        blocker.close()
        app.extensions["indoor.db"].close()


# -- freshness ----------------------------------------------------------------------------


def _poll(url, since, value, until=1.4):
    """(seconds after `since` the request started, value(body)) for requests until `until` s."""
    seen = []
    while (started := time.monotonic() - since) < until:
        status, body = get_json(url)
        assert status == 200
        seen.append((started, value(body)))
        time.sleep(0.01)
    return seen


@pytest.fixture
def small_network(fresh_database):
    url = fresh_database("route_edit")
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        net = routing_network.build(cur, 3, (13.40, 52.52), grid=7)
    return url, net


# Small cells, so that the routes of this small network cross several and use shortcuts.
SMALL_CELLS = {"ROUTE_CELL_MAX_VERTICES": "20", **ALWAYS_USED}

OVERLAY_IS_CURRENT = """
SELECT o.graph_key = v.version || '-' || (extract(epoch FROM v.changed_at) * 1000000)::bigint
  FROM indoor_route_overlay o, indoor_versions v
 WHERE v.name = 'graph'
"""


def test_an_edit_by_another_client_changes_the_next_route_within_1s(serve, small_network, workdir):
    """With the overlay on, as deployed: an edit makes it stale at once (routes fall back to
    windows, fresh within 1 s), and the service rebuilds it in the background."""
    url, net = small_network
    built = run_cli(url, "build-overlay", env=SMALL_CELLS)
    assert built.returncode == 0 and " cells" in built.stdout, built.stderr
    server = serve(
        workers=2,
        DATABASE_URL=url,
        ROUTE_OVERLAY="true",
        ROUTE_INDEX="false",
        ROUTE_OVERLAY_SETTLE_S="0.2",
        ROUTE_OVERLAY_MIN_INTERVAL_S="0.5",
        **SMALL_CELLS,
    )
    editor = psycopg2.connect(url)
    editor.autocommit = True
    cur = editor.cursor()
    cur.execute("SELECT ogc_fid FROM room_points WHERE level = 0 ORDER BY ogc_fid")
    level, lon, lat = net.vertices[1]  # a corner of the level 0 grid
    for (b,) in cur.fetchall():  # a room on level 0 that a route reaches
        target = f"{server.base_url}/api/route/?from={lon!r},{lat!r},0&to={b}"
        status, body = get_json(target)
        if status == 200 and body["route"]["distance_m"] > 20:
            break
    assert status == 200
    before = body["route"]["distance_m"]
    for _ in range(6):  # both workers have it cached
        assert get_json(target)[1]["route"]["distance_m"] == before
    # Every edge at the start vertex costs 1000 m more: the route must become exactly that longer.
    cur.execute(
        "UPDATE nav_edges_final SET cost = cost + 1000,"
        " reverse_cost = CASE WHEN reverse_cost >= 0 THEN reverse_cost + 1000 ELSE reverse_cost END"
        " WHERE source = %(v)s OR target = %(v)s",
        {"v": body["route"]["from"]["vertex"]},
    )
    committed = time.monotonic()
    seen = _poll(target, committed, lambda b: b["route"]["distance_m"])
    # The contract: nothing older than the edit is served once 1 s has passed (every worker).
    late = [value for started, value in seen if started >= 1.0]
    assert len(late) >= 10 and all(abs(value - (before + 1000)) <= 0.01 for value in late), seen
    assert any(abs(value - (before + 1000)) <= 0.01 for started, value in seen if started < 1.0)
    # Moving a room is seen as fast.
    cur.execute(
        "UPDATE room_points SET wkb_geometry = ST_Translate(wkb_geometry, 0.0001, 0) WHERE ogc_fid = %s RETURNING"
        " ST_X(wkb_geometry), ST_Y(wkb_geometry)",
        (b,),
    )
    moved = [round(x, 7) for x in cur.fetchone()]
    committed = time.monotonic()
    seen = _poll(target, committed, lambda b: b["route"]["to"]["coordinates"])
    late = [value for started, value in seen if started >= 1.0]
    assert len(late) >= 10 and all(value == moved for value in late), seen
    # The routes after the edit found the overlay stale: it is rebuilt for the edited graph...
    deadline = time.monotonic() + 30
    while not _fetch_one(cur, OVERLAY_IS_CURRENT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _fetch_one(cur, OVERLAY_IS_CURRENT), "the overlay was not rebuilt after the edit"
    # ... and the routes it answers (the way back: a pair not cached) are the edited graph's.
    back = f"{server.base_url}/api/route/?from={b}&to={lon!r},{lat!r},0"
    status, body = get_json(back)
    assert status == 200
    ends = body["route"]["from"], body["route"]["to"]
    expected = (
        ends[0]["connector_m"] + full_graph_distance(cur, ends[0]["vertex"], ends[1]["vertex"]) + ends[1]["connector_m"]
    )
    assert abs(body["route"]["distance_m"] - expected) <= 0.01
    assert body["route"]["distance_m"] > 1000  # the way back leaves the start vertex's edges too
    log = (workdir / f"gunicorn-{server.port}.log").read_text().splitlines()
    routes = [json.loads(line) for line in log if line.startswith("{") and '"message": "route"' in line]
    assert routes[-1]["source_vertex"] == ends[0]["vertex"] and routes[-1]["overlay"] is True, routes[-1]
    editor.close()


def _fetch_one(cur, query):
    cur.execute(query)
    return cur.fetchone()[0]


def _corner_to_corner(net):
    """Two far corners of level 0's grid (not the island), as API places."""
    ids = sorted(v for v, (level, _, _) in net.vertices.items() if level == 0 and v not in net.island)
    (_, lon1, lat1), (_, lon2, lat2) = net.vertices[ids[0]], net.vertices[ids[-1]]
    return f"{lon1!r},{lat1!r},0", f"{lon2!r},{lat2!r},0"


def test_routes_are_answered_while_the_overlay_is_being_rebuilt(small_network, redis_url):
    """A rebuild is one long transaction on our own tables; routes never wait for it."""
    from indoor.queries import overlay as overlay_queries

    url, net = small_network
    app = make_app(url, "", ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", **SMALL_CELLS)
    origin, destination = _corner_to_corner(net)
    builder = psycopg2.connect(url)
    try:
        with builder.cursor() as cur:
            first = overlay_queries.build(cur, max_vertices=20, max_boundary=64)
        builder.commit()
        assert isinstance(first, overlay_queries.Built)
        through_overlay = route(app.test_client(), origin, destination)
        assert through_overlay.status_code == 200
        # A second build, forced, holds its transaction open (as a long one would) ...
        with builder.cursor() as cur:
            assert isinstance(
                overlay_queries.build(cur, max_vertices=20, max_boundary=64, force=True), overlay_queries.Built
            )
        started = time.monotonic()
        fresh_app = make_app(
            url, "", ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", PG_STATEMENT_TIMEOUT_MS="3000", **SMALL_CELLS
        )
        answer = route(fresh_app.test_client(), origin, destination)
        # ... and a route in the meantime reads the committed overlay, at once.
        assert answer.status_code == 200 and time.monotonic() - started < 2.0
        assert answer.get_json()["route"]["distance_m"] == through_overlay.get_json()["route"]["distance_m"]
        builder.commit()
        fresh_app.extensions["indoor.db"].close()
    finally:
        builder.close()
        app.extensions["indoor.db"].close()


def test_overlay_builds_are_one_at_a_time_and_spaced(small_network):
    """Busy while another builder runs; within the spacing after a build, a changed graph waits."""
    from indoor.queries import overlay as overlay_queries

    url, net = small_network
    first, second = psycopg2.connect(url), psycopg2.connect(url)
    try:
        with first.cursor() as cur:
            assert isinstance(overlay_queries.build(cur, max_vertices=20, max_boundary=64), overlay_queries.Built)
            with second.cursor() as other:
                assert overlay_queries.build(other, max_vertices=20, max_boundary=64) == "busy"
            second.rollback()
        first.commit()
        with first.cursor() as cur:
            assert overlay_queries.build(cur, max_vertices=20, max_boundary=64) == "fresh"
            cur.execute("UPDATE nav_edges_final SET cost = cost + 1 WHERE id = (SELECT min(id) FROM nav_edges_final)")
        first.commit()
        with first.cursor() as cur:
            assert overlay_queries.build(cur, max_vertices=20, max_boundary=64, min_interval_s=60) == "recent"
        first.rollback()
        with first.cursor() as cur:  # no spacing asked (the CLI): built
            assert isinstance(overlay_queries.build(cur, max_vertices=20, max_boundary=64), overlay_queries.Built)
        first.commit()
    finally:
        first.close()
        second.close()


def test_an_overlay_bigger_than_its_share_of_the_graph_is_not_used(small_network, caplog):
    """Every route through the overlay loads all its shortcuts: on a small network, windows."""
    from indoor.routing import overlay

    url, net = small_network
    app = make_app(url, "", ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", ROUTE_CELL_MAX_VERTICES="20")
    try:
        with app.app_context():
            built = overlay.build_now()
        assert built.shortcuts + built.edges_between_cells > 0.1 * built.edges
        caplog.set_level(logging.INFO, logger="indoor.route")
        assert route(app.test_client(), *_corner_to_corner(net)).status_code == 200
        (line,) = [r for r in caplog.records if r.name == "indoor.route"]
        assert not line.overlay and line.window_tries >= 1
        assert "indoor.overlay_rebuild" not in app.extensions  # current, so no rebuild was asked for
    finally:
        app.extensions["indoor.db"].close()


def test_a_database_without_the_overlay_tables_routes_by_windows(small_network):
    """An init-db of an older release made no overlay tables: routes are still exact."""
    url, net = small_network
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE indoor_route_overlay, indoor_route_cells, indoor_route_edges, indoor_route_shortcuts")
    app = make_app(url, "", ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60")
    try:
        origin, destination = _corner_to_corner(net)
        answer = route(app.test_client(), origin, destination)
        assert answer.status_code == 200
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            ends = answer.get_json()["route"]["from"], answer.get_json()["route"]["to"]
            expected = full_graph_distance(cur, ends[0]["vertex"], ends[1]["vertex"])
        assert (
            abs(answer.get_json()["route"]["distance_m"] - expected - ends[0]["connector_m"] - ends[1]["connector_m"])
            <= 0.01
        )
    finally:
        app.extensions["indoor.db"].close()


def test_pairs_in_different_components_are_refused_without_a_search(networks, redis_url, caplog):
    """The overlay build stores the components per profile: an unconnected pair is answered at
    once (the log says by what); after an edit, until the next build, the search decides."""
    from indoor.routing import overlay

    url, net, graphs, conn, _ = networks("tromso")
    app = make_app(url, redis_url, ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", ROUTE_VERSION_MAX_AGE_S="0")
    client = app.test_client()
    clear_route_cache(redis_url)
    cur = conn.cursor()
    cur.execute("SELECT text, ogc_fid FROM room_points WHERE text IN ('Attic room', 'Island room', 'R01', 'R02')")
    ids = dict(cur.fetchall())
    conn.rollback()
    caplog.set_level(logging.INFO, logger="indoor.route")
    try:
        with app.app_context():
            assert not isinstance(overlay.build_now(force=True), str)
        cases = [
            (ids["R01"], ids["Island room"], "walking"),
            (ids["Island room"], ids["R02"], "accessible"),
            (ids["R01"], ids["Attic room"], "accessible"),  # stairs only
        ]
        for origin, destination, profile in cases:
            response = route(client, origin, destination, profile)
            assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_route"
        lines = [r for r in caplog.records if r.name == "indoor.route"]
        assert [r.decided_by for r in lines] == ["components"] * 3
        assert all(r.edges_loaded == 0 and r.pgrouting_ms == 0 and not r.found for r in lines)
        # Connected pairs are searched as before (the attic by stairs, walking).
        caplog.clear()
        assert route(client, ids["R01"], ids["Attic room"], "walking").status_code == 200
        assert [r.decided_by for r in caplog.records if r.name == "indoor.route"] == ["search"]
        # An edit makes the components stale: the next unconnected pair is searched, as before.
        with psycopg2.connect(url) as editor, editor.cursor() as edit:
            edit.execute("UPDATE nav_edges_final SET cost = cost WHERE id = (SELECT min(id) FROM nav_edges_final)")
        caplog.clear()
        assert route(client, ids["R02"], ids["Island room"], "walking").status_code == 422
        (line,) = [r for r in caplog.records if r.name == "indoor.route"]
        assert line.decided_by == "search" and line.edges_loaded > 0
    finally:
        app.extensions["indoor.db"].close()
        clear_route_cache(redis_url)


@pytest.mark.parametrize(
    "foreign",
    [
        "ANALYZE",  # every table, ours included, locked until that transaction ends
        "LOCK TABLE indoor_route_edges IN SHARE UPDATE EXCLUSIVE MODE",
        "LOCK TABLE indoor_route_shortcuts IN SHARE MODE",
    ],
)
def test_an_overlay_rebuild_gives_up_on_a_foreign_lock_and_routes_keep_answering(small_network, foreign):
    """Another client's open transaction holds a lock the build needs: the build returns
    "locked" after ROUTE_OVERLAY_LOCK_TIMEOUT_S instead of waiting, routes answer meanwhile, and
    once that transaction ends the build goes through."""
    from indoor.routing import overlay

    url, net = small_network
    app = make_app(
        url, "", ROUTE_OVERLAY="true", ROUTE_OVERLAY_SETTLE_S="60", ROUTE_OVERLAY_LOCK_TIMEOUT_S="0.3", **SMALL_CELLS
    )
    other = psycopg2.connect(url)
    try:
        with app.app_context():
            assert not isinstance(overlay.build_now(), str)
        origin, destination = _corner_to_corner(net)
        with other.cursor() as cur:
            cur.execute(foreign)  # and the transaction stays open
        # Without a lock timeout this would wait for the foreign transaction, which never ends here.
        with app.app_context():
            assert overlay.build_now(force=True) == "locked"
        answer = route(app.test_client(), origin, destination)
        assert answer.status_code == 200, answer.get_json()
        other.rollback()
        with app.app_context():
            assert not isinstance(overlay.build_now(force=True), str)
    finally:
        other.close()
        app.extensions["indoor.db"].close()


# -- operations ---------------------------------------------------------------------------


def test_each_computed_route_logs_one_structured_line(client, sql, caplog, redis_url):
    clear_route_cache(redis_url)
    caplog.set_level(logging.INFO, logger="indoor.route")
    low, _ = _room_on(sql, 1, "ASC")
    high, _ = _room_on(sql, 2, "ASC")
    first = route(client, low, high)
    second = route(client, low, high)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    lines = [r for r in caplog.records if r.name == "indoor.route"]
    assert [r.cache for r in lines] == ["MISS"]  # one line per computed route; a cached answer adds none
    miss = lines[0]
    # Searched by pgRouting (windows, overlay), or by the route index when its build (started by
    # this route's snap, tens of milliseconds here) ended before the search.
    searched = miss.pgrouting_ms > 0 and miss.edges_loaded > 0 and (miss.window_tries >= 1 or miss.overlay)
    assert searched or (miss.index and miss.pgrouting_ms == 0), vars(miss)
    assert miss.total_ms >= miss.pgrouting_ms and miss.profile == "walking"


def _libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_pooled_connections_load_pgrouting_before_the_first_route(app, direct_database_url):
    with app.app_context():
        from indoor.extensions import get_db

        with get_db().connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pooled = cur.fetchone()[0]
            assert "pgrouting" in _libraries(pooled)
    # A plain connection (straight to PostgreSQL: pgbouncer could lend a warmed backend) has not
    # loaded it: the check above can fail.
    plain = psycopg2.connect(direct_database_url)
    with plain.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert "pgrouting" not in _libraries(cur.fetchone()[0])
    plain.close()


def test_route_body_is_json_geojson(client, sql):
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 0, "DESC")
    response = route(client, low, high)
    body = json.loads(response.get_data())
    for leg in body["features"]:
        for lon, lat in leg["geometry"]["coordinates"]:
            assert -180 <= lon <= 180 and -90 <= lat <= 90
            assert round(lon, 7) == lon and round(lat, 7) == lat


def test_a_restart_with_another_routing_model_never_serves_the_old_durations(database_url, redis_url, sql):
    """Same Redis, same graph: a worker started with another walking speed or elevator penalty
    computes its own answer instead of the body the first one cached (for ROUTE_CACHE_TTL_S)."""
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 2, "DESC")
    clear_route_cache(redis_url)
    durations = {}
    for model in ({}, {"WALKING_SPEED_MPS": "2.6"}, {"WALKING_SPEED_MPS": "2.6", "ELEVATOR_PENALTY_S": "90"}):
        app = make_app(database_url, redis_url, **model)
        try:
            body = route(app.test_client(), low, high, "accessible").get_json()
        finally:
            app.extensions["indoor.db"].close()
        summary = body["route"]
        elevators = sum(leg["properties"]["kind"] == "elevator" for leg in body["features"])
        assert elevators >= 1
        speed = float(model.get("WALKING_SPEED_MPS", 1.3))
        expected = summary["distance_m"] / speed + elevators * float(model.get("ELEVATOR_PENALTY_S", 30))
        assert abs(summary["duration_s"] - expected) <= 0.1, (model, summary["duration_s"], expected)
        durations[tuple(model.items())] = summary["duration_s"]
    assert len(set(durations.values())) == 3
