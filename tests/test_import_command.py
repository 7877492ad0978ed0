"""`indoor import` on a real building (Berlin Hbf, ../shared/data/osm, ODbL): appends, --replace,
and a cut-off file that changes nothing. Format detection from the content."""

import json
import zipfile

import osmium
import pytest

from indoor.importers import dispatch
from tests.conftest import SHARED_DATA, run_cli
from tests.feature_data import query
from tests.importing import counts, route_client, snapshot, straight_line_m
from tests.test_import_osm import private_rooms

OSM = SHARED_DATA / "osm" / "berlin_hbf.osm"
BUILDING = "Berlin Hbf"


@pytest.fixture(scope="module")
def station_url(pg_cluster, served_url):
    url = pg_cluster.create_database("berlin_import")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(served_url(url), "import", str(OSM), "--building", BUILDING)
    assert result.returncode == 0, result.stderr
    assert "OSM XML" in result.stdout
    return url


def test_the_station_routes_across_its_levels(station_url, redis_url, served_url):
    app, client = route_client(served_url(station_url), redis_url)
    # Rooms open to the public on the lowest and the highest level (private ones are closed to routes).
    open_rooms = "SELECT ogc_fid FROM room_points WHERE text <> ALL(%s) ORDER BY level {}, ogc_fid LIMIT 4"
    low = query(station_url, open_rooms.format(""), (private_rooms(),))
    high = query(station_url, open_rooms.format("DESC"), (private_rooms(),))
    for (origin,) in low:
        for (destination,) in high:
            for profile in ("walking", "accessible"):
                response = client.get(
                    "/api/route/", query_string={"from": origin, "to": destination, "profile": profile}
                )
                body = response.get_json()
                assert response.status_code == 200, body
                assert len(body["route"]["levels"]) >= 2
                assert body["route"]["distance_m"] >= straight_line_m(station_url, origin, destination) - 0.005
                kinds = {leg["properties"]["kind"] for leg in body["features"]}
                if profile == "accessible":
                    assert not kinds & {"stairs", "escalator"}
    app.extensions["indoor.db"].close()


def connectivity(url) -> tuple:
    """check-graph's findings without vertex ids: errors, unreachable rooms per profile."""
    report = json.loads(run_cli(url, "check-graph", "--json").stdout)
    unreachable = {
        profile: sorted(
            (room["name"], room["level"]) for b in report["buildings"] for room in b["unreachable"][profile]
        )
        for profile in ("walking", "accessible")
    }
    return report["errors"], unreachable, report["components"]


def test_replace_reimports_the_station_with_the_same_rows(station_url):
    before = counts(station_url)
    findings = connectivity(station_url)
    names_before = query(station_url, "SELECT text, level, category FROM room_points ORDER BY 1, 2, 3")
    result = run_cli(station_url, "import", str(OSM), "--building", BUILDING, "--replace")
    assert result.returncode == 0, result.stderr
    assert counts(station_url) == before
    assert query(station_url, "SELECT text, level, category FROM room_points ORDER BY 1, 2, 3") == names_before
    # The helper tables name exactly the network rows there are: nothing of the old import is left.
    assert query(station_url, "SELECT count(*) FROM indoor_building_vertices") == [
        (before["nav_edges_work_vertices_pgr"],)
    ]
    assert query(station_url, "SELECT count(*) FROM indoor_building_edges") == [(before["nav_edges_final"],)]
    assert connectivity(station_url) == findings


def test_without_replace_the_building_is_appended(station_url, fresh_database):
    url = fresh_database("berlin_twice")
    assert run_cli(url, "init-db").returncode == 0
    for _ in range(2):
        assert run_cli(url, "import", str(OSM), "--building", BUILDING).returncode == 0
    once = counts(station_url)
    assert counts(url) == {table: 2 * count for table, count in once.items()}


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_a_cut_off_copy_fails_with_one_line_and_changes_no_table(station_url, tmp_path, cut):
    data = OSM.read_bytes()
    truncated = tmp_path / "berlin_cut.osm"
    truncated.write_bytes(data[: int(len(data) * cut)])
    before = snapshot(station_url)
    for command in ("import", "import-osm"):
        result = run_cli(station_url, command, str(truncated), "--building", BUILDING, "--replace")
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "berlin_cut.osm" in lines[0] and "nothing imported" in lines[0]
        assert snapshot(station_url) == before  # every table, the versions and the overlay included


# -- the format comes from the content -------------------------------------------------------


def test_formats_are_told_apart_by_their_content(tmp_path):
    xml_named_oddly = tmp_path / "station.data"
    xml_named_oddly.write_bytes(OSM.read_bytes()[:5000])
    assert dispatch.detect_format(str(xml_named_oddly)) == dispatch.OSM_XML

    pbf = tmp_path / "station.bin"
    with osmium.SimpleWriter(str(pbf.with_suffix(".osm.pbf"))) as writer:
        writer.add_node(osmium.osm.mutable.Node(id=1, location=(13.37, 52.52), tags={"level": "0"}))
    pbf.with_suffix(".osm.pbf").rename(pbf)
    assert dispatch.detect_format(str(pbf)) == dispatch.OSM_PBF

    feature = {
        "type": "Feature",
        "properties": {"indoor": "room"},
        "geometry": {"type": "Point", "coordinates": [13, 52]},
    }
    osm_geojson = tmp_path / "export.geojson"
    osm_geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [{**feature, "id": "way/12"}]}))
    assert dispatch.detect_format(str(osm_geojson)) == dispatch.OSM_GEOJSON
    overpass = tmp_path / "overpass.json"
    overpass.write_text(
        json.dumps({"type": "FeatureCollection", "features": [{**feature, "properties": {"@id": "node/7"}}]})
    )
    assert dispatch.detect_format(str(overpass)) == dispatch.OSM_GEOJSON
    plain = tmp_path / "rooms.geojson"
    plain.write_text(json.dumps({"type": "FeatureCollection", "features": [{**feature, "id": 12}]}))
    assert dispatch.detect_format(str(plain)) == dispatch.GDAL

    imdf = tmp_path / "venue.zip"
    with zipfile.ZipFile(imdf, "w") as archive:
        archive.writestr("manifest.json", "{}")
        archive.writestr("unit.geojson", '{"type": "FeatureCollection", "features": []}')
    assert dispatch.detect_format(str(imdf)) == dispatch.IMDF
    shapes = tmp_path / "shapes.zip"
    with zipfile.ZipFile(shapes, "w") as archive:
        archive.writestr("floor.shp", b"")
    assert dispatch.detect_format(str(shapes)) == dispatch.GDAL
    assert (
        dispatch.detect_format(str(SHARED_DATA / "cookbook" / "ch08" / "e01_network_lines_3857.shp")) == dispatch.GDAL
    )


def test_a_file_nothing_reads_fails_with_one_line(station_url, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a building\n")
    before = snapshot(station_url)
    result = run_cli(station_url, "import", str(junk))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "notes.txt" in result.stderr
    assert snapshot(station_url) == before
