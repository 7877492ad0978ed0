"""GDAL files other than the cookbook's: a DXF floor pair (no CRS, layers as kinds, lines that
meet a little apart and in the middle of another) and a GeoPackage of spaces and doors in UTM.

Coordinates are drawn in metres in EPSG:25833 (UTM 33N, Berlin) and reprojected on import.
"""

import warnings

import numpy as np
import pyogrio.raw
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from tests.conftest import run_cli
from tests.feature_data import query
from tests.importing import route_client, snapshot

X0, Y0 = 390_000.0, 5_820_000.0  # EPSG:25833 metres, in Berlin


def at(x, y):
    return (X0 + x, Y0 + y)


def write_layer(path, geometries, fields: dict, driver, crs=None, geometry_type=None):
    pyogrio.raw.write(
        str(path),
        np.array([shapely.to_wkb(g) for g in geometries], dtype=object),
        [np.array(values, dtype=object if isinstance(values[0], str) else None) for values in fields.values()],
        list(fields),
        driver=driver,
        crs=crs,
        geometry_type=geometry_type or geometries[0].geom_type,
    )
    return path


def dxf_floor(path, lines):
    """A DXF of lines on CAD layers; DXF has no CRS (pyogrio warns that it writes none)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        return write_layer(
            path,
            [LineString([at(*p) for p in line]) for line, _ in lines],
            {"Layer": [layer for _, layer in lines]},
            "DXF",
        )


@pytest.fixture(scope="module")
def dxf_url(pg_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dxf")
    # Ground floor: a corridor from (0,0) to (40,0) drawn in two pieces 0.1 m apart; a branch
    # north from (10.05, 0.1), a T: its end lies 0.1 m off the middle of the first piece; stairs from (40,0) to (45,5),
    # whose top is the first floor's corridor end. First floor: a corridor (45,5) -> (45,40).
    ground = dxf_floor(
        folder / "ground.dxf",
        [
            ([(0, 0), (19.9, 0)], "CORRIDOR"),
            ([(20.0, 0), (40, 0)], "CORRIDOR"),
            ([(10.05, 0.1), (10, 30)], "CORRIDOR"),
            ([(40, 0), (45, 5)], "STAIRS"),
        ],
    )
    first = dxf_floor(folder / "first.dxf", [([(45, 5), (45, 40)], "CORRIDOR")])
    rooms = write_layer(
        folder / "rooms.gpkg",
        [Point(at(1, -2)), Point(at(9, 31)), Point(at(46, 39))],
        {"label": ["G.01", "G.02", "1.01"], "storey": [0, 0, 1], "use": ["office", "toilets", "office"]},
        "GPKG",
        crs="EPSG:25833",
    )
    url = pg_cluster.create_database("dxf_floors")
    assert run_cli(url, "init-db").returncode == 0
    mapping = ("--building", "Annex", "--kind-field", "Layer", "--kind-map", "STAIRS=stairs,CORRIDOR=corridor")
    return url, ground, first, rooms, mapping


def test_a_dxf_without_crs_asks_for_one(dxf_url):
    url, ground, _, _, mapping = dxf_url
    before = snapshot(url)
    result = run_cli(url, "import", str(ground), "--level", "0", *mapping)
    assert result.returncode == 1
    assert "ground.dxf" in result.stderr and "--crs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(url) == before


def test_dxf_floors_join_into_one_network_and_route_up_the_stairs(dxf_url, redis_url):
    url, ground, first, rooms, mapping = dxf_url
    for path, level in ((ground, "0"), (first, "1")):
        result = run_cli(url, "import", str(path), "--level", level, "--crs", "EPSG:25833", *mapping)
        assert result.returncode == 0, result.stderr
    assert "1 stairs ends joined" in result.stdout
    result = run_cli(
        url, "import", str(rooms), "--building", "Annex", "--level-field", "storey", "--name-field", "label",
        "--category-field", "use",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The 0.1 m gap and the T are joined: one network, 5 vertices on the ground floor.
    assert query(url, "SELECT level, count(*) FROM nav_edges_work_vertices_pgr GROUP BY level ORDER BY level") == [
        (0, 5),
        (1, 2),
    ]
    lon, lat = query(url, "SELECT ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points WHERE text = 'G.01'")[0]
    assert lon == pytest.approx(13.39, abs=0.02) and lat == pytest.approx(52.52, abs=0.02)  # reprojected to lon/lat
    app, client = route_client(url, redis_url)
    ids = dict(query(url, "SELECT text, ogc_fid FROM room_points"))
    across_the_t = client.get("/api/route/", query_string={"from": ids["G.01"], "to": ids["G.02"]}).get_json()
    # Room -> (0,0) 2.2 m, along to the T 10 m, up the branch 30 m, -> room 1.4 m.
    assert across_the_t["route"]["distance_m"] == pytest.approx(2.24 + 10 + 30 + 1.41, abs=0.5)
    upstairs = client.get("/api/route/", query_string={"from": ids["G.02"], "to": ids["1.01"]}).get_json()
    assert [leg["properties"]["kind"] for leg in upstairs["features"]] == ["corridor", "stairs", "corridor"]
    assert upstairs["route"]["levels"] == [0, 1]
    app.extensions["indoor.db"].close()
    assert query(url, "SELECT DISTINCT category FROM room_points ORDER BY 1") == [("office",), ("toilets",)]


def test_a_geopackage_of_spaces_and_doors_is_derived_into_a_network(fresh_database, redis_url, tmp_path):
    # A corridor (0..30 x 4..6 m) with three rooms south of it, each with a door point on the wall.
    features = [(box(*at(0, 4), *at(30, 6)), "corridor", None, None)]
    for i, name in enumerate(("R1", "R2", "R3")):
        features.append((box(*at(10 * i, 0), *at(10 * i + 10, 4)), "room", name, "office"))
        features.append((Point(at(10 * i + 5, 4)), "door", None, None))
    path = tmp_path / "plan.gpkg"
    for geometry_type in ("Polygon", "Point"):
        chosen = [f for f in features if f[0].geom_type == geometry_type]
        pyogrio.raw.write(
            str(path),
            np.array([shapely.to_wkb(f[0]) for f in chosen], dtype=object),
            [np.array([f[1] for f in chosen], dtype=object), np.array([f[2] or "" for f in chosen], dtype=object)],
            ["kind", "name"],
            driver="GPKG",
            layer=geometry_type.lower(),
            crs="EPSG:25833",
            geometry_type=geometry_type,
            append=path.exists(),
        )
    url = fresh_database("gpkg_plan")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "import", str(path), "--building", "Plan", "--kind-field", "kind", "--name-field", "name")
    assert result.returncode == 0, result.stderr
    assert query(url, "SELECT count(*) FROM room_points") == [(3,)]
    assert query(url, "SELECT layer, count(*) FROM base_floor GROUP BY layer ORDER BY layer") == [
        ("corridor", 1),
        ("room", 3),
    ]
    app, client = route_client(url, redis_url)
    ids = dict(query(url, "SELECT text, ogc_fid FROM room_points"))
    body = client.get("/api/route/", query_string={"from": ids["R1"], "to": ids["R3"]}).get_json()
    kinds = [leg["properties"]["kind"] for leg in body["features"]]
    assert kinds.count("door") == 2 and "corridor" in kinds  # out of R1's door, along, in at R3's
    assert 20 <= body["route"]["distance_m"] <= 26
    app.extensions["indoor.db"].close()


def test_a_zipped_shapefile_is_read_through_gdal(fresh_database, tmp_path):
    import zipfile

    from tests.conftest import SHARED_DATA

    rooms = SHARED_DATA / "cookbook" / "ch11" / "e01_room_data.shp"
    archive = tmp_path / "rooms.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in rooms.parent.glob(rooms.stem + ".*"):
            zipped.write(part, f"export/{part.name}")
    url = fresh_database("zipped_shapefile")
    assert run_cli(url, "init-db").returncode == 0
    result = run_cli(url, "import", str(archive), "--level-field", "floor", "--name-field", "room_num")
    assert result.returncode == 0, result.stderr
    assert "GDAL" in result.stdout
    assert query(url, "SELECT count(*), min(level), max(level) FROM room_points") == [(9, 1, 1)]
