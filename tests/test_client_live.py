"""The map page in a live building, in headless Chromium against gunicorn: a route on screen goes
through an elevator; the operator closes the elevator's room through the API with a token; the
page hears of it on /api/events/, asks for the route again within 2 s of hearing it, draws the new
one and says why (in the panel and through its live region); reopening brings the first route
back; the step-free route that has no other way says which closure stops it. On a database of its
own (the demo campus), so closures touch no other test."""

from __future__ import annotations

import itertools
import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser import screenshot, watch
from tests.conftest import autocommit_sql, run_cli
from tests.http import get_json, send_json
from tests.test_client import shown_route, wait_loaded
from tests.test_client_a11y import axe_violations

# The page asks for the route again no sooner than this after the event (live.mjs REPLAN_AFTER_MS: a
# worker trusts the versions it read for ROUTE_VERSION_MAX_AGE_S, so a sooner answer could be stale).
# How soon after the commit the new route is shown (issue 20: within 2 s) is a timing, measured by
# `make bench` (row page_replan), not here: on a loaded machine the page's timer fires late.
REPLAN_AFTER_S = 0.6
_names = itertools.count()


@pytest.fixture(scope="module")
def live_url(pg_cluster):
    url = pg_cluster.create_database(f"client_live_{os.getpid()}_{next(_names)}")
    result = run_cli(url, "init-db", "--demo-if-empty")
    assert result.returncode == 0, result.stderr
    return url


@pytest.fixture(scope="module")
def token(live_url):
    result = run_cli(live_url, "token", "create", "--name", "operator", "--scope", "closures:write")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def server(serve, served_url, live_url):
    yield serve(DATABASE_URL=served_url(live_url))
    with autocommit_sql(live_url) as sql:  # a test that failed half-way leaves nothing closed
        sql("UPDATE indoor_closures SET deleted_at = now(), deleted_by = 'test' WHERE deleted_at IS NULL")


def call(server, token, method: str, path: str, body=None) -> tuple[int, dict | None]:
    """A write as an operator makes it (curl in the README): bearer token, JSON body."""
    status, _, answer = send_json(server.base_url + path, body, token, method=method, timeout=10)
    return status, answer


def elevator_route(server, live_url, profile: str = "walking") -> tuple[int, int, int, str, dict]:
    """Two rooms of levels 0 and 2 whose route takes an elevator, and that elevator's room on the
    level the route boards it -> (from, to, elevator room id, its name, the route)."""
    with autocommit_sql(live_url) as sql:
        low = [r[0] for r in sql("SELECT ogc_fid FROM room_points WHERE level = 0 AND category IS NULL ORDER BY 1")]
        high = [r[0] for r in sql("SELECT ogc_fid FROM room_points WHERE level = 2 AND category IS NULL ORDER BY 1")]
        for start, end in itertools.product(low[::5], high[::5]):
            status, body = get_json(f"{server.base_url}/api/route/?from={start}&to={end}&profile={profile}")
            if status != 200:
                continue
            lifts = [
                step for step in body["route"]["instructions"] if step.get("connector", {}).get("kind") == "elevator"
            ]
            if lifts:
                name, level = lifts[0]["connector"]["name"], lifts[0]["level"]
                rows = sql(
                    "SELECT ogc_fid FROM room_points WHERE category = 'elevator' AND text = %s AND level = %s",
                    (name, level),
                )
                assert rows, f"the elevator {name} the route names is a room of level {level}"
                return start, end, rows[0][0], name, body
    raise AssertionError("the demo campus has routes from level 0 to 2 through its elevator")


def ends_in(minutes: int) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


def clock(at: datetime) -> str:
    """How the page writes a time of today in English (its browser runs in UTC here)."""
    return at.strftime("%I:%M")


def plain(text: str) -> str:
    return re.sub(r"[\u202f\u00a0]", " ", text)


def open_route(new_page, server, start, end, profile="walking"):
    page = new_page(timezone_id="UTC")
    seen = watch(page)
    query = f"from={start}&to={end}" + ("&profile=accessible" if profile == "accessible" else "")
    page.goto(f"{server.base_url}/?{query}")
    page.wait_for_function("() => window.indoor && indoor.ready")
    page.wait_for_function("() => indoor.live.connected")  # listening before anything is closed
    expect(page.locator("#route-summary")).to_be_visible(timeout=30_000)
    wait_loaded(page, page.evaluate("() => indoor.view.level"))  # someone looking at the page
    return page, seen


def replanned_after(page, committed_at: float, stat: str, before: int) -> None:
    """Waits until the page's `stat` counter went past `before`, by itself (no reload), and checks
    the order of what it did: the route was asked for only after the page's deliberate wait (never a possibly stale answer), and shown after that.
    `committed_at` (taken once the API answered, so the event may come first) is for the message."""
    page.wait_for_function(
        f"() => indoor.live.{stat} > {before} && indoor.live.lastShownAt >= indoor.live.lastReplanAt", timeout=20_000
    )
    event_at, asked_at, shown_at = (
        t / 1000
        for t in page.evaluate("() => [indoor.live.lastEventAt, indoor.live.lastReplanAt, indoor.live.lastShownAt]")
    )
    why = (
        f"the event reached the page {event_at - committed_at:.2f} s after the commit, the page asked "
        f"{asked_at - event_at:.2f} s later, the answer was shown {shown_at - asked_at:.2f} s after that"
    )
    assert asked_at - event_at >= REPLAN_AFTER_S - 0.01, why
    assert shown_at >= asked_at, why


def test_a_closed_elevator_re_plans_the_route_on_screen_and_says_why(server, live_url, token, new_page):
    start, end, lift, lift_name, before = elevator_route(server, live_url)
    page, seen = open_route(new_page, server, start, end)
    expect(page.locator("#route-summary")).to_be_visible()
    assert "elevator" in {leg["kind"] for leg in shown_route(page)["legs"]}
    expect(page.locator("#route-notice")).to_be_hidden()
    notices = page.evaluate("() => indoor.live.notices")

    until = ends_in(30)
    status, made = call(
        server,
        token,
        "POST",
        "/api/closures/",
        {"rooms": [lift], "reason": "maintenance", "ends_at": until.isoformat()},
    )
    committed_at = time.time()
    assert status == 201
    closure = made["closure"]
    replanned_after(page, committed_at, "notices", notices)
    notice = page.locator("#route-notice")
    expect(notice).to_be_visible()
    words = plain(notice.inner_text())
    assert words.startswith(f"{lift_name} is closed until") and words.endswith("route updated.")
    if until.date() == datetime.now(UTC).date():
        assert clock(until) in words

    # The route on screen is the API's route around the closure, and it says so.
    status, around = get_json(f"{server.base_url}/api/route/?from={start}&to={end}")
    assert status == 200 and [c["id"] for c in around["route"]["closures"]] == [closure["id"]]
    shown = shown_route(page)
    assert "elevator" not in {leg["kind"] for leg in shown["legs"]}
    assert shown["distance"] == around["route"]["distance_m"] > before["route"]["distance_m"]
    page.wait_for_function(
        "(words) => document.querySelector('#announcer').textContent.startsWith(words)", arg=notice.inner_text()
    )
    # What is closed is listed in the panel and marked on the map, on the elevator's level.
    expect(page.locator("#closed")).to_be_visible()
    listed = plain(page.locator("#closed-list li").inner_text())
    assert listed.startswith(f"{lift_name} is closed until") and listed.endswith("(maintenance)"), listed
    lift_level = next(
        s["level"] for s in before["route"]["instructions"] if s.get("connector", {}).get("kind") == "elevator"
    )
    page.locator(f"#levels button[data-level='{lift_level}']").click()
    page.wait_for_function(
        "() => indoor.map.queryRenderedFeatures(undefined, {layers: ['closed-place']}).length > 0", timeout=10_000
    )
    wait_loaded(page, page.evaluate("() => indoor.view.level"))
    screenshot(page, "client-live-closed")
    assert axe_violations(page) == [], "a route re-planned around a closure, with its notice"

    # A reload of the page: the route that goes around the closure says so from the start.
    assert seen.problems(page) == []
    page.reload()
    expect(page.locator("#route-notice")).to_contain_text(f"{lift_name} is closed until")
    expect(page.locator("#route-notice")).to_contain_text("this route goes around it")
    expect(page.locator("#closed-list")).to_contain_text(f"{lift_name} is closed until")
    page.wait_for_function("() => indoor.ready && indoor.live.connected")

    # Reopened: the first route again, and why.
    notices = page.evaluate("() => indoor.live.notices")
    assert call(server, token, "DELETE", f"/api/closures/{closure['id']}")[0] == 204
    replanned_after(page, time.time(), "notices", notices)
    expect(page.locator("#route-notice")).to_have_text(f"{lift_name} is open again; route updated.")
    expect(page.locator("#closed")).to_be_hidden()  # nothing closed any more: no list, no marker
    assert page.evaluate("() => indoor.closed.places") == 0
    shown = shown_route(page)
    assert shown["distance"] == before["route"]["distance_m"]
    assert shown["legs"] == [leg["properties"] for leg in before["features"]]
    assert seen.problems(page) == []


def test_a_closure_elsewhere_changes_nothing_on_screen(server, live_url, token, new_page):
    start, end, lift, _, before = elevator_route(server, live_url)
    page, seen = open_route(new_page, server, start, end)
    expect(page.locator("#route-summary")).to_be_visible()
    # A room on level 1 far from the route: the page asks again, the answer is the same route.
    with autocommit_sql(live_url) as sql:
        far = sql(
            "SELECT ogc_fid FROM room_points WHERE level = 1 AND category IS NULL"
            " ORDER BY ST_Distance(wkb_geometry, (SELECT wkb_geometry FROM room_points WHERE ogc_fid = %s)) DESC"
            " LIMIT 1",
            (lift,),
        )[0][0]
    replans = page.evaluate("() => indoor.live.replans")
    status, made = call(server, token, "POST", "/api/closures/", {"rooms": [far], "reason": "cleaning"})
    assert status == 201
    page.wait_for_function(f"() => indoor.live.replans > {replans}", timeout=10_000)
    page.wait_for_timeout(500)
    expect(page.locator("#route-notice")).to_be_hidden()
    assert page.evaluate("() => indoor.live.notices") == 0
    assert shown_route(page)["distance"] == before["route"]["distance_m"]
    assert page.evaluate("() => indoor.stats.routes") == 1, "the same route is not drawn again"
    assert call(server, token, "DELETE", f"/api/closures/{made['closure']['id']}")[0] == 204
    assert seen.problems(page) == []


def test_a_step_free_route_with_its_elevator_closed_says_which_closure_stops_it(server, live_url, token, new_page):
    start, end, lift, lift_name, before = elevator_route(server, live_url, profile="accessible")
    page, seen = open_route(new_page, server, start, end, profile="accessible")
    expect(page.locator("#route-summary")).to_be_visible()
    replans = page.evaluate("() => indoor.live.replans")

    status, made = call(server, token, "POST", "/api/closures/", {"rooms": [lift], "reason": "out of order"})
    committed_at = time.time()
    assert status == 201
    message = page.locator("#route-message")
    expect(message).to_have_text(
        f'No step-free route between these places: {lift_name} is closed. Turn off "Step-free" to allow stairs'
        " and escalators.",
        timeout=10_000,
    )
    replanned_after(page, committed_at, "replans", replans)
    assert page.evaluate("() => indoor.live.replans") == replans + 1
    expect(page.locator("#route-summary")).to_be_hidden()
    page.wait_for_function(
        "(words) => document.querySelector('#announcer').textContent === words", arg=message.inner_text()
    )
    screenshot(page, "client-live-no-step-free-route")
    assert axe_violations(page) == [], "no step-free route because of a closure"

    assert call(server, token, "DELETE", f"/api/closures/{made['closure']['id']}")[0] == 204
    expect(page.locator("#route-notice")).to_have_text(f"{lift_name} is open again; route updated.", timeout=10_000)
    assert shown_route(page)["distance"] == before["route"]["distance_m"]
    assert seen.problems(page, allow_http=(422,)) == []


RENDERED_NAMES = (
    "() => indoor.map.queryRenderedFeatures({layers: [indoor.layer('room-label')]}).map((f) => f.properties.name)"
)


@pytest.mark.parametrize("tiles", ["never", "0"], ids=["streamed", "tiled"])
def test_a_room_renamed_by_another_tool_is_renamed_on_the_open_page(server, live_url, new_page, tiles):
    """QGIS or psql renames a room: the page that is open shows the new name within a few seconds
    (the `rooms` change event makes it read the level again: a new stream, or tiles of the new
    version), without a reload and without losing anything else it shows."""
    with autocommit_sql(live_url) as sql:
        room, old = sql(
            "SELECT ogc_fid, text FROM room_points WHERE level = 0 AND category IS NULL ORDER BY 1 LIMIT 1"
        )[0]
    new = f"Renamed {old}"
    page = new_page(timezone_id="UTC")
    seen = watch(page)
    page.goto(f"{server.base_url}/?level=0&tiles={tiles}")
    page.wait_for_function("() => window.indoor && indoor.ready && indoor.live.connected")
    page.wait_for_function(f"(old) => ({RENDERED_NAMES})().includes(old)", arg=old, timeout=30_000)
    drawn_before = len(page.evaluate(RENDERED_NAMES))
    try:
        with autocommit_sql(live_url) as sql:
            sql("UPDATE room_points SET text = %s WHERE ogc_fid = %s", (new, room))
        page.wait_for_function(
            f"([old, name]) => {{ const names = ({RENDERED_NAMES})(); return names.includes(name) && !names.includes(old); }}",
            arg=[old, new],
            timeout=10_000,
        )
        assert len(page.evaluate(RENDERED_NAMES)) >= drawn_before - 1  # the other rooms are still drawn
        if tiles == "never":
            assert page.evaluate("(id) => indoor.roomName(id)", room) == new  # search and clicks know it too
    finally:
        with autocommit_sql(live_url) as sql:
            sql("UPDATE room_points SET text = %s WHERE ogc_fid = %s", (old, room))
    assert seen.problems(page) == []
