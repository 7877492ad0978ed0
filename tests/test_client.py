"""The map page at `/` in headless Chromium against gunicorn, on the demo campus: rooms and the
floor plan arrive over EventSource and are drawn, levels switch, routes from a link match the
API, the accessible toggle avoids stairs, errors say so in the page, the page's CSP holds."""

from __future__ import annotations

import math
import time

import pytest
from playwright.sync_api import expect

from scripts.services import ROOT_DIR, NginxServer
from tests.browser import screenshot, watch
from tests.cutting_proxy import CuttingProxy
from tests.http import get, get_json


@pytest.fixture
def page(new_page):
    return new_page()


def wait_loaded(page, level):
    """Until the rooms stream and `level`'s floor plan stream have both ended."""
    page.wait_for_function(
        "([level]) => window.indoor && indoor.stats.roomsEnded && indoor.stats.floorEnded[level] && indoor.settled()",
        arg=[level],
    )


def wait_labels(page):
    """Until the shown level's room labels are on screen (placed, then faded in)."""
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: [indoor.layer('room-label')]}).length > 0")
    page.wait_for_timeout(600)  # MapLibre fades placed symbols in over 300 ms


def worker_ids(page, kind: str, expected: list | None = None) -> list:
    """The ids of the features the page's map holds in its `kind` sources (`rooms@0`, `rooms@1`...).

    With `expected`: read again (up to 15 s) until they are those, since MapLibre hands an update
    to its worker after the page did; what is read last is returned, for the caller to compare.
    """
    deadline = time.monotonic() + 15
    while True:
        ids = _worker_ids(page, kind)
        if expected is None or sorted(ids) == sorted(expected) or time.monotonic() > deadline:
            return ids
        page.wait_for_timeout(100)


def _worker_ids(page, kind: str) -> list:
    return page.evaluate(
        """async (kind) => {
            const ids = [];
            for (const id of Object.keys(indoor.map.getStyle().sources)) {
                if (id.startsWith(kind + '@')) ids.push(...(await indoor.map.getSource(id).getData()).features.map((f) => f.id));
            }
            return ids;
        }""",
        kind,
    )


def drawn_levels(page) -> set:
    """Levels of the floor-plan features rendered on screen right now (any level's layers)."""
    return set(
        page.evaluate(
            """() => {
                const layers = indoor.map.getStyle().layers.map((l) => l.id).filter((id) => id.startsWith('floor-'));
                return indoor.map.queryRenderedFeatures({layers}).map((f) => Number(f.properties.level));
            }"""
        )
    )


def event_streams(seen, path: str) -> list:
    return [r for r in seen.requests if r.resource_type == "eventsource" and r.url.split("?")[0].endswith(path)]


def test_page_streams_every_room_and_draws_the_level_switched_to(serve, sql, page):
    server = serve()
    seen = watch(page)
    response = page.goto(server.base_url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    wait_loaded(page, 0)

    room_ids = sorted(r[0] for r in sql("SELECT ogc_fid FROM room_points"))
    assert page.evaluate("indoor.stats.rooms") == len(room_ids)
    assert sorted(worker_ids(page, "rooms", room_ids)) == room_ids, "every room once, as the page's map holds them"
    rooms_streams = event_streams(seen, "/api/rooms/")
    assert len(rooms_streams) == 1 and rooms_streams[0].headers["accept"] == "text/event-stream"

    floor_0 = sorted(r[0] for r in sql("SELECT ogc_fid FROM base_floor WHERE level = 0"))
    assert page.evaluate("indoor.stats.floor[0]") == len(floor_0)
    page.wait_for_function("() => indoor.stats.firstDrawnMs[0] > 0")
    assert drawn_levels(page) == {0}
    expect(page.locator("#progress .text")).to_contain_text(f"Rooms {len(room_ids):,} / {len(room_ids):,}")
    screenshot(page, "client-level-0")

    page.locator("#levels button[data-level='1']").click()
    wait_loaded(page, 1)
    assert page.url.endswith("/?level=1")
    floor_1 = sorted(r[0] for r in sql("SELECT ogc_fid FROM base_floor WHERE level = 1"))
    assert page.evaluate("indoor.stats.floor[1]") == len(floor_1)
    assert sorted(worker_ids(page, "floor", floor_0 + floor_1)) == sorted(floor_0 + floor_1), (
        "both levels, nothing twice"
    )
    page.wait_for_function("() => indoor.stats.firstDrawnMs[1] > 0")
    page.wait_for_timeout(300)
    assert drawn_levels(page) == {1}
    wait_labels(page)
    assert len(event_streams(seen, "/api/base-floor/")) == 2
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "1")
    screenshot(page, "client-level-1")

    page.go_back()
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "0")
    page.wait_for_timeout(300)
    assert drawn_levels(page) == {0}
    assert len(event_streams(seen, "/api/base-floor/")) == 2, "a level already drawn is not streamed again"
    assert seen.problems(page) == []


def rooms_on(sql, level: int, n: int = 1, corner: str = "south-west") -> list[int]:
    """`n` rooms of `level` nearest its south-west (where the demo has stairs) or north-east corner."""
    sign = 1 if corner == "south-west" else -1
    rows = sql(
        "SELECT ogc_fid FROM room_points WHERE level = %s"
        " ORDER BY %s * (ST_X(wkb_geometry) + ST_Y(wkb_geometry)), ogc_fid LIMIT %s",
        (level, sign, n),
    )
    return [r[0] for r in rows]


def shown_route(page) -> dict:
    """The legs the page's map holds for the route, and what its panel says."""
    return page.evaluate(
        """async () => ({
            legs: (await indoor.map.getSource('route').getData()).features.map((f) => f.properties),
            distance: Number(document.querySelector('#route-distance').dataset.distanceM),
            text: document.querySelector('#route-distance').textContent,
        })"""
    )


def metres_text(distance_m: float) -> str:
    return f"{math.floor(distance_m + 0.5)} m"


def test_route_link_draws_the_route_across_levels_with_the_api_distance(serve, sql, page):
    server = serve()
    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 2, corner="north-east")[0]
    status, api = get_json(f"{server.base_url}/api/route/?from={start}&to={end}")
    assert status == 200 and set(api["route"]["levels"]) >= {0, 2}
    seen = watch(page)
    page.goto(f"{server.base_url}/?from={start}&to={end}")
    expect(page.locator("#route-summary")).to_be_visible()
    shown = shown_route(page)
    assert shown["distance"] == api["route"]["distance_m"]
    assert shown["text"] == metres_text(api["route"]["distance_m"])
    assert shown["legs"] == [leg["properties"] for leg in api["features"]], "every leg, in travel order"
    names = dict(sql("SELECT ogc_fid, text FROM room_points WHERE ogc_fid IN (%s, %s)", (start, end)))
    expect(page.locator("#from-search input")).to_have_value(names[start])
    expect(page.locator("#to-search input")).to_have_value(names[end])
    instructions = page.locator("#route-instructions li")
    expect(instructions).to_have_count(len(api["route"]["instructions"]))
    vertical = [leg for leg in api["features"] if leg["properties"].get("to_level") is not None]
    assert vertical, "a route between levels changes level"
    # A marker where the route leaves a level and one where it arrives on the next.
    assert page.locator(".route-marker.change").count() == 2 * len(vertical)

    # The start level is shown: its part prominent, the rest of the route faint.
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "0")
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: ['route-current']}).length > 0")
    current = page.evaluate(
        "() => indoor.map.queryRenderedFeatures({layers: ['route-current']}).map((f) => f.properties.level)"
    )
    assert set(current) == {0} or set(current) <= {0, vertical[0]["properties"]["level"]}
    wait_loaded(page, 0)
    page.wait_for_timeout(500)  # the labels of the last batch
    screenshot(page, "client-route")

    # Selecting the last instruction ("Arrive at ...") shows its level.
    instructions.last.locator("button").click()
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "2")
    assert "level=2" in page.url
    wait_loaded(page, 2)
    wait_labels(page)
    screenshot(page, "client-route-level-2")
    assert seen.problems(page) == []


def test_accessible_toggle_replaces_a_route_that_took_the_stairs(serve, sql, page):
    server = serve()
    pairs = [(a, b) for a in rooms_on(sql, 0, 3) for b in rooms_on(sql, 1, 3)]
    walking = None
    for start, end in pairs:
        status, body = get_json(f"{server.base_url}/api/route/?from={start}&to={end}")
        if status == 200 and any(leg["properties"]["kind"] == "stairs" for leg in body["features"]):
            walking = body
            break
    assert walking, "the demo's south-west rooms of levels 0 and 1 are joined by stairs"
    status, accessible = get_json(f"{server.base_url}/api/route/?from={start}&to={end}&profile=accessible")
    assert status == 200

    seen = watch(page)
    page.goto(f"{server.base_url}/?from={start}&to={end}")
    expect(page.locator("#route-summary")).to_be_visible()
    assert any(leg["kind"] == "stairs" for leg in shown_route(page)["legs"])
    expect(page.locator("#accessible")).not_to_be_checked()

    page.locator("#accessible").check()
    page.wait_for_function("() => indoor.stats.routes === 2")
    assert page.url.endswith("profile=accessible")
    shown = shown_route(page)
    assert not {leg["kind"] for leg in shown["legs"]} & {"stairs", "escalator"}
    assert shown["distance"] == accessible["route"]["distance_m"] != walking["route"]["distance_m"]
    assert page.locator(".route-marker.change").count() >= 2
    wait_labels(page)
    screenshot(page, "client-route-accessible")

    page.go_back()
    page.wait_for_function("() => indoor.stats.routes === 3")
    expect(page.locator("#accessible")).not_to_be_checked()
    assert shown_route(page)["distance"] == walking["route"]["distance_m"]
    assert seen.problems(page) == []


def test_unreachable_destination_says_so_in_the_page(serve, sql, page):
    server = serve()
    start = rooms_on(sql, 0)[0]
    nowhere = "13.3690,52.5250,9"  # a level without a walkable vertex
    status, body = get_json(f"{server.base_url}/api/route/?from={start}&to={nowhere}")
    assert status == 422 and body["error"]["code"] == "no_route"
    seen = watch(page)
    page.goto(f"{server.base_url}/?from={start}&to={nowhere}")
    message = page.locator("#route-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("no route")
    expect(page.locator("#route-summary")).to_be_hidden()
    wait_labels(page)  # the screenshot shows the map as people see it, labels included
    screenshot(page, "client-no-route")
    assert seen.problems(page, allow_http=(422,)) == []
    assert [status for status, _ in seen.http_errors] == [422]


def test_a_lost_stream_shows_a_banner_and_resumes_without_losing_or_repeating_a_room(serve, sql, page):
    server = serve(SSE_BATCH_SIZE=20, SSE_RETRY_MS=300)
    proxy = CuttingProxy(server.port, prefix=b"GET /api/rooms/ ", cut_after=12_000)
    try:
        seen = watch(page)
        page.goto(proxy.base_url + "/")
        wait_loaded(page, 0)
    finally:
        proxy.stop()
    # The first request was cut, the second (the browser's own retry) refused. More plain requests
    # can come from the page streaming its rooms again from the start, as it does on a `reload`
    # from the change events (events missed); 4 were seen once under CI load, cause not confirmed.
    # What matters is below: the page resumed from its last event, and holds every room once.
    assert proxy.matched >= 2, f"the stream was cut, then its resume refused: {proxy.seen}"
    room_ids = sorted(r[0] for r in sql("SELECT ogc_fid FROM room_points"))
    assert page.evaluate("() => indoor.stats.rooms") == len(room_ids)
    assert sorted(worker_ids(page, "rooms", room_ids)) == room_ids, "every room once after the drop"
    assert page.evaluate("() => indoor.stats.troubles") >= 1, "the page noticed the loss"
    expect(page.locator("#banner")).to_be_hidden()
    resumed = [r.url for r in event_streams(seen, "/api/rooms/") if "lastEventId=" in r.url]
    assert resumed, "the page reopened the stream from its last event"
    # Nothing else went wrong: the only errors are the rooms stream's cut and refusal (and the
    # page's probe of the resume, dropped once it answered 200).
    expected = ("/api/rooms/", "ERR_INCOMPLETE_CHUNKED_ENCODING")
    assert [p for p in seen.problems(page, allow_http=(503,)) if not any(e in p for e in expected)] == []


def test_the_page_has_its_own_csp_and_the_api_keeps_its_own(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["worker-src"] == policy["connect-src"] == "'self'"
    module = client.get("/assets/main.mjs")
    assert module.status_code == 200 and module.mimetype == "text/javascript"
    api = client.get("/api/levels/")
    assert api.headers["Content-Security-Policy"].startswith("default-src 'none'; frame-ancestors 'none'")
    missing = client.get("/assets/nothing-here.js")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    escape = client.get("/assets/../__init__.py")
    assert escape.status_code == 404


def test_search_flies_to_a_room_on_its_level_and_a_click_starts_directions(serve, sql, page):
    server = serve()
    (room_id, name, level), *_ = sql(
        "SELECT ogc_fid, text, level::int FROM room_points WHERE level = 2 ORDER BY ogc_fid LIMIT 1"
    )
    seen = watch(page)
    page.goto(server.base_url + "/")
    wait_loaded(page, 0)
    search = page.locator("#room-search input")
    search.fill(name)
    option = page.locator("#room-search li[role=option]").first
    expect(option).to_contain_text(name)
    option.click()
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", str(level))
    assert page.url.endswith(f"/?room={room_id}")
    popup = page.locator(".room-popup")
    expect(popup).to_contain_text(name)
    page.wait_for_function(
        "([id]) => indoor.map.queryRenderedFeatures({layers: ['room-selected']}).some((f) => f.id === id)",
        arg=[room_id],
    )
    screenshot(page, "client-room")

    popup.get_by_role("button", name="Directions to here").click()
    expect(page.locator("#to-search input")).to_have_value(name)
    assert page.url.endswith(f"/?to={room_id}")
    # The start: a click on a room of the map.
    other = page.wait_for_function(
        """([id]) => {
            // A room in the open part of the map (not under the panel or the level switcher).
            for (const f of indoor.map.queryRenderedFeatures({layers: [indoor.layer('room-point')]})) {
                const p = indoor.map.project(f.geometry.coordinates);
                if (f.id !== id && p.x > 400 && p.x < 1150 && p.y > 80 && p.y < 700) return {id: f.id, x: p.x, y: p.y};
            }
            return null;  // not drawn yet
        }""",
        arg=[room_id],
    ).json_value()
    page.mouse.click(other["x"], other["y"])
    page.locator(".room-popup").get_by_role("button", name="Directions from here").click()
    expect(page.locator("#route-summary")).to_be_visible()
    assert f"from={other['id']}" in page.url and f"to={room_id}" in page.url
    assert seen.problems(page) == []


def test_the_page_works_behind_nginx(serve, sql, workdir, page):
    app = serve(TRUSTED_PROXY_COUNT=1)
    nginx = NginxServer((ROOT_DIR / "deploy" / "nginx.conf").read_text(), app.port, workdir).start()
    try:
        seen = watch(page)
        response = page.goto(nginx.base_url + "/?level=1")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        wait_loaded(page, 1)
        assert page.evaluate("() => indoor.stats.rooms") == sql("SELECT count(*) FROM room_points")[0][0]
        assert (
            page.evaluate("() => indoor.stats.floor[1]") == sql("SELECT count(*) FROM base_floor WHERE level = 1")[0][0]
        )
        assert seen.problems(page) == []
        status, _, _ = get(nginx.base_url + "/metrics")
        assert status == 404
    finally:
        nginx.stop()


def test_without_a_built_client_the_page_says_how_to_build_it(client, monkeypatch, tmp_path):
    from indoor.blueprints import client as page_blueprint

    monkeypatch.setattr(page_blueprint, "CLIENT_DIST", tmp_path)  # an empty dist/
    response = client.get("/")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert "make client" in response.get_json()["error"]["message"]
