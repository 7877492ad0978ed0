"""A route's words: its maneuvers (routing/directions.py, in no language) rendered as `text` and
`distance_text` in the request's language, and the cached route framed as the response body.

Every sentence is a whole gettext message with named placeholders (translators move them
freely); only the small words inside (a heading, a turn's side) are their own messages, as the
street engines' instruction sets do. The language is always passed in: nothing here reads the
request, so a greenlet renders exactly what it was asked for.
"""

from __future__ import annotations

import functools
import json

from indoor import i18n

# Kinds of connector a level change names by kind; others read "Go up/down".
CONNECTOR_KINDS = ("elevator", "stairs", "escalator", "ramp")


@functools.cache
def _words(tag: str) -> dict:
    tr = i18n.translations(tag)
    return {
        "headings": (
            tr.pgettext("heading", "north"),
            tr.pgettext("heading", "northeast"),
            tr.pgettext("heading", "east"),
            tr.pgettext("heading", "southeast"),
            tr.pgettext("heading", "south"),
            tr.pgettext("heading", "southwest"),
            tr.pgettext("heading", "west"),
            tr.pgettext("heading", "northwest"),
        ),
        "modifiers": {
            "slight_left": tr.pgettext("turn", "slight left"),
            "left": tr.pgettext("turn", "left"),
            "sharp_left": tr.pgettext("turn", "sharp left"),
            "slight_right": tr.pgettext("turn", "slight right"),
            "right": tr.pgettext("turn", "right"),
            "sharp_right": tr.pgettext("turn", "sharp right"),
        },
        # How each kind is called, to tell whether a connector's own name already says it
        # ("Aufzug 1", "Elevator A0": "Take Aufzug 1", not "Take the elevator Aufzug 1").
        "kinds": {
            "elevator": {"elevator", "lift", tr.pgettext("connector", "elevator").lower()},
            "stairs": {"stair", "steps", tr.pgettext("connector", "stairs").lower()},
            "escalator": {"escalator", tr.pgettext("connector", "escalator").lower()},
            "ramp": {"ramp", tr.pgettext("connector", "ramp").lower()},
        },
    }


def _heading(tag: str, bearing) -> str | None:
    if bearing is None:
        return None
    return _words(tag)["headings"][int((float(bearing) + 22.5) // 45) % 8]


def format_level(tag: str, level) -> str:
    if isinstance(level, int):
        return str(level)
    return i18n.format_decimal(level, tag, decimals=1)


def _level(tag: str, number, name: str | None) -> str:
    tr = i18n.translations(tag)
    if name:
        return tr.gettext("level %(number)s (%(name)s)") % {"number": format_level(tag, number), "name": name}
    return tr.gettext("level %(number)s") % {"number": format_level(tag, number)}


def distance_text(tag: str, metres: float) -> str:
    """12 m, 850 m, 1.5 km (1,5 km in German): as the locale writes numbers."""
    if metres >= 1000:
        return _kilometres(tag, round(metres / 100))
    return _metres(tag, max(round(metres), 0))


@functools.lru_cache(maxsize=8192)  # Babel's number formatting is slow; a route repeats few values
def _metres(tag: str, metres: int) -> str:
    return i18n.translations(tag).gettext("%(distance)s m") % {"distance": i18n.format_decimal(metres, tag)}


@functools.lru_cache(maxsize=4096)
def _kilometres(tag: str, tenths: int) -> str:
    distance = i18n.format_decimal(tenths / 10, tag, decimals=1)
    return i18n.translations(tag).gettext("%(distance)s km") % {"distance": distance}


def _name_says_kind(tag: str, kind: str, name: str) -> bool:
    lowered = name.lower()
    return any(word and word in lowered for word in _words(tag)["kinds"].get(kind, ()))


def _level_change(tag: str, step: dict) -> str:
    tr = i18n.translations(tag)
    connector = step.get("connector", {})
    kind, name = connector.get("kind"), connector.get("name")
    level = _level(tag, step["to_level"], step.get("to_level_name"))
    count = max(1, round(abs(float(step["to_level"]) - float(step["from_level"]))))
    up = step.get("direction") == "up"
    values = {"level": level, "name": name, "count": count}
    if name and (_name_says_kind(tag, kind, name) or kind not in ("elevator", "stairs", "escalator")):
        return tr.gettext("Take %(name)s to %(level)s") % values
    if kind == "elevator":
        if name:
            return tr.gettext("Take elevator %(name)s to %(level)s") % values
        return tr.gettext("Take the elevator to %(level)s") % values
    if kind == "stairs":
        if name:
            if up:
                text = tr.ngettext(
                    "Take stairs %(name)s up %(count)d level to %(level)s",
                    "Take stairs %(name)s up %(count)d levels to %(level)s",
                    count,
                )
            else:
                text = tr.ngettext(
                    "Take stairs %(name)s down %(count)d level to %(level)s",
                    "Take stairs %(name)s down %(count)d levels to %(level)s",
                    count,
                )
        elif up:
            text = tr.ngettext(
                "Take the stairs up %(count)d level to %(level)s",
                "Take the stairs up %(count)d levels to %(level)s",
                count,
            )
        else:
            text = tr.ngettext(
                "Take the stairs down %(count)d level to %(level)s",
                "Take the stairs down %(count)d levels to %(level)s",
                count,
            )
        return text % values
    if kind == "escalator":
        if name:
            if up:
                text = tr.ngettext(
                    "Take escalator %(name)s up %(count)d level to %(level)s",
                    "Take escalator %(name)s up %(count)d levels to %(level)s",
                    count,
                )
            else:
                text = tr.ngettext(
                    "Take escalator %(name)s down %(count)d level to %(level)s",
                    "Take escalator %(name)s down %(count)d levels to %(level)s",
                    count,
                )
        elif up:
            text = tr.ngettext(
                "Take the escalator up %(count)d level to %(level)s",
                "Take the escalator up %(count)d levels to %(level)s",
                count,
            )
        else:
            text = tr.ngettext(
                "Take the escalator down %(count)d level to %(level)s",
                "Take the escalator down %(count)d levels to %(level)s",
                count,
            )
        return text % values
    if kind == "ramp":
        if up:
            text = tr.ngettext(
                "Take the ramp up %(count)d level to %(level)s",
                "Take the ramp up %(count)d levels to %(level)s",
                count,
            )
        else:
            text = tr.ngettext(
                "Take the ramp down %(count)d level to %(level)s",
                "Take the ramp down %(count)d levels to %(level)s",
                count,
            )
        return text % values
    if up:
        text = tr.ngettext("Go up %(count)d level to %(level)s", "Go up %(count)d levels to %(level)s", count)
    else:
        text = tr.ngettext("Go down %(count)d level to %(level)s", "Go down %(count)d levels to %(level)s", count)
    return text % values


def _turned(step: dict) -> str | None:
    """The side of a turn said with an event at the same junction (None: straight on)."""
    found = step.get("modifier")
    return None if found in (None, "straight", "uturn") else found


def text(tag: str, step: dict) -> str:
    """One maneuver's sentence in `tag`."""
    tr = i18n.translations(tag)
    kind = step["type"]
    space = step.get("space") or {}
    name = space.get("name")
    turned = _turned(step)
    values = {
        "name": name,
        "heading": _heading(tag, step.get("bearing_after")),
        "modifier": _words(tag)["modifiers"].get(turned) if turned else None,
    }
    if kind == "depart":
        onto = step.get("onto")
        if name and onto:
            values["onto"] = onto["name"]
            if onto["layer"] == "corridor":
                return tr.gettext("Leave %(name)s and follow corridor %(onto)s") % values
            if onto["layer"] == "area":
                return tr.gettext("Leave %(name)s and cross %(onto)s") % values
            return tr.gettext("Leave %(name)s and enter %(onto)s") % values
        if name and space.get("layer") != "corridor":
            if values["heading"] is None:
                return tr.gettext("Leave %(name)s") % values
            return tr.gettext("Leave %(name)s and head %(heading)s") % values
        if values["heading"] is None:
            return tr.gettext("Start")
        return tr.gettext("Head %(heading)s") % values
    if kind == "continue":
        if values["heading"] is None:
            return tr.gettext("Continue")
        return tr.gettext("Continue %(heading)s") % values
    if kind == "turn":
        if step.get("modifier") == "uturn":
            return tr.gettext("Make a U-turn")
        if not turned:
            return tr.gettext("Go straight on")
        return tr.gettext("Turn %(modifier)s") % values
    if kind == "enter":
        layer = space.get("layer")
        if layer == "corridor":
            if turned:
                return tr.gettext("Turn %(modifier)s into corridor %(name)s") % values
            return tr.gettext("Follow corridor %(name)s") % values
        if layer == "area":
            if turned:
                return tr.gettext("Turn %(modifier)s and cross %(name)s") % values
            return tr.gettext("Cross %(name)s") % values
        if turned:
            return tr.gettext("Turn %(modifier)s into %(name)s") % values
        return tr.gettext("Enter %(name)s") % values
    if kind == "leave":
        if turned:
            return tr.gettext("Turn %(modifier)s and leave %(name)s") % values
        return tr.gettext("Leave %(name)s") % values
    if kind == "door":
        if name:
            if turned:
                return tr.gettext("Turn %(modifier)s through the door into %(name)s") % values
            return tr.gettext("Go through the door into %(name)s") % values
        if turned:
            return tr.gettext("Turn %(modifier)s through the door") % values
        return tr.gettext("Go through the door")
    if kind == "level_change":
        return _level_change(tag, step)
    if kind == "building_exit":
        if turned:
            return tr.gettext("Turn %(modifier)s and exit building %(name)s") % {**values, "name": step["building"]}
        return tr.gettext("Exit building %(name)s") % {"name": step["building"]}
    if kind == "building_enter":
        if step.get("from_building"):
            return tr.gettext("Leave building %(from)s and enter building %(name)s") % {
                "from": step["from_building"],
                "name": step["building"],
            }
        if turned:
            return tr.gettext("Turn %(modifier)s and enter building %(name)s") % {**values, "name": step["building"]}
        return tr.gettext("Enter building %(name)s") % {"name": step["building"]}
    if kind == "arrive":
        if "via" in step:
            if name:
                return tr.gettext("Reach %(name)s") % values
            return tr.gettext("Reach via point %(number)d") % {"number": step["via"]}
        side = step.get("side")
        if name:
            if side == "left":
                return tr.gettext("Arrive at %(name)s, on your left") % values
            if side == "right":
                return tr.gettext("Arrive at %(name)s, on your right") % values
            return tr.gettext("Arrive at %(name)s") % values
        if side == "left":
            return tr.gettext("Arrive at your destination, on your left")
        if side == "right":
            return tr.gettext("Arrive at your destination, on your right")
        return tr.gettext("Arrive at your destination")
    raise ValueError(f"unknown maneuver type {kind!r}")


def render(steps: list[dict], tag: str) -> list[dict]:
    """The maneuvers with their words: `type`, `modifier`, `text` first, then the rest."""
    rendered = []
    for step in steps:
        words = {"type": step["type"]}
        if "modifier" in step:
            words["modifier"] = step["modifier"]
        words["text"] = text(tag, step)
        words["distance_text"] = distance_text(tag, step["distance_m"])
        rendered.append({**words, **step})
    return rendered


@functools.lru_cache(maxsize=256)  # a popular route in a popular language: framed once per worker
def frame_route(cached: bytes, tag: str) -> bytes:
    """The response body from a route as cached (routing/route.py: the body without words, a
    newline, the maneuvers): `route.instructions` is added as the route's last member."""
    body, _, steps = cached.partition(b"\n")
    words = render(json.loads(steps), tag)
    encoded = json.dumps(words, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    return body[:-2] + b',"instructions":' + encoded + b"}}"
