"""IMDF: a generated archive (tests/imdf_building.py) imported with `indoor import` and routed.

The archive has units and openings and no graph: the network is derived. Done when at least 95%
of the room pairs on one level and 90% across levels route (every pair that does not involves
the room left without an opening on purpose), the accessible profile never takes stairs or
escalators, and no route is shorter than the straight line between its rooms.
"""

import itertools
import json

import pytest

from tests.conftest import run_cli
from tests.feature_data import query
from tests.imdf_building import LEVELS, OCCUPANT, SEALED_ROOM, lonlat, write_imdf
from tests.importing import counts, route_client, snapshot, straight_lines_m

BUILDING = "IMDF Campus"


@pytest.fixture(scope="module")
def imdf_url(pg_cluster, tmp_path_factory, served_url):
    url = pg_cluster.create_database("imdf_campus")
    assert run_cli(url, "init-db").returncode == 0
    archive = write_imdf(tmp_path_factory.mktemp("imdf") / "campus.zip")
    result = run_cli(served_url(url), "import", str(archive), "--building", BUILDING)
    assert result.returncode == 0, result.stderr
    assert "IMDF" in result.stdout
    return url


@pytest.fixture(scope="module")
def routes(imdf_url, redis_url, served_url):
    app, client = route_client(served_url(imdf_url), redis_url)

    def route(origin, destination, profile="walking"):
        response = client.get("/api/route/", query_string={"from": origin, "to": destination, "profile": profile})
        assert response.status_code in (200, 422), response.get_json()
        return response.get_json() if response.status_code == 200 else None

    yield route
    app.extensions["indoor.db"].close()


def rooms_on(url, level) -> dict[int, str]:
    return dict(query(url, "SELECT ogc_fid, text FROM room_points WHERE level = %s ORDER BY ogc_fid", (level,)))


def check_pairs(url, route, pairs, names, distances, profile="walking"):
    """Route every pair; -> the pairs without a route. Asserts what every found route must be."""
    failed = []
    for origin, destination in pairs:
        body = route(origin, destination, profile)
        if body is None:
            failed.append((names[origin], names[destination]))
            continue
        assert body["route"]["distance_m"] >= distances[origin, destination] - 0.005  # distance_m has 2 decimals
        kinds = {leg["properties"]["kind"] for leg in body["features"]}
        if profile == "accessible":
            assert not kinds & {"stairs", "escalator"}, (names[origin], names[destination], kinds)
    return failed


def test_the_archive_becomes_levels_rooms_and_a_floor_plan(imdf_url):
    rooms = query(imdf_url, "SELECT level, count(*) FROM room_points GROUP BY level ORDER BY level")
    assert [int(level) for level, _ in rooms] == sorted(LEVELS)
    assert query(imdf_url, "SELECT building, level, name FROM indoor_level_names ORDER BY level") == [
        (BUILDING, level, name) for level, name in sorted(LEVELS.items())
    ]
    # The occupant names its room (through its anchor); unit categories become room categories.
    assert query(imdf_url, "SELECT level, category FROM room_points WHERE text = %s", (OCCUPANT,)) == [
        (0, "restaurant")
    ]
    assert query(imdf_url, "SELECT count(*) FROM room_points WHERE text = 'Room 0.03'") == [(0,)]
    assert query(imdf_url, "SELECT DISTINCT category FROM room_points WHERE text = 'Room 1.06'") == [("restroom",)]
    layers = dict(query(imdf_url, "SELECT layer, count(*) FROM base_floor GROUP BY layer"))
    assert layers["door"] == query(imdf_url, "SELECT count(*) FROM base_floor WHERE layer = 'door'")[0][0] > 100
    assert {"corridor", "area", "room", "stairs", "elevator", "structure", "level"} <= set(layers)


def test_nine_in_ten_pairs_on_a_level_route_and_only_the_sealed_room_fails(imdf_url, routes):
    for level, step in ((0, 1), (1, 2)):  # every pair of level 0 (the sealed room's); half of level 1's
        names = rooms_on(imdf_url, level)
        distances = straight_lines_m(imdf_url, list(names))
        pairs = list(itertools.combinations(list(names)[::step], 2))
        failed = check_pairs(imdf_url, routes, pairs, names, distances)
        assert len(failed) <= 0.05 * len(pairs), failed[:10]
        assert all(SEALED_ROOM in pair for pair in failed), [p for p in failed if SEALED_ROOM not in p][:10]
        assert bool(failed) == (level == 0)  # the sealed room is on level 0 only


def test_routes_across_levels_and_the_accessible_profile_takes_the_elevator(imdf_url, routes):
    low, high = rooms_on(imdf_url, 0), rooms_on(imdf_url, 2)
    names = {**low, **high}
    distances = straight_lines_m(imdf_url, list(names))
    pairs = [(a, b) for a in list(low)[::5] for b in list(high)[::5]]
    pairs += [(b, a) for a, b in pairs]
    for profile in ("walking", "accessible"):
        failed = check_pairs(imdf_url, routes, pairs, names, distances, profile)
        assert len(failed) <= 0.10 * len(pairs), failed[:10]
        assert all(SEALED_ROOM in pair for pair in failed)
    some = next(b for b in high if names[b].startswith("Room"))
    start = next(a for a in low if names[a].startswith("Room"))
    legs = routes(start, some, "accessible")["features"]
    assert "elevator" in {leg["properties"]["kind"] for leg in legs}


def test_the_escalator_runs_up_only(imdf_url, routes):
    lon, lat = lonlat(82, 40)  # the escalator, at the hall's east wall

    def nearest_rooms(level):
        return [
            row[0]
            for row in query(
                imdf_url,
                """SELECT ogc_fid FROM room_points WHERE level = %s
                    ORDER BY wkb_geometry <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 6""",
                (level, lon, lat),
            )
        ]

    near_the_hall = list(itertools.product(nearest_rooms(1), nearest_rooms(2)))
    up = [routes(a, b) for a, b in near_the_hall]
    down = [routes(b, a) for a, b in near_the_hall]
    assert any("escalator" in {leg["properties"]["kind"] for leg in body["features"]} for body in up)
    assert all("escalator" not in {leg["properties"]["kind"] for leg in body["features"]} for body in down)


def test_no_route_walks_through_the_hall_column(imdf_url):
    # The column unit (x 59..61, y 33..35 m in the hall) is cut out of the hall's walkable space.
    crossing = query(
        imdf_url,
        """SELECT count(*) FROM nav_edges_final e, base_floor c
            WHERE c.layer = 'structure'
              AND ST_Intersects(e.wkb_geometry, ST_Buffer(c.wkb_geometry::geography, -0.05)::geometry)""",
    )
    assert crossing == [(0,)]


def test_check_graph_names_exactly_the_room_left_without_an_opening(imdf_url):
    result = run_cli(imdf_url, "check-graph", "--json")
    assert result.returncode == 1  # an unreachable room is an error
    report = json.loads(result.stdout)
    assert not [check for check in report["checks"] if check["breach"] and check["count"]]
    (building,) = report["buildings"]
    for profile in ("walking", "accessible"):
        assert [room["name"] for room in building["unreachable"][profile]] == [SEALED_ROOM]
    assert building["levels_without_vertical"] == [] and report["one_way_traps"] == []


def test_a_folder_archive_imports_like_the_zip_and_replace_keeps_the_counts(imdf_url, fresh_database, tmp_path):
    url = fresh_database("imdf_folder")
    assert run_cli(url, "init-db").returncode == 0
    folder = write_imdf(tmp_path / "campus", as_zip=False)
    assert run_cli(url, "import", str(folder), "--building", BUILDING).returncode == 0
    assert counts(url) == counts(imdf_url)
    result = run_cli(url, "import", str(folder), "--building", BUILDING, "--replace")
    assert result.returncode == 0, result.stderr
    assert counts(url) == counts(imdf_url)
    assert query(url, "SELECT count(*) FROM indoor_level_names") == [(len(LEVELS),)]


def test_levels_carry_their_display_names_and_rooms_their_category(imdf_url, redis_url, fresh_database):
    app, client = route_client(imdf_url, redis_url)
    for url in ("/api/levels/", "/api/levels/?building=" + BUILDING):
        levels = client.get(url).get_json()["levels"]
        assert [(entry["level"], entry["name"]) for entry in levels] == sorted(LEVELS.items())
    assert client.get("/api/levels/?building=elsewhere").get_json() == {"levels": []}
    cafe = query(imdf_url, "SELECT ogc_fid FROM room_points WHERE text = %s", (OCCUPANT,))[0][0]
    assert client.get(f"/api/rooms/{cafe}").get_json()["properties"]["category"] == "restaurant"
    page = client.get("/api/rooms/", query_string={"q": "Room 1.06"}).get_json()
    assert [f["properties"]["category"] for f in page["features"]] == ["restroom"]
    app.extensions["indoor.db"].close()


def test_a_broken_archive_fails_with_one_line_and_changes_nothing(imdf_url, tmp_path):
    folder = write_imdf(tmp_path / "broken", as_zip=False)
    unit = folder / "unit.geojson"
    unit.write_text(unit.read_text()[:-5000])  # cut off mid-feature
    before = snapshot(imdf_url)
    result = run_cli(imdf_url, "import", str(folder), "--building", BUILDING, "--replace")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unit.geojson" in lines[0] and "broken" in lines[0], result.stderr
    assert snapshot(imdf_url) == before
    # A feature on a level the archive does not have is named.
    folder = write_imdf(tmp_path / "orphan", as_zip=False)
    unit = folder / "unit.geojson"
    unit.write_text(unit.read_text().replace('"level_id": "', '"level_id": "x', 1))
    result = run_cli(imdf_url, "import", str(folder))
    assert result.returncode == 1 and "names no level" in result.stderr and "unit " in result.stderr
    assert snapshot(imdf_url) == before


def test_a_level_two_buildings_name_differently_is_named_only_per_building(redis_url, fresh_database, tmp_path):
    url = fresh_database("imdf_two")
    assert run_cli(url, "init-db").returncode == 0
    assert run_cli(url, "import", str(write_imdf(tmp_path / "a.zip")), "--building", BUILDING).returncode == 0
    folder = write_imdf(tmp_path / "other", as_zip=False)
    levels = folder / "level.geojson"
    levels.write_text(levels.read_text().replace('"EG"', '"Ground"'))
    assert run_cli(url, "import", str(folder), "--building", "Other").returncode == 0
    app, client = route_client(url, redis_url)
    named = {entry["level"]: entry["name"] for entry in client.get("/api/levels/").get_json()["levels"]}
    assert named == {0: None, 1: "1.OG", 2: "2.OG"}  # the buildings disagree on level 0
    other = client.get("/api/levels/", query_string={"building": "Other"}).get_json()["levels"]
    assert other[0]["name"] == "Ground"
    app.extensions["indoor.db"].close()
