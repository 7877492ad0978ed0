"""The map page for everyone (WCAG 2.2 AA), in headless Chromium on the demo campus: axe-core finds
no violation on any view (home, suggestions open, a route with its steps, no route, the phone
layout), the whole journey works from the keyboard with a visible focus ring and no trap, routes
and errors are announced, targets are at least 24 by 24 CSS pixels, reduced motion stops camera
animations, the phone layout is a bottom sheet, the nearest-place buttons route like the API and
the share button copies the view's link."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser import screenshot, watch
from tests.http import get_json
from tests.test_client import rooms_on, shown_route, wait_labels, wait_loaded

ROOT = Path(__file__).resolve().parent.parent
# axe-core from the client's npm lock file (a dev dependency: never served by the app).
AXE_SOURCE = ROOT / "indoor" / "client" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE = {"width": 390, "height": 844}
MIN_TARGET_PX = 24


def axe_violations(page) -> list[str]:
    """What axe-core finds against WCAG 2.0-2.2 A and AA on the page as it is now."""
    # Evaluated, not added as a <script>: the page's CSP rightly refuses inline scripts.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE.read_text() + "\n;0")
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
        }""",
        WCAG_TAGS,
    )
    assert page.evaluate("() => axe.version") == "4.14.1", "the version pinned in package-lock.json"
    return found


def small_targets(page) -> list[str]:
    """Shown controls smaller than 24 x 24 CSS px (a checkbox counts with its label, its target)."""
    return page.evaluate(
        """(min) => {
            const selector = 'button, a[href], input, select, [role=button], [role=option], [tabindex]:not([tabindex="-1"])';
            const small = [];
            for (const element of document.querySelectorAll(selector)) {
                let box = element.getBoundingClientRect();
                if (!box.width || !box.height) continue; // not shown
                if (element.matches('input[type=checkbox]') && element.closest('label')) {
                    box = element.closest('label').getBoundingClientRect();
                }
                if (box.width < min || box.height < min) {
                    small.push(`${element.outerHTML.slice(0, 80)} ${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
                }
            }
            return small;
        }""",
        MIN_TARGET_PX,
    )


def focused(page) -> dict:
    """The element with the keyboard focus and whether a focus ring of at least 2 px shows on it."""
    return page.evaluate(
        """() => {
            const element = document.activeElement;
            const style = getComputedStyle(element);
            return {
                id: element.id, tag: element.tagName, text: element.textContent.trim().slice(0, 60),
                in: ['from-search', 'to-search', 'room-search', 'route-instructions', 'levels', 'nearest']
                    .find((id) => document.getElementById(id)?.contains(element)) || null,
                level: element.dataset.level ?? null,
                ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
            };
        }"""
    )


def tab_to(page, wanted, limit: int = 40) -> dict:
    """Press Tab until `wanted(focused)` holds; each stop must show its focus ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["tag"] != "BODY":
            assert now["ring"], f"no visible focus ring on {now}"
        if wanted(now):
            return now
    raise AssertionError(f"Tab never reached the element wanted (last: {now})")


def room_name(sql, room_id: int) -> str:
    return sql("SELECT text FROM room_points WHERE ogc_fid = %s", (room_id,))[0][0]


def pick_suggestion(page, box: str, name: str) -> None:
    """Type `name` into the focused search box, move to its suggestion with the arrow keys, Enter."""
    page.keyboard.type(name)
    options = page.locator(f"#{box} li[role=option]")
    expect(options.first).to_be_visible()
    expect(page.locator(f"#{box} input")).to_have_attribute("aria-expanded", "true")
    names = [text.strip() for text in options.locator("span").all_inner_texts()]
    assert name in names, (name, names)
    for _ in range(names.index(name) + 1):
        page.keyboard.press("ArrowDown")
    active = page.locator(f"#{box} input").get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    expect(page.locator(f"#{box} input")).to_have_attribute("aria-expanded", "false")


def test_axe_finds_no_wcag_violation_on_any_view(serve, sql, new_page):
    server = serve()
    page = new_page()
    seen = watch(page)
    page.goto(server.base_url + "/")
    wait_loaded(page, 0)
    wait_labels(page)
    assert axe_violations(page) == [], "home view"
    assert small_targets(page) == []

    page.locator("#room-search input").fill(room_name(sql, rooms_on(sql, 1)[0])[:2])
    expect(page.locator("#room-search li[role=option]").first).to_be_visible()
    assert axe_violations(page) == [], "search suggestions open"
    assert small_targets(page) == []

    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 2, corner="north-east")[0]
    page.goto(f"{server.base_url}/?from={start}&to={end}")
    expect(page.locator("#route-summary")).to_be_visible()
    expect(page.locator(".route-marker").first).to_be_visible()
    assert axe_violations(page) == [], "a route with its steps"
    assert small_targets(page) == []
    # The steps are an ordered list, each step with its level; the map's canvas is named and
    # described by them.
    status, api = get_json(f"{server.base_url}/api/route/?from={start}&to={end}")
    steps = page.locator("ol#route-instructions > li")
    expect(steps).to_have_count(len(api["route"]["instructions"]))
    assert all("level" in text for text in steps.all_inner_texts())
    canvas = page.locator("canvas.maplibregl-canvas")
    expect(canvas).to_have_attribute("aria-label", "Map")
    expect(canvas).to_have_attribute("aria-describedby", "route-instructions")

    page.goto(f"{server.base_url}/?from={start}&to=13.3690,52.5250,9")
    expect(page.locator("#route-message")).to_be_visible()
    expect(page.locator("#announcer")).to_have_text(page.locator("#route-message").inner_text())
    assert axe_violations(page) == [], "no route"
    assert seen.problems(page, allow_http=(422,)) == []


def test_the_whole_journey_by_keyboard_alone_is_announced(serve, sql, new_page):
    server = serve()
    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 1)[0]
    status, walking = get_json(f"{server.base_url}/api/route/?from={start}&to={end}")
    assert status == 200
    page = new_page()
    seen = watch(page)
    page.goto(server.base_url + "/")
    wait_loaded(page, 0)

    tab_to(page, lambda f: f["in"] == "from-search")
    pick_suggestion(page, "from-search", room_name(sql, start))
    assert page.url.endswith(f"/?from={start}")
    tab_to(page, lambda f: f["in"] == "to-search", limit=1)
    pick_suggestion(page, "to-search", room_name(sql, end))
    expect(page.locator("#route-summary")).to_be_visible()
    assert f"from={start}&to={end}" in page.url
    expect(page.locator("#announcer")).to_contain_text(page.locator("#route-distance").inner_text())
    expect(page.locator("#announcer")).to_contain_text(f"{len(walking['route']['instructions'])} steps")

    tab_to(page, lambda f: f["id"] == "accessible", limit=1)
    page.keyboard.press("Space")
    page.wait_for_function("() => indoor.stats.routes === 2")
    assert page.url.endswith("profile=accessible")
    accessible = get_json(f"{server.base_url}/api/route/?from={start}&to={end}&profile=accessible")[1]
    expect(page.locator("#announcer")).to_contain_text(f"{len(accessible['route']['instructions'])} steps")

    # Read the steps: every one is reached in order; Enter on the last shows its level.
    steps = accessible["route"]["instructions"]
    first = tab_to(page, lambda f: f["in"] == "route-instructions")
    assert first["text"].startswith(steps[0]["text"])
    for step in steps[1:]:
        page.keyboard.press("Tab")
        assert focused(page)["text"].startswith(step["text"])
    page.keyboard.press("Enter")
    last_level = str(steps[-1]["level"])
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", last_level)

    # Switch level from the level switcher.
    other = tab_to(page, lambda f: f["in"] == "levels" and f["level"] not in (None, last_level))
    page.keyboard.press("Enter")
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", other["level"])
    assert f"level={other['level']}" in page.url

    # No trap: Tab leaves the page's last control and comes round to its first again.
    tab_to(page, lambda f: f["id"] == "language", limit=60)
    assert seen.problems(page) == []


def test_reduced_motion_turns_off_camera_animations(serve, sql, new_page):
    server = serve()
    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 2, corner="north-east")[0]

    def camera_after_a_step(page) -> dict:
        page.goto(f"{server.base_url}/?from={start}&to={end}")
        expect(page.locator("#route-summary")).to_be_visible()
        page.wait_for_function("() => !indoor.map.isMoving()")
        return page.evaluate(
            """() => {
                const before = indoor.map.getCenter().toArray();
                document.querySelector('#route-instructions li:last-child button').click();
                return {moving: indoor.map.isMoving(), moved: indoor.map.getCenter().toArray().some((v, i) => v !== before[i])};
            }"""
        )

    assert camera_after_a_step(new_page()) == {"moving": True, "moved": False}, "animated by default"
    assert camera_after_a_step(new_page(reduced_motion="reduce")) == {"moving": False, "moved": True}


def wait_rooms_drawn(page):
    """Until the shown level's rooms are on screen: on a phone the whole level (or route) fits, at
    a zoom below the labels' (18), as it would on a small desktop window."""
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: [indoor.layer('room-point')]}).length > 0")
    page.wait_for_timeout(300)


def test_on_a_phone_the_panel_is_a_bottom_sheet_over_at_most_half_the_map(serve, sql, new_page):
    server = serve()
    page = new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    seen = watch(page)
    page.goto(server.base_url + "/")
    wait_loaded(page, 0)
    wait_rooms_drawn(page)

    layout = page.evaluate(
        """() => {
            const panel = document.querySelector('#panel').getBoundingClientRect();
            return {panelTop: panel.top, panelBottom: panel.bottom, panelHeight: panel.height,
                    scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth};
        }"""
    )
    assert layout["scrollWidth"] <= layout["width"] == PHONE["width"], "nothing scrolls sideways"
    assert layout["panelBottom"] == PHONE["height"] and layout["panelHeight"] <= PHONE["height"] / 2
    # The building is drawn where the map shows, above the sheet.
    above = page.evaluate(
        """([bottom]) => {
            const box = [[0, 0], [window.innerWidth, bottom]];
            const floor = indoor.map.queryRenderedFeatures(box, {layers: [indoor.layer('floor-room')]}).length;
            const rooms = indoor.map.queryRenderedFeatures(box, {layers: [indoor.layer('room-point')]}).length;
            return {floor, rooms};
        }""",
        [layout["panelTop"]],
    )
    assert above["floor"] > 0 and above["rooms"] > 0, above
    assert axe_violations(page) == [], "phone layout"
    assert small_targets(page) == []
    screenshot(page, "client-phone")

    toggle = page.locator("#sheet-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.tap()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#from-search input")).to_be_hidden()
    assert page.evaluate("() => document.querySelector('#panel').getBoundingClientRect().height") < 80
    assert axe_violations(page) == [], "phone layout, sheet folded"
    toggle.tap()
    expect(page.locator("#from-search input")).to_be_visible()

    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 2, corner="north-east")[0]
    page.goto(f"{server.base_url}/?from={start}&to={end}")
    expect(page.locator("#route-summary")).to_be_visible()
    wait_loaded(page, 0)
    wait_rooms_drawn(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe_violations(page) == [], "phone layout with a route"
    assert small_targets(page) == []
    page.wait_for_function("() => indoor.map.queryRenderedFeatures({layers: ['route-current']}).length > 0")
    screenshot(page, "client-phone-route")
    assert seen.problems(page) == []


def test_a_nearest_place_button_routes_like_the_api_and_share_copies_the_link(serve, sql, new_page):
    server = serve()
    status, body = get_json(f"{server.base_url}/api/categories/")
    assert status == 200
    present = [c["name"] for c in body["categories"]]
    assert "toilets" in present
    start = rooms_on(sql, 2, corner="north-east")[0]
    status, api = get_json(f"{server.base_url}/api/route/?from={start}&to=category:toilets")
    assert status == 200

    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    seen = watch(page)
    page.goto(f"{server.base_url}/?from={start}")
    buttons = page.locator("#nearest button")
    expect(buttons).to_have_count(min(6, len(present)))
    assert set(buttons.evaluate_all("(all) => all.map((b) => b.dataset.category)")) <= set(present)
    expect(buttons.first).to_have_text("Toilets")  # the most useful first, in the page's words
    buttons.first.click()
    expect(page.locator("#route-summary")).to_be_visible()
    assert page.url.endswith(f"/?from={start}&to=category%3Atoilets") or page.url.endswith(
        f"/?from={start}&to=category:toilets"
    )
    shown = shown_route(page)
    assert shown["distance"] == api["route"]["distance_m"]
    assert shown["legs"] == [leg["properties"] for leg in api["features"]]
    expect(page.locator("#to-search input")).to_have_value(api["route"]["to"]["name"])

    page.locator("#share").click()
    expect(page.locator("#announcer")).to_have_text("Link copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == page.url
    assert seen.problems(page) == []
