"""CAD shapefiles (../shared/data/cookbook, MIT) imported floor by floor with `indoor import`.

The cookbook's two floors are separate files in EPSG:3857; its stairs are lines of the first
floor whose upper end meets the second floor's network. Rooms are polygons with `room_num` and
`floor` fields.
"""

import shutil

import pytest

from tests.conftest import SHARED_DATA, run_cli
from tests.feature_data import query
from tests.importing import route_client, snapshot, straight_line_m

COOKBOOK = SHARED_DATA / "cookbook"
FLOORS = {1: COOKBOOK / "ch08" / "e01_network_lines_3857.shp", 2: COOKBOOK / "ch08" / "e02_network_lines_3857.shp"}
ROOMS = [COOKBOOK / "ch11" / "e01_room_data.shp", COOKBOOK / "ch11" / "e02_room_data.shp"]
NETWORK_OPTIONS = ("--kind-field", "type_id", "--kind-map", "3=stairs")
ROOM_OPTIONS = ("--level-field", "floor", "--name-field", "room_num", "--category-field", "name")


def import_cookbook(url, floor_order=(1, 2)):
    """Import the four files into `url` (the import reaches the database as `url` says)."""
    outputs = []
    for level in floor_order:
        result = run_cli(
            url, "import", str(FLOORS[level]), "--building", "Cookbook", "--level", str(level), *NETWORK_OPTIONS
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    for path in ROOMS:
        result = run_cli(url, "import", str(path), "--building", "Cookbook", *ROOM_OPTIONS)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    return outputs


@pytest.fixture(scope="module")
def cookbook_url(pg_cluster, served_url):
    url = pg_cluster.create_database("cookbook_cad")
    assert run_cli(url, "init-db").returncode == 0
    import_cookbook(served_url(url))
    return url


def test_each_floor_is_on_its_level_and_its_stairs_join_the_floor_above(cookbook_url):
    levels = dict(query(cookbook_url, "SELECT level, count(*) FROM nav_edges_work_vertices_pgr GROUP BY level"))
    assert set(levels) == {1, 2}
    # Every stairs line of the first file now climbs from level 1 to level 2.
    stairs = query(
        cookbook_url,
        """SELECT a.level, b.level FROM nav_edges_final e
             JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
             JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
            WHERE e.kind = 'stairs'""",
    )
    climbing = [pair for pair in stairs if {int(pair[0]), int(pair[1])} == {1, 2}]
    assert len(climbing) >= 9
    assert run_cli(cookbook_url, "check-graph").returncode == 0


def test_rooms_keep_their_number_floor_and_category(cookbook_url):
    rooms = query(cookbook_url, "SELECT text, level, category, building FROM room_points ORDER BY text")
    assert len(rooms) == 20
    assert {int(level) for _, level, _, _ in rooms} == {1, 2}
    assert all(text.startswith(str(int(level))) for text, level, _, _ in rooms)  # 10010 on 1, 20010 on 2
    assert {category for _, _, category, _ in rooms} == {"office", "lecture hall"}
    assert {building for *_, building in rooms} == {"Cookbook"}
    # Room polygons are the floor plan; their label points lie inside them.
    outside = query(
        cookbook_url,
        """SELECT count(*) FROM room_points r WHERE NOT EXISTS (
             SELECT 1 FROM base_floor f WHERE f.level = r.level AND ST_Contains(f.wkb_geometry, r.wkb_geometry))""",
    )
    assert outside == [(0,)]


def test_routes_from_every_first_floor_room_to_every_second_floor_room_take_the_stairs(
    cookbook_url, redis_url, served_url
):
    app, client = route_client(served_url(cookbook_url), redis_url)
    first = [row[0] for row in query(cookbook_url, "SELECT ogc_fid FROM room_points WHERE level = 1")]
    second = [row[0] for row in query(cookbook_url, "SELECT ogc_fid FROM room_points WHERE level = 2")]
    for origin in first:
        for destination in second:
            response = client.get("/api/route/", query_string={"from": origin, "to": destination})
            body = response.get_json()
            assert response.status_code == 200, body
            kinds = [leg["properties"]["kind"] for leg in body["features"]]
            assert "stairs" in kinds
            assert body["route"]["levels"] == [1, 2]
            assert body["route"]["distance_m"] >= straight_line_m(cookbook_url, origin, destination) - 0.005
    app.extensions["indoor.db"].close()


def test_floors_join_whichever_is_imported_first(fresh_database, redis_url):
    url = fresh_database("cookbook_reversed")
    assert run_cli(url, "init-db").returncode == 0
    outputs = import_cookbook(url, floor_order=(2, 1))
    assert "9 stairs ends joined" in outputs[1]
    app, client = route_client(url, redis_url)
    origin = query(url, "SELECT min(ogc_fid) FROM room_points WHERE level = 1")[0][0]
    destination = query(url, "SELECT max(ogc_fid) FROM room_points WHERE level = 2")[0][0]
    body = client.get("/api/route/", query_string={"from": origin, "to": destination}).get_json()
    assert "stairs" in [leg["properties"]["kind"] for leg in body["features"]]
    app.extensions["indoor.db"].close()


def test_replace_swaps_one_floor_file_without_touching_another_building(cookbook_url, fresh_database):
    url = fresh_database("cookbook_replace")
    assert run_cli(url, "init-db").returncode == 0
    import_cookbook(url)
    assert run_cli(url, "demo").returncode == 0  # another building beside it
    before = snapshot(url)
    result = run_cli(url, "import", str(ROOMS[0]), "--building", "Cookbook", "--replace", *ROOM_OPTIONS)
    assert result.returncode == 0, result.stderr
    # Only the first floor's rooms are left: the building's rows went, the demo campus's stayed.
    assert query(url, "SELECT count(*) FROM room_points WHERE building = 'Cookbook'") == [(9,)]
    assert query(url, "SELECT count(*) FROM nav_edges_final e JOIN indoor_building_edges b ON b.edge = e.id") == [(0,)]
    demo_rows = query(url, "SELECT count(*) FROM room_points WHERE coalesce(building, '') <> 'Cookbook'")[0][0]
    assert demo_rows > 0
    after = snapshot(url)
    assert after["nav_edges_final"][0] < before["nav_edges_final"][0]
    assert query(url, "SELECT count(*) FROM nav_edges_final")[0][0] > 0  # the demo's network
    assert run_cli(url, "check-graph").returncode == 0


# -- failures change nothing ----------------------------------------------------------------


@pytest.fixture
def bad_copy(tmp_path):
    """Copy a shapefile's parts into tmp_path: -> the copied .shp path."""

    def make(source, name="floor"):
        for part in source.parent.glob(source.stem + ".*"):
            shutil.copy(part, tmp_path / (name + part.suffix))
        return tmp_path / f"{name}.shp"

    return make


def assert_fails_cleanly(url, *args, naming):
    before = snapshot(url)
    result = run_cli(url, "import", *args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, never a traceback
    assert "Traceback" not in result.stderr
    for text in naming:
        assert text in lines[0], lines[0]
    assert snapshot(url) == before
    return lines[0]


def test_a_truncated_shapefile_fails_with_one_line_and_changes_nothing(cookbook_url, bad_copy):
    path = bad_copy(FLOORS[2], "truncated")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    assert_fails_cleanly(
        cookbook_url, str(path), "--building", "Cookbook", "--level", "2", *NETWORK_OPTIONS, naming=["truncated.shp"]
    )


def test_a_file_without_a_crs_fails_and_names_the_fix(cookbook_url, bad_copy):
    path = bad_copy(FLOORS[2], "nocrs")
    path.with_suffix(".prj").unlink()
    line = assert_fails_cleanly(cookbook_url, str(path), "--level", "2", naming=["nocrs.shp", "--crs"])
    assert "CRS" in line


def test_an_unknown_crs_fails_cleanly(cookbook_url, bad_copy):
    path = bad_copy(FLOORS[2], "localcrs")
    path.with_suffix(".prj").write_text('LOCAL_CS["site plan",UNIT["metre",1]]')  # no way to WGS 84
    assert_fails_cleanly(cookbook_url, str(path), "--level", "2", naming=["localcrs.shp", "unknown CRS"])
    assert_fails_cleanly(cookbook_url, str(path), "--crs", "EPSG:999999", naming=["localcrs.shp", "EPSG:999999"])


def test_a_feature_whose_level_cannot_be_read_is_named(cookbook_url, tmp_path):
    path = tmp_path / "rooms.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"floor": "1", "room": "A"},'
        ' "geometry": {"type": "Point", "coordinates": [13.0, 52.0]}},'
        '{"type": "Feature", "properties": {"floor": "upstairs", "room": "B"},'
        ' "geometry": {"type": "Point", "coordinates": [13.0001, 52.0]}}]}'
    )
    assert_fails_cleanly(
        cookbook_url,
        str(path),
        "--level-field",
        "floor",
        "--name-field",
        "room",
        naming=["rooms.geojson", "feature 1", "upstairs"],
    )


def test_a_field_the_file_does_not_have_is_named(cookbook_url):
    assert_fails_cleanly(
        cookbook_url, str(ROOMS[0]), "--level-field", "storey", naming=["e01_room_data.shp", "storey", "floor"]
    )


def test_bad_mapping_options_are_usage_errors(cookbook_url):
    before = snapshot(cookbook_url)
    bad_map = run_cli(cookbook_url, "import", str(FLOORS[1]), "--kind-field", "type_id", "--kind-map", "3=teleport")
    assert bad_map.returncode == 2 and "teleport" in bad_map.stderr
    both = run_cli(cookbook_url, "import", str(FLOORS[1]), "--level", "1", "--level-field", "floor")
    assert both.returncode == 2
    nameless_replace = run_cli(cookbook_url, "import", str(ROOMS[0]), "--replace", *ROOM_OPTIONS)
    assert nameless_replace.returncode == 2 and "--building" in nameless_replace.stderr
    osm_with_mapping = run_cli(
        cookbook_url, "import", str(SHARED_DATA / "osm" / "berlin_hbf.osm"), "--level-field", "floor"
    )
    assert osm_with_mapping.returncode == 2 and "GDAL" in osm_with_mapping.stderr
    assert snapshot(cookbook_url) == before
