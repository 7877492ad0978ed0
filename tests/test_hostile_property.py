"""Property: whatever rows another tool writes into the four tables (empty, invalid, projected,
other-SRID, SRID-0, 3D and NaN geometries; curves, surfaces, TINs, triangles and nested
collections; NULL, NaN, infinite and extreme numbers, levels beyond a double; NULL and duplicate
keys; long and odd Unicode labels), every endpoint answers strict JSON (RFC 8259: no
NaN/Infinity) in JSON and SSE mode, and vector tiles decode, never a 5xx; check-graph exits 1
exactly when a row is one it should report.

Each generated value knows whether it is usable (by construction, not by asking the service),
so the expected exit code of check-graph comes from the test, independently of the SQL it checks.
Runs in a database of its own whose tables are as loose as a script could make them: no primary
keys, nullable keys, levels and costs, and untyped geometry columns.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import mapbox_vector_tile
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indoor import create_app
from tests import strict_json
from tests.conftest import TEST_RATE_LIMITS, run_cli
from tests.test_hostile_data import LAT, LEVEL, LON, A, B, C
from tests.test_hostile_rows import keyless_schema

FIRST_VERTEX = 800_000  # generated vertices: 800000.. (the baseline network is 900001..900003)
FIRST_EDGE = 800_000


@dataclass(frozen=True)
class Value:
    """An SQL expression and whether the service can use it (check-graph must not report it)."""

    sql: str
    usable: bool


# -- geometries -----------------------------------------------------------------------------------

lon = st.floats(min_value=10.0, max_value=10.01)
lat = st.floats(min_value=50.0, max_value=50.01)


@st.composite
def good_point(draw):
    return f"ST_MakePoint({draw(lon)!r}, {draw(lat)!r})"


def srid(expression: str) -> str:
    return f"ST_SetSRID({expression}, 4326)"


BAD_COORDINATE = st.sampled_from(["'NaN'", "'Infinity'", "'-Infinity'", "1e300", "-1e300", "1113194.9", "6446275.8"])


@st.composite
def bad_point(draw):
    """No usable position: empty, a NaN/infinite coordinate, or outside lon/lat (projected)."""
    kind = draw(st.sampled_from(["empty", "coordinate"]))
    if kind == "empty":
        return "'SRID=4326;POINT EMPTY'::geometry"
    x, y = draw(lon), draw(lat)
    if draw(st.booleans()):
        return srid(f"ST_MakePoint({draw(BAD_COORDINATE)}, {y!r})")
    return srid(f"ST_MakePoint({x!r}, {draw(BAD_COORDINATE)})")


def point_value(loose: bool):
    """A point for a typed Point column (vertices) or, `loose`, an untyped one (rooms)."""
    good = good_point().map(lambda p: Value(srid(p), True))
    options = [good, bad_point().map(lambda g: Value(g, False))]
    if loose:
        options += [
            # 3D and measured points are usable positions; another SRID or a polygon is not a room's.
            st.builds(
                lambda x, y, z: Value(f"ST_SetSRID(ST_MakePoint({x!r}, {y!r}, {z!r}), 4326)", True),
                lon,
                lat,
                st.floats(-1e6, 1e6),
            ),
            st.builds(lambda x, y: Value(f"ST_SetSRID(ST_MakePointM({x!r}, {y!r}, 1), 4326)", True), lon, lat),
            st.builds(lambda x, y: Value(f"ST_SetSRID(ST_MakePoint({x!r}, {y!r}), 3857)", False), lon, lat),
            st.builds(
                lambda x, y: Value(f"ST_Buffer(ST_SetSRID(ST_MakePoint({x!r}, {y!r}), 4326), 0.0001)", False), lon, lat
            ),
        ]
    return st.one_of(*options)


def line_value(loose: bool):
    # Two distinct points (two equal ones are the degenerate case below).
    good = (
        st.tuples(good_point(), good_point())
        .filter(lambda ends: ends[0] != ends[1])
        .map(lambda ends: Value(srid(f"ST_MakeLine({ends[0]}, {ends[1]})"), True))
    )
    # An elevator is drawn as a line of two equal points: usable for an edge; in the floor plan
    # it is an invalid geometry (OGC), which check-graph reports there.
    degenerate = good_point().map(lambda p: Value(srid(f"ST_MakeLine({p}, {p})"), not loose))
    empty = st.just(Value("'SRID=4326;LINESTRING EMPTY'::geometry", False))
    broken = st.builds(
        lambda a, bad: Value(f"ST_MakeLine({srid(a)}, {bad})", False),
        good_point(),
        bad_point().filter(lambda g: "EMPTY" not in g),
    )
    options = [good, degenerate, empty, broken]
    if loose:
        # The floor plan must also be valid: a bow-tie polygon is served but reported.
        options += [
            st.builds(
                lambda x, y: Value(f"ST_Buffer(ST_SetSRID(ST_MakePoint({x!r}, {y!r}), 4326), 0.0002)", True), lon, lat
            ),
            st.just(Value("'SRID=4326;POLYGON((10 50, 10.001 50.001, 10.001 50, 10 50.001, 10 50))'::geometry", False)),
            st.just(Value("'SRID=4326;GEOMETRYCOLLECTION EMPTY'::geometry", False)),
            st.just(Value("'SRID=4326;CIRCULARSTRING(10 50, 10.001 50.001, 10.002 50)'::geometry", True)),
            st.just(Value("'SRID=4326;CURVEPOLYGON(CIRCULARSTRING(10 50, 10.001 50.001, 10 50))'::geometry", True)),
            st.just(Value("'SRID=4326;POLYHEDRALSURFACE(((10 50, 10.001 50, 10 50.001, 10 50)))'::geometry", False)),
            st.sampled_from(UNDRAWABLE).map(lambda wkt: Value(f"'{wkt}'::geometry", False)),
            st.sampled_from(NON_FINITE_LINES).map(lambda g: Value(g, False)),
            st.just(
                Value(
                    "'SRID=4326;MULTISURFACE(CURVEPOLYGON(CIRCULARSTRING(10 50, 10.001 50.001, 10 50)))'::geometry",
                    True,
                )
            ),
            st.just(
                Value("'SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), LINESTRING(10 50, 10.001 50))'::geometry", True)
            ),
            st.builds(lambda x, y: Value(f"ST_SetSRID(ST_MakePoint({x!r}, {y!r}), 3857)", False), lon, lat),
            st.builds(
                lambda x, y: Value(f"'SRID=4326;LINESTRING Z ({x!r} {y!r} 1, {x + 0.0001!r} {y!r} 2)'::geometry", True),
                lon,
                lat,
            ),
        ]
    return st.one_of(*options)


# Types GeoJSON and MVT have none for, nested collections and SRID 0: drawn as null, reported.
UNDRAWABLE = [
    "SRID=4326;TIN(((10 50, 10.001 50, 10 50.001, 10 50)))",
    "SRID=4326;TRIANGLE((10 50, 10.001 50, 10 50.001, 10 50))",
    "SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), POLYHEDRALSURFACE(((10 50, 10.001 50, 10 50.001, 10 50))))",
    "SRID=4326;GEOMETRYCOLLECTION(TIN(((10 50, 10.001 50, 10 50.001, 10 50))))",
    "SRID=4326;GEOMETRYCOLLECTION(POINT(10 50), GEOMETRYCOLLECTION(POINT(10.001 50)))",
    "LINESTRING(10 50, 10.001 50)",
]
# Non-finite coordinates (WKT cannot spell them): the first one sets the box, a later one does not.
NON_FINITE_LINES = [
    "ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint('-Infinity', 50)), 4326)",
    "ST_SetSRID(ST_MakeLine(ARRAY[ST_MakePoint(10, 50), ST_MakePoint('NaN', 50), ST_MakePoint(10.002, 50)]), 4326)",
]


# -- numbers and labels ---------------------------------------------------------------------------

GOOD_LEVEL = st.one_of(st.integers(-3, 9), st.sampled_from([0.5, -0.5, 1000, -1000, 7])).map(
    lambda v: Value(repr(v), True)
)
BAD_LEVEL = st.sampled_from(["NULL", "'NaN'", "'Infinity'", "'-Infinity'", "1000.5", "1e30", "-1e300", "1e3000"]).map(
    lambda v: Value(v, False)
)
LEVELS = st.one_of(GOOD_LEVEL, BAD_LEVEL)

# Open costs are never below the geodesic length (the area is about 1 km across), up to the
# largest double; closed ones negative; NULL, NaN and the infinities are reported.
GOOD_COST = st.one_of(
    st.floats(min_value=1e4, max_value=1.7976931348623157e308),
    st.floats(max_value=-1e-300, min_value=-1.7976931348623157e308),
    st.sampled_from([1e4, 1.7976931348623157e308, -1.0, -1e308]),
).map(lambda v: Value(repr(v), True))
BAD_COST = st.sampled_from(["NULL", "'NaN'", "'Infinity'", "'-Infinity'"]).map(lambda v: Value(v, False))
COSTS = st.one_of(GOOD_COST, GOOD_COST, BAD_COST)

# Any text PostgreSQL can store (no NUL; surrogates are not UTF-8), short or long.
LABEL = st.one_of(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40),
    st.text(
        st.sampled_from("\u202e\u2028\u2029\"\\'<>&\u0661\uff11\U0001f6bb\u00e9\u0301 "), min_size=200, max_size=3000
    ),
)
KINDS = st.sampled_from(["corridor", "door", "stairs", "escalator", "elevator", "ramp", "\u2603"])


@dataclass(frozen=True)
class Key:
    """A key as written: a value, NULL, or one another row already has (a table without keys)."""

    value: int | None
    usable: bool


def key(fresh: int, taken: list[int]):
    """Mostly `fresh`; sometimes NULL or a duplicate of a `taken` one."""
    return st.one_of(
        st.just(Key(fresh, True)),
        st.just(Key(fresh, True)),
        st.just(Key(fresh, True)),
        st.just(Key(None, False)),
        st.sampled_from(taken).map(lambda v: Key(v, False)),
    )


@st.composite
def hostile_rows(draw):
    vertex_ids = list(range(FIRST_VERTEX, FIRST_VERTEX + draw(st.integers(0, 4))))
    vertices = [(draw(key(ident, [A, B, C])), draw(LEVELS), draw(point_value(loose=False))) for ident in vertex_ids]
    endpoints = st.sampled_from([A, B, C, *vertex_ids])
    edges = [
        (
            draw(key(FIRST_EDGE + i, [900001, 900002])),
            draw(st.one_of(endpoints, endpoints, endpoints, st.none())),
            draw(st.one_of(endpoints, endpoints, endpoints, st.none())),
            draw(COSTS),
            draw(COSTS),
            draw(st.one_of(KINDS, KINDS, KINDS, st.none())),
            draw(line_value(loose=False)),
        )
        for i in range(draw(st.integers(0, 5)))
    ]
    # Rooms: a fresh id from the sequence, NULL, or the baseline room's id (-1: taken).
    rooms = [
        (
            draw(LABEL),
            draw(LEVELS),
            draw(st.one_of(st.none(), LABEL)),
            draw(point_value(loose=True)),
            draw(st.sampled_from([Key(0, True), Key(0, True), Key(0, True), Key(None, False), Key(-1, False)])),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    floor = [
        (
            draw(st.one_of(st.none(), LABEL)),
            draw(st.one_of(st.none(), LABEL)),
            draw(LEVELS),
            draw(line_value(loose=True)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return vertices, edges, rooms, floor


def reportable(rows) -> bool:
    """Whether check-graph must exit 1: some generated value is not usable."""
    vertices, edges, rooms, floor = rows
    values = [v for ident, level, geometry in vertices for v in (ident, level, geometry)]
    values += [v for ident, *_, cost, reverse, _, geometry in edges for v in (ident, cost, reverse, geometry)]
    values += [Value("", all(end is not None for end in (s, t, kind))) for _, s, t, _, _, kind, _ in edges]
    values += [v for _, level, _, geometry, ident in rooms for v in (level, geometry, ident)]
    values += [v for _, _, level, geometry in floor for v in (level, geometry)]
    return not all(v.usable for v in values)


# -- the database and the app ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def property_app(pg_cluster, redis_url):
    url = pg_cluster.create_database(f"hostile_property_{os.getpid()}")
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        keyless_schema(cur)
        # The baseline: A - B - C on level 7 (as in test_hostile_data) and a room on C.
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
               VALUES ('R', 7, 'kiosk', ST_SetSRID(ST_MakePoint(10.0002, 50.0), 4326));
               INSERT INTO base_floor (layer, level, wkb_geometry)
               VALUES ('wall', 7, ST_SetSRID(ST_MakeLine(ST_MakePoint(10, 50), ST_MakePoint(10.0002, 50)), 4326))""",
            {"a": A, "b": B, "c": C},
        )
        cur.execute("SELECT max(ogc_fid) FROM room_points")
        (baseline_room,) = cur.fetchone()
        cur.execute("SELECT max(ogc_fid) FROM base_floor")
        (baseline_floor,) = cur.fetchone()
    conn.autocommit = True
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "WARNING",
            "ROUTE_OVERLAY_MAX_SHARE": "1000",  # routes go through the overlay whenever it is current
            "ROUTE_OVERLAY_SETTLE_S": "3600",  # and only the test builds it
            **TEST_RATE_LIMITS,
        }
    )
    yield app, conn, (baseline_room, baseline_floor)
    conn.close()
    app.extensions["indoor.db"].close()


def insert(cur, into: str, values: str, params: tuple, returning: str = "") -> None:
    cur.execute(f"INSERT INTO {into} VALUES {values} {returning}", params)  # noqa: S608 - the test's own SQL


def write(cur, rows, baseline_room: int) -> list[int]:
    """Insert the rows as a script would; the generated SQL expressions are the test's own."""
    vertices, edges, rooms, floor = rows
    for ident, level, geometry in vertices:
        values = f"(%s, {level.sql}, {geometry.sql})"
        insert(cur, "nav_edges_work_vertices_pgr (id, level, the_geom)", values, (ident.value,))
    for ident, source, target, cost, reverse, kind, geometry in edges:
        insert(
            cur,
            "nav_edges_final (id, source, target, cost, reverse_cost, kind, wkb_geometry)",
            f"(%s, %s, %s, {cost.sql}, {reverse.sql}, %s, {geometry.sql})",
            (ident.value, source, target, kind),
        )
    room_ids = []
    for text, level, building, geometry, ident in rooms:
        # A fresh id from the sequence (0), NULL, or the baseline room's (-1).
        chosen = {0: "nextval('room_points_ogc_fid_seq')", None: "NULL", -1: str(baseline_room)}[ident.value]
        values = f"({chosen}, %s, {level.sql}, %s, {geometry.sql})"
        insert(
            cur,
            "room_points (ogc_fid, text, level, building, wkb_geometry)",
            values,
            (text, building),
            "RETURNING ogc_fid",
        )
        if ident.value == 0:
            room_ids.append(cur.fetchone()[0])
    for layer, name, level, geometry in floor:
        values = f"(%s, %s, {level.sql}, {geometry.sql})"
        insert(cur, "base_floor (layer, name, level, wkb_geometry)", values, (layer, name))
    return room_ids


def clear(cur, baseline: tuple[int, int]) -> None:
    """Back to the baseline: the generated rows go (those with NULL keys, and the later rows of a
    duplicated baseline key: the baseline rows were written first)."""
    cur.execute(
        "DELETE FROM nav_edges_final WHERE id < 900000 OR id IS NULL OR source IS NULL OR target IS NULL"
        " OR kind IS NULL"
    )
    cur.execute("DELETE FROM nav_edges_work_vertices_pgr WHERE id < 900000 OR id IS NULL")
    for table, ident in (("nav_edges_final", "id"), ("nav_edges_work_vertices_pgr", "id"), ("room_points", "ogc_fid")):
        cur.execute(f"DELETE FROM {table} a USING {table} b WHERE a.{ident} = b.{ident} AND a.ctid > b.ctid")  # noqa: S608
    cur.execute("DELETE FROM room_points WHERE ogc_fid > %s OR ogc_fid IS NULL", (baseline[0],))
    cur.execute("DELETE FROM base_floor WHERE ogc_fid > %s", (baseline[1],))


def answer(client, path, stream=False):
    """GET `path`; assert no 5xx and strict JSON (every event's data, for a stream)."""
    headers = {"Accept": "text/event-stream"} if stream else {}
    response = client.get(path, headers=headers)
    assert response.status_code < 500, (path, response.status_code, response.data[:500])
    body = response.get_data()
    if response.status_code == 204:
        return response, None
    if stream and response.status_code == 200:
        return response, strict_json.sse_data(body)
    return response, strict_json.loads(body)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(rows=hostile_rows(), with_overlay=st.booleans())
def test_every_endpoint_answers_strict_json_whatever_another_tool_wrote(property_app, rows, with_overlay):
    app, conn, baseline = property_app
    baseline_room = baseline[0]
    client = app.test_client()
    with conn.cursor() as cur:
        clear(cur, baseline)
        room_ids = write(cur, rows, baseline_room)
    try:
        if with_overlay:
            built = app.test_cli_runner().invoke(args=["indoor", "build-overlay"])
            assert built.exit_code == 0, built.output
        answer(client, "/api/health/ready")
        for path in ("/api/levels/", "/api/levels/?building=x"):
            response, body = answer(client, path)
            assert response.status_code == 200
            assert all(-1000 <= entry["level"] <= 1000 for entry in body["levels"])
        for listing in ("/api/rooms/", "/api/base-floor/"):
            path = listing + "?limit=2"
            for _ in range(5):  # the pages, by their links
                response, body = answer(client, path)
                assert response.status_code == 200
                if not body.get("links"):
                    break
                path = body["links"][0]["href"]
            for query in ("", "?level=7", "?bbox=9.99,49.99,10.02,50.02"):
                response, events = answer(client, listing + query, stream=True)
                assert response.status_code == 200 and events[-1].keys() == {"count"}
        for collection in ("rooms", "base-floor", "edges", "vertices"):
            path = f"/ogc/collections/{collection}/items?limit=3"
            for _ in range(8):  # the pages, by their links
                response, body = answer(client, path)
                assert response.status_code == 200
                nexts = [link["href"] for link in body["links"] if link["rel"] == "next"]
                if not nexts:
                    break
                path = nexts[0]
            response, body = answer(client, f"/ogc/collections/{collection}/items?bbox=9.99,49.99,10.02,50.02")
            assert response.status_code == 200
        for ident in [FIRST_VERTEX, FIRST_EDGE, A]:
            for collection in ("edges", "vertices"):
                response, body = answer(client, f"/ogc/collections/{collection}/items/{ident}")
                assert response.status_code in (200, 404)
        for z in (16, 18, 20):
            n = 2**z
            x = int((LON + 180) / 360 * n)
            y = int((1 - math.asinh(math.tan(math.radians(LAT))) / math.pi) / 2 * n)
            response = client.get(f"/api/tiles/{z}/{x}/{y}.mvt")
            assert response.status_code in (200, 204), (z, response.status_code, response.data[:300])
            if response.data:
                mapbox_vector_tile.decode(response.data)
        response, body = answer(client, "/api/categories/")
        assert response.status_code == 200
        response, body = answer(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to=category:kiosk")
        assert response.status_code in (200, 404, 422), body
        for ident in room_ids:
            response, feature = answer(client, f"/api/rooms/{ident}")
            assert response.status_code == 200 and feature["id"] == ident
            for path in (
                f"/api/route/?from={ident}&to={baseline_room}",
                f"/api/route/?from={LON},{LAT},{LEVEL}&to={ident}&profile=accessible",
            ):
                response, body = answer(client, path)
                assert response.status_code in (200, 404, 422), body
        for _, level, geometry in rows[0]:
            if level.usable and geometry.usable:
                response, body = answer(client, f"/api/route/?from=10.005,50.005,{level.sql}&to={baseline_room}")
                assert response.status_code in (200, 422), body
        response, body = answer(client, f"/api/route/?from={LON},{LAT},{LEVEL}&to={baseline_room}")
        assert response.status_code == 200, body
        checked = app.test_cli_runner().invoke(args=["indoor", "check-graph", "--json"])
        assert checked.exception is None or isinstance(checked.exception, SystemExit), (
            checked.exception
        )  # a report, not a crash
        report = strict_json.loads(checked.output)
        # The data checks breach exactly when a generated value is unusable; the exit status is 1
        # exactly when the report has an error (those breaches, or rooms the network cannot reach).
        breaches = sum(check["count"] for check in report["checks"] if check["breach"])
        assert (breaches > 0) == reportable(rows), report["checks"]
        assert checked.exit_code == (1 if report["errors"] else 0), checked.output
    finally:
        with conn.cursor() as cur:
            clear(cur, baseline)
