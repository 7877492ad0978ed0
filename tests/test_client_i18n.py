"""The map page in its 11 languages: the words from the `page` catalogues (served as JSON), the
language negotiated into `<html lang dir>`, Arabic mirrored, the switcher and `?lang=` in the URL,
route steps in the page's language with an icon per maneuver, and catalogues complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from indoor import i18n
from tests.browser import VIEWPORT, screenshot, watch
from tests.http import get_json
from tests.test_client import rooms_on, wait_loaded

ROOT = Path(__file__).resolve().parent.parent
CLIENT_SRC = ROOT / "indoor" / "client" / "src"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def page_msgids() -> list[str]:
    with open(i18n.TRANSLATIONS / "page.pot", "rb") as template:
        return [m.id for m in read_po(template) if m.id]


def words(base_url: str, tag: str) -> dict:
    status, body = get_json(f"{base_url}/assets/messages/{tag}.json")
    assert status == 200
    return body


def panel_side(page) -> str:
    box = page.locator("#panel").bounding_box()
    centre = box["x"] + box["width"] / 2
    return "left" if centre < VIEWPORT["width"] / 2 else "right"


def test_german_page_words_and_the_html_language(serve, new_page):
    server = serve()
    page = new_page()
    seen = watch(page)
    response = page.goto(server.base_url + "/?lang=de")
    assert response.headers["content-language"] == "de"
    assert "accept-language" in response.headers["vary"].lower()
    german = words(server.base_url, "de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    search = page.locator("#room-search input")
    expect(search).to_have_attribute("placeholder", "Raum suchen")
    expect(search).to_have_attribute("aria-label", german["Search a room"])
    expect(page.locator("#directions h2")).to_have_text("Wegbeschreibung")
    expect(page.locator("#swap")).to_have_text(german["Swap"])
    expect(page.locator("label[for=language]")).to_have_text("Sprache")
    expect(page.locator("#language")).to_have_value("de")
    wait_loaded(page, 0)
    expect(page.locator("#progress .text")).to_contain_text("Räume")
    expect(page.locator("#levels button[data-level='0']")).to_have_attribute("title", re.compile(r"^Ebene "))
    assert panel_side(page) == "left"
    assert seen.problems(page) == []


def test_arabic_is_right_to_left_and_the_panel_mirrors(serve, new_page):
    server = serve()
    page = new_page()
    seen = watch(page)
    page.goto(server.base_url + "/?lang=ar")
    arabic = words(server.base_url, "ar")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#room-search input")).to_have_attribute("placeholder", arabic["Search a room"])
    expect(page.locator("#directions h2")).to_have_text("الاتجاهات")
    wait_loaded(page, 0)
    assert panel_side(page) == "right"
    levels = page.locator("#levels").bounding_box()
    assert levels["x"] + levels["width"] < VIEWPORT["width"] / 2, "the level switcher mirrors to the left"
    assert page.locator("#directions h2").evaluate("(e) => getComputedStyle(e).direction") == "rtl"
    # The map's own controls sit opposite the panel too, with Arabic titles.
    zoom_in = page.locator(".maplibregl-ctrl-bottom-left .maplibregl-ctrl-zoom-in")
    expect(zoom_in).to_have_attribute("title", arabic["Zoom in"])
    screenshot(page, "client-ar")
    assert seen.problems(page) == []


def route_texts(base_url: str, start: int, end: int, tag: str) -> list[dict]:
    status, body = get_json(f"{base_url}/api/route/?from={start}&to={end}&lang={tag}")
    assert status == 200
    return body["route"]["instructions"]


@pytest.mark.parametrize(("tag", "direction"), [("de", "ltr"), ("ar", "rtl")])
def test_route_steps_are_in_the_page_language_with_an_icon_each(serve, sql, new_page, tag, direction):
    server = serve()
    start, end = rooms_on(sql, 0)[0], rooms_on(sql, 2, corner="north-east")[0]
    steps, english = (route_texts(server.base_url, start, end, lang) for lang in (tag, "en"))
    page = new_page()
    seen = watch(page)
    page.goto(f"{server.base_url}/?lang={tag}&from={start}&to={end}")
    expect(page.locator("html")).to_have_attribute("dir", direction)
    expect(page.locator("#route-summary")).to_be_visible()
    routes = [r.url for r in seen.requests if "/api/route/" in r.url]
    assert routes and all(f"lang={tag}" in url for url in routes), "the page asks for its own language's steps"

    items = page.locator("#route-instructions li")
    expect(items).to_have_count(len(steps))
    icons = page.locator("#route-instructions li svg.step-icon[aria-hidden=true]")
    expect(icons).to_have_count(len(steps))
    names = icons.evaluate_all("(svgs) => svgs.map((svg) => svg.dataset.icon)")
    for step, name in zip(steps, names, strict=True):
        assert name.split("-")[0] == step.get("type", "step"), (step, name)
    assert page.locator("#route-instructions .step-text").all_text_contents() == [s["text"] for s in steps]
    expect(page.locator("#directions h2")).to_have_text(words(server.base_url, tag)["Directions"])
    wait_loaded(page, 0)
    screenshot(page, f"client-route-{tag}")
    assert seen.problems(page) == []
    # The server words the steps in the page's language: other words than English.
    assert sum(d["text"] != e["text"] for d, e in zip(steps, english, strict=True)) >= len(steps) - 1
    if tag == "ar":
        assert all(re.search(r"[\u0600-\u06FF]", s["text"]) for s in steps), "Arabic words in every step"
    else:
        assert any(re.search(r"\b(Sie|Ebene|Aufzug|links|rechts)\b", s["text"]) for s in steps), steps


def test_the_icon_of_each_maneuver(serve, new_page):
    """Every maneuver type and turn modifier of API.md has its own icon; left turns are right
    turns reflected, whatever the page's direction; level changes show their connector."""
    server = serve()
    page = new_page()
    page.goto(server.base_url + "/?lang=ar")
    icons = page.evaluate(
        """async () => {
            const { iconOf, maneuverIcon } = await import('/assets/icons.mjs');
            const types = ['depart', 'turn', 'continue', 'door', 'enter', 'leave', 'level_change',
                           'building_exit', 'building_enter', 'arrive'];
            const modifiers = ['straight', 'slight_left', 'left', 'sharp_left', 'uturn', 'slight_right',
                               'right', 'sharp_right'];
            const steps = [...types.map((type) => ({ type })),
                           ...modifiers.map((modifier) => ({ type: 'turn', modifier })),
                           ...['stairs', 'escalator', 'elevator', 'ramp'].map((kind) => (
                               { type: 'level_change', connector: { kind } })),
                           { text: 'an older server' }];
            return steps.map((step) => {
                const svg = maneuverIcon(step);
                return { ...iconOf(step), hidden: svg.getAttribute('aria-hidden'),
                         transform: svg.querySelector('g').getAttribute('transform') };
            });
        }"""
    )
    by_name = {icon["name"]: icon for icon in icons}
    assert all(icon["hidden"] == "true" for icon in icons)
    for side in ("slight_", "", "sharp_"):
        left, right = by_name[f"turn-{side}left"], by_name[f"turn-{side}right"]
        assert left["paths"] == right["paths"] and left["reflect"] and not right["reflect"]
        assert left["transform"] and not right["transform"], "a left turn points left in Arabic too"
    shapes = {
        name: tuple(by_name[name]["paths"])
        for name in (
            "depart",
            "turn-straight",
            "turn-right",
            "turn-uturn",
            "door",
            "enter",
            "leave",
            "building_exit",
            "building_enter",
            "arrive",
            "level_change-stairs",
            "level_change-escalator",
            "level_change-elevator",
            "level_change-ramp",
            "step",
        )
    }
    assert len(set(shapes.values())) == len(shapes), "one distinct icon per maneuver"


def test_the_switcher_changes_the_words_and_the_url(serve, new_page):
    server = serve()
    page = new_page()
    seen = watch(page)
    page.goto(server.base_url + "/?level=1")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#room-search input")).to_have_attribute("placeholder", "Search a room")
    options = page.locator("#language option").evaluate_all("(os) => os.map((o) => [o.value, o.textContent])")
    assert options == [
        ["en", "English"],
        ["de", "Deutsch"],
        ["fr", "Français"],
        ["es", "Español"],
        ["it", "Italiano"],
        ["nl", "Nederlands"],
        ["pt", "Português"],
        ["pl", "Polski"],
        ["zh-Hans", "简体中文"],
        ["ja", "日本語"],
        ["ar", "العربية"],
    ]
    assert [tag for tag, _ in options] == list(i18n.LANGUAGES)
    wait_loaded(page, 1)

    page.select_option("#language", "fr")
    expect(page.locator("#room-search input")).to_have_attribute("placeholder", "Rechercher une salle")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert "lang=fr" in page.url and "level=1" in page.url, "the view stays in the URL"
    expect(page.locator("#levels button.active")).to_have_attribute("data-level", "1")

    page.select_option("#language", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#directions h2")).to_have_text("الاتجاهات")
    assert "lang=ar" in page.url
    expect(page.locator("#panel")).to_have_css("direction", "rtl")
    assert panel_side(page) == "right"

    page.go_back()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.locator("#language")).to_have_value("fr")
    assert panel_side(page) == "left"
    assert seen.problems(page) == []


def test_an_unknown_language_falls_back_to_the_browser_then_english(serve, new_page):
    server = serve()
    page = new_page(locale="ja-JP")
    seen = watch(page)
    page.goto(server.base_url + "/?lang=xx")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("#room-search input")).to_have_attribute("placeholder", "部屋を検索")
    expect(page.locator("#language")).to_have_value("ja")
    assert seen.problems(page) == []

    page = new_page(locale="sw-KE")  # a language the page does not speak
    page.goto(server.base_url + "/?lang=xx")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#room-search input")).to_have_attribute("placeholder", "Search a room")
    expect(page.locator("#language")).to_have_value("en")


def test_every_language_serves_every_page_word(client):
    msgids = page_msgids()
    assert len(msgids) > 40
    for tag in i18n.LANGUAGES:
        response = client.get(f"/assets/messages/{tag}.json")
        assert response.status_code == 200 and response.headers["Content-Language"] == tag
        served = response.get_json()
        assert list(served) == msgids, tag
        assert all(isinstance(text, str) and text.strip() for text in served.values()), tag
        different = sum(served[m] != m for m in msgids)
        if tag == "en":
            assert different == 0
        else:
            assert different >= 0.8 * len(msgids), f"{tag}: only {different} of {len(msgids)} translated"
        etag = response.headers["ETag"]
        assert client.get(f"/assets/messages/{tag}.json", headers={"If-None-Match": etag}).status_code == 304
    missing = client.get("/assets/messages/xx.json")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/assets/messages/DE.json").status_code == 404, "exact tags only: one URL per language"


def test_the_page_is_served_in_the_negotiated_language(client):
    english = client.get("/")
    assert english.status_code == 200 and '<html lang="en" dir="ltr">' in english.get_data(as_text=True)
    assert english.headers["Content-Language"] == "en" and "Accept-Language" in english.headers["Vary"]
    arabic = client.get("/", headers={"Accept-Language": "fr;q=0.5, ar-EG"})
    assert '<html lang="ar" dir="rtl">' in arabic.get_data(as_text=True)
    assert arabic.headers["Content-Language"] == "ar"
    chinese = client.get("/?lang=zh-CN", headers={"Accept-Language": "ar"})
    assert '<html lang="zh-Hans" dir="ltr">' in chinese.get_data(as_text=True), "?lang= first"
    fallback = client.get("/?lang=xx", headers={"Accept-Language": "pt-BR"})
    assert '<html lang="pt" dir="ltr">' in fallback.get_data(as_text=True)
    # The page's CSP is unchanged, and each language has its own ETag, revalidated.
    assert arabic.headers["Content-Security-Policy"] == english.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in arabic.headers["Content-Security-Policy"]
    assert arabic.headers["ETag"] != english.headers["ETag"]
    again = client.get("/", headers={"Accept-Language": "ar", "If-None-Match": arabic.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/", headers={"If-None-Match": arabic.headers["ETag"]}).status_code == 200


@pytest.mark.parametrize("tag", [tag for tag in i18n.LANGUAGES if tag != i18n.DEFAULT])
def test_page_catalogue_is_complete(tag):
    path = i18n.TRANSLATIONS / i18n.locale_id(tag) / "LC_MESSAGES" / "page.po"
    with open(path, "rb") as po:
        catalogue = read_po(po)
    messages = [m for m in catalogue if m.id]
    assert [m.id for m in messages] == page_msgids(), "every word of page.pot, nothing else"
    for message in messages:
        assert not message.fuzzy, message.id
        assert message.string and message.string.strip(), message.id
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), (
            message.id,
            message.string,
        )


def test_page_pot_holds_every_word_of_the_page(tmp_path):
    """page.pot is current (`make messages` would not change it), and every data-i18n* word of
    index.html is one of its msgids."""
    extracted = tmp_path / "page.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "babel-page.cfg", "--no-location"]
        + ["--omit-header", "-o", str(extracted), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(extracted, "rb") as fresh:
        assert [m.id for m in read_po(fresh) if m.id] == page_msgids()
    html = (CLIENT_SRC / "index.html").read_text(encoding="utf-8")
    in_html = re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]*)"', html)
    assert len(in_html) > 10 and set(in_html) <= set(page_msgids())
