"""Rows another tool wrote (QGIS, ogr2ogr, scripts): empty or NaN geometries, NULL/NaN/Infinity
levels and costs. Every endpoint leaves such a row out or describes it honestly, in strict JSON,
never with a 5xx; routes count a non-finite cost as closed; check-graph reports every kind."""

from __future__ import annotations

import os

import psycopg2
import pytest

from indoor import create_app
from tests import strict_json
from tests.conftest import TEST_RATE_LIMITS, autocommit_sql, run_cli

# A small network of its own, far from the demo campus, on level 7:
#   A (10.0000, 50.0) --10 m-- B (10.0001, 50.0) --x-- C (10.0002, 50.0)
# B-C's cost is what a test writes there; a room R sits on C.
LON, LAT, LEVEL = 10.0, 50.0, 7
A, B, C = 900001, 900002, 900003
AB, BC = 900001, 900002


def loose_schema(cur) -> None:
    """What another tool's tables may allow that init-db's do not: NULL levels and costs."""
    for table, column in (
        ("room_points", "level"),
        ("base_floor", "level"),
        ("nav_edges_work_vertices_pgr", "level"),
        ("nav_edges_final", "cost"),
        ("nav_edges_final", "reverse_cost"),
    ):
        cur.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")  # noqa: S608 - fixed names


@pytest.fixture(scope="module")
def hostile_url(pg_cluster):
    url = pg_cluster.create_database(f"hostile_data_{os.getpid()}")
    result = run_cli(url, "init-db", "--demo-if-empty")
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        loose_schema(cur)
        cur.execute(
            """INSERT INTO nav_edges_work_vertices_pgr (id, level, the_geom) VALUES
               (%(a)s, 7, ST_SetSRID(ST_MakePoint(10.0, 50.0), 4326)),
               (%(b)s, 7, ST_SetSRID(ST_MakePoint(10.0001, 50.0), 4326)),
               (%(c)s, 7, ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326))""",
            {"a": A, "b": B, "c": C},
        )
        cur.execute(
            """INSERT INTO nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)
               SELECT e.id, e.s, e.t, 10, 10, 'corridor', ST_MakeLine(a.the_geom, b.the_geom)
                 FROM (VALUES (%(ab)s::bigint, %(a)s::bigint, %(b)s::bigint),
                              (%(bc)s, %(b)s, %(c)s)) e(id, s, t)
                 JOIN nav_edges_work_vertices_pgr a ON a.id = e.s
                 JOIN nav_edges_work_vertices_pgr b ON b.id = e.t""",
            {"a": A, "b": B, "c": C, "ab": AB, "bc": BC},
        )
    conn.close()
    return url


@pytest.fixture
def hostile_sql(hostile_url):
    with autocommit_sql(hostile_url) as run:
        yield run


@pytest.fixture
def hostile_client(hostile_url, redis_url):
    apps = []

    def make(**settings):
        app = create_app(
            {"DATABASE_URL": hostile_url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS, **settings}
        )
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["indoor.db"].close()


@pytest.fixture
def room(hostile_sql):
    """Insert rooms with `room(geometry_sql, level_sql)`; they are deleted after the test."""
    made = []

    def insert(geometry: str, level: str = "7", name: str = "hostile") -> int:
        (ident,) = hostile_sql(
            f"INSERT INTO room_points (text, level, wkb_geometry) VALUES (%s, {level}, {geometry}) RETURNING ogc_fid",  # noqa: S608 - test literals
            (name,),
        )[0]
        made.append(ident)
        return ident

    yield insert
    if made:
        hostile_sql("DELETE FROM room_points WHERE ogc_fid = ANY(%s)", (made,))


def get_strict(client, path, **kwargs):
    response = client.get(path, **kwargs)
    assert response.status_code < 500, (path, response.status_code, response.data[:300])
    return response, strict_json.loads(response.data) if response.data else None


def listed(client, path) -> dict:
    """Every feature of a listing, by id, walking the pages; strict JSON throughout."""
    features = {}
    while path:
        response, body = get_strict(client, path)
        assert response.status_code == 200, body
        features.update({f["id"]: f for f in body["features"]})
        links = body.get("links", [])
        path = links[0]["href"] if links else None
    return features


C_POINT = "ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326)"


def test_a_room_stored_as_point_empty_is_described_not_a_500(hostile_client, room):
    client = hostile_client()
    empty = room("'SRID=4326;POINT EMPTY'::geometry")
    located = room(C_POINT)
    response, body = get_strict(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to={empty}")
    assert response.status_code == 422 and body["error"]["code"] == "no_route"
    assert f"room {empty}" in body["error"]["message"] and "'to'" in body["error"]["message"]
    response, body = get_strict(client, f"/api/route/?from={empty}&to={located}")
    assert response.status_code == 422 and "'from'" in body["error"]["message"]
    # The room exists: it is served, with no geometry (not "coordinates": []).
    response, body = get_strict(client, f"/api/rooms/{empty}")
    assert response.status_code == 200 and body["geometry"] is None and body["properties"]["name"] == "hostile"
    features = listed(client, "/api/rooms/?level=7&limit=1")
    assert features[empty]["geometry"] is None
    assert features[located]["geometry"] == {"type": "Point", "coordinates": [10.0002, 50.0]}
    # Nor does a room with coordinates in another CRS labelled 4326, or NaN ones.
    projected = room("ST_SetSRID(ST_MakePoint(1113194.9, 6446275.8), 4326)")
    nan = room("ST_SetSRID(ST_MakePoint(10.0, 'NaN'), 4326)")
    for ident in (projected, nan):
        response, body = get_strict(client, f"/api/rooms/{ident}")
        assert response.status_code == 200 and body["geometry"] is None
        response, body = get_strict(client, f"/api/route/?from={located}&to={ident}")
        assert response.status_code == 422 and body["error"]["code"] == "no_route"


@pytest.mark.parametrize("cost", ["'Infinity'", "'NaN'", "NULL"])
@pytest.mark.parametrize("overlay", ["windows", "overlay"])
def test_a_non_finite_cost_is_a_closed_edge(hostile_client, hostile_url, hostile_sql, room, cost, overlay):
    """B-C closed by a cost of NaN, Infinity or NULL: the room on C is reached from B (the nearest
    vertex with an open edge), in finite metres; before, Infinity routed with "distance_m":
    Infinity, NaN snapped to C and answered 422, NULL was a 500."""
    hostile_sql(f"UPDATE nav_edges_final SET cost = {cost}, reverse_cost = {cost} WHERE id = %s", (BC,))  # noqa: S608
    try:
        settings = {"ROUTE_OVERLAY": "false"}
        if overlay == "overlay":
            built = run_cli(hostile_url, "build-overlay", "--force")
            assert built.returncode == 0, built.stderr
            settings = {"ROUTE_OVERLAY_MAX_SHARE": "1000"}  # used whatever its size
        client = hostile_client(**settings)
        target = room(C_POINT)
        response, body = get_strict(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to={target}")
        assert response.status_code == 200, body
        assert body["route"]["to"]["vertex"] == B
        # 10 m of edge plus the straight connector B -> C (about 7.2 m at this latitude).
        assert 16 < body["route"]["distance_m"] < 18.5
    finally:
        hostile_sql("UPDATE nav_edges_final SET cost = 10, reverse_cost = 10 WHERE id = %s", (BC,))


@pytest.mark.parametrize("level", ["'NaN'", "'Infinity'", "'-Infinity'", "NULL", "5000"])
def test_levels_that_are_not_numbers_are_not_served_as_levels(hostile_client, room, level):
    client = hostile_client()
    ident = room(C_POINT, level=level)
    response, body = get_strict(client, "/api/levels/")
    assert response.status_code == 200
    # The demo's levels only: the room's level is no level a client could ask for.
    assert [entry["level"] for entry in body["levels"]] == [0, 1, 2]
    response, feature = get_strict(client, f"/api/rooms/{ident}")
    assert response.status_code == 200
    assert feature["properties"]["level"] == (5000 if level == "5000" else None)
    assert ident in listed(client, "/api/rooms/?limit=1000")
    response, body = get_strict(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to={ident}")
    assert response.status_code == 422 and body["error"]["code"] == "no_route"


def test_vertices_with_a_bad_level_or_position_are_never_snapped_to(hostile_client, hostile_sql):
    client = hostile_client(ROUTE_OVERLAY="false")
    # C's level NaN: a point on level 7 at C snaps to B; C's position NaN: the same.
    for change in ("level = 'NaN'", "the_geom = ST_SetSRID(ST_MakePoint(10.0002, 'NaN'), 4326)"):
        hostile_sql(f"UPDATE nav_edges_work_vertices_pgr SET {change} WHERE id = %s", (C,))  # noqa: S608
        try:
            response, body = get_strict(client, f"/api/route/?from=10.0002,{LAT},{LEVEL}&to={LON},{LAT},{LEVEL}")
            assert response.status_code == 200, body
            assert body["route"]["from"]["vertex"] == B and body["route"]["to"]["vertex"] == A
        finally:
            hostile_sql(
                "UPDATE nav_edges_work_vertices_pgr SET level = 7,"
                " the_geom = ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326) WHERE id = %s",
                (C,),
            )


def test_an_edge_drawn_with_nan_is_drawn_straight(hostile_client, hostile_sql, room):
    client = hostile_client(ROUTE_OVERLAY="false")
    target = room(C_POINT)
    hostile_sql(
        "UPDATE nav_edges_final SET wkb_geometry = ST_SetSRID(ST_MakeLine(ST_MakePoint(10.0001, 50),"
        " ST_MakePoint('NaN', 50)), 4326) WHERE id = %s",
        (BC,),
    )
    try:
        response, body = get_strict(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to={target}")
        assert response.status_code == 200, body
        (leg,) = body["features"]
        assert leg["geometry"]["coordinates"] == [[10.0, 50.0], [10.0001, 50.0], [10.0002, 50.0]]
    finally:
        hostile_sql(
            "UPDATE nav_edges_final SET wkb_geometry = ST_SetSRID(ST_MakeLine(ST_MakePoint(10.0001, 50),"
            " ST_MakePoint(10.0002, 50)), 4326) WHERE id = %s",
            (BC,),
        )


def test_floor_plan_rows_with_empty_or_nan_geometries(hostile_client, hostile_sql):
    client = hostile_client()
    rows = hostile_sql(
        """INSERT INTO base_floor (layer, name, level, wkb_geometry) VALUES
           ('wall', 'empty', 7, 'SRID=4326;POLYGON EMPTY'),
           ('wall', 'nan', 7, ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(10, 'NaN')), 4326)),
           ('wall', 'inf', 'Infinity', ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint('Infinity', 50)), 4326)),
           ('wall', 'fine', 7, ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(10.0001, 50)), 4326)),
           ('wall', 'arc', 7, 'SRID=4326;CIRCULARSTRING(10 50, 10.0001 50.0001, 10.0002 50)'),
           ('room', 'curved', 7, 'SRID=4326;CURVEPOLYGON(CIRCULARSTRING(10 50, 10.0001 50.0001, 10 50))'),
           ('room', 'solid', 7, 'SRID=4326;POLYHEDRALSURFACE(((10 50, 10.0001 50, 10 50.0001, 10 50)))')
           RETURNING ogc_fid, name"""
    )
    ids = {name: ident for ident, name in rows}
    try:
        features = listed(client, "/api/base-floor/?limit=3")
        for name in ("empty", "nan", "inf", "solid"):
            assert features[ids[name]]["geometry"] is None, name
        # Arcs (QGIS draws them) are drawn as lines: ST_AsGeoJSON has no curves.
        assert features[ids["arc"]]["geometry"]["type"] == "LineString"
        assert len(features[ids["arc"]]["geometry"]["coordinates"]) > 3
        assert features[ids["curved"]]["geometry"]["type"] == "Polygon"
        assert sorted(features[ids["fine"]]["geometry"]["coordinates"]) == [[10.0, 50.0], [10.0001, 50.0]]
        assert features[ids["inf"]]["properties"]["level"] is None
        # bbox filters and the stream too
        listed(client, "/api/base-floor/?bbox=9,49,11,51")
        response = client.get("/api/base-floor/", headers={"Accept": "text/event-stream"})
        assert response.status_code == 200
        events = strict_json.sse_data(response.get_data())
        streamed = {f["id"] for e in events for f in e.get("features", [])}
        assert set(ids.values()) <= streamed
        response, body = get_strict(client, "/api/levels/")
        assert response.status_code == 200
        (seven,) = [entry for entry in body["levels"] if entry["level"] == 7]
        assert seven["bbox"][0] <= 10.0 <= seven["bbox"][2]
    finally:
        hostile_sql("DELETE FROM base_floor WHERE ogc_fid = ANY(%s)", (list(ids.values()),))


def test_check_graph_reports_every_kind_of_unusable_row(hostile_url, hostile_sql):
    clean = run_cli(hostile_url, "check-graph")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    statements = {
        "edge cost NULL, NaN or Infinity": "UPDATE nav_edges_final SET cost = 'NaN' WHERE id = 900001",
        "edge geometry empty or not lon/lat": "UPDATE nav_edges_final"
        " SET wkb_geometry = 'SRID=4326;LINESTRING EMPTY' WHERE id = 900002",
        "vertex level NULL, NaN, Infinity": "UPDATE nav_edges_work_vertices_pgr SET level = NULL WHERE id = 900001",
        "vertex position empty, invalid or not lon/lat": "UPDATE nav_edges_work_vertices_pgr"
        " SET the_geom = ST_SetSRID(ST_MakePoint(1113194.9, 6446275.8), 4326) WHERE id = 900002",
        "room that cannot be located": "INSERT INTO room_points (text, level, wkb_geometry)"
        " VALUES ('nowhere', 0, 'SRID=4326;POINT EMPTY')",
        "floor-plan geometry empty, invalid or not lon/lat": "INSERT INTO base_floor (layer, level, wkb_geometry)"
        " VALUES ('room', 0, 'SRID=4326;POLYGON((10 50, 10.001 50.001, 10.001 50, 10 50.001, 10 50))')",
        "floor-plan level NULL, NaN, Infinity": "INSERT INTO base_floor (layer, level, wkb_geometry)"
        " VALUES ('wall', 'Infinity', ST_SetSRID(ST_MakePoint(10, 50), 4326))",
    }
    before = {
        "edges": hostile_sql("SELECT id, cost, wkb_geometry FROM nav_edges_final WHERE id >= 900001"),
        "vertices": hostile_sql("SELECT id, level, the_geom FROM nav_edges_work_vertices_pgr WHERE id >= 900001"),
        "rooms": hostile_sql("SELECT max(ogc_fid) FROM room_points")[0][0],
        "floor": hostile_sql("SELECT max(ogc_fid) FROM base_floor")[0][0],
    }
    try:
        for statement in statements.values():
            hostile_sql(statement)
        broken = run_cli(hostile_url, "check-graph")
        assert broken.returncode == 1, broken.stdout + broken.stderr
        lines = broken.stdout.splitlines()
        for check in statements:
            (line,) = [line for line in lines if check in line]
            assert line.startswith("BREACH") and ": 1 e.g." in line, line
    finally:
        for ident, cost, geometry in before["edges"]:
            hostile_sql(
                "UPDATE nav_edges_final SET cost = %s, wkb_geometry = %s WHERE id = %s", (cost, geometry, ident)
            )
        for ident, level, geometry in before["vertices"]:
            hostile_sql(
                "UPDATE nav_edges_work_vertices_pgr SET level = %s, the_geom = %s WHERE id = %s",
                (level, geometry, ident),
            )
        hostile_sql("DELETE FROM room_points WHERE ogc_fid > %s", (before["rooms"],))
        hostile_sql("DELETE FROM base_floor WHERE ogc_fid > %s", (before["floor"],))
    assert run_cli(hostile_url, "check-graph").returncode == 0


def test_categories_another_tool_wrote_badly_are_not_offered(hostile_client, hostile_sql):
    """Only categories a route can be asked for: blank, NULL, padded, over-long or control-character
    names are left out; `Cafe` and `cafe` are one category (routes compare them case-insensitively)."""
    written = ["Cafe", "cafe", "cafe", "", "   ", " cafe", "x" * 65, "bad\x07bell", None]
    made = [
        hostile_sql(
            "INSERT INTO room_points (text, level, category, wkb_geometry)"
            " VALUES ('c', 7, %s, ST_SetSRID(ST_MakePoint(13.37, 52.52), 4326)) RETURNING ogc_fid",
            (category,),
        )[0][0]
        for category in written
    ]
    try:
        response, body = get_strict(hostile_client(), "/api/categories/")
        assert response.status_code == 200
        names = {c["name"]: c["rooms"] for c in body["categories"]}
        assert names["cafe"] == 3
        assert not {"", "   ", " cafe", "x" * 65, "bad\x07bell"} & set(names)
    finally:
        hostile_sql("DELETE FROM room_points WHERE ogc_fid = ANY(%s)", (made,))
