"""OGC API - Features under /ogc/: GDAL's OAPIF driver against the served app, the documents,
paging by next links, the errors, and links that never point at a host a client chose."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import schemathesis

from scripts.services import ROOT_DIR, NginxServer
from tests.http import get, get_json

COLLECTIONS = ["rooms", "base-floor", "edges", "vertices"]


def _gdal(*args: str) -> subprocess.CompletedProcess:
    # GDAL_HTTP_* off: a proxy set in the environment must not stand between GDAL and the test server.
    env = {"GDAL_HTTP_PROXY": "", "http_proxy": "", "HTTP_PROXY": "", "CPL_CURL_VERBOSE": "NO"}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def ogc_server(serve):
    # TRUSTED_HOSTS: the links may then be absolute with the request's (checked) host, which
    # GDAL 3.6 needs (it prefixes a path-absolute href with its landing page URL).
    return serve(workers=2, TRUSTED_HOSTS="127.0.0.1")


def test_gdal_lists_the_collections_and_copies_every_room_and_floor_feature(ogc_server, sql, tmp_path):
    source = f"OAPIF:{ogc_server.base_url}/ogc"
    listing = _gdal("ogrinfo", "-ro", "-q", source)
    assert listing.returncode == 0, listing.stderr
    names = [line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line]
    assert names == COLLECTIONS

    target = tmp_path / "copy.gpkg"
    # Small pages: the copy follows dozens of next links (222 rooms, 450 floor-plan features).
    copied = _gdal(
        "ogr2ogr", "-oo", "PAGE_SIZE=37", "-preserve_fid", "-f", "GPKG", str(target), source, "rooms", "base-floor"
    )
    assert copied.returncode == 0 and "ERROR" not in copied.stderr, copied.stderr
    with sqlite3.connect(target) as gpkg:
        rooms = gpkg.execute('SELECT fid, name, level, building FROM "rooms" ORDER BY fid').fetchall()
        floor = gpkg.execute('SELECT fid, layer, level FROM "base-floor" ORDER BY fid').fetchall()
        level_type = [row[2] for row in gpkg.execute('PRAGMA table_info("rooms")') if row[1] == "level"]
    expected_rooms = sql("SELECT ogc_fid, text, level::float8, building FROM room_points ORDER BY ogc_fid")
    expected_floor = sql("SELECT ogc_fid, layer, level::float8 FROM base_floor ORDER BY ogc_fid")
    assert len(rooms) == len(expected_rooms) > 100 and len(floor) == len(expected_floor) > 100
    assert [tuple(r) for r in rooms] == [tuple(r) for r in expected_rooms]
    assert [tuple(r) for r in floor] == [tuple(r) for r in expected_floor]
    assert level_type == ["REAL"]  # from the collection's schema: 0.5 must not become 0

    # The network's collections: the feature counts GDAL reports equal the tables.
    counts = {
        "edges": sql("SELECT count(*) FROM nav_edges_final")[0][0],
        "vertices": sql("SELECT count(*) FROM nav_edges_work_vertices_pgr")[0][0],
    }
    for name, expected in counts.items():
        info = _gdal("ogrinfo", "-ro", "-so", "-oo", "PAGE_SIZE=500", source, name)
        assert info.returncode == 0, info.stderr
        count = next(line for line in info.stdout.splitlines() if line.startswith("Feature Count:"))
        assert int(count.split(":")[1]) == expected


def test_gdal_reads_a_filtered_layer_and_one_feature(ogc_server, sql):
    source = f"OAPIF:{ogc_server.base_url}/ogc"
    level_one = _gdal("ogrinfo", "-ro", "-so", "-where", "level = 1", source, "rooms")
    assert level_one.returncode == 0, level_one.stderr
    count = next(line for line in level_one.stdout.splitlines() if line.startswith("Feature Count:"))
    assert int(count.split(":")[1]) == sql("SELECT count(*) FROM room_points WHERE level = 1")[0][0]
    fid, name = sql("SELECT ogc_fid, text FROM room_points ORDER BY ogc_fid DESC LIMIT 1")[0]
    one = _gdal("ogrinfo", "-ro", "-fid", str(fid), source, "rooms")
    assert one.returncode == 0 and f"name (String) = {name}" in one.stdout, one.stdout + one.stderr


def test_landing_conformance_collections_and_api(client):
    status, landing = 200, client.get("/ogc/").get_json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels) and status == 200
    assert client.get("/ogc").status_code == 200  # with and without the slash, no redirect
    conformance = client.get("/ogc/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    assert not any("html" in c or "crs" in c or "/filter" in c for c in conformance)  # not implemented

    collections = client.get("/ogc/collections").get_json()["collections"]
    assert [c["id"] for c in collections] == COLLECTIONS
    for c in collections:
        minlon, minlat, maxlon, maxlat = c["extent"]["spatial"]["bbox"][0]
        assert 13 < minlon <= maxlon < 14 and 52 < minlat <= maxlat < 53
        assert any(link["rel"] == "items" and link["type"] == "application/geo+json" for link in c["links"])
        assert client.get(f"/ogc/collections/{c['id']}").get_json()["id"] == c["id"]
        queryables = client.get(f"/ogc/collections/{c['id']}/queryables")
        assert queryables.mimetype == "application/schema+json" and "level" in queryables.get_json()["properties"]

    api = client.get("/ogc/api")
    assert api.headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    document = api.get_json()
    assert document["openapi"].startswith("3.0")
    schema = schemathesis.openapi.from_dict(document)
    assert len(list(schema.get_all_operations())) == len(document["paths"])
    for c in COLLECTIONS:
        names = {p["name"] for p in document["paths"][f"/collections/{c}/items"]["get"]["parameters"]}
        assert {"limit", "bbox", "datetime", "cursor", "level"} <= names


def _follow(client, url: str) -> tuple[list[int], list[dict]]:
    ids, pages = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "application/geo+json", response.get_data()
        page = response.get_json()
        pages.append(page)
        assert page["numberReturned"] == len(page["features"])
        ids += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return ids, pages


def test_next_links_page_through_a_filtered_collection_exactly(client, sql):
    ids, pages = _follow(client, "/ogc/collections/rooms/items?level=1&building=A&limit=7")
    assert ids == [r[0] for r in sql("SELECT ogc_fid FROM room_points WHERE level = 1 AND building = 'A' ORDER BY 1")]
    assert len(pages) > 3 and all("numberMatched" not in p for p in pages)  # filtered: not counted
    edges, _ = _follow(client, "/ogc/collections/edges/items?kind=stairs&limit=5")
    stairs = sql("SELECT id FROM nav_edges_final WHERE kind = 'stairs' ORDER BY id")
    assert edges == [r[0] for r in stairs] and edges


def test_number_matched_only_where_cheap_and_true(client, sql):
    total = sql("SELECT count(*) FROM room_points")[0][0]
    first = client.get("/ogc/collections/rooms/items?limit=10").get_json()
    assert first["numberMatched"] == total and first["numberReturned"] == 10
    one_level = sql("SELECT count(*) FROM room_points WHERE level = 2")[0][0]
    whole = client.get("/ogc/collections/rooms/items?level=2&limit=1000").get_json()
    assert whole["numberMatched"] == whole["numberReturned"] == one_level
    assert not any(link["rel"] == "next" for link in whole["links"])


def test_bbox_and_datetime(client, sql):
    box = "13.3690,52.5250,13.3693,52.5253"
    ids, _ = _follow(client, f"/ogc/collections/base-floor/items?bbox={box}&limit=50")
    expected = sql(
        "SELECT ogc_fid FROM base_floor WHERE ST_Intersects(wkb_geometry,"
        " ST_MakeEnvelope(13.3690, 52.5250, 13.3693, 52.5253, 4326)) ORDER BY 1"
    )
    assert ids == [r[0] for r in expected] and ids
    plain = client.get("/ogc/collections/vertices/items?limit=20").get_json()["features"]
    for value in ("2024-01-01T00:00:00Z", "2024-01-01/..", "../2024-01-01T10:00:00+02:00", "2024-05-06"):
        timed = client.get(f"/ogc/collections/vertices/items?limit=20&datetime={quote(value)}")
        assert timed.status_code == 200 and timed.get_json()["features"] == plain  # features have no time


def test_one_feature_with_its_links(client, sql):
    fid, lon, lat, level = sql(
        "SELECT ogc_fid, ST_X(wkb_geometry), ST_Y(wkb_geometry), level::float8 FROM room_points WHERE level = 2 LIMIT 1"
    )[0]
    response = client.get(f"/ogc/collections/rooms/items/{fid}")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert feature["id"] == fid and feature["properties"]["level"] == level
    assert feature["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
    assert {link["rel"] for link in feature["links"]} == {"self", "collection"}
    edge = client.get("/ogc/collections/edges/items/1").get_json()
    assert set(edge["properties"]) == {"kind", "level", "to_level", "source", "target", "cost", "reverse_cost"}


@pytest.mark.parametrize(
    "path, status, names",
    [
        ("/ogc/collections/rooms/items?bbox=1,2,3", 400, "bbox"),
        ("/ogc/collections/rooms/items?bbox=13,52,nan,53", 400, "bbox"),
        ("/ogc/collections/rooms/items?bbox=14,52,13,53", 400, "bbox"),
        ("/ogc/collections/rooms/items?limit=0", 400, "limit"),
        ("/ogc/collections/rooms/items?limit=ten", 400, "limit"),
        ("/ogc/collections/rooms/items?level=up", 400, "level"),
        ("/ogc/collections/rooms/items?datetime=yesterday", 400, "datetime"),
        ("/ogc/collections/rooms/items?datetime=2020-13-45", 400, "datetime"),
        ("/ogc/collections/rooms/items?datetime=2021-02-29T10:00:00Z", 400, "datetime"),
        ("/ogc/collections/rooms/items?datetime=2020-01-01T25:00:00Z/..", 400, "datetime"),
        ("/ogc/collections/rooms/items?datetime=../2020-01-01T10:00:00%2B24:00", 400, "datetime"),
        ("/ogc/collections/rooms/items?layer=wall", 400, "layer"),  # not a queryable of rooms
        ("/ogc/collections/rooms/items?f=html", 400, "'f'"),
        ("/ogc/collections/rooms/items?cursor=AAAA", 400, "cursor"),
        ("/ogc/collections/nope/items", 404, "nope"),
        ("/ogc/collections/nope", 404, "nope"),
        ("/ogc/collections/rooms/items/99999999", 404, "99999999"),
        ("/ogc/collections/edges/items/x1", 400, "featureId"),
        ("/ogc/collections/rooms/items/1/more", 404, ""),
    ],
)
def test_bad_requests_get_json_errors(client, path, status, names):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and names in error["message"]


def test_a_cursor_belongs_to_its_listing(client):
    page = client.get("/ogc/collections/rooms/items?level=1&limit=3").get_json()
    cursor = next(link["href"] for link in page["links"] if link["rel"] == "next").split("cursor=")[1]
    assert client.get(f"/ogc/collections/rooms/items?level=2&limit=3&cursor={cursor}").status_code == 400
    assert client.get(f"/ogc/collections/vertices/items?level=1&limit=3&cursor={cursor}").status_code == 400


def _hrefs(document) -> list[str]:
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("href", "$id") and isinstance(value, str):
                found.append(value)
            else:
                found += _hrefs(value)
    elif isinstance(document, list):
        for value in document:
            found += _hrefs(value)
    return found


OGC_DOCUMENTS = ["/ogc/", "/ogc/collections", "/ogc/collections/rooms", "/ogc/collections/rooms/items?limit=2"]


def test_links_never_reflect_the_host_header(client):
    for path in OGC_DOCUMENTS:
        document = client.get(path, headers={"Host": "evil.example"}).get_json()
        hrefs = _hrefs(document)
        assert hrefs and all(h.startswith("/ogc/") for h in hrefs), hrefs
    api = client.get("/ogc/api", headers={"Host": "evil.example"}).get_json()
    assert api["servers"] == [{"url": "/ogc"}]


def test_links_start_with_public_url(database_url):
    from indoor import create_app

    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "PUBLIC_URL": "https://maps.example.org/"})
    client = app.test_client()
    try:
        for path in OGC_DOCUMENTS:
            hrefs = _hrefs(client.get(path, headers={"Host": "evil.example"}).get_json())
            assert hrefs and all(h.startswith("https://maps.example.org/ogc/") for h in hrefs), hrefs
    finally:
        app.extensions["indoor.db"].close()


def test_limits_cors_request_ids_through_nginx(serve, workdir, flushed_redis_db):
    app = serve(
        workers=1,
        TRUSTED_PROXY_COUNT=1,
        CORS_ORIGINS="https://maps.example.org",
        RATELIMIT_DEFAULT="5/minute",
        RATELIMIT_STORAGE_URL=flushed_redis_db(14),
    )
    nginx = NginxServer((ROOT_DIR / "deploy" / "nginx.conf").read_text(), app.port, workdir).start()
    try:
        base = f"http://127.0.0.1:{nginx.port}"
        headers = {"Origin": "https://maps.example.org", "X-Request-ID": "gis-client-1"}
        status, response_headers, body = get(base + "/ogc/collections/rooms/items?limit=1", headers)
        assert status == 200 and json.loads(body)["numberReturned"] == 1
        assert response_headers["Access-Control-Allow-Origin"] == "https://maps.example.org"
        assert response_headers["X-Request-ID"] == "gis-client-1"
        assert int(response_headers["X-RateLimit-Limit"]) == 5
        statuses = [get_json(base + "/ogc/collections/rooms/items?limit=1")[0] for _ in range(6)]
        assert statuses[-1] == 429
        assert get_json(base + "/ogc")[0] == 200  # the landing page without a slash reaches the app too
    finally:
        nginx.stop()


def test_link_hosts_are_only_trusted_ones(ogc_server):
    status, landing = get_json(ogc_server.base_url + "/ogc/")
    assert status == 200
    assert {urlsplit(link["href"]).netloc for link in landing["links"]} == {f"127.0.0.1:{ogc_server.port}"}
    status, _ = get_json(ogc_server.base_url + "/ogc/", headers={"Host": "evil.example"})
    assert status == 400  # TRUSTED_HOSTS refuses another host before a link is built


@pytest.mark.slow
def test_generated_requests_from_the_ogc_api_definition_get_no_5xx(serve, workdir):
    """schemathesis against /ogc/api: every answer has a documented status and content type."""
    from tests.test_fuzz import CHECKS

    server = serve(workers=2)
    schemathesis_cli = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis_cli),
        "run",
        server.base_url + "/ogc/api",
        "--url",
        server.base_url + "/ogc",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        "30",
        "--seed",
        "20261201",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
