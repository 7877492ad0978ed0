"""A real building: Berlin Hauptbahnhof from OpenStreetMap (../shared/data/osm, ODbL)."""

import xml.etree.ElementTree as ET

import psycopg2
import pytest

from tests.conftest import SHARED_DATA, run_cli

OSM = SHARED_DATA / "osm" / "berlin_hbf.osm"


@pytest.fixture(scope="module")
def station_url(pg_cluster):
    url = pg_cluster.create_database("berlin_hbf")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "import-osm", str(OSM), "--building", "Berlin Hbf")
    assert result.returncode == 0, result.stderr
    return url


def query(url, sql, params=None):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def source_steps():
    """What the OSM file itself says: stairways, and how many of them convey (escalators)."""
    root = ET.parse(OSM).getroot()
    steps = [
        {t.get("k"): t.get("v") for t in way.iter("tag")}
        for way in root.iter("way")
        if any(t.get("k") == "highway" and t.get("v") == "steps" for t in way.iter("tag"))
    ]
    escalators = sum(1 for tags in steps if tags.get("conveying", "no") != "no")
    one_way = sum(1 for tags in steps if tags.get("conveying") in ("forward", "backward"))
    return len(steps), escalators, one_way


def private_rooms():
    """Rooms the file closes to the public (access=private|no): no route leads into them."""
    root = ET.parse(OSM).getroot()
    names = set()
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("access") in ("private", "no") and (tags.get("name") or tags.get("ref")):
            names.add(tags.get("name") or tags.get("ref"))
    return sorted(names)


def test_every_stairway_and_escalator_of_the_station_is_an_edge(station_url):
    total, escalators, one_way = source_steps()
    # Stairways are lines between two levels (a stair room on several levels adds climbs of its
    # own, drawn as a zero-length line at its centre; a step into a wheelchair=no shop is a flat
    # stairs edge).
    kinds = dict(
        query(
            station_url,
            """SELECT e.kind, count(*) FROM nav_edges_final e
                 JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
                 JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
                WHERE a.level <> b.level AND ST_Length(e.wkb_geometry) > 0 GROUP BY e.kind""",
        )
    )
    assert kinds["escalator"] == escalators
    assert kinds["stairs"] + kinds["escalator"] == total
    # Escalators that move one way are closed the other way.
    closed = query(
        station_url, "SELECT count(*) FROM nav_edges_final WHERE kind = 'escalator' AND (cost < 0 OR reverse_cost < 0)"
    )
    assert closed == [(one_way,)]
    assert query(station_url, "SELECT count(*) FROM nav_edges_final WHERE kind = 'elevator'")[0][0] > 0


def test_the_station_is_one_network_across_its_levels(station_url):
    sizes = query(
        station_url,
        """SELECT count(*) FROM pgr_connectedComponents(
             'SELECT id, source, target, cost, reverse_cost FROM nav_edges_final') GROUP BY component ORDER BY 1 DESC""",
    )
    vertices = query(station_url, "SELECT count(*), count(DISTINCT level) FROM nav_edges_work_vertices_pgr")[0]
    assert sizes[0][0] >= 0.95 * vertices[0]
    assert vertices[1] >= 5  # levels -2..2


def test_the_station_satisfies_the_routing_invariants(station_url):
    """No invariant breach; the rooms no walking route reaches are exactly the private ones (a shop
    whose only mapped door opens onto the street is still reached from the concourse's footways)."""
    import json

    result = run_cli(station_url, "check-graph", "--json", "--building", "Berlin Hbf")
    report = json.loads(result.stdout)
    assert [c for c in report["checks"] if c["breach"] and c["count"]] == []
    (station,) = report["buildings"]
    assert sorted({room["name"] for room in station["unreachable"]["walking"]}) == private_rooms()
    assert station["levels_without_vertical"] == []
    assert result.returncode == (1 if report["errors"] else 0)


def test_shops_are_rooms_and_plan_polygons_are_counter_clockwise(station_url):
    assert query(station_url, "SELECT count(*) FROM room_points WHERE text = 'DB Information'") == [(1,)]
    assert query(station_url, "SELECT count(DISTINCT level) FROM room_points")[0][0] >= 3
    clockwise = query(
        station_url,
        "SELECT count(*) FROM base_floor WHERE GeometryType(wkb_geometry) = 'POLYGON'"
        " AND NOT ST_IsPolygonCCW(wkb_geometry)",
    )
    assert clockwise == [(0,)]


def test_routes_through_the_real_station_match_networkx_and_respect_accessibility(station_url, redis_url):
    """Across levels of Berlin Hbf: walking may take stairs and escalators, accessible may not, and
    both equal an independent shortest path over the imported edges."""
    import networkx as nx

    from indoor import create_app
    from tests.conftest import TEST_RATE_LIMITS

    app = create_app({"DATABASE_URL": station_url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS})
    client = app.test_client()
    edges = query(station_url, "SELECT source, target, cost, reverse_cost, kind FROM nav_edges_final")

    def graph(profile):
        g = nx.DiGraph()
        for source, target, cost, reverse, kind in edges:
            if profile == "accessible" and kind in ("stairs", "escalator"):
                continue
            for a, b, c in ((source, target, cost), (target, source, reverse)):
                if c >= 0 and (not g.has_edge(a, b) or g[a][b]["weight"] > c):
                    g.add_edge(a, b, weight=c)
        return g

    graphs = {p: graph(p) for p in ("walking", "accessible")}
    # Rooms on the lowest and highest levels that have rooms: every route between them changes level.
    private = private_rooms()
    assert private  # the station has offices closed to the public
    open_rooms = "SELECT ogc_fid FROM room_points WHERE text <> ALL(%s) ORDER BY level {}, ogc_fid LIMIT 3"
    low = query(station_url, open_rooms.format(""), (private,))
    high = query(station_url, open_rooms.format("DESC"), (private,))
    checked = 0
    for (origin,) in low:
        for (destination,) in high:
            for profile in ("walking", "accessible"):
                response = client.get(
                    "/api/route/", query_string={"from": origin, "to": destination, "profile": profile}
                )
                body = response.get_json()
                assert response.status_code == 200, body
                start, end = body["route"]["from"]["vertex"], body["route"]["to"]["vertex"]
                expected = nx.shortest_path_length(graphs[profile], start, end, weight="weight")
                connectors = body["route"]["from"]["connector_m"] + body["route"]["to"]["connector_m"]
                assert abs(body["route"]["distance_m"] - (expected + connectors)) <= 0.01
                kinds = {leg["properties"]["kind"] for leg in body["features"]}
                if profile == "accessible":
                    assert not kinds & {"stairs", "escalator"}
                assert len(body["route"]["levels"]) >= 2
                checked += 1
    app.extensions["indoor.db"].close()
    assert checked == 18


def test_a_network_derived_from_the_stations_rooms_and_corridors_compares_with_its_mapped_footways(
    station_url, pg_cluster
):
    """Berlin Hbf imported again with its highway=* lines ignored: the network is derived from
    its corridors, areas, rooms, doors and elevator nodes alone. Between points on the mapped
    footways that lie in the derived network (a derived vertex within 5 m on the same level),
    compare shortest walking distances. The figure is printed for the README; the assertions are
    only sanity (the derived network is no copy of the mapped one)."""
    import random
    import statistics

    import networkx as nx
    import numpy as np

    derived_url = pg_cluster.create_database("berlin_hbf_derived")
    assert run_cli(derived_url, "init-db").returncode == 0
    result = run_cli(derived_url, "import-osm", str(OSM), "--building", "Berlin Hbf", "--ignore-routing-lines")
    assert result.returncode == 0, result.stderr
    # The station's escalators are all mapped as lines: none is left in the derived network.
    escalators = "SELECT count(*) FROM nav_edges_final WHERE kind = 'escalator'"
    assert query(derived_url, escalators) == [(0,)] and query(station_url, escalators)[0][0] > 0

    def network(url):
        graph = nx.DiGraph()
        for source, target, cost, reverse in query(
            url, "SELECT source, target, cost, reverse_cost FROM nav_edges_final"
        ):
            for a, b, c in ((source, target, cost), (target, source, reverse)):
                if c >= 0 and (not graph.has_edge(a, b) or graph[a][b]["weight"] > c):
                    graph.add_edge(a, b, weight=c)
        places = query(
            url,
            "SELECT id, level, ST_X(ST_Transform(the_geom, 25833)), ST_Y(ST_Transform(the_geom, 25833))"
            " FROM nav_edges_work_vertices_pgr",
        )
        return graph, places

    mapped, mapped_places = network(station_url)
    derived, derived_places = network(derived_url)
    by_level = {}
    for vertex, level, x, y in derived_places:
        by_level.setdefault(level, ([], []))
        by_level[level][0].append(vertex)
        by_level[level][1].append((x, y))
    counterpart = {}
    for vertex, level, x, y in mapped_places:
        if level in by_level and vertex in mapped:
            ids, points = by_level[level]
            distances = np.hypot(*(np.array(points) - (x, y)).T)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= 5.0 and ids[nearest] in derived:
                counterpart[vertex] = ids[nearest]
    pick = random.Random(3)
    candidates = sorted(counterpart)
    ratios, unreachable = [], 0
    for _ in range(300):
        a, b = pick.sample(candidates, 2)
        try:
            on_footways = nx.shortest_path_length(mapped, a, b, weight="weight")
        except nx.NetworkXNoPath:
            continue
        if on_footways < 10:
            continue
        try:
            ratios.append(
                nx.shortest_path_length(derived, counterpart[a], counterpart[b], weight="weight") / on_footways
            )
        except nx.NetworkXNoPath:
            unreachable += 1
    ratios.sort()
    median, p90 = statistics.median(ratios), ratios[int(0.9 * (len(ratios) - 1))]
    print(
        f"Berlin Hbf derived vs mapped footways: {len(counterpart)} of {len(mapped_places)} mapped vertices inside the"
        f" derived network; {len(ratios)} pairs compared, {unreachable} not connected in the derived network;"
        f" length ratio derived/mapped median {median:.2f}, p90 {p90:.2f}"
    )
    assert len(ratios) >= 30
    assert 0.3 <= median <= 3.0
