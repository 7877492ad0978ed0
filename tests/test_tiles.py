"""Vector tiles and TileJSON against the served app: decoded tiles hold the known rooms with their
level, ETags follow the data versions (an edit by SQL shows within 1 s), empty and bad tiles."""

from __future__ import annotations

import math
import subprocess
import time

import mapbox_vector_tile
import psycopg2
import pytest

from tests.conftest import run_cli
from tests.http import get, get_json

MVT = "application/vnd.mapbox-vector-tile"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a point (Web Mercator, rows from the north)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def tile_server(serve):
    return serve(workers=2)


def _room_and_outline(sql, level: int = 1):
    """A room on `level` and the floor plan's outline of it (layer 'room', same name)."""
    return sql(
        "SELECT r.ogc_fid, r.text, ST_X(r.wkb_geometry), ST_Y(r.wkb_geometry), f.ogc_fid"
        "  FROM room_points r JOIN base_floor f ON f.level = r.level AND f.layer = 'room' AND f.name = r.text"
        " WHERE r.level = %s ORDER BY r.ogc_fid LIMIT 1",
        (level,),
    )[0]


def test_a_known_room_and_its_outline_are_in_their_z18_tile_with_their_level(tile_server, sql, tmp_path):
    fid, name, lon, lat, outline = _room_and_outline(sql)
    x, y = tile_of(lon, lat, 18)
    status, headers, body = get(f"{tile_server.base_url}/api/tiles/18/{x}/{y}.mvt")
    assert status == 200 and headers["Content-Type"] == MVT and headers["ETag"]
    layers = mapbox_vector_tile.decode(body)
    assert set(layers) == {"rooms", "floor", "network"}

    rooms = {f["id"]: f for f in layers["rooms"]["features"]}
    room = rooms[fid]
    assert room["properties"]["name"] == name and room["properties"]["level"] == 1
    assert room["properties"]["id"] == fid and room["geometry"]["type"] == "Point"
    # Where the point is drawn: its position inside the tile, to the tile's 1/4096.
    px, py = room["geometry"]["coordinates"]
    n = 2**18
    expected_x = ((lon + 180) / 360 * n - x) * 4096
    expected_y = (1 - ((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n - y)) * 4096
    assert abs(px - expected_x) <= 1 and abs(py - expected_y) <= 1

    floor = {f["id"]: f for f in layers["floor"]["features"]}
    assert floor[outline]["properties"] == {"id": outline, "layer": "room", "name": name, "level": 1, "building": "A"}
    assert floor[outline]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # Every feature of every layer carries its id and level; the network's carry their kind.
    for layer in layers.values():
        assert all({"id", "level"} <= set(f["properties"]) for f in layer["features"])
    assert all(f["properties"]["kind"] for f in layers["network"]["features"]) and layers["network"]["features"]
    levels = {f["properties"]["level"] for f in layers["rooms"]["features"]}
    expected_levels = {
        float(r[0])
        for r in sql(
            "SELECT DISTINCT level FROM room_points WHERE wkb_geometry && ST_Transform(ST_TileEnvelope(18, %s, %s), 4326)",
            (x, y),
        )
    }
    assert levels == expected_levels and len(levels) > 1  # one tile, every level: clients filter by level

    # GDAL's MVT driver reads it too, placing the room where it is.
    path = tmp_path / "18" / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    info = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-where", f"id = {fid}", str(path), "rooms"], capture_output=True, text=True
    )
    assert info.returncode == 0 and f"name (String) = {name}" in info.stdout and "level (Real) = 1" in info.stdout


def test_conditional_requests_and_empty_tiles(tile_server, sql):
    _, _, lon, lat, _ = _room_and_outline(sql)
    x, y = tile_of(lon, lat, 17)
    url = f"{tile_server.base_url}/api/tiles/17/{x}/{y}.mvt"
    status, headers, _ = get(url)
    assert status == 200 and headers["Cache-Control"] == "public, no-cache"
    again = get(url, {"If-None-Match": headers["ETag"]})
    assert again[0] == 304 and again[2] == b"" and again[1]["ETag"] == headers["ETag"]
    assert get(url, {"If-None-Match": '"something-else"'})[0] == 200
    # Inside the zoom range but far from the data: 204, nothing to draw.
    status, headers, body = get(f"{tile_server.base_url}/api/tiles/18/0/0.mvt")
    assert status == 204 and body == b"" and headers["ETag"]


def test_a_tile_of_one_level_and_some_layers_holds_only_those(tile_server, sql):
    _, _, lon, lat, _ = _room_and_outline(sql)
    x, y = tile_of(lon, lat, 17)
    url = f"{tile_server.base_url}/api/tiles/17/{x}/{y}.mvt"
    status, headers, body = get(url)
    everything = mapbox_vector_tile.decode(body)
    status, one_headers, one_body = get(url + "?level=1&layers=floor,rooms")
    assert status == 200 and one_headers["ETag"] != headers["ETag"]
    one = mapbox_vector_tile.decode(one_body)
    assert set(one) == {"rooms", "floor"}, "the network left out"
    for name in ("rooms", "floor"):
        expected = {f["id"] for f in everything[name]["features"] if f["properties"]["level"] == 1}
        assert expected and {f["id"] for f in one[name]["features"]} == expected, name
    # The same tile however the level is written; its own conditional requests.
    assert get(url + "?layers=rooms,floor&level=1.0")[1]["ETag"] == one_headers["ETag"]
    assert get(url + "?level=1&layers=floor,rooms", {"If-None-Match": one_headers["ETag"]})[0] == 304
    status, _, body = get(url + "?level=7")
    assert status == 204 and body == b"", "no feature on that level"
    network = mapbox_vector_tile.decode(get(url + "?level=1&layers=network")[2])
    assert set(network) == {"network"} and all(
        1 in (f["properties"]["level"], f["properties"].get("to_level")) for f in network["network"]["features"]
    )


@pytest.mark.parametrize(
    "query", ["level=x", "level=nan", "level=1&level=2", "layers=", "layers=rooms,walls", "layers=rooms;floor"]
)
def test_bad_tile_filters_get_json_errors(client, query):
    response = client.get(f"/api/tiles/18/140808/85960.mvt?{query}")
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/tiles/12/2200/1343.mvt", 404),  # below the minimum zoom
        ("/api/tiles/21/0/0.mvt", 404),  # above the maximum zoom
        ("/api/tiles/18/262144/0.mvt", 400),  # x beyond 2^z - 1
        ("/api/tiles/18/0/-1.mvt", 400),
        ("/api/tiles/18/a/0.mvt", 400),
        ("/api/tiles/99/0/0.mvt", 400),
        ("/api/tiles/18/0/0.png", 404),
    ],
)
def test_bad_tiles_get_json_errors(client, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "application/json"
    assert set(response.get_json()["error"]) == {"code", "message"}


@pytest.fixture
def own_campus(fresh_database):
    """A campus of its own: the edits below must not change what other tests read."""
    url = fresh_database("tiles")
    result = run_cli(url, "init-db", "--demo-if-empty")
    assert result.returncode == 0, result.stderr
    return url


def _poll_etag(url: str, committed: float, seconds: float = 2.0) -> list[tuple[float, str]]:
    seen = []
    while time.monotonic() - committed < seconds:
        started = time.monotonic() - committed
        status, headers, _ = get(url)
        assert status == 200
        seen.append((started, headers["ETag"]))
    return seen


def test_an_edit_by_sql_changes_the_tile_etag_within_1s(serve, own_campus):
    server = serve(workers=2, DATABASE_URL=own_campus)
    editor = psycopg2.connect(own_campus)
    editor.autocommit = True
    cur = editor.cursor()
    cur.execute(
        "SELECT r.ogc_fid, r.text, ST_X(r.wkb_geometry), ST_Y(r.wkb_geometry), f.ogc_fid FROM room_points r"
        " JOIN base_floor f ON f.level = r.level AND f.layer = 'room' AND f.name = r.text"
        " WHERE r.level = 1 ORDER BY r.ogc_fid LIMIT 1"
    )
    fid, name, lon, lat, outline = cur.fetchone()
    x, y = tile_of(lon, lat, 18)
    url = f"{server.base_url}/api/tiles/18/{x}/{y}.mvt"
    before = {get(url)[1]["ETag"] for _ in range(6)}  # both workers
    assert len(before) == 1

    for statement, check in (
        ("UPDATE room_points SET text = 'Renamed' WHERE ogc_fid = %s", ("rooms", fid, "name", "Renamed")),
        ("UPDATE base_floor SET level = 2 WHERE ogc_fid = %s", ("floor", outline, "level", 2)),
    ):
        cur.execute(statement, ((fid if check[0] == "rooms" else outline),))
        committed = time.monotonic()
        seen = _poll_etag(url, committed)
        late = [etag for started, etag in seen if started >= 1.0]
        assert len(late) >= 5 and not (set(late) & before), seen
        assert len(set(late)) == 1
        body = get(url)[2]
        layer, ident, key, value = check
        feature = next(f for f in mapbox_vector_tile.decode(body)[layer]["features"] if f["id"] == ident)
        assert feature["properties"][key] == value
        before |= {etag for _, etag in seen}
    editor.close()


def test_tilejson_names_the_tiles_never_from_the_host_header(client, database_url, sql):
    document = client.get("/api/tiles.json", headers={"Host": "evil.example"}).get_json()
    assert document["tilejson"] == "3.0.0" and document["tiles"] == ["/api/tiles/{z}/{x}/{y}.mvt"]
    assert [layer["id"] for layer in document["vector_layers"]] == ["rooms", "floor", "network"]
    assert 16 <= document["minzoom"] < document["maxzoom"] <= 22
    minlon, minlat, maxlon, maxlat = document["bounds"]
    (extent,) = sql(
        "SELECT min(ST_XMin(e)), min(ST_YMin(e)), max(ST_XMax(e)), max(ST_YMax(e)) FROM ("
        " SELECT ST_Extent(wkb_geometry) e FROM room_points UNION ALL SELECT ST_Extent(wkb_geometry) FROM base_floor"
        " UNION ALL SELECT ST_Extent(wkb_geometry) FROM nav_edges_final) t"
    )
    assert (minlon, minlat, maxlon, maxlat) == pytest.approx(extent, abs=1e-7)
    assert minlon <= document["center"][0] <= maxlon and minlat <= document["center"][1] <= maxlat

    from indoor import create_app

    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "PUBLIC_URL": "https://maps.example.org"})
    try:
        public = app.test_client().get("/api/tiles.json", headers={"Host": "evil.example"}).get_json()
        assert public["tiles"] == ["https://maps.example.org/api/tiles/{z}/{x}/{y}.mvt"]
    finally:
        app.extensions["indoor.db"].close()


def test_tilejson_with_trusted_hosts_names_the_served_host(serve):
    server = serve(TRUSTED_HOSTS="127.0.0.1")
    status, document = get_json(server.base_url + "/api/tiles.json")
    assert status == 200 and document["tiles"] == [f"{server.base_url}/api/tiles/{{z}}/{{x}}/{{y}}.mvt"]


def test_tiles_have_their_own_rate_limit(database_url, flushed_redis_db):
    """A map asks for tiles by the dozen: RATELIMIT_TILES, not the default, counts them."""
    from indoor import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "RATELIMIT_DEFAULT": "2/minute",
            "RATELIMIT_TILES": "4/minute",
            "RATELIMIT_STORAGE_URL": flushed_redis_db(12),
        }
    )
    client = app.test_client()
    try:
        tiles = [client.get("/api/tiles/18/0/0.mvt") for _ in range(5)]
        assert [r.status_code for r in tiles] == [204, 204, 204, 204, 429]
        assert tiles[0].headers["X-RateLimit-Limit"] == "4"
        documents = [client.get("/api/tiles.json").status_code for _ in range(3)]
        assert documents == [200, 200, 429]  # the TileJSON document counts under the default
    finally:
        app.extensions["indoor.db"].close()


def test_a_tile_is_rendered_once_per_data_version(serve, own_campus):
    """The tile cache is keyed by the versions: an edit that bumps no version (triggers off, as a
    bulk loader might) is not seen; the next counted edit is, by every worker."""
    cached = serve(workers=2, DATABASE_URL=own_campus)
    uncached = serve(workers=1, DATABASE_URL=own_campus, TILE_CACHE_TTL_S=0)
    editor = psycopg2.connect(own_campus)
    editor.autocommit = True
    cur = editor.cursor()
    cur.execute("SELECT ogc_fid, ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points ORDER BY ogc_fid LIMIT 1")
    fid, lon, lat = cur.fetchone()
    x, y = tile_of(lon, lat, 19)
    path = f"/api/tiles/19/{x}/{y}.mvt"

    def name_in(server) -> str:
        status, _, body = get(server.base_url + path)
        assert status == 200
        return next(f for f in mapbox_vector_tile.decode(body)["rooms"]["features"] if f["id"] == fid)["properties"][
            "name"
        ]

    original = name_in(cached)
    cur.execute("SET session_replication_role = replica")  # no triggers: no version bump
    cur.execute("UPDATE room_points SET text = 'Unversioned' WHERE ogc_fid = %s", (fid,))
    assert [name_in(cached) for _ in range(6)] == [original] * 6
    assert name_in(uncached) == "Unversioned"
    cur.execute("SET session_replication_role = origin")
    cur.execute("UPDATE room_points SET text = 'Versioned' WHERE ogc_fid = %s", (fid,))
    assert [name_in(cached) for _ in range(6)] == ["Versioned"] * 6
    editor.close()


def test_rows_other_tools_wrote_badly_do_not_break_a_tile(serve, own_campus):
    """A self-intersecting polygon, an empty geometry, NaN coordinates and a NaN level next to the
    good rows: the tile still answers, with the good features."""
    server = serve(workers=1, DATABASE_URL=own_campus)
    editor = psycopg2.connect(own_campus)
    editor.autocommit = True
    cur = editor.cursor()
    cur.execute("SELECT ogc_fid, ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points ORDER BY ogc_fid LIMIT 1")
    fid, lon, lat = cur.fetchone()
    d = 0.00002
    cur.execute(
        "INSERT INTO base_floor (layer, name, level, wkb_geometry) VALUES"
        " ('room', 'bowtie', 0, ST_GeomFromText(%(bowtie)s, 4326)),"
        " ('room', 'empty', 0, ST_GeomFromText('POLYGON EMPTY', 4326)),"
        " ('wall', 'nan', 'NaN', ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))",
        {
            "bowtie": f"POLYGON(({lon} {lat}, {lon + d} {lat + d}, {lon + d} {lat}, {lon} {lat + d}, {lon} {lat}))",
            "lon": lon,
            "lat": lat,
        },
    )
    cur.execute("INSERT INTO room_points (text, level, wkb_geometry) VALUES ('nowhere', 0, ST_MakePoint('NaN', 'NaN'))")
    x, y = tile_of(lon, lat, 19)
    status, _, body = get(f"{server.base_url}/api/tiles/19/{x}/{y}.mvt")
    assert status == 200, body
    layers = mapbox_vector_tile.decode(body)
    assert fid in {f["id"] for f in layers["rooms"]["features"]}
    assert "bowtie" in {f["properties"].get("name") for f in layers["floor"]["features"]}
    # The documents built from the extents stay valid JSON (a NaN extent is left out, not sent).
    for path in ("/api/tiles.json", "/ogc/collections"):
        status, document = get_json(server.base_url + path)
        assert status == 200 and isinstance(document, dict), (path, document)
    editor.close()
