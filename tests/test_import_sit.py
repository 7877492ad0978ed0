"""A building mapped with Simple Indoor Tagging and no routing lines becomes routable (issue 11).

The building is generated from the tagging scheme (tests/sit_building.py): rooms along an L-shaped
corridor with doors, a wide hall with a column, a stair room with repeat_on, an elevator shaft and
an elevator node, a one-way escalator; one room without a door and one private room, left
unreachable on purpose. Routes go through the real /api/route/ endpoint.
"""

import json
import random
import re

import psycopg2
import pytest

from indoor.importers import osm
from tests.conftest import TEST_RATE_LIMITS, run_cli
from tests.sit_building import NOT_ACCESSIBLE, UNREACHABLE, SitBuilding

BUILDING = "SIT test building"


@pytest.fixture(scope="module")
def sit_files(tmp_path_factory):
    return SitBuilding.generate().write(tmp_path_factory.mktemp("sit"))


@pytest.fixture(scope="module")
def sit_url(pg_cluster, sit_files):
    url = pg_cluster.create_database("sit_building")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "import-osm", str(sit_files["xml"]), "--building", BUILDING)
    assert result.returncode == 0, result.stderr
    # The import ends with the check-graph report: it names the rooms nobody can reach.
    assert re.search(r"ERROR .* 2 of \d+ rooms cannot reach the main component \(walking\)", result.stdout)
    return url


@pytest.fixture(scope="module")
def sit_client(sit_url, redis_server):
    from indoor import create_app

    app = create_app(
        {"DATABASE_URL": sit_url, "REDIS_URL": redis_server.url(5), "LOG_FORMAT": "text", **TEST_RATE_LIMITS}
    )
    yield app.test_client()
    app.extensions["indoor.db"].close()


def query(url, sql, params=None):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def test_xml_pbf_and_geojson_exports_read_into_the_same_plan(sit_files):
    def summary(plan):
        return {
            "spaces": sorted((s.kind, s.name or "", tuple(s.levels), s.routable, s.oneway) for s in plan.spaces),
            "openings": sorted((tuple(o.levels), o.routable, str(o.wheelchair)) for o in plan.openings),
            "rooms": sorted((r.name, r.level, r.category or "") for r in plan.rooms),
            "connectors": sorted(tuple(c.levels) for c in plan.connectors),
            "level_names": plan.level_names,
            "features": sorted((f.layer, f.level) for f in plan.features),
        }

    xml = summary(osm.read_plan(sit_files["xml"]))
    assert summary(osm.read_plan(sit_files["pbf"])) == xml
    assert summary(osm.read_plan(sit_files["geojson"])) == xml
    assert len(xml["rooms"]) == len(SitBuilding.generate().rooms())
    # repeat_on and the level range: the stair room and the shaft serve all three levels.
    assert ("stairs", "Stairs West", (0, 1, 2), True, 0) in xml["spaces"]
    assert ("elevator", "Lift North", (0, 1, 2), True, 0) in xml["spaces"]
    assert ("escalator", "Escalator up", (0, 1), True, 1) in xml["spaces"]


def test_rooms_keep_categories_and_levels_their_display_names(sit_url):
    categories = dict(query(sit_url, "SELECT text, category FROM room_points WHERE level = 0"))
    assert categories["0.S00"] == "toilets"
    assert categories["Kiosk 0"] == "shop"
    assert categories["0.N01"] == "class"
    names = query(sit_url, "SELECT level, name FROM indoor_level_names WHERE building = %s ORDER BY level", (BUILDING,))
    assert [(int(level), name) for level, name in names] == [(0, "EG"), (1, "1.OG"), (2, "2.OG")]


def _rooms(url):
    rows = query(
        url,
        "SELECT ogc_fid, text, level FROM room_points WHERE building = %s ORDER BY ogc_fid",
        (BUILDING,),
    )
    return {room_id: (name, level) for room_id, name, level in rows}


def _straight_lines(url):
    """Geodesic distance between every two rooms, as PostGIS measures it."""
    rows = query(
        url,
        """SELECT a.ogc_fid, b.ogc_fid, ST_Distance(a.wkb_geometry::geography, b.wkb_geometry::geography)
             FROM room_points a, room_points b WHERE a.ogc_fid <> b.ogc_fid""",
    )
    return {(a, b): d for a, b, d in rows}


def _route(client, origin, destination, profile="walking"):
    response = client.get("/api/route/", query_string={"from": origin, "to": destination, "profile": profile})
    body = response.get_json()
    assert response.status_code in (200, 422), body
    return body if response.status_code == 200 else None


def test_rooms_route_to_each_other_on_a_level_and_across_levels(sit_url, sit_client):
    rooms = _rooms(sit_url)
    straight = _straight_lines(sit_url)
    reachable = [r for r, (name, _) in rooms.items() if name not in UNREACHABLE]
    pick = random.Random(11)
    same = [(a, b) for a in reachable for b in reachable if a < b and rooms[a][1] == rooms[b][1]]
    across = [(a, b) for a in reachable for b in reachable if a != b and rooms[a][1] != rooms[b][1]]
    results = {}
    for label, pairs in (("same level", pick.sample(same, 90)), ("across levels", pick.sample(across, 90))):
        routed = 0
        for origin, destination in pairs:
            body = _route(sit_client, origin, destination)
            if body is None:
                continue
            routed += 1
            # Never shorter than the straight line between the two rooms (the API rounds to cm).
            assert body["route"]["distance_m"] >= straight[origin, destination] - 0.005
            if label == "across levels":
                assert len(body["route"]["levels"]) >= 2
        results[label] = routed / len(pairs)
    # The hall's rooms, whose doors carry no level of their own, route to the corridor's.
    by_name = {name: room_id for room_id, (name, _) in rooms.items()}
    for hall_room in ["Kiosk 1"] + [f"1.H{k:02d}" for k in range(1, 5)]:
        assert _route(sit_client, by_name["1.S01"], by_name[hall_room]) is not None
    print(f"SIT building: routable room pairs {results}")
    assert results["same level"] >= 0.95
    assert results["across levels"] >= 0.90


def test_the_accessible_profile_never_takes_stairs_or_escalators(sit_url, sit_client):
    rooms = _rooms(sit_url)
    ground = [r for r, (name, level) in rooms.items() if level == 0 and name not in UNREACHABLE]
    upper = [r for r, (name, level) in rooms.items() if level == 2 and name not in UNREACHABLE | NOT_ACCESSIBLE]
    pick = random.Random(12)
    routed = 0
    for origin, destination in zip(pick.sample(ground, 15), pick.sample(upper, 15), strict=True):
        walking = _route(sit_client, origin, destination)
        accessible = _route(sit_client, origin, destination, "accessible")
        assert walking is not None and accessible is not None
        kinds = {leg["properties"]["kind"] for leg in accessible["features"]}
        assert not kinds & {"stairs", "escalator"}
        assert "elevator" in kinds
        assert accessible["route"]["distance_m"] >= walking["route"]["distance_m"] - 1e-6
        routed += 1
    assert routed == 15
    # The lab behind a wheelchair=no door: walking reaches it, the accessible profile does not.
    (lab,) = [r for r, (name, _) in rooms.items() if name in NOT_ACCESSIBLE]
    assert _route(sit_client, ground[0], lab) is not None
    assert _route(sit_client, ground[0], lab, "accessible") is None


def test_the_one_way_escalator_only_goes_up(sit_url):
    rows = query(
        sit_url,
        """SELECT a.level, b.level, e.cost, e.reverse_cost FROM nav_edges_final e
             JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
             JOIN nav_edges_work_vertices_pgr b ON b.id = e.target WHERE e.kind = 'escalator'""",
    )
    assert len(rows) == 1
    low, high, up, down = rows[0]
    assert (low, high) == (0, 1) and up > 0 and down < 0


def test_stair_rooms_join_the_levels_they_serve(sit_url):
    """Stairs West (one way with repeat_on) and Stairs East (drawn on each level) each climb
    0 -> 1 -> 2; the elevator shaft and the elevator node each serve the same levels."""
    rows = query(
        sit_url,
        """SELECT e.kind, least(a.level, b.level), greatest(a.level, b.level), count(*) FROM nav_edges_final e
             JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
             JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
            WHERE a.level <> b.level GROUP BY 1, 2, 3 ORDER BY 1, 2""",
    )
    climbs = {(kind, int(low), int(high)): count for kind, low, high, count in rows}
    assert climbs == {
        ("elevator", 0, 1): 2,
        ("elevator", 1, 2): 2,
        ("escalator", 0, 1): 1,
        ("stairs", 0, 1): 2,
        ("stairs", 1, 2): 2,
    }


def test_rooms_left_unreachable_on_purpose_are_exactly_what_check_graph_names(sit_url, sit_client):
    rooms = _rooms(sit_url)
    for room_id, (name, _) in rooms.items():
        if name in UNREACHABLE:
            other = next(r for r, (n, _) in rooms.items() if n not in UNREACHABLE)
            assert _route(sit_client, other, room_id) is None
    result = run_cli(sit_url, "check-graph", "--json", "--building", BUILDING)
    report = json.loads(result.stdout)
    (building,) = report["buildings"]
    assert {room["name"] for room in building["unreachable"]["walking"]} == UNREACHABLE
    assert {room["name"] for room in building["unreachable"]["accessible"]} == UNREACHABLE | NOT_ACCESSIBLE
    assert building["levels_without_vertical"] == []
    assert report["one_way_traps"] == []
    assert [c for c in report["checks"] if c["breach"] and c["count"]] == []
    assert result.returncode == 1  # unreachable rooms are errors a person should look at


def test_an_unreadable_file_names_itself_and_changes_nothing(sit_url, sit_files, tmp_path):
    truncated = tmp_path / "truncated.osm"
    text = sit_files["xml"].read_text()
    truncated.write_text(text[: len(text) // 2])
    before = query(sit_url, "SELECT (SELECT count(*) FROM nav_edges_final), (SELECT count(*) FROM room_points)")
    result = run_cli(sit_url, "import-osm", str(truncated))
    assert result.returncode != 0
    assert str(truncated) in result.stderr and "Traceback" not in result.stderr
    assert query(sit_url, "SELECT (SELECT count(*) FROM nav_edges_final), (SELECT count(*) FROM room_points)") == before


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        ("0", [0]),
        ("0;2", [0, 2]),
        ("-1-2", [-1, 0, 1, 2]),
        ("-2--1", [-2, -1]),
        ("0.5", [0.5]),
        ("1;0.5", [0.5, 1]),
        ("0-1.5", [0, 1, 1.5]),
        ("ground", []),
        ("", []),
        ("NaN;1", [1]),
    ],
)
def test_level_lists_ranges_and_decimals(value, levels):
    assert [float(level) for level in osm.parse_levels(value)] == levels


def test_an_unreadable_geojson_feature_is_named(tmp_path):
    path = tmp_path / "bad.geojson"
    feature = {"type": "Feature", "id": "way/7", "properties": {"indoor": "room"}, "geometry": {"type": "Polygon"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(osm.UnreadableSource, match=r"bad\.geojson: way/7 has an unreadable geometry"):
        osm.read_plan(path)


def test_a_geojson_coordinate_that_is_no_number_is_named(tmp_path):
    path = tmp_path / "nan.geojson"
    point = {"type": "Point", "coordinates": [float("nan"), 52.5]}
    feature = {"type": "Feature", "id": "node/9", "properties": {"door": "yes"}, "geometry": point}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))  # writes NaN, as some tools do
    with pytest.raises(
        osm.UnreadableSource, match=r"nan\.geojson: node/9 has a coordinate that is not a finite number"
    ):
        osm.read_plan(path)


def test_a_truncated_pbf_is_named(sit_files, tmp_path):
    path = tmp_path / "cut.osm.pbf"
    data = sit_files["pbf"].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(osm.UnreadableSource, match=r"cut\.osm\.pbf: not a readable OSM PBF file"):
        osm.read_plan(path)


def test_check_graph_names_levels_without_a_way_between_them_one_way_traps_and_far_rooms(pg_cluster, tmp_path):
    """A small building whose data is wrong in three ways a person must hear about: level 1 is
    reached only by an up escalator (a one-way trap), level 2 has no way up or down at all, and
    a shop on level 0 stands 60 m from the building."""
    b = SitBuilding()
    for level in (0, 1, 2):
        lv = str(level)
        door = (5.0, 3.0)
        b.way(level, [(0, 0), (20, 0), (20, 3), (0, 3)], {"indoor": "corridor", "level": lv}, [door])
        b.way(level, [(0, 3), (10, 3), (10, 9), (0, 9)], {"indoor": "room", "level": lv, "ref": f"R{level}"}, [door])
        b.node(level, *door, {"door": "yes", "level": lv})
    b.way(
        0,
        [(15, 0.5), (18, 0.5), (18, 2.5), (15, 2.5)],
        {"indoor": "area", "conveying": "forward", "incline": "up", "level": "0;1"},
    )
    b.node(0, 10.0, -60.0, {"shop": "kiosk", "name": "Far kiosk", "level": "0"})
    path = tmp_path / "broken.osm"
    path.write_text(b.to_xml())
    url = pg_cluster.create_database("broken_building")
    assert run_cli(url, "init-db").returncode == 0
    assert run_cli(url, "import-osm", str(path), "--building", "Broken").returncode == 0

    result = run_cli(url, "check-graph", "--json", "--building", "Broken", "--room-distance", "40")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    (building,) = report["buildings"]
    assert building["levels_without_vertical"] == [2]
    assert [room["name"] for room in building["far_rooms"]] == ["Far kiosk"]
    (trap,) = report["one_way_traps"]
    assert trap["level"] in (0, 1) and trap["kind"] in ("cannot be left", "cannot be entered")
    # Components ignore direction: level 1 hangs on by its escalator (the trap says it is one
    # way); the room on level 2 is cut off.
    assert [(room["name"], room["level"]) for room in building["unreachable"]["walking"]] == [("R2", 2)]
    text = run_cli(url, "check-graph", "--building", "Broken", "--room-distance", "40").stdout
    assert "ERROR  'Broken': levels without stairs, escalator, elevator or ramp to another level: 2" in text
    assert "ERROR  one-way traps: 1" in text


def test_check_graph_on_an_empty_database_finds_nothing_wrong(fresh_database):
    url = fresh_database("empty_check")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "check-graph", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["buildings"] == [] and report["one_way_traps"] == [] and report["errors"] == 0
    assert report["components"]["walking"] == {"count": 0, "largest": []}
    misspelt = run_cli(url, "check-graph", "--building", "Nowhere")
    assert misspelt.returncode == 1
    assert "ERROR  no rooms of building 'Nowhere'" in misspelt.stdout
