"""Rows another tool wrote, round three: nested collections and the PostGIS types GeoJSON and MVT
have none for (surfaces, TIN, triangles), SRID-0 and projected rows, numbers beyond a double, and
tables created without the contract's constraints (NULL and duplicate keys). Every listing,
feature, stream, vector tile and OGC collection answers them in strict JSON or a decodable tile,
never a 5xx; routes leave such rows out; check-graph and build-overlay report, never crash.

One database of its own whose tables are as loose as ogr2ogr, QGIS or a hand-written script may
leave them: no primary keys, nullable keys, untyped geometry columns.
"""

from __future__ import annotations

import math
import os

import mapbox_vector_tile
import psycopg2
import pytest

from indoor import create_app
from tests import strict_json
from tests.conftest import TEST_RATE_LIMITS, run_cli
from tests.test_hostile_data import LAT, LEVEL, LON, A, B, C, loose_schema

AB, BC = 900001, 900002
MVT_ZOOM = 18


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def keyless_schema(cur) -> None:
    """As loose_schema, and the keys too: no primary keys, NULLs allowed, any geometry type."""
    loose_schema(cur)
    for table, key in (
        ("room_points", "ogc_fid"),
        ("base_floor", "ogc_fid"),
        ("nav_edges_work_vertices_pgr", "id"),
        ("nav_edges_final", "id"),
    ):
        cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")  # noqa: S608 - fixed names
        cur.execute(f"ALTER TABLE {table} ALTER COLUMN {key} DROP NOT NULL")  # noqa: S608
    for column in ("source", "target", "kind"):
        cur.execute(f"ALTER TABLE nav_edges_final ALTER COLUMN {column} DROP NOT NULL")  # noqa: S608
    for table, column in (
        ("room_points", "wkb_geometry"),
        ("base_floor", "wkb_geometry"),
        ("nav_edges_work_vertices_pgr", "the_geom"),
        ("nav_edges_final", "wkb_geometry"),
    ):
        cur.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE geometry")  # noqa: S608


@pytest.fixture(scope="module")
def rows_url(pg_cluster):
    url = pg_cluster.create_database(f"hostile_rows_{os.getpid()}")
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        keyless_schema(cur)
        cur.execute(
            """INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom) VALUES
               (%(a)s, 7, ST_SetSRID(ST_MakePoint(10.0, 50.0), 4326)),
               (%(b)s, 7, ST_SetSRID(ST_MakePoint(10.0001, 50.0), 4326)),
               (%(c)s, 7, ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326));
               INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
               SELECT 900000 + v.id - %(a)s + 1, v.id, v.id + 1, 10, 10, 'corridor',
                      ST_MakeLine(v.the_geom, w.the_geom)
                 FROM nav_edges_work_vertices_pgr v JOIN nav_edges_work_vertices_pgr w ON w.id = v.id + 1;
               INSERT INTO room_points (text, level, category, wkb_geometry)
               VALUES ('R', 7, 'kiosk', ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326))""",
            {"a": A, "b": B, "c": C},
        )
    conn.close()
    return url


@pytest.fixture(scope="module")
def rows_app(rows_url, redis_url):
    app = create_app(
        {
            "DATABASE_URL": rows_url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "WARNING",
            "ROUTE_OVERLAY": "false",
            **TEST_RATE_LIMITS,
        }
    )
    yield app
    app.extensions["indoor.db"].close()


@pytest.fixture
def rows_sql(rows_url):
    conn = psycopg2.connect(rows_url)
    conn.autocommit = True
    undo = []

    def run(statement: str, params=None, cleanup: str | None = None):
        with conn.cursor() as cur:
            cur.execute(statement, params)
            found = cur.fetchall() if cur.description else None
        if cleanup:
            undo.append(cleanup)
        return found

    yield run
    with conn.cursor() as cur:
        for statement in reversed(undo):
            cur.execute(statement)
    conn.close()


def strict(client, path, stream=False):
    """GET `path`: no 5xx, strict JSON (every event's data, for a stream)."""
    headers = {"Accept": "text/event-stream"} if stream else {}
    response = client.get(path, headers=headers)
    assert response.status_code < 500, (path, response.status_code, response.data[:400])
    if stream and response.status_code == 200:
        return response, strict_json.sse_data(response.get_data())
    return response, strict_json.loads(response.get_data()) if response.data else None


def listed(client, path) -> dict:
    features = {}
    while path:
        response, body = strict(client, path)
        assert response.status_code == 200, body
        features.update({f["id"]: f for f in body["features"]})
        nexts = [link["href"] for link in body.get("links", []) if link["rel"] == "next"]
        path = nexts[0] if nexts else None
    return features


def streamed(client, path) -> dict:
    response, events = strict(client, path, stream=True)
    assert response.status_code == 200
    return {f["id"]: f for event in events for f in event.get("features", [])}


def tile_layers(client, lon=LON, lat=LAT, z=MVT_ZOOM) -> dict:
    x, y = tile_of(lon, lat, z)
    response = client.get(f"/api/tiles/{z}/{x}/{y}.mvt")
    assert response.status_code in (200, 204), (response.status_code, response.data[:300])
    return mapbox_vector_tile.decode(response.data) if response.data else {}


def layer_ids(layers: dict, name: str) -> set:
    return {f["id"] for f in layers.get(name, {}).get("features", [])}


# Floor-plan rows of every type another tool may write (level 7, at A-B-C), by name: what the
# floor plan draws of each (None: a null geometry; a type: drawn as that GeoJSON type).
FLOOR_ROWS = {
    "line": ("'SRID=4326;LINESTRING(10 50, 10.0001 50)'", "LineString"),
    "arc": ("'SRID=4326;CIRCULARSTRING(10 50, 10.0001 50.0001, 10.0002 50)'", "LineString"),
    "multisurface": (
        "'SRID=4326;MULTISURFACE(CURVEPOLYGON(CIRCULARSTRING(10 50, 10.0001 50.0001, 10 50)))'",
        "MultiPolygon",
    ),
    "collection": ("'SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), LINESTRING(10 50, 10.0001 50))'", "GeometryCollection"),
    "nested": ("'SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), GEOMETRYCOLLECTION(POINT(10.0001 50)))'", None),
    "collected solid": (
        "'SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), POLYHEDRALSURFACE(((10 50, 10.0001 50, 10 50.0001, 10 50))))'",
        None,
    ),
    "collected tin": ("'SRID=4326;GEOMETRYCOLLECTION(TIN(((10 50, 10.0001 50, 10 50.0001, 10 50))))'", None),
    "collected triangle": ("'SRID=4326;GEOMETRYCOLLECTION(TRIANGLE((10 50, 10.0001 50, 10 50.0001, 10 50)))'", None),
    "solid": ("'SRID=4326;POLYHEDRALSURFACE(((10 50, 10.0001 50, 10 50.0001, 10 50)))'", None),
    "tin": ("'SRID=4326;TIN(((10 50, 10.0001 50, 10 50.0001, 10 50)))'", None),
    "triangle": ("'SRID=4326;TRIANGLE((10 50, 10.0001 50, 10 50.0001, 10 50))'", None),
    "minus infinity": ("ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint('-Infinity', 50)), 4326)", None),
    "nan": ("ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(10.0001, 'NaN')), 4326)", None),
    "srid 0": ("'LINESTRING(10 50, 10.0001 50)'::geometry", None),
    "projected": (
        "ST_SetSRID(ST_MakeLine(ST_MakePoint(1113194.9, 6446275.8), ST_MakePoint(1113195, 6446276)), 4326)",
        None,
    ),
    "web mercator": ("ST_Transform('SRID=4326;LINESTRING(10 50, 10.0001 50)'::geometry, 3857)", None),
}


@pytest.fixture
def floor_rows(rows_sql):
    ids = {}
    for name, (geometry, _) in FLOOR_ROWS.items():
        (ident,) = rows_sql(
            f"INSERT INTO base_floor (layer, name, level, wkb_geometry) VALUES ('wall', %s, 7, {geometry})"  # noqa: S608
            " RETURNING ogc_fid",
            (name,),
            cleanup=None,
        )[0]
        ids[name] = ident
    # A level beyond a double (numeric holds it; float8 does not).
    (huge,) = rows_sql(
        "INSERT INTO base_floor (layer, name, level, wkb_geometry)"
        " VALUES ('wall', 'huge level', 1e3000, 'SRID=4326;LINESTRING(10 50, 10.0001 50)') RETURNING ogc_fid"
    )[0]
    ids["huge level"] = huge
    rows_sql("SELECT 1", cleanup=f"DELETE FROM base_floor WHERE ogc_fid = ANY(ARRAY{sorted(ids.values())})")  # noqa: S608
    return ids


def test_every_floor_plan_type_is_drawn_or_null_in_pages_streams_features_and_ogc(rows_app, rows_url, floor_rows):
    client = rows_app.test_client()
    pages = listed(client, "/api/base-floor/?limit=3")
    pages_bbox = listed(client, "/api/base-floor/?bbox=9.99,49.99,10.01,50.01&limit=3")
    stream = streamed(client, "/api/base-floor/")
    stream_bbox = streamed(client, "/api/base-floor/?bbox=9.99,49.99,10.01,50.01")
    ogc = listed(client, "/ogc/collections/base-floor/items?limit=4")
    ogc_bbox = listed(client, "/ogc/collections/base-floor/items?bbox=9.99,49.99,10.01,50.01&limit=4")
    for name, (_, drawn) in FLOOR_ROWS.items():
        ident = floor_rows[name]
        for features in (pages, stream, ogc):
            geometry = features[ident]["geometry"]
            assert (geometry and geometry["type"]) == drawn, (name, geometry)
        for features in (pages_bbox, stream_bbox, ogc_bbox):
            if drawn:  # every drawn row lies in the box; an undrawable one is not found by a box
                assert features[ident]["geometry"]["type"] == drawn, name
        response, feature = strict(client, f"/ogc/collections/base-floor/items/{ident}")
        assert response.status_code == 200 and (feature["geometry"] and feature["geometry"]["type"]) == drawn, name
    huge = floor_rows["huge level"]
    assert pages[huge]["properties"]["level"] is None and stream[huge]["properties"]["level"] is None
    response, body = strict(client, "/api/levels/")
    assert response.status_code == 200 and [entry["level"] for entry in body["levels"]] == [7]
    checked = run_cli(rows_url, "check-graph")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
    (line,) = [line for line in checked.stdout.splitlines() if "floor-plan geometry" in line]
    undrawn = sum(1 for _, drawn in FLOOR_ROWS.values() if drawn is None)
    assert line.startswith("BREACH") and f": {undrawn} e.g." in line, line


def test_vector_tiles_leave_out_what_they_cannot_draw(rows_app, floor_rows):
    layers = tile_layers(rows_app.test_client())
    drawn = layer_ids(layers, "floor")
    for name, (_, geometry_type) in FLOOR_ROWS.items():
        # MVT has no collections: a tile leaves out what GeoJSON draws as one.
        assert (floor_rows[name] in drawn) == (geometry_type not in (None, "GeometryCollection")), name
    (huge,) = [f for f in layers["floor"]["features"] if f["id"] == floor_rows["huge level"]]
    assert "level" not in huge["properties"]  # a level no double holds: no level


def test_rooms_vertices_and_edges_another_tool_wrote_in_tiles_and_ogc(rows_app, rows_sql):
    client = rows_app.test_client()
    rooms = rows_sql(
        """INSERT INTO room_points (text, level, wkb_geometry) VALUES
           ('huge', 1e3000, ST_SetSRID(ST_MakePoint(10.0001, 50.0), 4326)),
           ('srid0', 7, ST_MakePoint(10.0001, 50.0)),
           ('tiny', -1e-3000, ST_SetSRID(ST_MakePoint(10.0001, 50.0), 4326))
           RETURNING ogc_fid, text"""
    )
    room_ids = {name: ident for ident, name in rooms}
    made = sorted(room_ids.values())
    rows_sql("SELECT 1", cleanup=f"DELETE FROM room_points WHERE ogc_fid = ANY(ARRAY{made})")  # noqa: S608
    vertices = {
        800001: ("'NaN'", "ST_SetSRID(ST_MakePoint(10.00005, 50.0), 4326)"),
        800002: ("7", "ST_SetSRID(ST_MakePoint(1113194.9, 6446275.8), 4326)"),
        800003: ("7", "ST_SetSRID(ST_MakePoint('NaN', 'NaN'), 4326)"),
        800004: ("7", "'SRID=4326;POINT EMPTY'::geometry"),
        800005: ("1e3000", "ST_MakePoint(10.00005, 50.0)"),
    }
    for ident, (level, geometry) in vertices.items():
        statement = f"INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom) VALUES (%s, {level}, {geometry})"  # noqa: S608
        rows_sql(statement, (ident,))
    rows_sql("SELECT 1", cleanup="DELETE FROM nav_edges_work_vertices_pgr WHERE id BETWEEN 800001 AND 800005")
    edges = {
        800001: (A, 800001, "ST_SetSRID(ST_MakeLine(ST_MakePoint('-Infinity', 50), ST_MakePoint(10, 50)), 4326)"),
        800002: (A, 800002, "ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(1113194.9, 6446275.8)), 4326)"),
        800003: (A, 800003, "'SRID=4326;LINESTRING EMPTY'::geometry"),
        800004: (A, 800005, "ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(10.00005, 50))"),
        800005: (800001, B, "ST_SetSRID(ST_MakeLine(ST_MakePoint(10.00005, 50), ST_MakePoint(10.0001, 50)), 4326)"),
    }
    for ident, (source, target, geometry) in edges.items():
        rows_sql(
            "INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)"  # noqa: S608
            f" VALUES (%s, %s, %s, 'NaN', 10, 'corridor', {geometry})",
            (ident, source, target),
        )
    rows_sql("SELECT 1", cleanup="DELETE FROM nav_edges_final WHERE id BETWEEN 800001 AND 800005")

    layers = tile_layers(client)
    assert room_ids["srid0"] not in layer_ids(layers, "rooms")
    by_id = {f["id"]: f for f in layers["rooms"]["features"]}
    assert "level" not in by_id[room_ids["huge"]]["properties"]
    assert by_id[room_ids["tiny"]]["properties"].get("level", 0) == 0
    network = {f["id"]: f for f in layers["network"]["features"]}
    assert not {800001, 800002, 800003, 800004} & set(network)
    assert "level" not in network[800005]["properties"]  # its source's level is NaN

    for path in ("/ogc/collections/edges/items?limit=3", "/ogc/collections/edges/items?bbox=9,49,11,51&limit=3"):
        features = listed(client, path)
        for ident in (800001, 800002, 800003, 800004):
            assert features.get(ident, {"geometry": None})["geometry"] is None, ident
        assert features[800005]["properties"]["level"] is None and features[800005]["properties"]["cost"] is None
        if "bbox" not in path:
            assert features[800004]["properties"]["to_level"] is None
    vertices_listed = listed(client, "/ogc/collections/vertices/items?limit=2")
    for ident in (800002, 800003, 800004, 800005):
        assert vertices_listed[ident]["geometry"] is None, ident
    assert vertices_listed[800001]["properties"]["level"] is None
    assert vertices_listed[800005]["properties"]["level"] is None
    for ident in (800001, 800002, 800003, 800004, 800005):
        response, feature = strict(client, f"/ogc/collections/vertices/items/{ident}")
        assert response.status_code == 200
        response, feature = strict(client, f"/ogc/collections/edges/items/{ident}")
        assert response.status_code == 200
    for path in ("/api/rooms/", "/ogc/collections/rooms/items"):
        features = listed(client, path)
        assert features[room_ids["huge"]]["properties"]["level"] is None
        assert features[room_ids["srid0"]]["geometry"] is None
    response, body = strict(client, "/ogc/collections")
    assert response.status_code == 200


def route(client, query: str):
    return strict(client, f"/api/route/?{query}")


def test_edges_with_null_keys_are_left_out_of_routes_and_the_overlay(rows_app, rows_url, rows_sql):
    client = rows_app.test_client()
    for column in ("id", "source", "target", "kind"):
        rows_sql(
            f"""INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
                SELECT CASE WHEN '{column}' = 'id' THEN NULL ELSE 800100 END,
                       CASE WHEN '{column}' = 'source' THEN NULL ELSE {A} END,
                       CASE WHEN '{column}' = 'target' THEN NULL ELSE {C} END,
                       1, 1, CASE WHEN '{column}' = 'kind' THEN NULL ELSE 'corridor' END,
                       'SRID=4326;LINESTRING(10 50, 10.0002 50)'""",  # noqa: S608 - the test's own
            cleanup="DELETE FROM nav_edges_final WHERE id = 800100 OR id IS NULL OR source IS NULL"
            " OR target IS NULL OR kind IS NULL",
        )
        for query in (
            f"from={LON},{LAT},{LEVEL}&to=10.0002,{LAT},{LEVEL}",
            f"from={LON},{LAT},{LEVEL}&to=10.0002,{LAT},{LEVEL}&profile=accessible",
            f"from={LON},{LAT},{LEVEL}&to=category:kiosk",
        ):
            response, body = route(client, query)
            assert response.status_code == 200, (column, body)
            # The shortcut A-C of cost 1 is not a usable edge: the route takes A-B-C (20 m).
            assert body["route"]["distance_m"] == pytest.approx(20), (column, body["route"])
        built = run_cli(rows_url, "build-overlay", "--force")
        assert built.returncode == 0 and "Traceback" not in built.stderr, (column, built.stderr)
        checked = run_cli(rows_url, "check-graph")
        assert checked.returncode == 1 and "Traceback" not in checked.stderr, (column, checked.stderr)
        assert any(
            line.startswith("BREACH") and "NULL" in line and "key" in line for line in checked.stdout.splitlines()
        ), checked.stdout
        rows_sql(
            "DELETE FROM nav_edges_final WHERE id = 800100 OR id IS NULL OR source IS NULL OR target IS NULL"
            " OR kind IS NULL"
        )


def test_duplicate_keys_the_first_row_wins_everywhere(rows_app, rows_url, rows_sql):
    client = rows_app.test_client()
    # A second B-C (same id) that is a shortcut, written after the first: the first wins.
    rows_sql(
        "INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)"
        " VALUES (%s, %s, %s, 1, 1, 'stairs', 'SRID=4326;LINESTRING(10.0001 50, 10.0002 50.0001)')",
        (BC, B, C),
        cleanup=f"DELETE FROM nav_edges_final WHERE id = {BC} AND kind = 'stairs'",  # noqa: S608
    )
    # A second vertex C, elsewhere and on another level: the first wins.
    rows_sql(
        "INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom) VALUES (%s, 3, 'SRID=4326;POINT(10.5 50.5)')",
        (C,),
        cleanup=f"DELETE FROM nav_edges_work_vertices_pgr WHERE id = {C} AND level = 3",  # noqa: S608
    )
    # A room without an id, of the category routed to.
    rows_sql(
        "INSERT INTO room_points (ogc_fid, text, level, category, wkb_geometry)"
        " VALUES (NULL, 'no id', 7, 'kiosk', 'SRID=4326;POINT(10.0001 50)')",
        cleanup="DELETE FROM room_points WHERE ogc_fid IS NULL",
    )
    for profile in ("walking", "accessible"):
        response, body = route(client, f"from={LON},{LAT},{LEVEL}&to=10.0002,{LAT},{LEVEL}&profile={profile}")
        assert response.status_code == 200, body
        assert body["route"]["distance_m"] == pytest.approx(20) and body["route"]["to"]["vertex"] == C
        coordinates = [c for f in body["features"] for c in f["geometry"]["coordinates"]]
        assert coordinates[-1] == [10.0002, 50.0]
    response, body = route(client, f"from={LON},{LAT},{LEVEL}&to=category:kiosk")
    assert response.status_code == 200, body
    assert body["route"]["to"]["name"] == "R"
    rooms = listed(client, "/api/rooms/?limit=1")
    assert None not in rooms and {f["properties"]["name"] for f in rooms.values()} >= {"R"}
    edges = listed(client, "/ogc/collections/edges/items?limit=1")
    assert edges[BC]["properties"]["kind"] == "corridor"
    vertices = listed(client, "/ogc/collections/vertices/items?limit=1")
    assert vertices[C]["geometry"]["coordinates"] == [10.0002, 50.0]
    response, feature = strict(client, f"/ogc/collections/edges/items/{BC}")
    assert response.status_code == 200 and feature["properties"]["kind"] == "corridor"
    built = run_cli(rows_url, "build-overlay", "--force")
    assert built.returncode == 0 and "Traceback" not in built.stderr, built.stderr
    checked = run_cli(rows_url, "check-graph")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
    breaches = [line for line in checked.stdout.splitlines() if line.startswith("BREACH")]
    assert any("duplicate" in line and str(BC) in line for line in breaches), checked.stdout
    assert any("duplicate" in line and str(C) in line for line in breaches), checked.stdout
    assert any("room" in line and "NULL" in line for line in breaches), checked.stdout


def test_rows_decided_when_written_follow_every_write_and_a_disabled_trigger(rows_app, rows_url, rows_sql):
    """A floor-plan row and a room made unusable by UPDATE are null at once (init-db's triggers list
    them), drawn again when fixed; with a trigger disabled every row is read through the guards,
    and check-graph names the rows written past it until init-db lists them."""
    client = rows_app.test_client()
    good_line = "'SRID=4326;LINESTRING(10 50, 10.0001 50)'"
    nan_line = (
        "ST_SetSRID(ST_MakeLine(ARRAY[ST_MakePoint(10, 50), ST_MakePoint('NaN', 50), ST_MakePoint(10.0001, 50)]), 4326)"
    )
    (floor,) = rows_sql(
        f"INSERT INTO base_floor (layer, level, wkb_geometry) VALUES ('wall', 7, {good_line}) RETURNING ogc_fid"  # noqa: S608
    )[0]
    (room,) = rows_sql(
        "INSERT INTO room_points (text, level, wkb_geometry) VALUES ('t', 7, 'SRID=4326;POINT(10 50)') RETURNING ogc_fid"
    )[0]
    rows_sql("SELECT 1", cleanup=f"DELETE FROM base_floor WHERE ogc_fid = {floor}")  # noqa: S608
    rows_sql("SELECT 1", cleanup=f"DELETE FROM room_points WHERE ogc_fid = {room}")  # noqa: S608
    rows_sql(
        "SELECT 1",
        cleanup="ALTER TABLE base_floor ENABLE TRIGGER indoor_floor_plain_update",
    )

    def drawn() -> tuple:
        floors = streamed(client, "/api/base-floor/?level=7")
        rooms = listed(client, "/api/rooms/?limit=1000")
        return (
            floors[floor]["geometry"] is not None,
            rooms[room]["geometry"] is not None,
            rooms[room]["properties"]["level"],
        )

    assert drawn() == (True, True, 7)
    rows_sql(f"UPDATE base_floor SET wkb_geometry = {nan_line} WHERE ogc_fid = %s", (floor,))  # noqa: S608
    rows_sql("UPDATE room_points SET level = 1e3000 WHERE ogc_fid = %s", (room,))
    assert drawn() == (False, True, None)
    rows_sql(f"UPDATE base_floor SET wkb_geometry = {good_line} WHERE ogc_fid = %s", (floor,))  # noqa: S608
    rows_sql("UPDATE room_points SET level = 7 WHERE ogc_fid = %s", (room,))
    assert drawn() == (True, True, 7)
    assert rows_sql("SELECT count(*) FROM indoor_unusable_rows WHERE id IN (%s, %s)", (floor, room))[0][0] == 0

    # A write past a disabled trigger: the table is then read through the guards, row by row.
    rows_sql("ALTER TABLE base_floor DISABLE TRIGGER indoor_floor_plain_update")
    rows_sql(f"UPDATE base_floor SET wkb_geometry = {nan_line} WHERE ogc_fid = %s", (floor,))  # noqa: S608
    assert drawn()[0] is False
    rows_sql("ALTER TABLE base_floor ENABLE TRIGGER indoor_floor_plain_update")
    checked = run_cli(rows_url, "check-graph")
    (line,) = [line for line in checked.stdout.splitlines() if "base_floor row not plain but not listed" in line]
    assert line.startswith("BREACH") and f"e.g. {floor}" in line, line
    assert run_cli(rows_url, "init-db").returncode == 0
    assert drawn()[0] is False
    checked = run_cli(rows_url, "check-graph")
    (line,) = [line for line in checked.stdout.splitlines() if "base_floor row not plain but not listed" in line]
    assert not line.startswith("BREACH"), line


def _signed_area(ring: list) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False)) / 2


def test_texts_and_rings_are_written_exactly_on_the_fast_path_and_through_the_guards(rows_app, rows_url, rows_sql):
    """The listings write a plain row's texts between quotes and its polygons through a cheap
    orientation test, trusting init-db's triggers: a name JSON must escape (a quote, a backslash,
    a line break, a control character) is listed as not plain when written (as would be a ring
    the test and ST_ForcePolygonCCW saw differently), so every row, a ring of no area too, reads
    exactly as to_json and ST_ForcePolygonCCW write it, in pages, features, streams and OGC, and
    check-graph finds nothing written past the triggers."""
    client = rows_app.test_client()
    awkward = 'Hall "A" \\ 1\n\tend\x01'
    clockwise = "'SRID=4326;POLYGON((10 50, 10 50.0001, 10.0001 50.0001, 10.0001 50, 10 50))'"
    flat = "'SRID=4326;POLYGON((10 50, 10.0001 50, 10.0002 50, 10 50))'"  # a ring of no area
    rows = {
        "awkward": (awkward, "B\tB", clockwise),
        "plain": ("Plain hall", "B", clockwise),
        "flat": ("Flat", "B", flat),
        "line": ("Line", None, "'SRID=4326;LINESTRING(10.0001 50, 10 50)'"),
    }
    ids = {}
    for key, (name, building, geometry) in rows.items():
        ids[key] = rows_sql(
            "INSERT INTO base_floor (layer, name, level, building, wkb_geometry)"  # noqa: S608 - constant geometries
            f" VALUES ('room', %s, 8, %s, {geometry}) RETURNING ogc_fid",
            (name, building),
            cleanup=None,
        )[0][0]
    (room,) = rows_sql(
        "INSERT INTO room_points (text, level, building, category, wkb_geometry)"
        " VALUES (%s, 8, 'B', 'a\\b', 'SRID=4326;POINT(10 50)') RETURNING ogc_fid",
        (awkward,),
    )[0]
    rows_sql("SELECT 1", cleanup=f"DELETE FROM base_floor WHERE ogc_fid = ANY(ARRAY{sorted(ids.values())})")  # noqa: S608
    rows_sql("SELECT 1", cleanup=f"DELETE FROM room_points WHERE ogc_fid = {room}")  # noqa: S608
    expected = {
        key: rows_sql(
            "SELECT ST_AsGeoJSON(CASE WHEN ST_Dimension(wkb_geometry) = 2 THEN ST_ForcePolygonCCW(wkb_geometry)"
            " ELSE wkb_geometry END, 7)::json FROM base_floor WHERE ogc_fid = %s",
            (ident,),
        )[0][0]
        for key, ident in ids.items()
    }
    pages = listed(client, "/api/base-floor/?level=8&limit=2")
    stream = streamed(client, "/api/base-floor/?level=8")
    ogc = listed(client, "/ogc/collections/base-floor/items?limit=1000")
    for key, ident in ids.items():
        name, building, _ = rows[key]
        features = [
            pages[ident],
            stream[ident],
            ogc[ident],
            strict(client, f"/ogc/collections/base-floor/items/{ident}")[1],
        ]
        for feature in features:
            assert feature["properties"]["name"] == name and feature["properties"]["building"] == building, key
            assert feature["geometry"] == expected[key], (key, feature["geometry"])
    assert _signed_area(pages[ids["plain"]]["geometry"]["coordinates"][0]) > 0  # drawn counter-clockwise
    assert pages[ids["line"]]["geometry"]["coordinates"] == [[10.0001, 50.0], [10.0, 50.0]]  # as drawn
    rooms = listed(client, "/api/rooms/?level=8")
    for feature in (rooms[room], strict(client, f"/ogc/collections/rooms/items/{room}")[1]):
        assert feature["properties"]["name"] == awkward and feature["properties"]["category"] == "a\\b"
    listed_ids = {tuple(row) for row in rows_sql("SELECT tbl, id FROM indoor_unusable_rows")}
    assert {("base_floor", ids["awkward"]), ("room_points", room)} <= listed_ids  # written through the guards
    assert (
        not {("base_floor", ids["plain"]), ("base_floor", ids["line"])} & listed_ids
    )  # the fast path, clockwise or not
    checked = run_cli(rows_url, "check-graph")
    assert "Traceback" not in checked.stderr, checked.stderr
    for line in checked.stdout.splitlines():
        if "not plain but not listed" in line:
            assert not line.startswith("BREACH"), line
