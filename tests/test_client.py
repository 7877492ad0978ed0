"""The map page at `/` in headless Chromium against gunicorn, on the demo campus: rooms and the
floor plan arrive over EventSource and are drawn, levels switch, routes from a link match the
API, the accessible toggle avoids stairs, errors say so in the page, the page's CSP holds."""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import VIEWPORT, launch, screenshot, watch
from tests.http import get, get_json

STREAM_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(STREAM_TIMEOUT_MS)
    yield page
    context.close()


def wait_loaded(page, level):
    """Until the rooms stream and `level`'s floor plan stream have both ended."""
    page.wait_for_function(
        "([level]) => window.indoor && indoor.stats.roomsEnded && indoor.stats.floorEnded[level] && indoor.settled()",
        arg=[level],
    )


def worker_ids(page, source: str) -> list:
    """The ids of the features MapLibre's worker holds for `source` (what it draws from)."""
    return page.evaluate(
        "async (s) => (await indoor.map.getSource(s).getData()).features.map((f) => f.id)",
        source,
    )


def drawn_levels(page) -> set:
    """Levels of the floor-plan features rendered on screen right now."""
    return set(
        page.evaluate(
            """() => indoor.map.queryRenderedFeatures({layers: ['floor-room', 'floor-wall', 'floor-corridor']})
                   .map((f) => Number(f.properties.level))"""
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
    assert sorted(worker_ids(page, "rooms")) == room_ids, "every room once, as the page's map holds them"
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
    assert sorted(worker_ids(page, "floor")) == sorted(floor_0 + floor_1), "both levels, nothing twice"
    page.wait_for_function("() => indoor.stats.firstDrawnMs[1] > 0")
    page.wait_for_timeout(300)
    assert drawn_levels(page) == {1}
    assert len(event_streams(seen, "/api/base-floor/")) == 2
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "1")
    screenshot(page, "client-level-1")

    page.go_back()
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "0")
    page.wait_for_timeout(300)
    assert drawn_levels(page) == {0}
    assert len(event_streams(seen, "/api/base-floor/")) == 2, "a level already drawn is not streamed again"
    assert seen.problems(page) == []
