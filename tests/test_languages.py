"""The directions' languages: complete catalogues whose every message renders in every language,
the language chosen from ?lang= then Accept-Language then English, Content-Language and Vary,
locale numbers, and one cached route serving every language."""

from __future__ import annotations

import re
import shutil

import pytest
import redis
from babel.messages.pofile import read_po

from indoor import i18n
from indoor.http import instructions
from tests.test_routes import _room_on, clear_route_cache

LANGUAGES = [tag for tag in i18n.LANGUAGES if tag != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")
SAMPLE = {"s": "X7", "d": 3}


def catalogue(tag: str, domain: str = "messages"):
    path = i18n.TRANSLATIONS / i18n.locale_id(tag) / "LC_MESSAGES" / f"{domain}.po"
    with open(path, "rb") as source:
        return read_po(source, locale=i18n.locale_id(tag))


def template():
    with open(i18n.TRANSLATIONS / "messages.pot", "rb") as source:
        return read_po(source)


@pytest.mark.parametrize("tag", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders(tag):
    found = catalogue(tag)
    wanted = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in template() if m.id}
    have = {}
    for message in found:
        if not message.id:
            continue
        key = (message.context, message.id if isinstance(message.id, str) else message.id[0])
        have[key] = message
        assert not message.fuzzy, f"{tag}: fuzzy {message.id!r}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{tag}: untranslated {message.id!r}"
        if isinstance(message.id, tuple):
            assert len(strings) == found.num_plurals, f"{tag}: {message.id!r} needs {found.num_plurals} forms"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set(PLACEHOLDER.findall(ids[0])) | set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == expected, f"{tag}: {message.id!r} -> {string!r}"
    assert wanted <= set(have), f"{tag}: missing {sorted(wanted - set(have))}"


@pytest.mark.parametrize("tag", i18n.LANGUAGES)
def test_every_message_renders_in_every_language(tag):
    words = i18n.translations(tag)
    for message in template():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        values = {name: SAMPLE[kind] for name, kind in PLACEHOLDER.findall(" ".join(ids))}
        if isinstance(message.id, tuple):
            for count in range(0, 112):  # every plural rule's branches (Arabic: 0, 1, 2, 3-10, 11-99, 100+)
                text = words.npgettext(message.context, *ids, count) if message.context else words.ngettext(*ids, count)
                assert text % {**values, "count": count}
        else:
            text = words.pgettext(message.context, ids[0]) if message.context else words.gettext(ids[0])
            rendered = text % values
            assert rendered and "%(" not in rendered
            if tag != "en" and message.context is None and values:
                assert "X7" in rendered or "3" in rendered


def _steps():
    """One maneuver of every kind and modifier the directions produce."""
    base = {"distance_m": 12.0, "duration_s": 9.2, "level": 0, "at": {"leg": 0, "coordinate": 0}}
    steps = [
        {**base, "type": "depart", "bearing_after": 45, "space": {"name": "E023", "layer": "room"}},
        {**base, "type": "depart", "bearing_after": 200},
        {**base, "type": "depart", "space": {"name": "E023", "layer": "room"}},
        {**base, "type": "depart"},
        *(
            {
                **base,
                "type": "depart",
                "bearing_after": 90,
                "space": {"name": "E023", "layer": "room"},
                "onto": {"name": "F03", "layer": layer},
            }
            for layer in ("corridor", "area", "room")
        ),
        {**base, "type": "continue", "modifier": "straight", "bearing_after": 300},
        {**base, "type": "continue", "modifier": "straight"},
        {**base, "type": "turn", "modifier": "uturn"},
    ]
    for modifier in ("slight_left", "left", "sharp_left", "slight_right", "right", "sharp_right", "straight"):
        steps.append({**base, "type": "turn", "modifier": modifier})
        for layer in ("corridor", "area", "room"):
            steps.append({**base, "type": "enter", "modifier": modifier, "space": {"name": "F03", "layer": layer}})
        steps.append({**base, "type": "leave", "modifier": modifier, "space": {"name": "Foyer", "layer": "area"}})
        steps.append({**base, "type": "door", "modifier": modifier, "space": {"name": "2030", "layer": "room"}})
        steps.append({**base, "type": "door", "modifier": modifier})
        steps.append({**base, "type": "building_exit", "modifier": modifier, "building": "A"})
        steps.append({**base, "type": "building_enter", "modifier": modifier, "building": "B"})
    steps.append({**base, "type": "building_enter", "building": "B", "from_building": "A"})
    for kind in ("elevator", "stairs", "escalator", "ramp", "corridor"):
        for name in (None, "Aufzug1", f"{kind.title()} North"):
            for to_level, level_name in ((2, "2. OG"), (-1, None), (0.5, None)):
                step = {
                    **base,
                    "type": "level_change",
                    "connector": {"kind": kind, **({"name": name} if name else {})},
                    "from_level": 0,
                    "to_level": to_level,
                    "direction": "up" if to_level > 0 else "down",
                }
                if level_name:
                    step["to_level_name"] = level_name
                steps.append(step)
    for side in (None, "left", "right"):
        for name in (None, "2030"):
            step = {**base, "type": "arrive", **({"side": side} if side else {})}
            if name:
                step["space"] = {"name": name, "layer": "room"}
            steps.append(step)
    steps.append({**base, "type": "arrive", "via": 1, "space": {"name": "Foyer", "layer": "area"}})
    steps.append({**base, "type": "arrive", "via": 2})
    return steps


@pytest.mark.parametrize("tag", i18n.LANGUAGES)
def test_every_maneuver_renders_with_its_names(tag):
    english = instructions.render(_steps(), "en")
    rendered = instructions.render(_steps(), tag)
    differs = 0
    for step, words, english_words in zip(_steps(), rendered, english, strict=True):
        assert words["text"] and "%(" not in words["text"] and "None" not in words["text"], (tag, step, words)
        names = (step.get("space", {}).get("name"), step.get("connector", {}).get("name"), step.get("building"))
        for name in (*names, step.get("onto", {}).get("name")):
            if name and step["type"] != "depart" or (name and "bearing_after" in step):
                assert name in words["text"], (tag, step, words["text"])
        if step.get("to_level_name"):
            assert step["to_level_name"] in words["text"]
        differs += words["text"] != english_words["text"]
    if tag != "en":
        assert differs >= 0.9 * len(rendered), tag


def test_numbers_as_each_locale_writes_them():
    assert instructions.distance_text("en", 1500) == "1.5 km"
    assert instructions.distance_text("de", 1500) == "1,5 km"
    assert instructions.distance_text("fr", 1500).replace("\u202f", " ").startswith("1,5")
    assert instructions.distance_text("en", 12.4) == "12 m"
    assert instructions.format_level("de", 0.5) == "0,5" and instructions.format_level("en", -1) == "-1"


def test_a_stale_or_missing_catalogue_stops_the_start(tmp_path, monkeypatch):
    copy = tmp_path / "translations"
    shutil.copytree(i18n.TRANSLATIONS, copy)
    monkeypatch.setattr(i18n, "TRANSLATIONS", copy)
    i18n.check_catalogues()  # as compiled by make
    po = copy / "de" / "LC_MESSAGES" / "messages.po"
    po.touch()
    mo = po.with_suffix(".mo")
    import os

    os.utime(mo, (po.stat().st_mtime - 10, po.stat().st_mtime - 10))
    with pytest.raises(i18n.CatalogueError, match="older than its .po"):
        i18n.check_catalogues()
    mo.unlink()
    with pytest.raises(i18n.CatalogueError, match="missing"):
        i18n.check_catalogues()


@pytest.mark.parametrize(
    ("lang", "accept", "expected"),
    [
        ("de", None, "de"),
        ("DE", "fr", "de"),
        (None, "fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        (None, "zh-CN,zh;q=0.9", "zh-Hans"),
        (None, "pt-BR", "pt"),
        (None, "sv, ar;q=0.5", "ar"),
        ("xx", "ja", "ja"),
        ("xx", None, "en"),
        (None, "sv, *;q=0.1", "en"),
        (None, None, "en"),
    ],
)
def test_the_language_comes_from_lang_then_accept_language_then_english(client, sql, lang, accept, expected):
    low, _ = _room_on(sql, 0, "ASC")
    high, _ = _room_on(sql, 2, "DESC")
    query = {"from": low, "to": high, **({"lang": lang} if lang else {})}
    headers = {"Accept-Language": accept} if accept else {}
    response = client.get("/api/route/", query_string=query, headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Language"] == expected
    assert "Accept-Language" in response.headers["Vary"]
    assert response.get_json()["route"]["instructions"][-1]["text"] == instructions.text(
        expected, response.get_json()["route"]["instructions"][-1]
    )


def test_one_cached_route_serves_every_language(client, sql, redis_url):
    clear_route_cache(redis_url)
    low, _ = _room_on(sql, 0, "ASC")
    high, high_name = _room_on(sql, 2, "DESC")
    bodies = {}
    for k, tag in enumerate(i18n.LANGUAGES):
        response = client.get("/api/route/", query_string={"from": low, "to": high, "lang": tag})
        assert response.headers["X-Cache"] == ("MISS" if k == 0 else "HIT")
        assert response.headers["Content-Language"] == tag
        bodies[tag] = response.get_json()
    keys = list(redis.Redis.from_url(redis_url).scan_iter("indoor:route:*:body:*"))
    assert len(keys) == 1, keys  # one entry per route, not one per language
    english = bodies["en"]["route"]["instructions"]
    for tag, body in bodies.items():
        steps = body["route"]["instructions"]
        # The same maneuvers, other words.
        assert [{k: v for k, v in s.items() if k not in ("text", "distance_text")} for s in steps] == [
            {k: v for k, v in s.items() if k not in ("text", "distance_text")} for s in english
        ]
        assert body["features"] == bodies["en"]["features"]
        if tag != "en":
            assert sum(s["text"] != e["text"] for s, e in zip(steps, english, strict=True)) >= len(steps) - 1
        assert high_name in steps[-1]["text"]
