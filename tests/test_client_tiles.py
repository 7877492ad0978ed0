"""The map page on a large building draws its levels from the vector tiles, in headless Chromium
against gunicorn on the demo campus. "Large" is a page parameter (`?tiles=N`: levels of N rooms
or more), lowered here below the demo's levels so that the test campus stays small; the page's
own threshold (tiles.mjs) keeps the demo streamed, which tests/test_client.py checks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.browser import screenshot, watch
from tests.http import get_json
from tests.test_client import event_streams, shown_route, wait_labels
from tests.test_client_a11y import axe_violations


def wait_tiles(page, level):
    """Until `level` is drawn from its tiles and every tile in view is in."""
    page.wait_for_function(
        "([level]) => window.indoor && indoor.stats.floorEnded[level] && indoor.stats.firstDrawnMs[level] > 0",
        arg=[level],
    )


def rendered(page, kind: str) -> list[dict]:
    """The shown level's features drawn by its `kind` layer right now: id, level, name, screen point."""
    return page.evaluate(
        """(kind) => indoor.map.queryRenderedFeatures({layers: [indoor.layer(kind)]}).map((f) => ({
            id: f.id, level: Number(f.properties.level), name: f.properties.name ?? null,
            point: f.geometry.type === 'Point' ? indoor.map.project(f.geometry.coordinates) : null,
        }))""",
        kind,
    )


def open_point(features: list[dict]) -> dict:
    """A drawn room in the open part of the map (not under the panel or the level switcher)."""
    return next(f for f in features if f["point"] and 420 < f["point"]["x"] < 1150 and 90 < f["point"]["y"] < 700)


def test_a_large_building_is_drawn_from_tiles_and_works_as_when_streamed(serve, sql, new_page):
    server = serve(workers=2)
    per_level = dict(sql("SELECT level::int, count(*) FROM room_points GROUP BY level"))
    rooms = {fid: (name, int(level)) for fid, name, level in sql("SELECT ogc_fid, text, level FROM room_points")}

    # The demo as it is: every level streamed, no tile asked for.
    page = new_page()
    seen = watch(page)
    page.goto(server.base_url + "/")
    page.wait_for_function("() => window.indoor && indoor.stats.roomsEnded && indoor.stats.floorEnded[0]")
    assert page.evaluate("() => indoor.tiled") == [] and page.evaluate("() => indoor.map.getMinZoom()") < 16
    assert not [r for r in seen.requests if "/api/tiles/" in r.url]
    assert len(event_streams(seen, "/api/rooms/")) == 1

    # Its levels counted as large: drawn from tiles, nothing streamed.
    page = new_page()
    seen = watch(page)
    page.goto(f"{server.base_url}/?tiles={min(per_level.values())}")
    wait_tiles(page, 0)
    assert sorted(page.evaluate("() => indoor.tiled")) == sorted(per_level)
    assert page.evaluate("() => indoor.map.getMinZoom()") == 16, "no zooming out to where no tile exists"
    assert event_streams(seen, "/api/base-floor/") == [] and event_streams(seen, "/api/rooms/") == []
    tiles = [r.url for r in seen.requests if "/api/tiles/" in r.url]
    assert tiles and all("level=0&layers=rooms%2Cfloor" in url for url in tiles), "level 0's tiles only"
    outlines = rendered(page, "floor-room")
    assert outlines and {f["level"] for f in outlines} == {0}
    wait_labels(page)
    points = rendered(page, "room-point")
    assert points and all(rooms[f["id"]] == (f["name"], 0) for f in points), "level 0's rooms, as in the database"
    assert {f["level"] for f in rendered(page, "room-label")} == {0}
    expect(page.locator("#progress .text")).to_contain_text(f"Rooms {len(rooms):,} / {len(rooms):,}")
    screenshot(page, "client-tiles-level-0")

    # A level switch shows the other level's rooms, from its own tiles.
    page.locator("#levels button[data-level='1']").click()
    wait_tiles(page, 1)
    assert page.url.endswith("/?level=1")
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: [indoor.layer('room-point')]}).length")
    points = rendered(page, "room-point")
    assert points and all(rooms[f["id"]] == (f["name"], 1) for f in points)
    assert {f["level"] for f in rendered(page, "floor-room")} == {1}
    assert any("level=1&layers=" in r.url for r in seen.requests if "/api/tiles/" in r.url)

    # A click on a room: its popup, highlighted, and the start of a route.
    start = open_point(points)
    page.mouse.click(start["point"]["x"], start["point"]["y"])
    popup = page.locator(".room-popup")
    expect(popup).to_contain_text(rooms[start["id"]][0])
    assert page.url.endswith(f"/?room={start['id']}")
    page.wait_for_function(
        "([id]) => indoor.map.queryRenderedFeatures({layers: ['room-selected']}).some((f) => f.id === id)",
        arg=[start["id"]],
    )
    popup.get_by_role("button", name="Directions from here").click()

    # The destination: a search on level 2, then the route drawn as the API gives it.
    # (a name no other room's contains, so that the first suggestion is that room)
    names = [name for name, _ in rooms.values()]
    end = min(
        fid
        for fid, (name, level) in rooms.items()
        if level == 2 and sum(name.lower() in other.lower() for other in names) == 1
    )
    search = page.locator("#to-search input")
    search.fill(rooms[end][0])
    option = page.locator("#to-search li[role=option]").first
    expect(option).to_contain_text(rooms[end][0])
    option.click()
    expect(page.locator("#route-summary")).to_be_visible()
    status, api = get_json(f"{server.base_url}/api/route/?from={start['id']}&to={end}")
    assert status == 200
    shown = shown_route(page)
    assert shown["distance"] == api["route"]["distance_m"]
    assert shown["legs"] == [leg["properties"] for leg in api["features"]]
    expect(page.locator("#route-instructions li")).to_have_count(len(api["route"]["instructions"]))
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: ['route-current']}).length > 0")

    # The last step shows level 2, drawn from its tiles, and a click inside a room's outline
    # (away from its point) picks that room.
    page.locator("#route-instructions li").last.locator("button").click()
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "2")
    wait_tiles(page, 2)
    wait_labels(page)
    screenshot(page, "client-tiles-route")
    assert axe_violations(page) == [], "a route over tiled levels"
    # A point inside an outline, beside its room's point and clear of every drawn room and label
    # (a label hangs below its point, and may reach into the room beneath).
    outline = page.evaluate(
        """() => {
            const rooms = [indoor.layer('room-label'), indoor.layer('room-point')];
            for (const f of indoor.map.queryRenderedFeatures({layers: [indoor.layer('floor-room')]})) {
                if (!f.properties.name) continue;
                const ring = f.geometry.coordinates[0].map((c) => indoor.map.project(c));
                const xs = ring.map((p) => p.x), ys = ring.map((p) => p.y);
                const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
                if (x1 - x0 < 30 || y1 - y0 < 30) continue;
                for (const [fx, fy] of [[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]]) {
                    const [x, y] = [x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)];
                    if (x < 420 || x > 1150 || y < 90 || y > 700) continue;
                    if (indoor.map.queryRenderedFeatures([[x - 8, y - 8], [x + 8, y + 8]], {layers: rooms}).length) continue;
                    const under = indoor.map.queryRenderedFeatures([x, y], {layers: [indoor.layer('floor-room')]});
                    if (under.length === 1 && under[0].properties.name === f.properties.name) return {name: f.properties.name, x, y};
                }
            }
            return null;
        }"""
    )
    assert outline, "a room outline drawn large enough to click beside its point"
    page.mouse.click(outline["x"], outline["y"])
    expect(page.locator(".room-popup")).to_contain_text(outline["name"])
    chosen = int(parse_qs(urlsplit(page.url).query)["room"][0])
    assert rooms[chosen] == (outline["name"], 2)
    assert seen.problems(page) == []
