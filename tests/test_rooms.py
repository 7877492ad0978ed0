"""Levels and rooms as GeoJSON pages: shapes, filters, keyset paging, cursors, bad input."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest

from indoor import create_app
from indoor.queries import rooms
from tests.conftest import run_cli
from tests.feature_data import BIG_LEVEL, BIG_LEVEL_ROOMS, query


def get_json(client, url, **kwargs):
    response = client.get(url, **kwargs)
    return response.status_code, json.loads(response.data)


def walk_pages(client, url):
    """Follow `next` links from `url`; -> list of pages (parsed bodies)."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.data
        assert response.headers["Content-Type"] == "application/geo+json"
        body = json.loads(response.data)
        pages.append(body)
        nexts = [link["href"] for link in body.get("links", []) if link["rel"] == "next"]
        assert len(nexts) <= 1
        url = nexts[0] if nexts else None
    return pages


# -- levels -------------------------------------------------------------------------------


def test_levels_lists_each_level_with_its_room_count_and_extent(client, sql):
    response = client.get("/api/levels/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    levels = response.get_json()["levels"]
    expected = sql(
        """SELECT level, count(*) FILTER (WHERE r), min(x0), min(y0), max(x1), max(y1) FROM (
             SELECT level, true AS r, ST_XMin(wkb_geometry) x0, ST_YMin(wkb_geometry) y0,
                    ST_XMax(wkb_geometry) x1, ST_YMax(wkb_geometry) y1 FROM room_points
             UNION ALL
             SELECT level, false, ST_XMin(wkb_geometry), ST_YMin(wkb_geometry),
                    ST_XMax(wkb_geometry), ST_YMax(wkb_geometry) FROM base_floor) t
           GROUP BY level ORDER BY level"""
    )
    assert [entry["level"] for entry in levels] == [int(row[0]) for row in expected]
    assert all(isinstance(entry["level"], int) for entry in levels), "integral levels are JSON integers"
    for entry, row in zip(levels, expected, strict=True):
        assert entry["rooms"] == row[1]
        assert entry["bbox"] == pytest.approx([float(v) for v in row[2:]], abs=2e-7)


def test_levels_answer_follows_every_edit_of_rooms_floor_plan_and_level_names(fresh_database, redis_url):
    """The levels answer is kept between requests (it reads both tables whole), and never outlives
    an edit: a room on a new level, that level's name, the floor plan, each seen at once."""
    url = fresh_database("levels")
    assert run_cli(url, "init-db", "--demo-if-empty").returncode == 0
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "TESTING": True, "LOG_LEVEL": "WARNING"})
    client = app.test_client()

    def levels(path="/api/levels/"):
        response = client.get(path)
        assert response.status_code == 200
        return {entry["level"]: entry for entry in response.get_json()["levels"]}

    def run(statement, params=None):
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
        conn.close()

    first = levels()
    assert 9 not in first and levels() == first
    building = levels("/api/levels/?building=A")
    run(
        "INSERT INTO room_points (ogc_fid, text, level, building, wkb_geometry)"
        " VALUES (900001, 'Roof terrace', 9, 'A', ST_SetSRID(ST_MakePoint(13.3695, 52.5252), 4326))"
    )
    roof = levels()[9]
    assert roof["rooms"] == 1 and roof["name"] is None
    assert roof["bbox"] == pytest.approx([13.3695, 52.5252, 13.3695, 52.5252])
    assert (
        levels("/api/levels/?building=A")[9]["rooms"] == 1
        and len(levels("/api/levels/?building=A")) == len(building) + 1
    )
    run("INSERT INTO indoor_level_names (building, level, name) VALUES ('', 9, 'Roof')")
    assert levels()[9]["name"] == "Roof"
    run("UPDATE indoor_level_names SET name = 'Rooftop' WHERE level = 9")
    assert levels()[9]["name"] == "Rooftop"
    run(
        "INSERT INTO base_floor (ogc_fid, layer, name, level, building, wkb_geometry) VALUES (900002, 'room',"
        " 'Roof terrace', 9, 'A', ST_SetSRID(ST_MakeEnvelope(13.3694, 52.5251, 13.3697, 52.5253), 4326))"
    )
    assert levels()[9]["bbox"] == pytest.approx([13.3694, 52.5251, 13.3697, 52.5253])
    run("DELETE FROM room_points WHERE ogc_fid = 900001")
    assert levels()[9]["rooms"] == 0
    run("DELETE FROM base_floor WHERE ogc_fid = 900002")
    assert levels() == first
    # A table whose version trigger is gone (dropped and made again by another tool): no edit
    # bumps a version, and the answer is still never stale.
    run("ALTER TABLE room_points DISABLE TRIGGER indoor_rooms_version")
    assert levels() == first
    top = max(first)
    run("DELETE FROM room_points WHERE level = %s", (top,))
    assert levels()[top]["rooms"] == 0, "the floor plan still draws the level, with no room left"
    app.extensions["indoor.db"].close()


def test_levels_render_numeric_levels_as_numbers_and_filter_by_building(fclient, features_url):
    status, body = get_json(fclient, "/api/levels")
    assert status == 200
    # Stored as -1, 0.0, 0.50, 7, 8: integral levels are JSON integers, others plain decimals.
    levels = [entry["level"] for entry in body["levels"]]
    assert [(type(level), level) for level in levels] == [(int, -1), (int, 0), (float, 0.5), (int, 7), (int, 8)]
    by_level = {entry["level"]: entry["rooms"] for entry in body["levels"]}
    assert (
        by_level[BIG_LEVEL]
        == BIG_LEVEL_ROOMS
        == query(features_url, "SELECT count(*) FROM room_points WHERE level = 7")[0][0]
    )
    status, body = get_json(fclient, "/api/levels/?building=North")
    north = dict(query(features_url, "SELECT level, count(*) FROM room_points WHERE building = 'North' GROUP BY 1"))
    assert {entry["level"]: entry["rooms"] for entry in body["levels"]} == {float(k): v for k, v in north.items()}


def test_categories_list_those_present_most_rooms_first_and_each_routes(client, sql):
    response = client.get("/api/categories/")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    categories = response.get_json()["categories"]
    expected = sql(
        "SELECT lower(category), count(*) FROM room_points WHERE category IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    assert [(c["name"], c["rooms"]) for c in categories] == [tuple(row) for row in expected]
    assert len(categories) >= 3, "the demo has toilets, shops, services and lounges"
    (start,) = sql("SELECT min(ogc_fid) FROM room_points WHERE level = 0")[0]
    for category in categories:
        route = client.get(f"/api/route/?from={start}&to=category:{category['name']}")
        assert route.status_code in (200, 422), (category, route.get_json())
        assert route.status_code == 200 or route.get_json()["error"]["code"] == "no_route"
    building, rooms_in_it = sql(
        "SELECT building, count(*) FROM room_points WHERE category IS NOT NULL AND building IS NOT NULL"
        " GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )[0]
    in_building = client.get("/api/categories/", query_string={"building": building}).get_json()["categories"]
    assert sum(c["rooms"] for c in in_building) == rooms_in_it
    assert client.get("/api/categories/?building=nowhere").get_json() == {"categories": []}


# -- one room -----------------------------------------------------------------------------


def test_one_room_is_a_geojson_feature(client, sql):
    room_id, label, level, building, category, lon, lat = sql(
        "SELECT ogc_fid, text, level, building, category, ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points"
        " ORDER BY ogc_fid DESC LIMIT 1"
    )[0]
    response = client.get(f"/api/rooms/{room_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/geo+json"
    assert response.get_json() == {
        "type": "Feature",
        "id": room_id,
        "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
        "properties": {"name": label, "level": int(level), "building": building, "category": category},
    }


def test_unknown_room_is_404_and_a_malformed_id_is_400(client, sql):
    missing = sql("SELECT coalesce(max(ogc_fid), 0) + 1000 FROM room_points")[0][0]
    for path, status, code in [
        (f"/api/rooms/{missing}", 404, "not_found"),
        ("/api/rooms/999999999999999999", 404, "not_found"),
        ("/api/rooms/-5", 404, "not_found"),
        ("/api/rooms/abc", 400, "bad_request"),
        ("/api/rooms/1.5", 400, "bad_request"),
        ("/api/rooms/99999999999999999999999", 400, "bad_request"),
        ("/api/rooms/%FF", 400, "bad_request"),
        ("/api/rooms/1%00", 400, "bad_request"),
    ]:
        response = client.get(path)
        assert response.status_code == status, path
        assert response.get_json()["error"]["code"] == code


def test_coordinates_are_lon_lat_with_at_most_7_decimals(fclient, features_url):
    room_id = query(features_url, "SELECT ogc_fid FROM room_points WHERE text = '100% Café_1'")[0][0]
    raw = fclient.get(f"/api/rooms/{room_id}").data
    assert b'"coordinates":[13.1234568,52.9876543]' in raw
    assert b"crs" not in raw


# -- listing, paging ----------------------------------------------------------------------


def test_paging_covers_a_level_of_2345_rooms_exactly_once(fclient, features_url):
    expected = [row[0] for row in query(features_url, "SELECT ogc_fid FROM room_points WHERE level = 7 ORDER BY 1")]
    assert len(expected) == BIG_LEVEL_ROOMS
    pages = walk_pages(fclient, f"/api/rooms/?level={BIG_LEVEL}&limit=100")
    ids = [feature["id"] for page in pages for feature in page["features"]]
    assert ids == expected  # every room once, in id order
    assert len(pages) == 24
    assert [page["numberReturned"] for page in pages] == [100] * 23 + [45]
    assert all(len(page["features"]) == page["numberReturned"] for page in pages)
    assert "links" not in pages[-1]
    # The cursor is keyset (ids), not an offset: a room deleted before the page is read shifts nothing.
    assert all(f["properties"]["level"] == 7 for page in pages for f in page["features"])


def test_next_link_keeps_the_filters_and_continues_after_the_last_feature(fclient):
    status, body = get_json(fclient, "/api/rooms/?level=7&building=North&limit=10")
    assert status == 200 and body["numberReturned"] == 10
    (link,) = body["links"]
    assert link["rel"] == "next" and link["type"] == "application/geo+json"
    query_args = parse_qs(urlsplit(link["href"]).query)
    assert query_args["level"] == ["7"] and query_args["building"] == ["North"] and query_args["limit"] == ["10"]
    status, following = get_json(fclient, link["href"])
    assert following["features"][0]["id"] > body["features"][-1]["id"]


def test_limit_defaults_to_100_and_is_capped_at_1000(fclient):
    assert get_json(fclient, "/api/rooms/")[1]["numberReturned"] == 100
    for limit in (1000, 1001, 5000, 2**40):
        status, body = get_json(fclient, f"/api/rooms/?limit={limit}")
        assert status == 200 and body["numberReturned"] == 1000, limit


def test_filters_level_building_bbox_and_q(fclient, features_url):
    def ids(url):
        return [f["id"] for page in walk_pages(fclient, url) for f in page["features"]]

    def expected(statement, params=None):
        return [row[0] for row in query(features_url, statement, params)]

    by_id = "SELECT ogc_fid FROM room_points WHERE "
    assert ids("/api/rooms/?level=8&building=South&limit=1000") == expected(
        by_id + "level = 8 AND building = 'South' ORDER BY 1"
    )
    assert ids("/api/rooms/?level=0.5&limit=1000") == expected(by_id + "level = 0.5 ORDER BY 1")
    assert ids("/api/rooms/?level=0.50&limit=1000") == expected(by_id + "level = 0.5 ORDER BY 1")
    assert ids("/api/rooms/?level=-1") == expected(by_id + "level = -1 ORDER BY 1")
    box = (13.3801, 52.5301, 13.3803, 52.5302)
    inside = ids("/api/rooms/?bbox={},{},{},{}&limit=1000".format(*box))
    assert inside and inside == expected(
        by_id + "ST_X(wkb_geometry) BETWEEN %s AND %s AND ST_Y(wkb_geometry) BETWEEN %s AND %s ORDER BY 1",
        (box[0], box[2], box[1], box[3]),
    )
    labels = {r[0]: r[1] for r in query(features_url, "SELECT ogc_fid, text FROM room_points")}
    for q in ("café", "CAFÉ", "%", "_", "r7-0001", "1000"):
        found = ids(f"/api/rooms/?q={q.replace('%', '%25')}&limit=1000")
        assert found == sorted(i for i, label in labels.items() if q.lower() in label.lower()), q
    assert ids("/api/rooms/?q=%25") == expected(by_id + "text = '100% Café_1'")
    assert ids("/api/rooms/?q=no-such-room") == []


def test_cursor_from_another_listing_or_tampered_is_400(fclient):
    _, first = get_json(fclient, "/api/rooms/?level=7&limit=10")
    cursor = parse_qs(urlsplit(first["links"][0]["href"]).query)["cursor"][0]
    assert fclient.get(f"/api/rooms/?level=7&limit=10&cursor={cursor}").status_code == 200
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    for url in [
        f"/api/rooms/?level=8&cursor={cursor}",  # other filter
        f"/api/rooms/?cursor={cursor}",  # no filter
        f"/api/rooms/?level=7&q=R&cursor={cursor}",
        f"/api/base-floor/?level=7&cursor={cursor}",  # other resource
        f"/api/rooms/?level=7&cursor={flipped}",
        f"/api/rooms/?level=7&cursor={cursor[:-1]}",
        f"/api/rooms/?level=7&cursor={cursor}A",
        "/api/rooms/?level=7&cursor=%27%3B%20DROP%20TABLE%20room_points%3B--",
        "/api/rooms/?level=7&cursor=" + "A" * 5000,
    ]:
        status, body = get_json(fclient, url)
        assert status == 400, url
        assert "cursor" in body["error"]["message"]


@pytest.mark.parametrize(
    "query_string, parameter",
    [
        ("level=abc", "level"),
        ("level=1e999", "level"),
        ("level=NaN", "level"),
        ("level=" + "1" * 300, "level"),
        ("level=1&level=2", "level"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=1,2,3,4,5", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=10,50,5,55", "bbox"),  # minlon > maxlon
        ("bbox=5,55,10,50", "bbox"),  # minlat > maxlat
        ("bbox=-200,0,0,10", "bbox"),
        ("bbox=0,-95,10,10", "bbox"),
        ("bbox=0,0,inf,10", "bbox"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("q=" + "x" * 101, "q"),
        ("q=a%00b", "q"),
        ("q=%FF%FE", "q"),
        ("building=%C3%28", "building"),
        ("building=" + "b" * 300, "building"),
        ("cursor=%00", "cursor"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, query_string, parameter):
    response = client.get("/api/rooms/?" + query_string)
    assert response.status_code == 400, response.data
    body = response.get_json()
    assert body["error"]["code"] == "bad_request"
    assert parameter in body["error"]["message"]
    assert "SELECT" not in body["error"]["message"] and "Traceback" not in response.get_data(as_text=True)


def test_accept_negotiation(client):
    assert client.get("/api/rooms/?limit=1", headers={"Accept": "*/*"}).headers["Content-Type"] == (
        "application/geo+json"
    )
    assert client.get("/api/rooms/?limit=1", headers={"Accept": "application/json"}).status_code == 200
    response = client.get("/api/rooms/?limit=1", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert response.get_json()["error"]["code"] == "not_acceptable"
    assert client.get("/api/rooms/?limit=1").headers["Vary"] == "Accept"


def test_database_down_is_503_json_in_both_modes(redis_url):
    from scripts.services import free_port

    app = create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
            "PG_CONNECT_TIMEOUT": 1,
            "LOG_FORMAT": "text",
        }
    )
    for headers in ({}, {"Accept": "text/event-stream"}):
        response = app.test_client().get("/api/rooms/?level=0", headers=headers)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "unavailable"


# -- room search on 100,000 rooms ----------------------------------------------------------


def test_room_search_on_100000_rooms_is_served_by_an_index(fresh_database):
    url = fresh_database("search")
    assert run_cli(url, "init-db").returncode == 0
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO room_points (text, level, building, wkb_geometry)
               SELECT chr(65 + g % 26) || (g % 7) || '.' || lpad(g::text, 6, '0'), g % 7, 'B' || (g % 50),
                      ST_SetSRID(ST_MakePoint(13.3 + (g % 400) * 0.00001, 52.5 + (g / 400) * 0.00001), 4326)
                 FROM generate_series(1, 100000) g"""
        )
        cur.execute("ANALYZE room_points")
        plans = {}
        # Substrings of 3+ characters (trigrams); a shorter one cannot use a trigram index and is
        # only checked for correctness.
        for q, level in [("012345", None), ("c3.0456", None), ("b4.00", None), ("0099", 3), ("77", None)]:
            filters = rooms.RoomFilters(q=q, level=level)
            cur.execute("EXPLAIN " + rooms.ROOMS_PAGE, rooms.page_params(filters, None, 100))
            plans[q] = "\n".join(row[0] for row in cur.fetchall())
            if len(q) >= 3:
                # (The catalog look-ups of queries/validity.py scan pg_index and pg_trigger once.)
                assert "Seq Scan on room_points" not in plans[q], plans[q]
            # The same statement answers correctly.
            with conn.cursor() as page_cur:
                page = rooms.rooms_page(page_cur, filters, None, 1000)
            cur.execute(
                "SELECT count(*) FROM room_points WHERE strpos(lower(text), %s) > 0 AND (%s::int IS NULL OR level = %s)",
                (q, level, level),
            )
            assert page.count == min(1000, cur.fetchone()[0])
        # A rare substring is looked up in the trigram index, not by walking the ids.
        assert "room_points_text_trgm_idx" in plans["012345"], plans["012345"]
    conn.close()
